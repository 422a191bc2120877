"""Stage configuration: the shipped stages load, and every bad value fails with one message
that names the key, the bad value and what is allowed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import build_app
from config import INTERFACE_ENDPOINT_SERVICES, ConfigError, available_stages, load_stage
from config.stage import parse_stage
from stacks.network import INTERFACE_ENDPOINTS
from tests.conftest import TEST_ACCOUNT

ROOT = Path(__file__).resolve().parents[1]
PROD = {"stage": "prod", "account": TEST_ACCOUNT}


def test_dev_is_the_default_stage_and_environment_agnostic():
    config = load_stage({})
    assert config.name == "dev"
    assert config.environment_agnostic
    assert config.account is None and config.region is None
    assert config.network.availability_zones == ()


def test_prod_takes_account_and_region_from_its_configuration():
    config = load_stage(PROD)
    assert (config.account, config.region) == (TEST_ACCOUNT, "eu-west-1")
    assert config.production and not config.data.destroy_on_delete
    assert config.network.availability_zones == ("eu-west-1a", "eu-west-1b", "eu-west-1c")


def test_context_overrides_region_and_zones_must_follow():
    with pytest.raises(
        ConfigError, match=r"network\.availability_zones = \['eu-west-1a', 'eu-west-1b', 'eu-west-1c'\]"
    ):
        load_stage({**PROD, "region": "us-east-2"})


def test_shipped_stages_are_dev_and_prod():
    assert {"dev", "prod"} <= set(available_stages())


def test_endpoint_names_in_config_and_network_stack_agree():
    assert set(INTERFACE_ENDPOINT_SERVICES) == set(INTERFACE_ENDPOINTS)


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"stage": "qa"}, r"stage = 'qa' is not a known stage; allowed: dev, prod"),
        ({"stage": "../prod"}, r"stage = '\.\./prod' is not a known stage"),
        ({"stage": "prod"}, r"stage 'prod': account = None is not allowed; allowed: a production stage deploys"),
        ({**PROD, "account": "12345"}, r"account = '12345' is not allowed; allowed: an AWS account id: exactly 12"),
        ({**PROD, "account": "12345678901a"}, r"account = '12345678901a' is not allowed"),
        ({**PROD, "region": "Europe"}, r"region = 'Europe' is not allowed; allowed: an AWS region code"),
    ],
)
def test_bad_stage_context_is_named(context, expected):
    with pytest.raises(ConfigError, match=expected):
        load_stage(context)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"network": {"interface_endpoints": ["sagemaker.api", "s3-express"]}},
            r"network\.interface_endpoints\.1 = 's3-express' is not allowed; allowed: 'sagemaker\.api', .* or 'sqs'",
        ),
        (
            {"network": {"interface_endpoints": ["sts", "sts"]}},
            r"network\.interface_endpoints = \['sts', 'sts'\] is not allowed; allowed: each endpoint may be listed",
        ),
        (
            {"network": {"flow_log_retention_days": 10}},
            r"network\.flow_log_retention_days = 10 is not allowed; allowed: 1, 3, 5, 7, 14, 30",
        ),
        ({"network": {"cidr": "10.0.0.0/8"}}, r"network\.cidr = '10\.0\.0\.0/8' is not allowed; allowed: a private"),
        ({"network": {"cidr": "8.8.0.0/16"}}, r"network\.cidr = '8\.8\.0\.0/16' is not allowed"),
        ({"network": {"cidr": "banana"}}, r"network\.cidr = 'banana' is not allowed; allowed: not an IPv4 CIDR"),
        ({"network": {"cidr_block": "10.0.0.0/16"}}, r"network\.cidr_block = .* it is not a known key; .*: cidr, "),
        ({"netwrok": {}}, r"netwrok = \{\} is not allowed; it is not a known key; allowed: .*network"),
        ({"data": {"noncurrent_version_expiration_days": 0}}, r"data\.noncurrent_version_expiration_days = 0"),
        (
            {"notifications": {"emails": ["a@example.org", "ops"]}},
            r"notifications\.emails\.1 = 'ops' is not allowed; allowed: an e-mail address \(name@example\.org\)",
        ),
        (
            {"workspace": {"users": ["alice", "Bob"]}},
            r"workspace\.users\.1 = 'Bob' is not allowed; allowed: a user profile name \(lower-case",
        ),
        (
            {"account": TEST_ACCOUNT, "region": "eu-west-1", "network": {"availability_zones": ["eu-west-1a"]}},
            r"network\.availability_zones = \['eu-west-1a'\] is not allowed; allowed: 2 or more zones of eu-west-1",
        ),
        (
            {
                "account": TEST_ACCOUNT,
                "region": "eu-west-1",
                "network": {"availability_zones": ["eu-west-1a", "us-east-1b"]},
            },
            r"network\.availability_zones = \['us-east-1b'\] is not allowed; allowed: zones of eu-west-1",
        ),
        (
            {"network": {"availability_zones": ["eu-west-1a", "eu-west-1b"]}},
            r"network\.availability_zones = .* allowed: \[\] when no account and region are set",
        ),
        ({"account": TEST_ACCOUNT}, r"region = None is not allowed; allowed: account and region are set together"),
    ],
)
def test_bad_values_are_named_with_what_is_allowed(raw, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_stage("variant", raw)


def test_production_stage_needs_two_zones():
    raw = {
        "production": True,
        "account": TEST_ACCOUNT,
        "region": "eu-west-1",
        "network": {"availability_zones": ["eu-west-1a"]},
    }
    with pytest.raises(ConfigError, match=r"stage 'variant': network\.availability_zones = \['eu-west-1a'\]"):
        parse_stage("variant", raw)


def test_production_stage_cannot_destroy_its_data():
    raw = {
        "production": True,
        "account": TEST_ACCOUNT,
        "region": "eu-west-1",
        "network": {"availability_zones": ["eu-west-1a", "eu-west-1b"]},
        "data": {"destroy_on_delete": True},
    }
    with pytest.raises(ConfigError, match=r"data\.destroy_on_delete = True is not allowed; allowed: false"):
        parse_stage("variant", raw)


def test_several_problems_are_reported_together():
    with pytest.raises(ConfigError) as raised:
        parse_stage("variant", {"network": {"cidr": "x", "flow_log_retention_days": 2}})
    assert "network.cidr" in str(raised.value) and "network.flow_log_retention_days" in str(raised.value)


def test_build_app_fails_on_a_bad_stage_before_creating_stacks():
    with pytest.raises(ConfigError, match="'staging' is not a known stage"):
        build_app({"stage": "staging"})


def test_cdk_synth_with_a_bad_stage_fails_with_one_clear_line():
    # What `cdk synth -c stage=qa` runs: the CLI hands its context to the app in CDK_CONTEXT_JSON.
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({"stage": "qa"}), "CDK_OUTDIR": "/nonexistent"}
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("configuration error: stage = 'qa' is not a known stage; allowed: dev, prod")
    assert "Traceback" not in result.stderr


def test_production_hosting_needs_two_instances():
    raw = {
        "production": True,
        "account": TEST_ACCOUNT,
        "region": "eu-west-1",
        "network": {"availability_zones": ["eu-west-1a", "eu-west-1b"]},
        "hosting": {"datasets": ["bank-marketing"], "instance_count": 1, "min_capacity": 1, "max_capacity": 2},
    }
    with pytest.raises(
        ConfigError, match=r"hosting\.instance_count/min_capacity = \[1, 1\] is not allowed; allowed: 2 or more"
    ):
        parse_stage("variant", raw)


def test_hosting_capacities_must_be_ordered():
    with pytest.raises(
        ConfigError, match=r"hosting = .* allowed: min_capacity 3 <= instance_count 2 <= max_capacity 4"
    ):
        parse_stage("variant", {"hosting": {"instance_count": 2, "min_capacity": 3, "max_capacity": 4}})


@pytest.mark.parametrize(
    ("hosting", "expected"),
    [
        ({"instance_count": 1, "min_capacity": 1, "canary_instances": 1}, "more than half of min_capacity 1"),
        ({"instance_count": 4, "min_capacity": 2, "max_capacity": 4, "canary_instances": 2}, "at most 1"),
        ({"canary_instances": -1}, r"hosting\.canary_instances = -1 is not allowed"),
    ],
)
def test_a_canary_that_does_not_fit_the_smallest_fleet_is_refused(hosting, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_stage("variant", {"hosting": hosting})


def test_a_canary_of_half_the_smallest_fleet_is_accepted():
    stage = parse_stage("variant", {"hosting": {"instance_count": 2, "min_capacity": 2, "canary_instances": 1}})
    assert stage.hosting.canary_instances == 1


@pytest.mark.parametrize(("minutes", "refused"), [(59, True), (60, False), (525_600, False), (525_601, True)])
def test_idle_minutes_are_what_studio_accepts(minutes, refused):
    """Studio's idle shutdown takes 60 to 525,600 minutes."""
    raw = {"workspace": {"idle_minutes": minutes}}
    if refused:
        with pytest.raises(ConfigError, match=rf"workspace\.idle_minutes = {minutes} is not allowed"):
            parse_stage("variant", raw)
    else:
        assert parse_stage("variant", raw).workspace.idle_minutes == minutes


@pytest.mark.parametrize(
    ("endpoints", "datasets", "missing"),
    [
        (["sagemaker.api", "sns"], [], "add glue"),
        (["sagemaker.api", "glue", "sns"], ["bank-marketing"], "add cloudformation"),
    ],
)
def test_a_stage_without_an_endpoint_its_functions_call_is_refused(endpoints, datasets, missing):
    """The functions run in a VPC with no other way out: a missing endpoint is a timeout at run time."""
    raw = {
        "network": {"interface_endpoints": endpoints},
        "workspace": {"kind": "none"},
        "hosting": {"datasets": datasets},
    }
    with pytest.raises(ConfigError, match=rf"functions in a VPC without internet call .*; {missing}"):
        parse_stage("variant", raw)


def test_the_default_endpoints_are_what_the_platform_and_studio_call():
    stage = parse_stage("variant", {})
    assert set(stage.network.interface_endpoints) == {
        "sagemaker.api", "sagemaker.runtime", "sts", "logs", "glue", "cloudformation", "sns",
    }  # fmt: skip
