"""Every notebook in notebooks/ runs under papermill in the smoke profile.

New notebooks are picked up without editing this file. nbval runs the same notebooks (see
pyproject.toml: ``--nbval-lax``, guarded cells only) before these tests in a ``make test``
session; the records both runs write must agree, which shows that a smoke run of the
course is reproducible.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from tlcnn_helpers.commands.course import find_notebooks, run_notebook
from tlcnn_helpers.records import load_records
from tlcnn_helpers.report import compare_records

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = find_notebooks(ROOT / "notebooks")
# Seconds each notebook may take in the smoke profile (CI machine: 2 cores, no GPU).
TIMEOUT_SECONDS = 240


def papermill_records_dir() -> Path:
    return Path(os.environ["TLCNN_DATA_DIR"]).parent / "records-papermill"


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT_SECONDS + 60)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_profile(notebook, tmp_path):
    run = run_notebook(notebook, tmp_path, "smoke", papermill_records_dir(),
                       timeout=TIMEOUT_SECONDS)
    assert run.ok, run.status
    executed = nbformat.read(tmp_path / notebook.name, as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_smoke_metrics_are_reproducible(notebook, tmp_path):
    """The papermill run above records exactly what nbval's run of the notebook recorded."""
    nbval_dir = Path(os.environ["TLCNN_RECORDS_DIR"])
    name = f"{notebook.stem}.json"
    if not (papermill_records_dir() / name).exists():
        pytest.skip(f"{notebook.name} records no metrics (or its papermill run did not run)")
    if not (nbval_dir / name).exists():
        pytest.skip("nbval did not run this notebook in this session: run `make test`")
    first, second = tmp_path / "nbval", tmp_path / "papermill"
    first.mkdir()
    second.mkdir()
    (first / name).write_bytes((nbval_dir / name).read_bytes())
    (second / name).write_bytes((papermill_records_dir() / name).read_bytes())
    assert load_records(first), "no rows recorded"
    assert compare_records(first, second) == []
