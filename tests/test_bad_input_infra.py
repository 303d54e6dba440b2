"""Bad input to genlab's infrastructure: metrics, data, io, checkpoints, device, results (table-driven)."""
from __future__ import annotations

import gzip
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from badinput import BAD_SEEDS, BAD_SIZES, Case, assert_clear_error

from genlab import data, device, io, metrics, results, train
from genlab.results import leaderboard, ledger, timing

COVERED = {
    "metrics.fid", "metrics.kid", "metrics.frechet_distance", "metrics.inception_score", "metrics.precision_recall",
    "metrics.density_coverage", "metrics.c2st", "metrics.memorization", "metrics.copy_rate_test",
    "metrics.extract_features",
    "metrics.nats_to_bits_per_dim", "metrics.bits_per_dim_to_nats", "metrics.real_floor",
    "metrics.get_feature_extractor", "metrics.train_classifier", "metrics.classifier_cache_path",
    "metrics.inception_extractor", "metrics.knn_radii",
    "data.load_digits", "data.load_mnist", "data.load_fashion_mnist", "data.read_idx", "data.make_toy_2d",
    "io.atomic_write", "train.load_checkpoint", "device.seed_everything", "device.get_device",
    "results.save_results", "results.load_results", "results.leaderboard.build_leaderboard",
    "results.leaderboard.load_leaderboard", "results.leaderboard.Dataset", "results.ledger.build_ledger",
    "results.ledger.train_digits", "results.timing.best_time",
}

X = np.random.default_rng(0).normal(size=(30, 2))
DIGITS = torch.zeros(4, 1, 8, 8)


