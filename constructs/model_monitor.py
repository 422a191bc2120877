"""Model Monitor for one served dataset: the role its jobs run as, and, while a model with a
baseline is live, the data-quality job definition, its schedule on the endpoint's captured
requests, and the drift alarm.

The baseline of a model is computed when its package is approved (``deploy_model`` starts a
processing job of Model Monitor's analyzer on the prepared run's ``baseline/``, the training
split as the endpoint receives it) and written under ``monitoring/<dataset>/baselines/<job>/``;
the hosting stack's ``BaselineUri`` parameter names it, set in the same update that makes the
model live, so the schedule always compares traffic with the live model's own training data.
Each run writes its report (``constraint_violations.json``, ``statistics.json``) under
``monitoring/<dataset>/reports/``; ``check_drift`` (``lambda/check_drift``) reads the violations,
publishes the ``DriftedFeatures`` metric this construct's alarm watches, and names the features on
the operators' topic.

Jobs run in the VPC with network isolation, inter-container encryption and the platform key for
volumes and outputs. The analyzer publishes no metrics of its own (``publish_cloudwatch_metrics``
Disabled): its namespace and dimensions differ between AWS's pages, so the platform publishes the
one metric its alarm needs from the reports itself.
https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-quality.html
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import Fn, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct, service_trust
from constructs import nag_acknowledgements as nag
from constructs.execution_role import grant_job_keys, grant_job_telemetry, job_role_reasons
from constructs.logical_ids import logical_id
from constructs.platform_metrics import platform_metric
from constructs.secure_bucket import SecureBucket

from config import MonitoringConfig
from etl.platform_runtime import (
    DATA_QUALITY_SCHEDULE,
    DRIFT_METRIC,
    MODEL_QUALITY_SCHEDULE,
    MONITOR_ENDPOINT_INPUT,
    MONITOR_OUTPUT,
    QUALITY_METRIC,
    runbook,
)


class MonitoringRole(Construct):
    """What the dataset's baseline and monitoring jobs run as: read the dataset's prepared runs'
    baseline/ and captured requests, read and write its monitoring/ folder, use the platform key,
    log and run in the VPC. One per dataset, so that a job reads one dataset's data."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data: SecureBucket,
        key: kms.IKey,
        dataset: str,
        prepared_prefix: str,
        capture_prefix: str,
        monitoring_prefix: str,
        ground_truth_prefix: str | None = None,
    ) -> None:
        """``ground_truth_prefix``: where the dataset's labels are uploaded, read by its model-quality
        runs (none: the stage does not monitor model quality)."""
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = role = iam.Role(
            self,
            "Default",
            assumed_by=service_trust.sagemaker(self),
            description=f"Model Monitor's baseline and monitoring jobs of {dataset}",
        )
        listed = (
            prepared_prefix,
            capture_prefix,
            monitoring_prefix,
            *([ground_truth_prefix] if ground_truth_prefix else []),
        )
        folders = [f"{prefix}{dataset}/*" for prefix in listed]
        reads = (
            f"{prepared_prefix}{dataset}/*/baseline/*",
            f"{capture_prefix}{dataset}/*",
            *([f"{ground_truth_prefix}{dataset}/*"] if ground_truth_prefix else []),
        )
        bucket = data.bucket
        for pattern in (*reads, f"{monitoring_prefix}{dataset}/*"):
            data.grant_read(role, pattern)
        data.grant_write(role, f"{monitoring_prefix}{dataset}/*")
        # The baseline input is an S3Prefix: SageMaker lists it before it downloads.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": folders}},
            )
        )
        grant_job_keys(role, key)
        grant_job_telemetry(role)
        bucket_id = logical_id(bucket)
        nag.acknowledge_grant_policy(role)
        nag.acknowledge_wildcards(
            role.node.find_child("DefaultPolicy"),
            {
                f"Model Monitor's jobs of {dataset} read the baseline/ of its prepared runs (one folder per "
                "run), its captured requests and its uploaded labels (one folder per hour), and write its "
                "baselines and reports.": [
                    *[f"Resource::<{bucket_id}.Arn>/{pattern}" for pattern in reads],
                    f"Resource::<{bucket_id}.Arn>/{monitoring_prefix}{dataset}/*",
                ],
                **job_role_reasons(stack),
            },
        )


@dataclass(frozen=True)
class Monitoring:
    """What both of an endpoint's monitors share: the stage and dataset, Model Monitor's image, the
    monitoring role, the network and key its jobs use, where reports go, and the operators' topic."""

    stage: str
    dataset: str
    image_uri: str
    role: iam.IRole
    key: kms.IKey
    subnet_ids: list[str]
    security_group: ec2.ISecurityGroup
    reports_uri: str
    config: MonitoringConfig
    alarm_topic: sns.ITopic


