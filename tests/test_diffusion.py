"""genlab.diffusion: schedules against the DDPM/DDIM formulas, samplers, U-Net shapes, the model."""
import math

import pytest
import torch

from genlab.diffusion import (
    DiffusionModel,
    MLPDenoiser,
    NoiseSchedule,
    UNet,
    check_add_noise_answer,
    cosine_schedule,
    ddim_step,
    ddim_timesteps,
    ddpm_step,
    linear_schedule,
    make_schedule,
    sample_loop,
)
from genlab.exercises import ExerciseError, NotAttempted, check
from genlab.train import Trainer


@pytest.fixture(params=["linear", "cosine"])
def schedule(request):
    return make_schedule(request.param, 100)


# ----------------------------------------------------------------------------- schedules
def test_schedule_quantities(schedule):
    assert schedule.n_steps == 100
    assert ((schedule.betas > 0) & (schedule.betas < 1)).all()
    torch.testing.assert_close(schedule.alpha_bars, torch.cumprod(1 - schedule.betas, 0))
    assert (schedule.alpha_bars[1:] < schedule.alpha_bars[:-1]).all()
    assert schedule.alpha_bars[-1] < 1e-3, "x_T must be close to pure noise"
    assert schedule.posterior_variance[0] == 0
    # beta_tilde <= beta (Ho et al.: the two bounds on the reverse variance)
    assert (schedule.posterior_variance <= schedule.betas + 1e-15).all()
    assert (schedule.snr()[1:] < schedule.snr()[:-1]).all()


def test_linear_schedule_matches_ho_for_1000_steps():
    s = linear_schedule(1000)
    assert math.isclose(float(s.betas[0]), 1e-4) and math.isclose(float(s.betas[-1]), 0.02)
    # rescaled for fewer steps so that alpha_bar_T stays near 0
    assert linear_schedule(100).alpha_bars[-1] < 1e-3


def test_cosine_schedule_follows_its_closed_form():
    s = cosine_schedule(1000)
    t = torch.arange(1, 1001, dtype=torch.float64) / 1000
    f = torch.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2 / math.cos(0.008 / 1.008 * math.pi / 2) ** 2
    torch.testing.assert_close(s.alpha_bars[:-5], f[:-5], rtol=1e-9, atol=1e-12)  # the last betas are clipped


