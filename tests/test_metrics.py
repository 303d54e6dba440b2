"""Tests of genlab.metrics: closed forms, parity with SciPy, known cases, the cache, bad inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from genlab import metrics as M


def _random_cov(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, 2 * d))
    return a @ a.T / (2 * d) + 0.1 * np.eye(d)


# ----------------------------------------------------------------------------- FID
def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    for d in (1, 5, 32):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = _random_cov(rng, d), _random_cov(rng, d)
        direct = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real)
        assert M.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(direct, rel=1e-8, abs=1e-10)


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(1)
    d = 6
    mu1, mu2, cov = rng.normal(size=d), rng.normal(size=d), _random_cov(rng, d)
    # equal covariances: only the means differ
    assert M.frechet_distance(mu1, cov, mu2, cov) == pytest.approx(np.sum((mu1 - mu2) ** 2), rel=1e-9)
    # diagonal covariances: sum of squared differences of the standard deviations
    a, b = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert M.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-9)


def test_fid_of_a_set_with_itself_is_zero_and_matches_numpy_statistics():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 8))
    y = rng.normal(size=(200, 8)) * 1.5 + 0.3
    assert M.fid(x, x) == pytest.approx(0.0, abs=1e-8)
    expected = M.frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert M.fid(x, y) == pytest.approx(expected, rel=1e-10)
    # large samples from two known Gaussians approach the closed form (sampling error ~ 1/sqrt(n))
    big_x = rng.normal(size=(20000, 3))
    big_y = rng.normal(size=(20000, 3)) * 2.0 + 1.0
    assert M.fid(big_x, big_y) == pytest.approx(3 * 1.0 + 3 * (1 - math.sqrt(4)) ** 2, rel=0.05)


def test_custom_extractor_module_is_used_through_features_or_forward():
    rng = np.random.default_rng(3)
    images = torch.as_tensor(rng.uniform(size=(120, 1, 3, 3)))
    fakes = torch.as_tensor(rng.uniform(size=(100, 1, 3, 3)) * 0.8)
    flat = nn.Flatten()
    assert M.fid(images, fakes, extractor=flat) == pytest.approx(
        M.fid(images.reshape(120, -1), fakes.reshape(100, -1)), rel=1e-6)
    assert M.fid(images, fakes, extractor=lambda x: x.mean((1, 2, 3))[:, None]) >= 0


# ----------------------------------------------------------------------------- KID
def test_kid_is_unbiased_for_equal_distributions_and_positive_for_shifted_ones():
    rng = np.random.default_rng(4)
    m, d, repeats = 40, 4, 300
    same = [M.kid(rng.normal(size=(m, d)), rng.normal(size=(m, d)), n_subsets=1, subset_size=m, normalize=False).mean
            for _ in range(repeats)]
    standard_error = np.std(same, ddof=1) / math.sqrt(repeats)
    # Independent pairs: the mean of an unbiased estimator lies within a few standard errors of 0.
    assert abs(np.mean(same)) < 4 * standard_error, (np.mean(same), standard_error)
    # The biased (V-statistic) version, keeping the diagonal, is clearly positive on the same data:
    # this is what the test above would catch.
    x, y = torch.as_tensor(rng.normal(size=(m, d))), torch.as_tensor(rng.normal(size=(m, d)))
    biased = ((x @ x.T / d + 1) ** 3).mean() + ((y @ y.T / d + 1) ** 3).mean() - 2 * ((x @ y.T / d + 1) ** 3).mean()
    assert float(biased) > float(M.polynomial_mmd2(x, y)) + 10 * standard_error
    shifted = M.kid(rng.normal(size=(400, d)), rng.normal(size=(400, d)) + 0.5, n_subsets=50, subset_size=100, seed=0)
    assert shifted.mean > 3 * shifted.std, shifted


def test_kid_is_seeded():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(100, 3)), rng.normal(size=(100, 3))
    assert M.kid(x, y, n_subsets=5, seed=7) == M.kid(x, y, n_subsets=5, seed=7)


# ----------------------------------------------------------------------------- classifier score
def test_inception_score_extremes():
    confident_balanced = np.eye(10)[np.arange(200) % 10]
    assert M.inception_score(confident_balanced, splits=2).mean == pytest.approx(10.0, rel=1e-6)
    assert M.inception_score(np.full((200, 10), 0.1), splits=2).mean == pytest.approx(1.0, rel=1e-9)
    one_class = np.eye(10)[np.zeros(200, dtype=int)]
    assert M.inception_score(one_class, splits=2).mean == pytest.approx(1.0, rel=1e-6)


# ----------------------------------------------------------------------------- precision / recall
def test_precision_recall_identical_disjoint_and_mode_dropping():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(400, 2))
    assert M.precision_recall(x, x, k=3) == (1.0, 1.0)
    far = rng.normal(size=(400, 2)) + 50.0
    assert M.precision_recall(x, far, k=3) == (0.0, 0.0)
    # two modes in the real data; the fake set has only one of them
    real = np.concatenate([rng.normal(size=(300, 2)) - 6, rng.normal(size=(300, 2)) + 6])
    dropped = rng.normal(size=(600, 2)) + 6
    precision, recall = M.precision_recall(real, dropped, k=3)
    assert precision > 0.9 and recall < 0.6, (precision, recall)


# ----------------------------------------------------------------------------- density / coverage
def test_density_coverage_hand_computed_case():
    real = np.arange(5.0)[:, None]  # 0, 1, 2, 3, 4: with k = 1 every ball has radius 1
    fake = np.array([[0.5]])  # inside the balls of 0 and 1 only
    density, coverage = M.density_coverage(real, fake, k=1)
    assert density == pytest.approx(2.0)  # 2 balls / (k * 1 fake)
    assert coverage == pytest.approx(2 / 5)
    density, coverage = M.density_coverage(real, np.array([[10.0]]), k=1)
    assert (density, coverage) == (0.0, 0.0)


def test_density_coverage_same_distribution():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2000, 2))
    assert M.density_coverage(x, x, k=5).coverage == 1.0
    density, coverage = M.density_coverage(x, rng.normal(size=(2000, 2)), k=5)
    # E[density] = 1 for equal distributions; coverage = 1 - (1/2)^k asymptotically (Naeem et al.)
    assert abs(density - 1) < 0.1, density
    assert abs(coverage - (1 - 0.5 ** 5)) < 0.03, coverage


# ----------------------------------------------------------------------------- C2ST
def test_c2st_same_distribution_is_chance_and_separated_is_perfect():
    rng = np.random.default_rng(8)
    same = M.c2st(rng.normal(size=(600, 5)), rng.normal(size=(600, 5)), seed=0)
    tolerance = 3 * math.sqrt(0.25 / same.n_test)  # binomial standard deviation of a coin flip
    assert abs(same.accuracy - 0.5) < tolerance, same
    separated = M.c2st(rng.normal(size=(600, 5)), rng.normal(size=(600, 5)) + 4.0, seed=0)
    assert separated.accuracy > 0.97 and separated.p_value < 1e-10, separated
    mlp = M.c2st(rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 3.0, seed=0, classifier="mlp")
    assert mlp.accuracy > 0.9, mlp


# ----------------------------------------------------------------------------- memorisation
def test_memorization_flags_copies_and_not_fresh_data():
    rng = np.random.default_rng(9)
    train, test, fresh = (rng.normal(size=(n, 16)) for n in (800, 400, 400))
    copies = M.memorization(train[:300], train, test)
    assert copies.copy_fraction == 1.0 and np.all(copies.ratios < 1e-9)
    assert copies.z_score < -10
    assert np.array_equal(copies.nearest_train, np.arange(300))
    new = M.memorization(fresh, train, test, quantile=0.01)
    # fresh data is flagged at the rule's rate (1%) up to binomial noise
    assert new.copy_fraction <= 0.01 + 3 * math.sqrt(0.01 * 0.99 / 400), new.copy_fraction
    assert 0.8 < np.median(new.ratios) < 1.2 and abs(new.z_score) < 4
    # slightly perturbed copies are still closer to the training set than any fresh point
    near = M.memorization(train[:100] + 0.01 * rng.normal(size=(100, 16)), train, test)
    assert near.copy_fraction == 1.0


def test_copy_rate_test_separates_noise_from_excess_copying():
    # 10 of 447 against 4 of 223 is the same rate up to noise; 48 of 447 is not
    assert M.copy_rate_test(10, 447, 4, 223) > 0.3
    assert M.copy_rate_test(48, 447, 4, 223) < 1e-3
    # one-sided: copying *less* than fresh data is never evidence of copying
    assert M.copy_rate_test(0, 447, 4, 223) == pytest.approx(1.0)
    # agrees with the hypergeometric tail it is: P(X >= 3) drawing 5 of 10 with 3 flagged in all
    assert M.copy_rate_test(3, 5, 0, 5) == pytest.approx(math.comb(3, 3) * math.comb(7, 2) / math.comb(10, 5))


def test_real_floor_reports_how_many_images_its_copy_rate_counts():
    rng = np.random.default_rng(3)
    train, test = rng.uniform(size=(300, 1, 4, 4)), rng.uniform(size=(101, 1, 4, 4))
    floor = M.real_floor(train, test, torch.nn.Flatten(), kid_subsets=5)
    assert floor["copy_n"] == 50  # half of the test images play the samples
    copies = floor["copy_fraction"] * floor["copy_n"]
    assert copies == pytest.approx(round(copies))
    assert M.copy_rate_test(round(copies), floor["copy_n"], round(copies), floor["copy_n"]) > 0.5
    assert "copy_n" not in M.real_floor(train.reshape(300, -1), test.reshape(101, -1), kid_subsets=5)


# ----------------------------------------------------------------------------- likelihood units
def test_bits_per_dim_conversions():
    nats = 64 * math.log(17)  # uniform over 17 levels, 64 pixels
    assert M.nats_to_bits_per_dim(nats, 64) == pytest.approx(math.log2(17))
    assert M.bits_per_dim_to_nats(M.nats_to_bits_per_dim(123.4, 64), 64) == pytest.approx(123.4)
    # a continuous density on [0, 1]-scaled 8-bit data: uniform has NLL 0 nats, i.e. 8 bits/dim
    assert M.nats_to_bits_per_dim(0.0, 784, bin_width=1 / 256) == pytest.approx(8.0)
    assert M.bits_per_dim_to_nats(8.0, 784, bin_width=1 / 256) == pytest.approx(0.0, abs=1e-9)
    assert np.allclose(M.nats_to_bits_per_dim(np.array([nats, 0.0]), 64), [math.log2(17), 0.0])


# ----------------------------------------------------------------------------- the classifier
def test_classifier_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path))
    first = M.get_feature_extractor("digits", device="cpu", epochs=1)
    path = M.classifier_cache_path("digits", epochs=1)
    assert path.parent == tmp_path and path.is_file()
    assert 0.0 <= first.test_accuracy <= 1.0
    images = torch.arange(2 * 64, dtype=torch.float32).reshape(2, 1, 8, 8) % 17

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been loaded, not retrained")

    M.features._EXTRACTORS.clear()
    monkeypatch.setattr(M.features, "train_classifier", no_training)
    second = M.get_feature_extractor("digits", device="cpu", epochs=1)
    assert second is not first
    assert second.test_accuracy == first.test_accuracy
    assert torch.equal(second.features(images), first.features(images))
    # another seed is another cache entry
    assert M.classifier_cache_path("digits", epochs=1, seed=1) != path


def test_random_shift_moves_whole_images():
    torch.manual_seed(0)
    images = torch.zeros(50, 1, 8, 8)
    images[:, :, 3:5, 3:5] = 1.0  # a blob away from the border survives any one-pixel shift
    shifted = M.random_shift(images, 1)
    assert torch.equal(shifted.sum((1, 2, 3)), images.sum((1, 2, 3)))
    assert not torch.equal(shifted, images)


# ----------------------------------------------------------------------------- bad inputs
def test_mismatched_feature_dimensions():
    x, y = np.zeros((50, 4)), np.zeros((50, 3))
    for metric in (M.fid, M.kid, M.precision_recall, M.density_coverage, M.c2st):
        with pytest.raises(ValueError, match="4 dimensions but fake features have 3"):
            metric(x, y)
    with pytest.raises(ValueError, match="same dimension"):
        M.memorization(np.zeros((5, 4)), np.zeros((5, 4)), np.zeros((5, 3)))


def test_too_few_samples_for_a_covariance():
    rng = np.random.default_rng(10)
    with pytest.raises(ValueError, match=r"at least d \+ 1 = 65 samples, got 10"):
        M.fid(rng.normal(size=(100, 64)), rng.normal(size=(10, 64)))


def test_nan_in_features_or_from_the_extractor():
    x = np.zeros((20, 2))
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        M.fid(x, np.zeros((20, 2)))
    with pytest.raises(ValueError, match="features of real contain NaN"):
        M.fid(torch.ones(10, 1, 4, 4), torch.ones(10, 1, 4, 4), extractor=lambda b: torch.full((len(b), 2), math.nan))


def test_k_not_below_the_number_of_samples():
    x = np.random.default_rng(11).normal(size=(5, 2))
    with pytest.raises(ValueError, match="k=5 must be smaller than the number of real samples"):
        M.precision_recall(x, x, k=5)
    with pytest.raises(ValueError, match="k=7 must be smaller"):
        M.density_coverage(x, x, k=7)
    with pytest.raises(ValueError, match="k must be an integer"):
        M.precision_recall(x, x, k=0)


def test_other_bad_inputs():
    x = np.random.default_rng(12).normal(size=(40, 2))
    with pytest.raises(ValueError, match="subset_size=50 is larger"):
        M.kid(x, x, subset_size=50)
    with pytest.raises(ValueError, match="n_subsets"):
        M.kid(x, x, n_subsets=0)
    with pytest.raises(ValueError, match="unknown classifier"):
        M.c2st(x, x, classifier="svm")
    with pytest.raises(ValueError, match="test_size"):
        M.c2st(x, x, test_size=1.5)
    with pytest.raises(ValueError, match="at least 4 samples"):
        M.c2st(x[:3], x[:3])
    with pytest.raises(ValueError, match="quantile"):
        M.memorization(x, x, x, quantile=2.0)
    with pytest.raises(ValueError, match="n_dims"):
        M.nats_to_bits_per_dim(1.0, 0)
    with pytest.raises(ValueError, match="bin_width"):
        M.bits_per_dim_to_nats(1.0, 4, bin_width=-1.0)
    with pytest.raises(ValueError, match="class probabilities"):
        M.inception_score(np.full((20, 10), 0.2))
    with pytest.raises(ValueError, match="one sample per split"):
        M.inception_score(np.full((5, 10), 0.1), splits=10)
    with pytest.raises(ValueError, match="mu1 has 2 dimensions but mu2 has 3"):
        M.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match=r"sigma2 must be a \(2, 2\) covariance"):
        M.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match="sigma1 contains NaN"):
        M.frechet_distance(np.zeros(2), np.full((2, 2), np.nan), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="no default feature extractor for 5x5"):
        M.fid(torch.zeros(10, 1, 5, 5), torch.zeros(10, 1, 5, 5))
    with pytest.raises(TypeError, match="extractor must be"):
        M.fid(torch.zeros(10, 1, 8, 8), torch.zeros(10, 1, 8, 8), extractor=3)
    with pytest.raises(ValueError, match="must be features"):
        M.fid(np.zeros(10), np.zeros(10))
    with pytest.raises(ValueError, match="is empty"):
        M.fid(np.zeros((0, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="numeric"):
        M.fid(np.array([["a", "b"]]), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="unknown dataset"):
        M.get_feature_extractor("cifar")
    with pytest.raises(ValueError, match="unknown dataset"):
        M.DigitClassifier("cifar")
    with pytest.raises(ValueError, match="epochs"):
        M.train_classifier("digits", epochs=0)
    with pytest.raises(ValueError, match="takes images"):
        M.DigitClassifier("digits").features(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="n_samples=500 is larger than the training set"):
        M.real_floor(np.zeros((100, 2)), np.zeros((50, 2)), n_samples=500)
    with pytest.raises(ValueError, match="batch_size"):
        M.extract_features(np.zeros((4, 2)), batch_size=0)


def test_inception_extractor_never_downloads(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        M.inception_extractor(tmp_path / "missing.pt")


def test_real_floor_on_features_is_close_to_ideal():
    rng = np.random.default_rng(13)
    floor = M.real_floor(rng.normal(size=(1000, 3)), rng.normal(size=(400, 3)), kid_subsets=20)
    assert set(floor) >= {"fid", "kid", "precision", "recall", "density", "coverage", "c2st"}
    assert floor["fid"] < 0.1 and abs(floor["c2st"] - 0.5) < 3 * math.sqrt(0.25 / 400)


# ----------------------------------------------------------------------------- the leaderboard (genlab.results)
def _leaderboard_module():
    from genlab.results import leaderboard

    return leaderboard


def _board(fid: float, nll: float, accuracy: float = 0.95, profile: str = "quick") -> dict:
    row = {"model": "independent pixels", "nll_nats": nll, "fid": fid}
    return {"meta": {"profile": profile, "seed": 0, "classifier_version": M.CLASSIFIER_VERSION},
            "datasets": {"digits": {"classifier_test_accuracy": accuracy, "floor": {"fid": 7.5}, "rows": [row]}}}


def test_leaderboard_freshness_check(tmp_path):
    L = _leaderboard_module()
    stored = _board(fid=100.0, nll=106.47)
    L.check_fresh(stored, _board(fid=101.0, nll=106.4701))  # within tolerances: no error
    with pytest.raises(ValueError, match="NLL stored 106.4700, now 107.0000"):
        L.check_fresh(stored, _board(fid=100.0, nll=107.0))
    with pytest.raises(ValueError, match="FID stored 100.000, now 150.000"):
        L.check_fresh(stored, _board(fid=150.0, nll=106.47))
    with pytest.raises(ValueError, match="profile: stored 'quick', now 'full'"):
        L.check_fresh(stored, _board(fid=100.0, nll=106.47, profile="full"))
    with pytest.raises(ValueError, match="classifier accuracy"):
        L.check_fresh(stored, _board(fid=100.0, nll=106.47, accuracy=0.8))
    with pytest.raises(FileNotFoundError, match="run `python benchmarks/leaderboard.py`"):
        L.load_leaderboard(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="unknown models"):
        L.build_leaderboard("quick", models=["GAN"])
    with pytest.raises(ValueError, match="unknown dataset"):
        L.Dataset("cifar")


# ----------------------------------------------------------------------------- bad input and faults
@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """An empty classifier cache and one-epoch training, so the first call trains the extractor."""
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path))
    monkeypatch.setenv(M.EPOCHS_ENV, "1")
    monkeypatch.setattr(M.features, "_EXTRACTORS", {})
    return tmp_path


def test_metrics_train_the_default_extractor_with_an_empty_cache(empty_cache):
    from genlab.data import load_digits, load_mnist

    digits = load_digits("test")[0]
    assert M.fid(digits[:200], digits[200:]) >= 0.0
    assert 1.0 <= M.inception_score(digits, splits=2).mean <= 10.0
    assert M.classifier_cache_path("digits").is_file()
    mnist = load_mnist("test")[0][:100]
    precision, recall = M.precision_recall(mnist[:50], mnist[50:])
    assert 0.0 <= precision <= 1.0 and 0.0 <= recall <= 1.0
    assert M.classifier_cache_path("mnist").parent == empty_cache


def test_extractor_does_not_change_the_callers_mode():
    net = nn.Sequential(nn.Flatten(), nn.Dropout(0.5))
    net.train()
    images = torch.rand(30, 1, 3, 3)
    M.extract_features(images, net)
    assert net.training, "the caller's module must come back in training mode"


def test_frechet_distance_of_huge_equal_covariances_is_finite():
    big = 1e300 * np.eye(3)
    assert M.frechet_distance(np.zeros(3), big, np.zeros(3), big) == pytest.approx(0.0, abs=1e288)
    assert M.frechet_distance(np.ones(3), 4e300 * np.eye(3), np.zeros(3), 1e300 * np.eye(3)) == pytest.approx(3e300)


def test_unknown_extractor_names_are_rejected_even_for_features():
    x = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match="unknown extractor 'cifar'"):
        M.fid(x, x, extractor="cifar")
    with pytest.raises(ValueError, match="unknown extractor 'pixel'"):
        M.memorization(x, x, x, extractor="pixel")


@pytest.mark.parametrize("call, argument", [
    (lambda x: M.precision_recall(x, x, max_samples=-1), "max_samples"),
    (lambda x: M.precision_recall(x, x, batch_size=0), "batch_size"),
    (lambda x: M.density_coverage(x, x, batch_size=0), "batch_size"),
    (lambda x: M.fid(x, x, batch_size=0), "batch_size"),
    (lambda x: M.memorization(x, x, x, batch_size=0), "batch_size"),
    (lambda x: M.kid(x, x, seed=-1), "seed"),
    (lambda x: M.nats_to_bits_per_dim("abc", 64), "nats"),
    (lambda x: M.bits_per_dim_to_nats([1.0, "a"], 64), "bits_per_dim"),
])
def test_bad_arguments_are_named(call, argument):
    x = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises((ValueError, TypeError), match=argument):
        call(x)


def test_numpy_scalars_are_accepted():
    x = np.random.default_rng(0).normal(size=(40, 2))
    assert M.precision_recall(x, x, k=np.int64(3), max_samples=np.int32(30)) == M.precision_recall(
        x, x, k=3, max_samples=30)
    assert M.kid(x, x, n_subsets=np.int64(3), seed=np.int64(1)).mean == M.kid(x, x, n_subsets=3, seed=1).mean
    assert M.nats_to_bits_per_dim(np.float32(64 * math.log(2)), np.int64(64)) == pytest.approx(1.0)
    assert M.memorization(x, x, x, quantile=np.float64(0.05)).copy_fraction == 1.0


class _Levels(nn.Module):
    """A stand-in extractor with the digits' input range (no training needed)."""

    input_range = (0.0, 16.0)
    dataset = "digits"

    def forward(self, x):
        return x.flatten(1)


