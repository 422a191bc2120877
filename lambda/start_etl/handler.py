"""start_etl: a new object under raw/<dataset>/ starts the Glue job that prepares that dataset.

Fired by an EventBridge rule on S3 "Object Created" events of the data bucket under raw/.
The job reads every file under raw/<dataset>/ and writes prepared/<dataset>/<run-id>/.

Ignored, with the reason logged: other buckets or prefixes, folder markers, empty objects,
objects directly under raw/, datasets without a spec.

At-least-once delivery: the run id derives from the object's identity (key, version or ETag,
S3's sequencer) and the event time, so a repeated event maps to the same run. The run is
claimed by writing prepared/<dataset>/<run-id>/_RUN.json with If-None-Match: * (an atomic
create in S3); only the claimant starts the job. A second delivery finds the claim and does
nothing, and one that arrives while the first is still starting, or whose claim S3 could not
decide (409), raises, so that Lambda's retry comes back once the claim records the job run. A
claim whose job never started (its Lambda died in between) is taken over after
CLAIM_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import platform_runtime as runtime
from botocore.exceptions import ClientError

LOG = logging.getLogger(__name__)
RUN_RECORD = "_RUN.json"
# S3's answers to a PutObject with If-None-Match: * that does not write, by code
# (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html; botocore's model lists neither):
CLAIM_TAKEN = "PreconditionFailed"  # 412: the key exists, another delivery holds the claim
CLAIM_CONFLICT = "ConditionalRequestConflict"  # 409: a conflicting write to the key was in flight; retry


class RunStarting(RuntimeError):
    """Another delivery of this event is claiming or starting the run right now; retry later."""


@dataclass(frozen=True)
class Settings:
    """Set by ``stacks/etl.py``; the specs are the stage's datasets, uploaded as assets."""

    job_name: str = runtime.setting("JOB_NAME")
    data_bucket: str = runtime.setting("DATA_BUCKET")
    raw_prefix: str = runtime.setting("RAW_PREFIX")
    prepared_prefix: str = runtime.setting("PREPARED_PREFIX")
    specs: Mapping[str, str] = runtime.setting("DATASET_SPECS", "json")  # dataset -> spec URI
    seed: int = runtime.setting("SEED", "integer")
    claim_timeout_seconds: int = runtime.setting("CLAIM_TIMEOUT_SECONDS", "integer")


@dataclass(frozen=True)
class Plan:
    """What to do with one object: ``ignore`` (with the reason) or start ``run_id``."""

    ignore: str | None = None
    dataset: str = ""
    run_id: str = ""
    arguments: Mapping[str, str] | None = None
    record_key: str = ""


def plan(obj: runtime.ObjectCreated, settings: Settings) -> Plan:
    found = obj.in_dataset(bucket=settings.data_bucket, prefix=settings.raw_prefix, datasets=settings.specs)
    if isinstance(found, str):
        return Plan(ignore=found)
    dataset, _ = found

    identity = "\n".join([obj.bucket, obj.key, obj.version, obj.sequencer])
    stamp = datetime.fromisoformat(obj.time.replace("Z", "+00:00")).strftime("%Y%m%dT%H%M%SZ")
    run_id = f"{stamp}-{hashlib.sha256(identity.encode()).hexdigest()[:10]}"
    output = f"{settings.prepared_prefix}{dataset}/{run_id}/"
    return Plan(
        dataset=dataset,
        run_id=run_id,
        record_key=output + RUN_RECORD,
        arguments={
            "--input": f"s3://{obj.bucket}/{settings.raw_prefix}{dataset}/",
            "--spec": settings.specs[dataset],
            "--output": f"s3://{obj.bucket}/{output}",
            "--seed": str(settings.seed),
        },
    )


