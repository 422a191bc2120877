"""``python -m checks.cost DIR [DIR ...]``: the idle monthly cost of synthesized assemblies, line by line.

"Idle" is the platform deployed and left alone: nothing uploaded, no job, no request, nobody in
Studio. What bills then is what exists by the hour or the month (interface endpoints, keys,
alarms, scheduled crawls, and, once a model is live, the endpoint's instances); everything else
bills per use and costs nothing while idle. Quantities come from the templates alone; prices from
``PRICES`` below, each with the page it was read from and the date. A price nobody could find is
``None`` ("unknown", with the reason), never a guess, and the totals say how many lines it leaves out.

Each DIR is one stage's ``cdk synth`` output, named by the folder (or ``NAME=DIR``). With
``--output FILE`` the Markdown report is written there; with ``--check`` it is compared with FILE
instead (exit 1 when it is out of date).
"""

from __future__ import annotations

import argparse
import calendar
import datetime
import functools
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from checks.assembly import SynthesizedStack, read_stacks

# AWS's pricing examples and calculator count a month as 730 hours (8,760 / 12).
HOURS_PER_MONTH = 730
# A stage without a region (dev: environment-agnostic) is priced where most price pages quote.
DEFAULT_REGION = "us-east-1"
# Scheduled work is counted over one fixed, non-leap year and divided by 12 (an average month).
CALENDAR_YEAR = 2027


@dataclass(frozen=True)
class Price:
    """One unit price: ``amount`` in USD per ``unit``, or None when no trustworthy figure was found."""

    amount: float | None
    unit: str
    source: str
    read: str  # the date the source was read (YYYY-MM-DD)
    note: str = ""


_READ = "2026-11-23"
_PRIVATELINK = "https://aws.amazon.com/privatelink/pricing/"
_KMS = "https://aws.amazon.com/kms/pricing/"
_CLOUDWATCH = "https://aws.amazon.com/cloudwatch/pricing/"
_CLOUDTRAIL = "https://aws.amazon.com/cloudtrail/pricing/"
_GLUE = "https://aws.amazon.com/glue/pricing/"
_SAGEMAKER = "https://aws.amazon.com/sagemaker-ai/pricing/"
_S3 = "https://aws.amazon.com/s3/pricing/"
_SQS = "https://aws.amazon.com/sqs/pricing/"
_SCRIPTED = "the stored copy of AWS's page fills its regional price table by script, so it shows no figure"
_NOT_FOUND = "no AWS-published figure found in the stored pages searched"
_IDLE_ZERO = "not looked up: the idle quantity is 0 (per use only)"

_KMS_KEY = Price(
    1.00,
    "key-month",
    _KMS,
    _READ,
    "'Each AWS KMS key that you create in KMS costs $1/month' (no region named). With automatic rotation each "
    "new backing key adds $1/month (AWS capped this at the first two rotations in May 2024, as "
    "https://cloudburn.io/blog/aws-kms-pricing of March 2026 reports): $1 in year 1, $2 in year 2, $3 after",
)
_CLOUDTRAIL_DATA = Price(
    0.10,
    "100,000 data events",
    _CLOUDTRAIL,
    _READ,
    "'Data events ... are charged at $0.10 per 100,000 events' (no region named)",
)


def _unknown(unit: str, source: str, why: str) -> Price:
    return Price(None, unit, source, _READ, why)


_DASHBOARD = Price(
    3.00,
    "dashboard-month",
    "https://www.factualminds.com/blog/amazon-cloudwatch-pricing-metrics-logs-alarms-dashboards/",
    _READ,
    "page of 2026-06-13: 'dashboards at $3 each' (no region named); "
    f"{_CLOUDWATCH} (stored copy) gives the free tier only: 3 custom dashboards of up to 50 metrics each, "
    "not subtracted here",
)
_BUDGET = Price(
    0.02 * 365 / 12,
    "budget-month",
    "https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/budgets-managing-costs.html",
    _READ,
    "'Your first two active budgets are free of charge. Each additional active budget costs $0.02 per day' "
    "(Budgets bill per account, in no region); the free two are not subtracted here",
)

