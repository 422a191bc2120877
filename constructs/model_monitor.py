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
    DRIFT_METRIC,
    MONITOR_ENDPOINT_INPUT,
    MONITOR_OUTPUT,
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
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = role = iam.Role(
            self,
            "Default",
            assumed_by=service_trust.sagemaker(self),
            description=f"Model Monitor's baseline and monitoring jobs of {dataset}",
        )
        folders = [f"{prefix}{dataset}/*" for prefix in (prepared_prefix, capture_prefix, monitoring_prefix)]
        reads = (f"{prepared_prefix}{dataset}/*/baseline/*", f"{capture_prefix}{dataset}/*")
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
                "run) and its captured requests (one folder per hour), and write its baselines and reports.": [
                    *[f"Resource::<{bucket_id}.Arn>/{pattern}" for pattern in reads],
                    f"Resource::<{bucket_id}.Arn>/{monitoring_prefix}{dataset}/*",
                ],
                **job_role_reasons(stack),
            },
        )


class DataQualityMonitor(Construct):
    """The live model's data-quality job definition, schedule and drift alarm (created by the
    hosting stack only while a model with a baseline is live)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: sagemaker.CfnEndpoint,
        dataset: str,
        stage: str,
        baseline_uri: str,
        reports_uri: str,
        image_uri: str,
        role: iam.IRole,
        key: kms.IKey,
        subnet_ids: list[str],
        security_group: ec2.ISecurityGroup,
        monitoring: MonitoringConfig,
        alarm_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        endpoint_name = endpoint.endpoint_name or ""
        self.schedule_name = f"{endpoint_name}-data-quality"
        # Every property of a job definition is replaced on change: it has no name of its own, so
        # that a new baseline makes a new definition under a name CloudFormation chooses.
        definition = sagemaker.CfnDataQualityJobDefinition(
            self,
            "JobDefinition",
            data_quality_app_specification=sagemaker.CfnDataQualityJobDefinition.DataQualityAppSpecificationProperty(
                image_uri=image_uri, environment={"publish_cloudwatch_metrics": "Disabled"}
            ),
            data_quality_baseline_config=sagemaker.CfnDataQualityJobDefinition.DataQualityBaselineConfigProperty(
                constraints_resource=sagemaker.CfnDataQualityJobDefinition.ConstraintsResourceProperty(
                    s3_uri=Fn.join("", [baseline_uri, "constraints.json"])
                ),
                statistics_resource=sagemaker.CfnDataQualityJobDefinition.StatisticsResourceProperty(
                    s3_uri=Fn.join("", [baseline_uri, "statistics.json"])
                ),
            ),
            data_quality_job_input=sagemaker.CfnDataQualityJobDefinition.DataQualityJobInputProperty(
                endpoint_input=sagemaker.CfnDataQualityJobDefinition.EndpointInputProperty(
                    endpoint_name=endpoint.attr_endpoint_name,  # a reference: created after the endpoint
                    local_path=MONITOR_ENDPOINT_INPUT,
                    s3_data_distribution_type="FullyReplicated",
                    s3_input_mode="File",
                )
            ),
            data_quality_job_output_config=sagemaker.CfnDataQualityJobDefinition.MonitoringOutputConfigProperty(
                kms_key_id=key.key_arn,
                monitoring_outputs=[
                    sagemaker.CfnDataQualityJobDefinition.MonitoringOutputProperty(
                        s3_output=sagemaker.CfnDataQualityJobDefinition.S3OutputProperty(
                            local_path=MONITOR_OUTPUT, s3_uri=reports_uri, s3_upload_mode="EndOfJob"
                        )
                    )
                ],
            ),
            job_resources=sagemaker.CfnDataQualityJobDefinition.MonitoringResourcesProperty(
                cluster_config=sagemaker.CfnDataQualityJobDefinition.ClusterConfigProperty(
                    instance_count=1,
                    instance_type=monitoring.instance_type,
                    volume_size_in_gb=monitoring.volume_size_gb,
                    volume_kms_key_id=key.key_arn,
                )
            ),
            network_config=sagemaker.CfnDataQualityJobDefinition.NetworkConfigProperty(
                enable_network_isolation=True,
                enable_inter_container_traffic_encryption=True,
                vpc_config=sagemaker.CfnDataQualityJobDefinition.VpcConfigProperty(
                    security_group_ids=[security_group.security_group_id], subnets=subnet_ids
                ),
            ),
            role_arn=role.role_arn,
            stopping_condition=sagemaker.CfnDataQualityJobDefinition.StoppingConditionProperty(
                max_runtime_in_seconds=monitoring.max_runtime_minutes * 60
            ),
        )
        self.job_definition = definition
        # The definition's ARN is ...:data-quality-job-definition/<name>.
        definition_name = Fn.select(1, Fn.split("/", definition.attr_job_definition_arn))
        self.schedule = sagemaker.CfnMonitoringSchedule(
            self,
            "Schedule",
            monitoring_schedule_name=self.schedule_name,
            endpoint_name=endpoint.attr_endpoint_name,
            monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
                monitoring_job_definition_name=definition_name,
                monitoring_type="DataQuality",
                schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(
                    schedule_expression=monitoring.schedule
                ),
            ),
        )
        self.alarm_name = f"{endpoint_name}-drift"
        # A report arrives once per run (hourly at most): between runs the alarm keeps the last
        # report's verdict (missing data ignored) instead of returning to OK an hour after drift.
        self.alarm = cloudwatch.Alarm(
            self,
            "DriftAlarm",
            alarm_name=self.alarm_name,
            alarm_description=f"{endpoint_name}: Model Monitor found requests unlike the live model's training "
            "data; check_drift names the features on the operators' topic." + runbook("drift"),
            metric=drift_metric(stage, dataset),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
        )
        notify = actions.SnsAction(alarm_topic)
        self.alarm.add_alarm_action(notify)
        self.alarm.add_ok_action(notify)


def drift_metric(stage: str, dataset: str) -> cloudwatch.Metric:
    """The features of ``dataset`` that drifted in a monitoring run (check_drift's embedded-metric
    record, one per report), the most per hour: what the drift alarm and the dashboard show."""
    return platform_metric(stage, dataset, DRIFT_METRIC, "Maximum")
