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

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from .base import NotFittedError
from .numerics import LOG_2PI
from .validation import (
    as_estimator_input,
    as_output,
    check_device,
    check_float,
    check_int,
    check_option,
    check_random_state,
)

#: Covariance structures of the class-conditional Gaussians.
COVARIANCE_TYPES = ("full", "tied", "diag")


def _as_labels(y: Any, n_rows: int) -> np.ndarray:
    """Class labels as a 1-D NumPy array (any sortable values: integers, strings), one per row of ``X``."""
    if y is None:
        raise ValueError("GaussianClassConditional requires y to be passed, but the target y is None")
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    if isinstance(y, (str, bytes)):
        raise TypeError(f"y must be a sequence of class labels, got a string {y!r}")
    try:
        labels = np.asarray(y)
    except Exception as err:  # ragged input
        raise ValueError(f"y could not be read as an array: {err}") from err
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = column_or_1d(labels, warn=True)      # scikit-learn's convention: warn and ravel
    if labels.ndim != 1:
        raise ValueError(f"y must be 1-D (one label per row), got shape {labels.shape}")
    if len(labels) != n_rows:
        raise ValueError(f"X and y have different numbers of rows: {n_rows} and {len(labels)}")
    if np.issubdtype(labels.dtype, np.floating) and not np.isfinite(labels).all():
        raise ValueError("Input y contains NaN or infinity; y must hold class labels")
    try:
        check_classification_targets(labels)
    except ValueError as err:
        raise ValueError(f"y must hold class labels: {err}") from err
    return labels


