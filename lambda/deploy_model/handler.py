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
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import platform_runtime as runtime
from botocore.exceptions import ClientError

LOG = logging.getLogger(__name__)
PARAMETER = "ModelPackageArn"
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
class Settings:
    """Set by the dataset's hosting stack (``stacks/hosting.py``): itself, the group whose approved
    packages it serves, and the role CloudFormation updates it with."""

    stack_name: str = runtime.setting("STACK_NAME")
    group_name: str = runtime.setting("MODEL_PACKAGE_GROUP")
    role_arn: str = runtime.setting("CLOUDFORMATION_ROLE_ARN")


@dataclass(frozen=True)
class Stack:
    status: str
    parameters: Mapping[str, str]


def describe(cloudformation, name: str) -> Stack:
    [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    return Stack(status=stack["StackStatus"], parameters=parameters)


def settle(stack: Stack, package: str, name: str) -> dict[str, Any] | None:
    """The outcome when the stack needs no update from us: already-live when it has the package,
    StackBusy raised when it cannot take an update now; None when the update is ours to make."""
    if stack.parameters.get(PARAMETER) == package:
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

    stack = describe(cloudformation, settings.stack_name)
    settled = settle(stack, package, settings.stack_name)
    if settled is not None:
        return settled

    update: list[dict[str, Any]] = [{"ParameterKey": PARAMETER, "ParameterValue": package}]
    update += [{"ParameterKey": key, "UsePreviousValue": True} for key in stack.parameters if key != PARAMETER]
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
        settled = settle(describe(cloudformation, settings.stack_name), package, settings.stack_name)
        if settled is None:
            raise
        return settled
    previous = stack.parameters.get(PARAMETER, "")
    LOG.info("rolling %s out on %s (was %s)", package, settings.stack_name, previous or "none")
    return {"status": "updating", "model_package": package, "previous": previous}


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
