"""Searches in other processes: resumed after SIGKILL, and keras-tuner's chief with 2 workers.

Both run ``python -m tlcnn_helpers tune stl10`` on the smoke profile's synthetic 96x96
images with the small search space, bounded in trials and in time, and always end every
process they started (found by the test's own temporary folder in their command line).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from tlcnn_helpers import search_state, tuning
from tlcnn_helpers.settings import get_profile

pytestmark = pytest.mark.slow

SIX = {"learning_rate", "optimizer", "filters", "neurons", "conv_blocks", "dense_layers"}
IMAGES_PER_CLASS = 10  # 72 training and 18 validation images: quick trials
REPORT_KEYS = {"best_hyperparameters", "best_score", "trials_completed", "seconds_per_trial",
               "test_accuracy"}


def tune_command(tmp_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "tlcnn_helpers", "tune", "stl10", "--profile", "smoke",
            "--images-per-class", str(IMAGES_PER_CLASS), "--tuning-dir", str(tmp_path / "tuning"),
            *args]


def child_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
    env["TLCNN_LOGS_DIR"] = str(tmp_path / "logs")
    return env


def end_processes_of(tmp_path: Path) -> list[int]:
    """Kill whatever is still running with this test's folder in its command line."""
    marker = str(tmp_path)
    leftovers = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if process.pid != os.getpid() and marker in " ".join(process.info["cmdline"] or []):
            leftovers.append(process.pid)
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
    return leftovers


def wait_for_completed_trial(project_dir: Path, process: subprocess.Popen, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if search_state.completed_trials(project_dir):
            return
        if process.poll() is not None:
            pytest.fail(f"the search exited (code {process.returncode}) before it was killed")
        time.sleep(0.05)
    pytest.fail(f"no trial completed within {limit} s")


def test_search_killed_with_sigkill_resumes_without_rerunning_completed_trials(tmp_path):
    project_dir = tmp_path / "tuning" / "resume"
    command = tune_command(tmp_path, "--project", "resume", "--max-trials", "2",
                           "--retrain-epochs", "1", "--report", str(tmp_path / "report.json"))
    try:
        first = subprocess.Popen(command, env=child_env(tmp_path), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for_completed_trial(project_dir, first, limit=90)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        assert first.returncode == -signal.SIGKILL
        before = search_state.trial_infos(project_dir)
        done_before = {tid: info for tid, info in before.items() if info["status"] == "COMPLETED"}
        assert len(done_before) == 1, "killed too late to test a resume"
        assert all(info["pid"] == first.pid for info in done_before.values())

        second = subprocess.run(command, env=child_env(tmp_path), capture_output=True,
                                text=True, timeout=120)
        assert second.returncode == 0, second.stderr[-2000:]
        assert "Reusing the search" in second.stderr and "--fresh" in second.stderr
    finally:
        end_processes_of(tmp_path)

    after = search_state.trial_infos(project_dir)
    completed = {tid: info for tid, info in after.items() if info["status"] == "COMPLETED"}
    assert len(completed) == 2  # the search finished its budget
    for tid, info in done_before.items():  # reloaded, not rerun: same process, same score
        assert completed[tid]["pid"] == first.pid
        assert completed[tid]["score"] == info["score"]
    rerun = {tid for tid, info in completed.items() if info["pid"] != first.pid}
    assert rerun == set(completed) - set(done_before)

    report = json.loads((tmp_path / "report.json").read_text())
    assert REPORT_KEYS <= set(report)
    assert report["trials_completed"] == 2
    assert set(report["best_hyperparameters"]) >= SIX
    assert report["best_score"] == max(info["score"] for info in completed.values())
    assert 0 <= report["test_accuracy"] <= 1 and report["seconds_per_trial"] > 0


def test_chief_and_two_workers_share_the_trials_and_the_best_model_can_be_retrieved(tmp_path):
    command = tune_command(tmp_path, "--project", "shared", "--max-trials", "4",
                           "--retrain-epochs", "0", "--distributed", "--workers", "2",
                           "--timeout", "150", "--report", str(tmp_path / "report.json"))
    try:
        result = subprocess.run(command, env=child_env(tmp_path), capture_output=True,
                                text=True, timeout=170)
    finally:
        leftovers = end_processes_of(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert leftovers == [], "the command left processes running"

    report = json.loads((tmp_path / "report.json").read_text())
    assert REPORT_KEYS <= set(report)
    by_worker = report["trials_by_worker"]
    assert set(by_worker) == {"worker0", "worker1"}  # both workers ran trials...
    ran = [tid for trials in by_worker.values() for tid in trials]
    assert sorted(ran) == sorted(set(ran)) and len(ran) == 4  # ...and no trial twice
    assert report["trials_completed"] == 4
    for role in ("chief", "worker0", "worker1"):
        assert Path(report["process_logs"][role]).exists()

    # The chief's state holds every trial: the best model comes back with its weights.
    hypermodel = tuning.STL10HyperModel(tuning.SEARCH_SPACES["small"], seed=42)
    tuner = tuning.make_tuner("random", hypermodel, directory=tmp_path / "tuning",
                              project_name="shared", max_trials=4, seed=42, warn_reuse=False)
    best_model = tuner.get_best_models(1)[0]
    smoke = get_profile("smoke")
    data = tuning.load_search_data(dataclasses.replace(
        smoke, tuning=dataclasses.replace(smoke.tuning, images_per_class=IMAGES_PER_CLASS)))
    probabilities = best_model.predict(data.x_val, verbose=0)
    assert probabilities.shape == (len(data.x_val), 9)
    accuracy = float(np.mean(probabilities.argmax(1) == data.y_val))
    assert accuracy == pytest.approx(report["best_score"], abs=1.5 / len(data.x_val))
