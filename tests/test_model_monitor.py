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
from config.datasets import dataset_specs
from local.matcher import matches
from stacks.data import DataStack
from stacks.etl import PreparationRuns
from stacks.foundation import Foundation
from stacks.hosting import ANALYZER, HostingStack
from stacks.network import NetworkStack
from tests.conftest import ROOT
from tests.helpers import actions, logical_id, resources


def hosting(stage):
    return stage.templates["hosting-bank-marketing"]


def one(template, resource_type: str, within: str = "") -> dict:
    """The one resource of ``resource_type`` (whose logical id starts with ``within``)."""
    [resource] = [r for name, r in resources(template, resource_type).items() if name.startswith(within)]
    return resource


def test_the_schedule_exists_only_while_a_model_with_a_baseline_is_live(stage):
    template = hosting(stage).to_json()
    assert template["Parameters"]["BaselineUri"]["Default"] == ""
    assert template["Conditions"]["Monitored"] == {
        "Fn::And": [{"Condition": "HasModel"}, {"Fn::Not": [{"Fn::Equals": [{"Ref": "BaselineUri"}, ""]}]}]
    }
    for kind in ("AWS::SageMaker::DataQualityJobDefinition", "AWS::SageMaker::MonitoringSchedule"):
        assert one(hosting(stage), kind, "DataQuality")["Condition"] == "Monitored"


def test_the_schedule_runs_on_the_stages_expression_against_the_endpoint(stage):
    template = hosting(stage)
    schedule = one(template, "AWS::SageMaker::MonitoringSchedule", "DataQuality")["Properties"]
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
    endpoint = f"mlplatform-{stage.config.name}-bank-marketing"
    run, quality = (f"{endpoint}/{endpoint}-{kind}/2026/11/24/13" for kind in ("data-quality", "model-quality"))
    assert matches(pattern, report(f"monitoring/bank-marketing/reports/{run}/constraint_violations.json"))
    assert not matches(pattern, report(f"monitoring/bank-marketing/reports/{run}/statistics.json"))
    assert not matches(pattern, report(f"monitoring/car-evaluation/reports/{run}/constraint_violations.json"))
    assert not matches(pattern, report("monitoring/bank-marketing/baselines/x/constraint_violations.json"))
    other = "mlplatform-dev-car-evaluation/mlplatform-dev-car-evaluation-data-quality/2026/11/24/13"
    assert not matches(pattern, report(f"monitoring/bank-marketing/reports/{other}/constraint_violations.json"))
    # The model-quality schedule's statistics, where the stage monitors model quality (dev).
    statistics = report(f"monitoring/bank-marketing/reports/{quality}/statistics.json")
    assert matches(pattern, statistics) is stage.config.monitoring.model_quality
    assert not matches(pattern, report(f"monitoring/bank-marketing/reports/{quality}/constraint_violations.json"))


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
    """The hosting stack of a stage that sets monitoring.data_quality and model_quality false."""
    config = stage_config(monitoring={"data_quality": False, "model_quality": False})
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
    with pytest.raises(ConfigError, match="model_quality = True is not allowed"):
        stage_config(hosting={"capture_sampling_percentage": 0}, monitoring={"data_quality": False})
    assert stage_config(
        hosting={"capture_sampling_percentage": 0}, monitoring={"data_quality": False, "model_quality": False}
    )


# --- Model quality: the live model's predictions joined with their uploaded labels -----------------


def quality(stage) -> dict:
    return one(hosting(stage), "AWS::SageMaker::ModelQualityJobDefinition")


def test_model_quality_is_there_only_where_the_stage_asks_for_it(stage):
    template = hosting(stage)
    as_json = template.to_json()
    found = resources(template, "AWS::SageMaker::ModelQualityJobDefinition")
    assert bool(found) is stage.config.monitoring.model_quality
    assert ("DecisionThreshold" in as_json["Parameters"]) is stage.config.monitoring.model_quality
    variables = check_drift_function(template)["Properties"]["Environment"]["Variables"]
    assert variables["QUALITY_METRIC"] == ("auc" if stage.config.monitoring.model_quality else "")


def test_model_quality_runs_only_while_a_model_is_live_and_its_threshold_is_known(dev):
    template = hosting(dev)
    as_json = template.to_json()
    assert as_json["Conditions"]["QualityMonitored"] == {
        "Fn::And": [{"Condition": "HasModel"}, {"Fn::Not": [{"Fn::Equals": [{"Ref": "DecisionThreshold"}, ""]}]}]
    }
    for kind in ("AWS::SageMaker::ModelQualityJobDefinition", "AWS::SageMaker::MonitoringSchedule"):
        assert one(template, kind, "ModelQuality")["Condition"] == "QualityMonitored"
    parameter = as_json["Parameters"]["DecisionThreshold"]
    assert parameter["Default"] == ""
    pattern = re.compile(parameter["AllowedPattern"])
    assert all(pattern.match(value) for value in ("", "0.423100", "0", "1", "1.000000"))
    assert not any(pattern.match(value) for value in ("1.5", "-0.1", "abc", "0.5 ", "inf"))


