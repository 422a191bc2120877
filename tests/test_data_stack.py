"""DataStack: key, buckets, trail and topic carry the platform's security defaults; removal
follows the stage (dev may destroy, prod always retains)."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from stacks.data import DataStack
from tests.helpers import actions, logical_id, properties, render, resources

KMS_BUCKETS = ("DataBucket", "ArtifactsBucket")
ALL_BUCKETS = (*KMS_BUCKETS, "AccessLogsBucket")


def data(stage) -> Template:
    return stage.templates["data"]


def bucket(template: Template, name: str) -> dict:
    return resources(template, "AWS::S3::Bucket")[logical_id(template, "AWS::S3::Bucket", name)]


def key_id(template: Template) -> str:
    return logical_id(template, "AWS::KMS::Key", "PlatformKey")


def test_platform_key_rotates(stage):
    data(stage).has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_key_policy_gives_services_only_what_they_need_scoped_to_this_account(stage):
    statements = properties(data(stage), "AWS::KMS::Key")[0]["KeyPolicy"]["Statement"]
    by_sid = {statement.get("Sid", "account-administers-key"): statement for statement in statements}
    assert set(by_sid) == {
        "account-administers-key",
        "CloudWatchLogsEncryptsThisAccountsLogGroups",
        "CloudTrailEncryptsThisAccountsTrails",
        "CloudTrailDescribesKey",
        "AlarmsAndRulesPublishToEncryptedTopic",
    }
    # Only the account itself may administer the key (so IAM policies can grant its use).
    root = by_sid["account-administers-key"]
    assert render(root["Principal"]["AWS"]).endswith(":root")
    for sid, statement in by_sid.items():
        assert statement["Effect"] == "Allow"
        if sid == "account-administers-key":
            continue
        assert "Service" in statement["Principal"], sid
        assert "Condition" in statement, f"{sid} is not scoped by a condition"
        granted = actions(statement)
        assert "kms:*" not in granted, sid
        assert not any(action.startswith(("kms:Create", "kms:Delete", "kms:Put", "kms:Schedule")) for action in granted)
    assert by_sid["CloudTrailEncryptsThisAccountsTrails"]["Action"] == "kms:GenerateDataKey*"
    assert by_sid["AlarmsAndRulesPublishToEncryptedTopic"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]


@pytest.mark.parametrize("name", KMS_BUCKETS)
def test_data_and_artifacts_buckets_encrypt_with_the_platform_key(stage, name):
    encryption = bucket(data(stage), name)["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption == [
        {
            "BucketKeyEnabled": True,
            "ServerSideEncryptionByDefault": {
                "KMSMasterKeyID": {"Fn::GetAtt": [key_id(data(stage)), "Arn"]},
                "SSEAlgorithm": "aws:kms",
            },
        }
    ]


def test_access_log_bucket_uses_sse_s3_as_server_access_logging_requires(stage):
    encryption = bucket(data(stage), "AccessLogsBucket")["Properties"]["BucketEncryption"]
    assert encryption["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }


@pytest.mark.parametrize("name", ALL_BUCKETS)
def test_every_bucket_is_private_versioned_owner_enforced_with_lifecycle(stage, name):
    props = bucket(data(stage), name)["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    rule = next(r for r in props["LifecycleConfiguration"]["Rules"] if r["Id"].startswith("noncurrent"))
    assert rule["Status"] == "Enabled"
    assert rule["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": stage.config.data.noncurrent_version_expiration_days
    }
    assert rule["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": stage.config.data.abort_incomplete_multipart_upload_days
    }


@pytest.mark.parametrize("name", ALL_BUCKETS)
def test_every_bucket_denies_plain_http_and_old_tls(stage, name):
    template = data(stage)
    bucket_id = logical_id(template, "AWS::S3::Bucket", name)
    policies = [p for p in properties(template, "AWS::S3::BucketPolicy") if p["Bucket"] == {"Ref": bucket_id}]
    assert len(policies) == 1
    denies = [
        s
        for s in policies[0]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s.get("Sid") != "CloudTrailDeliversForThisTrailOnly"  # tested on its own
    ]
    conditions = [s["Condition"] for s in denies]
    assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
    assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions
    for statement in denies:
        assert statement["Action"] == "s3:*" and statement["Principal"] == {"AWS": "*"}


@pytest.mark.parametrize(("name", "prefix"), [("DataBucket", "data/"), ("ArtifactsBucket", "artifacts/")])
def test_buckets_send_server_access_logs_to_the_log_bucket(stage, name, prefix):
    template = data(stage)
    log_bucket = logical_id(template, "AWS::S3::Bucket", "AccessLogsBucket")
    assert bucket(template, name)["Properties"]["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": log_bucket},
        "LogFilePrefix": prefix,
    }
    assert "LoggingConfiguration" not in bucket(template, "AccessLogsBucket")["Properties"]


def test_data_bucket_sends_events_to_eventbridge_without_a_notifications_lambda(stage):
    template = data(stage)
    assert bucket(template, "DataBucket")["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    assert "NotificationConfiguration" not in bucket(template, "ArtifactsBucket")["Properties"]
    template.resource_count_is("Custom::S3BucketNotifications", 0)


def test_prod_retains_buckets_key_and_logs(prod):
    template = data(prod)
    for resource_type in ("AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Logs::LogGroup"):
        for name, resource in resources(template, resource_type).items():
            assert resource["DeletionPolicy"] == "Retain", name
            assert resource["UpdateReplacePolicy"] == "Retain", name
    template.resource_count_is("Custom::S3AutoDeleteObjects", 0)
    assert prod.stacks["data"].termination_protection is True


def test_dev_may_destroy_its_buckets_and_key(dev):
    template = data(dev)
    for resource_type in ("AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Logs::LogGroup"):
        for name, resource in resources(template, resource_type).items():
            assert resource["DeletionPolicy"] == "Delete", name
    # Emptied first, or CloudFormation cannot delete a bucket that holds objects.
    template.resource_count_is("Custom::S3AutoDeleteObjects", len(ALL_BUCKETS))
    template.has_resource_properties("AWS::KMS::Key", {"PendingWindowInDays": 7})


def test_trail_records_writes_to_data_and_artifacts_and_reads_of_raw_data(stage):
    template = data(stage)
    ids = {name: logical_id(template, "AWS::S3::Bucket", name) for name in ALL_BUCKETS}
    template.has_resource_properties(
        "AWS::CloudTrail::Trail",
        {
            "IsLogging": True,
            "EnableLogFileValidation": True,
            "KMSKeyId": {"Fn::GetAtt": [key_id(template), "Arn"]},
            "S3BucketName": {"Ref": ids["AccessLogsBucket"]},
            "EventSelectors": [
                {
                    "DataResources": [
                        {
                            "Type": "AWS::S3::Object",
                            "Values": [
                                {"Fn::Join": ["", [{"Fn::GetAtt": [ids["DataBucket"], "Arn"]}, "/"]]},
                                {"Fn::Join": ["", [{"Fn::GetAtt": [ids["ArtifactsBucket"], "Arn"]}, "/"]]},
                            ],
                        }
                    ],
                    "IncludeManagementEvents": False,
                    "ReadWriteType": "WriteOnly",
                },
                {
                    "DataResources": [
                        {
                            "Type": "AWS::S3::Object",
                            "Values": [{"Fn::Join": ["", [{"Fn::GetAtt": [ids["DataBucket"], "Arn"]}, "/raw/"]]}],
                        }
                    ],
                    "IncludeManagementEvents": False,
                    "ReadWriteType": "ReadOnly",
                },
            ],
        },
    )


def test_the_trail_goes_to_cloudwatch_logs_where_the_stage_says(stage):
    """prod: also to an encrypted log group; dev: its S3 delivery is its record (no ingestion bill)."""
    template = data(stage)
    [trail] = properties(template, "AWS::CloudTrail::Trail")
    trail_groups = [lid for lid in resources(template, "AWS::Logs::LogGroup") if lid.startswith("TrailLogs")]
    if stage.config.data.trail_to_cloudwatch_logs:
        [group_id] = trail_groups
        assert trail["CloudWatchLogsLogGroupArn"] == {"Fn::GetAtt": [group_id, "Arn"]}
        group = resources(template, "AWS::Logs::LogGroup")[group_id]["Properties"]
        assert group["KmsKeyId"] == {"Fn::GetAtt": [key_id(template), "Arn"]}
        assert group["RetentionInDays"] == stage.config.data.trail_log_retention_days
    else:
        assert "CloudWatchLogsLogGroupArn" not in trail and "CloudWatchLogsRoleArn" not in trail
        assert trail_groups == []
    assert stage.config.data.trail_to_cloudwatch_logs == (stage.config.name == "prod")


def test_operator_topic_is_encrypted_and_refuses_plain_http(stage):
    template = data(stage)
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key_id(template), "Arn"]}})
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )


def _lone_data_stack(lone_app, config) -> Template:
    return Template.from_stack(DataStack(lone_app(), "Data", config=config))


def test_trail_can_be_switched_off_for_accounts_with_an_organisation_trail(stage_config, lone_app):
    template = _lone_data_stack(lone_app, stage_config(data={"cloudtrail_data_events": False}))
    template.resource_count_is("AWS::CloudTrail::Trail", 0)
    template.resource_count_is("AWS::Logs::LogGroup", 0)


def test_operators_are_subscribed_by_email_from_the_configuration(stage_config, lone_app):
    emails = ["ops@example.org", "oncall@example.org"]
    template = _lone_data_stack(lone_app, stage_config(notifications={"emails": emails}))
    subscriptions = properties(template, "AWS::SNS::Subscription")
    assert sorted(s["Endpoint"] for s in subscriptions) == sorted(emails)
    assert {s["Protocol"] for s in subscriptions} == {"email"}


def test_a_stage_with_no_operator_subscriber_is_warned_about_loudly(stage_config, lone_app):
    from aws_cdk.assertions import Annotations as Found

    silent = DataStack(lone_app(), "Data", config=stage_config(notifications={"emails": []}))
    [warning] = Found.from_stack(silent).find_warning("*", Match.string_like_regexp("NO ONE HEARS THE ALARMS"))
    assert "notifications.emails is empty" in warning.entry.data and "config/stages/variant.toml" in warning.entry.data
    heard = DataStack(lone_app(), "Data", config=stage_config(notifications={"emails": ["ops@example.org"]}))
    assert Found.from_stack(heard).find_warning("*", Match.string_like_regexp("NO ONE HEARS")) == []


def test_the_checks_read_the_warning_of_a_shipped_stage_with_no_subscriber(dev):
    """python -m checks prints each of these as a WARNING line after its summary."""
    from checks.assembly import read_warnings

    assert dev.config.notifications.emails == ()
    warnings = [w for w in read_warnings(dev.outdir) if "NO ONE HEARS THE ALARMS" in w]
    assert [w.split(":")[0] for w in warnings] == ["MlPlatform-dev-Data"]
    assert "of stage 'dev'" in warnings[0]


def test_captured_personal_data_and_access_logs_expire_as_the_stage_says(stage):
    """The data bucket keeps capture/ for data.capture_expiration_days, the access-log bucket every
    log for data.access_log_expiration_days; nothing else of the data expires."""
    rules = {
        name: {r["Id"]: r for r in bucket(data(stage), name)["Properties"]["LifecycleConfiguration"]["Rules"]}
        for name in ALL_BUCKETS
    }
    capture = rules["DataBucket"]["expire-capture"]
    assert capture["Prefix"] == "capture/" and capture["ExpirationInDays"] == stage.config.data.capture_expiration_days
    logs = rules["AccessLogsBucket"]["expire-everything"]
    assert "Prefix" not in logs and logs["ExpirationInDays"] == stage.config.data.access_log_expiration_days
    expiring = {
        (name, rule_id) for name, by_id in rules.items() for rule_id, r in by_id.items() if "ExpirationInDays" in r
    }
    assert expiring == {("DataBucket", "expire-capture"), ("AccessLogsBucket", "expire-everything")}


def test_the_log_bucket_takes_cloudtrail_deliveries_from_the_platform_trail_only(stage):
    template = data(stage)
    [trail] = properties(template, "AWS::CloudTrail::Trail")
    name = f"{stage.config.resource_prefix}-data-events"
    assert trail["TrailName"] == name
    policy = next(
        p
        for p in properties(template, "AWS::S3::BucketPolicy")
        if "CloudTrailDeliversForThisTrailOnly" in json.dumps(p)
    )
    [deny] = [s for s in policy["PolicyDocument"]["Statement"] if s.get("Sid") == "CloudTrailDeliversForThisTrailOnly"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert sorted(deny["Action"]) == ["s3:GetBucketAcl", "s3:PutObject"]
    assert f":trail/{name}" in json.dumps(deny["Condition"]["StringNotEquals"]["aws:SourceArn"])
