"""Notebook 00's version check: each library older than pyproject.toml allows is named."""

import pytest

from tlcnn_helpers.environment import MINIMUM_VERSIONS, version_problems

# One release below each minimum (keras_tuner 1.4.6 < 1.4.7 needs the third number).
TOO_OLD = {"python": "3.9.18", "tensorflow": "2.16.2", "keras": "3.5.0",
           "keras_tuner": "1.4.6", "numpy": "1.25.2"}


def test_minimum_versions_pass_the_version_check():
    assert version_problems(dict(MINIMUM_VERSIONS)) == []


@pytest.mark.parametrize("name", sorted(TOO_OLD))
def test_a_library_older_than_its_minimum_is_named_with_the_fix(name):
    report = dict(MINIMUM_VERSIONS, **{name: TOO_OLD[name]})
    problems = version_problems(report)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{name} {TOO_OLD[name]} is older than "
                                  f"{MINIMUM_VERSIONS[name]}")
    assert "make course" in problems[0]


def test_every_old_library_is_reported_at_once():
    assert set(TOO_OLD) == set(MINIMUM_VERSIONS)  # a newly checked library needs an old version here
    assert len(version_problems(TOO_OLD)) == len(TOO_OLD)


def test_newer_and_local_builds_pass_the_version_check():
    assert version_problems({"python": "3.13.1", "tensorflow": "2.21.0rc1+local",
                             "keras": "3.15.1", "keras_tuner": "1.4.8", "numpy": "2.3.0"}) == []


def test_a_backend_other_than_tensorflow_is_reported():
    problems = version_problems(dict(MINIMUM_VERSIONS, backend="jax"))
    assert problems == [problems[0]] and "KERAS_BACKEND=tensorflow" in problems[0]
