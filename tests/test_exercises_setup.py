"""Notebook 00's exercises: the reference answers pass, typical mistakes get a useful hint."""

import pytest

from tlcnn_helpers.data import SHARED_CLASSES
from tlcnn_helpers.exercises import exercises_of, feedback, reference_solution


def test_reference_answers_pass_and_agree_with_the_data_layer():
    assert exercises_of("00") == ["00.cifar_row_bytes", "00.horse_label", "00.pixel_ratio"]
    for name in exercises_of("00"):
        assert feedback(name, reference_solution(name)).passed, name
    assert reference_solution("00.horse_label") == SHARED_CLASSES.index("horse")


@pytest.mark.parametrize("name, wrong, hint", [
    ("00.cifar_row_bytes", 3072, "label byte"),
    ("00.cifar_row_bytes", 1025, "three channels"),
    ("00.horse_label", 7, "frog"),
    ("00.horse_label", 2, "SHARED_CLASSES.index"),
    ("00.pixel_ratio", 3, "area"),
    ("00.pixel_ratio", 27, "channels"),
    ("00.pixel_ratio", "nine", "answer with a number"),
    ("00.pixel_ratio", 9.5, "whole number"),
])
def test_typical_mistakes_get_a_hint(name, wrong, hint):
    result = feedback(name, wrong)
    assert result.status == "wrong" and hint in result.message, result.message


def test_unanswered_is_not_done_yet():
    assert feedback("00.pixel_ratio", None).status == "todo"
