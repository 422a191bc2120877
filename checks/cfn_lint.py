"""cfn-lint over synthesized templates, through its Python API."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from cfnlint.api import ManualArgs, lint_file


@dataclass(frozen=True)
class LintResult:
    template: str
    errors: list[str]
    warnings: list[str]


def lint_template(path: Path, regions: list[str]) -> LintResult:
    path = Path(path)
    return _lint(str(path.resolve()), path.stat().st_mtime_ns, tuple(regions))


@functools.lru_cache(maxsize=64)
def _lint(path: str, modified: int, regions: tuple[str, ...]) -> LintResult:
    """cfn-lint of one template as it is on disk (the same file and regions give the same answer)."""
    matches = lint_file(Path(path), config=ManualArgs(regions=list(regions)))
    errors: list[str] = []
    warnings: list[str] = []
    for match in matches:
        line = f"{match.rule.id} {match.message} ({Path(path).name}:{match.linenumber})"
        (errors if match.rule.severity == "error" else warnings).append(line)
    return LintResult(template=Path(path).name, errors=errors, warnings=warnings)
