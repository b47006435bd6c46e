"""The course report (results.md / results.html) and the records comparison."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from tlcnn_helpers.errors import CourseError, TLCNNError
from tlcnn_helpers.records import record_result
from tlcnn_helpers.report import compare_records, write_course_report

EXPERIMENTS = [
    # notebook, experiment, metric, value, paper_value, wall_seconds
    ("04_cifar10_cnn", "CIFAR paper recipe", "test_accuracy", 0.6123, 0.80, 41.2),
    ("04_cifar10_cnn", "CIFAR fast recipe", "test_accuracy", 0.7, None, 20.0),
    ("05_stl10_tuning", "STL-10 tuned model", "test_accuracy", 0.55, 0.71, None),
    ("06_transfer_across_sizes", "Transfer: resized to 32x32", "test_accuracy", 0.3, None, 3.0),
    ("06_transfer_across_sizes", "Transfer: fine-tuned", "test_accuracy", 0.45, None, 150.0),
]


def fill(folder, experiments=EXPERIMENTS, profile="smoke", data_source="synthetic"):
    for notebook, experiment, metric, value, paper, seconds in experiments:
        record_result(notebook, experiment, metric, value, profile=profile,
                      data_source=data_source, paper_value=paper, wall_seconds=seconds,
                      records_dir=folder)


def table_lines(markdown: str) -> list[list[str]]:
    """The cells of the first Markdown table's body rows."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Notebook"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


