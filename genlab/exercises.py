"""The exercise convention every chapter uses.

An exercise is three cells:

1. a markdown prompt;
2. a code cell for the learner (``answer = ...``), and right after it a cell
   tagged ``solution`` (+ ``hide-input``): the book hides it behind a toggle
   and the student build (``make student``) strips it;
3. a ``check(...)`` call that passes with a short message, or raises
   :class:`ExerciseError` explaining *what* is wrong: expected vs got, and a
   hint. Never a bare ``AssertionError``.

``check`` compares numbers (with tolerances), arrays/tensors (shape first,
then values), or calls a predicate you give it. Every failure carries a hint:
the one the chapter wrote, or, when none was given, one derived from the kind of
mismatch (shape, NaN, sign, scale, off by a constant).

``make student`` (``python -m genlab.exercises chapters student``) writes the
learners' copies: each solution cell is dropped, so the learner cell's stub
``answer = ...  # your code here`` is what remains, and the checks stay. With
``--nbgrader DIR`` it also writes nbgrader *source* notebooks, where the learner
stub and the solution form one answer cell (the solution between
``### BEGIN SOLUTION`` / ``### END SOLUTION``) and every check cell is a graded,
locked test cell.
"""
from __future__ import annotations

import ast
import copy
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .validation import check_float

__all__ = ["ExerciseError", "NotAttempted", "attempted_function", "check", "chapter_fingerprint", "copy_is_current",
           "find_exercises",
           "load_notebook", "main", "nbgrader_source", "refresh_student_copies", "strip_solutions"]

SOLUTION_TAG = "solution"
BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
#: The placeholder a learner cell assigns: ``answer = ...  # your code here``.
STUB_COMMENT = "# your code here"
#: Largest relative tolerance ``check`` accepts: at ``rtol=1`` any answer of the right sign passes for zero.
MAX_RTOL = 0.5


class ExerciseError(AssertionError):
    """An exercise check failed; the message says what was expected, what was got, and a hint."""


class NotAttempted(ExerciseError):
    """The learner cell still holds the placeholder ``...``."""


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _fail(name: str, expected: str, got: str, hint: str | None) -> None:
    lines = [f"✗ {name}: not quite.", f"  expected: {expected}", f"  got:      {got}"]
    if hint:
        lines.append(f"  hint:     {hint}")
    raise ExerciseError("\n".join(lines))


def attempted_function(answer: Any, signature: str) -> bool:
    """For an implement-it exercise's checker: False when not attempted (``...`` or None), True for a function.

    Anything else raises a TypeError naming ``answer`` and the expected ``signature`` (e.g.
    ``"clip(grads, max_norm)"``), so every checker refuses a wrong kind of answer the same way.
    """
    if answer is Ellipsis or answer is None:
        return False
    if not callable(answer):
        raise TypeError(f"answer must be a function {signature}, got {type(answer).__name__}")
    return True


