import json

import numpy as np
import pytest
import torch

from genlab.exercises import ExerciseError, NotAttempted, check, strip_solutions


def test_correct_answers_pass(capsys):
    assert check("sum", 3.0000001, 3.0)
    assert check("vector", torch.tensor([1.0, 2.0]), np.array([1.0, 2.0]))
    assert check("word", "EM", "EM")
    assert check("positive", 5, predicate=lambda v: v > 0, describe="a positive number")
    assert "✓ sum: correct." in capsys.readouterr().out


def test_placeholder_means_not_attempted():
    with pytest.raises(NotAttempted, match="not attempted"):
        check("ex", ..., 1.0)


def test_wrong_value_explains_expected_got_and_hint():
    with pytest.raises(ExerciseError) as info:
        check("mean", 2.5, 3.0, hint="divide by n, not n - 1")
    message = str(info.value)
    assert "expected: 3" in message and "got:      2.5" in message and "divide by n" in message


def test_wrong_shape_is_named_before_values():
    with pytest.raises(ExerciseError, match=r"shape \(3,\)"):
        check("vec", np.zeros((3, 1)), np.zeros(3))


def test_nan_answer_gets_its_own_hint():
    with pytest.raises(ExerciseError, match="NaN"):
        check("log", float("nan"), 1.0)


def test_wrong_type_is_explained():
    with pytest.raises(ExerciseError, match="a number or array"):
        check("n", "three", 3)


def test_predicate_failure_and_crash_are_explained():
    with pytest.raises(ExerciseError, match="a positive number"):
        check("p", -1, predicate=lambda v: v > 0, describe="a positive number")
    with pytest.raises(ExerciseError, match="raised"):
        check("p", "x", predicate=lambda v: v.shape == (2,), describe="an array of shape (2,)")


def test_errors_are_not_bare_assertion_errors():
    with pytest.raises(ExerciseError) as info:
        check("x", 1.0, 2.0)
    assert str(info.value).strip()


def test_strip_solutions(tmp_path):
    notebook = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Title"]},
            {"cell_type": "code", "metadata": {}, "source": ["answer = ..."], "outputs": [{"x": 1}],
             "execution_count": 1},
            {"cell_type": "code", "metadata": {"tags": ["solution", "hide-input"]}, "source": ["answer = 42"],
             "outputs": [], "execution_count": 2},
        ],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }
    source = tmp_path / "nb.ipynb"
    source.write_text(json.dumps(notebook))
    removed = strip_solutions(source, tmp_path / "student" / "nb.ipynb")
    result = json.loads((tmp_path / "student" / "nb.ipynb").read_text())
    assert removed == 1 and len(result["cells"]) == 2
    assert result["cells"][1]["outputs"] == [] and result["cells"][1]["execution_count"] is None
    with pytest.raises(FileNotFoundError):
        strip_solutions(tmp_path / "missing.ipynb", tmp_path / "out.ipynb")


# --- check validates its own arguments -------------------------------------------------------------
@pytest.mark.parametrize("kwargs, argument", [
    ({"atol": float("inf")}, "atol"), ({"atol": -1.0}, "atol"), ({"atol": float("nan")}, "atol"),
    ({"rtol": float("nan")}, "rtol"), ({"rtol": -1.0}, "rtol"), ({"rtol": float("inf")}, "rtol"),
    ({"rtol": 2.0}, "rtol"), ({"rtol": "0.1"}, "rtol"), ({"atol": True}, "atol"),
])
def test_bad_tolerances_are_refused_not_used(kwargs, argument):
    # atol=inf used to accept 100 for an expected 1.
    with pytest.raises((ValueError, TypeError), match=argument):
        check("Exercise", 100.0, 1.0, **kwargs)


def test_bad_name_hint_and_predicate_are_refused():
    with pytest.raises(TypeError, match="name"):
        check("", 1.0, 1.0)
    with pytest.raises(TypeError, match="hint"):
        check("x", 1.0, 2.0, hint=3)
    with pytest.raises(TypeError, match="predicate"):
        check("x", 1.0, predicate=5)


