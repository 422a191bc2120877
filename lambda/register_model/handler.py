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

A built-in algorithm's job (Linear Learner, k-NN) writes no evaluation.json, and its container
reads prepared features, not raw records. Its model is evaluated in two steps, each started by
the end of the one before, each tagged with the job it is for (``ml-platform:evaluates``):

1. scoring: a model of the algorithm's container and a batch transform job over the prepared run's
   validation and test files (a manifest of them beside the model), the target left out
   (``InputFilter: $[1:]``), one JSON line of prediction per record;
2. evaluation: when that transform job completes, a script-mode job of the platform's container
   (training_jobs/evaluate.py) chooses the decision threshold on the validation scores and
   writes evaluation.json from the test scores, and the platform's half of the pipeline.

The evaluation job's end registers the algorithm's model as a serial inference pipeline: the
platform's encoder, the algorithm's container, the platform's decoder (training_jobs/pipeline.py),
so its endpoint and batch transform take raw records and answer as the XGBoost path's do.

Training jobs launched by a tuning job are left to the tuning job's own event. A repeated
event registers nothing new: the package of a job is found by its metadata first, and
CreateModelPackage carries a client token derived from the job name; a scoring or evaluation
step already started is found by its name and not started again.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import os
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import platform_runtime as runtime
from dataset_spec import METRICS, DatasetSpec, load_spec

LOG = logging.getLogger(__name__)
CONTENT_TYPES = ["text/csv", "application/json"]
PASS_STATUSES = ("Approved", "PendingManualApproval")
BUILT_INS = ("linear-learner", "knn")  # algorithms whose containers the platform wraps in a pipeline
AUTOPILOT = "autopilot"  # an AutoML job's best candidate, wrapped the same way
AUTOPILOT_VIEW = "autopilot/"  # the run's raw-feature view (etl/prepare.py), what Autopilot reads
AUTOPILOT_SCORING = AUTOPILOT_VIEW + "scoring/"  # its validation/ and test/ without a header
# What Autopilot's classification containers answer: every class's probability and the labels
# (training_jobs/pipeline.py's AUTOPILOT_OUTPUT, which the decoder reads).
AUTOPILOT_OUTPUT = "probabilities,labels"
EVALUATION_VOLUME_GB = 30  # an Autopilot model's evaluation job's volume (a training job's own otherwise)
LOOKBACK = timedelta(days=1)  # how long after its end an AutoML job is still looked for
HANDLED_TAG = runtime.TAG_PREFIX + "handled"  # on an AutoML job register_model has acted on
PROFILER_REPORT = "ProfilerReport"  # the Debugger rule start_training configures
MANIFEST = "scores.manifest"  # the scoring transform's data source, beside the model
SCORES = "scores/"  # the scoring transform's output folder, beside the model
MAX_NAME = 63  # SageMaker's limit on model, transform and training job names
# The platform's container in an inference pipeline (training_jobs/pipeline.py), per step.
PIPELINE_STEP = {
    "SAGEMAKER_PROGRAM": "pipeline.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
}


