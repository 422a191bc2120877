"""Every SageMaker resource a platform function creates is tagged with the stage, and its role
may create nothing else: each statement of a function's policy that allows a SageMaker Create
action carries the condition ``aws:RequestTag/ml-platform:stage`` = the stage. (CreateModelPackage
is the exception: a package is a version of a named group, takes no tags, and is limited by the
group's ARN.)"""

from __future__ import annotations

from etl.platform_runtime import STAGE_TAG
from tests.helpers import actions, resources

UNTAGGED = {"sagemaker:CreateModelPackage"}


def function_policies(template) -> dict[str, dict]:
    """The policies attached to the roles Lambda assumes, by logical id."""
    roles = {
        logical_id
        for logical_id, role in resources(template, "AWS::IAM::Role").items()
        if "lambda.amazonaws.com" in str(role["Properties"]["AssumeRolePolicyDocument"])
    }
    return {
        logical_id: policy
        for logical_id, policy in resources(template, "AWS::IAM::Policy").items()
        if any(role.get("Ref") in roles for role in policy["Properties"].get("Roles", []))
    }


def test_every_sagemaker_create_of_a_function_is_limited_to_the_stages_tag(stage):
    checked = 0
    for template in stage.templates.values():
        for logical_id, policy in function_policies(template).items():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                creates = [a for a in actions(statement) if a.startswith("sagemaker:Create") and a not in UNTAGGED]
                if not creates:
                    continue
                checked += 1
                condition = statement.get("Condition", {}).get("StringEquals", {})
                assert condition.get(f"aws:RequestTag/{STAGE_TAG}") == stage.config.name, (logical_id, creates)
    assert checked >= 2  # start_training's jobs, start_batch_transform's model and job
