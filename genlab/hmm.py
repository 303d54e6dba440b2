"""Hidden Markov models in torch, with hmmlearn's API.

* :class:`GaussianHMM` -- Gaussian emissions (``"spherical"``, ``"diag"`` or ``"full"``
  covariances);
* :class:`CategoricalHMM` -- one discrete symbol per time step.

Both follow ``hmmlearn.hmm`` {cite}`rabiner1989tutorial`: the same constructor arguments
(``n_components``, ``n_iter``, ``tol``, ``params``, ``init_params``, ``random_state``, the
Dirichlet / covariance priors), the same fitted attributes (``startprob_``, ``transmat_``,
``means_``, ``covars_`` as full matrices, ``emissionprob_``, ``monitor_``), the same
initialisation from the same ``random_state`` and the same MAP M-step, so a fit from the same
start gives the same parameters. Several sequences are passed as hmmlearn does: concatenated in
``X`` with their ``lengths``.

How it runs. The sequences are padded into one ``(n_sequences, max_length, n_components)``
batch, so the forward, backward and Viterbi recursions loop over *time* only, each step being
a handful of tensor operations over all sequences and states at once; posteriors, transition
statistics and the M-step are fully vectorised. Two forward-backward implementations, as in
hmmlearn:

* ``implementation="log"`` (default): the recursions in log space. The log-sum-exp over the
  previous state is written ``m + log(exp(a - m) @ A)`` with ``m`` the running maximum, one
  matrix product per step;
* ``implementation="scaling"``: Rabiner's scaled recursions on probabilities (emissions shifted
  by their per-step maximum first), fewer operations per step; if a step underflows to zero
  the E-step is redone in log space.

On the CPU, the time loops (and whole calls on small data) run on one intra-op thread, the
thread count restored afterwards: their tensors hold a few hundred numbers, and waking a thread
pool for each of them costs more than it saves (on a busy machine, far more).

Results are torch tensors on ``device_``; ``score`` and the decoders' log-probabilities are
floats. Unlike genlab's i.i.d. estimators, ``score`` is the *total* log-likelihood of ``X``
(nats), as in hmmlearn, because the frames of a sequence are not independent.
"""
from __future__ import annotations

import functools
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state

from .base import NotFittedError, as_float_tensor, resolve_device

COVARIANCE_TYPES = ("spherical", "diag", "full")
IMPLEMENTATIONS = ("log", "scaling")
DECODERS = ("viterbi", "map")


# ============================================================================ small checks
def _int_at_least(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _finite_at_least(name: str, value: Any, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum}, got {value!r}")
    return float(value)


def _as_param(name: str, value: Any, shape: tuple[int, ...], dtype: torch.dtype,
              device: torch.device) -> torch.Tensor:
    """A parameter array as a finite tensor of the expected shape."""
    tensor = value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value, dtype=float))
    tensor = tensor.to(dtype=dtype, device=device)
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return tensor


def _as_matrix(name: str, value: Any) -> Any:
    """A 2-D ``(n_components, n_features)`` parameter as given (tensor or float array); checks the rank."""
    array = value.detach() if isinstance(value, torch.Tensor) else np.asarray(value, dtype=float)
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
    array = lengths.detach().cpu().numpy() if isinstance(lengths, torch.Tensor) else np.asarray(lengths)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"lengths must be a non-empty 1-D sequence of integers, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"lengths must hold integers, got dtype {array.dtype}")
    if (array < 1).any():
        raise ValueError(f"every sequence needs at least 1 time step; lengths has {int(array.min())}")
    if int(array.sum()) != n_samples:
        raise ValueError(f"lengths sum to {int(array.sum())}, but X has {n_samples} rows")
    return array.astype(np.int64)


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
    the forward and Viterbi recursions, and aligned at their end (padding at the start) for the
    backward recursion. Each recursion then begins every sequence at its true first (last)
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
        self.n_samples = int(lengths.sum())
        self.max_length = max_length
        self.head_mask, self.tail_mask = as_tensor(head), as_tensor(tail)
        self.head_index = as_tensor(np.where(head, starts[:, None] + steps, 0))
        self.tail_index = as_tensor(np.where(tail, starts[:, None] + steps - shift, 0))
        self.first = as_tensor(starts)
        self.last_step = as_tensor(lengths - 1)
        self.rows = as_tensor(np.arange(n_sequences))
        has_next = np.ones(self.n_samples, dtype=bool)
        has_next[starts + lengths - 1] = False
        # Rows t whose successor t + 1 belongs to the same sequence: one transition each.
        self.pairs = as_tensor(np.flatnonzero(has_next))

    def pad(self, flat: torch.Tensor, at_start: bool = False) -> torch.Tensor:
        index, mask = (self.tail_index, self.tail_mask) if at_start else (self.head_index, self.head_mask)
        return flat[index].masked_fill(~mask[..., None], 0.0)

    def unpad(self, padded: torch.Tensor, at_start: bool = False) -> torch.Tensor:
        return padded[self.tail_mask if at_start else self.head_mask]


