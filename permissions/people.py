"""What a data scientist asks of SageMaker from Studio, and what the guardrails must refuse.

A person's requests are not on the chain, so the twin never makes them; they are written here as
the SageMaker API receives them (the parameters the SageMaker Python SDK sends when the platform's
defaults fill in the role, subnets, security group, network isolation, inter-container encryption
and keys), with the names the twin deployed. ``inside`` is what must be allowed; ``outside``
changes one thing at a time and names the request that must then be refused.
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateProcessingJob.html
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModel.html
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from etl.platform_runtime import TAG_PREFIX

if TYPE_CHECKING:
    from local.platform import Twin

SANDBOX = "sandbox/alice/"
# The data scientists' execution role, by logical id: Studio's shared role, the notebook's, a user's.
PERSONS = ("DataScientistRole", "NotebookRole", "Role")
INSTANCE = "ml.m5.large"


@dataclass(frozen=True)
class Names:
    """What the twin deployed that a person's requests name."""

    person: str  # the data scientists' (shared) execution role
    job_role: str  # what their jobs and models run as
    execution_role: str  # the platform's, which they may not pass
    subnets: list[str]
    security_group: str
    key: str
    bucket: str
    platform_model: str  # a model named like the platform's
    image: str  # the SageMaker-owned XGBoost image of the twin's region, from the SDK's tables
    prepared: str | None  # an object of a prepared run, which a person's job reads (None before any run)

    @classmethod
    def of(cls, twin: Twin) -> Names | None:
        """The names, or None where the stage has no workspace."""
        if not any(s.name.endswith("-Studio") for s in twin.cloudformation.stacks.values()):
            return None
        studio = twin.stack("Studio").template["Resources"]
        roles = [lid for lid, r in studio.items() if r["Type"] == "AWS::IAM::Role" and not lid.startswith("JobRole")]
        person = next(p for p in PERSONS for lid in roles if lid.startswith(p))

        def arn(stack: str, prefix: str, kind: str) -> str:
            deployed = twin.stack(stack)
            resources = deployed.template["Resources"]
            [found] = [
                p for lid, p in deployed.physical.items() if lid.startswith(prefix) and resources[lid]["Type"] == kind
            ]
            return found.attributes["Arn"]

        network = twin.stack("Network")
        subnets = [
            p.ref
            for lid, p in network.physical.items()
            if network.template["Resources"][lid]["Type"] == "AWS::EC2::Subnet"
        ]
        prefix = twin.stack("Data").name.lower().removesuffix("-data")
        bucket = twin.resource("Data", "DataBucket", "AWS::S3::Bucket")
        return cls(
            person=arn("Studio", person, "AWS::IAM::Role"),
            job_role=arn("Studio", "JobRole", "AWS::IAM::Role"),
            execution_role=arn("Training", "ExecutionRole", "AWS::IAM::Role"),
            subnets=sorted(subnets),
            security_group=twin.resource("Training", "JobSecurityGroup", "AWS::EC2::SecurityGroup"),
            key=arn("Data", "PlatformKey", "AWS::KMS::Key"),
            bucket=bucket,
            platform_model=f"{prefix}-bank-marketing-7",
            image=_xgboost_image(twin.region),
            prepared=_prepared_object(twin, bucket),
        )


