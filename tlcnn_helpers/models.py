"""The course's CNNs as Keras builders, one optimizer factory, and one way to compile them.

* :func:`paper_cnn` is the paper's CNN (Conv2D -> MaxPooling2D -> BatchNormalization
  blocks, Flatten, Dense, Dropout, softmax), parameterised so that the same function builds
  the CIFAR-10 model of notebook 04 and every model of notebook 05's STL-10 search.
* :func:`fast_cifar_cnn` is the course's faster model (BatchNorm before ReLU, a residual
  pair, global pooling).
* :func:`best_cifar_cnn` is the 30-minute model: three wide stages of two convolutions
  each, the layout of the public airbench models.
* Builders never compile: :func:`compile_for_classification` does, with an optimizer from
  :func:`make_optimizer`.

Both take uint8-range images (0..255, any float or int dtype) and rescale inside the
model, so a saved model can be given raw images.

>>> model = paper_cnn()
>>> model.input_shape, model.output_shape
((None, 32, 32, 3), (None, 9))
>>> fast = fast_cifar_cnn()
>>> fast.output_shape
(None, 9)

Used by notebooks 01 (the paper model's parameters and multiply-adds), 04 (the CIFAR-10
models), 05 (the search's model) and 06 (the models moved to 96x96).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers

from .errors import ModelInputError

PAPER_FILTERS: tuple[int, ...] = (32, 64, 128, 256)
PAPER_DENSE_UNITS = 512
PAPER_DROPOUT = 0.5
PAPER_LEARNING_RATE = 1e-3

FAST_WIDTHS: tuple[int, ...] = (32, 64, 128, 256)
BEST_WIDTHS: tuple[int, ...] = (64, 256, 256)
WHITENING_PATCH = 2  # airbench's: 2x2 patches of 3 colours, 12 directions
FAST_RESIDUAL_STAGES: tuple[int, ...] = (3,)

# The optimizers the recipes and the search choose from, by the names they use.
OPTIMIZERS: dict[str, type[keras.optimizers.Optimizer]] = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}


def make_optimizer(name: str, learning_rate: float | keras.optimizers.schedules.LearningRateSchedule,
                   *, weight_decay: float | None = None, momentum: float = 0.9,
                   nesterov: bool = False) -> keras.optimizers.Optimizer:
    """The Keras optimizer ``name`` (``adam``, ``adamw``, ``sgd``, ``rmsprop``) at ``learning_rate``.

    SGD always uses ``momentum`` (0.9), with Nesterov's variant if ``nesterov``;
    ``weight_decay`` is passed on when given (for ``adamw`` it is the decoupled decay).

    >>> type(make_optimizer("sgd", 0.01)).__name__
    'SGD'
    >>> make_optimizer("adamw", 1e-3, weight_decay=0.05).weight_decay
    0.05
    """
    if name not in OPTIMIZERS:
        raise ModelInputError(f"optimizer {name!r} is unknown: use one of {', '.join(OPTIMIZERS)}")
    options: dict = {}
    if name == "sgd":
        options.update(momentum=momentum, nesterov=nesterov)
    if weight_decay is not None:
        options["weight_decay"] = weight_decay
    return OPTIMIZERS[name](learning_rate=learning_rate, **options)


def compile_for_classification(model: keras.Model, *,
                               optimizer: keras.optimizers.Optimizer | None = None,
                               learning_rate: float = PAPER_LEARNING_RATE,
                               label_smoothing: float = 0.0, labels: str = "one_hot",
                               jit_compile: bool | str = "auto") -> keras.Model:
    """Compile ``model`` with cross-entropy and accuracy; returns it.

    ``labels="one_hot"`` (what :mod:`tlcnn_helpers.pipelines` feeds, and what label
    smoothing needs) uses categorical cross-entropy; ``labels="integer"`` the sparse
    version, which is the same loss computed from class numbers. A last layer without
    softmax is taken to output logits. ``optimizer`` defaults to Adam at ``learning_rate``.

    >>> m = compile_for_classification(paper_cnn(), learning_rate=3e-4)
    >>> m.loss.__class__.__name__
    'CategoricalCrossentropy'
    """
    if labels not in ("one_hot", "integer"):
        raise ModelInputError(f"labels={labels!r}: use 'one_hot' or 'integer'")
    if optimizer is None:
        optimizer = make_optimizer("adam", learning_rate)
    activation = getattr(model.layers[-1], "activation", None)
    from_logits = getattr(activation, "__name__", "") != "softmax"
    if labels == "one_hot":
        loss = keras.losses.CategoricalCrossentropy(from_logits=from_logits,
                                                    label_smoothing=label_smoothing)
        metric = keras.metrics.CategoricalAccuracy(name="accuracy")
    else:
        if label_smoothing:
            raise ModelInputError("label smoothing needs one-hot labels: use labels='one_hot'")
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
        metric = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(optimizer=optimizer, loss=loss, metrics=[metric], jit_compile=jit_compile)
    return model


def paper_cnn(input_shape: Sequence[int] = (32, 32, 3), num_classes: int = 9, *,
              filters: Sequence[int] = PAPER_FILTERS, dense_units: int = PAPER_DENSE_UNITS,
              dense_layers: int = 1, dropout: float = PAPER_DROPOUT,
              name: str = "paper_cifar_cnn") -> keras.Model:
    """The paper's CNN (uncompiled): one block per entry of ``filters``, then the dense head.

    Each block is Conv2D (3x3, ReLU, ``same`` padding) -> MaxPooling2D (2x2) ->
    BatchNormalization; then Flatten -> ``dense_layers`` x [Dense(``dense_units``, ReLU) ->
    Dropout(``dropout``), left out at 0] -> Dense(``num_classes``, softmax). Inputs are
    pixels in 0..255; a Rescaling layer maps them to 0..1. The defaults are notebook 04's
    CIFAR-10 model (the paper gives the layer types; the widths 32-64-128-256, 512 units
    and dropout 0.5 are the course's reconstruction); notebook 05's search varies every
    argument. ``input_shape`` may be larger than 32x32 (the Flatten layer then grows),
    which is what the transfer notebook compares against.

    >>> m = paper_cnn(num_classes=9)
    >>> [layer.__class__.__name__ for layer in m.layers[2:6]]
    ['Conv2D', 'MaxPooling2D', 'BatchNormalization', 'Conv2D']
    >>> m.count_params()
    919753
    >>> paper_cnn((96, 96, 3), filters=(16, 32, 64), dense_units=64, dense_layers=2,
    ...           dropout=0.0).count_params()
    618665
    """
    _check_shape(input_shape, len(filters))
    if dense_layers < 1:
        raise ModelInputError(f"dense_layers={dense_layers}: the head needs at least one layer")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for i, width in enumerate(filters, start=1):
        x = layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    for i in range(1, dense_layers + 1):
        x = layers.Dense(dense_units, activation="relu", name=f"hidden{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout{i}")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classes", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def _conv_bn(x, width: int, label: str, *, pool: bool = False, pool_before_norm: bool = True,
             activation: str = "relu"):
    """3x3 Conv2D (no bias: BatchNorm brings its own offset) -> [pool] -> BN -> activation."""
    x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{label}_conv")(x)
    if pool and pool_before_norm:  # BatchNorm then works on a map 4 times smaller
        x = layers.MaxPooling2D(2, name=f"{label}_pool")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{label}_bn")(x)
    x = layers.Activation(activation, name=f"{label}_{activation}")(x)
    if pool and not pool_before_norm:
        x = layers.MaxPooling2D(2, name=f"{label}_pool")(x)
    return x


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
    _check_shape(input_shape, len(widths))
    for stage in residual_stages:
        if not 1 <= stage <= len(widths):
            raise ModelInputError(f"residual_stages={tuple(residual_stages)}: stages are 1.."
                                  f"{len(widths)} for widths={tuple(widths)}")

    def conv_bn(x, width: int, label: str, pool: bool = False):
        return _conv_bn(x, width, label, pool=pool, pool_before_norm=pool_before_norm)

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


def best_cifar_cnn(input_shape: Sequence[int] = (32, 32, 3), num_classes: int = 9, *,
                   widths: Sequence[int] = BEST_WIDTHS, activation: str = "relu",
                   whiten: bool = False, name: str = "best_cifar_cnn") -> keras.Model:
    """The course's 30-minute CIFAR model (uncompiled): few stages, each wide and doubled.

    Each stage is Conv2D -> MaxPooling2D -> BatchNormalization -> activation, then a second
    Conv2D -> BatchNormalization -> activation at the pooled size; ``widths`` (64, 256, 256)
    narrow at the input and wide after the first pooling, where a 3x3 convolution is cheap.
    This is the layout of Keller Jordan's airbench94 (``github.com/KellerJordan/cifar10-airbench``)
    rebuilt in Keras: about 6 times the fast model's multiply-adds per image, so it needs the
    30-minute budget of the ``best`` recipe. ``whiten`` adds airbench's first layer: a frozen
    2x2 convolution named ``whiten`` whose filters :func:`fit_whitening` sets from the
    training images (the ``train_recipe`` helper does it).

    >>> best_cifar_cnn().count_params()
    1962441
    """
    _check_shape(input_shape, len(widths))
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    if whiten:
        x = layers.Conv2D(2 * WHITENING_PATCH**2 * 3, WHITENING_PATCH, trainable=False,
                          name="whiten")(x)
        x = layers.Activation(activation, name=f"whiten_{activation}")(x)
    for i, width in enumerate(widths, start=1):
        x = _conv_bn(x, width, f"stage{i}a", pool=True, activation=activation)
        x = _conv_bn(x, width, f"stage{i}b", activation=activation)
    x = layers.GlobalMaxPooling2D(name="global_pool")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classes", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def whitening_weights(images: np.ndarray, epsilon: float = 5e-4, max_images: int = 2000,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Kernel and bias of a 2x2 convolution that whitens image patches (patch PCA).

    The 12 eigenvectors of the covariance of all 2x2x3 patches (pixels scaled to 0..1, from
    at most ``max_images`` images) become filters, each divided by the square root of its
    eigenvalue + ``epsilon``, so every output channel has about unit variance and none is
    correlated with another; each filter comes twice, as ``+v`` and ``-v``, so a ReLU after
    it keeps both signs. The bias centres the outputs.

    >>> rng = np.random.default_rng(0)
    >>> kernel, bias = whitening_weights(rng.integers(0, 256, (50, 8, 8, 3)))
    >>> kernel.shape, bias.shape
    ((2, 2, 3, 24), (24,))
    """
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(images))[:max_images]
    x = np.asarray(images)[pick].astype("float64") / 255.0
    p = WHITENING_PATCH
    windows = np.lib.stride_tricks.sliding_window_view(x, (p, p), axis=(1, 2))
    patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, p * p * 3)  # (h, w, colour)
    mean = patches.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(patches, rowvar=False))
    filters = eigenvectors / np.sqrt(eigenvalues + epsilon)  # one filter per column
    filters = np.concatenate([filters, -filters], axis=1)
    kernel = filters.reshape(p, p, 3, -1).astype("float32")
    return kernel, (-mean @ filters).astype("float32")


def fit_whitening(model: keras.Model, images: np.ndarray) -> bool:
    """Set the filters of ``model``'s ``whiten`` layer from ``images``; False if it has none.

    >>> fit_whitening(best_cifar_cnn(), np.zeros((4, 32, 32, 3), "uint8"))
    False
    """
    if "whiten" not in {layer.name for layer in model.layers}:
        return False
    model.get_layer("whiten").set_weights(list(whitening_weights(images)))
    return True


def _check_shape(input_shape: Sequence[int], poolings: int) -> None:
    shape = tuple(input_shape)
    smallest = 2 ** poolings
    sides = [side for side in shape[:2] if side is not None]  # None: any size
    if len(shape) != 3 or shape[2] != 3 or (sides and min(sides) < smallest):
        raise ModelInputError(
            f"input_shape={shape}: need (height, width, 3) RGB images at least "
            f"{smallest}x{smallest} for {poolings} pooling steps")
