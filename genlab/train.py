"""One small trainer for every deep model in genlab.

A model trains here if it is an ``nn.Module`` with a ``loss(batch)`` method
returning a scalar tensor (``batch`` is whatever the data loader yields, moved
to the device), or one that defines its own step with several optimisers
(``configure_optimizers()`` and ``training_step(batch, optimizers)``, as GANs do).
The :class:`Trainer` adds what every chapter needs and none
should copy: device placement, Adam/AdamW, gradient clipping, mixed precision
on CUDA, an EMA of the weights, a ``tqdm.auto`` progress bar, validation,
early stopping, callbacks, and atomic checkpoints that resume the same run. ``Trainer.find_lr`` runs
the learning-rate range test; :func:`linear_scaled_lr` applies the linear-scaling rule for batch sizes.

Example::

    trainer = Trainer(model, lr=1e-3, checkpoint_path="runs/vae.pt")
    history = trainer.fit(train_x, epochs=20, val_data=val_x, patience=5)
"""
from __future__ import annotations

import copy
import math
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from . import distributed
from .base import GenerativeModule
from .exercises import attempted_function
from .io import atomic_write
from .layers import eval_mode
from .validation import (
    check_bool,
    check_device,
    check_float,
    check_int,
    check_option,
    check_optional_int,
    check_positive_float,
    check_probability,
    check_seed,
)

Batch = Any


class TrainingDiverged(RuntimeError):
    """Raised when the loss becomes NaN or infinite."""


@dataclass
class History:
    """Per-epoch record of a run.

    ``train_loss`` and ``val_loss`` hold one number per epoch; ``metrics`` holds the epoch mean of
    every value a model's ``training_step`` returns (e.g. ``d_loss`` and ``g_loss`` of a GAN).
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("train_loss", "val_loss"):
            if not isinstance(getattr(self, name), (list, tuple)):
                raise TypeError(f"{name} must be a list of floats, got {type(getattr(self, name)).__name__}")
        if not isinstance(self.metrics, dict):
            raise TypeError(f"metrics must be a dict of lists, got {type(self.metrics).__name__}")

    def to_dict(self) -> dict[str, Any]:
        return {"train_loss": list(self.train_loss), "val_loss": list(self.val_loss),
                "metrics": {k: list(v) for k, v in self.metrics.items()}}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> History:
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a dict (History.to_dict()), got {type(state).__name__}")
        return cls(list(state["train_loss"]), list(state["val_loss"]),
                   {k: list(v) for k, v in state.get("metrics", {}).items()})


class Callback:
    """Hooks the trainer calls; override the ones you need. Set ``trainer.should_stop`` to stop."""

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None: ...
    def on_batch_end(self, trainer: Trainer, loss: float) -> None: ...
    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None: ...
    def on_fit_end(self, trainer: Trainer) -> None: ...


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. ``LambdaCallback(on_epoch_end=lambda t, e, logs: ...)``."""

    def __init__(self, **hooks: Callable[..., None]) -> None:
        allowed = {"on_fit_start", "on_epoch_start", "on_batch_end", "on_epoch_end", "on_fit_end"}
        unknown = set(hooks) - allowed
        if unknown:
            raise ValueError(f"unknown callback hooks {sorted(unknown)}; allowed: {sorted(allowed)}")
        for name, hook in hooks.items():
            if not callable(hook):
                raise TypeError(f"callback hook {name} must be callable, got {type(hook).__name__}")
            setattr(self, name, hook)


class EMA:
    """Exponential moving average of a model's parameters (and a copy of its buffers)."""

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must lie in (0, 1), got {decay}")
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for param in self.model.parameters():
            param.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if [p.shape for p in model.parameters()] != [p.shape for p in self.model.parameters()]:
            raise ValueError("model's parameters do not match the averaged model's (another architecture?)")
        for ema_param, param in zip(self.model.parameters(), model.parameters()):
            ema_param.lerp_(param.detach(), 1.0 - self.decay)
        for ema_buffer, buffer in zip(self.model.buffers(), model.buffers()):
            ema_buffer.copy_(buffer)


def as_loader(data: Any, batch_size: int, shuffle: bool, generator: torch.Generator | None = None, *,
              name: str = "training data (train_data)") -> Iterable:
    """Turn a tensor, tuple of tensors, Dataset or DataLoader into something to iterate over.

    ``name`` says which data it is in error messages (training, validation, evaluation).
    """
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, torch.Tensor):
        _check_finite_tensor(data, name)
        data = TensorDataset(data)
    elif isinstance(data, (tuple, list)) and data and all(isinstance(t, torch.Tensor) for t in data):
        for tensor in data:
            if tensor.is_floating_point():
                _check_finite_tensor(tensor, name)
        data = TensorDataset(*data)
    if not isinstance(data, Dataset):
        raise ValueError(f"cannot use {type(data).__name__} as the {name}; pass a tensor, a tuple of tensors, "
                         "a Dataset or a DataLoader")
    if len(data) == 0:  # type: ignore[arg-type]
        raise ValueError(f"the {name} is empty")
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator)


