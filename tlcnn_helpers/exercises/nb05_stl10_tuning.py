"""The exercises of notebook 05 (tuning), registered with :mod:`tlcnn_helpers.exercises`.

The package imports this module, so the notebook only calls ``exercises.check(...)``.

>>> from tlcnn_helpers import exercises
>>> exercises.exercises_of("05")
['05.grid_size', '05.log_uniform_sampler', '05.predict_tuner', '05.random_trials_needed', '05.write_build']
>>> exercises.check("05.grid_size", 729)
✅ 05.grid_size: correct!
>>> exercises.check("05.predict_tuner", "Hyperband")
✅ 05.predict_tuner: prediction recorded; the comparison below shows which tuner wins
"""

from __future__ import annotations

import math
from typing import Any

import keras
import keras_tuner
import numpy as np

from ..errors import UnfinishedAnswer
from . import _call, _whole_number, register

TUNERS = ("random", "hyperband", "bayesian")
# The predictions a student made in this session (exercise name -> tuner).
PREDICTIONS: dict[str, str] = {}


@register("05.grid_size",
          "Leave the learning rate aside (it is continuous). How many different models does the "
          "paper search space hold: 3 optimizers, 3 filter widths, 3 neuron counts, 3 to 5 conv "
          "blocks, 1 to 3 dense layers and 3 dropout rates?", reference=lambda: 3 ** 6)
def _check_grid_size(answer: Any) -> str | None:
    value = _whole_number(answer, "729")
    if isinstance(value, str):
        return value
    if value == 729:
        return None
    if value == 18:
        return "18 adds the choices up: every choice combines with every other, so multiply"
    if value == 243:
        return "243 forgets one hyperparameter: the dropout rate is searched too (6 in all)"
    if value in (3 * 3 * 3 * 5 * 3 * 3, 3 * 3 * 3 * 5 * 3 * 3 * 3):
        return "3 to 5 conv blocks is 3 choices (3, 4 or 5), not 5"
    return "multiply the number of choices of the six hyperparameters: 3 each"


@register("05.random_trials_needed",
          "Random search: each trial lands in the best 5% of the space with probability 0.05. "
          "How many trials make the chance that at least one lands there 90% or more?",
          reference=lambda: math.ceil(math.log(0.1) / math.log(0.95)))
def _check_random_trials(answer: Any) -> str | None:
    value = _whole_number(answer, "45")
    if isinstance(value, str):
        return value
    if value == 45:
        return None
    if value == 18:
        return ("0.9 / 0.05 = 18 adds probabilities, which overlap; use the chance that all "
                "trials miss: 0.95 ** n <= 0.1")
    if value == 44:
        return "0.95 ** 44 is still a little above 0.1: round up"
    return "all n trials miss the best 5% with probability 0.95 ** n; find the smallest n with 0.95 ** n <= 0.1"


def _reference_sampler(rng: np.random.Generator, low: float, high: float, size: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(low), np.log(high), size))


@register("05.log_uniform_sampler",
          "Write sample_learning_rate(rng, low, high, size): learning rates spread evenly over the "
          "orders of magnitude between low and high (what keras-tuner's sampling='log' does).",
          reference=lambda: _reference_sampler)
def _check_log_uniform(function: Any) -> str | None:
    rng = np.random.default_rng(0)
    values = np.asarray(_call(function, rng, 1e-4, 1e-2, 4000), dtype=float)
    if values.shape != (4000,):
        return f"sample_learning_rate(rng, 1e-4, 1e-2, 4000) should give 4000 values, got shape {values.shape}"
    if values.min() < 1e-4 or values.max() > 1e-2:
        return (f"values should lie between low and high; got {values.min():.2g} to "
                f"{values.max():.2g}")
    below = float(np.mean(values < 1e-3))
    if below < 0.2:
        return (f"only {below:.0%} of the values are below 1e-3, the middle order of magnitude: "
                "a uniform draw favours the top decade; draw the exponent uniformly instead")
    if not 0.45 <= below <= 0.55:
        return f"{below:.0%} of the values are below 1e-3; about half should be (one decade of two)"
    return None


@register("05.predict_tuner",
          "Predict before you run: on the same budget of epochs, which tuner will reach the best "
          "validation accuracy? Set `prediction` to 'random', 'hyperband' or 'bayesian'.",
          reference=lambda: "hyperband",
          accepted="prediction recorded; the comparison below shows which tuner wins")
def _check_prediction(answer: Any) -> str | None:
    name = answer.strip().lower() if isinstance(answer, str) else None
    if name not in TUNERS:
        return f"answer with one tuner's name, 'random', 'hyperband' or 'bayesian', not {answer!r}"
    PREDICTIONS["05.predict_tuner"] = name
    return None


