"""Requests from the calls our code makes, as the twin recorded them.

A call is one or more requests: the operation's own action(s), ``iam:PassRole`` for each role it
hands to a service, and the KMS requests S3 makes with the caller's credentials for an encrypted
object. The context is what the request carries: HTTPS, the tags it sets, the role it passes to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from permissions.actions import Request, Unknown, actions_for, arn_for, iam_prefix, tag_context

# Which service a role handed over in a call's parameters is passed to: the service called.
# https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html
PASSED_TO = {
    "sagemaker": "sagemaker.amazonaws.com",
    "cloudformation": "cloudformation.amazonaws.com",
    "glue": "glue.amazonaws.com",
    "lambda": "lambda.amazonaws.com",
    "events": "events.amazonaws.com",
}
_ROLE = re.compile(r"^arn:aws:iam::\d{12}:role/.+$")

# S3 and KMS: an SSE-KMS object is encrypted with GenerateDataKey on upload and decrypted on
# download, both with the caller's own permissions and kms:ViaService s3.<region>.amazonaws.com.
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#aws-managed-customer-managed-keys
# With an S3 Bucket Key the encryption context is the bucket's ARN, otherwise the object's.
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html#bucket-key-context
S3_KMS = {"s3:PutObject": "kms:GenerateDataKey", "s3:GetObject": "kms:Decrypt", "s3:GetObjectVersion": "kms:Decrypt"}


@dataclass
class Where:
    """The account the requests are made in, and what the twin knows about its resources."""

    account: str
    region: str
    partition: str = "aws"
    stacks: dict[str, str] = field(default_factory=dict)  # stack name -> stack id (ARN)
    bucket_keys: dict[str, tuple[str, bool]] = field(default_factory=dict)  # bucket -> (key ARN, bucket key on)
    object_key: Callable[[str, str], str | None] = lambda bucket, key: None  # the KMS key an object is under

    def names(self) -> dict[str, Any]:
        return {"partition": self.partition, "region": self.region, "account": self.account, "stacks": self.stacks}


def strings_in(value: Any) -> Iterator[str]:
    """Every string inside a request's parameters or a resource's properties, at any depth."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def context_of(service: str, operation: str, params: Mapping[str, Any]) -> dict[str, str | list[str]]:
    context: dict[str, str | list[str]] = {"aws:SecureTransport": "true"}  # botocore speaks HTTPS to AWS
    if service == "s3":
        context["s3:TlsVersion"] = "1.2"
        if "Prefix" in params:
            context["s3:prefix"] = params["Prefix"]
        if params.get("Tagging"):
            tags = dict(parse_qsl(params["Tagging"]))
            context.update({f"s3:RequestObjectTag/{k}": v for k, v in tags.items()})
            context["s3:RequestObjectTagKeys"] = list(tags)
    elif "Tags" in params:
        context.update(tag_context(params["Tags"]))
    if service == "cloudformation" and params.get("RoleARN"):
        context["cloudformation:RoleArn"] = params["RoleARN"]
    if service == "sagemaker":
        context.update(sagemaker_context(operation, params))
    return context


def sagemaker_context(operation: str, params: Mapping[str, Any]) -> dict[str, str | list[str]]:
    """The SageMaker condition keys a Create request carries, from the parameters they describe.
    A key whose parameter the request leaves out is absent (so only a Null condition matches it).
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemakerai.html#amazonsagemakerai-policy-keys
    """
    if operation == "CreateHyperParameterTuningJob":  # the keys describe the training jobs it starts
        definition = params.get("TrainingJobDefinition") or next(iter(params.get("TrainingJobDefinitions") or []), {})
        return sagemaker_context("CreateTrainingJob", definition)
    network = (params.get("NetworkConfig") or {}) if operation == "CreateProcessingJob" else params
    found: dict[str, Any] = {
        "sagemaker:VpcSubnets": (network.get("VpcConfig") or {}).get("Subnets"),
        "sagemaker:VpcSecurityGroupIds": (network.get("VpcConfig") or {}).get("SecurityGroupIds"),
        "sagemaker:NetworkIsolation": network.get("EnableNetworkIsolation"),
        "sagemaker:InterContainerTrafficEncryption": network.get("EnableInterContainerTrafficEncryption"),
    }
    if operation == "CreateTrainingJob":
        resources = params.get("ResourceConfig") or {}
        found["sagemaker:VolumeKmsKeyArn"] = resources.get("VolumeKmsKeyId")
        found["sagemaker:OutputKmsKeyArn"] = (params.get("OutputDataConfig") or {}).get("KmsKeyId")
        found["sagemaker:InstanceTypes"] = [resources["InstanceType"]] if resources.get("InstanceType") else None
    elif operation == "CreateProcessingJob":
        cluster = (params.get("ProcessingResources") or {}).get("ClusterConfig") or {}
        found["sagemaker:VolumeKmsKeyArn"] = cluster.get("VolumeKmsKeyId")
        found["sagemaker:OutputKmsKeyArn"] = (params.get("ProcessingOutputConfig") or {}).get("KmsKeyId")
        found["sagemaker:InstanceTypes"] = [cluster["InstanceType"]] if cluster.get("InstanceType") else None
    elif operation == "CreateTransformJob":
        resources = params.get("TransformResources") or {}
        found = {
            "sagemaker:VolumeKmsKeyArn": resources.get("VolumeKmsKeyId"),
            "sagemaker:OutputKmsKeyArn": (params.get("TransformOutput") or {}).get("KmsKeyId"),
            "sagemaker:InstanceTypes": [resources["InstanceType"]] if resources.get("InstanceType") else None,
        }
    elif operation != "CreateModel":
        return {}
    else:
        found.pop("sagemaker:InterContainerTrafficEncryption")
    context: dict[str, str | list[str]] = {}
    for key, value in found.items():
        if isinstance(value, bool):
            context[key] = "true" if value else "false"
        elif value:
            context[key] = [str(v) for v in value] if isinstance(value, list) else str(value)
    return context


