"""genlab.autoregressive: the PixelCNN's autoregressive property, normalisation, sampling; the shared layers."""
from __future__ import annotations

import itertools

import pytest
import torch

import genlab.autoregressive as ar
import genlab.layers as layers
from genlab.autoregressive import DIGITS_RECIPES, PixelCNN, bits_per_dim
from genlab.base import NotFittedError
from genlab.train import Trainer


def _fitted(model: PixelCNN) -> PixelCNN:
    model.mark_updated()
    return model


def test_shared_layers_are_re_exported():
    for name in ("MaskedLinear", "CausalConv1d", "MaskedConv2d"):
        assert getattr(ar, name) is getattr(layers, name)


@pytest.mark.parametrize("exclude_current", [True, False])
def test_masked_conv_sees_only_the_past(exclude_current):
    torch.manual_seed(0)
    conv = layers.MaskedConv2d(2, 3, 5, exclude_current=exclude_current)
    x = torch.randn(1, 2, 4, 4)
    base = conv(x)
    for i in range(16):
        r, c = divmod(i, 4)
        y = x.clone()
        y[0, :, r, c] += 1.0
        changed = (conv(y) - base).abs().sum(1)[0].flatten() > 0
        first_affected = i if not exclude_current else i + 1
        assert not changed[:first_affected].any(), (i, changed)


def test_pixelcnn_is_autoregressive_by_perturbation():
    torch.manual_seed(0)
    model = PixelCNN(image_shape=(1, 5, 5), n_levels=4, channels=8, n_layers=3, kernel_size=3).eval()
    x = torch.randint(0, 4, (1, 1, 5, 5)).float()
    base = model.logits(x)
    reached = torch.zeros(25, dtype=torch.bool)
    for i in range(25):
        r, c = divmod(i, 5)
        y = x.clone()
        y[0, 0, r, c] = (y[0, 0, r, c] + 1) % 4
        changed = (model.logits(y) - base).abs().sum(1)[0].flatten() > 1e-7
        assert not changed[: i + 1].any(), f"pixel {i} changes the logits of pixels up to itself"
        reached |= changed
    assert reached[1:].any()


def test_probabilities_sum_to_one_over_every_tiny_image():
    torch.manual_seed(0)
    model = _fitted(PixelCNN(image_shape=(1, 2, 2), n_levels=3, channels=8, n_layers=2, kernel_size=3))
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.3 * torch.randn_like(param))
    images = torch.tensor(list(itertools.product(range(3), repeat=4)), dtype=torch.float32).view(-1, 1, 2, 2)
    log_p = model.log_prob(images).double()
    assert images.shape[0] == 81
    assert abs(float(torch.logsumexp(log_p, 0))) < 1e-5


def test_pixelcnn_trains_samples_and_refuses_before_training():
    torch.manual_seed(0)
    model = PixelCNN(image_shape=(1, 4, 4), n_levels=3, channels=8, n_layers=1, kernel_size=3)
    with pytest.raises(NotFittedError):
        model.sample(2)
    x = torch.zeros(64, 1, 4, 4)
    x[:, :, :, 1::2] = 2.0  # stripes: predictable from the previous pixel
    before = float(model.loss(x).detach())
    Trainer(model, lr=1e-2, batch_size=32, device="cpu", progress=False).fit(x, epochs=30)
    after = -float(model.log_prob(x).mean())
    assert after < 0.2 * before, (before, after)
    samples = model.sample(6, random_state=0)
    assert samples.shape == (6, 1, 4, 4)
    assert torch.equal(samples, model.sample(6, random_state=0))
    assert (samples == x[:6]).float().mean() > 0.9


def test_recipe_and_units():
    model = PixelCNN(**DIGITS_RECIPES["pixelcnn"]["model"])
    assert model.n_levels == 17
    assert bits_per_dim(64 * torch.log(torch.tensor(2.0)).item(), 64) == pytest.approx(1.0)
