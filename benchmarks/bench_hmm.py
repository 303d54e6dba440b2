"""genlab.hmm against hmmlearn: same data, same starting parameters, same number of EM iterations.

Each case times hmmlearn and genlab on identical inputs (the best of ``REPEATS`` runs, wall and
CPU time) and reports the absolute difference of the final log-likelihoods. ``tol=-inf`` makes
both run every iteration. The first two cases are shaped like what users fit (one or two long
sequences); the batched case (100 sequences) follows. ``rows(large=True)`` adds a GPU-sized case
(meant for CUDA).

    python benchmarks/bench_hmm.py          # prints the rows
"""
from __future__ import annotations

import time

import numpy as np
import torch
from hmmlearn import hmm as reference

from genlab.device import get_device
from genlab.hmm import CategoricalHMM, GaussianHMM

REPEATS = 3
N_ITER = 10
#: Shaped like users' fits: (sequences, steps, K, features, covariance type, EM iterations).
USER_CASES = [(2, 1000, 3, 2, "diag", 30), (1, 5000, 4, 2, "full", 20)]


def best_times(function, repeats: int = REPEATS) -> tuple[float, float, object]:
    """Best wall time and best CPU time (user + system of this process) of ``repeats`` calls."""
    wall, cpu, result = float("inf"), float("inf"), None
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        result = function()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        wall = min(wall, time.perf_counter() - start_wall)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu, result


def _best_time(function, repeats: int = REPEATS) -> tuple[float, object]:
    wall, _, result = best_times(function, repeats)
    return wall, result


def _sticky_transmat(k: int, stay: float = 0.9) -> np.ndarray:
    return np.full((k, k), (1 - stay) / (k - 1)) + np.eye(k) * (stay - (1 - stay) / (k - 1))


def _gaussian_data(n_seq: int, length: int, k: int, d: int, seed: int = 0) -> tuple[np.ndarray, list[int], dict]:
    """Sequences from a sticky Gaussian HMM, and a different (perturbed) starting point for EM."""
    rng = np.random.default_rng(seed)
    truth = reference.GaussianHMM(k, covariance_type="diag", init_params="")
    truth.startprob_, truth.transmat_ = np.full(k, 1 / k), _sticky_transmat(k)
    truth.means_, truth.covars_ = rng.normal(scale=3, size=(k, d)), rng.uniform(0.5, 2, size=(k, d))
    X = np.concatenate([truth.sample(length, random_state=seed + i)[0] for i in range(n_seq)])
    start = {"startprob_": np.full(k, 1 / k), "transmat_": _sticky_transmat(k, 0.7),
             "means_": truth.means_ + rng.normal(size=(k, d)), "covars_": np.ones((k, d))}
    return X, [length] * n_seq, start


