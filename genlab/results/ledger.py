"""The likelihood ledger: test NLL of the VAE family on the 8x8 digits (and the -ELBO on MNIST-5k).

For each recipe in :data:`genlab.vae.DIGITS_RECIPES` and each seed: train on the 1000 training
digits with :data:`DIGITS_TRAINING` (Adamax, early stopping on the 350 validation digits), then
estimate the test NLL with the importance-weighted bound (``k`` = 1000 samples per image; a
stochastic lower bound on log p(x), so the NLL is an upper estimate), in full precision. The
independent-pixels baseline is computed directly. MNIST-5k: one Bernoulli VAE on pixels binarised
at 0.5, test -ELBO and IW (k = 100).

Run it with ``python benchmarks/likelihood.py`` (a thin command line over :func:`main`); it writes
``benchmarks/results/likelihood.json`` with :func:`genlab.results.save_results`. Re-running some
recipes merges them into the stored file (:func:`merge_ledger`), keeping the other entries.
"""
from __future__ import annotations

import math
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..validation import check_int, check_option, check_positive_float, check_seed
from . import RESULTS_DIR, load_results, save_results
from .references import LEDGER_REFERENCES, reference_text

__all__ = ["LEDGER_PATH", "DIGITS_TRAINING", "PATIENCE", "MAX_EPOCHS", "K_EVAL", "LABELS", "FORMAT",
           "digits_recipes", "independent_pixels", "train_digits", "train_mnist", "build_ledger", "merge_ledger",
           "load_ledger", "ledger_rows", "format_ledger", "main"]

LEDGER_PATH = RESULTS_DIR / "likelihood.json"
#: Version of the file layout written by :func:`build_ledger`.
FORMAT = 2
#: The one training recipe of the digits likelihood models (the VAE chapter, this ledger and the
#: leaderboard all train with it): keyword arguments of :class:`genlab.train.Trainer`.
DIGITS_TRAINING: dict[str, Any] = {"lr": 1e-3, "optimizer": "adamax", "batch_size": 64}
#: Early-stopping patience (epochs without a better validation loss) and the epoch cap.
PATIENCE, MAX_EPOCHS = 20, 400
#: Importance samples for the test NLL.
K_EVAL = 1000
NATS_PER_BIT_DIM = 64 * math.log(2)
LABELS = {"independent_pixels": "independent pixels (Laplace)", "vae": "VAE (MLP, ELBO)",
          "iwae": "IWAE k=5 + input dropout", "made_vae": "VAE + MADE decoder (dropout 0.3)",
          "causal_conv_vae": "VAE + causal-conv decoder"}


def digits_recipes() -> dict[str, dict[str, Any]]:
    """The model recipes (keyword arguments of :class:`genlab.vae.VAE`): :data:`genlab.vae.DIGITS_RECIPES`."""
    from ..vae import DIGITS_RECIPES

    return DIGITS_RECIPES


def independent_pixels(alpha: float = 1.0) -> dict[str, float]:
    """Per-pixel categorical over 17 levels, counts from train + alpha; test NLL in nats."""
    alpha = check_positive_float(alpha, "alpha")
    from ..data import load_digits

    train, _ = load_digits("train")
    test, _ = load_digits("test")
    levels = torch.arange(17).view(17, 1)
    counts = (train.flatten(1).long().unsqueeze(1) == levels).sum(0).double() + alpha  # (17, 64)
    log_probs = (counts / counts.sum(0)).log()
    nll = -log_probs.T.gather(1, test.flatten(1).long().T).sum(0).mean().item()
    return {"nats": nll}


def _full_precision_nll(model: torch.nn.Module, data: torch.Tensor, k: int) -> float:
    """Mean IW negative log-likelihood in float32, eval mode, autocast off (AMP never changes a ledger number)."""
    from ..layers import eval_mode

    device_type = next(model.parameters()).device.type
    with torch.no_grad(), eval_mode(model), torch.autocast(device_type, enabled=False):
        return -model.log_prob(data, k=k).double().mean().item()


def train_digits(recipe: str, seed: int, max_epochs: int = MAX_EPOCHS, k: int = K_EVAL) -> dict[str, Any]:
    """Train one recipe with one seed; return its validation/test NLL (IW with k samples) and timings."""
    from ..data import load_digits
    from ..device import seed_everything
    from ..train import Trainer
    from ..vae import VAE

    recipes = digits_recipes()
    check_option(recipe, "recipe", tuple(recipes))
    torch.set_num_threads(1)
    seed_everything(check_seed(seed))
    train, _ = load_digits("train")
    val, _ = load_digits("val")
    test, _ = load_digits("test")
    model = VAE(**recipes[recipe])
    start = time.perf_counter()
    trainer = Trainer(model, **DIGITS_TRAINING, progress=False, seed=seed)
    history = trainer.fit(train, epochs=check_int(max_epochs, "max_epochs", minimum=1), val_data=val,
                          patience=PATIENCE)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    test_nats = _full_precision_nll(model, test, check_int(k, "k", minimum=1))
    eval_s = time.perf_counter() - start
    val_nats = _full_precision_nll(model, val, k)
    return {"recipe": recipe, "seed": seed, "test_nats": test_nats, "val_nats": val_nats,
            "epochs": len(history.train_loss), "train_s": train_s, "eval_s": eval_s,
            "active_units": model.active_units(val)}


