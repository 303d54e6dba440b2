"""Shared numerics: constants and log-densities that several model families use.

Keeping them here means the Gaussian log-density is written (and tested) once.
"""
from __future__ import annotations

import math

import torch

from .validation import check_int, check_optional_int

#: log(2 pi), the constant of every Gaussian log-density.
LOG_2PI = math.log(2 * math.pi)


def _check_tensors(**tensors: torch.Tensor) -> None:
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")


def diag_gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag(exp(logvar))), summed over the last dimension (broadcasts)."""
    _check_tensors(x=x, mean=mean, logvar=logvar)
    try:
        torch.broadcast_shapes(x.shape, mean.shape, logvar.shape)
    except RuntimeError:
        raise ValueError(f"x, mean and logvar must broadcast, got shapes {tuple(x.shape)}, {tuple(mean.shape)} "
                         f"and {tuple(logvar.shape)}") from None
    return -0.5 * (LOG_2PI + logvar + (x - mean).pow(2) * torch.exp(-logvar)).sum(-1)


def standard_normal_log_prob(x: torch.Tensor) -> torch.Tensor:
    """log N(x; 0, I), summed over the last dimension."""
    _check_tensors(x=x)
    return -0.5 * (LOG_2PI + x.pow(2)).sum(-1)


#: Default budget for one query x train block of squared distances: 2**22 float64 entries = 32 MiB.
DEFAULT_BLOCK_ELEMENTS = 2**22


def squared_distance_blocks(queries: torch.Tensor, train: torch.Tensor, chunk_size: int | None = None):
    """Yield ``(rows, D2)``: squared Euclidean distances from a block of query rows to every train row.

    ``D2 = |q|^2 + |t|^2 - 2 q t^T`` (one matrix product per block, clamped at 0 against rounding).
    ``chunk_size`` is the number of query rows per block; ``None`` keeps each block near
    ``DEFAULT_BLOCK_ELEMENTS`` entries. Shared by the kernel density and k-NN estimators.
    """
    check_optional_int(chunk_size, "chunk_size", minimum=1)
    if not isinstance(queries, torch.Tensor) or not isinstance(train, torch.Tensor) or queries.ndim != 2 \
            or train.ndim != 2 or queries.shape[1] != train.shape[1]:
        raise ValueError(f"queries and train must be 2-D tensors with the same number of columns, got "
                         f"{tuple(getattr(queries, 'shape', ()))} and {tuple(getattr(train, 'shape', ()))}")
    n_queries, n_train = queries.shape[0], train.shape[0]
    rows = chunk_size or max(1, DEFAULT_BLOCK_ELEMENTS // max(n_train, 1))
    train_sq = (train * train).sum(1)
    for start in range(0, n_queries, rows):
        block = queries[start:start + rows]
        sq = (block * block).sum(1, keepdim=True) + train_sq[None, :] - 2.0 * block @ train.T
        yield slice(start, start + block.shape[0]), sq.clamp_(min=0.0)


def log_unit_ball_volume(n_features: int) -> float:
    """log of the volume of the unit ball in ``n_features`` dimensions."""
    n_features = check_int(n_features, "n_features", minimum=1)
    return 0.5 * n_features * math.log(math.pi) - math.lgamma(0.5 * n_features + 1)


def cholesky_gaussian_log_prob(x: torch.Tensor, means: torch.Tensor, chol: torch.Tensor) -> torch.Tensor:
    """log N(x_n; means_k, L_k L_k^T) for every row n and component k, shape ``(n, K)``.

    ``x``: ``(n, D)``; ``means``: ``(K, D)``; ``chol``: ``(K, D, D)`` lower Cholesky factors of the
    covariances. One batched triangular solve for all components.
    """
    _check_tensors(x=x, means=means, chol=chol)
    if x.ndim != 2 or means.ndim != 2 or means.shape[1] != x.shape[1] \
            or tuple(chol.shape) != (means.shape[0], x.shape[1], x.shape[1]):
        raise ValueError(f"x (n, D), means (K, D) and chol (K, D, D) disagree: shapes {tuple(x.shape)}, "
                         f"{tuple(means.shape)}, {tuple(chol.shape)}")
    diff = (x[None] - means[:, None]).transpose(1, 2)                       # (K, D, n)
    solved = torch.linalg.solve_triangular(chol, diff, upper=False)
    log_det = 2 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(-1)
    return -0.5 * (x.shape[1] * LOG_2PI + log_det[None] + (solved ** 2).sum(1).T)


def diag_gaussian_log_prob_table(x: torch.Tensor, means: torch.Tensor, variances: torch.Tensor) -> torch.Tensor:
    """log N(x_n; means_k, diag(variances_k)) for every row n and component k, shape ``(n, K)``.

    The squared Mahalanobis distance is expanded into three matrix products (as hmmlearn and
    scikit-learn compute it), so no ``(n, K, D)`` temporary is built.
    """
    _check_tensors(x=x, means=means, variances=variances)
    if x.ndim != 2 or means.ndim != 2 or means.shape[1] != x.shape[1] or variances.shape != means.shape:
        raise ValueError(f"x (n, D), means (K, D) and variances (K, D) disagree: shapes {tuple(x.shape)}, "
                         f"{tuple(means.shape)}, {tuple(variances.shape)}")
    precision = 1.0 / variances
    maha = (x * x) @ precision.T - 2.0 * x @ (means * precision).T + (means * means * precision).sum(1)
    return -0.5 * (x.shape[1] * LOG_2PI + torch.log(variances).sum(1) + maha)