def test_marginal_of_x_t_given_x0_by_sampling(schedule):
    """q(x_t | x_0) = N(sqrt(abar_t) x0, 1 - abar_t): the closed form equals t steps of the chain."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([0.7, -1.3], dtype=torch.float64).repeat(40000, 1)
    for t in (0, 9, 50, 99):
        xt = schedule.add_noise(x0, torch.randn(x0.shape, generator=g, dtype=torch.float64), t)
        mean, var = schedule.marginal(x0[:1], t)
        torch.testing.assert_close(xt.mean(0), mean[0], atol=0.02, rtol=0)
        torch.testing.assert_close(xt.var(0), var[0].expand(2), atol=0.02, rtol=0.02)
    # the same marginal from running the chain x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) eps step by step
    x = x0.clone()
    for step in range(30):
        x = schedule.alphas[step].sqrt() * x + schedule.betas[step].sqrt() * torch.randn(x.shape, generator=g,
                                                                                         dtype=torch.float64)
    mean, var = schedule.marginal(x0[:1], 29)
    torch.testing.assert_close(x.mean(0), mean[0], atol=0.02, rtol=0)
    torch.testing.assert_close(x.var(0), var[0].expand(2), atol=0.02, rtol=0.02)


def test_posterior_is_bayes_rule(schedule):
    """q(x_{t-1} | x_t, x_0) from the product of q(x_{t-1} | x_0) and q(x_t | x_{t-1})."""
    g = torch.Generator().manual_seed(1)
    x0, xt = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    for t in (1, 20, 99):
        ab_prev, alpha, beta = schedule.alpha_bars[t - 1], schedule.alphas[t], schedule.betas[t]
        precision = 1 / (1 - ab_prev) + alpha / beta
        mean_ref = (ab_prev.sqrt() * x0 / (1 - ab_prev) + alpha.sqrt() * xt / beta) / precision
        mean, var = schedule.posterior(x0, xt, t)
        torch.testing.assert_close(mean, mean_ref)
        torch.testing.assert_close(var.flatten(), (1 / precision).expand(5))


def test_prediction_helpers_invert_add_noise(schedule):
    g = torch.Generator().manual_seed(2)
    x0, eps = torch.randn(4, 6, generator=g, dtype=torch.float64), torch.randn(4, 6, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 5, 50, 99])
    xt = schedule.add_noise(x0, eps, t)
    torch.testing.assert_close(schedule.predict_x0(xt, t, eps), x0)
    torch.testing.assert_close(schedule.predict_eps(xt, t, x0), eps)
    # the score of q(x_t | x_0) is -(x_t - mean) / var = -eps / sqrt(1 - abar_t)
    mean, var = schedule.marginal(x0, t)
    torch.testing.assert_close(schedule.score(xt, t, eps), -(xt - mean) / var)


# ----------------------------------------------------------------------------- samplers
def test_ddpm_step_is_hos_algorithm_2(schedule):
    g = torch.Generator().manual_seed(3)
    xt, eps, z = (torch.randn(3, 4, generator=g, dtype=torch.float64) for _ in range(3))
    for t in (1, 40, 99):
        alpha, beta, ab = schedule.alphas[t], schedule.betas[t], schedule.alpha_bars[t]
        ref = (xt - beta / (1 - ab).sqrt() * eps) / alpha.sqrt() + schedule.posterior_variance[t].sqrt() * z
        torch.testing.assert_close(ddpm_step(schedule, xt, eps, t, z), ref)


@pytest.mark.parametrize("clip", [False, True])
def test_ddim_with_eta_one_and_every_step_is_ddpm(schedule, clip):
    g = torch.Generator().manual_seed(4)
    xt, eps, z = (2 * torch.randn(3, 4, generator=g, dtype=torch.float64) for _ in range(3))
    for t in (1, 40, 99):
        torch.testing.assert_close(ddim_step(schedule, xt, eps, t, t - 1, eta=1.0, noise=z, clip=clip),
                                   ddpm_step(schedule, xt, eps, t, z, clip=clip))
    # eta = 0: deterministic, and a perfect noise prediction jumps straight to x0
    x0 = torch.randn(3, 4, generator=g, dtype=torch.float64)
    xt = schedule.add_noise(x0, eps, 60)
    torch.testing.assert_close(ddim_step(schedule, xt, eps, 60, -1), x0)


def test_ddim_timesteps():
    assert ddim_timesteps(1000, 5) == [999, 749, 500, 250, 0]
    assert ddim_timesteps(10, 10) == list(range(9, -1, -1))


@pytest.mark.parametrize("sampler,steps,eta,tol", [("ddpm", None, 0.0, 0.012), ("ddim", 400, 0.0, 0.012),
                                                   ("ddim", 40, 0.0, 0.04), ("ddim", 40, 1.0, 0.05),
                                                   ("ddpm", 40, 0.0, 0.05)])
def test_samplers_recover_a_gaussian_with_the_exact_noise_predictor(sampler, steps, eta, tol):
    """With the optimal eps(x_t) of x0 ~ N(m, s^2), every sampler must return about N(m, s^2).

    With every step the error is the discretisation of the reverse process (small); with 40 steps the
    samples are visibly too narrow (a known bias of fixed reverse variances at few steps).
    """
    schedule = cosine_schedule(400)
    m, s = 0.5, 0.3

    def eps_fn(x, t):
        ab = schedule.alpha_bars[t].reshape(-1, 1).float()
        # E[eps | x_t] for Gaussian x0: sqrt(1 - ab) (x_t - sqrt(ab) m) / (ab s^2 + 1 - ab)
        return (1 - ab).sqrt() * (x - ab.sqrt() * m) / (ab * s**2 + 1 - ab)

    x = sample_loop(eps_fn, schedule, (4000, 1), sampler=sampler, steps=steps, eta=eta, random_state=0)
    assert abs(float(x.mean()) - m) < 0.02 and abs(float(x.std()) - s) < tol, (float(x.mean()), float(x.std()))


# ----------------------------------------------------------------------------- networks
def test_unet_shapes_8_and_28():
    net = UNet(1, 8, base_channels=8, channel_mults=(1, 2), n_res_blocks=1, attention_levels=(1,), n_classes=10)
    x, t = torch.randn(3, 1, 8, 8), torch.tensor([0, 5, 9])
    assert net(x, t, torch.tensor([1, 2, 10])).shape == x.shape
    assert net(x, t).shape == x.shape
    net28 = UNet(1, 28, base_channels=8, channel_mults=(1, 2, 2), n_res_blocks=1, attention_levels=(2,))
    assert net28(torch.randn(2, 1, 28, 28), torch.tensor([0, 999])).shape == (2, 1, 28, 28)
    # zero-initialised output: an untrained network predicts no noise
    with torch.no_grad():
        assert float(net(x, t).abs().max()) == 0.0
    with pytest.raises(ValueError, match="image_size"):
        UNet(1, 28, channel_mults=(1, 2, 2, 2))
    with pytest.raises(ValueError, match="built for images"):
        net(torch.randn(2, 1, 28, 28), torch.tensor([0, 1]))


def test_mlp_denoiser_shapes():
    net = MLPDenoiser(2, hidden=16, n_layers=2, n_classes=3)
    assert net(torch.randn(5, 2), torch.arange(5), torch.tensor([0, 1, 2, 3, 3])).shape == (5, 2)


# ----------------------------------------------------------------------------- the model
def _trained(n_classes=None, denoiser="mlp", epochs=2):
    torch.manual_seed(0)
    model = DiffusionModel((1, 8, 8), n_classes=n_classes, n_steps=50, data_range=(0.0, 16.0), n_levels=17,
                           denoiser=denoiser, hidden=32, n_layers=1, base_channels=8, n_res_blocks=1,
                           attention_levels=())
    x = torch.randint(0, 17, (64, 1, 8, 8)).float()
    data = (x, torch.randint(0, 10, (64,))) if n_classes else x
    Trainer(model, lr=1e-3, batch_size=32, progress=False, device="cpu").fit(data, epochs=epochs)
    return model, x


@pytest.mark.parametrize("denoiser", ["mlp", "unet"])
def test_model_trains_and_samples_discrete_levels(denoiser):
    model, _ = _trained(denoiser=denoiser, epochs=1)
    assert model.n_updates == 2
    samples = model.sample(5, random_state=0, steps=10)
    assert samples.shape == (5, 1, 8, 8)
    assert samples.min() >= 0 and samples.max() <= 16 and torch.equal(samples, samples.round())


def test_sampling_is_deterministic_given_a_seed():
    model, _ = _trained()
    for kwargs in ({"sampler": "ddpm", "steps": None}, {"sampler": "ddim", "steps": 10}):
        a, b = model.sample(4, random_state=7, **kwargs), model.sample(4, random_state=7, **kwargs)
        assert torch.equal(a, b)
    x1 = model.sample(4, random_state=1, return_trajectory=True)[1]
    assert x1.shape == (51, 4, 1, 8, 8)


def test_guidance_scales_zero_and_one_are_the_two_models():
    model, _ = _trained(n_classes=10)
    y = torch.tensor([0, 3, 7])
    uncond = model.sample(3, random_state=0, sampler="ddim", steps=5)
    unguided = model.sample(3, y=y, guidance_scale=0.0, random_state=0, sampler="ddim", steps=5)
    torch.testing.assert_close(unguided, uncond)
    cond = model.sample(3, y=y, random_state=0, sampler="ddim", steps=5)
    guided = model.sample(3, y=y, guidance_scale=3.0, random_state=0, sampler="ddim", steps=5)
    assert cond.shape == guided.shape == (3, 1, 8, 8)
    x = torch.randn(3, 1, 8, 8)
    t = torch.tensor([10, 20, 30])
    e_c, e_u = model.eps_network(x, t, y), model.eps_network(x, t, None)
    torch.testing.assert_close(model.predict_noise(x, t, y, 3.0), e_u + 3.0 * (e_c - e_u))


def test_log_prob_is_a_bound_in_nats_and_the_strata_estimate_agrees():
    model, x = _trained()
    exact = model.log_prob(x[:16])
    assert exact.shape == (16,) and torch.isfinite(exact).all()
    # a discrete bound: log P(x) <= 0, and an untrained-ish model is no better than uniform over 17 levels by far
    assert (exact < 0).all()
    strata = torch.stack([model.log_prob(x[:16], n_timesteps=10, random_state=s) for s in range(8)]).mean(0)
    assert abs(float(strata.mean() - exact.mean())) < 0.05 * abs(float(exact.mean()))


def test_log_prob_of_a_perfect_denoiser_bounds_tightly():
    """With the noise predictor of a point mass, the bound reaches log 1 = 0 up to the prior term."""
    schedule = cosine_schedule(50)
    model = DiffusionModel((4,), schedule=schedule, data_range=(0.0, 16.0), n_levels=17)
    point = torch.tensor([[0.0, 4.0, 8.0, 16.0]])
    model.mark_updated()
    x0 = model.to_model_space(point)
    model.eps_network = lambda x_t, t, y=None: schedule.predict_eps(x_t.double(), t, x0.expand_as(x_t).double()).float()
    bound = model.log_prob(point)
    ab_last = schedule.alpha_bars[-1]
    prior_kl = 0.5 * float((ab_last * (x0.double() ** 2 - 1) - torch.log(1 - ab_last)).sum())
    # L_0: a Gaussian of variance beta_1 centred on the right level, integrated over its bin (one-sided at 0 and 16)
    normal = torch.distributions.Normal(0.0, 1.0)
    z = torch.tensor(1 / 16 / math.sqrt(float(schedule.betas[0])))
    decoder = 2 * float(torch.log(normal.cdf(z) - normal.cdf(-z))) + 2 * float(torch.log(normal.cdf(z)))
    assert abs(float(bound) - (decoder - prior_kl)) < 1e-5, (float(bound), decoder, prior_kl)


# ----------------------------------------------------------------------------- the chapter's exercise
def _run_check(answer):
    return check("Exercise 11.1", answer, predicate=lambda a: check_add_noise_answer(a) is None,
                 describe="add_noise matching genlab.diffusion.NoiseSchedule.add_noise",
                 hint=check_add_noise_answer(answer) if answer is not Ellipsis else None)


def _solution(x0, noise, t, alpha_bars):
    a = alpha_bars[t].reshape(-1, *([1] * (x0.ndim - 1)))
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def test_add_noise_exercise_check():
    with pytest.raises(NotAttempted):
        _run_check(...)

    def with_alpha(x0, noise, t, alpha_bars):  # alpha_t recovered from the ratio of alpha-bars
        alphas = alpha_bars / torch.cat([torch.ones(1, dtype=alpha_bars.dtype), alpha_bars[:-1]])
        return _solution(x0, noise, t, alphas)

    def no_sqrt(x0, noise, t, alpha_bars):
        a = alpha_bars[t].reshape(-1, 1, 1, 1)
        return a * x0 + (1 - a) * noise

    def off_by_one(x0, noise, t, alpha_bars):
        return _solution(x0, noise, (t - 1).clamp(min=0), alpha_bars)

    for mistake, words in ((with_alpha, "alpha_bar"), (no_sqrt, "square roots"), (off_by_one, "off by one")):
        with pytest.raises(ExerciseError, match="hint") as info:
            _run_check(mistake)
        assert words in str(info.value)
    assert _run_check(_solution)
    assert "function" in check_add_noise_answer(42)


def test_noise_schedule_accepts_custom_betas():
    s = NoiseSchedule([0.1, 0.2, 0.3])
    assert s.n_steps == 3 and "NoiseSchedule" in repr(s)


def test_chapter_11_quick_profile_trains_the_digits_recipe():
    """Chapter 11 builds its digits model from the profile; the leaderboard and benchmark from RECIPES."""
    from genlab.diffusion import RECIPES
    from genlab.profiles import settings

    cfg = settings("11_diffusion", "quick")
    recipe = RECIPES["digits"]
    assert cfg.dataset == "digits" and cfg.epochs == recipe["epochs"]
    for key in ("n_steps", "base_channels", "dropout"):
        assert getattr(cfg, key) == recipe["model"][key], key
    assert tuple(cfg.channel_mults) == recipe["model"]["channel_mults"]
    assert tuple(cfg.attention_levels) == recipe["model"]["attention_levels"]
    for key in ("lr", "batch_size", "ema_decay"):
        assert getattr(cfg, key) == recipe["train"][key], key
