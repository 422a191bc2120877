"""lambda/start_etl against moto: real boto3 calls into an emulated S3 (versioned, as the data
bucket is) and Glue, with the events as they reach the function. S3's "Object Created" events
(tests/events/s3_object_created.json) wait on the start_etl queue for its delivery delay (the
quiet period) and come to the function as Lambda's SQS batches
(tests/events/sqs_receive_message.json). S3's refusals of the conditional claim are AWS's, on
the wire (tests/aws_errors.py)."""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from tests.aws_errors import CONDITIONAL_REQUEST_CONFLICT, PRECONDITION_FAILED, Answers, AwsError, exists
from tests.functions import (
    ACCOUNT,
    DATA_BUCKET,
    ENVIRONMENTS,
    REGION,
    changed,
    event_fixture,
    fake_credentials,
    load_function,
    object_created,
    queued,
)

BUCKET = DATA_BUCKET
JOB = ENVIRONMENTS["start_etl"]["JOB_NAME"]
SPECS = {
    "bank-marketing": "s3://cdk-assets/bank.json",
    "car-evaluation": "s3://cdk-assets/car.json",
}
ROWS = b"age,job,y\n41,admin.,no\n"
_SEQUENCER = itertools.count(0x0064D3901D00059242)


@pytest.fixture
def aws(monkeypatch):
    fake_credentials(monkeypatch)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        glue = boto3.client("glue")
        glue.create_job(Name=JOB, Role=f"arn:aws:iam::{ACCOUNT}:role/glue", Command={"Name": "glueetl"})
        yield s3, glue


@pytest.fixture
def module(aws, monkeypatch):
    """The handler module, loaded by path as Lambda loads it (clients created at import)."""
    return load_function("start_etl", monkeypatch, DATASET_SPECS=json.dumps(SPECS))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def written(s3, key: str = "raw/bank-marketing/bank-additional.csv", body: bytes = ROWS) -> dict:
    """Write ``key`` to the emulated bucket; S3's Object Created event for that write (the
    fixture's shape, with the object's size, ETag, version and a later sequencer, and the
    object's LastModified as the event's time)."""
    put = s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    head = s3.head_object(Bucket=BUCKET, Key=key)
    event = object_created(
        key,
        size=head["ContentLength"],
        etag=put["ETag"].strip('"'),
        **{"version-id": put["VersionId"], "sequencer": f"{next(_SEQUENCER):018X}"},
    )
    event["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key}#{put['VersionId']}"))
    event["time"] = iso(head["LastModified"])
    return event


def job_runs(glue) -> list[dict]:
    return glue.get_job_runs(JobName=JOB)["JobRuns"]


def run_record(s3, run: dict) -> dict:
    output = run["Arguments"]["--output"].removeprefix(f"s3://{BUCKET}/")
    return json.loads(s3.get_object(Bucket=BUCKET, Key=output + "_RUN.json")["Body"].read())


def outcomes(caplog) -> list[dict]:
    """What the function logged it did with each message (its ``outcome`` log field)."""
    return [record.outcome for record in caplog.records if hasattr(record, "outcome")]


def test_a_new_raw_file_starts_one_run_with_the_datasets_arguments(module, aws, caplog):
    s3, glue = aws
    event = written(s3)
    with caplog.at_level("INFO"):
        assert module.handler(queued(event), None) == {"batchItemFailures": []}

    [outcome] = outcomes(caplog)
    assert outcome["status"] == "started" and outcome["dataset"] == "bank-marketing"
    [run] = job_runs(glue)
    assert run["Id"] == outcome["job_run_id"]
    run_id = outcome["run_id"]
    assert run["Arguments"] == {
        "--input": f"s3://{BUCKET}/raw/bank-marketing/",
        "--spec": SPECS["bank-marketing"],
        "--output": f"s3://{BUCKET}/prepared/bank-marketing/{run_id}/",
        "--seed": "42",
    }
    # The run is named after the newest object it prepares: its LastModified, then a digest.
    assert run_id.startswith(event["time"].replace("-", "").replace(":", "") + "-")
    record = run_record(s3, run)
    assert record["job_run_id"] == run["Id"]
    assert record["source"] == f"s3://{BUCKET}/raw/bank-marketing/bank-additional.csv"
    assert [o["key"] for o in record["objects"]] == ["raw/bank-marketing/bank-additional.csv"]


