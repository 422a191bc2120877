"""SecureBucket: an S3 bucket with the platform's security defaults built in.

Note the import path: this module lives in the project's top-level ``constructs/`` folder,
which has no ``__init__.py`` on purpose. The ``constructs`` library that aws-cdk-lib depends on
extends its package path, so ``from constructs.secure_bucket import SecureBucket`` finds this
file while ``from constructs import Construct`` keeps finding the library.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct
from constructs.nag_acknowledgements import acknowledge

REPLICATION_REASON = (
    "Cross-region replication is a disaster-recovery choice outside this single-region "
    "platform's scope; versioning, noncurrent-version retention and RETAIN in production "
    "protect the objects against deletion and overwrite."
)
_SSE_S3 = "S3 server access logging delivers only to buckets encrypted with SSE-S3 (AES256), not SSE-KMS."
LOG_BUCKET_REASONS = {
    "HIPAA.Security-S3DefaultEncryptionKMS": _SSE_S3,
    "NIST.800.53.R5-S3DefaultEncryptionKMS": _SSE_S3,
}


class Lifecycle(TypedDict):
    """How long a bucket keeps what it no longer needs, and whether it outlives its stack."""

    retain: bool
    noncurrent_version_expiration: Duration
    abort_incomplete_multipart_upload_after: Duration


class SecureBucket(Construct):
    """A private, versioned, TLS-only bucket that logs its access and encrypts by default.

    With ``encryption_key`` the bucket uses SSE-KMS with that key (and an S3 bucket key, to keep
    KMS requests down). Without one it uses SSE-S3, which only the access-log destination
    should do (``access_logs_bucket=None`` marks that bucket).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        encryption_key: kms.IKey | None,
        access_logs_bucket: s3.IBucket | None,
        retain: bool,
        noncurrent_version_expiration: Duration,
        abort_incomplete_multipart_upload_after: Duration,
        event_bridge: bool = False,
        expirations: Mapping[str, Duration] | None = None,
    ) -> None:
        """``expirations``: key prefix ("" for every object) -> how long its current objects are
        kept; an expired object becomes a noncurrent version, kept for
        ``noncurrent_version_expiration`` more."""
        super().__init__(scope, construct_id)
        if encryption_key is None and access_logs_bucket is not None:
            raise ValueError(
                f"{self.node.path}: only the access-log destination (access_logs_bucket=None) may use SSE-S3; "
                "pass encryption_key for any other bucket"
            )

        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS if encryption_key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=encryption_key,
            bucket_key_enabled=encryption_key is not None,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=access_logs_bucket,
            server_access_logs_prefix=f"{construct_id.lower()}/" if access_logs_bucket else None,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="noncurrent-versions-and-incomplete-uploads",
                    noncurrent_version_expiration=noncurrent_version_expiration,
                    abort_incomplete_multipart_upload_after=abort_incomplete_multipart_upload_after,
                    expired_object_delete_marker=True,
                ),
                *(
                    s3.LifecycleRule(
                        id=f"expire-{prefix.strip('/').replace('/', '-') or 'everything'}",
                        prefix=prefix or None,
                        expiration=kept,
                    )
                    for prefix, kept in sorted((expirations or {}).items())
                ),
            ],
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            auto_delete_objects=not retain,
        )
        if event_bridge:
            # Set on the L1 resource: the L2 flag would add CDK's BucketNotifications
            # custom-resource Lambda just to switch this on.
            cfn_bucket = self.bucket.node.default_child
            assert isinstance(cfn_bucket, s3.CfnBucket)
            cfn_bucket.add_property_override(
                "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
            )

        reasons = {
            "HIPAA.Security-S3BucketReplicationEnabled": REPLICATION_REASON,
            "NIST.800.53.R5-S3BucketReplicationEnabled": REPLICATION_REASON,
        }
        if access_logs_bucket is None:
            reasons |= LOG_BUCKET_REASONS
        acknowledge(self.bucket, reasons)

    def grant_read(self, grantee: iam.IGrantable, prefix: str = "*") -> iam.Grant:
        """Read objects under ``prefix`` (decrypting with the bucket's key)."""
        return self.bucket.grant_read(grantee, prefix)

    def grant_write(self, grantee: iam.IGrantable, prefix: str = "*") -> iam.Grant:
        """Write objects under ``prefix`` (encrypting with the bucket's key); never delete.

        Exactly what an upload needs: PutObject, and AbortMultipartUpload for a multipart upload
        that fails; with SSE-KMS, GenerateDataKey and (to complete a multipart upload) Decrypt.
        Not CDK's ``grant_put``, which adds object tagging, legal hold and retention.
        https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions
        """
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:PutObject", "s3:AbortMultipartUpload"],
            resource_arns=[self.bucket.arn_for_objects(prefix)],
        )
        if self.bucket.encryption_key is not None:
            self.bucket.encryption_key.grant(grantee, "kms:GenerateDataKey", "kms:Decrypt")
        return grant

    def grant_read_write(self, grantee: iam.IGrantable, prefix: str = "*") -> iam.Grant:
        """Read, write and delete objects under ``prefix`` (a job's own output, a person's sandbox)."""
        self.grant_read(grantee, prefix)
        self.grant_write(grantee, prefix)
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["s3:DeleteObject"], resource_arns=[self.bucket.arn_for_objects(prefix)]
        )
