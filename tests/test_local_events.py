"""local/events.py: the events AWS emits, in the shapes of AWS's documentation, and the
platform's handlers reading them. Handlers are loaded by path with their environment set, as
Lambda loads them; they create boto3 clients at import but call nothing here (fakes stand in)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from local import events
from tests.functions import load_function

FIXTURES = Path(__file__).parent / "events"
ACCOUNT, REGION = "123456789012", "eu-west-1"
BUCKET = "ml-platform-data-bucket"
RUN = "20261112T093000Z-0123456789"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
T0 = datetime(2026, 11, 12, 9, 30, tzinfo=UTC)
MS = 1794475800000  # T0 in epoch milliseconds
ENVELOPE_KEYS = ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def round_trip(event: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(event, allow_nan=False)
    assert json.loads(text) == event
    return json.loads(text)


def keys(tree: Any) -> Any:
    """The key structure of a JSON tree (values dropped), for comparing shapes."""
    if isinstance(tree, dict):
        return {key: keys(value) for key, value in tree.items()}
    return type(tree).__name__


# --- the envelope ---------------------------------------------------------------------------------


def test_the_envelope_has_eventbridges_fields_in_order():
    event = events.envelope(
        detail_type="Custom", source="aws.test", detail={"a": 1}, account=ACCOUNT, region=REGION, time=T0
    )
    assert list(event) == ENVELOPE_KEYS
    assert event["version"] == "0"
    assert uuid.UUID(event["id"]).version == 4
    assert event["time"] == "2026-11-12T09:30:00Z"
    assert event["resources"] == []
    assert event["detail"] == {"a": 1}


def test_event_ids_are_deterministic_with_a_seed_and_random_without():
    def make(seed):
        return events.envelope(
            detail_type="X", source="aws.x", detail={}, account=ACCOUNT, region=REGION, event_id=seed
        )

    assert make("one")["id"] == make("one")["id"]
    assert make("one")["id"] != make("two")["id"]
    assert uuid.UUID(make("one")["id"]).version == 4
    assert make(None)["id"] != make(None)["id"]


def test_times_are_utc_to_the_second_whatever_zone_they_come_in():
    cet = datetime(2026, 11, 12, 10, 30, 0, 999999, tzinfo=timezone(timedelta(hours=1)))
    assert events.iso_time(cet) == "2026-11-12T09:30:00Z"
    assert events.iso_time(datetime(2026, 11, 12, 9, 30)) == "2026-11-12T09:30:00Z"  # naive: UTC
    assert events.epoch_millis(T0) == MS
    assert events.epoch_millis(cet) == MS + 999


def test_the_envelope_refuses_a_bad_account_and_a_detail_that_is_not_json():
    with pytest.raises(ValueError, match="12-digit"):
        events.envelope(detail_type="X", source="aws.x", detail={}, account="1234", region=REGION)
    with pytest.raises(TypeError, match="not JSON"):
        events.envelope(detail_type="X", source="aws.x", detail={"t": T0}, account=ACCOUNT, region=REGION)


def test_the_envelope_copies_the_detail():
    detail = {"nested": {"a": 1}}
    event = events.envelope(detail_type="X", source="aws.x", detail=detail, account=ACCOUNT, region=REGION)
    detail["nested"]["a"] = 2
    assert event["detail"] == {"nested": {"a": 1}}


def test_json_unfriendly_values_are_converted():
    converted = events.json_ready(
        {
            "when": T0,
            "blob": b"\x00\xff",
            "whole": Decimal("3"),
            "part": Decimal("0.25"),
            "pair": (1, 2),
            "set": {"b", "a"},
            "deep": [{"at": T0}],
        }
    )
    assert converted == {
        "when": MS,
        "blob": "AP8=",
        "whole": 3,
        "part": 0.25,
        "pair": [1, 2],
        "set": ["a", "b"],
        "deep": [{"at": MS}],
    }
    with pytest.raises(TypeError):
        events.json_ready({"x": object()})


# --- S3 ----------------------------------------------------------------------------------------------


def object_created(key: str = "raw/bank-marketing/bank-additional.csv", n: int = 1, **overrides) -> dict[str, Any]:
    arguments = {
        "bucket": BUCKET,
        "key": key,
        "size": 492486,
        "etag": '"2f6a0f3c6d0bd9b1b2d0c4d3f8a5e6c1"',
        "sequencer": events.sequencer(n),
        "account": ACCOUNT,
        "region": REGION,
        "version_id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
        "time": T0,
    } | overrides
    return events.s3_object_created(**arguments)


def test_sequencers_are_fixed_width_hex_that_sort_as_their_numbers():
    numbers = [0, 1, 9, 10, 15, 16, 255, 256, 4095, 2**40, 16**18 - 1]
    values = [events.sequencer(n) for n in numbers]
    assert all(len(value) == 18 and re.fullmatch(r"[0-9A-F]{18}", value) for value in values)
    assert [int(value, 16) for value in values] == numbers
    assert sorted(values) == values  # plain string order is event order
    with pytest.raises(ValueError):
        events.sequencer(-1)
    with pytest.raises(ValueError):
        events.sequencer(16**18)


def test_object_created_has_the_shape_of_the_documented_event():
    event = round_trip(object_created())
    assert keys(event) == keys(fixture("s3_object_created.json"))
    assert list(event) == ENVELOPE_KEYS
    assert (event["detail-type"], event["source"]) == ("Object Created", "aws.s3")
    assert event["resources"] == [f"arn:aws:s3:::{BUCKET}"]
    assert ISO.match(event["time"])
    detail = event["detail"]
    assert detail["version"] == "0"
    assert detail["bucket"] == {"name": BUCKET}
    assert detail["object"] == {
        "key": "raw/bank-marketing/bank-additional.csv",
        "size": 492486,
        "etag": "2f6a0f3c6d0bd9b1b2d0c4d3f8a5e6c1",  # unquoted, and "etag", not moto's "eTag"
        "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
        "sequencer": "000000000000000001",
    }
    assert detail["reason"] == "PutObject"  # the API, not moto's "ObjectCreated"
    assert detail["requester"] == ACCOUNT
    assert re.fullmatch(r"[0-9A-F]{16}", detail["request-id"])
    assert detail["source-ip-address"] == "127.0.0.1"


def test_object_created_leaves_out_what_s3_leaves_out():
    detail = object_created(version_id=None, source_ip=None)["detail"]
    assert "version-id" not in detail["object"]
    assert "source-ip-address" not in detail
    assert "event-version" not in detail


@pytest.mark.parametrize("reason", ["PutObject", "POST Object", "CopyObject", "CompleteMultipartUpload"])
def test_object_created_takes_the_documented_reasons(reason):
    assert object_created(reason=reason)["detail"]["reason"] == reason


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reason": "ObjectCreated"}, "reason"),
        ({"sequencer": "not-hex"}, "invalid literal"),
        ({"size": -1}, "negative"),
    ],
)
def test_object_created_refuses_what_s3_never_sends(change, message):
    with pytest.raises(ValueError, match=message):
        object_created(**change)


def test_object_created_in_other_partitions_names_the_bucket_there():
    assert object_created(region="cn-north-1")["resources"] == [f"arn:aws-cn:s3:::{BUCKET}"]


def test_start_etl_reads_object_created(monkeypatch):
    start_etl = load_function("start_etl", monkeypatch)
    first = start_etl.runtime.ObjectCreated.from_event(object_created(n=1, event_id="first"))
    assert first.bucket == BUCKET
    assert first.key == "raw/bank-marketing/bank-additional.csv"
    assert first.size == 492486
    assert first.etag == "2f6a0f3c6d0bd9b1b2d0c4d3f8a5e6c1"
    assert first.version == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert first.sequencer == events.sequencer(1)
    assert first.time == "2026-11-12T09:30:00Z" and first.at == T0
    # An unversioned bucket: the ETag identifies the object.
    unversioned = start_etl.runtime.ObjectCreated.from_event(object_created(version_id=None))
    assert unversioned.version == "2f6a0f3c6d0bd9b1b2d0c4d3f8a5e6c1"

    # The quiet period's decision reads the event's time against the objects listed.
    def listed(key, seconds, etag="2f6a0f3c6d0bd9b1b2d0c4d3f8a5e6c1"):
        return start_etl.runtime.Listed(f"raw/bank-marketing/{key}", etag, 10, T0 + timedelta(seconds=seconds))

    alone = start_etl.runtime.Snapshot("bank-marketing", (listed("bank-additional.csv", 0),))
    assert start_etl.superseded(first, alone) is None
    later = start_etl.runtime.Snapshot("bank-marketing", (listed("bank-additional.csv", 0), listed("more.csv", 1)))
    assert "raw/bank-marketing/more.csv arrived after" in start_etl.superseded(first, later)
    overwritten = start_etl.runtime.Snapshot("bank-marketing", (listed("bank-additional.csv", 5, etag="other"),))
    assert "was overwritten or deleted" in start_etl.superseded(first, overwritten)
    # The run is the snapshot's, whichever event looks at it.
    assert alone.run_id.startswith("20261112T093000Z-") and alone.run_id != later.run_id
    assert start_etl.runtime.Snapshot("bank-marketing", alone.objects).run_id == alone.run_id


def test_start_training_reads_the_success_marker(monkeypatch):
    start_training = load_function("start_training", monkeypatch)
    event = object_created(f"prepared/car-evaluation/{RUN}/_SUCCESS", size=0, version_id=None)
    assert start_training.parse(event, start_training.SETTINGS) == ("car-evaluation", RUN)


class Recorder:
    """Stands in for a boto3 client: canned answers by method name, calls recorded."""

    def __init__(self, **answers):
        self.answers, self.calls = answers, []

    def __getattr__(self, method):
        def call(**kwargs):
            self.calls.append((method, kwargs))
            answer = self.answers[method]
            return answer(**kwargs) if callable(answer) else answer

        return call


def test_start_batch_transform_reads_object_created(monkeypatch):
    batch = load_function("start_batch_transform", monkeypatch)
    sagemaker = Recorder(list_model_packages={"ModelPackageSummaryList": []})
    s3, sns = Recorder(), Recorder(publish={})
    result = batch.start_batch_transform(
        object_created("batch-input/car-evaluation/cars.csv", size=120), sagemaker, s3, sns, batch.SETTINGS
    )
    assert result == {"status": "no-model", "dataset": "car-evaluation"}
    assert sagemaker.calls[0][1]["ModelPackageGroupName"] == "mlplatform-dev-car-evaluation"
    empty = object_created("batch-input/car-evaluation/cars.csv", size=0)
    assert batch.start_batch_transform(empty, sagemaker, s3, sns, batch.SETTINGS)["status"] == "ignored"
    assert s3.calls == []


# --- Amazon SQS to AWS Lambda ---------------------------------------------------------------------


def test_an_sqs_batch_has_the_shape_of_the_documented_event():
    """What Lambda's event source mapping hands a function, from what ReceiveMessage answers."""
    received = {
        "MessageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "ReceiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
        "MD5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "Body": "Test message.",
        "Attributes": {
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1545082649185",
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1545082649183",
        },
    }
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:my-queue"
    batch = round_trip(events.sqs_batch([received], queue_arn=queue, region=REGION))
    documented = fixture("sqs_receive_message.json")
    assert batch == documented
    assert list(batch["Records"][0]["attributes"]) == list(documented["Records"][0]["attributes"])