# Prices by region and item. Only what a stored page states is here; the rest is unknown, with why.
PRICES: dict[str, dict[str, Price]] = {
    "us-east-1": {
        "interface_endpoint_hour": Price(
            0.01,
            "endpoint-AZ-hour (one ENI per subnet)",
            "https://awsnegotiations.com/privatelink-cost-analysis.html",
            _READ,
            f"page updated May 2026: '$0.01/hour per Interface Endpoint per AZ'; {_PRIVATELINK}: {_SCRIPTED}; "
            "infracost's us-east-1 estimate shows the same 0.0100 per endpoint-hour "
            "(https://github.com/infracost/infracost/pull/329, 2021-01-13)",
        ),
        "kms_key_month": _KMS_KEY,
        "dashboard_month": _DASHBOARD,
        "budget_month": _BUDGET,
        "alarm_metric_month": Price(
            0.10,
            "alarm metric-month (standard resolution)",
            "https://c3x.dev/resources/aws/aws_cloudwatch_metric_alarm",
            _READ,
            f"undated page: '$0.10/alarm-month for standard resolution', high resolution $0.30; {_CLOUDWATCH} "
            "(stored copy) gives the free tier only: 10 standard alarm metrics per account, not subtracted here",
        ),
        "alarm_metric_month_high_resolution": Price(
            0.30,
            "alarm metric-month (high resolution)",
            "https://c3x.dev/resources/aws/aws_cloudwatch_metric_alarm",
            _READ,
            "undated page: 'High-resolution alarms (10s) cost $0.30/month'",
        ),
        "cloudtrail_data_events": _CLOUDTRAIL_DATA,
        "glue_crawler_dpu_hour": Price(
            0.44,
            "DPU-hour (per second, 10-minute minimum per crawl)",
            "https://awsnegotiations.com/glue-job-cost-optimization.html",
            _READ,
            f"page published May 2026: 'Crawlers: $0.44 per DPU-hour, ten-minute minimum per crawl'; {_GLUE}: "
            "its stored copy shows the same $0.44 per DPU-hour and 10-minute minimum for jobs",
        ),
        "glue_job_dpu_hour": Price(
            0.44,
            "DPU-hour (per second, 1-minute minimum per run)",
            "https://awsnegotiations.com/glue-job-cost-optimization.html",
            "2026-11-24",
            "page published May 2026: 'Spark jobs (Glue ETL): $0.44 per DPU-hour, one-minute minimum, billed per "
            f"second'; {_GLUE}: its stored copy shows the same $0.44 per DPU-hour",
        ),
        "logs_ingestion_gb": Price(
            0.50,
            "GB ingested",
            "https://c3x.dev/blog/cloudwatch-logs-cost-optimization",
            _READ,
            f"'us-east-1, June 2026 ... Ingestion: $0.50 per GB'; {_CLOUDWATCH}: {_SCRIPTED}",
        ),
        "logs_storage_gb_month": Price(
            0.03,
            "GB-month stored",
            "https://c3x.dev/blog/cloudwatch-logs-cost-optimization",
            _READ,
            "'us-east-1, June 2026 ... Storage: $0.03 per GB-month'",
        ),
        "s3_storage_gb_month": _unknown("GB-month (S3 Standard)", _S3, _IDLE_ZERO),
        "sqs_requests": _unknown("million requests", _SQS, _NOT_FOUND),
        "sagemaker_hosting_hour": _unknown(
            "instance-hour",
            _SAGEMAKER,
            f"{_NOT_FOUND}; third-party tables in public code disagree (ml.t2.medium at $0.056 and $0.065 an hour), "
            "so none is used",
        ),
        "sagemaker_processing_hour": _unknown("instance-hour (processing)", _SAGEMAKER, _NOT_FOUND),
        "sagemaker_storage_gb_month": _unknown("GB-month (ML storage volume)", _SAGEMAKER, _NOT_FOUND),
    },
    "eu-west-1": {
        "interface_endpoint_hour": _unknown(
            "endpoint-AZ-hour (one ENI per subnet)",
            _PRIVATELINK,
            f"{_SCRIPTED}, and no stored page quotes the eu-west-1 rate",
        ),
        "kms_key_month": _KMS_KEY,
        "dashboard_month": _DASHBOARD,
        "budget_month": _BUDGET,
        "alarm_metric_month": _unknown(
            "alarm metric-month (standard resolution)", _CLOUDWATCH, f"{_SCRIPTED}; no eu-west-1 figure found"
        ),
        "alarm_metric_month_high_resolution": _unknown(
            "alarm metric-month (high resolution)", _CLOUDWATCH, f"{_SCRIPTED}; no eu-west-1 figure found"
        ),
        "cloudtrail_data_events": _CLOUDTRAIL_DATA,
        "glue_crawler_dpu_hour": _unknown(
            "DPU-hour (per second, 10-minute minimum per crawl)", _GLUE, f"{_SCRIPTED}; no eu-west-1 figure found"
        ),
        "glue_job_dpu_hour": _unknown(
            "DPU-hour (per second, 1-minute minimum per run)", _GLUE, f"{_SCRIPTED}; no eu-west-1 figure found"
        ),
        "logs_ingestion_gb": _unknown("GB ingested", _CLOUDWATCH, f"{_SCRIPTED}; no eu-west-1 figure found"),
        "logs_storage_gb_month": _unknown("GB-month stored", _CLOUDWATCH, f"{_SCRIPTED}; no eu-west-1 figure found"),
        "s3_storage_gb_month": _unknown("GB-month (S3 Standard)", _S3, _IDLE_ZERO),
        "sqs_requests": _unknown("million requests", _SQS, _NOT_FOUND),
        "sagemaker_hosting_hour": _unknown("instance-hour", _SAGEMAKER, _NOT_FOUND),
        "sagemaker_processing_hour": _unknown("instance-hour (processing)", _SAGEMAKER, _NOT_FOUND),
        "sagemaker_storage_gb_month": _unknown("GB-month (ML storage volume)", _SAGEMAKER, _NOT_FOUND),
    },
}


def price(region: str, key: str) -> Price:
    prices = PRICES.get(region)
    if prices is None:
        return _unknown(key, "", f"the price table has no region {region}")
    return prices[key]


# --- Quantities -------------------------------------------------------------------------------------

_MONTHS = {name.upper(): number for number, name in enumerate(calendar.month_abbr) if name}
_DAYS = {name: number for number, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}


def _cron_field(text: str, low: int, high: int, names: Mapping[str, int] | None = None) -> set[int] | None:
    """The values an AWS cron field allows, or None for what this reader does not evaluate (L, W, #)."""
    if text in ("*", "?"):
        return set(range(low, high + 1))
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        if not re.fullmatch(r"[A-Za-z0-9*\-]+", base) or (step_text and not step_text.isdigit()):
            return None
        step = int(step_text) if step_text else 1

        def number(token: str) -> int:
            return (names or {}).get(token.upper(), None) or int(token)

        try:
            if base == "*":
                start, end = low, high
            elif "-" in base:
                first, last = base.split("-", 1)
                start, end = number(first), number(last)
            else:
                start = number(base)
                end = high if step_text else start
        except ValueError:
            return None
        values.update(range(start, end + 1, step))
    return values if values and min(values) >= low and max(values) <= high else None


