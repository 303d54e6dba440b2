"""Hidden Markov models in torch, with hmmlearn's API and scikit-learn's estimator conventions.

* :class:`GaussianHMM` -- Gaussian emissions (``"spherical"``, ``"diag"`` or ``"full"``
  covariances);
* :class:`CategoricalHMM` -- one discrete symbol per time step.

Both follow ``hmmlearn.hmm`` {cite}`rabiner1989tutorial`: the same constructor arguments
(``n_components``, ``n_iter``, ``tol``, ``params``, ``init_params``, ``random_state``, the
Dirichlet / covariance priors), the same fitted attributes (``startprob_``, ``transmat_``,
``means_``, ``covars_`` as full matrices, ``emissionprob_``, ``monitor_``), the same
initialisation from the same ``random_state`` and the same MAP M-step, so a fit from the same
start gives the same parameters. Several sequences are passed as hmmlearn does: concatenated in
``X`` with their ``lengths`` (the second positional argument of ``fit``, ``score``, ...).

They are scikit-learn estimators (``BaseEstimator`` + ``DensityMixin``): ``__init__`` only stores
its arguments, ``get_params`` / ``set_params`` / ``clone`` work, everything is validated at
``fit`` through :mod:`genlab.validation`, and the fitted attributes exist only after ``fit`` (or
after they are set by hand, as in hmmlearn). Two hmmlearn conventions are kept for parity:
``score`` is the **total** log-likelihood of the sequences (nats, not a mean: the frames of a
sequence are not independent) and ``score_samples`` returns a pair ``(log-likelihood,
posteriors)``.

Input and output types: NumPy in, NumPy out; torch in, torch out on the input's device.
``sample`` returns NumPy unless the model was fitted on a tensor. Fitted attributes are torch
tensors on ``device_``.

How it runs. The sequences are padded into one ``(n_sequences, max_length)`` batch. Each step of
the forward recursion multiplies by ``M_t = A diag(b_t)`` (``b_t``: emission probabilities, shifted
by their per-step maximum), so the forward variables are prefix products of these matrices and the
backward variables suffix products. For short batches of long sequences (the usual case: one or a
few long series) genlab computes all prefix and suffix products at once with a work-efficient
parallel prefix scan {cite}`blelloch1990prefix` -- ``log4 T`` rounds of vectorised matrix products
(stored matrices-first, ``(K, K, ..., T)``, so that thousands of 3x3 products are a few element-wise
operations), each group's product rescaled to a maximum of one with its log-scale kept apart --
instead of ``T`` tiny steps. Viterbi uses the same scan in the max-plus semiring (exact in log
space). When many sequences are batched (the per-step tensors are already large) or the states are
many (``K^3`` work per scan element), the plain time loop is cheaper and is used instead;
``implementation`` then selects hmmlearn's ``"log"`` or ``"scaling"`` recursion. Any underflow of
the scaled computation (a step where every reachable state has probability zero in floating
point) redoes the E-step in log space.
"""
from __future__ import annotations

import functools
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils import check_random_state as numpy_random_state

from .base import NotFittedError
from .numerics import cholesky_gaussian_log_prob, diag_gaussian_log_prob_table
from .validation import (
    as_estimator_input,
    as_output,
    check_device,
    check_float,
    check_float_dtype,
    check_int,
    check_option,
    check_random_state,
)

__all__ = ["GaussianHMM", "CategoricalHMM", "check_forward_answer", "COVARIANCE_TYPES", "AMINO_ACIDS", "profile_hmm"]

COVARIANCE_TYPES = ("spherical", "diag", "full")
IMPLEMENTATIONS = ("log", "scaling")
DECODERS = ("viterbi", "map")


# ============================================================================ small checks
def _as_param(name: str, value: Any, shape: tuple[int, ...], dtype: torch.dtype,
              device: torch.device) -> torch.Tensor:
    """A parameter array as a finite tensor of the expected shape."""
    tensor = _raw_array(name, value)
    tensor = torch.as_tensor(tensor).to(dtype=dtype, device=device)
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return tensor


