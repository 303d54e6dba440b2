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

All models have ``loss(batch)`` for :class:`genlab.train.Trainer`; ``batch`` is
an image tensor ``(n, 1, S, S)`` or a tuple ``(images, labels)``. They have no
``log_prob``: a plain autoencoder defines no density.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .layers import ConvDecoder, ConvEncoder, mlp

# Values this far outside [0, 1] / [-1, 1] are still accepted: float round-off from rescaling.
RANGE_TOLERANCE = 1e-5
NOISE_KINDS = ("gaussian", "masking")


# ----------------------------------------------------------------------------- input checks
def _check_images(images: Any, name: str = "images") -> torch.Tensor:
    """Return ``images`` as a floating tensor of shape ``(n, 1, H, W)`` with finite values, n >= 1."""
    if not isinstance(images, torch.Tensor):
        try:
            images = torch.as_tensor(images)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{name} could not be read as a tensor: {err}") from err
    if images.is_complex() or images.dtype == torch.bool:
        raise ValueError(f"{name} must be real numbers, got dtype {images.dtype}")
    if not images.is_floating_point():
        images = images.float()
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"{name} must have shape (n, 1, H, W) (one channel), got {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(images.shape)})")
    if not torch.isfinite(images).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return images


def _check_range(images: torch.Tensor, low: float, high: float, name: str) -> None:
    lo, hi = float(images.min()), float(images.max())
    if lo < low - RANGE_TOLERANCE or hi > high + RANGE_TOLERANCE:
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}], got values in [{lo:.4g}, {hi:.4g}]")


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def normalize_images(images: Any) -> torch.Tensor:
    """Map images with pixels in [0, 1] to [-1, 1] (``2 x - 1``), as the article's transform does.

    Raises:
        ValueError: wrong shape (not ``(n, 1, H, W)``), empty, NaN/inf, or values outside [0, 1].
    """
    images = _check_images(images)
    _check_range(images, 0.0, 1.0, "images to normalise")
    return (2.0 * images - 1.0).clamp(-1.0, 1.0)


def denormalize_images(images: Any) -> torch.Tensor:
    """Map images from [-1, 1] back to [0, 1] (``(x + 1) / 2``), e.g. decoder outputs for display.

    Raises:
        ValueError: wrong shape, empty, NaN/inf, or values outside [-1, 1].
    """
    images = _check_images(images)
    _check_range(images, -1.0, 1.0, "images to denormalise")
    return ((images + 1.0) / 2.0).clamp(0.0, 1.0)


def _images_of(batch: Any) -> torch.Tensor:
    """The images of a batch: the tensor itself, or the first item of ``(images, labels)``."""
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise ValueError("the batch is an empty tuple; expected images or (images, labels)")
        batch = batch[0]
    return batch


# ----------------------------------------------------------------------------- models
class _ImageAutoencoder(nn.Module):
    """What every autoencoder here shares; subclasses set ``encoder``/``decoder`` modules.

    ``encoder`` maps ``(n, 1, S, S)`` images to ``(n, latent_dim)`` codes;
    ``decoder`` maps codes to ``(n, 1, S, S)`` images in [-1, 1].
    """

    image_size: int
    latent_dim: int

    def _check_input(self, x: Any, name: str = "images") -> torch.Tensor:
        x = _check_images(x, name)
        expected = (1, self.image_size, self.image_size)
        if tuple(x.shape[1:]) != expected:
            raise ValueError(f"{name} must have shape (n, {', '.join(map(str, expected))}) for this "
                             f"{type(self).__name__}, got {tuple(x.shape)}")
        return x

    def _check_signed(self, x: Any, name: str = "images") -> torch.Tensor:
        x = self._check_input(x, name)
        _check_range(x, -1.0, 1.0, f"{name} (normalise with genlab.autoencoder.normalize_images)")
        return x

    def _check_codes(self, z: Any) -> torch.Tensor:
        if not isinstance(z, torch.Tensor):
            try:
                z = torch.as_tensor(z, dtype=torch.float32)
            except (TypeError, ValueError, RuntimeError) as err:
                raise ValueError(f"latent codes could not be read as a tensor: {err}") from err
        if z.ndim != 2 or z.shape[1] != self.latent_dim or z.shape[0] == 0:
            raise ValueError(f"latent codes must have shape (n, {self.latent_dim}) with n >= 1, got {tuple(z.shape)}")
        if not torch.isfinite(z).all():
            raise ValueError("latent codes contain NaN or infinite values")
        return z

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        param = next(self.parameters())
        return param.device, param.dtype

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``(n, latent_dim)`` of images ``(n, 1, S, S)`` in [-1, 1]."""
        x = self._check_input(x)
        device, dtype = self._device_dtype()
        return self._encode(x.to(device, dtype))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images ``(n, 1, S, S)`` in [-1, 1] from codes ``(n, latent_dim)``."""
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
        _check_positive_int(batch_size, "batch_size")
        was_training = self.training
        self.eval()
        try:
            return torch.cat([self.forward(chunk) for chunk in x.split(batch_size)])
        finally:
            self.train(was_training)

    @torch.no_grad()
    def reconstruction_error(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Per-image mean squared error ``(n,)`` in [-1, 1] units (divide by 4 for [0, 1] units)."""
        x = self._check_signed(x)
        device, dtype = self._device_dtype()
        x_hat = self.reconstruct(x, batch_size)
        return (x_hat - x.to(device, dtype)).pow(2).flatten(1).mean(1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` latents drawn from N(0, I): the article's "generation" experiment.

        This is *not* a proper generative model: nothing in training makes the
        codes follow N(0, I), so these latents mostly land where the decoder never
        saw a code, and the images are poor. A VAE adds exactly that constraint.
        Returns images ``(n, 1, S, S)`` in [-1, 1].
        """
        _check_positive_int(n, "n")
        device, dtype = self._device_dtype()
        z = torch.randn(n, self.latent_dim, generator=generator).to(device, dtype)
        was_training = self.training
        self.eval()
        try:
            return self._decode(z)
        finally:
            self.train(was_training)


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
        self.image_size = _check_positive_int(image_size, "image_size")
        self.latent_dim = _check_positive_int(latent_dim, "latent_dim")
        hidden = list(hidden)
        for size in hidden:
            _check_positive_int(size, "each hidden size")
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
        self.image_size = _check_positive_int(image_size, "image_size")
        self.latent_dim = _check_positive_int(latent_dim, "latent_dim")
        _check_positive_int(channels, "channels")
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
        if noise not in NOISE_KINDS:
            raise ValueError(f"unknown noise {noise!r}; choose one of {NOISE_KINDS}")
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not level > 0:
            raise ValueError(f"level must be a positive number, got {level!r}")
        if noise == "masking" and not level < 1:
            raise ValueError(f"the masked fraction must lie in (0, 1), got {level}")
        self.base = base
        self.noise = noise
        self.level = float(level)
        self.image_size = base.image_size
        self.latent_dim = base.latent_dim

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.base._encode(x)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.base._decode(z)

    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A corrupted copy of images ``x`` in [-1, 1] (on ``x``'s device), whatever the mode."""
        return self._corrupt(self._check_signed(x), generator)

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
