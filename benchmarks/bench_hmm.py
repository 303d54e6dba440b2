"""genlab.hmm against hmmlearn: same data, same starting parameters, same number of EM iterations.

Each case times hmmlearn and genlab on identical inputs (the best of ``REPEATS`` runs) and
reports the absolute difference of the final log-likelihoods. ``tol=-inf`` makes both run every
iteration. ``rows(large=True)`` adds a GPU-sized case (meant for CUDA).

    python benchmarks/bench_hmm.py          # prints the rows
"""
from __future__ import annotations


import numpy as np
import torch
from hmmlearn import hmm as reference

from genlab.device import get_device
from genlab.hmm import CategoricalHMM, GaussianHMM
from timing import best_time  # noqa: E402

REPEATS = 3
N_ITER = 10


def _best_time(function, repeats: int = REPEATS) -> tuple[float, object]:
    return best_time(function, repeats)


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


def _models(kind: str, k: int, start: dict, device: torch.device, implementation: str, **kwargs):
    ref_cls, ours_cls = (reference.GaussianHMM, GaussianHMM) if kind == "gaussian" else \
        (reference.CategoricalHMM, CategoricalHMM)

    def make_ref():
        model = ref_cls(k, init_params="", n_iter=N_ITER, tol=-np.inf, implementation=implementation, **kwargs)
        for name, value in start.items():
            setattr(model, name, value)
        return model

    def make_ours():
        model = ours_cls(k, init_params="", n_iter=N_ITER, tol=-np.inf, implementation=implementation,
                         device=device, **kwargs)
        for name, value in start.items():
            setattr(model, name, value)
        return model
    return make_ref, make_ours


def _row(case: str, size: str, ref_s: float, ours_s: float, diff: float, device: torch.device) -> dict:
    return {"case": case, "size": size, "reference_s": ref_s, "genlab_s": ours_s, "ratio": ours_s / ref_s,
            "loglik_diff": float(diff), "device": str(device)}


def _fit_row(case: str, size: str, kind: str, k: int, X, lengths, start, device, implementation: str) -> dict:
    make_ref, make_ours = _models(kind, k, start, device, implementation)
    ref_s, ref = _best_time(lambda: make_ref().fit(X, lengths))
    ours_s, ours = _best_time(lambda: make_ours().fit(X, lengths))
    diff = abs(ref.monitor_.history[-1] - ours.monitor_.history[-1])
    return _row(case, size, ref_s, ours_s, diff, device)


def _score_row(case: str, size: str, kind: str, k: int, X, lengths, start, device, implementation: str) -> dict:
    make_ref, make_ours = _models(kind, k, start, device, implementation)
    ref, ours = make_ref(), make_ours()
    ref_s, ref_score = _best_time(lambda: ref.score(X, lengths))
    ours_s, ours_score = _best_time(lambda: ours.score(X, lengths))
    return _row(case, size, ref_s, ours_s, abs(ref_score - ours_score), device)


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
    out = []
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
