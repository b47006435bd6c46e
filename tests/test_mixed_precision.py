"""The course's models under the mixed-precision policies the Colab/GPU path and bfloat16
CPUs use, run here on the CPU: build, one training step, evaluate, and the loss stays finite.

The fast recipe's ``precision="auto"`` picks bfloat16 only where the CPU has it, and the
notebooks pick float16 only on a GPU, so without pinning the policy each machine would
test one path at most.
"""

import math

import keras
import numpy as np
import pytest

from tlcnn_helpers.evaluation import evaluate
from tlcnn_helpers.models import compile_for_classification, fast_cifar_cnn, paper_cnn
from tlcnn_helpers.pipelines import to_one_hot
from tlcnn_helpers.training import fit_head
from tlcnn_helpers.transfer import make_size_agnostic

POLICIES = ["mixed_float16", "mixed_bfloat16"]


@pytest.fixture
def policy(request):
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(request.param)
    yield request.param
    keras.mixed_precision.set_global_policy(previous)


def images(count: int, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype="uint8")


def one_step_then_evaluate(model: keras.Model) -> tuple[float, dict[str, float]]:
    x, y = images(16), np.arange(16) % 3
    compile_for_classification(model, learning_rate=1e-3, jit_compile=False)
    logs = model.train_on_batch(x, to_one_hot(y, 3), return_dict=True)
    return float(logs["loss"]), evaluate(model, x, y)


@pytest.mark.parametrize("policy", POLICIES, indirect=True)
@pytest.mark.parametrize("builder", ["paper", "fast"])
def test_course_models_train_and_evaluate_under_mixed_precision(policy, builder):
    if builder == "paper":
        model = paper_cnn(num_classes=3, filters=(8, 8, 16, 16), dense_units=16)
    else:
        model = fast_cifar_cnn(num_classes=3, widths=(8, 16, 16, 32))
    # The convolutions compute in the low precision; the softmax output stays float32.
    assert model.get_layer("conv1" if builder == "paper" else "stage1_conv").compute_dtype \
        == policy.removeprefix("mixed_")
    assert model.output.dtype == "float32"
    loss, metrics = one_step_then_evaluate(model)
    assert math.isfinite(loss) and math.isfinite(metrics["test_loss"])
    assert 0.0 <= metrics["test_accuracy"] <= 1.0


@pytest.mark.parametrize("policy", POLICIES, indirect=True)
def test_size_agnostic_transfer_model_runs_and_refits_under_mixed_precision(policy):
    trained = paper_cnn(num_classes=3, filters=(8, 8, 16, 16), dense_units=16)
    agnostic, report = make_size_agnostic(trained)
    assert report.folded == ["hidden1"]
    predictions = agnostic.predict(images(4, size=64), verbose=0)
    assert predictions.shape == (4, 3) and np.isfinite(predictions).all()
    history = fit_head(agnostic, images(12, size=48), np.arange(12) % 3, epochs=1, batch_size=4)
    assert all(math.isfinite(v) for v in history.history["loss"])
    assert math.isfinite(evaluate(agnostic, images(6, size=48), np.arange(6) % 3)["test_loss"])
