"""Read cdk-nag's JSON reports and say what is wrong with them.

A finding is a problem when it is not compliant and not acknowledged (cdk-nag's
``Non-Compliant``), when cdk-nag could not evaluate a rule (``UNKNOWN``: a value it could not
resolve), or when it is acknowledged with a reason that explains nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

PACKS = ("AwsSolutions", "HIPAA.Security", "NIST.800.53.R5")
MIN_REASON_LENGTH = 40
# Reasons that say nothing a reviewer could check.
_BOILERPLATE = re.compile(
    r"^\W*(n/?a|none|todo|tbd|fixme|ok(ay)?|fine|ignore[d]?|suppress(ed)?|not (needed|required|applicable|relevant)"
    r"|false positive|by design|intended|accepted|known issue|will fix later|see above|as above|default)\W*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class NagFinding:
    pack: str
    stack: str
    rule_id: str
    resource: str
    compliance: str
    reason: str
    level: str


def _pack_and_stack(report: Path) -> tuple[str, str]:
    """``<pack>--<stack>-NagReport.json``, as cdk-nag names a report."""
    pack, _, stack = report.name.removesuffix("-NagReport.json").partition("--")
    return pack, stack


def reports(outdir: Path) -> set[tuple[str, str]]:
    """(pack, stack) of every report in the assembly. A pack reports the rules that apply to a
    stack; a stack none of whose resources any rule of the pack checks has an empty report."""
    return {_pack_and_stack(path) for path in Path(outdir).glob("*-NagReport.json")}


def read_reports(outdir: Path) -> list[NagFinding]:
    findings = []
    for path in sorted(Path(outdir).glob("*-NagReport.json")):
        pack, stack = _pack_and_stack(path)
        for line in json.loads(path.read_text(encoding="utf-8"))["lines"]:
            findings.append(
                NagFinding(
                    pack=pack,
                    stack=stack,
                    rule_id=line["ruleId"],
                    resource=line["resourceId"],
                    compliance=line["compliance"],
                    reason=line.get("exceptionReason", ""),
                    level=line.get("ruleLevel", ""),
                )
            )
    return findings


def is_boilerplate(reason: str) -> bool:
    text = reason.strip()
    return len(text) < MIN_REASON_LENGTH or bool(_BOILERPLATE.match(text))


def problems(findings: list[NagFinding], stacks: list[str], reported: set[tuple[str, str]]) -> list[str]:
    """Everything that must be fixed before the assembly is acceptable, one line each."""
    found = []
    for stack in stacks:
        for pack in PACKS:
            if (pack, stack) not in reported:
                found.append(f"{stack}: no {pack} report (was the pack applied to the app?)")
    for f in findings:
        where = f"{f.stack}: {f.rule_id} on {f.resource}"
        if f.compliance == "Non-Compliant":
            found.append(f"{where}: not compliant and not acknowledged ({f.level})")
        elif f.compliance == "UNKNOWN":
            found.append(f"{where}: cdk-nag could not evaluate the rule (unresolved value)")
        elif f.compliance == "Suppressed" and is_boilerplate(f.reason):
            found.append(f"{where}: acknowledged with a reason that explains nothing: {f.reason!r}")
    return found


def stack_wide_suppressions(template: dict) -> list[str]:
    """Rule ids acknowledged for a whole stack (template-level metadata): never allowed."""
    rules = template.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    return [rule["id"] for rule in rules]


def unmatched_acknowledgements(stack: str, template: dict, findings: list[NagFinding]) -> list[str]:
    """Acknowledgements on ``stack``'s resources that no finding of that resource used.

    cdk-nag writes a suppressed finding with the acknowledgement's reason as its exception reason,
    prefixed with ``[<finding>]`` for one given per finding (``applies_to``), so each
    acknowledgement, and each item of a granular one, must appear in the reports. One that does
    not acknowledges nothing: its rule no longer fires there, or its reason was never about this
    resource.
    """
    used: dict[tuple[str, str], set[str]] = {}
    for f in findings:
        if f.stack == stack and f.compliance == "Suppressed":
            used.setdefault((f.resource, f.rule_id), set()).add(f.reason)
    found = []
    for logical_id, resource in template.get("Resources", {}).items():
        metadata = resource.get("Metadata", {})
        path = metadata.get("aws:cdk:path", logical_id)
        for rule in metadata.get("cdk_nag", {}).get("rules_to_suppress", []):
            reasons = used.get((path, rule["id"]), set())
            for item in rule.get("applies_to") or [None]:
                if not any(_acknowledged_by(reason, rule["reason"], item) for reason in reasons):
                    what = rule["id"] + (f" [{item if isinstance(item, str) else item['regex']}]" if item else "")
                    found.append(f"{stack}: {path}: acknowledgement of {what} matches no finding")
    return found


def _acknowledged_by(exception_reason: str, reason: str, item: str | dict | None) -> bool:
    """Whether a suppressed finding's exception reason is this acknowledgement's: the reason itself,
    or ``[<finding>] <reason>`` where the finding is ``item`` (or matches its ``regex``, written
    as cdk-nag takes it, ``/pattern/flags``)."""
    if item is None:
        return exception_reason == reason
    finding, _, rest = exception_reason.removeprefix("[").partition("] ")
    if rest != reason:
        return False
    if isinstance(item, str):
        return finding == item
    pattern, _, flags = item["regex"].removeprefix("/").rpartition("/")
    return re.search(pattern, finding, re.IGNORECASE if "i" in flags else 0) is not None
