"""Learnable synthetic images, written in CIFAR-10's and STL-10's official file formats.

Each class is a distinct procedural pattern (stripes at one angle, a disc, a ring, a
checkerboard, ...) drawn in resolution-independent coordinates, with random position,
scale, colour and noise. The same class therefore looks the same at 32x32 and at 96x96,
so moving a model from one size to the other is a meaningful experiment on them.

The files go through the very parsers that read the real datasets, so every smoke run
exercises the real loading code.

>>> import numpy as np
>>> images = render_images(np.array([0, 4]), CIFAR10_CLASSES, size=32, seed=0)
>>> images.shape, images.dtype
((2, 32, 32, 3), dtype('uint8'))

Used by the ``smoke`` profile of every notebook and by the tests (through :mod:`tlcnn_helpers.data`).
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship",
                 "truck")

# One pattern per class name; CIFAR's "automobile" is STL's "car".
PATTERN_OF_CLASS = {
    "airplane": "horizontal_stripes",
    "bird": "vertical_stripes",
    "car": "diagonal_stripes",
    "automobile": "diagonal_stripes",
    "cat": "checkerboard",
    "deer": "disc",
    "dog": "ring",
    "horse": "cross",
    "ship": "triangle",
    "truck": "square_outline",
    "frog": "dot_grid",
    "monkey": "concentric_rings",
}


def _grids(n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    v, u = np.meshgrid(coords, coords, indexing="ij")
    return np.broadcast_to(u, (n, size, size)), np.broadcast_to(v, (n, size, size))


def _pattern_mask(pattern: str, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A (n, size, size) float mask in [0, 1]: 1 where the pattern's foreground is."""
    u, v = _grids(n, size)

    def param(low: float, high: float) -> np.ndarray:
        return rng.uniform(low, high, size=(n, 1, 1)).astype(np.float32)

    cx, cy = param(0.35, 0.65), param(0.35, 0.65)
    du, dv = u - cx, v - cy
    if pattern.endswith("stripes"):
        base = {"horizontal_stripes": 90.0, "vertical_stripes": 0.0, "diagonal_stripes": 45.0}
        angle = np.deg2rad(base[pattern] + param(-12, 12))
        freq, phase = param(2.5, 4.0), param(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * freq * (du * np.cos(angle) + dv * np.sin(angle)) + phase)
        return (wave > 0).astype(np.float32)
    if pattern == "checkerboard":
        freq = param(2.0, 3.0)
        return ((np.sin(2 * np.pi * freq * du) * np.sin(2 * np.pi * freq * dv)) > 0).astype(np.float32)
    radius = np.sqrt(du**2 + dv**2)
    scale = param(0.22, 0.32)
    if pattern == "disc":
        return (radius < scale).astype(np.float32)
    if pattern == "ring":
        return (np.abs(radius - scale) < 0.06).astype(np.float32)
    if pattern == "concentric_rings":
        return (np.sin(2 * np.pi * radius / (scale / 2)) > 0.3).astype(np.float32)
    if pattern == "cross":
        arm = param(0.06, 0.1)
        inside = (np.abs(du) < scale) & (np.abs(dv) < scale)
        return (inside & ((np.abs(du) < arm) | (np.abs(dv) < arm))).astype(np.float32)
    if pattern == "triangle":
        return ((dv > -scale) & (dv < scale) & (np.abs(du) < (dv + scale) * 0.6)).astype(np.float32)
    if pattern == "square_outline":
        box = np.maximum(np.abs(du), np.abs(dv))
        return (np.abs(box - scale) < 0.05).astype(np.float32)
    if pattern == "dot_grid":
        freq = param(3.0, 4.0)
        return ((np.cos(2 * np.pi * freq * du) * np.cos(2 * np.pi * freq * dv)) > 0.6).astype(np.float32)
    raise ValueError(f"unknown pattern {pattern!r}")