def _check_finite_tensor(tensor: torch.Tensor, what: str) -> None:
    if tensor.numel() == 0:
        raise ValueError(f"the {what} is empty")
    if tensor.is_floating_point() and not torch.isfinite(tensor).all():
        raise ValueError(f"the {what} contains NaN or infinite values")


def _unwrap(batch: Batch) -> Batch:
    """A TensorDataset of one tensor yields 1-tuples; models get the tensor itself."""
    if isinstance(batch, (list, tuple)) and len(batch) == 1:
        return batch[0]
    return batch


def move_to(batch: Batch, device: torch.device) -> Batch:
    """Move a tensor, or the tensors in a tuple/list/dict, to ``device``."""
    device = check_device(device)
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: move_to(value, device) for key, value in batch.items()}
    return batch


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` with ``torch.save`` atomically: temp file in the same folder, then rename.

    A crash mid-write therefore never leaves a truncated checkpoint behind.
    """
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict (e.g. of state_dicts), got {type(state).__name__}")
    return atomic_write(path, lambda tmp_name: torch.save(state, tmp_name))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``: tensors and plain containers only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"checkpoint {path} is empty (0 bytes): the save that wrote it did not finish; "
                         "delete it and train or save again")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, pickle.UnpicklingError) as err:
        # The message of a refused global names an unsafe loading option: never repeat it.
        kind = "holds objects other than tensors and plain containers" if "weights_only" in str(err) \
            else "is truncated, corrupt or not a torch checkpoint"
        raise ValueError(f"checkpoint {path} {kind} ({type(err).__name__}); genlab loads only plain "
                         "checkpoints it wrote itself: delete it and train or save again") from None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path} holds a {type(state).__name__}, not the dict genlab saves")
    return state


class Optimizers(Mapping[str, torch.optim.Optimizer]):
    """The named optimisers of a run, handed to a model's ``training_step``.

    It reads as a mapping (``optimizers["generator"]`` is the ``torch.optim.Optimizer``) and adds
    :meth:`step`, which applies one update with the Trainer's policies: the NaN/inf stop
    (:class:`TrainingDiverged` before any weight changes), gradient clipping, then the step.
    """

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer], trainer: Trainer) -> None:
        if not isinstance(optimizers, Mapping) or not all(isinstance(o, torch.optim.Optimizer)
                                                           for o in optimizers.values()):
            raise TypeError(f"optimizers must be a dict of name -> torch.optim.Optimizer, got {optimizers!r}")
        self._optimizers = dict(optimizers)
        self._trainer = trainer

    def __getitem__(self, name: str) -> torch.optim.Optimizer:
        if name not in self._optimizers:
            raise KeyError(f"no optimizer named {name!r}; the model configured {sorted(self._optimizers)}")
        return self._optimizers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._optimizers)

    def __len__(self) -> int:
        return len(self._optimizers)

    def step(self, name: str, loss: torch.Tensor) -> float:
        """Minimise ``loss`` with the optimiser ``name``: check, zero the grads, backward, clip, step.

        Returns the loss as a float. Raises :class:`TrainingDiverged` if it is NaN or infinite.
        """
        optimizer = self[name]
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            shape = tuple(getattr(loss, "shape", ()))
            raise TypeError(f"loss must be a scalar tensor, got {type(loss).__name__} {shape}")
        value = float(loss.detach())
        self._trainer._check_finite(value, "loss" if len(self) == 1 else f"{name} loss")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if self._trainer.grad_clip is not None:
            # clip_grad_norm_ returns the norm *before* clipping: what a monitor needs to see explode.
            norm = nn.utils.clip_grad_norm_(params, self._trainer.grad_clip)
            if self._trainer.track_grad_norm:
                self._trainer.last_grad_norm[name] = float(norm)
        elif self._trainer.track_grad_norm:
            self._trainer.last_grad_norm[name] = grad_norm(params)
        optimizer.step()
        return value


class Trainer:
    """Fit any genlab model: one with ``loss(batch)``, or one that defines its own training step.

    **One loss** (autoencoders, VAEs, flows): the model has ``loss(batch) -> scalar tensor`` and the
    Trainer builds one optimiser from ``optimizer``, ``lr`` and ``weight_decay``.

    **Several optimisers** (GANs): the model defines

    - ``configure_optimizers() -> dict[str, torch.optim.Optimizer]``: named optimisers, each with
      its own parameters, learning rate and betas (``lr``/``optimizer``/``weight_decay`` must then
      be left unset here: the model owns them);
    - ``training_step(batch, optimizers) -> dict[str, float]``: one step on a batch. It updates
      with ``optimizers.step(name, loss)`` (see :class:`Optimizers`; that applies the NaN stop and
      ``grad_clip``) and returns the numbers to log. Each key's epoch mean goes to
      ``history.metrics``; ``history.train_loss`` gets the mean of ``"loss"`` if returned, else of
      the first key.

    Both kinds get the rest: device placement, mixed precision on CUDA, the EMA of the weights,
    the progress bar, callbacks, validation with ``loss(batch)`` (when the model has one), early
    stopping, atomic checkpoints with *every* optimiser's state, exact resume, and the NaN stop
    (:class:`TrainingDiverged`, the last good checkpoint kept). A :class:`GenerativeModule` counts
    one update per training step (per batch) in ``n_updates``.

    Args:
        model: an ``nn.Module`` with ``loss(batch)`` or ``configure_optimizers`` + ``training_step``.
        lr: learning rate (default 1e-3) of the one-loss optimiser.
        optimizer: ``"adam"``, ``"adamw"``, ``"adamax"`` or a ready ``torch.optim.Optimizer``.
        weight_decay: weight decay (decoupled for AdamW).
        batch_size: used when ``fit`` gets tensors rather than a DataLoader.
        grad_clip: clip the gradient norm of each optimiser's parameters to this value (None: off).
        amp: mixed precision (bfloat16 autocast) when training on CUDA; ignored on the CPU.
        ema_decay: keep an EMA copy of the weights in ``trainer.ema.model`` (None: off).
        device: where to train (default :func:`genlab.device.get_device`).
        callbacks: :class:`Callback` objects.
        checkpoint_path: write a checkpoint there after every epoch (atomically).
        progress: show a ``tqdm.auto`` progress bar over epochs.
        seed: seeds the data-order generator so runs (and resumed runs) repeat.

    **Several processes** (``torchrun --nproc-per-node N script.py``, see :mod:`genlab.distributed`):
    the Trainer joins the process group torchrun describes, wraps a one-loss model in
    ``DistributedDataParallel``, shards the data with a ``DistributedSampler`` seeded with ``seed``
    (``set_epoch`` every epoch), averages the logged losses over the processes, and lets only rank 0
    show the progress bar and write checkpoints. ``batch_size`` is per process: the global batch is
    ``batch_size * N``. Validation runs on every process over the whole ``val_data`` (so early
    stopping agrees); callbacks run on every process. Models with ``training_step`` (GANs) are not
    supported under DDP (a clear error).
    """

    def __init__(self, model: nn.Module, *, lr: float | None = None, optimizer: str | torch.optim.Optimizer = "adam",
                 weight_decay: float = 0.0, batch_size: int = 64, grad_clip: float | None = None,
                 amp: bool = True, ema_decay: float | None = None, device: str | torch.device | None = None,
                 callbacks: Iterable[Callback] = (), checkpoint_path: str | os.PathLike | None = None,
                 progress: bool = True, seed: int = 0) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.custom_step = callable(getattr(model, "training_step", None))
        if self.custom_step and not callable(getattr(model, "configure_optimizers", None)):
            raise ValueError(f"{type(model).__name__} defines training_step but no configure_optimizers(); "
                             "the Trainer needs both")
        if not self.custom_step and not callable(getattr(model, "loss", None)):
            raise ValueError(f"{type(model).__name__} has no loss(batch) method (nor training_step); "
                             "the Trainer needs one")
        if self.custom_step and (lr is not None or optimizer != "adam" or weight_decay != 0.0):
            raise ValueError(f"{type(model).__name__} configures its own optimizers; set lr, optimizer and "
                             "weight_decay in its configure_optimizers(), not in the Trainer")
        lr = 1e-3 if lr is None else check_positive_float(lr, "lr")
        weight_decay = check_positive_float(weight_decay, "weight_decay", allow_zero=True)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.grad_clip = None if grad_clip is None else check_positive_float(grad_clip, "grad_clip")
        if ema_decay is not None:
            check_probability(ema_decay, "ema_decay", open_low=True, open_high=True)
        self.progress = check_bool(progress, "progress")
        self.device = check_device(device)
        # Joins torchrun's process group (a no-op in one process): nccl for CUDA training, gloo otherwise.
        self.dist = distributed.setup(None if self.device.type == "cuda" else "gloo")
        if self.dist.enabled and self.custom_step:
            raise ValueError(f"{type(model).__name__} defines its own training_step; DistributedDataParallel "
                             "training supports one-loss models (loss(batch)) only: run it in one process")
        self.model = model.to(self.device)
        self._ddp = self._wrap_ddp() if self.dist.enabled else None
        self.optimizers = Optimizers(self._make_optimizers(optimizer, lr, weight_decay), self)
        self.amp = check_bool(amp, "amp") and self.device.type == "cuda"
        self.ema = EMA(self.model, ema_decay) if ema_decay is not None else None
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"callbacks must be genlab.train.Callback objects, got {type(callback).__name__}")
        if checkpoint_path is not None and not isinstance(checkpoint_path, (str, os.PathLike)):
            raise TypeError(f"checkpoint_path must be a path or None, got {type(checkpoint_path).__name__}")
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        self.seed = check_seed(seed, "seed")
        self.generator = torch.Generator().manual_seed(self.seed)
        self.history = History()
        self.epoch = 0  # epochs completed so far
        self._position = (0, 0)  # (epoch, step) being trained, for error messages
        self.should_stop = False
        self.best_val = math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.epochs_without_improvement = 0
        # Global gradient norm (before clipping) of each optimiser's last step, recorded only when a callback
        # asks for it (genlab.diagnostics.GradNormMonitor sets track_grad_norm): reading it costs a device sync.
        self.track_grad_norm = False
        self.last_grad_norm: dict[str, float] = {}

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The optimiser of a one-loss model (models with several use ``trainer.optimizers[name]``)."""
        if len(self.optimizers) != 1:
            raise AttributeError(f"this run has several optimizers {list(self.optimizers)}; "
                                 "use trainer.optimizers[name]")
        return next(iter(self.optimizers.values()))

    # -------------------------------------------------------------- set-up
    def _wrap_ddp(self) -> nn.Module:
        """DistributedDataParallel around ``loss`` (see :class:`genlab.distributed.LossForward`)."""
        device_ids = [self.device.index if self.device.index is not None else torch.cuda.current_device()] \
            if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(distributed.LossForward(self.model), device_ids=device_ids)

    def _train_loader(self, data: Any) -> Iterable:
        """The training loader: shuffled with ``self.generator``, or sharded by a DistributedSampler under DDP."""
        if not self.dist.enabled:
            return as_loader(data, self.batch_size, shuffle=True, generator=self.generator)
        if isinstance(data, DataLoader):
            if not isinstance(data.sampler, DistributedSampler):
                raise ValueError("train_data: under torchrun pass a tensor, tuple of tensors or Dataset (the Trainer "
                                 "shards it), or a DataLoader whose sampler is a DistributedSampler")
            return data
        dataset = as_loader(data, self.batch_size, shuffle=False).dataset  # type: ignore[attr-defined]
        sampler = DistributedSampler(dataset, num_replicas=self.dist.world_size, rank=self.dist.rank,
                                     shuffle=True, seed=self.seed)
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler)

    def _make_optimizers(self, optimizer: str | torch.optim.Optimizer, lr: float,
                         weight_decay: float) -> dict[str, torch.optim.Optimizer]:
        if self.custom_step:
            optimizers = self.model.configure_optimizers()
            if not isinstance(optimizers, dict) or not optimizers or not all(
                    isinstance(k, str) and isinstance(v, torch.optim.Optimizer) for k, v in optimizers.items()):
                raise TypeError(f"{type(self.model).__name__}.configure_optimizers() must return a non-empty "
                                f"dict of name -> torch.optim.Optimizer, got {optimizers!r:.80}")
            return dict(optimizers)
        if isinstance(optimizer, torch.optim.Optimizer):
            return {"model": optimizer}
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters")
        choices = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adamax": torch.optim.Adamax}
        check_option(optimizer, "optimizer", sorted(choices))
        return {"model": choices[optimizer](params, lr=lr, weight_decay=weight_decay)}

    # -------------------------------------------------------------- training
    def fit(self, train_data: Any, epochs: int, val_data: Any = None, *, patience: int | None = None,
            resume: bool = False) -> History:
        """Train for ``epochs`` epochs in total (a resumed run counts the epochs already done).

        Args:
            train_data: tensor, tuple of tensors, Dataset or DataLoader.
            epochs: total number of epochs.
            val_data: optional validation data; its mean ``loss`` is logged each epoch.
            patience: stop after this many epochs without a better validation loss,
                and restore the best weights (needs ``val_data``).
            resume: continue from ``checkpoint_path`` if it exists.

        Raises:
            TrainingDiverged: if a loss is NaN/inf (the last good checkpoint is kept).
        """
        epochs = check_int(epochs, "epochs", minimum=1)
        patience = check_optional_int(patience, "patience", minimum=1)
        if check_bool(resume, "resume"):
            if self.checkpoint_path is None:
                raise ValueError("resume=True needs a checkpoint_path")
            if self.checkpoint_path.is_file():
                self.load(self.checkpoint_path)
        if patience is not None and val_data is None:
            raise ValueError("early stopping (patience=...) needs val_data")
        if val_data is not None and not callable(getattr(self.model, "loss", None)):
            raise ValueError(f"val_data needs a loss(batch) method, which {type(self.model).__name__} lacks")
        train_loader = self._train_loader(train_data)
        val_loader = (as_loader(val_data, self.batch_size, shuffle=False, name="validation data (val_data)")
                      if val_data is not None else None)
        self.should_stop = False
        self._call("on_fit_start")
        bar = tqdm(range(self.epoch, epochs), desc=type(self.model).__name__, unit="epoch",
                   disable=not (self.progress and self.dist.is_main), initial=self.epoch, total=epochs)
        for epoch in bar:
            self._call("on_epoch_start", epoch)
            logs = self._train_one_epoch(train_loader, epoch)
            self.history.train_loss.append(logs["train_loss"])
            if self.custom_step:
                for name, value in logs.items():
                    if name != "train_loss":
                        self.history.metrics.setdefault(name, []).append(value)
            if val_loader is not None:
                logs["val_loss"] = self.evaluate(val_loader)
                self.history.val_loss.append(logs["val_loss"])
                self._track_best(logs["val_loss"], patience)
            self.epoch = epoch + 1
            self._call("on_epoch_end", epoch, logs)
            bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()})
            if self.checkpoint_path is not None and self.dist.is_main:
                self.save(self.checkpoint_path)
            if self.should_stop:
                break
        bar.close()
        if patience is not None and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self._call("on_fit_end")
        return self.history

    def _train_one_epoch(self, loader: Iterable, epoch: int) -> dict[str, float]:
        """One pass over ``loader``; returns the example-weighted mean of each logged value."""
        self.model.train()
        if isinstance(getattr(loader, "sampler", None), DistributedSampler):
            loader.sampler.set_epoch(epoch)  # type: ignore[attr-defined]  # a new, seeded shuffle each epoch
        totals: dict[str, float] = {}
        counts: dict[str, int] = {}
        for step, batch in enumerate(loader):
            self._position = (epoch, step)
            batch = move_to(_unwrap(batch), self.device)
            logs = self._step(batch)
            if isinstance(self.model, GenerativeModule):
                self.model.mark_updated()
            if self.ema is not None:
                self.ema.update(self.model)
            size = _batch_size(batch)
            for name, value in logs.items():
                totals[name] = totals.get(name, 0.0) + value * size
                counts[name] = counts.get(name, 0) + size
            headline = "loss" if "loss" in logs else next(iter(logs))
            self._call("on_batch_end", logs[headline])
        if self.dist.enabled:  # the mean over every process's examples
            totals = distributed.all_reduce_sum(totals, self.device)
            counts = {k: int(v) for k, v in distributed.all_reduce_sum(counts, self.device).items()}
        means = {name: totals[name] / counts[name] for name in totals}
        headline = "loss" if "loss" in means else next(iter(means))
        return {"train_loss": means[headline], **means}

    def _step(self, batch: Batch) -> dict[str, float]:
        """One training step on a device batch: the model's own, or minimise ``loss``."""
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            if self.custom_step:
                logs = self.model.training_step(batch, self.optimizers)
            else:
                logs = {"loss": self.model.loss(batch) if self._ddp is None else self._ddp(batch)}
        if not self.custom_step:
            return {"loss": self.optimizers.step("model", logs["loss"])}
        if not isinstance(logs, dict) or not logs:
            raise TypeError(f"{type(self.model).__name__}.training_step must return a non-empty dict of "
                            f"name -> float, got {type(logs).__name__}")
        logs = {name: float(value) for name, value in logs.items()}
        for name, value in logs.items():
            self._check_finite(value, name)
        return logs

    def _check_finite(self, value: float, what: str) -> None:
        """Raise :class:`TrainingDiverged` for a NaN/inf ``value`` (before any weight is changed by it)."""
        if math.isfinite(value):
            return
        epoch, step = self._position
        kept = f"; the last good checkpoint is kept at {self.checkpoint_path}" if self.checkpoint_path else ""
        raise TrainingDiverged(
            f"{what} became {value} at epoch {epoch + 1}, step {step + 1}{kept}. "
            "Try a smaller learning rate, gradient clipping (grad_clip=1.0) or check the inputs.")

    @torch.no_grad()
    def evaluate(self, data: Any, model: nn.Module | None = None) -> float:
        """Mean ``loss`` over ``data`` (example-weighted), in eval mode, without gradients.

        The model's train/eval mode is restored afterwards, also when a batch raises.
        """
        model = self.model if model is None else model
        if not isinstance(model, nn.Module) or not callable(getattr(model, "loss", None)):
            raise ValueError(f"evaluate needs a model with a loss(batch) method, got {type(model).__name__}")
        loader = as_loader(data, self.batch_size, shuffle=False, name="evaluation data (data)")
        total, count = 0.0, 0
        with eval_mode(model):
            for batch in loader:
                batch = move_to(_unwrap(batch), self.device)
                size = _batch_size(batch)
                total += float(model.loss(batch)) * size
                count += size
        return total / max(count, 1)

    def _track_best(self, val_loss: float, patience: int | None) -> None:
        if val_loss < self.best_val:
            self.best_val = val_loss
            self.epochs_without_improvement = 0
            if patience is not None:
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            self.epochs_without_improvement += 1
            if patience is not None and self.epochs_without_improvement >= patience:
                self.should_stop = True

    def _call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    # -------------------------------------------------------------- learning-rate range test
    def find_lr(self, train_data: Any, *, lr_min: float = 1e-6, lr_max: float = 1.0, n_steps: int = 100,
                smoothing: float = 0.05, diverge_factor: float = 4.0) -> dict[str, Any]:
        """The learning-rate range test (Smith 2017): one short run with a geometrically growing rate.

        Starting from the current weights it takes up to ``n_steps`` optimiser steps, the rate growing from
        ``lr_min`` to ``lr_max`` by the same factor each step (:func:`lr_range`), and records the loss of
        each batch; it stops early once the smoothed loss exceeds ``diverge_factor`` times its best (or
        becomes NaN/inf). Afterwards the model, the optimiser, the learning rate and the random states are
        restored exactly, so ``fit`` starts from where it would have started.

        Returns a dict: ``lr`` (the rates tried), ``loss`` (the raw batch losses), ``smoothed`` (their
        bias-corrected exponential moving average with weight ``smoothing``) and ``suggestion``: a tenth of
        the rate at the smoothed minimum, a rate still safely below where the loss turns up.

        Raises:
            ValueError: bad bounds or sizes, or a model with its own ``training_step`` (several optimisers).
        """
        if self.custom_step:
            raise ValueError(f"find_lr needs a one-loss model; {type(self.model).__name__} defines its own "
                             "training_step with several optimizers")
        lrs = lr_range(lr_min, lr_max, n_steps)
        smoothing = check_float(smoothing, "smoothing", low=0.0, high=1.0, low_inclusive=False)
        diverge_factor = check_float(diverge_factor, "diverge_factor", low=1.0, low_inclusive=False)
        loader = as_loader(train_data, self.batch_size, shuffle=True, generator=self.generator)
        saved = {"model": copy.deepcopy(self.model.state_dict()),
                 "optimizer": copy.deepcopy(self.optimizer.state_dict()),
                 "torch_rng": torch.get_rng_state(), "data_rng": self.generator.get_state()}
        self.model.train()
        tried: list[float] = []
        losses: list[float] = []
        smoothed: list[float] = []
        average, best = 0.0, math.inf
        batches = iter(loader)
        try:
            for step, lr in enumerate(lrs):
                try:
                    batch = next(batches)
                except StopIteration:  # a range test may need more steps than one epoch has batches
                    batches = iter(loader)
                    batch = next(batches)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                batch = move_to(_unwrap(batch), self.device)
                with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    loss = self.model.loss(batch) if self._ddp is None else self._ddp(batch)
                value = float(loss.detach())
                if not math.isfinite(value):
                    break
                average = (1 - smoothing) * average + smoothing * value
                smooth = average / (1 - (1 - smoothing) ** (step + 1))
                tried.append(lr)
                losses.append(value)
                smoothed.append(smooth)
                best = min(best, smooth)
                if smooth > diverge_factor * best:
                    break
                self.optimizers.step("model", loss)
        finally:
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])  # restores the configured learning rate too
            torch.set_rng_state(saved["torch_rng"])
            self.generator.set_state(saved["data_rng"])
        if not smoothed:
            raise TrainingDiverged(f"the loss was NaN/inf at the first step (lr={lr_min:g}); check the inputs")
        best_index = min(range(len(smoothed)), key=smoothed.__getitem__)
        return {"lr": tried, "loss": losses, "smoothed": smoothed, "suggestion": tried[best_index] / 10}

    # -------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: weights, every optimiser, EMA, RNG states, history."""
        state = {
            "model": self.model.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "epoch": self.epoch,
            "history": self.history.to_dict(),
            "best_val": self.best_val,
            "epochs_without_improvement": self.epochs_without_improvement,
            "torch_rng": torch.get_rng_state(),
            "data_rng": self.generator.get_state(),
        }
        if self.best_state is not None:
            state["best_state"] = self.best_state
        if self.ema is not None:
            state["ema"] = self.ema.model.state_dict()
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        return state

    def save(self, path: str | os.PathLike) -> Path:
        """Write a resumable checkpoint atomically."""
        return save_checkpoint(self.state_dict(), path)

    def load(self, path: str | os.PathLike) -> None:
        """Restore a checkpoint written by :meth:`save` (loaded with ``weights_only=True``)."""
        state = load_checkpoint(path, map_location=self.device)
        saved = state["optimizers"] if "optimizers" in state else {"model": state["optimizer"]}
        if set(saved) != set(self.optimizers):
            raise ValueError(f"the checkpoint at {path} holds optimizers {sorted(saved)}, "
                             f"but this run has {sorted(self.optimizers)}")
        self.model.load_state_dict(state["model"])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(saved[name])
        self.epoch = int(state["epoch"])
        self.history = History.from_dict(state["history"])
        self.best_val = float(state["best_val"])
        self.epochs_without_improvement = int(state["epochs_without_improvement"])
        self.best_state = state.get("best_state")
        torch.set_rng_state(state["torch_rng"].cpu())
        self.generator.set_state(state["data_rng"].cpu())
        if self.ema is not None and "ema" in state:
            self.ema.model.load_state_dict(state["ema"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])


def _batch_size(batch: Batch) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.ndim else 1
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_size(batch[0])
    if isinstance(batch, dict) and batch:
        return _batch_size(next(iter(batch.values())))
    return 1


def grad_norm(parameters: Iterable[torch.Tensor]) -> float:
    """The global L2 norm of the gradients of ``parameters`` (those without a gradient are skipped).

    This is the norm :func:`torch.nn.utils.clip_grad_norm_` compares with its ``max_norm``.
    """
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    if not isinstance(parameters, Iterable):
        raise TypeError(f"parameters must be an iterable of tensors, got {type(parameters).__name__}")
    params = list(parameters)
    if not all(isinstance(p, torch.Tensor) for p in params):
        raise TypeError("parameters must be an iterable of tensors (e.g. model.parameters())")
    grads = [p.grad.detach() for p in params if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])))


def lr_range(lr_min: float, lr_max: float, n_steps: int) -> list[float]:
    """``n_steps`` learning rates growing geometrically from ``lr_min`` to ``lr_max`` (both included).

    The schedule of the range test (:meth:`Trainer.find_lr`): each step multiplies the rate by
    ``(lr_max / lr_min) ** (1 / (n_steps - 1))``, so every decade gets the same number of steps.
    """
    lr_min = check_positive_float(lr_min, "lr_min")
    lr_max = check_positive_float(lr_max, "lr_max")
    n_steps = check_int(n_steps, "n_steps", minimum=2)
    if lr_max <= lr_min:
        raise ValueError(f"lr_max must be larger than lr_min, got lr_min={lr_min:g}, lr_max={lr_max:g}")
    ratio = (lr_max / lr_min) ** (1.0 / (n_steps - 1))
    return [lr_min * ratio**i for i in range(n_steps)]


def linear_scaled_lr(base_lr: float, base_batch_size: int, batch_size: int) -> float:
    """The linear-scaling heuristic (Goyal et al. 2017): multiply the rate by the factor the batch grows.

    A batch ``k`` times larger averages ``k`` times as many gradients per step and takes ``k`` times
    fewer steps per epoch; scaling the rate by ``k`` keeps the distance travelled per epoch about the same
    (a heuristic that holds for moderate ``k`` and breaks down for very large batches or rates).
    """
    base_lr = check_positive_float(base_lr, "base_lr")
    base_batch_size = check_int(base_batch_size, "base_batch_size", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    return base_lr * batch_size / base_batch_size


# ============================================================================ the chapter's implement-it checks
def _exercise_tensors() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Two fixed lists of tensors (an average and current weights, or gradients), drawn off the global stream."""
    generator = torch.Generator().manual_seed(13)
    shapes = [(4, 3), (3,), (2, 4)]
    first = [torch.randn(shape, generator=generator, dtype=torch.float64) for shape in shapes]
    second = [3 * torch.randn(shape, generator=generator, dtype=torch.float64) for shape in shapes]
    return first, second


def _run_list_answer(answer: Callable[..., Any], args: tuple[Any, ...], expected: list[torch.Tensor],
                     general: str, name: str, shape_hint: str) -> tuple[Any, torch.Tensor, str | None]:
    """Call a learner's function on ``args``: ``(got, expected, hint)`` with both values flattened.

    ``hint`` is None when the answer is a list of tensors shaped like ``expected`` (the caller then
    compares values); otherwise ``got`` describes what came back and ``hint`` says what to fix.
    """
    flat_expected = torch.cat([e.flatten() for e in expected])
    try:
        got = answer(*args)
    except Exception as err:  # a learner's error is a wrong answer, not a crash of the check
        return f"raised {type(err).__name__}: {err}", flat_expected, general
    if not isinstance(got, (list, tuple)) or len(got) != len(expected) or not all(
            isinstance(g, torch.Tensor) and g.shape == e.shape for g, e in zip(got, expected)):
        return f"{type(got).__name__} (not a list of tensors shaped like {name})", flat_expected, shape_hint
    return torch.cat([g.detach().double().flatten() for g in got]), flat_expected, None


def ema_update_exercise(answer: Any, decay: float = 0.9) -> tuple[Any, Any, str]:
    """Run a learner's ``update(average, params, decay) -> new average`` against :class:`EMA`.

    ``average`` and ``params`` are lists of tensors (the averaged and the current weights of a small
    network); the learner returns the new averaged tensors. The expected value is what
    :meth:`EMA.update` computes on the same network. Returns ``(got, expected, hint)`` for
    :func:`genlab.exercises.check`; ``...`` (not attempted) is passed through as ``got``.

    Raises:
        TypeError: ``answer`` is neither ``...`` nor a function.
    """
    decay = check_probability(decay, "decay", open_low=True, open_high=True)
    general = "new average = decay * average + (1 - decay) * current weights, for each tensor"
    if not attempted_function(answer, "update(average, params, decay)"):
        return answer, None, general
    average, params = _exercise_tensors()
    net = nn.ParameterList([nn.Parameter(a.clone()) for a in average])
    ema = EMA(net, decay)
    for param, value in zip(net.parameters(), params):
        param.data.copy_(value)
    ema.update(net)
    expected = [p.detach().clone() for p in ema.model.parameters()]
    got, flat_expected, hint = _run_list_answer(
        answer, ([a.clone() for a in average], [p.clone() for p in params], decay), expected, general,
        "average", "return one new tensor per tensor of average")
    if hint is not None:
        return got, flat_expected, hint
    swapped = torch.cat([(decay * p + (1 - decay) * a).flatten() for a, p in zip(average, params)])
    if torch.allclose(got, swapped):
        return got, flat_expected, "decay weighs the *old average*; the current weights get only (1 - decay)"
    return got, flat_expected, general


def clip_grad_norm_exercise(answer: Any, max_norm: float = 1.0) -> tuple[Any, Any, str]:
    """Run a learner's ``clip(grads, max_norm) -> clipped grads`` against the Trainer's clipping.

    ``grads`` is a list of gradient tensors whose global norm exceeds ``max_norm``; the expected value
    is what :func:`torch.nn.utils.clip_grad_norm_` (used by ``Trainer(grad_clip=...)``) leaves in the
    gradients. Returns ``(got, expected, hint)`` for :func:`genlab.exercises.check`; ``...`` (not
    attempted) is passed through as ``got``.

    Raises:
        TypeError: ``answer`` is neither ``...`` nor a function.
    """
    max_norm = check_positive_float(max_norm, "max_norm")
    general = ("compute ONE norm over all tensors together, sqrt(sum of every squared entry); if it exceeds "
               "max_norm, multiply every tensor by max_norm / norm, else return them unchanged")
    if not attempted_function(answer, "clip(grads, max_norm)"):
        return answer, None, general
    _, grads = _exercise_tensors()
    params = [nn.Parameter(torch.zeros_like(g)) for g in grads]
    for param, g in zip(params, grads):
        param.grad = g.clone()
    nn.utils.clip_grad_norm_(params, max_norm)
    expected = [p.grad.detach().clone() for p in params]
    got, flat_expected, hint = _run_list_answer(answer, ([g.clone() for g in grads], max_norm), expected, general,
                                                "grads", "return one clipped tensor per gradient tensor")
    if hint is not None:
        return got, flat_expected, hint
    per_tensor = torch.cat([(g * min(1.0, max_norm / float(g.norm()))).flatten() for g in grads])
    if torch.allclose(got, per_tensor):
        return got, flat_expected, "you clipped each tensor on its own; clip by the norm of all of them together"
    return got, flat_expected, general
