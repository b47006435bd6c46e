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

import contextlib
import fcntl
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras

from .errors import CourseError, ModelInputError, TLCNNError


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


def null_nonfinite(data: Any) -> Any:
    """``data`` with every NaN or infinite number replaced by ``None`` (JSON's null).

    Strict JSON has no NaN or Infinity; a diverged loss is reported as null instead.

    >>> null_nonfinite({"loss": float("nan"), "rows": [1.5, float("inf")]})
    {'loss': None, 'rows': [1.5, None]}
    """
    if isinstance(data, dict):
        return {k: null_nonfinite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [null_nonfinite(v) for v in data]
    if isinstance(data, float) and not math.isfinite(data):
        return None
    return data


def write_json(data: Any, path: str | os.PathLike, *, indent: int | None = 2,
               sort_keys: bool = False) -> Path:
    """Write ``data`` as strict JSON atomically: a crash never leaves a half-written file.

    The text is serialised in full before the file is touched, so an object that cannot be
    written as JSON (NaN or infinity included: pass it through :func:`null_nonfinite`)
    leaves the old file as it was.

    >>> import tempfile
    >>> json.loads(write_json([1, 2], Path(tempfile.mkdtemp()) / "x.json").read_text())
    [1, 2]
    """
    try:
        text = json.dumps(data, indent=indent, sort_keys=sort_keys, allow_nan=False)
    except ValueError as err:  # other readers (browsers, jq) reject NaN and Infinity
        raise ValueError(f"{path}: {err}; map it to None first (files.null_nonfinite)") from err
    return write_text_atomic(path, text + "\n")


def read_json(path: str | os.PathLike, *, fix: str,
              error: type[TLCNNError] = TLCNNError) -> Any:
    """Read a JSON file the course wrote; a damaged one raises ``error`` naming it and ``fix``.

    Lenient like Python's reader (``NaN`` and ``Infinity`` from older files are accepted).

    >>> import tempfile
    >>> bad = Path(tempfile.mkdtemp()) / "s.json"
    >>> _ = bad.write_text('{"half": ')
    >>> try:
    ...     read_json(bad, fix="delete it")
    ... except TLCNNError as err:
    ...     print(str(err).endswith("s.json is not valid JSON (Expecting value: line 1 "
    ...                             "column 10 (char 9)): it is damaged; delete it"))
    True
    """
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise error(f"{path} is not valid JSON ({err}): it is damaged; {fix}") from err


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, lock_name: str,
                error: type[TLCNNError] = TLCNNError, fix: str = "wait for it to finish"
                ) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (``fcntl.flock`` on ``folder/lock_name``).

    A second holder, in this process or another, gets ``error`` at once with the first
    holder's PID. The lock ends with the process, so a killed run never leaves it stuck.

    >>> import tempfile
    >>> with folder_lock(tempfile.mkdtemp(), ".lock") as lock_file:
    ...     lock_file.name
    '.lock'
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock_file = folder / lock_name
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666 & ~current_umask())
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise error(f"{folder} is in use by PID {holder} (lock file {lock_file}); "
                        f"{fix}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield lock_file
    finally:
        os.close(fd)  # releases the flock


def check_output_file(path: str | os.PathLike, flag: str) -> Path:
    """Refuse, before any work, an output ``path`` that could not be written afterwards.

    A folder, or a file whose nearest existing parent folder is not writable, raises
    :class:`~tlcnn_helpers.errors.CourseError` naming ``flag`` (the argument at fault).

    >>> import tempfile
    >>> check_output_file(Path(tempfile.mkdtemp()) / "new" / "r.json", "--report").name
    'r.json'
    """
    path = Path(path)
    if path.is_dir():
        raise CourseError(f"{flag} {path} is a folder: give a file name inside it, such as "
                          f"{path / 'result'}")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise CourseError(f"{flag} {path}: {parent} is a file, not a folder; choose another path")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists()
                                                    and not os.access(path, os.W_OK)):
        raise CourseError(f"{flag} {path}: {parent} is not writable; choose a path in a "
                          f"writable folder")
    return path


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
