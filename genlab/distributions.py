"""Maximum-likelihood fits and a conjugate update on top of :mod:`torch.distributions`.

* :func:`fit_mle` fits ``"normal"``, ``"bernoulli"``, ``"binomial"`` (known
  number of trials), ``"categorical"``, ``"gamma"`` or ``"beta"`` to data and
  returns a ready :class:`torch.distributions.Distribution` (float64).
  Rows of ``data`` are examples; any further dimensions are independent
  components (e.g. the 64 pixels of an 8x8 image), each with its own parameters.
* :func:`beta_bernoulli_update`: the Beta prior's posterior after coin flips.
* :func:`heldout_log_likelihood`: mean log-likelihood per example (nats) of new data.

Normal, Bernoulli, Binomial and Categorical MLEs are closed forms. The Gamma
rate is closed form given the shape, and the shape solves
``log a - digamma(a) = log(mean x) - mean(log x)`` by Newton's method. The Beta
MLE maximises a concave log-likelihood by Newton's method from the
method-of-moments estimate.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import distributions as D

from .validation import as_float_tensor, check_float, check_int, check_option

FAMILIES = ("normal", "bernoulli", "binomial", "categorical", "gamma", "beta")
#: Most categories a categorical fit accepts: beyond it the probability table alone would take
#: gigabytes (``fit_mle("categorical", [0, 10**9])`` means a billion-entry table), almost always a
#: sign that the data are not category codes.
MAX_CATEGORIES = 1_000_000

NEWTON_MAX_ITER = 100
NEWTON_TOL = 1e-12


def _as_data(data: Any, name: str = "data", allow_empty: bool = False) -> torch.Tensor:
    """Numeric, finite float64 tensor with examples along the first axis (any number of axes >= 1)."""
    try:
        ndim = data.ndim if isinstance(data, torch.Tensor) else np.ndim(data)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{name} could not be read as an array: {err}") from err
    if ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (examples along axis 0), got a scalar")
    return as_float_tensor(data, name=name, ndim=ndim, min_rows=0 if allow_empty else 1)


def _check_integers(x: torch.Tensor, low: float, high: float | None, what: str) -> None:
    if not torch.equal(x, x.round()) or (x < low).any() or (high is not None and (x > high).any()):
        upper = "" if high is None else f"..{high:g}"
        raise ValueError(f"{what} data must be integers in {low:g}{upper}; "
                         f"got values in [{x.min().item():g}, {x.max().item():g}]")


def _finite_parameters(dist: D.Distribution, family: str) -> D.Distribution:
    """Refuse a fit whose parameters overflowed (data of huge magnitude) instead of returning inf/NaN."""
    for value in dist.__dict__.values():
        if isinstance(value, torch.Tensor) and not torch.isfinite(value).all():
            raise ValueError(f"the {family} MLE of this data overflows float64 (non-finite parameters); "
                             "the data values are too large in magnitude: rescale the data")
    return dist


def _newton(step_fn, init: torch.Tensor) -> torch.Tensor:
    """Iterate ``x <- x - step`` (halving a step that would leave x > 0) until the steps vanish."""
    x = init
    for _ in range(NEWTON_MAX_ITER):
        step = step_fn(x)
        new = x - step
        # Parameters are positive: halve any step that would cross zero.
        while (new <= 0).any():
            step = torch.where(new <= 0, step / 2, step)
            new = x - step
        x = new
        if (step.abs() <= NEWTON_TOL * x.abs()).all():
            break
    return x


def _fit_gamma(x: torch.Tensor) -> D.Gamma:
    mean = x.mean(0)
    s = mean.log() - x.log().mean(0)          # > 0 by Jensen unless all values are equal
    if (s <= 1e-14).any():
        raise ValueError("gamma MLE needs data that are not all equal (the shape would be infinite)")
    # Minka's closed-form approximation as the starting point.
    shape0 = (3 - s + ((s - 3) ** 2 + 24 * s).sqrt()) / (12 * s)

    def step(a: torch.Tensor) -> torch.Tensor:
        f = a.log() - torch.digamma(a) - s
        return f / (1 / a - torch.polygamma(1, a))

    shape = _newton(step, shape0)
    return D.Gamma(concentration=shape, rate=shape / mean)


def _fit_beta(x: torch.Tensor) -> D.Beta:
    mean, var = x.mean(0), x.var(0, unbiased=False)
    if (var <= 0).any():
        raise ValueError("beta MLE needs data that are not all equal (the parameters would be infinite)")
    common = (mean * (1 - mean) / var - 1).clamp_min(1e-3)   # method of moments a + b
    start = torch.stack([mean * common, (1 - mean) * common], dim=-1)
    mean_log = torch.stack([x.log().mean(0), torch.log1p(-x).mean(0)], dim=-1)

    def step(ab: torch.Tensor) -> torch.Tensor:
        # The log-likelihood is concave in (a, b): Newton on its gradient.
        total = ab.sum(-1, keepdim=True)
        grad = torch.digamma(total) - torch.digamma(ab) + mean_log
        tri_total = torch.polygamma(1, total)[..., 0]
        tri = torch.polygamma(1, ab)
        hessian = torch.stack([torch.stack([tri_total - tri[..., 0], tri_total], -1),
                               torch.stack([tri_total, tri_total - tri[..., 1]], -1)], -2)
        return torch.linalg.solve(hessian, grad.unsqueeze(-1)).squeeze(-1)

    ab = _newton(step, start)
    return D.Beta(ab[..., 0], ab[..., 1])


def fit_mle(family: str, data: Any, *, total_count: int | None = None, num_categories: int | None = None,
            pseudocount: float = 0.0) -> D.Distribution:
    """Fit a distribution by maximum likelihood.

    Args:
        family: one of ``FAMILIES``.
        data: examples along axis 0; further axes are independent components,
            each fitted separately (the result has that batch shape).
        total_count: number of trials ``n`` of a ``"binomial"`` (required, known).
        num_categories: number of levels ``K`` of a ``"categorical"`` (values
            ``0..K-1``; default: the largest value seen + 1).
        pseudocount: for ``"bernoulli"`` and ``"categorical"`` only, add this
            count to every outcome (Laplace smoothing; ``0`` is the plain MLE).
            It is the posterior mean under a symmetric Beta/Dirichlet prior.

    Returns:
        A float64 ``torch.distributions`` object: ``Normal``, ``Bernoulli``,
        ``Binomial``, ``Categorical``, ``Gamma`` or ``Beta``.

    Raises:
        ValueError: unknown family, empty data, NaN/inf, values outside the
            family's support, a missing ``total_count``, or data whose MLE
            does not exist (all values equal for normal/gamma/beta).
    """
    check_option(family, "family", FAMILIES)
    x = _as_data(data)
    pseudocount = check_float(pseudocount, "pseudocount", low=0.0)
    if pseudocount > 0 and family not in ("bernoulli", "categorical"):
        raise ValueError(f"pseudocount applies to 'bernoulli' and 'categorical' only, not {family!r}")
    if total_count is not None and family != "binomial":
        raise ValueError(f"total_count applies to 'binomial' only, not {family!r}")
    if num_categories is not None and family != "categorical":
        raise ValueError(f"num_categories applies to 'categorical' only, not {family!r}")
    n = x.shape[0]
    if family == "normal":
        # the MLE divides by n, not n - 1; scaling by the largest magnitude first keeps the squares
        # finite for any data the validation layer accepts
        magnitude = x.abs().amax(0).clamp_min(torch.finfo(x.dtype).tiny)
        scale = (x / magnitude).std(0, unbiased=False) * magnitude
        if (scale <= 0).any():
            raise ValueError("normal MLE needs data that are not all equal (the scale would be 0)")
        return _finite_parameters(D.Normal(x.mean(0), scale), family)
    if family == "bernoulli":
        _check_integers(x, 0, 1, "bernoulli")
        return D.Bernoulli(probs=(x.sum(0) + pseudocount) / (n + 2 * pseudocount))
    if family == "binomial":
        if total_count is None:
            raise ValueError("binomial needs the known number of trials: pass total_count >= 1")
        total_count = check_int(total_count, "total_count", minimum=1)
        _check_integers(x, 0, total_count, "binomial")
        return D.Binomial(total_count=int(total_count), probs=x.mean(0) / total_count)
    if family == "categorical":
        _check_integers(x, 0, None, "categorical")
        seen = int(x.max().item()) + 1
        if num_categories is None:
            if seen > MAX_CATEGORIES:
                raise ValueError(f"categorical data has values up to {seen - 1}, which would mean {seen} "
                                 f"categories (more than MAX_CATEGORIES={MAX_CATEGORIES}); categorical data "
                                 "must be codes 0..K-1: recode the values")
            num_categories = seen
        else:
            num_categories = check_int(num_categories, "num_categories", minimum=seen, maximum=MAX_CATEGORIES)
        # Counts per category and component without a one-hot tensor of n x K entries.
        flat = x.long().reshape(n, -1)
        counts = torch.zeros(num_categories, flat.shape[1], dtype=torch.float64)
        counts.scatter_add_(0, flat, torch.ones_like(flat, dtype=torch.float64))
        counts = counts.T.reshape(*x.shape[1:], num_categories)
        return D.Categorical(probs=(counts + pseudocount) / (n + num_categories * pseudocount))
    if n < 2:
        raise ValueError(f"{family} MLE needs at least 2 examples, got {n}")
    if family == "gamma":
        if (x <= 0).any():
            raise ValueError(f"gamma data must be > 0; got a minimum of {x.min().item():g}")
        return _finite_parameters(_fit_gamma(x), family)
    if ((x <= 0) | (x >= 1)).any():
        raise ValueError(f"beta data must lie strictly between 0 and 1; got values in "
                         f"[{x.min().item():g}, {x.max().item():g}]")
    return _finite_parameters(_fit_beta(x), family)


def beta_bernoulli_update(prior_a: float, prior_b: float, data: Any) -> tuple[float, float]:
    """Posterior ``Beta(a + #ones, b + #zeros)`` of a Bernoulli probability after observing ``data``.

    ``data`` is a 1-D sequence of 0/1 outcomes; an empty sequence returns the
    prior unchanged (no evidence, no update).

    Raises:
        ValueError: non-positive or non-finite prior parameters, data that is
            not 1-D, or values other than 0 and 1.
    """
    prior_a = check_float(prior_a, "prior_a", low=0.0, low_inclusive=False)
    prior_b = check_float(prior_b, "prior_b", low=0.0, low_inclusive=False)
    x = _as_data(data, allow_empty=True)
    if x.ndim != 1:
        raise ValueError(f"data must be a 1-D sequence of 0/1 outcomes, got shape {tuple(x.shape)}")
    if len(x):
        _check_integers(x, 0, 1, "bernoulli")
    ones = float(x.sum())
    return prior_a + ones, prior_b + len(x) - ones


def heldout_log_likelihood(dist: D.Distribution, data: Any) -> float:
    """Mean log-likelihood per example (nats) of ``data`` under ``dist``.

    Each row of ``data`` is one example; the log-probabilities of its
    components (the batch and event dimensions of ``dist``) are summed, so a
    fit of independent pixels gives nats per image.

    Raises:
        ValueError: ``dist`` is not a distribution, ``data`` is empty, has NaN,
            a shape that does not match ``dist``, or values outside its support.
    """
    if not isinstance(dist, D.Distribution):
        raise ValueError(f"dist must be a torch.distributions.Distribution, got {type(dist).__name__}")
    x = _as_data(data)
    try:  # the mean carries the distribution's dtype and device (MixtureSameFamily included)
        reference = dist.mean
    except NotImplementedError:
        reference = torch.zeros((), dtype=torch.float64)
    x = x.to(dtype=reference.dtype, device=reference.device)
    expected = tuple(dist.batch_shape) + tuple(dist.event_shape)
    if tuple(x.shape[1:]) != expected:
        raise ValueError(f"each example must have shape {expected} (batch + event shape of the "
                         f"distribution), got data of shape {tuple(x.shape)}")
    if not bool(dist.support.check(x).all()):
        raise ValueError(f"data has values outside the support of {type(dist).__name__} "
                         f"({dist.support}); got values in [{x.min().item():g}, {x.max().item():g}]")
    log_prob = dist.log_prob(x)
    return float(log_prob.reshape(x.shape[0], -1).sum(1).mean())
