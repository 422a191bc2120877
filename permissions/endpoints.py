"""What travels through the platform VPC's endpoints, and whether each endpoint's policy lets it.

The twin records every AWS call with its principal. The calls made from inside the VPC are those
of the principals the deployment places there: each Lambda function with a ``VpcConfig`` (its
code's calls; Lambda's own service work done with the function's role, polling a queue and
sending to a dead-letter queue, happens outside the VPC), each Glue job or crawler with a
connection, and the role of each SageMaker job or model with a ``VpcConfig`` (SageMaker reads and
writes S3 for it through the VPC; the containers themselves run with network isolation and call
nothing). Each such call goes through the S3 gateway endpoint or through the interface endpoint of
its service, and is judged by the real IAM evaluator with that endpoint's policy in force beside
the principal's identity policies and the resource's own policy
(``permissions/evaluate.mjs``).

Callers the twin cannot run (Studio's apps) are in ``DOCUMENTED_CALLERS``, each with the page
that says it calls the service from inside the VPC.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from permissions.actions import Request, iam_prefix, needs_resource
from permissions.calls import requests_of
from permissions.policies import Policies, Policy
from permissions.proof import simulate

if TYPE_CHECKING:
    from local.platform import Twin

GATEWAY = "s3"  # the S3 gateway endpoint; every other endpoint is an interface endpoint

# The botocore services each interface endpoint of the stage configuration serves.
# https://docs.aws.amazon.com/vpc/latest/privatelink/aws-services-privatelink-support.html
SERVED: dict[str, frozenset[str]] = {
    "sagemaker.api": frozenset({"sagemaker"}),
    "sagemaker.runtime": frozenset({"sagemaker-runtime"}),
    "sagemaker.studio": frozenset(),  # Studio's web application, no API of botocore's
    "sagemaker.notebook": frozenset(),  # a notebook instance's web application
    "sts": frozenset({"sts"}),
    "logs": frozenset({"logs"}),
    "monitoring": frozenset({"cloudwatch"}),
    "ecr.api": frozenset({"ecr"}),
    "ecr.dkr": frozenset(),  # the Docker registry API, no API of botocore's
    "glue": frozenset({"glue"}),
    "kms": frozenset({"kms"}),
    "events": frozenset({"events"}),
    "cloudformation": frozenset({"cloudformation"}),
    "sns": frozenset({"sns"}),
    "sqs": frozenset({"sqs"}),
}

STUDIO_VPC_ONLY = "https://docs.aws.amazon.com/sagemaker/latest/dg/studio-updated-and-internet-access.html"
# An AWS solutions architect's change to the Studio networking page, merged by AWS's documentation
# team: in VpcOnly mode the SageMaker Python SDK needs STS (its execution role and default bucket)
# and CloudWatch Logs (it follows a training job's log stream).
STUDIO_SDK = "https://github.com/awsdocs/amazon-sagemaker-developer-guide/pull/259"

# Callers inside the VPC the twin does not run: endpoint -> [(caller, documentation)].
DOCUMENTED_CALLERS: dict[str, tuple[tuple[str, str], ...]] = {
    "sagemaker.api": (("Studio's JupyterLab apps in VpcOnly mode", STUDIO_VPC_ONLY),),
    "sagemaker.runtime": (("Studio's JupyterLab apps in VpcOnly mode", STUDIO_VPC_ONLY),),
    "sts": (("the SageMaker Python SDK in Studio's apps (GetCallerIdentity)", STUDIO_SDK),),
    "logs": (("the SageMaker Python SDK in Studio's apps (a training job's log stream)", STUDIO_SDK),),
}

# Lambda's service uses a function's execution role for work it does itself, outside the
# function's VPC: polling the queue of an event source mapping and deleting what was handled
# (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html), and sending a failed asynchronous
# event to the dead-letter queue (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html).
POLLER_OPERATIONS = frozenset({"ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "GetQueueAttributes"})
DEAD_LETTER_OPERATIONS = frozenset({"SendMessage"})


@dataclass(frozen=True)
class Passage:
    """One request made from inside the VPC, and the endpoint it travels through."""

    request: Request
    endpoint: str  # GATEWAY, or the interface endpoint's configuration name
    service: str  # the botocore service called


def endpoint_name(service_name: str, region: str) -> str:
    """The configuration's name of an endpoint from its service name: com.amazonaws.<region>.glue
    -> glue, aws.sagemaker.<region>.studio -> sagemaker.studio, com.amazonaws.<region>.s3 -> s3."""
    for prefix in (f"com.amazonaws.{region}.", f"aws.sagemaker.{region}."):
        if service_name.startswith(prefix):
            rest = service_name.removeprefix(prefix)
            return f"sagemaker.{rest}" if prefix.startswith("aws.sagemaker") else rest
    raise ValueError(f"{service_name}: not an AWS service endpoint of {region}")


def endpoint_for(service: str, configured: Iterable[str]) -> str | None:
    """The endpoint a call to botocore ``service`` travels through, or None if the VPC has none."""
    if service == "s3":
        return GATEWAY
    return next((name for name in configured if service in SERVED.get(name, ())), None)


def endpoint_policies(twin: Twin) -> dict[str, dict[str, Any]]:
    """Each deployed endpoint's policy document by endpoint name, resolved as the twin deployed it
    (an endpoint without one has AWS's default, full access: it is left out)."""
    found: dict[str, dict[str, Any]] = {}
    for stack in twin.cloudformation.stacks.values():
        resources = stack.template.get("Resources", {})
        for logical_id, properties in stack.applied.items():
            if resources[logical_id]["Type"] != "AWS::EC2::VPCEndpoint" or "PolicyDocument" not in properties:
                continue
            document = properties["PolicyDocument"]
            found[endpoint_name(properties["ServiceName"], twin.region)] = (
                json.loads(document) if isinstance(document, str) else document
            )
    return found


def in_vpc_principals(twin: Twin, policies: Policies, calls: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """The roles whose calls leave from inside the VPC, each with what places it there (``calls``:
    the recorded calls to read, by default all the twin recorded)."""
    found: dict[str, str] = {}
    names = {role.name: arn for arn, role in policies.roles.items()}

    def role_arn(value: str) -> str:
        return value if value.startswith("arn:") else names.get(value, value)

    for function in twin.functions:
        if function.properties.get("VpcConfig", {}).get("SubnetIds"):
            found[function.role_arn] = f"function {function.name} (VpcConfig)"
    for stack in twin.cloudformation.stacks.values():
        resources = stack.template.get("Resources", {})
        for logical_id, properties in stack.applied.items():
            kind = resources[logical_id]["Type"]
            if kind == "AWS::Glue::Job" and properties.get("Connections", {}).get("Connections"):
                found[role_arn(properties["Role"])] = f"Glue job {logical_id} (connection)"
            elif kind == "AWS::Glue::Crawler" and any(
                t.get("ConnectionName") for t in properties.get("Targets", {}).get("S3Targets", [])
            ):
                found[role_arn(properties["Role"])] = f"Glue crawler {logical_id} (connection)"
            else:
                for role in _vpc_roles(properties):
                    found[role] = f"{kind} {logical_id} (VpcConfig)"
    for call in twin.trace.calls() if calls is None else calls:  # jobs and models created at run time
        for role in _vpc_roles(call.get("params") or {}):
            found.setdefault(role, f"{call['service']} {call['operation']} by {call['principal']} (VpcConfig)")
    return found


def _vpc_roles(value: Any) -> Iterator[str]:
    """Roles handed to SageMaker next to a VpcConfig, at any depth of a request or resource."""
    if isinstance(value, Mapping):
        if value.get("VpcConfig"):
            for key in ("RoleArn", "ExecutionRoleArn"):
                if isinstance(value.get(key), str):
                    yield value[key]
        for item in value.values():
            yield from _vpc_roles(item)
    elif isinstance(value, list):
        for item in value:
            yield from _vpc_roles(item)


def _lambda_service_queues(twin: Twin) -> set[tuple[str, str, str]]:
    """(role, queue name, operation) of the SQS requests Lambda's service makes with a function's role."""
    found: set[tuple[str, str, str]] = set()
    for mapping in twin.queues.mappings:
        role = twin.functions.by_name_or_arn(mapping.function).role_arn
        found |= {(role, mapping.queue_arn.rsplit(":", 1)[-1], op) for op in POLLER_OPERATIONS}
    for function in twin.functions:
        if function.dead_letter_queue:
            queue = function.dead_letter_queue.rsplit(":", 1)[-1]
            found |= {(function.role_arn, queue, op) for op in DEAD_LETTER_OPERATIONS}
    return found


def in_vpc_calls(twin: Twin, policies: Policies, calls: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The recorded calls made from inside the VPC (whatever their outcome: each crossed an endpoint)."""
    recorded = twin.trace.calls() if calls is None else calls
    principals = in_vpc_principals(twin, policies, recorded)
    service_side = _lambda_service_queues(twin)
    calls = []
    for call in recorded:
        if call["principal"] not in principals:
            continue
        queue = str((call.get("params") or {}).get("QueueUrl", "")).rstrip("/").rsplit("/", 1)[-1]
        if call["service"] == "sqs" and (call["principal"], queue, call["operation"]) in service_side:
            continue
        calls.append(call)
    return calls


def passages(
    twin: Twin, policies: Policies, configured: Iterable[str], calls: list[dict[str, Any]] | None = None
) -> tuple[list[Passage], list[str]]:
    """The requests of the in-VPC calls with the endpoint each travels through, and the services
    called from inside the VPC that no endpoint serves."""
    from permissions.proof import where_of

    configured = tuple(configured)
    where = where_of(twin, policies)
    found: dict[str, Passage] = {}
    missing: set[str] = set()
    for call in in_vpc_calls(twin, policies, calls):
        endpoint = endpoint_for(call["service"], configured)
        if endpoint is None:
            missing.add(call["service"])
            continue
        prefix = iam_prefix(call["service"])
        for request in requests_of(call, where):
            # The call's own actions only: iam:PassRole is IAM's check of the call, and the KMS
            # requests of an SSE-KMS object are S3's, made from S3, not through an endpoint.
            if isinstance(request, Request) and request.action.split(":", 1)[0] == prefix:
                found.setdefault(request.key(), Passage(request, endpoint, call["service"]))
    return list(found.values()), sorted(missing)


def account_of(arn: str) -> str:
    return arn.split(":")[4]


def with_accounts(request: Request, resource_account: str) -> Request:
    """The request with the account keys AWS puts in every request's context (the evaluator takes
    them from the request): the caller's account, and the account owning the resource."""
    return replace(
        request,
        context={
            **request.context,
            "aws:PrincipalAccount": account_of(request.principal),
            "aws:ResourceAccount": resource_account,
        },
    )


def resource_account(request: Request, bucket_accounts: Mapping[str, str]) -> str:
    """The account that owns the resource a request names. An S3 ARN names no account: its bucket's
    owner. An action on no resource ("*": List*, GetCallerIdentity) acts on the caller's own account."""
    if request.resource == "*":
        return account_of(request.principal)
    if request.resource.startswith("arn:aws:s3:::"):
        bucket = request.resource.removeprefix("arn:aws:s3:::").split("/", 1)[0]
        return bucket_accounts[bucket]
    return account_of(request.resource)


def twin_buckets(twin: Twin) -> dict[str, str]:
    """Every bucket of the twin's account (the platform's and CDK's assets bucket) -> its account."""
    from moto.s3.models import s3_backends

    return dict.fromkeys(s3_backends[twin.account]["aws"].buckets, twin.account)


@dataclass(frozen=True)
class Judged:
    request: Request
    endpoint: str
    decision: str
    detail: str = ""


def judge(
    requests: Iterable[tuple[Request, str]],
    policies: Policies,
    endpoint_policies: Mapping[str, Mapping[str, Any]],
    *,
    identity: Mapping[str, list[Policy]] | None = None,
    resource_policies: Mapping[str, Policy] | None = None,
) -> list[Judged]:
    """Each (request, endpoint) judged with the principal's identity policies, the resource's own
    policy and the endpoint's policy (none if the endpoint has none: AWS's default, full access).
    ``identity`` and ``resource_policies`` replace the deployment's for a principal or resource."""
    documents: dict[str, Any] = {}
    batch = []
    pairs = list(requests)
    for number, (request, endpoint) in enumerate(pairs):
        own = (identity or {}).get(request.principal)
        if own is None:
            role = policies.roles.get(request.principal)
            own = role.identity if role else []
        resource_policy = (resource_policies or {}).get(request.resource) or policies.resource_policy(request.resource)
        for policy in (*own, *([resource_policy] if resource_policy else [])):
            documents[policy.id] = policy.document
        endpoint_policy = None
        if endpoint in endpoint_policies:
            endpoint_policy = f"endpoint:{endpoint}"
            documents[endpoint_policy] = endpoint_policies[endpoint]
        batch.append(
            {
                "id": number,
                "principal": request.principal,
                "action": request.action,
                "resource": request.resource,
                "account": request.context.get("aws:ResourceAccount") or account_of(request.principal),
                "context": dict(request.context),
                "identity": [p.id for p in own],
                "resource_policy": resource_policy.id if resource_policy else None,
                "endpoint_policy": endpoint_policy,
                "any_resource": request.resource == "*" and not needs_resource(request.action),
            }
        )
    answers = simulate(documents, batch)
    return [
        Judged(pairs[a["id"]][0], pairs[a["id"]][1], a["decision"], json.dumps(a["errors"]) if a.get("errors") else "")
        for a in answers
    ]


__all__ = [
    "DOCUMENTED_CALLERS",
    "GATEWAY",
    "SERVED",
    "Judged",
    "Passage",
    "endpoint_for",
    "endpoint_policies",
    "in_vpc_calls",
    "in_vpc_principals",
    "judge",
    "passages",
    "resource_account",
    "twin_buckets",
    "with_accounts",
]
