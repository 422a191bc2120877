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

import functools
import hashlib
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import platform_runtime as runtime
from botocore.exceptions import ClientError

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """Set by ``constructs/model_functions.StartBatchTransform``: which files start a transform
    job, where its output goes, and where and as whom it runs."""

    data_bucket: str = runtime.setting("DATA_BUCKET")
    input_prefix: str = runtime.setting("BATCH_INPUT_PREFIX")
    output_prefix: str = runtime.setting("BATCH_OUTPUT_PREFIX")
    group_prefix: str = runtime.setting("GROUP_PREFIX")
    placement: runtime.JobPlacement = runtime.settings_group(runtime.JobPlacement)
    datasets: list[str] = runtime.setting("DATASETS", "json")
    topic_arn: str = runtime.setting("TOPIC_ARN")
    instance_type: str = runtime.setting("INSTANCE_TYPE")
    instance_count: int = runtime.setting("INSTANCE_COUNT", "integer")


def start_batch_transform(event: Mapping[str, Any], sagemaker, sns, settings: Settings) -> dict[str, Any]:
    obj = runtime.ObjectCreated.from_event(event)
    found = obj.in_dataset(bucket=settings.data_bucket, prefix=settings.input_prefix, datasets=settings.datasets)
    if isinstance(found, str):
        LOG.info("ignored: %s", found)
        return {"status": "ignored", "reason": found}
    dataset, name = found

    group = runtime.model_package_group(settings.group_prefix, dataset)
    package = runtime.latest_approved_package(sagemaker, group)
    if package is None:
        message = f"No approved model for {dataset} (model package group {group}): {obj.uri} was not transformed"
        LOG.warning(message)
        sns.publish(
            TopicArn=settings.topic_arn,
            Subject=f"ML platform ({settings.placement.stage}): no model for {dataset}",
            Message=message,
        )
        return {"status": "no-model", "dataset": dataset}

    digest = hashlib.sha256("\n".join([obj.key, obj.version, package]).encode()).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9-]", "-", f"{dataset}-{name.rsplit('.', 1)[0]}")[: 63 - 13].strip("-")
    job = f"{stem}-{digest}"
    source = obj.uri
    describe = functools.partial(sagemaker.describe_transform_job, TransformJobName=job)
    if runtime.described(describe) is not None:
        LOG.info("duplicate event: transform job %s exists", job)
        return {"status": "duplicate", "job": job}
    model = job  # one model per job, named after it
    model_refused = _create_model(sagemaker, model, package, settings, dataset)
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
                "S3OutputPath": f"s3://{obj.bucket}/{settings.output_prefix}{dataset}/",
                "Accept": "text/csv",
                "AssembleWith": "Line",
                "KmsKeyId": settings.placement.kms_key_arn,
            },
            TransformResources={
                "InstanceType": settings.instance_type,
                "InstanceCount": settings.instance_count,
                "VolumeKmsKeyId": settings.placement.kms_key_arn,
            },
            DataProcessing={"JoinSource": "Input"},
            Tags=runtime.job_tags(settings.placement.stage, dataset),
        )
    except ClientError as error:
        taken = runtime.error_code(error) in runtime.NAME_TAKEN
        if not taken or not _is_ours(runtime.described(describe), model, source):
            if model_refused:  # most likely why: the refused model was not one already there
                raise error from model_refused
            raise
        LOG.info("duplicate event: transform job %s was started by another delivery", job)
        return {"status": "duplicate", "job": job}
    LOG.info("started transform job %s with %s", job, package, extra={"dataset": dataset})
    return {"status": "started", "job": job, "model_package": package, "dataset": dataset}


def _create_model(sagemaker, name: str, package: str, settings: Settings, dataset: str) -> ClientError | None:
    """Creates the SageMaker model of the approved package, isolated in the VPC. SageMaker's
    refusal with a code a taken name gets is returned, not raised: the model is then most likely
    a previous delivery's (its name derives from this object and package), and the transform
    job, which cannot be created without it, tells."""
    try:
        sagemaker.create_model(
            ModelName=name,
            Containers=[{"ModelPackageName": package}],
            ExecutionRoleArn=settings.placement.role_arn,
            VpcConfig=settings.placement.vpc_config,
            EnableNetworkIsolation=True,
            # the function may create only models tagged with its stage
            Tags=runtime.job_tags(settings.placement.stage, dataset),
        )
    except ClientError as error:
        if runtime.error_code(error) not in runtime.NAME_TAKEN:
            raise
        LOG.info("CreateModel refused %s (%s); the transform job will need it", name, runtime.error_code(error))
        return error
    return None


def _is_ours(found: Mapping[str, Any] | None, model: str, source: str) -> bool:
    """Whether the transform job of our name is the one we meant: our model, on this object."""
    if found is None:
        return False
    uri = found.get("TransformInput", {}).get("DataSource", {}).get("S3DataSource", {}).get("S3Uri")
    return found.get("ModelName") == model and uri == source


SETTINGS = runtime.read_settings(Settings, "start_batch_transform", os.environ)
SAGEMAKER = boto3.client("sagemaker")
SNS = boto3.client("sns")


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return start_batch_transform(event, SAGEMAKER, SNS, SETTINGS)
