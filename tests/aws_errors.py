"""AWS's error answers, as AWS puts them on the wire, for the handler tests against moto.

moto refuses with its own wording, sometimes with another code, and some requests it never
refuses (a second training job of a name in use). Where a test needs one of AWS's refusals, the
handler's client gets the HTTP response AWS sends instead: the status, and the body in the
service's protocol (JSON for SageMaker, query XML for CloudFormation, REST XML for S3), parsed
by botocore's own parser for that protocol, so the handler sees what it would see in AWS. The
answer is given at ``before-call``, the hook botocore's Stubber uses, so moto never sees the
refused request (at ``before-send`` every handler runs, and moto would carry it out). Every
other call still goes to moto.

The codes come from AWS's API reference; the wording from AWS's answers as SDK users have
reported them, each constructor naming its source (where none is named, the sentence follows
the service's answers to the nearest request that has one).
"""

from __future__ import annotations

import io
import json
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from xml.sax.saxutils import escape

from botocore.awsrequest import AWSResponse
from botocore.endpoint import convert_to_response_dict
from botocore.exceptions import ClientError
from botocore.parsers import create_parser

REQUEST_ID = "5a3f2c1e-7b9d-4e8f-a6c2-0d1e2f3a4b5c"
OTHER_WORDING = "An answer worded unlike AWS's, to show that nothing reads the wording."


@dataclass(frozen=True)
class AwsError:
    code: str
    message: str
    status: int = 400
    fields: tuple[tuple[str, str], ...] = ()  # further members of the error, e.g. S3's Condition

    def reworded(self) -> AwsError:
        """The same error (code, status) with a message AWS never sends."""
        return replace(self, message=OTHER_WORDING)


Rule = Callable[[Mapping[str, Any]], AwsError | None]


class Answers:
    """The AWS errors one client gets, by operation: a rule sees the call's parameters and
    returns the error to answer with, or None to let moto answer. A rule set again replaces
    the one before (fixtures set AWS's behaviour, a test changes one operation's)."""

    def __init__(self, client) -> None:
        self.service_model = client.meta.service_model
        self.endpoint_url = client.meta.endpoint_url
        self.events = client.meta.events
        self.rules: dict[str, Rule] = {}
        self._params: dict[str, Mapping[str, Any]] = {}

    @classmethod
    def of(cls, client) -> Answers:
        """The client's answers (one set per client)."""
        if client not in _ANSWERS:
            _ANSWERS[client] = cls(client)
        return _ANSWERS[client]

    def on(self, operation: str, rule: Rule) -> None:
        if operation not in self.rules:
            service = self.service_model.service_id.hyphenize()
            self.events.register(f"provide-client-params.{service}.{operation}", self._keep(operation))
            self.events.register_first(f"before-call.{service}.{operation}", self._answer(operation))
        self.rules[operation] = rule

    def _keep(self, operation: str):
        def keep(params: Mapping[str, Any], **_: Any) -> None:
            self._params[operation] = dict(params)

        return keep

    def _answer(self, operation: str):
        def answer(model, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
            error = self.rules[operation](self._params[operation])
            if error is None:
                return None
            http = wire(self.service_model, self.endpoint_url, error)
            parsed = create_parser(self.service_model.protocol).parse(
                convert_to_response_dict(http, model), model.output_shape
            )
            return http, parsed

        return answer


_ANSWERS: weakref.WeakKeyDictionary[Any, Answers] = weakref.WeakKeyDictionary()


def always(error: AwsError) -> Rule:
    return lambda params: error


def wire(service_model, url: str, error: AwsError) -> AWSResponse:
    """The HTTP response AWS sends for ``error`` in the service's protocol."""
    protocol = service_model.protocol
    if protocol == "json":
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": REQUEST_ID}
        body = json.dumps({"__type": error.code, "Message": error.message, **dict(error.fields)})
    elif protocol == "query":
        namespace = f"http://{service_model.endpoint_prefix}.amazonaws.com/doc/{service_model.api_version}/"
        headers = {"Content-Type": "text/xml", "x-amzn-RequestId": REQUEST_ID}
        body = (
            f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type><Code>{error.code}</Code>'
            f"<Message>{escape(error.message)}</Message></Error><RequestId>{REQUEST_ID}</RequestId></ErrorResponse>"
        )
    elif protocol == "rest-xml":
        headers = {"Content-Type": "application/xml", "x-amz-request-id": REQUEST_ID}
        fields = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in error.fields)
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{error.code}</Code>'
            f"<Message>{escape(error.message)}</Message>{fields}<RequestId>{REQUEST_ID}</RequestId>"
            "<HostId>aGVsbG8gZnJvbSB0aGUgdGVzdHM=</HostId></Error>"
        )
    else:
        raise ValueError(f"no wire format for the {protocol} protocol here")
    return AWSResponse(url, error.status, headers, _Raw(body.encode()))


