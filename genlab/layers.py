"""Building blocks the deep models share: MLPs and small conv encoders/decoders.

Sized for the course's images: 8x8 digits and 28x28 MNIST, one channel.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh,
               "silu": nn.SiLU}


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Switch ``modules`` to eval mode for the block and restore each one's mode afterwards.

    Restores even when the block raises, so scoring or sampling never leaves a caller's model in a
    different mode than it was given in (dropout and batch-norm would silently change).
    """
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
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def mlp(sizes: Sequence[int], activation: str = "relu", final_activation: str | None = None,
        dropout: float = 0.0) -> nn.Sequential:
    """A fully connected network ``sizes[0] -> ... -> sizes[-1]``.

    ``activation`` goes between layers, ``final_activation`` (or none) after the last one.
    """
    sizes = list(sizes)
    if len(sizes) < 2 or any((not isinstance(s, int)) or s < 1 for s in sizes):
        raise ValueError(f"mlp needs at least two positive integer sizes, got {sizes}")
    for name in (activation, final_activation):
        if name is not None and name not in ACTIVATIONS:
            raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
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


def _check_image_size(size: int) -> None:
    if size not in (8, 28):
        raise ValueError(f"conv blocks are built for 8x8 or 28x28 images, got {size}x{size}")


class ConvEncoder(nn.Module):
    """``(n, 1, S, S) -> (n, out_features)`` for S in {8, 28}: two strided convs and a linear head."""

    def __init__(self, image_size: int, out_features: int, channels: int = 32) -> None:
        super().__init__()
        _check_image_size(image_size)
        if out_features < 1 or channels < 1:
            raise ValueError("out_features and channels must be positive")
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
        if x.ndim != 4 or x.shape[1:] != (1, self.image_size, self.image_size):
            raise ValueError(f"expected images of shape (n, 1, {self.image_size}, {self.image_size}), got {tuple(x.shape)}")
        return self.head(self.features(x))


class ConvDecoder(nn.Module):
    """``(n, in_features) -> (n, out_channels, S, S)``: a linear stem and two transposed convs.

    ``out_channels`` is 1 for a mean/logit per pixel, or e.g. 17 for a categorical over levels.
    """

    def __init__(self, in_features: int, image_size: int, out_channels: int = 1, channels: int = 32) -> None:
        super().__init__()
        _check_image_size(image_size)
        if in_features < 1 or out_channels < 1 or channels < 1:
            raise ValueError("in_features, out_channels and channels must be positive")
        self.side = 7 if image_size == 28 else 2
        self.channels = channels
        self.stem = nn.Sequential(nn.Linear(in_features, 2 * channels * self.side * self.side), nn.ReLU())
        self.body = nn.Sequential(
            nn.ConvTranspose2d(2 * channels, channels, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(channels, out_channels, 4, stride=2, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.stem(z).view(z.shape[0], 2 * self.channels, self.side, self.side)
        return self.body(h)
