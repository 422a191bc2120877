"""lambda/check_drift against moto: a monitoring run's report (Model Monitor's violations format,
written to S3 as the analyzer writes it, its Object Created event as S3 documents it) read
against the live model's run, the operators' message, the drift metric, and the retraining
decision with its rate limit, started through the claim start_etl uses."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from tests.functions import ACCOUNT, DATA_BUCKET, ENVIRONMENTS, REGION, load_function, object_created

SETTINGS = ENVIRONMENTS["check_drift"]
STACK, JOB, TOPIC = SETTINGS["STACK_NAME"], SETTINGS["JOB_NAME"], SETTINGS["TOPIC_ARN"]
GROUP = "mlplatform-dev-bank-marketing"
# Model Monitor's layout: <output>/<endpoint>/<schedule>/<yyyy>/<mm>/<dd>/<hh>/.
RUN = "mlplatform-dev-bank-marketing/mlplatform-dev-bank-marketing-data-quality/2026/11/24/13"
REPORT = f"monitoring/bank-marketing/reports/{RUN}/constraint_violations.json"
RAW = "raw/bank-marketing/bank-additional.csv"
# The raw file's columns: the target (y) and a dropped one (duration) are not in a request.
SCHEMA = {
    "raw": {"delimiter": ";", "columns": ["age", "job", "duration", "campaign", "y"]},
    "input_columns": ["job", "age", "campaign"],
}
DRIFTED = {
    "violations": [
        {
            "feature_name": "_c0",
            "constraint_check_type": "baseline_drift_check",
            "description": "Baseline drift distance: 0.42 exceeds threshold: 0.1",
        },
        {
            "feature_name": "_c1",
            "constraint_check_type": "data_type_check",
            "description": "Data type match requirement is not met.",
        },
        {
            "feature_name": "_c0",
            "constraint_check_type": "completeness_check",
            "description": "Data completeness requirement is not met.",
        },
    ]
}


@pytest.fixture
def aws(monkeypatch):
    with mock_aws():
        module = load_function("check_drift", monkeypatch)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=DATA_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        boto3.client("glue").create_job(Name=JOB, Role=f"arn:aws:iam::{ACCOUNT}:role/glue", Command={"Name": "glueetl"})
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic = sns.create_topic(Name=TOPIC.rsplit(":", 1)[1])["TopicArn"]
        queue = sqs.create_queue(QueueName="operators")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
        yield module, s3, queue


def live(s3, run_id: str, *, with_package: bool = True) -> str:
    """A hosting stack serving version 1 of the group, registered from ``run_id`` with its schema
    (none recorded where ``run_id`` is empty)."""
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    package = sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties={"dataset": "bank-marketing", **({"run_id": run_id} if run_id else {})},
    )["ModelPackageArn"]
    template = {
        "Parameters": {"ModelPackageArn": {"Type": "String", "Default": ""}},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
    }
    boto3.client("cloudformation").create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "ModelPackageArn", "ParameterValue": package if with_package else ""}],
    )
    if run_id:
        s3.put_object(Bucket=DATA_BUCKET, Key=f"prepared/bank-marketing/{run_id}/schema.json", Body=json.dumps(SCHEMA))
    return package


def report(s3, document) -> dict:
    """The report written; its Object Created event."""
    body = (document if isinstance(document, str) else json.dumps(document)).encode()
    put = s3.put_object(Bucket=DATA_BUCKET, Key=REPORT, Body=body)
    return object_created(REPORT, size=len(body), etag=put["ETag"].strip('"'))


def raw_run_id(module, s3) -> str:
    """The run id of raw/bank-marketing/ as it is now."""
    runtime = module.runtime
    return runtime.snapshot(s3, module.SETTINGS.preparation, "bank-marketing").run_id


def earlier(run_id: str, hours: int = 1) -> str:
    """A run id of a snapshot whose newest file is ``hours`` older than ``run_id``'s."""
    moment = datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ") - timedelta(hours=hours)
    return f"{moment:%Y%m%dT%H%M%SZ}-0123456789"


def sent(sqs_queue) -> list[str]:
    messages = boto3.client("sqs").receive_message(QueueUrl=sqs_queue, MaxNumberOfMessages=10).get("Messages", [])
    return [m["Body"] for m in messages]


