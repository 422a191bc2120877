"""Model Monitor in both stages' templates: the data-quality schedule on the live model's baseline,
the drift alarm, the rules on baseline jobs, and the roles (the monitoring jobs', the deployment
role's share); and what the configuration accepts."""

from __future__ import annotations

import json
import re

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template
from constructs.sagemaker_images import registries
from moto.events.models import EventPattern

from config import ConfigError
from local.matcher import matches
from stacks.data import DataStack
from stacks.etl import PreparationRuns
from stacks.foundation import Foundation
from stacks.hosting import ANALYZER, HostingStack
from stacks.network import NetworkStack
from tests.helpers import actions, logical_id, resources


def hosting(stage):
    return stage.templates["hosting-bank-marketing"]


def one(template, resource_type: str) -> dict:
    [resource] = resources(template, resource_type).values()
    return resource


def test_the_schedule_exists_only_while_a_model_with_a_baseline_is_live(stage):
    template = hosting(stage).to_json()
    assert template["Parameters"]["BaselineUri"]["Default"] == ""
    assert template["Conditions"]["Monitored"] == {
        "Fn::And": [{"Condition": "HasModel"}, {"Fn::Not": [{"Fn::Equals": [{"Ref": "BaselineUri"}, ""]}]}]
    }
    for kind in ("AWS::SageMaker::DataQualityJobDefinition", "AWS::SageMaker::MonitoringSchedule"):
        assert one(hosting(stage), kind)["Condition"] == "Monitored"


def test_the_schedule_runs_on_the_stages_expression_against_the_endpoint(stage):
    template = hosting(stage)
    schedule = one(template, "AWS::SageMaker::MonitoringSchedule")["Properties"]
    endpoint = logical_id(template, "AWS::SageMaker::Endpoint", "Endpoint")
    config = schedule["MonitoringScheduleConfig"]
    assert config["ScheduleConfig"]["ScheduleExpression"] == stage.config.monitoring.schedule
    assert config["MonitoringType"] == "DataQuality"
    assert schedule["EndpointName"] == {"Fn::GetAtt": [endpoint, "EndpointName"]}
    assert schedule["MonitoringScheduleName"] == f"mlplatform-{stage.config.name}-bank-marketing-data-quality"
    definition = logical_id(template, "AWS::SageMaker::DataQualityJobDefinition", "DataQuality")
    assert definition in json.dumps(config["MonitoringJobDefinitionName"])
    assert {"hourly": "cron(0 * ? * * *)", "daily": "cron(0 0 ? * * *)"}[
        "hourly" if stage.config.name == "prod" else "daily"
    ] == stage.config.monitoring.schedule


