"""What the benchmarks share: bank marketing, its spec, the two commands a data scientist runs
(etl/prepare.py and training_jobs/run_local.py), each in a fresh process, and :func:`run`, which
runs a step and, when the step fails, stops the benchmark with that step's own error output."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "bank-marketing" / "bank-additional.csv"
SPEC = ROOT / "datasets" / "bank-marketing.json"
SHOWN = 4000  # characters of a failed step's output shown: its traceback, not Spark's start-up chatter


class StepFailed(SystemExit):
    """A step of a benchmark failed; the message is the command and the end of its own output.
    A SystemExit, so that a benchmark that does not catch it exits with status 1 and the message,
    without a traceback of the benchmark's own that would push the step's error off the screen."""


def run(command: list[str], **options) -> subprocess.CompletedProcess[str]:
    """``command`` in a fresh process, its output captured; :class:`StepFailed` when it fails."""
    result = subprocess.run(command, capture_output=True, text=True, check=False, **options)
    if result.returncode != 0:
        raise StepFailed(failure(command, result))
    return result


def failure(command: list[str], result: subprocess.CompletedProcess[str]) -> str:
    output = "\n".join(part.strip() for part in (result.stdout, result.stderr) if part.strip())
    shown = output if len(output) <= SHOWN else "...\n" + output[-SHOWN:]
    return f"error: `{shlex.join(str(c) for c in command)}` exited with status {result.returncode}:\n{shown}"


def prepare(raw: Path, output: Path) -> None:
    """python etl/prepare.py --input RAW --spec SPEC --output OUTPUT"""
    script = ROOT / "etl" / "prepare.py"
    run([sys.executable, str(script), "--input", str(raw), "--spec", str(SPEC), "--output", str(output)])


def train(prepared: Path, out: Path) -> None:
    """python training_jobs/run_local.py --prepared PREPARED --out OUT --spec SPEC"""
    script = ROOT / "training_jobs" / "run_local.py"
    run([sys.executable, str(script), "--prepared", str(prepared), "--out", str(out), "--spec", str(SPEC)])
