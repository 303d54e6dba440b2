"""scikit-learn's estimator checks on genlab's HMMs.

HMMs take ``fit(X, lengths)`` and ``score(X, lengths)`` as hmmlearn does: the second positional
argument is the sequence lengths, where scikit-learn's checks pass a target ``y``. The checks
therefore run on thin subclasses whose ``fit`` / ``score`` accept and drop that ``y`` (one
sequence); every other method, the validation and the parameters are the estimators' own.
``CategoricalHMM`` reads integer symbols, while most checks feed continuous data: those checks do
not apply to it and are listed below with that reason. Every check expected to fail is listed
with its reason; the rest must pass.
"""
import numpy as np
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from genlab.hmm import CategoricalHMM, GaussianHMM


class GaussianHMMChecked(GaussianHMM):
    """GaussianHMM whose second positional argument is scikit-learn's ``y`` (ignored: one sequence)."""

    def fit(self, X, y=None):
        return super().fit(X)

    def score(self, X, y=None):
        return super().score(X)


class CategoricalHMMChecked(CategoricalHMM):
    """CategoricalHMM whose second positional argument is scikit-learn's ``y`` (ignored)."""

    def fit(self, X, y=None):
        return super().fit(X)

    def score(self, X, y=None):
        return super().score(X)


COMMON = {
    "check_complex_data": "complex X is rejected with genlab's message ('X must be real, got a complex dtype'), "
                          "not scikit-learn's wording",
    "check_methods_sample_order_invariance": "rows are time steps of one sequence: shuffling them changes the "
                                             "sequence, hence the posteriors and the decoded states",
    "check_methods_subset_invariance": "rows are time steps of one sequence: a batch of rows is a shorter "
                                       "sequence, whose posteriors differ from the full sequence's",
}
SYMBOLS = "continuous X: CategoricalHMM reads integer symbols and rejects floats ('X must hold integer symbols')"
CATEGORICAL = {name: SYMBOLS for name in (
    "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_pipeline_consistency",
    "check_estimators_nan_inf", "check_estimators_pickle", "check_f_contiguous_array_estimator",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance", "check_fit2d_1sample",
    "check_fit2d_1feature", "check_dict_unchanged", "check_fit_idempotent", "check_fit_check_is_fitted",
    "check_n_features_in", "check_fit2d_predict1d")}
CATEGORICAL["check_estimators_empty_data_messages"] = SYMBOLS
CATEGORICAL["check_complex_data"] = "complex X is rejected as non-integer symbols, not with scikit-learn's wording"
CATEGORICAL["check_dtype_object"] = "object arrays are rejected as non-integer symbols"


def expected_failures(estimator) -> dict[str, str]:
    if isinstance(estimator, CategoricalHMM):
        return {**COMMON, **CATEGORICAL}
    return dict(COMMON)


@parametrize_with_checks([GaussianHMMChecked(2, n_iter=5, random_state=0, device="cpu"),
                          GaussianHMMChecked(2, covariance_type="full", n_iter=5, random_state=0, device="cpu"),
                          CategoricalHMMChecked(2, n_iter=5, random_state=0, device="cpu")],
                         expected_failed_checks=expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_clone_get_params_set_params_and_refit():
    model = GaussianHMM(3, covariance_type="full", n_iter=4, random_state=0, device="cpu")
    params = model.get_params()
    assert params["n_components"] == 3 and params["covariance_type"] == "full"
    copy = clone(model).set_params(n_components=2, covariance_type="diag")
    assert copy.n_components == 2 and model.n_components == 3
    assert not hasattr(copy, "startprob_") and not hasattr(copy, "device_")
    X = np.random.default_rng(0).normal(size=(60, 2))
    copy.fit(X, [30, 30])
    assert copy.means_.shape == (2, 2) and clone(copy).get_params() == copy.get_params()
    assert not hasattr(clone(copy), "means_")
    symbols = CategoricalHMM(2, n_iter=3, random_state=0, device="cpu").fit(np.array([[0], [1], [2], [1]]))
    assert symbols.n_features is None and symbols.n_features_ == 3
    assert clone(symbols).get_params()["n_features"] is None
