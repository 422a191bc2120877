"""The operators' dashboard and the stage's budget (stacks/monitoring.py), in both stages."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from aws_cdk.assertions import Match

from etl.platform_runtime import METRICS_NAMESPACE, STAGE_TAG, metric_record


def _body(stage) -> str:
    """The dashboard's body as CloudFormation will join it, with each reference spelled as a
    placeholder (``{Ref:...}``, ``{Import:...}``)."""
    [dashboard] = stage.templates["monitoring"].find_resources("AWS::CloudWatch::Dashboard").values()

    def text(value) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(text(part) for part in parts)
        if isinstance(value, dict) and "Ref" in value:
            return "{Ref:" + value["Ref"] + "}"
        if isinstance(value, dict) and "Fn::ImportValue" in value:
            return "{Import:" + value["Fn::ImportValue"] + "}"
        raise AssertionError(f"unexpected value in the dashboard body: {value}")

    return text(dashboard["Properties"]["DashboardBody"])


def _widgets(stage) -> list[dict]:
    # A reference stands where a name would be, always inside a JSON string: the body parses.
    return json.loads(_body(stage))["widgets"]


def test_every_alarm_of_the_stage_is_on_the_dashboard(stage):
    alarms = {
        resource["Properties"]["AlarmName"]
        for template in stage.templates.values()
        for resource in template.find_resources("AWS::CloudWatch::Alarm").values()
    }
    assert len(alarms) >= 8  # the functions' errors and dead letters, the endpoint's six
    assert all(isinstance(name, str) for name in alarms), "every alarm has a name the dashboard can list"
    [status] = [w for w in _widgets(stage) if w["type"] == "alarm"]
    listed = {arn.rsplit(":alarm:", 1)[1] for arn in status["properties"]["alarms"]}
    assert listed == alarms


def test_the_dashboard_shows_each_served_endpoint(stage):
    body = _body(stage)
    for dataset in stage.config.hosting.datasets:
        endpoint = f"{stage.config.resource_prefix}-{dataset}"
        for metric in ("Invocations", "Invocation5XXErrors", "ModelLatency", "CPUUtilization", "MemoryUtilization"):
            assert re.search(rf'"{metric}","EndpointName","{endpoint}"', body), (endpoint, metric)
        assert f"Endpoint {endpoint}" in body


def test_the_dashboard_shows_the_platforms_own_metrics_per_dataset(stage):
    body = _body(stage)
    for dataset in ("bank-marketing", "car-evaluation"):
        for metric in ("TrainingJobs", "TrainingJobsFailed", "TrainingSeconds", "ModelsPassed", "ModelsRejected"):
            assert f'"{METRICS_NAMESPACE}","{metric}","Dataset","{dataset}","Stage","{stage.config.name}"' in body


def test_the_dashboard_shows_the_preparation_job_functions_and_dead_letter_queues(stage):
    body = _body(stage)
    assert f"{stage.config.resource_prefix}-prepare" in body
    assert body.count('"AWS/Lambda","Invocations"') >= 4 + len(stage.config.hosting.datasets)
    assert '"AWS/SQS","ApproximateNumberOfMessagesVisible"' in body
    assert '"AWS/Events","TriggeredRules"' in body


def test_the_budget_is_the_stages_monthly_amount_on_its_tag(stage):
    settings = stage.config.monitoring
    stage.templates["monitoring"].has_resource_properties(
        "AWS::Budgets::Budget",
        {
            "Budget": {
                "BudgetType": "COST",
                "TimeUnit": "MONTHLY",
                "BudgetLimit": {"Amount": settings.monthly_budget_usd, "Unit": "USD"},
                "FilterExpression": {
                    "Tags": {"Key": STAGE_TAG, "Values": [stage.config.name], "MatchOptions": ["EQUALS"]}
                },
            }
        },
    )
    assert stage.config.tags[STAGE_TAG] == stage.config.name  # what the filter counts is what the stacks carry


def test_the_budget_tells_the_operators_topic_at_each_threshold(stage):
    [budget] = stage.templates["monitoring"].find_resources("AWS::Budgets::Budget").values()
    notifications = budget["Properties"]["NotificationsWithSubscribers"]
    told = sorted((n["Notification"]["NotificationType"], n["Notification"]["Threshold"]) for n in notifications)
    settings = stage.config.monitoring
    expected = [("ACTUAL", p) for p in settings.actual_percentages] + [("FORECASTED", settings.forecast_percentage)]
    assert told == sorted(expected)
    for notification in notifications:
        [subscriber] = notification["Subscribers"]
        assert subscriber["SubscriptionType"] == "SNS"
        assert "OperatorTopic" in subscriber["Address"]["Fn::ImportValue"]


def test_budgets_may_publish_to_the_encrypted_topic_of_this_account_only(stage):
    data = stage.templates["data"]
    data.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "BudgetsOfThisAccountPublish",
                                "Principal": {"Service": "budgets.amazonaws.com"},
                                "Condition": {
                                    "StringEquals": {"aws:SourceAccount": Match.any_value()},
                                    "ArnLike": {"aws:SourceArn": Match.any_value()},
                                },
                            }
                        )
                    ]
                )
            }
        },
    )
    data.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "AlarmsAndRulesPublishToEncryptedTopic",
                                "Principal": {"Service": Match.array_with(["budgets.amazonaws.com"])},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_a_metric_record_is_in_the_embedded_metric_format():
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
    record = json.loads(
        metric_record(
            "dev",
            "bank-marketing",
            {"ModelsPassed": (1, "Count"), "TrainingSeconds": (61.5, "Seconds")},
            datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
        )
    )
    [directive] = record["_aws"]["CloudWatchMetrics"]
    assert record["_aws"]["Timestamp"] == 1795521600000
    assert directive == {
        "Namespace": METRICS_NAMESPACE,
        "Dimensions": [["Stage", "Dataset"]],
        "Metrics": [{"Name": "ModelsPassed", "Unit": "Count"}, {"Name": "TrainingSeconds", "Unit": "Seconds"}],
    }
    assert (record["Stage"], record["Dataset"], record["ModelsPassed"], record["TrainingSeconds"]) == (
        "dev",
        "bank-marketing",
        1,
        61.5,
    )


def test_the_dashboard_shows_what_model_monitor_finds_per_endpoint(stage):
    """Drift (features with a violation) where the stage monitors data quality, and the live model's
    objective metric on labelled traffic where it monitors model quality (dev)."""
    body = _body(stage)
    monitoring = stage.config.monitoring
    for metric, on in (("DriftedFeatures", monitoring.data_quality), ("LiveModelQuality", monitoring.model_quality)):
        found = re.search(rf'"MLPlatform","{metric}","Dataset","bank-marketing","Stage","{stage.config.name}"', body)
        assert bool(found) is on, metric