# ============================================================================ recursions
# Below this many numbers per time step (sequences x states x states) the recursions run on one
# CPU thread. Each step is a few operations on a tiny tensor; waking torch's thread pool for
# them costs more than the arithmetic, and on a machine with more busy threads than cores a
# single small exp/log can wait milliseconds for its helper threads.
_SERIAL_WORK = 1 << 16


# A whole call on fewer numbers than this (rows x features x states) also runs on one thread:
# every operation of a small fit is as small as the steps above.
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
        with _one_thread_if(size * self.n_components < _SERIAL_DATA, self.device_):
            return method(self, X, *args, **kwargs)
    return wrapper


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


def _shift_exp(log_values: torch.Tensor) -> torch.Tensor:
    """``exp(v - max v)`` per row: the row's values up to a factor, without overflow."""
    return torch.exp(log_values - log_values.amax(-1, keepdim=True))


def _transition_counts(log_alpha: torch.Tensor, log_beta: torch.Tensor, log_frameprob: torch.Tensor,
                       transmat: torch.Tensor, batch: _Batch) -> torch.Tensor:
    """Expected transition counts ``sum_t xi_t(i, j)`` over every sequence, vectorised over t.

    ``xi_t(i, j) ∝ alpha_t(i) A_ij b_j(x_{t+1}) beta_{t+1}(j)``, normalised per step, so the
    unknown per-step constants of ``log_alpha`` / ``log_beta`` cancel.
    """
    pairs = batch.pairs
    if pairs.numel() == 0:
        return torch.zeros_like(transmat)
    u = _shift_exp(log_alpha[pairs])
    v = _shift_exp(log_frameprob[pairs + 1] + log_beta[pairs + 1])
    norm = ((u @ transmat) * v).sum(-1, keepdim=True).clamp_min(torch.finfo(u.dtype).tiny)
    return transmat * ((u / norm).T @ v)


