"""Where code runs and how big a run is.

* :func:`get_device` picks CUDA when present, else the CPU (``GENLAB_DEVICE``
  overrides, e.g. ``GENLAB_DEVICE=cpu`` on a GPU machine).
* :func:`seed_everything` seeds Python, NumPy and torch in one call.
* :func:`get_profile` reads ``GENLAB_PROFILE``: ``quick`` (the default: every
  notebook runs in minutes on a 2-core CPU) or ``full`` (more data, longer
  training; meant for a GPU). The sizes themselves live in
  :mod:`genlab.profiles`, the one place that decides them.
"""
from __future__ import annotations

import os
import random

#: Environment that makes CPU linear algebra repeat bit for bit from run to run. MKL chooses kernels by
#: the memory alignment of its operands and, with MKL_DYNAMIC, may change its thread count between
#: calls; either changes the order of floating-point sums and thus the last bits of a result. CNR
#: mode ("conditional numerical reproducibility", AUTO,STRICT) and a fixed thread count remove both.
#: Read by MKL when it initialises, so they are set before torch runs any MKL code (the Makefile
#: exports them too, for processes that call MKL before importing genlab).
REPRODUCIBLE_ENV = {"MKL_CBWR": "AUTO,STRICT", "MKL_DYNAMIC": "FALSE", "OMP_DYNAMIC": "FALSE"}
for _name, _value in REPRODUCIBLE_ENV.items():
    os.environ.setdefault(_name, _value)

import numpy as np  # noqa: E402  (after the environment above, on purpose)
import torch  # noqa: E402

PROFILES = ("quick", "full")


def get_device(prefer: str | None = None) -> torch.device:
    """Return the device genlab computes on.

    Order of precedence: the ``prefer`` argument, then the ``GENLAB_DEVICE``
    environment variable, then CUDA if available, else the CPU.

    Raises:
        ValueError: if the requested device is unknown or not available.
    """
    choice = prefer if prefer is not None else os.environ.get("GENLAB_DEVICE")
    if choice is None or choice == "":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(choice)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {choice!r} (GENLAB_DEVICE or prefer=); use 'cpu' or 'cuda'") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {choice!r} was requested but CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device type {device.type!r}; use 'cpu' or 'cuda'")
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's ``random``, NumPy and torch (CPU and CUDA).

    Returns a fresh :class:`torch.Generator` seeded with ``seed`` so callers
    can draw reproducible streams without touching the global state again.

    Raises:
        TypeError: if ``seed`` is not an integer (``"a"``, ``1.5``, ``True``).
        ValueError: if ``seed`` is negative or beyond ``2**63 - 1`` (torch's limit).
    """
    from .validation import check_seed

    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def get_profile() -> str:
    """Return the run profile, ``"quick"`` (default) or ``"full"``.

    Raises:
        ValueError: if ``GENLAB_PROFILE`` holds anything else.
    """
    profile = os.environ.get("GENLAB_PROFILE", "quick").strip().lower() or "quick"
    if profile not in PROFILES:
        raise ValueError(f"GENLAB_PROFILE must be one of {PROFILES}, got {profile!r}")
    return profile
