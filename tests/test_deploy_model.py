"""deploy_model against moto's CloudFormation: the update request, already-live, busy stacks,
and packages of other groups. CloudFormation's refusals of UpdateStack are AWS's, on the wire
(tests/aws_errors.py): moto neither refuses a busy stack nor an update that changes nothing."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.aws_errors import NO_UPDATES, Answers, AwsError, always, stack_busy
from tests.functions import ENVIRONMENTS, changed, event_fixture, fake_credentials, load_function, queued

SETTINGS = ENVIRONMENTS["deploy_model"]
GROUP = SETTINGS["MODEL_PACKAGE_GROUP"]
STACK = SETTINGS["STACK_NAME"]
ROLE = SETTINGS["CLOUDFORMATION_ROLE_ARN"]
PACKAGE = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlplatform-dev-bank-marketing/3"
TEMPLATE = {
    "Parameters": {
        "ModelPackageArn": {"Type": "String", "Default": ""},
        "BootstrapVersion": {"Type": "String", "Default": "/cdk-bootstrap/hnb659fds/version"},
    },
    "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
}


@pytest.fixture
def aws(monkeypatch):
    fake_credentials(monkeypatch)
    with mock_aws():
        cfn = boto3.client("cloudformation")
        cfn.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(TEMPLATE),
            Parameters=[{"ParameterKey": "BootstrapVersion", "ParameterValue": "/cdk-bootstrap/custom/version"}],
        )
        registry = boto3.client("sagemaker")
        registry.create_model_package_group(ModelPackageGroupName=GROUP)
        for _ in range(3):  # versions 1 to 3 of the group; the third (PACKAGE) is approved
            register(registry)
        registry.update_model_package(ModelPackageArn=PACKAGE, ModelApprovalStatus="Approved")
        yield cfn


def register(registry, group: str = GROUP) -> str:
    """A new version of ``group``, waiting for approval, as register_model leaves one."""
    created = registry.create_model_package(ModelPackageGroupName=group, ModelApprovalStatus="PendingManualApproval")
    return created["ModelPackageArn"]


@pytest.fixture
def module(aws, monkeypatch):
    return load_function("deploy_model", monkeypatch)


def run(module, event):
    """deploy_model on one event, with the clients and settings its handler uses (the handler
    itself takes batches from the stack's queue: tested at the end)."""
    return module.deploy_model(event, module.CLOUDFORMATION, module.SAGEMAKER, module.SETTINGS)


def approved(package: str = PACKAGE, group: str = GROUP, status: str = "Approved") -> dict:
    return {
        "version": "0",
        "id": "7d1d8ae0-0000-4000-8000-000000000003",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2026-11-12T11:00:00Z",
        "region": "eu-west-1",
        "resources": [package],
        "detail": {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": 3,
            "ModelPackageArn": package,
            "ModelApprovalStatus": status,
        },
    }


def parameters(cfn) -> dict[str, str]:
    [stack] = cfn.describe_stacks(StackName=STACK)["Stacks"]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}


def test_an_approved_package_updates_the_stack_with_the_previous_template_and_the_deployment_role(module, aws, caplog):
    sent = {}
    module.CLOUDFORMATION.meta.events.register(
        "provide-client-params.cloudformation.UpdateStack", lambda params, **_: sent.setdefault("UpdateStack", params)
    )
    with caplog.at_level("INFO"):
        result = run(module, approved())
    assert result == {"status": "updating", "model_package": PACKAGE, "previous": ""}
    request = sent["UpdateStack"]
    assert request["UsePreviousTemplate"] is True and request["RoleARN"] == ROLE
    assert request["Parameters"] == [
        {"ParameterKey": "ModelPackageArn", "ParameterValue": PACKAGE},
        {"ParameterKey": "BootstrapVersion", "UsePreviousValue": True},
    ]
    assert parameters(aws) == {"ModelPackageArn": PACKAGE, "BootstrapVersion": "/cdk-bootstrap/custom/version"}
    assert "event for" not in caplog.text  # the event named the package that goes live


def test_a_package_already_live_is_a_no_op(module, aws):
    run(module, approved())
    assert run(module, approved()) == {"status": "already-live", "model_package": PACKAGE}


def moto_stack():
    from moto.cloudformation.models import cloudformation_backends

    [stack] = cloudformation_backends["123456789012"]["eu-west-1"].stacks.values()
    return stack


def calls(client, operation: str) -> list[dict]:
    """The parameters of each call of ``operation`` the client makes from now on."""
    made: list[dict] = []
    client.meta.events.register(
        f"provide-client-params.cloudformation.{operation}", lambda params, **_: made.append(dict(params))
    )
    return made


