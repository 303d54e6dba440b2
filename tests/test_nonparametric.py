"""genlab.nonparametric: k-NN density, Gaussian processes, Dirichlet processes, input errors."""
import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.neighbors import NearestNeighbors

from genlab.base import NotFittedError
from genlab.nonparametric import (
    DirichletProcessGaussianMixture,
    KNNDensity,
    gp_posterior,
    gp_posterior_samples,
    gp_prior_samples,
    rbf_kernel,
    sample_dp_mixture,
    stick_breaking_weights,
)


# ----------------------------------------------------------------------------- k-NN density
def test_knn_density_matches_its_formula():
    rng = np.random.default_rng(0)
    X, queries = rng.normal(size=(300, 3)), rng.normal(size=(40, 3))
    knn = KNNDensity(k=7, chunk_size=9, device="cpu").fit(X)
    radius = NearestNeighbors(n_neighbors=7).fit(X).kneighbors(queries)[0][:, -1]
    np.testing.assert_allclose(knn.kth_distance(queries), radius, rtol=1e-10)
    unit_ball = math.pi ** 1.5 / math.gamma(2.5)
    expected = np.log(7 / (300 * unit_ball * radius**3))
    np.testing.assert_allclose(knn.score_samples(queries), expected, rtol=1e-10)
    assert knn.score(queries) == pytest.approx(expected.mean())


def test_knn_density_tracks_a_known_density_in_1d():
    # With k = 100 of n = 20000 points the estimate is within ~1/sqrt(k) = 10 % of the truth at the
    # centre of N(0, 1); 30 % leaves three standard errors.
    X = np.random.default_rng(1).normal(size=(20000, 1))
    estimate = KNNDensity(k=100, device="cpu").fit(X).score_samples(torch.zeros(1, 1)).exp().item()
    truth = 1 / math.sqrt(2 * math.pi)
    assert abs(estimate / truth - 1) < 0.3


def test_knn_density_errors():
    with pytest.raises(ValueError, match="k must be"):
        KNNDensity(k=0).fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="chunk_size"):
        KNNDensity(chunk_size=-2).fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="k=5 needs at least 5"):
        KNNDensity(k=5).fit(np.zeros((3, 2)))
    with pytest.raises(NotFittedError):
        KNNDensity().score_samples(np.zeros((2, 2)))
    knn = KNNDensity(k=2, device="cpu").fit(np.random.default_rng(0).normal(size=(10, 2)))
    with pytest.raises(ValueError, match="features"):
        knn.score_samples(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        knn.fit(np.array([[np.nan, 1.0]] * 3))


# ----------------------------------------------------------------------------- Gaussian processes
def test_rbf_kernel_values():
    K = rbf_kernel([0.0, 1.0], [0.0, 2.0], lengthscale=2.0, variance=3.0)
    expected = 3.0 * np.exp(-np.array([[0.0, 4.0], [1.0, 1.0]]) / 8.0)
    np.testing.assert_allclose(K.numpy(), expected, rtol=1e-14)


def test_gp_posterior_interpolates_noise_free_points():
    x = torch.linspace(-3, 3, 8, dtype=torch.float64)
    y = torch.sin(2 * x)
    mean, cov = gp_posterior(x, y, x, lengthscale=0.8, variance=1.5, noise=0.0)
    # The solve carries a 1e-10 relative jitter: the mean reproduces y to ~1e-9, variance ~0.
    torch.testing.assert_close(mean, y, rtol=0, atol=1e-6)
    assert cov.diagonal().abs().max() < 1e-6
    # far from the data the posterior returns to the prior
    far_mean, far_cov = gp_posterior(x, y, [50.0], lengthscale=0.8, variance=1.5)
    assert abs(far_mean.item()) < 1e-8 and far_cov.item() == pytest.approx(1.5)


def test_gp_posterior_matches_the_closed_form_for_one_point():
    mean, cov = gp_posterior([0.0], [2.0], [0.0, 1.0], lengthscale=1.0, variance=2.0, noise=0.5)
    k = np.array([2.0, 2.0 * math.exp(-0.5)])
    np.testing.assert_allclose(mean.numpy(), k * 2.0 / 2.5, rtol=1e-8)
    np.testing.assert_allclose(cov.diagonal().numpy(), 2.0 - k**2 / 2.5, rtol=1e-8)


def test_gp_samples_have_the_right_covariance():
    # 4000 prior draws at 3 inputs: the empirical covariance is within 5 standard errors
    # (se of a covariance entry ~ sqrt((K_ii K_jj + K_ij^2) / n) for Gaussians) of the kernel.
    x = torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64)
    n = 4000
    draws = gp_prior_samples(x, n, lengthscale=1.0, variance=2.0, random_state=0)
    assert draws.shape == (n, 3)
    K = rbf_kernel(x, x, 1.0, 2.0).numpy()
    empirical = np.cov(draws.numpy().T)
    se = np.sqrt((np.outer(K.diagonal(), K.diagonal()) + K**2) / n)
    assert np.all(np.abs(empirical - K) < 5 * se)
    posterior = gp_posterior_samples([0.0, 1.0], [1.0, -1.0], [0.0, 1.0, 0.5], n=3, random_state=1)
    assert posterior.shape == (3, 3)
    torch.testing.assert_close(posterior[:, :2], torch.tensor([[1.0, -1.0]] * 3, dtype=torch.float64),
                               rtol=0, atol=1e-4)
    torch.testing.assert_close(gp_prior_samples(x, 2, random_state=5), gp_prior_samples(x, 2, random_state=5))


