"""Bad input to genlab.diagnostics and to the training-tips helpers of genlab.train (table-driven)."""
from __future__ import annotations

import pytest
import torch
from badinput import BAD_POSITIVE_FLOATS, BAD_SIZES, Case, assert_clear_error
from torch import nn

from genlab import diagnostics, train
from genlab.flow import Flow2D

COVERED = {
    "diagnostics.MLPAutoencoder", "diagnostics.MLPAutoencoder.loss", "diagnostics.MLPAutoencoder.reconstruct",
    "diagnostics.rescale_init_", "diagnostics.layer_statistics", "diagnostics.LayerStatsMonitor",
    "diagnostics.input_gradient_norm", "diagnostics.MetricMonitor", "diagnostics.MetricMonitor.evaluate",
    "diagnostics.MetricMonitor.series", "diagnostics.PosteriorCollapseMonitor", "diagnostics.SampleSnapshots",
    "diagnostics.autocast_log_prob",
    "train.grad_norm", "train.lr_range", "train.linear_scaled_lr", "train.Trainer.find_lr",
    "train.ema_update_exercise", "train.clip_grad_norm_exercise",
}

X = torch.rand(16, 4)


def _model() -> diagnostics.MLPAutoencoder:
    return diagnostics.MLPAutoencoder(4, hidden=(4,), latent_dim=2)


def _trainer(model: nn.Module | None = None, **kwargs) -> train.Trainer:
    return train.Trainer(model if model is not None else _model(), progress=False, device="cpu", **kwargs)


def _fit(callback: train.Callback, model: nn.Module | None = None, **kwargs) -> None:
    _trainer(model, callbacks=[callback], **kwargs).fit(X, epochs=1)


class _NoLayers(nn.Module):
    def loss(self, batch):
        return batch.sum()


