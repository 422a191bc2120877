"""EtlStack: the Glue catalogue and preparation job, and the Lambda that starts it on new data."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as assets
from aws_cdk import aws_sns as sns
from constructs import Construct
from constructs.event_function import EventFunction, object_created
from constructs.nag_acknowledgements import (
    KMS_DATA_KEY_REASON,
    KMS_GRANT_ACTIONS,
    S3_ACTIONS_REASON,
    S3_GRANT_ACTIONS,
    acknowledge,
    acknowledge_grant_policy,
    acknowledge_wildcards,
    nag_arn,
)
from constructs.secure_bucket import SecureBucket
from constructs.topic_target import TopicTarget
from constructs.workload_security_group import WorkloadSecurityGroup

from config import StageConfig
from stacks.data import PREPARED_PREFIX, RAW_PREFIX

ROOT = Path(__file__).resolve().parents[1]
DATASETS_DIR = ROOT / "datasets"
ETL_DIR = ROOT / "etl"
SPEC_MODULE = "dataset_spec.py"
GLUE_VERSION = "5.0"
FAILED_JOB_STATES = ["FAILED", "TIMEOUT", "STOPPED", "ERROR"]
# Files the crawler must not take for data (the job's and start_etl's bookkeeping).
CRAWLER_EXCLUSIONS = ["**/_SUCCESS", "**/_RUN.json", "**/schema.json", "**/report.json"]
GLUE_LOGS_REASON = (
    "Glue writes the job's and crawler's logs to log groups it creates under /aws-glue/ "
    "(names include the security configuration and role), so the grant covers that prefix only."
)
GLUE_METRICS_REASON = (
    "cloudwatch:PutMetricData has no resource-level permissions; the grant is limited to the Glue "
    "namespace by condition."
)
GLUE_NETWORK_REASON = (
    "Glue creates, describes and deletes the network interfaces of the VPC connection with these "
    "EC2 actions; EC2's Describe actions have no resource-level permissions."
)


def load_dataset_spec_module() -> ModuleType:
    """etl/dataset_spec.py (runtime code, a plain script folder) for checking specs at synth."""
    if "dataset_spec" in sys.modules:
        return sys.modules["dataset_spec"]
    spec = importlib.util.spec_from_file_location("dataset_spec", ETL_DIR / "dataset_spec.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["dataset_spec"] = module
    spec.loader.exec_module(module)
    return module


def dataset_specs(extra: tuple[Path, ...] = ()) -> dict[str, Path]:
    """Every ``datasets/<name>.json``, and ``extra`` spec files (a user's own, for ``make local
    SPEC=...``), checked: a broken spec fails synth, never a deployed job."""
    module = load_dataset_spec_module()
    found: dict[str, Path] = {}
    for path in sorted(DATASETS_DIR.glob("*.json")):
        spec = module.load_spec(path.read_text(encoding="utf-8"), source=path.name)
        if spec.name != path.stem:
            raise module.SpecError(spec.name, None, f"the spec's file must be named {spec.name}.json, not {path.name}")
        found[spec.name] = path
    for path in extra:
        if not path.is_file():
            raise module.SpecError(path.stem, None, f"spec file {path} does not exist")
        spec = module.load_spec(path.read_text(encoding="utf-8"), source=str(path))
        if spec.name in found:
            raise module.SpecError(spec.name, None, f"{path} names a dataset that {found[spec.name]} already defines")
        found[spec.name] = path
    return found


class EtlStack(Stack):
    """Glue database, crawler (raw/ and prepared/), the preparation job with its security
    configuration and VPC connection, start_etl on S3 Object Created under raw/, and failure
    notifications to the operators' topic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        key: kms.IKey,
        data: SecureBucket,
        alarm_topic: sns.ITopic,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        specs: dict[str, Path] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        specs = dataset_specs() if specs is None else specs
        etl = config.etl
        prefix = config.stack_prefix
        bucket = data.bucket
        bucket_id = self.get_logical_id(bucket.node.default_child)

        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=self.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=f"ml_platform_{config.name.replace('-', '_')}",
                description="Raw uploads and prepared datasets of the ML platform",
            ),
        )
        self.security_configuration = glue.CfnSecurityConfiguration(
            self,
            "SecurityConfiguration",
            name=f"{prefix}-etl",
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(
                        s3_encryption_mode="SSE-KMS", kms_key_arn=key.key_arn
                    )
                ],
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=key.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=key.key_arn
                ),
            ),
        )
        self.connection = self._network_connection(prefix, vpc, subnets)
        network_policy = self._glue_network_policy()

        # --- the preparation job ---
        script = assets.Asset(self, "PrepareScript", path=str(ETL_DIR / "prepare.py"))
        # Glue puts each --extra-py-files object on the path under its object name, and an asset's
        # object is named by its hash: a lone .py would import as <hash>, never as dataset_spec.
        # A zip (a folder asset) keeps the module's name inside it.
        spec_module = assets.Asset(self, "DatasetSpecModule", path=str(ETL_DIR), exclude=["*", f"!{SPEC_MODULE}"])
        self.spec_assets = {name: assets.Asset(self, f"Spec-{name}", path=str(path)) for name, path in specs.items()}
        self.job_role = self._glue_role("JobRole", "Glue preparation job", key, network_policy)
        data.grant_read(self.job_role, f"{RAW_PREFIX}*")
        data.grant_read_write(self.job_role, f"{PREPARED_PREFIX}*")
        # The job reads its own code and specs, object by object, from the CDK assets bucket.
        self.job_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    f"arn:{self.partition}:s3:::{asset.s3_bucket_name}/{asset.s3_object_key}"
                    for asset in (script, spec_module, *self.spec_assets.values())
                ],
            )
        )
        self.job_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
            )
        )
        self.job = glue.CfnJob(
            self,
            "PrepareJob",
            description="Prepares raw/<dataset>/ into SageMaker-ready prepared/<dataset>/<run-id>/",
            role=self.job_role.role_arn,
            glue_version=GLUE_VERSION,
            command=glue.CfnJob.JobCommandProperty(
                name="glueetl", python_version="3", script_location=script.s3_object_url
            ),
            worker_type=etl.worker_type,
            number_of_workers=etl.number_of_workers,
            timeout=etl.timeout_minutes,
            max_retries=0,  # a failed run is reported, not silently repeated; start_etl owns retries
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=etl.max_concurrent_runs),
            security_configuration=self.security_configuration.ref,
            connections=glue.CfnJob.ConnectionsListProperty(connections=[self.connection.ref]),
            default_arguments={
                "--extra-py-files": spec_module.s3_object_url,
                # Each run reads the whole raw/<dataset>/ on purpose (a new file means retrain
                # on all the data), so bookmarks, which skip what was read before, stay off.
                "--job-bookmark-option": "job-bookmark-disable",
                "--enable-continuous-cloudwatch-log": "true",
                "--enable-continuous-log-filter": "true",
                "--enable-metrics": "true",
                "--enable-observability-metrics": "true",
                "--seed": str(etl.seed),
            },
        )
        self.job.node.add_dependency(self.job_role)
        acknowledge_grant_policy(self.job_role)
        self._acknowledge_glue_grants(
            self.job_role,
            {
                "The job reads raw/<dataset>/ and writes prepared/<dataset>/<run-id>/ for any dataset "
                "with a spec, so the grants name those two prefixes.": [
                    f"Resource::<{bucket_id}.Arn>/{RAW_PREFIX}*",
                    f"Resource::<{bucket_id}.Arn>/{PREPARED_PREFIX}*",
                ],
                GLUE_METRICS_REASON: ["Resource::*"],
            },
        )

        # --- the crawler ---
        self.crawler_role = self._glue_role("CrawlerRole", "Glue crawler", key, network_policy)
        data.grant_read(self.crawler_role, f"{RAW_PREFIX}*")
        data.grant_read(self.crawler_role, f"{PREPARED_PREFIX}*")
        catalog = f"arn:{self.partition}:glue:{self.region}:{self.account}"
        database_name = self.database.ref
        self.crawler_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetTables",
                    "glue:CreateTable",
                    "glue:UpdateTable",
                    "glue:GetPartition",
                    "glue:GetPartitions",
                    "glue:BatchGetPartition",
                    "glue:CreatePartition",
                    "glue:BatchCreatePartition",
                    "glue:UpdatePartition",
                    "glue:BatchUpdatePartition",
                ],
                resources=[
                    f"{catalog}:catalog",
                    f"{catalog}:database/{database_name}",
                    f"{catalog}:table/{database_name}/*",
                ],
            )
        )
        self.crawler = glue.CfnCrawler(
            self,
            "Crawler",
            description="Keeps the catalogue of raw/ and prepared/ current",
            role=self.crawler_role.role_arn,
            database_name=database_name,
            targets=glue.CfnCrawler.TargetsProperty(
                s3_targets=[
                    glue.CfnCrawler.S3TargetProperty(
                        path=f"s3://{bucket.bucket_name}/{prefix_}",
                        exclusions=CRAWLER_EXCLUSIONS,
                        connection_name=self.connection.ref,
                    )
                    for prefix_ in (RAW_PREFIX, PREPARED_PREFIX)
                ]
            ),
            schedule=glue.CfnCrawler.ScheduleProperty(schedule_expression=etl.crawler_schedule),
            schema_change_policy=glue.CfnCrawler.SchemaChangePolicyProperty(
                update_behavior="UPDATE_IN_DATABASE", delete_behavior="LOG"
            ),
            recrawl_policy=glue.CfnCrawler.RecrawlPolicyProperty(recrawl_behavior="CRAWL_EVERYTHING"),
            # One table per dataset: s3://bucket/raw/<dataset>/ and s3://bucket/prepared/<dataset>/.
            configuration='{"Version": 1.0, "Grouping": {"TableLevelConfiguration": 3}}',
            crawler_security_configuration=self.security_configuration.ref,
        )
        self.crawler.node.add_dependency(self.crawler_role)
        acknowledge_grant_policy(self.crawler_role)
        self._acknowledge_glue_grants(
            self.crawler_role,
            {
                "The crawler catalogues every dataset under raw/ and prepared/.": [
                    f"Resource::<{bucket_id}.Arn>/{RAW_PREFIX}*",
                    f"Resource::<{bucket_id}.Arn>/{PREPARED_PREFIX}*",
                ],
                "The crawler creates and updates one table per dataset it finds, in this database only.": [
                    "Resource::" + nag_arn(self, "glue", f"table/<{self.get_logical_id(self.database)}>/*")
                ],
            },
        )

        # --- start_etl ---
        job_arn = f"{catalog}:job/{self.job.ref}"
        self.start_etl = EventFunction(
            self,
            "StartEtl",
            handler_folder="start_etl",
            description="start_etl: new raw data starts the Glue preparation job",
            event_pattern=object_created(bucket, {"prefix": RAW_PREFIX}),
            environment={
                "JOB_NAME": self.job.ref,
                "DATA_BUCKET": bucket.bucket_name,
                "RAW_PREFIX": RAW_PREFIX,
                "PREPARED_PREFIX": PREPARED_PREFIX,
                "DATASET_SPECS": self.to_json_string({n: a.s3_object_url for n, a in self.spec_assets.items()}),
                "SEED": str(etl.seed),
            },
            key=key,
            alarm_topic=alarm_topic,
            vpc=vpc,
            subnets=subnets,
            log_retention_days=config.functions.log_retention_days,
            reserved_concurrency=config.functions.reserved_concurrency,
            retry_attempts=config.functions.retry_attempts,
            retain_logs=not config.data.destroy_on_delete,
        )
        function = self.start_etl.function
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["glue:StartJobRun", "glue:GetJobRuns"], resources=[job_arn])
        )
        run_records = f"{PREPARED_PREFIX}*/_RUN.json"
        data.grant_write(function, run_records)
        data.grant_read(function, run_records)
        acknowledge_wildcards(
            self.start_etl.role.node.find_child("DefaultPolicy"),
            {
                "start_etl reads and writes only the run records prepared/<dataset>/<run-id>/_RUN.json, "
                "whose keys are made per event.": [f"Resource::<{bucket_id}.Arn>/{run_records}"],
                KMS_DATA_KEY_REASON: KMS_GRANT_ACTIONS,
                S3_ACTIONS_REASON: S3_GRANT_ACTIONS,
            },
        )

        # --- failures reach the operators ---
        field = events.EventField.from_path
        self.failure_rule = events.Rule(
            self,
            "JobFailedRule",
            description="The preparation job failed",
            event_pattern=events.EventPattern(
                source=["aws.glue"],
                detail_type=["Glue Job State Change"],
                detail={"jobName": [self.job.ref], "state": FAILED_JOB_STATES},
            ),
        )
        self.failure_rule.add_target(
            TopicTarget(
                alarm_topic,
                message=events.RuleTargetInput.from_text(
                    f"ML platform ({config.name}): Glue job {field('$.detail.jobName')} "
                    f"run {field('$.detail.jobRunId')} ended {field('$.detail.state')}: {field('$.detail.message')}"
                ),
            )
        )
        self.crawler_failure_rule = events.Rule(
            self,
            "CrawlerFailedRule",
            description="The catalogue crawler failed",
            event_pattern=events.EventPattern(
                source=["aws.glue"],
                detail_type=["Glue Crawler State Change"],
                detail={"crawlerName": [self.crawler.ref], "state": ["Failed"]},
            ),
        )
        self.crawler_failure_rule.add_target(
            TopicTarget(
                alarm_topic,
                message=events.RuleTargetInput.from_text(
                    f"ML platform ({config.name}): crawler {field('$.detail.crawlerName')} "
                    f"failed: {field('$.detail.errorMessage')}"
                ),
            )
        )

    def _network_connection(self, prefix: str, vpc: ec2.IVpc, subnets: ec2.SubnetSelection) -> glue.CfnConnection:
        """Runs the job and crawler inside the VPC: their traffic stays on the endpoints."""
        self.glue_security_group = WorkloadSecurityGroup(
            self,
            "GlueSecurityGroup",
            vpc=vpc,
            description="Glue job and crawler: workers talk to each other, and HTTPS to the endpoints",
        ).security_group
        group = self.glue_security_group
        subnet = vpc.select_subnets(subnet_type=subnets.subnet_type).subnets[0]
        return glue.CfnConnection(
            self,
            "NetworkConnection",
            catalog_id=self.account,
            connection_input=glue.CfnConnection.ConnectionInputProperty(
                name=f"{prefix}-etl-network",
                connection_type="NETWORK",
                description="The platform VPC's isolated subnet for Glue",
                physical_connection_requirements=glue.CfnConnection.PhysicalConnectionRequirementsProperty(
                    subnet_id=subnet.subnet_id,
                    availability_zone=subnet.availability_zone,
                    security_group_id_list=[group.security_group_id],
                ),
            ),
        )

    def _glue_network_policy(self) -> iam.ManagedPolicy:
        policy = iam.ManagedPolicy(
            self,
            "GlueNetworkPolicy",
            description="What Glue needs to run a job or crawler in the platform VPC",
            statements=[
                iam.PolicyStatement(
                    actions=[
                        "ec2:CreateNetworkInterface",
                        "ec2:DeleteNetworkInterface",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeSecurityGroups",
                        "ec2:DescribeSubnets",
                        "ec2:DescribeVpcAttribute",
                        "ec2:DescribeVpcEndpoints",
                        "ec2:DescribeRouteTables",
                    ],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    actions=["ec2:CreateTags", "ec2:DeleteTags"],
                    resources=[f"arn:{self.partition}:ec2:{self.region}:{self.account}:network-interface/*"],
                    conditions={"ForAllValues:StringEquals": {"aws:TagKeys": ["aws-glue-service-resource"]}},
                ),
                iam.PolicyStatement(
                    actions=["glue:GetConnection"],
                    resources=[
                        f"arn:{self.partition}:glue:{self.region}:{self.account}:catalog",
                        f"arn:{self.partition}:glue:{self.region}:{self.account}:connection/{self.connection.ref}",
                    ],
                ),
            ],
        )
        acknowledge(
            policy,
            {"AwsSolutions-IAM5": GLUE_NETWORK_REASON},
            applies_to=[
                "Resource::*",
                "Resource::" + nag_arn(self, "ec2", "network-interface/*"),
            ],
        )
        return policy

    def _glue_role(self, construct_id: str, purpose: str, key: kms.IKey, network: iam.ManagedPolicy) -> iam.Role:
        role = iam.Role(
            self,
            construct_id,
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description=f"{purpose} of the ML platform",
            managed_policies=[network],
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
                resources=[f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:/aws-glue/*"],
            )
        )
        # S3 (SSE-KMS), bookmarks (CSE-KMS) and logs: data keys and decryption, nothing more.
        key.grant(role, "kms:Decrypt", "kms:GenerateDataKey*")
        return role

    def _acknowledge_glue_grants(self, role: iam.Role, reasons: dict[str, list[str]]) -> None:
        logs = "Resource::" + nag_arn(self, "logs", "log-group:/aws-glue/*")
        acknowledge_wildcards(
            role.node.find_child("DefaultPolicy"),
            {
                GLUE_LOGS_REASON: [logs],
                KMS_DATA_KEY_REASON: KMS_GRANT_ACTIONS,
                S3_ACTIONS_REASON: S3_GRANT_ACTIONS,
                **reasons,
            },
        )
