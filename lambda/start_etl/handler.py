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

At-least-once delivery: the run is claimed and started through ``platform_runtime.start_run``
(check_drift starts runs the same way), which writes prepared/<dataset>/<run-id>/_RUN.json with
If-None-Match: *; only the claimant starts the job. A second delivery finds the claim and does
nothing; one that arrives while the first is still starting, or whose claim S3 could not decide,
is reported as a failed message (``RunStarting``), so that the queue hands it back after its
visibility timeout, once the claim records the job run. Each message is answered on its own (a
partial batch response): one that fails does not hold back the others.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import platform_runtime as runtime

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """Set by ``stacks/etl.py``; the specs are the stage's datasets, uploaded as assets."""

    preparation: runtime.Preparation = runtime.settings_group(runtime.Preparation)
    specs: Mapping[str, str] = runtime.setting("DATASET_SPECS", "json")  # dataset -> spec URI


def superseded(obj: runtime.ObjectCreated, snap: runtime.Snapshot) -> str | None:
    """Why this event's quiet period starts nothing (a later write's event will), or None."""
    mine = snap.get(obj.key)
    if mine is None or mine.etag != obj.etag:
        return f"{obj.key} was overwritten or deleted since this event; the later write's event starts the run"
    later = [o for o in snap.objects if o.key != obj.key and o.last_modified > obj.at]
    if later:
        newest = max(later, key=lambda o: (o.last_modified, o.key))
        return f"{newest.key} arrived after {obj.key}; the run starts when its quiet period is over"
    return None


def start_etl(batch: Any, glue, s3, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """A batch from the queue; the answer is Lambda's partial batch response (the messages that
    failed, which the queue hands back after its visibility timeout)."""
    return runtime.answer_queued(
        batch,
        LOG,
        lambda message, context: prepare(message, glue, s3, settings, now or datetime.now(UTC), context),
        retried=(runtime.RunStarting,),
    )


def prepare(message: runtime.Queued, glue, s3, settings: Settings, now: datetime, context: dict[str, str]) -> None:
    """One message: the run of its dataset's snapshot started, found started, or the reason not."""
    try:
        obj = runtime.ObjectCreated.from_event(message.event)
    except runtime.Unrecognised as unrecognised:
        runtime.ignored(LOG, str(unrecognised), **context)
        return
    context |= {"bucket": obj.bucket, "key": obj.key, "event_id": obj.event_id}
    preparation = settings.preparation
    found = obj.in_dataset(bucket=preparation.data_bucket, prefix=preparation.raw_prefix, datasets=settings.specs)
    if isinstance(found, str):
        runtime.ignored(LOG, found, **context)
        return
    dataset, _ = found
    snap = runtime.snapshot(s3, preparation, dataset)
    reason = superseded(obj, snap)
    if reason:
        outcome = {"status": "superseded", "dataset": dataset, "reason": reason}
        LOG.info("superseded: %s", reason, extra=context | {"outcome": outcome})
        return
    step = runtime.plan(snap, preparation, settings.specs[dataset])
    context |= {"dataset": step.dataset, "run_id": step.run_id}
    record = {
        "source": obj.uri,
        "event_id": obj.event_id,
        "started_by": "start_etl",
        "objects": [o.record() for o in snap.objects],
    }
    outcome = runtime.start_run(glue, s3, preparation, step, record, now)
    said = "started as" if outcome["status"] == "started" else "already started as"
    detail = f"run {step.run_id} {said} job run {outcome['job_run_id']}"
    LOG.info("%s: %s", outcome["status"], detail, extra=context | {"outcome": outcome})


# --- Lambda entry point: clients and settings once per container ---------------------------------

SETTINGS = runtime.read_settings(Settings, "start_etl", os.environ)
GLUE = boto3.client("glue")
S3 = boto3.client("s3")


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return start_etl(event, GLUE, S3, SETTINGS)
