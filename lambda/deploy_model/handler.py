"""deploy_model: an approved model package rolls out to its dataset's endpoint, through
CloudFormation.

Fired by EventBridge when a package of the served dataset's group becomes Approved (by the
metric gate, or by a person where the stage asks for manual approval). The hosting stack is
updated with its previous template and the new ``ModelPackageArn`` parameter, every other
parameter unchanged, under a CloudFormation service role that holds the SageMaker and
autoscaling rights (this function holds only the right to update that stack and pass that
role). The endpoint stays owned by its stack: no drift, and the next ``cdk deploy`` keeps the
parameter. SageMaker then shifts traffic blue/green and rolls back on the stack's alarms.

- the package is already live: nothing to do (logged);
- the stack is busy (an update or rollback in progress): StackBusy is raised, so Lambda's
  retries bring the event back later; once retries run out it waits in the DLQ for a replay;
- CloudFormation answers "No updates are to be performed": nothing to do (logged).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

LOG = logging.getLogger(__name__)
LOG.setLevel(logging.INFO)
PARAMETER = "ModelPackageArn"
READY = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
}


class StackBusy(RuntimeError):
    """The hosting stack cannot take an update now; the event is retried later."""


@dataclass(frozen=True)
class Settings:
    stack_name: str
    group_name: str
    role_arn: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            stack_name=env["STACK_NAME"], group_name=env["MODEL_PACKAGE_GROUP"], role_arn=env["CLOUDFORMATION_ROLE_ARN"]
        )


def deploy_model(event: Mapping[str, Any], cloudformation, settings: Settings) -> dict[str, Any]:
    detail = event["detail"]
    package, group = detail["ModelPackageArn"], detail["ModelPackageGroupName"]
    if group != settings.group_name or detail.get("ModelApprovalStatus") != "Approved":
        reason = f"{package} is not an approved package of {settings.group_name}"
        LOG.info("ignored: %s", reason)
        return {"status": "ignored", "reason": reason}

    [stack] = cloudformation.describe_stacks(StackName=settings.stack_name)["Stacks"]
    status = stack["StackStatus"]
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    if parameters.get(PARAMETER) == package:
        LOG.info("%s is already live on %s", package, settings.stack_name)
        return {"status": "already-live", "model_package": package}
    if status not in READY:
        LOG.warning("%s is %s; %s will be retried", settings.stack_name, status, package)
        raise StackBusy(f"{settings.stack_name} is {status}; retrying the rollout of {package} later")

    update = [{"ParameterKey": PARAMETER, "ParameterValue": package}]
    update += [{"ParameterKey": key, "UsePreviousValue": True} for key in parameters if key != PARAMETER]
    try:
        cloudformation.update_stack(
            StackName=settings.stack_name,
            UsePreviousTemplate=True,
            Parameters=update,
            RoleARN=settings.role_arn,
            Capabilities=["CAPABILITY_IAM"],
        )
    except ClientError as error:
        message = error.response["Error"].get("Message", "")
        if "No updates are to be performed" in message:
            LOG.info("%s: no update needed for %s", settings.stack_name, package)
            return {"status": "already-live", "model_package": package}
        if "is in" in message and "state and can not be updated" in message:
            raise StackBusy(f"{settings.stack_name}: {message}") from None
        raise
    LOG.info("rolling %s out on %s (was %s)", package, settings.stack_name, parameters.get(PARAMETER) or "none")
    return {"status": "updating", "model_package": package, "previous": parameters.get(PARAMETER, "")}


SETTINGS = Settings.from_env(os.environ)
CLOUDFORMATION = boto3.client("cloudformation")


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return deploy_model(event, CLOUDFORMATION, SETTINGS)
