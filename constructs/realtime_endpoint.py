"""RealtimeEndpoint: one dataset's SageMaker endpoint, its autoscaling and its alarms.

The model is the approved package the hosting stack's parameter names, isolated in the VPC; the
endpoint captures requests and responses under capture/<dataset>/ with the platform key, scales
on invocations per instance, and rolls a new model out blue/green (a canary first), rolling back
by itself when the 5XX or latency alarm fires. Every alarm tells the operators' topic.
"""

from __future__ import annotations

from typing import ClassVar

from aws_cdk import Duration, Fn
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct
from constructs.logical_ids import pin

from config import ConfigError, HostingConfig
from etl.platform_runtime import runbook

VARIANT = "AllTraffic"
_SIZES = {"medium": 2, "large": 2, "xlarge": 4}


def vcpus(instance_type: str) -> int:
    """vCPUs of an ml.<family>.<size> instance (2 for medium/large, 4 per xlarge)."""
    size = instance_type.rsplit(".", 1)[-1]
    if size in _SIZES:
        return _SIZES[size]
    if size.endswith("xlarge") and size[: -len("xlarge")].isdigit():
        return 4 * int(size[: -len("xlarge")])
    raise ValueError(f"hosting.instance_type = {instance_type!r}: cannot tell its vCPUs from the size {size!r}")


MAX_NAME = 63  # SageMaker's limit on a model's name
MAX_VERSION_DIGITS = 6  # room kept for the package's version in the model's name


# SageMaker's metrics of an endpoint: its invocations', and its instances' (utilisation).
# https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html
INVOCATION_METRICS, INSTANCE_METRICS = "AWS/SageMaker", "/aws/sagemaker/Endpoints"


def endpoint_metric(
    endpoint_name: str, name: str, statistic: str, namespace: str = INVOCATION_METRICS, label: str | None = None
) -> cloudwatch.Metric:
    """One of the endpoint's metrics, per minute, for the platform's one variant: what its alarms
    watch and the operators' dashboard shows."""
    return cloudwatch.Metric(
        namespace=namespace,
        metric_name=name,
        dimensions_map={"EndpointName": endpoint_name, "VariantName": VARIANT},
        statistic=statistic,
        period=Duration.minutes(1),
        label=label,
    )


def model_name(endpoint_name: str, model_package: str) -> str:
    """``<endpoint>-<package version>``: the platform's prefix, which data scientists may not use
    for their models or run transform jobs with (constructs/data_scientist_roles.py), and a new
    name for each package, as CloudFormation needs to replace a named model. A package's ARN is
    ``arn:...:model-package/<group>/<version>``.
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeModelPackage.html
    """
    if len(endpoint_name) + 1 + MAX_VERSION_DIGITS > MAX_NAME:
        raise ConfigError(
            f"endpoint {endpoint_name!r} is too long a name for its models: at most "
            f"{MAX_NAME - 1 - MAX_VERSION_DIGITS} characters (the stage prefix and the dataset)"
        )
    return Fn.join("-", [endpoint_name, Fn.select(2, Fn.split("/", model_package))])