@dataclass(frozen=True)
class Settings:
    """Set by ``constructs/model_functions.RegisterModel``."""

    artifacts_bucket: str = runtime.setting("ARTIFACTS_BUCKET")
    group_prefix: str = runtime.setting("GROUP_PREFIX")
    topic_arn: str = runtime.setting("TOPIC_ARN")
    images: Mapping[str, str] = runtime.setting("IMAGES", "json")  # to serve with
    training_images: Mapping[str, str] = runtime.setting("TRAINING_IMAGES", "json")  # to train with
    specs: Mapping[str, str] = runtime.setting("DATASET_SPECS", "json")
    # Where and as whom the evaluation steps run. The role is the platform's execution role:
    # start_training's jobs run as it, and no person may pass it.
    placement: runtime.JobPlacement = runtime.settings_group(runtime.JobPlacement)
    source_uri: str = runtime.setting("SOURCE_URI")  # the platform's training code (evaluate.py)
    data_bucket: str = runtime.setting("DATA_BUCKET")  # where the prepared runs are
    prepared_prefix: str = runtime.setting("PREPARED_PREFIX")
    instance_type: str = runtime.setting("INSTANCE_TYPE")  # of the scoring transform job
    # "Approved", or "PendingManualApproval" where a person approves each model (per stage).
    pass_status: str = runtime.setting("PASS_STATUS")

    @property
    def stage(self) -> str:
        return self.placement.stage

    @property
    def execution_role_arn(self) -> str:
        return self.placement.role_arn

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
    if _is_tick(event):
        try:
            now = runtime.event_time(event)
        except runtime.Unrecognised as unrecognised:
            return runtime.ignored(LOG, str(unrecognised))
        return autopilot_endings(sagemaker, s3, sns, settings, now)
    try:
        change = runtime.JobStateChange.from_event(event)
    except runtime.Unrecognised as unrecognised:
        return runtime.ignored(LOG, str(unrecognised))
    name, status, kind = change.name, change.status, f"{change.kind} job"
    if not change.ended:  # the rule asks for ended jobs only; an event of another state is not ours to judge
        ended = f"{', '.join(runtime.ENDED[:-1])} or {runtime.ENDED[-1]}"
        return runtime.ignored(LOG, f"{kind} {name} is {status}, not ended ({ended})")
    if change.kind == "transform":
        described = sagemaker.describe_transform_job(TransformJobName=name)
        arn = described["TransformJobArn"]
    elif change.kind == "tuning":
        described = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        arn = described["HyperParameterTuningJobArn"]
    else:
        described = sagemaker.describe_training_job(TrainingJobName=name)
        arn = described["TrainingJobArn"]
        if described.get("TuningJobArn"):
            return runtime.ignored(LOG, f"{name} belongs to a tuning job; its outcome is the tuning job's")
        if described.get("AutoMLJobArn"):
            return runtime.ignored(LOG, f"{name} belongs to an AutoML job; its outcome is the AutoML job's")
    # The rule passes every job's end in the account; only this stage's jobs are ours.
    tags = runtime.tag_map(sagemaker.list_tags(ResourceArn=arn)["Tags"])
    dataset = tags.get(runtime.DATASET_TAG)
    if tags.get(runtime.STAGE_TAG) != settings.stage or dataset is None or dataset not in settings.specs:
        return runtime.ignored(LOG, f"{name} is not a job of this platform stage")
    evaluates = tags.get(runtime.EVALUATES_TAG)
    if change.kind != "transform" and not evaluates:  # a model's own job (not an evaluation step) ended
        _job_metrics(settings, dataset, status, _seconds(described, change.kind))
    if change.kind == "transform" and not evaluates:
        return runtime.ignored(LOG, f"{name} is a batch transform job, not a scoring step of an evaluation")
    if status != "Completed":
        reason = described.get("FailureReason", "no reason given") + _rule_statuses(described)
        return _notify_failure(sns, settings, kind, name, status, reason)
    if change.kind == "tuning":
        best = described.get("BestTrainingJob", {}).get("TrainingJobName")
        if not best:
            return _notify_failure(sns, settings, kind, name, status, "no training job of it completed")
        job = sagemaker.describe_training_job(TrainingJobName=best)
    else:  # a training job, or a scoring step (what it scored is the model of the job it evaluates)
        job = described
    if change.kind != "transform" and job.get("RoleArn") != settings.execution_role_arn:
        # the tags alone are one guard; the role is a second
        return runtime.ignored(LOG, f"{job['TrainingJobName']} did not run as the platform's execution role")
    trained = _trained(sagemaker, settings, evaluates) if evaluates else _from_training_job(job, settings)
    if isinstance(trained, str):
        return runtime.ignored(LOG, trained)

    spec = load_spec(runtime.read_text(s3, settings.specs[dataset]), source=settings.specs[dataset])
    if change.kind == "transform":  # the model's scores are in: the evaluation job
        return _start_evaluation(sagemaker, settings, spec, tags, trained, described)
    group = runtime.model_package_group(settings.group_prefix, dataset)
    existing = _package_of(sagemaker, group, trained.name)
    if existing:
        LOG.info("duplicate event: %s is already registered as %s", trained.name, existing)
        return {"status": "duplicate", "model_package": existing}
    if trained.algorithm in BUILT_INS and not evaluates:  # the algorithm's job: its model is scored first
        if not trained.run.startswith(f"s3://{settings.data_bucket}/{settings.prepared_prefix}{dataset}/"):
            return runtime.ignored(LOG, f"{trained.name} did not train on a prepared run of {dataset}")
        return _start_scoring(sagemaker, s3, settings, dataset, tags, trained)
    return _register(sagemaker, s3, sns, settings, spec, group, tags, trained, job)


