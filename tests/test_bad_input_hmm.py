"""Bad input to genlab's hidden Markov models (table-driven): every public callable of
:class:`genlab.hmm.GaussianHMM` and :class:`genlab.hmm.CategoricalHMM` must refuse NaN, infinity,
overflowing magnitudes, empty or mis-shaped data, ``lengths`` that do not add up, strings, bad
sizes, unknown options and an unfitted model with a clear error naming the argument."""
from __future__ import annotations

import numpy as np
import pytest
from badinput import BAD_ARRAYS, BAD_SEEDS, BAD_SIZES, Case, assert_clear_error

from genlab import hmm

#: The public callables of genlab.hmm, as tests/test_bad_input_coverage.py names them (classes and
#: module functions; the estimators' methods are inherited from a shared base class).
COVERED = {"hmm.GaussianHMM", "hmm.CategoricalHMM", "hmm.check_forward_answer"}
#: What the table walks in detail: every public method and settable fitted attribute of both estimators.
WALKED = COVERED | {
    "hmm.GaussianHMM.fit", "hmm.GaussianHMM.score", "hmm.GaussianHMM.score_samples",
    "hmm.GaussianHMM.predict", "hmm.GaussianHMM.predict_proba", "hmm.GaussianHMM.decode",
    "hmm.GaussianHMM.sample", "hmm.GaussianHMM.bic", "hmm.GaussianHMM.aic",
    "hmm.GaussianHMM.startprob_", "hmm.GaussianHMM.transmat_", "hmm.GaussianHMM.means_", "hmm.GaussianHMM.covars_",
    "hmm.CategoricalHMM.fit", "hmm.CategoricalHMM.score", "hmm.CategoricalHMM.score_samples",
    "hmm.CategoricalHMM.predict", "hmm.CategoricalHMM.predict_proba", "hmm.CategoricalHMM.decode",
    "hmm.CategoricalHMM.sample", "hmm.CategoricalHMM.bic", "hmm.CategoricalHMM.aic",
    "hmm.CategoricalHMM.emissionprob_",
}

X = np.random.default_rng(0).normal(size=(40, 2))
S = np.random.default_rng(0).integers(0, 3, size=(40, 1))
INFERENCE = ("score", "score_samples", "predict", "predict_proba", "decode", "bic", "aic")


def gaussian(module=hmm, **kwargs):
    return module.GaussianHMM(2, n_iter=3, random_state=0, device="cpu", **kwargs).fit(X, [20, 20])


def categorical(module=hmm, **kwargs):
    return module.CategoricalHMM(2, n_iter=3, random_state=0, device="cpu", **kwargs).fit(S)


