"""Notebook 05's tuning lesson: Hyperband promotes within every profile's budget, the tuners
spend the same epochs, its exercises and figures, and what the notebook says is true.

Searches run on tiny random 16x16 images (as in ``test_tuning.py``); the schedule and the
budgets are checked against keras-tuner's own ``HyperbandOracle``.
"""

from __future__ import annotations

import inspect

import keras
import keras_tuner
import numpy as np
import pytest
from course_notebooks import read_notebook

from tlcnn_helpers import compat, tuning, viz
from tlcnn_helpers.exercises import feedback, nb05_stl10_tuning, reference_solution
from tlcnn_helpers.settings import HYPERBAND_FACTOR, PROFILES, TuningBudget, get_profile, repo_root

NOTEBOOK = "05_stl10_tuning.ipynb"


def tiny_data(per_class: int = 6, size: int = 16, classes: int = 3) -> tuning.SearchData:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(classes), per_class)
    x = (rng.integers(0, 60, (len(labels), size, size, 3)) + 60 * labels[:, None, None, None])
    return tuning.split_search_data(x.astype(np.uint8), labels, x[::2], labels[::2],
                                    num_classes=classes, validation_fraction=0.34, seed=0)


def oracle_plan(max_epochs: int, tmp_path, trials: int | None = None) -> list[dict[str, int]]:
    """Drive keras-tuner's HyperbandOracle trial by trial (fake scores, no training)."""
    oracle = keras_tuner.oracles.HyperbandOracle(
        objective=keras_tuner.Objective("score", "max"), max_epochs=max_epochs,
        factor=HYPERBAND_FACTOR, hyperband_iterations=1, seed=1)
    oracle.max_trials = trials
    hp = keras_tuner.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    oracle.hyperparameters = hp
    oracle._set_project_dir(str(tmp_path), f"plan{max_epochs}")
    rows = []
    while True:
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            return rows
        values = trial.hyperparameters.values
        rows.append({"bracket": values["tuner/bracket"], "round": values["tuner/round"],
                     "epochs": values["tuner/epochs"],
                     "initial_epoch": values["tuner/initial_epoch"],
                     "trained": values["tuner/epochs"] - values["tuner/initial_epoch"],
                     "parent": values.get("tuner/trial_id")})
        oracle.update_trial(trial.trial_id, {"score": values["x"]})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)


# ---------------------------------------------------------------------------- the budgets
@pytest.mark.parametrize("max_epochs", [2, 4, 10])
def test_hyperband_schedule_is_the_order_keras_tuners_oracle_runs(max_epochs, tmp_path):
    planned = compat.hyperband_schedule(max_epochs, HYPERBAND_FACTOR)
    ran = oracle_plan(max_epochs, tmp_path)
    assert [{k: v for k, v in row.items() if k != "parent"} for row in ran] == planned
    # every trial after round 0 is a promotion: it names the trial it continues
    assert all((row["parent"] is not None) == (row["round"] > 0) for row in ran)


@pytest.mark.parametrize("name", list(PROFILES))
def test_every_profile_promotes_a_hyperband_trial_within_the_same_epochs(name, tmp_path):
    budget = get_profile(name).tuning
    trials = budget.trials_for("hyperband")
    ran = oracle_plan(budget.hyperband_max_epochs, tmp_path, trials=trials)
    assert len(ran) == trials
    assert any(row["parent"] is not None for row in ran), "no promotion within the budget"
    # Hyperband spends the random search's epochs exactly, and so does the Bayesian search
    assert sum(row["trained"] for row in ran) == budget.epoch_budget
    for kind in ("random", "bayesian"):
        assert budget.trials_for(kind) * budget.epochs_per_trial == budget.epoch_budget


def test_hyperband_gets_the_longest_start_of_its_schedule_that_fits():
    # schedule for max_epochs 4: 1 1 1 1 | +1 +1 | +2 | 2 2 2 ...: 8 epochs fit 7 trials
    assert TuningBudget(4, 2, 1, hyperband_max_epochs=4).trials_for("hyperband") == 7
    assert TuningBudget(9, 1, 1, hyperband_max_epochs=4).trials_for("hyperband") == 7
    assert TuningBudget(10, 1, 1, hyperband_max_epochs=4).trials_for("hyperband") == 8
    assert TuningBudget(1, 1, 1, hyperband_max_epochs=10).trials_for("hyperband") == 1
    assert TuningBudget(5, 3, 1).trials_for("random") == 5


