"""Bad input to the use-case modules: genlab.text, genlab.tabular, genlab.inpainting, hmm.profile_hmm (table-driven)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from badinput import BAD_ARRAYS, BAD_SIZES, Case, assert_clear_error
from sklearn.linear_model import LogisticRegression

from genlab import inpainting, tabular, text
from genlab.hmm import profile_hmm

COVERED = {
    "hmm.profile_hmm",
    "inpainting.half_mask", "inpainting.inpaint", "inpainting.psnr",
    "tabular.GaussianCopula", "tabular.GaussianCopula.fit", "tabular.GaussianCopula.sample",
    "tabular.TabularVAE", "tabular.TabularVAE.log_prob", "tabular.TabularVAE.loss", "tabular.TabularVAE.sample",
    "tabular.fidelity", "tabular.nearest_level", "tabular.train_synthetic_test_real",
    "text.CharModel", "text.CharModel.log_prob", "text.CharModel.loss", "text.CharModel.sample",
    "text.CharModel.score_text", "text.NGramModel", "text.NGramModel.fit", "text.NGramModel.sample",
    "text.NGramModel.score", "text.NGramModel.score_samples", "text.as_symbols", "text.bits_per_character",
    "text.decode_text", "text.encode_text", "text.make_windows", "text.normalize_text", "text.split_blocks",
    "text.stdlib_docstring_corpus",
}

SEQ = np.array([0, 1, 2, 1, 0, 2, 2, 1])
ROWS = np.random.default_rng(0).normal(size=(20, 3))
LABELS = np.arange(20) % 2


def _ngram():
    return text.NGramModel(order=2, n_symbols=3).fit(SEQ)


def _char():
    net = text.CharModel(3, embed_dim=4, channels=4, n_layers=1)
    net.mark_updated()
    return net


def _tab_vae():
    vae = tabular.TabularVAE(3, latent_dim=2, hidden=4)
    vae.mark_updated()
    return vae


class _Model:
    def encode(self, x):
        return x.flatten(1), torch.zeros_like(x.flatten(1))

    def decode(self, z, sample=False, random_state=None):
        return z.reshape(-1, 1, 2, 2)


IMG = torch.zeros(2, 1, 2, 2)
MASK = torch.ones(1, 2, 2, dtype=torch.bool)
tstr = tabular.train_synthetic_test_real

CASES = [
    # text: corpus and vocabulary
    Case("stdlib_docstring_corpus", lambda: text.stdlib_docstring_corpus("json"), "modules"),
    Case("stdlib_docstring_corpus", lambda: text.stdlib_docstring_corpus(()), "modules"),
    Case("stdlib_docstring_corpus", lambda: text.stdlib_docstring_corpus(("no_such_module_xyz",)), "modules"),
    Case("stdlib_docstring_corpus", lambda: text.stdlib_docstring_corpus((3,)), "modules"),
    *[Case("stdlib_docstring_corpus", lambda b=b: text.stdlib_docstring_corpus(("json",), max_chars=b), "max_chars",
           repr(b)) for b in (0, 2.5, True)],
    Case("normalize_text", lambda: text.normalize_text(b"abc"), "text"),
    Case("normalize_text", lambda: text.normalize_text(""), "text"),
    Case("normalize_text", lambda: text.normalize_text("abc", replacement="??"), "replacement"),
    Case("normalize_text", lambda: text.normalize_text("abc", alphabet="aab"), "alphabet"),
    Case("encode_text", lambda: text.encode_text("caf\u00e9"), "alphabet"),
    Case("encode_text", lambda: text.encode_text(3), "text"),
    Case("decode_text", lambda: text.decode_text([0, 200]), "symbols"),
    Case("decode_text", lambda: text.decode_text("abc"), "symbols"),
    Case("as_symbols", lambda: text.as_symbols([0.5, 1.0]), "X"),
    Case("as_symbols", lambda: text.as_symbols([-1, 1]), "X"),
    Case("as_symbols", lambda: text.as_symbols(np.zeros((3, 2))), "X"),
    Case("as_symbols", lambda: text.as_symbols([]), "X"),
    Case("as_symbols", lambda: text.as_symbols([0, 5], n_symbols=3), "X"),
    Case("as_symbols", lambda: text.as_symbols([True, False]), "X"),
    Case("make_windows", lambda: text.make_windows(SEQ, 0), "length"),
    Case("make_windows", lambda: text.make_windows(SEQ, 20), "length"),
    Case("make_windows", lambda: text.make_windows(SEQ, 2, stride=0), "stride"),
    Case("make_windows", lambda: text.make_windows([0.5], 1), "symbols"),
    Case("split_blocks", lambda: text.split_blocks(SEQ, holdout=0.0), "holdout"),
    Case("split_blocks", lambda: text.split_blocks(SEQ, holdout=0.1, block=0), "block"),
    Case("split_blocks", lambda: text.split_blocks(SEQ, holdout=0.1, block=4), "block"),
    Case("bits_per_character", lambda: text.bits_per_character([0.5]), "log_probs"),
    Case("bits_per_character", lambda: text.bits_per_character([float("nan")]), "log_probs"),
    Case("bits_per_character", lambda: text.bits_per_character([]), "log_probs"),
    Case("bits_per_character", lambda: text.bits_per_character("a"), "log_probs"),
    # n-gram
    Case("NGramModel", lambda: text.NGramModel(order=0).fit(SEQ), "order"),
    Case("NGramModel", lambda: text.NGramModel(order=9).fit(SEQ), "order"),
    Case("NGramModel", lambda: text.NGramModel(k=0.0).fit(SEQ), "k"),
    Case("NGramModel", lambda: text.NGramModel(k=float("nan")).fit(SEQ), "k"),
    Case("NGramModel", lambda: text.NGramModel(n_symbols=0).fit(SEQ), "n_symbols"),
    Case("NGramModel.fit", lambda: text.NGramModel(n_symbols=2).fit(SEQ), "X"),
    Case("NGramModel.fit", lambda: text.NGramModel().fit("abc"), "X"),
    Case("NGramModel.fit", lambda: text.NGramModel().fit(np.zeros((4, 2))), "X"),
    Case("NGramModel.score_samples", lambda: _ngram().score_samples([0, 7]), "X"),
    Case("NGramModel.score_samples", lambda: _ngram().score_samples([0.5]), "X"),
    Case("NGramModel.score", lambda: _ngram().score([]), "X"),
    Case("NGramModel.score", lambda: text.NGramModel().score(SEQ), "fitted"),
    *[Case("NGramModel.sample", lambda b=b: _ngram().sample(b), "n_samples", repr(b)) for b in BAD_SIZES],
    Case("NGramModel.sample", lambda: _ngram().sample(3, random_state=-1), "random_state"),
    Case("NGramModel.sample", lambda: _ngram().sample(3, prefix=[9]), "prefix"),
    # the character network
    Case("CharModel", lambda: text.CharModel(1), "n_symbols"),
    Case("CharModel", lambda: text.CharModel(3, channels=0), "channels"),
    Case("CharModel", lambda: text.CharModel(3, n_layers=0), "n_layers"),
    Case("CharModel", lambda: text.CharModel(3, kernel_size=0), "kernel_size"),
    Case("CharModel", lambda: text.CharModel(3, embed_dim=2.5), "embed_dim"),
    Case("CharModel", lambda: text.CharModel(3, dropout=1.0), "dropout"),
    Case("CharModel.loss", lambda: _char().loss(torch.tensor([[0, 5]])), "batch"),
    Case("CharModel.loss", lambda: _char().loss(torch.zeros(2, 2, 2)), "batch"),
    Case("CharModel.log_prob", lambda: _char().log_prob(torch.tensor([[0.5, 1.0]])), "x"),
    Case("CharModel.log_prob", lambda: text.CharModel(3).log_prob(torch.tensor([[0, 1]])), "trained"),
    Case("CharModel.score_text", lambda: _char().score_text([0, 3]), "symbols"),
    Case("CharModel.score_text", lambda: _char().score_text([0, 1], chunk=0), "chunk"),
    *[Case("CharModel.sample", lambda b=b: _char().sample(b), "n_samples", repr(b)) for b in BAD_SIZES],
    Case("CharModel.sample", lambda: _char().sample(2, length=0), "length"),
    Case("CharModel.sample", lambda: _char().sample(2, temperature=0.0), "temperature"),
    Case("CharModel.sample", lambda: _char().sample(2, random_state="a"), "random_state"),
    # tabular
    *[Case("GaussianCopula.fit", lambda b=b: tabular.GaussianCopula(device="cpu").fit(b), "X", str(i))
      for i, b in enumerate(BAD_ARRAYS)],
    Case("GaussianCopula.fit", lambda: tabular.GaussianCopula(device="cpu").fit(ROWS[:1]), "X"),
    Case("GaussianCopula", lambda: tabular.GaussianCopula(shrinkage=2.0, device="cpu").fit(ROWS), "shrinkage"),
    Case("GaussianCopula", lambda: tabular.GaussianCopula(device=3).fit(ROWS), "device"),
    *[Case("GaussianCopula.sample", lambda b=b: tabular.GaussianCopula(device="cpu").fit(ROWS).sample(b),
           "n_samples", repr(b)) for b in BAD_SIZES],
    Case("GaussianCopula.sample", lambda: tabular.GaussianCopula().sample(2), "fitted"),
    Case("TabularVAE", lambda: tabular.TabularVAE(0), "n_features"),
    Case("TabularVAE", lambda: tabular.TabularVAE(3, latent_dim=0), "latent_dim"),
    Case("TabularVAE", lambda: tabular.TabularVAE(3, hidden=-1), "hidden"),
    Case("TabularVAE", lambda: tabular.TabularVAE(3, n_layers=0), "n_layers"),
    Case("TabularVAE", lambda: tabular.TabularVAE(3, min_log_sigma=float("nan")), "min_log_sigma"),
    Case("TabularVAE.loss", lambda: _tab_vae().loss(torch.zeros(4, 2)), "batch"),
    Case("TabularVAE.loss", lambda: _tab_vae().loss(torch.full((4, 3), float("nan"))), "batch"),
    Case("TabularVAE.log_prob", lambda: _tab_vae().log_prob("rows"), "x"),
    Case("TabularVAE.log_prob", lambda: tabular.TabularVAE(3).log_prob(ROWS), "trained"),
    *[Case("TabularVAE.sample", lambda b=b: _tab_vae().sample(b), "n_samples", repr(b)) for b in BAD_SIZES],
    Case("TabularVAE.sample", lambda: _tab_vae().sample(2, random_state=1.5), "random_state"),
    Case("train_synthetic_test_real", lambda: tstr("clf", ROWS, LABELS, ROWS, LABELS, ROWS, LABELS), "classifier"),
    Case("train_synthetic_test_real", lambda: tstr(LogisticRegression(), ROWS, LABELS, ROWS[:, :2], LABELS, ROWS,
                                                   LABELS), "X_synthetic"),
    Case("train_synthetic_test_real", lambda: tstr(LogisticRegression(), ROWS, LABELS[:5], ROWS, LABELS, ROWS,
                                                   LABELS), "y_train"),
    Case("train_synthetic_test_real", lambda: tstr(LogisticRegression(), ROWS, LABELS, ROWS, LABELS * 0, ROWS,
                                                   LABELS), "y_synthetic"),
    Case("train_synthetic_test_real", lambda: tstr(LogisticRegression(), ROWS, LABELS, ROWS, LABELS,
                                                   np.full((3, 3), np.nan), LABELS[:3]), "X_test"),
    Case("fidelity", lambda: tabular.fidelity(ROWS, ROWS[:, :2]), "synthetic"),
    Case("fidelity", lambda: tabular.fidelity(ROWS[:1], ROWS), "real"),
    Case("fidelity", lambda: tabular.fidelity("a", ROWS), "real"),
    Case("nearest_level", lambda: tabular.nearest_level([0.1, np.nan], [0, 1]), "values"),
    Case("nearest_level", lambda: tabular.nearest_level([0.1], []), "levels"),
    # inpainting
    Case("half_mask", lambda: inpainting.half_mask((8, 8)), "image_shape"),
    Case("half_mask", lambda: inpainting.half_mask((1, 0, 8)), "image_shape"),
    Case("half_mask", lambda: inpainting.half_mask((1, 8, 8), keep="middle"), "keep"),
    Case("inpaint", lambda: inpainting.inpaint(object(), IMG, MASK), "model"),
    Case("inpaint", lambda: inpainting.inpaint(_Model(), torch.zeros(2, 2), MASK), "images"),
    Case("inpaint", lambda: inpainting.inpaint(_Model(), IMG, torch.ones(3, 3, dtype=torch.bool)), "mask"),
    Case("inpaint", lambda: inpainting.inpaint(_Model(), IMG, torch.full((1, 2, 2), 0.5)), "mask"),
    Case("inpaint", lambda: inpainting.inpaint(_Model(), IMG, MASK, n_steps=0), "n_steps"),
    Case("inpaint", lambda: inpainting.inpaint(_Model(), IMG, MASK, fill=float("nan")), "fill"),
    Case("inpaint", lambda: inpainting.inpaint(_Model(), IMG, MASK, fill=torch.zeros(3)), "fill"),
    Case("inpaint", lambda: inpainting.inpaint(_Model(), IMG, MASK, sample=1), "sample"),
    Case("inpaint", lambda: inpainting.inpaint(_Model(), IMG, MASK, integer_levels="no"), "integer_levels"),
    Case("psnr", lambda: inpainting.psnr(IMG, torch.zeros(1, 1, 2, 2), data_range=1.0), "shape"),
    Case("psnr", lambda: inpainting.psnr(IMG, IMG, data_range=0.0), "data_range"),
    Case("psnr", lambda: inpainting.psnr(IMG, IMG, data_range=1.0, mask=~MASK), "mask"),
    Case("psnr", lambda: inpainting.psnr("a", IMG, data_range=1.0), "reference"),
    # profile HMM
    Case("profile_hmm", lambda: profile_hmm(1), "n_match"),
    Case("profile_hmm", lambda: profile_hmm(5, conservation=1.5), "conservation"),
    Case("profile_hmm", lambda: profile_hmm(5, p_insert=0.9), "p_insert"),
    Case("profile_hmm", lambda: profile_hmm(5, p_delete=-0.1), "p_delete"),
    Case("profile_hmm", lambda: profile_hmm(5, p_extend=1.0), "p_extend"),
    Case("profile_hmm", lambda: profile_hmm(5, random_state=-3), "random_state"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input_raises_a_clear_error(case):
    assert_clear_error(case)
