"""Training throughput of a CIFAR model: plain ``model.fit`` on NumPy arrays against the
project's tf.data pipeline, same model and batch size, measured side by side.

Each variant trains the ``--model`` (the paper's or the fast one) for ``--epochs`` epochs on
``--images`` real CIFAR-10 training images; the first epoch (tracing, XLA compilation) is
reported apart, and the variants are run in rounds (A, B, C, A, B, C, ...) so a change in
machine load hits all of them alike. Besides images per second and CPU milliseconds per
image, each variant's arithmetic rate: training FLOPs per image taken as 3 x the forward
pass (2 FLOPs per multiply-add of ``convolution.layer_costs``; an estimate that leaves out
pooling, BatchNorm and activations). Run from the repository root:

    python benchmarks/cifar_throughput.py --data-dir /work/cifar-real --images 10000 --rounds 2
    python benchmarks/cifar_throughput.py --data-dir /work/cifar-real --model fast \
        --batch-size 128 --only numpy_fit recipe pipeline_bf16 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

from bench_utils import cpu_seconds


def variants():
    """name -> (uses the pipeline, compile options, dtype policy)."""
    return {
        "numpy_fit": dict(pipeline=False, jit_compile="auto", policy="float32", spe=1),
        "numpy_fit_no_xla": dict(pipeline=False, jit_compile=False, policy="float32", spe=1),
        "pipeline": dict(pipeline=True, jit_compile="auto", policy="float32", spe=1),
        "numpy_fit_bf16": dict(pipeline=False, jit_compile="auto", policy="mixed_bfloat16", spe=1),
        "pipeline_bf16": dict(pipeline=True, jit_compile="auto", policy="mixed_bfloat16", spe=1),
        "pipeline_bf16_spe8": dict(pipeline=True, jit_compile="auto", policy="mixed_bfloat16",
                                   spe=8),
        # What train_recipe does for the fast recipe: pipeline, augmentation, bfloat16.
        "recipe": dict(pipeline=True, jit_compile="auto", policy="mixed_bfloat16", spe=1,
                       augment="flip_translate"),
    }


def training_flops_per_image(model) -> float:
    """3 x the forward pass's 2 FLOPs per multiply-add (backward ~ 2 x forward)."""
    from tlcnn_helpers.convolution import layer_costs

    return 3 * 2 * sum(cost.multiply_adds for cost in layer_costs(model))


def matmul_ceiling(dtype: str, size: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of a large matrix product in ``dtype``: what the CPU sustains on the easiest
    dense work, a practical ceiling for a CNN's training step."""
    import tensorflow as tf

    a = tf.random.normal((size, size), dtype="float32")
    a = tf.cast(a, dtype)
    product = tf.function(lambda m: tf.linalg.matmul(m, m))
    product(a).numpy()  # trace and warm up
    started = time.perf_counter()
    for _ in range(repeats):
        product(a).numpy()
    return round(2 * size**3 * repeats / (time.perf_counter() - started) / 1e9, 1)


def run_variant(name, opts, x, y, batch_size, epochs, seed, model_name="paper"):
    import keras

    from tlcnn_helpers.models import compile_for_classification, fast_cifar_cnn, paper_cnn
    from tlcnn_helpers.pipelines import make_dataset, to_one_hot

    keras.utils.set_random_seed(seed)
    keras.mixed_precision.set_global_policy(opts["policy"])
    build = paper_cnn if model_name == "paper" else fast_cifar_cnn
    model = build(x.shape[1:], 9)
    keras.mixed_precision.set_global_policy("float32")
    compile_for_classification(model, jit_compile=opts["jit_compile"])
    model.steps_per_execution = opts["spe"]
    times, cpu_times = [], []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t, self.c = time.perf_counter(), cpu_seconds()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)
            cpu_times.append(cpu_seconds() - self.c)

    if opts["pipeline"]:
        ds = make_dataset(x, y, num_classes=9, batch_size=batch_size, training=True, seed=seed,
                          augment=opts.get("augment", "none"))
        model.fit(ds, epochs=epochs, verbose=0, shuffle=False, callbacks=[Clock()])
    else:
        # What a student writes: scale to float32 in 0..1 by hand, one-hot labels, fit.
        x_float = x.astype("float32")  # the model's Rescaling layer divides by 255
        model.fit(x_float, to_one_hot(y, 9), batch_size=batch_size, epochs=epochs, verbose=0,
                  callbacks=[Clock()])
    steady = times[1:] or times
    steady_cpu = cpu_times[1:] or cpu_times
    rate = len(x) / statistics.median(steady)
    return {"first_epoch_s": round(times[0], 2),
            "steady_epoch_s": round(statistics.median(steady), 2),
            "images_per_second": round(rate, 1),
            "cpu_ms_per_image": round(1000 * statistics.median(steady_cpu) / len(x), 3),
            "gflop_per_second": round(rate * training_flops_per_image(model) / 1e9, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--model", choices=("paper", "fast"), default="paper")
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=None, help="variant names to run")
    parser.add_argument("--json", default=None, help="write the results here as JSON")
    args = parser.parse_args()

    from tlcnn_helpers.data import load_cifar10, stratified_subset

    (x, y), _ = load_cifar10(args.data_dir, download=False)
    x, y = stratified_subset(x, y, args.images, seed=0)
    chosen = {k: v for k, v in variants().items() if not args.only or k in args.only}
    results: dict[str, list[dict]] = {k: [] for k in chosen}
    for rnd in range(args.rounds):
        for name, opts in chosen.items():
            out = run_variant(name, opts, x, y, args.batch_size, args.epochs, seed=rnd,
                              model_name=args.model)
            out["load_average"] = round(os.getloadavg()[0], 2)
            results[name].append(out)
            print(f"round {rnd + 1} {name:18s} {json.dumps(out)}", flush=True)
    base = statistics.median(r["images_per_second"] for r in results.get("numpy_fit", [{}])
                             ) if "numpy_fit" in results else None
    print(f"\n{len(x)} images, batch {args.batch_size}, {args.epochs} epochs a run, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    summary = {}
    for name, rows in results.items():
        ips = statistics.median(r["images_per_second"] for r in rows)
        first = statistics.median(r["first_epoch_s"] for r in rows)
        cpu_ms = statistics.median(r["cpu_ms_per_image"] for r in rows)
        gflops = statistics.median(r["gflop_per_second"] for r in rows)
        speedup = f"{ips / base:.2f}x" if base else "-"
        summary[name] = {"images_per_second": ips, "first_epoch_s": first,
                         "cpu_ms_per_image": cpu_ms, "gflop_per_second": gflops,
                         "vs_numpy_fit": speedup,
                         "rounds": [r["images_per_second"] for r in rows]}
        print(f"{name:18s} {ips:8.0f} images/s  {cpu_ms:.3f} CPU ms/image  {gflops:6.1f} GFLOP/s  "
              f"first epoch {first:6.1f} s  {speedup}")
    ceilings = {dtype: matmul_ceiling(dtype) for dtype in ("float32", "bfloat16")}
    print(f"ceiling: a 2048x2048 matrix product runs at {ceilings['float32']} GFLOP/s in float32, "
          f"{ceilings['bfloat16']} GFLOP/s in bfloat16 (load {os.getloadavg()[0]:.2f})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "runs": results, "summary": summary,
                       "matmul_gflop_per_second": ceilings}, fh, indent=2)


if __name__ == "__main__":
    main()
