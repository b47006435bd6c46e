"""How fast the course's NumPy conv2d and pooling are, next to Keras' layers on the same CPU.

    python benchmarks/ops_speed.py

The NumPy versions exist to be read, not to be fast; this shows by how much they lose, on
one batch of CIFAR-sized feature maps (median of several repeats, after one warm-up call).
"""

from __future__ import annotations

import statistics
import time

import keras
import numpy as np

from tlcnn_helpers import convolution, pooling


def median_seconds(function, repeats: int = 7) -> float:
    function()  # warm-up: tracing, allocation
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    rng = np.random.default_rng(0)
    batch = rng.random((64, 32, 32, 16)).astype("float32")
    conv = keras.layers.Conv2D(32, 3, padding="same")
    conv.build(batch.shape)
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in conv.weights)
    cases = {
        "conv2d 64x32x32x16 -> 32 filters 3x3, same": (
            lambda: convolution.conv2d(batch, kernel, bias, padding="same"),
            lambda: keras.ops.convert_to_numpy(conv(batch))),
        "max pool 2x2 on 64x32x32x16": (
            lambda: pooling.max_pool2d(batch, 2),
            lambda: keras.ops.convert_to_numpy(keras.layers.MaxPooling2D(2)(batch))),
        "average pool 2x2 on 64x32x32x16": (
            lambda: pooling.average_pool2d(batch, 2),
            lambda: keras.ops.convert_to_numpy(keras.layers.AveragePooling2D(2)(batch))),
    }
    print("| operation | NumPy (tlcnn_helpers.convolution, .pooling) | Keras (eager) | ratio |")
    print("|---|---|---|---|")
    for name, (numpy_call, keras_call) in cases.items():
        mine, theirs = median_seconds(numpy_call), median_seconds(keras_call)
        print(f"| {name} | {mine * 1000:.1f} ms | {theirs * 1000:.1f} ms | {mine / theirs:.1f}x |")


if __name__ == "__main__":
    main()
