"""Keep committed notebooks clean: no outputs except guarded ones, stable JSON.

    python tools/normalize_notebooks.py                 # strip outputs, normalize JSON
    python tools/normalize_notebooks.py --guard         # also re-execute (smoke profile) and
                                                        # store outputs of guarded cells,
                                                        # printing a diff of each one changed
    python tools/normalize_notebooks.py --check         # exit 1 if a notebook is not normalized

A guarded cell contains the comment ``# NBVAL_CHECK_OUTPUT``; nbval (lax mode) compares
its stored text output with a fresh run. Only text outputs are kept, never images.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
GUARD_MARK = "# NBVAL_CHECK_OUTPUT"
NB_VERSION = 4


def is_guarded(cell) -> bool:
    return cell.cell_type == "code" and GUARD_MARK in cell.source


def text_only(outputs):
    kept = []
    for out in outputs:
        if out.output_type == "stream":
            kept.append(nbformat.v4.new_output("stream", name=out.name, text=out.text))
        elif out.output_type in ("execute_result", "display_data") and "text/plain" in out.data:
            kept.append(nbformat.v4.new_output(out.output_type,
                                               data={"text/plain": out.data["text/plain"]}))
    return kept


def normalize(nb, executed=None):
    executed_cells = {c.get("id"): c for c in executed.cells} if executed is not None else {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
            continue
        if is_guarded(cell):
            # nbval skips the comparison for a cell without an execution count ("unrun").
            source = executed_cells.get(cell.get("id"), cell)
            cell.execution_count = source.execution_count or cell.execution_count or 1
            cell.outputs = text_only(source.outputs)
            for out in cell.outputs:
                if out.output_type == "execute_result":
                    out.execution_count = cell.execution_count
        else:
            cell.execution_count = None
            cell.outputs = []
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.nbformat, nb.nbformat_minor = NB_VERSION, 5
    return nb


def output_text(cell) -> str:
    """The text a guarded cell shows: its streams and text/plain results, in order."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def guarded_output_diffs(before, after, name: str) -> list[str]:
    """A unified diff per guarded cell whose stored text output differs between two notebooks.

    Re-blessing accepts whatever the new run printed; the diff shows what that was.
    """
    old = {c.get("id"): output_text(c) for c in before.cells if is_guarded(c)}
    diffs = []
    for index, cell in enumerate(after.cells):
        if not is_guarded(cell):
            continue
        previous, current = old.get(cell.get("id"), ""), output_text(cell)
        if previous != current:
            label = f"{name} cell {index} ({cell.get('id')})"
            diffs.append("\n".join(difflib.unified_diff(
                previous.splitlines(), current.splitlines(), fromfile=f"{label}: stored",
                tofile=f"{label}: new run", lineterm="")))
    return diffs


def render(nb) -> str:
    return nbformat.writes(nb, version=NB_VERSION) + "\n"


def execute(path: Path):
    import papermill

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / path.name
        env_before = os.environ.get("TLCNN_PROFILE")
        os.environ["TLCNN_PROFILE"] = "smoke"
        try:
            papermill.execute_notebook(str(path), str(out), parameters={"PROFILE": "smoke"},
                                       cwd=str(path.parent), progress_bar=False)
        finally:
            if env_before is None:
                os.environ.pop("TLCNN_PROFILE", None)
            else:
                os.environ["TLCNN_PROFILE"] = env_before
        return nbformat.read(out, as_version=NB_VERSION)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--guard", action="store_true", help="re-execute and store guarded outputs")
    parser.add_argument("--check", action="store_true", help="only report notebooks that differ")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    dirty = []
    for path in paths:
        original = path.read_text()
        nb = nbformat.reads(original, as_version=NB_VERSION)
        executed = execute(path) if args.guard else None
        before = nbformat.reads(original, as_version=NB_VERSION)
        normalized = normalize(nb, executed)
        if args.guard:
            for diff in guarded_output_diffs(before, normalized, path.name):
                print(diff)
        text = render(normalized)
        if text != original:
            dirty.append(path)
            if not args.check:
                path.write_text(text)
    for path in dirty:
        print(("not normalized: " if args.check else "normalized: ") + str(path))
    return 1 if (args.check and dirty) else 0


if __name__ == "__main__":
    sys.exit(main())
