"""House rules of the code base, checked on the syntax tree (no imports are executed).

The lists below are the one place that says what is a model family and what is shared: a new
family (or shared module) is one line here.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "genlab"

#: Model families: each imports only shared modules (and the exceptions in ALLOWED), never another family.
FAMILIES = {"mixture", "kde", "hmm", "nonparametric", "generative_classifier", "distributions", "vae",
            "autoencoder", "priors", "autoregressive", "gan", "flow", "diffusion", "text", "tabular"}
#: Shared parts every family may use.
SHARED = {"base", "validation", "numerics", "layers", "device", "profiles", "data", "train", "io", "plot",
          "exercises", "metrics", "results", "widgets", "distributed", "watermark", "diagnostics",
          "inpainting"}
#: Family -> families it may import (priors are the VAE's internal part; the VAE's decoders are autoregressive).
ALLOWED = {"vae": {"priors", "autoregressive"}, "priors": {"autoregressive"}}
#: Modules allowed to import families lazily (inside a function): the leaderboard builds every family.
LAZY_FAMILY_IMPORTERS = {"results"}
#: Modules that must not import any family at all.
NO_FAMILIES = {"metrics", "base", "validation", "numerics", "layers", "device", "profiles", "data", "train", "io"}


def _module_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _top(path: Path) -> str:
    """Top-level genlab module of a file: genlab/vae.py -> vae, genlab/metrics/sample.py -> metrics."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0] if parts[0] != "__init__" else "__init__"


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported genlab top-level module or external root, imported at module level?) for each import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package_parts = ["genlab", *path.relative_to(PACKAGE).with_suffix("").parts[:-1]]
    found = []

    def visit(node: ast.AST, top_level: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = top_level and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append((alias.name, top_level))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package_parts[: len(package_parts) - child.level + 1]
                    module = ".".join(base + ([child.module] if child.module else []))
                    if not child.module:  # from . import x
                        found.extend((f"{module}.{alias.name}", top_level) for alias in child.names)
                        continue
                else:
                    module = child.module or ""
                found.append((module, top_level))
            visit(child, inner)

    visit(tree, True)
    return found


def _genlab_targets(path: Path) -> list[tuple[str, bool]]:
    out = []
    for module, top_level in _imports(path):
        parts = module.split(".")
        if parts[0] == "genlab" and len(parts) > 1:
            out.append((parts[1], top_level))
    return out


FILES = _module_files()


def test_the_lists_name_real_modules():
    on_disk = {_top(p) for p in FILES} - {"__init__", "__main__"}
    unknown = on_disk - FAMILIES - SHARED
    assert not unknown, f"genlab modules in neither FAMILIES nor SHARED (add them to one list): {sorted(unknown)}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_genlab_never_imports_chapters_or_benchmarks(path):
    for module, _ in _imports(path):
        root = module.split(".")[0]
        assert root not in {"chapters", "benchmarks", "leaderboard", "likelihood", "timing", "tests"}, \
            f"{path.name} imports {module}: genlab must not depend on chapters, benchmarks or tests"


@pytest.mark.parametrize("path", [p for p in FILES if _top(p) in FAMILIES], ids=lambda p: p.stem)
def test_a_family_imports_no_other_family(path):
    family = _top(path)
    for target, _ in _genlab_targets(path):
        if target in FAMILIES and target != family:
            assert target in ALLOWED.get(family, set()), \
                f"genlab.{family} imports genlab.{target}: families share code only through shared modules"


@pytest.mark.parametrize("path", [p for p in FILES if _top(p) in SHARED], ids=lambda p: str(p.relative_to(PACKAGE)))
def test_shared_modules_import_families_only_where_allowed(path):
    module = _top(path)
    for target, top_level in _genlab_targets(path):
        if target not in FAMILIES:
            continue
        assert module not in NO_FAMILIES, f"genlab.{module} imports the model family genlab.{target}"
        assert module in LAZY_FAMILY_IMPORTERS and not top_level, (
            f"genlab.{module} imports genlab.{target} at module level; only {sorted(LAZY_FAMILY_IMPORTERS)} may "
            "import families, and only inside functions")


@pytest.mark.parametrize("path", [p for p in FILES if _top(p) == "data"], ids=lambda p: p.stem)
def test_data_never_imports_train(path):
    assert "train" not in {t for t, _ in _genlab_targets(path)}, "genlab.data must not import genlab.train"


# ----------------------------------------------------------------------------- chapters
NOTEBOOKS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


def _code_cells(path: Path) -> list[tuple[int, dict, str]]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(i, c, "".join(c["source"])) for i, c in enumerate(cells) if c["cell_type"] == "code"]


def _parse_cell(text: str) -> ast.AST | None:
    lines = [line for line in text.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapters_import_genlab_and_libraries_never_benchmarks_nor_sys_path(path):
    for index, _, text in _code_cells(path):
        tree = _parse_cell(text)
        assert tree is not None, f"{path.name} cell {index} does not parse"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                roots = [(node.module or "").split(".")[0]] if not node.level else ["<relative>"]
            else:
                roots = []
            for root in roots:
                assert root not in {"benchmarks", "leaderboard", "likelihood", "timing", "<relative>"}, \
                    f"{path.name} cell {index} imports {root}: use genlab.results instead"
            if isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name) \
                    and node.value.id == "sys":
                raise AssertionError(f"{path.name} cell {index} touches sys.path")


def _runs_an_optimiser_step(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "backward":
                return True
            if node.func.attr == "step" and "optim" in ast.unparse(node.func.value).lower():
                return True
    return False


#: Chapters that still break the rule, with what must change (strict xfail: fixing one makes the test say so).
KNOWN_STEP_VIOLATIONS: dict[str, str] = {}


@pytest.mark.parametrize("path", [
    pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=KNOWN_STEP_VIOLATIONS[p.stem]))
    if p.stem in KNOWN_STEP_VIOLATIONS else p for p in NOTEBOOKS], ids=lambda p: p.stem)
def test_no_optimiser_step_outside_a_lesson_listing(path):
    for index, cell, text in _code_cells(path):
        tags = cell.get("metadata", {}).get("tags", [])
        tree = _parse_cell(text)
        # exercise solutions (an implement-it may ask for a training step) are checked against genlab instead
        if tree is None or "lesson-listing" in tags or "solution" in tags:
            continue
        assert not _runs_an_optimiser_step(tree), (
            f"{path.name} cell {index} runs .backward() or an optimiser step: training goes through "
            "genlab.train.Trainer; article code belongs in a cell tagged lesson-listing, followed by a check")
