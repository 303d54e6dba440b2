"""Denoising diffusion models: noise schedules, DDPM and DDIM samplers, guidance, and a small U-Net.

A diffusion model destroys data step by step with Gaussian noise and learns to undo each step
(Sohl-Dickstein et al. 2015; Ho et al. 2020). With ``beta_t`` the noise added at step ``t``,
``alpha_t = 1 - beta_t`` and ``alpha_bar_t = prod_{s <= t} alpha_s``, the forward process has the
closed-form marginal

    q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I),

so a training example is one line, :meth:`NoiseSchedule.add_noise`. A network ``eps_theta(x_t, t)``
learns to predict the noise that was added (the *noise-prediction loss*, a reweighted variational
bound); ``-eps_theta / sqrt(1 - alpha_bar_t)`` is then an estimate of the score
``grad log q(x_t)`` (Vincent 2011; Song et al. 2021), which is why denoising and score matching are
the same thing.

The pieces are kept apart, as in ``diffusers``:

* :class:`NoiseSchedule` (``linear_schedule``, ``cosine_schedule``): betas, alphas, alpha-bars,
  the posterior ``q(x_{t-1} | x_t, x_0)``'s mean coefficients and variance, ``add_noise``;
* samplers: :func:`ddpm_step` (ancestral, Ho et al. 2020) and :func:`ddim_step` (Song et al. 2021:
  deterministic for ``eta = 0``, DDPM's variance for ``eta = 1``, any subsequence of steps), and
  :func:`sample_loop` that runs either;
* networks: :class:`UNet` (images, built from the blocks in :mod:`genlab.layers`) and
  :class:`MLPDenoiser` (vectors such as 2-D toy data), both conditioned on the timestep and,
  optionally, a class label;
* :class:`DiffusionModel`: a :class:`genlab.base.GenerativeModule` with ``loss(batch)`` (the noise
  MSE, with label dropout for classifier-free guidance, Ho & Salimans 2022), ``sample`` (DDPM or
  DDIM, guidance scale, classifier guidance with a :class:`NoiseAwareClassifier`) and ``log_prob``
  (a variational **bound** on the log-probability of discrete data, in nats per example).

Timesteps are **0-based indices** ``0 .. n_steps - 1`` (index ``i`` is the papers' ``t = i + 1``).
Data are mapped from ``data_range`` to [-1, 1] inside the model; samples come back in data units.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import GenerativeModule
from .layers import Downsample, ResidualBlock, SelfAttention2d, SinusoidalEmbedding, Upsample, eval_mode, group_count
from .validation import (
    as_float_tensor,
    as_image_tensor,
    check_class_labels,
    check_float,
    check_int,
    check_labels,
    check_option,
    check_optional_int,
    check_probability,
    check_random_state,
    check_shape,
)

__all__ = ["NoiseSchedule", "linear_schedule", "cosine_schedule", "make_schedule", "SCHEDULES", "SAMPLERS",
           "ddpm_step", "ddim_step", "ddim_timesteps", "sample_loop", "UNet", "MLPDenoiser", "DiffusionModel",
           "guided_noise", "NoiseAwareClassifier",
           "check_add_noise_answer", "RECIPES", "train_recipe", "leaderboard_build"]

SCHEDULES = ("linear", "cosine")
SAMPLERS = ("ddpm", "ddim")
DENOISERS = ("unet", "mlp")

EpsFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ============================================================================ schedules
class NoiseSchedule:
    """A variance schedule ``beta_1 .. beta_T`` and every quantity derived from it (float64, CPU).

    Attributes (tensors of length ``n_steps``, indexed by the 0-based timestep):
        betas, alphas (``1 - betas``), alpha_bars (cumulative products), alpha_bars_prev
        (``alpha_bar`` one step earlier, 1 before the first step), posterior_variance
        (``beta_tilde_t = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)``, 0 at the first step),
        posterior_mean_coef_x0 and posterior_mean_coef_xt (the mean of ``q(x_{t-1} | x_t, x_0)`` is
        ``coef_x0 * x_0 + coef_xt * x_t``).

    Raises:
        ValueError: ``betas`` not 1-D, empty, non-finite, or outside the open interval (0, 1).
    """

    def __init__(self, betas: Any) -> None:
        betas = as_float_tensor(betas, name="betas", ndim=1, dtype=torch.float64, device="cpu")
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError(f"betas must lie in the open interval (0, 1), got values in "
                             f"[{float(betas.min()):.4g}, {float(betas.max()):.4g}]")
        self.betas = betas
        self.n_steps = len(betas)
        self.alphas = 1.0 - betas
        self.alpha_bars = torch.cumprod(self.alphas, 0)
        self.alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bars[:-1]])
        self.posterior_variance = betas * (1.0 - self.alpha_bars_prev) / (1.0 - self.alpha_bars)
        self.posterior_mean_coef_x0 = betas * self.alpha_bars_prev.sqrt() / (1.0 - self.alpha_bars)
        self.posterior_mean_coef_xt = (1.0 - self.alpha_bars_prev) * self.alphas.sqrt() / (1.0 - self.alpha_bars)

    def __repr__(self) -> str:
        return (f"NoiseSchedule(n_steps={self.n_steps}, beta in [{float(self.betas.min()):.3g}, "
                f"{float(self.betas.max()):.3g}], alpha_bar_T={float(self.alpha_bars[-1]):.3g})")

    # -------------------------------------------------------------- helpers
    def check_timesteps(self, t: Any, n: int | None = None, name: str = "t") -> torch.Tensor:
        """``t`` as a 1-D ``long`` tensor of indices in ``[0, n_steps - 1]`` (an int is broadcast to ``n``)."""
        if isinstance(t, int) and not isinstance(t, bool):
            t = torch.full((1 if n is None else n,), t, dtype=torch.long)
        tensor = check_labels(t, n, name=name) if not (isinstance(t, torch.Tensor) and t.ndim == 1
                                                        and t.dtype == torch.long) else t
        if len(tensor) and (int(tensor.min()) < 0 or int(tensor.max()) >= self.n_steps):
            raise ValueError(f"{name} must hold timesteps in [0, {self.n_steps - 1}] (0-based, n_steps="
                             f"{self.n_steps}), got values in [{int(tensor.min())}, {int(tensor.max())}]")
        if n is not None and len(tensor) != n:
            raise ValueError(f"{name} has {len(tensor)} timesteps for {n} examples")
        return tensor

    @staticmethod
    def _gather(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``values[t]`` shaped to broadcast against ``like`` (one value per example)."""
        out = values[t.cpu()].to(device=like.device, dtype=like.dtype)
        return out.reshape(-1, *([1] * (like.ndim - 1)))

    # -------------------------------------------------------------- the forward process
    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: Any) -> torch.Tensor:
        """A draw of ``x_t ~ q(x_t | x_0)``: ``sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise``.

        Args:
            x0: clean data ``(n, ...)``.
            noise: standard normal noise of the same shape.
            t: 0-based timesteps, an int or one per example.
        """
        x0, noise = _check_pair(x0, noise, "x0", "noise")
        t = self.check_timesteps(t, len(x0))
        signal, spread = self._gather(self.alpha_bars.sqrt(), t, x0), self._gather((1 - self.alpha_bars).sqrt(), t, x0)
        return signal * x0 + spread * noise

    def marginal(self, x0: torch.Tensor, t: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of ``q(x_t | x_0)`` (the variance broadcasts against ``x0``)."""
        x0 = _check_tensor(x0, "x0")
        t = self.check_timesteps(t, len(x0))
        return self._gather(self.alpha_bars.sqrt(), t, x0) * x0, self._gather(1 - self.alpha_bars, t, x0)

    def predict_x0(self, x_t: torch.Tensor, t: Any, eps: torch.Tensor) -> torch.Tensor:
        """Invert :meth:`add_noise` for ``x_0`` given (predicted) noise ``eps``."""
        x_t, eps = _check_pair(x_t, eps, "x_t", "eps")
        t = self.check_timesteps(t, len(x_t))
        signal = self._gather(self.alpha_bars.sqrt(), t, x_t)
        spread = self._gather((1 - self.alpha_bars).sqrt(), t, x_t)
        return (x_t - spread * eps) / signal

    def predict_eps(self, x_t: torch.Tensor, t: Any, x0: torch.Tensor) -> torch.Tensor:
        """The noise that takes ``x0`` to ``x_t`` at step ``t``."""
        x_t, x0 = _check_pair(x_t, x0, "x_t", "x0")
        t = self.check_timesteps(t, len(x_t))
        signal = self._gather(self.alpha_bars.sqrt(), t, x_t)
        spread = self._gather((1 - self.alpha_bars).sqrt(), t, x_t)
        return (x_t - signal * x0) / spread

    def score(self, x_t: torch.Tensor, t: Any, eps: torch.Tensor) -> torch.Tensor:
        """The score ``grad_x log q(x_t)`` implied by a noise prediction: ``-eps / sqrt(1 - alpha_bar_t)``."""
        x_t, eps = _check_pair(x_t, eps, "x_t", "eps")
        t = self.check_timesteps(t, len(x_t))
        return -eps / self._gather((1 - self.alpha_bars).sqrt(), t, x_t)

    def posterior(self, x0: torch.Tensor, x_t: torch.Tensor, t: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of ``q(x_{t-1} | x_t, x_0)`` (Ho et al. 2020, eq. 6-7)."""
        x0, x_t = _check_pair(x0, x_t, "x0", "x_t")
        t = self.check_timesteps(t, len(x0))
        mean = (self._gather(self.posterior_mean_coef_x0, t, x0) * x0
                + self._gather(self.posterior_mean_coef_xt, t, x0) * x_t)
        return mean, self._gather(self.posterior_variance, t, x0)

    def snr(self) -> torch.Tensor:
        """Signal-to-noise ratio ``alpha_bar_t / (1 - alpha_bar_t)`` per step."""
        return self.alpha_bars / (1 - self.alpha_bars)


def linear_schedule(n_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
    """Ho et al.'s linear betas, ``beta_start .. beta_end`` for 1000 steps, rescaled by ``1000 / n_steps``.

    The rescaling (Nichol & Dhariwal 2021) keeps ``alpha_bar_T`` near 0 for any number of steps.
    """
    n_steps = check_int(n_steps, "n_steps", minimum=2)
    beta_start = check_float(beta_start, "beta_start", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    beta_end = check_float(beta_end, "beta_end", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    scale = 1000.0 / n_steps
    return NoiseSchedule(torch.linspace(beta_start * scale, beta_end * scale, n_steps, dtype=torch.float64))


def cosine_schedule(n_steps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
    """Nichol & Dhariwal's (2021) cosine schedule: ``alpha_bar(t) = cos^2((t/T + s) / (1 + s) * pi/2)``.

    Noise grows gently at both ends (the linear schedule wastes its last steps on pure noise);
    betas are clipped at ``max_beta`` so the last step stays invertible.
    """
    n_steps = check_int(n_steps, "n_steps", minimum=2)
    s = check_float(s, "s", low=0.0, low_inclusive=False)
    max_beta = check_float(max_beta, "max_beta", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    steps = torch.arange(n_steps + 1, dtype=torch.float64) / n_steps
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(min=1e-8, max=max_beta)
    return NoiseSchedule(betas)


def make_schedule(name: str, n_steps: int = 1000) -> NoiseSchedule:
    """A schedule by name: ``"linear"`` or ``"cosine"``."""
    check_option(name, "schedule", SCHEDULES)
    return linear_schedule(n_steps) if name == "linear" else cosine_schedule(n_steps)


def _check_tensor(x: Any, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(x).__name__}")
    if not x.is_floating_point() or x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty floating tensor (n, ...), got dtype {x.dtype}, shape "
                         f"{tuple(x.shape)}")
    return x


def _check_pair(a: Any, b: Any, name_a: str, name_b: str) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = _check_tensor(a, name_a), _check_tensor(b, name_b)
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    return a, b


# ============================================================================ samplers
def ddpm_step(schedule: NoiseSchedule, x_t: torch.Tensor, eps: torch.Tensor, t: int, noise: torch.Tensor, *,
              clip: bool = False) -> torch.Tensor:
    """One ancestral step ``x_t -> x_{t-1}`` of DDPM (Ho et al. 2020, Algorithm 2).

    ``x_{t-1} = mu_theta(x_t, t) + sqrt(beta_tilde_t) z``, where ``mu_theta`` is the posterior mean
    with ``x_0`` replaced by its prediction from ``eps`` (clipped to [-1, 1] when ``clip``); without
    clipping this is ``(x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t)``. At ``t = 0`` the
    variance is 0 and the step returns the mean.
    """
    t = check_int(t, "t", minimum=0, maximum=schedule.n_steps - 1)
    x0 = schedule.predict_x0(x_t, t, eps)
    if clip:
        x0 = x0.clamp(-1.0, 1.0)
    mean, variance = schedule.posterior(x0, x_t, t)
    return mean + variance.sqrt() * noise if t > 0 else mean


def ddim_step(schedule: NoiseSchedule, x_t: torch.Tensor, eps: torch.Tensor, t: int, t_prev: int, *,
              eta: float = 0.0, noise: torch.Tensor | None = None, clip: bool = False) -> torch.Tensor:
    """One DDIM step ``x_t -> x_{t_prev}`` (Song, Meng & Ermon 2021, eq. 12); ``t_prev = -1`` means "to x_0".

    ``x_prev = sqrt(alpha_bar_prev) x0_hat + sqrt(1 - alpha_bar_prev - sigma^2) eps + sigma z`` with
    ``x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)`` and
    ``sigma = eta sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_prev)``.
    ``eta = 0`` is deterministic; ``eta = 1`` with ``t_prev = t - 1`` is DDPM's ancestral step.
    """
    t = check_int(t, "t", minimum=0, maximum=schedule.n_steps - 1)
    t_prev = check_int(t_prev, "t_prev", minimum=-1, maximum=t - 1)
    eta = check_float(eta, "eta", low=0.0)
    abar = float(schedule.alpha_bars[t])
    abar_prev = float(schedule.alpha_bars[t_prev]) if t_prev >= 0 else 1.0
    x0 = schedule.predict_x0(x_t, t, eps)
    if clip:
        x0 = x0.clamp(-1.0, 1.0)
        eps = (x_t - math.sqrt(abar) * x0) / math.sqrt(1 - abar)
    sigma = eta * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))
    out = math.sqrt(abar_prev) * x0 + math.sqrt(max(1 - abar_prev - sigma**2, 0.0)) * eps
    if sigma > 0:
        if noise is None:
            raise ValueError("noise is needed when eta > 0 (the step is stochastic)")
        out = out + sigma * noise
    return out


def ddim_timesteps(n_steps: int, steps: int) -> list[int]:
    """``steps`` timesteps spread evenly over ``0 .. n_steps - 1``, in decreasing order (always ends at 0)."""
    n_steps = check_int(n_steps, "n_steps", minimum=1)
    steps = check_int(steps, "steps", minimum=1, maximum=n_steps)
    grid = torch.linspace(0, n_steps - 1, steps, dtype=torch.float64).round().long().tolist()
    return sorted(set(grid), reverse=True)


@torch.no_grad()
def sample_loop(eps_fn: EpsFunction, schedule: NoiseSchedule, shape: Sequence[int], *, sampler: str = "ddpm",
                steps: int | None = None, eta: float = 0.0, clip: bool = False, random_state: Any = None,
                device: torch.device | str = "cpu", return_trajectory: bool = False) -> Any:
    """Run a sampler from pure noise ``x_T ~ N(0, I)`` down to ``x_0``.

    Args:
        eps_fn: ``eps_fn(x_t, t)`` predicts the noise (``t``: a ``(n,)`` long tensor of one timestep).
        schedule: the model's :class:`NoiseSchedule`.
        shape: ``(n, ...)`` of the samples.
        sampler: ``"ddpm"`` (ancestral; ``steps`` < ``n_steps`` uses the respaced process, i.e. DDIM
            with ``eta = 1``) or ``"ddim"`` (``eta`` controls the noise; ``steps`` default 50).
        clip: clip each prediction of ``x_0`` to [-1, 1] (data scaled to that range).
        random_state: int, ``torch.Generator`` or ``None``; all noise is drawn on the CPU from it, so a
            seed gives the same samples on every device.
        return_trajectory: also return the states ``x_t`` visited, stacked ``(n_visited, n, ...)``.
    """
    check_option(sampler, "sampler", SAMPLERS)
    shape = check_shape(shape, "shape")
    generator = check_random_state(random_state)
    if sampler == "ddpm":
        steps = schedule.n_steps if steps is None else check_int(steps, "steps", minimum=1, maximum=schedule.n_steps)
        eta = 1.0
    else:
        steps = min(50, schedule.n_steps) if steps is None else check_int(steps, "steps", minimum=1,
                                                                           maximum=schedule.n_steps)
        eta = check_float(eta, "eta", low=0.0)
    times = ddim_timesteps(schedule.n_steps, steps)

    def randn() -> torch.Tensor:
        return torch.randn(shape, generator=generator).to(device)

    x = randn()
    trajectory = [x.cpu()] if return_trajectory else None
    for index, t in enumerate(times):
        t_batch = torch.full((shape[0],), t, dtype=torch.long, device=device)
        eps = eps_fn(x, t_batch)
        t_prev = times[index + 1] if index + 1 < len(times) else -1
        if sampler == "ddpm" and steps == schedule.n_steps:
            x = ddpm_step(schedule, x, eps, t, randn() if t > 0 else torch.zeros_like(x), clip=clip)
        else:
            noise = randn() if eta > 0 and t_prev >= 0 else None
            x = ddim_step(schedule, x, eps, t, t_prev, eta=eta if t_prev >= 0 else 0.0, noise=noise, clip=clip)
        if trajectory is not None:
            trajectory.append(x.cpu())
    return (x, torch.stack(trajectory)) if return_trajectory else x


# ============================================================================ networks
class UNet(nn.Module):
    """A small U-Net ``eps(x_t, t, y)`` for ``(n, C, S, S)`` images, from :mod:`genlab.layers` blocks.

    Each resolution level has ``n_res_blocks`` :class:`~genlab.layers.ResidualBlock` s (time and
    class embedding added inside), optional :class:`~genlab.layers.SelfAttention2d` at the levels
    in ``attention_levels``, and a stride-2 downsampling; the decoder mirrors it with skip
    connections. ``image_size`` must be divisible by ``2 ** (len(channel_mults) - 1)``
    (8 with two levels: 8 -> 4; 28 with three: 28 -> 14 -> 7).

    With ``n_classes`` set, labels ``y`` in ``0 .. n_classes - 1`` condition the network and the extra
    label ``n_classes`` means "no label" (the unconditional model of classifier-free guidance).
    """

    def __init__(self, in_channels: int = 1, image_size: int = 8, *, base_channels: int = 64,
                 channel_mults: Sequence[int] = (1, 2), n_res_blocks: int = 2, attention_levels: Sequence[int] = (1,),
                 n_classes: int | None = None, dropout: float = 0.0, n_heads: int = 4) -> None:
        super().__init__()
        in_channels = check_int(in_channels, "in_channels", minimum=1)
        image_size = check_int(image_size, "image_size", minimum=1)
        base_channels = check_int(base_channels, "base_channels", minimum=1)
        mults = check_shape(channel_mults, "channel_mults")
        n_res_blocks = check_int(n_res_blocks, "n_res_blocks", minimum=1)
        levels = tuple(check_int(level, "attention_levels[i]", minimum=0, maximum=len(mults) - 1)
                       for level in attention_levels)
        self.n_classes = check_optional_int(n_classes, "n_classes", minimum=1)
        dropout = check_float(dropout, "dropout", low=0.0, high=1.0, high_inclusive=False)
        factor = 2 ** (len(mults) - 1)
        if image_size % factor:
            raise ValueError(f"image_size={image_size} must be divisible by 2**(len(channel_mults) - 1) = {factor} "
                             f"so that the down- and up-sampling paths meet (e.g. 8 with 2 levels, 28 with 3)")
        self.in_channels, self.image_size = in_channels, image_size
        emb_dim = 4 * base_channels
        self.time_embed = SinusoidalEmbedding(base_channels, emb_dim)
        self.class_embed = nn.Embedding(self.n_classes + 1, emb_dim) if self.n_classes else None
        self.conv_in = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        self.down = nn.ModuleList()
        skips = [base_channels]
        channels = base_channels
        for level, mult in enumerate(mults):
            for _ in range(n_res_blocks):
                block = nn.ModuleList([ResidualBlock(channels, base_channels * mult, emb_dim, dropout)])
                channels = base_channels * mult
                if level in levels:
                    block.append(SelfAttention2d(channels, n_heads))
                self.down.append(block)
                skips.append(channels)
            if level < len(mults) - 1:
                self.down.append(nn.ModuleList([Downsample(channels)]))
                skips.append(channels)
        self.mid = nn.ModuleList([ResidualBlock(channels, channels, emb_dim, dropout),
                                  SelfAttention2d(channels, n_heads),
                                  ResidualBlock(channels, channels, emb_dim, dropout)])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(mults))):
            for _ in range(n_res_blocks + 1):
                block = nn.ModuleList([ResidualBlock(channels + skips.pop(), base_channels * mult, emb_dim, dropout)])
                channels = base_channels * mult
                if level in levels:
                    block.append(SelfAttention2d(channels, n_heads))
                self.up.append(block)
            if level > 0:
                self.up.append(nn.ModuleList([Upsample(channels)]))
        self.norm_out = nn.GroupNorm(group_count(channels), channels)
        self.conv_out = nn.Conv2d(channels, in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def _embed(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        emb = self.time_embed(t)
        if self.class_embed is not None:
            if y is None:
                y = torch.full_like(t, self.n_classes)
            emb = emb + self.class_embed(y)
        return emb

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        expected = (self.in_channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"x has shape {tuple(x.shape)}, but this U-Net was built for images (n, "
                             f"{', '.join(map(str, expected))}); build it with the data's image_size and channels")
        if t.ndim != 1 or len(t) != len(x):
            raise ValueError(f"t must hold one timestep per image ({len(x)}), got shape {tuple(t.shape)}")
        emb = self._embed(t, y)
        h = self.conv_in(x)
        hs = [h]
        for block in self.down:
            h = _run(block, h, emb)
            hs.append(h)
        h = _run(self.mid, h, emb)
        for block in self.up:
            if isinstance(block[0], ResidualBlock):
                h = torch.cat([h, hs.pop()], dim=1)
            h = _run(block, h, emb)
        return self.conv_out(F.silu(self.norm_out(h)))


def _run(blocks: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    for layer in blocks:
        h = layer(h, emb) if isinstance(layer, ResidualBlock) else layer(h)
    return h


class MLPDenoiser(nn.Module):
    """``eps(x_t, t, y)`` for vectors ``(n, dim)`` (e.g. 2-D toy data): a residual SiLU MLP.

    The time (and class) embedding is added to the hidden state before every block.
    """

    def __init__(self, dim: int = 2, *, hidden: int = 128, n_layers: int = 3, n_classes: int | None = None) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim", minimum=1)
        hidden = check_int(hidden, "hidden", minimum=2)
        n_layers = check_int(n_layers, "n_layers", minimum=1)
        self.n_classes = check_optional_int(n_classes, "n_classes", minimum=1)
        self.time_embed = SinusoidalEmbedding(2 * (hidden // 2), hidden)
        self.class_embed = nn.Embedding(self.n_classes + 1, hidden) if self.n_classes else None
        self.inp = nn.Linear(self.dim, hidden)
        self.blocks = nn.ModuleList([nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                                   nn.Linear(hidden, hidden)) for _ in range(n_layers)])
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, self.dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x has shape {tuple(x.shape)}, but this denoiser was built for vectors (n, {self.dim})")
        emb = self.time_embed(t)
        if self.class_embed is not None:
            emb = emb + self.class_embed(torch.full_like(t, self.n_classes) if y is None else y)
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h + emb)
        return self.out(h)


# ============================================================================ guidance
def guided_noise(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022): ``eps_u + w (eps_c - eps_u)``.

    ``w = 1`` is the conditional model, ``w = 0`` the unconditional one; ``w > 1`` extrapolates
    beyond the conditional prediction, towards what the class makes more likely than the
    unconditional model does (the implicit classifier ``p(y | x_t)`` raised to the power ``w - 1``).
    """
    eps_cond, eps_uncond = _check_pair(eps_cond, eps_uncond, "eps_cond", "eps_uncond")
    scale = check_float(scale, "scale", low=0.0)
    return eps_uncond + scale * (eps_cond - eps_uncond)


class NoiseAwareClassifier(nn.Module):
    """A classifier ``p(y | x_t, t)`` of *noisy* data, for classifier guidance (Dhariwal & Nichol 2021).

    A residual SiLU MLP over the flattened ``x_t`` with the timestep embedding added before every
    block (the same body as :class:`MLPDenoiser`), ending in ``n_classes`` logits. It is trained by
    :class:`genlab.train.Trainer` on ``(x, y)`` batches in data units: :meth:`loss` maps ``x`` to
    [-1, 1], noises it to a random step with the diffusion model's schedule and takes the
    cross-entropy. Build it with the model it will guide: ``NoiseAwareClassifier.for_model(model)``.

    Args:
        data_shape: shape of one example, as the diffusion model's.
        n_classes: number of classes.
        schedule: the diffusion model's :class:`NoiseSchedule`.
        data_range: the model's ``data_range`` (``None``: data used as they are).
        hidden, n_layers: MLP sizes.
    """

    def __init__(self, data_shape: Sequence[int], n_classes: int, schedule: NoiseSchedule, *,
                 data_range: tuple[float, float] | None = (0.0, 1.0), hidden: int = 128, n_layers: int = 2) -> None:
        super().__init__()
        self.data_shape = check_shape(data_shape, "data_shape")
        self.n_classes = check_int(n_classes, "n_classes", minimum=2)
        if not isinstance(schedule, NoiseSchedule):
            raise TypeError(f"schedule must be a NoiseSchedule (the diffusion model's), got {type(schedule).__name__}")
        self.schedule = schedule
        self.data_range = _check_data_range(data_range)
        hidden = check_int(hidden, "hidden", minimum=2)
        n_layers = check_int(n_layers, "n_layers", minimum=1)
        self.time_embed = SinusoidalEmbedding(2 * (hidden // 2), hidden)
        self.inp = nn.Linear(math.prod(self.data_shape), hidden)
        self.blocks = nn.ModuleList([nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                                   nn.Linear(hidden, hidden)) for _ in range(n_layers)])
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, self.n_classes))

    @classmethod
    def for_model(cls, model: DiffusionModel, *, hidden: int = 128, n_layers: int = 2) -> NoiseAwareClassifier:
        """A classifier that shares ``model``'s data shape, classes, schedule and data range."""
        if not isinstance(model, DiffusionModel):
            raise TypeError(f"model must be a DiffusionModel, got {type(model).__name__}")
        if model.n_classes is None:
            raise ValueError("model is unconditional (n_classes=None): a classifier needs the number of classes")
        return cls(model.data_shape, model.n_classes, model.schedule, data_range=model.data_range, hidden=hidden,
                   n_layers=n_layers)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Class logits ``(n, n_classes)`` of noisy data ``x_t`` (the model's [-1, 1] units) at steps ``t``."""
        x_t = _check_tensor(x_t, "x_t")
        if tuple(x_t.shape[1:]) != self.data_shape:
            raise ValueError(f"x_t has shape {tuple(x_t.shape)}, but the classifier was built for data of shape "
                             f"(n, {', '.join(map(str, self.data_shape))})")
        t = self.schedule.check_timesteps(t, len(x_t)).to(x_t.device)
        emb = self.time_embed(t)
        h = self.inp(x_t.flatten(1))
        for block in self.blocks:
            h = h + block(h + emb)
        return self.out(h)

    def loss(self, batch: Any) -> torch.Tensor:
        """Cross-entropy on ``(x, y)`` with ``x`` (data units) noised to a uniformly drawn step."""
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ValueError("a NoiseAwareClassifier trains on (x, y) batches: pass images and their labels")
        x, y = batch
        x = as_float_tensor(x, name="x", ndim=len(self.data_shape) + 1, dtype=torch.float32)
        if tuple(x.shape[1:]) != self.data_shape:
            raise ValueError(f"x has shape {tuple(x.shape)}, but the classifier was built for data of shape "
                             f"(n, {', '.join(map(str, self.data_shape))})")
        device = self.out[1].weight.device
        x = x.to(device)
        y = check_labels(y, len(x), n_classes=self.n_classes, name="y", device=device)
        if self.data_range is not None:
            low, high = self.data_range
            x = 2.0 * (x - low) / (high - low) - 1.0
        t = torch.randint(0, self.schedule.n_steps, (len(x),), device=device)
        x_t = self.schedule.add_noise(x, torch.randn_like(x), t)
        return F.cross_entropy(self(x_t, t), y)

    def grad_log_prob(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``grad_{x_t} log p(y | x_t, t)``, the direction classifier guidance adds to the score."""
        x_t = _check_tensor(x_t, "x_t")
        y = check_labels(y, len(x_t), n_classes=self.n_classes, name="y", device=x_t.device)
        with torch.enable_grad():
            x = x_t.detach().requires_grad_(True)
            log_p = F.log_softmax(self(x, t), dim=1).gather(1, y[:, None]).sum()
            (grad,) = torch.autograd.grad(log_p, x)
        return grad


# ============================================================================ the model
class DiffusionModel(GenerativeModule):
    """A denoising diffusion model (DDPM) with DDIM sampling and classifier-free guidance.

    Args:
        data_shape: ``(C, H, W)`` for images (a :class:`UNet` denoiser) or ``(d,)`` for vectors
            (an :class:`MLPDenoiser`).
        n_classes: number of classes for a class-conditional model (labels dropped with
            probability ``p_uncond`` during training so one network is both conditional and
            unconditional: classifier-free guidance); ``None`` for an unconditional model.
        schedule: ``"cosine"`` (default) or ``"linear"``, or a ready :class:`NoiseSchedule`.
        n_steps: number of diffusion steps ``T`` of a named schedule.
        data_range: ``(low, high)`` of the data, mapped to [-1, 1] inside the model (and predictions
            of ``x_0`` are clipped to it while sampling); ``None`` uses the data as they are (no clipping).
        n_levels: for discrete data, the number of equally spaced levels in ``data_range`` (17 for
            the 8x8 digits' 0..16, 256 for 8-bit images): samples are rounded to them and
            :meth:`log_prob` bounds their probability. ``None`` for continuous data.
        base_channels, channel_mults, n_res_blocks, attention_levels, dropout: U-Net sizes.
        denoiser: ``"unet"`` (images) or ``"mlp"`` (a residual MLP over the flattened data; always used for
            vectors, and much cheaper than a U-Net on a CPU for tiny images such as the 8x8 digits).
        hidden, n_layers: MLP sizes.
        p_uncond: label-dropout probability (conditional models).
    """

    def __init__(self, data_shape: Sequence[int] = (1, 8, 8), *, n_classes: int | None = None,
                 schedule: str | NoiseSchedule = "cosine", n_steps: int = 1000,
                 data_range: tuple[float, float] | None = (0.0, 1.0), n_levels: int | None = None,
                 base_channels: int = 64, channel_mults: Sequence[int] = (1, 2), n_res_blocks: int = 2,
                 attention_levels: Sequence[int] = (1,), dropout: float = 0.0, denoiser: str = "unet",
                 hidden: int = 128, n_layers: int = 3, p_uncond: float = 0.1) -> None:
        super().__init__()
        self.data_shape = check_shape(data_shape, "data_shape")
        square = len(self.data_shape) == 3 and self.data_shape[1] == self.data_shape[2]
        if not (len(self.data_shape) == 1 or square):
            raise ValueError(f"data_shape must be (d,) for vectors or (C, S, S) for square images, "
                             f"got {self.data_shape}")
        self.n_classes = check_optional_int(n_classes, "n_classes", minimum=1)
        self.schedule = schedule if isinstance(schedule, NoiseSchedule) else make_schedule(schedule, n_steps)
        self.n_steps = self.schedule.n_steps
        self.data_range = _check_data_range(data_range)
        self.n_levels = check_optional_int(n_levels, "n_levels", minimum=2)
        if self.n_levels is not None and data_range is None:
            raise ValueError("n_levels (discrete data) needs a data_range that its levels span")
        self.p_uncond = check_probability(p_uncond, "p_uncond", open_high=True)
        self.denoiser = check_option(denoiser, "denoiser", DENOISERS)
        if len(self.data_shape) == 3 and self.denoiser == "unet":
            self.network: nn.Module = UNet(self.data_shape[0], self.data_shape[1], base_channels=base_channels,
                                           channel_mults=channel_mults, n_res_blocks=n_res_blocks,
                                           attention_levels=attention_levels, n_classes=self.n_classes,
                                           dropout=dropout)
        else:
            self.network = MLPDenoiser(math.prod(self.data_shape), hidden=hidden, n_layers=n_layers,
                                       n_classes=self.n_classes)

    def eps_network(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The raw noise prediction of the denoiser (images are flattened for an MLP denoiser)."""
        x_t = _check_tensor(x_t, "x_t")
        if tuple(x_t.shape[1:]) != self.data_shape:
            raise ValueError(f"x_t has shape {tuple(x_t.shape)}, but the model was built for data of shape "
                             f"(n, {', '.join(map(str, self.data_shape))})")
        t = self.schedule.check_timesteps(t, len(x_t)).to(x_t.device)
        if isinstance(self.network, MLPDenoiser) and x_t.ndim > 2:
            return self.network(x_t.flatten(1), t, y).view_as(x_t)
        return self.network(x_t, t, y)

    @property
    def conditional(self) -> bool:
        """True for a class-conditional model."""
        return self.n_classes is not None

    # -------------------------------------------------------------- data units
    def to_model_space(self, x: torch.Tensor) -> torch.Tensor:
        """Data units -> the model's [-1, 1] (identity without ``data_range``)."""
        x = _check_tensor(x, "x")
        if self.data_range is None:
            return x
        low, high = self.data_range
        return 2.0 * (x - low) / (high - low) - 1.0

    def to_data_space(self, x: torch.Tensor) -> torch.Tensor:
        """The model's [-1, 1] -> data units, clamped to ``data_range`` and rounded to ``n_levels``."""
        x = _check_tensor(x, "x")
        if self.data_range is None:
            return x
        low, high = self.data_range
        x = x.clamp(-1.0, 1.0)
        if self.n_levels is not None:
            x = torch.round((x + 1.0) / 2.0 * (self.n_levels - 1)) / (self.n_levels - 1) * 2.0 - 1.0
        return low + (x + 1.0) / 2.0 * (high - low)

    def check_data(self, x: Any, name: str = "x") -> torch.Tensor:
        """Validate a batch of data ``(n, *data_shape)`` in data units; returns it as float32 on the model's device."""
        if len(self.data_shape) == 3:
            tensor = as_image_tensor(x, name, channels=self.data_shape[0])
        else:
            tensor = as_float_tensor(x, name=name, ndim=2, dtype=torch.float32)
        if tuple(tensor.shape[1:]) != self.data_shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}, but the model was built for data of shape "
                             f"(n, {', '.join(map(str, self.data_shape))})")
        if self.data_range is not None:
            low, high = self.data_range
            tolerance = 1e-3 * (high - low)
            lo, hi = float(tensor.min()), float(tensor.max())
            if lo < low - tolerance or hi > high + tolerance:
                raise ValueError(f"{name} must lie in data_range [{low:g}, {high:g}], "
                                 f"got values in [{lo:.4g}, {hi:.4g}]")
        return tensor.to(self.device)

    def _check_y(self, y: Any, n: int) -> torch.Tensor | None:
        # Labels are optional: a conditional model also has its unconditional branch (classifier-free guidance).
        return check_class_labels(y, n, self.n_classes, type(self).__name__, required=False, device=self.device)

    def _split_batch(self, batch: Any) -> tuple[Any, Any]:
        if isinstance(batch, (tuple, list)):
            if len(batch) == 1:
                return batch[0], None
            if len(batch) == 2:
                return batch[0], batch[1]
            raise ValueError(f"batch must be x or (x, y), got a sequence of {len(batch)} items")
        return batch, None

    # -------------------------------------------------------------- training
    def loss(self, batch: Any) -> torch.Tensor:
        """Noise-prediction MSE ``E_{t, eps} |eps - eps_theta(x_t, t, y)|^2`` (mean over pixels) on ``batch``.

        ``batch`` is ``x`` or ``(x, y)``; a conditional model needs the labels and replaces each by
        the "no label" token with probability ``p_uncond`` while training.
        """
        x, y = self._split_batch(batch)
        x0 = self.to_model_space(self.check_data(x))
        n = len(x0)
        if self.conditional:
            if y is None:
                raise ValueError("a conditional model (n_classes set) trains on (x, y) batches; y is missing")
            y = self._check_y(y, n)
            if self.training and self.p_uncond > 0:
                drop = torch.rand(n, device=self.device) < self.p_uncond
                y = torch.where(drop, torch.full_like(y, self.n_classes), y)
        elif y is not None:
            raise ValueError("y (class labels) was given, but this model is unconditional (n_classes=None)")
        t = torch.randint(0, self.n_steps, (n,), device=self.device)
        noise = torch.randn_like(x0)
        x_t = self.schedule.add_noise(x0, noise, t)
        return F.mse_loss(self.eps_network(x_t, t, y), noise)

    # -------------------------------------------------------------- noise prediction with guidance
    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                      guidance_scale: float = 1.0) -> torch.Tensor:
        """``eps_theta(x_t, t)``; with labels, the guided ``eps_u + w (eps_c - eps_u)`` (``w = guidance_scale``).

        ``w = 1`` is the conditional model, ``w = 0`` the unconditional one, ``w > 1`` pushes samples
        towards what the class makes more likely than the unconditional model does.
        """
        guidance_scale = check_float(guidance_scale, "guidance_scale", low=0.0)
        if y is not None:
            y = self._check_y(y, len(x_t))
        if y is None or guidance_scale == 1.0:
            return self.eps_network(x_t, t, y)
        if guidance_scale == 0.0:
            return self.eps_network(x_t, t, None)
        null = torch.full_like(y, self.n_classes)
        both = self.eps_network(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([y, null]))
        eps_c, eps_u = both.chunk(2)
        return guided_noise(eps_c, eps_u, guidance_scale)

    def classifier_guided_noise(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor, eps: torch.Tensor,
                                classifier: NoiseAwareClassifier, scale: float) -> torch.Tensor:
        """Classifier guidance (Dhariwal & Nichol 2021): ``eps - s sqrt(1 - alpha_bar_t) grad log p(y | x_t)``.

        Since ``score = -eps / sqrt(1 - alpha_bar_t)``, this adds ``s * grad log p(y | x_t)`` to the
        model's score: sampling then targets ``p(x_t) p(y | x_t)^s``, sharper for ``s > 1``.
        """
        if not isinstance(classifier, NoiseAwareClassifier):
            raise TypeError(f"classifier must be a NoiseAwareClassifier, got {type(classifier).__name__}")
        scale = check_float(scale, "classifier_scale", low=0.0)
        t = self.schedule.check_timesteps(t, len(x_t))
        spread = self.schedule._gather((1 - self.schedule.alpha_bars).sqrt(), t, x_t)
        with eval_mode(classifier):
            grad = classifier.grad_log_prob(x_t, t, y)
        return eps - scale * spread * grad

    # -------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self, n_samples: int, *, random_state: Any = None, y: Any = None, steps: int | None = None,
               sampler: str = "ddpm", eta: float = 0.0, guidance_scale: float = 1.0,
               classifier: NoiseAwareClassifier | None = None, classifier_scale: float = 1.0,
               return_trajectory: bool = False) -> Any:
        """Draw ``n_samples`` samples in data units (rounded to ``n_levels`` for discrete data).

        Args:
            n_samples: how many.
            random_state: int (same samples every call), ``torch.Generator`` or ``None``.
            y: class labels (an int or one per sample) for a conditional model; ``None`` samples the
                unconditional model.
            steps: number of denoising steps (default: all ``n_steps`` for DDPM, 50 for DDIM).
            sampler: ``"ddpm"`` (ancestral) or ``"ddim"``.
            eta: DDIM's noise level (0: deterministic; 1: DDPM's variance).
            guidance_scale: classifier-free guidance weight ``w >= 0`` (needs ``y``; 1: no guidance).
            classifier: a :class:`NoiseAwareClassifier` for classifier guidance (needs ``y``); ``None``: off.
            classifier_scale: its weight ``s >= 0`` (the gradient of ``log p(y | x_t)`` is scaled by ``s``).
            return_trajectory: also return the visited states (in the model's [-1, 1] units).
        """
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        check_option(sampler, "sampler", SAMPLERS)
        guidance_scale = check_float(guidance_scale, "guidance_scale", low=0.0)
        labels = self._check_y(y, n_samples)
        if labels is None and guidance_scale != 1.0:
            raise ValueError(f"guidance_scale={guidance_scale:g} needs class labels y (guidance pushes samples "
                             "towards a class); pass y=... or leave guidance_scale=1")
        classifier_scale = check_float(classifier_scale, "classifier_scale", low=0.0)
        if classifier is not None:
            if not isinstance(classifier, NoiseAwareClassifier):
                raise TypeError(f"classifier must be a NoiseAwareClassifier, got {type(classifier).__name__}")
            if labels is None:
                raise ValueError("classifier guidance needs class labels y: pass y=...")
            if classifier.data_shape != self.data_shape or classifier.n_classes != self.n_classes:
                raise ValueError(f"classifier was built for data {classifier.data_shape} with {classifier.n_classes} "
                                 f"classes, the model for {self.data_shape} with {self.n_classes}")
        self.check_fitted("sample")

        def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            eps = self.predict_noise(x, t, labels, guidance_scale)
            if classifier is None or classifier_scale == 0.0:
                return eps
            return self.classifier_guided_noise(x, t, labels, eps, classifier, classifier_scale)

        with eval_mode(self):
            out = sample_loop(eps_fn, self.schedule,
                              (n_samples, *self.data_shape), sampler=sampler, steps=steps, eta=eta,
                              clip=self.data_range is not None, random_state=random_state, device=self.device,
                              return_trajectory=return_trajectory)
        if return_trajectory:
            return self.to_data_space(out[0]), out[1]
        return self.to_data_space(out)

    # -------------------------------------------------------------- the variational bound
    @torch.no_grad()
    def log_prob(self, x: Any, y: Any = None, *, n_timesteps: int | None = None, random_state: Any = 0,
                 batch_size: int = 256) -> torch.Tensor:
        """A variational lower bound (ELBO) on ``log P(x)`` of discrete data, nats per example.

        ``log P(x) >= -[L_T + sum_{t=2}^T L_{t-1} + L_0]`` (Ho et al. 2020, eq. 5), with
        ``L_T = KL(q(x_T | x_0) || N(0, I))``, ``L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))``
        (Gaussians with the posterior variance ``beta_tilde_t``, the same model as the sampler,
        predictions of ``x_0`` clipped) and ``L_0 = -log p(x_0 | x_1)``, a Gaussian of variance ``beta_1``
        integrated over each level's bin (the ``n_levels`` levels of ``data_range``), which makes it a
        bound on the probability *mass* of the discrete data.

        The sum over ``t`` is estimated by Monte Carlo: ``n_timesteps=None`` visits every step once
        per example; an integer ``K`` draws one timestep from each of ``K`` equal strata and scales
        (unbiased for the sum, cheaper, noisier). Noise comes from ``random_state``.

        Raises:
            ValueError: a model without ``n_levels`` (continuous data have no probability mass here).
        """
        if self.n_levels is None:
            raise ValueError("log_prob bounds the probability of discrete data: build the model with n_levels "
                             "(e.g. 17 for the 8x8 digits, 256 for 8-bit images)")
        x = self.check_data(x)
        labels = self._check_y(y, len(x))
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        generator = check_random_state(random_state)
        n_timesteps = check_optional_int(n_timesteps, "n_timesteps", minimum=1)
        self.check_fitted("log_prob")
        total_steps = self.n_steps - 1  # KL terms live at indices 1 .. T-1
        strata = total_steps if n_timesteps is None else min(n_timesteps, total_steps)
        with eval_mode(self):
            out = [self._negative_elbo(x[s:s + batch_size], None if labels is None else labels[s:s + batch_size],
                                       strata, generator) for s in range(0, len(x), batch_size)]
        return -torch.cat(out)

    def _negative_elbo(self, x: torch.Tensor, y: torch.Tensor | None, strata: int,
                       generator: torch.Generator) -> torch.Tensor:
        sched = self.schedule
        x0 = self.to_model_space(x).double()
        n = len(x0)
        dims = tuple(range(1, x0.ndim))
        # L_T: KL(N(sqrt(abar_T) x0, 1 - abar_T) || N(0, 1)), summed over dimensions.
        abar_t = float(sched.alpha_bars[-1])
        prior = 0.5 * (abar_t * (x0**2 - 1) - math.log(1 - abar_t)).sum(dims)
        # KL terms at indices 1 .. T-1, one stratified draw per stratum.
        edges = torch.linspace(1, self.n_steps, strata + 1, dtype=torch.float64)
        kl_sum = torch.zeros(n, dtype=torch.float64, device=x0.device)
        for k in range(strata):
            lo, hi = int(edges[k].round()), int(edges[k + 1].round())
            if hi <= lo:
                continue
            t = torch.randint(lo, hi, (n,), generator=generator).to(self.device)
            x0_hat = self._predict_x0(x0, t, y, generator)
            coef = sched._gather(sched.posterior_mean_coef_x0, t, x0)
            variance = sched._gather(sched.posterior_variance, t, x0)
            kl_sum += (hi - lo) * (coef**2 * (x0 - x0_hat) ** 2 / (2 * variance)).sum(dims)
        # L_0: discretised Gaussian decoder at index 0 (mean: the clipped prediction of x0, variance beta_1).
        t0 = torch.zeros(n, dtype=torch.long, device=self.device)
        mean = self._predict_x0(x0, t0, y, generator)
        std = math.sqrt(float(sched.betas[0]))
        half = 1.0 / (self.n_levels - 1)
        upper = torch.where(x0 > 1 - 1e-6, torch.full_like(x0, math.inf), (x0 + half - mean) / std)
        lower = torch.where(x0 < -1 + 1e-6, torch.full_like(x0, -math.inf), (x0 - half - mean) / std)
        log_mass = _log_normal_interval(lower, upper)
        return prior + kl_sum - log_mass.sum(dims)

    def _predict_x0(self, x0: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None,
                    generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(x0.shape, generator=generator, dtype=torch.float64).to(self.device)
        x_t = self.schedule.add_noise(x0, noise, t)
        eps = self.eps_network(x_t.float(), t, y).double()
        return self.schedule.predict_x0(x_t, t, eps).clamp(-1.0, 1.0)


def _check_data_range(data_range: Any) -> tuple[float, float] | None:
    """``None`` (data already in the model's units) or ``(low, high)`` floats with ``low < high``."""
    if data_range is None:
        return None
    low, high = (check_float(v, f"data_range[{i}]") for i, v in enumerate(_check_pair_like(data_range)))
    if not low < high:
        raise ValueError(f"data_range must be (low, high) with low < high, got {data_range}")
    return (low, high)


def _check_pair_like(value: Any) -> tuple[Any, Any]:
    """``value`` as a pair ``(low, high)``; raises naming ``data_range`` otherwise."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"data_range must be a pair (low, high), got {value!r}")
    return value[0], value[1]


def _log_normal_interval(lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """``log(Phi(upper) - Phi(lower))`` for standard-normal bounds, stable in both tails."""
    # Work in the tail where the mass is computed accurately: mirror intervals that lie right of 0.
    flip = (lower + upper) > 0
    a = torch.where(flip, -upper, lower)
    b = torch.where(flip, -lower, upper)
    log_b, log_a = torch.special.log_ndtr(b), torch.special.log_ndtr(a)
    return log_b + torch.log(-torch.expm1((log_a - log_b).clamp(max=-1e-30)))


# ============================================================================ exercise support
def check_add_noise_answer(answer: Any, *, random_state: int = 0) -> str | None:
    """Compare a learner's ``add_noise(x0, noise, t, alpha_bars)`` with :meth:`NoiseSchedule.add_noise`.

    Returns ``None`` if it agrees, else a diagnosis naming the likely mistake (``alpha`` instead of
    ``alpha_bar``, a missing square root, an index off by one, swapped coefficients).
    """
    if not callable(answer):
        return "answer must be a function add_noise(x0, noise, t, alpha_bars) -> x_t"
    generator = torch.Generator().manual_seed(check_int(random_state, "random_state", minimum=0))
    schedule = linear_schedule(50)
    x0 = torch.randn(6, 1, 4, 4, generator=generator, dtype=torch.float64)
    noise = torch.randn(6, 1, 4, 4, generator=generator, dtype=torch.float64)
    t = torch.tensor([0, 3, 10, 25, 40, 48])
    expected = schedule.add_noise(x0, noise, t)
    try:
        got = torch.as_tensor(answer(x0.clone(), noise.clone(), t.clone(), schedule.alpha_bars.clone()))
    except Exception as err:  # the learner's code may fail in any way
        return f"add_noise(x0, noise, t, alpha_bars) raised {err!r}"
    if got.shape != expected.shape:
        return f"x_t must have the shape of x0, {tuple(expected.shape)}, got {tuple(got.shape)}"
    if torch.allclose(got.double(), expected, atol=1e-8):
        return None

    def variant(abar: torch.Tensor, *, root: bool = True, shift: int = 0) -> torch.Tensor:
        a = abar[(t + shift).clamp(0, len(abar) - 1)].reshape(-1, 1, 1, 1)
        return (a.sqrt() * x0 + (1 - a).sqrt() * noise) if root else (a * x0 + (1 - a) * noise)

    got = got.double()
    diagnoses = [
        (variant(schedule.alphas), "you used alpha_t = 1 - beta_t; the closed form needs the cumulative product "
                                   "alpha_bar_t = alpha_1 ... alpha_t (alpha_bars[t])"),
        (variant(schedule.alpha_bars, root=False), "the coefficients are square roots: sqrt(alpha_bar_t) * x0 + "
                                                   "sqrt(1 - alpha_bar_t) * noise (those are standard deviations)"),
        (variant(schedule.alpha_bars, shift=1), "index off by one: timesteps are 0-based, use alpha_bars[t]"),
        (variant(schedule.alpha_bars, shift=-1), "index off by one: timesteps are 0-based, use alpha_bars[t]"),
    ]
    for value, message in diagnoses:
        if torch.allclose(got, value, atol=1e-8):
            return message
    a = schedule.alpha_bars[t].reshape(-1, 1, 1, 1)
    if torch.allclose(got, (1 - a).sqrt() * x0 + a.sqrt() * noise, atol=1e-8):
        return "the coefficients are swapped: the signal x0 gets sqrt(alpha_bar_t), the noise sqrt(1 - alpha_bar_t)"
    return ("x_t is wrong: x_t = sqrt(alpha_bar_t) * x0 + sqrt(1 - alpha_bar_t) * noise, with alpha_bar_t = "
            "alpha_bars[t] broadcast over each example's pixels")


# ============================================================================ recipes and the leaderboard row
#: Recipes measured in ``benchmarks/diffusion.py`` and the leaderboard (keyword arguments of DiffusionModel plus
#: training settings), per dataset: a class-conditional U-Net trained with EMA weights. Both are sized for a
#: 2-core CPU (MNIST-5k 28x28: about 1.5 hours to train and score on one thread); chapter 11's full profile
#: trains the larger GPU-sized U-Net (32 channels x (1, 2, 2) with attention, 1000 steps).
RECIPES: dict[str, dict[str, Any]] = {
    "digits": {"model": dict(n_steps=200, base_channels=16, channel_mults=(1, 2), n_res_blocks=1,
                             attention_levels=(), data_range=(0.0, 16.0), n_levels=17, dropout=0.1),
               # 120 epochs, as chapter 11. A trade-off, measured with benchmarks/diffusion.py (seed 0, before
               # dropout): at 300 epochs DDPM samples sit closer to the test set (FID 8.23 vs 9.07, KID 0.3 vs 3.6
               # standard errors above the floor) but copy training digits 4x as often (10.7% vs 2.5%; real vs
               # real 1.8%). Dropout 0.1 (as Ho et al. 2020 on CIFAR-10) mostly moves both the right way at 120 epochs,
               # seeds 0/1/2: FID 1.11/1.10/1.17x the floor (1.20/1.12/1.19x without), KID 2.2/3.0/2.5 standard
               # errors above it (3.4/2.7/2.8), copies 1.1/1.1/1.6% (2.5/1.1/2.0%).
               "train": dict(lr=3e-3, batch_size=128, ema_decay=0.995), "epochs": 120},
    "mnist": {"model": dict(n_steps=200, base_channels=16, channel_mults=(1, 2), n_res_blocks=1,
                            attention_levels=(), data_range=(0.0, 1.0), n_levels=256),
              # 240 epochs (benchmarks/leaderboard.py, seed 0, one CPU thread): FID 5.61 against the real-vs-real
              # floor's 4.54 (1.24x), precision 0.80, recall 0.91, 0.3% copies (floor 1.6%). At 120 epochs the
              # samples reached only 3.4x the floor (15.4 vs 4.6), with high recall but low precision.
              "train": dict(lr=2e-3, batch_size=128, ema_decay=0.999), "epochs": 240},
}


def train_recipe(dataset: str, images: torch.Tensor, labels: torch.Tensor, *, epochs: int | None = None,
                 seed: int = 0, device: torch.device | str | None = None, progress: bool = False) -> DiffusionModel:
    """Train :data:`RECIPES` ``[dataset]`` on ``(images, labels)``; returns the EMA model (eval mode)."""
    from .device import seed_everything
    from .train import Trainer

    recipe = RECIPES[check_option(dataset, "dataset", tuple(RECIPES))]
    epochs = recipe["epochs"] if epochs is None else check_int(epochs, "epochs", minimum=1)
    seed_everything(seed)
    model = DiffusionModel(tuple(images.shape[1:]), n_classes=10, **recipe["model"])
    trainer = Trainer(model, **recipe["train"], device=device, progress=progress, seed=seed)
    trainer.fit((images, labels), epochs=epochs)
    return trainer.ema.model.eval()


def leaderboard_build(data: Any, cfg: Any, seed: int, device: torch.device) -> tuple[float | None, torch.Tensor]:
    """The leaderboard row (:mod:`genlab.results.leaderboard`): test NLL bound and one sample per test image.

    Samples are class-conditional (DDPM, guidance scale 1) with balanced labels ``i mod 10``; the NLL
    is the variational bound of :meth:`DiffusionModel.log_prob` (unconditional branch, 50 strata).
    """
    from .data import load_digits, load_mnist

    check_option(getattr(data, "name", None), "data.name (the leaderboard dataset)", tuple(RECIPES))
    _, labels = (load_digits if data.name == "digits" else load_mnist)("train")
    images = data.levels["train"] * (1.0 if data.name == "digits" else 1.0 / 255.0)
    model = train_recipe(data.name, images, labels, seed=seed, device=device)
    test = data.levels["test"] * (1.0 if data.name == "digits" else 1.0 / 255.0)
    nll = float(-model.log_prob(test, n_timesteps=50, random_state=seed).mean())
    n = len(test)
    samples = model.sample(n, y=torch.arange(n) % 10, random_state=seed)
    return nll, samples.cpu()
