"""The functions' runtime library: what every Lambda function of the platform shares.

Plain Python and boto3 (no aws-cdk-lib), shipped in every function's asset beside its
``handler.py``, as ``dataset_spec.py`` is. The infrastructure code imports it too, for the names
both sides must spell alike (the tag keys).

- the events the functions act on, typed: :class:`ObjectCreated` (S3, with the one rule for
  which objects under a ``<prefix><dataset>/`` layout a function acts on), :class:`JobStateChange`
  and :class:`ModelPackageStateChange` (SageMaker), and :func:`queued_events` (an SQS batch of
  EventBridge events). An event a function does not understand (another source or detail-type,
  a field missing or of another type) raises :class:`Unrecognised` with the reason, which the
  function logs and answers with :func:`ignored`: never a bare KeyError or TypeError;
- :func:`error_code` and the SageMaker code sets: decisions are made on AWS's error codes,
  never on their wording;
- :data:`STAGE_TAG` and friends, :func:`job_tags`: the platform's tag keys;
- :func:`read_text`: an object by its ``s3://`` URI;
- :func:`latest_approved_package`: the newest Approved package of a model package group;
- :func:`setting` and :func:`read_settings`: a function's settings, declared once as a dataclass
  and read from its environment; a missing or malformed variable fails at import with the
  variable's name. :class:`JobPlacement` is the part every job-starting function shares.

Logging: handlers log through ``logging.getLogger(__name__)`` and set no level. Lambda applies
the function's configured application log level (``LoggingConfig.ApplicationLogLevel``, JSON
format) to the runtime's logger: https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from botocore.exceptions import ClientError

LOGGER = logging.getLogger(__name__)

# --- tags ------------------------------------------------------------------------------------------

TAG_PREFIX = "ml-platform:"
STAGE_TAG = TAG_PREFIX + "stage"  # every resource of a stage; IAM conditions on SageMaker creates read it
DATASET_TAG = TAG_PREFIX + "dataset"  # jobs and models of one dataset
RUN_TAG = TAG_PREFIX + "run"  # jobs of one prepared run
WORKSPACE_TAG = TAG_PREFIX + "workspace"  # the notebook instance
# The training job a platform evaluation step (a scoring transform job, an evaluation job) is for,
# or the AutoML job, as AUTOML_JOB + its name.
EVALUATES_TAG = TAG_PREFIX + "evaluates"
AUTOML_JOB = "automl-job/"


def job_tags(stage: str, dataset: str, run_id: str | None = None, evaluates: str | None = None) -> list[dict[str, str]]:
    """The tags of a job the platform starts, in SageMaker's request shape."""
    tags = (
        {STAGE_TAG: stage, DATASET_TAG: dataset}
        | ({RUN_TAG: run_id} if run_id else {})
        | ({EVALUATES_TAG: evaluates} if evaluates else {})
    )
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def tag_map(tags: list[Mapping[str, str]]) -> dict[str, str]:
    """SageMaker's ``[{"Key": ..., "Value": ...}]`` as a mapping."""
    return {tag["Key"]: tag["Value"] for tag in tags}


# --- AWS error codes -------------------------------------------------------------------------------
# SageMaker's codes the functions decide by:
# - Describe* of a name SageMaker does not have: ResourceNotFound as documented (tuning and
#   transform jobs), or the common ValidationException, which DescribeTrainingJob answers
#   instead. The platform's names are valid by construction, so a ValidationException can only
#   mean "not found" here; if it meant more, the create that follows is refused and that refusal
#   is raised.
#   https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTrainingJob.html#API_DescribeTrainingJob_Errors
#   https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeHyperParameterTuningJob.html#API_DescribeHyperParameterTuningJob_Errors
#   https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTransformJob.html#API_DescribeTransformJob_Errors
# - Create* of a name in use: ResourceInUse as documented, or the common ValidationException
#   (CreateModel documents no such error). Either counts as "already started" only when the
#   resource of that name, described again, is the one the function meant.
#   https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html#API_CreateTrainingJob_Errors
#   https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModel.html#API_CreateModel_Errors
#   https://docs.aws.amazon.com/sagemaker/latest/APIReference/CommonErrors.html
NOT_FOUND = frozenset({"ResourceNotFound", "ValidationException"})
NAME_TAKEN = frozenset({"ResourceInUse", "ValidationException"})

T = TypeVar("T")


def error_code(error: ClientError) -> str:
    """The error code AWS answered (botocore's ``Error.Code``), the only thing decided by."""
    return str(error.response.get("Error", {}).get("Code", ""))


