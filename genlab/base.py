"""Shared pieces of the scikit-learn-style estimators: input checks and the not-fitted error."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch


class NotFittedError(ValueError, AttributeError):
    """Raised when a method that needs a fitted estimator is called before ``fit``."""


def check_is_fitted(estimator: Any, attribute: str) -> None:
    """Raise :class:`NotFittedError` unless ``estimator`` has ``attribute`` (set by ``fit``)."""
    if getattr(estimator, attribute, None) is None:
        raise NotFittedError(f"this {type(estimator).__name__} is not fitted yet; call fit(X) first")


def as_float_tensor(X: Any, *, name: str = "X", ndim: int = 2, dtype: torch.dtype = torch.float64,
                    device: torch.device | str | None = None, min_rows: int = 1) -> torch.Tensor:
    """Validate ``X`` (NumPy array, list or tensor) and return a floating tensor.

    Checks: numeric, ``ndim`` dimensions (a 1-D input becomes one column when
    ``ndim == 2``), at least ``min_rows`` rows, no NaN or infinity.
    """
    if isinstance(X, torch.Tensor):
        tensor = X.detach()
    else:
        try:
            array = np.asarray(X)
        except Exception as err:  # ragged lists and the like
            raise ValueError(f"{name} could not be read as an array: {err}") from err
        if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
        tensor = torch.as_tensor(array)
    if tensor.is_complex():
        raise ValueError(f"{name} must be real, got a complex dtype")
    if ndim == 2 and tensor.ndim == 1:
        tensor = tensor.reshape(-1, 1)
    if tensor.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(tensor.shape)}")
    if tensor.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} row(s), got {tensor.shape[0]}")
    if ndim == 2 and tensor.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {tuple(tensor.shape)})")
    tensor = tensor.to(dtype=dtype, device=device)
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return tensor


def check_n_features(estimator: Any, X: torch.Tensor) -> None:
    """Raise ``ValueError`` if ``X`` has a different number of features than seen in ``fit``."""
    expected = getattr(estimator, "n_features_in_", None)
    if expected is not None and X.shape[1] != expected:
        raise ValueError(f"X has {X.shape[1]} features, but {type(estimator).__name__} was fitted with {expected}")


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``None`` means genlab's default device (CUDA when present)."""
    from .device import get_device

    return device if isinstance(device, torch.device) else get_device(device)
