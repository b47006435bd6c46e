"""Pooling from scratch in NumPy, with Keras' conventions, and what pooling buys: shift tolerance.

Max pooling keeps the largest value of each window, average pooling their mean; both
follow the same output-size rule as a convolution
(:func:`~tlcnn_helpers.convolution.conv_output_size`).

>>> image = np.arange(16.0).reshape(4, 4)
>>> max_pool2d(image, 2).tolist()
[[5.0, 7.0], [13.0, 15.0]]
>>> average_pool2d(image, 2).tolist()
[[2.5, 4.5], [10.5, 12.5]]

Used by notebook 02 (pooling from scratch, global pooling, shift tolerance).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .convolution import (
    CLASSIC_KERNELS,
    _as_batch,
    _check_padding,
    _pad,
    _pair,
    _restore_rank,
    conv2d,
    to_grayscale,
)
from .errors import ModelInputError

POOL_MODES = ("max", "average")


def pool2d(x: np.ndarray, pool_size: int | Sequence[int] = 2,
           strides: int | Sequence[int] | None = None, padding: str = "valid",
           mode: str = "max") -> np.ndarray:
    """Max or average pooling like ``MaxPooling2D`` / ``AveragePooling2D``.

    ``strides`` defaults to ``pool_size``. Each channel is pooled on its own. With
    ``padding="same"`` the padded cells never count: max ignores them, average divides by
    the number of real cells in the window (as TensorFlow does).

    >>> pool2d(np.arange(16.0).reshape(4, 4), 2, mode="average").tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """
    if mode not in POOL_MODES:
        raise ModelInputError(f"mode={mode!r}: use 'max' or 'average'")
    batch, rank = _as_batch(x, "x")
    window = _pair(pool_size, "pool_size")
    step = window if strides is None else _pair(strides, "strides")
    _check_padding(padding)
    values = batch.astype(np.result_type(batch.dtype, np.float32))
    if mode == "max":
        padded = _pad(values, window, step, padding, fill=-np.inf)
        windows = sliding_window_view(padded, window, axis=(1, 2))[:, ::step[0], ::step[1]]
        out = windows.max(axis=(-2, -1))
    else:
        padded = _pad(values, window, step, padding, fill=0.0)
        real = _pad(np.ones_like(values[..., :1]), window, step, padding, fill=0.0)
        sums = sliding_window_view(padded, window, axis=(1, 2))[:, ::step[0], ::step[1]]
        counts = sliding_window_view(real, window, axis=(1, 2))[:, ::step[0], ::step[1]]
        out = sums.sum(axis=(-2, -1)) / counts.sum(axis=(-2, -1))
    return _restore_rank(out.astype(values.dtype), rank)


def max_pool2d(x: np.ndarray, pool_size: int | Sequence[int] = 2,
               strides: int | Sequence[int] | None = None, padding: str = "valid") -> np.ndarray:
    """Keep the largest value of each window (``MaxPooling2D``).

    >>> max_pool2d(np.array([[1, 2], [3, 4]]), 2).tolist()
    [[4.0]]
    """
    return pool2d(x, pool_size, strides, padding, mode="max")


def average_pool2d(x: np.ndarray, pool_size: int | Sequence[int] = 2,
                   strides: int | Sequence[int] | None = None,
                   padding: str = "valid") -> np.ndarray:
    """Average each window (``AveragePooling2D``).

    >>> average_pool2d(np.array([[1, 2], [3, 4]]), 2).tolist()
    [[2.5]]
    """
    return pool2d(x, pool_size, strides, padding, mode="average")


def global_pool(x: np.ndarray, mode: str = "average") -> np.ndarray:
    """One number per channel, whatever the image size (``GlobalAveragePooling2D`` / ``Max``).

    ``x``: ``(H, W, C)`` gives ``(C,)``; ``(N, H, W, C)`` gives ``(N, C)``.

    >>> global_pool(np.ones((5, 7, 3))).shape, global_pool(np.ones((2, 9, 9, 3)), "max").shape
    ((3,), (2, 3))
    """
    if mode not in POOL_MODES:
        raise ModelInputError(f"mode={mode!r}: use 'max' or 'average'")
    x = np.asarray(x)
    if x.ndim not in (3, 4):
        raise ModelInputError(f"x has shape {x.shape}: use (H, W, C) or (N, H, W, C)")
    axes = (-3, -2)
    return x.max(axis=axes) if mode == "max" else x.mean(axis=axes)


def shift_image(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move an image ``dy`` pixels down and ``dx`` right; uncovered pixels repeat the edge.

    >>> shift_image(np.arange(4.0).reshape(1, 4), 0, 1).tolist()
    [[0.0, 0.0, 1.0, 2.0]]
    """
    image = np.asarray(image)
    pads = [(max(dy, 0), max(-dy, 0)), (max(dx, 0), max(-dx, 0))] + [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, pads, mode="edge")
    h, w = image.shape[:2]
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[top: top + h, left: left + w]