def start_etl(event: Mapping[str, Any], glue, s3, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    obj = runtime.ObjectCreated.from_event(event)
    step = plan(obj, settings)
    context = {"bucket": obj.bucket, "key": obj.key, "event_id": obj.event_id}
    if step.ignore:
        LOG.info("ignored: %s", step.ignore, extra=context)
        return {"status": "ignored", "reason": step.ignore}
    now = now or datetime.now(UTC)
    context |= {"dataset": step.dataset, "run_id": step.run_id}
    record = {
        "dataset": step.dataset,
        "run_id": step.run_id,
        "source": f"s3://{obj.bucket}/{obj.key}",
        "event_id": obj.event_id,
        "arguments": dict(step.arguments or {}),
        "claimed_at": now.isoformat(),
    }
    try:
        _put(s3, settings, step.record_key, record, IfNoneMatch="*")
    except ClientError as error:
        code = runtime.error_code(error)
        if code == CLAIM_CONFLICT:  # the claim is undecided: S3 asks for the write to be retried
            raise RunStarting(f"the claim of run {step.run_id} met a conflicting write; retrying later") from error
        if code != CLAIM_TAKEN:
            raise
        return _already_claimed(glue, s3, step, settings, now, context)
    return _start(glue, s3, step, settings, record, context)


def _start(glue, s3, step: Plan, settings: Settings, record: dict[str, Any], context: dict[str, str]) -> dict[str, Any]:
    job_run_id = glue.start_job_run(JobName=settings.job_name, Arguments=dict(step.arguments or {}))["JobRunId"]
    record = {**record, "job_run_id": job_run_id}
    _put(s3, settings, step.record_key, record)
    LOG.info("started job run %s", job_run_id, extra=context | {"job_run_id": job_run_id})
    return {"status": "started", "dataset": step.dataset, "run_id": step.run_id, "job_run_id": job_run_id}


def _put(s3, settings: Settings, key: str, record: Mapping[str, Any], **conditions: str) -> None:
    s3.put_object(Bucket=settings.data_bucket, Key=key, Body=json.dumps(record).encode(), **conditions)


def _already_claimed(
    glue, s3, step: Plan, settings: Settings, now: datetime, context: dict[str, str]
) -> dict[str, Any]:
    record = json.loads(s3.get_object(Bucket=settings.data_bucket, Key=step.record_key)["Body"].read())
    job_run_id = record.get("job_run_id") or _find_run(glue, settings.job_name, (step.arguments or {})["--output"])
    if job_run_id:
        if not record.get("job_run_id"):  # the first delivery started the job but did not record it
            _put(s3, settings, step.record_key, record | {"job_run_id": job_run_id})
        LOG.info("duplicate event: run %s already started as %s", step.run_id, job_run_id, extra=context)
        return {"status": "duplicate", "dataset": step.dataset, "run_id": step.run_id, "job_run_id": job_run_id}
    age = (now - datetime.fromisoformat(record["claimed_at"])).total_seconds()
    if age < settings.claim_timeout_seconds:
        raise RunStarting(f"run {step.run_id} was claimed {age:.0f} s ago and is not started yet; retrying later")
    LOG.warning("claim of run %s is %.0f s old and never started; taking it over", step.run_id, age, extra=context)
    return _start(glue, s3, step, settings, record | {"claimed_at": now.isoformat(), "taken_over": True}, context)


def _find_run(glue, job_name: str, output: str, pages: int = 5) -> str | None:
    """A run of the job already writing to ``output`` (recent runs only)."""
    kwargs: dict[str, Any] = {"JobName": job_name, "MaxResults": 200}
    for _ in range(pages):
        response = glue.get_job_runs(**kwargs)
        for run in response.get("JobRuns", []):
            if run.get("Arguments", {}).get("--output") == output:
                return run["Id"]
        if not response.get("NextToken"):
            return None
        kwargs["NextToken"] = response["NextToken"]
    return None


# --- Lambda entry point: clients and settings once per container ---------------------------------

SETTINGS = runtime.read_settings(Settings, "start_etl", os.environ)
GLUE = boto3.client("glue")
S3 = boto3.client("s3")


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return start_etl(event, GLUE, S3, SETTINGS)
