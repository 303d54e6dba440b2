"""Timing shared by the benchmark scripts: :func:`genlab.results.timing.best_time`."""
from __future__ import annotations

from genlab.results.timing import best_time

__all__ = ["best_time"]
