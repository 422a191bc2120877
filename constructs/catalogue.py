"""Catalogue: the Glue database of the platform's data and the crawler that keeps it current.

One table per dataset under raw/ and prepared/ (the prepared runs are partitions of it), crawled
on the stage's schedule inside the VPC, under the security configuration. The crawler's role
reads both prefixes and writes tables of this database only; a failed crawl is told to the
operators' topic.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from constructs import Construct
from constructs.glue_runtime import GlueRuntime
from constructs.logical_ids import logical_id, pin
from constructs.nag_acknowledgements import nag_arn
from constructs.secure_bucket import SecureBucket

# Files the crawler must not take for data (the job's and start_etl's bookkeeping).
CRAWLER_EXCLUSIONS = ["**/_SUCCESS", "**/_RUN.json", "**/schema.json", "**/report.json"]
CATALOGUE_ACTIONS = [
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
]


class Catalogue(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: GlueRuntime,
        database_name: str,
        schedule: str,
        data: SecureBucket,
        prefixes: tuple[str, ...],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=database_name, description="Raw uploads and prepared datasets of the ML platform"
            ),
        )
        pin(self.database, "Database")
        self.role = runtime.role(self, "CrawlerRole", purpose="Glue crawler")
        for prefix in prefixes:
            data.grant_read(self.role, f"{prefix}*")
        catalog = f"arn:{stack.partition}:glue:{stack.region}:{stack.account}"
        name = self.database.ref
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=CATALOGUE_ACTIONS,
                resources=[f"{catalog}:catalog", f"{catalog}:database/{name}", f"{catalog}:table/{name}/*"],
            )
        )
        self.crawler = glue.CfnCrawler(
            self,
            "Crawler",
            description="Keeps the catalogue of raw/ and prepared/ current",
            role=self.role.role_arn,
            database_name=name,
            targets=glue.CfnCrawler.TargetsProperty(
                s3_targets=[
                    glue.CfnCrawler.S3TargetProperty(
                        path=f"s3://{data.bucket.bucket_name}/{prefix}",
                        exclusions=CRAWLER_EXCLUSIONS,
                        connection_name=runtime.connection.ref,
                    )
                    for prefix in prefixes
                ]
            ),
            schedule=glue.CfnCrawler.ScheduleProperty(schedule_expression=schedule),
            # Incremental: after the first crawl only folders added since the last one are read
            # (a new dataset under raw/, a new run under prepared/<dataset>/), which Glue allows
            # only with a schema change policy that logs. A crawl is billed for at least ten
            # minutes, so the shipped schedule is daily.
            # https://docs.aws.amazon.com/glue/latest/dg/incremental-crawls.html
            schema_change_policy=glue.CfnCrawler.SchemaChangePolicyProperty(
                update_behavior="LOG", delete_behavior="LOG"
            ),
            recrawl_policy=glue.CfnCrawler.RecrawlPolicyProperty(recrawl_behavior="CRAWL_NEW_FOLDERS_ONLY"),
            # One table per dataset: s3://bucket/raw/<dataset>/ and s3://bucket/prepared/<dataset>/.
            configuration='{"Version": 1.0, "Grouping": {"TableLevelConfiguration": 3}}',
            crawler_security_configuration=runtime.security_configuration.ref,
        )
        self.crawler.node.add_dependency(self.role)
        bucket_id = logical_id(data.bucket)
        runtime.acknowledge_role(
            self.role,
            {
                "The crawler catalogues every dataset under raw/ and prepared/.": [
                    f"Resource::<{bucket_id}.Arn>/{prefix}*" for prefix in prefixes
                ],
                "The crawler creates and updates one table per dataset it finds, in this database only.": [
                    "Resource::" + nag_arn(stack, "glue", f"table/<{stack.resolve(self.database.logical_id)}>/*")
                ],
            },
        )
        self.failure_rule = runtime.alert_on_failure(
            self, kind="crawler", name=self.crawler.ref, description="The catalogue crawler failed"
        )
