"""The functions that train, register and batch-transform, each with exactly the rights its
handler needs. Every SageMaker create a function may make carries the stage-tag condition
(``aws:RequestTag/ml-platform:stage``), so its jobs and models are always the stage's own.

Each is a construct whose :class:`EventFunction` is its ``Default`` child, so the function's
resources (its log group and dead-letter queue among them) keep the logical ids they had when
the stack built them itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct
from constructs import nag_acknowledgements as nag
from constructs.event_function import EventFunction, FunctionDefaults, object_created
from constructs.logical_ids import logical_id
from constructs.model_registry import ModelRegistry
from constructs.pass_role import grant_pass_role
from constructs.secure_bucket import SecureBucket

from config.stage import TrainingConfig
from etl.platform_runtime import STAGE_TAG

JOB_STATES = ["Completed", "Failed", "Stopped"]
REGISTRY_REASON = (
    "The platform's model package groups are named <stage prefix>-<dataset>; the packages are versions inside them."
)
JOB_ARN_REASON = (
    "Job, model and package names are made per dataset and run at run time; Create actions are "
    "limited by a condition to requests tagged with this stage."
)

SAGEMAKER = "sagemaker.amazonaws.com"  # the service the functions pass the jobs' role to
SCORING_MANIFEST = "scores.manifest"  # lambda/register_model: a scoring job's data source, beside the model
# How often register_model looks for ended AutoML jobs: SageMaker sends no event when one ends.
AUTOPILOT_POLL = Duration.minutes(10)


@dataclass(frozen=True, kw_only=True)
class JobPlacement:
    """Where and as whom the platform's SageMaker jobs and models run."""

    role: iam.IRole
    key: kms.IKey
    subnets: str  # JSON list of subnet ids
    security_groups: str  # JSON list of security group ids
    stage: str

    @property
    def environment(self) -> dict[str, str]:
        """The variables a function that starts jobs or creates models reads them from."""
        return {
            "ROLE_ARN": self.role.role_arn,
            "KMS_KEY_ARN": self.key.key_arn,
            "SUBNETS": self.subnets,
            "SECURITY_GROUPS": self.security_groups,
            "STAGE": self.stage,
        }


@dataclass(frozen=True, kw_only=True)
class ModelFunctionProps:
    """What the model functions stand on: where their jobs run, the registry, the buckets and
    their layout, the dataset specs (as assets) and the algorithms' images. Each function's
    construct sets its own environment variables from these, the names its handler's
    ``Settings`` reads (tests/test_function_settings.py holds the two together)."""

    defaults: FunctionDefaults
    placement: JobPlacement
    registry: ModelRegistry
    data: SecureBucket
    artifacts: SecureBucket
    prepared_prefix: str
    batch_input_prefix: str
    batch_output_prefix: str
    datasets: list[str]
    spec_uris: str  # JSON {dataset: s3:// URI of its spec asset}
    spec_objects: list[str]  # the spec assets' object ARNs
    training_images: str  # JSON {algorithm: image URI}, to train with
    serving_images: str  # JSON {algorithm: image URI}, to serve with


def stage_tagged(stage: str) -> dict[str, dict[str, str]]:
    """The condition on every SageMaker create: the request tags the resource with the stage."""
    return {"StringEquals": {f"aws:RequestTag/{STAGE_TAG}": stage}}


def sagemaker_arn(scope: Construct, resource: str) -> str:
    stack = Stack.of(scope)
    return f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:{resource}"


def _acknowledge(function: EventFunction, reasons: dict[str, list[str]]) -> None:
    nag.acknowledge_wildcards(
        function.role.node.find_child("DefaultPolicy"),
        reasons,
    )


def _nag(scope: Construct, *resources: str) -> list[str]:
    return ["Resource::" + nag.nag_arn(Stack.of(scope), "sagemaker", resource) for resource in resources]