def check(name: str, got: Any, expected: Any = None, *, rtol: float = 1e-5, atol: float = 1e-8,
          hint: str | None = None, predicate: Callable[[Any], bool] | None = None,
          describe: str | None = None) -> bool:
    """Check a learner's answer and explain any mismatch.

    Args:
        name: the exercise's name, shown in the message.
        got: the learner's answer.
        expected: the reference value (number, array, tensor, str, bool, ...).
        rtol, atol: tolerances for numeric comparisons (``|got - expected| <= atol + rtol * |expected|``);
            ``rtol`` in [0, 0.5], ``atol`` finite and >= 0 (an infinite tolerance would accept anything).
        hint: shown when the answer is wrong; without one, the message derives a hint from the mismatch.
        predicate: instead of ``expected``, a function that returns True for an
            acceptable answer; ``describe`` says in words what it accepts.

    Returns:
        True (and prints a ✓ line) when the answer is right.

    Raises:
        NotAttempted: when ``got`` is ``...`` (the placeholder) or None.
        ExerciseError: when the answer is wrong, with expected vs got and the hint.
        ValueError, TypeError: when ``check`` itself is called wrongly (a bad tolerance, a name that is not
            a string, a predicate that is not callable), naming the argument.
    """
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"name must be a non-empty string such as 'Exercise 3.1', got {name!r}")
    rtol = check_float(rtol, "rtol", low=0.0, high=MAX_RTOL)
    atol = check_float(atol, "atol", low=0.0)
    for label, text in (("hint", hint), ("describe", describe)):
        if text is not None and not isinstance(text, str):
            raise TypeError(f"{label} must be a string or None, got {type(text).__name__}")
    if predicate is not None and not callable(predicate):
        raise TypeError(f"predicate must be a function returning True for an accepted answer, got {predicate!r}")
    if got is Ellipsis or got is None:
        raise NotAttempted(f"✗ {name}: not attempted yet — replace the `...` in the cell above with your answer.")
    if predicate is not None:
        try:
            accepted = bool(predicate(got))
        except Exception as err:  # the learner's value may not even have the right type
            _fail(name, describe or "a value the check accepts", f"{type(got).__name__} that raised {err!r}",
                  hint or "the check could not use your answer: look at its type and shape.")
        if not accepted:
            _fail(name, describe or "a value the check accepts", _short(got),
                  hint or "reread the exercise: your answer has the right type but not the property asked for.")
    elif isinstance(expected, (str, bool)) or expected is None:
        if got != expected:
            _fail(name, repr(expected), repr(got), hint or f"the answer is a {type(expected).__name__}; "
                  "compare spelling and case with the exercise's wording.")
    elif callable(expected):
        raise TypeError("pass functions as predicate=..., not as expected")
    else:
        _compare_numeric(name, got, expected, rtol, atol, hint)
    print(f"✓ {name}: correct.")
    return True


def _compare_numeric(name: str, got: Any, expected: Any, rtol: float, atol: float, hint: str | None) -> None:
    try:
        got_array = _as_array(got).astype(float)
    except (TypeError, ValueError):
        _fail(name, f"a number or array like {_short(expected)}", f"{type(got).__name__} {_short(got)}",
              hint or "the answer must be a number or an array of numbers.")
    expected_array = _as_array(expected).astype(float)
    if got_array.shape != expected_array.shape:
        _fail(name, f"shape {tuple(expected_array.shape)}", f"shape {tuple(got_array.shape)}",
              hint or "check which axis you reduced over or how you reshaped.")
    if not np.all(np.isfinite(got_array)):
        _fail(name, "finite values", "NaN or infinity in your answer",
              hint or "look for a log of 0 or a division by 0.")
    if not np.allclose(got_array, expected_array, rtol=rtol, atol=atol):
        difference = np.abs(got_array - expected_array)
        worst = np.unravel_index(np.argmax(difference), got_array.shape) if got_array.ndim else ()
        where = f" (largest difference at index {tuple(int(i) for i in worst)})" if got_array.ndim else ""
        _fail(name, _short(expected_array), _short(got_array) + where, hint or _derived_hint(got_array, expected_array))


def _derived_hint(got: np.ndarray, expected: np.ndarray) -> str:
    """A hint read off the mismatch when the chapter gave none: sign, scale or a constant offset."""
    if np.allclose(got, -expected, rtol=1e-6, atol=1e-12):
        return "your answer has the wrong sign (a log-likelihood vs a negative log-likelihood?)."
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = got / expected
    if ratio.size and np.all(np.isfinite(ratio)) and np.allclose(ratio, ratio.flat[0], rtol=1e-6):
        factor = float(ratio.flat[0])
        for value, meaning in ((math.log(2), "ln 2 (nats vs bits)"), (1 / math.log(2), "1 / ln 2 (bits vs nats)")):
            if math.isclose(factor, value, rel_tol=1e-6):
                return f"your answer is off by a factor of {meaning}."
        return f"your answer is {factor:.4g} times the expected one: a missing normalisation or a wrong count?"
    offset = got - expected
    if offset.size > 1 and np.allclose(offset, offset.flat[0], rtol=1e-6, atol=1e-12):
        return f"every entry is off by the same constant {float(offset.flat[0]):.4g}: a missing normaliser?"
    return "compare your formula with the one in the text, term by term."


def _short(value: Any) -> str:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        array = _as_array(value)
        if array.size > 6:
            return f"array of shape {array.shape}, first values {np.array2string(array.ravel()[:4], precision=4)}"
        return np.array2string(array, precision=6)
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    text = repr(value)
    return text if len(text) < 120 else text[:117] + "..."


