"""The model builders: the paper's architecture layer by layer, the fast model, bad input."""

import keras
import numpy as np
import pytest

from tlcnn_helpers.errors import ModelInputError, TLCNNError
from tlcnn_helpers.models import compile_for_classification, fast_cifar_cnn, paper_cnn
from tlcnn_helpers.pipelines import to_one_hot


def layer_kinds(model):
    return [layer.__class__.__name__ for layer in model.layers]


def test_paper_model_is_four_conv_pool_batchnorm_blocks_then_dense_head():
    model = paper_cnn()
    kinds = layer_kinds(model)
    assert kinds == (["InputLayer", "Rescaling"]
                     + ["Conv2D", "MaxPooling2D", "BatchNormalization"] * 4
                     + ["Flatten", "Dense", "Dropout", "Dense"])
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 64, 128, 256]
    assert all(c.kernel_size == (3, 3) and c.activation.__name__ == "relu" for c in convs)
    hidden, output = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert hidden.activation.__name__ == "relu"
    assert output.activation.__name__ == "softmax" and output.units == 9
    assert model.get_layer("flatten").output.shape[-1] == 2 * 2 * 256


def test_builders_never_compile_and_compile_for_classification_gives_categorical_loss():
    model = paper_cnn(num_classes=4)
    assert not model.compiled  # builders never compile
    compile_for_classification(model)
    assert isinstance(model.loss, keras.losses.CategoricalCrossentropy)
    x = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype("uint8")
    y = to_one_hot(np.arange(8) % 4, 4)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert set(logs) >= {"loss", "accuracy"}
    probabilities = model.predict(x, verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    # The compiled metric is the fraction of images whose most likely class is the label.
    evaluated = model.evaluate(x, y, verbose=0, return_dict=True)
    correct = np.mean(probabilities.argmax(axis=1) == y.argmax(axis=1))
    assert evaluated["accuracy"] == pytest.approx(correct)
    loss = keras.losses.CategoricalCrossentropy()(y, probabilities)
    assert evaluated["loss"] == pytest.approx(float(loss), rel=1e-4)


def test_models_rescale_pixels_inside_so_raw_uint8_and_float_inputs_agree():
    model = fast_cifar_cnn(widths=(8, 16), residual_stages=(2,))
    x = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3)).astype("uint8")
    np.testing.assert_allclose(model(x.astype("float32")), model(x), rtol=1e-6)


def test_fast_model_takes_larger_images_thanks_to_global_pooling():
    model = fast_cifar_cnn((96, 96, 3), 9, widths=(8, 16, 16))
    assert model.output_shape == (None, 9)
    assert model.count_params() == fast_cifar_cnn((32, 32, 3), 9, widths=(8, 16, 16)).count_params()


def test_fast_model_has_fewer_weights_than_the_paper_model():
    assert fast_cifar_cnn().count_params() < paper_cnn().count_params()


@pytest.mark.parametrize("shape", [(32, 32), (32, 32, 1), (8, 8, 3)])
def test_impossible_input_shapes_are_refused_clearly(shape):
    with pytest.raises(ModelInputError, match="input_shape"):
        paper_cnn(shape)


@pytest.mark.parametrize("labels", [np.array([0, 3]), np.array([-1, 0]), np.array([[0, 1]])])
def test_one_hot_refuses_labels_outside_the_classes(labels):
    with pytest.raises(ModelInputError, match="labels"):
        to_one_hot(labels, 3)


def test_one_hot_rows():
    np.testing.assert_array_equal(to_one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])


def test_label_smoothing_reaches_the_loss():
    model = compile_for_classification(fast_cifar_cnn(widths=(8, 16), residual_stages=(2,)), label_smoothing=0.2)
    assert model.loss.label_smoothing == pytest.approx(0.2)


def test_model_input_errors_are_caught_as_course_errors():
    with pytest.raises(TLCNNError, match="input_shape"):
        paper_cnn((8, 8, 3))


def test_notebook_03_exercises_accept_the_reference_and_explain_typical_mistakes():
    from tlcnn_helpers.exercises import exercises_of, feedback, reference_solution

    names = exercises_of("04")
    assert names == ["04.conv_params_5x5", "04.most_important_ingredient", "04.paper_model",
                     "04.per_class_accuracy"]
    for name in names:
        assert feedback(name, reference_solution(name)).status == "correct", name
        assert feedback(name, None).status == "todo"
    from tlcnn_helpers.convolution import conv_param_count

    assert conv_param_count(5, in_channels=3, filters=32) == reference_solution(names[0])
    assert "bias" in feedback("04.conv_params_5x5", reference_solution(names[0]) - 32).message

    def precision_instead(y_true, y_pred, num_classes):
        hits = np.bincount(y_pred[y_true == y_pred], minlength=num_classes)
        return hits / np.maximum(np.bincount(y_pred, minlength=num_classes), 1)

    def divides_by_zero(y_true, y_pred, num_classes):
        hits = np.bincount(y_true[y_true == y_pred], minlength=num_classes)
        with np.errstate(invalid="ignore", divide="ignore"):
            return hits / np.bincount(y_true, minlength=num_classes)

    assert "precision" in feedback("04.per_class_accuracy", precision_instead).message
    assert "division by zero" in feedback("04.per_class_accuracy", divides_by_zero).message
    assert feedback("04.per_class_accuracy", lambda *a: None).status == "todo"