def _cases() -> list[Case]:
    cases = []
    for bad in BAD_SIZES:
        if bad is None:
            continue
        cases += [Case("metrics.precision_recall", lambda b=bad: metrics.precision_recall(X, X, batch_size=b),
                       "batch_size", repr(bad)),
                  Case("metrics.kid", lambda b=bad: metrics.kid(X, X, n_subsets=b), "n_subsets", repr(bad)),
                  Case("metrics.inception_score", lambda b=bad: metrics.inception_score(np.eye(10), splits=b),
                       "splits", repr(bad)),
                  Case("data.make_toy_2d", lambda b=bad: data.make_toy_2d("moons", b), "n_samples", repr(bad)),
                  Case("results.timing.best_time", lambda b=bad: timing.best_time(lambda: None, b), "repeats",
                       repr(bad))]
    for bad in BAD_SEEDS:
        cases += [Case("device.seed_everything", lambda b=bad: device.seed_everything(b), "seed", repr(bad)),
                  Case("metrics.kid", lambda b=bad: metrics.kid(X, X, seed=b), "seed", repr(bad)),
                  Case("data.make_toy_2d", lambda b=bad: data.make_toy_2d("moons", 10, seed=b), "seed", repr(bad)),
                  Case("metrics.classifier_cache_path", lambda b=bad: metrics.classifier_cache_path("digits", seed=b),
                       "seed", repr(bad))]
    big = 1e300 * np.eye(2)
    cases += [
        Case("metrics.fid", lambda: metrics.fid(X, X, extractor="cifar"), "extractor", "cifar"),
        Case("metrics.fid", lambda: metrics.fid(X, X, batch_size=0), "batch_size", "0"),
        Case("metrics.fid", lambda: metrics.fid(X, np.full((30, 2), np.nan)), "fake", "nan"),
        Case("metrics.fid", lambda: metrics.fid(DIGITS + 100, DIGITS, extractor=_Levels()), "real", "range"),
        Case("metrics.frechet_distance", lambda: metrics.frechet_distance(np.zeros(2), big, np.zeros(3), big), "mu2",
             "shape"),
        Case("metrics.frechet_distance", lambda: metrics.frechet_distance("a", big, np.zeros(2), big), "mu1", "str"),
        Case("metrics.precision_recall", lambda: metrics.precision_recall(X, X, max_samples=-1), "max_samples", "-1"),
        Case("metrics.precision_recall", lambda: metrics.precision_recall(X, X, k=0), "k", "0"),
        Case("metrics.density_coverage", lambda: metrics.density_coverage(X, X, batch_size=0), "batch_size", "0"),
        Case("metrics.c2st", lambda: metrics.c2st(X, X, test_size=1.0), "test_size", "1.0"),
        Case("metrics.c2st", lambda: metrics.c2st(X, X, classifier="svm"), "classifier", "svm"),
        Case("metrics.memorization", lambda: metrics.memorization(X, X, X, extractor="pixel"), "extractor", "pixel"),
        Case("metrics.memorization", lambda: metrics.memorization(X, X, X, quantile=1.5), "quantile", "1.5"),
        Case("metrics.copy_rate_test", lambda: metrics.copy_rate_test(12, 10, 1, 10), "copies", "12"),
        Case("metrics.copy_rate_test", lambda: metrics.copy_rate_test(1, 10, 1, 0), "reference_n", "0"),
        Case("metrics.copy_rate_test", lambda: metrics.copy_rate_test(0.5, 10, 1, 10), "copies", "0.5"),
        Case("metrics.extract_features", lambda: metrics.extract_features(X, batch_size=-1), "batch_size", "-1"),
        Case("metrics.extract_features", lambda: metrics.extract_features(X, extractor=3), "extractor", "3"),
        Case("metrics.nats_to_bits_per_dim", lambda: metrics.nats_to_bits_per_dim("abc", 64), "nats", "abc"),
        Case("metrics.nats_to_bits_per_dim", lambda: metrics.nats_to_bits_per_dim(1.0, 0), "n_dims", "0"),
        Case("metrics.bits_per_dim_to_nats", lambda: metrics.bits_per_dim_to_nats(1.0, 4, bin_width=0),
             "bin_width", "0"),
        Case("metrics.real_floor", lambda: metrics.real_floor(X, X, n_samples=1000), "n_samples", "1000"),
        Case("metrics.get_feature_extractor", lambda: metrics.get_feature_extractor("cifar"), "dataset", "cifar"),
        Case("metrics.train_classifier", lambda: metrics.train_classifier("digits", epochs=0), "epochs", "0"),
        Case("metrics.inception_extractor", lambda: metrics.inception_extractor("/nonexistent.pt"), "weights",
             "missing"),
        Case("metrics.knn_radii", lambda: metrics.knn_radii(torch.zeros(3, 2), 3), "k", "3"),
        Case("data.load_digits", lambda: data.load_digits("dev"), "split", "dev"),
        Case("data.load_mnist", lambda: data.load_mnist("validation"), "split", "validation"),
        Case("data.load_fashion_mnist", lambda: data.load_fashion_mnist(checksums={"x.gz": None}), "checksums",
             "unknown file"),
        Case("data.load_fashion_mnist", lambda: data.load_fashion_mnist(
            checksums={"train-images-idx3-ubyte.gz": "zz"}), "checksums", "bad md5"),
        Case("data.make_toy_2d", lambda: data.make_toy_2d("spiral"), "toy dataset", "spiral"),
        Case("data.make_toy_2d", lambda: data.make_toy_2d("moons", noise=-1.0), "noise", "-1"),
        Case("device.get_device", lambda: device.get_device("banana"), "device", "banana"),
        Case("io.atomic_write", lambda: io.atomic_write("/tmp/x", "not callable"), "write", "str"),
        Case("results.save_results", lambda: results.save_results("/tmp/never.json", [1]), "payload", "list"),
        Case("results.load_results", lambda: results.load_results("/nonexistent/r.json"), "results file", "missing"),
        Case("results.leaderboard.build_leaderboard", lambda: leaderboard.build_leaderboard(models=["GANN"]),
             "unknown models", "GANN"),
        Case("results.leaderboard.build_leaderboard", lambda: leaderboard.build_leaderboard(datasets=["cifar"]),
             "datasets", "cifar"),
        Case("results.leaderboard.load_leaderboard", lambda: leaderboard.load_leaderboard("/nonexistent.json"),
             "leaderboard", "missing"),
        Case("results.leaderboard.Dataset", lambda: leaderboard.Dataset("cifar"), "dataset", "cifar"),
        Case("results.ledger.build_ledger", lambda: ledger.build_ledger(["nope"]), "recipes", "nope"),
        Case("results.ledger.build_ledger", lambda: ledger.build_ledger(["vae"], seeds=(-1,)), "seeds", "-1"),
        Case("results.ledger.train_digits", lambda: ledger.train_digits("nope", 0), "recipe", "nope"),
    ]
    return cases