def train_mnist(seed: int = 0, max_epochs: int = 150) -> dict[str, Any]:
    """Bernoulli VAE (MLP, 32-d latent) on MNIST-5k binarised at 0.5: test -ELBO and IW (k = 100)."""
    seed, max_epochs = check_seed(seed), check_int(max_epochs, "max_epochs", minimum=1)
    from ..data import load_mnist
    from ..device import seed_everything
    from ..layers import eval_mode
    from ..train import Trainer
    from ..vae import VAE

    torch.set_num_threads(1)
    seed_everything(check_seed(seed))
    data = {split: (load_mnist(split)[0] > 0.5).float() for split in ("train", "val", "test")}
    model = VAE((1, 28, 28), latent_dim=32, likelihood="bernoulli", hidden=256)
    start = time.perf_counter()
    trainer = Trainer(model, **DIGITS_TRAINING, progress=False, seed=seed)
    history = trainer.fit(data["train"], epochs=max_epochs, val_data=data["val"], patience=10)
    train_s = time.perf_counter() - start
    with torch.no_grad(), eval_mode(model):
        elbo = torch.stack([model.elbo(data["test"]) for _ in range(10)]).mean(0)
    iw = _full_precision_nll(model, data["test"], 100)
    return {"recipe": "mnist5k_vae", "seed": seed, "test_neg_elbo_nats": -elbo.mean().item(),
            "test_iw100_nats": iw, "epochs": len(history.train_loss), "train_s": train_s,
            "pixels": "binarised at 0.5 (Bernoulli likelihood of binary images)"}


def _run(job: tuple[str, int, int, int]) -> dict[str, Any]:
    recipe, seed, max_epochs, k = job
    if recipe == "mnist5k_vae":
        return train_mnist(seed, min(max_epochs, 150))
    return train_digits(recipe, seed, max_epochs, k)


def _summary(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=float)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if len(array) > 1 else 0.0}


def _entry(recipe: str, label: str, test: list[float], **extra: Any) -> dict[str, Any]:
    summary = _summary(test)
    return {"label": label, "test_nats": summary, "per_seed_test_nats": test,
            "test_bits_per_dim": {key: value / NATS_PER_BIT_DIM for key, value in summary.items()},
            "reference": reference_text("digits", LEDGER_REFERENCES.get(recipe, "")), **extra}


def build_ledger(recipes: list[str] | None = None, seeds: tuple[int, ...] = (0, 1, 2), *, workers: int = 3,
                 mnist: bool = True, max_epochs: int = MAX_EPOCHS, k: int = K_EVAL) -> dict[str, Any]:
    """Train and score ``recipes`` (default: all) with each seed, in ``workers`` processes; return the ledger."""
    all_recipes = digits_recipes()
    recipes = list(all_recipes) if recipes is None else [check_option(r, "recipes", tuple(all_recipes))
                                                          for r in recipes]
    seeds = tuple(check_seed(s, "seeds") for s in seeds)
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    workers = check_int(workers, "workers", minimum=1)
    jobs = [(recipe, seed, max_epochs, k) for recipe in recipes for seed in seeds]
    if mnist:
        jobs.insert(0, ("mnist5k_vae", seeds[0], max_epochs, k))
    jobs.sort(key=lambda job: job[0] != "made_vae")  # the slowest first
    with get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        runs = pool.map(_run, jobs, chunksize=1)
    baseline = independent_pixels()["nats"]  # exact, deterministic: no seeds
    digits = {"independent_pixels": _entry("independent_pixels", LABELS["independent_pixels"], [baseline],
                                           seeds=[], train_s=0.0, k=None)}
    run_info = {"date": time.strftime("%Y-%m-%d"), "workers": workers, "max_epochs": max_epochs}
    for recipe in recipes:
        mine = sorted((r for r in runs if r["recipe"] == recipe), key=lambda r: r["seed"])
        digits[recipe] = _entry(
            recipe, LABELS[recipe], [r["test_nats"] for r in mine], config=all_recipes[recipe],
            training=DIGITS_TRAINING, val_nats=_summary([r["val_nats"] for r in mine]),
            seeds=[r["seed"] for r in mine], epochs=[r["epochs"] for r in mine],
            active_units=[r["active_units"] for r in mine], train_s=_summary([r["train_s"] for r in mine]),
            eval_s=_summary([r["eval_s"] for r in mine]), k=k, run=run_info)
    return {"kind": "likelihood ledger", "format": FORMAT,
            "meta": {"k": k, "max_epochs": max_epochs, "seeds": list(seeds), "patience": PATIENCE,
                     "training": DIGITS_TRAINING, "threads_per_job": 1, "workers": workers,
                     "evaluation": "float32, eval mode, autocast off"},
            "digits": digits, "mnist5k": [r for r in runs if r["recipe"] == "mnist5k_vae"]}


