"""CIFAR-10 and STL-10 loaders: official file formats, the paper's 9 shared classes.

Both loaders return ``(x_train, y_train), (x_test, y_test)`` like ``keras.datasets``:
uint8 images of shape (N, 32, 32, 3) or (N, 96, 96, 3) and int64 labels. By default the
labels index :data:`SHARED_CLASSES` (CIFAR's "automobile" is "car"; CIFAR's "frog" and
STL's "monkey" are dropped), as in the paper.

Where the files are: ``data_dir``, else ``TLCNN_DATA_DIR``, else the checkout's ``data/``.
A folder (``cifar-10-batches-py/``, ``cifar-10-batches-bin/``, ``stl10_binary/``) is read
as it is; an official archive lying there is checked against its MD5 and extracted
safely; with neither, the archive is downloaded (to a temporary name, renamed into place
once its MD5 matches). An archive whose MD5 is not the expected one is never deleted or
overwritten: pass ``md5=`` for a copy you trust, or move it away. Checking, downloading and
extracting hold a lock on the folder (``.tlcnn-data.lock``), so processes sharing it wait
for each other; a read-only folder is extracted into a per-user cache folder instead.

``source="synthetic"`` writes small learnable datasets in the same formats (see
:mod:`tlcnn_helpers.synthetic`) and reads them back through the same parsers.

>>> (x_train, y_train), (x_test, y_test) = load_cifar10(source="synthetic",
...     synthetic_per_class=(5, 2), data_dir=__import__("tempfile").mkdtemp())
>>> x_train.shape, x_train.dtype, sorted(set(y_train.tolist())) == list(range(9))
((45, 32, 32, 3), dtype('uint8'), True)

Peak memory (``python benchmarks/loader_memory.py``, peak resident memory above the
process's size before the call; see ``benchmarks/README.md``): ``load_cifar10`` on the full
CIFAR-10 (45,000 + 5,000 images here) about 335 MB for a 132 MB result (9 classes), in
either format: the converted batches are joined at the end. ``load_stl10`` reads the
images in chunks of 500: about 335 MB for a 309 MB result (9 classes of 5,000 + 8,000
images; measured on synthetic files of the official size, as no real STL-10 is at hand).
Neither ever makes a float copy: conversion to floats happens batch by batch in the
input pipeline.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import http.client
import io
import math
import os
import pickle
import pickletools
import shutil
import sys
import tarfile
import tempfile
import threading
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

from . import synthetic
from .errors import (
    ArrayFormatError,
    DataError,
    DataFolderNotWritableError,
    DatasetFormatError,
    DatasetNotFoundError,
    DownloadError,
    NotEnoughSpaceError,
    UnsafeArchiveError,
)
from .paths import OFFLINE_ENV_VAR, default_data_dir, offline_mode

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent first loads are not guarded
    fcntl = None

if TYPE_CHECKING:
    from .profiles import Profile

SHARED_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "ship", "truck")
CIFAR10_CLASSES = synthetic.CIFAR10_CLASSES
STL10_CLASSES = synthetic.STL10_CLASSES
_ALIASES = {"automobile": "car"}

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_BINARY_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_BINARY_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
STL10_URL = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
STL10_MD5 = "91f7769df0f17e558f3565bffb0c7dfb"

CIFAR_ROW_BYTES = 1 + 32 * 32 * 3
STL_IMAGE_BYTES = 3 * 96 * 96
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
# Members of the STL-10 archive that the loader uses; unlabeled_X.bin (2.7 GB) never is.
STL10_MEMBERS = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "class_names.txt",
                 "fold_indices.txt")

# The official python batches: at most 10,000 rows, about 31 MB; a protocol-2 re-pickle of
# one can take twice that (pixels as latin-1 text), so anything larger is not a batch.
MAX_BATCH_ROWS = 10_000
MAX_BATCH_FILE_BYTES = 64 * 2**20
LOCK_NAME = ".tlcnn-data.lock"
DATASETS = {"cifar10": CIFAR10_CLASSES, "stl10": STL10_CLASSES}

Split = tuple[np.ndarray, np.ndarray]


# ---------------------------------------------------------------------------- classes
def select_classes(dataset_classes: Sequence[str], classes: str | Sequence[str]) -> list[str]:
    """The class names a loader returns, in label order.

    ``"shared"`` gives :data:`SHARED_CLASSES`; ``"all"`` the dataset's own ten in official
    order; a list picks classes by name (``"car"`` and ``"automobile"`` both work for CIFAR).

    >>> select_classes(CIFAR10_CLASSES, ["cat", "automobile"])
    ['cat', 'car']
    """
    canonical = [_ALIASES.get(c, c) for c in dataset_classes]
    if isinstance(classes, str):
        if classes == "shared":
            return list(SHARED_CLASSES)
        if classes == "all":
            return canonical
        raise DataError(f"classes={classes!r} is not understood: use \"shared\" (the 9 classes "
                        f"both datasets have), \"all\", or a list of class names")
    chosen = [_ALIASES.get(str(c).lower(), str(c).lower()) for c in classes]
    if not chosen:
        raise DataError(f"classes={list(classes)} names no class: name at least one, or use "
                        f"\"shared\" or \"all\"")
    unknown = [c for c in chosen if c not in canonical]
    if unknown:
        raise DataError(f"unknown class name(s) {unknown} in classes=: this dataset's classes are "
                        f"{', '.join(canonical)}")
    if len(set(chosen)) != len(chosen):
        raise DataError(f"classes={list(classes)} names a class twice: list each class once")
    return chosen


def _relabel(labels: np.ndarray, dataset_classes: Sequence[str], chosen: Sequence[str]
             ) -> tuple[np.ndarray, np.ndarray]:
    """Map official labels to indices into ``chosen``; returns (keep mask, new labels)."""
    canonical = [_ALIASES.get(c, c) for c in dataset_classes]
    lookup = np.full(len(canonical), -1, dtype=np.int64)
    for new, name in enumerate(chosen):
        lookup[canonical.index(name)] = new
    mapped = lookup[labels]
    keep = mapped >= 0
    return keep, mapped[keep]


# ---------------------------------------------------------------------------- pickles
class _CifarUnpickler(pickle.Unpickler):
    """Admits only what CIFAR-10 batches contain, and only allocations the file can fill.

    No code runs (only NumPy array reconstruction and latin-1 text are admitted), and no
    array larger than the file is created, so a few bytes cannot claim gigabytes.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }
    # Plain numeric dtypes only: no objects, no structured (void) types.
    DTYPES = {f"{kind}{size}" for kind in "uif" for size in (1, 2, 4, 8)} | {"b1"}

    def __init__(self, file: io.BytesIO, limit: int) -> None:
        super().__init__(file, encoding="bytes")
        self.limit = limit

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR-10 batch")
        guards = {"_reconstruct": self._reconstruct, "dtype": self._dtype, "scalar": self._scalar,
                  "encode": self._encode, "ndarray": _NdarrayToken, "_frombuffer": self._frombuffer}
        super().find_class(module, name)  # the same import errors as before
        return guards[name]

    def _dtype(self, spec, *args):
        text = spec.decode("latin-1") if isinstance(spec, bytes) else str(spec)
        dtype = np.dtype(text)
        if dtype.str[1:] not in self.DTYPES:
            raise pickle.UnpicklingError(f"dtype {text!r} is not allowed in a CIFAR-10 batch")
        return np.dtype(text, *args)

    def _reconstruct(self, subtype, shape, dtype):
        dtype = self._dtype(dtype) if not isinstance(dtype, np.dtype) else dtype
        if subtype is not _NdarrayToken or not all(type(n) is int and n >= 0 for n in shape) \
                or math.prod(shape) * dtype.itemsize > self.limit:
            raise pickle.UnpicklingError(f"an array of shape {shape} cannot come from a file of "
                                         f"{self.limit:,} bytes")
        return np.ndarray(shape, dtype)  # what numpy's _reconstruct does, now bounded

    def _scalar(self, dtype, data=None):
        if dtype.str[1:] not in self.DTYPES:
            raise pickle.UnpicklingError(f"scalar of dtype {dtype} is not allowed")
        return np.frombuffer(data, dtype, count=1)[0] if data is not None else dtype.type(0)

    def _frombuffer(self, buffer, dtype, shape, order):
        if dtype.str[1:] not in self.DTYPES:
            raise pickle.UnpicklingError(f"dtype {dtype} is not allowed in a CIFAR-10 batch")
        return np.frombuffer(buffer, dtype).reshape(shape, order=order)  # a view: no allocation

    @staticmethod
    def _encode(text, encoding="utf-8"):
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise pickle.UnpicklingError("only latin-1 text is allowed in a CIFAR-10 batch")
        return text.encode("latin-1")


