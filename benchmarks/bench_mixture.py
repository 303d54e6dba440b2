"""genlab.mixture.GaussianMixture against scikit-learn: same data, same start, same iterations.

Both estimators start from the same parameters (scikit-learn's own initialisation, passed to
both as ``weights_init``/``means_init``/``precisions_init``) and run exactly ``max_iter`` EM
iterations (``tol=0``), so the times compare the same arithmetic and the final mean
log-likelihoods must agree. Each time is the best of ``repeats`` runs (the machine may be shared).

    python benchmarks/bench_mixture.py            # CPU sizes
    python benchmarks/bench_mixture.py --large    # adds 10^6 x 64 x 50 (CUDA only)
    python benchmarks/bench_mixture.py --threads 1   # both libraries on one CPU thread

On a CPU shared with other jobs, torch's multi-threaded element-wise kernels can stall while one of
their threads waits for a core (NumPy's are single-threaded), which inflates genlab's times with
the default thread count; ``--threads 1`` compares the two on equal footing.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import best_time  # noqa: E402

from genlab.device import get_device  # noqa: E402
from genlab.mixture import COVARIANCE_TYPES, GaussianMixture  # noqa: E402

# (n_samples, n_features, n_components, EM iterations, covariance types)
CPU_CASES = [(20_000, 8, 10, 30, COVARIANCE_TYPES), (100_000, 16, 20, 10, ("full", "diag"))]
LARGE_CASE = (1_000_000, 64, 50, 10, ("full", "diag"))


_best_time = best_time


def compare(X: np.ndarray, n_components: int, covariance_type: str, n_iter: int, *,
            init_params: str = "kmeans", repeats: int = 3, device: torch.device | None = None) -> dict:
    """Time scikit-learn and genlab on ``X`` from the same start for ``n_iter`` EM iterations."""
    device = get_device() if device is None else device
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0: not converging is the point
        start = SkGaussianMixture(n_components, covariance_type=covariance_type, init_params=init_params,
                                  max_iter=0, random_state=0).fit(X)
        common = dict(n_components=n_components, covariance_type=covariance_type, max_iter=n_iter, tol=0.0,
                      weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_)
        reference_s, reference = _best_time(lambda: SkGaussianMixture(**common).fit(X), repeats)
        X_device = torch.as_tensor(X, device=device)
        genlab_s, model = _best_time(lambda: GaussianMixture(**common, device=device).fit(X_device), repeats)
    n, d = X.shape
    return {"case": f"GaussianMixture {covariance_type}, {n_iter} EM iters",
            "size": f"{n}x{d}, K={n_components}", "reference_s": reference_s, "genlab_s": genlab_s,
            "ratio": genlab_s / reference_s, "loglik_diff": abs(model.lower_bound_ - reference.lower_bound_),
            "device": str(device)}


def rows(large: bool = False, verbose: bool = False, threads: int | None = None) -> list[dict]:
    """Benchmark rows (see the module docstring); ``large`` adds the CUDA-sized case, ``verbose`` prints
    each row, ``threads`` sets the CPU threads of both torch and scikit-learn's BLAS (default: unchanged)."""
    if threads is not None:
        torch.set_num_threads(threads)
        with threadpool_limits(limits=threads):
            return rows(large, verbose)
    results = []
    cases = list(CPU_CASES)
    if large:
        if torch.cuda.is_available():
            cases.append(LARGE_CASE)
        else:
            print("bench_mixture: skipping the 10^6 x 64 x 50 case: no CUDA device on this machine")
    for n, d, k, n_iter, types in cases:
        X, _ = make_blobs(n_samples=n, n_features=d, centers=k, cluster_std=2.0, random_state=0)
        is_large = (n, d, k) == LARGE_CASE[:3]
        for covariance_type in types:
            # k-means on 10^6 x 64 would dominate the large case; random responsibilities start it.
            results.append(compare(X, k, covariance_type, n_iter, init_params="random" if is_large else "kmeans",
                                   repeats=1 if is_large or n >= 100_000 else 2))
            if verbose:
                print(_format(results[-1]), flush=True)
    return results


def _format(row: dict) -> str:
    return (f"{row['case']:<40}{row['size']:<20}ref {row['reference_s']:8.3f}s  genlab {row['genlab_s']:8.3f}s"
            f"  ratio {row['ratio']:5.2f}  |dloglik| {row['loglik_diff']:.1e}  ({row['device']})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", action="store_true", help="add the 10^6 x 64 x 50 case (CUDA)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for both libraries")
    arguments = parser.parse_args()
    rows(large=arguments.large, verbose=True, threads=arguments.threads)