def runs_per_month(expression: str) -> float | None:
    """Average runs a month of an EventBridge/Glue schedule: ``cron(...)`` (6 fields) or ``rate(...)``."""
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if rate:
        every = int(rate.group(1)) * {"minute": 1 / 60, "hour": 1, "day": 24}[rate.group(2).rstrip("s")]
        return HOURS_PER_MONTH / every
    cron = re.fullmatch(r"cron\((.+)\)", expression.strip())
    if not cron:
        return None
    fields = cron.group(1).split()
    if len(fields) != 6:
        return None
    minutes, hours, days, months, weekdays, years = fields
    allowed = (
        _cron_field(minutes, 0, 59),
        _cron_field(hours, 0, 23),
        _cron_field(days, 1, 31),
        _cron_field(months, 1, 12, _MONTHS),
        _cron_field(weekdays, 1, 7, _DAYS),
        _cron_field(years, 1970, 2199),
    )
    if any(values is None for values in allowed):
        return None
    minute_set, hour_set, day_set, month_set, weekday_set, year_set = (v or set() for v in allowed)
    if CALENDAR_YEAR not in year_set:
        return 0.0
    runs_a_day = len(minute_set) * len(hour_set)
    day = datetime.date(CALENDAR_YEAR, 1, 1)
    days_run = 0
    while day.year == CALENDAR_YEAR:
        weekday = day.isoweekday() % 7 + 1  # AWS: 1 = Sunday ... 7 = Saturday
        if day.month in month_set and day.day in day_set and weekday in weekday_set:
            days_run += 1
        day += datetime.timedelta(days=1)
    return runs_a_day * days_run / 12


def endpoint_service(name: str) -> str:
    """``com.amazonaws.<region>.sts`` -> ``sts``; ``aws.sagemaker.<region>.studio`` -> ``sagemaker.studio``."""
    without_region = re.sub(r"(<region>|[a-z]{2}(-[a-z]+)+-\d)", "", name)
    without_prefix = re.sub(r"^(com\.amazonaws|aws)\.", "", without_region)
    return ".".join(part for part in without_prefix.split(".") if part)


def interface_endpoint_eni_hours(properties: Mapping[str, Any]) -> float | None:
    """An interface endpoint bills per AZ it is in: one network interface per subnet, every hour."""
    subnets = properties.get("SubnetIds")
    if not isinstance(subnets, list):
        return None
    return len(subnets) * HOURS_PER_MONTH


def alarm_metrics(properties: Mapping[str, Any]) -> int:
    """The alarm metrics an alarm bills: one for a single-metric alarm, one per metric a math alarm reads."""
    queries = properties.get("Metrics")
    if isinstance(queries, list):
        return sum(1 for query in queries if isinstance(query, Mapping) and "MetricStat" in query) or 1
    return 1


def _is_high_resolution(properties: Mapping[str, Any]) -> bool:
    periods = [properties.get("Period")]
    periods += [q.get("MetricStat", {}).get("Period") for q in properties.get("Metrics", []) if isinstance(q, Mapping)]
    return any(isinstance(period, int) and period < 60 for period in periods)


# --- Conditions: resources that exist only when a template condition holds --------------------------


def condition_holds(template: Mapping[str, Any], name: str) -> bool | None:
    """A condition's value with every parameter at its default (as a first `cdk deploy` leaves it)."""
    parameters = template.get("Parameters", {})
    conditions = template.get("Conditions", {})

    def value(node: Any) -> Any:
        if isinstance(node, Mapping) and len(node) == 1:
            (function, argument), *_ = node.items()
            if function == "Ref" and argument in parameters:
                return parameters[argument].get("Default")
            if function == "Condition":
                return value(conditions.get(argument))
            if function == "Fn::Equals":
                left, right = (value(item) for item in argument)
                return None if left is None or right is None else str(left) == str(right)
            if function == "Fn::Not":
                inner = value(argument[0])
                return None if inner is None else not inner
            if function in ("Fn::And", "Fn::Or"):
                items = [value(item) for item in argument]
                if None in items:
                    return None
                return all(items) if function == "Fn::And" else any(items)
            return None
        return node if isinstance(node, str | int | float | bool) else None

    result = value(conditions.get(name))
    return result if isinstance(result, bool) else None


# --- Line items -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One billable resource: what it is, how much of it a month, at what price."""

    stack: str
    logical_id: str
    type: str
    what: str
    quantity: float | None  # None: not derivable from the template (the note says why)
    unit: str
    price: Price
    note: str = ""
    condition: str = ""  # the template condition the resource waits for ("" = created at deploy)
    per_use: bool = False  # bills only when used: zero while idle

    @property
    def monthly(self) -> float | None:
        if self.quantity == 0:
            return 0.0
        if self.quantity is None or self.price.amount is None:
            return None
        return self.quantity * self.price.amount


