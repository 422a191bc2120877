"""HostingStack for dev and prod: nothing billable without a package; with one, the endpoint's
capacity, scaling, guardrails, capture and network; deploy_model's narrow rights."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template
from constructs.realtime_endpoint import vcpus
from moto.events.models import EventPattern

from app import build_app
from config import ConfigError
from tests.helpers import actions, logical_id, properties, resources

BILLABLE = (
    "AWS::SageMaker::Model",
    "AWS::SageMaker::EndpointConfig",
    "AWS::SageMaker::Endpoint",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::CloudWatch::Alarm",
    "AWS::SageMaker::DataQualityJobDefinition",
    "AWS::SageMaker::ModelQualityJobDefinition",
    "AWS::SageMaker::MonitoringSchedule",
)


def hosting(stage) -> Template:
    return stage.templates["hosting-bank-marketing"]


def one(template: Template, resource_type: str) -> dict:
    [resource] = resources(template, resource_type).values()
    return resource


def test_the_package_parameter_is_empty_until_a_model_is_approved(stage):
    template = hosting(stage).to_json()
    parameter = template["Parameters"]["ModelPackageArn"]
    assert parameter["Default"] == "" and parameter["Type"] == "String"
    assert template["Conditions"]["HasModel"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ModelPackageArn"}, ""]}]}


def test_without_a_package_nothing_billable_is_created(stage):
    """Behind HasModel, or behind Monitored or QualityMonitored, which hold only with a model. The
    stack's functions (deploy_model, which makes the first model live, and check_drift) and their
    alarms are there from the start: they cost nothing until an event comes, but two alarms each."""
    template = hosting(stage).to_json()
    conditions = [name for name in ("Monitored", "QualityMonitored") if name in template["Conditions"]]
    for condition in conditions:
        assert {"Condition": "HasModel"} in template["Conditions"][condition]["Fn::And"]
    for name, resource in template["Resources"].items():
        if resource["Type"] in BILLABLE and not name.startswith(("DeployModel", "CheckDrift")):
            assert resource.get("Condition") in ("HasModel", *conditions), name


def test_model_comes_from_the_package_isolated_in_the_vpc(stage):
    model = one(hosting(stage), "AWS::SageMaker::Model")["Properties"]
    assert model["Containers"] == [{"ModelPackageName": {"Ref": "ModelPackageArn"}}]
    assert model["EnableNetworkIsolation"] is True
    assert set(model["VpcConfig"]) == {"SecurityGroupIds", "Subnets"}


def test_endpoint_config_capacity_kms_and_data_capture(stage):
    config = one(hosting(stage), "AWS::SageMaker::EndpointConfig")["Properties"]
    [variant] = config["ProductionVariants"]
    assert variant["InstanceType"] == stage.config.hosting.instance_type
    assert variant["InitialInstanceCount"] == stage.config.hosting.instance_count
    assert "KmsKeyId" in config
    capture = config["DataCaptureConfig"]
    assert capture["InitialSamplingPercentage"] == stage.config.hosting.capture_sampling_percentage
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    assert "KmsKeyId" in capture and "/capture/bank-marketing/" in json.dumps(capture["DestinationS3Uri"])


def test_prod_serves_from_at_least_two_instances(prod):
    [variant] = one(hosting(prod), "AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"]
    assert variant["InitialInstanceCount"] >= 2
    assert one(hosting(prod), "AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]["MinCapacity"] >= 2


def test_blue_green_canary_rolls_back_on_5xx_and_latency_alarms(stage):
    template = hosting(stage)
    endpoint = one(template, "AWS::SageMaker::Endpoint")["Properties"]
    assert endpoint["EndpointName"] == f"{stage.config.stack_prefix.lower()}-bank-marketing"
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    routing = policy["TrafficRoutingConfiguration"]
    canary = stage.config.hosting.canary_instances
    if canary:
        assert routing["Type"] == "CANARY"
        assert routing["CanarySize"] == {"Type": "INSTANCE_COUNT", "Value": canary}
    else:
        assert routing["Type"] == "ALL_AT_ONCE" and "CanarySize" not in routing
    assert routing["WaitIntervalInSeconds"] == stage.config.hosting.canary_wait_minutes * 60
    rollback = endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    alarm_ids = {
        logical_id(template, "AWS::CloudWatch::Alarm", "5XXAlarm"),
        logical_id(template, "AWS::CloudWatch::Alarm", "ModelLatencyAlarm"),
    }
    assert {json.dumps(a["AlarmName"]) for a in rollback} == {json.dumps({"Ref": i}) for i in alarm_ids}


def test_autoscaling_tracks_invocations_per_instance_with_slow_scale_in(stage):
    template = hosting(stage)
    target = one(template, "AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (
        stage.config.hosting.min_capacity,
        stage.config.hosting.max_capacity,
    )
    assert target["ResourceId"] == f"endpoint/{stage.config.stack_prefix.lower()}-bank-marketing/variant/AllTraffic"
    tracking = one(template, "AWS::ApplicationAutoScaling::ScalingPolicy")["Properties"][
        "TargetTrackingScalingPolicyConfiguration"
    ]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    assert tracking["TargetValue"] == stage.config.hosting.target_invocations_per_instance
    assert tracking["ScaleInCooldown"] > tracking["ScaleOutCooldown"]


def test_operators_hear_every_endpoint_alarm(stage):
    alarms = [a["Properties"] for a in resources(hosting(stage), "AWS::CloudWatch::Alarm").values()]
    names = {a["AlarmName"].rsplit("-", 1)[-1] for a in alarms if "AlarmName" in a}
    assert {"5xx", "4xx", "modellatency", "cpu", "memory", "disk"} <= names
    for alarm in alarms:
        assert "OperatorTopic" in json.dumps(alarm["AlarmActions"])


def test_deploy_model_fires_on_approved_packages_of_its_group_only(stage):
    template = hosting(stage)
    rule = resources(template, "AWS::Events::Rule")[logical_id(template, "AWS::Events::Rule", "DeployModelRule")]
    pattern = EventPattern.load(json.dumps(rule["Properties"]["EventPattern"]))
    group = f"{stage.config.stack_prefix.lower()}-bank-marketing"
    event = {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Model Package State Change",
        "detail": {"ModelPackageGroupName": group, "ModelApprovalStatus": "Approved"},
    }
    assert pattern.matches_event(event)
    assert not pattern.matches_event({**event, "detail": {**event["detail"], "ModelApprovalStatus": "Rejected"}})
    assert not pattern.matches_event({**event, "detail": {**event["detail"], "ModelPackageGroupName": "other"}})


def test_deploy_model_may_only_update_its_own_stack_and_pass_the_deployment_role(stage):
    template = hosting(stage)
    policy = resources(template, "AWS::IAM::Policy")[
        logical_id(template, "AWS::IAM::Policy", "DeployModelRoleDefaultPolicy")
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    role = logical_id(template, "AWS::IAM::Role", "DeploymentRole")
    cfn = [s for s in statements if str(s["Action"]).startswith("cloudformation:")]
    assert cfn == [
        {"Action": "cloudformation:DescribeStacks", "Effect": "Allow", "Resource": {"Ref": "AWS::StackId"}},
        # only under the stack's own deployment role, never with a template from S3
        {
            "Action": "cloudformation:UpdateStack",
            "Condition": {"StringEquals": {"cloudformation:RoleArn": {"Fn::GetAtt": [role, "Arn"]}}},
            "Effect": "Allow",
            "Resource": {"Ref": "AWS::StackId"},
        },
        {
            "Action": "cloudformation:UpdateStack",
            "Condition": {"Null": {"cloudformation:TemplateUrl": "false"}},
            "Effect": "Deny",
            "Resource": {"Ref": "AWS::StackId"},
        },
    ]
    monitoring = logical_id(template, "AWS::IAM::Role", "MonitoringRole")
    passes = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert passes == [
        {
            "Action": "iam:PassRole",
            "Condition": {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [role, "Arn"]},
        },
        # the baseline jobs' role, to SageMaker only
        {
            "Action": "iam:PassRole",
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [monitoring, "Arn"]},
        },
    ]
    # SageMaker: read the versions of its own group (the newest approved goes live); start and read
    # the endpoint's baseline jobs, tagged with the stage.
    sagemaker = {frozenset(actions(s)): s for s in statements if any(a.startswith("sagemaker:") for a in actions(s))}
    read, create, describe = (
        frozenset({"sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage"}),
        frozenset({"sagemaker:CreateProcessingJob", "sagemaker:AddTags"}),
        frozenset({"sagemaker:DescribeProcessingJob"}),
    )
    assert set(sagemaker) == {read, create, describe}
    assert f":model-package/mlplatform-{stage.config.name}-bank-marketing/*" in json.dumps(sagemaker[read]["Resource"])
    jobs = f":processing-job/mlplatform-{stage.config.name}-bank-marketing-baseline-*"
    assert jobs in json.dumps(sagemaker[create]["Resource"])
    assert jobs in json.dumps(sagemaker[describe]["Resource"])
    create = sagemaker[create]
    assert create["Condition"] == {"StringEquals": {"aws:RequestTag/ml-platform:stage": stage.config.name}}


def test_instance_sizes_give_their_vcpus():
    assert vcpus("ml.m5.large") == 2 and vcpus("ml.c5.4xlarge") == 16 and vcpus("ml.t2.medium") == 2
    with pytest.raises(ValueError, match="cannot tell its vCPUs"):
        vcpus("ml.m5.metal")


def test_a_served_dataset_without_a_spec_fails_synth(monkeypatch):
    import config.stage as stage_module

    original = stage_module.parse_stage

    def with_unknown_dataset(name, raw):
        raw = {**raw, "hosting": {**raw.get("hosting", {}), "datasets": ["iris"]}}
        return original(name, raw)

    monkeypatch.setattr(stage_module, "parse_stage", with_unknown_dataset)
    with pytest.raises(ConfigError, match=r"hosting\.datasets has 'iris', which has no spec; allowed: bank-marketing"):
        build_app({"stage": "dev"})


def test_each_stage_rolls_out_with_a_policy_sagemaker_accepts_for_its_fleet(dev, prod):
    """SageMaker takes a canary of at most half the variant's instances: dev's single instance
    shifts all at once, prod's two take a one-instance canary; the smallest fleet autoscaling may
    leave is what the canary must fit."""
    for stage, expected in ((dev, "ALL_AT_ONCE"), (prod, "CANARY")):
        endpoint = one(hosting(stage), "AWS::SageMaker::Endpoint")["Properties"]
        routing = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
        assert routing["Type"] == expected
        target = one(hosting(stage), "AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]
        canary = routing.get("CanarySize", {"Value": 0})["Value"]
        assert canary <= target["MinCapacity"] // 2


def test_a_rollout_keeps_the_capacity_autoscaling_chose(stage):
    endpoint = one(hosting(stage), "AWS::SageMaker::Endpoint")["Properties"]
    assert endpoint["RetainAllVariantProperties"] is True


def test_approvals_wait_on_a_queue_through_the_longest_rollout(stage):
    """An approval that finds a rollout running comes back after the queue's visibility timeout
    until the rollout is over: the receives it may take outlast the endpoint's update timeout."""
    template = hosting(stage)
    [queue] = [q for q in properties(template, "AWS::SQS::Queue") if "RedrivePolicy" in q]
    function = resources(template, "AWS::Lambda::Function")[
        logical_id(template, "AWS::Lambda::Function", "DeployModel")
    ]
    assert queue["VisibilityTimeout"] == 6 * function["Properties"]["Timeout"]
    endpoint = one(template, "AWS::SageMaker::Endpoint")["Properties"]
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    longest = (
        policy["MaximumExecutionTimeoutInSeconds"]
        + policy["TerminationWaitInSeconds"]
        + policy["TrafficRoutingConfiguration"]["WaitIntervalInSeconds"]
    )
    assert queue["RedrivePolicy"]["maxReceiveCount"] * queue["VisibilityTimeout"] > longest
    [mapping] = properties(template, "AWS::Lambda::EventSourceMapping")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "DelaySeconds" not in queue or queue["DelaySeconds"] == 0
