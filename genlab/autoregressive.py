"""Causal 1-D convolutions over pixels in raster order: an autoregressive decoder for the VAE.

The image is read as a sequence of ``n_pixels`` values; a *causal* convolution's output at position
``i`` depends only on positions ``< i`` (first layer, "type A") or ``<= i`` (later layers, "type B"),
so the stack gives ``p(x_i | x_<i, context)`` for every pixel in one pass (van den Oord et al. 2016's
PixelCNN idea in one dimension). Unlike a MADE, the same small kernel slides over every position:
far fewer parameters, which matters with 1000 training images.

:class:`CausalConvDecoder` has the interface of :class:`genlab.priors.MADEDecoder`:
``forward(x, context)`` with scaled pixels ``(m, n_pixels)`` and a context ``(m, n_context)`` (the
latent code, plus a one-hot label for a CVAE) returns level-major logits ``(m, n_levels * n_pixels)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ACTIVATIONS


class CausalConv1d(nn.Conv1d):
    """A 1-D convolution padded on the left only, so position ``i`` never sees the future.

    With ``exclude_current=True`` (the first layer) position ``i`` does not see itself either.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, dilation: int = 1,
                 exclude_current: bool = False) -> None:
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.exclude_current = exclude_current
        # One extra step of padding, then dropping the last output, shifts everything by one.
        self.left_pad = (kernel_size - 1) * dilation + int(exclude_current)

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
        self.activation = ACTIVATIONS[activation]()
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


__all__ = ["CausalConv1d", "CausalConvDecoder"]
