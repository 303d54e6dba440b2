"""Data-parallel training with PyTorch's own machinery: ``torchrun`` + DistributedDataParallel.

Nothing here distributes work by hand. ``torchrun --nproc-per-node N script.py`` starts N copies of
an unchanged training script and sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`setup` (called by :class:`genlab.train.Trainer`) reads them and joins the
process group (``gloo`` on the CPU, ``nccl`` on CUDA, one GPU per process). The Trainer then wraps the
model in :class:`torch.nn.parallel.DistributedDataParallel`, shards the data with a seeded
:class:`torch.utils.data.DistributedSampler` and averages the logged losses across processes; only
rank 0 shows the progress bar and writes checkpoints.

**Batch size.** ``Trainer(batch_size=B)`` is the batch of *one process*: N processes take one
optimiser step on a global batch of ``B * N`` examples (DDP averages the gradients, which equals the
gradient of the mean loss over the global batch when every process holds ``B`` examples). To keep a
single-process recipe unchanged, divide its batch size by N.

Example (2 processes on one machine)::

    torchrun --nproc-per-node 2 train_vae.py
"""
from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .validation import check_int, check_option

__all__ = ["DistInfo", "setup", "all_reduce_sum", "LossForward"]

BACKENDS = ("gloo", "nccl")


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its ``rank`` among ``world_size`` processes, ``local_rank`` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    def __post_init__(self) -> None:
        check_int(self.world_size, "world_size", minimum=1)
        check_int(self.rank, "rank", minimum=0, maximum=self.world_size - 1)
        check_int(self.local_rank, "local_rank", minimum=0)

    @property
    def enabled(self) -> bool:
        """True when several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that logs and writes files."""
        return self.rank == 0


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer (set by torchrun)") from None


def _launched_by_torchrun() -> bool:
    """True when the environment holds a multi-process launch (``WORLD_SIZE`` > 1 and ``RANK``)."""
    world = _env_int("WORLD_SIZE")
    return world is not None and world > 1 and _env_int("RANK") is not None


def _info() -> DistInfo:
    """The rank, world size and local rank of this process (rank 0 of 1 outside a process group)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK") or 0)
    return DistInfo()


def setup(backend: str | None = None) -> DistInfo:
    """Join the process group ``torchrun`` described in the environment; a no-op otherwise.

    Args:
        backend: ``"gloo"`` or ``"nccl"``; default ``nccl`` when CUDA is available, else ``gloo``.

    Returns:
        The :class:`DistInfo` of this process. Calling it again, or in a plain ``python script.py``
        run, returns the current state without side effects. On CUDA it also selects the process's
        GPU (``cuda:LOCAL_RANK``). The group is left at interpreter exit (``destroy_process_group``).
    """
    if backend is not None:
        check_option(backend, "backend", BACKENDS)
    if not dist.is_available() or dist.is_initialized() or not _launched_by_torchrun():
        return _info()
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise ValueError(f"WORLD_SIZE>1 but {name} is not set: launch the script with torchrun")
    use_cuda = torch.cuda.is_available() and backend != "gloo"
    if backend is None:
        backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(_env_int("LOCAL_RANK") or 0)
    dist.init_process_group(backend=backend)
    atexit.register(_cleanup)
    return _info()


def _cleanup() -> None:
    """Leave the process group at interpreter exit (registered by :func:`setup`)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: dict[str, float], device: torch.device | str = "cpu") -> dict[str, float]:
    """Sum each value over all processes (returned unchanged outside a process group).

    ``device`` must be the process's CUDA device under ``nccl``; any device works under ``gloo``.
    """
    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        raise TypeError(f"values must be a dict of name -> float, got {type(values).__name__}")
    if not _info().enabled or not values:
        return dict(values)
    names = sorted(values)
    tensor = torch.tensor([float(values[n]) for n in names], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return {name: float(v) for name, v in zip(names, tensor.tolist())}


class LossForward(nn.Module):
    """``forward(batch) = model.loss(batch)``: lets DDP see the loss computation as a forward call.

    DDP synchronises gradients for the computation run through its ``forward``; genlab models train
    through ``loss(batch)``, so the Trainer wraps this adapter (whose parameters *are* the model's)
    rather than the model itself.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not callable(getattr(model, "loss", None)):
            raise TypeError(f"model must have a loss(batch) method, got {type(model).__name__}")
        self.model = model

    def forward(self, batch: Any) -> torch.Tensor:
        return self.model.loss(batch)
