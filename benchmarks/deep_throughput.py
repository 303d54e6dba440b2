"""Training and sampling throughput of genlab's deep models (images per second).

Each model trains through :class:`genlab.train.Trainer` (its real step: loss or training_step, backward,
optimiser) on synthetic batches of the right type, and samples with its own ``sample``. Variants,
each changed alone from the float32 baseline:

- ``fp32``: float32, contiguous tensors, eager;
- ``bf16``: bfloat16 autocast around the training step and sampling;
- ``channels_last``: model and batches in ``torch.channels_last`` memory format;
- ``compile``: ``torch.compile`` on each child network (training only; run in a child process whose
  warm-up is capped by ``--compile-timeout``; timed after the warm-up).

On a GPU the diffusion U-Net's model FLOP utilisation (FLOPs of a training step counted by
``torch.utils.flop_counter`` / step time / the GPU's peak bf16 rate) is recorded too; on the CPU only the
achieved GFLOP/s.

    python benchmarks/deep_throughput.py                      # CPU (and CUDA if present), ~20 CPU-seconds
    python benchmarks/deep_throughput.py --compile-models all # compile every model (CPU: minutes each)
    python benchmarks/deep_throughput.py --models vae diffusion --steps 10

Writes ``benchmarks/results/deep_throughput.json`` (with provenance and the machine load) and prints a table.
Times on a shared machine are inflated by its load: the load average is recorded next to them.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from genlab.device import seed_everything
from genlab.profiles import settings
from genlab.results import RESULTS_DIR, save_results
from genlab.train import Trainer

RESULTS = RESULTS_DIR / "deep_throughput.json"
MODELS = ("autoencoder", "vae", "gan", "flow", "autoregressive", "diffusion")
VARIANTS = ("fp32", "bf16", "channels_last", "compile")
#: Dense bf16 peak (TFLOP/s) of GPUs the course may run on (vendor datasheets, without sparsity).
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0, "T4": 65.0}


def machine_load() -> dict[str, Any]:
    """Load averages, core count and the ``uptime`` line: the context of every time measured here."""
    try:
        uptime = subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        uptime = None
    one, five, fifteen = os.getloadavg()
    return {"loadavg_1_5_15": [round(one, 2), round(five, 2), round(fifteen, 2)], "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "uptime": uptime}


# ----------------------------------------------------------------------------- models
def build(name: str) -> tuple[nn.Module, Callable[[int, torch.Generator], torch.Tensor], dict[str, Any]]:
    """The model, a batch maker ``(n, generator) -> batch`` and the ``sample`` keyword arguments.

    Sizes are the quick-profile chapters' (8x8 digits; the autoencoder at the article's 28x28), the sizes the
    course trains on a CPU; ``GENLAB_PROFILE=full`` selects the full profile's flow, PixelCNN and U-Net widths.
    Raises ImportError/AttributeError/TypeError when the model family is not available yet.
    """
    def levels(shape: tuple[int, ...]) -> Callable[[int, torch.Generator], torch.Tensor]:
        return lambda n, g: torch.randint(0, 17, (n, *shape), generator=g).float()

    def uniform(shape: tuple[int, ...], low: float, high: float) -> Callable[[int, torch.Generator], torch.Tensor]:
        return lambda n, g: low + (high - low) * torch.rand(n, *shape, generator=g)

    if name == "autoencoder":
        from genlab.autoencoder import Autoencoder
        return Autoencoder(image_size=28, hidden=(128, 64), latent_dim=12), uniform((1, 28, 28), -1, 1), {}
    if name == "vae":
        from genlab.vae import VAE
        return VAE((1, 8, 8), latent_dim=16), levels((1, 8, 8)), {}
    if name == "gan":
        from genlab.gan import GAN, Discriminator, Generator
        gan = GAN(Generator(16, (1, 8, 8), channels=32, output_activation="tanh"),
                  Discriminator((1, 8, 8), channels=32))
        return gan, uniform((1, 8, 8), -1, 1), {}
    if name == "flow":
        from genlab.flow import ImageFlow
        cfg = settings("10_normalizing_flows")
        return ImageFlow((1, 8, 8), hidden=cfg.flow_hidden, n_steps=cfg.flow_steps), levels((1, 8, 8)), {}
    if name == "autoregressive":
        from genlab.autoregressive import PixelCNN
        return PixelCNN((1, 8, 8), channels=settings("10_normalizing_flows").ar_channels), levels((1, 8, 8)), {}
    if name == "diffusion":
        from genlab.diffusion import DiffusionModel
        cfg = settings("11_diffusion")
        model = DiffusionModel((1, 8, 8), n_steps=cfg.n_steps, base_channels=cfg.base_channels,
                               channel_mults=cfg.channel_mults, attention_levels=cfg.attention_levels)
        return model, uniform((1, 8, 8), 0, 1), {"steps": 10, "sampler": "ddim"}
    raise ValueError(f"unknown model {name!r}; choose from {MODELS}")


def _autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(name: str, variant: str, device: torch.device, *, batch: int, steps: int, n_samples: int) -> dict:
    """One cell: train ``steps`` batches after two warm-up batches, then sample once after a small warm-up."""
    seed_everything(0)
    model, make_batch, sample_kwargs = build(name)
    generator = torch.Generator().manual_seed(0)
    channels_last = variant == "channels_last"
    bf16 = variant == "bf16"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    trainer = Trainer(model, device=device, progress=False, amp=False)
    trainer.amp = bf16  # the Trainer autocasts on CUDA only; the benchmark also measures bf16 on the CPU
    if variant == "compile":
        for child in model.children():
            if any(p.requires_grad for p in child.parameters()):
                child.compile()

    def data(n_batches: int) -> torch.Tensor:
        x = make_batch(batch * n_batches, generator)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    row: dict[str, Any] = {"model": name, "variant": variant, "device": device.type, "batch": batch,
                           "n_parameters": sum(p.numel() for p in model.parameters())}
    start = time.perf_counter()
    trainer.fit(data(2), epochs=1)  # warm-up: two batches (with compile: the compilation and any recompile)
    _sync(device)
    row["warmup_s"] = round(time.perf_counter() - start, 2)
    timed = data(steps)
    _sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.fit(timed, epochs=2)
    _sync(device)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    row.update(train_img_s=round(batch * steps / wall, 1), train_wall_s=round(wall, 3), train_cpu_s=round(cpu, 3),
               train_img_per_cpu_s=round(batch * steps / max(cpu, 1e-9), 1))
    if variant == "compile":
        row["sample"] = "not measured: compile is applied to training only"
        return row
    with torch.no_grad(), _autocast(device, bf16):
        model.sample(min(8, n_samples), random_state=1, **sample_kwargs)  # warm-up
        _sync(device)
        wall, cpu = time.perf_counter(), time.process_time()
        model.sample(n_samples, random_state=0, **sample_kwargs)
        _sync(device)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    row.update(sample_n=n_samples, sample_img_s=round(n_samples / wall, 1), sample_wall_s=round(wall, 3),
               sample_cpu_s=round(cpu, 3), sample_img_per_cpu_s=round(n_samples / max(cpu, 1e-9), 1),
               sample_kwargs=sample_kwargs)
    return row


def unet_flops(device: torch.device, batch: int, steps: int) -> dict[str, Any]:
    """FLOPs of one diffusion training step (forward + backward), the achieved rate and, on a GPU, the MFU."""
    from torch.utils.flop_counter import FlopCounterMode

    seed_everything(0)
    model, make_batch, _ = build("diffusion")
    trainer = Trainer(model, device=device, progress=False, amp=device.type == "cuda")
    x = make_batch(batch, torch.Generator().manual_seed(0))
    trainer.fit(x, epochs=1)  # warm-up
    with FlopCounterMode(display=False) as counter:
        trainer.fit(x, epochs=2)
    flops_per_step = counter.get_total_flops()
    data = make_batch(batch * steps, torch.Generator().manual_seed(1))
    _sync(device)
    start = time.perf_counter()
    trainer.fit(data, epochs=3)
    _sync(device)
    seconds = (time.perf_counter() - start) / steps
    result: dict[str, Any] = {"device": device.type, "batch": batch, "flops_per_train_step": flops_per_step,
                              "achieved_gflop_s": round(flops_per_step / seconds / 1e9, 2)}
    if device.type != "cuda":
        result["mfu"] = "not measured: model FLOP utilisation is against a GPU's peak, and no GPU is present"
        return result
    gpu = torch.cuda.get_device_name(device)
    peak = next((tflops for key, tflops in PEAK_BF16_TFLOPS.items() if key in gpu), None)
    result["gpu"] = gpu
    if peak is None:
        result["mfu"] = f"not measured: peak bf16 rate of {gpu!r} unknown (add it to PEAK_BF16_TFLOPS)"
    else:
        result.update(peak_bf16_tflops=peak, mfu=round(flops_per_step / seconds / (peak * 1e12), 4))
    return result


def compile_cell(name: str, device: torch.device, args: argparse.Namespace) -> dict:
    """The compile variant in a child process, so a slow or failing compilation is capped and recorded."""
    command = [sys.executable, __file__, "--cell", name, "--device", device.type, "--threads", str(args.threads),
               "--batch", str(args.batch),
               "--steps", str(args.steps), "--samples", str(args.samples)]
    start = time.perf_counter()
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=args.compile_timeout)
    except subprocess.TimeoutExpired:
        return {"model": name, "variant": "compile", "device": device.type,
                "status": f"skipped: compilation and timing exceeded the {args.compile_timeout:.0f} s cap "
                          f"(load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"}
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1][:200]
        return {"model": name, "variant": "compile", "device": device.type, "status": f"failed: {last}"}
    row = json.loads(result.stdout.strip().splitlines()[-1])
    row["child_wall_s"] = round(time.perf_counter() - start, 1)
    return row


def run_cell(name: str, variant: str, device: torch.device, args: argparse.Namespace,
             compile_models: list[str]) -> dict:
    try:
        build(name)
    except (ImportError, AttributeError, TypeError, ValueError) as err:
        return {"model": name, "variant": variant, "device": device.type,
                "status": f"not available: {type(err).__name__}: {err}"[:240]}
    if variant == "compile":
        if name not in compile_models and "all" not in compile_models:
            return {"model": name, "variant": variant, "device": device.type,
                    "status": "skipped: not in --compile-models (CPU compilation costs minutes per model here)"}
        return compile_cell(name, device, args)
    try:
        return {**measure(name, variant, device, batch=args.batch, steps=args.steps, n_samples=args.samples),
                "status": "ok"}
    except Exception as err:  # noqa: BLE001  (a benchmark records what failed and goes on)
        return {"model": name, "variant": variant, "device": device.type,
                "status": f"failed: {type(err).__name__}: {err}"[:240]}


def table(rows: list[dict]) -> str:
    lines = [f"{'device':<6} {'model':<15} {'variant':<14} {'train img/s':>11} {'img/cpu-s':>9} "
             f"{'sample img/s':>12} {'img/cpu-s':>9}  status"]

    def cell(row: dict, key: str) -> str:
        return f"{row[key]:.0f}" if key in row else "-"

    for r in rows:
        status = r.get("status", "ok")
        lines.append(f"{r['device']:<6} {r['model']:<15} {r['variant']:<14} {cell(r, 'train_img_s'):>11} "
                     f"{cell(r, 'train_img_per_cpu_s'):>9} {cell(r, 'sample_img_s'):>12} "
                     f"{cell(r, 'sample_img_per_cpu_s'):>9}  {status if status != 'ok' else ''}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--batch", type=int, default=32, help="training batch (default 32)")
    parser.add_argument("--steps", type=int, default=8, help="timed training batches per cell (default 8)")
    parser.add_argument("--samples", type=int, default=32, help="images drawn in the timed sampling call")
    parser.add_argument("--compile-models", nargs="+", default=None,
                        help="models whose compile variant runs ('all'; default: autoencoder on CPU, all on CUDA)")
    parser.add_argument("--compile-timeout", type=float, default=180.0, help="wall-clock cap of one compile cell (s)")
    parser.add_argument("--cpu-only", action="store_true", help="skip CUDA even when present")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: on a shared machine, idle threads spinning for work "
                             "inflate CPU time and scatter wall time)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.cell:  # child process of compile_cell: one compile measurement, printed as JSON
        row = measure(args.cell, "compile", torch.device(args.device), batch=args.batch, steps=args.steps,
                      n_samples=args.samples)
        print(json.dumps({**row, "status": "ok"}))
        return row
    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and not args.cpu_only:
        devices.append(torch.device("cuda"))
    load_before = machine_load()
    rows, flops = [], {}
    started, cpu_started = time.perf_counter(), time.process_time()
    for device in devices:
        compile_models = args.compile_models or (["all"] if device.type == "cuda" else ["autoencoder"])
        for name in args.models:
            for variant in args.variants:
                row = run_cell(name, variant, device, args, compile_models)
                rows.append(row)
                print(table([row]).splitlines()[1], flush=True)
        if "diffusion" in args.models:
            try:
                flops[device.type] = unet_flops(device, args.batch, args.steps)
            except (ImportError, AttributeError, TypeError, ValueError, RuntimeError) as err:
                flops[device.type] = {"status": f"not available: {type(err).__name__}: {err}"[:240]}
    payload = {
        "load_before": load_before, "load_after": machine_load(),
        "total_wall_s": round(time.perf_counter() - started, 1),
        "total_cpu_s_parent": round(time.process_time() - cpu_started, 1),
        "cuda": "measured" if len(devices) > 1 else "not measured: no CUDA device on this machine",
        "rows": rows, "diffusion_unet_flops": flops,
        "notes": "Each variant changes one thing from fp32. Times are inflated by the machine's load (recorded). "
                 "compile cells run in a child process; their CPU time is not in total_cpu_s_parent.",
    }
    save_results(args.output, payload, args=args)
    print("\n" + table(rows))
    for device, result in flops.items():
        print(f"diffusion U-Net on {device}: {result}")
    print(f"load before {load_before['loadavg_1_5_15']}, after {payload['load_after']['loadavg_1_5_15']} "
          f"on {os.cpu_count()} cores; wall {payload['total_wall_s']} s, parent CPU {payload['total_cpu_s_parent']} s")
    return payload


if __name__ == "__main__":
    main()
