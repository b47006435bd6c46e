"""Each exercise's answer key checked against a source that does not share its code: Keras'
own layers (count_params, compute_output_shape, outputs), the dataset files the course
writes, the class lists, brute-force loops. The other exercise tests check that the
checkers accept these keys; this one checks that the keys are right.

Notebooks 04-07 have their own key tests beside their checkers' tests.
"""

import keras
import numpy as np
import pytest

from tlcnn_helpers import synthetic
from tlcnn_helpers.data import SHARED_CLASSES, load_cifar10, load_stl10
from tlcnn_helpers.exercises import feedback, reference_solution

RNG = np.random.default_rng(7)


def test_cifar_row_bytes_key_is_the_size_of_one_row_in_a_binary_batch(tmp_path):
    synthetic.write_cifar10(tmp_path, train_per_class=2, test_per_class=1)
    batch = tmp_path / "cifar-10-batches-bin" / "test_batch.bin"
    rows = 10 * 1  # ten CIFAR-10 classes, one test image each
    assert batch.stat().st_size / rows == reference_solution("00.cifar_row_bytes")


def test_horse_label_key_is_horse_in_the_loaded_labels(tmp_path):
    synthetic.write_cifar10(tmp_path, train_per_class=2, test_per_class=1)
    (x, y), _ = load_cifar10(tmp_path, classes=["horse"], download=False)
    assert SHARED_CLASSES[reference_solution("00.horse_label")] == "horse"
    assert list(SHARED_CLASSES).index("horse") == reference_solution("00.horse_label")
    assert len(y) == 2


def test_pixel_ratio_key_is_the_ratio_of_the_loaded_image_sizes(tmp_path):
    synthetic.write_cifar10(tmp_path, train_per_class=1, test_per_class=1)
    synthetic.write_stl10(tmp_path, train_per_class=1, test_per_class=1)
    (cifar, _), _ = load_cifar10(tmp_path, download=False)
    (stl, _), _ = load_stl10(tmp_path, download=False)
    pixels = [int(np.prod(images.shape[1:3])) for images in (stl, cifar)]
    assert pixels[0] / pixels[1] == reference_solution("00.pixel_ratio")


def test_output_shape_key_is_what_keras_computes():
    layer = keras.layers.Conv2D(1, 5, strides=3, padding="valid")
    assert layer.compute_output_shape((1, 29, 29, 1))[1:3] == reference_solution("01.output_shape")


def test_param_count_key_is_keras_count_params():
    layer = keras.layers.Conv2D(filters=16, kernel_size=5)
    layer.build((None, 32, 32, 3))
    assert layer.count_params() == reference_solution("01.param_count")


def test_pooled_shape_and_pool_params_keys_are_what_keras_computes():
    layer = keras.layers.MaxPooling2D(pool_size=2)
    assert layer.compute_output_shape((1, 32, 32, 16))[1:] == reference_solution("02.pooled_shape")
    layer.build((None, 32, 32, 16))
    assert layer.count_params() == reference_solution("02.pool_params")


def brute_force_correlate(image, kernel, stride):
    kh, kw = kernel.shape
    rows = range(0, image.shape[0] - kh + 1, stride)
    cols = range(0, image.shape[1] - kw + 1, stride)
    return np.array([[sum(image[r + i, c + j] * kernel[i, j] for i in range(kh) for j in range(kw))
                      for c in cols] for r in rows])


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_stride_key_matches_keras_conv2d_and_a_brute_force_loop(stride):
    image, kernel = RNG.normal(size=(11, 13)), RNG.normal(size=(3, 3))
    expected = brute_force_correlate(image, kernel, stride)
    layer = keras.layers.Conv2D(1, 3, strides=stride, use_bias=False, dtype="float32")
    layer.build((None, 11, 13, 1))
    layer.kernel.assign(kernel[:, :, None, None])
    by_keras = keras.ops.convert_to_numpy(layer(image[None, :, :, None].astype("float32")))[0, :, :, 0]
    ours = reference_solution("01.stride")(image, kernel, stride)
    np.testing.assert_allclose(ours, expected, rtol=1e-10)
    np.testing.assert_allclose(ours, by_keras, rtol=1e-4, atol=1e-4)


def test_horizontal_edge_key_responds_to_dark_top_bright_bottom_only():
    kernel = np.asarray(reference_solution("01.horizontal_edges"), dtype=float)
    step = np.zeros((9, 9))
    step[5:, :] = 1.0  # dark top, bright bottom
    response = brute_force_correlate(step, kernel, 1)
    flat = brute_force_correlate(np.full((9, 9), 0.7), kernel, 1)
    assert response.max() > 0 and np.allclose(flat, 0)
    assert response.max() > brute_force_correlate(step[::-1, :], kernel, 1).max()
    assert np.allclose(brute_force_correlate(step.T, kernel, 1), 0)  # blind to a vertical edge


def test_max_pool_and_global_average_keys_match_keras_layers():
    maps = RNG.normal(size=(7, 9)).astype("float32")
    by_keras = keras.ops.convert_to_numpy(keras.layers.MaxPooling2D(2, dtype="float32")(
        maps[None, :, :, None]))[0, :, :, 0]
    np.testing.assert_array_equal(reference_solution("02.max_pool")(maps), by_keras)
    batch = RNG.normal(size=(3, 5, 6, 4)).astype("float32")
    by_keras = keras.ops.convert_to_numpy(keras.layers.GlobalAveragePooling2D(dtype="float32")(batch))
    np.testing.assert_allclose(reference_solution("02.global_average")(batch), by_keras, rtol=1e-5)


@pytest.mark.parametrize("name", ["00.cifar_row_bytes", "00.horse_label", "00.pixel_ratio",
                                  "01.output_shape", "01.param_count", "02.pooled_shape",
                                  "02.pool_params"])
def test_checkers_accept_only_their_key(name):
    key = reference_solution(name)
    assert feedback(name, key).passed
    wrong = tuple(v + 1 for v in key) if isinstance(key, tuple) else key + 1
    assert feedback(name, wrong).status == "wrong"