@pytest.mark.slow
def test_smoke_tuners_spend_equal_epochs_and_hyperband_promotes(tmp_path):
    smoke = get_profile("smoke")
    data = tiny_data()
    # Bayesian trials are counted as random ones (trials_for): two tuners keep this short.
    searches = tuning.compare_tuners(data, smoke, kinds=("random", "hyperband"),
                                     directory=tmp_path)
    for kind, search in searches.items():
        assert search.total_epochs == smoke.tuning.epoch_budget, kind
    promoted = [t for t in searches["hyperband"].trials if t["tuner"].get("tuner/trial_id")]
    assert promoted, "the smoke Hyperband search promoted no trial"
    parents = {t["trial_id"] for t in searches["hyperband"].trials}
    assert all(t["tuner"]["tuner/trial_id"] in parents for t in promoted)
    assert all(t["epochs"] == t["tuner"]["tuner/epochs"] - t["tuner"]["tuner/initial_epoch"]
               for t in promoted)
    table = tuning.trial_table(searches["hyperband"]).splitlines()
    assert "tuner/trial_id" in table[0] and len(table) == 1 + len(searches["hyperband"].trials)
    assert any(line.split()[3] == promoted[0]["tuner"]["tuner/trial_id"] for line in table[1:])
    fig = viz.plot_scores_by_epochs(searches, epoch_budget=smoke.tuning.epoch_budget)
    # each tuner's best-so-far line ends at the budget
    steps = [line for line in fig.axes[0].lines if line.get_label().endswith("best so far")]
    assert [max(line.get_xdata()) for line in steps] == [smoke.tuning.epoch_budget] * 2


# ---------------------------------------------------------------------------- figures
def test_hyperparameter_scatter_uses_a_log_axis_and_one_group_per_optimizer():
    trials = [{"score": s, "hyperparameters": {"learning_rate": lr, "optimizer": o}}
              for s, lr, o in [(0.3, 1e-4, "adam"), (0.5, 1e-3, "sgd"), (0.4, 1e-2, "adam"),
                               (None, 1e-3, "rmsprop")]]
    fig = viz.plot_hyperparameter_scores(trials)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_title() and ax.get_ylabel()
    groups = {c.get_label(): c for c in ax.collections}
    assert set(groups) == {"optimizer = adam", "optimizer = sgd"}  # unscored trials left out
    assert len(groups["optimizer = adam"].get_offsets()) == 2
    colours = {tuple(np.round(c.get_facecolor()[0], 3)) for c in ax.collections}
    assert len(colours) == 2


# ---------------------------------------------------------------------------- exercises
def uniform_build(hp):
    hp.Float("learning_rate", 1e-4, 1e-2)  # no sampling="log"
    return nb05_stl10_tuning._reference_build(hp)


def missing_neurons_build(hp):
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")
    hp.Choice("optimizer", ["adam"])
    hp.Choice("filters", [8])
    hp.Int("conv_blocks", 1, 2)
    hp.Int("dense_layers", 1, 2)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")
    return model


def uncompiled_build(hp):
    hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")
    hp.Choice("optimizer", ["adam"])
    filters = hp.Choice("filters", [8])
    hp.Choice("neurons", [16])
    blocks = hp.Int("conv_blocks", 1, 2)
    hp.Int("dense_layers", 1, 2)
    model = keras.Sequential([keras.Input((32, 32, 3))])
    for _ in range(blocks):
        model.add(keras.layers.Conv2D(filters, 3))
    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dense(10, activation="softmax"))
    return model  # never compiled


def int_filters_build(hp):
    hp.Int("filters", 16, 64)
    return nb05_stl10_tuning._reference_build(hp)


def fixed_blocks_build(hp):
    nb05_stl10_tuning._reference_build(hp)  # declares the six on hp...
    two = keras_tuner.HyperParameters()
    two.Fixed("conv_blocks", 2)
    return nb05_stl10_tuning._reference_build(two)  # ...but always builds 2 blocks


@pytest.mark.parametrize("build, words", [
    (uniform_build, "sampled uniformly"),
    (missing_neurons_build, "does not declare neurons"),
    (uncompiled_build, "not compiled"),
    (int_filters_build, "filters is declared with hp.Int; use hp.Choice"),
    (fixed_blocks_build, "with conv_blocks=4 your model has 2 Conv2D layers"),
])
def test_write_build_hints_name_the_mistake(build, words):
    result = feedback("05.write_build", build)
    assert result.status == "wrong" and words in result.message, result


