"""Open every page of the built book in headless Chromium, with the network off, and check it.

``make check-book`` builds the book and runs this script; ``tests/test_book_check.py`` runs it from
``make test`` when Chromium is installed. For every HTML page of the book it checks that

* the page loads (every chapter listed in ``book/_toc.yml`` has a page);
* math is typeset: MathJax (shipped with the book) rendered every formula, none failed, and no raw
  ``\\(``, ``\\[``, ``$$`` or ``\\begin{`` is left in the visible text outside code;
* every image loaded (no broken figure);
* solution cells (tagged ``solution``) are hidden until the reader opens them;
* no Python traceback or ``...Error:`` appears in a cell output, and Sphinx left no error box;
* no code line is cut at the right edge of its block;
* every internal link (``href`` inside the book) points at an existing page and anchor;
* the page asked nothing from the network (the course must work offline).

Screenshots of the front page, one classical and one deep chapter are written as small PNGs to
``book/_build/screenshots`` (build artefacts, not committed).

The browser is driven through the Chrome DevTools protocol over a local websocket (the
``websocket-client`` package); the network is cut twice: host names do not resolve, and the page's
network is emulated offline.

Usage: ``python tools/check_book.py [--html book/_build/html] [--screenshots DIR] [--page PATH ...]``.
Exit status 0 when every page passes, 1 otherwise (each problem is printed, one per line).
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HTML = ROOT / "book" / "_build" / "html"
DEFAULT_SCREENSHOTS = ROOT / "book" / "_build" / "screenshots"
#: Pages photographed: the front page, a classical chapter and a deep chapter.
SCREENSHOT_PAGES = {
    "index": "book/intro.html",
    "classical_03_gaussian_mixtures": "chapters/03_gaussian_mixtures.html",
    "deep_09_vaes": "chapters/09_vaes.html",
}
#: Generated pages that are not part of the course's text.
SKIPPED_PAGES = {"genindex.html", "search.html"}
#: Browser errors that come from the book's toolchain, not from the course, and change nothing a reader
#: sees: sphinx-thebe writes its inline configuration script twice on every page (a `const` declared
#: twice); thebe (live code in the page) is not used by this book.
KNOWN_JS_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Path of a Chromium (or Chrome) executable, or None. ``CHROMIUM`` overrides the search."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


# JavaScript run in each page once it has loaded: waits for MathJax, then reports what it sees.
PAGE_PROBE = r"""
(async () => {
  const out = {};
  out.has_mathjax = !!(window.MathJax && window.MathJax.startup && window.MathJax.startup.promise);
  if (out.has_mathjax) {
    try { await window.MathJax.startup.promise; } catch (e) { out.mathjax_error = String(e); }
  }
  // Give images a moment to finish (they are local files; this is short).
  const deadline = Date.now() + 5000;
  while ([...document.images].some(img => !img.complete) && Date.now() < deadline) {
    await new Promise(r => setTimeout(r, 50));
  }
  const main = document.querySelector('main') || document.body;
  const maths = [...main.querySelectorAll('span.math, div.math')];
  out.n_math = maths.length;
  out.untypeset = maths.filter(el => !el.querySelector('mjx-container'))
                       .map(el => el.textContent.trim().slice(0, 60));
  out.math_errors = [...main.querySelectorAll('mjx-merror')].map(el => el.textContent.slice(0, 60));
  // `$$ ... $$` written inside a paragraph or list item is read as `$` + inline math + `$`.
  out.stray_dollars = maths.filter(el => {
      const before = el.previousSibling, after = el.nextSibling;
      return before && after && before.nodeType === 3 && after.nodeType === 3
             && before.textContent.endsWith('$') && after.textContent.startsWith('$');
    }).map(el => (el.parentElement.textContent || '').trim().slice(0, 60).replace(/\s+/g, ' '));
  // Visible text outside code, inputs and MathJax's own output.
  const clone = main.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container, .highlight, textarea')
       .forEach(el => el.remove());
  const text = clone.innerText || clone.textContent || '';
  out.raw_math = [];
  for (const pattern of ['\\(', '\\[', '$$', '\\begin{']) {
    const i = text.indexOf(pattern);
    if (i >= 0) out.raw_math.push(text.slice(Math.max(0, i - 20), i + 40).replace(/\s+/g, ' '));
  }
  out.n_images = document.images.length;
  out.broken_images = [...document.images]
      .filter(img => !(img.complete && img.naturalWidth > 0))
      .map(img => img.getAttribute('src'));
  const solutions = [...main.querySelectorAll('.tag_solution')];
  out.n_solutions = solutions.length;
  out.visible_solutions = solutions.filter(cell => {
      const input = cell.querySelector('.cell_input') || cell;
      return input.checkVisibility ? input.checkVisibility() : input.getClientRects().length > 0;
    }).map(cell => (cell.querySelector('.cell_input') || cell).textContent.trim().slice(0, 60));
  out.error_outputs = [...main.querySelectorAll('.cell_output')]
      .map(el => el.innerText || el.textContent || '')
      .filter(t => /Traceback \(most recent call last\)|\b[A-Z][A-Za-z]*(Error|Exception)\b:/.test(t))
      .map(t => t.trim().slice(0, 100).replace(/\s+/g, ' '));
  out.error_outputs.push(...[...main.querySelectorAll('.output.traceback, .output.error, .system-message')]
      .map(el => (el.textContent || '').trim().slice(0, 100).replace(/\s+/g, ' ')));
  out.cut_code = [...main.querySelectorAll('.cell_input pre, div.highlight pre')]
      .filter(pre => pre.checkVisibility && pre.checkVisibility() && pre.scrollWidth > pre.clientWidth + 2)
      .map(pre => pre.textContent.trim().slice(0, 60));
  out.links = [...document.querySelectorAll('a[href]')].map(a => a.href);
  out.title = document.title;
  return JSON.stringify(out);
})()
"""


class DevTools:
    """A minimal Chrome DevTools protocol client: one page target over a websocket."""

    def __init__(self, chromium: str, *, width: int = 1100, height: int = 800) -> None:
        import websocket  # websocket-client, a dev dependency

        self.profile = tempfile.mkdtemp(prefix="genlab-chromium-")
        args = [
            chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--allow-file-access-from-files", "--remote-allow-origins=*",
            # Network off: no host name resolves (the DevTools socket is a loopback address).
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank",
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError(f"Chromium ({chromium}) did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            targets = json.load(response)
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Network.enable")
        self.call("Network.emulateNetworkConditions", offline=True, latency=0,
                  downloadThroughput=-1, uploadThroughput=-1)
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self.next_id += 1
        message_id = self.next_id
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str, *, await_promise: bool = False):
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=await_promise,
                           returnByValue=True, timeout=60000)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def open(self, url: str, timeout: float = 30.0) -> None:
        """Navigate and wait until the new document has loaded."""
        self.evaluate("window.__genlab_previous = true")
        self.events.clear()
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.evaluate("!window.__genlab_previous && document.readyState === 'complete'"):
                    return
            except RuntimeError:
                pass  # the context is being replaced
            time.sleep(0.05)
        raise TimeoutError(f"{url} did not finish loading in {timeout:.0f} s")

    def screenshot(self, path: Path, scale: float = 0.75) -> None:
        """The visible part of the page, scaled down (a small PNG: about 100 KB)."""
        metrics = self.call("Page.getLayoutMetrics")["cssVisualViewport"]
        clip = {"x": 0, "y": 0, "width": metrics["clientWidth"], "height": metrics["clientHeight"], "scale": scale}
        data = self.call("Page.captureScreenshot", format="png", clip=clip)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
            shutil.rmtree(self.profile, ignore_errors=True)


@dataclass
class PageReport:
    page: str
    problems: list[str] = field(default_factory=list)
    n_math: int = 0
    n_images: int = 0
    n_solutions: int = 0


def toc_pages(root: Path = ROOT) -> list[str]:
    """HTML pages the table of contents promises (relative to the HTML root)."""
    import yaml

    toc = yaml.safe_load((root / "book" / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [entry["file"] for entry in part.get("chapters", [])]
    return [f"{name}.html" for name in files]


def _anchors(path: Path, cache: dict[Path, set[str]]) -> set[str]:
    if path not in cache:
        text = path.read_text(encoding="utf-8", errors="replace")
        cache[path] = set(re.findall(r'\b(?:id|name)="([^"]+)"', text))
    return cache[path]


def check_links(links: list[str], html_root: Path, cache: dict[Path, set[str]]) -> list[str]:
    """Problems with links that point inside the book (file URLs under ``html_root``)."""
    problems = []
    root = html_root.resolve()
    for link in sorted(set(links)):
        parsed = urllib.parse.urlparse(link)
        if parsed.scheme != "file":
            continue
        target = Path(urllib.parse.unquote(parsed.path))
        if root not in target.parents and target != root:
            problems.append(f"link leaves the book: {link}")
            continue
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"broken link: {target.relative_to(root)}")
        elif parsed.fragment and target.suffix == ".html":
            if urllib.parse.unquote(parsed.fragment) not in _anchors(target, cache):
                problems.append(f"broken anchor: {target.relative_to(root)}#{parsed.fragment}")
    return problems


def check_page(browser: DevTools, html_root: Path, page: str, cache: dict[Path, set[str]]) -> PageReport:
    report = PageReport(page)
    url = (html_root / page).resolve().as_uri()
    try:
        browser.open(url)
        probe = json.loads(browser.evaluate(PAGE_PROBE, await_promise=True))
    except (RuntimeError, TimeoutError) as err:
        report.problems.append(f"did not load: {err}")
        return report
    report.n_math, report.n_images, report.n_solutions = probe["n_math"], probe["n_images"], probe["n_solutions"]
    if probe["n_math"] and not probe["has_mathjax"]:
        report.problems.append("MathJax did not load: formulas stay raw LaTeX")
    if probe.get("mathjax_error"):
        report.problems.append(f"MathJax failed: {probe['mathjax_error']}")
    for text in probe["untypeset"][:5]:
        report.problems.append(f"formula not typeset: {text!r}")
    for text in probe["math_errors"][:5]:
        report.problems.append(f"MathJax error in formula: {text!r}")
    for text in probe["stray_dollars"][:5]:
        report.problems.append(f"stray $ around a formula (a $$ display inside a paragraph or list item: put $$ "
                               f"on lines of its own, with a blank line before and after): {text!r}")
    for text in probe["raw_math"]:
        report.problems.append(f"raw LaTeX in the page: {text!r}")
    for src in probe["broken_images"]:
        report.problems.append(f"broken image: {src}")
    for text in probe["visible_solutions"]:
        report.problems.append(f"solution visible without a click: {text!r}")
    for text in probe["error_outputs"]:
        report.problems.append(f"error in an output: {text!r}")
    for text in probe["cut_code"]:
        report.problems.append(f"code line cut at the right edge: {text!r}")
    report.problems += check_links(probe["links"], html_root, cache)
    for event in browser.events:
        if event["method"] == "Network.requestWillBeSent":
            request_url = event["params"]["request"]["url"]
            if request_url.startswith(("http:", "https:")):
                report.problems.append(f"asked the network for {request_url[:100]}")
        elif event["method"] == "Runtime.exceptionThrown":
            details = event["params"]["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "")
            first_line = text.splitlines()[0][:100] if text else "?"
            if not any(known in first_line for known in KNOWN_JS_ERRORS):
                report.problems.append(f"JavaScript error: {first_line}")
    return report


def list_pages(html_root: Path) -> list[str]:
    pages = []
    for path in sorted(html_root.rglob("*.html")):
        relative = path.relative_to(html_root).as_posix()
        if relative.startswith(("_static/", "_sources/", "_images/")) or relative in SKIPPED_PAGES:
            continue
        pages.append(relative)
    return pages


def run(html_root: Path, screenshots: Path | None, pages: list[str] | None = None,
        chromium: str | None = None) -> list[PageReport]:
    """Check ``pages`` (default: every page of the book) and return one report per page."""
    html_root = html_root.resolve()
    if not (html_root / "index.html").is_file():
        raise FileNotFoundError(f"no built book at {html_root}; build it first (make book)")
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("Chromium not found; install it with: sudo apt-get install -y chromium")
    reports = []
    if pages is None:
        pages = list_pages(html_root)
        for expected in toc_pages():
            if not (html_root / expected).is_file():
                reports.append(PageReport(expected, [f"listed in book/_toc.yml but not built: {expected}"]))
    browser = DevTools(chromium)
    cache: dict[Path, set[str]] = {}
    try:
        for page in pages:
            if page == "index.html":  # a redirect to the front page: check that it points there
                text = (html_root / page).read_text(encoding="utf-8")
                report = PageReport(page)
                if "book/intro.html" not in text:
                    report.problems.append("index.html does not lead to book/intro.html")
                reports.append(report)
                continue
            reports.append(check_page(browser, html_root, page, cache))
        if screenshots is not None:
            for name, page in SCREENSHOT_PAGES.items():
                if (html_root / page).is_file():
                    browser.open((html_root / page).resolve().as_uri())
                    browser.evaluate("(async () => { if (window.MathJax && MathJax.startup) "
                                     "await MathJax.startup.promise; })()", await_promise=True)
                    browser.screenshot(screenshots / f"{name}.png")
    finally:
        browser.close()
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=DEFAULT_HTML, help="the built book (default: %(default)s)")
    parser.add_argument("--screenshots", type=Path, default=DEFAULT_SCREENSHOTS,
                        help="where the PNG screenshots go (default: %(default)s)")
    parser.add_argument("--no-screenshots", action="store_true")
    parser.add_argument("--page", action="append", help="check only this page (relative to --html); repeatable")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        reports = run(args.html, None if args.no_screenshots else args.screenshots, args.page)
    except FileNotFoundError as err:
        print(f"check-book: {err}", file=sys.stderr)
        return 2
    n_problems = 0
    for report in reports:
        status = "ok " if not report.problems else "FAIL"
        print(f"{status} {report.page}: {report.n_math} formulas, {report.n_images} images, "
              f"{report.n_solutions} hidden solutions")
        for problem in report.problems:
            print(f"     - {problem}")
        n_problems += len(report.problems)
    elapsed = time.perf_counter() - start
    print(f"check-book: {len(reports)} pages, {n_problems} problem(s), {elapsed:.1f} s"
          + ("" if args.no_screenshots else f"; screenshots in {args.screenshots}"))
    return 1 if n_problems else 0


if __name__ == "__main__":
    sys.exit(main())