def test_model_quality_reads_the_binary_answers_probability_at_the_models_threshold(dev):
    """The endpoint answers probability,label per record (training_jobs/inference.py): the job reads
    column 0 and the live model's own threshold, so binary labels are 1 and 0."""
    definition = quality(dev)["Properties"]
    assert definition["ModelQualityAppSpecification"]["ProblemType"] == "BinaryClassification"
    endpoint_input = definition["ModelQualityJobInput"]["EndpointInput"]
    assert endpoint_input["ProbabilityAttribute"] == "0"
    assert endpoint_input["ProbabilityThresholdAttribute"] == {"Ref": "DecisionThreshold"}
    assert "InferenceAttribute" not in endpoint_input
    ground_truth = json.dumps(definition["ModelQualityJobInput"]["GroundTruthS3Input"]["S3Uri"])
    assert ground_truth.endswith('"/ground-truth/bank-marketing"]]}')


def test_model_quality_reads_the_predictions_whose_labels_are_in(dev):
    """Each run reads one schedule period of predictions that ended ground_truth_delay_hours ago
    (dev: daily, so the day that ended 24 hours before the run)."""
    monitoring = dev.config.monitoring
    assert (monitoring.period_hours, monitoring.ground_truth_delay_hours) == (24, 24)
    endpoint_input = quality(dev)["Properties"]["ModelQualityJobInput"]["EndpointInput"]
    assert (endpoint_input["StartTimeOffset"], endpoint_input["EndTimeOffset"]) == ("-PT48H", "-PT24H")
    schedule = one(hosting(dev), "AWS::SageMaker::MonitoringSchedule", "ModelQuality")["Properties"]
    config = schedule["MonitoringScheduleConfig"]
    assert config["MonitoringType"] == "ModelQuality"
    assert config["ScheduleConfig"]["ScheduleExpression"] == monitoring.schedule
    assert schedule["MonitoringScheduleName"] == "mlplatform-dev-bank-marketing-model-quality"


def test_model_quality_jobs_run_like_the_data_quality_jobs(dev):
    """In the VPC, isolated, encrypted with the platform key, as the dataset's monitoring role,
    reporting under monitoring/<dataset>/reports/."""
    data, model = (
        one(hosting(dev), f"AWS::SageMaker::{kind}JobDefinition")["Properties"]
        for kind in ("DataQuality", "ModelQuality")
    )
    for key in ("JobResources", "NetworkConfig", "RoleArn", "StoppingCondition"):
        assert model[key] == data[key], key
    assert model["ModelQualityJobOutputConfig"] == data["DataQualityJobOutputConfig"]
    assert model["NetworkConfig"]["EnableNetworkIsolation"] is True


def test_the_model_quality_alarm_fires_below_the_gates_bar(dev):
    [alarm] = [a for a in resources(hosting(dev), "AWS::CloudWatch::Alarm").values() if "QualityAlarm" in json.dumps(a)]
    alarm = alarm["Properties"]
    assert alarm["AlarmName"] == "mlplatform-dev-bank-marketing-model-quality"
    assert (alarm["MetricName"], alarm["Namespace"], alarm["Statistic"]) == (
        "LiveModelQuality",
        "MLPlatform",
        "Minimum",
    )
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {"Stage": "dev", "Dataset": "bank-marketing"}
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 0.9)  # the spec's auc minimum
    assert alarm["TreatMissingData"] == "ignore"
    assert "OperatorTopic" in json.dumps(alarm["AlarmActions"]) and "OperatorTopic" in json.dumps(alarm["OKActions"])
    assert "docs/runbook.md#model-quality" in alarm["AlarmDescription"]


def test_the_monitoring_role_reads_the_uploaded_labels_only_where_model_quality_is_on(stage):
    policy = json.dumps(statements(hosting(stage), "MonitoringRoleDefaultPolicy"))
    assert ("ground-truth/bank-marketing/*" in policy) is stage.config.monitoring.model_quality
    assert "ground-truth/car-evaluation" not in policy


