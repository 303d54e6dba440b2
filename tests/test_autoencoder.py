"""Tests for genlab.autoencoder: shapes, learning, denoising mode, input checks, Trainer integration."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.autoencoder import (
    Autoencoder,
    ConvAutoencoder,
    DenoisingAutoencoder,
    article_exercise,
    denormalize_images,
    normalize_images,
)
from genlab.base import NotFittedError
from genlab.train import Trainer


@pytest.fixture
def images() -> torch.Tensor:
    """32 structured 28x28 images in [-1, 1] (blobs at a few positions), seeded."""
    gen = torch.Generator().manual_seed(0)
    grid = torch.arange(28, dtype=torch.float32)
    centres = torch.randint(6, 22, (32, 2), generator=gen).float()
    d2 = ((grid.view(1, 28, 1) - centres[:, 0].view(-1, 1, 1)) ** 2
          + (grid.view(1, 1, 28) - centres[:, 1].view(-1, 1, 1)) ** 2)
    return (2 * torch.exp(-d2 / 18.0) - 1).unsqueeze(1)


def test_article_architecture_and_shapes(images):
    model = Autoencoder()
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [
        (784, 128), (128, 64), (64, 12), (12, 64), (64, 128), (128, 784)]
    assert isinstance(list(model.decoder.modules())[-2], torch.nn.Tanh)
    z = model.encode(images)
    assert z.shape == (32, 12)
    out = model(images)
    assert out.shape == images.shape and out.abs().max() <= 1
    with pytest.raises(NotFittedError, match="trained"):
        model.sample(5)
    model.mark_updated()
    assert model.sample(5).shape == (5, 1, 28, 28)
    assert torch.equal(model.sample(3, random_state=4), model.sample(3, random_state=4))
    assert model.reconstruct(images).shape == images.shape
    assert model.reconstruction_error(images).shape == (32,)


def test_configurable_sizes_and_conv_shapes():
    model = Autoencoder(image_size=8, hidden=(32,), latent_dim=3)
    x = torch.zeros(4, 1, 8, 8)
    assert model.encode(x).shape == (4, 3) and model(x).shape == (4, 1, 8, 8)
    for size in (8, 28):
        conv = ConvAutoencoder(image_size=size, latent_dim=5, channels=4)
        x = torch.zeros(3, 1, size, size)
        assert conv.encode(x).shape == (3, 5) and conv(x).shape == (3, 1, size, size)
        conv.mark_updated()
        assert conv.sample(2).shape == (2, 1, size, size)


@pytest.mark.parametrize("make,steps", [(lambda: Autoencoder(), 10), (lambda: ConvAutoencoder(channels=4), 25),
                                        (lambda: DenoisingAutoencoder(Autoencoder(), "masking", 0.2), 10)])
def test_loss_decreases_on_tiny_batch(images, make, steps):
    torch.manual_seed(0)
    model = make()
    batch = images[:16]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    with torch.no_grad():
        first = model.loss(batch).item()
    for _ in range(steps):
        loss = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        last = model.loss(batch).item()
    # A few Adam steps on one batch must cut an untrained net's error by a clear margin, not a fluctuation.
    assert last < 0.75 * first, f"loss went from {first:.4f} to {last:.4f} in {steps} steps"


def test_loss_accepts_images_with_labels(images):
    model = Autoencoder()
    labels = torch.zeros(len(images), dtype=torch.long)
    assert torch.allclose(model.loss((images, labels)), model.loss(images))


def test_denoising_corrupts_only_in_training_mode(images):
    torch.manual_seed(0)
    model = DenoisingAutoencoder(Autoencoder(), noise="gaussian", level=0.5)
    model.eval()
    plain = Autoencoder()
    plain.load_state_dict(model.base.state_dict())
    # Eval mode: deterministic and equal to the plain reconstruction loss.
    assert torch.equal(model.loss(images), model.loss(images))
    assert torch.allclose(model.loss(images), plain.loss(images))
    model.train()
    a, b = model.loss(images), model.loss(images)
    assert not torch.equal(a, b), "training mode should draw fresh noise each call"
    assert not torch.allclose(a, plain.loss(images))


@pytest.mark.parametrize("noise,level", [("gaussian", 0.3), ("masking", 0.25)])
def test_corrupt_changes_inputs_and_stays_in_range(images, noise, level):
    model = DenoisingAutoencoder(Autoencoder(), noise=noise, level=level)
    noisy = model.corrupt(images, random_state=1)
    assert noisy.shape == images.shape and noisy.min() >= -1 and noisy.max() <= 1
    changed = (noisy != images).float().mean()
    assert changed > 0.1
    if noise == "masking":
        # Masked pixels are set to black (-1): about `level` of the pixels that were not already black.
        was_changed = noisy != images
        assert torch.all(noisy[was_changed] == -1)


def test_normalize_round_trip_and_errors():
    x = torch.rand(5, 1, 28, 28)
    signed = normalize_images(x)
    assert signed.min() >= -1 and signed.max() <= 1
    assert torch.allclose(denormalize_images(signed), x, atol=1e-6)
    assert torch.allclose(normalize_images(np.asarray(x)), signed)
    with pytest.raises(ValueError, match="shape"):
        normalize_images(torch.rand(5, 28, 28))
    with pytest.raises(ValueError, match="shape"):
        normalize_images(torch.rand(5, 3, 28, 28))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        normalize_images(x * 255)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        denormalize_images(x * 3)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        normalize_images(bad)
    with pytest.raises(ValueError, match="empty"):
        normalize_images(torch.rand(0, 1, 28, 28))
    with pytest.raises(ValueError, match="real"):
        normalize_images(torch.zeros(2, 1, 28, 28, dtype=torch.bool))


def test_model_input_errors(images):
    model = Autoencoder()
    with pytest.raises(ValueError, match="shape"):
        model.loss(images[:, :, :8, :8])
    with pytest.raises(ValueError, match="shape"):
        model.encode(images.flatten(1))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        model.loss(denormalize_images(images) * 255)
    with pytest.raises(ValueError, match="latent codes"):
        model.decode(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="NaN"):
        model.decode(torch.full((3, 12), float("nan")))
    with pytest.raises(ValueError, match="numeric"):
        model.decode([["a"] * 12])
    with pytest.raises(ValueError, match="could not be read"):
        model.encode([[1, 2], [3]])
    with pytest.raises(ValueError, match="empty tuple"):
        model.loss(())
    model.mark_updated()
    with pytest.raises(ValueError, match="n_samples must be"):
        model.sample(0)
    with pytest.raises(ValueError, match="batch_size"):
        model.reconstruct(images, batch_size=0)


@pytest.mark.parametrize("kwargs,match", [({"latent_dim": 0}, "latent_dim"), ({"latent_dim": -3}, "latent_dim"),
                                          ({"image_size": 0}, "image_size"), ({"hidden": (128, 0)}, "hidden"),
                                          ({"activation": "swish"}, "activation")])
def test_autoencoder_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Autoencoder(**kwargs)


def test_conv_and_denoising_constructor_errors():
    with pytest.raises(ValueError, match="latent_dim"):
        ConvAutoencoder(latent_dim=0)
    with pytest.raises(ValueError, match="channels"):
        ConvAutoencoder(channels=0)
    with pytest.raises(ValueError, match="8 or 28"):
        ConvAutoencoder(image_size=16)
    with pytest.raises(ValueError, match="unknown noise"):
        DenoisingAutoencoder(Autoencoder(), noise="salt")
    with pytest.raises(ValueError, match="level"):
        DenoisingAutoencoder(Autoencoder(), level=0)
    with pytest.raises(ValueError, match="masked fraction"):
        DenoisingAutoencoder(Autoencoder(), noise="masking", level=1.0)
    with pytest.raises(ValueError, match="base"):
        DenoisingAutoencoder(torch.nn.Linear(2, 2))


def test_training_with_trainer_and_checkpoint_round_trip(images, tmp_path):
    torch.manual_seed(0)
    labels = torch.arange(len(images)) % 3
    model = DenoisingAutoencoder(ConvAutoencoder(latent_dim=4, channels=4), level=0.2)
    trainer = Trainer(model, lr=3e-3, batch_size=8, progress=False, device="cpu")
    history = trainer.fit((images, labels), epochs=6, val_data=images)
    assert len(history.train_loss) == 6 and len(history.val_loss) == 6
    assert history.val_loss[-1] < history.val_loss[0]
    path = trainer.save(tmp_path / "dae.pt")
    restored = DenoisingAutoencoder(ConvAutoencoder(latent_dim=4, channels=4), level=0.2)
    other = Trainer(restored, progress=False, device="cpu")
    other.load(path)
    assert other.epoch == 6 and other.history.val_loss == history.val_loss
    for key, value in model.state_dict().items():
        assert torch.equal(value, restored.state_dict()[key]), key
    assert torch.allclose(restored.reconstruct(images), model.reconstruct(images))


class _ArticleModel(torch.nn.Module):
    """The article's autoencoder, written by hand (optionally without the final Tanh: a typical mistake)."""

    def __init__(self, tanh: bool = True) -> None:
        super().__init__()
        nn = torch.nn
        self.encoder = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 12))
        self.decoder = nn.Sequential(nn.Linear(12, 64), nn.ReLU(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 784),
                                     *([nn.Tanh()] if tanh else []))

    def forward(self, x):
        return self.decoder(self.encoder(x.flatten(1))).view(-1, 1, 28, 28)