def test_several_files_uploaded_at_once_start_one_run_that_includes_them_all(module, aws):
    s3, glue = aws
    keys = [f"raw/bank-marketing/part-{n}.csv" for n in (1, 2, 3)]
    uploaded = [written(s3, key) for key in keys]
    # Each message on its own, latest first, then all three in one batch: one run.
    for event in reversed(uploaded):
        assert module.handler(queued(event), None) == {"batchItemFailures": []}
    assert module.handler(queued(*uploaded), None) == {"batchItemFailures": []}

    [run] = job_runs(glue)
    assert run["Arguments"]["--input"] == f"s3://{BUCKET}/raw/bank-marketing/"
    assert sorted(o["key"] for o in run_record(s3, run)["objects"]) == keys


def test_a_file_followed_by_a_later_one_leaves_the_run_to_the_later_one(module, aws, caplog):
    s3, glue = aws
    first = written(s3, "raw/bank-marketing/part-1.csv")
    second = written(s3, "raw/bank-marketing/part-2.csv")
    # part-1 arrived a minute before part-2: its quiet period ended while part-2's had not.
    first["time"] = iso(datetime.fromisoformat(second["time"]) - timedelta(minutes=1))
    with caplog.at_level("INFO"):
        assert module.handler(queued(first), None) == {"batchItemFailures": []}
    assert job_runs(glue) == []
    [waiting] = outcomes(caplog)
    assert waiting["status"] == "superseded"
    assert "raw/bank-marketing/part-2.csv arrived after raw/bank-marketing/part-1.csv" in waiting["reason"]

    module.handler(queued(second), None)
    [run] = job_runs(glue)
    assert sorted(o["key"] for o in run_record(s3, run)["objects"]) == [
        "raw/bank-marketing/part-1.csv",
        "raw/bank-marketing/part-2.csv",
    ]


def test_duplicate_event_starts_one_job(module, aws, caplog):
    s3, glue = aws
    event = written(s3)
    with caplog.at_level("INFO"):
        module.handler(queued(event), None)
        module.handler(queued(copy.deepcopy(event)), None)
    first, second = outcomes(caplog)
    assert second == {**first, "status": "duplicate"}
    assert len(job_runs(glue)) == 1


def test_a_new_event_time_for_the_same_object_version_starts_nothing_new(module, aws, caplog):
    s3, glue = aws
    event = written(s3)
    later = copy.deepcopy(event)
    later["id"] = str(uuid.uuid4())
    later["time"] = iso(datetime.fromisoformat(event["time"]) + timedelta(hours=1))
    with caplog.at_level("INFO"):
        module.handler(queued(event), None)
        module.handler(queued(later), None)
    assert [o["status"] for o in outcomes(caplog)] == ["started", "duplicate"]
    assert len(job_runs(glue)) == 1


def test_a_new_version_of_the_same_key_is_a_new_run_and_the_old_versions_event_starts_nothing(module, aws, caplog):
    s3, glue = aws
    old = written(s3, body=ROWS)
    module.handler(queued(old), None)
    new = written(s3, body=ROWS + b"57,services,yes\n")
    with caplog.at_level("INFO"):
        module.handler(queued(new), None)
        module.handler(queued(old), None)  # a late redelivery of the first version's event
    started, late = outcomes(caplog)
    assert started["status"] == "started"
    assert late["status"] == "superseded" and "was overwritten or deleted" in late["reason"]
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
        assert module.handler(queued(object_created(key, **fields)), None) == {"batchItemFailures": []}
    assert outcomes(caplog) == [{"status": "ignored", "reason": reason}]
    assert reason in caplog.text
    assert job_runs(glue) == []
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_other_buckets_are_ignored(module, aws, caplog):
    with caplog.at_level("INFO"):
        module.handler(queued(object_created("raw/bank-marketing/x.csv", bucket="someone-elses-bucket")), None)
    assert outcomes(caplog)[0]["status"] == "ignored"
    assert job_runs(aws[1]) == []


RAW_OBJECT = object_created("raw/bank-marketing/x.csv")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            event_fixture("glue_job_state_change_failed.json"),
            "not an S3 'Object Created' event: source 'aws.glue', detail-type 'Glue Job State Change'",
        ),
        ("Test message.", "the message body is not JSON"),
        (changed(RAW_OBJECT, "detail.object.key", remove=True), "detail.object.key is missing"),
        (changed(RAW_OBJECT, "detail.object.etag", remove=True), "detail.object.etag is missing"),
        (changed(RAW_OBJECT, "detail", remove=True), "detail is missing"),
        (changed(RAW_OBJECT, "detail.object.size", "492486"), "detail.object.size must be a whole number"),
        (changed(RAW_OBJECT, "detail.object.key", ["x"]), "detail.object.key must be a string"),
        (changed(RAW_OBJECT, "time", "yesterday"), "time must be an ISO 8601 time"),
        (["not", "an", "event"], "not an EventBridge event"),
    ],
    ids=["glue-event", "not-json", "no-key", "no-etag", "no-detail", "size-text", "key-list", "bad-time", "list"],
)
def test_a_message_the_function_does_not_understand_is_ignored_with_the_reason(module, aws, body, reason, caplog):
    _, glue = aws
    with caplog.at_level("INFO"):
        assert module.handler(queued(body), None) == {"batchItemFailures": []}
    [outcome] = outcomes(caplog)
    assert outcome["status"] == "ignored" and reason in outcome["reason"], outcome
    assert job_runs(glue) == []


