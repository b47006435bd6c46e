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
  and, given labelled images, re-fitted (:func:`~tlcnn_helpers.training.fit_head`).
* :func:`recalibrate_batchnorm` recomputes BatchNorm's moving statistics from unlabelled
  images at the new resolution: AdaBN (Li et al. 2016), which needs no labels. Touvron et al.
  2019 (FixRes) explain why the statistics shift with the resolution (objects look larger);
  their own fix fine-tunes at the test resolution with labels
  (:func:`~tlcnn_helpers.training.fine_tune` is the labelled route here).
* :func:`with_resizing` is the baseline: resize the new images to the old size.
* :func:`resolution_sweep` measures one size-agnostic model at several image sizes.

Keras Applications (ImageNet weights, offline fallback) are in :mod:`tlcnn_helpers.pretrained`;
fine-tuning is :func:`tlcnn_helpers.training.fine_tune`.

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

Used by notebook 06 (the paper's failed attempts, the general tool after the fix written in
plain Keras, BatchNorm re-calibration, the resolution sweep) and the ``transfer`` command.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import keras
import numpy as np
from keras import KerasTensor, layers, ops

from . import compat
from .errors import ModelInputError
from .evaluation import (
    _trace,
    check_channels,
    check_images,
    check_input_shape,
    evaluate,
    image_input_shape,
    is_model,
    parse_input_shape,
    shape_text,
    walk_layers,
)
from .training import batchnorm_layers, fit_head

POOLINGS = ("avg", "max")


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
        return (f"{self.model}: {shape_text(self.old_input_shape)} -> "
                f"{shape_text(self.new_input_shape)}; {len(self.copied)} layers copied, "
                f"{len(self.folded)} folded, {len(self.reinitialised)} re-initialised "
                f"({self.copied_fraction:.1%} of the parameters carried over)")

    def __str__(self) -> str:
        width = max([len("layer")] + [len(r.layer) for r in self.layers])
        kind_width = max([len("type")] + [len(r.kind) for r in self.layers])
        lines = [f"{'layer':<{width}}  {'type':<{kind_width}}  {'status':<14}  weights (old -> new)"]
        for r in self.layers:
            old = ", ".join(map(shape_text, r.old_shapes))
            new = ", ".join(map(shape_text, r.new_shapes))
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


# ---------------------------------------------------------------------------- rebuilding
def _clone_layer(layer: Any) -> Any:
    return layer.__class__.from_config(layer.get_config())


