"""Bad input to chapter 15's additions: AdaIN and the fade-in (genlab.layers), the progressive generator and the
latent tools (genlab.gan), guidance with a noise-aware classifier (genlab.diffusion)."""
from __future__ import annotations

import pytest
import torch
from badinput import Case, assert_clear_error

from genlab.diffusion import DiffusionModel, NoiseAwareClassifier, cosine_schedule, guided_noise
from genlab.gan import FadeInSchedule, ProgressiveGenerator, StyleGenerator, latent_attribution, latent_traversal
from genlab.layers import AdaIN, adain, fade_in

COVERED = {
    "layers.adain", "layers.AdaIN", "layers.fade_in",
    "gan.ProgressiveGenerator", "gan.ProgressiveGenerator.grow", "gan.ProgressiveGenerator.set_alpha",
    "gan.ProgressiveGenerator.prepare_real", "gan.FadeInSchedule", "gan.latent_attribution", "gan.latent_traversal",
    "diffusion.guided_noise", "diffusion.NoiseAwareClassifier", "diffusion.NoiseAwareClassifier.for_model",
    "diffusion.NoiseAwareClassifier.loss", "diffusion.NoiseAwareClassifier.grad_log_prob",
    "diffusion.DiffusionModel.classifier_guided_noise", "diffusion.DiffusionModel.sample",
}

H = torch.randn(2, 3, 4, 4)
S2 = torch.ones(2, 3)
LOW, HIGH = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 8, 8)
SCHEDULE = cosine_schedule(20)


def _model(n_classes=10):
    model = DiffusionModel((1, 8, 8), n_classes=n_classes, n_steps=20, data_range=(0.0, 16.0), n_levels=17,
                           denoiser="mlp", hidden=8, n_layers=1)
    model.mark_updated()
    return model


M = _model()
NC = NoiseAwareClassifier.for_model(M, hidden=8, n_layers=1)
X_T, T = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])


def _grown():
    g = ProgressiveGenerator(4, channels=4)
    g.grow()
    return g


STYLE = StyleGenerator(4, channels=4)
DECODE = STYLE
SCORE = lambda x: x.sum((1, 2, 3))  # noqa: E731

