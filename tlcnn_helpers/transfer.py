"""Moving a trained image model to another input size, keeping its learned weights.

A convolution's weights do not depend on the image size; a ``Flatten`` followed by ``Dense``
does, and a built Keras model has fixed shapes throughout. So the way to "change the input
layer" is to build the same architecture again at the new size and copy every weight whose
shape still fits:

* :func:`with_input_shape` rebuilds any Sequential or functional model (nested models and
  Keras Applications included) for a new ``(height, width, channels)`` and reports which
  layers were copied (bit-identical) and which had to be re-initialised.
* :func:`make_size_agnostic` replaces ``Flatten`` by global pooling and the input by
  ``(None, None, channels)``, so one set of weights runs on any image large enough; the
  dense head is kept where its shapes allow, otherwise folded (see :func:`fold_flatten_kernel`)
  and, given labelled images, re-fitted (:func:`fit_head`).
* :func:`recalibrate_batchnorm` recomputes BatchNorm's moving statistics from unlabelled
  images at the new resolution (the train-test resolution discrepancy of Touvron et al.,
  2019, "Fixing the train-test resolution discrepancy").
* :func:`with_resizing` is the baseline: resize the new images to the old size.
* :func:`pretrained_application` builds a Keras Applications base with ImageNet weights
  when they can be had, and falls back to ``weights=None`` with a clear message offline.

Bad input raises :class:`~tlcnn_helpers.errors.ModelInputError` naming the fix: an input
too small for the model's pooling, grayscale images for an RGB model, a model that does not
take images.

>>> import keras
>>> small = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, name="conv"),
...                           keras.layers.MaxPooling2D(), keras.layers.Flatten(),
...                           keras.layers.Dense(2, name="head")])
>>> big, report = with_input_shape(small, (64, 64, 3))
>>> big.input_shape, report.copied, report.reinitialised
((None, 64, 64, 3), ['conv'], ['head'])
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .errors import ModelInputError
from .paths import OFFLINE_ENV_VAR, offline_mode

POOLINGS = ("avg", "max")
APPLICATIONS = ("VGG16", "ResNet50", "MobileNetV2")
# Where Keras Applications download their weights from (checked before trying, so an
# offline machine falls back at once instead of hanging on a download).
WEIGHTS_HOST = "storage.googleapis.com"


# ---------------------------------------------------------------------------- reports
@dataclass(frozen=True)
class LayerTransfer:
    """What happened to one layer's weights: ``copied``, ``folded`` or ``re-initialised``."""

    layer: str
    kind: str
    status: str
    old_shapes: tuple[tuple[int, ...], ...]
    new_shapes: tuple[tuple[int, ...], ...]

    @property
    def parameters(self) -> int:
        return int(sum(np.prod(s) for s in self.new_shapes))


@dataclass
class TransferReport:
    """The copy report of :func:`with_input_shape` and :func:`make_size_agnostic`.

    ``str(report)`` is a table of the layers that have weights, then a one-line summary.
    """

    model: str
    old_input_shape: tuple
    new_input_shape: tuple
    layers: list[LayerTransfer] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # e.g. "flatten -> GlobalAveragePooling2D"
    notes: list[str] = field(default_factory=list)

    def _named(self, status: str) -> list[str]:
        return [row.layer for row in self.layers if row.status == status]

    @property
    def copied(self) -> list[str]:
        return self._named("copied")

    @property
    def folded(self) -> list[str]:
        return self._named("folded")

    @property
    def reinitialised(self) -> list[str]:
        return self._named("re-initialised")

    @property
    def copied_fraction(self) -> float:
        """Share of the new model's parameters that were copied (folded counts as copied)."""
        total = sum(row.parameters for row in self.layers)
        kept = sum(row.parameters for row in self.layers if row.status != "re-initialised")
        return kept / total if total else 1.0

    def summary(self) -> str:
        return (f"{self.model}: {_shape_text(self.old_input_shape)} -> "
                f"{_shape_text(self.new_input_shape)}; {len(self.copied)} layers copied, "
                f"{len(self.folded)} folded, {len(self.reinitialised)} re-initialised "
                f"({self.copied_fraction:.1%} of the parameters carried over)")

    def __str__(self) -> str:
        width = max([len("layer")] + [len(r.layer) for r in self.layers])
        kind_width = max([len("type")] + [len(r.kind) for r in self.layers])
        lines = [f"{'layer':<{width}}  {'type':<{kind_width}}  {'status':<14}  weights (old -> new)"]
        for r in self.layers:
            old = ", ".join(map(_shape_text, r.old_shapes))
            new = ", ".join(map(_shape_text, r.new_shapes))
            change = old if old == new else f"{old} -> {new}"
            lines.append(f"{r.layer:<{width}}  {r.kind:<{kind_width}}  {r.status:<14}  {change}")
        lines += [f"replaced: {item}" for item in self.replaced]
        lines += [f"note: {note}" for note in self.notes]
        lines.append(self.summary())
        return "\n".join(lines)