def test_queued_events_are_read_message_by_message(monkeypatch):
    start_etl = load_function("start_etl", monkeypatch)
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"
    message = {"MessageId": "m1", "ReceiptHandle": "r", "MD5OfBody": "x", "Attributes": {}}
    created = object_created(event_id="one")
    batch = events.sqs_batch(
        [{**message, "Body": json.dumps(created)}, {**message, "MessageId": "m2", "Body": "{not json"}],
        queue_arn=queue,
        region=REGION,
    )
    first, second = start_etl.runtime.queued_events(batch)
    assert first.message_id == "m1" and first.event == created and not first.unreadable
    assert second.message_id == "m2" and second.event is None and "not JSON" in second.unreadable
    with pytest.raises(start_etl.runtime.Unrecognised, match="not a batch of queued events"):
        start_etl.runtime.queued_events(object_created())


# --- Glue ----------------------------------------------------------------------------------------------


def test_glue_job_state_change_has_the_shape_of_the_documented_event():
    failed = fixture("glue_job_state_change_failed.json")
    event = round_trip(
        events.glue_job_state_change(
            job_name=failed["detail"]["jobName"],
            job_run_id=failed["detail"]["jobRunId"],
            state="FAILED",
            message=failed["detail"]["message"],
            account=ACCOUNT,
            region=REGION,
            time=T0,
            event_id="glue-1",
        )
    )
    assert keys(event) == keys(failed)
    assert list(event) == ENVELOPE_KEYS
    assert list(event["detail"]) == list(failed["detail"])
    assert (event["detail-type"], event["source"]) == ("Glue Job State Change", "aws.glue")
    assert event["resources"] == []
    assert event["detail"] == failed["detail"]
    assert ISO.match(event["time"])


