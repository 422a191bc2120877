"""StudioStack: a VpcOnly Studio domain (dev, prod) or a notebook instance (a variant), and the
data scientists' role scoped as the platform promises."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from stacks.data import DataStack
from stacks.foundation import Foundation
from stacks.network import NetworkStack
from stacks.studio import StudioStack
from tests.helpers import properties, resources


def studio(stage) -> Template:
    return stage.templates["studio"]


def statements(template: Template) -> list[dict]:
    return [s for p in properties(template, "AWS::IAM::Policy") for s in p["PolicyDocument"]["Statement"]]


def actions(statement: dict) -> list[str]:
    return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]


def variant(stage_config, lone_app, **workspace) -> Template:
    config = stage_config(workspace={"kind": "studio", "users": ["alice", "bob"], **workspace})
    app = lone_app()
    data = DataStack(app, "Data", config=config)
    network = NetworkStack(app, "Network", config=config, key=data.key)
    roles = cdk.Stack(app, "Roles")
    execution = iam.Role(roles, "Execution", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    stack = StudioStack(
        app,
        "Studio",
        foundation=Foundation.of(config, {}, data, network),
        execution_role=execution,
        model_package_group_prefix="mlplatform-variant",
    )
    return Template.from_stack(stack)


def test_domain_is_vpc_only_iam_authenticated_and_encrypted(stage):
    [domain] = properties(studio(stage), "AWS::SageMaker::Domain")
    assert domain["AppNetworkAccessType"] == "VpcOnly" and domain["AuthMode"] == "IAM"
    assert "KmsKeyId" in domain and len(domain["SubnetIds"]) >= 2
    assert domain["DomainSettings"]["ExecutionRoleIdentityConfig"] == "USER_PROFILE_NAME"


def test_idle_apps_shut_down_and_sharing_is_off_by_default(stage):
    [domain] = properties(studio(stage), "AWS::SageMaker::Domain")
    settings = domain["DefaultUserSettings"]
    idle = settings["JupyterLabAppSettings"]["AppLifecycleManagement"]["IdleSettings"]
    assert (
        idle["LifecycleManagement"] == "ENABLED" and idle["IdleTimeoutInMinutes"] == stage.config.workspace.idle_minutes
    )
    assert settings["SharingSettings"] == {"NotebookOutputOption": "Disabled"}


def test_a_user_profile_per_configured_user(dev):
    profiles = properties(studio(dev), "AWS::SageMaker::UserProfile")
    assert sorted(p["UserProfileName"] for p in profiles) == ["alice", "bob"]


def test_domain_is_retained_in_prod(prod):
    [domain] = resources(studio(prod), "AWS::SageMaker::Domain").values()
    assert domain["DeletionPolicy"] == "Retain"


def test_data_scientists_read_data_own_a_sandbox_and_delete_nothing_else(stage):
    found = statements(studio(stage))
    for statement in found:
        for action in actions(statement):
            assert action != "*" and not action.endswith(":*"), statement
        if any(a.startswith("s3:DeleteObject") for a in actions(statement)):
            assert "/sandbox/${aws:SourceIdentity}/*" in json.dumps(statement["Resource"]), statement
    text = json.dumps(found)
    assert "/raw/*" in text and "/prepared/*" in text
    assert "sagemaker:UpdateModelPackage" not in text


def test_data_scientists_pass_only_the_platform_execution_role(stage):
    passes = [s for s in statements(studio(stage)) if "iam:PassRole" in actions(s)]
    assert len(passes) == 1 and "ExecutionRole" in json.dumps(passes[0]["Resource"])
    creates = [s for s in statements(studio(stage)) if "sagemaker:CreateTrainingJob" in actions(s)]
    assert creates and {"sagemaker:CreateProcessingJob", "sagemaker:CreateTransformJob"} <= set(actions(creates[0]))


def test_data_scientists_cannot_put_the_platforms_tag_keys_on_a_job(stage):
    """register_model trusts jobs by the platform's tag keys (ml-platform:*), which only
    start_training sets: every create or tag request of the data scientists naming one is denied."""
    denies = [s for s in statements(studio(stage)) if s["Effect"] == "Deny" and s.get("Sid") == "NoPlatformTagKeys"]
    assert len(denies) == 1
    [deny] = denies
    assert deny["Condition"] == {"ForAnyValue:StringLike": {"aws:TagKeys": ["ml-platform:*"]}}
    assert {"sagemaker:CreateTrainingJob", "sagemaker:CreateHyperParameterTuningJob", "sagemaker:AddTags"} <= set(
        actions(deny)
    )
    assert deny["Resource"] == "*"


def test_registry_is_read_only_unless_the_team_approves_models(stage_config, lone_app):
    template = variant(stage_config, lone_app, team_approves_models=True)
    updates = [s for s in statements(template) if "sagemaker:UpdateModelPackage" in actions(s)]
    assert updates and "model-package/mlplatform-variant-*" in json.dumps(updates[0]["Resource"])


def test_per_user_roles_each_get_their_own_sandbox(stage_config, lone_app):
    template = variant(stage_config, lone_app, per_user_roles=True)
    text = json.dumps(statements(template))
    assert "/sandbox/alice/*" in text and "/sandbox/bob/*" in text
    profiles = properties(template, "AWS::SageMaker::UserProfile")
    roles = {json.dumps(p["UserSettings"]["ExecutionRole"]) for p in profiles}
    [domain] = properties(template, "AWS::SageMaker::Domain")
    # Two roles of their own, neither the domain default (for profiles made outside the config).
    assert len(roles) == 2 and json.dumps(domain["DefaultUserSettings"]["ExecutionRole"]) not in roles


def test_sharing_to_the_artifacts_bucket_is_encrypted(stage_config, lone_app):
    template = variant(stage_config, lone_app, sharing="artifacts")
    [domain] = properties(template, "AWS::SageMaker::Domain")
    sharing = domain["DefaultUserSettings"]["SharingSettings"]
    assert sharing["NotebookOutputOption"] == "Allowed" and "S3KmsKeyId" in sharing
    assert "/sharing/" in json.dumps(sharing["S3OutputPath"])


def test_notebook_instance_has_no_internet_no_root_kms_and_idle_stop(stage_config, lone_app):
    template = variant(stage_config, lone_app, kind="notebook", idle_minutes=90)
    [notebook] = properties(template, "AWS::SageMaker::NotebookInstance")
    assert notebook["DirectInternetAccess"] == "Disabled" and notebook["RootAccess"] == "Disabled"
    assert "KmsKeyId" in notebook and "SubnetId" in notebook and notebook["SecurityGroupIds"]
    [lifecycle] = properties(template, "AWS::SageMaker::NotebookInstanceLifecycleConfig")
    script = lifecycle["OnStart"][0]["Content"]["Fn::Base64"]  # CloudFormation encodes it
    assert "idle_stop.py 90" in script and "stop-notebook-instance" in script and "__IDLE_MINUTES__" not in script
    template.resource_count_is("AWS::SageMaker::Domain", 0)


def test_studio_without_its_endpoints_fails_with_a_clear_message(stage_config):
    from config import ConfigError

    with pytest.raises(
        ConfigError, match=r"a studio workspace in a VPC without internet needs .* add sagemaker\.studio"
    ):
        stage_config(
            network={"interface_endpoints": ["sagemaker.api", "sagemaker.runtime", "sts", "logs"]},
            workspace={"kind": "studio"},
        )