@dataclass(frozen=True)
class Trained:
    """What a platform model came from, as the evaluation steps and the registry need it: a
    training job (XGBoost, Linear Learner, k-NN) or an AutoML job's best candidate."""

    name: str  # the training job's or the AutoML job's: the package's training_job
    algorithm: str
    run: str  # s3://<data bucket>/prepared/<dataset>/<run-id>/: the run it trained on
    containers: list[dict[str, Any]]  # the model's own containers (the algorithm's, or Autopilot's)
    output: Mapping[str, Any]  # OutputDataConfig: where its jobs' outputs go
    instance_type: str  # the evaluation job's
    volume_gb: int
    max_runtime_seconds: int
    metadata: Mapping[str, str]  # more of the package's metadata (the profiler report; Autopilot's links)

    @property
    def scored(self) -> str:
        """The folder whose validation/ and test/ files the scoring step scores: the prepared run's
        for a built-in algorithm, the raw-feature view's for Autopilot (its containers read raw values)."""
        return self.run + AUTOPILOT_SCORING if self.algorithm == AUTOPILOT else self.run

    @property
    def answers(self) -> str:
        """The type the scoring step asks the model for: Autopilot's CSV, or the built-ins' JSON lines."""
        return "text/csv" if self.algorithm == AUTOPILOT else "application/jsonlines"


def _from_training_job(job: Mapping[str, Any], settings: Settings) -> Trained:
    image = job["AlgorithmSpecification"]["TrainingImage"]
    # The algorithm a training job ran, by its image (the spec may have changed since).
    algorithm = next((a for a in BUILT_INS if settings.training_images.get(a) == image), "xgboost")
    channels = {c["ChannelName"]: c for c in job.get("InputDataConfig", [])}
    train = channels.get("train", {}).get("DataSource", {}).get("S3DataSource", {}).get("S3Uri", "")
    resources = job["ResourceConfig"]
    return Trained(
        name=job["TrainingJobName"],
        algorithm=algorithm,
        run=train.rstrip("/").rsplit("/", 1)[0] + "/" if train else "",  # the train channel's parent
        containers=[{"Image": settings.images[algorithm], "ModelDataUrl": _model_data(job)}],
        output=job["OutputDataConfig"],
        instance_type=resources["InstanceType"],
        volume_gb=resources["VolumeSizeInGB"],
        max_runtime_seconds=job["StoppingCondition"]["MaxRuntimeInSeconds"],
        metadata={"profiler_report": _profiler_report(job)},
    )


def _from_automl_job(job: Mapping[str, Any], settings: Settings) -> Trained | str:
    """An AutoML job's best candidate: its inference containers, told to answer every class's
    probability and the labels (classification), as the platform's decoder reads them."""
    best = job.get("BestCandidate") or {}
    containers = [dict(c) for c in best.get("InferenceContainers") or []]
    if not containers:
        return f"AutoML job {job['AutoMLJobName']} names no best candidate with inference containers"
    problem = job["AutoMLProblemTypeConfig"]["TabularJobConfig"]["ProblemType"]
    if problem != "Regression":
        containers = autopilot_output(containers, AUTOPILOT_OUTPUT)
    training = next(c for c in job["AutoMLJobInputDataConfig"] if c.get("ChannelType", "training") == "training")
    view = training["DataSource"]["S3DataSource"]["S3Uri"]  # .../<run-id>/autopilot/train/
    criteria = job["AutoMLProblemTypeConfig"]["TabularJobConfig"].get("CompletionCriteria", {})
    artifacts = job.get("AutoMLJobArtifacts") or {}
    locations = (best.get("CandidateProperties") or {}).get("CandidateArtifactLocations") or {}
    objective = best.get("FinalAutoMLJobObjectiveMetric") or {}
    metadata = {
        "automl_job": job["AutoMLJobName"],
        "best_candidate": best.get("CandidateName", ""),
        "autopilot_objective": f"{objective['MetricName']}={objective['Value']:.6f}" if objective else "",
        "candidate_notebook": artifacts.get("CandidateDefinitionNotebookLocation", ""),
        "data_exploration_notebook": artifacts.get("DataExplorationNotebookLocation", ""),
        "explainability_report": locations.get("Explainability", ""),
        "model_insights": locations.get("ModelInsights", ""),
    }
    return Trained(
        name=job["AutoMLJobName"],
        algorithm=AUTOPILOT,
        run=view.rsplit(AUTOPILOT_VIEW, 1)[0],
        containers=containers,
        output=job["OutputDataConfig"],
        instance_type=settings.instance_type,
        volume_gb=EVALUATION_VOLUME_GB,
        max_runtime_seconds=criteria.get("MaxRuntimePerTrainingJobInSeconds", 3600),
        metadata=metadata,
    )


