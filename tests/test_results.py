"""genlab.results: results files, the leaderboard registry and merge, the ledger, the reference table."""
from __future__ import annotations

import json

import pytest
import torch

from genlab import metrics
from genlab.results import leaderboard as L
from genlab.results import ledger as G
from genlab.results import load_results, save_results
from genlab.results.references import REFERENCES, Reference, reference_text


def test_save_results_is_atomic_and_carries_provenance(tmp_path):
    path = tmp_path / "r.json"
    save_results(path, {"x": 1}, args={"seed": 0}, device="cpu", amp=False)
    stored = load_results(path)
    assert stored["x"] == 1 and stored["provenance"]["args"] == {"seed": 0}
    assert {"commit", "date_utc", "versions", "cpu", "profile"} <= set(stored["provenance"])
    path.write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_results(path)


def test_stored_files_are_in_the_current_format_with_provenance():
    board = L.load_leaderboard()
    assert board["format"] == L.FORMAT and "provenance" in board
    for entry in board["datasets"].values():
        for row in [entry["floor"], *entry["rows"]]:
            assert "measured" in row, row.get("model", "floor")
            assert row.get("kid") is not None or row.get("kid_raw") is not None
    ledger = G.load_ledger()
    assert ledger["format"] == G.FORMAT and "provenance" in ledger
    assert {row["recipe"] for row in G.ledger_rows(ledger)} >= {"independent_pixels", "vae"}


def test_references_are_defined_once_with_sources():
    assert reference_text("digits", "independent pixels").startswith("106.47")
    assert reference_text("digits", "no such row") == ""
    for rows in REFERENCES.values():
        for reference in rows.values():
            assert isinstance(reference, Reference) and reference.source


def _row(model: str, fid: float) -> dict:
    return {"model": model, "nll_nats": None, "fid": fid}


def _board(rows: list[dict]) -> dict:
    return {"kind": "leaderboard", "format": L.FORMAT, "meta": {"profile": "quick", "seed": 0},
            "datasets": {"digits": {"classifier_test_accuracy": 0.9, "floor": {"fid": 1.0}, "floor_seconds": 0.1,
                                    "n_test": 447, "n_dims": 64, "rows": rows, "missing": {"VAE": "not run"}}}}


def test_merge_keeps_old_rows_and_replaces_rerun_ones():
    stored = _board([_row("independent pixels", 100.0), _row("VAE", 30.0)])
    new = _board([_row("VAE", 20.0)])
    merged = L.merge_leaderboards(stored, new)
    rows = {row["model"]: row["fid"] for row in merged["datasets"]["digits"]["rows"]}
    assert rows == {"independent pixels": 100.0, "VAE": 20.0}
    assert "VAE" not in merged["datasets"]["digits"]["missing"]
    assert [r["model"] for r in merged["datasets"]["digits"]["rows"]] == ["independent pixels", "VAE"]


def test_a_new_row_is_one_registry_entry_and_a_failing_run_keeps_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv(metrics.EPOCHS_ENV, "1")
    monkeypatch.setattr(metrics.features, "_EXTRACTORS", {})
    path = tmp_path / "leaderboard.json"
    save_results(path, _board([_row("independent pixels", 100.0)]))

    def copy_the_test_set(data, cfg, seed, device):
        test = data.images["test"]
        return None, test[torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))]

    def broken(data, cfg, seed, device):
        raise RuntimeError("training diverged")

    monkeypatch.setitem(L.MODELS, "copy (test)", L.ModelEntry("genlab.data", copy_the_test_set, ("digits",)))
    monkeypatch.setitem(L.MODELS, "broken (test)", L.ModelEntry("genlab.data", broken, ("digits",)))
    before = path.read_text()
    with pytest.raises(RuntimeError, match="diverged"):
        L.update_leaderboard(["broken (test)"], datasets=["digits"], path=path, device="cpu")
    assert path.read_text() == before, "a failing run must leave the stored file as it was"
    board = L.update_leaderboard(["copy (test)"], datasets=["digits"], path=path, device="cpu")
    rows = {row["model"]: row for row in board["datasets"]["digits"]["rows"]}
    assert set(rows) == {"independent pixels", "copy (test)"}
    assert rows["copy (test)"]["fid"] == pytest.approx(0.0, abs=1e-6)  # the same images: FID 0
    assert json.loads(path.read_text())["provenance"]["amp"] is False
    assert "copy (test)" in L.format_table(board)


def test_ledger_merge_keeps_entries_and_their_provenance():
    previous = {"digits": {"vae": {"x": 1}, "iwae": {"x": 2}}, "mnist5k": [{"m": 1}], "provenance": {"commit": "a"}}
    new = {"digits": {"vae": {"x": 3}}, "mnist5k": []}
    merged = G.merge_ledger(previous, new)
    assert merged["digits"] == {"vae": {"x": 3}, "iwae": {"x": 2}} and merged["mnist5k"] == [{"m": 1}]
    assert merged["kept_entries"] == {"names": ["iwae"], "provenance": {"commit": "a"}}


def test_the_training_recipe_is_defined_once():
    from genlab.vae import DIGITS_RECIPES

    assert G.digits_recipes() is DIGITS_RECIPES
    assert G.DIGITS_TRAINING == {"lr": 1e-3, "optimizer": "adamax", "batch_size": 64}


def test_likelihoods_are_evaluated_in_full_precision():
    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def log_prob(self, x, k=1):
            assert torch.get_autocast_dtype("cpu") is not None
            assert not torch.is_autocast_enabled("cpu") and not self.training
            return (x.flatten(1) * self.w).sum(1)

    model = Probe().train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = G._full_precision_nll(model, torch.ones(3, 4), k=1)
    assert value == -4.0 and model.training


# ----------------------------------------------------------------------------- chapter 06's implement-it exercise
def _run_early_stopping_check(answer):
    from pathlib import Path
    from types import SimpleNamespace

    from genlab.autoencoder import Autoencoder
    from genlab.exercises import check
    from genlab.train import Trainer

    path = Path(__file__).resolve().parents[1] / "chapters" / "06_deep_generative_models.ipynb"
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    source = next("".join(c["source"]) for c in cells if "".join(c["source"]).startswith("def trainer_stop("))
    namespace = {"Trainer": Trainer, "check": check, "answer": answer,
                 "tiny_autoencoder": lambda: Autoencoder(image_size=8, hidden=(8,), latent_dim=2),
                 "es_history": SimpleNamespace(val_loss=[1.0, 0.8, 0.9, 0.85, 0.95]),
                 "cfg": SimpleNamespace(patience=3)}
    exec(source, namespace)


def _stop_solution(val_losses, patience):
    best, waited = float("inf"), 0
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < best:
            best, waited = loss, 0
        else:
            waited += 1
            if waited >= patience:
                return epoch
    return len(val_losses)


def _stop_counting_ties_as_progress(val_losses, patience):  # a typical mistake: <= instead of <
    best, waited = float("inf"), 0
    for epoch, loss in enumerate(val_losses, start=1):
        if loss <= best:
            best, waited = loss, 0
        else:
            waited += 1
            if waited >= patience:
                return epoch
    return len(val_losses)


def test_exercise_6_1_check_fails_helpfully_and_accepts_the_solution():
    from genlab.exercises import ExerciseError, NotAttempted

    with pytest.raises(NotAttempted):
        _run_early_stopping_check(...)
    with pytest.raises(ExerciseError, match="equal loss is not an improvement"):
        _run_early_stopping_check(_stop_counting_ties_as_progress)
    _run_early_stopping_check(_stop_solution)
