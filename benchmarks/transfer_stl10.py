"""STL-10 table: a CIFAR-trained model on STL-10's 96x96 test images, five ways.

(i) resized to 32x32; (ii) native 96x96 with a size-agnostic head (re-fitted on CIFAR-10's
labelled 32x32 images only); (iii) plus BatchNorm re-calibration on unlabelled STL-10
training images; (iv) fine-tuned on STL-10's labelled training images (head with the base
frozen, then everything at a 10x lower learning rate); (v) the same architecture trained
from scratch on STL-10 for as many epochs as (iv) in total. Notebook 06 runs the same steps
on a small budget.

Needs the real STL-10 (2.6 GB; ``load_stl10`` downloads and checks it) and the CIFAR-10
files; there is no STL-10 on the course's build machine, so there ``--synthetic`` only
checks that the script runs, on synthetic stand-ins:

    python benchmarks/transfer_stl10.py --model models/cifar10_paper_paper.keras \\
        --cifar-dir data --stl-dir data --head-epochs 5 --finetune-epochs 10
    python benchmarks/transfer_stl10.py --synthetic --model M.keras --cifar-dir /tmp/syn ...
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the CIFAR-trained 32x32 model (.keras)")
    parser.add_argument("--cifar-dir", required=True)
    parser.add_argument("--stl-dir", help="folder with stl10_binary/ (default: --cifar-dir)")
    parser.add_argument("--synthetic", action="store_true",
                        help="synthetic stand-ins (a dry run: the figures mean nothing)")
    parser.add_argument("--head-epochs", type=int, default=5)
    parser.add_argument("--finetune-epochs", type=int, default=10)
    parser.add_argument("--refit-images", type=int, default=9000)
    parser.add_argument("--recalibration-images", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from tlcnn_helpers import evaluation, training, transfer
    from tlcnn_helpers.data import load_cifar10, load_stl10, stratified_subset
    from tlcnn_helpers.models import paper_cnn

    source = {"source": "synthetic"} if args.synthetic else {}
    (x_cifar, y_cifar), _ = load_cifar10(args.cifar_dir, **source)
    (x_stl, y_stl), (x_test, y_test) = load_stl10(args.stl_dir or args.cifar_dir, **source)
    x_refit, y_refit = stratified_subset(x_cifar, y_cifar, args.refit_images, args.seed)
    print(f"STL-10 train {x_stl.shape}, test {x_test.shape}"
          + (" (SYNTHETIC: a dry run)" if args.synthetic else ""), flush=True)
    model = keras.models.load_model(args.model, compile=False)
    results = {}

    def measure(name: str, candidate, started: float) -> None:
        accuracy = evaluation.accuracy(candidate, x_test, y_test, batch_size=128)
        results[name] = (accuracy, time.perf_counter() - started)
        print(f"{name}: {accuracy:.4f} ({results[name][1]:.0f} s)", flush=True)

    start = time.perf_counter()
    measure("(i) resized to 32", transfer.with_resizing(model, (96, 96, 3)), start)
    start = time.perf_counter()
    agnostic, _ = transfer.make_size_agnostic(model, refit_on=(x_refit, y_refit),
                                              refit_epochs=1, batch_size=args.batch_size,
                                              seed=args.seed)
    measure("(ii) native 96, size-agnostic head", agnostic, start)
    start = time.perf_counter()
    recalibrated = transfer.copy_model(agnostic)
    transfer.recalibrate_batchnorm(recalibrated, x_stl[: args.recalibration_images],
                                   batch_size=args.batch_size)
    measure("(iii) + BatchNorm re-calibration", recalibrated, start)
    start = time.perf_counter()
    training.fine_tune(recalibrated, x_stl, y_stl, head_epochs=args.head_epochs,
                       finetune_epochs=args.finetune_epochs, batch_size=args.batch_size,
                       seed=args.seed)
    measure("(iv) fine-tuned", recalibrated, start)
    start = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    scratch = paper_cnn(input_shape=(96, 96, 3))
    training.fit_classifier(scratch, x_stl, y_stl, epochs=args.head_epochs + args.finetune_epochs,
                            batch_size=args.batch_size, seed=args.seed)
    measure("(v) from scratch", scratch, start)

    print("\n| variant | STL-10 test accuracy | seconds |\n|---|---|---|")
    for name, (accuracy, seconds) in results.items():
        print(f"| {name} | {accuracy:.3f} | {seconds:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
