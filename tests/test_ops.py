"""The NumPy convolution and pooling of tlcnn_helpers.ops against Keras' own layers."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

from tlcnn_helpers import convolution, pooling
from tlcnn_helpers.errors import ModelInputError, TLCNNError

TOLERANCE = 1e-4


def random_conv_configs(count: int, seed: int = 0):
    """Random Conv2D set-ups: odd and even sizes, strides 1-3, both paddings, bias or not."""
    rng = np.random.default_rng(seed)
    configs = []
    # Always include the cases that trip hand-written code: stride 2 + same on odd and even
    # sizes (asymmetric padding), non-square kernels and images, a kernel as big as the input.
    fixed = [
        dict(h=7, w=7, c=1, f=1, k=(3, 3), s=(2, 2), padding="same", bias=False),
        dict(h=8, w=8, c=3, f=2, k=(3, 3), s=(2, 2), padding="same", bias=True),
        dict(h=9, w=6, c=2, f=4, k=(4, 4), s=(2, 2), padding="same", bias=True),
        dict(h=11, w=13, c=3, f=5, k=(5, 3), s=(2, 3), padding="valid", bias=True),
        dict(h=5, w=5, c=2, f=3, k=(5, 5), s=(1, 1), padding="valid", bias=True),
        dict(h=6, w=10, c=4, f=2, k=(2, 5), s=(3, 1), padding="same", bias=False),
    ]
    configs.extend(fixed)
    while len(configs) < count:
        k = tuple(int(v) for v in rng.choice([1, 2, 3, 4, 5], size=2))
        configs.append(dict(
            h=int(rng.integers(k[0], 16)), w=int(rng.integers(k[1], 16)),
            c=int(rng.integers(1, 5)), f=int(rng.integers(1, 6)), k=k,
            s=tuple(int(v) for v in rng.integers(1, 4, size=2)),
            padding=str(rng.choice(convolution.PADDINGS)), bias=bool(rng.integers(0, 2))))
    return configs


CONV_CONFIGS = random_conv_configs(26)


@pytest.mark.parametrize("cfg", CONV_CONFIGS, ids=lambda c: "{h}x{w}x{c}-f{f}-k{k}-s{s}-{padding}".format(**c))
def test_conv2d_matches_keras_conv2d(cfg):
    rng = np.random.default_rng(cfg["h"] * 1000 + cfg["w"] * 10 + cfg["f"])
    x = rng.normal(size=(2, cfg["h"], cfg["w"], cfg["c"])).astype(np.float32)
    layer = keras.layers.Conv2D(cfg["f"], cfg["k"], strides=cfg["s"], padding=cfg["padding"],
                                use_bias=cfg["bias"])
    layer.build(x.shape)
    kernel = rng.normal(size=layer.kernel.shape).astype(np.float32)
    weights = [kernel]
    if cfg["bias"]:
        weights.append(rng.normal(size=(cfg["f"],)).astype(np.float32))
    layer.set_weights(weights)
    expected = keras.ops.convert_to_numpy(layer(x))

    got = convolution.conv2d(x, kernel, bias=weights[1] if cfg["bias"] else None, stride=cfg["s"],
                     padding=cfg["padding"])

    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) < TOLERANCE
    # The output-size formula agrees with Keras' shape too.
    assert expected.shape[1:3] == tuple(
        convolution.conv_output_size(n, k, s, cfg["padding"])
        for n, k, s in zip((cfg["h"], cfg["w"]), cfg["k"], cfg["s"], strict=True))


def test_at_least_twenty_conv_configs_cover_stride_two_and_odd_sizes():
    assert len(CONV_CONFIGS) >= 20
    assert any(c["s"][0] == 2 and c["h"] % 2 == 1 and c["padding"] == "same" for c in CONV_CONFIGS)
    assert {c["padding"] for c in CONV_CONFIGS} == {"valid", "same"}
    assert any(c["c"] > 1 and c["f"] > 1 and c["bias"] for c in CONV_CONFIGS)


def test_same_padding_puts_the_extra_row_at_the_bottom():
    # 7 rows, kernel 4, stride 1: three rows of padding, one above and two below.
    image = np.zeros((7, 7))
    image[0, :] = 1.0  # only the top row is bright
    out = convolution.conv2d(image, np.ones((4, 1)), padding="same")
    assert convolution.same_padding(7, 4) == (1, 2)
    # The first output row's window covers padding row + image rows 0..2, so it sees the top row.
    assert out[0, 0] == 1.0 and out[1, 0] == 1.0 and out[2, 0] == 0.0


def test_loops_version_agrees_with_the_vectorised_one():
    rng = np.random.default_rng(3)
    image, kernel = rng.random((9, 8)), rng.normal(size=(3, 2))
    for stride in (1, 2, 3):
        np.testing.assert_allclose(convolution.correlate2d_loops(image, kernel, stride),
                                   convolution.conv2d(image, kernel, stride=stride), atol=1e-10)


def test_conv2d_is_cross_correlation_not_flipped_convolution():
    image = np.zeros((5, 5))
    image[2, 2] = 1.0  # an impulse copies the kernel, mirrored, into the output
    kernel = np.arange(9.0).reshape(3, 3)
    out = convolution.conv2d(image, kernel, padding="same")
    np.testing.assert_array_equal(out[1:4, 1:4], kernel[::-1, ::-1])


def test_gray_image_with_several_filters_gives_one_map_per_filter():
    out = convolution.conv2d(np.ones((6, 6)), np.ones((3, 3, 1, 4)), bias=np.arange(4.0))
    assert out.shape == (4, 4, 4)
    np.testing.assert_array_equal(out[0, 0], 9.0 + np.arange(4.0))


POOL_CONFIGS = [
    dict(pool=p, strides=s, padding=pad, h=h, w=w)
    for (p, s), pad, (h, w) in itertools.product(
        [(2, None), (2, 1), (3, 2), (4, None), (4, 2), ((2, 3), (1, 2))],
        convolution.PADDINGS, [(8, 8), (9, 7)])
]


@pytest.mark.parametrize("mode,layer_class", [("max", keras.layers.MaxPooling2D),
                                              ("average", keras.layers.AveragePooling2D)])
def test_pooling_matches_keras(mode, layer_class):
    rng = np.random.default_rng(1)
    worst = 0.0
    for cfg in POOL_CONFIGS:
        # Negative values too: padding must not leak zeros into a max.
        x = rng.normal(size=(2, cfg["h"], cfg["w"], 3)).astype(np.float32)
        layer = layer_class(pool_size=cfg["pool"], strides=cfg["strides"], padding=cfg["padding"])
        expected = keras.ops.convert_to_numpy(layer(x))
        got = pooling.pool2d(x, cfg["pool"], cfg["strides"], cfg["padding"], mode=mode)
        assert got.shape == expected.shape, cfg
        worst = max(worst, float(np.max(np.abs(got - expected))))
    assert worst < TOLERANCE


@pytest.mark.parametrize("mode,layer_class", [("max", keras.layers.GlobalMaxPooling2D),
                                              ("average", keras.layers.GlobalAveragePooling2D)])
def test_global_pooling_matches_keras_for_any_image_size(mode, layer_class):
    rng = np.random.default_rng(2)
    for size in (5, 12, 33):
        x = rng.normal(size=(2, size, size, 4)).astype(np.float32)
        expected = keras.ops.convert_to_numpy(layer_class()(x))
        got = pooling.global_pool(x, mode)
        assert got.shape == (2, 4)
        np.testing.assert_allclose(got, expected, atol=TOLERANCE)


def test_param_counts_match_keras_count_params():
    inputs = keras.Input((32, 32, 3))
    conv = keras.layers.Conv2D(32, 3)
    conv(inputs)
    dense = keras.layers.Dense(32)
    dense(keras.layers.Flatten()(inputs))
    no_bias = keras.layers.Conv2D(8, (5, 3), use_bias=False)
    no_bias(inputs)
    assert convolution.conv_param_count(3, 3, 32) == conv.count_params() == 896
    assert convolution.dense_param_count(32 * 32 * 3, 32) == dense.count_params() == 98336
    assert convolution.conv_param_count((5, 3), 3, 8, use_bias=False) == no_bias.count_params()


def test_receptive_field_growth_of_a_keras_model():
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(4, 3, padding="same"),
        keras.layers.BatchNormalization(),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(4, 5, strides=2, padding="same"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3),
    ])
    rows = convolution.receptive_field_growth(model)
    assert [(r.kernel, r.stride) for r in rows] == [(3, 1), (3, 1), (2, 2), (5, 2)]
    assert [r.size for r in rows] == [3, 5, 6, 14]
    assert [r.jump for r in rows] == [1, 1, 2, 4]


def test_receptive_field_walks_into_nested_models_and_stops_at_flatten():
    block = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, name="inner_a"),
                              keras.layers.Conv2D(4, 3, strides=2, name="inner_b")], name="block")
    model = keras.Sequential([keras.Input((16, 16, 3)), block,
                              keras.layers.AveragePooling2D(2, name="pool"),
                              keras.layers.Flatten(), keras.layers.Dense(2),
                              keras.layers.Reshape((1, 1, 2)), keras.layers.Conv2D(1, 1)])
    assert convolution.spatial_layers(model) == [("inner_a", 3, 1), ("inner_b", 3, 2), ("pool", 2, 2)]
    assert convolution.receptive_field_growth(model)[-1].size == 7  # 3, 5, then 5 + 1 * 2


def test_receptive_field_is_what_the_network_actually_sees():
    """Pixels inside the field move the centre output; pixels just outside do not."""
    model = keras.Sequential([
        keras.Input((21, 21, 1)),
        keras.layers.Conv2D(2, 3, activation="tanh"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(1, 3),
    ])  # field: 3 -> 4 -> 8; output 7x7, whose cell (1, 1) sees input rows/cols 2..9
    size = convolution.receptive_field_growth(model)[-1].size
    assert size == 8
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 21, 21, 1)).astype(np.float32)
    base = keras.ops.convert_to_numpy(model(x))[0, 1, 1, 0]

    def centre_after_poking(row: int, col: int) -> float:
        poked = x.copy()
        poked[0, row, col, 0] += 50.0
        return float(keras.ops.convert_to_numpy(model(poked))[0, 1, 1, 0])

    first = 2  # output cell 1 -> conv2 inputs 1..3 -> pooled rows 2..7 -> conv1 inputs 2..9
    assert centre_after_poking(first + size, first + 2) == base  # row just below the field
    assert centre_after_poking(first - 1, first + 2) == base  # row just above
    moved = [centre_after_poking(first + 2, c) != base for c in range(first, first + size)]
    assert sum(moved) >= size // 2  # max pooling may hide some pixels, but most count


def test_shift_image_and_relative_change():
    image = np.arange(25.0).reshape(5, 5)
    shifted = pooling.shift_image(image, 1, -2)
    assert shifted.shape == image.shape
    assert shifted[1, 0] == image[0, 2] and shifted[0, 0] == image[0, 2]  # edge repeated
    np.testing.assert_array_equal(pooling.shift_image(image, 0, 0), image)
    assert pooling.relative_change(image, image) == 0.0
    assert pooling.relative_change(image, 2 * image) == pytest.approx(1.0)


def test_pooling_makes_feature_maps_less_sensitive_to_small_shifts():
    rng = np.random.default_rng(5)
    # blocky random images: edges everywhere, like a textured photo
    images = [np.kron(rng.random((8, 8)), np.ones((4, 4))) for _ in range(3)]
    result = pooling.shift_sensitivity(images, shifts=(0, 1, 2), pool_sizes=(2, 4))
    assert list(result) == ["no pooling", "max pool 2x2", "max pool 4x4", "global max pool"]
    assert all(values[0] == 0.0 for values in result.values())  # no shift, no change
    no_pool, pool4, global_max = result["no pooling"], result["max pool 4x4"], result["global max pool"]
    assert no_pool[1] > 0.5  # thin edge responses move off their pixels
    assert pool4[1] < 0.7 * no_pool[1] and pool4[2] < no_pool[2]
    assert global_max[1] < 0.2 * no_pool[1]


def test_to_grayscale_handles_uint8_rgb_and_float():
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[..., 1] = 255
    assert convolution.to_grayscale(rgb)[0, 0] == pytest.approx(0.587)
    assert convolution.to_grayscale(np.full((2, 2), 0.5)).dtype == np.float32


@pytest.mark.parametrize("call,words", [
    (lambda: convolution.conv2d(np.ones((5, 5, 3)), np.ones((3, 3, 2, 1))), "input channels"),
    (lambda: convolution.conv2d(np.ones((5, 5)), np.ones((3, 3)), padding="full"), "padding='full'"),
    (lambda: convolution.conv2d(np.ones((5, 5)), np.ones((3, 3)), stride=0), "stride=0"),
    (lambda: convolution.conv2d(np.ones((2, 2)), np.ones((3, 3))), "does not fit"),
    (lambda: convolution.conv2d(np.ones(5), np.ones((3, 3))), "x has shape"),
    (lambda: pooling.pool2d(np.ones((4, 4)), 2, mode="median"), "mode='median'"),
    (lambda: pooling.global_pool(np.ones((4, 4))), "(H, W, C)"),
    (lambda: pooling.relative_change(np.ones(2), np.ones(3)), "cannot compare"),
])
def test_bad_arguments_raise_clear_course_errors(call, words):
    with pytest.raises(ModelInputError) as err:
        call()
    assert isinstance(err.value, TLCNNError)
    assert words in str(err.value)