# Resource types that never bill by themselves (configuration, permissions, wiring).
NO_CHARGE: dict[str, str] = {
    "AWS::IAM::Role": "IAM",
    "AWS::IAM::Policy": "IAM",
    "AWS::IAM::ManagedPolicy": "IAM",
    "AWS::EC2::VPC": "VPC networking (no NAT gateway, no public address)",
    "AWS::EC2::Subnet": "VPC networking",
    "AWS::EC2::RouteTable": "VPC networking",
    "AWS::EC2::SubnetRouteTableAssociation": "VPC networking",
    "AWS::EC2::SecurityGroup": "VPC networking",
    "AWS::EC2::SecurityGroupIngress": "VPC networking",
    "AWS::EC2::SecurityGroupEgress": "VPC networking",
    "AWS::KMS::Alias": "KMS aliases",
    "AWS::S3::BucketPolicy": "policies",
    "AWS::SNS::TopicPolicy": "policies",
    "AWS::SQS::QueuePolicy": "policies",
    "AWS::Lambda::EventInvokeConfig": "Lambda configuration",
    "AWS::Lambda::Permission": "Lambda configuration",
    "AWS::Glue::Database": "Data Catalog (first million objects free)",
    "AWS::Glue::SecurityConfiguration": "Glue configuration",
    "AWS::Glue::Connection": "Glue configuration",
    "AWS::SageMaker::Model": "SageMaker configuration (compute bills on the endpoint)",
    "AWS::SageMaker::EndpointConfig": "SageMaker configuration (compute bills on the endpoint)",
    "AWS::SageMaker::DataQualityJobDefinition": "SageMaker configuration (its runs bill on the schedule)",
    "AWS::SageMaker::ModelQualityJobDefinition": "SageMaker configuration (its runs bill on the schedule)",
    "AWS::SageMaker::StudioLifecycleConfig": "SageMaker configuration (a script a user's app runs at its start)",
    "AWS::SageMaker::ModelPackageGroup": "model registry",
    "AWS::SageMaker::NotebookInstanceLifecycleConfig": "SageMaker configuration",
    "AWS::ApplicationAutoScaling::ScalableTarget": "Application Auto Scaling (its alarms are counted on the policy)",
    "AWS::CDK::Metadata": "CDK metadata",
}
NO_CHARGE_PREFIXES = ("Custom::",)  # CDK's Lambda-backed custom resources: run at deploy only

# Resource types that bill per use only: zero while idle. (price key or "", how it bills)
PER_USE: dict[str, tuple[str, str]] = {
    "AWS::Lambda::Function": ("", "per request and GB-second: nothing runs while idle"),
    "AWS::SNS::Topic": ("", "per publish and delivery: nothing is published while idle"),
    "AWS::SQS::Queue": ("sqs_requests", "per request: no message is sent while idle (polling: see the mapping)"),
    "AWS::Events::Rule": ("", "AWS service events matched by rules are not charged"),
    "AWS::Glue::Job": ("glue_job_dpu_hour", "per DPU-hour of each run (see its runs as data grows): no run while idle"),
    "AWS::S3::Bucket": ("s3_storage_gb_month", "per GB-month stored and per request: nothing is uploaded while idle"),
    "AWS::Logs::LogGroup": ("logs_storage_gb_month", "per GB ingested and stored: nothing is logged while idle"),
    "AWS::EC2::FlowLog": ("logs_ingestion_gb", "flow records ingested: no traffic in the VPC while idle"),
    "AWS::SageMaker::UserProfile": ("", "no charge; the apps a user opens bill while they run"),
}