def _job(kind: Any, prefix: str, monitoring: Monitoring) -> dict[str, Any]:
    """A job definition's properties that do not depend on its type (``kind``, the L1 class, whose
    property types share their names): its output, instance, network, role and time limit, each
    in the VPC with network isolation, inter-container encryption and the platform key."""
    key, config = monitoring.key, monitoring.config
    return {
        f"{prefix}_job_output_config": kind.MonitoringOutputConfigProperty(
            kms_key_id=key.key_arn,
            monitoring_outputs=[
                kind.MonitoringOutputProperty(
                    s3_output=kind.S3OutputProperty(
                        local_path=MONITOR_OUTPUT, s3_uri=monitoring.reports_uri, s3_upload_mode="EndOfJob"
                    )
                )
            ],
        ),
        "job_resources": kind.MonitoringResourcesProperty(
            cluster_config=kind.ClusterConfigProperty(
                instance_count=1,
                instance_type=config.instance_type,
                volume_size_in_gb=config.volume_size_gb,
                volume_kms_key_id=key.key_arn,
            )
        ),
        "network_config": kind.NetworkConfigProperty(
            enable_network_isolation=True,
            enable_inter_container_traffic_encryption=True,
            vpc_config=kind.VpcConfigProperty(
                security_group_ids=[monitoring.security_group.security_group_id], subnets=monitoring.subnet_ids
            ),
        ),
        "role_arn": monitoring.role.role_arn,
        "stopping_condition": kind.StoppingConditionProperty(max_runtime_in_seconds=config.max_runtime_minutes * 60),
    }


def _schedule(
    scope: Construct, name: str, endpoint: sagemaker.CfnEndpoint, definition_arn: str, kind: str, expression: str
) -> sagemaker.CfnMonitoringSchedule:
    """The schedule of a job definition (whose ARN is ...:<kind>-job-definition/<name>)."""
    return sagemaker.CfnMonitoringSchedule(
        scope,
        "Schedule",
        monitoring_schedule_name=name,
        endpoint_name=endpoint.attr_endpoint_name,
        monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
            monitoring_job_definition_name=Fn.select(1, Fn.split("/", definition_arn)),
            monitoring_type=kind,
            schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(schedule_expression=expression),
        ),
    )


def _alarm(scope: Construct, construct_id: str, monitoring: Monitoring, **properties: Any) -> cloudwatch.Alarm:
    """An alarm on a metric check_drift publishes once per report (hourly at most): between reports
    it keeps the last one's verdict (missing data ignored) instead of returning to OK an hour later.
    It tells the operators' topic when it fires and when it clears."""
    alarm = cloudwatch.Alarm(
        scope, construct_id, evaluation_periods=1, treat_missing_data=cloudwatch.TreatMissingData.IGNORE, **properties
    )
    notify = actions.SnsAction(monitoring.alarm_topic)
    alarm.add_alarm_action(notify)
    alarm.add_ok_action(notify)
    return alarm


