"""Priors p(z) used by :mod:`genlab.vae`.

* :class:`StandardPrior`: N(0, I), the prior of the original VAE (KL in closed form).
* :class:`MixturePrior`: a learned mixture of diagonal Gaussians.
* :class:`VampPrior`: the "variational mixture of posteriors" prior of Tomczak & Welling (2018):
  p(z) = (1/K) Σ_k q(z | u_k) with K learned pseudo-inputs u_k passed through the VAE's own encoder.

Every prior has ``log_prob(z)`` (nats, one value per row of ``z``) and ``sample(n_samples, *, random_state=None)``.
The autoregressive decoders live in :mod:`genlab.autoregressive`.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .numerics import diag_gaussian_log_prob, standard_normal_log_prob
from .validation import as_float_tensor, check_int, check_option, check_random_state, check_shape

PRIORS = ("standard", "mog", "vamp")


def _check_z(z: Any, latent_dim: int, device: torch.device) -> torch.Tensor:
    """Latents ``(m, latent_dim)`` as a float tensor; tensors keep their dtype (gradients flow through)."""
    if not (isinstance(z, torch.Tensor) and z.is_floating_point()):
        z = as_float_tensor(z, name="z", ndim=2, dtype=torch.float32, device=device)
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"z must have shape (m, {latent_dim}), got {tuple(z.shape)}")
    return z


def _diag_gaussian_mixture_log_prob(z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor) -> torch.Tensor:
    """log (1/K) Σ_k N(z; means_k, diag exp(logvars_k)) for z ``(m, d)``, components ``(K, d)``."""
    log_comp = diag_gaussian_log_prob(z.unsqueeze(1), means.unsqueeze(0), logvars.unsqueeze(0))
    return torch.logsumexp(log_comp, 1) - math.log(means.shape[0])


def _sample_mixture(n: int, means: torch.Tensor, logvars: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    index = torch.randint(means.shape[0], (n,), generator=generator).to(means.device)
    noise = torch.randn(n, means.shape[1], generator=generator).to(means.device, means.dtype)
    return means[index] + torch.exp(0.5 * logvars[index]) * noise


class StandardPrior(nn.Module):
    """N(0, I) over ``latent_dim`` dimensions."""

    kind = "standard"

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
        self.register_buffer("_anchor", torch.zeros(()))  # follows the model's device

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; 0, I) per row of ``z`` ``(m, latent_dim)``, in nats."""
        return standard_normal_log_prob(_check_z(z, self.latent_dim, self._anchor.device))

    def sample(self, n_samples: int, *, random_state: int | torch.Generator | None = None) -> torch.Tensor:
        """``n_samples`` draws ``(n_samples, latent_dim)`` (``random_state``: a seed, a generator or None)."""
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        noise = torch.randn(n_samples, self.latent_dim, generator=check_random_state(random_state))
        return noise.to(self._anchor.device)


class MixturePrior(nn.Module):
    """A learned, equally weighted mixture of ``n_components`` diagonal Gaussians."""

    kind = "mog"

    def __init__(self, latent_dim: int, n_components: int) -> None:
        super().__init__()
        self.latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
        n_components = check_int(n_components, "n_components", minimum=1)
        self.means = nn.Parameter(torch.randn(n_components, self.latent_dim))
        self.logvars = nn.Parameter(torch.zeros(n_components, self.latent_dim))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) per row of ``z`` ``(m, latent_dim)``, in nats."""
        z = _check_z(z, self.latent_dim, self.means.device)
        return _diag_gaussian_mixture_log_prob(z, self.means, self.logvars.clamp(-8, 4))

    def sample(self, n_samples: int, *, random_state: int | torch.Generator | None = None) -> torch.Tensor:
        """``n_samples`` draws ``(n_samples, latent_dim)``: a component, then its Gaussian."""
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        return _sample_mixture(n_samples, self.means, self.logvars.clamp(-8, 4),
                               check_random_state(random_state))


class VampPrior(nn.Module):
    """The VampPrior: a mixture of the encoder's posteriors at learned pseudo-inputs.

    The owning VAE is held by a plain reference (not a sub-module) so it is not registered twice.
    """

    kind = "vamp"

    def __init__(self, owner: nn.Module, n_components: int, image_shape: tuple[int, ...], n_levels: int) -> None:
        super().__init__()
        if not (isinstance(owner, nn.Module) and hasattr(owner, "_encode")):
            raise TypeError(f"owner must be the VAE whose encoder the VampPrior uses, got {type(owner).__name__}")
        n_components = check_int(n_components, "n_components", minimum=1)
        image_shape = check_shape(image_shape, "image_shape")
        self.n_levels = check_int(n_levels, "n_levels", minimum=2)
        object.__setattr__(self, "_owner", owner)
        # Pseudo-inputs live in logit space; a sigmoid maps them into the data range.
        self.pseudo_logits = nn.Parameter(0.5 * torch.randn(n_components, *image_shape))

    def components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Means and log-variances ``(K, latent_dim)`` of q(z|u_k) at the pseudo-inputs."""
        pseudo = torch.sigmoid(self.pseudo_logits)
        if self._owner.likelihood != "bernoulli":
            pseudo = pseudo * (self.n_levels - 1)
        return self._owner._encode(pseudo, None)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) per row of ``z`` ``(m, latent_dim)``, in nats."""
        means, logvars = self.components()
        z = _check_z(z, means.shape[1], means.device)
        return _diag_gaussian_mixture_log_prob(z, means, logvars)

    def sample(self, n_samples: int, *, random_state: int | torch.Generator | None = None) -> torch.Tensor:
        """``n_samples`` draws ``(n_samples, latent_dim)``: a pseudo-input's posterior, then its Gaussian."""
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        means, logvars = self.components()
        return _sample_mixture(n_samples, means, logvars, check_random_state(random_state))


def make_prior(kind: str, latent_dim: int, *, n_components: int = 50, encoder: nn.Module | None = None,
               image_shape: tuple[int, ...] = (1, 8, 8), n_levels: int = 17) -> nn.Module:
    """Build the prior named ``kind`` (``"standard"``, ``"mog"`` or ``"vamp"``)."""
    kind = check_option(kind, "prior", PRIORS)
    latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
    if kind == "standard":
        return StandardPrior(latent_dim)
    n_components = check_int(n_components, "n_components", minimum=1)
    if kind == "mog":
        return MixturePrior(latent_dim, n_components)
    if encoder is None:
        raise ValueError("the VampPrior needs the VAE whose encoder it uses (encoder=...)")
    return VampPrior(encoder, n_components, image_shape, n_levels)


__all__ = ["StandardPrior", "MixturePrior", "VampPrior", "make_prior", "PRIORS"]
