"""SageMakerExecutionRole: what the platform's SageMaker jobs and models run as.

The role reads prepared/ and batch-input/ and writes batch-output/ and capture/ of the data
bucket, writes and reads models under training/ of the artifacts bucket, reads the training code
asset, uses the platform key (data keys, decryption, encryption of job outputs, grants for
volumes), logs and publishes metrics under /aws/sagemaker/, and places jobs in the VPC. Its
jobs' security group is the training stack's own.
https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as assets
from constructs import Construct, service_trust
from constructs import nag_acknowledgements as nag
from constructs.logical_ids import logical_id
from constructs.secure_bucket import SecureBucket

VPC_REASON = (
    "SageMaker creates and deletes the network interfaces of VPC jobs and models with these EC2 "
    "actions; EC2's Describe actions have no resource-level permissions."
)
LOGS_REASON = "SageMaker jobs and endpoints log to groups they create under /aws/sagemaker/."
METRICS_REASON = (
    "cloudwatch:PutMetricData has no resource-level permissions; a condition limits it to the "
    "/aws/sagemaker/ namespaces."
)
VPC_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
]


def grant_job_keys(role: iam.Role, key: kms.IKey) -> None:
    """What a SageMaker job's role asks of the platform key: data keys and decryption for S3
    objects and outputs, Encrypt for the job's output key, and the grant that lets the instance's
    EBS volume use the volume key (VolumeKmsKeyId).
    https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html#sagemaker-roles-createtrainingjob-perms
    """
    key.grant(role, "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*")
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["kms:CreateGrant"],
            resources=[key.key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        )
    )


def grant_job_telemetry(role: iam.Role) -> None:
    """Logs and metrics under /aws/sagemaker/, and the network interfaces of VPC jobs and models
    (LOGS_REASON, METRICS_REASON, VPC_REASON say why each is as wide as it is)."""
    stack = Stack.of(role)
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws/sagemaker/*"],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
        )
    )
    role.add_to_principal_policy(iam.PolicyStatement(actions=VPC_ACTIONS, resources=["*"]))


def job_role_reasons(stack: Stack) -> dict[str, list[str]]:
    """Why a SageMaker job role's wildcards are there: grant_job_keys, grant_job_telemetry and
    SecureBucket's read grant, which every such role carries."""
    return {
        LOGS_REASON: ["Resource::" + nag.nag_arn(stack, "logs", "log-group:/aws/sagemaker/*")],
        f"{METRICS_REASON} {VPC_REASON}": ["Resource::*"],
        nag.KMS_DATA_KEY_REASON: nag.KMS_GRANT_ACTIONS,
        nag.S3_ACTIONS_REASON: nag.S3_GRANT_ACTIONS,
    }


class SageMakerExecutionRole(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data: SecureBucket,
        reads: tuple[str, ...],
        writes: tuple[str, ...],
        artifacts: SecureBucket,
        key: kms.IKey,
        code: assets.Asset,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # "Default": the role keeps the logical id it had before this construct existed.
        # Jobs, tuning, transforms and the models behind endpoints: aws:SourceArn of this
        # account and Region (constructs/service_trust.py).
        self.role = role = iam.Role(
            self,
            "Default",
            assumed_by=service_trust.sagemaker(self),
            description="SageMaker training, tuning, transform and hosting of the ML platform",
        )
        for prefix in reads:
            data.grant_read(role, f"{prefix}*")
        for prefix in writes:
            data.grant_write(role, f"{prefix}*")
        artifacts.grant_write(role, "training/*")
        artifacts.grant_read(role, "training/*")
        grant_job_keys(role, key)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[f"arn:{stack.partition}:s3:::{code.s3_bucket_name}/{code.s3_object_key}"],
            )
        )
        # The code channel is an S3Prefix channel: SageMaker lists its prefix before it downloads.
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_S3DataSource.html
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[f"arn:{stack.partition}:s3:::{code.s3_bucket_name}"],
                conditions={"StringEquals": {"s3:prefix": code.s3_object_key}},
            )
        )
        grant_job_telemetry(role)
        data_id = logical_id(data.bucket)
        artifacts_id = logical_id(artifacts.bucket)
        nag.acknowledge_grant_policy(role)
        nag.acknowledge_wildcards(
            role.node.find_child("DefaultPolicy"),
            {
                "The execution role reads prepared/ and batch-input/ and writes batch-output/ and "
                "capture/ of the data bucket, and the models under training/ of the artifacts bucket, "
                "for any dataset.": [
                    *[f"Resource::<{data_id}.Arn>/{prefix}*" for prefix in (*reads, *writes)],
                    f"Resource::<{artifacts_id}.Arn>/training/*",
                ],
                **job_role_reasons(stack),
            },
        )
