"""Benchmark: import time of every Lambda handler, as a cold start pays it.

    python bench/handlers.py

Each handler is imported in a fresh interpreter with `python -X importtime`, its environment
variables set to placeholders and AWS credentials to dummies (importing creates the boto3
clients once per container; nothing is called). Prints the total import time per handler.
Target (issue 4): under 300 ms each.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 300
PLACEHOLDERS = {
    "JOB_NAME": "job",
    "DATA_BUCKET": "data",
    "ARTIFACTS_BUCKET": "artifacts",
    "DATASET_SPECS": "{}",
    "ROLE_ARN": "arn:aws:iam::123456789012:role/r",
    "KMS_KEY_ARN": "arn:aws:kms:eu-west-1:123456789012:key/k",
    "SUBNETS": "[]",
    "SECURITY_GROUPS": "[]",
    "SOURCE_URI": "s3://assets/sourcedir.tar.gz",
    "IMAGES": "{}",
    "STAGE": "bench",
    "GROUP_PREFIX": "bench",
    "TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:t",
    "DATASETS": "[]",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
}


def import_ms(folder: Path) -> float:
    paths = os.pathsep.join([str(folder), str(ROOT / "etl")])
    code = "import handler"
    env = {**os.environ, **PLACEHOLDERS, "PYTHONPATH": paths}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True, check=True
    )
    # The last line is the top-level module: its cumulative time covers everything it imported.
    cumulative = [
        int(m.group(1)) for m in re.finditer(r"import time:\s+\d+ \|\s+(\d+) \| handler$", result.stderr, re.M)
    ]
    return cumulative[-1] / 1000


def main() -> int:
    for folder in sorted(p for p in (ROOT / "lambda").iterdir() if (p / "handler.py").exists()):
        runs = sorted(import_ms(folder) for _ in range(3))
        median = runs[1]
        verdict = "within" if median < TARGET_MS else "OVER"
        print(f"{folder.name}: import {median:.0f} ms (median of 3; {verdict} the {TARGET_MS} ms target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
