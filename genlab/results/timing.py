"""Timing shared by the benchmark scripts and the course's speed columns."""
from __future__ import annotations

import time
from typing import Callable

import torch

from ..validation import check_int

__all__ = ["best_time"]


def best_time(function: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Best wall time of ``repeats`` calls (CUDA synchronised) and the last call's result."""
    repeats = check_int(repeats, "repeats", minimum=1)
    if not callable(function):
        raise TypeError(f"function must be callable, got {type(function).__name__}")
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, result
