"""Building blocks the deep models share: MLPs and small conv encoders/decoders.

Sized for the course's images: 8x8 digits and 28x28 MNIST, one channel.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import nn

from .validation import check_bool, check_float, check_int

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh,
               "silu": nn.SiLU}


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Switch ``modules`` to eval mode for the block and restore each one's mode afterwards.

    Restores even when the block raises, so scoring or sampling never leaves a caller's model in a
    different mode than it was given in (dropout and batch-norm would silently change).
    """
    for index, module in enumerate(modules):
        if not isinstance(module, nn.Module):
            raise TypeError(f"eval_mode takes nn.Module objects; modules[{index}] is a {type(module).__name__}")
    modes = [module.training for module in modules]
    try:
        for module in modules:
            module.eval()
        yield
    finally:
        for module, mode in zip(modules, modes):
            module.train(mode)


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name (one of :data:`ACTIVATIONS`)."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def mlp(sizes: Sequence[int], activation: str = "relu", final_activation: str | None = None,
        dropout: float = 0.0) -> nn.Sequential:
    """A fully connected network ``sizes[0] -> ... -> sizes[-1]``.

    ``activation`` goes between layers, ``final_activation`` (or none) after the last one.
    """
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise TypeError(f"sizes must be a sequence of layer sizes, got {sizes!r}")
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least two positive integer sizes, got {sizes}")
    sizes = [check_int(size, f"sizes[{i}]", minimum=1) for i, size in enumerate(sizes)]
    for name in (activation, final_activation):
        if name is not None and (not isinstance(name, str) or name not in ACTIVATIONS):
            raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    dropout = check_float(dropout, "dropout", low=0.0, high=1.0, high_inclusive=False)
    layers: list[nn.Module] = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        last = index == len(sizes) - 2
        if not last:
            layers.append(make_activation(activation))
            if dropout:
                layers.append(nn.Dropout(dropout))
        elif final_activation is not None:
            layers.append(make_activation(final_activation))
    return nn.Sequential(*layers)


def _check_image_size(size: int) -> int:
    size = check_int(size, "image_size", minimum=1)
    if size not in (8, 28):
        raise ValueError(f"conv blocks are built for 8x8 or 28x28 images (image_size), got {size}x{size}")
    return size