def described(describe: Callable[[], T]) -> T | None:
    """What ``describe`` returns, or None when SageMaker has nothing of that name."""
    try:
        return describe()
    except ClientError as error:
        if error_code(error) in NOT_FOUND:
            return None
        raise


# --- S3 ----------------------------------------------------------------------------------------------


def split_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of an ``s3://bucket/key`` URI."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise ValueError(f"an s3:// URI names a bucket and a key: {uri!r}")
    return bucket, key


def read_json(s3: Any, bucket: str, key: str) -> Any:
    """The JSON object at ``key``, or None when there is none (NoSuchKey: the caller may list
    the prefix, see :data:`NO_SUCH_KEY`)."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error_code(error) == NO_SUCH_KEY:
            return None
        raise
    return json.loads(body)


def read_text(s3: Any, uri: str) -> str:
    """The object at ``uri`` as UTF-8 text."""
    bucket, key = split_uri(uri)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")


# --- events ------------------------------------------------------------------------------------------


class Unrecognised(ValueError):
    """An event a function does not act on: not of the source and detail-type it expects, or
    without a field it reads, or with a field of another type. The message is the reason."""


def fitted_name(name: str, limit: int = 63) -> str:
    """A valid SageMaker name (letters, digits, hyphens) of at most ``limit`` characters, the
    same for the same ``name``: a longer one keeps its start and ends in a digest of the whole."""
    name = re.sub(r"[^A-Za-z0-9-]", "-", name).strip("-")
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[: limit - 11].rstrip('-')}-{digest}"


def create_model(
    sagemaker: Any,
    log: logging.Logger,
    name: str,
    containers: list[dict[str, Any]],
    placement: JobPlacement,
    tags: list[dict[str, str]],
) -> ClientError | None:
    """Creates a platform model, isolated in the VPC as the execution role. SageMaker's refusal
    with a code a taken name gets is returned, not raised: the model is then most likely a
    previous delivery's (its name derives from the event), and the job that needs it tells."""
    try:
        sagemaker.create_model(
            ModelName=name,
            Containers=containers,
            ExecutionRoleArn=placement.role_arn,
            VpcConfig=placement.vpc_config,
            EnableNetworkIsolation=True,
            Tags=tags,  # the functions may create only models tagged with their stage
        )
    except ClientError as error:
        if error_code(error) not in NAME_TAKEN:
            raise
        log.info("CreateModel refused %s (%s); the job will need it", name, error_code(error))
        return error
    return None


def started(log: logging.Logger, kind: str, name: str, describe: Callable[[], Any]) -> dict[str, str] | None:
    """The answer to an event whose job (``kind`` ``name``) already exists, or None when none does."""
    if described(describe) is None:
        return None
    log.info("duplicate event: %s %s exists", kind, name)
    return {"status": "duplicate", "job": name}


def created_once(
    log: logging.Logger, kind: str, name: str, create: Callable[[], Any], describe: Callable[[], Any]
) -> dict[str, str] | None:
    """``create()``; a refusal with a code a taken name gets, where ``kind`` ``name`` now exists,
    is another delivery's start of it: the duplicate's answer. None when this call created it."""
    try:
        create()
    except ClientError as error:
        if error_code(error) not in NAME_TAKEN or described(describe) is None:
            raise
        log.info("duplicate event: %s %s was started by another delivery", kind, name)
        return {"status": "duplicate", "job": name}
    return None


# --- training requests -----------------------------------------------------------------------------

# A script-mode trainer prints "metric <channel>:<name>=<value>" (training_jobs/train.py).
METRIC_REGEX = r"metric {channel}:{name}=([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def channel(name: str, uri: str, content_type: str = "text/csv", shard: bool = False) -> dict[str, Any]:
    """A training job's input channel of S3 objects under ``uri`` (a folder or one object)."""
    return {
        "ChannelName": name,
        "ContentType": content_type,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "ShardedByS3Key" if shard else "FullyReplicated",
            }
        },
    }


def csv_transform(
    manifest: str, output: str, accept: str, placement: JobPlacement, instance_type: str, instance_count: int
) -> dict[str, Any]:
    """CreateTransformJob's request for the CSV lines of the files a manifest names, batched,
    each answer on its own line, in the platform's key (the job's name, model, data processing
    and tags aside)."""
    return {
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": manifest}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": output,
            "Accept": accept,
            "AssembleWith": "Line",
            "KmsKeyId": placement.kms_key_arn,
        },
        "TransformResources": {
            "InstanceType": instance_type,
            "InstanceCount": instance_count,
            "VolumeKmsKeyId": placement.kms_key_arn,
        },
    }


