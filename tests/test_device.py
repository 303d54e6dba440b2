import random

import numpy as np
import pytest
import torch

from genlab.device import get_device, get_profile, seed_everything
from genlab.profiles import CHAPTERS, settings


def test_default_device_is_cpu_or_cuda(monkeypatch):
    monkeypatch.delenv("GENLAB_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert get_device().type == expected


def test_env_override(monkeypatch):
    monkeypatch.setenv("GENLAB_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


def test_unknown_device_is_rejected(monkeypatch):
    monkeypatch.setenv("GENLAB_DEVICE", "banana")
    with pytest.raises(ValueError, match="unknown device"):
        get_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda():
    with pytest.raises(ValueError, match="CUDA is not available"):
        get_device("cuda")


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    seed_everything(3)
    first = draw()
    seed_everything(3)
    assert draw() == first
    generator = seed_everything(3)
    assert torch.rand(1, generator=generator).item() == torch.rand(1, generator=torch.Generator().manual_seed(3)).item()


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True, None])
def test_seed_rejects_bad_values(bad):
    with pytest.raises((ValueError, TypeError), match="seed"):
        seed_everything(bad)


def test_profile_default_and_full(monkeypatch):
    monkeypatch.delenv("GENLAB_PROFILE", raising=False)
    assert get_profile() == "quick"
    monkeypatch.setenv("GENLAB_PROFILE", "FULL")
    assert get_profile() == "full"


def test_unknown_profile(monkeypatch):
    monkeypatch.setenv("GENLAB_PROFILE", "medium")
    with pytest.raises(ValueError, match="GENLAB_PROFILE"):
        get_profile()


def test_every_chapter_has_the_same_keys_in_both_profiles():
    for chapter, profiles in CHAPTERS.items():
        assert set(profiles) == {"quick", "full"}, chapter
        assert set(profiles["quick"]) == set(profiles["full"]), f"{chapter}: quick and full keys differ"


def test_settings_reads_the_current_profile(monkeypatch):
    chapter = next(iter(CHAPTERS))
    monkeypatch.setenv("GENLAB_PROFILE", "full")
    cfg = settings(chapter)
    assert cfg.profile == "full"
    for key, value in CHAPTERS[chapter]["full"].items():
        assert getattr(cfg, key) == value


def test_settings_unknown_chapter():
    with pytest.raises(KeyError, match="known chapters"):
        settings("99_nothing")
    with pytest.raises(ValueError, match="profile"):
        settings(next(iter(CHAPTERS)), profile="huge")


@pytest.mark.parametrize("seed, error", [("a", TypeError), (1.5, TypeError), (True, TypeError), (-1, ValueError),
                                         (2**70, ValueError)])
def test_bad_seeds_name_the_argument(seed, error):
    with pytest.raises(error, match="seed"):
        seed_everything(seed)


def test_numpy_seeds_are_accepted():
    seed_everything(np.int64(3))
    first = torch.rand(2)
    seed_everything(3)
    assert torch.equal(first, torch.rand(2))


def test_reproducible_linear_algebra_environment_is_set():
    import os

    from genlab.device import REPRODUCIBLE_ENV

    for name in REPRODUCIBLE_ENV:
        assert os.environ.get(name), f"{name} must be set before torch runs MKL code"
