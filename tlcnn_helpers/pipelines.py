"""tf.data input pipelines: cache, shuffle, augment (Keras preprocessing layers), batch, prefetch.

The one place where integer labels become one-hot rows (:func:`to_one_hot`), which the
categorical cross-entropy and label smoothing of the recipes need.

Images stay uint8 until they reach the model (the models rescale inside), which keeps the
cache four times smaller than float32. The training pipeline is deterministic for a fixed
``seed``: the same batches, in the same order, with the same augmentation, every run.

>>> import numpy as np
>>> x = np.zeros((10, 32, 32, 3), "uint8"); y = np.arange(10) % 3
>>> ds = make_dataset(x, y, num_classes=3, batch_size=4, training=True, seed=1)
>>> [tuple(b[0].shape) for b in ds]
[(4, 32, 32, 3), (4, 32, 32, 3), (2, 32, 32, 3)]
>>> tuple(next(iter(ds))[1].shape)
(4, 3)

Used by notebook 04 (``make_dataset`` for the paper model's ``model.fit``, the augmentation
layers, and through :mod:`tlcnn_helpers.training`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from .errors import ModelInputError, TLCNNError

AUGMENTATIONS = ("none", "flip", "flip_translate", "flip_crop")
SCALE_WEIGHTINGS = ("uniform", "inverse_size", "equal_compute")


def to_one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Integer labels 0..num_classes-1 as float32 one-hot rows (what the paper's loss needs).

    >>> to_one_hot(np.array([0, 2]), 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ModelInputError(
            f"labels must be a 1-D array of integers 0..{num_classes - 1}; got shape "
            f"{labels.shape} with values {labels.min() if labels.size else '-'}.."
            f"{labels.max() if labels.size else '-'}")
    return np.eye(num_classes, dtype="float32")[labels.astype("int64")]


def augmentation_layers(kind: str = "flip_translate", *, seed: int = 0,
                        image_size: Sequence[int] = (32, 32)):
    """The Keras preprocessing layers of an augmentation ``kind`` (``None`` for ``"none"``).

    ``"flip"``: random horizontal flips. ``"flip_translate"``: flips and random shifts of up
    to 1/8 of the image (reflected borders). ``"flip_crop"``: flips, then a random
    ``image_size`` crop of the image padded by 4 pixels (the classic CIFAR augmentation).

    >>> [layer.__class__.__name__ for layer in augmentation_layers("flip_translate").layers]
    ['RandomFlip', 'RandomTranslation']
    """
    import keras
    from keras import layers

    if kind not in AUGMENTATIONS:
        raise TLCNNError(f"augment={kind!r}: choose one of {', '.join(AUGMENTATIONS)}")
    if kind == "none":
        return None
    steps = [layers.RandomFlip("horizontal", seed=seed)]
    if kind == "flip_translate":
        steps.append(layers.RandomTranslation(0.125, 0.125, fill_mode="reflect", seed=seed + 1))
    elif kind == "flip_crop":
        height, width = image_size
        steps += [layers.ZeroPadding2D(4), layers.RandomCrop(height, width, seed=seed + 1)]
    return keras.Sequential(steps, name=f"augment_{kind}")


def scale_probabilities(sizes: Sequence[int], weighting: str = "inverse_size") -> np.ndarray:
    """How often each of ``sizes`` is drawn by :func:`make_dataset`'s scale augmentation.

    ``"uniform"``: every size equally often. ``"equal_compute"``: in proportion to
    1 / size\N{SUPERSCRIPT TWO}, so each size gets the same share of the compute (a 96 px batch
    costs about 9 times a 32 px one). ``"inverse_size"``: in proportion to 1 / size, in
    between: small sizes are drawn more often, large ones get more of the compute.

    >>> scale_probabilities([32, 64], "equal_compute").round(2).tolist()
    [0.8, 0.2]
    """
    sizes = np.asarray(sizes, "float64")
    if sizes.ndim != 1 or not len(sizes) or (sizes < 1).any():
        raise TLCNNError(f"scales={tuple(sizes)}: give one or more image sizes in pixels")
    if weighting not in SCALE_WEIGHTINGS:
        raise TLCNNError(f"scale weighting {weighting!r}: use one of {', '.join(SCALE_WEIGHTINGS)}")
    power = {"uniform": 0, "inverse_size": 1, "equal_compute": 2}[weighting]
    weights = 1.0 / sizes**power
    return weights / weights.sum()


def make_dataset(x: np.ndarray, y: np.ndarray, *, num_classes: int, batch_size: int = 64,
                 training: bool = False, seed: int = 0, augment: str = "none",
                 cache: bool = True, shuffle_buffer: int | None = None,
                 one_hot: bool = True, scales: Sequence[int] = (),
                 scale_weighting: str = "inverse_size"):
    """A ``tf.data.Dataset`` of ``(images, labels)`` batches for ``model.fit`` / ``evaluate``.

    Order of the steps and why:

    1. ``cache``: the decoded uint8 images are kept in memory after the first pass.
    2. ``shuffle`` (training only) with ``seed``, reshuffled every epoch, deterministically.
    3. ``batch``: augmentation then works on whole batches, far cheaper than per image.
    4. ``augment`` (training only): Keras preprocessing layers (:func:`augmentation_layers`).
    5. ``scales`` (training only; the multiscale recipe): each batch is resized (bilinear)
       to one size drawn from ``scales`` with :func:`scale_probabilities`, so a
       size-agnostic model learns objects at several sizes; one size per batch keeps
       batches rectangular. The sizes are deterministic for a ``seed``, new each epoch.
    6. ``prefetch``: the next batch is prepared while the model trains on this one.

    Labels are one-hot float32 (``one_hot=True``, for categorical cross-entropy) or ints.

    >>> x = np.zeros((6, 8, 8, 3), "uint8"); y = np.array([0, 1, 2, 0, 1, 2])
    >>> ds = make_dataset(x, y, num_classes=3, batch_size=6)
    >>> next(iter(ds))[1].numpy().sum(axis=0).tolist()
    [2.0, 2.0, 2.0]
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 4 or len(x) != len(y):
        raise ModelInputError(f"images must be (N, height, width, channels) with one label each; "
                              f"got images {x.shape} and labels {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ModelInputError(f"labels run from {y.min()} to {y.max()}, but num_classes="
                              f"{num_classes}: they must be 0..{num_classes - 1}")
    labels = to_one_hot(y, num_classes) if one_hot else y.astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, labels))
    if cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(shuffle_buffer or len(y), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    layers = augmentation_layers(augment, seed=seed, image_size=x.shape[1:3]) if training else None
    if layers is not None:
        def apply(images, targets):
            out = layers(tf.cast(images, "float32"), training=True)
            return out, targets

        # One call at a time keeps the random stream, hence the run, reproducible.
        ds = ds.map(apply)
    if training and len(scales):
        ds = _rescale_batches(ds, scales, scale_weighting, seed)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def _rescale_batches(ds, scales: Sequence[int], weighting: str, seed: int):
    """Each batch of ``ds`` resized to one of ``scales``, drawn by a seeded random stream."""
    cumulative = tf.constant(np.cumsum(scale_probabilities(scales, weighting)), "float64")
    sizes = tf.constant([int(size) for size in scales], "int32")
    # A stream of its own, zipped with the batches: deterministic for a seed, new each epoch.
    draws = tf.data.Dataset.random(seed=seed + 2, rerandomize_each_iteration=True)

    def rescale(batch, draw):
        images, targets = batch
        uniform = tf.cast(draw % 1_000_003, "float64") / 1_000_003.0
        index = tf.minimum(tf.searchsorted(cumulative, [uniform], side="right")[0],
                           len(scales) - 1)
        size = sizes[index]
        images = tf.image.resize(tf.cast(images, "float32"), tf.stack([size, size]))
        return images, targets

    return tf.data.Dataset.zip((ds, draws)).map(rescale)
