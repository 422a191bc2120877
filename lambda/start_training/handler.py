"""start_training: prepared data arriving (the ETL job's _SUCCESS) trains the dataset's model.

Fired by EventBridge on S3 "Object Created" for prepared/<dataset>/<run-id>/_SUCCESS; any other
event or object is ignored with the reason logged. Starts a
training job, or a Bayesian hyperparameter tuning job when the dataset's spec has
``training.tuning``. Every job runs in the VPC's private subnets with network isolation,
inter-container traffic encryption, KMS on volumes and output, a maximum runtime and, when the
stage says so, managed spot capacity.

A dataset whose spec says ``"algorithm": "autopilot"`` gets an Autopilot job instead (AutoML V2,
tabular: CreateAutoMLJobV2) on the run's raw-feature view (``autopilot/train/`` and
``autopilot/validation/``: a header, the original values), bounded by the spec's candidates and
minutes, in the VPC with the platform's key on its volumes and output and its inter-container
traffic encrypted. CreateAutoMLJobV2 has no network isolation setting (AutoMLSecurityConfig holds
only the other three); the candidate's model, which serves, is created network-isolated.

The job name derives from dataset and run id, so a repeated event finds the job and starts
nothing: the job is looked up first, and a create that SageMaker refuses for the name counts as
success when the job of that name, described again, reads this run's data (a racing delivery).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import platform_runtime as runtime
from botocore.exceptions import ClientError
from dataset_spec import AUTOPILOT_METRICS, METRICS, DatasetSpec, Tuning, load_spec

LOG = logging.getLogger(__name__)
CHANNELS = ("train", "validation", "test")
SUCCESS = "_SUCCESS"  # what the ETL job writes last in prepared/<dataset>/<run-id>/
RUN_ID = re.compile(r"^[A-Za-z0-9-]+$")
MAX_TRAINING_NAME, MAX_TUNING_NAME, MAX_AUTOML_NAME = 63, 32, 32
AUTOPILOT_VIEW = "autopilot/"  # the ETL job's raw-feature view of a run, for Autopilot
AUTOPILOT_PROBLEMS = {
    "binary": "BinaryClassification",
    "multiclass": "MulticlassClassification",
    "regression": "Regression",
}


@dataclass(frozen=True)
class Settings:
    """Set by ``constructs/model_functions.StartTraining``: where prepared runs land, where jobs
    write, how they run (:class:`~platform_runtime.JobPlacement`) and what they train."""

    data_bucket: str = runtime.setting("DATA_BUCKET")
    prepared_prefix: str = runtime.setting("PREPARED_PREFIX")
    artifacts_bucket: str = runtime.setting("ARTIFACTS_BUCKET")
    placement: runtime.JobPlacement = runtime.settings_group(runtime.JobPlacement)
    source_uri: str = runtime.setting("SOURCE_URI")
    images: Mapping[str, str] = runtime.setting("IMAGES", "json")
    specs: Mapping[str, str] = runtime.setting("DATASET_SPECS", "json")
    managed_spot: bool = runtime.setting("MANAGED_SPOT", "flag")
    max_wait_minutes: int = runtime.setting("MAX_WAIT_MINUTES", "integer")
    volume_size_gb: int = runtime.setting("VOLUME_SIZE_GB", "integer")
    # Debugger's ProfilerReport rule as CreateTrainingJob takes it; empty: the stage profiles nothing.
    profiler_rule: Mapping[str, Any] = runtime.setting("PROFILER_RULE", "json")


def job_name(dataset: str, run_id: str, limit: int) -> str:
    """A valid SageMaker job name of at most ``limit`` characters, the same for the same dataset and run."""
    return runtime.fitted_name(f"{dataset}-{run_id}", limit)


def parse(event: Any, settings: Settings) -> tuple[str, str] | str:
    """(dataset, run_id) for a run's _SUCCESS, or the reason to ignore the event: another kind of
    event, one without a field it reads, or another object."""
    try:
        obj = runtime.ObjectCreated.from_event(event)
    except runtime.Unrecognised as unrecognised:
        return str(unrecognised)
    found = obj.in_dataset(
        bucket=settings.data_bucket, prefix=settings.prepared_prefix, datasets=settings.specs, allow_empty=True
    )
    if isinstance(found, str):
        return found
    dataset, rest = found
    run, _, marker = rest.partition("/")
    if marker != SUCCESS or not RUN_ID.match(run):
        return f"{obj.key} is not {settings.prepared_prefix}<dataset>/<run-id>/{SUCCESS}"
    return dataset, run


def training_definition(
    spec: DatasetSpec, run_id: str, settings: Settings, schema: Mapping[str, Any]
) -> dict[str, Any]:
    """What a training job (or each job of a tuning job) needs, in SageMaker's request shape."""
    training = spec.training
    run = f"s3://{settings.data_bucket}/{settings.prepared_prefix}{spec.name}/{run_id}/"

    if training.algorithm == "xgboost":
        channels = [runtime.channel(c, run + c + "/") for c in CHANNELS]  # one instance: the spec allows no more
        channels += [
            runtime.channel("schema", run + "schema.json", "application/json"),
            runtime.channel("code", settings.source_uri, "application/x-tar"),
        ]
        hyperparameters = {
            **{k: str(v) for k, v in training.hyperparameters.items()},
            **training.judging,
            **runtime.script_mode(settings.source_uri, "train.py"),
        }
        metrics = runtime.metric_definitions(METRICS[spec.target.problem])
    else:  # Linear Learner or k-NN: on more than one instance, each trains on its share of train/ (a file each)
        sharded = training.instance_count > 1
        channels = [runtime.channel("train", run + "train/", shard=sharded), runtime.channel("test", run + "test/")]
        if training.algorithm == "linear-learner":
            channels.insert(1, runtime.channel("validation", run + "validation/"))
        hyperparameters = builtin_hyperparameters(spec, schema)
        metrics = []
    definition: dict[str, Any] = {
        "AlgorithmSpecification": {"TrainingImage": settings.images[training.algorithm], "TrainingInputMode": "File"},
        "RoleArn": settings.placement.role_arn,
        "InputDataConfig": channels,
        "OutputDataConfig": {
            "S3OutputPath": f"s3://{settings.artifacts_bucket}/training/{spec.name}/",
            "KmsKeyId": settings.placement.kms_key_arn,
        },
        "ResourceConfig": {
            "InstanceType": training.instance_type,
            "InstanceCount": training.instance_count,
            "VolumeSizeInGB": settings.volume_size_gb,
            "VolumeKmsKeyId": settings.placement.kms_key_arn,
        },
        "VpcConfig": settings.placement.vpc_config,
        "StoppingCondition": {"MaxRuntimeInSeconds": training.max_runtime_minutes * 60},
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
        "EnableManagedSpotTraining": settings.managed_spot,
    }
    if metrics:
        definition["AlgorithmSpecification"]["MetricDefinitions"] = metrics
    if settings.managed_spot:
        wait = max(settings.max_wait_minutes, training.max_runtime_minutes) * 60
        definition["StoppingCondition"]["MaxWaitTimeInSeconds"] = wait
    return definition | {"HyperParameters": hyperparameters}


