"""start_etl: new data under raw/<dataset>/ starts the Glue job that prepares that dataset, once
the uploads to it have gone quiet.

An EventBridge rule puts S3's "Object Created" events of the data bucket under raw/ on this
function's queue, which holds each one for its delivery delay, the quiet period
(``stacks/etl.py``); Lambda then hands the function batches of them. The job reads every file
under raw/<dataset>/ and writes prepared/<dataset>/<run-id>/.

Several files uploaded at once start one run that includes them all. When an event's quiet
period is over, the function lists raw/<dataset>/ (the snapshot) and
- starts nothing when an object of the snapshot was written after this event's object (its
  LastModified is later than this event's time): that write's own event is still waiting on the
  queue and starts the run once its quiet period is over (``superseded``). A multipart upload's
  LastModified is when it began, never later than its own event, so a large file that finishes
  after a small one never passes for the older of the two;
- otherwise claims and starts the snapshot's run. The run id derives from the objects listed
  (key, ETag, size, LastModified), never from the event, so every event that sees the same
  snapshot (the other files of the upload, a duplicate delivery, a redelivery with a new event
  time) maps to the same run.
The trade-off: every preparation starts a quiet period after the last upload, and an upload
with pauses longer than the quiet period starts a run per burst (each run prepares everything
there is at its start, so the last one includes every file).

Ignored, with the reason logged: other buckets or prefixes, folder markers, empty objects,
objects directly under raw/, datasets without a spec, and anything that is not a batch of S3
Object Created events (``platform_runtime.Unrecognised``).

At-least-once delivery: the run is claimed by writing prepared/<dataset>/<run-id>/_RUN.json with
If-None-Match: * (an atomic create in S3); only the claimant starts the job. A second delivery
finds the claim and does nothing; one that arrives while the first is still starting, or whose
claim S3 could not decide (409), is reported as a failed message, so that the queue hands it
back after its visibility timeout, once the claim records the job run. A claim whose job never
started (its Lambda died in between) is taken over after CLAIM_TIMEOUT_SECONDS. Each message is
answered on its own (a partial batch response): one that fails does not hold back the others.
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
class Listed:
    """An object of raw/<dataset>/ as ListObjectsV2 answers it."""

    key: str
    etag: str
    size: int
    last_modified: datetime

    def record(self) -> dict[str, Any]:
        return {"key": self.key, "etag": self.etag, "size": self.size, "last_modified": self.last_modified.isoformat()}


@dataclass(frozen=True)
class Snapshot:
    """The data objects of raw/<dataset>/ at one moment (folder markers and empty objects left
    out, as the events of such objects are ignored), in key order."""

    dataset: str
    objects: tuple[Listed, ...]

    def get(self, key: str) -> Listed | None:
        return next((o for o in self.objects if o.key == key), None)

    @property
    def run_id(self) -> str:
        """``<newest LastModified>-<digest of the objects>``: the same for the same snapshot."""
        identity = "\n".join(f"{o.key}\t{o.etag}\t{o.size}\t{o.last_modified.isoformat()}" for o in self.objects)
        newest = max(o.last_modified for o in self.objects).astimezone(UTC)
        return f"{newest:%Y%m%dT%H%M%SZ}-{hashlib.sha256(identity.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class Plan:
    """The run of one snapshot: its id, the job's arguments and where its claim is written."""

    dataset: str
    run_id: str
    arguments: Mapping[str, str]
    record_key: str


def snapshot(s3, settings: Settings, dataset: str) -> Snapshot:
    objects = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=settings.data_bucket, Prefix=f"{settings.raw_prefix}{dataset}/"):
        for item in page.get("Contents", []):
            if item["Key"].endswith("/") or item["Size"] == 0:
                continue
            objects.append(Listed(item["Key"], item["ETag"].strip('"'), item["Size"], item["LastModified"]))
    return Snapshot(dataset, tuple(sorted(objects, key=lambda o: o.key)))


def superseded(obj: runtime.ObjectCreated, snap: Snapshot) -> str | None:
    """Why this event's quiet period starts nothing (a later write's event will), or None."""
    mine = snap.get(obj.key)
    if mine is None or mine.etag != obj.etag:
        return f"{obj.key} was overwritten or deleted since this event; the later write's event starts the run"
    later = [o for o in snap.objects if o.key != obj.key and o.last_modified > obj.at]
    if later:
        newest = max(later, key=lambda o: (o.last_modified, o.key))
        return f"{newest.key} arrived after {obj.key}; the run starts when its quiet period is over"
    return None