def cases(module=hmm) -> list[Case]:
    """The table; ``module`` is the HMM module under test (a probe may pass another version)."""
    G, C = module.GaussianHMM, module.CategoricalHMM
    fitted_g, fitted_c = gaussian(module), categorical(module)
    out: list[Case] = []
    # --- data X: fit and every inference method
    bad_data = [(b, repr(b)[:30]) for b in BAD_ARRAYS] + [
        (np.zeros((4, 2, 1)), "3-D"), (X[:, :1].ravel(), "1-D"), (X + 1j, "complex"),
        (np.array([[1.0, 2.0]] * 39 + [[1e300, 0.0]]), "one 1e300 row")]
    for bad, label in bad_data:
        out.append(Case("hmm.GaussianHMM.fit", lambda b=bad: G(2, device="cpu").fit(b), "X", label))
        for method in INFERENCE:
            if label == "1-D":
                continue   # a 1-D X is one feature after fit: refused for 2 features below
            out.append(Case(f"hmm.GaussianHMM.{method}", lambda b=bad, m=method: getattr(fitted_g, m)(b), "X", label))
    for method in INFERENCE:
        out.append(Case(f"hmm.GaussianHMM.{method}", lambda m=method: getattr(fitted_g, m)(np.zeros((5, 3))),
                        "features", "3 features"))
        out.append(Case(f"hmm.GaussianHMM.{method}", lambda m=method: getattr(fitted_g, m)(np.zeros(5)),
                        "X", "1-D for 2 features"))
    bad_symbols = [(np.array([[0.5], [1.0]]), "floats"), (np.array([[0], [-1], [2]]), "negative"),
                   (np.array([[0, 1], [1, 0]]), "2 columns"), (np.zeros((0, 1), dtype=int), "empty"),
                   (np.array([["a"], ["b"]]), "strings"), ("abc", "a string"), (np.array([[np.nan]]), "NaN")]
    for bad, label in bad_symbols:
        out.append(Case("hmm.CategoricalHMM.fit", lambda b=bad: C(2, device="cpu").fit(b), "X", label))
        for method in INFERENCE:
            out.append(Case(f"hmm.CategoricalHMM.{method}", lambda b=bad, m=method: getattr(fitted_c, m)(b), "X",
                            label))
    for method in INFERENCE:
        out.append(Case(f"hmm.CategoricalHMM.{method}", lambda m=method: getattr(fitted_c, m)(np.array([[7]])),
                        "symbol", "unknown symbol"))
    # --- lengths
    bad_lengths = [([15, 15], "sum 30 for 40 rows"), ([0, 40], "zero"), ([-5, 45], "negative"),
                   ([20.0, 20.0], "floats"), ([[20, 20]], "2-D"), ([], "empty"), ("40", "string"),
                   ([True] * 40, "booleans"), ([20, None], "None inside")]
    for bad, label in bad_lengths:
        out.append(Case("hmm.GaussianHMM.fit", lambda b=bad: G(2, device="cpu").fit(X, b), "lengths", label))
        out.append(Case("hmm.CategoricalHMM.fit", lambda b=bad: C(2, device="cpu").fit(S, b), "lengths", label))
        for method in INFERENCE:
            out.append(Case(f"hmm.GaussianHMM.{method}", lambda b=bad, m=method: getattr(fitted_g, m)(X, b),
                            "lengths", label))
            out.append(Case(f"hmm.CategoricalHMM.{method}", lambda b=bad, m=method: getattr(fitted_c, m)(S, b),
                            "lengths", label))
    # --- settings, checked at fit
    for bad in BAD_SIZES:
        out.append(Case("hmm.GaussianHMM", lambda b=bad: G(b, device="cpu").fit(X), "n_components", repr(bad)))
        out.append(Case("hmm.CategoricalHMM", lambda b=bad: C(b, device="cpu").fit(S), "n_components", repr(bad)))
        if bad != 0:
            out.append(Case("hmm.GaussianHMM", lambda b=bad: G(2, n_iter=b, device="cpu").fit(X), "n_iter", repr(bad)))
            out.append(Case("hmm.CategoricalHMM", lambda b=bad: C(2, n_features=b, device="cpu").fit(S),
                            "n_features", repr(bad)) if bad is not None else
                       Case("hmm.CategoricalHMM", lambda: C(2, n_iter=None, device="cpu").fit(S), "n_iter", "None"))
    settings = {
        "covariance_type": ["tied", 3], "implementation": ["fast"], "algorithm": ["beam", None],
        "params": ["stx", 5], "init_params": ["q"], "tol": [float("nan"), "a"],
        "min_covar": [-1.0, float("nan")], "covars_prior": [-1.0], "covars_weight": [float("inf")],
        "means_prior": [float("nan")], "means_weight": ["a"], "startprob_prior": [-0.5], "transmat_prior": [True],
        "dtype": ["int32", "float16"], "device": ["tpu", 3], "random_state": BAD_SEEDS,
    }
    for name, values in settings.items():
        for bad in values:
            out.append(Case("hmm.GaussianHMM", lambda n=name, b=bad: G(2, device="cpu", **{n: b}).fit(X)
                            if n != "device" else G(2, device=b).fit(X), name, repr(bad)))
    for name, bad in [("emissionprob_prior", -1.0), ("params", "stm"), ("algorithm", "beam"), ("dtype", "int8")]:
        out.append(Case("hmm.CategoricalHMM", lambda n=name, b=bad: C(2, device="cpu", **{n: b}).fit(S), name,
                        repr(bad)))
    # --- too little data for the states (both families alike)
    out.append(Case("hmm.GaussianHMM.fit", lambda: G(5, device="cpu").fit(X[:3]), "n_components", "5 states, 3 rows"))
    out.append(Case("hmm.CategoricalHMM.fit", lambda: C(5, device="cpu").fit(S[:3]), "n_components",
                    "5 states, 3 rows"))
    out.append(Case("hmm.CategoricalHMM.fit", lambda: C(2, n_features=2, device="cpu").fit(S), "n_features",
                    "symbol 2 with n_features=2"))
    # --- decode's algorithm, sample's arguments
    for bad in ["beam", 3]:
        out.append(Case("hmm.GaussianHMM.decode", lambda b=bad: fitted_g.decode(X, algorithm=b), "algorithm",
                        repr(bad)))
        out.append(Case("hmm.CategoricalHMM.decode", lambda b=bad: fitted_c.decode(S, algorithm=b), "algorithm",
                        repr(bad)))
    for bad in BAD_SIZES:
        out.append(Case("hmm.GaussianHMM.sample", lambda b=bad: fitted_g.sample(b), "n_samples", repr(bad)))
        out.append(Case("hmm.CategoricalHMM.sample", lambda b=bad: fitted_c.sample(b), "n_samples", repr(bad)))
    for bad in BAD_SEEDS + [np.random.RandomState(0)]:
        out.append(Case("hmm.GaussianHMM.sample", lambda b=bad: fitted_g.sample(3, random_state=b), "random_state",
                        repr(bad)[:20]))
    for bad in [2, -1, 1.0, "a", True]:
        out.append(Case("hmm.GaussianHMM.sample", lambda b=bad: fitted_g.sample(3, currstate=b), "currstate",
                        repr(bad)))
    # --- unfitted
    for family, data in (("GaussianHMM", X), ("CategoricalHMM", S)):
        for method in INFERENCE:
            out.append(Case(f"hmm.{family}.{method}",
                            lambda f=family, m=method, d=data: getattr(getattr(module, f)(2, device="cpu"), m)(d),
                            "fit", "unfitted"))
        out.append(Case(f"hmm.{family}.sample", lambda f=family: getattr(module, f)(2, device="cpu").sample(3),
                        "fit", "unfitted"))
    out.append(Case("hmm.GaussianHMM.means_", lambda: G(2, device="cpu").means_, "fit", "unfitted"))
    # --- parameters set by hand
    model = G(2, device="cpu")
    setters = [("startprob_", [0.5, 0.6], "sum to 1"), ("startprob_", [1.5, -0.5], "negative"),
               ("startprob_", [1.0], "shape"), ("startprob_", "ab", "string"),
               ("transmat_", np.eye(3), "shape"), ("transmat_", [[np.nan, 1], [0, 1]], "NaN"),
               ("means_", [[0.0], [np.nan]], "NaN"), ("means_", [0.0, 1.0], "1-D"),
               ("covars_", [[1.0], [-1.0]], "negative"),
               ("covars_", [[[1.0, 0.5], [0.5, 1.0]]] * 2, "non-diagonal for diag")]
    for name, bad, label in setters:
        out.append(Case(f"hmm.GaussianHMM.{name}", lambda n=name, b=bad: setattr(model, n, b), name, label))
    cat = C(2, n_features=3, device="cpu")
    for bad, label in [([[0.5, 0.5, 0.0]] * 2 + [[1, 0, 0]], "3 rows"), ([[0.5, 0.5]] * 2, "2 symbols for 3"),
                       ([[1.5, -0.5, 0.0]] * 2, "negative")]:
        out.append(Case("hmm.CategoricalHMM.emissionprob_", lambda b=bad: setattr(cat, "emissionprob_", b),
                        "emissionprob_", label))
    for bad in BAD_SEEDS:
        out.append(Case("hmm.check_forward_answer", lambda b=bad: module.check_forward_answer(lambda *a: 0.0,
                                                                                          random_state=b),
                        "random_state", repr(bad)[:20]))
    return out


CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input_is_refused_clearly(case):
    assert_clear_error(case)


def test_covered_names_are_all_walked():
    assert {case.target for case in CASES} == WALKED


def test_overflowing_row_is_refused_not_turned_into_nan():
    """One 1e300 row once made every posterior NaN; now it is refused, naming X and the magnitude."""
    model = gaussian()
    bad = X.copy()
    bad[5] = 1e300
    with pytest.raises(ValueError, match="X has values of magnitude"):
        model.predict_proba(bad)
    assert np.isfinite(model.predict_proba(X)).all()