def metrics(capsys) -> list[dict]:
    """The embedded-metric-format records the function printed."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]


def run(module, event, now: datetime | None = None):
    m = module
    return m.check_drift(
        event, m.S3, m.CLOUDFORMATION, m.SAGEMAKER, m.GLUE, m.SNS, m.SETTINGS, now or datetime.now(UTC)
    )


def test_drift_on_the_trained_data_names_the_features_and_only_alerts(aws, capsys):
    module, s3, queue = aws
    s3.put_object(Bucket=DATA_BUCKET, Key=RAW, Body=b"age;job;duration;campaign;y\n41;admin.;10;1;no\n")
    run_id = raw_run_id(module, s3)
    package = live(s3, run_id)

    outcome = run(module, report(s3, DRIFTED))

    # _c0 is the request's first column, age (file order), not the spec's first feature (job).
    assert outcome["status"] == "drifted" and outcome["features"] == ["age", "job"]
    assert outcome["retraining"]["status"] == "no-new-data"
    [metric] = metrics(capsys)
    assert metric["DriftedFeatures"] == 2 and (metric["Stage"], metric["Dataset"]) == ("dev", "bank-marketing")
    assert metric["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MLPlatform"
    [text] = sent(queue)
    assert "2 feature(s)" in text and package in text and run_id in text
    assert (
        "- age: baseline_drift_check: Baseline drift distance: 0.42 exceeds threshold: 0.1; completeness_check" in text
    )
    assert "- job: data_type_check" in text
    assert "same data would give the same model" in text and text.endswith("Runbook: docs/runbook.md#drift")
    assert boto3.client("glue").get_job_runs(JobName=JOB)["JobRuns"] == []


def test_a_clean_report_publishes_zero_and_tells_nobody(aws, capsys):
    module, s3, queue = aws
    live(s3, "20261112T100000Z-0123456789")
    assert run(module, report(s3, {"violations": []})) == {"status": "clean", "features": []}
    [metric] = metrics(capsys)
    assert metric["DriftedFeatures"] == 0
    assert sent(queue) == []


def test_drift_with_new_data_starts_the_run_start_etl_would(aws, capsys):
    module, s3, queue = aws
    s3.put_object(Bucket=DATA_BUCKET, Key=RAW, Body=b"age;job;duration;campaign;y\n41;admin.;10;1;no\n")
    now_run = raw_run_id(module, s3)
    live(s3, earlier(now_run))

    outcome = run(module, report(s3, DRIFTED))

    retraining = outcome["retraining"]
    assert retraining["status"] == "started" and retraining["run_id"] == now_run
    [job_run] = boto3.client("glue").get_job_runs(JobName=JOB)["JobRuns"]
    assert job_run["Id"] == retraining["job_run_id"]
    assert job_run["Arguments"] == {
        "--input": f"s3://{DATA_BUCKET}/raw/bank-marketing/",
        "--spec": SETTINGS["SPEC_URI"],
        "--output": f"s3://{DATA_BUCKET}/prepared/bank-marketing/{now_run}/",
        "--seed": "42",
    }
    claim = json.loads(
        s3.get_object(Bucket=DATA_BUCKET, Key=f"prepared/bank-marketing/{now_run}/_RUN.json")["Body"].read()
    )
    assert claim["job_run_id"] == job_run["Id"] and claim["source"] == f"s3://{DATA_BUCKET}/{REPORT}"
    [text] = sent(queue)
    assert f"preparation run {now_run} started as job run {job_run['Id']}" in text

    # The same report again (a redelivery): the claim is found, nothing starts twice.
    again = run(module, report(s3, DRIFTED))
    assert again["retraining"]["status"] == "already-started"
    assert len(boto3.client("glue").get_job_runs(JobName=JOB)["JobRuns"]) == 1


def test_retraining_is_rate_limited_per_dataset(aws):
    module, s3, _ = aws
    s3.put_object(Bucket=DATA_BUCKET, Key=RAW, Body=b"age;job;duration;campaign;y\n41;admin.;10;1;no\n")
    live(s3, earlier(raw_run_id(module, s3)))
    glue = boto3.client("glue")

    def started(dataset: str, run_id: str, by: str) -> None:
        output = f"prepared/{dataset}/{run_id}/"
        arguments = {"--input": f"s3://{DATA_BUCKET}/raw/{dataset}/", "--output": f"s3://{DATA_BUCKET}/{output}"}
        glue.start_job_run(JobName=JOB, Arguments=arguments)
        s3.put_object(Bucket=DATA_BUCKET, Key=output + "_RUN.json", Body=json.dumps({"started_by": by}))

    # An upload's run (start_etl's) and another dataset's retraining do not count.
    started("bank-marketing", "20261101T000000Z-aaaaaaaaaa", "start_etl")
    started("car-evaluation", "20261101T000000Z-bbbbbbbbbb", "check_drift")
    assert run(module, report(s3, DRIFTED))["retraining"]["status"] == "started"

    # More new data an hour later: drift retrained bank-marketing less than 12 hours ago.
    s3.put_object(Bucket=DATA_BUCKET, Key=RAW + ".2", Body=b"age;job;duration;campaign;y\n42;admin.;10;1;no\n")
    limited = run(module, report(s3, DRIFTED), now=datetime.now(UTC) + timedelta(hours=1))["retraining"]
    assert limited["status"] == "rate-limited" and "monitoring.retrain_min_hours" in limited["detail"]
    assert len(glue.get_job_runs(JobName=JOB)["JobRuns"]) == 3

    later = run(module, report(s3, DRIFTED), now=datetime.now(UTC) + timedelta(hours=12, minutes=1))["retraining"]
    assert later["status"] == "started"
    assert len(glue.get_job_runs(JobName=JOB)["JobRuns"]) == 4


def test_runs_drift_did_not_start_do_not_count_against_the_rate_limit(aws):
    """A run of the dataset's raw data that a person started into another bucket, and one whose
    claim does not say who started it (as claims were written before they said), are not
    retrainings: drift with new data still starts one."""
    module, s3, _ = aws
    s3.put_object(Bucket=DATA_BUCKET, Key=RAW, Body=b"age;job;duration;campaign;y\n41;admin.;10;1;no\n")
    live(s3, earlier(raw_run_id(module, s3)))
    glue = boto3.client("glue")
    source = f"s3://{DATA_BUCKET}/raw/bank-marketing/"
    glue.start_job_run(
        JobName=JOB, Arguments={"--input": source, "--output": "s3://analysts-sandbox/prepared/bank-marketing/"}
    )
    output = "prepared/bank-marketing/20261101T000000Z-cccccccccc/"
    glue.start_job_run(JobName=JOB, Arguments={"--input": source, "--output": f"s3://{DATA_BUCKET}/{output}"})
    claim = {"dataset": "bank-marketing", "run_id": "20261101T000000Z-cccccccccc"}
    s3.put_object(Bucket=DATA_BUCKET, Key=output + "_RUN.json", Body=json.dumps(claim))

    assert run(module, report(s3, DRIFTED))["retraining"]["status"] == "started"
    assert len(glue.get_job_runs(JobName=JOB)["JobRuns"]) == 3


def test_a_model_without_a_recorded_run_keeps_the_analyzers_names_and_only_alerts(aws, capsys):
    module, s3, queue = aws
    live(s3, "")

    outcome = run(module, report(s3, DRIFTED))
    assert outcome["features"] == ["_c0", "_c1"] and outcome["retraining"]["status"] == "alert-only"
    [text] = sent(queue)
    assert "prepared run not recorded" in text
    # Every check of a feature is on its line, the analyzer's name as the report gives it.
    assert (
        "- _c0: baseline_drift_check: Baseline drift distance: 0.42 exceeds threshold: 0.1; completeness_check: "
        "Data completeness requirement is not met." in text.splitlines()
    )
    assert "- _c1: data_type_check: Data type match requirement is not met." in text.splitlines()


@pytest.mark.parametrize(("count", "more"), [(20, None), (25, "- and 5 more (see the report)")])
def test_a_message_names_twenty_features_at_most_and_counts_the_rest(aws, count, more):
    module, s3, queue = aws
    live(s3, "")
    many = {
        "violations": [
            {"feature_name": f"_c{i}", "constraint_check_type": "data_type_check", "description": "Not a number."}
            for i in range(count)
        ]
    }
    assert len(run(module, report(s3, many))["features"]) == count
    [text] = sent(queue)
    listed = [line for line in text.splitlines() if line.startswith("- _c")]
    assert len(listed) == 20 and f"{count} feature(s)" in text
    assert [line for line in text.splitlines() if "more (see the report)" in line] == ([more] if more else [])


def test_a_report_of_no_live_model_is_ignored(aws):
    module, s3, queue = aws
    live(s3, "20261112T100000Z-0123456789", with_package=False)
    outcome = run(module, report(s3, DRIFTED))
    assert outcome["status"] == "ignored" and "serves no model" in outcome["reason"]
    assert sent(queue) == []


@pytest.mark.parametrize("bucket", ["ml-platform-archive", "ml-platform-replica"])
def test_a_report_in_another_bucket_is_ignored(aws, bucket):
    """A copy of the reports (a replica, an archive) is not the platform's data bucket."""
    module, s3, queue = aws
    live(s3, "20261112T100000Z-0123456789")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    body = json.dumps(DRIFTED).encode()
    s3.put_object(Bucket=bucket, Key=REPORT, Body=body)
    outcome = run(module, object_created(REPORT, bucket=bucket, size=len(body)))
    assert outcome["status"] == "ignored" and f"is not under s3://{DATA_BUCKET}/" in outcome["reason"]
    assert sent(queue) == []


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("monitoring/bank-marketing/reports/x/statistics.json", "is not a constraint_violations.json"),
        ("monitoring/car-evaluation/reports/x/constraint_violations.json", "is not under"),
        ("raw/bank-marketing/constraint_violations.json", "is not under"),
    ],
)
def test_other_objects_are_ignored(aws, key, reason):
    module, _, _ = aws
    outcome = run(module, object_created(key))
    assert outcome["status"] == "ignored" and reason in outcome["reason"]


