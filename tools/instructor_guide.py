"""Regenerate the tables of the instructor guide (book/instructors.md) from the chapters themselves.

The guide's hand-written prose stays as it is; the parts between ``<!-- BEGIN GENERATED: name -->`` and
``<!-- END GENERATED: name -->`` are rewritten:

* ``dependencies``: every chapter of ``book/_toc.yml``, its prerequisites (the chapters linked from the
  **Prerequisites.** paragraph at the top of the chapter) and the chapters that build on it;
* ``assignments``: each chapter's exercises, with the ids that ``check(...)`` and nbgrader use;
* ``timing``: the time to run each notebook, read from ``benchmarks/results/book_cost.json`` (quick
  profile) and ``benchmarks/results/book_cost_full.json`` (full profile) when present.

The book build runs this module as a Sphinx extension, so the published guide is always current; run
``python tools/instructor_guide.py`` to refresh the file itself (``--check`` exits 1 when it is out of date).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from genlab.exercises import find_exercises, load_notebook

ROOT = Path(__file__).resolve().parents[1]

GUIDE = ROOT / "book" / "instructors.md"
COST_FILES = {"quick": ROOT / "benchmarks" / "results" / "book_cost.json",
              "full": ROOT / "benchmarks" / "results" / "book_cost_full.json"}

#: The paragraph of a chapter's first cell that names what it builds on, with links to those chapters.
PREREQUISITES_PARAGRAPH = re.compile(r"\*\*Prerequisites\.\*\*(.*?)(?:\n\s*\n|\Z)", re.S)


def toc_chapters(root: Path = ROOT) -> list[str]:
    """Chapter stems in the order of ``book/_toc.yml``."""
    import yaml

    toc = yaml.safe_load((root / "book" / "_toc.yml").read_text(encoding="utf-8"))
    files = [entry["file"] for part in toc.get("parts", []) for entry in part.get("chapters", [])]
    return [name.split("/", 1)[1] for name in files if name.startswith("chapters/")]


def chapter_title(notebook: dict) -> str:
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            match = re.search(r"^#\s+(.+)$", "".join(cell["source"]), re.M)
            if match:
                return match.group(1).strip()
    return "?"


def prerequisites(stem: str, notebook: dict, known: list[str]) -> list[str]:
    """The chapters linked from the **Prerequisites.** paragraph of the chapter's first cell, in course order.

    The chapter page is the one place a prerequisite is stated; this table only collects them.
    Raises ValueError when the paragraph is missing, so a new chapter cannot skip it.
    """
    first = next((c for c in notebook["cells"] if c["cell_type"] == "markdown"), None)
    match = PREREQUISITES_PARAGRAPH.search("".join(first["source"])) if first else None
    if match is None:
        raise ValueError(f"{stem}: its first cell has no '**Prerequisites.**' paragraph")
    linked = set(re.findall(r"\((?:\.\./chapters/|\./)?(\d\d_\w+)\.(?:ipynb|md)\)", match.group(1)))
    return [other for other in known if other in linked]


def _load_costs() -> dict[str, dict[str, dict]]:
    costs = {}
    for profile, path in COST_FILES.items():
        if path.is_file():
            payload = json.loads(path.read_text(encoding="utf-8"))
            stored_profile = payload.get("provenance", {}).get("profile", profile)
            costs[stored_profile] = {"rows": payload.get("notebooks", {}), "provenance": payload.get("provenance", {})}
    return costs


def _short(stem: str) -> str:
    return stem.split("_", 1)[0]


def generate(root: Path = ROOT) -> dict[str, str]:
    """The generated sections, by name."""
    chapters = toc_chapters(root)
    notebooks = {stem: load_notebook(root / "chapters" / f"{stem}.ipynb") for stem in chapters}
    prereq = {stem: prerequisites(stem, notebooks[stem], chapters) for stem in chapters}
    users = {stem: [other for other in chapters if stem in prereq[other]] for stem in chapters}

    def link(stem: str) -> str:
        return f"[{_short(stem)}](../chapters/{stem}.ipynb)"

    rows = ["| chapter | title | builds on | needed by |", "|---|---|---|---|"]
    for stem in chapters:
        rows.append(f"| {link(stem)} | {chapter_title(notebooks[stem])} | "
                    f"{', '.join(link(p) for p in prereq[stem]) or 'Python, NumPy, basic probability'} | "
                    f"{', '.join(link(u) for u in users[stem]) or '—'} |")
    dependencies = "\n".join(rows)

    rows = ["| chapter | exercises (check ids) | suggested use |", "|---|---|---|"]
    for stem in chapters:
        exercises = find_exercises(notebooks[stem])
        titles = [ex.title for ex in exercises]
        ids = "; ".join(f"`{t}`" for t in titles) if titles else "—"
        suggestion = (f"in class: `{titles[0]}`; homework: the other {len(titles) - 1}, "
                      f"autograded ({len(titles)} points in all)" if len(titles) > 1 else "in class")
        rows.append(f"| {link(stem)} | {ids} | {suggestion} |")
    assignments = "\n".join(rows)

    costs = _load_costs()
    rows = ["| chapter | quick profile, wall s (CPU s) | full profile, wall s (CPU s) |", "|---|---|---|"]
    for stem in chapters:
        cells = []
        for profile in ("quick", "full"):
            row = costs.get(profile, {}).get("rows", {}).get(f"{stem}.ipynb")
            if row is None:
                cells.append("pending")
            else:
                cpu = "" if row.get("cpu_s") is None else f" ({row['cpu_s']:.0f})"
                cells.append(f"{row['wall_s']:.0f}{cpu}" + ("" if row.get("passed", True) else " **failed**"))
        rows.append(f"| {link(stem)} | {cells[0]} | {cells[1]} |")
    notes = []
    for profile in ("quick", "full"):
        if profile in costs:
            prov = costs[profile]["provenance"]
            where = ", ".join(str(prov[k]) for k in ("cpu", "device", "created") if prov.get(k))
            notes.append(f"- {profile}: measured by `benchmarks/book_cost.py`" + (f" ({where})" if where else "") + ".")
        else:
            notes.append(f"- {profile}: pending; `{_command(profile)}` measures it and writes "
                         f"`{COST_FILES[profile].relative_to(root)}`.")
    timing = "\n".join(rows) + "\n\n" + "\n".join(notes)
    return {"dependencies": dependencies, "assignments": assignments, "timing": timing}


def _command(profile: str) -> str:
    if profile == "quick":
        return "python benchmarks/book_cost.py"
    return "GENLAB_PROFILE=full python benchmarks/book_cost.py --output benchmarks/results/book_cost_full.json"


def render(text: str, sections: dict[str, str]) -> str:
    for name, body in sections.items():
        pattern = re.compile(rf"(<!-- BEGIN GENERATED: {name} -->\n).*?(<!-- END GENERATED: {name} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"{GUIDE.name} has no generated section {name!r}")
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    return text


def setup(app) -> dict:
    """Sphinx extension (``_config.yml``: ``local_extensions``): the book always shows current tables.

    The guide is regenerated while the book is read, whatever the state of the file on disk, and re-read on
    every build (its tables depend on the chapters, which Sphinx does not know).
    """
    docname = "book/instructors"

    def fill(app, name: str, source: list[str]) -> None:
        if name == docname:
            source[0] = render(source[0], generate())

    app.connect("source-read", fill)
    app.connect("env-get-outdated", lambda app, env, added, changed, removed: [docname])
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the guide is out of date; write nothing")
    args = parser.parse_args(argv)
    current = GUIDE.read_text(encoding="utf-8")
    updated = render(current, generate())
    if args.check:
        if updated != current:
            print(f"{GUIDE.relative_to(ROOT)} is out of date: run python tools/instructor_guide.py")
            return 1
        return 0
    GUIDE.write_text(updated, encoding="utf-8")
    print(f"wrote {GUIDE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
