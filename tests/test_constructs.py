"""The reusable constructs on their own: secure defaults that a stack cannot forget."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template
from constructs.encrypted_log_group import EncryptedLogGroup
from constructs.event_function import LAMBDA_ROOT, SHARED_MODULES, EventFunction, FunctionDefaults, object_created
from constructs.secure_bucket import SecureBucket
from constructs.workload_security_group import WorkloadSecurityGroup

from tests.helpers import actions, properties, render, resources

LIFECYCLE = {
    "noncurrent_version_expiration": cdk.Duration.days(30),
    "abort_incomplete_multipart_upload_after": cdk.Duration.days(7),
}


@pytest.fixture
def stack(lone_app) -> cdk.Stack:
    return cdk.Stack(lone_app(), "Constructs")


def test_only_the_access_log_destination_may_skip_kms(stack):
    logs = s3.Bucket(stack, "Logs")
    with pytest.raises(ValueError, match="only the access-log destination"):
        SecureBucket(stack, "Data", encryption_key=None, access_logs_bucket=logs, retain=True, **LIFECYCLE)


def test_grants_are_scoped_to_a_prefix_and_never_delete(stack):
    key = kms.Key(stack, "Key")
    logs = s3.Bucket(stack, "Logs")
    bucket = SecureBucket(stack, "Data", encryption_key=key, access_logs_bucket=logs, retain=True, **LIFECYCLE)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    bucket.grant_read(role, "prepared/*")
    bucket.grant_write(role, "models/*")

    [policy] = properties(Template.from_stack(stack), "AWS::IAM::Policy")
    statements = policy["PolicyDocument"]["Statement"]
    actions = {action for statement in statements for action in _actions(statement)}
    assert not any("Delete" in action for action in actions)
    assert "s3:PutObject" in actions and "s3:GetObject*" in actions
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= actions  # the bucket's key comes with the grant
    # A write is exactly an upload (and a failed multipart upload's abort): no tagging, hold or retention.
    assert {a for a in actions if a.startswith("s3:Put") or a.startswith("s3:Abort")} == {
        "s3:PutObject",
        "s3:AbortMultipartUpload",
    }
    objects = repr([s["Resource"] for s in statements if any(a.startswith("s3:") for a in _actions(s))])
    assert "/prepared/*" in objects and "/models/*" in objects


def _actions(statement: dict) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def test_retained_bucket_is_not_emptied_on_delete(stack):
    SecureBucket(stack, "Logs", encryption_key=None, access_logs_bucket=None, retain=True, **LIFECYCLE)
    template = Template.from_stack(stack)
    template.resource_count_is("Custom::S3AutoDeleteObjects", 0)
    template.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"})


def test_log_group_writes_the_exact_retention_and_key(stack):
    key = kms.Key(stack, "Key")
    EncryptedLogGroup(stack, "Logs", key=key, retention_days=545, retain=False)
    [group] = properties(Template.from_stack(stack), "AWS::Logs::LogGroup")
    assert group["RetentionInDays"] == 545
    assert "KmsKeyId" in group


# --- EventFunction ---------------------------------------------------------------------------
# The defaults differ from every CDK and service default (log retention, level, concurrency,
# retries), so an assertion fails if the construct stops passing one of them on.

HANDLER = "start_etl"
DESCRIPTION = "start_etl: new raw data starts the Glue preparation job"
ENI_ACTIONS = (
    "ec2:AssignPrivateIpAddresses",
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:UnassignPrivateIpAddresses",
)
HTTPS_OUT = {
    "CidrIp": "0.0.0.0/0",
    "Description": "HTTPS to the VPC endpoints and the S3 gateway",
    "FromPort": 443,
    "IpProtocol": "tcp",
    "ToPort": 443,
}


def _vpc(stack: cdk.Stack) -> ec2.Vpc:
    """Two groups of isolated subnets: a function placed by the defaults' selection lands in
    "Functions" only, where CDK's own default selection would take both. (The custom resource
    that empties the default group is left out: its function and role would be noise here.)"""
    return ec2.Vpc(
        stack,
        "Vpc",
        max_azs=2,
        nat_gateways=0,
        restrict_default_security_group=False,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="Functions", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            ec2.SubnetConfiguration(name="Jobs", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        ],
    )


def _defaults(stack: cdk.Stack, *, retain_logs: bool = False) -> FunctionDefaults:
    return FunctionDefaults(
        key=kms.Key(stack, "Key"),
        alarm_topic=sns.Topic(stack, "Operators"),
        vpc=_vpc(stack),
        subnets=ec2.SubnetSelection(subnet_group_name="Functions"),
        log_retention_days=545,
        log_level="WARN",
        reserved_concurrency=3,
        retry_attempts=1,
        retain_logs=retain_logs,
        name_prefix="test",
    )


def _event_function(stack: cdk.Stack, defaults: FunctionDefaults, **props: Any) -> EventFunction:
    bucket = s3.Bucket.from_bucket_name(stack, "Data", "ml-data")
    return EventFunction(
        stack,
        "StartEtl",
        **{
            "handler_folder": HANDLER,
            "description": DESCRIPTION,
            "event_pattern": object_created(bucket, {"prefix": "raw/"}),
            "environment": {"DATA_BUCKET": bucket.bucket_name, "RAW_PREFIX": "raw/"},
            "defaults": defaults,
            **props,
        },
    )


@pytest.fixture
def built(stack: cdk.Stack) -> tuple[FunctionDefaults, EventFunction, Template]:
    """An EventFunction with the test's defaults, and the bare stack's template."""
    defaults = _defaults(stack)
    function = _event_function(stack, defaults)
    return defaults, function, Template.from_stack(stack)


def _one(template: Template, resource_type: str) -> tuple[str, dict[str, Any]]:
    """The stack's one resource of ``resource_type``: its logical id and the whole resource."""
    [(name, resource)] = resources(template, resource_type).items()
    return name, resource


