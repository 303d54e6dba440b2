"""Character-level generative models of text (and of any string over a small alphabet).

* An offline corpus: :func:`stdlib_docstring_corpus` collects the docstrings of a fixed list of
  Python standard-library modules, in a fixed order, so every machine with the same Python
  version builds the same text without a download.
* A character vocabulary: :data:`ALPHABET` (newline and printable ASCII), :func:`normalize_text`,
  :func:`encode_text`, :func:`decode_text`, and :func:`make_windows` (training windows for a network).
* Models: :class:`NGramModel` (counts with add-k smoothing, scikit-learn style) and
  :class:`CharModel` (a small causal-convolution network trained with :class:`genlab.train.Trainer`).
* The unit: :func:`bits_per_character`, the mean negative log2-probability per character of held-out text.

Symbols are integers ``0..n_symbols-1``; a sequence is one long 1-D array (or ``(n, 1)``, as for
:class:`genlab.hmm.CategoricalHMM`), so the same models work for text and for amino-acid strings.
"""
from __future__ import annotations

import importlib
import inspect
import math
from typing import Any, Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin
from torch import nn

from .base import GenerativeModule, check_is_fitted
from .layers import CausalConv1d, eval_mode
from .validation import (
    _to_tensor,
    as_output,
    check_float,
    check_int,
    check_positive_float,
    check_random_state,
)

__all__ = ["ALPHABET", "DOCSTRING_MODULES", "stdlib_docstring_corpus", "normalize_text", "encode_text", "decode_text",
           "as_symbols", "make_windows", "split_blocks", "bits_per_character", "NGramModel", "CharModel"]

#: Newline, then the 95 printable ASCII characters (space to ``~``): 96 symbols, newline is symbol 0.
ALPHABET = "\n" + "".join(chr(code) for code in range(32, 127))
#: The modules whose docstrings form the corpus, in this order (all ship with CPython).
DOCSTRING_MODULES = (
    "abc", "argparse", "base64", "bisect", "calendar", "collections", "contextlib", "copy", "csv", "dataclasses",
    "datetime", "decimal", "difflib", "enum", "fractions", "functools", "glob", "gzip", "heapq", "html", "inspect",
    "io", "ipaddress", "itertools", "json", "logging", "operator", "os", "pathlib", "pickle", "pprint", "queue",
    "random", "re", "shlex", "shutil", "statistics", "string", "subprocess", "tarfile", "tempfile", "textwrap",
    "threading", "tokenize", "typing", "unittest", "uuid", "warnings", "zipfile",
)


def _check_text(text: Any, name: str = "text") -> str:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a string, got {type(text).__name__}")
    if not text:
        raise ValueError(f"{name} is empty")
    return text


def _check_alphabet(alphabet: Any) -> str:
    alphabet = _check_text(alphabet, "alphabet")
    if len(set(alphabet)) != len(alphabet):
        raise ValueError("alphabet must not repeat a character")
    return alphabet


def normalize_text(text: str, alphabet: str = ALPHABET, *, replacement: str = "?") -> str:
    """``text`` with tabs as four spaces and every character outside ``alphabet`` replaced by ``replacement``."""
    text = _check_text(text)
    alphabet = _check_alphabet(alphabet)
    if not isinstance(replacement, str) or len(replacement) != 1 or replacement not in alphabet:
        raise ValueError(f"replacement must be one character of the alphabet, got {replacement!r}")
    allowed = set(alphabet)
    text = text.replace("\t", "    ").replace("\r\n", "\n")
    return "".join(c if c in allowed else replacement for c in text)


