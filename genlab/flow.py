"""Normalizing flows: exact densities through an invertible map and the change of variables.

A flow is an invertible map ``f`` from data ``x`` to a latent ``z = f(x)`` with a simple base density
(here N(0, I)); the change of variables gives the density of the data exactly::

    log p(x) = log N(f(x); 0, I) + log |det ∂f/∂x|.

Every layer here (a :class:`Bijector`) returns ``(z, log_det)`` from ``forward(x)`` (``log_det`` is
``log |det ∂z/∂x|`` per example, in nats) and inverts exactly with ``inverse(z)``:

* :class:`AffineCoupling` (RealNVP, Dinh et al. 2017): one part of the input, chosen by a 0/1 mask,
  passes unchanged and sets a scale and shift for the other part; the Jacobian is triangular;
* :class:`ActNorm` and :class:`InvertibleLinear` (an invertible 1x1 convolution on images; Glow,
  Kingma and Dhariwal 2018), :class:`Permutation`, :class:`Squeeze` (space to depth, for the
  multi-scale architecture), :class:`LogitTransform` (from [0, 1] to the real line);
* :class:`PlanarFlow` (Rezende and Mohamed 2015), a flow you can draw in 2-D, inverted by bisection.

Two models derive from :class:`genlab.base.GenerativeModule` and train with :class:`genlab.train.Trainer`:
:class:`Flow2D` for points in the plane and :class:`ImageFlow` for images of integer levels.

**Discrete data.** A density on the integers is meaningless, so :class:`ImageFlow` models
``v = x + u`` with ``u`` in ``[0, 1)^D`` (*dequantisation*, Theis et al. 2016): each level ``x`` owns a
bin of width one. For any density ``q(u | x)`` on the unit cube,
``log P(x) >= E_q[log p(x + u) - log q(u | x)]`` (Jensen), where ``p`` is the flow's density in *level
units* (unit-width bins). Uniform noise has ``q = 1`` (the bound is ``E[log p(x + u)]``); *variational
dequantisation* (Ho et al. 2019) learns ``q`` with a conditional flow and tightens the bound.
Internally the flow works on ``y = v / n_levels`` in ``[0, 1)``, where the bins are ``1 / n_levels``
wide: ``log p(v) = log p_y(v / n_levels) - D log n_levels``, so reported numbers are always on the
discrete data, in nats per image, directly comparable with a categorical model's exact ``log P(x)``.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import GenerativeModule
from .layers import eval_mode
from .numerics import LOG_2PI
from .validation import (
    as_float_tensor,
    as_image_tensor,
    check_float,
    check_int,
    check_option,
    check_random_state,
    check_shape,
)

__all__ = ["Bijector", "AffineCoupling", "ActNorm", "InvertibleLinear", "Permutation", "Squeeze", "LogitTransform",
           "PlanarFlow", "FlowSequential", "Flow2D", "ImageFlow", "VariationalDequantizer", "checkerboard_mask",
           "channel_mask", "check_coupling_answer", "DEQUANTIZATIONS", "DIGITS_FLOW_RECIPES"]

DEQUANTIZATIONS = ("uniform", "variational")


def _event_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over every dimension but the first (the batch)."""
    return t.reshape(t.shape[0], -1).sum(1)


def _standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * _event_sum(z.pow(2) + LOG_2PI)


def checkerboard_mask(height: int, width: int, *, parity: int = 0) -> torch.Tensor:
    """A ``(1, height, width)`` 0/1 checkerboard; ``parity`` 1 swaps the two colours."""
    height, width = check_int(height, "height", minimum=1), check_int(width, "width", minimum=1)
    if height * width < 2:
        raise ValueError(f"a checkerboard coupling needs at least two pixels, got {height}x{width}")
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return ((rows + cols + check_int(parity, "parity", minimum=0, maximum=1)) % 2).float().unsqueeze(0)


def channel_mask(channels: int, height: int = 1, width: int = 1, *, parity: int = 0) -> torch.Tensor:
    """A ``(channels, height, width)`` mask that is 1 on the first half of the channels (``parity`` 1: second).

    An odd number of channels cannot be split into halves: that raises, naming ``channels``.
    """
    channels = check_int(channels, "channels", minimum=1)
    if channels < 2 or channels % 2:
        raise ValueError(f"a channel coupling splits the channels in halves: channels must be even and >= 2, "
                         f"got {channels}")
    mask = torch.zeros(channels, check_int(height, "height", minimum=1), check_int(width, "width", minimum=1))
    half = channels // 2
    mask[:half] = 1.0
    return 1.0 - mask if check_int(parity, "parity", minimum=0, maximum=1) else mask


