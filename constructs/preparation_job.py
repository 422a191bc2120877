"""PreparationJob: the Glue job that turns raw/<dataset>/ into prepared/<dataset>/<run-id>/.

The job's script (``etl/prepare.py``), the spec module it imports and the dataset specs are CDK
assets; its role reads raw/, writes prepared/ and reads exactly those asset objects. The job runs
in the VPC through the Glue connection, under the security configuration (SSE-KMS for S3 and
logs, CSE-KMS for bookmarks), and a failed run is told to the operators' topic.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as assets
from constructs import Construct
from constructs.glue_runtime import GlueRuntime
from constructs.logical_ids import logical_id
from constructs.secure_bucket import SecureBucket

from config import EtlConfig

ETL_DIR = Path(__file__).resolve().parents[1] / "etl"
SPEC_MODULE = "dataset_spec.py"
GLUE_VERSION = "5.0"
GLUE_METRICS_REASON = (
    "cloudwatch:PutMetricData has no resource-level permissions; the grant is limited to the Glue "
    "namespace by condition."
)


class PreparationJob(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: GlueRuntime,
        settings: EtlConfig,
        specs: dict[str, Path],
        data: SecureBucket,
        raw_prefix: str,
        prepared_prefix: str,
        name: str,
    ) -> None:
        """``name`` is the job's: the operators' dashboard and the failure rule find it by name."""
        super().__init__(scope, construct_id)
        self.name = name
        stack = Stack.of(self)
        script = assets.Asset(self, "Script", path=str(ETL_DIR / "prepare.py"))
        # Glue puts each --extra-py-files object on the path under its object name, and an asset's
        # object is named by its hash: a lone .py would import as <hash>, never as dataset_spec.
        # A zip (a folder asset) keeps the module's name inside it.
        spec_module = assets.Asset(self, "SpecModule", path=str(ETL_DIR), exclude=["*", f"!{SPEC_MODULE}"])
        self.spec_assets = {name: assets.Asset(self, f"Spec-{name}", path=str(path)) for name, path in specs.items()}

        self.role = runtime.role(self, "JobRole", purpose="Glue preparation job")
        data.grant_read(self.role, f"{raw_prefix}*")
        data.grant_read_write(self.role, f"{prepared_prefix}*")
        # The job reads its own code and specs, object by object, from the CDK assets bucket.
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    f"arn:{stack.partition}:s3:::{asset.s3_bucket_name}/{asset.s3_object_key}"
                    for asset in (script, spec_module, *self.spec_assets.values())
                ],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
            )
        )
        self.job = glue.CfnJob(
            self,
            "Job",
            name=name,
            description="Prepares raw/<dataset>/ into SageMaker-ready prepared/<dataset>/<run-id>/",
            role=self.role.role_arn,
            glue_version=GLUE_VERSION,
            command=glue.CfnJob.JobCommandProperty(
                name="glueetl", python_version="3", script_location=script.s3_object_url
            ),
            worker_type=settings.worker_type,
            number_of_workers=settings.number_of_workers,
            timeout=settings.timeout_minutes,
            max_retries=0,  # a failed run is reported, not silently repeated; start_etl owns retries
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=settings.max_concurrent_runs),
            security_configuration=runtime.security_configuration.ref,
            connections=glue.CfnJob.ConnectionsListProperty(connections=[runtime.connection.ref]),
            default_arguments={
                "--extra-py-files": spec_module.s3_object_url,
                # Each run reads the whole raw/<dataset>/ on purpose (a new file means retrain
                # on all the data), so bookmarks, which skip what was read before, stay off.
                "--job-bookmark-option": "job-bookmark-disable",
                "--enable-continuous-cloudwatch-log": "true",
                "--enable-continuous-log-filter": "true",
                "--enable-metrics": "true",
                "--enable-observability-metrics": "true",
                "--seed": str(settings.seed),
            },
        )
        self.job.node.add_dependency(self.role)
        bucket_id = logical_id(data.bucket)
        runtime.acknowledge_role(
            self.role,
            {
                "The job reads raw/<dataset>/ and writes prepared/<dataset>/<run-id>/ for any dataset "
                "with a spec, so the grants name those two prefixes.": [
                    f"Resource::<{bucket_id}.Arn>/{raw_prefix}*",
                    f"Resource::<{bucket_id}.Arn>/{prepared_prefix}*",
                ],
                GLUE_METRICS_REASON: ["Resource::*"],
            },
        )
        self.failure_rule = runtime.alert_on_failure(
            self, kind="job", name=self.job.ref, description="The preparation job failed"
        )

    @property
    def arn(self) -> str:
        stack = Stack.of(self)
        return f"arn:{stack.partition}:glue:{stack.region}:{stack.account}:job/{self.job.ref}"
