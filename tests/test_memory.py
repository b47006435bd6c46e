"""tlcnn_helpers.memory: models trained one after another in one process do not pile up."""

from __future__ import annotations

import keras
import numpy as np

from tlcnn_helpers import memory


def tiny_model() -> keras.Model:
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def train_once(x: np.ndarray, y: np.ndarray) -> None:
    tiny_model().fit(x, y, epochs=1, batch_size=4, verbose=0)


def test_fit_in_a_loop_keeps_no_traced_step_once_released():
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 8, 8, 3), dtype=np.float32), rng.integers(0, 3, 8)
    registered = memory.custom_gradient_names()

    # Without the release, TensorFlow keeps each fit's traced step (the bug worked around).
    keras.backend.clear_session()
    start = memory.live_traced_graphs()
    for _ in range(2):
        train_once(x, y)
        keras.backend.clear_session()
    kept = memory.live_traced_graphs() - start
    assert kept > 0, ("TensorFlow no longer keeps traced training steps after clear_session: "
                      "memory.py and its use in tuning.py can go")
    assert memory.release_custom_gradients(registered) >= 2
    assert memory.live_traced_graphs() == start

    # With it, three models in a row leave nothing behind.
    for _ in range(3):
        with memory.released_after_training() as released:
            train_once(x, y)
        assert released.count >= 1
        assert memory.live_traced_graphs() == start
    assert memory.custom_gradient_names() == registered


def test_a_model_trained_in_a_released_block_keeps_training():
    rng = np.random.default_rng(1)
    x = rng.random((32, 4), dtype=np.float32)
    y = x.sum(axis=1, keepdims=True)
    with memory.released_after_training() as released:
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert released.count >= 1
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=20, batch_size=8, verbose=0)  # same traced step
    model.fit(x, y, epochs=20, batch_size=5, verbose=0)  # a new trace for the short batch
    assert model.evaluate(x, y, verbose=0) < before / 4