def _id(stack: cdk.Stack, construct: Any) -> str:
    return stack.get_logical_id(construct.node.default_child)


def test_event_function_refuses_a_handler_folder_without_handler_py(stack):
    defaults = _defaults(stack)
    with pytest.raises(ValueError, match=re.escape(f"{LAMBDA_ROOT / 'no_such_function'}/handler.py not found")):
        _event_function(stack, defaults, handler_folder="no_such_function")


@pytest.mark.parametrize(
    "module",
    [
        "no_such_module.py",
        "../lambda/start_training/handler.py",  # a path: it would be copied over the function's own handler
        "platform_runtime.py",  # always shipped; naming it again is a mistake
    ],
)
def test_event_function_refuses_a_shared_module_that_is_not_a_file_name_of_etl(stack, module):
    defaults = _defaults(stack)
    expected = f"shared module {module!r} of start_etl: expected a file name of {SHARED_MODULES}"
    with pytest.raises(ValueError, match=re.escape(expected) + ".*available: .*dataset_spec.py"):
        _event_function(stack, defaults, shared_modules=("dataset_spec.py", module))


def test_event_function_refuses_a_negative_concurrency(stack):
    with pytest.raises(ValueError, match=r"start_etl: reserved_concurrency must be 0 \(off\) or more: -1"):
        _event_function(stack, _defaults(stack), reserved_concurrency=-1)


def test_event_function_refuses_an_unknown_log_level(stack):
    defaults = _defaults(stack)
    with pytest.raises(ValueError, match=r"log level 'VERBOSE': expected one of .*DEBUG"):
        _event_function(stack, dataclasses.replace(defaults, log_level="VERBOSE"))


def test_event_function_takes_zero_concurrency_as_switched_off(stack):
    _event_function(stack, _defaults(stack), reserved_concurrency=0)
    _, resource = _one(Template.from_stack(stack), "AWS::Lambda::Function")
    assert resource["Properties"]["ReservedConcurrentExecutions"] == 0


