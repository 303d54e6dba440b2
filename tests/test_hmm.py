"""genlab.hmm against hmmlearn 0.3.3 (the reference), plus sampling and input validation.

Tolerances: log-likelihoods agree to a *relative* 1e-6 (in practice ~1e-15), posteriors to an
absolute 1e-6, Viterbi paths exactly; after Baum-Welch from the same start, parameters agree
to an absolute 1e-4 and the log-likelihood history to a relative 1e-6.
"""
import math

import numpy as np
import pytest
import torch
from hmmlearn import hmm as reference

from genlab.base import NotFittedError
from genlab.hmm import CategoricalHMM, GaussianHMM

CPU = "cpu"
LENGTHS = [120, 1, 250, 229]          # includes a one-step sequence; sums to 600
STARTPROB = np.array([0.6, 0.3, 0.1])
TRANSMAT = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]])
MEANS = np.array([[0.0, 0.0], [3.0, 1.0], [-2.0, 4.0]])
COVARS = {"spherical": np.array([1.0, 0.5, 2.0]),
          "diag": np.array([[1.0, 0.5], [0.4, 1.0], [2.0, 1.0]]),
          "full": np.array([[[1.0, 0.3], [0.3, 1.0]], [[0.5, 0.0], [0.0, 0.4]], [[2.0, -0.5], [-0.5, 1.0]]])}
EMISSIONPROB = np.array([[0.7, 0.2, 0.05, 0.05], [0.1, 0.1, 0.4, 0.4], [0.25, 0.25, 0.25, 0.25]])


def gaussian_pair(covariance_type, **kwargs):
    """An hmmlearn model and a genlab model with the same parameters."""
    ref = reference.GaussianHMM(3, covariance_type=covariance_type, init_params="", **kwargs)
    ours = GaussianHMM(3, covariance_type=covariance_type, init_params="", device=CPU, **kwargs)
    for model in (ref, ours):
        model.startprob_, model.transmat_ = STARTPROB, TRANSMAT
        model.means_, model.covars_ = MEANS, COVARS[covariance_type]
    return ref, ours


def categorical_pair(**kwargs):
    ref = reference.CategoricalHMM(3, init_params="", **kwargs)
    ours = CategoricalHMM(3, init_params="", device=CPU, **kwargs)
    for model in (ref, ours):
        model.startprob_, model.transmat_, model.emissionprob_ = STARTPROB, TRANSMAT, EMISSIONPROB
    return ref, ours


def assert_same_inference(ref, ours, X, lengths):
    ref_logprob, ref_post = ref.score_samples(X, lengths)
    logprob, post = ours.score_samples(X, lengths)
    assert abs(logprob - ref_logprob) <= 1e-6 * abs(ref_logprob)
    assert abs(ours.score(X, lengths) - ref_logprob) <= 1e-6 * abs(ref_logprob)
    np.testing.assert_allclose(post, ref_post, atol=1e-6)
    ref_vit, ref_states = ref.decode(X, lengths)
    vit, states = ours.decode(X, lengths)
    assert abs(vit - ref_vit) <= 1e-6 * abs(ref_vit)
    np.testing.assert_array_equal(states, ref_states)
    np.testing.assert_array_equal(ours.predict(X, lengths), ref.predict(X, lengths))


# ----------------------------------------------------------------------------- parity
@pytest.mark.parametrize("implementation", ["log", "scaling"])
@pytest.mark.parametrize("covariance_type", ["spherical", "diag", "full"])
@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_gaussian_inference_matches_hmmlearn(covariance_type, implementation, lengths):
    ref, ours = gaussian_pair(covariance_type, implementation=implementation)
    X, _ = ref.sample(600, random_state=0)
    assert_same_inference(ref, ours, X, lengths)


@pytest.mark.parametrize("implementation", ["log", "scaling"])
@pytest.mark.parametrize("lengths", [None, [200, 1, 299]])
def test_categorical_inference_matches_hmmlearn(implementation, lengths):
    ref, ours = categorical_pair(implementation=implementation)
    X, _ = ref.sample(500, random_state=1)
    assert_same_inference(ref, ours, X, lengths)


def assert_same_fit(ref, ours, names):
    np.testing.assert_allclose(ours.monitor_.history, list(ref.monitor_.history), rtol=1e-6)
    assert ours.n_iter_ == ref.monitor_.iter
    for name in names:
        np.testing.assert_allclose(np.asarray(getattr(ours, name)), getattr(ref, name), atol=1e-4, err_msg=name)


