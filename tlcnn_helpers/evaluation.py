"""Evaluating a trained classifier: which images it accepts, predictions (optionally with
test-time augmentation), one ``evaluate``, the confusion matrix, accuracy per class and the
most confident mistakes.

A model's input checks live here too (:func:`check_images`, :func:`check_input_shape`,
:func:`minimum_input_size`): they answer "can this model take these images?" before any
prediction, with the fix in the message.

>>> import keras, numpy as np
>>> m = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3),
...                       keras.layers.GlobalAveragePooling2D(), keras.layers.Softmax()])
>>> sorted(evaluate(m, np.zeros((4, 8, 8, 3), "uint8"), np.array([0, 1, 0, 1])))
['test_accuracy', 'test_loss']

Used by notebooks 04 (test accuracy, confusion matrix, mistakes), 05 (the tuned model's
test accuracy) and 06 (accuracy at each image size, input checks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import KerasTensor, layers

from . import compat
from .errors import ModelInputError
from .pipelines import to_one_hot


def shape_text(shape: Sequence) -> str:
    """``(96, None, 3)`` as ``"96x?x3"``, for messages.

    >>> shape_text((96, None, 3))
    '96x?x3'
    """
    return "x".join("?" if d is None else str(d) for d in shape)


# ---------------------------------------------------------------------------- input checks
_SPATIAL_LAYER_NAMES = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose",
                        "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
                        "GlobalMaxPooling2D")


def _spatial_layer_types() -> tuple[type, ...]:
    return tuple(getattr(layers, name) for name in _SPATIAL_LAYER_NAMES)


def is_model(layer: Any) -> bool:
    return isinstance(layer, keras.Model)


def walk_layers(model: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every non-model layer with its path (``outer/inner``), nested models descended into.

    >>> m = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(1, 1, name="c")])
    >>> [path for path, _ in walk_layers(m)]
    ['c']
    """
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        if is_model(layer):
            yield from walk_layers(layer, prefix=f"{path}/")
        else:
            yield path, layer


def image_input_shape(model: Any, *, require_convolution: bool = True) -> tuple:
    """The ``(height, width, channels)`` a model takes, or a clear error if it takes no images.

    >>> import keras
    >>> image_input_shape(keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3)]))
    (8, 8, 1)
    """
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
                                       for _, layer in walk_layers(model)):
        raise ModelInputError(
            f"model {model.name!r} has no convolution or pooling layer: all its weights depend "
            f"on the image size, so none would carry over. It is not a convolutional image "
            f"model; train a new one at the new size instead.")
    return shape[1:]


def parse_input_shape(input_shape: Sequence, old: tuple, allow_none: bool = False) -> tuple:
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


def check_channels(model: Any, channels: int, old: tuple, what: str) -> None:
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
    def step(op: Any, *args: Any, **kwargs: Any) -> Any:
        path = f"{prefix}{getattr(op, 'name', type(op).__name__)}"
        if is_model(op):
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
                                    ValueError(f"output would be {shape_text(dims[1:])}"))
        return out

    if compat.has_graph(model):
        return compat.run_through_graph(model, [x], call_fn=step)
    for layer in model.layers:
        x = step(layer, x)
    return x


def _fits(model: Any, height: int, width: int, channels: int) -> bool:
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
    old = image_input_shape(model, require_convolution=require_convolution)
    shape = parse_input_shape(input_shape, old, allow_none=allow_none)
    check_channels(model, shape[2], old, f"input_shape={shape}")
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
        got = ", ".join(shape_text(s[1:]) for s in failure.input_shapes) or "?"
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
    check_channels(model, shape[3], old, name)
    if None not in old[:2] and tuple(shape[1:3]) != tuple(old[:2]):
        raise ModelInputError(
            f"{name} are {shape[1]}x{shape[2]} but model {model.name!r} takes "
            f"{shape_text(old[:2])} images: move it with with_input_shape(model, "
            f"({shape[1]}, {shape[2]}, {shape[3]})), make_size_agnostic(model), or resize "
            f"the images (with_resizing); notebooks/06_transfer_across_sizes.ipynb shows all three")
    if None in old[:2]:  # a size-agnostic model: are the images large enough?
        check_input_shape(model, shape[1:], require_convolution=False)


