"""``python -m tlcnn_helpers train``: train the CIFAR-10 model with the paper's, the fast or the multiscale recipe.

Writes the trained model (``--out``, a ``.keras`` file) and a JSON report (``--report``) with
the test accuracy and loss (``tta`` says whether test-time augmentation was used for them;
``test_accuracy_by_tta`` gives the accuracy without it and with flips), epochs, timings,
throughput and a per-epoch history; for a model
that takes any image size (the multiscale recipe), also ``test_accuracy_by_size``: the test
images upsampled to 32, 48, 64 and 96 px. With
``--backup-dir`` an interrupted run resumes from its last finished epoch when the same
command is run again. ``--from-model`` starts from a saved model instead of a new one.

>>> import json, tempfile
>>> from pathlib import Path
>>> from tlcnn_helpers.cli import main
>>> work = Path(tempfile.mkdtemp())
>>> main(["train", "cifar10", "--recipe", "fast", "--profile", "smoke", "--epochs", "1",
...       "--data-dir", str(work), "--out", str(work / "m.keras"),
...       "--report", str(work / "r.json"), "--quiet"])
0
>>> json.loads((work / "r.json").read_text())["epochs"]
1
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from ..errors import CourseError

DATASETS = ("cifar10", "stl10")
RECIPES = ("paper", "fast", "multiscale", "best")  # training.RECIPES, without importing TensorFlow
SWEEP_SIZES = (32, 48, 64, 96)  # test_accuracy_by_size, for models that take any size


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train the CIFAR-10 CNN (paper or fast recipe) and write a JSON report",
        description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=DATASETS,
                        help="cifar10 (32x32); stl10 (96x96) needs a model built for 96x96")
    parser.add_argument("--recipe", choices=RECIPES, default="fast",
                        help="paper, fast, or multiscale (one model for every image size)")
    parser.add_argument("--profile", default=None,
                        help="smoke (synthetic data), teach or paper: budgets and data source "
                             "(default: TLCNN_PROFILE, else teach)")
    parser.add_argument("--data-dir", default=None,
                        help="folder holding cifar-10-batches-py/ (default: TLCNN_DATA_DIR or data/)")
    parser.add_argument("--no-download", action="store_true",
                        help="never download: fail at once if the data folder holds no data")
    parser.add_argument("--epochs", type=int, default=None, help="override the profile's epochs")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                        help="stop after the epoch that would make the next one overrun this")
    parser.add_argument("--seed", type=int, default=None, help="default: the profile's seed")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="share of the training split held out for validation")
    parser.add_argument("--from-model", default=None, metavar="MODEL.keras",
                        help="continue from this saved model instead of building a new one")
    parser.add_argument("--backup-dir", default=None,
                        help="keep a per-epoch backup here; rerun the same command to resume")
    parser.add_argument("--out", required=True, help="where to save the trained model (.keras)")
    parser.add_argument("--report", required=True, help="where to write the JSON report")
    parser.add_argument("--tta", choices=("flip", "flip_shift"), default=None,
                        help="report the test accuracy with test-time augmentation: averaged "
                             "over mirror images (flip), and 2 px shifts (flip_shift)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import files
    from ..data import dataset_status, load_dataset, train_val_split
    from ..errors import DatasetNotFoundError
    from ..evaluation import check_images, evaluate, image_input_shape
    from ..files import check_output_file, load_model, write_json
    from ..settings import default_data_dir, get_profile, resolve_profile
    from ..training import get_recipe, remove_backup, train_recipe, training_report
    from ..transfer import resolution_sweep

    started = time.perf_counter()
    # As in tune: an explicit --profile wins, else TLCNN_PROFILE, else teach.
    profile = get_profile(args.profile) if args.profile else resolve_profile("teach")
    out, report_path = Path(args.out), Path(args.report)
    if out.suffix != ".keras":
        raise CourseError(f"--out {out}: the model is saved in Keras 3's format; "
                          f"use a file name ending in .keras")
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            raise CourseError(f"{flag} {value}: give a whole number of at least 1")
    if args.time_budget is not None and not (math.isfinite(args.time_budget)
                                             and args.time_budget > 0):
        raise CourseError(f"--time-budget {args.time_budget}: give a positive, finite number of "
                          f"seconds (leave it out for no limit)")
    if args.seed is not None and not 0 <= args.seed < 2**32:
        raise CourseError(f"--seed {args.seed}: give a whole number from 0 to {2**32 - 1}")
    # Both outputs are checked now: found unwritable after training, the training is lost.
    check_output_file(out, "--out")
    check_output_file(report_path, "--report")
    if out.resolve() == report_path.resolve():
        raise CourseError(f"--report {report_path} is the same file as --out: the JSON report "
                          f"would replace the model; give the report another name")
    start_model = load_model(args.from_model) if args.from_model else None

    if args.no_download and not profile.is_synthetic:
        folder = Path(args.data_dir) if args.data_dir else default_data_dir()
        if dataset_status(folder)[args.dataset] == "missing":
            raise DatasetNotFoundError(
                f"--data-dir {folder} holds no {args.dataset} data (neither the extracted "
                f"folder nor the official archive) and --no-download is set: copy the files "
                f"there, point --data-dir at them, or use --profile smoke for synthetic data")
    (x_train, y_train), (x_test, y_test) = load_dataset(args.dataset, profile, args.data_dir,
                                                        download=not args.no_download)
    if start_model is not None:
        check_images(start_model, x_train, f"{args.dataset} ({args.from_model})")
    num_classes = int(max(y_train.max(), y_test.max()) + 1)
    if start_model is not None and start_model.output_shape[-1] != num_classes:
        raise CourseError(
            f"--from-model {args.from_model} predicts {start_model.output_shape[-1]} classes but "
            f"{args.dataset} has {num_classes} here; start from a model trained on the same "
            f"classes, or leave out --from-model to build a new one")
    seed = profile.seed if args.seed is None else args.seed
    train, val = train_val_split(x_train, y_train, args.val_fraction, seed=seed)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size))
                 if v is not None}
    recipe = get_recipe(args.recipe, profile, **overrides)
    budget = args.time_budget if args.time_budget is not None else profile.cifar.time_budget_seconds
    result = train_recipe(recipe, (train.x, train.y), (val.x, val.y), num_classes=num_classes,
                          seed=seed, time_budget_seconds=budget, backup_dir=args.backup_dir,
                          verbose=not args.quiet, model=start_model, keep_backup=True,
                          run_facts={"profile": profile.name, "data_source": profile.data_source,
                                     "dataset": args.dataset, "from_model": args.from_model})
    metrics = evaluate(result.model, x_test, y_test)
    by_tta = {"none": metrics["test_accuracy"]}
    for kind in dict.fromkeys(("flip", args.tta or "flip")):  # each TTA evaluated once
        with_tta = evaluate(result.model, x_test, y_test, tta=kind)
        by_tta[kind] = with_tta["test_accuracy"]
        if kind == args.tta:
            metrics = with_tta
    by_size = {}
    if None in image_input_shape(result.model)[:2]:
        by_size = {"test_accuracy_by_size": {
            str(row.size): row.accuracy
            for row in resolution_sweep(result.model, x_test, y_test, SWEEP_SIZES)}}
    files.save_model(result.model, out)
    report = training_report(
        result, metrics, recipe=recipe, profile=profile.name, data_source=profile.data_source,
        dataset=args.dataset, seed=seed, model_path=str(out), parameters=result.model.count_params(),
        train_images=len(train), val_images=len(val), test_images=len(y_test),
        total_seconds=round(time.perf_counter() - started, 3), tta=args.tta,
        test_accuracy_by_tta=by_tta, **by_size)
    write_json(report, report_path)
    remove_backup(args.backup_dir)  # only now: a failed save above can still resume
    if not args.quiet:
        tta = f" (test-time augmentation: {args.tta})" if args.tta else ""
        print(f"test accuracy{tta} {metrics['test_accuracy']:.4f}, test loss {metrics['test_loss']:.4f} "
              f"after {result.epochs} epochs ({result.train_seconds:.0f} s training); "
              f"model: {out}; report: {report_path}")
    return 0
