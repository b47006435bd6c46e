"""The exercises of notebook 01 (convolution), registered with :mod:`tlcnn_helpers.exercises`.

>>> from tlcnn_helpers import exercises
>>> exercises.exercises_of("01")
['01.horizontal_edges', '01.output_shape', '01.param_count', '01.stride']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..convolution import conv2d, conv_output_size, correlate2d_loops
from . import _call, _first_difference, _shape_tuple, register


@register("01.output_shape",
          "A 29x29 image goes through a 5x5 convolution with stride 3 and padding 'valid'. "
          "Set `answer` to the output (height, width).",
          reference=lambda: (conv_output_size(29, 5, 3, "valid"),) * 2)
def _check_output_shape(answer: Any) -> str | None:
    shape = _shape_tuple(answer, 2, "(10, 10)")
    if isinstance(shape, str):
        return shape
    expected = (conv_output_size(29, 5, 3, "valid"),) * 2
    if shape == expected:
        return None
    side = shape[0]
    why = {
        conv_output_size(29, 5, 3, "same"): "check the padding: 'valid' adds no border, so "
                                            "the 5x5 window must fit inside the image",
        conv_output_size(29, 5, 1, "valid"): "check the stride: the window moves 3 pixels "
                                             "at a time, so about a third as many positions fit",
        (29 - 5) // 3: "you forgot the +1: the first position counts too, "
                       "floor((n - k) / s) + 1",
    }.get(side, "use floor((n - k) / s) + 1 with n = 29, k = 5, s = 3")
    return f"expected shape {expected}, got {shape}: {why}"


def _reference_horizontal_edge_kernel() -> np.ndarray:
    # Sobel turned on its side: bottom row minus top row, centre column weighted twice.
    return np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=float)


def _step_images(size: int = 9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    flat = np.full((size, size), 0.7)
    horizontal = np.zeros((size, size))
    horizontal[size // 2:, :] = 1.0  # dark top, bright bottom
    return flat, horizontal, horizontal.T.copy()  # the transpose: dark left, bright right


@register("01.horizontal_edges",
          "Set `horizontal_edge_kernel` to a 3x3 NumPy array that gives a large positive value "
          "where a dark top meets a bright bottom (a horizontal edge), and 0 on flat regions.",
          reference=_reference_horizontal_edge_kernel)
def _check_horizontal_edges(kernel: Any) -> str | None:
    kernel = np.asarray(kernel, dtype=float)
    if kernel.shape != (3, 3):
        return f"expected shape (3, 3), got {kernel.shape}: write three rows of three numbers"
    flat, horizontal, vertical = _step_images()
    on_flat = float(np.abs(conv2d(flat, kernel)).max())
    if on_flat > 1e-6:
        return (f"on a flat grey image your kernel gives {on_flat:.3g} instead of 0: make its "
                f"values add up to 0 (now they add up to {kernel.sum():.3g})")
    on_horizontal = conv2d(horizontal, kernel)
    on_vertical = float(np.abs(conv2d(vertical, kernel)).max())
    strongest = float(on_horizontal.max())
    if strongest <= 1e-6 and on_horizontal.min() < -1e-6:
        return ("it responds to the edge, but negatively: it looks for bright-above-dark. Swap "
                "the signs so that the bottom row is positive")
    if strongest <= 1e-6:
        return ("it gives 0 on a horizontal edge: the top and bottom rows must differ "
                "(e.g. negative on top, positive at the bottom)")
    if on_vertical > 0.25 * strongest:
        return (f"it also responds to vertical edges ({on_vertical:.3g} versus "
                f"{strongest:.3g} on the horizontal one): make the three columns the same shape, "
                "so only top-versus-bottom matters")
    return None


@register("01.stride",
          "Complete `strided_correlate(image, kernel, stride)`: slide `kernel` over the 2-D "
          "`image` with padding 'valid', moving `stride` pixels at a time, and return the "
          "feature map.",
          reference=lambda: correlate2d_loops)
def _check_stride(function: Any) -> str | None:
    rng = np.random.default_rng(1)
    for shape, kernel_shape, stride in [((9, 11), (3, 3), 2), ((10, 8), (2, 3), 3),
                                        ((6, 7), (3, 3), 1)]:
        image, kernel = rng.random(shape), rng.normal(size=kernel_shape)
        expected = correlate2d_loops(image, kernel, stride)
        got = _call(function, image, kernel, stride)
        case = f"for a {shape} image, {kernel_shape} kernel and stride {stride}"
        if got.shape != expected.shape:
            if got.shape == correlate2d_loops(image, kernel, 1).shape and stride > 1:
                return (f"{case} expected shape {expected.shape}, got {got.shape}: you computed "
                        f"every position; move the window `stride` pixels at a time")
            return (f"{case} expected shape {expected.shape}, got {got.shape}: with padding "
                    "'valid' there are floor((n - k) / stride) + 1 positions along each side")
        if np.allclose(got, correlate2d_loops(image, kernel[::-1, ::-1], stride)):
            return ("you flipped the kernel (the textbook convolution); deep-learning layers "
                    "slide it as it is (cross-correlation)")
        if not np.allclose(got, expected, atol=1e-6):
            return (f"{case} the shape is right but {_first_difference(expected, got)}: the "
                    "window of output (r, c) starts at pixel (r * stride, c * stride); multiply "
                    "it by the kernel and sum")
    return None


@register("01.param_count",
          "How many trainable parameters does Conv2D(filters=16, kernel_size=5) have on RGB "
          "images of 32x32 pixels? Set `answer` to the number.",
          reference=lambda: 5 * 5 * 3 * 16 + 16)
def _check_param_count(answer: Any) -> str | None:
    if not isinstance(answer, (int, np.integer)) or isinstance(answer, bool):
        return f"answer with a whole number, not {type(answer).__name__} {answer!r}"
    expected = 5 * 5 * 3 * 16 + 16
    if answer == expected:
        return None
    why = {
        5 * 5 * 3 * 16: "you forgot the biases: one per filter",
        5 * 5 * 16 + 16: "each filter covers all 3 colour channels: it has 5 x 5 x 3 weights",
        5 * 5 * 16: "each filter has 5 x 5 x 3 weights (all channels) plus one bias",
        5 * 5 * 3 + 1: "that is one filter; the layer has 16 of them",
    }.get(int(answer), "the count does not depend on the image size: "
                       "kernel height x width x input channels x filters, plus one bias per filter"
          if answer % (32 * 32) == 0 or answer > 10 * expected else
          "kernel height x width x input channels x filters, plus one bias per filter")
    return f"expected {expected}, got {answer}: {why}"
