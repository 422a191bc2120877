"""EtlStack: the Glue job, crawler and catalogue, start_etl and its wiring, for dev and prod."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from moto.events.models import EventPattern

from config.datasets import DATASETS_DIR, dataset_specs
from etl.dataset_spec import SpecError
from tests.functions import DATA_BUCKET, event_fixture, object_created
from tests.helpers import logical_id, properties, resources


def etl(stage) -> Template:
    return stage.templates["etl"]


def key_reference(stage) -> dict:
    return {"Fn::ImportValue": Match.string_like_regexp(rf"^{stage.config.stack_prefix}-Data:.*PlatformKey")}


def concrete(value: Any, names: dict[str, str]) -> Any:
    """An event pattern with CloudFormation references replaced by the names they resolve to."""
    if isinstance(value, dict):
        text = json.dumps(value)
        for fragment, name in names.items():
            if fragment in text and ("Fn::ImportValue" in value or "Ref" in value):
                return name
        return {k: concrete(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [concrete(item, names) for item in value]
    return value


def prepare_job(template: Template) -> str:
    return logical_id(template, "AWS::Glue::Job", "PreparationJob")


def rule_pattern(template: Template, fragment: str, names: dict[str, str]) -> EventPattern:
    rule = resources(template, "AWS::Events::Rule")[logical_id(template, "AWS::Events::Rule", fragment)]
    return EventPattern.load(json.dumps(concrete(rule["Properties"]["EventPattern"], names)))


# --- the Glue job -------------------------------------------------------------------------------


def test_job_is_glue_5_pyspark_with_stage_workers_and_no_retries(stage):
    etl_config = stage.config.etl
    etl(stage).has_resource_properties(
        "AWS::Glue::Job",
        {
            "GlueVersion": "5.0",
            "Command": {
                "Name": "glueetl",
                "PythonVersion": "3",
                "ScriptLocation": Match.any_value(),
            },
            "WorkerType": etl_config.worker_type,
            "NumberOfWorkers": etl_config.number_of_workers,
            "Timeout": etl_config.timeout_minutes,
            "MaxRetries": 0,
            "ExecutionProperty": {"MaxConcurrentRuns": etl_config.max_concurrent_runs},
            "SecurityConfiguration": {"Ref": "SecurityConfiguration"},
            "Connections": {"Connections": [{"Ref": "NetworkConnection"}]},
        },
    )


def test_job_arguments_disable_bookmarks_and_enable_continuous_logging(stage):
    [job] = properties(etl(stage), "AWS::Glue::Job")
    # The script is etl/prepare.py, shipped as a CDK file asset (an Fn::Sub while the
    # environment is unknown, a plain URI in a named one).
    assert re.search(r'"s3://cdk-[^"]*\.py"', json.dumps(job["Command"]["ScriptLocation"]))
    arguments = job["DefaultArguments"]
    assert arguments["--job-bookmark-option"] == "job-bookmark-disable"
    assert arguments["--enable-continuous-cloudwatch-log"] == "true"
    assert arguments["--enable-metrics"] == "true"
    assert arguments["--seed"] == str(stage.config.etl.seed)
    assert "--extra-py-files" in arguments  # etl/dataset_spec.py beside the script


def test_the_spec_module_reaches_glue_as_a_zip_that_keeps_its_module_name(stage):
    """Glue puts each --extra-py-files object on the path under its object name, and an asset
    object is named by its hash: a lone .py would import as <hash>. The zip keeps
    dataset_spec.py, and nothing else, at its root."""
    [job] = properties(etl(stage), "AWS::Glue::Job")
    location = json.dumps(job["DefaultArguments"]["--extra-py-files"])
    asset_hash = re.search(r"/([0-9a-f]{64})\.zip", location).group(1)
    manifest = json.loads((stage.outdir / f"{stage.config.stack_prefix}-Etl.assets.json").read_text())
    source = stage.outdir / manifest["files"][asset_hash]["source"]["path"]
    assert manifest["files"][asset_hash]["source"]["packaging"] == "zip"
    assert sorted(p.name for p in source.iterdir()) == ["dataset_spec.py"]


def test_security_configuration_encrypts_s3_logs_and_bookmarks_with_the_platform_key(stage):
    etl(stage).has_resource_properties(
        "AWS::Glue::SecurityConfiguration",
        {
            "EncryptionConfiguration": {
                "S3Encryptions": [{"S3EncryptionMode": "SSE-KMS", "KmsKeyArn": key_reference(stage)}],
                "CloudWatchEncryption": {"CloudWatchEncryptionMode": "SSE-KMS", "KmsKeyArn": key_reference(stage)},
                "JobBookmarksEncryption": {"JobBookmarksEncryptionMode": "CSE-KMS", "KmsKeyArn": key_reference(stage)},
            }
        },
    )


def test_security_configuration_is_named_after_the_stage(stage):
    etl(stage).has_resource_properties("AWS::Glue::SecurityConfiguration", {"Name": f"{stage.config.stack_prefix}-etl"})


def test_job_and_crawler_run_inside_the_vpc(stage):
    template = etl(stage)
    group = logical_id(template, "AWS::EC2::SecurityGroup", "GlueNetworkSecurityGroup")
    template.has_resource_properties(
        "AWS::Glue::Connection",
        {
            "ConnectionInput": {
                "ConnectionType": "NETWORK",
                "Name": stage.config.stack_prefix + "-etl-network",
                "PhysicalConnectionRequirements": Match.object_like(
                    {"SecurityGroupIdList": [{"Fn::GetAtt": [group, "GroupId"]}]}
                ),
            }
        },
    )
    # Glue's own rule: the workers of a run reach each other; nothing else comes in.
    [ingress] = properties(template, "AWS::EC2::SecurityGroupIngress")
    assert ingress["SourceSecurityGroupId"] == {"Fn::GetAtt": [group, "GroupId"]}
    assert ingress["GroupId"] == {"Fn::GetAtt": [group, "GroupId"]}


# --- the catalogue --------------------------------------------------------------------------------


def test_crawler_catalogues_raw_and_prepared_on_the_stage_schedule(stage):
    template = etl(stage)
    [crawler] = properties(template, "AWS::Glue::Crawler")
    paths = [json.dumps(target["Path"]) for target in crawler["Targets"]["S3Targets"]]
    assert any('/raw/"' in p for p in paths) and any('/prepared/"' in p for p in paths)
    for target in crawler["Targets"]["S3Targets"]:
        assert {"**/_SUCCESS", "**/_RUN.json", "**/schema.json", "**/report.json"} <= set(target["Exclusions"])
        assert target["ConnectionName"] == {"Ref": "NetworkConnection"}
    assert crawler["Schedule"] == {"ScheduleExpression": stage.config.etl.crawler_schedule}
    # only what is new, once a day in the shipped stages
    assert crawler["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"}
    assert crawler["SchemaChangePolicy"] == {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
    assert stage.config.etl.crawler_schedule == "cron(0 3 * * ? *)"
    assert crawler["CrawlerSecurityConfiguration"] == {"Ref": "SecurityConfiguration"}
    assert crawler["DatabaseName"] == {"Ref": "Database"}
    template.has_resource_properties(
        "AWS::Glue::Database", {"DatabaseInput": Match.object_like({"Name": f"ml_platform_{stage.config.name}"})}
    )


# --- start_etl -------------------------------------------------------------------------------------


def test_start_etl_rule_matches_new_raw_objects_of_the_data_bucket_only(stage):
    pattern = rule_pattern(etl(stage), "StartEtlRule", {"DataBucket": DATA_BUCKET})
    assert pattern.matches_event(object_created("raw/bank-marketing/bank-additional.csv"))
    assert pattern.matches_event(object_created("raw/new-dataset/part-2.csv"))
    assert not pattern.matches_event(object_created("prepared/bank-marketing/run/_SUCCESS"))
    assert not pattern.matches_event(object_created("batch-input/bank-marketing/x.csv"))
    assert not pattern.matches_event(object_created("raw/bank-marketing/x.csv", bucket="another-bucket"))
    deleted = object_created("raw/bank-marketing/x.csv")
    deleted["detail-type"] = "Object Deleted"
    assert not pattern.matches_event(deleted)


def test_start_etl_runs_with_the_stages_function_settings_and_the_preparation_job(stage):
    """What EventFunction does with its settings is tested on its own (tests/test_constructs.py);
    here, that the stack hands it this stage's settings, key and job."""
    template = etl(stage)
    functions = stage.config.functions
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "ReservedConcurrentExecutions": functions.reserved_concurrency or Match.absent(),
            "KmsKeyArn": key_reference(stage),
            "LoggingConfig": Match.object_like({"ApplicationLogLevel": functions.log_level}),
            "Environment": {"Variables": Match.object_like({"JOB_NAME": {"Ref": prepare_job(template)}})},
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig", {"MaximumRetryAttempts": functions.retry_attempts}
    )


