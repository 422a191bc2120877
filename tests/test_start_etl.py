"""lambda/start_etl against moto: real boto3 calls into an emulated S3 and Glue. S3's refusals
of the conditional claim are AWS's, on the wire (tests/aws_errors.py)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.aws_errors import CONDITIONAL_REQUEST_CONFLICT, PRECONDITION_FAILED, Answers, AwsError, exists
from tests.functions import (
    ACCOUNT,
    DATA_BUCKET,
    ENVIRONMENTS,
    REGION,
    event_fixture,
    fake_credentials,
    load_function,
    object_created,
)

BUCKET = DATA_BUCKET
JOB = ENVIRONMENTS["start_etl"]["JOB_NAME"]
SPECS = {
    "bank-marketing": "s3://cdk-assets/bank.json",
    "car-evaluation": "s3://cdk-assets/car.json",
}


@pytest.fixture
def aws(monkeypatch):
    fake_credentials(monkeypatch)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        glue = boto3.client("glue")
        glue.create_job(Name=JOB, Role=f"arn:aws:iam::{ACCOUNT}:role/glue", Command={"Name": "glueetl"})
        yield s3, glue


@pytest.fixture
def module(aws, monkeypatch):
    """The handler module, loaded by path as Lambda loads it (clients created at import)."""
    return load_function("start_etl", monkeypatch, DATASET_SPECS=json.dumps(SPECS))


def event(key: str = "raw/bank-marketing/bank-additional.csv", **object_fields) -> dict:
    return object_created(key, **object_fields)


def job_runs(glue) -> list[dict]:
    return glue.get_job_runs(JobName=JOB)["JobRuns"]


def test_a_new_raw_file_starts_one_run_with_the_datasets_arguments(module, aws):
    s3, glue = aws
    result = module.handler(event(), None)

    assert result["status"] == "started" and result["dataset"] == "bank-marketing"
    [run] = job_runs(glue)
    assert run["Id"] == result["job_run_id"]
    run_id = result["run_id"]
    assert run["Arguments"] == {
        "--input": f"s3://{BUCKET}/raw/bank-marketing/",
        "--spec": SPECS["bank-marketing"],
        "--output": f"s3://{BUCKET}/prepared/bank-marketing/{run_id}/",
        "--seed": "42",
    }
    assert run_id.startswith("20261112T093000Z-")
    record = json.loads(s3.get_object(Bucket=BUCKET, Key=f"prepared/bank-marketing/{run_id}/_RUN.json")["Body"].read())
    assert record["job_run_id"] == run["Id"]
    assert record["source"] == f"s3://{BUCKET}/raw/bank-marketing/bank-additional.csv"


def test_duplicate_event_starts_one_job(module, aws):
    _, glue = aws
    first = module.handler(event(), None)
    second = module.handler(copy.deepcopy(event()), None)
    assert second == {**first, "status": "duplicate"}
    assert len(job_runs(glue)) == 1


def test_a_new_version_of_the_same_key_is_a_new_run(module, aws):
    _, glue = aws
    first = module.handler(event(), None)
    second = module.handler(event(**{"version-id": "v2", "sequencer": "0064D3901D00059999"}), None)
    assert second["status"] == "started" and second["run_id"] != first["run_id"]
    assert len(job_runs(glue)) == 2


@pytest.mark.parametrize(
    ("key", "fields", "reason"),
    [
        ("raw/bank-marketing/", {"size": 0}, "raw/bank-marketing/ is a folder marker"),
        ("raw/bank-marketing/empty.csv", {"size": 0}, "raw/bank-marketing/empty.csv is empty"),
        ("raw/loose.csv", {}, "raw/loose.csv is directly under raw/; expected raw/<dataset>/<file>"),
        (
            "raw/iris/iris.csv",
            {},
            "dataset 'iris' has no spec (datasets with specs: bank-marketing, car-evaluation)",
        ),
        ("prepared/bank-marketing/x/_SUCCESS", {}, "prepared/bank-marketing/x/_SUCCESS is not under raw/"),
    ],
)
def test_objects_that_are_not_new_data_are_ignored_with_a_reason(module, aws, key, fields, reason, caplog):
    s3, glue = aws
    with caplog.at_level("INFO"):
        result = module.handler(event(key, **fields), None)
    assert result == {"status": "ignored", "reason": reason}
    assert reason in caplog.text
    assert job_runs(glue) == []
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_other_buckets_are_ignored(module, aws):
    data = event()
    data["detail"]["bucket"]["name"] = "someone-elses-bucket"
    assert module.handler(data, None)["status"] == "ignored"
    assert job_runs(aws[1]) == []


def test_an_event_that_is_not_object_created_fails_loudly(module):
    data = event_fixture("glue_job_state_change_failed.json")
    with pytest.raises(ValueError, match="not an S3 Object Created event"):
        module.handler(data, None)


def claim(s3, module, data: dict, claimed_at: datetime) -> str:
    """Leave a claim as a delivery would that died after claiming, before starting."""
    plan = module.plan(module.runtime.ObjectCreated.from_event(data), module.SETTINGS)
    record = {"dataset": plan.dataset, "run_id": plan.run_id, "claimed_at": claimed_at.isoformat()}
    s3.put_object(Bucket=BUCKET, Key=plan.record_key, Body=json.dumps(record).encode())
    return plan.record_key


def test_a_delivery_racing_an_unfinished_claim_asks_to_be_retried(module, aws):
    s3, glue = aws
    now = datetime(2026, 11, 12, 9, 31, tzinfo=UTC)
    claim(s3, module, event(), claimed_at=now - timedelta(seconds=5))
    with pytest.raises(module.RunStarting, match="not started yet; retrying later"):
        module.start_etl(event(), glue, s3, module.SETTINGS, now=now)
    assert job_runs(glue) == []


def test_a_stale_claim_whose_job_never_started_is_taken_over(module, aws):
    s3, glue = aws
    now = datetime(2026, 11, 12, 10, 0, tzinfo=UTC)
    key = claim(s3, module, event(), claimed_at=now - timedelta(hours=1))
    result = module.start_etl(event(), glue, s3, module.SETTINGS, now=now)
    assert result["status"] == "started"
    assert len(job_runs(glue)) == 1
    record = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert record["taken_over"] is True and record["job_run_id"] == result["job_run_id"]


def test_a_run_started_but_not_recorded_is_found_and_not_started_again(module, aws):
    s3, glue = aws
    now = datetime(2026, 11, 12, 9, 31, tzinfo=UTC)
    key = claim(s3, module, event(), claimed_at=now - timedelta(seconds=5))
    plan = module.plan(module.runtime.ObjectCreated.from_event(event()), module.SETTINGS)
    started = glue.start_job_run(JobName=JOB, Arguments=dict(plan.arguments))["JobRunId"]

    result = module.start_etl(event(), glue, s3, module.SETTINGS, now=now)
    assert result == {"status": "duplicate", "dataset": "bank-marketing", "run_id": plan.run_id, "job_run_id": started}
    assert len(job_runs(glue)) == 1
    assert json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())["job_run_id"] == started


def test_glue_refusing_the_run_is_an_error_for_lambda_to_retry(module, monkeypatch):
    from botocore.exceptions import ClientError

    def refuse(**kwargs):
        raise ClientError({"Error": {"Code": "ConcurrentRunsExceededException", "Message": "too many"}}, "StartJobRun")

    monkeypatch.setattr(module.GLUE, "start_job_run", refuse)
    with pytest.raises(ClientError, match="ConcurrentRunsExceededException"):
        module.handler(event(), None)


def test_missing_configuration_is_named_at_start(aws, monkeypatch):
    with pytest.raises(RuntimeError, match="start_etl needs the environment variable DATASET_SPECS"):
        load_function("start_etl", monkeypatch, without=("DATASET_SPECS",))


# --- the claim refused: S3's code decides, whatever the wording ----------------------------------


def claims(module, s3, refuse) -> None:
    """The handler's conditional PutObject (the claim) answered by ``refuse(key)``; the others go to moto."""

    def rule(params):
        return refuse(params["Key"]) if params.get("IfNoneMatch") == "*" else None

    Answers.of(module.S3).on("PutObject", rule)


