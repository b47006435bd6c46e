"""The exercises of notebook 00 (set-up: the datasets' files and classes), registered with :mod:`tlcnn_helpers.exercises`.

>>> from tlcnn_helpers import exercises
>>> exercises.exercises_of("00")
['00.cifar_row_bytes', '00.horse_label', '00.pixel_ratio']
"""

from __future__ import annotations

from typing import Any

from . import _whole_number, register


@register("00.cifar_row_bytes",
          "How many bytes does one image take in CIFAR-10's binary format, label included?",
          reference=lambda: 1 + 32 * 32 * 3)
def _check_cifar_row_bytes(answer: Any) -> str | None:
    got = _whole_number(answer, "3000")
    if isinstance(got, str):
        return got
    hints = {32 * 32 * 3: "that is the pixels only: each row starts with one label byte",
             32 * 32: "that is one colour channel: a row holds red, green and blue planes",
             32 * 32 + 1: "that is one colour channel and the label: there are three channels"}
    if got == 1 + 32 * 32 * 3:
        return None
    return f"expected a different count, got {got}: " + hints.get(
        got, "1 label byte, then 32 x 32 pixels for each of the 3 channels")


@register("00.horse_label", "Which label (0 to 8) does `horse` have in both datasets?",
          reference=lambda: 6)
def _check_horse_label(answer: Any) -> str | None:
    got = _whole_number(answer, "4")
    if isinstance(got, str):
        return got
    if got == 6:
        return None
    if got == 7:
        return ("7 is horse's label among CIFAR-10's own ten classes, where frog comes before it; "
                "the shared labels drop frog, so count in SHARED_CLASSES")
    return f"got {got}: look it up with SHARED_CLASSES.index('horse')"


@register("00.pixel_ratio",
          "How many times more pixels does an STL-10 image have than a CIFAR-10 image?",
          reference=lambda: (96 * 96) // (32 * 32))
def _check_pixel_ratio(answer: Any) -> str | None:
    got = _whole_number(answer, "4")
    if isinstance(got, str):
        return got
    if got == 9:
        return None
    if got == 3:
        return "3 is the ratio of the sides; the number of pixels grows with the area: (96 / 32) ** 2"
    if got == 27:
        return "count pixels, not values: both images have 3 channels, so the channels cancel out"
    return f"got {got}: divide 96 x 96 by 32 x 32"
