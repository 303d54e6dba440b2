"""Evaluating generative models: sample-quality metrics, likelihood units, and sanity floors.

Sample-based metrics compare a set of real images with a set of generated ones in a
*feature space*. Every metric here accepts either images ``(n, 1, H, W)`` / ``(n, H, W)``,
which are mapped to features by an ``extractor``, or precomputed features ``(n, d)``.

Feature extractors (pluggable):

* ``extractor=None`` (default) or ``"digits"`` / ``"mnist"``: a small CNN classifier that genlab
  trains on the real *training* split of the same dataset (:func:`genlab.data.load_digits`,
  :func:`genlab.data.load_mnist`) with the shared :class:`genlab.train.Trainer`, caches to disk
  and reuses; its penultimate layer gives the features (64-d for digits, 128-d for MNIST).
  See :func:`get_feature_extractor`. Its test accuracy (``extractor.test_accuracy``) is the
  quality of the measuring instrument: report it beside any number it produces.
* any ``nn.Module`` (or callable) mapping a batch of images to ``(batch, d)`` features; a module
  with a ``features`` method is called through that method.
* an Inception-v3 network, *if its weights are on disk*: :func:`inception_extractor` builds
  torchvision's architecture with no weights, loads a local state dict (``weights_only=True``)
  and never downloads. Numbers from it are comparable with the literature only if the weights
  are the ones the literature used (the TF-ported ``pt_inception-2015-12-05`` weights of
  ``pytorch-fid``, converted to a torchvision state dict); torchvision's ImageNet weights give
  different, internally consistent values.

Metrics: :func:`frechet_distance`, :func:`fid` (Heusel et al. 2017), :func:`kid`
(Binkowski et al. 2018), :func:`inception_score` with the classifier (the "classifier score",
Salimans et al. 2016), :func:`precision_recall` (Kynkäänniemi et al. 2019),
:func:`density_coverage` (Naeem et al. 2020), :func:`c2st` (Lopez-Paz and Oquab 2017),
:func:`memorization` (nearest-neighbour copy detection, after Meehan et al. 2020),
and likelihood units :func:`nats_to_bits_per_dim` / :func:`bits_per_dim_to_nats`.
:func:`evaluate_samples` computes them all from one feature pass, and :func:`real_floor`
gives the real-train vs real-test values every table reports beside model numbers.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .base import resolve_device

# Bump when the classifier's architecture or training recipe changes: old cache files are then ignored.
CLASSIFIER_VERSION = 2
DATASETS = ("digits", "mnist")
# Default training lengths (early stopping on the validation split usually ends sooner).
DEFAULT_EPOCHS = {"digits": 40, "mnist": 15}
# Images of these sizes get the matching default extractor.
_SIZE_TO_DATASET = {(8, 8): "digits", (28, 28): "mnist"}
# Scale that maps each dataset's pixel values to [0, 1] (digits hold integer levels 0..16).
_INPUT_SCALE = {"digits": 1.0 / 16.0, "mnist": 1.0}

ExtractorLike = Any  # None | "digits" | "mnist" | nn.Module | Callable[[Tensor], Tensor]


# ============================================================================ the classifier
class DigitClassifier(nn.Module):
    """A small CNN for 8x8 digits or 28x28 MNIST; its penultimate layer is the feature space.

    Inputs are images in the dataset's own units (digits: levels 0..16, MNIST: [0, 1]); the
    network rescales them to [0, 1] itself, so callers never have to remember to.

    Args:
        dataset: ``"digits"`` (8x8, 64-d features) or ``"mnist"`` (28x28, 128-d features).
    """

    def __init__(self, dataset: str = "digits") -> None:
        super().__init__()
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")
        self.dataset = dataset
        self.image_size = 8 if dataset == "digits" else 28
        self.register_buffer("input_scale", torch.tensor(_INPUT_SCALE[dataset]))
        if dataset == "digits":
            # 8x8 -> 8x8 -> 4x4: two convs, one pooling; 32*4*4 = 512 -> 64 features.
            self.body = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU())
            self.feature_dim = 64
        else:
            # 28 -> 14 -> 7: two conv+pool stages; 32*7*7 = 1568 -> 128 features.
            self.body = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU())
            self.feature_dim = 128
        self.head = nn.Linear(self.feature_dim, 10)
        self.test_accuracy: float | None = None
        self.val_accuracy: float | None = None

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = x.unsqueeze(1)
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, self.image_size, self.image_size):
            raise ValueError(f"the {self.dataset} classifier takes images (n, 1, {self.image_size}, "
                             f"{self.image_size}), got shape {tuple(x.shape)}")
        return x.float() * self.input_scale

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer activations ``(n, feature_dim)``."""
        return self.body(self._check(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(n, 10)``."""
        return self.head(self.features(x))

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy on a ``(images, labels)`` batch: what :class:`genlab.train.Trainer` minimises.

        In training mode images are shifted at random by up to one pixel (two for 28x28): the
        last 447 digits come from other writers than the first 1000, and the shifts lift test
        accuracy from about 91% to about 95%.
        """
        images, labels = batch
        if self.training:
            images = random_shift(images, 1 if self.dataset == "digits" else 2)
        return F.cross_entropy(self(images), labels)

    @torch.no_grad()
    def accuracy(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> float:
        """Fraction of ``images`` classified as ``labels``."""
        self.eval()
        device = self.input_scale.device
        correct = 0
        for start in range(0, len(images), batch_size):
            logits = self(images[start:start + batch_size].to(device))
            correct += int((logits.argmax(1).cpu() == labels[start:start + batch_size]).sum())
        return correct / max(len(images), 1)


def random_shift(images: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Translate each image ``(n, 1, H, W)`` by a random integer offset in ``[-max_shift, max_shift]``²,
    filling with zeros (uses torch's global generator, so :func:`genlab.seed_everything` repeats it)."""
    n, _, height, width = images.shape
    padded = F.pad(images, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), device=images.device)
    out = torch.empty_like(images)
    for dy in range(2 * max_shift + 1):
        for dx in range(2 * max_shift + 1):
            rows = (offsets[:, 0] == dy) & (offsets[:, 1] == dx)
            out[rows] = padded[rows, :, dy:dy + height, dx:dx + width]
    return out


def cache_dir() -> Path:
    """Where trained extractors are cached: ``$GENLAB_CACHE`` or ``~/.cache/genlab``."""
    root = os.environ.get("GENLAB_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "genlab"


def classifier_cache_path(dataset: str, *, seed: int = 0, epochs: int | None = None,
                          directory: str | os.PathLike | None = None) -> Path:
    """The cache file of the feature classifier; its name holds dataset, version, seed and epochs."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")
    epochs = DEFAULT_EPOCHS[dataset] if epochs is None else epochs
    folder = Path(directory).expanduser() if directory is not None else cache_dir()
    return folder / f"classifier_{dataset}_v{CLASSIFIER_VERSION}_seed{seed}_ep{epochs}.pt"


def _load_split(dataset: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    from .data import load_digits, load_mnist

    return load_digits(split) if dataset == "digits" else load_mnist(split)


def train_classifier(dataset: str = "digits", *, epochs: int | None = None, seed: int = 0,
                     device: torch.device | str | None = None, progress: bool = False,
                     patience: int = 8) -> DigitClassifier:
    """Train the feature classifier on the real training split (early stopping on ``val``).

    Sets ``test_accuracy`` and ``val_accuracy`` on the returned (eval-mode) model.
    """
    from .device import seed_everything
    from .train import Trainer

    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")
    epochs = DEFAULT_EPOCHS[dataset] if epochs is None else epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    device = resolve_device(device)
    seed_everything(seed)
    model = DigitClassifier(dataset)
    train_x, train_y = _load_split(dataset, "train")
    val_x, val_y = _load_split(dataset, "val")
    trainer = Trainer(model, lr=1e-3, batch_size=64, device=device, progress=progress, seed=seed)
    trainer.fit((train_x, train_y), epochs=epochs, val_data=(val_x, val_y), patience=patience)
    model.eval()
    test_x, test_y = _load_split(dataset, "test")
    model.val_accuracy = model.accuracy(val_x, val_y)
    model.test_accuracy = model.accuracy(test_x, test_y)
    return model


_EXTRACTORS: dict[tuple[str, str, str], DigitClassifier] = {}


def get_feature_extractor(dataset: str = "digits", device: torch.device | str | None = None, *,
                          seed: int = 0, epochs: int | None = None,
                          directory: str | os.PathLike | None = None, retrain: bool = False,
                          progress: bool = False) -> DigitClassifier:
    """The default feature extractor for ``dataset``: a trained :class:`DigitClassifier`, cached.

    The first call trains it on the real training split (seconds for digits, about a minute on
    a CPU for MNIST-5k) and writes it atomically to :func:`classifier_cache_path` (under
    ``$GENLAB_CACHE`` or ``~/.cache/genlab``); later calls load that file with
    ``weights_only=True``. The returned model is in eval mode, with ``test_accuracy`` set.

    Args:
        dataset: ``"digits"`` or ``"mnist"``.
        device: where features are computed (default: genlab's device).
        seed, epochs: training recipe; both are part of the cache key.
        directory: cache folder (default :func:`cache_dir`).
        retrain: ignore any cached file and train again.
        progress: show the trainer's progress bar when training.
    """
    from .train import load_checkpoint, save_checkpoint

    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")
    device = resolve_device(device)
    path = classifier_cache_path(dataset, seed=seed, epochs=epochs, directory=directory)
    key = (str(path), str(device), dataset)
    if not retrain and key in _EXTRACTORS and path.is_file():
        return _EXTRACTORS[key]
    model: DigitClassifier | None = None
    if path.is_file() and not retrain:
        state = load_checkpoint(path, map_location=device)
        if state.get("version") == CLASSIFIER_VERSION and state.get("dataset") == dataset:
            model = DigitClassifier(dataset)
            model.load_state_dict(state["state_dict"])
            model.test_accuracy = float(state["test_accuracy"])
            model.val_accuracy = float(state["val_accuracy"])
    if model is None:
        model = train_classifier(dataset, epochs=epochs, seed=seed, device=device, progress=progress)
        save_checkpoint({"version": CLASSIFIER_VERSION, "dataset": dataset, "seed": seed,
                         "epochs": DEFAULT_EPOCHS[dataset] if epochs is None else epochs,
                         "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                         "test_accuracy": model.test_accuracy, "val_accuracy": model.val_accuracy}, path)
    model = model.to(device).eval()
    for param in model.parameters():
        param.requires_grad_(False)
    _EXTRACTORS[key] = model
    return model


class InceptionFeatures(nn.Module):
    """Inception-v3 pool features (2048-d) of single-channel images, from local weights only.

    Images are divided by ``data_max`` to reach [0, 1], repeated to three channels, resized to
    299x299 (bilinear) and normalised with ImageNet statistics.
    """

    def __init__(self, network: nn.Module, data_max: float = 1.0) -> None:
        super().__init__()
        self.network = network
        self.data_max = float(data_max)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = x.unsqueeze(1)
        x = (x.float() / self.data_max).clamp(0, 1).expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.network((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def inception_extractor(weights_path: str | os.PathLike, *, data_max: float = 1.0,
                        device: torch.device | str | None = None) -> InceptionFeatures:
    """An Inception-v3 feature extractor from a state dict already on disk (never downloads).

    How to get one: on a machine with internet, ``torchvision.models.inception_v3(weights="DEFAULT")``
    and ``torch.save(model.state_dict(), "inception_v3.pt")``; copy the file here and pass its path.
    Pass ``data_max=16`` for the 8x8 digits (levels 0..16). Expect these features to be slow on a
    CPU (every image is upsampled to 299x299) and poorly suited to 8x8 images.

    Raises:
        FileNotFoundError: if ``weights_path`` does not exist.
    """
    import torchvision

    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"no Inception-v3 weights at {path}; genlab never downloads them "
                                "(see the docstring of inception_extractor for how to make this file)")
    if not (isinstance(data_max, (int, float)) and data_max > 0):
        raise ValueError(f"data_max must be a positive number, got {data_max!r}")
    network = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    network.fc = nn.Identity()  # the 2048-d pool features, as in FID
    network.aux_logits, network.AuxLogits = False, None
    return InceptionFeatures(network, data_max).to(resolve_device(device)).eval()


# ============================================================================ features
def _as_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        tensor = x.detach()
    else:
        array = np.asarray(x)
        if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
        tensor = torch.as_tensor(array)
    if tensor.is_complex():
        raise ValueError(f"{name} must be real, got a complex dtype")
    if tensor.ndim not in (2, 3, 4):
        raise ValueError(f"{name} must be features (n, d) or images (n, H, W) / (n, 1, H, W), "
                         f"got shape {tuple(tensor.shape)}")
    if tensor.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not torch.isfinite(tensor.float()).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return tensor


def default_classifier(dataset: str | None, image_shape: tuple[int, ...],
                       device: torch.device) -> DigitClassifier:
    """The cached classifier for ``dataset``, or for the dataset whose images have ``image_shape``."""
    if dataset is None:
        size = tuple(image_shape[-2:])
        if size not in _SIZE_TO_DATASET:
            raise ValueError(f"no default feature extractor for {size[0]}x{size[1]} images; "
                             "pass extractor= (an nn.Module or a callable returning (n, d) features)")
        dataset = _SIZE_TO_DATASET[size]
    return get_feature_extractor(dataset, device=device)


def resolve_extractor(extractor: ExtractorLike, image_shape: tuple[int, ...],
                      device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """Turn ``extractor`` (None, a dataset name, a module or a callable) into a batch function."""
    if extractor is None or isinstance(extractor, str):
        extractor = default_classifier(extractor, image_shape, device)
    if isinstance(extractor, nn.Module):
        extractor.eval()
        return extractor.features if callable(getattr(extractor, "features", None)) else extractor
    if callable(extractor):
        return extractor
    raise ValueError(f"extractor must be None, one of {DATASETS}, an nn.Module or a callable, "
                     f"got {type(extractor).__name__}")


def _module_device(function: Callable, default: torch.device) -> torch.device:
    owner = getattr(function, "__self__", function)
    if isinstance(owner, nn.Module):
        for tensor in list(owner.parameters()) + list(owner.buffers()):
            return tensor.device
    return default


@torch.no_grad()
def extract_features(x: Any, extractor: ExtractorLike = None, *, batch_size: int = 256,
                     device: torch.device | str | None = None, name: str = "x") -> torch.Tensor:
    """Features ``(n, d)`` (float64, on ``device``) of images, or ``x`` itself if it is already 2-D.

    Images are ``(n, H, W)`` or ``(n, 1, H, W)`` in the dataset's units; they go through the
    extractor ``batch_size`` at a time.

    Raises:
        ValueError: bad shape, NaN/inf in the input or in the features, bad ``batch_size``.
    """
    _check_int(batch_size, "batch_size", 1)
    device = resolve_device(device)
    tensor = _as_tensor(x, name)
    if tensor.ndim == 2:
        return tensor.to(device=device, dtype=torch.float64)
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(1)
    function = resolve_extractor(extractor, tuple(tensor.shape), device)
    run_on = _module_device(function, device)
    chunks = []
    for start in range(0, len(tensor), batch_size):
        out = function(tensor[start:start + batch_size].to(run_on, dtype=torch.float32))
        chunks.append(out.reshape(out.shape[0], -1).to(device=device, dtype=torch.float64))
    features = torch.cat(chunks)
    if not torch.isfinite(features).all():
        raise ValueError(f"the features of {name} contain NaN or infinite values (check the extractor)")
    return features


def _pair(real: Any, fake: Any, extractor: ExtractorLike, batch_size: int,
          device: torch.device | str | None) -> tuple[torch.Tensor, torch.Tensor]:
    device = resolve_device(device)
    real_f = extract_features(real, extractor, batch_size=batch_size, device=device, name="real")
    fake_f = extract_features(fake, extractor, batch_size=batch_size, device=device, name="fake")
    if real_f.shape[1] != fake_f.shape[1]:
        raise ValueError(f"real features have {real_f.shape[1]} dimensions but fake features have "
                         f"{fake_f.shape[1]}; both sets must live in the same feature space")
    return real_f, fake_f


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _subsample(x: torch.Tensor, n: int | None, generator: torch.Generator) -> torch.Tensor:
    if n is None or n >= len(x):
        return x
    return x[torch.randperm(len(x), generator=generator)[:n].to(x.device)]


# ============================================================================ FID
def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Squared Fréchet (2-Wasserstein) distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^{1/2})``, computed in
    float64 as ``tr((S1^{1/2} S2 S1^{1/2})^{1/2})`` (a symmetric PSD matrix, so an eigen-
    decomposition replaces the general, less stable matrix square root; the two traces agree).

    Raises:
        ValueError: shapes that do not match, non-square covariances, NaN/inf.
    """
    tensors = []
    for value, name in ((mu1, "mu1"), (sigma1, "sigma1"), (mu2, "mu2"), (sigma2, "sigma2")):
        tensor = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value)
        tensor = tensor.detach().to(torch.float64)
        if not torch.isfinite(tensor).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        tensors.append(tensor)
    mu1_t, s1, mu2_t, s2 = tensors
    s2 = s2.to(s1.device)
    mu1_t, mu2_t = mu1_t.to(s1.device), mu2_t.to(s1.device)
    if mu1_t.ndim != 1 or mu2_t.ndim != 1:
        raise ValueError(f"mu1 and mu2 must be 1-D, got shapes {tuple(mu1_t.shape)} and {tuple(mu2_t.shape)}")
    d = mu1_t.shape[0]
    if mu2_t.shape[0] != d:
        raise ValueError(f"mu1 has {d} dimensions but mu2 has {mu2_t.shape[0]}")
    for s, name in ((s1, "sigma1"), (s2, "sigma2")):
        if tuple(s.shape) != (d, d):
            raise ValueError(f"{name} must be a ({d}, {d}) covariance matching the means, got {tuple(s.shape)}")
    root1 = _sqrt_psd(s1)
    cross = torch.linalg.eigvalsh(root1 @ s2 @ root1).clamp_min(0).sqrt().sum()
    value = (mu1_t - mu2_t).pow(2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * cross
    return float(value.clamp_min(0))


def feature_statistics(features: torch.Tensor, name: str = "features") -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) covariance of ``(n, d)`` features; needs ``n >= d + 1``.

    Raises:
        ValueError: with fewer than ``d + 1`` rows the covariance is singular (rank < d) and the
            Fréchet distance is badly biased, so it is refused.
    """
    n, d = features.shape
    if n < d + 1:
        raise ValueError(f"{name}: a full-rank covariance of {d}-dimensional features needs at least "
                         f"d + 1 = {d + 1} samples, got {n}; pass more samples (several times d is better)")
    mean = features.mean(0)
    centred = features - mean
    return mean, centred.T @ centred / (n - 1)


def fid(real: Any, fake: Any, extractor: ExtractorLike = None, *, batch_size: int = 256,
        device: torch.device | str | None = None) -> float:
    """Fréchet distance between Gaussians fitted to real and fake features (Heusel et al. 2017).

    ``real`` and ``fake`` are images (mapped through ``extractor``) or ``(n, d)`` features.
    FID is biased upwards for small ``n``: compare values only at equal sample sizes and with
    the same extractor, and report the real-vs-real floor (:func:`real_floor`) beside them.
    """
    real_f, fake_f = _pair(real, fake, extractor, batch_size, device)
    mu1, s1 = feature_statistics(real_f, "real")
    mu2, s2 = feature_statistics(fake_f, "fake")
    return frechet_distance(mu1, s1, mu2, s2)


# ============================================================================ KID
class KID(NamedTuple):
    """Kernel inception distance: mean and standard deviation over subsets."""

    mean: float
    std: float


def polynomial_mmd2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD² of two equal-size sets with the kernel ``k(a, b) = (a·b / d + 1)^3``.

    Diagonal terms ``k(x_i, x_i)`` are left out, which makes it unbiased (it can be negative).
    """
    m, d = x.shape
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    off = m * (m - 1)
    return (kxx.sum() - kxx.diagonal().sum()) / off + (kyy.sum() - kyy.diagonal().sum()) / off - 2 * kxy.mean()


def kid(real: Any, fake: Any, extractor: ExtractorLike = None, *, n_subsets: int = 100,
        subset_size: int | None = None, seed: int = 0, batch_size: int = 256,
        device: torch.device | str | None = None) -> KID:
    """Kernel inception distance (Binkowski et al. 2018): unbiased MMD² with a cubic kernel.

    Computed on ``n_subsets`` random subsets of ``subset_size`` rows from each set (default
    ``min(1000, n_smaller // 2)``, so that subsets differ and their spread means something), drawn without replacement within a subset with a generator
    seeded by ``seed``. Returns ``KID(mean, std)`` over subsets. Unlike FID it is unbiased, so its
    expectation is 0 when both sets come from the same distribution, whatever the sample size.

    Raises:
        ValueError: ``subset_size`` below 2 or above the smaller set, bad ``n_subsets``.
    """
    _check_int(n_subsets, "n_subsets", 1)
    real_f, fake_f = _pair(real, fake, extractor, batch_size, device)
    smallest = min(len(real_f), len(fake_f))
    size = min(1000, smallest // 2) if subset_size is None else _check_int(subset_size, "subset_size", 2)
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {smallest}")
    if size > smallest:
        raise ValueError(f"subset_size={size} is larger than the smaller set ({smallest} samples)")
    generator = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(n_subsets):
        x = real_f[torch.randperm(len(real_f), generator=generator)[:size].to(real_f.device)]
        y = fake_f[torch.randperm(len(fake_f), generator=generator)[:size].to(fake_f.device)]
        values.append(float(polynomial_mmd2(x, y)))
    array = np.asarray(values)
    return KID(float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0)


# ============================================================================ classifier score
class Score(NamedTuple):
    """A score's mean and standard deviation over splits."""

    mean: float
    std: float


@torch.no_grad()
def inception_score(x: Any, classifier: nn.Module | None = None, *, splits: int = 10,
                    batch_size: int = 256, device: torch.device | str | None = None) -> Score:
    """Inception score with a domain classifier ("classifier score", Salimans et al. 2016).

    ``exp(E_x KL(p(y|x) || p(y)))``, computed on each of ``splits`` equal parts and returned as
    ``Score(mean, std)`` over parts. ``x`` is images (classified by ``classifier``, default the
    dataset's :func:`get_feature_extractor` model) or a 2-D array of class probabilities. It
    ranges from 1 (every image gets the same prediction) to the number of classes (confident
    and balanced predictions); it never looks at real data, so it cannot see memorisation or
    within-class diversity.

    Raises:
        ValueError: probabilities that are negative or do not sum to 1, bad ``splits``.
    """
    _check_int(splits, "splits", 1)
    device = resolve_device(device)
    tensor = _as_tensor(x, "x")
    if tensor.ndim == 2:
        probs = tensor.to(device=device, dtype=torch.float64)
        if (probs < 0).any() or not torch.allclose(probs.sum(1), torch.ones(len(probs), dtype=probs.dtype,
                                                                               device=device), atol=1e-4):
            raise ValueError("2-D input to inception_score must be class probabilities (rows >= 0 summing to 1)")
    else:
        if tensor.ndim == 3:
            tensor = tensor.unsqueeze(1)
        model = classifier if classifier is not None else default_classifier(None, tuple(tensor.shape), device)
        model.eval()
        run_on = _module_device(model, device)
        chunks = [F.softmax(model(tensor[s:s + batch_size].to(run_on, torch.float32)).double(), 1).to(device)
                  for s in range(0, len(tensor), batch_size)]
        probs = torch.cat(chunks)
    if len(probs) < splits:
        raise ValueError(f"inception_score needs at least one sample per split: {len(probs)} samples, {splits} splits")
    scores = []
    for part in torch.tensor_split(probs, splits):
        marginal = part.mean(0, keepdim=True)
        kl = (part * (torch.log(part.clamp_min(1e-12)) - torch.log(marginal.clamp_min(1e-12)))).sum(1)
        scores.append(math.exp(float(kl.mean())))
    array = np.asarray(scores)
    return Score(float(array.mean()), float(array.std(ddof=1)) if splits > 1 else 0.0)


# ============================================================================ k-NN metrics
def pairwise_distances(x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Euclidean distances ``(len(x), len(y))``, computed ``batch_size`` rows at a time.

    Computed from differences, not the faster ``|x|² + |y|² - 2x·y`` expansion, so an exact
    copy is at distance exactly 0 (what :func:`memorization` relies on).
    """
    return torch.cat([torch.cdist(x[s:s + batch_size], y, compute_mode="donot_use_mm_for_euclid_dist")
                      for s in range(0, len(x), batch_size)])


def knn_radii(x: torch.Tensor, k: int, batch_size: int = 1024, name: str = "x") -> torch.Tensor:
    """Distance of each row of ``x`` to its ``k``-th nearest *other* row of ``x``.

    Raises:
        ValueError: if ``k`` is not below the number of rows (a point is not its own neighbour).
    """
    _check_int(k, "k", 1)
    if k >= len(x):
        raise ValueError(f"k={k} must be smaller than the number of {name} samples ({len(x)}): "
                         "each point needs k other points to define its neighbourhood")
    radii = []
    for s in range(0, len(x), batch_size):
        distances = pairwise_distances(x[s:s + batch_size], x, batch_size)
        # the k+1 smallest include the point itself at distance 0
        radii.append(distances.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(radii)


class PrecisionRecall(NamedTuple):
    """Improved precision (fidelity) and recall (coverage of the real distribution)."""

    precision: float
    recall: float


def _inside_any_ball(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor,
                     batch_size: int) -> torch.Tensor:
    """For each point: how many balls ``B(centre, radius)`` contain it."""
    counts = [(pairwise_distances(points[s:s + batch_size], centres, batch_size) <= radii[None, :]).sum(1)
              for s in range(0, len(points), batch_size)]
    return torch.cat(counts)


def precision_recall(real: Any, fake: Any, k: int = 3, *, extractor: ExtractorLike = None,
                     max_samples: int | None = None, seed: int = 0, batch_size: int = 1024,
                     device: torch.device | str | None = None) -> PrecisionRecall:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    The real manifold is the union of balls around real points with radius the distance to the
    ``k``-th nearest real neighbour; likewise for fakes. Precision = fraction of fakes inside the
    real manifold (are samples realistic?), recall = fraction of reals inside the fake manifold
    (is the whole real distribution produced?). ``max_samples`` caps each set (seeded subset).
    """
    real_f, fake_f = _pair(real, fake, extractor, 256, device)
    generator = torch.Generator().manual_seed(seed)
    real_f, fake_f = _subsample(real_f, max_samples, generator), _subsample(fake_f, max_samples, generator)
    real_r = knn_radii(real_f, k, batch_size, "real")
    fake_r = knn_radii(fake_f, k, batch_size, "fake")
    precision = (_inside_any_ball(fake_f, real_f, real_r, batch_size) > 0).double().mean()
    recall = (_inside_any_ball(real_f, fake_f, fake_r, batch_size) > 0).double().mean()
    return PrecisionRecall(float(precision), float(recall))


class DensityCoverage(NamedTuple):
    """Density (can exceed 1) and coverage (in [0, 1]) of Naeem et al. (2020)."""

    density: float
    coverage: float


def density_coverage(real: Any, fake: Any, k: int = 5, *, extractor: ExtractorLike = None,
                     max_samples: int | None = None, seed: int = 0, batch_size: int = 1024,
                     device: torch.device | str | None = None) -> DensityCoverage:
    """Density and coverage (Naeem et al. 2020), built only on real-sample neighbourhoods.

    ``density = (1 / (k M)) sum_j #{i : fake_j in B(real_i, r_k(real_i))}`` (expected value 1 when
    the two distributions are equal; above 1 when fakes crowd into dense real regions) and
    ``coverage = fraction of real points whose ball contains at least one fake``. Using only real
    balls makes both robust to fake outliers, which inflate improved recall.
    """
    real_f, fake_f = _pair(real, fake, extractor, 256, device)
    generator = torch.Generator().manual_seed(seed)
    real_f, fake_f = _subsample(real_f, max_samples, generator), _subsample(fake_f, max_samples, generator)
    real_r = knn_radii(real_f, k, batch_size, "real")
    inside = torch.cat([pairwise_distances(fake_f, real_f[s:s + batch_size], batch_size) <= real_r[None, s:s + batch_size]
                        for s in range(0, len(real_f), batch_size)], dim=1)  # (n_fake, n_real)
    density = inside.sum().double() / (k * len(fake_f))
    coverage = inside.any(0).double().mean()
    return DensityCoverage(float(density), float(coverage))


# ============================================================================ C2ST
class C2STResult(NamedTuple):
    """Held-out accuracy of a real-vs-fake classifier, with the test size and a binomial p-value."""

    accuracy: float
    n_test: int
    p_value: float


def c2st(real: Any, fake: Any, *, seed: int = 0, classifier: str = "logistic", test_size: float = 0.5,
         extractor: ExtractorLike = None, device: torch.device | str | None = None) -> C2STResult:
    """Classifier two-sample test (Lopez-Paz and Oquab 2017).

    The larger set is subsampled (seeded) to the size of the smaller so chance is exactly 0.5;
    the pooled set is split (stratified, ``test_size`` held out, ``seed``) and a standardised
    ``"logistic"`` regression or a small ``"mlp"`` learns real vs fake on the training part.
    Returns its held-out accuracy (0.5: indistinguishable; 1: perfectly separable), the number of
    held-out samples, and the one-sided binomial p-value of "accuracy > 0.5".

    Raises:
        ValueError: unknown classifier, ``test_size`` outside (0, 1), fewer than 4 samples per set.
    """
    from scipy.stats import binomtest
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if classifier not in ("logistic", "mlp"):
        raise ValueError(f"unknown classifier {classifier!r}; choose 'logistic' or 'mlp'")
    if not (isinstance(test_size, float) and 0.0 < test_size < 1.0):
        raise ValueError(f"test_size must be a float in (0, 1), got {test_size!r}")
    real_f, fake_f = _pair(real, fake, extractor, 256, device)
    n = min(len(real_f), len(fake_f))
    if n < 4:
        raise ValueError(f"c2st needs at least 4 samples per set, got {n}")
    generator = torch.Generator().manual_seed(seed)
    real_np = _subsample(real_f, n, generator).cpu().numpy()
    fake_np = _subsample(fake_f, n, generator).cpu().numpy()
    features = np.concatenate([real_np, fake_np])
    labels = np.concatenate([np.ones(n), np.zeros(n)])
    x_train, x_test, y_train, y_test = train_test_split(features, labels, test_size=test_size,
                                                        random_state=seed, stratify=labels)
    if classifier == "logistic":
        model = LogisticRegression(max_iter=2000)
    else:
        model = MLPClassifier(hidden_layer_sizes=(64,), max_iter=500, early_stopping=True, random_state=seed)
    pipeline = make_pipeline(StandardScaler(), model).fit(x_train, y_train)
    correct = int((pipeline.predict(x_test) == y_test).sum())
    p_value = float(binomtest(correct, len(y_test), 0.5, alternative="greater").pvalue)
    return C2STResult(correct / len(y_test), len(y_test), p_value)


# ============================================================================ memorisation
class Memorization(NamedTuple):
    """Nearest-neighbour copy detection; see :func:`memorization`."""

    sample_distances: np.ndarray  # distance of each sample to its nearest training image
    nearest_train: np.ndarray  # index of that training image
    test_distances: np.ndarray  # the same for each held-out test image
    ratios: np.ndarray  # sample distance / median test distance
    threshold: float  # distance under which a sample is flagged
    flagged: np.ndarray  # boolean: likely copies
    copy_fraction: float  # flagged.mean()
    z_score: float  # Mann-Whitney z of sample vs test distances (< 0: closer to train than fresh data)


def memorization(samples: Any, train: Any, test: Any, *, quantile: float = 0.01,
                 extractor: ExtractorLike | str = "pixels", batch_size: int = 1024,
                 device: torch.device | str | None = None) -> Memorization:
    """Do samples sit closer to the training set than fresh data does?

    For every sample, the distance to its nearest training image; for every held-out ``test``
    image, the same distance (how close genuinely new images come to the training set).
    ``ratios`` = sample distance / median test distance (about 1 for a model that generalises,
    near 0 for copies). **Rule:** a sample is flagged as a likely copy when its distance is
    below the ``quantile`` (default 1%) quantile of the test distances, i.e. it is closer to some
    training image than 99% of fresh images are (so fresh data is flagged at rate ``quantile``).
    ``z_score`` is the global Mann-Whitney test of Meehan et al. (2020) without their cells:
    strongly negative means data copying, strongly positive means under-fitting.

    Distances are Euclidean in pixel space by default (``extractor="pixels"``: copying is about
    images); pass an extractor to work in a feature space instead.
    """
    from scipy.stats import mannwhitneyu

    if not (isinstance(quantile, float) and 0.0 < quantile < 1.0):
        raise ValueError(f"quantile must be a float in (0, 1), got {quantile!r}")
    device = resolve_device(device)
    sets = []
    for value, name in ((samples, "samples"), (train, "train"), (test, "test")):
        tensor = _as_tensor(value, name)
        if extractor == "pixels":
            sets.append(tensor.reshape(len(tensor), -1).to(device=device, dtype=torch.float64))
        else:
            sets.append(extract_features(tensor, extractor, batch_size=256, device=device, name=name))
    sample_f, train_f, test_f = sets
    if len({s.shape[1] for s in sets}) != 1:
        raise ValueError(f"samples, train and test must have the same dimension, got "
                         f"{sample_f.shape[1]}, {train_f.shape[1]} and {test_f.shape[1]}")
    if len(test_f) < 2:
        raise ValueError("memorization needs at least 2 test images to estimate fresh-data distances")

    def nearest(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        best = [pairwise_distances(x[s:s + batch_size], train_f, batch_size).min(1) for s in range(0, len(x), batch_size)]
        return torch.cat([b.values for b in best]), torch.cat([b.indices for b in best])

    sample_d, index = nearest(sample_f)
    test_d, _ = nearest(test_f)
    sample_d, test_d = sample_d.cpu().numpy(), test_d.cpu().numpy()
    threshold = float(np.quantile(test_d, quantile))
    # Exact copies (distance 0) are flagged even when the quantile itself is 0.
    flagged = (sample_d < threshold) | (sample_d <= 1e-12)
    median = float(np.median(test_d))
    ratios = sample_d / median if median > 0 else np.full_like(sample_d, np.inf)
    u_stat = mannwhitneyu(sample_d, test_d, alternative="two-sided").statistic
    n1, n2 = len(sample_d), len(test_d)
    z_score = float((u_stat - n1 * n2 / 2) / math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12))
    return Memorization(sample_d, index.cpu().numpy(), test_d, ratios, threshold, flagged,
                        float(flagged.mean()), z_score)


# ============================================================================ likelihood units
def _check_dims(n_dims: Any) -> int:
    return _check_int(n_dims, "n_dims", 1)


def nats_to_bits_per_dim(nats: Any, n_dims: int, *, bin_width: float = 1.0) -> Any:
    """Convert a negative log-likelihood per example (nats) to bits per dimension.

    Convention: bits/dim reports the *discrete* NLL, ``-log2 P(x) / D``. For a continuous density
    fitted to uniformly dequantised data (``x + u``, ``u ~ U[0, bin_width)^D``) its NLL in nats is
    an upper bound on the discrete NLL once the bin volume is accounted for:
    ``nats_discrete = nats - D log(bin_width)``. With ``bin_width=1`` (data kept in integer levels,
    as genlab's digits are: 0..16) nothing is added; for 8-bit images scaled to [0, 1] pass
    ``bin_width=1/256`` (which adds ``D log 256``). Then ``bits/dim = nats_discrete / (D ln 2)``.
    Works on floats, NumPy arrays and tensors.
    """
    n_dims = _check_dims(n_dims)
    if not (isinstance(bin_width, (int, float)) and bin_width > 0):
        raise ValueError(f"bin_width must be a positive number, got {bin_width!r}")
    return (nats - n_dims * math.log(bin_width)) / (n_dims * math.log(2))


def bits_per_dim_to_nats(bits_per_dim: Any, n_dims: int, *, bin_width: float = 1.0) -> Any:
    """Inverse of :func:`nats_to_bits_per_dim` (same dequantisation convention)."""
    n_dims = _check_dims(n_dims)
    if not (isinstance(bin_width, (int, float)) and bin_width > 0):
        raise ValueError(f"bin_width must be a positive number, got {bin_width!r}")
    return bits_per_dim * n_dims * math.log(2) + n_dims * math.log(bin_width)


# ============================================================================ everything at once
def evaluate_samples(real: Any, fake: Any, extractor: ExtractorLike = None, *, k_pr: int = 3,
                     k_dc: int = 5, kid_subsets: int = 50, seed: int = 0, batch_size: int = 256,
                     device: torch.device | str | None = None) -> dict[str, float]:
    """Every sample-based metric of ``fake`` against ``real`` from a single feature pass.

    Returns a dict with ``fid``, ``kid``, ``kid_std``, ``precision``, ``recall``, ``density``,
    ``coverage``, ``c2st`` (held-out accuracy) and, when the extractor is a classifier (the
    default), ``classifier_score`` (the inception score of ``fake``).
    """
    device = resolve_device(device)
    real_f, fake_f = _pair(real, fake, extractor, batch_size, device)
    result: dict[str, float] = {"fid": fid(real_f, fake_f, device=device)}
    kid_value = kid(real_f, fake_f, n_subsets=kid_subsets, seed=seed, device=device)
    result.update(kid=kid_value.mean, kid_std=kid_value.std)
    result.update(precision_recall(real_f, fake_f, k_pr, seed=seed, device=device)._asdict())
    result.update(density_coverage(real_f, fake_f, k_dc, seed=seed, device=device)._asdict())
    result["c2st"] = c2st(real_f, fake_f, seed=seed, device=device).accuracy
    fake_t = _as_tensor(fake, "fake")
    if fake_t.ndim > 2:
        model = extractor if isinstance(extractor, DigitClassifier) else None
        if extractor is None or isinstance(extractor, str):
            model = default_classifier(extractor, tuple(fake_t.shape), device)
        if model is not None:
            result["classifier_score"] = inception_score(fake_t, model, splits=min(10, len(fake_t)), device=device).mean
    return result


def real_floor(train: Any, test: Any, extractor: ExtractorLike = None, *, n_samples: int | None = None,
               seed: int = 0, **kwargs: Any) -> dict[str, float]:
    """Every metric for *real* data against real data: the best value a model can expect.

    A seeded subset of ``train`` (as many images as ``test`` unless ``n_samples`` says otherwise,
    so the sample-size bias of FID matches the model rows) is scored against ``test`` with
    :func:`evaluate_samples` (``kwargs`` go there). Memorisation needs held-out data on both
    sides, so its floor splits ``test`` in two seeded halves: one plays the samples, the other
    the fresh reference (``copy_fraction`` is then about the rule's 1% by construction, and
    ``median_ratio`` about 1).
    """
    train_t, test_t = _as_tensor(train, "train"), _as_tensor(test, "test")
    n = len(test_t) if n_samples is None else _check_int(n_samples, "n_samples", 2)
    if n > len(train_t):
        raise ValueError(f"n_samples={n} is larger than the training set ({len(train_t)} images)")
    generator = torch.Generator().manual_seed(seed)
    train_subset = train_t[torch.randperm(len(train_t), generator=generator)[:n]]
    result = evaluate_samples(test_t, train_subset, extractor, seed=seed, **kwargs)
    if test_t.ndim > 2:
        order = torch.randperm(len(test_t), generator=generator)
        half = len(test_t) // 2
        memo = memorization(test_t[order[:half]], train_t, test_t[order[half:]])
        result.update(copy_fraction=memo.copy_fraction, median_ratio=float(np.median(memo.ratios)))
    return result
