"""The platform's functions as the tests load them: by path, as Lambda loads them, with exactly
the environment variables each function's stack sets (tests/test_function_settings.py holds the
names to the synthesized templates and to each handler's settings) and test values for them.

A test changes a value with ``environment(function, NAME=value)``; a name the function does not
have is refused, so no test can run a function with a variable its deployment lacks.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.handler_calls import load_handler

EVENTS = Path(__file__).parent / "events"  # events as AWS documents them, one JSON file each
ACCOUNT, REGION = "123456789012", "eu-west-1"  # moto's default account
DATA_BUCKET = "ml-platform-data-bucket"  # the bucket of tests/events/s3_object_created.json
ARTIFACTS_BUCKET = "ml-artifacts"
SAGEMAKER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagemaker-execution"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:operators"
GROUP_PREFIX = "mlplatform-dev"

# Credentials from the environment keep botocore off the network when a handler creates its
# clients at import; every request then goes to the emulator (or nowhere).
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}

_PLACEMENT = {
    "ROLE_ARN": SAGEMAKER_ROLE,
    "KMS_KEY_ARN": KEY,
    "SUBNETS": json.dumps(["subnet-a", "subnet-b"]),
    "SECURITY_GROUPS": json.dumps(["sg-jobs"]),
    "STAGE": "dev",
}
_SPECS = json.dumps({"car-evaluation": "s3://cdk-assets/car-evaluation.json"})

ENVIRONMENTS: dict[str, dict[str, str]] = {
    "start_etl": {
        "JOB_NAME": "prepare-job",
        "DATA_BUCKET": DATA_BUCKET,
        "RAW_PREFIX": "raw/",
        "PREPARED_PREFIX": "prepared/",
        "DATASET_SPECS": _SPECS,
        "SEED": "42",
        "CLAIM_TIMEOUT_SECONDS": "900",
    },
    "start_training": {
        "DATA_BUCKET": DATA_BUCKET,
        "PREPARED_PREFIX": "prepared/",
        "ARTIFACTS_BUCKET": ARTIFACTS_BUCKET,
        **_PLACEMENT,
        "SOURCE_URI": "s3://cdk-assets/sourcedir.tar.gz",
        "IMAGES": "{}",
        "DATASET_SPECS": _SPECS,
        "MANAGED_SPOT": "true",
        "MAX_WAIT_MINUTES": "120",
        "VOLUME_SIZE_GB": "30",
        "PROFILER_RULE": "{}",
    },
    "register_model": {
        "ARTIFACTS_BUCKET": ARTIFACTS_BUCKET,
        "GROUP_PREFIX": GROUP_PREFIX,
        "TOPIC_ARN": TOPIC,
        "IMAGES": "{}",
        "TRAINING_IMAGES": "{}",
        "DATASET_SPECS": _SPECS,
        **_PLACEMENT,
        "SOURCE_URI": "s3://cdk-assets/sourcedir.tar.gz",
        "INSTANCE_TYPE": "ml.m5.large",
        "DATA_BUCKET": DATA_BUCKET,
        "PREPARED_PREFIX": "prepared/",
        "PASS_STATUS": "Approved",
    },
    "start_batch_transform": {
        "DATA_BUCKET": DATA_BUCKET,
        "BATCH_INPUT_PREFIX": "batch-input/",
        "BATCH_OUTPUT_PREFIX": "batch-output/",
        "GROUP_PREFIX": GROUP_PREFIX,
        **_PLACEMENT,
        "DATASETS": json.dumps(["car-evaluation"]),
        "TOPIC_ARN": TOPIC,
        "INSTANCE_TYPE": "ml.m5.large",
        "INSTANCE_COUNT": "1",
    },
    "deploy_model": {
        "STACK_NAME": "MlPlatform-dev-Hosting-bank-marketing",
        "MODEL_PACKAGE_GROUP": f"{GROUP_PREFIX}-bank-marketing",
        "CLOUDFORMATION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/hosting-deployment",
        # Off here: tests/test_deploy_model.py proves the rollout itself; the baseline's leg, on by
        # default in the stages, is tests/test_deploy_model_baseline.py's.
        "DATA_QUALITY": "false",
        "DATASET": "bank-marketing",
        "ENDPOINT_NAME": f"{GROUP_PREFIX}-bank-marketing",
        "DATA_BUCKET": DATA_BUCKET,
        "PREPARED_PREFIX": "prepared/",
        "BASELINES_PREFIX": "monitoring/bank-marketing/baselines/",
        "ANALYZER_IMAGE": "468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer",
        "MONITOR_INSTANCE_TYPE": "ml.m5.xlarge",
        "MONITOR_VOLUME_GB": "20",
        "MONITOR_MAX_RUNTIME_SECONDS": "1800",
        **_PLACEMENT,
        "ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/monitoring",
    },
    "check_drift": {
        "STAGE": "dev",
        "DATASET": "bank-marketing",
        "ENDPOINT_NAME": f"{GROUP_PREFIX}-bank-marketing",
        "STACK_NAME": "MlPlatform-dev-Hosting-bank-marketing",
        "REPORTS_PREFIX": "monitoring/bank-marketing/reports/",
        "TOPIC_ARN": TOPIC,
        "SPEC_URI": "s3://cdk-assets/bank-marketing.json",
        "RETRAIN_MIN_HOURS": "12",
        "QUALITY_METRIC": "auc",
        "JOB_NAME": "prepare-job",
        "DATA_BUCKET": DATA_BUCKET,
        "RAW_PREFIX": "raw/",
        "PREPARED_PREFIX": "prepared/",
        "SEED": "42",
        "CLAIM_TIMEOUT_SECONDS": "900",
    },
}


def environment(function: str, **values: str) -> dict[str, str]:
    """``function``'s test environment with some values replaced."""
    base = ENVIRONMENTS[function]
    unknown = sorted(set(values) - set(base))
    if unknown:
        raise KeyError(f"{function}'s stack sets no variable {', '.join(unknown)}")
    return {**base, **values}