def _rebuild(model: Any, input_shape: tuple, replace: Callable[[Any], Any | None],
             pairs: list, cache: dict) -> Any:
    """The same architecture at ``input_shape``; ``pairs`` collects (old, new) layers."""
    def clone(layer: Any, x_shape: tuple) -> Any:
        if id(layer) in cache:  # a shared layer stays shared
            return cache[id(layer)]
        if is_model(layer):
            new = _rebuild(layer, x_shape, replace, pairs, cache)
        else:
            new = replace(layer) or _clone_layer(layer)
            pairs.append((layer, new))
        cache[id(layer)] = new
        return new

    old_input = model.inputs[0]
    inputs = keras.Input(shape=input_shape, dtype=old_input.dtype)
    if isinstance(model, keras.Sequential):
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
        outputs = compat.run_through_graph(model, [inputs], call_fn=call)
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
    if pooling not in POOLINGS:
        raise ModelInputError(f"pooling={pooling!r}: use 'avg' (global average) or 'max'")
    old = image_input_shape(model)
    # The shapes inside the model's own graph (a layer called elsewhere too has other inputs).
    seen: dict[int, list] = {}
    _trace(model, KerasTensor((None, *old), dtype=model.inputs[0].dtype), inputs_seen=seen)
    flatten_shapes: dict[int, tuple] = {}
    for _, layer in walk_layers(model):
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
        replaced.append(f"{layer.name} (Flatten of {shape_text(flatten_shapes[id(layer)])}) -> "
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


def recalibrate_batchnorm(model: Any, images: np.ndarray | Sequence[np.ndarray], *,
                          batch_size: int = 64) -> Recalibration:
    """Recompute every BatchNorm layer's moving mean and variance from ``images`` (in place).

    ``images`` may also be a list of arrays of different sizes (a size-agnostic model):
    every image then counts the same, whatever its size, so the statistics are those of
    the mixture, e.g. one set for 32 to 96 px (the multiscale recipe's last step).

    The images need no labels: they are the new resolution's unlabelled examples. Each
    BatchNorm normalises with the statistics of its batch, as in training (so later layers
    see what they would see in training), while its inputs' exact mean and variance over all
    ``images`` are accumulated; they then replace the moving statistics. Nothing else
    changes: Dropout and augmentation stay in inference mode, weights are untouched. This is
    AdaBN (Li et al. 2016): re-estimating BatchNorm's statistics on the new images, without
    labels. It is not FixRes (Touvron et al. 2019), which explains why the statistics shift
    with the resolution and fine-tunes at the new resolution with labels. Copy the model
    first (:func:`with_input_shape` at the same size, or :func:`make_size_agnostic`) to keep
    the original statistics.

    >>> import keras
    >>> m = keras.Sequential([keras.Input((None, None, 3)), keras.layers.BatchNormalization()])
    >>> print(recalibrate_batchnorm(m, np.full((4, 8, 8, 3), 5.0)))
    re-calibrated 1 BatchNorm layers on 4 images (moving means moved by 5 on average)
    >>> m.layers[0].moving_mean.numpy().tolist()
    [5.0, 5.0, 5.0]
    """
    parts = [images] if isinstance(images, np.ndarray) else list(images)
    for part in parts:
        check_images(model, part)
    if sum(len(part) for part in parts) == 0:
        raise ModelInputError("images is empty: recalibration needs at least one batch of images")
    norms = batchnorm_layers(model)
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
            # Per image: its mean and mean square over positions (each image counts once).
            values = np.moveaxis(ops.convert_to_numpy(x).astype("float64"), axis, -1)
            values = values.reshape(len(values), -1, values.shape[-1])
            total = sums[id(layer)]
            total[0] = total[0] + values.mean(axis=1).sum(axis=0)
            total[1] = total[1] + np.square(values).mean(axis=1).sum(axis=0)
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
        for part in parts:
            for start in range(0, len(part), batch_size):
                model(np.asarray(part[start:start + batch_size]), training=False)
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
    return Recalibration(tuple(path for path, _ in norms), sum(len(part) for part in parts),
                         float(np.mean(np.concatenate(shifts))))


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
    old = image_input_shape(model)
    if None in old[:2]:
        raise ModelInputError(f"model {model.name!r} takes any image size: it needs no resizing")
    shape = parse_input_shape(input_shape, old)
    check_channels(model, shape[2], old, f"input_shape={shape}")
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
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    resize = keras.layers.Resizing(height, width, antialias=antialias)
    parts = [np.asarray(resize(np.asarray(images[i:i + batch_size], "float32")))
             for i in range(0, len(images), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, height, width, images.shape[-1]),
                                                        "float32")


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
        raise ModelInputError(f"model {model.name!r} takes only {shape_text(old)} images: make it "
                              f"size-agnostic first (make_size_agnostic(model))")
    rows = []
    for size in sizes:
        resized = resize_images(images, size, batch_size=256)
        plain = evaluate(model, resized, labels, batch_size=batch_size)["test_accuracy"]
        recalibrated = None
        if recalibration_images is not None:
            copy, _ = with_input_shape(model, old)
            recalibrate_batchnorm(copy, resize_images(recalibration_images, size),
                                  batch_size=batch_size)
            recalibrated = evaluate(copy, resized, labels, batch_size=batch_size)["test_accuracy"]
        rows.append(ResolutionRow(int(size), plain, recalibrated))
    return rows
