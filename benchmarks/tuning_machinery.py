"""The cost of keras-tuner's machinery on 96x96 images: seconds and memory per trial, and the
search's overhead against plain training of the same model.

    python benchmarks/tuning_machinery.py --trials 8 --epochs 2 --images-per-class 200 \
        --out build/bench/tuning_machinery.json

Runs on synthetic STL-10 (96x96, the official binary format; no real STL-10 here). To keep
memory comparable across trials, the searched space fixes the architecture (the smoke
profile's mid-sized model) and varies only the learning rate, so a growing resident set
would be a leak, not a bigger model. Plain training builds, fits and discards the same model
the same number of times, releasing its memory in between like the tuner does
(``memory.released_after_training``).

``--keep-traced-steps`` turns that release off in both, which shows what TensorFlow keeps of
every trained model when only ``keras.backend.clear_session()`` is called.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import keras
import psutil
from bench_utils import cpu_seconds

from tlcnn_helpers import memory, tuning
from tlcnn_helpers.files import write_text_atomic
from tlcnn_helpers.settings import get_profile

FIXED_ARCHITECTURE = tuning.SearchSpace(optimizers=("adam",), filters=(8,), neurons=(32,),
                                        conv_blocks=(3, 3), dense_layers=(1, 1), dropout=(0.25,))


def rss_mb() -> float:
    return round(psutil.Process().memory_info().rss / 2**20, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--images-per-class", type=int, default=200)
    parser.add_argument("--plain-runs", type=int, default=4)
    parser.add_argument("--data-dir", default=None, help="default: a temporary folder")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    parser.add_argument("--keep-traced-steps", action="store_true",
                        help="do not release each trained model's traced step (shows the leak)")
    args = parser.parse_args(argv)
    if args.keep_traced_steps:
        tuning.release_custom_gradients = lambda registered_before: 0

    data_dir = args.data_dir or tempfile.mkdtemp(prefix="tlcnn-bench-data-")
    smoke = get_profile("smoke")
    profile = dataclasses.replace(
        smoke, data=dataclasses.replace(smoke.data,
                                        synthetic_train_per_class=args.images_per_class),
        tuning=dataclasses.replace(smoke.tuning, images_per_class=None))
    data = tuning.load_search_data(profile, data_dir)
    print(f"data: {data.sizes()} at {data.input_shape}", flush=True)
    rss_before = rss_mb()
    load_at_start = [round(x, 2) for x in os.getloadavg()]

    # The search: fixed architecture, only the learning rate varies.
    with tempfile.TemporaryDirectory(prefix="tlcnn-bench-tuning-") as folder:
        hypermodel = tuning.STL10HyperModel(FIXED_ARCHITECTURE, seed=1, batch_size=32)
        tuner = tuning.make_tuner("random", hypermodel, directory=folder, project_name="bench",
                                  max_trials=args.trials, seed=1, epochs_per_trial=args.epochs)
        started = time.perf_counter()
        summary = tuning.run_search(tuner, data, kind="random", epochs=args.epochs,
                                    tensorboard=True, logs_root=Path(folder) / "logs")
        search_seconds = time.perf_counter() - started
        best = dict(summary.best_hyperparameters)
    trial_seconds = [t["seconds"] for t in summary.trials]
    trial_cpu = [t["cpu_seconds"] for t in summary.trials]
    trial_rss = [t["rss_mb"] for t in summary.trials]
    print(f"search: {summary.trials_completed} trials in {search_seconds:.1f} s; "
          f"seconds per trial {trial_seconds}; RSS after each trial {trial_rss}", flush=True)

    # Plain training of the same model, as often as the search trained one.
    plain_seconds, plain_cpu, plain_rss = [], [], []
    for _ in range(args.plain_runs):
        started, cpu_started = time.perf_counter(), cpu_seconds()
        registered = memory.custom_gradient_names()
        keras.utils.set_random_seed(1)
        model = tuning.build_search_model(**best, input_shape=data.input_shape,
                                         num_classes=data.num_classes)
        model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                  epochs=args.epochs, batch_size=32, verbose=0)
        del model
        if not args.keep_traced_steps:
            memory.release_custom_gradients(registered)
        keras.backend.clear_session()
        plain_seconds.append(round(time.perf_counter() - started, 3))
        plain_cpu.append(round(cpu_seconds() - cpu_started, 3))
        plain_rss.append(rss_mb())
    print(f"plain training: seconds {plain_seconds}; RSS after each {plain_rss}", flush=True)

    trial_median = statistics.median(trial_seconds)
    plain_median = statistics.median(plain_seconds)
    figures = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *(argv or sys.argv[1:])]),
        "data": data.sizes(), "input_shape": list(data.input_shape), "epochs": args.epochs,
        "trials": summary.trials_completed, "search_seconds": round(search_seconds, 1),
        "seconds_per_trial": trial_seconds, "median_seconds_per_trial": trial_median,
        "plain_training_seconds": plain_seconds, "median_plain_seconds": plain_median,
        "cpu_seconds_per_trial": trial_cpu, "plain_training_cpu_seconds": plain_cpu,
        "median_cpu_per_trial": statistics.median(trial_cpu),
        "median_plain_cpu": statistics.median(plain_cpu),
        "cpu_overhead_percent": round(100 * (statistics.median(trial_cpu)
                                             - statistics.median(plain_cpu))
                                      / statistics.median(plain_cpu), 1),
        "overhead_seconds_per_trial": round(trial_median - plain_median, 2),
        "overhead_percent": round(100 * (trial_median - plain_median) / plain_median, 1),
        "rss_mb_before_search": rss_before, "rss_mb_after_first_trial": trial_rss[0],
        "rss_mb_after_last_trial": trial_rss[-1], "rss_mb_per_trial": trial_rss,
        # the first trial also warms TensorFlow up (one-time allocations): count from the 2nd
        "rss_mb_growth_per_trial_from_the_second": round(
            (trial_rss[-1] - trial_rss[1]) / (len(trial_rss) - 2), 2)
        if len(trial_rss) > 2 else None,
        "traced_steps_released": not args.keep_traced_steps,
        "rss_mb_after_plain_runs": plain_rss,
        "live_traced_graphs_at_end": memory.live_traced_graphs(),
        "load_average_start": load_at_start,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(figures, indent=1))
    if args.out:
        write_text_atomic(args.out, json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
