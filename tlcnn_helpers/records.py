"""Metrics that notebooks and commands record, read back by the course report.

Each notebook writes one JSON sidecar, ``<records_dir>/<notebook>.json``, holding a
list of rows. Recording the same experiment and metric again replaces the old row, so
re-running a cell never duplicates a result. Files are replaced atomically, so an
interrupted write never leaves a half-written record.

>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> _ = record_result("04_cifar10_cnn", "CIFAR paper recipe", "test_accuracy", 0.5,
...                   profile="smoke", data_source="synthetic", paper_value=0.80,
...                   records_dir=folder)
>>> [row["value"] for row in load_records(folder)]
[0.5]

Used by every notebook's ``session.record(...)`` and by the course report.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from .errors import RecordsError
from .files import read_json, write_json
from .settings import records_dir as default_records_dir

RECORD_FIELDS = ("notebook", "experiment", "metric", "value", "paper_value", "profile",
                 "data_source", "wall_seconds")


def _round(value: float | None, digits: int = 4) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):  # strict JSON has no NaN or Infinity
        return None
    return round(value, digits)


def record_result(
    notebook: str,
    experiment: str,
    metric: str,
    value: float,
    *,
    profile: str,
    data_source: str,
    paper_value: float | None = None,
    wall_seconds: float | None = None,
    records_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Record one metric of one experiment; returns the row written.

    ``value`` is rounded to 4 decimals so that recorded metrics compare exactly across
    runs; ``wall_seconds`` is kept to 0.1 s and is the only field expected to vary.
    """
    folder = Path(records_dir) if records_dir is not None else default_records_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{notebook}.json"
    rows = _read(path)
    row = {
        "notebook": notebook,
        "experiment": experiment,
        "metric": metric,
        "value": _round(value),
        "paper_value": _round(paper_value),
        "profile": profile,
        "data_source": data_source,
        "wall_seconds": _round(wall_seconds, 1),
    }
    rows = [r for r in rows if (r["experiment"], r["metric"]) != (experiment, metric)]
    rows.append(row)
    write_json(rows, path, indent=1, sort_keys=True)
    return row


def load_records(records_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """All rows recorded in ``records_dir``, ordered by notebook file name then recording order."""
    folder = Path(records_dir) if records_dir is not None else default_records_dir()
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.json")):
        if not path.name.startswith("."):  # macOS ._ files, editors' temporary files
            rows.extend(_read(path))
    return rows


# The type each field must have (None allowed where a value may be missing).
_FIELD_TYPES = {"notebook": (str,), "experiment": (str,), "metric": (str,),
                "value": (int, float, type(None)), "paper_value": (int, float, type(None)),
                "profile": (str,), "data_source": (str,), "wall_seconds": (int, float, type(None))}


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    fix = "delete it and re-run its notebook"
    rows = read_json(path, fix=fix, error=RecordsError)
    if not isinstance(rows, list):
        raise RecordsError(f"the records file {path} should hold a list of rows; {fix}")
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise RecordsError(f"the records file {path} has a row that is not a set of fields "
                               f"(row {number}); {fix}")
        missing = [name for name in RECORD_FIELDS if name not in row]
        if missing:
            raise RecordsError(f"the records file {path} has a row without {', '.join(missing)} "
                               f"(row {number}); {fix}, or add the fields")
        wrong = [f"{name} ({row[name]!r})" for name, types in _FIELD_TYPES.items()
                 if not isinstance(row[name], types) or isinstance(row[name], bool)]
        if wrong:
            raise RecordsError(f"the records file {path} has a row with a wrong type of "
                               f"{', '.join(wrong)} (row {number}); {fix}, or correct the row")
    return rows


RECORDED_RUNS = Path(__file__).parent / "recorded"


def recorded_run(name: str) -> dict[str, Any]:
    """A benchmark run the course ships, for figures too long to train in a notebook.

    ``name`` is a file in ``tlcnn_helpers/recorded/`` (written by a script in
    ``benchmarks/``, which says how). Returns its ``summary`` (settings, data, machine load)
    and ``curves``: each per-epoch metric as a list, ready for ``viz.plot_learning_curves``.

    >>> run = recorded_run("paper_recipe_30_epochs")
    >>> run["summary"]["recipe"], len(run["curves"]["val_accuracy"])
    ('paper', 30)
    """
    run = _read_recorded(name)
    history = run["history"]
    metrics = [key for key in history[0] if key != "epoch"] if history else []
    return {"summary": run["summary"],
            "curves": {key: [row.get(key) for row in history] for key in ["epoch", *metrics]}}


def recorded_ablation(name: str = "fast_recipe_ablation_180s") -> dict[str, list[float]]:
    """The dev-test accuracies of a shipped ablation (``benchmarks/cifar_ablation.py --json``).

    One list per variant (``"full"``, ``"no_augmentation"``, ``"constant_lr"``...), one
    accuracy per seed; ``"flip_tta"`` is the full recipe's models evaluated with flip TTA.

    >>> ablation = recorded_ablation()
    >>> len(ablation["full"]), "constant_lr" in ablation
    (2, True)
    """
    runs = _read_recorded(name)
    accuracies = {variant: [run["dev_test_accuracy"] for run in seeds]
                  for variant, seeds in runs.items()}
    if "full" in runs:
        accuracies["flip_tta"] = [run["dev_test_accuracy_flip_tta"] for run in runs["full"]]
    return accuracies


def _read_recorded(name: str) -> Any:
    path = RECORDED_RUNS / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in RECORDED_RUNS.glob("*.json"))
        raise RecordsError(f"no recorded run {name!r} in {RECORDED_RUNS}: use one of {known}")
    return read_json(path, fix="reinstall tlcnn-helpers: this file ships with it")
