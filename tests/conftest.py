"""Fixtures shared by several test files (the session defaults are in the root conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory):
    """The "first" and "second" smoke runs of the notebooks (``SmokeRun``, in test_notebooks.py).

    Session-wide and shared: tests/test_notebooks.py checks the runs, tests/test_notebook_figures.py
    reads the same executed copies, so a notebook executes at most once per run.
    """
    from test_notebooks import SmokeRun  # tests/ is on sys.path (pytest's rootdir import mode)

    base = tmp_path_factory.mktemp("smoke-runs")
    return {label: SmokeRun(base / label) for label in ("first", "second")}
