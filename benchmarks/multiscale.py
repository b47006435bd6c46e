"""One set of weights for every image size: the multiscale recipe against the fast one.

Trains each ``--variant`` on the CIFAR-10 training images (9 shared classes) under the same
``--time-budget`` (the warm-up + cosine schedule is fitted into it), then classifies the
held-out ``test_batch`` (a dev-test set, see ``benchmarks/README.md``) upsampled (bilinear)
to 32, 48, 64 and 96 px with the same weights: no labels and no re-calibration at the new
size. The fast model is also shown with its BatchNorm statistics re-calibrated at each size
on unlabelled training images (``transfer.recalibrate_batchnorm``), the best the course
could do before. Last, the real-photograph check: ``data.photograph_views`` (views of one
photograph that ships with scikit-image) classified natively at 96 px and resized to 32 px.

Variants: ``fast`` (trained at 32 px only), and the multiscale recipe (each batch at 32, 48,
64 or 96 px) with its sizes drawn three ways: ``equal_compute`` (every size gets the same
compute: p ~ 1/size^2), ``inverse_size`` (p ~ 1/size) and ``uniform`` (every size equally
often). Run from the repository root, e.g.:

    python benchmarks/multiscale.py --data-dir /work/cifar-real --time-budget 600 \\
        --variant fast --variant equal_compute --variant uniform \\
        --json benchmarks/results/multiscale_600s.json --save-dir build/bench-multiscale
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from bench_utils import cpu_seconds

VARIANTS = ("fast", "equal_compute", "inverse_size", "uniform")
SIZES = (32, 48, 64, 96)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True, help="folder with cifar-10-batches-py/")
    parser.add_argument("--variant", action="append", choices=VARIANTS, required=True)
    parser.add_argument("--time-budget", type=float, default=600.0)
    parser.add_argument("--epochs", type=int, default=100,
                        help="the schedule's length in epochs; the time budget ends it first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recalibration-images", type=int, default=2048)
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    parser.add_argument("--save-dir", type=Path, default=None, help="save each model here")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import numpy as np

    from tlcnn_helpers.data import load_cifar10, photograph_views
    from tlcnn_helpers.evaluation import evaluate
    from tlcnn_helpers.training import get_recipe, train_recipe
    from tlcnn_helpers.transfer import make_size_agnostic, resolution_sweep

    (x, y), (x_test, y_test) = load_cifar10(args.data_dir, download=False)
    unlabelled = x[np.random.default_rng(args.seed).permutation(len(x))[:args.recalibration_images]]
    photos_96, photo_labels = photograph_views(96)
    photos_32 = photograph_views(32)[0]
    results = []
    for variant in args.variant:
        name = "fast" if variant == "fast" else "multiscale"
        overrides = {} if variant == "fast" else {"scale_weighting": variant}
        recipe = get_recipe(name, epochs=args.epochs, **overrides)
        load_before, cpu_before = os.getloadavg()[0], cpu_seconds()
        result = train_recipe(recipe, (x, y), None, num_classes=9, seed=args.seed,
                              time_budget_seconds=args.time_budget)
        model = result.model
        started = time.perf_counter()
        metrics = evaluate(model, x_test, y_test)
        agnostic = model if variant != "fast" else make_size_agnostic(model)[0]
        sweep = resolution_sweep(agnostic, x_test, y_test, SIZES,
                                 recalibration_images=unlabelled if variant == "fast" else None)
        cat = photo_labels[0]
        native = agnostic.predict(photos_96.astype("float32"), verbose=0)
        small = agnostic.predict(photos_32.astype("float32"), verbose=0)
        row = {
            "variant": variant, "recipe": recipe.describe(), "seed": args.seed,
            "time_budget_seconds": args.time_budget, "train_images": len(x),
            "train_seconds": result.train_seconds, "wall_seconds": result.wall_seconds,
            "images_seen": int(sum(r["images"] for r in result.history)),
            "images_per_second": result.images_per_second,
            "epochs": result.epochs, "parameters": model.count_params(),
            "test_accuracy": metrics["test_accuracy"],
            "test_accuracy_by_size": {str(r.size): r.accuracy for r in sweep},
            "recalibrated_accuracy_by_size": {str(r.size): r.recalibrated_accuracy for r in sweep
                                              if r.recalibrated_accuracy is not None},
            "photographs": {
                "views": len(photo_labels), "photographs": 1, "class": "cat",
                "accuracy_native_96": float((native.argmax(1) == cat).mean()),
                "accuracy_resized_32": float((small.argmax(1) == cat).mean()),
                "mean_cat_probability_native_96": float(native[:, cat].mean()),
                "mean_cat_probability_resized_32": float(small[:, cat].mean())},
            "evaluation_seconds": round(time.perf_counter() - started, 1),
            "process_cpu_seconds": round(cpu_seconds() - cpu_before, 1),
            "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        }
        print("RESULT " + json.dumps(row), flush=True)
        results.append(row)
        if args.save_dir:
            from tlcnn_helpers.files import save_model

            args.save_dir.mkdir(parents=True, exist_ok=True)
            save_model(agnostic, args.save_dir / f"cifar10_{variant}_{int(args.time_budget)}s.keras")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
