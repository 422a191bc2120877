"""The twin's EventBridge (local/bus.py) on its own: which rules fire, what each target type
receives, the Lambda permission a rule needs, and when scheduled rules fire. The twin around it
is a recorder; the rules are shaped as the synthesized templates declare them
(AWS::Events::Rule's ``Properties``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from local.bus import Bus, DeliveryError, json_path, target_input
from local.events import envelope

ACCOUNT, REGION = "123456789012", "eu-west-1"
RULE_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/mlplatform-dev-etl-finished"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:mlplatform-dev-start-training"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:mlplatform-dev-deploy"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:mlplatform-dev-alerts"
GLUE_SUCCEEDED = {"source": ["aws.glue"], "detail-type": ["Glue Job State Change"], "detail": {"state": ["SUCCEEDED"]}}
INVOKE = {"Principal": "events.amazonaws.com", "Action": "lambda:InvokeFunction", "SourceArn": RULE_ARN}


def glue_event(state: str = "SUCCEEDED", **detail: Any) -> dict[str, Any]:
    return envelope(
        detail_type="Glue Job State Change",
        source="aws.glue",
        detail={"jobName": "mlplatform-dev-prepare", "jobRunId": "jr_1", "state": state, **detail},
        account=ACCOUNT,
        region=REGION,
    )


@dataclass
class Function:
    name: str
    permissions: list[dict[str, Any]]


@dataclass
class Recorder:
    """What the bus asks of the twin, recorded: invocations, messages sent, notes published."""

    permissions: list[dict[str, Any]] = field(default_factory=lambda: [dict(INVOKE)])
    account: str = ACCOUNT
    region: str = REGION
    activity: int = 0
    pending: list[tuple[str, Any]] = field(default_factory=list)
    invoked: list[tuple[str, Any, str]] = field(default_factory=list)
    sent: list[tuple[str, Any, str]] = field(default_factory=list)
    published: list[dict[str, Any]] = field(default_factory=list)
    notes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.trace = self
        self.functions = self
        self.queues = self

    # the twin
    def schedule(self, description: str, task: Any) -> None:
        self.pending.append((description, task))

    def run(self) -> list[str]:
        done = []
        while self.pending:
            description, task = self.pending.pop(0)
            task()
            done.append(description)
        return done

    def client(self, service: str) -> Any:
        assert service == "sns"
        return self

    # trace, functions, queues, SNS
    def add(self, kind: str, **fields: Any) -> None:
        self.notes.append((kind, fields))

    def by_arn(self, arn: str) -> Function:
        return Function(arn.rsplit(":", 1)[-1], self.permissions)

    def invoke_async(self, function: Function, event: Any, source: str) -> None:
        self.invoked.append((function.name, event, source))

    def send(self, arn: str, payload: Any, source: str) -> None:
        self.sent.append((arn, payload, source))

    def publish(self, **request: Any) -> None:
        self.published.append(request)


def bus_with(twin: Recorder, *rules: dict[str, Any]) -> Bus:
    bus = Bus(twin)  # type: ignore[arg-type]
    for n, properties in enumerate(rules):
        name = properties.pop("Name", f"rule-{n}")
        arn = properties.pop("Arn", RULE_ARN)
        bus.add_rule(name=name, arn=arn, stack="MlPlatform-dev-Etl", logical_id=f"Rule{n}", properties=properties)
    return bus


def test_an_event_reaches_each_target_of_each_enabled_rule_it_matches():
    twin = Recorder()
    bus = bus_with(
        twin,
        {"Name": "fires", "EventPattern": GLUE_SUCCEEDED, "Targets": [{"Id": "a", "Arn": FUNCTION_ARN}]},
        {"Name": "as-text", "EventPattern": json.dumps(GLUE_SUCCEEDED), "Targets": [{"Id": "q", "Arn": QUEUE_ARN}]},
        {"Name": "disabled", "EventPattern": GLUE_SUCCEEDED, "State": "DISABLED", "Targets": [{"Arn": QUEUE_ARN}]},
        {"Name": "other", "EventPattern": {"detail": {"state": ["FAILED"]}}, "Targets": [{"Arn": QUEUE_ARN}]},
    )
    event = glue_event()
    bus.put(event)
    assert twin.run() == [
        f"deliver Glue Job State Change to {FUNCTION_ARN}",
        f"deliver Glue Job State Change to {QUEUE_ARN}",
    ]
    assert twin.invoked == [("mlplatform-dev-start-training", event, "rule fires")]
    assert twin.sent == [(QUEUE_ARN, event, "rule as-text")]
    assert [(kind, fields["rule"]) for kind, fields in twin.notes] == [("match", "fires"), ("match", "as-text")]
    assert twin.notes[0][1] == {
        "rule": "fires",
        "logical_id": "Rule0",
        "stack": "MlPlatform-dev-Etl",
        "event_id": event["id"],
    }


def test_a_rule_enabled_for_cloudtrail_management_events_is_enabled():
    twin = Recorder()
    state = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"  # RuleState's third value
    bus = bus_with(twin, {"EventPattern": GLUE_SUCCEEDED, "State": state, "Targets": [{"Arn": QUEUE_ARN}]})
    bus.put(glue_event())
    twin.run()
    assert [arn for arn, _, _ in twin.sent] == [QUEUE_ARN]


def test_an_event_no_rule_matches_goes_nowhere():
    twin = Recorder()
    bus = bus_with(twin, {"EventPattern": GLUE_SUCCEEDED, "Targets": [{"Arn": FUNCTION_ARN}]})
    bus.put(glue_event("FAILED"))
    assert twin.run() == [] and twin.notes == []


def test_an_sns_target_gets_the_transformed_text_as_eventbridge_publishes_it():
    twin = Recorder()
    # As stacks/etl.py's failure rule declares it: a JSON string whose placeholders are text.
    transformer = {
        "InputPathsMap": {"detail-jobName": "$.detail.jobName", "detail-message": "$.detail.message"},
        "InputTemplate": '"ML platform (dev): Glue job <detail-jobName> failed: <detail-message>"',
    }
    bus = bus_with(
        twin,
        {
            "Name": "failed",
            "EventPattern": {"detail": {"state": ["FAILED"]}},
            "Targets": [{"Arn": TOPIC_ARN, "InputTransformer": transformer}],
        },
    )
    bus.put(glue_event("FAILED", message="out of memory"))
    twin.run()
    text = "ML platform (dev): Glue job mlplatform-dev-prepare failed: out of memory"
    assert twin.published == [{"TopicArn": TOPIC_ARN, "Message": text}]
    assert twin.notes[-1] == ("notify", {"rule": "failed", "topic": TOPIC_ARN, "message": text})


def test_an_sns_target_given_json_publishes_it_as_json_text():
    twin = Recorder()
    bus = bus_with(twin, {"EventPattern": GLUE_SUCCEEDED, "Targets": [{"Arn": TOPIC_ARN, "InputPath": "$.detail"}]})
    event = glue_event()
    bus.put(event)
    twin.run()
    assert [json.loads(p["Message"]) for p in twin.published] == [event["detail"]]


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/another",
        f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:other",
    ],
    ids=["event-bus", "state-machine"],
)
def test_a_target_the_twin_cannot_deliver_to_is_refused_by_name(arn):
    twin = Recorder()
    bus = bus_with(twin, {"Name": "to-steps", "EventPattern": GLUE_SUCCEEDED, "Targets": [{"Arn": arn}]})
    bus.put(glue_event())
    with pytest.raises(DeliveryError, match=f"rule to-steps: the twin cannot deliver to {arn}"):
        twin.run()


@pytest.mark.parametrize(
    "permission",
    [
        INVOKE,
        json.loads(json.dumps(INVOKE)),  # read from a template: equal strings, other objects
        {**INVOKE, "Action": "lambda:*"},
        {key: value for key, value in INVOKE.items() if key != "SourceArn"},  # any rule of the account
    ],
    ids=["this-rule", "this-rule-from-json", "any-lambda-action", "no-source-arn"],
)
def test_a_function_is_invoked_where_its_resource_policy_allows_the_rule(permission):
    twin = Recorder(permissions=[permission])
    bus = bus_with(twin, {"EventPattern": GLUE_SUCCEEDED, "Targets": [{"Arn": FUNCTION_ARN}]})
    bus.put(glue_event())
    twin.run()
    assert len(twin.invoked) == 1


@pytest.mark.parametrize(
    "permissions",
    [
        [],
        [{**INVOKE, "Principal": "s3.amazonaws.com"}],
        [{**INVOKE, "Principal": "apigateway.amazonaws.com"}],
        [{**INVOKE, "Action": "lambda:GetFunction"}],
        [{**INVOKE, "SourceArn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/another"}],
        [{**INVOKE, "SourceArn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/zz-another"}],
    ],
    ids=["none", "s3", "api-gateway", "another-action", "another-rule", "another-rule-after"],
)
def test_a_function_whose_resource_policy_does_not_allow_the_rule_is_not_invoked(permissions):
    twin = Recorder(permissions=permissions)
    bus = bus_with(twin, {"Name": "etl-finished", "EventPattern": GLUE_SUCCEEDED, "Targets": [{"Arn": FUNCTION_ARN}]})
    bus.put(glue_event())
    with pytest.raises(DeliveryError, match="rule etl-finished may not invoke mlplatform-dev-start-training"):
        twin.run()
    assert twin.invoked == []


def scheduled(twin: Recorder, **extra: Any) -> Bus:
    rule = {"Name": "tick", "Arn": RULE_ARN, "ScheduleExpression": "rate(5 minutes)", **extra}
    return bus_with(twin, rule, {"Name": "events", "EventPattern": GLUE_SUCCEEDED, "Targets": [{"Arn": QUEUE_ARN}]})


def test_a_scheduled_rule_fires_once_the_twin_is_idle_after_anything_happened():
    twin = Recorder()
    bus = scheduled(twin, Targets=[{"Arn": FUNCTION_ARN}, {"Arn": QUEUE_ARN}])
    assert bus.tick() is False  # nothing has happened yet
    twin.activity = 1
    assert bus.tick() is True
    assert twin.run() == [f"deliver Scheduled Event to {FUNCTION_ARN}", f"deliver Scheduled Event to {QUEUE_ARN}"]
    (function, event, source), (queue, sent, _) = twin.invoked[0], twin.sent[0]
    assert (function, source, queue) == ("mlplatform-dev-start-training", "rule tick", QUEUE_ARN)
    assert sent == event
    assert (event["source"], event["detail-type"], event["resources"], event["detail"]) == (
        "aws.events",
        "Scheduled Event",
        [RULE_ARN],
        {},
    )
    assert (event["account"], event["region"]) == (ACCOUNT, REGION)
    assert bus.tick() is False  # nothing happened since
    twin.activity = 2
    assert bus.tick() is True


def test_a_scheduled_rule_matches_no_event_and_a_disabled_one_never_fires():
    twin = Recorder()
    bus = scheduled(twin, State="DISABLED", Targets=[{"Arn": FUNCTION_ARN}])
    bus.put(envelope(detail_type="Scheduled Event", source="aws.events", detail={}, account=ACCOUNT, region=REGION))
    twin.activity = 1
    assert bus.tick() is False
    assert twin.run() == []
    assert [kind for kind, _ in twin.notes] == ["rule"]


def test_a_scheduled_rule_without_targets_queues_nothing():
    twin = Recorder()
    bus = scheduled(twin)
    twin.activity = 1
    assert bus.tick() is False
    assert [kind for kind, _ in twin.notes] == ["rule", "tick"]


def test_a_bus_with_no_scheduled_rule_never_ticks():
    twin = Recorder(activity=1)
    bus = bus_with(twin, {"EventPattern": GLUE_SUCCEEDED, "Targets": [{"Arn": QUEUE_ARN}]})
    assert bus.tick() is False


# --- what a target receives: Input, InputPath, InputTransformer -----------------------------------

EC2 = {  # the example event of AWS's input transformation page
    "version": "0",
    "id": "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": ACCOUNT,
    "time": "2015-11-11T21:29:54Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
    "detail": {"instance-id": "i-0123456789", "state": "RUNNING", "count": 3},
}
PATHS = {"instance": "$.detail.instance-id", "state": "$.detail.state", "count": "$.detail.count"}


def transformed(template: str, paths: dict[str, str] = PATHS) -> Any:
    return target_input({"InputTransformer": {"InputPathsMap": paths, "InputTemplate": template}}, EC2)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("<instance> is in state <state>", "i-0123456789 is in state RUNNING"),
        ('<instance> is in state "<state>"', 'i-0123456789 is in state "RUNNING"'),
        ('"<instance> is in state <state>"', "i-0123456789 is in state RUNNING"),
        ('{"instance": <instance>, "state": <state>}', {"instance": "i-0123456789", "state": "RUNNING"}),
        (
            '{"myInstance": <instance>, "myStatus": "<instance> is in state \\"<state>\\""}',
            {"myInstance": "i-0123456789", "myStatus": 'i-0123456789 is in state "RUNNING"'},
        ),
        (
            '{"note": "a \\"quoted\\" word", "state": <state>}',
            {"note": 'a "quoted" word', "state": "RUNNING"},
        ),
        ('{"count": <count>, "text": "<count> of them"}', {"count": 3, "text": "3 of them"}),
        ("<count>", 3),
        ('{"detail": <detail>}', {"detail": EC2["detail"]}),
        ('{"event": <aws.events.event.json>}', {"event": EC2}),
        ("<unknown> stays", "<unknown> stays"),
    ],
    ids=[
        "text",
        "text-with-quotes",
        "json-string",
        "json-values",
        "json-mixed",
        "json-escaped-quotes",
        "number",
        "number-alone",
        "object",
        "whole-event",
        "undefined-placeholder",
    ],
)
def test_an_input_transformer_fills_its_template_as_eventbridge_does(template, expected):
    paths = {**PATHS, "detail": "$.detail"}
    assert transformed(template, paths) == expected


def test_input_is_delivered_as_the_json_it_holds_and_input_path_as_the_value_it_names():
    assert target_input({"Input": '{"dataset": "bank-marketing"}'}, EC2) == {"dataset": "bank-marketing"}
    assert target_input({"InputPath": "$.detail"}, EC2) == EC2["detail"]
    assert target_input({"Arn": QUEUE_ARN}, EC2) == EC2


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", EC2),
        ("$.detail.state", "RUNNING"),
        ("$.detail-type", "EC2 Instance State-change Notification"),
        ("$.detail.missing", None),
        ("$.detail.state.deeper", None),
    ],
)
def test_a_json_path_names_a_value_or_nothing(path, expected):
    assert json_path(EC2, path) == expected
