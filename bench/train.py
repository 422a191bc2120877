"""Benchmark: local training through run_local.py on bank marketing and on a 100-fold copy.

    python bench/train.py
    python bench/train.py --runs 5 --factor 10

The options: --runs (default 3) and --factor (default 100). The data is prepared once with
etl/prepare.py (bank-additional.csv, seed 42). The large case replicates every prepared split
100 times (411,900 rows), so the trainer reads, fits and evaluates 100 times the rows. Each run
is `python training_jobs/run_local.py ...`: the contract set-up, the copy of the channels and
the trainer subprocess are all inside the figure. Prints every run, the median, and the test
metrics. Target (issue 4): under 30 s for the large case on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import SOURCE, prepare, train

TARGET_LARGE = 30.0


def replicate(prepared: Path, factor: int, target: Path) -> Path:
    target.mkdir(parents=True)
    shutil.copyfile(prepared / "schema.json", target / "schema.json")
    for split in ("train", "validation", "test"):
        (target / split).mkdir()
        rows = "".join(path.read_text() for path in sorted((prepared / split).glob("*.csv")))
        (target / split / "part-00000.csv").write_text(rows * factor)
    return target


def timed_training(prepared: Path, out: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    train(prepared, out)
    return time.perf_counter() - started, json.loads((out / "output" / "evaluation.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs of each case (default: %(default)s)")
    parser.add_argument(
        "--factor", type=int, default=100, help="copies of each split in the large case (default: %(default)s)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        prepared = Path(tmp) / "prepared"
        prepare(SOURCE, prepared)
        large = replicate(prepared, args.factor, Path(tmp) / "large")
        rows = sum(json.loads((prepared / "schema.json").read_text())["splits"].values())
        for label, folder, size in (
            ("bank-marketing", prepared, rows),
            (f"bank-marketing x{args.factor}", large, rows * args.factor),
        ):
            walls, evaluation = [], {}
            for number in range(1, args.runs + 1):
                wall, evaluation = timed_training(folder, Path(tmp) / f"out-{label}-{number}")
                walls.append(wall)
                print(f"{label} run {number}: {wall:.2f} s wall (trainer {evaluation['seconds']:.2f} s)")
            test = evaluation["test"]
            verdict = ""
            if folder is large and args.factor == 100:
                within = "within" if statistics.median(walls) < TARGET_LARGE else "OVER"
                verdict = f" ({within} the {TARGET_LARGE:.0f} s target)"
            print(
                f"{label} ({size:,} rows): median of {args.runs}: {statistics.median(walls):.2f} s wall{verdict}; "
                f"test AUC {test['auc']:.4f}, F1 {test['f1']:.4f}, best iteration {evaluation['best_iteration']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
