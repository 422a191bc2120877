"""StudioStack: a VpcOnly Studio domain (dev, prod) or a notebook instance (a variant), and the
data scientists' role scoped as the platform promises."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Template

from stacks.data import DataStack
from stacks.foundation import Foundation
from stacks.network import NetworkStack
from stacks.studio import StudioStack
from tests.helpers import logical_id, properties, render, resources

PREFIX = {"dev": "mlplatform-dev", "prod": "mlplatform-prod"}  # the stages' resource prefixes


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
    jobs = cdk.Stack(app, "Jobs")
    security_group = ec2.SecurityGroup(jobs, "Jobs", vpc=network.vpc)
    stack = StudioStack(
        app,
        "Studio",
        foundation=Foundation.of(config, {}, data, network),
        jobs_security_group=security_group,
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


def test_data_scientists_pass_only_their_job_role_never_the_platforms_execution_role(stage):
    passes = [s for s in statements(studio(stage)) if "iam:PassRole" in actions(s)]
    assert len(passes) == 1 and passes[0]["Resource"] == {
        "Fn::GetAtt": [logical_id(studio(stage), "AWS::IAM::Role", "JobRole"), "Arn"]
    }
    assert passes[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_the_job_role_writes_only_the_sandboxes_and_reads_only_raw_and_prepared(stage):
    """Jobs a person starts cannot write the platform's models or data, nor delete anything."""
    template = studio(stage)
    job_role = logical_id(template, "AWS::IAM::Role", "JobRole")
    [policy] = [p for p in properties(template, "AWS::IAM::Policy") if p["Roles"] == [{"Ref": job_role}]]
    reads, writes = set(), set()
    for statement in policy["PolicyDocument"]["Statement"]:
        prefixes = {p for p in map(_object_prefix, _listed(statement["Resource"])) if p}
        if "s3:PutObject" in actions(statement):
            writes |= prefixes
        elif any(a.startswith("s3:Get") for a in actions(statement)):
            reads |= prefixes
        assert "s3:DeleteObject" not in actions(statement)
    assert writes == {"sandbox"}
    assert reads == {"raw", "prepared", "sandbox"}


def _listed(value):
    return value if isinstance(value, list) else [value]


def _object_prefix(resource) -> str | None:
    """``raw`` of ``{"Fn::Join": ["", [<bucket ARN>, "/raw/*"]]}``: the objects a statement names."""
    if isinstance(resource, dict) and "Fn::Join" in resource:
        tail = resource["Fn::Join"][1][-1]
        if isinstance(tail, str) and tail.startswith("/") and tail.endswith("/*"):
            return tail.strip("/*")
    return None


def test_every_job_and_model_a_data_scientist_creates_is_held_by_the_guardrails(stage):
    by_sid = {s.get("Sid"): s for s in statements(studio(stage))}
    jobs = by_sid["JobsInsideTheGuardrails"]
    assert set(actions(jobs)) == {
        "sagemaker:CreateTrainingJob",
        "sagemaker:CreateProcessingJob",
        "sagemaker:CreateHyperParameterTuningJob",
    }
    condition = jobs["Condition"]
    assert condition["Bool"] == {
        "sagemaker:NetworkIsolation": "true",
        "sagemaker:InterContainerTrafficEncryption": "true",
    }
    assert condition["Null"] == {"sagemaker:VpcSubnets": "false", "sagemaker:VpcSecurityGroupIds": "false"}
    assert set(condition["ForAllValues:StringEquals"]) == {"sagemaker:VpcSubnets", "sagemaker:VpcSecurityGroupIds"}
    assert set(condition["ArnEquals"]) == {"sagemaker:VolumeKmsKeyArn", "sagemaker:OutputKmsKeyArn"}
    assert "PlatformKey" in json.dumps(condition["ArnEquals"])
    assert by_sid["ModelsInsideTheGuardrails"]["Condition"]["Bool"] == {"sagemaker:NetworkIsolation": "true"}
    assert set(by_sid["TransformsUnderThePlatformKey"]["Condition"]["ArnEquals"]) == {
        "sagemaker:VolumeKmsKeyArn",
        "sagemaker:OutputKmsKeyArn",
    }
    # Every other statement that lets them create a job or model is a Deny.
    creating = [
        s
        for s in statements(studio(stage))
        if any((a.startswith("sagemaker:Create") and "Job" in a) or a == "sagemaker:CreateModel" for a in actions(s))
    ]
    assert all(s["Effect"] == "Deny" or "Condition" in s for s in creating)
    assert by_sid["NoPlatformModels"]["Effect"] == by_sid["NoTransformsWithPlatformModels"]["Effect"] == "Deny"
    assert render(by_sid["NoPlatformModels"]["Resource"]).endswith(f":model/{PREFIX[stage.config.name]}-*")
    assert render(by_sid["NoTransformsWithPlatformModels"]["Condition"]["ArnLike"]["sagemaker:ModelArn"]).endswith(
        f":model/{PREFIX[stage.config.name]}-*"
    )


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
    script = json.dumps(lifecycle["OnStart"][0]["Content"]["Fn::Base64"])  # CloudFormation encodes it
    assert "idle_stop.py 90" in script and "stop-notebook-instance" in script and "__IDLE_MINUTES__" not in script
    # The SDK's defaults for the notebook's jobs, in the administrator's file (the script runs as root).
    assert "/etc/xdg/sagemaker/config.yaml" in script and "sandbox/notebook/models" in script
    template.resource_count_is("AWS::SageMaker::Domain", 0)
    template.resource_count_is("AWS::SageMaker::StudioLifecycleConfig", 0)


def test_each_user_profile_runs_its_sdk_defaults_script_in_its_jupyterlab_apps(stage):
    """A JupyterLab lifecycle configuration per user profile writes the user's SageMaker Python SDK
    defaults file; the profile runs it by default at each start of its JupyterLab apps."""
    configs = resources(studio(stage), "AWS::SageMaker::StudioLifecycleConfig")
    profiles = properties(studio(stage), "AWS::SageMaker::UserProfile")
    assert len(configs) == len(profiles) == len(stage.config.workspace.users)
    for profile in profiles:
        user = profile["UserProfileName"]
        [(config_id, config)] = [
            (lid, r["Properties"])
            for lid, r in configs.items()
            if r["Properties"]["StudioLifecycleConfigName"].endswith(f"-sdk-defaults-{user}")
        ]
        assert config["StudioLifecycleConfigAppType"] == "JupyterLab"
        lab = profile["UserSettings"]["JupyterLabAppSettings"]
        arn = {"Fn::GetAtt": [config_id, "StudioLifecycleConfigArn"]}
        assert lab["LifecycleConfigArns"] == [arn] and lab["DefaultResourceSpec"]["LifecycleConfigArn"] == arn
        script = json.dumps(config["StudioLifecycleConfigContent"]["Fn::Base64"])
        assert f"sandbox/{user}/models" in script and ".config/sagemaker/config.yaml" in script


def test_studio_without_its_endpoints_fails_with_a_clear_message(stage_config):
    from config import ConfigError

    with pytest.raises(ConfigError, match=r"a studio workspace in a VPC without internet needs .* add sts, logs"):
        stage_config(
            network={"interface_endpoints": ["sagemaker.api", "sagemaker.runtime", "glue", "sns", "cloudformation"]},
            workspace={"kind": "studio"},
        )