def test_another_event_is_ignored(aws):
    module, _, _ = aws
    outcome = run(module, {"source": "aws.sagemaker", "detail-type": "SageMaker Processing Job State Change"})
    assert outcome["status"] == "ignored"


@pytest.mark.parametrize(
    ("document", "said"),
    [
        ("not json", "not JSON"),
        ({"violation": []}, "no list of violations"),
        ({"violations": [{"feature_name": "_c0"}]}, "has no constraint_check_type"),
        ({"violations": [{"feature_name": 3, "constraint_check_type": "x"}]}, "are text"),
    ],
)
def test_a_report_in_another_format_fails_loudly(aws, document, said):
    module, s3, queue = aws
    live(s3, "20261112T100000Z-0123456789")
    with pytest.raises(module.ReportUnreadable, match=said):
        run(module, report(s3, document))
    assert sent(queue) == []


def test_a_report_larger_than_any_violations_report_is_refused_unread(aws):
    module, s3, queue = aws
    live(s3, "20261112T100000Z-0123456789")
    event = report(s3, DRIFTED)
    event["detail"]["object"]["size"] = module.MAX_REPORT_BYTES + 1
    with pytest.raises(module.ReportUnreadable, match="more than a report holds"):
        run(module, event)
    assert sent(queue) == []


