"""The exercises of notebook 04 (the CIFAR-10 CNN), registered with :mod:`tlcnn_helpers.exercises`.

The package imports this module, so the notebook only calls ``exercises.check(...)``. The
answers are computed from Keras (``count_params``) and from
:func:`tlcnn_helpers.models.paper_cnn`, never written down twice; the ablation's from the run the course ships
(:func:`tlcnn_helpers.records.recorded_ablation`). (The flatten size at 96x96
is asked in notebook 06, ``06.flatten_size``.)

>>> from tlcnn_helpers import exercises
>>> names = exercises.exercises_of("04")
>>> names
['04.conv_params_5x5', '04.most_important_ingredient', '04.paper_model', '04.per_class_accuracy']
>>> exercises.check("04.conv_params_5x5", 2432)
✅ 04.conv_params_5x5: correct!
>>> exercises.feedback("04.most_important_ingredient", "bfloat16").passed
False

Used by notebook 04's exercises section.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import UnfinishedAnswer
from ..records import recorded_ablation
from . import _call, _whole_number, register


def _keras_conv_params(kernel: int, channels: int, filters: int) -> int:
    import keras

    layer = keras.layers.Conv2D(filters, kernel)
    layer.build((None, 32, 32, channels))
    return int(layer.count_params())


@register("04.conv_params_5x5",
          "How many trainable parameters would the paper model's first Conv2D layer have with "
          "5x5 filters instead of 3x3 (still 32 filters on RGB images, with biases)?",
          reference=lambda: _keras_conv_params(5, 3, 32))
def _check_conv_params_5x5(answer: Any) -> str | None:
    value = _whole_number(answer, "1000")
    if isinstance(value, str):
        return value
    expected = _keras_conv_params(5, 3, 32)
    if value == expected:
        return None
    if value == expected - 32:
        return f"{value} counts the kernel weights only: each of the 32 filters also has a bias"
    if value == _keras_conv_params(5, 1, 32):
        return ("that is a one-channel image: each filter spans all 3 colour channels, "
                "so it has 5 x 5 x 3 weights")
    if value == _keras_conv_params(3, 3, 32):
        return "that is the 3x3 layer of the table in section 2: now each filter is 5 x 5"
    return "each filter has 5 x 5 x 3 weights plus one bias, and there are 32 filters"


# ---------------------------------------------------------------------------- the paper model
# Configurations the student's builder is tried on: the notebook's, and two others, so a
# builder that ignores its arguments is caught.
PAPER_MODEL_CASES: tuple[tuple[tuple[int, int, int], int, tuple[int, ...]], ...] = (
    ((32, 32, 3), 9, (32, 64, 128, 256)),
    ((32, 32, 3), 10, (16, 32, 64, 128)),
    ((64, 64, 3), 9, (8, 16, 32)),
)
_CORE = ("Conv2D", "MaxPooling2D", "BatchNormalization", "Flatten", "Dense", "Dropout")


def _reference_paper_model(input_shape: Sequence[int], num_classes: int,
                           filters: Sequence[int] = (32, 64, 128, 256)):
    import keras
    from keras import layers

    model = keras.Sequential([keras.Input(tuple(input_shape)), layers.Rescaling(1 / 255)])
    for width in filters:
        model.add(layers.Conv2D(width, 3, padding="same", activation="relu"))
        model.add(layers.MaxPooling2D(2))
        model.add(layers.BatchNormalization())
    model.add(layers.Flatten())
    model.add(layers.Dense(512, activation="relu"))
    model.add(layers.Dropout(0.5))
    model.add(layers.Dense(num_classes, activation="softmax"))
    return model


def _layers(model: Any) -> list[Any]:
    return [layer for layer in model.layers if layer.__class__.__name__ != "InputLayer"]


def _kinds(model: Any) -> list[str]:
    return [layer.__class__.__name__ for layer in _layers(model)]


def _activation(layer: Any) -> str:
    return getattr(getattr(layer, "activation", None), "__name__", "")


def _compare_with_paper(model: Any, expected: Any, filters: Sequence[int], num_classes: int
                        ) -> str | None:
    """One sentence on the first way ``model`` differs from the paper's ``expected``."""
    got, want = _kinds(model), _kinds(expected)
    got_core = [k for k in got if k in _CORE]
    want_core = [k for k in want if k in _CORE]
    for kind, what in (("BatchNormalization", "each block ends with BatchNormalization, "
                                              "after the pooling"),
                       ("MaxPooling2D", "each block has a 2x2 MaxPooling2D after its Conv2D"),
                       ("Conv2D", f"one Conv2D per entry of filters={tuple(filters)}"),
                       ("Dropout", "the paper puts Dropout(0.5) after the 512-unit dense layer"),
                       ("Flatten", "Flatten turns the last feature maps into one vector before "
                                   "the dense layers"),
                       ("Dense", "the head is Dense(512, relu), Dropout, then Dense(num_classes, "
                                 "softmax)")):
        if got_core.count(kind) != want_core.count(kind):
            return (f"your model has {got_core.count(kind)} {kind} layer(s), the paper's "
                    f"{want_core.count(kind)}: {what}")
    if got_core != want_core:
        position = next(i for i, (a, b) in enumerate(zip(got_core, want_core, strict=True)) if a != b)
        return (f"the layers are in the wrong order: layer {position + 1} is {got_core[position]}, "
                f"the paper has {want_core[position]} there. Each block is Conv2D -> "
                "MaxPooling2D -> BatchNormalization; then Flatten, Dense, Dropout, Dense")
    if "Rescaling" not in got:
        return ("add layers.Rescaling(1 / 255) after the input: the model takes raw pixels "
                "0..255 (no weights, but the training depends on it)")
    mine = [layer for layer in _layers(model) if layer.__class__.__name__ in _CORE]
    theirs = [layer for layer in _layers(expected) if layer.__class__.__name__ in _CORE]
    for index, (layer, reference) in enumerate(zip(mine, theirs, strict=True), start=1):
        kind = reference.__class__.__name__
        if kind == "Conv2D":
            if layer.filters != reference.filters:
                number = sum(1 for other in mine[:index] if other.__class__.__name__ == "Conv2D")
                return (f"Conv2D number {number} has {layer.filters} filters; "
                        f"use the widths given in filters={tuple(filters)}, one per block")
            if tuple(layer.kernel_size) != tuple(reference.kernel_size):
                return f"the convolutions are 3x3, not {layer.kernel_size[0]}x{layer.kernel_size[1]}"
            if layer.padding != reference.padding:
                return ("use padding=\"same\" in the Conv2D layers: only the poolings shrink "
                        "the maps")
            if _activation(layer) != "relu":
                return "the Conv2D layers use activation=\"relu\""
        if kind == "Dense" and layer is not mine[-1]:
            if layer.units != reference.units:
                return f"the hidden dense layer has {layer.units} units, the paper's 512"
            if _activation(layer) != "relu":
                return "the hidden dense layer uses activation=\"relu\""
        if kind == "Dense" and layer is mine[-1]:
            if layer.units != num_classes:
                return (f"the last layer has {layer.units} units: it needs one per class, "
                        f"num_classes = {num_classes}")
            if _activation(layer) != "softmax":
                return "the last layer uses activation=\"softmax\" (one probability per class)"
        if kind == "Dropout" and abs(float(layer.rate) - float(reference.rate)) > 1e-9:
            return f"the dropout rate is {layer.rate}; the course's reconstruction uses 0.5"
        if kind == "MaxPooling2D" and tuple(layer.pool_size) != tuple(reference.pool_size):
            return "the poolings are 2x2: MaxPooling2D(2)"
    if model.count_params() != expected.count_params():
        return (f"{model.count_params():,} parameters, the paper model has "
                f"{expected.count_params():,}: compare your layers with the table in section 2")
    return None