@pytest.mark.parametrize(
    ("state", "severity"), [("SUCCEEDED", "INFO"), ("FAILED", "ERROR"), ("TIMEOUT", "WARN"), ("STOPPED", "INFO")]
)
def test_glue_severity_follows_the_documented_examples(state, severity):
    event = events.glue_job_state_change(
        job_name="j", job_run_id="jr_1", state=state, message="m", account=ACCOUNT, region=REGION
    )
    assert event["detail"]["severity"] == severity


@pytest.mark.parametrize("state", ["RUNNING", "ERROR", "WAITING", "succeeded"])
def test_glue_job_state_change_is_refused_for_states_glue_sends_none_for(state):
    with pytest.raises(ValueError, match="Glue Job State Change"):
        events.glue_job_state_change(
            job_name="j", job_run_id="jr_1", state=state, message="m", account=ACCOUNT, region=REGION
        )


def test_glue_crawler_events_follow_the_documented_examples():
    started = events.glue_crawler_state_change(
        crawler_name="catalogue", state="Started", account=ACCOUNT, region=REGION, start_time=T0
    )
    assert started["detail"] == {
        "accountId": ACCOUNT,
        "crawlerName": "catalogue",
        "startTime": "2026-11-12T09:30:00Z",
        "state": "Started",
        "message": "Crawler Started",
    }
    succeeded = events.glue_crawler_state_change(
        crawler_name="catalogue",
        state="Succeeded",
        account=ACCOUNT,
        region=REGION,
        start_time=T0,
        completion_time=T0 + timedelta(seconds=7),
        counts={"tablesCreated": 2},
    )["detail"]
    assert succeeded["tablesCreated"] == "2" and succeeded["tablesDeleted"] == "0"  # strings, as documented
    assert succeeded["runningTime (sec)"] == "7"
    assert succeeded["completionDate"] == "2026-11-12T09:30:07Z"
    failed = round_trip(
        events.glue_crawler_state_change(
            crawler_name="catalogue", state="Failed", account=ACCOUNT, region=REGION, error_message="Access denied"
        )
    )
    assert (failed["detail-type"], failed["source"], failed["resources"]) == (
        "Glue Crawler State Change",
        "aws.glue",
        [],
    )
    assert set(failed["detail"]) == {
        "crawlerName",
        "errorMessage",
        "accountId",
        "cloudWatchLogLink",
        "state",
        "message",
    }
    assert failed["detail"]["errorMessage"] == "Access denied"  # what the crawler-failure rule reads


