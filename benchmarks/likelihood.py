"""Test likelihoods of genlab's VAE family on the 8x8 digits (and the −ELBO on MNIST-5k).

For each recipe in :data:`genlab.vae.DIGITS_RECIPES` (plain VAE, IWAE-trained, VAE with an
autoregressive MADE decoder) and each seed: train on the 1000 training digits with Adamax and early
stopping on the 350 validation digits, then estimate the test NLL with the importance-weighted bound
(k = 1000 samples per image; a stochastic lower bound on log p(x), so the NLL is an upper estimate).
The independent-pixels baseline is computed directly (Laplace-smoothed per-pixel categoricals).
MNIST-5k: one Bernoulli VAE on pixels binarised at 0.5, test −ELBO and IW (k = 100) in nats.

Prints a table with the reference numbers beside it and writes ``benchmarks/results/likelihood.json``.
Jobs run in parallel worker processes (one thread each)::

    python benchmarks/likelihood.py              # 3 seeds, 3 workers
    python benchmarks/likelihood.py --seeds 0 --workers 1
    python benchmarks/likelihood.py --recipes causal_conv_vae --no-mnist   # re-run one recipe, keep the rest
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
NATS_PER_BIT_DIM = 64 * math.log(2)
K_EVAL = 1000
MAX_EPOCHS, PATIENCE = 400, 20
REFERENCES = {  # /work/shared/references.md: test NLL in nats per image on the same split
    "independent_pixels": "106.47",
    "vae": "96.4-97.4 (intro_dgm VAE, -ELBO)",
    "iwae": "96.2-96.5 (intro_dgm hierarchical VAE, for scale)",
    "made_vae": "86.3-86.8 (intro_dgm autoregressive, no latents)",
    "causal_conv_vae": "86.3-86.8 (intro_dgm autoregressive, no latents)",
}
LABELS = {"independent_pixels": "independent pixels (Laplace)", "vae": "VAE (MLP, ELBO)",
          "iwae": "IWAE k=5 + input dropout", "made_vae": "VAE + MADE decoder (dropout 0.3)",
          "causal_conv_vae": "VAE + causal-conv decoder"}


def independent_pixels(alpha: float = 1.0) -> dict:
    """Per-pixel categorical over 17 levels, counts from train + alpha; test NLL in nats."""
    from genlab.data import load_digits

    train, _ = load_digits("train")
    test, _ = load_digits("test")
    levels = torch.arange(17).view(17, 1)
    counts = (train.flatten(1).long().unsqueeze(1) == levels).sum(0).double() + alpha  # (17, 64)
    log_probs = (counts / counts.sum(0)).log()
    nll = -log_probs.T.gather(1, test.flatten(1).long().T).sum(0).mean().item()
    return {"nats": nll}


def train_digits(recipe: str, seed: int, max_epochs: int = MAX_EPOCHS, k: int = K_EVAL) -> dict:
    """Train one recipe with one seed; return its validation/test NLL (IW with k samples) and timings."""
    torch.set_num_threads(1)
    import genlab
    from genlab.data import load_digits
    from genlab.train import Trainer
    from genlab.vae import DIGITS_RECIPES, VAE

    genlab.seed_everything(seed)
    train, _ = load_digits("train")
    val, _ = load_digits("val")
    test, _ = load_digits("test")
    model = VAE(**DIGITS_RECIPES[recipe])
    start = time.perf_counter()
    trainer = Trainer(model, lr=1e-3, optimizer="adamax", batch_size=64, progress=False, seed=seed)
    history = trainer.fit(train, epochs=max_epochs, val_data=val, patience=PATIENCE)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    test_nats = -model.log_prob(test, k=k).mean().item()
    eval_s = time.perf_counter() - start
    val_nats = -model.log_prob(val, k=k).mean().item()
    return {"recipe": recipe, "seed": seed, "test_nats": test_nats, "val_nats": val_nats,
            "epochs": len(history.train_loss), "train_s": train_s, "eval_s": eval_s,
            "active_units": model.active_units(val)}


def train_mnist(seed: int = 0, max_epochs: int = 150) -> dict:
    """Bernoulli VAE (MLP, 32-d latent) on MNIST-5k binarised at 0.5: test −ELBO and IW (k = 100)."""
    torch.set_num_threads(1)
    import genlab
    from genlab.data import load_mnist
    from genlab.train import Trainer
    from genlab.vae import VAE

    genlab.seed_everything(seed)
    data = {split: (load_mnist(split)[0] > 0.5).float() for split in ("train", "val", "test")}
    model = VAE((1, 28, 28), latent_dim=32, likelihood="bernoulli", hidden=256)
    start = time.perf_counter()
    trainer = Trainer(model, lr=1e-3, optimizer="adamax", batch_size=64, progress=False, seed=seed)
    history = trainer.fit(data["train"], epochs=max_epochs, val_data=data["val"], patience=10)
    train_s = time.perf_counter() - start
    elbo = torch.stack([model.elbo(data["test"]) for _ in range(10)]).mean(0)
    iw = model.log_prob(data["test"], k=100)
    return {"recipe": "mnist5k_vae", "seed": seed, "test_neg_elbo_nats": -elbo.mean().item(),
            "test_iw100_nats": -iw.mean().item(), "epochs": len(history.train_loss), "train_s": train_s,
            "pixels": "binarised at 0.5 (Bernoulli likelihood of binary images)"}


def _run(job: tuple[str, int, int, int]) -> dict:
    recipe, seed, max_epochs, k = job
    if recipe == "mnist5k_vae":
        return train_mnist(seed, min(max_epochs, 150))
    return train_digits(recipe, seed, max_epochs, k)


def _summary(values: list[float]) -> dict:
    array = np.asarray(values, dtype=float)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if len(array) > 1 else 0.0}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--no-mnist", action="store_true", help="skip the MNIST-5k run")
    parser.add_argument("--max-epochs", type=int, default=MAX_EPOCHS, help="epoch cap (early stopping ends sooner)")
    parser.add_argument("--k", type=int, default=K_EVAL, help="importance samples for the test NLL")
    parser.add_argument("--recipes", nargs="+", default=None,
                        help="run only these recipes and keep the other entries of the existing results file")
    args = parser.parse_args(argv)
    if args.workers < 1 or not args.seeds or min(args.seeds) < 0 or args.max_epochs < 1 or args.k < 1:
        raise ValueError("need --workers >= 1, --max-epochs >= 1, --k >= 1 and non-negative --seeds")
    from genlab.device import get_profile
    from genlab.vae import DIGITS_RECIPES

    recipes = list(DIGITS_RECIPES) if args.recipes is None else args.recipes
    unknown = sorted(set(recipes) - set(DIGITS_RECIPES))
    if unknown:
        raise ValueError(f"unknown recipes {unknown}; choose from {list(DIGITS_RECIPES)}")
    out = HERE / "results" / "likelihood.json"
    previous = json.loads(out.read_text()) if args.recipes is not None and out.is_file() else None
    jobs = [(recipe, seed, args.max_epochs, args.k) for recipe in recipes for seed in args.seeds]
    if not args.no_mnist:
        jobs.insert(0, ("mnist5k_vae", args.seeds[0], args.max_epochs, args.k))
    jobs.sort(key=lambda job: job[0] != "made_vae")  # the slowest first
    with get_context("spawn").Pool(min(args.workers, len(jobs))) as pool:
        runs = pool.map(_run, jobs, chunksize=1)

    baseline = independent_pixels()["nats"]  # exact, deterministic: no seeds
    models: dict[str, dict] = {"independent_pixels": {
        "label": LABELS["independent_pixels"], "test_nats": _summary([baseline]),
        "per_seed_test_nats": [baseline], "seeds": [], "train_s": 0.0, "k": None}}
    run_info = {"date": time.strftime("%Y-%m-%d"), "workers": args.workers, "max_epochs": args.max_epochs}
    for recipe, kwargs in DIGITS_RECIPES.items():
        if recipe not in recipes:
            if previous is not None and recipe in previous["digits"]:
                models[recipe] = previous["digits"][recipe]  # kept from the earlier run
            continue
        mine = sorted((r for r in runs if r["recipe"] == recipe), key=lambda r: r["seed"])
        models[recipe] = {
            "label": LABELS[recipe], "config": kwargs, "test_nats": _summary([r["test_nats"] for r in mine]),
            "val_nats": _summary([r["val_nats"] for r in mine]),
            "per_seed_test_nats": [r["test_nats"] for r in mine], "seeds": [r["seed"] for r in mine],
            "epochs": [r["epochs"] for r in mine], "active_units": [r["active_units"] for r in mine],
            "train_s": _summary([r["train_s"] for r in mine]), "eval_s": _summary([r["eval_s"] for r in mine]),
            "k": args.k, "run": run_info}
    for entry in models.values():
        entry["test_bits_per_dim"] = {key: value / NATS_PER_BIT_DIM for key, value in entry["test_nats"].items()}
        entry["reference"] = REFERENCES.get(next(k for k, v in models.items() if v is entry))
    mnist = [r for r in runs if r["recipe"] == "mnist5k_vae"]
    if not mnist and previous is not None:
        mnist = previous.get("mnist5k", [])  # kept from the earlier run

    print(f"{'model':<36}{'test NLL (nats)':>20}{'bits/dim':>10}{'train s':>10}   reference (nats)")
    for name, entry in models.items():
        nats, bpd = entry["test_nats"], entry["test_bits_per_dim"]
        train_s = entry["train_s"]["mean"] if isinstance(entry["train_s"], dict) else entry["train_s"]
        print(f"{entry['label']:<36}{nats['mean']:>12.2f} ± {nats['std']:<5.2f}{bpd['mean']:>10.3f}{train_s:>10.1f}"
              f"   {entry['reference']}")
    for run in mnist:
        print(f"MNIST-5k Bernoulli VAE (binarised): test -ELBO {run['test_neg_elbo_nats']:.2f} nats, "
              f"IW k=100 {run['test_iw100_nats']:.2f} nats ({run['train_s']:.0f} s)")
    result = {"meta": {"profile": get_profile(), "k": args.k, "max_epochs": args.max_epochs, "seeds": args.seeds,
                       "patience": PATIENCE, "optimizer": "adamax lr 1e-3 batch 64", "torch": torch.__version__,
                       "cpu": platform.processor() or platform.machine(), "threads_per_job": 1,
                       "workers": args.workers, "note": "timings on a shared, heavily loaded 2-core machine"},
              "digits": models, "mnist5k": mnist}
    if previous is not None:  # entries kept from an earlier run were measured under its settings
        result["meta"]["kept_entries_measured_under"] = previous["meta"].get("kept_entries_measured_under",
                                                                             previous["meta"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out}")
    return result


if __name__ == "__main__":
    main()
