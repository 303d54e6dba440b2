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
then values), or calls a predicate you give it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

SOLUTION_TAG = "solution"


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


def check(name: str, got: Any, expected: Any = None, *, rtol: float = 1e-5, atol: float = 1e-8,
          hint: str | None = None, predicate: Callable[[Any], bool] | None = None,
          describe: str | None = None) -> bool:
    """Check a learner's answer and explain any mismatch.

    Args:
        name: the exercise's name, shown in the message.
        got: the learner's answer.
        expected: the reference value (number, array, tensor, str, bool, ...).
        rtol, atol: tolerances for numeric comparisons.
        hint: shown when the answer is wrong.
        predicate: instead of ``expected``, a function that returns True for an
            acceptable answer; ``describe`` says in words what it accepts.

    Returns:
        True (and prints a ✓ line) when the answer is right.

    Raises:
        NotAttempted: when ``got`` is ``...`` (the placeholder) or None.
        ExerciseError: when the answer is wrong, with expected vs got and the hint.
    """
    if got is Ellipsis or got is None:
        raise NotAttempted(f"✗ {name}: not attempted yet — replace the `...` in the cell above with your answer.")
    if predicate is not None:
        try:
            accepted = bool(predicate(got))
        except Exception as err:  # the learner's value may not even have the right type
            _fail(name, describe or "a value the check accepts", f"{type(got).__name__} that raised {err!r}", hint)
        if not accepted:
            _fail(name, describe or "a value the check accepts", _short(got), hint)
    elif isinstance(expected, (str, bool)) or expected is None:
        if got != expected:
            _fail(name, repr(expected), repr(got), hint)
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
        _fail(name, f"a number or array like {_short(expected)}", f"{type(got).__name__} {_short(got)}", hint)
    expected_array = _as_array(expected).astype(float)
    if got_array.shape != expected_array.shape:
        _fail(name, f"shape {tuple(expected_array.shape)}", f"shape {tuple(got_array.shape)}",
              hint or "check which axis you reduced over or how you reshaped.")
    if not np.all(np.isfinite(got_array)):
        _fail(name, "finite values", "NaN or infinity in your answer", hint or "look for a log of 0 or a division by 0.")
    if not np.allclose(got_array, expected_array, rtol=rtol, atol=atol):
        worst = np.unravel_index(np.argmax(np.abs(got_array - expected_array)), got_array.shape) if got_array.ndim else ()
        where = f" (largest difference at index {tuple(int(i) for i in worst)})" if got_array.ndim else ""
        _fail(name, _short(expected_array), _short(got_array) + where, hint)


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


def strip_solutions(notebook_path: str | Path, output_path: str | Path) -> int:
    """Write a student copy of a notebook: solution cells removed, outputs cleared.

    Returns the number of solution cells removed.
    """
    notebook_path, output_path = Path(notebook_path), Path(output_path)
    if not notebook_path.is_file():
        raise FileNotFoundError(f"no notebook at {notebook_path}")
    notebook = json.loads(notebook_path.read_text(encoding="utf-8"))
    kept, removed = [], 0
    for cell in notebook["cells"]:
        if SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
            removed += 1
            continue
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        kept.append(cell)
    notebook["cells"] = kept
    output_path.parent.mkdir(parents=True, exist_ok=True)
    output_path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return removed


def main(argv: list[str] | None = None) -> None:
    """``python -m genlab.exercises SRC_DIR OUT_DIR``: student copies of every notebook."""
    import argparse

    parser = argparse.ArgumentParser(description="Write student versions of the chapter notebooks (solutions stripped).")
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    notebooks = sorted(args.src.glob("*.ipynb"))
    if not notebooks:
        raise SystemExit(f"no notebooks in {args.src}")
    for notebook in notebooks:
        removed = strip_solutions(notebook, args.out / notebook.name)
        print(f"{notebook.name}: {removed} solution cell(s) removed")


if __name__ == "__main__":
    main()