def _categorical_data(n_seq: int, length: int, k: int, m: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = reference.CategoricalHMM(k, init_params="")
    truth.startprob_, truth.transmat_ = np.full(k, 1 / k), _sticky_transmat(k)
    truth.emissionprob_ = rng.dirichlet(np.full(m, 0.5), size=k)
    X = np.concatenate([truth.sample(length, random_state=seed + i)[0] for i in range(n_seq)])
    start = {"startprob_": np.full(k, 1 / k), "transmat_": _sticky_transmat(k, 0.7),
             "emissionprob_": rng.dirichlet(np.ones(m), size=k)}
    return X, [length] * n_seq, start


def _models(kind: str, k: int, start: dict, device: torch.device, implementation: str, n_iter: int = N_ITER,
            **kwargs):
    ref_cls, ours_cls = (reference.GaussianHMM, GaussianHMM) if kind == "gaussian" else \
        (reference.CategoricalHMM, CategoricalHMM)

    def make_ref():
        model = ref_cls(k, init_params="", n_iter=n_iter, tol=-np.inf, implementation=implementation, **kwargs)
        for name, value in start.items():
            setattr(model, name, value)
        return model

    def make_ours():
        model = ours_cls(k, init_params="", n_iter=n_iter, tol=-np.inf, implementation=implementation,
                         device=device, **kwargs)
        for name, value in start.items():
            setattr(model, name, value)
        return model
    return make_ref, make_ours


def _row(case: str, size: str, ref: tuple, ours: tuple, diff: float, device: torch.device) -> dict:
    """One result row from ``(wall, cpu)`` times of the reference and of genlab."""
    return {"family": "hmm", "case": case, "size": size, "reference_s": ref[0], "genlab_s": ours[0],
            "ratio": ours[0] / ref[0], "reference_cpu_s": ref[1], "genlab_cpu_s": ours[1],
            "cpu_ratio": ours[1] / ref[1], "loglik_diff": float(diff), "device": str(device)}


def _fit_row(case: str, size: str, kind: str, k: int, X, lengths, start, device, implementation: str,
             n_iter: int = N_ITER, **kwargs) -> dict:
    make_ref, make_ours = _models(kind, k, start, device, implementation, n_iter, **kwargs)
    *ref_t, ref = best_times(lambda: make_ref().fit(X, lengths))
    *ours_t, ours = best_times(lambda: make_ours().fit(X, lengths))
    diff = abs(ref.monitor_.history[-1] - ours.monitor_.history[-1])
    return _row(case, size, ref_t, ours_t, diff, device)


def _score_row(case: str, size: str, kind: str, k: int, X, lengths, start, device, implementation: str) -> dict:
    make_ref, make_ours = _models(kind, k, start, device, implementation)
    ref, ours = make_ref(), make_ours()
    *ref_t, ref_score = best_times(lambda: ref.score(X, lengths))
    *ours_t, ours_score = best_times(lambda: ours.score(X, lengths))
    return _row(case, size, ref_t, ours_t, abs(ref_score - ours_score), device)


def user_rows(device: torch.device) -> list[dict]:
    """The user-shaped fits: one or two long sequences, from the same start, every iteration run."""
    out = []
    for n_seq, length, k, d, covariance_type, n_iter in USER_CASES:
        X, lengths, start = _gaussian_data(n_seq, length, k, d)
        if covariance_type == "full":
            start["covars_"] = np.tile(np.eye(d), (k, 1, 1))
        out.append(_fit_row(f"GaussianHMM {covariance_type} fit {n_iter} it (log)", f"{n_seq} seq x {length} x {d}, "
                            f"K={k}", "gaussian", k, X, lengths, start, device, "log", n_iter,
                            covariance_type=covariance_type))
    return out


def rows(large: bool = False) -> list[dict]:
    """Benchmark rows: Baum-Welch (both implementations), scoring, categorical, and a large case.

    On the CPU both libraries get one core: hmmlearn's loops and NumPy's element-wise
    operations are single-threaded, and on a shared machine torch's thread pool adds noise.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _rows(large)
    finally:
        torch.set_num_threads(previous)


def _rows(large: bool) -> list[dict]:
    device = get_device()
    out = user_rows(device)
    X, lengths, start = _gaussian_data(100, 500, 4, 3)
    size = "100 seq x 500 x 3, K=4"
    for implementation in ("log", "scaling"):
        out.append(_fit_row(f"GaussianHMM diag fit {N_ITER} it ({implementation})", size, "gaussian", 4,
                            X, lengths, start, device, implementation))
    out.append(_score_row("GaussianHMM diag score (log)", size, "gaussian", 4, X, lengths, start, device, "log"))
    out.append(_score_row("GaussianHMM diag score (scaling)", size, "gaussian", 4, X, lengths, start, device,
                          "scaling"))
    S, lengths, start = _categorical_data(100, 500, 4, 8)
    out.append(_fit_row(f"CategoricalHMM fit {N_ITER} it (log)", "100 seq x 500, K=4, 8 sym", "categorical", 4,
                        S, lengths, start, device, "log"))
    if large:
        X, lengths, start = _gaussian_data(1000, 1000, 8, 10)
        out.append(_fit_row(f"GaussianHMM diag fit {N_ITER} it (log)", "1000 seq x 1000 x 10, K=8", "gaussian",
                            8, X, lengths, start, device, "log"))
    return out


if __name__ == "__main__":
    for row in rows():
        print(row)
