"""Deterministic autoencoders: the article's MLP model, a convolutional variant, a denoising wrapper.

An autoencoder learns an encoder ``x -> z`` and a decoder ``z -> x_hat`` that
minimise the reconstruction error; it learns *no* distribution over ``z``.
Everything here works on images scaled to [-1, 1] (the article's
``Normalize((0.5,), (0.5,))``), which is why the decoders end in ``tanh``:

* :func:`normalize_images` / :func:`denormalize_images` convert between
  [0, 1] (what :mod:`genlab.data` returns) and [-1, 1], with input checks.
* :class:`Autoencoder` -- the article's model, 784 -> 128 -> 64 -> 12 with
  ReLU and the mirrored decoder, trained with the mean squared error.
* :class:`ConvAutoencoder` -- the same idea with :class:`genlab.layers.ConvEncoder`
  and :class:`genlab.layers.ConvDecoder`.
* :class:`DenoisingAutoencoder` -- wraps either one; in training mode it
  corrupts the input (Gaussian noise or masking) and reconstructs the clean
  image (Vincent et al., 2008).

All models are :class:`genlab.base.GenerativeModule` s with ``loss(batch)`` for
:class:`genlab.train.Trainer`; ``batch`` is an image tensor ``(n, 1, S, S)`` or a
tuple ``(images, labels)``. ``sample(n_samples, *, random_state=None)`` decodes
N(0, I) latents and, like every deep model in genlab, refuses an untrained model
(:class:`genlab.base.NotFittedError`). They have **no** ``log_prob``: a plain
autoencoder defines no density over images (the decoder is deterministic and
nothing fixes a distribution over codes), so there is no likelihood to report,
not even a bound; compare autoencoders by reconstruction error instead.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .base import GenerativeModule
from .layers import ACTIVATIONS, ConvDecoder, ConvEncoder, eval_mode, mlp
from .validation import (
    as_float_tensor,
    as_image_tensor,
    check_float,
    check_int,
    check_option,
    check_random_state,
    check_value_range,
)

# Values this far outside [0, 1] / [-1, 1] are still accepted: float round-off from rescaling.
RANGE_TOLERANCE = 1e-5
NOISE_KINDS = ("gaussian", "masking")


def normalize_images(images: Any) -> torch.Tensor:
    """Map images with pixels in [0, 1] to [-1, 1] (``2 x - 1``), as the article's transform does.

    Raises:
        ValueError: wrong shape (not ``(n, 1, H, W)``), empty, NaN/inf, or values outside [0, 1].
    """
    images = as_image_tensor(images, "images", channels=1, value_range=(0.0, 1.0), tolerance=RANGE_TOLERANCE)
    return (2.0 * images - 1.0).clamp(-1.0, 1.0)


def denormalize_images(images: Any) -> torch.Tensor:
    """Map images from [-1, 1] back to [0, 1] (``(x + 1) / 2``), e.g. decoder outputs for display.

    Raises:
        ValueError: wrong shape, empty, NaN/inf, or values outside [-1, 1].
    """
    images = as_image_tensor(images, "images", channels=1, value_range=(-1.0, 1.0), tolerance=RANGE_TOLERANCE)
    return ((images + 1.0) / 2.0).clamp(0.0, 1.0)


def _images_of(batch: Any) -> torch.Tensor:
    """The images of a batch: the tensor itself, or the first item of ``(images, labels)``."""
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise ValueError("the batch is an empty tuple; expected images or (images, labels)")
        batch = batch[0]
    return batch


# ----------------------------------------------------------------------------- models
class _ImageAutoencoder(GenerativeModule):
    """What every autoencoder here shares; subclasses set ``encoder``/``decoder`` modules.

    ``encoder`` maps ``(n, 1, S, S)`` images to ``(n, latent_dim)`` codes;
    ``decoder`` maps codes to ``(n, 1, S, S)`` images in [-1, 1].
    """

    image_size: int
    latent_dim: int

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        # Checkpoints written before autoencoders counted their steps have no ``n_updates``: they hold
        # trained weights, so they load as trained (one step) instead of failing on the missing key.
        state_dict.setdefault(prefix + "n_updates", torch.ones((), dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _check_input(self, x: Any, name: str = "images") -> torch.Tensor:
        x = as_image_tensor(x, name, channels=1)
        expected = (1, self.image_size, self.image_size)
        if tuple(x.shape[1:]) != expected:
            raise ValueError(f"{name} must have shape (n, {', '.join(map(str, expected))}) for this "
                             f"{type(self).__name__}, got {tuple(x.shape)}")
        return x

    def _check_signed(self, x: Any, name: str = "images") -> torch.Tensor:
        x = self._check_input(x, name)
        try:
            check_value_range(x, name, -1.0, 1.0, tolerance=RANGE_TOLERANCE)
        except ValueError as err:
            raise ValueError(f"{err} (normalise with genlab.autoencoder.normalize_images)") from None
        return x

    def _check_codes(self, z: Any) -> torch.Tensor:
        z = as_float_tensor(z, name="z (latent codes)", ndim=2, dtype=torch.float32)
        if z.shape[1] != self.latent_dim:
            raise ValueError(f"z (latent codes) must have shape (n, {self.latent_dim}), got {tuple(z.shape)}")
        return z

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        param = next(self.parameters())
        return param.device, param.dtype

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``(n, latent_dim)`` of images ``(n, 1, S, S)`` in [-1, 1] (with gradients, in the current mode)."""
        x = self._check_input(x)
        device, dtype = self._device_dtype()
        return self._encode(x.to(device, dtype))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images ``(n, 1, S, S)`` in [-1, 1] from codes ``z`` ``(n, latent_dim)`` (with gradients)."""
        z = self._check_codes(z)
        device, dtype = self._device_dtype()
        return self._decode(z.to(device, dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``decode(encode(x))`` (with gradients; see :meth:`reconstruct` for inference)."""
        return self.decode(self.encode(x))

    def loss(self, batch: Any) -> torch.Tensor:
        """Mean squared error between images in [-1, 1] and their reconstructions (the article's loss)."""
        x = self._check_signed(_images_of(batch))
        device, dtype = self._device_dtype()
        x = x.to(device, dtype)
        return F.mse_loss(self._decode(self._encode(x)), x)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Reconstructions of ``x`` in eval mode, without gradients, in batches (on the model's device)."""
        x = self._check_input(x)
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        with eval_mode(self):
            return torch.cat([self.forward(chunk) for chunk in x.split(batch_size)])

    @torch.no_grad()
    def reconstruction_error(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Per-image mean squared error ``(n,)`` in [-1, 1] units (divide by 4 for [0, 1] units)."""
        x = self._check_signed(x)
        device, dtype = self._device_dtype()
        x_hat = self.reconstruct(x, batch_size)
        return (x_hat - x.to(device, dtype)).pow(2).flatten(1).mean(1)

    @torch.no_grad()
    def sample(self, n_samples: int, *, random_state: int | torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n_samples`` latents drawn from N(0, I): the article's "generation" experiment.

        This is *not* a proper generative model: nothing in training makes the
        codes follow N(0, I), so these latents mostly land where the decoder never
        saw a code, and the images are poor. A VAE adds exactly that constraint.
        ``random_state``: an int (same images every call), a ``torch.Generator`` or
        ``None`` (fresh entropy). Returns images ``(n_samples, 1, S, S)`` in [-1, 1].
        Raises :class:`genlab.base.NotFittedError` on an untrained model.
        """
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        generator = check_random_state(random_state)
        self.check_fitted("sample")
        device, dtype = self._device_dtype()
        z = torch.randn(n_samples, self.latent_dim, generator=generator).to(device, dtype)
        with eval_mode(self):
            return self._decode(z)


class Autoencoder(_ImageAutoencoder):
    """The article's fully connected autoencoder (defaults: 784 -> 128 -> 64 -> 12, mirrored decoder).

    Args:
        image_size: side of the square one-channel images (28 for MNIST).
        hidden: hidden layer sizes of the encoder; the decoder uses them reversed.
        latent_dim: size of the code.
        activation: activation between layers (the article: ReLU). The code layer
            is linear and the decoder ends in ``tanh`` to match images in [-1, 1].
    """

    def __init__(self, image_size: int = 28, hidden: Sequence[int] = (128, 64), latent_dim: int = 12,
                 activation: str = "relu") -> None:
        super().__init__()
        self.image_size = image_size = check_int(image_size, "image_size", minimum=1)
        self.latent_dim = latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
        if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
            raise TypeError(f"hidden must be a sequence of layer sizes, got {hidden!r}")
        hidden = [check_int(size, f"hidden[{i}]", minimum=1) for i, size in enumerate(hidden)]
        check_option(activation, "activation", sorted(ACTIVATIONS))
        n_pixels = image_size * image_size
        self.encoder = nn.Sequential(nn.Flatten(), mlp([n_pixels, *hidden, latent_dim], activation))
        self.decoder = nn.Sequential(
            mlp([latent_dim, *reversed(hidden), n_pixels], activation, final_activation="tanh"),
            nn.Unflatten(1, (1, image_size, image_size)))


class ConvAutoencoder(_ImageAutoencoder):
    """A convolutional autoencoder from :mod:`genlab.layers` (for 8x8 or 28x28 images).

    Args:
        image_size: 8 or 28.
        latent_dim: size of the code.
        channels: width of the first conv layer (the second has twice as many).
    """

    def __init__(self, image_size: int = 28, latent_dim: int = 12, channels: int = 32) -> None:
        super().__init__()
        self.image_size = image_size = check_int(image_size, "image_size", minimum=1)
        if image_size not in (8, 28):
            raise ValueError(f"image_size must be 8 or 28 for the conv blocks, got {image_size}")
        self.latent_dim = latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
        channels = check_int(channels, "channels", minimum=1)
        self.encoder = ConvEncoder(image_size, latent_dim, channels)
        self.decoder = nn.Sequential(ConvDecoder(latent_dim, image_size, 1, channels), nn.Tanh())


class DenoisingAutoencoder(_ImageAutoencoder):
    """Train ``base`` to undo corruption (Vincent et al., 2008).

    In training mode :meth:`loss` corrupts the input and scores the
    reconstruction against the *clean* image; in eval mode it is the plain
    reconstruction loss (no corruption), so validation numbers compare with
    other autoencoders. :meth:`corrupt` is public to make noisy test images.

    Args:
        base: an :class:`Autoencoder` or :class:`ConvAutoencoder` (its weights are trained).
        noise: ``"gaussian"`` (add ``level`` x N(0, 1) in [-1, 1] units, then clip back
            to [-1, 1] so the encoder sees the same range as at test time) or
            ``"masking"`` (set a fraction ``level`` of pixels to -1, i.e. black).
        level: noise standard deviation (> 0) or masked fraction (in (0, 1)).
    """

    def __init__(self, base: _ImageAutoencoder, noise: str = "gaussian", level: float = 0.5) -> None:
        super().__init__()
        if not isinstance(base, _ImageAutoencoder) or isinstance(base, DenoisingAutoencoder):
            raise ValueError(f"base must be an Autoencoder or ConvAutoencoder, got {type(base).__name__}")
        noise = check_option(noise, "noise", NOISE_KINDS)
        level = check_float(level, "level", low=0.0, low_inclusive=False)
        if noise == "masking" and not level < 1:
            raise ValueError(f"level (the masked fraction) must lie in (0, 1), got {level}")
        self.base = base
        self.noise = noise
        self.level = level
        self.image_size = base.image_size
        self.latent_dim = base.latent_dim

    def mark_updated(self) -> None:
        """Count the step on the wrapper and on ``base`` (whose weights it trains), so both can sample."""
        super().mark_updated()
        self.base.mark_updated()

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.base._encode(x)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.base._decode(z)

    def corrupt(self, x: torch.Tensor, *, random_state: int | torch.Generator | None = None) -> torch.Tensor:
        """A corrupted copy of images ``x`` in [-1, 1] (on ``x``'s device), whatever the mode.

        ``random_state``: an int (the same noise every call), a ``torch.Generator`` or ``None`` (fresh entropy).
        """
        return self._corrupt(self._check_signed(x), check_random_state(random_state))

    def _corrupt(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.noise == "gaussian":
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
            return (x + self.level * noise).clamp(-1.0, 1.0)
        keep = torch.rand(x.shape, generator=generator).to(x.device) >= self.level
        return torch.where(keep, x, torch.full_like(x, -1.0))

    def loss(self, batch: Any) -> torch.Tensor:
        """MSE between the clean images and the reconstruction of their corrupted copy (training mode only)."""
        if not self.training:
            return super().loss(batch)
        x = self._check_signed(_images_of(batch))
        device, dtype = self._device_dtype()
        x = x.to(device, dtype)
        return F.mse_loss(self._decode(self._encode(self._corrupt(x))), x)


def _linear_layers(module: nn.Module) -> list[nn.Linear]:
    return [layer for layer in module.modules() if isinstance(layer, nn.Linear)]


def article_exercise(answer: Any, *, seed: int = 0) -> tuple[bool, str]:
    """Support for the implement-it exercise of chapter 07: the article's autoencoder and one training step.

    ``answer`` is a pair ``(build, step)``: ``build()`` returns a fresh ``nn.Module`` mapping images
    ``(n, 1, 28, 28)`` to reconstructions of the same shape (784 -> 128 -> 64 -> 12 -> 64 -> 128 -> 784,
    ReLU, ``tanh`` output); ``step(model, optimizer, images)`` does one step of the article's loop and
    returns the loss. The check copies the learner's weights into genlab's :class:`Autoencoder` and
    compares layer shapes, outputs, the loss and the weights after one Adam step (lr 1e-3) taken by
    :class:`genlab.train.Trainer`. Returns ``(accepted, hint)``; the hint says what differs.
    """
    from .train import Trainer  # late import: genlab.train imports the layers this module uses

    seed = check_int(seed, "seed", minimum=0)
    if answer is Ellipsis or answer is None:
        return False, "replace the ... with (build, step)"
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2 and all(callable(f) for f in answer)):
        return False, ("answer must be a pair (build, step) of functions: build() -> model, "
                       "step(model, optimizer, images)")
    build, step = answer
    try:
        model = build()
    except Exception as err:  # the learner's code
        return False, f"build() raised {err!r}"
    if not isinstance(model, nn.Module):
        return False, f"build() must return an nn.Module, got {type(model).__name__}"
    reference = Autoencoder()
    got_shapes = [(layer.in_features, layer.out_features) for layer in _linear_layers(model)]
    expected_shapes = [(layer.in_features, layer.out_features) for layer in _linear_layers(reference)]
    if got_shapes != expected_shapes:
        return False, (f"the linear layers are {got_shapes}, the article's are {expected_shapes}: "
                       "encoder 784 -> 128 -> 64 -> 12, decoder the mirror image")
    n_got, n_expected = (sum(p.numel() for p in m.parameters()) for m in (model, reference))
    if n_got != n_expected:
        return False, f"the model has {n_got} parameters, the article's {n_expected}: no extra layers or biases"
    with torch.no_grad():
        for mine, theirs in zip(_linear_layers(model), _linear_layers(reference)):
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(16, 1, 28, 28, generator=generator) * 2 - 1
    try:
        with torch.no_grad():
            out = model(images.clone())
    except Exception as err:  # the learner's code
        return False, f"model(images) raised {err!r}; flatten (n, 1, 28, 28) to (n, 784) in forward"
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(images.shape):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        return False, f"model(images) must return (n, 1, 28, 28) like its input, got {shape}: reshape the output"
    with torch.no_grad():
        expected_out = reference(images)
    if not torch.allclose(out, expected_out, atol=1e-5):
        return False, ("with the same weights your outputs differ from the article's model: ReLU between the "
                       "linear layers, none after the 12-d code, and Tanh after the last layer")
    with torch.no_grad():
        expected_loss = float(reference.loss(images))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    try:
        got_loss = step(model, optimizer, images.clone())
        got_loss = float(got_loss.item() if isinstance(got_loss, torch.Tensor) else got_loss)
    except Exception as err:  # the learner's code
        return False, f"step(model, optimizer, images) raised {err!r}"
    if abs(got_loss - expected_loss) > 1e-5 * max(1.0, abs(expected_loss)):
        return False, (f"step returned the loss {got_loss:.6g}, the article's loss is {expected_loss:.6g}: use "
                       "nn.MSELoss() (the MEAN over images and pixels) of the output against the input images")
    Trainer(reference, lr=1e-3, batch_size=len(images), device="cpu", progress=False, seed=seed).fit(images, epochs=1)
    gaps = [float((mine.weight.detach() - theirs.weight.detach()).abs().max()) for mine, theirs in
            zip(_linear_layers(model), _linear_layers(reference))]
    if max(gaps) > 1e-5:
        return False, (f"after one step the weights differ from the article's step (max gap {max(gaps):.2g}): call "
                       "optimizer.zero_grad(), loss.backward() and optimizer.step() exactly once each")
    return True, "ok"
