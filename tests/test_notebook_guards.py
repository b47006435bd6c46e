"""Guarded notebook outputs: what nbval's sanitizer erases, and what re-blessing prints."""

import re
import sys
from pathlib import Path

import nbformat
from nbval.plugin import get_sanitize_patterns

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import normalize_notebooks  # noqa: E402

SANITIZE_CFG = Path(__file__).resolve().parent / "nbval_sanitize.cfg"


def sanitized(text: str) -> str:
    """``text`` as nbval compares it: the cfg's regexes applied in order, as nbval does."""
    for regex, replace in get_sanitize_patterns(SANITIZE_CFG.read_text()):
        text = re.sub(regex, replace, text)
    return text


def test_sanitizer_keeps_image_sizes_written_with_an_x():
    for text in ("images 30x30", "a 10x10 kernel", "crop to 150x150 pixels", "(96x96)"):
        assert sanitized(text) == text


def test_sanitizer_erases_object_addresses_and_durations():
    assert sanitized("<Model object at 0x7f3a9c2b10d0>") == "<Model object at ADDRESS>"
    assert sanitized("trained in 3.2 s") == "trained in DURATION"


def guarded_notebook(stored: str, cell_id: str = "shapes"):
    cell = nbformat.v4.new_code_cell(f"{normalize_notebooks.GUARD_MARK}\nprint(x.shape)")
    cell.id = cell_id
    cell.execution_count = 1
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
    return nbformat.v4.new_notebook(cells=[cell])


def test_guard_prints_a_diff_of_each_guarded_output_it_reblesses(tmp_path, monkeypatch, capsys):
    path = tmp_path / "99_demo.ipynb"
    path.write_text(normalize_notebooks.render(guarded_notebook("images (30, 30)\nclasses 9\n")))
    monkeypatch.setattr(normalize_notebooks, "execute",
                        lambda p: guarded_notebook("images (32, 32)\nclasses 9\n"))
    assert normalize_notebooks.main(["--guard", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "--- 99_demo.ipynb cell 0 (shapes): stored" in printed
    assert "+++ 99_demo.ipynb cell 0 (shapes): new run" in printed
    assert "-images (30, 30)\n+images (32, 32)\n classes 9" in printed
    assert "images (32, 32)" in path.read_text()  # re-blessed


def test_guard_prints_no_diff_when_the_guarded_output_is_unchanged(tmp_path, monkeypatch,
                                                                    capsys):
    path = tmp_path / "99_demo.ipynb"
    path.write_text(normalize_notebooks.render(guarded_notebook("images (30, 30)\n")))
    monkeypatch.setattr(normalize_notebooks, "execute",
                        lambda p: guarded_notebook("images (30, 30)\n"))
    assert normalize_notebooks.main(["--guard", str(path)]) == 0
    assert "---" not in capsys.readouterr().out