def test_gp_errors():
    with pytest.raises(ValueError, match="lengthscale"):
        rbf_kernel([0.0], [1.0], lengthscale=0.0)
    with pytest.raises(ValueError, match="variance"):
        rbf_kernel([0.0], [1.0], variance=-1.0)
    with pytest.raises(ValueError, match="1-D inputs"):
        rbf_kernel(np.zeros((3, 2)), [1.0])
    with pytest.raises(ValueError, match="NaN"):
        gp_prior_samples([0.0, np.nan], 2)
    with pytest.raises(ValueError, match="n must be"):
        gp_prior_samples([0.0, 1.0], 0)
    with pytest.raises(ValueError, match="y_train has 1 values but x_train has 2"):
        gp_posterior([0.0, 1.0], [1.0], [0.5])
    with pytest.raises(ValueError, match="noise"):
        gp_posterior([0.0], [1.0], [0.5], noise=-0.1)
    with pytest.raises(ValueError, match="x_test"):
        gp_posterior([0.0], [1.0], [])
    with pytest.raises(ValueError, match="random_state"):
        gp_posterior_samples([0.0], [1.0], [0.5], random_state=-3)


# ----------------------------------------------------------------------------- Dirichlet processes
def test_stick_breaking_weights_sum_below_one_and_approach_one():
    few = stick_breaking_weights(alpha=2.0, n_sticks=5, random_state=0)
    assert few.shape == (5,) and torch.all(few > 0) and few.sum() < 1
    # The leftover mass after K sticks has expectation (alpha / (1 + alpha))^K; by Markov's
    # inequality it exceeds 1e-9 with probability at most (2/3)^100 / 1e-9 < 3e-9.
    many = stick_breaking_weights(alpha=2.0, n_sticks=100, random_state=0)
    assert 1 - many.sum().item() < 1e-9
    # the mean leftover over many draws matches the closed form within 5 standard errors
    leftovers = np.array([1 - stick_breaking_weights(2.0, 3, random_state=s).sum().item() for s in range(2000)])
    se = leftovers.std(ddof=1) / math.sqrt(len(leftovers))
    assert abs(leftovers.mean() - (2 / 3) ** 3) < 5 * se


def test_small_alpha_concentrates_the_mass():
    # E[first stick] = E[Beta(1, alpha)] = 1 / (1 + alpha): alpha = 0.1 puts ~91 % on the first stick on average
    first = np.array([stick_breaking_weights(0.1, 1, random_state=s).item() for s in range(2000)])
    assert abs(first.mean() - 1 / 1.1) < 5 * first.std(ddof=1) / math.sqrt(2000)