def check_arrays(images: np.ndarray | None = None, labels: np.ndarray | None = None, *,
                 num_classes: int | None = None, images_name: str = "x",
                 labels_name: str = "y", error: type[Exception] = ValueError) -> None:
    """Refuse, with the fix, what a silent cast would damage: non-uint8 images, non-integer labels.

    ``images`` of 4 dimensions (N, H, W, C) must be uint8 (0..255): float pixels in [0, 1]
    would become 0/1 and int16 would wrap. ``labels`` must be 1-D integers (float labels
    would be truncated), in ``0..num_classes - 1`` when ``num_classes`` is given. Raises
    ``error`` with a message naming the argument.

    >>> check_arrays(np.zeros((2, 4, 4, 3), np.uint8), np.array([0, 1]), num_classes=2)
    >>> check_arrays(np.ones((1, 4, 4, 3)))
    Traceback (most recent call last):
    ...
    ValueError: x has dtype float64 with values 1.0..1.0, but images must be uint8 (0..255): multiply by 255 and cast to uint8, e.g. x = (x * 255).round().astype("uint8")
    """
    if images is not None:
        images = np.asarray(images)
        if images.ndim == 4 and images.dtype != np.uint8:
            low, high = (images.min(), images.max()) if images.size else (0, 0)
            if images.dtype.kind == "f" and 0 <= low and high <= 1:
                fix = (f"multiply by 255 and cast to uint8, e.g. {images_name} = "
                       f"({images_name} * 255).round().astype(\"uint8\")")
            elif images.dtype.kind in "fiu" and 0 <= low and high <= 255:
                fix = f"cast to uint8, e.g. {images_name} = {images_name}.round().astype(\"uint8\")"
            else:
                fix = ("values outside 0..255 would wrap or clip: rescale them to 0..255, then cast "
                       "to uint8")
            raise error(f"{images_name} has dtype {images.dtype} with values {low}..{high}, but "
                        f"images must be uint8 (0..255): {fix}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu":
            raise error(f"{labels_name} has dtype {labels.dtype}, but labels must be integer class "
                        f"indices (a cast would truncate them): if they are whole numbers use "
                        f"{labels_name}.astype(\"int64\"); if one-hot, {labels_name}.argmax(axis=1)")
        if labels.ndim != 1:
            raise error(f"{labels_name} has shape {labels.shape}; labels must be 1-D, one class "
                        f"index per image (for one-hot labels use {labels_name}.argmax(axis=1))")
        high = num_classes - 1 if num_classes is not None else None
        bad = labels[(labels < 0) | (labels > high)] if high is not None else labels[labels < 0]
        if bad.size:
            where = f"0..{high}" if high is not None else "0 or more"
            raise error(f"{labels_name} holds label {int(bad[0])}, outside {where}: labels index "
                        f"the class list; fix or drop those entries")
    if images is not None and labels is not None and len(images) != len(labels):
        raise error(f"{images_name} has {len(images)} entries but {labels_name} has "
                    f"{len(labels)}: give one label per image")


def render_images(labels: np.ndarray, class_names: Sequence[str], size: int,
                  seed: int) -> np.ndarray:
    """Render one uint8 image of ``size`` x ``size`` x 3 per label; deterministic for a seed.

    ``labels`` index into ``class_names``; each name picks its pattern.
    """
    labels = np.asarray(labels)
    check_arrays(labels=labels, num_classes=len(class_names), labels_name="labels")
    rng = np.random.default_rng(seed)
    images = np.empty((len(labels), size, size, 3), dtype=np.uint8)
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        n = len(where)
        mask = _pattern_mask(PATTERN_OF_CLASS[class_names[label]], n, size, rng)[..., None]
        foreground = rng.uniform(0.45, 1.0, size=(n, 1, 1, 3)).astype(np.float32)
        background = rng.uniform(0.0, 0.4, size=(n, 1, 1, 3)).astype(np.float32)
        noise = rng.normal(0.0, 0.06, size=(n, size, size, 3)).astype(np.float32)
        picture = mask * foreground + (1 - mask) * background + noise
        images[where] = np.clip(picture * 255.0, 0, 255).astype(np.uint8)
    return images


def _balanced_labels(num_classes: int, per_class: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.repeat(np.arange(num_classes), per_class))


def _atomic_folder(final: Path):
    """A temporary sibling folder that :func:`_publish` renames to ``final`` once complete."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}-"))


def _publish(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final`` atomically; if another process got there first, keep theirs.

    Several processes (tuning workers, notebooks) may write the same deterministic dataset
    at once: readers only ever see a complete folder, and nobody deletes one in use.
    """
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp made it owner-only; publish with normal modes
    try:
        os.replace(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows (thread-safe)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_cifar10(out_dir: str | os.PathLike, train_per_class: int = 200,
                  test_per_class: int = 60, seed: int = 0) -> Path:
    """Write synthetic CIFAR-10 in both official layouts under ``out_dir``.

    Creates ``cifar-10-batches-py/`` (pickled dicts with bytes keys: ``data_batch_1..5``,
    ``test_batch``, ``batches.meta``) and ``cifar-10-batches-bin/`` (rows of one label byte
    and 3072 pixel bytes, ``batches.meta.txt``), with all ten official classes. A folder
    that already exists is kept as it is (the first complete writer wins).

    >>> import tempfile
    >>> folder = write_cifar10(tempfile.mkdtemp(), train_per_class=5, test_per_class=2)
    >>> sorted(p.name for p in folder.iterdir())
    ['cifar-10-batches-bin', 'cifar-10-batches-py']
    """
    if train_per_class > 5000 or test_per_class > 1000:  # official batches: at most 10,000 rows
        raise ValueError(f"train_per_class={train_per_class}, test_per_class={test_per_class}: "
                         f"CIFAR-10 batches hold at most 10,000 images, so use at most 5000 and "
                         f"1000 (the official dataset's sizes)")
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    train_labels = _balanced_labels(10, train_per_class, rng)
    test_labels = _balanced_labels(10, test_per_class, rng)
    train_images = render_images(train_labels, CIFAR10_CLASSES, 32, seed + 1)
    test_images = render_images(test_labels, CIFAR10_CLASSES, 32, seed + 2)
    batches = [(f"data_batch_{i + 1}", chunk_labels, chunk_images)
               for i, (chunk_labels, chunk_images) in enumerate(
                   zip(np.array_split(train_labels, 5), np.array_split(train_images, 5), strict=True))]
    batches.append(("test_batch", test_labels, test_images))
    for layout in ("cifar-10-batches-py", "cifar-10-batches-bin"):
        final = out / layout
        tmp = _atomic_folder(final)
        for name, labels, images in batches:
            rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
            if layout.endswith("py"):
                record = {b"batch_label": name.encode(), b"labels": [int(v) for v in labels],
                          b"data": rows,
                          b"filenames": [f"synthetic_{name}_{i}.png".encode() for i in range(len(rows))]}
                with open(tmp / name, "wb") as f:
                    pickle.dump(record, f, protocol=2)
            else:
                packed = np.concatenate([labels.astype(np.uint8)[:, None], rows], axis=1)
                (tmp / f"{name}.bin").write_bytes(packed.tobytes())
        if layout.endswith("py"):
            meta = {b"num_cases_per_batch": len(batches[0][1]), b"num_vis": 3072,
                    b"label_names": [c.encode() for c in CIFAR10_CLASSES]}
            with open(tmp / "batches.meta", "wb") as f:
                pickle.dump(meta, f, protocol=2)
        else:
            (tmp / "batches.meta.txt").write_text("\n".join(CIFAR10_CLASSES) + "\n")
        _publish(tmp, final)
    return out


def write_stl10(out_dir: str | os.PathLike, train_per_class: int = 200, test_per_class: int = 60,
                seed: int = 0) -> Path:
    """Write synthetic STL-10 in the official binary layout: ``out_dir/stl10_binary/``.

    ``train_X.bin`` / ``test_X.bin`` hold 3x96x96 uint8 images, each channel stored column
    by column; ``train_y.bin`` / ``test_y.bin`` hold labels 1..10; ``class_names.txt``
    lists the ten classes. No ``unlabeled_X.bin`` is written.

    >>> import tempfile
    >>> folder = write_stl10(tempfile.mkdtemp(), train_per_class=2, test_per_class=1)
    >>> sorted(p.name for p in (folder / "stl10_binary").iterdir())
    ['class_names.txt', 'test_X.bin', 'test_y.bin', 'train_X.bin', 'train_y.bin']
    """
    out = Path(out_dir)
    final = out / "stl10_binary"
    tmp = _atomic_folder(final)
    rng = np.random.default_rng(seed)
    for split, per_class, offset in (("train", train_per_class, 1), ("test", test_per_class, 2)):
        labels = _balanced_labels(10, per_class, rng)
        images = render_images(labels, STL10_CLASSES, 96, seed + offset)
        (tmp / f"{split}_X.bin").write_bytes(images.transpose(0, 3, 2, 1).tobytes())
        (tmp / f"{split}_y.bin").write_bytes((labels + 1).astype(np.uint8).tobytes())
    (tmp / "class_names.txt").write_text("\n".join(STL10_CLASSES) + "\n")
    _publish(tmp, final)
    return out