@pytest.mark.parametrize(
    "status",
    [
        "UPDATE_IN_PROGRESS",
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_ROLLBACK_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_ROLLBACK_FAILED",
    ],
)
def test_a_busy_stack_is_retried_later_not_updated(module, aws, status):
    stack = moto_stack()
    stack.status = status  # the emulator's state, as a running (or stuck) update leaves it
    with pytest.raises(module.StackBusy, match=f"is {status}; retrying the rollout"):
        run(module, approved())
    stack.status = "UPDATE_COMPLETE"
    assert parameters(aws)["ModelPackageArn"] == ""


@pytest.mark.parametrize(
    "status",
    ["CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"],
)
def test_a_stack_at_rest_is_updated_even_after_a_rolled_back_rollout(module, aws, status):
    """A rollout that failed and rolled back leaves UPDATE_ROLLBACK_COMPLETE: the next approval
    still goes live."""
    moto_stack().status = status
    assert run(module, approved()) == {"status": "updating", "model_package": PACKAGE, "previous": ""}
    assert parameters(aws)["ModelPackageArn"] == PACKAGE


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (
            approved(group="mlplatform-dev-car-evaluation"),
            "is not an approved package of mlplatform-dev-bank-marketing",
        ),
        # A dataset whose name is a prefix of this one's: its group sorts before this group.
        (approved(group="mlplatform-dev-bank"), "is not an approved package of mlplatform-dev-bank-marketing"),
        (approved(status="Rejected"), "is not an approved package"),
    ],
)
def test_packages_of_other_groups_or_not_approved_are_ignored(module, aws, event, reason):
    result = run(module, event)
    assert result["status"] == "ignored" and reason in result["reason"]
    assert parameters(aws)["ModelPackageArn"] == ""


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (
            event_fixture("glue_job_state_change_failed.json"),
            "not a 'SageMaker Model Package State Change' event: source 'aws.glue'",
        ),
        (
            changed(approved(), "detail-type", "SageMaker Training Job State Change"),
            "detail-type 'SageMaker Training Job",
        ),
        (changed(approved(), "detail.ModelPackageArn", remove=True), "detail.ModelPackageArn is missing"),
        (changed(approved(), "detail.ModelPackageGroupName", ["x"]), "detail.ModelPackageGroupName must be a string"),
        (changed(approved(), "detail.ModelApprovalStatus", True), "detail.ModelApprovalStatus must be a string"),
        (changed(approved(), "detail", "Approved"), "detail must be an object"),
        (None, "not an EventBridge event"),
    ],
    ids=["glue-event", "training-event", "no-arn", "group-list", "approval-flag", "detail-text", "none"],
)
def test_an_event_deploy_model_does_not_understand_is_ignored_with_the_reason(module, aws, event, reason, caplog):
    described = calls(module.CLOUDFORMATION, "DescribeStacks")
    with caplog.at_level("INFO"):
        result = run(module, event)
    assert result["status"] == "ignored" and reason in result["reason"], result
    assert reason in caplog.text
    assert described == [] and parameters(aws)["ModelPackageArn"] == ""


@pytest.mark.parametrize("status", ["Pending", "InProgress", "Failed", "Deleting"])
def test_an_approved_package_that_is_not_complete_is_not_rolled_out(module, aws, status):
    event = changed(approved(), "detail.ModelPackageStatus", status)
    result = run(module, event)
    assert result == {"status": "ignored", "reason": f"{PACKAGE} is {status}, not Completed"}
    assert parameters(aws)["ModelPackageArn"] == ""


# --- UpdateStack refused: the code is CloudFormation's generic ValidationError, the stack says why ---


@pytest.mark.parametrize("reworded", [False, True], ids=["aws-wording", "other-wording"])
def test_a_stack_that_turns_busy_before_the_update_is_retried_later(module, aws, reworded):
    """DescribeStacks found the stack ready; another update started before ours reached it."""
    stack = moto_stack()

    def busy(params):
        stack.status = "UPDATE_IN_PROGRESS"  # the other update, as CloudFormation records it
        refusal = stack_busy(stack.stack_id, stack.status)
        return refusal.reworded() if reworded else refusal

    Answers.of(module.CLOUDFORMATION).on("UpdateStack", busy)
    described = calls(module.CLOUDFORMATION, "DescribeStacks")
    with pytest.raises(module.StackBusy, match="is UPDATE_IN_PROGRESS; retrying the rollout"):
        run(module, approved())
    assert len(described) == 2  # before the update, and after CloudFormation refused it
    stack.status = "UPDATE_COMPLETE"
    assert parameters(aws)["ModelPackageArn"] == ""