class TransferResult(NamedTuple):
    """A rebuilt model and its copy report; unpacks as ``model, report``."""

    model: Any
    report: TransferReport


def _shape_text(shape: Sequence) -> str:
    return "x".join("?" if d is None else str(d) for d in shape)


# ---------------------------------------------------------------------------- checks
_SPATIAL_LAYER_NAMES = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose",
                        "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
                        "GlobalMaxPooling2D")


def _spatial_layer_types() -> tuple[type, ...]:
    from keras import layers

    return tuple(getattr(layers, name) for name in _SPATIAL_LAYER_NAMES)


def _is_model(layer: Any) -> bool:
    import keras

    return isinstance(layer, keras.Model)


def _walk_layers(model: Any, prefix: str = ""):
    """Every non-model layer with its path (``outer/inner``), nested models descended into."""
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        if _is_model(layer):
            yield from _walk_layers(layer, prefix=f"{path}/")
        else:
            yield path, layer


def image_input_shape(model: Any, *, require_convolution: bool = True) -> tuple:
    """The ``(height, width, channels)`` a model takes, or a clear error if it takes no images.

    >>> import keras
    >>> image_input_shape(keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3)]))
    (8, 8, 1)
    """
    import keras

    if not isinstance(model, keras.Model):
        raise ModelInputError(f"expected a Keras model, got {type(model).__name__}: load it with "
                              f"keras.models.load_model(path) first")
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ModelInputError(
            f"model {model.name!r} has not been built, so its input shape is unknown: give it "
            f"an input, e.g. keras.Sequential([keras.Input((32, 32, 3)), ...])")
    if len(inputs) != 1:
        raise ModelInputError(f"model {model.name!r} has {len(inputs)} inputs: only models with one "
                              f"image input can be moved to another image size")
    shape = tuple(inputs[0].shape)
    if len(shape) != 4:
        raise ModelInputError(
            f"model {model.name!r} takes inputs of shape {shape}, not images "
            f"(batch, height, width, channels): it is not an image model, so there is no image "
            f"size to change. Use a model whose first layers are Conv2D/pooling layers.")
    if require_convolution and not any(isinstance(layer, _spatial_layer_types())
                                       for _, layer in _walk_layers(model)):
        raise ModelInputError(
            f"model {model.name!r} has no convolution or pooling layer: all its weights depend "
            f"on the image size, so none would carry over. It is not a convolutional image "
            f"model; train a new one at the new size instead.")
    return shape[1:]


def _parse_input_shape(input_shape: Sequence, old: tuple, allow_none: bool = False) -> tuple:
    try:
        shape = tuple(None if d is None else int(d) for d in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) == 2:  # (height, width): keep the channels
        shape = (*shape, old[2])
    valid = (len(shape) == 3 and shape[2] is not None and shape[2] > 0
             and all((d is None and allow_none) or (d is not None and d > 0) for d in shape[:2]))
    if not valid:
        raise ModelInputError(
            f"input_shape={tuple(input_shape) if isinstance(input_shape, Sequence) else input_shape!r}"
            f" is not (height, width, channels) with positive integers, e.g. (96, 96, 3)")
    return shape


def _check_channels(model: Any, channels: int, old: tuple, what: str) -> None:
    expected = old[2]
    if expected is None or channels == expected:
        return
    if expected == 3 and channels == 1:
        fix = ("grayscale images into an RGB model: convert the images to 3 channels with "
               "tf.image.grayscale_to_rgb(images) (or np.repeat(images, 3, axis=-1)) and keep "
               "3 channels")
    elif expected == 1 and channels == 3:
        fix = ("RGB images into a grayscale model: convert them with "
               "tf.image.rgb_to_grayscale(images) and keep 1 channel")
    else:
        fix = f"convert the images to {expected} channels"
    raise ModelInputError(
        f"{what} has {channels} channel(s) but model {model.name!r} was trained on {expected}: "
        f"the first layer's weights are per input channel, so they cannot be copied. {fix[0].upper()}{fix[1:]}.")


class _ShapeFailure(Exception):
    def __init__(self, layer: str, kind: str, input_shapes: list, cause: Exception):
        super().__init__(f"{layer}: {cause}")
        self.layer, self.kind, self.input_shapes, self.cause = layer, kind, input_shapes, cause


