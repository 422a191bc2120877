"""WorkloadSecurityGroup: the security group of a platform workload that runs on several
instances inside the VPC (Spark workers, SageMaker training instances, Studio apps).

Its members reach each other on any TCP port (and, with ``ipsec``, by IPsec), and the outside
only by HTTPS, which in this VPC (no NAT, no internet gateway) means the interface endpoints and
the S3 gateway. Nothing else comes in.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

# IPsec between the members: IKE on UDP 500 and ESP (IP protocol 50). SageMaker's inter-container
# traffic encryption uses it between the instances of a multi-instance training job.
# https://docs.aws.amazon.com/sagemaker/latest/dg/train-encrypt.html
IPSEC = (
    (ec2.Port.udp(500), "IKE (UDP 500) for encrypted traffic between members"),
    (ec2.Port(protocol=ec2.Protocol.ESP, string_representation="ESP"), "ESP (IP protocol 50) between members"),
)


class WorkloadSecurityGroup(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, vpc: ec2.IVpc, description: str, ipsec: bool = False
    ) -> None:
        super().__init__(scope, construct_id)
        group = ec2.SecurityGroup(self, "Group", vpc=vpc, description=description, allow_all_outbound=False)
        group.add_ingress_rule(group, ec2.Port.all_tcp(), "Members of this workload talk to each other")
        group.add_egress_rule(group, ec2.Port.all_tcp(), "Members of this workload talk to each other")
        for port, why in IPSEC if ipsec else ():
            group.add_ingress_rule(group, port, why)
            group.add_egress_rule(group, port, why)
        group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to the VPC endpoints and the S3 gateway")
        self.security_group = group
