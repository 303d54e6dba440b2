"""Privacy of synthetic data: distance to closest record and membership-inference advantage.

Two questions are asked of a synthesiser trained on private records:

* **Does it copy?** :func:`distance_to_closest_record` (DCR) gives, for each query row, the Euclidean
  distance to the nearest row of a reference set. Compare DCR(synthetic -> train) with
  DCR(holdout -> train): real rows the model never saw show how close *fresh* data comes to the
  training set; synthetic rows much closer than that are near-copies.
* **Does it reveal who was in the training set?** :func:`membership_inference_advantage` scores an
  attack that outputs a number per record (higher = "was a member"). Its advantage is
  ``max_t TPR(t) - FPR(t)`` (Yeom et al. 2018), the largest gap between the rate at which true
  members and non-members are flagged; 0 means the attack is no better than a coin. A bootstrap
  gives its uncertainty and a label permutation gives the value a harmless model would reach by
  chance at this sample size (the empirical maximum is biased upwards).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from ..validation import (
    as_float_tensor,
    as_output,
    check_bool,
    check_float,
    check_int,
    check_probability,
    check_random_state,
)

__all__ = ["MembershipInference", "distance_to_closest_record", "membership_inference_advantage",
           "advantage_curve", "loss_threshold_advantage"]


def distance_to_closest_record(queries: Any, records: Any, *, standardize: bool = False, exclude_self: bool = False,
                               batch_size: int = 1024) -> Any:
    """Euclidean distance from each row of ``queries`` to its nearest row of ``records``.

    Args:
        queries: ``(n, d)`` rows to test (synthetic rows, or held-out real rows for the reference value).
        records: ``(m, d)`` the rows that must stay private (usually the training set).
        standardize: divide every column by the standard deviation of ``records`` first (after subtracting
            its mean), so that a feature measured in large units does not dominate the distance.
        exclude_self: ``queries`` *is* ``records`` (same shape); skip each row's distance to itself, giving
            the distance of a training row to its nearest *other* training row.
        batch_size: rows of ``queries`` compared at a time (memory is ``batch_size * m``).

    Returns:
        ``(n,)`` distances; NumPy in -> NumPy out, torch in -> torch out.
    """
    standardize = check_bool(standardize, "standardize")
    exclude_self = check_bool(exclude_self, "exclude_self")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    q = as_float_tensor(queries, name="queries")
    r = as_float_tensor(records, name="records", device=q.device)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries and records must have the same number of columns, got {q.shape[1]} and "
                         f"{r.shape[1]}")
    if exclude_self:
        if q.shape != r.shape:
            raise ValueError(f"exclude_self=True needs queries and records of the same shape (the same rows), got "
                             f"{tuple(q.shape)} and {tuple(r.shape)}")
        if len(r) < 2:
            raise ValueError("exclude_self=True needs at least 2 records (a row is not its own neighbour)")
    if standardize:
        mean = r.mean(0)
        std = r.std(0) if len(r) > 1 else torch.ones(r.shape[1], dtype=r.dtype, device=r.device)
        std = torch.where(std > 0, std, torch.ones_like(std))  # a constant column carries no distance
        q, r = (q - mean) / std, (r - mean) / std
    nearest = []
    for start in range(0, len(q), batch_size):
        # differences, not |x|^2 + |y|^2 - 2xy: an exact copy must come out at distance exactly 0
        d = torch.cdist(q[start:start + batch_size], r, compute_mode="donot_use_mm_for_euclid_dist")
        if exclude_self:
            rows = torch.arange(start, start + len(d), device=d.device)
            d[torch.arange(len(d), device=d.device), rows] = float("inf")
        nearest.append(d.min(1).values)
    return as_output(torch.cat(nearest), queries)


class MembershipInference(NamedTuple):
    """Result of :func:`membership_inference_advantage` (all in [0, 1])."""

    advantage: float       # max over thresholds of TPR - FPR
    ci_low: float          # bootstrap percentile interval of the advantage
    ci_high: float
    auc: float             # probability that a random member scores above a random non-member (ties count 1/2)
    null_quantile: float   # the `confidence` quantile of the advantage with membership labels shuffled


def _as_scores(value: Any, name: str) -> np.ndarray:
    tensor = as_float_tensor(value, name=name, ndim=1, min_rows=2)
    return tensor.cpu().numpy()


def _advantage(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """max_t P(member score >= t) - P(non-member score >= t), over every observed threshold (and +inf: 0)."""
    m, n = np.sort(members), np.sort(nonmembers)
    thresholds = np.unique(np.concatenate([m, n]))
    tpr = 1.0 - np.searchsorted(m, thresholds, side="left") / len(m)
    fpr = 1.0 - np.searchsorted(n, thresholds, side="left") / len(n)
    return float(max(0.0, (tpr - fpr).max()))


def _auc(members: np.ndarray, nonmembers: np.ndarray) -> float:
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([members, nonmembers]))
    u = ranks[: len(members)].sum() - len(members) * (len(members) + 1) / 2
    return float(u / (len(members) * len(nonmembers)))


def advantage_curve(member_scores: Any, nonmember_scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The attack's ROC points: ``(thresholds, tpr, fpr)``, thresholds in decreasing order.

    A record is flagged as a member when its score is ``>= threshold``; the advantage of
    :func:`membership_inference_advantage` is ``max(tpr - fpr)``.
    """
    m, n = np.sort(_as_scores(member_scores, "member_scores")), np.sort(_as_scores(nonmember_scores,
                                                                                  "nonmember_scores"))
    thresholds = np.unique(np.concatenate([m, n]))[::-1]
    tpr = 1.0 - np.searchsorted(m, thresholds, side="left") / len(m)
    fpr = 1.0 - np.searchsorted(n, thresholds, side="left") / len(n)
    return thresholds, tpr, fpr