@pytest.mark.parametrize("implementation", ["log", "scaling"])
@pytest.mark.parametrize("covariance_type", ["spherical", "diag", "full"])
def test_gaussian_baum_welch_matches_hmmlearn(covariance_type, implementation):
    ref, ours = gaussian_pair(covariance_type, n_iter=15, tol=-np.inf, implementation=implementation)
    X, _ = ref.sample(600, random_state=2)
    ref.fit(X, LENGTHS)
    ours.fit(X, LENGTHS)
    assert ours.n_iter_ == 15 and not ours.converged_
    assert_same_fit(ref, ours, ["startprob_", "transmat_", "means_"])
    # hmmlearn's spherical covars_ getter is broken after fitting; compare the variances themselves.
    np.testing.assert_allclose(torch.diagonal(ours.covars_, dim1=1, dim2=2).numpy(),
                               ref._covars_ if covariance_type != "full" else np.diagonal(ref._covars_, 0, 1, 2),
                               atol=1e-4)


@pytest.mark.parametrize("lengths", [None, [200, 1, 299]])
def test_categorical_baum_welch_matches_hmmlearn(lengths):
    ref, ours = categorical_pair(n_iter=15, tol=-np.inf)
    X, _ = ref.sample(500, random_state=3)
    ref.fit(X, lengths)
    ours.fit(X, lengths)
    assert_same_fit(ref, ours, ["startprob_", "transmat_", "emissionprob_"])


def test_initialisation_and_fit_match_hmmlearn_for_the_same_random_state():
    ref, _ = gaussian_pair("diag")
    X, _ = ref.sample(400, random_state=4)
    ref_fit = reference.GaussianHMM(3, n_iter=8, tol=-np.inf, random_state=7).fit(X, [150, 250])
    ours = GaussianHMM(3, n_iter=8, tol=-np.inf, random_state=7, device=CPU).fit(X, [150, 250])
    assert_same_fit(ref_fit, ours, ["startprob_", "transmat_", "means_", "covars_"])
    ref_cat, _ = categorical_pair()
    S, _ = ref_cat.sample(400, random_state=4)
    ref_fit = reference.CategoricalHMM(3, n_iter=8, tol=-np.inf, random_state=7).fit(S)
    ours = CategoricalHMM(3, n_iter=8, tol=-np.inf, random_state=7, device=CPU).fit(S)
    assert_same_fit(ref_fit, ours, ["startprob_", "transmat_", "emissionprob_"])


def test_tol_stops_early_and_log_likelihood_never_decreases():
    ref, model = gaussian_pair("full", n_iter=500, tol=1e-3)
    X, _ = ref.sample(600, random_state=5)
    model.means_ = MEANS + 1.5          # a start away from the truth, so EM has work to do
    model.fit(X, LENGTHS)
    history = np.array(model.monitor_.history)
    assert model.converged_ and model.n_iter_ < 500 and model.monitor_.converged
    assert history[-1] - history[-2] < 1e-3
    assert np.all(np.diff(history) >= -1e-8 * np.abs(history[1:])), np.diff(history).min()


def test_map_decoder_is_the_argmax_of_the_posteriors():
    _, ours = gaussian_pair("diag")
    X, _ = ours.sample(300, random_state=6)
    _, states = ours.decode(X, algorithm="map")
    np.testing.assert_array_equal(states, ours.predict_proba(X).argmax(1))


def test_scaling_recovers_from_underflow_by_switching_to_log_space():
    # State 1 emits the observation 30 standard deviations closer, but is unreachable: on the
    # scaled probability scale the only reachable state has probability exp(-450) -> 0.
    def model(implementation):
        hmm = GaussianHMM(2, init_params="", implementation=implementation, device=CPU)
        hmm.startprob_, hmm.transmat_ = [1.0, 0.0], np.eye(2)
        hmm.means_, hmm.covars_ = [[0.0], [30.0]], [[1.0], [1.0]]
        return hmm
    X = np.array([[0.0], [30.0], [0.0]])
    log_score = model("log").score(X)
    assert math.isfinite(log_score)
    assert model("scaling").score(X) == pytest.approx(log_score, rel=1e-12)


