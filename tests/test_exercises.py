"""Every exercise: the reference passes, unfinished work is "not done yet", and typical
mistakes get a message that names the mistake."""

from __future__ import annotations

import numpy as np
import pytest

from tlcnn_helpers import exercises
from tlcnn_helpers.convolution import correlate2d_loops
from tlcnn_helpers.errors import TLCNNError
from tlcnn_helpers.exercises import (
    EXERCISES,
    check,
    feedback,
    nb02_pooling,
    reference_solution,
)


def test_the_course_notebooks_have_exercises():
    assert exercises.exercises_of("01") == ["01.horizontal_edges", "01.output_shape",
                                           "01.param_count", "01.stride"]
    assert len(exercises.exercises_of("02")) == 4


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_reference_solution_passes(name):
    result = feedback(name, reference_solution(name))
    assert result.passed, result


def unfinished_function(*args):
    # TODO: what a student's cell holds before they start
    return None


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_unfinished_answers_say_not_done_yet(name):
    answer = unfinished_function if callable(reference_solution(name)) else None
    result = feedback(name, answer)
    assert result.status == "todo"
    assert "not done yet" in str(result)


WRONG_ANSWERS = [
    # (exercise, wrong answer, words the feedback must contain)
    ("01.output_shape", (10, 10), "expected shape (9, 9), got (10, 10): check the padding"),
    ("01.output_shape", (25, 25), "check the stride"),
    ("01.output_shape", (8, 8), "forgot the +1"),
    ("01.output_shape", (9.5, 9.5), "whole numbers"),
    ("01.output_shape", 9, "tuple"),
    ("01.output_shape", ("9", "9"), "give numbers"),
    ("01.horizontal_edges", np.ones((3, 3)), "add up to 0"),
    ("01.horizontal_edges", np.ones((2, 2)), "expected shape (3, 3), got (2, 2)"),
    ("01.horizontal_edges", -np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]), "negatively"),
    ("01.horizontal_edges", np.array([[-1, 0, 1]] * 3), "gives 0 on a horizontal"),
    ("01.horizontal_edges", np.array([[-2, -1, 0], [0, 0, 0], [1, 1, 1]]), "vertical edges"),
    ("01.param_count", 1200, "forgot the biases"),
    ("01.param_count", 416, "all 3 colour channels"),
    ("01.param_count", 76, "one filter"),
    ("01.param_count", 32 * 32 * 3 * 16, "does not depend on the image size"),
    ("01.param_count", "1216", "whole number"),
    ("01.param_count", 1215, "expected 1216, got 1215: kernel height"),
    ("02.pooled_shape", (16, 16, 8), "16 channels stay 16"),
    ("02.pooled_shape", (31, 31, 16), "check the stride"),
    ("02.pooled_shape", (16, 16), "give 3 numbers"),
    ("02.pool_params", 4, "nothing to learn"),
    ("04.most_important_ingredient", "bfloat16", "so noise"),
    ("04.most_important_ingredient", "residual", "without the residual pair"),
    ("04.most_important_ingredient", "dropout", "one ingredient's name"),
    ("04.most_important_ingredient", "weight decay", "one ingredient's name"),
    ("04.most_important_ingredient", "padding", "one ingredient's name"),
]


@pytest.mark.parametrize("name,answer,words", WRONG_ANSWERS,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(WRONG_ANSWERS)])
def test_typical_wrong_values_get_a_helpful_message(name, answer, words):
    result = feedback(name, answer)
    assert result.status == "wrong"
    assert words in result.message, result.message


def stride_ignored(image, kernel, stride):
    return correlate2d_loops(image, kernel, 1)


def flipped(image, kernel, stride):
    return correlate2d_loops(image, kernel[::-1, ::-1], stride)


def wrong_start(image, kernel, stride):
    # each window starts one step too late: the shape is right, the values are not
    out = correlate2d_loops(image, kernel, stride)
    return np.roll(out, 1, axis=1)


def broken(image, kernel, stride):
    return image @ kernel  # shapes do not match: raises


def averaged(feature_map):
    rows, cols = feature_map.shape[0] // 2, feature_map.shape[1] // 2
    return feature_map[: rows * 2, : cols * 2].reshape(rows, 2, cols, 2).mean(axis=(1, 3))


def minimum(feature_map):
    return -nb02_pooling._reference_max_pool_2x2(-feature_map)


