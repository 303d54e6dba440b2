"""Synthetic tables: two synthesisers and the utility and fidelity measures used to judge them.

* :class:`GaussianCopula` (scikit-learn style): each column keeps its own empirical distribution
  (the sorted training values, read back by linear interpolation), and the dependence between columns
  is a Gaussian with the correlation of the columns' normal scores (Sklar's theorem; Patki et al. 2016).
* :class:`TabularVAE` (an ``nn.Module`` trained with :class:`genlab.train.Trainer`): a VAE with MLP encoder
  and decoder (:func:`genlab.layers.mlp`) and a Gaussian likelihood with one learned variance per column,
  for standardised columns (Xu et al. 2019 study a richer version, TVAE).
* :func:`train_synthetic_test_real`: a classifier trained on synthetic rows and tested on real ones,
  beside the same classifier trained on the real training rows (utility; Esteban et al. 2017).
* :func:`fidelity`: per-column Kolmogorov-Smirnov distances and the gap between correlation matrices.

Privacy (distance to closest record, membership inference) lives in :mod:`genlab.metrics.privacy`.
A class column can be synthesised as one more numeric column and read back with :func:`nearest_level`.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from torch import nn

from .base import GenerativeModule, check_is_fitted
from .layers import eval_mode, mlp
from .validation import (
    as_estimator_input,
    as_float_tensor,
    as_output,
    check_device,
    check_float,
    check_int,
    check_labels,
    check_random_state,
)

__all__ = ["GaussianCopula", "TabularVAE", "Utility", "Fidelity", "train_synthetic_test_real", "fidelity",
           "nearest_level"]


# ----------------------------------------------------------------------------- Gaussian copula
class GaussianCopula(BaseEstimator):
    """Empirical marginals joined by a Gaussian copula.

    Fit: for every column, its sorted training values (the marginal) and the normal scores
    ``z = Phi^-1(rank / (n + 1))`` of its rows; the copula is the correlation matrix of those scores
    (shrunk towards the identity by ``shrinkage`` so that it stays positive definite).
    Sample: ``z ~ N(0, R)``, ``u = Phi(z)``, and each column's value is its empirical quantile at ``u``
    (linear interpolation between sorted training values), so every column keeps its range and shape.

    The model has no density (the interpolated marginals are not smoothed), hence no ``score_samples``.

    Args:
        shrinkage: weight of the identity in ``R = (1 - shrinkage) C + shrinkage I`` (0..1).
        device: where the tensors live (None: genlab's default device).

    Fitted attributes: ``sorted_`` ``(n, d)``, ``correlation_`` ``(d, d)``, ``n_features_in_``, ``device_``.
    """

    def __init__(self, shrinkage: float = 1e-3, device: torch.device | str | None = None):
        self.shrinkage = shrinkage
        self.device = device

    def fit(self, X: Any, y: Any = None) -> GaussianCopula:
        """Learn the marginals and the correlation of the normal scores of the rows ``X`` ``(n, d)``."""
        shrinkage = check_float(self.shrinkage, "shrinkage", low=0.0, high=1.0)
        self.device_ = check_device(self.device)
        x = as_estimator_input(X, estimator="GaussianCopula", device=self.device_, min_rows=2)
        n, d = x.shape
        ranks = x.argsort(0).argsort(0).to(x.dtype) + 1            # ties broken by order: a continuous score
        scores = math.sqrt(2.0) * torch.special.erfinv(2 * ranks / (n + 1) - 1)
        corr = torch.corrcoef(scores.T) if d > 1 else torch.ones(1, 1, dtype=x.dtype, device=x.device)
        corr = torch.nan_to_num(corr, nan=0.0)
        eye = torch.eye(d, dtype=x.dtype, device=x.device)
        self.correlation_ = (1 - shrinkage) * corr + shrinkage * eye
        self.correlation_.fill_diagonal_(1.0)
        self.sorted_ = x.sort(0).values
        self.n_features_in_ = d
        # only the type and device of the input are kept, to return samples of the same kind
        self._output_like = torch.empty(0, device=X.device) if isinstance(X, torch.Tensor) else None
        return self

    def sample(self, n_samples: int = 1, *, random_state: Any = None) -> tuple[Any, None]:
        """``n_samples`` synthetic rows ``(n_samples, d)`` (the type ``fit`` was given) and ``None``."""
        check_is_fitted(self, "correlation_")
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        generator = check_random_state(random_state)
        d = self.n_features_in_
        eps = torch.randn(n_samples, d, generator=generator, dtype=torch.float64).to(self.sorted_)
        chol = torch.linalg.cholesky(self.correlation_ + 1e-9 * torch.eye(d, dtype=eps.dtype, device=eps.device))
        u = 0.5 * (1 + torch.erf(eps @ chol.T / math.sqrt(2.0)))
        n = len(self.sorted_)
        position = u * (n - 1)
        low = position.floor().long().clamp(0, n - 1)
        high = (low + 1).clamp(max=n - 1)
        frac = position - low
        columns = torch.arange(d, device=eps.device)
        rows = self.sorted_[low, columns] * (1 - frac) + self.sorted_[high, columns] * frac
        return as_output(rows, self._output_like), None


# ----------------------------------------------------------------------------- tabular VAE
class TabularVAE(GenerativeModule):
    """A VAE for rows of standardised numeric columns.

    ``z ~ N(0, I)``, ``x | z ~ N(decoder(z), diag(sigma^2))`` with one learned ``sigma`` per column;
    ``q(z | x) = N(encoder(x))``. :meth:`loss` is the negative ELBO per row (nats), :meth:`log_prob` the
    ELBO itself, a *lower bound* on ``log p(x)`` (documented bound). Standardise the columns first
    (e.g. :class:`sklearn.preprocessing.StandardScaler`) and map samples back with its inverse.

    Args:
        n_features: number of columns.
        latent_dim: size of ``z``.
        hidden: width of the hidden layers; ``n_layers`` of them in the encoder and in the decoder.
        min_log_sigma: floor on ``log sigma`` (keeps the likelihood bounded).
    """

    def __init__(self, n_features: int, *, latent_dim: int = 8, hidden: int = 64, n_layers: int = 2,
                 min_log_sigma: float = -4.0) -> None:
        super().__init__()
        self.n_features = check_int(n_features, "n_features", minimum=1)
        self.latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
        hidden = check_int(hidden, "hidden", minimum=1)
        n_layers = check_int(n_layers, "n_layers", minimum=1)
        self.min_log_sigma = check_float(min_log_sigma, "min_log_sigma")
        self.encoder = mlp([self.n_features] + [hidden] * n_layers + [2 * self.latent_dim], activation="relu")
        self.decoder = mlp([self.latent_dim] + [hidden] * n_layers + [self.n_features], activation="relu")
        self.log_sigma = nn.Parameter(torch.zeros(self.n_features))

    def _check_rows(self, x: Any, name: str = "x") -> torch.Tensor:
        x = as_float_tensor(x, name=name, dtype=torch.float32, device=self.device)
        if x.shape[1] != self.n_features:
            raise ValueError(f"{name} must have {self.n_features} columns, got shape {tuple(x.shape)}")
        return x

    def _sigma(self) -> torch.Tensor:
        return self.log_sigma.clamp(min=self.min_log_sigma)

    def _elbo(self, x: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.encoder(x).chunk(2, -1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        log_sigma = self._sigma()
        log_px = (-0.5 * ((x - self.decoder(z)) / log_sigma.exp()) ** 2 - log_sigma
                  - 0.5 * math.log(2 * math.pi)).sum(-1)
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(-1)
        return log_px - kl

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._elbo(x)

    def loss(self, batch: Any) -> torch.Tensor:
        """Negative ELBO per row (nats), averaged over the batch."""
        x = self._check_rows(batch[0] if isinstance(batch, (tuple, list)) else batch, "batch")
        return -self(x).mean()

    @torch.no_grad()
    def log_prob(self, x: Any) -> torch.Tensor:
        """The ELBO of each row (nats), a lower bound on ``log p(x)`` (one draw of ``z``)."""
        self.check_fitted("log_prob")
        x = self._check_rows(x)
        with eval_mode(self):
            return self(x)

    @torch.no_grad()
    def sample(self, n_samples: int, *, random_state: int | torch.Generator | None = None) -> torch.Tensor:
        """``n_samples`` rows ``(n_samples, n_features)`` drawn from ``p(z) p(x | z)`` (standardised units)."""
        self.check_fitted("sample")
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        generator = check_random_state(random_state)
        z = torch.randn(n_samples, self.latent_dim, generator=generator).to(self.device)
        noise = torch.randn(n_samples, self.n_features, generator=generator).to(self.device)
        with eval_mode(self):
            return self.decoder(z) + noise * self._sigma().exp()


# ----------------------------------------------------------------------------- measures
class Utility(NamedTuple):
    """Accuracy on real test rows of a classifier trained on real rows and of one trained on synthetic rows."""

    real: float
    synthetic: float
    gap: float  # real - synthetic


class Fidelity(NamedTuple):
    """How closely synthetic columns and their correlations follow the real ones (0 = identical)."""

    ks_mean: float           # mean over columns of the two-sample Kolmogorov-Smirnov statistic
    ks_max: float            # the worst column
    correlation_gap: float   # mean |corr_real - corr_synthetic| over the off-diagonal pairs
    ks: np.ndarray           # per column


def _rows(value: Any, name: str, n_features: int | None = None) -> np.ndarray:
    tensor = as_estimator_input(value, name=name, n_features=n_features, device="cpu")
    return tensor.numpy()


def train_synthetic_test_real(classifier: Any, X_train: Any, y_train: Any, X_synthetic: Any, y_synthetic: Any,
                              X_test: Any, y_test: Any) -> Utility:
    """Train-on-synthetic, test-on-real (TSTR) beside train-on-real, test-on-real (TRTR).

    ``classifier`` is an unfitted scikit-learn classifier; it is cloned twice, fitted on the real training
    rows and on the synthetic rows, and both copies are scored (accuracy) on the real test rows.
    """
    if not (hasattr(classifier, "fit") and hasattr(classifier, "predict")):
        raise TypeError(f"classifier must be a scikit-learn classifier (fit and predict), got "
                        f"{type(classifier).__name__}")
    x_train = _rows(X_train, "X_train")
    d = x_train.shape[1]
    x_syn, x_test = _rows(X_synthetic, "X_synthetic", d), _rows(X_test, "X_test", d)
    labels = [check_labels(y, len(x), name=name).numpy()
              for y, x, name in ((y_train, x_train, "y_train"), (y_synthetic, x_syn, "y_synthetic"),
                                 (y_test, x_test, "y_test"))]
    if len(np.unique(labels[1])) < 2:
        raise ValueError("y_synthetic has a single class: the synthesiser produced no rows of the other classes")
    scores = [float((clone(classifier).fit(x, y).predict(x_test) == labels[2]).mean())
              for x, y in ((x_train, labels[0]), (x_syn, labels[1]))]
    return Utility(real=scores[0], synthetic=scores[1], gap=scores[0] - scores[1])


def fidelity(real: Any, synthetic: Any) -> Fidelity:
    """Per-column two-sample KS statistics and the mean absolute gap between the correlation matrices."""
    from scipy.stats import ks_2samp

    x_real = _rows(real, "real")
    x_syn = _rows(synthetic, "synthetic", x_real.shape[1])
    if len(x_real) < 2 or len(x_syn) < 2:
        raise ValueError("real and synthetic need at least 2 rows each")
    ks = np.array([ks_2samp(x_real[:, j], x_syn[:, j], method="asymp").statistic for j in range(x_real.shape[1])])
    d = x_real.shape[1]
    gap = 0.0
    if d > 1:
        c_real, c_syn = (np.nan_to_num(np.corrcoef(x, rowvar=False)) for x in (x_real, x_syn))
        gap = float(np.abs(c_real - c_syn)[~np.eye(d, dtype=bool)].mean())
    return Fidelity(ks_mean=float(ks.mean()), ks_max=float(ks.max()), correlation_gap=gap, ks=ks)


def nearest_level(values: Any, levels: Any) -> Any:
    """Each value replaced by the index of the nearest of ``levels`` (e.g. a synthesised class column)."""
    v = as_float_tensor(values, name="values", ndim=1)
    lv = as_float_tensor(levels, name="levels", ndim=1)
    return as_output((v[:, None] - lv[None]).abs().argmin(1), values)