def builtin_hyperparameters(spec: DatasetSpec, schema: Mapping[str, Any]) -> dict[str, str]:
    """Linear Learner and k-NN take the problem's shape as hyperparameters."""
    problem, classes = spec.target.problem, len(schema["target"]["classes"])
    values: dict[str, Any] = {"feature_dim": len(schema["feature_names"])}
    if spec.training.algorithm == "linear-learner":
        values["predictor_type"] = {"binary": "binary_classifier", "multiclass": "multiclass_classifier"}.get(
            problem, "regressor"
        )
        if problem == "multiclass":
            values["num_classes"] = classes
    else:
        values |= {
            "predictor_type": "regressor" if problem == "regression" else "classifier",
            "k": 10,
            "sample_size": 200000,
        }
    values |= spec.training.hyperparameters
    return {k: str(v) for k, v in values.items()}


def start_training(event: Any, sagemaker, s3, settings: Settings) -> dict[str, Any]:
    parsed = parse(event, settings)
    if isinstance(parsed, str):
        return runtime.ignored(LOG, parsed)
    dataset, run_id = parsed
    spec = load_spec(runtime.read_text(s3, settings.specs[dataset]), source=settings.specs[dataset])
    if spec.training.autopilot:
        return _autopilot(sagemaker, spec, run_id, settings)
    schema = json.loads(
        runtime.read_text(s3, f"s3://{settings.data_bucket}/{settings.prepared_prefix}{dataset}/{run_id}/schema.json")
    )
    definition = training_definition(spec, run_id, settings, schema)
    if spec.training.tuning:
        return _tune(sagemaker, spec, spec.training.tuning, run_id, definition, settings)
    name = job_name(dataset, run_id, MAX_TRAINING_NAME)
    describe = functools.partial(sagemaker.describe_training_job, TrainingJobName=name)
    if runtime.described(describe) is not None:
        LOG.info("duplicate event: training job %s exists", name)
        return {"status": "duplicate", "job": name}
    try:
        sagemaker.create_training_job(
            TrainingJobName=name,
            Tags=runtime.job_tags(settings.placement.stage, spec.name, run_id),
            **definition,
            **profiling(settings, spec.name, name),
        )
    except ClientError as error:
        if not _started_elsewhere(error, describe, definition):
            raise
        LOG.info("duplicate event: training job %s was started by another delivery", name)
        return {"status": "duplicate", "job": name}
    LOG.info("started training job %s", name, extra={"dataset": dataset, "run_id": run_id})
    return {"status": "started", "kind": "training", "job": name, "dataset": dataset, "run_id": run_id}


