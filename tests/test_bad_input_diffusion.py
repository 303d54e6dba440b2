"""Bad input to genlab.diffusion and the U-Net blocks of genlab.layers (table-driven): timesteps out of
range, betas outside (0, 1), guidance without labels or with a negative scale, images of the wrong size,
bad sizes and seeds, unknown options, an untrained model."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from badinput import BAD_SEEDS, BAD_SIZES, Case, assert_clear_error

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
    leaderboard_build,
    linear_schedule,
    make_schedule,
    sample_loop,
    train_recipe,
)
from genlab.layers import (
    Downsample,
    ResidualBlock,
    SelfAttention2d,
    SinusoidalEmbedding,
    Upsample,
    group_count,
    sinusoidal_embedding,
)

COVERED = {
    "diffusion.NoiseSchedule", "diffusion.NoiseSchedule.check_timesteps", "diffusion.NoiseSchedule.add_noise",
    "diffusion.NoiseSchedule.marginal", "diffusion.NoiseSchedule.predict_x0", "diffusion.NoiseSchedule.predict_eps",
    "diffusion.NoiseSchedule.score", "diffusion.NoiseSchedule.posterior",
    "diffusion.linear_schedule", "diffusion.cosine_schedule", "diffusion.make_schedule",
    "diffusion.ddpm_step", "diffusion.ddim_step", "diffusion.ddim_timesteps", "diffusion.sample_loop",
    "diffusion.UNet", "diffusion.MLPDenoiser", "diffusion.check_add_noise_answer", "diffusion.train_recipe",
    "diffusion.leaderboard_build",
    "diffusion.DiffusionModel", "diffusion.DiffusionModel.to_model_space", "diffusion.DiffusionModel.to_data_space",
    "diffusion.DiffusionModel.check_data", "diffusion.DiffusionModel.eps_network", "diffusion.DiffusionModel.loss",
    "diffusion.DiffusionModel.predict_noise", "diffusion.DiffusionModel.sample", "diffusion.DiffusionModel.log_prob",
    "layers.group_count", "layers.sinusoidal_embedding", "layers.SinusoidalEmbedding", "layers.ResidualBlock",
    "layers.SelfAttention2d", "layers.Downsample", "layers.Upsample",
}

S = cosine_schedule(20)
X = torch.randint(0, 17, (4, 1, 8, 8)).float()
Z = torch.zeros(4, 1, 8, 8)
T = torch.tensor([0, 1, 2, 3])


def _model(n_classes=None, fitted=True):
    model = DiffusionModel((1, 8, 8), n_classes=n_classes, n_steps=20, data_range=(0.0, 16.0), n_levels=17,
                           denoiser="mlp", hidden=8, n_layers=1)
    if fitted:
        model.mark_updated()
    return model


M, C = _model(), _model(n_classes=10)
CONT = DiffusionModel((2,), n_steps=20, data_range=None, hidden=8, n_layers=1)
CONT.mark_updated()


def _sizes(target, call, argument):
    return [Case(target, lambda v=v: call(v), argument, repr(v)) for v in BAD_SIZES]


CASES = (
    # ------------------------------------------------------------------ schedules
    [Case("diffusion.NoiseSchedule", lambda: NoiseSchedule([0.1, 1.0]), "betas", "beta = 1"),
     Case("diffusion.NoiseSchedule", lambda: NoiseSchedule([0.0, 0.1]), "betas", "beta = 0"),
     Case("diffusion.NoiseSchedule", lambda: NoiseSchedule([-0.1, 0.1]), "betas", "negative"),
     Case("diffusion.NoiseSchedule", lambda: NoiseSchedule([0.1, float("nan")]), "betas", "nan"),
     Case("diffusion.NoiseSchedule", lambda: NoiseSchedule([[0.1, 0.2]]), "betas", "2-D"),
     Case("diffusion.NoiseSchedule", lambda: NoiseSchedule("0.1"), "betas", "string"),
     Case("diffusion.NoiseSchedule", lambda: NoiseSchedule([]), "betas", "empty"),
     Case("diffusion.linear_schedule", lambda: linear_schedule(10), "betas", "beta_end * 1000 / 10 > 1"),
     Case("diffusion.linear_schedule", lambda: linear_schedule(100, beta_start=0.0), "beta_start"),
     Case("diffusion.linear_schedule", lambda: linear_schedule(100, beta_end=1.5), "beta_end"),
     Case("diffusion.cosine_schedule", lambda: cosine_schedule(100, s=-0.1), "s"),
     Case("diffusion.cosine_schedule", lambda: cosine_schedule(100, max_beta=1.0), "max_beta"),
     Case("diffusion.make_schedule", lambda: make_schedule("sigmoid"), "schedule"),
     Case("diffusion.make_schedule", lambda: make_schedule("cosine", 1), "n_steps"),
     Case("diffusion.NoiseSchedule.check_timesteps", lambda: S.check_timesteps(20), "t", "t = T"),
     Case("diffusion.NoiseSchedule.check_timesteps", lambda: S.check_timesteps(-1), "t", "negative"),
     Case("diffusion.NoiseSchedule.check_timesteps", lambda: S.check_timesteps([0.5]), "t", "non-integer"),
     Case("diffusion.NoiseSchedule.check_timesteps", lambda: S.check_timesteps([1, 2], 3), "t", "count"),
     Case("diffusion.NoiseSchedule.add_noise", lambda: S.add_noise(Z, Z, 20), "t", "t = T"),
     Case("diffusion.NoiseSchedule.add_noise", lambda: S.add_noise(Z, Z, torch.tensor([0, 1, 2, 25])), "t",
          "one out of range"),
     Case("diffusion.NoiseSchedule.add_noise", lambda: S.add_noise(Z, torch.zeros(4, 1, 4, 4), 1), "noise", "shape"),
     Case("diffusion.NoiseSchedule.add_noise", lambda: S.add_noise(np.zeros((4, 2)), np.zeros((4, 2)), 1), "x0",
          "numpy"),
     Case("diffusion.NoiseSchedule.add_noise", lambda: S.add_noise(Z, Z, T[:3]), "t", "3 timesteps for 4"),
     Case("diffusion.NoiseSchedule.marginal", lambda: S.marginal(Z, 99), "t"),
     Case("diffusion.NoiseSchedule.marginal", lambda: S.marginal(torch.zeros(0, 2), 1), "x0", "empty"),
     Case("diffusion.NoiseSchedule.predict_x0", lambda: S.predict_x0(Z, T, torch.zeros(4, 2)), "eps"),
     Case("diffusion.NoiseSchedule.predict_eps", lambda: S.predict_eps(Z, -3, Z), "t"),
     Case("diffusion.NoiseSchedule.score", lambda: S.score(Z, T, "eps"), "eps"),
     Case("diffusion.NoiseSchedule.posterior", lambda: S.posterior(Z, Z, 20), "t"),
     Case("diffusion.NoiseSchedule.posterior", lambda: S.posterior(Z, Z.long(), 1), "x_t", "integer tensor")]
    # ------------------------------------------------------------------ samplers
    + [Case("diffusion.ddpm_step", lambda: ddpm_step(S, Z, Z, 20, Z), "t"),
       Case("diffusion.ddpm_step", lambda: ddpm_step(S, Z, Z, 1.5, Z), "t", "float"),
       Case("diffusion.ddim_step", lambda: ddim_step(S, Z, Z, 5, 5), "t_prev", "not earlier"),
       Case("diffusion.ddim_step", lambda: ddim_step(S, Z, Z, 5, 2, eta=-1.0), "eta"),
       Case("diffusion.ddim_step", lambda: ddim_step(S, Z, Z, 5, 2, eta=0.5), "noise", "missing"),
       Case("diffusion.ddim_timesteps", lambda: ddim_timesteps(20, 21), "steps"),
       Case("diffusion.ddim_timesteps", lambda: ddim_timesteps(20, 0), "steps"),
       Case("diffusion.sample_loop", lambda: sample_loop(lambda x, t: x, S, (2, 1), sampler="euler"), "sampler"),
       Case("diffusion.sample_loop", lambda: sample_loop(lambda x, t: x, S, (2, 1), steps=50), "steps"),
       Case("diffusion.sample_loop", lambda: sample_loop(lambda x, t: x, S, (0, 1)), "shape"),
       Case("diffusion.sample_loop", lambda: sample_loop(lambda x, t: x, S, (2, 1), random_state=-1), "random_state")]
    # ------------------------------------------------------------------ networks and blocks
    + [Case("diffusion.UNet", lambda: UNet(1, 28, channel_mults=(1, 2, 2, 2)), "image_size", "28 / 8"),
       Case("diffusion.UNet", lambda: UNet(1, 8, channel_mults=(1, 2), attention_levels=(2,)), "attention_levels"),
       Case("diffusion.UNet", lambda: UNet(1, 8, base_channels=0), "base_channels"),
       Case("diffusion.UNet", lambda: UNet(1, 8, channel_mults=(1, 1.5)), "channel_mults"),
       Case("diffusion.UNet", lambda: UNet(1, 8, dropout=1.0), "dropout"),
       Case("diffusion.UNet", lambda: UNet(1, 8, n_classes=0), "n_classes"),
       Case("diffusion.UNet", lambda: UNet(1, 8, base_channels=8, n_res_blocks=1)(torch.zeros(2, 1, 28, 28),
                                                                                  T[:2]), "image", "28x28 into 8x8"),
       Case("diffusion.UNet", lambda: UNet(1, 8, base_channels=8, n_res_blocks=1)(torch.zeros(2, 1, 8, 8), T),
            "t", "4 timesteps for 2"),
       Case("diffusion.MLPDenoiser", lambda: MLPDenoiser(0), "dim"),
       Case("diffusion.MLPDenoiser", lambda: MLPDenoiser(2, hidden=1), "hidden"),
       Case("diffusion.MLPDenoiser", lambda: MLPDenoiser(2, hidden=8)(torch.zeros(3, 5), T[:3]), "x"),
       Case("layers.group_count", lambda: group_count(0), "channels"),
       Case("layers.sinusoidal_embedding", lambda: sinusoidal_embedding(T, 7), "dim", "odd"),
       Case("layers.sinusoidal_embedding", lambda: sinusoidal_embedding(T[None], 8), "t", "2-D"),
       Case("layers.sinusoidal_embedding", lambda: sinusoidal_embedding([1, 2], 8), "t", "list"),
       Case("layers.SinusoidalEmbedding", lambda: SinusoidalEmbedding(8, 0), "out_dim"),
       Case("layers.ResidualBlock", lambda: ResidualBlock(0, 8, 8), "in_channels"),
       Case("layers.ResidualBlock", lambda: ResidualBlock(8, 8, 8, dropout=-0.1), "dropout"),
       Case("layers.SelfAttention2d", lambda: SelfAttention2d(10, 4), "n_heads"),
       Case("layers.Downsample", lambda: Downsample(0), "channels"),
       Case("layers.Upsample", lambda: Upsample("8"), "channels")]
    # ------------------------------------------------------------------ the model
    + [Case("diffusion.DiffusionModel", lambda: DiffusionModel((1, 8)), "data_shape", "2 entries"),
       Case("diffusion.DiffusionModel", lambda: DiffusionModel((1, 8, 6)), "data_shape", "not square"),
       Case("diffusion.DiffusionModel", lambda: DiffusionModel(schedule="sigmoid"), "schedule"),
       Case("diffusion.DiffusionModel", lambda: DiffusionModel(n_steps=1), "n_steps"),
       Case("diffusion.DiffusionModel", lambda: DiffusionModel(data_range=(1.0, 0.0)), "data_range", "low > high"),
       Case("diffusion.DiffusionModel", lambda: DiffusionModel(data_range=(0.0,)), "data_range", "one value"),
       Case("diffusion.DiffusionModel", lambda: DiffusionModel(data_range=None, n_levels=17), "n_levels"),
       Case("diffusion.DiffusionModel", lambda: DiffusionModel(p_uncond=1.0), "p_uncond"),
       Case("diffusion.DiffusionModel", lambda: DiffusionModel(denoiser="transformer"), "denoiser"),
       Case("diffusion.DiffusionModel", lambda: DiffusionModel((1, 28, 28), channel_mults=(1, 2, 2, 2)),
            "image_size", "28 / 8"),
       Case("diffusion.DiffusionModel.to_model_space", lambda: M.to_model_space([1.0]), "x"),
       Case("diffusion.DiffusionModel.to_data_space", lambda: M.to_data_space(np.zeros(3)), "x"),
       Case("diffusion.DiffusionModel.check_data", lambda: M.check_data(torch.zeros(2, 1, 28, 28)), "x", "28x28"),
       Case("diffusion.DiffusionModel.check_data", lambda: M.check_data(X + 17), "data_range", "level 33"),
       Case("diffusion.DiffusionModel.check_data", lambda: M.check_data(X * float("nan")), "x", "nan"),
       Case("diffusion.DiffusionModel.check_data", lambda: CONT.check_data(torch.zeros(3, 3)), "x", "3 features"),
       Case("diffusion.DiffusionModel.eps_network", lambda: M.eps_network(torch.zeros(2, 1, 28, 28), T[:2]), "x_t"),
       Case("diffusion.DiffusionModel.eps_network", lambda: M.eps_network(Z, T + 20), "t", "out of range"),
       Case("diffusion.DiffusionModel.loss", lambda: M.loss(torch.zeros(2, 1, 7, 7)), "x", "7x7"),
       Case("diffusion.DiffusionModel.loss", lambda: M.loss((X, T)), "y", "labels, unconditional"),
       Case("diffusion.DiffusionModel.loss", lambda: C.loss(X), "y", "conditional without labels"),
       Case("diffusion.DiffusionModel.loss", lambda: C.loss((X, torch.tensor([0, 1, 2, 10]))), "y", "label 10"),
       Case("diffusion.DiffusionModel.loss", lambda: M.loss((X, T, T)), "batch", "3-tuple"),
       Case("diffusion.DiffusionModel.predict_noise", lambda: C.predict_noise(Z, T, T, -1.0), "guidance_scale"),
       Case("diffusion.DiffusionModel.predict_noise", lambda: C.predict_noise(Z, T, T[:2], 2.0), "y", "2 labels"),
       Case("diffusion.DiffusionModel.sample", lambda: C.sample(2, guidance_scale=2.0), "y", "guidance, no labels"),
       Case("diffusion.DiffusionModel.sample", lambda: C.sample(2, y=1, guidance_scale=-0.5), "guidance_scale"),
       Case("diffusion.DiffusionModel.sample", lambda: C.sample(2, y=1, guidance_scale="2"), "guidance_scale",
            "string"),
       Case("diffusion.DiffusionModel.sample", lambda: C.sample(2, y=[1, 2, 3]), "y", "3 labels for 2"),
       Case("diffusion.DiffusionModel.sample", lambda: M.sample(2, y=1), "y", "labels, unconditional"),
       Case("diffusion.DiffusionModel.sample", lambda: M.sample(2, sampler="euler"), "sampler"),
       Case("diffusion.DiffusionModel.sample", lambda: M.sample(2, steps=21), "steps", "more than T"),
       Case("diffusion.DiffusionModel.sample", lambda: M.sample(2, sampler="ddim", eta=-1.0), "eta"),
       Case("diffusion.DiffusionModel.sample", lambda: _model(fitted=False).sample(2), "sample", "untrained"),
       Case("diffusion.DiffusionModel.log_prob", lambda: CONT.log_prob(torch.zeros(2, 2)), "n_levels", "continuous"),
       Case("diffusion.DiffusionModel.log_prob", lambda: M.log_prob(X, n_timesteps=0), "n_timesteps"),
       Case("diffusion.DiffusionModel.log_prob", lambda: M.log_prob(X, batch_size=0), "batch_size"),
       Case("diffusion.DiffusionModel.log_prob", lambda: M.log_prob(torch.zeros(2, 1, 28, 28)), "x", "28x28"),
       Case("diffusion.DiffusionModel.log_prob", lambda: _model(fitted=False).log_prob(X), "log_prob", "untrained"),
       Case("diffusion.check_add_noise_answer", lambda: check_add_noise_answer(lambda *a: 0, random_state=-1),
            "random_state"),
       Case("diffusion.train_recipe", lambda: train_recipe("cifar", X, T), "dataset"),
       Case("diffusion.train_recipe", lambda: train_recipe("digits", X, T, epochs=0), "epochs"),
       Case("diffusion.leaderboard_build", lambda: leaderboard_build("digits", None, 0, "cpu"), "data.name")]
    + _sizes("diffusion.DiffusionModel.sample", lambda v: M.sample(v), "n_samples")
    + [Case("diffusion.DiffusionModel.sample", lambda v=v: M.sample(2, random_state=v), "random_state", repr(v))
       for v in BAD_SEEDS]
)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input_raises_a_clear_error(case):
    assert_clear_error(case)
