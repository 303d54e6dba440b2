"""Likelihood units: nats per example <-> bits per dimension, with the dequantisation convention."""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch

from ..validation import _to_tensor, check_int, check_positive_float

__all__ = ["nats_to_bits_per_dim", "bits_per_dim_to_nats"]


def _check_values(value: Any, name: str) -> Any:
    """A real number (Python, NumPy or 0-d tensor), a NumPy array or a tensor of real numbers.

    Infinity is allowed (an impossible example has infinite NLL); NaN is not.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number, an array or a tensor of numbers, got {value!r}")
    if isinstance(value, (numbers.Real, np.integer, np.floating)):
        if math.isnan(float(value)):
            raise ValueError(f"{name} is NaN")
        return float(value)
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a number, an array or a tensor of numbers, got the string {value!r}")
    if not isinstance(value, (torch.Tensor, np.ndarray, list, tuple)):
        raise TypeError(f"{name} must be a number, an array or a tensor of numbers, got {type(value).__name__}")
    tensor = _to_tensor(value, name)
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    if torch.isnan(tensor.double()).any():
        raise ValueError(f"{name} contains NaN")
    if isinstance(value, (list, tuple)):
        return np.asarray(value, dtype=np.float64)
    return value


def nats_to_bits_per_dim(nats: Any, n_dims: int, *, bin_width: float = 1.0) -> Any:
    """Convert a negative log-likelihood per example (nats) to bits per dimension.

    Convention: bits/dim reports the *discrete* NLL, ``-log2 P(x) / D``. For a continuous density
    fitted to uniformly dequantised data (``x + u``, ``u ~ U[0, bin_width)^D``) its NLL in nats is
    an upper bound on the discrete NLL once the bin volume is accounted for:
    ``nats_discrete = nats - D log(bin_width)``. With ``bin_width=1`` (data kept in integer levels,
    as genlab's digits are: 0..16) nothing is added; for 8-bit images scaled to [0, 1] pass
    ``bin_width=1/256`` (which adds ``D log 256``). Then ``bits/dim = nats_discrete / (D ln 2)``.
    Works on numbers (Python or NumPy), NumPy arrays, lists and tensors.
    """
    nats = _check_values(nats, "nats")
    n_dims = check_int(n_dims, "n_dims", minimum=1)
    bin_width = check_positive_float(bin_width, "bin_width")
    return (nats - n_dims * math.log(bin_width)) / (n_dims * math.log(2))


def bits_per_dim_to_nats(bits_per_dim: Any, n_dims: int, *, bin_width: float = 1.0) -> Any:
    """Inverse of :func:`nats_to_bits_per_dim` (same dequantisation convention)."""
    bits_per_dim = _check_values(bits_per_dim, "bits_per_dim")
    n_dims = check_int(n_dims, "n_dims", minimum=1)
    bin_width = check_positive_float(bin_width, "bin_width")
    return bits_per_dim * n_dims * math.log(2) + n_dims * math.log(bin_width)
