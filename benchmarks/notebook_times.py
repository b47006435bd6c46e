"""Wall time of course notebooks executed with papermill in one profile.

    python benchmarks/notebook_times.py notebooks/01_convolution.ipynb notebooks/02_pooling.ipynb \
        --profile teach --data-dir /work/cifar-real

Runs each notebook in a fresh kernel (records and models go to a temporary folder), prints
its total wall time, including kernel start-up, its slowest cells, and every printed line
that mentions "accuracy" (so a notebook's own measurements are reported with its time).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import papermill


def run(notebook: Path, profile: str, work: Path) -> tuple[float, list[tuple[float, str]], list[str]]:
    out = work / notebook.name
    started = time.perf_counter()
    papermill.execute_notebook(str(notebook), str(out), parameters={"PROFILE": profile},
                               cwd=str(notebook.parent), progress_bar=False)
    total = time.perf_counter() - started
    executed = nbformat.read(out, as_version=4)
    cells, accuracy_lines = [], []
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        seconds = cell.metadata.get("papermill", {}).get("duration") or 0.0
        cells.append((seconds, cell.source.splitlines()[0][:70]))
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                accuracy_lines += [line for line in output.text.splitlines() if "accuracy" in line]
    return total, sorted(cells, reverse=True), accuracy_lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--profile", default="smoke", choices=["smoke", "teach", "paper"])
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="TLCNN_DATA_DIR for the run (default: a temporary folder)")
    parser.add_argument("--slowest", type=int, default=3, help="slowest cells to list")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tlcnn-bench-") as tmp:
        work = Path(tmp)
        os.environ["TLCNN_PROFILE"] = args.profile
        os.environ["TLCNN_DATA_DIR"] = str(args.data_dir or work / "data")
        os.environ["TLCNN_RECORDS_DIR"] = str(work / "records")
        os.environ["TLCNN_MODELS_DIR"] = str(work / "models")
        print(f"profile {args.profile}, data {os.environ['TLCNN_DATA_DIR']}, "
              f"{os.cpu_count()} CPUs")
        for notebook in args.notebooks:
            total, cells, accuracy = run(notebook, args.profile, work)
            print(f"{notebook.name}: {total:.1f} s")
            for seconds, first_line in cells[:args.slowest]:
                print(f"    {seconds:6.1f} s  {first_line}")
            for line in accuracy:
                print(f"    printed: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
