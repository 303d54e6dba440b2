"""Exact-likelihood models on the 8x8 digits: the PixelCNN and the dequantised flows, 3 seeds each.

    python benchmarks/flows.py                       # every recipe, seeds 0 1 2, 2 worker processes
    python benchmarks/flows.py --recipes pixelcnn --seeds 0 --workers 1   # keeps the other stored entries

Recipes: :data:`genlab.autoregressive.DIGITS_RECIPES` (exact log P(x)) and
:data:`genlab.flow.DIGITS_FLOW_RECIPES` (a lower bound on log P(x) through dequantisation, estimated
with ``N_BOUND_SAMPLES`` noise draws per test image). Each run trains on the 1000 training digits
with early stopping on the 350 validation digits (the best validation weights are kept), one torch
thread per run so times compare, and scores the 447 test digits. Writes
``benchmarks/results/flows.json`` with :func:`genlab.results.save_results`.
"""
from __future__ import annotations

import argparse
import math
import resource
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlab.autoregressive import DIGITS_RECIPES, PixelCNN
from genlab.flow import DIGITS_FLOW_RECIPES, ImageFlow
from genlab.results import RESULTS_DIR, load_results, save_results

OUT = RESULTS_DIR / "flows.json"
RECIPES: dict[str, dict[str, Any]] = {**DIGITS_RECIPES, **DIGITS_FLOW_RECIPES}
N_BOUND_SAMPLES = 10
NATS_PER_BIT_DIM = 64 * math.log(2)
LABELS = {"pixelcnn": "PixelCNN (gated, dropout 0.3), exact",
          "flow_uniform": "RealNVP/Glow flow, uniform dequantisation (bound)",
          "flow_variational": "RealNVP/Glow flow, variational dequantisation (bound)"}


def run(job: tuple[str, int, int]) -> dict[str, Any]:
    """Train one recipe with one seed; return validation/test NLL (nats per image) and timings."""
    import genlab
    from genlab.data import load_digits
    from genlab.train import Trainer, TrainingDiverged

    name, seed, max_epochs = job
    torch.set_num_threads(1)
    genlab.seed_everything(seed)
    recipe = RECIPES[name]
    train_cfg = dict(recipe["train"])
    epochs, patience = min(train_cfg.pop("max_epochs"), max_epochs), train_cfg.pop("patience")
    data = {split: load_digits(split)[0] for split in ("train", "val", "test")}
    model = PixelCNN(**recipe["model"]) if name in DIGITS_RECIPES else ImageFlow(**recipe["model"])
    cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    trainer = Trainer(model, **train_cfg, device="cpu", progress=False, seed=seed)
    try:
        history = trainer.fit(data["train"], epochs=epochs, val_data=data["val"], patience=patience)
    except TrainingDiverged as err:  # keep the other runs' results; report this one as failed
        return {"recipe": name, "seed": seed, "failed": str(err)}
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    train_wall = time.perf_counter() - wall0
    train_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)

    def nll(split: str) -> float:
        if isinstance(model, PixelCNN):
            return -model.log_prob(data[split]).double().mean().item()
        return -model.log_prob(data[split], n_samples=N_BOUND_SAMPLES, random_state=seed).double().mean().item()

    return {"recipe": name, "seed": seed, "test_nats": nll("test"), "val_nats": nll("val"),
            "epochs": len(history.train_loss), "best_epoch": int(np.argmin(history.val_loss)) + 1,
            "train_wall_s": train_wall, "train_cpu_s": train_cpu}


def _summary(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=float)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if len(array) > 1 else 0.0}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-epochs", type=int, default=1000, help="cap on the recipes' own epoch limits")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    jobs = [(name, seed, args.max_epochs) for name in args.recipes for seed in args.seeds]
    start = time.perf_counter()
    with get_context("spawn").Pool(min(args.workers, len(jobs))) as pool:
        runs = pool.map(run, jobs, chunksize=1)
    entries = {}
    for name in args.recipes:
        failed = [r for r in runs if r["recipe"] == name and "failed" in r]
        mine = sorted((r for r in runs if r["recipe"] == name and "failed" not in r), key=lambda r: r["seed"])
        if not mine:
            entries[name] = {"label": LABELS[name], "failed": failed}
            continue
        test = [r["test_nats"] for r in mine]
        summary = _summary(test)
        entries[name] = {
            "label": LABELS[name], "kind": "exact" if name in DIGITS_RECIPES else "dequantisation lower bound",
            "test_nats": summary, "per_seed_test_nats": test,
            "test_bits_per_dim": {k: v / NATS_PER_BIT_DIM for k, v in summary.items()},
            "val_nats": _summary([r["val_nats"] for r in mine]), "seeds": [r["seed"] for r in mine],
            "epochs": [r["epochs"] for r in mine], "best_epoch": [r["best_epoch"] for r in mine],
            "train_wall_s": _summary([r["train_wall_s"] for r in mine]),
            "train_cpu_s": _summary([r["train_cpu_s"] for r in mine]), "config": RECIPES[name], "failed": failed}
        print(f"{LABELS[name]:<58} test {summary['mean']:7.2f} ± {summary['std']:.2f} nats "
              f"({summary['mean'] / NATS_PER_BIT_DIM:.3f} bits/dim), train CPU "
              f"{entries[name]['train_cpu_s']['mean']:.0f} s/seed")
    if args.out.is_file():  # re-running some recipes keeps the others' stored entries (and says so)
        stored = load_results(args.out)
        kept = {name: entry for name, entry in stored.get("models", {}).items() if name not in entries}
        if kept:
            entries = {**kept, **entries}
            print(f"kept stored entries {sorted(kept)} (measured under {args.out.name}'s kept_provenance)")
            kept_provenance = {name: stored.get("kept_provenance", {}).get(name, stored.get("provenance"))
                               for name in kept}
        else:
            kept_provenance = {}
    else:
        kept_provenance = {}
    payload = {"kind": "exact-likelihood models on the digits", "split": "train 1000 / val 350 / test 447",
               "units": "nats per image on the discrete 17-level data; bits/dim = nats / (64 ln 2)",
               "bound_samples": N_BOUND_SAMPLES, "threads_per_run": 1, "workers": args.workers,
               "wall_s": time.perf_counter() - start, "models": entries,
               "kept_provenance": kept_provenance}
    save_results(args.out, payload, args=args, device="cpu")
    return payload


if __name__ == "__main__":
    main()
