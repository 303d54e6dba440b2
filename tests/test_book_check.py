"""The built book as a reader meets it: every page opened in headless Chromium with the network off.

Skipped, with the reason, when Chromium is not installed (Debian/Ubuntu: ``apt-get install -y chromium``).

Choice: the test **builds the book once** (the same command as ``make book``; Sphinx rebuilds only what
changed, and a full build from scratch takes about 6 s of CPU) and then checks every page with
``tools/check_book.py`` (15-35 s wall for the whole book, about 4 CPU-seconds). That keeps ``make test``
honest about the book actually published, for about 15-20 CPU-seconds in all (measured: 61-124 s wall on a
2-core machine under a load of 16-23). A second test feeds the checker a page with every defect it must
catch, so a checker that silently passes everything fails here.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_book", ROOT / "tools" / "check_book.py")
check_book = importlib.util.module_from_spec(spec)
sys.modules["check_book"] = check_book  # dataclasses look the module up while it loads
spec.loader.exec_module(check_book)

CHROMIUM = check_book.find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install -y chromium): the browser check of the book "
                             "is skipped")


@needs_chromium
def test_checker_catches_every_defect(tmp_path):
    (tmp_path / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=book/intro.html" />')
    (tmp_path / "other.html").write_text('<html><body><main><p id="here">other</p></main></body></html>')
    (tmp_path / "page.html").write_text("""<html><body><main>
<p>Raw math: \\(x^2\\) and $$y$$ left untypeset.</p>
<img src="missing.png">
<div class="cell tag_solution"><div class="cell_input"><pre>answer = 42</pre></div></div>
<div class="cell_output"><pre>Traceback (most recent call last):\nValueError: boom</pre></div>
<div class="cell_input" style="width:200px"><pre style="white-space:pre;overflow:hidden;width:200px">
import numpy, torch, matplotlib, scipy, sklearn, pandas, statsmodels, hmmlearn, mlxtend, tqdm, genlab, ipywidgets
</pre></div>
<a href="nowhere.html">broken</a> <a href="other.html#there">bad anchor</a> <a href="other.html#here">fine</a>
<script src="https://cdn.example.org/lib.js"></script>
</main></body></html>""")
    (report,) = check_book.run(tmp_path, None, pages=["page.html"], chromium=CHROMIUM)
    problems = "\n".join(report.problems)
    for expected in ["raw LaTeX", "broken image", "solution visible", "error in an output", "cut at the right edge",
                     "broken link: nowhere.html", "broken anchor: other.html#there", "asked the network"]:
        assert expected in problems, f"the checker missed {expected!r}; it reported:\n{problems}"
    assert "#here" not in problems


@needs_chromium
def test_the_built_book_passes_in_a_browser_offline():
    build = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-book"), "build", ".", "--toc", "book/_toc.yml", "--config",
         "_config.yml", "--path-output", "book", "-W", "-n", "--keep-going"],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, f"the book does not build cleanly:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    reports = check_book.run(check_book.DEFAULT_HTML, check_book.DEFAULT_SCREENSHOTS, chromium=CHROMIUM)
    failures = [f"{r.page}: {p}" for r in reports for p in r.problems]
    assert not failures, "the book fails in the browser:\n" + "\n".join(failures)
    pages = {r.page for r in reports}
    assert {"book/intro.html", "chapters/03_gaussian_mixtures.html"} <= pages
    for name in check_book.SCREENSHOT_PAGES:
        assert (check_book.DEFAULT_SCREENSHOTS / f"{name}.png").stat().st_size > 10_000
