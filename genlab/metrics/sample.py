"""Sample-quality metrics: a set of real images against a set of generated ones, in a feature space.

Every metric accepts images (mapped through an extractor, see :mod:`genlab.metrics.features`) or
precomputed features ``(n, d)``: :func:`frechet_distance`, :func:`fid` (Heusel et al. 2017),
:func:`kid` (Binkowski et al. 2018), :func:`inception_score` with the classifier (the "classifier
score", Salimans et al. 2016), :func:`precision_recall` (Kynkäänniemi et al. 2019),
:func:`density_coverage` (Naeem et al. 2020), :func:`c2st` (Lopez-Paz and Oquab 2017),
:func:`memorization` (nearest-neighbour copy detection, after Meehan et al. 2020).
:func:`evaluate_samples` computes them all from one feature pass, and :func:`real_floor` gives the
real-train vs real-test values every table reports beside model numbers.

Units: **KID is reported x 1e3 on RMS-normalised features** (:data:`KID_UNIT`): both sets are
divided by one scalar, the root-mean-square feature value of the real set, so that the cubic
kernel sees features of unit scale whatever the extractor, and the unbiased MMD² is multiplied by
1000 (the convention of the KID literature). Raw MMD² on a classifier's unscaled ReLU features can
reach thousands and changes with the extractor's scale; ``kid(..., normalize=False)`` returns it.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..layers import eval_mode
from ..validation import (
    as_float_tensor,
    check_device,
    check_int,
    check_option,
    check_optional_int,
    check_probability,
    check_seed,
)
from .features import (
    DigitClassifier,
    ExtractorLike,
    as_metric_input,
    check_extractor,
    check_input_range,
    default_classifier,
    extract_features,
    feature_pair,
    subsample,
)

__all__ = ["frechet_distance", "feature_statistics", "fid", "KID", "KID_UNIT", "KID_SCALE", "polynomial_mmd2",
           "kid", "Score", "inception_score", "pairwise_distances", "knn_radii", "PrecisionRecall",
           "precision_recall", "DensityCoverage", "density_coverage", "C2STResult", "c2st", "Memorization",
           "memorization", "evaluate_samples", "real_floor"]

#: KID values are the unbiased MMD² times this factor...
KID_SCALE = 1e3
#: ...on features divided by the real set's RMS feature value.
KID_UNIT = "MMD² x 1e3 on RMS-normalised features"


# ============================================================================ FID
def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Squared Fréchet (2-Wasserstein) distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^{1/2})``, computed in
    float64 as ``tr((S1^{1/2} S2 S1^{1/2})^{1/2})`` (a symmetric PSD matrix, so an eigen-
    decomposition replaces the general, less stable matrix square root; the two traces agree).

    The computation is scaled by the largest entry, so covariances as large as 1e300 give the
    right answer instead of NaN.

    Raises:
        ValueError: shapes that do not match, non-square covariances, NaN/inf.
    """
    mu1_t = as_float_tensor(mu1, name="mu1", ndim=1, max_abs=math.inf)
    mu2_t = as_float_tensor(mu2, name="mu2", ndim=1, max_abs=math.inf)
    s1 = as_float_tensor(sigma1, name="sigma1", ndim=2, max_abs=math.inf)
    s2 = as_float_tensor(sigma2, name="sigma2", ndim=2, max_abs=math.inf).to(s1.device)
    mu1_t, mu2_t = mu1_t.to(s1.device), mu2_t.to(s1.device)
    d = mu1_t.shape[0]
    if mu2_t.shape[0] != d:
        raise ValueError(f"mu1 has {d} dimensions but mu2 has {mu2_t.shape[0]}")
    for s, name in ((s1, "sigma1"), (s2, "sigma2")):
        if tuple(s.shape) != (d, d):
            raise ValueError(f"{name} must be a ({d}, {d}) covariance matching the means, got {tuple(s.shape)}")
    # Work in units where the largest entry is about 1: squares of 1e300 would overflow to inf
    # and turn the answer into NaN; the covariance part scales exactly with the covariances.
    scale = max(float(s1.abs().max()), float(s2.abs().max()), 1e-300)
    diff = mu1_t - mu2_t
    shift = max(float(diff.abs().max()), 1e-300)
    mean_term = float((diff / shift).pow(2).sum()) * shift * shift
    s1, s2 = s1 / scale, s2 / scale
    root1 = _sqrt_psd(s1)
    cross = torch.linalg.eigvalsh(root1 @ s2 @ root1).clamp_min(0).sqrt().sum()
    value = mean_term + max(float(torch.trace(s1) + torch.trace(s2) - 2 * cross), 0.0) * scale
    if not math.isfinite(value):
        raise ValueError(f"the Fréchet distance overflows float64 (covariance entries up to {scale:.3g}); "
                         "rescale the features")
    return value


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
    real_f, fake_f = feature_pair(real, fake, extractor, batch_size, device)
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
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)) or x.ndim != 2 or x.shape != y.shape \
            or len(x) < 2:
        raise ValueError(f"x and y must be feature tensors of the same shape (m >= 2, d), got "
                         f"{getattr(x, 'shape', type(x))} and {getattr(y, 'shape', type(y))}")
    m, d = x.shape
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    off = m * (m - 1)
    return (kxx.sum() - kxx.diagonal().sum()) / off + (kyy.sum() - kyy.diagonal().sum()) / off - 2 * kxy.mean()


