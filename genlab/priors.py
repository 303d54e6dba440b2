"""Priors p(z) used by :mod:`genlab.vae`.

* :class:`StandardPrior`: N(0, I), the prior of the original VAE (KL in closed form).
* :class:`MixturePrior`: a learned mixture of diagonal Gaussians.
* :class:`VampPrior`: the "variational mixture of posteriors" prior of Tomczak & Welling (2018):
  p(z) = (1/K) Σ_k q(z | u_k) with K learned pseudo-inputs u_k passed through the VAE's own encoder.

The autoregressive decoders live in :mod:`genlab.autoregressive`.
"""
from __future__ import annotations

import math
import torch
from torch import nn


PRIORS = ("standard", "mog", "vamp")
LOG_2PI = math.log(2 * math.pi)


def _diag_gaussian_mixture_log_prob(z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor) -> torch.Tensor:
    """log (1/K) Σ_k N(z; means_k, diag exp(logvars_k)) for z ``(m, d)``, components ``(K, d)``."""
    diff = z.unsqueeze(1) - means.unsqueeze(0)
    log_comp = -0.5 * (LOG_2PI + logvars.unsqueeze(0) + diff.pow(2) * torch.exp(-logvars).unsqueeze(0)).sum(-1)
    return torch.logsumexp(log_comp, 1) - math.log(means.shape[0])


def _sample_mixture(n: int, means: torch.Tensor, logvars: torch.Tensor) -> torch.Tensor:
    index = torch.randint(means.shape[0], (n,), device=means.device)
    return means[index] + torch.exp(0.5 * logvars[index]) * torch.randn(n, means.shape[1], device=means.device)


class StandardPrior(nn.Module):
    """N(0, I) over ``latent_dim`` dimensions."""

    kind = "standard"

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.register_buffer("_anchor", torch.zeros(()))  # follows the model's device

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)

    def sample(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self._anchor.device)


class MixturePrior(nn.Module):
    """A learned, equally weighted mixture of ``n_components`` diagonal Gaussians."""

    kind = "mog"

    def __init__(self, latent_dim: int, n_components: int) -> None:
        super().__init__()
        self.means = nn.Parameter(torch.randn(n_components, latent_dim))
        self.logvars = nn.Parameter(torch.zeros(n_components, latent_dim))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return _diag_gaussian_mixture_log_prob(z, self.means, self.logvars.clamp(-8, 4))

    def sample(self, n: int) -> torch.Tensor:
        return _sample_mixture(n, self.means, self.logvars.clamp(-8, 4))


class VampPrior(nn.Module):
    """The VampPrior: a mixture of the encoder's posteriors at learned pseudo-inputs.

    The owning VAE is held by a plain reference (not a sub-module) so it is not registered twice.
    """

    kind = "vamp"

    def __init__(self, owner: nn.Module, n_components: int, image_shape: tuple[int, ...], n_levels: int) -> None:
        super().__init__()
        object.__setattr__(self, "_owner", owner)
        self.n_levels = n_levels
        # Pseudo-inputs live in logit space; a sigmoid maps them into the data range.
        self.pseudo_logits = nn.Parameter(0.5 * torch.randn(n_components, *image_shape))

    def components(self) -> tuple[torch.Tensor, torch.Tensor]:
        pseudo = torch.sigmoid(self.pseudo_logits)
        if self._owner.likelihood != "bernoulli":
            pseudo = pseudo * (self.n_levels - 1)
        return self._owner._encode(pseudo, None)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        means, logvars = self.components()
        return _diag_gaussian_mixture_log_prob(z, means, logvars)

    def sample(self, n: int) -> torch.Tensor:
        means, logvars = self.components()
        return _sample_mixture(n, means, logvars)


def make_prior(kind: str, latent_dim: int, *, n_components: int = 50, encoder: nn.Module | None = None,
               image_shape: tuple[int, ...] = (1, 8, 8), n_levels: int = 17) -> nn.Module:
    """Build the prior named ``kind`` (``"standard"``, ``"mog"`` or ``"vamp"``)."""
    if kind not in PRIORS:
        raise ValueError(f"unknown prior {kind!r}; choose one of {PRIORS}")
    if kind == "standard":
        return StandardPrior(latent_dim)
    if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 1:
        raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
    if kind == "mog":
        return MixturePrior(latent_dim, n_components)
    if encoder is None:
        raise ValueError("the VampPrior needs the VAE whose encoder it uses")
    return VampPrior(encoder, n_components, image_shape, n_levels)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


__all__ = ["StandardPrior", "MixturePrior", "VampPrior", "make_prior", "count_parameters", "PRIORS"]
