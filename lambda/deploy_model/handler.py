"""deploy_model: an approved model package rolls out to its dataset's endpoint, through
CloudFormation.

Fired by EventBridge when a package of the served dataset's group becomes Approved (by the
metric gate, or by a person where the stage asks for manual approval). The hosting stack is
updated with its previous template and the new ``ModelPackageArn`` parameter, every other
parameter unchanged, under a CloudFormation service role that holds the SageMaker and
autoscaling rights (this function holds only the right to update that stack and pass that
role). The endpoint stays owned by its stack: no drift, and the next ``cdk deploy`` keeps the
parameter. SageMaker then shifts traffic blue/green and rolls back on the stack's alarms.

- what goes live is the newest Approved package of the stack's own group whose status is
  Completed, as the registry lists it when the event arrives: an approval of an older package (a
  late or replayed event) deploys the newest one, which is usually live already;
- the package is already live: nothing to do (logged);
- another group's package, one not Approved, one whose ModelPackageStatus is not Completed (still
  being created, failed, being deleted), or an event that is not a model package state change:
  ignored with the reason logged;
- the stack is busy (an update or rollback in progress): StackBusy is raised and the message is
  reported failed, so the hosting stack's queue hands it back after its visibility timeout, for as
  long as a rollout can take (``ROLLOUT_BUFFER`` in ``stacks/hosting.py``); an approval that
  arrives mid-rollout is applied after it, and the newest approved package is live at the end.

Both are read from DescribeStacks before the update, and again when CloudFormation refuses it:
CloudFormation answers a busy stack and an update that changes nothing ("No updates are to be
performed") with the same generic code, so the stack's state, not the wording, says which.

Where the stage monitors data quality (``DATA_QUALITY``), a model goes live with its baseline:
- the approval starts Model Monitor's analyzer on the package's prepared run's ``baseline/`` (a
  processing job named ``<endpoint>-baseline-<package version>``, in the VPC, isolated, with the
  platform key, as the dataset's monitoring role), whatever the stack's state; a redelivery finds
  the job by its name;
- the job's end (its "SageMaker Processing Job State Change" event, through the same queue) makes
  the update: ``ModelPackageArn`` and ``BaselineUri`` (the job's output folder) together, so the
  schedule never compares traffic with another model's data. A job that failed or was stopped
  rolls the model out with ``BaselineUri`` empty (unmonitored; the stack's rule tells the
  operators). The end of a job for a package that is no longer the newest approved one is
  ignored: the newer package's own baseline job rolls it out;
- a package whose run is not recorded (``run_id`` in its customer metadata: not registered by the
  platform) cannot be baselined and goes live unmonitored, with a warning.
"""

from __future__ import annotations

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
PARAMETER = "ModelPackageArn"
BASELINE_PARAMETER = "BaselineUri"
# The hosting stack's parameters that say how its model-quality job reads the live model's answers
# (stacks/hosting.py): the package's metadata key each is set from, and the form it allows.
QUALITY_PARAMETERS = {name: (key, re.compile(form)) for name, key, form in runtime.ANSWER_PARAMETERS.values()}
PROCESSING_EVENT = "SageMaker Processing Job State Change"
READY = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
}
# CloudFormation is a query-protocol API: its common code ValidationError is what UpdateStack
# answers for a stack in an *_IN_PROGRESS state and for a request that changes nothing alike
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_UpdateStack.html,
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/CommonErrors.html).
UPDATE_REFUSED = "ValidationError"


class StackBusy(RuntimeError):
    """The hosting stack cannot take an update now; the event is retried later."""


@dataclass(frozen=True)
class Baseline:
    """How a model's baseline job runs (``stacks/hosting.py``): Model Monitor's analyzer on one
    instance, as the dataset's monitoring role (``placement``), output under ``baselines_prefix``."""

    enabled: bool = runtime.setting("DATA_QUALITY", "flag")
    dataset: str = runtime.setting("DATASET")
    endpoint_name: str = runtime.setting("ENDPOINT_NAME")
    data_bucket: str = runtime.setting("DATA_BUCKET")
    prepared_prefix: str = runtime.setting("PREPARED_PREFIX")
    baselines_prefix: str = runtime.setting("BASELINES_PREFIX")
    image: str = runtime.setting("ANALYZER_IMAGE")
    instance_type: str = runtime.setting("MONITOR_INSTANCE_TYPE")
    volume_gb: int = runtime.setting("MONITOR_VOLUME_GB", "integer")
    max_runtime_seconds: int = runtime.setting("MONITOR_MAX_RUNTIME_SECONDS", "integer")
    placement: runtime.JobPlacement = runtime.settings_group(runtime.JobPlacement)


