"""Autoregressive decoders for the VAE: p(x|z) = Π_i p(x_i | x_<i, z) over the pixels in raster order.

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

import torch
import torch.nn.functional as F
from torch import nn

from .layers import make_activation


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (``mask`` is ``(out, in)``)."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight * self.mask, self.bias)


class MADEDecoder(nn.Module):
    """Autoregressive categorical logits: output for pixel i sees pixels < i (raster order) and the context.

    ``forward(x, context)`` takes scaled pixels ``(m, n_pixels)`` and a context ``(m, n_context)``
    (the latent code, plus a one-hot label for a CVAE) and returns logits ``(m, n_levels * n_pixels)``
    laid out level-major, i.e. viewable as ``(m, n_levels, H, W)``.
    """

    def __init__(self, n_pixels: int, n_levels: int, n_context: int, hidden: int, n_layers: int,
                 activation: str = "leaky_relu", dropout: float = 0.0) -> None:
        super().__init__()
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


class CausalConv1d(nn.Conv1d):
    """A 1-D convolution padded on the left only, so position ``i`` never sees the future.

    With ``exclude_current=True`` (the first layer) position ``i`` does not see itself either.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 exclude_current: bool = False) -> None:
        super().__init__(in_channels, out_channels, kernel_size)
        self.exclude_current = exclude_current
        # One extra step of padding, then dropping the last output, shifts everything by one.
        self.left_pad = kernel_size - 1 + int(exclude_current)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(F.pad(x, (self.left_pad, 0)))
        return out[..., :-1] if self.exclude_current else out


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


__all__ = ["CausalConv1d", "CausalConvDecoder", "MADEDecoder", "MaskedLinear"]
