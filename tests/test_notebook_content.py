"""Every course notebook follows the student-facing template of CONTRIBUTING.md.

Checked for each notebook in notebooks/ (picked up automatically): a first markdown cell
with a title, the Colab badge, what it teaches and a run-time table per profile with CPU
and GPU columns; a ``parameters``-tagged cell ``PROFILE = "teach"``; the set-up cell;
a summary then exercises at the end; alt text on every markdown image.
"""

from __future__ import annotations

import ast
import re

import nbformat
import pytest
from course_notebooks import SETUP_MARK, course_notebooks, read_notebook
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tlcnn_helpers.notebook import colab_badge_markdown, colab_badge_url, setup_cell_source
from tlcnn_helpers.settings import PROFILES

NOTEBOOKS = course_notebooks()
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
MARKDOWN_IMAGE = re.compile(r"!\[([^\]]*)\]\(")
HTML_IMAGE = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
HTML_ALT = re.compile(r"""\balt\s*=\s*("([^"]*)"|'([^']*)')""", re.IGNORECASE)


def headings(nb) -> list[tuple[int, int, str]]:
    """(cell index, level, text) of every markdown heading, outside code fences."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        fenced = False
        for line in cell.source.splitlines():
            if line.lstrip().startswith("```"):
                fenced = not fenced
            match = None if fenced else HEADING.match(line)
            if match:
                found.append((index, len(match.group(1)), match.group(2)))
    return found


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Each pipe table in ``text`` as rows of stripped cells (separator row dropped)."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.strip().startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def first_word(cell: str) -> str:
    """The profile a run-time row names: "`teach`, first run" gives "teach"."""
    match = re.match(r"[`*_\s]*(\w+)", cell)
    return match.group(1).lower() if match else ""


def introduction_problems(nb, file_name: str) -> list[str]:
    if not nb.cells or nb.cells[0].cell_type != "markdown":
        return ["the first cell is not a markdown cell"]
    text = nb.cells[0].source
    problems = []
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not re.match(r"#\s+\S", lines[0]):
        problems.append("the first cell does not start with a title ('# ...')")
    if colab_badge_url(file_name) not in text or "colab-badge.svg" not in text:
        problems.append(f"the first cell lacks the badge {colab_badge_markdown(file_name)}")
    prose = [line for line in lines[1:] if not line.lstrip().startswith(("#", "|", "[![", "!["))]
    if sum(len(line) for line in prose) < 80:
        problems.append("the first cell does not say what the notebook teaches")
    timing = [t for t in markdown_tables(text)
              if any("cpu" in c.lower() for c in t[0]) and any("gpu" in c.lower() for c in t[0])]
    if not timing:
        problems.append("the first cell has no run-time table with CPU and GPU columns")
        return problems
    table = timing[0]
    for profile in PROFILES:
        # A row belongs to the profile its first word names ("`teach`, first run" too).
        rows = [row for row in table[1:] if first_word(row[0]) == profile]
        if not rows:
            problems.append(f"the run-time table has no row for the {profile!r} profile")
        elif any(len(row) != len(table[0]) or not all(row) for row in rows):
            problems.append(f"the run-time table's {profile!r} row has empty cells")
    return problems


def parameters_problems(nb) -> list[str]:
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    if len(tagged) != 1:
        return [f"expected one cell tagged 'parameters', found {len(tagged)}"]
    cell = nb.cells[tagged[0]]
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    problems = []
    if cell.cell_type != "code" or tagged[0] != first_code:
        problems.append("the 'parameters' cell must be the first code cell")
    try:
        body = ast.parse(cell.source).body
    except SyntaxError as err:
        return problems + [f"the 'parameters' cell does not parse: {err}"]
    if ast.dump(ast.Module(body=body, type_ignores=[])) != ast.dump(ast.parse('PROFILE = "teach"')):
        problems.append('the \'parameters\' cell must hold exactly PROFILE = "teach"')
    return problems


def setup_problems(nb, stem: str) -> list[str]:
    code = [c for c in nb.cells if c.cell_type == "code"]
    if len(code) < 2 or not code[1].source.lstrip().startswith(SETUP_MARK):
        return ["the code cell after 'parameters' is not the set-up cell ('# Set-up: ...')"]
    expected = setup_cell_source(stem).splitlines()
    actual = code[1].source.strip("\n").splitlines()
    if [line.rstrip() for line in actual[:len(expected)]] != expected:
        return ["the set-up cell differs from CONTRIBUTING.md; it should start with:\n"
                + setup_cell_source(stem)]
    return []


def ending_problems(nb) -> list[str]:
    found = headings(nb)
    sections = [(i, level, text) for i, level, text in found if level == 2]
    summary = [n for n, (_, _, text) in enumerate(sections) if "summary" in text.lower()]
    exercises = [n for n, (_, _, text) in enumerate(sections) if "exercise" in text.lower()]
    if not summary or not exercises:
        return ["the notebook needs '## Summary' and '## Exercises' sections"]
    if not (summary[-1] < exercises[-1] == len(sections) - 1 and exercises[-1] - summary[-1] == 1):
        return ["the notebook must end with '## Summary' followed by '## Exercises', the last section"]
    return []


def image_problems(nb) -> list[str]:
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for alt in MARKDOWN_IMAGE.findall(cell.source):
            if not alt.strip():
                problems.append(f"cell {index}: a markdown image has no alt text (![alt](...))")
        for tag in HTML_IMAGE.findall(cell.source):
            match = HTML_ALT.search(tag)
            if not match or not (match.group(2) or match.group(3) or "").strip():
                problems.append(f"cell {index}: {tag[:60]} has no alt text")
    return problems


def all_problems(nb, file_name: str) -> list[str]:
    stem = file_name.removesuffix(".ipynb")
    return (introduction_problems(nb, file_name) + parameters_problems(nb)
            + setup_problems(nb, stem) + ending_problems(nb) + image_problems(nb))


def template_notebook(stem: str = "09_demo"):
    """A notebook that follows the template, for testing the checks themselves."""
    intro = "\n".join([
        "# Demo: what a template notebook looks like", "",
        colab_badge_markdown(f"{stem}.ipynb"), "",
        "This notebook teaches how the course notebooks are laid out, from the title to the "
        "exercises, and how long each profile takes.", "",
        "| profile | CPU (2 cores) | GPU (Colab T4) |", "|---|---|---|",
        "| smoke | 20 s | 10 s |", "| `teach` (real data) | 5 min | 1 min |",
        "| `teach`, first run | plus the download | the same |", "| paper | 2 h | 10 min |",
    ])
    parameters = new_code_cell('PROFILE = "teach"')
    parameters.metadata["tags"] = ["parameters"]
    return new_notebook(cells=[
        new_markdown_cell(intro), parameters, new_code_cell(setup_cell_source(stem)),
        new_markdown_cell("## An idea\n\n![A diagram of a 3x3 kernel](kernel.png)"),
        new_code_cell("print(P.name)"),
        new_markdown_cell("## Summary\n\n- one idea a cell"),
        new_markdown_cell("## Exercises\n\n### Exercise 1\n\nDo it."),
        new_code_cell("# your answer"),
    ])


def test_the_course_has_notebooks():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


def test_the_checks_accept_a_notebook_that_follows_the_template():
    assert all_problems(template_notebook(), "09_demo.ipynb") == []


@pytest.mark.parametrize("breakage, message", [
    (lambda nb: nb.cells[0].update(source=nb.cells[0].source.replace("# Demo", "Demo")),
     "title"),
    (lambda nb: nb.cells[0].update(source=nb.cells[0].source.replace("09_demo", "01_other")),
     "badge"),
    (lambda nb: nb.cells[0].update(source=nb.cells[0].source.replace("| paper | 2 h | 10 min |\n", "")
                                   .replace("| paper | 2 h | 10 min |", "")), "'paper' profile"),
    (lambda nb: nb.cells[0].update(source=nb.cells[0].source.replace("GPU (Colab T4)", "Colab")),
     "CPU and GPU columns"),
    (lambda nb: nb.cells[1].update(source='PROFILE = "smoke"'), 'exactly PROFILE = "teach"'),
    (lambda nb: nb.cells[1].metadata.update(tags=[]), "tagged 'parameters'"),
    (lambda nb: nb.cells[2].update(source=nb.cells[2].source.replace("%pip", "!pip")),
     "set-up cell differs"),
    (lambda nb: nb.cells[2].update(source=nb.cells[2].source.replace("09_demo", "09")),
     "set-up cell differs"),
    (lambda nb: nb.cells.pop(5), "'## Summary'"),
    (lambda nb: nb.cells.append(new_markdown_cell("## Appendix")), "the last section"),
    (lambda nb: nb.cells[3].update(source="![](kernel.png)"), "no alt text"),
    (lambda nb: nb.cells[3].update(source='<img src="k.png" alt="">'), "no alt text"),
])
def test_the_checks_reject_a_broken_notebook(breakage, message):
    nb = template_notebook()
    breakage(nb)
    problems = all_problems(nbformat.from_dict(nb), "09_demo.ipynb")
    assert any(message in problem for problem in problems), problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_starts_with_title_badge_purpose_and_run_times(path):
    assert introduction_problems(read_notebook(path), path.name) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_the_parameters_cell(path):
    assert parameters_problems(read_notebook(path)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_the_setup_cell(path):
    assert setup_problems(read_notebook(path), path.stem) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_ends_with_summary_and_exercises(path):
    assert ending_problems(read_notebook(path)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_images_have_alt_text(path):
    assert image_problems(read_notebook(path)) == []