class ConvEncoder(nn.Module):
    """``(n, 1, S, S) -> (n, out_features)`` for S in {8, 28}: two strided convs and a linear head."""

    def __init__(self, image_size: int, out_features: int, channels: int = 32) -> None:
        super().__init__()
        image_size = _check_image_size(image_size)
        out_features = check_int(out_features, "out_features", minimum=1)
        channels = check_int(channels, "channels", minimum=1)
        self.image_size = image_size
        # 28 -> 14 -> 7 and 8 -> 4 -> 2: two halvings either way.
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(),
        )
        side = 7 if image_size == 28 else 2
        self.head = nn.Linear(2 * channels * side * side, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a tensor of images (n, 1, {self.image_size}, {self.image_size}), "
                            f"got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1:] != (1, self.image_size, self.image_size):
            size = self.image_size
            raise ValueError(f"expected images (x) of shape (n, 1, {size}, {size}), got {tuple(x.shape)}")
        return self.head(self.features(x))


class ConvDecoder(nn.Module):
    """``(n, in_features) -> (n, out_channels, S, S)``: a linear stem and two transposed convs.

    ``out_channels`` is 1 for a mean/logit per pixel, or e.g. 17 for a categorical over levels.
    """

    def __init__(self, in_features: int, image_size: int, out_channels: int = 1, channels: int = 32) -> None:
        super().__init__()
        image_size = _check_image_size(image_size)
        in_features = check_int(in_features, "in_features", minimum=1)
        out_channels = check_int(out_channels, "out_channels", minimum=1)
        channels = check_int(channels, "channels", minimum=1)
        self.in_features = in_features
        self.side = 7 if image_size == 28 else 2
        self.channels = channels
        self.stem = nn.Sequential(nn.Linear(in_features, 2 * channels * self.side * self.side), nn.ReLU())
        self.body = nn.Sequential(
            nn.ConvTranspose2d(2 * channels, channels, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(channels, out_channels, 4, stride=2, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.in_features:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"z must be a tensor of shape (n, {self.in_features}), got {got}")
        h = self.stem(z).view(z.shape[0], 2 * self.channels, self.side, self.side)
        return self.body(h)


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (``mask`` is ``(out, in)``)."""

    def __init__(self, mask: torch.Tensor) -> None:
        if not isinstance(mask, torch.Tensor) or mask.ndim != 2 or not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"mask must be a 2-D 0/1 tensor (out_features, in_features), got "
                             f"{getattr(mask, 'shape', type(mask).__name__)}")
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight * self.mask, self.bias)


class CausalConv1d(nn.Conv1d):
    """A 1-D convolution padded on the left only, so position ``i`` never sees the future.

    With ``exclude_current=True`` (the first layer) position ``i`` does not see itself either.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 exclude_current: bool = False) -> None:
        in_channels = check_int(in_channels, "in_channels", minimum=1)
        out_channels = check_int(out_channels, "out_channels", minimum=1)
        kernel_size = check_int(kernel_size, "kernel_size", minimum=1)
        exclude_current = check_bool(exclude_current, "exclude_current")
        super().__init__(in_channels, out_channels, kernel_size)
        self.exclude_current = exclude_current
        # One extra step of padding, then dropping the last output, shifts everything by one.
        self.left_pad = kernel_size - 1 + int(exclude_current)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(nn.functional.pad(x, (self.left_pad, 0)))
        return out[..., :-1] if self.exclude_current else out


class MaskedConv2d(nn.Conv2d):
    """A 2-D convolution that only sees pixels before the current one in raster order (PixelCNN).

    The kernel (odd ``kernel_size``, "same" padding) keeps the rows above the centre and, in the
    centre row, the columns left of the centre; ``exclude_current=True`` (mask "A", the first layer)
    also hides the centre pixel, ``False`` (mask "B", later layers) keeps it. Stacking one "A" layer
    and any number of "B" layers gives outputs at pixel ``i`` that depend only on pixels ``< i``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 exclude_current: bool = False) -> None:
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd positive integer, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        centre = kernel_size // 2
        mask = torch.zeros(kernel_size, kernel_size)
        mask[:centre] = 1.0
        mask[centre, :centre + int(not exclude_current)] = 1.0
        self.exclude_current = exclude_current
        self.register_buffer("mask", mask.expand(out_channels, in_channels, -1, -1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


# ----------------------------------------------------------------------------- U-Net blocks
# Small pieces of a denoising U-Net (time- and class-conditioned), kept here so other families can reuse them.
def group_count(channels: int, maximum: int = 32) -> int:
    """The largest number of GroupNorm groups ``<= maximum`` that divides ``channels``."""
    from .validation import check_int

    channels = check_int(channels, "channels", minimum=1)
    maximum = check_int(maximum, "maximum", minimum=1)
    for groups in range(min(maximum, channels), 0, -1):
        if channels % groups == 0:
            return groups
    return 1


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Transformer-style sinusoidal features ``(n, dim)`` of (integer or real) timesteps ``t`` of shape ``(n,)``.

    Half the features are ``sin(t * f_k)``, half ``cos(t * f_k)``, with frequencies ``f_k`` from 1 down
    to ``1 / max_period`` on a geometric grid, so nearby timesteps get nearby codes at every scale.
    """
    from .validation import check_int

    if check_int(dim, "dim", minimum=2) % 2:
        raise ValueError(f"dim must be an even integer >= 2, got {dim}")
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be a tensor of timesteps, got {type(t).__name__}")
    if t.ndim != 1:
        raise ValueError(f"t must be 1-D (one timestep per example), got shape {tuple(t.shape)}")
    half = dim // 2
    freqs = torch.exp(-torch.log(torch.tensor(max_period)) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class SinusoidalEmbedding(nn.Module):
    """:func:`sinusoidal_embedding` followed by a two-layer SiLU MLP: ``(n,) -> (n, out_dim)``."""

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        from .validation import check_int

        if check_int(dim, "dim", minimum=2) % 2 or check_int(out_dim, "out_dim", minimum=1) < 1:
            raise ValueError(f"dim must be an even integer >= 2 and out_dim positive, got {dim} and {out_dim}")
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal_embedding(t, self.dim))


class ResidualBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, conditioned on an embedding (time, class), plus a skip path.

    ``(n, in_channels, H, W), (n, emb_dim) -> (n, out_channels, H, W)``. The embedding sets a scale and
    a shift of each channel *after* the second normalisation (FiLM, as in improved DDPM): a shift
    added before it would be removed again whenever a group holds one channel. The skip path is a
    1x1 convolution when the channel count changes. The second convolution starts at zero, so every
    block starts as the identity and a deep network trains from the first step.
    """

    def __init__(self, in_channels: int, out_channels: int, emb_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        from .validation import check_float, check_int

        for value, name in ((in_channels, "in_channels"), (out_channels, "out_channels"), (emb_dim, "emb_dim")):
            check_int(value, name, minimum=1)
        check_float(dropout, "dropout", low=0.0, high=1.0, high_inclusive=False)
        self.norm1 = nn.GroupNorm(group_count(in_channels), in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 2 * out_channels))
        self.norm2 = nn.GroupNorm(group_count(out_channels), out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(nn.functional.silu(h)))
        return self.skip(x) + h


class SelfAttention2d(nn.Module):
    """Multi-head self-attention over the pixels of a feature map, with a residual connection."""

    def __init__(self, channels: int, n_heads: int = 4) -> None:
        super().__init__()
        from .validation import check_int

        if check_int(channels, "channels", minimum=1) % check_int(n_heads, "n_heads", minimum=1):
            raise ValueError(f"channels ({channels}) must be a positive multiple of n_heads ({n_heads})")
        self.norm = nn.GroupNorm(group_count(channels), channels)
        self.attention = nn.MultiheadAttention(channels, n_heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        tokens = self.norm(x).reshape(n, c, h * w).transpose(1, 2)
        out, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return x + out.transpose(1, 2).reshape(n, c, h, w)


class Downsample(nn.Module):
    """Halve the spatial size (rounding up: 7 -> 4) with a stride-2 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        from .validation import check_int

        check_int(channels, "channels", minimum=1)
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Double the spatial size (nearest neighbour) and smooth with a 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        from .validation import check_int

        check_int(channels, "channels", minimum=1)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Put spectral normalisation (Miyato et al. 2018) on every ``Linear`` and ``Conv`` layer of ``module``.

    Each weight is divided by its largest singular value (one power iteration per forward pass in
    training mode), so every layer is at most 1-Lipschitz. Returns ``module`` (changed in place).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    for layer in list(module.modules()):
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.utils.parametrizations.spectral_norm(layer)
    return module


# ----------------------------------------------------------------------------- styles and progressive growing
def _check_feature_maps(h: object, name: str) -> torch.Tensor:
    if not isinstance(h, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor of feature maps (n, C, H, W), got {type(h).__name__}")
    if h.ndim != 4 or h.shape[0] == 0 or not h.is_floating_point():
        raise ValueError(f"{name} must be a non-empty floating tensor of feature maps (n, C, H, W), got dtype "
                         f"{h.dtype}, shape {tuple(h.shape)}")
    return h


def adain(h: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Adaptive instance normalisation (Huang & Belongie 2017): ``scale * (h - mean) / std + shift``.

    Each feature map of each example is normalised over its pixels (mean 0, biased variance 1, as
    ``nn.InstanceNorm2d``), then scaled and shifted by the style: ``scale`` and ``shift`` are ``(n, C)``,
    one number per example and channel. The normalisation erases the map's own statistics, so the
    style alone decides them: this is how StyleGAN's ``w`` controls each block.

    Args:
        h: feature maps ``(n, C, H, W)``.
        scale, shift: the style, each ``(n, C)``.
        eps: added to the variance (numerical safety).
    """
    h = _check_feature_maps(h, "h")
    for name, value in (("scale", scale), ("shift", shift)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor (n, C), got {type(value).__name__}")
        if tuple(value.shape) != tuple(h.shape[:2]):
            raise ValueError(f"{name} must have shape (n, C) = {tuple(h.shape[:2])}, one value per example and "
                             f"channel, got {tuple(value.shape)}")
    eps = check_float(eps, "eps", low=0.0, low_inclusive=False)
    mean = h.mean(dim=(2, 3), keepdim=True)
    var = h.var(dim=(2, 3), keepdim=True, unbiased=False)
    return scale[:, :, None, None] * (h - mean) / torch.sqrt(var + eps) + shift[:, :, None, None]


class AdaIN(nn.Module):
    """:func:`adain` with a learned affine map from a style vector ``w`` ``(n, w_dim)`` to ``(scale, shift)``.

    The scale is ``1 + a(w)`` so that a zero style leaves the normalised maps unchanged.
    """

    def __init__(self, channels: int, w_dim: int) -> None:
        super().__init__()
        self.channels = check_int(channels, "channels", minimum=1)
        self.w_dim = check_int(w_dim, "w_dim", minimum=1)
        self.style = nn.Linear(self.w_dim, 2 * self.channels)

    def forward(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        scale, shift = self.style(w).chunk(2, 1)
        return adain(h, 1 + scale, shift)


def fade_in(low: torch.Tensor, high: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
    """Progressive growing's blend (Karras et al. 2018): ``alpha * high + (1 - alpha) * upsample(low)``.

    ``low`` is the output of the old, coarser stage ``(n, C, h, w)``; ``high`` the new stage's output
    ``(n, C, k h, k w)`` for an integer factor ``k``. ``low`` is upsampled by nearest neighbour (each
    pixel copied into a ``k x k`` block), so ``alpha = 0`` reproduces the old network exactly and
    ``alpha = 1`` is the new one alone: a new layer enters the network without a jump.
    """
    low, high = _check_feature_maps(low, "low"), _check_feature_maps(high, "high")
    if low.shape[:2] != high.shape[:2]:
        raise ValueError(f"low and high must have the same batch size and channels, got {tuple(low.shape)} and "
                         f"{tuple(high.shape)}")
    factor = high.shape[2] // low.shape[2]
    if factor < 1 or tuple(high.shape[2:]) != (low.shape[2] * factor, low.shape[3] * factor):
        raise ValueError(f"high's size {tuple(high.shape[2:])} must be an integer multiple of low's "
                         f"{tuple(low.shape[2:])}")
    if isinstance(alpha, torch.Tensor):
        if alpha.numel() != 1:
            raise ValueError(f"alpha must be one number in [0, 1], got a tensor of shape {tuple(alpha.shape)}")
        alpha = alpha.reshape(())
        value = float(alpha)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {value}")
    else:
        alpha = check_float(alpha, "alpha", low=0.0, high=1.0)
    up = nn.functional.interpolate(low, scale_factor=factor, mode="nearest") if factor > 1 else low
    return alpha * high + (1 - alpha) * up
