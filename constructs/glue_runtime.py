"""GlueRuntime: where and how the platform's Glue job and crawler run, and who hears when they fail.

A NETWORK connection in one isolated subnet, the workers' security group (members talk to each
other; HTTPS to the endpoints), the managed policy every Glue role of the platform needs to
place its workers there (Glue creates, tags and deletes their network interfaces), the security
configuration (SSE-KMS for S3 and logs, CSE-KMS for bookmarks, all under the platform key), the
service roles built on these, and the rules that tell the operators' topic of a failed run.
https://docs.aws.amazon.com/glue/latest/dg/setup-vpc-for-glue-access.html
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct
from constructs import nag_acknowledgements as nag
from constructs.logical_ids import pin
from constructs.topic_target import notify
from constructs.workload_security_group import WorkloadSecurityGroup

from etl.platform_runtime import runbook

NETWORK_REASON = (
    "Glue creates, describes and deletes the network interfaces of the VPC connection with these "
    "EC2 actions; EC2's Describe actions have no resource-level permissions."
)


GLUE_LOGS_REASON = (
    "Glue writes the job's and crawler's logs to log groups it creates under /aws-glue/ "
    "(names include the security configuration and role), so the grant covers that prefix only."
)


@dataclass(frozen=True)
class Failure:
    """How Glue tells that a run of one kind failed: the event, the detail field naming what ran,
    the states of a failed run, and the operators' message (detail fields in braces)."""

    detail_type: str
    name_field: str
    states: list[str]
    message: str
    runbook: str  # its section of docs/runbook.md


# https://docs.aws.amazon.com/glue/latest/dg/automating-awsglue-with-cloudwatch-events.html
FAILURES = {
    "crawler": Failure(
        "Glue Crawler State Change",
        "crawlerName",
        ["Failed"],
        "crawler {crawlerName} failed: {errorMessage}",
        "crawler-failed",
    ),
    "job": Failure(
        "Glue Job State Change",
        "jobName",
        ["FAILED", "TIMEOUT", "STOPPED", "ERROR"],
        "Glue job {jobName} run {jobRunId} ended {state}: {message}",
        "preparation-job-failed",
    ),
}


class GlueRuntime(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        key: kms.IKey,
        alarm_topic: sns.ITopic,
        stage: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key, self.alarm_topic, self.stage = key, alarm_topic, stage
        self.security_configuration = self._encryption(name, key)
        self.security_group = WorkloadSecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Glue job and crawler: workers talk to each other, and HTTPS to the endpoints",
        ).security_group
        subnet = vpc.select_subnets(subnet_type=subnets.subnet_type).subnets[0]
        self.connection = glue.CfnConnection(
            self,
            "Connection",
            catalog_id=stack.account,
            connection_input=glue.CfnConnection.ConnectionInputProperty(
                name=f"{name}-network",
                connection_type="NETWORK",
                description="The platform VPC's isolated subnet for Glue",
                physical_connection_requirements=glue.CfnConnection.PhysicalConnectionRequirementsProperty(
                    subnet_id=subnet.subnet_id,
                    availability_zone=subnet.availability_zone,
                    security_group_id_list=[self.security_group.security_group_id],
                ),
            ),
        )
        pin(self.connection, "NetworkConnection")
        arn = f"arn:{stack.partition}:glue:{stack.region}:{stack.account}"
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description="What Glue needs to run a job or crawler in the platform VPC",
            statements=[
                iam.PolicyStatement(
                    actions=[
                        "ec2:CreateNetworkInterface",
                        "ec2:DeleteNetworkInterface",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeSecurityGroups",
                        "ec2:DescribeSubnets",
                        "ec2:DescribeVpcAttribute",
                        "ec2:DescribeVpcEndpoints",
                        "ec2:DescribeRouteTables",
                    ],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    actions=["ec2:CreateTags", "ec2:DeleteTags"],
                    resources=[f"arn:{stack.partition}:ec2:{stack.region}:{stack.account}:network-interface/*"],
                    conditions={"ForAllValues:StringEquals": {"aws:TagKeys": ["aws-glue-service-resource"]}},
                ),
                iam.PolicyStatement(
                    actions=["glue:GetConnection"],
                    resources=[f"{arn}:catalog", f"{arn}:connection/{self.connection.ref}"],
                ),
            ],
        )
        nag.acknowledge(
            self.policy,
            {"AwsSolutions-IAM5": NETWORK_REASON},
            applies_to=["Resource::*", "Resource::" + nag.nag_arn(stack, "ec2", "network-interface/*")],
        )

    def _encryption(self, name: str, key: kms.IKey) -> glue.CfnSecurityConfiguration:
        """SSE-KMS for what Glue writes to S3 and CloudWatch Logs, CSE-KMS for job bookmarks."""
        configuration = glue.CfnSecurityConfiguration(
            self,
            "SecurityConfiguration",
            name=name,
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(
                        s3_encryption_mode="SSE-KMS", kms_key_arn=key.key_arn
                    )
                ],
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=key.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=key.key_arn
                ),
            ),
        )
        pin(configuration, "SecurityConfiguration")
        return configuration

    def alert_on_failure(self, scope: Construct, *, kind: str, name: str, description: str) -> events.Rule:
        """A rule that tells the operators' topic when the ``kind`` ("crawler" or "job") named
        ``name`` fails."""
        failure = FAILURES[kind]
        fields = re.sub(r"\{(\w+)\}", lambda m: events.EventField.from_path(f"$.detail.{m.group(1)}"), failure.message)
        return notify(
            scope,
            "FailedRule",
            topic=self.alarm_topic,
            description=description,
            event_pattern=events.EventPattern(
                source=["aws.glue"],
                detail_type=[failure.detail_type],
                detail={failure.name_field: [name], "state": failure.states},
            ),
            message=f"ML platform ({self.stage}): {fields}." + runbook(failure.runbook),
        )

    def acknowledge_role(self, role: iam.Role, reasons: dict[str, list[str]]) -> None:
        """The wildcards every Glue role of the platform carries, and ``reasons`` for its own."""
        nag.acknowledge_grant_policy(role)
        nag.acknowledge_wildcards(
            role.node.find_child("DefaultPolicy"),
            {
                GLUE_LOGS_REASON: ["Resource::" + nag.nag_arn(Stack.of(role), "logs", "log-group:/aws-glue/*")],
                nag.KMS_DATA_KEY_REASON: nag.KMS_GRANT_ACTIONS,
                nag.S3_ACTIONS_REASON: nag.S3_GRANT_ACTIONS,
                **reasons,
            },
        )

    def role(self, scope: Construct, construct_id: str, *, purpose: str) -> iam.Role:
        """A Glue service role that runs in this network, logs under /aws-glue/ and uses the key
        for S3 (SSE-KMS), bookmarks (CSE-KMS) and logs: data keys and decryption, nothing more."""
        stack = Stack.of(scope)
        # No aws:SourceAccount or aws:SourceArn: Glue documents neither for the roles its jobs and
        # crawlers run as (its role page trusts glue.amazonaws.com bare), and a condition Glue does
        # not meet stops every run. https://docs.aws.amazon.com/glue/latest/dg/create-an-iam-role.html
        role = iam.Role(
            scope,
            construct_id,
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description=f"{purpose} of the ML platform",
            managed_policies=[self.policy],
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
                resources=[f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws-glue/*"],
            )
        )
        self.key.grant(role, "kms:Decrypt", "kms:GenerateDataKey*")
        return role