def autopilot_output(containers: list[dict[str, Any]], keys: str) -> list[dict[str, Any]]:
    """Autopilot's containers told which keys to answer: the last container's output, and where
    a classification pipeline has a model and a post-processing container (hyperparameter-tuning
    mode), the model's output and the post-processor's input too.
    https://docs.aws.amazon.com/sagemaker/latest/dg/autopilot-automate-model-development-container-output.html"""
    told = [{**c, "Environment": dict(c.get("Environment") or {})} for c in containers]
    told[-1]["Environment"]["SAGEMAKER_INFERENCE_OUTPUT"] = keys
    if len(told) >= 3:
        told[-2]["Environment"]["SAGEMAKER_INFERENCE_OUTPUT"] = keys
        told[-1]["Environment"]["SAGEMAKER_INFERENCE_INPUT"] = keys
    return told


def _trained(sagemaker, settings: Settings, evaluates: str) -> Trained | str:
    """The model an evaluation step is for (its ``ml-platform:evaluates`` tag): a training job's,
    or an AutoML job's (``automl-job/<name>``); or why it is not the platform's."""
    if evaluates.startswith(runtime.AUTOML_JOB):
        job = sagemaker.describe_auto_ml_job_v2(AutoMLJobName=evaluates.removeprefix(runtime.AUTOML_JOB))
        name = job["AutoMLJobName"]
    else:
        job = sagemaker.describe_training_job(TrainingJobName=evaluates)
        name = job["TrainingJobName"]
    if job.get("RoleArn") != settings.execution_role_arn:
        return f"{name} did not run as the platform's execution role"
    return _from_automl_job(job, settings) if "AutoMLJobName" in job else _from_training_job(job, settings)


def _register(
    sagemaker,
    s3,
    sns,
    settings: Settings,
    spec: DatasetSpec,
    group: str,
    tags: Mapping[str, str],
    trained: Trained,
    evaluated_by: Mapping[str, Any],
) -> dict[str, Any]:
    """The gate, then the model package of ``trained``'s model, judged by the evaluation.json of
    ``evaluated_by`` (the training job itself for the XGBoost path, the platform's evaluation job
    for a built-in algorithm or Autopilot)."""
    dataset, name = spec.name, trained.name
    evaluation = _evaluation(s3, evaluated_by)
    metric = spec.training.objective_metric
    value = float(evaluation["test"][metric])
    current = _approved_value(sagemaker, group)
    verdict = gate(spec, value, current)
    evaluation_uri = _store_evaluation(s3, settings, dataset, name, evaluation)
    evaluator = evaluated_by["TrainingJobName"]
    metadata = {
        "dataset": dataset,
        "run_id": tags.get(runtime.RUN_TAG, ""),
        "training_job": name,
        "algorithm": trained.algorithm,
        "evaluation_job": evaluator if evaluator != name else "",
        "objective_metric": metric,
        "objective_value": f"{value:.6f}",
        "verdict": verdict.reason[:256],
        **{f"test_{k}": f"{v:.6f}" for k, v in evaluation["test"].items() if isinstance(v, int | float)},
        **answer_metadata(spec.target.problem, evaluation["test"]),
        **trained.metadata,
    }
    package = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelPackageDescription=(_label(verdict, settings) + ": ") + verdict.reason,
        InferenceSpecification={
            "Containers": _containers(settings, trained, evaluated_by),
            "SupportedContentTypes": CONTENT_TYPES,
            "SupportedResponseMIMETypes": CONTENT_TYPES,
        },
        ModelApprovalStatus=settings.pass_status if verdict.approved else "Rejected",
        ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri}}},
        CustomerMetadataProperties={k: v[:256] for k, v in metadata.items() if v},
        ClientToken=hashlib.sha256(name.encode()).hexdigest()[:32],
    )["ModelPackageArn"]
    runtime.put_metrics(
        settings.stage, dataset, {"ModelsPassed" if verdict.approved else "ModelsRejected": (1, "Count")}, _now()
    )
    if not verdict.approved:
        sns.publish(
            TopicArn=settings.topic_arn,
            Subject=f"ML platform ({settings.stage}): model for {dataset} rejected",
            Message=f"Model package {package} from {name} was rejected: {verdict.reason}."
            + runtime.runbook("model-rejected"),
        )
    LOG.info("registered %s: %s", package, verdict.reason, extra={"dataset": dataset})
    passed = {"Approved": "approved", "PendingManualApproval": "pending-approval"}[settings.pass_status]
    return {"status": passed if verdict.approved else "rejected", "model_package": package, "reason": verdict.reason}


