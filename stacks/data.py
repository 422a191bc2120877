"""DataStack: the platform key, the buckets, the S3 data-event trail and the operators' topic."""

from __future__ import annotations

from aws_cdk import Annotations, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct
from constructs.encrypted_log_group import EncryptedLogGroup
from constructs.nag_acknowledgements import acknowledge, acknowledge_grant_policy
from constructs.secure_bucket import Lifecycle, SecureBucket

from config import StageConfig

# The data bucket's layout. Later stacks and the Lambda handlers receive these prefixes as
# parameters; nothing else spells them.
RAW_PREFIX = "raw/"
PREPARED_PREFIX = "prepared/"
BATCH_INPUT_PREFIX = "batch-input/"
BATCH_OUTPUT_PREFIX = "batch-output/"
CAPTURE_PREFIX = "capture/"
MONITORING_PREFIX = "monitoring/"  # Model Monitor's baselines and reports, per dataset
GROUND_TRUTH_PREFIX = "ground-truth/"  # the labels of what the endpoints predicted, per dataset (README)
DATA_PREFIXES = (
    RAW_PREFIX,
    PREPARED_PREFIX,
    BATCH_INPUT_PREFIX,
    BATCH_OUTPUT_PREFIX,
    CAPTURE_PREFIX,
    MONITORING_PREFIX,
    GROUND_TRUTH_PREFIX,
)
TRAIL_PREFIX = "cloudtrail"
# The services that publish to the operators' topic (alarms, EventBridge rules): the topic's policy
# and the key it is encrypted with both let them in.
TOPIC_PUBLISHERS = ("cloudwatch.amazonaws.com", "events.amazonaws.com")
# AWS Budgets publishes the stage budget's notifications (stacks/monitoring.py) to the same topic.
BUDGETS = "budgets.amazonaws.com"