def test_start_etl_knows_every_shipped_dataset_spec(stage):
    [function] = [
        f
        for f in properties(etl(stage), "AWS::Lambda::Function")
        if "DATASET_SPECS" in json.dumps(f.get("Environment"))
    ]
    specs = json.dumps(function["Environment"]["Variables"]["DATASET_SPECS"])
    for name in ("bank-marketing", "car-evaluation", "vertebral-column", "wine-quality"):
        assert f'\\"{name}\\"' in specs


def test_start_etl_may_start_only_this_job_and_touch_only_run_records(stage):
    template = etl(stage)
    policy = resources(template, "AWS::IAM::Policy")[
        logical_id(template, "AWS::IAM::Policy", "StartEtlRoleDefaultPolicy")
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    glue = [s for s in statements if any(a.startswith("glue:") for a in _actions(s))]
    assert len(glue) == 1
    assert sorted(_actions(glue[0])) == ["glue:GetJobRuns", "glue:StartJobRun"]
    assert "job/" in json.dumps(glue[0]["Resource"]) and prepare_job(template) in json.dumps(glue[0]["Resource"])
    s3 = [s for s in statements if any(a.startswith("s3:") for a in _actions(s))]
    listing = [s for s in s3 if _actions(s) == ["s3:ListBucket"]]
    # the snapshot a run is named after: raw/ listed, and nothing else of the bucket
    assert [s["Condition"] for s in listing] == [{"StringLike": {"s3:prefix": "raw/*"}}]
    for statement in s3:
        if statement in listing:
            continue
        if any(a != "s3:List*" and not a.startswith("s3:GetBucket") for a in _actions(statement)):
            assert "/prepared/*/_RUN.json" in json.dumps(statement["Resource"]), statement


def test_alarms_on_errors_and_dead_letters_notify_the_operators(stage):
    template = etl(stage)
    alarms = properties(template, "AWS::CloudWatch::Alarm")
    by_metric = {alarm["MetricName"]: alarm for alarm in alarms}
    assert {"Errors", "ApproximateNumberOfMessagesVisible"} <= set(by_metric)
    for alarm in by_metric.values():
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        [action] = alarm["AlarmActions"]
        assert "OperatorTopic" in json.dumps(action)


# --- failures --------------------------------------------------------------------------------------


def test_failed_job_runs_are_published_to_the_operators(stage):
    template = etl(stage)
    pattern = rule_pattern(template, "PreparationFailedRule", {prepare_job(template): "PrepareJob-abc123"})
    failed = event_fixture("glue_job_state_change_failed.json")
    assert pattern.matches_event(failed)
    assert not pattern.matches_event({**failed, "detail": {**failed["detail"], "state": "SUCCEEDED"}})
    assert not pattern.matches_event({**failed, "detail": {**failed["detail"], "jobName": "someone-elses-job"}})
    rule = resources(template, "AWS::Events::Rule")[logical_id(template, "AWS::Events::Rule", "PreparationFailedRule")]
    [target] = rule["Properties"]["Targets"]
    assert "OperatorTopic" in json.dumps(target["Arn"])
    # EventBridge reaches an SNS target through the topic's policy only, never a role:
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html
    assert "RoleArn" not in target
    assert "<detail-message>" in target["InputTransformer"]["InputTemplate"]


def test_no_statement_grants_every_action_of_a_service(stage):
    for policy in properties(etl(stage), "AWS::IAM::Policy") + properties(etl(stage), "AWS::IAM::ManagedPolicy"):
        for statement in policy["PolicyDocument"]["Statement"]:
            for action in _actions(statement):
                assert action != "*" and not action.endswith(":*"), statement


def test_glue_job_reads_raw_and_writes_prepared_only(stage):
    template = etl(stage)
    policy = resources(template, "AWS::IAM::Policy")[
        logical_id(template, "AWS::IAM::Policy", "PreparationJobRoleDefaultPolicy")
    ]
    text = json.dumps(policy["Properties"]["PolicyDocument"])
    writes = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(a.startswith(("s3:PutObject", "s3:DeleteObject")) for a in _actions(s))
    ]
    assert writes and all(
        "/prepared/*" in json.dumps(s["Resource"]) and "/raw/" not in json.dumps(s["Resource"]) for s in writes
    )
    assert "/raw/*" in text


def test_log_groups_follow_the_stage_removal_policy(dev, prod):
    for stage, policy in ((dev, "Delete"), (prod, "Retain")):
        for name, group in resources(etl(stage), "AWS::Logs::LogGroup").items():
            assert group["DeletionPolicy"] == policy, name


def _actions(statement: dict) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def test_a_broken_spec_fails_synth(tmp_path):
    (tmp_path / "broken.json").write_text(json.dumps({"dataset": "broken", "csv": {"header": True}}))
    with pytest.raises(SpecError, match="dataset 'broken': target is required"):
        dataset_specs(folder=tmp_path)


def test_a_spec_must_be_named_after_its_dataset(tmp_path):
    spec = json.loads((DATASETS_DIR / "car-evaluation.json").read_text())
    (tmp_path / "cars.json").write_text(json.dumps(spec))
    with pytest.raises(SpecError, match=r"must be named car-evaluation\.json, not cars\.json"):
        dataset_specs(folder=tmp_path)
