"""GaussianClassConditional: parity with scikit-learn's QDA, LDA and GaussianNB, sampling, bad input."""
import math

import numpy as np
import pytest
import torch
from exercise_checks import exercise_cells
from scipy.stats import multivariate_normal
from sklearn.datasets import load_wine
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis, QuadraticDiscriminantAnalysis
from sklearn.naive_bayes import GaussianNB

from genlab.base import NotFittedError
from genlab.generative_classifier import GaussianClassConditional


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return X, y


def _compare(model, reference, X):
    proba = model.predict_proba(X)
    assert isinstance(proba, np.ndarray)  # NumPy in, NumPy out
    np.testing.assert_allclose(proba, reference.predict_proba(X), atol=1e-9)
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))


def test_diag_matches_gaussian_nb(wine):
    X, y = wine
    nb = GaussianNB(var_smoothing=1e-9).fit(X, y)
    # GaussianNB adds var_smoothing * (largest feature variance) to every variance.
    model = GaussianClassConditional("diag", reg_covar=float(nb.epsilon_)).fit(X, y)
    np.testing.assert_allclose(model.covariances_.numpy(), nb.var_, rtol=1e-10)
    _compare(model, nb, X)


def test_full_matches_qda(wine):
    X, y = wine
    qda = QuadraticDiscriminantAnalysis(store_covariance=True).fit(X, y)
    model = GaussianClassConditional("full", reg_covar=0.0).fit(X, y)
    np.testing.assert_allclose(model.covariances_.numpy(), np.stack(qda.covariance_), rtol=1e-8, atol=1e-10)
    _compare(model, qda, X)


@pytest.mark.parametrize("solver", ["svd", "lsqr"])
def test_tied_matches_lda(wine, solver):
    X, y = wine
    lda = LinearDiscriminantAnalysis(solver=solver, store_covariance=True).fit(X, y)
    model = GaussianClassConditional("tied", reg_covar=0.0).fit(X, y)
    np.testing.assert_allclose(model.covariances_.numpy(), lda.covariance_, rtol=1e-8, atol=1e-10)
    _compare(model, lda, X)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag"])
def test_densities_are_consistent(wine, covariance_type):
    X, y = wine
    model = GaussianClassConditional(covariance_type, reg_covar=1e-3).fit(X, y)
    joint = model.log_joint(X)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), np.ones(len(X)))
    np.testing.assert_allclose(model.score_samples(X), np.logaddexp.reduce(joint, axis=1))
    assert model.score(X) == pytest.approx(float(model.score_samples(X).mean()))
    # log p(x) against scipy's Gaussian log-density, mixed over the classes by hand.
    cov = model.covariances_.numpy()
    by_class = []
    for k in range(len(model.classes_)):
        sigma = {"full": cov[k] if covariance_type == "full" else None, "tied": cov,
                 "diag": np.diag(cov[k]) if covariance_type == "diag" else None}[covariance_type]
        by_class.append(np.log(model.priors_[k].item()) + multivariate_normal(model.means_[k].numpy(), sigma).logpdf(X))
    np.testing.assert_allclose(model.score_samples(X), np.logaddexp.reduce(np.stack(by_class, 1), axis=1),
                               rtol=1e-9)


def test_accepts_torch_and_keeps_labels():
    gen = torch.Generator().manual_seed(0)
    X = torch.cat([torch.randn(30, 2, generator=gen) - 3, torch.randn(40, 2, generator=gen) + 3])
    y = torch.tensor([5] * 30 + [9] * 40)
    model = GaussianClassConditional("full").fit(X, y)
    assert model.classes_.tolist() == [5, 9]
    assert model.priors_.tolist() == pytest.approx([30 / 70, 40 / 70])
    assert set(model.predict(X).tolist()) <= {5, 9}
    assert (model.predict(X) == y).double().mean() > 0.95


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag"])
def test_sample_moments_and_seed(wine, covariance_type):
    X, y = wine
    X = (X - X.mean(0)) / X.std(0)
    model = GaussianClassConditional(covariance_type, reg_covar=1e-3).fit(X, y)
    samples, labels = model.sample(40_000, random_state=1)
    samples, labels = torch.as_tensor(samples), torch.as_tensor(labels)
    assert samples.shape == (40_000, X.shape[1]) and labels.shape == (40_000,)
    # Class frequencies follow the priors; class means and covariances are reproduced.
    freq = torch.stack([(labels == int(c)).double().mean() for c in model.classes_])
    assert torch.allclose(freq, model.priors_, atol=0.01)
    for k, c in enumerate(model.classes_):
        rows = samples[labels == int(c)]
        assert torch.allclose(rows.mean(0), model.means_[k], atol=0.06)
        cov = model.covariances_ if covariance_type == "tied" else model.covariances_[k]
        emp = torch.cov(rows.T, correction=0)
        assert torch.allclose(emp.diagonal() if covariance_type == "diag" else emp, cov, atol=0.08)
    again, _ = model.sample(40_000, random_state=1)
    np.testing.assert_array_equal(samples.numpy(), again)
    fixed, fixed_labels = model.sample(5, y=2, random_state=0)
    assert fixed_labels.tolist() == [2] * 5
    _, given = model.sample(3, y=[0, 1, 2], random_state=0)
    assert given.tolist() == [0, 1, 2]