class StartTraining(Construct):
    """Prepared data (a run's ``_SUCCESS``) starts a training or tuning job."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: ModelFunctionProps,
        source_uri: str,
        training: TrainingConfig,
        profiler_rule: dict[str, Any],
    ) -> None:
        """``profiler_rule``: Debugger's ProfilerReport rule as CreateTrainingJob takes it, or empty
        where the stage profiles nothing."""
        super().__init__(scope, construct_id)
        placement, data, prepared_prefix = props.placement, props.data, props.prepared_prefix
        self.function = EventFunction(
            self,
            "Default",
            handler_folder="start_training",
            description="start_training: prepared data starts a training or tuning job",
            event_pattern=object_created(data.bucket, {"wildcard": f"{prepared_prefix}*/*/_SUCCESS"}),
            environment={
                **placement.environment,
                "DATA_BUCKET": data.bucket.bucket_name,
                "PREPARED_PREFIX": prepared_prefix,
                "ARTIFACTS_BUCKET": props.artifacts.bucket.bucket_name,
                "SOURCE_URI": source_uri,
                "IMAGES": props.training_images,
                "DATASET_SPECS": props.spec_uris,
                "MANAGED_SPOT": "true" if training.managed_spot else "false",
                "MAX_WAIT_MINUTES": str(training.max_wait_minutes),
                "VOLUME_SIZE_GB": str(training.volume_size_gb),
                "PROFILER_RULE": Stack.of(self).to_json_string(profiler_rule),
            },
            defaults=props.defaults,
            shared_modules=("dataset_spec.py",),
        )
        function = self.function.function
        kinds = ("training-job/*", "hyper-parameter-tuning-job/*", "automl-job/*")
        jobs = [sagemaker_arn(self, kind) for kind in kinds]
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:CreateHyperParameterTuningJob",
                    "sagemaker:CreateAutoMLJobV2",
                    "sagemaker:AddTags",
                ],
                resources=jobs,
                conditions=stage_tagged(placement.stage),
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:DescribeAutoMLJobV2",
                ],
                resources=jobs,
            )
        )
        grant_pass_role(placement.role, function, SAGEMAKER)
        function.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=props.spec_objects))
        data.grant_read(function, f"{prepared_prefix}*/schema.json")
        data_id = logical_id(data.bucket)
        _acknowledge(
            self.function,
            {
                JOB_ARN_REASON: _nag(self, *kinds),
                "start_training reads the schema.json of any prepared run.": [
                    f"Resource::<{data_id}.Arn>/{prepared_prefix}*/schema.json"
                ],
                nag.S3_ACTIONS_REASON: nag.S3_GRANT_ACTIONS,
            },
        )


class RegisterModel(Construct):
    """A finished training or tuning job of the stage is judged and registered; a built-in
    algorithm's model is scored (a transform job) and evaluated (the platform's evaluation job)
    first, each step started by the end of the one before."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: ModelFunctionProps,
        pass_status: str,
        source_uri: str,
        instance_type: str,
    ) -> None:
        """``source_uri``: the platform's training code (its evaluation job runs evaluate.py);
        ``instance_type``: the scoring transform job's."""
        super().__init__(scope, construct_id)
        defaults, registry, artifacts, placement = props.defaults, props.registry, props.artifacts, props.placement
        self.function = EventFunction(
            self,
            "Default",
            handler_folder="register_model",
            description="register_model: judge a finished job and register its model",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[
                    "SageMaker Training Job State Change",
                    "SageMaker HyperParameter Tuning Job State Change",
                    "SageMaker Transform Job State Change",
                ],
                # Terminal states only. Not every event carries the job's tags, so the handler
                # reads them (ListTags) and ignores jobs of other stages and teams, and transform
                # jobs that are not a scoring step of its own.
                detail={
                    "$or": [
                        {"TrainingJobStatus": JOB_STATES},
                        {"HyperParameterTuningJobStatus": JOB_STATES},
                        {"TransformJobStatus": JOB_STATES},
                    ]
                },
            ),
            environment={
                **placement.environment,
                "ARTIFACTS_BUCKET": artifacts.bucket.bucket_name,
                "GROUP_PREFIX": registry.prefix,
                "TOPIC_ARN": defaults.alarm_topic.topic_arn,
                "PASS_STATUS": pass_status,
                "IMAGES": props.serving_images,
                "TRAINING_IMAGES": props.training_images,
                "DATASET_SPECS": props.spec_uris,
                "SOURCE_URI": source_uri,
                "INSTANCE_TYPE": instance_type,
                "DATA_BUCKET": props.data.bucket.bucket_name,
                "PREPARED_PREFIX": props.prepared_prefix,
            },
            defaults=defaults,
            timeout_seconds=120,
            shared_modules=("dataset_spec.py",),
        )
        function = self.function.function
        # SageMaker sends no event when an AutoML job ends: a schedule has the function look.
        self.schedule = events.Rule(
            self,
            "AutopilotSchedule",
            description="register_model: look for ended AutoML (Autopilot) jobs of the stage",
            schedule=events.Schedule.rate(AUTOPILOT_POLL),
        )
        self.schedule.add_target(
            targets.LambdaFunction(
                function, dead_letter_queue=self.function.dead_letter_queue, retry_attempts=defaults.retry_attempts
            )
        )
        groups, packages = registry.arns()
        jobs = ["training-job/*", "hyper-parameter-tuning-job/*", "transform-job/*", "automl-job/*"]
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:DescribeTransformJob",
                    "sagemaker:DescribeAutoMLJobV2",
                    "sagemaker:ListTags",
                ],
                resources=[sagemaker_arn(self, job) for job in jobs],
            )
        )
        # ListAutoMLJobs authorizes on no resource (the Service Authorization Reference lists none).
        function.add_to_role_policy(iam.PolicyStatement(actions=["sagemaker:ListAutoMLJobs"], resources=["*"]))
        # The evaluation steps of a built-in algorithm's model: the scoring model and transform
        # job, and the evaluation job, each tagged with the stage.
        # An AutoML job it has acted on is tagged handled (with the stage's tag again, so the
        # condition holds for that AddTags too).
        made = ["model/*", "transform-job/*", "training-job/*", "automl-job/*"]
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateModel",
                    "sagemaker:CreateTransformJob",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:AddTags",
                ],
                resources=[sagemaker_arn(self, resource) for resource in made],
                conditions=stage_tagged(placement.stage),
            )
        )
        grant_pass_role(placement.role, function, SAGEMAKER)
        # CreateModelPackage makes a versioned package of a named group, which takes no tags:
        # the group (and so the stage) is in the resource's ARN.
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateModelPackage",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:ListModelPackages",
                ],
                resources=[*groups, *packages],
            )
        )
        function.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=props.spec_objects))
        # The scoring manifest names a run's validation and test files: listed, never read.
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[props.data.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{props.prepared_prefix}*"]}},
            )
        )
        artifacts.grant_read(function, "training/*")
        artifacts.grant_write(function, f"training/*/{SCORING_MANIFEST}")
        artifacts.grant_write(function, "evaluations/*")
        defaults.alarm_topic.grant_publish(function)
        artifacts_id = logical_id(artifacts.bucket)
        _acknowledge(
            self.function,
            {
                JOB_ARN_REASON: _nag(self, *jobs, "model/*"),
                REGISTRY_REASON: registry.wildcards(),
                nag.KMS_DATA_KEY_REASON: nag.KMS_GRANT_ACTIONS,  # publishing to the encrypted operators' topic
                "register_model reads the jobs' outputs under training/, writes a scoring job's manifest "
                "beside its model (training/<dataset>/<job>/) and the evaluation.json of each under "
                "evaluations/ of the artifacts bucket.": [
                    f"Resource::<{artifacts_id}.Arn>/training/*",
                    f"Resource::<{artifacts_id}.Arn>/training/*/{SCORING_MANIFEST}",
                    f"Resource::<{artifacts_id}.Arn>/evaluations/*",
                ],
                nag.S3_ACTIONS_REASON: nag.S3_GRANT_ACTIONS,
            },
        )


