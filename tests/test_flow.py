"""genlab.flow: invertibility, log-determinants against autograd, densities, dequantisation, the exercise check."""
from __future__ import annotations

import math

import pytest
import torch

from genlab.exercises import ExerciseError, NotAttempted, check
from genlab.flow import (
    ActNorm,
    AffineCoupling,
    Flow2D,
    FlowSequential,
    ImageFlow,
    InvertibleLinear,
    LogitTransform,
    Permutation,
    PlanarFlow,
    Squeeze,
    channel_mask,
    check_coupling_answer,
    checkerboard_mask,
)
from genlab.train import Trainer


def _perturb(module: torch.nn.Module, scale: float = 0.2, seed: int = 0) -> None:
    """Move every weight off its (often identity) initial value, so the tests exercise real maps."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(scale * torch.randn(param.shape, generator=generator, dtype=param.dtype))


def _bijectors() -> dict[str, tuple[torch.nn.Module, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    image = torch.randn(3, 4, 2, 2, generator=g, dtype=torch.float64)
    vector = torch.randn(3, 4, generator=g, dtype=torch.float64)
    return {
        "coupling_vector": (AffineCoupling(torch.tensor([1.0, 0.0, 1.0, 0.0]), hidden=8), vector),
        "coupling_checkerboard": (AffineCoupling(checkerboard_mask(2, 2).expand(4, 2, 2).clone(), hidden=8), image),
        "coupling_channels": (AffineCoupling(channel_mask(4, 2, 2), hidden=8), image),
        "actnorm_image": (ActNorm(4), image),
        "actnorm_vector": (ActNorm(4), vector),
        "invertible_1x1": (InvertibleLinear(4), image),
        "invertible_linear": (InvertibleLinear(4), vector),
        "permutation": (Permutation(4), vector),
        "squeeze": (Squeeze(), image),
        "logit": (LogitTransform(0.05), torch.rand(3, 4, 2, 2, generator=g, dtype=torch.float64)),
        "planar": (PlanarFlow(4), vector),
    }


@pytest.mark.parametrize("name", sorted(_bijectors()))
def test_bijector_inverts_and_log_det_matches_autograd(name):
    layer, x = _bijectors()[name]
    layer = layer.double()
    layer.train()
    layer(x)  # ActNorm initialises from the first training batch
    _perturb(layer)
    layer.eval()
    z, log_det = layer(x)
    assert torch.allclose(layer.inverse(z), x, atol=1e-5, rtol=0), name
    assert log_det.shape == (x.shape[0],)
    for i in range(x.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda a: layer(a.unsqueeze(0))[0].flatten(), x[i])
        jac = jac.reshape(z[0].numel(), x[0].numel())
        assert torch.allclose(torch.linalg.slogdet(jac)[1], log_det[i], atol=1e-8), name


@pytest.mark.parametrize("kind", ["coupling", "planar"])
def test_flow2d_inverts_and_integrates_to_one(kind):
    model = Flow2D(kind=kind, n_layers=4, hidden=16).double()
    x = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    model.train()
    model.loss(x)
    _perturb(model, 0.1)
    model.mark_updated()
    z, log_det = model.transform(x)
    assert torch.allclose(model.inverse(z), x, atol=1e-5, rtol=0)
    jac = torch.autograd.functional.jacobian(lambda a: model.flow(a.unsqueeze(0))[0][0], x[0])
    assert torch.allclose(torch.linalg.slogdet(jac)[1], log_det[0], atol=1e-8)
    # The change of variables gives a normalised density: integrate it on a grid.
    grid = torch.linspace(-12, 12, 241, dtype=torch.float64)
    xx, yy = torch.meshgrid(grid, grid, indexing="ij")
    density = model.log_prob(torch.stack([xx.flatten(), yy.flatten()], 1)).exp()
    mass = float(density.sum() * (grid[1] - grid[0]) ** 2)
    assert abs(mass - 1.0) < 0.02, mass


@pytest.mark.parametrize("dequantization", ["uniform", "variational"])
def test_image_flow_inverts_and_log_det_matches_autograd(dequantization):
    model = ImageFlow(image_shape=(1, 4, 4), n_levels=5, hidden=8, n_steps=2, dequantization=dequantization).double()
    v = 5 * torch.rand(3, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    model.train()
    model.loss(v.floor())
    _perturb(model, 0.05)
    model.mark_updated()
    z, log_det = model.transform(v)
    assert z.shape == (3, 16)
    assert torch.allclose(model.inverse(z), v, atol=1e-5, rtol=0)
    jac = torch.autograd.functional.jacobian(lambda a: model._forward(a.view(1, 1, 4, 4))[0][0], v[0].flatten())
    assert torch.allclose(torch.linalg.slogdet(jac)[1], log_det[0], atol=1e-8)
    bound = model.log_prob(v.floor(), n_samples=4, random_state=0)
    assert bound.shape == (3,) and torch.isfinite(bound).all()
    assert torch.equal(bound, model.log_prob(v.floor(), n_samples=4, random_state=0))
    samples = model.sample(5, random_state=0)
    assert samples.shape == (5, 1, 4, 4) and samples.min() >= 0 and samples.max() <= 4
    assert torch.equal(samples, samples.round())


def test_fresh_variational_dequantizer_is_uniform_noise():
    from genlab.flow import VariationalDequantizer

    dequantizer = VariationalDequantizer((1, 4, 4), hidden=8, n_layers=2).double()
    with torch.no_grad():
        u, log_q = dequantizer(torch.rand(500, 1, 4, 4, dtype=torch.float64), torch.Generator().manual_seed(0))
    assert torch.allclose(log_q, torch.zeros_like(log_q), atol=1e-9)
    assert 0 <= float(u.min()) and float(u.max()) <= 1 and abs(float(u.mean()) - 0.5) < 0.01


def test_dequantisation_bound_is_below_the_discrete_probability_in_one_dimension():
    """On a 1-pixel-per-dimension toy the bound E_u[log p(x+u)] never exceeds log P(x) = log ∫_bin p."""
    model = Flow2D(kind="coupling", n_layers=2, hidden=8).double()
    model.train()
    model.loss(torch.randn(16, 2, dtype=torch.float64))
    _perturb(model, 0.1)
    model.mark_updated()
    x = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    u = torch.rand(4000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    log_p = model.log_prob(x + u)
    bound = float(log_p.mean())
    exact = float(torch.logsumexp(log_p, 0) - math.log(len(u)))  # Monte Carlo log ∫_bin p
    assert bound <= exact + 1e-9


def test_image_flow_trains_with_both_dequantisations():
    torch.manual_seed(0)
    x = torch.randint(0, 3, (64, 1, 4, 4)).float()
    x[:, :, 0] = 0  # some structure to learn
    results = {}
    for dequantization in ("uniform", "variational"):
        torch.manual_seed(0)
        model = ImageFlow(image_shape=(1, 4, 4), n_levels=3, hidden=8, n_checkerboard=1, n_steps=1,
                          dequantization=dequantization)
        before = float(model.loss(x).detach())
        Trainer(model, lr=3e-3, batch_size=32, device="cpu", progress=False).fit(x, epochs=20)
        results[dequantization] = float(model.log_prob(x, n_samples=8, random_state=0).mean())
        assert -results[dequantization] < before
    # The bound is in nats per image on the discrete data: it can never beat log P(x) <= 0.
    assert all(value < 0 for value in results.values()), results


def test_coupling_split_errors():
    with pytest.raises(ValueError, match="channels"):
        channel_mask(3)
    with pytest.raises(ValueError, match="squeeze"):
        Squeeze()(torch.zeros(1, 1, 3, 4))
    with pytest.raises(ValueError, match="dim"):
        Flow2D(dim=1)
    with pytest.raises(ValueError, match="mask"):
        AffineCoupling(torch.ones(4))
    with pytest.raises(ValueError, match="context"):
        AffineCoupling(torch.tensor([1.0, 0.0]))(torch.zeros(1, 2), torch.zeros(1, 3))


def test_flow_sequential_adds_log_dets():
    layers = [InvertibleLinear(3, random_state=0), ActNorm(3), InvertibleLinear(3, random_state=1)]
    flow = FlowSequential(layers).double().eval()
    _perturb(flow)
    x = torch.randn(2, 3, dtype=torch.float64)
    z, total = flow(x)
    h, parts = x, torch.zeros(2, dtype=torch.float64)
    for layer in layers:
        h, log_det = layer(h)
        parts = parts + log_det
    assert torch.allclose(z, h) and torch.allclose(total, parts)


# ----------------------------------------------------------------------------- the chapter's implement-it exercise
def _solution():
    def forward(layer, x):
        s, t = layer.scale_shift(x * layer.mask)
        free = 1 - layer.mask
        return layer.mask * x + free * (x * torch.exp(s) + t), (free * s).flatten(1).sum(1)

    def inverse(layer, z):
        s, t = layer.scale_shift(z * layer.mask)
        free = 1 - layer.mask
        return layer.mask * z + free * (z - t) * torch.exp(-s)

    return forward, inverse


def _wrong_half():
    def forward(layer, x):
        s, t = layer.scale_shift(x * layer.mask)
        return (1 - layer.mask) * x + layer.mask * (x * torch.exp(s) + t), (layer.mask * s).flatten(1).sum(1)

    return forward, _solution()[1]


def _wrong_sign():
    forward, inverse = _solution()

    def flipped(layer, x):
        z, log_det = forward(layer, x)
        return z, -log_det

    return flipped, inverse


def _wrong_inverse():
    forward, _ = _solution()

    def inverse(layer, z):
        s, t = layer.scale_shift(z * layer.mask)
        free = 1 - layer.mask
        return layer.mask * z + free * (z * torch.exp(-s) - t)

    return forward, inverse


def _run_check(answer):
    return check("Exercise 10.3", answer, predicate=lambda a: check_coupling_answer(a) is None,
                 describe="an affine coupling that matches genlab.flow.AffineCoupling",
                 hint=check_coupling_answer(answer) if answer is not Ellipsis else None)


def test_coupling_exercise_check():
    with pytest.raises(NotAttempted):
        _run_check(...)
    for mistake, words in ((_wrong_half(), "half"), (_wrong_sign(), "sign"), (_wrong_inverse(), "exp(-s)")):
        with pytest.raises(ExerciseError, match="hint") as info:
            _run_check(mistake)
        assert words in str(info.value)
    assert _run_check(_solution())
    assert "pair" in check_coupling_answer(lambda x: x)
