"""Privacy metrics of synthetic data: distance to closest record and membership-inference advantage."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.metrics import (
    MembershipInference,
    advantage_curve,
    distance_to_closest_record,
    membership_inference_advantage,
)


def test_dcr_matches_brute_force_and_keeps_the_input_type():
    rng = np.random.default_rng(0)
    q, r = rng.normal(size=(7, 3)), rng.normal(size=(11, 3))
    expected = np.sqrt(((q[:, None] - r[None]) ** 2).sum(-1)).min(1)
    got = distance_to_closest_record(q, r, batch_size=3)
    assert isinstance(got, np.ndarray) and got.shape == (7,)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    got_t = distance_to_closest_record(torch.as_tensor(q), torch.as_tensor(r))
    assert isinstance(got_t, torch.Tensor)
    np.testing.assert_allclose(got_t.numpy(), expected, rtol=1e-12)


def test_dcr_of_a_copy_is_exactly_zero_and_exclude_self_skips_it():
    rng = np.random.default_rng(1)
    r = rng.normal(size=(20, 4)) * 1e3
    assert np.all(distance_to_closest_record(r[:5], r) == 0.0)
    own = distance_to_closest_record(r, r, exclude_self=True)
    full = np.sqrt(((r[:, None] - r[None]) ** 2).sum(-1))
    np.fill_diagonal(full, np.inf)
    np.testing.assert_allclose(own, full.min(1), rtol=1e-12)


def test_dcr_standardize_removes_the_units():
    rng = np.random.default_rng(2)
    q, r = rng.normal(size=(6, 2)), rng.normal(size=(30, 2))
    scale = np.array([1.0, 1000.0])
    a = distance_to_closest_record(q, r, standardize=True)
    b = distance_to_closest_record(q * scale, r * scale, standardize=True)
    np.testing.assert_allclose(a, b, rtol=1e-9)


def test_advantage_is_zero_for_identical_and_one_for_separated_scores():
    same = np.arange(50.0)
    result = membership_inference_advantage(same, same, n_bootstrap=50)
    assert isinstance(result, MembershipInference)
    assert result.advantage == 0.0 and result.auc == pytest.approx(0.5)
    apart = membership_inference_advantage(np.arange(50.0) + 100, np.arange(50.0), n_bootstrap=50)
    assert apart.advantage == 1.0 and apart.auc == 1.0 and apart.ci_low == 1.0
    assert apart.null_quantile < 0.5


def test_advantage_equals_max_tpr_minus_fpr_and_the_interval_brackets_it():
    rng = np.random.default_rng(3)
    members, nonmembers = rng.normal(0.5, 1, 400), rng.normal(0, 1, 400)
    result = membership_inference_advantage(members, nonmembers, n_bootstrap=200, random_state=1)
    thresholds, tpr, fpr = advantage_curve(members, nonmembers)
    assert np.all(np.diff(thresholds) < 0)
    assert result.advantage == pytest.approx(max(0.0, (tpr - fpr).max()))
    # the true advantage of N(0.5, 1) vs N(0, 1) is 2 Phi(0.25) - 1 = 0.197
    assert result.ci_low < 0.197 < result.ci_high
    assert result.ci_low <= result.advantage <= result.ci_high
    assert result.advantage > result.null_quantile
    assert membership_inference_advantage(members, nonmembers, random_state=1) == result


def test_no_leak_gives_an_advantage_below_the_chance_level_most_of_the_time():
    rng = np.random.default_rng(4)
    below = sum(membership_inference_advantage(rng.normal(size=200), rng.normal(size=200), n_bootstrap=100,
                                               random_state=s).advantage
                <= membership_inference_advantage(rng.normal(size=200), rng.normal(size=200), n_bootstrap=100,
                                                  random_state=s).null_quantile + 0.05
                for s in range(10))
    assert below >= 8