@dataclass(frozen=True)
class Exercise:
    """Where one exercise sits in a notebook (cell indices) and the name its learner cell assigns."""

    title: str
    learner: int
    solution: int
    check: int
    variable: str | None


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _stub_variable(source: str) -> str | None:
    """The name a learner cell sets to ``...`` (``answer = ...  # your code here``), or None."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant) and node.value.value is Ellipsis):
            return node.targets[0].id
    return None


def load_notebook(path: str | Path) -> dict:
    """Read a notebook as a dict; ``FileNotFoundError`` names the path when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def find_exercises(notebook: dict) -> list[Exercise]:
    """Every exercise of a notebook: the learner cell, its solution (tagged ``solution``) and its check.

    The learner cell is the code cell right before the solution; the check is the first code cell after
    it that calls ``check(``. The exercise's title is the last ``### Exercise ...`` heading above it.
    """
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise TypeError("notebook must be a notebook dict with a 'cells' list (see load_notebook)")
    cells, found, title = notebook["cells"], [], ""
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "markdown":
            match = re.search(r"^#+\s*(Exercise [^:\n]*)", _source(cell), re.M)
            title = match.group(1).strip() if match else title
        if SOLUTION_TAG not in _tags(cell):
            continue
        learner = index - 1
        while learner >= 0 and cells[learner]["cell_type"] != "code":
            learner -= 1
        check_index = next((j for j in range(index + 1, len(cells)) if cells[j]["cell_type"] == "code"
                            and re.search(r"\bcheck\(", _source(cells[j]))), -1)
        variable = _stub_variable(_source(cells[learner])) if learner >= 0 else None
        found.append(Exercise(title, learner, index, check_index, variable))
    return found


def _write(notebook: dict, output_path: Path) -> None:
    output_path.parent.mkdir(parents=True, exist_ok=True)
    output_path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _cleared(cell: dict) -> dict:
    cell = copy.deepcopy(cell)
    if cell["cell_type"] == "code":
        cell["outputs"] = []
        cell["execution_count"] = None
    return cell


def strip_solutions(notebook_path: str | Path, output_path: str | Path) -> int:
    """Write a student copy of a notebook: solution cells removed, outputs cleared.

    The learner cell before each solution keeps its stub (``answer = ...  # your code here``) and every
    check cell stays, so a learner who runs the stub gets "not attempted" and a wrong answer gets a hint.
    Returns the number of solution cells removed.
    """
    notebook = load_notebook(notebook_path)
    kept, removed = [], 0
    for cell in notebook["cells"]:
        if SOLUTION_TAG in _tags(cell):
            removed += 1
            continue
        kept.append(_cleared(cell))
    notebook["cells"] = kept
    # Which version of the chapter this copy was made from, so `make lab` can tell a learner it changed.
    notebook.setdefault("metadata", {})["genlab"] = {"source_sha256": chapter_fingerprint(notebook_path)}
    _write(notebook, Path(output_path))
    return removed


def chapter_fingerprint(notebook_path: str | Path) -> str:
    """SHA-256 of a chapter's cell sources (outputs and execution counts excluded: re-running it changes nothing)."""
    notebook = load_notebook(notebook_path)
    digest = hashlib.sha256()
    for cell in notebook["cells"]:
        digest.update(cell["cell_type"].encode() + b"\0" + _source(cell).encode("utf-8") + b"\0")
    return digest.hexdigest()


def copy_is_current(chapter_path: str | Path, student_path: str | Path) -> bool:
    """True when the student copy was made from the chapter as it is now (False for an older or unknown one)."""
    current = chapter_fingerprint(chapter_path)
    recorded = load_notebook(student_path).get("metadata", {}).get("genlab", {}).get("source_sha256")
    return recorded == current