class TableCells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self._row, self._cell = [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr":
            self.rows.append(self._row)


def test_one_row_per_experiment_with_paper_and_run_figures(tmp_path):
    records, out = tmp_path / "records", tmp_path / "course"
    fill(records)
    md_path, html_path = write_course_report(records, out, profile="smoke")
    assert (md_path, html_path) == (out / "results.md", out / "results.html")

    rows = table_lines(md_path.read_text())
    assert [r[1] for r in rows] == [e[1] for e in EXPERIMENTS]
    by_name = {r[1]: r for r in rows}
    assert by_name["CIFAR paper recipe"] == [
        "04_cifar10_cnn", "CIFAR paper recipe", "test_accuracy", "0.8", "0.6123", "-0.1877",
        "synthetic", "smoke", "41.2 s"]
    assert by_name["CIFAR fast recipe"][3] == "—"  # the paper has no fast recipe
    assert by_name["STL-10 tuned model"][3:6] == ["0.71", "0.55", "-0.16"]
    assert by_name["Transfer: fine-tuned"][8] == "2 min 30 s"
    assert all(len(r) == 9 for r in rows)


def test_html_holds_the_same_table(tmp_path):
    records = tmp_path / "records"
    fill(records)
    md_path, html_path = write_course_report(records, tmp_path / "out", profile="smoke")
    parser = TableCells()
    parser.feed(html_path.read_text())
    header, *body = parser.rows
    assert header[:3] == ["Notebook", "Experiment", "Metric"]
    assert body[:len(EXPERIMENTS)] == table_lines(md_path.read_text())


def test_figures_come_from_the_records(tmp_path):
    records = tmp_path / "records"
    fill(records)
    record_result("04_cifar10_cnn", "CIFAR paper recipe", "test_accuracy", 0.9, profile="smoke",
                  data_source="synthetic", paper_value=0.8, records_dir=records)
    md_path, _ = write_course_report(records, tmp_path / "out", profile="smoke")
    row = next(r for r in table_lines(md_path.read_text()) if r[1] == "CIFAR paper recipe")
    assert row[4:6] == ["0.9", "+0.1"]


def test_real_data_is_named_and_the_synthetic_caveat_disappears(tmp_path):
    synthetic, real = tmp_path / "synthetic", tmp_path / "real"
    fill(synthetic)
    fill(real, profile="teach", data_source="official")
    md_synthetic = write_course_report(synthetic, tmp_path / "a", profile="smoke")[0].read_text()
    md_real = write_course_report(real, tmp_path / "b", profile="teach")[0].read_text()
    assert "not comparable with the paper" in md_synthetic
    assert "not comparable with the paper" not in md_real
    assert {r[6] for r in table_lines(md_real)} == {"real (official files)"}
    assert "profile `teach`" in md_real


def test_notebook_timings_fill_missing_wall_times_and_get_their_own_table(tmp_path):
    records = tmp_path / "records"
    fill(records)
    timings = {"04_cifar10_cnn.ipynb": 80.0, "05_stl10_tuning.ipynb": 95.5}
    md = write_course_report(records, tmp_path / "out", profile="smoke",
                             notebook_timings=timings)[0].read_text()
    stl = next(r for r in table_lines(md) if r[1] == "STL-10 tuned model")
    assert stl[8] == "95.5 s (whole notebook)"
    assert "## Notebook run times" in md
    assert "| 04_cifar10_cnn | 80.0 s |" in md


def test_missing_experiments_and_stale_profiles_are_pointed_out(tmp_path):
    records = tmp_path / "records"
    fill(records, EXPERIMENTS[:1])
    record_result("05_stl10_tuning", "STL-10 tuned model", "test_accuracy", 0.5, profile="teach",
                  data_source="official", records_dir=records)
    md = write_course_report(records, tmp_path / "out", profile="smoke")[0].read_text()
    notes = md.split("## Notes", 1)[1]
    assert "CIFAR fast recipe" in notes and "Transfer: (any variant)" in notes
    assert "STL-10 tuned model," not in notes.split("Not recorded", 1)[1]
    assert "05_stl10_tuning (teach)" in notes


def test_empty_records_folder_gives_a_report_saying_so(tmp_path):
    (tmp_path / "records").mkdir()
    md_path, html_path = write_course_report(tmp_path / "records", tmp_path / "out", profile="smoke")
    assert "No metrics were recorded." in md_path.read_text()
    assert "No metrics were recorded." in html_path.read_text()


def test_html_escapes_recorded_text(tmp_path):
    records = tmp_path / "records"
    fill(records, [("05_x", "Transfer: <b>size</b> & more", "acc", 0.5, None, 1.0)])
    page = write_course_report(records, tmp_path / "out", profile="smoke")[1].read_text()
    assert "<b>size</b>" not in page
    assert "Transfer: &lt;b&gt;size&lt;/b&gt; &amp; more" in page


def test_missing_records_folder_is_a_clear_error(tmp_path):
    with pytest.raises(CourseError, match="records folder .*nowhere.* does not exist"):
        write_course_report(tmp_path / "nowhere", tmp_path / "out", profile="smoke")
    assert not (tmp_path / "out").exists()


def test_a_broken_records_file_names_itself_and_keeps_the_old_report(tmp_path):
    records, out = tmp_path / "records", tmp_path / "out"
    fill(records)
    md_path, _ = write_course_report(records, out, profile="smoke")
    good = md_path.read_text()

    (records / "05_stl10_tuning.json").write_text(json.dumps([{"notebook": "05_stl10_tuning"}]))
    with pytest.raises(CourseError, match=r"05_stl10_tuning\.json has a row without experiment"):
        write_course_report(records, out, profile="smoke")
    (records / "05_stl10_tuning.json").write_text("{not json")
    with pytest.raises(TLCNNError, match=r"05_stl10_tuning\.json is not valid JSON"):
        write_course_report(records, out, profile="smoke")
    assert md_path.read_text() == good
    assert sorted(p.name for p in out.iterdir()) == ["results.html", "results.md"]


def test_compare_records_ignores_wall_time_only(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    fill(first)
    fill(second, [e[:5] + ((e[5] or 0) + 7.0,) for e in EXPERIMENTS])
    assert compare_records(first, second) == []

    record_result("04_cifar10_cnn", "CIFAR fast recipe", "test_accuracy", 0.7001, profile="smoke",
                  data_source="synthetic", wall_seconds=20.0, records_dir=second)
    differences = compare_records(first, second)
    assert len(differences) == 1
    assert "CIFAR fast recipe / test_accuracy: value is 0.7" in differences[0]
    assert "0.7001" in differences[0]
    # Wall time counts when it is not ignored.
    assert len(compare_records(first, second, ignore=())) == len(EXPERIMENTS)


def test_compare_records_reports_rows_only_one_run_has(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    fill(first)
    fill(second, EXPERIMENTS[:-1])
    (differences,) = compare_records(first, second)
    assert "Transfer: fine-tuned" in differences
    assert f"recorded in {first} but not in {second}" in differences


def test_the_docstring_examples_hold():
    import doctest

    from tlcnn_helpers import report

    assert doctest.testmod(report).failed == 0


def test_the_recorded_paper_run_ships_with_the_package_and_has_30_epochs_of_curves():
    from pathlib import Path

    import tomllib

    from tlcnn_helpers.errors import RecordsError
    from tlcnn_helpers.records import RECORDED_RUNS, recorded_run

    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["tlcnn_helpers"]
    package = RECORDED_RUNS.parent
    shipped = {p for pattern in patterns for p in package.glob(pattern)}
    assert set(RECORDED_RUNS.glob("*.json")) <= shipped, "a recorded run would not be installed"
    run = recorded_run("paper_recipe_30_epochs")
    curves = run["curves"]
    assert curves["epoch"] == list(range(1, 31))
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(curves)
    assert run["summary"]["train_images"] == 40500 and run["summary"]["parameters"] == 919753
    with pytest.raises(RecordsError, match="paper_recipe_30_epochs"):
        recorded_run("no_such_run")


def test_the_recorded_ablation_gives_two_seeds_per_variant_and_the_tta_figures():
    from tlcnn_helpers.errors import RecordsError
    from tlcnn_helpers.records import recorded_ablation

    ablation = recorded_ablation("fast_recipe_ablation_180s")
    assert {"full", "no_augmentation", "no_label_smoothing", "constant_lr", "no_residual",
            "float32", "flip_tta"} == set(ablation)
    assert all(len(seeds) == 2 and all(0 < a < 1 for a in seeds) for seeds in ablation.values())
    assert min(ablation["flip_tta"]) > max(ablation["full"])  # what notebook 04 reads from it
    with pytest.raises(RecordsError, match="fast_recipe_ablation_180s"):
        recorded_ablation("no_such_ablation")