# --- SageMaker ------------------------------------------------------------------------------------

TRAINING_JOB = f"car-evaluation-{RUN}"
TRAINING_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{TRAINING_JOB}"
RESPONSE_METADATA = {"RequestId": "c0ffee", "HTTPStatusCode": 200, "HTTPHeaders": {}, "RetryAttempts": 0}


def training_description(status: str = "Completed", **extra) -> dict[str, Any]:
    """A DescribeTrainingJob response as boto3 returns it (datetimes, ResponseMetadata)."""
    return {
        "TrainingJobName": TRAINING_JOB,
        "TrainingJobArn": TRAINING_ARN,
        "ModelArtifacts": {
            "S3ModelArtifacts": f"s3://ml-artifacts/training/car-evaluation/{TRAINING_JOB}/model.tar.gz"
        },
        "TrainingJobStatus": status,
        "SecondaryStatus": status,
        "HyperParameters": {"max_depth": "6"},
        "AlgorithmSpecification": {"TrainingImage": "xgboost:3.2-0", "TrainingInputMode": "File"},
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/sagemaker",
        "OutputDataConfig": {"S3OutputPath": "s3://ml-artifacts/training/car-evaluation/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": T0,
        "TrainingStartTime": T0 + timedelta(minutes=1),
        "TrainingEndTime": T0 + timedelta(minutes=9),
        "LastModifiedTime": T0 + timedelta(minutes=10),
        "SecondaryStatusTransitions": [
            {"Status": "Starting", "StartTime": T0, "EndTime": T0 + timedelta(minutes=1), "StatusMessage": "ok"}
        ],
        "EnableNetworkIsolation": True,
        "ResponseMetadata": RESPONSE_METADATA,
        **extra,
    }


def test_training_job_state_change_is_the_description_with_epoch_millisecond_times():
    event = round_trip(
        events.sagemaker_training_job_state_change(
            training_description(), account=ACCOUNT, region=REGION, tags={"ml-platform:stage": "dev"}, event_id="t"
        )
    )
    assert list(event) == ENVELOPE_KEYS
    assert (event["detail-type"], event["source"]) == ("SageMaker Training Job State Change", "aws.sagemaker")
    assert event["resources"] == [TRAINING_ARN]
    assert event["time"] == "2026-11-12T09:40:00Z"  # the last modification, as an ISO string
    detail = event["detail"]
    assert "ResponseMetadata" not in detail
    assert detail["TrainingJobName"] == TRAINING_JOB and detail["TrainingJobStatus"] == "Completed"
    assert detail["CreationTime"] == MS and isinstance(detail["CreationTime"], int)
    assert detail["TrainingEndTime"] == MS + 9 * 60_000
    assert detail["LastModifiedTime"] == MS + 10 * 60_000
    assert detail["SecondaryStatusTransitions"][0]["StartTime"] == MS
    assert detail["Tags"] == {"ml-platform:stage": "dev"}
    assert list(detail)[-1] == "Tags"
    assert detail["EnableNetworkIsolation"] is True


def test_job_events_carry_empty_tags_as_the_examples_do():
    event = events.sagemaker_training_job_state_change(training_description(), account=ACCOUNT, region=REGION)
    assert event["detail"]["Tags"] == {}


def test_a_failed_job_carries_its_failure_reason():
    failed = training_description("Failed", FailureReason="AlgorithmError: boom")
    detail = events.sagemaker_training_job_state_change(failed, account=ACCOUNT, region=REGION)["detail"]
    assert detail["FailureReason"] == "AlgorithmError: boom"


def test_same_seed_same_event():
    def build():
        return events.sagemaker_training_job_state_change(
            training_description(), account=ACCOUNT, region=REGION, event_id="seed"
        )

    assert build() == build()


def test_a_description_without_its_identity_is_refused():
    description = training_description()
    del description["TrainingJobArn"]
    with pytest.raises(ValueError, match="TrainingJobArn"):
        events.sagemaker_training_job_state_change(description, account=ACCOUNT, region=REGION)
    package = package_description()
    del package["ModelPackageStatus"]
    with pytest.raises(ValueError, match="ModelPackageStatus"):
        events.sagemaker_model_package_state_change(package, account=ACCOUNT, region=REGION)


TUNING_JOB = "car-evaluation-20261112T0930-ab12"
TUNING_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:hyper-parameter-tuning-job/{TUNING_JOB}"


def tuning_description(status: str = "Completed") -> dict[str, Any]:
    return {
        "HyperParameterTuningJobName": TUNING_JOB,
        "HyperParameterTuningJobArn": TUNING_ARN,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2},
        },
        "TrainingJobDefinition": {"StaticHyperParameters": {}, "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/sagemaker"},
        "HyperParameterTuningJobStatus": status,
        "CreationTime": T0,
        "HyperParameterTuningEndTime": T0 + timedelta(hours=1),
        "LastModifiedTime": T0 + timedelta(hours=1),
        "TrainingJobStatusCounters": {"Completed": 4, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0},
        "ObjectiveStatusCounters": {"Succeeded": 4, "Pending": 0, "Failed": 0},
        "BestTrainingJob": {
            "TrainingJobName": f"{TUNING_JOB}-003-abcdef12",
            "CreationTime": T0 + timedelta(minutes=5),
            "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "validation:auc", "Value": Decimal("0.93")},
        },
        "ResponseMetadata": RESPONSE_METADATA,
    }


