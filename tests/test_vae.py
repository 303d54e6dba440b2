"""Tests for genlab.vae and genlab.priors: closed forms, bounds, shapes, training, validation."""
from __future__ import annotations

import math

import pytest
import torch

from genlab.autoregressive import CausalConvDecoder, MADEDecoder
from genlab.base import NotFittedError
from genlab.data import load_digits
from genlab.priors import make_prior
from genlab.train import Trainer
from genlab.vae import CVAE, VAE, KLWarmup, discretized_logistic_log_prob, gaussian_kl, negative_elbo_exercise


@pytest.fixture(scope="module")
def digits():
    return load_digits("train")


@pytest.fixture(scope="module")
def trained(digits):
    """A small VAE trained for a few epochs on the digits (shared by several tests)."""
    torch.manual_seed(0)
    model = VAE(latent_dim=8, hidden=64)
    Trainer(model, lr=3e-3, optimizer="adamax", progress=False).fit(digits[0], epochs=8)
    return model


def test_gaussian_kl_matches_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.randn(3, 4), torch.randn(3, 4)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(200_000, 3, 4)
    log_q = -0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / logvar.exp())
    log_p = -0.5 * (math.log(2 * math.pi) + z ** 2)
    monte_carlo = (log_q - log_p).mean(0)
    assert torch.allclose(gaussian_kl(mu, logvar), monte_carlo, atol=0.03)
    assert torch.all(gaussian_kl(torch.zeros(5), torch.zeros(5)) == 0)


def test_discretized_logistic_sums_to_one():
    levels = torch.arange(17.0).view(17, 1)
    mean, log_scale = torch.tensor([[-0.3, 0.9, 0.0]]), torch.tensor([[-2.0, -0.5, -4.0]])
    probs = discretized_logistic_log_prob(levels.expand(17, 3), mean, log_scale, 17).exp()
    assert torch.allclose(probs.sum(0), torch.ones(3), atol=1e-5)


def test_made_decoder_is_autoregressive():
    torch.manual_seed(0)
    made = MADEDecoder(n_pixels=6, n_levels=3, n_context=2, hidden=16, n_layers=2)
    x = torch.rand(1, 6, requires_grad=True)
    out = made(x, torch.randn(1, 2)).view(3, 6)
    for pixel in range(6):
        (grad,) = torch.autograd.grad(out[:, pixel].sum(), x, retain_graph=True)
        assert torch.all(grad[0, pixel:] == 0), f"output {pixel} depends on inputs >= {pixel}"


@pytest.mark.parametrize("layers, kernel", [(1, 3), (3, 2), (2, 5)])
def test_causal_conv_decoder_is_autoregressive(layers, kernel):
    torch.manual_seed(0)
    n_pixels = 12
    decoder = CausalConvDecoder(n_pixels=n_pixels, n_levels=3, n_context=2, channels=8, n_layers=layers,
                                kernel_size=kernel)
    x = torch.rand(1, n_pixels, requires_grad=True)
    out = decoder(x, torch.randn(1, 2)).view(3, n_pixels)
    for pixel in range(n_pixels):
        (grad,) = torch.autograd.grad(out[:, pixel].sum(), x, retain_graph=True)
        assert torch.all(grad[0, pixel:] == 0), f"output {pixel} depends on inputs >= {pixel}"
        # and it does see the pixels just before it, as far back as the receptive field says
        first_seen = max(0, pixel - decoder.receptive_field)
        assert torch.all(grad[0, first_seen:pixel] != 0), f"output {pixel}: gradient {grad[0, :pixel]}"
        assert torch.all(grad[0, :first_seen] == 0), f"output {pixel} sees beyond its receptive field"


def test_causal_conv_decoder_bad_sizes():
    with pytest.raises(ValueError, match="channels"):
        CausalConvDecoder(n_pixels=4, n_levels=3, n_context=2, channels=0)
    with pytest.raises(ValueError, match="two pixels"):
        CausalConvDecoder(n_pixels=1, n_levels=3, n_context=2)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        CausalConvDecoder(n_pixels=4, n_levels=3, n_context=2, activation="swish")
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        MADEDecoder(n_pixels=4, n_levels=3, n_context=2, hidden=8, n_layers=1, activation="swish")


