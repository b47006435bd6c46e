"""The explorers, driven in Python as a student's clicks would drive them."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from tlcnn_helpers import convolution, pooling
from tlcnn_helpers.errors import ModelInputError
from tlcnn_helpers.widgets import CUSTOM_KERNEL, convolution_explorer, pooling_explorer

PNG_MAGIC = b"\x89PNG"


def small_images():
    rng = np.random.default_rng(0)
    return {"noise": rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8),
            "ramp": np.tile(np.linspace(0, 1, 17, dtype=np.float32), (15, 1))}


@pytest.fixture
def conv():
    return convolution_explorer(small_images())


@pytest.fixture
def pool():
    return pooling_explorer(small_images())


def test_convolution_explorer_renders_at_once_with_defaults(conv):
    image = convolution.to_grayscale(small_images()["noise"])
    np.testing.assert_allclose(conv.output, convolution.conv2d(image, convolution.CLASSIC_KERNELS["sobel vertical edges"]))
    assert conv.png.startswith(PNG_MAGIC) and bytes(conv.picture.value) == conv.png
    assert conv.summary.value.startswith("Output shape: (18, 22)")


def test_changing_the_stride_changes_array_shape_text_and_picture(conv):
    before_png, before_text = conv.png, conv.summary.value
    conv.controls["stride"].value = 2
    assert conv.output.shape == (9, 11)
    assert conv.summary.value.startswith("Output shape: (9, 11)")
    assert conv.png != before_png and conv.summary.value != before_text
    assert bytes(conv.picture.value) == conv.png  # the widget the browser shows got it too


def test_same_padding_keeps_the_size_and_matches_ops(conv):
    conv.controls["padding"].value = "same"
    image = convolution.to_grayscale(small_images()["noise"])
    assert conv.output.shape == image.shape
    conv.controls["stride"].value = 3
    np.testing.assert_allclose(conv.output, convolution.conv2d(image, conv.kernel, stride=3, padding="same"))
    assert conv.output.shape == (7, 8)


def test_choosing_a_preset_fills_the_kernel_boxes(conv):
    conv.controls["kernel"].value = "sharpen"
    np.testing.assert_array_equal(conv.kernel, convolution.CLASSIC_KERNELS["sharpen"])
    image = convolution.to_grayscale(small_images()["noise"])
    np.testing.assert_allclose(conv.output, convolution.conv2d(image, convolution.CLASSIC_KERNELS["sharpen"]),
                               rtol=1e-6)


def test_editing_a_kernel_value_switches_to_custom_and_recomputes(conv):
    conv.controls["kernel"].value = "identity"
    image = convolution.to_grayscale(small_images()["noise"])
    np.testing.assert_allclose(conv.output, image[1:-1, 1:-1])
    conv.controls["k11"].value = 2.0
    assert conv.controls["kernel"].value == CUSTOM_KERNEL
    np.testing.assert_allclose(conv.output, 2.0 * image[1:-1, 1:-1], rtol=1e-6)
    assert conv.controls["k11"].description == "k[1,1]"


def test_choosing_another_image_changes_the_shape(conv):
    conv.controls["image"].value = "ramp"
    assert conv.output.shape == (13, 15)
    # a horizontal ramp has the same vertical-edge response everywhere
    assert np.ptp(conv.output) < 1e-5 and conv.output.mean() > 0


def test_explorer_displays_as_a_widget_with_a_static_png_fallback(conv):
    bundle = conv._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]) == conv.png
    assert conv.controls["stride"].description == "Stride"
    assert conv.controls["image"].description == "Image"


def test_explorer_displays_with_ipywidgets_7_as_colab_ships_it(conv, monkeypatch):
    # ipywidgets 7 widgets have no _repr_mimebundle_; the explorer builds the widget view.
    import ipywidgets

    monkeypatch.delattr(ipywidgets.Widget, "_repr_mimebundle_", raising=False)
    assert not hasattr(conv.widget, "_repr_mimebundle_")
    bundle = conv._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == conv.widget.model_id
    assert base64.b64decode(bundle["image/png"]) == conv.png
    assert "VBox" in bundle["text/plain"]


def test_pooling_explorer_follows_window_stride_and_mode(pool):
    image = convolution.to_grayscale(small_images()["noise"])
    np.testing.assert_allclose(pool.output, pooling.max_pool2d(image, 2))
    assert pool.output.shape == (10, 12)
    first_png = pool.png
    pool.controls["pool_size"].value = 4
    pool.controls["stride"].value = 4
    assert pool.output.shape == (5, 6)
    assert pool.summary.value.startswith("Output shape: (5, 6)")
    pool.controls["mode"].value = "average"
    np.testing.assert_allclose(pool.output, pooling.average_pool2d(image, 4), rtol=1e-6)
    pool.controls["stride"].value = 1
    pool.controls["padding"].value = "same"
    assert pool.output.shape == image.shape
    assert pool.png != first_png


def test_impossible_settings_are_reported_not_raised():
    explorer = pooling_explorer({"tiny": np.zeros((5, 5))})
    explorer.controls["pool_size"].value = 8
    assert explorer.summary.value.startswith("Cannot compute this")
    assert "padding='same'" in explorer.summary.value


def test_bad_arguments_name_the_fix():
    with pytest.raises(ModelInputError, match="kernel='emboss'"):
        convolution_explorer(small_images(), kernel="emboss")
    with pytest.raises(ModelInputError, match="images is empty"):
        pooling_explorer({})
