"""Model builders: the paper's CIFAR-10 CNN and the course's faster model.

Both take uint8-range images (0..255, any float or int dtype) and rescale inside the
model, so a saved model can be given raw images. Labels are one-hot (the paper used
categorical cross-entropy): see :func:`one_hot`.

>>> model = paper_cifar_cnn()
>>> model.input_shape, model.output_shape
((None, 32, 32, 3), (None, 9))
>>> fast = fast_cifar_cnn()
>>> fast.output_shape
(None, 9)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PAPER_FILTERS: tuple[int, ...] = (32, 64, 128, 256)
PAPER_DENSE_UNITS = 512
PAPER_DROPOUT = 0.5
PAPER_LEARNING_RATE = 1e-3

FAST_WIDTHS: tuple[int, ...] = (32, 64, 128, 256)
FAST_RESIDUAL_STAGES: tuple[int, ...] = (3,)


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Integer labels 0..num_classes-1 as float32 one-hot rows (what the paper's loss needs).

    >>> one_hot(np.array([0, 2]), 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    from .errors import ModelInputError

    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ModelInputError(
            f"labels must be a 1-D array of integers 0..{num_classes - 1}; got shape "
            f"{labels.shape} with values {labels.min() if labels.size else '-'}.."
            f"{labels.max() if labels.size else '-'}")
    return np.eye(num_classes, dtype="float32")[labels.astype("int64")]


def compile_for_classification(model, *, optimizer=None, learning_rate: float = PAPER_LEARNING_RATE,
                               label_smoothing: float = 0.0, jit_compile: bool | str = "auto"):
    """Compile ``model`` with categorical cross-entropy and categorical accuracy (one-hot labels).

    ``optimizer`` defaults to Adam at ``learning_rate`` (a float or a Keras schedule).

    >>> m = compile_for_classification(paper_cifar_cnn(compile=False), learning_rate=3e-4)
    >>> m.loss.__class__.__name__
    'CategoricalCrossentropy'
    """
    import keras

    if optimizer is None:
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=jit_compile,
    )
    return model


def paper_cifar_cnn(input_shape: Sequence[int] = (32, 32, 3), num_classes: int = 9, *,
                    filters: Sequence[int] = PAPER_FILTERS, dense_units: int = PAPER_DENSE_UNITS,
                    dropout: float = PAPER_DROPOUT, learning_rate: float = PAPER_LEARNING_RATE,
                    compile: bool = True, name: str = "paper_cifar_cnn"):
    """The paper's CIFAR-10 CNN, compiled like the paper (categorical cross-entropy, Adam).

    Four blocks of Conv2D (3x3, ReLU, ``same`` padding) -> MaxPooling2D (2x2) ->
    BatchNormalization with ``filters`` channels, then Flatten -> Dense(``dense_units``,
    ReLU) -> Dropout(``dropout``) -> Dense(``num_classes``, softmax). Inputs are pixels in
    0..255; a Rescaling layer maps them to 0..1. ``input_shape`` may be larger than 32x32
    (the Flatten layer then grows), which is what the transfer notebook compares against.

    >>> m = paper_cifar_cnn(num_classes=9)
    >>> [layer.__class__.__name__ for layer in m.layers[2:6]]
    ['Conv2D', 'MaxPooling2D', 'BatchNormalization', 'Conv2D']
    >>> m.count_params()
    919753
    """
    import keras
    from keras import layers

    _check_shape(input_shape, len(filters))
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for i, width in enumerate(filters, start=1):
        x = layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="hidden")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classes", dtype="float32")(x)
    model = keras.Model(inputs, outputs, name=name)
    if compile:
        compile_for_classification(model, learning_rate=learning_rate)
    return model


def fast_cifar_cnn(input_shape: Sequence[int] = (32, 32, 3), num_classes: int = 9, *,
                   widths: Sequence[int] = FAST_WIDTHS,
                   residual_stages: Sequence[int] = FAST_RESIDUAL_STAGES,
                   pool_before_norm: bool = True, name: str = "fast_cifar_cnn"):
    """The course's fast CIFAR model (uncompiled): cheap per image, quick to train.

    Like the paper's model it has one 3x3 convolution and one 2x2 max pooling per stage
    with ``widths`` filters, but BatchNormalization comes *before* the ReLU (conv -> pool ->
    BN -> ReLU; max pooling and ReLU commute, so pooling first keeps BatchNorm cheap), and
    a global max pooling replaces Flatten + the 512-unit dense layer, so the model has
    fewer weights and accepts any image size. ``residual_stages`` (1-based) adds a residual
    pair of Conv-BN-ReLU after those stages' pooling (more accuracy per epoch, at a cost
    per image). ``pool_before_norm=False`` gives the usual conv -> BN -> ReLU -> pool order
    (the same function, more work), kept to measure the difference. ``benchmarks/README.md`` has the measurements behind the defaults. Compile it
    with :func:`compile_for_classification` (the fast recipe in :mod:`tlcnn_helpers.training`
    does this with its schedule).

    >>> fast_cifar_cnn(widths=(8, 16), residual_stages=(2,)).count_params() > 0
    True
    """
    import keras
    from keras import layers

    _check_shape(input_shape, len(widths))
    for stage in residual_stages:
        if not 1 <= stage <= len(widths):
            from .errors import ModelInputError

            raise ModelInputError(f"residual_stages={tuple(residual_stages)}: stages are 1.."
                                  f"{len(widths)} for widths={tuple(widths)}")

    def conv_bn(x, width: int, label: str, pool: bool = False):
        x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{label}_conv")(x)
        if pool and pool_before_norm:  # BatchNorm then works on a map 4 times smaller
            x = layers.MaxPooling2D(2, name=f"{label}_pool")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"{label}_bn")(x)
        x = layers.Activation("relu", name=f"{label}_relu")(x)
        if pool and not pool_before_norm:
            x = layers.MaxPooling2D(2, name=f"{label}_pool")(x)
        return x

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for i, width in enumerate(widths, start=1):
        x = conv_bn(x, width, f"stage{i}", pool=True)
        if i in residual_stages:
            shortcut = x
            x = conv_bn(x, width, f"stage{i}_res1")
            x = conv_bn(x, width, f"stage{i}_res2")
            x = layers.Add(name=f"stage{i}_add")([shortcut, x])
    x = layers.GlobalMaxPooling2D(name="global_pool")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classes", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def _check_shape(input_shape: Sequence[int], poolings: int) -> None:
    from .errors import ModelInputError

    shape = tuple(input_shape)
    smallest = 2 ** poolings
    if len(shape) != 3 or shape[2] != 3 or min(shape[:2]) < smallest:
        raise ModelInputError(
            f"input_shape={shape}: need (height, width, 3) RGB images at least "
            f"{smallest}x{smallest} for {poolings} pooling steps")
