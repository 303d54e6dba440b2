"""The book's cost: how long each chapter notebook takes under nbval, and whether it fits the budget.

Budget (quick profile, 2-core CPU): each notebook at most 180 s, all of them together at most 25 min.

    python benchmarks/book_cost.py                       # run every chapter under nbval, one at a time
    python benchmarks/book_cost.py chapters/03_*.ipynb   # only these
    python benchmarks/book_cost.py --junit report.xml    # read the times of a `pytest --junitxml` run instead

Writes ``benchmarks/results/book_cost.json`` (with provenance; a partial run merges into the stored
file, keeping the chapters it did not re-run) and prints a table. The instructor guide reads this file.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from genlab.results import RESULTS_DIR, load_results, save_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = RESULTS_DIR / "book_cost.json"
PER_NOTEBOOK_BUDGET_S = 180.0
TOTAL_BUDGET_S = 25 * 60.0


def time_notebook(path: Path) -> dict:
    """Run one notebook under ``pytest --nbval-lax``; its wall time, CPU time and outcome."""
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-cell-timeout=600", "-p", "no:cacheprovider",
               "-q", str(path)]
    start, before = time.perf_counter(), os.times()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall, after = time.perf_counter() - start, os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    tail = result.stdout.strip().splitlines()[-1:] or [""]
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "passed": result.returncode == 0, "summary": tail[0]}


def times_from_junit(report: Path) -> dict[str, dict]:
    """Per-notebook times (sum of its cells) from a pytest JUnit XML report."""
    per_file: dict[str, float] = defaultdict(float)
    failed: set[str] = set()
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("file") or case.get("classname", "")
        if ".ipynb" not in name:
            continue
        # pytest names a notebook's cells "chapters/NN_name.ipynb" (file) or "chapters.NN_name.ipynb" (classname)
        notebook = re.sub(r"^.*?(\d\d_[^/]*\.ipynb)$", r"\1", name.split("::")[0])
        per_file[notebook] += float(case.get("time", 0.0))
        if case.find("failure") is not None or case.find("error") is not None:
            failed.add(notebook)
    return {nb: {"wall_s": round(t, 1), "cpu_s": None, "passed": nb not in failed,
                 "summary": "from a JUnit report: the cells' run times, kernel start-up not included"}
            for nb, t in sorted(per_file.items())}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to time (default: every chapter)")
    parser.add_argument("--junit", type=Path, help="read times from a pytest --junitxml report instead of running")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.junit is not None:
        if not args.junit.is_file():
            parser.error(f"no JUnit report at {args.junit}")
        rows = times_from_junit(args.junit)
    else:
        notebooks = args.notebooks or sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
        missing = [str(p) for p in notebooks if not Path(p).is_file()]
        if missing:
            parser.error(f"no such notebook: {', '.join(missing)}")
        rows = {}
        for path in notebooks:
            rows[Path(path).name] = time_notebook(Path(path))
            print(f"{Path(path).name:<40}{rows[Path(path).name]['wall_s']:>8.1f} s", flush=True)
    stored = load_results(args.output).get("notebooks", {}) if args.output.is_file() else {}
    merged = {**stored, **rows}
    total = sum(row["wall_s"] for row in merged.values())
    payload = {
        "budget": {"per_notebook_s": PER_NOTEBOOK_BUDGET_S, "total_s": TOTAL_BUDGET_S},
        "notebooks": dict(sorted(merged.items())),
        "total_wall_s": round(total, 1),
        "within_budget": all(r["wall_s"] <= PER_NOTEBOOK_BUDGET_S for r in merged.values()) and total <= TOTAL_BUDGET_S,
    }
    save_results(args.output, payload, args=args)
    print(f"\n{'notebook':<40}{'wall s':>8}{'cpu s':>8}  ok")
    for name, row in payload["notebooks"].items():
        cpu = "-" if row["cpu_s"] is None else f"{row['cpu_s']:.1f}"
        flag = "" if row["wall_s"] <= PER_NOTEBOOK_BUDGET_S else "  OVER BUDGET"
        print(f"{name:<40}{row['wall_s']:>8.1f}{cpu:>8}  {'yes' if row['passed'] else 'NO'}{flag}")
    print(f"{'total':<40}{total:>8.1f}   (budget {TOTAL_BUDGET_S:.0f} s)")
    return payload


if __name__ == "__main__":
    main()
