"""Committed notebooks are clean: normalized JSON, no outputs except guarded text outputs."""

import sys
from pathlib import Path

import nbformat
import pytest
from course_notebooks import course_notebooks

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from normalize_notebooks import GUARD_MARK, normalize, render  # noqa: E402

NOTEBOOKS = course_notebooks()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_normalized(path):
    text = path.read_text()
    assert render(normalize(nbformat.reads(text, as_version=4))) == text, (
        f"run `python tools/normalize_notebooks.py --guard {path.relative_to(Path.cwd())}`")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_only_guarded_cells_keep_text_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if GUARD_MARK in cell.source:
            assert cell.outputs, f"guarded cell {cell.id} has no stored output to compare with"
            assert cell.execution_count is not None, f"nbval skips unrun cell {cell.id}"
            for out in cell.outputs:
                assert "image/png" not in out.get("data", {}), f"image stored in {cell.id}"
        else:
            assert not cell.outputs and cell.execution_count is None, f"cell {cell.id} has output"