def answer_metadata(problem: str, test: Mapping[str, Any]) -> dict[str, str]:
    """How the model's answers are read (``platform_runtime.ANSWER_PARAMETERS``; deploy_model gives
    it to the hosting stack's model-quality job): a binary model's decision threshold, a multiclass
    model's number of classes (its answer's label column), from its evaluation on test."""
    if problem == "binary" and isinstance(threshold := test.get("threshold"), int | float):
        return {runtime.ANSWER_PARAMETERS[problem][1]: f"{threshold:.6f}"}
    if problem == "multiclass" and isinstance(matrix := test.get("confusion_matrix"), list):
        return {runtime.ANSWER_PARAMETERS[problem][1]: str(len(matrix))}
    return {}


def _containers(settings: Settings, trained: Trained, evaluated_by: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The model package's containers: the XGBoost container with the inference code the model
    carries, or the model's own containers (a built-in algorithm's, Autopilot's) between the
    platform's encoder and decoder (the evaluation job's model folder holds their code, the
    schema and the threshold)."""
    if trained.algorithm == "xgboost":  # the inference code travels in model.tar.gz under code/
        return [trained.containers[0] | {"Environment": {**PIPELINE_STEP, "SAGEMAKER_PROGRAM": "inference.py"}}]
    platform = {"Image": settings.images["xgboost"], "ModelDataUrl": _model_data(evaluated_by)}
    encoder = {**PIPELINE_STEP, "PLATFORM_PIPELINE_STEP": "encode", "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}
    decoder = {**PIPELINE_STEP, "PLATFORM_PIPELINE_STEP": "decode"}
    return [platform | {"Environment": encoder}, *trained.containers, platform | {"Environment": decoder}]


def _start_scoring(
    sagemaker, s3, settings: Settings, dataset: str, tags: Mapping[str, str], trained: Trained
) -> dict[str, Any]:
    """Step 1 of an evaluation: the model scores the validation and test files of the run it
    trained on (a transform job whose manifest names them)."""
    # Named with the stage's prefix, which no data scientist may give a model (constructs/data_scientist_roles.py).
    name = runtime.fitted_name(f"{settings.group_prefix}-{trained.name}-scores", MAX_NAME)
    describe = functools.partial(sagemaker.describe_transform_job, TransformJobName=name)
    if duplicate := runtime.started(LOG, "scoring job", name, describe):
        return duplicate
    data_bucket, scored_prefix = runtime.split_uri(trained.scored)
    keys = [
        item["Key"][len(scored_prefix) :]
        for split in ("validation/", "test/")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=data_bucket, Prefix=scored_prefix + split)
        for item in page.get("Contents", [])
        if not item["Key"].endswith("/") and item.get("Size", 1) > 0
    ]
    folder = f"s3://{settings.artifacts_bucket}/training/{dataset}/{trained.name}/"
    manifest = folder + MANIFEST
    bucket, key = runtime.split_uri(manifest)
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps([{"prefix": trained.scored}, *keys]).encode(),
        ContentType="application/json",
    )
    evaluates = runtime.AUTOML_JOB + trained.name if trained.algorithm == AUTOPILOT else trained.name
    job_tags = runtime.job_tags(settings.stage, dataset, tags.get(runtime.RUN_TAG), evaluates=evaluates)
    runtime.create_model(sagemaker, LOG, name, trained.containers, settings.placement, job_tags)
    create = functools.partial(
        sagemaker.create_transform_job,
        TransformJobName=name,
        ModelName=name,
        **runtime.csv_transform(
            manifest, folder + SCORES, trained.answers, settings.placement, settings.instance_type, 1
        ),
        # The scored CSV's first column is the target; the model reads the features.
        # https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform-data-processing.html
        DataProcessing={"InputFilter": "$[1:]"},
        Tags=job_tags,
    )
    if duplicate := runtime.created_once(LOG, "scoring job", name, create, describe):
        return duplicate
    LOG.info("started scoring job %s for %s", name, trained.name, extra={"dataset": dataset})
    return {"status": "scoring", "job": name, "training_job": trained.name}


def _start_evaluation(
    sagemaker,
    settings: Settings,
    spec: DatasetSpec,
    tags: Mapping[str, str],
    trained: Trained,
    scoring: Mapping[str, Any],
) -> dict[str, Any]:
    """Step 2: the platform's evaluation job (training_jobs/evaluate.py) on the scores."""
    name = runtime.fitted_name(f"{trained.name}-evaluation", MAX_NAME)
    describe = functools.partial(sagemaker.describe_training_job, TrainingJobName=name)
    if duplicate := runtime.started(LOG, "evaluation job", name, describe):
        return duplicate
    hyperparameters = {
        "algorithm": trained.algorithm,
        **spec.training.judging,
        "trained_by": trained.name,
        "scored_by": scoring["TransformJobName"],
        **runtime.script_mode(settings.source_uri, "evaluate.py"),
    }
    create = functools.partial(
        sagemaker.create_training_job,
        TrainingJobName=name,
        AlgorithmSpecification={
            "TrainingImage": settings.training_images["xgboost"],
            "TrainingInputMode": "File",
            "MetricDefinitions": runtime.metric_definitions(METRICS[spec.target.problem]),
        },
        RoleArn=settings.execution_role_arn,
        InputDataConfig=[
            runtime.channel("validation", trained.scored + "validation/"),
            runtime.channel("test", trained.scored + "test/"),
            runtime.channel("scores", scoring["TransformOutput"]["S3OutputPath"], trained.answers),
            runtime.channel("schema", trained.run + "schema.json", "application/json"),
            runtime.channel("code", settings.source_uri, "application/x-tar"),
        ],
        OutputDataConfig=dict(trained.output),
        ResourceConfig={
            "InstanceType": trained.instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": trained.volume_gb,
            "VolumeKmsKeyId": settings.placement.kms_key_arn,
        },
        VpcConfig=settings.placement.vpc_config,
        StoppingCondition={"MaxRuntimeInSeconds": trained.max_runtime_seconds},
        EnableNetworkIsolation=True,
        EnableInterContainerTrafficEncryption=True,
        HyperParameters=hyperparameters,
        Tags=runtime.job_tags(
            settings.stage, spec.name, tags.get(runtime.RUN_TAG), evaluates=tags[runtime.EVALUATES_TAG]
        ),
    )
    if duplicate := runtime.created_once(LOG, "evaluation job", name, create, describe):
        return duplicate
    LOG.info("started evaluation job %s for %s", name, trained.name, extra={"dataset": spec.name})
    return {"status": "evaluating", "job": name, "training_job": trained.name}


