"""CPU cost per training image of the CIFAR models and recipe ingredients (load-independent).

Each variant trains for ``--epochs`` epochs on random uint8 images after one warm-up epoch
(tracing, XLA compilation) and reports the **process CPU milliseconds per image**, which,
unlike wall time, hardly depends on what else runs on the machine; CPU ms / 2 cores gives
the wall time on 2 idle cores if TensorFlow keeps both busy. Variants run in rounds so
they meet the same conditions. Run from the repository root:

    python benchmarks/cifar_step_cost.py --rounds 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from bench_utils import cpu_seconds


def variants() -> dict[str, tuple[str, dict]]:
    """name -> (recipe, overrides)."""
    bf16, f32 = {"precision": "mixed_bfloat16"}, {"precision": "float32"}
    return {
        "paper model, float32": ("paper", {"batch_size": 128}),
        "paper model, bfloat16": ("paper", {"batch_size": 128, **bf16}),
        "fast model, float32": ("fast", {"batch_size": 128, **f32}),
        "fast model, bfloat16": ("fast", {"batch_size": 128, **bf16}),
        "fast, no residual pair, bf16": ("fast", {"batch_size": 128, "residual_stages": (), **bf16}),
        "fast, no residual, BN before pool, bf16": (
            "fast", {"batch_size": 128, "residual_stages": (), "pool_before_norm": False, **bf16}),
        "fast, bf16, no augmentation": ("fast", {"batch_size": 128, "augment": "none", **bf16}),
    }


def measure(recipe_name: str, overrides: dict, x: np.ndarray, y: np.ndarray, epochs: int) -> dict:
    from tlcnn_helpers.pipelines import make_dataset
    from tlcnn_helpers.training import build_model, get_recipe

    recipe = get_recipe(recipe_name, **overrides)
    model = build_model(recipe, x.shape[1:], 9, steps_per_epoch=len(x) // recipe.batch_size)
    ds = make_dataset(x, y, num_classes=9, batch_size=recipe.batch_size, training=True, seed=0,
                      augment=recipe.augment)
    model.fit(ds, epochs=1, verbose=0, shuffle=False)  # warm-up: tracing and compilation
    cpu, wall = cpu_seconds(), time.perf_counter()
    model.fit(ds, epochs=epochs, verbose=0, shuffle=False)
    images = epochs * len(x)
    return {"cpu_ms_per_image": round(1000 * (cpu_seconds() - cpu) / images, 3),
            "wall_ms_per_image": round(1000 * (time.perf_counter() - wall) / images, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2560)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 9, args.images)
    rows: dict[str, list[dict]] = {name: [] for name in variants()}
    for round_number in range(args.rounds):
        for name, (recipe_name, overrides) in variants().items():
            rows[name].append(measure(recipe_name, overrides, x, y, args.epochs))
            print(f"round {round_number + 1}  {name:42s} {json.dumps(rows[name][-1])}", flush=True)
    print(f"\n{'variant':42s} CPU ms/image   est. images/s on 2 idle cores")
    summary = {}
    for name, results in rows.items():
        cpu_ms = statistics.median(r["cpu_ms_per_image"] for r in results)
        summary[name] = cpu_ms
        print(f"{name:42s} {cpu_ms:8.2f}      {2000 / cpu_ms:8.0f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "rounds": rows, "cpu_ms_per_image": summary}, fh, indent=2)


if __name__ == "__main__":
    main()
