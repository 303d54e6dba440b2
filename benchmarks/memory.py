"""Peak memory: training each deep model at the full profile's scale, and chunked KDE / metrics as n grows.

**Training.** Each model is built at its full-profile size and trained for a few batches through
:class:`genlab.train.Trainer` at the full profile's batch size (the diffusion chapter's ``batch_size``
128; the other chapters train with batches of 64). On CUDA the peak is
``torch.cuda.max_memory_allocated``; on the CPU each model runs in its own child process, which reports
its peak resident set size (``ru_maxrss``) and the increase over its size just before training (torch's
CPU allocator is invisible to ``tracemalloc``).

**Chunked estimators.** ``genlab.kde.KernelDensity.score_samples`` (n queries against n training
points, 2-D) and ``genlab.metrics.precision_recall`` (n real and n fake 64-D features) never hold the
n x n distance matrix: they work one block at a time. Their child-process peak is listed next to the size
the dense float64 matrix would need.

    python benchmarks/memory.py                 # CPU, about 2.5 CPU-minutes (one child process per point)
    python benchmarks/memory.py --sizes 1000 4000 16000 64000

Writes ``benchmarks/results/memory.json`` and prints the tables.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "memory.json"
MODELS = ("autoencoder", "conv_autoencoder", "vae", "gan", "flow", "autoregressive", "diffusion")
ESTIMATORS = ("kde", "precision_recall")
MB = 1024.0 * 1024.0


def _rss_mb() -> float:
    """Current resident set size of this process (Linux ``/proc``)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def full_model(name: str) -> tuple[Any, Any, int]:
    """The model at its full-profile size, a batch of the right type and the full-profile batch size."""
    import torch

    from genlab.profiles import CHAPTERS

    def levels(shape: tuple[int, ...], n: int) -> torch.Tensor:
        return torch.randint(0, 17, (n, *shape)).float()

    if name == "autoencoder":  # chapter 7, full: 28x28 Fashion-MNIST, the article's MLP
        from genlab.autoencoder import Autoencoder
        return Autoencoder(28, (128, 64), 12), torch.rand(64, 1, 28, 28) * 2 - 1, 64
    if name == "conv_autoencoder":
        from genlab.autoencoder import ConvAutoencoder
        channels = CHAPTERS["07_autoencoders"]["full"]["conv_channels"]
        return ConvAutoencoder(28, 12, channels=channels), torch.rand(64, 1, 28, 28) * 2 - 1, 64
    if name == "vae":  # chapter 9: 8x8 digits at every profile
        from genlab.vae import VAE
        return VAE((1, 8, 8), 16), levels((1, 8, 8), 64), 64
    if name == "gan":  # chapter 8, full: MNIST-5k 28x28
        from genlab.gan import GAN, Discriminator, Generator
        cfg = CHAPTERS["08_gans"]["full"]
        gan = GAN(Generator(cfg["latent_dim"], (1, 28, 28), channels=cfg["channels"], output_activation="tanh"),
                  Discriminator((1, 28, 28), channels=cfg["channels"]))
        return gan, torch.rand(64, 1, 28, 28) * 2 - 1, 64
    if name == "flow":  # chapter 10, full: hidden 64, 4 steps
        from genlab.flow import ImageFlow
        cfg = CHAPTERS["10_normalizing_flows"]["full"]
        return ImageFlow((1, 8, 8), hidden=cfg["flow_hidden"], n_steps=cfg["flow_steps"]), levels((1, 8, 8), 64), 64
    if name == "autoregressive":
        from genlab.autoregressive import PixelCNN
        channels = CHAPTERS["10_normalizing_flows"]["full"]["ar_channels"]
        return PixelCNN((1, 8, 8), channels=channels), levels((1, 8, 8), 64), 64
    if name == "diffusion":  # chapter 11, full: 28x28 MNIST, larger U-Net, 1000 steps, batch 128
        from genlab.diffusion import DiffusionModel
        cfg = CHAPTERS["11_diffusion"]["full"]
        model = DiffusionModel((1, 28, 28), n_steps=cfg["n_steps"], base_channels=cfg["base_channels"],
                               channel_mults=cfg["channel_mults"], attention_levels=cfg["attention_levels"])
        return model, torch.rand(cfg["batch_size"], 1, 28, 28), cfg["batch_size"]
    raise ValueError(f"unknown model {name!r}; choose from {MODELS}")