@pytest.mark.parametrize("kwargs", [dict(), dict(encoder="conv", decoder="conv"), dict(decoder="made"),
                                    dict(decoder="causal_conv", ar_channels=8),
                                    dict(likelihood="discretized_logistic"), dict(prior="mog", n_components=5),
                                    dict(prior="vamp", n_components=5), dict(k=3, gradient="dreg")])
def test_shapes_and_finite_losses(digits, kwargs):
    torch.manual_seed(0)
    model = VAE(latent_dim=4, hidden=32, **kwargs)
    x = digits[0][:6]
    assert model.loss(x).ndim == 0 and torch.isfinite(model.loss(x))
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (6, 4)
    assert model.decode(mu).shape == (6, 1, 8, 8)
    assert model.reconstruct(x).shape == (6, 1, 8, 8)
    assert model.elbo(x).shape == (6,)
    assert model.log_importance_bound(x, k=7).shape == (6,)
    assert model.interpolate(x[0], x[1], steps=5).shape == (5, 1, 8, 8)
    model.mark_updated()  # pretend trained: sampling only needs the flag
    samples = model.sample(4, random_state=0)
    assert torch.equal(samples, model.sample(4, random_state=0))
    assert samples.shape == (4, 1, 8, 8)
    assert samples.min() >= 0 and samples.max() <= 16 and torch.all(samples == samples.round())


def test_categorical_decoder_logits_shape(digits):
    model = VAE(latent_dim=4, hidden=32)
    logits = model._decoder_params(torch.zeros(5, 4), None, digits[0][:5])
    assert logits.shape == (5, 17, 8, 8)


def test_bernoulli_on_mnist_sized_images():
    torch.manual_seed(0)
    model = VAE((1, 28, 28), latent_dim=4, likelihood="bernoulli", encoder="conv", decoder="conv", hidden=32)
    x = torch.rand(3, 1, 28, 28)
    assert torch.isfinite(model.loss(x))
    assert model.decode(torch.zeros(2, 4)).shape == (2, 1, 28, 28)


def test_importance_bound_above_elbo_and_grows_with_k(trained, digits):
    x = digits[0][:200]
    torch.manual_seed(1)
    bounds = [trained.log_importance_bound(x, k=k).mean().item() for k in (1, 10, 100)]
    assert bounds[0] < bounds[1] < bounds[2], bounds
    assert bounds[2] - bounds[0] > 0.5, f"IW bound should gain clearly over the ELBO: {bounds}"


def test_log_prob_needs_training_and_valid_k(trained, digits):
    with pytest.raises(NotFittedError, match="trained"):
        VAE(latent_dim=2, hidden=8).log_prob(digits[0][:2])
    with pytest.raises(ValueError, match="trained"):
        VAE(latent_dim=2, hidden=8).sample(2)
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        trained.log_prob(digits[0][:2], k=0)
    assert trained.fitted and trained.log_prob(digits[0][:3], k=5).shape == (3,)


def test_training_lowers_the_loss(digits):
    torch.manual_seed(0)
    model = VAE(latent_dim=4, hidden=32)
    x = digits[0][:256]
    before = Trainer(model, progress=False).evaluate(x)
    Trainer(model, lr=3e-3, progress=False).fit(x, epochs=5)
    after = Trainer(model, progress=False).evaluate(x)
    assert after < before - 20, (before, after)
    assert int(model.n_updates) == 5 * 4  # counted by the Trainer (mark_updated), not by loss()
    model.train()
    model.loss(x[:8])
    assert int(model.n_updates) == 5 * 4


def test_dreg_keeps_decoder_gradient_and_changes_encoder_gradient(digits):
    grads = {}
    for gradient in ("iwae", "dreg"):
        torch.manual_seed(0)
        model = VAE(latent_dim=4, hidden=16, k=5, gradient=gradient)
        torch.manual_seed(1)
        model.loss(digits[0][:16]).backward()
        grads[gradient] = (model.decoder_net[0].weight.grad.clone(), model.encoder_head.weight.grad.clone())
    assert torch.allclose(grads["iwae"][0], grads["dreg"][0], atol=1e-5)
    assert not torch.allclose(grads["iwae"][1], grads["dreg"][1], atol=1e-5)


