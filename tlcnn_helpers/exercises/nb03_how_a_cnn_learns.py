"""The exercises of notebook 03 (how a CNN learns), registered with :mod:`tlcnn_helpers.exercises`.

The checkers compare with Keras itself (``SparseCategoricalCrossentropy``,
``BatchNormalization``), not with a copy of the formula; the typical mistakes they name are
recognised by computing each mistake.

>>> from tlcnn_helpers import exercises
>>> exercises.exercises_of("03")
['03.batchnorm', '03.cross_entropy', '03.lr_too_high']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UnfinishedAnswer
from ..learning import batch_moments, softmax
from . import _call, register

# What the notebook's run shows at 0.5 (benchmarks/README.md, notebook 03: the loss stays at
# 2.22-2.23 and the accuracy at chance in `teach`); the reference and the checker both use it.
LR_TOO_HIGH_OUTCOME = "c"
LR_CHOICES = {
    "a": "it learns faster and ends with a lower loss than at 0.05",
    "b": "about the same as at 0.05: the optimizer follows the same gradients either way",
    "c": "it learns nothing useful: the loss stays at or above ln 9 = 2.20 (or becomes nan) "
         "and the accuracy stays near chance",
}


# ---------------------------------------------------------------------------- cross-entropy
def _reference_softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    # Softmax with the largest score subtracted (no overflow), then the mean of -log p[label].
    shifted = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    return float(np.mean(-np.log(probabilities[np.arange(len(labels)), labels])))


def _keras_sparse_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    import keras

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return float(keras.ops.convert_to_numpy(loss(labels, logits.astype("float32"))))


def _cross_entropy_mistakes(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """What typical wrong versions return, each computed, with the hint that names it."""
    probabilities = softmax(logits)
    rows = np.arange(len(labels))
    true_p = probabilities[rows, labels]
    return {
        "the loss is minus the log: yours has the wrong sign": float(np.mean(np.log(true_p))),
        "you summed over the batch; Keras takes the mean over the examples":
            float(np.sum(-np.log(true_p))),
        "apply softmax to the logits first, then take -log of the true class's probability":
            float(np.mean(-logits[rows, labels])),
        "use the natural logarithm (np.log), not log10": float(np.mean(-np.log10(true_p))),
        "take the probability of the true class (p[i, labels[i]]), not the largest one":
            float(np.mean(-np.log(probabilities.max(axis=1)))),
    }


@register("03.cross_entropy",
          "Complete `softmax_cross_entropy(logits, labels)`: from scores (N, K) and integer "
          "labels (N,) return the mean cross-entropy, as "
          "keras.losses.SparseCategoricalCrossentropy(from_logits=True) computes it.",
          reference=lambda: _reference_softmax_cross_entropy)
def _check_cross_entropy(function: Any) -> str | None:
    rng = np.random.default_rng(3)
    logits = rng.normal(scale=2.0, size=(6, 9))
    labels = rng.integers(0, 9, size=6)
    expected = _keras_sparse_cross_entropy(logits, labels)
    got = _call(function, logits.copy(), labels.copy())
    if got.shape not in ((), (1,)):
        return (f"return one number (the mean over the batch), not an array of shape "
                f"{got.shape}")
    got = float(got.reshape(()))
    if not np.isfinite(got):
        return f"your function returned {got} on ordinary scores: check the log and exp"
    if abs(got - expected) > 1e-4:
        for hint, value in _cross_entropy_mistakes(logits, labels).items():
            if abs(got - value) < 1e-4:
                return f"expected {expected:.4f}, got {got:.4f}: {hint}"
        return (f"expected {expected:.4f}, got {got:.4f}: p = exp(z) / sum(exp(z)) per row, "
                "then the mean of -log p[i, labels[i]]")
    big = logits + 1000.0  # the same scores shifted: softmax is unchanged, exp(1000) overflows
    expected_big = _keras_sparse_cross_entropy(big, labels)
    with np.errstate(all="ignore"):
        got_big = float(np.asarray(_call(function, big.copy(), labels.copy())).reshape(()))
    if not np.isfinite(got_big) or abs(got_big - expected_big) > 1e-3:
        return (f"right on small scores, but with 1000 added to every score (softmax does not "
                f"change) you return {got_big:.4g} instead of {expected_big:.4g}: exp "
                "overflows; subtract each row's largest score before exp")
    return None


# ---------------------------------------------------------------------------- batchnorm
def _reference_batchnorm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                         epsilon: float = 1e-3) -> np.ndarray:
    # Statistics per channel over the images and all positions (every axis but the last).
    mean = x.mean(axis=(0, 1, 2))
    variance = x.var(axis=(0, 1, 2))
    return gamma * (x - mean) / np.sqrt(variance + epsilon) + beta


def _keras_batchnorm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    import keras

    layer = keras.layers.BatchNormalization(epsilon=1e-3)
    layer.build(x.shape)
    layer.gamma.assign(gamma.astype("float32"))
    layer.beta.assign(beta.astype("float32"))
    return keras.ops.convert_to_numpy(layer(x.astype("float32"), training=True))


def _batchnorm_mistakes(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray
                        ) -> dict[str, np.ndarray]:
    mean, variance = batch_moments(x)
    eps = 1e-3
    per_image_mean = x.mean(axis=(1, 2), keepdims=True)
    per_image_var = x.var(axis=(1, 2), keepdims=True)
    return {
        "epsilon goes inside the square root: sqrt(variance + epsilon)":
            gamma * (x - mean) / (np.sqrt(variance) + eps) + beta,
        "you left out epsilon: divide by sqrt(variance + epsilon), epsilon = 1e-3":
            gamma * (x - mean) / np.sqrt(variance) + beta,
        "use the plain (biased) variance, x.var(), as Keras does; you divided by N - 1":
            gamma * (x - mean) / np.sqrt(x.var(axis=(0, 1, 2), ddof=1) + eps) + beta,
        "you normalised each image on its own; the statistics are over the whole batch "
        "(axes 0, 1 and 2), one mean and variance per channel":
            gamma * (x - per_image_mean) / np.sqrt(per_image_var + eps) + beta,
        "one mean and variance per channel, not one for the whole tensor: use axis=(0, 1, 2)":
            gamma * (x - x.mean()) / np.sqrt(x.var() + eps) + beta,
        "after normalising, scale by gamma and shift by beta":
            (x - mean) / np.sqrt(variance + eps),
    }


@register("03.batchnorm",
          "Complete `batchnorm(x, gamma, beta, epsilon=1e-3)`: the output of "
          "BatchNormalization with training=True for a batch x of shape (N, H, W, C), with "
          "scale gamma and offset beta (C numbers each).",
          reference=lambda: _reference_batchnorm)
def _check_batchnorm(function: Any) -> str | None:
    rng = np.random.default_rng(4)
    # A small spread (variance about 4e-4) so that epsilon and N - 1 both show.
    x = 1.0 + 0.02 * rng.normal(size=(4, 3, 3, 2)) + rng.normal(size=(1, 1, 1, 2))
    gamma, beta = np.array([1.5, 0.5]), np.array([0.2, -1.0])
    expected = _keras_batchnorm(x, gamma, beta)
    got = _call(function, x.copy(), gamma.copy(), beta.copy())
    if got.shape != expected.shape:
        return (f"expected shape {expected.shape} (the same as x), got {got.shape}: keep "
                "the batch, normalise each value")
    if np.allclose(got, expected, atol=1e-3):
        return None
    for hint, value in _batchnorm_mistakes(x, gamma, beta).items():
        if np.allclose(got, value, atol=1e-4):
            return hint
    return ("not what BatchNormalization gives: per channel, mean and variance over axes "
            "(0, 1, 2), then gamma * (x - mean) / sqrt(variance + epsilon) + beta")


# ---------------------------------------------------------------------------- predict, then run
@register("03.lr_too_high",
          "Predict before you run: SGD with momentum 0.9 at learning rate 0.5, ten times the "
          "0.05 of section 3, on the same small problem. Set `prediction` to 'a', 'b' or 'c'.",
          reference=lambda: LR_TOO_HIGH_OUTCOME)
def _check_lr_too_high(answer: Any) -> str | None:
    if not isinstance(answer, str) or answer.strip().lower() not in LR_CHOICES:
        raise UnfinishedAnswer("set `prediction` to one of the letters 'a', 'b' or 'c'")
    choice = answer.strip().lower()
    if choice == LR_TOO_HIGH_OUTCOME:
        return None
    why = {
        "a": "a larger step only helps while the loss surface is roughly straight over the "
             "step; at 0.5 (with momentum 0.9 the steps add up to about 10x that) each update "
             "overshoots the valley it aims for, and the loss does not fall. The range test "
             "in section 3 shows where this starts",
        "b": "SGD does not adapt its step size: the update is the learning rate times the "
             "gradient (plus momentum), so ten times the rate is ten times the step. Look "
             "at where the range test's loss shoots up",
    }[choice]
    return f"you chose {choice!r} ({LR_CHOICES[choice]}); run the next cell and see. {why}"