@register("04.paper_model",
          "Write build_paper_model(input_shape, num_classes, filters) that returns the paper's "
          "CNN as a Keras model: Rescaling(1/255), then per entry of filters a block "
          "Conv2D(3x3, same, relu) -> MaxPooling2D(2) -> BatchNormalization, then Flatten, "
          "Dense(512, relu), Dropout(0.5), Dense(num_classes, softmax).",
          reference=lambda: _reference_paper_model)
def _check_paper_model(function: Any) -> str | None:
    from ..models import paper_cnn

    if not callable(function):
        return f"pass your function itself (no parentheses), not {type(function).__name__}"
    for input_shape, num_classes, filters in PAPER_MODEL_CASES:
        model = function(input_shape, num_classes, filters)
        if model is None:
            raise UnfinishedAnswer("your function returns None; build the model and return it")
        if not hasattr(model, "count_params") or not hasattr(model, "layers"):
            return f"return a Keras model (keras.Sequential or keras.Model), not {type(model).__name__}"
        expected = paper_cnn(input_shape, num_classes, filters=filters)
        problem = _compare_with_paper(model, expected, filters, num_classes)
        if problem:
            return f"for input {input_shape}, {num_classes} classes, filters {filters}: {problem}"
    return None


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


# ---------------------------------------------------------------------------- the ablation
# The fast recipe's ingredients, each with the ablation variant that removes it and the
# starts of words a student might use for it ("weight decay" names none of them).
INGREDIENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "augmentation": ("no_augmentation", ("augment", "flip", "shift", "translat")),
    "label smoothing": ("no_label_smoothing", ("smooth",)),
    "schedule": ("constant_lr", ("schedul", "cosine", "warm")),
    "residual pair": ("no_residual", ("residual", "skip")),
    "bfloat16": ("float32", ("bfloat", "bf16", "precision", "mixed")),
}