def _text(value: Any) -> str:
    """A template value as text: plain strings as they are, intrinsic functions flattened."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_text(part) for part in parts)
    if isinstance(value, Mapping) and value.get("Ref") == "AWS::Region":
        return "<region>"
    return "<token>"


def _endpoint_instances(resources: Mapping[str, Any], endpoint: Mapping[str, Any]) -> tuple[int | None, str, str]:
    """(instances while idle, instance types, note) of a SageMaker endpoint, from its config and scaling."""
    reference = endpoint.get("Properties", {}).get("EndpointConfigName")
    config_id = None
    if isinstance(reference, Mapping):
        config_id = reference.get("Ref") or (reference.get("Fn::GetAtt") or [None])[0]
    config = resources.get(config_id or "", {}).get("Properties", {})
    variants = config.get("ProductionVariants")
    if not isinstance(variants, list):
        return None, "", "endpoint configuration not found in the template"
    counts = [variant.get("InitialInstanceCount") for variant in variants]
    types = sorted({str(variant.get("InstanceType")) for variant in variants})
    if not all(isinstance(count, int) for count in counts):
        return None, ", ".join(types), "instance count is not a number in the template"
    instances = sum(count for count in counts if isinstance(count, int))
    name = endpoint.get("Properties", {}).get("EndpointName")
    minimums = [
        resource["Properties"].get("MinCapacity")
        for resource in resources.values()
        if resource.get("Type") == "AWS::ApplicationAutoScaling::ScalableTarget"
        and isinstance(name, str)
        and str(resource.get("Properties", {}).get("ResourceId", "")).startswith(f"endpoint/{name}/")
    ]
    note = "billed per instance-hour whether or not requests come; counted at the initial instance count"
    if minimums:
        note += f" (autoscaling between {sum(minimums)} and its maximum)"
    return instances, ", ".join(types), note


def stack_lines(stack: SynthesizedStack, region: str) -> tuple[list[Line], Counter[str], Counter[str]]:
    """The billable lines of one stack, with the counts of its no-charge and its unassessed types."""
    template = stack.template
    resources: Mapping[str, Any] = template.get("Resources", {})
    lines: list[Line] = []
    free: Counter[str] = Counter()
    unassessed: Counter[str] = Counter()
    for logical_id, resource in sorted(resources.items()):
        kind = resource.get("Type", "")
        properties = resource.get("Properties", {})
        condition = resource.get("Condition", "")
        if condition and condition_holds(template, condition) is True:
            condition = ""  # created at deploy all the same
        line = _line(stack.name, logical_id, kind, properties, resources, region)
        if line is None:
            if kind in NO_CHARGE or kind.startswith(NO_CHARGE_PREFIXES):
                free[kind] += 1
            else:
                unassessed[kind] += 1
            continue
        lines.append(replace(line, condition=condition))
    return lines, free, unassessed


def _line(
    stack: str, logical_id: str, kind: str, properties: Mapping[str, Any], resources: Mapping[str, Any], region: str
) -> Line | None:
    new = functools.partial(Line, stack, logical_id, kind)
    if kind == "AWS::EC2::VPCEndpoint":
        service = endpoint_service(_text(properties.get("ServiceName")))
        if properties.get("VpcEndpointType", "Gateway") != "Interface":
            return new(
                what=f"{service} gateway endpoint",
                quantity=0,
                unit="-",
                price=Price(
                    0.0,
                    "-",
                    "https://aws.amazon.com/vpc/pricing/",
                    _READ,
                    "gateway endpoints carry no hourly or data charge",
                ),
                note="gateway endpoint: no charge",
                per_use=True,
            )
        hours = interface_endpoint_eni_hours(properties)
        subnets = properties.get("SubnetIds")
        note = f"in {len(subnets)} subnets x {HOURS_PER_MONTH} h" if isinstance(subnets, list) else "subnets unknown"
        return new(
            what=f"{service} interface endpoint",
            quantity=hours,
            unit="ENI-hours",
            price=price(region, "interface_endpoint_hour"),
            note=note + "; data processed ($/GB) only with traffic",
        )
    if kind == "AWS::KMS::Key":
        rotation = "rotates yearly: +$1/month per rotation (first two)" if properties.get("EnableKeyRotation") else ""
        return new(
            what="customer managed KMS key",
            quantity=1,
            unit="key-months",
            price=price(region, "kms_key_month"),
            note="; ".join(filter(None, [rotation, "requests: 20,000 a month free, none while idle"])),
        )
    if kind == "AWS::CloudWatch::Alarm":
        metrics = alarm_metrics(properties)
        high = _is_high_resolution(properties)
        what = f"alarm on {properties.get('MetricName') or 'a metric math expression'}"
        return new(
            what=what,
            quantity=metrics,
            unit="alarm metric-months",
            price=price(region, "alarm_metric_month_high_resolution" if high else "alarm_metric_month"),
            note=f"{metrics} metric(s) read",
        )
    if kind == "AWS::CloudWatch::Dashboard":
        return new(
            what="CloudWatch dashboard",
            quantity=1,
            unit="dashboard-months",
            price=price(region, "dashboard_month"),
            note="GetMetricData calls of people viewing it are billed per metric read",
        )
    if kind == "AWS::Budgets::Budget":
        return new(what="AWS Budgets budget", quantity=1, unit="budget-months", price=price(region, "budget_month"))
    if kind == "AWS::ApplicationAutoScaling::ScalingPolicy":
        if properties.get("PolicyType") != "TargetTrackingScaling":
            return None
        config = properties.get("TargetTrackingScalingPolicyConfiguration", {})
        alarms = 1 if config.get("DisableScaleIn") else 2
        return new(
            what="target-tracking scaling policy's alarms",
            quantity=alarms,
            unit="alarm metric-months",
            price=price(region, "alarm_metric_month"),
            note="target tracking creates and owns a scale-out and a scale-in alarm",
        )
    if kind == "AWS::Glue::Crawler":
        schedule = properties.get("Schedule", {}).get("ScheduleExpression")
        if not isinstance(schedule, str):
            return new(
                what="Glue crawler (no schedule)",
                quantity=0,
                unit="DPU-hours",
                price=price(region, "glue_crawler_dpu_hour"),
                note="runs only when started",
                per_use=True,
            )
        crawls = runs_per_month(schedule)
        quantity = None if crawls is None else round(crawls * 10 / 60, 4)
        shown = "unknown" if crawls is None else f"{crawls:.1f}"
        return new(
            what=f"Glue crawler on `{schedule}`",
            quantity=quantity,
            unit="DPU-hours",
            price=price(region, "glue_crawler_dpu_hour"),
            note=f"{shown} crawls a month x 10 minutes (the minimum billed per crawl, even with nothing new) "
            "x 1 DPU assumed: Glue chooses a crawl's DPUs and reports them (GetCrawlerHistory DPUHour)",
        )
    if kind == "AWS::CloudTrail::Trail":
        selectors = properties.get("EventSelectors") or properties.get("AdvancedEventSelectors") or []
        management = any(s.get("IncludeManagementEvents", True) for s in selectors if isinstance(s, Mapping))
        note = "data events are billed per event: no object is read or written while idle"
        if properties.get("EnableLogFileValidation"):
            note += "; a digest file a hour goes to the log bucket (a few KB: S3 pennies, not priced)"
        if management:
            note += "; management events: the first trail's copy is free"
        return new(
            what="CloudTrail trail (S3 data events)",
            quantity=0,
            unit="100,000 data events",
            price=price(region, "cloudtrail_data_events"),
            note=note,
            per_use=True,
        )
    if kind == "AWS::SageMaker::Endpoint":
        instances, types, note = _endpoint_instances(resources, {"Properties": properties})
        hours = None if instances is None else instances * HOURS_PER_MONTH
        return new(
            what=f"SageMaker real-time endpoint ({instances} x {types})",
            quantity=hours,
            unit="instance-hours",
            price=price(region, "sagemaker_hosting_hour"),
            note=note,
        )
    if kind == "AWS::SageMaker::MonitoringSchedule":
        config = properties.get("MonitoringScheduleConfig", {})
        schedule = config.get("ScheduleConfig", {}).get("ScheduleExpression")
        runs = runs_per_month(schedule) if isinstance(schedule, str) else None
        [job] = [
            r.get("Properties", {})
            for r in resources.values()
            if r.get("Type") == f"AWS::SageMaker::{config.get('MonitoringType')}JobDefinition"
        ] or [{}]
        cluster = job.get("JobResources", {}).get("ClusterConfig", {})
        seconds = job.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
        instances = cluster.get("InstanceCount")
        quantity = None if None in (runs, seconds, instances) else round(runs * instances * seconds / 3600, 1)
        return new(
            what=f"Model Monitor schedule on `{schedule}` ({instances} x {cluster.get('InstanceType')})",
            quantity=quantity,
            unit="processing instance-hours (at most)",
            price=price(region, "sagemaker_processing_hour"),
            note=f"{runs or 0:.1f} runs a month, each billed per second and stopped after {seconds} s at most "
            "(a run over an hour's captures takes minutes); the analyzer's volume per GB-month while it runs",
        )
    if kind == "AWS::SageMaker::NotebookInstance":
        volume = properties.get("VolumeSizeInGB", 5)
        return new(
            what=f"notebook instance ({properties.get('InstanceType')}, {volume} GB volume)",
            quantity=volume,
            unit="GB-months of ML storage",
            price=price(region, "sagemaker_storage_gb_month"),
            note="its volume bills while it exists; the instance bills per hour only while InService "
            "(the lifecycle configuration stops it when idle)",
        )
    if kind == "AWS::SageMaker::Domain":
        return new(
            what="SageMaker Studio domain",
            quantity=0,
            unit="-",
            price=Price(0.0, "-", _SAGEMAKER, _READ, "no charge for the domain"),
            note="no charge for the domain; its home-directory EFS volume bills per GB stored "
            "(empty while idle); apps and spaces bill while they run",
            per_use=True,
        )
    if kind == "AWS::Lambda::EventSourceMapping":
        source = properties.get("EventSourceArn", {})
        queue = source.get("Fn::GetAtt", ["?"])[0] if isinstance(source, Mapping) else "?"
        return new(
            what=f"Lambda polling of queue {queue}",
            quantity=None,
            unit="million requests",
            price=price(region, "sqs_requests"),
            note="Lambda long-polls the queue even when it is empty; each empty receive is a billed SQS "
            "request (first million a month free per account). AWS publishes no idle poll count, "
            "so the quantity is unknown",
        )
    if kind in PER_USE:
        key, how = PER_USE[kind]
        unit_price = price(region, key) if key else Price(0.0, "-", "", _READ, how)
        return new(
            what=kind.split("::", 1)[1],
            quantity=0,
            unit=unit_price.unit,
            price=unit_price,
            note=how,
            per_use=True,
        )
    return None


# --- The report -------------------------------------------------------------------------------------


@dataclass
class StageCost:
    name: str
    outdir: Path
    region: str
    priced_in: str
    lines: list[Line] = field(default_factory=list)
    free: Counter[str] = field(default_factory=Counter)
    unassessed: Counter[str] = field(default_factory=Counter)

    def total(self, *, with_conditional: bool) -> tuple[float, int]:
        """(sum of the priced lines, number of lines left out for an unknown quantity or price)."""
        chosen = [line for line in self.lines if with_conditional or not line.condition]
        return (
            sum(line.monthly or 0.0 for line in chosen),
            sum(1 for line in chosen if line.monthly is None),
        )


def stage_cost(name: str, outdir: Path, *, price_region: str | None = None) -> StageCost:
    """One stage's lines, priced in each stack's region (or ``price_region`` for all of them)."""
    stacks = read_stacks(outdir)
    regions = {stack.region for stack in stacks}
    region = next(iter(regions)) if len(regions) == 1 else None
    priced_in = price_region or region or DEFAULT_REGION
    cost = StageCost(name=name, outdir=Path(outdir), region=region or "not set", priced_in=priced_in)
    for stack in stacks:
        lines, free, unassessed = stack_lines(stack, price_region or stack.region or DEFAULT_REGION)
        cost.lines += lines
        cost.free += free
        cost.unassessed += unassessed
    return cost


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.2f}"


def _quantity(line: Line) -> str:
    if line.quantity is None:
        return "unknown"
    shown = f"{line.quantity:,.4f}".rstrip("0").rstrip(".")
    return f"{shown} {line.unit}"


def _unit_price(item: Price) -> str:
    return "unknown" if item.amount is None else f"${item.amount:g} / {item.unit}"


def _total_text(total: tuple[float, int]) -> str:
    amount, unknown = total
    if unknown:
        return f"${amount:,.2f} a month + {unknown} line(s) not priced (unknown quantity or price)"
    return f"${amount:,.2f} a month"


def _row(line: Line) -> str:
    cells = [
        line.stack,
        f"`{line.logical_id}`",
        line.type,
        line.what,
        _quantity(line),
        _unit_price(line.price),
        _money(line.monthly),
        line.note,
    ]
    return "| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |"


_HEADER = "| stack | logical id | type | what | quantity a month | unit price | a month | how it is derived |"
_RULE = "| --- | --- | --- | --- | --- | --- | --- | --- |"


def render_stage(cost: StageCost, comparison: StageCost | None = None) -> str:
    out = [f"## {cost.name}", ""]
    region_note = "" if cost.region != "not set" else " (the stage sets no region: priced in " + DEFAULT_REGION + ")"
    out.append(f"Region: {cost.region}{region_note}. Prices: {cost.priced_in}.")
    out.append("")
    deployed = [line for line in cost.lines if not line.condition and not line.per_use]
    conditional = [line for line in cost.lines if line.condition]
    per_use = [line for line in cost.lines if line.per_use and not line.condition]
    out += [f"**Idle, as deployed: {_total_text(cost.total(with_conditional=False))}**", ""]
    out += [
        f"**Idle with every conditional resource created: {_total_text(cost.total(with_conditional=True))}**",
        "",
    ]
    if comparison is not None:
        out += [
            f"For comparison, the same quantities at {comparison.priced_in} prices: idle "
            f"{_total_text(comparison.total(with_conditional=False))}; with every conditional resource "
            f"{_total_text(comparison.total(with_conditional=True))}.",
            "",
        ]
    out += ["### Billed while idle, from the first deploy", "", _HEADER, _RULE]
    out += [
        _row(line) for line in sorted(deployed, key=lambda item: (item.stack, -(item.monthly or 0), item.logical_id))
    ]
    out.append("")
    if conditional:
        conditions = sorted({f"`{line.condition}`" for line in conditional})
        out += [
            "### Created only when a template condition holds",
            "",
            f"Conditions {', '.join(conditions)} are false with the parameters' defaults (a first deploy), so these "
            "resources do not exist until they hold. In the hosting stacks that is once a first model is approved "
            "and deployed (`ModelPackageArn` set by deploy_model): from then on they bill while idle too.",
            "",
            _HEADER,
            _RULE,
        ]
        out += [_row(line) for line in sorted(conditional, key=lambda item: (item.stack, item.logical_id))]
        out.append("")
    out += [
        "### Billed only when used (nothing while idle)",
        "",
        "| stack | type | resources | how it bills | unit price |",
    ]
    out.append("| --- | --- | --- | --- | --- |")
    groups: dict[tuple[str, str], list[Line]] = {}
    for line in per_use:
        groups.setdefault((line.stack, line.type), []).append(line)
    for (stack, kind), members in sorted(groups.items()):
        ids = ", ".join(f"`{line.logical_id}`" for line in members)
        first = members[0]
        unit = _unit_price(first.price) if first.price.unit != "-" else "-"
        out.append(f"| {stack} | {kind} | {ids} | {first.note} | {unit} |")
    out.append("")
    out.append(
        "No charge of their own: " + ", ".join(f"{kind} x{count}" for kind, count in sorted(cost.free.items())) + "."
    )
    if cost.unassessed:
        out.append("")
        out.append(
            "**Not assessed (add them to checks/cost.py):** "
            + ", ".join(f"{kind} x{count}" for kind, count in sorted(cost.unassessed.items()))
        )
    out.append("")
    runs = render_preparation_runs(cost)
    if runs:
        out.append(runs)
    return "\n".join(out)


# --- The preparation job's runs as data grows ------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    """What bench/prepare.py measured: ``rows`` unique rows prepared in ``seconds`` of the job's own
    work (the phases in its report.json: Spark's start and stop left out) on ``vcpus``."""

    rows: int
    seconds: float
    vcpus: int
    measured: str

    @property
    def rows_per_vcpu_second(self) -> float:
        return self.rows / self.seconds / self.vcpus


# The median of 3 runs of `python bench/prepare.py --runs 3` (1,000,000 rows: the sum of the job's
# phases), local Spark on a 2-vCPU, 24 GB machine. Measure again and update when etl/prepare.py
# changes how much work a row costs.
PREPARATION_THROUGHPUT = Throughput(
    rows=1_000_000, seconds=35.65, vcpus=2, measured="bench/prepare.py, 2026-11-24, issue 16's job"
)
# Glue's G workers, (DPUs, vCPUs) each: https://docs.aws.amazon.com/glue/latest/dg/worker-types.html
GLUE_WORKER_TYPES: dict[str, tuple[int, int]] = {"G.1X": (1, 4), "G.2X": (2, 8), "G.4X": (4, 16), "G.8X": (8, 32)}
GLUE_JOB_MINIMUM_SECONDS = 60  # the least a run is billed (the price's source)
SCALE_ROWS = (1_000_000, 10_000_000, 100_000_000)


@dataclass(frozen=True)
class PreparationRun:
    """One run of a stage's Glue job on ``rows`` unique rows, on paper."""

    stack: str
    logical_id: str
    worker_type: str
    workers: int
    timeout_minutes: int | None
    rows: int
    seconds: float | None  # the job's work at the measured rate on the task vCPUs (None: unknown worker)
    dpu_hours: float | None  # billed: every worker, the 1-minute minimum
    price: Price

    @property
    def amount(self) -> float | None:
        if self.dpu_hours is None or self.price.amount is None:
            return None
        return self.dpu_hours * self.price.amount


def preparation_runs(cost: StageCost, throughput: Throughput = PREPARATION_THROUGHPUT) -> list[PreparationRun]:
    """Each Glue job of the stage at each of ``SCALE_ROWS`` (:func:`job_runs`)."""
    unit_price = price(cost.priced_in, "glue_job_dpu_hour")
    return [
        run
        for stack in read_stacks(cost.outdir)
        for logical_id, resource in sorted(stack.template.get("Resources", {}).items())
        if resource.get("Type") == "AWS::Glue::Job"
        for run in job_runs(stack.name, logical_id, resource.get("Properties", {}), unit_price, throughput)
    ]


def job_runs(
    stack: str, logical_id: str, properties: Mapping[str, Any], unit_price: Price, throughput: Throughput
) -> list[PreparationRun]:
    """One Glue job's runs at each of ``SCALE_ROWS``. One worker runs Spark's driver and the
    others' vCPUs run the tasks, each at the measured rate: the rate of one machine, with the
    shuffles of a cluster (over the network) left out, so the figures are a floor to check against
    the job's first real runs, not a promise."""
    worker_type, workers = str(properties.get("WorkerType")), int(properties.get("NumberOfWorkers", 0))
    timeout = properties.get("Timeout")
    runs: list[PreparationRun] = []
    for rows in SCALE_ROWS:
        seconds = dpu_hours = None
        if worker_type in GLUE_WORKER_TYPES and workers >= 2:
            dpus, vcpus = GLUE_WORKER_TYPES[worker_type]
            seconds = rows / (throughput.rows_per_vcpu_second * vcpus * (workers - 1))
            dpu_hours = max(seconds, GLUE_JOB_MINIMUM_SECONDS) / 3600 * dpus * workers
        minutes = int(timeout) if isinstance(timeout, int) else None
        runs.append(
            PreparationRun(stack, logical_id, worker_type, workers, minutes, rows, seconds, dpu_hours, unit_price)
        )
    return runs


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    return f"{seconds:,.0f} s" if seconds < 120 else f"{seconds / 60:,.1f} min"


def render_preparation_runs(cost: StageCost, throughput: Throughput = PREPARATION_THROUGHPUT) -> str:
    runs = preparation_runs(cost, throughput)
    if not runs:
        return ""
    out = [
        "### The preparation job's runs as data grows",
        "",
        f"A run of the Glue job on unique rows like bank marketing's (21 columns), at the rate "
        f"`bench/prepare.py` measured: {throughput.rows:,} rows in {throughput.seconds:g} s of the job's own work "
        f"on {throughput.vcpus} vCPUs, {throughput.rows_per_vcpu_second:,.0f} rows a second per vCPU "
        f"({throughput.measured}). One worker runs Spark's driver and the other workers' vCPUs the tasks; "
        "every worker bills, per second, for at least a minute. The time leaves out Glue's start and a "
        "cluster's network shuffles, so it is a floor: compare it with the job's first real runs (the "
        "preparation section of the dashboard) before sizing from it. Nor does it count a spill: where the "
        "cached rows outgrow the executors' memory, Spark keeps the rest on the workers' disks. Raise "
        "`etl.number_of_workers` (or `etl.worker_type`) when a size you expect comes near the timeout; the "
        "time falls with the task vCPUs, the DPU-hours stay about the same.",
        "",
    ]
    # Where the stage's region has no known price, the run at us-east-1's too (as the totals above).
    fallback = price(DEFAULT_REGION, "glue_job_dpu_hour") if runs[0].price.amount is None else None
    compared = f" | a run at {DEFAULT_REGION}'s price" if fallback else ""
    out += [
        f"| stack | job | workers | rows | the job's work | timeout | DPU-hours a run | a run{compared} |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |" + (" ---: |" if fallback else ""),
    ]
    for run in runs:
        timeout = "unknown" if run.timeout_minutes is None else f"{run.timeout_minutes} min"
        over = run.seconds is not None and run.timeout_minutes is not None and run.seconds > run.timeout_minutes * 60
        dpu_hours = "unknown" if run.dpu_hours is None else f"{run.dpu_hours:,.3f}"
        out.append(
            f"| {run.stack} | `{run.logical_id}` | {run.workers} x {run.worker_type} | {run.rows:,} | "
            f"{_duration(run.seconds)}{' (over the timeout)' if over else ''} | {timeout} | {dpu_hours} | "
            f"{_money(run.amount)} |" + (f" {_money(replace(run, price=fallback).amount)} |" if fallback else "")
        )
    out.append("")
    return "\n".join(out)


def render_prices(costs: Iterable[StageCost]) -> str:
    used: dict[tuple[str, str], Price] = {}
    for cost in costs:
        for line in cost.lines:
            if line.price.source and line.price.unit != "-":
                key = next((k for k, v in PRICES.get(cost.priced_in, {}).items() if v == line.price), line.price.unit)
                used[(cost.priced_in, key)] = line.price
    out = [
        "## Prices",
        "",
        "| region | item | unit price | source | read | note |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for (region, key), item in sorted(used.items()):
        amount = "unknown" if item.amount is None else f"${item.amount:g} / {item.unit}"
        out.append(f"| {region} | {key} | {amount} | {item.source} | {item.read} | {item.note.replace('|', '/')} |")
    out.append("")
    return "\n".join(out)


INTRODUCTION = """# Idle monthly cost

Generated by `make cost` (`python -m checks.cost`) from the synthesized templates of each stage; a
test regenerates it from the test session's assemblies and fails when this file is out of date.
Do not edit it by hand.

**Idle** means the platform deployed and left alone: nothing uploaded, no ETL, training or
transform job, no request to an endpoint, nobody in Studio. What bills then is what AWS charges
by the hour or the month (interface endpoints, keys, alarms, scheduled crawls); what bills per
request, per GB or per run costs nothing and is listed apart. Quantities are read from the
templates (an endpoint's subnets, an alarm's metrics, the crawler's schedule), a month is 730
hours, and every price carries its source and the date it was read. A price or quantity that
could not be established is "unknown" with the reason, and the totals say how many lines that
leaves out; free tiers (account-wide) are not subtracted.
"""


def render_document(stages: Iterable[tuple[str, Path]]) -> str:
    """The Markdown report of each (stage name, assembly folder), in order."""
    return _document([stage_cost(name, Path(outdir)) for name, outdir in stages])


def _document(costs: list[StageCost]) -> str:
    parts = [INTRODUCTION]
    for cost in costs:
        unknown_prices = any(line.quantity != 0 and line.price.amount is None for line in cost.lines)
        comparison = None
        if cost.priced_in != DEFAULT_REGION and unknown_prices:
            comparison = stage_cost(cost.name, cost.outdir, price_region=DEFAULT_REGION)
        parts.append(render_stage(cost, comparison))
    parts.append(render_prices(costs))
    return "\n".join(parts).rstrip() + "\n"


def _stage_argument(text: str) -> tuple[str, Path]:
    name, separator, folder = text.partition("=")
    return (name, Path(folder)) if separator else (Path(text).name, Path(text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m checks.cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("assemblies", nargs="+", type=_stage_argument, metavar="[NAME=]DIR")
    parser.add_argument("--output", type=Path, help="write the Markdown report here (default: print it)")
    parser.add_argument("--check", action="store_true", help="compare with --output instead of writing it")
    args = parser.parse_args(argv)
    costs = [stage_cost(name, outdir) for name, outdir in args.assemblies]
    document = _document(costs)
    if args.output is None:
        print(document, end="")
        return 0
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != document:
            print(f"{args.output} is out of date: run make cost", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(document, encoding="utf-8")
    for cost in costs:
        print(
            f"{cost.name}: idle {_total_text(cost.total(with_conditional=False))}; "
            f"with every conditional resource {_total_text(cost.total(with_conditional=True))}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
