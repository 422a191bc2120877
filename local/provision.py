"""One adapter per CloudFormation resource type: a resolved resource becomes a resource of the
emulated account (moto, in process) or of the twin itself (functions, rules, endpoints).

A type with no adapter fails the deployment by name; a type the chain does not need is listed in
``NOT_NEEDED`` with the reason, so a new resource type in a stack is a visible gap, never a
silent skip. Return values follow each type's ``Ref`` and ``Fn::GetAtt`` in the CloudFormation
template reference (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-template-resource-type-ref.html).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from local.resolve import Physical
from local.trace import acting_as

if TYPE_CHECKING:
    from local.platform import Twin

# Types the chain from an upload to a prediction does not use, and why.
NOT_NEEDED = {
    "AWS::CloudTrail::Trail": "records S3 data events for auditors; nothing on the chain reads the trail",
    "AWS::SageMaker::Domain": "the data scientists' Studio workspace; nothing on the data's path runs in it",
    "AWS::SageMaker::UserProfile": "a person's Studio profile; nothing on the data's path runs in it",
    "AWS::SageMaker::StudioLifecycleConfig": "a script Studio runs in a person's JupyterLab app; the twin runs no "
    "app (the SDK defaults it writes are read from its resolved content: local/sdk.py)",
    "AWS::Budgets::Budget": "tells the operators' topic about the bill; the twin has no bill",
    "Custom::S3AutoDeleteObjects": "empties a bucket when its stack is deleted; the twin never deletes a stack",
    "Custom::VpcRestrictDefaultSG": "removes the default security group's rules at deploy time; the twin carries "
    "no network traffic",
}


def declare(deployment: Deployment, kind: str, logical_id: str, properties: dict[str, Any]) -> Physical:
    """The name and attributes a resource of a NOT_NEEDED type would have: nothing is created,
    but what refers to it resolves (a user profile names its domain) and the permission proof
    can derive what AWS does with it (CloudTrail delivering, Studio assuming its role)."""
    name = deployment.name(logical_id)
    if kind == "AWS::SageMaker::Domain":
        domain = "d-" + hashlib.sha256(name.encode()).hexdigest()[:12]
        arn = deployment.arn("sagemaker", f"domain/{domain}")
        return Physical(domain, {"DomainId": domain, "DomainArn": arn, "Url": f"https://{domain}.studio.local"})
    if kind == "AWS::SageMaker::UserProfile":
        user = properties["UserProfileName"]
        arn = deployment.arn("sagemaker", f"user-profile/{properties['DomainId']}/{user}")
        return Physical(user, {"UserProfileArn": arn})
    if kind == "AWS::SageMaker::StudioLifecycleConfig":
        config = properties["StudioLifecycleConfigName"]
        arn = deployment.arn("sagemaker", f"studio-lifecycle-config/{config}")
        return Physical(config, {"StudioLifecycleConfigArn": arn})
    if kind == "AWS::Budgets::Budget":
        return Physical(properties["Budget"].get("BudgetName", name), {})
    if kind == "AWS::CloudTrail::Trail":
        trail = properties.get("TrailName", name)
        return Physical(trail, {"Arn": deployment.arn("cloudtrail", f"trail/{trail}")})
    return Physical(name, {})


# Changed properties of these types update the resource in place; any other type is replaced.
UPDATED_IN_PLACE = {
    "AWS::SageMaker::Endpoint",
    "AWS::SageMaker::MonitoringSchedule",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::CloudWatch::Alarm",
    "AWS::IAM::Policy",
    "AWS::Lambda::EventInvokeConfig",
}


class ProvisionError(RuntimeError):
    """A resource the twin cannot create."""


@dataclass
class Deployment:
    """What an adapter needs: the twin, the stack, and a physical name generator."""

    twin: Twin
    stack: str
    generation: int = 0  # bumped on replacement, so a replaced resource gets a new name
    deferred: list[Callable[[], Any]] = field(default_factory=list)

    def later(self, action: Callable[[], Any]) -> None:
        """Run ``action`` once every resource of the stack exists."""
        self.deferred.append(action)

    def client(self, service: str):
        return self.twin.client(service)

    @property
    def account(self) -> str:
        return self.twin.account

    @property
    def region(self) -> str:
        return self.twin.region

    def arn(self, service: str, resource: str, region: bool = True, account: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{self.account if account else ''}:{resource}"

    def name(self, logical_id: str, limit: int = 64, lower: bool = False, separator: str = "-") -> str:
        """A name as CloudFormation makes them (stack, logical id, a unique suffix), deterministic."""
        digest = hashlib.sha256(f"{self.stack}/{logical_id}/{self.generation}".encode()).hexdigest()[:12].upper()
        stem = f"{self.stack}{separator}{logical_id}"[: limit - len(digest) - 1]
        name = f"{stem}{separator}{digest}"
        return name.lower() if lower else name


Adapter = Callable[[Deployment, str, dict[str, Any]], Physical]
ADAPTERS: dict[str, Adapter] = {}
UPDATERS: dict[str, Callable[[Deployment, str, dict[str, Any], Physical], Physical]] = {}
DELETERS: dict[str, Callable[[Deployment, dict[str, Any], Physical], None]] = {}


def adapter(resource_type: str) -> Callable[[Adapter], Adapter]:
    def register(function: Adapter) -> Adapter:
        ADAPTERS[resource_type] = function
        return function

    return register


def _tags(properties: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"Key": t["Key"], "Value": t["Value"]} for t in properties.get("Tags", [])]


def _pick(properties: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {name: properties[name] for name in names if name in properties}


def _json(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


# --- KMS --------------------------------------------------------------------------------------------


@adapter("AWS::KMS::Key")
def kms_key(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    kms = d.client("kms")
    key = kms.create_key(
        Policy=_json(p["KeyPolicy"]),
        Description=p.get("Description", ""),
        KeyUsage=p.get("KeyUsage", "ENCRYPT_DECRYPT"),
        KeySpec=p.get("KeySpec", "SYMMETRIC_DEFAULT"),
        Tags=[{"TagKey": t["Key"], "TagValue": t["Value"]} for t in p.get("Tags", [])],
    )["KeyMetadata"]
    if p.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=key["KeyId"])
    return Physical(key["KeyId"], {"Arn": key["Arn"], "KeyId": key["KeyId"]})


@adapter("AWS::KMS::Alias")
def kms_alias(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    d.client("kms").create_alias(AliasName=p["AliasName"], TargetKeyId=p["TargetKeyId"])
    return Physical(p["AliasName"])


# --- S3 ------------------------------------------------------------------------------------------------


@adapter("AWS::S3::Bucket")
def s3_bucket(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    s3 = d.client("s3")
    name = p.get("BucketName") or d.name(logical_id, 63, lower=True)
    location = {} if d.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": d.region}}
    s3.create_bucket(Bucket=name, **location)
    if "BucketEncryption" in p:
        rules = [
            {
                **_pick(rule, "BucketKeyEnabled"),
                "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
            }
            for rule in p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "VersioningConfiguration" in p:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=p["VersioningConfiguration"])
    if "PublicAccessBlockConfiguration" in p:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=p["PublicAccessBlockConfiguration"])
    if "OwnershipControls" in p:
        controls = {"Rules": [{"ObjectOwnership": r["ObjectOwnership"]} for r in p["OwnershipControls"]["Rules"]]}
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=controls)
    if "LifecycleConfiguration" in p:
        rules = [_lifecycle_rule(rule) for rule in p["LifecycleConfiguration"]["Rules"]]
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    if "LoggingConfiguration" in p:
        logging = p["LoggingConfiguration"]
        # The log bucket's policy names this bucket (aws:SourceArn), so CloudFormation creates it
        # after this bucket, and S3 accepts the logging configuration before it. moto checks the
        # policy at once, so the twin sets logging once the stack's other resources exist.
        d.later(
            lambda: s3.put_bucket_logging(
                Bucket=name,
                BucketLoggingStatus={
                    "LoggingEnabled": {
                        "TargetBucket": logging["DestinationBucketName"],
                        "TargetPrefix": logging.get("LogFilePrefix", ""),
                    }
                },
            )
        )
    if p.get("NotificationConfiguration", {}).get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        d.twin.s3_events.add(name)
    if p.get("Tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tags(p)})
    domain = f"{name}.s3.{d.region}.amazonaws.com"
    return Physical(
        name,
        {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": domain,
            "DualStackDomainName": f"{name}.s3.dualstack.{d.region}.amazonaws.com",
            "WebsiteURL": f"http://{name}.s3-website-{d.region}.amazonaws.com",
        },
    )


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """CloudFormation's lifecycle rule shape in the S3 API's shape."""
    out: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "Id" in rule:
        out["ID"] = rule["Id"]
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": rule["NoncurrentVersionExpiration"]["NoncurrentDays"]}
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": rule["ExpirationInDays"]}
    return out


@adapter("AWS::S3::BucketPolicy")
def s3_bucket_policy(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    d.client("s3").put_bucket_policy(Bucket=p["Bucket"], Policy=_json(p["PolicyDocument"]))
    return Physical(d.name(logical_id))


# --- IAM -----------------------------------------------------------------------------------------------


@adapter("AWS::IAM::Role")
def iam_role(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    iam = d.client("iam")
    name = p.get("RoleName") or d.name(logical_id, 64)
    role = iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=_json(p["AssumeRolePolicyDocument"]),
        Description=p.get("Description", ""),
        Path=p.get("Path", "/"),
        Tags=_tags(p),
        **_pick(p, "MaxSessionDuration", "PermissionsBoundary"),
    )["Role"]
    for arn in p.get("ManagedPolicyArns", []):
        iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    for policy in p.get("Policies", []):
        iam.put_role_policy(
            RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=_json(policy["PolicyDocument"])
        )
    return Physical(name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})


@adapter("AWS::IAM::Policy")
def iam_policy(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    if p.get("Users") or p.get("Groups"):
        raise ProvisionError(f"{d.stack}/{logical_id}: the twin attaches inline policies to roles only")
    for role in p.get("Roles", []):
        d.client("iam").put_role_policy(
            RoleName=role, PolicyName=p["PolicyName"], PolicyDocument=_json(p["PolicyDocument"])
        )
    return Physical(d.name(logical_id))


UPDATERS["AWS::IAM::Policy"] = lambda d, lid, p, old: iam_policy(d, lid, p)


@adapter("AWS::IAM::ManagedPolicy")
def iam_managed_policy(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    iam = d.client("iam")
    policy = iam.create_policy(
        PolicyName=p.get("ManagedPolicyName") or d.name(logical_id, 128),
        PolicyDocument=_json(p["PolicyDocument"]),
        Description=p.get("Description", ""),
        Path=p.get("Path", "/"),
    )["Policy"]
    for role in p.get("Roles", []):
        iam.attach_role_policy(RoleName=role, PolicyArn=policy["Arn"])
    return Physical(policy["Arn"], {"PolicyArn": policy["Arn"]})


# --- SNS, SQS, logs, alarms ------------------------------------------------------------------------


@adapter("AWS::SNS::Topic")
def sns_topic(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    attributes = {k: str(v) for k, v in _pick(p, "DisplayName", "KmsMasterKeyId", "FifoTopic").items()}
    name = p.get("TopicName") or d.name(logical_id, 256)
    arn = d.client("sns").create_topic(Name=name, Attributes=attributes, Tags=_tags(p))["TopicArn"]
    for subscription in p.get("Subscription", []):
        d.client("sns").subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
    return Physical(arn, {"TopicArn": arn, "TopicName": name})


@adapter("AWS::SNS::TopicPolicy")
def sns_topic_policy(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    for topic in p["Topics"]:
        d.client("sns").set_topic_attributes(
            TopicArn=topic, AttributeName="Policy", AttributeValue=_json(p["PolicyDocument"])
        )
    return Physical(d.name(logical_id))


@adapter("AWS::SNS::Subscription")
def sns_subscription(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    arn = d.client("sns").subscribe(TopicArn=p["TopicArn"], Protocol=p["Protocol"], Endpoint=p["Endpoint"])
    return Physical(arn["SubscriptionArn"])


@adapter("AWS::SQS::Queue")
def sqs_queue(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    names = ("KmsMasterKeyId", "MessageRetentionPeriod", "VisibilityTimeout", "SqsManagedSseEnabled", "DelaySeconds")
    attributes = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in _pick(p, *names).items()}
    if "RedrivePolicy" in p:
        attributes["RedrivePolicy"] = _json(p["RedrivePolicy"])
    name = p.get("QueueName") or d.name(logical_id, 80)
    url = d.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = d.arn("sqs", name)
    return Physical(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})


@adapter("AWS::SQS::QueuePolicy")
def sqs_queue_policy(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    for url in p["Queues"]:
        d.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": _json(p["PolicyDocument"])})
    return Physical(d.name(logical_id))


@adapter("AWS::Logs::LogGroup")
def log_group(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    logs = d.client("logs")
    name = p.get("LogGroupName") or d.name(logical_id, 512)
    logs.create_log_group(logGroupName=name, **({"kmsKeyId": p["KmsKeyId"]} if "KmsKeyId" in p else {}))
    if "RetentionInDays" in p:
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(p["RetentionInDays"]))
    return Physical(name, {"Arn": d.arn("logs", f"log-group:{name}:*")})


@adapter("AWS::CloudWatch::Alarm")
def alarm(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    name = p.get("AlarmName") or d.name(logical_id, 255)
    fields = (
        "AlarmDescription", "ActionsEnabled", "AlarmActions", "OKActions", "InsufficientDataActions", "MetricName",
        "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Period", "Unit", "EvaluationPeriods",
        "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData", "Metrics",
    )  # fmt: skip
    with acting_as("twin"):
        found = d.twin.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    d.client("cloudwatch").put_metric_alarm(AlarmName=name, **_pick(p, *fields))
    # PutMetricAlarm sets a new alarm's state to INSUFFICIENT_DATA and leaves an updated one's as it
    # was (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html);
    # moto starts every alarm OK, which would hide an alarm's first transition.
    state = found[0]["StateValue"] if found else "INSUFFICIENT_DATA"
    with acting_as("twin"):
        d.twin.client("cloudwatch").set_alarm_state(
            AlarmName=name, StateValue=state, StateReason="as CloudWatch keeps it"
        )
    return Physical(name, {"Arn": d.arn("cloudwatch", f"alarm:{name}")})


UPDATERS["AWS::CloudWatch::Alarm"] = lambda d, lid, p, old: alarm(d, lid, {**p, "AlarmName": old.ref})


@adapter("AWS::CloudWatch::Dashboard")
def dashboard(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    name = p.get("DashboardName") or d.name(logical_id, 255)
    d.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=p["DashboardBody"])
    return Physical(name)


# --- EC2 -----------------------------------------------------------------------------------------------


@adapter("AWS::EC2::VPC")
def vpc(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    ec2 = d.client("ec2")
    created = ec2.create_vpc(CidrBlock=p["CidrBlock"], InstanceTenancy=p.get("InstanceTenancy", "default"))["Vpc"]
    vpc_id = created["VpcId"]
    for attribute in ("EnableDnsSupport", "EnableDnsHostnames"):
        if attribute in p:
            ec2.modify_vpc_attribute(VpcId=vpc_id, **{attribute: {"Value": bool(p[attribute])}})
    if p.get("Tags"):
        ec2.create_tags(Resources=[vpc_id], Tags=_tags(p))
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
    return Physical(
        vpc_id,
        {
            "VpcId": vpc_id,
            "CidrBlock": created["CidrBlock"],
            "DefaultSecurityGroup": groups[0]["GroupId"],
            "CidrBlockAssociations": [created["CidrBlockAssociationSet"][0]["AssociationId"]],
        },
    )


@adapter("AWS::EC2::Subnet")
def subnet(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    created = d.client("ec2").create_subnet(
        VpcId=p["VpcId"], CidrBlock=p["CidrBlock"], AvailabilityZone=p["AvailabilityZone"]
    )["Subnet"]
    if p.get("Tags"):
        d.client("ec2").create_tags(Resources=[created["SubnetId"]], Tags=_tags(p))
    return Physical(
        created["SubnetId"],
        {
            "SubnetId": created["SubnetId"],
            "AvailabilityZone": created["AvailabilityZone"],
            "VpcId": p["VpcId"],
            "CidrBlock": created["CidrBlock"],
        },
    )


@adapter("AWS::EC2::RouteTable")
def route_table(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    table = d.client("ec2").create_route_table(VpcId=p["VpcId"])["RouteTable"]
    return Physical(table["RouteTableId"], {"RouteTableId": table["RouteTableId"]})


@adapter("AWS::EC2::SubnetRouteTableAssociation")
def route_table_association(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    answer = d.client("ec2").associate_route_table(RouteTableId=p["RouteTableId"], SubnetId=p["SubnetId"])
    return Physical(answer["AssociationId"], {"Id": answer["AssociationId"]})


PORTED = {"tcp", "udp", "icmp", "icmpv6", "6", "17", "1", "58", "-1"}  # protocols whose rules name ports


def _permission(rule: Mapping[str, Any]) -> dict[str, Any]:
    permission: dict[str, Any] = {"IpProtocol": str(rule["IpProtocol"])}
    if "FromPort" in rule:
        permission |= {"FromPort": int(rule["FromPort"]), "ToPort": int(rule["ToPort"])}
    elif permission["IpProtocol"] not in PORTED:
        # A protocol without ports (ESP, 50) covers all traffic of that protocol; EC2 ignores the
        # ports of such a rule, but moto reads them: -1 is what EC2 answers for them.
        # https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_IpPermission.html
        permission |= {"FromPort": -1, "ToPort": -1}
    if "CidrIp" in rule:
        permission["IpRanges"] = [{"CidrIp": rule["CidrIp"], "Description": rule.get("Description", "")}]
    for key in ("SourceSecurityGroupId", "DestinationSecurityGroupId"):
        if key in rule:
            permission["UserIdGroupPairs"] = [{"GroupId": rule[key], "Description": rule.get("Description", "")}]
    return permission


@adapter("AWS::EC2::SecurityGroup")
def security_group(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    ec2 = d.client("ec2")
    group_id = ec2.create_security_group(
        GroupName=p.get("GroupName") or d.name(logical_id, 255),
        Description=p["GroupDescription"],
        VpcId=p["VpcId"],
    )["GroupId"]
    if "SecurityGroupEgress" in p:  # CloudFormation replaces the default allow-all egress rule
        ec2.revoke_security_group_egress(
            GroupId=group_id, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        )
        egress = [_permission(rule) for rule in p["SecurityGroupEgress"] if rule.get("CidrIp") != "255.255.255.255/32"]
        if egress:
            ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=egress)
    if p.get("SecurityGroupIngress"):
        ec2.authorize_security_group_ingress(
            GroupId=group_id, IpPermissions=[_permission(rule) for rule in p["SecurityGroupIngress"]]
        )
    return Physical(group_id, {"GroupId": group_id, "VpcId": p["VpcId"]})


@adapter("AWS::EC2::SecurityGroupIngress")
def security_group_ingress(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    d.client("ec2").authorize_security_group_ingress(GroupId=p["GroupId"], IpPermissions=[_permission(p)])
    return Physical(d.name(logical_id))


@adapter("AWS::EC2::SecurityGroupEgress")
def security_group_egress(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    d.client("ec2").authorize_security_group_egress(GroupId=p["GroupId"], IpPermissions=[_permission(p)])
    return Physical(d.name(logical_id))


@adapter("AWS::EC2::VPCEndpoint")
def vpc_endpoint(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    request = _pick(p, "VpcEndpointType", "SubnetIds", "SecurityGroupIds", "RouteTableIds", "PrivateDnsEnabled")
    if "PolicyDocument" in p:
        request["PolicyDocument"] = _json(p["PolicyDocument"])
    endpoint = d.client("ec2").create_vpc_endpoint(VpcId=p["VpcId"], ServiceName=p["ServiceName"], **request)
    endpoint_id = endpoint["VpcEndpoint"]["VpcEndpointId"]
    return Physical(endpoint_id, {"Id": endpoint_id, "DnsEntries": []})


@adapter("AWS::EC2::FlowLog")
def flow_log(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    request = _pick(
        p, "TrafficType", "LogDestinationType", "LogGroupName", "DeliverLogsPermissionArn", "LogDestination"
    )
    answer = d.client("ec2").create_flow_logs(ResourceIds=[p["ResourceId"]], ResourceType=p["ResourceType"], **request)
    return Physical(answer["FlowLogIds"][0], {"Id": answer["FlowLogIds"][0]})


# --- Lambda and EventBridge: run by the twin -------------------------------------------------------


@adapter("AWS::Lambda::Function")
def lambda_function(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    name = p.get("FunctionName") or d.name(logical_id, 64)
    arn = d.arn("lambda", f"function:{name}")
    d.twin.functions.register(name=name, arn=arn, stack=d.stack, logical_id=logical_id, properties=p)
    return Physical(name, {"Arn": arn})


@adapter("AWS::Lambda::EventInvokeConfig")
def event_invoke_config(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    function = d.twin.functions.by_name(p["FunctionName"])
    function.maximum_retry_attempts = int(p.get("MaximumRetryAttempts", 2))
    if p.get("DestinationConfig"):  # the platform uses dead-letter queues; destinations are not played
        raise ProvisionError(f"{d.stack}/{logical_id}: the twin does not deliver to invocation destinations")
    return Physical(f"{p['FunctionName']}|{p['Qualifier']}")


UPDATERS["AWS::Lambda::EventInvokeConfig"] = lambda d, lid, p, old: event_invoke_config(d, lid, p)


@adapter("AWS::Lambda::EventSourceMapping")
def event_source_mapping(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    d.twin.queues.add_mapping(p)
    mapping = str(uuid.UUID(hashlib.sha256(f"{d.stack}/{logical_id}".encode()).hexdigest()[:32]))
    arn = d.arn("lambda", f"event-source-mapping:{mapping}")
    return Physical(mapping, {"Id": mapping, "EventSourceMappingArn": arn})


@adapter("AWS::Lambda::Permission")
def lambda_permission(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    function = d.twin.functions.by_name_or_arn(p["FunctionName"])
    function.permissions.append(_pick(p, "Action", "Principal", "SourceArn", "SourceAccount"))
    return Physical(d.name(logical_id))


@adapter("AWS::Events::Rule")
def events_rule(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    name = p.get("Name") or d.name(logical_id, 64)
    bus = p.get("EventBusName", "default")
    arn = d.arn("events", f"rule/{name}" if bus == "default" else f"rule/{bus}/{name}")
    d.twin.bus.add_rule(name=name, arn=arn, stack=d.stack, logical_id=logical_id, properties=p)
    return Physical(name, {"Arn": arn})


# --- Glue -----------------------------------------------------------------------------------------------


@adapter("AWS::Glue::Database")
def glue_database(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    d.client("glue").create_database(DatabaseInput=p["DatabaseInput"])
    return Physical(p["DatabaseInput"]["Name"])


@adapter("AWS::Glue::Connection")
def glue_connection(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    connection = p["ConnectionInput"]
    name = connection.get("Name") or d.name(logical_id, 255)
    d.client("glue").create_connection(ConnectionInput={"ConnectionProperties": {}, **connection, "Name": name})
    return Physical(name)


@adapter("AWS::Glue::SecurityConfiguration")
def glue_security_configuration(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    encryption = dict(p["EncryptionConfiguration"])
    if "S3Encryptions" in encryption:  # CloudFormation's plural is the API's S3Encryption
        encryption["S3Encryption"] = encryption.pop("S3Encryptions")
    d.client("glue").create_security_configuration(Name=p["Name"], EncryptionConfiguration=encryption)
    return Physical(p["Name"])


@adapter("AWS::Glue::Job")
def glue_job(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    name = p.get("Name") or d.name(logical_id, 255)
    fields = (
        "Description", "DefaultArguments", "GlueVersion", "WorkerType", "NumberOfWorkers", "Timeout", "MaxRetries",
        "ExecutionProperty", "SecurityConfiguration", "Connections",
    )  # fmt: skip
    d.client("glue").create_job(Name=name, Role=p["Role"], Command=p["Command"], **_pick(p, *fields))
    return Physical(name)


@adapter("AWS::Glue::Crawler")
def glue_crawler(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    name = p.get("Name") or d.name(logical_id, 255)
    request = _pick(
        p, "Description", "DatabaseName", "SchemaChangePolicy", "RecrawlPolicy", "Configuration",
        "CrawlerSecurityConfiguration",
    )  # fmt: skip
    if "Schedule" in p:
        request["Schedule"] = p["Schedule"]["ScheduleExpression"]
    d.client("glue").create_crawler(Name=name, Role=p["Role"], Targets=p["Targets"], **request)
    return Physical(name)


# --- SageMaker and Application Auto Scaling ------------------------------------------------------


@adapter("AWS::SageMaker::ModelPackageGroup")
def model_package_group(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    arn = d.client("sagemaker").create_model_package_group(
        **_pick(p, "ModelPackageGroupName", "ModelPackageGroupDescription"), Tags=_tags(p)
    )["ModelPackageGroupArn"]
    return Physical(arn, {"ModelPackageGroupArn": arn})


@adapter("AWS::SageMaker::Model")
def sagemaker_model(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    name = p.get("ModelName") or d.name(logical_id, 63)
    request = _pick(
        p, "PrimaryContainer", "Containers", "VpcConfig", "EnableNetworkIsolation", "InferenceExecutionConfig"
    )
    arn = d.client("sagemaker").create_model(
        ModelName=name, ExecutionRoleArn=p["ExecutionRoleArn"], Tags=_tags(p), **request
    )["ModelArn"]
    return Physical(arn, {"ModelName": name})


@adapter("AWS::SageMaker::EndpointConfig")
def endpoint_config(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    name = p.get("EndpointConfigName") or d.name(logical_id, 63)
    request = _pick(p, "ProductionVariants", "DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig")
    arn = d.client("sagemaker").create_endpoint_config(EndpointConfigName=name, Tags=_tags(p), **request)[
        "EndpointConfigArn"
    ]
    return Physical(arn, {"EndpointConfigName": name})


@adapter("AWS::SageMaker::Endpoint")
def endpoint(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    name = p.get("EndpointName") or d.name(logical_id, 63)
    sagemaker = d.client("sagemaker")
    request = _pick(p, "DeploymentConfig")
    arn = sagemaker.create_endpoint(
        EndpointName=name, EndpointConfigName=p["EndpointConfigName"], Tags=_tags(p), **request
    )["EndpointArn"]
    d.twin.hosting.serve(name, p["EndpointConfigName"])
    return Physical(arn, {"EndpointName": name})


def _update_endpoint(d: Deployment, logical_id: str, p: dict[str, Any], old: Physical) -> Physical:
    name = old.attributes["EndpointName"]
    request = {k: v for k, v in _pick(p, "DeploymentConfig", "RetainAllVariantProperties").items()}
    d.client("sagemaker").update_endpoint(EndpointName=name, EndpointConfigName=p["EndpointConfigName"], **request)
    d.twin.hosting.serve(name, p["EndpointConfigName"])
    return old


UPDATERS["AWS::SageMaker::Endpoint"] = _update_endpoint
DELETERS["AWS::SageMaker::Model"] = lambda d, p, old: d.client("sagemaker").delete_model(
    ModelName=old.attributes["ModelName"]
)
DELETERS["AWS::SageMaker::EndpointConfig"] = lambda d, p, old: d.client("sagemaker").delete_endpoint_config(
    EndpointConfigName=old.attributes["EndpointConfigName"]
)


# Model Monitor: neither type is in moto. The twin keeps them (``Twin.monitoring``) and runs a
# schedule's execution when asked (``Jobs.run_monitoring``), as the service would at its hour.


def _job_definition(folder: str) -> Callable[[Deployment, str, dict[str, Any]], Physical]:
    """A monitoring job definition kept by the twin; its ARN is ...:<folder>/<name>."""

    def create(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
        name = p.get("JobDefinitionName") or d.name(logical_id, 63)
        arn = d.arn("sagemaker", f"{folder}/{name}")
        d.twin.monitoring.definitions[name] = p
        return Physical(arn, {"JobDefinitionArn": arn})

    return create


for _kind, _folder in (
    ("DataQuality", "data-quality-job-definition"),
    ("ModelQuality", "model-quality-job-definition"),
):
    adapter(f"AWS::SageMaker::{_kind}JobDefinition")(_job_definition(_folder))
    DELETERS[f"AWS::SageMaker::{_kind}JobDefinition"] = lambda d, p, old: d.twin.monitoring.definitions.pop(
        old.ref.rsplit("/", 1)[-1], None
    )


@adapter("AWS::SageMaker::MonitoringSchedule")
def monitoring_schedule(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    name = p["MonitoringScheduleName"]
    arn = d.arn("sagemaker", f"monitoring-schedule/{name}")
    d.twin.monitoring.schedules[name] = p
    return Physical(arn, {"MonitoringScheduleArn": arn})


UPDATERS["AWS::SageMaker::MonitoringSchedule"] = lambda d, lid, p, old: monitoring_schedule(d, lid, p)
DELETERS["AWS::SageMaker::MonitoringSchedule"] = lambda d, p, old: d.twin.monitoring.schedules.pop(
    old.ref.rsplit("/", 1)[-1], None
)


@adapter("AWS::ApplicationAutoScaling::ScalableTarget")
def scalable_target(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    request = _pick(p, "ServiceNamespace", "ResourceId", "ScalableDimension", "MinCapacity", "MaxCapacity", "RoleARN")
    d.client("application-autoscaling").register_scalable_target(**request)
    # Ref: resource id, scalable dimension and namespace joined by "|" (the template reference).
    return Physical(f"{p['ResourceId']}|{p['ScalableDimension']}|{p['ServiceNamespace']}")


UPDATERS["AWS::ApplicationAutoScaling::ScalableTarget"] = lambda d, lid, p, old: scalable_target(d, lid, p)


@adapter("AWS::ApplicationAutoScaling::ScalingPolicy")
def scaling_policy(d: Deployment, logical_id: str, p: dict[str, Any]) -> Physical:
    if "ScalingTargetId" in p:
        resource_id, dimension, namespace = p["ScalingTargetId"].split("|")
    else:
        resource_id, dimension, namespace = p["ResourceId"], p["ScalableDimension"], p["ServiceNamespace"]
    arn = d.client("application-autoscaling").put_scaling_policy(
        PolicyName=p["PolicyName"],
        ServiceNamespace=namespace,
        ResourceId=resource_id,
        ScalableDimension=dimension,
        PolicyType=p["PolicyType"],
        **_pick(p, "TargetTrackingScalingPolicyConfiguration", "StepScalingPolicyConfiguration"),
    )["PolicyARN"]
    return Physical(arn, {"Arn": arn})


UPDATERS["AWS::ApplicationAutoScaling::ScalingPolicy"] = lambda d, lid, p, old: scaling_policy(d, lid, p)