def test_a_report_is_read_up_to_ten_mebibytes(aws):
    """The limit is far above any violations report: one of 10 MiB (whitespace after the JSON) is
    read; a byte more is refused unread."""
    module, s3, _ = aws
    live(s3, "")
    limit = 10 * 1024 * 1024
    document = json.dumps(DRIFTED)
    assert run(module, report(s3, document.ljust(limit)))["status"] == "drifted"
    with pytest.raises(module.ReportUnreadable, match=f"is {limit + 1} bytes, more than a report holds"):
        run(module, report(s3, document.ljust(limit + 1)))


def test_a_long_description_is_shortened_in_the_message(aws):
    module, s3, queue = aws
    s3.put_object(Bucket=DATA_BUCKET, Key=RAW, Body=b"age;job;duration;campaign;y\n41;admin.;10;1;no\n")
    live(s3, raw_run_id(module, s3))
    long = {
        "violations": [
            {"feature_name": "_c0", "constraint_check_type": "data_type_check", "description": "x" * 100_000}
        ]
    }
    run(module, report(s3, long))
    [text] = sent(queue)
    assert "x" * (module.MAX_DESCRIPTION - 1) + "…" in text and len(text) < 2_000
    assert f"- age: data_type_check: {'x' * 299}…" in text.splitlines()  # 300 characters, the ellipsis one


