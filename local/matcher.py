"""EventBridge event patterns for the local platform: does a rule fire for an event?

The twin routes AWS-shaped events through the synthesized rules' ``EventPattern``s to the
functions: S3 "Object Created" under ``raw/``, ``prepared/*/*/_SUCCESS`` and ``batch-input/``,
"Glue Job State Change", "SageMaker Training Job State Change" / "SageMaker HyperParameter
Tuning Job State Change" and "SageMaker Model Package State Change". Whether a rule fires must
be decided as EventBridge decides it, so the matching is done by a maintained implementation:
LocalStack's EventBridge rule engine (PyPI ``localstack-core``, module
``localstack.services.events.event_rule_engine``). moto's matcher is not used: it misses a
field inside objects inside an array (``{"Containers": {"Image": [...]}}`` against a list of
containers never matches), and a home-made matcher would be one more thing to prove.

``tests/test_local_matcher.py`` holds the cases from AWS's documentation that this module is
held to, including the few where LocalStack's engine still disagrees with the documentation
(marked xfail there, with the reason): it compares numbers by value where EventBridge compares
their JSON text (300 and 300.0 differ), takes ``true`` for the number 1, and its wildcard ``*``
needs at least one character where EventBridge's matches none too.

Importing LocalStack's engine loads LocalStack's configuration, which patches botocore for the
whole process (``Waiter.wait`` gets LocalStack's delays, ``Config`` gets ``__eq__`` and
``__hash__``) and adds LocalStack's hosts to ``no_proxy``. The twin runs the platform's code
against the real SDK, so this module puts all three back as they were.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import botocore.config
import botocore.waiter

Matcher = Callable[[Mapping[str, Any]], bool]


class PatternError(ValueError):
    """An event pattern that EventBridge refuses (``PutRule`` answers InvalidEventPatternException)."""


def _load_engine() -> Any:
    """LocalStack's rule engine module, imported without leaving its side effects behind."""
    environ = dict(os.environ)
    classes = {cls: dict(vars(cls)) for cls in (botocore.waiter.Waiter, botocore.config.Config)}
    from localstack.services.events import event_rule_engine

    for cls, attributes in classes.items():
        for name in set(vars(cls)) - set(attributes):
            delattr(cls, name)
        for name, value in attributes.items():
            if vars(cls).get(name) is not value:
                setattr(cls, name, value)
    for name in set(os.environ) - set(environ):
        del os.environ[name]
    for name, value in environ.items():
        if os.environ.get(name) != value:
            os.environ[name] = value
    return event_rule_engine


_ENGINE = _load_engine()
_COMPILER = _ENGINE.EventPatternCompiler()
_RULES = _ENGINE.EventRuleEngine()
# What the engine raises for a pattern it refuses (a LocalStack service exception).
_INVALID = _ENGINE.InvalidEventPatternException


def _plain(value: Any) -> Any:
    """json.dumps' fallback: any mapping is a JSON object; nothing else non-JSON gets through."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _json_copy(value: Mapping[str, Any]) -> Any:
    """``value`` as it travels in JSON: a fresh copy, tuples as arrays, NaN and objects refused."""
    return json.loads(json.dumps(value, allow_nan=False, default=_plain))


def _as_json(value: Mapping[str, Any] | str, what: str) -> dict[str, Any]:
    """``value`` as EventBridge receives it: a JSON object (a fresh copy; the caller's is not kept)."""
    try:
        parsed = json.loads(value) if isinstance(value, str) else _json_copy(value)
    except (TypeError, ValueError) as error:
        raise PatternError(f"{what} is not valid JSON: {error}") from error
    if not isinstance(parsed, dict):
        raise PatternError(f"{what} must be a JSON object, not {type(parsed).__name__}")
    return parsed


def compile_pattern(pattern: Mapping[str, Any] | str) -> Matcher:
    """Validate ``pattern`` once, as ``PutRule`` does, and return a test for events.

    Raises PatternError for a pattern EventBridge would refuse, with its reason (for example an
    unresolved CloudFormation token such as ``{"Ref": ...}`` left where a value belongs).
    """
    parsed = _as_json(pattern, "the event pattern")
    try:
        compiled = _COMPILER.compile_event_pattern(parsed)
    except _INVALID as error:
        raise PatternError(str(error)) from error

    def matcher(event: Mapping[str, Any]) -> bool:
        if not isinstance(event, Mapping):
            raise TypeError(f"an event is a JSON object (a mapping), not {type(event).__name__}")
        # As EventBridge sees it, through JSON: a value that is not JSON (a datetime) raises TypeError.
        return bool(_RULES.evaluate_pattern_on_event(compiled, _json_copy(event)))

    return matcher


def matches(pattern: Mapping[str, Any] | str, event: Mapping[str, Any]) -> bool:
    """Whether EventBridge would deliver ``event`` to a rule with ``pattern`` (PatternError if invalid)."""
    return compile_pattern(pattern)(event)
