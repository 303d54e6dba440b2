"""The course leaderboard: every genlab model on the same test split, likelihood and samples.

For each dataset (8x8 digits; MNIST-5k in the full profile) every model of :data:`MODELS` is
trained on the training split and scored on the test split:

* NLL in nats per image and bits per dimension, where the model has a likelihood, always
  evaluated in full precision. Discrete models (categorical mixtures, the VAE's categorical
  decoder) give a probability mass; the continuous ones (Gaussian mixture, KDE) are fitted to
  uniformly dequantised data and their NLL on dequantised test images is an upper bound on a
  discrete NLL (bin width 1 level; see :func:`genlab.metrics.nats_to_bits_per_dim`). The VAE's is
  the importance-weighted bound.
* FID, KID (:data:`genlab.metrics.KID_UNIT`), precision, recall, density, coverage and C2ST of as
  many samples as there are test images, in the feature space of genlab's digit classifier,
  beside the real-train vs real-test floor (:func:`genlab.metrics.real_floor`) with the same sizes.

**Adding a model** is one entry in :data:`MODELS`, in the module that defines the model's family
or here: a :class:`ModelEntry` naming the module it needs, a builder and the datasets it runs on.
A builder takes ``(data, cfg, seed, device)`` (a :class:`Dataset`, the chapter-14 profile settings,
the seed, the device) and returns ``(test NLL in nats per image or None, samples in data units)``::

    from genlab.results.leaderboard import MODELS, ModelEntry

    def build_dcgan(data, cfg, seed, device):
        model = ...                        # train with genlab.train.Trainer
        return None, data.from_unit_range(model.sample(len(data.images["test"]), random_state=seed))

    MODELS["GAN (DCGAN)"] = ModelEntry(module="genlab.gan", build=build_dcgan, datasets=("digits",))

Then ``python benchmarks/leaderboard.py --models "GAN (DCGAN)"`` trains and scores only that row and
merges it into ``benchmarks/results/leaderboard.json`` (:func:`update_leaderboard`): the other
rows stay, and if the run fails the stored file is left as it was. Results files are written with
:func:`genlab.results.save_results` (atomic, with provenance); every row also records when it
was measured (``row["measured"]``).
"""
from __future__ import annotations

import dataclasses
import importlib
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..validation import check_device, check_option, check_positive_float, check_seed
from . import RESULTS_DIR, load_results, provenance, save_results
from .ledger import DIGITS_TRAINING, _full_precision_nll
from .references import REFERENCES

__all__ = ["LEADERBOARD_PATH", "FORMAT", "SAMPLE_METRICS", "Dataset", "ModelEntry", "MODELS", "NOT_RUN",
           "FAST_MODELS", "build_leaderboard", "update_leaderboard", "merge_leaderboards", "load_leaderboard",
           "check_fresh", "merged_rows", "format_table", "main"]

LEADERBOARD_PATH = RESULTS_DIR / "leaderboard.json"
#: Version of the file layout (2: rows carry ``measured``; KID in :data:`genlab.metrics.KID_UNIT`).
FORMAT = 2
SAMPLE_METRICS = ("fid", "kid", "precision", "recall", "density", "coverage", "c2st")
DATASETS = ("digits", "mnist")


