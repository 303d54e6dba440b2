"""A real-vs-generated detector that can be trained once and tested on other generators.

:func:`genlab.metrics.c2st` trains and tests a classifier on one pair of sets and returns only its accuracy.
A deployed deepfake detector is trained on the generators known today and meets new ones later;
:class:`RealFakeDetector` keeps the trained classifier so that it can be scored on *other* real and generated
sets (cross-generator generalisation). Images are mapped to the features of an extractor first (by default
the digits classifier of :func:`genlab.metrics.get_feature_extractor`), as in ``c2st``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..base import NotFittedError
from ..validation import check_option, check_seed
from .features import ExtractorLike, check_extractor, extract_features

__all__ = ["RealFakeDetector"]


class RealFakeDetector:
    """Logistic regression (or a small MLP) on standardised features, labelling real images 1 and generated 0.

    Args:
        extractor: feature extractor (None / ``"digits"`` / ``"mnist"`` / a module or callable), as in ``c2st``.
        classifier: ``"logistic"`` or ``"mlp"``.
        seed: seed of the MLP's initialisation.
        device: where features are computed.

    Fitted attributes: ``pipeline_`` (the scikit-learn pipeline) and ``n_features_in_``.
    """

    def __init__(self, extractor: ExtractorLike = None, classifier: str = "logistic", seed: int = 0,
                 device: torch.device | str | None = None) -> None:
        self.extractor = extractor
        self.classifier = classifier
        self.seed = seed
        self.device = device

    def _features(self, images: Any, name: str) -> np.ndarray:
        return extract_features(images, self.extractor, device=self.device, name=name).cpu().numpy()

    def fit(self, real: Any, fake: Any) -> RealFakeDetector:
        """Train on ``real`` (label 1) and ``fake`` (label 0) images (or features); the larger set is not subsampled."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        check_extractor(self.extractor)
        check_option(self.classifier, "classifier", ("logistic", "mlp"))
        seed = check_seed(self.seed)
        real_f, fake_f = self._features(real, "real"), self._features(fake, "fake")
        if real_f.shape[1] != fake_f.shape[1]:
            raise ValueError(f"real and fake must have the same feature dimension, got {real_f.shape[1]} and "
                             f"{fake_f.shape[1]}")
        if len(real_f) < 2 or len(fake_f) < 2:
            raise ValueError(f"fit needs at least 2 real and 2 fake images, got {len(real_f)} and {len(fake_f)}")
        if self.classifier == "logistic":
            model = LogisticRegression(max_iter=2000)
        else:
            model = MLPClassifier(hidden_layer_sizes=(64,), max_iter=500, early_stopping=True, random_state=seed)
        features = np.concatenate([real_f, fake_f])
        labels = np.concatenate([np.ones(len(real_f)), np.zeros(len(fake_f))])
        self.pipeline_ = make_pipeline(StandardScaler(), model).fit(features, labels)
        self.n_features_in_ = real_f.shape[1]
        return self

    def _check_fitted(self, method: str) -> None:
        if not hasattr(self, "pipeline_"):
            raise NotFittedError(f"this RealFakeDetector is not fitted yet; call fit(real, fake) before {method}")

    def predict_proba_real(self, images: Any) -> np.ndarray:
        """Probability that each image is real, ``(n,)``."""
        self._check_fitted("predict_proba_real")
        return self._proba(images, "images")

    def _proba(self, images: Any, name: str) -> np.ndarray:
        features = self._features(images, name)
        if features.shape[1] != self.n_features_in_:
            raise ValueError(f"{name} give {features.shape[1]} features, the detector was fitted on "
                             f"{self.n_features_in_}")
        return self.pipeline_.predict_proba(features)[:, 1]

    def score(self, real: Any, fake: Any) -> float:
        """Balanced accuracy on held-out sets: the mean of the rates at which real and fake images are recognised."""
        self._check_fitted("score")
        real_ok = float((self._proba(real, "real") >= 0.5).mean())
        fake_ok = float((self._proba(fake, "fake") < 0.5).mean())
        return (real_ok + fake_ok) / 2