@pytest.mark.parametrize("reworded", [False, True], ids=["aws-wording", "other-wording"])
def test_a_claim_s3_finds_taken_is_a_duplicate(module, aws, reworded):
    s3, glue = aws
    taken = PRECONDITION_FAILED.reworded() if reworded else PRECONDITION_FAILED
    claims(module, s3, lambda key: taken if exists(lambda: s3.head_object(Bucket=BUCKET, Key=key)) else None)
    first = module.handler(event(), None)
    second = module.handler(event(), None)
    assert first["status"] == "started" and second == {**first, "status": "duplicate"}
    assert len(job_runs(glue)) == 1


@pytest.mark.parametrize("reworded", [False, True], ids=["aws-wording", "other-wording"])
def test_a_claim_s3_could_not_decide_is_retried_later(module, aws, reworded):
    s3, glue = aws
    conflict = CONDITIONAL_REQUEST_CONFLICT.reworded() if reworded else CONDITIONAL_REQUEST_CONFLICT
    claims(module, s3, lambda key: conflict)
    with pytest.raises(module.RunStarting, match="met a conflicting write; retrying later"):
        module.handler(event(), None)
    assert job_runs(glue) == []
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_any_other_refusal_of_the_claim_is_raised(module, aws):
    s3, glue = aws
    claims(module, s3, lambda key: AwsError("AccessDenied", "Access Denied", status=403))
    with pytest.raises(ClientError, match="AccessDenied"):
        module.handler(event(), None)
    assert job_runs(glue) == []