def _step(model, optimizer, images, reduction="mean"):
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(images), images, reduction=reduction)
    loss.backward()
    optimizer.step()
    return loss.item()


def test_article_exercise_passes_the_solution_and_explains_mistakes():
    from genlab.exercises import ExerciseError, NotAttempted, check

    def run(answer):
        accepted, hint = article_exercise(answer)
        return check("Exercise 7.4", answer, predicate=lambda a: accepted, hint=hint)

    assert run((_ArticleModel, _step))
    with pytest.raises(NotAttempted):
        run(...)
    with pytest.raises(ExerciseError, match="Tanh"):
        run((lambda: _ArticleModel(tanh=False), _step))
    with pytest.raises(ExerciseError, match="MEAN"):
        run((_ArticleModel, lambda m, o, x: _step(m, o, x, reduction="sum")))
    with pytest.raises(ExerciseError, match="exactly once"):
        run((_ArticleModel, lambda m, o, x: (_step(m, o, x), _step(m, o, x))[0]))
    with pytest.raises(ExerciseError, match="784 -> 128"):
        run((lambda: Autoencoder(hidden=(64, 32)), _step))


def test_checkpoints_from_before_the_step_counter_still_load():
    model = Autoencoder(image_size=8, hidden=(8,), latent_dim=2)
    old_state = {key: value for key, value in model.state_dict().items() if not key.endswith("n_updates")}
    restored = Autoencoder(image_size=8, hidden=(8,), latent_dim=2)
    restored.load_state_dict(old_state)
    assert restored.fitted and restored.sample(2, random_state=0).shape == (2, 1, 8, 8)
