"""Speed and parity of genlab's classical estimators against the reference libraries.

Runs each family's cases (``bench_mixture``, ``bench_kde``, ``bench_hmm``) and the user-shaped
mixture fits below, prints one table (size, reference time, genlab time, ratio = genlab time /
reference time, for wall and CPU time, and the log-likelihood difference) and writes it with its
provenance to ``benchmarks/results/classical.json`` (:func:`genlab.results.save_results`).

    python benchmarks/classical.py                        # every family, CPU sizes
    python benchmarks/classical.py --families hmm gmm-user  # re-measure some families, keep the other rows
    python benchmarks/classical.py --large                # adds GPU-sized cases (meant for CUDA)

Both libraries run on one CPU thread (torch and the BLAS behind NumPy): on a shared machine,
thread pools add noise to both. CPU time (user + system of this process) is less sensitive to the
load of other processes than wall time; both are recorded, with the load average at the start.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench_hmm  # noqa: E402

from genlab.results import load_results, save_results  # noqa: E402

OUT = HERE / "results" / "classical.json"
FAMILIES = ("mixture", "hmm", "kde", "gmm-user")
#: User-shaped mixture fits: (n_samples, n_features, n_components, n_init), whole fit calls
#: (k-means initialisation included, default convergence tolerance and iteration cap).
GMM_USER_CASE = (10_000, 5, 4, 3)


def gmm_user_rows() -> list[dict]:
    """``GaussianMixture(4, n_init=3).fit(X)`` as users call it, scikit-learn against genlab."""
    from sklearn.datasets import make_blobs
    from sklearn.mixture import GaussianMixture as Reference

    from genlab.mixture import GaussianMixture

    n, d, k, n_init = GMM_USER_CASE
    X, _ = make_blobs(n_samples=n, n_features=d, centers=k, cluster_std=2.0, random_state=0)
    out = []
    for covariance_type in ("full", "diag"):
        settings = dict(n_components=k, covariance_type=covariance_type, n_init=n_init, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            *ref_t, ref = bench_hmm.best_times(lambda s=settings: Reference(**s).fit(X))
            *ours_t, ours = bench_hmm.best_times(lambda s=settings: GaussianMixture(**s, device="cpu").fit(X))
        row = bench_hmm._row(f"GaussianMixture {covariance_type} fit, n_init={n_init}", f"{n}x{d}, K={k}",
                             ref_t, ours_t, abs(ref.score(X) - ours.score(X)), torch.device("cpu"))
        row["family"] = "gmm-user"
        out.append(row)
    return out


def _family_rows(family: str, large: bool) -> list[dict]:
    if family == "gmm-user":
        return gmm_user_rows()
    module = {"mixture": "bench_mixture", "hmm": "bench_hmm", "kde": "bench_kde"}[family]
    rows = __import__(module).rows(large=large)
    for row in rows:
        row.setdefault("family", family)
    return rows


def _family_of(row: dict) -> str:
    """A row's family (older result files did not record it: read it from the case name)."""
    if "family" in row:
        return row["family"]
    return "hmm" if row["case"].startswith(("GaussianHMM", "CategoricalHMM")) else \
        "kde" if row["case"].startswith("KDE") else "mixture"


def format_table(rows: list[dict]) -> str:
    """The README's table: one line per row, wall and CPU ratios."""
    header = (f"{'case':<42}{'size':<26}{'ref s':>8}{'genlab s':>9}{'ratio':>7}{'CPU ratio':>10}"
              f"{'|Δ loglik|':>12}")
    lines = [header, "-" * len(header)]
    for row in rows:
        cpu = f"{row['cpu_ratio']:>10.2f}" if "cpu_ratio" in row else f"{'-':>10}"
        lines.append(f"{row['case']:<42}{row['size']:<26}{row['reference_s']:>8.3f}{row['genlab_s']:>9.3f}"
                     f"{row['ratio']:>7.2f}{cpu}{row['loglik_diff']:>12.2e}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", action="store_true", help="also run GPU-sized cases")
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES),
                        help="families to measure; the rows of the others are kept from the existing results")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            measured = {family: _family_rows(family, args.large) for family in args.families}
    finally:
        torch.set_num_threads(previous)
    kept = []
    if OUT.exists() and set(args.families) != set(FAMILIES):
        kept = [row for row in load_results(OUT).get("rows", []) if _family_of(row) not in measured]
    rows = [row for family in FAMILIES
            for row in (measured[family] if family in measured else [r for r in kept if _family_of(r) == family])]
    print(f"load average at start: {load:.2f}")
    print(format_table(rows))
    save_results(OUT, {"rows": rows, "load_average_at_start": load, "families_measured": args.families,
                       "threads": 1}, args=args, device="cpu")
    print(f"written to {OUT}")
    return rows


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