def profiling(settings: Settings, dataset: str, job: str) -> dict[str, Any]:
    """Debugger's profiler and its ProfilerReport rule, where the stage asks for them: the system
    metrics under the model's folder, the rule's output (the report) in ``<job>/rule-output/``
    beside the model (runtime.profiler_output). A tuning job's API takes neither.
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProfilerConfig.html"""
    if not settings.profiler_rule:
        return {}
    models = f"s3://{settings.artifacts_bucket}/training/{dataset}/"
    return {
        "ProfilerConfig": {"S3OutputPath": models, "ProfilingIntervalInMilliseconds": 500},
        "ProfilerRuleConfigurations": [
            {**settings.profiler_rule, "S3OutputPath": runtime.profiler_output(settings.artifacts_bucket, dataset, job)}
        ],
    }


def _tune(
    sagemaker, spec: DatasetSpec, tuning: Tuning, run_id: str, definition: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    name = job_name(spec.name, run_id, MAX_TUNING_NAME)
    describe = functools.partial(sagemaker.describe_hyper_parameter_tuning_job, HyperParameterTuningJobName=name)
    if runtime.described(describe) is not None:
        LOG.info("duplicate event: tuning job %s exists", name)
        return {"status": "duplicate", "job": name}
    static = {k: v for k, v in definition.pop("HyperParameters").items() if k not in tuning.ranges}
    ranges: dict[str, list[dict[str, str]]] = {"ContinuousParameterRanges": [], "IntegerParameterRanges": []}
    for hp, bounds in tuning.ranges.items():
        kind = "IntegerParameterRanges" if bounds.get("type") == "integer" else "ContinuousParameterRanges"
        ranges[kind].append(
            {
                "Name": hp,
                "MinValue": str(bounds["min"]),
                "MaxValue": str(bounds["max"]),
                "ScalingType": bounds.get("scaling", "Auto"),
            }
        )
    config = {
        "Strategy": "Bayesian",
        "HyperParameterTuningJobObjective": {
            "Type": "Minimize" if spec.training.lower_is_better else "Maximize",
            "MetricName": f"validation:{spec.training.objective_metric}",
        },
        "ResourceLimits": {
            "MaxNumberOfTrainingJobs": tuning.max_jobs,
            "MaxParallelTrainingJobs": tuning.max_parallel_jobs,
        },
        "ParameterRanges": ranges,
        "TrainingJobEarlyStoppingType": "Auto",
    }
    job = {**definition, "StaticHyperParameters": static}
    try:
        sagemaker.create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name,
            HyperParameterTuningJobConfig=config,
            TrainingJobDefinition=job,
            Tags=runtime.job_tags(settings.placement.stage, spec.name, run_id),
        )
    except ClientError as error:
        if not _started_elsewhere(error, describe, definition, part="TrainingJobDefinition"):
            raise
        LOG.info("duplicate event: tuning job %s was started by another delivery", name)
        return {"status": "duplicate", "job": name}
    LOG.info("started tuning job %s", name, extra={"dataset": spec.name, "run_id": run_id})
    return {"status": "started", "kind": "tuning", "job": name, "dataset": spec.name, "run_id": run_id}


