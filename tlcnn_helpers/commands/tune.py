"""``python -m tlcnn_helpers tune stl10``: the paper's hyperparameter search, and better ones.

Runs a RandomSearch (the paper's), Hyperband or BayesianOptimization search over the
paper's six hyperparameters on STL-10's 9 shared classes, retrains the best model, tests
it and writes a JSON report (``best_hyperparameters``, ``best_score``,
``trials_completed``, ``seconds_per_trial``, ``test_accuracy``, ...). The search state
lives in ``tuning/<project>`` and an interrupted search resumes where it stopped
(``--fresh`` starts over).

``--distributed --workers N`` starts keras-tuner's chief and N workers on 127.0.0.1 and
gathers their results. Across several machines, start one process per machine with
``--role chief`` or ``--role worker`` and keras-tuner's environment variables
(``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``), then run
the same command without ``--role`` on the chief's machine to retrain and report.

A search runs like this (``tests/test_tune_cli.py`` runs it); arguments that could lose work
are refused before anything starts, here a project outside the search folder:

>>> from tlcnn_helpers.cli import main
>>> main(["tune", "stl10", "--tuner", "random", "--max-trials", "2", "--profile", "smoke",
...       "--project", "..", "--fresh"])
2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import warnings
from pathlib import Path

from ..settings import SEARCH_SPACE_NAMES, TUNER_KINDS, get_profile, resolve_profile

DATASETS = ("stl10",)
ROLES = ("chief", "worker")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tune`` command to the course's command line (without importing TensorFlow)."""
    parser = subparsers.add_parser(
        "tune", help="search the STL-10 model's hyperparameters with keras-tuner",
        description="The paper's hyperparameter search for the STL-10 model (random search), "
                    "Hyperband or Bayesian optimization; resumable, optionally distributed. "
                    "Retrains the best model, tests it and writes a JSON report.")
    parser.add_argument("dataset", choices=DATASETS, help="the dataset to tune for")
    parser.add_argument("--tuner", choices=TUNER_KINDS, default="random",
                        help="random (the paper's), hyperband or bayesian (default: random)")
    parser.add_argument("--max-trials", type=int, default=None,
                        help="trials to run at most (default: as many as fit in the profile's "
                             "epochs, the same for every tuner)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per trial (default: the profile's; Hyperband uses its own "
                             "schedule up to the profile's hyperband_max_epochs)")
    parser.add_argument("--retrain-epochs", type=int, default=None,
                        help="epochs to retrain the best model (default: the profile's; 0 skips)")
    parser.add_argument("--profile", default=None,
                        help="smoke, teach or paper (default: TLCNN_PROFILE, else teach)")
    parser.add_argument("--data-dir", default=None, help="where the STL-10 files are")
    parser.add_argument("--images-per-class", type=int, default=None,
                        help="training images per class for the search and the retraining "
                             "(default: the profile's)")
    parser.add_argument("--space", choices=SEARCH_SPACE_NAMES, default=None,
                        help="the search space (default: the profile's)")
    parser.add_argument("--tuning-dir", default=None,
                        help="where searches keep their state (default: TLCNN_TUNING_DIR, "
                             "else tuning/)")
    parser.add_argument("--project", default=None,
                        help="the search's folder name (default: stl10_<tuner>_<profile>)")
    parser.add_argument("--fresh", action="store_true",
                        help="delete an earlier search in the same folder and start over")
    parser.add_argument("--report", default=None, help="write the JSON report here")
    parser.add_argument("--distributed", action="store_true",
                        help="run keras-tuner's chief and --workers workers on 127.0.0.1")
    parser.add_argument("--workers", type=int, default=None,
                        help="number of workers (with --distributed or --role chief)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="with --distributed: stop every process after this many seconds")
    parser.add_argument("--role", choices=ROLES, default=None,
                        help="run one process of a multi-machine search (needs keras-tuner's "
                             "KERASTUNER_* environment variables)")
    parser.set_defaults(func=run)


def _check_arguments(args: argparse.Namespace, max_trials: int, epochs: int) -> None:
    from ..errors import TuningError

    if max_trials < 1:
        raise TuningError(f"--max-trials {max_trials}: a search needs at least 1 trial")
    if epochs < 1:
        raise TuningError(f"--epochs {epochs}: each trial needs at least 1 epoch")
    if args.images_per_class is not None and args.images_per_class < 2:
        raise TuningError(f"--images-per-class {args.images_per_class}: need at least 2 (one "
                          "for training, one for validation)")
    if args.retrain_epochs is not None and args.retrain_epochs < 0:
        raise TuningError(f"--retrain-epochs {args.retrain_epochs}: use 0 (skip) or more")
    if args.workers is not None and not (args.distributed or args.role == "chief"):
        raise TuningError("--workers only applies with --distributed (or --role chief); "
                          "add --distributed to run the workers on this machine")
    cores = os.cpu_count() or 1
    if args.workers is not None and args.workers > 4 * cores:
        raise TuningError(f"--workers {args.workers}: this machine has {cores} cores; each "
                          f"worker trains its own model, so more than {4 * cores} workers only "
                          f"slow each other down (and may run out of memory): use fewer")
    if args.timeout is not None and not args.distributed:
        raise TuningError("--timeout only applies with --distributed")
    if args.distributed and args.role:
        raise TuningError("--distributed starts the chief and workers itself; drop --role")
    if args.distributed or args.role == "chief":
        if args.workers is None or args.workers < 1:
            raise TuningError(f"--workers {args.workers}: give the number of workers (1 or more)")
        if args.distributed and max_trials < args.workers:
            raise TuningError(f"--max-trials {max_trials} with --workers {args.workers}: some "
                              "workers would have nothing to do; raise --max-trials")
    if args.role:
        missing = [var for var in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP",
                                   "KERASTUNER_ORACLE_PORT") if var not in os.environ]
        if missing:
            raise TuningError(f"--role {args.role} needs the environment variables "
                              f"{', '.join(missing)} (see keras-tuner's distributed tuning)")
        if args.fresh or args.report:
            raise TuningError("--fresh and --report belong to the command that gathers the "
                              "results (without --role), not to a chief or worker process")


