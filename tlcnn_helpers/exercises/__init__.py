"""Exercises with automatic feedback, in words a student understands.

An :class:`Exercise` has a name (``"01.output_shape"``: notebook number, then a short
name), a prompt, a reference solution and a checker. A checker receives the student's
answer and returns ``None`` when it is right, or one sentence saying what is wrong and
where to look ("expected shape (15, 15), got (16, 16): check the padding ..."). The
notebook cell calls :func:`check`, which prints the feedback and never raises: an
unfinished answer (``None``, or a function that still returns ``None``) is "not done
yet", an exception inside the student's code is reported, and the notebook runs on.

The exercises of notebook NN live in ``tlcnn_helpers/exercises/nbNN_<topic>.py``; this package
imports them all, so a notebook needs only ``from tlcnn_helpers import exercises``. Adding
one takes one decorated function:

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

Used by every notebook's exercises section.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import TLCNNError, UnfinishedAnswer

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
    accepted: str = "correct!"


EXERCISES: dict[str, Exercise] = {}


def register(name: str, prompt: str, reference: Callable[[], Any],
             accepted: str = "correct!") -> Callable[[Checker], Checker]:
    """Decorator: make the decorated checker the check of a new exercise ``name``.

    ``reference`` is called with no arguments and returns the reference answer (a value, or
    the reference function for "write a function" exercises). ``accepted`` is what an
    accepted answer is told (a prediction is recorded, not "correct"). The module docstring
    has a complete example.
    """
    def decorate(checker: Checker) -> Checker:
        known = EXERCISES.get(name)
        same_checker = known is not None and (
            (known.checker.__module__, known.checker.__qualname__)
            == (checker.__module__, checker.__qualname__))
        if known is not None and not same_checker:  # re-importing a module is fine
            raise TLCNNError(f"exercise {name!r} is registered twice: give it another name")
        EXERCISES[name] = Exercise(name, prompt, checker, reference, accepted)
        return checker
    return decorate


def _exercise(name: str) -> Exercise:
    if name not in EXERCISES:
        raise TLCNNError(f"no exercise called {name!r}: the exercises are "
                         f"{', '.join(sorted(EXERCISES))}")
    return EXERCISES[name]


def feedback(name: str, answer: Any) -> Feedback:
    """Check ``answer`` for exercise ``name`` and return the :class:`Feedback` (no printing).

    >>> result = feedback("02.pool_params", 0)
    >>> result.passed, result.status
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
    return Feedback(name, "correct", exercise.accepted)


def check(name: str, answer: Any) -> None:
    """Print the feedback on ``answer`` for exercise ``name``; never raises for a wrong answer.

    >>> check("01.output_shape", (10, 10))  # doctest: +ELLIPSIS
    ❌ 01.output_shape: expected shape (9, 9), got (10, 10): check the padding...
    """
    print(feedback(name, answer))


def reference_solution(name: str) -> Any:
    """The reference answer of exercise ``name`` (a value or a function).

    >>> reference_solution("01.output_shape")
    (9, 9)
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


def _whole_number(answer: Any, example: str) -> int | str:
    if isinstance(answer, (bool, np.bool_)) or not isinstance(answer, (int, float, np.number)):
        return f"answer with a number, like {example}, not {type(answer).__name__} {answer!r}"
    if not float(answer).is_integer():
        return f"the answer is a whole number, got {answer}"
    return int(answer)


# Registering: each notebook's module adds its exercises when imported.
from . import (  # noqa: E402, F401 (registers them; after the framework they use)
    nb00_setup,
    nb01_convolution,
    nb02_pooling,
    nb03_how_a_cnn_learns,
    nb04_cifar10_cnn,
    nb05_stl10_tuning,
    nb06_transfer_across_sizes,
    nb07_what_the_cnn_sees,
)
