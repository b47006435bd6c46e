"""How long models of the paper's search space take to train on 96x96 images, and what that
means for notebook 05's ``teach`` and ``paper`` profiles.

    python benchmarks/tuning_paper_space.py --images-per-class 60 --configs 4 \
        --out build/bench/tuning_paper_space.json

Trains, on synthetic 96x96 STL-10 images (no real STL-10 here; the cost of a model does not
depend on what the pixels show), the cheapest and the most expensive model of the paper
space and ``--configs`` models sampled from it as keras-tuner's random search samples them.
Each trains two epochs: the first includes building and tracing, the second gives the steady
cost per image. The estimate scales that cost to the images a profile uses (STL-10 has 500
training images per class: 400 for training and 100 for validation in the search; ``teach``
keeps 150 per class) and adds the measured first-epoch overhead once per trial.
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
import keras_tuner
from bench_utils import cpu_seconds

from tlcnn_helpers import tuning
from tlcnn_helpers.files import write_text_atomic
from tlcnn_helpers.settings import get_profile

STL10_SEARCH_TRAIN, STL10_SEARCH_VAL = 9 * 400, 9 * 100  # the real STL-10, shared classes
CHEAPEST = dict(filters=16, neurons=64, conv_blocks=3, dense_layers=1)
DEAREST = dict(filters=64, neurons=256, conv_blocks=5, dense_layers=3)


def time_two_epochs(values: dict, data: tuning.SearchData) -> dict:
    keras.backend.clear_session()
    keras.utils.set_random_seed(1)
    model = tuning.build_search_model(**values, input_shape=data.input_shape,
                                     num_classes=data.num_classes)
    marks = [(time.perf_counter(), cpu_seconds())]
    for _ in range(2):
        model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                  epochs=1, batch_size=64, verbose=0)
        marks.append((time.perf_counter(), cpu_seconds()))
    (w0, c0), (w1, c1), (w2, c2) = marks
    images = len(data.x_train) + len(data.x_val)
    return {"values": values, "params": model.count_params(),
            "first_epoch_s": round(w1 - w0, 2), "second_epoch_s": round(w2 - w1, 2),
            "second_epoch_cpu_s": round(c2 - c1, 2),
            "ms_per_image": round(1000 * (w2 - w1) / images, 3),
            "first_epoch_overhead_s": round((w1 - w0) - (w2 - w1), 2)}


FIRST_SEARCH_TRIALS = 2  # notebook 05's keras_tuner.RandomSearch(build, ...), 1 epoch each


def estimate_minutes(ms_per_image: float, overhead_s: float, epochs: int, trials: int,
                     images_per_class: int | None = None) -> float:
    """Minutes to train ``epochs`` epochs in ``trials`` trials on STL-10's shared classes."""
    images = STL10_SEARCH_TRAIN + STL10_SEARCH_VAL
    if images_per_class is not None:
        images = min(images, 9 * images_per_class)
    per_epoch = ms_per_image / 1000 * images
    return round((epochs * per_epoch + trials * overhead_s) / 60, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images-per-class", type=int, default=60)
    parser.add_argument("--configs", type=int, default=4)
    parser.add_argument("--data-dir", default=None, help="default: a temporary folder")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    smoke = get_profile("smoke")
    profile = dataclasses.replace(
        smoke, data=dataclasses.replace(smoke.data,
                                        synthetic_train_per_class=args.images_per_class),
        tuning=dataclasses.replace(smoke.tuning, images_per_class=None))
    data = tuning.load_search_data(profile, args.data_dir or tempfile.mkdtemp())
    load_start = [round(x, 2) for x in os.getloadavg()]
    fixed = dict(learning_rate=1e-3, optimizer="adam", dropout=0.25)
    configs = [("cheapest", {**fixed, **CHEAPEST}), ("dearest", {**fixed, **DEAREST})]
    hp = tuning.STL10HyperModel().declare_space()
    seed_state = 42
    for i in range(args.configs):  # as RandomSearch's oracle samples: one seed per value
        values = {}
        for p in hp.space:
            values[p.name] = p.random_sample(seed_state)
            seed_state += 1
        configs.append((f"sampled{i}", values))
    rows = []
    for name, values in configs:
        row = {"name": name, **time_two_epochs(values, data)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    sampled = [r for r in rows if r["name"].startswith("sampled")]
    ms = statistics.mean(r["ms_per_image"] for r in sampled)
    overhead = statistics.mean(max(0.0, r["first_epoch_overhead_s"]) for r in sampled)
    teach, paper = get_profile("teach").tuning, get_profile("paper").tuning
    # Epochs a notebook run trains: each of the three tuners spends the same epoch budget
    # (TuningBudget.trials_for), the best model is retrained, and the first keras-tuner
    # search trains FIRST_SEARCH_TRIALS trials of 1 epoch.
    def notebook_epochs(budget: object) -> int:
        return 3 * budget.epoch_budget + budget.retrain_epochs + FIRST_SEARCH_TRIALS

    def notebook_trials(budget: object) -> int:  # + 1: the retraining's first-epoch overhead
        return (sum(budget.trials_for(kind) for kind in ("random", "hyperband", "bayesian"))
                + FIRST_SEARCH_TRIALS + 1)

    figures = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *(argv or sys.argv[1:])]),
        "data": data.sizes(), "load_average_start": load_start,
        "load_average_end": [round(x, 2) for x in os.getloadavg()], "configs": rows,
        "sampled_mean_ms_per_image": round(ms, 3),
        "sampled_mean_first_epoch_overhead_s": round(overhead, 2),
        "estimate_minutes": {
            "teach_notebook": estimate_minutes(ms, overhead, notebook_epochs(teach),
                                               notebook_trials(teach),
                                               teach.images_per_class),
            "teach_notebook_all_images": estimate_minutes(ms, overhead, notebook_epochs(teach),
                                                          notebook_trials(teach)),
            "paper_notebook": estimate_minutes(ms, overhead, notebook_epochs(paper),
                                               notebook_trials(paper),
                                               paper.images_per_class),
            "paper_search_random_only": estimate_minutes(
                ms, overhead, paper.max_trials * paper.epochs_per_trial + paper.retrain_epochs,
                paper.max_trials + 1),
        },
        "keras_tuner": keras_tuner.__version__,
    }
    print(json.dumps(figures, indent=1))
    if args.out:
        write_text_atomic(args.out, json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
