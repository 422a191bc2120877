"""The reusable constructs on their own: secure defaults that a stack cannot forget."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from constructs.encrypted_log_group import EncryptedLogGroup
from constructs.secure_bucket import SecureBucket

from tests.helpers import properties

LIFECYCLE = {
    "noncurrent_version_expiration": cdk.Duration.days(30),
    "abort_incomplete_multipart_upload_after": cdk.Duration.days(7),
}


@pytest.fixture
def stack(lone_app) -> cdk.Stack:
    return cdk.Stack(lone_app(), "Constructs")


def test_only_the_access_log_destination_may_skip_kms(stack):
    logs = s3.Bucket(stack, "Logs")
    with pytest.raises(ValueError, match="only the access-log destination"):
        SecureBucket(stack, "Data", encryption_key=None, access_logs_bucket=logs, retain=True, **LIFECYCLE)


def test_grants_are_scoped_to_a_prefix_and_never_delete(stack):
    key = kms.Key(stack, "Key")
    logs = s3.Bucket(stack, "Logs")
    bucket = SecureBucket(stack, "Data", encryption_key=key, access_logs_bucket=logs, retain=True, **LIFECYCLE)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    bucket.grant_read(role, "prepared/*")
    bucket.grant_write(role, "models/*")

    [policy] = properties(Template.from_stack(stack), "AWS::IAM::Policy")
    statements = policy["PolicyDocument"]["Statement"]
    actions = {action for statement in statements for action in _actions(statement)}
    assert not any("Delete" in action for action in actions)
    assert "s3:PutObject" in actions and "s3:GetObject*" in actions
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= actions  # the bucket's key comes with the grant
    # A write is exactly an upload (and a failed multipart upload's abort): no tagging, hold or retention.
    assert {a for a in actions if a.startswith("s3:Put") or a.startswith("s3:Abort")} == {
        "s3:PutObject",
        "s3:AbortMultipartUpload",
    }
    objects = repr([s["Resource"] for s in statements if any(a.startswith("s3:") for a in _actions(s))])
    assert "/prepared/*" in objects and "/models/*" in objects


def _actions(statement: dict) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def test_retained_bucket_is_not_emptied_on_delete(stack):
    SecureBucket(stack, "Logs", encryption_key=None, access_logs_bucket=None, retain=True, **LIFECYCLE)
    template = Template.from_stack(stack)
    template.resource_count_is("Custom::S3AutoDeleteObjects", 0)
    template.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"})


def test_log_group_writes_the_exact_retention_and_key(stack):
    key = kms.Key(stack, "Key")
    EncryptedLogGroup(stack, "Logs", key=key, retention_days=545, retain=False)
    [group] = properties(Template.from_stack(stack), "AWS::Logs::LogGroup")
    assert group["RetentionInDays"] == 545
    assert "KmsKeyId" in group