class DataStack(Stack):
    """Owns everything that holds data: one KMS key, three buckets, a trail and the SNS topic."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retain = not config.data.destroy_on_delete

        self.key = kms.Key(
            self,
            "PlatformKey",
            description=f"ML platform ({config.name}): data, artifacts, logs and notifications",
            alias=f"alias/ml-platform/{config.name}",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            pending_window=Duration.days(7 if not retain else 30),
        )
        self._allow_services_to_use_key()

        lifecycle: Lifecycle = {
            "retain": retain,
            "noncurrent_version_expiration": Duration.days(config.data.noncurrent_version_expiration_days),
            "abort_incomplete_multipart_upload_after": Duration.days(
                config.data.abort_incomplete_multipart_upload_days
            ),
        }
        self.log_bucket = SecureBucket(
            self,
            "AccessLogs",
            encryption_key=None,
            access_logs_bucket=None,
            expirations={"": Duration.days(config.data.access_log_expiration_days)},
            **lifecycle,
        ).bucket
        self.data_store = SecureBucket(
            self,
            "Data",
            encryption_key=self.key,
            access_logs_bucket=self.log_bucket,
            event_bridge=True,
            expirations={CAPTURE_PREFIX: Duration.days(config.data.capture_expiration_days)},
            **lifecycle,
        )
        self.artifact_store = SecureBucket(
            self, "Artifacts", encryption_key=self.key, access_logs_bucket=self.log_bucket, **lifecycle
        )
        self.data_bucket = self.data_store.bucket
        self.artifacts_bucket = self.artifact_store.bucket

        self.trail: cloudtrail.Trail | None = None
        if config.data.cloudtrail_data_events:
            self.trail = self._data_event_trail(config, retain)

        self.alarm_topic = sns.Topic(
            self,
            "OperatorTopic",
            display_name=f"ML platform ({config.name}) operators",
            master_key=self.key,
            enforce_ssl=True,
        )
        for address in config.notifications.emails:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(address))
        if not config.notifications.emails:
            Annotations.of(self.alarm_topic).add_warning_v2(
                "ml-platform:no-operator-subscriber", no_subscriber_warning(config.name)
            )
        # CloudWatch alarms and EventBridge rules publish as their service principals, which only
        # the topic's own policy can allow (once a topic has a policy, nothing else does); both
        # send this account as aws:SourceAccount.
        # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sns-permissions
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html
        self.alarm_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlarmsAndRulesOfThisAccountPublish",
                principals=[iam.ServicePrincipal(service) for service in TOPIC_PUBLISHERS],
                actions=["sns:Publish"],
                resources=[self.alarm_topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        # https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-sns-policy.html
        self.alarm_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="BudgetsOfThisAccountPublish",
                principals=[iam.ServicePrincipal(BUDGETS)],
                actions=["sns:Publish"],
                resources=[self.alarm_topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnLike": {"aws:SourceArn": f"arn:{self.partition}:budgets::{self.account}:*"},
                },
            )
        )

    def _allow_services_to_use_key(self) -> None:
        """Key policy: the account administers the key (CDK's default statement, needed so IAM
        policies can grant its use); AWS services that encrypt on the platform's behalf get
        exactly the operations they need, scoped to this account's resources."""
        region, account, partition = self.region, self.account, self.partition
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsEncryptsThisAccountsLogGroups",
                principals=[iam.ServicePrincipal(f"logs.{region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account}:log-group:*"
                    }
                },
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailEncryptsThisAccountsTrails",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": f"arn:{partition}:cloudtrail:*:{account}:trail/*"
                    },
                    "StringEquals": {"aws:SourceAccount": account},
                },
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailDescribesKey",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["kms:DescribeKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": account}},
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlarmsAndRulesPublishToEncryptedTopic",
                principals=[iam.ServicePrincipal(service) for service in (*TOPIC_PUBLISHERS, BUDGETS)],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": account}},
            )
        )

    def _data_event_trail(self, config: StageConfig, retain: bool) -> cloudtrail.Trail:
        to_logs = config.data.trail_to_cloudwatch_logs
        log_group = (
            EncryptedLogGroup(
                self,
                "TrailLogs",
                key=self.key,
                retention_days=config.data.trail_log_retention_days,
                retain=retain,
            ).log_group
            if to_logs
            else None
        )
        name = f"{config.resource_prefix}-data-events"
        arn = f"arn:{self.partition}:cloudtrail:{self.region}:{self.account}:trail/{name}"
        # The log bucket takes CloudTrail's deliveries from this trail only (confused deputy): the
        # ARN is built from the name, as the trail depends on the bucket policy.
        # https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html
        self.log_bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailDeliversForThisTrailOnly",
                effect=iam.Effect.DENY,
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["s3:GetBucketAcl", "s3:PutObject"],
                resources=[self.log_bucket.bucket_arn, self.log_bucket.arn_for_objects(f"{TRAIL_PREFIX}/*")],
                conditions={"StringNotEquals": {"aws:SourceArn": arn}},
            )
        )
        trail = cloudtrail.Trail(
            self,
            "DataEventsTrail",
            trail_name=name,
            bucket=self.log_bucket,
            s3_key_prefix=TRAIL_PREFIX,
            encryption_key=self.key,
            enable_file_validation=True,
            send_to_cloud_watch_logs=to_logs,
            cloud_watch_log_group=log_group,
            # This trail adds S3 data events; management events are the account trail's job
            # (a second copy of them is billed).
            management_events=cloudtrail.ReadWriteType.NONE,
            include_global_service_events=False,
            is_multi_region_trail=False,
        )
        # What an auditor needs: every write to both buckets, and who read the raw data (raw/);
        # reads of everything else (prepared runs, models, batch output) are the platform's own.
        trail.add_s3_event_selector(
            [
                cloudtrail.S3EventSelector(bucket=self.data_bucket),
                cloudtrail.S3EventSelector(bucket=self.artifacts_bucket),
            ],
            read_write_type=cloudtrail.ReadWriteType.WRITE_ONLY,
            include_management_events=False,
        )
        trail.add_s3_event_selector(
            [cloudtrail.S3EventSelector(bucket=self.data_bucket, object_prefix=RAW_PREFIX)],
            read_write_type=cloudtrail.ReadWriteType.READ_ONLY,
            include_management_events=False,
        )
        if to_logs:
            # The logs role's trust stays bare: CloudTrail's AssumeRole for it carries neither
            # aws:SourceArn nor aws:SourceAccount ("Confused deputy prevention is not applicable").
            # https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-required-policy-for-cloudwatch-logs.html
            acknowledge_grant_policy(trail.node.find_child("LogsRole"))
        else:
            reason = (
                f"Stage {config.name!r} chooses (data.trail_to_cloudwatch_logs = false) not to pay CloudWatch "
                "Logs ingestion for this trail: its record is the log-file-validated, KMS-encrypted delivery "
                "to the access-log bucket, which an auditor reads with Athena or CloudTrail Lake."
            )
            acknowledge(
                trail,
                {
                    "HIPAA.Security-CloudTrailCloudWatchLogsEnabled": reason,
                    "NIST.800.53.R5-CloudTrailCloudWatchLogsEnabled": reason,
                },
            )
        return trail


def no_subscriber_warning(stage: str) -> str:
    return (
        f"NO ONE HEARS THE ALARMS of stage {stage!r}: notifications.emails is empty, so the operators' topic "
        f"has no subscriber. Add an address to config/stages/{stage}.toml ([notifications] emails = "
        '["ops@example.org"]) and confirm the e-mail SNS sends, or subscribe another endpoint to the topic.'
    )
