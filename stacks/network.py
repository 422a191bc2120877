"""NetworkStack: a VPC with no path to the internet, reaching AWS through VPC endpoints.

Every endpoint (the S3 gateway and each interface endpoint) carries a policy that lets this
account's principals reach this account's resources and nothing else: code inside the VPC cannot
write to another account's bucket or topic, nor use another account's credentials, through it.
Which endpoints a stage needs, and which caller inside the VPC uses each, is said in the stage
configuration (``network.interface_endpoints``) and checked against the twin's recorded calls
(``permissions/endpoints.py``).
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct
from constructs.encrypted_log_group import EncryptedLogGroup
from constructs.nag_acknowledgements import acknowledge_grant_policy
from constructs.service_trust import flow_logs_conditions

from config import StageConfig

# The stage configuration names endpoints by AWS's short service names; this is the one place
# that turns them into CDK services.
INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "sagemaker.api": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
    "sagemaker.runtime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
    "sagemaker.studio": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_STUDIO,
    "sagemaker.notebook": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_NOTEBOOK,
    "sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "ecr.api": ec2.InterfaceVpcEndpointAwsService.ECR,
    "ecr.dkr": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "glue": ec2.InterfaceVpcEndpointAwsService.GLUE,
    "kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "events": ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
    "cloudformation": ec2.InterfaceVpcEndpointAwsService.CLOUDFORMATION,
    "sns": ec2.InterfaceVpcEndpointAwsService.SNS,
    "sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
}
SUBNET_TYPE = ec2.SubnetType.PRIVATE_ISOLATED
S3_GATEWAY_ID = "S3"
ACCOUNT_ONLY_SID = "ThisAccountsPrincipalsToThisAccountsResources"


class NetworkStack(Stack):
    """Isolated subnets only (no NAT, no internet gateway), an S3 gateway endpoint, interface
    endpoints from the stage configuration behind one HTTPS-only security group, and flow logs
    to a KMS-encrypted log group."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, key: kms.IKey, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        network = config.network
        zones = list(network.availability_zones)
        self._configured_zones = zones

        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(network.cidr),
            availability_zones=zones or None,
            max_azs=None if zones else 2,
            nat_gateways=0,
            subnet_configuration=[ec2.SubnetConfiguration(name="isolated", subnet_type=SUBNET_TYPE, cidr_mask=20)],
            restrict_default_security_group=True,
            gateway_endpoints={
                S3_GATEWAY_ID: ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
            },
        )
        self.s3_gateway: ec2.GatewayVpcEndpoint = self.vpc.node.find_child(S3_GATEWAY_ID)  # type: ignore[assignment]
        # No AWS-owned bucket is reached through the gateway: container images come from ECR by
        # SageMaker's own network ("Platform" repository access mode,
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrainingImageConfig.html),
        # not through this VPC, so ECR's layer bucket is not needed; jobs and models run with
        # network isolation and install no Amazon Linux packages; Glue fetches its script and
        # libraries through its own proxy
        # (https://docs.aws.amazon.com/glue/latest/dg/connection-VPC-disable-proxy.html).
        self.s3_gateway.add_to_policy(self._account_only())
        self.subnets = ec2.SubnetSelection(subnet_type=SUBNET_TYPE)

        flow_logs = EncryptedLogGroup(
            self,
            "FlowLogs",
            key=key,
            retention_days=network.flow_log_retention_days,
            retain=not config.data.destroy_on_delete,
        ).log_group
        flow_log = self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        role: iam.Role = flow_log.node.find_child("IAMRole")  # type: ignore[assignment]
        acknowledge_grant_policy(role)
        # CDK builds the flow log's role with a bare trust statement and takes no conditions for
        # it: the L1 override adds the flow log page's (constructs/service_trust.py).
        trust: iam.CfnRole = role.node.default_child  # type: ignore[assignment]
        trust.add_property_override("AssumeRolePolicyDocument.Statement.0.Condition", flow_logs_conditions(self))

        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="Interface VPC endpoints: HTTPS from inside the VPC only",
            allow_all_outbound=False,
        )
        self.endpoint_security_group.add_ingress_rule(
            ec2.Peer.ipv4(network.cidr), ec2.Port.tcp(443), "HTTPS from inside the VPC"
        )
        self.interface_endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        for name in network.interface_endpoints:
            self.interface_endpoints[name] = self.vpc.add_interface_endpoint(
                _endpoint_id(name),
                service=INTERFACE_ENDPOINTS[name],
                subnets=self.subnets,
                security_groups=[self.endpoint_security_group],
                private_dns_enabled=True,
                open=False,
            )
            self.interface_endpoints[name].add_to_policy(self._account_only())

    def _account_only(self) -> iam.PolicyStatement:
        """The one statement of every endpoint's policy: this account's principals, this account's
        resources. An endpoint policy is a boundary, not a grant: identity and resource policies
        still decide (https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html).
        aws:PrincipalAccount is the caller's account and aws:ResourceAccount the account that owns
        the resource asked for
        (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html);
        AWS's data-perimeter endpoint policies use the same pair at organisation level
        (https://github.com/aws-samples/data-perimeter-policy-examples/tree/main/vpc_endpoint_policies)."""
        account = self.account  # the deployment account's token (AWS::AccountId), or the stage's account
        return iam.PolicyStatement(
            sid=ACCOUNT_ONLY_SID,
            principals=[iam.StarPrincipal()],  # "Principal": "*", as endpoint policies are written
            actions=["*"],
            resources=["*"],
            conditions={"StringEquals": {"aws:PrincipalAccount": account, "aws:ResourceAccount": account}},
        )

    @property
    def availability_zones(self) -> list[str]:
        """The configured zones, so that no synth-time look-up is needed (CDK's documented
        override); an environment-agnostic stack keeps CDK's two Fn::GetAZs zones."""
        return self._configured_zones or super().availability_zones


def _endpoint_id(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace(".", "-").split("-")) + "Endpoint"