@pytest.mark.parametrize(
    "event",
    [object_created("raw/bank-marketing/bank-additional.csv"), {"Records": "none"}, "text", None],
    ids=["bare-s3-event", "records-not-a-list", "text", "none"],
)
def test_what_is_not_a_batch_from_the_queue_is_ignored(module, aws, event, caplog):
    s3, glue = aws
    s3.put_object(Bucket=BUCKET, Key="raw/bank-marketing/bank-additional.csv", Body=ROWS)
    with caplog.at_level("INFO"):
        assert module.handler(event, None) == {"batchItemFailures": []}
    assert "ignored: not a batch of queued events" in caplog.text
    assert job_runs(glue) == []


def test_one_bad_message_does_not_hold_back_the_others(module, aws, caplog):
    s3, glue = aws
    good = written(s3)
    with caplog.at_level("INFO"):
        response = module.handler(queued("Test message.", good), None)
    assert response == {"batchItemFailures": []}
    assert [o["status"] for o in outcomes(caplog)] == ["ignored", "started"]
    assert len(job_runs(glue)) == 1


def run_plan(module, s3):
    """The run of raw/bank-marketing/ as it is now, as the function plans it."""
    runtime, settings = module.runtime, module.SETTINGS
    snap = runtime.snapshot(s3, settings.preparation, "bank-marketing")
    return runtime.plan(snap, settings.preparation, settings.specs["bank-marketing"])


def claim(s3, module, claimed_at: datetime) -> str:
    """Leave a claim as a delivery would that died after claiming, before starting."""
    plan = run_plan(module, s3)
    record = {"dataset": plan.dataset, "run_id": plan.run_id, "claimed_at": claimed_at.isoformat()}
    s3.put_object(Bucket=BUCKET, Key=plan.record_key, Body=json.dumps(record).encode())
    return plan.record_key


def failed(response: dict, batch: dict) -> bool:
    """Whether the response reports every message of ``batch`` as failed (to be retried)."""
    return response == {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in batch["Records"]]}


def test_a_delivery_racing_an_unfinished_claim_is_retried_later(module, aws, caplog):
    s3, glue = aws
    event = written(s3)
    claim(s3, module, claimed_at=datetime.now(UTC) - timedelta(seconds=5))
    batch = queued(event)
    with caplog.at_level("INFO"):
        assert failed(module.handler(batch, None), batch)
    assert "not started yet; retrying later" in caplog.text
    assert job_runs(glue) == []


def test_a_stale_claim_whose_job_never_started_is_taken_over(module, aws, caplog):
    s3, glue = aws
    event = written(s3)
    key = claim(s3, module, claimed_at=datetime.now(UTC) - timedelta(hours=1))
    with caplog.at_level("INFO"):
        assert module.handler(queued(event), None) == {"batchItemFailures": []}
    [outcome] = outcomes(caplog)
    assert outcome["status"] == "started"
    assert len(job_runs(glue)) == 1
    record = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert record["taken_over"] is True and record["job_run_id"] == outcome["job_run_id"]


def test_a_run_started_but_not_recorded_is_found_and_not_started_again(module, aws, caplog):
    s3, glue = aws
    event = written(s3)
    key = claim(s3, module, claimed_at=datetime.now(UTC) - timedelta(seconds=5))
    plan = run_plan(module, s3)
    started = glue.start_job_run(JobName=JOB, Arguments=dict(plan.arguments))["JobRunId"]

    with caplog.at_level("INFO"):
        module.handler(queued(event), None)
    assert outcomes(caplog) == [
        {"status": "duplicate", "dataset": "bank-marketing", "run_id": plan.run_id, "job_run_id": started}
    ]
    assert len(job_runs(glue)) == 1
    assert json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())["job_run_id"] == started


