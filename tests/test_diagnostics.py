"""genlab.diagnostics and the training-tips additions to genlab.train (range test, clipping record, exercises)."""
import math

import pytest
import torch
from torch import nn

from genlab.device import seed_everything
from genlab.diagnostics import (
    GradNormMonitor,
    LayerStatsMonitor,
    MetricMonitor,
    MLPAutoencoder,
    PosteriorCollapseMonitor,
    SampleSnapshots,
    autocast_log_prob,
    input_gradient_norm,
    layer_statistics,
    rescale_init_,
)
from genlab.exercises import ExerciseError, NotAttempted, check
from genlab.train import (
    EMA,
    Trainer,
    TrainingDiverged,
    clip_grad_norm_exercise,
    ema_update_exercise,
    grad_norm,
    linear_scaled_lr,
    lr_range,
)

X = torch.rand(128, 6) * 2 - 1


def autoencoder(**kwargs) -> MLPAutoencoder:
    seed_everything(0)
    return MLPAutoencoder(6, hidden=kwargs.pop("hidden", (8,)), latent_dim=2, **kwargs)


# ----------------------------------------------------------------------------- the probe model
def test_mlp_autoencoder_trains_and_reconstructs():
    model = autoencoder()
    history = Trainer(model, lr=1e-2, batch_size=32, progress=False, device="cpu").fit(X, epochs=15)
    assert history.train_loss[-1] < history.train_loss[0]
    out = model.reconstruct(X)
    assert out.shape == X.shape and not out.requires_grad and out.abs().max() <= 1.0  # tanh output
    assert model.loss((X, torch.zeros(len(X)))).ndim == 0  # (x, labels) batches are accepted


def test_mlp_autoencoder_accepts_inputs_outside_tanh_range():
    # The point of the probe: targets beyond ±1 are allowed (and cannot be reached by a tanh decoder).
    big = X * 5
    model = autoencoder()
    assert model.loss(big) > ((big.abs() - 1).clamp(min=0) ** 2).mean() - 1e-6
    linear = autoencoder(output_activation=None)
    assert linear.reconstruct(big).abs().max() > 0  # a linear output is unbounded


# ----------------------------------------------------------------------------- initialisation and statistics
def test_rescale_init_sets_the_scale_and_zeroes_biases():
    model = autoencoder(hidden=(256,))
    rescale_init_(model, 1.0, seed=3)
    first = model.encoder[0]
    assert abs(first.weight.std().item() - 1.0) < 0.1 and first.bias.abs().max() == 0
    rescale_init_(model, None)
    wide = model.decoder[-2] if isinstance(model.decoder[-1], nn.Tanh) else model.decoder[-1]
    assert abs(wide.weight.std().item() - math.sqrt(2 / wide.in_features)) < 0.3 * math.sqrt(2 / wide.in_features)
    again = rescale_init_(autoencoder(hidden=(256,)), 1.0, seed=3)
    assert not torch.equal(again.encoder[0].weight, model.encoder[0].weight)  # He's redraw changed it
    repeat = rescale_init_(autoencoder(hidden=(256,)), 1.0, seed=3)
    assert torch.equal(repeat.encoder[0].weight, again.encoder[0].weight)  # the same seed draws the same weights


def test_layer_statistics_see_exploding_activations_and_leave_grads_alone():
    model = autoencoder(hidden=(32, 32, 32), activation="relu")
    rescale_init_(model, 1.0)
    stats = layer_statistics(model, X)
    assert list(stats)[0] == "encoder.0" and len(stats) == 8
    act = [s["activation_std"] for s in stats.values()]
    assert act[-2] > 10 * act[0]
    assert all(p.grad is None for p in model.parameters())
    he = layer_statistics(rescale_init_(autoencoder(hidden=(32, 32, 32)), None), X)
    grads = [s["grad_std"] for s in he.values()]
    assert all(g > 0 for g in grads)


def test_layer_stats_monitor_records_every_epoch():
    monitor = LayerStatsMonitor(X[:16], every=2)
    Trainer(autoencoder(), progress=False, device="cpu", callbacks=[monitor]).fit(X, epochs=4)
    assert [epoch for epoch, _ in monitor.history] == [2, 4]


def test_input_gradient_norm_of_a_linear_map_is_its_weight_norm():
    layer = nn.Linear(3, 1)
    norms = input_gradient_norm(layer, torch.randn(5, 3))
    assert torch.allclose(norms, layer.weight.norm().expand(5).detach())
    assert layer.weight.grad is None