def test_tuning_job_state_change_names_the_real_tuning_job_arn():
    event = round_trip(
        events.sagemaker_tuning_job_state_change(tuning_description(), account=ACCOUNT, region=REGION, time=T0)
    )
    assert event["detail-type"] == "SageMaker HyperParameter Tuning Job State Change"
    assert event["resources"] == [TUNING_ARN]
    assert event["time"] == "2026-11-12T09:30:00Z"  # an explicit time wins
    detail = event["detail"]
    assert detail["HyperParameterTuningJobStatus"] == "Completed"
    assert detail["BestTrainingJob"]["CreationTime"] == MS + 5 * 60_000
    assert detail["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == 0.93
    assert detail["Tags"] == {}


def test_transform_job_state_change():
    job = "car-evaluation-cars-0123456789ab"
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:transform-job/{job}"
    description = {
        "TransformJobName": job,
        "TransformJobArn": arn,
        "TransformJobStatus": "Failed",
        "FailureReason": "ClientError: bad row",
        "ModelName": job,
        "BatchStrategy": "MultiRecord",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/k"}}},
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/batch-output/car-evaluation/"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "CreationTime": T0,
        "TransformStartTime": T0,
        "TransformEndTime": T0 + timedelta(minutes=3),
        "ResponseMetadata": RESPONSE_METADATA,
    }
    event = round_trip(events.sagemaker_transform_job_state_change(description, account=ACCOUNT, region=REGION))
    assert (event["detail-type"], event["resources"]) == ("SageMaker Transform Job State Change", [arn])
    assert event["time"] == "2026-11-12T09:33:00Z"  # no LastModifiedTime: the end time
    assert event["detail"]["TransformEndTime"] == MS + 3 * 60_000
    assert event["detail"]["FailureReason"] == "ClientError: bad row"
    assert event["detail"]["Tags"] == {}


GROUP = "mlplatform-dev-car-evaluation"
PACKAGE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/3"


def package_description(approval: str = "Approved", group: str = GROUP) -> dict[str, Any]:
    return {
        "ModelPackageName": group,
        "ModelPackageGroupName": group,
        "ModelPackageVersion": 3,
        "ModelPackageArn": PACKAGE_ARN,
        "ModelPackageDescription": "Approved: test auc 0.9300 passes the gate",
        "CreationTime": T0,
        "InferenceSpecification": {
            "Containers": [{"Image": "xgboost:3.2-0", "ModelDataUrl": "s3://ml-artifacts/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
        "CertifyForMarketplace": False,
        "ModelApprovalStatus": approval,
        "CustomerMetadataProperties": {"training_job": TRAINING_JOB},
        "LastModifiedTime": T0 + timedelta(seconds=2),
        "ResponseMetadata": RESPONSE_METADATA,
    }


def test_model_package_state_change_has_the_documented_fields_and_no_tags():
    event = round_trip(
        events.sagemaker_model_package_state_change(package_description(), account=ACCOUNT, region=REGION)
    )
    assert (event["detail-type"], event["source"]) == ("SageMaker Model Package State Change", "aws.sagemaker")
    assert event["resources"] == [PACKAGE_ARN]
    assert event["time"] == "2026-11-12T09:30:02Z"
    detail = event["detail"]
    documented = {  # the keys of the example on the SageMaker page
        "ModelPackageGroupName",
        "ModelPackageVersion",
        "ModelPackageArn",
        "CreationTime",
        "InferenceSpecification",
        "ModelPackageStatus",
        "ModelPackageStatusDetails",
        "CertifyForMarketplace",
        "ModelApprovalStatus",
        "LastModifiedTime",
    }
    assert documented <= set(detail)
    assert "Tags" not in detail
    assert detail["ModelPackageVersion"] == 3 and detail["CreationTime"] == MS
    tagged = events.sagemaker_model_package_state_change(
        package_description(), account=ACCOUNT, region=REGION, tags={"ml-platform:stage": "dev"}
    )
    assert tagged["detail"]["Tags"] == {"ml-platform:stage": "dev"}


OUR_TAGS = [{"Key": "ml-platform:stage", "Value": "dev"}, {"Key": "ml-platform:dataset", "Value": "car-evaluation"}]


def test_register_model_reads_a_training_job_event(monkeypatch):
    register = load_function("register_model", monkeypatch)
    failed = training_description("Failed", FailureReason="AlgorithmError: boom")
    sagemaker = Recorder(describe_training_job=failed, list_tags={"Tags": OUR_TAGS})
    sns = Recorder(publish={})
    event = events.sagemaker_training_job_state_change(failed, account=ACCOUNT, region=REGION)
    result = register.register_model(event, sagemaker, None, sns, register.SETTINGS)
    assert result == {
        "status": "notified",
        "job": TRAINING_JOB,
        "job_status": "Failed",
        "reason": "AlgorithmError: boom",
    }
    assert sagemaker.calls[0] == ("describe_training_job", {"TrainingJobName": TRAINING_JOB})


def test_register_model_reads_a_tuning_job_event(monkeypatch):
    register = load_function("register_model", monkeypatch)
    sagemaker = Recorder(
        describe_hyper_parameter_tuning_job=tuning_description(),
        list_tags={"Tags": [{"Key": "ml-platform:stage", "Value": "prod"}]},
    )
    event = events.sagemaker_tuning_job_state_change(tuning_description(), account=ACCOUNT, region=REGION)
    result = register.register_model(event, sagemaker, None, None, register.SETTINGS)
    assert result == {"status": "ignored", "reason": f"{TUNING_JOB} is not a job of this platform stage"}
    assert sagemaker.calls[0] == ("describe_hyper_parameter_tuning_job", {"HyperParameterTuningJobName": TUNING_JOB})


def test_deploy_model_reads_a_model_package_event(monkeypatch):
    deploy = load_function("deploy_model", monkeypatch, MODEL_PACKAGE_GROUP=GROUP)
    live = {
        "StackStatus": "UPDATE_COMPLETE",
        "Parameters": [{"ParameterKey": "ModelPackageArn", "ParameterValue": PACKAGE_ARN}],
    }
    cloudformation = Recorder(describe_stacks={"Stacks": [live]})
    summary = {"ModelPackageArn": PACKAGE_ARN, "ModelPackageVersion": 1, "ModelPackageStatus": "Completed"}
    registry = Recorder(list_model_packages={"ModelPackageSummaryList": [summary]})
    approved = events.sagemaker_model_package_state_change(package_description(), account=ACCOUNT, region=REGION)
    assert deploy.deploy_model(approved, cloudformation, registry, deploy.SETTINGS) == {
        "status": "already-live",
        "model_package": PACKAGE_ARN,
    }
    rejected = events.sagemaker_model_package_state_change(
        package_description("Rejected"), account=ACCOUNT, region=REGION
    )
    assert deploy.deploy_model(rejected, cloudformation, registry, deploy.SETTINGS)["status"] == "ignored"
    assert len(cloudformation.calls) == 1
