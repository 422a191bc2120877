"""EtlStack: the Glue catalogue and preparation job, and the function that starts the job on new
data. A composition: the network Glue runs in, the encryption it runs under, the catalogue, the
preparation job, and start_etl on S3 Object Created under raw/, after a quiet period."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct
from constructs.catalogue import Catalogue
from constructs.event_function import EventFunction, QuietPeriod, object_created
from constructs.glue_runtime import GlueRuntime
from constructs.logical_ids import logical_id
from constructs.nag_acknowledgements import (
    S3_ACTIONS_REASON,
    S3_GRANT_ACTIONS,
    acknowledge_wildcards,
)
from constructs.preparation_job import PreparationJob

from stacks.data import PREPARED_PREFIX, RAW_PREFIX
from stacks.foundation import Foundation

RUN_RECORDS = f"{PREPARED_PREFIX}*/_RUN.json"  # start_etl's claims, one per run
CLAIM_TIMEOUT_SECONDS = 900  # a claim whose job never started is taken over after this
# Several files uploaded to raw/<dataset>/ at once start one preparation run: each upload's event
# waits this long on start_etl's queue, and the run starts once an event finds no later upload
# (lambda/start_etl/handler.py). The trade-off: every run starts this long after the last upload,
# and an upload that pauses longer than this starts a run per burst (the last includes all).
# SQS delays a message by at most 900 s.
QUIET_PERIOD = QuietPeriod(
    seconds=300,
    # Lambda's advice: five receives or more before a message moves to the dead-letter queue; here
    # enough that a claim left by a delivery that died is taken over (after CLAIM_TIMEOUT_SECONDS)
    # before its message gives up (one receive per visibility timeout, 6 x the function's 30 s).
    max_receives=8,
)


@dataclass(frozen=True)
class PreparationRuns:
    """How a function starts a dataset's preparation run as start_etl does: the variables of
    ``platform_runtime.Preparation``. The job is named, not referenced, so that another stack's
    function (check_drift) needs no export of this stack."""

    job_name: str
    data_bucket: str
    seed: int

    def environment(self, job: str | None = None) -> dict[str, str]:
        """``job``: the job's name as a reference, where the function is in this stack."""
        return {
            "JOB_NAME": job or self.job_name,
            "DATA_BUCKET": self.data_bucket,
            "RAW_PREFIX": RAW_PREFIX,
            "PREPARED_PREFIX": PREPARED_PREFIX,
            "SEED": str(self.seed),
            "CLAIM_TIMEOUT_SECONDS": str(CLAIM_TIMEOUT_SECONDS),
        }


class EtlStack(Stack):
    """Raw data in, prepared runs out: the Glue side of the platform and start_etl."""

    def __init__(self, scope: Construct, construct_id: str, *, foundation: Foundation, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        config, key, data, functions = foundation.config, foundation.key, foundation.data, foundation.functions
        prefix = config.stack_prefix
        runtime = GlueRuntime(
            self,
            "GlueNetwork",  # the construct's first name, kept: its resources keep their logical ids
            name=f"{prefix}-etl",
            vpc=foundation.vpc,
            subnets=foundation.subnets,
            key=key,
            alarm_topic=functions.alarm_topic,
            stage=config.name,
        )
        self.security_configuration = runtime.security_configuration
        self.catalogue = Catalogue(
            self,
            "Catalogue",
            runtime=runtime,
            database_name=f"ml_platform_{config.name.replace('-', '_')}",
            schedule=config.etl.crawler_schedule,
            data=data,
            prefixes=(RAW_PREFIX, PREPARED_PREFIX),
        )
        self.preparation = PreparationJob(
            self,
            "Preparation",
            runtime=runtime,
            settings=config.etl,
            specs=foundation.specs,
            data=data,
            raw_prefix=RAW_PREFIX,
            prepared_prefix=PREPARED_PREFIX,
            name=f"{config.resource_prefix}-prepare",
        )

        self.runs = PreparationRuns(self.preparation.name, data.bucket.bucket_name, config.etl.seed)
        self.start_etl = EventFunction(
            self,
            "StartEtl",
            handler_folder="start_etl",
            description="start_etl: new raw data starts the Glue preparation job",
            event_pattern=object_created(data.bucket, {"prefix": RAW_PREFIX}),
            environment={
                **self.runs.environment(job=self.preparation.job.ref),
                "DATASET_SPECS": self.to_json_string(
                    {name: asset.s3_object_url for name, asset in self.preparation.spec_assets.items()}
                ),
            },
            defaults=functions,
            quiet_period=QUIET_PERIOD,
        )
        function = self.start_etl.function
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["glue:StartJobRun", "glue:GetJobRuns"], resources=[self.preparation.arn])
        )
        # The snapshot of a dataset's raw files a run is named after: listing raw/ only.
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[data.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": f"{RAW_PREFIX}*"}},
            )
        )
        data.grant_write(function, RUN_RECORDS)
        data.grant_read(function, RUN_RECORDS)
        bucket_id = logical_id(data.bucket)
        acknowledge_wildcards(
            self.start_etl.role.node.find_child("DefaultPolicy"),
            {
                "start_etl reads and writes only the run records prepared/<dataset>/<run-id>/_RUN.json, "
                "whose keys are made per event.": [f"Resource::<{bucket_id}.Arn>/{RUN_RECORDS}"],
                S3_ACTIONS_REASON: S3_GRANT_ACTIONS,
            },
        )