def kid(real: Any, fake: Any, extractor: ExtractorLike = None, *, n_subsets: int = 100,
        subset_size: int | None = None, seed: int = 0, batch_size: int = 256,
        device: torch.device | str | None = None, normalize: bool = True) -> KID:
    """Kernel inception distance (Binkowski et al. 2018): unbiased MMD² with a cubic kernel.

    Computed on ``n_subsets`` random subsets of ``subset_size`` rows from each set (default
    ``min(1000, n_smaller // 2)``, so that subsets differ and their spread means something), drawn
    without replacement within a subset with a generator
    seeded by ``seed``. Returns ``KID(mean, std)`` over subsets. Unlike FID it is unbiased, so its
    expectation is 0 when both sets come from the same distribution, whatever the sample size.

    Unit (:data:`KID_UNIT`): with ``normalize=True`` (the default) both feature sets are divided
    by the root-mean-square value of the real features and the MMD² is multiplied by
    :data:`KID_SCALE` = 1000; ``normalize=False`` gives the raw MMD² of the features as they are.

    Raises:
        ValueError: ``subset_size`` below 2 or above the smaller set, bad ``n_subsets``.
    """
    n_subsets = check_int(n_subsets, "n_subsets", minimum=1)
    subset_size = check_optional_int(subset_size, "subset_size", minimum=2)
    seed = check_seed(seed)
    if not isinstance(normalize, (bool, np.bool_)):
        raise TypeError(f"normalize must be True or False, got {normalize!r}")
    real_f, fake_f = feature_pair(real, fake, extractor, batch_size, device)
    factor = 1.0
    if normalize:
        rms = float(real_f.pow(2).mean().sqrt())
        if rms > 0:
            real_f, fake_f = real_f / rms, fake_f / rms
        factor = KID_SCALE
    smallest = min(len(real_f), len(fake_f))
    size = min(1000, smallest // 2) if subset_size is None else subset_size
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {smallest}")
    if size > smallest:
        raise ValueError(f"subset_size={size} is larger than the smaller set ({smallest} samples)")
    generator = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(n_subsets):
        x = real_f[torch.randperm(len(real_f), generator=generator)[:size].to(real_f.device)]
        y = fake_f[torch.randperm(len(fake_f), generator=generator)[:size].to(fake_f.device)]
        values.append(float(polynomial_mmd2(x, y)) * factor)
    array = np.asarray(values)
    return KID(float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0)


# ============================================================================ classifier score
class Score(NamedTuple):
    """A score's mean and standard deviation over splits."""

    mean: float
    std: float


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
    splits = check_int(splits, "splits", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    device = check_device(device)
    tensor = as_metric_input(x, "x")
    if tensor.ndim == 2:
        probs = tensor.to(device=device, dtype=torch.float64)
        if (probs < 0).any() or not torch.allclose(probs.sum(1), torch.ones(len(probs), dtype=probs.dtype,
                                                                               device=device), atol=1e-4):
            raise ValueError("2-D input to inception_score must be class probabilities (rows >= 0 summing to 1)")
    else:
        if tensor.ndim == 3:
            tensor = tensor.unsqueeze(1)
        if classifier is not None and not isinstance(classifier, nn.Module):
            raise TypeError(f"classifier must be an nn.Module returning class logits or None, "
                            f"got {type(classifier).__name__}")
        # resolved (and trained on first use) outside no_grad
        model = classifier if classifier is not None else default_classifier(None, tuple(tensor.shape), device)
        check_input_range(tensor, model, "x")
        run_on = next((t.device for t in list(model.parameters()) + list(model.buffers())), device)
        with torch.no_grad(), eval_mode(model):
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
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)) or x.ndim != 2 or y.ndim != 2 \
            or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be 2-D tensors with the same number of columns, got "
                         f"{getattr(x, 'shape', type(x))} and {getattr(y, 'shape', type(y))}")
    return torch.cat([torch.cdist(x[s:s + batch_size], y, compute_mode="donot_use_mm_for_euclid_dist")
                      for s in range(0, len(x), batch_size)])