@dataclass(frozen=True)
class Settings:
    """Set by the dataset's hosting stack (``stacks/hosting.py``): itself, the group whose approved
    packages it serves, the role CloudFormation updates it with, and its models' baselines."""

    stack_name: str = runtime.setting("STACK_NAME")
    group_name: str = runtime.setting("MODEL_PACKAGE_GROUP")
    role_arn: str = runtime.setting("CLOUDFORMATION_ROLE_ARN")
    baseline: Baseline = runtime.settings_group(Baseline)


@dataclass(frozen=True)
class Stack:
    status: str
    parameters: Mapping[str, str]


def describe(cloudformation, name: str) -> Stack:
    status, parameters = runtime.stack_state(cloudformation, name)
    return Stack(status=status, parameters=parameters)


def settle(stack: Stack, wanted: Mapping[str, str], name: str) -> dict[str, Any] | None:
    """The outcome when the stack needs no update from us: already-live when it has the ``wanted``
    parameters, StackBusy raised when it cannot take an update now; None when the update is ours
    to make."""
    package = wanted[PARAMETER]
    if all(stack.parameters.get(key) == value for key, value in wanted.items()):
        LOG.info("%s is already live on %s", package, name)
        return {"status": "already-live", "model_package": package}
    if stack.status not in READY:
        LOG.warning("%s is %s; %s will be retried", name, stack.status, package)
        raise StackBusy(f"{name} is {stack.status}; retrying the rollout of {package} later")
    return None


def newest_approved(sagemaker, group: str) -> str | None:
    """The ARN of the newest (highest version) Approved package of ``group`` whose
    ModelPackageStatus is Completed, as the registry says now; None when there is none."""
    newest: tuple[int, str] | None = None
    token: dict[str, str] = {}
    while True:
        page = sagemaker.list_model_packages(ModelPackageGroupName=group, ModelApprovalStatus="Approved", **token)
        for summary in page.get("ModelPackageSummaryList", []):
            if summary.get("ModelPackageStatus") != "Completed":
                continue
            version = int(summary.get("ModelPackageVersion") or 0)
            if newest is None or version > newest[0]:
                newest = (version, summary["ModelPackageArn"])
        if not page.get("NextToken"):
            return newest[1] if newest else None
        token = {"NextToken": page["NextToken"]}


def deploy_model(event: Any, cloudformation, sagemaker, settings: Settings) -> dict[str, Any]:
    if isinstance(event, Mapping) and event.get("detail-type") == PROCESSING_EVENT:
        return baseline_ended(event, cloudformation, sagemaker, settings)
    try:
        change = runtime.ModelPackageStateChange.from_event(event)
    except runtime.Unrecognised as unrecognised:
        return runtime.ignored(LOG, str(unrecognised))
    if change.group != settings.group_name or change.approval != "Approved":
        return runtime.ignored(LOG, f"{change.arn} is not an approved package of {settings.group_name}")
    if change.status is not None and change.status != "Completed":  # being created, failed or being deleted
        return runtime.ignored(LOG, f"{change.arn} is {change.status}, not Completed")
    # The event only says that something was approved: what goes live is the newest approved
    # package of this stack's own group, as the registry says now. A late or replayed event for an
    # older package, an ARN of another group in the event, or an empty one, never picks the model.
    package = newest_approved(sagemaker, settings.group_name)
    if package is None:
        return runtime.ignored(LOG, f"{settings.group_name} has no Approved package whose status is Completed")
    if package != change.arn:
        LOG.info("event for %r; the newest approved package of %s is %s", change.arn, settings.group_name, package)

    if not settings.baseline.enabled:
        return roll_out(cloudformation, sagemaker, settings, {PARAMETER: package})
    stack = describe(cloudformation, settings.stack_name)
    if stack.parameters.get(PARAMETER) == package:
        LOG.info("%s is already live on %s", package, settings.stack_name)
        return {"status": "already-live", "model_package": package}
    name = baseline_job_name(settings.baseline.endpoint_name, package)
    job = runtime.described(lambda: sagemaker.describe_processing_job(ProcessingJobName=name))
    if job is None:
        return start_baseline(cloudformation, sagemaker, settings, package, name)
    if job["ProcessingJobStatus"] not in runtime.ENDED:
        LOG.info("the baseline job %s of %s is %s", name, package, job["ProcessingJobStatus"])
        return {"status": "baselining", "model_package": package, "job": name}
    return roll_out(
        cloudformation, sagemaker, settings, {PARAMETER: package, BASELINE_PARAMETER: baseline_of(job)}, stack
    )