def inside(names: Names) -> list[dict[str, Any]]:
    """A person's jobs and models inside the guardrails, as recorded calls."""
    vpc = {"Subnets": names.subnets, "SecurityGroupIds": [names.security_group]}
    output = f"s3://{names.bucket}/{SANDBOX}"
    training = {
        "TrainingJobName": "alice-xgboost-1",
        "RoleArn": names.job_role,
        "AlgorithmSpecification": {"TrainingImage": names.image, "TrainingInputMode": "File"},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{names.bucket}/prepared/bank-marketing/",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": output + "models/", "KmsKeyId": names.key},
        "ResourceConfig": {
            "InstanceType": INSTANCE,
            "InstanceCount": 2,
            "VolumeSizeInGB": 30,
            "VolumeKmsKeyId": names.key,
        },
        "VpcConfig": vpc,
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
        "Tags": [{"Key": "project", "Value": "churn"}],
    }
    processing = {
        "ProcessingJobName": "alice-processing-1",
        "RoleArn": names.job_role,
        "AppSpecification": {"ImageUri": names.image},
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceType": INSTANCE,
                "InstanceCount": 1,
                "VolumeSizeInGB": 30,
                "VolumeKmsKeyId": names.key,
            }
        },
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "out",
                    "S3Output": {
                        "S3Uri": output + "out/",
                        "LocalPath": "/opt/ml/processing/out",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ],
            "KmsKeyId": names.key,
        },
        "NetworkConfig": {
            "VpcConfig": vpc,
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": True,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
    model = {
        "ModelName": "alice-xgboost-1",
        "ExecutionRoleArn": names.job_role,
        "PrimaryContainer": {
            "Image": names.image,
            "ModelDataUrl": output + "models/alice-xgboost-1/output/model.tar.gz",
        },
        "VpcConfig": vpc,
        "EnableNetworkIsolation": True,
    }
    transform = {
        "TransformJobName": "alice-xgboost-1-batch",
        "ModelName": "alice-xgboost-1",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": output + "batch/"}},
            "ContentType": "text/csv",
        },
        "TransformOutput": {"S3OutputPath": output + "batch-out/", "KmsKeyId": names.key},
        "TransformResources": {"InstanceType": INSTANCE, "InstanceCount": 1, "VolumeKmsKeyId": names.key},
    }
    # What SageMaker then does as the job role: reads the channel, writes the model to the sandbox.
    # https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html#sagemaker-roles-createtrainingjob-perms
    job = {"principal": names.job_role, "service": "s3", "error": None, "by": "alice-xgboost-1 (permissions/people.py)"}
    model_key = f"{SANDBOX}models/alice-xgboost-1/output/model.tar.gz"
    reads = (
        []
        if names.prepared is None
        else [{**job, "operation": "GetObject", "params": {"Bucket": names.bucket, "Key": names.prepared}}]
    )
    return [
        _call(names, "CreateTrainingJob", training),
        _call(names, "CreateProcessingJob", processing),
        _call(names, "CreateModel", model),
        _call(names, "CreateTransformJob", transform),
        *reads,
        {**job, "operation": "ListObjectsV2", "params": {"Bucket": names.bucket, "Prefix": "prepared/bank-marketing/"}},
        {
            **job,
            "operation": "PutObject",
            "params": {"Bucket": names.bucket, "Key": model_key, "SSEKMSKeyId": names.key},
        },
    ]


@dataclass(frozen=True)
class Outside:
    """One guardrail left: the call, and the action whose request must be refused."""

    what: str
    call: dict[str, Any]
    refused: str


