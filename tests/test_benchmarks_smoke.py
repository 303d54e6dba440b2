"""The deep-model benchmarks run end to end at toy sizes and write their results files."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from genlab.results import load_results

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_deep_throughput_writes_a_row_per_cell(tmp_path, capsys):
    bench = _load("deep_throughput")
    out = tmp_path / "deep_throughput.json"
    bench.main(["--models", "autoencoder", "--variants", "fp32", "bf16", "compile", "--batch", "4", "--steps", "1",
                "--samples", "4", "--cpu-only", "--compile-models", "none", "--output", str(out),
                "--threads", str(torch.get_num_threads())])  # leave the test session's thread count as it is
    stored = load_results(out)
    rows = {row["variant"]: row for row in stored["rows"]}
    assert rows["fp32"]["status"] == "ok" and rows["fp32"]["train_img_s"] > 0 and rows["fp32"]["sample_img_s"] > 0
    assert rows["bf16"]["status"] == "ok"
    assert rows["compile"]["status"].startswith("skipped")
    assert "loadavg_1_5_15" in stored["load_before"] and "provenance" in stored
    assert "autoencoder" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["kde", "precision_recall"])
def test_memory_child_reports_a_bounded_peak(name):
    bench = _load("memory")
    row = bench.child_estimator(name, 300)
    assert row["n"] == 300 and row["peak_rss_mb"] > 0
    assert row["dense_matrix_mb"] == pytest.approx(300 * 300 * 8 / 2**20, abs=0.1)