def script_mode(source_uri: str, program: str) -> dict[str, str]:
    """The hyperparameters that make SageMaker's framework container run ``program`` from the
    source tarball, which comes in as the ``code`` channel (network isolation: nothing is fetched)."""
    return {
        "sagemaker_program": program,
        "sagemaker_submit_directory": "/opt/ml/input/data/code/" + source_uri.rsplit("/", 1)[-1],
    }


def metric_definitions(metrics: tuple[str, ...]) -> list[dict[str, str]]:
    """What SageMaker parses from a script-mode trainer's log: each metric on validation and test."""
    return [
        {"Name": f"{c}:{m}", "Regex": METRIC_REGEX.format(channel=c, name=m)}
        for c in ("validation", "test")
        for m in metrics
    ]


def profiler_output(artifacts_bucket: str, dataset: str, job: str) -> str:
    """Where a training job's ProfilerReport rule writes (start_training sets it; register_model
    names it in the model package): beside the job's model, as SageMaker's own default places it."""
    return f"s3://{artifacts_bucket}/training/{dataset}/{job}/rule-output"


RUNBOOK = "docs/runbook.md"  # what each alarm and notification means and what to do, by section


def runbook(anchor: str) -> str:
    """`` Runbook: docs/runbook.md#<anchor>``, to end an alarm's description or an operators' message."""
    return f" Runbook: {RUNBOOK}#{anchor}"


# The platform's own CloudWatch metrics (the stage's dashboard and alarms read them), per stage and
# dataset. A function writes them into its log in CloudWatch's embedded metric format: no API call,
# no VPC endpoint, CloudWatch Logs extracts them.
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
METRICS_NAMESPACE = "MLPlatform"
METRIC_DIMENSIONS = ("Stage", "Dataset")
DRIFT_METRIC = "DriftedFeatures"  # check_drift: the features with a violation in a monitoring run
QUALITY_METRIC = "LiveModelQuality"  # check_drift: the live model's objective metric on labelled traffic


def metric_record(stage: str, dataset: str, values: Mapping[str, tuple[float, str]], now: datetime) -> str:
    """One embedded-metric-format log line: ``values`` maps a metric name to its value and unit
    (a CloudWatch unit: ``Count``, ``Seconds``, ...), all under the stage's and dataset's dimensions."""
    return json.dumps(
        {
            "_aws": {
                "Timestamp": int(now.timestamp() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": METRICS_NAMESPACE,
                        "Dimensions": [list(METRIC_DIMENSIONS)],
                        "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
                    }
                ],
            },
            "Stage": stage,
            "Dataset": dataset,
            **{name: value for name, (value, _) in values.items()},
        }
    )


def put_metrics(stage: str, dataset: str, values: Mapping[str, tuple[float, str]], now: datetime) -> None:
    """Writes the metrics to the function's log as one line of their own (standard output, so that
    Lambda's JSON log format leaves the line as it is)."""
    print(metric_record(stage, dataset, values, now), flush=True)


def ignored(log: logging.Logger, reason: str, **context: Any) -> dict[str, str]:
    """The answer to an event a function does not act on, logged with the reason (the answer
    is the log record's ``outcome`` field too)."""
    outcome = {"status": "ignored", "reason": reason}
    log.info("ignored: %s", reason, extra=context | {"outcome": outcome})
    return outcome


_KINDS: dict[type, str] = {str: "a string", int: "a whole number", list: "a list"}


def read(event: Any, path: str, kind: type, *, optional: bool = False) -> Any:
    """The value at the dotted ``path`` of ``event`` (``detail.object.key``), which must be of
    ``kind`` (str, int, list or Mapping); None for a missing ``optional`` field. Anything else
    raises :class:`Unrecognised` naming the path. ``True`` is not a whole number here, although
    Python's bool is an int."""
    value: Any = event
    walked: list[str] = []
    for part in path.split("."):
        if not isinstance(value, Mapping):
            where = ".".join(walked) or "the event"
            raise Unrecognised(f"{where} must be an object, not {_described(value)}")
        if part not in value:
            if optional:
                return None
            raise Unrecognised(f"{'.'.join([*walked, part])} is missing")
        value = value[part]
        walked.append(part)
    wrong_bool = isinstance(value, bool) and kind is not bool
    if wrong_bool or not isinstance(value, kind):
        if value is None and optional:
            return None
        raise Unrecognised(f"{path} must be {_KINDS.get(kind, 'an object')}, not {_described(value)}")
    return value


