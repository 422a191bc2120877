"""What the twin saw: every event, rule match, invocation, AWS call, job and state change.

The AWS calls are recorded with the principal that made them (a function's execution role, a
job's role, or the twin itself as the deployer), their parameters and their outcome; that
recording is what the permission proof evaluates.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

# Who is calling AWS right now: a role ARN, or "deployer" for the twin's own provisioning.
PRINCIPAL: ContextVar[str] = ContextVar("principal", default="deployer")
# The source identity the caller's session carries (sts:SourceIdentity): Studio sets a user's
# profile name on every call of the user's execution role (USER_PROFILE_NAME); None: none.
SOURCE_IDENTITY: ContextVar[str | None] = ContextVar("source_identity", default=None)


@contextlib.contextmanager
def acting_as(principal: str, source_identity: str | None = None) -> Iterator[None]:
    token, identity = PRINCIPAL.set(principal), SOURCE_IDENTITY.set(source_identity)
    try:
        yield
    finally:
        SOURCE_IDENTITY.reset(identity)
        PRINCIPAL.reset(token)


def plain(value: Any) -> Any:
    """A JSON-safe copy of an AWS request or response (bytes and streams summarised)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>" if len(value) > 256 else base64.b64encode(value).decode()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return f"<{type(value).__name__}>"


@dataclass
class Trace:
    entries: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    listeners: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)

    def add(self, kind: str, /, **fields: Any) -> dict[str, Any]:
        entry = {"at": round(time.perf_counter() - self.started, 3), "kind": kind, **plain(fields)}
        self.entries.append(entry)
        for listener in self.listeners:
            listener(entry)
        return entry

    def of(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["kind"] == kind and all(e.get(k) == v for k, v in match.items())]

    def calls(self, principal: str | None = None, operation: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.of("call")
            if (principal is None or e["principal"] == principal) and (operation is None or e["operation"] == operation)
        ]

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.entries, indent=1) + "\n", encoding="utf-8")