def test_event_function_runs_the_handler_with_the_stage_defaults(stack, built):
    defaults, function, template = built
    name, resource = _one(template, "AWS::Lambda::Function")
    assert name == _id(stack, function.function)
    settings = resource["Properties"]
    assert settings["Runtime"] == "python3.14"
    assert settings["Handler"] == "handler.handler"
    assert settings["Description"] == DESCRIPTION
    assert settings["Timeout"] == 30  # the construct's default, not Lambda's 3 seconds
    assert settings["MemorySize"] == 256
    assert settings["ReservedConcurrentExecutions"] == 3
    assert settings["Environment"] == {"Variables": {"DATA_BUCKET": "ml-data", "RAW_PREFIX": "raw/"}}
    assert settings["KmsKeyArn"] == stack.resolve(defaults.key.key_arn)  # the variables under the platform key
    assert settings["Role"] == {"Fn::GetAtt": [_id(stack, function.role), "Arn"]}
    [log_group] = resources(template, "AWS::Logs::LogGroup")
    assert settings["LoggingConfig"] == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "WARN",
        "LogGroup": {"Ref": log_group},
    }
    # A VPC function is created only once its role may create network interfaces.
    policy = _id(stack, function.role.node.find_child("DefaultPolicy"))
    assert {_id(stack, function.role), policy} <= set(resource["DependsOn"])


def test_event_function_takes_its_own_concurrency_timeout_and_memory(stack):
    _event_function(stack, _defaults(stack), reserved_concurrency=7, timeout_seconds=120, memory_size=512)
    [settings] = properties(Template.from_stack(stack), "AWS::Lambda::Function")
    assert (settings["ReservedConcurrentExecutions"], settings["Timeout"], settings["MemorySize"]) == (7, 120, 512)


@pytest.mark.parametrize(("retain", "policy"), [(True, "Retain"), (False, "Delete")])
def test_event_function_logs_are_encrypted_kept_for_the_stage_and_retained_with_its_data(stack, retain, policy):
    defaults = _defaults(stack, retain_logs=retain)
    _event_function(stack, defaults)
    template = Template.from_stack(stack)
    _, log_group = _one(template, "AWS::Logs::LogGroup")
    assert log_group["Properties"] == {"KmsKeyId": stack.resolve(defaults.key.key_arn), "RetentionInDays": 545}
    _, queue = _one(template, "AWS::SQS::Queue")
    for resource in (log_group, queue):
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == (policy, policy)


