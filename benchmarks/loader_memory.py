"""Peak memory of the dataset loaders on full-size data.

    python benchmarks/loader_memory.py --cifar-dir DIR [--stl-dir DIR | --make-stl DIR]

Each measurement runs in a fresh Python process: the figure is the process's peak resident
set size (``ru_maxrss``) minus its size just before the call, next to the size of the
arrays returned. ``--make-stl DIR`` first writes a synthetic STL-10 of the official size
(5,000 training and 8,000 test images at 96x96) in the official binary format, for machines
without the real dataset.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys
from tlcnn_helpers import data
loader, folder, kwargs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
(x, y), (xt, yt) = getattr(data, loader)(folder, download=False, **kwargs)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"result_mb": (x.nbytes + y.nbytes + xt.nbytes + yt.nbytes) / 2**20,
                  "peak_above_start_mb": (peak - before) / 1024,
                  "train": list(x.shape), "test": list(xt.shape)}))
"""


def measure(loader: str, folder: str, **kwargs) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, loader, folder, json.dumps(kwargs)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cifar-dir", required=True)
    parser.add_argument("--stl-dir")
    parser.add_argument("--make-stl", metavar="DIR")
    args = parser.parse_args()
    rows = []
    for fmt in ("python", "binary"):
        for classes in ("shared", "all"):
            rows.append((f"load_cifar10 {fmt}, {classes}",
                         measure("load_cifar10", args.cifar_dir, file_format=fmt, classes=classes)))
    stl_dir = args.stl_dir
    if args.make_stl:
        # In a child process: Linux hands a parent's peak memory on to the children it starts.
        subprocess.run([sys.executable, "-c", "import sys; from tlcnn_helpers.synthetic import "
                        "write_stl10; write_stl10(sys.argv[1], 500, 800, seed=0)", args.make_stl],
                       check=True)
        stl_dir = args.make_stl
    if stl_dir:
        for classes in ("shared", "all"):
            rows.append((f"load_stl10 {classes}", measure("load_stl10", stl_dir, classes=classes)))
    print(f"{'call':32} {'train':>20} {'test':>20} {'result MB':>10} {'peak above start MB':>20}")
    for name, r in rows:
        print(f"{name:32} {str(r['train']):>20} {str(r['test']):>20} {r['result_mb']:>10.0f} "
              f"{r['peak_above_start_mb']:>20.0f}")


if __name__ == "__main__":
    main()
