"""Bad calls of genlab.exercises fail at the door, naming the argument."""
import numpy as np
import pytest
from badinput import BAD_POSITIVE_FLOATS, Case, assert_clear_error

from genlab import exercises

COVERED = {"exercises.check", "exercises.strip_solutions", "exercises.nbgrader_source", "exercises.find_exercises",
           "exercises.load_notebook", "exercises.main", "exercises.chapter_fingerprint", "exercises.copy_is_current",
           "exercises.refresh_student_copies", "exercises.attempted_function"}

CASES = (
    [Case("exercises.check", lambda v=v: exercises.check("x", 100.0, 1.0, atol=v), "atol", repr(v))
     for v in [float("inf"), -1.0, float("nan"), "a", True]]
    + [Case("exercises.check", lambda v=v: exercises.check("x", 100.0, 1.0, rtol=v), "rtol", repr(v))
       for v in [float("inf"), -1.0, float("nan"), 1.0, "a", True]]
    + [Case("exercises.check", lambda: exercises.check(3, 1.0, 1.0), "name"),
       Case("exercises.check", lambda: exercises.check("x", 1.0, predicate="yes"), "predicate"),
       Case("exercises.check", lambda: exercises.check("x", 1.0, 2.0, hint=["a"]), "hint"),
       Case("exercises.check", lambda: exercises.check("x", 1.0, predicate=bool, describe=1), "describe"),
       Case("exercises.strip_solutions", lambda: exercises.strip_solutions("no/such.ipynb", "out.ipynb"), "no/such"),
       Case("exercises.load_notebook", lambda: exercises.load_notebook("no/such.ipynb"), "no/such"),
       Case("exercises.find_exercises", lambda: exercises.find_exercises(np.zeros(2)), "notebook"),
       Case("exercises.main", lambda: exercises.main(["no/such/folder", "out"]), "no/such/folder"),
       Case("exercises.main", lambda: exercises.main(["no/such/folder", "out", "--keep-existing"]), "no/such/folder"),
       Case("exercises.chapter_fingerprint", lambda: exercises.chapter_fingerprint("no/such.ipynb"), "no/such"),
       Case("exercises.copy_is_current", lambda: exercises.copy_is_current("no/such.ipynb", "b.ipynb"), "no/such"),
       Case("exercises.refresh_student_copies", lambda: exercises.refresh_student_copies("no/such/dir", "out"),
            "no/such/dir"),
       Case("exercises.attempted_function", lambda: exercises.attempted_function(3.0, "f(x)"), "answer")]
    + [Case("exercises.nbgrader_source", lambda v=v: exercises.nbgrader_source("a.ipynb", "b.ipynb", points=v),
            "points", repr(v)) for v in BAD_POSITIVE_FLOATS]
)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input(case):
    assert_clear_error(case)
