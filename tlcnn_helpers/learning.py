"""How a network learns, in NumPy: softmax, cross-entropy, label smoothing, batch
normalisation and the numerical gradient, written to be read and checked against Keras.

Everything here is a reference the notebook compares Keras with (``tests/test_learning.py``
checks the agreement to 1e-5); none of it is used for training.

>>> logits = np.array([[2.0, 1.0, 0.0]])
>>> np.round(softmax(logits), 3).tolist()
[[0.665, 0.245, 0.09]]
>>> round(float(cross_entropy(softmax(logits), np.array([0]))), 3)
0.408
>>> np.round(smoothed_targets(np.array([0]), 9, 0.1)[0, :2], 3).tolist()
[0.911, 0.011]

Used by notebook 03 (how a CNN learns) and its exercises.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import ModelInputError
from .pipelines import to_one_hot

# Central differences in float64 with this step agree with an exact gradient to about 1e-9
# (relative error); a gradient check passes below GRADIENT_TOLERANCE. CS231n's guide calls
# relative errors under 1e-7 good and over 1e-2 probably wrong.
NUMERICAL_STEP = 1e-5
GRADIENT_TOLERANCE = 1e-6


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities from scores along the last axis: ``exp(z) / sum(exp(z))``.

    The largest score is subtracted first; the result is the same and ``exp`` cannot
    overflow.

    >>> softmax(np.array([1000.0, 1000.0])).tolist()
    [0.5, 0.5]
    """
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def smoothed_targets(labels: np.ndarray, num_classes: int, smoothing: float) -> np.ndarray:
    """Keras' label smoothing: ``y * (1 - e) + e / K`` for one-hot ``y``, ``K`` classes.

    The same formula as ``keras.losses.CategoricalCrossentropy(label_smoothing=e)`` applies
    (``keras/src/losses/losses.py``, ``categorical_crossentropy``).

    >>> np.round(smoothed_targets(np.array([1]), 3, 0.3), 2).tolist()
    [[0.1, 0.8, 0.1]]
    """
    if not 0.0 <= smoothing < 1.0:
        raise ModelInputError(f"smoothing={smoothing}: use a number in [0, 1), such as 0.1")
    return to_one_hot(labels, num_classes).astype("float64") * (1.0 - smoothing) + smoothing / num_classes


def cross_entropy(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """Mean cross-entropy ``-sum(t * log p)`` over a batch.

    ``targets`` are integer labels ``(N,)`` (the sparse form) or target rows ``(N, K)``
    (one-hot or smoothed); both give the same number for the same labels. Probabilities
    are clipped to ``[1e-7, 1]`` as Keras does, so a zero never gives infinity.

    >>> p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    >>> cross_entropy(p, np.array([0, 2])) == cross_entropy(p, to_one_hot(np.array([0, 2]), 3))
    True
    """
    probabilities = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1.0)
    targets = np.asarray(targets)
    if targets.ndim == 1:
        targets = to_one_hot(targets, probabilities.shape[-1]).astype("float64")
    if targets.shape != probabilities.shape:
        raise ModelInputError(f"targets {targets.shape} and probabilities "
                              f"{probabilities.shape} differ: give one row per example")
    return float(np.mean(-np.sum(targets * np.log(probabilities), axis=-1)))


def batch_moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (biased) variance of each channel over every axis but the last.

    For images ``(N, H, W, C)`` that is over the images and all positions, as
    ``BatchNormalization`` does in training.

    >>> mean, var = batch_moments(np.array([[1.0, 10.0], [3.0, 10.0]]))
    >>> mean.tolist(), var.tolist()
    ([2.0, 10.0], [1.0, 0.0])
    """
    x = np.asarray(x, dtype=np.float64)
    axes = tuple(range(x.ndim - 1))
    return x.mean(axis=axes), x.var(axis=axes)


def batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                      mean: np.ndarray | None = None, variance: np.ndarray | None = None,
                      epsilon: float = 1e-3) -> np.ndarray:
    """``gamma * (x - mean) / sqrt(variance + epsilon) + beta``, channel by channel.

    Without ``mean`` and ``variance`` the batch's own (:func:`batch_moments`) are used:
    what ``BatchNormalization`` does with ``training=True``. Passing the moving averages
    gives ``training=False``. ``epsilon`` is Keras' default, 1e-3.

    >>> out = batchnorm_forward(np.array([[1.0], [3.0]]), np.ones(1), np.zeros(1))
    >>> np.round(out, 4).tolist()
    [[-0.9995], [0.9995]]
    """
    x = np.asarray(x, dtype=np.float64)
    if mean is None or variance is None:
        mean, variance = batch_moments(x)
    return gamma * (x - mean) / np.sqrt(np.asarray(variance) + epsilon) + beta


def moving_average_weight(steps: int | np.ndarray, momentum: float = 0.99) -> np.ndarray:
    """How far a moving average started at 0 has gone towards a constant after ``steps``:
    ``1 - momentum ** steps`` (BatchNorm's moving mean starts at 0, its variance at 1).

    >>> np.round(moving_average_weight(np.array([56, 226])), 2).tolist()
    [0.43, 0.9]
    """
    return 1.0 - momentum ** np.asarray(steps, dtype=np.float64)


def numerical_gradient(function: Callable[[np.ndarray], float], x: np.ndarray,
                       step: float = NUMERICAL_STEP) -> np.ndarray:
    """The gradient of a scalar ``function`` at ``x`` by central differences:
    ``(f(x + h) - f(x - h)) / 2h`` for each entry in turn (float64; ``x`` is not changed).

    >>> g = numerical_gradient(lambda w: float(np.sum(w ** 2)), np.array([1.0, -2.0]))
    >>> np.round(g, 6).tolist()
    [2.0, -4.0]
    """
    x = np.array(x, dtype=np.float64)  # a copy: the caller's array stays as it was
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + step
        above = function(x)
        x[index] = original - step
        below = function(x)
        x[index] = original
        grad[index] = (above - below) / (2 * step)
    return grad


def relative_error(analytic: np.ndarray, numerical: np.ndarray) -> float:
    """CS231n's gradient-check measure, the largest ``|a - n| / max(|a|, |n|)`` (entries
    where both are below 1e-12 count as agreeing).

    >>> relative_error(np.array([1.0, 0.0]), np.array([1.0 + 1e-9, 0.0])) < 1e-8
    True
    """
    analytic = np.asarray(analytic, dtype=np.float64)
    numerical = np.asarray(numerical, dtype=np.float64)
    if analytic.shape != numerical.shape:
        raise ModelInputError(f"gradients of shapes {analytic.shape} and {numerical.shape}: "
                              "compare the gradient of the same weights")
    scale = np.maximum(np.abs(analytic), np.abs(numerical))
    error = np.where(scale < 1e-12, 0.0, np.abs(analytic - numerical) / np.maximum(scale, 1e-12))
    return float(error.max())


def gradient_check(analytic: np.ndarray, numerical: np.ndarray,
                   tolerance: float = GRADIENT_TOLERANCE) -> bool:
    """Whether the two gradients agree: :func:`relative_error` below ``tolerance``.

    >>> gradient_check(np.array([2.0, -4.0]), np.array([2.0, -4.0000000001]))
    True
    >>> gradient_check(np.array([2.0, -4.0]), np.array([2.0, 4.0]))
    False
    """
    return relative_error(analytic, numerical) < tolerance
