"""Chapter 15's additions: AdaIN and the fade-in (genlab.layers), the attention option, the progressive generator
and the latent tools (genlab.gan), classifier-free and classifier guidance (genlab.diffusion)."""
from __future__ import annotations

import torch
from torch import nn

from genlab.device import seed_everything
from genlab.diffusion import DiffusionModel, NoiseAwareClassifier, guided_noise
from genlab.gan import (
    GAN,
    Discriminator,
    FadeInSchedule,
    Generator,
    ProgressiveGenerator,
    StyleGenerator,
    latent_attribution,
    latent_traversal,
)
from genlab.layers import AdaIN, SelfAttention2d, adain, fade_in
from genlab.train import Trainer


# ----------------------------------------------------------------------------- layers
def test_adain_is_instance_norm_then_the_style():
    h = torch.randn(3, 4, 5, 5) * 2 + 1
    scale, shift = torch.rand(3, 4) + 0.5, torch.randn(3, 4)
    expected = nn.InstanceNorm2d(4)(h) * scale[:, :, None, None] + shift[:, :, None, None]
    torch.testing.assert_close(adain(h, scale, shift), expected, atol=1e-5, rtol=1e-5)
    out = adain(h, scale, shift)
    torch.testing.assert_close(out.mean((2, 3)), shift, atol=1e-5, rtol=1e-5)  # the style sets the statistics
    torch.testing.assert_close(out.std((2, 3), unbiased=False), scale, atol=1e-3, rtol=1e-3)


def test_adain_module_with_zero_style_only_normalises():
    layer = AdaIN(4, 6)
    nn.init.zeros_(layer.style.weight)
    nn.init.zeros_(layer.style.bias)
    h = torch.randn(2, 4, 3, 3)
    torch.testing.assert_close(layer(h, torch.randn(2, 6)), nn.InstanceNorm2d(4)(h), atol=1e-5, rtol=1e-5)


def test_fade_in_ends_and_middle():
    low, high = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 8, 8)
    up = low.repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(fade_in(low, high, 0.0), up)
    torch.testing.assert_close(fade_in(low, high, 1.0), high)
    torch.testing.assert_close(fade_in(low, high, torch.tensor(0.25)), 0.25 * high + 0.75 * up)


# ----------------------------------------------------------------------------- GAN pieces
def test_style_generator_keeps_its_checkpoint_layout():
    keys = set(StyleGenerator(4, channels=8).state_dict())
    assert {"ada.0.style.weight", "ada.2.style.bias", "const", "mapping.0.weight"} <= keys


def test_generator_attention_option():
    seed_everything(0)
    g = Generator(4, (1, 8, 8), channels=8, attention=True, output_activation="tanh")
    assert any(isinstance(m, SelfAttention2d) for m in g.modules())
    assert not any(isinstance(m, SelfAttention2d) for m in Generator(4, (1, 8, 8), channels=8).modules())
    assert g(torch.randn(3, 4)).shape == (3, 1, 8, 8)
    try:
        Generator(4, 2, attention=True)
    except ValueError as err:
        assert "attention" in str(err)
    else:
        raise AssertionError("attention on vectors must be refused")


def test_progressive_generator_grows_without_a_jump():
    seed_everything(0)
    g = ProgressiveGenerator(4, channels=8)
    z = torch.randn(5, 4)
    before = g(z)
    blocks = before.reshape(5, 1, 4, 2, 4, 2)
    assert torch.allclose(blocks, blocks[:, :, :, :1, :, :1].expand_as(blocks)), "4x4 stage: 2x2 blocks"
    g.grow()
    assert torch.equal(g(z), before)  # alpha = 0
    g.set_alpha(1.0)
    assert not torch.allclose(g(z), before)
    real = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(g.prepare_real(real), real)  # alpha = 1: the real images as they are
    fresh = ProgressiveGenerator(4, channels=8)
    shown = fresh.prepare_real(real)
    torch.testing.assert_close(shown.reshape(3, 1, 4, 2, 4, 2).mean((3, 5)), torch.nn.functional.avg_pool2d(real, 2))


def test_fade_in_schedule_in_a_gan_training_run():
    seed_everything(0)
    g = ProgressiveGenerator(4, channels=4)
    gan = GAN(g, Discriminator((1, 8, 8), channels=4))
    data = torch.rand(32, 1, 8, 8) * 2 - 1
    Trainer(gan, batch_size=8, progress=False).fit(data, epochs=1)
    assert int(g.resolution) == 4
    trainer = Trainer(gan, batch_size=8, progress=False, ema_decay=0.9, callbacks=[FadeInSchedule(g, steps=8)])
    trainer.fit(data, epochs=1)
    assert int(g.resolution) == 8 and abs(float(g.alpha) - 0.5) < 1e-6  # 4 of 8 fade-in steps done
    trainer.fit(data, epochs=3)  # epochs in total: 8 more steps, the fade-in ends after 4 of them
    assert float(g.alpha) == 1.0 and float(trainer.ema.model.generator.alpha) == 1.0  # the EMA copy follows