def stdlib_docstring_corpus(modules: Sequence[str] = DOCSTRING_MODULES, *, max_chars: int | None = None) -> str:
    """Docstrings of Python standard-library modules, collected in a fixed order and normalised.

    For each module (in the order given): its own docstring, then the docstrings of its public
    classes and functions defined in that module, sorted by name, then those of each class's public
    methods, sorted by name. Docstrings are cleaned with :func:`inspect.cleandoc`, joined by a blank
    line and passed through :func:`normalize_text`. The text depends on the Python version only.

    Args:
        modules: names of importable modules.
        max_chars: keep only the first ``max_chars`` characters (None: all).
    """
    if isinstance(modules, (str, bytes)) or not isinstance(modules, Sequence) or not modules:
        raise TypeError(f"modules must be a non-empty sequence of module names, got {modules!r}")
    if max_chars is not None:
        max_chars = check_int(max_chars, "max_chars", minimum=1)
    parts: list[str] = []
    for name in modules:
        if not isinstance(name, str):
            raise TypeError(f"modules must hold module names (strings), got {name!r}")
        try:
            module = importlib.import_module(name)
        except ImportError as err:
            raise ValueError(f"modules: cannot import {name!r}: {err}") from err
        docs = [module.__doc__]
        for attr, obj in sorted(vars(module).items()):
            if attr.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isclass(obj) or inspect.isfunction(obj):
                docs.append(obj.__doc__)
            if inspect.isclass(obj):
                docs.extend(member.__doc__ for key, member in sorted(vars(obj).items())
                            if not key.startswith("_") and inspect.isfunction(member))
        parts.extend(inspect.cleandoc(doc) for doc in docs if isinstance(doc, str) and doc.strip())
    text = normalize_text("\n\n".join(parts) + "\n")
    return text[:max_chars] if max_chars is not None else text


def encode_text(text: str, alphabet: str = ALPHABET) -> torch.Tensor:
    """Symbols (``int64`` tensor) of ``text``; every character must be in ``alphabet`` (see :func:`normalize_text`)."""
    text = _check_text(text)
    alphabet = _check_alphabet(alphabet)
    index = {c: i for i, c in enumerate(alphabet)}
    unknown = sorted(set(text) - set(index))
    if unknown:
        raise ValueError(f"text has characters outside the alphabet: {unknown[:10]!r}; pass it through "
                         "normalize_text first")
    return torch.tensor([index[c] for c in text], dtype=torch.long)


def as_symbols(X: Any, n_symbols: int | None = None, name: str = "X") -> torch.Tensor:
    """A sequence of integer symbols as a 1-D ``int64`` tensor: ``(n,)`` or ``(n, 1)``, values ``0..n_symbols-1``."""
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{name} must be an array of integer symbols, got a string (use encode_text)")
    tensor = _to_tensor(X, name)
    if tensor.ndim == 2 and tensor.shape[1] == 1:
        tensor = tensor[:, 0]
    if tensor.ndim != 1:
        raise ValueError(f"{name} must be a sequence of symbols, shape (n,) or (n, 1), got {tuple(tensor.shape)}")
    if tensor.numel() == 0:
        raise ValueError(f"{name} is empty")
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer symbols, got dtype {tensor.dtype}")
    if tensor.is_floating_point():
        if not torch.isfinite(tensor).all() or not torch.equal(tensor, tensor.round()):
            raise ValueError(f"{name} must hold integer symbols, got non-integer values")
    tensor = tensor.long()
    if int(tensor.min()) < 0:
        raise ValueError(f"{name} must hold symbols >= 0, got {int(tensor.min())}")
    if n_symbols is not None and int(tensor.max()) >= n_symbols:
        raise ValueError(f"{name} has symbol {int(tensor.max())}, but there are only {n_symbols} symbols")
    return tensor


def decode_text(symbols: Any, alphabet: str = ALPHABET) -> str:
    """The string of a sequence of symbols (inverse of :func:`encode_text`)."""
    alphabet = _check_alphabet(alphabet)
    return "".join(alphabet[i] for i in as_symbols(symbols, len(alphabet), "symbols").tolist())


def make_windows(symbols: Any, length: int, *, stride: int | None = None) -> torch.Tensor:
    """Windows ``(m, length)`` of a long sequence, starting every ``stride`` symbols (default ``length``)."""
    sequence = as_symbols(symbols, name="symbols")
    length = check_int(length, "length", minimum=1)
    stride = length if stride is None else check_int(stride, "stride", minimum=1)
    if len(sequence) < length:
        raise ValueError(f"length={length} is longer than the sequence ({len(sequence)} symbols)")
    return sequence.unfold(0, length, stride).contiguous()


