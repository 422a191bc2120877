"""TrainingStack: what SageMaker jobs run as, the model registry, and the functions that train,
register and batch-transform when data lands in S3. A composition: the training code asset, the
execution role, the registry, and one construct per function."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_s3_assets as assets
from constructs import Construct
from constructs.execution_role import SageMakerExecutionRole
from constructs.local_bundling import bundling, tarball_of
from constructs.model_functions import (
    JobPlacement,
    ModelFunctionProps,
    RegisterModel,
    StartBatchTransform,
    StartTraining,
)
from constructs.model_registry import ModelRegistry
from constructs.sagemaker_images import Image, SageMakerImages
from constructs.workload_security_group import WorkloadSecurityGroup

from stacks.data import BATCH_INPUT_PREFIX, BATCH_OUTPUT_PREFIX, CAPTURE_PREFIX, PREPARED_PREFIX
from stacks.foundation import Foundation

TRAINING_CODE = Path(__file__).resolve().parents[1] / "training_jobs"
SOURCE_FILES = ("train.py", "inference.py", "schema_encoder.py", "evaluate.py", "pipeline.py")
# The raw-file number and whitespace rules the preparation job applies, which the schema encoder
# applies at inference too: shipped beside the scripts, and copied by train.py into the model.
SHARED_MODULES = (TRAINING_CODE.parent / "etl" / "dataset_spec.py",)
XGBOOST_VERSION = "3.2-0"  # the container of xgboost 3.2, as requirements-dev.txt pins locally
IMAGES = {
    "xgboost": Image("xgboost", XGBOOST_VERSION, "training"),
    "xgboost-inference": Image("xgboost", XGBOOST_VERSION, "inference"),
    "linear-learner": Image("linear-learner", "1"),
    "knn": Image("knn", "1"),
    "debugger": Image("debugger", "latest"),  # SageMaker Debugger's rule evaluator (ProfilerReport)
}
ALGORITHMS = ("xgboost", "linear-learner", "knn")


class TrainingStack(Stack):
    """Prepared runs in, registered models and batch predictions out."""

    def __init__(self, scope: Construct, construct_id: str, *, foundation: Foundation, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        config, key, data, artifacts = foundation.config, foundation.key, foundation.data, foundation.artifacts
        functions = foundation.functions
        self.images = SageMakerImages(self, "Images", images=IMAGES)
        # SageMaker's script mode takes the code as a sourcedir.tar.gz.
        source = assets.Asset(
            self,
            "TrainingCode",
            path=str(TRAINING_CODE),
            **bundling(
                tarball_of(TRAINING_CODE, SOURCE_FILES, "sourcedir.tar.gz", shared=SHARED_MODULES), archived=True
            ),
        )
        spec_assets = {
            name: assets.Asset(self, f"Spec-{name}", path=str(path)) for name, path in foundation.specs.items()
        }
        spec_uris = self.to_json_string({name: asset.s3_object_url for name, asset in spec_assets.items()})
        spec_objects = [f"arn:{self.partition}:s3:::{a.s3_bucket_name}/{a.s3_object_key}" for a in spec_assets.values()]

        execution = SageMakerExecutionRole(
            self,
            "ExecutionRole",
            data=data,
            reads=(PREPARED_PREFIX, BATCH_INPUT_PREFIX),
            writes=(BATCH_OUTPUT_PREFIX, CAPTURE_PREFIX),
            artifacts=artifacts,
            key=key,
            code=source,
        )
        self.execution_role = execution.role
        self.security_group = WorkloadSecurityGroup(
            self,
            "JobSecurityGroup",
            vpc=foundation.vpc,
            description="SageMaker jobs and models: instances of one job talk to each other; HTTPS out",
            ipsec=True,  # the jobs encrypt inter-container traffic
        ).security_group
        self.registry = ModelRegistry(
            self,
            "Registry",
            prefix=config.resource_prefix,
            datasets=foundation.specs,
            stage=config.name,
            retain=config.retains_data,
        )
        placement = JobPlacement(
            role=execution.role,
            key=key,
            subnets=self.to_json_string(foundation.subnet_ids),
            security_groups=self.to_json_string([self.security_group.security_group_id]),
            stage=config.name,
        )

        props = ModelFunctionProps(
            defaults=functions,
            placement=placement,
            registry=self.registry,
            data=data,
            artifacts=artifacts,
            prepared_prefix=PREPARED_PREFIX,
            batch_input_prefix=BATCH_INPUT_PREFIX,
            batch_output_prefix=BATCH_OUTPUT_PREFIX,
            datasets=sorted(foundation.specs),
            spec_uris=spec_uris,
            spec_objects=spec_objects,
            training_images=self._images(training=True),
            serving_images=self._images(training=False),
        )
        training = config.training
        self.start_training = StartTraining(
            self,
            "StartTraining",
            props=props,
            source_uri=source.s3_object_url,
            training=training,
            profiler_rule=self._profiler_rule() if training.profiler else {},
        ).function
        pass_status = "PendingManualApproval" if config.hosting.manual_approval else "Approved"
        self.register_model = RegisterModel(
            self,
            "RegisterModel",
            props=props,
            pass_status=pass_status,
            source_uri=source.s3_object_url,
            instance_type=training.batch_instance_type,
        ).function
        self.start_batch_transform = StartBatchTransform(
            self,
            "StartBatchTransform",
            props=props,
            instance_type=training.batch_instance_type,
            instance_count=training.batch_instance_count,
        ).function

    def _profiler_rule(self) -> dict[str, Any]:
        """Debugger's ProfilerReport rule as CreateTrainingJob takes it, its parameters from the
        SDK's own rule library (smdebug_rulesconfig) and its image from the SDK's table.
        https://docs.aws.amazon.com/sagemaker/latest/dg/debugger-configure-framework-profiling.html"""
        from smdebug_rulesconfig import ProfilerReport

        return {
            "RuleConfigurationName": "ProfilerReport",
            "RuleEvaluatorImage": self.images.uri("debugger"),
            "RuleParameters": dict(ProfilerReport().rule_parameters),
        }

    def _images(self, *, training: bool) -> str:
        """Each algorithm's image for training, or for serving (XGBoost has one of each)."""
        uris = {
            name: self.images.uri(name if training or name != "xgboost" else "xgboost-inference") for name in ALGORITHMS
        }
        return self.to_json_string(uris)