def check_labels(model: Any, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The integer ``labels`` as an array, once the images fit ``model`` and there is one
    label per image in ``0..classes-1``.

    >>> m = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 1),
    ...                       keras.layers.GlobalMaxPooling2D()])
    >>> check_labels(m, np.zeros((2, 4, 4, 3)), [0, 1]).tolist()
    [0, 1]
    """
    check_images(model, images)
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(images):
        raise ModelInputError(f"labels must be one integer per image: got shape {labels.shape} "
                              f"for {len(images)} images")
    classes = int(model.output_shape[-1])
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise ModelInputError(f"labels run from {labels.min()} to {labels.max()}, but the model "
                              f"has {classes} classes: they must be 0..{classes - 1}")
    return labels


# ---------------------------------------------------------------------------- predict, evaluate
def _outputs_probabilities(model: Any) -> bool:
    return getattr(getattr(model.layers[-1], "activation", None), "__name__", "") == "softmax"


TTA_KINDS = ("flip", "flip_shift")


def tta_views(images: np.ndarray, kind: str = "flip", shift: int = 2) -> list[np.ndarray]:
    """The views of ``images`` that test-time augmentation averages over.

    ``"flip"``: the images and their mirror images (what the fast recipe trains with).
    ``"flip_shift"``: those two, each also moved ``shift`` pixels up-left and down-right
    (borders reflected), 6 views in all. Every view costs one more pass over the images.

    >>> [v[0, 0, :, 0].tolist() for v in tta_views(np.arange(3).reshape(1, 1, 3, 1), "flip")]
    [[0, 1, 2], [2, 1, 0]]
    """
    if kind not in TTA_KINDS:
        raise ModelInputError(f"tta={kind!r}: use one of {', '.join(TTA_KINDS)} (or None)")
    images = np.asarray(images)
    views = [images, images[:, :, ::-1]]
    if kind == "flip_shift":
        pad = ((0, 0), (shift, shift), (shift, shift), (0, 0))
        height, width = images.shape[1:3]
        for view in list(views):
            padded = np.pad(view, pad, mode="reflect")
            views += [padded[:, :height, :width], padded[:, 2 * shift:, 2 * shift:]]
    return views


def predict(model: Any, x: np.ndarray, *, batch_size: int = 256, tta: str | None = None
            ) -> np.ndarray:
    """Class probabilities (float32) for uint8 images, batched through tf.data.

    A model whose last layer is not a softmax is taken to output logits, and they are
    turned into probabilities. ``tta`` (``"flip"`` or ``"flip_shift"``, see
    :func:`tta_views`) averages the probabilities over augmented views of each image.

    >>> from tlcnn_helpers.models import paper_cnn
    >>> predict(paper_cnn(), np.zeros((2, 32, 32, 3), "uint8"), tta="flip").shape
    (2, 9)
    """
    check_images(model, x)
    if not len(x):
        return np.zeros((0, model.output_shape[-1]), "float32")
    if tta is not None:
        views = tta_views(x, tta)
        return np.mean([predict(model, view, batch_size=batch_size) for view in views], axis=0)
    ds = tf.data.Dataset.from_tensor_slices(np.asarray(x)).batch(batch_size)
    outputs = np.concatenate([np.asarray(model(batch, training=False), dtype="float32")
                              for batch in ds])
    if not _outputs_probabilities(model):
        outputs = np.asarray(keras.ops.softmax(outputs, axis=-1), dtype="float32")
    return outputs


def evaluate(model: Any, x: np.ndarray, y: np.ndarray, *, batch_size: int = 256,
             tta: str | None = None) -> dict[str, float]:
    """``{"test_accuracy", "test_loss"}`` of ``model`` on uint8 images ``x``, integer labels ``y``.

    The loss is plain cross-entropy (no label smoothing), so recipes trained with and
    without smoothing are compared on the same scale. It is computed from the predicted
    probabilities, which Keras clips to [1e-7, 1 - 1e-7]; ``model.fit``'s ``val_loss`` uses
    the softmax's logits unclipped, so on an over-confident model it can be higher.
    ``tta`` averages over augmented views (:func:`predict`).

    >>> from tlcnn_helpers.models import paper_cnn
    >>> sorted(evaluate(paper_cnn(), np.zeros((4, 32, 32, 3), "uint8"), np.arange(4)))
    ['test_accuracy', 'test_loss']
    """
    labels = check_labels(model, x, y)
    probabilities = predict(model, x, batch_size=batch_size, tta=tta)
    loss = keras.losses.categorical_crossentropy(
        to_one_hot(labels, int(model.output_shape[-1])), probabilities)
    accuracy = float(np.mean(np.argmax(probabilities, axis=1) == labels)) if len(labels) else 0.0
    return {"test_accuracy": round(accuracy, 6),
            "test_loss": round(float(np.mean(loss)) if len(labels) else 0.0, 6)}


# ---------------------------------------------------------------------------- error analysis
def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``[true class, predicted class]`` (rows: the truth), by scikit-learn.

    >>> confusion_matrix(np.array([0, 0, 1]), np.array([0, 1, 1]), 2).tolist()
    [[1, 1], [0, 1]]
    """
    from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

    return sklearn_confusion_matrix(np.asarray(y_true), np.asarray(y_pred),
                                    labels=np.arange(num_classes)).astype(np.int64)


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """The share of each true class predicted correctly (the diagonal over the row sums).

    >>> per_class_accuracy(np.array([[3, 1], [0, 2]])).tolist()
    [0.75, 1.0]
    """
    totals = matrix.sum(axis=1)
    return np.divide(np.diag(matrix), totals, out=np.zeros(len(matrix)), where=totals > 0)


def most_confident_mistakes(probabilities: np.ndarray, y_true: np.ndarray, count: int = 8
                            ) -> np.ndarray:
    """Indices of the wrong predictions made with the highest confidence, most confident first.

    >>> p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    >>> most_confident_mistakes(p, np.array([1, 1, 1]), count=5).tolist()
    [0, 2]
    """
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != np.asarray(y_true))
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:count]
