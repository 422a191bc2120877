"""Benchmark: local preparation time of bank marketing, and of a 100-fold replicated copy.

    python bench/prepare.py
    python bench/prepare.py --runs 5 --factor 10

The options: --runs (default 3) and --factor (default 100). Each run is the command a data
scientist types, `python etl/prepare.py --input ... --spec ... --output ...`, in a fresh
process: Spark's start is included. Prints every run and the median, split into the script's own
preparation time (as it reports) and the rest (interpreter, JVM and Spark session start,
shutdown).

The replicated copy repeats the 4,119 rows 100 times (411,900 rows). The job drops exact
duplicates, so its output is again 4,119 rows: the figure measures reading, normalising and
deduplicating 411,900 rows, then the same preparation as the small file.
Targets (issue 3), 2 cores: under 20 s for the small file and under 60 s for the large one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import SOURCE, prepare

TARGETS = {"bank-marketing": 20.0, "bank-marketing x100": 60.0}


def replicate(source: Path, factor: int, target: Path) -> Path:
    header, *rows = source.read_text(encoding="utf-8").splitlines()
    body = "\n".join(rows) + "\n"
    with target.open("w", encoding="utf-8") as handle:
        handle.write(header + "\n")
        for _ in range(factor):
            handle.write(body)
    return target


def one_run(raw: Path, output: Path) -> tuple[float, float]:
    started = time.perf_counter()
    prepare(raw, output)
    wall = time.perf_counter() - started
    report = json.loads((output / "report.json").read_text())
    return wall, report["seconds"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs of each case (default: %(default)s)")
    parser.add_argument(
        "--factor", type=int, default=100, help="copies of the file in the large case (default: %(default)s)"
    )
    args = parser.parse_args()
    if not SOURCE.exists():
        sys.exit(f"{SOURCE} not found: the benchmark reads the shared datasets beside the checkout")

    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        large = replicate(SOURCE, args.factor, Path(tmp) / "bank-x.csv")
        rows = sum(1 for _ in large.open()) - 1
        for label, raw in (("bank-marketing", SOURCE), (f"bank-marketing x{args.factor}", large)):
            results = []
            for run in range(1, args.runs + 1):
                wall, inside = one_run(raw, Path(tmp) / f"out-{run}")
                results.append((wall, inside))
                rest = wall - inside
                print(f"{label} run {run}: {wall:.2f} s wall ({inside:.2f} s preparing, {rest:.2f} s start and stop)")
            wall = statistics.median(w for w, _ in results)
            inside = statistics.median(i for _, i in results)
            target = TARGETS.get(label)
            verdict = "" if target is None else f" ({'within' if wall < target else 'OVER'} the {target:.0f} s target)"
            size = "4,119 rows" if raw == SOURCE else f"{rows:,} rows"
            print(f"{label} ({size}): median of {args.runs}: {wall:.2f} s wall, {inside:.2f} s preparing{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
