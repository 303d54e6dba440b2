"""Variational autoencoders: the VAE, its importance-weighted (IWAE) training, and the conditional CVAE.

A VAE is a latent-variable model ``p(x) = ∫ p(x|z) p(z) dz`` trained by maximising the evidence
lower bound (ELBO) with an amortised Gaussian posterior ``q(z|x)`` and the reparameterisation trick
(Kingma & Welling 2014; Rezende et al. 2014):

    log p(x) >= E_q[log p(x|z)] - KL(q(z|x) || p(z)) = ELBO(x).

What :class:`VAE` offers:

* encoders/decoders: ``"mlp"`` or ``"conv"`` (from :mod:`genlab.layers`), and two autoregressive
  (*strong*) decoders conditioned on ``z``: ``"made"`` (a MADE over the pixels) and ``"causal_conv"``
  (causal 1-D convolutions over the pixels in raster order, :mod:`genlab.autoregressive`);
* likelihoods: ``"bernoulli"`` (pixels in [0, 1]), ``"categorical"`` over ``n_levels`` integer levels
  (the 8x8 digits: 17 levels, logits of shape ``(n, 17, 8, 8)``), ``"discretized_logistic"``;
* priors: ``"standard"`` N(0, I) (KL in closed form), ``"mog"`` (a learned mixture of Gaussians) or
  ``"vamp"`` (the VampPrior, Tomczak & Welling 2018), see :mod:`genlab.priors`;
* training options: β (β-VAE), a β schedule (:class:`KLWarmup`), free bits, input dropout, and
  importance-weighted training with ``k`` samples (IWAE, Burda et al. 2016) with the standard or the
  doubly-reparameterised (DReG, Tucker et al. 2019) gradient.

Units: every loss and likelihood is in **nats per example** (mean over the batch).

"Trained" state: :class:`VAE` is a :class:`genlab.base.GenerativeModule`; :class:`genlab.train.Trainer`
counts its optimisation steps in the buffer ``n_updates`` (saved with the weights, so older checkpoints
load unchanged). :meth:`VAE.log_prob` and :meth:`VAE.sample` raise :class:`genlab.base.NotFittedError`
(a ``ValueError``) while it is 0, because a likelihood or a sample from random weights is almost always a
mistake. A hand-written training loop calls ``model.mark_updated()`` after each optimiser step.

Density: :meth:`VAE.log_prob` is the importance-weighted lower bound of Burda et al. (2016) with ``k``
samples (``k = 1``: the ELBO), in nats per example; :meth:`VAE.score_samples` is the same number.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .autoregressive import CausalConvDecoder, MADEDecoder
from .base import GenerativeModule
from .layers import ConvDecoder, ConvEncoder, eval_mode, mlp
from .numerics import diag_gaussian_log_prob
from .priors import make_prior
from .train import Callback
from .validation import (
    as_float_tensor,
    as_image_tensor,
    check_bool,
    check_class_labels,
    check_float,
    check_int,
    check_option,
    check_random_state,
    check_shape,
)

LIKELIHOODS = ("bernoulli", "categorical", "discretized_logistic")
ENCODERS = ("mlp", "conv")
DECODERS = ("mlp", "conv", "made", "causal_conv")
AUTOREGRESSIVE_DECODERS = ("made", "causal_conv")
GRADIENTS = ("iwae", "dreg")

# The digits models compared in chapter 09 and benchmarks/likelihood.py (keyword arguments of VAE),
# trained with Adamax (lr 1e-3, batch 64) and early stopping on the validation loss.
DIGITS_RECIPES: dict[str, dict[str, Any]] = {
    "vae": dict(latent_dim=16, hidden=256, n_layers=2),
    "iwae": dict(latent_dim=16, hidden=256, n_layers=2, k=5, input_dropout=0.2),
    "made_vae": dict(latent_dim=16, hidden=256, n_layers=2, decoder="made", decoder_dropout=0.3),
    "causal_conv_vae": dict(latent_dim=16, hidden=256, n_layers=2, decoder="causal_conv", ar_channels=64,
                            ar_layers=3, ar_kernel=7),
}


# ----------------------------------------------------------------------------- closed forms
def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag(exp(logvar))) || N(0, I) ) per latent dimension, in nats (same shape as ``mu``).

    Closed form: ``0.5 * (mu² + σ² - log σ² - 1)``.
    """
    for value, name in ((mu, "mu"), (logvar, "logvar")):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {type(value).__name__}")
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)