def bits_per_character(log_probs: Any) -> float:
    """Mean negative log2-probability per character from per-character log-probabilities in **nats**."""
    tensor = _to_tensor(log_probs, "log_probs").double().reshape(-1)
    if tensor.numel() == 0:
        raise ValueError("log_probs is empty")
    if torch.isnan(tensor).any() or (tensor > 1e-9).any():
        raise ValueError("log_probs must be log-probabilities in nats (<= 0, no NaN)")
    return float(-tensor.mean() / math.log(2.0))


# ----------------------------------------------------------------------------- n-gram model
class NGramModel(DensityMixin, BaseEstimator):
    """Order-``n`` Markov model of symbols with add-``k`` (Lidstone) smoothing.

    ``p(x_t = s | previous order-1 symbols) = (c(context, s) + k) / (c(context) + k V)``, counts ``c``
    from the training sequence, ``V = n_symbols``. The sequence is padded on the left with
    ``order - 1`` copies of symbol 0 (newline for :data:`ALPHABET`), so the first symbols have a context.
    ``order=1`` is the unigram (symbol frequencies), ``k=1`` is Laplace's rule.

    Args:
        order: context length plus one (1..8).
        k: pseudo-count added to every (context, symbol) pair (> 0, so unseen pairs keep some mass).
        n_symbols: alphabet size (None: ``max(X) + 1`` at fit).

    Fitted attributes: ``n_symbols_``, ``n_features_in_`` (1), ``keys_`` and ``counts_`` (the observed
    ``(context, symbol)`` codes, sorted, and their counts), ``context_keys_`` / ``context_counts_``.
    """

    def __init__(self, order: int = 3, k: float = 0.1, n_symbols: int | None = None):
        self.order = order
        self.k = k
        self.n_symbols = n_symbols

    def _check_settings(self) -> tuple[int, float]:
        order = check_int(self.order, "order", minimum=1, maximum=8)
        k = check_positive_float(self.k, "k")
        if self.n_symbols is not None:
            check_int(self.n_symbols, "n_symbols", minimum=1)
        return order, k

    def _contexts(self, x: np.ndarray) -> np.ndarray:
        """Code of the ``order - 1`` symbols before each position (left-padded with symbol 0)."""
        order, v = self.order, self.n_symbols_
        padded = np.concatenate([np.zeros(order - 1, dtype=np.int64), x])
        code = np.zeros(len(x), dtype=np.int64)
        for j in range(order - 1):
            code = code * v + padded[j:j + len(x)]
        return code

    def fit(self, X: Any, y: Any = None) -> NGramModel:
        """Count the (context, symbol) pairs of the sequence ``X`` (``(n,)`` or ``(n, 1)`` integer symbols)."""
        order, _ = self._check_settings()
        x = as_symbols(X, self.n_symbols).cpu().numpy()
        self.n_symbols_ = int(self.n_symbols) if self.n_symbols is not None else int(x.max()) + 1
        if self.n_symbols_ ** order >= 2**62:
            raise ValueError(f"order={order} with {self.n_symbols_} symbols overflows the context codes")
        contexts = self._contexts(x)
        self.keys_, self.counts_ = np.unique(contexts * self.n_symbols_ + x, return_counts=True)
        self.context_keys_, self.context_counts_ = np.unique(contexts, return_counts=True)
        self.n_features_in_ = 1
        return self

    @staticmethod
    def _lookup(keys: np.ndarray, counts: np.ndarray, query: np.ndarray) -> np.ndarray:
        pos = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
        return np.where(keys[pos] == query, counts[pos], 0)

    def _check_fitted(self) -> None:
        check_is_fitted(self, "keys_")

    def score_samples(self, X: Any) -> np.ndarray | torch.Tensor:
        """Log-probability (nats) of each symbol of the sequence ``X`` given the symbols before it."""
        self._check_fitted()
        _, k = self._check_settings()
        x = as_symbols(X, self.n_symbols_).cpu().numpy()
        contexts = self._contexts(x)
        pair = self._lookup(self.keys_, self.counts_, contexts * self.n_symbols_ + x)
        total = self._lookup(self.context_keys_, self.context_counts_, contexts)
        log_p = np.log(pair + k) - np.log(total + k * self.n_symbols_)
        return as_output(torch.as_tensor(log_p), X)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-probability per symbol (nats); ``-score / ln 2`` is bits per character."""
        return float(np.mean(np.asarray(torch.as_tensor(self.score_samples(X)).cpu())))

    def sample(self, n_samples: int = 1, *, random_state: Any = None, prefix: Any = None) -> tuple[np.ndarray, None]:
        """One sequence of ``n_samples`` symbols ``(n_samples, 1)``.

        It continues ``prefix`` (symbols, not included in the output), or the all-zero context when None.
        """
        self._check_fitted()
        _, k = self._check_settings()
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        generator = check_random_state(random_state)
        start = [] if prefix is None else as_symbols(prefix, self.n_symbols_, "prefix").tolist()
        uniforms = torch.rand(n_samples, generator=generator, dtype=torch.float64).numpy()
        v, width = self.n_symbols_, self.order - 1
        history = [0] * width + start
        out = np.empty(n_samples, dtype=np.int64)
        for t in range(n_samples):
            code = 0
            for s in history[len(history) - width:] if width else []:
                code = code * v + s
            counts = self._lookup(self.keys_, self.counts_, code * v + np.arange(v))
            cdf = np.cumsum(counts + k)
            out[t] = min(int(np.searchsorted(cdf, uniforms[t] * cdf[-1], side="right")), v - 1)
            history.append(int(out[t]))
        return out.reshape(-1, 1), None


# ----------------------------------------------------------------------------- a small network
class CharModel(GenerativeModule):
    """A character-level autoregressive network: embedding, a stack of causal convolutions, read-out.

    ``p(x_1..x_T) = prod_t p(x_t | x_<t)``, where each factor sees the last :attr:`receptive_field`
    symbols (a *neural* n-gram: the same finite context as :class:`NGramModel`, but smoothed by shared
    weights instead of counts). The layers are :class:`genlab.layers.CausalConv1d`, the first one
    excluding the current position; symbols before the start of a sequence are symbol 0 (newline).
    Trained on windows ``(batch, T)`` (see :func:`make_windows`) with :class:`genlab.train.Trainer`;
    :meth:`log_prob` is exact (nats per window).

    Args:
        n_symbols: alphabet size (96 for :data:`ALPHABET`, 20 for amino acids).
        embed_dim: size of the symbol embedding.
        channels: feature maps of the hidden layers.
        n_layers: causal convolutions (each adds ``kernel_size - 1`` symbols of context).
        kernel_size: width of each convolution.
        dropout: dropout between the hidden layers while training.
    """

    def __init__(self, n_symbols: int = len(ALPHABET), *, embed_dim: int = 32, channels: int = 128,
                 n_layers: int = 3, kernel_size: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_symbols = check_int(n_symbols, "n_symbols", minimum=2)
        embed_dim = check_int(embed_dim, "embed_dim", minimum=1)
        channels = check_int(channels, "channels", minimum=1)
        n_layers = check_int(n_layers, "n_layers", minimum=1)
        kernel_size = check_int(kernel_size, "kernel_size", minimum=1)
        dropout = check_float(dropout, "dropout", low=0.0, high=1.0, high_inclusive=False)
        self.embed = nn.Embedding(self.n_symbols, embed_dim)
        layers: list[nn.Module] = [CausalConv1d(embed_dim, channels, kernel_size, exclude_current=True)]
        for _ in range(n_layers - 1):
            layers += [nn.ReLU(), nn.Dropout(dropout), CausalConv1d(channels, channels, kernel_size)]
        layers += [nn.ReLU(), nn.Conv1d(channels, self.n_symbols, 1)]
        self.net = nn.Sequential(*layers)
        #: Number of previous symbols each prediction sees.
        self.receptive_field = kernel_size + (n_layers - 1) * (kernel_size - 1)

    def _check_windows(self, x: Any, name: str = "x") -> torch.Tensor:
        tensor = _to_tensor(x, name)
        if tensor.ndim == 1:
            tensor = tensor[None]
        if tensor.ndim != 2 or tensor.shape[1] == 0 or tensor.shape[0] == 0:
            raise ValueError(f"{name} must be windows of symbols (batch, T), got shape {tuple(tensor.shape)}")
        as_symbols(tensor.reshape(-1), self.n_symbols, name)
        return tensor.long().to(self.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, n_symbols, T)`` of ``x[:, t]`` given ``x[:, :t]`` (symbol 0 before the start)."""
        return self.net(self.embed(x).transpose(1, 2))

    def loss(self, batch: Any) -> torch.Tensor:
        """Mean negative log-likelihood per character (nats) of a batch of windows."""
        x = self._check_windows(batch[0] if isinstance(batch, (tuple, list)) else batch, "batch")
        return nn.functional.cross_entropy(self(x), x)

    @torch.no_grad()
    def log_prob(self, x: Any) -> torch.Tensor:
        """Exact log-likelihood (nats) of each window ``(batch, T)``."""
        self.check_fitted("log_prob")
        x = self._check_windows(x)
        with eval_mode(self):
            log_p = torch.log_softmax(self(x), 1)
        return log_p.gather(1, x[:, None]).sum((1, 2))

    @torch.no_grad()
    def score_text(self, symbols: Any, *, chunk: int = 4096) -> torch.Tensor:
        """Log-probability (nats) of each symbol of one long sequence given the symbols before it.

        Each symbol is scored with its full :attr:`receptive_field` of context (chunks overlap by it),
        as :meth:`NGramModel.score_samples` scores with its ``order - 1`` symbols;
        :func:`bits_per_character` turns the result into bits per character.
        """
        self.check_fitted("score_text")
        x = as_symbols(symbols, self.n_symbols, "symbols").to(self.device)
        chunk = check_int(chunk, "chunk", minimum=1)
        field, out = self.receptive_field, []
        with eval_mode(self):
            for s in range(0, len(x), chunk):
                lo = max(0, s - field)
                piece = x[lo:s + chunk][None]
                log_p = torch.log_softmax(self(piece), 1).gather(1, piece[:, None])[0, 0]
                out.append(log_p[s - lo:])
        return torch.cat(out)

    @torch.no_grad()
    def sample(self, n_samples: int, *, length: int = 200, temperature: float = 1.0,
               random_state: int | torch.Generator | None = None) -> torch.Tensor:
        """``n_samples`` sequences ``(n_samples, length)`` drawn symbol by symbol.

        ``temperature`` < 1 sharpens the next-symbol distribution (fewer typos, less variety); 1 is the model.
        """
        self.check_fitted("sample")
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        length = check_int(length, "length", minimum=1)
        temperature = check_positive_float(temperature, "temperature")
        generator = check_random_state(random_state)
        field = self.receptive_field
        x = torch.zeros(n_samples, field + length, dtype=torch.long, device=self.device)
        with eval_mode(self):
            for t in range(field, field + length):
                # the first layer excludes the current position, so the logits at t see x[t-field:t]
                logits = self(x[:, t - field:t + 1])[:, :, -1]
                probs = torch.softmax(logits.double().cpu() / temperature, -1)
                x[:, t] = torch.multinomial(probs, 1, generator=generator)[:, 0].to(self.device)
        return x[:, field:]


def split_blocks(symbols: Any, *, holdout: float = 0.1, block: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a long sequence into (train, held-out) by blocks: every ``round(1 / holdout)``-th block is held out.

    Interleaved blocks keep both parts from the same mixture of sources (a tail split of the docstring
    corpus would hold out only the last modules); each part is the concatenation of its blocks.
    """
    sequence = as_symbols(symbols, name="symbols")
    holdout = check_float(holdout, "holdout", low=0.0, high=0.5, low_inclusive=False)
    block = check_int(block, "block", minimum=1)
    every = max(2, round(1 / holdout))
    n_blocks = math.ceil(len(sequence) / block)
    if n_blocks < every:
        raise ValueError(f"the sequence ({len(sequence)} symbols) has fewer than {every} blocks of {block}: "
                         "use a smaller block")
    held = torch.zeros(len(sequence), dtype=torch.bool)
    for b in range(every - 1, n_blocks, every):
        held[b * block:(b + 1) * block] = True
    return sequence[~held], sequence[held]