def test_event_function_role_is_lambdas_alone_with_exactly_its_statements(stack, built):
    defaults, function, template = built
    role = resources(template, "AWS::IAM::Role")[_id(stack, function.role)]["Properties"]
    assert role == {
        "AssumeRolePolicyDocument": {
            "Statement": [
                {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
            ],
            "Version": "2012-10-17",
        },
        "Description": f"{DESCRIPTION} (Lambda execution role)",
    }  # no managed policy (AWSLambdaBasicExecutionRole grants logs on every group), no inline policy
    [log_group] = resources(template, "AWS::Logs::LogGroup")
    [policy] = properties(template, "AWS::IAM::Policy")
    assert policy["Roles"] == [{"Ref": _id(stack, function.role)}]
    statements = policy["PolicyDocument"]["Statement"]
    assert {_statement(statement) for statement in statements} == {
        _statement(
            {"Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": {"Fn::GetAtt": [log_group, "Arn"]}}
        ),
        _statement({"Action": list(ENI_ACTIONS), "Resource": "*"}),
        _statement(
            {
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": stack.resolve(defaults.key.key_arn),
                "Condition": {"StringEquals": {"kms:ViaService": stack.resolve(f"sqs.{stack.region}.amazonaws.com")}},
            }
        ),
        _statement({"Action": "sqs:SendMessage", "Resource": stack.resolve(function.dead_letter_queue.queue_arn)}),
    }
    assert len(statements) == 4
    [kms_statement] = [s for s in statements if "kms:Decrypt" in actions(s)]
    assert render(kms_statement["Condition"]["StringEquals"]["kms:ViaService"]) == "sqs.<region>.amazonaws.com"


def _statement(statement: dict[str, Any]) -> tuple[str, tuple[str, ...], str, str]:
    """A policy statement as a comparable value (actions in any order, Effect Allow unless given)."""
    return (
        statement.get("Effect", "Allow"),
        tuple(sorted(actions(statement))),
        json.dumps(statement["Resource"], sort_keys=True),
        json.dumps(statement.get("Condition"), sort_keys=True),
    )


def test_event_function_acknowledges_only_the_eni_wildcard_on_its_policy(stack):
    function = _event_function(stack, _defaults(stack))
    template = Template.from_stack(stack)
    policy = resources(template, "AWS::IAM::Policy")[_id(stack, function.role.node.find_child("DefaultPolicy"))]
    acknowledged = {
        (rule["id"], tuple(rule.get("applies_to", ()))) for rule in policy["Metadata"]["cdk_nag"]["rules_to_suppress"]
    }
    assert acknowledged == {
        ("AwsSolutions-IAM5", ("Resource::*",)),  # never a blanket IAM5 (it would hide a new wildcard)
        ("HIPAA.Security-IAMNoInlinePolicy", ()),
        ("NIST.800.53.R5-IAMNoInlinePolicy", ()),
    }


def test_event_function_dead_letter_queue_is_encrypted_tls_only_and_fed_by_its_rule_alone(stack, built):
    defaults, function, template = built
    queue_id, queue = _one(template, "AWS::SQS::Queue")
    assert queue_id == _id(stack, function.dead_letter_queue)
    assert queue["Properties"] == {
        "KmsMasterKeyId": stack.resolve(defaults.key.key_arn),
        "MessageRetentionPeriod": 1209600,
    }
    [queue_policy] = properties(template, "AWS::SQS::QueuePolicy")
    assert queue_policy["Queues"] == [{"Ref": queue_id}]
    queue_arn = {"Fn::GetAtt": [queue_id, "Arn"]}
    rule_arn = {"Fn::GetAtt": [_id(stack, function.rule), "Arn"]}
    statements = sorted(queue_policy["PolicyDocument"]["Statement"], key=lambda s: s["Effect"])
    assert [s["Effect"] for s in statements] == ["Allow", "Deny"]
    allow, deny = statements
    assert deny == {
        "Action": "sqs:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": queue_arn,
    }
    assert (allow["Principal"], allow["Action"], allow["Resource"]) == (
        {"Service": "events.amazonaws.com"},
        "sqs:SendMessage",
        queue_arn,
    )
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
    [settings] = properties(template, "AWS::Lambda::Function")
    assert settings["DeadLetterConfig"] == {"TargetArn": queue_arn}  # failed async invocations


def test_event_function_rule_invokes_it_with_retries_then_the_dead_letter_queue(stack, built):
    _, function, template = built
    function_id, queue_id = _id(stack, function.function), _id(stack, function.dead_letter_queue)
    [rule] = properties(template, "AWS::Events::Rule")
    assert rule["Description"] == DESCRIPTION
    assert rule["State"] == "ENABLED"
    assert rule["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": ["ml-data"]}, "object": {"key": [{"prefix": "raw/"}]}},
    }
    assert rule["Targets"] == [
        {
            "Arn": {"Fn::GetAtt": [function_id, "Arn"]},
            "Id": "Target0",
            "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}},
            "RetryPolicy": {"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 7200},
        }
    ]
    [invoke] = properties(template, "AWS::Lambda::EventInvokeConfig")
    assert invoke == {"FunctionName": {"Ref": function_id}, "MaximumRetryAttempts": 1, "Qualifier": "$LATEST"}
    [permission] = properties(template, "AWS::Lambda::Permission")
    assert permission == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": {"Fn::GetAtt": [function_id, "Arn"]},
        "Principal": "events.amazonaws.com",
        "SourceArn": {"Fn::GetAtt": [_id(stack, function.rule), "Arn"]},
    }