def test_glue_refusing_the_run_reports_the_message_for_a_retry(module, aws, monkeypatch, caplog):
    from botocore.exceptions import ClientError

    def refuse(**kwargs):
        raise ClientError({"Error": {"Code": "ConcurrentRunsExceededException", "Message": "too many"}}, "StartJobRun")

    monkeypatch.setattr(module.GLUE, "start_job_run", refuse)
    batch = queued(written(aws[0]))
    with caplog.at_level("INFO"):
        assert failed(module.handler(batch, None), batch)
    assert "ConcurrentRunsExceededException" in caplog.text


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
def test_a_claim_s3_finds_taken_is_a_duplicate(module, aws, reworded, caplog):
    s3, glue = aws
    taken = PRECONDITION_FAILED.reworded() if reworded else PRECONDITION_FAILED
    claims(module, s3, lambda key: taken if exists(lambda: s3.head_object(Bucket=BUCKET, Key=key)) else None)
    event = written(s3)
    with caplog.at_level("INFO"):
        module.handler(queued(event), None)
        module.handler(queued(event), None)
    first, second = outcomes(caplog)
    assert first["status"] == "started" and second == {**first, "status": "duplicate"}
    assert len(job_runs(glue)) == 1


@pytest.mark.parametrize("reworded", [False, True], ids=["aws-wording", "other-wording"])
def test_a_claim_s3_could_not_decide_is_retried_later(module, aws, reworded, caplog):
    s3, glue = aws
    conflict = CONDITIONAL_REQUEST_CONFLICT.reworded() if reworded else CONDITIONAL_REQUEST_CONFLICT
    claims(module, s3, lambda key: conflict)
    batch = queued(written(s3))
    with caplog.at_level("INFO"):
        assert failed(module.handler(batch, None), batch)
    assert "met a conflicting write; retrying later" in caplog.text
    assert job_runs(glue) == []
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == [
        "raw/bank-marketing/bank-additional.csv"
    ]


def test_any_other_refusal_of_the_claim_is_reported_for_a_retry(module, aws, caplog):
    s3, glue = aws
    claims(module, s3, lambda key: AwsError("AccessDenied", "Access Denied", status=403))
    batch = queued(written(s3))
    with caplog.at_level("INFO"):
        assert failed(module.handler(batch, None), batch)
    assert "AccessDenied" in caplog.text
    assert job_runs(glue) == []


def test_a_later_file_supersedes_an_earlier_one_whatever_their_names(module, aws, caplog):
    """Arrival decides, not the key's order: a file named before another but written after it
    takes the run over."""
    s3, glue = aws
    first = written(s3, "raw/bank-marketing/part-9.csv")
    second = written(s3, "raw/bank-marketing/part-0.csv")
    first["time"] = iso(datetime.fromisoformat(second["time"]) - timedelta(minutes=1))
    with caplog.at_level("INFO"):
        module.handler(queued(first), None)
    assert job_runs(glue) == []
    [waiting] = outcomes(caplog)
    assert "raw/bank-marketing/part-0.csv arrived after raw/bank-marketing/part-9.csv" in waiting["reason"]


def test_a_file_written_before_the_event_does_not_hold_the_run_back(module, aws, caplog):
    """Only what arrived after this event's object counts: an older file of the dataset, and
    the event's own object stamped a second after the event (S3's LastModified and the event's
    time come from two clocks), leave the run to start."""
    s3, _ = aws
    written(s3, "raw/bank-marketing/older.csv")
    event = written(s3, "raw/bank-marketing/newer.csv")
    event["time"] = iso(datetime.fromisoformat(event["time"]) + timedelta(minutes=1))
    with caplog.at_level("INFO"):
        module.handler(queued(event), None)
    [outcome] = outcomes(caplog)
    assert outcome["status"] == "started", outcome
    own = written(s3, "raw/car-evaluation/car.data")  # alone in its dataset
    own["time"] = iso(datetime.fromisoformat(own["time"]) - timedelta(seconds=1))
    caplog.clear()
    with caplog.at_level("INFO"):
        module.handler(queued(own), None)
    [outcome] = outcomes(caplog)
    assert outcome["status"] == "started", outcome


def test_the_log_says_whether_the_run_was_started_now_or_before(module, aws, caplog):
    s3, _ = aws
    event = written(s3)
    with caplog.at_level("INFO"):
        module.handler(queued(event), None)
        module.handler(queued(event), None)
    first, second = [r.getMessage() for r in caplog.records if hasattr(r, "outcome")]
    assert first.startswith("started: run ") and " started as job run jr_" in first and "already" not in first
    assert second.startswith("duplicate: run ") and " already started as job run jr_" in second
