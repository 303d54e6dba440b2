"""Image completion with any encoder-decoder generative model, and the peak signal-to-noise ratio.

:func:`inpaint` fills the missing pixels of images with a model that has ``encode(x) -> (mean, logvar)``
and ``decode(z, sample=...)`` (the VAEs of :mod:`genlab.vae`): starting from a fill value, it encodes the
current image, decodes it, and copies the decoded pixels into the *missing* positions only, keeping the
observed ones (the iterative imputation of Rezende et al. 2014, section 5.2). With ``sample=False``
the latent is the encoder's mean and the decoded image its mean (a deterministic fixed point);
with ``sample=True`` both are drawn, a Markov chain whose draws are plausible completions.

The module imports no model family: it works with any object that has those two methods.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from .validation import _to_tensor, as_image_tensor, check_bool, check_float, check_int, check_random_state

__all__ = ["inpaint", "psnr", "half_mask"]


def half_mask(image_shape: Any, *, keep: str = "top") -> torch.Tensor:
    """A ``(1, H, W)`` boolean mask, True where a pixel is *observed*: the ``keep`` half (top/bottom/left/right)."""
    if isinstance(image_shape, (str, bytes)) or len(tuple(image_shape)) != 3:
        raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
    c, h, w = (check_int(s, "image_shape", minimum=1) for s in image_shape)
    if keep not in ("top", "bottom", "left", "right"):
        raise ValueError(f"unknown keep {keep!r}; choose one of ('top', 'bottom', 'left', 'right')")
    mask = torch.zeros(c, h, w, dtype=torch.bool)
    if keep == "top":
        mask[:, : h // 2] = True
    elif keep == "bottom":
        mask[:, h // 2:] = True
    elif keep == "left":
        mask[:, :, : w // 2] = True
    else:
        mask[:, :, w // 2:] = True
    return mask


def _check_mask(mask: Any, images: torch.Tensor) -> torch.Tensor:
    tensor = _to_tensor(mask, "mask")
    if tensor.dtype != torch.bool:
        if not bool(((tensor == 0) | (tensor == 1)).all()):
            raise ValueError("mask must be boolean (True where a pixel is observed) or 0/1")
        tensor = tensor.bool()
    try:
        tensor = torch.broadcast_to(tensor, images.shape)
    except RuntimeError as err:
        raise ValueError(f"mask of shape {tuple(tensor.shape)} does not broadcast to the images "
                         f"{tuple(images.shape)}") from err
    return tensor.to(images.device)


@torch.no_grad()
def inpaint(model: Any, images: Any, mask: Any, *, n_steps: int = 30, fill: Any = None, sample: bool = False,
            integer_levels: bool = False, random_state: int | torch.Generator | None = None) -> torch.Tensor:
    """Complete the unobserved pixels of ``images`` with ``model``.

    Args:
        model: has ``encode(x) -> (mean, logvar)`` and ``decode(z, sample=..., random_state=...)`` (a genlab VAE).
        images: ``(n, C, H, W)`` in the model's data units (levels 0..16 for the digits VAE).
        mask: boolean, broadcastable to ``images``, True where a pixel is observed (kept unchanged).
        n_steps: encode-decode rounds.
        fill: starting value of the missing pixels: a number, or an image ``(C, H, W)`` such as the mean
            training image (None: 0).
        sample: draw ``z`` and the pixels instead of taking means (a stochastic completion).
        integer_levels: round the filled pixels to integers (models of integer pixel levels, such as the
            categorical VAE, accept nothing else).
        random_state: seed or ``torch.Generator`` for ``sample=True``.

    Returns:
        The completed images (observed pixels identical to the input).
    """
    if not (callable(getattr(model, "encode", None)) and callable(getattr(model, "decode", None))):
        raise TypeError(f"model must have encode and decode methods (a genlab VAE), got {type(model).__name__}")
    x = as_image_tensor(images, "images")
    observed = _check_mask(mask, x)
    n_steps = check_int(n_steps, "n_steps", minimum=1)
    sample = check_bool(sample, "sample")
    integer_levels = check_bool(integer_levels, "integer_levels")
    generator = check_random_state(random_state)
    if fill is None:
        start = torch.zeros_like(x)
    elif isinstance(fill, (int, float)) and not isinstance(fill, bool):
        start = torch.full_like(x, check_float(fill, "fill"))
    else:
        fill_t = _to_tensor(fill, "fill").to(x)
        if fill_t.shape != x.shape[1:] or not torch.isfinite(fill_t).all():
            raise ValueError(f"fill must be a number or a finite image of shape {tuple(x.shape[1:])}, got "
                             f"shape {tuple(fill_t.shape)}")
        start = fill_t.expand_as(x)
    current = torch.where(observed, x, start.round() if integer_levels else start)
    for _ in range(n_steps):
        mean, logvar = model.encode(current)
        z = mean + torch.randn(mean.shape, generator=generator).to(mean) * (0.5 * logvar).exp() if sample else mean
        decoded = model.decode(z, sample=sample, random_state=generator).to(x)
        decoded = decoded.round() if integer_levels else decoded
        current = torch.where(observed, x, decoded)
    return current


def psnr(reference: Any, estimate: Any, *, data_range: float, mask: Any = None) -> float:
    """Peak signal-to-noise ratio ``10 log10(data_range^2 / MSE)`` in dB (higher is better).

    ``mask`` (optional, broadcastable, True where to compare) restricts the MSE to those pixels, e.g. the
    pixels a completion had to invent. Identical images give ``inf``.
    """
    ref = as_image_tensor(reference, "reference", dtype=torch.float64)
    est = as_image_tensor(estimate, "estimate", dtype=torch.float64)
    if ref.shape != est.shape:
        raise ValueError(f"reference and estimate must have the same shape, got {tuple(ref.shape)} and "
                         f"{tuple(est.shape)}")
    data_range = check_float(data_range, "data_range", low=0.0, low_inclusive=False)
    where = torch.ones_like(ref, dtype=torch.bool) if mask is None else _check_mask(mask, ref)
    if not bool(where.any()):
        raise ValueError("mask selects no pixel")
    mse = float(((ref - est)[where] ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(data_range ** 2 / mse)
