"""DistributedDataParallel through torchrun: two CPU processes (gloo) match one process on the same global batch.

The script ``tests/ddp_script.py`` runs unchanged in both settings. One process trains on batches of 16
drawn in ``DistributedSampler`` order; two processes each take 8 of those 16 examples (the sampler's
interleaved shards), and DDP averages their gradients, which is the gradient of the mean loss over the
same 16 examples. With plain SGD (no momentum, no randomness in the model) the two runs differ only in
the order float32 sums are taken: a few units in the last place per step. Eight steps at lr 0.5 keep that
far below ``ATOL = 1e-5`` (measured: 3e-8), while training moves the weights by more than 1e-2.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import ddp_script
import pytest
import torch
import torch.distributed as dist

HERE = Path(__file__).resolve().parent
ATOL = 1e-5

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with the gloo backend is not available")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    single, multi = folder / "single.pt", folder / "ddp.pt"
    ddp_script.main(str(single))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENLAB_DEVICE": "cpu", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               str(HERE / "ddp_script.py"), str(multi)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=HERE.parent)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return torch.load(single, weights_only=True), torch.load(multi, weights_only=True)


def test_two_processes_match_one_on_the_same_global_batch(runs):
    single, multi = runs
    assert (single["world_size"], multi["world_size"]) == (1, 2)
    for name, weight in single["state"].items():
        difference = (weight.double() - multi["state"][name].double()).abs().max().item()
        assert difference < ATOL, f"{name}: DDP and single-process weights differ by {difference:.3g}"
    moved = max((single["state"][k].double() - single["initial"][k].double()).abs().max().item()
                for k in single["state"] if k != "n_updates")
    assert moved > 1e-2, f"training barely moved the weights ({moved:.3g}): the comparison would be vacuous"
    assert int(multi["n_updates"]) == int(single["n_updates"]) == 8  # 64 images / global batch 16 x 2 epochs


def test_logged_losses_are_averaged_over_the_processes(runs):
    single, multi = runs
    assert multi["train_loss"] == pytest.approx(single["train_loss"], rel=1e-6)


def test_models_with_their_own_training_step_are_refused_under_ddp(runs):
    assert "training_step" in runs[1]["refusal"] and "one process" in runs[1]["refusal"]
    assert runs[0]["refusal"] == ""  # a single process trains them as before