def membership_inference_advantage(member_scores: Any, nonmember_scores: Any, *, n_bootstrap: int = 200,
                                   confidence: float = 0.95, random_state: Any = 0) -> MembershipInference:
    """Advantage ``max_t TPR - FPR`` of a membership-inference attack, with bootstrap uncertainty.

    Args:
        member_scores: ``(n,)`` the attack's score for each training record (higher = "member").
        nonmember_scores: ``(m,)`` its score for records that were not used in training (a holdout).
        n_bootstrap: resamples for the interval and label shuffles for the chance level.
        confidence: level of the percentile interval and of the chance quantile.
        random_state: seed (``int``), ``torch.Generator`` or ``None``.

    A common attack on a synthetic-data release scores a record by minus its distance to the closest
    synthetic row (:func:`distance_to_closest_record`): members sit closer if the model copies them.
    Read the advantage against ``null_quantile``: below it, the attack is indistinguishable from chance
    at this sample size.
    """
    members = _as_scores(member_scores, "member_scores")
    nonmembers = _as_scores(nonmember_scores, "nonmember_scores")
    n_bootstrap = check_int(n_bootstrap, "n_bootstrap", minimum=10)
    confidence = check_probability(confidence, "confidence", open_low=True, open_high=True)
    generator = check_random_state(random_state)
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
    advantage = _advantage(members, nonmembers)
    boot = np.array([_advantage(rng.choice(members, len(members)), rng.choice(nonmembers, len(nonmembers)))
                     for _ in range(n_bootstrap)])
    pooled = np.concatenate([members, nonmembers])
    null = []
    for _ in range(n_bootstrap):
        shuffled = rng.permutation(pooled)
        null.append(_advantage(shuffled[: len(members)], shuffled[len(members):]))
    tail = (1.0 - confidence) / 2
    return MembershipInference(advantage=advantage, ci_low=float(np.quantile(boot, tail)),
                               ci_high=float(np.quantile(boot, 1.0 - tail)), auc=_auc(members, nonmembers),
                               null_quantile=float(np.quantile(null, confidence)))


def loss_threshold_advantage(member_losses: Any, nonmember_losses: Any, *, threshold: float | None = None) -> float:
    """Advantage ``TPR - FPR`` of the loss-threshold attack of Yeom et al. (2018) at one fixed threshold.

    A record is declared a member when the model's loss on it is at most ``threshold``; by default the
    threshold is the mean loss on the members (the attacker is assumed to know the average training loss,
    as in Yeom et al.). Unlike the maximum over thresholds of :func:`membership_inference_advantage`, a
    threshold fixed in advance is not biased upwards by the search, so a harmless model scores about 0
    (it can be negative).

    Args:
        member_losses: ``(n,)`` loss of each training record (e.g. a negative log-likelihood or ELBO).
        nonmember_losses: ``(m,)`` loss of each held-out record.
        threshold: the loss at or below which a record is flagged (None: the mean member loss).

    Returns:
        ``P(member flagged) - P(non-member flagged)``, in [-1, 1].
    """
    members = _as_scores(member_losses, "member_losses")
    nonmembers = _as_scores(nonmember_losses, "nonmember_losses")
    if threshold is None:
        threshold = float(members.mean())
    else:
        threshold = check_float(threshold, "threshold")
    return float((members <= threshold).mean() - (nonmembers <= threshold).mean())
