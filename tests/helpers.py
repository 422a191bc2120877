"""Small readers over synthesized templates, shared by the stack tests."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template


def resources(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    """Logical id -> resource (Type, Properties, DeletionPolicy, ...) of one type."""
    return dict(template.find_resources(resource_type))


def properties(template: Template, resource_type: str) -> list[dict[str, Any]]:
    return [resource.get("Properties", {}) for resource in resources(template, resource_type).values()]


def logical_id(template: Template, resource_type: str, path_fragment: str) -> str:
    """The one resource of ``resource_type`` whose logical id contains ``path_fragment``."""
    matches = [name for name in resources(template, resource_type) if path_fragment in name]
    assert len(matches) == 1, f"expected one {resource_type} matching {path_fragment!r}, found {matches}"
    return matches[0]


def render(value: Any, region: str = "<region>") -> str:
    """A string, or an Fn::Join of strings and pseudo-parameter refs (AWS::Region, ...), as text."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(part, region) for part in parts)
    if value == {"Ref": "AWS::Region"}:
        return region
    if value == {"Ref": "AWS::URLSuffix"}:
        return "amazonaws.com"
    if value == {"Ref": "AWS::Partition"}:
        return "aws"
    if value == {"Ref": "AWS::AccountId"}:
        return "<account>"
    raise AssertionError(f"cannot render {value!r}")


def actions(statement: dict[str, Any]) -> list[str]:
    """A policy statement's actions as a list (IAM allows one action as a plain string)."""
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else list(action)