def _role_command(args: argparse.Namespace, profile_name: str, role: str) -> list[str]:
    command = [sys.executable, "-m", "tlcnn_helpers", "tune", args.dataset,
               "--role", "chief" if role == "chief" else "worker", "--tuner", args.tuner,
               "--profile", profile_name, "--max-trials", str(args.max_trials),
               "--epochs", str(args.epochs), "--space", args.space,
               "--tuning-dir", str(args.tuning_dir), "--project", args.project]
    if args.data_dir:
        command += ["--data-dir", str(args.data_dir)]
    if args.images_per_class is not None:
        command += ["--images-per-class", str(args.images_per_class)]
    if role == "chief":
        command += ["--workers", str(args.workers)]
    return command


def run(args: argparse.Namespace) -> int:
    """Search, retrain the best model, evaluate it on the test split, report."""
    import keras

    from .. import distributed, search_state, settings, tuning
    from ..data import SHARED_CLASSES

    started = time.perf_counter()
    profile = get_profile(args.profile) if args.profile else resolve_profile("teach")
    budget = profile.tuning
    # Default: the profile's budget of epochs, the same for every tuner (Hyperband's cap).
    args.max_trials = budget.trials_for(args.tuner) if args.max_trials is None else args.max_trials
    args.epochs = budget.epochs_per_trial if args.epochs is None else args.epochs
    args.space = args.space or budget.search_space
    args.tuning_dir = Path(args.tuning_dir) if args.tuning_dir else settings.tuning_dir()
    if args.project is None:
        args.project = tuning.default_project_name(args.tuner, profile.name)
    search_state.check_project_name(args.project)
    _check_arguments(args, args.max_trials, args.epochs)

    if args.images_per_class is not None:
        budget = dataclasses.replace(budget, images_per_class=args.images_per_class)
        profile = dataclasses.replace(profile, tuning=budget)

    keras.utils.set_random_seed(profile.seed)
    # The chief and a search without retraining never touch the images: load them lazily.
    loaded: list[tuning.SearchData] = []

    def data() -> tuning.SearchData:
        if not loaded:
            loaded.append(tuning.load_search_data(profile, args.data_dir))
        return loaded[0]

    hypermodel = tuning.STL10HyperModel(
        tuning.get_search_space(args.space), input_shape=tuning.STL10_INPUT_SHAPE,
        num_classes=len(SHARED_CLASSES), seed=profile.seed, batch_size=budget.batch_size)
    settings = dict(directory=args.tuning_dir, project_name=args.project,
                    max_trials=args.max_trials, seed=profile.seed, epochs_per_trial=args.epochs,
                    hyperband_max_epochs=budget.hyperband_max_epochs)

    if args.role:
        tuner = tuning.make_tuner(args.tuner, hypermodel, **settings)
        if args.role == "chief":
            distributed.serve_as_chief(tuner, expected_workers=args.workers)
        else:  # a worker: run trials until the chief says stop; the chief keeps the results
            tuner.search(data().x_train, data().y_train,
                         validation_data=(data().x_val, data().y_val),
                         epochs=args.epochs, verbose=0,
                         callbacks=[tuning.tensorboard_callback(args.project)])
        return 0

    # One search per folder: a second one would overwrite this one's trials. keras-tuner's own
    # chief and workers (--role, above) share the folder legitimately.
    with search_state.lock_search_folder(Path(args.tuning_dir) / args.project):
        return _search_and_report(args, profile, budget, hypermodel, settings, data, loaded,
                                  started)


