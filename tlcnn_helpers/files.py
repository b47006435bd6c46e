"""Writing files safely: atomic text and JSON, and ``.keras`` models saved and loaded with checks.

A reader (another process, a resumed run, the course report) always sees the old file or
the new one, never half of one: everything is written to a temporary file with a unique
name in the same folder, which then replaces the target.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> json.loads(write_json({"a": 1}, folder / "r.json").read_text())
{'a': 1}

Used by the records of every notebook, by ``train``/``tune`` reports, and by notebooks 04
and 06 (saving and loading the trained CIFAR-10 models).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import keras

from .errors import ModelInputError, TLCNNError


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back).

    >>> 0 <= current_umask() <= 0o777
    True
    """
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _umask_mode(path: str | os.PathLike, directory: bool = False) -> None:
    # mkstemp and mkdtemp create owner-only files; published ones get the usual modes.
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` so a reader sees the old file or the new one, never half.

    The text goes to a temporary file in the same folder, which then replaces ``path``;
    if anything fails on the way, the temporary file is removed and ``path`` is untouched.

    >>> import tempfile
    >>> write_text_atomic(Path(tempfile.mkdtemp()) / "a" / "x.txt", "hi").read_text()
    'hi'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        _umask_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(data: Any, path: str | os.PathLike, *, indent: int | None = 2,
               sort_keys: bool = False) -> Path:
    """Write ``data`` as JSON atomically: a crash never leaves a half-written file.

    The text is serialised in full before the file is touched, so an object that cannot be
    written as JSON leaves the old file as it was.

    >>> import tempfile
    >>> json.loads(write_json([1, 2], Path(tempfile.mkdtemp()) / "x.json").read_text())
    [1, 2]
    """
    text = json.dumps(data, indent=indent, sort_keys=sort_keys)
    return write_text_atomic(path, text + "\n")


def save_model(model, path: str | os.PathLike) -> Path:
    """Save ``model`` as ``.keras`` atomically (a crash keeps the previous file intact).

    >>> import tempfile
    >>> from tlcnn_helpers.models import paper_cnn
    >>> path = save_model(paper_cnn(), Path(tempfile.mkdtemp()) / "m.keras")
    >>> load_model(path).count_params()
    919753
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise TLCNNError(f"{path}: Keras 3 saves whole models as .keras files; use that suffix")
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name: two processes saving the same path never write into one file.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".partial.keras")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        model.save(tmp)
        _umask_mode(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_model(path: str | os.PathLike, *, compile: bool = True) -> keras.Model:
    """Load a ``.keras`` (or legacy ``.h5``) model, with a clear error when the file is missing
    or is not a model. ``compile=False`` skips restoring the optimizer (for inference or
    surgery).

    >>> load_model("nowhere.keras")
    Traceback (most recent call last):
    ...
    tlcnn_helpers.errors.ModelInputError: no model file at nowhere.keras: train one first ...
    """
    path = Path(path)
    if not path.is_file():
        raise ModelInputError(f"no model file at {path}: train one first (notebook 04, or "
                              f"`python -m tlcnn_helpers train cifar10 --out {path}`)")
    if path.suffix not in (".keras", ".h5"):
        raise ModelInputError(f"{path}: expected a .keras (or legacy .h5) model file")
    try:
        return keras.models.load_model(path, compile=compile)
    except Exception as err:  # Keras raises several types for a damaged archive
        raise ModelInputError(f"{path} is not a readable Keras model ({err}); save it again, or "
                              f"move it away and train again") from err
