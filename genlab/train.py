"""One small trainer for every deep model in genlab.

A model trains here if it is an ``nn.Module`` with a ``loss(batch)`` method
returning a scalar tensor (``batch`` is whatever the data loader yields, moved
to the device). The :class:`Trainer` adds what every chapter needs and none
should copy: device placement, Adam/AdamW, gradient clipping, mixed precision
on CUDA, an EMA of the weights, a ``tqdm.auto`` progress bar, validation,
early stopping, callbacks, and atomic checkpoints that resume the same run.

Example::

    trainer = Trainer(model, lr=1e-3, checkpoint_path="runs/vae.pt")
    history = trainer.fit(train_x, epochs=20, val_data=val_x, patience=5)
"""
from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm.auto import tqdm

from .base import GenerativeModule
from .device import get_device
from .io import atomic_write

Batch = Any


class TrainingDiverged(RuntimeError):
    """Raised when the loss becomes NaN or infinite."""


@dataclass
class History:
    """Per-epoch record of a run: ``train_loss``, ``val_loss`` and anything callbacks log."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)

    def log(self, name: str, value: float) -> None:
        self.extra.setdefault(name, []).append(float(value))

    def to_dict(self) -> dict[str, Any]:
        return {"train_loss": list(self.train_loss), "val_loss": list(self.val_loss),
                "extra": {k: list(v) for k, v in self.extra.items()}}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "History":
        return cls(list(state["train_loss"]), list(state["val_loss"]),
                   {k: list(v) for k, v in state["extra"].items()})


class Callback:
    """Hooks the trainer calls; override the ones you need. Set ``trainer.should_stop`` to stop."""

    def on_fit_start(self, trainer: "Trainer") -> None: ...
    def on_epoch_start(self, trainer: "Trainer", epoch: int) -> None: ...
    def on_batch_end(self, trainer: "Trainer", loss: float) -> None: ...
    def on_epoch_end(self, trainer: "Trainer", epoch: int, logs: dict[str, float]) -> None: ...
    def on_fit_end(self, trainer: "Trainer") -> None: ...


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. ``LambdaCallback(on_epoch_end=lambda t, e, logs: ...)``."""

    def __init__(self, **hooks: Callable[..., None]) -> None:
        allowed = {"on_fit_start", "on_epoch_start", "on_batch_end", "on_epoch_end", "on_fit_end"}
        unknown = set(hooks) - allowed
        if unknown:
            raise ValueError(f"unknown callback hooks {sorted(unknown)}; allowed: {sorted(allowed)}")
        for name, hook in hooks.items():
            setattr(self, name, hook)


class EMA:
    """Exponential moving average of a model's parameters (and a copy of its buffers)."""

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for param in self.model.parameters():
            param.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for ema_param, param in zip(self.model.parameters(), model.parameters()):
            ema_param.lerp_(param.detach(), 1.0 - self.decay)
        for ema_buffer, buffer in zip(self.model.buffers(), model.buffers()):
            ema_buffer.copy_(buffer)


def as_loader(data: Any, batch_size: int, shuffle: bool, generator: torch.Generator | None = None) -> Iterable:
    """Turn a tensor, tuple of tensors, Dataset or DataLoader into something to iterate over."""
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, torch.Tensor):
        _check_finite_tensor(data, "training data")
        data = TensorDataset(data)
    elif isinstance(data, (tuple, list)) and data and all(isinstance(t, torch.Tensor) for t in data):
        for tensor in data:
            if tensor.is_floating_point():
                _check_finite_tensor(tensor, "training data")
        data = TensorDataset(*data)
    if not isinstance(data, Dataset):
        raise ValueError(f"cannot train on {type(data).__name__}; pass a tensor, a tuple of tensors, a Dataset or a DataLoader")
    if len(data) == 0:  # type: ignore[arg-type]
        raise ValueError("the training data is empty")
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
    return atomic_write(path, lambda tmp_name: torch.save(state, tmp_name))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``: tensors and plain containers only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location=map_location, weights_only=True)