def test_free_bits_and_beta_change_the_training_loss(digits):
    x = digits[0][:32]
    values = {}
    for name, kwargs in {"plain": {}, "free": {"free_bits": 5.0}, "beta0": {"beta": 0.0}}.items():
        torch.manual_seed(0)
        model = VAE(latent_dim=4, hidden=16, **kwargs)
        torch.manual_seed(1)
        values[name] = model.loss(x).item()
        model.eval()
        torch.manual_seed(1)
        values[name + "_eval"] = model.loss(x).item()
    assert values["free"] > values["plain"] > values["beta0"]
    # In eval mode the loss is the plain negative ELBO whatever the training options.
    assert values["free_eval"] == pytest.approx(values["plain_eval"]) == pytest.approx(values["beta0_eval"])


def test_kl_warmup_raises_beta(digits):
    model = VAE(latent_dim=2, hidden=8)
    warmup = KLWarmup(steps=8)
    Trainer(model, progress=False, batch_size=100, callbacks=[warmup]).fit(digits[0][:400], epochs=1)
    assert model.beta == pytest.approx(0.5)
    Trainer(model, progress=False, batch_size=100, callbacks=[warmup]).fit(digits[0][:400], epochs=1)
    assert model.beta == pytest.approx(1.0)


def test_cvae_samples_follow_the_class(digits):
    torch.manual_seed(0)
    x, y = digits
    model = CVAE(latent_dim=4, hidden=64)
    Trainer(model, lr=3e-3, optimizer="adamax", progress=False).fit((x, y), epochs=30)
    class_means = torch.stack([x[y == c].mean(0).flatten() for c in range(10)])
    hits = 0
    for c in range(10):
        samples = model.sample(40, y=c, random_state=c)
        assert samples.shape == (40, 1, 8, 8)
        nearest = torch.cdist(samples.flatten(1).mean(0, keepdim=True), class_means).argmin().item()
        hits += nearest == c
    assert hits >= 9, f"class-conditioned sample means match their class for only {hits}/10 classes"
    assert model.log_prob(x[:4], y[:4], k=10).shape == (4,)


def test_active_units_and_kl_per_dimension(trained, digits):
    kl = trained.kl_per_dimension(digits[0][:100])
    assert kl.shape == (8,) and torch.all(kl >= 0)
    assert 0 <= trained.active_units(digits[0][:100]) <= 8


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(2, 1, 7, 7), "shape"),
    (torch.full((2, 1, 8, 8), 17.0), "0..16"),
    (torch.full((2, 1, 8, 8), 0.5), "integer"),
    (torch.full((2, 1, 8, 8), -1.0), "0..16"),
    (torch.full((2, 1, 8, 8), float("nan")), "NaN"),
    (torch.zeros(0, 1, 8, 8), "empty"),
    ([["a"]], "numeric"),
])
def test_bad_images_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        VAE(latent_dim=2, hidden=8).loss(bad)


def test_complex_images_raise():
    with pytest.raises(ValueError, match="real"):
        VAE(latent_dim=2, hidden=8).loss(torch.zeros(2, 1, 8, 8, dtype=torch.complex64))


def test_bernoulli_range_is_checked():
    model = VAE((1, 28, 28), latent_dim=2, likelihood="bernoulli", hidden=8)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.loss(torch.full((2, 1, 28, 28), 2.0))


