"""check_drift: a data-quality monitoring run's report tells the operators which features of the
live model drifted, and starts a preparation run when new labelled data is there to retrain on; a
model-quality run's report gives the live model's objective metric on labelled traffic.

Fired by EventBridge when Model Monitor writes a monitoring run's ``constraint_violations.json``
under ``monitoring/<dataset>/reports/`` (S3 "Object Created"; the hosting stack's rule). The
report names the features as the analyzer names a headerless dataset's columns, ``_c0``, ``_c1``,
...: the live model's prepared run (its package's ``run_id``) says which column each is, from
``schema.json`` (a request's layout: the raw file's columns that are features, in file order).

- every report publishes ``DriftedFeatures`` (the number of features with a violation; 0 for a
  clean report), which the hosting stack's drift alarm watches;
- a report with violations sends the operators' topic a message naming each feature and its
  checks, and what was done about it:
- drift alone does not retrain (the same data would give the same model). When a file under
  raw/<dataset>/ is newer than the live model's run (its id starts with its snapshot's newest
  LastModified), the run of raw/<dataset>/ as it is now is started through the claim start_etl
  uses (``platform_runtime.start_run``), so a snapshot is prepared once whoever starts it; unless
  that run is already claimed (start_etl got there first), or drift retrained the dataset less
  than ``RETRAIN_MIN_HOURS`` ago (the rate limit: the runs whose claim says check_drift started
  them; uploads' own runs do not count). The new model still passes the gate, and a person's
  approval where the stage asks for one;
- other objects, and any event that is not an S3 Object Created event, are ignored with the
  reason; a report that is not Model Monitor's violations format fails the invocation (it is
  retried, then lands in the dead-letter queue, and the errors alarm fires).

A model-quality run's ``statistics.json`` (under the endpoint's ``<endpoint>-model-quality``
schedule's folder) publishes ``LiveModelQuality``: the live model's objective metric
(``QUALITY_METRIC``, by Model Monitor's name) on the predictions joined with their uploaded labels,
which the hosting stack's model-quality alarm compares with the spec's ``training.minimum``. A
report without that metric fails the invocation, as a malformed violations report does.
https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-metrics.html

Lambda retries an invocation that raised: the decision (and a run's start) comes before the
metric and the message, so a claim still being started elsewhere (``RunStarting``) sends nothing
twice.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import platform_runtime as runtime

LOG = logging.getLogger(__name__)
REPORT = "constraint_violations.json"
STATISTICS = "statistics.json"  # a model-quality run's metrics
PARAMETER = "ModelPackageArn"
MAX_LISTED = 20  # features named in one message; the report has the rest
MAX_DESCRIPTION = 300  # characters of a check's description in the message (SNS takes 256 KB at most)
MAX_REPORT_BYTES = 10 * 1024 * 1024  # far above any report of a feature set; anything larger is refused unread
SUBJECT_LIMIT = 100  # SNS's limit on a subject's length
STARTED_BY = "check_drift"  # in the claims of the runs it starts: what the rate limit counts


class ReportUnreadable(ValueError):
    """The object is not a Model Monitor violations report."""


@dataclass(frozen=True)
class Settings:
    """Set by the dataset's hosting stack (``stacks/hosting.py``)."""

    stage: str = runtime.setting("STAGE")
    dataset: str = runtime.setting("DATASET")
    endpoint_name: str = runtime.setting("ENDPOINT_NAME")
    stack_name: str = runtime.setting("STACK_NAME")
    reports_prefix: str = runtime.setting("REPORTS_PREFIX")
    topic_arn: str = runtime.setting("TOPIC_ARN")
    spec_uri: str = runtime.setting("SPEC_URI")
    retrain_min_hours: int = runtime.setting("RETRAIN_MIN_HOURS", "integer")
    quality_metric: str = runtime.setting("QUALITY_METRIC")  # "": model quality is not monitored
    preparation: runtime.Preparation = runtime.settings_group(runtime.Preparation)


