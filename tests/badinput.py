"""Table-driven bad-input testing shared by the per-family test modules.

Each family's ``tests/test_bad_input_<family>.py`` lists cases ``Case(callable_name, call, argument)``
and runs them through :func:`assert_clear_error`; it also declares ``COVERED``, the public callables
(``"module.name"`` or ``"module.Class.method"``) its table walks. ``tests/test_bad_input_coverage.py``
checks that the union of the ``COVERED`` sets spans genlab's public API.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Callable

import numpy as np
import pytest

CLEAR_ERRORS = (ValueError, TypeError, FileNotFoundError, KeyError, IndexError)

#: Families of bad values for a size argument (n_samples, epochs, batch_size, ...).
BAD_SIZES: list[Any] = [0, -1, 2.5, "3", True, None, float("nan")]
#: Families of bad values for a positive real argument (a bandwidth, a learning rate, ...).
BAD_POSITIVE_FLOATS: list[Any] = [0.0, -1.0, float("nan"), float("inf"), "a", True]
#: Bad seeds / random states.
BAD_SEEDS: list[Any] = [-1, 2**70, 1.5, "a"]
#: Bad numeric arrays for a 2-D data argument (n, d).
BAD_ARRAYS: list[Any] = [
    np.array([[np.nan, 0.0]]),
    np.array([[np.inf, 0.0]]),
    np.array([[1e300, 1e300]]),
    np.zeros((0, 2)),
    np.array([["a", "b"]]),
    "not an array",
]


@dataclasses.dataclass
class Case:
    """One bad call: ``call()`` must raise a clear error whose message mentions ``argument``."""

    target: str
    call: Callable[[], Any]
    argument: str
    label: str = ""

    def __str__(self) -> str:  # pytest ids
        return f"{self.target}[{self.argument}{'=' + self.label if self.label else ''}]"


def assert_clear_error(case: Case, timeout_s: float = 20.0) -> None:
    """``case.call()`` raises one of :data:`CLEAR_ERRORS` and the message names ``case.argument``."""
    with pytest.raises(CLEAR_ERRORS) as info:
        case.call()
    message = str(info.value)
    pattern = re.escape(case.argument)
    assert re.search(pattern, message, flags=re.IGNORECASE), (
        f"{case}: the error does not name {case.argument!r}: {type(info.value).__name__}: {message}")
    assert "weights_only=False" not in message, f"{case}: never suggest weights_only=False: {message}"


def is_finite_number(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