# ----------------------------------------------------------------------------- likelihoods
def discretized_logistic_log_prob(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor,
                                  n_levels: int) -> torch.Tensor:
    """log P(x) per pixel for integer levels ``x`` in 0..n_levels-1 under a discretised logistic.

    Levels map to bin centres on [-1, 1]; the first and last bins absorb the tails, so the
    probabilities of the ``n_levels`` values sum to one.
    """
    n_levels = check_int(n_levels, "n_levels", minimum=2)
    half = 1.0 / (n_levels - 1)
    centre = 2.0 * x / (n_levels - 1) - 1.0
    inv_scale = torch.exp(-log_scale)
    upper = (centre + half - mean) * inv_scale
    lower = (centre - half - mean) * inv_scale
    log_cdf_upper = -F.softplus(-upper)            # log σ(upper)
    log_one_minus_cdf_lower = -F.softplus(lower)   # log (1 - σ(lower))
    # log(σ(u) - σ(l)) = log σ(u) + log(1 - exp(log σ(l) - log σ(u))), stable for u > l.
    log_mass = log_cdf_upper + torch.log((-torch.expm1(F.softplus(-upper) - F.softplus(-lower))).clamp_min(1e-12))
    first, last = x <= 0, x >= n_levels - 1
    return torch.where(first, log_cdf_upper, torch.where(last, log_one_minus_cdf_lower, log_mass))


class KLWarmup(Callback):
    """Raise the model's ``beta`` linearly from ``start`` to ``end`` over ``steps`` optimisation steps.

    KL warm-up (Bowman et al. 2016; Sønderby et al. 2016): the decoder first learns to reconstruct,
    then the KL term is phased in, which helps against posterior collapse.
    """

    def __init__(self, steps: int, start: float = 0.0, end: float = 1.0) -> None:
        self.steps = check_int(steps, "steps", minimum=1)
        self.start, self.end = check_float(start, "start", low=0.0), check_float(end, "end", low=0.0)
        self.step = 0

    def _beta(self) -> float:
        return self.start + (self.end - self.start) * min(1.0, self.step / self.steps)

    def on_fit_start(self, trainer) -> None:
        trainer.model.beta = self._beta()

    def on_batch_end(self, trainer, loss: float) -> None:
        self.step += 1
        trainer.model.beta = self._beta()


