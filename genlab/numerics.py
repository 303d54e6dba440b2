"""Shared numerics: constants and log-densities that several model families use.

Keeping them here means the Gaussian log-density is written (and tested) once.
"""
from __future__ import annotations

import math

import torch

#: log(2 pi), the constant of every Gaussian log-density.
LOG_2PI = math.log(2 * math.pi)


def diag_gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag(exp(logvar))), summed over the last dimension (broadcasts)."""
    return -0.5 * (LOG_2PI + logvar + (x - mean).pow(2) * torch.exp(-logvar)).sum(-1)


def standard_normal_log_prob(x: torch.Tensor) -> torch.Tensor:
    """log N(x; 0, I), summed over the last dimension."""
    return -0.5 * (LOG_2PI + x.pow(2)).sum(-1)
