"""The functions' runtime library (etl/platform_runtime.py) on what the handler tests reach only in
passing: the metric line's time, which events it takes for a function's, the variables a settings
class reads, the raw objects a preparation sees, and GetJobRuns' page size."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import boto3
import botocore.session
import pytest
from moto import mock_aws
from platform_runtime import (
    Preparation,
    Unrecognised,
    envelope,
    metric_record,
    recent_runs,
    setting,
    settings_group,
    snapshot,
    variables_read,
)

from tests.functions import ACCOUNT, DATA_BUCKET, REGION, fake_credentials

PREPARATION = Preparation(
    job_name="mlplatform-dev-prepare",
    data_bucket=DATA_BUCKET,
    raw_prefix="raw/",
    prepared_prefix="prepared/",
    seed=42,
    claim_timeout_seconds=900,
)


def test_a_metric_line_is_stamped_with_its_time_in_milliseconds():
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
    now = datetime(2026, 11, 24, 12, 0, 0, 250000, tzinfo=UTC)
    record = json.loads(metric_record("dev", "bank-marketing", {"DriftedFeatures": (2, "Count")}, now))
    assert record["_aws"]["Timestamp"] == 1_795_521_600_250
    assert record["DriftedFeatures"] == 2 and (record["Stage"], record["Dataset"]) == ("dev", "bank-marketing")


def s3_event(source: str = "aws.s3", detail_type: str = "Object Created") -> dict:
    # As EventBridge delivers it, read from JSON (its strings are not the code's literals).
    return json.loads(
        json.dumps(
            {
                "version": "0",
                "id": "17793124-05d4-b198-2fde-7ededc63b103",
                "detail-type": detail_type,
                "source": source,
                "account": ACCOUNT,
                "time": "2026-11-24T12:00:00Z",
                "region": REGION,
                "resources": [f"arn:aws:s3:::{DATA_BUCKET}"],
                "detail": {"bucket": {"name": DATA_BUCKET}, "object": {"key": "raw/bank-marketing/a.csv"}},
            }
        )
    )


def test_an_event_of_the_expected_source_and_type_is_taken():
    detail_type, detail = envelope(s3_event(), "aws.s3", ("Object Created",), "an S3 event")
    assert detail_type == "Object Created" and detail["object"]["key"] == "raw/bank-marketing/a.csv"


@pytest.mark.parametrize("source", ["aws.glue", "aws.sagemaker", "custom.s3"])
def test_an_event_of_the_expected_type_from_another_source_is_not_taken(source):
    with pytest.raises(Unrecognised, match=f"not an S3 event: source '{source}'"):
        envelope(s3_event(source), "aws.s3", ("Object Created",), "an S3 event")


@dataclass(frozen=True)
class Inner:
    bucket: str = setting("BUCKET")
    seed: int = setting("SEED", "integer")


@dataclass(frozen=True)
class Outer:
    name: str = setting("NAME")
    inner: Inner = settings_group(Inner)


def test_the_variables_a_settings_class_reads_include_its_groups():
    assert variables_read(Outer) == {"NAME", "BUCKET", "SEED"}
    assert variables_read(Inner) == {"BUCKET", "SEED"}


@pytest.fixture
def s3(monkeypatch):
    fake_credentials(monkeypatch)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=DATA_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield client


def test_a_snapshot_of_raw_data_leaves_out_folder_markers_and_empty_objects(s3):
    for key, body in [
        ("raw/bank-marketing/", b""),  # the console's folder marker
        ("raw/bank-marketing/empty.csv", b""),
        ("raw/bank-marketing/b.csv", b"age;job\n"),
        ("raw/bank-marketing/a.csv", b"age;job\n41;admin.\n"),
        ("raw/car-evaluation/c.csv", b"x\n"),
    ]:
        s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body)
    taken = snapshot(s3, PREPARATION, "bank-marketing")
    assert [(o.key, o.size) for o in taken.objects] == [
        ("raw/bank-marketing/a.csv", 18),
        ("raw/bank-marketing/b.csv", 8),
    ]


def test_glue_is_asked_for_pages_of_runs_no_larger_than_get_job_runs_allows():
    limits = botocore.session.get_session().get_service_model("glue").operation_model("GetJobRuns")
    allowed = limits.input_shape.members["MaxResults"].metadata  # {"min": 1, "max": 200}
    asked = []

    class Glue:
        def get_job_runs(self, **request):
            asked.append(request)
            return {"JobRuns": []}

    recent_runs(Glue(), PREPARATION, "bank-marketing", datetime(2026, 11, 24, tzinfo=UTC))
    assert [r["JobName"] for r in asked] == ["mlplatform-dev-prepare"]
    assert allowed["min"] <= asked[0]["MaxResults"] <= allowed["max"]
