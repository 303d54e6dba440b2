"""The one place that decides how big each chapter's run is.

Every chapter reads its sizes from here::

    from genlab.profiles import settings
    cfg = settings("07_autoencoders")
    cfg.epochs

``GENLAB_PROFILE=quick`` (default) keeps every notebook within about three
minutes on a 2-core CPU; ``GENLAB_PROFILE=full`` is the longer, GPU-sized run.
Notebooks never hard-code both sizes: they read the current one from here.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from .device import get_profile

# One entry per chapter: {"quick": {...}, "full": {...}}; both must have the same keys.
CHAPTERS: dict[str, dict[str, dict[str, Any]]] = {
    # --- 01_fundamentals ---
    "01_fundamentals": {
        "quick": {"n_repeats": 20},
        "full": {"n_repeats": 100},
    },
    # --- 02_distributions ---
    "02_distributions": {
        "quick": {"n_bootstrap": 200},
        "full": {"n_bootstrap": 2000},
    },
    # --- 03_gaussian_mixtures ---
    # --- 04_hidden_markov_models ---
    # --- 05_nonparametric ---
    # --- 06_deep_generative_models ---
    # --- 07_autoencoders ---
    # --- 09_vaes ---
    # --- 14_evaluation ---
}


def settings(chapter: str, profile: str | None = None) -> SimpleNamespace:
    """Return the sizes of ``chapter`` for ``profile`` (default: the current one).

    Raises:
        KeyError: if the chapter has no entry here (the message lists those that do).
        ValueError: if the profile is unknown.
    """
    profile = get_profile() if profile is None else profile
    if profile not in ("quick", "full"):
        raise ValueError(f"profile must be 'quick' or 'full', got {profile!r}")
    if chapter not in CHAPTERS:
        raise KeyError(f"no sizes for chapter {chapter!r}; known chapters: {sorted(CHAPTERS)}")
    values = dict(CHAPTERS[chapter][profile])
    values["profile"] = profile
    return SimpleNamespace(**values)