def overlapping(feature_map):
    from numpy.lib.stride_tricks import sliding_window_view
    return sliding_window_view(feature_map, (2, 2)).max(axis=(-2, -1))


def padded(feature_map):
    # keeps a last odd row/column as its own window (like padding='same')
    extra = [(0, feature_map.shape[0] % 2), (0, feature_map.shape[1] % 2)]
    return nb02_pooling._reference_max_pool_2x2(np.pad(feature_map, extra, constant_values=-np.inf))


WRONG_FUNCTIONS = [
    ("01.stride", stride_ignored, "you computed every position"),
    ("01.stride", flipped, "you flipped the kernel"),
    ("01.stride", wrong_start, "the shape is right but at position"),
    ("01.stride", broken, "your code raised ValueError"),
    ("01.stride", "not a function", "pass your function itself"),
    ("02.max_pool", averaged, "you averaged"),
    ("02.max_pool", minimum, "smallest"),
    ("02.max_pool", overlapping, "the windows overlap"),
    ("02.max_pool", padded, "is dropped"),
    ("02.global_average", lambda m: m.mean(axis=-1), "averaged over the channels"),
    ("02.global_average", lambda m: m.mean(axis=(0, 1, 2)), "also averaged over the batch"),
    ("02.global_average", lambda m: m.mean(), "one number"),
    ("02.global_average", lambda m: m.max(axis=(1, 2)), "maximum"),
]


@pytest.mark.parametrize("name,function,words", WRONG_FUNCTIONS,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(WRONG_FUNCTIONS)])
def test_typical_wrong_functions_get_a_helpful_message(name, function, words):
    result = feedback(name, function)
    assert result.status == "wrong"
    assert words in result.message, result.message


def test_check_prints_and_never_raises(capsys):
    check("01.stride", broken)
    check("01.output_shape", None)
    check("01.output_shape", (9, 9))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("❌ 01.stride: your code raised")
    assert lines[1].startswith("📝 01.output_shape: not done yet. A 29x29 image")
    assert lines[2] == "✅ 01.output_shape: correct!"


def test_reveal_prints_the_reference_source(capsys):
    exercises.reveal("02.max_pool")
    assert "def _reference_max_pool_2x2" in capsys.readouterr().out
    exercises.reveal("01.param_count")
    assert capsys.readouterr().out.strip() == "1216"


def test_a_new_exercise_plugs_in_and_names_are_unique():
    @exercises.register("98.answer", "Set answer to 42.", reference=lambda: 42)
    def _check(answer):
        return None if answer == 42 else f"expected 42, got {answer}"

    try:
        assert feedback("98.answer", 41).message == "expected 42, got 41"
        assert exercises.exercises_of("98") == ["98.answer"]
        with pytest.raises(TLCNNError, match="registered twice"):
            exercises.register("98.answer", "again", reference=lambda: 0)(lambda answer: None)
        # the same checker again (a module imported twice) replaces it quietly
        exercises.register("98.answer", "Set answer to 42!", reference=lambda: 42)(_check)
        assert EXERCISES["98.answer"].prompt == "Set answer to 42!"
    finally:
        EXERCISES.pop("98.answer")


def test_unknown_exercise_lists_the_real_ones():
    with pytest.raises(TLCNNError, match="01.output_shape"):
        feedback("01.outputshape", (15, 15))


def test_the_ablation_prediction_is_judged_from_the_recorded_runs(monkeypatch):
    from tlcnn_helpers.exercises import nb04_cifar10_cnn as nb04

    assert feedback("04.most_important_ingredient", "warm-up + cosine schedule").passed
    # The answer comes from the record, not from the checker: another record, another answer.
    recorded = {"full": [0.80, 0.80], "no_augmentation": [0.70, 0.72], "no_label_smoothing":
                [0.80, 0.79], "constant_lr": [0.78, 0.79], "no_residual": [0.81, 0.80],
                "float32": [0.80, 0.80], "flip_tta": [0.81, 0.81]}
    monkeypatch.setattr(nb04, "recorded_ablation", lambda name="": recorded)
    assert feedback("04.most_important_ingredient", "flips and shifts").passed
    wrong = feedback("04.most_important_ingredient", "schedule")
    assert not wrong.passed and "-0.015" in wrong.message and "real, but another" in wrong.message
