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
            {"cell_type": "code", "metadata": {}, "source": ["answer = ..."], "outputs": [{"x": 1}], "execution_count": 1},
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
