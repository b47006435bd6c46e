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

Used by every notebook (the 9 shared classes of CIFAR-10 and STL-10), the ``train`` and
``tune`` commands.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

from . import synthetic
from .archives import _prepare, _require_file
from .errors import (
    ArrayFormatError,
    DataError,
    DatasetFormatError,
    DatasetNotFoundError,
)
from .settings import default_data_dir

if TYPE_CHECKING:
    from .settings import Profile

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


def stratified_split(labels: np.ndarray, held_out: float | int, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(kept, held_out)`` that keep the class proportions of ``labels``, sorted.

    ``held_out`` is a fraction in (0, 1) or a number of examples. The one splitter of the
    course (validation splits, subsets, per-class picks), by scikit-learn's
    ``train_test_split(..., stratify=labels)``; the same for a seed.

    >>> kept, held = stratified_split(np.array([0] * 6 + [1] * 4), 0.5, seed=0)
    >>> len(kept), np.bincount(np.array([0] * 6 + [1] * 4)[held]).tolist()
    (5, [3, 2])
    >>> held = stratified_split(np.repeat(np.arange(9), 4), 0.2)[1]  # 20% of 36 is 7.2
    >>> np.bincount(np.repeat(np.arange(9), 4)[held]).tolist()  # still one of each class
    [1, 1, 1, 1, 1, 1, 1, 1, 1]
    """
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    classes = len(np.unique(labels))
    if isinstance(held_out, float) and classes and len(labels) >= 2 * classes:
        # At least one of each class is held out, however small the share.
        held_out = min(max(math.ceil(held_out * len(labels)), classes), len(labels) - classes)
    try:
        kept, held = train_test_split(rows, test_size=held_out, stratify=labels,
                                      random_state=seed)
    except ValueError as err:
        raise DataError(f"cannot split {len(labels)} labels ({np.bincount(labels).tolist() if len(labels) else []} "
                        f"per class) into a held-out part of {held_out}: {err}. Use more images "
                        f"per class or a larger held-out part.") from err
    return np.sort(kept), np.sort(held)


def stratified_subset(x: np.ndarray, y: np.ndarray, size: int | None, seed: int = 0) -> Split:
    """At most ``size`` examples with every class kept in proportion; deterministic.

    >>> x, y = np.zeros((10, 1)), np.array([0] * 5 + [1] * 5)
    >>> np.bincount(stratified_subset(x, y, 4)[1]).tolist()
    [2, 2]
    """
    synthetic.check_arrays(x, y, error=ArrayFormatError)
    if size is None or size >= len(y):
        return x, y
    _, keep = stratified_split(y, size, seed)
    return x[keep], y[keep]


@dataclass(frozen=True)
class SplitData:
    """Images and integer labels of one split (what :func:`train_val_split` returns)."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


def train_val_split(x: np.ndarray, y: np.ndarray, val_fraction: float = 0.1, seed: int = 0
                    ) -> tuple[SplitData, SplitData]:
    """Hold out a stratified ``val_fraction`` of the training data for validation.

    >>> x, y = np.zeros((20, 1)), np.array([0] * 10 + [1] * 10)
    >>> train, val = train_val_split(x, y, 0.2, seed=0)
    >>> len(train), len(val), np.bincount(val.y).tolist()
    (16, 4, [2, 2])
    """
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction={val_fraction}: use a number between 0 and 1, such as 0.1")
    if len(x) != len(y):
        raise DataError(f"{len(x)} images but {len(y)} labels: they must match")
    kept, held = stratified_split(y, val_fraction, seed)
    return SplitData(x[kept], y[kept]), SplitData(x[held], y[held])


def pick_per_class(labels: np.ndarray, num_classes: int, per_class: int, seed: int = 0
                   ) -> list[np.ndarray]:
    """Indices of about ``per_class`` examples of each class (exactly, for balanced labels).

    >>> [idx.tolist() for idx in pick_per_class(np.array([0, 1, 0, 1, 0, 1]), 2, 2)]
    [[0, 2], [1, 3]]
    """
    labels = np.asarray(labels)
    wanted = per_class * num_classes
    keep = (np.arange(len(labels)) if wanted >= len(labels)
            else stratified_split(labels, wanted, seed)[1])
    return [keep[labels[keep] == label][:per_class] for label in range(num_classes)]


def load_dataset(name: str, profile: Profile, data_dir: str | os.PathLike | None = None,
                 classes: str | Sequence[str] = "shared", download: bool = True
                 ) -> tuple[Split, Split]:
    """Load ``"cifar10"`` or ``"stl10"`` as a profile says: source, subset sizes, seed.

    ``download=False`` never downloads: missing or damaged official files are an error.

    >>> import tempfile
    >>> from tlcnn_helpers.settings import get_profile
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


def photograph_views(size: int = 96, *, crops: Sequence[float] = (1.0, 0.87, 0.73),
                     positions: int = 3, flips: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Views of a real photograph of a cat (scikit-image's ``chelsea``, 300x451) at ``size`` px.

    CIFAR-10 and STL-10 photos cannot be downloaded everywhere; this one ships inside
    scikit-image. Square crops (``crops`` x the photo's height, at ``positions`` places
    from left to right, each also mirrored with ``flips``) are shrunk with antialiasing to
    ``size`` px, so the views are sharp at every size, unlike upsampled CIFAR-10 images.
    Returns ``(uint8 images, labels)``; the label is the index of "cat" in
    :data:`SHARED_CLASSES`. One photograph: many views of it are not many photographs.

    >>> images, labels = photograph_views(48, crops=(1.0,), positions=2, flips=False)
    >>> images.shape, [SHARED_CLASSES[i] for i in labels]
    ((2, 48, 48, 3), ['cat', 'cat'])
    """
    from PIL import Image
    from skimage import data as skimage_data

    photo = skimage_data.chelsea()
    height, width = photo.shape[:2]
    views = []
    for fraction in crops:
        side = int(round(height * fraction))
        top = (height - side) // 2
        for left in np.linspace(0, width - side, positions).round().astype(int):
            crop = Image.fromarray(photo[top:top + side, left:left + side])
            view = np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS))
            views += [view, view[:, ::-1]] if flips else [view]
    labels = np.full(len(views), SHARED_CLASSES.index("cat"), "int64")
    return np.stack(views).astype("uint8"), labels
