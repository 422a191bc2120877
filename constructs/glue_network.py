"""GlueNetwork: what runs the platform's Glue job and crawler inside its VPC.

A NETWORK connection in one isolated subnet, the workers' security group (members talk to each
other; HTTPS to the endpoints), and the managed policy every Glue role of the platform needs to
place its workers there (Glue creates, tags and deletes their network interfaces).
https://docs.aws.amazon.com/glue/latest/dg/setup-vpc-for-glue-access.html
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct
from constructs.logical_ids import pin
from constructs.nag_acknowledgements import acknowledge, nag_arn
from constructs.workload_security_group import WorkloadSecurityGroup

NETWORK_REASON = (
    "Glue creates, describes and deletes the network interfaces of the VPC connection with these "
    "EC2 actions; EC2's Describe actions have no resource-level permissions."
)


class GlueNetwork(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, name: str, vpc: ec2.IVpc, subnets: ec2.SubnetSelection
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
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
                name=name,
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
        acknowledge(
            self.policy,
            {"AwsSolutions-IAM5": NETWORK_REASON},
            applies_to=["Resource::*", "Resource::" + nag_arn(stack, "ec2", "network-interface/*")],
        )

    def role(self, scope: Construct, construct_id: str, *, purpose: str, key: kms.IKey) -> iam.Role:
        """A Glue service role that runs in this network, logs under /aws-glue/ and uses ``key``
        for S3 (SSE-KMS), bookmarks (CSE-KMS) and logs: data keys and decryption, nothing more."""
        stack = Stack.of(scope)
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
        key.grant(role, "kms:Decrypt", "kms:GenerateDataKey*")
        return role
