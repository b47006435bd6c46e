"""Notebook 06's teaching pieces: its exercises' checkers, the receptive-field figure, the
plain-Keras weight copy it shows, and the VGG16 facts it states."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tlcnn_helpers import viz
from tlcnn_helpers.convolution import receptive_field_growth
from tlcnn_helpers.errors import ModelInputError
from tlcnn_helpers.exercises import feedback, reference_solution
from tlcnn_helpers.exercises import nb06_transfer_across_sizes as nb06
from tlcnn_helpers.models import paper_cnn
from tlcnn_helpers.transfer import make_size_agnostic


# ---------------------------------------------------------------------------- number answers
@pytest.mark.parametrize("name", ["06.flatten_size", "06.smallest_input", "06.predict_sweep"])
def test_reference_answers_pass(name):
    assert feedback(name, reference_solution(name)).passed


def test_flatten_size_reference_is_what_keras_builds():
    # 64x128 halved 4 times is 4x8, times 256 channels; Keras builds the model to say so.
    model = paper_cnn(input_shape=(64, 128, 3))
    assert reference_solution("06.flatten_size") == model.get_layer("flatten").output.shape[-1]


@pytest.mark.parametrize(("name", "answer", "words"), [
    ("06.flatten_size", 1024, "32x32 size"),
    ("06.flatten_size", 9216, "96x96 size the notebook showed"),
    ("06.flatten_size", 32, "256 channels"),
    ("06.flatten_size", 64 * 128 * 3, "input image"),
    ("06.smallest_input", 16, "4-block model"),
    ("06.smallest_input", 64, "smaller does too"),
    ("06.smallest_input", 8, "outputs nothing"),
    ("06.predict_sweep", "all", "46 px"),
    ("06.predict_sweep", "none", "AdaBN"),
    ("06.predict_sweep", "down", "one of"),
])
def test_number_answers_name_the_mistake(name, answer, words):
    result = feedback(name, answer)
    assert result.status == "wrong" and words in result.message, result.message


def test_smallest_input_reference_is_the_size_a_five_block_model_accepts():
    side = reference_solution("06.smallest_input")
    five = paper_cnn(input_shape=(side, side, 3), filters=nb06.FIVE_BLOCKS)
    assert five.get_layer("flatten").input.shape[1:3] == (1, 1)
    with pytest.raises(ModelInputError):
        paper_cnn(input_shape=(side - 1, side - 1, 3), filters=nb06.FIVE_BLOCKS)


def test_paper_model_sees_46_pixels():
    # Notebook 06 explains the fall at 96 px with this field; the checker's hint quotes it.
    assert receptive_field_growth(paper_cnn())[-1].size == 46 == nb06._paper_field()


# ---------------------------------------------------------------------------- the copy by hand
def _layers_on_any_size(model, replace):
    """Helper for wrong answers: the model's layers on a (None, None, 3) input, ``replace``
    deciding what each layer becomes (None: reuse the trained layer)."""
    inputs = keras.Input((None, None, 3))
    x = inputs
    for layer in model.layers[1:]:
        x = (replace(layer) or layer)(x)
    return keras.Model(inputs, x)


def _pooling_for_flatten(layer):
    return keras.layers.GlobalAveragePooling2D() if isinstance(layer, keras.layers.Flatten) else None


def _with_hidden_kernel(model, make_kernel):
    """A size-agnostic copy whose hidden Dense gets ``make_kernel(kernel, h, w, c)``."""
    h, w, c = model.get_layer("flatten").input.shape[1:]
    hidden = model.get_layer("hidden1")
    dense = keras.layers.Dense(hidden.units, activation="relu")

    def replace(layer):
        return dense if layer is hidden else _pooling_for_flatten(layer)

    built = _layers_on_any_size(model, replace)
    kernel, bias = hidden.get_weights()
    dense.set_weights([make_kernel(kernel, h, w, c), bias])
    return built


def kernel_not_folded(model):
    return _with_hidden_kernel(model, lambda kernel, h, w, c: kernel)  # (h*w*c, units): no fit


def trained_dense_kept(model):
    return _layers_on_any_size(model, _pooling_for_flatten)


def kernel_averaged(model):
    return _with_hidden_kernel(
        model, lambda kernel, h, w, c: kernel.reshape(h, w, c, -1).mean(axis=(0, 1)))


def kernel_channels_first(model):
    return _with_hidden_kernel(
        model, lambda kernel, h, w, c: kernel.reshape(c, h, w, -1).sum(axis=(1, 2)))


def flatten_kept(model):
    return _layers_on_any_size(model, lambda layer: None)


def fixed_input(model):
    return keras.models.clone_model(model)


def bias_dropped(model):
    got = reference_solution("06.size_agnostic_by_hand")(model)
    dense = next(layer for layer in got.layers if layer.name == "hidden1")
    dense.bias.assign(np.zeros(dense.bias.shape))
    return got


@pytest.mark.slow
@pytest.mark.parametrize(("answer", "words"), [
    (kernel_not_folded, "fold it"),
    (trained_dense_kept, "fold it"),
    (kernel_averaged, "sum the rows"),
    (kernel_channels_first, "not the folded one"),
    (flatten_kept, "Flatten"),
    (fixed_input, "Flatten"),
    (bias_dropped, "bias"),
], ids=lambda v: getattr(v, "__name__", None))
def test_copy_by_hand_names_the_mistake(answer, words):
    result = feedback("06.size_agnostic_by_hand", answer)
    assert result.status == "wrong" and words in result.message, result.message


@pytest.mark.slow
def test_copy_by_hand_reference_passes_and_matches_the_helper():
    assert feedback("06.size_agnostic_by_hand", reference_solution("06.size_agnostic_by_hand")).passed
    assert feedback("06.size_agnostic_by_hand", lambda model: None).status == "todo"
    model = nb06._checking_model()
    by_hand = reference_solution("06.size_agnostic_by_hand")(model)
    helper, _ = make_size_agnostic(model)
    images = np.random.default_rng(1).uniform(0, 255, (2, 48, 40, 3)).astype("float32")
    np.testing.assert_allclose(by_hand.predict(images, verbose=0),
                               helper.predict(images, verbose=0), atol=1e-5)


def test_copy_by_hand_check_leaves_the_trained_model_alone():
    def changes_the_model(model):
        model.get_layer("conv1").kernel.assign(np.zeros(model.get_layer("conv1").kernel.shape))
        return reference_solution("06.size_agnostic_by_hand")(model)

    assert "changed the trained model" in feedback("06.size_agnostic_by_hand",
                                                   changes_the_model).message


# ---------------------------------------------------------------------------- the figure
def test_receptive_field_figure_draws_the_field_on_each_image():
    fig = viz.show_receptive_field([np.zeros((32, 32, 3), np.uint8),
                                    np.full((96, 96, 3), 200.0)], 46, ["small", "large"],
                                   suptitle="field")
    small, large = fig.axes
    (square,) = large.patches
    assert (square.get_width(), square.get_height()) == (46, 46)
    assert square.get_x() == (96 - 46) / 2 - 0.5  # centred
    # The 46 px square is larger than the 32 px image: the axes grow to show all of it.
    assert small.get_xlim()[1] - small.get_xlim()[0] > 46
    assert float(large.images[0].get_array().max()) <= 1.0  # 0..255 floats were scaled
    with pytest.raises(ModelInputError, match="one title per image"):
        viz.show_receptive_field([np.zeros((8, 8))], 3, [])


# ---------------------------------------------------------------------------- VGG16 facts
def test_vgg16_top_is_refused_at_96_px_before_any_download(monkeypatch):
    from keras.src.utils import file_utils

    def no_download(*args, **kwargs):
        raise AssertionError("VGG16 tried to download weights")

    monkeypatch.setattr(file_utils, "get_file", no_download)
    with pytest.raises(ValueError, match=r"input_shape` should be \(224, 224, 3\)"):
        keras.applications.VGG16(include_top=True, weights="imagenet", input_shape=(96, 96, 3))