def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)


def load_function(
    function: str, monkeypatch: pytest.MonkeyPatch, *, without: tuple[str, ...] = (), **values: str
) -> ModuleType:
    """``lambda/<function>/handler.py`` loaded with its test environment (``values`` replaced,
    the variables ``without`` left out)."""
    fake_credentials(monkeypatch)
    for name, value in environment(function, **values).items():
        if name in without:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return load_handler(function, f"{function}_under_test", monkeypatch)


def event_fixture(name: str) -> dict[str, Any]:
    """``tests/events/<name>``: a fresh copy to change."""
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


_OBJECT_CREATED = event_fixture("s3_object_created.json")


def object_created(
    key: str | None = None, *, bucket: str | None = None, detail: dict[str, Any] | None = None, **object_fields: Any
) -> dict[str, Any]:
    """tests/events/s3_object_created.json with another key, bucket, object fields (``size``,
    ``version-id``, ...) or other detail fields."""
    event = copy.deepcopy(_OBJECT_CREATED)
    if key is not None:
        event["detail"]["object"]["key"] = key
    if bucket is not None:
        event["detail"]["bucket"]["name"] = bucket
        event["resources"] = [f"arn:aws:s3:::{bucket}"]
    event["detail"]["object"].update(object_fields)
    event["detail"].update(detail or {})
    return event


_QUEUED = event_fixture("sqs_receive_message.json")["Records"][0]


def queued(*events: Any, queue: str = f"arn:aws:sqs:{REGION}:{ACCOUNT}:start-etl-queue") -> dict[str, Any]:
    """The batch Lambda hands a function from an SQS queue an EventBridge rule fills: one record
    of tests/events/sqs_receive_message.json per event, its body the event's JSON (or ``event``
    itself where it is already text), its message id derived from the body."""
    records = []
    for number, event in enumerate(events):
        body = event if isinstance(event, str) else json.dumps(event)
        digest = hashlib.sha256(f"{number}\n{body}".encode()).hexdigest()
        record = copy.deepcopy(_QUEUED)
        record |= {
            "messageId": f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}",
            "body": body,
            "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
            "eventSourceARN": queue,
        }
        records.append(record)
    return {"Records": records}


def changed(event: dict[str, Any], path: str, value: Any = None, *, remove: bool = False) -> dict[str, Any]:
    """A copy of ``event`` with the field at the dotted ``path`` set to ``value`` or removed: the
    events a function must ignore with the reason."""
    event = copy.deepcopy(event)
    *parents, last = path.split(".")
    target = event
    for part in parents:
        target = target[part]
    if remove:
        del target[last]
    else:
        target[last] = value
    return event