class RealtimeEndpoint(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        model_package: str,
        hosting: HostingConfig,
        capture_uri: str,
        key: kms.IKey,
        alarm_topic: sns.ITopic,
        subnet_ids: list[str],
        execution_role: iam.IRole,
        security_group: ec2.ISecurityGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        self.endpoint_name = endpoint_name
        model = sagemaker.CfnModel(
            self,
            "Model",
            model_name=model_name(endpoint_name, model_package),
            execution_role_arn=execution_role.role_arn,
            containers=[sagemaker.CfnModel.ContainerDefinitionProperty(model_package_name=model_package)],
            vpc_config=sagemaker.CfnModel.VpcConfigProperty(
                security_group_ids=[security_group.security_group_id], subnets=subnet_ids
            ),
            enable_network_isolation=True,
        )
        config_resource = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            kms_key_id=key.key_arn,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT,
                    model_name=model.attr_model_name,
                    instance_type=hosting.instance_type,
                    initial_instance_count=hosting.instance_count,
                    initial_variant_weight=1.0,
                )
            ],
            data_capture_config=sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=hosting.capture_sampling_percentage > 0,
                initial_sampling_percentage=hosting.capture_sampling_percentage,
                destination_s3_uri=capture_uri,
                kms_key_id=key.key_arn,
                capture_options=[
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
                ],
                capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                    csv_content_types=["text/csv"], json_content_types=["application/json"]
                ),
            ),
        )
        self.alarms = self._alarms(hosting, alarm_topic)
        rollback = [self.alarms["5XX"], self.alarms["ModelLatency"]]
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=config_resource.attr_endpoint_config_name,
            # A rollout keeps the instance count autoscaling chose (without it, every update resets
            # the variant to initial_instance_count).
            # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateEndpoint.html
            retain_all_variant_properties=True,
            deployment_config=sagemaker.CfnEndpoint.DeploymentConfigProperty(
                blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                    traffic_routing_configuration=_traffic_routing(hosting),
                    termination_wait_in_seconds=300,
                    maximum_execution_timeout_in_seconds=3600,
                ),
                auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                    alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=a.alarm_name) for a in rollback]
                ),
            ),
        )
        if hosting.autoscaling:
            self._autoscaling(hosting)
        pin(self.endpoint, "Endpoint")

    def _autoscaling(self, hosting: HostingConfig) -> None:
        """The variant as a scalable target, tracking invocations per instance. SageMaker refuses
        an update that changes the instance type of a scalable target: the README's procedure
        deploys once with ``hosting.autoscaling = false`` in between."""
        scaling_target = autoscaling.CfnScalableTarget(
            self,
            "ScalableTarget",
            service_namespace="sagemaker",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            resource_id=f"endpoint/{self.endpoint_name}/variant/{VARIANT}",
            min_capacity=hosting.min_capacity,
            max_capacity=hosting.max_capacity,
        )
        scaling_target.node.add_dependency(self.endpoint)
        autoscaling.CfnScalingPolicy(
            self,
            "InvocationsScaling",
            policy_name=f"{self.endpoint_name}-invocations",
            policy_type="TargetTrackingScaling",
            scaling_target_id=scaling_target.ref,
            target_tracking_scaling_policy_configuration=autoscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=hosting.target_invocations_per_instance,
                predefined_metric_specification=autoscaling.CfnScalingPolicy.PredefinedMetricSpecificationProperty(
                    predefined_metric_type="SageMakerVariantInvocationsPerInstance"
                ),
                # Out quickly, in slowly: a burst adds capacity at once, a lull does not flap it away.
                scale_out_cooldown=60,
                scale_in_cooldown=600,
            ),
        )

    # Each alarm's section of docs/runbook.md.
    RUNBOOK_SECTIONS: ClassVar[dict[str, str]] = {
        "5XX": "endpoint-5xx",
        "4XX": "endpoint-4xx",
        "ModelLatency": "endpoint-latency",
        "CPU": "endpoint-cpu",
        "Memory": "endpoint-memory",
        "Disk": "endpoint-disk",
    }

    def _alarms(self, hosting, alarm_topic: sns.ITopic) -> dict[str, cloudwatch.Alarm]:
        def metric(name: str, namespace: str = INVOCATION_METRICS, statistic: str = "Sum") -> cloudwatch.Metric:
            return endpoint_metric(self.endpoint_name, name, statistic, namespace)

        invocations = metric("Invocations")
        specs: dict[str, tuple[cloudwatch.IMetric, int, int, str]] = {
            # name: (metric, threshold, periods, description)
            "5XX": (
                cloudwatch.MathExpression(
                    expression="100 * errors / MAX([errors, invocations, 1])",
                    using_metrics={"errors": metric("Invocation5XXErrors"), "invocations": invocations},
                    period=Duration.minutes(1),
                ),
                1,
                2,
                "more than 1% of requests fail with 5XX (also rolls a new model back)",
            ),
            "4XX": (
                cloudwatch.MathExpression(
                    expression="100 * errors / MAX([errors, invocations, 1])",
                    using_metrics={"errors": metric("Invocation4XXErrors"), "invocations": invocations},
                    period=Duration.minutes(1),
                ),
                10,
                5,
                "more than 10% of requests are refused with 4XX (clients send bad input)",
            ),
            # ModelLatency is in microseconds.
            "ModelLatency": (
                metric("ModelLatency", statistic="p99"),
                200_000,
                3,
                "p99 model latency above 200 ms (also rolls back)",
            ),
            # Endpoint CPU is summed over an instance's cores (0..100 x vCPUs).
            "CPU": (
                metric("CPUUtilization", INSTANCE_METRICS, "Average"),
                80 * vcpus(hosting.instance_type),
                5,
                "CPU above 80% of the instance's cores",
            ),
            "Memory": (metric("MemoryUtilization", INSTANCE_METRICS, "Average"), 85, 5, "memory above 85%"),
            "Disk": (metric("DiskUtilization", INSTANCE_METRICS, "Average"), 85, 5, "disk above 85%"),
        }
        alarms = {}
        # By name, as the dashboard lists them: the alarms exist only while a model is live.
        names = {name: f"{self.endpoint_name}-{name.lower()}" for name in specs}
        self.alarm_names = list(names.values())
        for name, (source, threshold, periods, description) in specs.items():
            alarm = cloudwatch.Alarm(
                self,
                f"{name}Alarm",
                alarm_name=names[name],
                alarm_description=f"{self.endpoint_name}: {description}." + runbook(self.RUNBOOK_SECTIONS[name]),
                metric=source,
                threshold=threshold,
                evaluation_periods=periods,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(actions.SnsAction(alarm_topic))
            alarms[name] = alarm
        return alarms


def _traffic_routing(hosting: HostingConfig) -> sagemaker.CfnEndpoint.TrafficRoutingConfigProperty:
    """A canary of ``canary_instances`` (checked in the configuration to be at most half of the
    smallest fleet), or all at once; either way the alarms watch for ``canary_wait_minutes``."""
    wait = hosting.canary_wait_minutes * 60
    if hosting.canary_instances == 0:
        return sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(type="ALL_AT_ONCE", wait_interval_in_seconds=wait)
    return sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
        type="CANARY",
        canary_size=sagemaker.CfnEndpoint.CapacitySizeProperty(type="INSTANCE_COUNT", value=hosting.canary_instances),
        wait_interval_in_seconds=wait,
    )
