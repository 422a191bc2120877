"""The twin: an emulated account (moto, in process) stood up from the cloud assembly, with the
services moto does not run (Lambda, EventBridge delivery, CloudFormation for these templates,
Glue and SageMaker jobs, endpoints) played by the twin with the platform's own code.

Every AWS call anybody makes inside the twin goes through one botocore session, whose hooks
record the call with its principal (a function's role, a job's role, the deployer) and let the
twin react the way AWS would: an object written to a bucket with EventBridge notifications on
emits S3's "Object Created"; a job created is a job to run; a CloudFormation update of a stack
the twin deployed is applied by the twin; an endpoint invocation reaches the model's server.
"""

from __future__ import annotations

import heapq
import io
import itertools
import json
import os
import random
import shutil
import uuid
import zipfile
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from local import events
from local.assembly import Assembly, FileAsset
from local.bus import Bus
from local.cloudwatch import CloudWatch
from local.functions import Functions, unload_modules
from local.hosting import Hosting
from local.jobs import Jobs
from local.queues import Queues
from local.stacks import CloudFormation, StackError
from local.trace import PRINCIPAL, SOURCE_IDENTITY, Trace, acting_as

ACCOUNT = "123456789012"  # moto's default account; the twin has no other
REGION = "eu-west-1"
BOOTSTRAP_QUALIFIER = "hnb659fds"  # CDK's default bootstrap qualifier, as the assembly names it
BOOTSTRAP_VERSION = "30"
OBJECT_CREATED = {"PutObject", "CopyObject", "CompleteMultipartUpload"}


@dataclass
class Monitoring:
    """Model Monitor's job definitions and schedules the stacks created, by name (not in moto)."""

    definitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)


