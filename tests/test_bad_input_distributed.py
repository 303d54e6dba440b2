"""Bad input to genlab.distributed (the torchrun / DDP helpers the Trainer uses), table-driven."""
from __future__ import annotations

import pytest
from badinput import Case, assert_clear_error
from torch import nn

from genlab import distributed

COVERED = {"distributed.setup", "distributed.all_reduce_sum", "distributed.DistInfo", "distributed.LossForward"}

CASES = [
    Case("distributed.setup", lambda: distributed.setup("mpi"), "backend", "mpi"),
    Case("distributed.setup", lambda: distributed.setup(3), "backend", "3"),
    Case("distributed.all_reduce_sum", lambda: distributed.all_reduce_sum([1.0, 2.0]), "values", "list"),
    Case("distributed.all_reduce_sum", lambda: distributed.all_reduce_sum({1: 2.0}), "values", "int key"),
    Case("distributed.DistInfo", lambda: distributed.DistInfo(rank=2, world_size=2), "rank", "2 of 2"),
    Case("distributed.DistInfo", lambda: distributed.DistInfo(rank=0, world_size=0), "world_size", "0"),
    Case("distributed.DistInfo", lambda: distributed.DistInfo(local_rank=-1), "local_rank", "-1"),
    Case("distributed.DistInfo", lambda: distributed.DistInfo(rank=0.5), "rank", "0.5"),
    Case("distributed.LossForward", lambda: distributed.LossForward(nn.Linear(2, 2)), "loss", "no loss"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input_fails_clearly(case):
    assert_clear_error(case)


@pytest.mark.parametrize(("env", "named"), [
    ({"WORLD_SIZE": "two", "RANK": "0"}, "WORLD_SIZE"),
    ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "", "MASTER_PORT": "29500"}, "MASTER_ADDR"),
])
def test_a_broken_torchrun_environment_fails_clearly(monkeypatch, env, named):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=named):
        distributed.setup()


def test_outside_torchrun_setup_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = distributed.setup()
    assert (info.rank, info.world_size, info.enabled, info.is_main) == (0, 1, False, True)
    assert distributed.all_reduce_sum({"loss": 2.5}) == {"loss": 2.5}
