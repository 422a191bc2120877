"""The permission proof of the prod stage, from its own cloud assembly, with both sources of
requests: the chain on the twin (a person approves the package, as prod asks) and every call
the handler tests made, translated to the deployed functions (tests/handler_calls.py).

This module runs after every other (conftest orders it last), so the handler tests' recordings
are complete when it evaluates them. The dev stage's proof and the mutation tests that must turn
it red are in test_local_platform.py.
"""

from __future__ import annotations

import pytest

from local.scenario import Scenario
from permissions.proof import Proof
from permissions.recorded import as_deployed
from tests.conftest import RAW_FILES, TEST_ACCOUNT, running_twin
from tests.handler_calls import INVOCATIONS

DATASET = "bank-marketing"


@pytest.fixture(scope="module")
def prod_twin(prod, spark, tmp_path_factory):
    with running_twin(prod.outdir, tmp_path_factory.mktemp("prod-twin")) as twin:
        yield twin


@pytest.fixture(scope="module")
def prod_proof(prod_twin):
    run = Scenario(prod_twin, DATASET, RAW_FILES[DATASET]).execute()
    handler_calls = list(as_deployed(INVOCATIONS, prod_twin))
    proof = Proof.of(prod_twin, extra_calls=handler_calls).evaluate()
    return run, proof, handler_calls


def test_the_prod_twin_runs_in_the_stages_own_account_through_a_persons_approval(prod_proof):
    run, proof, _ = prod_proof
    assert proof.account == TEST_ACCOUNT
    assert not run.failures, run.failures
    assert [s.name for s in run.steps][3:5] == ["register", "approve"]
    assert run.prediction is not None and run.batch_output_rows


def test_every_request_of_the_prod_stage_is_allowed_by_the_policies_it_deploys(prod_proof):
    _, proof, _ = prod_proof
    assert proof.answers, "nothing was evaluated"
    assert not proof.failures, "\n".join(proof.failures)


def test_every_role_and_resource_policy_of_the_prod_stage_is_asked_something(prod_proof):
    _, proof, _ = prod_proof
    assert proof.uncovered() == []


def test_the_handler_tests_calls_are_part_of_the_proof(prod_proof):
    _, proof, handler_calls = prod_proof
    if not INVOCATIONS:
        pytest.skip("run with the handler tests (test_start_etl, test_training_handlers, test_deploy_model)")
    recorded = {i["function"] for i in INVOCATIONS}
    translated = {c["by"].split(" ")[0] for c in handler_calls}
    assert len(translated) == len(recorded), (recorded, translated)
    from_tests = [a for a in proof.answers if "(handler test)" in a.request.why]
    assert from_tests and all(a.decision == "Allowed" for a in from_tests)


def test_every_grant_of_the_prod_stage_is_used_or_its_reason_is_reviewed(prod_proof):
    _, proof, _ = prod_proof
    assert proof.unexplained() == [], "unused grants to remove, or to explain in permissions/reviewed.py UNUSED"


def test_grants_kept_for_the_handler_tests_paths_are_used_by_the_handler_tests(prod_proof):
    from permissions.reviewed import HANDLER_TESTS

    _, proof, _ = prod_proof
    if not INVOCATIONS:
        pytest.skip("run with the handler tests (test_start_etl, test_training_handlers, test_deploy_model)")
    unproven = [label for label, reason in proof.unused_reasons() if reason.endswith(HANDLER_TESTS)]
    assert unproven == [], "\n".join(unproven)


def test_the_prod_stages_data_scientists_stay_inside_the_guardrails(prod_twin, prod_proof):
    from permissions.people import refusals

    _, proof, _ = prod_proof
    persons = [a for a in proof.answers if "permissions/people.py" in a.request.why]
    assert persons and all(a.decision == "Allowed" for a in persons)
    judged = refusals(prod_twin, proof.policies)
    assert judged and all("Denied" in decision and "Allowed" not in decision for _, decision in judged), judged


def test_the_sdk_defaults_with_prods_deployed_names_validate_against_the_sdks_schema(prod_twin):
    """prod configures no user profile, so it deploys no defaults script yet; a user added to its
    workspace gets the document of constructs/sdk_defaults.py (as dev's do, tests/test_local_platform.py),
    here with the role, subnets, security group, key and bucket the prod stage deployed."""
    import jsonschema
    from constructs import sdk_defaults
    from sagemaker.core.config.config_schema import SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA

    from permissions.people import Names

    studio = prod_twin.stack("Studio").template["Resources"]
    assert not [r for r in studio.values() if r["Type"] == "AWS::SageMaker::StudioLifecycleConfig"]
    names = Names.of(prod_twin)
    assert len(names.subnets) == 3 and names.key.startswith(f"arn:aws:kms:{prod_twin.region}:{TEST_ACCOUNT}:key/")
    document = sdk_defaults.document(
        role_arn=names.job_role, subnets=names.subnets, security_group_ids=[names.security_group],
        key_arn=names.key, bucket=names.bucket, sandbox="sandbox/carol/", owner="carol",
    )  # fmt: skip
    jsonschema.validate(document, SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)
