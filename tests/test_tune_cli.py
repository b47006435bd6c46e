"""``python -m tlcnn_helpers tune``: contradictory or impossible settings are clear errors.

A full search through the command line (report keys, resume after SIGKILL, distributed
workers) runs in tests/test_tuning_distributed.py.
"""

from __future__ import annotations

import pytest

from tlcnn_helpers import search_state, tuning
from tlcnn_helpers.cli import main


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(["tune", "stl10", "--profile", "smoke", *args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--max-trials", "0"], "--max-trials 0: a search needs at least 1 trial"),
    (["--epochs", "0"], "--epochs 0: each trial needs at least 1 epoch"),
    (["--retrain-epochs", "-1"], "--retrain-epochs -1"),
    (["--workers", "2"], "--workers only applies with --distributed"),
    (["--distributed"], "--workers None: give the number of workers"),
    (["--distributed", "--workers", "0"], "--workers 0"),
    (["--distributed", "--workers", "3", "--max-trials", "2"],
     "--max-trials 2 with --workers 3: some workers would have nothing to do"),
    (["--timeout", "10"], "--timeout only applies with --distributed"),
    (["--role", "worker"], "--role worker needs the environment variables KERASTUNER_TUNER_ID"),
])
def test_contradictory_settings_exit_2_with_the_fix(capsys, monkeypatch, tmp_path, args, message):
    for var in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.delenv(var, raising=False)
    code, err = run_cli(capsys, "--tuning-dir", str(tmp_path), *args)
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert not any(tmp_path.iterdir())  # nothing was created


def test_unknown_tuner_and_dataset_are_rejected_with_the_choices(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["tune", "stl10", "--tuner", "grid"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'grid'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["tune", "imagenet"])
    assert "choose from" in capsys.readouterr().err


def test_a_search_folder_made_for_another_space_is_refused(capsys, tmp_path):
    small = tuning.STL10HyperModel(tuning.SEARCH_SPACES["small"], seed=42)
    tuning.make_tuner("random", small, directory=tmp_path, project_name="mine", max_trials=2,
                      seed=42)
    before = sorted(p.name for p in (tmp_path / "mine").iterdir())
    code, err = run_cli(capsys, "--tuning-dir", str(tmp_path), "--project", "mine",
                        "--space", "paper", "--max-trials", "2")
    assert code == 2
    assert f"{tmp_path / 'mine'} was made for a different search (differs in: space)" in err
    assert "--fresh" in err
    after = sorted(p.name for p in (tmp_path / "mine").iterdir() if p.name != search_state.LOCK_FILE)
    assert after == before  # left untouched (but for the lock file every tune holds there)
