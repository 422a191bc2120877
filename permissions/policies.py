"""The policies a deployment put in force, read from the twin's resolved templates.

Every policy here is the synthesized document with its intrinsics resolved to the twin's physical
names (the same names the recorded requests use): each role's trust policy, inline policies and
attached managed policies, and each resource's own policy (KMS key policy, bucket policy, topic
policy, queue policy, and a Lambda function's policy built from its ``AWS::Lambda::Permission``
resources as Lambda builds it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local.platform import Twin


@dataclass(frozen=True)
class Policy:
    """One policy document and where it came from (``stack/logical id``)."""

    id: str
    document: dict[str, Any]
    origin: str


@dataclass
class Role:
    arn: str
    name: str
    origin: str
    trust: Policy
    identity: list[Policy] = field(default_factory=list)


@dataclass
class Policies:
    roles: dict[str, Role] = field(default_factory=dict)  # role ARN -> role
    resources: dict[str, Policy] = field(default_factory=dict)  # resource ARN -> its policy
    keys: dict[str, str] = field(default_factory=dict)  # KMS key id -> key ARN

    def all(self) -> list[Policy]:
        found = [p for r in self.roles.values() for p in (r.trust, *r.identity)]
        return found + list(self.resources.values())

    def role(self, arn: str) -> Role:
        try:
            return self.roles[arn]
        except KeyError:
            raise KeyError(f"no role {arn} in the deployment") from None

    def resource_policy(self, resource_arn: str) -> Policy | None:
        """The policy that governs ``resource_arn``: its own, or its bucket's for an S3 object."""
        if resource_arn in self.resources:
            return self.resources[resource_arn]
        if resource_arn.startswith("arn:aws:s3:::") and "/" in resource_arn:
            return self.resources.get(resource_arn.split("/", 1)[0])
        return None


def _document(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else value


def collect(twin: Twin) -> Policies:
    """Every role and resource policy of every stack the twin deployed."""
    found = Policies()
    role_names: dict[str, str] = {}  # role name -> ARN
    attachments: list[tuple[str, Policy]] = []  # (role name, policy)
    permissions: dict[str, list[dict[str, Any]]] = {}  # function ARN -> statements
    managed_policies: dict[str, Policy] = {}  # policy ARN -> policy
    by_arn: list[tuple[str, str]] = []  # (role ARN, managed policy ARN)
    for stack in twin.cloudformation.stacks.values():
        resources = stack.template.get("Resources", {})
        for logical_id, properties in stack.applied.items():
            kind = resources[logical_id]["Type"]
            physical = stack.physical.get(logical_id)
            origin = f"{stack.name}/{logical_id}"
            if physical is None or not properties:
                continue
            if kind == "AWS::IAM::Role":
                arn = physical.attributes["Arn"]
                role = Role(
                    arn,
                    physical.ref,
                    origin,
                    Policy(f"{origin}#trust", _document(properties["AssumeRolePolicyDocument"]), origin),
                )
                for inline in properties.get("Policies", []):
                    role.identity.append(
                        Policy(f"{origin}#{inline['PolicyName']}", _document(inline["PolicyDocument"]), origin)
                    )
                for managed in properties.get("ManagedPolicyArns", []):
                    if ":iam::aws:policy/" in managed:
                        role.identity.append(_aws_managed(twin, managed))
                    else:  # the platform's own managed policy, by ARN (Ref of AWS::IAM::ManagedPolicy)
                        by_arn.append((arn, managed))
                found.roles[arn] = role
                role_names[physical.ref] = arn
            elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                policy = Policy(origin, _document(properties["PolicyDocument"]), origin)
                attachments += [(name, policy) for name in properties.get("Roles", [])]
                if kind == "AWS::IAM::ManagedPolicy":
                    managed_policies[physical.ref] = policy
            elif kind == "AWS::KMS::Key":
                arn = physical.attributes["Arn"]
                found.resources[arn] = Policy(origin, _document(properties["KeyPolicy"]), origin)
                found.keys[physical.ref] = arn
            elif kind == "AWS::S3::BucketPolicy":
                found.resources[f"arn:aws:s3:::{properties['Bucket']}"] = Policy(
                    origin, _document(properties["PolicyDocument"]), origin
                )
            elif kind == "AWS::SNS::TopicPolicy":
                for topic in properties["Topics"]:
                    found.resources[topic] = Policy(origin, _document(properties["PolicyDocument"]), origin)
            elif kind == "AWS::SQS::QueuePolicy":
                for url in properties["Queues"]:
                    found.resources[_queue_arn(twin, url)] = Policy(
                        origin, _document(properties["PolicyDocument"]), origin
                    )
            elif kind == "AWS::Lambda::Permission":
                function = twin.functions.by_name_or_arn(properties["FunctionName"])
                permissions.setdefault(function.arn, []).append(_lambda_statement(properties, function.arn, logical_id))
    for name, policy in attachments:
        found.roles[role_names[name]].identity.append(policy)
    for role_arn, policy_arn in by_arn:
        found.roles[role_arn].identity.append(managed_policies[policy_arn])
    for arn, statements in permissions.items():
        found.resources[arn] = Policy(f"{arn}#policy", {"Version": "2012-10-17", "Statement": statements}, arn)
    return found


def _queue_arn(twin: Twin, url: str) -> str:
    # https://sqs.<region>.amazonaws.com/<account>/<name> (or moto's host): the account and name are the last two parts.
    account, name = url.rstrip("/").rsplit("/", 2)[-2:]
    return f"arn:aws:sqs:{twin.region}:{account}:{name}"


def _lambda_statement(p: dict[str, Any], function_arn: str, sid: str) -> dict[str, Any]:
    """The statement AddPermission writes into a function's policy.

    https://docs.aws.amazon.com/lambda/latest/dg/access-control-resource-based.html : a service
    principal with SourceArn becomes ``ArnLike aws:SourceArn``, SourceAccount ``StringEquals
    aws:SourceAccount``.
    """
    principal = p["Principal"]
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": principal} if principal.endswith(".amazonaws.com") else {"AWS": principal},
        "Action": p["Action"],
        "Resource": function_arn,
    }
    condition: dict[str, Any] = {}
    if "SourceArn" in p:
        condition["ArnLike"] = {"AWS:SourceArn": p["SourceArn"]}
    if "SourceAccount" in p:
        condition["StringEquals"] = {"AWS:SourceAccount": p["SourceAccount"]}
    if condition:
        statement["Condition"] = condition
    return statement


def _aws_managed(twin: Twin, arn: str) -> Policy:
    """An AWS managed policy's current document, as moto ships AWS's managed policies."""
    from local.trace import acting_as

    with acting_as("twin"):
        iam = twin.client("iam")
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    return Policy(arn, _document(document), "AWS managed")
