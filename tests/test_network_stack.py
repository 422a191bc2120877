"""NetworkStack: isolated subnets only, endpoints from the configuration, HTTPS-only security
group, KMS-encrypted flow logs; for dev and prod."""

from __future__ import annotations

import pytest
from aws_cdk import Stack
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from stacks.network import NetworkStack
from tests.helpers import logical_id, properties, render, resources


def network(stage) -> Template:
    return stage.templates["network"]


def test_vpc_uses_the_configured_cidr(stage):
    network(stage).has_resource_properties(
        "AWS::EC2::VPC",
        {"CidrBlock": stage.config.network.cidr, "EnableDnsHostnames": True, "EnableDnsSupport": True},
    )


def test_no_path_to_the_internet(stage):
    template = network(stage)
    for resource_type in (
        "AWS::EC2::InternetGateway",
        "AWS::EC2::NatGateway",
        "AWS::EC2::EgressOnlyInternetGateway",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::EC2::EIP",
    ):
        template.resource_count_is(resource_type, 0)
    for route in properties(template, "AWS::EC2::Route"):
        assert "GatewayId" not in route and "NatGatewayId" not in route, route


def test_subnets_are_isolated_and_never_assign_public_ips(stage):
    subnets = properties(network(stage), "AWS::EC2::Subnet")
    assert subnets
    for subnet in subnets:
        assert subnet["MapPublicIpOnLaunch"] is False
        assert {"Key": "aws-cdk:subnet-type", "Value": "Isolated"} in subnet["Tags"]


def test_dev_spreads_two_subnets_over_the_regions_first_two_zones(dev):
    zones = [subnet["AvailabilityZone"] for subnet in properties(network(dev), "AWS::EC2::Subnet")]
    assert zones == [{"Fn::Select": [0, {"Fn::GetAZs": ""}]}, {"Fn::Select": [1, {"Fn::GetAZs": ""}]}]


def test_prod_has_one_subnet_in_each_configured_zone(prod):
    zones = sorted(subnet["AvailabilityZone"] for subnet in properties(network(prod), "AWS::EC2::Subnet"))
    assert zones == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]


def test_s3_gateway_endpoint_serves_every_route_table(stage):
    template = network(stage)
    route_tables = sorted(resources(template, "AWS::EC2::RouteTable"))
    template.has_resource_properties(
        "AWS::EC2::VPCEndpoint",
        {
            "VpcEndpointType": "Gateway",
            "ServiceName": Match.any_value(),
            "RouteTableIds": [{"Ref": name} for name in route_tables],
        },
    )
    gateway = [p for p in properties(template, "AWS::EC2::VPCEndpoint") if p.get("VpcEndpointType") == "Gateway"]
    assert [render(p["ServiceName"]) for p in gateway] == ["com.amazonaws.<region>.s3"]


EXPECTED_SERVICE_NAMES = {
    "sagemaker.api": "com.amazonaws.{r}.sagemaker.api",
    "sagemaker.runtime": "com.amazonaws.{r}.sagemaker.runtime",
    "sagemaker.studio": "aws.sagemaker.{r}.studio",
    "sts": "com.amazonaws.{r}.sts",
    "logs": "com.amazonaws.{r}.logs",
    "monitoring": "com.amazonaws.{r}.monitoring",
    "ecr.api": "com.amazonaws.{r}.ecr.api",
    "ecr.dkr": "com.amazonaws.{r}.ecr.dkr",
    "glue": "com.amazonaws.{r}.glue",
    "kms": "com.amazonaws.{r}.kms",
    "events": "com.amazonaws.{r}.events",
    "cloudformation": "com.amazonaws.{r}.cloudformation",
    "sns": "com.amazonaws.{r}.sns",
    "sqs": "com.amazonaws.{r}.sqs",
}


