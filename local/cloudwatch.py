"""The twin's CloudWatch: the functions' embedded-metric records become metrics, and the alarms
on them change state and tell their topics.

- a log line of a function in the embedded metric format (a JSON object with ``_aws``) is what
  CloudWatch Logs extracts metrics from
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
  each metric of each directive, with the dimensions the directive names and the values the
  record holds, is put into the emulated CloudWatch;
- each alarm on such a metric (same namespace, name and dimensions) is evaluated on the new
  datapoint, and an alarm whose state changes sends its actions' topics CloudWatch's JSON
  message, as ``cloudwatch.amazonaws.com``
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html).

Where the twin is simpler than CloudWatch: it evaluates an alarm on each datapoint as it
arrives (the period's statistic over one datapoint is the datapoint) and only alarms of one
evaluation period; any other alarm is left as it is, and the trace says so.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from local.trace import acting_as

if TYPE_CHECKING:
    from local.platform import Twin

COMPARISONS = {
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


def embedded_metrics(line: str) -> list[tuple[str, str, dict[str, str], float, str, datetime]]:
    """(namespace, metric, dimensions, value, unit, time) of each metric of an embedded-metric
    record; none for any other line."""
    if not line.startswith("{"):
        return []
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return []
    directive = record.get("_aws") if isinstance(record, Mapping) else None
    if not isinstance(directive, Mapping):
        return []
    moment = datetime.fromtimestamp(directive["Timestamp"] / 1000, UTC)
    found = []
    for metrics in directive.get("CloudWatchMetrics", []):
        for dimension_set in metrics.get("Dimensions", []) or [[]]:
            dimensions = {name: str(record[name]) for name in dimension_set}
            for metric in metrics.get("Metrics", []):
                name = metric["Name"]
                found.append(
                    (metrics["Namespace"], name, dimensions, float(record[name]), metric.get("Unit", "None"), moment)
                )
    return found


class CloudWatch:
    def __init__(self, twin: Twin) -> None:
        self.twin = twin

    def log(self, source: str, text: str) -> None:
        """A function's standard output, as CloudWatch Logs reads it for embedded metrics."""
        for line in text.splitlines():
            for namespace, name, dimensions, value, unit, moment in embedded_metrics(line.strip()):
                self.put(source, namespace, name, dimensions, value, unit, moment)

    def put(
        self,
        source: str,
        namespace: str,
        name: str,
        dimensions: Mapping[str, str],
        value: float,
        unit: str,
        at: datetime,
    ) -> None:
        with acting_as("twin"):  # CloudWatch Logs extracts the metric: no request of the function's role
            self.twin.client("cloudwatch").put_metric_data(
                Namespace=namespace,
                MetricData=[
                    {
                        "MetricName": name,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dimensions.items())],
                        "Value": value,
                        "Unit": unit,
                        "Timestamp": at,
                    }
                ],
            )
        self.twin.trace.add(
            "metric", source=source, namespace=namespace, metric=name, dimensions=dict(dimensions), value=value
        )
        self._evaluate(namespace, name, dict(dimensions), value)

    def _evaluate(self, namespace: str, name: str, dimensions: dict[str, str], value: float) -> None:
        with acting_as("twin"):
            alarms = self.twin.client("cloudwatch").describe_alarms(AlarmTypes=["MetricAlarm"])["MetricAlarms"]
        for alarm in alarms:
            own = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
            if (alarm.get("Namespace"), alarm.get("MetricName"), own) != (namespace, name, dimensions):
                continue
            compare = COMPARISONS.get(alarm["ComparisonOperator"])
            if alarm.get("EvaluationPeriods", 1) != 1 or compare is None:
                self.twin.trace.add(
                    "alarm", alarm=alarm["AlarmName"], note="not evaluated by the twin (one period only)"
                )
                continue
            state = "ALARM" if compare(value, alarm["Threshold"]) else "OK"
            old = alarm.get("StateValue", "INSUFFICIENT_DATA")
            if state == old:
                continue
            reason = (
                f"Threshold Crossed: 1 datapoint [{value}] was {'' if state == 'ALARM' else 'not '}"
                f"{alarm['ComparisonOperator']} the threshold ({alarm['Threshold']})."
            )
            with acting_as("twin"):
                self.twin.client("cloudwatch").set_alarm_state(
                    AlarmName=alarm["AlarmName"], StateValue=state, StateReason=reason
                )
            self.twin.trace.add("alarm", alarm=alarm["AlarmName"], state=state, previous=old, value=value)
            actions = alarm.get("AlarmActions", []) if state == "ALARM" else alarm.get("OKActions", [])
            message = self._message(alarm, state, old, reason)
            for topic in actions:
                if ":sns:" not in topic:
                    continue
                with acting_as("cloudwatch.amazonaws.com"):
                    self.twin.client("sns").publish(
                        TopicArn=topic,
                        Subject=f'{state}: "{alarm["AlarmName"]}" in {self.twin.region}'[:100],
                        Message=json.dumps(message),
                    )

    def _message(self, alarm: Mapping[str, Any], state: str, old: str, reason: str) -> dict[str, Any]:
        """The JSON CloudWatch sends an alarm's topics (the fields the operators read)."""
        return {
            "AlarmName": alarm["AlarmName"],
            "AlarmDescription": alarm.get("AlarmDescription"),
            "AWSAccountId": self.twin.account,
            "NewStateValue": state,
            "NewStateReason": reason,
            "StateChangeTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "Region": self.twin.region,
            "AlarmArn": alarm.get("AlarmArn"),
            "OldStateValue": old,
            "Trigger": {
                "MetricName": alarm.get("MetricName"),
                "Namespace": alarm.get("Namespace"),
                "StatisticType": "Statistic",
                "Statistic": str(alarm.get("Statistic", "")).upper(),
                "Dimensions": [{"value": d["Value"], "name": d["Name"]} for d in alarm.get("Dimensions", [])],
                "Period": alarm.get("Period"),
                "EvaluationPeriods": alarm.get("EvaluationPeriods"),
                "ComparisonOperator": alarm.get("ComparisonOperator"),
                "Threshold": alarm.get("Threshold"),
                "TreatMissingData": alarm.get("TreatMissingData"),
            },
        }