def knn_radii(x: torch.Tensor, k: int, batch_size: int = 1024, name: str = "x") -> torch.Tensor:
    """Distance of each row of ``x`` to its ``k``-th nearest *other* row of ``x``.

    Raises:
        ValueError: if ``k`` is not below the number of rows (a point is not its own neighbour).
    """
    k = check_int(k, "k", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
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


def _knn_manifold(real: Any, fake: Any, k: Any, extractor: ExtractorLike, max_samples: Any, seed: Any,
                  batch_size: Any, device: torch.device | str | None
                  ) -> tuple[int, int, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The shared set-up of the k-NN manifold metrics: checked arguments, the (seeded, capped) feature
    sets, and each real point's k-th neighbour radius."""
    k = check_int(k, "k", minimum=1)
    max_samples = check_optional_int(max_samples, "max_samples", minimum=k + 1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    generator = torch.Generator().manual_seed(check_seed(seed))
    real_f, fake_f = feature_pair(real, fake, extractor, 256, device)
    real_f, fake_f = subsample(real_f, max_samples, generator), subsample(fake_f, max_samples, generator)
    return k, batch_size, real_f, fake_f, knn_radii(real_f, k, batch_size, "real")


def precision_recall(real: Any, fake: Any, k: int = 3, *, extractor: ExtractorLike = None,
                     max_samples: int | None = None, seed: int = 0, batch_size: int = 1024,
                     device: torch.device | str | None = None) -> PrecisionRecall:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    The real manifold is the union of balls around real points with radius the distance to the
    ``k``-th nearest real neighbour; likewise for fakes. Precision = fraction of fakes inside the
    real manifold (are samples realistic?), recall = fraction of reals inside the fake manifold
    (is the whole real distribution produced?). ``max_samples`` caps each set (seeded subset).
    """
    k, batch_size, real_f, fake_f, real_r = _knn_manifold(real, fake, k, extractor, max_samples, seed, batch_size,
                                                         device)
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
    k, batch_size, real_f, fake_f, real_r = _knn_manifold(real, fake, k, extractor, max_samples, seed, batch_size,
                                                         device)
    inside = torch.cat([pairwise_distances(fake_f, real_f[s:s + batch_size], batch_size)
                        <= real_r[None, s:s + batch_size]
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

    check_option(classifier, "classifier", ("logistic", "mlp"))
    test_size = check_probability(test_size, "test_size", open_low=True, open_high=True)
    seed = check_seed(seed)
    real_f, fake_f = feature_pair(real, fake, extractor, 256, device)
    n = min(len(real_f), len(fake_f))
    if n < 4:
        raise ValueError(f"c2st needs at least 4 samples per set, got {n}")
    generator = torch.Generator().manual_seed(seed)
    real_np = subsample(real_f, n, generator).cpu().numpy()
    fake_np = subsample(fake_f, n, generator).cpu().numpy()
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

    quantile = check_probability(quantile, "quantile", open_low=True, open_high=True)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    check_extractor(extractor, allow=("pixels",))
    device = check_device(device)
    sets = []
    for value, name in ((samples, "samples"), (train, "train"), (test, "test")):
        tensor = as_metric_input(value, name)
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
        best = [pairwise_distances(x[s:s + batch_size], train_f, batch_size).min(1)
                for s in range(0, len(x), batch_size)]
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


# ============================================================================ everything at once
def evaluate_samples(real: Any, fake: Any, extractor: ExtractorLike = None, *, k_pr: int = 3,
                     k_dc: int = 5, kid_subsets: int = 50, seed: int = 0, batch_size: int = 256,
                     device: torch.device | str | None = None) -> dict[str, float]:
    """Every sample-based metric of ``fake`` against ``real`` from a single feature pass.

    Returns a dict with ``fid``, ``kid``, ``kid_std``, ``precision``, ``recall``, ``density``,
    ``coverage``, ``c2st`` (held-out accuracy) and, when the extractor is a classifier (the
    default), ``classifier_score`` (the inception score of ``fake``).
    """
    device = check_device(device)
    real_f, fake_f = feature_pair(real, fake, extractor, batch_size, device)
    result: dict[str, float] = {"fid": fid(real_f, fake_f, device=device)}
    kid_value = kid(real_f, fake_f, n_subsets=kid_subsets, seed=seed, device=device)
    result.update(kid=kid_value.mean, kid_std=kid_value.std)
    result.update(precision_recall(real_f, fake_f, k_pr, seed=seed, device=device)._asdict())
    result.update(density_coverage(real_f, fake_f, k_dc, seed=seed, device=device)._asdict())
    result["c2st"] = c2st(real_f, fake_f, seed=seed, device=device).accuracy
    fake_t = as_metric_input(fake, "fake")
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
    the fresh reference (``copy_fraction`` is then about the rule's 1% by construction, counted over
    ``copy_n`` images, and ``median_ratio`` about 1; :func:`copy_rate_test` compares a model's count with it).
    """
    train_t, test_t = as_metric_input(train, "train"), as_metric_input(test, "test")
    n = len(test_t) if n_samples is None else check_int(n_samples, "n_samples", minimum=2)
    seed = check_seed(seed)
    if n > len(train_t):
        raise ValueError(f"n_samples={n} is larger than the training set ({len(train_t)} images)")
    generator = torch.Generator().manual_seed(seed)
    train_subset = train_t[torch.randperm(len(train_t), generator=generator)[:n]]
    result = evaluate_samples(test_t, train_subset, extractor, seed=seed, **kwargs)
    if test_t.ndim > 2:
        order = torch.randperm(len(test_t), generator=generator)
        half = len(test_t) // 2
        memo = memorization(test_t[order[:half]], train_t, test_t[order[half:]])
        result.update(copy_fraction=memo.copy_fraction, copy_n=half, median_ratio=float(np.median(memo.ratios)))
    return result


def copy_rate_test(copies: int, n: int, reference_copies: int, reference_n: int) -> float:
    """One-sided p-value that a model copies *more* often than fresh data (Fisher's exact test).

    ``copies`` of ``n`` samples were flagged by :func:`memorization`, ``reference_copies`` of
    ``reference_n`` held-out real images (the floor's ``copy_fraction * copy_n``). A small p-value
    (say < 0.05) is evidence of excess copying; a large one says the two rates are within the
    binomial noise of these sample sizes, which is all a few hundred samples can say about a 1% rule.

    Raises:
        ValueError: counts not integers with ``0 <= copies <= n`` and ``n >= 1`` (each pair).
    """
    from scipy.stats import fisher_exact

    n = check_int(n, "n", minimum=1)
    reference_n = check_int(reference_n, "reference_n", minimum=1)
    copies = check_int(copies, "copies", minimum=0)
    reference_copies = check_int(reference_copies, "reference_copies", minimum=0)
    for count, total, name in ((copies, n, "copies"), (reference_copies, reference_n, "reference_copies")):
        if count > total:
            raise ValueError(f"{name}={count} is more than the {total} items it counts among")
    table = [[copies, n - copies], [reference_copies, reference_n - reference_copies]]
    return float(fisher_exact(table, alternative="greater").pvalue)
