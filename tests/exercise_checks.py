"""Shared by the tests of chapter exercises: run a check cell on the stub, a mistake and the solution."""
from __future__ import annotations

from pathlib import Path

import pytest

from genlab.exercises import ExerciseError, NotAttempted, find_exercises, load_notebook

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"


def exercise_cells(chapter: str, title: str) -> tuple[str, str]:
    """(solution source, check source) of one exercise of a chapter notebook."""
    notebook = load_notebook(CHAPTERS / f"{chapter}.ipynb")
    cells = notebook["cells"]
    exercise = next(e for e in find_exercises(notebook) if e.title.startswith(title))
    return "".join(cells[exercise.solution]["source"]), "".join(cells[exercise.check]["source"])


def assert_check_is_helpful(chapter: str, title: str, namespace: dict, mistake, variable: str = "answer") -> None:
    """The check refuses the stub and a typical mistake (with a hint) and accepts the chapter's solution."""
    solution, check_source = exercise_cells(chapter, title)
    with pytest.raises(NotAttempted):
        exec(check_source, {**namespace, variable: ...})
    with pytest.raises(ExerciseError, match="hint"):
        exec(check_source, {**namespace, variable: mistake})
    solved = dict(namespace)
    exec(solution, solved)
    exec(check_source, {**namespace, variable: solved[variable]})