# ----------------------------------------------------------------------------- bijectors
def _check_event(z: Any, name: str, channels: int | None = None, ndims: tuple[int, ...] = (2, 4)) -> None:
    """``z`` is a tensor: a batch of vectors / images whose dimension 1 has ``channels`` entries."""
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(z).__name__}")
    if z.ndim not in ndims or (channels is not None and z.shape[1] != channels):
        raise ValueError(f"{name} must be a {' or '.join(f'{d}-D' for d in ndims)} batch with {channels} channels "
                         f"(features) in dimension 1, got shape {tuple(z.shape)}")


class Bijector(nn.Module):
    """An invertible layer: ``forward(x) -> (z, log|det ∂z/∂x|)`` per example, ``inverse(z) -> x``."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover - interface
        raise NotImplementedError

    def inverse(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class AffineCoupling(Bijector):
    """RealNVP's affine coupling: ``z = m ⊙ x + (1 - m) ⊙ (x ⊙ exp(s) + t)`` with ``(s, t) = NN(m ⊙ x)``.

    Args:
        mask: a 0/1 tensor of the event shape (``(D,)`` for vectors, ``(C, H, W)`` for images); ones
            mark the half that passes unchanged and conditions the other half.
        hidden: width of the conditioner (units of an MLP for vectors, channels of a small CNN for images).
        context_channels: extra channels (images) or features (vectors) the conditioner reads, e.g.
            the data a variational dequantiser conditions on; then call ``forward(x, context)``.

    The log-determinant is ``Σ (1 - m) ⊙ s``: the Jacobian is triangular with ``exp(s)`` on the
    diagonal of the transformed half and ones elsewhere. ``s = scale ⋅ tanh(raw)`` keeps it bounded,
    and the last layer of the conditioner starts at zero, so a fresh coupling is the identity.
    """

    def __init__(self, mask: torch.Tensor, hidden: int = 64, context_channels: int = 0) -> None:
        super().__init__()
        if not isinstance(mask, torch.Tensor):
            raise TypeError(f"mask must be a tensor of 0/1 values, got {type(mask).__name__}")
        mask = mask.detach().float()
        if mask.ndim not in (1, 3):
            raise ValueError(f"mask must have the event shape (D,) or (C, H, W), got shape {tuple(mask.shape)}")
        if not torch.all((mask == 0) | (mask == 1)) or mask.sum() == 0 or mask.sum() == mask.numel():
            raise ValueError("mask must hold 0/1 values with both parts non-empty (a coupling needs something to "
                             "condition on and something to transform)")
        hidden = check_int(hidden, "hidden", minimum=1)
        context_channels = check_int(context_channels, "context_channels", minimum=0)
        self.register_buffer("mask", mask)
        self.context_channels = context_channels
        if mask.ndim == 1:
            d = mask.numel()
            self.net = nn.Sequential(nn.Linear(d + context_channels, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                     nn.ReLU(), nn.Linear(hidden, 2 * d))
        else:
            c = mask.shape[0]
            self.net = nn.Sequential(nn.Conv2d(c + context_channels, hidden, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(hidden, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, 2 * c, 3, padding=1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.scale = nn.Parameter(torch.ones(mask.shape[0] if mask.ndim == 3 else mask.numel()))

    def scale_shift(self, x_fixed: torch.Tensor, context: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The conditioner's log-scale ``s`` (bounded) and shift ``t`` from the fixed half ``m ⊙ x``.

        Both have the input's shape and are *not* masked: only ``(1 - m) ⊙ s`` and ``(1 - m) ⊙ t``
        act on the data.
        """
        _check_event(x_fixed, "x_fixed", self.mask.shape[0], ndims=(self.mask.ndim + 1,))
        if context is not None:
            _check_event(context, "context", self.context_channels, ndims=(self.mask.ndim + 1,))
            if context.shape[0] != x_fixed.shape[0] or context.shape[2:] != x_fixed.shape[2:]:
                raise ValueError(f"context must match x_fixed's batch (and image) shape, got {tuple(context.shape)} "
                                 f"and {tuple(x_fixed.shape)}")
        inputs = x_fixed if context is None else torch.cat([x_fixed, context], 1)
        raw_s, t = self.net(inputs).chunk(2, dim=1)
        scale = self.scale.view(1, -1, 1, 1) if self.mask.ndim == 3 else self.scale.view(1, -1)
        return scale * torch.tanh(raw_s), t

    def _check_context(self, context: torch.Tensor | None) -> None:
        if (context is None) != (self.context_channels == 0):
            raise ValueError(f"this coupling was built with context_channels={self.context_channels}; "
                             f"pass a context exactly when that is positive")

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_context(context)
        s, t = self.scale_shift(x * self.mask, context)
        free = 1.0 - self.mask
        return self.mask * x + free * (x * torch.exp(s) + t), _event_sum(free * s)

    def inverse(self, z: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        self._check_context(context)
        _check_event(z, "z", self.mask.shape[0], ndims=(self.mask.ndim + 1,))
        s, t = self.scale_shift(z * self.mask, context)
        free = 1.0 - self.mask
        return self.mask * z + free * (z - t) * torch.exp(-s)


class ActNorm(Bijector):
    """Per-channel affine map ``z = (x - b) ⋅ exp(-log_s)`` (Glow), initialised from the first training batch.

    The first forward pass in training mode sets ``b`` and ``log_s`` so that the batch leaves with
    zero mean and unit variance per channel; ``log_det = -Σ log_s ⋅ (H ⋅ W)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        channels = check_int(channels, "channels", minimum=1)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(False))

    def _view(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return t.view(1, -1, 1, 1) if x.ndim == 4 else t.view(1, -1)

    @torch.no_grad()
    def _initialize(self, x: torch.Tensor) -> None:
        dims = (0, 2, 3) if x.ndim == 4 else (0,)
        self.bias.copy_(x.mean(dims))
        self.log_scale.copy_(torch.log(x.std(dims).clamp_min(1e-6)) if x.shape[0] > 1 else torch.zeros_like(self.bias))
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not bool(self.initialized):
            self._initialize(x)
        pixels = x[0, 0].numel() if x.ndim == 4 else 1
        z = (x - self._view(self.bias, x)) * torch.exp(-self._view(self.log_scale, x))
        return z, (-self.log_scale.sum() * pixels).expand(x.shape[0])

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        _check_event(z, "z", self.bias.numel())
        return z * torch.exp(self._view(self.log_scale, z)) + self._view(self.bias, z)


class InvertibleLinear(Bijector):
    """A learned invertible ``C x C`` matrix on the channels (Glow's invertible 1x1 convolution on images).

    Starts as a random rotation; ``log_det = log |det W| ⋅ (H ⋅ W)``.
    """

    def __init__(self, channels: int, *, random_state: Any = 0) -> None:
        super().__init__()
        channels = check_int(channels, "channels", minimum=1)
        generator = check_random_state(random_state)
        q, _ = torch.linalg.qr(torch.randn(channels, channels, generator=generator))
        self.weight = nn.Parameter(q)

    def _mix(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ij,nj...->ni...", weight, x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = x[0, 0].numel() if x.ndim == 4 else 1
        log_det = torch.linalg.slogdet(self.weight)[1] * pixels
        return self._mix(x, self.weight), log_det.expand(x.shape[0])

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        _check_event(z, "z", self.weight.shape[0])
        return self._mix(z, torch.linalg.inv(self.weight))


class Permutation(Bijector):
    """A fixed permutation of the channels (features); ``log_det = 0``."""

    def __init__(self, channels: int, *, random_state: Any = 0) -> None:
        super().__init__()
        channels = check_int(channels, "channels", minimum=1)
        perm = torch.randperm(channels, generator=check_random_state(random_state))
        self.register_buffer("perm", perm)
        self.register_buffer("inverse_perm", torch.argsort(perm))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[:, self.perm], x.new_zeros(x.shape[0])

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        _check_event(z, "z", self.perm.numel())
        return z[:, self.inverse_perm]


class Squeeze(Bijector):
    """Space to depth: ``(C, H, W) -> (4C, H/2, W/2)``, each 2x2 block becoming four channels; ``log_det = 0``."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"a squeeze needs an even height and width, got images of shape {tuple(x.shape[1:])}")
        z = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, 4 * c, h // 2, w // 2)
        return z, x.new_zeros(n)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        _check_event(z, "z", ndims=(4,))
        if z.shape[1] % 4:
            raise ValueError(f"z must have a multiple of 4 channels to unsqueeze, got shape {tuple(z.shape)}")
        n, c, h, w = z.shape
        return z.view(n, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c // 4, 2 * h, 2 * w)


class LogitTransform(Bijector):
    """``y ∈ (0, 1) -> logit(α + (1 - 2α) y)``: from the unit cube to the real line (RealNVP's pre-processing)."""

    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        self.alpha = check_float(alpha, "alpha", low=0.0, high=0.5, high_inclusive=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.alpha + (1 - 2 * self.alpha) * x
        z = torch.log(s) - torch.log1p(-s)
        return z, _event_sum(math.log(1 - 2 * self.alpha) - torch.log(s) - torch.log1p(-s))

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        _check_event(z, "z", ndims=(2, 3, 4))
        return (torch.sigmoid(z) - self.alpha) / (1 - 2 * self.alpha)


class PlanarFlow(Bijector):
    """Rezende and Mohamed's planar flow on vectors: ``z = x + û ⋅ tanh(wᵀx + b)``.

    ``û`` is ``u`` moved along ``w`` so that ``wᵀû >= -1``, which keeps the map invertible;
    ``log_det = log |1 + ûᵀ ψ(x)|`` with ``ψ = (1 - tanh²(wᵀx + b)) w``. There is no inverse in
    closed form, but along ``w`` the map is a monotone scalar equation, solved here by bisection.
    """

    def __init__(self, dim: int, *, random_state: Any = 0) -> None:
        super().__init__()
        dim = check_int(dim, "dim", minimum=1)
        generator = check_random_state(random_state)
        self.u = nn.Parameter(0.5 * torch.randn(dim, generator=generator))
        self.w = nn.Parameter(torch.randn(dim, generator=generator))
        self.b = nn.Parameter(torch.zeros(()))

    def u_hat(self) -> torch.Tensor:
        """``u`` corrected so that ``wᵀû >= -1`` (the map is then invertible)."""
        wu = self.w @ self.u
        return self.u + (-1 + F.softplus(wu) - wu) * self.w / (self.w @ self.w).clamp_min(1e-12)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = self.u_hat()
        a = x @ self.w + self.b
        z = x + u * torch.tanh(a).unsqueeze(-1)
        psi = (1 - torch.tanh(a).pow(2)).unsqueeze(-1) * self.w
        return z, torch.log((1 + psi @ u).abs().clamp_min(1e-12))

    @torch.no_grad()
    def inverse(self, z: torch.Tensor, n_iter: int = 100) -> torch.Tensor:
        _check_event(z, "z", self.w.numel(), ndims=(2,))
        n_iter = check_int(n_iter, "n_iter", minimum=1)
        u = self.u_hat()
        # With α = wᵀx: wᵀz = α + (wᵀû) tanh(α + b), increasing in α; |α - wᵀz| <= |wᵀû|.
        target = z @ self.w
        wu = float((self.w @ u).abs())
        low, high = target - wu - 1.0, target + wu + 1.0
        for _ in range(n_iter):
            mid = (low + high) / 2
            above = mid + (self.w @ u) * torch.tanh(mid + self.b) > target
            high, low = torch.where(above, mid, high), torch.where(above, low, mid)
        alpha = (low + high) / 2
        return z - u * torch.tanh(alpha + self.b).unsqueeze(-1)


class FlowSequential(Bijector):
    """Bijectors applied in order; the log-determinants add up."""

    def __init__(self, layers: Sequence[Bijector]) -> None:
        super().__init__()
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
            raise TypeError(f"layers must be a sequence of Bijector, got {type(layers).__name__}")
        layers = list(layers)
        if not layers or not all(isinstance(layer, Bijector) for layer in layers):
            raise ValueError(f"layers must be a non-empty sequence of Bijector, got "
                             f"{[type(layer).__name__ for layer in layers]}")
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        total = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, log_det = layer(x)
            total = total + log_det
        return x, total

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"z must be a torch.Tensor, got {type(z).__name__}")
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z


# ----------------------------------------------------------------------------- models
def _batch_tensor(batch: Any) -> Any:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


class Flow2D(GenerativeModule):
    """A normalizing flow for points in the plane (or ``dim`` dimensions), base density N(0, I).

    Args:
        dim: dimension of the data (2 for the toy sets).
        n_layers: number of layers.
        kind: ``"coupling"`` (affine couplings with alternating halves, each followed by ActNorm)
            or ``"planar"`` (planar flows: few parameters, drawn easily, weaker).
        hidden: width of the coupling networks.

    ``log_prob(x)`` is the exact log-density in nats per point; ``loss`` its negative mean.
    """

    def __init__(self, dim: int = 2, n_layers: int = 6, kind: str = "coupling", hidden: int = 64) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim", minimum=1)
        n_layers = check_int(n_layers, "n_layers", minimum=1)
        self.kind = check_option(kind, "kind", ("coupling", "planar"))
        if kind == "coupling" and self.dim < 2:
            raise ValueError(f"an affine coupling splits the features in two: dim must be >= 2, got {dim}")
        layers: list[Bijector] = []
        for i in range(n_layers):
            if kind == "planar":
                layers.append(PlanarFlow(self.dim, random_state=i))
            else:
                mask = (torch.arange(self.dim) % 2 == i % 2).float()
                layers += [AffineCoupling(mask, hidden), ActNorm(self.dim)]
        self.flow = FlowSequential(layers)

    def _check(self, x: Any, name: str) -> torch.Tensor:
        x = as_float_tensor(x, name=name, dtype=next(self.parameters()).dtype)
        if x.shape[1] != self.dim:
            raise ValueError(f"{name} must have {self.dim} columns, got shape {tuple(x.shape)}")
        return x.to(self.device)

    def transform(self, x: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, log|det ∂z/∂x|)`` for data ``x`` ``(n, dim)``."""
        return self.flow(self._check(x, "x"))

    def inverse(self, z: Any) -> torch.Tensor:
        """Data points ``x = f⁻¹(z)`` for latents ``z`` ``(n, dim)``."""
        return self.flow.inverse(self._check(z, "z"))

    def _log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z, log_det = self.flow(x)
        return _standard_normal_log_prob(z) + log_det

    def loss(self, batch: Any) -> torch.Tensor:
        """Mean negative log-density of a batch of points, in nats."""
        return -self._log_prob(self._check(_batch_tensor(batch), "batch")).mean()

    def log_prob(self, x: Any) -> torch.Tensor:
        """Exact log-density in nats per point, shape ``(n,)``."""
        self.check_fitted("log_prob")
        x = self._check(x, "x")
        with eval_mode(self), torch.no_grad():
            return self._log_prob(x)

    @torch.no_grad()
    def sample(self, n_samples: int, *, random_state: Any = None) -> torch.Tensor:
        """``n_samples`` points ``(n, dim)``: base noise pushed through the inverse flow."""
        self.check_fitted("sample")
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        generator = check_random_state(random_state)
        dtype = next(self.parameters()).dtype
        z = torch.randn(n_samples, self.dim, generator=generator, dtype=dtype).to(self.device)
        with eval_mode(self):
            return self.flow.inverse(z)


class VariationalDequantizer(nn.Module):
    """``q(u | x)`` on the unit cube: ``u = Φ(g(ε; x))``, ``ε ~ N(0, I)``, ``g`` a conditional coupling flow.

    ``Φ`` is the standard normal CDF; since the couplings start as the identity, a fresh dequantiser
    is exactly uniform noise (``log q = 0``).

    ``forward(x)`` returns a draw ``u`` and ``log q(u | x)`` per image (Ho et al. 2019's variational
    dequantisation). ``x`` is an image batch of levels scaled to ``[0, 1]``.
    """

    def __init__(self, image_shape: tuple[int, int, int], hidden: int = 32, n_layers: int = 4) -> None:
        super().__init__()
        c, h, w = check_shape(image_shape, "image_shape", length=3)
        hidden, n_layers = check_int(hidden, "hidden", minimum=1), check_int(n_layers, "n_layers", minimum=1)
        self.image_shape = (c, h, w)
        self.context = nn.Sequential(nn.Conv2d(c, hidden, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU())
        self.couplings = nn.ModuleList(
            AffineCoupling(checkerboard_mask(h, w, parity=i % 2).expand(c, h, w).clone(), hidden,
                           context_channels=hidden)
            for i in range(n_layers))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        context = self.context(x)
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device) if generator is not None \
            else torch.randn_like(x)
        log_q = _standard_normal_log_prob(eps)
        a = eps
        for coupling in self.couplings:
            a, log_det = coupling(a, context)
            log_q = log_q - log_det
        # u = Φ(a), the standard normal CDF: du/da = N(a; 0, 1). A fresh dequantiser (identity couplings,
        # a = ε) is therefore exactly uniform noise with log q = 0, and training can only tighten the bound.
        log_q = log_q - _standard_normal_log_prob(a)
        return 0.5 * (1 + torch.erf(a / math.sqrt(2))), log_q


class ImageFlow(GenerativeModule):
    """A multi-scale RealNVP/Glow flow for images of integer levels, with uniform or variational dequantisation.

    Args:
        image_shape: ``(1, H, W)`` with ``H`` and ``W`` divisible by 4 (two squeezes), e.g. ``(1, 8, 8)``.
        n_levels: levels per pixel (17 for the digits).
        hidden: channels of the coupling networks.
        n_checkerboard: checkerboard couplings at full resolution, before the first squeeze.
        n_steps: Glow steps (ActNorm, invertible 1x1 convolution, channel coupling) per scale.
        dequantization: ``"uniform"`` or ``"variational"``.
        dequant_hidden, dequant_layers: size of the variational dequantiser.
        alpha: the logit transform's margin.

    Architecture (8x8 digits): logit transform, ``n_checkerboard`` checkerboard couplings on the
    1x8x8 image, squeeze to 4x4x4, ``n_steps`` Glow steps, half the channels leave as latents
    (multi-scale), squeeze the rest to 8x2x2, ``n_steps`` Glow steps. All latents are N(0, I).

    ``log_prob(x)`` is a *lower bound* on log P(x) for integer images, in nats per image (see the
    module docstring); ``log_density(v)`` is the exact density of the dequantised ``v`` in level units.
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 8, 8), n_levels: int = 17, hidden: int = 64,
                 n_checkerboard: int = 2, n_steps: int = 4, dequantization: str = "uniform",
                 dequant_hidden: int = 32, dequant_layers: int = 4, alpha: float = 0.05) -> None:
        super().__init__()
        shape = check_shape(image_shape, "image_shape", length=3)
        if shape[0] != 1:
            raise ValueError(f"image_shape must have one channel (1, H, W), got {shape}")
        if shape[1] % 4 or shape[2] % 4:
            raise ValueError(f"image_shape must have a height and width divisible by 4 (the flow squeezes twice "
                             f"and splits channels in halves), got {shape}")
        self.image_shape = shape
        self.n_levels = check_int(n_levels, "n_levels", minimum=2)
        hidden = check_int(hidden, "hidden", minimum=1)
        n_checkerboard = check_int(n_checkerboard, "n_checkerboard", minimum=0)
        n_steps = check_int(n_steps, "n_steps", minimum=1)
        self.dequantization = check_option(dequantization, "dequantization", DEQUANTIZATIONS)
        _, h, w = shape
        pre: list[Bijector] = [LogitTransform(alpha)]
        pre += [AffineCoupling(checkerboard_mask(h, w, parity=i % 2), hidden) for i in range(n_checkerboard)]
        self.pre = FlowSequential(pre)
        self.squeeze = Squeeze()
        self.scale1 = FlowSequential(self._glow_steps(4, h // 2, w // 2, hidden, n_steps, seed=0))
        self.scale2 = FlowSequential(self._glow_steps(8, h // 4, w // 4, hidden, n_steps, seed=100))
        self.dequantizer = (VariationalDequantizer(shape, check_int(dequant_hidden, "dequant_hidden", minimum=1),
                                                   check_int(dequant_layers, "dequant_layers", minimum=1))
                            if dequantization == "variational" else None)

    @staticmethod
    def _glow_steps(channels: int, h: int, w: int, hidden: int, n_steps: int, seed: int) -> list[Bijector]:
        steps: list[Bijector] = []
        for i in range(n_steps):
            steps += [ActNorm(channels), InvertibleLinear(channels, random_state=seed + i),
                      AffineCoupling(channel_mask(channels, h, w, parity=i % 2), hidden)]
        return steps

    @property
    def n_dims(self) -> int:
        """Number of pixels ``D`` per image."""
        c, h, w = self.image_shape
        return c * h * w

    # --------------------------------------------------------------- the bijection
    def _forward(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``v`` in level units ``[0, n_levels)`` -> (flattened latent, log|det| incl. the 1/n_levels scaling)."""
        y = v / self.n_levels
        log_det = y.new_full((y.shape[0],), -self.n_dims * math.log(self.n_levels))
        h, ld = self.pre(y)
        log_det = log_det + ld
        h, _ = self.squeeze(h)
        h, ld = self.scale1(h)
        log_det = log_det + ld
        half = h.shape[1] // 2
        z1, h = h[:, :half], h[:, half:]
        h, _ = self.squeeze(h)
        z2, ld = self.scale2(h)
        return torch.cat([z1.flatten(1), z2.flatten(1)], 1), log_det + ld

    def _inverse(self, z: torch.Tensor) -> torch.Tensor:
        _, h, w = self.image_shape
        n1 = 2 * (h // 2) * (w // 2)
        z1 = z[:, :n1].reshape(-1, 2, h // 2, w // 2)
        z2 = z[:, n1:].reshape(-1, 8, h // 4, w // 4)
        rest = self.squeeze.inverse(self.scale2.inverse(z2))
        hidden = self.scale1.inverse(torch.cat([z1, rest], 1))
        return self.pre.inverse(self.squeeze.inverse(hidden)) * self.n_levels

    def _check_continuous(self, v: Any, name: str) -> torch.Tensor:
        v = as_image_tensor(v, name, channels=1, value_range=(0.0, float(self.n_levels)), tolerance=0.0,
                            dtype=self._dtype())
        if tuple(v.shape[1:]) != self.image_shape:
            raise ValueError(f"{name} must have shape (n, {', '.join(map(str, self.image_shape))}), "
                             f"got {tuple(v.shape)}")
        if float(v.max()) >= self.n_levels:
            raise ValueError(f"{name} must lie in [0, {self.n_levels}) (dequantised levels), got a maximum of "
                             f"{float(v.max()):g}")
        return v.to(self.device)

    def _check_levels(self, x: Any, name: str) -> torch.Tensor:
        images = as_image_tensor(x, name, channels=1, dtype=self._dtype())
        if tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"{name} must have shape (n, {', '.join(map(str, self.image_shape))}), "
                             f"got {tuple(images.shape)}")
        if not torch.equal(images, images.round()):
            raise ValueError(f"{name} must hold integer levels 0..{self.n_levels - 1}, got non-integer values")
        low, high = float(images.min()), float(images.max())
        if low < 0 or high > self.n_levels - 1:
            raise ValueError(f"{name} must hold levels in 0..{self.n_levels - 1}, got values in [{low:g}, {high:g}]")
        return images.to(self.device)

    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def transform(self, v: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent ``z`` ``(n, D)`` and ``log|det ∂z/∂v|`` for dequantised images ``v`` in ``[0, n_levels)``."""
        return self._forward(self._check_continuous(v, "v"))

    def inverse(self, z: Any) -> torch.Tensor:
        """Dequantised images ``v`` ``(n, 1, H, W)`` in level units for latents ``z`` ``(n, D)``."""
        z = as_float_tensor(z, name="z", dtype=self._dtype())
        if z.shape[1] != self.n_dims:
            raise ValueError(f"z must have {self.n_dims} columns, got shape {tuple(z.shape)}")
        return self._inverse(z.to(self.device))

    # --------------------------------------------------------------- densities
    def _log_density(self, v: torch.Tensor) -> torch.Tensor:
        z, log_det = self._forward(v)
        return _standard_normal_log_prob(z) + log_det

    def _bound(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One-sample estimate of ``E_q[log p(x + u) - log q(u | x)]`` per image (nats)."""
        if self.dequantizer is None:
            u = (torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device) if generator is not None
                 else torch.rand_like(x))
            log_q = x.new_zeros(x.shape[0])
        else:
            u, log_q = self.dequantizer(x / (self.n_levels - 1), generator)
        # Keep v strictly inside its bin: u = 1 would land on the next level's bin edge.
        u = u.clamp(0.0, 1.0 - 1e-6)
        return self._log_density(x + u) - log_q

    def loss(self, batch: Any) -> torch.Tensor:
        """Negative dequantisation bound, mean over the batch: nats per image on the discrete data."""
        return -self._bound(self._check_levels(_batch_tensor(batch), "batch")).mean()

    def log_density(self, v: Any) -> torch.Tensor:
        """Exact log-density of dequantised images ``v`` in ``[0, n_levels)``, level units (unit bins), nats."""
        self.check_fitted("log_density")
        v = self._check_continuous(v, "v")
        with eval_mode(self), torch.no_grad():
            return self._log_density(v)

    def log_prob(self, x: Any, *, n_samples: int = 1, random_state: Any = None,
                 batch_size: int = 512) -> torch.Tensor:
        """A lower bound on log P(x) for integer images ``x``, nats per image, shape ``(n,)``.

        The bound ``E_q[log p(x + u) - log q(u | x)]`` is estimated with ``n_samples`` draws of the
        dequantisation noise per image (``q = 1`` for uniform noise).
        """
        self.check_fitted("log_prob")
        x = self._check_levels(x, "x")
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        generator = check_random_state(random_state)
        with eval_mode(self), torch.no_grad():
            parts = [torch.stack([self._bound(chunk, generator) for _ in range(n_samples)]).mean(0)
                     for chunk in x.split(batch_size)]
        return torch.cat(parts)

    @torch.no_grad()
    def sample(self, n_samples: int, *, random_state: Any = None, dequantized: bool = False) -> torch.Tensor:
        """``n_samples`` images ``(n, 1, H, W)``: integer levels (``floor`` of ``v``), or ``v`` itself."""
        self.check_fitted("sample")
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        generator = check_random_state(random_state)
        z = torch.randn(n_samples, self.n_dims, generator=generator, dtype=self._dtype()).to(self.device)
        with eval_mode(self):
            v = self._inverse(z)
        return v if dequantized else v.floor().clamp(0, self.n_levels - 1)


# ----------------------------------------------------------------------------- exercise check
def check_coupling_answer(answer: Any, *, random_state: int = 0) -> str | None:
    """Compare a learner's affine coupling with :class:`AffineCoupling`; ``None`` if right, else a diagnosis.

    ``answer`` is a pair ``(forward, inverse)`` of functions: ``forward(layer, x) -> (z, log_det)``
    and ``inverse(layer, z) -> x``, using ``layer.mask`` and ``layer.scale_shift(m ⊙ x)``. They are
    run on a random coupling and random inputs (float64) and compared with the layer's own methods;
    the message names the likely mistake (the wrong half, the sign of the log-determinant, ...).
    """
    generator = torch.Generator().manual_seed(check_int(random_state, "random_state", minimum=0))
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2 and all(callable(f) for f in answer)):
        return "answer must be a pair (forward, inverse) of functions"
    forward, inverse = answer
    layer = AffineCoupling(checkerboard_mask(4, 4), hidden=8).double()
    with torch.no_grad():
        for param in layer.parameters():
            param.copy_(0.3 * torch.randn(param.shape, generator=generator, dtype=param.dtype))
    x = torch.randn(3, 1, 4, 4, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        z_ref, log_det_ref = layer(x)
        s, _ = layer.scale_shift(x * layer.mask)
        try:
            z, log_det = forward(layer, x)
        except Exception as err:  # the learner's code may fail in any way
            return f"forward(layer, x) raised {err!r}"
        z, log_det = torch.as_tensor(z), torch.as_tensor(log_det)
        if z.shape != x.shape:
            return f"forward must return z of the input's shape {tuple(x.shape)}, got {tuple(z.shape)}"
        if not torch.allclose(z * layer.mask, x * layer.mask):
            return ("z changed the half where mask == 1: that half must pass unchanged (it conditions the "
                    "scale and shift); scale the half where mask == 0")
        if not torch.allclose(z, z_ref, atol=1e-8):
            return ("z is wrong on the transformed half: z = x * exp(s) + t there, with "
                    "(s, t) = layer.scale_shift(mask * x)")
        if log_det.shape != log_det_ref.shape:
            return (f"log_det must hold one number per example, shape {tuple(log_det_ref.shape)}, "
                    f"got {tuple(log_det.shape)}")
        if torch.allclose(log_det, -log_det_ref, atol=1e-8):
            return "log_det has the wrong sign: the transformed half is multiplied by exp(s), so log|det| = +sum(s)"
        if torch.allclose(log_det, _event_sum(s), atol=1e-8):
            return "log_det sums s over every pixel: only the transformed half (mask == 0) contributes"
        if not torch.allclose(log_det, log_det_ref, atol=1e-8):
            return "log_det is wrong: it is the sum of s over the transformed half (mask == 0), per example"
        try:
            x_back = torch.as_tensor(inverse(layer, z_ref))
        except Exception as err:
            return f"inverse(layer, z) raised {err!r}"
        if x_back.shape != x.shape or not torch.allclose(x_back, x, atol=1e-8):
            return ("inverse(layer, forward(layer, x)) does not give x back: compute (s, t) from the unchanged "
                    "half mask * z, then x = (z - t) * exp(-s) on the other half (undo the shift first)")
    return None


#: Flows benchmarked on the 8x8 digits (keyword arguments of :class:`ImageFlow` and the Trainer).
DIGITS_FLOW_RECIPES: dict[str, dict[str, Any]] = {
    "flow_uniform": dict(model=dict(hidden=64, n_checkerboard=2, n_steps=4, dequantization="uniform"),
                         train=dict(optimizer="adamax", lr=1e-3, batch_size=64, grad_clip=50.0, max_epochs=150,
                                    patience=15)),
    "flow_variational": dict(model=dict(hidden=64, n_checkerboard=2, n_steps=4, dequantization="variational"),
                             train=dict(optimizer="adamax", lr=1e-3, batch_size=64, grad_clip=50.0, max_epochs=150,
                                        patience=15)),
}