def baseline_job_name(endpoint_name: str, package: str) -> str:
    """``<endpoint>-baseline-<package version>`` (a package's ARN ends in /<group>/<version>): the
    same for every delivery of an approval, and what the hosting stack's rules match."""
    return f"{endpoint_name}{runtime.BASELINE_JOB}{package.rsplit('/', 1)[-1]}"


def baseline_of(job: Mapping[str, Any]) -> str:
    """The baseline a baseline job left: its output folder when it completed, else empty (the
    model goes live unmonitored)."""
    if job["ProcessingJobStatus"] != "Completed":
        reason = job.get("FailureReason") or job.get("ExitMessage") or "no reason given"
        LOG.warning(
            "the baseline job %s ended %s (%s): no monitoring",
            job["ProcessingJobName"],
            job["ProcessingJobStatus"],
            reason,
        )
        return ""
    outputs = job.get("ProcessingOutputConfig", {}).get("Outputs", [])
    [uri] = [o["S3Output"]["S3Uri"] for o in outputs if o.get("OutputName") == runtime.MONITOR_OUTPUT_NAME]
    return uri.rstrip("/") + "/"


def start_baseline(cloudformation, sagemaker, settings: Settings, package: str, name: str) -> dict[str, Any]:
    """The package's baseline job started; a package without a recorded run goes live unmonitored."""
    baseline = settings.baseline
    metadata = sagemaker.describe_model_package(ModelPackageName=package).get("CustomerMetadataProperties", {})
    run_id = metadata.get("run_id", "")
    if not run_id:
        LOG.warning("%s records no prepared run (run_id): it goes live without a baseline", package)
        return roll_out(cloudformation, sagemaker, settings, {PARAMETER: package, BASELINE_PARAMETER: ""})
    source = f"s3://{baseline.data_bucket}/{baseline.prepared_prefix}{baseline.dataset}/{run_id}/baseline/"
    output = f"s3://{baseline.data_bucket}/{baseline.baselines_prefix}{name}"
    request = baseline_request(name, source, output, baseline, run_id)
    duplicate = runtime.created_once(
        LOG,
        "processing job",
        name,
        lambda: sagemaker.create_processing_job(**request),
        lambda: sagemaker.describe_processing_job(ProcessingJobName=name),
    )
    if duplicate is None:
        LOG.info("started the baseline job %s of %s on %s", name, package, source)
    return {"status": "baselining", "model_package": package, "job": name}


def baseline_request(name: str, source: str, output: str, baseline: Baseline, run_id: str) -> dict[str, Any]:
    """CreateProcessingJob for Model Monitor's analyzer on ``source`` (headerless CSV), as the
    SageMaker Python SDK's DefaultModelMonitor.suggest_baseline builds it: statistics.json and
    constraints.json under ``output``.
    https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-create-baseline.html"""
    placement = baseline.placement
    return {
        "ProcessingJobName": name,
        "ProcessingInputs": [
            {
                "InputName": "baseline_dataset_input",
                "S3Input": {
                    "S3Uri": source,
                    "LocalPath": runtime.MONITOR_BASELINE_INPUT,
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                    "S3CompressionType": "None",
                },
            }
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": runtime.MONITOR_OUTPUT_NAME,
                    "S3Output": {"S3Uri": output, "LocalPath": runtime.MONITOR_OUTPUT, "S3UploadMode": "EndOfJob"},
                }
            ],
            "KmsKeyId": placement.kms_key_arn,
        },
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": baseline.instance_type,
                "VolumeSizeInGB": baseline.volume_gb,
                "VolumeKmsKeyId": placement.kms_key_arn,
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": baseline.max_runtime_seconds},
        "AppSpecification": {"ImageUri": baseline.image},
        "Environment": {
            "dataset_format": json.dumps({"csv": {"header": False, "output_columns_position": "START"}}),
            "dataset_source": runtime.MONITOR_BASELINE_INPUT,
            "output_path": runtime.MONITOR_OUTPUT,
            "publish_cloudwatch_metrics": "Disabled",
        },
        "NetworkConfig": {
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": True,
            "VpcConfig": placement.vpc_config,
        },
        "RoleArn": placement.role_arn,
        "Tags": runtime.job_tags(placement.stage, baseline.dataset, run_id),
    }


