"""The exercises of notebook 06 (transfer across image sizes), registered with :mod:`tlcnn_helpers.exercises`.

Each checker compares with an independent source: Keras' own shapes for the flatten size, a
brute-force search over image sizes for the smallest input, the receptive-field recurrence
of :mod:`tlcnn_helpers.convolution` for the prediction, and
:func:`tlcnn_helpers.transfer.make_size_agnostic`'s predictions for the weight copy by hand.

>>> from tlcnn_helpers import exercises
>>> exercises.exercises_of("06")
['06.flatten_size', '06.predict_sweep', '06.size_agnostic_by_hand', '06.smallest_input']

Used by notebook 06 (its exercises, and the prediction asked before the resolution sweep).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UnfinishedAnswer
from . import _whole_number, register

FLATTEN_QUESTION_SHAPE = (64, 128, 3)  # height, width, channels: not a size the notebook shows
FIVE_BLOCKS = (32, 64, 128, 256, 512)


def _flatten_size(input_shape: tuple[int, int, int]) -> int:
    """What Keras says the paper model's Flatten layer outputs for ``input_shape``."""
    from ..models import paper_cnn

    model = paper_cnn(input_shape=input_shape)
    return int(model.get_layer("flatten").output.shape[-1])


@register("06.flatten_size",
          "How many numbers does the paper model's Flatten layer produce for an image 64 pixels "
          "high and 128 wide? Set `answer` to the number.",
          reference=lambda: _flatten_size(FLATTEN_QUESTION_SHAPE))
def _check_flatten_size(answer: Any) -> str | None:
    number = _whole_number(answer, "1024")
    if isinstance(number, str):
        return number
    expected = _flatten_size(FLATTEN_QUESTION_SHAPE)
    if number == expected:
        return None
    height, width, _ = FLATTEN_QUESTION_SHAPE
    channels = 256
    positions = expected // channels
    known = {
        _flatten_size((32, 32, 3)): "that is the 32x32 size (2x2x256): redo it for 64x128",
        _flatten_size((96, 96, 3)): "that is the 96x96 size the notebook showed: redo it for 64x128",
        positions: f"{positions} positions is right, but each position holds {channels} channels",
        height * width * 3: "that is the input image: the four poolings halve it first",
        expected * 4: "one halving is missing: there are four poolings, each halves both sides",
        expected // 4: "one halving too many: there are four poolings",
    }
    why = known.get(number, f"each of the 4 poolings halves both sides ({height}x{width} -> "
                            f"... -> {height // 16}x{width // 16}), and the last block has "
                            f"{channels} channels")
    return f"{number} is not it: {why}"


def _smallest_side(filters: tuple[int, ...]) -> int:
    """Brute force: the smallest square side whose feature map survives every block."""
    import keras

    from ..models import paper_cnn

    model = paper_cnn(input_shape=(2 ** len(filters),) * 2 + (3,), filters=filters)
    stack = [layer for layer in model.layers
             if isinstance(layer, (keras.layers.Conv2D, keras.layers.MaxPooling2D))]
    for side in range(1, 2 ** (len(filters) + 2)):
        shape: tuple = (1, side, side, 3)
        try:
            for layer in stack:
                shape = tuple(layer.compute_output_shape(shape))
        except ValueError:  # Keras: "output size would be zero or negative"
            continue
        if min(shape[1:3]) >= 1:
            return side
    raise AssertionError("no size found")  # pragma: no cover (a deeper model than asked)


@register("06.smallest_input",
          "The paper's model has 4 blocks (conv, 2x2 pooling, BatchNorm). With a fifth block "
          "(filters 32, 64, 128, 256, 512), what is the smallest square image side (in pixels) "
          "it could take once size-agnostic? Set `answer` to the number.",
          reference=lambda: _smallest_side(FIVE_BLOCKS))
