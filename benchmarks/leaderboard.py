"""The course leaderboard: every genlab model on the same test split, likelihood and samples.

For each dataset (8x8 digits; MNIST-5k in the full profile) every available model is trained
on the training split and scored on the test split:

* NLL in nats per image and bits per dimension, where the model has a likelihood. Discrete
  models (categorical mixtures, the VAE's categorical decoder) give a probability mass; the
  continuous ones (Gaussian mixture, KDE) are fitted to uniformly dequantised data and their
  NLL on dequantised test images is an upper bound on a discrete NLL (bin width 1 level;
  see :func:`genlab.metrics.nats_to_bits_per_dim`). The VAE's is the importance-weighted bound.
* FID, KID, precision, recall, density, coverage and C2ST of as many samples as there are test
  images, in the feature space of genlab's digit classifier, beside the real-train vs real-test
  floor (:func:`genlab.metrics.real_floor`) computed with the same sizes.

    python benchmarks/leaderboard.py                 # the current GENLAB_PROFILE (quick: digits)
    python benchmarks/leaderboard.py --profile full  # adds MNIST-5k and longer training

Writes ``benchmarks/results/leaderboard.json`` and prints the table with reference numbers from
the literature beside it (labelled as references: they were *not* measured here). Chapter 14
re-runs the fast rows itself with :func:`build_leaderboard` and takes the slow ones (VAE,
autoencoder) from the JSON only after :func:`check_fresh` has confirmed that the stored file
agrees with what this checkout computes.
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import genlab  # noqa: E402
from genlab import metrics  # noqa: E402
from genlab.data import load_digits, load_mnist  # noqa: E402
from genlab.profiles import settings  # noqa: E402
from genlab.train import Trainer  # noqa: E402

RESULTS = HERE / "results" / "leaderboard.json"
SAMPLE_METRICS = ("fid", "kid", "precision", "recall", "density", "coverage", "c2st")

# Literature / reference-code numbers (test NLL, nats per image) for the digits split used here.
# Source: the intro_dgm reference code and scikit-learn baselines, as collected for this course.
# They are printed beside the table as REFERENCES, never as measurements.
REFERENCES = {
    "digits": {
        "independent pixels": "106.47 (smoothed categorical)",
        "categorical mixture K=20": "100.77 (EM)",
        "Gaussian mixture K=20 (dequantised)": "127.24 (sklearn, diag, reg 0.1)",
        "KDE (dequantised)": "149.80 (sklearn, h = 2; its tree sum is approximate, ours exact)",
        "VAE": "96.4-97.4 (intro_dgm, -ELBO)",
        "VAE + causal-conv decoder": "86.3-86.8 (intro_dgm autoregressive, no latents)",
        "autoencoder": "- (no likelihood)",
        "uniform over 17 levels": "181.33 (64 ln 17)",
        "autoregressive (causal conv)": "86.3-86.8 (strongest reference)",
    },
    "mnist": {
        "VAE": "86.76 binarised MNIST, full data (IWAE paper, k=1)",
        "flows (RealNVP / Glow / FFJORD)": "1.06 / 1.05 / 0.99 bits/dim, full 8-bit MNIST",
    },
}


# ----------------------------------------------------------------------------- datasets
class Dataset:
    """A dataset as integer levels (what likelihoods are measured on) plus its display units."""

    def __init__(self, name: str) -> None:
        if name not in metrics.DATASETS:
            raise ValueError(f"unknown dataset {name!r}; choose one of {metrics.DATASETS}")
        self.name = name
        loader = load_digits if name == "digits" else load_mnist
        self.images = {split: loader(split)[0] for split in ("train", "val", "test")}
        # digits hold levels 0..16; MNIST-5k pixels are k/255
        self.n_levels = 17 if name == "digits" else 256
        self.unit = 1.0 if name == "digits" else 1.0 / 255.0
        self.levels = {split: torch.round(x / self.unit) for split, x in self.images.items()}
        self.shape = tuple(self.images["train"].shape[1:])
        self.n_dims = int(np.prod(self.shape))
        # continuous models see (level + u) * scale, u ~ U[0, 1): one bin has width `scale`
        self.scale = 1.0 if name == "digits" else 1.0 / self.n_levels

    def from_levels(self, levels: torch.Tensor) -> torch.Tensor:
        """Integer levels ``(n, D)`` or images -> images in the dataset's units ``(n, 1, H, W)``."""
        levels = levels.reshape(-1, *self.shape).float().clamp(0, self.n_levels - 1)
        return levels * self.unit

    def dequantised(self, split: str, seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        levels = self.levels[split].reshape(len(self.levels[split]), -1).double()
        return (levels + torch.rand(levels.shape, generator=generator, dtype=torch.float64)) * self.scale

    def from_dequantised(self, values: torch.Tensor) -> torch.Tensor:
        return self.from_levels(torch.floor(values.cpu().double() / self.scale))

    def discrete_nll(self, continuous_nll: float) -> float:
        """Continuous NLL of dequantised data (bin width ``scale``) -> discrete NLL in nats."""
        return continuous_nll - self.n_dims * math.log(self.scale)


# ----------------------------------------------------------------------------- models
# Each builder trains one model and returns (test NLL in nats per image or None, samples in data units).
Builder = Callable[[Dataset, Any, int, torch.device], tuple[float | None, torch.Tensor]]


def _categorical(n_components: int) -> Builder:
    def build(data: Dataset, cfg: Any, seed: int, device: torch.device) -> tuple[float | None, torch.Tensor]:
        from genlab.mixture import CategoricalMixture

        model = CategoricalMixture(n_components=n_components, n_categories=data.n_levels, alpha=1.0,
                                   random_state=seed, device=device)
        model.fit(data.levels["train"])
        nll = -model.score(data.levels["test"])
        samples, _ = model.sample(len(data.levels["test"]))
        return nll, data.from_levels(samples.cpu())
    return build


def _gaussian_mixture(data: Dataset, cfg: Any, seed: int, device: torch.device) -> tuple[float | None, torch.Tensor]:
    from genlab.mixture import GaussianMixture

    # reg 0.1 in level units (the reference setting); scaled with the data for MNIST
    model = GaussianMixture(n_components=20, covariance_type="diag", reg_covar=0.1 * data.scale ** 2,
                            random_state=seed, device=device)
    model.fit(data.dequantised("train", seed))
    nll = data.discrete_nll(-model.score(data.dequantised("test", seed + 1)))
    samples, _ = model.sample(len(data.levels["test"]))
    return nll, data.from_dequantised(samples)


def _kde(data: Dataset, cfg: Any, seed: int, device: torch.device) -> tuple[float | None, torch.Tensor]:
    from genlab.kde import KernelDensity

    train = data.dequantised("train", seed)
    if data.name == "digits":
        bandwidth = 2.0  # levels: the reference setting
    else:
        # 2 levels is far too narrow in 784 dimensions: pick the width on the validation split
        val = data.dequantised("val", seed + 2)
        widths = [w * data.scale for w in (8.0, 16.0, 32.0, 64.0)]
        bandwidth = max(widths, key=lambda w: KernelDensity(bandwidth=w, device=device).fit(train).score(val))
        bandwidth /= data.scale
    model = KernelDensity(bandwidth=bandwidth * data.scale, device=device).fit(train)
    nll = data.discrete_nll(-model.score(data.dequantised("test", seed + 1)))
    samples = model.sample(len(data.levels["test"]), random_state=seed)
    return nll, data.from_dequantised(samples)


def _fit_and_score_vae(model: torch.nn.Module, data: Dataset, cfg: Any, seed: int,
                       device: torch.device) -> tuple[float | None, torch.Tensor]:
    """Adamax with early stopping on the validation split, then the IW test NLL and one sample per test image."""
    trainer = Trainer(model, lr=1e-3, optimizer="adamax", batch_size=64, device=device, progress=False, seed=seed)
    trainer.fit(data.levels["train"], epochs=cfg.vae_epochs, val_data=data.levels["val"], patience=20)
    nll = -float(model.log_prob(data.levels["test"], k=cfg.iw_samples).mean())
    samples = model.sample(len(data.levels["test"]))
    return nll, data.from_levels(samples.cpu())


def _vae(data: Dataset, cfg: Any, seed: int, device: torch.device) -> tuple[float | None, torch.Tensor]:
    from genlab.vae import VAE

    genlab.seed_everything(seed)
    if data.name == "digits":
        model = VAE(data.shape, latent_dim=16, likelihood="categorical", n_levels=17)
    else:
        model = VAE(data.shape, latent_dim=32, likelihood="discretized_logistic", n_levels=256,
                    encoder="conv", decoder="conv", hidden=256)
    return _fit_and_score_vae(model, data, cfg, seed, device)


def _causal_conv_vae(data: Dataset, cfg: Any, seed: int, device: torch.device) -> tuple[float | None, torch.Tensor]:
    """Chapter 09's best recipe (:data:`genlab.vae.DIGITS_RECIPES`, ``causal_conv_vae``)."""
    from genlab.vae import DIGITS_RECIPES, VAE

    genlab.seed_everything(seed)
    return _fit_and_score_vae(VAE(data.shape, **DIGITS_RECIPES["causal_conv_vae"]), data, cfg, seed, device)


def _autoencoder(data: Dataset, cfg: Any, seed: int, device: torch.device) -> tuple[float | None, torch.Tensor]:
    from genlab.autoencoder import Autoencoder, denormalize_images, normalize_images

    genlab.seed_everything(seed)
    model = Autoencoder(image_size=data.shape[-1], hidden=(128, 64), latent_dim=12)
    unit_range = {split: data.levels[split] / (data.n_levels - 1) for split in ("train", "val")}
    trainer = Trainer(model, lr=1e-3, batch_size=64, device=device, progress=False, seed=seed)
    trainer.fit(normalize_images(unit_range["train"]), epochs=cfg.ae_epochs,
                val_data=normalize_images(unit_range["val"]), patience=10)
    decoded = model.sample(len(data.levels["test"]), generator=torch.Generator().manual_seed(seed))
    levels = torch.round(denormalize_images(decoded.cpu()) * (data.n_levels - 1))
    return None, data.from_levels(levels)


# name -> (module it needs, builder, datasets it runs on)
MODELS: dict[str, tuple[str, Builder, tuple[str, ...]]] = {
    # on MNIST-5k the categoricals have 256 levels per pixel (CategoricalMixture keeps its
    # 3,500 x 784 x 256 indicator matrix sparse there)
    "independent pixels": ("genlab.mixture", _categorical(1), ("digits", "mnist")),
    "categorical mixture K=20": ("genlab.mixture", _categorical(20), ("digits",)),
    "Gaussian mixture K=20 (dequantised)": ("genlab.mixture", _gaussian_mixture, ("digits", "mnist")),
    # bandwidth 2 levels on the digits (the reference), chosen on the validation split for MNIST
    "KDE (dequantised)": ("genlab.kde", _kde, ("digits", "mnist")),
    "VAE": ("genlab.vae", _vae, ("digits", "mnist")),
    "VAE + causal-conv decoder": ("genlab.vae", _causal_conv_vae, ("digits",)),
    "autoencoder": ("genlab.autoencoder", _autoencoder, ("digits", "mnist")),
}


# Why a model has no row on a dataset (measured; printed under the table).
NOT_RUN = {
    ("categorical mixture K=20", "mnist"): (
        "with 256 levels per pixel and 3,500 training images EM does not find 20 useful components: with "
        "alpha=1 all weight goes to one component (test NLL 958.05, the same as independent pixels), with "
        "alpha=0.1 and k-means initialisation it over-fits (965.87 nats)"),
    ("VAE + causal-conv decoder", "mnist"): (
        "its recipe is tuned for 8x8 images with 17 levels; on 784 pixels with 256 levels it needs a larger "
        "decoder and far more than the quick profile's CPU time (not measured)"),
}


def _available(module: str) -> str | None:
    """None if ``module`` imports, else the reason it does not."""
    try:
        importlib.import_module(module)
    except ImportError as err:
        return f"{module} is not available ({err})"
    return None


# ----------------------------------------------------------------------------- the table
def build_leaderboard(profile: str | None = None, *, datasets: list[str] | None = None,
                      models: list[str] | None = None, seed: int = 0,
                      device: torch.device | str | None = None, verbose: bool = True,
                      samples_out: dict[str, dict[str, torch.Tensor]] | None = None) -> dict[str, Any]:
    """Train and score every available model; return the leaderboard as a JSON-ready dict.

    Args:
        profile: ``"quick"`` or ``"full"`` (default: ``GENLAB_PROFILE``); sizes from
            ``genlab.profiles.settings("14_evaluation")``.
        datasets: override the profile's list (``"digits"``, ``"mnist"``).
        models: a subset of :data:`MODELS` (default: all).
        seed: seeds training, sampling and the metrics' subsets.
        samples_out: if given, filled with ``{dataset: {model: samples}}`` (images in data units).

    Returns:
        ``{"meta": ..., "datasets": {name: {"classifier_test_accuracy", "floor", "rows", "missing"}}}``
        where each row holds ``model``, ``nll_nats``, ``bits_per_dim`` (None without a
        likelihood), the sample metrics and ``seconds``.
    """
    cfg = settings("14_evaluation", profile)
    datasets = list(cfg.leaderboard_datasets if datasets is None else datasets)
    chosen = list(MODELS if models is None else models)
    unknown = [name for name in chosen if name not in MODELS]
    if unknown:
        raise ValueError(f"unknown models {unknown}; choose from {list(MODELS)}")
    device = genlab.get_device(device) if not isinstance(device, torch.device) else device
    result: dict[str, Any] = {"meta": {"profile": cfg.profile, "seed": seed, "device": str(device),
                                       "torch": torch.__version__, "genlab": genlab.__version__,
                                       "classifier_version": metrics.CLASSIFIER_VERSION,
                                       "cpu": platform.machine(), "threads": torch.get_num_threads()},
                              "datasets": {}}
    for name in datasets:
        data = Dataset(name)
        extractor = metrics.get_feature_extractor(name, device=device)
        real = data.images["test"]
        started = time.perf_counter()
        floor = metrics.real_floor(data.images["train"], real, extractor, seed=seed,
                                   kid_subsets=cfg.kid_subsets, device=device)
        entry: dict[str, Any] = {"classifier_test_accuracy": extractor.test_accuracy, "n_test": len(real),
                                 "n_dims": data.n_dims, "floor": floor,
                                 "floor_seconds": time.perf_counter() - started, "rows": [], "missing": {}}
        for model_name in chosen:
            module, builder, supported = MODELS[model_name]
            if name not in supported:
                entry["missing"][model_name] = NOT_RUN.get((model_name, name),
                                                           f"not run on {name} (see MODELS in benchmarks/leaderboard.py)")
                continue
            reason = _available(module)
            if reason is not None:
                entry["missing"][model_name] = reason
                continue
            started = time.perf_counter()
            nll, samples = builder(data, cfg, seed, device)
            scores = metrics.evaluate_samples(real, samples, extractor, seed=seed, kid_subsets=cfg.kid_subsets,
                                              device=device)
            memo = metrics.memorization(samples, data.images["train"], real)
            row = {"model": model_name, "nll_nats": nll,
                   "bits_per_dim": None if nll is None else metrics.nats_to_bits_per_dim(nll, data.n_dims),
                   **scores, "copy_fraction": memo.copy_fraction,
                   "median_ratio": float(np.median(memo.ratios)),
                   "seconds": time.perf_counter() - started}
            entry["rows"].append(row)
            if samples_out is not None:
                samples_out.setdefault(name, {})[model_name] = samples
            if verbose:
                print(f"[{name}] {model_name}: done in {row['seconds']:.1f} s", flush=True)
        result["datasets"][name] = entry
    return result


FAST_MODELS = ("independent pixels", "categorical mixture K=20", "Gaussian mixture K=20 (dequantised)",
               "KDE (dequantised)")


def load_leaderboard(path: str | Path = RESULTS) -> dict[str, Any]:
    """Read a leaderboard written by :func:`main`.

    Raises:
        FileNotFoundError: no file there (run ``python benchmarks/leaderboard.py`` first).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no leaderboard at {path}; run `python benchmarks/leaderboard.py` to write it")
    return json.loads(path.read_text())


def check_fresh(stored: dict[str, Any], recomputed: dict[str, Any], *, nll_tol: float = 1e-3,
                metric_rtol: float = 0.1) -> None:
    """Raise ``ValueError`` unless ``stored`` agrees with a ``recomputed`` (partial) leaderboard.

    Compared: profile, seed, classifier version, the classifier's test accuracy (within 0.01), the
    floor's FID and every recomputed row's NLL (``nll_tol`` nats: the fast models are deterministic)
    and FID (``metric_rtol`` relative: features can move slightly when the classifier was retrained
    on another machine). A mismatch means the stored file is stale for this checkout.
    """
    problems = []
    for key in ("profile", "seed", "classifier_version"):
        if stored["meta"].get(key) != recomputed["meta"].get(key):
            problems.append(f"{key}: stored {stored['meta'].get(key)!r}, now {recomputed['meta'].get(key)!r}")
    for name, fresh in recomputed["datasets"].items():
        old = stored["datasets"].get(name)
        if old is None:
            problems.append(f"dataset {name} is not in the stored leaderboard")
            continue
        if abs(old["classifier_test_accuracy"] - fresh["classifier_test_accuracy"]) > 0.01:
            problems.append(f"{name}: classifier accuracy stored {old['classifier_test_accuracy']:.3f}, "
                            f"now {fresh['classifier_test_accuracy']:.3f}")
        pairs = [("floor", old["floor"], fresh["floor"])]
        stored_rows = {row["model"]: row for row in old["rows"]}
        for row in fresh["rows"]:
            if row["model"] not in stored_rows:
                problems.append(f"{name}: row {row['model']!r} is not in the stored leaderboard")
                continue
            pairs.append((row["model"], stored_rows[row["model"]], row))
            if row["nll_nats"] is not None and abs(row["nll_nats"] - stored_rows[row["model"]]["nll_nats"]) > nll_tol:
                problems.append(f"{name}/{row['model']}: NLL stored {stored_rows[row['model']]['nll_nats']:.4f}, "
                                f"now {row['nll_nats']:.4f}")
        for label, a, b in pairs:
            if abs(a["fid"] - b["fid"]) > metric_rtol * max(abs(b["fid"]), 1e-12):
                problems.append(f"{name}/{label}: FID stored {a['fid']:.3f}, now {b['fid']:.3f}")
    if problems:
        raise ValueError("the stored leaderboard is stale for this checkout; rerun "
                         "`python benchmarks/leaderboard.py` (same GENLAB_PROFILE). Differences: " + "; ".join(problems))


def merged_rows(stored: dict[str, Any], recomputed: dict[str, Any], dataset: str) -> list[dict[str, Any]]:
    """Rows of ``dataset`` in the stored order, recomputed ones replacing their stored versions."""
    fresh = {row["model"]: row for row in recomputed["datasets"][dataset]["rows"]}
    return [fresh.get(row["model"], row) for row in stored["datasets"][dataset]["rows"]]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:.0f}"


def format_table(board: dict[str, Any]) -> str:
    """The leaderboard as text: one block per dataset, floor first, references on the right."""
    lines = []
    for name, entry in board["datasets"].items():
        refs = REFERENCES.get(name, {})
        lines.append(f"== {name} (test split, n = {entry['n_test']}; feature classifier test accuracy "
                     f"{entry['classifier_test_accuracy']:.3f}; profile {board['meta']['profile']})")
        header = (f"{'model':<38}{'NLL nats':>10}{'bits/dim':>9}{'FID':>8}{'KID':>8}{'prec':>6}{'rec':>6}"
                  f"{'dens':>6}{'cov':>6}{'C2ST':>6}{'copy%':>7}   reference NLL (NOT measured here)")
        lines.append(header)
        lines.append("-" * len(header))
        rows = [{"model": "real train vs real test (floor)", "nll_nats": None, "bits_per_dim": None,
                 **entry["floor"]}] + entry["rows"]
        for row in rows:
            lines.append(f"{row['model']:<38}{_fmt(row['nll_nats'], 2):>10}{_fmt(row['bits_per_dim'], 3):>9}"
                         f"{_fmt(row['fid'], 2):>8}{_fmt(row['kid'], 1):>8}{_fmt(row['precision'], 2):>6}"
                         f"{_fmt(row['recall'], 2):>6}{_fmt(row['density'], 2):>6}{_fmt(row['coverage'], 2):>6}"
                         f"{_fmt(row['c2st'], 2):>6}{100 * row.get('copy_fraction', float('nan')):>6.1f}%"
                         f"   {refs.get(row['model'], '')}")
        for model_name, reason in entry["missing"].items():
            lines.append(f"(missing) {model_name}: {reason}")
        extra = [f"{k}: {v}" for k, v in refs.items() if k not in {r['model'] for r in rows}]
        if extra:
            lines.append("other references (NOT measured here): " + "; ".join(extra))
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=("quick", "full"), default=None)
    parser.add_argument("--datasets", nargs="*", choices=metrics.DATASETS, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    board = build_leaderboard(args.profile, datasets=args.datasets, seed=args.seed)
    print(format_table(board))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(board, indent=2) + "\n")
    print(f"written to {args.out}")
    return board


if __name__ == "__main__":
    main()
