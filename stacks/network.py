"""NetworkStack: a VPC with no path to the internet, reaching AWS through VPC endpoints."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from constructs import Construct
from constructs.encrypted_log_group import EncryptedLogGroup
from constructs.nag_acknowledgements import acknowledge_grant_policy

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
            gateway_endpoints={"S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)},
        )
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
        acknowledge_grant_policy(flow_log.node.find_child("IAMRole"))

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

    @property
    def availability_zones(self) -> list[str]:
        """The configured zones, so that no synth-time look-up is needed (CDK's documented
        override); an environment-agnostic stack keeps CDK's two Fn::GetAZs zones."""
        return self._configured_zones or super().availability_zones


def _endpoint_id(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace(".", "-").split("-")) + "Endpoint"
