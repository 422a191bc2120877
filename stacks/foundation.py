"""What the stacks of a stage stand on: decided once in ``app.py`` and handed to every stack
built on the Data and Network stacks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from constructs.event_function import FunctionDefaults
from constructs.secure_bucket import SecureBucket

from config import StageConfig
from stacks.data import DataStack
from stacks.network import NetworkStack


@dataclass(frozen=True)
class Foundation:
    """The stage's configuration and dataset specs (loaded once per synth), the platform key, the
    data and artifact buckets, the VPC and its subnets, and the settings every function shares."""

    config: StageConfig
    specs: dict[str, Path]
    key: kms.IKey
    data: SecureBucket
    artifacts: SecureBucket
    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection
    functions: FunctionDefaults

    @property
    def subnet_ids(self) -> list[str]:
        """The ids of the subnets the platform's functions, jobs, endpoints and workspace use."""
        return self.vpc.select_subnets(subnet_type=self.subnets.subnet_type).subnet_ids

    @classmethod
    def of(cls, config: StageConfig, specs: dict[str, Path], data: DataStack, network: NetworkStack) -> Foundation:
        functions = FunctionDefaults(
            key=data.key,
            alarm_topic=data.alarm_topic,
            vpc=network.vpc,
            subnets=network.subnets,
            log_retention_days=config.functions.log_retention_days,
            log_level=config.functions.log_level,
            reserved_concurrency=config.functions.reserved_concurrency or None,  # 0: none reserved
            retry_attempts=config.functions.retry_attempts,
            retain_logs=config.retains_data,
            name_prefix=config.resource_prefix,
        )
        return cls(
            config=config,
            specs=specs,
            key=data.key,
            data=data.data_store,
            artifacts=data.artifact_store,
            vpc=network.vpc,
            subnets=network.subnets,
            functions=functions,
        )