def _trace(model: Any, x: Any, prefix: str = "", inputs_seen: dict | None = None) -> Any:
    """Propagate a symbolic batch through the model's graph without building anything.

    ``inputs_seen`` (if given) collects each layer's input shapes by ``id(layer)``.
    """
    from keras import KerasTensor

    def step(op: Any, *args: Any, **kwargs: Any) -> Any:
        path = f"{prefix}{getattr(op, 'name', type(op).__name__)}"
        if _is_model(op):
            return _trace(op, args[0], prefix=f"{path}/", inputs_seen=inputs_seen)
        shapes = [tuple(t.shape) for t in args if isinstance(t, KerasTensor)]
        for item in args:  # merge layers (Add, Concatenate) take a list
            if isinstance(item, (list, tuple)):
                shapes += [tuple(t.shape) for t in item if isinstance(t, KerasTensor)]
        if inputs_seen is not None:
            inputs_seen[id(op)] = shapes
        try:
            out = op.compute_output_spec(*args, **kwargs)
        except Exception as err:  # Keras raises ValueError (sizes) or TypeError (odd ops)
            raise _ShapeFailure(path, type(op).__name__, shapes, err) from err
        for tensor in (out if isinstance(out, (list, tuple)) else [out]):
            dims = tuple(getattr(tensor, "shape", ()))
            if len(dims) == 4 and any(d is not None and d <= 0 for d in dims[1:3]):
                raise _ShapeFailure(path, type(op).__name__, shapes,
                                    ValueError(f"output would be {_shape_text(dims[1:])}"))
        return out

    if hasattr(model, "_run_through_graph") and not _is_sequential(model):
        return model._run_through_graph([x], operation_fn=lambda op: op, call_fn=step)
    for layer in model.layers:
        x = step(layer, x)
    return x


def _is_sequential(model: Any) -> bool:
    import keras

    return isinstance(model, keras.Sequential)


def _fits(model: Any, height: int, width: int, channels: int) -> bool:
    from keras import KerasTensor

    try:
        _trace(model, KerasTensor((None, height, width, channels), dtype=model.inputs[0].dtype))
    except _ShapeFailure:
        return False
    return True


def minimum_input_size(model: Any, channels: int | None = None) -> tuple[int, int]:
    """The smallest ``(height, width)`` for which no layer's output shrinks to zero.

    Found by propagating symbolic shapes (nothing is built, so it is quick even for ResNet50).

    >>> import keras
    >>> m = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3),
    ...                       keras.layers.MaxPooling2D(), keras.layers.MaxPooling2D()])
    >>> minimum_input_size(m)
    (6, 6)
    """
    old = image_input_shape(model, require_convolution=False)
    channels = channels or old[2]
    big = 4096
    for d in old[:2]:
        if d:
            big = max(big, d)
    if not _fits(model, big, big, channels):
        raise ModelInputError(f"model {model.name!r} cannot take {big}x{big} images either: "
                              f"its shapes do not depend on the image size alone")

    def smallest(fit: Callable[[int], bool]) -> int:
        low, high = 1, big  # fit(high) is True; monotone for conv/pool stacks
        while low < high:
            mid = (low + high) // 2
            if fit(mid):
                high = mid
            else:
                low = mid + 1
        return low

    height = smallest(lambda h: _fits(model, h, big, channels))
    width = smallest(lambda w: _fits(model, big, w, channels))
    return height, width


def check_input_shape(model: Any, input_shape: Sequence, *, allow_none: bool = False,
                      require_convolution: bool = True) -> tuple:
    """Validate ``input_shape`` for ``model``; returns it as ``(height, width, channels)``.

    Raises :class:`ModelInputError` for a shape that is not (height, width, channels), a
    channel count the first layer cannot take, or an image too small for the model's pooling
    (naming the layer and the smallest size that works).

    >>> import keras
    >>> m = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.MaxPooling2D(8)])
    >>> check_input_shape(m, (64, 64, 3))
    (64, 64, 3)
    """
    from keras import KerasTensor

    old = image_input_shape(model, require_convolution=require_convolution)
    shape = _parse_input_shape(input_shape, old, allow_none=allow_none)
    _check_channels(model, shape[2], old, f"input_shape={shape}")
    if None in shape[:2]:
        return shape
    try:
        _trace(model, KerasTensor((None, *shape), dtype=model.inputs[0].dtype))
    except _ShapeFailure as failure:
        min_h, min_w = minimum_input_size(model, shape[2])  # only on failure: a few traces
        if shape[0] >= min_h and shape[1] >= min_w:
            raise ModelInputError(
                f"model {model.name!r} cannot take input_shape={shape}: layer {failure.layer!r} "
                f"({failure.kind}) fails on inputs {failure.input_shapes}: {failure.cause}") from None
        got = ", ".join(_shape_text(s[1:]) for s in failure.input_shapes) or "?"
        raise ModelInputError(
            f"input_shape={shape} is too small for model {model.name!r}: layer {failure.layer!r} "
            f"({failure.kind}) would get a {got} input and shrink it to nothing. The smallest "
            f"size that works is {min_h}x{min_w} pixels: use at least "
            f"input_shape=({min_h}, {min_w}, {shape[2]}), or resize the images up "
            f"(keras.layers.Resizing).") from None
    return shape


