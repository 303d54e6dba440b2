"""genlab.distributions: closed-form MLEs, agreement with scipy.stats fits, conjugate update, bad input."""
import math

import numpy as np
import pytest
import scipy.special
import scipy.stats as st
import torch
from exercise_checks import assert_check_is_helpful
from torch import distributions as D

from genlab.distributions import beta_bernoulli_update, fit_mle, heldout_log_likelihood

RNG = np.random.default_rng(0)


def test_normal_closed_form():
    x = RNG.normal(2.0, 3.0, size=(400, 3))
    dist = fit_mle("normal", x)
    assert isinstance(dist, D.Normal) and dist.batch_shape == (3,)
    np.testing.assert_allclose(dist.loc.numpy(), x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(dist.scale.numpy(), x.std(0), rtol=1e-12)   # divisor n, as the MLE
    loc, scale = st.norm.fit(x[:, 0])
    assert dist.loc[0].item() == pytest.approx(loc) and dist.scale[0].item() == pytest.approx(scale)


def test_bernoulli_binomial_categorical_closed_forms():
    bits = RNG.integers(0, 2, size=(300, 5))
    np.testing.assert_allclose(fit_mle("bernoulli", bits).probs.numpy(), bits.mean(0))
    smoothed = fit_mle("bernoulli", bits, pseudocount=1.0).probs.numpy()
    np.testing.assert_allclose(smoothed, (bits.sum(0) + 1) / (300 + 2))
    counts = RNG.binomial(10, 0.3, size=200)
    binomial = fit_mle("binomial", counts, total_count=10)
    assert isinstance(binomial, D.Binomial)
    assert binomial.probs.item() == pytest.approx(counts.mean() / 10)
    assert binomial.total_count.item() == 10
    levels = RNG.integers(0, 4, size=(250, 2))
    cat = fit_mle("categorical", levels, num_categories=6, pseudocount=0.5)
    assert cat.probs.shape == (2, 6)
    expected = (np.stack([(levels == k).sum(0) for k in range(6)], 1) + 0.5) / (250 + 6 * 0.5)
    np.testing.assert_allclose(cat.probs.numpy(), expected)
    assert fit_mle("categorical", levels).probs.shape == (2, 4)


@pytest.mark.parametrize("shape, rate", [(0.4, 2.0), (2.5, 3.0), (30.0, 0.5)])
def test_gamma_matches_scipy(shape, rate):
    x = RNG.gamma(shape, 1 / rate, size=600)
    dist = fit_mle("gamma", x)
    a, loc, scale = st.gamma.fit(x, floc=0)
    assert loc == 0
    assert dist.concentration.item() == pytest.approx(a, rel=1e-6)
    assert dist.rate.item() == pytest.approx(1 / scale, rel=1e-6)
    # Closed-form rate given the shape, and the score equation for the shape.
    a_hat = dist.concentration.item()
    assert dist.rate.item() == pytest.approx(a_hat / x.mean(), rel=1e-12)
    s = math.log(x.mean()) - np.log(x).mean()
    assert math.log(a_hat) - scipy.special.digamma(a_hat) == pytest.approx(s, abs=1e-9)


@pytest.mark.parametrize("a, b", [(0.5, 0.5), (0.7, 2.3), (8.0, 3.0)])
def test_beta_matches_scipy(a, b):
    x = RNG.beta(a, b, size=600)
    dist = fit_mle("beta", x)
    a_sp, b_sp, loc, scale = st.beta.fit(x, floc=0, fscale=1)
    assert dist.concentration1.item() == pytest.approx(a_sp, rel=1e-4)
    assert dist.concentration0.item() == pytest.approx(b_sp, rel=1e-4)
    # It is a maximum: no worse than scipy's optimum, and better than nudged parameters.
    ll = heldout_log_likelihood(dist, x)
    assert ll >= st.beta(a_sp, b_sp).logpdf(x).mean() - 1e-9
    for da, db in [(1.01, 1), (0.99, 1), (1, 1.01), (1, 0.99)]:
        nudged = D.Beta(dist.concentration1 * da, dist.concentration0 * db)
        assert heldout_log_likelihood(nudged, x) < ll


def test_batched_fits_equal_columnwise_fits():
    x = RNG.gamma(2.0, 1.0, size=(300, 4))
    batched = fit_mle("gamma", x)
    for j in range(4):
        single = fit_mle("gamma", x[:, j])
        assert batched.concentration[j].item() == pytest.approx(single.concentration.item(), rel=1e-10)
    u = RNG.beta(2.0, 5.0, size=(300, 3))
    beta = fit_mle("beta", u)
    assert beta.batch_shape == (3,)
    assert beta.concentration1[1].item() == pytest.approx(fit_mle("beta", u[:, 1]).concentration1.item(), rel=1e-8)


def test_beta_bernoulli_update():
    assert beta_bernoulli_update(1, 1, [1, 0, 1, 1]) == (4.0, 2.0)
    assert beta_bernoulli_update(2.5, 0.5, np.array([0, 0])) == (2.5, 2.5)
    assert beta_bernoulli_update(2.0, 3.0, []) == (2.0, 3.0)      # no data: the prior
    # Sequential updates equal one batch update (conjugacy).
    data = RNG.integers(0, 2, size=50)
    a, b = 1.0, 1.0
    for chunk in np.array_split(data, 5):
        a, b = beta_bernoulli_update(a, b, chunk)
    assert (a, b) == beta_bernoulli_update(1.0, 1.0, data)


def test_heldout_log_likelihood():
    dist = D.Normal(torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64))
    x = RNG.normal(size=(100, 2))
    expected = st.norm.logpdf(x).sum(1).mean()
    assert heldout_log_likelihood(dist, x) == pytest.approx(expected)
    mixture = D.MixtureSameFamily(D.Categorical(torch.tensor([0.25, 0.75], dtype=torch.float64)),
                                  D.Normal(torch.tensor([-1.0, 2.0], dtype=torch.float64),
                                           torch.tensor([0.5, 1.0], dtype=torch.float64)))
    y = RNG.normal(size=50)
    by_hand = np.log(0.25 * st.norm.pdf(y, -1, 0.5) + 0.75 * st.norm.pdf(y, 2, 1)).mean()
    assert heldout_log_likelihood(mixture, y) == pytest.approx(by_hand)


