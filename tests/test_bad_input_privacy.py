"""Bad input to genlab.metrics.privacy (table-driven)."""
from __future__ import annotations

import numpy as np
import pytest
from badinput import BAD_ARRAYS, Case, assert_clear_error

from genlab.metrics import privacy

COVERED = {"metrics.privacy.distance_to_closest_record", "metrics.privacy.membership_inference_advantage",
           "metrics.privacy.advantage_curve"}

X = np.zeros((4, 2))
S = np.arange(5.0)
dcr, mia = privacy.distance_to_closest_record, privacy.membership_inference_advantage

CASES = [
    *[Case("dcr", lambda bad=bad: dcr(bad, X), "queries", str(i)) for i, bad in enumerate(BAD_ARRAYS)],
    *[Case("dcr", lambda bad=bad: dcr(X, bad), "records", str(i)) for i, bad in enumerate(BAD_ARRAYS)],
    Case("dcr", lambda: dcr(X, np.zeros((4, 3))), "columns"),
    Case("dcr", lambda: dcr(X, X, batch_size=0), "batch_size"),
    Case("dcr", lambda: dcr(X, X, standardize=1), "standardize"),
    Case("dcr", lambda: dcr(X, X, exclude_self="yes"), "exclude_self"),
    Case("dcr", lambda: dcr(X, X[:3], exclude_self=True), "exclude_self"),
    Case("dcr", lambda: dcr(X[:1], X[:1], exclude_self=True), "exclude_self"),
    Case("mia", lambda: mia(np.array([1.0, np.nan]), S), "member_scores"),
    Case("mia", lambda: mia(S, np.array([1.0])), "nonmember_scores"),
    Case("mia", lambda: mia(S, np.zeros((3, 2))), "nonmember_scores"),
    Case("mia", lambda: mia("abc", S), "member_scores"),
    Case("mia", lambda: mia(S, S, n_bootstrap=2), "n_bootstrap"),
    Case("mia", lambda: mia(S, S, n_bootstrap=20.0), "n_bootstrap"),
    Case("mia", lambda: mia(S, S, confidence=1.0), "confidence"),
    Case("mia", lambda: mia(S, S, random_state=-1), "random_state"),
    Case("advantage_curve", lambda: privacy.advantage_curve(S, [np.inf, 1.0]), "nonmember_scores"),
    Case("advantage_curve", lambda: privacy.advantage_curve([], S), "member_scores"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input_raises_a_clear_error(case):
    assert_clear_error(case)
