"""Every notebook in notebooks/ runs under papermill in the smoke profile, reproducibly.

New notebooks are picked up without editing this file. Each notebook runs in a "first" smoke
run; the notebooks that record metrics run again in a "second" run, and both runs must record
the same, finite values. Each run has its own data, models, tuning, logs and records folders
(as two fresh checkouts would): a second run that shared them would reload the first run's
searches and models instead of repeating the work. Within a run, notebooks share folders as
in ``make course`` (notebook 06 loads the models notebook 04 saved).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from tlcnn_helpers.commands.course import NotebookRun, find_notebooks, run_notebook
from tlcnn_helpers.records import load_records
from tlcnn_helpers.report import compare_records
from tlcnn_helpers.settings import environment_overrides

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = find_notebooks(ROOT / "notebooks")
# Seconds each notebook may take in the smoke profile (CI machine: 2 cores, no GPU).
TIMEOUT_SECONDS = 240
RUN_ENV_VARS = ("TLCNN_DATA_DIR", "TLCNN_MODELS_DIR", "TLCNN_TUNING_DIR", "TLCNN_LOGS_DIR",
                "TLCNN_RECORDS_DIR")
# What a notebook prints (stderr) when it picks up a search left by an earlier run; notebook
# 05's own demonstration of a reused search catches this warning and prints to stdout.
REUSED_STATE_MARK = "ReusedSearchWarning"
# The kernel draws as in Jupyter: ipykernel picks the inline backend only when MPLBACKEND is
# unset, and the root conftest sets it to Agg, with which a cell's figure stays "<Figure ...>"
# text (tests/test_notebook_figures.py checks the executed copies for images).
KERNEL_ENV = {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}

# Reviewed floors for smoke metrics that train on learnable synthetic data (9 classes:
# chance 0.111), so a run that learns nothing fails. Measured on the 2-core CI machine with
# `python -m tlcnn_helpers course --profile smoke` (notebooks in order, 06 after 04).
# (notebook, experiment, metric): (floor, why)
# No floor for notebook 05: its smoke search (2 trials of 1 epoch on 288 images) scores at
# chance on validation (0.111-0.125 measured), so its test accuracy (0.089-0.220 measured
# across splitters) says nothing about learning.
SMOKE_FLOORS = {
    ("04_cifar10_cnn", "CIFAR paper recipe", "test_accuracy"):
        (0.3, "paper recipe, 2 epochs batch 16 on synthetic: measured 0.587, chance 0.111"),
    ("04_cifar10_cnn", "CIFAR fast recipe", "test_accuracy"):
        (0.6, "fast recipe on synthetic: measured 1.0, chance 0.111"),
    ("06_transfer_across_sizes", "Transfer: paper CNN on CIFAR-10 at 32 px",
     "cifar10_test_accuracy"):
        (0.5, "notebook 04's paper model at its own size: measured 0.833, chance 0.111"),
    ("06_transfer_across_sizes", "Transfer: fast CNN on CIFAR-10 at 32 px",
     "cifar10_test_accuracy"):
        (0.6, "notebook 04's fast model at its own size: measured 1.0, chance 0.111"),
    ("06_transfer_across_sizes", "Transfer: resized to 32", "stl10_test_accuracy"):
        (0.25, "STL-10 resized to 32 for the CIFAR model: measured 0.561, chance 0.111"),
    ("06_transfer_across_sizes", "Transfer: native 96 + BatchNorm re-calibration",
     "stl10_test_accuracy"):
        (0.25, "re-calibrated BatchNorm at 96 px: measured 0.517, chance 0.111"),
    ("06_transfer_across_sizes", "Transfer: fine-tuned (frozen, then unfrozen)",
     "stl10_test_accuracy"):
        (0.5, "fine-tuned at 96 px: measured 0.844, chance 0.111"),
}


def records_metrics(notebook: Path) -> bool:
    """Whether the notebook calls ``session.record`` (00_setup records nothing)."""
    nb = nbformat.read(notebook, as_version=4)
    return any("session.record(" in c.source for c in nb.cells if c.cell_type == "code")


RECORDING = [p for p in NOTEBOOKS if records_metrics(p)]
WITH_FLOORS = [p for p in NOTEBOOKS if any(key[0] == p.stem for key in SMOKE_FLOORS)]


def run_folders(root: Path) -> dict[str, str]:
    """One smoke run's own folders, one per variable of RUN_ENV_VARS, all under ``root``."""
    return {var: str(root / var.removeprefix("TLCNN_").removesuffix("_DIR").lower())
            for var in RUN_ENV_VARS}


@dataclass
class Executed:
    run: NotebookRun
    notebook: nbformat.NotebookNode | None
    before: tuple[str, ...]  # notebooks this run had executed earlier


@dataclass
class SmokeRun:
    """A sequence of notebook executions sharing one set of folders, like ``make course``."""

    root: Path
    executed: dict[str, Executed] = field(default_factory=dict)

    @property
    def records_dir(self) -> Path:
        return Path(run_folders(self.root)["TLCNN_RECORDS_DIR"])

    def execute(self, notebook: Path) -> Executed:
        if notebook.name not in self.executed:
            folders = run_folders(self.root)
            out = self.root / "executed"
            out.mkdir(parents=True, exist_ok=True)
            before = tuple(self.executed)
            with environment_overrides({**folders, **KERNEL_ENV}):
                run = run_notebook(notebook, out, "smoke", self.records_dir,
                                   timeout=TIMEOUT_SECONDS)
            path = out / notebook.name
            executed = nbformat.read(path, as_version=4) if path.exists() else None
            self.executed[notebook.name] = Executed(run, executed, before)
        return self.executed[notebook.name]

    def rows(self, notebook: Path) -> list[dict]:
        return [r for r in load_records(self.records_dir) if r["notebook"] == notebook.stem]