def test_interface_endpoints_are_exactly_the_configured_services(stage):
    region = stage.config.region or "<region>"
    interface = [p for p in properties(network(stage), "AWS::EC2::VPCEndpoint") if p["VpcEndpointType"] == "Interface"]
    services = sorted(render(p["ServiceName"], region) for p in interface)
    expected = sorted(
        EXPECTED_SERVICE_NAMES[name].format(r=region) for name in stage.config.network.interface_endpoints
    )
    assert services == expected


def test_interface_endpoints_use_private_dns_isolated_subnets_and_the_https_group(stage):
    template = network(stage)
    group = logical_id(template, "AWS::EC2::SecurityGroup", "EndpointSecurityGroup")
    subnets = sorted(resources(template, "AWS::EC2::Subnet"))
    for endpoint in properties(template, "AWS::EC2::VPCEndpoint"):
        if endpoint["VpcEndpointType"] != "Interface":
            continue
        assert endpoint["PrivateDnsEnabled"] is True
        assert endpoint["SecurityGroupIds"] == [{"Fn::GetAtt": [group, "GroupId"]}]
        assert sorted(ref["Ref"] for ref in endpoint["SubnetIds"]) == subnets


def test_endpoint_security_group_admits_https_from_the_vpc_only(stage):
    template = network(stage)
    group = properties(template, "AWS::EC2::SecurityGroup")
    assert len(group) == 1
    assert group[0]["SecurityGroupIngress"] == [
        {
            "CidrIp": stage.config.network.cidr,
            "Description": "HTTPS from inside the VPC",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]
    # CDK's way of saying "no egress": a single rule that matches nothing.
    assert [rule["CidrIp"] for rule in group[0]["SecurityGroupEgress"]] == ["255.255.255.255/32"]
    template.resource_count_is("AWS::EC2::SecurityGroupIngress", 0)


def test_default_security_group_is_stripped_of_its_rules(stage):
    network(stage).resource_count_is("Custom::VpcRestrictDefaultSG", 1)


def test_flow_logs_capture_all_traffic_to_an_encrypted_log_group(stage):
    template = network(stage)
    log_group = logical_id(template, "AWS::Logs::LogGroup", "FlowLogs")
    template.has_resource_properties(
        "AWS::EC2::FlowLog",
        {
            "ResourceType": "VPC",
            "TrafficType": "ALL",
            "LogDestinationType": "cloud-watch-logs",
            "LogGroupName": {"Ref": log_group},
        },
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "RetentionInDays": stage.config.network.flow_log_retention_days,
            # The data stack's platform key, by a strong cross-stack reference (docs/cross-stack-references.md).
            "KmsKeyId": {
                "Fn::ImportValue": Match.string_like_regexp(rf"^{stage.config.stack_prefix}-Data:.*PlatformKey")
            },
        },
    )


def test_flow_logs_follow_the_stage_removal_policy(dev, prod):
    def policy(stage):
        return resources(network(stage), "AWS::Logs::LogGroup").popitem()[1]["DeletionPolicy"]

    assert policy(dev) == "Delete"
    assert policy(prod) == "Retain"


def test_network_stack_is_termination_protected_in_prod_only(dev, prod):
    assert prod.stacks["network"].termination_protection is True
    assert dev.stacks["network"].termination_protection is False


@pytest.mark.parametrize(
    ("endpoints", "hosted"),
    [(("sagemaker.api", "glue", "sns", "cloudformation"), ["bank-marketing"]), (("sagemaker.api", "glue", "sns"), [])],
)
def test_a_stage_can_choose_fewer_endpoints(endpoints, hosted, stage_config, lone_app):
    app = lone_app()
    config = stage_config(
        network={"interface_endpoints": list(endpoints)}, workspace={"kind": "none"}, hosting={"datasets": hosted}
    )
    keys = Stack(app, "Keys")
    stack = NetworkStack(app, "Network", config=config, key=kms.Key(keys, "Key"))
    interface = [
        p
        for p in properties(Template.from_stack(stack), "AWS::EC2::VPCEndpoint")
        if p["VpcEndpointType"] == "Interface"
    ]
    assert len(interface) == len(endpoints)