def _cases() -> list[Case]:
    D = diagnostics
    cases = [
        Case("diagnostics.MLPAutoencoder", lambda: D.MLPAutoencoder(0), "n_features"),
        Case("diagnostics.MLPAutoencoder", lambda: D.MLPAutoencoder(4, hidden="64"), "hidden"),
        Case("diagnostics.MLPAutoencoder", lambda: D.MLPAutoencoder(4, hidden=(0,)), "hidden[0]"),
        Case("diagnostics.MLPAutoencoder", lambda: D.MLPAutoencoder(4, latent_dim=2.5), "latent_dim"),
        Case("diagnostics.MLPAutoencoder", lambda: D.MLPAutoencoder(4, activation="swish!"), "activation"),
        Case("diagnostics.MLPAutoencoder", lambda: D.MLPAutoencoder(4, output_activation="sigmoid"),
             "output_activation"),
        Case("diagnostics.MLPAutoencoder.loss", lambda: _model().loss(torch.rand(3, 5)), "batch", "width"),
        Case("diagnostics.MLPAutoencoder.loss", lambda: _model().loss(torch.full((3, 4), float("nan"))), "batch",
             "nan"),
        Case("diagnostics.MLPAutoencoder.loss", lambda: _model().loss(()), "batch", "empty tuple"),
        Case("diagnostics.MLPAutoencoder.reconstruct", lambda: _model().reconstruct("x"), "x"),
        Case("diagnostics.MLPAutoencoder.reconstruct", lambda: _model().reconstruct(torch.zeros(0, 4)), "x", "empty"),
        Case("diagnostics.rescale_init_", lambda: D.rescale_init_("model"), "module"),
        Case("diagnostics.rescale_init_", lambda: D.rescale_init_(nn.ReLU()), "module", "no layers"),
        Case("diagnostics.rescale_init_", lambda: D.rescale_init_(_model(), seed=-1), "seed"),
        Case("diagnostics.layer_statistics", lambda: D.layer_statistics("model", X), "model"),
        Case("diagnostics.layer_statistics", lambda: D.layer_statistics(nn.Linear(4, 4), X), "loss"),
        Case("diagnostics.layer_statistics", lambda: D.layer_statistics(_NoLayers(), X), "model", "no layers"),
        Case("diagnostics.layer_statistics", lambda: D.layer_statistics(_model(), torch.rand(3, 5)), "batch"),
        Case("diagnostics.LayerStatsMonitor", lambda: D.LayerStatsMonitor(None), "batch"),
        Case("diagnostics.LayerStatsMonitor", lambda: D.LayerStatsMonitor(X, every=0), "every"),
        Case("diagnostics.LayerStatsMonitor", lambda: _fit(D.LayerStatsMonitor(torch.rand(3, 5))), "batch",
             "wrong width"),
        Case("diagnostics.input_gradient_norm", lambda: D.input_gradient_norm(3, X), "function"),
        Case("diagnostics.input_gradient_norm", lambda: D.input_gradient_norm(nn.Linear(4, 1), "x"), "x"),
        Case("diagnostics.input_gradient_norm", lambda: D.input_gradient_norm(nn.Linear(4, 2), X), "one score"),
        Case("diagnostics.MetricMonitor", lambda: D.MetricMonitor("fid"), "metric"),
        Case("diagnostics.MetricMonitor", lambda: D.MetricMonitor(lambda m: {}, every=1.5), "every"),
        Case("diagnostics.MetricMonitor", lambda: D.MetricMonitor(lambda m: {}, stop_if=1), "stop_if"),
        Case("diagnostics.MetricMonitor", lambda: D.MetricMonitor(lambda m: {}, use_ema="yes"), "use_ema"),
        Case("diagnostics.MetricMonitor", lambda: _fit(D.MetricMonitor(lambda m: {"a": 1}, use_ema=True)),
             "ema_decay"),
        Case("diagnostics.MetricMonitor.evaluate", lambda: D.MetricMonitor(lambda m: 3.0).evaluate(_model()),
             "metric", "not a dict"),
        Case("diagnostics.MetricMonitor.evaluate",
             lambda: D.MetricMonitor(lambda m: {"a": float("nan")}).evaluate(_model()), "metric value", "nan"),
        Case("diagnostics.MetricMonitor.evaluate", lambda: D.MetricMonitor(lambda m: {"a": 1}).evaluate("m"),
             "model"),
        Case("diagnostics.MetricMonitor.series", lambda: D.MetricMonitor(lambda m: {"a": 1}).series("b"),
             "no metric named"),
        Case("diagnostics.PosteriorCollapseMonitor", lambda: D.PosteriorCollapseMonitor(None), "x"),
        Case("diagnostics.PosteriorCollapseMonitor", lambda: D.PosteriorCollapseMonitor(X, threshold=-1.0),
             "threshold"),
        Case("diagnostics.PosteriorCollapseMonitor", lambda: D.PosteriorCollapseMonitor(X, min_active=0),
             "min_active"),
        Case("diagnostics.PosteriorCollapseMonitor", lambda: D.PosteriorCollapseMonitor(X, warmup=-1), "warmup"),
        Case("diagnostics.PosteriorCollapseMonitor", lambda: _fit(D.PosteriorCollapseMonitor(X)),
             "kl_per_dimension", "not a VAE"),
        Case("diagnostics.SampleSnapshots", lambda: D.SampleSnapshots(0), "n_samples"),
        Case("diagnostics.SampleSnapshots", lambda: D.SampleSnapshots(4, every=-2), "every"),
        Case("diagnostics.SampleSnapshots", lambda: D.SampleSnapshots(4, seed=-1), "seed"),
        Case("diagnostics.SampleSnapshots", lambda: _fit(D.SampleSnapshots(4)), "sample", "no sample method"),
        Case("diagnostics.SampleSnapshots", lambda: _fit(D.SampleSnapshots(4, use_ema=True), Flow2D(4, 1, hidden=4)),
             "ema_decay"),
        Case("diagnostics.autocast_log_prob", lambda: D.autocast_log_prob(_model(), X), "log_prob"),
        Case("diagnostics.autocast_log_prob", lambda: D.autocast_log_prob(Flow2D(4, 1), X, dtype=torch.float64),
             "dtype"),
        Case("diagnostics.autocast_log_prob", lambda: D.autocast_log_prob(Flow2D(4, 1), X, dtype=torch.float16),
             "dtype", "float16 on the CPU"),
        Case("train.grad_norm", lambda: train.grad_norm(3), "parameters"),
        Case("train.grad_norm", lambda: train.grad_norm(["a"]), "parameters", "not tensors"),
        Case("train.lr_range", lambda: train.lr_range(1.0, 0.1, 10), "lr_max", "not larger"),
        Case("train.lr_range", lambda: train.lr_range(1e-3, 1.0, 1), "n_steps"),
        Case("train.linear_scaled_lr", lambda: train.linear_scaled_lr(1e-3, 0, 64), "base_batch_size"),
        Case("train.linear_scaled_lr", lambda: train.linear_scaled_lr(1e-3, 64, 2.0), "batch_size"),
        Case("train.Trainer.find_lr", lambda: _trainer().find_lr(X, smoothing=0.0), "smoothing"),
        Case("train.Trainer.find_lr", lambda: _trainer().find_lr(X, diverge_factor=1.0), "diverge_factor"),
        Case("train.Trainer.find_lr", lambda: _trainer().find_lr(X, n_steps=True), "n_steps"),
        Case("train.Trainer.find_lr", lambda: _trainer().find_lr("data"), "train_data"),
        Case("train.Trainer.find_lr", lambda: _trainer().find_lr(torch.full((4, 4), float("nan"))), "NaN"),
        Case("train.ema_update_exercise", lambda: train.ema_update_exercise(3), "answer"),
        Case("train.ema_update_exercise", lambda: train.ema_update_exercise(..., decay=1.0), "decay"),
        Case("train.clip_grad_norm_exercise", lambda: train.clip_grad_norm_exercise("clip"), "answer"),
        Case("train.clip_grad_norm_exercise", lambda: train.clip_grad_norm_exercise(..., max_norm=0.0), "max_norm"),
    ]
    for bad in BAD_POSITIVE_FLOATS:
        cases += [Case("diagnostics.rescale_init_", lambda b=bad: diagnostics.rescale_init_(_model(), b), "std",
                       repr(bad)),
                  Case("train.lr_range", lambda b=bad: train.lr_range(b, 1.0, 10), "lr_min", repr(bad)),
                  Case("train.Trainer.find_lr", lambda b=bad: _trainer().find_lr(X, lr_max=b), "lr_max", repr(bad)),
                  Case("train.linear_scaled_lr", lambda b=bad: train.linear_scaled_lr(b, 64, 128), "base_lr",
                       repr(bad))]
    for bad in BAD_SIZES:
        if bad is None:
            continue
        cases += [Case("diagnostics.MetricMonitor", lambda b=bad: diagnostics.MetricMonitor(lambda m: {}, every=b),
                       "every", repr(bad)),
                  Case("diagnostics.SampleSnapshots", lambda b=bad: diagnostics.SampleSnapshots(b), "n_samples",
                       repr(bad))]
    return cases


CASES = _cases()


@pytest.mark.parametrize("index", range(len(CASES)), ids=[str(c) for c in CASES])
def test_bad_input_is_reported_clearly(index):
    assert_clear_error(CASES[index])


def test_find_lr_refuses_models_with_several_optimizers():
    from genlab.gan import GAN, Discriminator, Generator

    trainer = train.Trainer(GAN(Generator(2, 2, hidden=(4,)), Discriminator(2, hidden=(4,))), progress=False,
                            device="cpu")
    assert_clear_error(Case("train.Trainer.find_lr", lambda: trainer.find_lr(torch.rand(8, 2)), "one-loss model"))