def _raw_array(name: str, value: Any) -> Any:
    """A tensor (detached) or a float NumPy array; strings and ragged lists get a clear error."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an array of numbers, got a string")
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} could not be read as an array of numbers: {err}") from err


def _as_matrix(name: str, value: Any) -> Any:
    """A 2-D ``(n_components, n_features)`` parameter as given (tensor or float array); checks the rank."""
    array = _raw_array(name, value)
    if array.ndim != 2:
        raise ValueError(f"{name} must have shape (n_components, n_features), got {tuple(array.shape)}")
    return array


def _as_stochastic(name: str, value: Any, shape: tuple[int, ...], dtype: torch.dtype,
                   device: torch.device) -> torch.Tensor:
    """Probabilities: non-negative, each row summing to one."""
    tensor = _as_param(name, value, shape, dtype, device)
    if (tensor < 0).any():
        raise ValueError(f"{name} has negative entries")
    sums = tensor.sum(-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-6 if dtype == torch.float64 else 1e-4):
        raise ValueError(f"{name} rows must sum to 1, got sums {sums.cpu().numpy()}")
    return tensor


def _check_lengths(lengths: Any, n_samples: int) -> np.ndarray:
    """``lengths`` as an int64 array of positive sequence lengths that sum to ``n_samples``."""
    if lengths is None:
        return np.array([n_samples], dtype=np.int64)
    if isinstance(lengths, (str, bytes)):
        raise TypeError(f"lengths must be a 1-D sequence of integers, got a string {lengths!r}")
    if isinstance(lengths, torch.Tensor):
        array = lengths.detach().cpu().numpy()
    else:
        try:
            array = np.asarray(lengths)
        except ValueError as err:
            raise ValueError(f"lengths could not be read as a 1-D sequence of integers: {err}") from err
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"lengths must be a non-empty 1-D sequence of integers, got shape {array.shape}")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"lengths must hold integers, got dtype {array.dtype}")
    if (array < 1).any():
        raise ValueError(f"every sequence needs at least 1 time step; lengths has {int(array.min())}")
    if int(array.sum()) != n_samples:
        raise ValueError(f"lengths sum to {int(array.sum())}, but X has {n_samples} rows")
    return array.astype(np.int64)


def _check_letters(value: Any, name: str, allowed: str) -> str:
    if not isinstance(value, str) or set(value) - set(allowed):
        raise ValueError(f"{name} must be a string of letters from {allowed!r}, got {value!r}")
    return value


def _diagonal_of(matrices: Any, kind: str) -> Any:
    """Diagonals of ``(K, D, D)`` matrices that must be diagonal (and isotropic for ``"spherical"``)."""
    tensor = torch.as_tensor(matrices, dtype=torch.float64)
    diagonal = torch.diagonal(tensor, dim1=-2, dim2=-1)
    if tensor.shape[-1] != tensor.shape[-2] or not torch.equal(torch.diag_embed(diagonal), tensor):
        raise ValueError(f"{kind!r} covars_ given as matrices must be diagonal, got shape {tuple(tensor.shape)}")
    if kind == "diag":
        return diagonal
    if not torch.allclose(diagonal, diagonal[:, :1].expand_as(diagonal)):
        raise ValueError("'spherical' covars_ given as matrices must be multiples of the identity")
    return diagonal[:, 0]


def _normalize(tensor: torch.Tensor) -> torch.Tensor:
    """Rows divided by their sums; all-zero rows stay zero (hmmlearn's ``normalize``)."""
    sums = tensor.sum(-1, keepdim=True)
    return tensor / torch.where(sums == 0, torch.ones_like(sums), sums)


# ============================================================================ batching
class _Batch:
    """Where each row of the concatenated ``X`` sits in a padded ``(n_sequences, max_length)`` grid.

    Two layouts of the same frames: sequences aligned at their start (padding at the end) for
    the forward, Viterbi and scan recursions, and aligned at their end (padding at the start) for
    the backward time loop. Each recursion then begins every sequence at its true first (last)
    step, and what it computes in the padding is simply never read.
    """

    def __init__(self, lengths: np.ndarray, device: torch.device):
        n_sequences, max_length = len(lengths), int(lengths.max())
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        steps = np.arange(max_length)[None, :]
        shift = (max_length - lengths)[:, None]
        head = steps < lengths[:, None]
        tail = steps >= shift
        as_tensor = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        self.lengths = lengths
        self.n_sequences = n_sequences
        self.n_samples = int(lengths.sum())
        self.max_length = max_length
        self.uniform = bool((lengths == max_length).all())
        self.head_mask, self.tail_mask = as_tensor(head), as_tensor(tail)
        self.head_index = as_tensor(np.where(head, starts[:, None] + steps, 0))
        self.tail_index = as_tensor(np.where(tail, starts[:, None] + steps - shift, 0))
        self.first = as_tensor(starts)
        self.last_step = as_tensor(lengths - 1)
        self.rows = as_tensor(np.arange(n_sequences))
        has_next = np.ones(self.n_samples, dtype=bool)
        has_next[starts + lengths - 1] = False
        # 1 for rows t whose successor t + 1 belongs to the same sequence (one transition each), else 0.
        self.same_sequence = as_tensor(has_next[:-1, None])

    def pad(self, flat: torch.Tensor, at_start: bool = False) -> torch.Tensor:
        if self.uniform:   # equal lengths: a reshape, no gather
            return flat.reshape(self.n_sequences, self.max_length, *flat.shape[1:])
        index, mask = (self.tail_index, self.tail_mask) if at_start else (self.head_index, self.head_mask)
        return flat[index].masked_fill(~mask.reshape(mask.shape + (1,) * (flat.ndim - 1)), 0.0)

    def unpad(self, padded: torch.Tensor, at_start: bool = False) -> torch.Tensor:
        if self.uniform:
            return padded.reshape(self.n_samples, *padded.shape[2:])
        return padded[self.tail_mask if at_start else self.head_mask]


# ============================================================================ threads
# Below this many numbers per time step (sequences x states x states) the time loops run on one
# CPU thread. Each step is a few operations on a tiny tensor; waking torch's thread pool for
# them costs more than the arithmetic, and on a machine with more busy threads than cores a
# single small exp/log can wait milliseconds for its helper threads.
_SERIAL_WORK = 1 << 16
# A whole call on fewer numbers than this (rows x features x states) also runs on one thread.
_SERIAL_DATA = 1 << 18


@contextmanager
def _one_thread_if(small: bool, device: torch.device):
    """Run the body on one intra-op CPU thread when ``small``; restore the thread count after."""
    previous = torch.get_num_threads()
    serial = small and device.type == "cpu" and previous > 1
    if serial:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if serial:
            torch.set_num_threads(previous)


def _serial_time_loop(step: torch.Tensor, n_states: int):
    """One thread for a time loop whose per-step tensor ``step`` is small."""
    return _one_thread_if(step.numel() * n_states < _SERIAL_WORK, step.device)


def _serial_when_small(method):
    """Decorator: a method called on little data (``X`` first) runs on one CPU thread."""
    @functools.wraps(method)
    def wrapper(self, X, *args, **kwargs):
        try:
            size = X.numel() if isinstance(X, torch.Tensor) else int(np.size(X))
        except Exception:  # unreadable input: let the method's validation report it
            size = 0
        # Before fit the device is not resolved yet; the thread count only matters on the CPU.
        device = getattr(self, "device_", None) or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        n_states = self.n_components if isinstance(self.n_components, int) else 1
        with _one_thread_if(size * max(n_states, 1) < _SERIAL_DATA, device):
            return method(self, X, *args, **kwargs)
    return wrapper


# ============================================================================ scans
# Which is cheaper, the parallel prefix scan or the time loop? The scan runs ~log4(T) rounds of a
# few dozen tensor operations and ~2.5 (sequences x T) small matrix products (K^3 work each), for the
# forward and the backward pass; the loop runs T steps of a few operations with K^2 work per
# sequence. On the CPU every torch call costs microseconds whatever its size, so the scan wins on
# one or a few long sequences and the loop on large batches of sequences; on CUDA, kernel launches
# dominate and the scan wins almost always. The constants are rough per-call and per-scalar costs.
_CALL_SECONDS = {"cpu": 4e-6, "cuda": 1e-5}
_SCALAR_SECONDS = {"cpu": 1.5e-9, "cuda": 2e-12}
#: Largest (sequences x T x K^3) work a scan may take on (its intermediates hold about this many numbers).
_SCAN_ELEMENTS = 1 << 26


def _use_scan(batch: _Batch, n_states: int, device: torch.device) -> bool:
    """Whether the prefix scan is cheaper than the time loop for this batch (cost model above)."""
    steps = batch.max_length
    if steps < 4:
        return False
    work = batch.n_sequences * steps * n_states ** 3
    if work > _SCAN_ELEMENTS:
        return False
    call = _CALL_SECONDS.get(device.type, _CALL_SECONDS["cuda"])
    scalar = _SCALAR_SECONDS.get(device.type, _SCALAR_SECONDS["cuda"])
    rounds = math.ceil(math.log(steps, _RADIX))
    scan = rounds * 30 * call + 5 * work * scalar
    loop = steps * 8 * call + 2 * steps * batch.n_sequences * n_states ** 2 * scalar
    return scan < loop


def _scaled_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Matrix products of ``(K, K, ...)`` stacks, matrices first: ``c[i, j] = sum_k a[i, k] b[k, j]``.

    With the stack dimensions last (and contiguous) this is a few vectorised element-wise operations,
    several times faster than a batched matrix product of thousands of 3x3 or 4x4 matrices.
    """
    return (a[:, :, None] * b[None]).sum(1)


def _max_plus_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Max-plus products of ``(K, K, ...)`` log-matrix stacks, ``c[i, j] = max_k a[i, k] + b[k, j]``: exact
    in log space."""
    return (a[:, :, None] + b[None]).amax(1)


#: Group size of the scan: each round multiplies within groups of this many elements, scans the
#: group totals recursively, then multiplies every element by the total of the groups before it.
#: 4 needs the fewest tensor operations for sequences of 10^2 to 10^5 steps (fewer, larger rounds
#: cost more sequential products per round; more, smaller rounds cost more bookkeeping).
_RADIX = 4


def _prefix_scan(matrices: torch.Tensor, scale: torch.Tensor | None, product, one: torch.Tensor,
                 rescale: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Inclusive prefix products along the last dimension of ``(K, K, B, T)`` matrix stacks.

    A work-efficient parallel prefix scan {cite}`blelloch1990prefix` with groups of ``_RADIX``:
    prefix products inside every group (``_RADIX - 1`` vectorised products), the group totals
    scanned recursively, then each group's prefixes multiplied by the total of all groups before
    it (one vectorised product). About ``2.5 T`` matrix products in ``log_4 T`` rounds of a few
    dozen tensor operations, instead of a few operations per time step.

    ``product`` is the semiring's multiplication and ``one`` its ``(K, K)`` identity matrix (used to
    pad ``T`` to a multiple of the group size). With ``rescale`` (the scaled-probability semiring),
    each group total is divided by its largest entry before it is carried further, and the log
    of that factor accumulates in the returned ``(B, T)`` log-scales (``scale``: the log-scales
    of the inputs, None for zeros): products stay near one however long the sequence (an
    all-zero total gives NaN, which callers detect). Without ``rescale`` the scales are None.
    """
    k, n_seq, steps = matrices.shape[0], matrices.shape[2], matrices.shape[3]
    if steps == 1:
        if rescale and scale is None:
            scale = matrices.new_zeros(n_seq, 1)
        return matrices, scale
    radix = min(_RADIX, steps)
    groups = -(-steps // radix)
    padding = groups * radix - steps
    if padding:
        matrices = torch.cat([matrices, one[:, :, None, None].expand(k, k, n_seq, padding)], 3)
        if scale is not None:
            scale = torch.cat([scale, scale.new_zeros(n_seq, padding)], 1)
    # (K, K, B, radix, G): element g * radix + j sits at [..., j, g], each slice contiguous in g.
    grouped = matrices.reshape(k, k, n_seq, groups, radix).transpose(3, 4).contiguous()
    out = torch.empty_like(grouped)
    out[:, :, :, 0] = grouped[:, :, :, 0]
    for j in range(1, radix):
        out[:, :, :, j] = product(out[:, :, :, j - 1], grouped[:, :, :, j])
    if rescale:
        # Inside a group the products are left as they are; the total is rescaled before it moves on.
        group_scale = None
        if scale is not None:
            group_scale = torch.cumsum(scale.reshape(n_seq, groups, radix).transpose(1, 2), 1)   # (B, radix, G)
        peak = out[:, :, :, -1].amax((0, 1))                                                       # (B, G)
        out[:, :, :, -1] /= peak
        total_scale = torch.log(peak) if group_scale is None else group_scale[:, -1] + torch.log(peak)
    if groups > 1:
        # Totals of groups 0..g, scanned recursively; group g > 0 then starts from the total of 0..g-1.
        totals, totals_scale = _prefix_scan(out[:, :, :, -1], total_scale if rescale else None, product, one,
                                            rescale)
        out[:, :, :, :-1, 1:] = product(totals[:, :, :, None, :-1], out[:, :, :, :-1, 1:])
        out[:, :, :, -1] = totals
    result = out.transpose(3, 4).reshape(k, k, n_seq, groups * radix)[..., :steps]
    if not rescale:
        return result, None
    out_scale = group_scale.clone() if group_scale is not None else peak.new_zeros(n_seq, radix, groups)
    if groups > 1:
        out_scale[:, :-1, 1:] += totals_scale[:, None, :-1]
        out_scale[:, -1] = totals_scale
    else:
        out_scale[:, -1] = total_scale
    return result, out_scale.transpose(1, 2).reshape(n_seq, groups * radix)[:, :steps]


def _forward_backward_scan(startprob: torch.Tensor, transmat: torch.Tensor, log_frameprob: torch.Tensor,
                           batch: _Batch) -> tuple[torch.Tensor, ...] | None:
    """Forward and backward variables of every step by one prefix scan (see the module docstring).

    Returns per-sequence log-likelihoods, ``alpha``, ``beta`` and the shifted emission
    probabilities ``b`` (flat ``(n, K)``, each row up to a positive constant), or None if the
    scaled computation underflowed.
    """
    k = transmat.shape[0]
    log_shift = log_frameprob.amax(-1, keepdim=True)
    b_flat = torch.exp(log_frameprob - log_shift)
    b = batch.pad(b_flat)                                                   # (S, T, K)
    shift = batch.pad(log_shift)[..., 0]                                    # (S, T), 0 in the padding
    n_seq, steps = b.shape[0], b.shape[1]
    b_t = b.permute(2, 0, 1)                                                # (K, S, T)
    # Matrices first, (K, K, 2S, T). Forward elements: F, M_1, ..., M_{T-1} with M_t = A diag(b_t); every
    # row of F is alpha_1 = pi * b_0, so every row of the prefix product F M_1 ... M_t is alpha_t.
    # Backward elements: J (all ones), M_{T-1}^T, ..., M_1^T; the prefix product J M_{T-1}^T ... M_{t+1}^T
    # is (M_{t+1} ... M_{T-1} J)^T, whose every row is beta_t. Both run in the same scan.
    both = torch.empty(k, k, 2 * n_seq, steps, dtype=b.dtype, device=b.device)
    both[:, :, :n_seq, 0] = (startprob[:, None] * b_t[:, :, 0])[None]
    both[:, :, n_seq:, 0] = 1.0
    both[:, :, :n_seq, 1:] = transmat[:, :, None, None] * b_t[None, :, :, 1:]
    both[:, :, n_seq:, 1:] = transmat.T[:, :, None, None] * b_t.flip(2)[:, None, :, :-1]
    eye = torch.eye(k, dtype=b.dtype, device=b.device)
    if not batch.uniform:
        # The padding gets identities, so the products stop at each sequence's end.
        valid = batch.head_mask[:, 1:]
        both[:, :, :n_seq, 1:] = torch.where(valid, both[:, :, :n_seq, 1:], eye[:, :, None, None])
        both[:, :, n_seq:, 1:] = torch.where(valid.flip(1), both[:, :, n_seq:, 1:], eye[:, :, None, None])
    products, log_scale = _prefix_scan(both, None, _scaled_product, eye, rescale=True)
    rows = products[0].permute(1, 2, 0)                                     # (2S, T, K): row 0 of every product
    alpha = batch.unpad(rows[:n_seq])
    beta = batch.unpad(rows[n_seq:].flip(1))
    # log p(x) = log sum(alpha_T) + the scales of the products + the emission shifts.
    end = batch.last_step
    loglik = torch.log(rows[batch.rows, end].sum(-1)) + log_scale[batch.rows, end] + shift.sum(1)
    # An all-zero alpha_t (or a NaN from rescaling a zero total) propagates to the end, where the
    # log-likelihood shows it; likewise an all-zero beta_t reaches beta_1, the last backward product.
    if not torch.isfinite(loglik).all() or not (rows[n_seq:, -1].amax(-1) > 0).all():
        return None
    return loglik, alpha, beta, b_flat


def _viterbi_scan(log_startprob: torch.Tensor, log_transmat: torch.Tensor, log_b: torch.Tensor,
                  batch: _Batch) -> torch.Tensor:
    """``delta_t`` of every step (start-aligned ``(S, T, K)``) by a max-plus prefix scan."""
    k = log_transmat.shape[0]
    n_seq, steps = log_b.shape[0], log_b.shape[1]
    log_b_t = log_b.permute(2, 0, 1)                                        # (K, S, T)
    log_one = torch.full((k, k), -math.inf, dtype=log_b.dtype, device=log_b.device).fill_diagonal_(0.0)
    # Every row of the first element is delta_1, so every row of the t-th product is delta_t.
    both = torch.empty(k, k, n_seq, steps, dtype=log_b.dtype, device=log_b.device)
    both[:, :, :, 0] = (log_startprob[:, None] + log_b_t[:, :, 0])[None]
    both[:, :, :, 1:] = log_transmat[:, :, None, None] + log_b_t[None, :, :, 1:]
    if not batch.uniform:
        both[:, :, :, 1:] = torch.where(batch.head_mask[:, 1:], both[:, :, :, 1:], log_one[:, :, None, None])
    return _prefix_scan(both, None, _max_plus_product, log_one)[0][0].permute(1, 2, 0)


# ============================================================================ time loops
def _forward_log(log_startprob: torch.Tensor, transmat: torch.Tensor, log_b: torch.Tensor,
                 batch: _Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward pass in log space on the start-aligned batch ``log_b`` (S, T, K).

    Returns the per-sequence log-likelihoods and ``log alpha`` up to a constant per step
    (flat, ``(n, K)``): posteriors only need each step's values up to such a constant.
    """
    r = log_startprob + log_b[:, 0]
    m = r.amax(-1, keepdim=True)
    rs, ms = [r], [m]
    with _serial_time_loop(r, transmat.shape[0]):
        for log_b_t in log_b.unbind(1)[1:]:   # unbind: all per-step views in one call
            # log alpha_t - sum_{u<t} m_u: one log-sum-exp over the previous state as a matmul.
            r = torch.log(torch.exp(r - m) @ transmat) + log_b_t
            m = r.amax(-1, keepdim=True)
            rs.append(r)
            ms.append(m)
    r_all, m_all = torch.stack(rs, 1), torch.stack(ms, 1)[..., 0]
    offset = torch.cumsum(m_all, 1) - m_all            # sum_{u<t} m_u
    end = batch.last_step
    loglik = offset[batch.rows, end] + torch.logsumexp(r_all[batch.rows, end], -1)
    return loglik, batch.unpad(r_all)


def _backward_log(transmat: torch.Tensor, log_b: torch.Tensor, batch: _Batch) -> torch.Tensor:
    """Backward pass in log space on the end-aligned batch; ``log beta`` up to a constant per step."""
    r = torch.zeros_like(log_b[:, 0])
    rs = [r]
    transposed = transmat.T
    with _serial_time_loop(r, transmat.shape[0]):
        for log_b_next in log_b.unbind(1)[:0:-1]:
            w = log_b_next + r
            m = w.amax(-1, keepdim=True)
            r = torch.log(torch.exp(w - m) @ transposed)
            rs.append(r)
    return batch.unpad(torch.stack(rs[::-1], 1), at_start=True)


def _forward_scaling(startprob: torch.Tensor, transmat: torch.Tensor, b: torch.Tensor, log_shift: torch.Tensor,
                     batch: _Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled forward pass: ``b = exp(log_b - shift)``; each step's alpha renormalised to sum 1."""
    p = startprob * b[:, 0]
    c = p.sum(-1, keepdim=True)
    p = p / c
    ps, cs = [p], [c]
    ones = torch.ones_like(transmat[:, :1])    # row sums as a matmul: cheaper than a reduction per step
    with _serial_time_loop(p, transmat.shape[0]):
        for b_t in b.unbind(1)[1:]:
            p = (p @ transmat) * b_t
            c = p @ ones
            p = p / c
            ps.append(p)
            cs.append(c)
    log_c = torch.log(torch.stack(cs, 1)[..., 0]) + log_shift
    loglik = torch.cumsum(log_c, 1)[batch.rows, batch.last_step]
    return loglik, torch.log(batch.unpad(torch.stack(ps, 1)))


def _backward_scaling(transmat: torch.Tensor, b: torch.Tensor, batch: _Batch) -> torch.Tensor:
    """Scaled backward pass on the end-aligned batch; returns ``log beta`` up to a constant per step."""
    q = torch.ones_like(b[:, 0])
    qs = [q]
    transposed = transmat.T
    ones = torch.ones_like(transmat[:, :1])
    with _serial_time_loop(q, transmat.shape[0]):
        for b_next in b.unbind(1)[:0:-1]:
            q = (b_next * q) @ transposed
            q = q / (q @ ones)
            qs.append(q)
    return torch.log(batch.unpad(torch.stack(qs[::-1], 1), at_start=True))


def _viterbi_loop(log_startprob: torch.Tensor, log_transmat: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    """``delta_t`` of every step (start-aligned ``(S, T, K)``), one max-plus step at a time."""
    delta = log_startprob + log_b[:, 0]
    deltas = [delta]
    with _serial_time_loop(delta, log_transmat.shape[0]):
        for log_b_t in log_b.unbind(1)[1:]:
            delta = (delta.unsqueeze(2) + log_transmat).amax(1) + log_b_t
            deltas.append(delta)
    return torch.stack(deltas, 1)


def _shift_exp(log_values: torch.Tensor) -> torch.Tensor:
    """``exp(v - max v)`` per row: the row's values up to a factor, without overflow."""
    return torch.exp(log_values - log_values.amax(-1, keepdim=True))


def _transition_counts(alpha: torch.Tensor, beta_b: torch.Tensor, transmat: torch.Tensor,
                       batch: _Batch) -> torch.Tensor:
    """Expected transition counts ``sum_t xi_t(i, j)`` over every sequence, vectorised over t.

    ``alpha`` holds ``alpha_t`` and ``beta_b`` holds ``b_t(x_t) beta_t``, each row up to a positive
    constant: ``xi_t(i, j) ∝ alpha_t(i) A_ij b_j(x_{t+1}) beta_{t+1}(j)`` is normalised per step,
    so the constants cancel.
    """
    if batch.n_samples == 1:
        return torch.zeros_like(transmat)
    # Consecutive rows t, t + 1; a pair that straddles two sequences gets weight 0.
    u, v = alpha[:-1], beta_b[1:]
    norm = ((u @ transmat) * v).sum(-1, keepdim=True).clamp_min(torch.finfo(u.dtype).tiny)
    weights = u / norm
    if batch.n_sequences > 1:
        weights = weights.masked_fill(~batch.same_sequence, 0.0)
    return transmat * (weights.T @ v)


def _backtrack(all_deltas: torch.Tensor, log_transmat: torch.Tensor, batch: _Batch
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Best final scores and the flat state paths from the start-aligned ``delta`` of every step."""
    final = all_deltas[batch.rows, batch.last_step]
    best, last = final.max(-1)
    # The back-pointers argmax_i delta_{t-1}(i) + log A_ij for all steps at once.
    back = (all_deltas[:, :-1, :, None] + log_transmat).argmax(2).cpu().numpy()
    # Backtracking follows one pointer per step: cheap on the CPU, vectorised over sequences.
    last = last.cpu().numpy()
    lengths = batch.lengths
    rows = np.arange(len(lengths))
    states = np.empty((len(lengths), batch.max_length), dtype=np.int64)
    state = last
    states[:, -1] = state
    for t in range(batch.max_length - 2, -1, -1):
        state = np.where(t < lengths - 1, back[rows, t, state], last)
        states[:, t] = state
    flat = torch.as_tensor(states, device=all_deltas.device)[batch.head_mask]
    return best, flat


# ============================================================================ base class
@dataclass
class ConvergenceMonitor:
    """What EM did: ``history`` holds the log-likelihood of the data at each iteration.

    ``converged`` follows hmmlearn: true when the last gain is below ``tol`` *or* ``n_iter``
    iterations were run. The estimators' ``converged_`` is the strict version (gain < ``tol``).
    """

    tol: float
    n_iter: int
    history: list[float] = field(default_factory=list)

    @property
    def iter(self) -> int:
        return len(self.history)

    @property
    def converged(self) -> bool:
        return self.iter == self.n_iter or (
            len(self.history) >= 2 and self.history[-1] - self.history[-2] < self.tol)


class _BaseHMM(DensityMixin, BaseEstimator):
    """Shared machinery: validation, E-step, Baum-Welch loop, decoding, scoring, sampling.

    Subclasses define ``__init__`` (storing their arguments), ``_param_codes`` (letters of their
    parameters beyond ``s``/``t``), ``_fitted_names``, ``_check_emission_settings``,
    ``_validate_X``, ``_init_emissions``, ``_log_frameprob``, ``_mstep_emissions``,
    ``_emission_scalars`` and ``_sample_emissions``.
    """

    _param_codes = ""
    _fitted_names: tuple[str, ...] = ()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False   # a fixed random_state gives the same fit
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return all(getattr(self, "_" + name[:-1], None) is not None
                   for name in ("startprob_", "transmat_") + self._fitted_names)

    # ------------------------------------------------------------------ settings
    def _check_settings(self) -> None:
        check_int(self.n_components, "n_components", minimum=1)
        check_int(self.n_iter, "n_iter", minimum=0)
        # Negative (even -inf) is allowed: it makes EM run all n_iter iterations.
        check_float(self.tol, "tol", allow_inf=True)
        check_float(self.startprob_prior, "startprob_prior", low=0.0)
        check_float(self.transmat_prior, "transmat_prior", low=0.0)
        allowed = "st" + self._param_codes
        _check_letters(self.params, "params", allowed)
        _check_letters(self.init_params, "init_params", allowed)
        check_option(self.implementation, "implementation", IMPLEMENTATIONS)
        check_option(self.algorithm, "algorithm", DECODERS)
        if isinstance(self.random_state, torch.Generator):
            raise TypeError("random_state of an HMM seeds its initialisation as in hmmlearn: pass an int, a "
                            "numpy.random.RandomState or None (a torch.Generator is accepted by sample())")
        if self.random_state is not None and not isinstance(self.random_state, np.random.RandomState):
            check_int(self.random_state, "random_state", minimum=0, maximum=2**32 - 1)
        self._check_emission_settings()

    def _check_emission_settings(self) -> None:
        raise NotImplementedError

    def _runtime(self) -> None:
        """``device_`` and ``dtype_`` from the settings (at fit, or when parameters are set by hand)."""
        if getattr(self, "device_", None) is None:
            self.device_ = check_device(self.device)
            self.dtype_ = check_float_dtype(self.dtype)

    # ------------------------------------------------------------------ parameters
    def _get(self, name: str) -> torch.Tensor:
        value = getattr(self, "_" + name[:-1], None)
        if value is None:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet (no {name}); call fit(X) first "
                                 f"or set {name} by hand")
        return value

    @property
    def startprob_(self) -> torch.Tensor:
        """Initial state distribution, shape ``(n_components,)``."""
        return self._get("startprob_")

    @startprob_.setter
    def startprob_(self, value: Any) -> None:
        self._runtime()
        k = check_int(self.n_components, "n_components", minimum=1)
        self._startprob = _as_stochastic("startprob_", value, (k,), self.dtype_, self.device_)

    @property
    def transmat_(self) -> torch.Tensor:
        """Transition matrix ``A[i, j] = p(z_{t+1} = j | z_t = i)``, shape ``(n_components, n_components)``."""
        return self._get("transmat_")

    @transmat_.setter
    def transmat_(self, value: Any) -> None:
        self._runtime()
        k = check_int(self.n_components, "n_components", minimum=1)
        self._transmat = _as_stochastic("transmat_", value, (k, k), self.dtype_, self.device_)

    def _check_fitted(self) -> None:
        missing = [name for name in ("startprob_", "transmat_") + self._fitted_names
                   if getattr(self, "_" + name[:-1], None) is None]
        if missing:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet (no {', '.join(missing)}); "
                                 "call fit(X) first or set these attributes")

    def _needs_init(self, code: str, name: str) -> bool:
        return code in self.init_params or getattr(self, "_" + name[:-1], None) is None

    def _init_params(self, X: torch.Tensor) -> None:
        """hmmlearn's initialisation, drawn from the same ``random_state`` stream."""
        rng = numpy_random_state(self.random_state)
        alpha = np.full(self.n_components, 1.0 / self.n_components)
        if self._needs_init("s", "startprob_"):
            self.startprob_ = rng.dirichlet(alpha)
        if self._needs_init("t", "transmat_"):
            self.transmat_ = rng.dirichlet(alpha, size=self.n_components)
        self._init_emissions(X)

    # ------------------------------------------------------------------ E-step
    def _prepare(self, X: Any, lengths: Any) -> tuple[torch.Tensor, _Batch]:
        self._check_fitted()
        X = self._validate_X(X, fitting=False)
        return X, _Batch(_check_lengths(lengths, X.shape[0]), self.device_)

    def _e_step(self, log_frameprob: torch.Tensor, batch: _Batch
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-sequence log-likelihoods, the state posteriors ``(n, K)`` and the expected transition
        counts ``(K, K)``."""
        startprob, transmat = self._startprob, self._transmat
        result = None
        if _use_scan(batch, self.n_components, self.device_):
            result = _forward_backward_scan(startprob, transmat, log_frameprob, batch)
        if result is not None:
            loglik, alpha, beta, b = result
            posteriors = alpha * beta
            posteriors = posteriors / posteriors.sum(-1, keepdim=True).clamp_min(torch.finfo(b.dtype).tiny)
            beta_b = beta * b
        else:
            loglik, log_alpha, log_beta = self._forward_backward_loop(log_frameprob, batch)
            posteriors = torch.softmax(log_alpha + log_beta, -1)
            alpha, beta_b = _shift_exp(log_alpha), _shift_exp(log_beta + log_frameprob)
        counts = _transition_counts(alpha, beta_b, transmat, batch) if "t" in self.params else None
        return loglik, posteriors, counts

    def _forward_backward_loop(self, log_frameprob: torch.Tensor,
                               batch: _Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The time-loop forward-backward: log-likelihoods, ``log alpha`` and ``log beta`` up to a
        constant per step."""
        loglik, log_alpha, b = self._forward_loop(log_frameprob, batch)
        if b is not None:
            log_beta = _backward_scaling(self._transmat, batch.pad(b, at_start=True), batch)
        else:
            log_beta = _backward_log(self._transmat, batch.pad(log_frameprob, at_start=True), batch)
        return loglik, log_alpha, log_beta

    def _forward_loop(self, log_frameprob: torch.Tensor,
                      batch: _Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Time-loop forward pass: per-sequence log-likelihoods, ``log alpha`` up to a constant per
        step, and the shifted emission probabilities when the scaled recursion was used (else None)."""
        startprob, transmat = self._startprob, self._transmat
        if self.implementation == "scaling":
            log_shift = log_frameprob.amax(-1, keepdim=True)
            b = torch.exp(log_frameprob - log_shift)
            loglik, log_alpha = _forward_scaling(startprob, transmat, batch.pad(b), batch.pad(log_shift)[..., 0],
                                                 batch)
            if torch.isfinite(loglik).all():
                return loglik, log_alpha, b
            # A step underflowed to zero on the probability scale: redo it in log space.
        loglik, log_alpha = _forward_log(torch.log(startprob), transmat, batch.pad(log_frameprob), batch)
        return torch.nan_to_num(loglik, nan=-math.inf), log_alpha, None

    def _loglik(self, log_frameprob: torch.Tensor, batch: _Batch) -> torch.Tensor:
        """Per-sequence log-likelihoods (the forward pass only, where the time loop is used)."""
        if _use_scan(batch, self.n_components, self.device_):
            result = _forward_backward_scan(self._startprob, self._transmat, log_frameprob, batch)
            if result is not None:
                return result[0]
        return self._forward_loop(log_frameprob, batch)[0]

    @_serial_when_small
    def _posteriors(self, X: Any, lengths: Any) -> tuple[torch.Tensor, torch.Tensor]:
        X, batch = self._prepare(X, lengths)
        loglik, posteriors, _ = self._e_step(self._log_frameprob(X), batch)
        return loglik, posteriors

    # ------------------------------------------------------------------ public API
    @_serial_when_small
    def fit(self, X: Any, lengths: Any = None) -> _BaseHMM:
        """Estimate the parameters by Baum-Welch (EM) {cite}`baum1970maximization`; return ``self``.

        ``X``: the observations of all sequences, concatenated; ``lengths``: the length of each
        sequence (None: one sequence). Parameters whose letter is not in ``init_params`` and that
        are already set are used as the starting point; only those whose letter is in ``params``
        are updated. Stops after ``n_iter`` iterations or when the log-likelihood gains less than
        ``tol``. ``monitor_.history`` holds the log-likelihood of ``X`` under the parameters of
        each iteration's E-step (before that iteration's M-step), as in hmmlearn. With the default
        priors this is MAP-EM: it increases the log-likelihood *plus the log-prior*; the
        log-likelihood alone may dip by tiny amounts near convergence.
        """
        self._check_settings()
        device, dtype = check_device(self.device), check_float_dtype(self.dtype)
        if getattr(self, "device_", None) != device or getattr(self, "dtype_", None) != dtype:
            # A new device or dtype: parameters set before are moved along.
            for name in ("startprob_", "transmat_") + self._fitted_names:
                value = getattr(self, "_" + name[:-1], None)
                if value is not None:
                    setattr(self, "_" + name[:-1], value.to(device=device, dtype=dtype))
        self.device_, self.dtype_ = device, dtype
        X_in = X
        X = self._validate_X(X, fitting=True)
        batch = _Batch(_check_lengths(lengths, X.shape[0]), self.device_)
        if X.shape[0] < self.n_components:
            raise ValueError(f"X has {X.shape[0]} rows (time steps), fewer than n_components={self.n_components}: "
                             f"every state needs data; use at most {X.shape[0]} states")
        self._torch_io = isinstance(X_in, torch.Tensor)
        self._init_params(X)
        self.monitor_ = ConvergenceMonitor(self.tol, self.n_iter)
        self.converged_ = False
        for _ in range(self.n_iter):
            log_frameprob = self._log_frameprob(X)
            loglik, posteriors, counts = self._e_step(log_frameprob, batch)
            self._mstep(X, posteriors, counts, batch)
            self.monitor_.history.append(float(loglik.sum()))
            history = self.monitor_.history
            if len(history) >= 2 and history[-1] - history[-2] < self.tol:
                self.converged_ = True
                break
        self.n_iter_ = self.monitor_.iter
        return self

    def _mstep(self, X: torch.Tensor, posteriors: torch.Tensor, counts: torch.Tensor | None, batch: _Batch) -> None:
        """hmmlearn's MAP M-step: ``max(prior - 1 + counts, 0)``, normalised; zeros stay zero."""
        if "s" in self.params:
            start_counts = posteriors[batch.first].sum(0)
            start = torch.clamp(self.startprob_prior - 1 + start_counts, min=0)
            self._startprob = _normalize(torch.where(self._startprob == 0, 0.0, start))
        if "t" in self.params:
            trans = torch.clamp(self.transmat_prior - 1 + counts, min=0)
            self._transmat = _normalize(torch.where(self._transmat == 0, 0.0, trans))
        self._mstep_emissions(X, posteriors)

    @_serial_when_small
    def score(self, X: Any, lengths: Any = None) -> float:
        """**Total** log-likelihood ``log p(X)`` of all sequences (nats), as in hmmlearn.

        Not a per-row mean (unlike genlab's i.i.d. estimators): the frames of a sequence are not
        independent, and hmmlearn's meaning is kept for parity.
        """
        X, batch = self._prepare(X, lengths)
        return float(self._loglik(self._log_frameprob(X), batch).sum())

    def score_samples(self, X: Any, lengths: Any = None) -> tuple[float, np.ndarray | torch.Tensor]:
        """hmmlearn's pair ``(log p(X), posteriors)``: the total log-likelihood (float, nats) and the
        state posteriors ``p(z_t = k | sequence)``, shape ``(n, K)``.

        This keeps hmmlearn's meaning (not scikit-learn's per-row log-densities, which an HMM
        does not have: rows of a sequence are not independent).
        """
        loglik, posteriors = self._posteriors(X, lengths)
        return float(loglik.sum()), as_output(posteriors, X)

    def predict_proba(self, X: Any, lengths: Any = None) -> np.ndarray | torch.Tensor:
        """State posteriors ``p(z_t = k | sequence)`` from forward-backward, shape ``(n, K)``."""
        return as_output(self._posteriors(X, lengths)[1], X)

    @_serial_when_small
    def decode(self, X: Any, lengths: Any = None, algorithm: str | None = None
               ) -> tuple[float, np.ndarray | torch.Tensor]:
        """Most likely states: ``"viterbi"`` (best joint path {cite}`viterbi1967error`) or ``"map"``.

        Returns a summed log-probability and the states, shape ``(n,)``. For Viterbi it is the
        log-probability of the best joint paths (as in hmmlearn); for ``"map"`` the sum of the
        log posterior maxima (hmmlearn sums the maxima themselves, not their logs).
        """
        algorithm = self.algorithm if algorithm is None else algorithm
        check_option(algorithm, "algorithm", DECODERS)
        if algorithm == "map":
            _, posteriors = self._posteriors(X, lengths)
            best, states = posteriors.max(-1)
            return float(torch.log(best).sum()), as_output(states, X)
        data, batch = self._prepare(X, lengths)
        log_startprob, log_transmat = torch.log(self._startprob), torch.log(self._transmat)
        log_b = batch.pad(self._log_frameprob(data))
        if _use_scan(batch, self.n_components, self.device_) and self.n_components ** 4 <= 4096:
            deltas = _viterbi_scan(log_startprob, log_transmat, log_b, batch)
        else:
            deltas = _viterbi_loop(log_startprob, log_transmat, log_b)
        best, states = _backtrack(deltas, log_transmat, batch)
        return float(best.sum()), as_output(states, X)

    def predict(self, X: Any, lengths: Any = None) -> np.ndarray | torch.Tensor:
        """Most likely state of every row with the estimator's ``algorithm`` (Viterbi by default)."""
        return self.decode(X, lengths)[1]

    def sample(self, n_samples: int = 1, *, random_state: Any = None, currstate: int | None = None
               ) -> tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]:
        """Draw one sequence of ``n_samples`` steps; returns ``(X, states)``.

        ``random_state``: an ``int`` (the same draws every call), a ``torch.Generator`` (advanced)
        or ``None`` (fresh entropy), see :func:`genlab.validation.check_random_state`.
        ``currstate`` (keyword) fixes the first state, to continue a sequence. Returns NumPy arrays,
        or torch tensors on ``device_`` if the model was fitted on a tensor.
        """
        self._check_fitted()
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        generator = check_random_state(random_state)
        if currstate is not None:
            currstate = check_int(currstate, "currstate", minimum=0, maximum=self.n_components - 1)
        startprob = self._startprob.cpu().double().numpy()
        transmat_cdf = np.cumsum(self._transmat.cpu().double().numpy(), axis=1)
        uniforms = torch.rand(n_samples, generator=generator, dtype=torch.float64).numpy()
        states = np.empty(n_samples, dtype=np.int64)
        state = int(np.searchsorted(np.cumsum(startprob), uniforms[0], side="right")) if currstate is None \
            else currstate
        states[0] = min(state, self.n_components - 1)
        # The chain is sequential; the emissions are then drawn for all steps at once.
        for t in range(1, n_samples):
            states[t] = min(int(np.searchsorted(transmat_cdf[states[t - 1]], uniforms[t], side="right")),
                            self.n_components - 1)
        states_t = torch.as_tensor(states, device=self.device_)
        X = self._sample_emissions(states_t, generator)
        like = torch.empty(0, device=self.device_) if getattr(self, "_torch_io", False) else None
        return as_output((X, states_t), like)

    def _n_parameters(self) -> int:
        k = self.n_components
        return (k - 1) + k * (k - 1) + self._emission_scalars()

    def bic(self, X: Any, lengths: Any = None) -> float:
        """Bayesian information criterion ``-2 log p(X) + n_params log n`` (lower is better)."""
        n_rows = self._prepare(X, lengths)[0].shape[0]
        return -2 * self.score(X, lengths) + self._n_parameters() * math.log(n_rows)

    def aic(self, X: Any, lengths: Any = None) -> float:
        """Akaike information criterion ``-2 log p(X) + 2 n_params`` (lower is better)."""
        return -2 * self.score(X, lengths) + 2 * self._n_parameters()

    # ------------------------------------------------------------------ hooks
    def _validate_X(self, X: Any, fitting: bool) -> torch.Tensor:
        raise NotImplementedError

    def _init_emissions(self, X: torch.Tensor) -> None:
        raise NotImplementedError

    def _log_frameprob(self, X: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _mstep_emissions(self, X: torch.Tensor, posteriors: torch.Tensor) -> None:
        raise NotImplementedError

    def _emission_scalars(self) -> int:
        raise NotImplementedError

    def _sample_emissions(self, states: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError


# ============================================================================ Gaussian
class GaussianHMM(_BaseHMM):
    """HMM with Gaussian emissions, hmmlearn's ``GaussianHMM`` in torch.

    Args:
        n_components: number of hidden states.
        covariance_type: ``"spherical"`` (one variance per state), ``"diag"`` or ``"full"``.
        min_covar: added to the data covariance used as initial ``covars_``.
        startprob_prior, transmat_prior: Dirichlet concentrations of the MAP M-step (1: plain ML).
        means_prior, means_weight, covars_prior, covars_weight: hmmlearn's priors on the means
            and covariances (defaults as in hmmlearn; ``covars_prior=1e-2`` keeps variances > 0,
            which makes Baum-Welch a MAP-EM).
        algorithm: decoder of ``predict``, ``"viterbi"`` or ``"map"``.
        random_state: seed (int), ``numpy.random.RandomState`` or None of the *initialisation*;
            the same value draws the same initial parameters as hmmlearn (Dirichlet
            start/transitions, k-means means). ``sample`` takes its own ``random_state``.
        n_iter, tol: at most ``n_iter`` EM iterations; stop when the log-likelihood gains < ``tol``.
        params, init_params: letters of the parameters updated by EM / initialised in ``fit``:
            ``s`` startprob, ``t`` transmat, ``m`` means, ``c`` covars.
        implementation: ``"log"`` or ``"scaling"`` recursion of the time loop (see the module
            docstring; the prefix scan rescales like ``"scaling"`` and falls back to log space).
        device: where to compute (None: CUDA when present); dtype: float64 (default) or float32.

    Fitted attributes (torch tensors on ``device_``): ``startprob_``, ``transmat_``, ``means_``
    ``(K, D)``, ``covars_`` ``(K, D, D)`` whatever the covariance type (as hmmlearn exposes
    them), ``n_features_in_``, ``monitor_``, ``converged_``, ``n_iter_``, ``device_``, ``dtype_``.
    """

    _param_codes = "mc"
    _fitted_names = ("means_", "covars_")

    def __init__(self, n_components: int = 1, covariance_type: str = "diag", min_covar: float = 1e-3,
                 startprob_prior: float = 1.0, transmat_prior: float = 1.0, means_prior: float = 0.0,
                 means_weight: float = 0.0, covars_prior: float = 1e-2, covars_weight: float = 1.0,
                 algorithm: str = "viterbi", random_state: Any = None, n_iter: int = 10, tol: float = 1e-2,
                 params: str = "stmc", init_params: str = "stmc", implementation: str = "log",
                 device: torch.device | str | None = None, dtype: Any = np.float64):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.device = device
        self.dtype = dtype

    def _check_emission_settings(self) -> None:
        check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        for name in ("min_covar", "means_weight", "covars_prior", "covars_weight"):
            check_float(getattr(self, name), name, low=0.0)
        check_float(self.means_prior, "means_prior")

    # ------------------------------------------------------------------ parameters
    @property
    def means_(self) -> torch.Tensor:
        """State means, shape ``(n_components, n_features)``."""
        return self._get("means_")

    @means_.setter
    def means_(self, value: Any) -> None:
        self._runtime()
        array = _as_matrix("means_", value)
        k = check_int(self.n_components, "n_components", minimum=1)
        self._means = _as_param("means_", array, (k, array.shape[1]), self.dtype_, self.device_)
        self.n_features_in_ = int(array.shape[1])

    @property
    def covars_(self) -> torch.Tensor:
        """State covariances as full matrices, shape ``(n_components, n_features, n_features)``."""
        covars = self._get("covars_")
        if self.covariance_type == "full":
            return covars
        return torch.diag_embed(self._diag_covars())

    @covars_.setter
    def covars_(self, value: Any) -> None:
        """Accepts hmmlearn's shapes: ``(K,)`` spherical, ``(K, D)`` diag, ``(K, D, D)`` full."""
        self._runtime()
        array = _raw_array("covars_", value)
        k = check_int(self.n_components, "n_components", minimum=1)
        kind = check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        if kind != "full" and array.ndim == 3:
            # Full matrices, as the covars_ getter (and hmmlearn's) returns them: keep the diagonal.
            array = _diagonal_of(array, kind)
        expected = {"spherical": 1, "diag": 2, "full": 3}[kind]
        if array.ndim != expected:
            raise ValueError(f"{kind!r} covars_ must have {expected} dimension(s) starting with n_components, "
                             f"got shape {tuple(array.shape)}")
        covars = _as_param("covars_", array, (k,) + tuple(array.shape[1:]), self.dtype_, self.device_)
        if kind == "full":
            if covars.shape[1] != covars.shape[2] or not torch.allclose(covars, covars.transpose(1, 2)):
                raise ValueError("'full' covars_ must be symmetric (n_components, d, d) matrices")
            if (torch.linalg.eigvalsh(covars) <= 0).any():
                raise ValueError("'full' covars_ must be positive definite")
        elif (covars <= 0).any():
            raise ValueError(f"{kind!r} covars_ must be positive")
        if kind == "spherical":
            # Stored as (K, D) like diag; D comes from the means (set before, or at fit).
            width = getattr(self, "n_features_in_", None) or 1
            covars = covars[:, None].expand(k, width).clone()
        self._covars = covars

    def _diag_covars(self) -> torch.Tensor:
        """Variances ``(K, D)`` for the spherical / diag types (spherical widened to D)."""
        return self._covars.expand(self.n_components, self.n_features_in_) if self._covars.shape[1] == 1 \
            else self._covars

    def _check_fitted(self) -> None:
        super()._check_fitted()
        covars = self._covars
        if covars.shape[1] not in (1, self.n_features_in_):
            raise ValueError(f"covars_ has {covars.shape[1]} features, means_ has {self.n_features_in_}")

    # ------------------------------------------------------------------ hooks
    def _validate_X(self, X: Any, fitting: bool) -> torch.Tensor:
        if fitting and getattr(X, "ndim", None) == 1 or (fitting and isinstance(X, (list, tuple)) and len(X)
                                                            and not isinstance(X[0], (list, tuple, np.ndarray))):
            raise ValueError(f"X must be 2-D (n_samples, n_features), got a 1-D array of shape {tuple(np.shape(X))}; "
                             "for one feature pass X.reshape(-1, 1)")
        return as_estimator_input(X, n_features=None if fitting else self.n_features_in_,
                                  estimator=type(self).__name__, dtype=self.dtype_, device=self.device_)

    def _init_emissions(self, X: torch.Tensor) -> None:
        X_np = X.detach().cpu().double().numpy()
        if self._needs_init("m", "means_"):
            from sklearn.cluster import KMeans

            # Same k-means, seeded the same way, as hmmlearn's initialisation.
            self.means_ = KMeans(n_clusters=self.n_components, random_state=self.random_state,
                                 n_init=10).fit(X_np).cluster_centers_
        elif self.n_features_in_ != X.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features, but means_ has {self.n_features_in_}")
        self.n_features_in_ = X.shape[1]
        if self._needs_init("c", "covars_"):
            cov = np.atleast_2d(np.cov(X_np.T)) + self.min_covar * np.eye(X.shape[1]) if len(X_np) > 1 \
                else np.eye(X.shape[1])
            k = self.n_components
            # hmmlearn's spherical start is the mean of *all* entries of the data covariance.
            self.covars_ = {"spherical": np.full(k, cov.mean()),
                            "diag": np.tile(np.diag(cov), (k, 1)),
                            "full": np.tile(cov, (k, 1, 1))}[self.covariance_type]
        self._check_fitted()

    def _log_frameprob(self, X: torch.Tensor) -> torch.Tensor:
        """``log N(x_t | mu_k, Sigma_k)`` for every row and state, shape ``(n, K)``."""
        n_features = self.n_features_in_
        if self.covariance_type == "full":
            chol, info = torch.linalg.cholesky_ex(self._covars)
            if (info > 0).any():  # as hmmlearn: retry with a tiny ridge before giving up
                chol, info = torch.linalg.cholesky_ex(
                    self._covars + 1e-7 * torch.eye(n_features, dtype=self.dtype_, device=self.device_))
                if (info > 0).any():
                    raise ValueError("covars_ must be symmetric positive definite")
            return cholesky_gaussian_log_prob(X, self._means, chol)
        variances = self._diag_covars().clamp_min(torch.finfo(self.dtype_).tiny)
        return diag_gaussian_log_prob_table(X, self._means, variances)

    def _mstep_emissions(self, X: torch.Tensor, posteriors: torch.Tensor) -> None:
        # hmmlearn's estimates (Huang, Acero & Hon), written for all states at once.
        post = posteriors.sum(0)[:, None]                                     # (K, 1)
        obs = posteriors.T @ X                                                # (K, D)
        if "m" in self.params:
            self._means = (self.means_weight * self.means_prior + obs) / (self.means_weight + post)
        if "c" not in self.params:
            return
        means, weight = self._means, self.means_weight
        meandiff = means - self.means_prior
        if self.covariance_type == "full":
            obs_outer = torch.einsum("nk,nd,ne->kde", posteriors, X, X)
            cross = obs[:, :, None] * means[:, None, :]
            c_n = (weight * meandiff[:, :, None] * meandiff[:, None, :] + obs_outer - cross
                   - cross.transpose(1, 2) + means[:, :, None] * means[:, None, :] * post[:, :, None])
            denom = max(self.covars_weight - self.n_features_in_, 0) + post[:, :, None]
            self._covars = (self.covars_prior + c_n) / denom
            return
        obs2 = posteriors.T @ X ** 2
        c_n = weight * meandiff ** 2 + obs2 - 2 * means * obs + means ** 2 * post
        c_d = max(self.covars_weight - 1, 0) + post
        covars = (self.covars_prior + c_n) / c_d.clamp_min(1e-5)
        if self.covariance_type == "spherical":
            covars = covars.mean(1, keepdim=True).expand(-1, self.n_features_in_).clone()
        self._covars = covars

    def _emission_scalars(self) -> int:
        k, d = self.n_components, self.n_features_in_
        return k * d + {"spherical": k, "diag": k * d, "full": k * d * (d + 1) // 2}[self.covariance_type]

    def _sample_emissions(self, states: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(len(states), self.n_features_in_, generator=generator, dtype=torch.float64)
        noise = noise.to(dtype=self.dtype_, device=self.device_)
        chol = torch.linalg.cholesky(self.covars_)
        return self._means[states] + torch.einsum("nde,ne->nd", chol[states], noise)


# ============================================================================ categorical
class CategoricalHMM(_BaseHMM):
    """HMM emitting one symbol from ``{0, ..., n_features - 1}`` per step, hmmlearn's ``CategoricalHMM``.

    ``X`` holds non-negative integers, shape ``(n, 1)`` (as in hmmlearn) or ``(n,)``.

    Args:
        n_components: number of hidden states.
        n_features: number of symbols (None: ``max(X) + 1`` at fit, stored in ``n_features_``).
        startprob_prior, transmat_prior, emissionprob_prior: Dirichlet concentrations of the MAP
            M-step (1: plain maximum likelihood).
        params, init_params: letters from ``s`` (startprob), ``t`` (transmat), ``e`` (emissionprob).
        Others as in :class:`GaussianHMM`.

    Fitted attributes: ``startprob_``, ``transmat_``, ``emissionprob_`` ``(K, n_features_)``,
    ``n_features_`` (number of symbols), ``n_features_in_`` (1), ``monitor_``, ``converged_``,
    ``n_iter_``, ``device_``, ``dtype_``.
    """

    _param_codes = "e"
    _fitted_names = ("emissionprob_",)

    def __init__(self, n_components: int = 1, n_features: int | None = None, startprob_prior: float = 1.0,
                 transmat_prior: float = 1.0, emissionprob_prior: float = 1.0, algorithm: str = "viterbi",
                 random_state: Any = None, n_iter: int = 10, tol: float = 1e-2, params: str = "ste",
                 init_params: str = "ste", implementation: str = "log",
                 device: torch.device | str | None = None, dtype: Any = np.float64):
        self.n_components = n_components
        self.n_features = n_features
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.emissionprob_prior = emissionprob_prior
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.device = device
        self.dtype = dtype

    def _check_emission_settings(self) -> None:
        if self.n_features is not None:
            check_int(self.n_features, "n_features", minimum=1)
        check_float(self.emissionprob_prior, "emissionprob_prior", low=0.0)

    @property
    def emissionprob_(self) -> torch.Tensor:
        """``B[k, s] = p(x_t = s | z_t = k)``, shape ``(n_components, n_features_)``."""
        return self._get("emissionprob_")

    @emissionprob_.setter
    def emissionprob_(self, value: Any) -> None:
        self._runtime()
        array = _as_matrix("emissionprob_", value)
        if self.n_features is not None and array.shape[1] != self.n_features:
            raise ValueError(f"emissionprob_ has {array.shape[1]} symbols, but n_features = {self.n_features}")
        k = check_int(self.n_components, "n_components", minimum=1)
        self._emissionprob = _as_stochastic("emissionprob_", array, (k, array.shape[1]), self.dtype_, self.device_)
        self.n_features_ = int(array.shape[1])
        self.n_features_in_ = 1

    def _validate_X(self, X: Any, fitting: bool) -> torch.Tensor:
        if hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse"):
            raise TypeError("X is a sparse matrix; pass a dense array of integer symbols")
        if isinstance(X, (str, bytes)):
            raise TypeError(f"X must be an array of integer symbols, got a string {X!r}")
        if isinstance(X, torch.Tensor):
            array = X.detach()
            if array.is_floating_point() or array.is_complex() or array.dtype == torch.bool:
                raise ValueError(f"X must hold integer symbols, got dtype {array.dtype}")
        else:
            try:
                numpy_array = np.asarray(X)
            except Exception as err:
                raise ValueError(f"X could not be read as an array: {err}") from err
            if numpy_array.dtype == bool or not np.issubdtype(numpy_array.dtype, np.integer):
                raise ValueError(f"X must hold integer symbols, got dtype {numpy_array.dtype}")
            array = torch.as_tensor(numpy_array)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise ValueError(f"X must have shape (n_samples, 1) or (n_samples,), got {tuple(array.shape)}")
        if array.shape[0] == 0:
            raise ValueError("X has no rows (empty input)")
        if (array < 0).any():
            raise ValueError(f"X holds negative symbols (smallest {int(array.min())}); symbols are 0..n_features-1")
        largest = int(array.max())
        n_symbols = self.n_features if fitting else self.n_features_
        if n_symbols is not None and largest >= n_symbols:
            raise ValueError(f"X holds symbol {largest}, but the model only emits 0..{n_symbols - 1} "
                             f"(n_features={n_symbols})")
        return array.to(device=self.device_, dtype=torch.int64)

    def _init_emissions(self, X: torch.Tensor) -> None:
        if self._needs_init("e", "emissionprob_"):
            n_symbols = self.n_features if self.n_features is not None else int(X.max()) + 1
            # hmmlearn draws these from a fresh RandomState seeded with random_state.
            emission = numpy_random_state(self.random_state).rand(self.n_components, n_symbols)
            self.emissionprob_ = emission / emission.sum(1, keepdims=True)
        elif int(X.max()) >= self.n_features_:
            raise ValueError(f"X holds symbol {int(X.max())}, but emissionprob_ has {self.n_features_} symbols")

    def _log_frameprob(self, X: torch.Tensor) -> torch.Tensor:
        return torch.log(self._emissionprob).T[X]

    def _mstep_emissions(self, X: torch.Tensor, posteriors: torch.Tensor) -> None:
        if "e" not in self.params:
            return
        counts = torch.zeros(self.n_features_, self.n_components, dtype=self.dtype_, device=self.device_)
        counts.index_add_(0, X, posteriors)
        self._emissionprob = _normalize(torch.clamp(self.emissionprob_prior - 1 + counts.T, min=0))

    def _emission_scalars(self) -> int:
        return self.n_components * (self.n_features_ - 1)

    def _sample_emissions(self, states: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        cdf = torch.cumsum(self._emissionprob, 1)[states]
        uniforms = torch.rand(len(states), generator=generator, dtype=torch.float64)
        uniforms = uniforms.to(dtype=self.dtype_, device=self.device_)
        symbols = (cdf <= uniforms[:, None]).sum(1).clamp_max(self.n_features_ - 1)
        return symbols[:, None]


# ============================================================================ exercise support
def check_forward_answer(answer: Any, *, random_state: int = 0) -> str | None:
    """Compare a learner's ``scaled_forward(startprob, transmat, log_b) -> log p(x)`` with genlab.

    The learner's function gets NumPy arrays: ``startprob`` ``(K,)``, ``transmat`` ``(K, K)`` and the
    log-emission matrix ``log_b`` ``(T, K)`` of a 1,000-step sequence, and must return the
    log-likelihood (a float, nats) that :meth:`GaussianHMM.score` gives. Returns ``None`` if it
    agrees, else a diagnosis naming the likely mistake (probabilities that underflow, a forgotten
    initial distribution or emission shift, a transposed transition matrix, a missing scale).
    """
    if not callable(answer):
        return "answer must be a function scaled_forward(startprob, transmat, log_b) returning log p(x) as a float"
    seed = check_int(random_state, "random_state", minimum=0)
    model = GaussianHMM(3, covariance_type="diag", init_params="", device="cpu")
    model.startprob_ = [0.7, 0.2, 0.1]
    model.transmat_ = [[0.90, 0.08, 0.02], [0.15, 0.80, 0.05], [0.05, 0.25, 0.70]]
    model.means_, model.covars_ = [[-2.0], [0.5], [3.0]], [[0.6], [1.0], [2.0]]
    X, _ = model.sample(1000, random_state=seed)
    expected = model.score(X)
    startprob, transmat = model.startprob_.numpy(), model.transmat_.numpy()
    log_b = model._log_frameprob(torch.as_tensor(X)).numpy()
    try:
        got = answer(startprob.copy(), transmat.copy(), log_b.copy())
        got = float(np.asarray(got).item()) if np.size(got) == 1 else got
    except Exception as err:  # the learner's code may fail in any way
        return f"scaled_forward(startprob, transmat, log_b) raised {err!r}"
    if not isinstance(got, float):
        return f"return one number, log p(x_1..x_T) (a float), not an array of shape {np.shape(got)}"
    if math.isclose(got, expected, rel_tol=1e-8, abs_tol=1e-8):
        return None
    if not math.isfinite(got):
        return ("the result is not finite: products of 1,000 probabilities underflow to 0. Rescale alpha_t to sum to "
                "1 at every step and add the log of each step's normaliser c_t; exponentiate log_b only after "
                "subtracting each row's maximum (and add that maximum back)")

    def reference(pi: np.ndarray, A: np.ndarray, lb: np.ndarray, *, add_shift: bool = True,
                  first_scale: bool = True) -> float:
        shift = lb.max(1, keepdims=True)
        b = np.exp(lb - shift)
        alpha = pi * b[0]
        logs = [math.log(alpha.sum())] if first_scale else []
        alpha = alpha / alpha.sum()
        for t in range(1, len(b)):
            alpha = (alpha @ A) * b[t]
            logs.append(math.log(alpha.sum()))
            alpha = alpha / alpha.sum()
        return float(sum(logs) + (shift.sum() if add_shift else 0.0))

    uniform = np.full(3, 1 / 3)
    diagnoses = [
        (reference(np.ones(3), transmat, log_b), "the initial distribution is missing: alpha_1(k) = pi_k b_k(x_1), "
                                                 "not b_k(x_1)"),
        (reference(uniform, transmat, log_b), "alpha_1 must use startprob (pi), not a uniform start"),
        (reference(startprob, transmat.T, log_b), "the transition matrix is transposed: alpha_t(j) = "
                                                  "b_j(x_t) sum_i alpha_{t-1}(i) A[i, j], i.e. alpha @ A"),
        (reference(startprob, transmat, log_b, add_shift=False), "you shifted log_b by each row's maximum before "
                                                                 "exponentiating (right) but did not add the shifts "
                                                                 "back to log p(x)"),
        (reference(startprob, transmat, log_b, first_scale=False), "the normaliser of the first step is missing: "
                                                                   "log p(x) = sum over ALL t of log c_t, t = 1..T"),
        (reference(startprob, transmat, log_b[:-1]), "the last step is missing: the recursion runs over all T steps"),
    ]
    for value, message in diagnoses:
        if math.isclose(got, value, rel_tol=1e-8, abs_tol=1e-8):
            return message
    if math.isclose(got, math.exp(expected) if expected > -700 else 0.0, abs_tol=1e-300):
        return "return log p(x) (nats), not p(x)"
    return (f"log p(x) should be {expected:.6f}, got {got:.6f}: alpha_1 = pi * b_1; alpha_t = (alpha_{{t-1}} @ A) * "
            f"b_t; normalise alpha_t by c_t = its sum and return sum_t log c_t plus the emission shifts")


# ----------------------------------------------------------------------------- a hand-built profile HMM
#: The 20 standard amino acids, one letter each, in alphabetical order (symbol i is AMINO_ACIDS[i]).
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
#: Background amino-acid frequencies (approximate UniProtKB/Swiss-Prot composition, renormalised).
_BACKGROUND = (8.25, 1.38, 5.46, 6.72, 3.86, 7.07, 2.27, 5.91, 5.80, 9.65, 2.41, 4.06, 4.74, 3.93, 5.53, 6.64,
               5.35, 6.86, 1.10, 2.92)


def profile_hmm(n_match: int = 30, *, conservation: float = 0.7, p_insert: float = 0.05, p_delete: float = 0.05,
                p_extend: float = 0.5, random_state: Any = 0) -> CategoricalHMM:
    """A hand-built profile HMM over the 20 amino acids (:data:`AMINO_ACIDS`), ready to sample and score.

    A profile HMM (Krogh et al. 1994; Eddy 1998) describes a protein family: match state ``M_i`` emits the
    family's residue at position ``i``, insert state ``I_i`` adds residues between positions ``i`` and
    ``i + 1``. Here match state ``i`` emits a *consensus* residue (drawn at random once) with probability
    ``conservation`` and otherwise a background residue; insert states emit background residues.
    :class:`CategoricalHMM` has no silent states, so a deletion is a jump ``M_i -> M_{i+2}`` (probability
    ``p_delete``), and after the last match state the chain stays in a background state ``C`` (the
    C-terminal tail), so sequences of any length can be drawn. States: ``M_0..M_{L-1}``, ``I_0..I_{L-1}``, ``C``.

    Args:
        n_match: number of match states (positions of the family).
        conservation: probability that a match state emits its consensus residue (0..1).
        p_insert: probability ``M_i -> I_i``; ``p_extend``: ``I_i -> I_i``.
        p_delete: probability ``M_i -> M_{i+2}``.
        random_state: seed of the consensus residues.

    Returns:
        A :class:`CategoricalHMM` with ``startprob_``, ``transmat_`` and ``emissionprob_`` set (CPU, float64).
    """
    n_match = check_int(n_match, "n_match", minimum=2)
    conservation = check_float(conservation, "conservation", low=0.0, high=1.0)
    p_insert = check_float(p_insert, "p_insert", low=0.0, high=0.5)
    p_delete = check_float(p_delete, "p_delete", low=0.0, high=0.5)
    p_extend = check_float(p_extend, "p_extend", low=0.0, high=1.0, high_inclusive=False)
    generator = check_random_state(random_state)
    background = np.asarray(_BACKGROUND) / np.sum(_BACKGROUND)
    n_states, tail = 2 * n_match + 1, 2 * n_match
    consensus = torch.multinomial(torch.as_tensor(background), n_match, replacement=True,
                                  generator=generator).numpy()
    emission = np.tile(background, (n_states, 1))
    emission[np.arange(n_match)] *= 1 - conservation
    emission[np.arange(n_match), consensus] += conservation
    trans = np.zeros((n_states, n_states))
    for i in range(n_match):
        nxt = i + 1 if i + 1 < n_match else tail
        skip = i + 2 if i + 2 < n_match else tail
        trans[i, n_match + i] += p_insert
        trans[i, skip] += p_delete
        trans[i, nxt] += 1 - p_insert - p_delete
        trans[n_match + i, n_match + i] = p_extend
        trans[n_match + i, nxt] += 1 - p_extend
    trans[tail, tail] = 1.0
    start = np.zeros(n_states)
    start[0] = 1.0
    model = CategoricalHMM(n_components=n_states, n_features=len(AMINO_ACIDS), device="cpu")
    model.startprob_, model.transmat_, model.emissionprob_ = start, trans, emission
    return model