def _search_and_report(args: argparse.Namespace, profile, budget, hypermodel, settings, data,
                       loaded, started: float) -> int:
    from .. import distributed, files, tuning

    distributed_run = None
    if args.distributed:
        project_dir = tuning.prepare_search_folder(args.tuner, hypermodel, overwrite=args.fresh,
                                                   **settings)
        distributed_run = distributed.launch_distributed(
            lambda role: _role_command(args, profile.name, role), args.workers,
            log_dir=project_dir / "process_logs", timeout=args.timeout)
        tuner = tuning.make_tuner(args.tuner, hypermodel, warn_reuse=False, **settings)
        summary = tuning.summarize_search(tuner, args.tuner, distributed_run.seconds)
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", tuning.ReusedSearchWarning)
            tuner = tuning.make_tuner(args.tuner, hypermodel, overwrite=args.fresh, **settings)
        for warning in caught:
            print(f"warning: {warning.message}", file=sys.stderr)
        summary = tuning.run_search(tuner, data(), kind=args.tuner, epochs=args.epochs)
    if summary.trials_completed == 0:
        raise tuning.TuningError(f"no trial of the search in {summary.project_dir} completed; "
                                 "see the errors above, or start fresh with --fresh")

    retrain_epochs = budget.retrain_epochs if args.retrain_epochs is None else args.retrain_epochs
    test_metrics: dict[str, float | None] = {"test_accuracy": None, "test_loss": None}
    if retrain_epochs:
        model, _ = tuning.retrain_best(summary.best_hyperparameters, data(),
                                       epochs=retrain_epochs, batch_size=budget.batch_size,
                                       seed=profile.seed)
        test_metrics = tuning.evaluate_search_model(model, data())
    report = {
        "dataset": args.dataset, "tuner": args.tuner, "profile": profile.name,
        "data_source": profile.data_source, "search_space": args.space,
        "max_trials": args.max_trials, "epochs_per_trial": args.epochs,
        "retrain_epochs": retrain_epochs,
        "best_hyperparameters": summary.best_hyperparameters, "best_score": summary.best_score,
        "objective": tuning.OBJECTIVE, "trials_completed": summary.trials_completed,
        "seconds_per_trial": summary.seconds_per_trial, "total_epochs": summary.total_epochs,
        "search_seconds": summary.wall_seconds, **test_metrics,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "project_dir": summary.project_dir, "images_per_class": budget.images_per_class,
        "data_sizes": loaded[0].sizes() if loaded else None,
        "trials": summary.trials,
    }
    if distributed_run is not None:
        report.update(workers=args.workers, trials_by_worker=summary.trials_by_tuner(),
                      process_logs=distributed_run.logs)
    if args.report:
        files.write_json(files.null_nonfinite(report), args.report, indent=None)
    shown = {k: report[k] for k in ("tuner", "trials_completed", "best_score",
                                    "seconds_per_trial", "test_accuracy", "test_loss")}
    print(json.dumps({**shown, "best_hyperparameters": summary.best_hyperparameters}, indent=1))
    if args.report:
        print(f"report written to {args.report}")
    return 0

