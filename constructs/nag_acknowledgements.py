"""cdk-nag acknowledgements that recur across stacks, each with the reason a reviewer reads.

Every acknowledgement is attached to one exact resource, never to a stack.
"""

from __future__ import annotations

from cdk_nag import NagSuppressions
from constructs import IConstruct

GRANT_POLICY_REASON = (
    "CDK writes this role's grants as its default policy: statements scoped to the named "
    "resources this one role uses, versioned with the stack. A customer-managed policy would "
    "add reuse that a single-purpose role does not have."
)


def acknowledge(resource: IConstruct, reasons: dict[str, str]) -> None:
    """Acknowledge each rule id in ``reasons`` on ``resource`` (and only on it)."""
    NagSuppressions.add_resource_suppressions(
        resource, [{"id": rule, "reason": reason} for rule, reason in sorted(reasons.items())]
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
