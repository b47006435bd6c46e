"""The exercises of notebook 07 (what the CNN sees), registered with :mod:`tlcnn_helpers.exercises`.

>>> from tlcnn_helpers import exercises
>>> exercises.exercises_of("07")
['07.confused_with_cat', '07.saliency_by_hand']
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..data import class_names
from ..errors import UnfinishedAnswer
from ..interpretation import saliency_map
from . import _call, register


@functools.lru_cache(maxsize=1)
def _check_case() -> tuple[Any, np.ndarray]:
    """A small seeded CNN (global pooling + softmax Dense) and 3 random 16x16 images."""
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))
    images = np.random.default_rng(3).uniform(0, 255, (3, 16, 16, 3)).astype("float32")
    return model, images


def _reference_saliency(model: Any, images: np.ndarray, class_index: int) -> np.ndarray:
    import keras
    import tensorflow as tf

    head = model.layers[-1]  # Dense with softmax: its input gives the logits
    features_model = keras.Model(model.input, head.input)
    x = tf.convert_to_tensor(np.asarray(images, "float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = features_model(x, training=False) @ head.kernel + head.bias
        score = logits[:, class_index]
    gradients = tape.gradient(score, x)
    return np.max(np.abs(gradients), axis=-1)


@register("07.saliency_by_hand",
          "Complete my_saliency(model, images, class_index): with tf.GradientTape, the gradient "
          "of the class logit with respect to the pixels, absolute value, largest over the "
          "colour channels: shape (N, H, W).",
          reference=lambda: _reference_saliency)
def _check_saliency(function: Any) -> str | None:
    model, images = _check_case()
    class_index = 2
    expected = saliency_map(model, images, class_index)
    got = _call(function, model, images, class_index)
    if got.shape == expected.shape + (3,):
        return (f"expected shape {expected.shape}, got {got.shape}: one value per pixel, the "
                "largest absolute gradient over the 3 colour channels (max over axis -1)")
    if got.shape != expected.shape:
        return (f"expected shape {expected.shape} (images, rows, columns), got {got.shape}: "
                "take the gradient with respect to the input images")
    scale = float(np.abs(expected).max())
    if np.allclose(got, expected, rtol=1e-3, atol=1e-4 * scale):
        return None
    signed = _signed_gradient(model, images, class_index)
    if np.allclose(got, signed.max(axis=-1), rtol=1e-3, atol=1e-4 * scale):
        return "take the absolute value of the gradient before the max over the channels"
    if np.allclose(got, np.abs(signed).mean(axis=-1), rtol=1e-3, atol=1e-4 * scale):
        return "you averaged over the channels: the course's saliency takes the largest (max)"
    ratio = float(np.abs(got).max()) / max(scale, 1e-12)
    return (f"the map differs from the reference (its largest value is {ratio:.3g} times the "
            "reference's): the score is the class *logit*, the Dense layer's input @ kernel + "
            "bias, not the softmax probability; run the model with training=False")


def _signed_gradient(model: Any, images: np.ndarray, class_index: int) -> np.ndarray:
    import keras
    import tensorflow as tf

    head = model.layers[-1]
    features_model = keras.Model(model.input, head.input)
    x = tf.convert_to_tensor(np.asarray(images, "float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = (features_model(x, training=False) @ head.kernel + head.bias)[:, class_index]
    return np.asarray(tape.gradient(score, x))


def _typical_confusion() -> np.ndarray:
    """A made-up 9-class confusion matrix where cats go most often to dog (for the reference)."""
    matrix = np.diag(np.full(9, 80))
    cat, dog, bird = (class_names().index(name) for name in ("cat", "dog", "bird"))
    matrix[cat, dog], matrix[cat, bird] = 12, 4
    return matrix


@register("07.confused_with_cat",
          "Before the confusion matrix is shown: which class will the model confuse with cat "
          "most often? Set `guess` to its name; the check compares it with the model's confusion "
          "matrix: exercises.check('07.confused_with_cat', (guess, matrix)).",
          reference=lambda: ("dog", _typical_confusion()))
def _check_confused_with_cat(answer: Any) -> str | None:
    names = class_names()
    if not isinstance(answer, tuple) or len(answer) != 2:
        return ("pass your guess together with the model's confusion matrix: "
                "(guess, matrix)")
    guess, matrix = answer
    if guess is None:
        raise UnfinishedAnswer("set `guess` to a class name such as 'bird'")
    if not isinstance(guess, str) or guess.strip().lower() not in names:
        return f"{guess!r} is not one of the 9 classes: {', '.join(names)}"
    guess = guess.strip().lower()
    cat = names.index("cat")
    if guess == "cat":
        return "cat is the true class; guess which *other* class cats are mistaken for"
    matrix = np.asarray(matrix, dtype=float)
    if matrix.shape != (len(names), len(names)):
        return (f"the matrix should be {len(names)}x{len(names)} (true class x predicted "
                f"class), got shape {matrix.shape}")
    cats = matrix[cat].sum()
    # Brute force over the other classes: how many cats went to each.
    counts = {names[j]: matrix[cat, j] for j in range(len(names)) if j != cat}
    actual = max(counts, key=lambda name: (counts[name], -names.index(name)))
    share = {name: count / max(cats, 1) for name, count in counts.items()}
    if counts[guess] == counts[actual]:  # a tie (or no cat confused at all) counts as right
        return None
    return (f"this model sends {share[actual]:.0%} of the cats to {actual} and "
            f"{share[guess]:.0%} to {guess}. Cats and dogs share fur, four legs and poses at "
            "32x32; look at the most confident mistakes below to see what the model relied on")
