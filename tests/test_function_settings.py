"""Each function reads exactly the variables its stack sets, and the tests run it with those.

Three lists must agree for every function: the ``Environment.Variables`` of the function in the
synthesized templates, the variables its ``Settings`` reads (``platform_runtime.variables_read``)
and the test environment of ``tests/functions.py``. A variable the stack stops setting fails the
function at import in AWS; here it fails this test first.
"""

from __future__ import annotations

import json

import pytest

# The module the handlers import (etl/ is on the path as it is in their assets): its MissingSetting.
from platform_runtime import MissingSetting, read_settings, variables_read

from tests.functions import ENVIRONMENTS, environment, load_function
from tests.helpers import resources

FUNCTIONS = sorted(ENVIRONMENTS)


def construct_name(function: str) -> str:
    """``start_etl`` -> ``StartEtlFunction``: the construct id each stack gives the function."""
    return "".join(part.capitalize() for part in function.split("_")) + "Function"


def deployed_variables(stage, function: str) -> list[set[str]]:
    """The variable names of every deployed copy of ``function`` in the stage (one per hosting stack)."""
    return [
        set(resource["Properties"]["Environment"]["Variables"])
        for template in stage.templates.values()
        for logical_id, resource in resources(template, "AWS::Lambda::Function").items()
        if logical_id.startswith(construct_name(function))
    ]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_stack_sets_what_the_settings_read_and_the_tests_set(stage, function, monkeypatch):
    deployed = deployed_variables(stage, function)
    assert deployed, f"no {construct_name(function)} in the {stage.config.name} stage"
    settings = load_function(function, monkeypatch).Settings
    for variables in deployed:
        assert variables == variables_read(settings) == set(ENVIRONMENTS[function])


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_missing_variable_is_named(function, monkeypatch):
    module = load_function(function, monkeypatch)
    for name in ENVIRONMENTS[function]:
        variables = {k: v for k, v in environment(function).items() if k != name}
        with pytest.raises(MissingSetting, match=f"^{function} needs the environment variable {name}$"):
            read_settings(module.Settings, function, variables)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SEED", "forty-two", "start_etl: SEED must be a whole number, not 'forty-two'"),
        ("DATASET_SPECS", "{bank", "start_etl: DATASET_SPECS is not JSON"),
    ],
)
def test_a_malformed_value_is_named_with_what_it_must_be(monkeypatch, name, value, message):
    module = load_function("start_etl", monkeypatch)
    with pytest.raises(MissingSetting, match=f"^{message}"):
        read_settings(module.Settings, "start_etl", environment("start_etl", **{name: value}))


def test_flags_are_true_or_false_and_groups_read_the_same_environment(monkeypatch):
    module = load_function("start_training", monkeypatch)
    with pytest.raises(MissingSetting, match=r"^start_training: MANAGED_SPOT must be true or false, not 'yes'$"):
        read_settings(module.Settings, "start_training", environment("start_training", MANAGED_SPOT="yes"))
    settings = read_settings(module.Settings, "start_training", environment("start_training", MANAGED_SPOT="false"))
    assert settings.managed_spot is False
    assert module.SETTINGS.managed_spot is True
    assert settings.placement.subnets == json.loads(ENVIRONMENTS["start_training"]["SUBNETS"])
    assert settings.placement.vpc_config == {"SecurityGroupIds": ["sg-jobs"], "Subnets": ["subnet-a", "subnet-b"]}


def test_register_model_refuses_a_pass_status_it_does_not_know(monkeypatch):
    with pytest.raises(MissingSetting, match="PASS_STATUS must be one of Approved, PendingManualApproval"):
        load_function("register_model", monkeypatch, PASS_STATUS="Approve")


def test_a_test_cannot_set_a_variable_the_stack_does_not(monkeypatch):
    with pytest.raises(KeyError, match="deploy_model's stack sets no variable JOB_NAME"):
        environment("deploy_model", JOB_NAME="x")


def test_no_function_reserves_concurrency_unless_the_stage_says_so(stage):
    """Lambda keeps 100 of an account's concurrency unreserved and a new account's quota may be
    10: a reservation can fail the deploy, so the shipped stages reserve none."""
    assert stage.config.functions.reserved_concurrency == 0
    functions = [
        resource.get("Properties", {})
        for template in stage.templates.values()
        for resource in resources(template, "AWS::Lambda::Function").values()
    ]
    assert functions
    reserved = {
        f.get("FunctionName", "?"): f["ReservedConcurrentExecutions"]
        for f in functions
        if "ReservedConcurrentExecutions" in f
    }
    assert reserved == {}


def test_every_pass_role_names_the_one_service_the_role_is_passed_to(stage):
    """CDK's grant_pass_role allows passing to any service; the platform names each one."""
    passes = [
        statement
        for template in stage.templates.values()
        for policy in resources(template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "iam:PassRole" in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    ]
    assert len(passes) >= 4
    services = {json.dumps(s.get("Condition", {}).get("StringEquals", {}).get("iam:PassedToService")) for s in passes}
    assert services <= {'"sagemaker.amazonaws.com"', '"cloudformation.amazonaws.com"'}, passes