def _viterbi(log_startprob: torch.Tensor, log_transmat: torch.Tensor, log_b: torch.Tensor,
             batch: _Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Most probable state paths (max-product in log space) for every sequence at once.

    Returns the log-probability of each sequence's best path and the flat state sequence.
    """
    delta = log_startprob + log_b[:, 0]
    deltas = [delta]
    with _serial_time_loop(delta, log_transmat.shape[0]):
        for log_b_t in log_b.unbind(1)[1:]:
            delta = (delta.unsqueeze(2) + log_transmat).amax(1) + log_b_t
            deltas.append(delta)
    all_deltas = torch.stack(deltas, 1)
    final = all_deltas[batch.rows, batch.last_step]
    best, last = final.max(-1)
    # The back-pointers argmax_i delta_{t-1}(i) + log A_ij for all steps at once, outside the loop
    # (an arg-reduction per step is the slowest small kernel on a busy multi-threaded CPU).
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
    flat = torch.as_tensor(states, device=log_b.device)[batch.head_mask]
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


class _BaseHMM:
    """Shared machinery: validation, E-step, Baum-Welch loop, decoding, scoring, sampling.

    Subclasses define ``_param_codes`` (letters of their parameters beyond ``s``/``t``),
    ``_fitted_names``, ``_validate_X``, ``_init_emissions``, ``_log_frameprob``,
    ``_mstep_emissions``, ``_emission_scalars`` and ``_sample_emissions``.
    """

    _param_codes = ""
    _fitted_names: tuple[str, ...] = ()

    def __init__(self, n_components: int, startprob_prior: float, transmat_prior: float, algorithm: str,
                 random_state: Any, n_iter: int, tol: float, params: str, init_params: str,
                 implementation: str, device: torch.device | str | None, dtype: torch.dtype):
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.device = device
        self.dtype = dtype
        self.device_ = resolve_device(device)
        self.monitor_ = ConvergenceMonitor(tol, n_iter)

    # ------------------------------------------------------------------ parameters
    def _check_settings(self) -> None:
        _int_at_least("n_components", self.n_components, 1)
        _int_at_least("n_iter", self.n_iter, 0)
        if isinstance(self.tol, bool) or not isinstance(self.tol, (int, float, np.integer, np.floating)) \
                or math.isnan(self.tol):
            # Negative (even -inf) is allowed: it makes EM run all n_iter iterations.
            raise ValueError(f"tol must be a number, got {self.tol!r}")
        _finite_at_least("startprob_prior", self.startprob_prior, 0.0)
        _finite_at_least("transmat_prior", self.transmat_prior, 0.0)
        allowed = "st" + self._param_codes
        for name in ("params", "init_params"):
            value = getattr(self, name)
            if not isinstance(value, str) or set(value) - set(allowed):
                raise ValueError(f"{name} must be a string of letters from {allowed!r}, got {value!r}")
        if self.implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {self.implementation!r}")
        if self.algorithm not in DECODERS:
            raise ValueError(f"algorithm must be one of {DECODERS}, got {self.algorithm!r}")
        if self.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {self.dtype!r}")

    def _tensor(self, value: Any) -> torch.Tensor:
        return torch.as_tensor(value, dtype=self.dtype, device=self.device_)

    @property
    def startprob_(self) -> torch.Tensor | None:
        """Initial state distribution, shape ``(n_components,)``."""
        return getattr(self, "_startprob", None)

    @startprob_.setter
    def startprob_(self, value: Any) -> None:
        self._startprob = _as_stochastic("startprob_", value, (self.n_components,), self.dtype, self.device_)

    @property
    def transmat_(self) -> torch.Tensor | None:
        """Transition matrix ``A[i, j] = p(z_{t+1} = j | z_t = i)``, shape ``(n_components, n_components)``."""
        return getattr(self, "_transmat", None)

    @transmat_.setter
    def transmat_(self, value: Any) -> None:
        self._transmat = _as_stochastic("transmat_", value, (self.n_components,) * 2, self.dtype, self.device_)

    def _check_fitted(self) -> None:
        missing = [name for name in ("startprob_", "transmat_") + self._fitted_names
                   if getattr(self, name, None) is None]
        if missing:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet (no {', '.join(missing)}); "
                                 "call fit(X) first or set these attributes")

    def _needs_init(self, code: str, name: str) -> bool:
        return code in self.init_params or getattr(self, name, None) is None

    def _init_params(self, X: torch.Tensor) -> None:
        """hmmlearn's initialisation, drawn from the same ``random_state`` stream."""
        rng = check_random_state(self.random_state)
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

    def _forward_backward(self, log_frameprob: torch.Tensor,
                          batch: _Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-sequence log-likelihoods, and ``log alpha`` / ``log beta`` up to a constant per step."""
        loglik, log_alpha, b = self._forward(log_frameprob, batch)
        if b is not None:
            log_beta = _backward_scaling(self._transmat, batch.pad(b, at_start=True), batch)
        else:
            log_beta = _backward_log(self._transmat, batch.pad(log_frameprob, at_start=True), batch)
        return loglik, log_alpha, log_beta

    def _forward(self, log_frameprob: torch.Tensor,
                 batch: _Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Forward pass: per-sequence log-likelihoods, ``log alpha`` up to a constant per step, and
        the shifted emission probabilities when the scaled recursion was used (else None)."""
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

    @_serial_when_small
    def _score(self, X: Any, lengths: Any) -> tuple[torch.Tensor, torch.Tensor]:
        X, batch = self._prepare(X, lengths)
        log_frameprob = self._log_frameprob(X)
        loglik, log_alpha, log_beta = self._forward_backward(log_frameprob, batch)
        return loglik, torch.softmax(log_alpha + log_beta, -1)

    # ------------------------------------------------------------------ public API
    @_serial_when_small
    def fit(self, X: Any, lengths: Any = None) -> "_BaseHMM":
        """Estimate the parameters by Baum-Welch (EM) {cite}`baum1970maximization`; return ``self``.

        Parameters whose letter is not in ``init_params`` and that are already set are used as
        the starting point; only those whose letter is in ``params`` are updated. Stops after
        ``n_iter`` iterations or when the log-likelihood gains less than ``tol``.
        ``monitor_.history`` holds the log-likelihood of ``X`` under the parameters of each
        iteration's E-step (before that iteration's M-step), as in hmmlearn.
        """
        self._check_settings()
        self.device_ = resolve_device(self.device)
        X = self._validate_X(X, fitting=True)
        batch = _Batch(_check_lengths(lengths, X.shape[0]), self.device_)
        self._init_params(X)
        self.monitor_ = ConvergenceMonitor(self.tol, self.n_iter)
        self.converged_ = False
        for _ in range(self.n_iter):
            log_frameprob = self._log_frameprob(X)
            loglik, log_alpha, log_beta = self._forward_backward(log_frameprob, batch)
            posteriors = torch.softmax(log_alpha + log_beta, -1)
            self._mstep(X, posteriors, log_alpha, log_beta, log_frameprob, batch)
            self.monitor_.history.append(float(loglik.sum()))
            history = self.monitor_.history
            if len(history) >= 2 and history[-1] - history[-2] < self.tol:
                self.converged_ = True
                break
        self.n_iter_ = self.monitor_.iter
        return self

    def _mstep(self, X: torch.Tensor, posteriors: torch.Tensor, log_alpha: torch.Tensor, log_beta: torch.Tensor,
               log_frameprob: torch.Tensor, batch: _Batch) -> None:
        """hmmlearn's MAP M-step: ``max(prior - 1 + counts, 0)``, normalised; zeros stay zero."""
        if "s" in self.params:
            counts = posteriors[batch.first].sum(0)
            start = torch.clamp(self.startprob_prior - 1 + counts, min=0)
            self._startprob = _normalize(torch.where(self._startprob == 0, 0.0, start))
        if "t" in self.params:
            counts = _transition_counts(log_alpha, log_beta, log_frameprob, self._transmat, batch)
            trans = torch.clamp(self.transmat_prior - 1 + counts, min=0)
            self._transmat = _normalize(torch.where(self._transmat == 0, 0.0, trans))
        self._mstep_emissions(X, posteriors)

    @_serial_when_small
    def score(self, X: Any, lengths: Any = None) -> float:
        """Total log-likelihood ``log p(X)`` of all sequences (nats), as in hmmlearn (forward pass only)."""
        X, batch = self._prepare(X, lengths)
        return float(self._forward(self._log_frameprob(X), batch)[0].sum())

    def score_samples(self, X: Any, lengths: Any = None) -> tuple[float, torch.Tensor]:
        """Total log-likelihood and the state posteriors ``p(z_t = k | sequence)``, shape ``(n, K)``."""
        loglik, posteriors = self._score(X, lengths)
        return float(loglik.sum()), posteriors

    def predict_proba(self, X: Any, lengths: Any = None) -> torch.Tensor:
        """State posteriors ``p(z_t = k | sequence)`` from forward-backward, shape ``(n, K)``."""
        return self._score(X, lengths)[1]

    @_serial_when_small
    def decode(self, X: Any, lengths: Any = None, algorithm: str | None = None) -> tuple[float, torch.Tensor]:
        """Most likely states: ``"viterbi"`` (best joint path {cite}`viterbi1967error`) or ``"map"``.

        Returns a summed log-probability and the states, shape ``(n,)``. For Viterbi it is the
        log-probability of the best joint paths (as in hmmlearn); for ``"map"`` the sum of the
        log posterior maxima (hmmlearn sums the maxima themselves, not their logs).
        """
        algorithm = self.algorithm if algorithm is None else algorithm
        if algorithm not in DECODERS:
            raise ValueError(f"algorithm must be one of {DECODERS}, got {algorithm!r}")
        if algorithm == "map":
            posteriors = self.predict_proba(X, lengths)
            best, states = posteriors.max(-1)
            return float(torch.log(best).sum()), states
        X, batch = self._prepare(X, lengths)
        best, states = _viterbi(torch.log(self._startprob), torch.log(self._transmat),
                                batch.pad(self._log_frameprob(X)), batch)
        return float(best.sum()), states

    def predict(self, X: Any, lengths: Any = None) -> torch.Tensor:
        """Most likely state of every row with the estimator's ``algorithm`` (Viterbi by default)."""
        return self.decode(X, lengths)[1]

    def sample(self, n_samples: int = 1, random_state: Any = None,
               currstate: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw one sequence of ``n_samples`` steps; returns ``(X, states)``.

        ``random_state`` (default: the estimator's) seeds a NumPy ``RandomState``; ``currstate``
        fixes the first state (to continue a sequence).
        """
        self._check_fitted()
        n_samples = _int_at_least("n_samples", n_samples, 1)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        startprob = self._startprob.cpu().double().numpy()
        transmat_cdf = np.cumsum(self._transmat.cpu().double().numpy(), axis=1)
        uniforms = rng.random_sample(n_samples)
        states = np.empty(n_samples, dtype=np.int64)
        if currstate is None:
            state = int(np.searchsorted(np.cumsum(startprob), uniforms[0], side="right"))
        else:
            state = _int_at_least("currstate", currstate, 0)
            if state >= self.n_components:
                raise ValueError(f"currstate must be < n_components = {self.n_components}, got {state}")
        states[0] = min(state, self.n_components - 1)
        # The chain is sequential; the emissions are then drawn for all steps at once.
        for t in range(1, n_samples):
            states[t] = min(int(np.searchsorted(transmat_cdf[states[t - 1]], uniforms[t], side="right")),
                            self.n_components - 1)
        states_t = torch.as_tensor(states, device=self.device_)
        return self._sample_emissions(states_t, rng), states_t

    def _n_parameters(self) -> int:
        k = self.n_components
        return (k - 1) + k * (k - 1) + self._emission_scalars()

    def bic(self, X: Any, lengths: Any = None) -> float:
        """Bayesian information criterion ``-2 log p(X) + n_params log n`` (lower is better)."""
        return -2 * self.score(X, lengths) + self._n_parameters() * math.log(len(X))

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

    def _sample_emissions(self, states: torch.Tensor, rng: np.random.RandomState) -> torch.Tensor:
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
            and covariances (defaults as in hmmlearn; ``covars_prior=1e-2`` keeps variances > 0).
        algorithm: decoder of ``predict``, ``"viterbi"`` or ``"map"``.
        random_state: seed (int), ``numpy.random.RandomState`` or None; the same value draws the
            same initial parameters as hmmlearn (Dirichlet start/transitions, k-means means).
        n_iter, tol: at most ``n_iter`` EM iterations; stop when the log-likelihood gains < ``tol``.
        params, init_params: letters of the parameters updated by EM / initialised in ``fit``:
            ``s`` startprob, ``t`` transmat, ``m`` means, ``c`` covars.
        implementation: ``"log"`` or ``"scaling"`` forward-backward (see the module docstring).
        device: where to compute (None: CUDA when present); dtype: float64 (default) or float32.

    Fitted attributes (torch tensors on ``device_``): ``startprob_``, ``transmat_``, ``means_``
    ``(K, D)``, ``covars_`` ``(K, D, D)`` whatever the covariance type (as hmmlearn exposes
    them), ``n_features``, ``monitor_``, ``converged_``, ``n_iter_``.
    """

    _param_codes = "mc"
    _fitted_names = ("means_", "covars_")

    def __init__(self, n_components: int = 1, covariance_type: str = "diag", min_covar: float = 1e-3,
                 startprob_prior: float = 1.0, transmat_prior: float = 1.0, means_prior: float = 0.0,
                 means_weight: float = 0.0, covars_prior: float = 1e-2, covars_weight: float = 1.0,
                 algorithm: str = "viterbi", random_state: Any = None, n_iter: int = 10, tol: float = 1e-2,
                 params: str = "stmc", init_params: str = "stmc", implementation: str = "log",
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float64):
        super().__init__(n_components, startprob_prior, transmat_prior, algorithm, random_state, n_iter, tol,
                         params, init_params, implementation, device, dtype)
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}")
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.n_features: int | None = None

    def _check_settings(self) -> None:
        super()._check_settings()
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_type must be one of {COVARIANCE_TYPES}, got {self.covariance_type!r}")
        for name in ("min_covar", "means_weight", "covars_prior", "covars_weight"):
            _finite_at_least(name, getattr(self, name), 0.0)
        _finite_at_least("means_prior", self.means_prior, -math.inf)

    # ------------------------------------------------------------------ parameters
    @property
    def means_(self) -> torch.Tensor | None:
        """State means, shape ``(n_components, n_features)``."""
        return getattr(self, "_means", None)

    @means_.setter
    def means_(self, value: Any) -> None:
        array = _as_matrix("means_", value)
        self._means = _as_param("means_", array, (self.n_components, array.shape[1]), self.dtype, self.device_)
        self.n_features = array.shape[1]

    @property
    def covars_(self) -> torch.Tensor | None:
        """State covariances as full matrices, shape ``(n_components, n_features, n_features)``."""
        covars = getattr(self, "_covars", None)
        if covars is None or self.covariance_type == "full":
            return covars
        return torch.diag_embed(self._diag_covars())

    @covars_.setter
    def covars_(self, value: Any) -> None:
        """Accepts hmmlearn's shapes: ``(K,)`` spherical, ``(K, D)`` diag, ``(K, D, D)`` full."""
        array = value.detach() if isinstance(value, torch.Tensor) else np.asarray(value, dtype=float)
        k, kind = self.n_components, self.covariance_type
        if kind != "full" and array.ndim == 3:
            # Full matrices, as the covars_ getter (and hmmlearn's) returns them: keep the diagonal.
            array = _diagonal_of(array, kind)
        expected = {"spherical": 1, "diag": 2, "full": 3}[kind]
        if array.ndim != expected:
            raise ValueError(f"{kind!r} covars_ must have {expected} dimension(s) starting with n_components, "
                             f"got shape {tuple(array.shape)}")
        covars = _as_param("covars_", array, (k,) + tuple(array.shape[1:]), self.dtype, self.device_)
        if kind == "full":
            if covars.shape[1] != covars.shape[2] or not torch.allclose(covars, covars.transpose(1, 2)):
                raise ValueError("'full' covars_ must be symmetric (n_components, d, d) matrices")
            if (torch.linalg.eigvalsh(covars) <= 0).any():
                raise ValueError("'full' covars_ must be positive definite")
        elif (covars <= 0).any():
            raise ValueError(f"{kind!r} covars_ must be positive")
        if kind == "spherical":
            # Stored as (K, D) like diag; D comes from the means (set before, or at fit).
            width = self.n_features if self.n_features is not None else 1
            covars = covars[:, None].expand(k, width).clone()
        self._covars = covars

    def _diag_covars(self) -> torch.Tensor:
        """Variances ``(K, D)`` for the spherical / diag types (spherical widened to D)."""
        return self._covars.expand(self.n_components, self.n_features) if self._covars.shape[1] == 1 \
            else self._covars

    def _check_fitted(self) -> None:
        super()._check_fitted()
        covars = self._covars
        if covars.shape[1] not in (1, self.n_features):
            raise ValueError(f"covars_ has {covars.shape[1]} features, means_ has {self.n_features}")

    # ------------------------------------------------------------------ hooks
    def _validate_X(self, X: Any, fitting: bool) -> torch.Tensor:
        X = as_float_tensor(X, dtype=self.dtype, device=self.device_)
        if not fitting and X.shape[1] != self.n_features:
            raise ValueError(f"X has {X.shape[1]} features, but this GaussianHMM has {self.n_features}")
        if fitting and X.shape[0] < self.n_components:
            raise ValueError(f"X has {X.shape[0]} rows, fewer than n_components = {self.n_components}")
        return X

    def _init_emissions(self, X: torch.Tensor) -> None:
        X_np = X.detach().cpu().double().numpy()
        if self._needs_init("m", "means_"):
            from sklearn.cluster import KMeans

            # Same k-means, seeded the same way, as hmmlearn's initialisation.
            self.means_ = KMeans(n_clusters=self.n_components, random_state=self.random_state,
                                 n_init=10).fit(X_np).cluster_centers_
        elif self.n_features != X.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features, but means_ has {self.n_features}")
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
        n_features = self.n_features
        const = n_features * math.log(2 * math.pi)
        if self.covariance_type == "full":
            chol, info = torch.linalg.cholesky_ex(self._covars)
            if (info > 0).any():  # as hmmlearn: retry with a tiny ridge before giving up
                chol, info = torch.linalg.cholesky_ex(
                    self._covars + 1e-7 * torch.eye(n_features, dtype=self.dtype, device=self.device_))
                if (info > 0).any():
                    raise ValueError("covars_ must be symmetric positive definite")
            diff = (X[None] - self._means[:, None]).transpose(1, 2)           # (K, D, n)
            solved = torch.linalg.solve_triangular(chol, diff, upper=False)
            log_det = 2 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(-1)
            return -0.5 * (const + log_det[None] + (solved ** 2).sum(1).T)
        var = self._diag_covars().clamp_min(torch.finfo(self.dtype).tiny)
        # One component at a time: (n, D) temporaries instead of (n, K, D).
        maha = torch.stack([(((X - mu) ** 2) / v).sum(-1) for mu, v in zip(self._means, var)], 1)
        return -0.5 * (const + torch.log(var).sum(-1)[None] + maha)

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
            denom = max(self.covars_weight - self.n_features, 0) + post[:, :, None]
            self._covars = (self.covars_prior + c_n) / denom
            return
        obs2 = posteriors.T @ X ** 2
        c_n = weight * meandiff ** 2 + obs2 - 2 * means * obs + means ** 2 * post
        c_d = max(self.covars_weight - 1, 0) + post
        covars = (self.covars_prior + c_n) / c_d.clamp_min(1e-5)
        if self.covariance_type == "spherical":
            covars = covars.mean(1, keepdim=True).expand(-1, self.n_features).clone()
        self._covars = covars

    def _emission_scalars(self) -> int:
        k, d = self.n_components, self.n_features
        return k * d + {"spherical": k, "diag": k * d, "full": k * d * (d + 1) // 2}[self.covariance_type]

    def _sample_emissions(self, states: torch.Tensor, rng: np.random.RandomState) -> torch.Tensor:
        noise = torch.as_tensor(rng.standard_normal((len(states), self.n_features)), dtype=self.dtype,
                                device=self.device_)
        chol = torch.linalg.cholesky(self.covars_)
        return self._means[states] + torch.einsum("nde,ne->nd", chol[states], noise)


# ============================================================================ categorical
class CategoricalHMM(_BaseHMM):
    """HMM emitting one symbol from ``{0, ..., n_features - 1}`` per step, hmmlearn's ``CategoricalHMM``.

    ``X`` holds non-negative integers, shape ``(n, 1)`` (as in hmmlearn) or ``(n,)``.

    Args:
        n_components: number of hidden states.
        n_features: number of symbols (None: ``max(X) + 1`` at the first fit).
        startprob_prior, transmat_prior, emissionprob_prior: Dirichlet concentrations of the MAP
            M-step (1: plain maximum likelihood).
        params, init_params: letters from ``s`` (startprob), ``t`` (transmat), ``e`` (emissionprob).
        Others as in :class:`GaussianHMM`.

    Fitted attributes: ``startprob_``, ``transmat_``, ``emissionprob_`` ``(K, n_features)``,
    ``monitor_``, ``converged_``, ``n_iter_``.
    """

    _param_codes = "e"
    _fitted_names = ("emissionprob_",)

    def __init__(self, n_components: int = 1, n_features: int | None = None, startprob_prior: float = 1.0,
                 transmat_prior: float = 1.0, emissionprob_prior: float = 1.0, algorithm: str = "viterbi",
                 random_state: Any = None, n_iter: int = 10, tol: float = 1e-2, params: str = "ste",
                 init_params: str = "ste", implementation: str = "log",
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float64):
        super().__init__(n_components, startprob_prior, transmat_prior, algorithm, random_state, n_iter, tol,
                         params, init_params, implementation, device, dtype)
        if n_features is not None:
            _int_at_least("n_features", n_features, 1)
        self.n_features = n_features
        self.emissionprob_prior = emissionprob_prior

    def _check_settings(self) -> None:
        super()._check_settings()
        _finite_at_least("emissionprob_prior", self.emissionprob_prior, 0.0)

    @property
    def emissionprob_(self) -> torch.Tensor | None:
        """``B[k, s] = p(x_t = s | z_t = k)``, shape ``(n_components, n_features)``."""
        return getattr(self, "_emissionprob", None)

    @emissionprob_.setter
    def emissionprob_(self, value: Any) -> None:
        array = _as_matrix("emissionprob_", value)
        if self.n_features is not None and array.shape[1] != self.n_features:
            raise ValueError(f"emissionprob_ has {array.shape[1]} symbols, but n_features = {self.n_features}")
        self._emissionprob = _as_stochastic("emissionprob_", array, (self.n_components, array.shape[1]),
                                            self.dtype, self.device_)
        self.n_features = array.shape[1]

    def _validate_X(self, X: Any, fitting: bool) -> torch.Tensor:
        if isinstance(X, torch.Tensor):
            array = X.detach()
            if array.is_floating_point() or array.is_complex() or array.dtype == torch.bool:
                raise ValueError(f"X must hold integer symbols, got dtype {array.dtype}")
        else:
            try:
                numpy_array = np.asarray(X)
            except Exception as err:
                raise ValueError(f"X could not be read as an array: {err}") from err
            if not np.issubdtype(numpy_array.dtype, np.integer):
                raise ValueError(f"X must hold integer symbols, got dtype {numpy_array.dtype}")
            array = torch.as_tensor(numpy_array)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise ValueError(f"X must have shape (n_samples, 1) or (n_samples,), got {tuple(array.shape)}")
        if array.shape[0] == 0:
            raise ValueError("X has no rows")
        if (array < 0).any():
            raise ValueError(f"X holds negative symbols (smallest {int(array.min())}); symbols are 0..n_features-1")
        largest = int(array.max())
        if self.n_features is not None and largest >= self.n_features:
            raise ValueError(f"X holds symbol {largest}, but the model only emits 0..{self.n_features - 1}")
        if fitting and self.n_features is None:
            self.n_features = largest + 1
        return array.to(device=self.device_, dtype=torch.int64)

    def _init_emissions(self, X: torch.Tensor) -> None:
        if self._needs_init("e", "emissionprob_"):
            # hmmlearn draws these from a fresh RandomState seeded with random_state.
            emission = check_random_state(self.random_state).rand(self.n_components, self.n_features)
            self.emissionprob_ = emission / emission.sum(1, keepdims=True)

    def _log_frameprob(self, X: torch.Tensor) -> torch.Tensor:
        return torch.log(self._emissionprob).T[X]

    def _mstep_emissions(self, X: torch.Tensor, posteriors: torch.Tensor) -> None:
        if "e" not in self.params:
            return
        counts = torch.zeros(self.n_features, self.n_components, dtype=self.dtype, device=self.device_)
        counts.index_add_(0, X, posteriors)
        self._emissionprob = _normalize(torch.clamp(self.emissionprob_prior - 1 + counts.T, min=0))

    def _emission_scalars(self) -> int:
        return self.n_components * (self.n_features - 1)

    def _sample_emissions(self, states: torch.Tensor, rng: np.random.RandomState) -> torch.Tensor:
        cdf = torch.cumsum(self._emissionprob, 1)[states]
        uniforms = torch.as_tensor(rng.random_sample(len(states)), dtype=self.dtype, device=self.device_)
        symbols = (cdf <= uniforms[:, None]).sum(1).clamp_max(self.n_features - 1)
        return symbols[:, None]
