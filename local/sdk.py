"""The SageMaker Python SDK's defaults file a person's JupyterLab app would hold, read from the twin.

Studio runs a user profile's lifecycle configuration when the user's JupyterLab app starts; the
twin runs no app, so the file is what the configuration's resolved script writes
(constructs/sdk_defaults.py): the template's intrinsics resolved to what the twin deployed.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from constructs import sdk_defaults

if TYPE_CHECKING:
    from local.platform import Twin

LIFECYCLE_CONFIG = "AWS::SageMaker::StudioLifecycleConfig"


def studio_defaults(twin: Twin, user: str) -> str:
    """The text of ``user``'s SDK defaults file (YAML), as their lifecycle configuration writes it."""
    studio = twin.stack("Studio")
    resources = studio.template["Resources"]
    scripts = [
        base64.b64decode(properties["StudioLifecycleConfigContent"]).decode()
        for logical_id, properties in studio.applied.items()
        if resources[logical_id]["Type"] == LIFECYCLE_CONFIG
        and properties["StudioLifecycleConfigName"].endswith(f"-sdk-defaults-{user}")
    ]
    if len(scripts) != 1:
        raise LookupError(f"{studio.name} has {len(scripts)} SDK defaults configurations for user {user!r}")
    return sdk_defaults.written(scripts[0])