def requests_of(call: Mapping[str, Any], where: Where) -> Iterator[Request | Unknown]:
    """The requests one recorded call makes (an Unknown where the map cannot say)."""
    principal, service, operation = call["principal"], call["service"], call["operation"]
    params = call.get("params") or {}
    if service == "ssm" and operation == "GetParameters" and len(params.get("Names", [])) != 1:
        for name in params.get("Names", []):  # one authorization per parameter named
            yield from requests_of({**call, "params": {**params, "Names": [name]}}, where)
        return
    why = f"{call.get('by') or principal.rsplit('/', 1)[-1]}: {service} {operation}"
    context = context_of(service, operation, params)
    if call.get("source_identity"):  # the caller's session carries one (Studio: the user profile's name)
        context["aws:SourceIdentity"] = call["source_identity"]
    try:
        actions = actions_for(service, operation, params)
    except Unknown as unknown:
        yield unknown
        return
    named = {**params, **(call.get("created") or {})}
    for action in actions:
        try:
            resource = arn_for(action, named, where.names())
        except Unknown as unknown:
            yield unknown
            continue
        if action == "sagemaker:CreateTransformJob" and params.get("ModelName"):
            # SageMaker's ARNs name a model in lower case.
            model = {"ModelName": str(params["ModelName"]).lower()}
            context = {**context, "sagemaker:ModelArn": arn_for("sagemaker:CreateModel", model, where.names())}
        yield Request(principal, action, resource, context, why)
        if action in S3_KMS:
            yield from _s3_kms(principal, S3_KMS[action], params, where, why)
    if service == "s3" and operation == "CopyObject":
        source_bucket, _, source_key = str(params["CopySource"]).lstrip("/").partition("/")
        source = {"Bucket": source_bucket, "Key": source_key}
        yield Request(principal, "s3:GetObject", arn_for("s3:GetObject", source, where.names()), context, why)
        yield from _s3_kms(principal, "kms:Decrypt", source, where, why)
    if service in PASSED_TO:
        for role in sorted({v for v in strings_in(params) if _ROLE.match(v)}):
            yield Request(
                principal,
                "iam:PassRole",
                role,
                {"iam:PassedToService": PASSED_TO[service]},
                why,
                "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html",
            )


def _s3_kms(principal: str, action: str, params: Mapping[str, Any], where: Where, why: str) -> Iterator[Request]:
    bucket, key = params["Bucket"], params["Key"]
    default, bucket_key = where.bucket_keys.get(bucket, (None, False))
    uploading = action == "kms:GenerateDataKey"
    key_arn = (params.get("SSEKMSKeyId") or default) if uploading else where.object_key(bucket, key)
    if not key_arn:
        return
    arn = f"arn:{where.partition}:s3:::{bucket}" if bucket_key else f"arn:{where.partition}:s3:::{bucket}/{key}"
    yield Request(
        principal,
        action,
        key_arn,
        {
            "kms:ViaService": f"s3.{where.region}.amazonaws.com",
            "kms:CallerAccount": where.account,
            "kms:EncryptionContext:aws:s3:arn": arn,
            "kms:EncryptionContextKeys": ["aws:s3:arn"],
        },
        f"{why} (S3 uses the object's KMS key with the caller's permissions)",
        "https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html",
    )


__all__ = ["PASSED_TO", "Where", "context_of", "iam_prefix", "requests_of", "sagemaker_context"]
