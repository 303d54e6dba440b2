"""Structure every chapter notebook must keep (the notebooks' *content* is run by nbval)."""
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
BIB_KEYS = set(re.findall(r"@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text()))


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def source(cell):
    return "".join(cell["source"])


def test_there_are_chapters():
    assert NOTEBOOKS, "no chapter notebooks found in chapters/"


def test_toc_lists_exactly_the_existing_chapters():
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    listed = {entry["file"] for part in toc["parts"] for entry in part["chapters"]}
    on_disk = {f"chapters/{path.stem}" for path in NOTEBOOKS}
    assert on_disk <= listed, f"chapters missing from book/_toc.yml: {sorted(on_disk - listed)}"
    for entry in listed:
        exists = (ROOT / f"{entry}.ipynb").exists() or (ROOT / f"{entry}.md").exists()
        assert exists, f"_toc.yml lists {entry}, which does not exist"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_executed_top_to_bottom(path):
    counts = [c["execution_count"] for c in load(path)["cells"] if c["cell_type"] == "code" and source(c).strip()]
    assert counts and None not in counts, f"{path.name}: some code cells were never executed"
    assert counts == list(range(counts[0], counts[0] + len(counts))), f"{path.name}: not one clean top-to-bottom run"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_title_and_no_skipped_heading_levels(path):
    headings = []
    for cell in load(path)["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        in_fence = False
        for line in source(cell).splitlines():
            if line.strip().startswith(("```", "~~~")):
                in_fence = not in_fence
            match = re.match(r"^(#+)\s", line)
            if match and not in_fence:
                headings.append(len(match.group(1)))
    assert headings and headings[0] == 1 and headings.count(1) == 1, f"{path.name}: needs exactly one '#' title, first"
    for previous, current in zip(headings, headings[1:]):
        assert current <= previous + 1, f"{path.name}: heading level jumps from {previous} to {current}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_follow_the_convention(path):
    cells = load(path)["cells"]
    solutions = [c for c in cells if "solution" in c.get("metadata", {}).get("tags", [])]
    checks = [c for c in cells if c["cell_type"] == "code" and re.search(r"\bcheck\(", source(c))]
    assert len(solutions) >= 3, f"{path.name}: needs at least 3 exercises with tagged solution cells"
    assert len(checks) >= 3, f"{path.name}: needs at least 3 check(...) cells"
    for cell in solutions:
        assert "hide-input" in cell["metadata"]["tags"], f"{path.name}: a solution cell is not hidden in the book"
        assert cell["metadata"].get("jupyter", {}).get("source_hidden"), \
            f"{path.name}: a solution cell is not collapsed in JupyterLab (metadata jupyter.source_hidden)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_citations_exist_in_the_bibliography(path):
    text = "\n".join(source(c) for c in load(path)["cells"] if c["cell_type"] == "markdown")
    for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text):
        for key in group.split(","):
            assert key.strip() in BIB_KEYS, f"{path.name} cites {key.strip()!r}, which is not in book/references.bib"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_uses_the_shared_set_up(path):
    cells = load(path)["cells"]
    code = "\n".join(source(c) for c in cells if c["cell_type"] == "code")
    assert "seed_everything" in code, f"{path.name}: seed everything"
    assert "settings(" in code, f"{path.name}: read sizes from genlab.profiles.settings"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_models_and_training_loops_live_in_genlab(path):
    # Model classes and training loops appear only in cells tagged lesson-listing (code shown from the
    # article), and each such cell is followed by a code cell that checks genlab's version is the same.
    cells = load(path)["cells"]
    for index, cell in enumerate(cells):
        text = source(cell)
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] != "code":
            continue
        if "lesson-listing" in tags:
            following = next((c for c in cells[index + 1:] if c["cell_type"] == "code"), None)
            assert following is not None and re.search(r"\bassert\b|\bcheck\(", source(following)), \
                f"{path.name}: the lesson-listing cell {index} must be followed by a code cell asserting that " \
                "genlab's version is the same model (assert ... or check(...))"
            continue
        if "solution" in tags or "Exercise" in text:
            continue
        assert not re.search(r"^\s*class \w+\((nn\.)?Module\)", text, re.M), \
            f"{path.name}: a model is defined in cell {index}; it belongs in genlab (or in a lesson-listing cell)"
        assert not (re.search(r"\.backward\(\)", text) and re.search(r"\b\w*optim\w*\.step\(", text)), \
            f"{path.name}: a training loop is written in cell {index}; use genlab.train.Trainer"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_cell_states_objectives_and_prerequisites(path):
    """Each chapter page says what it teaches and what it builds on (the instructor guide collects the latter)."""
    first = source(load(path)["cells"][0])
    assert "**Learning objectives" in first, f"{path.name}: the first cell has no learning objectives"
    match = re.search(r"\*\*Prerequisites\.\*\*(.*?)(?:\n\s*\n|\Z)", first, re.S)
    assert match, f"{path.name}: the first cell has no '**Prerequisites.**' paragraph"
    linked = re.findall(r"\]\((\d\d_\w+)\.ipynb\)", match.group(1))
    assert linked or "None from this course" in match.group(1), \
        f"{path.name}: the prerequisites paragraph links no chapter (link them as [NN](NN_name.ipynb))"
    for stem in linked:
        assert (ROOT / "chapters" / f"{stem}.ipynb").exists(), f"{path.name}: prerequisite {stem} does not exist"
        assert stem < path.stem, f"{path.name}: prerequisite {stem} comes later in the course"


#: Where an interactive figure teaches (issue: EM iterations, bandwidth, diffusion steps, the visual Turing test).
WIDGETS = {"03_gaussian_mixtures": "slider_figure", "05_nonparametric": "slider_figure",
           "11_diffusion": "image_scrubber", "14_evaluation": "turing_test"}


@pytest.mark.parametrize("stem", sorted(WIDGETS))
def test_interactive_figures_have_a_static_fallback(stem):
    """The widget cell calls genlab.widgets and its stored output holds a static image the book can show."""
    cells = [c for c in load(ROOT / "chapters" / f"{stem}.ipynb")["cells"]
             if c["cell_type"] == "code" and re.search(rf"\b{WIDGETS[stem]}\(", source(c))]
    assert cells, f"{stem}: no cell calls genlab.widgets.{WIDGETS[stem]}"
    for cell in cells:
        kinds = [key for output in cell.get("outputs", []) for key in output.get("data", {})]
        assert "image/png" in kinds, f"{stem}: the {WIDGETS[stem]} cell stored no static figure for the book"