# ----------------------------------------------------------------------------- the model
class VAE(GenerativeModule):
    """A variational autoencoder for images of shape ``(channels, size, size)``.

    Args:
        image_shape: ``(1, 8, 8)`` for the digits, ``(1, 28, 28)`` for MNIST.
        latent_dim: size of ``z``.
        likelihood: ``"categorical"`` (integer levels 0..n_levels-1), ``"bernoulli"`` (values in
            [0, 1]; a proper likelihood for binary pixels) or ``"discretized_logistic"`` (integer levels).
        n_levels: number of pixel levels for the categorical / discretised likelihoods (17 for digits).
        encoder, decoder: ``"mlp"`` or ``"conv"``; the decoder may also be autoregressive: ``"made"``
            or ``"causal_conv"`` (categorical likelihood only).
        hidden: width of the hidden layers (MLP, MADE) or base channel count (conv).
        n_layers: hidden layers in the MLP encoder/decoder and the MADE.
        activation: non-linearity of the MLPs (see :data:`genlab.layers.ACTIVATIONS`).
        prior: ``"standard"``, ``"mog"`` or ``"vamp"``; ``n_components`` mixture components.
        beta: weight of the KL term in the training loss (β-VAE; 1 is the ELBO).
        free_bits: minimum KL per latent dimension (nats, batch-averaged) in the training loss.
        k: importance samples in the training objective (1: ELBO; > 1: the IWAE bound).
        gradient: ``"iwae"`` or ``"dreg"`` (doubly reparameterised encoder gradients) when ``k > 1``.
        input_dropout: probability of zeroing an encoder input pixel while training (a regulariser).
        decoder_dropout: dropout between the hidden layers of the MLP / MADE / causal-conv decoder while training.
        ar_channels, ar_layers, ar_kernel: feature maps, layers and kernel width of the
            ``"causal_conv"`` decoder (:class:`genlab.autoregressive.CausalConvDecoder`).
        n_classes: number of classes for a conditional model (use :class:`CVAE`).
    """

    def __init__(self, image_shape: Sequence[int] = (1, 8, 8), latent_dim: int = 16, *,
                 likelihood: str = "categorical", n_levels: int = 17, encoder: str = "mlp",
                 decoder: str = "mlp", hidden: int = 256, n_layers: int = 2, activation: str = "leaky_relu",
                 prior: str = "standard", n_components: int = 50, beta: float = 1.0, free_bits: float = 0.0,
                 k: int = 1, gradient: str = "iwae", input_dropout: float = 0.0, decoder_dropout: float = 0.0,
                 ar_channels: int = 64, ar_layers: int = 3, ar_kernel: int = 7,
                 n_classes: int | None = None) -> None:
        super().__init__()
        image_shape = check_shape(image_shape, "image_shape", length=3)
        if image_shape[0] != 1 or image_shape[1] != image_shape[2]:
            raise ValueError(f"image_shape must be (1, S, S) (one channel, square), got {image_shape}")
        latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
        likelihood = check_option(likelihood, "likelihood", LIKELIHOODS)
        encoder = check_option(encoder, "encoder", ENCODERS)
        decoder = check_option(decoder, "decoder", DECODERS)
        gradient = check_option(gradient, "gradient", GRADIENTS)
        if likelihood != "categorical" and decoder in AUTOREGRESSIVE_DECODERS:
            raise ValueError(f"the {decoder!r} decoder is implemented for the categorical likelihood only")
        hidden = check_int(hidden, "hidden", minimum=1)
        n_layers = check_int(n_layers, "n_layers", minimum=1)
        if likelihood != "bernoulli":
            n_levels = check_int(n_levels, "n_levels", minimum=2)
        input_dropout = check_float(input_dropout, "input_dropout", low=0.0, high=1.0, high_inclusive=False)
        decoder_dropout = check_float(decoder_dropout, "decoder_dropout", low=0.0, high=1.0, high_inclusive=False)
        ar_channels = check_int(ar_channels, "ar_channels", minimum=1)
        ar_layers = check_int(ar_layers, "ar_layers", minimum=1)
        ar_kernel = check_int(ar_kernel, "ar_kernel", minimum=1)
        n_components = check_int(n_components, "n_components", minimum=1)
        if n_classes is not None:
            n_classes = check_int(n_classes, "n_classes", minimum=1)
        self.image_shape = image_shape
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        self.n_levels = n_levels if likelihood != "bernoulli" else 2
        self.encoder_kind, self.decoder_kind = encoder, decoder
        self.beta = check_float(beta, "beta", low=0.0)
        self.free_bits = check_float(free_bits, "free_bits", low=0.0)
        self.k = check_int(k, "k", minimum=1)
        self.gradient = gradient
        self.input_dropout = input_dropout
        self.n_classes = n_classes

        size, n_pixels = image_shape[1], image_shape[1] * image_shape[2]
        n_cond = n_classes or 0
        # Encoder: features from the image, then a linear head that also sees the label (CVAE).
        if encoder == "mlp":
            self.encoder_body = mlp([n_pixels] + [hidden] * n_layers, activation=activation,
                                    final_activation=activation)
        else:
            self.encoder_body = nn.Sequential(ConvEncoder(size, hidden, channels=max(hidden // 8, 8)), nn.ReLU())
        self.encoder_head = nn.Linear(hidden + n_cond, 2 * latent_dim)
        # Decoder: parameters of p(x|z) per pixel.
        channels = {"bernoulli": 1, "categorical": self.n_levels, "discretized_logistic": 2}[likelihood]
        self.out_channels = channels
        if decoder == "mlp":
            self.decoder_net = mlp([latent_dim + n_cond] + [hidden] * n_layers + [channels * n_pixels],
                                   activation=activation, dropout=decoder_dropout)
        elif decoder == "conv":
            self.decoder_net = ConvDecoder(latent_dim + n_cond, size, out_channels=channels,
                                           channels=max(hidden // 8, 8))
        elif decoder == "made":
            self.decoder_net = MADEDecoder(n_pixels, self.n_levels, latent_dim + n_cond, hidden, n_layers,
                                           activation=activation, dropout=decoder_dropout)
        else:
            self.decoder_net = CausalConvDecoder(n_pixels, self.n_levels, latent_dim + n_cond, ar_channels,
                                                 ar_layers, ar_kernel, activation=activation,
                                                 dropout=decoder_dropout)
        self.prior = make_prior(prior, latent_dim, n_components=n_components, encoder=self,
                                image_shape=image_shape, n_levels=self.n_levels)

    # ------------------------------------------------------------------ validation
    def check_images(self, x: Any, name: str = "images") -> torch.Tensor:
        """Validate images for this model and return them as a float tensor on the model's device.

        Shape ``(n, *image_shape)`` (a flat ``(n, H*W)`` is accepted), finite values, integer levels
        in ``0..n_levels-1`` for the categorical / discretised likelihoods, values in [0, 1] for Bernoulli.
        """
        n_pixels = self.image_shape[1] * self.image_shape[2]
        if getattr(x, "ndim", None) == 2:
            x = as_float_tensor(x, name=name, ndim=2, dtype=torch.float32)
            if x.shape[1] != n_pixels:
                shape = ", ".join(map(str, self.image_shape))
                raise ValueError(f"{name} must have shape (n, {shape}) or (n, {n_pixels}), got {tuple(x.shape)}")
            x = x.reshape(-1, *self.image_shape)
        x = as_image_tensor(x, name, dtype=torch.float32)
        if tuple(x.shape[1:]) != self.image_shape:
            shape = ", ".join(map(str, self.image_shape))
            raise ValueError(f"{name} must have shape (n, {shape}), got {tuple(x.shape)}")
        x = x.to(self.device)
        if self.likelihood == "bernoulli":
            if x.min() < 0 or x.max() > 1:
                raise ValueError(f"{name}: the Bernoulli likelihood needs pixels in [0, 1], got range "
                                 f"[{x.min().item():.3g}, {x.max().item():.3g}]")
        elif (x != x.round()).any() or x.min() < 0 or x.max() > self.n_levels - 1:
            raise ValueError(f"{name}: the {self.likelihood} likelihood needs integer pixel levels in "
                             f"0..{self.n_levels - 1}, got values in [{x.min().item():.3g}, {x.max().item():.3g}]"
                             + ("" if (x == x.round()).all() else " (not all integers)"))
        return x

    def _check_labels(self, y: Any, n: int) -> torch.Tensor | None:
        """One-hot labels ``(n, n_classes)`` for a conditional model (``y``: an int or one label per row)."""
        labels = check_class_labels(y, n, self.n_classes, type(self).__name__, device=self.device)
        if labels is None:
            return None
        return F.one_hot(labels, self.n_classes).float()

    def _split_batch(self, batch: Any) -> tuple[torch.Tensor, Any]:
        if isinstance(batch, (tuple, list)):
            if len(batch) == 0 or len(batch) > 2:
                raise ValueError(f"a batch is images or (images, labels), got a sequence of length {len(batch)}")
            return batch[0], (batch[1] if len(batch) == 2 else None)
        return batch, None

    # ------------------------------------------------------------------ networks
    def _scaled(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder input in [0, 1]."""
        return x if self.likelihood == "bernoulli" else x / (self.n_levels - 1)

    def _encode(self, x: torch.Tensor, onehot: torch.Tensor | None,
                dropout: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        h = self._scaled(x)
        if dropout and self.input_dropout > 0:
            h = h * (torch.rand_like(h) >= self.input_dropout)  # no rescaling: pixels look "off"
        h = self.encoder_body(h.flatten(1) if self.encoder_kind == "mlp" else h)
        if onehot is not None:
            h = torch.cat([h, onehot], 1)
        mu, logvar = self.encoder_head(h).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    def _decoder_params(self, z: torch.Tensor, onehot: torch.Tensor | None,
                        x: torch.Tensor | None = None) -> torch.Tensor:
        """Per-pixel parameters ``(m, C, H, W)`` for latents ``z`` of shape ``(m, latent_dim)``.

        The autoregressive decoder also needs the image ``x`` (its pixels condition later ones).
        """
        context = z if onehot is None else torch.cat([z, onehot.expand(z.shape[0], -1)], -1)
        if self.decoder_kind in AUTOREGRESSIVE_DECODERS:
            return self.decoder_net(self._scaled(x).flatten(1), context).view(z.shape[0], self.n_levels,
                                                                             *self.image_shape[1:])
        out = self.decoder_net(context)
        return out.view(z.shape[0], self.out_channels, *self.image_shape[1:])

    def decoder_params(self, z: Any, y: Any = None) -> torch.Tensor:
        """Per-pixel parameters of p(x|z) for latents ``z`` ``(m, latent_dim)``, with gradients.

        Categorical: logits ``(m, n_levels, H, W)``; Bernoulli: logits ``(m, 1, H, W)``; discretised
        logistic: mean and log-scale ``(m, 2, H, W)``. Only for the factorised decoders (``"mlp"``,
        ``"conv"``): an autoregressive decoder's parameters also depend on the pixels themselves.
        """
        if self.decoder_kind in AUTOREGRESSIVE_DECODERS:
            raise ValueError(f"decoder_params needs a factorised decoder; the {self.decoder_kind!r} decoder's "
                             "parameters depend on the image too")
        z = self._check_latents(z)
        return self._decoder_params(z, self._check_labels(y, z.shape[0]))

    def _log_px_given_z(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """log p(x|z) summed over pixels, shape ``(m,)``; ``x`` is ``(m, 1, H, W)``."""
        if self.likelihood == "bernoulli":
            logp = -F.binary_cross_entropy_with_logits(params, x, reduction="none")
        elif self.likelihood == "categorical":
            logp = -F.cross_entropy(params, x[:, 0].long(), reduction="none")
        else:
            logp = discretized_logistic_log_prob(x[:, 0], params[:, 0], params[:, 1].clamp(-7.0, 5.0), self.n_levels)
        return logp.flatten(1).sum(-1)

    def _log_weights(self, x: torch.Tensor, onehot: torch.Tensor | None, k: int, *, dropout: bool = False,
                     dreg: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Importance log-weights ``log p(x, z_i) - log q(z_i|x)``, shape ``(k, n)``.

        Also returns the reconstruction term ``log p(x|z)`` ``(k, n)`` and ``mu``, ``logvar`` of q.
        With ``dreg`` the density of q is evaluated with detached parameters and a gradient hook on
        ``z`` turns the IWAE encoder gradient into the doubly reparameterised one.
        """
        n = x.shape[0]
        mu, logvar = self._encode(x, onehot, dropout=dropout)
        eps = torch.randn(k, n, self.latent_dim, device=x.device)
        z = mu + torch.exp(0.5 * logvar) * eps
        x_rep = x.unsqueeze(0).expand(k, *x.shape).reshape(k * n, *x.shape[1:])
        oh_rep = None if onehot is None else onehot.unsqueeze(0).expand(k, *onehot.shape).reshape(k * n, -1)
        params = self._decoder_params(z.reshape(k * n, -1), oh_rep, x_rep)
        log_px = self._log_px_given_z(x_rep, params).view(k, n)
        log_pz = self.prior.log_prob(z.reshape(k * n, -1)).view(k, n)
        if dreg:
            log_qz = diag_gaussian_log_prob(z, mu.detach(), logvar.detach())
        else:
            log_qz = diag_gaussian_log_prob(z, mu, logvar)
        log_w = log_px + log_pz - log_qz
        if dreg and z.requires_grad:
            weights = torch.softmax(log_w.detach(), dim=0).unsqueeze(-1)
            z.register_hook(lambda grad: grad * weights)
        return log_w, log_px, mu, logvar

    # ------------------------------------------------------------------ objectives
    def loss(self, batch: Any) -> torch.Tensor:
        """Training loss in nats per example: the negative ELBO (``k = 1``) or negative IWAE bound.

        ``batch`` is images or ``(images, labels)`` (labels are used by a conditional model only).
        In training mode β, free bits and input dropout apply (so the value can differ from a bound);
        in eval mode (validation) the loss is the plain bound of the same ``k`` with β = 1, so early
        stopping compares like with like. (The Trainer counts optimisation steps, not this method.)
        """
        x, y = self._split_batch(batch)
        x = self.check_images(x)
        onehot = self._check_labels(y, x.shape[0])
        training = self.training and torch.is_grad_enabled()
        k = self.k
        if k == 1:
            mu, logvar = self._encode(x, onehot, dropout=training)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            log_px = self._log_px_given_z(x, self._decoder_params(z, onehot, x))
            kl_dims = self._kl_dims(z, mu, logvar)
            if training and self.free_bits > 0:
                kl = kl_dims.mean(0).clamp_min(self.free_bits).sum()
                return -log_px.mean() + self.beta * kl
            beta = self.beta if training else 1.0
            return -(log_px - beta * kl_dims.sum(-1)).mean()
        log_w, log_px, mu, logvar = self._log_weights(x, onehot, k, dropout=training,
                                                      dreg=training and self.gradient == "dreg")
        if training and self.beta != 1.0:
            # β-IWAE: reweight the prior/posterior part of the log-weights.
            log_w = log_px + self.beta * (log_w - log_px)
        if self.gradient == "dreg" and training:
            weights = torch.softmax(log_w.detach(), dim=0)
            return -(weights * log_w).sum(0).mean()  # surrogate: its gradient is the DReG estimator
        return -(torch.logsumexp(log_w, 0) - math.log(k)).mean()

    def _kl_dims(self, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL per latent dimension ``(n, d)``: closed form for N(0, I), else a one-sample estimate.

        For a learned prior the estimate ``log q(z|x) - log p(z)`` does not split over dimensions;
        it is spread evenly so that sums (and free bits on the total) stay right.
        """
        if self.prior.kind == "standard":
            return gaussian_kl(mu, logvar)
        kl = diag_gaussian_log_prob(z, mu, logvar) - self.prior.log_prob(z)
        return (kl / self.latent_dim).unsqueeze(-1).expand(-1, self.latent_dim)

    def _iterate(self, x: Any, y: Any, batch_size: int):
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        x = self.check_images(x)
        onehot = self._check_labels(y, x.shape[0])
        for start in range(0, x.shape[0], batch_size):
            sl = slice(start, start + batch_size)
            yield x[sl], (None if onehot is None else onehot[sl])

    @torch.no_grad()
    def elbo(self, x: Any, y: Any = None, *, batch_size: int = 256) -> torch.Tensor:
        """One-sample ELBO per example, ``(n,)`` in nats (β = 1; a noisy lower bound on log p(x))."""
        return self.log_importance_bound(x, y, k=1, batch_size=batch_size)

    @torch.no_grad()
    def log_importance_bound(self, x: Any, y: Any = None, *, k: int = 1000, batch_size: int = 64,
                             sample_chunk: int = 250) -> torch.Tensor:
        """The importance-weighted bound ``log (1/k) Σ_i p(x, z_i) / q(z_i|x)`` per example, ``(n,)`` nats.

        Works on any model, trained or not (tests and diagnostics); :meth:`log_prob` is the checked
        public estimate. ``sample_chunk`` bounds memory: samples are drawn in chunks and combined
        with a running log-sum-exp.
        """
        k = check_int(k, "k", minimum=1)
        sample_chunk = check_int(sample_chunk, "sample_chunk", minimum=1)
        out = []
        with eval_mode(self):
            for xb, ob in self._iterate(x, y, batch_size):
                chunks = []
                for start in range(0, k, sample_chunk):
                    log_w, *_ = self._log_weights(xb, ob, min(sample_chunk, k - start))
                    chunks.append(torch.logsumexp(log_w, 0))
                out.append(torch.logsumexp(torch.stack(chunks), 0) - math.log(k))
        return torch.cat(out)

    def log_prob(self, x: Any, y: Any = None, *, k: int = 1000, batch_size: int = 64) -> torch.Tensor:
        """Importance-weighted estimate of log p(x) per example, ``(n,)`` in nats.

        The bound is the IWAE bound of Burda et al. (2016),
        ``log (1/k) Σ_i p(x|z_i) p(z_i) / q(z_i|x)`` with ``z_i ~ q(z|x)``: a *stochastic lower bound*
        whose expectation is ≤ log p(x) for every ``k`` and increases to log p(x) as ``k`` grows;
        ``k = 1`` is the ELBO. Use ``k >= 1000`` to report likelihoods. For a :class:`CVAE` it is
        log p(x|y). Raises ``NotFittedError`` on an untrained model and ``ValueError`` / ``TypeError``
        for a bad ``k`` or invalid images.
        """
        k = check_int(k, "k", minimum=1)
        self.check_fitted("log_prob")
        return self.log_importance_bound(x, y, k=k, batch_size=batch_size)

    def score_samples(self, x: Any, y: Any = None, *, k: int = 1000, batch_size: int = 64) -> torch.Tensor:
        """The same as :meth:`log_prob` (the importance-weighted bound, nats per example)."""
        return self.log_prob(x, y, k=k, batch_size=batch_size)

    # ------------------------------------------------------------------ encode / decode / sample
    @torch.no_grad()
    def encode(self, x: Any, y: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x), each ``(n, latent_dim)``."""
        x = self.check_images(x)
        onehot = self._check_labels(y, x.shape[0])
        with eval_mode(self):
            return self._encode(x, onehot)

    def _check_latents(self, z: Any) -> torch.Tensor:
        z = as_float_tensor(z, name="z", ndim=2, dtype=torch.float32, device=self.device)
        if z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (m, {self.latent_dim}), got {tuple(z.shape)}")
        return z

    @torch.no_grad()
    def decode(self, z: Any, y: Any = None, *, sample: bool = False,
               random_state: int | torch.Generator | None = None) -> torch.Tensor:
        """Images from latents ``z`` ``(m, latent_dim)``: the mean of p(x|z), or a draw with ``sample=True``.

        The autoregressive decoders have no tractable mean: they always return a draw. Draws use
        ``random_state`` (an int, a ``torch.Generator`` or ``None``: fresh entropy).
        Images are in data units (levels 0..n_levels-1, or [0, 1] for Bernoulli).
        """
        z = self._check_latents(z)
        onehot = self._check_labels(y, z.shape[0])
        sample = check_bool(sample, "sample")
        with eval_mode(self):
            if self.decoder_kind in AUTOREGRESSIVE_DECODERS:
                return self._sample_autoregressive(z, onehot, check_random_state(random_state))
            params = self._decoder_params(z, onehot)
            if sample:
                return self._sample_pixels(params, check_random_state(random_state))
            return self._mean_pixels(params)

    def _mean_pixels(self, params: torch.Tensor) -> torch.Tensor:
        if self.likelihood == "bernoulli":
            return torch.sigmoid(params)
        if self.likelihood == "categorical":
            levels = torch.arange(self.n_levels, device=params.device, dtype=params.dtype).view(1, -1, 1, 1)
            return (params.softmax(1) * levels).sum(1, keepdim=True)
        # The logistic's mean, clamped to the range and mapped back to levels.
        return ((params[:, :1].clamp(-1, 1) + 1) * (self.n_levels - 1) / 2)

    @staticmethod
    def _uniform(shape: Sequence[int], generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """Uniform draws from a CPU generator, moved to ``device`` (the same stream on every device)."""
        return torch.rand(tuple(shape), generator=generator).to(device)

    def _sample_pixels(self, params: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.likelihood == "bernoulli":
            u = self._uniform(params.shape, generator, params.device)
            return (u < torch.sigmoid(params)).float()
        if self.likelihood == "categorical":
            return self._sample_categorical(params, generator).unsqueeze(1)
        u = self._uniform(params[:, :1].shape, generator, params.device).clamp(1e-5, 1 - 1e-5)
        value = params[:, :1] + torch.exp(params[:, 1:].clamp(-7, 5)) * (torch.log(u) - torch.log1p(-u))
        return ((value.clamp(-1, 1) + 1) * (self.n_levels - 1) / 2).round()

    def _sample_categorical(self, logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Inverse-CDF draws over dimension 1 of ``logits`` ``(m, K, ...)``: float levels ``(m, ...)``."""
        cdf = logits.softmax(1).cumsum(1)
        u = self._uniform((logits.shape[0], 1, *logits.shape[2:]), generator, logits.device)
        return (cdf < u).sum(1).clamp_max(logits.shape[1] - 1).float()

    def _sample_autoregressive(self, z: torch.Tensor, onehot: torch.Tensor | None,
                               generator: torch.Generator) -> torch.Tensor:
        """Pixel by pixel in raster order: pixel i is drawn given z and the pixels before it."""
        m, (_, height, width) = z.shape[0], self.image_shape
        x = torch.zeros(m, *self.image_shape, device=z.device)
        for index in range(height * width):
            row, col = divmod(index, width)
            logits = self._decoder_params(z, onehot, x)[:, :, row, col]
            x[:, 0, row, col] = self._sample_categorical(logits, generator)
        return x

    @torch.no_grad()
    def reconstruct(self, x: Any, y: Any = None) -> torch.Tensor:
        """Decode the posterior mean of each image (a draw for the autoregressive decoder)."""
        mu, _ = self.encode(x, y)
        return self.decode(mu, y)

    @torch.no_grad()
    def sample(self, n_samples: int, *, y: Any = None,
               random_state: int | torch.Generator | None = None) -> torch.Tensor:
        """``n_samples`` images drawn from the model: z ~ p(z), then x ~ p(x|z). Shape ``(n, *image_shape)``.

        For a conditional model ``y`` gives the class of each sample (an int or ``(n,)`` labels).
        ``random_state``: an int (the same images every call), a ``torch.Generator`` or ``None``
        (fresh entropy), see :func:`genlab.validation.check_random_state`.
        """
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        generator = check_random_state(random_state)
        self.check_fitted("sample")
        with eval_mode(self):
            z = self.prior.sample(n_samples, random_state=generator)
            return self.decode(z, y, sample=True, random_state=generator)

    def _one_image(self, x: Any, name: str) -> torch.Tensor:
        """One image as ``(1, *image_shape)``, from any shape with ``H*W`` pixels."""
        n_pixels = self.image_shape[1] * self.image_shape[2]
        if isinstance(x, (str, bytes)):
            raise TypeError(f"{name} must be an image (an array or tensor of numbers), got a string")
        try:
            x = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float32))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} could not be read as an image: {err}") from err
        if x.numel() != n_pixels:
            raise ValueError(f"{name} must be one image of shape {self.image_shape} ({n_pixels} pixels), "
                             f"got shape {tuple(x.shape)}")
        return self.check_images(x.reshape(1, *self.image_shape), name)

    @torch.no_grad()
    def interpolate(self, x_start: Any, x_end: Any, steps: int = 8, y: Any = None) -> torch.Tensor:
        """Decode points on the straight line between the posterior means of two images.

        ``x_start`` and ``x_end`` are single images (any shape with ``H*W`` pixels); a conditional
        model takes one label ``y`` (an int). Returns ``(steps, *image_shape)``; the first and last
        rows reconstruct the two images.
        """
        steps = check_int(steps, "steps", minimum=2)
        a, b = self._one_image(x_start, "x_start"), self._one_image(x_end, "x_end")
        if y is not None and not (isinstance(y, (numbers.Integral, np.integer)) or
                                  (isinstance(y, torch.Tensor) and y.numel() == 1)):
            raise TypeError(f"y must be one class label (an int) for interpolate, got {type(y).__name__}")
        label = None if y is None else int(y)
        za, _ = self.encode(a, label)
        zb, _ = self.encode(b, label)
        t = torch.linspace(0, 1, steps, device=za.device).unsqueeze(1)
        return self.decode((1 - t) * za + t * zb, label)

    @torch.no_grad()
    def kl_per_dimension(self, x: Any, y: Any = None) -> torch.Tensor:
        """Average KL(q(z_d|x) || N(0, 1)) per latent dimension over ``x``, shape ``(latent_dim,)``."""
        mu, logvar = self.encode(x, y)
        return gaussian_kl(mu, logvar).mean(0)

    @torch.no_grad()
    def active_units(self, x: Any, y: Any = None, threshold: float = 0.01) -> int:
        """Latent dimensions whose posterior mean varies across ``x``: Cov_x(E_q[z_d]) > threshold.

        (The activity statistic of Burda et al. 2016; inactive units carry no information about x.)
        """
        threshold = check_float(threshold, "threshold", low=0.0)
        mu, _ = self.encode(x, y)
        if mu.shape[0] < 2:
            raise ValueError("active_units needs at least two images in x")
        return int((mu.var(0) > threshold).sum().item())


def _elbo_mistakes(model: VAE, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor,
                   log_px: torch.Tensor, kl: torch.Tensor, expected: float, n: int) -> dict[str, float]:
    """The values that typical mistakes in the negative ELBO produce, keyed by the hint that names them."""
    return {
        "the sign: the loss is the NEGATIVE ELBO, KL - log p(x|z), which is positive": -expected,
        "the KL term is missing: add 0.5 * sum(mu^2 + exp(logvar) - logvar - 1)": float((-log_px).mean()),
        "the KL term has the wrong sign: the negative ELBO ADDS the KL": float((-log_px - kl).mean()),
        "sum vs mean: average over the images of the batch (the loss is in nats per image)": expected * n,
        "z ignores the noise: use z = mu + exp(0.5 * logvar) * eps (the reparameterisation)":
            float((-model._log_px_given_z(x, model._decoder_params(mu, None)) + kl).mean()),
        "the standard deviation is exp(0.5 * logvar), not exp(logvar)": float(
            (-model._log_px_given_z(x, model._decoder_params(mu + torch.exp(logvar) * eps, None)) + kl).mean()),
    }


def negative_elbo_exercise(answer: Any, model: VAE, x: Any, *, seed: int = 0) -> tuple[Any, float, str]:
    """Support for the implement-it exercise of chapter 09: the reparameterised negative ELBO of a batch.

    ``answer`` is the learner's function ``f(x, mu, logvar, eps, decoder) -> scalar tensor``: the mean over
    the batch of ``-(log p(x|z) - KL(q(z|x) || N(0, I)))`` with ``z = mu + exp(logvar / 2) * eps``, where
    ``decoder(z)`` returns the categorical logits ``(n, n_levels, H, W)``. Returns ``(got, expected, hint)``:
    the learner's value, genlab's :meth:`VAE.loss` on the same batch and noise (eval mode, so β = 1, no
    dropout), and a hint that names the mistake the value matches (sign, missing KL, sum instead of mean,
    ...). ``got`` is the placeholder ``...`` itself when the exercise was not attempted.
    """
    if not isinstance(model, VAE) or model.likelihood != "categorical" or model.decoder_kind not in ("mlp", "conv") \
            or model.k != 1 or model.n_classes is not None or model.prior.kind != "standard":
        raise ValueError("model must be an unconditional categorical VAE with an mlp/conv decoder, k=1, standard prior")
    seed = check_int(seed, "seed", minimum=0)
    x = model.check_images(x, "x")
    generic = ("compare your value with the pieces: z = mu + exp(0.5 * logvar) * eps; log p(x|z) = minus the "
               "cross-entropy of the logits, summed over pixels; KL = 0.5 * sum(mu^2 + exp(logvar) - logvar - 1) "
               "over latent dimensions; return the batch mean of KL - log p(x|z).")
    with eval_mode(model), torch.no_grad():
        torch.manual_seed(seed)
        expected = float(model.loss(x))
        mu, logvar = model._encode(x, None)
        torch.manual_seed(seed)
        eps = torch.randn_like(mu)
        z = mu + torch.exp(0.5 * logvar) * eps
        log_px = model._log_px_given_z(x, model._decoder_params(z, None))
        kl = gaussian_kl(mu, logvar).sum(-1)
        if answer is Ellipsis or answer is None:
            return answer, expected, generic
        if not callable(answer):
            return answer, expected, "answer must be a function f(x, mu, logvar, eps, decoder) returning a number"
        try:
            got = answer(x.clone(), mu.clone(), logvar.clone(), eps.clone(), model.decoder_params)
            got = float(got.item() if isinstance(got, torch.Tensor) else got)
        except Exception as err:  # the learner's code: report, do not crash the check
            return f"a function that raised {err!r}", expected, generic
    n = x.shape[0]
    with eval_mode(model), torch.no_grad():
        mistakes = _elbo_mistakes(model, x, mu, logvar, eps, log_px, kl, expected, n)
    for hint, value in mistakes.items():
        if math.isfinite(got) and abs(got - value) <= 1e-3 * max(1.0, abs(value)) and abs(got - expected) > 1e-3:
            return got, expected, hint
    return got, expected, generic


class CVAE(VAE):
    """A conditional VAE (Sohn et al. 2015): encoder q(z|x, y) and decoder p(x|z, y) see the label.

    Batches are ``(images, labels)``; :meth:`sample` takes ``y`` (an int or one label per sample),
    :meth:`log_prob` estimates log p(x|y).
    """

    def __init__(self, image_shape: Sequence[int] = (1, 8, 8), latent_dim: int = 16, *, n_classes: int = 10,
                 **kwargs: Any) -> None:
        if kwargs.get("prior", "standard") == "vamp":
            raise ValueError("the VampPrior is unconditional; use prior='standard' or 'mog' for a CVAE")
        super().__init__(image_shape, latent_dim, n_classes=n_classes, **kwargs)

    def sample(self, n_samples: int, *, y: Any = None,
               random_state: int | torch.Generator | None = None) -> torch.Tensor:
        """``n_samples`` images of the classes ``y`` (an int or one label per sample); see :meth:`VAE.sample`."""
        if y is None:
            raise ValueError("CVAE.sample needs the class of the samples: y=int or one label per sample")
        return super().sample(n_samples, y=y, random_state=random_state)
