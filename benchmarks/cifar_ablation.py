"""What each ingredient of the fast recipe is worth: remove one at a time, same time budget.

Runs ``cifar_recipes.py`` once per (variant, seed), one after the other, each in a fresh
process, with ``--time-budget`` seconds of training (the warm-up + cosine schedule fitted
into it), and prints a Markdown table: mean dev-test accuracy over the seeds, each seed's
figure, and the change against the full recipe. Test-time augmentation (mirror images) needs
no training run: it is the full recipe's accuracy with and without it. A change smaller than
the spread between seeds is noise. Run from the repository root:

    python benchmarks/cifar_ablation.py --data-dir /work/cifar-real --seeds 0 1 \\
        --time-budget 180 --json benchmarks/results/ablation.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# variant -> (what is removed, cifar_recipes.py --set overrides)
VARIANTS = {
    "full": ("nothing (the fast recipe)", []),
    "no_augmentation": ("flips and shifts", ["augment=none"]),
    "no_label_smoothing": ("label smoothing 0.1", ["label_smoothing=0"]),
    "constant_lr": ("warm-up + cosine schedule (constant 0.004 instead)", ["schedule=constant"]),
    "no_residual": ("the residual pair", ["residual_stages=[]"]),
    "float32": ("bfloat16 (float32 instead)", ["precision=float32"]),
}


def run(variant: str, seed: int, args: argparse.Namespace) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        report = Path(out.name)
    command = [sys.executable, str(HERE / "cifar_recipes.py"), "--data-dir", args.data_dir,
               "--recipe", "fast", "--epochs", str(args.epochs), "--time-budget",
               str(args.time_budget), "--seed", str(seed), "--json", str(report)]
    if VARIANTS[variant][1]:
        command += ["--set", *VARIANTS[variant][1]]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    summary = json.loads(report.read_text())["summary"]
    report.unlink()
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--time-budget", type=float, default=180.0)
    parser.add_argument("--epochs", type=int, default=8,
                        help="the schedule's length; the budget squeezes it (as in teach)")
    parser.add_argument("--only", nargs="*", default=None, choices=list(VARIANTS))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, list[dict]] = {}
    for variant in args.only or list(VARIANTS):
        for seed in args.seeds:
            summary = run(variant, seed, args)
            results.setdefault(variant, []).append(summary)
            print(f"{variant:20s} seed {seed}: dev-test {summary['dev_test_accuracy']:.3f} "
                  f"(flip TTA {summary['dev_test_accuracy_flip_tta']:.3f}), "
                  f"{summary['train_seconds']:.0f} s, load {summary['load_average_before_after']}",
                  flush=True)
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(results, indent=2) + "\n")
    full = results.get("full")
    base = statistics.mean(r["dev_test_accuracy"] for r in full) if full else None
    print("\n| removed | dev-test accuracy (mean) | per seed | change |\n|---|---|---|---|")
    rows = [(VARIANTS[v][0], [r["dev_test_accuracy"] for r in rs]) for v, rs in results.items()]
    if full:
        rows.append(("full recipe, with flip TTA at test time",
                     [r["dev_test_accuracy_flip_tta"] for r in full]))
    for name, values in rows:
        mean = statistics.mean(values)
        change = f"{mean - base:+.3f}" if base is not None else "-"
        print(f"| {name} | {mean:.3f} | {' / '.join(f'{v:.3f}' for v in values)} | {change} |")


if __name__ == "__main__":
    main()