@pytest.mark.parametrize("reworded", [False, True], ids=["aws-wording", "other-wording"])
def test_a_package_rolled_out_meanwhile_by_another_delivery_is_already_live(module, aws, reworded):
    """Another delivery's update to this package completed between our DescribeStacks and our
    UpdateStack: CloudFormation has nothing to update."""

    def rolled_out(params):
        aws.update_stack(
            StackName=STACK,
            UsePreviousTemplate=True,
            Parameters=[
                {"ParameterKey": "ModelPackageArn", "ParameterValue": PACKAGE},
                {"ParameterKey": "BootstrapVersion", "UsePreviousValue": True},
            ],
        )
        return NO_UPDATES.reworded() if reworded else NO_UPDATES

    Answers.of(module.CLOUDFORMATION).on("UpdateStack", rolled_out)
    assert run(module, approved()) == {"status": "already-live", "model_package": PACKAGE}


def test_a_validation_error_the_stack_does_not_explain_is_raised_as_sent(module, aws):
    refusal = AwsError("ValidationError", f"Role {ROLE} is invalid or cannot be assumed")
    Answers.of(module.CLOUDFORMATION).on("UpdateStack", always(refusal))
    with pytest.raises(ClientError) as raised:
        run(module, approved())
    assert raised.value.operation_name == "UpdateStack"
    assert raised.value.response["Error"] == {"Type": "Sender", "Code": "ValidationError", "Message": refusal.message}
    assert parameters(aws)["ModelPackageArn"] == ""


def test_other_refusals_are_raised_without_reading_the_stack_again(module, aws):
    refusal = AwsError("InsufficientCapabilitiesException", "Requires capabilities : [CAPABILITY_NAMED_IAM]")
    Answers.of(module.CLOUDFORMATION).on("UpdateStack", always(refusal))
    described = calls(module.CLOUDFORMATION, "DescribeStacks")
    with pytest.raises(ClientError, match="InsufficientCapabilitiesException"):
        run(module, approved())
    assert len(described) == 1


# --- what goes live: the registry's newest approved package of the stack's own group ---------


def test_a_late_approval_of_an_older_package_does_not_roll_the_endpoint_back(module, aws):
    run(module, approved())  # version 3 goes live
    registry = boto3.client("sagemaker")
    older = PACKAGE.replace("/3", "/2")
    registry.update_model_package(ModelPackageArn=older, ModelApprovalStatus="Approved")
    assert run(module, approved(older)) == {"status": "already-live", "model_package": PACKAGE}
    assert parameters(aws)["ModelPackageArn"] == PACKAGE


def test_an_approval_during_a_rollout_is_applied_by_the_next_event_whatever_it_names(module, aws):
    """Version 4 approved while version 3's event is still retried: the retry deploys 4."""
    registry = boto3.client("sagemaker")
    newer = register(registry)
    registry.update_model_package(ModelPackageArn=newer, ModelApprovalStatus="Approved")
    result = run(module, approved())  # the event of version 3
    assert result == {"status": "updating", "model_package": newer, "previous": ""}


@pytest.mark.parametrize(
    "named",
    [
        "arn:aws:sagemaker:eu-west-1:210987654321:model-package/mlplatform-dev-bank-marketing/9",
        "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlplatform-dev-car-evaluation/3",
        "",
    ],
    ids=["another-account", "another-group", "empty"],
)
def test_the_arn_an_event_names_never_picks_the_model(module, aws, named, caplog):
    with caplog.at_level("INFO"):
        result = run(module, approved(named))
    assert result["status"] == "updating" and result["model_package"] == PACKAGE
    assert parameters(aws)["ModelPackageArn"] == PACKAGE
    # The log tells the operators that what went live is not what the event named.
    assert f"event for {named!r}; the newest approved package of {GROUP} is {PACKAGE}" in caplog.text


@pytest.mark.parametrize("status", ["Pending", "InProgress", "Failed", "Deleting"])
def test_a_newer_approved_package_that_is_not_complete_is_passed_over(module, aws, status):
    """Version 4 is approved but its ModelPackageStatus is not Completed (still being created,
    failed, being deleted): the newest Completed one, version 3, goes live."""
    from moto.sagemaker.models import sagemaker_backends

    registry = boto3.client("sagemaker")
    newer = register(registry)
    registry.update_model_package(ModelPackageArn=newer, ModelApprovalStatus="Approved")
    sagemaker_backends["123456789012"]["eu-west-1"].model_packages[newer].model_package_status = status
    result = run(module, approved())
    assert result == {"status": "updating", "model_package": PACKAGE, "previous": ""}
    assert parameters(aws)["ModelPackageArn"] == PACKAGE


