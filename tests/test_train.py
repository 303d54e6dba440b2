import math

import pytest
import torch
from torch import nn

from genlab.device import seed_everything
from genlab.train import Callback, LambdaCallback, Trainer, TrainingDiverged, load_checkpoint, save_checkpoint


class Regressor(nn.Module):
    """A tiny model with dropout, so resuming must also restore the global RNG."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))

    def loss(self, batch):
        x, y = batch
        return ((self.net(x).squeeze(-1) - y) ** 2).mean()


class ExplodingModel(Regressor):
    def __init__(self, explode_at: int) -> None:
        super().__init__()
        self.calls, self.explode_at = 0, explode_at

    def loss(self, batch):
        self.calls += 1
        value = super().loss(batch)
        return value * float("nan") if self.calls >= self.explode_at else value


def make_data(n=256, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    return x, x.sum(1) + 0.1 * torch.randn(n, generator=generator)


def test_training_lowers_the_loss():
    seed_everything(0)
    trainer = Trainer(Regressor(), lr=1e-2, batch_size=32, progress=False)
    history = trainer.fit(make_data(), epochs=10)
    assert len(history.train_loss) == 10
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]


def test_resume_continues_the_same_run(tmp_path):
    data = make_data()
    seed_everything(1)
    uninterrupted = Trainer(Regressor(), batch_size=32, progress=False).fit(data, epochs=6).train_loss

    path = tmp_path / "run.pt"
    seed_everything(1)
    Trainer(Regressor(), batch_size=32, progress=False, checkpoint_path=path).fit(data, epochs=3)
    seed_everything(12345)  # a fresh process would start from another state
    resumed_trainer = Trainer(Regressor(), batch_size=32, progress=False, checkpoint_path=path)
    resumed = resumed_trainer.fit(data, epochs=6, resume=True).train_loss
    assert resumed == uninterrupted  # bitwise: same losses as if never interrupted
    assert resumed_trainer.epoch == 6


def test_checkpoint_is_atomic_and_weights_only(tmp_path):
    path = tmp_path / "ckpt.pt"
    trainer = Trainer(Regressor(), progress=False, checkpoint_path=path)
    trainer.fit(make_data(64), epochs=1)
    assert path.is_file() and not list(tmp_path.glob("*.tmp"))
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and "model" in state["optimizers"]


def test_load_checkpoint_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"payload": Regressor()}, path)  # a whole module needs pickle, not weights_only
    with pytest.raises(Exception):
        load_checkpoint(path)


def test_failed_save_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"a": torch.ones(2)}, path)

    def broken_save(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"a": torch.zeros(2)}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["a"], torch.ones(2))  # the old one is intact
    assert not list(tmp_path.glob("*.tmp"))


def test_nan_loss_stops_with_a_clear_message_and_keeps_last_good_checkpoint(tmp_path):
    path = tmp_path / "run.pt"
    data = make_data(64)
    trainer = Trainer(ExplodingModel(explode_at=6), batch_size=32, progress=False, checkpoint_path=path)
    with pytest.raises(TrainingDiverged, match="epoch 3.*last good checkpoint"):
        trainer.fit(data, epochs=5)
    assert load_checkpoint(path)["epoch"] == 2


def test_early_stopping_restores_the_best_weights():
    seed_everything(0)
    x, y = make_data(128)
    val = (x[:32], -y[:32])  # a validation set the model can only get worse on
    trainer = Trainer(Regressor(), lr=1e-2, batch_size=32, progress=False)
    history = trainer.fit((x, y), epochs=50, val_data=val, patience=3)
    assert len(history.val_loss) < 50
    best = min(history.val_loss)
    assert math.isclose(trainer.evaluate(val), best, rel_tol=1e-5)


def test_ema_tracks_the_weights():
    seed_everything(0)
    trainer = Trainer(Regressor(), lr=1e-2, progress=False, ema_decay=0.9)
    trainer.fit(make_data(), epochs=3)
    for ema_param, param in zip(trainer.ema.model.parameters(), trainer.model.parameters()):
        assert not ema_param.requires_grad
        assert ema_param.shape == param.shape
    assert trainer.evaluate(make_data(64), model=trainer.ema.model) < 5.0


def test_callbacks_are_called_and_can_stop():
    events = []

    class Recorder(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            events.append((epoch, round(logs["train_loss"], 6)))
            if epoch == 1:
                trainer.should_stop = True

    trainer = Trainer(Regressor(), progress=False, callbacks=[Recorder()])
    trainer.fit(make_data(64), epochs=10)
    assert [epoch for epoch, _ in events] == [0, 1]


def test_gradient_clipping_bounds_the_update():
    seed_everything(0)
    model = Regressor()
    trainer = Trainer(model, lr=1.0, optimizer="adamw", grad_clip=1e-3, progress=False, batch_size=256)
    norms = []
    trainer.callbacks.append(LambdaCallback(on_batch_end=lambda t, loss: norms.append(
        torch.sqrt(sum((p.grad ** 2).sum() for p in t.model.parameters())).item())))
    trainer.fit(make_data(), epochs=1)
    assert norms and max(norms) <= 1e-3 * (1 + 1e-4)


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": -1.0}, "lr"), ({"batch_size": 0}, "batch_size"), ({"grad_clip": 0.0}, "grad_clip"),
    ({"optimizer": "sgd2"}, "unknown optimizer"),
])
def test_bad_trainer_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Trainer(Regressor(), progress=False, **kwargs)


def test_model_without_loss_is_rejected():
    with pytest.raises(ValueError, match="loss"):
        Trainer(nn.Linear(2, 2))


def test_bad_fit_arguments(tmp_path):
    trainer = Trainer(Regressor(), progress=False)
    with pytest.raises(ValueError, match="epochs"):
        trainer.fit(make_data(), epochs=0)
    with pytest.raises(ValueError, match="val_data"):
        trainer.fit(make_data(), epochs=1, patience=2)
    with pytest.raises(ValueError, match="checkpoint_path"):
        trainer.fit(make_data(), epochs=1, resume=True)
    x, y = make_data()
    x[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        trainer.fit((x, y), epochs=1)
    with pytest.raises(ValueError, match="empty"):
        trainer.fit(torch.empty(0, 4), epochs=1)
    with pytest.raises(ValueError, match="cannot use .* as the training data"):
        trainer.fit("not data", epochs=1)
    with pytest.raises(ValueError, match="unknown callback hooks"):
        LambdaCallback(on_step=lambda: None)


# ------------------------------------------------------------------ models with their own step
class TwoOptimizerModel(nn.Module):
    """Two halves, each minimising its own loss with its own optimiser (the shape of a GAN's step)."""

    def __init__(self, explode_at: int | None = None) -> None:
        super().__init__()
        self.first, self.second = Regressor(), Regressor()
        self.calls, self.explode_at = 0, explode_at

    def configure_optimizers(self):
        return {"first": torch.optim.Adam(self.first.parameters(), lr=1e-2),
                "second": torch.optim.SGD(self.second.parameters(), lr=1e-2, momentum=0.9)}

    def training_step(self, batch, optimizers):
        self.calls += 1
        first = self.first.loss(batch)
        if self.explode_at is not None and self.calls >= self.explode_at:
            first = first * float("nan")
        logs = {"first": optimizers.step("first", first)}
        logs["second"] = optimizers.step("second", self.second.loss(batch))
        return logs

    def loss(self, batch):
        return self.first.loss(batch)


def test_custom_step_trains_every_optimizer_and_logs_each_value():
    seed_everything(0)
    trainer = Trainer(TwoOptimizerModel(), batch_size=32, progress=False)
    history = trainer.fit(make_data(), epochs=6, val_data=make_data(64, seed=1))
    assert set(history.metrics) == {"first", "second"} and len(history.metrics["second"]) == 6
    assert history.train_loss == history.metrics["first"]  # no "loss" key: the first value is the headline
    assert history.metrics["second"][-1] < 0.5 * history.metrics["second"][0]
    assert len(history.val_loss) == 6
    with pytest.raises(AttributeError, match="several optimizers"):
        _ = trainer.optimizer


def test_custom_step_resumes_exactly_with_all_optimizers(tmp_path):
    data = make_data()
    seed_everything(3)
    uninterrupted = Trainer(TwoOptimizerModel(), batch_size=32, progress=False, ema_decay=0.9).fit(data, epochs=4)
    path = tmp_path / "run.pt"
    seed_everything(3)
    Trainer(TwoOptimizerModel(), batch_size=32, progress=False, ema_decay=0.9, checkpoint_path=path).fit(data, epochs=2)
    state = load_checkpoint(path)
    assert set(state["optimizers"]) == {"first", "second"}
    assert state["optimizers"]["second"]["state"]  # SGD momentum buffers are saved too
    seed_everything(999)
    resumed = Trainer(TwoOptimizerModel(), batch_size=32, progress=False, ema_decay=0.9, checkpoint_path=path)
    history = resumed.fit(data, epochs=4, resume=True)
    assert history.metrics == uninterrupted.metrics


def test_custom_step_nan_stops_before_the_update_and_keeps_the_checkpoint(tmp_path):
    path = tmp_path / "run.pt"
    trainer = Trainer(TwoOptimizerModel(explode_at=5), batch_size=32, progress=False, checkpoint_path=path)
    before = None

    def remember(t, epoch, logs):
        nonlocal before
        before = {k: v.clone() for k, v in t.model.state_dict().items()}

    trainer.callbacks.append(LambdaCallback(on_epoch_end=remember))
    with pytest.raises(TrainingDiverged, match="first loss became nan at epoch 3, step 1.*last good checkpoint"):
        trainer.fit(make_data(64), epochs=5)
    assert load_checkpoint(path)["epoch"] == 2
    for key, value in trainer.model.state_dict().items():
        assert torch.isfinite(value).all(), key  # the NaN loss never reached the weights


def test_checkpoint_of_another_model_is_refused(tmp_path):
    path = tmp_path / "run.pt"
    Trainer(Regressor(), progress=False, checkpoint_path=path).fit(make_data(64), epochs=1)
    with pytest.raises(ValueError, match="optimizers"):
        Trainer(TwoOptimizerModel(), progress=False, checkpoint_path=path).fit(make_data(64), epochs=2, resume=True)


def test_a_model_with_its_own_optimizers_refuses_trainer_learning_rates():
    with pytest.raises(ValueError, match="configure_optimizers"):
        Trainer(TwoOptimizerModel(), lr=1e-3, progress=False)


def test_evaluate_restores_train_mode_even_when_the_loss_raises():
    class Broken(Regressor):
        def loss(self, batch):
            raise RuntimeError("boom")

    model = Broken().train()
    trainer = Trainer(model, progress=False)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.evaluate(make_data(8))
    assert model.training
    model.eval()
    with pytest.raises(RuntimeError):
        trainer.evaluate(make_data(8))
    assert not model.training


def test_numpy_scalars_are_accepted():
    import numpy as np
    trainer = Trainer(Regressor(), lr=np.float32(1e-2), batch_size=np.int64(16), grad_clip=np.float64(1.0),
                      seed=np.int64(3), progress=False)
    history = trainer.fit(make_data(64), epochs=np.int64(2), val_data=make_data(16), patience=np.int64(1))
    assert 1 <= len(history.train_loss) <= 2


@pytest.mark.parametrize("kwargs, argument", [
    ({"grad_clip": "a"}, "grad_clip"), ({"lr": "a"}, "lr"), ({"batch_size": 2.5}, "batch_size"),
    ({"batch_size": True}, "batch_size"), ({"ema_decay": 1.0}, "ema_decay"), ({"seed": -1}, "seed"),
    ({"weight_decay": -1.0}, "weight_decay"), ({"progress": "yes"}, "progress"), ({"callbacks": [print]}, "callbacks"),
    ({"device": 3}, "device"), ({"checkpoint_path": 3}, "checkpoint_path"),
])
def test_trainer_arguments_are_validated(kwargs, argument):
    with pytest.raises((TypeError, ValueError), match=argument):
        Trainer(Regressor(), **({"progress": False} | kwargs))


@pytest.mark.parametrize("patience", [-1, 0, 0.5, "2"])
def test_patience_is_validated(patience):
    trainer = Trainer(Regressor(), progress=False)
    with pytest.raises((TypeError, ValueError), match="patience"):
        trainer.fit(make_data(32), epochs=1, val_data=make_data(8), patience=patience)