@dataclass(frozen=True)
class Violation:
    feature: str  # the column's name where the live run's schema gives it, else the analyzer's
    check: str
    description: str


@dataclass(frozen=True)
class Live:
    """The model the endpoint serves and the prepared run it was trained on ("" when unrecorded)."""

    package: str
    run_id: str


def read_report(text: str) -> list[dict[str, str]]:
    """The violations of a report in Model Monitor's format, ``{"violations": [{"feature_name",
    "constraint_check_type", "description"}, ...]}``.
    https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-interpreting-violations.html"""
    try:
        report = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReportUnreadable(f"not JSON: {error}") from None
    violations = report.get("violations") if isinstance(report, Mapping) else None
    if not isinstance(violations, list):
        raise ReportUnreadable("no list of violations")
    for number, item in enumerate(violations):
        if not isinstance(item, Mapping) or not isinstance(item.get("constraint_check_type"), str):
            raise ReportUnreadable(f"violations[{number}] has no constraint_check_type")
        if not isinstance(item.get("feature_name", ""), str) or not isinstance(item.get("description", ""), str):
            raise ReportUnreadable(f"violations[{number}]: feature_name and description are text")
    return violations


def read_quality(text: str, metric: str) -> float:
    """``metric``'s value in a model-quality run's statistics, ``{"<problem>_metrics": {"<metric>":
    {"value", "standard_deviation"}, ...}}``."""
    try:
        report = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReportUnreadable(f"not JSON: {error}") from None
    families = [family for family, _ in runtime.MODEL_MONITOR_METRICS.values()]
    found = [report[family] for family in families if isinstance(report, Mapping) and family in report]
    if len(found) != 1 or not isinstance(found[0], Mapping):
        raise ReportUnreadable(f"not one of {', '.join(families)}")
    value = found[0].get(metric, {}).get("value") if isinstance(found[0].get(metric), Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ReportUnreadable(f"no number for {metric}")
    return float(value)


def request_columns(schema: Mapping[str, Any]) -> list[str]:
    """The columns of a features-only request, in order: the raw file's columns that are features
    (``training_jobs/schema_encoder.py``'s layout; the baseline is written in it)."""
    features = set(schema["input_columns"])
    columns = schema.get("raw", {}).get("columns") or schema["input_columns"]
    return [column for column in columns if column in features]


def named(violations: Sequence[Mapping[str, str]], columns: Sequence[str]) -> list[Violation]:
    """Each violation with its feature's name (``_c<i>`` is the request's i-th column)."""
    out = []
    for item in violations:
        feature = item.get("feature_name", "")
        position = feature.removeprefix("_c")
        if feature.startswith("_c") and position.isdigit() and int(position) < len(columns):
            feature = columns[int(position)]
        out.append(Violation(feature, item["constraint_check_type"], item.get("description", "")))
    return out


def live_model(cloudformation, sagemaker, settings: Settings) -> Live | None:
    _, parameters = runtime.stack_state(cloudformation, settings.stack_name)
    package = parameters.get(PARAMETER, "")
    if not package:
        return None
    metadata = sagemaker.describe_model_package(ModelPackageName=package).get("CustomerMetadataProperties", {})
    return Live(package, metadata.get("run_id", ""))


def columns_of(s3, settings: Settings, run_id: str) -> list[str]:
    """The request's columns of the live model's run; none (the analyzer's names are kept) when
    the run records no schema."""
    if not run_id:
        return []
    preparation = settings.preparation
    key = f"{preparation.prepared_prefix}{settings.dataset}/{run_id}/schema.json"
    schema = runtime.read_json(s3, preparation.data_bucket, key)
    if schema is None:
        LOG.warning("s3://%s/%s is missing: features keep the analyzer's names", preparation.data_bucket, key)
        return []
    return request_columns(schema)


def retrain(glue, s3, settings: Settings, live: Live, report_uri: str, now: datetime) -> dict[str, str]:
    """What drift comes to for retraining: ``{"status", "detail"}`` (and the run's ids, if any)."""
    preparation, dataset = settings.preparation, settings.dataset
    raw = f"s3://{preparation.data_bucket}/{preparation.raw_prefix}{dataset}/"
    trained_on = runtime.run_time(live.run_id)
    if trained_on is None:
        return {
            "status": "alert-only",
            "detail": f"the live model records no prepared run, so new data under {raw} cannot be told from "
            "the data it was trained on: nothing is retrained",
        }
    snap = runtime.snapshot(s3, preparation, dataset)
    # S3 keeps LastModified to the second, as the run id does.
    if not snap.objects or snap.newest.replace(microsecond=0) <= trained_on:
        return {
            "status": "no-new-data",
            "detail": f"no file under {raw} is newer than the live model's run {live.run_id}: retraining on the "
            "same data would give the same model, so nothing is retrained (upload new labelled data to retrain)",
        }
    step = runtime.plan(snap, preparation, settings.spec_uri)
    claimed = runtime.run_claimed(s3, preparation, step)
    if claimed is not None:
        return {
            "status": "already-started",
            "run_id": step.run_id,
            "detail": f"the new data's run {step.run_id} was already started (job run "
            f"{claimed.get('job_run_id', 'starting')}); its model goes through the gate",
        }
    since = now - timedelta(hours=settings.retrain_min_hours)
    recent = [run for run in runtime.recent_runs(glue, preparation, dataset, since) if retraining(s3, preparation, run)]
    if recent:
        last = max(run["StartedOn"] for run in recent).astimezone(UTC)
        after = last + timedelta(hours=settings.retrain_min_hours)
        return {
            "status": "rate-limited",
            "detail": f"drift retrained {dataset} at {last:%Y-%m-%d %H:%M} UTC, less than "
            f"{settings.retrain_min_hours} h ago (monitoring.retrain_min_hours): the first drifted report "
            f"after {after:%Y-%m-%d %H:%M} UTC starts one",
        }
    record = {"source": report_uri, "started_by": STARTED_BY, "reason": "drift with new data"}
    outcome = runtime.start_run(glue, s3, preparation, step, record, now)
    return {
        **outcome,
        "detail": f"new data under {raw}: preparation run {step.run_id} started as job run "
        f"{outcome['job_run_id']}; its model goes through the gate",
    }


def retraining(s3, preparation: runtime.Preparation, run: Mapping[str, Any]) -> bool:
    """Whether a preparation job run is a retraining: its run's claim says check_drift started it
    (uploads' runs, which start_etl starts, do not count against the rate limit)."""
    output = run.get("Arguments", {}).get("--output", "")
    prefix = f"s3://{preparation.data_bucket}/"
    if not output.startswith(prefix):
        return False
    claim = runtime.read_json(s3, preparation.data_bucket, output.removeprefix(prefix) + runtime.RUN_RECORD)
    return claim is not None and claim.get("started_by") == STARTED_BY


def message(settings: Settings, live: Live, drifted: Sequence[Violation], report_uri: str, decision: str) -> str:
    features = sorted({v.feature for v in drifted})
    lines = [
        f"ML platform ({settings.stage}): Model Monitor found {len(features)} feature(s) of {settings.endpoint_name}'s "
        f"traffic drifting from the live model's training data (model package {live.package}, "
        f"prepared run {live.run_id or 'not recorded'}):",
    ]
    for feature in features[:MAX_LISTED]:
        checks = [v for v in drifted if v.feature == feature]
        said = "; ".join(f"{v.check}: {_short(v.description)}".rstrip(": ") for v in checks)
        lines.append(f"- {feature}: {said}")
    if len(features) > MAX_LISTED:
        lines.append(f"- and {len(features) - MAX_LISTED} more (see the report)")
    lines += ["", f"Report: {report_uri}", f"Retraining: {decision}.", "", runtime.runbook("drift").strip()]
    return "\n".join(lines)


def _short(text: str) -> str:
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"


def measured(settings: Settings, live: Live, value: float, now: datetime) -> dict[str, Any]:
    """A model-quality run's outcome: the live model's objective metric published (the alarm
    compares it with the gate's bar and tells the operators)."""
    runtime.put_metrics(settings.stage, settings.dataset, {runtime.QUALITY_METRIC: (value, "None")}, now)
    outcome = {"status": "measured", "metric": settings.quality_metric, "value": value, "model_package": live.package}
    LOG.info(
        "%s of %s on labelled traffic: %s", settings.quality_metric, live.package, value, extra={"outcome": outcome}
    )
    return outcome


def check_drift(event: Any, s3, cloudformation, sagemaker, glue, sns, settings: Settings, now: datetime) -> dict:
    try:
        obj = runtime.ObjectCreated.from_event(event)
    except runtime.Unrecognised as unrecognised:
        return runtime.ignored(LOG, str(unrecognised))
    preparation = settings.preparation
    if obj.bucket != preparation.data_bucket or not obj.key.startswith(settings.reports_prefix):
        return runtime.ignored(LOG, f"{obj.uri} is not under s3://{preparation.data_bucket}/{settings.reports_prefix}")
    endpoint = settings.endpoint_name
    quality = obj.key.startswith(f"{settings.reports_prefix}{endpoint}/{endpoint}{runtime.MODEL_QUALITY_SCHEDULE}/")
    wanted = STATISTICS if quality and settings.quality_metric else REPORT
    if obj.key.rpartition("/")[2] != wanted:
        return runtime.ignored(LOG, f"{obj.uri} is not a {wanted} of {endpoint}'s schedules")
    if obj.size > MAX_REPORT_BYTES:
        raise ReportUnreadable(f"{obj.uri} is {obj.size} bytes, more than a report holds ({MAX_REPORT_BYTES})")
    text = runtime.read_text(s3, obj.uri)
    try:
        value = read_quality(text, settings.quality_metric) if quality else None
        violations = [] if quality else read_report(text)
    except ReportUnreadable as error:
        kind = "model-quality statistics" if quality else "violations report"
        raise ReportUnreadable(f"{obj.uri} is not a Model Monitor {kind}: {error}") from None
    live = live_model(cloudformation, sagemaker, settings)
    if live is None:
        return runtime.ignored(LOG, f"{settings.stack_name} serves no model: {obj.uri} is of a model no longer live")
    if value is not None:
        return measured(settings, live, value, now)
    drifted = named(violations, columns_of(s3, settings, live.run_id))
    features = sorted({v.feature for v in drifted})
    outcome: dict[str, Any] = {"status": "clean" if not drifted else "drifted", "features": features}
    if drifted:
        outcome["retraining"] = retrain(glue, s3, settings, live, obj.uri, now)
    runtime.put_metrics(settings.stage, settings.dataset, {runtime.DRIFT_METRIC: (float(len(features)), "Count")}, now)
    if drifted:
        subject = f"ML platform ({settings.stage}): {settings.endpoint_name} traffic drifted"[:SUBJECT_LIMIT]
        text = message(settings, live, drifted, obj.uri, outcome["retraining"]["detail"])
        sns.publish(TopicArn=settings.topic_arn, Subject=subject, Message=text)
    LOG.info("%s: %s", outcome["status"], ", ".join(features) or "no violation", extra={"outcome": outcome})
    return outcome


# --- Lambda entry point: clients and settings once per container ---------------------------------

SETTINGS = runtime.read_settings(Settings, "check_drift", os.environ)
S3 = boto3.client("s3")
CLOUDFORMATION = boto3.client("cloudformation")
SAGEMAKER = boto3.client("sagemaker")
GLUE = boto3.client("glue")
SNS = boto3.client("sns")


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return check_drift(event, S3, CLOUDFORMATION, SAGEMAKER, GLUE, SNS, SETTINGS, datetime.now(UTC))
