"""Convolution from scratch in NumPy, with Keras' conventions; receptive fields; parameter and
multiply-add counts.

Deep-learning "convolution" is a cross-correlation: a small filter slides over the image
and, at every position, the products of the filter and the window beneath it are summed
into one number. All these numbers together form a whole new image, the *feature map*;
nothing is thrown away or "kept" while sliding (keeping the largest value of a window is
what *max pooling* does, a separate step). Learning (backpropagation) happens afterwards,
once the forward pass over the whole batch is done, not while the filter slides.

Shapes follow Keras (channels last): images ``(H, W, C)`` or a batch ``(N, H, W, C)``,
kernels ``(kh, kw, C, F)``; a 2-D image with a 2-D kernel gives a 2-D map.
``padding="same"`` pads like TensorFlow: when the total padding is odd, the extra row or
column goes at the bottom or right.

>>> image = np.arange(16.0).reshape(4, 4)
>>> conv2d(image, np.ones((2, 2))).shape
(3, 3)
>>> conv2d(image, np.ones((3, 3)), stride=2, padding="same").tolist()  # extra pad: bottom, right
[[45.0, 39.0], [66.0, 50.0]]

Used by notebooks 01 (convolution from scratch, output sizes, parameter and multiply-add
counts, receptive fields), 02 (edge maps), 03 (the NumPy side of the gradient check) and
06 (the paper model's receptive field).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .errors import ModelInputError

PADDINGS = ("valid", "same")

# Classic 3x3 filters; each responds to one kind of local pattern.
CLASSIC_KERNELS: dict[str, np.ndarray] = {
    "identity": np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float32),
    "box blur": np.full((3, 3), 1 / 9, dtype=np.float32),
    "gaussian blur": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float32) / 16,
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float32),
    "edges (laplacian)": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float32),
    "sobel vertical edges": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32),
    "sobel horizontal edges": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=np.float32),
}



# ---------------------------------------------------------------------------- arguments
def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in pair):
        raise ModelInputError(f"{name}={value!r}: use a positive integer or a pair of them, "
                              f"e.g. {name}=2 or {name}=(2, 2)")
    return int(pair[0]), int(pair[1])


def _check_padding(padding: str) -> str:
    if padding not in PADDINGS:
        raise ModelInputError(f"padding={padding!r}: use 'valid' (no padding) or 'same' "
                              "(pad so that output size = ceil(input size / stride))")
    return padding


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: str = "valid") -> int:
    """Length of one output side: ``floor((n - k) / s) + 1`` (valid) or ``ceil(n / s)`` (same).

    The same formula holds for pooling windows.

    >>> conv_output_size(32, 3), conv_output_size(31, 3, 2), conv_output_size(31, 3, 2, "same")
    (30, 15, 16)
    """
    _check_padding(padding)
    if padding == "same":
        return -(-size // stride)
    if size < kernel:
        raise ModelInputError(f"a window of {kernel} does not fit in an input of {size} with "
                              "padding='valid': use a smaller kernel or padding='same'")
    return (size - kernel) // stride + 1


def same_padding(size: int, kernel: int, stride: int = 1) -> tuple[int, int]:
    """Rows (or columns) TensorFlow adds before and after for ``padding="same"``.

    The total is what makes ``ceil(n / s)`` windows fit; an odd total puts the extra one
    after (bottom or right).

    >>> same_padding(5, 3, 1), same_padding(6, 3, 2), same_padding(7, 4, 1)
    ((1, 1), (0, 1), (1, 2))
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _as_batch(x: np.ndarray, name: str) -> tuple[np.ndarray, int]:
    """``(N, H, W, C)`` view of an image of rank 2, 3 or 4, and the rank it came with."""
    x = np.asarray(x)
    if x.ndim == 2:
        return x[None, :, :, None], 2
    if x.ndim == 3:
        return x[None], 3
    if x.ndim == 4:
        return x, 4
    raise ModelInputError(f"{name} has shape {x.shape}: use (H, W), (H, W, C) or (N, H, W, C)")


def _restore_rank(y: np.ndarray, rank: int) -> np.ndarray:
    if rank == 2:
        return y[0, :, :, 0]
    return y[0] if rank == 3 else y


def _pad(x: np.ndarray, window: tuple[int, int], stride: tuple[int, int], padding: str,
         fill: float = 0.0) -> np.ndarray:
    if padding == "valid":
        for axis, (n, k) in enumerate(zip(x.shape[1:3], window, strict=True)):
            conv_output_size(n, k, stride[axis], "valid")  # raises if the window does not fit
        return x
    pads = [same_padding(n, k, s) for n, k, s in zip(x.shape[1:3], window, stride, strict=True)]
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=fill)


