"""Exercises with automatic feedback, in words a student understands.

An :class:`Exercise` has a name (``"01.output_shape"``: notebook number, then a short
name), a prompt, a reference solution and a checker. A checker receives the student's
answer and returns ``None`` when it is right, or one sentence saying what is wrong and
where to look ("expected shape (15, 15), got (16, 16): check the padding ..."). The
notebook cell calls :func:`check`, which prints the feedback and never raises: an
unfinished answer (``None``, or a function that still returns ``None``) is "not done
yet", an exception inside the student's code is reported, and the notebook runs on.

Adding an exercise for another notebook takes one decorated function (in any module
imported before the notebook calls :func:`check`):

>>> @register("99.double", "Write double(x) that returns 2 * x.", reference=lambda: (lambda x: 2 * x))
... def _check_double(double):
...     got = double(3)
...     return None if got == 6 else f"double(3) should be 6, got {got}: multiply by 2"
>>> check("99.double", lambda x: x + 2)
❌ 99.double: double(3) should be 6, got 5: multiply by 2
>>> check("99.double", reference_solution("99.double"))
✅ 99.double: correct!
>>> check("99.double", None)
📝 99.double: not done yet. Write double(x) that returns 2 * x.
>>> _ = EXERCISES.pop("99.double")
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import TLCNNError
from .ops import average_pool2d, conv2d, conv_output_size, correlate2d_loops, max_pool2d

Checker = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Feedback:
    """The outcome of one check: ``status`` is ``"correct"``, ``"wrong"`` or ``"todo"``."""

    exercise: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "correct"

    def __str__(self) -> str:
        mark = {"correct": "✅", "wrong": "❌", "todo": "📝"}[self.status]
        return f"{mark} {self.exercise}: {self.message}"


@dataclass(frozen=True)
class Exercise:
    """One exercise: what to do, how to check it, and the reference solution."""

    name: str
    prompt: str
    checker: Checker
    reference: Callable[[], Any]


EXERCISES: dict[str, Exercise] = {}


class UnfinishedAnswer(Exception):
    """Raised inside a checker when the student's function still returns ``None``."""


def register(name: str, prompt: str, reference: Callable[[], Any]) -> Callable[[Checker], Checker]:
    """Decorator: make the decorated checker the check of a new exercise ``name``.

    ``reference`` is called with no arguments and returns the reference answer (a value, or
    the reference function for "write a function" exercises). The module docstring has a
    complete example.
    """
    def decorate(checker: Checker) -> Checker:
        known = EXERCISES.get(name)
        same_checker = known is not None and (
            (known.checker.__module__, known.checker.__qualname__)
            == (checker.__module__, checker.__qualname__))
        if known is not None and not same_checker:  # re-importing a module is fine
            raise TLCNNError(f"exercise {name!r} is registered twice: give it another name")
        EXERCISES[name] = Exercise(name, prompt, checker, reference)
        return checker
    return decorate


def _exercise(name: str) -> Exercise:
    if name not in EXERCISES:
        raise TLCNNError(f"no exercise called {name!r}: the exercises are "
                         f"{', '.join(sorted(EXERCISES))}")
    return EXERCISES[name]


def evaluate(name: str, answer: Any) -> Feedback:
    """Check ``answer`` for exercise ``name`` and return the :class:`Feedback` (no printing).

    >>> feedback = evaluate("02.pool_params", 0)
    >>> feedback.passed, feedback.status
    (True, 'correct')
    """
    exercise = _exercise(name)
    if answer is None:
        return Feedback(name, "todo", f"not done yet. {exercise.prompt}")
    try:
        problem = exercise.checker(answer)
    except UnfinishedAnswer as unfinished:
        return Feedback(name, "todo", f"not done yet: {unfinished}")
    except Exception as err:  # the student's code failed: report it, keep the notebook going
        return Feedback(name, "wrong", f"your code raised {type(err).__name__}: {err}")
    if problem:
        return Feedback(name, "wrong", problem)
    return Feedback(name, "correct", "correct!")


