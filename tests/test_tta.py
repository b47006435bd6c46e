"""Test-time augmentation: its views, the averaged predictions, and the train report's keys."""

import json

import keras
import numpy as np
import pytest

from tlcnn_helpers.cli import main
from tlcnn_helpers.errors import ModelInputError
from tlcnn_helpers.evaluation import evaluate, predict, tta_views


def _left_half_model():
    """A model that sees only the left half of its images: mirroring changes its answer."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Cropping2D(((0, 0), (0, 4)))(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def _images(count=6):
    return np.random.default_rng(1).integers(0, 256, (count, 8, 8, 3)).astype("uint8")


def test_flip_views_are_the_images_and_their_mirror_images():
    x = _images()
    plain, mirrored = tta_views(x, "flip")
    np.testing.assert_array_equal(plain, x)
    np.testing.assert_array_equal(mirrored[:, :, ::-1], x)


def test_flip_shift_views_move_the_content_by_the_shift_both_ways():
    x = _images()
    views = tta_views(x, "flip_shift", shift=2)
    assert len(views) == 6 and all(v.shape == x.shape for v in views)
    np.testing.assert_array_equal(views[2][:, 2:, 2:], x[:, :-2, :-2])  # down-right
    np.testing.assert_array_equal(views[3][:, :-2, :-2], x[:, 2:, 2:])  # up-left


def test_predict_with_tta_averages_the_views_and_changes_an_asymmetric_model():
    model, x = _left_half_model(), _images()
    plain = predict(model, x)
    mirrored = predict(model, x[:, :, ::-1])
    assert not np.allclose(plain, mirrored, atol=1e-3)
    np.testing.assert_allclose(predict(model, x, tta="flip"), (plain + mirrored) / 2, atol=1e-6)
    labels = plain.argmax(axis=1)
    assert evaluate(model, x, labels)["test_accuracy"] == 1.0


def test_an_unknown_tta_kind_is_named():
    with pytest.raises(ModelInputError, match="tta='rotate'"):
        predict(_left_half_model(), _images(), tta="rotate")


@pytest.mark.slow
def test_the_train_report_says_whether_its_accuracy_used_tta_and_gives_both(tmp_path, capsys):
    reports = {}
    for tta in (None, "flip"):
        report = tmp_path / f"report-{tta}.json"
        args = ["train", "cifar10", "--recipe", "fast", "--profile", "smoke", "--epochs", "1",
                "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / f"m-{tta}.keras"),
                "--report", str(report), "--quiet"] + (["--tta", tta] if tta else [])
        assert main(args) == 0, capsys.readouterr().err
        reports[tta] = json.loads(report.read_text())
    plain, flipped = reports[None], reports["flip"]
    assert plain["tta"] is None and flipped["tta"] == "flip"
    assert set(plain["test_accuracy_by_tta"]) == {"none", "flip"}
    assert plain["test_accuracy"] == plain["test_accuracy_by_tta"]["none"]
    assert flipped["test_accuracy"] == flipped["test_accuracy_by_tta"]["flip"]


@pytest.mark.slow
def test_the_best_recipe_trains_from_the_command_line_with_its_whitening_layer(tmp_path, capsys):
    report = tmp_path / "best.json"
    args = ["train", "cifar10", "--recipe", "best", "--profile", "smoke", "--data-dir",
            str(tmp_path / "data"), "--out", str(tmp_path / "best.keras"), "--report",
            str(report), "--tta", "flip", "--quiet"]
    assert main(args) == 0, capsys.readouterr().err
    result = json.loads(report.read_text())
    assert result["recipe"] == "best" and result["epochs"] == 1  # the smoke profile's best_epochs
    assert result["settings"]["batch_size"] == 256 and result["settings"]["weight_decay"] == 0.05
    assert result["settings"]["model_options"] == {"whiten": True}
    assert set(result["test_accuracy_by_tta"]) == {"none", "flip"}
    from tlcnn_helpers.files import load_model

    whiten = load_model(tmp_path / "best.keras").get_layer("whiten")
    kernel = whiten.get_weights()[0]  # fitted to the data: filters in +v / -v pairs
    assert not whiten.trainable and np.allclose(kernel[..., 12:], -kernel[..., :12])
