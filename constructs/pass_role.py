"""Passing a role to exactly one AWS service.

CDK's ``grant_pass_role`` lets the grantee pass the role to any service that accepts it; every
``iam:PassRole`` of the platform names its service with ``iam:PassedToService``.
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#ck_PassedToService
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam


def grant_pass_role(role: iam.IRole, grantee: iam.IGrantable, service: str) -> None:
    """``grantee`` may pass ``role`` to ``service`` (``sagemaker.amazonaws.com``, ...) and no other."""
    if not service.endswith(".amazonaws.com"):
        raise ValueError(f"a service principal such as sagemaker.amazonaws.com, not {service!r}")
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": service}},
        )
    )