def test_a_group_with_no_approved_completed_package_deploys_nothing(module, aws):
    boto3.client("sagemaker").update_model_package(ModelPackageArn=PACKAGE, ModelApprovalStatus="Rejected")
    result = run(module, approved())
    assert result == {
        "status": "ignored",
        "reason": f"{GROUP} has no Approved package whose status is Completed",
    }
    assert parameters(aws)["ModelPackageArn"] == ""


# --- the handler: approvals from the stack's queue, a busy stack's message handed back ----------


def test_an_approval_that_finds_a_rollout_running_comes_back_from_the_queue(module, aws, caplog):
    stack = moto_stack()
    stack.status = "UPDATE_IN_PROGRESS"
    batch = queued(approved())
    message = batch["Records"][0]["messageId"]
    with caplog.at_level("INFO"):
        assert module.handler(batch, None) == {"batchItemFailures": [{"itemIdentifier": message}]}
    assert "retrying later" in caplog.text
    stack.status = "UPDATE_COMPLETE"  # the rollout is over: the message, handed back, is applied
    assert module.handler(batch, None) == {"batchItemFailures": []}
    assert parameters(aws)["ModelPackageArn"] == PACKAGE


def test_a_message_the_handler_cannot_read_is_ignored_and_the_others_applied(module, aws, caplog):
    batch = queued(approved(), "not json")
    with caplog.at_level("INFO"):
        assert module.handler(batch, None) == {"batchItemFailures": []}
    assert "the message body is not JSON" in caplog.text
    assert parameters(aws)["ModelPackageArn"] == PACKAGE


def with_answer_parameter(cfn, name: str) -> None:
    """The hosting stack of a stage that monitors model quality: it has ``name`` (stacks/hosting.py)."""
    cfn.delete_stack(StackName=STACK)
    template = {**TEMPLATE, "Parameters": {**TEMPLATE["Parameters"], name: {"Type": "String", "Default": ""}}}
    bootstrap = [{"ParameterKey": "BootstrapVersion", "ParameterValue": "/cdk-bootstrap/custom/version"}]
    cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(template), Parameters=bootstrap)


def approve_with(module, metadata: dict[str, str]) -> str:
    """A newer package (version 4) that records ``metadata``, approved."""
    package = module.SAGEMAKER.create_model_package(
        ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved", CustomerMetadataProperties=metadata
    )["ModelPackageArn"]
    return package


@pytest.mark.parametrize(
    ("name", "metadata", "expected"),
    [
        ("DecisionThreshold", {"decision_threshold": "0.312500"}, "0.312500"),
        ("LabelColumn", {"classes": "4"}, "4"),
    ],
)
def test_the_package_goes_live_with_how_to_read_its_answers(module, aws, name, metadata, expected):
    """The model-quality job reads a binary answer at the live model's own threshold, a multiclass
    answer's label after its classes' probabilities: both set in the same update as the package."""
    with_answer_parameter(aws, name)
    package = approve_with(module, {"dataset": "bank-marketing", **metadata})
    assert run(module, approved(package))["status"] == "updating"
    assert parameters(aws)[name] == expected and parameters(aws)["ModelPackageArn"] == package


@pytest.mark.parametrize("recorded", [{}, {"decision_threshold": "inf"}, {"decision_threshold": "0.5; x"}])
def test_a_package_that_records_no_threshold_goes_live_unmonitored(module, aws, recorded, caplog):
    """Not registered by the platform, or a threshold the parameter cannot take: the model still
    goes live; its model quality is not monitored (the parameter empty), and the log says why."""
    with_answer_parameter(aws, "DecisionThreshold")
    package = approve_with(module, {"dataset": "bank-marketing", **recorded})
    assert run(module, approved(package))["status"] == "updating"
    assert parameters(aws) == {
        "ModelPackageArn": package,
        "BootstrapVersion": "/cdk-bootstrap/custom/version",
        "DecisionThreshold": "",
    }
    assert "its model quality is not monitored" in caplog.text


def test_a_stack_without_model_quality_never_reads_the_package(module, aws):
    described = []
    module.SAGEMAKER.meta.events.register(
        "provide-client-params.sagemaker.DescribeModelPackage", lambda params, **_: described.append(params)
    )
    assert run(module, approved())["status"] == "updating"
    assert described == []
