"""register_model: a finished platform training or tuning job is judged and registered.

Fired by EventBridge when a training or tuning job ends (Completed, Failed, Stopped); an event of
any other state, or any other event, is ignored with the reason logged. Jobs are recognised by
their tags (``ml-platform:stage`` and ``ml-platform:dataset``, set by start_training, and which
no data scientist may set) and by their role (the platform's execution role, which no data
scientist may pass); any other job in the account is ignored.

- Completed: read the job's ``evaluation.json`` (the best training job's, for a tuning job),
  then the metric gate: the dataset's objective metric on the test split must reach the spec's
  ``training.minimum`` and must not fall behind the currently approved model by more than
  ``training.tolerance``. The model package is created Approved, or Rejected with the reason in
  its description; the metrics are attached either way (customer metadata, and evaluation.json
  as the package's model quality statistics).
- Failed or Stopped: the operators' topic hears the job name and SageMaker's failure reason.

Training jobs launched by a tuning job are left to the tuning job's own event. A repeated
event registers nothing new: the package of a job is found by its metadata first, and
CreateModelPackage carries a client token derived from the job name.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import platform_runtime as runtime
from dataset_spec import DatasetSpec, load_spec

LOG = logging.getLogger(__name__)
CONTENT_TYPES = ["text/csv", "application/json"]
PASS_STATUSES = ("Approved", "PendingManualApproval")


PROFILER_REPORT = "ProfilerReport"  # the Debugger rule start_training configures


@dataclass(frozen=True)
class Settings:
    """Set by ``constructs/model_functions.RegisterModel``."""

    artifacts_bucket: str = runtime.setting("ARTIFACTS_BUCKET")
    group_prefix: str = runtime.setting("GROUP_PREFIX")
    topic_arn: str = runtime.setting("TOPIC_ARN")
    images: Mapping[str, str] = runtime.setting("IMAGES", "json")
    specs: Mapping[str, str] = runtime.setting("DATASET_SPECS", "json")
    stage: str = runtime.setting("STAGE")
    # The platform's execution role: start_training's jobs run as it, and no person may pass it.
    execution_role_arn: str = runtime.setting("EXECUTION_ROLE_ARN")
    # "Approved", or "PendingManualApproval" where a person approves each model (per stage).
    pass_status: str = runtime.setting("PASS_STATUS")

    def __post_init__(self) -> None:
        if self.pass_status not in PASS_STATUSES:
            raise runtime.MissingSetting(f"register_model: PASS_STATUS must be one of {', '.join(PASS_STATUSES)}")


@dataclass(frozen=True)
class Verdict:
    approved: bool
    reason: str


def gate(spec: DatasetSpec, value: float, current: float | None) -> Verdict:
    """The metric gate, in the metric's own direction (lower is better for losses and errors)."""
    training = spec.training
    metric, lower = training.objective_metric, training.lower_is_better
    if value != value:  # NaN: the metric could not be computed on this test split
        return Verdict(False, f"test {metric} could not be computed")
    if training.minimum is not None and (value > training.minimum if lower else value < training.minimum):
        bound = "at most" if lower else "at least"
        return Verdict(False, f"test {metric} {value:.4f} misses the bar: {bound} {training.minimum}")
    if current is not None:
        worse = value - current if lower else current - value
        if worse > training.tolerance:
            return Verdict(
                False,
                f"test {metric} {value:.4f} is {worse:.4f} worse than the approved model's {current:.4f} "
                f"(tolerance {training.tolerance})",
            )
    against = f"; approved model: {current:.4f}" if current is not None else "; first approved model"
    return Verdict(True, f"test {metric} {value:.4f} passes the gate{against}")