def _ingredient(answer: Any) -> str | None:
    words = re.findall(r"[a-z0-9]+", answer.lower()) if isinstance(answer, str) else []
    found = {name for name, (_, starts) in INGREDIENTS.items()
             if any(word.startswith(start) for word in words for start in starts)}
    return found.pop() if len(found) == 1 else None


def ablation_costs(name: str = "fast_recipe_ablation_180s") -> tuple[dict[str, float], float]:
    """What removing each ingredient cost in the recorded ablation (mean over seeds; positive:
    the recipe is better with it), and the noise: the typical spread between two seeds of one
    variant (the median over the variants, so one unstable variant does not set it).

    >>> costs, noise = ablation_costs()
    >>> max(costs, key=costs.get) in INGREDIENTS, noise > 0
    (True, True)
    """
    runs = recorded_ablation(name)
    full = float(np.mean(runs["full"]))
    costs = {ingredient: round(full - float(np.mean(runs[variant])), 4)
             for ingredient, (variant, _) in INGREDIENTS.items()}
    noise = float(np.median([max(seeds) - min(seeds) for variant, seeds in runs.items()
                             if variant != "flip_tta"]))
    return costs, round(noise, 4)


@register("04.most_important_ingredient",
          "Predict before you read the table: within the 3-minute budget, removing which one "
          "ingredient of the fast recipe costs the most accuracy? Set `prediction` to "
          "'augmentation', 'label smoothing', 'schedule', 'residual pair' or 'bfloat16'.",
          reference=lambda: max((costs := ablation_costs()[0]), key=costs.get),
          accepted="right: the table below says by how much")
def _check_most_important(answer: Any) -> str | None:
    ingredient = _ingredient(answer)
    if ingredient is None:
        return (f"answer with one ingredient's name: {', '.join(map(repr, INGREDIENTS))}, "
                f"not {answer!r}")
    costs, noise = ablation_costs()
    if ingredient == max(costs, key=costs.get):
        return None
    cost = costs[ingredient]
    verdict = (f"within the typical {noise:.3f} spread between two seeds, so noise"
               if abs(cost) <= noise else "real, but another costs more")
    the = "the " if " " in ingredient else ""
    return (f"not this one: without {the}{ingredient} the dev-test accuracy changed by "
            f"{-cost:+.3f} on average, {verdict}. Think about what happens to the last steps of a run "
            f"that has to stop after 3 minutes, then read the table below")
