"""start_batch_transform: a file under batch-input/<dataset>/ gets predictions from the latest
approved model of that dataset, written under batch-output/<dataset>/.

Fired by EventBridge on S3 "Object Created" under batch-input/; any other event or object is
ignored with the reason logged. The transform job reads exactly the uploaded object, line by
line (CSV records of the dataset's raw columns, no header), and writes each input row joined to
its prediction. No approved model: no job, a log line and a message to the operators' topic.

Exactly that object: the job's data source is a manifest (S3DataType ManifestFile) naming the one
key, never an S3Prefix, which would also take every key the uploaded one is a prefix of
(cars.csv and cars.csv.bak).
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TransformS3DataSource.html

Output layout: batch-input/<dataset>/<path>/<file> is transformed into
batch-output/<dataset>/<path>/<file>/<job>/<file>.out, beside the job's manifest
(input.manifest). The folder is the input's own key and the job's name, which derives from the
key, the object's version (or ETag) and the model package: two inputs of one name in different
folders, an input and a key it is a prefix of, and two versions of one input never share an
output folder, so none overwrites another's predictions.

The model and job names derive from the object (key, version or ETag) and the model package, so
a repeated event (a new event time for the same object version included) finds the job and
starts nothing, and a create that SageMaker refuses for the name counts as success when the job
of that name, described again, is ours.
"""

from __future__ import annotations

import functools
import hashlib
import json
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
MANIFEST = "input.manifest"  # the job's data source, in its output folder
MAX_URI = 1024  # SageMaker's limit on S3Uri and S3OutputPath
MAX_NAME = 63  # SageMaker's limit on TransformJobName and ModelName


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


def start_batch_transform(event: Any, sagemaker, s3, sns, settings: Settings) -> dict[str, Any]:
    try:
        obj = runtime.ObjectCreated.from_event(event)
    except runtime.Unrecognised as unrecognised:
        return runtime.ignored(LOG, str(unrecognised))
    found = obj.in_dataset(bucket=settings.data_bucket, prefix=settings.input_prefix, datasets=settings.datasets)
    if isinstance(found, str):
        return runtime.ignored(LOG, found)
    dataset, name = found

    group = runtime.model_package_group(settings.group_prefix, dataset)
    package = runtime.latest_approved_package(sagemaker, group)
    if package is None:
        message = f"No approved model for {dataset} (model package group {group}): {obj.uri} was not transformed"
        LOG.warning(message)
        sns.publish(
            TopicArn=settings.topic_arn,
            Subject=f"ML platform ({settings.placement.stage}): no model for {dataset}",
            Message=message + "." + runtime.runbook("no-model-for-batch"),
        )
        return {"status": "no-model", "dataset": dataset}

    digest = hashlib.sha256("\n".join([obj.key, obj.version, package]).encode()).hexdigest()[:12]
    # The job and its model carry the platform's prefix: data scientists may run transform jobs
    # with models of their own, never with one named like the platform's (constructs/data_scientist_roles.py).
    room = MAX_NAME - len(settings.group_prefix) - len(digest) - 2
    stem = re.sub(r"[^A-Za-z0-9-]", "-", f"{dataset}-{name.rsplit('.', 1)[0]}")[: max(room, 0)].strip("-")
    job = "-".join(part for part in (settings.group_prefix, stem, digest) if part)
    output = f"s3://{obj.bucket}/{settings.output_prefix}{dataset}/{name}/{job}/"
    manifest = output + MANIFEST
    if len(manifest) > MAX_URI:
        return runtime.ignored(LOG, f"{obj.key} is too long a key: its manifest's URI would pass {MAX_URI} characters")
    describe = functools.partial(sagemaker.describe_transform_job, TransformJobName=job)
    if runtime.described(describe) is not None:
        LOG.info("duplicate event: transform job %s exists", job)
        return {"status": "duplicate", "job": job}
    folder, _, file_name = obj.key.rpartition("/")
    _write_manifest(s3, manifest, [{"prefix": f"s3://{obj.bucket}/{folder}/"}, file_name])
    model = job  # one model per job, named after it
    model_refused = runtime.create_model(
        sagemaker,
        LOG,
        model,
        [{"ModelPackageName": package}],
        settings.placement,
        runtime.job_tags(settings.placement.stage, dataset),
    )
    try:
        sagemaker.create_transform_job(
            TransformJobName=job,
            ModelName=model,
            **runtime.csv_transform(
                manifest, output, "text/csv", settings.placement, settings.instance_type, settings.instance_count
            ),
            DataProcessing={"JoinSource": "Input"},
            Tags=runtime.job_tags(settings.placement.stage, dataset),
        )
    except ClientError as error:
        taken = runtime.error_code(error) in runtime.NAME_TAKEN
        if not taken or not _is_ours(runtime.described(describe), model, manifest):
            if model_refused:  # most likely why: the refused model was not one already there
                raise error from model_refused
            raise
        LOG.info("duplicate event: transform job %s was started by another delivery", job)
        return {"status": "duplicate", "job": job}
    LOG.info("started transform job %s with %s", job, package, extra={"dataset": dataset})
    return {"status": "started", "job": job, "model_package": package, "dataset": dataset, "output": output}


def _write_manifest(s3, uri: str, manifest: list[Any]) -> None:
    """The job's manifest: the same object and content for the same job, so a repeated write is harmless."""
    bucket, key = runtime.split_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode(), ContentType="application/json")


def _is_ours(found: Mapping[str, Any] | None, model: str, manifest: str) -> bool:
    """Whether the transform job of our name is the one we meant: our model, on this object's manifest."""
    if found is None:
        return False
    source = found.get("TransformInput", {}).get("DataSource", {}).get("S3DataSource", {})
    return found.get("ModelName") == model and source == {"S3DataType": "ManifestFile", "S3Uri": manifest}


SETTINGS = runtime.read_settings(Settings, "start_batch_transform", os.environ)
SAGEMAKER = boto3.client("sagemaker")
S3 = boto3.client("s3")
SNS = boto3.client("sns")


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return start_batch_transform(event, SAGEMAKER, S3, SNS, SETTINGS)
