"""The course report: every recorded metric next to the paper's figure, as Markdown and HTML.

Built from the JSON records that the notebooks write (:mod:`tlcnn_helpers.records`) and
nothing else, so no figure in the report is ever typed in by hand.

>>> import tempfile
>>> from tlcnn_helpers.records import record_result
>>> records, out = tempfile.mkdtemp(), tempfile.mkdtemp()
>>> _ = record_result("04_cifar10_cnn", "CIFAR paper recipe", "test_accuracy", 0.61,
...                   profile="smoke", data_source="synthetic", paper_value=0.80,
...                   wall_seconds=12.3, records_dir=records)
>>> md_path, html_path = write_course_report(records, out, profile="smoke")
>>> print([line for line in md_path.read_text().splitlines() if "CIFAR paper" in line][0])
| 04_cifar10_cnn | CIFAR paper recipe | test_accuracy | 0.8 | 0.61 | -0.19 | synthetic | smoke | 12.3 s |

Used by ``make course`` (``build/course/results.md`` and ``results.html``).
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Mapping
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from .errors import CourseError
from .files import write_text_atomic
from .records import RECORD_FIELDS, load_records

REPORT_MD = "results.md"
REPORT_HTML = "results.html"

# What a complete course run records; a missing one means its notebook failed or was skipped.
EXPECTED_EXPERIMENTS = ("CIFAR paper recipe", "CIFAR fast recipe", "STL-10 tuned model")
TRANSFER_PREFIX = "Transfer: "

# Fields that legitimately differ between two runs of the same profile.
VOLATILE_FIELDS = ("wall_seconds",)

DATA_SOURCE_NAMES = {
    "synthetic": "synthetic",
    "official": "real (official files)",
}

COLUMNS = ("Notebook", "Experiment", "Metric", "Paper", "This run", "Difference",
           "Data", "Profile", "Wall time")


@dataclass(frozen=True)
class ReportRow:
    """One line of the results table, already formatted for display."""

    notebook: str
    experiment: str
    metric: str
    paper: str
    this_run: str
    difference: str
    data: str
    profile: str
    wall_time: str

    def cells(self) -> tuple[str, ...]:
        return astuple(self)


def format_number(value: float | None) -> str:
    """A metric as the report shows it: whole numbers with separators, else up to 4 decimals.

    >>> format_number(0.81234), format_number(1234567.0), format_number(None)
    ('0.8123', '1,234,567', '—')
    """
    if value is None:
        return "—"
    value = float(value)
    if value.is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_seconds(seconds: float | None) -> str:
    """Wall time in seconds below two minutes, else in minutes and seconds.

    >>> format_seconds(12.34), format_seconds(754.0), format_seconds(None)
    ('12.3 s', '12 min 34 s', '—')
    """
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def _notebook_key(name: str) -> str:
    return Path(name).name.removesuffix(".ipynb")


def _check_rows(rows: Iterable[Mapping[str, Any]], records_dir: Path) -> list[dict[str, Any]]:
    checked = []
    for row in rows:
        if not isinstance(row, Mapping):
            raise CourseError(f"a records file in {records_dir} holds {row!r}, not a row: "
                              "delete that file and re-run its notebook")
        missing = [name for name in RECORD_FIELDS if name not in row]
        if missing:
            where = records_dir / f"{row.get('notebook', '?')}.json"
            raise CourseError(f"the records file {where} has a row without {', '.join(missing)}: "
                              "delete it and re-run its notebook")
        checked.append(dict(row))
    return checked


def _read_records(records_dir: str | os.PathLike) -> tuple[Path, list[dict[str, Any]]]:
    folder = Path(records_dir)
    if not folder.is_dir():
        raise CourseError(f"the records folder {folder} does not exist: run the notebooks first "
                          "(make course) or pass the folder they recorded into")
    return folder, _check_rows(load_records(folder), folder)


def build_report_rows(rows: Iterable[Mapping[str, Any]],
                      notebook_timings: Mapping[str, float] | None = None) -> list[ReportRow]:
    """Format records for the table; a row without its own wall time shows its notebook's.

    >>> row = {"notebook": "05_transfer", "experiment": "Transfer: resized", "metric": "acc",
    ...        "value": 0.5, "paper_value": None, "profile": "smoke",
    ...        "data_source": "synthetic", "wall_seconds": None}
    >>> build_report_rows([row], {"05_transfer.ipynb": 30.0})[0].wall_time
    '30.0 s (whole notebook)'
    """
    timings = {_notebook_key(k): v for k, v in (notebook_timings or {}).items()}
    table = []
    for row in rows:
        value, paper = row["value"], row["paper_value"]
        difference = "—"
        if value is not None and paper is not None:
            difference = format_number(round(float(value) - float(paper), 4))
            if not difference.startswith("-") and difference != "0":
                difference = "+" + difference
        if row["wall_seconds"] is not None:
            wall = format_seconds(row["wall_seconds"])
        elif row["notebook"] in timings:
            wall = f"{format_seconds(timings[row['notebook']])} (whole notebook)"
        else:
            wall = "—"
        table.append(ReportRow(
            notebook=str(row["notebook"]), experiment=str(row["experiment"]),
            metric=str(row["metric"]), paper=format_number(paper),
            this_run=format_number(value), difference=difference,
            data=DATA_SOURCE_NAMES.get(row["data_source"], str(row["data_source"])),
            profile=str(row["profile"]), wall_time=wall,
        ))
    return table


def missing_experiments(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The experiments a full course run records that these rows lack.

    >>> missing_experiments([{"experiment": "CIFAR paper recipe"}])
    ['CIFAR fast recipe', 'STL-10 tuned model', 'Transfer: (any variant)']
    """
    recorded = {row["experiment"] for row in rows}
    missing = [name for name in EXPECTED_EXPERIMENTS if name not in recorded]
    if not any(name.startswith(TRANSFER_PREFIX) for name in recorded):
        missing.append(TRANSFER_PREFIX + "(any variant)")
    return missing