# ---------------------------------------------------------------------------- bad input
def _toy():
    X = np.array([[0.0, 1.0], [0.5, 1.5], [3.0, 3.0], [3.5, 2.0]])
    return X, np.array([0, 0, 1, 1])


def test_rejects_nan():
    X, y = _toy()
    X[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GaussianClassConditional().fit(X, y)


def test_rejects_length_mismatch():
    X, y = _toy()
    with pytest.raises(ValueError, match="different numbers of rows"):
        GaussianClassConditional().fit(X, y[:3])


def test_rejects_bad_labels_and_accepts_strings():
    X, y = _toy()
    model = GaussianClassConditional().fit(X, np.array(["a", "a", "b", "b"]))   # any class labels, as scikit-learn
    assert model.predict(X).tolist() == ["a", "a", "b", "b"]
    with pytest.raises(ValueError, match="y must hold class labels"):
        GaussianClassConditional().fit(X, np.array([0.0, 0.5, 1.0, 1.0]))
    with pytest.raises(ValueError, match="requires y"):
        GaussianClassConditional().fit(X, None)
    with pytest.raises(ValueError, match="1-D"):
        GaussianClassConditional().fit(X, y.reshape(2, 2))


def test_rejects_one_class():
    X, _ = _toy()
    with pytest.raises(ValueError, match="at least 2 classes"):
        GaussianClassConditional().fit(X, np.zeros(4, dtype=int))


def test_rejects_class_with_one_point():
    X, _ = _toy()
    with pytest.raises(ValueError, match=r"class\(es\) \[2\]"):
        GaussianClassConditional().fit(X, np.array([0, 0, 0, 2]))


def test_rejects_singular_covariance():
    X, y = _toy()
    X = np.hstack([X, X[:, :1]])     # a duplicated column: singular covariance without regularisation
    with pytest.raises(ValueError, match="increase reg_covar"):
        GaussianClassConditional("full", reg_covar=0.0).fit(X, y)
    constant = np.hstack([X, np.ones((4, 1))])
    with pytest.raises(ValueError, match="zero variance"):
        GaussianClassConditional("diag", reg_covar=0.0).fit(constant, y)


def test_rejects_bad_options():
    X, y = _toy()
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianClassConditional("spherical").fit(X, y)
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianClassConditional(reg_covar=-1.0).fit(X, y)


def test_unfitted_and_wrong_width():
    X, y = _toy()
    model = GaussianClassConditional()
    for method in (model.predict, model.predict_proba, model.score_samples, model.log_joint):
        with pytest.raises(NotFittedError):
            method(X)
    with pytest.raises(NotFittedError):
        model.sample(3)
    model.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        model.score_samples(np.array([[np.nan, 1.0]]))


def test_sample_rejects_bad_arguments():
    X, y = _toy()
    model = GaussianClassConditional().fit(X, y)
    with pytest.raises(ValueError, match="n_samples"):
        model.sample(0)
    with pytest.raises(ValueError, match="random_state"):
        model.sample(2, random_state=-1)
    with pytest.raises(ValueError, match="unknown class"):
        model.sample(2, y=7)
    with pytest.raises(ValueError, match="sequence of n_samples=3 labels"):
        model.sample(3, y=[0, 1])


# ---------------------------------------------------------------------------- chapter 01's implement-it exercises
def _run_check(check_source: str, namespace: dict, answer) -> None:
    exec(check_source, {**namespace, "answer": answer})


@pytest.fixture(scope="module")
def chapter01():
    import math

    from genlab.data import load_digits
    from genlab.exercises import check

    images, labels = load_digits("train")
    test_images, _ = load_digits("test")
    X = images.reshape(len(images), -1).double() / 16
    model = GaussianClassConditional("full", reg_covar=1e-3, device="cpu").fit(X, labels)
    return {"full_model": model, "X_test": test_images.reshape(len(test_images), -1).double() / 16,
            "torch": torch, "math": math, "check": check}


@pytest.mark.parametrize("title, mistake", [
    # typical mistake: the log-determinant as sum log diag(L) (half of it)
    ("Exercise 1.1", lambda X, priors, means, covariances: torch.stack([
        torch.log(priors[k]) - 0.5 * (X.shape[1] * math.log(2 * math.pi)
                                      + torch.log(torch.diagonal(torch.linalg.cholesky(covariances[k]))).sum()
                                      + (torch.linalg.solve_triangular(torch.linalg.cholesky(covariances[k]),
                                                                       (X - means[k]).T, upper=False) ** 2).sum(0))
        for k in range(len(priors))], dim=1)),
    # typical mistake: exponentiate first, normalise after (underflows to 0 / 0)
    ("Exercise 1.2", lambda joint: torch.exp(joint) / torch.exp(joint).sum(1, keepdim=True)),
])
def test_chapter01_implement_it_checks(chapter01, title, mistake):
    from genlab.exercises import ExerciseError, NotAttempted

    solution, check_source = exercise_cells("01_fundamentals", title)
    with pytest.raises(NotAttempted):
        _run_check(check_source, chapter01, ...)
    with pytest.raises(ExerciseError, match="hint"):
        _run_check(check_source, chapter01, mistake)
    solved = dict(chapter01)
    exec(solution, solved)
    _run_check(check_source, chapter01, solved["answer"])
