"""Time to accuracy on real CIFAR-10 (9 shared classes): the paper's recipe and the fast one.

Trains one recipe on the 40,500 training images of ``cifar-10-batches-py`` and evaluates on
its ``test_batch`` after every epoch (the held-out 4,500 images: a dev-test set, see
``benchmarks/README.md``), printing the wall time at which each epoch ended and when
``--target`` accuracy was first reached. Settings can be overridden to measure what each
ingredient of the fast recipe is worth. Run from the repository root, e.g.:

    python benchmarks/cifar_recipes.py --data-dir /work/cifar-real --recipe fast --epochs 8
    python benchmarks/cifar_recipes.py --data-dir /work/cifar-real --recipe paper --epochs 30
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import keras
from bench_utils import cpu_seconds

from tlcnn_helpers.training import RECIPES


def parse_overrides(pairs: list[str]) -> dict:
    """``key=value`` pairs; values are JSON when they parse (numbers, lists), else strings."""
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
        if isinstance(out[key], list):
            out[key] = tuple(out[key])
    return out


class CpuClock(keras.callbacks.Callback):
    """Process CPU seconds and load average at each epoch end.

    On a machine shared with other jobs, wall time depends on the load; CPU seconds / 2 is
    what the same epochs would take on 2 idle cores if both were kept busy.
    """

    def __init__(self):
        super().__init__()
        self.rows: list[tuple[float, float]] = []
        self.start = cpu_seconds()

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append((round(cpu_seconds() - self.start, 1), round(os.getloadavg()[0], 2)))
        print(f"  cpu {self.rows[-1][0]:.0f} s, load {self.rows[-1][1]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--recipe", choices=RECIPES, default="fast")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--time-budget", type=float, default=None)
    parser.add_argument("--target", type=float, default=0.80)
    parser.add_argument("--train-images", type=int, default=None, help="stratified subset")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="recipe overrides, e.g. learning_rate=0.003 widths=[32,64,128]")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the training run (the subset is always drawn with seed 0)")
    parser.add_argument("--json", default=None, help="write the full result here")
    args = parser.parse_args()

    started = time.perf_counter()
    from tlcnn_helpers.data import load_cifar10, stratified_subset
    from tlcnn_helpers.evaluation import evaluate
    from tlcnn_helpers.training import get_recipe, train_recipe

    (x, y), (x_test, y_test) = load_cifar10(args.data_dir, download=False)
    x, y = stratified_subset(x, y, args.train_images, seed=0)
    overrides = parse_overrides(args.set)
    overrides["epochs"] = args.epochs
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    recipe = get_recipe(args.recipe, **overrides)
    load_before = os.getloadavg()
    cpu = CpuClock()
    result = train_recipe(recipe, (x, y), (x_test, y_test), num_classes=9, seed=args.seed,
                          time_budget_seconds=args.time_budget, callbacks=[cpu])
    for row, (cpu_used, load) in zip(result.history, cpu.rows, strict=False):
        row["process_cpu_seconds"], row["load_average"] = cpu_used, load
    metrics = evaluate(result.model, x_test, y_test)
    with_tta = evaluate(result.model, x_test, y_test, tta="flip")  # mirror-image averaging
    reached = next((row for row in result.history if row["val_accuracy"] >= args.target), None)
    summary = {
        "recipe": recipe.name, "settings": recipe.describe(), "seed": args.seed,
        "weight_decay": recipe.weight_decay, "train_images": len(x),
        "parameters": result.model.count_params(), "epochs": result.epochs,
        "dev_test_accuracy": metrics["test_accuracy"], "dev_test_loss": metrics["test_loss"],
        "dev_test_accuracy_flip_tta": with_tta["test_accuracy"],
        "train_seconds": result.train_seconds,
        "process_cpu_seconds": round(cpu_seconds(), 1), "fit_wall_seconds": result.wall_seconds,
        "images_per_second": result.images_per_second,
        f"seconds_to_{args.target:.2f}": reached["elapsed_seconds"] if reached else None,
        f"epoch_reaching_{args.target:.2f}": reached["epoch"] if reached else None,
        "process_wall_seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }
    print("SUMMARY " + json.dumps(summary))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"summary": summary, "history": result.history}, fh, indent=2)


if __name__ == "__main__":
    main()
