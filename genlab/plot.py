"""Labelled figures the chapters share: image grids, 2-D densities and samples, training curves."""
from __future__ import annotations

from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .validation import check_float, check_int


def _to_numpy(x: torch.Tensor | np.ndarray, name: str = "images") -> np.ndarray:
    """A float NumPy array of ``x`` with finite values; the error names ``name``."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().float().numpy()
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be an array or tensor of numbers, got a string")
    try:
        array = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} could not be read as an array of numbers: {err}") from err
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def image_grid(images: torch.Tensor | np.ndarray, *, nrow: int = 8, title: str | None = None,
               labels: Sequence | None = None, ax: plt.Axes | None = None, cmap: str = "gray",
               vmin: float | None = None, vmax: float | None = None) -> plt.Axes:
    """Show ``images`` of shape ``(n, 1, H, W)`` or ``(n, H, W)`` as a grid with a title.

    ``labels`` (one per image) are written in the corner of each tile.
    """
    array = _to_numpy(images, "images")
    nrow = check_int(nrow, "nrow", minimum=1)
    if array.ndim == 4:
        if array.shape[1] != 1:
            raise ValueError(f"image_grid shows single-channel images, got {array.shape[1]} channels")
        array = array[:, 0]
    if array.ndim != 3 or len(array) == 0:
        raise ValueError(f"image_grid expects images of shape (n, 1, H, W) or (n, H, W) with n >= 1, "
                         f"got shape {tuple(np.shape(images))}")
    if labels is not None and (isinstance(labels, (str, bytes)) or not hasattr(labels, "__len__")):
        raise TypeError(f"labels must be a sequence (one label per image), got {type(labels).__name__}")
    n, height, width = array.shape
    ncol = int(np.ceil(n / nrow))
    canvas = np.full((ncol * (height + 1) - 1, nrow * (width + 1) - 1), np.nan)
    for index, image in enumerate(array):
        row, col = divmod(index, nrow)
        canvas[row * (height + 1): row * (height + 1) + height, col * (width + 1): col * (width + 1) + width] = image
    if ax is None:
        _, ax = plt.subplots(figsize=(min(1.0 * nrow, 12), min(1.0 * ncol, 12)))
    ax.imshow(canvas, cmap=cmap, vmin=vmin if vmin is not None else np.nanmin(array),
              vmax=vmax if vmax is not None else np.nanmax(array), interpolation="nearest")
    if labels is not None:
        for index, label in enumerate(labels[:n]):
            row, col = divmod(index, nrow)
            ax.text(col * (width + 1), row * (height + 1), str(label), color="yellow", fontsize=7, va="top")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def scatter_2d(points: torch.Tensor | np.ndarray, *, title: str = "samples", ax: plt.Axes | None = None,
               c=None, s: float = 4, alpha: float = 0.6, label: str | None = None,
               xlabel: str = "$x_1$", ylabel: str = "$x_2$") -> plt.Axes:
    """Scatter plot of 2-D points with labelled axes."""
    array = _to_numpy(points, "points")
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"scatter_2d expects points of shape (n, 2), got {array.shape}")
    s = check_float(s, "s", low=0.0)
    alpha = check_float(alpha, "alpha", low=0.0, high=1.0)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(array[:, 0], array[:, 1], c=c, s=s, alpha=alpha, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")
    return ax


def density_2d(log_density: Callable[[np.ndarray], np.ndarray], *, xlim=(-3, 3), ylim=(-3, 3),
               resolution: int = 150, title: str = "density", ax: plt.Axes | None = None,
               points: torch.Tensor | np.ndarray | None = None, log_scale: bool = False) -> plt.Axes:
    """Colour map of a 2-D density from a function returning log-densities for an ``(m, 2)`` array."""
    if not callable(log_density):
        raise TypeError(f"log_density must be a function of an (m, 2) array, got {type(log_density).__name__}")
    resolution = check_int(resolution, "resolution", minimum=2)
    for limits, name in ((xlim, "xlim"), (ylim, "ylim")):
        if isinstance(limits, (str, bytes)) or not hasattr(limits, "__len__") or len(limits) != 2:
            raise ValueError(f"{name} must be a pair (low, high), got {limits!r}")
        low = check_float(limits[0], f"{name}[0]")
        if check_float(limits[1], f"{name}[1]") <= low:
            raise ValueError(f"{name} must be increasing (low < high), got {limits!r}")
    xs = np.linspace(*xlim, resolution)
    ys = np.linspace(*ylim, resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    grid = np.stack([grid_x.ravel(), grid_y.ravel()], 1)
    raw = log_density(grid)
    # -inf is a legitimate log-density (zero density), so no finiteness check here.
    values = raw.detach().cpu().double().numpy() if isinstance(raw, torch.Tensor) else np.asarray(raw, dtype=float)
    if values.size != resolution * resolution:
        raise ValueError(f"log_density must return one value per grid row ({resolution * resolution}), "
                         f"got shape {values.shape}")
    values = values.reshape(resolution, resolution)
    shown = values if log_scale else np.exp(values)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    mesh = ax.pcolormesh(grid_x, grid_y, shown, shading="auto", cmap="viridis")
    plt.colorbar(mesh, ax=ax, label="log density" if log_scale else "density")
    if points is not None:
        array = _to_numpy(points, "points")
        ax.scatter(array[:, 0], array[:, 1], s=2, c="white", alpha=0.4)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title)
    return ax


def training_curves(history, *, title: str = "training", ax: plt.Axes | None = None,
                    ylabel: str = "loss", log_y: bool = False) -> plt.Axes:
    """Plot ``train_loss`` (and ``val_loss`` if present) of a :class:`genlab.train.History` or dict."""
    if hasattr(history, "to_dict"):
        record = history.to_dict()
    elif isinstance(history, dict):
        record = dict(history)
    else:
        raise TypeError(f"history must be a genlab.train.History or a dict, got {type(history).__name__}")
    if not record.get("train_loss"):
        raise ValueError("history has no train_loss to plot")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    epochs = np.arange(1, len(record["train_loss"]) + 1)
    ax.plot(epochs, record["train_loss"], label="train")
    if record.get("val_loss"):
        ax.plot(np.arange(1, len(record["val_loss"]) + 1), record["val_loss"], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log_y:
        ax.set_yscale("log")
    ax.legend()
    return ax
