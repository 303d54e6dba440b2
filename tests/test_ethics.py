"""Watermarking (genlab.watermark), generated-class balance (genlab.metrics.bias) and the loss-threshold attack."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.fft import dct

from genlab import watermark as wm
from genlab.metrics import (
    GroupShare,
    classify,
    group_share,
    loss_threshold_advantage,
    membership_inference_advantage,
)


def _images(n: int = 16, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 17, (n, 1, 8, 8), generator=generator).float()


# ----------------------------------------------------------------------------- watermark
def test_dct_matrix_is_orthonormal_and_matches_scipy():
    d = wm.dct_matrix(8)
    torch.testing.assert_close(d @ d.T, torch.eye(8, dtype=torch.float64), atol=1e-12, rtol=0)
    x = np.random.default_rng(0).normal(size=(8, 8))
    expected = dct(dct(x, norm="ortho", axis=0), norm="ortho", axis=1)
    np.testing.assert_allclose((d @ torch.as_tensor(x) @ d.T).numpy(), expected, atol=1e-12)


def test_band_and_signs():
    mask = wm.band_mask(8, (6, 14))
    assert mask.dtype == torch.bool and int(mask.sum()) == 43
    assert int(wm.band_mask(8, (0, 0)).sum()) == 1
    signs = wm.key_signs(5)
    assert set(signs[mask].unique().tolist()) == {-1.0, 1.0} and (signs[~mask] == 0).all()
    torch.testing.assert_close(signs, wm.key_signs(5))
    assert not torch.equal(signs, wm.key_signs(6))
    pattern = wm.watermark_pattern(5)
    assert math.isclose(float(pattern.pow(2).sum()), 43.0, rel_tol=1e-12)


def test_marked_blank_image_reaches_the_maximum_statistic():
    blank = torch.zeros(3, 1, 8, 8)
    marked = wm.embed_watermark(blank, 11, 2.0, pixel_range=None)
    z = wm.watermark_statistic(marked, 11)
    torch.testing.assert_close(z, torch.full((3,), math.sqrt(43.0), dtype=torch.float64), rtol=1e-5, atol=1e-5)
    # an image with no energy in the band has z = 0, not NaN
    assert (wm.watermark_statistic(blank, 11) == 0).all()


def test_embed_clips_keeps_shape_and_strength_zero_is_identity():
    x = _images()
    marked = wm.embed_watermark(x, 3, 5.0)
    assert marked.shape == x.shape and marked.dtype == torch.float32
    assert float(marked.min()) >= 0 and float(marked.max()) <= 16
    torch.testing.assert_close(wm.embed_watermark(x, 3, 0.0), x)
    np.testing.assert_allclose(wm.embed_watermark(x.numpy(), 3, 1.0).numpy(), wm.embed_watermark(x, 3, 1.0).numpy())


def test_unmarked_statistic_has_unit_variance_over_keys_and_respects_the_bound():
    x = _images(8, seed=1)
    z = torch.stack([wm.watermark_statistic(x, key) for key in range(3000)])  # (keys, images)
    assert abs(float(z.mean())) < 0.05
    assert abs(float(z.var()) - 1.0) < 0.08
    for fpr in (0.05, 0.01):
        assert float((z >= wm.watermark_threshold(fpr)).double().mean()) <= fpr


def test_threshold_and_detection():
    assert math.isclose(wm.watermark_threshold(0.01), math.sqrt(2 * math.log(100)))
    x = _images(50, seed=2) * 0.25  # low-energy images: a strong mark dominates the band
    marked = wm.embed_watermark(x, 7, 4.0)
    assert wm.detect_watermark(marked, 7).double().mean() > 0.9
    assert wm.detect_watermark(x, 7).double().mean() < 0.1
    assert wm.detect_watermark(marked, 8).double().mean() < 0.1  # the wrong key finds nothing


# ----------------------------------------------------------------------------- bias
class _Fixed(torch.nn.Module):
    """Logits that put every image in the class given by its top-left pixel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(x[:, 0, 0, 0].long(), 10).float()


