"""start_batch_transform: a file under batch-input/<dataset>/ gets predictions from the latest
approved model of that dataset, written to batch-output/<dataset>/.

Fired by EventBridge on S3 "Object Created" under batch-input/. The transform job reads the
file line by line (CSV records of the dataset's raw columns, no header), and writes each input
row joined to its prediction. No approved model: no job, a log line and a message to the
operators' topic. The model and job names derive from the object (key, version or ETag) and the
model package, so a repeated event finds the job and starts nothing, and a create that SageMaker
refuses for the name counts as success when the job of that name, described again, is ours.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

LOG = logging.getLogger(__name__)
LOG.setLevel(logging.INFO)
# SageMaker's error codes this function decides by (never by the wording):
# - DescribeTransformJob of a name SageMaker does not have: ResourceNotFound as documented, or the
#   common ValidationException, which SageMaker answers instead. Our names are valid by
#   construction, so a ValidationException can only mean "not found" here.
#   https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTransformJob.html#API_DescribeTransformJob_Errors
# - Create* of a name in use: ResourceInUse as documented for CreateTransformJob, the common
#   ValidationException for CreateModel (which documents no such error). Never taken on the code
#   alone: the transform job is described again, and a model refused so is left for
#   CreateTransformJob, which needs it, to prove (the function's role has no DescribeModel).
#   https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html#API_CreateTransformJob_Errors
#   https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModel.html#API_CreateModel_Errors
#   https://docs.aws.amazon.com/sagemaker/latest/APIReference/CommonErrors.html
NOT_FOUND = ("ResourceNotFound", "ValidationException")
NAME_TAKEN = ("ResourceInUse", "ValidationException")


@dataclass(frozen=True)
class Settings:
    data_bucket: str
    input_prefix: str
    output_prefix: str
    group_prefix: str
    role_arn: str
    kms_key_arn: str
    subnets: list[str]
    security_groups: list[str]
    datasets: list[str]
    topic_arn: str
    stage: str
    instance_type: str
    instance_count: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            data_bucket=env["DATA_BUCKET"],
            input_prefix=env.get("BATCH_INPUT_PREFIX", "batch-input/"),
            output_prefix=env.get("BATCH_OUTPUT_PREFIX", "batch-output/"),
            group_prefix=env["GROUP_PREFIX"],
            role_arn=env["ROLE_ARN"],
            kms_key_arn=env["KMS_KEY_ARN"],
            subnets=json.loads(env["SUBNETS"]),
            security_groups=json.loads(env["SECURITY_GROUPS"]),
            datasets=json.loads(env["DATASETS"]),
            topic_arn=env["TOPIC_ARN"],
            stage=env["STAGE"],
            instance_type=env.get("INSTANCE_TYPE", "ml.m5.large"),
            instance_count=int(env.get("INSTANCE_COUNT", "1")),
        )


def start_batch_transform(event: Mapping[str, Any], sagemaker, sns, settings: Settings) -> dict[str, Any]:
    detail = event["detail"]
    bucket, key = detail["bucket"]["name"], detail["object"]["key"]
    size = int(detail["object"].get("size", 0))
    identity = detail["object"].get("version-id") or detail["object"].get("etag", "")
    dataset, _, name = key.removeprefix(settings.input_prefix).partition("/")
    reason = None
    if bucket != settings.data_bucket or not key.startswith(settings.input_prefix):
        reason = f"s3://{bucket}/{key} is not under the data bucket's {settings.input_prefix}"
    elif key.endswith("/") or size == 0:
        reason = f"{key} is a folder marker or empty"
    elif not name:
        reason = f"{key} is directly under {settings.input_prefix}; expected {settings.input_prefix}<dataset>/<file>"
    elif dataset not in settings.datasets:
        reason = f"dataset {dataset!r} has no spec"
    if reason:
        LOG.info("ignored: %s", reason)
        return {"status": "ignored", "reason": reason}

    group = f"{settings.group_prefix}-{dataset}"
    approved = sagemaker.list_model_packages(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )["ModelPackageSummaryList"]
    if not approved:
        message = (
            f"No approved model for {dataset} (model package group {group}): s3://{bucket}/{key} was not transformed"
        )
        LOG.warning(message)
        sns.publish(
            TopicArn=settings.topic_arn,
            Subject=f"ML platform ({settings.stage}): no model for {dataset}",
            Message=message,
        )
        return {"status": "no-model", "dataset": dataset}
    package = approved[0]["ModelPackageArn"]

    digest = hashlib.sha256("\n".join([key, identity, package]).encode()).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9-]", "-", f"{dataset}-{name.rsplit('.', 1)[0]}")[: 63 - 13].strip("-")
    job = f"{stem}-{digest}"
    source = f"s3://{bucket}/{key}"
    if _described(sagemaker, job) is not None:
        LOG.info("duplicate event: transform job %s exists", job)
        return {"status": "duplicate", "job": job}
    model = job  # one model per job, named after it
    model_refused = _create_model(sagemaker, model, package, settings)
    try:
        sagemaker.create_transform_job(
            TransformJobName=job,
            ModelName=model,
            BatchStrategy="MultiRecord",
            TransformInput={
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source}},
                "ContentType": "text/csv",
                "SplitType": "Line",
            },
            TransformOutput={
                "S3OutputPath": f"s3://{bucket}/{settings.output_prefix}{dataset}/",
                "Accept": "text/csv",
                "AssembleWith": "Line",
                "KmsKeyId": settings.kms_key_arn,
            },
            TransformResources={
                "InstanceType": settings.instance_type,
                "InstanceCount": settings.instance_count,
                "VolumeKmsKeyId": settings.kms_key_arn,
            },
            DataProcessing={"JoinSource": "Input"},
            Tags=[
                {"Key": "ml-platform:stage", "Value": settings.stage},
                {"Key": "ml-platform:dataset", "Value": dataset},
            ],
        )
    except ClientError as error:
        described = _described(sagemaker, job) if error.response["Error"]["Code"] in NAME_TAKEN else None
        if not _is_ours(described, model, source):
            if model_refused:  # most likely why: the refused model was not one already there
                raise error from model_refused
            raise
        LOG.info("duplicate event: transform job %s was started by another delivery", job)
        return {"status": "duplicate", "job": job}
    LOG.info("started transform job %s with %s", job, package, extra={"dataset": dataset})
    return {"status": "started", "job": job, "model_package": package, "dataset": dataset}


def _create_model(sagemaker, name: str, package: str, settings: Settings) -> ClientError | None:
    """Creates the SageMaker model of the approved package, isolated in the VPC. SageMaker's
    refusal with a code a taken name gets is returned, not raised: the model is then most likely
    a previous delivery's (its name derives from this object and package), and the transform
    job, which cannot be created without it, tells."""
    try:
        sagemaker.create_model(
            ModelName=name,
            Containers=[{"ModelPackageName": package}],
            ExecutionRoleArn=settings.role_arn,
            VpcConfig={"SecurityGroupIds": settings.security_groups, "Subnets": settings.subnets},
            EnableNetworkIsolation=True,
        )
    except ClientError as error:
        if error.response["Error"]["Code"] not in NAME_TAKEN:
            raise
        LOG.info("CreateModel refused %s (%s); the transform job will need it", name, error.response["Error"]["Code"])
        return error
    return None


def _described(sagemaker, job: str) -> Mapping[str, Any] | None:
    """The transform job as SageMaker describes it, or None when SageMaker has none of that name."""
    try:
        return sagemaker.describe_transform_job(TransformJobName=job)
    except ClientError as error:
        if error.response["Error"]["Code"] in NOT_FOUND:
            return None
        raise


def _is_ours(described: Mapping[str, Any] | None, model: str, source: str) -> bool:
    """Whether the transform job of our name is the one we meant: our model, on this object."""
    if described is None:
        return False
    uri = described.get("TransformInput", {}).get("DataSource", {}).get("S3DataSource", {}).get("S3Uri")
    return described.get("ModelName") == model and uri == source


SETTINGS = Settings.from_env(os.environ)
SAGEMAKER = boto3.client("sagemaker")
SNS = boto3.client("sns")


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return start_batch_transform(event, SAGEMAKER, SNS, SETTINGS)
