"""Shared pieces of genlab's models: the not-fitted error, fitted checks, and the deep-model base class.

Input checks live in :mod:`genlab.validation`; the names re-exported here keep older imports working.
"""
from __future__ import annotations

from typing import Any

import torch
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError
from torch import nn

from .validation import as_float_tensor, check_device

__all__ = ["NotFittedError", "check_is_fitted", "check_n_features", "resolve_device", "as_float_tensor",
           "GenerativeModule"]


class NotFittedError(_SklearnNotFittedError):
    """Raised when a method that needs a fitted (trained) model is called before ``fit`` (training).

    A subclass of scikit-learn's ``NotFittedError`` (itself a ``ValueError`` and ``AttributeError``), so
    scikit-learn's tools and estimator checks recognise genlab's unfitted estimators.
    """


def check_is_fitted(estimator: Any, attribute: str) -> None:
    """Raise :class:`NotFittedError` unless ``estimator`` has ``attribute`` (set by ``fit``)."""
    if getattr(estimator, attribute, None) is None:
        raise NotFittedError(f"this {type(estimator).__name__} is not fitted yet; call fit(X) first")


def check_n_features(estimator: Any, X: torch.Tensor) -> None:
    """Raise ``ValueError`` if ``X`` has a different number of features than seen in ``fit``."""
    expected = getattr(estimator, "n_features_in_", None)
    if expected is not None and X.shape[1] != expected:
        raise ValueError(f"X has {X.shape[1]} features, but {type(estimator).__name__} was fitted with {expected}")


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``None`` means genlab's default device (CUDA when present)."""
    return check_device(device)


class GenerativeModule(nn.Module):
    """Base class of genlab's deep generative models.

    It counts optimisation steps in the buffer ``n_updates`` (saved with the weights), which
    :class:`genlab.train.Trainer` increments after every optimiser step. ``sample`` and ``log_prob``
    call :meth:`check_fitted` first, so every deep family refuses an untrained model the same way
    (:class:`NotFittedError`), as the classical estimators do before ``fit``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("n_updates", torch.zeros((), dtype=torch.long))

    @property
    def fitted(self) -> bool:
        """True once at least one optimisation step was taken."""
        return bool(self.n_updates.item() > 0)

    def check_fitted(self, what: str) -> None:
        """Raise :class:`NotFittedError` naming ``what`` if no optimisation step was taken yet."""
        if not self.fitted:
            raise NotFittedError(f"{what} needs a trained {type(self).__name__}: no optimisation step was taken "
                                 "yet (train it with genlab.train.Trainer first)")

    def mark_updated(self) -> None:
        """Record one optimisation step (the Trainer calls this; custom loops should too)."""
        self.n_updates += 1

    @property
    def device(self) -> torch.device:
        """The device of the model's weights (or of its step counter, for a model without weights)."""
        return self.n_updates.device