def register_model(event: Any, sagemaker, s3, sns, settings: Settings) -> dict[str, Any]:
    try:
        change = runtime.JobStateChange.from_event(event)
    except runtime.Unrecognised as unrecognised:
        return runtime.ignored(LOG, str(unrecognised))
    name, status, kind = change.name, change.status, f"{change.kind} job"
    if not change.ended:  # the rule asks for ended jobs only; an event of another state is not ours to judge
        ended = f"{', '.join(runtime.ENDED[:-1])} or {runtime.ENDED[-1]}"
        return runtime.ignored(LOG, f"{kind} {name} is {status}, not ended ({ended})")
    tuning_event = change.kind == "tuning"
    if tuning_event:
        described = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        arn = described["HyperParameterTuningJobArn"]
    else:
        described = sagemaker.describe_training_job(TrainingJobName=name)
        arn = described["TrainingJobArn"]
        if described.get("TuningJobArn"):
            return runtime.ignored(LOG, f"{name} belongs to a tuning job; its outcome is the tuning job's")
    # The rule passes every job's end in the account; only this stage's jobs are ours.
    tags = runtime.tag_map(sagemaker.list_tags(ResourceArn=arn)["Tags"])
    dataset = tags.get(runtime.DATASET_TAG)
    if tags.get(runtime.STAGE_TAG) != settings.stage or dataset is None or dataset not in settings.specs:
        return runtime.ignored(LOG, f"{name} is not a job of this platform stage")
    if status != "Completed":
        reason = described.get("FailureReason", "no reason given") + _rule_statuses(described)
        return _notify_failure(sns, settings, kind, name, status, reason)
    if tuning_event:
        best = described.get("BestTrainingJob", {}).get("TrainingJobName")
        if not best:
            return _notify_failure(sns, settings, kind, name, status, "no training job of it completed")
        job = sagemaker.describe_training_job(TrainingJobName=best)
    else:
        job = described
    if job.get("RoleArn") != settings.execution_role_arn:  # the tags alone are one guard; the role is a second
        return runtime.ignored(LOG, f"{job['TrainingJobName']} did not run as the platform's execution role")

    spec = load_spec(runtime.read_text(s3, settings.specs[dataset]), source=settings.specs[dataset])
    group = runtime.model_package_group(settings.group_prefix, dataset)
    existing = _package_of(sagemaker, group, job["TrainingJobName"])
    if existing:
        LOG.info("duplicate event: %s is already registered as %s", job["TrainingJobName"], existing)
        return {"status": "duplicate", "model_package": existing}

    evaluation = _evaluation(s3, job)
    metric = spec.training.objective_metric
    value = float(evaluation["test"][metric])
    current = _approved_value(sagemaker, group)
    verdict = gate(spec, value, current)
    evaluation_uri = _store_evaluation(s3, settings, dataset, job["TrainingJobName"], evaluation)
    algorithm = spec.training.algorithm
    container: dict[str, Any] = {
        "Image": settings.images[algorithm],
        "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"],
    }
    if algorithm == "xgboost":  # the inference code travels in model.tar.gz under code/
        container["Environment"] = {
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        }
    metadata = {
        "dataset": dataset,
        "run_id": tags.get(runtime.RUN_TAG, ""),
        "training_job": job["TrainingJobName"],
        "objective_metric": metric,
        "objective_value": f"{value:.6f}",
        "verdict": verdict.reason[:256],
        **{f"test_{k}": f"{v:.6f}" for k, v in evaluation["test"].items() if isinstance(v, int | float)},
        "profiler_report": _profiler_report(job),
    }
    package = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelPackageDescription=(_label(verdict, settings) + ": ") + verdict.reason,
        InferenceSpecification={
            "Containers": [container],
            "SupportedContentTypes": CONTENT_TYPES,
            "SupportedResponseMIMETypes": CONTENT_TYPES,
        },
        ModelApprovalStatus=settings.pass_status if verdict.approved else "Rejected",
        ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri}}},
        CustomerMetadataProperties={k: v for k, v in metadata.items() if v},
        ClientToken=hashlib.sha256(job["TrainingJobName"].encode()).hexdigest()[:32],
    )["ModelPackageArn"]
    if not verdict.approved:
        sns.publish(
            TopicArn=settings.topic_arn,
            Subject=f"ML platform ({settings.stage}): model for {dataset} rejected",
            Message=f"Model package {package} from {job['TrainingJobName']} was rejected: {verdict.reason}",
        )
    LOG.info("registered %s: %s", package, verdict.reason, extra={"dataset": dataset})
    passed = {"Approved": "approved", "PendingManualApproval": "pending-approval"}[settings.pass_status]
    return {"status": passed if verdict.approved else "rejected", "model_package": package, "reason": verdict.reason}


