"""Benchmark: wall time and peak memory of a full synth of one stage (default: dev).

    python bench/synth.py
    python bench/synth.py --stage prod --account 123456789012 --runs 5

The options: --stage (default dev), --runs (default 3) and --account (none by default; a stage
that names no account, such as prod, needs one). Each run is exactly what `make synth` runs
before its checks: `cdk synth --quiet` with the pinned CLI, into a fresh output folder, in a
fresh process tree (CLI, Python app, jsii's Node). Prints every run and the median. Peak memory
is the largest resident set of any one process in the tree (getrusage of the waited children),
which is the jsii Node process or the Python app. Target (issue 2): under 15 s on a 2-core
machine once dependencies are installed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from common import ROOT, run

TARGET_SECONDS = 15.0

# Runs one synth in its own process so that getrusage(RUSAGE_CHILDREN) covers that run only.
_ONE_RUN = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
wall = time.perf_counter() - start
print(json.dumps({"wall": wall, "peak_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="dev", help="the stage to synthesize (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="how many synths (default: %(default)s)")
    parser.add_argument("--account", default=None, help="the account, for a stage that names none (prod)")
    args = parser.parse_args()

    cdk = shutil.which("cdk")
    if cdk is None:
        sys.exit("cdk CLI not found on PATH: run through `make bench` (it installs the pinned CLI)")
    results = []
    for number in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="bench-synth-") as outdir:
            command = [cdk, "synth", "--quiet", "-o", outdir, "-c", f"stage={args.stage}"]
            if args.account:
                command += ["-c", f"account={args.account}"]
            output = run([sys.executable, "-c", _ONE_RUN, *command], cwd=ROOT).stdout
            result = json.loads(output.strip().splitlines()[-1])
            stacks = len(list(Path(outdir).glob("*.template.json")))
        results.append(result)
        print(f"run {number}: {result['wall']:.2f} s, peak {result['peak_kib'] / 1024:.0f} MiB, {stacks} stacks")

    wall = statistics.median(r["wall"] for r in results)
    peak = statistics.median(r["peak_kib"] for r in results) / 1024
    verdict = "within" if wall < TARGET_SECONDS else "OVER"
    print(
        f"synth {args.stage}: median of {len(results)} runs: {wall:.2f} s wall, {peak:.0f} MiB peak "
        f"({verdict} the {TARGET_SECONDS:.0f} s target)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