def check_images(model: Any, images: np.ndarray, name: str = "images") -> None:
    """Check that a batch of images suits ``model`` (rank, channels, size), else explain the fix.

    >>> import keras
    >>> m = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3),
    ...                       keras.layers.GlobalAveragePooling2D()])
    >>> check_images(m, np.zeros((2, 8, 8, 1)))
    Traceback (most recent call last):
    ...
    tlcnn_helpers.errors.ModelInputError: images has 1 channel(s) but model ...
    """
    old = image_input_shape(model, require_convolution=False)
    shape = tuple(np.shape(images))
    if len(shape) == 3 and old[2] in (1, 3):
        hint = (" They look like grayscale images without a channel axis: add it with "
                "images[..., None]" + (" and convert to RGB with np.repeat(images[..., None], 3, "
                                       "axis=-1)" if old[2] == 3 else "") + ".")
        raise ModelInputError(f"{name} has shape {shape}, not (count, height, width, "
                              f"channels).{hint}")
    if len(shape) != 4:
        raise ModelInputError(f"{name} has shape {shape}, not (count, height, width, channels)")
    _check_channels(model, shape[3], old, name)
    if None not in old[:2] and tuple(shape[1:3]) != tuple(old[:2]):
        raise ModelInputError(
            f"{name} are {shape[1]}x{shape[2]} but model {model.name!r} takes "
            f"{_shape_text(old[:2])} images: move it with with_input_shape(model, "
            f"({shape[1]}, {shape[2]}, {shape[3]})), make_size_agnostic(model), or resize "
            f"the images (with_resizing)")
    if None in old[:2]:  # a size-agnostic model: are the images large enough?
        check_input_shape(model, shape[1:], require_convolution=False)


# ---------------------------------------------------------------------------- rebuilding
def _clone_layer(layer: Any) -> Any:
    return layer.__class__.from_config(layer.get_config())


def _rebuild(model: Any, input_shape: tuple, replace: Callable[[Any], Any | None],
             pairs: list, cache: dict) -> Any:
    """The same architecture at ``input_shape``; ``pairs`` collects (old, new) layers."""
    import keras

    def clone(layer: Any, x_shape: tuple) -> Any:
        if id(layer) in cache:  # a shared layer stays shared
            return cache[id(layer)]
        if _is_model(layer):
            new = _rebuild(layer, x_shape, replace, pairs, cache)
        else:
            new = replace(layer) or _clone_layer(layer)
            pairs.append((layer, new))
        cache[id(layer)] = new
        return new

    old_input = model.inputs[0]
    inputs = keras.Input(shape=input_shape, dtype=old_input.dtype)
    if _is_sequential(model):
        x, new_layers = inputs, []
        for layer in model.layers:
            new = clone(layer, tuple(x.shape[1:]))
            x = new(x)
            new_layers.append(new)
        rebuilt = keras.Sequential([keras.Input(shape=input_shape, dtype=old_input.dtype),
                                    *new_layers], name=model.name)
    else:
        def call(op: Any, *args: Any, **kwargs: Any) -> Any:
            if not isinstance(op, keras.layers.Layer):  # a stateless keras.ops operation
                return op(*args, **kwargs)
            first = args[0][0] if isinstance(args[0], (list, tuple)) else args[0]
            return clone(op, tuple(first.shape[1:]))(*args, **kwargs)

        # The graph walk keras.models.clone_model uses; walking it here gives each nested
        # model the concrete shape it is called on (clone_model would keep its old input).
        outputs = model._run_through_graph([inputs], operation_fn=lambda op: op, call_fn=call)
        rebuilt = keras.Model(inputs, outputs, name=model.name)
    if not model.trainable:
        rebuilt.trainable = False
    return rebuilt


def _copy_weights(pairs: list, fold: Callable[[Any, Any], bool] | None = None
                  ) -> list[LayerTransfer]:
    rows = []
    seen: set[int] = set()
    for old, new in pairs:
        if id(new) in seen or not old.weights and not new.weights:
            continue
        seen.add(id(new))
        old_shapes = tuple(tuple(w.shape) for w in old.weights)
        new_shapes = tuple(tuple(w.shape) for w in new.weights)
        if old_shapes == new_shapes:
            for source, target in zip(old.weights, new.weights, strict=True):
                target.assign(source)
            status = "copied"
        elif fold is not None and fold(old, new):
            status = "folded"
        else:
            status = "re-initialised"  # the whole layer: a bias without its kernel means nothing
        rows.append(LayerTransfer(new.name, type(new).__name__, status, old_shapes, new_shapes))
    return rows


def with_input_shape(model: Any, input_shape: Sequence) -> TransferResult:
    """A new model of the same architecture for ``input_shape``, with every weight that fits.

    Works on Sequential and functional models, nested ones and Keras Applications.
    Weights whose shapes do not depend on the image size (convolutions, BatchNorm, a Dense
    after global pooling) are copied bit for bit; a layer whose shapes changed (the Dense
    after ``Flatten``) is re-initialised, and the report says so.

    >>> import keras
    >>> base = keras.applications.MobileNetV2(alpha=0.35, weights=None, input_shape=(96, 96, 3),
    ...                                       classes=9)
    >>> moved, report = with_input_shape(base, (128, 128, 3))
    >>> moved.output_shape, report.reinitialised
    ((None, 9), [])
    """
    old = image_input_shape(model)
    shape = check_input_shape(model, input_shape, allow_none=True)
    pairs: list = []
    try:
        rebuilt = _rebuild(model, shape, lambda layer: None, pairs, {})
    except ValueError as err:  # e.g. Flatten -> Dense with an unknown image size
        raise ModelInputError(
            f"model {model.name!r} cannot be built for input_shape={shape}: {err}. A model with "
            f"Flatten needs a fixed image size; use make_size_agnostic(model) for any size."
        ) from None
    report = TransferReport(model.name, old, shape, _copy_weights(pairs))
    if report.reinitialised:
        report.notes.append(
            "re-initialised layers have new random weights: fine-tune the model, or use "
            "make_size_agnostic(model) to keep the dense head")
    return TransferResult(rebuilt, report)


