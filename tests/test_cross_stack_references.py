"""Every cross-stack reference is strong (an export and Fn::ImportValue), and each is one of the
rows docs/cross-stack-references.md gives a reason for."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "cross-stack-references.md"


def imports(template: dict) -> set[str]:
    found: set[str] = set()

    def walk(value):
        if isinstance(value, dict):
            if isinstance(value.get("Fn::ImportValue"), str):
                found.add(value["Fn::ImportValue"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(template)
    return found


def documented() -> dict[tuple[str, str], str]:
    """(producer, logical id prefix) -> strength, from the table's rows."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[3] in ("strong", "weak"):
            for name in re.findall(r"`(\w+)`", cells[1]):
                rows[cells[0], name] = cells[3]
    return rows


def test_the_table_reads():
    assert documented()[("Data", "PlatformKey")] == "strong"


def test_no_reference_is_weak(stage):
    for name, template in stage.templates.items():
        assert "Fn::GetStackOutput" not in json.dumps(template.to_json()), name


def test_every_reference_is_a_documented_strong_one(stage):
    rows = documented()
    prefix = stage.config.stack_prefix
    undocumented = []
    for name, template in stage.templates.items():
        for export in imports(template.to_json()):
            producer, _, output = export.removeprefix(prefix + "-").partition(":")
            producer = producer.split("-")[0]  # Hosting-<dataset>: one row for every hosting stack
            # CDK names an export ExportsOutput<Ref|FnGetAtt><logical id><attribute><hash>.
            logical = re.sub(r"^ExportsOutput(Ref|FnGetAtt)", "", output)
            if not any(p == producer and logical.startswith(n) for (p, n), s in rows.items() if s == "strong"):
                undocumented.append(f"{name} imports {export}")
    assert undocumented == [], "add a row to docs/cross-stack-references.md"


@pytest.mark.parametrize("consumer", ["hosting-bank-marketing", "studio", "training", "etl", "monitoring"])
def test_each_consumer_imports_what_the_table_says(dev, consumer):
    producers = {
        e.split(":")[0].removeprefix(dev.config.stack_prefix + "-") for e in imports(dev.templates[consumer].to_json())
    }
    expected = {
        "hosting-bank-marketing": {"Data", "Network", "Training"},
        "studio": {"Data", "Network", "Training"},
        "training": {"Data", "Network"},
        "etl": {"Data", "Network"},
        "monitoring": {"Data", "Etl", "Training", "Hosting-bank-marketing"},
    }[consumer]
    assert producers == expected
