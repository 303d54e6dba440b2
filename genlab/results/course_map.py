"""The course's map: every model family with what it learns and what this course measured for it.

:data:`FAMILIES` holds the qualitative columns (what the family learns, its density, its likelihood,
the cost of a sample) and the chapter that teaches it; :func:`course_map` adds the measured
columns, read from the stored results files (the likelihood ledger and the leaderboard): the best
test NLL on the 8x8 digits, the FID of its samples, and the seconds its leaderboard row took. A
family with no measured row says so; nothing is filled in from elsewhere.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..validation import check_option
from . import REPO_ROOT

__all__ = ["Family", "FAMILIES", "course_map", "chapter_file"]


@dataclasses.dataclass(frozen=True)
class Family:
    """A model family of the course and its qualitative description."""

    name: str
    learns: str
    density: str
    likelihood: str
    sampling: str
    chapter: str  # chapter number, e.g. "09"
    modules: tuple[str, ...]
    on_images: bool = True  # False for sequence models, which the image tables do not measure


#: Every family of the course, in the order the course meets them. Add a family with one line.
FAMILIES: tuple[Family, ...] = (
    Family("mixture models", "weighted sum of simple densities", "explicit", "exact", "1 draw", "03",
           ("genlab.mixture",)),
    Family("hidden Markov models", "latent Markov chain + emissions", "explicit", "exact (forward algorithm)",
           "1 pass per time step", "04", ("genlab.hmm",), on_images=False),
    Family("kernel density", "a bump on every training point", "explicit", "exact", "1 draw (a noisy copy)", "05",
           ("genlab.kde", "genlab.nonparametric")),
    Family("autoencoder", "encoder + decoder", "none", "none", "1 decoder pass (from an ad-hoc code)", "07",
           ("genlab.autoencoder",)),
    Family("GAN", "generator vs discriminator", "implicit", "none", "1 generator pass", "08", ("genlab.gan",)),
    Family("VAE", "latent-variable model", "explicit, intractable", "lower bound (ELBO, IWAE)", "1 decoder pass",
           "09", ("genlab.vae",)),
    Family("normalising flow", "invertible map", "explicit", "exact", "1 inverse pass", "10", ("genlab.flow",)),
    Family("diffusion", "denoiser over noise levels", "explicit, intractable (defined by the reverse chain)",
           "lower bound (variational bound)", "100s of network passes", "11", ("genlab.diffusion",)),
    Family("autoregressive", "product of conditionals", "explicit", "exact", "1 pass per dimension", "10",
           ("genlab.autoregressive",)),
)

#: Ledger recipes -> family (the ledger measures the VAE family; the independent-pixel baseline is a mixture
#: with one component).
_LEDGER_FAMILY = {"independent_pixels": "mixture models"}


def chapter_file(chapter: str, root: str | Path | None = None) -> str | None:
    """The notebook file name of chapter ``chapter`` (e.g. ``"09_vaes.ipynb"``), or None if it does not exist."""
    if not isinstance(chapter, str):
        raise TypeError(f"chapter must be a string such as '09', got {type(chapter).__name__}")
    folder = Path(root) if root is not None else REPO_ROOT / "chapters"
    found = sorted(folder.glob(f"{chapter}_*.ipynb"))
    return found[0].name if found else None


def _family_of_module(module: str) -> str | None:
    return next((f.name for f in FAMILIES if module in f.modules), None)


def _provenance_label(record: dict[str, Any], row: dict[str, Any] | None = None) -> str:
    measured = (row or {}).get("measured")
    if isinstance(measured, dict) and "converted" in measured:
        return "earlier run (converted)"
    if isinstance(measured, dict) and measured.get("date_utc"):
        return str(measured["date_utc"])[:10]
    date = record.get("provenance", {}).get("date_utc")
    converted = "converted_from" in (record.get("provenance", {}).get("args") or {})
    return "earlier run (converted)" if converted else (str(date)[:10] if date else "?")


def course_map(leaderboard: dict[str, Any] | None = None, ledger: dict[str, Any] | None = None,
               dataset: str = "digits") -> list[dict[str, Any]]:
    """One row per family: the qualitative columns plus what the stored results measured on ``dataset``.

    ``leaderboard`` / ``ledger`` default to the stored files (a missing file leaves its columns
    unmeasured). Measured columns: ``nll_nats`` (best test NLL, nats per image, with the model that
    reached it), ``fid`` (lowest FID of the family's samples), ``seconds`` (that leaderboard row's
    train + sample + score time on the machine that measured it), and ``measured`` (when).
    """
    from .leaderboard import DATASETS, LEADERBOARD_PATH, MODELS, load_leaderboard
    from .ledger import LEDGER_PATH, load_ledger

    check_option(dataset, "dataset", DATASETS)
    for value, name in ((leaderboard, "leaderboard"), (ledger, "ledger")):
        if value is not None and not isinstance(value, dict):
            raise TypeError(f"{name} must be a dict (a stored results file) or None, got {type(value).__name__}")
    if leaderboard is None and LEADERBOARD_PATH.is_file():
        leaderboard = load_leaderboard()
    if ledger is None and LEDGER_PATH.is_file():
        ledger = load_ledger()
    best_nll: dict[str, tuple[float, str, str]] = {}
    best_fid: dict[str, tuple[float, str, float | None, str]] = {}

    def offer_nll(family: str | None, value: float | None, model: str, when: str) -> None:
        if family is not None and value is not None and (family not in best_nll or value < best_nll[family][0]):
            best_nll[family] = (float(value), model, when)

    if leaderboard is not None and dataset in leaderboard.get("datasets", {}):
        for row in leaderboard["datasets"][dataset]["rows"]:
            entry = MODELS.get(row["model"])
            family = _family_of_module(entry.module) if entry is not None else None
            when = _provenance_label(leaderboard, row)
            offer_nll(family, row.get("nll_nats"), row["model"], when)
            fid = row.get("fid")
            if family is not None and fid is not None and (family not in best_fid or fid < best_fid[family][0]):
                best_fid[family] = (float(fid), row["model"], row.get("seconds"), when)
    if ledger is not None and dataset == "digits":
        for recipe, entry in ledger.get("digits", {}).items():
            family = _LEDGER_FAMILY.get(recipe, "VAE")
            offer_nll(family, entry["test_nats"]["mean"], entry.get("label", recipe), _provenance_label(ledger))
    rows = []
    for family in FAMILIES:
        nll = best_nll.get(family.name)
        fid = best_fid.get(family.name)
        if not family.on_images:
            nll_text = "sequence model: not measured on images"
        elif family.likelihood == "none":
            nll_text = "no likelihood"
        else:
            nll_text = f"{nll[0]:.2f} ({nll[1]})" if nll else "not yet measured"
        rows.append({
            "family": family.name, "chapter": family.chapter, "chapter_file": chapter_file(family.chapter),
            "learns": family.learns, "density": family.density, "likelihood": family.likelihood,
            "sampling": family.sampling, "nll_nats": nll[0] if nll else None, "nll": nll_text,
            "fid": fid[0] if fid else None,
            "fid_text": f"{fid[0]:.1f} ({fid[1]})" if fid else ("not yet measured" if family.on_images else "-"),
            "seconds": fid[2] if fid else None,
            "measured": "; ".join(dict.fromkeys(x[-1] for x in (nll, fid) if x)) or "-",
        })
    return rows
