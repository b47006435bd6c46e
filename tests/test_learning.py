"""Notebook 03's NumPy references agree with Keras, the gradient check tells right from wrong,
the Keras behaviours the notebook states hold in the installed Keras, and the exercises of
notebook 03 accept the reference and name typical mistakes."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tlcnn_helpers import convolution, learning, training
from tlcnn_helpers.exercises import feedback, reference_solution
from tlcnn_helpers.pipelines import to_one_hot

TOLERANCE = 1e-5


def to_numpy(value):
    return keras.ops.convert_to_numpy(value)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(8, 9)).astype("float32")
    labels = rng.integers(0, 9, size=8)
    return logits, labels


def test_numpy_softmax_matches_keras_and_survives_huge_scores(batch):
    logits, _ = batch
    assert np.abs(learning.softmax(logits) - to_numpy(keras.activations.softmax(logits))).max() < TOLERANCE
    shifted = learning.softmax(logits.astype(np.float64) + 1000.0)
    assert np.all(np.isfinite(shifted)) and np.allclose(shifted, learning.softmax(logits), atol=1e-9)


def test_cross_entropy_matches_keras_with_sparse_and_one_hot_labels(batch):
    logits, labels = batch
    probabilities = to_numpy(keras.activations.softmax(logits))
    by_hand = learning.cross_entropy(probabilities, labels)
    sparse = float(keras.losses.SparseCategoricalCrossentropy()(labels, probabilities))
    one_hot = float(keras.losses.CategoricalCrossentropy()(to_one_hot(labels, 9), probabilities))
    from_logits = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits))
    assert abs(by_hand - sparse) < TOLERANCE
    assert abs(by_hand - one_hot) < TOLERANCE
    assert abs(by_hand - from_logits) < TOLERANCE
    assert by_hand == learning.cross_entropy(probabilities, to_one_hot(labels, 9))


def test_a_uniform_guess_scores_ln_9():
    assert learning.cross_entropy(np.full((3, 9), 1 / 9), np.array([0, 4, 8])) == pytest.approx(np.log(9))


def test_label_smoothing_targets_are_kerass_0_911_and_0_011(batch):
    logits, labels = batch
    targets = learning.smoothed_targets(labels, 9, 0.1)
    assert targets[0, labels[0]] == pytest.approx(0.9111, abs=1e-4)
    assert np.delete(targets[0], labels[0]) == pytest.approx(np.full(8, 0.0111), abs=1e-4)
    probabilities = to_numpy(keras.activations.softmax(logits))
    keras_loss = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(
        to_one_hot(labels, 9), probabilities)
    assert abs(float(keras_loss) - learning.cross_entropy(probabilities, targets)) < TOLERANCE


def batchnorm_layer(x):
    layer = keras.layers.BatchNormalization()
    layer.build(x.shape)
    layer.gamma.assign(np.array([1.0, 2.0, 0.5], "float32"))
    layer.beta.assign(np.array([0.0, 1.0, -1.0], "float32"))
    return layer


def test_numpy_batchnorm_matches_keras_in_training_and_in_inference():
    x = (5 + 3 * np.random.default_rng(1).normal(size=(16, 4, 4, 3))).astype("float32")
    layer = batchnorm_layer(x)
    gamma, beta = to_numpy(layer.gamma), to_numpy(layer.beta)
    trained = to_numpy(layer(x, training=True))
    assert np.abs(learning.batchnorm_forward(x, gamma, beta) - trained).max() < TOLERANCE
    inferred = to_numpy(layer(x, training=False))
    by_hand = learning.batchnorm_forward(x, gamma, beta, to_numpy(layer.moving_mean),
                                         to_numpy(layer.moving_variance))
    assert np.abs(by_hand - inferred).max() < TOLERANCE
    assert np.abs(trained - inferred).max() > 1.0  # the two modes really differ here


def test_moving_averages_cover_one_minus_momentum_to_the_n_of_the_way():
    layer = keras.layers.BatchNormalization(momentum=0.99)
    constant = np.full((8, 2), 5.0, dtype="float32")
    for _ in range(56):
        layer(constant, training=True)
    expected = 5.0 * learning.moving_average_weight(56, 0.99)
    assert to_numpy(layer.moving_mean) == pytest.approx([expected] * 2, rel=1e-4)


def test_a_frozen_batchnorm_runs_in_inference_mode_in_keras_3():
    x = (5 + 3 * np.random.default_rng(2).normal(size=(16, 3))).astype("float32")
    layer = batchnorm_layer(x)
    assert not np.allclose(layer(x, training=True), layer(x, training=False))
    layer.trainable = False
    assert np.allclose(layer(x, training=True), layer(x, training=False))


@pytest.mark.parametrize("optimizer_class", [keras.optimizers.AdamW, keras.optimizers.Adam])
def test_weight_decay_is_decoupled_from_the_gradient_step(optimizer_class):
    w = keras.Variable(np.array([1.0, -2.0], dtype="float32"))
    optimizer_class(learning_rate=0.1, weight_decay=0.5).apply([np.zeros(2, "float32")], [w])
    assert to_numpy(w) == pytest.approx([0.95, -1.9])


def test_adamw_is_adam_with_a_default_decay_of_0_004():
    assert keras.optimizers.AdamW().weight_decay == pytest.approx(0.004)
    assert keras.optimizers.Adam().weight_decay is None


def test_the_fast_recipes_keras_schedule_is_warmup_cosine():
    recipe = training.get_recipe("fast", epochs=2)
    schedule = training.learning_rate_schedule(recipe, steps_per_epoch=100)
    got = [float(schedule(step)) for step in range(200)]
    expected = [training.warmup_cosine(step / 200, recipe.learning_rate, recipe.warmup_fraction)
                for step in range(200)]
    assert np.abs(np.array(got) - np.array(expected)).max() < 1e-6


# ---------------------------------------------------------------------------- gradient check
@pytest.fixture
def convolution_gradients():
    rng = np.random.default_rng(3)
    image, target = rng.normal(size=(1, 6, 6, 2)), rng.normal(size=(1, 4, 4, 3))
    layer = keras.layers.Conv2D(3, 3, use_bias=False, dtype="float64")
    layer.build(image.shape)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum((tf.tanh(layer(image)) - target) ** 2)
    analytic = tape.gradient(loss, layer.kernel).numpy()

    def loss_of(kernel):
        return float(np.sum((np.tanh(convolution.conv2d(image, kernel)) - target) ** 2))

    kernel = to_numpy(layer.kernel)
    numerical = learning.numerical_gradient(loss_of, kernel)
    assert np.array_equal(kernel, to_numpy(layer.kernel)), "the check changed the weights"
    return analytic, numerical


def test_gradient_tape_passes_the_check_against_central_differences(convolution_gradients):
    analytic, numerical = convolution_gradients
    assert learning.relative_error(analytic, numerical) < learning.GRADIENT_TOLERANCE
    assert learning.gradient_check(analytic, numerical)


@pytest.mark.parametrize("mistake", [
    lambda g: g[::-1],  # rows flipped
    lambda g: g[:, :, ::-1],  # input channels swapped
    lambda g: 1.01 * g,  # off by 1%
    lambda g: -g,  # wrong sign
])
def test_the_gradient_check_fails_a_wrong_gradient(convolution_gradients, mistake):
    analytic, numerical = convolution_gradients
    assert not learning.gradient_check(mistake(analytic), numerical)


def test_forward_differences_would_not_pass_the_stated_tolerance():
    # Why the course uses central differences: (f(x + h) - f(x)) / h errs by O(h).
    rng = np.random.default_rng(3)
    image, target = rng.normal(size=(1, 6, 6, 2)), rng.normal(size=(1, 4, 4, 3))
    kernel = rng.normal(size=(3, 3, 2, 3))

    def loss_of(k):
        return float(np.sum((np.tanh(convolution.conv2d(image, k)) - target) ** 2))

    step, base = learning.NUMERICAL_STEP, loss_of(kernel)
    forward = np.zeros_like(kernel)
    for index in np.ndindex(kernel.shape):
        bumped = kernel.copy()
        bumped[index] += step
        forward[index] = (loss_of(bumped) - base) / step
    central = learning.numerical_gradient(loss_of, kernel)
    assert learning.relative_error(forward, central) > learning.GRADIENT_TOLERANCE


# ---------------------------------------------------------------------------- exercises
@pytest.mark.parametrize("name", ["03.cross_entropy", "03.batchnorm", "03.lr_too_high"])
def test_notebook_03_exercises_accept_their_reference(name):
    assert feedback(name, reference_solution(name)).passed


def rows_softmax(z):
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def picked(z, y):
    return rows_softmax(z)[np.arange(len(y)), y]


def stable_picked(z, y):
    return rows_softmax(z - z.max(axis=1, keepdims=True))[np.arange(len(y)), y]


def axes(x):
    return x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))


CROSS_ENTROPY_MISTAKES = [
    (lambda z, y: np.mean(-np.log(picked(z, y))), "subtract each row's largest score"),
    (lambda z, y: np.sum(-np.log(stable_picked(z, y))), "you summed over the batch"),
    (lambda z, y: np.mean(np.log(stable_picked(z, y))), "wrong sign"),
    (lambda z, y: np.mean(-z[np.arange(len(y)), y]), "apply softmax to the logits first"),
    (lambda z, y: np.mean(-np.log10(stable_picked(z, y))), "natural logarithm"),
    (lambda z, y: -np.log(stable_picked(z, y)), "return one number"),
]
BATCHNORM_MISTAKES = [
    (lambda x, g, b, epsilon=1e-3: g * (x - axes(x)[0]) / (np.sqrt(axes(x)[1]) + epsilon) + b,
     "epsilon goes inside the square root"),
    (lambda x, g, b, epsilon=1e-3: g * (x - axes(x)[0]) / np.sqrt(axes(x)[1]) + b,
     "you left out epsilon"),
    (lambda x, g, b, epsilon=1e-3: g * (x - axes(x)[0])
     / np.sqrt(x.var(axis=(0, 1, 2), ddof=1) + epsilon) + b, "N - 1"),
    (lambda x, g, b, epsilon=1e-3: g * (x - x.mean(axis=(1, 2), keepdims=True))
     / np.sqrt(x.var(axis=(1, 2), keepdims=True) + epsilon) + b, "each image on its own"),
    (lambda x, g, b, epsilon=1e-3: g * (x - x.mean()) / np.sqrt(x.var() + epsilon) + b,
     "one mean and variance per channel"),
    (lambda x, g, b, epsilon=1e-3: (x - axes(x)[0]) / np.sqrt(axes(x)[1] + epsilon),
     "scale by gamma and shift by beta"),
]


@pytest.mark.parametrize("name,answer,words", [
    *[("03.cross_entropy", f, w) for f, w in CROSS_ENTROPY_MISTAKES],
    *[("03.batchnorm", f, w) for f, w in BATCHNORM_MISTAKES],
    ("03.lr_too_high", "a", "overshoots"),
    ("03.lr_too_high", "B", "ten times the rate is ten times the step"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 20 else "")
def test_notebook_03_exercises_name_typical_mistakes(name, answer, words):
    with np.errstate(all="ignore"):
        result = feedback(name, answer)
    assert result.status == "wrong", result
    assert words in result.message, result.message


def test_a_prediction_that_is_not_a_letter_is_not_done_yet():
    assert feedback("03.lr_too_high", "maybe").status == "todo"
