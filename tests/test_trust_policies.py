"""Roles that AWS services assume carry confused-deputy conditions in their trust policies
exactly where the service's page says its AssumeRole request carries the key: SageMaker
(aws:SourceArn of this account and Region) and VPC Flow Logs (aws:SourceAccount and the flow
log's aws:SourceArn). The roles of Lambda, Glue, CloudFormation and CloudTrail's delivery to
CloudWatch Logs take none, for those services do not document (or, CloudTrail, rule out) the keys:
a condition there would lock the service out at its first run. constructs/service_trust.py and
permissions/reviewed.py (ASSUME_ROLE_CONTEXT) give the pages.
"""

from __future__ import annotations

from typing import Any

from permissions.reviewed import ASSUME_ROLE_CONTEXT
from tests.helpers import render, resources
from tests.test_studio_stack import variant

# Service principal -> the trust conditions its roles carry, rendered (tests/helpers.py render).
EXPECTED: dict[str, dict[str, dict[str, str]] | None] = {
    "sagemaker.amazonaws.com": {"ArnLike": {"aws:SourceArn": "arn:aws:sagemaker:<region>:<account>:*"}},
    "vpc-flow-logs.amazonaws.com": {
        "StringEquals": {"aws:SourceAccount": "<account>"},
        "ArnLike": {"aws:SourceArn": "arn:aws:ec2:<region>:<account>:vpc-flow-log/*"},
    },
    # The documented exceptions: no condition the service would not meet.
    "lambda.amazonaws.com": None,
    "glue.amazonaws.com": None,
    "cloudformation.amazonaws.com": None,
    "cloudtrail.amazonaws.com": None,
}
EXCEPTIONS = {service for service, condition in EXPECTED.items() if condition is None}


def service_trusts(stage) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """(stack, role, service principal, Condition) of every trust statement naming a service."""
    found = []
    for stack, template in stage.templates.items():
        for name, role in resources(template, "AWS::IAM::Role").items():
            for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
                services = statement.get("Principal", {}).get("Service", [])
                for service in [services] if isinstance(services, str) else services:
                    found.append((stack, name, service, statement.get("Condition")))
    return found


def rendered(
    condition: dict[str, Any] | None, account: str | None = None, region: str | None = None
) -> dict[str, dict[str, str]] | None:
    """The condition as text: CDK's tokens (an environment-agnostic stack) and the values CDK
    resolves from a stack's explicit account and Region both read <account> and <region>."""
    if condition is None:
        return None

    def text(value: Any) -> str:
        value = render(value)
        if account and region:
            value = value.replace(f":{region}:", ":<region>:").replace(account, "<account>")
        return value

    return {operator: {key: text(value) for key, value in keys.items()} for operator, keys in condition.items()}


def test_every_service_trusted_by_a_role_is_one_whose_assume_request_the_proof_models(stage):
    services = {service for *_, service, _ in service_trusts(stage)}
    assert services <= set(EXPECTED) == set(ASSUME_ROLE_CONTEXT)


def test_roles_of_services_that_send_the_keys_carry_the_documented_conditions(stage):
    for stack, name, service, condition in service_trusts(stage):
        actual = rendered(condition, stage.config.account, stage.config.region)
        assert actual == EXPECTED[service], f"{stack}/{name} trusts {service}"


def test_the_conditions_name_only_keys_the_proof_says_the_service_sends(stage):
    for stack, name, service, condition in service_trusts(stage):
        sends = ASSUME_ROLE_CONTEXT[service]
        sent = {"aws:SourceAccount": sends.source_account, "aws:SourceArn": sends.source_arn}
        allowed = {key for key, is_sent in sent.items() if is_sent}
        keys = {key for keys in (condition or {}).values() for key in keys}
        assert keys <= allowed, f"{stack}/{name}: {service} does not send {keys - allowed} ({sends.doc})"


def test_only_the_documented_exceptions_trust_a_service_without_a_condition(stage):
    trusts = service_trusts(stage)
    bare = {service for *_, service, condition in trusts if condition is None}
    assert {"lambda.amazonaws.com", "glue.amazonaws.com", "cloudformation.amazonaws.com"} <= bare <= EXCEPTIONS
    guarded = {service for *_, service, condition in trusts if condition is not None}
    assert guarded == {"sagemaker.amazonaws.com", "vpc-flow-logs.amazonaws.com"}


def test_a_notebook_instance_role_takes_no_condition_its_page_does_not_give(stage_config, lone_app):
    template = variant(stage_config, lone_app, kind="notebook")
    trusts = {
        name: statement.get("Condition")
        for name, role in resources(template, "AWS::IAM::Role").items()
        for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    }
    [notebook] = [name for name in trusts if name.startswith("NotebookRole")]
    assert trusts[notebook] is None  # notebook instances are not on SageMaker's confused-deputy page
    [jobs] = [name for name in trusts if name.startswith("JobRole")]
    assert rendered(trusts[jobs]) == EXPECTED["sagemaker.amazonaws.com"]