def check(name: str, answer: Any) -> None:
    """Print the feedback on ``answer`` for exercise ``name``; never raises for a wrong answer.

    >>> check("01.output_shape", (16, 16))  # doctest: +ELLIPSIS
    ❌ 01.output_shape: expected shape (15, 15), got (16, 16): check the padding...
    """
    print(evaluate(name, answer))


def reference_solution(name: str) -> Any:
    """The reference answer of exercise ``name`` (a value or a function).

    >>> reference_solution("01.output_shape")
    (15, 15)
    """
    return _exercise(name).reference()


def reveal(name: str) -> None:
    """Print the reference solution, for a student who is stuck (functions as source code).

    >>> reveal("02.pooled_shape")
    (16, 16, 16)
    """
    answer = reference_solution(name)
    if callable(answer):
        print(inspect.getsource(answer))
    else:
        print(repr(answer))


def exercises_of(notebook: str) -> list[str]:
    """Names of the exercises of one notebook, e.g. ``exercises_of("01")``.

    >>> exercises_of("02")
    ['02.global_average', '02.max_pool', '02.pool_params', '02.pooled_shape']
    """
    return sorted(name for name in EXERCISES if name.split(".")[0] == notebook)


# --------------------------------------------------------------------- answer helpers
def _shape_tuple(answer: Any, length: int, example: str) -> tuple[int, ...] | str:
    """The answer as a tuple of ints, or a message saying why it is not one."""
    if isinstance(answer, (list, np.ndarray)):
        answer = tuple(np.asarray(answer).tolist())
    if not isinstance(answer, tuple):
        return f"answer with a tuple like {example}, not {type(answer).__name__} {answer!r}"
    if len(answer) != length:
        return f"give {length} numbers, like {example}; you gave {len(answer)}: {answer}"
    if not all(isinstance(v, (int, float, np.integer, np.floating)) for v in answer):
        return f"give numbers, like {example}; got {answer!r}"
    if any(not float(v).is_integer() for v in answer):
        return (f"sizes are whole numbers, got {answer}: the formula rounds down, "
                "floor((n - k) / s) + 1")
    return tuple(int(v) for v in answer)


def _call(function: Any, *args: Any) -> Any:
    """Call the student's function; ``None`` back means it is not written yet."""
    if not callable(function):
        raise TypeError(f"pass your function itself (no parentheses), not {type(function).__name__}")
    result = function(*args)
    if result is None:
        raise UnfinishedAnswer("your function returns None; replace the TODO with your code")
    return np.asarray(result, dtype=float)


def _first_difference(expected: np.ndarray, got: np.ndarray) -> str:
    row, col = np.unravel_index(np.argmax(np.abs(expected - got)), expected.shape)[:2]
    return (f"at position ({row}, {col}) expected {expected[row, col]:.3g}, "
            f"got {got[row, col]:.3g}")


# ------------------------------------------------------------------- notebook 00: set-up
def _whole_number(answer: Any, example: str) -> int | str:
    if isinstance(answer, (bool, np.bool_)) or not isinstance(answer, (int, float, np.number)):
        return f"answer with a number, like {example}, not {type(answer).__name__} {answer!r}"
    if not float(answer).is_integer():
        return f"the answer is a whole number, got {answer}"
    return int(answer)


@register("00.cifar_row_bytes",
          "How many bytes does one image take in CIFAR-10's binary format, label included?",
          reference=lambda: 1 + 32 * 32 * 3)
def _check_cifar_row_bytes(answer: Any) -> str | None:
    got = _whole_number(answer, "3000")
    if isinstance(got, str):
        return got
    hints = {32 * 32 * 3: "that is the pixels only: each row starts with one label byte",
             32 * 32: "that is one colour channel: a row holds red, green and blue planes",
             32 * 32 + 1: "that is one colour channel and the label: there are three channels"}
    if got == 1 + 32 * 32 * 3:
        return None
    return f"expected a different count, got {got}: " + hints.get(
        got, "1 label byte, then 32 x 32 pixels for each of the 3 channels")


