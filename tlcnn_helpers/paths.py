"""Where the course keeps its files: data, trained models, records and build output.

>>> default_data_dir(environ={"TLCNN_DATA_DIR": "/tmp/my-data"}).as_posix()
'/tmp/my-data'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DATA_DIR_ENV_VAR = "TLCNN_DATA_DIR"
RECORDS_DIR_ENV_VAR = "TLCNN_RECORDS_DIR"
MODELS_DIR_ENV_VAR = "TLCNN_MODELS_DIR"


def repo_root() -> Path:
    """The course checkout: the folder above the package, or the working directory.

    In Colab the package is installed from the repository into site-packages, so the
    working directory (the cloned course, or ``/content``) stands in for the checkout.
    """
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists() and (here / "notebooks").is_dir():
        return here
    return Path.cwd()


def path_from_env(var: str, default: Path, environ: Mapping[str, str] | None = None) -> Path:
    """The folder named by environment variable ``var`` (``~`` expanded), else ``default``.

    >>> path_from_env("TLCNN_X_DIR", Path("/d"), environ={"TLCNN_X_DIR": "/e"}).as_posix()
    '/e'
    """
    env = os.environ if environ is None else environ
    value = env.get(var)
    return Path(value).expanduser() if value else default


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``TLCNN_DATA_DIR`` if set, else the checkout's ``data/`` folder."""
    return path_from_env(DATA_DIR_ENV_VAR, repo_root() / "data", environ)


def models_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where notebooks save trained models (``models/``, gitignored)."""
    return path_from_env(MODELS_DIR_ENV_VAR, repo_root() / "models", environ)


def records_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where notebooks record their metrics (``build/records/`` unless a course run sets it)."""
    return path_from_env(RECORDS_DIR_ENV_VAR, repo_root() / "build" / "records", environ)


def trained_model_path(dataset: str, recipe: str, profile: str,
                       environ: Mapping[str, str] | None = None) -> Path:
    """Where notebook 03 saves, and notebook 05 looks for, a trained model.

    The profile is part of the name so a ``teach`` run never picks up a ``smoke`` model.

    >>> trained_model_path("cifar10", "paper", "smoke", environ={"TLCNN_MODELS_DIR": "/m"}).as_posix()
    '/m/cifar10_paper_smoke.keras'
    """
    return models_dir(environ) / f"{dataset}_{recipe}_{profile}.keras"


OFFLINE_ENV_VAR = "TLCNN_OFFLINE"


def offline_mode(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``TLCNN_OFFLINE`` is set (to anything but ``0``): never try the network.

    Downloads of datasets and pretrained weights are then refused at once with a clear
    message instead of being attempted; the test-suite runs this way.

    >>> offline_mode(environ={"TLCNN_OFFLINE": "1"}), offline_mode(environ={})
    (True, False)
    """
    env = os.environ if environ is None else environ
    return env.get(OFFLINE_ENV_VAR, "0") not in ("", "0")


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` so a reader sees the old file or the new one, never half.

    The text goes to a temporary file in the same folder, which then replaces ``path``;
    if anything fails on the way, the temporary file is removed and ``path`` is untouched.

    >>> import tempfile
    >>> write_text_atomic(Path(tempfile.mkdtemp()) / "a" / "x.txt", "hi").read_text()
    'hi'
    """
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
