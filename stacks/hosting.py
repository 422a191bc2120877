"""HostingStack: one dataset's real-time endpoint, rolled forward on every approved model.

The stack's parameter ``ModelPackageArn`` names the model package that is live. While it is
empty (a new platform, no approved model yet) every billable resource sits behind a condition
and nothing is created. ``deploy_model`` (in this stack) sets the parameter through a
CloudFormation update when a package of the dataset's group becomes Approved; SageMaker then
moves traffic blue/green (a canary first) and rolls back by itself if the 5XX or latency
alarms fire.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnCondition, CfnParameter, Duration, Fn, Stack
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct
from constructs.event_function import EventFunction
from constructs.nag_acknowledgements import (
    KMS_DATA_KEY_REASON,
    KMS_GRANT_ACTIONS,
    acknowledge_grant_policy,
    acknowledge_wildcards,
    nag_arn,
)
from constructs.secure_bucket import SecureBucket

from config import StageConfig
from stacks.data import CAPTURE_PREFIX

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


AUTOSCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"
PARAMETER = "ModelPackageArn"


class HostingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        dataset: str,
        key: kms.IKey,
        data: SecureBucket,
        alarm_topic: sns.ITopic,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        execution_role: iam.IRole,
        security_group: ec2.ISecurityGroup,
        model_package_group: str,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        hosting = config.hosting
        self.endpoint_name = f"{config.stack_prefix.lower()}-{dataset}"
        self.package = CfnParameter(
            self,
            PARAMETER,
            type="String",
            default="",
            description=f"The approved model package of {model_package_group} that serves (set by deploy_model)",
            allowed_pattern=r"^$|^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/.+$",
        )
        self.has_model = CfnCondition(
            self, "HasModel", expression=Fn.condition_not(Fn.condition_equals(self.package.value_as_string, ""))
        )
        subnet_ids = vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids

        model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=execution_role.role_arn,
            containers=[
                sagemaker.CfnModel.ContainerDefinitionProperty(model_package_name=self.package.value_as_string)
            ],
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
                destination_s3_uri=f"s3://{data.bucket.bucket_name}/{CAPTURE_PREFIX}{dataset}/",
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
            deployment_config=sagemaker.CfnEndpoint.DeploymentConfigProperty(
                blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                    traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                        type="CANARY",
                        canary_size=sagemaker.CfnEndpoint.CapacitySizeProperty(
                            type="CAPACITY_PERCENT", value=hosting.canary_percentage
                        ),
                        wait_interval_in_seconds=hosting.canary_wait_minutes * 60,
                    ),
                    termination_wait_in_seconds=300,
                    maximum_execution_timeout_in_seconds=3600,
                ),
                auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                    alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=a.alarm_name) for a in rollback]
                ),
            ),
        )
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
        scaling_policy = autoscaling.CfnScalingPolicy(
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
        for resource in (model, config_resource, self.endpoint, scaling_target, scaling_policy):
            resource.cfn_options.condition = self.has_model
        for alarm in self.alarms.values():
            alarm.node.default_child.cfn_options.condition = self.has_model

        self.deployment_role = self._deployment_role(execution_role, key)
        self.deploy_model = EventFunction(
            self,
            "DeployModel",
            handler_folder="deploy_model",
            description=f"deploy_model: approved {dataset} models roll out to {self.endpoint_name}",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={"ModelPackageGroupName": [model_package_group], "ModelApprovalStatus": ["Approved"]},
            ),
            environment={
                "STACK_NAME": Aws.STACK_NAME,
                "MODEL_PACKAGE_GROUP": model_package_group,
                "CLOUDFORMATION_ROLE_ARN": self.deployment_role.role_arn,
            },
            key=key,
            alarm_topic=alarm_topic,
            vpc=vpc,
            subnets=subnets,
            log_retention_days=config.functions.log_retention_days,
            reserved_concurrency=1,  # one rollout at a time per endpoint
            retry_attempts=config.functions.retry_attempts,
            retain_logs=not config.data.destroy_on_delete,
        )
        function = self.deploy_model.function
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cloudformation:DescribeStacks", "cloudformation:UpdateStack"], resources=[Aws.STACK_ID]
            )
        )
        self.deployment_role.grant_pass_role(function)
        acknowledge_wildcards(
            self.deploy_model.role.node.find_child("DefaultPolicy"), {KMS_DATA_KEY_REASON: KMS_GRANT_ACTIONS}
        )

    def _alarms(self, hosting, alarm_topic: sns.ITopic) -> dict[str, cloudwatch.Alarm]:
        dimensions = {"EndpointName": self.endpoint_name, "VariantName": VARIANT}

        def metric(name: str, namespace: str = "AWS/SageMaker", statistic: str = "Sum") -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=namespace,
                metric_name=name,
                dimensions_map=dimensions,
                statistic=statistic,
                period=Duration.minutes(1),
            )

        invocations = metric("Invocations")
        specs = {
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
                metric("CPUUtilization", "/aws/sagemaker/Endpoints", "Average"),
                80 * vcpus(hosting.instance_type),
                5,
                "CPU above 80% of the instance's cores",
            ),
            "Memory": (metric("MemoryUtilization", "/aws/sagemaker/Endpoints", "Average"), 85, 5, "memory above 85%"),
            "Disk": (metric("DiskUtilization", "/aws/sagemaker/Endpoints", "Average"), 85, 5, "disk above 85%"),
        }
        alarms = {}
        for name, (source, threshold, periods, description) in specs.items():
            alarm = cloudwatch.Alarm(
                self,
                f"{name}Alarm",
                alarm_name=f"{self.endpoint_name}-{name.lower()}",
                alarm_description=f"{self.endpoint_name}: {description}",
                metric=source,
                threshold=threshold,
                evaluation_periods=periods,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(actions.SnsAction(alarm_topic))
            alarms[name] = alarm
        return alarms

    def _deployment_role(self, execution_role: iam.IRole, key: kms.IKey) -> iam.Role:
        """What CloudFormation may do when deploy_model updates this stack, and nothing more."""
        arn = f"arn:{self.partition}:sagemaker:{self.region}:{self.account}"
        role = iam.Role(
            self,
            "DeploymentRole",
            assumed_by=iam.ServicePrincipal("cloudformation.amazonaws.com"),
            description=f"CloudFormation rolls models out on {self.endpoint_name}",
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateModel",
                    "sagemaker:DeleteModel",
                    "sagemaker:DescribeModel",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:DeleteEndpointConfig",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:UpdateEndpoint",
                    "sagemaker:CreateEndpoint",
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:AddTags",
                    "sagemaker:ListTags",
                ],
                resources=[f"{arn}:model/*", f"{arn}:endpoint-config/*", f"{arn}:endpoint/{self.endpoint_name}"],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[f"{arn}:model-package/*"])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "application-autoscaling:RegisterScalableTarget",
                    "application-autoscaling:DescribeScalableTargets",
                    "application-autoscaling:PutScalingPolicy",
                    "application-autoscaling:DescribeScalingPolicies",
                    "cloudwatch:DescribeAlarms",
                    "cloudwatch:GetMetricData",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                ],
                resources=["*"],
            )
        )
        # What the CloudFormation handlers of the stack's resource types also call (their schemas'
        # handler permissions, found missing by the permission proof): tagging the alarms and the
        # scalable target, the target-tracking alarms, the key the endpoint configuration names,
        # and the service-linked role Application Auto Scaling needs in a new account.
        alarms = f"arn:{self.partition}:cloudwatch:{self.region}:{self.account}:alarm:"
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "cloudwatch:PutMetricAlarm",
                    "cloudwatch:DeleteAlarms",
                    "cloudwatch:TagResource",
                    "cloudwatch:ListTagsForResource",
                ],
                resources=[
                    f"{alarms}{self.endpoint_name}-*",
                    f"{alarms}TargetTracking-endpoint/{self.endpoint_name}/*",
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["application-autoscaling:TagResource", "application-autoscaling:ListTagsForResource"],
                resources=[
                    f"arn:{self.partition}:application-autoscaling:{self.region}:{self.account}:scalable-target/*"
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"],
                resources=[
                    f"arn:{self.partition}:iam::{self.account}:role/aws-service-role/{AUTOSCALING_SERVICE}/"
                    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
                ],
                conditions={"StringLike": {"iam:AWSServiceName": AUTOSCALING_SERVICE}},
            )
        )
        role.add_to_principal_policy(iam.PolicyStatement(actions=["kms:DescribeKey"], resources=[key.key_arn]))
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameters"],
                resources=[f"arn:{self.partition}:ssm:{self.region}:{self.account}:parameter/cdk-bootstrap/*"],
            )
        )
        execution_role.grant_pass_role(role)
        acknowledge_grant_policy(role)
        acknowledge_wildcards(
            role.node.find_child("DefaultPolicy"),
            {
                "Each rollout creates a model and an endpoint configuration whose names CloudFormation "
                "generates; the endpoint itself is named.": [
                    "Resource::" + nag_arn(self, "sagemaker", "model/*"),
                    "Resource::" + nag_arn(self, "sagemaker", "endpoint-config/*"),
                ],
                "The approved package is given by the event; packages are versions of the dataset's group.": [
                    "Resource::" + nag_arn(self, "sagemaker", "model-package/*")
                ],
                "Application Auto Scaling's Describe/Register/Put actions, cloudwatch:DescribeAlarms and "
                "GetMetricData, and EC2 Describe actions have no resource-level permissions.": ["Resource::*"],
                "The endpoint's alarms and the alarms target tracking creates (named by the endpoint); "
                "scalable targets have generated ids.": [
                    "Resource::" + nag_arn(self, "cloudwatch", f"alarm:{self.endpoint_name}-*"),
                    "Resource::" + nag_arn(self, "cloudwatch", f"alarm:TargetTracking-endpoint/{self.endpoint_name}/*"),
                    "Resource::" + nag_arn(self, "application-autoscaling", "scalable-target/*"),
                ],
                "CDK's bootstrap version parameter, read by every CDK template.": [
                    "Resource::" + nag_arn(self, "ssm", "parameter/cdk-bootstrap/*")
                ],
            },
        )
        return role
