
import numpy as np
import pytest
import torch

from genlab import data


def test_digits_split_sizes_and_levels():
    sizes = {"train": 1000, "val": 350, "test": 447}
    seen = []
    for split, size in sizes.items():
        images, labels = data.load_digits(split)
        assert images.shape == (size, 1, 8, 8)
        assert images.dtype == torch.float32 and labels.dtype == torch.int64
        assert images.min() >= 0 and images.max() <= 16
        assert torch.equal(images, images.round())
        seen.append(images)
    # The split follows scikit-learn's order: first 1000 / next 350 / last 447.
    from sklearn.datasets import load_digits

    raw = load_digits().data
    assert np.array_equal(seen[2].reshape(-1, 64).numpy(), raw[-447:])


def test_unknown_split():
    with pytest.raises(ValueError, match="unknown split"):
        data.load_digits("dev")
    with pytest.raises(ValueError, match="unknown split"):
        data.load_mnist("validation")


def test_mnist5k_is_stratified_and_disjoint():
    parts = {split: data.load_mnist(split) for split in data.SPLITS}
    counts = {"train": 350, "val": 50, "test": 100}
    for split, (images, labels) in parts.items():
        assert images.shape == (10 * counts[split], 1, 28, 28)
        assert 0.0 <= images.min() and images.max() <= 1.0
        assert torch.bincount(labels, minlength=10).tolist() == [counts[split]] * 10
    flat = {split: {img.numpy().tobytes() for img in images} for split, (images, _) in parts.items()}
    assert not flat["train"] & flat["test"]
    assert not flat["train"] & flat["val"]


def _make_idx_folder(root, n_train=30, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    files = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in files.items():
        data.write_idx(root / name, array)
    checksums = {name: data.md5sum(root / name) for name in files}
    return files, checksums


def test_idx_round_trip(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.idx", "b.idx.gz"):
        data.write_idx(tmp_path / name, array)
        assert np.array_equal(data.read_idx(tmp_path / name), array)


def test_read_idx_rejects_garbage(tmp_path):
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"not an idx file")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(bad)
    short = tmp_path / "short.idx"
    short.write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="payload"):
        data.read_idx(short)
    with pytest.raises(FileNotFoundError):
        data.read_idx(tmp_path / "missing.idx")


def test_fashion_mnist_from_idx_files(tmp_path):
    files, checksums = _make_idx_folder(tmp_path)
    x_train, y_train = data.load_fashion_mnist("train", tmp_path, checksums=checksums)
    x_val, _ = data.load_fashion_mnist("val", tmp_path, checksums=checksums)
    x_test, y_test = data.load_fashion_mnist("test", tmp_path, checksums=checksums)
    assert len(x_train) + len(x_val) == 30 and len(x_test) == 10
    assert x_train.shape[1:] == (1, 28, 28) and x_train.max() <= 1.0
    expected = files["train-images-idx3-ubyte.gz"][: len(x_train)].astype(np.float32) / 255
    assert np.allclose(x_train[:, 0].numpy(), expected)
    assert np.array_equal(y_test.numpy(), files["t10k-labels-idx1-ubyte.gz"])


def test_full_mnist_root_uses_the_same_reader(tmp_path, monkeypatch):
    _, checksums = _make_idx_folder(tmp_path)
    monkeypatch.setattr(data, "MNIST_FILES", checksums)
    images, _ = data.load_mnist("test", root=tmp_path)
    assert images.shape == (10, 1, 28, 28)


def test_missing_files_name_the_folder_and_files(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        data.load_fashion_mnist("train", tmp_path / "nowhere")
    message = str(info.value)
    assert "nowhere" in message and "train-images-idx3-ubyte.gz" in message and "download=True" in message


def test_bad_checksum_is_reported(tmp_path):
    _make_idx_folder(tmp_path)
    # The published checksums cannot match these synthetic files.
    with pytest.raises(ValueError, match="checksum mismatch"):
        data.load_fashion_mnist("train", tmp_path)


def test_download_writes_atomically_and_checks_md5(tmp_path):
    source = tmp_path / "mirror"
    files, checksums = _make_idx_folder(source)
    target = tmp_path / "data"
    images, _ = data.load_fashion_mnist("test", target, download=True, checksums=checksums,
                                        mirror=source.as_uri() + "/")
    assert images.shape == (10, 1, 28, 28)
    assert sorted(p.name for p in target.iterdir()) == sorted(files)
    wrong = dict(checksums)
    wrong["t10k-labels-idx1-ubyte.gz"] = "0" * 32
    other = tmp_path / "other"
    with pytest.raises(ValueError, match="checksum mismatch"):
        data.load_fashion_mnist("test", other, download=True, checksums=wrong, mirror=source.as_uri() + "/")
    # The file that failed its check was never renamed into place, and no temp file is left.
    assert not (other / "t10k-labels-idx1-ubyte.gz").exists()
    assert not list(other.glob("*.part"))


def test_write_idx_rejects_non_uint8(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        data.write_idx(tmp_path / "x.idx", np.zeros(3, dtype=np.float32))


@pytest.mark.parametrize("name", data.TOY_DATASETS)
def test_toy_sets_are_seeded(name):
    a = data.make_toy_2d(name, 200, seed=1)
    b = data.make_toy_2d(name, 200, seed=1)
    c = data.make_toy_2d(name, 200, seed=2)
    assert a.shape == (200, 2) and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_toy_bad_input():
    with pytest.raises(ValueError, match="unknown toy dataset"):
        data.make_toy_2d("spiral")
    with pytest.raises(ValueError, match="n_samples"):
        data.make_toy_2d("moons", 0)
    with pytest.raises(ValueError, match="noise"):
        data.make_toy_2d("moons", 10, noise=float("nan"))