def merge_ledger(previous: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """``new`` with the digits entries (and MNIST runs) it lacks taken from ``previous``."""
    if not isinstance(new, dict):
        raise TypeError(f"new must be a dict (a ledger), got {type(new).__name__}")
    if previous is None:
        return new
    merged = dict(new)
    digits = dict(previous.get("digits", {}))
    digits.update(new.get("digits", {}))
    merged["digits"] = digits
    if not new.get("mnist5k"):
        merged["mnist5k"] = previous.get("mnist5k", [])
    kept = [name for name in previous.get("digits", {}) if name not in new.get("digits", {})]
    if kept:  # entries kept from an earlier run were measured under its provenance
        merged["kept_entries"] = {"names": kept, "provenance": previous.get("kept_entries", {}).get(
            "provenance", previous.get("provenance"))}
    return merged


def load_ledger(path: str | Path = LEDGER_PATH) -> dict[str, Any]:
    """The stored ledger (see :func:`genlab.results.load_results` for the errors)."""
    ledger = load_results(path)
    if "digits" not in ledger:
        raise ValueError(f"{path} is not a likelihood ledger (no 'digits' entry)")
    return ledger


def ledger_rows(ledger: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per digits entry: recipe, label, mean and std test NLL (nats), bits/dim, seeds, reference."""
    if not isinstance(ledger, dict):
        raise TypeError(f"ledger must be a dict (a likelihood ledger), got {type(ledger).__name__}")
    rows = []
    for recipe, entry in ledger["digits"].items():
        rows.append({"recipe": recipe, "label": entry["label"], "test_nats": entry["test_nats"]["mean"],
                     "test_nats_std": entry["test_nats"]["std"], "bits_per_dim": entry["test_bits_per_dim"]["mean"],
                     "seeds": len(entry.get("per_seed_test_nats", [])), "reference": entry.get("reference", "")})
    return rows


def format_ledger(ledger: dict[str, Any]) -> str:
    """The ledger as a text table, references on the right."""
    if not isinstance(ledger, dict):
        raise TypeError(f"ledger must be a dict (a likelihood ledger), got {type(ledger).__name__}")
    lines = [f"{'model':<36}{'test NLL (nats)':>20}{'bits/dim':>10}{'train s':>10}   reference (NOT measured here)"]
    for entry in ledger["digits"].values():
        nats, bpd = entry["test_nats"], entry["test_bits_per_dim"]
        train_s = entry["train_s"]["mean"] if isinstance(entry["train_s"], dict) else entry["train_s"]
        lines.append(f"{entry['label']:<36}{nats['mean']:>12.2f} ± {nats['std']:<5.2f}{bpd['mean']:>10.3f}"
                     f"{train_s:>10.1f}   {entry.get('reference', '')}")
    for run in ledger.get("mnist5k", []):
        lines.append(f"MNIST-5k Bernoulli VAE (binarised): test -ELBO {run['test_neg_elbo_nats']:.2f} nats, "
                     f"IW k=100 {run['test_iw100_nats']:.2f} nats ({run['train_s']:.0f} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line: train, print the table, merge into the stored ledger and save it atomically."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--no-mnist", action="store_true", help="skip the MNIST-5k run")
    parser.add_argument("--max-epochs", type=int, default=MAX_EPOCHS, help="epoch cap (early stopping ends sooner)")
    parser.add_argument("--k", type=int, default=K_EVAL, help="importance samples for the test NLL")
    parser.add_argument("--recipes", nargs="+", default=None,
                        help="run only these recipes and keep the other entries of the stored file")
    parser.add_argument("--out", type=Path, default=LEDGER_PATH)
    args = parser.parse_args(argv)
    previous = load_ledger(args.out) if args.recipes is not None and args.out.is_file() else None
    new = build_ledger(args.recipes, tuple(args.seeds), workers=args.workers, mnist=not args.no_mnist,
                       max_epochs=args.max_epochs, k=args.k)  # raises before anything is written
    ledger = merge_ledger(previous, new)
    ledger.pop("provenance", None)
    print(format_ledger(ledger))
    save_results(args.out, ledger, args=args, device="cpu", amp=False)
    print(f"written to {args.out}")
    return ledger