class _Raw(io.BytesIO):
    """The raw body botocore reads an AWSResponse's content from."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        while chunk := self.read(8192):
            yield chunk


def exists(describe: Callable[[], Any]) -> bool:
    """Whether moto has the resource (``describe`` is a call on a client without answers)."""
    try:
        describe()
        return True
    except ClientError:
        return False


# --- SageMaker (JSON protocol) ---------------------------------------------------------------------
# Codes: https://docs.aws.amazon.com/sagemaker/latest/APIReference/ (each operation's Errors
# section) and CommonErrors.html for ValidationException.


def training_job_not_found() -> AwsError:
    # DescribeTrainingJob answers the common code, not the documented ResourceNotFound:
    # https://github.com/aws/aws-sdk/issues/165, https://github.com/boto/boto3/issues/2808
    return AwsError("ValidationException", "Requested resource not found.")


def tuning_job_not_found(name: str) -> AwsError:
    # https://github.com/aws/amazon-sagemaker-examples/issues/1540
    return AwsError("ResourceNotFound", f"Amazon SageMaker can't find a tuning job called {name}. Type another name.")


def transform_job_not_found(name: str) -> AwsError:
    # DescribeTransformJob, like DescribeProcessingJob, answers the common code:
    # https://github.com/aws-controllers-k8s/community/issues/431
    return AwsError("ValidationException", f"Could not find requested job with name {name}")


def training_job_name_taken(arn: str, code: str = "ResourceInUse") -> AwsError:
    # https://github.com/aws/amazon-sagemaker-examples/pull/3108 (ResourceInUse, as documented; the
    # handler takes the same sentence under the common ValidationException alike)
    return AwsError(
        code,
        "Training job names must be unique within an AWS account and region, and a training job "
        f"with this name already exists ({arn})",
    )


def tuning_job_name_taken(name: str) -> AwsError:
    # https://github.com/aws/amazon-sagemaker-examples/pull/3353
    return AwsError(
        "ResourceInUse", f"A hyperparameter tuning job with the name, {name}, already exists. Choose a different name."
    )


def transform_job_name_taken(arn: str) -> AwsError:
    # ResourceInUse as API_CreateTransformJob.html documents; the sentence is the training job's,
    # worded for a transform job.
    return AwsError(
        "ResourceInUse",
        "Transform job names must be unique within an AWS account and region, and a transform job "
        f"with this name already exists ({arn})",
    )


def model_exists(arn: str) -> AwsError:
    # CreateModel documents no such error; SageMaker answers the common code (as the SageMaker
    # Python SDK's own handling of it shows).
    return AwsError("ValidationException", f'Cannot create already existing model "{arn}".')


def model_not_found(arn: str) -> AwsError:
    # a request naming a model SageMaker does not have (CreateTransformJob, CreateEndpointConfig)
    return AwsError("ValidationException", f'Could not find model "{arn}".')


def access_denied(role: str, action: str, arn: str) -> AwsError:
    # IAM's refusal as JSON-protocol services pass it on
    return AwsError(
        "AccessDeniedException",
        f"User: {role} is not authorized to perform: {action} on resource: {arn} "
        f"because no identity-based policy allows the {action} action",
    )


def sagemaker_as_aws(client, truth, account: str, region: str) -> Answers:
    """SageMaker's answers where moto's differ, for the calls the handlers make: a Describe* of a
    name moto does not have, and a Create* of a name moto has (moto would accept it). ``truth``
    is a client without answers, asked what moto holds."""
    arn = f"arn:aws:sagemaker:{region}:{account}"

    def training_job(name: str) -> bool:
        return exists(lambda: truth.describe_training_job(TrainingJobName=name))

    def tuning_job(name: str) -> bool:
        return exists(lambda: truth.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name))

    def transform_job(name: str) -> bool:
        return exists(lambda: truth.describe_transform_job(TransformJobName=name))

    def model(name: str) -> bool:
        return exists(lambda: truth.describe_model(ModelName=name))

    def create_transform_job(p: Mapping[str, Any]) -> AwsError | None:
        if transform_job(p["TransformJobName"]):
            return transform_job_name_taken(f"{arn}:transform-job/{p['TransformJobName'].lower()}")
        if not model(p["ModelName"]):
            return model_not_found(f"{arn}:model/{p['ModelName'].lower()}")
        return None

    answers = Answers.of(client)
    answers.on(
        "DescribeTrainingJob", lambda p: None if training_job(p["TrainingJobName"]) else training_job_not_found()
    )
    answers.on(
        "DescribeHyperParameterTuningJob",
        lambda p: (
            None
            if tuning_job(p["HyperParameterTuningJobName"])
            else tuning_job_not_found(p["HyperParameterTuningJobName"])
        ),
    )
    answers.on(
        "DescribeTransformJob",
        lambda p: None if transform_job(p["TransformJobName"]) else transform_job_not_found(p["TransformJobName"]),
    )
    answers.on(
        "CreateTrainingJob",
        lambda p: (
            training_job_name_taken(f"{arn}:training-job/{p['TrainingJobName'].lower()}")
            if training_job(p["TrainingJobName"])
            else None
        ),
    )
    answers.on(
        "CreateHyperParameterTuningJob",
        lambda p: (
            tuning_job_name_taken(p["HyperParameterTuningJobName"])
            if tuning_job(p["HyperParameterTuningJobName"])
            else None
        ),
    )
    answers.on("CreateTransformJob", create_transform_job)
    answers.on(
        "CreateModel",
        lambda p: model_exists(f"{arn}:model/{p['ModelName'].lower()}") if model(p["ModelName"]) else None,
    )
    return answers


# --- CloudFormation (query protocol) ---------------------------------------------------------------
# UpdateStack refuses a busy stack and an update with nothing to change with the common code
# ValidationError: https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/CommonErrors.html


def stack_busy(stack_id: str, status: str) -> AwsError:
    return AwsError("ValidationError", f"Stack:{stack_id} is in {status} state and can not be updated.")


NO_UPDATES = AwsError("ValidationError", "No updates are to be performed.")


# --- S3 (REST XML) ---------------------------------------------------------------------------------
# A PutObject with If-None-Match: * that does not write:
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html and
# https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList

PRECONDITION_FAILED = AwsError(
    "PreconditionFailed",
    "At least one of the pre-conditions you specified did not hold",
    status=412,
    fields=(("Condition", "If-None-Match"),),
)
CONDITIONAL_REQUEST_CONFLICT = AwsError(
    "ConditionalRequestConflict",
    "A conflicting operation occurred. If using PutObject you can retry the request. If using multipart "
    "upload you should initiate another CreateMultipartUpload request and re-upload each part.",
    status=409,
)
