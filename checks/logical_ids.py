"""``python -m checks.logical_ids BEFORE AFTER``: what a change does to the logical ids of two
cloud assemblies of the same stage.

CloudFormation replaces a resource whose logical id changes (a new resource is created and the
old one deleted, or orphaned when retained). For a refactoring, every resource that holds data or
state must keep its id; the others may be replaced. Prints, per stack, the ids kept, removed and
added, and exits 1 when a stateful resource (:data:`STATEFUL_TYPES`) lost its id or changed its
type.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from checks.assembly import read_stacks

# What holds data, state or people's work: replacing one loses it (or orphans a retained copy).
STATEFUL_TYPES = frozenset(
    {
        "AWS::KMS::Key",
        "AWS::S3::Bucket",
        "AWS::Logs::LogGroup",
        "AWS::SQS::Queue",
        "AWS::SNS::Topic",
        "AWS::EC2::VPC",
        "AWS::Glue::Database",
        "AWS::Glue::SecurityConfiguration",
        "AWS::Glue::Connection",
        "AWS::SageMaker::ModelPackageGroup",
        "AWS::SageMaker::Endpoint",
        "AWS::SageMaker::Domain",
        "AWS::SageMaker::UserProfile",
        "AWS::SageMaker::NotebookInstance",
    }
)


def stateful_ids(template: dict[str, Any]) -> dict[str, str]:
    """Logical id -> type of the template's stateful resources."""
    return {
        logical_id: resource["Type"]
        for logical_id, resource in template.get("Resources", {}).items()
        if resource["Type"] in STATEFUL_TYPES
    }


def compare(before: Path, after: Path) -> tuple[list[str], list[str]]:
    """(report lines, problems) for two assemblies."""
    old = {stack.name: stack.template for stack in read_stacks(before)}
    new = {stack.name: stack.template for stack in read_stacks(after)}
    lines: list[str] = []
    problems: list[str] = [f"stack {name} is gone" for name in sorted(set(old) - set(new))]
    for name in sorted(set(old) & set(new)):
        was, now = old[name].get("Resources", {}), new[name].get("Resources", {})
        kept = set(was) & set(now)
        removed, added = sorted(set(was) - set(now)), sorted(set(now) - set(was))
        stateful = stateful_ids(old[name])
        lost = [i for i in removed if i in stateful]
        retyped = [i for i in kept if i in stateful and now[i]["Type"] != was[i]["Type"]]
        problems += [f"{name}: stateful {stateful[i]} {i} would be replaced" for i in lost]
        problems += [f"{name}: {i} changed type" for i in retyped]
        lines.append(
            f"{name}: {len(kept)} kept ({len(set(stateful) & kept)} of {len(stateful)} stateful), "
            f"{len(removed)} replaced, {len(added)} new"
        )
        lines += [f"  - {i} ({was[i]['Type']})" for i in removed]
        lines += [f"  + {i} ({now[i]['Type']})" for i in added]
    return lines, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m checks.logical_ids", description=__doc__)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    lines, problems = compare(args.before, args.after)
    print("\n".join(lines))
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print(f"{len(problems)} stateful resources would be replaced" if problems else "no stateful logical id changed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
