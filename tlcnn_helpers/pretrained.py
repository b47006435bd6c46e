"""Keras Applications as a pretrained base at the course's image sizes, with an offline fallback.

``keras.applications.MobileNetV2(include_top=False, input_shape=(96, 96, 3))`` builds the
convolutional base at 96 px with the same weights as at 224 px; :func:`pretrained_application`
adds what a course needs: it never hangs or crashes offline, it says where the weights came
from, and it checks the cache first.

>>> base = pretrained_application("MobileNetV2", (96, 96, 3), weights=None, alpha=0.35,
...                               verbose=False)
>>> base.weights, base.model.output_shape
(None, (None, 3, 3, 1280))

Used by notebook 06 (a pretrained base on STL-10).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from .errors import ModelInputError
from .settings import OFFLINE_ENV_VAR, offline_mode

APPLICATIONS = ("VGG16", "ResNet50", "MobileNetV2")
# Where Keras Applications download their weights from (checked before trying, so an
# offline machine falls back at once instead of hanging on a download).
WEIGHTS_HOST = "storage.googleapis.com"


@dataclass(frozen=True)
class PretrainedBase:
    """A Keras Applications model and where its weights came from."""

    model: Any
    weights: str | None  # "imagenet", or None (random initialisation)
    message: str


def _weights_file(name: str, alpha: float, rows: int) -> str:
    if name == "MobileNetV2":
        size = rows if rows in (96, 128, 160, 192, 224) else 224
        return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{size}_no_top.h5"
    return f"{name.lower()}_weights_tf_dim_ordering_tf_kernels_notop.h5"


def _reachable(host: str, timeout: float) -> bool:
    """Whether ``host:443`` accepts a connection within ``timeout`` seconds (DNS included)."""
    result: list[bool] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=attempt, daemon=True)  # DNS ignores socket timeouts
    worker.start()
    worker.join(timeout)
    return bool(result and result[0])


def keras_cache_dir() -> Path:
    """Where ``keras.utils.get_file`` keeps downloads (``$KERAS_HOME/models`` or ``~/.keras/models``).

    >>> keras_cache_dir().name
    'models'
    """
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def pretrained_application(name: str = "MobileNetV2", input_shape: Sequence[int] = (96, 96, 3),
                           *, weights: str | None = "imagenet", alpha: float = 1.0,
                           timeout: float = 3.0, host: str = WEIGHTS_HOST,
                           verbose: bool = True) -> PretrainedBase:
    """A Keras Applications base (``include_top=False``) with ImageNet weights if they can be had.

    The weights come from Keras' cache (``~/.keras/models``) or a download. If neither works
    (offline, the host unreachable within ``timeout`` seconds, a failed download) the base
    is built with ``weights=None`` and the message says so: never a crash, never a long hang.
    With ``TLCNN_OFFLINE`` set, only the cache is looked at: no connection is tried.

    >>> base = pretrained_application("MobileNetV2", (96, 96, 3), weights=None, alpha=0.35,
    ...                               verbose=False)
    >>> base.weights, base.model.output_shape
    (None, (None, 3, 3, 1280))
    """
    if name not in APPLICATIONS:
        raise ModelInputError(f"name={name!r}: use one of {', '.join(APPLICATIONS)}")
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or shape[2] != 3 or min(shape[:2]) < 32:
        raise ModelInputError(f"input_shape={shape}: Keras Applications take RGB images of at "
                              f"least 32x32, e.g. (96, 96, 3)")
    builder = getattr(keras.applications, name)
    options: dict[str, Any] = {"include_top": False, "input_shape": shape}
    if name == "MobileNetV2":
        options["alpha"] = alpha
    if weights is None:
        return PretrainedBase(builder(weights=None, **options), None,
                              f"{name}: random weights (weights=None)")
    cached = (keras_cache_dir() / _weights_file(name, alpha, shape[0])).exists()
    message = ""
    if not cached and offline_mode():
        message = (f"{name}: the {weights} weights are not in {keras_cache_dir()} and "
                   f"{OFFLINE_ENV_VAR} is set, so no download was tried")
        result = None
    elif cached or _reachable(host, timeout):
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(max(timeout, 30.0))  # a stalled download fails, not hangs
        try:
            model = builder(weights=weights, **options)
            message = f"{name}: {weights} weights loaded" + (" from the cache" if cached else "")
            result = PretrainedBase(model, weights, message)
        except Exception as err:  # noqa: BLE001 - any download failure means: fall back
            message = f"{name}: could not get the {weights} weights ({type(err).__name__}: {err})"
            result = None
        finally:
            socket.setdefaulttimeout(previous)
    else:
        message = (f"{name}: the {weights} weights are not in {keras_cache_dir()} and {host} "
                   f"cannot be reached (offline?)")
        result = None
    if result is None:
        message += ("; using weights=None (random initialisation) instead, so its features are "
                    "not pretrained. Run once online (or in Colab) to download and cache them.")
        result = PretrainedBase(builder(weights=None, **options), None, message)
    if verbose:
        print(result.message)
    return result