class GaussianClassConditional(ClassifierMixin, BaseEstimator):
    """Generative classifier ``p(y) N(x | mu_y, Sigma_y)`` (QDA, LDA or Gaussian naive Bayes).

    Args:
        covariance_type: ``"full"`` (QDA), ``"tied"`` (LDA) or ``"diag"`` (naive Bayes).
        reg_covar: non-negative number added to the diagonal of every covariance,
            so that a pixel that never varies inside a class does not give a
            zero variance (and an infinite density).
        device: where to compute (``None``: genlab's default device).

    The arguments are stored unchanged and checked at :meth:`fit` (a scikit-learn classifier:
    ``clone``, pipelines and grid searches work). Unlike ``ClassifierMixin``, :meth:`score` is the
    mean log-likelihood ``log p(x)`` (genlab's contract); for accuracy use
    ``sklearn.metrics.accuracy_score(y, model.predict(X))`` or ``GridSearchCV(scoring="accuracy")``.

    Fitted attributes:
        classes_ (sorted labels, a NumPy array), priors_ (``K``), class_counts_ (``K``),
        means_ (``K x d``), covariances_ (``K x d x d`` for full, ``d x d`` for
        tied, ``K x d`` for diag), n_features_in_, device_ (tensors on ``device_``).
    """

    def __init__(self, covariance_type: str = "full", reg_covar: float = 1e-6,
                 device: torch.device | str | None = None) -> None:
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.device = device

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any) -> GaussianClassConditional:
        """Estimate priors, means and covariances by maximum likelihood.

        Raises:
            ValueError / TypeError: bad parameters, bad ``X`` (not 2-D, NaN/inf, empty, huge),
                ``y`` missing, of another length or not class labels, fewer than 2 classes, a class
                with fewer than 2 points, or a covariance that is not positive definite (raise ``reg_covar``).
        """
        check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        reg_covar = check_float(self.reg_covar, "reg_covar", low=0.0)
        device = check_device(self.device)
        torch_io = isinstance(X, torch.Tensor)
        X_t = as_estimator_input(X, device=device)
        labels = _as_labels(y, X_t.shape[0])
        classes, inverse_np, counts_np = np.unique(labels, return_inverse=True, return_counts=True)
        if len(classes) < 2:
            raise ValueError(f"y has {len(classes)} class; a classifier needs at least 2 classes")
        if counts_np.min() < 2:
            small = classes[counts_np < 2].tolist()
            raise ValueError(f"every class needs at least 2 points to estimate a variance; "
                             f"class(es) {small} in y have fewer")
        inverse = torch.as_tensor(inverse_np.ravel(), device=device)
        counts = torch.as_tensor(counts_np, device=device)
        X = X_t
        n, d = X.shape
        n_classes = len(classes)
        one_hot = torch.nn.functional.one_hot(inverse, n_classes).to(X.dtype)      # n x K
        counts_f = counts.to(X.dtype)
        means = (one_hot.T @ X) / counts_f[:, None]
        centred = X - means[inverse]
        eye = torch.eye(d, dtype=X.dtype, device=device)
        if self.covariance_type == "diag":
            covariances = (one_hot.T @ centred**2) / counts_f[:, None] + reg_covar
        elif self.covariance_type == "tied":
            covariances = centred.T @ centred / n + reg_covar * eye
        else:
            per_class = torch.einsum("nk,ni,nj->kij", one_hot, centred, centred)
            covariances = per_class / counts_f[:, None, None] + reg_covar * eye
        if not torch.isfinite(covariances).all():
            raise ValueError("X is too large in magnitude: its covariances overflow float64; rescale X")
        if self.covariance_type == "diag":
            if (covariances <= 0).any():
                raise ValueError("a feature has zero variance inside a class; set reg_covar > 0")
            factor = covariances.sqrt()
        else:
            factor, info = torch.linalg.cholesky_ex(covariances)
            if (info != 0).any():
                raise ValueError(f"a {self.covariance_type} covariance is not positive definite "
                                 f"(reg_covar={reg_covar}); increase reg_covar")
        self.classes_ = classes
        self.class_counts_ = counts
        self.priors_ = counts_f / n
        self.means_ = means
        self.covariances_ = covariances
        self.n_features_in_ = d
        self.device_ = device
        self._factor = factor  # Cholesky factor(s), or standard deviations for diag
        self._torch_io = torch_io
        return self

    # ------------------------------------------------------------------ densities
    def _check_X(self, X: Any) -> torch.Tensor:
        if not hasattr(self, "means_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X, y) first")
        return as_estimator_input(X, n_features=self.n_features_in_, estimator=type(self).__name__,
                                  device=self.device_)

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
        return -0.5 * (d * LOG_2PI + log_det[None, :] + (z**2).sum(-1))

    def _log_joint(self, X: Any) -> torch.Tensor:
        joint = self._log_gaussians(self._check_X(X)) + self.priors_.log()[None, :]
        if not torch.isfinite(joint).all():
            raise ValueError("X has rows so far from every class that their log-density overflows; rescale X")
        return joint

    def log_joint(self, X: Any) -> np.ndarray | torch.Tensor:
        """``log p(x, y=k)`` for every row and class (nats), shape ``n x K``."""
        return as_output(self._log_joint(X), X)

    def score_samples(self, X: Any) -> np.ndarray | torch.Tensor:
        """``log p(x) = log sum_k p(y=k) N(x | mu_k, Sigma_k)`` per row (nats)."""
        return as_output(torch.logsumexp(self._log_joint(X), dim=1), X)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean ``log p(x)`` over the rows of ``X`` (nats per example), genlab's convention; ``y`` is ignored.

        For classification accuracy use ``sklearn.metrics.accuracy_score(y, model.predict(X))``.
        """
        return float(torch.logsumexp(self._log_joint(X), dim=1).mean())

    def predict_log_proba(self, X: Any) -> np.ndarray | torch.Tensor:
        """``log p(y=k | x)`` (Bayes' rule), shape ``n x K``, columns in the order of ``classes_``."""
        joint = self._log_joint(X)
        return as_output(joint - torch.logsumexp(joint, dim=1, keepdim=True), X)

    def predict_proba(self, X: Any) -> np.ndarray | torch.Tensor:
        """``p(y=k | x)``, shape ``n x K``; each row sums to 1."""
        joint = self._log_joint(X)
        return as_output((joint - torch.logsumexp(joint, dim=1, keepdim=True)).exp(), X)

    def _labels_out(self, index: torch.Tensor, like: Any) -> np.ndarray | torch.Tensor:
        """``classes_[index]``: a tensor on the input's device for torch input and numeric labels."""
        labels = self.classes_[index.cpu().numpy()]
        if isinstance(like, torch.Tensor) and np.issubdtype(labels.dtype, np.number):
            return torch.as_tensor(labels, device=like.device)
        return labels

    def predict(self, X: Any) -> np.ndarray | torch.Tensor:
        """The most probable class label for each row."""
        return self._labels_out(self._log_joint(X).argmax(dim=1), X)

    # ------------------------------------------------------------------ sampling
    def sample(self, n_samples: int = 1, *, y: Any = None, random_state: int | torch.Generator | None = None
               ) -> tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]:
        """Draw ``n_samples`` points from the model.

        Args:
            n_samples: number of points.
            y: ``None`` (classes drawn from the priors), one class label (all
                points from that class), or ``n_samples`` labels.
            random_state: an int (the same draws every call), a ``torch.Generator`` or None (fresh entropy).

        Returns:
            ``(X, labels)``: ``n_samples x d`` float64 points and their class labels; NumPy arrays if
            the model was fitted on NumPy data, tensors on ``device_`` if on a tensor.
        """
        if not hasattr(self, "means_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X, y) first")
        n = check_int(n_samples, "n_samples", minimum=1)
        generator = check_random_state(random_state)
        if y is None:
            index = torch.multinomial(self.priors_.cpu(), n, replacement=True, generator=generator)
        else:
            if np.ndim(y) not in (0, 1) or (np.ndim(y) == 1 and len(y) != n):
                raise ValueError(f"y must be one class label or a sequence of n_samples={n} labels, "
                                 f"got shape {np.shape(y)}")
            wanted = np.full(n, y.item() if hasattr(y, "item") and np.ndim(y) == 0 else y) if np.ndim(y) == 0 \
                else (y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y))
            match = wanted[:, None] == self.classes_[None, :]
            if not match.any(axis=1).all():
                unknown = sorted(set(wanted[~match.any(axis=1)].tolist()))
                raise ValueError(f"y has unknown class label(s) {unknown}; the model knows {self.classes_.tolist()}")
            index = torch.as_tensor(match.argmax(axis=1))
        d = self.n_features_in_
        noise = torch.randn(n, d, dtype=self.means_.dtype, generator=generator).to(self.device_)
        index = index.to(self.device_)
        if self.covariance_type == "diag":
            offset = noise * self._factor[index]
        elif self.covariance_type == "tied":
            offset = noise @ self._factor.T
        else:
            offset = torch.einsum("nij,nj->ni", self._factor[index], noise)
        like = self.means_ if self._torch_io else None
        return as_output(self.means_[index] + offset, like), self._labels_out(index, like)
