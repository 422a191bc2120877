"""deploy_model where the stage monitors data quality: an approval starts the model's Model Monitor
baseline job, and the job's end rolls the model out with its baseline, in one update (moto's
CloudFormation and SageMaker; the job's end as SageMaker's event documents it)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from tests.functions import ENVIRONMENTS, changed, event_fixture, load_function, queued
from tests.test_deploy_model import approved

SETTINGS = ENVIRONMENTS["deploy_model"]
GROUP, STACK = SETTINGS["MODEL_PACKAGE_GROUP"], SETTINGS["STACK_NAME"]
ENDPOINT = SETTINGS["ENDPOINT_NAME"]
PACKAGE = f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/{GROUP}/3"
RUN = "20261112T100000Z-0123456789"
JOB = f"{ENDPOINT}-baseline-3"
BASELINE = f"s3://{SETTINGS['DATA_BUCKET']}/monitoring/bank-marketing/baselines/{JOB}/"
TEMPLATE = {
    "Parameters": {
        "ModelPackageArn": {"Type": "String", "Default": ""},
        "BaselineUri": {"Type": "String", "Default": ""},
    },
    "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
}
ENDED = event_fixture("sagemaker_processing_job_state_change.json")


@pytest.fixture
def aws(monkeypatch):
    with mock_aws():
        load_function("deploy_model", monkeypatch)  # the test credentials, before the first client
        boto3.client("cloudformation").create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(TEMPLATE),
            Parameters=[{"ParameterKey": key, "ParameterValue": ""} for key in TEMPLATE["Parameters"]],
        )
        registry = boto3.client("sagemaker")
        registry.create_model_package_group(ModelPackageGroupName=GROUP)
        for version in (1, 2, 3):
            registry.create_model_package(
                ModelPackageGroupName=GROUP,
                ModelApprovalStatus="PendingManualApproval",
                CustomerMetadataProperties=metadata(version),
            )
        # moto's UpdateModelPackage replaces the metadata with what the request gives (SageMaker
        # keeps what it does not name): the request gives it again.
        registry.update_model_package(
            ModelPackageArn=PACKAGE, ModelApprovalStatus="Approved", CustomerMetadataProperties=metadata(3)
        )
        yield registry


def metadata(version: int) -> dict[str, str]:
    """What register_model records of a package (version 3's run is RUN)."""
    return {"dataset": "bank-marketing", "run_id": RUN if version == 3 else f"{RUN[:-1]}{version}"}


@pytest.fixture
def module(aws, monkeypatch):
    return load_function("deploy_model", monkeypatch, DATA_QUALITY="true")


def run(module, event):
    return module.deploy_model(event, module.CLOUDFORMATION, module.SAGEMAKER, module.SETTINGS)


def parameters() -> dict[str, str]:
    [stack] = boto3.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}


def job_record(name: str = JOB):
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends["123456789012"]["eu-west-1"].processing_jobs[name]


def ended(status: str = "Completed", name: str = JOB) -> dict:
    """The job's end as SageMaker reports it, and its record in the emulator made to agree (moto
    completes a processing job the moment it is created)."""
    job_record(name).processing_job_status = status
    event = changed(ENDED, "detail.ProcessingJobStatus", status)
    return changed(event, "detail.ProcessingJobName", name)


def sent(client, operation: str) -> list[dict]:
    made: list[dict] = []
    service = client.meta.service_model.service_name
    client.meta.events.register(f"provide-client-params.{service}.{operation}", lambda params, **_: made.append(params))
    return made