def test_event_function_sits_in_the_chosen_subnets_with_https_out_only(stack, built):
    defaults, function, template = built
    chosen = stack.resolve(defaults.vpc.select_subnets(subnet_group_name="Functions").subnet_ids)
    others = stack.resolve(defaults.vpc.select_subnets(subnet_group_name="Jobs").subnet_ids)
    assert len(chosen) == 2 and not set(map(json.dumps, chosen)) & set(map(json.dumps, others))
    group_id = _id(stack, function.security_group)
    [settings] = properties(template, "AWS::Lambda::Function")
    assert settings["VpcConfig"] == {"SubnetIds": chosen, "SecurityGroupIds": [{"Fn::GetAtt": [group_id, "GroupId"]}]}
    _, group = _one(template, "AWS::EC2::SecurityGroup")
    assert group["Properties"] == {
        "GroupDescription": f"{DESCRIPTION}: HTTPS out only (the VPC has no route to the internet)",
        "SecurityGroupEgress": [HTTPS_OUT],
        "VpcId": stack.resolve(defaults.vpc.vpc_id),
    }  # no ingress at all: EventBridge invokes through the Lambda API, never the network
    template.resource_count_is("AWS::EC2::SecurityGroupIngress", 0)
    template.resource_count_is("AWS::EC2::SecurityGroupEgress", 0)