class _Levels(torch.nn.Module):
    input_range = (0.0, 16.0)

    def forward(self, x):
        return x.flatten(1)


@pytest.mark.parametrize("case", _cases(), ids=str)
def test_bad_input_gives_a_clear_error(case):
    assert_clear_error(case)


def test_covered_names_exist():
    import importlib

    for name in COVERED:
        parts = name.split(".")
        obj = importlib.import_module(f"genlab.{parts[0]}")
        for part in parts[1:]:
            obj = getattr(obj, part) if hasattr(obj, part) else importlib.import_module(f"{obj.__name__}.{part}")
        assert callable(obj), name


# ----------------------------------------------------------------------------- files on disk
def test_corrupt_gzip_idx_is_a_clear_error(tmp_path):
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(ValueError, match="corrupt or truncated"):
        data.read_idx(bad)
    short = tmp_path / "short.gz"
    short.write_bytes(gzip.compress(bytes([0, 0, 8, 3, 0, 0])))
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(short)


def test_empty_checksum_table_still_checks_every_file(tmp_path):
    for name in data.FASHION_MNIST_FILES:
        (tmp_path / name).write_bytes(gzip.compress(b"not the published file"))
    with pytest.raises(ValueError, match="checksum mismatch"):
        data.load_fashion_mnist(root=tmp_path, checksums={})


@pytest.mark.parametrize("content, label", [(b"", "empty"), (b"PK\x03\x04" + b"\x00" * 10, "truncated"),
                                            (os.urandom(256), "random bytes")])
def test_broken_checkpoints_give_a_clear_error(tmp_path, content, label):
    good = tmp_path / "good.pt"
    train.save_checkpoint({"w": torch.ones(100)}, good)
    path = tmp_path / "broken.pt"
    path.write_bytes(content if label != "truncated" else good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(ValueError, match="checkpoint") as info:
        train.load_checkpoint(path)
    assert "weights_only=False" not in str(info.value)
    assert train.load_checkpoint(good)["w"].sum() == 100


def test_checkpoint_with_arbitrary_objects_is_refused_without_suggesting_unsafe_loading(tmp_path):
    path = tmp_path / "object.pt"
    torch.save({"f": complex(1, 2), "obj": _Levels}, path)
    with pytest.raises(ValueError, match="objects other than tensors") as info:
        train.load_checkpoint(path)
    assert "weights_only=False" not in str(info.value)


def test_a_killed_save_leaves_a_temporary_that_the_next_save_removes(tmp_path):
    target = tmp_path / "results.json"
    script = ("import os\nfrom genlab.io import atomic_write\n"
              f"def write(name):\n    open(name, 'w').write('partial'); os._exit(9)\n"
              f"atomic_write({repr(str(target))}, write)\n")
    subprocess.run([sys.executable, "-c", script], check=False, timeout=900)  # importing torch is slow under load
    orphans = list(tmp_path.glob(".results.json.*"))
    assert orphans and not target.exists(), "the killed save should leave exactly an orphan temporary"
    assert io.stale_temporaries(target) == orphans
    io.atomic_write(target, lambda name: open(name, "w").write("{}"))
    assert target.read_text() == "{}"
    assert not list(tmp_path.glob(".results.json.*")), "the next save must remove the orphan"


def test_a_failing_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "x.json"
    target.write_text("old")

    def fail(name):
        open(name, "w").write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        io.atomic_write(target, fail)
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
