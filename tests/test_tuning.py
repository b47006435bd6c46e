"""tlcnn_helpers.tuning: the search space, the tuners, resumed and reused searches, safety nets.

Searches here run on tiny random 16x16 images so that every tuner finishes in seconds; the
96x96 STL-10 path is exercised by the command-line and distributed tests.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from tlcnn_helpers import distributed, errors, files, memory, search_state, tuning, viz
from tlcnn_helpers.errors import TLCNNError

SMALL = tuning.SEARCH_SPACES["small"]
SIX = {"learning_rate", "optimizer", "filters", "neurons", "conv_blocks", "dense_layers"}


def tiny_data(per_class: int = 6, size: int = 16, classes: int = 3) -> tuning.SearchData:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(classes), per_class)
    # A class-dependent brightness makes the task learnable, so scores differ between trials.
    x = (rng.integers(0, 60, (len(labels), size, size, 3)) + 60 * labels[:, None, None, None])
    x = x.astype(np.uint8)
    return tuning.split_search_data(x, labels, x[::2], labels[::2], num_classes=classes,
                                    validation_fraction=0.34, seed=0)


def tiny_hypermodel(space: tuning.SearchSpace = SMALL) -> tuning.STL10HyperModel:
    return tuning.STL10HyperModel(space, input_shape=(16, 16, 3), num_classes=3, seed=7,
                                  batch_size=8)


# ---------------------------------------------------------------------------- space and model
def test_search_space_covers_the_papers_six_hyperparameters():
    hp = tuning.STL10HyperModel().declare_space()
    by_name = {p.name: p for p in hp.space}
    assert SIX | {"dropout"} == set(by_name)
    assert by_name["learning_rate"].sampling == "log"
    assert {"adam", "sgd", "rmsprop"} <= set(by_name["optimizer"].values)
    assert by_name["conv_blocks"].min_value < by_name["conv_blocks"].max_value
    assert by_name["dense_layers"].min_value < by_name["dense_layers"].max_value
    assert len(by_name["filters"].values) > 1 and len(by_name["neurons"].values) > 1


def test_built_model_follows_the_papers_blocks_and_hyperparameters():
    model = tuning.build_search_model(learning_rate=0.02, optimizer="sgd", filters=4, neurons=12,
                                     conv_blocks=3, dense_layers=2, dropout=0.25)
    kinds = [layer.__class__.__name__ for layer in model.layers]
    assert model.input_shape == (None, 96, 96, 3) and model.output_shape == (None, 9)
    assert kinds[2:5] == ["Conv2D", "MaxPooling2D", "BatchNormalization"]
    convs = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [4, 8, 16]
    widest = tuning.build_search_model(learning_rate=0.01, optimizer="adam", filters=64,
                                      neurons=8, conv_blocks=5, dense_layers=1)
    assert [layer.filters for layer in widest.layers if hasattr(layer, "filters")] == \
        [64, 128, 256, 256, 256]
    hidden = [layer for layer in model.layers if layer.name.startswith("hidden")]
    assert [d.units for d in hidden] == [12, 12]
    assert kinds.count("Dropout") == 2
    assert model.optimizer.__class__.__name__ == "SGD"
    assert float(model.optimizer.momentum) == pytest.approx(0.9)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.02)
    assert model.loss.__class__.__name__ == "SparseCategoricalCrossentropy"  # integer labels


def test_hypermodel_builds_what_the_hyperparameters_say():
    hypermodel = tiny_hypermodel()
    hp = hypermodel.declare_space()
    hp.values.update(optimizer="rmsprop", conv_blocks=3, filters=8)
    model = hypermodel.build(hp)
    assert model.optimizer.__class__.__name__ == "RMSprop"
    assert [layer.filters for layer in model.layers if hasattr(layer, "filters")] == [8, 16, 32]


def test_impossible_spaces_and_settings_are_clear_errors(tmp_path):
    with pytest.raises(errors.TuningError, match="conv_blocks up to 5"):
        tuning.STL10HyperModel(tuning.SearchSpace(), input_shape=(16, 16, 3))
    with pytest.raises(errors.TuningError, match="optimizers"):
        tuning.SearchSpace(optimizers=("adamw",)).check(96)
    with pytest.raises(errors.TuningError, match="unknown search space 'huge'"):
        tuning.get_search_space("huge")
    for bad in (0, -3, True, 2.5):
        with pytest.raises(errors.TuningError, match="at least 1 trial"):
            tuning.make_tuner("random", tiny_hypermodel(), directory=tmp_path, max_trials=bad)
    with pytest.raises(errors.TuningError, match="unknown tuner 'grid'.*random, hyperband"):
        tuning.make_tuner("grid", tiny_hypermodel(), directory=tmp_path, max_trials=2)
    with pytest.raises(TLCNNError, match="unknown search space"):  # one except catches all
        tuning.get_search_space("huge")


def test_validation_split_comes_from_training_images_only():
    x = np.arange(90, dtype=np.uint8).reshape(90, 1, 1, 1).repeat(3, axis=3)
    y = np.repeat(np.arange(9), 10)
    data = tuning.split_search_data(x, y, x[:18], y[:18], images_per_class=8, seed=3)
    train, val = set(data.x_train[:, 0, 0, 0]), set(data.x_val[:, 0, 0, 0])
    assert not train & val
    # 72 images, 20% held out: scikit-learn rounds the held-out part up to 15
    assert data.sizes() == {"train": 57, "validation": 15, "test": 18}
    assert set(np.bincount(data.y_val, minlength=9).tolist()) <= {1, 2}  # stratified
    with pytest.raises(errors.TuningError, match="images_per_class=1"):
        tuning.split_search_data(x, y, x, y, images_per_class=1)


# ---------------------------------------------------------------------------- search folders
def test_folder_made_for_another_space_is_refused_until_started_fresh(tmp_path):
    tuning.make_tuner("random", tiny_hypermodel(), directory=tmp_path, project_name="p",
                      max_trials=2)
    wider = tuning.SearchSpace(filters=(4, 8, 16), neurons=(16, 32), conv_blocks=(2, 3),
                               dense_layers=(1, 2))
    with pytest.raises(errors.SearchSpaceMismatchError, match=r"p was made for a different.*space"):
        tuning.make_tuner("random", tiny_hypermodel(wider), directory=tmp_path,
                          project_name="p", max_trials=2)
    with pytest.raises(errors.SearchSpaceMismatchError, match="differs in: tuner"):
        tuning.make_tuner("bayesian", tiny_hypermodel(), directory=tmp_path, project_name="p",
                          max_trials=2)
    tuning.make_tuner("random", tiny_hypermodel(wider), directory=tmp_path, project_name="p",
                      max_trials=2, overwrite=True)
    stored = json.loads((tmp_path / "p" / search_state.FINGERPRINT_FILE).read_text())
    assert stored == tiny_hypermodel(wider).fingerprint("random", seed=42, epochs_per_trial=1)


def test_a_foreign_keras_tuner_folder_is_refused(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "oracle.json").write_text("{}")
    with pytest.raises(errors.SearchSpaceMismatchError, match="did not make"):
        tuning.make_tuner("random", tiny_hypermodel(), directory=tmp_path, project_name="p",
                          max_trials=2)


def test_atomic_json_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "oracle.json"
    files.write_json({"good": 1}, path)

    def full_disk(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", full_disk)
    with pytest.raises(OSError):
        files.write_json({"new": 2}, path)
    assert json.loads(path.read_text()) == {"good": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["oracle.json"]


def test_a_trial_that_completed_just_before_a_kill_is_not_rerun(tmp_path):
    tuner = tuning.make_tuner("random", tiny_hypermodel(), directory=tmp_path, project_name="p",
                              max_trials=3)
    trial = tuner.oracle.create_trial("tuner0")
    tuner.oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
    # What keras-tuner's end_trial writes before it drops the trial from ongoing_trials:
    trial.status = "COMPLETED"
    tuner.oracle.score_trial(trial)
    tuner.oracle._save_trial(trial)
    tuner.oracle.save()  # ...and the process is killed here

    with pytest.warns(errors.ReusedSearchWarning):
        resumed = tuning.make_tuner("random", tiny_hypermodel(), directory=tmp_path,
                                    project_name="p", max_trials=3)
    assert resumed.oracle.get_trial(trial.trial_id).score == 0.5
    assert resumed.oracle.create_trial("tuner0").trial_id != trial.trial_id


# ---------------------------------------------------------------------------- searching
@pytest.mark.slow
def test_three_tuners_search_and_log_hparams_then_a_reused_search_runs_nothing(tmp_path):
    data = tiny_data()
    summaries = {}
    for kind in tuning.TUNER_KINDS:
        tuner = tuning.make_tuner(kind, tiny_hypermodel(), directory=tmp_path / "t",
                                  project_name=kind, max_trials=2, seed=3,
                                  hyperband_max_epochs=2)
        summaries[kind] = tuning.run_search(tuner, data, kind=kind, epochs=1,
                                            logs_root=tmp_path / "logs")
    for kind, summary in summaries.items():
        assert summary.trials_completed == 2, kind
        assert set(summary.best_hyperparameters) == SIX | {"dropout"}
        assert 0 <= summary.best_score <= 1
        assert summary.best_score == max(t["score"] for t in summary.trials)
        assert summary.seconds_per_trial > 0
        assert all(t["tuner_id"] == "tuner0" and t["rss_mb"] > 0 for t in summary.trials)
        # keras-tuner turns the TensorBoard callback into per-trial HParams logs
        events = list((tmp_path / "logs" / "tuning" / kind).rglob("events.out.tfevents*"))
        assert events, kind
    assert summaries["random"].total_epochs == 2
    assert summaries["hyperband"].total_epochs >= 2  # its trials train 1 or 2 epochs
    table = tuning.comparison_table(summaries)
    assert [line.split()[0] for line in table.splitlines()[1:]] == list(tuning.TUNER_KINDS)
    fig = viz.plot_trial_scores(summaries)
    assert fig.axes[0].get_title() and len(fig.axes[0].lines) == 6

    # Same settings again: the completed trials are reloaded, nothing is rerun.
    before = search_state.trial_infos(tmp_path / "t" / "random")
    with pytest.warns(errors.ReusedSearchWarning, match="2 completed trial.*overwrite=True"):
        tuner = tuning.make_tuner("random", tiny_hypermodel(), directory=tmp_path / "t",
                                  project_name="random", max_trials=2, seed=3)
    started = time.perf_counter()
    again = tuning.run_search(tuner, data, kind="random", epochs=1, tensorboard=False)
    assert time.perf_counter() - started < 5
    assert search_state.trial_infos(tmp_path / "t" / "random") == before
    assert again.best_score == summaries["random"].best_score

    # The same search in another folder gives the same first trial: smoke runs reproduce.
    twin = tuning.make_tuner("random", tiny_hypermodel(), directory=tmp_path / "twin",
                             project_name="random", max_trials=1, seed=3)
    twin_summary = tuning.run_search(twin, data, kind="random", epochs=1, tensorboard=False)
    first = summaries["random"].trials[0]
    assert [(t["hyperparameters"], t["score"]) for t in twin_summary.trials] == \
        [(first["hyperparameters"], first["score"])]

    model, history = tuning.retrain_best(again.best_hyperparameters, data, epochs=2,
                                         batch_size=8, seed=3)
    assert len(history.history["val_accuracy"]) == 2
    metrics = tuning.evaluate_search_model(model, data)
    assert set(metrics) == {"test_loss", "test_accuracy"}
    predicted = model.predict(data.x_test, verbose=0).argmax(axis=1)
    assert metrics["test_accuracy"] == pytest.approx(np.mean(predicted == data.y_test))
    curves = viz.plot_learning_curves({"best": history}, metrics=("accuracy", "loss"),
                                      validation=True)
    assert [a.get_xlabel() for a in curves.axes] == ["epoch", "epoch"]


def test_trials_leave_no_traced_training_step_behind(tmp_path):
    # Each trial's model and training step is freed when it ends, so memory stays flat
    # however many trials run (tests/test_memory.py shows what TensorFlow keeps otherwise).
    data = tiny_data()
    keras.backend.clear_session()
    registered = memory.custom_gradient_names()
    graphs_before = memory.live_traced_graphs()
    tuner = tuning.make_tuner("random", tiny_hypermodel(), directory=tmp_path / "t",
                              project_name="flat", max_trials=3, seed=5)
    summary = tuning.run_search(tuner, data, kind="random", epochs=1, tensorboard=False)
    assert summary.trials_completed == 3
    assert memory.custom_gradient_names() == registered
    assert memory.live_traced_graphs() <= graphs_before


# ---------------------------------------------------------------------------- processes
def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_launch_distributed_reports_a_failing_worker_and_stops_the_others(tmp_path):
    pid_file = tmp_path / "chief.pid"

    def command(role):
        if role == "chief":  # would run for a minute if not stopped
            return _python(f"import os, time; open({str(pid_file)!r}, 'w').write("
                           "str(os.getpid())); time.sleep(60)")
        if role == "worker1":  # fails once the chief has written its pid: an event, no race
            return _python(f"import os, sys, time\nfor _ in range(3000):\n"
                           f"    if os.path.exists({str(pid_file)!r}) and open({str(pid_file)!r}).read(): break\n"
                           f"    time.sleep(0.02)\n"
                           "print('worker1 is broken'); sys.exit(3)")
        return _python("import time; time.sleep(60)")

    started = time.perf_counter()
    with pytest.raises(errors.TuningError, match=r"worker1 failed \(exit code 3\)[\s\S]*broken"):
        distributed.launch_distributed(command, 2, log_dir=tmp_path)
    assert time.perf_counter() - started < 30
    chief_pid = int(pid_file.read_text())  # written before worker1 failed
    import psutil

    assert not psutil.pid_exists(chief_pid) or \
        psutil.Process(chief_pid).status() == psutil.STATUS_ZOMBIE


def test_launch_distributed_gives_each_process_keras_tuner_variables_and_a_time_limit(tmp_path):
    def command(role):
        return _python("import os, json; print(json.dumps({k: os.environ.get(k) for k in "
                       "('KERASTUNER_TUNER_ID', 'KERASTUNER_ORACLE_IP', 'KERASTUNER_ORACLE_PORT')"
                       "}))")

    run = distributed.launch_distributed(command, 2, log_dir=tmp_path, port=12345)
    seen = {role: json.loads(Path(log).read_text()) for role, log in run.logs.items()}
    assert {s["KERASTUNER_TUNER_ID"] for s in seen.values()} == {"chief", "worker0", "worker1"}
    assert {(s["KERASTUNER_ORACLE_IP"], s["KERASTUNER_ORACLE_PORT"]) for s in seen.values()} \
        == {("127.0.0.1", "12345")}

    with pytest.raises(errors.TuningError, match="did not finish within 1 s"):
        distributed.launch_distributed(lambda role: _python("import time; time.sleep(60)"), 1,
                                  log_dir=tmp_path / "slow", timeout=1)
    with pytest.raises(errors.TuningError, match="at least 1 worker"):
        distributed.launch_distributed(command, 0, log_dir=tmp_path)


# ---------------------------------------------------------------------------- exercises
def test_notebook_04_exercises_accept_the_reference_and_explain_typical_mistakes():
    from tlcnn_helpers.exercises import exercises_of, feedback, reference_solution

    assert exercises_of("05") == ["05.grid_size", "05.log_uniform_sampler", "05.predict_tuner",
                                  "05.random_trials_needed", "05.write_build"]
    for name in exercises_of("05"):
        assert feedback(name, reference_solution(name)).passed, name
    assert "dropout" in feedback("05.grid_size", 243).message
    assert "overlap" in feedback("05.random_trials_needed", 18).message
    uniform = feedback("05.log_uniform_sampler", lambda rng, low, high, n: rng.uniform(low, high, n))
    assert uniform.status == "wrong" and "exponent" in uniform.message
    assert feedback("05.log_uniform_sampler", lambda rng, low, high, n: None).status == "todo"
