"""genlab.kde: parity with scikit-learn, chunking, sampling, bandwidth selection, input errors."""
import math

import numpy as np
import pytest
import torch
from exercise_checks import assert_check_is_helpful
from scipy import stats
from scipy.special import logsumexp
from sklearn.neighbors import KernelDensity as SkKernelDensity

from genlab.base import NotFittedError
from genlab.kde import KernelDensity, bandwidth_rule, log_kernel_norm, select_bandwidth
from genlab.validation import check_random_state

KERNELS = ("gaussian", "tophat", "epanechnikov")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3)) @ np.array([[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.0, -0.3, 0.7]])
    queries = rng.normal(size=(300, 3))
    weights = rng.uniform(0.1, 2.0, size=500)
    return X, queries, weights


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bandwidth", [0.3, 1.0, 2.5, "scott", "silverman"])
@pytest.mark.parametrize("weighted", [False, True])
def test_score_samples_matches_sklearn(data, kernel, bandwidth, weighted):
    X, queries, weights = data
    sw = weights if weighted else None
    ours = KernelDensity(bandwidth=bandwidth, kernel=kernel, device="cpu").fit(X, sample_weight=sw)
    ref = SkKernelDensity(bandwidth=bandwidth, kernel=kernel).fit(X, sample_weight=sw)
    assert ours.bandwidth_ == pytest.approx(ref.bandwidth_, rel=1e-15)
    got, expected = ours.score_samples(queries), ref.score_samples(queries)
    assert isinstance(got, np.ndarray)  # NumPy in, NumPy out
    # scikit-learn's tree (even with atol = rtol = 0) is only accurate where the kernel sum is not
    # tiny: far from the data it returns a floor near -34 instead of -inf (compact kernels) or a
    # wrong value (scikit-learn issues #7492, #25799). Compare where the exact density is not tiny,
    # and check that elsewhere scikit-learn also reports a negligible density.
    reliable = got > -20
    assert reliable.sum() >= 0.5 * len(queries)
    np.testing.assert_allclose(got[reliable], expected[reliable], rtol=0, atol=1e-6)
    assert np.all(expected[~np.isfinite(got)] < -30)


def test_one_dimensional_parity_and_brute_force_in_the_far_tail():
    # scikit-learn's tree loses accuracy when the kernel sum is tiny (far queries, small h);
    # the exact sum is checked there against a direct NumPy log-sum-exp instead.
    rng = np.random.default_rng(1)
    X, far = rng.normal(size=(200, 2)), rng.normal(size=(100, 2)) * 4.0
    kde = KernelDensity(bandwidth=0.2, device="cpu").fit(X)
    sq = ((far[:, None, :] - X[None]) ** 2).sum(-1)
    brute = logsumexp(-sq / (2 * 0.2**2), axis=1) - math.log(200) + log_kernel_norm(0.2, 2, "gaussian")
    np.testing.assert_allclose(kde.score_samples(far), brute, rtol=1e-12, atol=1e-9)
    x1 = rng.normal(size=(300, 1))
    for kernel in KERNELS:
        got = KernelDensity(bandwidth="silverman", kernel=kernel, device="cpu").fit(x1).score_samples(x1[:50])
        ref = SkKernelDensity(bandwidth="silverman", kernel=kernel).fit(x1).score_samples(x1[:50])
        np.testing.assert_allclose(got, ref, atol=1e-6)


def test_kernel_normalisation_integrates_to_one():
    grid = np.linspace(-3, 3, 200001)
    for kernel in KERNELS:
        kde = KernelDensity(bandwidth=0.7, kernel=kernel, device="cpu").fit(np.zeros((1, 1)))
        density = np.exp(kde.score_samples(grid[:, None]))
        assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-4)


def test_chunked_equals_unchunked(data):
    X, queries, weights = data
    whole = KernelDensity(bandwidth=0.8, chunk_size=len(queries), device="cpu").fit(X, weights).score_samples(queries)
    for chunk in (1, 7, 64):
        chunked = KernelDensity(bandwidth=0.8, chunk_size=chunk, device="cpu").fit(X, weights).score_samples(queries)
        np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-12)


def test_score_is_mean_and_accepts_tensors(data):
    X, queries, _ = data
    kde = KernelDensity(bandwidth=1.0, device="cpu").fit(torch.as_tensor(X, dtype=torch.float32))
    values = kde.score_samples(torch.as_tensor(queries))
    assert values.dtype == torch.float64 and values.shape == (len(queries),)
    assert kde.score(queries) == pytest.approx(float(values.mean()))


def _moment_check(samples: np.ndarray, expected_mean: np.ndarray, expected_cov: np.ndarray) -> None:
    """Sample mean and covariance within 5 standard errors estimated from the samples themselves."""
    n = len(samples)
    centred = samples - samples.mean(0)
    mean_se = samples.std(0, ddof=1) / math.sqrt(n)
    assert np.all(np.abs(samples.mean(0) - expected_mean) < 5 * mean_se), (samples.mean(0), expected_mean)
    products = centred[:, :, None] * centred[:, None, :]
    cov_se = products.std(0, ddof=1) / math.sqrt(n)
    assert np.all(np.abs(products.mean(0) - expected_cov) < 5 * cov_se + 1e-12), (products.mean(0), expected_cov)