def test_gan_shows_the_discriminator_reals_at_the_generator_resolution():
    seed_everything(0)
    g = ProgressiveGenerator(4, channels=4)
    seen = []
    d = Discriminator((1, 8, 8), channels=4)
    d.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    gan = GAN(g, d)
    gan.losses(torch.rand(6, 1, 8, 8))
    blocks = seen[0].reshape(6, 1, 4, 2, 4, 2)
    assert torch.allclose(blocks, blocks[:, :, :, :1, :, :1].expand_as(blocks))


def test_latent_attribution_is_the_gradient():
    weight = torch.randn(3, 64)
    decode = lambda z: (z @ weight).reshape(-1, 1, 8, 8)  # noqa: E731
    score = lambda x: (x.flatten(1) ** 2).sum(1)  # noqa: E731
    z = torch.randn(4, 3)
    expected = 2 * (z @ weight) @ weight.T
    torch.testing.assert_close(latent_attribution(decode, score, z), expected, atol=1e-4, rtol=1e-4)


def test_latent_attribution_leaves_the_networks_untouched():
    g = StyleGenerator(4, channels=4)
    latent_attribution(g, lambda x: x.sum((1, 2, 3)), torch.randn(3, 4))
    assert all(p.grad is None for p in g.parameters())


def test_latent_traversal_moves_one_dimension():
    codes = []
    decode = lambda z: codes.append(z.clone()) or z  # noqa: E731
    out = latent_traversal(decode, torch.zeros(5), 2, [-1.0, 0.0, 2.0])
    assert out.shape == (3, 5)
    torch.testing.assert_close(codes[0][:, 2], torch.tensor([-1.0, 0.0, 2.0]))
    assert (codes[0][:, [0, 1, 3, 4]] == 0).all()


# ----------------------------------------------------------------------------- guidance
def test_guided_noise_interpolates_and_extrapolates():
    c, u = torch.randn(4, 2), torch.randn(4, 2)
    torch.testing.assert_close(guided_noise(c, u, 0.0), u)
    torch.testing.assert_close(guided_noise(c, u, 1.0), c)
    torch.testing.assert_close(guided_noise(c, u, 3.0), u + 3 * (c - u))


def _toy(n=512):
    y = torch.arange(n) % 2
    x = torch.stack([torch.where(y == 0, -1.0, 1.0), torch.zeros(n)], 1) + 0.2 * torch.randn(n, 2)
    return x, y


def test_noise_aware_classifier_learns_and_its_gradient_is_autograd():
    seed_everything(0)
    model = DiffusionModel((2,), n_classes=2, n_steps=50, data_range=None, hidden=16, n_layers=1)
    clf = NoiseAwareClassifier.for_model(model, hidden=32, n_layers=1)
    assert clf.schedule is model.schedule and clf.data_range is None
    x, y = _toy()
    history = Trainer(clf, lr=1e-2, batch_size=128, progress=False).fit((x, y), epochs=20)
    assert history.train_loss[-1] < history.train_loss[0]
    with torch.no_grad():
        low_noise = clf(x, torch.zeros(len(x), dtype=torch.long)).argmax(1)
    assert (low_noise == y).float().mean() > 0.9
    x_t, t = torch.randn(6, 2), torch.full((6,), 10)
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    x_req = x_t.clone().requires_grad_(True)
    log_p = torch.log_softmax(clf(x_req, t), 1)[torch.arange(6), labels].sum()
    (expected,) = torch.autograd.grad(log_p, x_req)
    torch.testing.assert_close(clf.grad_log_prob(x_t, t, labels), expected)


def test_classifier_guidance_pushes_samples_towards_the_class():
    seed_everything(0)
    model = DiffusionModel((2,), n_classes=2, n_steps=50, data_range=None, hidden=32, n_layers=2)
    x, y = _toy()
    Trainer(model, lr=5e-3, batch_size=128, progress=False).fit((x, y), epochs=30)
    clf = NoiseAwareClassifier.for_model(model, hidden=32, n_layers=1)
    Trainer(clf, lr=1e-2, batch_size=128, progress=False).fit((x, y), epochs=20)
    kwargs = dict(y=torch.zeros(200, dtype=torch.long), sampler="ddim", steps=20, guidance_scale=0.0, random_state=0)
    plain = model.sample(200, **kwargs)
    torch.testing.assert_close(model.sample(200, classifier=clf, classifier_scale=0.0, **kwargs), plain)
    guided = model.sample(200, classifier=clf, classifier_scale=5.0, **kwargs)
    # class 0 lives at x = -1: guidance moves the unconditional samples (half at +1) towards it
    assert (guided[:, 0] < 0).float().mean() > (plain[:, 0] < 0).float().mean() + 0.2
