"""The VPC endpoints' policies keep traffic to this account's principals and resources, for dev and
prod, judged by the real IAM evaluator on the synthesized policies; the stage configuration's
endpoints are the ones permissions/endpoints.py knows a caller for.

Which services the platform calls from inside the VPC, and that every request it makes there
passes its endpoint's policy, is proven on the twin's recorded calls (tests/test_local_platform.py,
the end of the module: one twin serves both).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from permissions.actions import Request
from permissions.endpoints import DOCUMENTED_CALLERS, GATEWAY, SERVED, endpoint_name, judge, with_accounts
from permissions.policies import Policies, Policy, Role
from stacks.network import ACCOUNT_ONLY_SID
from tests.helpers import properties, render

OURS = "123456789012"  # the dev stage's account when deployed (AWS::AccountId), for the evaluator
THEIRS = "210987654321"
ROLE = f"arn:aws:iam::{OURS}:role/code-inside-the-vpc"
ANYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def _account(stage) -> Any:
    return stage.config.account or {"Ref": "AWS::AccountId"}


def _endpoints(stage) -> dict[str, dict[str, Any]]:
    """Each endpoint's properties by configuration name (s3 for the gateway)."""
    found = {}
    region = stage.config.region or "<region>"
    for endpoint in properties(stage.templates["network"], "AWS::EC2::VPCEndpoint"):
        service = render(endpoint["ServiceName"], region)
        found[endpoint_name(service, region)] = endpoint
    return found


def _resolved(value: Any, account: str) -> Any:
    """The policy as CloudFormation deploys it in ``account`` (AWS::AccountId resolved)."""
    if value == {"Ref": "AWS::AccountId"}:
        return account
    if isinstance(value, dict):
        return {k: _resolved(v, account) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, account) for v in value]
    return value


def test_every_endpoint_lets_only_this_accounts_principals_reach_this_accounts_resources(stage):
    endpoints = _endpoints(stage)
    assert set(endpoints) == {GATEWAY, *stage.config.network.interface_endpoints}
    account = _account(stage)
    for name, endpoint in endpoints.items():
        assert endpoint["PolicyDocument"]["Statement"] == [
            {
                "Sid": ACCOUNT_ONLY_SID,
                "Effect": "Allow",
                "Principal": "*",
                "Action": "*",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalAccount": account, "aws:ResourceAccount": account}},
            }
        ], name


def test_no_account_id_is_typed_into_the_dev_stages_endpoint_policies(dev):
    for endpoint in _endpoints(dev).values():
        condition = endpoint["PolicyDocument"]["Statement"][0]["Condition"]["StringEquals"]
        assert set(map(repr, condition.values())) == {repr({"Ref": "AWS::AccountId"})}


def _gateway_policy(stage) -> dict[str, Any]:
    account = stage.config.account or OURS
    return _resolved(_endpoints(stage)[GATEWAY]["PolicyDocument"], account)


def _decisions(stage, requests: list[Request], gateway_policy: dict[str, Any] | None = None) -> list[str]:
    """Each S3 request of a role allowed everything by its identity policy, to a bucket whose
    policy lets anyone in (the worst case: only the endpoint's policy stands in the way), through
    the S3 gateway with ``gateway_policy`` (AWS's default, full access, when None)."""
    policies = Policies(
        roles={
            r.principal: Role(
                r.principal, "role", "test", Policy("trust", {}, "test"), [Policy("any", ANYTHING, "test")]
            )
            for r in requests
        }
    )
    open_buckets = {
        r.resource: Policy(
            "open",
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": r.resource}],
            },
            "test",
        )
        for r in requests
    }
    by_endpoint = {GATEWAY: gateway_policy} if gateway_policy is not None else {}
    answers = judge([(r, GATEWAY) for r in requests], policies, by_endpoint, resource_policies=open_buckets)
    return [a.decision for a in answers]


def _put(stage, bucket_account: str, principal_account: str | None = None) -> Request:
    account = stage.config.account or OURS
    principal = ROLE.replace(OURS, principal_account or account)
    request = Request(
        principal, "s3:PutObject", "arn:aws:s3:::a-bucket/prepared/x.csv", {"aws:SecureTransport": "true"}
    )
    return with_accounts(request, bucket_account)


def test_a_write_to_another_accounts_bucket_is_denied_by_the_s3_gateways_policy(stage):
    account = stage.config.account or OURS
    theirs, ours = _put(stage, THEIRS), _put(stage, account)
    assert _decisions(stage, [theirs, ours]) == ["Allowed", "Allowed"]  # no endpoint policy
    assert _decisions(stage, [theirs, ours], _gateway_policy(stage)) == ["ImplicitlyDenied", "Allowed"]


def test_another_accounts_credentials_cannot_use_the_s3_gateway(stage):
    account = stage.config.account or OURS
    foreign = _put(stage, account, principal_account=THEIRS)
    assert _decisions(stage, [foreign]) == ["Allowed"]
    assert _decisions(stage, [foreign], _gateway_policy(stage)) == ["ImplicitlyDenied"]


@pytest.mark.parametrize("key", ["aws:PrincipalAccount", "aws:ResourceAccount"])
def test_each_account_condition_of_the_gateway_policy_matters(key, stage):
    account = stage.config.account or OURS
    weakened = copy.deepcopy(_gateway_policy(stage))
    del weakened["Statement"][0]["Condition"]["StringEquals"][key]
    requests = [_put(stage, THEIRS), _put(stage, account, principal_account=THEIRS)]
    assert "Allowed" in _decisions(stage, requests, weakened)
    assert _decisions(stage, requests, _gateway_policy(stage)) == ["ImplicitlyDenied", "ImplicitlyDenied"]


def test_each_configured_endpoint_is_one_the_platform_knows_how_to_judge(stage):
    configured = stage.config.network.interface_endpoints
    assert set(configured) <= set(SERVED)
    # Endpoints nothing inside the VPC calls (permissions/endpoints.py, the twin's recorded calls):
    # Lambda, Glue and SageMaker send their own logs, metrics, queue polls and image pulls.
    assert not set(configured) & {"monitoring", "ecr.api", "ecr.dkr", "kms", "events", "sqs"}


@pytest.mark.parametrize("endpoint", sorted(DOCUMENTED_CALLERS))
def test_each_documented_caller_names_its_source_and_its_endpoint_is_configured(endpoint, stage):
    for caller, url in DOCUMENTED_CALLERS[endpoint]:
        assert caller and url.startswith("https://"), (endpoint, caller, url)
    assert endpoint in stage.config.network.interface_endpoints
