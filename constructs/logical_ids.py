"""Logical ids of stateful resources, kept when their constructs move.

CloudFormation identifies a resource by its logical id: a new id is a new resource and the old
one is deleted (or, when retained, orphaned). Moving a construct into another changes the ids of
everything under it, so each resource that holds data or state is pinned to the id it was first
deployed with. ``tests/test_logical_ids.py`` lists the pinned ids of every stage, and
``python -m checks.logical_ids BEFORE AFTER`` compares two assemblies.
"""

from __future__ import annotations

from aws_cdk import CfnElement, Stack
from constructs import IConstruct


def pin(resource: CfnElement, logical_id: str) -> None:
    """Keep ``resource`` at ``logical_id``, wherever its construct lives."""
    resource.override_logical_id(logical_id)


def logical_id(construct: IConstruct) -> str:
    """The logical id of ``construct``'s CloudFormation resource (its default child) in its stack,
    as cdk-nag's findings spell it."""
    resource = construct.node.default_child
    if not isinstance(resource, CfnElement):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource as its default child")
    return Stack.of(resource).get_logical_id(resource)