@register("00.horse_label", "Which label (0 to 8) does `horse` have in both datasets?",
          reference=lambda: 6)
def _check_horse_label(answer: Any) -> str | None:
    got = _whole_number(answer, "4")
    if isinstance(got, str):
        return got
    if got == 6:
        return None
    if got == 7:
        return ("7 is horse's label among CIFAR-10's own ten classes, where frog comes before it; "
                "the shared labels drop frog, so count in SHARED_CLASSES")
    return f"got {got}: look it up with SHARED_CLASSES.index('horse')"


@register("00.pixel_ratio",
          "How many times more pixels does an STL-10 image have than a CIFAR-10 image?",
          reference=lambda: (96 * 96) // (32 * 32))
def _check_pixel_ratio(answer: Any) -> str | None:
    got = _whole_number(answer, "4")
    if isinstance(got, str):
        return got
    if got == 9:
        return None
    if got == 3:
        return "3 is the ratio of the sides; the number of pixels grows with the area: (96 / 32) ** 2"
    if got == 27:
        return "count pixels, not values: both images have 3 channels, so the channels cancel out"
    return f"got {got}: divide 96 x 96 by 32 x 32"


# ------------------------------------------------------------- notebook 01: convolution
@register("01.output_shape",
          "A 31x31 image goes through a 3x3 convolution with stride 2 and padding 'valid'. "
          "Set `answer` to the output (height, width).",
          reference=lambda: (conv_output_size(31, 3, 2, "valid"),) * 2)
def _check_output_shape(answer: Any) -> str | None:
    shape = _shape_tuple(answer, 2, "(10, 10)")
    if isinstance(shape, str):
        return shape
    expected = (conv_output_size(31, 3, 2, "valid"),) * 2
    if shape == expected:
        return None
    side = shape[0]
    why = {
        conv_output_size(31, 3, 2, "same"): "check the padding: 'valid' adds no border, so "
                                            "the 3x3 window must fit inside the image",
        conv_output_size(31, 3, 1, "valid"): "check the stride: the window moves 2 pixels "
                                             "at a time, so about half as many positions fit",
        (31 - 3) // 2: "you forgot the +1: the first position counts too, "
                       "floor((n - k) / s) + 1",
    }.get(side, "use floor((n - k) / s) + 1 with n = 31, k = 3, s = 2")
    return f"expected shape {expected}, got {shape}: {why}"


def _reference_vertical_edge_kernel() -> np.ndarray:
    # Sobel: right column minus left column, centre row weighted twice.
    return np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)


