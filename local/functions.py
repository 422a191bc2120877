"""The twin's Lambda: each function runs from its published asset, as Lambda runs it.

The code is the object the template names (``Code.S3Bucket``/``S3Key`` in the emulated bootstrap
bucket), unzipped into the function's own folder; the module is imported from there with the
template's environment variables and Lambda's reserved ones
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime),
once per function (a warm container), and the handler named by ``Handler`` is called with the
event and a context object. Each function's modules are private to it: two functions that both
ship ``dataset_spec.py`` each import their own copy.

Asynchronous invocation follows Lambda's documented behaviour
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html): an error is retried up to
``MaximumRetryAttempts`` times (the function's EventInvokeConfig, 2 by default), then the event
goes to the function's dead-letter queue with the RequestID, ErrorCode and ErrorMessage
attributes. Lambda waits a minute and then two between attempts; the twin retries at once.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import re
import sys
import traceback
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from local.trace import acting_as

if TYPE_CHECKING:
    from local.platform import Twin

ROOT = Path(__file__).resolve().parents[1]


class FunctionError(RuntimeError):
    """The twin cannot run the function at all (not an error raised by its handler)."""


@contextlib.contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """os.environ as ``variables`` on top of the process's own, restored afterwards."""
    saved = dict(os.environ)
    os.environ.update(variables)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


# The repository's runtime folders: what a function, a job or a model ships is copied from them,
# and code loaded "alone" must find its modules in its own folder, not here.
RUNTIME_FOLDERS = tuple(ROOT / name for name in ("etl", "training_jobs", "lambda"))


def _in_runtime_folders(path: str | None) -> bool:
    return path is not None and any(Path(path).resolve().is_relative_to(f) for f in RUNTIME_FOLDERS)


@contextlib.contextmanager
def private_imports(folder: Path, *, alone: bool = False) -> Iterator[None]:
    """Import from ``folder`` first, and leave no module of it behind in sys.modules (so another
    function, job or model with a module of the same name gets its own). ``alone``: the
    repository's runtime folders are off the path and their modules out of sys.modules meanwhile,
    so that a module the folder lacks fails to import, as it would in the container."""
    names = {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir() if (p / "__init__.py").exists()}
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name.split(".")[0] in names}
    hidden_paths = [p for p in sys.path if alone and p and _in_runtime_folders(p)]
    hidden = {
        name: sys.modules.pop(name)
        for name, module in list(sys.modules.items())
        if alone and _in_runtime_folders(getattr(module, "__file__", None))
    }
    for path in hidden_paths:
        sys.path.remove(path)
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n.split(".")[0] in names]:
            del sys.modules[name]
        sys.modules.update(saved)
        sys.modules.update(hidden)
        sys.path[1:1] = hidden_paths


LOADED: set[str] = set()  # aliases registered in sys.modules, dropped when the twin stops


def unload_modules() -> None:
    for alias in LOADED:
        sys.modules.pop(alias, None)
    LOADED.clear()