# --- model quality: a model-quality run's statistics (Model Monitor's documented shape) -------------

QUALITY_RUN = "mlplatform-dev-bank-marketing/mlplatform-dev-bank-marketing-model-quality/2026/11/24/13"
STATISTICS_KEY = f"monitoring/bank-marketing/reports/{QUALITY_RUN}/statistics.json"
# https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-metrics.html
STATISTICS = {
    "version": 0.0,
    "dataset": {"item_count": 240, "evaluation_time": "2026-11-24T13:05:12.000Z"},
    "binary_classification_metrics": {
        "confusion_matrix": {"0": {"0": 200, "1": 10}, "1": {"0": 12, "1": 18}},
        "recall": {"value": 0.6, "standard_deviation": 0.02},
        "auc": {"value": 0.8125, "standard_deviation": 0.01},
        "f1": {"value": 0.62, "standard_deviation": "NaN"},
    },
}


def statistics(s3, document, key: str = STATISTICS_KEY) -> dict:
    body = (document if isinstance(document, str) else json.dumps(document)).encode()
    put = s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body)
    return object_created(key, size=len(body), etag=put["ETag"].strip('"'))


def test_a_model_quality_run_publishes_the_live_models_objective_metric(aws, capsys):
    module, s3, queue = aws
    package = live(s3, "20261112T100000Z-0123456789")

    outcome = run(module, statistics(s3, STATISTICS))

    assert outcome == {"status": "measured", "metric": "auc", "value": 0.8125, "model_package": package}
    [record] = metrics(capsys)
    assert record["LiveModelQuality"] == 0.8125 and (record["Stage"], record["Dataset"]) == ("dev", "bank-marketing")
    assert "DriftedFeatures" not in record
    assert sent(queue) == []  # the alarm tells the operators, not a message per run


def test_a_model_quality_report_without_the_metric_fails_loudly(aws):
    module, s3, _ = aws
    live(s3, "20261112T100000Z-0123456789")
    no_auc = {"binary_classification_metrics": {"f1": {"value": 0.5}}}
    for document, reason in (
        (no_auc, "no number for auc"),
        ({"binary_classification_metrics": {"auc": {"value": "NaN"}}}, "no number for auc"),
        ({"binary_classification_metrics": {"auc": {"value": True}}}, "no number for auc"),
        ({"violations": []}, "not one of binary_classification_metrics"),
        ("[]", "not one of"),
        ("{", "not JSON"),
    ):
        with pytest.raises(module.ReportUnreadable, match=f"not a Model Monitor model-quality statistics: {reason}"):
            run(module, statistics(s3, document))


def test_other_objects_of_the_model_quality_schedule_are_ignored(aws, capsys):
    """Its violations (a run with constraints would write them) are not drift, and the data-quality
    schedule's statistics are not the model's quality."""
    module, s3, queue = aws
    live(s3, "20261112T100000Z-0123456789")
    violations = f"monitoring/bank-marketing/reports/{QUALITY_RUN}/constraint_violations.json"
    data_statistics = f"monitoring/bank-marketing/reports/{RUN}/statistics.json"
    for key in (violations, data_statistics):
        assert run(module, statistics(s3, DRIFTED, key))["status"] == "ignored", key
    assert metrics(capsys) == [] and sent(queue) == []


def test_a_stage_without_model_quality_ignores_its_statistics(aws, monkeypatch):
    module, s3, _ = aws
    live(s3, "20261112T100000Z-0123456789")
    settings = dataclasses.replace(module.SETTINGS, quality_metric="")
    outcome = module.check_drift(
        statistics(s3, STATISTICS), module.S3, module.CLOUDFORMATION, module.SAGEMAKER, module.GLUE, module.SNS,
        settings, datetime.now(UTC),
    )  # fmt: skip
    assert outcome["status"] == "ignored"


def test_a_model_quality_report_of_no_live_model_is_ignored(aws, capsys):
    module, s3, _ = aws
    live(s3, "20261112T100000Z-0123456789", with_package=False)
    assert run(module, statistics(s3, STATISTICS))["status"] == "ignored"
    assert metrics(capsys) == []
