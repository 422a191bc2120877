"""TrainingStack: execution role, registry, images and the three Lambdas' wiring, for dev and prod."""

from __future__ import annotations

import json
import tarfile

import pytest
from aws_cdk.assertions import Template
from constructs.local_bundling import tarball_of
from constructs.sagemaker_images import Image, registries
from moto.events.models import EventPattern

from stacks.training import IMAGES, SHARED_MODULES, SOURCE_FILES, TRAINING_CODE
from tests.functions import DATA_BUCKET, object_created
from tests.helpers import logical_id, properties, resources
from tests.test_etl_stack import concrete


def training(stage) -> Template:
    return stage.templates["training"]


def function_env(stage, fragment: str) -> dict:
    template = training(stage)
    name = logical_id(template, "AWS::Lambda::Function", fragment)
    return resources(template, "AWS::Lambda::Function")[name]["Properties"]["Environment"]["Variables"]


def policy_of(stage, fragment: str) -> list[dict]:
    template = training(stage)
    name = logical_id(template, "AWS::IAM::Policy", fragment)
    return resources(template, "AWS::IAM::Policy")[name]["Properties"]["PolicyDocument"]["Statement"]


def actions(statement: dict) -> list[str]:
    return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]


def pattern(stage, fragment: str) -> EventPattern:
    template = training(stage)
    rule = resources(template, "AWS::Events::Rule")[logical_id(template, "AWS::Events::Rule", fragment)]
    return EventPattern.load(json.dumps(concrete(rule["Properties"]["EventPattern"], {"DataBucket": DATA_BUCKET})))


def test_one_model_package_group_per_dataset(stage):
    names = sorted(p["ModelPackageGroupName"] for p in properties(training(stage), "AWS::SageMaker::ModelPackageGroup"))
    prefix = stage.config.stack_prefix.lower()
    assert names == [f"{prefix}-{d}" for d in ("bank-marketing", "car-evaluation", "vertebral-column", "wine-quality")]


def test_images_come_from_the_sdk_tables_for_the_stage_region(stage):
    images = json.loads(json.dumps(function_env(stage, "StartTrainingFunction")["IMAGES"]))
    if stage.config.region:  # a named region: the mapping is resolved at synth
        accounts, repository = registries(IMAGES["xgboost"])
        expected = f"{accounts[stage.config.region]}.dkr.ecr.{stage.config.region}.amazonaws.com/{repository}:3.2-0"
        assert expected in json.dumps(images)
    else:  # environment-agnostic: looked up by AWS::Region at deploy time
        template = training(stage).to_json()
        mapping = next(iter(template["Mappings"].values()))
        assert mapping["eu-west-1"]["Xgboost"].endswith(".dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.2-0")
        assert mapping["cn-north-1"]["Xgboost"].endswith(".amazonaws.com.cn/sagemaker-xgboost:3.2-0")
        assert "Fn::FindInMap" in json.dumps(images)


def test_an_image_version_the_sdk_lacks_fails_synth():
    with pytest.raises(ValueError, match=r"sagemaker-core has no xgboost image 0\.1-0"):
        registries(Image("xgboost", "0.1-0"))


def test_execution_role_reads_prepared_writes_models_and_nothing_more(stage):
    statements = policy_of(stage, "ExecutionRoleDefaultPolicy")
    writes = [s for s in statements if any(a.startswith(("s3:PutObject", "s3:DeleteObject")) for a in actions(s))]
    written = json.dumps([s["Resource"] for s in writes])
    assert "/training/*" in written and "/batch-output/*" in written and "/capture/*" in written
    assert "/prepared/" not in written and "/raw/" not in written
    assert not any("Delete" in a for s in statements for a in actions(s) if a.startswith("s3:"))
    for statement in statements:
        for action in actions(statement):
            assert action != "*" and not action.endswith(":*")


def test_start_training_may_pass_only_the_execution_role(stage):
    template = training(stage)
    role = logical_id(template, "AWS::IAM::Role", "ExecutionRole")
    passes = [s for s in policy_of(stage, "StartTrainingRoleDefaultPolicy") if "iam:PassRole" in actions(s)]
    assert passes == [
        {
            "Action": "iam:PassRole",
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [role, "Arn"]},
        }
    ]
    creates = [
        s for s in policy_of(stage, "StartTrainingRoleDefaultPolicy") if "sagemaker:CreateTrainingJob" in actions(s)
    ]
    assert creates[0]["Condition"] == {"StringEquals": {"aws:RequestTag/ml-platform:stage": stage.config.name}}


