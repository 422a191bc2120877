"""deploy_model against moto's CloudFormation: the update request, already-live, busy stacks,
and packages of other groups."""

from __future__ import annotations

import importlib.util
import json
import sys

import boto3
import pytest
from moto import mock_aws

from tests.conftest import ROOT

GROUP = "mlplatform-dev-bank-marketing"
STACK = "MlPlatform-dev-Hosting-bank-marketing"
ROLE = "arn:aws:iam::123456789012:role/hosting-deployment"
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
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "STACK_NAME": STACK,
        "MODEL_PACKAGE_GROUP": GROUP,
        "CLOUDFORMATION_ROLE_ARN": ROLE,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        cfn = boto3.client("cloudformation")
        cfn.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(TEMPLATE),
            Parameters=[{"ParameterKey": "BootstrapVersion", "ParameterValue": "/cdk-bootstrap/custom/version"}],
        )
        yield cfn


@pytest.fixture
def module(aws, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "deploy_model_under_test", ROOT / "lambda" / "deploy_model" / "handler.py"
    )
    loaded = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "deploy_model_under_test", loaded)
    spec.loader.exec_module(loaded)
    return loaded


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


def test_an_approved_package_updates_the_stack_with_the_previous_template_and_the_deployment_role(module, aws):
    sent = {}
    module.CLOUDFORMATION.meta.events.register(
        "provide-client-params.cloudformation.UpdateStack", lambda params, **_: sent.setdefault("UpdateStack", params)
    )
    result = module.handler(approved(), None)
    assert result == {"status": "updating", "model_package": PACKAGE, "previous": ""}
    request = sent["UpdateStack"]
    assert request["UsePreviousTemplate"] is True and request["RoleARN"] == ROLE
    assert request["Parameters"] == [
        {"ParameterKey": "ModelPackageArn", "ParameterValue": PACKAGE},
        {"ParameterKey": "BootstrapVersion", "UsePreviousValue": True},
    ]
    assert parameters(aws) == {"ModelPackageArn": PACKAGE, "BootstrapVersion": "/cdk-bootstrap/custom/version"}


def test_a_package_already_live_is_a_no_op(module, aws):
    module.handler(approved(), None)
    assert module.handler(approved(), None) == {"status": "already-live", "model_package": PACKAGE}


def test_a_busy_stack_is_retried_later_not_updated(module, aws):
    from moto.cloudformation.models import cloudformation_backends

    [stack] = cloudformation_backends["123456789012"]["eu-west-1"].stacks.values()
    stack.status = "UPDATE_IN_PROGRESS"  # the emulator's state, as a running update leaves it
    with pytest.raises(module.StackBusy, match="is UPDATE_IN_PROGRESS; retrying the rollout"):
        module.handler(approved(), None)
    stack.status = "UPDATE_COMPLETE"
    assert parameters(aws)["ModelPackageArn"] == ""


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (
            approved(group="mlplatform-dev-car-evaluation"),
            "is not an approved package of mlplatform-dev-bank-marketing",
        ),
        (approved(status="Rejected"), "is not an approved package"),
    ],
)
def test_packages_of_other_groups_or_not_approved_are_ignored(module, aws, event, reason):
    result = module.handler(event, None)
    assert result["status"] == "ignored" and reason in result["reason"]
    assert parameters(aws)["ModelPackageArn"] == ""
