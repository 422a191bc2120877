"""cdk-nag acknowledgements that recur across stacks, each with the reason a reviewer reads.

Every acknowledgement is attached to one exact resource, never to a stack.
"""

from __future__ import annotations

from aws_cdk import Stack, Token
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import IConstruct

GRANT_POLICY_REASON = (
    "CDK writes this role's grants as its default policy: statements scoped to the named "
    "resources this one role uses, versioned with the stack. A customer-managed policy would "
    "add reuse that a single-purpose role does not have."
)


def acknowledge(resource: IConstruct, reasons: dict[str, str], applies_to: list[str] | None = None) -> None:
    """Acknowledge each rule id in ``reasons`` on ``resource`` (and only on it).

    ``applies_to`` narrows a rule with findings per item (AwsSolutions-IAM5: one per wildcard
    action or resource) to exactly those items, e.g. ``["Resource::*"]``.
    """
    NagSuppressions.add_resource_suppressions(
        resource,
        [NagPackSuppression(id=rule, reason=reason, applies_to=applies_to) for rule, reason in sorted(reasons.items())],
    )


def acknowledge_grant_policy(role: IConstruct) -> None:
    """Acknowledge the inline-policy rules on the default policy CDK grants created for ``role``."""
    policy = role.node.try_find_child("DefaultPolicy")
    if policy is None:
        raise ValueError(f"{role.node.path} has no DefaultPolicy to acknowledge")
    acknowledge(
        policy,
        {
            "HIPAA.Security-IAMNoInlinePolicy": GRANT_POLICY_REASON,
            "NIST.800.53.R5-IAMNoInlinePolicy": GRANT_POLICY_REASON,
        },
    )


# Why the platform's grants use wildcards, for AwsSolutions-IAM5 acknowledgements of grants.
KMS_DATA_KEY_REASON = (
    "kms:GenerateDataKey* (the data-key operations S3, SNS, SQS and SageMaker use with the one platform "
    "key); the resource is that key's ARN, not a wildcard."
)
S3_ACTIONS_REASON = (
    "S3 read grants (CDK's s3:GetObject*, s3:GetBucket*, s3:List* action groups: S3 clients also "
    "read the bucket's location and object metadata) on the bucket and object prefixes named in "
    "the same statement; writes are exactly s3:PutObject, s3:AbortMultipartUpload and, where a "
    "prefix is its owner's, s3:DeleteObject."
)
S3_GRANT_ACTIONS = ["Action::s3:GetBucket*", "Action::s3:GetObject*", "Action::s3:List*"]
KMS_GRANT_ACTIONS = ["Action::kms:GenerateDataKey*"]


def acknowledge_wildcards(policy: IConstruct, reasons: dict[str, list[str]]) -> None:
    """AwsSolutions-IAM5 on ``policy``, item by item: each reason covers exactly its items (a reason
    with no items acknowledges nothing; an empty ``applies_to`` would acknowledge every finding)."""
    NagSuppressions.add_resource_suppressions(
        policy,
        [
            NagPackSuppression(id="AwsSolutions-IAM5", reason=reason, applies_to=items)
            for reason, items in reasons.items()
            if items
        ],
    )


def nag_arn(stack: Stack, service: str, resource: str) -> str:
    """An ARN of ``stack``'s account and region as cdk-nag writes it in IAM5 findings:
    pseudo parameters for an environment-agnostic stack, literals for a named environment."""
    region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    partition = "<AWS::Partition>" if Token.is_unresolved(stack.partition) else stack.partition
    return f"arn:{partition}:{service}:{region}:{account}:{resource}"