# ---------------------------------------------------------------------------- convolution
def conv2d(x: np.ndarray, kernels: np.ndarray, bias: np.ndarray | float | None = None,
           stride: int | Sequence[int] = 1, padding: str = "valid") -> np.ndarray:
    """2-D convolution (cross-correlation) exactly as ``keras.layers.Conv2D`` computes it.

    ``x``: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``. ``kernels``: ``(kh, kw)`` for a
    single-channel image, else ``(kh, kw, C, F)`` as in ``Conv2D.get_weights()[0]``.
    ``bias``: ``F`` numbers (or one). Every filter gives one full output channel.

    >>> x = np.random.default_rng(0).random((7, 7, 3))
    >>> conv2d(x, np.ones((3, 3, 3, 4)), bias=np.zeros(4), stride=2).shape
    (3, 3, 4)
    """
    batch, rank = _as_batch(x, "x")
    kernels = np.asarray(kernels)
    if kernels.ndim == 2:
        kernels = kernels[:, :, None, None]
    if kernels.ndim != 4:
        raise ModelInputError(f"kernels has shape {kernels.shape}: use (kh, kw) or "
                              "(kh, kw, in_channels, filters) like Conv2D.get_weights()[0]")
    if kernels.shape[2] != batch.shape[-1]:
        raise ModelInputError(f"kernels expect {kernels.shape[2]} input channels but x has "
                              f"{batch.shape[-1]}: the third kernel axis must equal x's channels")
    if rank == 2 and kernels.shape[3] != 1:
        rank = 3  # a 2-D image with several filters gives (H', W', F)
    strides = _pair(stride, "stride")
    padded = _pad(batch, kernels.shape[:2], strides, _check_padding(padding))
    # windows: (N, H', W', C, kh, kw), one per output position, then subsampled by the stride
    windows = sliding_window_view(padded, kernels.shape[:2], axis=(1, 2))
    windows = windows[:, ::strides[0], ::strides[1]]
    dtype = np.result_type(batch.dtype, kernels.dtype, np.float32)
    out = np.einsum("nhwcij,ijcf->nhwf", windows, kernels, optimize=True).astype(dtype)
    if bias is not None:
        out = out + np.asarray(bias, dtype=dtype)
    return _restore_rank(out, rank)


def correlate2d_loops(image: np.ndarray, kernel: np.ndarray, stride: int = 1) -> np.ndarray:
    """The same computation as :func:`conv2d` for one channel, written as plain loops.

    Slow, but shows every step: put the kernel on a window, multiply, sum, move on.

    >>> correlate2d_loops(np.eye(3), np.ones((2, 2))).tolist()
    [[2.0, 1.0], [1.0, 2.0]]
    """
    image, kernel = np.asarray(image, dtype=float), np.asarray(kernel, dtype=float)
    kh, kw = kernel.shape
    out_h = conv_output_size(image.shape[0], kh, stride)
    out_w = conv_output_size(image.shape[1], kw, stride)
    out = np.zeros((out_h, out_w))
    for row in range(out_h):
        for col in range(out_w):
            window = image[row * stride: row * stride + kh, col * stride: col * stride + kw]
            out[row, col] = np.sum(window * kernel)
    return out


def conv_param_count(kernel_size: int | Sequence[int], in_channels: int, filters: int,
                     use_bias: bool = True) -> int:
    """Weights of a Conv2D layer: ``kh * kw * C * F`` plus ``F`` biases.

    It does not depend on the image size: the same filters slide everywhere.

    >>> conv_param_count(3, 3, 32)
    896
    """
    kh, kw = _pair(kernel_size, "kernel_size")
    return kh * kw * in_channels * filters + (filters if use_bias else 0)


def dense_param_count(inputs: int, units: int, use_bias: bool = True) -> int:
    """Weights of a Dense layer: one per input per unit, plus ``units`` biases.

    >>> dense_param_count(32 * 32 * 3, 32)
    98336
    """
    return inputs * units + (units if use_bias else 0)


def conv_multiply_adds(kernel_size: int | Sequence[int], in_channels: int, filters: int,
                       output_size: int | Sequence[int]) -> int:
    """Multiply-adds of one Conv2D layer for one image: ``out_h * out_w * kh * kw * C * F``.

    Unlike the parameter count, it grows with the image: every output position of every
    filter costs one multiply-add per weight of the window (padded zeros included, as a
    library computes them; the bias additions are left out). ``output_size`` is the
    feature map's side (or ``(height, width)``), e.g. from :func:`conv_output_size`.

    >>> conv_multiply_adds(3, 3, 32, 32)  # the paper model's conv1 on a 32x32 RGB image
    884736
    """
    kh, kw = _pair(kernel_size, "kernel_size")
    out_h, out_w = _pair(output_size, "output_size")
    return out_h * out_w * kh * kw * in_channels * filters


def dense_multiply_adds(inputs: int, units: int) -> int:
    """Multiply-adds of a Dense layer for one input: one per weight (biases left out).

    >>> dense_multiply_adds(1024, 512)
    524288
    """
    return inputs * units


@dataclass(frozen=True)
class LayerCost:
    """What one Conv2D or Dense layer costs: weights (``params``) and work per image."""

    layer: str
    kind: str
    params: int
    multiply_adds: int


