"""The autoregressive family: p(x) = Π_i p(x_i | x_<i) over the pixels in raster order, exactly.

:class:`PixelCNN` is the family's density model: masked 2-D convolutions (van den Oord et al. 2016)
give a categorical distribution over the levels of every pixel given the pixels before it, so its
``log_prob`` is the exact log-likelihood (no bound), and sampling goes pixel by pixel.
:data:`DIGITS_RECIPES` holds the settings benchmarked on the 8x8 digits.

The module also holds two autoregressive *decoders* for the VAE, p(x|z) = Π_i p(x_i | x_<i, z).

A strong decoder, as in PixelVAE (Gulrajani et al. 2017) and the variational lossy autoencoder
(Chen et al. 2017). Two networks, with the same interface:

* :class:`MADEDecoder`: a masked MLP (MADE, Germain et al. 2015), a separate weight for every pair
  of pixels;
* :class:`CausalConvDecoder`: causal 1-D convolutions, one small kernel shared by every position.

The image is read as a sequence of ``n_pixels`` values; a *causal* convolution's output at position
``i`` depends only on positions ``< i`` (first layer, "type A") or ``<= i`` (later layers, "type B"),
so the stack gives ``p(x_i | x_<i, context)`` for every pixel in one pass (van den Oord et al. 2016's
PixelCNN idea in one dimension). Unlike a MADE, the same small kernel slides over every position:
far fewer parameters, which matters with 1000 training images.

Both are called as ``forward(x, context)`` with scaled pixels ``(m, n_pixels)`` and a context
``(m, n_context)`` (the latent code, plus a one-hot label for a CVAE), and return level-major logits
``(m, n_levels * n_pixels)``.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import GenerativeModule
from .layers import CausalConv1d, MaskedConv2d, MaskedLinear, eval_mode, make_activation
from .validation import as_image_tensor, check_float, check_int, check_random_state, check_shape


class MADEDecoder(nn.Module):
    """Autoregressive categorical logits: output for pixel i sees pixels < i (raster order) and the context.

    ``forward(x, context)`` takes scaled pixels ``(m, n_pixels)`` and a context ``(m, n_context)``
    (the latent code, plus a one-hot label for a CVAE) and returns logits ``(m, n_levels * n_pixels)``
    laid out level-major, i.e. viewable as ``(m, n_levels, H, W)``.
    """

    def __init__(self, n_pixels: int, n_levels: int, n_context: int, hidden: int, n_layers: int,
                 activation: str = "leaky_relu", dropout: float = 0.0) -> None:
        super().__init__()
        n_pixels, n_context = check_int(n_pixels, "n_pixels", minimum=1), check_int(n_context, "n_context", minimum=1)
        n_levels = check_int(n_levels, "n_levels", minimum=2)
        hidden, n_layers = check_int(hidden, "hidden", minimum=1), check_int(n_layers, "n_layers", minimum=1)
        dropout = check_float(dropout, "dropout", low=0.0, high=1.0, high_inclusive=False)
        if n_pixels < 2:
            raise ValueError(f"MADEDecoder needs at least two pixels, got {n_pixels}")
        in_degree = torch.arange(1, n_pixels + 1)
        # Hidden degrees cycle through 1..n_pixels-1 so every unit can reach some output.
        hidden_degree = torch.arange(hidden) % (n_pixels - 1) + 1
        layers, previous = [], in_degree
        for _ in range(n_layers):
            layers.append(MaskedLinear(hidden_degree.unsqueeze(1) >= previous.unsqueeze(0)))
            previous = hidden_degree
        self.hidden_layers = nn.ModuleList(layers)
        self.context_layers = nn.ModuleList(nn.Linear(n_context, hidden) for _ in range(n_layers))
        out_degree = in_degree.repeat(n_levels)  # level-major: unit (k, i) has degree i + 1
        self.output = MaskedLinear(out_degree.unsqueeze(1) > previous.unsqueeze(0))
        self.context_output = nn.Linear(n_context, n_levels * n_pixels)
        self.activation = make_activation(activation)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        h = x
        for masked, ctx in zip(self.hidden_layers, self.context_layers):
            h = self.dropout(self.activation(masked(h) + ctx(context)))
        return self.output(h) + self.context_output(context)

    def extra_repr(self) -> str:
        return f"n_layers={len(self.hidden_layers)}"


class CausalConvDecoder(nn.Module):
    """Autoregressive categorical logits from a stack of causal convolutions, conditioned on a context.

    Args:
        n_pixels: sequence length (``H * W``).
        n_levels: categories per pixel.
        n_context: size of the context vector (latent code, optionally with a one-hot label).
        channels: feature maps per layer.
        n_layers: causal convolutions before the output layer (the first excludes the current pixel).
        kernel_size: width of each kernel; the logits of a pixel see the ``kernel_size + n_layers *
            (kernel_size - 1)`` pixels before it (:attr:`receptive_field`).
        activation: non-linearity between layers.
        dropout: dropout on the hidden feature maps while training.

    The context enters every layer as a *position-dependent* bias, so the latent code can say
    "stroke here" for a particular pixel and the convolutions model the local texture.
    """

    def __init__(self, n_pixels: int, n_levels: int, n_context: int, channels: int = 64, n_layers: int = 3,
                 kernel_size: int = 7, activation: str = "leaky_relu", dropout: float = 0.0) -> None:
        super().__init__()
        for value, name in ((n_pixels, "n_pixels"), (n_levels, "n_levels"), (channels, "channels"),
                            (n_layers, "n_layers"), (kernel_size, "kernel_size")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if n_pixels < 2:
            raise ValueError(f"CausalConvDecoder needs at least two pixels, got {n_pixels}")
        self.n_pixels, self.n_levels, self.channels = n_pixels, n_levels, channels
        layers = [CausalConv1d(1, channels, kernel_size, exclude_current=True)]
        layers += [CausalConv1d(channels, channels, kernel_size) for _ in range(n_layers - 1)]
        self.hidden_layers = nn.ModuleList(layers)
        self.context_layers = nn.ModuleList(nn.Linear(n_context, channels * n_pixels) for _ in range(n_layers))
        self.output = CausalConv1d(channels, n_levels, kernel_size)
        self.context_output = nn.Linear(n_context, n_levels * n_pixels)
        self.activation = make_activation(activation)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        m = x.shape[0]
        h = x.view(m, 1, self.n_pixels)
        for conv, ctx in zip(self.hidden_layers, self.context_layers):
            h = self.dropout(self.activation(conv(h) + ctx(context).view(m, self.channels, self.n_pixels)))
        logits = self.output(h) + self.context_output(context).view(m, self.n_levels, self.n_pixels)
        return logits.reshape(m, self.n_levels * self.n_pixels)

    def extra_repr(self) -> str:
        return f"receptive_field={self.receptive_field}"

    @property
    def receptive_field(self) -> int:
        """How many previous pixels the logits of one pixel can depend on."""
        kernel = self.output.kernel_size[0]
        return kernel + len(self.hidden_layers) * (kernel - 1)



def check_levels(x: Any, n_levels: int, image_shape: tuple[int, int, int], name: str = "x") -> torch.Tensor:
    """Validate integer-level images ``(n, C, H, W)`` with values in ``0..n_levels-1``; float32 out."""
    images = as_image_tensor(x, name, channels=image_shape[0])
    if tuple(images.shape[1:]) != tuple(image_shape):
        raise ValueError(f"{name} must have shape (n, {', '.join(map(str, image_shape))}), got {tuple(images.shape)}")
    if not torch.equal(images, images.round()):
        raise ValueError(f"{name} must hold integer levels 0..{n_levels - 1}, got non-integer values")
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > n_levels - 1:
        raise ValueError(f"{name} must hold levels in 0..{n_levels - 1}, got values in [{low:g}, {high:g}]")
    return images


class GatedResidualBlock(nn.Module):
    """``h + W(tanh(a) * sigmoid(b))`` with ``(a, b)`` from one masked ("B") convolution of ``h``."""

    def __init__(self, channels: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        channels = check_int(channels, "channels", minimum=1)
        kernel_size = check_int(kernel_size, "kernel_size", minimum=1)
        dropout = check_float(dropout, "dropout", low=0.0, high=1.0, high_inclusive=False)
        self.conv = MaskedConv2d(channels, 2 * channels, kernel_size)
        self.out = nn.Conv2d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a, b = self.conv(h).chunk(2, dim=1)
        return h + self.out(self.dropout(torch.tanh(a) * torch.sigmoid(b)))


class PixelCNN(GenerativeModule):
    """A small gated PixelCNN over integer levels: an exact, normalised likelihood over discrete images.

    Args:
        image_shape: ``(C, H, W)`` with ``C = 1`` (the course's grey images), e.g. ``(1, 8, 8)``.
        n_levels: levels per pixel (17 for the digits); pixels are integers ``0..n_levels-1``.
        channels: feature maps in every layer.
        n_layers: gated residual blocks after the first ("A"-masked) convolution.
        kernel_size: odd width of the masked kernels.
        dropout: dropout inside the blocks while training.
        positional: add a learned bias per position and channel (pixels near the border of a digit
            are almost always 0, a fact convolutions alone would have to infer from padding).

    Input pixels enter one-hot, so the network does not have to read a level from a scalar. Like the
    original PixelCNN, stacked masked kernels leave a "blind spot" (some pixels above and to the right
    never reach the current one); on 8x8 digits with 5x5 kernels it is small.
    ``log_prob(x)`` is log P(x) in nats per image (exact); ``loss(batch)`` its negative mean.
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 8, 8), n_levels: int = 17, channels: int = 64,
                 n_layers: int = 4, kernel_size: int = 5, dropout: float = 0.0, positional: bool = True) -> None:
        super().__init__()
        shape = check_shape(image_shape, "image_shape", length=3)
        if shape[0] != 1:
            raise ValueError(f"image_shape must have one channel (1, H, W), got {shape}")
        self.image_shape = shape
        self.n_levels = check_int(n_levels, "n_levels", minimum=2)
        channels = check_int(channels, "channels", minimum=1)
        n_layers = check_int(n_layers, "n_layers", minimum=0)
        kernel_size = check_int(kernel_size, "kernel_size", minimum=1)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        dropout = check_float(dropout, "dropout", low=0.0, high=1.0, high_inclusive=False)
        self.input = MaskedConv2d(self.n_levels, channels, kernel_size, exclude_current=True)
        self.position = nn.Parameter(torch.zeros(1, channels, *shape[1:])) if positional else None
        self.blocks = nn.ModuleList(GatedResidualBlock(channels, kernel_size, dropout) for _ in range(n_layers))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(),
                                  nn.Conv2d(channels, self.n_levels, 1))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Categorical logits ``(n, n_levels, H, W)`` of every pixel given the pixels before it.

        ``x`` holds integer levels ``(n, 1, H, W)`` (validated by the public methods).
        """
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != tuple(self.image_shape):
            raise ValueError(f"x must be a tensor of levels (n, {', '.join(map(str, self.image_shape))}), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        onehot = F.one_hot(x[:, 0].long(), self.n_levels).permute(0, 3, 1, 2).float()
        h = self.input(onehot)
        if self.position is not None:
            h = h + self.position
        for block in self.blocks:
            h = block(h)
        return self.head(h)

    def _log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return -F.cross_entropy(self.logits(x), x[:, 0].long(), reduction="none").sum((1, 2))

    def loss(self, batch: Any) -> torch.Tensor:
        """Mean negative log-likelihood of a batch of images, in nats per image."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        x = check_levels(x, self.n_levels, self.image_shape, "batch").to(self.device)
        return -self._log_prob(x).mean()

    @torch.no_grad()
    def log_prob(self, x: Any, *, batch_size: int = 512) -> torch.Tensor:
        """Exact log P(x) in nats per image, shape ``(n,)`` (eval mode: dropout off)."""
        self.check_fitted("log_prob")
        x = check_levels(x, self.n_levels, self.image_shape, "x")
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        with eval_mode(self):
            parts = [self._log_prob(chunk.to(self.device)) for chunk in x.split(batch_size)]
        return torch.cat(parts)

    @torch.no_grad()
    def sample(self, n_samples: int, *, random_state: Any = None) -> torch.Tensor:
        """Draw ``n_samples`` images ``(n, 1, H, W)`` of integer levels, pixel by pixel in raster order."""
        self.check_fitted("sample")
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        generator = check_random_state(random_state)
        _, height, width = self.image_shape
        x = torch.zeros(n_samples, *self.image_shape, device=self.device)
        with eval_mode(self):
            for row in range(height):
                for col in range(width):
                    probs = F.softmax(self.logits(x)[:, :, row, col], dim=1).cpu()
                    x[:, 0, row, col] = torch.multinomial(probs, 1, generator=generator)[:, 0].to(x)
        return x

    def extra_repr(self) -> str:
        return f"image_shape={self.image_shape}, n_levels={self.n_levels}"


def bits_per_dim(nats_per_image: float, n_dims: int) -> float:
    """Convert a negative log-likelihood in nats per image to bits per dimension."""
    n_dims = check_int(n_dims, "n_dims", minimum=1)
    return check_float(nats_per_image, "nats_per_image") / (n_dims * math.log(2))


#: The autoregressive model benchmarked on the 8x8 digits (keyword arguments of :class:`PixelCNN` and
#: of the Trainer), trained with early stopping on the validation split; see ``benchmarks/flows.py``.
DIGITS_RECIPES: dict[str, dict[str, Any]] = {
    "pixelcnn": dict(model=dict(channels=64, n_layers=4, kernel_size=5, dropout=0.3),
                     train=dict(optimizer="adamax", lr=2e-3, batch_size=64, max_epochs=300, patience=20)),
}


__all__ = ["CausalConv1d", "CausalConvDecoder", "DIGITS_RECIPES", "GatedResidualBlock", "MADEDecoder", "MaskedConv2d",
           "MaskedLinear", "PixelCNN", "bits_per_dim", "check_levels"]
