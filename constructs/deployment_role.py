"""DeploymentRole: what CloudFormation may do when deploy_model updates a hosting stack, and
nothing more: replace the model and endpoint configuration, update the one endpoint, keep its
autoscaling and alarms, read the approved package, and pass the execution role. The rights the
stack's resource types' handlers also call come from their schemas (found missing by the
permission proof).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct
from constructs.nag_acknowledgements import acknowledge_grant_policy, acknowledge_wildcards, nag_arn
from constructs.pass_role import grant_pass_role

AUTOSCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"


class DeploymentRole(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        execution_role: iam.IRole,
        key: kms.IKey,
        monitoring_role: iam.IRole | None = None,
        monitored: Sequence[str] = (),
    ) -> None:
        """``monitoring_role``: what the endpoint's monitoring jobs run as, where the stage monitors
        it; ``monitored``: their kinds, ``DataQuality`` and ``ModelQuality`` (the stack's schedules
        and job definitions, constructs/model_monitor.py)."""
        super().__init__(scope, construct_id)
        self.endpoint_name = endpoint_name
        self.role = self._role(execution_role, key)
        if monitoring_role is not None and monitored:
            self._monitoring(monitoring_role, monitored)

    def _role(self, execution_role: iam.IRole, key: kms.IKey) -> iam.Role:
        stack = Stack.of(self)
        arn = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}"
        # No aws:SourceAccount or aws:SourceArn: CloudFormation documents them for the roles of
        # its extensions, not for a stack's service role, which it assumes for whoever operates
        # on the stack (who may pass this role is limited by iam:PassRole instead).
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-iam-servicerole.html
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cross-service-confused-deputy-prevention.html
        role = iam.Role(
            self,
            "Default",
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
                    # The Endpoint's update handler sets its tags to the template's: a tag the
                    # stage no longer names is deleted (the type's schema lists DeleteTags).
                    "sagemaker:DeleteTags",
                    "sagemaker:ListTags",
                ],
                resources=[
                    f"{arn}:model/{self.endpoint_name}-*",
                    f"{arn}:endpoint-config/*",
                    f"{arn}:endpoint/{self.endpoint_name}",
                ],
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
        alarms = f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:"
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
                    f"arn:{stack.partition}:application-autoscaling:{stack.region}:{stack.account}:scalable-target/*"
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"],
                resources=[
                    f"arn:{stack.partition}:iam::{stack.account}:role/aws-service-role/{AUTOSCALING_SERVICE}/"
                    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
                ],
                conditions={"StringLike": {"iam:AWSServiceName": AUTOSCALING_SERVICE}},
            )
        )
        role.add_to_principal_policy(iam.PolicyStatement(actions=["kms:DescribeKey"], resources=[key.key_arn]))
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameters"],
                resources=[f"arn:{stack.partition}:ssm:{stack.region}:{stack.account}:parameter/cdk-bootstrap/*"],
            )
        )
        grant_pass_role(execution_role, role, "sagemaker.amazonaws.com")
        acknowledge_grant_policy(role)
        acknowledge_wildcards(
            role.node.find_child("DefaultPolicy"),
            {
                "Each rollout creates a model named <endpoint>-<package version> and an endpoint "
                "configuration whose name CloudFormation generates; the endpoint itself is named.": [
                    "Resource::" + nag_arn(stack, "sagemaker", f"model/{self.endpoint_name}-*"),
                    "Resource::" + nag_arn(stack, "sagemaker", "endpoint-config/*"),
                ],
                "The approved package is given by the event; packages are versions of the dataset's group.": [
                    "Resource::" + nag_arn(stack, "sagemaker", "model-package/*")
                ],
                "Application Auto Scaling's Describe/Register/Put actions, cloudwatch:DescribeAlarms and "
                "GetMetricData, and EC2 Describe actions have no resource-level permissions.": ["Resource::*"],
                "The endpoint's alarms and the alarms target tracking creates (named by the endpoint); "
                "scalable targets have generated ids.": [
                    "Resource::" + nag_arn(stack, "cloudwatch", f"alarm:{self.endpoint_name}-*"),
                    "Resource::"
                    + nag_arn(stack, "cloudwatch", f"alarm:TargetTracking-endpoint/{self.endpoint_name}/*"),
                    "Resource::" + nag_arn(stack, "application-autoscaling", "scalable-target/*"),
                ],
                "CDK's bootstrap version parameter, read by every CDK template.": [
                    "Resource::" + nag_arn(stack, "ssm", "parameter/cdk-bootstrap/*")
                ],
            },
        )
        return role

    def _monitoring(self, monitoring_role: iam.IRole, monitored: Sequence[str]) -> None:
        """Create, replace and delete the live model's job definitions (named by CloudFormation) and
        their schedules (named by the endpoint), tag them, and pass their role; the handlers' actions
        as the types' schemas list them."""
        stack = Stack.of(self)
        arn = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}"
        # DataQuality -> data-quality-job-definition/* and <endpoint>-data-quality
        folders = {kind: re.sub(r"(?<!^)(?=[A-Z])", "-", kind).lower() for kind in monitored}
        definitions = [f"{folder}-job-definition/*" for folder in folders.values()]
        schedules = [f"monitoring-schedule/{self.endpoint_name}-{folder}" for folder in folders.values()]
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    *(
                        f"sagemaker:{verb}{kind}JobDefinition"
                        for kind in monitored
                        for verb in ("Create", "Describe", "Delete")
                    ),
                    "sagemaker:CreateMonitoringSchedule",
                    "sagemaker:DescribeMonitoringSchedule",
                    "sagemaker:UpdateMonitoringSchedule",
                    "sagemaker:DeleteMonitoringSchedule",
                    "sagemaker:AddTags",
                    "sagemaker:DeleteTags",
                    "sagemaker:ListTags",
                ],
                resources=[f"{arn}:{resource}" for resource in (*definitions, *schedules)],
            )
        )
        grant_pass_role(monitoring_role, self.role, "sagemaker.amazonaws.com")
        acknowledge_wildcards(
            self.role.node.find_child("DefaultPolicy"),
            {
                "CloudFormation names the monitoring job definitions (a new one for each baseline or model: "
                "every property of the types is replaced on change).": [
                    "Resource::" + nag_arn(stack, "sagemaker", definition) for definition in definitions
                ]
            },
        )
