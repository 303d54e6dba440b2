"""Seeing what a training run does: per-layer statistics, gradient norms, and early warnings.

Every piece here is model-agnostic (it never imports a model family) and plugs into
:class:`genlab.train.Trainer` as a :class:`~genlab.train.Callback` or works on any ``nn.Module``:

* :func:`layer_statistics` -- one forward/backward pass of ``model.loss(batch)`` with hooks on every
  ``Linear``/``Conv`` layer: the spread of its outputs and of the gradient flowing back into them.
  :class:`LayerStatsMonitor` records it after every epoch.
* :func:`input_gradient_norm` -- how steep a critic is at given points (its local Lipschitz constant).
* :class:`GradNormMonitor` -- the global gradient norm of every optimiser step (before clipping), the
  first thing to look at when a loss explodes.
* :class:`MetricMonitor` -- any metric of the model every few epochs (e.g. the modes a GAN covers,
  with :func:`genlab.gan.mode_coverage`), with an optional ``stop_if`` that ends a run that went wrong.
  :class:`PosteriorCollapseMonitor` is the one for VAEs: KL per latent dimension and active units.
* :class:`SampleSnapshots` -- a few samples every few epochs, for sample grids over time.
* :func:`rescale_init_` -- redraw a network's weights at a chosen scale (a controlled bad initialisation).
* :func:`autocast_log_prob` -- a model's log-likelihood computed under bfloat16 autocast, to compare
  with full precision.
* :class:`MLPAutoencoder` -- a small fully connected autoencoder for vectors with a chosen output
  activation and no range check on its input: the probe model of the training experiments (genlab's
  image autoencoders accept only images in [-1, 1], which is exactly what an experiment on input
  scaling must be free to violate).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .layers import ACTIVATIONS, eval_mode, mlp
from .train import Callback, Trainer, move_to
from .validation import (
    as_float_tensor,
    check_bool,
    check_float,
    check_int,
    check_option,
    check_positive_float,
    check_random_state,
)

__all__ = ["MLPAutoencoder", "rescale_init_", "layer_statistics", "LayerStatsMonitor", "input_gradient_norm",
           "GradNormMonitor",
           "MetricMonitor", "PosteriorCollapseMonitor", "SampleSnapshots", "autocast_log_prob"]

#: Layers whose outputs and output gradients :func:`layer_statistics` records.
WATCHED_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


# ============================================================================ the probe model
class MLPAutoencoder(nn.Module):
    """A fully connected autoencoder ``n_features -> hidden -> latent_dim -> hidden reversed -> n_features``.

    ``loss(batch)`` is the mean squared error between a batch of vectors and its reconstruction. The
    input is *not* range-checked: with ``output_activation="tanh"`` targets outside [-1, 1] cannot be
    reached, and that is what an experiment on input scaling shows.

    Args:
        n_features: size of each input vector (64 for the 8x8 digits flattened).
        hidden: widths of the encoder's hidden layers (the decoder mirrors them).
        latent_dim: size of the code.
        activation: non-linearity between layers (see :data:`genlab.layers.ACTIVATIONS`).
        output_activation: ``"tanh"`` or None (a linear output).
    """

    def __init__(self, n_features: int, hidden: Sequence[int] = (64, 32), latent_dim: int = 8, *,
                 activation: str = "relu", output_activation: str | None = "tanh") -> None:
        super().__init__()
        self.n_features = check_int(n_features, "n_features", minimum=1)
        self.latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
            raise TypeError(f"hidden must be a sequence of layer widths, got {hidden!r}")
        hidden = [check_int(h, f"hidden[{i}]", minimum=1) for i, h in enumerate(hidden)]
        check_option(activation, "activation", sorted(ACTIVATIONS))
        check_option(output_activation, "output_activation", (None, "tanh"))
        self.encoder = mlp([self.n_features, *hidden, self.latent_dim], activation=activation)
        self.decoder = mlp([self.latent_dim, *reversed(hidden), self.n_features], activation=activation,
                           final_activation=output_activation)

    def _check(self, x: Any, name: str = "x") -> torch.Tensor:
        x = as_float_tensor(x, name=name, dtype=torch.float32)
        if x.shape[1] != self.n_features:
            raise ValueError(f"{name} must have shape (n, {self.n_features}), got {tuple(x.shape)}")
        return x.to(next(self.parameters()).device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def loss(self, batch: Any) -> torch.Tensor:
        """Mean squared reconstruction error of a batch ``(n, n_features)`` (or ``(x, labels)``)."""
        if isinstance(batch, (tuple, list)):
            if not batch:
                raise ValueError("batch is an empty tuple; expected x or (x, labels)")
            batch = batch[0]
        x = self._check(batch, "batch")
        return F.mse_loss(self(x), x)

    @torch.no_grad()
    def reconstruct(self, x: Any) -> torch.Tensor:
        """Reconstructions of ``x`` ``(n, n_features)`` in eval mode, without gradients."""
        x = self._check(x)
        with eval_mode(self):
            return self(x)


# ============================================================================ initialisation
@torch.no_grad()
def rescale_init_(module: nn.Module, std: float | None = None, *, seed: int = 0) -> nn.Module:
    """Redraw every ``Linear``/``Conv`` weight of ``module`` from N(0, std²) and zero the biases.

    ``std=None`` draws with He's scale ``sqrt(2 / fan_in)`` per layer (He et al. 2015), the variance-
    preserving choice for ReLU networks; a fixed ``std`` (e.g. 1.0) ignores the fan-in, which is the
    classic bad initialisation: activations grow or shrink geometrically with depth. Returns ``module``
    (changed in place); ``seed`` makes the draw repeat without touching the global random state.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if std is not None:
        std = check_positive_float(std, "std")
    generator = check_random_state(seed, "seed")
    layers = [m for m in module.modules() if isinstance(m, WATCHED_LAYERS)]
    if not layers:
        raise ValueError(f"module has no Linear or Conv layers to initialise ({type(module).__name__})")
    for layer in layers:
        weight = layer.weight
        fan_in = weight[0].numel() if not isinstance(layer, nn.ConvTranspose2d) else weight[:, 0].numel()
        scale = std if std is not None else (2.0 / fan_in) ** 0.5
        weight.copy_(torch.randn(weight.shape, generator=generator, dtype=weight.dtype) * scale)
        if layer.bias is not None:
            layer.bias.zero_()
    return module


