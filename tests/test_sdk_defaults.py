"""constructs/sdk_defaults.py: the SageMaker Python SDK's defaults file, valid for the SDK and read
by it as the platform means it; the lifecycle script that writes it, and keeps a user's own file.
The file as the twin deploys it (dev) and the notebook that uses it: tests/test_local_platform.py."""

from __future__ import annotations

import os
import shutil
import subprocess

import jsonschema
import pytest
import yaml
from constructs import sdk_defaults
from sagemaker.core.config.config_schema import SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA

NAMES = {
    "role_arn": "arn:aws:iam::123456789012:role/MlPlatform-prod-Studio-JobRole014917C6-ABCDEF012345",
    "subnets": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1", "subnet-0123456789abcdef2"],
    "security_group_ids": ["sg-0123456789abcdef0"],
    "key_arn": "arn:aws:kms:eu-west-1:123456789012:key/4b6c512a-f3bd-4266-a224-a1518a9c5d28",
    "bucket": "mlplatform-prod-data-databuckete6b0faa8-0123456789ab",
    "sandbox": "sandbox/carol/",
    "owner": "carol",
}


def test_the_document_validates_and_fills_in_every_guardrail():
    document = sdk_defaults.document(**NAMES)
    jsonschema.validate(document, SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)
    trainer = document["SageMaker"]["PythonSDK"]["Modules"]["ModelTrainer"]
    assert trainer["role"] == NAMES["role_arn"]
    assert trainer["networking"] == {
        "subnets": NAMES["subnets"],
        "security_group_ids": NAMES["security_group_ids"],
        "enable_network_isolation": True,
        "enable_inter_container_traffic_encryption": True,
    }
    assert trainer["compute"]["volume_kms_key_id"] == trainer["outputDataConfig"]["kms_key_id"] == NAMES["key_arn"]
    assert trainer["outputDataConfig"]["s3_output_path"] == f"s3://{NAMES['bucket']}/sandbox/carol/models"
    session = document["SageMaker"]["PythonSDK"]["Modules"]["Session"]
    assert session == {"DefaultS3Bucket": NAMES["bucket"], "DefaultS3ObjectKeyPrefix": "sandbox/carol"}
    training = document["SageMaker"]["TrainingJob"]
    assert training["EnableNetworkIsolation"] and training["EnableInterContainerTrafficEncryption"]
    assert training["ResourceConfig"]["VolumeKmsKeyId"] == training["OutputDataConfig"]["KmsKeyId"] == NAMES["key_arn"]
    model = document["SageMaker"]["Model"]
    assert model["ExecutionRoleArn"] == NAMES["role_arn"] and model["EnableNetworkIsolation"]
    # No key for SDK 3.27's Transformer to trip on (constructs/sdk_defaults.py says why).
    assert document["SageMaker"]["TransformJob"] == {"Tags": [{"Key": "owner", "Value": "carol"}]}


def test_a_document_the_sdk_would_refuse_is_refused_by_the_schema():
    """The check is the SDK's own: a field it does not know, or a role that is not an ARN, fails."""
    document = sdk_defaults.document(**NAMES)
    document["SageMaker"]["TrainingJob"]["EnableNetworkIsolaton"] = True
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            sdk_defaults.document(**{**NAMES, "role_arn": "JobRole"}), SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA
        )


def test_the_sdk_applies_the_file_to_a_session_and_a_model(tmp_path, monkeypatch):
    """What the SDK does with the file: the session's bucket and prefix, and a model's role,
    network and isolation (read through the SDK's own loader and resolver)."""
    from sagemaker.core.common_utils import get_sagemaker_config_value
    from sagemaker.core.config.config import load_sagemaker_config
    from sagemaker.core.config.config_schema import MODEL_EXECUTION_ROLE_ARN_PATH, MODEL_VPC_CONFIG_PATH

    path = tmp_path / "config.yaml"
    path.write_text(sdk_defaults.MARKER + "\n" + yaml.safe_dump(sdk_defaults.document(**NAMES)))
    config = load_sagemaker_config([str(path)])

    class Session:  # what the SDK's resolver reads of a session
        sagemaker_config = config

    assert get_sagemaker_config_value(Session, MODEL_EXECUTION_ROLE_ARN_PATH) == NAMES["role_arn"]
    assert get_sagemaker_config_value(Session, MODEL_VPC_CONFIG_PATH)["Subnets"] == NAMES["subnets"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="the lifecycle script is bash")
def test_the_studio_script_writes_the_file_and_keeps_a_users_own(tmp_path):
    text = '{"SchemaVersion": "1.0"}'
    script = tmp_path / "lcc.sh"
    script.write_text(sdk_defaults.studio_script(text))
    target = tmp_path / ".config" / "sagemaker" / "config.yaml"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    subprocess.run(["bash", str(script)], env=env, check=True)
    assert target.read_text() == sdk_defaults.MARKER + "\n" + text + "\n" == sdk_defaults.written(script.read_text())
    subprocess.run(["bash", str(script)], env=env, check=True)  # the app restarts: written again
    assert target.read_text().startswith(sdk_defaults.MARKER)
    target.write_text("SchemaVersion: '1.0'\n")  # the user's own file
    result = subprocess.run(["bash", str(script)], env=env, check=True, capture_output=True, text=True)
    assert target.read_text() == "SchemaVersion: '1.0'\n" and "the user's own" in result.stderr