def test_sample_dp_mixture():
    draw = sample_dp_mixture(500, alpha=1.0, dim=2, n_sticks=30, random_state=0)
    assert draw.X.shape == (500, 2) and draw.labels.shape == (500,)
    assert draw.weights.sum().item() == pytest.approx(1.0, abs=1e-12)
    assert draw.means.shape == (30, 2) and int(draw.labels.max()) < 30
    residual = draw.X - draw.means[draw.labels]
    # per-coordinate noise std 0.5 from 1000 values: within 10 %
    assert residual.std().item() == pytest.approx(0.5, rel=0.1)
    torch.testing.assert_close(sample_dp_mixture(50, random_state=3).X, sample_dp_mixture(50, random_state=3).X)


def test_dp_errors():
    with pytest.raises(ValueError, match="alpha"):
        stick_breaking_weights(0.0, 5)
    with pytest.raises(ValueError, match="n_sticks"):
        stick_breaking_weights(1.0, 0)
    with pytest.raises(ValueError, match="n_samples"):
        sample_dp_mixture(0)
    with pytest.raises(ValueError, match="component_scale"):
        sample_dp_mixture(10, component_scale=float("inf"))
    with pytest.raises(ValueError, match="dim"):
        sample_dp_mixture(10, dim=0)


@pytest.fixture(scope="module")
def three_blobs():
    X, y = make_blobs(450, centers=[[-6, 0], [6, 0], [0, 8]], cluster_std=0.8, random_state=0)
    return X, y


def test_dp_mixture_finds_three_components(three_blobs):
    X, _ = three_blobs
    model = DirichletProcessGaussianMixture(n_components=10, alpha=1.0, random_state=0).fit(X)
    assert model.converged_
    assert model.effective_n_components_ == 3, model.weights_
    big = model.weights_ > 0.01
    centres = model.means_[big].numpy()
    for centre in ([-6, 0], [6, 0], [0, 8]):
        assert np.min(np.linalg.norm(centres - np.array(centre), axis=1)) < 0.5
    samples, labels = model.sample(200, random_state=0)
    assert samples.shape == (200, 2) and labels.shape == (200,)
    assert isinstance(samples, np.ndarray)  # fitted on NumPy
    np.testing.assert_array_equal(samples, model.sample(200, random_state=0)[0])
    # the draws follow the fitted mixture: their mean is the weighted mean of the components
    expected_mean = (model.weights_[:, None] * model.means_).sum(0).numpy()
    assert np.abs(model.sample(4000, random_state=1)[0].mean(0) - expected_mean).max() < 0.5
    scores = model.score_samples(X)
    np.testing.assert_allclose(scores, model.model_.score_samples(X))
    assert model.score(X) == pytest.approx(float(scores.mean()))
    assert model.predict(X).shape == (450,)


def test_dp_mixture_errors(three_blobs):
    X, _ = three_blobs
    with pytest.raises(ValueError, match="n_components"):
        DirichletProcessGaussianMixture(n_components=0).fit(X)
    with pytest.raises(ValueError, match="alpha"):
        DirichletProcessGaussianMixture(alpha=-1.0).fit(X)
    with pytest.raises(ValueError, match="covariance_type"):
        DirichletProcessGaussianMixture(covariance_type="banded").fit(X)
    with pytest.raises(ValueError, match="covariance_prior"):
        DirichletProcessGaussianMixture(covariance_type="spherical", covariance_prior=-1.0).fit(X)
    with pytest.raises(ValueError, match="weight_threshold"):
        DirichletProcessGaussianMixture(weight_threshold=1.0).fit(X)
    with pytest.raises(ValueError, match="max_iter"):
        DirichletProcessGaussianMixture(max_iter=0).fit(X)
    model = DirichletProcessGaussianMixture(n_components=3)
    with pytest.raises(NotFittedError):
        model.score_samples(X)
    with pytest.raises(NotFittedError):
        model.sample(3)
    with pytest.raises(ValueError, match="at least 2 samples"):
        model.fit(X[:1])
    with pytest.raises(ValueError, match="NaN"):
        model.fit(np.full((5, 2), np.nan))
    model.fit(X[:60])
    with pytest.raises(ValueError, match="features"):
        model.score_samples(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="n_samples"):
        model.sample(0)