def baseline_ended(event: Any, cloudformation, sagemaker, settings: Settings) -> dict[str, Any]:
    """A baseline job's end: the newest approved package goes live with the job's baseline, if the
    job is that package's."""
    try:
        runtime.envelope(event, "aws.sagemaker", (PROCESSING_EVENT,), f"a {PROCESSING_EVENT!r} event")
        name = runtime.read(event, "detail.ProcessingJobName", str)
        status = runtime.read(event, "detail.ProcessingJobStatus", str)
    except runtime.Unrecognised as unrecognised:
        return runtime.ignored(LOG, str(unrecognised))
    if not settings.baseline.enabled or not name.startswith(settings.baseline.endpoint_name + runtime.BASELINE_JOB):
        return runtime.ignored(LOG, f"{name} is not a baseline job of {settings.baseline.endpoint_name}")
    if status not in runtime.ENDED:
        return runtime.ignored(LOG, f"{name} is {status}, not ended")
    package = newest_approved(sagemaker, settings.group_name)
    if package is None or baseline_job_name(settings.baseline.endpoint_name, package) != name:
        return runtime.ignored(LOG, f"{name} is not the baseline of the newest approved package ({package or 'none'})")
    # The job as SageMaker records it now, not as the event said.
    job = sagemaker.describe_processing_job(ProcessingJobName=name)
    return roll_out(cloudformation, sagemaker, settings, {PARAMETER: package, BASELINE_PARAMETER: baseline_of(job)})


def answer_parameters(sagemaker, package: str, stack: Stack) -> dict[str, str]:
    """How the model-quality job reads ``package``'s answers, for each such parameter the stack has
    (``QUALITY_PARAMETERS``): the binary model's decision threshold, or the multiclass answer's
    label column (after one probability per class), as register_model records them in the
    package's metadata. Empty (model quality not monitored) where the package records none: it was
    not registered by the platform."""
    names = [name for name in QUALITY_PARAMETERS if name in stack.parameters]
    if not names:
        return {}
    metadata = sagemaker.describe_model_package(ModelPackageName=package).get("CustomerMetadataProperties", {})
    wanted = {}
    for name in names:
        key, pattern = QUALITY_PARAMETERS[name]
        value = metadata.get(key, "")
        if not pattern.fullmatch(value):
            LOG.warning("%s records no %s (%r): its model quality is not monitored", package, key, value)
            value = ""
        wanted[name] = value
    return wanted


def roll_out(
    cloudformation, sagemaker, settings: Settings, wanted: Mapping[str, str], stack: Stack | None = None
) -> dict[str, Any]:
    """The hosting stack updated with the ``wanted`` parameters and how to read the package's
    answers (the others as they are), unless it has them already or is busy (``settle``);
    ``stack`` as the caller has just described it, if so."""
    package = wanted[PARAMETER]
    stack = stack or describe(cloudformation, settings.stack_name)
    wanted = {**wanted, **answer_parameters(sagemaker, package, stack)}
    settled = settle(stack, wanted, settings.stack_name)
    if settled is not None:
        return settled

    update: list[dict[str, Any]] = [{"ParameterKey": key, "ParameterValue": value} for key, value in wanted.items()]
    update += [{"ParameterKey": key, "UsePreviousValue": True} for key in stack.parameters if key not in wanted]
    try:
        cloudformation.update_stack(
            StackName=settings.stack_name,
            UsePreviousTemplate=True,
            Parameters=update,
            RoleARN=settings.role_arn,
            Capabilities=["CAPABILITY_IAM"],
        )
    except ClientError as error:
        if runtime.error_code(error) != UPDATE_REFUSED:
            raise
        # Busy since we looked, or already given the package (no updates to perform): the
        # stack as it is now says which. Anything else it refused is raised as it came.
        settled = settle(describe(cloudformation, settings.stack_name), wanted, settings.stack_name)
        if settled is None:
            raise
        return settled
    previous = stack.parameters.get(PARAMETER, "")
    LOG.info("rolling %s out on %s (was %s)", package, settings.stack_name, previous or "none")
    answer = {"status": "updating", "model_package": package, "previous": previous}
    if BASELINE_PARAMETER in wanted:
        answer["baseline"] = wanted[BASELINE_PARAMETER]
    return answer


SETTINGS = runtime.read_settings(Settings, "deploy_model", os.environ)
CLOUDFORMATION = boto3.client("cloudformation")
SAGEMAKER = boto3.client("sagemaker")


def handler(batch: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Approvals arrive through the stack's queue: one that finds a rollout running (StackBusy)
    comes back after the queue's visibility timeout, until the rollout is over."""
    return runtime.answer_queued(
        batch,
        LOG,
        lambda message, _: deploy_model(message.event, CLOUDFORMATION, SAGEMAKER, SETTINGS),
        retried=(StackBusy,),
    )
