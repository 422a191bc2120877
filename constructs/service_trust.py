"""The confused-deputy conditions a role's trust policy may hold for the service that assumes it.

A condition is added only where the service's own page says its sts:AssumeRole request carries
the key, and with the value the page gives: a condition the service does not meet locks it out
at its first run in a real account, which no offline test shows. permissions/reviewed.py
(ASSUME_ROLE_CONTEXT) holds the same pages for the permission proof, whose AssumeRole requests
carry exactly these keys, so a trust condition a service would not meet fails the proof.

Services whose role trust takes no condition here, each said where its role is built:
Lambda (constructs/event_function.py), Glue (constructs/glue_runtime.py), CloudFormation
(constructs/deployment_role.py), CloudTrail's delivery to CloudWatch Logs (stacks/data.py), and
SageMaker notebook instances (constructs/data_scientist_roles.py).
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

SAGEMAKER_DEPUTY = "https://docs.aws.amazon.com/sagemaker/latest/dg/security-confused-deputy-prevention.html"
FLOW_LOGS_ROLE = "https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html"
STUDIO_SOURCE_IDENTITY = "https://docs.aws.amazon.com/sagemaker/latest/dg/monitor-user-access-how-to.html"


def sagemaker_source_arn(scope: Construct) -> str:
    """``arn:<partition>:sagemaker:<region>:<account>:*``: the one aws:SourceArn pattern every
    SageMaker feature the platform's roles serve meets. Jobs send their own ARN (training-job/...,
    processing-job/..., transform-job/...); inference (models behind endpoints and transforms) and
    Studio send this account-wide ARN itself ("The asterisk in the ARN template does not stand for
    wildcard and should not be changed"; sections SageMaker AI Inference and SageMaker Studio of
    SAGEMAKER_DEPUTY). The page's examples carry no aws:SourceAccount: the account is in the ARN."""
    stack = Stack.of(scope)
    return f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:*"


def sagemaker(scope: Construct) -> iam.ServicePrincipal:
    """SageMaker, trusted for jobs, models and Studio of this account and Region only."""
    return iam.ServicePrincipal(
        "sagemaker.amazonaws.com", conditions={"ArnLike": {"aws:SourceArn": sagemaker_source_arn(scope)}}
    )


def flow_logs_conditions(scope: Construct) -> dict[str, dict[str, str]]:
    """VPC Flow Logs assumes its delivery role with the flow log's owner as aws:SourceAccount and
    the flow log's ARN as aws:SourceArn (FLOW_LOGS_ROLE). The flow log names its role, so the role
    cannot name the flow log's id without a cycle: any flow log of this account and Region."""
    stack = Stack.of(scope)
    return {
        "StringEquals": {"aws:SourceAccount": stack.account},
        "ArnLike": {"aws:SourceArn": f"arn:{stack.partition}:ec2:{stack.region}:{stack.account}:vpc-flow-log/*"},
    }


def allow_source_identity(role: iam.Role) -> None:
    """Studio sets the user profile's name as source identity (the domain's
    ExecutionRoleIdentityConfig USER_PROFILE_NAME): the execution roles of its users, and the roles
    of jobs they start, must let SageMaker set it, or the app and job creation are refused
    (STUDIO_SOURCE_IDENTITY)."""
    role.assume_role_policy.add_statements(  # type: ignore[union-attr]
        iam.PolicyStatement(
            actions=["sts:SetSourceIdentity"],
            principals=[iam.ServicePrincipal("sagemaker.amazonaws.com")],
            conditions={"ArnLike": {"aws:SourceArn": sagemaker_source_arn(role)}},
        )
    )
