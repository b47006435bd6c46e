"""Finding the course notebooks and their standard cells, for the content and Colab tests."""

from __future__ import annotations

from pathlib import Path

import nbformat

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
SETUP_MARK = "# Set-up:"


def course_notebooks() -> list[Path]:
    """Every notebook in notebooks/, picked up automatically (checkpoints excluded)."""
    return sorted(p for p in NOTEBOOKS_DIR.glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def read_notebook(path: Path):
    return nbformat.read(path, as_version=4)


def setup_cell(nb):
    """The code cell that starts with the set-up comment, or None."""
    return next((c for c in nb.cells
                 if c.cell_type == "code" and c.source.lstrip().startswith(SETUP_MARK)), None)