def autopilot_request(spec: DatasetSpec, run_id: str, settings: Settings) -> dict[str, Any]:
    """CreateAutoMLJobV2's request for a run (the name and tags aside): the view's train and
    validation files as its two channels (no DataSplitConfig then), the spec's objective, problem
    and bounds, the platform's key and VPC.
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateAutoMLJobV2.html"""
    training, autopilot = spec.training, spec.training.autopilot
    assert autopilot is not None
    view = f"s3://{settings.data_bucket}/{settings.prepared_prefix}{spec.name}/{run_id}/{AUTOPILOT_VIEW}"
    placement = settings.placement
    return {
        "AutoMLJobInputDataConfig": [
            {
                "ChannelType": kind,
                "ContentType": "text/csv;header=present",
                "CompressionType": "None",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": view + split}},
            }
            for kind, split in (("training", "train/"), ("validation", "validation/"))
        ],
        "OutputDataConfig": {
            "S3OutputPath": f"s3://{settings.artifacts_bucket}/training/{spec.name}/",
            "KmsKeyId": placement.kms_key_arn,
        },
        "AutoMLProblemTypeConfig": {
            "TabularJobConfig": {
                "CompletionCriteria": {
                    "MaxCandidates": autopilot.max_candidates,
                    "MaxRuntimePerTrainingJobInSeconds": training.max_runtime_minutes * 60,
                    "MaxAutoMLJobRuntimeInSeconds": autopilot.max_job_minutes * 60,
                },
                "Mode": autopilot.aws_mode,
                "GenerateCandidateDefinitionsOnly": False,
                "ProblemType": AUTOPILOT_PROBLEMS[spec.target.problem],
                "TargetAttributeName": spec.target.column,
            }
        },
        "AutoMLJobObjective": {"MetricName": AUTOPILOT_METRICS[training.objective_metric]},
        "RoleArn": placement.role_arn,
        "SecurityConfig": {
            "VolumeKmsKeyId": placement.kms_key_arn,
            "EnableInterContainerTrafficEncryption": True,
            "VpcConfig": placement.vpc_config,
        },
    }


def _autopilot(sagemaker, spec: DatasetSpec, run_id: str, settings: Settings) -> dict[str, Any]:
    name = job_name(spec.name, run_id, MAX_AUTOML_NAME)
    describe = functools.partial(sagemaker.describe_auto_ml_job_v2, AutoMLJobName=name)
    request = autopilot_request(spec, run_id, settings)
    if runtime.described(describe) is not None:
        LOG.info("duplicate event: AutoML job %s exists", name)
        return {"status": "duplicate", "job": name}
    try:
        sagemaker.create_auto_ml_job_v2(
            AutoMLJobName=name, Tags=runtime.job_tags(settings.placement.stage, spec.name, run_id), **request
        )
    except ClientError as error:
        if not _started_elsewhere(error, describe, request):
            raise
        LOG.info("duplicate event: AutoML job %s was started by another delivery", name)
        return {"status": "duplicate", "job": name}
    LOG.info("started AutoML job %s", name, extra={"dataset": spec.name, "run_id": run_id})
    return {"status": "started", "kind": "autopilot", "job": name, "dataset": spec.name, "run_id": run_id}


def _started_elsewhere(
    refused: ClientError, describe: Callable[[], Mapping[str, Any]], definition: Mapping[str, Any], part: str = ""
) -> bool:
    """Whether a create SageMaker refused lost the race to another delivery of this event: the
    code is one a taken name gets, and the job of our name, described now, is the one we meant,
    training on this run's data (its train channel's URI names the dataset and the run)."""
    if runtime.error_code(refused) not in runtime.NAME_TAKEN:
        return False
    found = runtime.described(describe)
    if found is None:
        return False
    job = found[part] if part else found
    return _train_uri(job) == _train_uri(definition)


def _train_uri(job: Mapping[str, Any]) -> str | None:
    """The training data's URI: the train channel's, or an AutoML job's training channel's."""
    channels = {c["ChannelName"]: c for c in job.get("InputDataConfig", [])}
    channels |= {c["ChannelType"]: c for c in job.get("AutoMLJobInputDataConfig", []) if "ChannelType" in c}
    found = channels.get("train") or channels.get("training") or {}
    return found.get("DataSource", {}).get("S3DataSource", {}).get("S3Uri")


SETTINGS = runtime.read_settings(Settings, "start_training", os.environ)
SAGEMAKER = boto3.client("sagemaker")
S3 = boto3.client("s3")


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return start_training(event, SAGEMAKER, S3, SETTINGS)