def _step_images(size: int = 9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    flat = np.full((size, size), 0.7)
    vertical = np.zeros((size, size))
    vertical[:, size // 2:] = 1.0  # dark left, bright right
    return flat, vertical, vertical.T.copy()  # the transpose: dark top, bright bottom


@register("01.vertical_edges",
          "Set `vertical_edge_kernel` to a 3x3 NumPy array that gives a large positive value "
          "where a dark left side meets a bright right side, and 0 on flat regions.",
          reference=_reference_vertical_edge_kernel)
def _check_vertical_edges(kernel: Any) -> str | None:
    kernel = np.asarray(kernel, dtype=float)
    if kernel.shape != (3, 3):
        return f"expected shape (3, 3), got {kernel.shape}: write three rows of three numbers"
    flat, vertical, horizontal = _step_images()
    on_flat = float(np.abs(conv2d(flat, kernel)).max())
    if on_flat > 1e-6:
        return (f"on a flat grey image your kernel gives {on_flat:.3g} instead of 0: make its "
                f"values add up to 0 (now they add up to {kernel.sum():.3g})")
    on_vertical = conv2d(vertical, kernel)
    on_horizontal = float(np.abs(conv2d(horizontal, kernel)).max())
    strongest = float(on_vertical.max())
    if strongest <= 1e-6 and on_vertical.min() < -1e-6:
        return ("it responds to the edge, but negatively: it looks for bright-to-dark. Swap "
                "the signs so that the right column is positive")
    if strongest <= 1e-6:
        return ("it gives 0 on a vertical edge: the left and right columns must differ "
                "(e.g. negative on the left, positive on the right)")
    if on_horizontal > 0.25 * strongest:
        return (f"it also responds to horizontal edges ({on_horizontal:.3g} versus "
                f"{strongest:.3g} on the vertical one): make the three rows the same shape, so "
                "only left-versus-right matters")
    return None


def _reference_strided_correlate(image: np.ndarray, kernel: np.ndarray, stride: int) -> np.ndarray:
    # Slide the kernel (not flipped), stepping `stride` pixels; multiply and sum each window.
    kh, kw = kernel.shape
    out_h = (image.shape[0] - kh) // stride + 1
    out_w = (image.shape[1] - kw) // stride + 1
    out = np.zeros((out_h, out_w))
    for row in range(out_h):
        for col in range(out_w):
            window = image[row * stride: row * stride + kh, col * stride: col * stride + kw]
            out[row, col] = np.sum(window * kernel)
    return out


@register("01.stride",
          "Complete `strided_correlate(image, kernel, stride)`: slide `kernel` over the 2-D "
          "`image` with padding 'valid', moving `stride` pixels at a time, and return the "
          "feature map.",
          reference=lambda: _reference_strided_correlate)
def _check_stride(function: Any) -> str | None:
    rng = np.random.default_rng(1)
    for shape, kernel_shape, stride in [((9, 11), (3, 3), 2), ((10, 8), (2, 3), 3),
                                        ((6, 7), (3, 3), 1)]:
        image, kernel = rng.random(shape), rng.normal(size=kernel_shape)
        expected = correlate2d_loops(image, kernel, stride)
        got = _call(function, image, kernel, stride)
        case = f"for a {shape} image, {kernel_shape} kernel and stride {stride}"
        if got.shape != expected.shape:
            if got.shape == correlate2d_loops(image, kernel, 1).shape and stride > 1:
                return (f"{case} expected shape {expected.shape}, got {got.shape}: you computed "
                        f"every position; move the window `stride` pixels at a time")
            return (f"{case} expected shape {expected.shape}, got {got.shape}: with padding "
                    "'valid' there are floor((n - k) / stride) + 1 positions along each side")
        if np.allclose(got, correlate2d_loops(image, kernel[::-1, ::-1], stride)):
            return ("you flipped the kernel (the textbook convolution); deep-learning layers "
                    "slide it as it is (cross-correlation)")
        if not np.allclose(got, expected, atol=1e-6):
            return (f"{case} the shape is right but {_first_difference(expected, got)}: the "
                    "window of output (r, c) starts at pixel (r * stride, c * stride); multiply "
                    "it by the kernel and sum")
    return None


@register("01.param_count",
          "How many trainable parameters does Conv2D(filters=16, kernel_size=5) have on RGB "
          "images of 32x32 pixels? Set `answer` to the number.",
          reference=lambda: 5 * 5 * 3 * 16 + 16)
def _check_param_count(answer: Any) -> str | None:
    if not isinstance(answer, (int, np.integer)) or isinstance(answer, bool):
        return f"answer with a whole number, not {type(answer).__name__} {answer!r}"
    expected = 5 * 5 * 3 * 16 + 16
    if answer == expected:
        return None
    why = {
        5 * 5 * 3 * 16: "you forgot the biases: one per filter",
        5 * 5 * 16 + 16: "each filter covers all 3 colour channels: it has 5 x 5 x 3 weights",
        5 * 5 * 16: "each filter has 5 x 5 x 3 weights (all channels) plus one bias",
        5 * 5 * 3 + 1: "that is one filter; the layer has 16 of them",
    }.get(int(answer), "the count does not depend on the image size: "
                       "kernel height x width x input channels x filters, plus one bias per filter"
          if answer % (32 * 32) == 0 or answer > 10 * expected else
          "kernel height x width x input channels x filters, plus one bias per filter")
    return f"expected {expected}, got {answer}: {why}"


# ----------------------------------------------------------------- notebook 02: pooling
@register("02.pooled_shape",
          "A feature map of shape (32, 32, 16) goes through MaxPooling2D(pool_size=2). Set "
          "`answer` to the output (height, width, channels).",
          reference=lambda: (16, 16, 16))
def _check_pooled_shape(answer: Any) -> str | None:
    shape = _shape_tuple(answer, 3, "(8, 8, 4)")
    if isinstance(shape, str):
        return shape
    if shape == (16, 16, 16):
        return None
    if shape[:2] == (16, 16):
        return (f"expected shape (16, 16, 16), got {shape}: pooling works on each channel "
                "separately, so the 16 channels stay 16")
    if shape[:2] == (31, 31):
        return (f"expected shape (16, 16, 16), got {shape}: check the stride; it defaults to "
                "the pool size (2), so windows do not overlap")
    return (f"expected shape (16, 16, 16), got {shape}: a 2x2 window moving 2 pixels halves "
            "the height and the width")


def _reference_max_pool_2x2(feature_map: np.ndarray) -> np.ndarray:
    # Keep the largest value of each 2x2 block; a last odd row or column is dropped ('valid').
    rows, cols = feature_map.shape[0] // 2, feature_map.shape[1] // 2
    blocks = feature_map[: rows * 2, : cols * 2].reshape(rows, 2, cols, 2)
    return blocks.max(axis=(1, 3))


@register("02.max_pool",
          "Complete `max_pool_2x2(feature_map)`: 2x2 max pooling with stride 2 and padding "
          "'valid' on a 2-D array.",
          reference=lambda: _reference_max_pool_2x2)
def _check_max_pool(function: Any) -> str | None:
    rng = np.random.default_rng(2)
    for shape in [(6, 8), (7, 5)]:
        feature_map = rng.normal(size=shape)
        expected = max_pool2d(feature_map, 2)
        got = _call(function, feature_map.copy())
        case = f"for a {shape} feature map"
        if got.shape != expected.shape:
            if got.shape == (shape[0] - 1, shape[1] - 1):
                return (f"{case} expected shape {expected.shape}, got {got.shape}: the windows "
                        "overlap; move 2 pixels at a time")
            if got.shape == (-(-shape[0] // 2), -(-shape[1] // 2)):
                return (f"{case} expected shape {expected.shape}, got {got.shape}: with padding "
                        "'valid' a last row or column that does not fill a window is dropped")
            return f"{case} expected shape {expected.shape}, got {got.shape}"
        if np.allclose(got, average_pool2d(feature_map, 2)):
            return "you averaged each window; max pooling keeps the largest value"
        if np.allclose(got, -max_pool2d(-feature_map, 2)):
            return "you kept the smallest value of each window; max pooling keeps the largest"
        if not np.allclose(got, expected):
            return (f"{case} {_first_difference(expected, got)}: output (r, c) is the maximum "
                    "of rows 2r..2r+1 and columns 2c..2c+1")
    return None


def _reference_global_average(feature_maps: np.ndarray) -> np.ndarray:
    # Average over height and width (axes 1 and 2): one number per image and channel.
    return feature_maps.mean(axis=(1, 2))


@register("02.global_average",
          "Complete `global_average(feature_maps)`: from a batch (N, H, W, C) return the "
          "(N, C) averages that GlobalAveragePooling2D computes.",
          reference=lambda: _reference_global_average)
def _check_global_average(function: Any) -> str | None:
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(2, 5, 7, 3))
    expected = maps.mean(axis=(1, 2))
    got = _call(function, maps.copy())
    if got.shape == expected.shape and np.allclose(got, expected):
        return None
    if got.shape == (2, 5, 7):
        return (f"expected shape {expected.shape}, got {got.shape}: you averaged over the "
                "channels (the last axis); average over height and width, axes 1 and 2")
    if got.shape == (3,):
        return (f"expected shape {expected.shape}, got {got.shape}: you also averaged over the "
                "batch; keep one row per image (axes 1 and 2 only)")
    if got.shape == ():
        return "you averaged everything into one number; average over axes 1 and 2 only"
    if got.shape == expected.shape and np.allclose(got, maps.max(axis=(1, 2))):
        return "you took the maximum; this is global *average* pooling"
    return (f"expected shape {expected.shape} holding the mean over height and width, "
            f"got shape {got.shape}")


@register("02.pool_params",
          "How many trainable parameters does MaxPooling2D(pool_size=2) have after a layer with "
          "16 channels? Set `answer` to the number.",
          reference=lambda: 0)
def _check_pool_params(answer: Any) -> str | None:
    if not isinstance(answer, (int, np.integer)) or isinstance(answer, bool):
        return f"answer with a whole number, not {type(answer).__name__} {answer!r}"
    if answer == 0:
        return None
    return (f"expected 0, got {answer}: pooling has nothing to learn, it only takes the "
            "maximum (or mean) of each window")


# ------------------------------------------------------- notebook 05: transfer across sizes
@register("05.flatten_size",
          "How many numbers does the paper model's Flatten layer produce for a 96x96 image? "
          "Set `answer` to the number.",
          reference=lambda: (96 // 2 ** 4) ** 2 * 256)
def _check_flatten_size(answer: Any) -> str | None:
    number = _whole_number(answer, "1024")
    if isinstance(number, str):
        return number
    if number == 9216:
        return None
    if number == 1024:
        return "1024 is the 32x32 size (2x2x256): redo it for 96x96, 96 / 2**4 = 6 per side"
    if number == 36:
        return "6x6 = 36 positions is right, but each position holds 256 channels"
    if number == 96 * 96 * 3:
        return "that is the input image: the four poolings halve it first, then 256 channels"
    return (f"expected 6 x 6 x 256, got {number}: each of the 4 poolings halves 96 "
            "(96 -> 48 -> 24 -> 12 -> 6), and the last block has 256 channels")


@register("05.smallest_input",
          "What is the smallest square image side (in pixels) the paper's model can take? "
          "Set `answer` to the number.",
          reference=lambda: 16)
def _check_smallest_input(answer: Any) -> str | None:
    number = _whole_number(answer, "32")
    if isinstance(number, str):
        return number
    if number == 16:
        return None
    if number > 16:
        return (f"{number} works, but smaller does too: the 'same' convolutions keep the size, "
                "each pooling halves it, and the last one needs at least 2 pixels")
    return (f"with {number} pixels a pooling layer gets 1 pixel (or none) and outputs nothing: "
            f"follow {number} through four halvings")


def _reference_fold(kernel: np.ndarray, height: int, width: int, channels: int) -> np.ndarray:
    kernel = np.asarray(kernel)
    return kernel.reshape(height, width, channels, -1).sum(axis=(0, 1))


@register("05.fold_kernel",
          "Complete fold(kernel, height, width, channels): turn a (height*width*channels, units) "
          "Flatten -> Dense kernel into a (channels, units) kernel for global average pooling.",
          reference=lambda: _reference_fold)
def _check_fold_kernel(function: Any) -> str | None:
    rng = np.random.default_rng(5)
    height, width, channels, units = 2, 3, 4, 5
    kernel = rng.normal(size=(height * width * channels, units))
    expected = _reference_fold(kernel, height, width, channels)
    got = _call(function, kernel, height, width, channels)
    if got.shape != expected.shape:
        return (f"expected shape {expected.shape} (channels, units), got {got.shape}: reshape "
                "to (height, width, channels, units) and combine the two position axes")
    if np.allclose(got, expected):
        return None
    if np.allclose(got * height * width, expected):
        return ("you averaged over the positions, but global average pooling already divides "
                "by height x width: sum the kernel rows instead")
    channels_first = kernel.reshape(channels, height, width, units).sum(axis=(1, 2))
    if np.allclose(got, channels_first):
        return ("Flatten orders the numbers (height, width, channels), channels last: reshape "
                "to (height, width, channels, units)")
    return "the folded kernel is wrong; " + _first_difference(expected, got)
