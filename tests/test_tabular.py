"""Synthetic tables: Gaussian copula, tabular VAE, utility and fidelity."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from genlab import tabular
from genlab.train import Trainer


def _table(n=400, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal([0, 0], [[1, 0.8], [0.8, 1]], size=n)
    return np.column_stack([np.exp(z[:, 0]), z[:, 1] * 3 + 10])   # a skewed column and a shifted one


def test_copula_keeps_marginals_range_and_rank_correlation():
    from scipy.stats import spearmanr

    x = _table()
    model = tabular.GaussianCopula(device="cpu").fit(x)
    s, labels = model.sample(4000, random_state=0)
    assert labels is None and isinstance(s, np.ndarray) and s.shape == (4000, 2)
    assert s.min(0).round(9).tolist() >= x.min(0).round(9).tolist() and np.all(s.max(0) <= x.max(0) + 1e-9)
    assert tabular.fidelity(x, s).ks_max < 0.05
    assert spearmanr(s[:, 0], s[:, 1]).statistic == pytest.approx(spearmanr(x[:, 0], x[:, 1]).statistic, abs=0.05)
    again, _ = model.sample(4000, random_state=0)
    assert np.array_equal(s, again)
    s_t, _ = tabular.GaussianCopula(device="cpu").fit(torch.as_tensor(x)).sample(3, random_state=0)
    assert isinstance(s_t, torch.Tensor)


def test_copula_refuses_to_sample_before_fit():
    with pytest.raises(ValueError, match="not fitted"):
        tabular.GaussianCopula().sample(2)


def test_tabular_vae_trains_and_samples_standardised_rows():
    torch.manual_seed(0)
    x = _table(300)
    z = torch.tensor((x - x.mean(0)) / x.std(0), dtype=torch.float32)
    vae = tabular.TabularVAE(2, latent_dim=2, hidden=16)
    history = Trainer(vae, lr=1e-2, batch_size=64, device="cpu", progress=False).fit(z, epochs=40)
    assert history.train_loss[-1] < history.train_loss[0]
    s = vae.sample(2000, random_state=0)
    assert s.shape == (2000, 2) and torch.equal(s, vae.sample(2000, random_state=0))
    assert np.corrcoef(s.numpy(), rowvar=False)[0, 1] > 0.4         # the dependence is learned
    assert vae.log_prob(z).shape == (300,)


def test_utility_and_fidelity_on_a_perfect_copy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] > 0).astype(int)
    u = tabular.train_synthetic_test_real(LogisticRegression(), x[:100], y[:100], x[:100], y[:100], x[100:], y[100:])
    assert u.real == u.synthetic and u.gap == 0.0 and u.real > 0.9
    f = tabular.fidelity(x, x)
    assert f.ks_mean == 0.0 and f.correlation_gap == 0.0
    assert tabular.fidelity(x, x + 5).ks_mean > 0.9


def test_nearest_level():
    assert tabular.nearest_level(np.array([-0.2, 0.4, 0.6, 3.0]), [0.0, 1.0]).tolist() == [0, 0, 1, 1]
