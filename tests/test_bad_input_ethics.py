"""Bad input to genlab.watermark, genlab.metrics.bias and the loss-threshold attack (table-driven)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from badinput import BAD_SEEDS, Case, assert_clear_error

from genlab import watermark as wm
from genlab.metrics import bias, detection, privacy

COVERED = {
    "watermark.dct_matrix", "watermark.band_mask", "watermark.key_signs", "watermark.watermark_pattern",
    "watermark.embed_watermark", "watermark.watermark_statistic", "watermark.watermark_threshold",
    "watermark.detect_watermark", "metrics.bias.classify", "metrics.bias.group_share",
    "metrics.privacy.loss_threshold_advantage", "metrics.detection.RealFakeDetector",
    "metrics.detection.RealFakeDetector.fit", "metrics.detection.RealFakeDetector.predict_proba_real",
    "metrics.detection.RealFakeDetector.score",
}

IMG = torch.zeros(2, 1, 8, 8)
NAN_IMG = torch.full((2, 1, 8, 8), float("nan"))
L = np.array([0, 1, 7])
S = np.arange(5.0)


class _Logits(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), -1)[:, :10]


F = np.random.default_rng(0).normal(size=(6, 3))
FITTED = detection.RealFakeDetector().fit(F, F + 1)

CASES = [
    Case("RealFakeDetector", lambda: detection.RealFakeDetector(classifier="svm").fit(F, F), "classifier"),
    Case("RealFakeDetector", lambda: detection.RealFakeDetector(extractor="cifar").fit(F, F), "extractor"),
    Case("RealFakeDetector", lambda: detection.RealFakeDetector(classifier="mlp", seed=-1).fit(F, F), "seed"),
    Case("fit", lambda: detection.RealFakeDetector().fit(np.full((4, 3), np.nan), F), "real"),
    Case("fit", lambda: detection.RealFakeDetector().fit(F, "abc"), "fake"),
    Case("fit", lambda: detection.RealFakeDetector().fit(F, np.zeros((4, 2))), "real"),
    Case("fit", lambda: detection.RealFakeDetector().fit(F[:1], F), "real"),
    Case("fit", lambda: detection.RealFakeDetector().fit(np.zeros((0, 3)), F), "real"),
    Case("predict_proba_real", lambda: detection.RealFakeDetector().predict_proba_real(F), "fit"),
    Case("predict_proba_real", lambda: FITTED.predict_proba_real(np.zeros((3, 2))), "images"),
    Case("predict_proba_real", lambda: FITTED.predict_proba_real(np.full((3, 3), np.inf)), "images"),
    Case("score", lambda: detection.RealFakeDetector().score(F, F), "fit"),
    Case("score", lambda: FITTED.score(np.full((3, 3), np.nan), F), "real"),
    Case("score", lambda: FITTED.score(F, np.zeros((3, 5))), "fake"),
    Case("dct_matrix", lambda: wm.dct_matrix(0), "size"),
    Case("dct_matrix", lambda: wm.dct_matrix(2.5), "size"),
    Case("band_mask", lambda: wm.band_mask(8, (5, 2)), "band high"),
    Case("band_mask", lambda: wm.band_mask(8, (0, 20)), "band high"),
    Case("band_mask", lambda: wm.band_mask(8, (-1, 3)), "band low"),
    Case("band_mask", lambda: wm.band_mask(8, "ab"), "band"),
    Case("band_mask", lambda: wm.band_mask(0), "size"),
    *[Case("key_signs", lambda bad=bad: wm.key_signs(bad), "key", str(i)) for i, bad in enumerate(BAD_SEEDS)],
    Case("key_signs", lambda: wm.key_signs(1, band=(1,)), "band"),
    Case("watermark_pattern", lambda: wm.watermark_pattern("a"), "key"),
    Case("watermark_pattern", lambda: wm.watermark_pattern(1, size=-2), "size"),
    Case("embed_watermark", lambda: wm.embed_watermark(IMG, 1, -1.0), "strength"),
    Case("embed_watermark", lambda: wm.embed_watermark(IMG, 1, float("nan")), "strength"),
    Case("embed_watermark", lambda: wm.embed_watermark(IMG, 1, "x"), "strength"),
    Case("embed_watermark", lambda: wm.embed_watermark(torch.zeros(2, 8, 8), 1, 1.0), "images"),
    Case("embed_watermark", lambda: wm.embed_watermark(torch.zeros(2, 1, 8, 6), 1, 1.0), "images"),
    Case("embed_watermark", lambda: wm.embed_watermark(torch.zeros(2, 3, 8, 8), 1, 1.0), "images"),
    Case("embed_watermark", lambda: wm.embed_watermark(NAN_IMG, 1, 1.0), "images"),
    Case("embed_watermark", lambda: wm.embed_watermark("abc", 1, 1.0), "images"),
    Case("embed_watermark", lambda: wm.embed_watermark(IMG, -5, 1.0), "key"),
    Case("embed_watermark", lambda: wm.embed_watermark(IMG, 1, 1.0, pixel_range=(1.0, 0.0)), "pixel_range"),
    Case("embed_watermark", lambda: wm.embed_watermark(IMG, 1, 1.0, pixel_range="x"), "pixel_range"),
    Case("embed_watermark", lambda: wm.embed_watermark(IMG, 1, 1.0, pixel_range=(0.0, float("nan"))),
         "pixel_range"),
    Case("embed_watermark", lambda: wm.embed_watermark(IMG, 1, 1.0, band=(3, 99)), "band"),
    Case("watermark_statistic", lambda: wm.watermark_statistic(NAN_IMG, 1), "images"),
    Case("watermark_statistic", lambda: wm.watermark_statistic(torch.zeros(0, 1, 8, 8), 1), "images"),
    Case("watermark_statistic", lambda: wm.watermark_statistic(IMG, 1.5), "key"),
    Case("watermark_threshold", lambda: wm.watermark_threshold(0.0), "fpr"),
    Case("watermark_threshold", lambda: wm.watermark_threshold(1.0), "fpr"),
    Case("watermark_threshold", lambda: wm.watermark_threshold("a"), "fpr"),
    Case("detect_watermark", lambda: wm.detect_watermark(IMG, 1, fpr=2.0), "fpr"),
    Case("detect_watermark", lambda: wm.detect_watermark(NAN_IMG, 1), "images"),
    Case("classify", lambda: bias.classify(IMG, "cifar"), "classifier"),
    Case("classify", lambda: bias.classify(IMG, 42), "classifier"),
    Case("classify", lambda: bias.classify(IMG, _Logits(), batch_size=0), "batch_size"),
    Case("classify", lambda: bias.classify(torch.zeros(2, 64), _Logits()), "images"),
    Case("classify", lambda: bias.classify(torch.zeros(0, 1, 8, 8), _Logits()), "images"),
    Case("classify", lambda: bias.classify(NAN_IMG, _Logits()), "images"),
    Case("classify", lambda: bias.classify("abc", _Logits()), "images"),
    Case("group_share", lambda: bias.group_share(np.array([0.5, 1.5]), [1]), "labels"),
    Case("group_share", lambda: bias.group_share(np.array([], dtype=int), [1]), "labels"),
    Case("group_share", lambda: bias.group_share(np.zeros((2, 2), dtype=int), [1]), "labels"),
    Case("group_share", lambda: bias.group_share(L, []), "group"),
    Case("group_share", lambda: bias.group_share(L, [-1]), "group"),
    Case("group_share", lambda: bias.group_share(L, 5), "group"),
    Case("group_share", lambda: bias.group_share(L, ["a"]), "group"),
    Case("group_share", lambda: bias.group_share(L, [1], n_bootstrap=0), "n_bootstrap"),
    Case("group_share", lambda: bias.group_share(L, [1], confidence=1.0), "confidence"),
    Case("group_share", lambda: bias.group_share(L, [1], random_state="a"), "random_state"),
    Case("loss_threshold_advantage", lambda: privacy.loss_threshold_advantage(np.array([1.0]), S), "member_losses"),
    Case("loss_threshold_advantage", lambda: privacy.loss_threshold_advantage(np.array([1.0, np.nan]), S),
         "member_losses"),
    Case("loss_threshold_advantage", lambda: privacy.loss_threshold_advantage(S, "abc"), "nonmember_losses"),
    Case("loss_threshold_advantage", lambda: privacy.loss_threshold_advantage(S, np.zeros((3, 2))),
         "nonmember_losses"),
    Case("loss_threshold_advantage", lambda: privacy.loss_threshold_advantage(S, S, threshold=float("nan")),
         "threshold"),
    Case("loss_threshold_advantage", lambda: privacy.loss_threshold_advantage(S, S, threshold="a"), "threshold"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input_raises_a_clear_error(case):
    assert_clear_error(case)