def layer_costs(model: Any) -> list[LayerCost]:
    """Parameters and multiply-adds per image of each Conv2D and Dense layer of a Keras model.

    Read from each layer's configuration and output shape, with :func:`conv_multiply_adds`
    and :func:`dense_multiply_adds`; pooling, BatchNorm and activations (a few operations
    per value) are left out. The model must have a fixed input size.

    >>> import keras
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
    ...                           keras.layers.Flatten(), keras.layers.Dense(2)])
    >>> [(c.layer, c.params, c.multiply_adds) for c in layer_costs(model)]  # doctest: +ELLIPSIS
    [('conv2d...', 112, 3888), ('dense...', 290, 288)]
    """
    rows: list[LayerCost] = []
    for layer in getattr(model, "layers", []):
        kind = layer.__class__.__name__
        if kind == "Conv2D":
            _, out_h, out_w, filters = layer.output.shape
            in_channels = layer.input.shape[-1]
            rows.append(LayerCost(layer.name, kind, layer.count_params(), conv_multiply_adds(
                layer.kernel_size, in_channels, filters, (out_h, out_w))))
        elif kind == "Dense":
            rows.append(LayerCost(layer.name, kind, layer.count_params(),
                                  dense_multiply_adds(layer.input.shape[-1], layer.units)))
        elif hasattr(layer, "layers"):
            rows.extend(layer_costs(layer))
    return rows


def to_grayscale(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] with one channel, from uint8 or float, gray or RGB(A).

    >>> to_grayscale(np.full((2, 2, 3), 255, dtype=np.uint8)).tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """
    image = np.asarray(image)
    values = image.astype(np.float32)
    if image.dtype == np.uint8:
        values = values / 255.0
    if values.ndim == 3:
        values = values[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if values.ndim != 2:
        raise ModelInputError(f"image has shape {image.shape}: use (H, W) or (H, W, 3)")
    return values


# ---------------------------------------------------------------------------- receptive fields
@dataclass(frozen=True)
class ReceptiveField:
    """How much of the input one output cell of a layer sees.

    ``size``: side of the input window (pixels); ``jump``: input pixels between two
    neighbouring output cells (the product of the strides so far).
    """

    layer: str
    kernel: int
    stride: int
    jump: int
    size: int


def receptive_fields(layers: Iterable[tuple[str, int, int]]) -> list[ReceptiveField]:
    """Receptive field after each ``(name, kernel, stride)`` layer, from the input on.

    Each layer widens it by ``(kernel - 1) * jump``: ``r = r + (k - 1) * j``, ``j = j * s``.

    >>> [r.size for r in receptive_fields([("c1", 3, 1), ("c2", 3, 1), ("pool", 2, 2),
    ...                                    ("c3", 3, 1)])]
    [3, 5, 6, 10]
    """
    size, jump, rows = 1, 1, []
    for name, kernel, stride in layers:
        size += (kernel - 1) * jump
        jump *= stride
        rows.append(ReceptiveField(name, kernel, stride, jump, size))
    return rows


def spatial_layers(model: Any) -> list[tuple[str, int, int]]:
    """``(name, kernel, stride)`` of a Keras model's conv and pooling layers, in order.

    Reads ``kernel_size`` or ``pool_size`` and ``strides`` (square windows assumed); layers
    without them (activations, BatchNorm, Dropout...) do not change the field, and nested
    models are walked through. It stops at the first global pooling, ``Flatten`` or
    ``Dense`` layer, after which every output sees the whole image. Dilated convolutions
    are not handled: they raise.

    >>> import keras
    >>> spatial_layers(keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="c"),
    ...                                  keras.layers.ReLU(), keras.layers.MaxPooling2D(name="p")]))
    [('c', 3, 1), ('p', 2, 2)]
    """
    rows: list[tuple[str, int, int]] = []
    _collect_spatial_layers(model, rows)
    return rows


def _collect_spatial_layers(model: Any, rows: list[tuple[str, int, int]]) -> bool:
    """Append ``model``'s conv and pooling layers to ``rows``; False once the map is gone."""
    for layer in getattr(model, "layers", []):
        kind = layer.__class__.__name__
        if kind.startswith("Global") or kind in ("Flatten", "Dense"):
            return False  # from here on every output sees the whole image
        if hasattr(layer, "layers"):
            if not _collect_spatial_layers(layer, rows):
                return False
            continue
        window = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
        if window is None:
            continue
        if max(getattr(layer, "dilation_rate", (1, 1))) > 1:
            raise ModelInputError(f"layer {layer.name!r} is dilated: receptive_fields does "
                                  "not handle dilation_rate > 1")
        strides = getattr(layer, "strides", None) or window
        rows.append((layer.name, int(window[0]), int(strides[0])))
    return True


def receptive_field_growth(model: Any) -> list[ReceptiveField]:
    """Receptive field after every conv and pooling layer of a Keras model.

    >>> import keras
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3),
    ...                           keras.layers.MaxPooling2D(), keras.layers.Conv2D(4, 3)])
    >>> [r.size for r in receptive_field_growth(model)]
    [3, 4, 8]
    """
    return receptive_fields(spatial_layers(model))