# --- every failure carries a hint, even when the chapter gave none -----------------------------------
@pytest.mark.parametrize("got, expected, fragment", [
    (-2.0, 2.0, "wrong sign"),
    (3.0 * np.log(2), 3.0, "ln 2"),
    (np.array([2.0, 4.0]), np.array([1.0, 2.0]), "2 times"),
    (np.array([1.5, 2.5, 0.5]), np.array([1.0, 2.0, 0.0]), "same constant"),
    (np.array([1.0, 7.0]), np.array([1.0, 2.0]), "term by term"),
])
def test_derived_hints(got, expected, fragment):
    with pytest.raises(ExerciseError, match="hint:") as info:
        check("x", got, expected)
    assert fragment in str(info.value)


def test_every_kind_of_failure_has_a_hint():
    failures = [
        lambda: check("x", "a", "b"),
        lambda: check("x", -1, predicate=lambda v: v > 0),
        lambda: check("x", "s", predicate=lambda v: v.shape),
        lambda: check("x", object(), 1.0),
        lambda: check("x", np.zeros(2), np.zeros(3)),
        lambda: check("x", float("inf"), 1.0),
    ]
    for failure in failures:
        with pytest.raises(ExerciseError) as info:
            failure()
        assert "hint:" in str(info.value), str(info.value)


# --- student and nbgrader copies ---------------------------------------------------------------------
def _exercise_notebook():
    def code(source, tags=(), outputs=()):
        return {"cell_type": "code", "metadata": {"tags": list(tags)} if tags else {}, "source": source,
                "outputs": list(outputs), "execution_count": 1}
    return {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# 1. Title"},
            code("import genlab"),
            {"cell_type": "markdown", "metadata": {}, "source": "### Exercise 1.1: the answer"},
            code("answer = ...  # your code here"),
            code("answer = 42", tags=("solution", "hide-input")),
            code('check("Exercise 1.1", answer, 42, hint="six times seven")', outputs=[{"output_type": "stream"}]),
        ],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }


def test_find_exercises():
    from genlab.exercises import find_exercises

    (exercise,) = find_exercises(_exercise_notebook())
    assert (exercise.title, exercise.learner, exercise.solution, exercise.check, exercise.variable) == \
        ("Exercise 1.1", 3, 4, 5, "answer")
    with pytest.raises(TypeError, match="notebook"):
        find_exercises([])


def test_nbgrader_source(tmp_path):
    from genlab.exercises import BEGIN_SOLUTION, END_SOLUTION, nbgrader_source

    source = tmp_path / "nb.ipynb"
    source.write_text(json.dumps(_exercise_notebook()))
    assert nbgrader_source(source, tmp_path / "out" / "nb.ipynb") == 1
    cells = json.loads((tmp_path / "out" / "nb.ipynb").read_text())["cells"]
    assert len(cells) == 5
    answer, test = cells[3], cells[4]
    assert answer["source"].startswith("answer = ...  # your code here\n" + BEGIN_SOLUTION + "\nanswer = 42\n")
    assert END_SOLUTION in answer["source"]
    assert answer["metadata"]["nbgrader"]["solution"] and not answer["metadata"]["nbgrader"]["grade"]
    assert test["metadata"]["nbgrader"] == {"schema_version": 3, "grade": True, "solution": False, "locked": True,
                                            "task": False, "points": 1.0, "grade_id": "exercise-1-1-check"}
    assert test["outputs"] == [] and test["execution_count"] is None
    # The answer cell runs as the instructor's solution: the stub, then the solution overriding it.
    namespace: dict = {}
    exec(answer["source"], namespace)
    assert namespace["answer"] == 42
    with pytest.raises(ValueError, match="points"):
        nbgrader_source(source, tmp_path / "x.ipynb", points=0)
    with pytest.raises(FileNotFoundError, match="missing"):
        nbgrader_source(tmp_path / "missing.ipynb", tmp_path / "x.ipynb")