class _NdarrayToken:
    """Stands for ``numpy.ndarray`` in a batch: passed to ``_reconstruct``, never called
    (a direct call could build arrays over a few bytes with zero strides, or allocate)."""

    def __new__(cls, *args, **kwargs):
        raise pickle.UnpicklingError("numpy.ndarray(...) is not called in a CIFAR-10 batch")


def _unpickle(path: Path) -> dict:
    size = path.stat().st_size
    fix = (f"it is truncated, corrupted or not from the official archive. Delete the folder "
           f"{path.parent} and copy or download it again (the archive is re-extracted "
           f"automatically).")
    if size > MAX_BATCH_FILE_BYTES:
        raise DatasetFormatError(f"{path} is {size:,} bytes; a CIFAR-10 python batch is at most "
                                 f"{MAX_BATCH_FILE_BYTES:,}: {fix}")
    raw = path.read_bytes()
    try:
        # Walk the opcodes first: every length they declare must fit in the file, as
        # pickle itself would allocate a declared bytearray before reading it.
        for _ in pickletools.genops(raw):
            pass
        record = _CifarUnpickler(io.BytesIO(raw), limit=size).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError,
            IndexError, MemoryError, OverflowError) as err:
        raise DatasetFormatError(f"{path} is not a readable CIFAR-10 python batch ({err}): {fix}"
                                 ) from err
    if not isinstance(record, dict):
        raise DatasetFormatError(f"{path} does not hold a CIFAR-10 batch (a dict); replace it "
                                 f"with the official file")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in record.items()}