# ---------------------------------------------------------------------------- write a build(hp)
CIFAR_SHAPE = (32, 32, 3)
CIFAR_CLASSES = 10
# The paper's six hyperparameters and the keras-tuner method that declares each.
SIX = {"learning_rate": "Float", "optimizer": "Choice", "filters": "Choice",
       "neurons": "Choice", "conv_blocks": "Int", "dense_layers": "Int"}
VALUE_TYPES = {"optimizer": str, "filters": int, "neurons": int}


def _reference_build(hp: keras_tuner.HyperParameters) -> keras.Model:
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")
    optimizer = hp.Choice("optimizer", ["adam", "sgd", "rmsprop"])
    filters = hp.Choice("filters", [16, 32, 64])
    neurons = hp.Choice("neurons", [64, 128, 256])
    conv_blocks = hp.Int("conv_blocks", 2, 4)
    dense_layers = hp.Int("dense_layers", 1, 3)

    model = keras.Sequential([keras.Input(shape=(32, 32, 3)), keras.layers.Rescaling(1 / 255)])
    for block in range(conv_blocks):
        model.add(keras.layers.Conv2D(filters * 2 ** block, 3, padding="same", activation="relu"))
        model.add(keras.layers.MaxPooling2D(2))
        model.add(keras.layers.BatchNormalization())
    model.add(keras.layers.Flatten())
    for _ in range(dense_layers):
        model.add(keras.layers.Dense(neurons, activation="relu"))
    model.add(keras.layers.Dense(10, activation="softmax"))
    optimizers = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD,
                  "rmsprop": keras.optimizers.RMSprop}
    model.compile(optimizer=optimizers[optimizer](learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _count_layers(model: keras.Model, kind: type) -> int:
    return sum(_count_layers(layer, kind) if isinstance(layer, keras.Model) else
               isinstance(layer, kind) for layer in model.layers)


def _built(build: Any, hp: keras_tuner.HyperParameters) -> keras.Model:
    keras.backend.clear_session()
    model = build(hp)
    if model is None:
        raise UnfinishedAnswer("your build(hp) returns None; build, compile and return the model")
    return model


@register("05.write_build",
          "Write build(hp) for CIFAR-10 (32x32x3 images, 10 classes): declare the paper's six "
          "hyperparameters under the names learning_rate (a float, sampled on a log scale), "
          "optimizer, filters, neurons (choices), conv_blocks and dense_layers (integers); build "
          "one Conv2D per conv block and return the compiled model.",
          reference=lambda: _reference_build)
def _check_build(build: Any) -> str | None:
    if not callable(build):
        return f"pass your function itself (no parentheses), not {type(build).__name__}"
    hp = keras_tuner.HyperParameters()
    model = _built(build, hp)
    declared = {p.name: p for p in hp.space}
    missing = [name for name in SIX if name not in declared]
    if missing:
        return (f"build(hp) does not declare {', '.join(missing)}: the search only varies what "
                f"is declared with hp.{SIX[missing[0]]}({missing[0]!r}, ...)")
    for name, method in SIX.items():
        if type(declared[name]).__name__ != method:
            return (f"{name} is declared with hp.{type(declared[name]).__name__}; use "
                    f"hp.{method}({name!r}, ...)")
    if declared["learning_rate"].sampling != "log":
        return ("learning_rate is sampled uniformly: 9 of 10 draws between 1e-4 and 1e-2 would "
                "land above 1e-3; add sampling='log' so every order of magnitude gets its share")
    for name, kind in VALUE_TYPES.items():
        if not all(isinstance(v, kind) for v in declared[name].values):
            return f"the choices of {name} should be {kind.__name__}s, got {declared[name].values}"
    if not isinstance(model, keras.Model):
        return f"build(hp) should return the Keras model, not {type(model).__name__}"
    if not getattr(model, "compiled", False) or model.optimizer is None:
        return ("the model is not compiled: call model.compile(optimizer=..., loss=..., "
                "metrics=['accuracy']) before returning it; the tuner only fits")
    expected = (None, CIFAR_CLASSES)
    got = tuple(model.compute_output_shape((None, *CIFAR_SHAPE)))
    if got != expected:
        return f"for 32x32x3 images the model should output {expected}, got {got}"
    blocks = declared["conv_blocks"]
    for value in (blocks.min_value, blocks.max_value):
        fixed = keras_tuner.HyperParameters()
        fixed.Fixed("conv_blocks", value)
        convs = _count_layers(_built(build, fixed), keras.layers.Conv2D)
        if convs != value:
            return (f"with conv_blocks={value} your model has {convs} Conv2D layers: use the value "
                    "hp.Int('conv_blocks', ...) returns as the number of blocks")
    return None