# ----------------------------------------------------------------------------- datasets
class Dataset:
    """A dataset as integer levels (what likelihoods are measured on) plus its display units."""

    def __init__(self, name: str) -> None:
        from ..data import load_digits, load_mnist

        self.name = check_option(name, "dataset", DATASETS)
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
        if not isinstance(levels, torch.Tensor) or levels.numel() % math.prod(self.shape):
            raise ValueError(f"levels must be a tensor of whole images of shape {tuple(self.shape)}, got "
                             f"{getattr(levels, 'shape', type(levels).__name__)}")
        levels = levels.reshape(-1, *self.shape).float().clamp(0, self.n_levels - 1)
        return levels * self.unit

    def from_unit_range(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (e.g. a GAN's or a diffusion model's output) -> the dataset's units."""
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images must be a tensor, got {type(images).__name__}")
        return self.from_levels(torch.round(images.detach().cpu().float().clamp(0, 1) * (self.n_levels - 1)))

    def dequantised(self, split: str, seed: int) -> torch.Tensor:
        """Levels plus uniform noise, times the bin width (what continuous densities are fitted to)."""
        check_option(split, "split", tuple(self.levels))
        generator = torch.Generator().manual_seed(check_seed(seed))
        levels = self.levels[split].reshape(len(self.levels[split]), -1).double()
        return (levels + torch.rand(levels.shape, generator=generator, dtype=torch.float64)) * self.scale

    def from_dequantised(self, values: torch.Tensor) -> torch.Tensor:
        """Dequantised values -> images in the dataset's units."""
        if not isinstance(values, torch.Tensor):
            raise TypeError(f"values must be a tensor, got {type(values).__name__}")
        return self.from_levels(torch.floor(values.cpu().double() / self.scale))

    def discrete_nll(self, continuous_nll: float) -> float:
        """Continuous NLL of dequantised data (bin width ``scale``) -> discrete NLL in nats."""
        if isinstance(continuous_nll, bool) or not isinstance(continuous_nll, (int, float, np.floating)):
            raise TypeError(f"continuous_nll must be a number, got {type(continuous_nll).__name__}")
        return continuous_nll - self.n_dims * math.log(self.scale)


# ----------------------------------------------------------------------------- models
#: A builder trains one model and returns (test NLL in nats per image or None, samples in data units).
Builder = Callable[[Dataset, Any, int, torch.device], tuple[float | None, torch.Tensor]]


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One leaderboard row: the module it needs, how to build it, the datasets it runs on."""

    module: str
    build: Builder
    datasets: tuple[str, ...] = ("digits",)
    #: chapter that teaches the family (for the course map), e.g. "09_vaes"
    chapter: str | None = None


def _draw(model: Any, n: int, seed: int) -> torch.Tensor:
    """``model.sample(n, random_state=seed)`` (the contract), else the older signatures."""
    try:
        out = model.sample(n, random_state=seed)
    except TypeError:
        out = model.sample(n)
    out = out[0] if isinstance(out, tuple) else out
    return torch.as_tensor(out)


def _categorical(n_components: int) -> Builder:
    def build(data: Dataset, cfg: Any, seed: int, device: torch.device) -> tuple[float | None, torch.Tensor]:
        from ..mixture import CategoricalMixture

        model = CategoricalMixture(n_components=n_components, n_categories=data.n_levels, alpha=1.0,
                                   random_state=seed, device=device)
        model.fit(data.levels["train"])
        nll = -float(model.score(data.levels["test"]))
        return nll, data.from_levels(_draw(model, len(data.levels["test"]), seed).cpu())
    return build


def _gaussian_mixture(data: Dataset, cfg: Any, seed: int, device: torch.device) -> tuple[float | None, torch.Tensor]:
    from ..mixture import GaussianMixture

    # reg 0.1 in level units (the reference setting); scaled with the data for MNIST
    model = GaussianMixture(n_components=20, covariance_type="diag", reg_covar=0.1 * data.scale ** 2,
                            random_state=seed, device=device)
    model.fit(data.dequantised("train", seed))
    nll = data.discrete_nll(-float(model.score(data.dequantised("test", seed + 1))))
    return nll, data.from_dequantised(_draw(model, len(data.levels["test"]), seed))


def _kde(data: Dataset, cfg: Any, seed: int, device: torch.device) -> tuple[float | None, torch.Tensor]:
    from ..kde import KernelDensity

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
    nll = data.discrete_nll(-float(model.score(data.dequantised("test", seed + 1))))
    return nll, data.from_dequantised(_draw(model, len(data.levels["test"]), seed))


def _fit_and_score_vae(model: torch.nn.Module, data: Dataset, cfg: Any, seed: int,
                       device: torch.device) -> tuple[float | None, torch.Tensor]:
    """:data:`DIGITS_TRAINING` with early stopping on the validation split, then the IW test NLL
    (full precision) and one sample per test image."""
    from ..train import Trainer

    trainer = Trainer(model, **DIGITS_TRAINING, device=device, progress=False, seed=seed)
    trainer.fit(data.levels["train"], epochs=cfg.vae_epochs, val_data=data.levels["val"], patience=20)
    nll = _full_precision_nll(model, data.levels["test"], cfg.iw_samples)
    return nll, data.from_levels(_draw(model, len(data.levels["test"]), seed).cpu())


def _vae(data: Dataset, cfg: Any, seed: int, device: torch.device) -> tuple[float | None, torch.Tensor]:
    from ..device import seed_everything
    from ..vae import VAE

    seed_everything(seed)
    if data.name == "digits":
        model = VAE(data.shape, latent_dim=16, likelihood="categorical", n_levels=17)
    else:
        model = VAE(data.shape, latent_dim=32, likelihood="discretized_logistic", n_levels=256,
                    encoder="conv", decoder="conv", hidden=256)
    return _fit_and_score_vae(model, data, cfg, seed, device)


def _causal_conv_vae(data: Dataset, cfg: Any, seed: int, device: torch.device) -> tuple[float | None, torch.Tensor]:
    """Chapter 09's best recipe (:data:`genlab.vae.DIGITS_RECIPES`, ``causal_conv_vae``)."""
    from ..device import seed_everything
    from ..vae import DIGITS_RECIPES, VAE

    seed_everything(seed)
    return _fit_and_score_vae(VAE(data.shape, **DIGITS_RECIPES["causal_conv_vae"]), data, cfg, seed, device)


def _exact_likelihood_recipe(name: str) -> Builder:
    """Chapter 10's digits recipes (:data:`genlab.autoregressive.DIGITS_RECIPES`,
    :data:`genlab.flow.DIGITS_FLOW_RECIPES`): early stopping on the validation split, then the test NLL in
    full precision (exact for the PixelCNN; for a flow, the dequantisation bound with 10 noise draws)
    and one sample per test image."""

    def build(data: Dataset, cfg: Any, seed: int, device: torch.device) -> tuple[float | None, torch.Tensor]:
        from ..autoregressive import DIGITS_RECIPES, PixelCNN
        from ..device import seed_everything
        from ..flow import DIGITS_FLOW_RECIPES, ImageFlow
        from ..layers import eval_mode
        from ..train import Trainer

        seed_everything(seed)
        recipe = {**DIGITS_RECIPES, **DIGITS_FLOW_RECIPES}[name]
        train = dict(recipe["train"])
        epochs, patience = train.pop("max_epochs"), train.pop("patience")
        model = PixelCNN(**recipe["model"]) if name in DIGITS_RECIPES else ImageFlow(**recipe["model"])
        trainer = Trainer(model, **train, device=device, progress=False, seed=seed)
        trainer.fit(data.levels["train"], epochs=epochs, val_data=data.levels["val"], patience=patience)
        test = data.levels["test"].to(device)
        with torch.no_grad(), eval_mode(model), torch.autocast(device.type, enabled=False):
            log_p = model.log_prob(test) if isinstance(model, PixelCNN) else \
                model.log_prob(test, n_samples=10, random_state=seed)
            samples = model.sample(len(test), random_state=seed)
        return -log_p.double().mean().item(), data.from_levels(samples.cpu())

    return build


def _autoencoder(data: Dataset, cfg: Any, seed: int, device: torch.device) -> tuple[float | None, torch.Tensor]:
    from ..autoencoder import Autoencoder, denormalize_images, normalize_images
    from ..device import seed_everything
    from ..train import Trainer

    seed_everything(seed)
    model = Autoencoder(image_size=data.shape[-1], hidden=(128, 64), latent_dim=12)
    unit_range = {split: data.levels[split] / (data.n_levels - 1) for split in ("train", "val")}
    trainer = Trainer(model, lr=1e-3, batch_size=64, device=device, progress=False, seed=seed)
    trainer.fit(normalize_images(unit_range["train"]), epochs=cfg.ae_epochs,
                val_data=normalize_images(unit_range["val"]), patience=10)
    n = len(data.levels["test"])
    try:
        decoded = model.sample(n, random_state=seed)
    except TypeError:
        decoded = model.sample(n, generator=torch.Generator().manual_seed(seed))
    return None, data.from_unit_range(denormalize_images(decoded.detach().cpu()))


#: The leaderboard's rows, in table order. Add a row with one entry (see the module docstring).
MODELS: dict[str, ModelEntry] = {
    # on MNIST-5k the categoricals have 256 levels per pixel (CategoricalMixture keeps its
    # 3,500 x 784 x 256 indicator matrix sparse there)
    "independent pixels": ModelEntry("genlab.mixture", _categorical(1), ("digits", "mnist"), "03_gaussian_mixtures"),
    "categorical mixture K=20": ModelEntry("genlab.mixture", _categorical(20), ("digits",), "03_gaussian_mixtures"),
    "Gaussian mixture K=20 (dequantised)": ModelEntry("genlab.mixture", _gaussian_mixture, ("digits", "mnist"),
                                                      "03_gaussian_mixtures"),
    # bandwidth 2 levels on the digits (the reference), chosen on the validation split for MNIST
    "KDE (dequantised)": ModelEntry("genlab.kde", _kde, ("digits", "mnist"), "05_nonparametric"),
    "VAE": ModelEntry("genlab.vae", _vae, ("digits", "mnist"), "09_vaes"),
    "VAE + causal-conv decoder": ModelEntry("genlab.vae", _causal_conv_vae, ("digits",), "09_vaes"),
    "autoencoder": ModelEntry("genlab.autoencoder", _autoencoder, ("digits", "mnist"), "07_autoencoders"),
    "diffusion (DDPM, U-Net)": ModelEntry("genlab.diffusion", lambda *a: importlib.import_module(
        "genlab.diffusion").leaderboard_build(*a), ("digits", "mnist"), "11_diffusion"),
    "GAN (DCGAN, EMA generator)": ModelEntry("genlab.gan", lambda *a: importlib.import_module(
        "genlab.gan").leaderboard_build(*a), ("digits", "mnist"), "08_gans"),
    "PixelCNN (exact)": ModelEntry("genlab.autoregressive", _exact_likelihood_recipe("pixelcnn"), ("digits",),
                                   "10_normalizing_flows"),
    "flow, variational dequantisation (bound)": ModelEntry("genlab.flow", _exact_likelihood_recipe("flow_variational"),
                                                           ("digits",), "10_normalizing_flows"),
}

#: Rows cheap enough to recompute inside a chapter (seconds on a CPU).
FAST_MODELS = ("independent pixels", "categorical mixture K=20", "Gaussian mixture K=20 (dequantised)",
               "KDE (dequantised)")

#: Why a model has no row on a dataset (measured; printed under the table).
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
    """Train and score the chosen models; return the leaderboard as a JSON-ready dict.

    Args:
        profile: ``"quick"`` or ``"full"`` (default: ``GENLAB_PROFILE``); sizes from
            ``genlab.profiles.settings("14_evaluation")``.
        datasets: override the profile's list (``"digits"``, ``"mnist"``).
        models: a subset of :data:`MODELS` (default: all).
        seed: seeds training, sampling and the metrics' subsets.
        device: where to train and score (default: genlab's device).
        verbose: print one line per row.
        samples_out: if given, filled with ``{dataset: {model: samples}}`` (images in data units).

    Returns:
        ``{"kind", "format", "meta", "datasets": {name: {"classifier_test_accuracy", "floor", "rows",
        "missing"}}}``; each row holds ``model``, ``nll_nats``, ``bits_per_dim`` (None without a
        likelihood), the sample metrics, ``seconds`` and ``measured``.
    """
    from .. import metrics
    from ..profiles import settings

    cfg = settings("14_evaluation", profile)
    datasets = [check_option(d, "datasets", DATASETS)
                for d in (cfg.leaderboard_datasets if datasets is None else datasets)]
    chosen = list(MODELS if models is None else models)
    unknown = [name for name in chosen if name not in MODELS]
    if unknown:
        raise ValueError(f"unknown models {unknown}; choose from {list(MODELS)}")
    seed = check_seed(seed)
    device = check_device(device)
    stamp = provenance(device=device, amp=False)
    measured = {"date_utc": stamp["date_utc"], "commit": stamp["commit"], "profile": cfg.profile}
    result: dict[str, Any] = {"kind": "leaderboard", "format": FORMAT,
                              "meta": {"profile": cfg.profile, "seed": seed, "device": str(device),
                                       "classifier_version": metrics.CLASSIFIER_VERSION, "kid_unit": metrics.KID_UNIT},
                              "datasets": {}}
    for name in datasets:
        data = Dataset(name)
        extractor = metrics.get_feature_extractor(name, device=device)
        real = data.images["test"]
        started = time.perf_counter()
        floor = metrics.real_floor(data.images["train"], real, extractor, seed=seed,
                                   kid_subsets=cfg.kid_subsets, device=device)
        entry: dict[str, Any] = {"classifier_test_accuracy": extractor.test_accuracy, "n_test": len(real),
                                 "n_dims": data.n_dims, "floor": {**floor, "measured": measured},
                                 "floor_seconds": time.perf_counter() - started, "rows": [], "missing": {}}
        for model_name in chosen:
            spec = MODELS[model_name]
            if name not in spec.datasets:
                entry["missing"][model_name] = NOT_RUN.get((model_name, name), f"not run on {name}")
                continue
            reason = _available(spec.module)
            if reason is not None:
                entry["missing"][model_name] = reason
                continue
            started = time.perf_counter()
            nll, samples = spec.build(data, cfg, seed, device)
            scores = metrics.evaluate_samples(real, samples, extractor, seed=seed, kid_subsets=cfg.kid_subsets,
                                              device=device)
            memo = metrics.memorization(samples, data.images["train"], real)
            row = {"model": model_name, "nll_nats": nll,
                   "bits_per_dim": None if nll is None else metrics.nats_to_bits_per_dim(nll, data.n_dims),
                   **scores, "copy_fraction": memo.copy_fraction,
                   "median_ratio": float(np.median(memo.ratios)),
                   "seconds": time.perf_counter() - started, "measured": measured}
            entry["rows"].append(row)
            if samples_out is not None:
                samples_out.setdefault(name, {})[model_name] = samples
            if verbose:
                print(f"[{name}] {model_name}: done in {row['seconds']:.1f} s", flush=True)
        result["datasets"][name] = entry
    return result


def merge_leaderboards(stored: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """``stored`` with the rows (and floors) of ``new`` replacing or joining its own, in :data:`MODELS` order."""
    if stored is not None and not isinstance(stored, dict):
        raise TypeError(f"stored must be a leaderboard dict or None, got {type(stored).__name__}")
    if not isinstance(new, dict):
        raise TypeError(f"new must be a dict (a leaderboard), got {type(new).__name__}")
    if stored is None:
        return new
    merged = {key: value for key, value in stored.items() if key != "provenance"}
    merged["format"] = FORMAT
    merged["datasets"] = {name: dict(entry) for name, entry in stored.get("datasets", {}).items()}
    order = {name: i for i, name in enumerate(MODELS)}
    for name, fresh in new["datasets"].items():
        old = merged["datasets"].get(name)
        if old is None:
            merged["datasets"][name] = fresh
            continue
        rows = {row["model"]: row for row in old["rows"]}
        rows.update({row["model"]: row for row in fresh["rows"]})
        old["rows"] = sorted(rows.values(), key=lambda row: order.get(row["model"], len(order)))
        old["missing"] = {k: v for k, v in {**old.get("missing", {}), **fresh["missing"]}.items() if k not in rows}
        for key in ("classifier_test_accuracy", "floor", "floor_seconds", "n_test", "n_dims"):
            old[key] = fresh[key]
    return merged


def update_leaderboard(models: list[str] | None = None, *, datasets: list[str] | None = None,
                       profile: str | None = None, seed: int = 0, path: str | Path = LEADERBOARD_PATH,
                       device: torch.device | str | None = None, args: Any = None) -> dict[str, Any]:
    """Re-run ``models`` (default: all), merge them into the stored file and save it atomically.

    The stored file is read first and written only after every chosen row was computed, so a
    failing run leaves it as it was.
    """
    path = Path(path)
    stored = load_leaderboard(path) if path.is_file() else None
    new = build_leaderboard(profile, datasets=datasets, models=models, seed=seed, device=device)
    board = merge_leaderboards(stored, new)
    save_results(path, board, args=args, device=check_device(device), amp=False)
    return board


def load_leaderboard(path: str | Path = LEADERBOARD_PATH) -> dict[str, Any]:
    """Read a leaderboard written by :func:`update_leaderboard`.

    Raises:
        FileNotFoundError: no file there (run ``python benchmarks/leaderboard.py`` first).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no leaderboard at {path}; run `python benchmarks/leaderboard.py` to write it")
    board = load_results(path)
    if "datasets" not in board:
        raise ValueError(f"{path} is not a leaderboard (no 'datasets' entry)")
    return board


def check_fresh(stored: dict[str, Any], recomputed: dict[str, Any], *, nll_tol: float = 1e-3,
                metric_rtol: float = 0.1) -> None:
    """Raise ``ValueError`` unless ``stored`` agrees with a ``recomputed`` (partial) leaderboard.

    Compared: profile, seed, classifier version, the classifier's test accuracy (within 0.01), the
    floor's FID and every recomputed row's NLL (``nll_tol`` nats: the fast models are deterministic)
    and FID (``metric_rtol`` relative: features can move slightly when the classifier was retrained
    on another machine). A mismatch means the stored file is stale for this checkout.
    """
    for value, name in ((stored, "stored"), (recomputed, "recomputed")):
        if not isinstance(value, dict):
            raise TypeError(f"{name} must be a leaderboard dict, got {type(value).__name__}")
    nll_tol, metric_rtol = check_positive_float(nll_tol, "nll_tol"), check_positive_float(metric_rtol, "metric_rtol")
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
        raise ValueError("the stored leaderboard is stale for this checkout; rerun `python benchmarks/leaderboard.py` "
                         "(same GENLAB_PROFILE). Differences: " + "; ".join(problems))


def merged_rows(stored: dict[str, Any], recomputed: dict[str, Any], dataset: str) -> list[dict[str, Any]]:
    """Rows of ``dataset`` in the stored order, recomputed ones replacing their stored versions."""
    if not isinstance(stored, dict):
        raise TypeError(f"stored must be a dict (a leaderboard), got {type(stored).__name__}")
    if not isinstance(recomputed, dict):
        raise TypeError(f"recomputed must be a dict (a leaderboard), got {type(recomputed).__name__}")
    check_option(dataset, "dataset", DATASETS)
    fresh = {row["model"]: row for row in recomputed["datasets"][dataset]["rows"]}
    return [fresh.get(row["model"], row) for row in stored["datasets"][dataset]["rows"]]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:.0f}"


def _or_nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def format_table(board: dict[str, Any]) -> str:
    """The leaderboard as text: one block per dataset, floor first, references on the right."""
    if not isinstance(board, dict):
        raise TypeError(f"board must be a dict (a leaderboard), got {type(board).__name__}")
    lines = []
    for name, entry in board["datasets"].items():
        refs = {key: str(ref) for key, ref in REFERENCES.get(name, {}).items()}
        lines.append(f"== {name} (test split, n = {entry['n_test']}; feature classifier test accuracy "
                     f"{entry['classifier_test_accuracy']:.3f}; profile {board['meta']['profile']}; "
                     f"KID in {board['meta'].get('kid_unit', 'raw MMD²')})")
        header = (f"{'model':<38}{'NLL nats':>10}{'bits/dim':>9}{'FID':>8}{'KID':>8}{'prec':>6}{'rec':>6}"
                  f"{'dens':>6}{'cov':>6}{'C2ST':>6}{'copy%':>7}   reference NLL (NOT measured here)")
        lines.append(header)
        lines.append("-" * len(header))
        rows = [{"model": "real train vs real test (floor)", "nll_nats": None, "bits_per_dim": None,
                 **entry["floor"]}] + entry["rows"]
        for row in rows:
            lines.append(f"{row['model']:<38}{_fmt(row.get('nll_nats'), 2):>10}{_fmt(row.get('bits_per_dim'), 3):>9}"
                         f"{_fmt(row.get('fid'), 2):>8}{_fmt(row.get('kid'), 1):>8}{_fmt(row.get('precision'), 2):>6}"
                         f"{_fmt(row.get('recall'), 2):>6}{_fmt(row.get('density'), 2):>6}"
                         f"{_fmt(row.get('coverage'), 2):>6}{_fmt(row.get('c2st'), 2):>6}"
                         f"{100 * _or_nan(row.get('copy_fraction')):>6.1f}%"
                         f"   {refs.get(row['model'], '')}")
        for model_name, reason in entry["missing"].items():
            lines.append(f"(missing) {model_name}: {reason}")
        extra = [f"{k}: {v}" for k, v in refs.items() if k not in {r['model'] for r in rows}]
        if extra:
            lines.append("other references (NOT measured here): " + "; ".join(extra))
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line: re-run the chosen models (default: all), merge into the stored file, print the table."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=("quick", "full"), default=None)
    parser.add_argument("--datasets", nargs="*", choices=DATASETS, default=None)
    parser.add_argument("--models", nargs="*", default=None, help=f"rows to re-run (default all): {list(MODELS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=LEADERBOARD_PATH)
    args = parser.parse_args(argv)
    board = update_leaderboard(args.models, datasets=args.datasets, profile=args.profile, seed=args.seed,
                               path=args.out, args=args)
    print(format_table(board))
    print(f"written to {args.out}")
    return board
