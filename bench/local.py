"""Benchmark: the local platform end to end on bank marketing, and where the time goes.

    python bench/local.py
    python bench/local.py --assembly .local/cdk.out

Synthesizes the dev stage into a temporary folder, or takes the assembly ``--assembly`` names
(the second command: the one `make local` left), then runs ``python -m local`` in a fresh
process (so Spark's and moto's start are inside the figure) and prints the wall time, the twin's
own steps (from ``report.json``) and the time spent in each kind of work (from ``trace.json``:
the Glue run, each training job, function invocations, the rollout). Target (issue 9): upload to
prediction in 45 s or less on 2 cores, after set-up.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from common import ROOT, run

TARGET = 45.0


def synthesize(outdir: Path) -> None:
    code = f"from app import build_app; build_app({{'stage': 'dev'}}, outdir={str(outdir)!r}).synth()"
    run([sys.executable, "-c", code], cwd=ROOT)


def spans(trace: list[dict]) -> dict[str, list[float]]:
    """Seconds of each piece of work by kind, from its start entry to its end entry in the trace
    (a tuning job's training jobs are queued together, so theirs include the wait)."""
    started: dict[str, float] = {}
    spent: dict[str, list[float]] = defaultdict(list)
    for entry in trace:
        if entry["kind"] == "job":
            label = {"glue": "Glue job run"}.get(entry["service"]) or f"SageMaker {entry['job_type']} job"
            key = f"{label}:{entry.get('job')}:{entry.get('run')}"
            if entry["status"] in ("RUNNING", "InProgress"):
                started[key] = entry["at"]
            elif key in started:
                spent[label].append(entry["at"] - started.pop(key))
        elif entry["kind"] == "stack" and entry["status"] == "UPDATE_IN_PROGRESS":
            started["rollout"] = entry["at"]
        elif entry["kind"] == "stack" and entry["status"] == "UPDATE_COMPLETE" and "rollout" in started:
            spent["rollout (stack update)"].append(entry["at"] - started.pop("rollout"))
    return dict(spent)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assembly", type=Path, help="a synthesized dev stage (default: synthesize one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        assembly = args.assembly or Path(tmp) / "cdk.out"
        if args.assembly is None:
            print("synthesizing the dev stage ...", flush=True)
            synthesize(assembly)
        state = Path(tmp) / "state"
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "local", "--assembly", str(assembly), "--state", str(state)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        if result.returncode != 0:
            print(result.stdout[-3000:], result.stderr[-3000:], sep="\n")
            return 1
        report = json.loads((state / "report.json").read_text())
        trace = json.loads((state / "trace.json").read_text())
    deploy = next(
        e["at"] for e in trace if e["kind"] == "stack" and e["status"] == "CREATE_COMPLETE" and "Hosting" in e["stack"]
    )
    chain = sum(step["seconds"] for step in report["steps"] if step["name"] != "deploy")
    print(f"python -m local, bank marketing: {wall:.1f} s wall (process start, twin set-up, chain, report)")
    print(f"  set-up (moto, stacks, assets)   {deploy:6.1f} s")
    print(f"  upload to prediction + batch    {chain:6.1f} s   (target {TARGET:.0f} s after set-up)")
    for step in report["steps"]:
        if step["name"] != "deploy":
            print(f"    {step['name']:<28} {step['seconds']:6.1f} s")
    print("  by kind of work (trace):")
    for label, seconds in sorted(spans(trace).items(), key=lambda item: -max(item[1])):
        many = f"  ({len(seconds)}, longest {max(seconds):.1f} s)" if len(seconds) > 1 else ""
        print(f"    {label:<28} {sum(seconds) / len(seconds):6.1f} s{' each' if many else ''}{many}")
    invocations = sum(1 for e in trace if e["kind"] == "invoke")
    calls = sum(1 for e in trace if e["kind"] == "call")
    print(f"    {invocations} function invocations, {calls} AWS calls recorded")
    print("OK" if chain <= TARGET else f"SLOWER than the {TARGET:.0f} s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
