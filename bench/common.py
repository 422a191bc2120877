"""What the benchmarks share: bank marketing, its spec, the two commands a data scientist runs
(etl/prepare.py and training_jobs/run_local.py), each in a fresh process, :func:`run`, which
runs a step and, when the step fails, stops the benchmark with that step's own error output, and
:func:`measured`, which also times it and samples the peak memory of each process it starts."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "bank-marketing" / "bank-additional.csv"
FULL = SOURCE.with_name("bank-additional-full.csv")  # 41,188 rows of the same columns
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


def prepare_command(raw: Path, output: Path, script: Path = ROOT / "etl" / "prepare.py") -> list[str]:
    """python etl/prepare.py --input RAW --spec SPEC --output OUTPUT"""
    return [sys.executable, str(script), "--input", str(raw), "--spec", str(SPEC), "--output", str(output)]


def prepare(raw: Path, output: Path) -> None:
    """python etl/prepare.py --input RAW --spec SPEC --output OUTPUT"""
    run(prepare_command(raw, output))


@dataclass(frozen=True)
class Measured:
    """A finished step: its wall time and, per kind of process in its tree ("java", "python"),
    the largest peak resident set (VmHWM) of any one such process, in MiB."""

    wall: float
    peak_mib: dict[str, float]


def measured(command: list[str], interval: float = 0.5) -> Measured:
    """:func:`run`, timed, with the process tree's peak memory sampled every ``interval`` seconds
    from /proc (Linux): each process's VmHWM is its own peak, so a sample only has to come before
    the process ends. A command that starts no process of its own (the pandas reference) gets its
    exact peak from the kernel when it ends (wait4's ru_maxrss); a descendant that lives less than
    ``interval`` may be missed. Sampling more often takes CPU from the step measured."""
    peaks: dict[int, tuple[str, int]] = {}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        while True:
            ended, status, usage = os.wait4(process.pid, os.WNOHANG)
            if ended:
                break
            for pid in _tree(process.pid):
                sample = _peak_kib(pid)
                if sample is not None:
                    peaks[pid] = max(peaks.get(pid, sample), sample, key=lambda s: s[1])
            time.sleep(interval)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if set(peaks) <= {process.pid}:  # ru_maxrss (KiB) is the largest of the process and its children
            name = peaks.get(process.pid, (Path(command[0]).name, 0))[0]
            peaks[process.pid] = (name, max(peaks.get(process.pid, (name, 0))[1], usage.ru_maxrss))
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(command, process.returncode, out.read(), err.read())
    if result.returncode != 0:
        raise StepFailed(failure(command, result))
    kinds: dict[str, float] = {}
    for name, kib in peaks.values():
        kind = "java" if name.startswith("java") else "python" if name.startswith("python") else name
        kinds[kind] = max(kinds.get(kind, 0.0), kib / 1024)
    return Measured(wall, kinds)


def _tree(root: int) -> list[int]:
    """``root`` and its descendants, from each process's parent in /proc/<pid>/stat."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                    # pid (comm) state ppid ...: comm may hold spaces and parentheses
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def _peak_kib(pid: int) -> tuple[str, int] | None:
    """The process's name and its peak resident set in KiB (None: it has ended)."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
            fields = dict(line.split(":", 1) for line in handle if ":" in line)
    except OSError:
        return None
    if "VmHWM" not in fields:
        return None
    return fields["Name"].strip(), int(fields["VmHWM"].split()[0])


def train(prepared: Path, out: Path) -> None:
    """python training_jobs/run_local.py --prepared PREPARED --out OUT --spec SPEC"""
    script = ROOT / "training_jobs" / "run_local.py"
    run([sys.executable, str(script), "--prepared", str(prepared), "--out", str(out), "--spec", str(SPEC)])
