"""A generative classifier: class priors times class-conditional Gaussians.

:class:`GaussianClassConditional` models the joint density
``p(x, y) = p(y) N(x | mu_y, Sigma_y)`` and classifies with Bayes' rule,
``p(y | x) = p(x, y) / p(x)``. Because it is a model of ``x`` too, it can also
score new points (``score_samples`` = ``log p(x)``, the marginal over classes)
and draw new ones (``sample``). Three covariance structures:

* ``"full"``: one covariance per class (quadratic discriminant analysis, QDA);
* ``"tied"``: one covariance shared by all classes (linear discriminant analysis, LDA);
* ``"diag"``: one diagonal covariance per class (Gaussian naive Bayes).

All parameters are maximum-likelihood estimates (class frequencies, class
means, covariances with divisor ``n_k``), plus ``reg_covar`` on the diagonal.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .base import as_float_tensor, check_is_fitted, check_n_features, resolve_device

COVARIANCE_TYPES = ("full", "tied", "diag")


def _as_labels(y: Any, n_rows: int, device: torch.device) -> torch.Tensor:
    """Validate class labels: 1-D, integer-valued, one per row of ``X``."""
    if isinstance(y, torch.Tensor):
        labels = y.detach().cpu().numpy()
    else:
        try:
            labels = np.asarray(y)
        except Exception as err:  # ragged input
            raise ValueError(f"y could not be read as an array: {err}") from err
    if labels.ndim != 1:
        raise ValueError(f"y must be 1-D (one label per row), got shape {labels.shape}")
    if len(labels) != n_rows:
        raise ValueError(f"X and y have different numbers of rows: {n_rows} and {len(labels)}")
    if labels.dtype == bool:
        labels = labels.astype(np.int64)
    if not np.issubdtype(labels.dtype, np.number):
        raise ValueError(f"y must hold integer class labels, got dtype {labels.dtype}")
    if np.issubdtype(labels.dtype, np.floating):
        if not np.all(np.isfinite(labels)):
            raise ValueError("y contains NaN or infinite values")
        if not np.all(labels == np.round(labels)):
            raise ValueError("y must hold integer class labels, got non-integer values")
    return torch.as_tensor(labels.astype(np.int64), device=device)


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class GaussianClassConditional:
    """Generative classifier ``p(y) N(x | mu_y, Sigma_y)`` (QDA, LDA or Gaussian naive Bayes).

    Args:
        covariance_type: ``"full"`` (QDA), ``"tied"`` (LDA) or ``"diag"`` (naive Bayes).
        reg_covar: non-negative number added to the diagonal of every covariance,
            so that a pixel that never varies inside a class does not give a
            zero variance (and an infinite density).
        device: where to compute (``None``: genlab's default device).

    Fitted attributes:
        classes_ (sorted labels), priors_ (``K``), class_counts_ (``K``),
        means_ (``K x d``), covariances_ (``K x d x d`` for full, ``d x d`` for
        tied, ``K x d`` for diag), n_features_in_.
    """

    def __init__(self, covariance_type: str = "full", reg_covar: float = 1e-6,
                 device: torch.device | str | None = None) -> None:
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"unknown covariance_type {covariance_type!r}; choose one of {COVARIANCE_TYPES}")
        if isinstance(reg_covar, bool) or not isinstance(reg_covar, (int, float, np.floating)) \
                or not math.isfinite(reg_covar) or reg_covar < 0:
            raise ValueError(f"reg_covar must be a finite number >= 0, got {reg_covar!r}")
        self.covariance_type = covariance_type
        self.reg_covar = float(reg_covar)
        self.device = resolve_device(device)
        self.means_: torch.Tensor | None = None

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any) -> "GaussianClassConditional":
        """Estimate priors, means and covariances by maximum likelihood.

        Raises:
            ValueError: bad ``X`` (not 2-D, NaN/inf, empty), ``y`` of another
                length or not integer labels, fewer than 2 classes, a class with
                fewer than 2 points, or a covariance that is not positive definite
                (raise ``reg_covar``).
        """
        X = as_float_tensor(X, device=self.device)
        labels = _as_labels(y, X.shape[0], self.device)
        classes, inverse, counts = torch.unique(labels, sorted=True, return_inverse=True, return_counts=True)
        if len(classes) < 2:
            raise ValueError(f"y must contain at least 2 classes, got {len(classes)}")
        if counts.min() < 2:
            small = classes[counts < 2].tolist()
            raise ValueError(f"every class needs at least 2 points to estimate a variance; "
                             f"class(es) {small} have fewer")
        n, d = X.shape
        n_classes = len(classes)
        one_hot = torch.nn.functional.one_hot(inverse, n_classes).to(X.dtype)      # n x K
        counts_f = counts.to(X.dtype)
        means = (one_hot.T @ X) / counts_f[:, None]
        centred = X - means[inverse]
        eye = torch.eye(d, dtype=X.dtype, device=self.device)
        if self.covariance_type == "diag":
            covariances = (one_hot.T @ centred**2) / counts_f[:, None] + self.reg_covar
        elif self.covariance_type == "tied":
            covariances = centred.T @ centred / n + self.reg_covar * eye
        else:
            per_class = torch.einsum("nk,ni,nj->kij", one_hot, centred, centred)
            covariances = per_class / counts_f[:, None, None] + self.reg_covar * eye
        if self.covariance_type == "diag":
            if (covariances <= 0).any():
                raise ValueError("a feature has zero variance inside a class; set reg_covar > 0")
            factor = covariances.sqrt()
        else:
            factor, info = torch.linalg.cholesky_ex(covariances)
            if (info != 0).any():
                raise ValueError(f"a {self.covariance_type} covariance is not positive definite "
                                 f"(reg_covar={self.reg_covar}); increase reg_covar")
        self.classes_ = classes
        self.class_counts_ = counts
        self.priors_ = counts_f / n
        self.means_ = means
        self.covariances_ = covariances
        self.n_features_in_ = d
        self._factor = factor  # Cholesky factor(s), or standard deviations for diag
        return self

    # ------------------------------------------------------------------ densities
    def _check_X(self, X: Any) -> torch.Tensor:
        check_is_fitted(self, "means_")
        X = as_float_tensor(X, device=self.device)
        check_n_features(self, X)
        return X

    def _log_gaussians(self, X: torch.Tensor) -> torch.Tensor:
        """``log N(x_i | mu_k, Sigma_k)`` for every row and class, shape ``n x K``."""
        d = X.shape[1]
        diff = X[:, None, :] - self.means_[None, :, :]                        # n x K x d
        if self.covariance_type == "diag":
            z = diff / self._factor[None]
            log_det = 2 * self._factor.log().sum(-1)                           # K
        else:
            factor = self._factor if self.covariance_type == "full" else self._factor.expand(len(self.classes_), d, d)
            # Solve L z = diff for every class at once: z is the whitened difference.
            z = torch.linalg.solve_triangular(factor, diff.permute(1, 2, 0), upper=False).permute(2, 0, 1)
            log_det = 2 * torch.diagonal(factor, dim1=-2, dim2=-1).log().sum(-1)
        return -0.5 * (d * math.log(2 * math.pi) + log_det[None, :] + (z**2).sum(-1))

    def log_joint(self, X: Any) -> torch.Tensor:
        """``log p(x, y=k)`` for every row and class (nats), shape ``n x K``."""
        X = self._check_X(X)
        return self._log_gaussians(X) + self.priors_.log()[None, :]

    def score_samples(self, X: Any) -> torch.Tensor:
        """``log p(x) = log sum_k p(y=k) N(x | mu_k, Sigma_k)`` per row (nats)."""
        return torch.logsumexp(self.log_joint(X), dim=1)

    def score(self, X: Any) -> float:
        """Mean ``log p(x)`` over the rows of ``X`` (nats per example), genlab's convention.

        For classification accuracy use ``(model.predict(X) == y).double().mean()``.
        """
        return float(self.score_samples(X).mean())

    def predict_log_proba(self, X: Any) -> torch.Tensor:
        """``log p(y=k | x)`` (Bayes' rule), shape ``n x K``, columns in the order of ``classes_``."""
        joint = self.log_joint(X)
        return joint - torch.logsumexp(joint, dim=1, keepdim=True)

    def predict_proba(self, X: Any) -> torch.Tensor:
        """``p(y=k | x)``, shape ``n x K``; each row sums to 1."""
        return self.predict_log_proba(X).exp()

    def predict(self, X: Any) -> torch.Tensor:
        """The most probable class label for each row."""
        joint = self.log_joint(X)  # checks fitted first
        return self.classes_[joint.argmax(dim=1)]

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, y: Any = None, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``n`` points from the model.

        Args:
            n: number of points.
            y: ``None`` (classes drawn from the priors), one class label (all
                points from that class), or ``n`` labels.
            seed: seed of a private generator (``None``: torch's global one).

        Returns:
            ``(X, labels)``: a float64 ``n x d`` tensor and the int64 labels.
        """
        check_is_fitted(self, "means_")
        n = _check_positive_int(n, "n")
        generator = None
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
                raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
            generator = torch.Generator(device=self.device).manual_seed(int(seed))
        if y is None:
            index = torch.multinomial(self.priors_, n, replacement=True, generator=generator)
        else:
            if np.ndim(y) not in (0, 1) or (np.ndim(y) == 1 and len(y) != n):
                raise ValueError(f"y must be one class label or a sequence of n={n} labels, got shape {np.shape(y)}")
            labels = _as_labels(np.full(n, y) if np.ndim(y) == 0 else y, n, self.device)
            match = labels[:, None] == self.classes_[None, :]
            if not match.any(dim=1).all():
                unknown = sorted(set(labels[~match.any(dim=1)].tolist()))
                raise ValueError(f"unknown class label(s) {unknown}; the model knows {self.classes_.tolist()}")
            index = match.to(torch.int64).argmax(dim=1)
        d = self.n_features_in_
        noise = torch.randn(n, d, dtype=self.means_.dtype, device=self.device, generator=generator)
        if self.covariance_type == "diag":
            offset = noise * self._factor[index]
        elif self.covariance_type == "tied":
            offset = noise @ self._factor.T
        else:
            offset = torch.einsum("nij,nj->ni", self._factor[index], noise)
        return self.means_[index] + offset, self.classes_[index]