def _profiler_report(job: Mapping[str, Any]) -> str:
    """Where the job's ProfilerReport rule wrote its report (start_training sets the place), or ""."""
    rules = job.get("ProfilerRuleConfigurations") or []
    return next((r.get("S3OutputPath", "") for r in rules if r.get("RuleConfigurationName") == PROFILER_REPORT), "")


def _rule_statuses(job: Mapping[str, Any]) -> str:
    """The Debugger rules' verdicts on a job, for the operators: "; ProfilerReport: IssuesFound (...)".
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProfilerRuleEvaluationStatus.html"""
    statuses = job.get("ProfilerRuleEvaluationStatuses") or []
    return "".join(
        f"; {s.get('RuleConfigurationName', 'rule')}: {s.get('RuleEvaluationStatus', 'unknown')}"
        + (f" ({s['StatusDetails']})" if s.get("StatusDetails") else "")
        for s in statuses
    )


def _label(verdict: Verdict, settings: Settings) -> str:
    if not verdict.approved:
        return "Rejected"
    return "Approved" if settings.pass_status == "Approved" else "Passed the gate, awaiting approval"


def _notify_failure(sns, settings: Settings, kind: str, name: str, status: str, reason: str) -> dict[str, Any]:
    sns.publish(
        TopicArn=settings.topic_arn,
        Subject=f"ML platform ({settings.stage}): {kind} {status.lower()}"[:100],
        Message=f"{kind.capitalize()} {name} ended {status}: {reason}",
    )
    LOG.warning("%s %s ended %s: %s", kind, name, status, reason)
    return {"status": "notified", "job": name, "job_status": status, "reason": reason}


def _package_of(sagemaker, group: str, training_job: str) -> str | None:
    paginator = sagemaker.get_paginator("list_model_packages")
    for page in paginator.paginate(ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending"):
        for summary in page["ModelPackageSummaryList"]:
            described = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            if described.get("CustomerMetadataProperties", {}).get("training_job") == training_job:
                return summary["ModelPackageArn"]
    return None


def _approved_value(sagemaker, group: str) -> float | None:
    package = runtime.latest_approved_package(sagemaker, group)
    if package is None:
        return None
    described = sagemaker.describe_model_package(ModelPackageName=package)
    value = described.get("CustomerMetadataProperties", {}).get("objective_value")
    return float(value) if value is not None else None


def _evaluation(s3, job: Mapping[str, Any]) -> dict[str, Any]:
    """evaluation.json from the job's output.tar.gz (what SM_OUTPUT_DATA_DIR became)."""
    base = job["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    bucket, _, prefix = base.removeprefix("s3://").partition("/")
    key = f"{prefix}/{job['TrainingJobName']}/output/output.tar.gz"
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        for member in archive.getmembers():
            content = archive.extractfile(member) if member.isfile() else None
            if member.name.rsplit("/", 1)[-1] == "evaluation.json" and content is not None:
                return json.loads(content.read())
    raise ValueError(f"s3://{bucket}/{key} holds no evaluation.json")


def _store_evaluation(s3, settings: Settings, dataset: str, job_name: str, evaluation: Mapping[str, Any]) -> str:
    key = f"evaluations/{dataset}/{job_name}.json"
    s3.put_object(
        Bucket=settings.artifacts_bucket, Key=key, Body=json.dumps(evaluation).encode(), ContentType="application/json"
    )
    return f"s3://{settings.artifacts_bucket}/{key}"


SETTINGS = runtime.read_settings(Settings, "register_model", os.environ)
SAGEMAKER = boto3.client("sagemaker")
S3 = boto3.client("s3")
SNS = boto3.client("sns")


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return register_model(event, SAGEMAKER, S3, SNS, SETTINGS)
