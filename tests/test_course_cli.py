"""The course runner: executes notebooks, prints the table, writes the report, reports failures."""

import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tlcnn_helpers.cli import main
from tlcnn_helpers.commands.course import NotebookRun, find_notebooks, format_table, run_course
from tlcnn_helpers.errors import CourseError

RECORDING_CELL = """from tlcnn_helpers.notebook import start_notebook
session = start_notebook(PROFILE, "{name}", quiet=True)
session.record("CIFAR fast recipe", "test_accuracy", 0.5 if P_OK else 0.0)"""


def write_notebook(folder: Path, name: str, body: str) -> Path:
    params = new_code_cell('PROFILE = "teach"')
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[params, new_code_cell(body)],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                               "language": "python"}})
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_course_runs_notebooks_prints_table_and_writes_report(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative --out, as `make course` gives, must still collect
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks, "01_good", "P_OK = PROFILE == 'smoke'\n"
                   + RECORDING_CELL.format(name="01_good"))
    write_notebook(notebooks, "02_bad", "raise RuntimeError('boom')")
    runs = run_course("smoke", Path("build"), notebooks_dir=notebooks, timeout=60)
    out = tmp_path / "build"
    printed = capsys.readouterr().out
    assert [r.notebook for r in runs] == ["01_good.ipynb", "02_bad.ipynb"]
    assert runs[0].ok and not runs[1].ok and "RuntimeError" in runs[1].status
    assert "notebook" in printed and "seconds" in printed and "1 ok, 1 failed" in printed
    assert (out / "01_good.ipynb").exists() and (out / "02_bad.ipynb").exists()
    report = (out / "results.md").read_text()
    assert "| 01_good | CIFAR fast recipe | test_accuracy |" in report and "0.5" in report
    assert (out / "results.html").exists()


def test_find_notebooks_by_prefix_and_clear_error(tmp_path):
    for name in ("00_a", "01_b", "02_c"):
        write_notebook(tmp_path, name, "pass")
    assert [p.name for p in find_notebooks(tmp_path, ["01", "00_a.ipynb"])] == [
        "01_b.ipynb", "00_a.ipynb"]
    with pytest.raises(CourseError, match="'07' matches none of 00_a.ipynb, 01_b.ipynb"):
        find_notebooks(tmp_path, ["07"])
    with pytest.raises(CourseError, match="no notebooks"):
        find_notebooks(tmp_path / "empty")


def test_unknown_profile_fails_before_anything_runs(tmp_path, capsys):
    assert main(["course", "--profile", "fastest", "--out", str(tmp_path)]) == 2
    assert "unknown profile 'fastest'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_without_papermill_the_course_says_how_to_install_it_and_keeps_last_records(
        tmp_path, capsys, monkeypatch):
    # Colab installs the package without the course extra: no papermill there.
    monkeypatch.setitem(sys.modules, "papermill", None)
    last_run = tmp_path / "records" / "04_cifar10_cnn.json"
    last_run.parent.mkdir()
    last_run.write_text("{}")
    assert main(["course", "--profile", "smoke", "--out", str(tmp_path)]) == 2
    assert "pip install -e '.[course]'" in capsys.readouterr().err
    assert last_run.read_text() == "{}"


def test_table_totals():
    table = format_table([NotebookRun("a.ipynb", 1.0, "ok"), NotebookRun("b.ipynb", 2.5,
                                                                          "failed: X")])
    assert table.splitlines()[-1].split() == ["total", "3.5", "1", "ok,", "1", "failed"]
