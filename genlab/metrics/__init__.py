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
:func:`memorization` (nearest-neighbour copy detection, after Meehan et al. 2020) with
:func:`copy_rate_test` (is a model's copy rate above fresh data's, beyond binomial noise?),
likelihood units :func:`nats_to_bits_per_dim` / :func:`bits_per_dim_to_nats`, and the privacy of synthetic
data: :func:`distance_to_closest_record` and :func:`membership_inference_advantage` (:mod:`genlab.metrics.privacy`),
with the fixed-threshold :func:`loss_threshold_advantage` (Yeom et al. 2018); the class balance of generated samples,
:func:`classify` and :func:`group_share` (:mod:`genlab.metrics.bias`); and a reusable real-vs-generated detector,
:class:`RealFakeDetector` (:mod:`genlab.metrics.detection`).
:func:`evaluate_samples` computes them all from one feature pass, and :func:`real_floor`
gives the real-train vs real-test values every table reports beside model numbers.

The package has three parts: :mod:`genlab.metrics.features` (the classifier, its cache, Inception
loading, extraction), :mod:`genlab.metrics.sample` (the sample metrics) and
:mod:`genlab.metrics.units` (nats <-> bits/dim). Every public name is importable from
``genlab.metrics`` directly. KID is reported in :data:`KID_UNIT` (x 1e3 on RMS-normalised features).
"""
from __future__ import annotations

from .bias import GroupShare, classify, group_share
from .detection import RealFakeDetector
from .features import (
                       CLASSIFIER_VERSION,
                       DATASETS,
                       DEFAULT_EPOCHS,
                       EPOCHS_ENV,
                       INPUT_RANGES,
                       DigitClassifier,
                       ExtractorLike,
                       InceptionFeatures,
                       as_metric_input,
                       cache_dir,
                       check_extractor,
                       check_input_range,
                       classifier_cache_path,
                       default_classifier,
                       default_epochs,
                       extract_features,
                       feature_pair,
                       get_feature_extractor,
                       inception_extractor,
                       random_shift,
                       resolve_extractor,
                       subsample,
                       train_classifier,
)
from .privacy import (
                       MembershipInference,
                       advantage_curve,
                       distance_to_closest_record,
                       loss_threshold_advantage,
                       membership_inference_advantage,
)
from .sample import (
                       KID,
                       KID_SCALE,
                       KID_UNIT,
                       C2STResult,
                       DensityCoverage,
                       Memorization,
                       PrecisionRecall,
                       Score,
                       c2st,
                       copy_rate_test,
                       density_coverage,
                       evaluate_samples,
                       feature_statistics,
                       fid,
                       frechet_distance,
                       inception_score,
                       kid,
                       knn_radii,
                       memorization,
                       pairwise_distances,
                       polynomial_mmd2,
                       precision_recall,
                       real_floor,
)
from .units import bits_per_dim_to_nats, nats_to_bits_per_dim

__all__ = [
    "CLASSIFIER_VERSION", "DATASETS", "DEFAULT_EPOCHS", "EPOCHS_ENV", "INPUT_RANGES", "DigitClassifier",
    "ExtractorLike", "InceptionFeatures", "as_metric_input", "cache_dir", "check_extractor", "check_input_range",
    "classifier_cache_path", "default_classifier", "default_epochs", "extract_features", "feature_pair",
    "get_feature_extractor", "inception_extractor", "random_shift", "resolve_extractor", "subsample",
    "train_classifier", "KID", "KID_SCALE", "KID_UNIT", "C2STResult", "DensityCoverage", "Memorization",
    "PrecisionRecall", "Score", "c2st", "copy_rate_test", "density_coverage", "evaluate_samples", "feature_statistics",
    "fid",
    "frechet_distance", "inception_score", "kid", "knn_radii", "memorization", "pairwise_distances", "polynomial_mmd2",
    "precision_recall", "real_floor", "bits_per_dim_to_nats", "nats_to_bits_per_dim",
    "MembershipInference", "advantage_curve", "distance_to_closest_record", "membership_inference_advantage",
    "loss_threshold_advantage", "GroupShare", "classify", "group_share", "RealFakeDetector",
]