def child_train(name: str, device: str, steps: int) -> dict[str, Any]:
    """Train ``name`` for ``steps`` batches; peak memory (MB)."""
    import torch

    from genlab.device import seed_everything
    from genlab.train import Trainer

    seed_everything(0)
    model, batch, batch_size = full_model(name)
    trainer = Trainer(model, device=device, batch_size=batch_size, progress=False)
    data = batch.repeat(steps, *([1] * (batch.ndim - 1)))
    before, start = _rss_mb(), time.perf_counter()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(data, epochs=1)
    row = {"batch_size": batch_size, "steps": steps, "wall_s": round(time.perf_counter() - start, 2),
           "n_parameters": sum(p.numel() for p in model.parameters())}
    if device == "cuda":
        row["cuda_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / MB, 1)
    else:
        peak = _peak_rss_mb()
        row.update(rss_before_mb=round(before, 1), peak_rss_mb=round(peak, 1),
                   training_delta_mb=round(peak - before, 1))
    return row


def child_estimator(name: str, n: int) -> dict[str, Any]:
    """Run one chunked estimator at size ``n``; peak RSS increase over the inputs (MB)."""
    import torch

    torch.manual_seed(0)
    if name == "kde":
        from genlab.kde import KernelDensity
        x = torch.randn(n, 2, dtype=torch.float64)
        kde = KernelDensity(bandwidth=0.3).fit(x)
        before = _rss_mb()
        start = time.perf_counter()
        kde.score_samples(x)
    elif name == "precision_recall":
        from genlab.metrics import precision_recall
        real, fake = torch.randn(n, 64, dtype=torch.float64), torch.randn(n, 64, dtype=torch.float64) + 0.1
        before = _rss_mb()
        start = time.perf_counter()
        precision_recall(real, fake, k=3)
    else:
        raise ValueError(f"unknown estimator {name!r}; choose from {ESTIMATORS}")
    peak = _peak_rss_mb()
    return {"n": n, "wall_s": round(time.perf_counter() - start, 2), "rss_before_mb": round(before, 1),
            "peak_rss_mb": round(peak, 1), "delta_mb": round(peak - before, 1),
            "dense_matrix_mb": round(n * n * 8 / MB, 1)}


def in_child(args: list[str], timeout: float) -> dict[str, Any]:
    """Run this script with ``args`` in a fresh process; its JSON row (or the reason it failed)."""
    command = [sys.executable, __file__, *args]
    start, before = time.perf_counter(), os.times()
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": f"skipped: over the {timeout:.0f} s cap"}
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1][:200]
        status = "not available" if "Error" in last and "import" in result.stderr.lower() else "failed"
        return {"status": f"{status}: {last}"}
    row = json.loads(result.stdout.strip().splitlines()[-1])
    return {**row, "child_wall_s": round(time.perf_counter() - start, 1), "child_cpu_s": round(cpu, 1), "status": "ok"}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--steps", type=int, default=2, help="training batches per model (default 2)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1000, 4000, 16000],
                        help="n for the chunked estimators (default 1000 4000 16000)")
    parser.add_argument("--timeout", type=float, default=300.0, help="cap per child process (s)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # kind, name, argument
        kind, name, value = args.child
        row = child_train(name, value, args.steps) if kind == "train" else child_estimator(name, int(value))
        print(json.dumps(row))
        return row

    import torch

    from genlab.results import save_results

    one, five, fifteen = os.getloadavg()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    training = {device: {name: in_child(["--steps", str(args.steps), "--child", "train", name, device], args.timeout)
                         for name in args.models} for device in devices}
    estimators = {name: [{"n": n, **in_child(["--child", "estimator", name, str(n)], args.timeout)}
                         for n in args.sizes] for name in ESTIMATORS}
    payload = {
        "load_before": [round(one, 2), round(five, 2), round(fifteen, 2)], "load_after": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
        "training": training,
        "cuda": "measured" if "cuda" in devices else "not measured: no CUDA device on this machine",
        "estimators": estimators,
        "notes": "CPU peaks are child-process max RSS (ru_maxrss); training_delta_mb = peak - RSS just before "
                 "training (model and batch built). dense_matrix_mb is what an unchunked n x n float64 matrix "
                 "would need; the estimators work in blocks (genlab.numerics.DEFAULT_BLOCK_ELEMENTS, 32 MiB; "
                 "precision_recall batch_size 1024 rows).",
    }
    save_results(args.output, payload, args=args)
    print(f"{'device':<6} {'model':<18} {'batch':>5} {'params':>9} {'peak MB':>9} {'train delta MB':>15}  status")
    for device, rows in training.items():
        for name, r in rows.items():
            peak = r.get("cuda_peak_allocated_mb", r.get("peak_rss_mb", "-"))
            print(f"{device:<6} {name:<18} {r.get('batch_size', '-'):>5} {r.get('n_parameters', '-'):>9} "
                  f"{peak:>9} {r.get('training_delta_mb', '-'):>15}  {'' if r['status'] == 'ok' else r['status']}")
    print(f"\n{'estimator':<18} {'n':>7} {'peak MB':>9} {'delta MB':>9} {'dense n x n MB':>15} {'wall s':>7}")
    for name, rows in estimators.items():
        for r in rows:
            print(f"{name:<18} {r.get('n', '-'):>7} {r.get('peak_rss_mb', '-'):>9} {r.get('delta_mb', '-'):>9} "
                  f"{r.get('dense_matrix_mb', '-'):>15} {r.get('wall_s', '-'):>7}  "
                  f"{'' if r['status'] == 'ok' else r['status']}")
    print(f"load before {payload['load_before']} on {os.cpu_count()} cores")
    return payload


if __name__ == "__main__":
    main()
