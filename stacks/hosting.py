"""HostingStack: one dataset's real-time endpoint, rolled forward on every approved model.

The stack's parameter ``ModelPackageArn`` names the model package that is live. While it is
empty (a new platform, no approved model yet) every billable resource sits behind the
``HasModel`` condition (applied to the whole endpoint by an aspect) and nothing is created.
``deploy_model`` (in this stack) sets the parameter through a CloudFormation update, under the
stack's deployment role, when a package of the dataset's group becomes Approved; SageMaker then
moves traffic blue/green (a canary first) and rolls back by itself if the 5XX or latency alarms
fire.
"""

from __future__ import annotations

import jsii
from aws_cdk import Aspects, Aws, CfnCondition, CfnParameter, CfnResource, Fn, IAspect, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct
from constructs.deployment_role import DeploymentRole
from constructs.event_function import EventFunction, QuietPeriod
from constructs.nag_acknowledgements import acknowledge_wildcards, nag_arn
from constructs.pass_role import grant_pass_role
from constructs.realtime_endpoint import RealtimeEndpoint

from stacks.data import CAPTURE_PREFIX
from stacks.foundation import Foundation

PARAMETER = "ModelPackageArn"
# Approvals wait on deploy_model's queue while a rollout runs: a message that finds the stack busy
# comes back after the queue's visibility timeout (6 x the function's 30 s), up to 40 times, so
# for two hours, beyond the longest rollout (the blue/green update's one-hour execution timeout,
# its canary wait and termination wait, and a rollback). No delay: an approval is acted on at once.
ROLLOUT_BUFFER = QuietPeriod(seconds=0, batch_size=1, max_receives=40)


@jsii.implements(IAspect)
class OnlyWhen:
    """Puts every CloudFormation resource of a scope behind ``condition``."""

    def __init__(self, condition: CfnCondition) -> None:
        self.condition = condition

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, CfnResource):
            node.cfn_options.condition = self.condition


class HostingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: Foundation,
        dataset: str,
        execution_role: iam.IRole,
        security_group: ec2.ISecurityGroup,
        model_package_group: str,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        config, key, functions = foundation.config, foundation.key, foundation.functions
        self.endpoint_name = f"{config.resource_prefix}-{dataset}"
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
        # "Default" is left out of the logical ids of what it holds: the endpoint's resources keep
        # the ids they had when this stack built them itself, so a live endpoint is not rolled
        # out again (https://docs.aws.amazon.com/cdk/v2/guide/identifiers.html#identifiers-logical-ids).
        self.serving = RealtimeEndpoint(
            self,
            "Default",
            endpoint_name=self.endpoint_name,
            model_package=self.package.value_as_string,
            hosting=config.hosting,
            capture_uri=f"s3://{foundation.data.bucket.bucket_name}/{CAPTURE_PREFIX}{dataset}/",
            key=key,
            alarm_topic=functions.alarm_topic,
            subnet_ids=foundation.subnet_ids,
            execution_role=execution_role,
            security_group=security_group,
        )
        Aspects.of(self.serving).add(OnlyWhen(self.has_model))
        self.endpoint, self.alarms = self.serving.endpoint, self.serving.alarms

        self.deployment_role = DeploymentRole(
            self, "DeploymentRole", endpoint_name=self.endpoint_name, execution_role=execution_role, key=key
        ).role
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
            defaults=functions,
            quiet_period=ROLLOUT_BUFFER,
            name=f"deploy-model-{dataset}",
        )
        function = self.deploy_model.function
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["cloudformation:DescribeStacks"], resources=[Aws.STACK_ID])
        )
        # deploy_model can only deploy: its updates run under this stack's deployment role (whose
        # rights are the endpoint's), never another role or none (the function's own), and reuse
        # the previous template, never one from S3. An inline TemplateBody has no condition key
        # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscloudformation.html);
        # the deployment role's rights bound what such a template could do.
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cloudformation:UpdateStack"],
                resources=[Aws.STACK_ID],
                conditions={"StringEquals": {"cloudformation:RoleArn": self.deployment_role.role_arn}},
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                actions=["cloudformation:UpdateStack"],
                resources=[Aws.STACK_ID],
                conditions={"Null": {"cloudformation:TemplateUrl": "false"}},
            )
        )
        grant_pass_role(self.deployment_role, function, "cloudformation.amazonaws.com")
        # The registry's newest approved package of this group is what goes live, whatever the
        # event names (lambda/deploy_model/handler.py).
        packages = f"model-package/{model_package_group}/*"
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:ListModelPackages"],
                resources=[f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:{packages}"],
            )
        )
        acknowledge_wildcards(
            function.role.node.find_child("DefaultPolicy"),  # type: ignore[union-attr]
            {
                "deploy_model lists the versions of its own model package group (one package per "
                "version, numbered by SageMaker) to find the newest approved one.": [
                    f"Resource::{nag_arn(self, 'sagemaker', packages)}"
                ]
            },
        )
