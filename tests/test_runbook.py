"""docs/runbook.md covers every alarm and every message the platform sends the operators: each
alarm's description (both stages) and each message ends with a link to a section that exists."""

from __future__ import annotations

import re

import pytest

from etl.platform_runtime import RUNBOOK
from tests.conftest import ROOT

LINK = re.compile(r"Runbook: " + re.escape(RUNBOOK) + r"#([a-z0-9-]+)$")


def sections() -> set[str]:
    """The runbook's anchors: its level-3 headings, which are written as the anchors themselves."""
    text = (ROOT / RUNBOOK).read_text(encoding="utf-8")
    return set(re.findall(r"^### ([a-z0-9-]+)$", text, flags=re.MULTILINE))


def test_every_alarm_of_the_stage_links_to_its_section_of_the_runbook(stage):
    alarms = {
        f"{name}/{logical_id}": resource["Properties"].get("AlarmDescription", "")
        for name, template in stage.templates.items()
        for logical_id, resource in template.to_json()["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert len(alarms) >= 10
    unlinked = {where: text for where, text in alarms.items() if not (isinstance(text, str) and LINK.search(text))}
    assert not unlinked, f"alarms without a runbook link: {unlinked}"
    missing = {where: LINK.search(text).group(1) for where, text in alarms.items()}
    assert {where: anchor for where, anchor in missing.items() if anchor not in sections()} == {}


def test_every_message_to_the_operators_links_to_its_section_of_the_runbook(stage):
    """The messages the rules send (Glue failures), from the templates, and those the functions
    publish, from their source: each ends with a link to an existing section."""
    inputs = [
        target.get("Input") or target.get("InputTransformer", {}).get("InputTemplate")
        for template in stage.templates.values()
        for resource in template.to_json()["Resources"].values()
        if resource["Type"] == "AWS::Events::Rule"
        for target in resource["Properties"].get("Targets", [])
    ]
    rules = [text for text in inputs if isinstance(text, str) and "ML platform" in text]
    assert len(rules) >= 2
    for text in rules:
        found = LINK.search(text.strip('"'))
        assert found and found.group(1) in sections(), text
    published = [
        path for path in (ROOT / "lambda").glob("*/handler.py") if "sns.publish(" in path.read_text(encoding="utf-8")
    ]
    assert published
    for path in published:
        source = path.read_text(encoding="utf-8")
        publishes = source.count("sns.publish(")
        anchors = re.findall(r'runtime\.runbook\("([a-z0-9-]+)"\)', source)
        assert len(anchors) >= publishes, f"{path}: {publishes} messages, {len(anchors)} runbook links"
        assert set(anchors) <= sections(), path


@pytest.mark.parametrize("anchor", sorted(sections()))
def test_each_section_says_where_to_look_or_what_to_do(anchor):
    text = (ROOT / RUNBOOK).read_text(encoding="utf-8")
    body = text.split(f"### {anchor}\n", 1)[1].split("\n### ", 1)[0]
    assert "Do" in body or anchor == "roll-back", anchor