CASES = [
    # layers
    Case("layers.adain", lambda: adain(H.numpy(), S2, S2), "h", "numpy"),
    Case("layers.adain", lambda: adain(H[0], S2, S2), "h", "3-d"),
    Case("layers.adain", lambda: adain(H, torch.ones(2, 4), S2), "scale", "channels"),
    Case("layers.adain", lambda: adain(H, S2, [1.0]), "shift", "list"),
    Case("layers.adain", lambda: adain(H, S2, S2, eps=0.0), "eps"),
    Case("layers.AdaIN", lambda: AdaIN(0, 4), "channels"),
    Case("layers.AdaIN", lambda: AdaIN(4, 2.5), "w_dim"),
    Case("layers.fade_in", lambda: fade_in(LOW, HIGH, 1.5), "alpha", "> 1"),
    Case("layers.fade_in", lambda: fade_in(LOW, HIGH, float("nan")), "alpha", "nan"),
    Case("layers.fade_in", lambda: fade_in(LOW, HIGH, torch.ones(2)), "alpha", "tensor"),
    Case("layers.fade_in", lambda: fade_in(LOW, torch.randn(2, 1, 7, 7), 0.5), "high", "not a multiple"),
    Case("layers.fade_in", lambda: fade_in(LOW, torch.randn(3, 1, 8, 8), 0.5), "low and high", "batch"),
    Case("layers.fade_in", lambda: fade_in("low", HIGH, 0.5), "low"),
    # the progressive generator
    Case("gan.ProgressiveGenerator", lambda: ProgressiveGenerator(0), "latent_dim"),
    Case("gan.ProgressiveGenerator", lambda: ProgressiveGenerator(4, channels=-1), "channels"),
    Case("gan.ProgressiveGenerator", lambda: ProgressiveGenerator(4, grown="yes"), "grown"),
    Case("gan.ProgressiveGenerator", lambda: ProgressiveGenerator(4, output_activation="relu"), "output_activation"),
    Case("gan.ProgressiveGenerator.grow", lambda: _grown().grow(), "grown", "twice"),
    Case("gan.ProgressiveGenerator.set_alpha", lambda: ProgressiveGenerator(4).set_alpha(0.5), "grow", "before"),
    Case("gan.ProgressiveGenerator.set_alpha", lambda: _grown().set_alpha(2.0), "alpha"),
    Case("gan.ProgressiveGenerator.prepare_real", lambda: _grown().prepare_real(torch.zeros(2, 1, 4, 4)), "x"),
    Case("gan.FadeInSchedule", lambda: FadeInSchedule(STYLE, 10), "generator"),
    Case("gan.FadeInSchedule", lambda: FadeInSchedule(ProgressiveGenerator(4), 0), "steps"),
    # latent tools
    Case("gan.latent_attribution", lambda: latent_attribution("G", SCORE, torch.zeros(2, 4)), "decode"),
    Case("gan.latent_attribution", lambda: latent_attribution(DECODE, 3, torch.zeros(2, 4)), "score"),
    Case("gan.latent_attribution", lambda: latent_attribution(DECODE, SCORE, [[0.0] * 4]), "z", "list"),
    Case("gan.latent_attribution", lambda: latent_attribution(DECODE, SCORE, torch.full((2, 4), float("nan"))),
         "z", "nan"),
    Case("gan.latent_attribution", lambda: latent_attribution(DECODE, lambda x: x, torch.zeros(2, 4)), "score",
         "not one per image"),
    Case("gan.latent_traversal", lambda: latent_traversal(DECODE, torch.zeros(2, 4), 0, [0.0]), "z", "two codes"),
    Case("gan.latent_traversal", lambda: latent_traversal(DECODE, torch.zeros(4), 4, [0.0]), "dim", "out of range"),
    Case("gan.latent_traversal", lambda: latent_traversal(DECODE, torch.zeros(4), 0, [[0.0]]), "offsets", "2-d"),
    Case("gan.latent_traversal", lambda: latent_traversal(None, torch.zeros(4), 0, [0.0]), "decode"),
    # guidance
    Case("diffusion.guided_noise", lambda: guided_noise(X_T, X_T[:2], 2.0), "eps_cond and eps_uncond", "shape"),
    Case("diffusion.guided_noise", lambda: guided_noise(X_T, X_T, -1.0), "scale", "negative"),
    Case("diffusion.guided_noise", lambda: guided_noise(X_T.numpy(), X_T, 1.0), "eps_cond", "numpy"),
    Case("diffusion.NoiseAwareClassifier", lambda: NoiseAwareClassifier((1, 8, 8), 1, SCHEDULE), "n_classes"),
    Case("diffusion.NoiseAwareClassifier", lambda: NoiseAwareClassifier((1, 8, 8), 10, "cosine"), "schedule"),
    Case("diffusion.NoiseAwareClassifier", lambda: NoiseAwareClassifier((1, 8, 8), 10, SCHEDULE,
                                                                        data_range=(1.0, 0.0)), "data_range"),
    Case("diffusion.NoiseAwareClassifier", lambda: NoiseAwareClassifier((1, 8, 8), 10, SCHEDULE, hidden=0),
         "hidden"),
    Case("diffusion.NoiseAwareClassifier.for_model", lambda: NoiseAwareClassifier.for_model(_model(None)),
         "unconditional"),
    Case("diffusion.NoiseAwareClassifier.for_model", lambda: NoiseAwareClassifier.for_model("model"), "model"),
    Case("diffusion.NoiseAwareClassifier.loss", lambda: NC.loss(torch.zeros(4, 1, 8, 8)), "(x, y)"),
    Case("diffusion.NoiseAwareClassifier.loss", lambda: NC.loss((torch.zeros(4, 1, 4, 4), torch.zeros(4).long())),
         "x", "shape"),
    Case("diffusion.NoiseAwareClassifier.loss", lambda: NC.loss((torch.zeros(4, 1, 8, 8), torch.full((4,), 10))),
         "y", "class 10"),
    Case("diffusion.NoiseAwareClassifier.grad_log_prob", lambda: NC.grad_log_prob(X_T, T, torch.zeros(3).long()),
         "y", "length"),
    Case("diffusion.NoiseAwareClassifier.grad_log_prob", lambda: NC.grad_log_prob([0.0], T, torch.zeros(4).long()),
         "x_t"),
    Case("diffusion.DiffusionModel.classifier_guided_noise",
         lambda: M.classifier_guided_noise(X_T, T, torch.zeros(4).long(), X_T, "clf", 1.0), "classifier"),
    Case("diffusion.DiffusionModel.classifier_guided_noise",
         lambda: M.classifier_guided_noise(X_T, T, torch.zeros(4).long(), X_T, NC, -1.0), "classifier_scale"),
    Case("diffusion.DiffusionModel.sample", lambda: M.sample(2, classifier=NC), "y", "classifier without labels"),
    Case("diffusion.DiffusionModel.sample", lambda: M.sample(2, y=1, classifier="clf"), "classifier"),
    Case("diffusion.DiffusionModel.sample", lambda: M.sample(2, y=1, classifier=NC, classifier_scale=float("nan")),
         "classifier_scale"),
    Case("diffusion.DiffusionModel.sample",
         lambda: M.sample(2, y=1, classifier=NoiseAwareClassifier((1, 4, 4), 10, M.schedule)), "classifier",
         "other shape"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input_fails_clearly(case):
    assert_clear_error(case)


def test_the_table_walks_every_covered_callable():
    assert {case.target for case in CASES} == COVERED
