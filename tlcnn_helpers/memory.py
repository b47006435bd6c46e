"""Memory: training many models in one process without it growing (what ``clear_session`` misses).

Each ``fit`` traces a training step. Keras' TensorFlow optimizer sums the gradients across
replicas even when there is a single one, and TensorFlow implements that sum with
``tf.custom_gradient``, which registers a gradient function in TensorFlow's global gradient
registry under a new name (``CustomGradient-<n>``) on every trace. The registered function
refers to the traced graph, so the registry keeps every trained model's training step
alive for the life of the process: ``keras.backend.clear_session()`` and ``gc.collect()``
cannot free it. With the STL-10 tuning model that is about 18 MB per trained model.
(TensorFlow issue tensorflow/tensorflow#97697 describes the registry leak.)

:func:`custom_gradient_names` takes note of the registry before training;
:func:`release_custom_gradients` drops what was registered since (a gradient is only looked
up while its step is traced, so trained models keep working);
:func:`released_after_training` does both around a block and clears the Keras session.

>>> import keras, numpy as np
>>> with released_after_training() as released:
...     model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
...     model.compile(optimizer="sgd", loss="mse")
...     _ = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=1, verbose=0)
>>> released.count >= 1 and not custom_gradient_names() - released.before
True

Used by notebook 05 (memory across trials) and by :mod:`tlcnn_helpers.tuning`.
"""

from __future__ import annotations

import gc
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import keras

from .compat import gradient_registry

CUSTOM_GRADIENT_PREFIX = "CustomGradient-"


def custom_gradient_names() -> frozenset[str]:
    """Names of the custom gradients TensorFlow has registered so far in this process.

    >>> isinstance(custom_gradient_names(), frozenset)
    True
    """
    registry = gradient_registry()
    if registry is None:
        return frozenset()
    return frozenset(name for name in list(registry) if name.startswith(CUSTOM_GRADIENT_PREFIX))


def release_custom_gradients(registered_before: Collection[str]) -> int:
    """Drop the custom gradients registered since ``registered_before`` was taken.

    A registered gradient is only looked up while its training step is being traced, so
    models trained since then keep working, also for more training. Returns how many were
    dropped; the traced graphs of discarded models are freed at the next garbage
    collection (for example by ``keras.backend.clear_session()``).

    >>> before = custom_gradient_names()
    >>> release_custom_gradients(before)
    0
    """
    registry = gradient_registry()
    if registry is None:
        return 0
    keep = set(registered_before)
    dropped = [name for name in list(registry)
               if name.startswith(CUSTOM_GRADIENT_PREFIX) and name not in keep]
    for name in dropped:
        registry.pop(name, None)
    return len(dropped)


def live_traced_graphs() -> int:
    """How many traced TensorFlow graphs (``FuncGraph``) are alive in this process.

    It stays the same from one trained-and-released model to the next when nothing leaks.
    Runs the garbage collector first, so it takes a moment in a big process.

    >>> live_traced_graphs() >= 0
    True
    """
    gc.collect()
    return sum(type(obj).__name__ == "FuncGraph" for obj in gc.get_objects())


@dataclass
class Released:
    """What :func:`released_after_training` found: the registry before, and how many it dropped."""

    before: frozenset[str]
    count: int = 0


@contextmanager
def released_after_training() -> Iterator[Released]:
    """Train in the block; on leaving it, free what TensorFlow would keep of its models.

    Drops the custom gradients registered in the block, then clears the Keras session
    (which also runs the garbage collector). Models still referenced keep working.

    >>> with released_after_training() as released:
    ...     pass
    >>> released.count
    0
    """
    released = Released(before=custom_gradient_names())
    try:
        yield released
    finally:
        released.count = release_custom_gradients(released.before)
        keras.backend.clear_session()
