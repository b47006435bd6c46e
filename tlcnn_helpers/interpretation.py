"""Where a trained CNN looks: saliency, Grad-CAM, CAM, occlusion, embeddings and neighbours.

Every map is computed for a *class score*: the logit (the value before the softmax) of the
class asked for, or of the predicted class when ``classes`` is ``None``. A model ending in
``Dense(..., activation="softmax")`` (all of the course's) has its logits read from that
layer's input, ``logits = features @ kernel + bias``; any other model is taken to output
logits already.

* :func:`saliency_map`: ``|d score / d pixel|``, the largest over the colour channels
  (Simonyan et al., 2014).
* :func:`grad_cam`: the feature maps of a convolution layer weighted by the average
  gradient of the score over each map, then ReLU (Selvaraju et al., 2017).
* :func:`class_activation_map`: for a model ending in global pooling + one ``Dense``,
  the maps weighted by that layer's kernel column (Zhou et al., 2016): no gradient needed.
  For such a model ``grad_cam(..., relu=False) * h * w == class_activation_map(...)``.
* :func:`occlusion_map`: how much the class probability drops when a grey patch hides
  each part of the image (Zeiler and Fergus, 2014): needs only predictions.

>>> import keras
>>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3, name="conv"),
...                           keras.layers.GlobalAveragePooling2D(),
...                           keras.layers.Dense(3, activation="softmax")])
>>> images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
>>> saliency_map(model, images).shape, grad_cam(model, images).shape
((2, 8, 8), (2, 6, 6))
>>> occlusion_map(model, images, patch=4).shape
(2, 2, 2)

Used by notebook 07 (what the CNN sees).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from .errors import ModelInputError
from .evaluation import predict

GLOBAL_POOLINGS = ("GlobalAveragePooling2D", "GlobalMaxPooling2D")


# ---------------------------------------------------------------------------- class scores
def _softmax_head(model: Any) -> Any | None:
    """The last Dense layer if it applies a softmax (its input then gives the logits)."""
    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    return last if isinstance(last, keras.layers.Dense) and activation == "softmax" else None


def feature_layer_name(model: Any) -> str:
    """The name of the last layer whose output is still a map ``(N, H, W, C)``.

    That is Grad-CAM's default layer: the last convolution block, before global pooling or
    ``Flatten``.

    >>> from tlcnn_helpers.models import fast_cifar_cnn
    >>> feature_layer_name(fast_cifar_cnn(widths=(8, 16), residual_stages=()))
    'stage2_relu'
    """
    name = None
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        output = getattr(layer, "output", None)
        if output is not None and len(output.shape) == 4:
            name = layer.name
    if name is None:
        raise ModelInputError(f"model {model.name!r} has no layer with a 4-D (image-like) "
                              "output: Grad-CAM needs a convolutional model")
    return name


def _model_input(model: Any) -> Any:
    """The model's one input tensor (Sequential and functional models alike)."""
    inputs = model.inputs
    if len(inputs) != 1:
        raise ModelInputError(f"model {model.name!r} has {len(inputs)} inputs: the maps need "
                              "a model with one image input")
    return inputs[0]


def _score_model(model: Any, layer: str | None) -> tuple[keras.Model, Any]:
    """A model giving ``[maps of layer, head input]`` (or ``[head input]``) and the head."""
    head = _softmax_head(model)
    last = head.input if head is not None else model.output
    outputs = [model.get_layer(layer).output, last] if layer else [last]
    return keras.Model(_model_input(model), outputs), head


def _logits(head: Any, features: Any) -> Any:
    features = tf.cast(features, "float32")
    if head is None:
        return features
    kernel = tf.cast(head.kernel, "float32")
    bias = tf.cast(head.bias, "float32") if head.use_bias else 0.0
    return tf.matmul(features, kernel) + bias


def _chosen(logits: Any, classes: int | Sequence[int] | np.ndarray | None) -> tf.Tensor:
    count = logits.shape[0]
    if classes is None:
        return tf.argmax(logits, axis=-1, output_type=tf.int32)
    classes = np.broadcast_to(np.asarray(classes, "int32"), (count,))
    return tf.constant(classes)