def outside(names: Names) -> list[Outside]:
    training, processing, model, transform = inside(names)[:4]
    other_key = names.key.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"

    def changed(call: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
        call = copy.deepcopy(call)
        change(call["params"])
        return call

    create_training, create_model = "sagemaker:CreateTrainingJob", "sagemaker:CreateModel"
    create_transform = "sagemaker:CreateTransformJob"
    return [
        Outside("a training job outside the VPC", changed(training, lambda p: p.pop("VpcConfig")), create_training),
        Outside(
            "a training job in another subnet",
            changed(training, lambda p: p["VpcConfig"].update(Subnets=["subnet-0123456789abcdef0"])),
            create_training,
        ),
        Outside(
            "a training job in another security group",
            changed(training, lambda p: p["VpcConfig"].update(SecurityGroupIds=["sg-0123456789abcdef0"])),
            create_training,
        ),
        Outside(
            "a training job without network isolation",
            changed(training, lambda p: p.update(EnableNetworkIsolation=False)),
            create_training,
        ),
        Outside(
            "a training job without inter-container encryption",
            changed(training, lambda p: p.pop("EnableInterContainerTrafficEncryption")),
            create_training,
        ),
        Outside(
            "a training job whose volumes are not under the platform key",
            changed(training, lambda p: p["ResourceConfig"].pop("VolumeKmsKeyId")),
            create_training,
        ),
        Outside(
            "a training job whose model is written under another key",
            changed(training, lambda p: p["OutputDataConfig"].update(KmsKeyId=other_key)),
            create_training,
        ),
        Outside(
            "a training job run as the platform's execution role",
            changed(training, lambda p: p.update(RoleArn=names.execution_role)),
            "iam:PassRole",
        ),
        Outside(
            "a training job carrying the platform's tag keys",
            changed(training, lambda p: p["Tags"].append({"Key": f"{TAG_PREFIX}stage", "Value": "dev"})),
            create_training,
        ),
        Outside(
            "a processing job without network isolation",
            changed(processing, lambda p: p["NetworkConfig"].pop("EnableNetworkIsolation")),
            "sagemaker:CreateProcessingJob",
        ),
        Outside("a model outside the VPC", changed(model, lambda p: p.pop("VpcConfig")), create_model),
        Outside(
            "a model named like the platform's",
            changed(model, lambda p: p.update(ModelName=names.platform_model)),
            create_model,
        ),
        Outside(
            "a transform job with the platform's model (it runs as the platform's execution role)",
            changed(transform, lambda p: p.update(ModelName=names.platform_model)),
            create_transform,
        ),
        Outside(
            "a transform job whose output is not under the platform key",
            changed(transform, lambda p: p["TransformOutput"].pop("KmsKeyId")),
            create_transform,
        ),
    ]


def _prepared_object(twin: Twin, bucket: str) -> str | None:
    from local.trace import acting_as

    with acting_as("twin"):
        listed = twin.client("s3").list_objects_v2(Bucket=bucket, Prefix="prepared/", MaxKeys=1)
    return next((o["Key"] for o in listed.get("Contents", [])), None)


def _xgboost_image(region: str) -> str:
    from constructs.sagemaker_images import registries

    from stacks.training import IMAGES

    accounts, repository = registries(IMAGES["xgboost"])
    return f"{accounts[region]}.dkr.ecr.{region}.amazonaws.com/{repository}:{IMAGES['xgboost'].version}"


def _call(names: Names, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "principal": names.person,
        "service": "sagemaker",
        "operation": operation,
        "params": params,
        "error": None,
        "by": f"a data scientist in Studio (permissions/people.py): sagemaker {operation}",
        "source_identity": SANDBOX.split("/")[1],  # Studio's USER_PROFILE_NAME source identity: alice
    }


def refusals(twin: Twin, policies: Any) -> list[tuple[Outside, str]]:
    """Each guardrail left, with the decision on the request that must be refused."""
    from permissions.actions import Request
    from permissions.calls import requests_of
    from permissions.proof import Proof, where_of

    names = Names.of(twin)
    if names is None:
        return []
    where = where_of(twin, policies)
    cases = outside(names)
    requests, asked_by = [], []  # each request, and the case that asks it
    for number, case in enumerate(cases):
        asked = [r for r in requests_of(case.call, where) if isinstance(r, Request) and r.action == case.refused]
        requests += asked
        asked_by += [number] * len(asked)
    proof = Proof(policies, requests, account=twin.account).evaluate()  # answers in the requests' order
    decisions: dict[int, list[str]] = {}
    for number, answer in zip(asked_by, proof.answers, strict=True):
        decisions.setdefault(number, []).append(answer.decision)
    return [(case, ",".join(decisions.get(number, ["not asked"]))) for number, case in enumerate(cases)]
