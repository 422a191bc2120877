"""EncryptedLogGroup: a CloudWatch log group under the platform key with a set retention."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct


class EncryptedLogGroup(Construct):
    """A log group encrypted with ``key`` that keeps events for ``retention_days``.

    ``retention_days`` is one of the values CloudWatch Logs accepts; the stage configuration
    has already checked it, so it is written as is (CDK's RetentionDays enum names periods,
    not day counts).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, key: kms.IKey, retention_days: int, retain: bool
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            encryption_key=key,
            retention=logs.RetentionDays.INFINITE,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        cfn = self.log_group.node.default_child
        assert isinstance(cfn, logs.CfnLogGroup)
        cfn.retention_in_days = retention_days