# The session fixture `smoke_runs` ({"first": SmokeRun, "second": SmokeRun}) is in
# tests/conftest.py, so that tests/test_notebook_figures.py reads the same executions.


def execution_problems(executed: Executed) -> list[str]:
    """Why an execution does not count as a clean run of a fresh checkout (empty if it does)."""
    if not executed.run.ok:
        return [executed.run.status]
    problems = []
    for index, cell in enumerate(executed.notebook.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "error":
                problems.append(f"cell {index} raised {out.get('ename')}: {out.get('evalue')}")
            if out.get("name") == "stderr" and REUSED_STATE_MARK in out.get("text", ""):
                problems.append(f"cell {index} reused an earlier run's search: "
                                f"{out['text'].strip()[:300]}")
    return problems


def value_problems(rows: list[dict]) -> list[str]:
    """Rows whose value is missing or not finite (records store NaN as None)."""
    return [f"{r['experiment']} / {r['metric']} = {r['value']!r}" for r in rows
            if not isinstance(r["value"], (int, float)) or not math.isfinite(r["value"])]


def test_each_smoke_run_has_its_own_folders(tmp_path):
    first, second = run_folders(tmp_path / "first"), run_folders(tmp_path / "second")
    assert set(first) == set(second) == set(RUN_ENV_VARS)
    paths = list(first.values()) + list(second.values())
    assert len(set(paths)) == len(paths), "two variables or two runs share a folder"
    assert not set(paths) & {os.environ.get(var) for var in RUN_ENV_VARS}, \
        "a smoke run uses the test session's folders (nbval's run uses those)"


def test_value_problems_catch_missing_and_non_finite_metrics():
    rows = [{"experiment": "e", "metric": m, "value": v}
            for m, v in (("ok", 0.5), ("nan", None), ("inf", float("inf")), ("zero", 0))]
    assert value_problems(rows) == ["e / nan = None", "e / inf = inf"]


def test_every_floor_names_a_metric_a_notebook_records():
    stems = {p.stem for p in RECORDING}
    assert {key[0] for key in SMOKE_FLOORS} <= stems
    assert all(0 < floor < 1 and "chance" in why for floor, why in SMOKE_FLOORS.values())


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT_SECONDS + 60)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_profile(notebook, smoke_runs):
    assert execution_problems(smoke_runs["first"].execute(notebook)) == []


@pytest.mark.slow
@pytest.mark.timeout((TIMEOUT_SECONDS + 60) * len(NOTEBOOKS))
@pytest.mark.parametrize("notebook", RECORDING, ids=[p.stem for p in RECORDING])
def test_smoke_metrics_are_reproducible(notebook, smoke_runs, tmp_path):
    """A second run in its own folders records exactly the same, finite metrics."""
    first, second = smoke_runs["first"], smoke_runs["second"]
    first_execution = first.execute(notebook)
    # The second run gets the same earlier notebooks as the first (06 loads 04's models).
    for name in first_execution.before:
        if name not in second.executed:
            second.execute(ROOT / "notebooks" / name)
    second_execution = second.execute(notebook)
    assert second_execution.before == first_execution.before, "runs differ in what ran before"
    for run, executed in (("first", first_execution), ("second", second_execution)):
        assert execution_problems(executed) == [], f"{run} run"
        rows = smoke_runs[run].rows(notebook)
        assert rows, f"{run} run recorded no metrics for {notebook.name}"
        assert value_problems(rows) == [], f"{run} run"
    name = f"{notebook.stem}.json"
    for run in ("first", "second"):
        (tmp_path / run).mkdir()
        (tmp_path / run / name).write_bytes((smoke_runs[run].records_dir / name).read_bytes())
    assert compare_records(tmp_path / "first", tmp_path / "second") == []


@pytest.mark.slow
@pytest.mark.timeout((TIMEOUT_SECONDS + 60) * len(NOTEBOOKS))
@pytest.mark.parametrize("notebook", WITH_FLOORS, ids=[p.stem for p in WITH_FLOORS])
def test_smoke_metrics_reach_their_reviewed_floors(notebook, smoke_runs):
    run = smoke_runs["first"]
    if notebook.name not in run.executed:  # run it as `make course` would: after the others
        for earlier in NOTEBOOKS[:NOTEBOOKS.index(notebook)]:
            run.execute(earlier)
    assert execution_problems(run.execute(notebook)) == []
    recorded = {(r["notebook"], r["experiment"], r["metric"]): r["value"]
                for r in run.rows(notebook)}
    for key, (floor, why) in SMOKE_FLOORS.items():
        if key[0] != notebook.stem:
            continue
        value = recorded.get(key)
        assert key in recorded, f"{' / '.join(key)} was not recorded"
        assert isinstance(value, (int, float)) and math.isfinite(value), f"{key}: {value!r}"
        assert value >= floor, f"{' / '.join(key)} = {value} < floor {floor} ({why})"
