"""The twin's SageMaker hosting: a model's container behind the serving contract on 127.0.0.1,
for endpoints and batch transform.

A model is resolved as SageMaker resolves it: the model's container (or the approved model
package it names, whose inference specification gives image, ``ModelDataUrl`` and environment),
``model.tar.gz`` fetched with the model's execution role and unpacked as ``/opt/ml/model``, and
for the XGBoost framework container the entry point ``SAGEMAKER_PROGRAM`` loaded from
``SAGEMAKER_SUBMIT_DIRECTORY`` inside it (https://docs.aws.amazon.com/sagemaker/latest/dg/xgboost.html).
The container's web server is played by ``training_jobs/serve_local.py`` (GET /ping, POST
/invocations); the model's own code, not the repository's, answers, with the container's
``Environment`` as its environment (a module's ``ENVIRONMENT``, where it reads one).

A model of several containers is a serial inference pipeline
(https://docs.aws.amazon.com/sagemaker/latest/dg/inference-pipelines.html): the request goes to
the first container, each container's answer (with its Content-Type) is the next one's request,
and the last one's answer is the model's. The twin's contract where the page is silent: the
request's ``Accept`` reaches the last container only; a container before it is asked for nothing
(``*/*``) and answers in its default type, which is what Autopilot's pipelines rely on when they
set ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` on their first container. A refusal by any container
is the model's refusal.

An endpoint whose configuration enables data capture writes each sampled request and answer as
SageMaker documents it (https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html):
one JSON line per request, ``captureData.endpointInput``/``endpointOutput`` with the observed
content type, the mode and the data (``CSV`` or ``JSON`` encoded where the configuration's
``CaptureContentTypeHeader`` names the type, ``BASE64`` otherwise), and ``eventMetadata``
(``eventId``, the request's ``inferenceId`` if it gave one, ``inferenceTime``), under
``<destination>/<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>/``, as the model's execution role,
under the configuration's KMS key. The twin writes one object per request (SageMaker batches
them) and samples by counting (every request at 100 percent).
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import re
import shutil
import tarfile
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from botocore.response import StreamingBody

from local import autopilot, standins
from local.functions import load_module
from local.jobs import split_uri
from local.trace import acting_as

if TYPE_CHECKING:
    from local.platform import Twin

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "training_jobs" / "serve_local.py"  # the framework container's server, played locally
MODEL_ROOT = "/opt/ml/model"


class HostingError(RuntimeError):
    """A model the twin cannot serve."""


@dataclass
class Container:
    name: str
    role: str
    image: str
    model_dir: Path
    server: Any
    thread: threading.Thread

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def invoke(self, body: bytes | str, content_type: str, accept: str) -> tuple[int, str]:
        status, _, text = self.exchange(body, content_type, accept)
        return status, text

    def exchange(self, body: bytes | str, content_type: str, accept: str) -> tuple[int, str, str]:
        """POST /invocations: (status, the answer's Content-Type, its text)."""
        data = body.encode() if isinstance(body, str) else body
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            headers = {"Content-Type": content_type, "Accept": accept or "*/*", "Content-Length": str(len(data))}
            connection.request("POST", "/invocations", body=data, headers=headers)
            response = connection.getresponse()
            media = (response.getheader("Content-Type") or "").split(";")[0].strip()
            return response.status, media, response.read().decode("utf-8")
        finally:
            connection.close()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@dataclass
class Pipeline:
    """A model of several containers, served as a serial inference pipeline."""

    name: str
    role: str
    containers: list[Container]

    def invoke(self, body: bytes | str, content_type: str, accept: str) -> tuple[int, str]:
        status, _, text = self.exchange(body, content_type, accept)
        return status, text

    def exchange(self, body: bytes | str, content_type: str, accept: str) -> tuple[int, str, str]:
        for index, container in enumerate(self.containers):
            last = index == len(self.containers) - 1
            status, media, text = container.exchange(body, content_type, accept if last else "")
            if status >= 400 or last:
                return status, media, text
            body, content_type = text, media
        raise HostingError(f"{self.name}: a pipeline of no container")

    def stop(self) -> None:
        for container in self.containers:
            container.stop()


@dataclass
class Capture:
    """An endpoint's data capture, as its configuration's ``DataCaptureConfig`` sets it."""

    destination: str
    variant: str
    role: str
    percentage: int
    key: str | None
    modes: frozenset[str]
    csv_types: tuple[str, ...]
    json_types: tuple[str, ...]
    _owed: int = field(default=0)

    @classmethod
    def of(cls, config: dict[str, Any], variant: str, role: str) -> Capture | None:
        capture = config.get("DataCaptureConfig") or {}
        if not capture.get("EnableCapture", True) or not capture:
            return None
        header = capture.get("CaptureContentTypeHeader") or {}
        return cls(
            destination=capture["DestinationS3Uri"].rstrip("/"),
            variant=variant,
            role=role,
            percentage=int(capture.get("InitialSamplingPercentage", 0)),
            key=capture.get("KmsKeyId"),
            modes=frozenset(o["CaptureMode"] for o in capture.get("CaptureOptions", [])),
            csv_types=tuple(header.get("CsvContentTypes", [])),
            json_types=tuple(header.get("JsonContentTypes", [])),
        )

    def sampled(self) -> bool:
        self._owed += self.percentage
        if self._owed >= 100:
            self._owed -= 100
            return True
        return False

    def encoded(self, mode: str, content_type: str, data: bytes) -> dict[str, str]:
        media = content_type.split(";")[0].strip()
        if media in self.csv_types or media in self.json_types:
            text, encoding = data.decode("utf-8"), "CSV" if media in self.csv_types else "JSON"
        else:
            text, encoding = base64.b64encode(data).decode(), "BASE64"
        return {"observedContentType": content_type, "mode": mode, "data": text, "encoding": encoding}


class Hosting:
    def __init__(self, twin: Twin) -> None:
        self.twin = twin
        self.endpoints: dict[str, Container | Pipeline] = {}
        self.captures: dict[str, Capture] = {}
        self._server_module = None

    def hosts(self, endpoint: str) -> bool:
        return endpoint in self.endpoints

    def container_for_model(self, model_name: str, label: str) -> Container | Pipeline:
        """Start the containers of a SageMaker model (by name), as SageMaker provisions them: one,
        or a serial pipeline of several."""
        twin = self.twin
        with acting_as("twin"):
            model = twin.client("sagemaker").describe_model(ModelName=model_name)
        mode = model.get("InferenceExecutionConfig", {}).get("Mode", "Serial")
        if mode != "Serial":
            raise HostingError(f"model {model_name}: the twin serves serial pipelines, not {mode} invocation")
        containers = [
            resolved
            for definition in model.get("Containers") or [model.get("PrimaryContainer", {})]
            for resolved in self._resolved(model_name, dict(definition))
        ]
        role = model["ExecutionRoleArn"]
        if len(containers) == 1:
            return self._start(label, role, containers[0])
        started: list[Container] = []
        try:
            for index, container in enumerate(containers, start=1):
                started.append(self._start(f"{label}-container-{index}", role, container))
        except BaseException:
            for container in started:
                container.stop()
            raise
        twin.trace.add("pipeline", label=label, containers=[c.image for c in started])
        return Pipeline(label, role, started)

    def _resolved(self, model_name: str, container: dict[str, Any]) -> list[dict[str, Any]]:
        """A container definition, or the containers of the approved model package it names
        (its inference specification: image, ``ModelDataUrl`` and environment of each)."""
        if "ModelPackageName" not in container:
            return [container]
        with acting_as("twin"):  # the twin resolves the package the model names
            package = self.twin.client("sagemaker").describe_model_package(
                ModelPackageName=container["ModelPackageName"]
            )
        status = package.get("ModelApprovalStatus")
        if status != "Approved":
            raise HostingError(f"model {model_name}: package {container['ModelPackageName']} is {status}, not Approved")
        own = {k: v for k, v in container.items() if k != "ModelPackageName"}
        return [{**spec, **own} for spec in package["InferenceSpecification"]["Containers"]]

    def _start(self, label: str, role: str, container: dict[str, Any]) -> Container:
        twin = self.twin
        image = container["Image"]
        model_dir = twin.state / "models" / re.sub(r"[^A-Za-z0-9_.-]", "-", label) / "model"
        shutil.rmtree(model_dir, ignore_errors=True)
        model_dir.mkdir(parents=True)
        if container.get("ModelDataUrl"):
            bucket, key = split_uri(container["ModelDataUrl"])
            with acting_as(role):
                body = twin.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
                archive.extractall(model_dir, filter="data")
        inference = self._inference(label, image, container.get("Environment", {}), model_dir)
        server = self._server().make_server(model_dir, "127.0.0.1", 0, inference=inference)
        # A short poll: stopping a container (after each transform job, at each rollout) waits for it.
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"container {label}", daemon=True
        )
        thread.start()
        twin.trace.add(
            "container", label=label, image=image, port=server.server_address[1], model=container.get("ModelDataUrl")
        )
        return Container(label, role, image, model_dir, server, thread)

    def _inference(self, label: str, image: str, environment: dict[str, str], model_dir: Path):
        """What answers /invocations: a built-in's stand-in, or the XGBoost container's script
        mode, SAGEMAKER_PROGRAM loaded from SAGEMAKER_SUBMIT_DIRECTORY inside model.tar.gz."""
        if autopilot.is_stand_in(image):
            self.twin.trace.add(
                "stand-in", container=label, image=image, note="an Autopilot candidate: the twin's stand-in serves"
            )
            return autopilot.Serving(environment)
        if standins.algorithm_of(image):
            self.twin.trace.add(
                "stand-in", container=label, image=image, note="a built-in algorithm: the twin's stand-in serves"
            )
            return standins.Serving
        repository = image.rsplit("/", 1)[-1].split(":")[0]
        if repository != "sagemaker-xgboost":
            raise HostingError(f"{label}: the twin has no stand-in for {image}")
        if "SAGEMAKER_PROGRAM" not in environment:
            raise HostingError(f"{label}: {image} serves a script: SAGEMAKER_PROGRAM is not in the environment")
        submit = environment.get("SAGEMAKER_SUBMIT_DIRECTORY", MODEL_ROOT + "/code")
        if not submit.startswith(MODEL_ROOT):
            raise HostingError(f"{label}: SAGEMAKER_SUBMIT_DIRECTORY {submit} is not inside {MODEL_ROOT}")
        program = model_dir / submit.removeprefix(MODEL_ROOT).lstrip("/") / environment["SAGEMAKER_PROGRAM"]
        if not program.is_file():
            raise HostingError(f"{label}: {environment['SAGEMAKER_PROGRAM']} is not in model.tar.gz at {submit}")
        try:  # the container has the model's code/ and its own libraries, nothing of this repository
            module = load_module(program, "model_" + re.sub(r"\W", "_", label), alone=True)
        except ImportError as error:
            raise HostingError(f"{label}: {environment['SAGEMAKER_PROGRAM']} does not import: {error}") from None
        if hasattr(module, "ENVIRONMENT"):  # what the process's environment would be in the container
            module.ENVIRONMENT = dict(environment)
        return module

    def _server(self):
        if self._server_module is None:
            self._server_module = load_module(SERVER, "twin_serve_local")
        return self._server_module

    # --- endpoints ---

    def serve(self, endpoint: str, config_name: str) -> None:
        """An endpoint created or updated with ``config_name``: its variant's model goes live."""
        twin = self.twin
        with acting_as("twin"):
            config = twin.client("sagemaker").describe_endpoint_config(EndpointConfigName=config_name)
        variants = config["ProductionVariants"]
        if len(variants) != 1:
            raise HostingError(f"{endpoint}: the twin serves one production variant")
        container = self.container_for_model(variants[0]["ModelName"], f"endpoint-{endpoint}-{config_name}")
        old = self.endpoints.pop(endpoint, None)
        self.endpoints[endpoint] = container
        capture = Capture.of(config, variants[0]["VariantName"], container.role)
        if capture is None:
            self.captures.pop(endpoint, None)
        else:
            self.captures[endpoint] = capture
        if old is not None:
            old.stop()
        self._set_status(endpoint, "InService")
        twin.trace.add(
            "endpoint", endpoint=endpoint, config=config_name, status="InService", model=variants[0]["ModelName"]
        )

    def _set_status(self, endpoint: str, status: str) -> None:
        self.twin.sagemaker_backend().endpoints[endpoint].endpoint_status = status

    def invoke(self, params: dict[str, Any]) -> dict[str, Any]:
        """InvokeEndpoint: the container's answer, or ModelError as SageMaker Runtime reports it."""
        container = self.endpoints[params["EndpointName"]]
        body = params["Body"]
        body = body.read() if hasattr(body, "read") else body
        status, media, text = container.exchange(
            body, params.get("ContentType", "application/json"), params.get("Accept", "")
        )
        if status >= 400:
            # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html#API_runtime_InvokeEndpoint_Errors
            raise ClientError(
                {
                    "Error": {
                        "Code": "ModelError",
                        "Message": f"Received client error ({status}) from primary: {text}",
                    },
                    "OriginalStatusCode": status,
                    "OriginalMessage": text,
                    "ResponseMetadata": {"HTTPStatusCode": 424},
                },
                "InvokeEndpoint",
            )
        data = text.encode("utf-8")
        capture = self.captures.get(params["EndpointName"])
        if capture is not None and capture.sampled():
            self._capture(
                params["EndpointName"],
                capture,
                params.get("ContentType", "application/json"),
                body,
                media,
                data,
                params.get("InferenceId"),
            )
        return {
            "Body": StreamingBody(io.BytesIO(data), len(data)),
            "ContentType": media,  # what the container answered in (InvokeEndpoint passes it on)
            "InvokedProductionVariant": "AllTraffic",
        }

    def _capture(
        self,
        endpoint: str,
        capture: Capture,
        content_type: str,
        body: bytes | str,
        media: str,
        answer: bytes,
        inference_id: str | None = None,
    ) -> None:
        """One captured request, written as the model's role (SageMaker writes with it); the
        request's InferenceId, if it gave one, is the record's ``inferenceId``, what a label
        uploaded for it names (Model Monitor's merge matches on it before ``eventId``)."""
        now = datetime.now(UTC)
        request = body.encode() if isinstance(body, str) else body
        data: dict[str, Any] = {}
        if "Input" in capture.modes:
            data["endpointInput"] = capture.encoded("INPUT", content_type, request)
        if "Output" in capture.modes:
            data["endpointOutput"] = capture.encoded("OUTPUT", media, answer)
        event_id = str(uuid.uuid4())
        record = {
            "captureData": data,
            "eventMetadata": {
                "eventId": event_id,
                **({"inferenceId": inference_id} if inference_id else {}),
                "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "eventVersion": "0",
        }
        bucket, prefix = split_uri(f"{capture.destination}/{endpoint}/{capture.variant}/{now:%Y/%m/%d/%H}/")
        encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": capture.key} if capture.key else {}
        with acting_as(capture.role):
            self.twin.client("s3").put_object(
                Bucket=bucket,
                Key=f"{prefix}{now:%M-%S-%f}-{event_id}.jsonl",
                Body=json.dumps(record) + "\n",
                **encryption,
            )

    def stop(self) -> None:
        for container in self.endpoints.values():
            container.stop()
        self.endpoints.clear()
