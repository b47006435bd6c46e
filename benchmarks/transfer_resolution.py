"""Cross-resolution table: CIFAR-trained models evaluated at 32/48/64/96 pixels.

The CIFAR-10 dev-test images are upsampled (bilinear) to each size and classified by the
same weights made size-agnostic (``transfer.make_size_agnostic``), without and with
BatchNorm re-calibration on upsampled *training* images (no labels used). The paper model's
Flatten head is folded to global average pooling and re-fitted for ``--refit-epochs`` on
``--refit-images`` labelled 32x32 training images first; the fast model ends in global max
pooling already, so all of its weights carry over unchanged.

    python benchmarks/transfer_resolution.py --cifar-dir /work/cifar-real \\
        --model paper=build/bench-transfer/cifar10_paper_3ep.keras \\
        --model fast=build/bench-transfer/cifar10_fast_3ep.keras

Prints a Markdown table (for ``benchmarks/README.md``) and writes it as JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cifar-dir", required=True,
                        help="folder with cifar-10-batches-py/ (test_batch = dev-test slice)")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=PATH",
                        help="a trained 32x32 model (.keras); repeat for several")
    parser.add_argument("--sizes", default="32,48,64,96")
    parser.add_argument("--test-per-class", type=int, default=200,
                        help="dev-test images per class (default 200: 1,800 images)")
    parser.add_argument("--recalibration-images", type=int, default=1024)
    parser.add_argument("--refit-images", type=int, default=9000)
    parser.add_argument("--refit-epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from tlcnn_helpers import evaluation, transfer
    from tlcnn_helpers.data import load_cifar10, stratified_subset

    keras.utils.set_random_seed(args.seed)
    sizes = [int(s) for s in args.sizes.split(",")]
    (x_train, y_train), (x_test, y_test) = load_cifar10(args.cifar_dir, download=False)
    x_test, y_test = stratified_subset(x_test, y_test, args.test_per_class * 9, args.seed)
    x_refit, y_refit = stratified_subset(x_train, y_train, args.refit_images, args.seed)
    order = np.random.default_rng(args.seed).permutation(len(x_train))
    unlabelled = x_train[order[: args.recalibration_images]]
    print(f"dev-test images: {len(x_test)}; re-calibration images: {len(unlabelled)} "
          f"(training split, labels unused)", flush=True)

    rows = []
    for spec in args.model:
        name, _, path = spec.partition("=")
        model = keras.models.load_model(path, compile=False)
        original = evaluation.accuracy(model, x_test, y_test, batch_size=args.batch_size)
        start = time.perf_counter()
        agnostic, report = transfer.make_size_agnostic(
            model, refit_on=(x_refit, y_refit) if "Flatten" in _layer_types(model) else None,
            refit_epochs=args.refit_epochs, batch_size=args.batch_size, seed=args.seed)
        print(report.summary(), f"({time.perf_counter() - start:.0f} s)", flush=True)
        print(f"{name}: original model at 32 px: {original:.4f}", flush=True)
        for size in sizes:
            start = time.perf_counter()
            (row,) = transfer.resolution_sweep(agnostic, x_test, y_test, [size],
                                               recalibration_images=unlabelled,
                                               batch_size=args.batch_size)
            rows.append({"model": name, "size": size, "original_at_32": original,
                         "accuracy": row.accuracy, "recalibrated": row.recalibrated_accuracy,
                         "seconds": time.perf_counter() - start})
            print(f"{name} {size:>3} px: {row.accuracy:.4f} -> re-calibrated "
                  f"{row.recalibrated_accuracy:.4f} ({rows[-1]['seconds']:.0f} s)", flush=True)

    print("\n| model | size (px) | dev-test accuracy | with BatchNorm re-calibration | change |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['size']} | {r['accuracy']:.3f} | {r['recalibrated']:.3f} | "
              f"{r['recalibrated'] - r['accuracy']:+.3f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


def _layer_types(model) -> set[str]:
    from tlcnn_helpers.evaluation import walk_layers

    return {type(layer).__name__ for _, layer in walk_layers(model)}


if __name__ == "__main__":
    sys.exit(main())