MANIFEST = "input.manifest"  # lambda/start_batch_transform: each job's data source, in its output folder


class StartBatchTransform(Construct):
    """A file under batch-input/<dataset>/ gets predictions from the dataset's approved model. The
    function writes each job's manifest (the one object it reads) into the job's output folder
    under batch-output/; the jobs' execution role reads it there."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: ModelFunctionProps,
        instance_type: str,
        instance_count: int,
    ) -> None:
        super().__init__(scope, construct_id)
        defaults, placement, registry, data = props.defaults, props.placement, props.registry, props.data
        self.function = EventFunction(
            self,
            "Default",
            handler_folder="start_batch_transform",
            description="start_batch_transform: a file under batch-input/ gets predictions",
            event_pattern=object_created(data.bucket, {"prefix": props.batch_input_prefix}),
            environment={
                **placement.environment,
                "DATA_BUCKET": data.bucket.bucket_name,
                "BATCH_INPUT_PREFIX": props.batch_input_prefix,
                "BATCH_OUTPUT_PREFIX": props.batch_output_prefix,
                "GROUP_PREFIX": registry.prefix,
                "DATASETS": json.dumps(sorted(props.datasets)),
                "TOPIC_ARN": defaults.alarm_topic.topic_arn,
                "INSTANCE_TYPE": instance_type,
                "INSTANCE_COUNT": str(instance_count),
            },
            defaults=defaults,
        )
        function = self.function.function
        groups, packages = registry.arns()
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=[*groups, *packages])
        )
        made = [sagemaker_arn(self, "model/*"), sagemaker_arn(self, "transform-job/*")]
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:CreateModel", "sagemaker:CreateTransformJob", "sagemaker:AddTags"],
                resources=made,
                conditions=stage_tagged(placement.stage),
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeTransformJob"], resources=[made[1]])
        )
        grant_pass_role(placement.role, function, SAGEMAKER)
        defaults.alarm_topic.grant_publish(function)
        # The manifests: written by the function (under the bucket's key), read by the jobs.
        manifests = f"{props.batch_output_prefix}*/{MANIFEST}"
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[data.bucket.arn_for_objects(manifests)])
        )
        if data.bucket.encryption_key is not None:
            data.bucket.encryption_key.grant(function, "kms:GenerateDataKey")
        placement.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[data.bucket.arn_for_objects(manifests)])
        )
        manifest_items = [f"Resource::<{logical_id(data.bucket)}.Arn>/{manifests}"]
        manifest_reason = (
            "Each transform job's manifest is written to, and read from, the job's own output folder "
            f"batch-output/<dataset>/<input key>/<job>/{MANIFEST}, made per input and job."
        )
        _acknowledge(
            self.function,
            {
                JOB_ARN_REASON: _nag(self, "model/*", "transform-job/*"),
                nag.KMS_DATA_KEY_REASON: nag.KMS_GRANT_ACTIONS,  # publishing to the encrypted operators' topic
                REGISTRY_REASON: registry.wildcards(),
                manifest_reason: manifest_items,
            },
        )
        nag.acknowledge_wildcards(placement.role.node.find_child("DefaultPolicy"), {manifest_reason: manifest_items})