# ============================================================================ per-layer statistics
def _check_loss_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(getattr(model, "loss", None)):
        raise ValueError(f"layer statistics need a model with a loss(batch) method, which "
                         f"{type(model).__name__} lacks")
    return model


def layer_statistics(model: nn.Module, batch: Any) -> dict[str, dict[str, float]]:
    """Spread of every layer's outputs and of the loss gradient flowing into them, on one batch.

    Runs ``model.loss(batch)`` forward and backward once with hooks on every ``Linear``/``Conv``
    layer (in the order the forward pass meets them) and returns, per layer name,
    ``activation_mean`` and ``activation_std`` (of the layer's output, before its non-linearity) and
    ``grad_std`` (of d loss / d output). Healthy networks keep both spreads within an order of magnitude
    from layer to layer; a bad initialisation makes them grow or vanish geometrically. The parameters'
    ``.grad`` are left as they were.
    """
    model = _check_loss_model(model)
    names = {m: n for n, m in model.named_modules() if isinstance(m, WATCHED_LAYERS)}
    if not names:
        raise ValueError(f"model has no Linear or Conv layers to watch ({type(model).__name__})")
    stats: dict[str, dict[str, float]] = {}
    outputs: dict[str, torch.Tensor] = {}

    def forward_hook(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        name = names[module]
        if name in stats:  # a layer used twice: keep its first use
            return
        out = output.detach().float()
        stats[name] = {"activation_mean": float(out.mean()), "activation_std": float(out.std())}
        if output.requires_grad:
            output.retain_grad()
            outputs[name] = output

    saved_grads = {p: p.grad for p in model.parameters()}
    handles = [module.register_forward_hook(forward_hook) for module in names]
    try:
        loss = model.loss(batch)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError(f"{type(model).__name__}.loss must return a scalar tensor")
        loss.backward()
    finally:
        for handle in handles:
            handle.remove()
        for param, grad in saved_grads.items():
            param.grad = grad
    for name, output in outputs.items():
        stats[name]["grad_std"] = float(output.grad.float().std()) if output.grad is not None else 0.0
    for values in stats.values():
        values.setdefault("grad_std", 0.0)
    return stats


class LayerStatsMonitor(Callback):
    """Record :func:`layer_statistics` on a fixed ``batch`` at the end of every ``every``-th epoch.

    ``history`` is a list of ``(epoch, statistics)`` pairs (epochs counted from 1).
    """

    def __init__(self, batch: Any, every: int = 1) -> None:
        if batch is None:
            raise ValueError("batch must be a batch the model's loss accepts, got None")
        self.batch = batch
        self.every = check_int(every, "every", minimum=1)
        self.history: list[tuple[int, dict[str, dict[str, float]]]] = []

    def on_fit_start(self, trainer: Trainer) -> None:
        _check_loss_model(trainer.model)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if (epoch + 1) % self.every == 0:
            self.history.append((epoch + 1, layer_statistics(trainer.model, move_to(self.batch, trainer.device))))


def input_gradient_norm(function: Callable[[torch.Tensor], torch.Tensor], x: Any) -> torch.Tensor:
    """``|| d function(x_i) / d x_i ||`` for every row ``x_i`` of ``x``: how steep a critic is at those points.

    ``function`` maps a batch to one score per example (a GAN's discriminator). A 1-Lipschitz critic, what
    the Wasserstein GAN needs, has norms at most 1: the gradient penalty pulls them towards 1, spectral
    normalisation bounds them by 1, and weight clipping bounds them by a (usually far smaller) constant.
    Returns a ``(n,)`` tensor; parameters' ``.grad`` are not touched.
    """
    if not callable(function):
        raise TypeError(f"function must map a batch to one score per example, got {type(function).__name__}")
    x = as_float_tensor(x, name="x", ndim=max(2, x.ndim) if isinstance(x, torch.Tensor) else 2, dtype=torch.float32)
    if isinstance(function, nn.Module):
        x = x.to(next(function.parameters()).device)
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        scores = function(x)
        if not isinstance(scores, torch.Tensor) or scores.numel() != x.shape[0]:
            raise ValueError(f"function must return one score per example ({x.shape[0]}), got "
                             f"{tuple(getattr(scores, 'shape', ()))}")
        (grad,) = torch.autograd.grad(scores.sum(), x)
    return grad.flatten(1).norm(dim=1).detach()


# ============================================================================ gradient norms
class GradNormMonitor(Callback):
    """The global gradient norm (before any clipping) of every optimiser step of a run.

    ``norms[name]`` lists one value per step of the optimiser ``name`` (``"model"`` for one-loss models;
    ``"generator"`` / ``"discriminator"`` for GANs). A norm that grows by orders of magnitude over a few
    steps is the signature of exploding gradients; ``Trainer(grad_clip=c)`` caps the step it causes.
    """

    def __init__(self) -> None:
        self.norms: dict[str, list[float]] = {}
        self._seen: dict[str, float] = {}

    def on_fit_start(self, trainer: Trainer) -> None:
        trainer.track_grad_norm = True
        trainer.last_grad_norm.clear()

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        for name, value in trainer.last_grad_norm.items():
            self.norms.setdefault(name, []).append(value)
        trainer.last_grad_norm.clear()  # a GAN's generator does not step every batch: record only real steps


# ============================================================================ metrics over time
class MetricMonitor(Callback):
    """Evaluate ``metric(model)`` every ``every`` epochs; optionally stop the run when ``stop_if`` says so.

    ``metric`` gets the trained model (in eval mode, without gradients; the EMA copy with
    ``use_ema=True``) and returns a mapping of name -> number. ``history`` collects them, ``epochs`` the
    epochs (from 1) at which they were taken. ``stop_if(history) -> bool`` is asked after each evaluation;
    when true the Trainer stops after that epoch and ``stopped_epoch`` records it: a run that collapsed
    is caught early instead of spending its whole budget.
    """

    def __init__(self, metric: Callable[[nn.Module], Mapping[str, float]], every: int = 1, *,
                 stop_if: Callable[[list[dict[str, float]]], bool] | None = None, use_ema: bool = False) -> None:
        if not callable(metric):
            raise TypeError(f"metric must be a function model -> dict of numbers, got {type(metric).__name__}")
        if stop_if is not None and not callable(stop_if):
            raise TypeError(f"stop_if must be a function history -> bool or None, got {type(stop_if).__name__}")
        self.metric = metric
        self.every = check_int(every, "every", minimum=1)
        self.stop_if = stop_if
        self.use_ema = check_bool(use_ema, "use_ema")
        self.history: list[dict[str, float]] = []
        self.epochs: list[int] = []
        self.stopped_epoch: int | None = None

    def _model(self, trainer: Trainer) -> nn.Module:
        if self.use_ema:
            if trainer.ema is None:
                raise ValueError("use_ema=True needs a Trainer with ema_decay set")
            return trainer.ema.model
        return trainer.model

    def on_fit_start(self, trainer: Trainer) -> None:
        self._model(trainer)  # fail before training, not after the first epoch

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """``metric(model)`` in eval mode without gradients, checked to be a mapping of numbers."""
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        with eval_mode(model), torch.no_grad():
            values = self.metric(model)
        if not isinstance(values, Mapping) or not values:
            raise TypeError(f"metric must return a non-empty dict of name -> number, got {type(values).__name__}")
        return {str(k): check_float(v, f"metric value {k!r}", allow_inf=True) for k, v in values.items()}

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if (epoch + 1) % self.every:
            return
        self.epochs.append(epoch + 1)
        self.history.append(self.evaluate(self._model(trainer)))
        if self.stop_if is not None and self.stop_if(self.history):
            trainer.should_stop = True
            self.stopped_epoch = epoch + 1

    def series(self, name: str) -> list[float]:
        """The values of one metric over the evaluations."""
        if not self.history or name not in self.history[0]:
            known = sorted(self.history[0]) if self.history else []
            raise KeyError(f"no metric named {name!r} recorded; known: {known}")
        return [values[name] for values in self.history]


class PosteriorCollapseMonitor(MetricMonitor):
    """Watch a VAE's posterior collapse: KL per latent dimension and active units every ``every`` epochs.

    Needs a model with ``kl_per_dimension(x)`` and ``active_units(x, threshold=...)`` (genlab's VAEs).
    Each evaluation records ``kl`` (total KL in nats, averaged over ``x``), ``active_units`` and
    ``kl_d`` for every dimension ``d``; ``kl_per_dim`` keeps the vectors. With ``min_active`` set, the
    run stops at the first evaluation at or after epoch ``warmup`` with fewer than ``min_active`` active
    units: the decoder has learnt to ignore ``z`` (a fresh VAE has no active unit yet, hence the warm-up).
    """

    def __init__(self, x: Any, every: int = 1, *, threshold: float = 0.01, min_active: int | None = None,
                 warmup: int = 0) -> None:
        if x is None:
            raise ValueError("x must be a batch of data to encode, got None")
        self.x = x
        self.threshold = check_float(threshold, "threshold", low=0.0)
        self.min_active = None if min_active is None else check_int(min_active, "min_active", minimum=1)
        self.warmup = check_int(warmup, "warmup", minimum=0)
        self.kl_per_dim: list[torch.Tensor] = []
        super().__init__(self._measure, every, stop_if=None if self.min_active is None else self._collapsed)

    def _collapsed(self, history: list[dict[str, float]]) -> bool:
        # Every VAE starts with its units inactive: judge only after ``warmup`` epochs.
        return self.epochs[-1] >= self.warmup and history[-1]["active_units"] < self.min_active

    def _measure(self, model: nn.Module) -> dict[str, float]:
        kl = model.kl_per_dimension(self.x).detach().cpu()
        self.kl_per_dim.append(kl)
        values = {"kl": float(kl.sum()), "active_units": float(model.active_units(self.x, threshold=self.threshold))}
        values.update({f"kl_{d}": float(v) for d, v in enumerate(kl)})
        return values

    def on_fit_start(self, trainer: Trainer) -> None:
        model = trainer.model
        if not (callable(getattr(model, "kl_per_dimension", None)) and callable(getattr(model, "active_units", None))):
            raise TypeError(f"PosteriorCollapseMonitor needs a model with kl_per_dimension and active_units "
                            f"(a genlab VAE), got {type(model).__name__}")
        super().on_fit_start(trainer)


class SampleSnapshots(Callback):
    """Keep ``model.sample(n_samples, random_state=seed)`` every ``every`` epochs (the same noise each time).

    ``snapshots`` is a list of ``(epoch, samples)`` pairs (epochs from 1, samples on the CPU): a grid
    per row shows how samples evolve, and a collapse into one kind of sample shows up early.
    """

    def __init__(self, n_samples: int = 16, every: int = 1, *, seed: int = 0, use_ema: bool = False) -> None:
        self.n_samples = check_int(n_samples, "n_samples", minimum=1)
        self.every = check_int(every, "every", minimum=1)
        self.seed = check_int(seed, "seed", minimum=0)
        self.use_ema = check_bool(use_ema, "use_ema")
        self.snapshots: list[tuple[int, torch.Tensor]] = []

    def on_fit_start(self, trainer: Trainer) -> None:
        if not callable(getattr(trainer.model, "sample", None)):
            raise TypeError(f"SampleSnapshots needs a model with sample(n), got {type(trainer.model).__name__}")
        if self.use_ema and trainer.ema is None:
            raise ValueError("use_ema=True needs a Trainer with ema_decay set")

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if (epoch + 1) % self.every:
            return
        model = trainer.ema.model if self.use_ema else trainer.model
        with eval_mode(model), torch.no_grad():
            samples = model.sample(self.n_samples, random_state=self.seed)
        self.snapshots.append((epoch + 1, samples.detach().cpu()))


# ============================================================================ mixed precision
def autocast_log_prob(model: nn.Module, x: Any, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """``model.log_prob(x)`` computed under ``torch.autocast`` with ``dtype`` (float32 result).

    Autocast runs matrix products in the low-precision type and keeps reductions in float32; comparing
    with ``model.log_prob(x)`` shows what mixed precision changes in a likelihood. Uses the model's device
    type; raises ``ValueError`` if autocast does not support it with ``dtype``.
    """
    if not isinstance(model, nn.Module) or not callable(getattr(model, "log_prob", None)):
        raise TypeError(f"model must be an nn.Module with log_prob(x), got {type(model).__name__}")
    check_option(dtype, "dtype", (torch.bfloat16, torch.float16))
    device_type = next(model.parameters()).device.type
    if not torch.amp.is_autocast_available(device_type):
        raise ValueError(f"autocast is not available on device type {device_type!r} (dtype)")
    if device_type == "cpu" and dtype != torch.bfloat16:
        raise ValueError("on the CPU autocast supports dtype=torch.bfloat16 only")
    with torch.autocast(device_type=device_type, dtype=dtype):
        return model.log_prob(x).float()
