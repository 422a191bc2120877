"""The EventBridge events AWS services emit, built in AWS's own JSON shapes.

The twin emits these where AWS would (moto emits none for Glue or SageMaker, and its S3 event
differs from S3's) and routes them through the synthesized rules to the functions. Every shape
comes from the AWS documentation page cited beside its builder, never from moto. Where pages
disagree or leave a field open, the comment says so and which shape was chosen.

Plain dicts out, ready for ``json.dumps``; no I/O. Never imports boto3 or aws-cdk-lib.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# S3's reasons for "Object Created": the API that created the object (S3 user guide,
# "EventBridge event message structure", detail field "reason").
S3_CREATE_REASONS = frozenset({"PutObject", "POST Object", "CopyObject", "CompleteMultipartUpload"})
# The states "Glue Job State Change" is sent for, with the severity of the documented examples.
GLUE_JOB_SEVERITY = {"SUCCEEDED": "INFO", "FAILED": "ERROR", "TIMEOUT": "WARN", "STOPPED": "INFO"}
GLUE_CRAWLER_STATES = ("Started", "Succeeded", "Failed")
GLUE_CRAWLER_COUNTS = (
    "tablesCreated",
    "tablesUpdated",
    "tablesDeleted",
    "partitionsCreated",
    "partitionsUpdated",
    "partitionsDeleted",
)
SEQUENCER_DIGITS = 18


# --- the envelope ---------------------------------------------------------------------------------


def envelope(
    *,
    detail_type: str,
    source: str,
    detail: Mapping[str, Any],
    account: str,
    region: str,
    resources: Iterable[str] = (),
    time: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """The fields every event on a bus carries, around ``detail``.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html
    ("AWS service event metadata"): version "0", id a version 4 UUID, account 12 digits, time
    the event's timestamp (ISO 8601 UTC to the second in every example), resources the ARNs
    the emitting service chooses to name. ``event_id`` seeds a deterministic id; without it the
    id is random, as AWS's is. ``detail`` must already be JSON (the builders below convert
    service values first); it is copied, so later changes to it do not leak into the event.
    """
    if not (len(account) == 12 and account.isdigit()):
        raise ValueError(f"account must be a 12-digit AWS account id, not {account!r}")
    try:
        detail_copy = json.loads(json.dumps(detail, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise TypeError(f"the detail of {detail_type!r} is not JSON: {error}") from None
    return {
        "version": "0",
        "id": event_uuid(event_id),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": iso_time(time or datetime.now(UTC)),
        "region": region,
        "resources": list(resources),
        "detail": detail_copy,
    }


def event_uuid(seed: str | None = None) -> str:
    """A version 4 UUID: random, or derived from ``seed`` (same seed, same id)."""
    if seed is None:
        return str(uuid.uuid4())
    # The seed's digest laid out as a version 4 UUID, so a deterministic id still looks like AWS's.
    return str(uuid.UUID(bytes=hashlib.sha256(seed.encode()).digest()[:16], version=4))


def iso_time(moment: datetime) -> str:
    """``2021-11-12T00:00:00Z``: UTC to the second, as the envelope's ``time`` in AWS's examples."""
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_millis(moment: datetime) -> int:
    """Milliseconds since the Unix epoch, as SageMaker's events carry timestamps."""
    return (_utc(moment) - EPOCH) // timedelta(milliseconds=1)