def test_write_build_reference_passes_and_a_none_model_is_not_done_yet():
    assert feedback("05.write_build", reference_solution("05.write_build")).passed
    assert feedback("05.write_build", lambda hp: None).status == "todo"


def test_prediction_accepts_any_tuner_name_and_records_it():
    for answer in ("random", " Bayesian ", "HYPERBAND"):
        result = feedback("05.predict_tuner", answer)
        assert result.passed and "recorded" in result.message and "correct" not in result.message
        assert nb05_stl10_tuning.PREDICTIONS["05.predict_tuner"] == answer.strip().lower()
    wrong = feedback("05.predict_tuner", "grid")
    assert wrong.status == "wrong" and "'random', 'hyperband' or 'bayesian'" in wrong.message
    assert feedback("05.predict_tuner", None).status == "todo"


# ---------------------------------------------------------------------------- the notebook
@pytest.fixture(scope="module")
def notebook():
    return read_notebook(repo_root() / "notebooks" / NOTEBOOK)


def code_index(nb, text: str) -> int:
    found = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and text in c.source]
    assert found, f"no code cell holds {text!r}"
    return found[0]


def test_notebook_shows_a_build_hp_and_keras_tuner_before_the_course_tuner(notebook):
    build = notebook.cells[code_index(notebook, "def build(hp):")].source
    for declaration in ('hp.Float("learning_rate"', 'sampling="log"', 'hp.Choice("optimizer"',
                        'hp.Choice("filters"', 'hp.Choice("neurons"', 'hp.Int("conv_blocks"',
                        'hp.Int("dense_layers"', "keras.layers.Conv2D", "model.compile("):
        assert declaration in build, declaration
    raw = code_index(notebook, "keras_tuner.RandomSearch(")
    source = notebook.cells[raw].source
    assert 'objective="val_accuracy"' in source and "overwrite=True" in source
    assert "tuner.search(" in source and "get_best_hyperparameters()" in source
    assert code_index(notebook, "def build(hp):") < raw < code_index(notebook, "make_tuner(")


def test_notebook_asks_for_a_prediction_before_comparing_and_records_at_the_end(notebook):
    assert code_index(notebook, '"05.predict_tuner"') < code_index(notebook, "compare_tuners(")
    recording = [i for i, c in enumerate(notebook.cells)
                 if c.cell_type == "code" and "session.record(" in c.source]
    assert len(recording) == 1
    summary = [i for i, c in enumerate(notebook.cells)
               if c.cell_type == "markdown" and c.source.startswith("## Summary")][0]
    code_before_summary = [i for i, c in enumerate(notebook.cells[:summary])
                           if c.cell_type == "code"]
    assert recording[0] == code_before_summary[-1]
    optional = [i for i, c in enumerate(notebook.cells)
                if c.cell_type == "markdown" and "Optional" in c.source.split("\n")[0]]
    assert optional and optional[0] > code_index(notebook, "compare_tuners(")
    for text in ("remaining_trials", "rss_mb"):
        assert code_index(notebook, text) > optional[0]


def test_notebook_describes_the_bayesian_rule_keras_tuner_implements(notebook):
    source = inspect.getsource(keras_tuner.oracles.BayesianOptimizationOracle.populate_space)
    assert "_upper_confidence_bound" in source and "mu - self.beta * sigma" in source
    text = " ".join(c.source for c in notebook.cells if c.cell_type == "markdown").lower()
    assert "upper confidence bound" in text and "expected improvement" not in text
    assert "most improvement" not in text


def test_notebook_says_stl10_figures_were_not_measured_and_how_to_measure_them(notebook):
    first = notebook.cells[0].source
    assert "not measured" in first and "course's reconstruction" in first
    assert ("python -m tlcnn_helpers tune stl10 --tuner random --profile paper --data-dir data "
            "--report build/stl10-paper-random.json") in first


@pytest.mark.parametrize("kind", ["random", "hyperband"])
def test_tune_command_defaults_to_the_trials_of_the_equal_epoch_budget(kind, capsys, tmp_path):
    from tlcnn_helpers.cli import main

    trials = get_profile("teach").tuning.trials_for(kind)
    code = main(["tune", "stl10", "--profile", "teach", "--tuner", kind, "--tuning-dir",
                 str(tmp_path), "--distributed", "--workers", str(trials + 1)])
    assert code == 2  # refused before any search: the message names the default it chose
    assert f"--max-trials {trials} with --workers {trials + 1}" in capsys.readouterr().err
