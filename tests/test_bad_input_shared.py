"""Bad input to genlab's shared helpers: validation, numerics, base, train, data, io, layers, flows, metrics
helpers and results (table-driven)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from badinput import Case, assert_clear_error

from genlab import autoregressive, base, data, device, flow, gan, io, layers, numerics, results, train, validation
from genlab.metrics import features, sample
from genlab.results import course_map, leaderboard, ledger, references

COVERED = {
    "validation.as_float_tensor", "validation.as_image_tensor", "validation.check_bool",
    "validation.check_device", "validation.check_finite_magnitude", "validation.check_float", "validation.check_int",
    "validation.check_labels", "validation.check_class_labels", "validation.check_option",
    "validation.check_optional_int",
    "validation.check_positive_float", "validation.check_probability", "validation.check_random_state",
    "validation.check_seed", "validation.check_shape", "validation.check_value_range",
    "numerics.cholesky_gaussian_log_prob", "numerics.diag_gaussian_log_prob", "numerics.diag_gaussian_log_prob_table",
    "numerics.standard_normal_log_prob",
    "base.GenerativeModule.check_fitted", "base.check_is_fitted", "base.check_n_features",
    "base.resolve_device",
    "train.LambdaCallback", "train.EMA", "train.EMA.update", "train.History", "train.History.from_dict",
    "train.Optimizers", "train.Optimizers.step", "train.as_loader", "train.move_to", "train.save_checkpoint",
    "data.check_md5", "data.download_file", "data.md5sum", "data.write_idx", "io.stale_temporaries",
    "device.get_profile", "layers.CausalConv1d", "layers.MaskedLinear",
    "autoregressive.CausalConvDecoder", "autoregressive.GatedResidualBlock", "autoregressive.MADEDecoder",
    "autoregressive.PixelCNN.logits",
    "flow.ActNorm.inverse", "flow.AffineCoupling.inverse", "flow.AffineCoupling.scale_shift",
    "flow.FlowSequential", "flow.FlowSequential.inverse", "flow.InvertibleLinear.inverse",
    "flow.LogitTransform.inverse", "flow.Permutation.inverse", "flow.PlanarFlow.inverse", "flow.Squeeze.inverse",
    "gan.CycleGAN.cycle_loss",
    "metrics.features.DigitClassifier", "metrics.features.DigitClassifier.accuracy",
    "metrics.features.DigitClassifier.features", "metrics.features.DigitClassifier.loss",
    "metrics.features.InceptionFeatures", "metrics.features.InceptionFeatures.features",
    "metrics.features.as_metric_input", "metrics.features.check_extractor",
    "metrics.features.check_input_range", "metrics.features.default_classifier", "metrics.features.default_epochs",
    "metrics.features.feature_pair", "metrics.features.random_shift", "metrics.features.resolve_extractor",
    "metrics.features.subsample",
    "metrics.sample.evaluate_samples", "metrics.sample.feature_statistics", "metrics.sample.pairwise_distances",
    "metrics.sample.polynomial_mmd2",
    "results.course_map.chapter_file", "results.course_map.course_map",
    "results.leaderboard.Dataset.dequantised", "results.leaderboard.Dataset.discrete_nll",
    "results.leaderboard.Dataset.from_dequantised", "results.leaderboard.Dataset.from_levels",
    "results.leaderboard.Dataset.from_unit_range", "results.leaderboard.check_fresh",
    "results.leaderboard.format_table", "results.leaderboard.merge_leaderboards", "results.leaderboard.merged_rows",
    "results.leaderboard.update_leaderboard",
    "results.ledger.format_ledger", "results.ledger.independent_pixels",
    "results.ledger.ledger_rows", "results.ledger.load_ledger", "results.ledger.merge_ledger",
    "results.ledger.train_mnist", "results.provenance", "results.references.reference_text",
}

NAN = float("nan")
X2 = torch.zeros(4, 2)
IMG = torch.zeros(2, 1, 8, 8)


class _Fitted(base.GenerativeModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def loss(self, batch):  # pragma: no cover - never called
        return self.layer(batch).mean()


class _Seen:
    n_features_in_ = 3


def _trainer() -> train.Trainer:
    return train.Trainer(_Fitted(), progress=False)


def _optimizers() -> train.Optimizers:
    net = torch.nn.Linear(2, 1)
    return train.Optimizers({"g": torch.optim.SGD(net.parameters(), lr=0.1)}, _trainer())


def _cases(tmp) -> list[Case]:
    lin = torch.nn.Linear(2, 2)
    cases = [
        # validation
        Case("validation.as_float_tensor", lambda: validation.as_float_tensor(np.array([[NAN, 0.0]])), "X", "nan"),
        Case("validation.as_float_tensor", lambda: validation.as_float_tensor(np.zeros((2, 2, 2))), "X", "3-d"),
        Case("validation.as_image_tensor", lambda: validation.as_image_tensor(torch.zeros(2, 8, 8, 8, 8)), "images",
             "5-d"),
        Case("validation.as_image_tensor", lambda: validation.as_image_tensor(IMG + 5, value_range=(0.0, 1.0)),
             "images", "range"),
        Case("validation.check_bool", lambda: validation.check_bool(1, "flag"), "flag", "1"),
        Case("validation.check_device", lambda: validation.check_device("gpu7"), "device", "gpu7"),
        Case("validation.check_finite_magnitude",
             lambda: validation.check_finite_magnitude(torch.tensor([NAN]), "z"), "z", "nan"),
        Case("validation.check_float", lambda: validation.check_float(NAN, "alpha"), "alpha", "nan"),
        Case("validation.check_float", lambda: validation.check_float(2.0, "alpha", high=1.0), "alpha", "2"),
        Case("validation.check_int", lambda: validation.check_int(2.5, "n"), "n", "2.5"),
        Case("validation.check_int", lambda: validation.check_int(True, "n"), "n", "True"),
        Case("validation.check_labels", lambda: validation.check_labels([0, 1], 3), "y", "length"),
        Case("validation.check_labels", lambda: validation.check_labels([0, 5], 2, n_classes=3), "y", "class"),
        Case("validation.check_class_labels", lambda: validation.check_class_labels([0, 1], 2, None, "GAN"), "y",
             "unconditional model given labels"),
        Case("validation.check_class_labels", lambda: validation.check_class_labels(None, 2, 10, "GAN"), "y",
             "conditional model without labels"),
        Case("validation.check_class_labels", lambda: validation.check_class_labels(10, 2, 10, "VAE"), "y",
             "one label out of range"),
        Case("validation.check_class_labels", lambda: validation.check_class_labels(True, 2, 10, "VAE"), "y", "bool"),
        Case("validation.check_class_labels", lambda: validation.check_class_labels([0, 1, 2], 2, 10, "VAE"), "y",
             "length"),
        Case("validation.check_option", lambda: validation.check_option("c", "kind", ("a", "b")), "kind", "c"),
        Case("validation.check_optional_int", lambda: validation.check_optional_int(-1, "k", minimum=0), "k", "-1"),
        Case("validation.check_positive_float", lambda: validation.check_positive_float(0.0, "lr"), "lr", "0"),
        Case("validation.check_probability", lambda: validation.check_probability(1.5, "p"), "p", "1.5"),
        Case("validation.check_random_state", lambda: validation.check_random_state("a"), "random_state", "a"),
        Case("validation.check_seed", lambda: validation.check_seed(-1), "seed", "-1"),
        Case("validation.check_shape", lambda: validation.check_shape((1, 0), "shape"), "shape", "0"),
        Case("validation.check_shape", lambda: validation.check_shape((1, 2), "shape", length=3), "shape", "length"),
        Case("validation.check_value_range",
             lambda: validation.check_value_range(torch.tensor([2.0]), "probs", 0.0, 1.0), "probs", "2"),
        # numerics
        Case("numerics.standard_normal_log_prob", lambda: numerics.standard_normal_log_prob("a"), "x", "str"),
        Case("numerics.diag_gaussian_log_prob",
             lambda: numerics.diag_gaussian_log_prob(X2, torch.zeros(3, 2), torch.zeros(4, 2)), "mean", "batch"),
        Case("numerics.diag_gaussian_log_prob",
             lambda: numerics.diag_gaussian_log_prob(X2, torch.zeros(4, 2), torch.zeros(4, 3)), "logvar", "shape"),
        Case("numerics.diag_gaussian_log_prob_table",
             lambda: numerics.diag_gaussian_log_prob_table(X2, torch.zeros(3, 5), torch.ones(3, 5)), "means",
             "shape"),
        Case("numerics.cholesky_gaussian_log_prob",
             lambda: numerics.cholesky_gaussian_log_prob(X2, torch.zeros(3, 2), torch.eye(3).expand(3, 3, 3)),
             "chol", "shape"),
        # base
        Case("base.GenerativeModule.check_fitted", lambda: _Fitted().check_fitted("sample"), "sample", "unfitted"),
        Case("base.check_is_fitted", lambda: base.check_is_fitted(lin, 3), "attribute", "int"),
        Case("base.check_n_features", lambda: base.check_n_features(_Seen(), torch.zeros(4, 2)), "X", "columns"),
        Case("base.resolve_device", lambda: base.resolve_device("gpu7"), "device", "gpu7"),
        Case("base.resolve_device", lambda: base.resolve_device(3.5), "device", "3.5"),
        # train
        Case("train.LambdaCallback", lambda: train.LambdaCallback(on_epoch_ending=lambda *a: None), "on_epoch_ending",
             "unknown hook"),
        Case("train.LambdaCallback", lambda: train.LambdaCallback(on_epoch_end=3), "on_epoch_end", "not callable"),
        Case("train.EMA", lambda: train.EMA(lin, decay=1.5), "decay", "1.5"),
        Case("train.EMA", lambda: train.EMA("model"), "model", "str"),
        Case("train.EMA.update", lambda: train.EMA(lin).update("model"), "model", "str"),
        Case("train.EMA.update", lambda: train.EMA(lin).update(torch.nn.Linear(3, 2)), "model", "other"),
        Case("train.History", lambda: train.History(train_loss="abc"), "train_loss", "str"),
        Case("train.History.from_dict", lambda: train.History.from_dict([1, 2]), "state", "list"),
        Case("train.History.from_dict", lambda: train.History.from_dict({"val_loss": []}), "train_loss",
             "missing"),
        Case("train.Optimizers", lambda: train.Optimizers({"g": 3}, _trainer()), "optimizers",
             "int"),
        Case("train.Optimizers.step", lambda: _optimizers().step("d", torch.tensor(1.0, requires_grad=True)), "name",
             "d"),
        Case("train.Optimizers.step", lambda: _optimizers().step("g", "abc"), "loss", "str"),
        Case("train.as_loader", lambda: train.as_loader(X2, 0, True), "batch_size", "0"),
        Case("train.as_loader", lambda: train.as_loader("abc", 2, True), "data", "str"),
        Case("train.move_to", lambda: train.move_to(X2, "gpu7"), "device", "gpu7"),
        Case("train.save_checkpoint", lambda: train.save_checkpoint([1, 2], tmp / "c.pt"), "state", "list"),
        # data / io / device
        Case("data.md5sum", lambda: data.md5sum(tmp / "absent.bin"), "absent", "missing"),
        Case("data.check_md5", lambda: data.check_md5(tmp / "absent.bin", "0" * 32), "absent", "missing"),
        Case("data.check_md5", lambda: data.check_md5(tmp / "f.bin", "xyz"), "expected", "not hex"),
        Case("data.download_file", lambda: data.download_file(3, tmp / "d.bin"), "url", "int"),
        Case("data.download_file", lambda: data.download_file("ftp://example.invalid/x", tmp / "d.bin"), "url",
             "scheme"),
        Case("data.download_file",
             lambda: data.download_file("https://example.invalid/x", tmp / "d.bin", md5="xyz"), "md5", "xyz"),
        Case("data.download_file",
             lambda: data.download_file("https://example.invalid/x", 3.5), "destination", "float"),
        Case("data.write_idx", lambda: data.write_idx(tmp / "a.idx", np.zeros((2, 2), dtype=np.complex64)), "array",
             "complex"),
        Case("data.write_idx", lambda: data.write_idx(tmp / "a.idx", "abc"), "array", "str"),
        Case("io.stale_temporaries", lambda: io.stale_temporaries(tmp, suffix=3), "suffix", "int"),
        # layers / autoregressive
        Case("layers.CausalConv1d", lambda: layers.CausalConv1d(0, 4, 3), "in_channels", "0"),
        Case("layers.CausalConv1d", lambda: layers.CausalConv1d(2, 4, 0), "kernel_size", "0"),
        Case("layers.CausalConv1d", lambda: layers.CausalConv1d(2, 4, 3, exclude_current="yes"), "exclude_current",
             "str"),
        Case("layers.MaskedLinear", lambda: layers.MaskedLinear(torch.zeros(3)), "mask", "1-d"),
        Case("layers.MaskedLinear", lambda: layers.MaskedLinear(torch.full((2, 2), 0.5)), "mask", "not 0/1"),
        Case("autoregressive.CausalConvDecoder", lambda: autoregressive.CausalConvDecoder(0, 4, 2), "n_pixels", "0"),
        Case("autoregressive.CausalConvDecoder",
             lambda: autoregressive.CausalConvDecoder(8, 4, 2, activation="swishy"), "activation", "swishy"),
        Case("autoregressive.CausalConvDecoder", lambda: autoregressive.CausalConvDecoder(8, 4, 2, dropout=1.5),
             "dropout", "1.5"),
        Case("autoregressive.GatedResidualBlock", lambda: autoregressive.GatedResidualBlock(0, 3, 0.0), "channels",
             "0"),
        Case("autoregressive.GatedResidualBlock", lambda: autoregressive.GatedResidualBlock(4, 3, NAN), "dropout",
             "nan"),
        Case("autoregressive.MADEDecoder", lambda: autoregressive.MADEDecoder(8, 1, 2, 16, 2), "n_levels", "1"),
        Case("autoregressive.MADEDecoder", lambda: autoregressive.MADEDecoder(8, 4, 2, 16, 0), "n_layers", "0"),
        Case("autoregressive.PixelCNN.logits",
             lambda: autoregressive.PixelCNN(channels=4, n_layers=1).logits(torch.zeros(2, 1, 4, 4)), "x", "shape"),
        Case("autoregressive.PixelCNN.logits",
             lambda: autoregressive.PixelCNN(channels=4, n_layers=1).logits("abc"), "x", "str"),
        # flows
        Case("flow.ActNorm.inverse", lambda: flow.ActNorm(2).inverse(torch.zeros(4, 3)), "z", "channels"),
        Case("flow.AffineCoupling.inverse",
             lambda: flow.AffineCoupling(torch.tensor([1.0, 0.0]), hidden=4).inverse(torch.zeros(4, 3)), "z", "dim"),
        Case("flow.AffineCoupling.inverse",
             lambda: flow.AffineCoupling(torch.tensor([1.0, 0.0]), hidden=4).inverse([[0.0, 1.0]]), "z", "list"),
        Case("flow.AffineCoupling.scale_shift",
             lambda: flow.AffineCoupling(torch.tensor([1.0, 0.0]), hidden=4).scale_shift(torch.zeros(4, 5)),
             "x_fixed", "dim"),
        Case("flow.AffineCoupling.scale_shift",
             lambda: flow.AffineCoupling(torch.tensor([1.0, 0.0]), hidden=4, context_channels=2).scale_shift(
                 X2, torch.zeros(3, 2)), "context", "batch"),
        Case("flow.Permutation.inverse", lambda: flow.Permutation(2).inverse("abc"), "z", "str"),
        Case("flow.InvertibleLinear.inverse", lambda: flow.InvertibleLinear(2).inverse(torch.zeros(4, 3)), "z",
             "channels"),
        Case("flow.LogitTransform.inverse", lambda: flow.LogitTransform().inverse("abc"), "z", "str"),
        Case("flow.Permutation.inverse", lambda: flow.Permutation(2).inverse(torch.zeros(4, 3)), "z", "channels"),
        Case("flow.PlanarFlow.inverse", lambda: flow.PlanarFlow(2).inverse(torch.zeros(4, 3)), "z", "dim"),
        Case("flow.PlanarFlow.inverse", lambda: flow.PlanarFlow(2).inverse(X2, n_iter=0), "n_iter", "0"),
        Case("flow.Squeeze.inverse", lambda: flow.Squeeze().inverse(torch.zeros(2, 3, 4, 4)), "z", "channels"),
        Case("flow.FlowSequential", lambda: flow.FlowSequential([lin]), "layers", "not bijector"),
        Case("flow.FlowSequential", lambda: flow.FlowSequential([]), "layers", "empty"),
        Case("flow.FlowSequential.inverse",
             lambda: flow.FlowSequential([flow.Permutation(2)]).inverse(torch.zeros(4, 3)), "z", "channels"),
        Case("gan.CycleGAN.cycle_loss", lambda: gan.CycleGAN(hidden=(4,)).cycle_loss(X2, torch.zeros(3, 5)), "b",
             "dim"),
        Case("gan.CycleGAN.cycle_loss", lambda: gan.CycleGAN(hidden=(4,)).cycle_loss(torch.zeros(4, 3), X2), "a",
             "dim"),
        # device
        Case("device.get_profile", _bad_profile, "GENLAB_PROFILE", "unknown"),
    ]
    cases += _metric_cases() + _results_cases(tmp)
    return cases


def _bad_profile():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_PROFILE", "huge")
        return device.get_profile()


def _metric_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(0)
    clf = features.DigitClassifier
    return [
        Case("metrics.features.DigitClassifier", lambda: clf("cifar"), "dataset", "cifar"),
        Case("metrics.features.DigitClassifier.accuracy", lambda: clf().accuracy(IMG, torch.zeros(3)), "labels",
             "length"),
        Case("metrics.features.DigitClassifier.accuracy", lambda: clf().accuracy(IMG, torch.zeros(2), batch_size=0),
             "batch_size", "0"),
        Case("metrics.features.DigitClassifier.features", lambda: clf().features(torch.zeros(2, 1, 5, 5)),
             "images", "shape"),
        Case("metrics.features.DigitClassifier.loss", lambda: clf().loss(IMG), "batch", "no labels"),
        Case("metrics.features.InceptionFeatures", lambda: features.InceptionFeatures("net"), "network", "str"),
        Case("metrics.features.InceptionFeatures",
             lambda: features.InceptionFeatures(torch.nn.Identity(), data_max=0), "data_max", "0"),
        Case("metrics.features.InceptionFeatures.features",
             lambda: features.InceptionFeatures(torch.nn.Identity()).features(torch.zeros(2, 8)), "x", "2-d"),
        Case("metrics.features.as_metric_input", lambda: features.as_metric_input("abc", "real"), "real", "str"),
        Case("metrics.features.as_metric_input", lambda: features.as_metric_input(np.full((2, 2), NAN), "real"),
             "real", "nan"),
        Case("metrics.features.check_extractor", lambda: features.check_extractor("pixel"), "extractor", "pixel"),
        Case("metrics.features.check_input_range",
             lambda: features.check_input_range(IMG + 100, features.DigitClassifier(), "fake"), "fake", "range"),
        Case("metrics.features.default_classifier",
             lambda: features.default_classifier("cifar", (1, 8, 8), torch.device("cpu")), "dataset", "cifar"),
        Case("metrics.features.default_epochs", lambda: features.default_epochs("cifar"), "dataset", "cifar"),
        Case("metrics.features.feature_pair", lambda: features.feature_pair(X2, torch.zeros(4, 3), None, 8, None),
             "fake", "dim"),
        Case("metrics.features.feature_pair", lambda: features.feature_pair(X2, X2, None, 0, None), "batch_size",
             "0"),
        Case("metrics.features.random_shift", lambda: features.random_shift(IMG, -1), "max_shift", "-1"),
        Case("metrics.features.random_shift", lambda: features.random_shift(X2, 1), "images", "2-d"),
        Case("metrics.features.resolve_extractor",
             lambda: features.resolve_extractor("pixel", (1, 8, 8), torch.device("cpu")), "extractor", "pixel"),
        Case("metrics.features.subsample", lambda: features.subsample(X2, 0, gen), "n", "0"),
        Case("metrics.features.subsample", lambda: features.subsample(X2, 2, "gen"), "generator", "str"),
        Case("metrics.sample.evaluate_samples", lambda: sample.evaluate_samples(X2, torch.zeros(4, 3)), "fake", "dim"),
        Case("metrics.sample.feature_statistics", lambda: sample.feature_statistics(torch.zeros(1, 2)), "features",
             "one row"),
        Case("metrics.sample.pairwise_distances", lambda: sample.pairwise_distances(X2, torch.zeros(3, 5)), "y",
             "dim"),
        Case("metrics.sample.pairwise_distances", lambda: sample.pairwise_distances(X2, X2, batch_size=0),
             "batch_size", "0"),
        Case("metrics.sample.polynomial_mmd2", lambda: sample.polynomial_mmd2(X2, torch.zeros(3, 5)), "y", "dim"),
        Case("metrics.sample.polynomial_mmd2", lambda: sample.polynomial_mmd2(X2[:1], X2), "x", "one row"),
    ]


def _results_cases(tmp) -> list[Case]:
    ds = leaderboard.Dataset
    return [
        Case("results.course_map.chapter_file", lambda: course_map.chapter_file(3), "chapter", "int"),
        Case("results.course_map.course_map", lambda: course_map.course_map(dataset="cifar"), "dataset", "cifar"),
        Case("results.course_map.course_map", lambda: course_map.course_map(leaderboard=[1]), "leaderboard", "list"),
        Case("results.leaderboard.Dataset.dequantised", lambda: ds("digits").dequantised("dev", 0), "split", "dev"),
        Case("results.leaderboard.Dataset.dequantised", lambda: ds("digits").dequantised("train", -1), "seed", "-1"),
        Case("results.leaderboard.Dataset.discrete_nll", lambda: ds("digits").discrete_nll("abc"), "continuous_nll",
             "str"),
        Case("results.leaderboard.Dataset.from_dequantised",
             lambda: ds("digits").from_dequantised([[0.5]]), "values", "list"),
        Case("results.leaderboard.Dataset.from_levels", lambda: ds("digits").from_levels(torch.zeros(2, 5)),
             "levels", "shape"),
        Case("results.leaderboard.Dataset.from_unit_range",
             lambda: ds("digits").from_unit_range("abc"), "images", "str"),
        Case("results.leaderboard.check_fresh", lambda: leaderboard.check_fresh({}, {}, nll_tol=-1.0), "nll_tol", "-1"),
        Case("results.leaderboard.check_fresh", lambda: leaderboard.check_fresh([], {}), "stored", "list"),
        Case("results.leaderboard.format_table", lambda: leaderboard.format_table([1]), "board", "list"),
        Case("results.leaderboard.merge_leaderboards", lambda: leaderboard.merge_leaderboards(None, [1]), "new",
             "list"),
        Case("results.leaderboard.merged_rows", lambda: leaderboard.merged_rows({}, {}, "cifar"), "dataset", "cifar"),
        Case("results.leaderboard.update_leaderboard", lambda: leaderboard.update_leaderboard(["no_such_model"]),
             "models", "unknown"),
        Case("results.leaderboard.update_leaderboard",
             lambda: leaderboard.update_leaderboard(datasets=["cifar"]), "datasets", "cifar"),
        Case("results.ledger.format_ledger", lambda: ledger.format_ledger([1]), "ledger", "list"),
        Case("results.ledger.independent_pixels", lambda: ledger.independent_pixels(alpha=0), "alpha", "0"),
        Case("results.ledger.independent_pixels", lambda: ledger.independent_pixels(alpha=NAN), "alpha", "nan"),
        Case("results.ledger.ledger_rows", lambda: ledger.ledger_rows("abc"), "ledger", "str"),
        Case("results.ledger.load_ledger", lambda: ledger.load_ledger(tmp / "absent.json"), "absent", "missing"),
        Case("results.ledger.merge_ledger", lambda: ledger.merge_ledger(None, "abc"), "new", "str"),
        Case("results.ledger.train_mnist", lambda: ledger.train_mnist(seed=-1), "seed", "-1"),
        Case("results.ledger.train_mnist", lambda: ledger.train_mnist(max_epochs=0), "max_epochs", "0"),
        Case("results.provenance", lambda: results.provenance(device="gpu7"), "device", "gpu7"),
        Case("results.provenance", lambda: results.provenance(amp="yes"), "amp", "str"),
        Case("results.references.reference_text", lambda: references.reference_text(3, "x"), "dataset", "int"),
        Case("results.references.reference_text", lambda: references.reference_text("digits", 3), "row", "int"),
    ]


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    path = tmp_path_factory.mktemp("bad_input_shared")
    (path / "f.bin").write_bytes(b"abc")
    return path


#: The table is built once with a placeholder folder for the ids; each test rebuilds it with a real one.
CASES = _cases(Path("/nonexistent-bad-input-shared"))


@pytest.mark.parametrize("index", range(len(CASES)), ids=[str(c) for c in CASES])
def test_bad_input_is_reported_clearly(index, tmp):
    assert_clear_error(_cases(tmp)[index])


@pytest.mark.parametrize("main", [leaderboard.main, ledger.main], ids=["leaderboard", "ledger"])
def test_main_rejects_unknown_flags_with_status_2(main):
    with pytest.raises(SystemExit) as info:
        main(["--no-such-flag"])
    assert info.value.code == 2
