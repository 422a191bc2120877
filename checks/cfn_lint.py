"""cfn-lint over synthesized templates, through its Python API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cfnlint.api import ManualArgs, lint_file


@dataclass(frozen=True)
class LintResult:
    template: str
    errors: list[str]
    warnings: list[str]


def lint_template(path: Path, regions: list[str]) -> LintResult:
    matches = lint_file(Path(path), config=ManualArgs(regions=regions))
    errors, warnings = [], []
    for match in matches:
        line = f"{match.rule.id} {match.message} ({Path(path).name}:{match.linenumber})"
        (errors if match.rule.severity == "error" else warnings).append(line)
    return LintResult(template=Path(path).name, errors=errors, warnings=warnings)
