"""Training: schedules, reproducibility, time budgets, evaluation, saving and loading."""

import json

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest

from tlcnn_helpers.errors import ModelInputError, TLCNNError
from tlcnn_helpers.evaluation import check_images, evaluate
from tlcnn_helpers.files import load_model, save_model, write_json
from tlcnn_helpers.models import compile_for_classification, paper_cnn, whitening_weights
from tlcnn_helpers.pipelines import make_dataset
from tlcnn_helpers.settings import get_profile
from tlcnn_helpers.training import (
    TrainingResult,
    WarmupCosineWithinBudget,
    fit,
    get_recipe,
    learning_rate_schedule,
    paper_recipe,
    train_recipe,
    training_report,
)
from tlcnn_helpers.viz import plot_confusion_matrix, plot_learning_curves, plot_per_class_accuracy

TINY_FAST = {"widths": (8, 16), "residual_stages": (2,)}


def tiny_data(count=60, size=32, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(count) % classes
    x = rng.integers(0, 60, (count, size, size, 3)).astype("uint8")
    x[..., 0] += (y * 60).astype("uint8")[:, None, None]  # the red channel tells the class
    return x, y


def test_recipes_follow_the_profile():
    smoke = get_profile("smoke")
    paper = get_recipe("paper", smoke)
    assert (paper.epochs, paper.batch_size, paper.learning_rate) == (
        smoke.cifar.paper_epochs, smoke.cifar.paper_batch_size, 1e-3)
    assert paper.schedule == "constant" and paper.augment == "none"
    assert get_recipe("paper", get_profile("teach")).batch_size == 64  # the paper's batch
    assert get_recipe("fast", get_profile("teach")).batch_size == get_profile("teach").cifar.batch_size
    fast = get_recipe("fast", smoke, epochs=5)
    assert fast.epochs == 5 and fast.schedule == "warmup_cosine" and fast.label_smoothing > 0
    with pytest.raises(TLCNNError, match="recipe 'slow'"):
        get_recipe("slow")


def test_the_best_recipe_keeps_its_batch_and_takes_its_schedule_from_the_profile():
    teach, smoke = get_profile("teach"), get_profile("smoke")
    best = get_recipe("best", teach)
    assert (best.model, best.batch_size, best.epochs) == ("best", 256, teach.cifar.best_epochs)
    assert best.schedule == "warmup_cosine" and best.label_smoothing == 0.2
    assert get_recipe("best", smoke).epochs == smoke.cifar.best_epochs == 1
    assert get_recipe("best", teach, batch_size=32).batch_size == 32


@pytest.mark.slow
def test_the_best_model_trains_saves_and_reloads_as_keras(tmp_path):
    x, y = tiny_data(count=48)
    recipe = get_recipe("best", epochs=1, batch_size=16, widths=(8, 16), whiten=True)
    result = train_recipe(recipe, (x, y), None, num_classes=3, seed=0, verbose=False)
    assert result.model.name == "best_cifar_cnn" and result.epochs == 1
    assert [layer.name for layer in result.model.layers][2:6] == [
        "whiten", "whiten_relu", "stage1a_conv", "stage1a_pool"]
    # The whitening filters come from the training images and training leaves them alone.
    kernel, bias = whitening_weights(x)
    np.testing.assert_allclose(result.model.get_layer("whiten").get_weights()[0], kernel)
    path = save_model(result.model, tmp_path / "best.keras")
    np.testing.assert_allclose(load_model(path).predict(x[:4], verbose=0),
                               result.model.predict(x[:4], verbose=0), rtol=1e-5)


def test_warmup_cosine_rises_to_the_peak_then_decays_to_zero():
    recipe = get_recipe("fast", epochs=4, learning_rate=0.01, warmup_fraction=0.25)
    schedule = learning_rate_schedule(recipe, steps_per_epoch=25)
    rates = np.array([float(schedule(step)) for step in range(100)])
    peak = int(rates.argmax())
    assert rates[0] == 0.0 and peak == 25 and rates[peak] == pytest.approx(0.01)
    assert np.all(np.diff(rates[:peak + 1]) > 0) and np.all(np.diff(rates[peak:]) <= 0)
    assert rates[-1] < 0.0002
    assert learning_rate_schedule(paper_recipe(), 10) == 1e-3


@pytest.mark.slow
def test_a_fixed_seed_gives_the_same_training_run_twice():
    x, y = tiny_data()
    recipe = get_recipe("fast", epochs=2, batch_size=16, **TINY_FAST)
    first = train_recipe(recipe, (x, y), (x[:30], y[:30]), num_classes=3, seed=5, verbose=False)
    second = train_recipe(recipe, (x, y), (x[:30], y[:30]), num_classes=3, seed=5, verbose=False)
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    assert [[r[k] for k in keys] for r in first.history] == [
        [r[k] for k in keys] for r in second.history]
    for a, b in zip(first.model.get_weights(), second.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert evaluate(first.model, x, y) == evaluate(second.model, x, y)


@pytest.mark.slow
def test_training_learns_a_tiny_separable_task_and_reports_each_epoch():
    x, y = tiny_data(count=90)
    recipe = get_recipe("fast", epochs=4, batch_size=15, **TINY_FAST)
    result = train_recipe(recipe, (x, y), (x, y), num_classes=3, seed=0, verbose=False)
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    elapsed = result.curve("elapsed_seconds")
    assert elapsed == sorted(elapsed) and result.images_per_second > 0
    assert evaluate(result.model, x, y)["test_accuracy"] > 0.6


class FakeClock:
    """A time function the test advances itself: budgets are tested without sleeping, so a
    loaded machine cannot make them flaky."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_time_budget_stops_training_before_it_overruns():
    x, y = tiny_data(count=16)
    ds = make_dataset(x, y, num_classes=3, batch_size=16)
    clock = FakeClock()

    class EpochsOfPointFourSeconds(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            clock.now += 0.4

    model = compile_for_classification(paper_cnn(num_classes=3, dense_units=8, filters=(4, 4, 4, 4)))
    result = fit(model, ds, epochs=50, images_per_epoch=16, time_budget_seconds=2.0,
                 verbose=False, callbacks=[EpochsOfPointFourSeconds()], clock=clock)
    # After epoch k the clock reads 0.4 k; the next epoch (0.4 s) would overrun 2.0 s from k = 5.
    assert result.stopped_by_time_budget and result.epochs in (4, 5)
    assert result.wall_seconds <= 2.0
    with pytest.raises(TLCNNError, match="time budget"):
        fit(model, ds, epochs=1, images_per_epoch=16, time_budget_seconds=-1, verbose=False)


def test_evaluate_matches_keras_on_the_same_images():
    x, y = tiny_data(count=30)
    model = compile_for_classification(paper_cnn(num_classes=3, dense_units=8))
    ours = evaluate(model, x, y)
    keras_loss, keras_acc = model.evaluate(x, keras.utils.to_categorical(y, 3), verbose=0)
    assert ours["test_accuracy"] == pytest.approx(keras_acc, abs=1e-6)
    assert ours["test_loss"] == pytest.approx(keras_loss, rel=1e-4)


def test_images_of_another_size_point_to_the_transfer_notebook():
    model = paper_cnn()
    with pytest.raises(ModelInputError, match="06_transfer"):
        check_images(model, np.zeros((2, 96, 96, 3)), "stl10")
    with pytest.raises(ModelInputError, match="96x96"):
        evaluate(model, np.zeros((2, 96, 96, 3), "uint8"), np.zeros(2, int))


@pytest.mark.slow
@pytest.mark.parametrize("builder", ["paper", "fast"])
def test_save_and_load_give_identical_predictions(tmp_path, builder):
    x, y = tiny_data(count=24)
    recipe = get_recipe(builder, epochs=1, batch_size=12,
                        **(TINY_FAST if builder == "fast" else {}))
    result = train_recipe(recipe, (x, y), None, num_classes=3, seed=1, verbose=False)
    path = save_model(result.model, tmp_path / "model.keras")
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), result.model.predict(x, verbose=0))
    assert not list(tmp_path.glob(".*partial*"))


def test_a_missing_or_damaged_model_file_is_named_and_kept(tmp_path):
    with pytest.raises(ModelInputError, match="no model file at .*missing.keras"):
        load_model(tmp_path / "missing.keras")
    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes(b"not a zip archive")
    with pytest.raises(ModelInputError, match="damaged.keras is not a readable"):
        load_model(damaged)
    assert damaged.read_bytes() == b"not a zip archive"
    with pytest.raises(TLCNNError, match=r"\.keras"):
        save_model(paper_cnn(), tmp_path / "model.h5")


def test_report_has_the_documented_keys_and_is_json(tmp_path):
    result = TrainingResult(None, [{"epoch": 1, "val_accuracy": 0.5, "elapsed_seconds": 3.0}],
                            train_seconds=2.0, wall_seconds=3.0, images_per_second=50.0)
    report = training_report(result, {"test_accuracy": 0.4, "test_loss": 1.5},
                             recipe=paper_recipe(1), profile="smoke", data_source="synthetic")
    assert {"test_accuracy", "test_loss", "epochs", "train_seconds", "images_per_second",
            "recipe", "profile", "data_source", "history"} <= set(report)
    path = write_json(report, tmp_path / "sub" / "report.json")
    assert json.loads(path.read_text())["history"][0]["val_accuracy"] == 0.5


def test_a_time_budget_squeezes_the_whole_cosine_schedule_into_it():
    x, y = tiny_data(count=32)
    ds = make_dataset(x, y, num_classes=3, batch_size=8)
    rates = []
    clock = FakeClock()

    class BatchesOfFiftyMillisecondsWatchingTheRate(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
            clock.now += 0.05

    model = compile_for_classification(paper_cnn(num_classes=3, dense_units=8, filters=(4, 4, 4, 4)))
    schedule = WarmupCosineWithinBudget(0.01, total_steps=500 * 4, warmup_fraction=0.2,
                                        budget_seconds=2.0, verbose=False, clock=clock)
    result = fit(model, ds, epochs=500, images_per_epoch=32, batch_size=8, verbose=False,
                 callbacks=[schedule, BatchesOfFiftyMillisecondsWatchingTheRate()], clock=clock)
    # 2.0 s of 0.05 s batches: the schedule is squeezed into 40 of its 2,000 steps.
    assert schedule.stopped and result.epochs < 500 and len(rates) in (40, 41)
    assert result.wall_seconds <= 2.05
    assert max(rates) > 0.009  # it warmed up to the peak ...
    assert rates[-1] < 0.0005  # ... and decayed to about zero by the end of the budget
    assert sum(row["images"] for row in result.history) == 8 * len(rates)


def test_training_figures_are_closed_so_a_notebook_cell_shows_them_once():
    # An open figure returned by a cell is shown twice: once returned, once by pyplot.
    run = TrainingResult(None, [{"epoch": 1, "val_accuracy": 0.5, "elapsed_seconds": 3.0}],
                         2.0, 3.0, 10.0)
    figures = [plot_confusion_matrix(np.eye(2, dtype=int), ["a", "b"]),
               plot_per_class_accuracy({"m": [0.5, 1.0]}, ["a", "b"]),
               plot_learning_curves({"demo": run})]
    assert [plt.fignum_exists(fig.number) for fig in figures] == [False, False, False]
    assert all(fig.axes[0].get_title() for fig in figures)


def test_whitening_makes_patch_directions_uncorrelated_with_unit_variance():
    rng = np.random.default_rng(1)
    base = rng.normal(128, 40, (200, 16, 16, 1))
    images = np.clip(base + rng.normal(0, 20, (200, 16, 16, 3)), 0, 255).astype("uint8")
    kernel, bias = whitening_weights(images, epsilon=0.0)
    windows = np.lib.stride_tricks.sliding_window_view(images / 255.0, (2, 2), axis=(1, 2))
    patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, 12)
    outputs = patches @ kernel.reshape(12, 24) + bias
    assert np.allclose(outputs.mean(axis=0), 0, atol=1e-3)
    covariance = np.cov(outputs[:, :12], rowvar=False)
    np.testing.assert_allclose(covariance, np.eye(12), atol=1e-3)
    np.testing.assert_allclose(outputs[:, 12:], -outputs[:, :12], atol=1e-5)  # +v and -v