class Trainer:
    """Fit any genlab model that has a ``loss(batch)`` method.

    Args:
        model: an ``nn.Module`` with ``loss(batch) -> scalar tensor``.
        lr: learning rate.
        optimizer: ``"adam"``, ``"adamw"``, ``"adamax"`` or a ready ``torch.optim.Optimizer``.
        weight_decay: weight decay (decoupled for AdamW).
        batch_size: used when ``fit`` gets tensors rather than a DataLoader.
        grad_clip: clip the global gradient norm to this value (None: no clipping).
        amp: mixed precision (bfloat16 autocast) when training on CUDA; ignored on the CPU.
        ema_decay: keep an EMA copy of the weights in ``trainer.ema.model`` (None: off).
        device: where to train (default :func:`genlab.device.get_device`).
        callbacks: :class:`Callback` objects.
        checkpoint_path: write a checkpoint there after every epoch (atomically).
        progress: show a ``tqdm.auto`` progress bar over epochs.
        seed: seeds the data-order generator so runs (and resumed runs) repeat.
    """

    def __init__(self, model: nn.Module, *, lr: float = 1e-3, optimizer: str | torch.optim.Optimizer = "adam",
                 weight_decay: float = 0.0, batch_size: int = 64, grad_clip: float | None = None,
                 amp: bool = True, ema_decay: float | None = None, device: str | torch.device | None = None,
                 callbacks: Iterable[Callback] = (), checkpoint_path: str | os.PathLike | None = None,
                 progress: bool = True, seed: int = 0) -> None:
        if not hasattr(model, "loss") or not callable(model.loss):
            raise ValueError(f"{type(model).__name__} has no loss(batch) method; the Trainer needs one")
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or None, got {grad_clip!r}")
        self.device = device if isinstance(device, torch.device) else get_device(device)
        self.model = model.to(self.device)
        self.optimizer = self._make_optimizer(optimizer, lr, weight_decay)
        self.batch_size = batch_size
        self.grad_clip = grad_clip
        self.amp = bool(amp) and self.device.type == "cuda"
        self.ema = EMA(self.model, ema_decay) if ema_decay is not None else None
        self.callbacks = list(callbacks)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        self.progress = progress
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.history = History()
        self.epoch = 0  # epochs completed so far
        self.should_stop = False
        self.best_val = math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.epochs_without_improvement = 0

    # -------------------------------------------------------------- set-up
    def _make_optimizer(self, optimizer: str | torch.optim.Optimizer, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        if isinstance(optimizer, torch.optim.Optimizer):
            return optimizer
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters")
        choices = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adamax": torch.optim.Adamax}
        if optimizer not in choices:
            raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {sorted(choices)} or pass an Optimizer")
        return choices[optimizer](params, lr=lr, weight_decay=weight_decay)

    # -------------------------------------------------------------- training
    def fit(self, train_data: Any, epochs: int, val_data: Any = None, *, patience: int | None = None,
            resume: bool = False) -> History:
        """Train for ``epochs`` epochs in total (a resumed run counts the epochs already done).

        Args:
            train_data: tensor, tuple of tensors, Dataset or DataLoader.
            epochs: total number of epochs.
            val_data: optional validation data; its mean loss is logged each epoch.
            patience: stop after this many epochs without a better validation loss,
                and restore the best weights (needs ``val_data``).
            resume: continue from ``checkpoint_path`` if it exists.

        Raises:
            TrainingDiverged: if a loss is NaN/inf (the last good checkpoint is kept).
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        if patience is not None and val_data is None:
            raise ValueError("early stopping (patience=...) needs val_data")
        if resume:
            if self.checkpoint_path is None:
                raise ValueError("resume=True needs a checkpoint_path")
            if self.checkpoint_path.is_file():
                self.load(self.checkpoint_path)
        train_loader = as_loader(train_data, self.batch_size, shuffle=True, generator=self.generator)
        val_loader = as_loader(val_data, self.batch_size, shuffle=False) if val_data is not None else None
        self.should_stop = False
        self._call("on_fit_start")
        bar = tqdm(range(self.epoch, epochs), desc=type(self.model).__name__, unit="epoch",
                   disable=not self.progress, initial=self.epoch, total=epochs)
        for epoch in bar:
            self._call("on_epoch_start", epoch)
            train_loss = self._train_one_epoch(train_loader, epoch)
            logs = {"train_loss": train_loss}
            self.history.train_loss.append(train_loss)
            if val_loader is not None:
                logs["val_loss"] = self.evaluate(val_loader)
                self.history.val_loss.append(logs["val_loss"])
                self._track_best(logs["val_loss"], patience)
            self.epoch = epoch + 1
            self._call("on_epoch_end", epoch, logs)
            bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()})
            if self.checkpoint_path is not None:
                self.save(self.checkpoint_path)
            if self.should_stop:
                break
        bar.close()
        if patience is not None and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self._call("on_fit_end")
        return self.history

    def _train_one_epoch(self, loader: Iterable, epoch: int) -> float:
        self.model.train()
        total, count = 0.0, 0
        for step, batch in enumerate(loader):
            batch = move_to(_unwrap(batch), self.device)
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                loss = self.model.loss(batch)
            if not torch.isfinite(loss):
                kept = f"; the last good checkpoint is kept at {self.checkpoint_path}" if self.checkpoint_path else ""
                raise TrainingDiverged(
                    f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}{kept}. "
                    "Try a smaller learning rate, gradient clipping (grad_clip=1.0) or check the inputs.")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
            if isinstance(self.model, GenerativeModule):
                self.model.mark_updated()
            if self.ema is not None:
                self.ema.update(self.model)
            value = float(loss.detach())
            size = _batch_size(batch)
            total, count = total + value * size, count + size
            self._call("on_batch_end", value)
        return total / max(count, 1)

    @torch.no_grad()
    def evaluate(self, data: Any, model: nn.Module | None = None) -> float:
        """Mean ``loss`` over ``data`` (example-weighted), in eval mode, without gradients."""
        model = self.model if model is None else model
        loader = as_loader(data, self.batch_size, shuffle=False)
        was_training = model.training
        model.eval()
        total, count = 0.0, 0
        for batch in loader:
            batch = move_to(_unwrap(batch), self.device)
            size = _batch_size(batch)
            total += float(model.loss(batch)) * size
            count += size
        model.train(was_training)
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

    # -------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: weights, optimizer, EMA, RNG states, history."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
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
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
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