def copy_model(model: Any) -> Any:
    """An independent copy of an image model (same input shape, every weight copied).

    >>> import keras
    >>> m = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3)])
    >>> twin = copy_model(m)
    >>> twin is not m and twin.input_shape == m.input_shape
    True
    """
    return with_input_shape(model, image_input_shape(model)).model


def fold_flatten_kernel(kernel: np.ndarray, feature_shape: Sequence[int]) -> np.ndarray:
    """The Dense kernel that, after global pooling, matches ``Flatten -> Dense`` on flat maps.

    ``Flatten`` on a (h, w, c) map feeds ``h*w*c`` numbers to the Dense layer; global pooling
    feeds ``c``. Summing the kernel's rows over the h*w positions gives the kernel for which
    both agree exactly whenever each channel is constant over the map, a good starting point
    that :func:`fit_head` then refines.

    >>> fold_flatten_kernel(np.arange(8.0).reshape(4, 2), (2, 1, 2)).tolist()
    [[4.0, 6.0], [8.0, 10.0]]
    """
    h, w, c = (int(d) for d in feature_shape)
    kernel = np.asarray(kernel)
    if kernel.shape[0] != h * w * c:
        raise ModelInputError(f"kernel with {kernel.shape[0]} rows cannot follow a flattened "
                              f"{h}x{w}x{c} map ({h * w * c} values)")
    return kernel.reshape(h, w, c, *kernel.shape[1:]).sum(axis=(0, 1))


def make_size_agnostic(model: Any, pooling: str = "avg", *,
                       refit_on: tuple[np.ndarray, np.ndarray] | None = None,
                       refit_epochs: int = 1, batch_size: int = 64,
                       learning_rate: float = 1e-3, seed: int = 0) -> TransferResult:
    """The model with ``Flatten`` replaced by global pooling and input ``(None, None, channels)``.

    One set of weights then runs on any image large enough (see :func:`minimum_input_size`).
    Every convolution and BatchNorm weight is copied. The Dense layer that followed
    ``Flatten`` keeps its weights if its shapes allow (the map was 1x1), otherwise its kernel
    is folded (:func:`fold_flatten_kernel`) and, when ``refit_on=(images, labels)`` is given,
    the layers after the pooling are re-fitted on those labelled images for ``refit_epochs``.

    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, padding="same"),
    ...                       keras.layers.MaxPooling2D(4), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2, name="head")])
    >>> agnostic, report = make_size_agnostic(m)
    >>> agnostic.input_shape, report.folded, agnostic.predict(np.zeros((1, 40, 24, 3)), verbose=0).shape
    ((None, None, None, 3), ['head'], (1, 2))
    """
    from keras import layers

    if pooling not in POOLINGS:
        raise ModelInputError(f"pooling={pooling!r}: use 'avg' (global average) or 'max'")
    old = image_input_shape(model)
    # The shapes inside the model's own graph (a layer called elsewhere too has other inputs).
    from keras import KerasTensor

    seen: dict[int, list] = {}
    _trace(model, KerasTensor((None, *old), dtype=model.inputs[0].dtype), inputs_seen=seen)
    flatten_shapes: dict[int, tuple] = {}
    for _, layer in _walk_layers(model):
        if isinstance(layer, layers.Flatten):
            in_shape = seen[id(layer)][0] if seen.get(id(layer)) else tuple(layer.input.shape)
            if len(in_shape) != 4:
                raise ModelInputError(f"layer {layer.name!r} flattens a {in_shape} tensor, not "
                                      f"an image feature map: cannot replace it by pooling")
            flatten_shapes[id(layer)] = in_shape[1:]
    pool_class = layers.GlobalAveragePooling2D if pooling == "avg" else layers.GlobalMaxPooling2D
    replaced: list[str] = []
    new_flatten: dict[int, tuple] = {}

    def replace(layer: Any) -> Any | None:
        if id(layer) not in flatten_shapes:
            return None
        new = pool_class(name=f"global_{pooling}_pool" + ("" if not replaced else f"_{len(replaced)}"))
        replaced.append(f"{layer.name} (Flatten of {_shape_text(flatten_shapes[id(layer)])}) -> "
                        f"{new.name} ({pool_class.__name__})")
        new_flatten[id(new)] = flatten_shapes[id(layer)]
        return new

    pairs: list = []
    rebuilt = _rebuild(model, (None, None, old[2]), replace, pairs, {})
    def fold(old_layer: Any, new_layer: Any) -> bool:
        # A Dense fed by a replaced Flatten: its kernel has h*w*c rows before, c after.
        if not isinstance(new_layer, layers.Dense) or len(old_layer.weights) != len(new_layer.weights):
            return False
        rows_before, rows_after = old_layer.kernel.shape[0], new_layer.kernel.shape[0]
        feature = next((f for f in new_flatten.values()
                        if f[2] == rows_after and int(np.prod(f)) == rows_before), None)
        if feature is None:
            return False
        kernel = fold_flatten_kernel(old_layer.kernel.numpy(), feature)
        new_layer.kernel.assign(kernel)
        for source, target in zip(old_layer.weights[1:], new_layer.weights[1:], strict=True):
            target.assign(source)  # the bias
        return True

    report = TransferReport(model.name, old, (None, None, old[2]), _copy_weights(pairs, fold),
                            replaced=replaced)
    changed = report.folded or report.reinitialised
    if changed and refit_on is not None:
        fit_head(rebuilt, *refit_on, epochs=refit_epochs, batch_size=batch_size,
                 learning_rate=learning_rate, seed=seed)
        report.notes.append(f"head re-fitted for {refit_epochs} epoch(s) on "
                            f"{len(refit_on[1])} labelled images")
    elif changed:
        report.notes.append("the head's shapes changed: re-fit it with fit_head(model, images, "
                            "labels) or pass refit_on=(images, labels)")
    return TransferResult(rebuilt, report)