# --- Autopilot: no event tells that an AutoML job ended, so a schedule asks ----------------------


def _is_tick(event: Any) -> bool:
    """The stage's schedule (EventBridge's "Scheduled Event"), which looks for ended AutoML jobs.
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-run-lambda-schedule.html"""
    return (
        isinstance(event, Mapping)
        and event.get("source") == "aws.events"
        and event.get("detail-type") == "Scheduled Event"
    )


def autopilot_endings(sagemaker, s3, sns, settings: Settings, now: datetime) -> dict[str, Any]:
    """Every AutoML job of the stage that ended within LOOKBACK and is not yet marked handled:
    a completed one's best candidate is scored (step 1 of the evaluation), a failed or stopped
    one reaches the operators; then the job is marked (the ``ml-platform:handled`` tag), so the
    next tick passes it by. SageMaker sends no event when an AutoML job ends
    (https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-sagemaker.html lists none)."""
    outcomes = []
    paginator = sagemaker.get_paginator("list_auto_ml_jobs")
    for page in paginator.paginate(LastModifiedTimeAfter=now - LOOKBACK):
        for summary in page["AutoMLJobSummaries"]:
            name, status = summary["AutoMLJobName"], summary["AutoMLJobStatus"]
            if status not in runtime.ENDED:
                continue
            tags = runtime.tag_map(sagemaker.list_tags(ResourceArn=summary["AutoMLJobArn"])["Tags"])
            dataset = tags.get(runtime.DATASET_TAG)
            if dataset is None or dataset not in settings.specs or tags.get(runtime.STAGE_TAG) != settings.stage:
                continue  # not a job of this platform stage
            if HANDLED_TAG in tags:
                continue
            job = sagemaker.describe_auto_ml_job_v2(AutoMLJobName=name)
            if job.get("RoleArn") != settings.execution_role_arn:
                continue
            _job_metrics(settings, dataset, status, _seconds(job, "automl"))
            if status != "Completed":
                reasons = [job.get("FailureReason") or "no reason given"]
                reasons += [r.get("PartialFailureMessage", "") for r in job.get("PartialFailureReasons") or []]
                outcome = _notify_failure(sns, settings, "AutoML job", name, status, "; ".join(filter(None, reasons)))
            else:
                trained = _from_automl_job(job, settings)
                if isinstance(trained, str):
                    outcome = _notify_failure(sns, settings, "AutoML job", name, status, trained)
                else:
                    outcome = _start_scoring(sagemaker, s3, settings, dataset, tags, trained)
            sagemaker.add_tags(
                ResourceArn=summary["AutoMLJobArn"],
                Tags=[{"Key": runtime.STAGE_TAG, "Value": settings.stage}, {"Key": HANDLED_TAG, "Value": status}],
            )
            outcomes.append(outcome)
    LOG.info("looked for ended AutoML jobs: %d handled", len(outcomes))
    return {"status": "polled", "handled": outcomes}


