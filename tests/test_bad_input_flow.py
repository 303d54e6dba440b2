"""Bad input to genlab.flow and genlab.autoregressive fails at the door with an error naming the argument."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from badinput import BAD_SEEDS, BAD_SIZES, Case, assert_clear_error

from genlab.autoregressive import PixelCNN, bits_per_dim, check_levels
from genlab.flow import (
    ActNorm,
    AffineCoupling,
    Flow2D,
    ImageFlow,
    InvertibleLinear,
    LogitTransform,
    Permutation,
    PlanarFlow,
    Squeeze,
    VariationalDequantizer,
    channel_mask,
    check_coupling_answer,
    checkerboard_mask,
)
from genlab.layers import MaskedConv2d

COVERED = {
    "flow.checkerboard_mask", "flow.channel_mask", "flow.AffineCoupling.__init__", "flow.AffineCoupling.forward",
    "flow.ActNorm.__init__", "flow.InvertibleLinear.__init__", "flow.Permutation.__init__", "flow.Squeeze.forward",
    "flow.LogitTransform.__init__", "flow.PlanarFlow.__init__", "flow.VariationalDequantizer.__init__",
    "flow.Flow2D.__init__", "flow.Flow2D.loss", "flow.Flow2D.log_prob", "flow.Flow2D.sample", "flow.Flow2D.transform",
    "flow.Flow2D.inverse", "flow.ImageFlow.__init__", "flow.ImageFlow.loss", "flow.ImageFlow.log_prob",
    "flow.ImageFlow.log_density", "flow.ImageFlow.sample", "flow.ImageFlow.transform", "flow.ImageFlow.inverse",
    "flow.check_coupling_answer",
    "autoregressive.PixelCNN.__init__", "autoregressive.PixelCNN.loss", "autoregressive.PixelCNN.log_prob",
    "autoregressive.PixelCNN.sample", "autoregressive.bits_per_dim", "autoregressive.check_levels",
    "layers.MaskedConv2d.__init__",
}


def _fitted(model):
    model.mark_updated()
    return model


FLOW2D = _fitted(Flow2D(n_layers=2, hidden=8))
IMAGE_FLOW = _fitted(ImageFlow(image_shape=(1, 4, 4), n_levels=5, hidden=8, n_steps=1))
PIXELCNN = _fitted(PixelCNN(image_shape=(1, 4, 4), n_levels=5, channels=8, n_layers=1, kernel_size=3))
GOOD_LEVELS = torch.zeros(2, 1, 4, 4)


def _levels(**changes):
    x = GOOD_LEVELS.clone()
    for key, value in changes.items():
        if key == "value":
            x[0, 0, 0, 0] = value
    return x


BAD_LEVEL_IMAGES = [
    ("nan", _levels(value=float("nan"))), ("inf", _levels(value=float("inf"))), ("above", _levels(value=5.0)),
    ("negative", _levels(value=-1.0)), ("fraction", _levels(value=0.5)), ("shape", torch.zeros(2, 1, 4, 3)),
    ("channels", torch.zeros(2, 2, 4, 4)), ("flat", torch.zeros(2, 16)), ("empty", torch.zeros(0, 1, 4, 4)),
    ("string", "images"),
]
BAD_POINTS = [("nan", np.array([[np.nan, 0.0]])), ("inf", np.array([[np.inf, 0.0]])), ("columns", np.zeros((3, 3))),
              ("empty", np.zeros((0, 2))), ("string", "points")]

CASES: list[Case] = []
for size in BAD_SIZES:
    CASES += [Case("flow.Flow2D.sample", lambda size=size: FLOW2D.sample(size), "n_samples", repr(size)),
              Case("flow.ImageFlow.sample", lambda size=size: IMAGE_FLOW.sample(size), "n_samples", repr(size)),
              Case("autoregressive.PixelCNN.sample", lambda size=size: PIXELCNN.sample(size), "n_samples", repr(size)),
              Case("flow.ImageFlow.log_prob", lambda size=size: IMAGE_FLOW.log_prob(GOOD_LEVELS, n_samples=size),
                   "n_samples", repr(size))]
for seed in BAD_SEEDS:
    CASES += [Case("flow.Flow2D.sample", lambda seed=seed: FLOW2D.sample(2, random_state=seed), "random_state",
                   repr(seed)),
              Case("autoregressive.PixelCNN.sample", lambda seed=seed: PIXELCNN.sample(2, random_state=seed),
                   "random_state", repr(seed))]
for label, images in BAD_LEVEL_IMAGES:
    CASES += [Case("flow.ImageFlow.log_prob", lambda images=images: IMAGE_FLOW.log_prob(images), "x", label),
              Case("flow.ImageFlow.loss", lambda images=images: IMAGE_FLOW.loss(images), "batch", label),
              Case("autoregressive.PixelCNN.log_prob", lambda images=images: PIXELCNN.log_prob(images), "x", label),
              Case("autoregressive.PixelCNN.loss", lambda images=images: PIXELCNN.loss(images), "batch", label),
              Case("autoregressive.check_levels",
                   lambda images=images: check_levels(images, 5, (1, 4, 4), "pixels"), "pixels", label)]
for label, points in BAD_POINTS:
    CASES += [Case("flow.Flow2D.log_prob", lambda points=points: FLOW2D.log_prob(points), "x", label),
              Case("flow.Flow2D.loss", lambda points=points: FLOW2D.loss(points), "batch", label),
              Case("flow.Flow2D.transform", lambda points=points: FLOW2D.transform(points), "x", label),
              Case("flow.Flow2D.inverse", lambda points=points: FLOW2D.inverse(points), "z", label)]
CASES += [
    # Sizes a coupling split cannot handle.
    Case("flow.channel_mask", lambda: channel_mask(3), "channels", "odd"),
    Case("flow.channel_mask", lambda: channel_mask(1), "channels", "one"),
    Case("flow.checkerboard_mask", lambda: checkerboard_mask(1, 1), "two pixels"),
    Case("flow.checkerboard_mask", lambda: checkerboard_mask(0, 4), "height"),
    Case("flow.checkerboard_mask", lambda: checkerboard_mask(4, 4, parity=2), "parity"),
    Case("flow.Squeeze.forward", lambda: Squeeze()(torch.zeros(1, 1, 3, 4)), "height and width"),
    Case("flow.ImageFlow.__init__", lambda: ImageFlow(image_shape=(1, 6, 6)), "image_shape", "not /4"),
    Case("flow.ImageFlow.__init__", lambda: ImageFlow(image_shape=(2, 8, 8)), "image_shape", "channels"),
    Case("flow.ImageFlow.__init__", lambda: ImageFlow(image_shape=(1, 8.5, 8)), "image_shape", "float"),
    Case("flow.ImageFlow.__init__", lambda: ImageFlow(n_levels=1), "n_levels"),
    Case("flow.ImageFlow.__init__", lambda: ImageFlow(dequantization="gaussian"), "dequantization"),
    Case("flow.ImageFlow.__init__", lambda: ImageFlow(hidden=0), "hidden"),
    Case("flow.ImageFlow.__init__", lambda: ImageFlow(n_steps=True), "n_steps"),
    Case("flow.ImageFlow.__init__", lambda: ImageFlow(alpha=0.5), "alpha"),
    Case("flow.Flow2D.__init__", lambda: Flow2D(dim=1), "dim", "coupling needs 2"),
    Case("flow.Flow2D.__init__", lambda: Flow2D(kind="radial"), "kind"),
    Case("flow.Flow2D.__init__", lambda: Flow2D(n_layers=0), "n_layers"),
    Case("flow.AffineCoupling.__init__", lambda: AffineCoupling(torch.ones(4)), "mask", "all ones"),
    Case("flow.AffineCoupling.__init__", lambda: AffineCoupling(torch.tensor([0.5, 1.0])), "mask", "not 0/1"),
    Case("flow.AffineCoupling.__init__", lambda: AffineCoupling(torch.ones(2, 2)), "mask", "2-D"),
    Case("flow.AffineCoupling.__init__", lambda: AffineCoupling([1, 0]), "mask", "list"),
    Case("flow.AffineCoupling.__init__", lambda: AffineCoupling(torch.tensor([1.0, 0.0]), hidden=-1), "hidden"),
    Case("flow.AffineCoupling.forward",
         lambda: AffineCoupling(torch.tensor([1.0, 0.0]))(torch.zeros(1, 2), torch.zeros(1, 1)), "context"),
    Case("flow.ActNorm.__init__", lambda: ActNorm(0), "channels"),
    Case("flow.InvertibleLinear.__init__", lambda: InvertibleLinear(2.0), "channels"),
    Case("flow.InvertibleLinear.__init__", lambda: InvertibleLinear(2, random_state=-1), "random_state"),
    Case("flow.Permutation.__init__", lambda: Permutation(0), "channels"),
    Case("flow.LogitTransform.__init__", lambda: LogitTransform(-0.1), "alpha"),
    Case("flow.LogitTransform.__init__", lambda: LogitTransform(float("nan")), "alpha"),
    Case("flow.PlanarFlow.__init__", lambda: PlanarFlow(0), "dim"),
    Case("flow.VariationalDequantizer.__init__", lambda: VariationalDequantizer((1, 4)), "image_shape"),
    Case("flow.VariationalDequantizer.__init__", lambda: VariationalDequantizer((1, 4, 4), hidden=0), "hidden"),
    Case("flow.ImageFlow.log_density", lambda: IMAGE_FLOW.log_density(torch.full((1, 1, 4, 4), 5.0)), "v", "top"),
    Case("flow.ImageFlow.log_density", lambda: IMAGE_FLOW.log_density(torch.full((1, 1, 4, 4), -0.1)), "v", "neg"),
    Case("flow.ImageFlow.log_density", lambda: IMAGE_FLOW.log_density(torch.full((1, 1, 4, 4), float("nan"))), "v"),
    Case("flow.ImageFlow.transform", lambda: IMAGE_FLOW.transform(torch.zeros(1, 1, 8, 8)), "v", "shape"),
    Case("flow.ImageFlow.inverse", lambda: IMAGE_FLOW.inverse(torch.zeros(1, 15)), "z", "columns"),
    Case("flow.ImageFlow.inverse", lambda: IMAGE_FLOW.inverse(torch.full((1, 16), float("inf"))), "z", "inf"),
    Case("flow.ImageFlow.log_prob", lambda: IMAGE_FLOW.log_prob(GOOD_LEVELS, batch_size=0), "batch_size"),
    Case("flow.check_coupling_answer", lambda: check_coupling_answer(None, random_state=-1), "random_state"),
    Case("autoregressive.PixelCNN.__init__", lambda: PixelCNN(image_shape=(2, 8, 8)), "image_shape"),
    Case("autoregressive.PixelCNN.__init__", lambda: PixelCNN(image_shape=(1, 8)), "image_shape", "length"),
    Case("autoregressive.PixelCNN.__init__", lambda: PixelCNN(n_levels=1), "n_levels"),
    Case("autoregressive.PixelCNN.__init__", lambda: PixelCNN(kernel_size=4), "kernel_size", "even"),
    Case("autoregressive.PixelCNN.__init__", lambda: PixelCNN(channels=0), "channels"),
    Case("autoregressive.PixelCNN.__init__", lambda: PixelCNN(dropout=1.0), "dropout"),
    Case("autoregressive.PixelCNN.log_prob", lambda: PIXELCNN.log_prob(GOOD_LEVELS, batch_size=0), "batch_size"),
    Case("autoregressive.bits_per_dim", lambda: bits_per_dim(float("nan"), 64), "nats_per_image"),
    Case("autoregressive.bits_per_dim", lambda: bits_per_dim(80.0, 0), "n_dims"),
    Case("layers.MaskedConv2d.__init__", lambda: MaskedConv2d(1, 1, 4), "kernel_size"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input_fails_clearly(case):
    assert_clear_error(case)


def test_covered_names_are_walked():
    assert {case.target for case in CASES} == COVERED


def test_untrained_models_refuse():
    for call in (lambda: Flow2D().sample(1), lambda: ImageFlow().log_prob(torch.zeros(1, 1, 8, 8)),
                 lambda: PixelCNN().log_prob(torch.zeros(1, 1, 8, 8))):
        with pytest.raises(ValueError, match="trained"):
            call()
