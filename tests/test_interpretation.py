"""The maps of notebook 07 on models whose answer is known: a model that reads only the left
half of the image, and global-pooling models where CAM and Grad-CAM are the same map."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tlcnn_helpers import interpretation
from tlcnn_helpers.errors import ModelInputError
from tlcnn_helpers.models import fast_cifar_cnn, paper_cnn

SIZE = 16
HALF_SIZE = 32  # the left-half model's images: its receptive field spills over a few columns


def left_half_model(seed: int = 0) -> keras.Model:
    """A CNN whose output depends only on the left half: the right half is multiplied by 0."""
    keras.utils.set_random_seed(seed)
    mask = np.zeros((1, HALF_SIZE, HALF_SIZE, 1), "float32")
    mask[:, :, : HALF_SIZE // 2] = 1.0
    inputs = keras.Input((HALF_SIZE, HALF_SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Lambda(lambda t: t * mask, name="left_half_only")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", use_bias=False)(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", use_bias=False,
                            name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def gap_model(pooling: str = "avg", seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="last_conv")(x)
    pool = (keras.layers.GlobalAveragePooling2D() if pooling == "avg"
            else keras.layers.GlobalMaxPooling2D())
    outputs = keras.layers.Dense(4, activation="softmax")(pool(x))
    return with_random_head_bias(keras.Model(inputs, outputs))


def with_random_head_bias(model: keras.Model) -> keras.Model:
    """A fresh Dense bias is all zeros: make it matter, so a dropped bias is caught."""
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel, np.random.default_rng(5).normal(size=bias.shape)])
    return model


def images(count: int = 6, seed: int = 1, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype("float32")


LEFT = np.zeros((HALF_SIZE, HALF_SIZE), bool)
LEFT[:, : HALF_SIZE // 2] = True


def test_saliency_of_a_left_half_model_lies_on_the_left_half():
    maps = interpretation.saliency_map(left_half_model(), images(size=HALF_SIZE))
    assert maps.shape == (6, HALF_SIZE, HALF_SIZE)
    assert maps.sum() > 0
    assert (interpretation.mass_share(maps, LEFT) >= 0.8).all()


def test_grad_cam_of_a_left_half_model_lies_on_the_left_half():
    model = left_half_model()
    x = images(size=HALF_SIZE)
    for classes in (None, 0, 2):
        maps = interpretation.upsample(interpretation.grad_cam(model, x, classes), HALF_SIZE)
        shares = interpretation.mass_share(maps, LEFT)
        assert (shares[maps.sum(axis=(1, 2)) > 0] >= 0.8).all(), (classes, shares)


def test_occlusion_of_a_left_half_model_changes_the_score_only_for_left_half_patches():
    drops = interpretation.occlusion_map(left_half_model(), images(3, size=HALF_SIZE), patch=8)
    assert drops.shape == (3, 4, 4)  # patch columns 0, 1 cover the left half; 2, 3 the right
    assert np.abs(drops[:, :, 2:]).max() == 0.0
    assert (np.abs(drops[:, :, :2]).max(axis=(1, 2)) > 1e-5).all()


def test_saliency_changes_when_the_weights_are_randomised():
    """Adebayo et al. (2018): a map that survives re-randomised weights explains nothing."""
    model = gap_model()
    x = images(2)
    before = interpretation.saliency_map(model, x, classes=0)
    after = interpretation.saliency_map(interpretation.randomized_copy(model, seed=7), x, classes=0)
    assert not np.allclose(before, after)
    assert interpretation.rank_correlation(before, after) < 0.9
    again = interpretation.saliency_map(model, x, classes=0)
    np.testing.assert_allclose(before, again, rtol=1e-5)  # the change is the weights' doing


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_cam_is_grad_cam_times_the_number_of_positions_for_global_pooling_and_dense(pooling):
    """score = sum_k w_k pool(A_k) + b, so d score / d A_k sums to w_k over the positions:
    Grad-CAM's weight is w_k / (h * w) and, before its ReLU, Grad-CAM = CAM / (h * w)."""
    model = gap_model(pooling)
    x = images()
    for classes in (None, 1):
        cam = interpretation.class_activation_map(model, x, classes)
        grad = interpretation.grad_cam(model, x, classes, layer="last_conv", relu=False)
        height, width = cam.shape[1:]
        np.testing.assert_allclose(grad * height * width, cam, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(interpretation.grad_cam(model, x, classes, layer="last_conv"),
                                   np.maximum(cam, 0) / (height * width), rtol=1e-4, atol=1e-6)


def test_cam_averaged_over_positions_plus_the_bias_is_the_class_logit():
    model = gap_model("avg")
    x = images()
    cam = interpretation.class_activation_map(model, x, classes=2)
    logits = interpretation.class_logits(model, x)
    bias = model.layers[-1].get_weights()[1]
    np.testing.assert_allclose(cam.mean(axis=(1, 2)) + bias[2], logits[:, 2], rtol=1e-4,
                               atol=1e-5)


def test_class_logits_give_the_model_probabilities_after_softmax():
    model = with_random_head_bias(fast_cifar_cnn((SIZE, SIZE, 3), widths=(4, 8),
                                                 residual_stages=()))
    x = images(3)
    probabilities = np.asarray(keras.ops.softmax(interpretation.class_logits(model, x)))
    np.testing.assert_allclose(probabilities, model.predict(x, verbose=0), atol=1e-5)


def test_cam_refuses_a_flatten_model_and_names_the_fix():
    with pytest.raises(ModelInputError, match="make_size_agnostic"):
        interpretation.class_activation_map(paper_cnn(filters=(4, 8)), np.zeros((1, 32, 32, 3)))


def test_grad_cam_defaults_to_the_last_map_before_global_pooling():
    model = fast_cifar_cnn(widths=(4, 8), residual_stages=())
    assert interpretation.feature_layer_name(model) == "stage2_relu"
    assert interpretation.grad_cam(model, np.zeros((1, 32, 32, 3))).shape == (1, 8, 8)


def test_hiding_the_top_patch_greys_the_square_with_the_most_map_mass():
    x = images(1)
    maps = np.zeros((1, SIZE, SIZE))
    maps[0, 13, 5] = 1.0  # inside the patch at rows 12..15, columns 4..7
    hidden = interpretation.hide_top_patch(x, maps, 4)
    changed = np.argwhere((hidden != x).any(axis=-1)[0])
    assert changed[:, 0].min() >= 12 and changed[:, 1].min() >= 4 and changed[:, 1].max() <= 7
    np.testing.assert_allclose(hidden[0, 12, 4], x[0].mean(axis=(0, 1)), rtol=1e-6)


def test_nearest_neighbours_never_return_the_query_itself():
    features = np.random.default_rng(0).normal(size=(30, 4))
    found = interpretation.nearest_neighbours(features, [0, 5, 9], k=4)
    assert found.shape == (3, 4)
    assert all(q not in row for q, row in zip([0, 5, 9], found, strict=True))
    distances = np.linalg.norm(features - features[5], axis=1)
    assert found[1, 0] == np.argsort(distances)[1]


def test_most_confused_with_ignores_the_correct_predictions():
    matrix = np.array([[50, 3, 9], [1, 40, 2], [8, 8, 30]])
    assert interpretation.most_confused_with(matrix, 0) == 2
    assert interpretation.most_confused_with(matrix, 2) == 0  # ties: the first class


# ---------------------------------------------------------------------------- notebook 07's exercises
def probability_saliency(model, x, class_index):
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = model(x, training=False)[:, class_index]
    return np.max(np.abs(tape.gradient(score, x)), axis=-1)


def signed_saliency(model, x, class_index):
    import tensorflow as tf

    head = model.layers[-1]
    features = keras.Model(model.input, head.input)
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = (features(x, training=False) @ head.kernel + head.bias)[:, class_index]
    return tape.gradient(score, x).numpy()


@pytest.mark.parametrize("function, words", [
    (lambda m, x, c: signed_saliency(m, x, c).max(axis=-1), "absolute value"),
    (lambda m, x, c: np.abs(signed_saliency(m, x, c)).mean(axis=-1), "averaged over the channels"),
    (lambda m, x, c: np.abs(signed_saliency(m, x, c)), "largest absolute gradient over the 3"),
    (probability_saliency, "class *logit*"),
])
def test_saliency_exercise_explains_typical_mistakes(function, words):
    from tlcnn_helpers.exercises import feedback

    result = feedback("07.saliency_by_hand", function)
    assert result.status == "wrong" and words in result.message, result


def test_cat_confusion_exercise_checks_the_guess_against_the_matrix_passed_in():
    from tlcnn_helpers.data import class_names
    from tlcnn_helpers.exercises import feedback

    names = class_names()
    matrix = np.diag(np.full(9, 50))
    matrix[names.index("cat"), names.index("deer")] = 9
    matrix[names.index("cat"), names.index("dog")] = 4
    assert feedback("07.confused_with_cat", ("deer", matrix)).passed
    wrong = feedback("07.confused_with_cat", ("dog", matrix))
    assert not wrong.passed and "to deer" in wrong.message and "to dog" in wrong.message
    assert "not one of the 9" in feedback("07.confused_with_cat", ("wolf", matrix)).message
    assert "other" in feedback("07.confused_with_cat", ("cat", matrix)).message
    assert feedback("07.confused_with_cat", (None, matrix)).status == "todo"
