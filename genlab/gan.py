"""Generative adversarial networks: generators, discriminators, the losses of the game, and the model.

A GAN (Goodfellow et al. 2014) pairs a generator ``G(z)`` that maps noise to data with a
discriminator ``D(x)`` that tells real from generated data; the two are trained in alternation.
This module gives

- builders: :class:`Generator` / :class:`Discriminator` (an MLP for vectors, DCGAN-style convs for
  8x8 and 28x28 images, each optionally class-conditional; the generator optionally with
  self-attention), :class:`StyleGenerator` (a mapping network and per-layer styles through
  :class:`~genlab.layers.AdaIN`, for style mixing), :class:`ProgressiveGenerator` with
  :class:`FadeInSchedule` (progressive growing from 4x4 to 8x8);
- the losses: :func:`discriminator_loss` / :func:`generator_loss` for ``"minimax"``,
  ``"non_saturating"``, ``"hinge"`` and ``"wasserstein"``, and :func:`gradient_penalty` (WGAN-GP);
- :class:`GAN`, trained by :class:`genlab.train.Trainer` through its ``configure_optimizers`` /
  ``training_step`` (two optimisers, alternating updates, ``n_critic`` critic steps per generator
  step, optional weight clipping), and :class:`CycleGAN` for unpaired translation.

A GAN defines no density, so :class:`GAN` has no ``log_prob``: judge it with the sample-based
metrics of :mod:`genlab.metrics` (FID, KID, precision/recall, ...). :func:`latent_attribution` and
:func:`latent_traversal` ask which latent dimensions control a feature of the generated images.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import GenerativeModule
from .exercises import attempted_function
from .layers import AdaIN, SelfAttention2d, apply_spectral_norm, eval_mode, fade_in, mlp
from .train import Callback
from .validation import (
    as_float_tensor,
    check_bool,
    check_class_labels,
    check_float,
    check_int,
    check_option,
    check_positive_float,
    check_random_state,
)

__all__ = ["LOSSES", "Generator", "Discriminator", "StyleGenerator", "ProgressiveGenerator", "FadeInSchedule",
           "latent_attribution", "latent_traversal", "discriminator_loss", "generator_loss",
           "gradient_penalty", "GAN", "CycleGAN", "mode_coverage", "check_gradient_penalty",
           "gradient_penalty_exercise"]

#: The adversarial losses genlab implements.
LOSSES = ("minimax", "non_saturating", "hinge", "wasserstein")


# ============================================================================ shapes and checks
def _check_shape(shape: Any, name: str) -> tuple[int, ...]:
    """A data shape: ``d`` or ``(d,)`` for vectors, ``(1, S, S)`` with S in {8, 28} for images."""
    if isinstance(shape, (int,)) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list, torch.Size)) or len(shape) not in (1, 3):
        raise ValueError(f"{name} must be an int d (vectors) or (1, S, S) (images), got {shape!r}")
    shape = tuple(check_int(s, f"{name}[{i}]", minimum=1) for i, s in enumerate(shape))
    if len(shape) == 3 and (shape[0] != 1 or shape[1] != shape[2] or shape[1] not in (8, 28)):
        raise ValueError(f"{name}: conv networks are built for one-channel 8x8 or 28x28 images, got {shape}")
    return shape


def _check_sizes(sizes: Any, name: str) -> list[int]:
    if isinstance(sizes, (int, str)) or not isinstance(sizes, Sequence) or not sizes:
        raise ValueError(f"{name} must be a non-empty sequence of layer widths, got {sizes!r}")
    return [check_int(s, f"{name}[{i}]", minimum=1) for i, s in enumerate(sizes)]


def _check_n_classes(n_classes: Any) -> int | None:
    return None if n_classes is None else check_int(n_classes, "n_classes", minimum=2)


def _check_input(x: Any, shape: tuple[int, ...], name: str, who: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(x).__name__}")
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape:
        raise ValueError(f"{who} takes {name} of shape (n, {', '.join(map(str, shape))}), got {tuple(x.shape)}")
    return x


def _labels(module: nn.Module, y: Any, n: int, device: torch.device) -> torch.Tensor | None:
    """Validate ``y`` for a (conditional or not) network: labels needed exactly when it is conditional."""
    return check_class_labels(y, n, module.n_classes, type(module).__name__, device=device)


# ============================================================================ networks
class Generator(nn.Module):
    """``G(z, y=None)``: noise ``(n, latent_dim)`` to data ``(n, *output_shape)``.

    ``output_shape`` ``d`` gives an MLP; ``(1, 8, 8)`` or ``(1, 28, 28)`` a DCGAN-style generator
    (Radford et al. 2016): a linear stem to ``2*channels`` maps of side 2 (7), then two
    transposed convolutions with batch norm and ReLU doubling the side twice.
    With ``n_classes`` the generator is conditional (Mirza & Osindero 2014): a learned class
    embedding is concatenated to ``z``. ``attention=True`` (images only) adds a self-attention
    block (:class:`~genlab.layers.SelfAttention2d`, one head, residual) after the first upsampling,
    as in SAGAN (Zhang et al. 2019): every pixel of those maps can then draw on every other.

    Args:
        latent_dim: size of the noise.
        output_shape: ``d`` or ``(1, S, S)``.
        hidden: MLP widths (vectors only).
        channels: conv width (images only).
        n_classes: number of classes for a conditional generator (None: unconditional).
        embed_dim: size of the class embedding.
        output_activation: ``"tanh"`` (data scaled to [-1, 1]) or None.
        attention: add a self-attention block after the first upsampling (images only).
    """

    def __init__(self, latent_dim: int, output_shape: int | Sequence[int], *, hidden: Sequence[int] = (128, 128),
                 channels: int = 32, n_classes: int | None = None, embed_dim: int = 16,
                 output_activation: str | None = None, attention: bool = False) -> None:
        super().__init__()
        self.latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
        self.output_shape = _check_shape(output_shape, "output_shape")
        self.n_classes = _check_n_classes(n_classes)
        check_option(output_activation, "output_activation", (None, "tanh"))
        embed_dim = check_int(embed_dim, "embed_dim", minimum=1)
        self.attention = check_bool(attention, "attention")
        if self.attention and len(self.output_shape) == 1:
            raise ValueError("attention=True needs images (output_shape (1, S, S)): vectors have no pixels to attend")
        self.embedding = nn.Embedding(self.n_classes, embed_dim) if self.n_classes else None
        n_in = self.latent_dim + (embed_dim if self.n_classes else 0)
        if len(self.output_shape) == 1:
            self.net = mlp([n_in, *_check_sizes(hidden, "hidden"), self.output_shape[0]], activation="relu",
                           final_activation=output_activation)
        else:
            c = check_int(channels, "channels", minimum=1)
            side = 7 if self.output_shape[1] == 28 else 2
            self.net = nn.Sequential(
                nn.Linear(n_in, 2 * c * side * side), nn.Unflatten(1, (2 * c, side, side)),
                nn.BatchNorm2d(2 * c), nn.ReLU(),
                nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                *([SelfAttention2d(c, n_heads=1)] if self.attention else []),
                nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1),
                *([nn.Tanh()] if output_activation == "tanh" else []))

    def forward(self, z: torch.Tensor, y: Any = None) -> torch.Tensor:
        z = _check_input(z, (self.latent_dim,), "z", type(self).__name__)
        labels = _labels(self, y, z.shape[0], z.device)
        if labels is not None:
            z = torch.cat([z, self.embedding(labels)], 1)
        return self.net(z)


class Discriminator(nn.Module):
    """``D(x, y=None)``: data ``(n, *input_shape)`` to one real-valued score (a logit) per example.

    ``input_shape`` ``d`` gives an MLP with LeakyReLU; ``(1, 8, 8)`` or ``(1, 28, 28)`` two strided
    convolutions with LeakyReLU (no batch norm, so that the gradient penalty, which needs each
    example's score to depend on that example alone, applies). With ``n_classes`` it is a projection
    discriminator: the score adds ``<embed(y), features(x)>``. ``spectral_norm=True`` puts spectral
    normalisation (Miyato et al. 2018) on every layer.
    """

    def __init__(self, input_shape: int | Sequence[int], *, hidden: Sequence[int] = (128, 128), channels: int = 32,
                 n_classes: int | None = None, spectral_norm: bool = False) -> None:
        super().__init__()
        self.input_shape = _check_shape(input_shape, "input_shape")
        self.n_classes = _check_n_classes(n_classes)
        if len(self.input_shape) == 1:
            sizes = _check_sizes(hidden, "hidden")
            self.features = nn.Sequential(mlp([self.input_shape[0], *sizes], activation="leaky_relu"),
                                          nn.LeakyReLU(0.2))
            n_features = sizes[-1]
        else:
            c = check_int(channels, "channels", minimum=1)
            side = 7 if self.input_shape[1] == 28 else 2
            self.features = nn.Sequential(
                nn.Conv2d(1, c, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Flatten())
            n_features = 2 * c * side * side
        self.head = nn.Linear(n_features, 1)
        self.embedding = nn.Embedding(self.n_classes, n_features) if self.n_classes else None
        if self.embedding is not None:
            nn.init.normal_(self.embedding.weight, std=0.02)
        self.spectral_norm = bool(spectral_norm)
        if self.spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: torch.Tensor, y: Any = None) -> torch.Tensor:
        x = _check_input(x, self.input_shape, "x", type(self).__name__)
        labels = _labels(self, y, x.shape[0], x.device)
        h = self.features(x)
        score = self.head(h).squeeze(1)
        if labels is not None:
            score = score + (self.embedding(labels) * h).sum(1)
        return score


class StyleGenerator(nn.Module):
    """A miniature StyleGAN generator (Karras et al. 2019) for 8x8 or 28x28 images.

    A mapping network turns ``z`` into a style ``w``; the synthesis network starts from a learned
    constant and each of its ``n_styles = 3`` blocks is modulated by ``w`` through adaptive
    instance norm. Block 0 acts on the coarsest maps (side 2 or 7), block 2 on full resolution.
    **Style mixing**: ``forward(z, mix_z=z2, mix_from=k)`` uses ``w(z)`` for blocks ``< k`` and
    ``w(z2)`` from block ``k`` on. Same interface as :class:`Generator` (``latent_dim``,
    ``output_shape``, ``n_classes``), so :class:`GAN` trains it.
    """

    n_styles = 3

    def __init__(self, latent_dim: int, output_shape: Sequence[int] = (1, 8, 8), *, w_dim: int = 32,
                 channels: int = 32, mapping_layers: int = 3, output_activation: str | None = "tanh") -> None:
        super().__init__()
        self.latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
        self.output_shape = _check_shape(output_shape, "output_shape")
        if len(self.output_shape) != 3:
            raise ValueError(f"StyleGenerator makes images (1, S, S), got output_shape {self.output_shape}")
        self.n_classes = None
        w_dim = check_int(w_dim, "w_dim", minimum=1)
        c = check_int(channels, "channels", minimum=1)
        n_map = check_int(mapping_layers, "mapping_layers", minimum=1)
        check_option(output_activation, "output_activation", (None, "tanh"))
        self.mapping = mlp([self.latent_dim] + [w_dim] * n_map, activation="leaky_relu")
        side = 7 if self.output_shape[1] == 28 else 2
        self.const = nn.Parameter(torch.randn(1, 2 * c, side, side))
        self.ada = nn.ModuleList([AdaIN(2 * c, w_dim), AdaIN(c, w_dim), AdaIN(c, w_dim)])
        self.up1 = nn.Sequential(nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2))
        self.up2 = nn.Sequential(nn.ConvTranspose2d(c, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2))
        self.to_image = nn.Sequential(nn.Conv2d(c, 1, 3, padding=1), *([nn.Tanh()] if output_activation else []))

    def styles(self, z: torch.Tensor) -> torch.Tensor:
        """The mapping network: ``w = f(z)``, shape ``(n, w_dim)``."""
        return self.mapping(_check_input(z, (self.latent_dim,), "z", type(self).__name__))

    def forward(self, z: torch.Tensor, y: Any = None, *, mix_z: torch.Tensor | None = None,
                mix_from: int | None = None) -> torch.Tensor:
        if y is not None:
            raise ValueError("y was given, but StyleGenerator is not conditional")
        w = self.styles(z)
        ws = [w] * self.n_styles
        if mix_z is not None or mix_from is not None:
            if mix_z is None or mix_from is None:
                raise ValueError("style mixing needs both mix_z and mix_from")
            k = check_int(mix_from, "mix_from", minimum=0, maximum=self.n_styles)
            w2 = self.styles(mix_z)
            if w2.shape != w.shape:
                raise ValueError(f"mix_z must have the shape of z {tuple(z.shape)}, got {tuple(mix_z.shape)}")
            ws = [w if i < k else w2 for i in range(self.n_styles)]
        h = self.ada[0](self.const.expand(z.shape[0], -1, -1, -1), ws[0])
        h = self.ada[1](self.up1(h), ws[1])
        h = self.ada[2](self.up2(h), ws[2])
        return self.to_image(h)


class ProgressiveGenerator(nn.Module):
    """A generator that grows from 4x4 to 8x8 images (progressive growing, Karras et al. 2018).

    A stem maps ``z`` to 4x4 feature maps; ``to_image_4`` (a 1x1 conv) reads a 4x4 image from them.
    :meth:`grow` adds the 8x8 stage (nearest upsampling, two 3x3 convs, ``to_image_8``) and blends it
    in with :func:`genlab.layers.fade_in`: ``alpha * new + (1 - alpha) * upsample(old)``, where
    ``alpha`` (a buffer, so the Trainer's EMA copy follows it) goes from 0 to 1 during the fade-in
    (:class:`FadeInSchedule`). The output is always ``(n, 1, 8, 8)``: at the 4x4 stage each pixel is
    a 2x2 block, and :meth:`prepare_real` shows the discriminator the real images at the same
    resolution and with the same blend (the GAN calls it on every real batch), so a single 8x8
    :class:`Discriminator` serves every stage. Same interface as :class:`Generator`
    (``latent_dim``, ``output_shape``, ``n_classes = None``), so :class:`GAN` trains it.

    Args:
        latent_dim: size of the noise.
        channels: width of the feature maps.
        grown: start at the 8x8 stage with ``alpha = 1`` (the same network trained without growing).
        output_activation: ``"tanh"`` (data scaled to [-1, 1]) or None.
    """

    def __init__(self, latent_dim: int, *, channels: int = 32, grown: bool = False,
                 output_activation: str | None = "tanh") -> None:
        super().__init__()
        self.latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
        self.output_shape = (1, 8, 8)
        self.n_classes = None
        c = check_int(channels, "channels", minimum=1)
        grown = check_bool(grown, "grown")
        check_option(output_activation, "output_activation", (None, "tanh"))
        self.stem = nn.Sequential(nn.Linear(self.latent_dim, c * 16), nn.Unflatten(1, (c, 4, 4)), nn.LeakyReLU(0.2),
                                  nn.Conv2d(c, c, 3, padding=1), nn.LeakyReLU(0.2))
        self.to_image_4 = nn.Conv2d(c, 1, 1)
        self.block_8 = nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(c, c, 3, padding=1),
                                     nn.LeakyReLU(0.2), nn.Conv2d(c, c, 3, padding=1), nn.LeakyReLU(0.2))
        self.to_image_8 = nn.Conv2d(c, 1, 1)
        self.output = nn.Tanh() if output_activation == "tanh" else nn.Identity()
        self.register_buffer("resolution", torch.tensor(8 if grown else 4))
        self.register_buffer("alpha", torch.tensor(1.0))

    def grow(self) -> None:
        """Enter the 8x8 stage with ``alpha = 0`` (the output is unchanged until ``alpha`` rises)."""
        if int(self.resolution) == 8:
            raise ValueError("the generator has already grown to 8x8")
        self.resolution.fill_(8)
        self.alpha.fill_(0.0)

    def set_alpha(self, alpha: float) -> None:
        """Set the fade-in weight of the 8x8 stage (in [0, 1]; only after :meth:`grow`)."""
        alpha = check_float(alpha, "alpha", low=0.0, high=1.0)
        if int(self.resolution) != 8:
            raise ValueError("alpha blends the 8x8 stage in: call grow() first")
        self.alpha.fill_(alpha)

    def prepare_real(self, x: torch.Tensor) -> torch.Tensor:
        """Real images ``(n, 1, 8, 8)`` as the discriminator should see them at the current stage."""
        x = _check_input(x, self.output_shape, "x", type(self).__name__)
        low = F.avg_pool2d(x, 2)
        if int(self.resolution) == 4:
            return F.interpolate(low, scale_factor=2.0, mode="nearest")
        return fade_in(low, x, self.alpha)

    def forward(self, z: torch.Tensor, y: Any = None) -> torch.Tensor:
        if y is not None:
            raise ValueError("y was given, but ProgressiveGenerator is not conditional")
        h = self.stem(_check_input(z, (self.latent_dim,), "z", type(self).__name__))
        low = self.to_image_4(h)
        if int(self.resolution) == 4:
            return self.output(F.interpolate(low, scale_factor=2.0, mode="nearest"))
        return self.output(fade_in(low, self.to_image_8(self.block_8(h)), self.alpha))


class FadeInSchedule(Callback):
    """Grow a :class:`ProgressiveGenerator` at the start of a fit and raise ``alpha`` linearly to 1.

    ``alpha = min(1, steps_done / steps)`` after each training step, so the new 8x8 stage is blended
    in over ``steps`` steps and then trained alone. ``generator`` is the GAN's generator.
    """

    def __init__(self, generator: nn.Module, steps: int) -> None:
        if not isinstance(generator, ProgressiveGenerator):
            raise TypeError(f"generator must be a ProgressiveGenerator, got {type(generator).__name__}")
        self.generator = generator
        self.steps = check_int(steps, "steps", minimum=1)
        self.done = 0

    def on_fit_start(self, trainer) -> None:
        # A later fit with the same schedule continues the fade-in where it stopped.
        if int(self.generator.resolution) == 4:
            self.generator.grow()

    def on_batch_end(self, trainer, loss: float) -> None:
        self.done += 1
        self.generator.set_alpha(min(1.0, self.done / self.steps))


# ============================================================================ losses
def _check_logits(logits: Any, name: str) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor of discriminator scores, got {type(logits).__name__}")
    if logits.ndim == 2 and logits.shape[1] == 1:
        logits = logits.squeeze(1)
    if logits.ndim != 1 or logits.shape[0] == 0:
        raise ValueError(f"{name} must hold one score per example, shape (n,), got {tuple(logits.shape)}")
    return logits


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       loss: str = "non_saturating") -> torch.Tensor:
    """The discriminator's (critic's) loss on real and generated scores, averaged over each batch.

    - ``"minimax"`` / ``"non_saturating"``: binary cross-entropy, ``-log D(x) - log(1 - D(G(z)))``
      with ``D = sigmoid(score)`` (the two differ only in the generator's loss);
    - ``"hinge"``: ``relu(1 - D(x)) + relu(1 + D(G(z)))``;
    - ``"wasserstein"``: ``D(G(z)) - D(x)``, minus the critic's estimate of the Wasserstein-1
      distance (Arjovsky et al. 2017); add :func:`gradient_penalty` or clip the weights.
    """
    check_option(loss, "loss", LOSSES)
    real, fake = _check_logits(real_logits, "real_logits"), _check_logits(fake_logits, "fake_logits")
    if loss in ("minimax", "non_saturating"):
        # softplus(-s) = -log sigmoid(s) and softplus(s) = -log(1 - sigmoid(s)), stable for any s.
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if loss == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return fake.mean() - real.mean()


def generator_loss(fake_logits: torch.Tensor, loss: str = "non_saturating") -> torch.Tensor:
    """The generator's loss on the scores of its samples, averaged over the batch.

    - ``"minimax"``: ``log(1 - D(G(z)))``, the game's own objective; its gradient vanishes when
      the discriminator confidently rejects the samples (early in training);
    - ``"non_saturating"``: ``-log D(G(z))`` (Goodfellow et al. 2014's practical fix);
    - ``"hinge"`` and ``"wasserstein"``: ``-D(G(z))``.
    """
    check_option(loss, "loss", LOSSES)
    fake = _check_logits(fake_logits, "fake_logits")
    if loss == "minimax":
        return -F.softplus(fake).mean()
    if loss == "non_saturating":
        return F.softplus(-fake).mean()
    return -fake.mean()


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, y: Any = None, *,
                     eps: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP's penalty (Gulrajani et al. 2017): ``mean((||grad_x D(x_hat)||_2 - 1)^2)``.

    ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U(0, 1)`` **per example** (drawn from
    torch's global generator unless given as ``eps``, shape ``(n,)``); the norm is taken over all
    of an example's dimensions; the gradient keeps its graph (``create_graph=True``) so the penalty
    itself can be differentiated with respect to the critic's weights.

    Raises:
        ValueError: if ``real`` and ``fake`` differ in shape, or ``eps`` has the wrong shape.
    """
    if not isinstance(critic, nn.Module):
        raise TypeError(f"critic must be a torch.nn.Module, got {type(critic).__name__}")
    for name, value in (("real", real), ("fake", fake)):
        if not isinstance(value, torch.Tensor) or value.ndim < 2 or value.shape[0] == 0:
            raise ValueError(f"{name} must be a non-empty batch tensor (n, ...), got "
                             f"{tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__}")
    if real.shape != fake.shape:
        raise ValueError(f"the gradient penalty interpolates real and fake pairwise: fake must have the shape of "
                         f"real {tuple(real.shape)}, got {tuple(fake.shape)}")
    n = real.shape[0]
    if eps is None:
        eps = torch.rand(n, device=real.device, dtype=real.dtype)
    elif not isinstance(eps, torch.Tensor) or tuple(eps.shape) != (n,):
        raise ValueError(f"eps must be a tensor of shape ({n},), one weight per example, got "
                         f"{tuple(eps.shape) if isinstance(eps, torch.Tensor) else type(eps).__name__}")
    eps = eps.to(real).reshape(n, *([1] * (real.ndim - 1)))
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat) if y is None else critic(x_hat, y)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


# ============================================================================ the model
def _check_betas(betas: Any, name: str) -> tuple[float, float]:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"{name} must be a pair (beta1, beta2), got {betas!r}")
    return (check_float(betas[0], f"{name}[0]", low=0.0, high=1.0, high_inclusive=False),
            check_float(betas[1], f"{name}[1]", low=0.0, high=1.0, high_inclusive=False))


class GAN(GenerativeModule):
    """A generator and a discriminator trained in alternation by :class:`genlab.train.Trainer`.

    Each training step (one batch) updates the discriminator once on real data and fresh samples
    (``discriminator_loss`` + ``gp_weight * gradient_penalty``, then weight clipping if asked),
    and every ``n_critic``-th step also the generator (``generator_loss`` on fresh samples). The
    two have their own Adam optimisers (``lr_g``/``lr_d``, ``betas_g``/``betas_d``: unequal
    rates give the two time-scale update rule of Heusel et al. 2017).

    A GAN has no density: there is no ``log_prob``. ``loss(batch)`` is the discriminator's loss
    without penalty (for evaluation: ``Trainer.evaluate``). Batches are data tensors, or
    ``(x, y)`` for a conditional model (then both networks take the labels).

    Args:
        generator: a :class:`Generator` (or any module with ``latent_dim``, ``output_shape``,
            ``n_classes`` and ``forward(z, y)``).
        discriminator: a :class:`Discriminator` with the generator's shape and classes.
        loss: one of :data:`LOSSES`.
        gp_weight: weight of the gradient penalty (WGAN-GP uses 10 with ``"wasserstein"``; 0: off).
        n_critic: discriminator steps per generator step.
        weight_clip: clip the discriminator's weights to ``[-c, c]`` after each step (WGAN).
        lr_g, lr_d, betas_g, betas_d: the two Adam optimisers.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, *, loss: str = "non_saturating",
                 gp_weight: float = 0.0, n_critic: int = 1, weight_clip: float | None = None,
                 lr_g: float = 2e-4, lr_d: float = 2e-4, betas_g: tuple[float, float] = (0.5, 0.999),
                 betas_d: tuple[float, float] = (0.5, 0.999)) -> None:
        super().__init__()
        for name, net, attrs in (("generator", generator, ("latent_dim", "output_shape", "n_classes")),
                                 ("discriminator", discriminator, ("input_shape", "n_classes"))):
            if not isinstance(net, nn.Module) or not all(hasattr(net, a) for a in attrs):
                raise TypeError(f"{name} must be an nn.Module with attributes {attrs} (e.g. genlab.gan."
                                f"{name.capitalize()}), got {type(net).__name__}")
        if tuple(generator.output_shape) != tuple(discriminator.input_shape):
            raise ValueError(f"shape mismatch: the generator makes {tuple(generator.output_shape)}, but the "
                             f"discriminator takes {tuple(discriminator.input_shape)}")
        if generator.n_classes != discriminator.n_classes:
            raise ValueError(f"class mismatch: the generator has n_classes={generator.n_classes}, the "
                             f"discriminator n_classes={discriminator.n_classes}")
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim, self.data_shape = generator.latent_dim, tuple(generator.output_shape)
        self.n_classes = generator.n_classes
        self.loss_name = check_option(loss, "loss", LOSSES)
        self.gp_weight = check_positive_float(gp_weight, "gp_weight", allow_zero=True)
        self.n_critic = check_int(n_critic, "n_critic", minimum=1)
        self.weight_clip = None if weight_clip is None else check_positive_float(weight_clip, "weight_clip")
        self.lr_g, self.lr_d = check_positive_float(lr_g, "lr_g"), check_positive_float(lr_d, "lr_d")
        self.betas_g, self.betas_d = _check_betas(betas_g, "betas_g"), _check_betas(betas_d, "betas_d")

    # ------------------------------------------------------------------ training
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Two Adam optimisers: ``"discriminator"`` (updated first) and ``"generator"``."""
        return {"discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=self.lr_d, betas=self.betas_d),
                "generator": torch.optim.Adam(self.generator.parameters(), lr=self.lr_g, betas=self.betas_g)}

    def _split(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        if isinstance(batch, (tuple, list)):
            if len(batch) != 2:
                raise ValueError(f"batch must be x or (x, y), got a sequence of {len(batch)} items")
            x, y = batch
        else:
            x, y = batch, None
        x = _check_input(x, self.data_shape, "x", type(self).__name__)
        if self.n_classes is None:
            y = None  # an unconditional GAN ignores labels that come with the data
        return x, _labels(self, y, x.shape[0], x.device) if self.n_classes else None

    def _prepare_real(self, x: torch.Tensor) -> torch.Tensor:
        """Real data as the discriminator sees them: a growing generator (``prepare_real``) sets the resolution."""
        prepare = getattr(self.generator, "prepare_real", None)
        return prepare(x) if callable(prepare) else x

    def _noise(self, n: int, device: torch.device) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=device)

    def training_step(self, batch: Any, optimizers: Any) -> dict[str, float]:
        """One alternating step on ``batch``: the discriminator, then (every ``n_critic`` steps) the generator.

        ``optimizers`` is the :class:`genlab.train.Optimizers` the Trainer passes. Returns
        ``d_loss`` (without penalty), ``gradient_penalty`` (if used) and ``g_loss`` (on generator steps).
        """
        x, y = self._split(batch)
        x = self._prepare_real(x)
        n = x.shape[0]
        with torch.no_grad():
            fake = self.generator(self._noise(n, x.device), y)
        d_loss = discriminator_loss(self.discriminator(x, y), self.discriminator(fake, y), self.loss_name)
        logs = {"d_loss": float(d_loss.detach())}
        total = d_loss
        if self.gp_weight > 0:
            penalty = gradient_penalty(self.discriminator, x, fake, y)
            logs["gradient_penalty"] = float(penalty.detach())
            total = d_loss + self.gp_weight * penalty
        optimizers.step("discriminator", total)
        if self.weight_clip is not None:
            with torch.no_grad():
                for param in self.discriminator.parameters():
                    param.clamp_(-self.weight_clip, self.weight_clip)
        if (int(self.n_updates) + 1) % self.n_critic == 0:
            fake = self.generator(self._noise(n, x.device), y)
            logs["g_loss"] = optimizers.step("generator", generator_loss(self.discriminator(fake, y), self.loss_name))
        return logs

    def losses(self, batch: Any) -> dict[str, torch.Tensor]:
        """``d_loss`` and ``g_loss`` on ``batch`` with fresh samples (no update, no penalty)."""
        x, y = self._split(batch)
        x = self._prepare_real(x)
        fake = self.generator(self._noise(x.shape[0], x.device), y)
        fake_scores = self.discriminator(fake, y)
        return {"d_loss": discriminator_loss(self.discriminator(x, y), fake_scores, self.loss_name),
                "g_loss": generator_loss(fake_scores, self.loss_name)}

    def loss(self, batch: Any) -> torch.Tensor:
        """The discriminator's loss on ``batch`` (no penalty): what ``Trainer.evaluate`` reports.

        For ``"wasserstein"`` it is minus the critic's estimate of the Wasserstein-1 distance.
        """
        return self.losses(batch)["d_loss"]

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def generate(self, z: Any, y: Any = None) -> torch.Tensor:
        """Decode given noise ``z`` ``(n, latent_dim)`` (e.g. a latent interpolation), in eval mode."""
        z = as_float_tensor(z, name="z", dtype=torch.float32, device=self.device)
        if z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (n, {self.latent_dim}), got {tuple(z.shape)}")
        with eval_mode(self.generator):
            return self.generator(z, y)

    @torch.no_grad()
    def sample(self, n_samples: int, *, random_state: Any = None, y: Any = None) -> torch.Tensor:
        """``n_samples`` draws ``G(z)``, ``z ~ N(0, I)``, shape ``(n_samples, *data_shape)``.

        For a conditional model ``y`` gives the classes (one per sample; default: uniform at random).
        """
        self.check_fitted("sample")
        n = check_int(n_samples, "n_samples", minimum=1)
        generator = check_random_state(random_state)
        z = torch.randn(n, self.latent_dim, generator=generator)
        if self.n_classes is not None and y is None:
            y = torch.randint(0, self.n_classes, (n,), generator=generator)
        if y is not None:
            y = _labels(self, y, n, self.device)
        return self.generate(z, y)


# ============================================================================ CycleGAN
class CycleGAN(GenerativeModule):
    """Unpaired translation between two domains of vectors (Zhu et al. 2017).

    Two generators ``G_ab``, ``G_ba`` and two discriminators ``D_a``, ``D_b`` (MLPs). The generators
    minimise the adversarial losses in both directions plus ``cycle_weight`` times the
    cycle-consistency loss ``|G_ba(G_ab(a)) - a|_1 + |G_ab(G_ba(b)) - b|_1``. Batches are pairs
    ``(a, b)`` of *unpaired* samples. ``loss(batch)`` is the cycle loss (for evaluation).
    """

    def __init__(self, dim: int = 2, *, hidden: Sequence[int] = (64, 64), loss: str = "non_saturating",
                 cycle_weight: float = 10.0, lr: float = 1e-3, betas: tuple[float, float] = (0.5, 0.999)) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim", minimum=1)
        sizes = _check_sizes(hidden, "hidden")
        self.loss_name = check_option(loss, "loss", LOSSES)
        self.cycle_weight = check_positive_float(cycle_weight, "cycle_weight", allow_zero=True)
        self.lr, self.betas = check_positive_float(lr, "lr"), _check_betas(betas, "betas")
        self.g_ab = mlp([self.dim, *sizes, self.dim])
        self.g_ba = mlp([self.dim, *sizes, self.dim])
        self.d_a = Discriminator(self.dim, hidden=sizes)
        self.d_b = Discriminator(self.dim, hidden=sizes)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """``"discriminators"`` (both D) and ``"generators"`` (both G)."""
        d_params = list(self.d_a.parameters()) + list(self.d_b.parameters())
        g_params = list(self.g_ab.parameters()) + list(self.g_ba.parameters())
        return {"discriminators": torch.optim.Adam(d_params, lr=self.lr, betas=self.betas),
                "generators": torch.optim.Adam(g_params, lr=self.lr, betas=self.betas)}

    def _pair(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ValueError("a CycleGAN batch must be a pair (a, b) of samples from the two domains")
        return (_check_input(batch[0], (self.dim,), "a", "CycleGAN"),
                _check_input(batch[1], (self.dim,), "b", "CycleGAN"))

    def cycle_loss(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Mean L1 error of the round trips a -> b -> a and b -> a -> b."""
        a, b = self._pair((a, b))
        return ((self.g_ba(self.g_ab(a)) - a).abs().sum(1).mean() + (self.g_ab(self.g_ba(b)) - b).abs().sum(1).mean())

    def training_step(self, batch: Any, optimizers: Any) -> dict[str, float]:
        """Both discriminators, then both generators (adversarial + cycle)."""
        a, b = self._pair(batch)
        with torch.no_grad():
            fake_b, fake_a = self.g_ab(a), self.g_ba(b)
        d_loss = (discriminator_loss(self.d_a(a), self.d_a(fake_a), self.loss_name)
                  + discriminator_loss(self.d_b(b), self.d_b(fake_b), self.loss_name))
        optimizers.step("discriminators", d_loss)
        adversarial = (generator_loss(self.d_b(self.g_ab(a)), self.loss_name)
                       + generator_loss(self.d_a(self.g_ba(b)), self.loss_name))
        cycle = self.cycle_loss(a, b)
        optimizers.step("generators", adversarial + self.cycle_weight * cycle)
        return {"d_loss": float(d_loss.detach()), "g_loss": float(adversarial.detach()),
                "cycle_loss": float(cycle.detach())}

    def loss(self, batch: Any) -> torch.Tensor:
        """The cycle-consistency loss on a pair ``(a, b)``."""
        return self.cycle_loss(*self._pair(batch))

    @torch.no_grad()
    def translate(self, x: Any, direction: str = "ab") -> torch.Tensor:
        """Map ``x`` from domain a to b (``direction="ab"``) or from b to a (``"ba"``)."""
        check_option(direction, "direction", ("ab", "ba"))
        x = as_float_tensor(x, name="x", dtype=torch.float32, device=self.device)
        if x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {tuple(x.shape)}")
        return (self.g_ab if direction == "ab" else self.g_ba)(x)


# ============================================================================ interpretability
def _check_latent_batch(z: Any, name: str = "z") -> torch.Tensor:
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor of latent codes (n, latent_dim), got {type(z).__name__}")
    if z.ndim != 2 or z.shape[0] == 0 or not z.is_floating_point():
        raise ValueError(f"{name} must be a non-empty floating tensor of shape (n, latent_dim), got dtype {z.dtype}, "
                         f"shape {tuple(z.shape)}")
    if not bool(torch.isfinite(z).all()):
        raise ValueError(f"{name} holds NaN or infinite values")
    return z


def latent_attribution(decode: Any, score: Any, z: Any) -> torch.Tensor:
    """Gradient of a feature of the generated image with respect to each latent dimension.

    ``decode(z)`` maps latent codes ``(n, latent_dim)`` to images (e.g. a GAN's generator) and
    ``score(images)`` reads one number per image from them (e.g. the evaluation classifier's logit for
    a class, or the total ink). Returns ``d score(decode(z)_i) / d z_i``, shape ``(n, latent_dim)``:
    to first order, moving ``z_i`` by ``delta`` along dimension ``j`` changes the feature by
    ``delta * attribution[i, j]``, so the dimensions with the largest ``|attribution|`` are those
    that control the feature near ``z_i`` (a saliency map over the latent code, Simonyan et al. 2014).
    Both networks must be differentiable; their weights are left untouched (no gradient is stored).
    """
    if not callable(decode):
        raise TypeError(f"decode must be a function z -> images, got {type(decode).__name__}")
    if not callable(score):
        raise TypeError(f"score must be a function images -> (n,) scores, got {type(score).__name__}")
    z = _check_latent_batch(z).detach().clone().requires_grad_(True)
    with torch.enable_grad():
        values = score(decode(z))
        if not isinstance(values, torch.Tensor) or tuple(values.shape) != (z.shape[0],):
            got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
            raise ValueError(f"score must return one number per image, shape ({z.shape[0]},), got {got}")
        (grad,) = torch.autograd.grad(values.sum(), z)
    return grad.detach()


@torch.no_grad()
def latent_traversal(decode: Any, z: Any, dim: int, offsets: Any) -> torch.Tensor:
    """Images along one latent axis: ``decode(z + offsets[k] * e_dim)`` for each offset, ``(k, ...)``.

    ``z`` is one latent code, ``(latent_dim,)`` or ``(1, latent_dim)``; ``offsets`` a 1-D sequence of
    numbers. Holding every other dimension fixed shows what that one dimension controls.
    """
    if not callable(decode):
        raise TypeError(f"decode must be a function z -> images, got {type(decode).__name__}")
    if isinstance(z, torch.Tensor) and z.ndim == 1:
        z = z[None]
    z = _check_latent_batch(z)
    if z.shape[0] != 1:
        raise ValueError(f"z must be one latent code, (latent_dim,) or (1, latent_dim), got {tuple(z.shape)}")
    dim = check_int(dim, "dim", minimum=0, maximum=z.shape[1] - 1)
    steps = as_float_tensor(offsets, name="offsets", ndim=1, dtype=z.dtype, device=z.device)
    codes = z.repeat(len(steps), 1)
    codes[:, dim] += steps
    return decode(codes)


# ============================================================================ mode collapse, measured
def mode_coverage(samples: Any, centres: Any, std: float, *, n_sigma: float = 3.0,
                  min_count: int | None = None) -> dict[str, float]:
    """How many modes of a mixture of isotropic Gaussians the ``samples`` reach, and how well.

    A sample is *high quality* if it lies within ``n_sigma * std`` of its nearest centre; a mode
    is *covered* if at least ``min_count`` high-quality samples fall there (default: a quarter of
    what a perfect sampler would put there, ``n / (4 * n_modes)``). Returns ``modes`` (covered count),
    ``high_quality`` (share of samples) and ``kl`` (KL divergence, in nats, from the uniform share per
    mode to the share of the high-quality samples per mode, with one pseudo-count per mode).
    """
    x = as_float_tensor(samples, name="samples", dtype=torch.float64)
    c = as_float_tensor(centres, name="centres", dtype=torch.float64)
    if x.shape[1] != c.shape[1]:
        raise ValueError(f"samples have {x.shape[1]} dimensions but centres have {c.shape[1]}")
    std = check_positive_float(std, "std")
    n_sigma = check_positive_float(n_sigma, "n_sigma")
    n, k = x.shape[0], c.shape[0]
    min_count = max(1, n // (4 * k)) if min_count is None else check_int(min_count, "min_count", minimum=1)
    distance, nearest = torch.cdist(x, c).min(1)
    good = distance <= n_sigma * std
    counts = torch.bincount(nearest[good], minlength=k).double()
    share = (counts + 1) / (counts.sum() + k)
    kl = float((torch.full((k,), 1.0 / k, dtype=torch.float64) * torch.log((1.0 / k) / share)).sum())
    return {"modes": int((counts >= min_count).sum()), "high_quality": float(good.double().mean()), "kl": kl}


# ============================================================================ the chapter's implement-it check
def gradient_penalty_exercise(answer: Any) -> tuple[Any, Any, str]:
    """Run a learner's ``penalty(critic, real, fake, eps) -> scalar`` for chapter 08's exercise.

    It runs ``answer`` on a fixed small critic and image batch (without touching the global random
    state) and returns ``(got, expected, hint)`` for :func:`genlab.exercises.check`. ``got`` is the
    learner's value, or a description of what went wrong when it cannot be compared; the hint
    diagnoses the usual mistakes: one ``eps`` for the whole batch instead of one per example, the
    norm over the wrong dimensions, or a gradient computed without ``create_graph=True`` (the
    penalty then cannot train the critic). ``...`` (not attempted) is passed through as ``got``.

    Raises:
        TypeError: ``answer`` is neither ``...`` nor a function.
    """
    general = ("interpolate with one eps per example, take the norm over every dimension of an example "
               "(grad.flatten(1).norm(dim=1)), then average (norm - 1) ** 2 over the batch")
    if not attempted_function(answer, "penalty(critic, real, fake, eps)"):
        return answer, None, general
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        critic = Discriminator((1, 8, 8), channels=4)
        real, fake, eps = torch.rand(6, 1, 8, 8), torch.rand(6, 1, 8, 8), torch.rand(6)
    expected = gradient_penalty(critic, real, fake, eps=eps)
    one_eps = gradient_penalty(critic, real, fake, eps=eps[:1].expand(6).clone())
    try:
        got = answer(critic, real.clone(), fake.clone(), eps.clone())
    except Exception as err:  # a learner's shape error is a wrong answer, not a crash of the check
        return (f"raised {type(err).__name__}: {err}", expected.item(),
                "reshape eps to (n, 1, 1, 1) so it broadcasts over each image, and call "
                "torch.autograd.grad(scores.sum(), x_hat, create_graph=True)")
    if not isinstance(got, torch.Tensor) or got.numel() != 1:
        return got, expected.item(), "return one scalar tensor: the mean over the batch of (norm - 1) ** 2"
    value = float(got.detach())
    if not math.isclose(value, expected.item(), rel_tol=1e-5, abs_tol=1e-7):
        if math.isclose(value, one_eps.item(), rel_tol=1e-5):
            return value, expected.item(), ("you used one interpolation weight for the whole batch; use one eps "
                                            "per example: eps.view(-1, 1, 1, 1) * real "
                                            "+ (1 - eps.view(-1, 1, 1, 1)) * fake")
        return value, expected.item(), general
    if not got.requires_grad:
        return ("the right value, but a constant: no graph back to the critic's weights", expected.item(),
                "the gradient was taken without create_graph=True, so the penalty is a constant for the optimiser "
                "and cannot train the critic")
    return value, expected.item(), general


def check_gradient_penalty(answer: Any, name: str = "Exercise") -> bool:
    """Check a learner's ``penalty(critic, real, fake, eps) -> scalar`` against :func:`gradient_penalty`.

    :func:`gradient_penalty_exercise` runs it and diagnoses the usual mistakes; this passes the
    result to :func:`genlab.exercises.check`.

    Raises:
        genlab.exercises.NotAttempted: ``answer`` is still ``...``.
        genlab.exercises.ExerciseError: a wrong value or a penalty without a graph, with a hint.
        TypeError: ``answer`` is neither ``...`` nor a function.
    """
    from .exercises import check

    got, expected, hint = gradient_penalty_exercise(answer)
    return check(name, got, expected, rtol=1e-5, atol=1e-7, hint=hint)


# ============================================================================ the leaderboard's row
def leaderboard_build(data: Any, cfg: Any, seed: int, device: torch.device) -> tuple[None, torch.Tensor]:
    """Train chapter 08's DCGAN (non-saturating, EMA generator) for :mod:`genlab.results.leaderboard`.

    ``data`` is the leaderboard's ``Dataset``; sizes come from ``settings("08_gans", cfg.profile)``.
    Returns ``(None, samples)``: a GAN has no likelihood; samples are in the dataset's units.
    """
    from .device import seed_everything
    from .profiles import settings
    from .train import Trainer

    sizes = settings("08_gans", getattr(cfg, "profile", None))
    seed_everything(seed)
    unit = data.levels["train"] / (data.n_levels - 1)
    gan = GAN(Generator(sizes.latent_dim, data.shape, channels=sizes.channels, output_activation="tanh"),
              Discriminator(data.shape, channels=sizes.channels), lr_g=sizes.image_lr, lr_d=sizes.image_lr)
    trainer = Trainer(gan, batch_size=64, ema_decay=0.99, device=device, progress=False, seed=seed)
    trainer.fit(unit * 2 - 1, epochs=sizes.image_epochs)
    samples = trainer.ema.model.sample(len(data.levels["test"]), random_state=seed)
    return None, data.from_unit_range((samples + 1) / 2)