@pytest.mark.parametrize("kernel, spread", [("gaussian", 1.0), ("tophat", 1 / 5), ("epanechnikov", 1 / 7)])
def test_sample_moments(kernel, spread):
    # A KDE sample is a training point plus kernel noise: mean = weighted data mean,
    # covariance = weighted data covariance + c h^2 I with c = 1, 1/(d+2), 1/(d+4) for d = 3.
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 3)) * np.array([1.0, 2.0, 0.5])
    weights = rng.uniform(0.5, 1.5, size=50)
    h = 0.8
    kde = KernelDensity(bandwidth=h, kernel=kernel, device="cpu").fit(X, sample_weight=weights)
    samples, index = kde.sample(40000, random_state=0, return_indices=True)
    p = weights / weights.sum()
    mean = p @ X
    cov = (X - mean).T @ ((X - mean) * p[:, None]) + spread * h**2 * np.eye(3)
    _moment_check(samples, mean, cov)
    assert index.min() >= 0 and index.max() < 50
    np.testing.assert_array_equal(kde.sample(5, random_state=3)[0], kde.sample(5, random_state=3)[0])
    assert kde.sample(2)[1] is None  # a KDE has no labels


@pytest.mark.parametrize("kernel, cdf", [
    ("tophat", lambda u: np.clip((u + 1) / 2, 0, 1)),
    ("epanechnikov", lambda u: np.clip(0.5 + 0.75 * u - 0.25 * u**3, 0, 1)),
])
def test_compact_kernel_samples_have_the_kernel_shape(kernel, cdf):
    # One training point at 0 and h = 1: the samples are draws from the kernel itself (KS test, 1-D);
    # in 3-D the squared radius of an Epanechnikov draw is Beta(3/2, 2), of a tophat draw Beta(3/2, 1).
    one_d = KernelDensity(bandwidth=1.0, kernel=kernel, device="cpu").fit(np.zeros((1, 1)))
    draws = one_d.sample(5000, random_state=1)[0][:, 0]
    assert stats.kstest(draws, cdf).pvalue > 1e-3
    three_d = KernelDensity(bandwidth=1.0, kernel=kernel, device="cpu").fit(np.zeros((1, 3)))
    r2 = (three_d.sample(5000, random_state=2)[0] ** 2).sum(1)
    b = 2.0 if kernel == "epanechnikov" else 1.0
    assert stats.kstest(r2, stats.beta(1.5, b).cdf).pvalue > 1e-3


def test_bandwidth_rules_match_sklearn_definitions():
    assert bandwidth_rule("scott", 1000, 2) == pytest.approx(1000 ** (-1 / 6))
    assert bandwidth_rule("silverman", 1000, 2) == pytest.approx((1000 * 4 / 4) ** (-1 / 6))
    with pytest.raises(ValueError, match="unknown rule"):
        bandwidth_rule("normal", 10, 1)
    with pytest.raises(ValueError, match="n_samples"):
        bandwidth_rule("scott", 0, 1)


def test_cross_validation_picks_a_sensible_bandwidth():
    # Data from N(0, 1) in 1-D: the asymptotically optimal Gaussian-kernel bandwidth is
    # Silverman's (4/3)^(1/5) n^(-1/5) = 1.06 n^(-1/5); CV must land within a factor 2 of it.
    rng = np.random.default_rng(3)
    X = rng.normal(size=(1000, 1))
    grid = np.geomspace(0.02, 3.0, 40)
    best, table = select_bandwidth(X, grid, cv=5, random_state=0, device="cpu")
    silverman = KernelDensity(bandwidth="silverman").fit(X).bandwidth_
    assert silverman / 2 < best < 2 * silverman, (best, silverman)
    assert table["mean_loglik"].shape == (40,) and table["fold_loglik"].shape == (5, 40)
    assert best == table["bandwidth"][np.argmax(table["mean_loglik"])]
    # the CV curve is the average of the per-fold held-out scores (weighted by fold sizes, equal here)
    np.testing.assert_allclose(table["fold_loglik"].mean(0), table["mean_loglik"], rtol=1e-12)


def test_cross_validation_matches_a_manual_fold():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 2))
    _, table = select_bandwidth(X, [0.5], cv=3, random_state=7, device="cpu")
    order = torch.randperm(60, generator=check_random_state(7)).numpy()
    folds = np.array_split(order, 3)
    manual = [KernelDensity(bandwidth=0.5, device="cpu").fit(X[np.concatenate([folds[j] for j in range(3) if j != k])])
              .score(X[folds[k]]) for k in range(3)]
    np.testing.assert_allclose(table["fold_loglik"][:, 0], manual, rtol=1e-12)


