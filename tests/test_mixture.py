"""genlab.mixture: parity with scikit-learn's GaussianMixture, the categorical mixture, input errors."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from exercise_checks import assert_check_is_helpful
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from genlab.base import NotFittedError
from genlab.data import load_digits
from genlab.mixture import COVARIANCE_TYPES, CategoricalMixture, GaussianMixture

CPU = "cpu"


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    X, _ = make_blobs(n_samples=1000, n_features=3, centers=4, cluster_std=[1.0, 2.0, 0.5, 1.5], random_state=1)
    return X


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    train, _ = load_digits("train")
    val, _ = load_digits("val")
    return train.reshape(len(train), -1), val.reshape(len(val), -1)


def _to_numpy(value) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _genlab_copy_of(sk: SkGaussianMixture, covariance_type: str) -> GaussianMixture:
    """A genlab model holding exactly scikit-learn's fitted parameters (max_iter=0 keeps the init)."""
    X0 = np.zeros((sk.n_components, sk.means_.shape[1]))
    return GaussianMixture(sk.n_components, covariance_type=covariance_type, max_iter=0,
                           weights_init=sk.weights_, means_init=sk.means_, precisions_init=sk.precisions_,
                           device=CPU).fit(X0)


# ----------------------------------------------------------------------------- Gaussian parity
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("init_params", ["kmeans", "random"])
def test_em_matches_sklearn_with_same_random_state(blobs, covariance_type, init_params):
    kwargs = dict(n_components=4, covariance_type=covariance_type, init_params=init_params,
                  random_state=7, max_iter=500, tol=1e-5)
    sk = SkGaussianMixture(**kwargs).fit(blobs)
    gm = GaussianMixture(**kwargs, device=CPU).fit(blobs)
    assert gm.converged_ and sk.converged_
    assert gm.n_iter_ == sk.n_iter_
    assert abs(gm.lower_bound_ - sk.lower_bound_) <= 1e-4 * abs(sk.lower_bound_)
    np.testing.assert_allclose(_to_numpy(gm.weights_), sk.weights_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(_to_numpy(gm.means_), sk.means_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(_to_numpy(gm.covariances_), sk.covariances_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(_to_numpy(gm.precisions_cholesky_), sk.precisions_cholesky_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(_to_numpy(gm.precisions_), sk.precisions_, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(_to_numpy(gm.predict(blobs)), sk.predict(blobs))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_em_matches_sklearn_from_given_initial_parameters(blobs, covariance_type):
    kwargs = dict(n_components=4, covariance_type=covariance_type, max_iter=25, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0: both run all their iterations
        start = SkGaussianMixture(4, covariance_type=covariance_type, init_params="random", max_iter=1,
                                  random_state=3).fit(blobs)
        init = dict(weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_)
        sk = SkGaussianMixture(**kwargs, **init).fit(blobs)
        gm = GaussianMixture(**kwargs, **init, device=CPU).fit(blobs)
    assert gm.n_iter_ == sk.n_iter_ == 25
    assert abs(gm.lower_bound_ - sk.lower_bound_) <= 1e-4 * abs(sk.lower_bound_)
    np.testing.assert_allclose(gm.lower_bounds_, sk.lower_bounds_, rtol=1e-8)
    np.testing.assert_allclose(_to_numpy(gm.means_), sk.means_, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_score_samples_bic_aic_match_sklearn_given_same_parameters(blobs, covariance_type):
    sk = SkGaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(blobs)
    gm = _genlab_copy_of(sk, covariance_type)
    np.testing.assert_allclose(_to_numpy(gm.score_samples(blobs)), sk.score_samples(blobs), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(_to_numpy(gm.predict_proba(blobs)), sk.predict_proba(blobs), atol=1e-8)
    assert gm.score(blobs) == pytest.approx(sk.score(blobs), rel=1e-10)
    assert gm.bic(blobs) == pytest.approx(sk.bic(blobs), rel=1e-10)
    assert gm.aic(blobs) == pytest.approx(sk.aic(blobs), rel=1e-10)
    np.testing.assert_allclose(_to_numpy(gm.covariances_), sk.covariances_, rtol=1e-8, atol=1e-10)


def test_fit_predict_equals_predict_and_proba_rows_sum_to_one(blobs):
    gm = GaussianMixture(4, random_state=0, device=CPU)
    labels = gm.fit_predict(blobs)
    assert isinstance(labels, np.ndarray)  # NumPy in, NumPy out
    np.testing.assert_array_equal(labels, gm.predict(blobs))
    proba = gm.predict_proba(blobs)
    assert proba.shape == (len(blobs), 4)
    np.testing.assert_allclose(proba.sum(1), np.ones(len(blobs)))
    # torch in, torch out (on the input's device)
    tensor_labels = gm.predict(torch.as_tensor(blobs))
    assert isinstance(tensor_labels, torch.Tensor) and tensor_labels.device.type == "cpu"
    np.testing.assert_array_equal(tensor_labels.numpy(), labels)


def test_float32_and_tensor_input(blobs):
    gm64 = GaussianMixture(4, random_state=0, device=CPU).fit(blobs)
    gm32 = GaussianMixture(4, random_state=0, device=CPU, dtype=torch.float32).fit(torch.as_tensor(blobs))
    assert gm32.means_.dtype == torch.float32
    assert gm32.score(blobs) == pytest.approx(gm64.score(blobs), rel=1e-4)


def test_n_init_keeps_the_best_restart(blobs):
    single = [GaussianMixture(4, init_params="random", random_state=seed, device=CPU).fit(blobs).lower_bound_
              for seed in range(3)]
    best = GaussianMixture(4, init_params="random", n_init=5, random_state=0, device=CPU).fit(blobs)
    assert best.lower_bound_ >= min(single)
    sk = SkGaussianMixture(4, init_params="random", n_init=5, random_state=0).fit(blobs)
    assert best.lower_bound_ == pytest.approx(sk.lower_bound_, rel=1e-6)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_shapes_and_label_counts(blobs, covariance_type):
    gm = GaussianMixture(4, covariance_type=covariance_type, random_state=0, device=CPU).fit(blobs)
    n = 20000
    X, labels = gm.sample(n, random_state=0)
    assert isinstance(X, np.ndarray) and isinstance(labels, np.ndarray)  # fitted on NumPy
    X, labels = torch.as_tensor(X), torch.as_tensor(labels)
    assert X.shape == (n, 3) and labels.shape == (n,)
    assert torch.all(labels[1:] >= labels[:-1]), "labels come grouped by component"
    counts = torch.bincount(labels, minlength=4).double()
    expected = gm.weights_ * n
    # Multinomial counts: each within 5 standard deviations of its mean.
    assert torch.all((counts - expected).abs() <= 5 * torch.sqrt(expected * (1 - gm.weights_)) + 1)
    # Each component's samples have its mean and covariance (loose: 1/sqrt(n_k) sampling error).
    biggest = int(torch.argmax(gm.weights_))
    members = X[labels == biggest]
    spread = torch.sqrt(torch.diagonal(torch.atleast_2d(torch.cov(members.T))))
    assert torch.all((members.mean(0) - gm.means_[biggest]).abs() <= 5 * spread / math.sqrt(len(members)))


def test_sample_random_state_contract(blobs):
    a = GaussianMixture(2, random_state=0, device=CPU).fit(blobs)
    b = GaussianMixture(2, random_state=0, device=CPU).fit(blobs)
    first, _ = a.sample(5, random_state=3)
    np.testing.assert_array_equal(first, b.sample(5, random_state=3)[0])      # an int: the same draws
    np.testing.assert_array_equal(first, a.sample(5, random_state=3)[0])      # ... every call
    generator = torch.Generator().manual_seed(3)
    np.testing.assert_array_equal(first, a.sample(5, random_state=generator)[0])
    assert not np.array_equal(first, a.sample(5, random_state=generator)[0])  # a generator advances
    assert not np.array_equal(a.sample(5)[0], a.sample(5)[0])                 # None: fresh entropy
    on_tensor = GaussianMixture(2, random_state=0, device=CPU).fit(torch.as_tensor(blobs))
    X, labels = on_tensor.sample(5, random_state=3)
    assert isinstance(X, torch.Tensor) and isinstance(labels, torch.Tensor)
    np.testing.assert_allclose(X.numpy(), first)


def test_bic_picks_true_number_of_components():
    X, _ = make_blobs(n_samples=900, centers=[[-6, 0], [0, 6], [6, 0]], cluster_std=1.0, random_state=0)
    bics = [GaussianMixture(k, random_state=0, device=CPU).fit(X).bic(X) for k in range(1, 6)]
    assert int(np.argmin(bics)) + 1 == 3, bics


def test_singular_component_is_repaired_and_named():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(200, 2)), np.tile([[8.0, 8.0]], (10, 1))])
    means = np.array([[0.0, 0.0], [8.0, 8.0]])
    with pytest.warns(RuntimeWarning, match=r"component\(s\) \[1\]"):
        gm = GaussianMixture(2, reg_covar=0.0, means_init=means, device=CPU, max_iter=5).fit(X)
    assert torch.isfinite(gm.covariances_).all() and np.isfinite(gm.score_samples(X)).all()
    with pytest.raises(ValueError):  # scikit-learn stops on the same data
        SkGaussianMixture(2, reg_covar=0.0, means_init=means, max_iter=5).fit(X)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "tied"])
def test_singular_other_types_stay_finite(covariance_type):
    X = np.vstack([np.tile([[1.0, 2.0]], (10, 1)), np.tile([[5.0, -1.0]], (10, 1))])
    with pytest.warns(RuntimeWarning, match="singular covariance"):
        gm = GaussianMixture(2, covariance_type=covariance_type, reg_covar=0.0,
                             means_init=[[1.0, 2.0], [5.0, -1.0]], device=CPU, max_iter=3).fit(X)
    assert np.isfinite(gm.score_samples(X)).all()


def test_convergence_warning_when_max_iter_too_small(blobs):
    with pytest.warns(ConvergenceWarning):
        gm = GaussianMixture(4, max_iter=1, init_params="random", random_state=0, device=CPU).fit(blobs)
    assert not gm.converged_ and gm.n_iter_ == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(blobs):
    cpu = GaussianMixture(4, random_state=0, device=CPU).fit(blobs)
    gpu = GaussianMixture(4, random_state=0, device="cuda").fit(blobs)
    assert gpu.means_.device.type == "cuda"
    assert gpu.lower_bound_ == pytest.approx(cpu.lower_bound_, rel=1e-9)


# ----------------------------------------------------------------------------- Gaussian errors
@pytest.mark.parametrize("kwargs, message", [
    ({"covariance_type": "banana"}, "covariance_type"),
    ({"init_params": "magic"}, "init_params"),
    ({"n_components": 0}, "n_components"),
    ({"reg_covar": -1.0}, "reg_covar"),
    ({"tol": -1.0}, "tol"),
    ({"max_iter": -1}, "max_iter"),
    ({"n_init": 0}, "n_init"),
    ({"dtype": torch.int64}, "dtype"),
    ({"n_components": 2, "weights_init": [0.3, 0.3]}, "sum to 1"),
    ({"n_components": 2, "weights_init": [1.0]}, "weights_init must have shape"),
    ({"n_components": 2, "means_init": [[0.0, 0.0, 0.0]]}, "means_init must have shape"),
    ({"n_components": 1, "precisions_init": [[[1.0, 2.0, 0], [2.0, 1.0, 0], [0, 0, 1]]]}, "positive-definite"),
    ({"n_components": 1, "covariance_type": "diag", "precisions_init": [[1.0, -1.0, 1.0]]}, "positive"),
    ({"n_components": 1, "covariance_type": "tied", "precisions_init": np.eye(2)}, "must have shape"),
])
def test_bad_parameters_raise(blobs, kwargs, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(device=CPU, **kwargs).fit(blobs)


def test_bad_inputs_raise(blobs):
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(device=CPU).fit(np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="n_components=5 is larger than the number of samples"):
        GaussianMixture(5, device=CPU).fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        GaussianMixture(1, device=CPU).fit(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="2-D"):
        GaussianMixture(device=CPU).fit(np.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match="numeric"):
        GaussianMixture(device=CPU).fit(np.array([["a", "b"], ["c", "d"]]))
    gm = GaussianMixture(2, random_state=0, device=CPU).fit(blobs)
    with pytest.raises(ValueError, match="features"):
        gm.score_samples(blobs[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        gm.predict(np.full((2, 3), np.inf))
    with pytest.raises(ValueError, match="n_samples"):
        gm.sample(0)


@pytest.mark.parametrize("method", ["score_samples", "score", "predict", "predict_proba", "bic", "aic"])
def test_unfitted_raises(blobs, method):
    with pytest.raises(NotFittedError, match="not fitted"):
        getattr(GaussianMixture(device=CPU), method)(blobs)
    with pytest.raises(NotFittedError):
        GaussianMixture(device=CPU).sample(3)
    with pytest.raises(NotFittedError):
        GaussianMixture(device=CPU).n_parameters()


# ----------------------------------------------------------------------------- categorical mixture
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_categorical_em_is_monotone(digits, alpha):
    train, _ = digits
    model = CategoricalMixture(8, n_categories=17, alpha=alpha, max_iter=40, tol=0.0, random_state=0,
                               device=CPU)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(train)
    bounds = np.asarray(model.lower_bounds_)
    assert len(bounds) == 40
    # MAP-EM never decreases its objective (up to float64 rounding of a ~-100 nats quantity).
    assert np.all(np.diff(bounds) >= -1e-9), np.diff(bounds).min()
    assert bounds[-1] > bounds[0]


def test_categorical_single_component_is_the_smoothed_frequency_model(digits):
    train, val = digits
    alpha = 0.5
    model = CategoricalMixture(1, n_categories=17, alpha=alpha, device=CPU).fit(train)
    codes = train.numpy().astype(int)
    counts = np.stack([np.bincount(codes[:, d], minlength=17) for d in range(64)])
    probs = (counts + alpha) / (len(codes) + 17 * alpha)
    expected = np.log(probs[np.arange(64), val.numpy().astype(int)]).sum(1)
    np.testing.assert_allclose(_to_numpy(model.score_samples(val)), expected, rtol=1e-10)
    assert model.bic(train) == pytest.approx(-2 * model.score(train) * 1000 + 64 * 16 * math.log(1000))


def test_categorical_mixture_beats_single_component_on_held_out_digits(digits):
    train, val = digits
    single = CategoricalMixture(1, n_categories=17, device=CPU).fit(train)
    mixture = CategoricalMixture(10, n_categories=17, random_state=0, device=CPU).fit(train)
    assert mixture.score(val) > single.score(val) + 1.0, (mixture.score(val), single.score(val))


def test_categorical_images_are_flattened_and_sampled(digits):
    images, _ = load_digits("val")
    model = CategoricalMixture(3, n_categories=17, random_state=0, device=CPU).fit(images)
    assert model.probs_.shape == (3, 64, 17)
    torch.testing.assert_close(model.probs_.sum(-1), torch.ones(3, 64, dtype=torch.float64))
    X, labels = model.sample(50, random_state=0)
    assert X.shape == (50, 64) and labels.shape == (50,)
    assert X.min() >= 0 and X.max() <= 16 and X.dtype == (torch.int64 if isinstance(X, torch.Tensor) else np.int64)
    assert model.predict_proba(images).shape == (len(images), 3)
    assert np.isfinite(np.asarray(model.score_samples(X))).all()


def test_bernoulli_mixture_recovers_two_prototypes():
    rng = np.random.default_rng(0)
    prototypes = np.array([[0.9] * 5 + [0.1] * 5, [0.1] * 5 + [0.9] * 5])
    labels = rng.integers(0, 2, 2000)
    X = (rng.random((2000, 10)) < prototypes[labels]).astype(float)
    model = CategoricalMixture(2, n_categories=2, alpha=0.0, random_state=0, device=CPU).fit(X)
    found = _to_numpy(model.probs_[:, :, 1])
    order = np.argsort(found[:, 0])[::-1]
    np.testing.assert_allclose(found[order], prototypes, atol=0.05)


@pytest.mark.parametrize("X, kwargs, message", [
    (np.array([[0, 1], [2, 1]]), {"n_categories": 2}, r"0\.\.1"),
    (np.array([[0, -1], [1, 1]]), {"n_categories": 2}, r"0\.\.1"),
    (np.array([[0.5, 1], [1, 1]]), {"n_categories": 2}, "integer"),
    (np.array([[0, 1], [1, np.nan]]), {"n_categories": 2}, "NaN"),
    (np.array([[0, 1], [1, 1]]), {"n_categories": 1}, "n_categories"),
    (np.array([[0, 1], [1, 1]]), {"n_categories": 2, "alpha": -1.0}, "alpha"),
    (np.array([[0, 1], [1, 1]]), {"n_categories": 2, "n_components": 3}, "larger than the number of samples"),
])
def test_categorical_bad_inputs_raise(X, kwargs, message):
    with pytest.raises(ValueError, match=message):
        CategoricalMixture(device=CPU, **kwargs).fit(X)


def test_categorical_wrong_features_and_unfitted(digits):
    train, _ = digits
    with pytest.raises(NotFittedError):
        CategoricalMixture(2, 17, device=CPU).score_samples(train)
    model = CategoricalMixture(2, 17, random_state=0, device=CPU).fit(train)
    with pytest.raises(ValueError, match="features"):
        model.score(train[:, :10])
    with pytest.raises(ValueError, match="0..16"):
        model.score(train + 1)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tol=0: all 20 iterations run
def test_categorical_sparse_indicators_match_dense(digits):
    """Large inputs switch to a sparse indicator matrix; the fit must not change."""
    train, test = digits[0][:300], digits[1][:100]
    dense = CategoricalMixture(4, n_categories=17, max_iter=20, tol=0.0, random_state=0, device=CPU).fit(train)
    sparse = CategoricalMixture(4, n_categories=17, max_iter=20, tol=0.0, random_state=0, device=CPU)
    sparse.dense_indicator_limit = 0
    sparse.fit(train)
    assert sparse._prepare(sparse._validate_X(test, CPU)).is_sparse
    assert torch.allclose(sparse.probs_, dense.probs_, atol=1e-10)
    np.testing.assert_allclose(np.asarray(sparse.score_samples(test)), np.asarray(dense.score_samples(test)), atol=1e-8)


# ---------------------------------------------------------------------------- the chapter's implement-it exercises


@pytest.fixture(scope="module")
def chapter03():
    import warnings

    from genlab.exercises import check

    X2, _ = make_blobs(n_samples=400, centers=[[-4, -1], [0, 3], [4, -1]], cluster_std=1.0, random_state=0)
    em = GaussianMixture(3, random_state=0, device=CPU).fit(X2)
    return {"em": em, "X2": X2, "torch": torch, "check": check, "warnings": warnings,
            "GaussianMixture": GaussianMixture, "device": CPU}


def test_chapter03_e_step_check(chapter03):
    def unnormalised(X, weights, means, covariances):   # typical mistake: p(x, k) instead of p(k | x)
        return torch.stack([torch.distributions.MultivariateNormal(means[k], covariance_matrix=covariances[k])
                            .log_prob(X).exp() * weights[k] for k in range(len(weights))], dim=1)
    assert_check_is_helpful("03_gaussian_mixtures", "Exercise 3.2", chapter03, unnormalised)


def test_chapter03_m_step_check(chapter03):
    def over_n(X, resp, reg_covar):                      # typical mistake: divide by N instead of N_k
        nk = resp.sum(0)
        means = (resp.T @ X) / len(X)
        diff = X[None] - means[:, None]
        cov = torch.einsum("nk,kni,knj->kij", resp, diff, diff) / len(X) + reg_covar * torch.eye(X.shape[1],
                                                                                               dtype=X.dtype)
        return nk / len(X), means, cov
    assert_check_is_helpful("03_gaussian_mixtures", "Exercise 3.4", chapter03, over_n)