def refresh_student_copies(src: str | Path, out: str | Path) -> list[str]:
    """``make lab``: make missing student copies and never overwrite a learner's work.

    A copy made from an older version of its chapter is kept; the current version is written beside it as
    ``OUT/updated/NN_name.ipynb`` and reported, so the learner can move their answers over. Returns the
    lines printed.
    """
    src, out = Path(src), Path(out)
    lines = []
    for notebook in _chapter_notebooks(src):
        target = out / notebook.name
        if not target.exists():
            removed = strip_solutions(notebook, target)
            lines.append(f"{notebook.name}: new copy ({removed} solution cell(s) removed)")
        elif copy_is_current(notebook, target):
            lines.append(f"{notebook.name}: your copy is up to date")
        else:
            fresh = out / "updated" / notebook.name
            strip_solutions(notebook, fresh)
            lines.append(f"{notebook.name}: the chapter has changed since your copy was made; your copy is kept "
                         f"and the new version is at {fresh} (move your answers over, or delete your copy "
                         "and run `make lab` again)")
    for line in lines:
        print(line)
    return lines


def _chapter_notebooks(src: Path) -> list[Path]:
    if not src.is_dir():
        raise FileNotFoundError(f"no chapter folder at {src}")
    notebooks = sorted(src.glob("[0-9][0-9]_*.ipynb")) or sorted(src.glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks in {src}")
    return notebooks


def _nbgrader(cell: dict, **fields: Any) -> dict:
    cell.setdefault("metadata", {})["nbgrader"] = {"schema_version": 3, **fields}
    return cell


def nbgrader_source(notebook_path: str | Path, output_path: str | Path, *, points: int = 1) -> int:
    """Write an nbgrader *source* notebook (what ``nbgrader generate_assignment`` reads).

    Each exercise's learner cell and solution become one answer cell: the learner's lines, then the
    solution between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (nbgrader replaces that region with
    its code stub). Each check cell becomes a locked test cell worth ``points``. Outputs are cleared.
    Returns the number of exercises converted.
    """
    points = check_float(points, "points", low=0.0, low_inclusive=False)
    notebook = load_notebook(notebook_path)
    exercises = find_exercises(notebook)
    by_learner = {ex.learner: ex for ex in exercises}
    by_solution = {ex.solution: ex for ex in exercises}
    by_check = {ex.check: ex for ex in exercises}
    cells = []
    for index, cell in enumerate(notebook["cells"]):
        if index in by_solution:
            continue
        cell = _cleared(cell)
        if index in by_learner:
            exercise = by_learner[index]
            solution = _source(notebook["cells"][exercise.solution]).rstrip("\n")
            cell["source"] = f"{_source(cell).rstrip()}\n{BEGIN_SOLUTION}\n{solution}\n{END_SOLUTION}\n"
            cell["metadata"]["tags"] = [t for t in _tags(cell) if t != SOLUTION_TAG]
            _nbgrader(cell, grade=False, solution=True, locked=False, task=False,
                      grade_id=_grade_id(exercise.title, index, "answer"))
        elif index in by_check:
            _nbgrader(cell, grade=True, solution=False, locked=True, task=False, points=points,
                      grade_id=_grade_id(by_check[index].title, index, "check"))
        cells.append(cell)
    notebook["cells"] = cells
    _write(notebook, Path(output_path))
    return len(exercises)


def _grade_id(title: str, index: int, kind: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or f"cell-{index}"
    return f"{slug}-{kind}"


def main(argv: list[str] | None = None) -> None:
    """``python -m genlab.exercises SRC_DIR OUT_DIR [--nbgrader DIR]``: student copies of every notebook."""
    import argparse

    parser = argparse.ArgumentParser(
        description="Write student versions of the chapter notebooks (solutions stripped).")
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--nbgrader", type=Path, default=None,
                        help="also write nbgrader source notebooks to DIR/source/<chapter>/<chapter>.ipynb")
    parser.add_argument("--keep-existing", action="store_true",
                        help="never overwrite a student notebook (a learner's work is kept); a copy made from an "
                             "older chapter gets the new version beside it in OUT/updated/")
    args = parser.parse_args(argv)
    if args.keep_existing:
        refresh_student_copies(args.src, args.out)
        return
    for notebook in _chapter_notebooks(args.src):
        removed = strip_solutions(notebook, args.out / notebook.name)
        line = f"{notebook.name}: {removed} solution cell(s) removed"
        if args.nbgrader is not None:
            converted = nbgrader_source(notebook, args.nbgrader / "source" / notebook.stem / notebook.name)
            line += f"; {converted} nbgrader exercise(s)"
        print(line)


if __name__ == "__main__":
    main()
