"""The SageMaker Python SDK's defaults for a person's jobs, and the lifecycle scripts that install them.

The SDK reads default parameters from an administrator's file and a user's file (its "default
configuration": https://sagemaker.readthedocs.io/en/stable/overview.html#configuring-and-using-defaults-with-the-sagemaker-python-sdk),
validated against ``sagemaker.core.config.config_schema.SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA``. The
document below fills in what the data scientists' guardrails require (constructs/data_scientist_roles.py),
so that a person's ``ModelTrainer``, model and batch transform pass them without naming a
network, a key or a role:

- ``SageMaker.PythonSDK.Modules.ModelTrainer`` (SDK 3's trainer reads its own section first):
  the job role, the platform's subnets and jobs' security group with network isolation and
  inter-container encryption, the volume and output under the platform key, the output in the
  person's sandbox;
- ``SageMaker.PythonSDK.Modules.Session``: the person's sandbox as the SDK's bucket and prefix
  (code and data the SDK uploads), never a ``sagemaker-<region>-<account>`` bucket it would try
  to create;
- ``SageMaker.TrainingJob``, ``SageMaker.Model``, ``SageMaker.TransformJob``: the same for the
  SDK's other paths (``Session.create_model``, ``Transformer``), where SDK 3.27 can take them.

Two defaults SDK 3.27 cannot apply, said where they would be: a ModelTrainer's compute and output
(the volume and output keys), which it sets before reading the file, and a transform's keys,
which break its Transformer. The starter notebook hands the trainer the file's ``compute`` and
``outputDataConfig`` and the transformer the platform key, from the session that loaded them.

The stage's own tags are not among them: their keys are the platform's (``ml-platform:``), which
the guardrails reserve for the jobs register_model trusts. A person's jobs carry ``owner``.

Where the file goes: Studio runs a JupyterLab app's lifecycle configuration as the app's user
at each start (https://docs.aws.amazon.com/sagemaker/latest/dg/jl-lcc.html), so each user
profile's configuration writes the user's file, ``~/.config/sagemaker/config.yaml``
(platformdirs' user_config_dir, which the SDK reads); a notebook instance's on-start script runs
as root and writes the administrator's file, ``/etc/xdg/sagemaker/config.yaml`` (site_config_dir).
A user's file the platform did not write is left alone: it is theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SDK_MAJOR = 3  # the SDK major version the starter notebook is written for (3 removed Estimator)
SCHEMA_VERSION = "1.0"
MARKER = "# Written by the ML platform's lifecycle configuration (constructs/sdk_defaults.py)."
STUDIO_FILE = "${HOME:-/home/sagemaker-user}/.config/sagemaker/config.yaml"  # the app's user: sagemaker-user
NOTEBOOK_FILE = "/etc/xdg/sagemaker/config.yaml"
DEFAULT_INSTANCE = "ml.m5.large"
VOLUME_GB = 30


def document(
    *,
    role_arn: str,
    subnets: Sequence[str],
    security_group_ids: Sequence[str],
    key_arn: str,
    bucket: str,
    sandbox: str,
    owner: str,
) -> dict[str, Any]:
    """The defaults of one person: ``sandbox`` is their folder in ``bucket`` (``sandbox/<user>/``)."""
    sandbox = sandbox.strip("/")
    vpc = {"Subnets": list(subnets), "SecurityGroupIds": list(security_group_ids)}
    tags = [{"Key": "owner", "Value": owner}]
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "SageMaker": {
            "PythonSDK": {
                "Modules": {
                    "Session": {"DefaultS3Bucket": bucket, "DefaultS3ObjectKeyPrefix": sandbox},
                    # ModelTrainer's own section: its attributes by their camelCase names.
                    "ModelTrainer": {
                        "role": role_arn,
                        "networking": {
                            "subnets": list(subnets),
                            "security_group_ids": list(security_group_ids),
                            "enable_network_isolation": True,
                            "enable_inter_container_traffic_encryption": True,
                        },
                        # Read by the SDK only where the trainer has none, and SDK 3.27's
                        # ModelTrainer sets its own before it reads these: the starter notebook
                        # passes them from the session's loaded defaults (see the README).
                        "compute": {
                            "instance_type": DEFAULT_INSTANCE,
                            "instance_count": 1,
                            "volume_size_in_gb": VOLUME_GB,
                            "volume_kms_key_id": key_arn,
                        },
                        "outputDataConfig": {
                            "s3_output_path": f"s3://{bucket}/{sandbox}/models",
                            "kms_key_id": key_arn,
                        },
                    },
                }
            },
            "TrainingJob": {
                "RoleArn": role_arn,
                "VpcConfig": vpc,
                "EnableNetworkIsolation": True,
                "EnableInterContainerTrafficEncryption": True,
                "OutputDataConfig": {"KmsKeyId": key_arn},
                "ResourceConfig": {"VolumeKmsKeyId": key_arn},
                "Tags": tags,
            },
            "Model": {"ExecutionRoleArn": role_arn, "VpcConfig": vpc, "EnableNetworkIsolation": True, "Tags": tags},
            # Not TransformOutput.KmsKeyId nor TransformResources.VolumeKmsKeyId: SDK 3.27's
            # Transformer adds them to its request in the API's PascalCase beside its own
            # snake_case fields, and its request shape refuses them (extra_forbidden), so every
            # transform would fail. The starter notebook passes the platform key instead.
            "TransformJob": {"Tags": tags},
        },
    }


def studio_script(text: str) -> str:
    """A JupyterLab lifecycle script that writes ``text`` (the document as JSON, which is YAML)
    to the user's SDK file, unless the user keeps a file of their own there."""
    return f"""#!/bin/bash
# The SageMaker Python SDK's defaults for this user's jobs (constructs/sdk_defaults.py).
set -euo pipefail
file="{STUDIO_FILE}"
if [ -f "$file" ] && [ "$(head -n 1 "$file")" != "{MARKER}" ]; then
  echo "$file is the user's own: the platform's defaults are not written" >&2
  exit 0
fi
mkdir -p "$(dirname "$file")"
cat > "$file" <<'SDK_DEFAULTS'
{MARKER}
{text}
SDK_DEFAULTS
"""


def notebook_script(text: str) -> str:
    """The lines of a notebook instance's on-start script (run as root) that write the
    administrator's SDK file."""
    return f"""
# The SageMaker Python SDK's defaults for the notebook's jobs (constructs/sdk_defaults.py).
mkdir -p "$(dirname {NOTEBOOK_FILE})"
cat > {NOTEBOOK_FILE} <<'SDK_DEFAULTS'
{MARKER}
{text}
SDK_DEFAULTS
chmod 644 {NOTEBOOK_FILE}
"""


def written(script: str) -> str:
    """The file a lifecycle script of :func:`studio_script` or :func:`notebook_script` writes
    (the marker line and the document), from the script's text."""
    opening = "<<'SDK_DEFAULTS'\n"
    start = script.index(opening) + len(opening)
    return script[start : script.index("\nSDK_DEFAULTS\n", start)] + "\n"