def _notes(rows: list[dict[str, Any]], profile: str) -> list[str]:
    notes = []
    if any(row["data_source"] == "synthetic" for row in rows):
        notes.append("Figures measured on synthetic data test the machinery only; they are not "
                     "comparable with the paper's figures, which were measured on the real datasets.")
    other = sorted({f"{row['notebook']} ({row['profile']})" for row in rows
                    if row["profile"] != profile})
    if other:
        notes.append(f"Recorded under another profile than this run's ({profile}), probably "
                     f"left over from an earlier run: {', '.join(other)}.")
    missing = missing_experiments(rows)
    if missing:
        notes.append("Not recorded in this run (its notebook failed or was not run): "
                     + ", ".join(missing) + ".")
    return notes


def _markdown_table(header: Iterable[str], lines: Iterable[Iterable[str]]) -> list[str]:
    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    header = list(header)
    return [line(header), "|" + "|".join("---" for _ in header) + "|", *map(line, lines)]


def _html_table(header: Iterable[str], lines: Iterable[Iterable[str]]) -> list[str]:
    out = ["<table>", "<thead><tr>"
           + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead>", "<tbody>"]
    for cells in lines:
        out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    out += ["</tbody>", "</table>"]
    return out


def _timing_lines(notebook_timings: Mapping[str, float] | None) -> list[tuple[str, str]]:
    return [(_notebook_key(name), format_seconds(seconds))
            for name, seconds in sorted((notebook_timings or {}).items())]


def render_markdown(rows: list[dict[str, Any]], *, profile: str,
                    notebook_timings: Mapping[str, float] | None = None) -> str:
    """The report as Markdown text (see :func:`write_course_report`).

    >>> render_markdown([], profile="smoke").splitlines()[0]
    '# TLCNN course results: profile `smoke`'
    """
    out = [f"# TLCNN course results: profile `{profile}`", "",
           "Every figure below was recorded by a notebook while it ran "
           "(`session.record(...)`); none is typed in.", ""]
    table = build_report_rows(rows, notebook_timings)
    if table:
        out += _markdown_table(COLUMNS, (r.cells() for r in table))
    else:
        out.append("No metrics were recorded.")
    notes = _notes(rows, profile)
    if notes:
        out += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    timings = _timing_lines(notebook_timings)
    if timings:
        out += ["", "## Notebook run times", ""] + _markdown_table(("Notebook", "Wall time"), timings)
    return "\n".join(out) + "\n"


def render_html(rows: list[dict[str, Any]], *, profile: str,
                notebook_timings: Mapping[str, float] | None = None) -> str:
    """The report as a self-contained HTML page (see :func:`write_course_report`).

    >>> "<h1>TLCNN course results: profile teach</h1>" in render_html([], profile="teach")
    True
    """
    title = f"TLCNN course results: profile {profile}"
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{html.escape(title)}</title>",
           "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
           "th,td{border:1px solid #999;padding:.3em .6em;text-align:left}"
           "th{background:#eee}</style>", "</head>", "<body>",
           f"<h1>{html.escape(title)}</h1>",
           "<p>Every figure below was recorded by a notebook while it ran; none is typed in.</p>"]
    table = build_report_rows(rows, notebook_timings)
    if table:
        out += _html_table(COLUMNS, (r.cells() for r in table))
    else:
        out.append("<p>No metrics were recorded.</p>")
    notes = _notes(rows, profile)
    if notes:
        out += ["<h2>Notes</h2>", "<ul>"] + [f"<li>{html.escape(n)}</li>" for n in notes] + ["</ul>"]
    timings = _timing_lines(notebook_timings)
    if timings:
        out += ["<h2>Notebook run times</h2>"] + _html_table(("Notebook", "Wall time"), timings)
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def write_course_report(records_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                        profile: str,
                        notebook_timings: Mapping[str, float] | None = None) -> tuple[Path, Path]:
    """Write ``results.md`` and ``results.html`` into ``out_dir`` from the records only.

    One row per recorded experiment and metric, in notebook order: the paper's figure
    where it has one, this run's, the difference, the data source, the profile and the
    wall time (the experiment's own, else its notebook's from ``notebook_timings``,
    which maps notebook names, with or without ``.ipynb``, to seconds).
    Returns ``(markdown_path, html_path)``.

    >>> import tempfile
    >>> md, page = write_course_report(tempfile.mkdtemp(), tempfile.mkdtemp(), profile="smoke")
    >>> md.name, page.name
    ('results.md', 'results.html')
    """
    _, rows = _read_records(records_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md_path, html_path = out / REPORT_MD, out / REPORT_HTML
    write_text_atomic(md_path, render_markdown(rows, profile=profile, notebook_timings=notebook_timings))
    write_text_atomic(html_path, render_html(rows, profile=profile, notebook_timings=notebook_timings))
    return md_path, html_path


def compare_records(first_dir: str | os.PathLike, second_dir: str | os.PathLike, *,
                    ignore: Iterable[str] = VOLATILE_FIELDS) -> list[str]:
    """Differences between two records folders, ignoring wall times; empty when they agree.

    Rows are matched by notebook, experiment and metric; each difference is one sentence.

    >>> import tempfile
    >>> from tlcnn_helpers.records import record_result
    >>> a, b = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> for folder, seconds in ((a, 1.0), (b, 2.0)):
    ...     _ = record_result("04", "CIFAR fast recipe", "test_accuracy", 0.7, profile="smoke",
    ...                       data_source="synthetic", wall_seconds=seconds, records_dir=folder)
    >>> compare_records(a, b)
    []
    """
    ignored = set(ignore)
    first_folder, first_rows = _read_records(first_dir)
    second_folder, second_rows = _read_records(second_dir)

    def keyed(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
        return {(r["notebook"], r["experiment"], r["metric"]): r for r in rows}

    first, second = keyed(first_rows), keyed(second_rows)
    differences = []
    for key in sorted(first.keys() | second.keys()):
        label = " / ".join(key)
        if key not in second:
            differences.append(f"{label}: recorded in {first_folder} but not in {second_folder}")
        elif key not in first:
            differences.append(f"{label}: recorded in {second_folder} but not in {first_folder}")
        else:
            for name in sorted((first[key].keys() | second[key].keys()) - ignored):
                a, b = first[key].get(name), second[key].get(name)
                if a != b:
                    differences.append(f"{label}: {name} is {a!r} in {first_folder} "
                                       f"but {b!r} in {second_folder}")
    return differences