def test_start_training_fires_on_a_runs_success_marker_only(stage):
    rule = pattern(stage, "StartTrainingRule")
    assert rule.matches_event(object_created("prepared/bank-marketing/20261112T093000Z-0123456789/_SUCCESS"))
    assert not rule.matches_event(object_created("prepared/bank-marketing/20261112T093000Z-0123456789/schema.json"))
    assert not rule.matches_event(object_created("raw/bank-marketing/_SUCCESS"))


def test_register_model_fires_when_a_training_or_tuning_job_ends(stage):
    rule = pattern(stage, "RegisterModelRule")
    training_event = {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Training Job State Change",
        "detail": {"TrainingJobName": "j", "TrainingJobStatus": "Completed", "Tags": {}},
    }
    tuning_event = {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker HyperParameter Tuning Job State Change",
        "detail": {"HyperParameterTuningJobName": "t", "HyperParameterTuningJobStatus": "Failed"},
    }
    assert rule.matches_event(training_event)
    assert rule.matches_event(tuning_event)
    in_progress = {**training_event, "detail": {**training_event["detail"], "TrainingJobStatus": "InProgress"}}
    assert not rule.matches_event(in_progress)
    assert not rule.matches_event({**training_event, "detail-type": "SageMaker Endpoint State Change"})


def test_batch_transform_fires_under_batch_input(stage):
    rule = pattern(stage, "StartBatchTransformRule")
    assert rule.matches_event(object_created("batch-input/car-evaluation/cars.csv"))
    assert not rule.matches_event(object_created("batch-output/car-evaluation/cars.csv.out"))


def test_spot_and_batch_settings_follow_the_stage(stage):
    env = function_env(stage, "StartTrainingFunction")
    assert env["MANAGED_SPOT"] == ("true" if stage.config.training.managed_spot else "false")
    batch = function_env(stage, "StartBatchTransformFunction")
    assert batch["INSTANCE_TYPE"] == stage.config.training.batch_instance_type


def test_every_lambda_has_a_dlq_and_two_alarms(stage):
    template = training(stage)
    functions = [f for f in properties(template, "AWS::Lambda::Function") if "DeadLetterConfig" in f]
    assert len(functions) == 3
    assert len(properties(template, "AWS::CloudWatch::Alarm")) == 6
    assert all(f["Runtime"] == "python3.14" and "VpcConfig" in f for f in functions)


def test_the_training_code_tarball_is_byte_stable_and_holds_the_scripts(tmp_path):
    write = tarball_of(TRAINING_CODE, SOURCE_FILES, "sourcedir.tar.gz", shared=SHARED_MODULES)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    write(tmp_path / "a"), write(tmp_path / "b")
    first, second = (
        (tmp_path / "a" / "sourcedir.tar.gz").read_bytes(),
        (tmp_path / "b" / "sourcedir.tar.gz").read_bytes(),
    )
    assert first == second
    with tarfile.open(tmp_path / "a" / "sourcedir.tar.gz") as archive:
        assert sorted(archive.getnames()) == sorted([*SOURCE_FILES, "dataset_spec.py"])


def test_instances_of_a_multi_instance_job_reach_each_other_by_ipsec(stage):
    """Inter-container traffic encryption runs IPsec between a job's instances: UDP 500 and ESP
    (IP protocol 50) in and out between members of the jobs' security group, and no wider."""
    template = stage.templates["training"]
    group = logical_id(template, "AWS::EC2::SecurityGroup", "JobSecurityGroup")
    for kind, peer in (
        ("AWS::EC2::SecurityGroupIngress", "SourceSecurityGroupId"),
        ("AWS::EC2::SecurityGroupEgress", "DestinationSecurityGroupId"),
    ):
        rules = {
            (r["IpProtocol"], r.get("FromPort"), r.get("ToPort"))
            for r in properties(template, kind)
            if r["GroupId"] == {"Fn::GetAtt": [group, "GroupId"]} and r.get(peer) == {"Fn::GetAtt": [group, "GroupId"]}
        }
        assert {("udp", 500, 500), ("50", None, None)} <= rules, (kind, rules)  # 50: ESP


def test_training_jobs_carry_debuggers_profiler_report_rule_where_the_stage_profiles(stage):
    """dev profiles (its report beside each model); prod does not unless its file says so."""
    variable = function_env(stage, "StartTraining")["PROFILER_RULE"]
    if not stage.config.training.profiler:
        assert variable == "{}"
        return
    text = json.dumps(variable)
    assert '\\"RuleConfigurationName\\":\\"ProfilerReport\\"' in text
    assert '\\"rule_to_invoke\\":\\"ProfilerReport\\"' in text  # smdebug_rulesconfig's own parameters
    assert "Fn::FindInMap" in text  # the rule image by region, from the SDK's debugger table
    assert stage.config.name == "dev"
