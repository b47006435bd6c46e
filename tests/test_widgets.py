"""The explorers, driven in Python as a student's clicks would drive them."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tlcnn_helpers import convolution, pooling
from tlcnn_helpers.errors import ModelInputError
from tlcnn_helpers.widgets import CUSTOM_KERNEL, convolution_explorer, pooling_explorer

PNG_MAGIC = b"\x89PNG"
ROOT = Path(__file__).resolve().parent.parent
# Colab's ipywidgets, and the one dependency it imports that ipywidgets 8 dropped.
COLAB_WIDGETS = ("ipywidgets==7.7.1", "ipython_genutils==0.2.0")
# Tests stay offline: the wheels come from a local folder, filled once (see the skip message).
WHEELHOUSE = Path(os.environ.get("TLCNN_WHEELHOUSE", ROOT / "build" / "wheels"))


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


def test_explorer_builds_its_widget_view_when_widgets_lack_repr_mimebundle(conv, monkeypatch):
    # Simulates ipywidgets 7 on ipywidgets 8 (only the missing method); the real 7.7.1 is
    # tested by the slow test below.
    import ipywidgets

    monkeypatch.delattr(ipywidgets.Widget, "_repr_mimebundle_", raising=False)
    assert not hasattr(conv.widget, "_repr_mimebundle_")
    bundle = conv._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == conv.widget.model_id
    assert base64.b64decode(bundle["image/png"]) == conv.png
    assert "VBox" in bundle["text/plain"]


UNDER_IPYWIDGETS_7 = """
import base64, json
import numpy as np
import ipywidgets
from tlcnn_helpers.widgets import convolution_explorer

rng = np.random.default_rng(0)
conv = convolution_explorer({"noise": rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)})
bundle = conv._repr_mimebundle_()
view = bundle["application/vnd.jupyter.widget-view+json"]
png_before = conv.png
conv.controls["stride"].value = 2
print(json.dumps({
    "ipywidgets": ipywidgets.__version__,
    "widget_has_repr_mimebundle": hasattr(conv.widget, "_repr_mimebundle_"),
    "view_is_the_widget": view["model_id"] == conv.widget.model_id,
    "png_fallback_is_the_picture": base64.b64decode(bundle["image/png"]) == png_before,
    "stride_2_summary": conv.summary.value.startswith("Output shape: (9, 11)"),
    "picture_changed": conv.png != png_before,
}))
"""


@pytest.mark.slow
def test_explorer_displays_and_reacts_under_colabs_real_ipywidgets_7(tmp_path):
    target = tmp_path / "ipywidgets7"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-index", "--find-links", str(WHEELHOUSE), "--no-deps", "--target", str(target),
         *COLAB_WIDGETS], capture_output=True, text=True, timeout=120)
    if install.returncode != 0:
        pytest.skip(f"{' and '.join(COLAB_WIDGETS)} are not in the local wheelhouse {WHEELHOUSE}: "
                    f"fill it once with `pip download --no-deps -d {WHEELHOUSE} "
                    f"{' '.join(COLAB_WIDGETS)}` (or set TLCNN_WHEELHOUSE)")
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(target), str(ROOT)]))
    run = subprocess.run([sys.executable, "-c", UNDER_IPYWIDGETS_7], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.splitlines()[-1]) == {
        "ipywidgets": "7.7.1", "widget_has_repr_mimebundle": False, "view_is_the_widget": True,
        "png_fallback_is_the_picture": True, "stride_2_summary": True, "picture_changed": True}


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
