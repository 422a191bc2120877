"""The handler tests as a source of requests for the permission proof.

Every handler module the tests load goes through ``load_handler``, which records each AWS call
its ``handler`` makes (service, operation, parameters, the error code AWS or the test answered,
the ARNs a create returned) together with the environment the handler ran in. The proof
(``tests/test_permissions.py``) translates each recording to the deployed function: the same
call, under that function's role, with the test's configuration values replaced by the values
the stage deploys (``permissions.recorded.as_deployed``).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any
from unittest import mock

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from local.trace import plain
from tests.conftest import ROOT

# One entry per handler invocation: {"function": folder, "environment": {...}, "calls": [...]}.
INVOCATIONS: list[dict[str, Any]] = []


def load_handler(folder: str, name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``lambda/<folder>/handler.py`` loaded by path as Lambda loads it (clients created at
    import), registered as ``name``, with its ``handler`` recording the calls it makes."""
    module_spec = importlib.util.spec_from_file_location(name, ROOT / "lambda" / folder / "handler.py")
    module = importlib.util.module_from_spec(module_spec)
    monkeypatch.setitem(sys.modules, name, module)
    module_spec.loader.exec_module(module)
    module.handler = recording(folder, module.handler)
    return module


def recording(folder: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(handler)
    def recorded(event: Any, context: Any) -> Any:
        calls: list[dict[str, Any]] = []
        INVOCATIONS.append({"function": folder, "environment": dict(os.environ), "calls": calls})
        make_api_call = BaseClient._make_api_call
        depth = [0]  # a call the test's emulation makes while answering one of the handler's is not the handler's

        def record(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            if depth[0]:
                return make_api_call(client, operation, params)
            call = {
                "service": client.meta.service_model.service_name,
                "operation": operation,
                "params": plain(params),
                "error": None,
                "created": {},
            }
            calls.append(call)
            depth[0] += 1
            try:
                response = make_api_call(client, operation, params)
            except ClientError as error:
                call["error"] = error.response.get("Error", {}).get("Code")
                raise
            finally:
                depth[0] -= 1
            call["created"] = {k: v for k, v in response.items() if k.endswith("Arn") and isinstance(v, str)}
            return response

        with mock.patch.object(BaseClient, "_make_api_call", record):
            return handler(event, context)

    return recorded
