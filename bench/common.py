"""What the benchmarks share: bank marketing, its spec, and the two commands a data scientist
runs (etl/prepare.py and training_jobs/run_local.py), each in a fresh process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "bank-marketing" / "bank-additional.csv"
SPEC = ROOT / "datasets" / "bank-marketing.json"


def prepare(raw: Path, output: Path) -> None:
    """python etl/prepare.py --input RAW --spec SPEC --output OUTPUT"""
    script = ROOT / "etl" / "prepare.py"
    _run([sys.executable, str(script), "--input", str(raw), "--spec", str(SPEC), "--output", str(output)])


def train(prepared: Path, out: Path) -> None:
    """python training_jobs/run_local.py --prepared PREPARED --out OUT --spec SPEC"""
    script = ROOT / "training_jobs" / "run_local.py"
    _run([sys.executable, str(script), "--prepared", str(prepared), "--out", str(out), "--spec", str(SPEC)])


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True)
