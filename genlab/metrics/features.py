"""Feature spaces for the sample-quality metrics: the course's digit classifier, its disk cache,
local Inception-v3 weights, and feature extraction.

The default extractor is a small CNN that genlab trains on the real training split of the same
dataset (8x8 digits or MNIST-5k) the first time it is needed and caches under ``$GENLAB_CACHE``
(or ``~/.cache/genlab``). Its input range is part of its definition (:attr:`DigitClassifier.input_range`):
images outside it are refused with the range found, never silently scored.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F

from ..layers import eval_mode
from ..validation import (
    _to_tensor,
    check_device,
    check_int,
    check_option,
    check_optional_int,
    check_positive_float,
    check_seed,
)

__all__ = ["CLASSIFIER_VERSION", "DATASETS", "DEFAULT_EPOCHS", "INPUT_RANGES", "DigitClassifier", "random_shift",
           "cache_dir", "classifier_cache_path", "train_classifier", "get_feature_extractor", "InceptionFeatures",
           "inception_extractor", "default_classifier", "resolve_extractor", "extract_features", "check_input_range",
           "check_extractor", "as_metric_input", "feature_pair", "subsample", "default_epochs", "EPOCHS_ENV",
           "ExtractorLike"]


# Bump when the classifier's architecture or training recipe changes: old cache files are then ignored.
CLASSIFIER_VERSION = 2
DATASETS = ("digits", "mnist")
# Default training lengths (early stopping on the validation split usually ends sooner).
DEFAULT_EPOCHS = {"digits": 40, "mnist": 15}
# Images of these sizes get the matching default extractor.
_SIZE_TO_DATASET = {(8, 8): "digits", (28, 28): "mnist"}
# Scale that maps each dataset's pixel values to [0, 1] (digits hold integer levels 0..16).
_INPUT_SCALE = {"digits": 1.0 / 16.0, "mnist": 1.0}
#: The pixel range each classifier takes: digits hold levels 0..16, MNIST pixels lie in [0, 1].
INPUT_RANGES = {"digits": (0.0, 16.0), "mnist": (0.0, 1.0)}
#: Environment variable overriding the default training length (part of the cache key, so a short
#: run never shadows the real one); meant for fast tests with an empty cache.
EPOCHS_ENV = "GENLAB_CLASSIFIER_EPOCHS"

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
        #: The pixel range the network takes (images outside it are refused by the metrics).
        self.input_range = INPUT_RANGES[dataset]
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

        In training mode images are shifted at random by up to one pixel (two for 28x28), a
        standard augmentation for handwriting: on the digits it lifts test accuracy from about
        91% to about 95%.
        """
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ValueError(f"batch must be a pair (images, labels), got {type(batch).__name__}")
        images, labels = batch
        if self.training:
            images = random_shift(images, 1 if self.dataset == "digits" else 2)
        return F.cross_entropy(self(images), labels)

    @torch.no_grad()
    def accuracy(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> float:
        """Fraction of ``images`` classified as ``labels`` (the model's mode is restored afterwards)."""
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        if len(labels) != len(images):
            raise ValueError(f"labels has {len(labels)} entries for {len(images)} images")
        device = self.input_scale.device
        correct = 0
        with eval_mode(self):
            for start in range(0, len(images), batch_size):
                logits = self(images[start:start + batch_size].to(device))
                correct += int((logits.argmax(1).cpu() == labels[start:start + batch_size]).sum())
        return correct / max(len(images), 1)


def random_shift(images: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Translate each image ``(n, 1, H, W)`` by a random integer offset in ``[-max_shift, max_shift]``²,
    filling with zeros (uses torch's global generator, so :func:`genlab.seed_everything` repeats it)."""
    max_shift = check_int(max_shift, "max_shift", minimum=0)
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"images must be a tensor (n, C, H, W), got {getattr(images, 'shape', type(images))}")
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


def default_epochs(dataset: str) -> int:
    """Training length of the default classifier: :data:`DEFAULT_EPOCHS`, or ``$GENLAB_CLASSIFIER_EPOCHS``."""
    check_option(dataset, "dataset", DATASETS)
    override = os.environ.get(EPOCHS_ENV, "").strip()
    if not override:
        return DEFAULT_EPOCHS[dataset]
    try:
        value = int(override)
    except ValueError:
        raise ValueError(f"{EPOCHS_ENV} must be a positive integer, got {override!r}") from None
    return check_int(value, EPOCHS_ENV, minimum=1)


def classifier_cache_path(dataset: str, *, seed: int = 0, epochs: int | None = None,
                          directory: str | os.PathLike | None = None) -> Path:
    """The cache file of the feature classifier; its name holds dataset, version, seed and epochs."""
    check_option(dataset, "dataset", DATASETS)
    seed = check_seed(seed)
    epochs = default_epochs(dataset) if epochs is None else check_int(epochs, "epochs", minimum=1)
    folder = Path(directory).expanduser() if directory is not None else cache_dir()
    return folder / f"classifier_{dataset}_v{CLASSIFIER_VERSION}_seed{seed}_ep{epochs}.pt"


def _load_split(dataset: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    from ..data import load_digits, load_mnist

    return load_digits(split) if dataset == "digits" else load_mnist(split)


def train_classifier(dataset: str = "digits", *, epochs: int | None = None, seed: int = 0,
                     device: torch.device | str | None = None, progress: bool = False,
                     patience: int = 8) -> DigitClassifier:
    """Train the feature classifier on the real training split (early stopping on ``val``).

    Sets ``test_accuracy`` and ``val_accuracy`` on the returned (eval-mode) model. Gradients are
    switched on for the training, so the first metric call with an empty cache works even from
    inside ``torch.no_grad()``.
    """
    from ..device import seed_everything
    from ..train import Trainer

    check_option(dataset, "dataset", DATASETS)
    epochs = default_epochs(dataset) if epochs is None else check_int(epochs, "epochs", minimum=1)
    seed = check_seed(seed)
    patience = check_int(patience, "patience", minimum=1)
    device = check_device(device)
    seed_everything(seed)
    model = DigitClassifier(dataset)
    train_x, train_y = _load_split(dataset, "train")
    val_x, val_y = _load_split(dataset, "val")
    # amp=False: the instrument is trained and used in full precision on every device.
    trainer = Trainer(model, lr=1e-3, batch_size=64, device=device, progress=progress, seed=seed, amp=False)
    with torch.enable_grad():
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
    from ..train import load_checkpoint, save_checkpoint

    check_option(dataset, "dataset", DATASETS)
    device = check_device(device)
    epochs = default_epochs(dataset) if epochs is None else check_int(epochs, "epochs", minimum=1)
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
                         "epochs": epochs,
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
        if not isinstance(network, nn.Module):
            raise TypeError(f"network must be a torch.nn.Module, got {type(network).__name__}")
        self.network = network
        self.data_max = check_positive_float(data_max, "data_max")
        #: The pixel range the network takes (images outside it are refused by the metrics).
        self.input_range = (0.0, self.data_max)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pool features ``(n, 2048)`` of images ``(n, 1, H, W)`` in ``[0, data_max]``."""
        if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[1] != 1):
            raise ValueError(f"x must be grey images (n, 1, H, W) or (n, H, W), got {getattr(x, 'shape', type(x))}")
        if x.ndim == 3:
            x = x.unsqueeze(1)
        x = (x.float() / self.data_max).clamp(0, 1).expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.network((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`features`."""
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
    data_max = check_positive_float(data_max, "data_max")
    network = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    network.fc = nn.Identity()  # the 2048-d pool features, as in FID
    network.aux_logits, network.AuxLogits = False, None
    return InceptionFeatures(network, data_max).to(check_device(device)).eval()


# ============================================================================ features
def as_metric_input(x: Any, name: str) -> torch.Tensor:
    """Validate features ``(n, d)`` or images ``(n, H, W)`` / ``(n, 1, H, W)``: numeric, real, finite, non-empty."""
    tensor = _to_tensor(x, name)
    if tensor.is_complex():
        raise ValueError(f"{name} must be real, got a complex dtype")
    if tensor.ndim not in (2, 3, 4):
        raise ValueError(f"{name} must be features (n, d) or images (n, H, W) / (n, 1, H, W), "
                         f"got shape {tuple(tensor.shape)}")
    if tensor.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(tensor.shape)})")
    if not torch.isfinite(tensor.double()).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return tensor


def check_extractor(extractor: Any, *, allow: tuple[str, ...] = ()) -> Any:
    """Reject an unknown extractor name or an object that is neither a module nor a callable.

    Checked even when the data are already features (where no extractor runs), so a typo never
    passes silently.
    """
    if isinstance(extractor, str):
        return check_option(extractor, "extractor", (*DATASETS, *allow))
    if extractor is None or isinstance(extractor, nn.Module) or callable(extractor):
        return extractor
    raise TypeError(f"extractor must be None, one of {(*DATASETS, *allow)}, an nn.Module or a callable, "
                    f"got {type(extractor).__name__}")


def check_input_range(images: torch.Tensor, extractor: Any, name: str) -> None:
    """Refuse images outside the pixel range the extractor takes, naming the range found.

    Applies to extractors with an ``input_range`` attribute (genlab's classifiers and Inception
    wrapper). For a range wider than [0, 1] (the digits' levels 0..16), a whole set inside [0, 1]
    is refused too: it is almost surely images rescaled to [0, 1] by mistake.
    """
    owner = getattr(extractor, "__self__", extractor)
    limits = getattr(owner, "input_range", None)
    if limits is None or images.numel() == 0:
        return
    low, high = (float(v) for v in limits)
    lo, hi = float(images.min()), float(images.max())
    tolerance = 1e-4 * max(1.0, high - low)
    label = f"the {getattr(owner, 'dataset', type(owner).__name__)} extractor"
    if lo < low - tolerance or hi > high + tolerance:
        raise ValueError(f"{name} must hold pixels in [{low:g}, {high:g}] for {label}, got values in "
                         f"[{lo:.4g}, {hi:.4g}]; convert the images to the dataset's units first")
    if high > 1.0 + tolerance and hi <= 1.0 + tolerance and len(images) > 1:
        raise ValueError(f"{name} has all values in [{lo:.4g}, {hi:.4g}], but {label} takes levels in "
                         f"[{low:g}, {high:g}]: the images look rescaled to [0, 1]; multiply by {high:g}")


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
    """Turn ``extractor`` (None, a dataset name, a module or a callable) into a batch function.

    Modules are returned as they are (their mode is switched only while features are computed,
    by :func:`extract_features`, and restored afterwards).
    """
    extractor = check_extractor(extractor)
    if extractor is None or isinstance(extractor, str):
        extractor = default_classifier(extractor, image_shape, device)
    if isinstance(extractor, nn.Module):
        return extractor.features if callable(getattr(extractor, "features", None)) else extractor
    return extractor


def _module_of(function: Callable) -> nn.Module | None:
    owner = getattr(function, "__self__", function)
    return owner if isinstance(owner, nn.Module) else None


def _module_device(function: Callable, default: torch.device) -> torch.device:
    owner = _module_of(function)
    if owner is not None:
        for tensor in list(owner.parameters()) + list(owner.buffers()):
            return tensor.device
    return default


def extract_features(x: Any, extractor: ExtractorLike = None, *, batch_size: int = 256,
                     device: torch.device | str | None = None, name: str = "x") -> torch.Tensor:
    """Features ``(n, d)`` (float64, on ``device``) of images, or ``x`` itself if it is already 2-D.

    Images are ``(n, H, W)`` or ``(n, 1, H, W)`` in the dataset's units; they go through the
    extractor ``batch_size`` at a time, in eval mode and full precision (a module's mode is
    restored afterwards). The default extractor is trained on first use if it is not cached.

    Raises:
        ValueError: bad shape, NaN/inf in the input or in the features, pixels outside the
            extractor's range, bad ``batch_size``, unknown extractor name.
    """
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    check_extractor(extractor)
    device = check_device(device)
    tensor = as_metric_input(x, name)
    if tensor.ndim == 2:
        return tensor.to(device=device, dtype=torch.float64)
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(1)
    function = resolve_extractor(extractor, tuple(tensor.shape), device)  # may train: outside no_grad
    check_input_range(tensor, function, name)
    run_on = _module_device(function, device)
    module = _module_of(function)
    chunks = []
    with torch.no_grad(), eval_mode(*([module] if module is not None else [])):
        for start in range(0, len(tensor), batch_size):
            out = function(tensor[start:start + batch_size].to(run_on, dtype=torch.float32))
            chunks.append(out.reshape(out.shape[0], -1).to(device=device, dtype=torch.float64))
    features = torch.cat(chunks)
    if not torch.isfinite(features).all():
        raise ValueError(f"the features of {name} contain NaN or infinite values (check the extractor)")
    return features


def feature_pair(real: Any, fake: Any, extractor: ExtractorLike, batch_size: int,
                 device: torch.device | str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of ``real`` and ``fake`` in one space; the two dimensions must agree."""
    device = check_device(device)
    real_f = extract_features(real, extractor, batch_size=batch_size, device=device, name="real")
    fake_f = extract_features(fake, extractor, batch_size=batch_size, device=device, name="fake")
    if real_f.shape[1] != fake_f.shape[1]:
        raise ValueError(f"real features have {real_f.shape[1]} dimensions but fake features have "
                         f"{fake_f.shape[1]}; both sets must live in the same feature space")
    return real_f, fake_f


def subsample(x: torch.Tensor, n: int | None, generator: torch.Generator) -> torch.Tensor:
    """A seeded subset of ``n`` rows of ``x`` (all of ``x`` when ``n`` is None or not smaller)."""
    n = check_optional_int(n, "n", minimum=1)
    if n is None or n >= len(x):
        return x
    return x[torch.randperm(len(x), generator=generator)[:n].to(x.device)]
