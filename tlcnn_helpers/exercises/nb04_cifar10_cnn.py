"""The exercises of notebook 04 (the CIFAR-10 CNN), registered with :mod:`tlcnn_helpers.exercises`.

The package imports this module, so the notebook only calls ``exercises.check(...)``.

>>> from tlcnn_helpers import exercises
>>> names = exercises.exercises_of("04")
>>> names
['04.first_conv_params', '04.flatten_size_96', '04.per_class_accuracy']
>>> exercises.check("04.first_conv_params", 896)
✅ 04.first_conv_params: correct!
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _call, _whole_number, register


@register("04.first_conv_params",
          "How many trainable parameters has the paper model's first Conv2D layer "
          "(32 filters of 3x3 on RGB images, with biases)?", reference=lambda: 3 * 3 * 3 * 32 + 32)
def _check_first_conv_params(answer: Any) -> str | None:
    value = _whole_number(answer, "896")
    if isinstance(value, str):
        return value
    if value == 896:
        return None
    if value == 864:
        return "864 counts the kernel weights only: each of the 32 filters also has a bias"
    if value == 320:
        return ("320 is a one-channel image: each filter spans all 3 colour channels, "
                "so it has 3 x 3 x 3 weights")
    return "each filter has 3 x 3 x 3 weights plus one bias, and there are 32 filters"


@register("04.flatten_size_96",
          "The paper model pools 2x2 four times and its last block has 256 filters. How many "
          "numbers does its Flatten layer output for a 96x96 image (32x32 gives 2x2x256 = 1024)?",
          reference=lambda: 6 * 6 * 256)
def _check_flatten_size(answer: Any) -> str | None:
    value = _whole_number(answer, "1024")
    if isinstance(value, str):
        return value
    if value == 9216:
        return None
    if value == 1024:
        return "1024 is the 32x32 case: at 96x96 each side is 96 / 2**4 = 6 after the poolings"
    if value == 96 * 96 * 256 // 4:
        return "four 2x2 poolings divide each side by 2**4 = 16, not the area by 4"
    return "after four 2x2 poolings each side is 96 / 16 = 6; multiply 6 x 6 by the 256 channels"


def _reference_per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray,
                                  num_classes: int) -> np.ndarray:
    correct = np.bincount(y_true[y_true == y_pred], minlength=num_classes)
    totals = np.bincount(y_true, minlength=num_classes)
    return np.divide(correct, totals, out=np.zeros(num_classes), where=totals > 0)


@register("04.per_class_accuracy",
          "Write per_class_accuracy(y_true, y_pred, num_classes): for each class, the share of "
          "its images (y_true == class) that were predicted as that class.",
          reference=lambda: _reference_per_class_accuracy)
def _check_per_class_accuracy(function: Any) -> str | None:
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 4, 50)
    y_pred = np.where(rng.random(50) < 0.6, y_true, rng.integers(0, 4, 50))
    y_true[y_true == 3] = 2  # class 3 has no images: its accuracy is defined as 0
    expected = _reference_per_class_accuracy(y_true, y_pred, 4)
    got = _call(function, y_true, y_pred, 4)
    if got.shape != expected.shape:
        return f"expected one value per class, shape {expected.shape}, got shape {got.shape}"
    if not np.all(np.isfinite(got)):
        return "a class with no images gives a division by zero: return 0 for it"
    precision = (np.bincount(y_pred[y_true == y_pred], minlength=4)
                 / np.maximum(np.bincount(y_pred, minlength=4), 1))
    if not np.allclose(got, expected) and np.allclose(got, precision):
        return ("you divided by how often each class was *predicted* (that is precision); "
                "divide by how many images truly belong to it")
    if not np.allclose(got, expected):
        worst = int(np.argmax(np.abs(got - expected)))
        return f"class {worst}: expected {expected[worst]:.3f}, got {got[worst]:.3f}"
    return None
