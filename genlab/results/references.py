"""Reference numbers from the literature and reference code: defined once, printed beside genlab's own.

They were **not** measured by genlab; every table labels them as references. Sources:

* Digits (scikit-learn ``load_digits``, 8x8, 17 levels; split train = first 1000, val = next 350,
  test = last 447 in scikit-learn's order): the ``intro_dgm`` reference code (J. Tomczak,
  *Deep Generative Modeling*, 2022, code at github.com/jmtomczak/intro_dgm) and scikit-learn
  baselines run on that split. Test negative log-likelihood in nats per image; bits per dimension
  = nats / (64 ln 2) = nats / 44.36.
* MNIST: binarised MNIST NLL from the IWAE paper (Burda et al. 2016) and NVAE (Vahdat and Kautz
  2020); bits/dim of dequantised 8-bit MNIST from RealNVP (Dinh et al. 2017), Glow (Kingma and
  Dhariwal 2018) and FFJORD (Grathwohl et al. 2019). All on the full data, not MNIST-5k.
* Fashion-MNIST FID: Inception features, Lucic et al. (2018); course-trained classifier features,
  fast.ai 2022 part 2 (2,048 samples). Classifier-feature FIDs compare only within one extractor.
"""
from __future__ import annotations

from typing import NamedTuple

__all__ = ["Reference", "REFERENCES", "LEDGER_REFERENCES", "reference_text", "SOURCES"]


class Reference(NamedTuple):
    """A number (or range) from the literature, with its unit and where it comes from."""

    value: str
    unit: str
    source: str
    note: str = ""

    def __str__(self) -> str:
        return f"{self.value} {self.unit}" + (f" ({self.note})" if self.note else "")


SOURCES = {
    "intro_dgm": "intro_dgm reference code (Tomczak, Deep Generative Modeling, 2022), same digits split",
    "sklearn": "scikit-learn baseline on the same digits split",
    "closed form": "closed form",
    "iwae": "Burda et al. 2016 (IWAE), binarised MNIST, full data",
    "nvae": "Vahdat and Kautz 2020 (NVAE), binarised MNIST, full data",
    "flows": "RealNVP / Glow / FFJORD papers, dequantised 8-bit MNIST, full data",
    "lucic": "Lucic et al. 2018, Fashion-MNIST, Inception features",
    "fastai": "fast.ai 2022 part 2, Fashion-MNIST, course-trained classifier features, 2,048 samples",
}

_NATS = "nats/image"

#: ``REFERENCES[dataset][row]``: the leaderboard's row names where a row matches.
REFERENCES: dict[str, dict[str, Reference]] = {
    "digits": {
        "uniform over 17 levels": Reference("181.33", _NATS, SOURCES["closed form"], "64 ln 17"),
        "independent pixels": Reference("106.47", _NATS, SOURCES["intro_dgm"], "smoothed categorical"),
        "categorical mixture K=20": Reference("100.77", _NATS, SOURCES["intro_dgm"], "EM"),
        "Gaussian mixture K=20 (dequantised)": Reference("127.24", _NATS, SOURCES["sklearn"],
                                                         "diag, reg 0.1, uniform dequantisation"),
        "KDE (dequantised)": Reference("149.80", _NATS, SOURCES["sklearn"],
                                       "bandwidth 2.0; its tree sum is approximate, genlab's exact"),
        "VAE": Reference("96.4-97.4", _NATS, SOURCES["intro_dgm"], "-ELBO; Adamax 1e-3, batch 64, early stopping"),
        "hierarchical VAE": Reference("96.2-96.5", _NATS, SOURCES["intro_dgm"]),
        "VampPrior VAE": Reference("~101-102.5", _NATS, SOURCES["intro_dgm"]),
        "integer discrete flow": Reference("~143", _NATS, SOURCES["intro_dgm"]),
        "autoregressive (causal conv)": Reference("86.3-86.8", _NATS, SOURCES["intro_dgm"], "strongest reference"),
        "VAE + causal-conv decoder": Reference("86.3-86.8", _NATS, SOURCES["intro_dgm"],
                                               "the autoregressive model without latents"),
        "autoencoder": Reference("-", "", "no likelihood"),
    },
    "mnist": {
        "VAE": Reference("86.76", _NATS, SOURCES["iwae"], "k = 1"),
        "IWAE k=50": Reference("84.78", _NATS, SOURCES["iwae"]),
        "NVAE": Reference("78.01", _NATS, SOURCES["nvae"]),
        "flows (RealNVP / Glow / FFJORD)": Reference("1.06 / 1.05 / 0.99", "bits/dim", SOURCES["flows"]),
    },
    "fashion_mnist": {
        "FID, Inception (NS-GAN / WGAN / WGAN-GP / VAE)": Reference("26.5 / 21.5 / 24.5 / 43.6", "FID",
                                                                     SOURCES["lucic"]),
        "FID, classifier features (real vs real / DDPM 1000 / DDIM 100 / DDIM 50)": Reference(
            "1.9-2.6 / 3.73 / 3.10 / 4.40", "FID", SOURCES["fastai"]),
    },
}

#: The likelihood ledger's recipe names mapped to the reference row they compare with.
LEDGER_REFERENCES = {"independent_pixels": "independent pixels", "vae": "VAE", "iwae": "hierarchical VAE",
                     "made_vae": "autoregressive (causal conv)", "causal_conv_vae": "VAE + causal-conv decoder"}


def reference_text(dataset: str, row: str) -> str:
    """The reference for ``row`` of ``dataset`` as text, or ``""`` when there is none."""
    for value, name in ((dataset, "dataset"), (row, "row")):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    reference = REFERENCES.get(dataset, {}).get(row)
    return "" if reference is None else str(reference)