def test_sample_shapes_reproducibility_and_transition_frequencies():
    _, ours = gaussian_pair("full")
    X, states = ours.sample(20000, random_state=8)
    assert X.shape == (20000, 2) and states.shape == (20000,)
    assert states.min() >= 0 and states.max() <= 2
    X2, states2 = ours.sample(20000, random_state=8)
    assert isinstance(X, np.ndarray) and np.array_equal(X, X2) and np.array_equal(states, states2)
    counts = np.zeros((3, 3))
    np.add.at(counts, (states[:-1], states[1:]), 1)
    # >= 2,600 visits per state: the binomial standard error of each frequency is below 0.008.
    np.testing.assert_allclose(counts / counts.sum(1, keepdims=True), TRANSMAT, atol=0.04)
    for k in range(3):
        np.testing.assert_allclose(X[states == k].mean(0), MEANS[k], atol=0.1)
    _, continued = ours.sample(5, random_state=0, currstate=2)
    assert continued[0] == 2
    _, ours_cat = categorical_pair()
    symbols, states = ours_cat.sample(50, random_state=9)
    assert symbols.shape == (50, 1) and states.shape == (50,)
    assert symbols.dtype == np.int64 and 0 <= int(symbols.min()) and int(symbols.max()) <= 3


def test_covars_are_exposed_as_full_matrices_and_bic_counts_parameters():
    _, ours = gaussian_pair("diag")
    assert ours.covars_.shape == (3, 2, 2)
    np.testing.assert_allclose(ours.covars_.numpy(), np.stack([np.diag(c) for c in COVARS["diag"]]))
    ref, _ = gaussian_pair("diag")
    X, _ = ref.sample(100, random_state=0)
    assert ours.bic(X) == pytest.approx(ref.bic(X), rel=1e-9)
    assert ours.aic(X) == pytest.approx(ref.aic(X), rel=1e-9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    ref, cpu = gaussian_pair("full", n_iter=5, tol=-np.inf)
    X, _ = ref.sample(600, random_state=0)
    gpu = GaussianHMM(3, covariance_type="full", init_params="", n_iter=5, tol=-np.inf, device="cuda")
    gpu.startprob_, gpu.transmat_, gpu.means_, gpu.covars_ = STARTPROB, TRANSMAT, MEANS, COVARS["full"]
    assert gpu.score(X, LENGTHS) == pytest.approx(cpu.score(X, LENGTHS), rel=1e-9)
    assert np.array_equal(gpu.predict(X, LENGTHS), cpu.predict(X, LENGTHS))
    gpu.fit(X, LENGTHS)
    cpu.fit(X, LENGTHS)
    np.testing.assert_allclose(gpu.means_.cpu().numpy(), cpu.means_.numpy(), atol=1e-8)


# ----------------------------------------------------------------------------- errors
def test_unfitted_model_raises_not_fitted():
    for method in ("score", "score_samples", "predict", "predict_proba", "decode"):
        with pytest.raises(NotFittedError, match="not fitted"):
            getattr(GaussianHMM(2, device=CPU), method)(np.zeros((5, 1)))
    with pytest.raises(NotFittedError, match="not fitted"):
        CategoricalHMM(2, device=CPU).sample(3)


@pytest.mark.parametrize("X, message", [
    (np.array([[0.0], [np.nan], [1.0]]), "NaN or infinite"),
    (np.array([[0.0], [np.inf], [1.0]]), "NaN or infinite"),
    (np.zeros((4, 2, 1)), "must be 2-D"),
    (np.zeros((0, 1)), "at least 1 row"),
    (np.array([["a"], ["b"]]), "numeric"),
])
def test_gaussian_rejects_bad_data(X, message):
    with pytest.raises(ValueError, match=message):
        GaussianHMM(1, device=CPU).fit(X)


def test_gaussian_rejects_wrong_feature_count_and_too_few_rows():
    _, ours = gaussian_pair("diag")
    with pytest.raises(ValueError, match="features"):
        ours.score(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="fewer than n_components"):
        GaussianHMM(3, device=CPU).fit(np.zeros((2, 1)))


@pytest.mark.parametrize("lengths, message", [
    ([5, 4], "sum to 9"),
    ([5, 0, 5], "at least 1 time step"),
    ([5, -1, 6], "at least 1 time step"),
    ([5.0, 5.0], "integers"),
    ([[5, 5]], "1-D"),
    ([], "1-D"),
])
def test_bad_lengths_are_rejected(lengths, message):
    _, ours = gaussian_pair("diag")
    with pytest.raises(ValueError, match=message):
        ours.score(np.zeros((10, 2)), lengths)
    with pytest.raises(ValueError, match=message):
        GaussianHMM(1, device=CPU).fit(np.zeros((10, 2)), lengths)


@pytest.mark.parametrize("X, message", [
    (np.array([[0], [-1], [2]]), "negative symbols"),
    (np.array([[0], [4], [2]]), "only emits 0..3"),
    (np.array([[0.0], [1.0]]), "integer symbols"),
    (torch.tensor([[0.0], [1.0]]), "integer symbols"),
    (np.array([[0, 1], [1, 0]]), "shape"),
])
def test_categorical_rejects_bad_symbols(X, message):
    _, ours = categorical_pair()
    with pytest.raises(ValueError, match=message):
        ours.score(X)


def test_categorical_n_features_is_inferred_and_checked():
    model = CategoricalHMM(2, n_iter=3, random_state=0, device=CPU).fit(np.array([[0], [2], [1], [2]]))
    assert model.n_features is None and model.n_features_ == 3 and model.emissionprob_.shape == (2, 3)
    with pytest.raises(ValueError, match="only emits 0..2"):
        model.score(np.array([[3]]))
    with pytest.raises(ValueError, match="n_features must be an integer"):
        CategoricalHMM(2, n_features=0).fit(np.array([[0], [1], [1]]))


@pytest.mark.parametrize("kwargs, message", [
    ({"covariance_type": "tied"}, "covariance_type"),
    ({"params": "stx"}, "params"),
    ({"init_params": "q"}, "init_params"),
    ({"implementation": "fast"}, "implementation"),
    ({"algorithm": "beam"}, "algorithm"),
    ({"n_iter": -1}, "n_iter"),
    ({"n_components": 0}, "n_components"),
    ({"tol": float("nan")}, "tol"),
    ({"covars_prior": -1.0}, "covars_prior"),
    ({"dtype": torch.int32}, "dtype"),
])
def test_bad_settings_are_rejected(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        GaussianHMM(**{"n_components": 2, "device": CPU, **kwargs}).fit(np.zeros((10, 1)))


def test_bad_parameters_and_arguments_are_rejected():
    model = GaussianHMM(2, device=CPU)
    with pytest.raises(ValueError, match="sum to 1"):
        model.startprob_ = [0.5, 0.6]
    with pytest.raises(ValueError, match="negative"):
        model.transmat_ = [[1.5, -0.5], [0.5, 0.5]]
    with pytest.raises(ValueError, match="shape"):
        model.transmat_ = np.eye(3)
    with pytest.raises(ValueError, match="positive"):
        model.covars_ = [[1.0], [-1.0]]
    with pytest.raises(ValueError, match="NaN"):
        model.means_ = [[0.0], [np.nan]]
    full = GaussianHMM(2, covariance_type="full", device=CPU)
    with pytest.raises(ValueError, match="positive definite"):
        full.covars_ = np.array([[[1.0, 2.0], [2.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
    with pytest.raises(ValueError, match="symmetric"):
        full.covars_ = np.array([[[1.0, 0.5], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
    _, ours = gaussian_pair("diag")
    with pytest.raises(ValueError, match="algorithm"):
        ours.decode(np.zeros((4, 2)), algorithm="beam")
    with pytest.raises(ValueError, match="n_samples"):
        ours.sample(0)
    with pytest.raises(ValueError, match="currstate"):
        ours.sample(3, currstate=5)


# ----------------------------------------------------------------------------- scan and time loop
@pytest.fixture(params=["scan", "loop"])
def path(request, monkeypatch):
    """Force the parallel prefix scan or the time loop (genlab picks one by a cost model)."""
    import genlab.hmm as module

    monkeypatch.setattr(module, "_use_scan", lambda batch, n_states, device: request.param == "scan")
    return request.param


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_scan_and_loop_both_match_hmmlearn(path, covariance_type, lengths):
    ref, ours = gaussian_pair(covariance_type, n_iter=10, tol=-np.inf)
    X, _ = ref.sample(600, random_state=11)
    assert_same_inference(ref, ours, X, lengths)
    ref.fit(X, lengths)
    ours.fit(X, lengths)
    assert_same_fit(ref, ours, ["startprob_", "transmat_", "means_"])
    ref_cat, ours_cat = categorical_pair(n_iter=10, tol=-np.inf)
    S, _ = ref_cat.sample(500, random_state=12)
    assert_same_inference(ref_cat, ours_cat, S, [200, 1, 299])


def test_scan_falls_back_to_log_space_on_underflow(path):
    hmm = GaussianHMM(2, init_params="", device=CPU)
    hmm.startprob_, hmm.transmat_ = [1.0, 0.0], np.eye(2)
    hmm.means_, hmm.covars_ = [[0.0], [30.0]], [[1.0], [1.0]]
    X = np.array([[0.0], [30.0], [0.0], [0.1], [0.2]])
    # The only reachable state emits x = 30 with log-density -450: exact in log space.
    by_hand = sum(-0.5 * (math.log(2 * math.pi) + x ** 2) for x in X[:, 0])
    assert hmm.score(X) == pytest.approx(by_hand, rel=1e-12)
    np.testing.assert_allclose(hmm.predict_proba(X)[:, 0], 1.0)
    np.testing.assert_array_equal(hmm.predict(X), [0, 0, 0, 0, 0])


def test_long_sequence_matches_hmmlearn_and_torch_in_gives_torch_out():
    """One 5,000-step sequence (the scan's home ground): same log-likelihood, posteriors and path."""
    ref, ours = gaussian_pair("full")
    X, _ = ref.sample(5000, random_state=13)
    assert_same_inference(ref, ours, X, None)
    X_t = torch.as_tensor(X)
    post = ours.predict_proba(X_t)
    assert isinstance(post, torch.Tensor) and post.device == X_t.device
    assert isinstance(ours.predict_proba(X), np.ndarray)


# ----------------------------------------------------------------------------- chapter 04's implement-it exercise
def _run_forward_check(answer):
    from genlab.exercises import check
    from genlab.hmm import check_forward_answer

    return check("Exercise 4.1", answer, predicate=lambda f: check_forward_answer(f) is None,
                 describe="a function whose log p(x) equals genlab's GaussianHMM.score on a 1,000-step sequence",
                 hint=check_forward_answer(answer) if answer is not Ellipsis else None)


def _scaled_forward(startprob, transmat, log_b, *, use_start=True, rescale=True):
    shift = log_b.max(axis=1, keepdims=True)
    b = np.exp(log_b - shift) if rescale else np.exp(log_b)
    alpha = (startprob if use_start else np.ones_like(startprob)) * b[0]
    total = 0.0
    for t in range(len(b)):
        if t > 0:
            alpha = (alpha @ transmat) * b[t]
        if rescale:
            c = alpha.sum()
            total += np.log(c)
            alpha = alpha / c
    return float(total + shift.sum()) if rescale else float(np.log(alpha.sum()))


def test_forward_exercise_check_fails_helpfully_and_passes_the_solution():
    from genlab.exercises import ExerciseError, NotAttempted

    with pytest.raises(NotAttempted):
        _run_forward_check(...)
    with pytest.raises(ExerciseError, match="initial distribution is missing"):
        _run_forward_check(lambda pi, A, log_b: _scaled_forward(pi, A, log_b, use_start=False))
    with np.errstate(divide="ignore", under="ignore"):
        with pytest.raises(ExerciseError, match="underflow"):
            _run_forward_check(lambda pi, A, log_b: _scaled_forward(pi, A, log_b, rescale=False))
    with pytest.raises(ExerciseError, match="transposed"):
        _run_forward_check(lambda pi, A, log_b: _scaled_forward(pi, A.T, log_b))
    with pytest.raises(ExerciseError, match="a float"):
        _run_forward_check(lambda pi, A, log_b: np.zeros(3))
    with pytest.raises(ExerciseError, match="function"):
        _run_forward_check(3.0)
    assert _run_forward_check(_scaled_forward)


def test_profile_hmm_samples_family_strings_and_scores_them_above_shuffles():
    import numpy as np

    from genlab.hmm import AMINO_ACIDS, profile_hmm

    model = profile_hmm(12, conservation=0.9, p_insert=0.0, p_delete=0.0, random_state=0)
    assert model.transmat_.shape == (25, 25) and model.emissionprob_.shape == (25, len(AMINO_ACIDS))
    np.testing.assert_allclose(model.transmat_.sum(1).numpy(), 1.0)
    x, states = model.sample(12, random_state=0)
    assert states.tolist() == list(range(12))                 # no insertions or deletions: M_0 .. M_11
    consensus = model.emissionprob_[:12].argmax(1).numpy()
    assert np.mean(x[:, 0] == consensus) > 0.5
    shuffled = np.random.default_rng(0).permutation(x[:, 0]).reshape(-1, 1)
    assert model.score(x) > model.score(shuffled)
