"""Speed and parity of genlab's classical estimators against the reference libraries.

Runs each family's cases (``bench_mixture``, ``bench_kde``, ``bench_hmm``), prints one table
(size, reference time, genlab time, ratio = genlab time / reference time,
log-likelihood difference) and writes it to
``benchmarks/results/classical.json``.

    python benchmarks/classical.py            # CPU sizes
    python benchmarks/classical.py --large    # adds GPU-sized cases (meant for CUDA)
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_hmm  # noqa: E402
import bench_kde  # noqa: E402
import bench_mixture  # noqa: E402


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", action="store_true", help="also run GPU-sized cases")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    rows: list[dict] = []
    for module in (bench_mixture, bench_hmm, bench_kde):
        rows.extend(module.rows(large=args.large))
    header = f"{'case':<44}{'size':<26}{'ref s':>9}{'genlab s':>10}{'ratio':>8}{'|Δ loglik|':>12}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['case']:<44}{row['size']:<26}{row['reference_s']:>9.3f}{row['genlab_s']:>10.3f}"
              f"{row['ratio']:>8.2f}{row['loglik_diff']:>12.2e}")
    out = HERE / "results" / "classical.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"device": str(rows[0].get("device", "cpu")) if rows else "cpu", "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"written to {out}")
    return rows


if __name__ == "__main__":
    main()
