"""The multiscale recipe: its scale augmentation, its saved model at every size, its smoke run."""

import json

import numpy as np
import pytest

from tlcnn_helpers.cli import main
from tlcnn_helpers.data import SHARED_CLASSES, photograph_views
from tlcnn_helpers.errors import ModelInputError, TLCNNError
from tlcnn_helpers.evaluation import predict
from tlcnn_helpers.files import load_model
from tlcnn_helpers.models import fast_cifar_cnn
from tlcnn_helpers.pipelines import make_dataset, scale_probabilities
from tlcnn_helpers.training import get_recipe, train_recipe

SIZES = (32, 48, 64, 96)


def _images(count=96, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 32, 32, 3)).astype("uint8"), np.arange(count) % 3


def _epochs(seed, epochs=2, weighting="uniform", scales=SIZES):
    x, y = _images()
    ds = make_dataset(x, y, num_classes=3, batch_size=4, training=True, seed=seed,
                      augment="flip_translate", scales=scales, scale_weighting=weighting)
    return [[(batch[0].numpy(), batch[1].numpy()) for batch in ds] for _ in range(epochs)]


def test_scale_augmentation_makes_square_batches_of_the_given_sizes_only():
    sizes = {images.shape[1:3] for epoch in _epochs(1) for images, _ in epoch}
    assert sizes == {(s, s) for s in SIZES}


def test_scale_augmentation_keeps_every_label_with_its_image():
    # Image i is filled with the value i, so after any resize it still says which it was.
    count = 60
    x = np.repeat(np.arange(count, dtype="uint8"), 32 * 32 * 3).reshape(count, 32, 32, 3)
    y = np.arange(count) % 3
    scaled = make_dataset(x, y, num_classes=3, batch_size=4, training=True, seed=3,
                          scales=SIZES)
    seen = []
    for images, labels in scaled:
        which = images.numpy().reshape(len(labels), -1)
        assert (which.min(axis=1) == which.max(axis=1)).all()
        index = which[:, 0].round().astype(int)
        np.testing.assert_array_equal(labels.numpy().argmax(axis=1), y[index])
        seen += index.tolist()
    assert sorted(seen) == list(range(count))


def test_scale_augmentation_is_deterministic_for_a_seed_and_new_each_epoch():
    first, again, other = _epochs(5), _epochs(5), _epochs(6)
    shapes = [[images.shape[1] for images, _ in epoch] for epoch in first]
    assert shapes == [[images.shape[1] for images, _ in epoch] for epoch in again]
    for (a, _), (b, _) in zip(first[0], again[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert shapes[0] != shapes[1], "every epoch draws its sizes anew"
    assert shapes != [[images.shape[1] for images, _ in epoch] for epoch in other]


def test_equal_compute_draws_large_sizes_as_often_as_their_cost_allows():
    expected = scale_probabilities((32, 64), "equal_compute")
    assert expected.tolist() == pytest.approx([0.8, 0.2])
    x, y = _images(2000)
    ds = make_dataset(x, y, num_classes=3, batch_size=2, training=True, seed=0,
                      scales=(32, 64), scale_weighting="equal_compute")
    share = np.mean([batch[0].shape[1] == 64 for batch in ds])
    assert 0.15 < share < 0.25  # 1,000 draws of probability 0.2


def test_the_weightings_split_batches_and_compute_as_their_names_say():
    sizes = np.array(SIZES, "float64")
    uniform = scale_probabilities(SIZES, "uniform")
    inverse = scale_probabilities(SIZES, "inverse_size")
    equal = scale_probabilities(SIZES, "equal_compute")
    assert uniform.tolist() == pytest.approx([0.25] * 4)
    assert (inverse * sizes).tolist() == pytest.approx([inverse[0] * 32] * 4)
    compute = equal * sizes**2
    assert (compute / compute.sum()).tolist() == pytest.approx([0.25] * 4)
    assert equal[-1] < inverse[-1] < uniform[-1]  # 96 px: least often with equal compute


@pytest.mark.parametrize("scales, weighting", [((), "uniform"), ((32, 0), "uniform"),
                                               ((32, 64), "cheapest")])
def test_bad_scale_settings_are_named(scales, weighting):
    with pytest.raises(TLCNNError, match="scale"):
        scale_probabilities(scales, weighting)


def test_the_multiscale_recipe_refuses_a_model_fixed_to_one_size():
    x, y = _images(24)
    recipe = get_recipe("multiscale", epochs=1, batch_size=8, widths=(8, 16))
    with pytest.raises(ModelInputError, match="size-agnostic"):
        train_recipe(recipe, (x, y), None, num_classes=3, verbose=False,
                     model=fast_cifar_cnn((32, 32, 3), 3, widths=(8, 16), residual_stages=()))


@pytest.mark.slow
def test_multiscale_smoke_run_reports_every_size_and_its_model_runs_at_every_size(
        tmp_path, capsys, monkeypatch):
    # Offline: the smoke profile writes synthetic data; no download may be tried.
    monkeypatch.setenv("TLCNN_OFFLINE", "1")
    out, report_path = tmp_path / "multiscale.keras", tmp_path / "report.json"
    code = main(["train", "cifar10", "--recipe", "multiscale", "--profile", "smoke",
                 "--epochs", "2", "--data-dir", str(tmp_path / "data"), "--out", str(out),
                 "--report", str(report_path), "--quiet"])
    assert code == 0, capsys.readouterr().err
    report = json.loads(report_path.read_text())
    assert report["recipe"] == "multiscale" and report["settings"]["scales"] == list(SIZES)
    assert set(report["test_accuracy_by_size"]) == {str(s) for s in SIZES}
    assert report["test_accuracy_by_size"]["32"] == report["test_accuracy"]
    model = load_model(out)
    assert model.input_shape == (None, None, None, 3)
    for size in SIZES:
        images, _ = photograph_views(size, crops=(1.0,), positions=1, flips=False)
        probabilities = predict(model, images)
        assert probabilities.shape == (1, len(SHARED_CLASSES))
        assert probabilities.sum() == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ModelInputError, match=r"too small.*smallest size that works is 16x16"):
        predict(model, np.zeros((1, 8, 8, 3), "uint8"))