def plan(snap: Snapshot, settings: Settings) -> Plan:
    run_id = snap.run_id
    output = f"{settings.prepared_prefix}{snap.dataset}/{run_id}/"
    return Plan(
        dataset=snap.dataset,
        run_id=run_id,
        record_key=output + RUN_RECORD,
        arguments={
            "--input": f"s3://{settings.data_bucket}/{settings.raw_prefix}{snap.dataset}/",
            "--spec": settings.specs[snap.dataset],
            "--output": f"s3://{settings.data_bucket}/{output}",
            "--seed": str(settings.seed),
        },
    )


def start_etl(batch: Any, glue, s3, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """A batch from the queue; the answer is Lambda's partial batch response (the messages that
    failed, which the queue hands back after its visibility timeout)."""
    return runtime.answer_queued(
        batch,
        LOG,
        lambda message, context: prepare(message, glue, s3, settings, now or datetime.now(UTC), context),
        retried=(RunStarting,),
    )


def prepare(message: runtime.Queued, glue, s3, settings: Settings, now: datetime, context: dict[str, str]) -> None:
    """One message: the run of its dataset's snapshot started, found started, or the reason not."""
    try:
        obj = runtime.ObjectCreated.from_event(message.event)
    except runtime.Unrecognised as unrecognised:
        runtime.ignored(LOG, str(unrecognised), **context)
        return
    context |= {"bucket": obj.bucket, "key": obj.key, "event_id": obj.event_id}
    found = obj.in_dataset(bucket=settings.data_bucket, prefix=settings.raw_prefix, datasets=settings.specs)
    if isinstance(found, str):
        runtime.ignored(LOG, found, **context)
        return
    dataset, _ = found
    snap = snapshot(s3, settings, dataset)
    reason = superseded(obj, snap)
    if reason:
        _answer("superseded: %s", reason, {"status": "superseded", "dataset": dataset, "reason": reason}, context)
        return
    step = plan(snap, settings)
    context |= {"dataset": step.dataset, "run_id": step.run_id}
    record = {
        "dataset": step.dataset,
        "run_id": step.run_id,
        "source": obj.uri,
        "event_id": obj.event_id,
        "objects": [o.record() for o in snap.objects],
        "arguments": dict(step.arguments),
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
        _already_claimed(glue, s3, step, settings, now, context)
        return
    _start(glue, s3, step, settings, record, context)


def _answer(message: str, detail: str, outcome: dict[str, str], context: dict[str, str]) -> None:
    """What one message came to, logged once (the log record's ``outcome`` field)."""
    LOG.info(message, detail, extra=context | {"outcome": outcome})


def _start(glue, s3, step: Plan, settings: Settings, record: dict[str, Any], context: dict[str, str]) -> None:
    job_run_id = glue.start_job_run(JobName=settings.job_name, Arguments=dict(step.arguments))["JobRunId"]
    _put(s3, settings, step.record_key, {**record, "job_run_id": job_run_id})
    outcome = {"status": "started", "dataset": step.dataset, "run_id": step.run_id, "job_run_id": job_run_id}
    _answer("started: %s", f"run {step.run_id} as job run {job_run_id}", outcome, context)


def _put(s3, settings: Settings, key: str, record: Mapping[str, Any], **conditions: str) -> None:
    s3.put_object(Bucket=settings.data_bucket, Key=key, Body=json.dumps(record).encode(), **conditions)


def _already_claimed(glue, s3, step: Plan, settings: Settings, now: datetime, context: dict[str, str]) -> None:
    record = json.loads(s3.get_object(Bucket=settings.data_bucket, Key=step.record_key)["Body"].read())
    job_run_id = record.get("job_run_id") or _find_run(glue, settings.job_name, step.arguments["--output"])
    if job_run_id:
        if not record.get("job_run_id"):  # the first delivery started the job but did not record it
            _put(s3, settings, step.record_key, record | {"job_run_id": job_run_id})
        outcome = {"status": "duplicate", "dataset": step.dataset, "run_id": step.run_id, "job_run_id": job_run_id}
        _answer("duplicate: %s", f"run {step.run_id} already started as {job_run_id}", outcome, context)
        return
    age = (now - datetime.fromisoformat(record["claimed_at"])).total_seconds()
    if age < settings.claim_timeout_seconds:
        raise RunStarting(f"run {step.run_id} was claimed {age:.0f} s ago and is not started yet; retrying later")
    LOG.warning("claim of run %s is %.0f s old and never started; taking it over", step.run_id, age, extra=context)
    _start(glue, s3, step, settings, record | {"claimed_at": now.isoformat(), "taken_over": True}, context)


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
