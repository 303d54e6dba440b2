"""Results belong to genlab: measured numbers with their provenance.

:func:`provenance` describes the run (commit, UTC date, library versions, device, CPU, threads,
arguments, profile, AMP); :func:`save_results` writes a JSON payload atomically with it, and
:func:`load_results` reads one back. The course's leaderboard, likelihood ledger and reference table
build on these: :mod:`genlab.results.leaderboard` (model registry, scoring, floor, tables, merge),
:mod:`genlab.results.ledger` (the VAE family's test likelihoods and the one digits training recipe),
:mod:`genlab.results.references` (literature numbers, defined once, with sources) and
:mod:`genlab.results.timing`. Import those submodules explicitly (they load model families lazily).
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from ..device import get_profile
from ..io import atomic_write

__all__ = ["provenance", "save_results", "load_results", "REPO_ROOT", "RESULTS_DIR"]

#: The repository root (results files live in ``benchmarks/results`` there).
REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"

_LIBRARIES = ("torch", "numpy", "scikit-learn", "scipy", "hmmlearn")


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(*, args: Any = None, device: torch.device | str | None = None,
               amp: bool | None = None) -> dict[str, Any]:
    """Where and how a result was measured, as a JSON-ready dict."""
    if amp is not None and not isinstance(amp, bool):
        raise TypeError(f"amp must be True, False or None, got {type(amp).__name__}")
    try:
        device = torch.device(device) if device is not None else None
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be a torch.device or a string such as 'cpu' or 'cuda', got {device!r}") from None
    gpu = torch.cuda.get_device_name(device) if device is not None and device.type == "cuda" else None
    return {
        "commit": _git_commit(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in _LIBRARIES},
        "device": str(device) if device is not None else None,
        "gpu": gpu,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "argv": sys.argv[1:],
        "args": {k: (v if isinstance(v, (int, float, str, bool, type(None), list, dict)) else str(v))
                 for k, v in (vars(args) if hasattr(args, "__dict__") else dict(args or {})).items()},
        "profile": get_profile(),
        "amp": amp,
    }


def save_results(path: str | os.PathLike, payload: dict[str, Any], *, args: Any = None,
                 device: torch.device | str | None = None, amp: bool | None = None) -> Path:
    """Write ``payload`` plus a ``"provenance"`` entry to ``path`` as JSON, atomically.

    Either the old file or the complete new one is on disk at any moment: a run that fails while
    writing leaves what was there.
    """
    if not isinstance(payload, dict):
        raise TypeError(f"payload must be a dict, got {type(payload).__name__}")
    record = dict(payload)
    record["provenance"] = provenance(args=args, device=device, amp=amp)
    text = json.dumps(record, indent=2, sort_keys=False, default=str) + "\n"

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    return atomic_write(path, write)


def load_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read a results file written by :func:`save_results`; clear errors for a missing or broken file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no results file at {path}; run the benchmark that writes it first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"results file {path} is not valid JSON ({err}); re-run the benchmark") from err