def _described(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def envelope(event: Any, source: str, detail_types: Collection[str], what: str) -> tuple[str, Mapping[str, Any]]:
    """(detail-type, detail) of an EventBridge event from ``source`` of one of ``detail_types``;
    otherwise :class:`Unrecognised`, ``what`` naming the events expected.
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html"""
    if not isinstance(event, Mapping):
        raise Unrecognised(f"not an EventBridge event: {_described(event)}")
    if event.get("source") != source or event.get("detail-type") not in detail_types:
        raise Unrecognised(f"not {what}: source {event.get('source')!r}, detail-type {event.get('detail-type')!r}")
    return event["detail-type"], read(event, "detail", Mapping)


def event_time(event: Mapping[str, Any]) -> datetime:
    """When the event happened (its ``time``), as an aware datetime."""
    text = read(event, "time", str)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Unrecognised(f"time must be an ISO 8601 time, not {text!r}") from None
    if moment.tzinfo is None:
        raise Unrecognised(f"time must be an ISO 8601 time with its zone, not {text!r}")
    return moment


@dataclass(frozen=True)
class ObjectCreated:
    """An EventBridge "Object Created" event from S3, as the platform's functions read it.
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html"""

    event_id: str
    time: str
    bucket: str
    key: str  # EventBridge delivers S3 keys as they are, not URL-encoded
    size: int
    etag: str
    version: str  # the version id, or the ETag in an unversioned bucket: the object's identity
    sequencer: str
    at: datetime  # ``time`` parsed: when S3 finished writing the object

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @classmethod
    def from_event(cls, event: Any) -> ObjectCreated:
        """The event typed; :class:`Unrecognised` for any other event, and for an Object Created
        event without a field the page documents for it (``version-id`` appears only for a
        versioned bucket)."""
        envelope(event, "aws.s3", ("Object Created",), "an S3 'Object Created' event")
        etag = read(event, "detail.object.etag", str)
        return cls(
            event_id=read(event, "id", str),
            time=read(event, "time", str),
            bucket=read(event, "detail.bucket.name", str),
            key=read(event, "detail.object.key", str),
            size=read(event, "detail.object.size", int),
            etag=etag,
            version=read(event, "detail.object.version-id", str, optional=True) or etag,
            sequencer=read(event, "detail.object.sequencer", str),
            at=event_time(event),
        )

    def in_dataset(
        self, *, bucket: str, prefix: str, datasets: Collection[str], allow_empty: bool = False
    ) -> tuple[str, str] | str:
        """(dataset, the rest of the key) for an object under ``<prefix><dataset>/`` of ``bucket``
        whose dataset is one of ``datasets``; otherwise the reason to ignore it. Folder markers
        are ignored, and empty objects unless ``allow_empty`` (a ``_SUCCESS`` marker is empty)."""
        if self.bucket != bucket:
            return f"bucket {self.bucket} is not the data bucket"
        if not self.key.startswith(prefix):
            return f"{self.key} is not under {prefix}"
        if self.key.endswith("/"):
            return f"{self.key} is a folder marker"
        if self.size == 0 and not allow_empty:
            return f"{self.key} is empty"
        dataset, _, rest = self.key.removeprefix(prefix).partition("/")
        if not rest:
            return f"{self.key} is directly under {prefix}; expected {prefix}<dataset>/<file>"
        if dataset not in datasets:
            return f"dataset {dataset!r} has no spec (datasets with specs: {', '.join(sorted(datasets)) or 'none'})"
        return dataset, rest


# SageMaker's job state changes register_model acts on, and the states in which a job has ended.
# https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html
JOB_EVENTS = {
    "SageMaker Training Job State Change": ("training", "TrainingJobName", "TrainingJobStatus"),
    "SageMaker Transform Job State Change": ("transform", "TransformJobName", "TransformJobStatus"),
    "SageMaker HyperParameter Tuning Job State Change": (
        "tuning",
        "HyperParameterTuningJobName",
        "HyperParameterTuningJobStatus",
    ),
}
ENDED = ("Completed", "Failed", "Stopped")  # botocore's TrainingJobStatus and tuning states that end a job


@dataclass(frozen=True)
class JobStateChange:
    """A SageMaker training, hyperparameter tuning or transform job's state change."""

    kind: Literal["training", "tuning", "transform"]
    name: str
    status: str

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @classmethod
    def from_event(cls, event: Any) -> JobStateChange:
        detail_type, _ = envelope(
            event, "aws.sagemaker", JOB_EVENTS, "a SageMaker training, tuning or transform job state change"
        )
        kind, name, status = JOB_EVENTS[detail_type]
        return cls(
            kind=kind,  # type: ignore[arg-type]
            name=read(event, f"detail.{name}", str),
            status=read(event, f"detail.{status}", str),
        )


@dataclass(frozen=True)
class ModelPackageStateChange:
    """A SageMaker model package's state change (the registry's approvals among them)."""

    arn: str
    group: str
    approval: str | None  # ModelApprovalStatus
    status: str | None  # ModelPackageStatus: Completed once the package can be used

    @classmethod
    def from_event(cls, event: Any) -> ModelPackageStateChange:
        envelope(
            event,
            "aws.sagemaker",
            ("SageMaker Model Package State Change",),
            "a 'SageMaker Model Package State Change' event",
        )
        return cls(
            arn=read(event, "detail.ModelPackageArn", str),
            group=read(event, "detail.ModelPackageGroupName", str),
            approval=read(event, "detail.ModelApprovalStatus", str, optional=True),
            status=read(event, "detail.ModelPackageStatus", str, optional=True),
        )


@dataclass(frozen=True)
class Queued:
    """One message of a batch Lambda received from an SQS queue: its id (what a partial batch
    response names) and the EventBridge event its body carries, or why the body is none."""

    message_id: str
    event: Any = None
    unreadable: str = ""


def queued_events(batch: Any) -> list[Queued]:
    """The messages of the batch Lambda hands a function from an SQS queue an EventBridge rule
    fills (each body the event's JSON).
    https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
    :class:`Unrecognised` when ``batch`` is not such a batch; a message whose body is not JSON
    comes back with the reason instead of an event."""
    if not isinstance(batch, Mapping) or not isinstance(batch.get("Records"), list):
        raise Unrecognised(f"not a batch of queued events (Records of SQS messages): {_described(batch)}")
    messages = []
    for number, record in enumerate(batch["Records"]):
        where = f"Records[{number}]"
        if not isinstance(record, Mapping) or record.get("eventSource") != "aws:sqs":
            raise Unrecognised(f"not a batch of queued events: {where} is not an SQS message")
        message_id, body = read(record, "messageId", str), read(record, "body", str)
        try:
            messages.append(Queued(message_id, event=json.loads(body)))
        except json.JSONDecodeError:
            messages.append(Queued(message_id, unreadable=f"the message body is not JSON: {body[:40]!r}"))
    return messages


def answer_queued(
    batch: Any,
    log: logging.Logger,
    act: Callable[[Queued, dict[str, Any]], Any],
    retried: tuple[type[Exception], ...] = (),
) -> dict[str, list[dict[str, str]]]:
    """Lambda's partial batch response to a batch from an SQS queue: ``act`` on each message's
    event (with a logging context naming the message); a message whose ``act`` raises is named,
    so that the queue hands it back after its visibility timeout (an exception of ``retried`` is
    an expected wait, logged as such). What is not such a batch, or a body that is not JSON, is
    ignored with the reason.
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html"""
    try:
        messages = queued_events(batch)
    except Unrecognised as unrecognised:
        ignored(log, str(unrecognised))
        return {"batchItemFailures": []}
    failed = []
    for message in messages:
        context: dict[str, Any] = {"message_id": message.message_id}
        if message.unreadable:
            ignored(log, message.unreadable, **context)
            continue
        try:
            act(message, context)
        except retried as error:
            log.warning("retrying later: %s", error, extra=context | {"outcome": {"status": "retrying"}})
            failed.append(message.message_id)
        except Exception as error:  # reported, so that this message alone comes back
            log.exception("failed: %s", error, extra=context | {"outcome": {"status": "failed"}})
            failed.append(message.message_id)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


# --- Model Monitor ---------------------------------------------------------------------------------
# Where Model Monitor's analyzer reads and writes in its container: the SageMaker Python SDK's
# DefaultModelMonitor uses these paths for baselining and monitoring alike.
MONITOR_BASELINE_INPUT = "/opt/ml/processing/input/baseline_dataset_input"
MONITOR_ENDPOINT_INPUT = "/opt/ml/processing/input/endpoint"
MONITOR_OUTPUT = "/opt/ml/processing/output"
MONITOR_OUTPUT_NAME = "monitoring_output"
# A model's baseline job is <endpoint>-baseline-<package version>: the hosting stack's rules and
# deploy_model's rights match the prefix.
BASELINE_JOB = "-baseline-"
# The endpoint's schedules are <endpoint>-data-quality and <endpoint>-model-quality; a run's report
# is under <output>/<endpoint>/<schedule>/yyyy/mm/dd/hh/.
DATA_QUALITY_SCHEDULE = "-data-quality"
MODEL_QUALITY_SCHEDULE = "-model-quality"
# How a model-quality job reads a classifier's answer depends on the model: per problem type, the
# hosting stack's parameter that deploy_model sets from the package's metadata (register_model
# records it), and the form of its value. A binary model's decision threshold (its answer is
# probability,label); a multiclass model's label column (its answer is one probability per class,
# then the label: the column is the number of classes). A regression model answers its value alone.
ANSWER_PARAMETERS = {
    "binary": ("DecisionThreshold", "decision_threshold", r"0(\.\d+)?|1(\.0+)?"),
    "multiclass": ("LabelColumn", "classes", r"[1-9]\d{0,3}"),
}
# Model Monitor's name, per problem type, of each metric of the spec's that it computes on labelled
# traffic (log_loss and macro_f1 it does not).
# https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-metrics.html
MODEL_MONITOR_METRICS = {
    "binary": ("binary_classification_metrics", ("auc", "accuracy", "f1", "precision", "recall")),
    "multiclass": ("multiclass_classification_metrics", ("accuracy",)),
    "regression": ("regression_metrics", ("rmse", "mae", "mse", "r2")),
}


# --- CloudFormation ----------------------------------------------------------------------------------


def stack_state(cloudformation: Any, name: str) -> tuple[str, dict[str, str]]:
    """A stack's status and its parameters' values, as DescribeStacks answers now."""
    [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    return stack["StackStatus"], parameters


# --- the model registry -------------------------------------------------------------------------------


def model_package_group(prefix: str, dataset: str) -> str:
    """The name of ``dataset``'s model package group: ``<prefix>-<dataset>``."""
    return f"{prefix}-{dataset}"


def latest_approved_package(sagemaker: Any, group: str) -> str | None:
    """The ARN of the newest Approved package of ``group``, or None when it has none."""
    packages = sagemaker.list_model_packages(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )["ModelPackageSummaryList"]
    return packages[0]["ModelPackageArn"] if packages else None


# --- settings ---------------------------------------------------------------------------------------


class MissingSetting(RuntimeError):
    """A function's environment lacks a variable its settings need, or holds a malformed one."""


Kind = Literal["text", "json", "integer", "flag"]
_VARIABLE, _KIND, _GROUP = "variable", "kind", "group"


def setting(variable: str, kind: Kind = "text") -> Any:
    """A field of a function's settings dataclass, read from the environment variable
    ``variable``: ``text`` as it is, ``json`` parsed, ``integer`` a whole number, ``flag``
    ``true`` or ``false``. There is no default: the function's stack sets every variable, so a
    default here could only drift from the stage's configuration."""
    return field(metadata={_VARIABLE: variable, _KIND: kind})


def settings_group(settings: type) -> Any:
    """A field holding another settings dataclass, read from the same environment."""
    return field(metadata={_GROUP: settings})


S = TypeVar("S")


def read_settings(settings: type[S], function: str, variables: Mapping[str, str]) -> S:
    """``settings`` (a dataclass of :func:`setting` fields) read from ``variables``; a missing
    or malformed variable raises :class:`MissingSetting` naming ``function`` and the variable."""
    values: dict[str, Any] = {}
    for item in fields(settings):  # type: ignore[arg-type]
        if _GROUP in item.metadata:
            values[item.name] = read_settings(item.metadata[_GROUP], function, variables)
        else:
            values[item.name] = _parse(function, variables, item.metadata[_VARIABLE], item.metadata[_KIND])
    return settings(**values)


def variables_read(settings: type) -> frozenset[str]:
    """The names of the environment variables :func:`read_settings` reads for ``settings``."""
    names: set[str] = set()
    for item in fields(settings):
        names |= variables_read(item.metadata[_GROUP]) if _GROUP in item.metadata else {item.metadata[_VARIABLE]}
    return frozenset(names)


def _parse(function: str, variables: Mapping[str, str], name: str, kind: Kind) -> Any:
    if name not in variables:
        raise MissingSetting(f"{function} needs the environment variable {name}")
    value = variables[name]
    if kind == "json":
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise MissingSetting(f"{function}: {name} is not JSON ({error})") from None
    if kind == "integer":
        try:
            return int(value)
        except ValueError:
            raise MissingSetting(f"{function}: {name} must be a whole number, not {value!r}") from None
    if kind == "flag":
        if value not in ("true", "false"):
            raise MissingSetting(f"{function}: {name} must be true or false, not {value!r}")
        return value == "true"
    return value


@dataclass(frozen=True)
class JobPlacement:
    """Where and as whom a function's SageMaker jobs and models run: the variables the
    infrastructure's ``JobPlacement`` sets on the functions that start jobs or create models."""

    role_arn: str = setting("ROLE_ARN")
    kms_key_arn: str = setting("KMS_KEY_ARN")
    subnets: list[str] = setting("SUBNETS", "json")
    security_groups: list[str] = setting("SECURITY_GROUPS", "json")
    stage: str = setting("STAGE")

    @property
    def vpc_config(self) -> dict[str, list[str]]:
        """SageMaker's ``VpcConfig`` for a job or model."""
        return {"SecurityGroupIds": self.security_groups, "Subnets": self.subnets}


# --- preparation runs ---------------------------------------------------------------------------------
# A dataset's preparation run prepares raw/<dataset>/ as it is at the run's start (its snapshot) into
# prepared/<dataset>/<run-id>/. start_etl starts one when uploads go quiet, check_drift when drift
# meets new data; both start it through :func:`start_run`, so a snapshot is prepared once.
RUN_RECORD = "_RUN.json"
# S3's answers to a PutObject with If-None-Match: * that does not write, by code
# (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html; botocore's model lists neither):
CLAIM_TAKEN = "PreconditionFailed"  # 412: the key exists, another delivery holds the claim
CLAIM_CONFLICT = "ConditionalRequestConflict"  # 409: a conflicting write to the key was in flight; retry
# GetObject of a key that does not exist, for a caller that may list the prefix (without
# s3:ListBucket there, S3 answers AccessDenied instead):
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html
NO_SUCH_KEY = "NoSuchKey"
RUN_TIME = "%Y%m%dT%H%M%SZ"  # a run id's first part: its snapshot's newest LastModified, UTC


class RunStarting(RuntimeError):
    """Another caller is claiming or starting the same run right now; retry later."""


@dataclass(frozen=True)
class Preparation:
    """The preparation job and where it reads and writes (``stacks/etl.py`` sets these on start_etl,
    ``stacks/hosting.py`` on check_drift): a claim whose job never started is taken over after
    ``claim_timeout_seconds``."""

    job_name: str = setting("JOB_NAME")
    data_bucket: str = setting("DATA_BUCKET")
    raw_prefix: str = setting("RAW_PREFIX")
    prepared_prefix: str = setting("PREPARED_PREFIX")
    seed: int = setting("SEED", "integer")
    claim_timeout_seconds: int = setting("CLAIM_TIMEOUT_SECONDS", "integer")


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
    def newest(self) -> datetime:
        return max(o.last_modified for o in self.objects).astimezone(UTC)

    @property
    def run_id(self) -> str:
        """``<newest LastModified>-<digest of the objects>``: the same for the same snapshot."""
        identity = "\n".join(f"{o.key}\t{o.etag}\t{o.size}\t{o.last_modified.isoformat()}" for o in self.objects)
        return f"{self.newest:{RUN_TIME}}-{hashlib.sha256(identity.encode()).hexdigest()[:10]}"


def run_time(run_id: str) -> datetime | None:
    """When the newest file of a run's snapshot was written (the run id's first part), or None
    for an id of another form."""
    try:
        return datetime.strptime(run_id.partition("-")[0], RUN_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass(frozen=True)
class Plan:
    """The run of one snapshot: its id, the job's arguments and where its claim is written."""

    dataset: str
    run_id: str
    arguments: Mapping[str, str]
    record_key: str


def snapshot(s3: Any, preparation: Preparation, dataset: str) -> Snapshot:
    objects = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=preparation.data_bucket, Prefix=f"{preparation.raw_prefix}{dataset}/"):
        for item in page.get("Contents", []):
            if item["Key"].endswith("/") or item["Size"] == 0:
                continue
            objects.append(Listed(item["Key"], item["ETag"].strip('"'), item["Size"], item["LastModified"]))
    return Snapshot(dataset, tuple(sorted(objects, key=lambda o: o.key)))


def plan(snap: Snapshot, preparation: Preparation, spec_uri: str) -> Plan:
    run_id = snap.run_id
    output = f"{preparation.prepared_prefix}{snap.dataset}/{run_id}/"
    return Plan(
        dataset=snap.dataset,
        run_id=run_id,
        record_key=output + RUN_RECORD,
        arguments={
            "--input": f"s3://{preparation.data_bucket}/{preparation.raw_prefix}{snap.dataset}/",
            "--spec": spec_uri,
            "--output": f"s3://{preparation.data_bucket}/{output}",
            "--seed": str(preparation.seed),
        },
    )


def start_run(
    glue: Any, s3: Any, preparation: Preparation, step: Plan, record: Mapping[str, Any], now: datetime
) -> dict[str, str]:
    """The run of ``step`` claimed and started, or found started: ``{"status": "started" or
    "duplicate", "dataset", "run_id", "job_run_id"}``. ``record`` (who asks, and why) is written
    with the claim.

    At-least-once: the run is claimed by writing prepared/<dataset>/<run-id>/_RUN.json with
    If-None-Match: * (an atomic create in S3); only the claimant starts the job. A caller that
    finds the claim does nothing; one that finds it while the claimant is still starting, or whose
    claim S3 could not decide (409), gets :class:`RunStarting`, to retry once the claim records the
    job run. A claim whose job never started (its caller died in between) is taken over after
    ``claim_timeout_seconds``."""
    claim = {
        **record,
        "dataset": step.dataset,
        "run_id": step.run_id,
        "arguments": dict(step.arguments),
        "claimed_at": now.isoformat(),
    }
    try:
        _put_record(s3, preparation, step.record_key, claim, IfNoneMatch="*")
    except ClientError as error:
        code = error_code(error)
        if code == CLAIM_CONFLICT:  # the claim is undecided: S3 asks for the write to be retried
            raise RunStarting(f"the claim of run {step.run_id} met a conflicting write; retrying later") from error
        if code != CLAIM_TAKEN:
            raise
        return _already_claimed(glue, s3, preparation, step, now)
    return _start(glue, s3, preparation, step, claim)


def run_claimed(s3: Any, preparation: Preparation, step: Plan) -> dict[str, Any] | None:
    """The claim of ``step``'s run, or None when nobody has claimed it."""
    return read_json(s3, preparation.data_bucket, step.record_key)


def _start(glue: Any, s3: Any, preparation: Preparation, step: Plan, claim: Mapping[str, Any]) -> dict[str, str]:
    job_run_id = glue.start_job_run(JobName=preparation.job_name, Arguments=dict(step.arguments))["JobRunId"]
    _put_record(s3, preparation, step.record_key, {**claim, "job_run_id": job_run_id})
    return {"status": "started", "dataset": step.dataset, "run_id": step.run_id, "job_run_id": job_run_id}


def _put_record(s3: Any, preparation: Preparation, key: str, record: Mapping[str, Any], **conditions: str) -> None:
    s3.put_object(Bucket=preparation.data_bucket, Key=key, Body=json.dumps(record).encode(), **conditions)


def _already_claimed(glue: Any, s3: Any, preparation: Preparation, step: Plan, now: datetime) -> dict[str, str]:
    record = run_claimed(s3, preparation, step) or {}
    job_run_id = record.get("job_run_id") or _find_run(glue, preparation.job_name, step.arguments["--output"])
    if job_run_id:
        if not record.get("job_run_id"):  # the claimant started the job but did not record it
            _put_record(s3, preparation, step.record_key, record | {"job_run_id": job_run_id})
        return {"status": "duplicate", "dataset": step.dataset, "run_id": step.run_id, "job_run_id": job_run_id}
    claimed_at = record.get("claimed_at")
    age = (now - datetime.fromisoformat(claimed_at)).total_seconds() if claimed_at else 0.0
    if age < preparation.claim_timeout_seconds:
        raise RunStarting(f"run {step.run_id} was claimed {age:.0f} s ago and is not started yet; retrying later")
    LOGGER.warning("claim of run %s is %.0f s old and never started; taking it over", step.run_id, age)
    return _start(glue, s3, preparation, step, record | {"claimed_at": now.isoformat(), "taken_over": True})


def _job_runs(glue: Any, job_name: str, pages: int = 5) -> Iterator[dict[str, Any]]:
    """The job's runs as GetJobRuns lists them, ``pages`` pages of 200 at most (recent runs only)."""
    kwargs: dict[str, Any] = {"JobName": job_name, "MaxResults": 200}
    for _ in range(pages):
        response = glue.get_job_runs(**kwargs)
        yield from response.get("JobRuns", [])
        if not response.get("NextToken"):
            return
        kwargs["NextToken"] = response["NextToken"]


def _find_run(glue: Any, job_name: str, output: str) -> str | None:
    """A run of the job already writing to ``output`` (recent runs only)."""
    return next(
        (run["Id"] for run in _job_runs(glue, job_name) if run.get("Arguments", {}).get("--output") == output), None
    )


def recent_runs(glue: Any, preparation: Preparation, dataset: str, since: datetime) -> list[dict[str, Any]]:
    """The preparation job's runs of ``dataset`` (its raw/ folder as input) started at ``since`` or
    later, newest first as Glue lists them."""
    source = f"s3://{preparation.data_bucket}/{preparation.raw_prefix}{dataset}/"
    return [
        run
        for run in _job_runs(glue, preparation.job_name)
        if run.get("Arguments", {}).get("--input") == source
        and run.get("StartedOn") is not None
        and run["StartedOn"] >= since
    ]