def test_the_job_compares_captured_requests_with_the_live_models_baseline(stage):
    template = hosting(stage)
    job = one(template, "AWS::SageMaker::DataQualityJobDefinition")["Properties"]
    baseline = job["DataQualityBaselineConfig"]
    assert baseline["ConstraintsResource"]["S3Uri"] == {"Fn::Join": ["", [{"Ref": "BaselineUri"}, "constraints.json"]]}
    assert baseline["StatisticsResource"]["S3Uri"] == {"Fn::Join": ["", [{"Ref": "BaselineUri"}, "statistics.json"]]}
    endpoint = logical_id(template, "AWS::SageMaker::Endpoint", "Endpoint")
    assert job["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == {"Fn::GetAtt": [endpoint, "EndpointName"]}
    [output] = job["DataQualityJobOutputConfig"]["MonitoringOutputs"]
    assert "/monitoring/bank-marketing/reports" in json.dumps(output["S3Output"]["S3Uri"])
    # The analyzer publishes no metrics of its own: check_drift publishes the alarm's.
    assert job["DataQualityAppSpecification"]["Environment"] == {"publish_cloudwatch_metrics": "Disabled"}
    assert "JobDefinitionName" not in job  # replaced with each baseline, so CloudFormation names it


def test_monitoring_jobs_run_isolated_in_the_vpc_with_the_platform_key(stage):
    template = hosting(stage)
    job = one(template, "AWS::SageMaker::DataQualityJobDefinition")["Properties"]
    network = job["NetworkConfig"]
    assert network["EnableNetworkIsolation"] is True and network["EnableInterContainerTrafficEncryption"] is True
    assert set(network["VpcConfig"]) == {"SecurityGroupIds", "Subnets"}
    key = json.dumps(job["DataQualityJobOutputConfig"]["KmsKeyId"])
    assert "Key" in key and json.dumps(job["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"]) == key
    cluster = job["JobResources"]["ClusterConfig"]
    assert cluster["InstanceType"] == stage.config.monitoring.instance_type and cluster["InstanceCount"] == 1
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == stage.config.monitoring.max_runtime_minutes * 60
    role = logical_id(template, "AWS::IAM::Role", "MonitoringRole")
    assert job["RoleArn"] == {"Fn::GetAtt": [role, "Arn"]}


def test_the_analyzer_image_comes_from_the_sdks_table_without_a_tag(stage):
    accounts, repository = registries(ANALYZER)
    assert repository == "sagemaker-model-monitor-analyzer"
    region = stage.config.region or "eu-west-1"
    expected = f"{accounts[region]}.dkr.ecr.{region}.amazonaws.com/{repository}"
    job = one(hosting(stage), "AWS::SageMaker::DataQualityJobDefinition")["Properties"]
    image = job["DataQualityAppSpecification"]["ImageUri"]
    if stage.config.region:  # a named region: the URI itself
        assert image == expected
    else:  # looked up by AWS::Region at deploy time
        mapping, _, key = image["Fn::FindInMap"]
        assert hosting(stage).to_json()["Mappings"][mapping][region][key] == expected


def test_the_drift_alarm_watches_check_drifts_metric_and_tells_the_operators(stage):
    template = hosting(stage)
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    drift = alarms[logical_id(template, "AWS::CloudWatch::Alarm", "DriftAlarm")]
    assert drift["Condition"] == "Monitored"
    alarm = drift["Properties"]
    assert alarm["AlarmName"] == f"mlplatform-{stage.config.name}-bank-marketing-drift"
    assert (alarm["Namespace"], alarm["MetricName"]) == ("MLPlatform", "DriftedFeatures")
    assert alarm["Dimensions"] == [
        {"Name": "Dataset", "Value": "bank-marketing"},
        {"Name": "Stage", "Value": stage.config.name},
    ]
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # One report per run: between runs the alarm keeps the last run's verdict.
    assert alarm["TreatMissingData"] == "ignore"
    assert "OperatorTopic" in json.dumps(alarm["AlarmActions"]) and "OperatorTopic" in json.dumps(alarm["OKActions"])
    assert "docs/runbook.md#drift" in alarm["AlarmDescription"]


def check_drift_function(template: Template) -> dict:
    return resources(template, "AWS::Lambda::Function")[logical_id(template, "AWS::Lambda::Function", "CheckDrift")]


def test_check_drift_hears_every_report_of_its_dataset_and_no_other_object(stage):
    template = hosting(stage)
    [rule] = [r["Properties"] for name, r in resources(template, "AWS::Events::Rule").items() if "CheckDrift" in name]
    pattern = rule["EventPattern"]
    pattern["detail"]["bucket"]["name"] = ["data-bucket"]

    def report(key: str) -> dict:
        return {
            "source": "aws.s3",
            "detail-type": "Object Created",
            "detail": {"bucket": {"name": "data-bucket"}, "object": {"key": key}},
        }

    # Model Monitor writes a run's report under <output>/<endpoint>/<schedule>/<yyyy>/<mm>/<dd>/<hh>/.
    run = "mlplatform-dev-bank-marketing/mlplatform-dev-bank-marketing-data-quality/2026/11/24/13"
    assert matches(pattern, report(f"monitoring/bank-marketing/reports/{run}/constraint_violations.json"))
    assert not matches(pattern, report(f"monitoring/bank-marketing/reports/{run}/statistics.json"))
    assert not matches(pattern, report(f"monitoring/car-evaluation/reports/{run}/constraint_violations.json"))
    assert not matches(pattern, report("monitoring/bank-marketing/baselines/x/constraint_violations.json"))


def test_check_drift_starts_the_preparation_job_of_the_stage_by_name_and_reads_its_dataset_only(stage):
    template = hosting(stage)
    variables = check_drift_function(template)["Properties"]["Environment"]["Variables"]
    prefix = f"mlplatform-{stage.config.name}"
    assert variables["JOB_NAME"] == f"{prefix}-prepare"
    assert variables["RETRAIN_MIN_HOURS"] == str(stage.config.monitoring.retrain_min_hours)
    assert variables["REPORTS_PREFIX"] == "monitoring/bank-marketing/reports/"
    # The spec is the same asset (the same object) as the one start_etl names for the dataset.
    functions = resources(stage.templates["etl"], "AWS::Lambda::Function")
    [start_etl] = [f for name, f in functions.items() if "StartEtl" in name]
    specs = json.dumps(start_etl["Properties"]["Environment"]["Variables"]["DATASET_SPECS"])
    asset = re.compile(r"[0-9a-f]{64}\.json")
    [spec] = asset.findall(json.dumps(variables["SPEC_URI"]))
    assert asset.findall(specs[specs.index("bank-marketing") :])[0] == spec
    granted = statements(template, "CheckDriftRoleDefaultPolicy")
    glue = [s for s in granted if "glue:StartJobRun" in actions(s)]
    [job] = [json.dumps(s["Resource"]) for s in glue]  # a literal ARN where the stage names its account
    assert job.endswith(f':job/{prefix}-prepare"]]}}') or job.endswith(f':job/{prefix}-prepare"'), job
    listing = [s for s in granted if actions(s) == ["s3:ListBucket"]]
    assert [s["Condition"] for s in listing] == [
        {"StringLike": {"s3:prefix": ["raw/bank-marketing/*", "prepared/bank-marketing/*"]}}
    ]
    text = json.dumps(granted)
    assert "sagemaker:DescribeModelPackage" in text and "cloudformation:DescribeStacks" in text
    assert "sns:Publish" in text


def test_retraining_is_rate_limited_per_stage(stage_config):
    assert stage_config().monitoring.retrain_min_hours >= 0
    with pytest.raises(ConfigError, match="retrain_min_hours"):
        stage_config(monitoring={"retrain_min_hours": -1})


def baseline_event(status: str, name: str) -> dict:
    return {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Processing Job State Change",
        "detail": {"ProcessingJobName": name, "ProcessingJobStatus": status},
    }


def test_baseline_jobs_ends_reach_deploy_model_and_failures_the_operators(stage):
    template = hosting(stage)
    rules = resources(template, "AWS::Events::Rule")
    job = f"mlplatform-{stage.config.name}-bank-marketing-baseline-3"
    ended = rules[logical_id(template, "AWS::Events::Rule", "DeployModelBaselineRule")]["Properties"]
    failed = rules[logical_id(template, "AWS::Events::Rule", "BaselineFailedRule")]["Properties"]
    to_deploy = EventPattern.load(json.dumps(ended["EventPattern"]))
    to_operators = EventPattern.load(json.dumps(failed["EventPattern"]))
    for status in ("Completed", "Failed", "Stopped"):
        assert to_deploy.matches_event(baseline_event(status, job))
        assert to_operators.matches_event(baseline_event(status, job)) == (status != "Completed")
    assert not to_deploy.matches_event(baseline_event("InProgress", job))
    assert not to_deploy.matches_event(baseline_event("Completed", "another-endpoint-baseline-3"))
    queue = logical_id(template, "AWS::SQS::Queue", "DeployModelQueue")
    assert ended["Targets"][0]["Arn"] == {"Fn::GetAtt": [queue, "Arn"]}
    assert "OperatorTopic" in json.dumps(failed["Targets"][0]["Arn"])
    message = json.dumps(failed["Targets"][0]["InputTransformer"])
    assert "$.detail.FailureReason" in message and "docs/runbook.md#baseline-failed" in message


def statements(template, fragment: str) -> list[dict]:
    policy = resources(template, "AWS::IAM::Policy")[logical_id(template, "AWS::IAM::Policy", fragment)]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def test_the_monitoring_role_reads_only_its_datasets_baselines_and_captures(stage):
    granted = json.dumps(statements(hosting(stage), "MonitoringRoleDefaultPolicy"))
    for prefix in ("prepared/bank-marketing/*/baseline/*", "capture/bank-marketing/*", "monitoring/bank-marketing/*"):
        assert prefix in granted
    assert "raw/" not in granted and "s3:DeleteObject" not in granted
    template = hosting(stage)
    role = resources(template, "AWS::IAM::Role")[logical_id(template, "AWS::IAM::Role", "MonitoringRole")]
    [principal] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert principal["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert "aws:SourceArn" in json.dumps(principal["Condition"])


def test_the_deployment_role_manages_the_schedule_and_passes_only_the_monitoring_role(stage):
    template = hosting(stage)
    granted = statements(template, "DeploymentRoleDefaultPolicy")
    schedule = [s for s in granted if "sagemaker:CreateMonitoringSchedule" in actions(s)]
    [statement] = schedule
    assert {
        "sagemaker:CreateDataQualityJobDefinition",
        "sagemaker:DeleteDataQualityJobDefinition",
        "sagemaker:UpdateMonitoringSchedule",
        "sagemaker:DeleteMonitoringSchedule",
    } <= set(actions(statement))
    assert f"monitoring-schedule/mlplatform-{stage.config.name}-bank-marketing-data-quality" in json.dumps(
        statement["Resource"]
    )
    monitoring = logical_id(template, "AWS::IAM::Role", "MonitoringRole")
    [passes] = [s for s in granted if s["Action"] == "iam:PassRole"]
    assert passes["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert {"Fn::GetAtt": [monitoring, "Arn"]} in passes["Resource"]  # beside the execution role


def unmonitored(stage_config, lone_app) -> Template:
    """The hosting stack of a stage that sets monitoring.data_quality = false."""
    config = stage_config(monitoring={"data_quality": False})
    app = lone_app()
    data = DataStack(app, "Data", config=config)
    network = NetworkStack(app, "Network", config=config, key=data.key)
    jobs = cdk.Stack(app, "Jobs")
    stack = HostingStack(
        app,
        "Hosting",
        foundation=Foundation.of(config, {}, data, network),
        dataset="bank-marketing",
        execution_role=iam.Role(jobs, "Execution", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")),
        security_group=ec2.SecurityGroup(jobs, "Jobs", vpc=network.vpc),
        model_package_group="mlplatform-variant-bank-marketing",
        preparation=PreparationRuns("mlplatform-variant-prepare", data.data_store.bucket.bucket_name, 42),
    )
    return Template.from_stack(stack)


def test_a_stage_without_data_quality_has_no_schedule_parameter_or_rules(stage_config, lone_app):
    template = unmonitored(stage_config, lone_app)
    as_json = template.to_json()
    assert "BaselineUri" not in as_json["Parameters"] and "Monitored" not in as_json["Conditions"]
    assert not resources(template, "AWS::SageMaker::MonitoringSchedule")
    assert [r for r in resources(template, "AWS::Events::Rule") if "Baseline" in r or "CheckDrift" in r] == []
    assert [f for f in resources(template, "AWS::Lambda::Function") if f.startswith("CheckDrift")] == []
    assert "-drift" not in json.dumps(resources(template, "AWS::CloudWatch::Alarm"))
    variables = one(template, "AWS::Lambda::Function")["Properties"]["Environment"]["Variables"]
    assert variables["DATA_QUALITY"] == "false"
    assert "processing-job" not in json.dumps(statements(template, "DeployModelRoleDefaultPolicy"))


@pytest.mark.parametrize(
    "schedule", ["cron(0 * ? * * *)", "cron(0 6 ? * * *)", "cron(0 0/6 ? * * *)", "cron(0 12/12 ? * * *)"]
)
def test_the_schedules_model_monitor_takes_are_accepted(stage_config, schedule):
    assert stage_config(monitoring={"schedule": schedule}).monitoring.schedule == schedule


@pytest.mark.parametrize(
    "schedule", ["rate(1 hour)", "cron(30 * ? * * *)", "cron(0 24 ? * * *)", "cron(0 * * * ? *)", "NOW", ""]
)
def test_other_schedules_are_refused_by_name(stage_config, schedule):
    with pytest.raises(ConfigError, match=r"monitoring\.schedule"):
        stage_config(monitoring={"schedule": schedule})


def test_monitoring_needs_the_endpoint_to_capture(stage_config):
    with pytest.raises(ConfigError, match="capture_sampling_percentage is 0"):
        stage_config(hosting={"capture_sampling_percentage": 0})
    assert stage_config(hosting={"capture_sampling_percentage": 0}, monitoring={"data_quality": False})