def test_an_approval_starts_the_baseline_job_of_the_packages_run_and_updates_nothing(module, caplog):
    created = sent(module.SAGEMAKER, "CreateProcessingJob")
    with caplog.at_level("INFO"):
        assert run(module, approved(PACKAGE)) == {"status": "baselining", "model_package": PACKAGE, "job": JOB}
    [request] = created
    [source] = request["ProcessingInputs"]
    prepared = f"s3://{SETTINGS['DATA_BUCKET']}/prepared/bank-marketing/{RUN}/baseline/"
    assert source["S3Input"]["S3Uri"] == prepared
    assert f"started the baseline job {JOB} of {PACKAGE} on {prepared}" in caplog.text
    assert source["S3Input"]["LocalPath"] == request["Environment"]["dataset_source"]
    assert json.loads(request["Environment"]["dataset_format"]) == {
        "csv": {"header": False, "output_columns_position": "START"}
    }
    [output] = request["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["S3Uri"] == BASELINE.rstrip("/")
    assert output["S3Output"]["LocalPath"] == request["Environment"]["output_path"]
    assert request["AppSpecification"] == {"ImageUri": SETTINGS["ANALYZER_IMAGE"]}
    assert request["RoleArn"] == SETTINGS["ROLE_ARN"]
    # In the VPC, isolated, with the platform key for the volume and the output.
    assert request["NetworkConfig"] == {
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
        "VpcConfig": {"SecurityGroupIds": ["sg-jobs"], "Subnets": ["subnet-a", "subnet-b"]},
    }
    key = SETTINGS["KMS_KEY_ARN"]
    assert request["ProcessingOutputConfig"]["KmsKeyId"] == key
    assert request["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == key
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}
    assert tags["ml-platform:stage"] == "dev" and tags["ml-platform:run"] == RUN
    assert parameters() == {"ModelPackageArn": "", "BaselineUri": ""}


def test_a_redelivered_approval_finds_the_job_and_starts_no_other(module):
    run(module, approved(PACKAGE))
    job_record().processing_job_status = "InProgress"
    created = sent(module.SAGEMAKER, "CreateProcessingJob")
    assert run(module, approved(PACKAGE)) == {"status": "baselining", "model_package": PACKAGE, "job": JOB}
    assert created == []


def test_the_baseline_jobs_end_rolls_the_model_out_with_its_baseline_in_one_update(module):
    run(module, approved(PACKAGE))
    updates = sent(module.CLOUDFORMATION, "UpdateStack")
    result = run(module, ended("Completed"))
    assert result == {"status": "updating", "model_package": PACKAGE, "previous": "", "baseline": BASELINE}
    assert len(updates) == 1
    assert parameters() == {"ModelPackageArn": PACKAGE, "BaselineUri": BASELINE}
    # The same end delivered again changes nothing.
    assert run(module, ended("Completed")) == {"status": "already-live", "model_package": PACKAGE}


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_a_baseline_that_did_not_complete_rolls_the_model_out_unmonitored(module, status, caplog):
    run(module, approved(PACKAGE))
    with caplog.at_level("WARNING"):
        result = run(module, ended(status))
    assert result["status"] == "updating" and result["baseline"] == ""
    assert parameters() == {"ModelPackageArn": PACKAGE, "BaselineUri": ""}
    assert f"the baseline job {JOB} ended {status}" in caplog.text


@pytest.mark.parametrize(
    ("status", "recorded", "said"),
    [
        ("Failed", {"failure_reason": "AlgorithmError: See job logs for more information"}, "AlgorithmError: See"),
        ("Failed", {"exit_message": "Error: the baseline dataset is empty"}, "Error: the baseline dataset is empty"),
        (
            "Failed",
            {"failure_reason": "ClientError: no such key", "exit_message": "Error: exiting"},
            "ClientError: no such key",
        ),
        ("Stopped", {}, "no reason given"),
    ],
    ids=["failure-reason", "exit-message", "both", "none"],
)
def test_the_log_says_why_a_baseline_job_did_not_complete(module, status, recorded, said, caplog):
    """SageMaker's FailureReason, else the container's ExitMessage, else that it gave none."""
    run(module, approved(PACKAGE))
    event = ended(status)
    for field, value in recorded.items():
        setattr(job_record(), field, value)
    with caplog.at_level("WARNING"):
        assert run(module, event)["baseline"] == ""
    assert f"the baseline job {JOB} ended {status} ({said}" in caplog.text


def test_the_record_not_the_event_says_how_the_job_ended(module):
    run(module, approved(PACKAGE))
    job_record().processing_job_status = "Failed"
    event = changed(ENDED, "detail.ProcessingJobStatus", "Completed")  # a stale or forged event
    assert run(module, event)["baseline"] == ""


def test_an_approval_after_the_baseline_ended_rolls_out_at_once(module):
    run(module, approved(PACKAGE))  # moto's job is Completed at once: as if its event were lost
    assert run(module, approved(PACKAGE))["baseline"] == BASELINE
    assert parameters()["ModelPackageArn"] == PACKAGE


def test_the_end_of_a_superseded_packages_baseline_is_ignored(module, aws):
    run(module, approved(PACKAGE))
    newer = aws.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties={"dataset": "bank-marketing", "run_id": RUN},
    )["ModelPackageArn"]
    result = run(module, ended("Completed"))
    assert result["status"] == "ignored"
    assert f"not the baseline of the newest approved package ({newer})" in result["reason"]
    assert parameters()["ModelPackageArn"] == ""


def test_a_package_without_a_recorded_run_goes_live_unmonitored(module, aws, caplog):
    aws.create_model_package(ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved")  # version 4
    created = sent(module.SAGEMAKER, "CreateProcessingJob")
    with caplog.at_level("WARNING"):
        result = run(module, approved(PACKAGE))
    assert created == [] and result["status"] == "updating" and result["baseline"] == ""
    assert parameters()["ModelPackageArn"].endswith(f"/{GROUP}/4")
    assert "records no prepared run" in caplog.text


def test_a_baseline_that_ends_during_a_rollout_comes_back_from_the_queue(module):
    from moto.cloudformation.models import cloudformation_backends

    run(module, approved(PACKAGE))
    [stack] = cloudformation_backends["123456789012"]["eu-west-1"].stacks.values()
    stack.status = "UPDATE_IN_PROGRESS"
    batch = queued(ended("Completed"))
    assert module.handler(batch, None)["batchItemFailures"] == [{"itemIdentifier": batch["Records"][0]["messageId"]}]
    stack.status = "UPDATE_COMPLETE"
    assert module.handler(batch, None) == {"batchItemFailures": []}
    assert parameters() == {"ModelPackageArn": PACKAGE, "BaselineUri": BASELINE}


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (changed(ENDED, "detail.ProcessingJobName", "someone-elses-job"), "is not a baseline job of"),
        (changed(ENDED, "detail.ProcessingJobStatus", "InProgress"), "is InProgress, not ended"),
        (changed(ENDED, "detail.ProcessingJobName", remove=True), "detail.ProcessingJobName"),
        (changed(ENDED, "source", "aws.s3"), "source 'aws.s3'"),
    ],
)
def test_processing_job_events_deploy_model_does_not_act_on_are_ignored_with_the_reason(module, event, reason):
    result = run(module, event)
    assert result["status"] == "ignored" and reason in result["reason"]
    assert parameters()["ModelPackageArn"] == ""


def test_unmonitored_stages_ignore_a_baseline_jobs_end(aws, monkeypatch):
    module = load_function("deploy_model", monkeypatch, DATA_QUALITY="false")
    assert run(module, approved(PACKAGE))["status"] == "updating"  # at once, no baseline
    result = run(module, ENDED)
    assert result["status"] == "ignored"