# ---------------------------------------------------------------------------- training
def _loss_for(model: Any) -> Any:
    import keras

    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    from_logits = getattr(activation, "__name__", "") != "softmax"
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def _compile(model: Any, learning_rate: float) -> None:
    import keras

    # No XLA: compiling costs more than it saves on the few epochs these helpers run.
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=_loss_for(model),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                  jit_compile=False)


def _head_start(model: Any) -> int:
    """Index in ``model.layers`` of the first layer after the last global pooling layer."""
    from keras import layers

    pools = (layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D, layers.Flatten)
    found = [i for i, layer in enumerate(model.layers) if isinstance(layer, pools)]
    if not found:
        raise ModelInputError(f"model {model.name!r} has no Flatten or global pooling layer at its "
                              f"top level, so its head cannot be told apart from its base")
    return found[-1] + 1


def _checked_labels(model: Any, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The labels as an array, once images fit ``model`` and there is one integer per image."""
    check_images(model, images)
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(images):
        raise ModelInputError(f"labels must be one integer per image: got shape {labels.shape} "
                              f"for {len(images)} images")
    return labels


def _batchnorm_layers(model: Any) -> list[tuple[str, Any]]:
    """``(path, layer)`` of every BatchNormalization layer, nested ones included."""
    from keras import layers

    return [(path, layer) for path, layer in _walk_layers(model)
            if isinstance(layer, layers.BatchNormalization)]


def _fit(model: Any, images: np.ndarray, labels: np.ndarray, *, epochs: int, batch_size: int,
         learning_rate: float, seed: int) -> Any:
    import keras

    labels = _checked_labels(model, images, labels)
    keras.utils.set_random_seed(seed)
    _compile(model, learning_rate)
    return model.fit(images, labels, epochs=epochs, batch_size=batch_size, shuffle=True,
                     verbose=0)


def fit_classifier(model: Any, images: np.ndarray, labels: np.ndarray, *, epochs: int = 1,
                   batch_size: int = 64, learning_rate: float = 1e-3, seed: int = 0) -> Any:
    """Train every trainable layer on integer ``labels`` with Adam (e.g. a model from scratch).

    Uses the same loss, optimizer and seeding as :func:`fit_head` and :func:`fine_tune`,
    so a from-scratch baseline and a fine-tuned model are trained alike.

    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3),
    ...                       keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    >>> len(fit_classifier(m, np.ones((4, 8, 8, 3)), np.array([0, 1, 0, 1]), epochs=2).history["loss"])
    2
    """
    return _fit(model, images, labels, epochs=epochs, batch_size=batch_size,
                learning_rate=learning_rate, seed=seed)


def fit_head(model: Any, images: np.ndarray, labels: np.ndarray, *, epochs: int = 1,
             batch_size: int = 64, learning_rate: float = 1e-3, seed: int = 0) -> Any:
    """Train only the layers after the (last) Flatten or global pooling; the rest stay frozen.

    ``labels`` are integers; the model is compiled with sparse categorical cross-entropy
    (from logits unless the last layer is a softmax). Trainable flags are restored after.

    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3),
    ...                       keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    >>> before = m.layers[0].kernel.numpy().copy()
    >>> _ = fit_head(m, np.ones((4, 8, 8, 3)), np.array([0, 1, 0, 1]))
    >>> bool((m.layers[0].kernel.numpy() == before).all())
    True
    """
    start = _head_start(model)
    flags = [layer.trainable for layer in model.layers]
    try:
        for i, layer in enumerate(model.layers):
            layer.trainable = i >= start and flags[i]
        return _fit(model, images, labels, epochs=epochs, batch_size=batch_size,
                    learning_rate=learning_rate, seed=seed)
    finally:
        for layer, flag in zip(model.layers, flags, strict=True):
            layer.trainable = flag


def fine_tune(model: Any, images: np.ndarray, labels: np.ndarray, *, head_epochs: int = 1,
              finetune_epochs: int = 1, batch_size: int = 64, learning_rate: float = 1e-3,
              finetune_learning_rate: float = 1e-4, seed: int = 0) -> list[Any]:
    """Fine-tune in two stages: the head with the base frozen, then everything at a lower rate.

    The usual recipe (Keras guide "Transfer learning & fine-tuning"): freezing first keeps
    the large gradients of a fresh head from wrecking the copied weights. BatchNorm layers
    stay in inference mode in the second stage too, as that guide recommends.
    Returns the two Keras histories.

    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3),
    ...                       keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    >>> len(fine_tune(m, np.ones((4, 8, 8, 3)), np.array([0, 1, 0, 1])))
    2
    """
    histories = [fit_head(model, images, labels, epochs=head_epochs, batch_size=batch_size,
                          learning_rate=learning_rate, seed=seed)] if head_epochs else []
    norms = _batchnorm_layers(model)
    flags = [layer.trainable for _, layer in norms]
    try:
        for _, layer in norms:
            layer.trainable = False
        if finetune_epochs:
            histories.append(_fit(model, images, labels, epochs=finetune_epochs,
                                  batch_size=batch_size, learning_rate=finetune_learning_rate,
                                  seed=seed + 1))
    finally:
        for (_, layer), flag in zip(norms, flags, strict=True):
            layer.trainable = flag
    return histories


# ---------------------------------------------------------------------------- BatchNorm
@dataclass(frozen=True)
class Recalibration:
    """What :func:`recalibrate_batchnorm` changed."""

    layers: tuple[str, ...]
    images: int
    mean_shift: float  # mean |new - old| of the moving means, over all channels and layers

    def __str__(self) -> str:
        return (f"re-calibrated {len(self.layers)} BatchNorm layers on {self.images} images "
                f"(moving means moved by {self.mean_shift:.3g} on average)")


def recalibrate_batchnorm(model: Any, images: np.ndarray, *, batch_size: int = 64) -> Recalibration:
    """Recompute every BatchNorm layer's moving mean and variance from ``images`` (in place).

    The images need no labels: they are the new resolution's unlabelled examples. Each
    BatchNorm normalises with the statistics of its batch, as in training (so later layers
    see what they would see in training), while its inputs' exact mean and variance over all
    ``images`` are accumulated; they then replace the moving statistics. Nothing else
    changes: Dropout and augmentation stay in inference mode, weights are untouched. This is
    the "precise BatchNorm" fix for the train-test resolution discrepancy (Touvron et al.
    2019). Copy the model first (:func:`with_input_shape` at the same size, or
    :func:`make_size_agnostic`) to keep the original statistics.

    >>> import keras
    >>> m = keras.Sequential([keras.Input((None, None, 3)), keras.layers.BatchNormalization()])
    >>> print(recalibrate_batchnorm(m, np.full((4, 8, 8, 3), 5.0)))
    re-calibrated 1 BatchNorm layers on 4 images (moving means moved by 5 on average)
    >>> m.layers[0].moving_mean.numpy().tolist()
    [5.0, 5.0, 5.0]
    """
    from keras import ops

    check_images(model, images)
    if len(images) == 0:
        raise ModelInputError("images is empty: recalibration needs at least one batch of images")
    norms = _batchnorm_layers(model)
    if not norms:
        raise ModelInputError(f"model {model.name!r} has no BatchNormalization layer to re-calibrate")
    sums: dict[int, list] = {id(layer): [0.0, 0.0, 0] for _, layer in norms}

    def collecting(layer: Any) -> Callable:
        def call(inputs: Any, training: Any = None, mask: Any = None) -> Any:
            x = ops.cast(inputs, "float32")
            rank = len(x.shape)
            axis = layer.axis % rank
            axes = [i for i in range(rank) if i != axis]
            mean, variance = ops.moments(x, axes=axes)
            values = np.moveaxis(ops.convert_to_numpy(x).astype("float64"), axis, -1)
            values = values.reshape(-1, values.shape[-1])
            total = sums[id(layer)]
            total[0] = total[0] + values.sum(axis=0)
            total[1] = total[1] + np.square(values).sum(axis=0)
            total[2] += len(values)
            out = ops.batch_normalization(
                x, mean, variance, axis=axis, epsilon=layer.epsilon,
                offset=layer.beta if layer.center else None,
                scale=layer.gamma if layer.scale else None)
            return ops.cast(out, inputs.dtype)
        return call

    old_means = [layer.moving_mean.numpy().copy() for _, layer in norms]
    try:
        for _, layer in norms:
            layer.call = collecting(layer)  # an instance attribute hides the class's call
        for start in range(0, len(images), batch_size):
            model(np.asarray(images[start:start + batch_size]), training=False)
    finally:
        for _, layer in norms:
            del layer.call
    shifts = []
    for (_, layer), old_mean in zip(norms, old_means, strict=True):
        s1, s2, count = sums[id(layer)]
        mean = s1 / count
        variance = np.maximum(s2 / count - np.square(mean), 0.0)
        layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
        layer.moving_variance.assign(variance.astype(layer.moving_variance.dtype))
        shifts.append(np.abs(mean - old_mean))
    return Recalibration(tuple(path for path, _ in norms), len(images),
                         float(np.mean(np.concatenate(shifts))))


# ---------------------------------------------------------------------------- baselines
def with_resizing(model: Any, input_shape: Sequence, *, interpolation: str = "bilinear",
                  antialias: bool = True) -> Any:
    """The resize baseline: a model taking ``input_shape`` images that first resizes them to the
    size ``model`` was trained at (``keras.layers.Resizing``); the weights are shared.

    >>> import keras
    >>> m = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 3),
    ...                       keras.layers.Flatten(), keras.layers.Dense(2)])
    >>> with_resizing(m, (96, 96, 3)).input_shape
    (None, 96, 96, 3)
    """
    import keras

    old = image_input_shape(model)
    if None in old[:2]:
        raise ModelInputError(f"model {model.name!r} takes any image size: it needs no resizing")
    shape = _parse_input_shape(input_shape, old)
    _check_channels(model, shape[2], old, f"input_shape={shape}")
    inputs = keras.Input(shape=shape, dtype=model.inputs[0].dtype, name="image")
    x = keras.layers.Resizing(old[0], old[1], interpolation=interpolation, antialias=antialias,
                              name=f"resize_to_{old[0]}x{old[1]}")(inputs)
    return keras.Model(inputs, model(x), name=f"{model.name}_resized")


def resize_images(images: np.ndarray, size: int | Sequence[int], *, batch_size: int = 256,
                  antialias: bool = True) -> np.ndarray:
    """Images resized (bilinear) to ``size`` pixels, returned as float32 in the same 0..255 range.

    >>> resize_images(np.zeros((2, 32, 32, 3), "uint8"), 48).shape
    (2, 48, 48, 3)
    """
    import keras

    height, width = (size, size) if isinstance(size, int) else tuple(size)
    resize = keras.layers.Resizing(height, width, antialias=antialias)
    parts = [np.asarray(resize(np.asarray(images[i:i + batch_size], "float32")))
             for i in range(0, len(images), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, height, width, images.shape[-1]),
                                                        "float32")


def accuracy(model: Any, images: np.ndarray, labels: np.ndarray, *, batch_size: int = 64) -> float:
    """Share of ``images`` whose arg-max prediction equals the integer ``labels``.

    >>> import keras
    >>> m = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 1),
    ...                       keras.layers.GlobalMaxPooling2D()])
    >>> 0.0 <= accuracy(m, np.zeros((3, 4, 4, 3)), np.array([0, 1, 0])) <= 1.0
    True
    """
    labels = _checked_labels(model, images, labels)
    predicted = [np.argmax(np.asarray(model(np.asarray(images[i:i + batch_size]), training=False)),
                          axis=-1) for i in range(0, len(images), batch_size)]
    return float(np.mean(np.concatenate(predicted) == labels))


@dataclass(frozen=True)
class ResolutionRow:
    """One size of :func:`resolution_sweep`."""

    size: int
    accuracy: float
    recalibrated_accuracy: float | None


def resolution_sweep(model: Any, images: np.ndarray, labels: np.ndarray, sizes: Sequence[int],
                     *, recalibration_images: np.ndarray | None = None,
                     batch_size: int = 64) -> list[ResolutionRow]:
    """Accuracy of one size-agnostic model with the images resized to each of ``sizes``.

    With ``recalibration_images`` (unlabelled, e.g. training images), a copy of the model
    also gets its BatchNorm statistics re-computed at each size first; the model itself is
    left unchanged.

    >>> import keras
    >>> m = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3),
    ...                       keras.layers.BatchNormalization(), keras.layers.GlobalMaxPooling2D()])
    >>> rows = resolution_sweep(m, np.zeros((4, 8, 8, 3)), np.zeros(4, "int64"), [8, 16],
    ...                         recalibration_images=np.ones((4, 8, 8, 3)))
    >>> [r.size for r in rows]
    [8, 16]
    """
    old = image_input_shape(model)
    if None not in old[:2]:
        raise ModelInputError(f"model {model.name!r} takes only {_shape_text(old)} images: make it "
                              f"size-agnostic first (make_size_agnostic(model))")
    rows = []
    for size in sizes:
        resized = resize_images(images, size, batch_size=256)
        plain = accuracy(model, resized, labels, batch_size=batch_size)
        recalibrated = None
        if recalibration_images is not None:
            copy, _ = with_input_shape(model, old)
            recalibrate_batchnorm(copy, resize_images(recalibration_images, size),
                                  batch_size=batch_size)
            recalibrated = accuracy(copy, resized, labels, batch_size=batch_size)
        rows.append(ResolutionRow(int(size), plain, recalibrated))
    return rows


# ---------------------------------------------------------------------------- applications
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
    import keras

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