# ----------------------------------------------------------------------------- gradient norms and clipping
def test_grad_norm_matches_torch():
    net = nn.Linear(4, 3)
    net(torch.randn(5, 4)).pow(2).sum().backward()
    expected = torch.nn.utils.clip_grad_norm_(net.parameters(), float("inf"))
    assert grad_norm(net.parameters()) == pytest.approx(float(expected), rel=1e-6)
    assert grad_norm([nn.Parameter(torch.zeros(2))]) == 0.0


def test_grad_norm_monitor_records_the_norm_before_clipping():
    clipped, free = GradNormMonitor(), GradNormMonitor()
    for monitor, clip in ((clipped, 1e-3), (free, None)):
        Trainer(autoencoder(), progress=False, device="cpu", grad_clip=clip, callbacks=[monitor]).fit(X, epochs=1)
    assert len(clipped.norms["model"]) == 2 == len(free.norms["model"])
    assert clipped.norms["model"][0] == pytest.approx(free.norms["model"][0], rel=1e-5)
    assert clipped.norms["model"][0] > 1e-3  # the recorded value is the raw norm, not the clipped one


def test_clipping_keeps_an_exploding_run_finite():
    losses = {}
    for clip in (None, 1.0):
        seed_everything(0)
        model = MLPAutoencoder(6, hidden=(16,), latent_dim=2, output_activation=None)
        trainer = Trainer(model, optimizer=torch.optim.SGD(model.parameters(), lr=0.5), grad_clip=clip,
                          progress=False, device="cpu", batch_size=16)
        try:
            losses[clip] = trainer.fit(X * 20, epochs=3).train_loss
        except TrainingDiverged:
            losses[clip] = None
    assert losses[None] is None and all(math.isfinite(v) for v in losses[1.0])


# ----------------------------------------------------------------------------- learning rates
def test_lr_range_is_geometric():
    lrs = lr_range(1e-4, 1.0, 5)
    assert lrs[0] == pytest.approx(1e-4) and lrs[-1] == pytest.approx(1.0)
    assert all(b / a == pytest.approx(10.0) for a, b in zip(lrs, lrs[1:]))


def test_linear_scaled_lr():
    assert linear_scaled_lr(1e-3, 64, 256) == pytest.approx(4e-3)
    assert linear_scaled_lr(1e-3, 64, 16) == pytest.approx(2.5e-4)


def test_find_lr_restores_the_run_and_finds_a_falling_region():
    model = autoencoder(output_activation=None)
    trainer = Trainer(model, lr=1e-3, batch_size=16, progress=False, device="cpu")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng, data_rng = torch.get_rng_state(), trainer.generator.get_state()
    result = trainer.find_lr(X, lr_min=1e-4, lr_max=100.0, n_steps=60)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert trainer.optimizer.param_groups[0]["lr"] == 1e-3 and not trainer.optimizer.state
    assert torch.equal(torch.get_rng_state(), rng) and torch.equal(trainer.generator.get_state(), data_rng)
    assert len(result["lr"]) == len(result["loss"]) == len(result["smoothed"]) <= 60
    assert min(result["smoothed"]) < result["smoothed"][0]
    assert result["lr"][0] <= result["suggestion"] * 10 <= result["lr"][-1]
    # After the test the run trains as if it had never happened.
    fresh = autoencoder(output_activation=None)
    reference = Trainer(fresh, lr=1e-3, batch_size=16, progress=False, device="cpu").fit(X, epochs=2).train_loss
    assert trainer.fit(X, epochs=2).train_loss == pytest.approx(reference, rel=1e-6)


def test_find_lr_stops_when_the_loss_blows_up():
    trainer = Trainer(autoencoder(output_activation=None), batch_size=16, progress=False, device="cpu",
                      optimizer="adam")
    result = trainer.find_lr(X * 10, lr_min=1e-3, lr_max=1e6, n_steps=200)
    assert len(result["lr"]) < 200


# ----------------------------------------------------------------------------- monitors
def test_metric_monitor_records_and_stops():
    calls = []
    monitor = MetricMonitor(lambda m: calls.append(m.training) or {"value": len(calls)}, every=2,
                            stop_if=lambda history: history[-1]["value"] >= 2)
    history = Trainer(autoencoder(), progress=False, device="cpu", callbacks=[monitor]).fit(X, epochs=10)
    assert monitor.epochs == [2, 4] and monitor.series("value") == [1.0, 2.0]
    assert monitor.stopped_epoch == 4 and len(history.train_loss) == 4
    assert calls == [False, False]  # evaluated in eval mode


