"""The private Keras, keras-tuner and TensorFlow APIs the course relies on, in one place.

Each is used because no public API does the job (named beside it). When a library upgrade
moves one, this is the only module to change; ``make test`` exercises every function here.

>>> is_worker_process(environ={})
False
>>> is_worker_process(environ={"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": "1",
...                            "KERASTUNER_TUNER_ID": "worker0"})
True
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import keras


def run_through_graph(model: keras.Model, inputs: list, call_fn: Callable) -> Any:
    """Walk a functional model's graph, calling ``call_fn(layer, *args, **kwargs)`` per layer.

    Keras' ``Functional._run_through_graph`` is how a functional model calls its layers; the
    transfer helpers use it to trace shapes and to rebuild a model at another input size,
    nested models and shared layers included (there is no public equivalent).
    """
    return model._run_through_graph(inputs, operation_fn=lambda op: op, call_fn=call_fn)


def has_graph(model: keras.Model) -> bool:
    """True for a functional model whose graph :func:`run_through_graph` can walk."""
    return hasattr(model, "_run_through_graph") and not isinstance(model, keras.Sequential)


def gradient_registry() -> dict | None:
    """TensorFlow's private registry of gradient functions, or None if it has moved.

    :mod:`tlcnn_helpers.memory` drops entries from it (tensorflow/tensorflow#97697).
    """
    try:
        from tensorflow.python.framework import ops
    except ImportError:  # another Keras backend: nothing of TensorFlow's to release
        return None
    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    if not isinstance(registry, dict):
        warnings.warn("TensorFlow's gradient registry was not found (its internals changed), "
                      "so memory may grow by each trained model's training step; restart the "
                      "process between long runs", RuntimeWarning, stacklevel=3)
        return None
    return registry


def is_worker_process(environ: Mapping[str, str] | None = None) -> bool:
    """True in a distributed search's worker: keras-tuner's ``has_chief_oracle()`` and not
    ``is_chief_oracle()`` (both read ``KERASTUNER_*`` from ``os.environ`` only)."""
    from keras_tuner.src.distribute import utils

    if environ is None:
        return utils.has_chief_oracle() and not utils.is_chief_oracle()
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(environ)
        return utils.has_chief_oracle() and not utils.is_chief_oracle()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def tuner_state_file(tuner: Any) -> str:
    """The file a keras-tuner Tuner saves its own state to (``Tuner._get_tuner_fname``)."""
    return tuner._get_tuner_fname()


def oracle_service() -> tuple[Any, Any, Any]:
    """keras-tuner's gRPC pieces for serving an oracle: ``(OracleServicer, protos, grpc stubs)``.

    keras-tuner starts its chief only inside ``tuner.search()``, which polls every 20 s and
    may stop before a late worker gets its stop signal; :mod:`tlcnn_helpers.distributed`
    serves the same servicer itself.
    """
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    return oracle_chief.OracleServicer, protos.get_service(), protos.get_service_grpc()


def hyperband_schedule(max_epochs: int, factor: int) -> list[dict[str, int]]:
    """The trials of one Hyperband iteration, in the order one process runs them.

    Each row: ``bracket``, ``round``, ``epochs`` (``tuner/epochs``: the epoch it trains up
    to), ``initial_epoch`` (``tuner/initial_epoch``: a promoted trial, round 1 on, goes on
    from its parent's weights there) and ``trained`` (the epochs it adds). The sizes come
    from ``HyperbandOracle``'s private ``_get_num_brackets``, ``_get_size`` and
    ``_get_epochs`` (no public API gives the plan); the most aggressive bracket runs first.

    >>> [(row["round"], row["trained"]) for row in hyperband_schedule(2, factor=2)]
    [(0, 1), (0, 1), (1, 1), (0, 2), (0, 2)]
    """
    import keras_tuner

    oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=max_epochs, factor=factor)
    rows = []
    for bracket in range(oracle._get_num_brackets() - 1, -1, -1):
        for rnd in range(bracket + 1):
            end = oracle._get_epochs(bracket, rnd)
            start = oracle._get_epochs(bracket, rnd - 1) if rnd else 0
            rows += [{"bracket": bracket, "round": rnd, "epochs": end, "initial_epoch": start,
                      "trained": end - start}] * oracle._get_size(bracket, rnd)
    return rows