def test_event_function_alarms_tell_the_operators_of_errors_and_dead_letters(stack, built):
    defaults, function, template = built
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert sorted(alarms) == sorted(_id(stack, alarm) for alarm in function.alarms)
    topic = [stack.resolve(defaults.alarm_topic.topic_arn)]
    observed = {
        (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]): alarm
        for alarm in (resource["Properties"] for resource in alarms.values())
    }
    assert set(observed) == {
        ("AWS/Lambda", "Errors", "Sum"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum"),
    }
    for alarm in observed.values():
        assert (alarm["AlarmActions"], alarm["OKActions"]) == (topic, topic)
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
        assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["TreatMissingData"]) == (300, 1, "notBreaching")
        assert alarm["AlarmDescription"].startswith(f"{DESCRIPTION}: ")
    errors = observed["AWS/Lambda", "Errors", "Sum"]
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": _id(stack, function.function)}}]
    dead_letters = observed["AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum"]
    queue = _id(stack, function.dead_letter_queue)
    assert dead_letters["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]


@pytest.mark.parametrize("shared", [(), ("dataset_spec.py",)])
def test_event_function_asset_is_the_handler_folder_and_the_runtime_library(stack, shared):
    function = _event_function(stack, _defaults(stack), shared_modules=shared)
    asset = Path(cdk.Stage.of(stack).outdir) / function.function.node.find_child("Code").asset_path
    handler_folder = LAMBDA_ROOT / HANDLER
    shipped = {path.relative_to(asset).as_posix() for path in asset.rglob("*")}
    sources = {name: handler_folder / name for name in _python_files(handler_folder)}
    sources |= {name: SHARED_MODULES / name for name in ("platform_runtime.py", *shared)}
    assert shipped == set(sources)  # nothing else: no __pycache__, no module that was not asked for
    for name, source in sources.items():
        assert (asset / name).read_bytes() == source.read_bytes(), name


def _python_files(folder: Path) -> set[str]:
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


# --- WorkloadSecurityGroup -------------------------------------------------------------------

WORKLOAD = "SageMaker jobs and models: instances of one job talk to each other; HTTPS out"
MEMBERS = "Members of this workload talk to each other"


def test_workload_members_reach_each_other_on_tcp_and_only_https_leaves(stack):
    vpc = _vpc(stack)
    workload = WorkloadSecurityGroup(stack, "Jobs", vpc=vpc, description=WORKLOAD)
    template = Template.from_stack(stack)
    group_id = _id(stack, workload.security_group)
    own = {"Fn::GetAtt": [group_id, "GroupId"]}
    assert stack.resolve(workload.security_group.security_group_id) == own
    _, group = _one(template, "AWS::EC2::SecurityGroup")
    assert group["Properties"] == {
        "GroupDescription": WORKLOAD,
        "SecurityGroupEgress": [HTTPS_OUT],  # not CDK's allow-all egress, nor its 255.255.255.255/32 placeholder
        "VpcId": stack.resolve(vpc.vpc_id),
    }  # no inline ingress: nothing outside the workload comes in
    [ingress] = properties(template, "AWS::EC2::SecurityGroupIngress")
    assert ingress == {
        "Description": MEMBERS,
        "FromPort": 0,
        "GroupId": own,
        "IpProtocol": "tcp",
        "SourceSecurityGroupId": own,
        "ToPort": 65535,
    }
    [egress] = properties(template, "AWS::EC2::SecurityGroupEgress")
    assert egress == {
        "Description": MEMBERS,
        "DestinationSecurityGroupId": own,
        "FromPort": 0,
        "GroupId": own,
        "IpProtocol": "tcp",
        "ToPort": 65535,
    }


def test_two_workloads_do_not_reach_each_other(stack):
    vpc = _vpc(stack)
    groups = [WorkloadSecurityGroup(stack, name, vpc=vpc, description=name).security_group for name in ("A", "B")]
    template = Template.from_stack(stack)
    own = {json.dumps(stack.resolve(group.security_group_id)) for group in groups}
    ingress = properties(template, "AWS::EC2::SecurityGroupIngress")
    egress = properties(template, "AWS::EC2::SecurityGroupEgress")
    assert {json.dumps(rule["GroupId"]) for rule in ingress} == own
    assert all(rule["SourceSecurityGroupId"] == rule["GroupId"] for rule in ingress)
    assert {json.dumps(rule["GroupId"]) for rule in egress} == own
    assert all(rule["DestinationSecurityGroupId"] == rule["GroupId"] for rule in egress)


# --- the real-time endpoint ------------------------------------------------------------------------


def _endpoint_template(lone_app, hosting) -> Template:
    from constructs.realtime_endpoint import RealtimeEndpoint

    stack = cdk.Stack(lone_app(), "Bare", env=cdk.Environment(account="111111111111", region="eu-west-1"))
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    RealtimeEndpoint(
        stack,
        "Serving",
        endpoint_name="bare-endpoint",
        model_package="arn:aws:sagemaker:eu-west-1:111111111111:model-package/group/1",
        hosting=hosting,
        capture_uri="s3://bucket/capture/",
        key=kms.Key(stack, "Key"),
        alarm_topic=sns.Topic(stack, "Topic"),
        subnet_ids=[s.subnet_id for s in vpc.private_subnets],
        execution_role=iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")),
        security_group=ec2.SecurityGroup(stack, "Group", vpc=vpc),
    )
    return Template.from_stack(stack)


def test_an_endpoint_without_autoscaling_is_no_scalable_target_and_keeps_its_count(lone_app, stage_config):
    """The state the README's instance-type procedure deploys in between: SageMaker refuses to
    change a scalable target's instance type."""
    on = _endpoint_template(lone_app, stage_config().hosting)
    off = _endpoint_template(lone_app, stage_config(hosting={"autoscaling": False}).hosting)
    assert resources(on, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert not resources(off, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert not resources(off, "AWS::ApplicationAutoScaling::ScalingPolicy")
    [endpoint] = properties(off, "AWS::SageMaker::Endpoint")
    assert endpoint["RetainAllVariantProperties"] is True
