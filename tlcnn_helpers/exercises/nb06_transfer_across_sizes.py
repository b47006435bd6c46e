"""The exercises of notebook 06 (transfer across image sizes), registered with :mod:`tlcnn_helpers.exercises`.

>>> from tlcnn_helpers import exercises
>>> exercises.exercises_of("06")
['06.flatten_size', '06.fold_kernel', '06.smallest_input']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _call, _first_difference, _whole_number, register


@register("06.flatten_size",
          "How many numbers does the paper model's Flatten layer produce for a 96x96 image? "
          "Set `answer` to the number.",
          reference=lambda: (96 // 2 ** 4) ** 2 * 256)
def _check_flatten_size(answer: Any) -> str | None:
    number = _whole_number(answer, "1024")
    if isinstance(number, str):
        return number
    if number == 9216:
        return None
    if number == 1024:
        return "1024 is the 32x32 size (2x2x256): redo it for 96x96, 96 / 2**4 = 6 per side"
    if number == 36:
        return "6x6 = 36 positions is right, but each position holds 256 channels"
    if number == 96 * 96 * 3:
        return "that is the input image: the four poolings halve it first, then 256 channels"
    return (f"expected 6 x 6 x 256, got {number}: each of the 4 poolings halves 96 "
            "(96 -> 48 -> 24 -> 12 -> 6), and the last block has 256 channels")


@register("06.smallest_input",
          "What is the smallest square image side (in pixels) the paper's model can take? "
          "Set `answer` to the number.",
          reference=lambda: 16)
def _check_smallest_input(answer: Any) -> str | None:
    number = _whole_number(answer, "32")
    if isinstance(number, str):
        return number
    if number == 16:
        return None
    if number > 16:
        return (f"{number} works, but smaller does too: the 'same' convolutions keep the size, "
                "each pooling halves it, and the last one needs at least 2 pixels")
    return (f"with {number} pixels a pooling layer gets 1 pixel (or none) and outputs nothing: "
            f"follow {number} through four halvings")


def _reference_fold(kernel: np.ndarray, height: int, width: int, channels: int) -> np.ndarray:
    kernel = np.asarray(kernel)
    return kernel.reshape(height, width, channels, -1).sum(axis=(0, 1))


@register("06.fold_kernel",
          "Complete fold(kernel, height, width, channels): turn a (height*width*channels, units) "
          "Flatten -> Dense kernel into a (channels, units) kernel for global average pooling.",
          reference=lambda: _reference_fold)
def _check_fold_kernel(function: Any) -> str | None:
    rng = np.random.default_rng(5)
    height, width, channels, units = 2, 3, 4, 5
    kernel = rng.normal(size=(height * width * channels, units))
    expected = _reference_fold(kernel, height, width, channels)
    got = _call(function, kernel, height, width, channels)
    if got.shape != expected.shape:
        return (f"expected shape {expected.shape} (channels, units), got {got.shape}: reshape "
                "to (height, width, channels, units) and combine the two position axes")
    if np.allclose(got, expected):
        return None
    if np.allclose(got * height * width, expected):
        return ("you averaged over the positions, but global average pooling already divides "
                "by height x width: sum the kernel rows instead")
    channels_first = kernel.reshape(channels, height, width, units).sum(axis=(1, 2))
    if np.allclose(got, channels_first):
        return ("Flatten orders the numbers (height, width, channels), channels last: reshape "
                "to (height, width, channels, units)")
    return "the folded kernel is wrong; " + _first_difference(expected, got)
