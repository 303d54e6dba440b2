"""Longer GAN runs on the digits than chapter 08's quick profile: FID/KID against the real-vs-real floor.

Writes ``benchmarks/results/gan.json`` (with provenance) through :func:`genlab.results.save_results`.

    python benchmarks/gan.py --epochs 300 --seeds 0 1
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from genlab import metrics
from genlab.data import load_digits, load_mnist
from genlab.device import get_device, seed_everything
from genlab.gan import GAN, Discriminator, Generator
from genlab.results import save_results
from genlab.train import Trainer

RESULTS = Path(__file__).resolve().parent / "results" / "gan.json"


def run(args: argparse.Namespace) -> dict:
    device = get_device(args.device)
    load = load_digits if args.dataset == "digits" else load_mnist
    (x_train, _), (x_test, _) = load("train"), load("test")
    scale = 16.0 if args.dataset == "digits" else 1.0
    shape = tuple(x_train.shape[1:])
    extractor = metrics.get_feature_extractor(args.dataset)
    order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(0))[:len(x_test)]
    floor = {"fid": metrics.fid(x_test, x_train[order], extractor),
             "kid": metrics.kid(x_test, x_train[order], extractor).mean}
    variants = {
        "DCGAN (non-saturating)": dict(lr_g=args.lr, lr_d=args.lr),
        "WGAN-GP": dict(loss="wasserstein", gp_weight=10.0, n_critic=2, lr_g=1e-3, lr_d=1e-3,
                        betas_g=(0.5, 0.9), betas_d=(0.5, 0.9)),
    }
    rows = []
    for name, kwargs in variants.items():
        for seed in args.seeds:
            seed_everything(seed)
            gan = GAN(Generator(args.latent_dim, shape, channels=args.channels, output_activation="tanh"),
                      Discriminator(shape, channels=args.channels), **kwargs)
            trainer = Trainer(gan, batch_size=64, ema_decay=0.99, device=device, progress=False, seed=seed)
            start, cpu = time.time(), time.process_time()
            curve = []
            for stage in range(1, 5):
                trainer.fit(x_train / scale * 2 - 1, epochs=stage * args.epochs // 4)
                samples = trainer.ema.model.sample(len(x_test), random_state=seed).cpu()
                samples = ((samples + 1) / 2 * scale).clamp(0, scale)
                curve.append({"epoch": trainer.epoch, "fid": metrics.fid(x_test, samples, extractor),
                              "kid": metrics.kid(x_test, samples, extractor).mean})
                print(name, seed, curve[-1], flush=True)
            rows.append({"model": name, "seed": seed, "epochs": args.epochs, **curve[-1],
                         "fid_over_floor": curve[-1]["fid"] / floor["fid"], "curve": curve,
                         "wall_s": time.time() - start, "cpu_s": time.process_time() - cpu})
    return {"dataset": args.dataset, "n_test": len(x_test), "floor": floor,
            "classifier_test_accuracy": extractor.test_accuracy, "rows": rows}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("digits", "mnist"), default="digits")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    payload = run(args)
    save_results(args.out, payload, args=vars(args), device=get_device(args.device), amp=False)
    return payload


if __name__ == "__main__":
    main()