class Twin:
    def __init__(
        self,
        assembly: Assembly,
        state: Path,
        *,
        account: str | None = None,
        region: str | None = None,
        duplicate_events: bool = False,
        shuffle_seed: int | None = None,
    ) -> None:
        self.assembly = assembly
        self.state = state.resolve()  # jobs run in their own working folders
        # The assembly's own environment where it names one (a prod stage), else moto's defaults.
        self.account = account or assembly.account or ACCOUNT
        self.region = region or assembly.region or REGION
        self.duplicate_events = duplicate_events
        self._random = random.Random(shuffle_seed) if shuffle_seed is not None else None
        self.trace = Trace()
        self.functions = Functions(self)
        self.monitoring = Monitoring()
        self.bus = Bus(self)
        self.cloudformation = CloudFormation(self)
        self.jobs = Jobs(self)
        self.hosting = Hosting(self)
        self.queues = Queues(self)
        self.cloudwatch = CloudWatch(self)
        self.s3_events: set[str] = set()  # buckets with EventBridge notifications on
        self._pending: deque[tuple[str, Callable[[], None]]] = deque()
        # The twin's clock (seconds since it started): it moves only when nothing is pending, to
        # the next timer (a queue's delivery delay or visibility timeout).
        self.clock = 0.0
        self._timers: list[tuple[float, int, str, Callable[[], None]]] = []
        # What happened (events put on the bus, jobs that end without one): a scheduled rule
        # fires when the twin is idle and something happened since it last fired (Bus.tick).
        self.activity = 0
        self._timer_order = itertools.count()
        self._sequencer = 0
        self._clients: dict[str, Any] = {}
        self._mock = None
        self._settling = False  # run_until_idle is running
        self.availability_zones: list[str] = []

    # --- lifecycle ---

    def start(self) -> Twin:
        from moto import mock_aws

        shutil.rmtree(self.state, ignore_errors=True)
        self.state.mkdir(parents=True)
        # Roles may attach AWS managed policies; moto knows them only when asked to load them.
        # The emulated account is the assembly's (a prod stage names its account); moto reads it per request.
        self._saved_environment = {
            name: os.environ.get(name) for name in ("MOTO_IAM_LOAD_MANAGED_POLICIES", "MOTO_ACCOUNT_ID")
        }
        os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        os.environ["MOTO_ACCOUNT_ID"] = self.account
        self._mock = mock_aws()
        self._mock.start()
        # moto evaluates bucket policies without their conditions: the platform's TLS-only Deny
        # (aws:SecureTransport false) would refuse every request. Policies are judged by the
        # permission proof against the recorded calls, with a real evaluator, not here.
        from moto.iam.access_control import PermissionResult
        from moto.s3.models import FakeBucket

        self._patches = [mock.patch.object(FakeBucket, "get_permission", return_value=PermissionResult.NEUTRAL)]
        for patch in self._patches:
            patch.start()
        self._previous_session = boto3.DEFAULT_SESSION
        boto3.setup_default_session(region_name=self.region)
        session = boto3.DEFAULT_SESSION._session
        if self._previous_session is not None:  # the service models it already parsed (seconds of JSON)
            session.register_component("data_loader", self._previous_session._session.get_component("data_loader"))
        session.register("before-parameter-build", self._before_call)
        session.register("before-call", self._answer)
        session.register("after-call", self._after_call)
        self.availability_zones = [
            zone["ZoneName"]
            for zone in self.client("ec2").describe_availability_zones()["AvailabilityZones"]
            if zone["State"] == "available"
        ]
        self._bootstrap()
        self._publish_assets()
        for stack in self.assembly.stacks:
            self.cloudformation.deploy(stack)
        return self

    def stop(self) -> None:
        self.hosting.stop()
        self.jobs.stop()
        unload_modules()  # the functions' modules hold clients whose hooks hold the twin
        for patch in getattr(self, "_patches", []):
            patch.stop()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
            for name, value in self._saved_environment.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        boto3.DEFAULT_SESSION = getattr(self, "_previous_session", None)

    def __enter__(self) -> Twin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, service: str):
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=self.region)
        return self._clients[service]

    # --- cdk bootstrap and cdk deploy's asset publishing ---

    @property
    def assets_bucket(self) -> str:
        return f"cdk-{BOOTSTRAP_QUALIFIER}-assets-{self.account}-{self.region}"

    def _bootstrap(self) -> None:
        """What ``cdk bootstrap`` leaves that the templates use: the assets bucket (SSE-KMS with
        the AWS managed key, as the default bootstrap template) and the version parameter."""
        with acting_as("deployer"):
            s3 = self.client("s3")
            s3.create_bucket(Bucket=self.assets_bucket, CreateBucketConfiguration={"LocationConstraint": self.region})
            s3.put_bucket_encryption(
                Bucket=self.assets_bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
                },
            )
            self.client("ssm").put_parameter(
                Name=f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version", Value=BOOTSTRAP_VERSION, Type="String"
            )
        self.trace.add("bootstrap", bucket=self.assets_bucket, version=BOOTSTRAP_VERSION)

    def _publish_assets(self) -> None:
        with acting_as("deployer"):
            for asset in self.assembly.assets.values():
                bucket = asset.bucket.replace("${AWS::AccountId}", self.account).replace("${AWS::Region}", self.region)
                self.client("s3").put_object(Bucket=bucket, Key=asset.key, Body=_asset_bytes(asset))
        self.trace.add("assets", published=len(self.assembly.assets), bucket=self.assets_bucket)

    def stack(self, suffix: str):
        """A deployed stack by its name's last part ("Data", "Hosting-bank-marketing", ...)."""
        for stack in self.cloudformation.stacks.values():
            if stack.name.endswith("-" + suffix):
                return stack
        raise KeyError(suffix)

    def resource(self, stack_suffix: str, logical_prefix: str, resource_type: str) -> str:
        """The physical name (Ref) of the one resource of a type whose logical id starts with ``logical_prefix``."""
        stack = self.stack(stack_suffix)
        resources = stack.template["Resources"]
        found = [
            p.ref
            for lid, p in stack.physical.items()
            if lid.startswith(logical_prefix) and resources[lid]["Type"] == resource_type
        ]
        if len(found) != 1:
            raise KeyError(f"{stack.name}: {len(found)} resources start with {logical_prefix}")
        return found[0]

    def sagemaker_backend(self):
        """moto's SageMaker records, which the twin keeps true to what its jobs and endpoints did."""
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[self.account][self.region]

    def topic_messages(self, topic_arn: str) -> list[tuple[str | None, str]]:
        """(subject, message) of everything published to a topic, as its subscribers received it."""
        from moto.sns.models import sns_backends

        topic = sns_backends[self.account][self.region].topics[topic_arn]
        return [(subject, message) for _, message, subject, _, _ in topic.sent_notifications]

    def queue_messages(self, queue_arn: str) -> list[dict[str, Any]]:
        """Messages waiting in a queue (received and left visible again), with their attributes."""
        with acting_as("twin"):
            sqs = self.client("sqs")
            url = sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
            received = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
            )
        return received.get("Messages", [])

    # --- the event loop: events, invocations, jobs and updates, one at a time ---

    def schedule(self, description: str, task: Callable[[], None], after: float = 0.0) -> None:
        """Run ``task`` once the twin is idle, or ``after`` seconds on the twin's clock."""
        if after > 0:
            heapq.heappush(self._timers, (self.clock + after, next(self._timer_order), description, task))
        else:
            self._pending.append((description, task))

    def run_until_idle(self, limit: int = 10_000) -> int:
        settling, self._settling = self._settling, True
        try:
            return self._run_until_idle(limit)
        finally:
            self._settling = settling

    def _run_until_idle(self, limit: int) -> int:
        steps = 0
        while self._pending or self._timers or self.bus.tick():
            if steps >= limit:
                raise RuntimeError(f"the twin did not settle after {limit} steps")
            if not self._pending:  # nothing to do now: the clock moves to the next timer
                self.clock = self._timers[0][0]
                while self._timers and self._timers[0][0] <= self.clock:
                    _, _, description, task = heapq.heappop(self._timers)
                    self._pending.append((description, task))
                self.trace.add("clock", seconds=self.clock)
                continue
            if self._random is not None:  # out of order: any pending step may go next
                index = self._random.randrange(len(self._pending))
                self._pending.rotate(-index)
            _, task = self._pending.popleft()
            task()
            steps += 1
        return steps

    def put_event(self, event: Mapping[str, Any]) -> None:
        self.trace.add("event", source=event["source"], detail_type=event["detail-type"], id=event["id"], event=event)
        self.activity += 1
        for _ in range(2 if self.duplicate_events else 1):
            self.bus.put(event)

    # --- botocore hooks ---

    def _before_call(self, params: dict[str, Any], model, context: dict[str, Any], **_: Any) -> None:
        context["twin"] = {
            "params": dict(params),
            "principal": PRINCIPAL.get(),
            "source_identity": SOURCE_IDENTITY.get(),
        }
        if model.service_model.service_name == "sagemaker" and model.name == "UpdateModelPackage":
            package = self._model_package(params.get("ModelPackageArn", ""))
            context["twin"]["metadata"] = dict(package.customer_metadata_properties or {}) if package else None

    def _model_package(self, arn: str):
        backend = self.sagemaker_backend()
        return backend.model_packages.get(backend.model_package_name_mapping.get(arn, arn))

    def _keep_metadata(self, params: Mapping[str, Any], before: dict[str, str]) -> None:
        """UpdateModelPackage adds the CustomerMetadataProperties it names and removes those of
        CustomerMetadataPropertiesToRemove; the others stay
        (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateModelPackage.html).
        moto replaces them all with the request's: the twin puts the rest back."""
        package = self._model_package(params["ModelPackageArn"])
        kept = {**before, **params.get("CustomerMetadataProperties", {})}
        for key in params.get("CustomerMetadataPropertiesToRemove", []):
            kept.pop(key, None)
        package.customer_metadata_properties = kept or None

    def _answer(self, model, context: dict[str, Any], **_: Any):
        """Requests the twin answers instead of moto (stacks it deployed, endpoints it hosts)."""
        call = context.get("twin")
        if call is None:
            return None
        service, operation, params = model.service_model.service_name, model.name, call["params"]
        if call["principal"] in self._people():
            refused = self._refused(call["principal"], call["source_identity"], service, operation, params)
            if refused:
                # Query and REST-XML services (IAM, STS, S3) answer AccessDenied with 403; the
                # JSON ones (SageMaker, Logs) AccessDeniedException with 400.
                xml = model.service_model.protocol in ("query", "rest-xml", "ec2")
                error = {"Code": "AccessDenied" if xml else "AccessDeniedException", "Message": refused}
                return _response({"Error": {**error, "Type": "Sender"}}, status=403 if xml else 400)
            if service == "sagemaker" and operation.startswith("Describe") and not self._settling:
                # A person waiting on a job: time passes, and the platform runs what is pending.
                self.run_until_idle()
        try:
            if service == "cloudformation" and operation == "DescribeStacks":
                return _response(self.cloudformation.describe_stacks(params))
            if service == "cloudformation" and operation == "UpdateStack":
                return _response(self.cloudformation.update_stack(params, call["principal"]))
            if service == "sagemaker" and operation == "UpdateEndpoint":
                return _response(self._update_endpoint(params))
            if (
                service == "sagemaker-runtime"
                and operation == "InvokeEndpoint"
                and self.hosting.hosts(params["EndpointName"])
            ):
                return _response(self.hosting.invoke(params))
        except StackError as error:
            return _response({"Error": {"Code": error.code, "Message": str(error), "Type": "Sender"}}, status=400)
        except ClientError as error:
            return _response(error.response, status=error.response["ResponseMetadata"].get("HTTPStatusCode", 400))
        return None

    def _people(self) -> set[str]:
        """The roles people work as (the data scientists', in Studio or the notebook): ARNs."""
        from permissions.people import PERSONS

        if not any(stack.name.endswith("-Studio") for stack in self.cloudformation.stacks.values()):
            return set()
        studio = self.stack("Studio")
        resources = studio.template["Resources"]
        return {
            physical.attributes["Arn"]
            for logical_id, physical in studio.physical.items()
            if resources[logical_id]["Type"] == "AWS::IAM::Role" and logical_id.startswith(PERSONS)
        }

    def _refused(
        self, principal: str, source_identity: str | None, service: str, operation: str, params: Mapping[str, Any]
    ) -> str | None:
        """Why AWS would refuse a person's request, from the deployed policies and the real
        evaluator (None: allowed). moto enforces no policy; the platform's own requests are
        proven after the fact (permissions/), but a person's client reacts to a refusal (the
        SDK reads IAM and lists the buckets before a job, and carries on when refused), so the
        twin refuses what AWS would refuse, as AWS does, with AccessDenied."""
        from permissions.actions import Request
        from permissions.calls import requests_of
        from permissions.policies import collect
        from permissions.proof import Proof, where_of

        policies = collect(self)
        call = {
            "principal": principal,
            "service": service,
            "operation": operation,
            "params": dict(params),
            "source_identity": source_identity,
        }
        requests = [r for r in requests_of(call, where_of(self, policies)) if isinstance(r, Request)]
        if not requests:  # nothing the map can name: the proof reports it as unknown
            return None
        answers = Proof(policies, requests, account=self.account).evaluate().answers
        denied = [a for a in answers if a.decision != "Allowed"]
        if not denied:
            return None
        request = denied[0].request
        return (
            f"User: {principal} is not authorized to perform: {request.action} on resource: {request.resource} "
            f"({denied[0].decision})"
        )

    def _update_endpoint(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """UpdateEndpoint, which moto does not implement: the endpoint's record takes the new
        configuration and its variants. Both must exist: SageMaker refuses either name it does
        not have with a ValidationException (the API's common error; it documents only
        ResourceLimitExceeded). https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateEndpoint.html
        The caller (the stack update, as CloudFormation's handler) then has the twin serve it."""
        backend = self.sagemaker_backend()
        name, config_name = params["EndpointName"], params["EndpointConfigName"]
        endpoint = backend.endpoints.get(name)
        config = backend.endpoint_configs.get(config_name)
        if endpoint is None or config is None:
            missing = f"endpoint {name!r}" if endpoint is None else f"endpoint configuration {config_name!r}"
            raise ClientError(
                {
                    "Error": {"Code": "ValidationException", "Message": f"Could not find {missing}."},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "UpdateEndpoint",
            )
        endpoint.endpoint_config_name = config_name
        endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
        endpoint.last_modified_time = datetime.now(UTC).replace(tzinfo=None)  # naive UTC, as moto keeps it
        return {"EndpointArn": endpoint.arn}

    def _after_call(self, http_response, parsed: dict[str, Any], model, context: dict[str, Any], **_: Any) -> None:
        call = context.get("twin")
        if call is None:
            return
        service, operation, params = model.service_model.service_name, model.name, call["params"]
        error = parsed.get("Error", {}).get("Code") if http_response.status_code >= 300 else None
        self.trace.add(
            "call",
            principal=call["principal"],
            service=service,
            operation=operation,
            params=params,
            error=error,
            # the ARNs a create answers with: the proof names a created resource by them
            created={k: v for k, v in parsed.items() if k.endswith("Arn") and isinstance(v, str)} if not error else {},
            **({"source_identity": call["source_identity"]} if call["source_identity"] else {}),
        )
        if error:
            return
        if call.get("metadata") is not None:
            self._keep_metadata(params, call["metadata"])
        if service == "s3" and operation in OBJECT_CREATED and params["Bucket"] in self.s3_events:
            self._object_created(params["Bucket"], params["Key"], operation, parsed, call["principal"])
        self.jobs.after_call(service, operation, params, parsed)

    def _object_created(self, bucket: str, key: str, operation: str, parsed: Mapping[str, Any], principal: str) -> None:
        from moto.s3.models import s3_backends

        stored = s3_backends[self.account]["aws"].get_object(bucket, key)
        self._sequencer += 1
        self.put_event(
            events.s3_object_created(
                bucket=bucket,
                key=key,
                size=stored.size,
                etag=stored.etag.strip('"'),
                version_id=parsed.get("VersionId"),
                sequencer=events.sequencer(self._sequencer),
                requester=self.account if principal.startswith("arn:") or principal == "deployer" else principal,
                reason=operation,
                account=self.account,
                region=self.region,
            )
        )

    # --- what AWS checks on the way ---

    def check_role_trusts(self, role_arn: str, service: str) -> None:
        """A service can act as a role only if the role's trust policy names the service."""
        name = role_arn.rsplit("/", 1)[-1]
        with acting_as("twin"):
            document = self.client("iam").get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
        if isinstance(document, str):
            document = json.loads(document)
        for statement in document.get("Statement", []):
            services = statement.get("Principal", {}).get("Service", [])
            services = [services] if isinstance(services, str) else services
            if statement.get("Effect") == "Allow" and service in services:
                return
        raise StackError("ValidationError", f"Role {role_arn} is invalid or cannot be assumed by {service}")


def _asset_bytes(asset: FileAsset) -> bytes:
    """A file asset as is; a folder zipped as ``cdk deploy`` zips it (entries sorted, fixed times)."""
    if asset.packaging == "file":
        return asset.path.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in asset.path.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(path.relative_to(asset.path)), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _response(parsed: dict[str, Any], status: int = 200):
    parsed = {**parsed, "ResponseMetadata": {"RequestId": str(uuid.uuid4()), "HTTPStatusCode": status}}
    return AWSResponse("https://twin.local", status, {}, None), parsed