def test_metric_monitor_on_the_ema_model():
    monitor = MetricMonitor(lambda m: {"n": sum(p.numel() for p in m.parameters())}, use_ema=True)
    trainer = Trainer(autoencoder(), progress=False, device="cpu", ema_decay=0.9, callbacks=[monitor])
    trainer.fit(X, epochs=1)
    assert monitor.history and monitor.evaluate(trainer.ema.model)["n"] > 0


def test_posterior_collapse_monitor_catches_a_collapsed_vae():
    from genlab.vae import VAE

    images = torch.randint(0, 17, (64, 1, 8, 8)).float()
    seed_everything(0)
    vae = VAE((1, 8, 8), latent_dim=4, hidden=16, n_layers=1, beta=50.0)
    monitor = PosteriorCollapseMonitor(images, every=1, min_active=1, warmup=2)
    Trainer(vae, lr=1e-2, batch_size=32, progress=False, device="cpu", callbacks=[monitor]).fit(images, epochs=6)
    assert monitor.stopped_epoch == 2 and monitor.series("active_units")[-1] == 0
    assert len(monitor.kl_per_dim) == 2 and monitor.kl_per_dim[0].shape == (4,)
    assert set(monitor.history[0]) == {"kl", "active_units", "kl_0", "kl_1", "kl_2", "kl_3"}


def test_sample_snapshots_use_the_same_noise():
    from genlab.flow import Flow2D

    snapshots = SampleSnapshots(5, every=1, seed=3)
    flow = Flow2D(2, n_layers=2, hidden=8)
    Trainer(flow, progress=False, device="cpu", callbacks=[snapshots]).fit(torch.randn(64, 2), epochs=2)
    assert [e for e, _ in snapshots.snapshots] == [1, 2] and snapshots.snapshots[0][1].shape == (5, 2)


def test_autocast_log_prob_is_close_but_not_identical():
    from genlab.flow import Flow2D

    seed_everything(0)
    flow = Flow2D(2, n_layers=2, hidden=32)
    x = torch.randn(256, 2)
    Trainer(flow, progress=False, device="cpu").fit(x, epochs=1)
    full, half = flow.log_prob(x), autocast_log_prob(flow, x)
    assert half.dtype == torch.float32 and half.shape == full.shape
    assert (half - full).abs().mean() < 0.1 and not torch.equal(half, full)


# ----------------------------------------------------------------------------- exercises
def test_ema_exercise_passes_the_solution_and_fails_mistakes():
    solution = lambda avg, params, d: [d * a + (1 - d) * p for a, p in zip(avg, params)]  # noqa: E731
    swapped = lambda avg, params, d: [(1 - d) * a + d * p for a, p in zip(avg, params)]  # noqa: E731
    got, expected, hint = ema_update_exercise(solution)
    assert check("EMA", got, expected, rtol=1e-10, hint=hint)
    got, expected, hint = ema_update_exercise(swapped)
    with pytest.raises(ExerciseError, match="old average"):
        check("EMA", got, expected, rtol=1e-10, hint=hint)
    with pytest.raises(NotAttempted):
        check("EMA", *ema_update_exercise(...)[:2], hint="h")
    got, _, _ = ema_update_exercise(lambda *a: 1 / 0)
    assert "ZeroDivisionError" in got
    # genlab's EMA agrees with the formula (the check compares with it).
    net = nn.Linear(2, 2)
    ema = EMA(net, 0.5)
    old = [p.clone() for p in ema.model.parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    ema.update(net)
    assert all(torch.allclose(e, 0.5 * o + 0.5 * p) for e, o, p in zip(ema.model.parameters(), old, net.parameters()))


def test_clip_exercise_passes_the_solution_and_fails_per_tensor_clipping():
    def solution(grads, max_norm):
        norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
        return [g * min(1.0, max_norm / (float(norm) + 1e-6)) for g in grads]

    def per_tensor(grads, max_norm):
        return [g * min(1.0, max_norm / float(g.norm())) for g in grads]

    got, expected, hint = clip_grad_norm_exercise(solution)
    assert check("clip", got, expected, rtol=1e-5, hint=hint)
    got, expected, hint = clip_grad_norm_exercise(per_tensor)
    with pytest.raises(ExerciseError, match="all of them together"):
        check("clip", got, expected, rtol=1e-5, hint=hint)
    got, expected, hint = clip_grad_norm_exercise(lambda grads, m: grads)  # no clipping at all
    with pytest.raises(ExerciseError):
        check("clip", got, expected, rtol=1e-5, hint=hint)
    got, _, hint = clip_grad_norm_exercise(lambda grads, m: 3.0)
    assert "float" in got and "one clipped tensor" in hint
