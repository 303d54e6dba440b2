"""Diffusion benchmark: the recipes of :data:`genlab.diffusion.RECIPES`, trained longer than chapter 11's quick profile.

For one dataset (8x8 digits, or 28x28 MNIST-5k) it trains the class-conditional U-Net (EMA weights) and
measures, against the real-train vs real-test floor at the same sample size (classifier features):

* DDPM (all steps) and DDIM with several step counts: FID, KID (with its standard error over subsets),
  precision, recall, memorisation, CPU seconds;
* classifier-free guidance scales: the same metrics plus the class accuracy of the samples;
* the variational bound on the test NLL (nats per image and bits per dimension).

    python benchmarks/diffusion.py                          # digits, the recipe's epochs
    python benchmarks/diffusion.py --dataset mnist --epochs 50 --threads 2

Results are merged per dataset into ``benchmarks/results/diffusion.json`` (written atomically, with provenance).
"""
from __future__ import annotations

import argparse
import json
import math
import time

import torch

import genlab
from genlab import metrics
from genlab.data import load_digits, load_mnist
from genlab.diffusion import RECIPES, train_recipe
from genlab.results import RESULTS_DIR, save_results

PATH = RESULTS_DIR / "diffusion.json"
KID_SUBSETS = 50


def evaluate(samples, test_x, train_x, extractor, labels=None):
    """Sample metrics of ``samples`` against the test images, with KID's standard error and memorisation."""
    result = metrics.evaluate_samples(test_x, samples, extractor, kid_subsets=KID_SUBSETS)
    result["kid_se"] = result["kid_std"] / math.sqrt(KID_SUBSETS)
    result["copy_fraction"] = metrics.memorization(samples, train_x, test_x).copy_fraction
    if labels is not None:
        result["class_accuracy"] = extractor.accuracy(samples, labels)
    return result


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    genlab.seed_everything(args.seed)
    loader = load_digits if args.dataset == "digits" else load_mnist
    (train_x, train_y), (test_x, test_y) = loader("train"), loader("test")
    if args.dataset == "mnist":  # exact 8-bit levels
        train_x, test_x = (train_x * 255).round() / 255, (test_x * 255).round() / 255
    start = time.process_time()
    model = train_recipe(args.dataset, train_x, train_y, epochs=args.epochs, seed=args.seed, device="cpu",
                         progress=args.progress)
    train_cpu = time.process_time() - start
    extractor = metrics.get_feature_extractor(args.dataset, device="cpu")
    floor = metrics.real_floor(train_x, test_x, extractor, kid_subsets=KID_SUBSETS)
    floor["kid_se"] = floor["kid_std"] / math.sqrt(KID_SUBSETS)
    out = {"dataset": args.dataset, "recipe": {k: (list(v) if isinstance(v, tuple) else v)
                                              for k, v in {**RECIPES[args.dataset]["model"],
                                                           **RECIPES[args.dataset]["train"]}.items()},
           "epochs": args.epochs or RECIPES[args.dataset]["epochs"], "updates": int(model.n_updates),
           "train_cpu_s": train_cpu, "classifier_test_accuracy": extractor.test_accuracy, "floor": floor,
           "samplers": [], "guidance": []}
    n = len(test_x)
    # Deterministic DDIM at each step count, then 50 steps with noise put back (eta > 0; eta = 1 is DDPM's variance).
    plans = ([("ddpm", None, 1.0)] + [("ddim", s, 0.0) for s in args.ddim_steps]
             + [("ddim", 50, eta) for eta in args.ddim_etas if eta > 0])
    for sampler, steps, eta in plans:
        cpu = time.process_time()
        samples = model.sample(n, y=test_y, random_state=args.seed + 1, sampler=sampler, steps=steps,
                               eta=eta if sampler == "ddim" else 0.0).cpu()
        cpu = time.process_time() - cpu
        row = {"sampler": sampler, "steps": steps or model.n_steps, "eta": eta, "cpu_s": cpu,
               **evaluate(samples, test_x, train_x, extractor, test_y)}
        out["samplers"].append(row)
        print(f"{sampler} {row['steps']:4d} steps, eta {eta:g}: FID {row['fid']:.2f} (floor {floor['fid']:.2f}), "
              f"KID {row['kid']:.2f} "
              f"± {row['kid_se']:.2f} (floor {floor['kid']:.2f} ± {floor['kid_se']:.2f}), {cpu:.1f} CPU-s", flush=True)
    for w in args.guidance:
        samples = model.sample(n, y=test_y, random_state=args.seed + 1, sampler="ddim", steps=50,
                               guidance_scale=w).cpu()
        row = {"guidance_scale": w, **evaluate(samples, test_x, train_x, extractor, test_y)}
        out["guidance"].append(row)
        print(f"guidance {w:.1f}: accuracy {row['class_accuracy']:.3f}, FID {row['fid']:.2f}, precision "
              f"{row['precision']:.3f}, recall {row['recall']:.3f}", flush=True)
    n_nll = min(len(test_x), args.n_nll)
    bound = model.log_prob(test_x[:n_nll], n_timesteps=args.nll_timesteps, random_state=args.seed).cpu()
    n_dims = int(test_x[0].numel())
    nll = float(-bound.mean())
    out["nll"] = {"nats": nll, "se": float(bound.std() / math.sqrt(n_nll)), "n_images": n_nll,
                  "bits_per_dim": float(metrics.nats_to_bits_per_dim(nll, n_dims)), "strata": args.nll_timesteps}
    print(f"test NLL bound: {nll:.2f} nats = {out['nll']['bits_per_dim']:.3f} bits/dim", flush=True)
    ddpm = out["samplers"][0]
    ddim50 = {r["eta"]: r for r in out["samplers"][1:] if r["steps"] == 50}
    out["targets"] = {
        "fid_over_floor": ddpm["fid"] / floor["fid"],
        "kid_gap_in_standard_errors": (ddpm["kid"] - floor["kid"]) / math.hypot(ddpm["kid_se"], floor["kid_se"]),
        "ddim50_over_ddpm_fid": None if 0.0 not in ddim50 else ddim50[0.0]["fid"] / ddpm["fid"],
        "ddim50_over_ddpm_fid_by_eta": {f"{eta:g}": r["fid"] / ddpm["fid"] for eta, r in ddim50.items()},
        "copy_fraction_vs_floor": [ddpm["copy_fraction"], floor["copy_fraction"]],
        "ddim50_copy_fraction_by_eta": {f"{eta:g}": r["copy_fraction"] for eta, r in ddim50.items()},
    }
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(RECIPES), default="digits")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ddim-steps", type=int, nargs="+", default=[10, 20, 50, 100])
    parser.add_argument("--ddim-etas", type=float, nargs="+", default=[0.0, 0.5, 1.0],
                        help="DDIM noise levels measured at 50 steps (0: deterministic)")
    parser.add_argument("--guidance", type=float, nargs="+", default=[0.0, 1.0, 2.0, 4.0])
    parser.add_argument("--nll-timesteps", type=int, default=50)
    parser.add_argument("--n-nll", type=int, default=1000)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    result = run(args)
    stored = json.loads(PATH.read_text()) if PATH.is_file() else {}
    runs = {k: v for k, v in stored.get("runs", {}).items()}
    runs[args.dataset] = {**result, "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    save_results(PATH, {"kind": "diffusion", "runs": runs}, args=args, device="cpu", amp=False)
    print(f"wrote {PATH}")
    return result


if __name__ == "__main__":
    main()