def test_the_deployment_role_manages_the_model_quality_definition_where_it_exists(stage):
    [statement] = [
        s
        for s in statements(hosting(stage), "DeploymentRoleDefaultPolicy")
        if "sagemaker:CreateMonitoringSchedule" in actions(s)
    ]
    on = stage.config.monitoring.model_quality
    assert ("sagemaker:CreateModelQualityJobDefinition" in actions(statement)) is on
    assert ("bank-marketing-model-quality" in json.dumps(statement["Resource"])) is on


def variant_hosting(stage_config, lone_app, dataset: str, monitoring: dict, specs: dict | None = None) -> Template:
    """The hosting stack of ``dataset`` in a stage with ``monitoring`` as given."""
    config = stage_config(monitoring=monitoring, hosting={"datasets": [dataset]})
    app = lone_app()
    data = DataStack(app, "Data", config=config)
    network = NetworkStack(app, "Network", config=config, key=data.key)
    jobs = cdk.Stack(app, "Jobs")
    stack = HostingStack(
        app,
        "Hosting",
        foundation=Foundation.of(config, specs if specs is not None else dataset_specs(), data, network),
        dataset=dataset,
        execution_role=iam.Role(jobs, "Execution", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")),
        security_group=ec2.SecurityGroup(jobs, "Jobs", vpc=network.vpc),
        model_package_group=f"mlplatform-variant-{dataset}",
        preparation=PreparationRuns("mlplatform-variant-prepare", data.data_store.bucket.bucket_name, 42),
    )
    return Template.from_stack(stack)


def test_a_multiclass_models_label_column_comes_from_deploy_model(stage_config, lone_app):
    """car evaluation answers one probability per class, then the label: the column is a parameter."""
    template = variant_hosting(stage_config, lone_app, "car-evaluation", {"model_quality": True})
    definition = one(template, "AWS::SageMaker::ModelQualityJobDefinition")["Properties"]
    assert definition["ModelQualityAppSpecification"]["ProblemType"] == "MulticlassClassification"
    endpoint_input = definition["ModelQualityJobInput"]["EndpointInput"]
    assert endpoint_input["InferenceAttribute"] == {"Ref": "LabelColumn"}
    assert "ProbabilityAttribute" not in endpoint_input
    pattern = re.compile(template.to_json()["Parameters"]["LabelColumn"]["AllowedPattern"])
    assert pattern.match("4") and pattern.match("") and not pattern.match("0") and not pattern.match("x")


def test_an_hourly_schedule_reads_the_hour_that_ended_the_delay_ago(stage_config, lone_app):
    monitoring = {"model_quality": True, "schedule": "cron(0 0/6 ? * * *)", "ground_truth_delay_hours": 3}
    template = variant_hosting(stage_config, lone_app, "bank-marketing", monitoring)
    endpoint_input = one(template, "AWS::SageMaker::ModelQualityJobDefinition")["Properties"]["ModelQualityJobInput"]
    assert (endpoint_input["EndpointInput"]["StartTimeOffset"], endpoint_input["EndpointInput"]["EndTimeOffset"]) == (
        "-PT9H",
        "-PT3H",
    )


def test_a_spec_whose_metric_model_monitor_does_not_compute_is_refused_by_name(stage_config, lone_app, tmp_path):
    spec = json.loads((ROOT / "datasets" / "bank-marketing.json").read_text())
    spec["training"]["objective_metric"] = "log_loss"
    spec["training"]["minimum"] = 0.5
    path = tmp_path / "bank-marketing.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(ConfigError, match=r"Model Monitor computes auc, accuracy, f1, precision, recall .* 'log_loss'"):
        variant_hosting(stage_config, lone_app, "bank-marketing", {"model_quality": True}, {"bank-marketing": path})


@pytest.mark.parametrize(
    ("schedule", "hours"),
    [("cron(0 * ? * * *)", 1), ("cron(0 6 ? * * *)", 24), ("cron(0 0/6 ? * * *)", 6), ("cron(0 12/12 ? * * *)", 12)],
)
def test_a_schedules_period(stage_config, schedule, hours):
    assert stage_config(monitoring={"schedule": schedule}).monitoring.period_hours == hours


def test_an_hourly_model_quality_run_has_half_an_hour(stage_config):
    """The ground-truth merge and the analysis share an hourly run's time: 1800 s at most."""
    hourly = {"schedule": "cron(0 * ? * * *)", "model_quality": True}
    with pytest.raises(ConfigError, match="max_runtime_minutes must be 30 or less"):
        stage_config(monitoring={**hourly, "max_runtime_minutes": 45})
    assert stage_config(monitoring={**hourly, "max_runtime_minutes": 30})
    assert stage_config(monitoring={**hourly, "model_quality": False, "max_runtime_minutes": 45})
