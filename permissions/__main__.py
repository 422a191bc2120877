"""python -m permissions: the permission proof over one or more synthesized cloud assemblies.

    python -m permissions --assembly .permissions/dev --assembly .permissions/prod [--state .permissions]

For each assembly: stand the twin up from it, run the chain on bank marketing (upload to
prediction and batch output), then evaluate every request the platform made, and every request
AWS services make on its behalf, against the assembly's own policies. Prints per role and per
resource policy what was asked and what was allowed, and the grants no request used. Exit status
1 when any request is not allowed or cannot be named, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from local.__main__ import DATA_FILES, SHARED_DATA

DATASET = "bank-marketing"


def prove(assembly_dir: Path, state: Path, dataset: str = DATASET):
    """The twin's run on ``assembly_dir`` and the proof of its requests (evaluated)."""
    from local.assembly import load
    from local.platform import Twin
    from local.scenario import Scenario
    from permissions.proof import Proof

    twin = Twin(load(assembly_dir), state)
    twin.start()
    try:
        run = Scenario(twin, dataset, SHARED_DATA / DATA_FILES[dataset]).execute()
        return run, Proof.of(twin).evaluate()
    finally:
        twin.trace.write(state / "trace.json")
        twin.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m permissions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--assembly", type=Path, action="append", required=True, help="a cloud assembly (repeatable)")
    parser.add_argument("--state", type=Path, default=Path(".permissions"), help="where the twins keep their state")
    args = parser.parse_args(argv)
    for assembly in args.assembly:
        if not (assembly / "manifest.json").is_file():
            print(f"error: {assembly} is not a cloud assembly (no manifest.json); run cdk synth first", file=sys.stderr)
            return 2
    failed = False
    for number, assembly in enumerate(args.assembly):
        print(f"# permission proof: {assembly}", flush=True)
        run, proof = prove(assembly, args.state / f"twin-{number}")
        print(proof.report())
        if run.failures:
            print(f"the chain stopped, so some requests were never made: {run.failures[0]}")
        failed = failed or bool(proof.failures or run.failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
