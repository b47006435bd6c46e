"""tlcnn_helpers.transfer on Sequential, functional, nested and Keras Applications models."""

from __future__ import annotations

import threading
import time

import keras
import numpy as np
import pytest

from tlcnn_helpers import evaluation, pretrained
from tlcnn_helpers.errors import ModelInputError, TLCNNError
from tlcnn_helpers.evaluation import check_images, minimum_input_size
from tlcnn_helpers.models import fast_cifar_cnn, paper_cnn
from tlcnn_helpers.pretrained import pretrained_application
from tlcnn_helpers.training import fine_tune, fit_head
from tlcnn_helpers.transfer import (
    fold_flatten_kernel,
    make_size_agnostic,
    recalibrate_batchnorm,
    resize_images,
    resolution_sweep,
    with_input_shape,
    with_resizing,
)

RNG = np.random.default_rng(0)


def run(model, x):
    """Predictions without model.predict's tracing (eager: much less CPU for a few images)."""
    return np.asarray(model(np.asarray(x, "float32"), training=False))


def images(n: int, size: int, channels: int = 3) -> np.ndarray:
    return RNG.integers(0, 256, (n, size, size, channels)).astype("float32")


def trained_like(model):
    """Give BatchNorm non-default statistics, so copying them is visible."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(RNG.normal(size=layer.moving_mean.shape))
            layer.moving_variance.assign(RNG.uniform(0.5, 2.0, size=layer.moving_variance.shape))
    return model


def weights_by_layer(model) -> dict[str, list[np.ndarray]]:
    return {path: [w.numpy() for w in layer.weights]
            for path, layer in evaluation.walk_layers(model) if layer.weights}


def assert_copied_exactly(old, new, names):
    before, after = weights_by_layer(old), weights_by_layer(new)
    for name in names:
        assert len(before[name]) == len(after[name])
        for a, b in zip(before[name], after[name], strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b), name


# ---------------------------------------------------------------------------- with_input_shape
def test_sequential_keeps_every_weight_whose_shape_fits():
    old = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1"),
        keras.layers.MaxPooling2D(name="p1"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(6, name="hidden"),
        keras.layers.Dense(3, name="out"),
    ])
    trained_like(old)
    new, report = with_input_shape(old, (96, 96, 3))
    assert isinstance(new, keras.Sequential)
    assert new.input_shape == (None, 96, 96, 3) and new.output_shape == (None, 3)
    assert report.copied == ["c1", "bn", "out"]
    assert report.reinitialised == ["hidden"]
    assert_copied_exactly(old, new, ["c1", "bn", "out"])
    assert new.get_layer("hidden").kernel.shape == (48 * 48 * 8, 6)
    text = str(report)
    assert "hidden" in text and "re-initialised" in text and "8192x6" not in text
    assert "16x16x8" not in text and "2048x6, 6 -> 18432x6, 6" in text


def test_paper_model_moves_to_96_with_everything_but_the_flatten_dense():
    old = trained_like(paper_cnn())
    new, report = with_input_shape(old, (96, 96, 3))
    assert report.reinitialised == ["hidden1"]
    assert report.copied == ["conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "conv4", "bn4",
                             "classes"]
    assert_copied_exactly(old, new, report.copied)
    assert run(new, images(2, 96)).shape == (2, 9)


def test_same_size_copy_of_a_functional_model_gives_identical_predictions():
    old = trained_like(fast_cifar_cnn(widths=(8, 16, 16)))
    copy, report = with_input_shape(old, (32, 32, 3))
    assert not report.reinitialised and report.copied_fraction == 1.0
    x = images(4, 32)
    np.testing.assert_array_equal(run(old, x), run(copy, x))
    bigger, _ = with_input_shape(old, (72, 56, 3))  # residual adds stay aligned off-square
    assert run(bigger, images(1, 72)[:, :, :56]).shape == (1, 9)


def test_nested_model_vgg16_base_inside_sequential():
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    old = keras.Sequential([keras.Input((32, 32, 3)), base, keras.layers.Flatten(),
                            keras.layers.Dense(9, name="head")])
    new, report = with_input_shape(old, (64, 64, 3))
    assert new.layers[0].input_shape == (None, 64, 64, 3)
    assert report.reinitialised == ["head"]
    assert len(report.copied) == 13  # VGG16's 13 convolutions
    assert_copied_exactly(old, new, ["vgg16/block1_conv1", "vgg16/block5_conv3"])


@pytest.mark.slow
def test_keras_applications_resnet50_and_mobilenetv2():
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    moved, report = with_input_shape(resnet, (64, 64, 3))
    with_weights = [p for p, layer in evaluation.walk_layers(resnet) if layer.weights]
    assert sorted(report.copied) == sorted(p.split("/")[-1] for p in with_weights)
    assert not report.reinitialised
    assert_copied_exactly(resnet, moved, with_weights)
    assert moved.output_shape == (None, 2, 2, 2048)

    mobile = keras.applications.MobileNetV2(alpha=0.35, weights=None, input_shape=(96, 96, 3),
                                            classes=9)
    trained_like(mobile)
    moved, report = with_input_shape(mobile, (128, 128, 3))
    assert not report.reinitialised and report.copied_fraction == 1.0
    assert_copied_exactly(mobile, moved, ["Conv1", "bn_Conv1", "predictions"])
    agnostic, report = make_size_agnostic(mobile)  # no Flatten: nothing to replace
    assert not report.replaced and agnostic.input_shape == (None, None, None, 3)
    x = images(2, 96)
    np.testing.assert_allclose(run(mobile, x), run(agnostic, x),
                               atol=1e-6)


def test_shared_layers_stay_shared():
    inputs = keras.Input((16, 16, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same", name="shared")
    x = conv(inputs)
    x = conv(keras.layers.Conv2D(3, 1, name="mix")(x) + 0)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    new, report = with_input_shape(model, (24, 24, 3))
    assert report.copied == ["shared", "mix"]
    assert len(new.get_layer("shared")._inbound_nodes) >= 2


# ---------------------------------------------------------------------------- size-agnostic
def test_fold_matches_flatten_dense_on_constant_maps():
    kernel = RNG.normal(size=(3 * 2 * 5, 4))
    channel_values = RNG.normal(size=5)
    feature_map = np.broadcast_to(channel_values, (3, 2, 5))
    flatten_dense = feature_map.reshape(-1) @ kernel
    pooled_dense = feature_map.mean(axis=(0, 1)) @ fold_flatten_kernel(kernel, (3, 2, 5))
    np.testing.assert_allclose(flatten_dense, pooled_dense, rtol=1e-10)
    with pytest.raises(ModelInputError, match="30 rows"):
        fold_flatten_kernel(kernel, (2, 2, 5))


def test_size_agnostic_paper_model_runs_on_any_size_and_folds_the_head():
    old = trained_like(paper_cnn())
    agnostic, report = make_size_agnostic(old)
    assert agnostic.input_shape == (None, None, None, 3)
    assert report.folded == ["hidden1"] and not report.reinitialised
    assert "flatten (Flatten of 2x2x256) -> global_avg_pool" in report.replaced[0]
    expected = fold_flatten_kernel(old.get_layer("hidden1").kernel.numpy(), (2, 2, 256))
    np.testing.assert_allclose(agnostic.get_layer("hidden1").kernel.numpy(), expected, rtol=1e-6)
    assert np.array_equal(agnostic.get_layer("hidden1").bias.numpy(),
                          old.get_layer("hidden1").bias.numpy())
    assert_copied_exactly(old, agnostic, ["conv1", "bn4", "classes"])
    for size in (16, 32, 96, 50):
        assert run(agnostic, images(1, size)).shape == (1, 9)
    max_pooled, _ = make_size_agnostic(old, pooling="max")
    assert isinstance(max_pooled.get_layer("global_max_pool"), keras.layers.GlobalMaxPooling2D)


def test_head_kept_when_the_map_was_one_pixel():
    old = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, padding="same"),
                            keras.layers.MaxPooling2D(8), keras.layers.Flatten(),
                            keras.layers.Dense(3, name="head")])
    agnostic, report = make_size_agnostic(old)
    assert "head" in report.copied and not report.folded
    x = images(3, 8)
    np.testing.assert_allclose(run(old, x), run(agnostic, x),
                               rtol=1e-5)


def test_refit_trains_only_the_head():
    old = paper_cnn(filters=(4, 4, 8, 8), dense_units=8)
    x, y = images(36, 32), np.arange(36) % 9
    agnostic, report = make_size_agnostic(old, refit_on=(x, y), refit_epochs=1, batch_size=12)
    assert "re-fitted" in report.notes[-1]
    assert_copied_exactly(old, agnostic, ["conv1", "bn1", "conv4", "bn4"])
    assert not np.array_equal(agnostic.get_layer("classes").kernel.numpy(),
                              old.get_layer("classes").kernel.numpy())
    assert all(layer.trainable for layer in agnostic.layers)  # flags restored


@pytest.mark.slow
def test_fine_tune_freezes_then_unfreezes_and_keeps_batchnorm_statistics():
    model, _ = make_size_agnostic(trained_like(paper_cnn(filters=(4, 4, 8, 8),
                                                               dense_units=8)))
    x, y = images(18, 48), np.arange(18) % 9
    conv_before = model.get_layer("conv1").kernel.numpy().copy()
    stats_before = model.get_layer("bn2").moving_mean.numpy().copy()
    histories = fine_tune(model, x, y, head_epochs=1, finetune_epochs=1, batch_size=9)
    assert len(histories) == 2
    assert not np.array_equal(model.get_layer("conv1").kernel.numpy(), conv_before)
    assert np.array_equal(model.get_layer("bn2").moving_mean.numpy(), stats_before)
    assert all(layer.trainable for layer in model.layers)


# ---------------------------------------------------------------------------- BatchNorm
def test_recalibration_sets_exact_statistics_of_the_new_images():
    old = trained_like(paper_cnn(filters=(4, 8, 8, 8), dense_units=8))
    model, _ = make_size_agnostic(old)
    x = images(20, 64)
    result = recalibrate_batchnorm(model, x, batch_size=8)
    assert result.layers == ("bn1", "bn2", "bn3", "bn4") and result.images == 20
    features = run(keras.Model(model.inputs[0], model.get_layer("pool1").output), x)
    bn1 = model.get_layer("bn1")
    np.testing.assert_allclose(bn1.moving_mean.numpy(), features.mean(axis=(0, 1, 2)),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn1.moving_variance.numpy(), features.var(axis=(0, 1, 2)),
                               rtol=1e-3, atol=1e-5)
    assert "call" not in vars(bn1)  # the collecting hook is gone
    assert_copied_exactly(old, model, ["conv1", "conv4", "classes"])
    assert np.array_equal(model.get_layer("bn1").gamma.numpy(), old.get_layer("bn1").gamma.numpy())
    # In inference the layer now uses the new statistics.
    out = run(keras.Model(model.inputs[0], model.get_layer("bn1").output), x)
    assert abs(float(out.mean())) < 0.05 + abs(float(bn1.beta.numpy().mean()))


def test_recalibration_needs_batchnorm_and_images():
    no_bn = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ModelInputError, match="no BatchNormalization"):
        recalibrate_batchnorm(no_bn, images(2, 8))
    with pytest.raises(ModelInputError, match="empty"):
        recalibrate_batchnorm(paper_cnn(), np.zeros((0, 32, 32, 3)))


# ---------------------------------------------------------------------------- baselines
def test_resize_baseline_shares_weights_and_resizes():
    model = paper_cnn(filters=(4, 4, 8, 8), dense_units=8)
    wrapped = with_resizing(model, (96, 96, 3))
    x = images(2, 96)
    resized = keras.layers.Resizing(32, 32, antialias=True)(x)
    np.testing.assert_allclose(run(wrapped, x), run(model, resized),
                               rtol=1e-5, atol=1e-6)
    assert wrapped.get_layer(model.name) is model


def test_resolution_sweep_matches_direct_accuracy_and_leaves_model_alone():
    model, _ = make_size_agnostic(trained_like(paper_cnn(filters=(4, 4, 8, 8),
                                                               dense_units=8)))
    x, y = images(18, 32), np.arange(18) % 9
    stats = model.get_layer("bn3").moving_mean.numpy().copy()
    recalibration = images(16, 32)
    rows = resolution_sweep(model, x, y, [32, 48], recalibration_images=recalibration)
    assert [r.size for r in rows] == [32, 48]
    for row in rows:  # each row is what the model scores on images resized by hand
        resized = resize_images(x, row.size)
        assert row.accuracy == evaluation.evaluate(model, resized, y)["test_accuracy"]
        copy, _ = with_input_shape(model, (None, None, 3))
        recalibrate_batchnorm(copy, resize_images(recalibration, row.size))
        assert row.recalibrated_accuracy == evaluation.evaluate(copy, resized, y)["test_accuracy"]
    assert np.array_equal(model.get_layer("bn3").moving_mean.numpy(), stats)
    with pytest.raises(ModelInputError, match="make_size_agnostic"):
        resolution_sweep(paper_cnn(), x, y, [32])


# ---------------------------------------------------------------------------- bad input
def test_too_small_names_the_layer_and_the_smallest_size():
    with pytest.raises(ModelInputError) as info:
        with_input_shape(paper_cnn(), (8, 8, 3))
    message = str(info.value)
    assert "'pool4'" in message and "MaxPooling2D" in message and "16x16" in message
    assert "input_shape=(16, 16, 3)" in message
    vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    assert minimum_input_size(vgg) == (32, 32)
    with pytest.raises(ModelInputError, match=r"'block5_pool'.*32x32"):
        with_input_shape(vgg, (20, 40, 3))
    agnostic, _ = make_size_agnostic(paper_cnn())
    with pytest.raises(ModelInputError, match=r"too small.*16x16"):
        check_images(agnostic, images(1, 12))
    fast = fast_cifar_cnn()
    halvings = sum(isinstance(layer, keras.layers.MaxPooling2D) for layer in fast.layers)
    assert minimum_input_size(fast) == (2 ** halvings, 2 ** halvings)


def test_grayscale_into_rgb_names_the_fix():
    with pytest.raises(ModelInputError, match="grayscale_to_rgb"):
        with_input_shape(paper_cnn(), (96, 96, 1))
    agnostic, _ = make_size_agnostic(paper_cnn())
    with pytest.raises(ModelInputError, match="grayscale_to_rgb"):
        check_images(agnostic, images(2, 32, channels=1))
    with pytest.raises(ModelInputError, match=r"channel axis.*np.repeat"):
        check_images(agnostic, np.zeros((2, 32, 32)))
    gray = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ModelInputError, match="rgb_to_grayscale"):
        with_input_shape(gray, (28, 28, 3))


def test_models_that_are_not_image_models_are_refused():
    dense = keras.Sequential([keras.Input((20,)), keras.layers.Dense(3)])
    with pytest.raises(ModelInputError, match="not an image model"):
        with_input_shape(dense, (96, 96, 3))
    mlp_on_images = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                                      keras.layers.Dense(3)])
    with pytest.raises(ModelInputError, match="no convolution or pooling"):
        make_size_agnostic(mlp_on_images)
    unbuilt = keras.Sequential([keras.layers.Conv2D(2, 3)])
    with pytest.raises(ModelInputError, match="not been built"):
        with_input_shape(unbuilt, (32, 32, 3))
    a, b = keras.Input((8, 8, 3)), keras.Input((8, 8, 3))
    two = keras.Model([a, b], keras.layers.Conv2D(2, 3)(a + b))
    with pytest.raises(ModelInputError, match="2 inputs"):
        with_input_shape(two, (16, 16, 3))
    with pytest.raises(ModelInputError, match="expected a Keras model"):
        with_input_shape("model.keras", (16, 16, 3))


@pytest.mark.parametrize("shape", [(96, 96, 3, 1), (0, 96, 3), ("a", 96, 3), 96])
def test_malformed_input_shapes(shape):
    with pytest.raises(ModelInputError, match="not \\(height, width, channels\\)"):
        with_input_shape(paper_cnn(), shape)


def test_fixed_size_model_refuses_other_sizes_with_the_fixes():
    with pytest.raises(ModelInputError, match=r"with_input_shape.*make_size_agnostic"):
        evaluation.evaluate(paper_cnn(), images(2, 96), np.zeros(2, "int64"))["test_accuracy"]
    with pytest.raises(ModelInputError, match="one integer per image"):
        evaluation.evaluate(paper_cnn(), images(2, 32), np.zeros(3, "int64"))["test_accuracy"]
    with pytest.raises(ModelInputError, match="needs no resizing"):
        with_resizing(make_size_agnostic(paper_cnn())[0], (96, 96, 3))
    with pytest.raises(ModelInputError, match="Flatten needs a fixed image size"):
        with_input_shape(paper_cnn(), (None, None, 3))


def test_transfer_errors_are_caught_as_course_errors():
    with pytest.raises(TLCNNError, match="Flatten needs a fixed image size"):
        with_input_shape(paper_cnn(), (None, None, 3))


# ---------------------------------------------------------------------------- applications
def test_pretrained_falls_back_quickly_when_offline(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # nothing cached
    monkeypatch.delenv("TLCNN_OFFLINE", raising=False)  # try the (loopback) host for real
    start = time.perf_counter()
    # A closed port on the loopback interface: refused at once, no traffic leaves the machine.
    base = pretrained_application("MobileNetV2", (96, 96, 3), alpha=0.35, host="127.0.0.1",
                                  timeout=2.0)
    assert time.perf_counter() - start < 30
    assert base.weights is None and base.model.output_shape == (None, 3, 3, 1280)
    printed = capsys.readouterr().out
    assert "weights=None" in printed and "cannot be reached" in printed
    assert not list(tmp_path.rglob("*.h5"))


def test_pretrained_does_not_hang_when_the_host_never_answers(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    released = threading.Event()

    def hangs(*args, **kwargs):
        # Like a DNS lookup, which ignores socket timeouts: answers only once released,
        # long after the 5 s bound below.
        released.wait(60)
        raise TimeoutError("timed out")

    monkeypatch.setattr(pretrained.socket, "create_connection", hangs)
    start = time.perf_counter()
    try:
        assert pretrained._reachable("weights.example", timeout=0.5) is False
        assert time.perf_counter() - start < 5
    finally:
        released.set()


def test_pretrained_uses_the_cache_file_name_keras_uses(monkeypatch, tmp_path):
    assert pretrained._weights_file("MobileNetV2", 0.35, 96) == (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5")
    assert pretrained._weights_file("VGG16", 1.0, 96) == (
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert pretrained.keras_cache_dir() == tmp_path / "models"
    with pytest.raises(ModelInputError, match="one of VGG16"):
        pretrained_application("AlexNet")
    with pytest.raises(ModelInputError, match="at least 32x32"):
        pretrained_application("VGG16", (16, 16, 3))


def test_fit_head_needs_a_pooling_layer_at_top_level():
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ModelInputError, match="no Flatten or global pooling"):
        fit_head(model, images(2, 8), np.array([0, 1]))


# Notebook 06's exercises are tested in tests/test_nb_transfer.py.


def test_failed_attempt_leaves_the_model_usable():
    """Notebook 06's attempt (b) calls the layers on a 96x96 input; the helpers still work."""
    old = paper_cnn(filters=(4, 4, 8, 8), dense_units=8)
    x = keras.Input((96, 96, 3))
    with pytest.raises(ValueError, match="hidden"):
        for layer in old.layers[1:]:
            x = layer(x)
    agnostic, report = make_size_agnostic(old)
    assert report.folded == ["hidden1"] and "Flatten of 2x2x8" in report.replaced[0]
    moved, report = with_input_shape(old, (64, 64, 3))
    assert report.reinitialised == ["hidden1"] and moved.output_shape == (None, 9)


def test_offline_mode_never_tries_the_weights_host(monkeypatch, tmp_path):

    monkeypatch.setenv("TLCNN_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty cache
    tried = []
    monkeypatch.setattr(pretrained, "_reachable", lambda *args: tried.append(args) or True)
    base = pretrained_application("MobileNetV2", (96, 96, 3), alpha=0.35, verbose=False)
    assert tried == [] and base.weights is None
    assert "TLCNN_OFFLINE is set" in base.message and "weights=None" in base.message


def test_recalibration_over_several_sizes_counts_every_image_once():
    import keras

    from tlcnn_helpers.transfer import recalibrate_batchnorm

    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.BatchNormalization()])
    small, large = np.full((2, 8, 8, 3), 1.0), np.full((2, 24, 24, 3), 3.0)
    report = recalibrate_batchnorm(model, [small, large], batch_size=1)
    norm = model.layers[0]
    # Per image, not per pixel: the 24 px images (9x the pixels) count as much as the 8 px.
    np.testing.assert_allclose(norm.moving_mean.numpy(), [2.0] * 3, rtol=1e-6)
    np.testing.assert_allclose(norm.moving_variance.numpy(), [1.0] * 3, rtol=1e-6)
    assert report.images == 4