@pytest.mark.parametrize("transform, found", [
    (lambda d: d * 100, r"\[0, 1600\]"), (lambda d: -d, r"\[-16, -?0\]"), (lambda d: d / 16, "rescaled to \\[0, 1\\]")])
def test_images_outside_the_extractors_range_are_refused(transform, found):
    from genlab.data import load_digits

    digits = load_digits("test")[0]
    with pytest.raises(ValueError, match=found):
        M.fid(transform(digits), digits, extractor=_Levels())
    classifier = M.DigitClassifier("digits")
    with pytest.raises(ValueError, match=found):
        M.inception_score(transform(digits), classifier, splits=2)


def test_kid_unit_is_stated_and_scale_free():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(200, 4)), rng.normal(size=(200, 4)) + 0.5
    scaled = M.kid(100 * x, 100 * y, n_subsets=5)
    assert scaled.mean == pytest.approx(M.kid(x, y, n_subsets=5).mean, rel=1e-9)
    assert "1e3" in M.KID_UNIT


# ----------------------------------------------------------------------------- chapter 14's implement-it exercise
def _chapter_cell(chapter: str, startswith: str) -> str:
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "chapters" / chapter
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "code" and text.startswith(startswith):
            return text
    raise AssertionError(f"no cell starting with {startswith!r} in {chapter}")