def _read_cifar_python_batch(path: Path) -> Split:
    """One batch, checked against the official schema before anything is converted."""
    record = _unpickle(path)
    fix = "Replace it with the official file (delete the folder; the archive is re-extracted)."
    if "data" not in record or "labels" not in record:
        raise DatasetFormatError(f"{path} lacks 'data' or 'labels': it is not a CIFAR-10 batch. "
                                 f"{fix}")
    data, labels = record["data"], record["labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        what = f"dtype {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetFormatError(f"{path} holds 'data' of {what}; a CIFAR-10 batch holds uint8 "
                                 f"pixels (converting would change them). {fix}")
    if not isinstance(labels, list) or not all(type(v) is int for v in labels):
        what = type(labels).__name__ if not isinstance(labels, list) else \
            f"a list holding {type(next(v for v in labels if type(v) is not int)).__name__}"
        raise DatasetFormatError(f"{path} holds 'labels' as {what}; a CIFAR-10 batch has a list "
                                 f"of ints. {fix}")
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise DatasetFormatError(
            f"{path} holds data of shape {data.shape} and {len(labels)} labels; a CIFAR-10 batch "
            f"has N rows of 3072 pixels and N labels. {fix}")
    if len(data) > MAX_BATCH_ROWS:
        raise DatasetFormatError(f"{path} holds {len(data):,} rows; an official batch has at most "
                                 f"{MAX_BATCH_ROWS:,}. {fix}")
    if data.nbytes > path.stat().st_size:  # pixels that were never stored in the file
        raise DatasetFormatError(f"{path} claims {len(data):,} images ({data.nbytes:,} bytes of "
                                 f"pixels) but is only {path.stat().st_size:,} bytes. {fix}")
    return data, np.asarray(labels, dtype=np.int64)


def _read_cifar_binary_batch(path: Path) -> Split:
    size = path.stat().st_size
    if size > MAX_BATCH_ROWS * CIFAR_ROW_BYTES:
        raise DatasetFormatError(
            f"{path} is {size:,} bytes, more than {MAX_BATCH_ROWS:,} CIFAR-10 rows: it is not an "
            f"official binary batch. Delete it and copy or download the official archive again.")
    if size == 0 or size % CIFAR_ROW_BYTES:
        raise DatasetFormatError(
            f"{path} is {size:,} bytes, not a whole number of {CIFAR_ROW_BYTES}-byte CIFAR-10 rows "
            f"(1 label byte + 3072 pixel bytes): it is truncated or not a CIFAR-10 binary batch. "
            f"Delete it and copy or download the official archive again.")
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, CIFAR_ROW_BYTES)
    return raw[:, 1:], raw[:, 0].astype(np.int64)


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise DatasetFormatError(
            f"{path} is a folder (or not a regular file), not a dataset file: move it away and "
            f"copy the official file there, or delete {path.parent} and extract the archive again.")


def _check_labels(labels: np.ndarray, low: int, high: int, path: Path) -> None:
    if labels.size and (labels.min() < low or labels.max() > high):
        bad = labels[(labels < low) | (labels > high)][0]
        raise DatasetFormatError(
            f"{path} has label {int(bad)}, outside {low}..{high}: the file is corrupted or from "
            f"another dataset. Replace it with the official file.")


def _read_cifar_split(folder: Path, names: Sequence[str], binary: bool, chosen: Sequence[str]
                      ) -> Split:
    images, labels = [], []
    for name in names:
        path = folder / (f"{name}.bin" if binary else name)
        if not path.exists():
            raise DatasetFormatError(f"{path} is missing from {folder}: the folder is incomplete. "
                                     f"Delete it and copy or download the official archive again.")
        _require_file(path)
        rows, batch_labels = (_read_cifar_binary_batch if binary else _read_cifar_python_batch)(path)
        _check_labels(batch_labels, 0, 9, path)
        keep, new_labels = _relabel(batch_labels, CIFAR10_CLASSES, chosen)
        images.append(rows[keep].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy())
        labels.append(new_labels)
        del rows
    return np.concatenate(images), np.concatenate(labels)


# ---------------------------------------------------------------------------- archives
def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _safe_member_path(target: Path, member: tarfile.TarInfo, archive: Path) -> Path:
    name = PurePosixPath(member.name)
    destination = (target / name).resolve()
    if name.is_absolute() or ".." in name.parts or not destination.is_relative_to(target.resolve()):
        raise UnsafeArchiveError(
            f"{archive} contains the member {member.name!r}, which would be written outside "
            f"{target}. The archive is not the official one: delete it and download it again.")
    if member.issym() or member.islnk() or member.isdev():
        raise UnsafeArchiveError(
            f"{archive} contains the link or device {member.name!r}; the official archive has "
            f"only files and folders. Delete it and download it again.")
    return destination


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# Locks held by this process: folder -> [thread lock, file descriptor, depth]. flock is per
# open file, so a second flock on the same file from this process would wait for itself.
_HELD: dict[Path, list] = {}
_HELD_GUARD = threading.Lock()


@contextlib.contextmanager
def _data_lock(folder: Path, doing: str) -> Iterator[None]:
    """Hold ``folder/.tlcnn-data.lock`` (re-entrant); say whom we wait for if it is taken."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _not_writable(folder, err) from err
    key = folder.resolve()
    with _HELD_GUARD:
        entry = _HELD.setdefault(key, [threading.RLock(), None, 0])
    with entry[0]:
        if entry[2] == 0:
            entry[1] = _acquire_file_lock(key, doing)
        entry[2] += 1
        try:
            yield
        finally:
            entry[2] -= 1
            if entry[2] == 0 and entry[1] is not None:
                os.close(entry[1])  # releases the flock
                entry[1] = None


def _acquire_file_lock(folder: Path, doing: str) -> int | None:
    if fcntl is None:
        return None
    path = folder / LOCK_NAME
    try:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:  # another user's lock file: locking needs no write access
            fd = os.open(path, os.O_RDONLY)
    except OSError as err:
        raise _not_writable(folder, err) from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip().split(" ", 1)
        pid, what = (holder + ["", ""])[:2] if holder[0] else ("?", "")
        _note(f"waiting for PID {pid} to finish {what or 'its work'} (lock {path}) ...")
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as err:  # e.g. ENOLCK on some network file systems
        _note(f"cannot lock {path} ({err}); going on without: do not load the same dataset "
              f"into {folder} from several processes at once")
    with contextlib.suppress(OSError):  # read-only lock file: nobody learns our PID
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {doing}\n".encode(), 0)
    return fd


def _not_writable(folder: Path, err: OSError) -> DataError:
    return DataFolderNotWritableError(
        f"cannot write into {folder} ({err.strerror or err}). Set TLCNN_DATA_DIR (or pass "
        f"data_dir=) to a writable folder; an archive can stay where it is if you copy or link it "
        f"there.")


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove_stale(folder: Path, archive_name: str) -> None:
    """With the lock held, staging folders and partial downloads left here are stale.

    Loaders download and extract only under the lock. A direct :func:`extract_archive`
    call does not lock, so a staging folder named after a live process is kept.
    """
    for leftover in [*folder.glob(".extracting-*"), *folder.glob(f".{archive_name}.*.part")]:
        parts = leftover.name.split("-")  # .extracting-<pid>-<random>
        if leftover.name.startswith(".extracting-") and len(parts) > 2 and _alive(parts[1]):
            continue
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _wanted(member: tarfile.TarInfo, members: Sequence[str] | None) -> bool:
    return member.isfile() and (members is None or PurePosixPath(member.name).name in members)


def _needed_mb(archive: Path, members: Sequence[str] | None) -> str:
    try:
        with tarfile.open(archive, "r:*") as tar:
            return f"{sum(m.size for m in tar if _wanted(m, members)) / 1e6:,.0f} MB"
    except (tarfile.TarError, OSError, EOFError, zlib.error):
        return f"more than {archive.stat().st_size / 1e6:,.0f} MB"


def extract_archive(archive: str | os.PathLike, target: str | os.PathLike,
                    members: Sequence[str] | None = None, *, checked: bool = False) -> Path:
    """Extract a .tar.gz into ``target`` safely; returns ``target``.

    Every member is checked before it is written: no absolute path, no ``..``, no links.
    Extraction goes to a temporary folder inside ``target`` and each top-level folder is
    moved into place only when the whole archive was read, so an interrupted or refused
    extraction never leaves half a dataset behind and never touches existing folders: a
    folder already there (another process finished first, or the user's own) is kept.
    ``members`` limits extraction to files with those base names (STL-10's 2.7 GB
    ``unlabeled_X.bin`` is skipped this way). ``checked=True`` says the archive's MD5 was
    verified, so a failure is never blamed on the archive. A full disk raises
    :class:`~tlcnn_helpers.errors.NotEnoughSpaceError` saying how much is needed.

    >>> import tempfile, tarfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "a").mkdir(); _ = (d / "a" / "x.txt").write_text("1")
    >>> with tarfile.open(d / "a.tar.gz", "w:gz") as tar: tar.add(d / "a", arcname="a")
    >>> (extract_archive(d / "a.tar.gz", d / "out") / "a" / "x.txt").read_text()
    '1'
    """
    archive, target = Path(archive), Path(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
        # The PID in the name tells a live extraction from one a killed process left.
        staging = Path(tempfile.mkdtemp(dir=target, prefix=f".extracting-{os.getpid()}-"))
    except OSError as err:
        raise _not_writable(target, err) from err
    try:
        _extract_into(staging, archive, target, members, checked)
        for top in staging.iterdir():
            final = target / top.name
            if final.exists():  # the first finished extraction wins; nothing is replaced
                continue
            try:
                os.rename(top, final)
            except OSError:
                if not final.exists():
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _extract_into(staging: Path, archive: Path, target: Path, members: Sequence[str] | None,
                  checked: bool) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                _safe_member_path(staging, member, archive)
                if not _wanted(member, members):  # folders are made as files need them
                    continue
                if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                    tar.extract(member, staging, filter="data")
                else:
                    tar.extract(member, staging)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        if checked:
            raise DataError(
                f"{archive} matches its MD5 but could not be extracted ({err}): the archive is "
                f"intact, so keep it; check the disk and memory of this machine and run again."
            ) from err
        raise DatasetFormatError(
            f"{archive} could not be read as a .tar.gz archive ({err}): it is truncated or "
            f"corrupted. Delete it and download it again.") from err
    except OSError as err:  # the system failed, not the archive
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            shutil.rmtree(staging, ignore_errors=True)  # so the free space below is honest
            free = shutil.disk_usage(target).free / 1e6
            raise NotEnoughSpaceError(
                f"not enough space in {target} to extract {archive.name}: it needs about "
                f"{_needed_mb(archive, members)} and {free:,.0f} MB are free there. The archive "
                f"is fine, keep it. Free some space, or set TLCNN_DATA_DIR (or pass data_dir=) to "
                f"a folder on a larger disk and move the archive there.") from err
        if err.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            raise _not_writable(target, err) from err
        raise DataError(f"extracting {archive} into {target} failed ({err}): a problem of the "
                        f"disk or system, not of the archive; fix it and run again.") from err


def _unknown_archive(archive: Path, actual: str, md5: str, dataset: str, loader: str | None = None
                     ) -> DatasetFormatError:
    loader = loader or {"CIFAR-10": "load_cifar10", "STL-10": "load_stl10"}.get(dataset, "the loader")
    return DatasetFormatError(
        f"{archive} has MD5 {actual}, expected {md5}: it is not the official {dataset} archive "
        f"(a re-packed or partial copy, or another file). The course did not download it, so it "
        f"is left untouched and nothing is downloaded over it. If it is a copy you trust, pass "
        f"md5=\"{actual}\" to {loader}(); otherwise move it out of {archive.parent} and run "
        f"again to use (or download) the official archive.")


def fetch_archive(url: str, md5: str, data_dir: Path, *, dataset: str) -> Path:
    """The checked archive in ``data_dir``: kept if its MD5 matches, else downloaded.

    A file already there whose MD5 differs is never deleted or overwritten: the error gives
    both hashes and the ways on. A download goes to a unique hidden ``.part`` name and is
    renamed into place only once its MD5 matches; a mismatching download is deleted and
    reported with the expected and actual hash. With no network, the error names the
    folder, the URL and the ways on.
    """
    target = data_dir / PurePosixPath(url.split("?")[0]).name
    if target.exists():
        actual = _md5(target)
        if actual == md5:
            return target
        raise _unknown_archive(target, actual, md5, dataset)
    return _download(url, md5, data_dir, dataset)


def _download(url: str, md5: str, data_dir: Path, dataset: str) -> Path:
    fname = PurePosixPath(url.split("?")[0]).name
    target = data_dir / fname
    if offline_mode():
        raise DatasetNotFoundError(
            f"no {dataset} files in {data_dir}, and {OFFLINE_ENV_VAR} is set, so {url} was not "
            f"downloaded. Either copy the official files (or archive {fname}) into {data_dir} "
            f"(or set TLCNN_DATA_DIR to where they are), unset {OFFLINE_ENV_VAR} to download, or "
            f"use PROFILE = \"smoke\" to run on synthetic data.")
    try:
        fd, name = tempfile.mkstemp(dir=data_dir, prefix=f".{fname}.", suffix=".part")
    except OSError as err:
        raise _not_writable(data_dir, err) from err
    part, digest, done, total = Path(name), hashlib.md5(), 0, 0
    try:
        try:
            _note(f"Downloading {url} into {data_dir}")
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                total = int(response.headers.get("Content-Length") or 0)
                shown = -1
                while block := response.read(1 << 20):
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    if total and (percent := 100 * done // total) // 10 != shown:
                        shown = percent // 10
                        _note(f"  {percent}% of {total / 1e6:,.0f} MB")
            if total and done < total:
                raise OSError(f"the connection closed after {done:,} of {total:,} bytes")
        except (OSError, http.client.HTTPException) as err:
            if getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
                raise NotEnoughSpaceError(
                    f"not enough space in {data_dir} to download {fname} ({total / 1e6:,.0f} MB). "
                    f"Free some space, or set TLCNN_DATA_DIR (or pass data_dir=) to a folder on a "
                    f"larger disk.") from err
            raise DatasetNotFoundError(
                f"no {dataset} files in {data_dir}, and downloading {url} failed ({err}). Either "
                f"copy the official files (or archive {fname}) into {data_dir} (or set "
                f"TLCNN_DATA_DIR to where they are), or use PROFILE = \"smoke\" to run on "
                f"synthetic data.") from err
        actual = digest.hexdigest()
        if actual != md5:
            raise DownloadError(
                f"the {dataset} archive downloaded from {url} has MD5 {actual}, expected {md5}: "
                f"the download is corrupted or incomplete and was deleted. Run again to retry.")
        try:
            os.link(part, target)  # fails rather than overwrite a file that appeared meanwhile
        except FileExistsError:
            raise _unknown_archive(target, _md5(target), md5, dataset) from None
        except OSError:  # file systems without hard links
            if target.exists():
                raise _unknown_archive(target, _md5(target), md5, dataset) from None
            os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return target


def _obtain_archive(url: str, md5: str, root: Path, work: Path, download: bool, dataset: str,
                    loader: str) -> Path | None:
    """A hash-checked archive in ``root`` (or ``work``), downloaded into ``work`` if allowed.

    None if there is none and downloading is not allowed. A file of the archive's name
    whose hash differs is refused, never replaced.
    """
    fname = PurePosixPath(url.split("?")[0]).name
    for folder in dict.fromkeys([root, work]):
        archive = folder / fname
        if archive.exists():
            _require_file(archive)
            actual = _md5(archive)  # once: STL-10's is 2.6 GB
            if actual == md5:
                return archive
            raise _unknown_archive(archive, actual, md5, dataset, loader)
    return _download(url, md5, work, dataset) if download else None


def _writable(folder: Path) -> bool:
    """Whether ``folder`` can be written (or created), without creating anything."""
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def _user_cache_dir(root: Path) -> Path:
    """Where a read-only data folder's archives are extracted: one folder per data folder."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    tag = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]
    return base / "tlcnn" / "data" / f"{root.resolve().name or 'root'}-{tag}"


def _prepare(root: Path, find: Callable[[Path], object], *, url: str, md5: str, download: bool,
             dataset: str, loader: str, members: Sequence[str] | None = None):
    """Check, download and extract under the folder's lock; returns ``find``'s result or None.

    A read-only ``root`` is extracted into :func:`_user_cache_dir` (said on stderr).
    """
    fname = PurePosixPath(url.split("?")[0]).name
    work = root if _writable(root) else _user_cache_dir(root)
    if work != root and (found := find(work)) is not None:
        return found
    if not download and not (root / fname).exists() and not (work / fname).exists():
        return None  # nothing to extract: create no lock file
    if work != root and not _writable(work):
        raise DataFolderNotWritableError(
            f"{root} is read-only and the per-user cache {work} is not writable either, so "
            f"{dataset} cannot be extracted. Set TLCNN_DATA_DIR (or pass data_dir=) to a writable "
            f"folder and copy or link {fname} there (the archive itself can stay where it is).")
    with _data_lock(work, f"extracting {dataset} into {work}"):
        if (found := find(work)) is not None:  # another process finished while we waited
            return found
        _remove_stale(work, fname)
        archive = _obtain_archive(url, md5, root, work, download, dataset, loader)
        if archive is None:
            return None
        if work != root:
            _note(f"{root} is read-only: extracting {archive.name} into {work} (set "
                  f"TLCNN_DATA_DIR or pass data_dir= to choose another writable folder)")
        extract_archive(archive, work, members=members, checked=True)
        return find(work)


def _resolve_dir(data_dir: str | os.PathLike | None) -> Path:
    return Path(data_dir).expanduser() if data_dir is not None else default_data_dir()


# ---------------------------------------------------------------------------- CIFAR-10
def _find_cifar_folder(root: Path, file_format: str) -> tuple[Path, bool] | None:
    candidates = {"python": [("cifar-10-batches-py", False)],
                  "binary": [("cifar-10-batches-bin", True)]}
    order = candidates["python"] + candidates["binary"] if file_format == "auto" \
        else candidates[file_format]
    for name, binary in order:
        if (root / name).is_dir():
            return root / name, binary
    return None


def load_cifar10(data_dir: str | os.PathLike | None = None, *, source: str = "official",
                 classes: str | Sequence[str] = "shared", file_format: str = "auto",
                 download: bool = True, url: str | None = None, md5: str | None = None,
                 synthetic_per_class: tuple[int, int] = (200, 60), seed: int = 0
                 ) -> tuple[Split, Split]:
    """Load CIFAR-10 as ``(x_train, y_train), (x_test, y_test)``: uint8 (N, 32, 32, 3).

    ``file_format`` is ``"python"`` (pickled batches), ``"binary"`` or ``"auto"`` (whichever
    is there, python first). The archive fetched when no folder is there is the official
    python version (the binary one for ``file_format="binary"``), unless ``url`` and ``md5``
    name another. ``source="synthetic"`` writes and reads a small learnable
    stand-in with ``synthetic_per_class`` = (train, test) images per class.

    >>> import tempfile
    >>> (x, y), _ = load_cifar10(tempfile.mkdtemp(), source="synthetic", classes="all",
    ...                          synthetic_per_class=(3, 1), file_format="binary")
    >>> x.shape, int(y.max())
    ((30, 32, 32, 3), 9)
    """
    _check_choice("source", source, ("official", "synthetic"))
    _check_choice("file_format", file_format, ("auto", "python", "binary"))
    chosen = select_classes(CIFAR10_CLASSES, classes)
    root = _resolve_dir(data_dir)
    if source == "synthetic":
        root = _synthetic_root(root, "cifar10", synthetic_per_class, seed)
        if _find_cifar_folder(root, file_format) is None:
            synthetic.write_cifar10(root, *synthetic_per_class, seed=seed)
    found = _find_cifar_folder(root, file_format)
    if found is None:
        if url is None:
            binary_wanted = file_format == "binary" or (
                file_format == "auto" and (root / PurePosixPath(CIFAR10_BINARY_URL).name).exists()
                and not (root / PurePosixPath(CIFAR10_URL).name).exists())
            url, official_md5 = (CIFAR10_BINARY_URL, CIFAR10_BINARY_MD5) if binary_wanted \
                else (CIFAR10_URL, CIFAR10_MD5)
            md5 = md5 or official_md5  # md5= alone: a known copy under the official name
        elif md5 is None:
            raise DataError(f"url={url!r} needs md5= too: the archive's hash is always checked")
        found = _prepare(root, lambda d: _find_cifar_folder(d, file_format), url=url, md5=md5,
                         download=download, dataset="CIFAR-10", loader="load_cifar10")
        if found is None:
            raise DatasetNotFoundError(
                f"no CIFAR-10 files in {root} (looked for cifar-10-batches-py/, "
                f"cifar-10-batches-bin/ and {PurePosixPath(url).name}). Copy them there, set "
                f"TLCNN_DATA_DIR, or use PROFILE = \"smoke\" for synthetic data.")
    folder, binary = found
    train = _read_cifar_split(folder, CIFAR_TRAIN_BATCHES, binary, chosen)
    test = _read_cifar_split(folder, ("test_batch",), binary, chosen)
    return train, test


# ---------------------------------------------------------------------------- STL-10
def _read_stl_split(folder: Path, split: str, chosen: Sequence[str]) -> Split:
    x_path, y_path = folder / f"{split}_X.bin", folder / f"{split}_y.bin"
    for path in (x_path, y_path):
        if not path.exists():
            raise DatasetFormatError(f"{path} is missing: the stl10_binary folder is incomplete. "
                                     f"Delete {folder} and extract the official archive again.")
        _require_file(path)
    labels = np.fromfile(y_path, dtype=np.uint8).astype(np.int64)
    x_size = x_path.stat().st_size
    if x_size % STL_IMAGE_BYTES or x_size // STL_IMAGE_BYTES != len(labels):
        raise DatasetFormatError(
            f"{x_path} is {x_size:,} bytes, but {y_path.name} has {len(labels)} labels, which "
            f"needs {len(labels) * STL_IMAGE_BYTES:,} bytes ({STL_IMAGE_BYTES} a 96x96 RGB image): "
            f"one of them is truncated. Delete {folder} and extract the official archive again.")
    _check_labels(labels, 1, 10, y_path)
    keep, new_labels = _relabel(labels - 1, STL10_CLASSES, chosen)
    images = np.empty((int(keep.sum()), 96, 96, 3), dtype=np.uint8)
    filled = 0
    with open(x_path, "rb") as f:  # chunk by chunk: the peak stays near the result's size
        for start in range(0, len(labels), 500):
            count = min(500, len(labels) - start)
            chunk = np.frombuffer(f.read(count * STL_IMAGE_BYTES), dtype=np.uint8)
            chunk = chunk.reshape(count, 3, 96, 96)[keep[start:start + count]]
            images[filled:filled + len(chunk)] = chunk.transpose(0, 3, 2, 1)
            filled += len(chunk)
    return images, new_labels


def load_stl10(data_dir: str | os.PathLike | None = None, *, source: str = "official",
               classes: str | Sequence[str] = "shared", download: bool = True,
               url: str = STL10_URL, md5: str = STL10_MD5,
               synthetic_per_class: tuple[int, int] = (200, 60), seed: int = 0
               ) -> tuple[Split, Split]:
    """Load STL-10's labelled splits as uint8 (N, 96, 96, 3) images and int labels.

    Reads ``stl10_binary/`` (pixels column-major per channel, labels 1..10 in the files,
    0-based here). The official archive is 2.6 GB; only the labelled files are extracted
    from it, never ``unlabeled_X.bin``.

    >>> import tempfile
    >>> (x, y), (xt, yt) = load_stl10(tempfile.mkdtemp(), source="synthetic",
    ...                               synthetic_per_class=(2, 1))
    >>> x.shape, xt.shape
    ((18, 96, 96, 3), (9, 96, 96, 3))
    """
    _check_choice("source", source, ("official", "synthetic"))
    chosen = select_classes(STL10_CLASSES, classes)
    root = _resolve_dir(data_dir)
    if source == "synthetic":
        root = _synthetic_root(root, "stl10", synthetic_per_class, seed)
        if not (root / "stl10_binary").is_dir():
            synthetic.write_stl10(root, *synthetic_per_class, seed=seed)
    folder = root / "stl10_binary"
    if not folder.is_dir():
        found = _prepare(root, lambda d: d / "stl10_binary" if (d / "stl10_binary").is_dir()
                         else None, url=url, md5=md5, download=download, dataset="STL-10",
                         loader="load_stl10", members=STL10_MEMBERS)
        if found is None:
            raise DatasetNotFoundError(
                f"no STL-10 files in {root} (looked for stl10_binary/ and "
                f"{PurePosixPath(url).name}). Copy them there, set TLCNN_DATA_DIR, or use "
                f"PROFILE = \"smoke\" for synthetic data.")
        folder = found
    return _read_stl_split(folder, "train", chosen), _read_stl_split(folder, "test", chosen)


# ---------------------------------------------------------------------------- profiles
def _synthetic_root(root: Path, name: str, per_class: tuple[int, int], seed: int) -> Path:
    train, test = per_class
    if train < 1 or test < 1:
        raise DataError(f"synthetic_per_class={per_class}: both counts must be at least 1")
    return root / "synthetic" / f"{name}-seed{seed}-{train}x{test}"


def _check_choice(argument: str, value: str, valid: Sequence[str]) -> None:
    if value not in valid:
        raise DataError(f"{argument}={value!r} is not one of {', '.join(map(repr, valid))}")


def stratified_subset(x: np.ndarray, y: np.ndarray, size: int | None, seed: int = 0) -> Split:
    """At most ``size`` examples with every class kept in proportion; deterministic.

    >>> x, y = np.zeros((10, 1)), np.array([0] * 5 + [1] * 5)
    >>> np.bincount(stratified_subset(x, y, 4)[1]).tolist()
    [2, 2]
    """
    synthetic.check_arrays(x, y, error=ArrayFormatError)
    if size is None or size >= len(y):
        return x, y
    rng = np.random.default_rng(seed)
    picked = []
    classes = np.unique(y)
    for i, label in enumerate(classes):
        where = np.flatnonzero(y == label)
        share = size // len(classes) + (1 if i < size % len(classes) else 0)
        picked.append(rng.choice(where, size=min(share, len(where)), replace=False))
    order = np.sort(np.concatenate(picked))
    return x[order], y[order]


def load_dataset(name: str, profile: Profile, data_dir: str | os.PathLike | None = None,
                 classes: str | Sequence[str] = "shared", download: bool = True
                 ) -> tuple[Split, Split]:
    """Load ``"cifar10"`` or ``"stl10"`` as a profile says: source, subset sizes, seed.

    ``download=False`` never downloads: missing or damaged official files are an error.

    >>> import tempfile
    >>> from tlcnn_helpers.profiles import get_profile
    >>> (x, y), _ = load_dataset("stl10", get_profile("smoke"), data_dir=tempfile.mkdtemp())
    >>> x.shape[1:]
    (96, 96, 3)
    """
    loaders = {"cifar10": load_cifar10, "stl10": load_stl10}
    name = name.lower() if isinstance(name, str) else name
    if name not in loaders:
        raise DataError(f"unknown dataset {name!r}: use one of {', '.join(loaders)}")
    budget = profile.data
    extra = {}
    if profile.is_synthetic:
        extra = {"source": "synthetic", "seed": profile.seed,
                 "synthetic_per_class": (budget.synthetic_train_per_class,
                                         budget.synthetic_test_per_class)}
    (x_train, y_train), (x_test, y_test) = loaders[name](data_dir, classes=classes,
                                                         download=download, **extra)
    train_size = budget.cifar_train if name == "cifar10" else budget.stl_train
    test_size = budget.cifar_test if name == "cifar10" else budget.stl_test
    return (stratified_subset(x_train, y_train, train_size, profile.seed),
            stratified_subset(x_test, y_test, test_size, profile.seed))


def class_names(classes: str | Sequence[str] = "shared", dataset: str = "cifar10") -> list[str]:
    """The names matching a loader's labels for the same ``classes`` argument.

    ``dataset`` is ``"cifar10"`` or ``"stl10"``, in any case.

    >>> class_names("all", "stl10")[7]
    'monkey'
    """
    key = dataset.lower() if isinstance(dataset, str) else dataset
    if key not in DATASETS:
        raise DataError(f"dataset={dataset!r} is not known: use one of "
                        f"{', '.join(map(repr, DATASETS))}")
    return select_classes(DATASETS[key], classes)


def archive_bytes(folder: str | os.PathLike) -> bytes:
    """A .tar.gz of ``folder`` in memory (for tests and for sharing synthetic data)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=Path(folder).name)
    return buffer.getvalue()


def dataset_status(data_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """What of each real dataset is in the data folder: ``"extracted"``, ``"archive"`` or ``"missing"``.

    >>> import tempfile
    >>> dataset_status(tempfile.mkdtemp())
    {'cifar10': 'missing', 'stl10': 'missing'}
    """
    root = _resolve_dir(data_dir)

    def status(folders: Sequence[str], archive: str) -> str:
        if any((root / f).is_dir() for f in folders):
            return "extracted"
        return "archive" if (root / archive).exists() else "missing"

    return {"cifar10": status(["cifar-10-batches-py", "cifar-10-batches-bin"],
                              PurePosixPath(CIFAR10_URL).name),
            "stl10": status(["stl10_binary"], PurePosixPath(STL10_URL).name)}
