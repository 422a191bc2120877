"""``python -m checks [cdk.out]``: check a synthesized assembly and print a short summary.

Exits non-zero when cdk-nag has an open finding or a lazy acknowledgement, when an
acknowledgement matches no finding, when a stack carries a stack-wide acknowledgement, when
cfn-lint finds an error, or when synth needed a look-up in an AWS account (the platform
synthesizes from its configuration alone).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from checks.assembly import read_lookups, read_stacks, read_warnings
from checks.cfn_lint import lint_template
from checks.nag import PACKS, problems, read_reports, reports, stack_wide_suppressions, unmatched_acknowledgements

DEFAULT_LINT_REGION = "us-east-1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m checks", description=__doc__)
    parser.add_argument("outdir", nargs="?", default="cdk.out", type=Path)
    args = parser.parse_args(argv)

    stacks = read_stacks(args.outdir)
    findings = read_reports(args.outdir)
    failures = problems(findings, [stack.name for stack in stacks], reports(args.outdir))
    failures += [f"synth needed a look-up in an AWS account: {key}" for key in read_lookups(args.outdir)]
    acknowledged = Counter(f.stack for f in findings if f.compliance == "Suppressed")
    open_findings = Counter(f.stack for f in findings if f.compliance != "Compliant" and f.compliance != "Suppressed")

    print(f"{'stack':<40} {'resources':>9}  {'cdk-nag open/acknowledged':>26}  {'cfn-lint errors/warnings':>24}")
    lint_errors = lint_warnings = 0
    for stack in stacks:
        template = stack.template
        blanket = stack_wide_suppressions(template)
        failures += [f"{stack.name}: stack-wide acknowledgement of {rule}" for rule in blanket]
        failures += unmatched_acknowledgements(stack.name, template, findings)
        lint = lint_template(stack.template_path, [stack.region or DEFAULT_LINT_REGION])
        failures += [f"{stack.name}: cfn-lint {error}" for error in lint.errors]
        lint_errors += len(lint.errors)
        lint_warnings += len(lint.warnings)
        nag = f"{open_findings[stack.name]}/{acknowledged[stack.name]}"
        lint_counts = f"{len(lint.errors)}/{len(lint.warnings)}"
        print(f"{stack.name:<40} {len(template.get('Resources', {})):>9}  {nag:>26}  {lint_counts:>24}")

    print(
        f"cdk-nag ({', '.join(PACKS)}): {sum(open_findings.values())} open, "
        f"{sum(acknowledged.values())} acknowledged with reasons; "
        f"cfn-lint: {lint_errors} errors, {lint_warnings} warnings"
    )
    for warning in read_warnings(args.outdir):
        print(f"WARNING: {warning}", file=sys.stderr)
    if failures:
        print(f"\nFAILED: {len(failures)} problem(s)", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    print("OK: every stack passes cdk-nag and cfn-lint")
    return 0


if __name__ == "__main__":
    sys.exit(main())