def _run_fid_check(answer):
    import warnings

    import scipy.linalg

    from genlab.exercises import check

    source = _chapter_cell("14_evaluation.ipynb", "trial_rng = np.random.default_rng(14)")
    exec(source, {"np": np, "metrics": M, "check": check, "answer": answer, "warnings": warnings, "scipy": scipy})


def _fid_solution(real, fake):
    m1, m2 = real.mean(0), fake.mean(0)
    c1, c2 = np.atleast_2d(np.cov(real, rowvar=False)), np.atleast_2d(np.cov(fake, rowvar=False))
    return float(np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real))


def _fid_without_square(real, fake):  # a typical mistake: the distance of the means, not its square
    m1, m2 = real.mean(0), fake.mean(0)
    c1, c2 = np.atleast_2d(np.cov(real, rowvar=False)), np.atleast_2d(np.cov(fake, rowvar=False))
    return float(np.linalg.norm(m1 - m2) + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real))


def test_exercise_14_1_check_fails_helpfully_and_accepts_the_solution():
    from genlab.exercises import ExerciseError, NotAttempted

    with pytest.raises(NotAttempted):
        _run_fid_check(...)
    with pytest.raises(ExerciseError, match="squared"):
        _run_fid_check(_fid_without_square)
    _run_fid_check(_fid_solution)
