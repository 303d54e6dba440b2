"""KDE ``score_samples``: genlab (exact, chunked matrix products) vs scikit-learn (tree, atol = rtol = 0).

Both score the same queries under the same Gaussian-kernel KDE. ``ratio`` is
``genlab_s / reference_s`` (below 1: genlab is faster), as for every classical benchmark;
``loglik_diff`` is the largest absolute difference of the per-query log densities.
scikit-learn's tree is not exact far from the data even with zero tolerances (scikit-learn
issues #7492, #25799), so in high dimensions ``loglik_diff`` can
be large: it is then scikit-learn's error (genlab's sum is checked against a direct log-sum-exp in
``tests/test_kde.py``).

    python benchmarks/bench_kde.py            # CPU sizes
    python benchmarks/bench_kde.py --large    # adds GPU-sized cases
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.neighbors import KernelDensity as SkKernelDensity

from genlab.device import get_device
from genlab.kde import KernelDensity


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def _case(n_train: int, n_query: int, dim: int, bandwidth: float | str, device: torch.device) -> dict:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_train, dim))
    queries = rng.normal(size=(n_query, dim))
    reference = SkKernelDensity(bandwidth=bandwidth, rtol=0.0, atol=0.0).fit(X)
    expected, reference_s = _timed(lambda: reference.score_samples(queries))
    ours = KernelDensity(bandwidth=bandwidth, device=device).fit(X)
    queries_device = torch.as_tensor(queries, device=device)   # torch in -> torch out, on the device
    ours.score_samples(queries_device[:10])  # warm-up (kernel launch, allocator)

    def run() -> np.ndarray:
        values = ours.score_samples(queries_device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return values.cpu().numpy()

    got, genlab_s = _timed(run)
    return {
        "case": f"KDE score_samples gaussian h={bandwidth}",
        "size": f"{n_train}x{n_query}x{dim}d",
        "reference_s": reference_s,
        "genlab_s": genlab_s,
        "ratio": genlab_s / reference_s,
        "loglik_diff": float(np.max(np.abs(got - expected))),
        "device": str(device),
    }


def rows(large: bool = False) -> list[dict]:
    """Benchmark rows for ``benchmarks/classical.py`` (``large`` adds 50,000-point cases)."""
    device = get_device()
    sizes = [(5000, 5000, 2, "scott"), (5000, 5000, 16, "scott")]
    if large:
        sizes += [(50000, 50000, 2, "scott"), (50000, 20000, 16, "scott")]
    return [_case(n, m, d, h, device) for n, m, d, h in sizes]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", action="store_true", help="also run GPU-sized cases")
    args = parser.parse_args(argv)
    for row in rows(large=args.large):
        print(row)


if __name__ == "__main__":
    main()