@pytest.mark.parametrize("kwargs, match", [
    (dict(latent_dim=0), "latent_dim"), (dict(latent_dim=-3), "latent_dim"), (dict(latent_dim=2.5), "latent_dim"),
    (dict(likelihood="gaussian"), "likelihood"), (dict(encoder="rnn"), "encoder"), (dict(decoder="rnn"), "decoder"),
    (dict(gradient="rws"), "gradient"), (dict(k=0), "k must"), (dict(beta=-1.0), "beta"),
    (dict(free_bits=-0.1), "free_bits"), (dict(input_dropout=1.0), "input_dropout"),
    (dict(decoder_dropout=-0.1), "decoder_dropout"), (dict(n_levels=1), "n_levels"), (dict(hidden=0), "hidden"),
    (dict(image_shape=(3, 8, 8)), "image_shape"), (dict(prior="flow"), "prior"),
    (dict(prior="mog", n_components=0), "n_components"), (dict(likelihood="bernoulli", decoder="made"), "made"),
    (dict(likelihood="bernoulli", decoder="causal_conv"), "causal_conv"),
    (dict(decoder="causal_conv", ar_kernel=0), "ar_kernel"),
])
def test_bad_options_raise(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        VAE(**kwargs)


def test_other_bad_arguments(trained, digits):
    x = digits[0][:4]
    with pytest.raises(ValueError, match="steps"):
        trained.interpolate(x[0], x[1], steps=1)
    with pytest.raises(ValueError, match="z must have shape"):
        trained.decode(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="NaN"):
        trained.decode(torch.full((2, 8), float("nan")))
    with pytest.raises(ValueError, match="n_samples must be"):
        trained.sample(0)
    with pytest.raises(ValueError, match="batch_size"):
        trained.log_prob(x, k=2, batch_size=0)
    with pytest.raises(ValueError, match="two images"):
        trained.active_units(x[:1])
    with pytest.raises(ValueError, match="length"):
        trained.loss((x, x, x))
    with pytest.raises(ValueError, match="steps"):
        KLWarmup(steps=0)
    with pytest.raises(ValueError, match="VampPrior needs the VAE"):
        make_prior("vamp", 2)
    with pytest.raises(ValueError, match="mu and logvar"):
        gaussian_kl(torch.zeros(2), torch.zeros(3))


def test_cvae_label_checks(digits):
    x, y = digits[0][:4], digits[1][:4]
    model = CVAE(latent_dim=2, hidden=8)
    with pytest.raises(ValueError, match="labels y"):
        model.loss(x)
    with pytest.raises(ValueError, match="0..9"):
        model.loss((x, torch.full((4,), 10)))
    with pytest.raises(ValueError, match="labels for 4 rows"):
        model.loss((x, y[:3]))
    with pytest.raises(ValueError, match="integer"):
        model.loss((x, torch.full((4,), 0.5)))
    model.mark_updated()
    with pytest.raises(ValueError, match="class of the samples"):
        model.sample(2)
    with pytest.raises(ValueError, match="VampPrior"):
        CVAE(prior="vamp")


def _negative_elbo(x, mu, logvar, eps, decoder, *, sign=1.0, kl_weight=1.0, reduce="mean"):
    z = mu + torch.exp(0.5 * logvar) * eps
    log_px = -torch.nn.functional.cross_entropy(decoder(z), x[:, 0].long(), reduction="none").sum((1, 2))
    kl = 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(1)
    value = sign * (kl_weight * kl - log_px)
    return value.mean() if reduce == "mean" else value.sum()


@pytest.mark.parametrize("mistake, match", [
    (dict(sign=-1.0), "sign"), (dict(kl_weight=0.0), "KL term is missing"), (dict(kl_weight=-1.0), "wrong sign"),
    (dict(reduce="sum"), "sum vs mean"),
])
def test_negative_elbo_exercise_names_the_mistake(digits, mistake, match):
    from genlab.exercises import ExerciseError, NotAttempted, check

    x = digits[0][:64]
    torch.manual_seed(0)
    model = VAE(latent_dim=4, hidden=32)
    with torch.no_grad():  # posterior means near 2: a KL of several nats, so every mistake changes the value
        model.encoder_head.bias[:4] = 2.0

    def run(answer):
        got, expected, hint = negative_elbo_exercise(answer, model, x, seed=1)
        return check("Exercise 9.3", got, expected, rtol=1e-4, hint=hint)

    assert run(_negative_elbo)
    with pytest.raises(NotAttempted):
        run(...)
    with pytest.raises(ExerciseError, match=match):
        run(lambda *args: _negative_elbo(*args, **mistake))
    with pytest.raises(ExerciseError, match="reparameterisation"):
        run(lambda x, mu, logvar, eps, decoder: _negative_elbo(x, mu, logvar, 0 * eps, decoder))