class DataQualityMonitor(Construct):
    """The live model's data-quality job definition, schedule and drift alarm (created by the
    hosting stack only while a model with a baseline is live)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: sagemaker.CfnEndpoint,
        baseline_uri: str,
        monitoring: Monitoring,
    ) -> None:
        super().__init__(scope, construct_id)
        endpoint_name = endpoint.endpoint_name or ""
        self.schedule_name = endpoint_name + DATA_QUALITY_SCHEDULE
        kind = sagemaker.CfnDataQualityJobDefinition
        # Every property of a job definition is replaced on change: it has no name of its own, so
        # that a new baseline makes a new definition under a name CloudFormation chooses.
        self.job_definition = definition = kind(
            self,
            "JobDefinition",
            data_quality_app_specification=kind.DataQualityAppSpecificationProperty(
                image_uri=monitoring.image_uri, environment={"publish_cloudwatch_metrics": "Disabled"}
            ),
            data_quality_baseline_config=kind.DataQualityBaselineConfigProperty(
                constraints_resource=kind.ConstraintsResourceProperty(
                    s3_uri=Fn.join("", [baseline_uri, "constraints.json"])
                ),
                statistics_resource=kind.StatisticsResourceProperty(
                    s3_uri=Fn.join("", [baseline_uri, "statistics.json"])
                ),
            ),
            data_quality_job_input=kind.DataQualityJobInputProperty(
                endpoint_input=kind.EndpointInputProperty(
                    endpoint_name=endpoint.attr_endpoint_name,  # a reference: created after the endpoint
                    local_path=MONITOR_ENDPOINT_INPUT,
                    s3_data_distribution_type="FullyReplicated",
                    s3_input_mode="File",
                )
            ),
            **_job(kind, "data_quality", monitoring),
        )
        self.schedule = _schedule(
            self,
            self.schedule_name,
            endpoint,
            definition.attr_job_definition_arn,
            "DataQuality",
            monitoring.config.schedule,
        )
        self.alarm_name = f"{endpoint_name}-drift"
        self.alarm = _alarm(
            self,
            "DriftAlarm",
            monitoring,
            alarm_name=self.alarm_name,
            alarm_description=f"{endpoint_name}: Model Monitor found requests unlike the live model's training "
            "data; check_drift names the features on the operators' topic." + runbook("drift"),
            metric=drift_metric(monitoring.stage, monitoring.dataset),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        )


# Model Monitor's problem types. https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ModelQualityAppSpecification.html
PROBLEM_TYPES = {"binary": "BinaryClassification", "multiclass": "MulticlassClassification", "regression": "Regression"}


class ModelQualityMonitor(Construct):
    """The live model's model-quality job definition and schedule, which join each captured
    prediction with the label uploaded for it, and the alarm on the live model's objective metric
    (created by the hosting stack only while a model is live and, for a classifier, while the
    stack knows how to read its answers).

    The endpoint answers a CSV line per record (``training_jobs/inference.py``): a binary model
    ``probability,label``, read by its probability and the model's own decision threshold (so its
    labels are 1 for the positive class and 0 otherwise); a multiclass model each class's
    probability then the label, read by the label's column; a regression model the value.
    https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-schedule.html
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: sagemaker.CfnEndpoint,
        problem: str,
        answer: Mapping[str, Any],
        ground_truth_uri: str,
        metric: str,
        minimum: float,
        lower_is_better: bool,
        monitoring: Monitoring,
    ) -> None:
        """``answer``: how to read a prediction (EndpointInput's inference, probability and threshold
        attributes); ``metric``: the objective metric, by Model Monitor's name, whose ``minimum``
        (the spec's gate) the alarm watches."""
        super().__init__(scope, construct_id)
        endpoint_name = endpoint.endpoint_name or ""
        self.schedule_name = endpoint_name + MODEL_QUALITY_SCHEDULE
        kind = sagemaker.CfnModelQualityJobDefinition
        delay, period = monitoring.config.ground_truth_delay_hours, monitoring.config.period_hours
        self.job_definition = definition = kind(
            self,
            "JobDefinition",
            model_quality_app_specification=kind.ModelQualityAppSpecificationProperty(
                image_uri=monitoring.image_uri,
                problem_type=PROBLEM_TYPES[problem],
                environment={"publish_cloudwatch_metrics": "Disabled"},
            ),
            model_quality_job_input=kind.ModelQualityJobInputProperty(
                endpoint_input=kind.EndpointInputProperty(
                    endpoint_name=endpoint.attr_endpoint_name,
                    local_path=MONITOR_ENDPOINT_INPUT,
                    s3_data_distribution_type="FullyReplicated",
                    s3_input_mode="File",
                    # The predictions of one schedule period that ended `delay` hours ago: by then
                    # their labels are in.
                    start_time_offset=f"-PT{delay + period}H",
                    end_time_offset=f"-PT{delay}H",
                    **answer,
                ),
                ground_truth_s3_input=kind.MonitoringGroundTruthS3InputProperty(s3_uri=ground_truth_uri),
            ),
            **_job(kind, "model_quality", monitoring),
        )
        self.schedule = _schedule(
            self,
            self.schedule_name,
            endpoint,
            definition.attr_job_definition_arn,
            "ModelQuality",
            monitoring.config.schedule,
        )
        self.alarm_name = f"{endpoint_name}-model-quality"
        self.metric = quality_metric(monitoring.stage, monitoring.dataset, lower_is_better).with_(
            label=f"{monitoring.dataset}: {metric} of the live model (bar {minimum:g})"
        )
        worse = "above" if lower_is_better else "below"
        self.alarm = _alarm(
            self,
            "QualityAlarm",
            monitoring,
            alarm_name=self.alarm_name,
            alarm_description=f"{endpoint_name}: on the labels uploaded for its predictions, the live model's "
            f"{metric} is {worse} {minimum:g}, the bar its training had to pass." + runbook("model-quality"),
            metric=quality_metric(monitoring.stage, monitoring.dataset, lower_is_better),
            threshold=minimum,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
            if lower_is_better
            else cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        )


def drift_metric(stage: str, dataset: str) -> cloudwatch.Metric:
    """The features of ``dataset`` that drifted in a monitoring run (check_drift's embedded-metric
    record, one per report), the most per hour: what the drift alarm and the dashboard show."""
    return platform_metric(stage, dataset, DRIFT_METRIC, "Maximum")


def quality_metric(stage: str, dataset: str, lower_is_better: bool) -> cloudwatch.Metric:
    """The live model's objective metric on labelled traffic (check_drift's record, one per
    model-quality report), the worst per hour: what the model-quality alarm and the dashboard show."""
    return platform_metric(stage, dataset, QUALITY_METRIC, "Maximum" if lower_is_better else "Minimum")
