"""The exercises of notebook 02 (pooling), registered with :mod:`tlcnn_helpers.exercises`.

>>> from tlcnn_helpers import exercises
>>> exercises.exercises_of("02")
['02.global_average', '02.max_pool', '02.pool_params', '02.pooled_shape']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..pooling import average_pool2d, max_pool2d
from . import _call, _first_difference, _shape_tuple, register


@register("02.pooled_shape",
          "A feature map of shape (32, 32, 16) goes through MaxPooling2D(pool_size=2). Set "
          "`answer` to the output (height, width, channels).",
          reference=lambda: (16, 16, 16))
def _check_pooled_shape(answer: Any) -> str | None:
    shape = _shape_tuple(answer, 3, "(8, 8, 4)")
    if isinstance(shape, str):
        return shape
    if shape == (16, 16, 16):
        return None
    if shape[:2] == (16, 16):
        return (f"expected shape (16, 16, 16), got {shape}: pooling works on each channel "
                "separately, so the 16 channels stay 16")
    if shape[:2] == (31, 31):
        return (f"expected shape (16, 16, 16), got {shape}: check the stride; it defaults to "
                "the pool size (2), so windows do not overlap")
    return (f"expected shape (16, 16, 16), got {shape}: a 2x2 window moving 2 pixels halves "
            "the height and the width")


def _reference_max_pool_2x2(feature_map: np.ndarray) -> np.ndarray:
    # Keep the largest value of each 2x2 block; a last odd row or column is dropped ('valid').
    rows, cols = feature_map.shape[0] // 2, feature_map.shape[1] // 2
    blocks = feature_map[: rows * 2, : cols * 2].reshape(rows, 2, cols, 2)
    return blocks.max(axis=(1, 3))


@register("02.max_pool",
          "Complete `max_pool_2x2(feature_map)`: 2x2 max pooling with stride 2 and padding "
          "'valid' on a 2-D array.",
          reference=lambda: _reference_max_pool_2x2)
def _check_max_pool(function: Any) -> str | None:
    rng = np.random.default_rng(2)
    for shape in [(6, 8), (7, 5)]:
        feature_map = rng.normal(size=shape)
        expected = max_pool2d(feature_map, 2)
        got = _call(function, feature_map.copy())
        case = f"for a {shape} feature map"
        if got.shape != expected.shape:
            if got.shape == (shape[0] - 1, shape[1] - 1):
                return (f"{case} expected shape {expected.shape}, got {got.shape}: the windows "
                        "overlap; move 2 pixels at a time")
            if got.shape == (-(-shape[0] // 2), -(-shape[1] // 2)):
                return (f"{case} expected shape {expected.shape}, got {got.shape}: with padding "
                        "'valid' a last row or column that does not fill a window is dropped")
            return f"{case} expected shape {expected.shape}, got {got.shape}"
        if np.allclose(got, average_pool2d(feature_map, 2)):
            return "you averaged each window; max pooling keeps the largest value"
        if np.allclose(got, -max_pool2d(-feature_map, 2)):
            return "you kept the smallest value of each window; max pooling keeps the largest"
        if not np.allclose(got, expected):
            return (f"{case} {_first_difference(expected, got)}: output (r, c) is the maximum "
                    "of rows 2r..2r+1 and columns 2c..2c+1")
    return None


def _reference_global_average(feature_maps: np.ndarray) -> np.ndarray:
    # Average over height and width (axes 1 and 2): one number per image and channel.
    return feature_maps.mean(axis=(1, 2))


@register("02.global_average",
          "Complete `global_average(feature_maps)`: from a batch (N, H, W, C) return the "
          "(N, C) averages that GlobalAveragePooling2D computes.",
          reference=lambda: _reference_global_average)
def _check_global_average(function: Any) -> str | None:
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(2, 5, 7, 3))
    expected = maps.mean(axis=(1, 2))
    got = _call(function, maps.copy())
    if got.shape == expected.shape and np.allclose(got, expected):
        return None
    if got.shape == (2, 5, 7):
        return (f"expected shape {expected.shape}, got {got.shape}: you averaged over the "
                "channels (the last axis); average over height and width, axes 1 and 2")
    if got.shape == (3,):
        return (f"expected shape {expected.shape}, got {got.shape}: you also averaged over the "
                "batch; keep one row per image (axes 1 and 2 only)")
    if got.shape == ():
        return "you averaged everything into one number; average over axes 1 and 2 only"
    if got.shape == expected.shape and np.allclose(got, maps.max(axis=(1, 2))):
        return "you took the maximum; this is global *average* pooling"
    return (f"expected shape {expected.shape} holding the mean over height and width, "
            f"got shape {got.shape}")


@register("02.pool_params",
          "How many trainable parameters does MaxPooling2D(pool_size=2) have after a layer with "
          "16 channels? Set `answer` to the number.",
          reference=lambda: 0)
def _check_pool_params(answer: Any) -> str | None:
    if not isinstance(answer, (int, np.integer)) or isinstance(answer, bool):
        return f"answer with a whole number, not {type(answer).__name__} {answer!r}"
    if answer == 0:
        return None
    return (f"expected 0, got {answer}: pooling has nothing to learn, it only takes the "
            "maximum (or mean) of each window")
