"""Character models: corpus, vocabulary, n-gram counts with add-k smoothing, the causal network."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from genlab import text
from genlab.train import Trainer


def test_corpus_is_deterministic_and_in_the_alphabet():
    a = text.stdlib_docstring_corpus(("json", "textwrap"))
    b = text.stdlib_docstring_corpus(("json", "textwrap"))
    assert a == b and len(a) > 1000 and set(a) <= set(text.ALPHABET)
    assert text.stdlib_docstring_corpus(("json",), max_chars=50) == text.stdlib_docstring_corpus(("json",))[:50]


def test_encode_decode_round_trip_and_normalize():
    s = "Tab\there, caf\u00e9!\n"
    clean = text.normalize_text(s)
    assert clean == "Tab    here, caf?!\n"
    assert text.decode_text(text.encode_text(clean)) == clean
    assert len(text.ALPHABET) == 96 and text.ALPHABET[0] == "\n"


def test_windows_and_block_split():
    x = torch.arange(10) % 3
    w = text.make_windows(x, 4, stride=2)
    assert w.shape == (4, 4) and torch.equal(w[1], x[2:6])
    train, test = text.split_blocks(torch.arange(100) % 5, holdout=0.2, block=10)
    assert len(train) == 80 and len(test) == 20


def _brute_force_bpc(train, test, order, k, v):
    def pairs(seq):
        padded = [0] * (order - 1) + list(seq)
        return [(tuple(padded[t:t + order - 1]), padded[t + order - 1]) for t in range(len(seq))]
    counts, contexts = Counter(pairs(train)), Counter(c for c, _ in pairs(train))
    return -np.mean([math.log2((counts[(c, s)] + k) / (contexts[c] + k * v)) for c, s in pairs(test)])


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_ngram_matches_brute_force_counts(order):
    rng = np.random.default_rng(order)
    train, test = rng.integers(0, 5, 300), rng.integers(0, 5, 80)
    model = text.NGramModel(order=order, k=0.3, n_symbols=6).fit(train)
    got = text.bits_per_character(model.score_samples(test))
    assert got == pytest.approx(_brute_force_bpc(train, test, order, 0.3, 6), rel=1e-10)
    assert model.score(test) == pytest.approx(-got * math.log(2), rel=1e-10)


def test_ngram_probabilities_sum_to_one_and_sampling_follows_the_counts():
    train = np.array([0, 1, 2] * 200)
    model = text.NGramModel(order=2, k=1e-3, n_symbols=3).fit(train)
    x, labels = model.sample(300, random_state=0)
    assert labels is None and x.shape == (300, 1)
    assert np.mean(np.diff(x[:, 0]) % 3 == 1) > 0.98           # the cycle 0 -> 1 -> 2 is learned
    prefix, _ = model.sample(5, random_state=0, prefix=[1])
    assert prefix[0, 0] == 2
    # normalisation: sum over the next symbol of p(s | context) is one for every context
    for c in range(3):
        total = sum(math.exp(model.score_samples(np.array([c, s]))[1]) for s in range(3))
        assert total == pytest.approx(1.0)


def test_ngram_keeps_the_input_type_and_refuses_before_fit():
    model = text.NGramModel(order=2)
    with pytest.raises(ValueError, match="not fitted"):
        model.score_samples(np.array([0, 1]))
    model.fit(torch.tensor([0, 1, 1, 0]))
    assert isinstance(model.score_samples(torch.tensor([0, 1])), torch.Tensor)
    assert isinstance(model.score_samples(np.array([0, 1])), np.ndarray)


def test_bits_per_character_units():
    assert text.bits_per_character(np.full(10, -math.log(2))) == pytest.approx(1.0)


def test_char_model_is_causal_and_log_prob_is_normalised():
    torch.manual_seed(0)
    net = text.CharModel(3, embed_dim=4, channels=8, n_layers=2, kernel_size=3)
    net.mark_updated()
    x = torch.tensor([[0, 1, 2, 1, 0, 2]])
    y = x.clone()
    y[0, 4] = 1
    a, b = torch.log_softmax(net(x), 1), torch.log_softmax(net(y), 1)
    assert torch.allclose(a[..., :5], b[..., :5])        # position t never sees x[t] or the future
    assert not torch.allclose(a[..., 5], b[..., 5])
    every = torch.cartesian_prod(*[torch.arange(3)] * 3)    # all 27 strings of length 3
    assert float(net.log_prob(every).exp().sum()) == pytest.approx(1.0, rel=1e-5)
    assert net.receptive_field == 5


def test_char_model_score_text_equals_log_prob_on_one_window_and_learns():
    torch.manual_seed(0)
    seq = torch.tensor([0, 1, 2] * 100)
    net = text.CharModel(3, embed_dim=4, channels=16, n_layers=2, kernel_size=3)
    Trainer(net, lr=1e-2, batch_size=8, device="cpu", progress=False).fit(text.make_windows(seq, 12), epochs=10)
    window = seq[:12]
    assert float(net.score_text(window, chunk=5).sum()) == pytest.approx(float(net.log_prob(window)[0]), rel=1e-5)
    assert text.bits_per_character(net.score_text(seq)) < 0.2
    sample = net.sample(2, length=30, random_state=0)
    assert sample.shape == (2, 30) and torch.equal(sample, net.sample(2, length=30, random_state=0))
