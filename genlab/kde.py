"""Kernel density estimation (Parzen windows) in torch, exact and in chunks.

:class:`KernelDensity` follows :class:`sklearn.neighbors.KernelDensity`: the same kernels
(``"gaussian"``, ``"tophat"``, ``"epanechnikov"``), the same normalisation (log density in nats,
each kernel integrating to one in ``d`` dimensions) and the same ``"scott"`` / ``"silverman"``
bandwidth rules. Instead of a tree with error tolerances it computes the exact sum: one
query x train block of squared distances at a time, reduced with log-sum-exp, so memory stays
bounded however many points are queried and the work maps onto matrix products (fast on a GPU).

:func:`select_bandwidth` picks the bandwidth by cross-validated held-out log-likelihood.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin

from .base import NotFittedError
from .numerics import DEFAULT_BLOCK_ELEMENTS, LOG_2PI, log_unit_ball_volume, squared_distance_blocks
from .validation import (
    as_estimator_input,
    as_float_tensor,
    as_output,
    check_device,
    check_float,
    check_float_dtype,
    check_int,
    check_option,
    check_optional_int,
    check_random_state,
)

__all__ = ["KERNELS", "BANDWIDTH_RULES", "KernelDensity", "bandwidth_rule", "log_kernel_norm", "select_bandwidth",
           "squared_distance_blocks", "DEFAULT_BLOCK_ELEMENTS"]

KERNELS = ("gaussian", "tophat", "epanechnikov")
BANDWIDTH_RULES = ("scott", "silverman")


def _check_bandwidth(value: Any, name: str = "bandwidth") -> float | str:
    """A rule name from :data:`BANDWIDTH_RULES` or a finite number > 0."""
    if isinstance(value, str):
        return check_option(value, name, BANDWIDTH_RULES)
    return check_float(value, name, low=0.0, low_inclusive=False)


# ----------------------------------------------------------------------------- kernel maths
def bandwidth_rule(rule: str, n_samples: int, n_features: int) -> float:
    """scikit-learn's rule-of-thumb bandwidths (they assume roughly unit-variance features).

    * ``"scott"``: ``n ** (-1 / (d + 4))``
    * ``"silverman"``: ``(n * (d + 2) / 4) ** (-1 / (d + 4))``

    Standardise the data first (or multiply by its standard deviation) when its scale is not ~1.

    Raises:
        ValueError: for an unknown rule or non-positive sizes.
    """
    check_option(rule, "rule", BANDWIDTH_RULES)
    n = check_int(n_samples, "n_samples", minimum=1)
    d = check_int(n_features, "n_features", minimum=1)
    if rule == "scott":
        return n ** (-1.0 / (d + 4))
    return (n * (d + 2) / 4.0) ** (-1.0 / (d + 4))


def log_kernel_norm(bandwidth: float, n_features: int, kernel: str) -> float:
    """Log of the constant that makes the kernel integrate to one in ``n_features`` dimensions.

    Same constants as scikit-learn: the unnormalised kernels are ``exp(-r^2 / 2h^2)``,
    ``1[r < h]`` and ``(1 - r^2/h^2) 1[r < h]``.
    """
    bandwidth = check_float(bandwidth, "bandwidth", low=0.0, low_inclusive=False)
    d = check_int(n_features, "n_features", minimum=1)
    kernel = check_option(kernel, "kernel", KERNELS)
    log_unit_ball = log_unit_ball_volume(d)
    if kernel == "gaussian":
        factor = 0.5 * d * LOG_2PI
    elif kernel == "tophat":
        factor = log_unit_ball
    else:
        factor = log_unit_ball + math.log(2.0 / (d + 2.0))
    return -factor - d * math.log(bandwidth)


def _log_kernel(sq_dists: torch.Tensor, bandwidth: float, kernel: str) -> torch.Tensor:
    """Unnormalised log kernel of squared distances (``-inf`` outside a compact support)."""
    scaled = sq_dists / (bandwidth * bandwidth)
    if kernel == "gaussian":
        return -0.5 * scaled
    inside = scaled < 1.0
    if kernel == "tophat":
        return torch.where(inside, torch.zeros_like(scaled), torch.full_like(scaled, -math.inf))
    # epanechnikov; log1p is accurate near the centre, the clamp keeps log1p's argument > -1
    return torch.where(inside, torch.log1p(-scaled.clamp(max=1.0 - 1e-16)), torch.full_like(scaled, -math.inf))


def _kde_log_density(queries: torch.Tensor, train: torch.Tensor, log_weights: torch.Tensor,
                     bandwidths: Sequence[float], kernel: str, chunk_size: int | None) -> torch.Tensor:
    """Log density of ``queries`` for each bandwidth: shape ``(len(bandwidths), n_queries)``.

    ``log_weights`` are normalised (they log-sum-exp to 0). The distances are computed once per
    block and shared by every bandwidth, which is what makes cross-validation cheap.
    """
    d = train.shape[1]
    out = torch.empty(len(bandwidths), queries.shape[0], dtype=queries.dtype, device=queries.device)
    norms = [log_kernel_norm(h, d, kernel) for h in bandwidths]
    weights = torch.exp(log_weights)
    # Gaussian kernel: shift each row by its smallest squared distance (to a point of positive
    # weight) once, then every bandwidth costs one exp and one matrix-vector product:
    # log sum_i w_i exp(-D2_i / 2h^2) = -m / 2h^2 + log sum_i w_i exp(-(D2_i - m) / 2h^2).
    # The largest term is exp(0) * w_i, so this is as exact as a log-sum-exp.
    excluded = torch.where(weights > 0, 0.0, math.inf).to(queries.dtype)
    for rows, sq in squared_distance_blocks(queries, train, chunk_size):
        if kernel == "gaussian":
            nearest = (sq + excluded[None, :]).min(1, keepdim=True).values
            shifted = sq.sub_(nearest)
            buffer = torch.empty_like(shifted)
            for index, h in enumerate(bandwidths):
                scale = -0.5 / (h * h)
                torch.mul(shifted, scale, out=buffer).exp_()
                out[index, rows] = torch.log(buffer @ weights) + scale * nearest[:, 0] + norms[index]
        else:
            for index, h in enumerate(bandwidths):
                out[index, rows] = torch.logsumexp(_log_kernel(sq, h, kernel) + log_weights[None, :], 1) + norms[index]
    return out


def _unit_ball_radius_samples(kernel: str, n: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """Radii (as fractions of the bandwidth) of ``n`` draws from a compact kernel in ``d`` dimensions."""
    if kernel == "tophat":
        # uniform in the ball: r^d ~ U(0, 1)
        return torch.rand(n, generator=generator, dtype=torch.float64) ** (1.0 / d)
    # Epanechnikov: the density of r is prop. to r^(d-1) (1 - r^2), so s = r^2 ~ Beta(d/2, 2).
    # Beta via two Gamma draws: torch's Gamma sampler accepts a generator only through
    # torch._standard_gamma, so draw from NumPy seeded by the torch generator instead.
    seed = int(torch.randint(0, 2**63 - 1, (1,), generator=generator).item())
    rng = np.random.default_rng(seed)
    return torch.as_tensor(np.sqrt(rng.beta(0.5 * d, 2.0, size=n)), dtype=torch.float64)


# ----------------------------------------------------------------------------- the estimator
class KernelDensity(DensityMixin, BaseEstimator):
    """Kernel density estimate ``p(x) = sum_i w_i K_h(x - x_i)`` :cite:`parzen1962estimation`.

    Args:
        bandwidth: a number ``h > 0``, or ``"scott"`` / ``"silverman"`` (scikit-learn's rules,
            which assume features of roughly unit variance; see :func:`bandwidth_rule`).
        kernel: ``"gaussian"``, ``"tophat"`` or ``"epanechnikov"``.
        chunk_size: query rows per block of distances (``None``: blocks of about 4 million
            entries). Bounds memory; the result does not depend on it.
        device: where to compute (``None``: genlab's default device).
        dtype: floating dtype of the computation (float64, the default, gives parity with scikit-learn).

    The arguments are stored unchanged and checked at :meth:`fit` (a scikit-learn estimator:
    ``get_params``, ``clone`` and ``GridSearchCV`` work; the grid search's default scorer is
    :meth:`score`, the held-out mean log-likelihood).

    Differences from scikit-learn: the sum is exact (no tree, no ``atol``/``rtol``) and
    :meth:`score` is the *mean* log-likelihood (scikit-learn returns the sum).

    Fitted attributes: ``X_`` (train data), ``log_weights_`` (normalised log weights),
    ``bandwidth_`` (the number used), ``n_features_in_``, ``device_``, ``dtype_``.
    """

    def __init__(self, bandwidth: float | str = 1.0, kernel: str = "gaussian", chunk_size: int | None = None,
                 device: torch.device | str | None = None, dtype: Any = np.float64) -> None:
        self.bandwidth = bandwidth
        self.kernel = kernel
        self.chunk_size = chunk_size
        self.device = device
        self.dtype = dtype

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> KernelDensity:
        """Store the training points (and optional non-negative weights) and fix the bandwidth.

        ``y`` is ignored (present for scikit-learn pipelines).

        Raises:
            ValueError / TypeError: bad parameters, bad ``X`` (shape, NaN/inf, empty) or bad weights
                (length, sign, all zero).
        """
        bandwidth = _check_bandwidth(self.bandwidth)
        kernel = check_option(self.kernel, "kernel", KERNELS)
        check_optional_int(self.chunk_size, "chunk_size", minimum=1)
        dtype = check_float_dtype(self.dtype)
        device = check_device(self.device)
        X_t = as_estimator_input(X, dtype=dtype, device=device)
        n, d = X_t.shape
        if sample_weight is None:
            log_weights = torch.full((n,), -math.log(n), dtype=dtype, device=device)
        else:
            if not isinstance(sample_weight, torch.Tensor):   # a private copy: pandas / memmap data may be read-only
                try:
                    sample_weight = np.array(sample_weight)
                except (TypeError, ValueError) as err:
                    raise ValueError(f"sample_weight could not be read as an array: {err}") from err
            weights = as_float_tensor(sample_weight, name="sample_weight", ndim=1, dtype=dtype, device=device)
            if weights.shape[0] != n:
                raise ValueError(f"sample_weight has {weights.shape[0]} entries but X has {n} rows")
            if (weights < 0).any():
                raise ValueError("sample_weight must be non-negative")
            total = weights.sum()
            if total <= 0:
                raise ValueError("sample_weight: all weights are zero; at least one weight must be positive")
            log_weights = torch.log(weights) - torch.log(total)
        self.bandwidth_ = bandwidth_rule(bandwidth, n, d) if isinstance(bandwidth, str) else bandwidth
        self.kernel_ = kernel
        self.device_, self.dtype_ = device, dtype
        self.X_, self.log_weights_, self.n_features_in_ = X_t, log_weights, d
        self._torch_io = isinstance(X, torch.Tensor)
        return self

    def _check_query(self, X: Any) -> torch.Tensor:
        if not hasattr(self, "X_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X) first")
        return as_estimator_input(X, n_features=self.n_features_in_, estimator=type(self).__name__,
                                  dtype=self.dtype_, device=self.device_)

    def _log_density(self, X: Any) -> torch.Tensor:
        return _kde_log_density(self._check_query(X), self.X_, self.log_weights_, [self.bandwidth_], self.kernel_,
                                self.chunk_size)[0]

    def score_samples(self, X: Any) -> np.ndarray | torch.Tensor:
        """Log density (nats) of each row of ``X``; ``-inf`` outside a compact kernel's support."""
        return as_output(self._log_density(X), X)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log density (nats per row) of ``X``."""
        return float(self._log_density(X).mean())

    def sample(self, n_samples: int = 1, *, random_state: int | torch.Generator | None = None,
               return_indices: bool = False) -> tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor | None]:
        """Draw ``n_samples`` points: pick a training point by weight, add kernel-shaped noise.

        Returns ``(X, None)`` (a KDE has no labels), or ``(X, indices)`` with ``return_indices=True``:
        which training point each sample was built on (a KDE sample is a perturbed copy of it).
        NumPy arrays if the model was fitted on NumPy data, tensors on ``device_`` otherwise.
        """
        if not hasattr(self, "X_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X) first")
        n = check_int(n_samples, "n_samples", minimum=1)
        generator = check_random_state(random_state)
        if not isinstance(return_indices, (bool, np.bool_)):
            raise TypeError(f"return_indices must be True or False, got {return_indices!r}")
        d = self.n_features_in_
        probs = torch.exp(self.log_weights_).cpu()
        index = torch.multinomial(probs, n, replacement=True, generator=generator)
        if self.kernel_ == "gaussian":
            noise = torch.randn(n, d, generator=generator, dtype=torch.float64) * self.bandwidth_
        else:
            direction = torch.randn(n, d, generator=generator, dtype=torch.float64)
            direction = direction / direction.norm(dim=1, keepdim=True)
            radius = _unit_ball_radius_samples(self.kernel_, n, d, generator)
            noise = direction * radius[:, None] * self.bandwidth_
        index = index.to(self.device_)
        samples = self.X_[index] + noise.to(device=self.device_, dtype=self.dtype_)
        like = self.X_ if self._torch_io else None
        return as_output((samples, index if return_indices else None), like)


# ----------------------------------------------------------------------------- bandwidth selection
def select_bandwidth(X: Any, bandwidths: Sequence[float], cv: int = 5, kernel: str = "gaussian",
                     random_state: int | torch.Generator | None = 0, chunk_size: int | None = None,
                     device: torch.device | str | None = None, dtype: Any = np.float64,
                     ) -> tuple[float, dict[str, np.ndarray]]:
    """Choose the bandwidth with the best ``cv``-fold held-out log-likelihood.

    The rows are shuffled with ``random_state`` (int, ``torch.Generator`` or None) and split into ``cv``
    folds; for each fold a KDE on the
    other folds scores the held-out rows. Distances are computed once per fold and shared by all
    candidate bandwidths.

    Returns:
        ``(best_bandwidth, table)`` where ``table`` has NumPy arrays ``"bandwidth"``,
        ``"mean_loglik"`` (held-out log-likelihood per row, averaged over all rows) and
        ``"fold_loglik"`` (shape ``(cv, n_bandwidths)``, the per-fold means). A compact kernel
        can give ``-inf`` (a held-out point outside every kernel's support).

    Raises:
        ValueError: bad ``X``, an empty or invalid bandwidth list, ``cv`` < 2 or > n rows,
            an unknown kernel.
    """
    device = check_device(device)
    dtype = check_float_dtype(dtype)
    kernel = check_option(kernel, "kernel", KERNELS)
    cv = check_int(cv, "cv", minimum=2)
    check_optional_int(chunk_size, "chunk_size", minimum=1)
    generator = check_random_state(random_state)
    X = as_estimator_input(X, name="X", dtype=dtype, device=device, min_rows=2)
    if cv > X.shape[0]:
        raise ValueError(f"cv={cv} folds need at least {cv} rows, X has {X.shape[0]}")
    grid = [check_float(h, f"bandwidths[{i}]", low=0.0, low_inclusive=False)
            for i, h in enumerate(_bandwidth_list(bandwidths))]
    order = torch.randperm(X.shape[0], generator=generator).to(device)
    folds = torch.tensor_split(order, cv)
    fold_loglik = np.empty((cv, len(grid)))
    total = np.zeros(len(grid))
    for k, held_out in enumerate(folds):
        keep = torch.cat([f for j, f in enumerate(folds) if j != k])
        log_w = torch.full((keep.shape[0],), -math.log(keep.shape[0]), dtype=dtype, device=device)
        logp = _kde_log_density(X[held_out], X[keep], log_w, grid, kernel, chunk_size)
        fold_loglik[k] = logp.mean(1).cpu().numpy()
        total += logp.sum(1).cpu().numpy()
    mean_loglik = total / X.shape[0]
    best = int(np.argmax(mean_loglik))
    table = {"bandwidth": np.asarray(grid), "mean_loglik": mean_loglik, "fold_loglik": fold_loglik}
    return grid[best], table


def _bandwidth_list(bandwidths: Any) -> list:
    """The entries of a non-empty 1-D sequence of candidate bandwidths (validated one by one by the caller)."""
    if isinstance(bandwidths, (str, bytes)) or not hasattr(bandwidths, "__len__") or np.ndim(bandwidths) != 1 \
            or len(bandwidths) == 0:
        raise ValueError(f"bandwidths must be a non-empty 1-D sequence of positive numbers, got {bandwidths!r}")
    return list(bandwidths.tolist() if hasattr(bandwidths, "tolist") else bandwidths)
