"""The exercises of notebook 05 (tuning), registered with :mod:`tlcnn_helpers.exercises`.

The package imports this module, so the notebook only calls ``exercises.check(...)``.

>>> from tlcnn_helpers import exercises
>>> exercises.exercises_of("05")
['05.grid_size', '05.log_uniform_sampler', '05.random_trials_needed']
>>> exercises.check("05.grid_size", 729)
✅ 05.grid_size: correct!
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _call, _whole_number, register


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