def relative_change(before: np.ndarray, after: np.ndarray) -> float:
    """``||after - before|| / ||before||``: 0 means unchanged, 1 means as large as the signal.

    >>> relative_change(np.array([3.0, 4.0]), np.array([3.0, 4.0]))
    0.0
    """
    before, after = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if before.shape != after.shape:
        raise ModelInputError(f"cannot compare shapes {before.shape} and {after.shape}")
    norm = np.linalg.norm(before)
    return float(np.linalg.norm(after - before) / norm) if norm > 0 else 0.0


EDGE_FILTERS = np.stack([CLASSIC_KERNELS["sobel vertical edges"],
                         -CLASSIC_KERNELS["sobel vertical edges"],
                         CLASSIC_KERNELS["sobel horizontal edges"],
                         -CLASSIC_KERNELS["sobel horizontal edges"]], axis=-1)[:, :, None, :]


def edge_features(image: np.ndarray) -> np.ndarray:
    """A fixed conv layer with ReLU: four Sobel filters (each edge direction and sign).

    ``image``: 2-D gray; returns ``(H, W, 4)`` (padding 'same').

    >>> edge_features(np.zeros((5, 5))).shape
    (5, 5, 4)
    """
    return np.maximum(conv2d(np.asarray(image, dtype=np.float32), EDGE_FILTERS,
                             padding="same"), 0.0)


def shift_sensitivity(images: Sequence[np.ndarray], shifts: Sequence[int] = (1, 2, 3),
                      pool_sizes: Sequence[int] = (2, 4)) -> dict[str, list[float]]:
    """How much feature maps change when the image moves, with and without pooling.

    For each shift s, every gray image is moved s pixels right and, separately, s pixels
    down; :func:`edge_features` of the original and of the moved image are compared
    (:func:`relative_change`) directly, after max pooling of each size in ``pool_sizes``,
    and after global max pooling. Returns the mean change per variant, one value per shift.

    >>> result = shift_sensitivity([np.eye(16)], shifts=(0, 1), pool_sizes=(2,))
    >>> list(result), result["no pooling"][0]
    (['no pooling', 'max pool 2x2', 'global max pool'], 0.0)
    """
    variants = {"no pooling": lambda maps: maps}
    for size in pool_sizes:
        variants[f"max pool {size}x{size}"] = lambda maps, size=size: max_pool2d(maps, size)
    variants["global max pool"] = lambda maps: global_pool(maps, "max")
    changes: dict[str, list[float]] = {name: [] for name in variants}
    grays = [to_grayscale(image) for image in images]
    # the unshifted maps, pooled each way, once: every shift compares against them
    pooled_originals = [{name: pool(edge_features(gray)) for name, pool in variants.items()}
                        for gray in grays]
    for shift in shifts:
        per_variant: dict[str, list[float]] = {name: [] for name in variants}
        for gray, before in zip(grays, pooled_originals, strict=True):
            for dy, dx in ((0, shift), (shift, 0)):
                after = edge_features(shift_image(gray, dy, dx))
                for name, pool in variants.items():
                    per_variant[name].append(relative_change(before[name], pool(after)))
        for name in variants:
            changes[name].append(float(np.mean(per_variant[name])))
    return changes
