"""Notebook 04 (the CIFAR-10 CNN) and the parts of 00, 01 and 02 reworked with it (issue #12).

Checks what a student relies on: the paper model's exercise checker, the multiply-add counts
of notebook 01 against a brute-force count, the NumPy-equals-Keras cells of 01 and 02 under
the GPU's mixed float16 policy, and the notebook 04 text and cell order (Keras code before the
helper, honest numbers, no answers printed before their exercise, records in one last cell).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

from tlcnn_helpers import convolution
from tlcnn_helpers.exercises import feedback, reference_solution
from tlcnn_helpers.exercises.nb04_cifar10_cnn import INGREDIENTS
from tlcnn_helpers.models import paper_cnn

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _cells(name: str, kind: str | None = None) -> list[str]:
    notebook = json.loads((NOTEBOOKS / name).read_text())
    return ["".join(c["source"]) for c in notebook["cells"] if kind in (None, c["cell_type"])]


# ---------------------------------------------------------------------------- multiply-adds
def _brute_force_multiply_adds(size: int, kernel: int, stride: int, padding: str,
                               channels: int, filters: int) -> int:
    """Count, one by one, the products a convolution computes (padded zeros included)."""
    out = convolution.conv_output_size(size, kernel, stride, padding)
    count = 0
    for _row in range(out):
        for _col in range(out):
            for _f in range(filters):
                for _i in range(kernel):
                    for _j in range(kernel):
                        for _c in range(channels):
                            count += 1
    return count


@pytest.mark.parametrize("size,kernel,stride,padding,channels,filters", [
    (8, 3, 1, "same", 3, 4), (9, 3, 2, "valid", 2, 5), (7, 5, 2, "same", 1, 3)])
def test_conv_multiply_adds_match_a_brute_force_count(size, kernel, stride, padding, channels,
                                                      filters):
    out = convolution.conv_output_size(size, kernel, stride, padding)
    expected = _brute_force_multiply_adds(size, kernel, stride, padding, channels, filters)
    assert convolution.conv_multiply_adds(kernel, channels, filters, out) == expected
    model = keras.Sequential([keras.Input((size, size, channels)),
                              layers.Conv2D(filters, kernel, strides=stride, padding=padding)])
    (cost,) = convolution.layer_costs(model)
    assert cost.multiply_adds == expected
    assert cost.params == model.count_params()


def test_paper_model_convolutions_do_almost_all_the_work_with_under_half_the_weights():
    model = paper_cnn()
    costs = convolution.layer_costs(model)
    assert [c.kind for c in costs] == ["Conv2D"] * 4 + ["Dense"] * 2
    dense_work = sum(layer.input.shape[-1] * layer.units for layer in model.layers
                     if isinstance(layer, layers.Dense))
    assert sum(c.multiply_adds for c in costs if c.kind == "Dense") == dense_work
    conv_share = sum(c.multiply_adds for c in costs[:4]) / sum(c.multiply_adds for c in costs)
    weight_share = sum(c.params for c in costs[:4]) / model.count_params()
    assert 0.95 < conv_share < 0.98 and 0.40 < weight_share < 0.45


# ---------------------------------------------------------------------------- mixed float16
def _run_cells(notebook: str, markers: tuple[str, ...], namespace: dict) -> str:
    output = io.StringIO()
    for marker in markers:
        (source,) = [s for s in _cells(notebook, "code") if marker in s]
        with contextlib.redirect_stdout(output):
            exec(compile(source, f"{notebook}: {marker}", "exec"), namespace)  # noqa: S102
    return output.getvalue()


@pytest.fixture
def mixed_float16():
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16")  # what start_notebook sets on a GPU
    yield
    keras.mixed_precision.set_global_policy(previous)


def test_notebook_01_numpy_equals_keras_check_holds_under_the_gpu_mixed_float16_policy(
        mixed_float16):
    printed = _run_cells("01_convolution.ipynb", ("by_numpy = convolution.conv2d(images",),
                         {"np": np, "keras": keras, "convolution": convolution})
    assert "largest difference below 1e-4: True" in printed


def test_notebook_02_pooling_checks_hold_under_the_gpu_mixed_float16_policy(mixed_float16):
    from tlcnn_helpers import pooling

    printed = _run_cells("02_pooling.ipynb", ("pooling.pool2d(maps", "pooling.global_pool("),
                         {"np": np, "pooling": pooling})
    rows = [line for line in printed.splitlines() if "Pooling2D" in line or "global average" in line]
    assert len(rows) == 13 and all("True" in row and "False" not in row for row in rows), printed


# ---------------------------------------------------------------------------- the paper-model exercise
def _variant(*, batchnorm=True, order=("conv", "pool", "bn"), dropout=True, units=512,
             fixed_classes=None):
    def build(input_shape, num_classes, filters):
        model = keras.Sequential([keras.Input(input_shape), layers.Rescaling(1 / 255)])
        for width in filters:
            block = {"conv": layers.Conv2D(width, 3, padding="same", activation="relu"),
                     "pool": layers.MaxPooling2D(2), "bn": layers.BatchNormalization()}
            for step in order:
                if step != "bn" or batchnorm:
                    model.add(block[step])
        model.add(layers.Flatten())
        model.add(layers.Dense(units, activation="relu"))
        if dropout:
            model.add(layers.Dropout(0.5))
        model.add(layers.Dense(fixed_classes or num_classes, activation="softmax"))
        return model
    return build


def test_paper_model_exercise_accepts_the_reference_and_a_correct_builder():
    assert feedback("04.paper_model", reference_solution("04.paper_model")).passed
    assert feedback("04.paper_model", _variant()).passed
    assert feedback("04.paper_model", lambda *args: None).status == "todo"


@pytest.mark.parametrize("builder,hint", [
    (_variant(batchnorm=False), "BatchNormalization"),
    (_variant(order=("conv", "bn", "pool")), "wrong order"),
    (_variant(dropout=False), "Dropout(0.5)"),
    (_variant(units=256), "256 units, the paper's 512"),
    (_variant(fixed_classes=9), "one per class"),
])
def test_paper_model_exercise_names_the_typical_mistake(builder, hint):
    result = feedback("04.paper_model", builder)
    assert result.status == "wrong" and hint in result.message, result.message


# ---------------------------------------------------------------------------- notebook 04's text
def test_notebook_04_shows_keras_sequential_compile_and_fit_before_the_training_helper():
    code = _cells("04_cifar10_cnn.ipynb", "code")
    first_helper = next(i for i, s in enumerate(code) if "training.train_recipe(" in s)
    shown = "\n".join(code[:first_helper])
    for call in ("keras.Sequential(", "model.compile(", "model.fit(train_ds", "make_dataset(",
                 "layers.Add()"):
        assert call in shown, call


def test_notebook_04_states_keras_label_smoothing_targets_and_the_measured_30_epoch_result():
    text = "\n".join(_cells("04_cifar10_cnn.ipynb"))
    smoothing, classes = 0.1, 9
    assert f"{1 - smoothing + smoothing / classes:.3f}" in text  # 0.911
    assert f"{smoothing / classes:.3f}" in text  # 0.011
    assert "0.0125" not in text
    assert "reaches about 80%" not in text and "0.763" in text and "1.57" in text
    assert "course's reconstruction" in text
    assert "a re-run gives the same numbers" not in text.replace(
        "There is no time budget here, so\na re-run gives the same numbers", "")


def test_notebook_04_asks_no_exercise_whose_answer_it_printed_and_records_in_one_last_cell():
    notebook = json.loads((NOTEBOOKS / "04_cifar10_cnn.ipynb").read_text())
    code = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    asked = re.findall(r'exercises\.check\("([^"]+)"', "\n".join(code))
    assert "04.flatten_size_96" not in asked
    printed = "\n".join("".join(o.get("text", "")) for c in notebook["cells"]
                        for o in c.get("outputs", []))
    for name in asked:
        answer = reference_solution(name)
        if isinstance(answer, str):  # a prediction: the prompt names every choice alike
            assert all(f"'{choice}'" in printed for choice in INGREDIENTS), name
        elif not callable(answer):
            assert f"{answer:,}" not in printed and str(answer) not in printed, name
    recording = [i for i, source in enumerate(code) if "session.record(" in source]
    assert recording == [len(code) - 1]


def test_notebook_00_loads_stl10_only_when_it_is_already_on_disk():
    code = "\n".join(_cells("00_setup.ipynb", "code"))
    (line,) = [line for line in code.splitlines() if 'load_dataset("stl10"' in line]
    assert line.startswith("    ")  # inside `if have_stl:`
    assert 'dataset_status()["stl10"] != "missing"' in code
    markdown = _cells("00_setup.ipynb", "markdown")
    summary = next(i for i, cell in enumerate(markdown) if cell.startswith("## Summary"))
    optional = markdown[summary - 1]  # the last section before the summary and exercises
    assert "Optional" in optional.splitlines()[0] and "MD5" in optional
    assert [i for i, cell in enumerate(markdown) if "MD5" in cell] == [summary - 1]