def _model_data(job: Mapping[str, Any]) -> str:
    return job["ModelArtifacts"]["S3ModelArtifacts"]


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


# The start and end of a job, as each kind's Describe answer names them (botocore's models).
_TIMES = {
    "training": ("TrainingStartTime", "TrainingEndTime"),
    "tuning": ("CreationTime", "HyperParameterTuningEndTime"),
    "automl": ("CreationTime", "EndTime"),
}


def _seconds(described: Mapping[str, Any], kind: str) -> float | None:
    start, end = (described.get(field) for field in _TIMES[kind])
    return (end - start).total_seconds() if isinstance(start, datetime) and isinstance(end, datetime) else None


def _job_metrics(settings: Settings, dataset: str, status: str, seconds: float | None) -> None:
    """The dashboard's count of the dataset's model jobs (training, tuning, AutoML) that ended, of
    those that did not complete, and how long each ran."""
    values = {"TrainingJobs": (1.0, "Count"), "TrainingJobsFailed": (float(status != "Completed"), "Count")}
    if seconds is not None:
        values["TrainingSeconds"] = (seconds, "Seconds")
    runtime.put_metrics(settings.stage, dataset, values, _now())


def _now() -> datetime:
    return datetime.now(UTC)


def _notify_failure(sns, settings: Settings, kind: str, name: str, status: str, reason: str) -> dict[str, Any]:
    sns.publish(
        TopicArn=settings.topic_arn,
        Subject=f"ML platform ({settings.stage}): {kind} {status.lower()}"[:100],
        Message=f"{kind[:1].upper()}{kind[1:]} {name} ended {status}: {reason}." + runtime.runbook("job-failed"),
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
