"""Benchmark: import time of every Lambda handler, as a cold start pays it.

    python bench/handlers.py

Each handler is imported in a fresh interpreter with `python -X importtime`, with exactly the
environment variables its stack sets, at the values the tests give them (`ENVIRONMENTS` in
tests/functions.py, which tests/test_function_settings.py holds to the synthesized templates),
dummy AWS credentials and none of the caller's AWS settings: importing reads the function's
settings and creates its boto3 clients, and calls nothing. Prints the median import time of
three per handler; a handler that fails to import is shown with its own error, the others are
still measured, and the benchmark exits with status 1. Target (issue 4): under 300 ms each.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from common import ROOT, StepFailed, run

# The project root first: tests.functions imports the project's `local` package, which this
# folder's local.py would otherwise shadow (a script's own folder heads sys.path).
sys.path.insert(0, str(ROOT))

from tests.functions import ENVIRONMENTS, FAKE_CREDENTIALS

TARGET_MS = 300


def environment(function: str) -> dict[str, str]:
    """The variables ``function``'s stack sets, as the tests set them, and dummy credentials."""
    if function not in ENVIRONMENTS:
        raise StepFailed(
            f"error: {function}: no environment in tests/functions.py (ENVIRONMENTS); "
            "add the variables its stack sets there"
        )
    return {**FAKE_CREDENTIALS, **ENVIRONMENTS[function]}


def child_environment(folder: Path, variables: dict[str, str]) -> dict[str, str]:
    """This process's environment without its AWS settings (a profile, real credentials, a
    region), plus ``variables``, with the handler's folder and etl/ (its runtime library, shipped
    beside it) on the path."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    return {**inherited, **variables, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT / "etl")])}


def import_ms(folder: Path, variables: dict[str, str]) -> float:
    """Milliseconds to import ``folder``'s handler with ``variables`` set; :class:`StepFailed`
    with the import's own error when it fails."""
    result = run(
        [sys.executable, "-X", "importtime", "-c", "import handler"],
        env=child_environment(folder, variables),
        cwd=folder,
    )
    # The last line is the top-level module: its cumulative time covers everything it imported.
    cumulative = [
        int(m.group(1)) for m in re.finditer(r"import time:\s+\d+ \|\s+(\d+) \| handler$", result.stderr, re.M)
    ]
    return cumulative[-1] / 1000


def main() -> int:
    failed = []
    for folder in sorted(p for p in (ROOT / "lambda").iterdir() if (p / "handler.py").exists()):
        try:
            variables = environment(folder.name)
            runs = sorted(import_ms(folder, variables) for _ in range(3))
        except StepFailed as failure:
            print(f"{folder.name}: FAILED\n{failure}", flush=True)
            failed.append(folder.name)
            continue
        median = runs[1]
        verdict = "within" if median < TARGET_MS else "OVER"
        print(f"{folder.name}: import {median:.0f} ms (median of 3; {verdict} the {TARGET_MS} ms target)", flush=True)
    if failed:
        print(f"{len(failed)} handler(s) failed to import: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