def json_ready(value: Any) -> Any:
    """``value`` with what JSON cannot hold converted: datetimes to epoch milliseconds (SageMaker's
    event convention), bytes to base64 (as AWS's JSON protocols send blobs), Decimal to int or
    float, tuples and sets to lists. Anything else unknown raises TypeError."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, datetime):
        return epoch_millis(value)
    if isinstance(value, date):
        return epoch_millis(datetime(value.year, value.month, value.day, tzinfo=UTC))
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, set | frozenset):
        return [json_ready(item) for item in sorted(value, key=repr)]  # sets have no order; fix one
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    raise TypeError(f"cannot put a {type(value).__name__} into an event: {value!r}")


def _utc(moment: datetime) -> datetime:
    # A naive datetime is taken as UTC (botocore always returns aware ones).
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


# --- Amazon S3 ------------------------------------------------------------------------------------


def sequencer(n: int) -> str:
    """The S3 ``sequencer`` of the ``n``-th write: 18 upper-case hex digits, increasing with ``n``.

    S3 documents the sequencer as a hex string that orders the events of one key: the greater
    value is the later event, and sequencers of different lengths compare after left-padding
    with zeros. These are fixed-width and one case, so plain string comparison orders them too.
    Width and case follow real events (``0064D3901D00059242``); the user guide's example
    (``617f08299329d189``) is shorter and lower-case, which the padding rule makes equivalent.
    """
    if not 0 <= n < 16**SEQUENCER_DIGITS:
        raise ValueError(f"sequencer number {n} is outside 0..16**{SEQUENCER_DIGITS}-1")
    return f"{n:0{SEQUENCER_DIGITS}X}"


def s3_object_created(
    *,
    bucket: str,
    key: str,
    size: int,
    etag: str,
    sequencer: str,
    account: str,
    region: str,
    version_id: str | None = None,
    requester: str | None = None,
    source_ip: str | None = "127.0.0.1",
    reason: str = "PutObject",
    request_id: str | None = None,
    time: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """S3's "Object Created" event, as EventBridge delivers it with EventBridge notifications on.

    https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html ("Object created" and
    "Event message detail field"): ``resources`` holds the bucket ARN; the object's ``etag`` is
    lower-case and unquoted (moto sends ``eTag``), ``size`` a number; ``reason`` is the API that
    created the object (moto sends ``ObjectCreated``); ``requester`` the account id or service
    principal; ``source-ip-address`` only for events caused by an S3 request (None leaves it out).

    Left open by the page, with the choice made here:
    - ``version-id`` appears only for versioned buckets (the example's bucket is versioned);
      ``version_id=None`` leaves it out.
    - The page does not say whether keys are URL-encoded (the classic S3 notifications to SQS,
      SNS and Lambda encode them); the key is sent as stored, as start_etl expects.
    - The latest revision of the page adds ``"event-version": "1.0"`` to the detail; earlier
      revisions and tests/events/s3_object_created.json do not have it, so it is left out.
    """
    if reason not in S3_CREATE_REASONS:
        raise ValueError(f"reason must be one of {sorted(S3_CREATE_REASONS)}, not {reason!r}")
    if size < 0:
        raise ValueError(f"size must not be negative: {size}")
    int(sequencer, 16)  # a hex string, or ValueError
    obj: dict[str, Any] = {"key": key, "size": int(size), "etag": etag.strip('"')}  # S3's API quotes ETags
    if version_id is not None:
        obj["version-id"] = version_id
    obj["sequencer"] = sequencer
    identity = f"{bucket}\n{key}\n{sequencer}".encode()
    detail: dict[str, Any] = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": obj,
        # S3 request ids are 16 upper-case characters; a made-up one derives from the write.
        "request-id": request_id or hashlib.sha256(identity).hexdigest()[:16].upper(),
        "requester": requester or account,
    }
    if source_ip is not None:
        detail["source-ip-address"] = source_ip
    detail["reason"] = reason
    return envelope(
        detail_type="Object Created",
        source="aws.s3",
        detail=detail,
        account=account,
        region=region,
        resources=[f"arn:{_partition(region)}:s3:::{bucket}"],
        time=time,
        event_id=event_id,
    )


# --- Amazon SQS to AWS Lambda ---------------------------------------------------------------------

# The attributes of a standard queue's message in Lambda's event, in the documented example's order.
SQS_RECORD_ATTRIBUTES = ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")


def sqs_batch(messages: Iterable[Mapping[str, Any]], *, queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's event source mapping hands a function: one record per message that
    ReceiveMessage answered (with ``AttributeNames=["All"]``).

    https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html ("Example standard queue message
    event", tests/events/sqs_receive_message.json): ``messageId``, ``receiptHandle``, ``body``,
    ``attributes`` (the four of a standard queue, as strings), ``messageAttributes`` (lower camel
    case: ``dataType``, ``stringValue``), ``md5OfBody``, ``eventSource`` "aws:sqs",
    ``eventSourceARN`` and ``awsRegion``. The API's upper camel case becomes the event's lower.
    """
    records = []
    for message in messages:
        attributes = message.get("Attributes", {})
        user = {
            name: {
                "dataType": value["DataType"],
                **({"stringValue": value["StringValue"]} if "StringValue" in value else {}),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        }
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {name: str(attributes[name]) for name in SQS_RECORD_ATTRIBUTES if name in attributes},
                "messageAttributes": user,
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


# --- AWS Glue -------------------------------------------------------------------------------------


def glue_job_state_change(
    *,
    job_name: str,
    job_run_id: str,
    state: str,
    message: str,
    account: str,
    region: str,
    time: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """Glue's "Glue Job State Change" event for a finished job run.

    https://docs.aws.amazon.com/glue/latest/dg/automating-awsglue-with-cloudwatch-events.html:
    sent for SUCCEEDED, FAILED, TIMEOUT and STOPPED only (RUNNING, STARTING and STOPPING come as
    "Glue Job Run Status", and only past a delay threshold). The examples (EventBridge user
    guide, "AWS Glue events") carry ``resources: []`` and the severities SUCCEEDED INFO,
    FAILED ERROR, TIMEOUT WARN, STOPPED INFO; ``message`` is "Job run succeeded", "Job run
    timed out", "Job run stopped", or the failure. Other states (ERROR, WAITING) are refused:
    the page names no event for them, so the twin must decide what to emit.
    """
    if state not in GLUE_JOB_SEVERITY:
        raise ValueError(f"Glue sends Glue Job State Change for {sorted(GLUE_JOB_SEVERITY)} only, not {state!r}")
    detail = {
        "jobName": job_name,
        "severity": GLUE_JOB_SEVERITY[state],
        "state": state,
        "jobRunId": job_run_id,
        "message": message,
    }
    return _glue("Glue Job State Change", detail, account, region, time, event_id)


def glue_crawler_state_change(
    *,
    crawler_name: str,
    state: str,
    account: str,
    region: str,
    start_time: datetime | None = None,
    completion_time: datetime | None = None,
    error_message: str | None = None,
    counts: Mapping[str, int] | None = None,
    time: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """Glue's "Glue Crawler State Change" event (Started, Succeeded, Failed).

    Same Glue page as above; the detail of each state follows its example in the EventBridge
    user guide ("AWS Glue events"): Started has ``startTime``; Succeeded has ``completionDate``,
    ``runningTime (sec)`` and the table and partition counts, all of them strings, and
    ``warningMessage`` "N/A"; Failed has ``errorMessage`` (the platform's crawler-failure rule
    reads it). Times are ISO strings here, unlike SageMaker's. ``counts`` maps the count names
    (``tablesCreated``, ...) to numbers; missing ones are 0.
    """
    if state not in GLUE_CRAWLER_STATES:
        raise ValueError(f"crawler state must be one of {GLUE_CRAWLER_STATES}, not {state!r}")
    log_link = (
        f"https://console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logEventViewer:group=/aws-glue/crawlers;stream={crawler_name}"
    )
    detail: dict[str, Any] = {"accountId": account, "crawlerName": crawler_name}
    if state == "Started":
        if start_time is None:
            raise ValueError("a Started event needs start_time")
        detail |= {"startTime": iso_time(start_time)}
    elif state == "Succeeded":
        if start_time is None or completion_time is None:
            raise ValueError("a Succeeded event needs start_time and completion_time")
        unknown = set(counts or {}) - set(GLUE_CRAWLER_COUNTS)
        if unknown:
            raise ValueError(f"unknown crawler counts {sorted(unknown)}; known: {GLUE_CRAWLER_COUNTS}")
        running = int((_utc(completion_time) - _utc(start_time)).total_seconds())
        detail |= {name: str((counts or {}).get(name, 0)) for name in GLUE_CRAWLER_COUNTS}
        detail |= {
            "warningMessage": "N/A",
            "runningTime (sec)": str(running),
            "completionDate": iso_time(completion_time),
            "cloudWatchLogLink": log_link,
        }
    else:
        detail |= {"errorMessage": error_message or "Internal Service Exception", "cloudWatchLogLink": log_link}
    detail |= {"state": state, "message": f"Crawler {state}"}
    return _glue("Glue Crawler State Change", detail, account, region, time, event_id)


def _glue(
    detail_type: str, detail: dict[str, Any], account: str, region: str, time: datetime | None, event_id: str | None
) -> dict[str, Any]:
    """A Glue event: ``source`` aws.glue, and no ``resources`` (as in Glue's examples)."""
    return envelope(
        detail_type=detail_type,
        source="aws.glue",
        detail=detail,
        account=account,
        region=region,
        time=time,
        event_id=event_id,
    )


# --- Amazon SageMaker -----------------------------------------------------------------------------
#
# https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html
#
# The detail is the resource's Describe* response (without ResponseMetadata) plus ``Tags``, and
# ``resources`` holds the resource's ARN. The page's examples disagree on two points, settled so:
#
# - Timestamps. The training and tuning examples carry epoch milliseconds (quoted:
#   "1583831889050"), the endpoint examples epoch milliseconds as numbers, the transform and
#   model package examples ISO strings. EventBridge's schema registry types them as numbers
#   (aws.sagemaker@SageMakerTrainingJobStateChange, ...@SageMakerTransformJobStateChange), and
#   events captured from SageMaker show integers (CreationTime 1622695255225). Here every
#   SageMaker timestamp, nested ones included, is epoch milliseconds as a JSON integer; a
#   consumer that parses these times should accept numbers and ISO strings alike.
# - Tags. The job examples carry ``"Tags": {}``, a name-to-value object (captured events agree;
#   the schema registry has a Key/Value list instead). The model package example has no Tags
#   at all, so that event carries them only when the caller passes ``tags``. Handlers should
#   read tags with ListTags rather than from the event, as register_model does.
#
# SageMaker "may send multiple events to EventBridge for each state change" (same page), so
# consumers must be idempotent; the twin can emit a builder's output twice to check that.


@dataclass(frozen=True)
class SageMakerStateChange:
    """One kind of SageMaker state-change event: called with a Describe* response, it returns the
    event (the page above, under the section each instance names)."""

    detail_type: str
    arn_key: str  # the description's key of the resource's ARN, which becomes ``resources``
    required: tuple[str, ...]  # the other keys a consumer reads to identify the resource
    tags_always: bool = True  # Tags in every event ({} without tags), or only when given

    def __call__(
        self,
        description: Mapping[str, Any],
        *,
        account: str,
        region: str,
        tags: Mapping[str, str] | None = None,
        time: datetime | None = None,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        missing = [key for key in (self.arn_key, *self.required) if key not in description]
        if missing:
            raise ValueError(f"{self.detail_type}: the description lacks {', '.join(missing)}")
        # Tags go last, where the examples have them; Describe* responses carry none of their own.
        detail = {key: value for key, value in description.items() if key not in ("ResponseMetadata", "Tags")}
        if tags is not None or self.tags_always:
            detail["Tags"] = dict(tags or {})
        # The envelope's time is when the state changed: the latest of the resource's own times
        # (LastModifiedTime, or the end time where, as for transform jobs, there is none).
        moments = [value for value in description.values() if isinstance(value, datetime)]
        when = time or (max(moments, key=_utc) if moments else None)
        return envelope(
            detail_type=self.detail_type,
            source="aws.sagemaker",
            detail=json_ready(detail),
            account=account,
            region=region,
            resources=[description[self.arn_key]],
            time=when,
            event_id=event_id,
        )


# "Training job state change"; FailureReason is there when the job Failed.
sagemaker_training_job_state_change = SageMakerStateChange(
    "SageMaker Training Job State Change", "TrainingJobArn", ("TrainingJobName", "TrainingJobStatus")
)
# "Hyperparameter tuning job state change". The example's resource ARN (``...:tuningJob/x``) is a
# placeholder; the real ARN (``...:hyper-parameter-tuning-job/...``) from the description is used.
sagemaker_tuning_job_state_change = SageMakerStateChange(
    "SageMaker HyperParameter Tuning Job State Change",
    "HyperParameterTuningJobArn",
    ("HyperParameterTuningJobName", "HyperParameterTuningJobStatus"),
)
# "Transform job state change"; FailureReason is there when the job Failed.
sagemaker_transform_job_state_change = SageMakerStateChange(
    "SageMaker Transform Job State Change", "TransformJobArn", ("TransformJobName", "TransformJobStatus")
)
# "Model package state change". The example has ModelPackageGroupName, ModelPackageVersion and
# ModelApprovalStatus (the deploy rule matches on two of them) but no Tags: Tags appear only when
# ``tags`` is given. (The example also repeats ``source`` as a list inside the envelope, evidently
# a typo; it is not reproduced.)
sagemaker_model_package_state_change = SageMakerStateChange(
    "SageMaker Model Package State Change", "ModelPackageArn", ("ModelPackageStatus",), tags_always=False
)

# "Processing job state change" (the sample is a failed job): the detail is DescribeProcessingJob's
# view, without Tags.
sagemaker_processing_job_state_change = SageMakerStateChange(
    "SageMaker Processing Job State Change",
    "ProcessingJobArn",
    ("ProcessingJobName", "ProcessingJobStatus"),
    tags_always=False,
)


# --- EventBridge's own --------------------------------------------------------------------------------


def scheduled_event(rule_arn: str, *, account: str, region: str, time: datetime | None = None) -> dict[str, Any]:
    """What a scheduled rule sends its targets: source ``aws.events``, detail-type
    ``Scheduled Event``, the rule's ARN as the one resource, an empty detail.
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-run-lambda-schedule.html"""
    return envelope(
        detail_type="Scheduled Event",
        source="aws.events",
        detail={},
        account=account,
        region=region,
        resources=[rule_arn],
        time=time,
    )
