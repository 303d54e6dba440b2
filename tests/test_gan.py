"""Tests for genlab.gan: losses against their closed forms, the penalty, networks, the GAN model and training."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from genlab.base import NotFittedError
from genlab.device import seed_everything
from genlab.exercises import ExerciseError, NotAttempted, check
from genlab.gan import (
    GAN,
    CycleGAN,
    Discriminator,
    Generator,
    StyleGenerator,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    mode_coverage,
)
from genlab.train import Trainer


def ring(n=512, seed=0, std=0.05):
    g = torch.Generator().manual_seed(seed)
    angles = torch.arange(8) * 2 * math.pi / 8
    centres = 2 * torch.stack([torch.cos(angles), torch.sin(angles)], 1)
    return centres[torch.randint(0, 8, (n,), generator=g)] + std * torch.randn(n, 2, generator=g), centres


# ------------------------------------------------------------------ losses
def test_losses_match_their_formulas():
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 0.2, 1.0])
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    bce = -(torch.log(d_real).mean() + torch.log(1 - d_fake).mean())
    assert torch.allclose(discriminator_loss(real, fake, "minimax"), bce)
    assert torch.allclose(discriminator_loss(real, fake, "non_saturating"), bce)
    assert torch.allclose(generator_loss(fake, "minimax"), torch.log(1 - d_fake).mean())
    assert torch.allclose(generator_loss(fake, "non_saturating"), -torch.log(d_fake).mean())
    assert torch.allclose(discriminator_loss(real, fake, "hinge"), F.relu(1 - real).mean() + F.relu(1 + fake).mean())
    assert torch.allclose(discriminator_loss(real, fake, "wasserstein"), fake.mean() - real.mean())
    assert torch.allclose(generator_loss(fake, "wasserstein"), -fake.mean())
    assert torch.allclose(generator_loss(fake.unsqueeze(1), "hinge"), -fake.mean())  # (n, 1) scores accepted


def test_losses_are_stable_for_confident_discriminators():
    big = torch.tensor([80.0, -80.0])
    for loss in ("minimax", "non_saturating"):
        assert torch.isfinite(discriminator_loss(big, -big, loss)) and torch.isfinite(generator_loss(big, loss))


def test_minimax_gradient_saturates_where_non_saturating_does_not():
    # A confident discriminator (D(G(z)) ~ 0): log(1 - D) is flat, -log D is steep.
    fake = torch.tensor([-8.0], requires_grad=True)
    (g_minimax,) = torch.autograd.grad(generator_loss(fake, "minimax"), fake)
    (g_ns,) = torch.autograd.grad(generator_loss(fake, "non_saturating"), fake)
    assert abs(g_minimax.item()) < 1e-3 < 0.9 < abs(g_ns.item())


# ------------------------------------------------------------------ gradient penalty
def test_gradient_penalty_of_a_linear_critic_is_known():
    critic = torch.nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 0.0, 4.0]]))  # |grad| = 5 everywhere
    real, fake = torch.randn(4, 3), torch.randn(4, 3)
    assert math.isclose(gradient_penalty(lambda_critic(critic), real, fake).item(), 16.0, rel_tol=1e-6)


def lambda_critic(linear):
    class Critic(torch.nn.Module):
        def forward(self, x):
            return linear(x).squeeze(1)
    return Critic()


def test_gradient_penalty_interpolates_per_example_and_keeps_the_graph():
    seed_everything(0)
    critic = Discriminator((1, 8, 8), channels=4)
    real, fake = torch.rand(5, 1, 8, 8), torch.rand(5, 1, 8, 8)
    eps = torch.rand(5)
    penalty = gradient_penalty(critic, real, fake, eps=eps)
    x_hat = (eps[:, None, None, None] * real + (1 - eps[:, None, None, None]) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat)
    expected = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert torch.allclose(penalty, expected, atol=1e-6)
    penalty.backward()  # differentiable w.r.t. the critic's weights (create_graph=True)
    assert all(p.grad is not None for p in critic.parameters() if p.ndim > 1)  # biases do not move grad_x


# ------------------------------------------------------------------ networks
@pytest.mark.parametrize("shape", [2, (1, 8, 8), (1, 28, 28)])
def test_generator_and_discriminator_shapes(shape):
    g = Generator(5, shape, n_classes=3, channels=8, output_activation="tanh")
    d = Discriminator(shape, n_classes=3, channels=8, spectral_norm=True)
    y = torch.tensor([0, 1, 2, 1])
    x = g(torch.randn(4, 5), y)
    expected = (4, shape) if isinstance(shape, int) else (4, *shape)
    assert tuple(x.shape) == expected and x.abs().max() <= 1
    assert tuple(d(x, y).shape) == (4,)


def test_spectral_norm_bounds_each_layer():
    d = Discriminator(2, hidden=(32, 32), spectral_norm=True)
    d.train()
    for _ in range(30):  # power iterations converge during forward passes
        d(torch.randn(8, 2))
    for module in d.modules():
        if isinstance(module, torch.nn.Linear):
            assert torch.linalg.matrix_norm(module.weight, ord=2) <= 1.05


def test_style_mixing_uses_each_style_where_asked():
    seed_everything(0)
    g = StyleGenerator(4, (1, 8, 8), channels=8).eval()
    z1, z2 = torch.randn(3, 4), torch.randn(3, 4)
    assert torch.allclose(g(z1, mix_z=z2, mix_from=0), g(z2))  # every block styled by z2
    assert torch.allclose(g(z1, mix_z=z2, mix_from=3), g(z1))  # no block styled by z2
    mixed = g(z1, mix_z=z2, mix_from=1)
    assert not torch.allclose(mixed, g(z1)) and not torch.allclose(mixed, g(z2))


# ------------------------------------------------------------------ the model
def test_sample_needs_training_and_is_seeded():
    gan = GAN(Generator(2, 2), Discriminator(2))
    with pytest.raises(NotFittedError):
        gan.sample(3)
    Trainer(gan, progress=False).fit(ring(64)[0], epochs=1)
    a, b = gan.sample(5, random_state=0), gan.sample(5, random_state=0)
    assert a.shape == (5, 2) and torch.equal(a, b)


def test_training_step_matches_the_article_step():
    """The article's pseudocode, written out with torch, gives the same losses and weights as GAN."""
    seed_everything(0)
    gan = GAN(Generator(2, 2, hidden=(16,)), Discriminator(2, hidden=(16,)), loss="non_saturating")
    twin = GAN(Generator(2, 2, hidden=(16,)), Discriminator(2, hidden=(16,)))
    twin.load_state_dict(gan.state_dict())
    x = ring(32)[0]
    opts = Trainer(twin, progress=False).optimizers
    torch.manual_seed(1)
    z = torch.randn(32, 2)
    fake = twin.generator(z)
    d_real, d_fake = torch.sigmoid(twin.discriminator(x)), torch.sigmoid(twin.discriminator(fake.detach()))
    d_loss = -(torch.log(d_real) + torch.log(1 - d_fake)).mean()
    opts.step("discriminator", d_loss)
    z = torch.randn(32, 2)
    g_loss = -torch.log(torch.sigmoid(twin.discriminator(twin.generator(z)))).mean()
    opts.step("generator", g_loss)
    torch.manual_seed(1)
    logs = gan.training_step(x, Trainer(gan, progress=False).optimizers)
    assert math.isclose(logs["d_loss"], d_loss.item(), rel_tol=1e-5)
    assert math.isclose(logs["g_loss"], g_loss.item(), rel_tol=1e-5)
    for (name, p), q in zip(gan.named_parameters(), twin.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name


def test_n_critic_updates_the_generator_every_nth_step():
    seed_everything(0)
    gan = GAN(Generator(2, 2, hidden=(8,)), Discriminator(2, hidden=(8,)), loss="wasserstein", gp_weight=1.0,
              n_critic=3)
    history = Trainer(gan, batch_size=8, progress=False).fit(ring(48)[0], epochs=1)
    assert {"d_loss", "gradient_penalty", "g_loss"} <= set(history.metrics)
    assert int(gan.n_updates) == 6


def test_weight_clipping_bounds_the_critic():
    gan = GAN(Generator(2, 2, hidden=(8,)), Discriminator(2, hidden=(8,)), loss="wasserstein", weight_clip=0.01,
              lr_d=0.1)
    Trainer(gan, progress=False).fit(ring(64)[0], epochs=1)
    assert max(p.abs().max().item() for p in gan.discriminator.parameters()) <= 0.01


def test_gan_resumes_exactly(tmp_path):
    x = ring(128)[0]

    def make():
        return GAN(Generator(2, 2, hidden=(16,)), Discriminator(2, hidden=(16,), spectral_norm=True),
                   loss="wasserstein", gp_weight=1.0, n_critic=2)

    seed_everything(0)
    full = Trainer(make(), batch_size=32, progress=False).fit(x, epochs=4).metrics
    seed_everything(0)
    path = tmp_path / "gan.pt"
    Trainer(make(), batch_size=32, progress=False, checkpoint_path=path).fit(x, epochs=2)
    seed_everything(7)
    resumed = Trainer(make(), batch_size=32, progress=False, checkpoint_path=path).fit(x, epochs=4, resume=True)
    assert resumed.metrics == full


def test_wgan_gp_covers_the_ring():
    """WGAN-GP trained long enough reaches every mode of the ring (the chapter's claim, on other seeds).

    At 100 epochs 6 of 8 seeds covered all 8 modes on one CPU (the others 7 and 6) while all did on another:
    the run had not finished. At 200 epochs all 8 seeds (0-7) covered every mode with about 0.9 of the samples
    near a mode, so this tests the converged behaviour, not a lucky floating-point path.
    """
    torch.set_num_threads(1)
    x, centres = ring(2048, std=0.05)
    for seed in (1, 2):
        seed_everything(seed)
        gan = GAN(Generator(2, 2, hidden=(128, 128)), Discriminator(2, hidden=(128, 128)), loss="wasserstein",
                  gp_weight=1.0, lr_g=3e-3, lr_d=3e-3, betas_g=(0.5, 0.9), betas_d=(0.5, 0.9))
        Trainer(gan, batch_size=128, progress=False, seed=seed).fit(x, epochs=WGAN_EPOCHS)
        coverage = mode_coverage(gan.sample(2000, random_state=0), centres, 0.05)
        assert coverage["modes"] == 8, (seed, coverage)


WGAN_EPOCHS = 200


def test_conditional_gan_and_evaluation_loss():
    seed_everything(0)
    gan = GAN(Generator(3, (1, 8, 8), n_classes=10, channels=8, output_activation="tanh"),
              Discriminator((1, 8, 8), n_classes=10, channels=8), loss="hinge")
    x, y = torch.rand(64, 1, 8, 8) * 2 - 1, torch.arange(64) % 10
    trainer = Trainer(gan, batch_size=32, progress=False, ema_decay=0.9)
    trainer.fit((x, y), epochs=1, val_data=(x, y))
    assert math.isfinite(trainer.history.val_loss[0])
    samples = gan.sample(10, random_state=0, y=torch.arange(10))
    assert samples.shape == (10, 1, 8, 8)
    assert trainer.ema.model.sample(4, random_state=0, y=[0, 1, 2, 3]).shape == (4, 1, 8, 8)


def test_cycle_gan_learns_round_trips():
    seed_everything(0)
    a = ring(512)[0]
    b = a @ torch.tensor([[0.0, -1.0], [1.0, 0.0]]) * 0.5 + 1.0
    model = CycleGAN(2, hidden=(32, 32), cycle_weight=10.0)
    before = model.loss((a, b)).item()
    history = Trainer(model, batch_size=64, progress=False).fit((a, b), epochs=30)
    assert history.metrics["cycle_loss"][-1] < 0.5 * before
    assert model.translate(a[:5]).shape == (5, 2) and model.translate(b[:5], "ba").shape == (5, 2)


def test_mode_coverage_counts_modes_and_quality():
    x, centres = ring(800, std=0.05)
    perfect = mode_coverage(x, centres, 0.05)
    assert perfect["modes"] == 8 and perfect["high_quality"] > 0.98 and perfect["kl"] < 0.01
    collapsed = mode_coverage(torch.zeros(100, 2) + centres[0], centres, 0.05)
    assert collapsed["modes"] == 1 and collapsed["high_quality"] == 1.0 and collapsed["kl"] > 1.0
    assert mode_coverage(torch.zeros(50, 2), centres, 0.05)["high_quality"] == 0.0


# ------------------------------------------------------------------ the chapter's implement-it exercise
def penalty_solution(critic, real, fake, eps):
    eps = eps.view(-1, *([1] * (real.ndim - 1)))
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def penalty_one_eps(critic, real, fake, eps):  # typical mistake: one weight for the whole batch
    x_hat = (eps[0] * real + (1 - eps[0]) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def penalty_no_graph(critic, real, fake, eps):  # typical mistake: the penalty cannot train the critic
    eps = eps.view(-1, 1, 1, 1)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def penalty_wrong_dims(critic, real, fake, eps):  # typical mistake: norm over pixels rows only
    eps = eps.view(-1, 1, 1, 1)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.norm(dim=-1) - 1) ** 2).mean()


def test_exercise_check_for_the_gradient_penalty():
    from genlab.gan import check_gradient_penalty
    with pytest.raises(NotAttempted):
        check_gradient_penalty(...)
    for mistake, words in ((penalty_one_eps, "per example"), (penalty_no_graph, "create_graph"),
                           (penalty_wrong_dims, "every dimension")):
        with pytest.raises(ExerciseError, match="hint") as info:
            check_gradient_penalty(mistake)
        assert words in str(info.value), (mistake.__name__, str(info.value))
    assert check_gradient_penalty(penalty_solution)
    assert check  # the check is genlab.exercises.check underneath