def _check_smallest_input(answer: Any) -> str | None:
    number = _whole_number(answer, "32")
    if isinstance(number, str):
        return number
    expected = _smallest_side(FIVE_BLOCKS)
    if number == expected:
        return None
    if number == _smallest_side(FIVE_BLOCKS[:4]):
        return (f"{number} is the 4-block model's answer: a fifth pooling halves the map once "
                "more, so the input must be twice as large")
    if number > expected:
        return (f"{number} works, but smaller does too: the 'same' convolutions keep the size, "
                "each pooling halves it, and the last one needs at least 2 pixels")
    return (f"with {number} pixels a pooling layer gets 1 pixel (or none) and outputs nothing: "
            f"follow {number} through five halvings")


# ---------------------------------------------------------------------------- predict, then run
SWEEP_CHOICES = ("all", "part", "none")


def _paper_field() -> int:
    from ..convolution import receptive_field_growth
    from ..models import paper_cnn

    return receptive_field_growth(paper_cnn())[-1].size


@register("06.predict_sweep",
          "Before running the sweep: the CIFAR-10 test images are upsampled from 32 to 96 pixels "
          "and given to the size-agnostic paper model, with and without re-calibrating its "
          "BatchNorm statistics on upsampled training images. At 96 px, will re-calibration "
          "bring the accuracy back to its 32 px level ('all'), recover 'part' of the gap, or "
          "'none' of it? Set `prediction` to one of the three.",
          reference=lambda: "part")
def _check_predict_sweep(prediction: Any) -> str | None:
    if not isinstance(prediction, str) or prediction.strip().lower() not in SWEEP_CHOICES:
        return f"answer with one of {', '.join(map(repr, SWEEP_CHOICES))}, not {prediction!r}"
    field = _paper_field()
    if prediction.strip().lower() == "part":
        return None
    if prediction.strip().lower() == "all":
        return ("re-calibration re-estimates BatchNorm's means and variances for the new scale, "
                f"but the filters stay as learnt: one output cell sees {field} px, all of a "
                "32 px object but under half of the same object at 96 px: compare the two curves")
    return ("upsampled objects change the features' statistics, and re-estimating them on "
            "unlabelled images at the new size (AdaBN) removes that part of the loss: compare "
            "the two curves")


# ---------------------------------------------------------------------------- the weight copy by hand
CHECK_SIZES = (32, 64)


def _checking_model(seed: int = 6) -> Any:
    """A small paper-style model with random weights, biases and BatchNorm statistics."""
    import keras

    from ..models import paper_cnn

    keras.utils.set_random_seed(seed)
    model = paper_cnn(filters=(8, 16, 32), dense_units=16, dropout=0.5, name="checking_cnn")
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if getattr(layer, "use_bias", False):  # fresh biases are 0: a dropped bias would pass
            layer.bias.assign(rng.normal(0.0, 0.1, layer.bias.shape).astype("float32"))
        if isinstance(layer, keras.layers.BatchNormalization):
            size = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0.2, 0.1, size).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, size).astype("float32"))
    return model


def _reference_size_agnostic(model: Any) -> Any:
    """The weight copy of notebook 06, for any paper-style model (conv blocks, Flatten, Dense)."""
    import keras

    inputs = keras.Input((None, None, model.input_shape[-1]), name="image")
    x, fold_next = inputs, None
    for layer in model.layers[1:]:
        if isinstance(layer, keras.layers.Flatten):
            fold_next = tuple(layer.input.shape[1:])  # (h, w, c) of the last feature map
            x = keras.layers.GlobalAveragePooling2D(name="global_avg_pool")(x)
        elif fold_next is not None and isinstance(layer, keras.layers.Dense):
            kernel, bias = layer.get_weights()
            height, width, channels = fold_next
            folded = kernel.reshape(height, width, channels, -1).sum(axis=(0, 1))
            dense = keras.layers.Dense(layer.units, activation=layer.activation, name=layer.name)
            x = dense(x)
            dense.set_weights([folded, bias])
            fold_next = None
        else:
            x = layer(x)  # a trained layer, called again: its weights are shared
    return keras.Model(inputs, x, name=f"{model.name}_any_size")


