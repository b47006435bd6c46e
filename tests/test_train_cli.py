"""`python -m tlcnn_helpers train`: report, saved model, clear errors, kill-and-resume."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tlcnn_helpers.cli import main
from tlcnn_helpers.data import load_dataset
from tlcnn_helpers.evaluation import evaluate
from tlcnn_helpers.files import load_model
from tlcnn_helpers.models import paper_cnn
from tlcnn_helpers.settings import get_profile
from tlcnn_helpers.training import BACKUP_SUBFOLDER

REPO = Path(__file__).resolve().parent.parent
REPORT_KEYS = {"test_accuracy", "test_loss", "epochs", "train_seconds", "images_per_second",
               "recipe", "profile", "data_source", "history"}


@pytest.mark.slow
def test_train_writes_a_model_and_a_report_that_agree(tmp_path, capsys):
    out, report_path = tmp_path / "model.keras", tmp_path / "report.json"
    code = main(["train", "cifar10", "--recipe", "paper", "--profile", "smoke", "--epochs", "1",
                 "--out", str(out), "--report", str(report_path)])
    assert code == 0, capsys.readouterr().err
    report = json.loads(report_path.read_text())
    assert REPORT_KEYS <= set(report)
    assert (report["recipe"], report["profile"], report["data_source"], report["epochs"]) == (
        "paper", "smoke", "synthetic", 1)
    assert [set(row) >= {"epoch", "val_accuracy", "elapsed_seconds"}
            for row in report["history"]] == [True]
    assert report["images_per_second"] > 0 and report["train_seconds"] > 0
    # The saved model reproduces the reported test metrics.
    _, (x_test, y_test) = load_dataset("cifar10", get_profile("smoke"))
    metrics = evaluate(load_model(out), x_test, y_test)
    assert metrics["test_accuracy"] == pytest.approx(report["test_accuracy"], abs=1e-6)
    assert metrics["test_loss"] == pytest.approx(report["test_loss"], rel=1e-4)
    assert "test accuracy" in capsys.readouterr().out


def test_a_missing_start_model_is_named(tmp_path, capsys):
    missing = tmp_path / "nowhere.keras"
    code = main(["train", "cifar10", "--profile", "smoke", "--from-model", str(missing),
                 "--out", str(tmp_path / "m.keras"), "--report", str(tmp_path / "r.json")])
    assert code == 2
    assert f"no model file at {missing}" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_a_data_folder_without_data_is_named(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["train", "cifar10", "--profile", "teach", "--data-dir", str(empty),
                 "--no-download", "--out", str(tmp_path / "m.keras"),
                 "--report", str(tmp_path / "r.json")])
    assert code == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "--profile smoke" in err


def test_no_download_never_replaces_a_damaged_archive(tmp_path, capsys):
    damaged = tmp_path / "cifar-10-python.tar.gz"
    damaged.write_bytes(b"half an archive")
    code = main(["train", "cifar10", "--profile", "teach", "--data-dir", str(tmp_path),
                 "--no-download", "--out", str(tmp_path / "m.keras"),
                 "--report", str(tmp_path / "r.json")])
    assert code == 2
    assert "cifar-10-python.tar.gz has MD5" in capsys.readouterr().err
    assert damaged.read_bytes() == b"half an archive"


@pytest.mark.slow
def test_images_that_do_not_fit_the_model_point_to_the_transfer_notebook(tmp_path, capsys):
    cifar_model = tmp_path / "cifar.keras"
    paper_cnn(dense_units=8).save(cifar_model)
    code = main(["train", "stl10", "--profile", "smoke", "--from-model", str(cifar_model),
                 "--out", str(tmp_path / "m.keras"), "--report", str(tmp_path / "r.json")])
    assert code == 2
    err = capsys.readouterr().err
    assert "96x96" in err and "32x32" in err and "06_transfer" in err


@pytest.mark.parametrize("flags,match", [
    (["--out", "model.h5"], "use a file name ending in .keras"),
    (["--epochs", "0"], "--epochs 0"),
    (["--time-budget", "-5"], "--time-budget"),
])
def test_bad_arguments_are_refused_before_training(tmp_path, capsys, flags, match):
    args = ["train", "cifar10", "--profile", "smoke", "--out", str(tmp_path / "m.keras"),
            "--report", str(tmp_path / "r.json")]
    args += flags  # argparse keeps the last value of a repeated option
    assert main(args) == 2
    assert match in capsys.readouterr().err


RESUMABLE_RUN = textwrap.dedent("""
    import json, os, sys
    import keras
    import numpy as np
    from tlcnn_helpers.training import get_recipe, train_recipe

    class HoldAfterEpoch(keras.callbacks.Callback):
        # After the backup of epoch HOLD_AFTER_EPOCH is written, wait to be killed: the
        # test kills on an event, not on a race with epoch 3.
        def on_epoch_end(self, epoch, logs=None):
            if os.environ.get("HOLD_AFTER_EPOCH") == str(epoch + 1):
                print("HELD", flush=True)
                sys.stdin.readline()
    rng = np.random.default_rng(0)
    y = np.arange(64) % 2
    x = rng.integers(0, 80, (64, 32, 32, 3)).astype("uint8")
    x[..., 1] += (y * 120).astype("uint8")[:, None, None]
    recipe = get_recipe("paper", epochs=4, batch_size=16,
                        model_options={"filters": (4, 4, 4, 4), "dense_units": 8})
    result = train_recipe(recipe, (x, y), (x, y), num_classes=2, seed=0, backup_dir=sys.argv[1],
                          callbacks=[HoldAfterEpoch()])
    print("RESULT", json.dumps({"history": result.history,
                                "resumed_after_epoch": result.resumed_after_epoch,
                                "iterations": int(result.model.optimizer.iterations)}))
""")


@pytest.mark.slow
def test_a_killed_run_resumes_after_its_last_finished_epoch(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(RESUMABLE_RUN)
    backup = tmp_path / "backup"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, str(script), str(backup)]

    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             stdin=subprocess.PIPE, text=True, env={**env, "HOLD_AFTER_EPOCH": "2"},
                             cwd=tmp_path)
    printed = []
    for line in child.stdout:
        printed.append(line)
        if line.startswith("HELD"):  # epoch 2 is backed up and the child waits
            child.send_signal(signal.SIGKILL)  # no chance to clean up, like a crash
            break
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL, "".join(printed)
    saved = json.loads((backup / BACKUP_SUBFOLDER / "history.json").read_text())
    assert [row["epoch"] for row in saved] == [1, 2]

    finished = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=120)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "resuming after epoch 2" in finished.stdout
    assert "epoch 1/4" not in finished.stdout and "epoch 3/4" in finished.stdout
    result = json.loads(finished.stdout.split("RESULT ", 1)[1])
    assert result["resumed_after_epoch"] == 2
    assert [row["epoch"] for row in result["history"]] == [1, 2, 3, 4]
    assert result["history"][:2] == saved  # finished epochs are kept as they were
    assert result["iterations"] == 4 * 4  # the optimizer state came back with the weights
    assert not (backup / BACKUP_SUBFOLDER).exists()  # removed once training completed
    assert np.isfinite([row["loss"] for row in result["history"]]).all()


def test_the_command_offers_exactly_the_recipes_training_knows():
    from tlcnn_helpers.commands import train as train_command
    from tlcnn_helpers.training import RECIPES

    assert train_command.RECIPES == RECIPES
