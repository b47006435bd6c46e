"""tf.data pipelines: batching, one-hot labels, augmentation, determinism, splits."""

import numpy as np
import pytest

from tlcnn_helpers.data import train_val_split
from tlcnn_helpers.errors import DataError, ModelInputError, TLCNNError
from tlcnn_helpers.pipelines import augmentation_layers, make_dataset


def coloured_images(count, num_classes=3, size=16):
    """Each image is one flat colour, 40 * label: augmentation keeps it, so labels stay checkable."""
    labels = np.arange(count) % num_classes
    images = np.repeat((labels * 40).astype("uint8"), size * size * 3).reshape(count, size, size, 3)
    return images, labels


def epochs_of(ds, epochs=2):
    return [np.concatenate([images.numpy().ravel() for images, _ in ds]) for _ in range(epochs)]


def test_batches_have_the_right_shapes_and_one_hot_labels():
    x, y = coloured_images(10)
    batches = list(make_dataset(x, y, num_classes=3, batch_size=4))
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    labels = np.concatenate([b[1].numpy() for b in batches])
    np.testing.assert_array_equal(labels.argmax(axis=1), y)
    assert labels.dtype == np.float32 and set(np.unique(labels)) == {0.0, 1.0}


def test_integer_labels_on_request():
    x, y = coloured_images(6)
    _, labels = next(iter(make_dataset(x, y, num_classes=3, batch_size=6, one_hot=False)))
    np.testing.assert_array_equal(labels.numpy(), y)


def test_evaluation_pipeline_keeps_order_and_pixels():
    x = np.random.default_rng(0).integers(0, 256, (9, 8, 8, 3)).astype("uint8")
    y = np.arange(9) % 3
    ds = make_dataset(x, y, num_classes=3, batch_size=4, augment="flip_translate")
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in ds]), x)


@pytest.mark.parametrize("augment", ["none", "flip", "flip_translate", "flip_crop"])
def test_shuffling_and_augmentation_keep_each_image_with_its_label(augment):
    x, y = coloured_images(30)
    ds = make_dataset(x, y, num_classes=3, batch_size=8, training=True, seed=3, augment=augment)
    seen = 0
    for images, labels in ds:
        images = images.numpy()
        centre = images[:, 4:12, 4:12, :]  # flat colour survives flips, shifts and crops here
        expected = labels.numpy().argmax(axis=1) * 40
        np.testing.assert_allclose(centre.reshape(len(images), -1).mean(axis=1), expected)
        seen += len(images)
    assert seen == 30


def test_augmentation_changes_images_but_not_their_shape():
    x = np.random.default_rng(2).integers(0, 256, (16, 16, 16, 3)).astype("uint8")
    y = np.zeros(16, dtype=int)
    ds = make_dataset(x, y, num_classes=1, batch_size=16, training=True, seed=0,
                      augment="flip_translate", shuffle_buffer=1)
    images = next(iter(ds))[0].numpy()
    assert images.shape == x.shape
    assert not np.array_equal(images, x.astype("float32"))


def test_same_seed_same_batches_every_run_and_each_epoch_reshuffled():
    x = np.random.default_rng(4).integers(0, 256, (40, 16, 16, 3)).astype("uint8")
    y = np.arange(40) % 4

    def build(seed):
        return make_dataset(x, y, num_classes=4, batch_size=8, training=True, seed=seed,
                            augment="flip_translate")

    first, second = epochs_of(build(7)), epochs_of(build(7))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])  # a new order each epoch
    assert not np.array_equal(first[0], epochs_of(build(8), 1)[0])


def test_unknown_augmentation_is_named_in_the_error():
    with pytest.raises(TLCNNError, match="augment='rotate'"):
        augmentation_layers("rotate")
    assert augmentation_layers("none") is None


@pytest.mark.parametrize("x_shape,labels,match", [
    ((4, 8, 8), [0, 1, 2, 0], "images must be"),
    ((4, 8, 8, 3), [0, 1], "images must be"),
    ((4, 8, 8, 3), [0, 1, 2, 5], "num_classes=3"),
])
def test_bad_images_or_labels_are_refused(x_shape, labels, match):
    with pytest.raises(ModelInputError, match=match):
        make_dataset(np.zeros(x_shape, "uint8"), np.array(labels), num_classes=3)


def test_train_val_split_is_stratified_disjoint_and_seeded():
    x = np.arange(100).reshape(100, 1)
    y = np.repeat(np.arange(4), 25)
    train, val = train_val_split(x, y, 0.2, seed=1)
    assert len(train) == 80 and np.bincount(val.y).tolist() == [5, 5, 5, 5]
    assert not set(train.x.ravel()) & set(val.x.ravel())
    again, _ = train_val_split(x, y, 0.2, seed=1)
    np.testing.assert_array_equal(train.x, again.x)
    with pytest.raises(DataError, match="val_fraction"):
        train_val_split(x, y, 1.5)
