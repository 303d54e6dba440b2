"""Image completion with an encoder-decoder model, and PSNR."""
from __future__ import annotations

import math

import pytest
import torch

from genlab import inpainting
from genlab.vae import VAE


class _Identity:
    """encode/decode that return the image itself: the fixed point keeps the fill."""

    def encode(self, x):
        return x.flatten(1), torch.zeros_like(x.flatten(1))

    def decode(self, z, sample=False, random_state=None):
        return z.reshape(-1, 1, 4, 4) * 0 + 7.0


def test_inpaint_keeps_observed_pixels_and_fills_the_rest():
    x = torch.arange(32, dtype=torch.float32).reshape(2, 1, 4, 4)
    mask = inpainting.half_mask((1, 4, 4), keep="top")
    out = inpainting.inpaint(_Identity(), x, mask, n_steps=3, fill=0.0)
    assert torch.equal(out[:, :, :2], x[:, :, :2]) and bool((out[:, :, 2:] == 7.0).all())


def test_inpaint_with_a_vae_gives_integer_levels_and_repeats():
    torch.manual_seed(0)
    vae = VAE(latent_dim=2, hidden=16)
    x = torch.randint(0, 17, (3, 1, 8, 8)).float()
    mask = inpainting.half_mask((1, 8, 8), keep="left")
    a = inpainting.inpaint(vae, x, mask, n_steps=2, fill=x.mean(0), integer_levels=True, sample=True, random_state=0)
    b = inpainting.inpaint(vae, x, mask, n_steps=2, fill=x.mean(0), integer_levels=True, sample=True, random_state=0)
    assert torch.equal(a, b) and torch.equal(a, a.round()) and torch.equal(a[..., :4], x[..., :4])


def test_psnr_values():
    x = torch.zeros(1, 1, 2, 2)
    assert inpainting.psnr(x, x, data_range=1.0) == math.inf
    assert inpainting.psnr(x, x + 0.1, data_range=1.0) == pytest.approx(20.0)
    y = x.clone()
    y[..., 0, 0] = 1.0
    mask = torch.zeros(1, 2, 2, dtype=torch.bool)
    mask[0, 1] = True
    assert inpainting.psnr(x, y, data_range=1.0, mask=mask) == math.inf
    assert inpainting.psnr(x, y, data_range=1.0) == pytest.approx(10 * math.log10(4))
