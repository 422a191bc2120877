"""TrainingStack: the SageMaker execution role, model registry, and the Lambdas that train,
register and batch-transform when data lands in S3."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct
from constructs.build_folder import build_folder
from constructs.event_function import EventFunction, object_created
from constructs.nag_acknowledgements import (
    KMS_DATA_KEY_REASON,
    KMS_GRANT_ACTIONS,
    S3_ACTIONS_REASON,
    S3_GRANT_ACTIONS,
    acknowledge_grant_policy,
    acknowledge_wildcards,
    nag_arn,
)
from constructs.sagemaker_images import Image, SageMakerImages
from constructs.secure_bucket import SecureBucket
from constructs.workload_security_group import WorkloadSecurityGroup

from config import StageConfig
from stacks.data import BATCH_INPUT_PREFIX, BATCH_OUTPUT_PREFIX, CAPTURE_PREFIX, PREPARED_PREFIX
from stacks.etl import ETL_DIR, dataset_specs

ROOT = Path(__file__).resolve().parents[1]
TRAINING_CODE = ROOT / "training_jobs"
SOURCE_FILES = ("train.py", "inference.py", "schema_encoder.py")
XGBOOST_VERSION = "3.2-0"  # the container of xgboost 3.2, as requirements-dev.txt pins locally
IMAGES = {
    "xgboost": Image("xgboost", XGBOOST_VERSION, "training"),
    "xgboost-inference": Image("xgboost", XGBOOST_VERSION, "inference"),
    "linear-learner": Image("linear-learner", "1"),
    "knn": Image("knn", "1"),
}
JOB_STATES = ["Completed", "Failed", "Stopped"]
SAGEMAKER_VPC_REASON = (
    "SageMaker creates and deletes the network interfaces of VPC jobs and models with these EC2 "
    "actions; EC2's Describe actions have no resource-level permissions."
)
SAGEMAKER_LOGS_REASON = "SageMaker jobs and endpoints log to groups they create under /aws/sagemaker/."
SAGEMAKER_METRICS_REASON = (
    "cloudwatch:PutMetricData has no resource-level permissions; a condition limits it to the "
    "/aws/sagemaker/ namespaces."
)
REGISTRY_REASON = (
    "The platform's model package groups are named <stage prefix>-<dataset>; the packages are versions inside them."
)
JOB_ARN_REASON = (
    "Job, model and package names are made per dataset and run at run time; Create actions are "
    "limited by a condition to requests tagged with this stage."
)


def source_tarball() -> Path:
    """training_jobs/ as the sourcedir.tar.gz SageMaker's script mode expects; byte-stable, so
    the asset's hash changes only with the code."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in SOURCE_FILES:
            data = (TRAINING_CODE / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            archive.addfile(info, io.BytesIO(data))
    target = build_folder() / "sourcedir.tar.gz"
    target.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
    return target


class TrainingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        key: kms.IKey,
        data: SecureBucket,
        artifacts: SecureBucket,
        alarm_topic: sns.ITopic,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        specs: dict[str, Path] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        prefix = config.stack_prefix
        self.group_prefix = prefix.lower()
        specs = dataset_specs() if specs is None else specs
        self.images = SageMakerImages(self, "Images", images=IMAGES)
        source = assets.Asset(self, "TrainingCode", path=str(source_tarball()))
        spec_assets = {name: assets.Asset(self, f"Spec-{name}", path=str(path)) for name, path in specs.items()}
        data_id = self.get_logical_id(data.bucket.node.default_child)
        artifacts_id = self.get_logical_id(artifacts.bucket.node.default_child)

        # --- what SageMaker jobs and models run as ---
        self.security_group = WorkloadSecurityGroup(
            self,
            "JobSecurityGroup",
            vpc=vpc,
            description="SageMaker jobs and models: instances of one job talk to each other; HTTPS out",
        ).security_group
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker training, tuning, transform and hosting of the ML platform",
        )
        role = self.execution_role
        data.grant_read(role, f"{PREPARED_PREFIX}*")
        data.grant_read(role, f"{BATCH_INPUT_PREFIX}*")
        data.grant_write(role, f"{BATCH_OUTPUT_PREFIX}*")
        data.grant_write(role, f"{CAPTURE_PREFIX}*")
        artifacts.grant_write(role, "training/*")
        artifacts.grant_read(role, "training/*")
        # Data keys and decryption for S3 objects and outputs; Encrypt for the job's output key.
        # https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html#sagemaker-roles-createtrainingjob-perms
        key.grant(role, "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*")
        # A job's volume key (VolumeKmsKeyId) is used through a grant the execution role makes
        # for the instance's EBS volume: https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:CreateGrant"],
                resources=[key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[f"arn:{self.partition}:s3:::{source.s3_bucket_name}/{source.s3_object_key}"],
            )
        )
        # The code channel is an S3Prefix channel: SageMaker lists its prefix before it downloads.
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_S3DataSource.html
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[f"arn:{self.partition}:s3:::{source.s3_bucket_name}"],
                conditions={"StringEquals": {"s3:prefix": source.s3_object_key}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:/aws/sagemaker/*"],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:CreateNetworkInterfacePermission",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DeleteNetworkInterfacePermission",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                ],
                resources=["*"],
            )
        )
        acknowledge_grant_policy(role)
        acknowledge_wildcards(
            role.node.find_child("DefaultPolicy"),
            {
                "The execution role reads prepared/ and batch-input/ and writes batch-output/ and "
                "capture/ of the data bucket, and the models under training/ of the artifacts bucket, "
                "for any dataset.": [
                    f"Resource::<{data_id}.Arn>/{PREPARED_PREFIX}*",
                    f"Resource::<{data_id}.Arn>/{BATCH_INPUT_PREFIX}*",
                    f"Resource::<{data_id}.Arn>/{BATCH_OUTPUT_PREFIX}*",
                    f"Resource::<{data_id}.Arn>/{CAPTURE_PREFIX}*",
                    f"Resource::<{artifacts_id}.Arn>/training/*",
                ],
                SAGEMAKER_LOGS_REASON: ["Resource::" + nag_arn(self, "logs", "log-group:/aws/sagemaker/*")],
                f"{SAGEMAKER_METRICS_REASON} {SAGEMAKER_VPC_REASON}": ["Resource::*"],
                KMS_DATA_KEY_REASON: KMS_GRANT_ACTIONS,
                S3_ACTIONS_REASON: S3_GRANT_ACTIONS,
            },
        )

        # --- the model registry: one group per dataset ---
        self.model_package_groups = {
            name: sagemaker.CfnModelPackageGroup(
                self,
                f"ModelPackageGroup-{name}",
                model_package_group_name=f"{self.group_prefix}-{name}",
                model_package_group_description=f"Models of the {name} dataset ({config.name})",
            )
            for name in specs
        }

        common = {
            "key": key,
            "alarm_topic": alarm_topic,
            "vpc": vpc,
            "subnets": subnets,
            "log_retention_days": config.functions.log_retention_days,
            "reserved_concurrency": config.functions.reserved_concurrency,
            "retry_attempts": config.functions.retry_attempts,
            "retain_logs": not config.data.destroy_on_delete,
            "shared_modules": (ETL_DIR / "dataset_spec.py",),
        }
        subnet_ids = self.to_json_string(vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids)
        spec_uris = self.to_json_string({n: a.s3_object_url for n, a in spec_assets.items()})
        images = self.to_json_string(
            {
                "xgboost": self.images.uri("xgboost"),
                "linear-learner": self.images.uri("linear-learner"),
                "knn": self.images.uri("knn"),
            }
        )
        inference_images = self.to_json_string(
            {
                "xgboost": self.images.uri("xgboost-inference"),
                "linear-learner": self.images.uri("linear-learner"),
                "knn": self.images.uri("knn"),
            }
        )
        spec_objects = [f"arn:{self.partition}:s3:::{a.s3_bucket_name}/{a.s3_object_key}" for a in spec_assets.values()]
        sagemaker_arn = f"arn:{self.partition}:sagemaker:{self.region}:{self.account}"
        tagged = {"StringEquals": {"aws:RequestTag/ml-platform:stage": config.name}}

        # --- start_training ---
        self.start_training = EventFunction(
            self,
            "StartTraining",
            handler_folder="start_training",
            description="start_training: prepared data starts a training or tuning job",
            event_pattern=object_created(data.bucket, {"wildcard": f"{PREPARED_PREFIX}*/*/_SUCCESS"}),
            environment={
                "DATA_BUCKET": data.bucket.bucket_name,
                "PREPARED_PREFIX": PREPARED_PREFIX,
                "ARTIFACTS_BUCKET": artifacts.bucket.bucket_name,
                "ROLE_ARN": role.role_arn,
                "KMS_KEY_ARN": key.key_arn,
                "SUBNETS": subnet_ids,
                "SECURITY_GROUPS": self.to_json_string([self.security_group.security_group_id]),
                "SOURCE_URI": source.s3_object_url,
                "IMAGES": images,
                "DATASET_SPECS": spec_uris,
                "STAGE": config.name,
                "MANAGED_SPOT": "true" if config.training.managed_spot else "false",
                "MAX_WAIT_MINUTES": str(config.training.max_wait_minutes),
                "VOLUME_SIZE_GB": str(config.training.volume_size_gb),
            },
            **common,
        )
        function = self.start_training.function
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:CreateTrainingJob", "sagemaker:CreateHyperParameterTuningJob", "sagemaker:AddTags"],
                resources=[f"{sagemaker_arn}:training-job/*", f"{sagemaker_arn}:hyper-parameter-tuning-job/*"],
                conditions=tagged,
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeTrainingJob", "sagemaker:DescribeHyperParameterTuningJob"],
                resources=[f"{sagemaker_arn}:training-job/*", f"{sagemaker_arn}:hyper-parameter-tuning-job/*"],
            )
        )
        role.grant_pass_role(function)
        function.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=spec_objects))
        data.grant_read(function, f"{PREPARED_PREFIX}*/schema.json")
        self._acknowledge_function(
            self.start_training,
            {
                JOB_ARN_REASON: [
                    "Resource::" + nag_arn(self, "sagemaker", "training-job/*"),
                    "Resource::" + nag_arn(self, "sagemaker", "hyper-parameter-tuning-job/*"),
                ],
                "start_training reads the schema.json of any prepared run.": [
                    f"Resource::<{data_id}.Arn>/{PREPARED_PREFIX}*/schema.json"
                ],
            },
        )

        # --- register_model ---
        self.register_model = EventFunction(
            self,
            "RegisterModel",
            handler_folder="register_model",
            description="register_model: judge a finished job and register its model",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Training Job State Change", "SageMaker HyperParameter Tuning Job State Change"],
                # Terminal states only. Not every event carries the job's tags, so the handler
                # reads them (ListTags) and ignores jobs of other stages and teams.
                detail={
                    "$or": [
                        {"TrainingJobStatus": JOB_STATES},
                        {"HyperParameterTuningJobStatus": JOB_STATES},
                    ]
                },
            ),
            environment={
                "ARTIFACTS_BUCKET": artifacts.bucket.bucket_name,
                "GROUP_PREFIX": self.group_prefix,
                "TOPIC_ARN": alarm_topic.topic_arn,
                "PASS_STATUS": "PendingManualApproval" if config.hosting.manual_approval else "Approved",
                "IMAGES": inference_images,
                "DATASET_SPECS": spec_uris,
                "STAGE": config.name,
            },
            timeout_seconds=120,
            **common,
        )
        function = self.register_model.function
        groups = [f"{sagemaker_arn}:model-package-group/{self.group_prefix}-*"]
        packages = [f"{sagemaker_arn}:model-package/{self.group_prefix}-*/*"]
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:ListTags",
                ],
                resources=[f"{sagemaker_arn}:training-job/*", f"{sagemaker_arn}:hyper-parameter-tuning-job/*"],
            )
        )
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
        function.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=spec_objects))
        artifacts.grant_read(function, "training/*")
        artifacts.grant_write(function, "evaluations/*")
        alarm_topic.grant_publish(function)
        self._acknowledge_function(
            self.register_model,
            {
                JOB_ARN_REASON: [
                    "Resource::" + nag_arn(self, "sagemaker", "training-job/*"),
                    "Resource::" + nag_arn(self, "sagemaker", "hyper-parameter-tuning-job/*"),
                ],
                REGISTRY_REASON: self._registry_items(),
                "register_model reads the jobs' outputs under training/ and writes their "
                "evaluation.json under evaluations/ of the artifacts bucket.": [
                    f"Resource::<{artifacts_id}.Arn>/training/*",
                    f"Resource::<{artifacts_id}.Arn>/evaluations/*",
                ],
            },
        )

        # --- start_batch_transform ---
        self.start_batch_transform = EventFunction(
            self,
            "StartBatchTransform",
            handler_folder="start_batch_transform",
            description="start_batch_transform: a file under batch-input/ gets predictions",
            event_pattern=object_created(data.bucket, {"prefix": BATCH_INPUT_PREFIX}),
            environment={
                "DATA_BUCKET": data.bucket.bucket_name,
                "BATCH_INPUT_PREFIX": BATCH_INPUT_PREFIX,
                "BATCH_OUTPUT_PREFIX": BATCH_OUTPUT_PREFIX,
                "GROUP_PREFIX": self.group_prefix,
                "ROLE_ARN": role.role_arn,
                "KMS_KEY_ARN": key.key_arn,
                "SUBNETS": subnet_ids,
                "SECURITY_GROUPS": self.to_json_string([self.security_group.security_group_id]),
                "DATASETS": json.dumps(sorted(specs)),
                "TOPIC_ARN": alarm_topic.topic_arn,
                "STAGE": config.name,
                "INSTANCE_TYPE": config.training.batch_instance_type,
                "INSTANCE_COUNT": str(config.training.batch_instance_count),
            },
            **common,
        )
        function = self.start_batch_transform.function
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:ListModelPackages"],
                resources=[*groups, *packages],
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:CreateModel", "sagemaker:CreateTransformJob", "sagemaker:AddTags"],
                resources=[f"{sagemaker_arn}:model/*", f"{sagemaker_arn}:transform-job/*"],
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeTransformJob"], resources=[f"{sagemaker_arn}:transform-job/*"]
            )
        )
        role.grant_pass_role(function)
        alarm_topic.grant_publish(function)
        self._acknowledge_function(
            self.start_batch_transform,
            {
                JOB_ARN_REASON: [
                    "Resource::" + nag_arn(self, "sagemaker", "model/*"),
                    "Resource::" + nag_arn(self, "sagemaker", "transform-job/*"),
                ],
                REGISTRY_REASON: self._registry_items(),
            },
        )

    def _registry_items(self) -> list[str]:
        return [
            "Resource::" + nag_arn(self, "sagemaker", f"model-package-group/{self.group_prefix}-*"),
            "Resource::" + nag_arn(self, "sagemaker", f"model-package/{self.group_prefix}-*/*"),
        ]

    def _acknowledge_function(self, event_function: EventFunction, reasons: dict[str, list[str]]) -> None:
        acknowledge_wildcards(
            event_function.role.node.find_child("DefaultPolicy"),
            {KMS_DATA_KEY_REASON: KMS_GRANT_ACTIONS, S3_ACTIONS_REASON: S3_GRANT_ACTIONS, **reasons},
        )