def load_module(path: Path, alias: str, *, alone: bool = False) -> ModuleType:
    """``path`` imported as a module named ``alias``, with its folder's modules private to it
    (and, ``alone``, nothing else of the repository's runtime code: see :func:`private_imports`)."""
    spec = importlib.util.spec_from_file_location(alias, path)
    if spec is None or spec.loader is None:
        raise FunctionError(f"{path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module  # dataclasses and pickling look a module up by its name
    LOADED.add(alias)
    with private_imports(path.parent, alone=alone):
        spec.loader.exec_module(module)
    return module


@dataclass
class Context:
    """The context object Lambda passes to a Python handler (the attributes the platform reads)."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    timeout_seconds: int
    function_version: str = "$LATEST"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


class _Capture(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        entry = {"level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if isinstance(getattr(record, "outcome", None), dict):  # what a function says it did with an event
            entry["outcome"] = record.outcome  # type: ignore[attr-defined]
        self.records.append(entry)


@dataclass
class LocalFunction:
    twin: Twin
    name: str
    arn: str
    stack: str
    logical_id: str
    properties: dict[str, Any]
    maximum_retry_attempts: int = 2  # Lambda's default for asynchronous invocation
    permissions: list[dict[str, Any]] = field(default_factory=list)
    last_logs: list[dict[str, Any]] = field(default_factory=list)  # what the last invocation logged
    _module: ModuleType | None = None
    _function: str = "handler"

    @property
    def role_arn(self) -> str:
        return self.properties["Role"]

    @property
    def dead_letter_queue(self) -> str | None:
        return self.properties.get("DeadLetterConfig", {}).get("TargetArn")

    @property
    def variables(self) -> dict[str, str]:
        return dict(self.properties.get("Environment", {}).get("Variables", {}))

    @property
    def log_group(self) -> str:
        return self.properties.get("LoggingConfig", {}).get("LogGroup", f"/aws/lambda/{self.name}")

    @property
    def log_level(self) -> str:
        """The application log level (Lambda's default, INFO, where the template sets none)."""
        return self.properties.get("LoggingConfig", {}).get("ApplicationLogLevel", "INFO")

    def runtime_environment(self) -> dict[str, str]:
        properties = self.properties
        reserved = {
            "_HANDLER": properties["Handler"],
            "AWS_REGION": self.twin.region,
            "AWS_DEFAULT_REGION": self.twin.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{properties['Runtime']}",
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(properties.get("MemorySize", 128)),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": self.log_group,
            "AWS_LAMBDA_LOG_FORMAT": self.properties.get("LoggingConfig", {}).get("LogFormat", "Text"),
            "AWS_LAMBDA_LOG_LEVEL": self.log_level,
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            "LAMBDA_TASK_ROOT": str(self.code_dir),
            "TZ": ":UTC",
        }
        return {**self.variables, **reserved}

    @property
    def code_dir(self) -> Path:
        return self.twin.state / "functions" / self.name

    def _load(self) -> ModuleType:
        if self._module is not None:
            return self._module
        runtime = self.properties["Runtime"]
        if not runtime.startswith("python"):
            raise FunctionError(f"{self.name}: runtime {runtime} cannot run on the twin (Python functions only)")
        code = self.properties["Code"]
        if "ZipFile" in code:
            raise FunctionError(f"{self.name}: inline code is not used by the platform")
        with acting_as("lambda.amazonaws.com"):  # Lambda's service fetches the code at create time
            body = self.twin.client("s3").get_object(Bucket=code["S3Bucket"], Key=code["S3Key"])["Body"].read()
        folder = self.code_dir
        folder.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            archive.extractall(folder)
        module_name, _, self._function = self.properties["Handler"].rpartition(".")
        alias = "lambda_" + re.sub(r"\W", "_", self.name)
        with environment(self.runtime_environment()), acting_as(self.role_arn):
            self._module = load_module(folder / f"{module_name.replace('.', '/')}.py", alias)
        return self._module

    def invoke(self, event: Mapping[str, Any], request_id: str | None = None) -> Any:
        """One synchronous invocation: the handler's result, or its exception raised."""
        self.last_logs = []
        module = self._load()
        context = Context(
            function_name=self.name,
            invoked_function_arn=self.arn,
            memory_limit_in_mb=int(self.properties.get("MemorySize", 128)),
            aws_request_id=request_id or str(uuid.uuid4()),
            log_group_name=self.log_group,
            timeout_seconds=int(self.properties.get("Timeout", 3)),
        )
        # Lambda filters the handler's logging at the function's application log level (JSON format):
        # https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html; its
        # Python runtime reads the level from AWS_LAMBDA_LOG_LEVEL and sets it on the root logger
        # (aws-lambda-python-runtime-interface-client, awslambdaric/bootstrap.py).
        level = logging.getLevelName(self.log_level.replace("WARN", "WARNING"))
        capture = _Capture(level)
        root = logging.getLogger()
        saved_level = root.level
        root.addHandler(capture)
        root.setLevel(level)
        output = io.StringIO()  # what the handler prints: its log's plain lines (embedded metrics among them)
        try:
            with environment(self.runtime_environment()), acting_as(self.role_arn), contextlib.redirect_stdout(output):
                return getattr(module, self._function)(json.loads(json.dumps(event)), context)
        finally:
            root.removeHandler(capture)
            root.setLevel(saved_level)
            self.last_logs = capture.records
            self.twin.cloudwatch.log(self.name, output.getvalue())


class Functions:
    """The twin's Lambda service: functions by name and ARN, and asynchronous invocation."""

    def __init__(self, twin: Twin) -> None:
        self.twin = twin
        self._by_arn: dict[str, LocalFunction] = {}

    def register(self, *, name: str, arn: str, stack: str, logical_id: str, properties: dict[str, Any]) -> None:
        self._by_arn[arn] = LocalFunction(self.twin, name, arn, stack, logical_id, properties)

    def by_name(self, name: str) -> LocalFunction:
        for function in self._by_arn.values():
            if function.name == name:
                return function
        raise FunctionError(f"no function named {name}")

    def by_name_or_arn(self, name_or_arn: str) -> LocalFunction:
        return self._by_arn[name_or_arn] if name_or_arn in self._by_arn else self.by_name(name_or_arn)

    def by_arn(self, arn: str) -> LocalFunction:
        if arn not in self._by_arn:
            raise FunctionError(f"no function {arn}")
        return self._by_arn[arn]

    def __iter__(self) -> Iterator[LocalFunction]:
        return iter(self._by_arn.values())

    def invoke_async(self, function: LocalFunction, event: Mapping[str, Any], source: str) -> dict[str, Any]:
        """Lambda's asynchronous invocation: attempts, then the dead-letter queue."""
        trace = self.twin.trace
        request_id = str(uuid.uuid4())
        attempts = 1 + function.maximum_retry_attempts
        for attempt in range(1, attempts + 1):
            entry = {"function": function.name, "source": source, "attempt": attempt}
            try:
                result = function.invoke(event, request_id)
            except Exception as error:  # the handler failed: Lambda records it and retries
                last = error
                trace.add(
                    "invoke",
                    **entry,
                    status="error",
                    error=f"{type(error).__name__}: {error}",
                    logs=function.last_logs,
                    traceback=traceback.format_exc(limit=6),
                )
                continue
            trace.add("invoke", **entry, status="ok", result=result, logs=function.last_logs)
            return {"status": "ok", "result": result}
        self._dead_letter(function, event, request_id, last)
        return {"status": "failed", "error": f"{type(last).__name__}: {last}"}

    def _dead_letter(
        self, function: LocalFunction, event: Mapping[str, Any], request_id: str, error: Exception
    ) -> None:
        queue_arn = function.dead_letter_queue
        if not queue_arn:
            self.twin.trace.add("dead-letter", function=function.name, queue=None, note="no dead-letter queue: dropped")
            return
        # Lambda sends the event as the message body with these attributes (invocation-async.html).
        attributes = {
            "RequestID": {"DataType": "String", "StringValue": request_id},
            "ErrorCode": {"DataType": "Number", "StringValue": "200"},
            "ErrorMessage": {"DataType": "String", "StringValue": f"{type(error).__name__}: {error}"[:256]},
        }
        with acting_as("twin"):  # Lambda names the queue by its ARN: no GetQueueUrl request of the role's
            url = self.twin.client("sqs").get_queue_url(QueueName=queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
        with acting_as(function.role_arn):  # the function's role sends to its DLQ
            self.twin.client("sqs").send_message(
                QueueUrl=url, MessageBody=json.dumps(event), MessageAttributes=attributes
            )
        self.twin.trace.add("dead-letter", function=function.name, queue=queue_arn, request_id=request_id)