# ---------------------------------------------------------------------------- bad input
def test_unknown_family_and_empty_data():
    with pytest.raises(ValueError, match="unknown family"):
        fit_mle("poisson", [1, 2, 3])
    with pytest.raises(ValueError, match="at least 1 row"):
        fit_mle("normal", [])
    with pytest.raises(ValueError, match="NaN"):
        fit_mle("normal", [1.0, np.nan])
    with pytest.raises(ValueError, match="numeric"):
        fit_mle("normal", ["a", "b"])
    with pytest.raises(ValueError, match="scalar"):
        fit_mle("normal", 3.0)
    with pytest.raises(ValueError, match="could not be read"):
        fit_mle("normal", [[1.0, 2.0], [3.0]])


@pytest.mark.parametrize("family, data, kwargs, message", [
    ("bernoulli", [0, 1, 2], {}, "integers in 0..1"),
    ("bernoulli", [0, 0.5, 1], {}, "integers in 0..1"),
    ("binomial", [0, 3, 11], {"total_count": 10}, "integers in 0..10"),
    ("categorical", [0, -1, 2], {}, "integers in 0"),
    ("gamma", [1.0, 0.0, 2.0], {}, "> 0"),
    ("beta", [0.2, 1.0, 0.4], {}, "strictly between 0 and 1"),
])
def test_values_outside_support(family, data, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_mle(family, data, **kwargs)


def test_degenerate_data_and_bad_options():
    for family, data in [("normal", [2.0, 2.0]), ("gamma", [2.0, 2.0]), ("beta", [0.3, 0.3])]:
        with pytest.raises(ValueError, match="not all equal"):
            fit_mle(family, data)
    with pytest.raises(ValueError, match="at least 2 examples"):
        fit_mle("gamma", [1.5])
    with pytest.raises(ValueError, match="total_count"):
        fit_mle("binomial", [1, 2])
    with pytest.raises(ValueError, match="total_count applies"):
        fit_mle("bernoulli", [0, 1], total_count=3)
    with pytest.raises(ValueError, match="num_categories must be"):
        fit_mle("categorical", [0, 5], num_categories=3)
    with pytest.raises(ValueError, match="num_categories applies"):
        fit_mle("normal", [0.0, 1.0], num_categories=3)
    with pytest.raises(ValueError, match="pseudocount applies"):
        fit_mle("normal", [0.0, 1.0], pseudocount=1.0)
    with pytest.raises(ValueError, match="pseudocount must be"):
        fit_mle("bernoulli", [0, 1], pseudocount=-1.0)


def test_beta_bernoulli_update_rejects_bad_input():
    with pytest.raises(ValueError, match="prior_a must be > 0"):
        beta_bernoulli_update(0.0, 1.0, [1])
    with pytest.raises(ValueError, match="prior_b must be a finite"):
        beta_bernoulli_update(1.0, float("inf"), [1])
    with pytest.raises(ValueError, match="integers in 0..1"):
        beta_bernoulli_update(1.0, 1.0, [1, 2])
    with pytest.raises(ValueError, match="1-D"):
        beta_bernoulli_update(1.0, 1.0, [[1, 0]])


def test_heldout_rejects_bad_input():
    dist = fit_mle("bernoulli", [[0, 1], [1, 1]])
    with pytest.raises(ValueError, match="torch.distributions"):
        heldout_log_likelihood("normal", [[0, 1]])
    with pytest.raises(ValueError, match="at least 1 row"):
        heldout_log_likelihood(dist, np.zeros((0, 2)))
    with pytest.raises(ValueError, match="shape"):
        heldout_log_likelihood(dist, [[0, 1, 1]])
    with pytest.raises(ValueError, match="outside the support"):
        heldout_log_likelihood(dist, [[0, 2]])
    with pytest.raises(ValueError, match="NaN"):
        heldout_log_likelihood(dist, [[0, np.nan]])


# ---------------------------------------------------------------------------- the chapter's implement-it exercises


def _chapter02_namespace() -> dict:
    import math

    from genlab.exercises import check

    rng = np.random.default_rng(0)
    return {"area": torch.as_tensor(rng.gamma(3.0, 200.0, size=200)), "train_rows": torch.arange(150),
            "stream": torch.as_tensor((rng.random(300) < 0.3).astype(float)), "fit_mle": fit_mle,
            "beta_bernoulli_update": beta_bernoulli_update, "check": check, "torch": torch, "math": math}


def test_chapter02_normal_mle_check():
    # typical mistake: torch.std's default divides by n - 1
    assert_check_is_helpful("02_distributions", "Exercise 2.1", _chapter02_namespace(),
                             lambda x: (x.mean().item(), x.std().item()))


def test_chapter02_beta_bernoulli_check():
    # typical mistake: ones and zeros swapped
    def swapped(a, b, flips):
        flips = torch.as_tensor(flips, dtype=torch.float64)
        return a + len(flips) - flips.sum().item(), b + flips.sum().item()
    assert_check_is_helpful("02_distributions", "Exercise 2.3", _chapter02_namespace(), swapped)
