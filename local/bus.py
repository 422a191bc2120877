"""The twin's EventBridge: the synthesized rules' own patterns, matched with a faithful matcher,
and delivery to their targets.

A matching rule delivers to each target (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html):
the event itself, or ``Input``, or what ``InputTransformer`` makes of it
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html). A
Lambda target is an asynchronous invocation (Lambda then owns retries and the function's DLQ);
an SQS target sends the event to the queue (``local.queues``, which plays the queue's delay and
the Lambda event source mapping that polls it); an SNS target publishes to the topic, with the
target's role where it has one. moto's own
EventBridge never delivers to Lambda, so the twin delivers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from local.events import scheduled_event
from local.matcher import compile_pattern
from local.trace import acting_as

if TYPE_CHECKING:
    from local.platform import Twin

PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")


class DeliveryError(RuntimeError):
    """A target the twin cannot deliver to."""


@dataclass
class Rule:
    name: str
    arn: str
    stack: str
    logical_id: str
    pattern: dict[str, Any]
    enabled: bool
    targets: list[dict[str, Any]]
    matches: Callable[[Mapping[str, Any]], bool]


class Bus:
    def __init__(self, twin: Twin) -> None:
        self.twin = twin
        self.rules: list[Rule] = []
        self.scheduled: list[str] = []  # the scheduled rules' names
        self._ticked_at = 0  # the twin's activity when they last fired

    def add_rule(self, *, name: str, arn: str, stack: str, logical_id: str, properties: dict[str, Any]) -> None:
        if "ScheduleExpression" in properties and "EventPattern" not in properties:
            self.twin.trace.add(
                "rule", rule=name, note="a scheduled rule: the twin fires it when idle after anything happened"
            )
            pattern: dict[str, Any] = {}
            matcher: Callable[[Mapping[str, Any]], bool] = lambda event: False  # noqa: E731
            self.scheduled.append(name)
        else:
            pattern = properties["EventPattern"]
            if isinstance(pattern, str):
                pattern = json.loads(pattern)
            matcher = compile_pattern(pattern)
        self.rules.append(
            Rule(
                name=name,
                arn=arn,
                stack=stack,
                logical_id=logical_id,
                pattern=pattern,
                # RuleState (botocore's events model): ENABLED, DISABLED, or
                # ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS, which is enabled too.
                enabled=properties.get("State", "ENABLED") != "DISABLED",
                targets=properties.get("Targets", []),
                matches=matcher,
            )
        )

    def tick(self) -> bool:
        """The scheduled rules fire, once the twin is idle, if anything happened since they last
        did (the twin's clock does not run between its steps: a schedule's every tick in the
        meantime would have found the same). Each target gets EventBridge's "Scheduled Event"
        (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-run-lambda-schedule.html).
        Whether anything was queued."""
        twin = self.twin
        if not self.scheduled or twin.activity == self._ticked_at:
            return False
        self._ticked_at = twin.activity
        queued = False
        for rule in self.rules:
            if rule.name not in self.scheduled or not rule.enabled:
                continue
            event = scheduled_event(rule.arn, account=twin.account, region=twin.region)
            twin.trace.add("tick", rule=rule.name, event_id=event["id"])
            for target in rule.targets:
                queued = True
                twin.schedule(
                    f"deliver Scheduled Event to {target['Arn']}",
                    lambda rule=rule, target=target, event=event: self._deliver(rule, target, event),
                )
        return queued

    def put(self, event: Mapping[str, Any]) -> None:
        """Match the event against every enabled rule and queue a delivery per target."""
        for rule in self.rules:
            if not rule.enabled or not rule.matches(event):
                continue
            self.twin.trace.add(
                "match", rule=rule.name, logical_id=rule.logical_id, stack=rule.stack, event_id=event["id"]
            )
            for target in rule.targets:
                self.twin.schedule(
                    f"deliver {event['detail-type']} to {target['Arn']}",
                    lambda rule=rule, target=target: self._deliver(rule, target, event),
                )

    def _deliver(self, rule: Rule, target: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        payload = target_input(target, event)
        arn = target["Arn"]
        service = arn.split(":")[2]
        if service == "lambda":
            function = self.twin.functions.by_arn(arn)
            self._check_invoke_permission(function, rule)
            self.twin.functions.invoke_async(function, payload, source=f"rule {rule.name}")
        elif service == "sqs":
            self.twin.queues.send(arn, payload, source=f"rule {rule.name}")
        elif service == "sns":
            message = payload if isinstance(payload, str) else json.dumps(payload)
            # SNS targets are delivered through the topic's policy, never a role:
            # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html
            with acting_as("events.amazonaws.com"):
                self.twin.client("sns").publish(TopicArn=arn, Message=message)
            self.twin.trace.add("notify", rule=rule.name, topic=arn, message=message)
        else:
            raise DeliveryError(f"rule {rule.name}: the twin cannot deliver to {arn}")

    def _check_invoke_permission(self, function, rule: Rule) -> None:
        """EventBridge may invoke a function only where its resource policy allows the rule."""
        for permission in function.permissions:
            if (
                permission.get("Principal") == "events.amazonaws.com"
                and permission.get("Action") in ("lambda:InvokeFunction", "lambda:*")
                and permission.get("SourceArn", rule.arn) == rule.arn
            ):
                return
        raise DeliveryError(
            f"rule {rule.name} may not invoke {function.name}: no lambda:InvokeFunction permission for it"
        )


def target_input(target: Mapping[str, Any], event: Mapping[str, Any]) -> Any:
    """What the target receives: ``Input`` (JSON text), ``InputPath``, an ``InputTransformer``'s
    output, or the whole event.

    An input template is text or JSON (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html):
    a value goes in as written where its placeholder is text (the template is not a JSON object,
    or the placeholder is inside one of its strings), and as JSON where the placeholder is a JSON
    object's value (a string is then quoted). A JSON result is delivered as JSON, text as text."""
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        return json_path(event, target["InputPath"])
    transformer = target.get("InputTransformer")
    if not transformer:
        return dict(event)
    values = {name: json_path(event, path) for name, path in transformer.get("InputPathsMap", {}).items()}
    template = transformer["InputTemplate"]
    json_object = template.lstrip().startswith("{")

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "aws.events.event.json":
            return json.dumps(event)
        if name not in values:
            return match.group(0)
        value = values[name]
        as_text = not json_object or _in_string(template, match.start())
        return value if isinstance(value, str) and as_text else json.dumps(value)

    text = PLACEHOLDER.sub(replace, template)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _in_string(template: str, index: int) -> bool:
    """Whether ``index`` of a JSON template falls inside one of its strings."""
    inside = escaped = False
    for character in template[:index]:
        if escaped:
            escaped = False
        elif character == "\\":
            escaped = inside
        elif character == '"':
            inside = not inside
    return inside


def json_path(event: Mapping[str, Any], path: str) -> Any:
    """The value at a simple JSONPath (``$.detail.jobName``), or None where the event has none."""
    value: Any = event
    for part in path.removeprefix("$").strip(".").split("."):
        if not part:
            continue
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value