def class_logits(model: Any, images: np.ndarray) -> np.ndarray:
    """The class scores (logits, before the softmax) of ``images``, float32 ``(N, classes)``.

    >>> from tlcnn_helpers.models import fast_cifar_cnn
    >>> model = fast_cifar_cnn(widths=(8, 16), residual_stages=())
    >>> x = np.zeros((2, 32, 32, 3), "float32")
    >>> np.allclose(keras.ops.softmax(class_logits(model, x)), model.predict(x, verbose=0), atol=1e-5)
    True
    """
    score_model, head = _score_model(model, None)
    features = score_model(np.asarray(images, "float32"), training=False)
    features = features[0] if isinstance(features, (list, tuple)) else features
    return np.asarray(_logits(head, features))


# ---------------------------------------------------------------------------- gradient maps
def saliency_map(model: Any, images: np.ndarray,
                 classes: int | Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """``|d class score / d pixel|``, the largest over the channels: ``(N, H, W)`` float32.

    ``classes`` is one class for all images, one per image, or ``None`` (each image's
    predicted class). The model runs in inference mode (BatchNorm uses its statistics),
    so each image's map depends only on that image.
    """
    score_model, head = _score_model(model, None)
    x = tf.convert_to_tensor(np.asarray(images, "float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        features = score_model(x, training=False)
        features = features[0] if isinstance(features, (list, tuple)) else features
        logits = _logits(head, features)
        score = tf.gather(logits, _chosen(logits, classes), batch_dims=1)
    gradients = tape.gradient(score, x)
    return np.asarray(tf.reduce_max(tf.abs(gradients), axis=-1), "float32")


def grad_cam(model: Any, images: np.ndarray,
             classes: int | Sequence[int] | np.ndarray | None = None, *,
             layer: str | None = None, relu: bool = True) -> np.ndarray:
    """Grad-CAM at ``layer`` (default :func:`feature_layer_name`): ``(N, h, w)`` float32.

    Each channel's map is weighted by the mean gradient of the class score over that map;
    the weighted sum is passed through a ReLU (``relu=False`` keeps the negative part). The
    map has the layer's resolution; :func:`upsample` brings it to the image's.
    """
    layer = layer or feature_layer_name(model)
    score_model, head = _score_model(model, layer)
    x = tf.convert_to_tensor(np.asarray(images, "float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)  # records the whole forward pass, so any inner tensor has a gradient
        maps, features = score_model(x, training=False)
        logits = _logits(head, features)
        score = tf.gather(logits, _chosen(logits, classes), batch_dims=1)
    gradients = tape.gradient(score, maps)
    if gradients is None:
        raise ModelInputError(f"the class score does not depend on layer {layer!r}: pick a "
                              "layer on the path to the output")
    # Mixed precision: the maps may be bfloat16; the weighting is done in float32.
    maps, gradients = tf.cast(maps, "float32"), tf.cast(gradients, "float32")
    weights = tf.reduce_mean(gradients, axis=(1, 2))  # one number per channel
    cam = tf.einsum("nhwc,nc->nhw", maps, weights)
    return np.asarray(tf.nn.relu(cam) if relu else cam, "float32")


def class_activation_map(model: Any, images: np.ndarray,
                         classes: int | Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """CAM: the maps before the final global pooling, weighted by the last Dense's kernel.

    Needs a model ending in global average or max pooling + one ``Dense`` layer (the
    course's fast model); the paper's model (``Flatten``) is refused. ``(N, h, w)``;
    with global *average* pooling its mean over the positions plus the Dense bias is
    exactly the class logit.
    """
    pooling, head = model.layers[-2], model.layers[-1]
    if type(pooling).__name__ not in GLOBAL_POOLINGS or not isinstance(head, keras.layers.Dense):
        raise ModelInputError(
            f"CAM needs global pooling followed by one Dense layer; {model.name!r} ends in "
            f"{type(pooling).__name__} -> {type(head).__name__}. Use grad_cam, or "
            "transfer.make_size_agnostic to replace Flatten by global pooling")
    map_model = keras.Model(_model_input(model), pooling.input)
    maps = tf.cast(map_model(np.asarray(images, "float32"), training=False), "float32")
    if classes is None:
        classes = class_logits(model, images).argmax(axis=1)
    classes = np.broadcast_to(np.asarray(classes, "int32"), (len(images),))
    weights = tf.transpose(tf.gather(tf.cast(head.kernel, "float32"), classes, axis=1))
    return np.asarray(tf.einsum("nhwc,nc->nhw", maps, weights), "float32")


# ---------------------------------------------------------------------------- occlusion
def occlusion_map(model: Any, images: np.ndarray,
                  classes: int | Sequence[int] | np.ndarray | None = None, *,
                  patch: int = 8, stride: int | None = None,
                  batch_size: int = 256) -> np.ndarray:
    """Drop of the class probability when a grey ``patch`` x ``patch`` square hides each place.

    Returns ``(N, rows, cols)``: cell ``(r, c)`` is the patch whose top-left corner is pixel
    ``(r * stride, c * stride)`` (``stride`` defaults to ``patch``: patches side by side).
    The grey is the image's own mean colour. Positive: hiding that place lowers the
    probability, so the model used it.
    """
    images = np.asarray(images, "float32")
    stride = stride or patch
    height, width = images.shape[1:3]
    if patch > min(height, width):
        raise ModelInputError(f"patch={patch} is larger than the {height}x{width} images")
    rows = (height - patch) // stride + 1
    cols = (width - patch) // stride + 1
    base = predict(model, images, batch_size=batch_size)
    chosen = base.argmax(axis=1) if classes is None else np.broadcast_to(
        np.asarray(classes, "int64"), (len(images),))
    drops = np.zeros((len(images), rows, cols), "float32")
    for n, image in enumerate(images):
        grey = image.mean(axis=(0, 1))
        occluded = np.repeat(image[None], rows * cols, axis=0)
        for index in range(rows * cols):
            r, c = divmod(index, cols)
            occluded[index, r * stride:r * stride + patch, c * stride:c * stride + patch] = grey
        probabilities = predict(model, occluded, batch_size=batch_size)[:, chosen[n]]
        drops[n] = (base[n, chosen[n]] - probabilities).reshape(rows, cols)
    return drops


def hide_top_patch(images: np.ndarray, maps: np.ndarray, patch: int,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """Copies of ``images`` with one ``patch``-sized square greyed out (the image's mean colour).

    The square is the patch-grid cell where ``maps`` (image-sized, e.g. from :func:`upsample`)
    has the most mass, or a random cell when ``rng`` is given (the baseline to compare with).

    >>> x = np.zeros((1, 4, 4, 3), "float32"); x[0, :2, 2:] = 10
    >>> m = np.zeros((1, 4, 4)); m[0, 3, 0] = 1
    >>> hide_top_patch(x, m, 2)[0, 2:, :2, 0].tolist()  # greyed with the mean, 2.5
    [[2.5, 2.5], [2.5, 2.5]]
    """
    images = np.array(images, "float32")
    maps = np.asarray(maps, "float32")
    rows, cols = images.shape[1] // patch, images.shape[2] // patch
    for n in range(len(images)):
        if rng is None:
            cropped = maps[n, :rows * patch, :cols * patch]
            mass = cropped.reshape(rows, patch, cols, patch).sum(axis=(1, 3))
            r, c = np.unravel_index(np.argmax(mass), mass.shape)
        else:
            r, c = rng.integers(rows), rng.integers(cols)
        grey = images[n].mean(axis=(0, 1))
        images[n, r * patch:(r + 1) * patch, c * patch:(c + 1) * patch] = grey
    return images


# ---------------------------------------------------------------------------- comparing maps
def upsample(maps: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """Maps ``(N, h, w)`` resized (bilinear) to ``size`` pixels, e.g. the image's: ``(N, H, W)``.

    >>> upsample(np.ones((1, 2, 2)), 8).shape
    (1, 8, 8)
    """
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    maps = tf.convert_to_tensor(np.asarray(maps, "float32")[..., None])
    return np.asarray(tf.image.resize(maps, (height, width), method="bilinear")[..., 0])


def mass_share(maps: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Share of each map's (absolute) mass inside ``region`` (a boolean ``(H, W)`` mask).

    >>> m = np.zeros((1, 2, 4)); m[0, :, :2] = 1; m[0, 0, 3] = 2
    >>> left = np.zeros((2, 4), bool); left[:, :2] = True
    >>> mass_share(m, left).tolist()
    [0.6666666666666666]
    """
    mass = np.abs(np.asarray(maps, "float64"))
    total = mass.sum(axis=(1, 2))
    return mass[:, np.asarray(region, bool)].sum(axis=1) / np.maximum(total, 1e-12)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps (any shapes with the same size).

    >>> rank_correlation(np.arange(6), np.arange(6) ** 2), rank_correlation(np.arange(6), -np.arange(6))
    (1.0, -1.0)
    """
    ranks = [np.argsort(np.argsort(np.ravel(m), kind="stable"), kind="stable") for m in (a, b)]
    return float(np.corrcoef(ranks[0], ranks[1])[0, 1])


def randomized_copy(model: Any, seed: int = 0) -> Any:
    """The same architecture with freshly initialised weights (Adebayo et al.'s sanity check:
    a map that does not change when the weights are randomised does not explain the model).

    Seeds Python, NumPy and Keras with ``seed`` first (``keras.utils.set_random_seed``), so
    the copy is the same every run.

    >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> bool(np.allclose(randomized_copy(m).get_weights()[0], m.get_weights()[0]))
    False
    """
    keras.utils.set_random_seed(seed)
    return keras.models.clone_model(model)


# ---------------------------------------------------------------------------- feature space
def embeddings(model: Any, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """The penultimate features (the input of the last layer), float32 ``(N, features)``.

    >>> from tlcnn_helpers.models import fast_cifar_cnn
    >>> embeddings(fast_cifar_cnn(widths=(8, 16), residual_stages=()), np.zeros((3, 32, 32, 3))).shape
    (3, 16)
    """
    feature_model = keras.Model(_model_input(model), model.layers[-1].input)
    x = np.asarray(images, "float32")
    parts = [np.asarray(feature_model(x[i:i + batch_size], training=False), "float32")
             for i in range(0, len(x), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, model.layers[-1].input.shape[-1]))


def nearest_neighbours(features: np.ndarray, queries: Sequence[int], k: int = 5) -> np.ndarray:
    """For each index in ``queries``, the ``k`` nearest other rows of ``features`` (Euclidean
    distance), nearest first: ``(len(queries), k)`` indices.

    >>> f = np.array([[0.0], [1.0], [5.0], [1.5]])
    >>> nearest_neighbours(f, [0, 2], k=2).tolist()
    [[1, 3], [3, 1]]
    """
    features = np.asarray(features, "float64")
    found = []
    for query in queries:
        distances = np.linalg.norm(features - features[query], axis=1)
        distances[query] = np.inf
        found.append(np.argsort(distances, kind="stable")[:k])
    return np.array(found, dtype=int)


def project_2d(features: np.ndarray, method: str = "pca", *, seed: int = 0) -> np.ndarray:
    """Features in 2-D with scikit-learn's ``PCA`` or ``TSNE`` (``method="tsne"``).

    PCA keeps the two directions of largest variance (a linear view, distances meaningful);
    t-SNE keeps neighbourhoods (clusters meaningful, distances between them are not). It runs
    on one thread: scikit-learn's OpenMP threads made t-SNE of 180 points take 56 s instead
    of 1.4 s on the shared 2-core build machine (``benchmarks/README.md``, notebook 07).

    >>> project_2d(np.random.default_rng(0).normal(size=(20, 5))).shape
    (20, 2)
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    features = np.asarray(features, "float32")
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(features)
    if method == "tsne":
        perplexity = min(30.0, (len(features) - 1) / 3)
        with threadpool_limits(1):
            return TSNE(n_components=2, perplexity=perplexity, init="pca",
                        random_state=seed).fit_transform(features)
    raise ModelInputError(f"method={method!r}: use 'pca' or 'tsne'")


def most_confused_with(matrix: np.ndarray, true_class: int) -> int:
    """The class most often predicted for images of ``true_class`` (off the diagonal).

    >>> most_confused_with(np.array([[5, 1, 3], [0, 9, 0], [2, 2, 6]]), 0)
    2
    """
    row = np.array(matrix[true_class], dtype=float)
    row[true_class] = -np.inf
    return int(np.argmax(row))
