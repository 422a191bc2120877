"""Calls recorded outside the twin (the handler tests), as the deployed function would make them.

A handler test runs the function's code against the emulator with its own configuration: a
bucket called ``ml-data``, a role in moto's default account. The same call in the deployment
names what the stage deploys instead. Each recording carries the environment the handler ran
in; every variable the deployed function also has maps the test's value to the deployed one
(JSON values key by key, ``s3://`` URIs as bucket and key too), the test's account becomes the
deployment's, and the call is made under the function's role.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local.functions import LocalFunction
    from local.platform import Twin

TEST_ACCOUNT = "123456789012"  # moto's default account, where the handler tests run
_NAME = re.compile(r"[-:/._]")  # a value that names something (not a word, a number or a flag)


class NoSuchFunction(LookupError):
    """A recording names a function the deployment does not have."""


def function_of(twin: Twin, folder: str) -> LocalFunction:
    """The deployed function whose code is ``lambda/<folder>`` (construct ``<Folder>Function``)."""
    construct = "".join(part.capitalize() for part in folder.split("_")) + "Function"
    found = [f for f in twin.functions if f.logical_id.startswith(construct)]
    if len(found) != 1:
        raise NoSuchFunction(f"lambda/{folder}: {len(found)} deployed functions from construct {construct}")
    return found[0]


class Replacements:
    """Test values to deployed values: a value that names something (a bucket, an ARN, a prefix)
    wherever it occurs in a string, longest first so that a bucket inside a URI maps once; any
    other value (a stage name, a status) only where a whole string equals it."""

    def __init__(self, pairs: Mapping[str, str], account: tuple[str, str] | None = None) -> None:
        self.whole = dict(pairs)
        within = [(o, n) for o, n in pairs.items() if _NAME.search(o)]
        self.within = sorted(within, key=lambda item: -len(item[0])) + ([account] if account else [])

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            if value in self.whole:
                return self.whole[value]
            for old, new in self.within:
                value = value.replace(old, new)
            return value
        if isinstance(value, Mapping):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        return value


def replacements(tested: Mapping[str, str], deployed: Mapping[str, str], account: str) -> Replacements:
    """What the test's configuration becomes in the deployment, variable by variable."""
    pairs: dict[str, str] = {}

    def pair(old: Any, new: Any) -> None:
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            for key in old.keys() & new.keys():
                pair(old[key], new[key])
            return
        if not isinstance(old, str) or not isinstance(new, str) or old == new or not old:
            return
        pairs[old] = new
        if old.startswith("s3://") and new.startswith("s3://"):
            for part_old, part_new in zip(old[5:].split("/", 1), new[5:].split("/", 1), strict=False):
                if part_old and part_old != part_new:
                    pairs[part_old] = part_new

    for name in tested.keys() & deployed.keys():
        old, new = tested[name], deployed[name]
        try:
            pair(json.loads(old), json.loads(new))
        except ValueError:
            pair(old, new)
    return Replacements(pairs, (TEST_ACCOUNT, account) if account != TEST_ACCOUNT else None)


def as_deployed(invocations: Iterable[Mapping[str, Any]], twin: Twin) -> Iterator[dict[str, Any]]:
    """The recorded calls as twin-style call records under the deployed functions' roles."""
    for invocation in invocations:
        function = function_of(twin, invocation["function"])
        deployed = replacements(invocation["environment"], function.variables, twin.account)
        for call in invocation["calls"]:
            yield {
                "principal": function.role_arn,
                "by": f"{function.name} (handler test)",
                "service": call["service"],
                "operation": call["operation"],
                "params": deployed(call["params"]),
                "created": deployed(call["created"]),
                "error": call["error"],
            }