def test_classify_uses_the_logits_argmax():
    x = torch.zeros(5, 1, 8, 8)
    x[:, 0, 0, 0] = torch.tensor([0.0, 3, 9, 3, 1])
    labels = classify(x, _Fixed(), batch_size=2)
    assert labels.dtype == torch.int64 and labels.tolist() == [0, 3, 9, 3, 1]
    assert classify(x[:, 0].numpy(), _Fixed()).tolist() == [0, 3, 9, 3, 1]  # (n, H, W) arrays too


def test_group_share_and_interval():
    labels = np.array([0] * 80 + [7] * 20)
    result = group_share(labels, range(5, 10), n_bootstrap=500, random_state=0)
    assert isinstance(result, GroupShare) and result.n == 100
    assert result.share == pytest.approx(0.2)
    assert result.ci_low < 0.2 < result.ci_high and result.ci_high - result.ci_low < 0.25
    assert result == group_share(torch.as_tensor(labels), [9, 8, 7, 6, 5], n_bootstrap=500, random_state=0)


# ----------------------------------------------------------------------------- loss-threshold attack
def test_loss_threshold_advantage_by_hand():
    members, nonmembers = np.array([1.0, 2.0, 3.0, 6.0]), np.array([2.0, 4.0, 5.0, 7.0])
    # threshold = mean member loss 3: members 3/4 flagged, non-members 1/4
    assert loss_threshold_advantage(members, nonmembers) == pytest.approx(0.5)
    assert loss_threshold_advantage(members, nonmembers, threshold=1.5) == pytest.approx(0.25)
    assert loss_threshold_advantage(torch.as_tensor(members), nonmembers) == pytest.approx(0.5)


def test_loss_threshold_advantage_is_at_most_the_best_threshold_and_near_zero_without_signal():
    rng = np.random.default_rng(0)
    members, nonmembers = rng.normal(size=500), rng.normal(size=500)
    fixed = loss_threshold_advantage(members, nonmembers)
    assert abs(fixed) < 0.1
    best = membership_inference_advantage(-members, -nonmembers, n_bootstrap=20).advantage
    assert fixed <= best + 1e-12


# ----------------------------------------------------------------------------- detector
def test_detector_separates_shifted_features_and_generalises_to_what_it_saw():
    from genlab.base import NotFittedError
    from genlab.metrics import RealFakeDetector

    rng = np.random.default_rng(0)
    real, fake, far = rng.normal(size=(200, 4)), rng.normal(size=(200, 4)) + 1.5, rng.normal(size=(200, 4)) + 3.0
    detector = RealFakeDetector()
    with pytest.raises(NotFittedError):
        detector.score(real, fake)
    assert detector.fit(real, fake) is detector and detector.n_features_in_ == 4
    fresh_real, fresh_fake = rng.normal(size=(200, 4)), rng.normal(size=(200, 4)) + 1.5
    assert detector.score(fresh_real, fresh_fake) > 0.85
    assert detector.score(fresh_real, far) > detector.score(fresh_real, fresh_fake) - 0.05  # further fakes: easier
    probabilities = detector.predict_proba_real(fresh_real)
    assert probabilities.shape == (200,) and ((0 <= probabilities) & (probabilities <= 1)).all()
    # indistinguishable sets: near chance
    same = RealFakeDetector(classifier="mlp").fit(rng.normal(size=(200, 4)), rng.normal(size=(200, 4)))
    assert abs(same.score(rng.normal(size=(300, 4)), rng.normal(size=(300, 4))) - 0.5) < 0.1


def test_detector_on_images_uses_the_extractor():
    from genlab.metrics import RealFakeDetector

    class Mean(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(len(x), -1).mean(1, keepdim=True)

    bright, dark = torch.full((20, 1, 8, 8), 9.0) + torch.rand(20, 1, 8, 8), torch.rand(20, 1, 8, 8)
    detector = RealFakeDetector(extractor=Mean()).fit(bright, dark)
    assert detector.score(bright, dark) == 1.0