def _images(size: int, count: int = 3) -> np.ndarray:
    return np.random.default_rng(size).uniform(0, 255, (count, size, size, 3)).astype("float32")


def _first_dense_after_pooling(model: Any) -> Any | None:
    import keras

    pooled = False
    for layer in getattr(model, "layers", []):
        if isinstance(layer, (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)):
            pooled = True
        elif pooled and isinstance(layer, keras.layers.Dense):
            return layer
    return None


@register("06.size_agnostic_by_hand",
          "Complete any_size(model): take a trained paper-style model (conv blocks, Flatten, "
          "Dense, Dropout, Dense) and return a model on keras.Input((None, None, 3)) with "
          "GlobalAveragePooling2D where Flatten was and the Dense kernel folded, as notebook 06 "
          "does by hand. It must work for any number of blocks and widths.",
          reference=lambda: _reference_size_agnostic)
def _check_size_agnostic_by_hand(function: Any) -> str | None:
    import keras

    from ..transfer import make_size_agnostic

    if not callable(function):
        return f"pass your function itself (no parentheses), not {type(function).__name__}"
    model = _checking_model()
    before = [w.copy() for w in model.get_weights()]
    try:
        got = function(model)
    except ValueError as err:
        if "incompatible" in str(err) or "shape" in str(err):
            return ("a weight did not fit (" + str(err).splitlines()[0][:160] + "): the Dense "
                    "kernel after Flatten has h*w*c rows, after global pooling it needs c: fold "
                    "it (reshape to (h, w, c, units), then sum over h and w)")
        raise
    if got is None:
        raise UnfinishedAnswer("your function returns None; replace the TODO with your code")
    if not isinstance(got, keras.Model):
        return f"return a keras.Model, not {type(got).__name__}"
    if any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True)):
        return "your function changed the trained model's weights: build a new model instead"
    if any(isinstance(layer, keras.layers.Flatten) for layer in got.layers):
        return ("your model still has a Flatten layer, so it only takes one image size: put "
                "GlobalAveragePooling2D where Flatten was")
    if tuple(got.input_shape[1:3]) != (None, None):
        return (f"your model's input is {got.input_shape}: start from keras.Input((None, None, "
                "3)) so that it takes any height and width")
    reference, _ = make_size_agnostic(model)
    dense = _first_dense_after_pooling(got)
    folded = _first_dense_after_pooling(reference).kernel.numpy()
    if dense is not None and dense.kernel.shape == folded.shape:
        kernel = dense.kernel.numpy()
        flatten = model.get_layer("flatten").input.shape[1:]
        positions = int(flatten[0]) * int(flatten[1])
        if not np.allclose(kernel, folded, atol=1e-5):
            if np.allclose(kernel * positions, folded, atol=1e-5):
                return ("you averaged the kernel over the positions, but global average "
                        "pooling already divides by height x width: sum the rows instead")
            return ("the Dense kernel after the pooling is not the folded one: reshape the "
                    "trained kernel to (h, w, c, units) and sum over h and w (Flatten orders "
                    "its numbers height, width, channels)")
    for size in CHECK_SIZES:
        images = _images(size)
        expected = reference.predict(images, verbose=0)
        try:
            predicted = np.asarray(got.predict(images, verbose=0))
        except ValueError as err:
            return f"your model cannot take {size}x{size} images: {str(err).splitlines()[0][:200]}"
        if predicted.shape != expected.shape:
            return f"at {size} px expected predictions of shape {expected.shape}, got {predicted.shape}"
        if not np.allclose(predicted, expected, atol=1e-4):
            worst = float(np.abs(predicted - expected).max())
            return (f"at {size} px your predictions differ from make_size_agnostic's by up to "
                    f"{worst:.3g}: reuse every trained layer (convolutions, BatchNorm, the last "
                    "Dense) and copy the hidden Dense's bias as it is")
    return None
