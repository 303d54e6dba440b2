"""Keyed, detectable watermarks for generated images (spread spectrum in a frequency band).

A secret integer ``key`` draws a random sign ``s_i = +-1`` for every coefficient of the orthonormal 2-D
DCT that falls in a frequency band (``low <= u + v <= high``). Embedding adds ``strength * s_i`` to those
coefficients, i.e. adds the pixel pattern :func:`watermark_pattern` to the image (then clips it to the
pixel range) {cite:p}`cox1997secure`. Detection needs the key only (no original image):

.. math::  z = \\frac{\\sum_i s_i c_i}{\\sqrt{\\sum_i c_i^2}},

the correlation of the band coefficients ``c_i`` with the key's signs, normalised by the band's energy.
The key is drawn at random and kept secret, so for an image that does not depend on it (any image not
marked with it) the signs are independent fair coins: ``z`` is a Rademacher sum with unit variance and
Hoeffding's inequality bounds its tail, over the draw of the key, *for every such image*:
``P(z >= t) <= exp(-t^2 / 2)``. Thresholding at ``t = sqrt(2 ln(1 / fpr))`` therefore guarantees a
false-positive rate of at most ``fpr`` without calibrating on clean images (:func:`watermark_threshold`).
A marked image has ``z`` close to ``strength * m / sqrt(energy)`` (``m`` coefficients in the band), at
most ``sqrt(m)``: a small image can carry only a weak mark.

Low frequencies hold most of a digit's energy (the mark drowns in it); high frequencies are erased by a
blur; white noise spreads evenly over all coefficients. The band is the trade-off.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .validation import as_image_tensor, check_float, check_int, check_probability, check_seed

__all__ = ["DEFAULT_BAND", "band_mask", "dct_matrix", "detect_watermark", "embed_watermark", "key_signs",
           "watermark_pattern", "watermark_statistic", "watermark_threshold"]

#: Default band for 8x8 images: ``6 <= u + v <= 14`` (43 of the 64 coefficients, the upper frequencies).
DEFAULT_BAND = (6, 14)


def dct_matrix(size: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``D`` (``size x size``, float64): coefficients are ``D @ X @ D.T``."""
    size = check_int(size, "size", minimum=1)
    k = torch.arange(size, dtype=torch.float64)
    matrix = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * size)) * math.sqrt(2 / size)
    matrix[0] /= math.sqrt(2)
    return matrix


def _check_band(band: Any, size: int) -> tuple[int, int]:
    if not isinstance(band, (tuple, list)) or len(band) != 2:
        raise TypeError(f"band must be a pair (low, high) of frequency indices u + v, got {band!r}")
    low = check_int(band[0], "band low", minimum=0, maximum=2 * (size - 1))
    high = check_int(band[1], "band high", minimum=low, maximum=2 * (size - 1))
    return low, high


def band_mask(size: int, band: tuple[int, int] = DEFAULT_BAND) -> torch.Tensor:
    """Boolean ``(size, size)`` mask of the DCT coefficients ``(u, v)`` with ``low <= u + v <= high``."""
    size = check_int(size, "size", minimum=1)
    low, high = _check_band(band, size)
    k = torch.arange(size)
    total = k[:, None] + k[None, :]
    return (total >= low) & (total <= high)


def key_signs(key: int, size: int = 8, band: tuple[int, int] = DEFAULT_BAND) -> torch.Tensor:
    """The key's random signs ``+-1`` on the band's coefficients, 0 elsewhere: ``(size, size)`` float64."""
    key = check_seed(key, "key")
    mask = band_mask(size, band)
    generator = torch.Generator().manual_seed(key)
    signs = torch.randint(0, 2, (size, size), generator=generator, dtype=torch.int64).double() * 2 - 1
    return signs * mask


def watermark_pattern(key: int, size: int = 8, band: tuple[int, int] = DEFAULT_BAND) -> torch.Tensor:
    """The pixel pattern the key adds at ``strength=1``: ``D.T @ signs @ D`` (squared norm = band size)."""
    signs = key_signs(key, size, band)
    dct = dct_matrix(size)
    return dct.T @ signs @ dct


def _images(images: Any, name: str = "images") -> torch.Tensor:
    tensor = as_image_tensor(images, name, channels=1, dtype=torch.float64)
    if tensor.shape[2] != tensor.shape[3]:
        raise ValueError(f"{name} must be square, got shape {tuple(tensor.shape)}")
    return tensor


def embed_watermark(images: Any, key: int, strength: float, *, band: tuple[int, int] = DEFAULT_BAND,
                    pixel_range: tuple[float, float] | None = (0.0, 16.0)) -> torch.Tensor:
    """Add the key's pattern, times ``strength``, to every image; clip to ``pixel_range`` (None: no clipping).

    Args:
        images: ``(n, 1, S, S)`` array or tensor (digits: levels 0..16).
        key: the secret integer (a seed).
        strength: amplitude added to each band coefficient (pixel units of the orthonormal DCT);
            the root-mean-square pixel change is ``strength * sqrt(m / S^2)`` for ``m`` band coefficients.
        band: ``(low, high)`` range of ``u + v``.
        pixel_range: the valid pixel range; clipping to it removes part of the mark (on a black background,
            every negative part of the pattern).

    Returns:
        float32 tensor of the same shape.
    """
    x = _images(images)
    strength = check_float(strength, "strength", low=0.0)
    pattern = watermark_pattern(key, x.shape[-1], band)
    marked = x + strength * pattern
    if pixel_range is not None:
        if not isinstance(pixel_range, (tuple, list)) or len(pixel_range) != 2:
            raise TypeError(f"pixel_range must be a pair (low, high) or None, got {pixel_range!r}")
        low = check_float(pixel_range[0], "pixel_range low")
        high = check_float(pixel_range[1], "pixel_range high")
        if not high > low:
            raise ValueError(f"pixel_range must have low < high, got {pixel_range!r}")
        marked = marked.clamp(low, high)
    return marked.float()


def watermark_statistic(images: Any, key: int, *, band: tuple[int, int] = DEFAULT_BAND) -> torch.Tensor:
    """Per-image detection statistic ``z = sum_i s_i c_i / sqrt(sum_i c_i^2)`` over the band (float64).

    Unit variance and a sub-Gaussian tail for any image that was not marked with ``key``; an image
    whose band is exactly zero gets ``z = 0``.
    """
    x = _images(images)
    signs = key_signs(key, x.shape[-1], band)
    dct = dct_matrix(x.shape[-1])
    coefficients = dct @ x[:, 0] @ dct.T
    mask = signs != 0
    band_c = coefficients[:, mask]
    energy = band_c.pow(2).sum(1).sqrt()
    correlation = (band_c * signs[mask]).sum(1)
    return torch.where(energy > 0, correlation / energy.clamp_min(1e-300), torch.zeros_like(energy))


def watermark_threshold(fpr: float) -> float:
    """Threshold on ``z`` with false-positive rate at most ``fpr`` (Hoeffding: ``sqrt(2 ln(1 / fpr))``)."""
    fpr = check_probability(fpr, "fpr", open_low=True, open_high=True)
    return float(np.sqrt(2.0 * np.log(1.0 / fpr)))


def detect_watermark(images: Any, key: int, *, fpr: float = 0.01,
                     band: tuple[int, int] = DEFAULT_BAND) -> torch.Tensor:
    """Boolean per image: is ``z`` at or above :func:`watermark_threshold` for ``fpr``?"""
    threshold = watermark_threshold(fpr)
    return watermark_statistic(images, key, band=band) >= threshold