# ----------------------------------------------------------------------------- input errors
@pytest.mark.parametrize("bandwidth", [0.0, -1.0, float("nan"), float("inf"), "wide", True, None])
def test_bad_bandwidth(bandwidth):
    kde = KernelDensity(bandwidth=bandwidth)   # stored unchanged, checked at fit
    assert kde.bandwidth is bandwidth
    with pytest.raises((ValueError, TypeError), match="bandwidth"):
        kde.fit(np.zeros((3, 1)))


def test_bad_constructor_arguments_fail_at_fit():
    X = np.zeros((3, 1))
    with pytest.raises(ValueError, match="unknown kernel"):
        KernelDensity(kernel="cosine").fit(X)
    with pytest.raises(ValueError, match="chunk_size"):
        KernelDensity(chunk_size=0).fit(X)
    with pytest.raises(ValueError, match="dtype"):
        KernelDensity(dtype=torch.int64).fit(X)


def test_bad_fit_inputs():
    kde = KernelDensity(device="cpu")
    with pytest.raises(ValueError, match="NaN"):
        kde.fit(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="at least 1 row"):
        kde.fit(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="numeric"):
        kde.fit(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="sample_weight has 2 entries"):
        kde.fit(np.zeros((3, 1)), sample_weight=[1.0, 1.0])
    with pytest.raises(ValueError, match="non-negative"):
        kde.fit(np.zeros((2, 1)), sample_weight=[1.0, -1.0])
    with pytest.raises(ValueError, match="all weights are zero"):
        kde.fit(np.zeros((2, 1)), sample_weight=[0.0, 0.0])


def test_unfitted_and_dimension_mismatch():
    kde = KernelDensity(device="cpu")
    for call in (lambda: kde.score_samples(np.zeros((2, 2))), lambda: kde.score(np.zeros((2, 2))),
                 lambda: kde.sample(3)):
        with pytest.raises(NotFittedError, match="not fitted"):
            call()
    kde.fit(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="features"):
        kde.score_samples(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        kde.score_samples(np.array([[np.inf, 0.0]]))
    with pytest.raises(ValueError, match="n_samples"):
        kde.sample(0)
    with pytest.raises(ValueError, match="random_state"):
        kde.sample(2, random_state=-1)


def test_bad_select_bandwidth_inputs():
    X = np.random.default_rng(0).normal(size=(20, 1))
    with pytest.raises(ValueError, match="non-empty"):
        select_bandwidth(X, [])
    with pytest.raises(ValueError, match="bandwidth"):
        select_bandwidth(X, [0.5, -0.1])
    with pytest.raises(ValueError, match="cv"):
        select_bandwidth(X, [0.5], cv=1)
    with pytest.raises(ValueError, match="cv=30 folds"):
        select_bandwidth(X, [0.5], cv=30)
    with pytest.raises(ValueError, match="unknown kernel"):
        select_bandwidth(X, [0.5], kernel="box")
    with pytest.raises(ValueError, match="NaN"):
        select_bandwidth(np.full((5, 1), np.nan), [0.5])


def test_log_kernel_norm_rejects_unknown_kernel():
    with pytest.raises(ValueError, match="unknown kernel"):
        log_kernel_norm(1.0, 2, "box")


@pytest.mark.parametrize("kernel", KERNELS)
def test_zero_weight_is_the_same_as_dropping_the_point(kernel):
    # a far query whose nearest training point has weight 0: the shift in the Gaussian fast path
    # must use the nearest point that counts
    X = np.array([[0.0], [1.0], [10.0]])
    query = np.array([[12.0], [0.5]])
    weighted = KernelDensity(bandwidth=3.0, kernel=kernel, device="cpu").fit(X, sample_weight=[1.0, 2.0, 0.0])
    dropped = KernelDensity(bandwidth=3.0, kernel=kernel, device="cpu").fit(X[:2], sample_weight=[1.0, 2.0])
    torch.testing.assert_close(weighted.score_samples(query), dropped.score_samples(query), rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------- the chapter's implement-it exercises


def _chapter05_namespace() -> dict:
    from genlab.exercises import check

    return {"x_train_1d": np.random.default_rng(0).normal(size=(300, 1)), "KernelDensity": KernelDensity,
            "select_bandwidth": select_bandwidth, "device": "cpu", "torch": torch, "math": math, "check": check}


def test_chapter05_kde_logpdf_check():
    def log_of_sum(queries, data, h):                   # typical mistake: log(sum(exp)) underflows far out
        kernels = torch.exp(-0.5 * ((queries[:, None] - data[None]) / h) ** 2) / (h * math.sqrt(2 * math.pi))
        return torch.log(kernels.mean(1))
    assert_check_is_helpful("05_nonparametric", "Exercise 5.2", _chapter05_namespace(), log_of_sum, "answer_5_2")


def test_chapter05_leave_one_out_check():
    def keeps_itself(data, h):                          # typical mistake: x_i stays in its own KDE
        log_kernels = -0.5 * ((data[:, None] - data[None]) / h) ** 2 - 0.5 * math.log(2 * math.pi) - math.log(h)
        return (torch.logsumexp(log_kernels, 1) - math.log(len(data))).mean().item()
    assert_check_is_helpful("05_nonparametric", "Exercise 5.5", _chapter05_namespace(), keeps_itself, "answer_5_5")
