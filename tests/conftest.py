"""Test-wide settings: CPU, quick profile, a private cache folder."""
import os

import pytest

os.environ.setdefault("GENLAB_PROFILE", "quick")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # Feature-extractor checkpoints and the like must never leak between tests and the user's cache.
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path_factory.mktemp("genlab_cache")))
