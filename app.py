#!/usr/bin/env python3
"""The CDK app. It only wires: load the stage configuration, create the stacks, pass references
between them and apply the cdk-nag packs. No resource is defined here.

``python app.py`` and pytest do not read ``cdk.json`` the way the CDK CLI does, so the app is
always built through :func:`build_app`, which loads ``cdk.json``'s context (the feature flags)
first; context given on the command line (``-c stage=prod``) still wins.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NagReportFormat, NIST80053R5Checks

from config import ConfigError, StageConfig, load_stage
from stacks.data import DataStack
from stacks.etl import EtlStack, dataset_specs
from stacks.hosting import HostingStack
from stacks.network import NetworkStack
from stacks.studio import StudioStack
from stacks.training import TrainingStack

ROOT = Path(__file__).resolve().parent
STAGE_CONTEXT_KEYS = ("stage", "account", "region")


def cdk_json_context() -> dict[str, Any]:
    return json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> cdk.App:
    """Create the app for the stage named in the context (``dev`` by default)."""
    app = cdk.App(context={**cdk_json_context(), **(context or {})}, outdir=outdir, analytics_reporting=False)
    config = load_stage({key: app.node.try_get_context(key) for key in STAGE_CONTEXT_KEYS})
    build_platform(app, config)
    for pack in (AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks):
        cdk.Aspects.of(app).add(pack(verbose=True, reports=True, report_formats=[NagReportFormat.JSON]))
    return app


def build_platform(app: cdk.App, config: StageConfig) -> dict[str, cdk.Stack]:
    env = None if config.environment_agnostic else cdk.Environment(account=config.account, region=config.region)
    common: dict[str, Any] = {"config": config, "env": env, "termination_protection": config.production}
    prefix = config.stack_prefix

    data = DataStack(
        app, f"{prefix}-Data", description="ML platform: KMS key, buckets, trail, operator topic", **common
    )
    network = NetworkStack(
        app, f"{prefix}-Network", key=data.key, description="ML platform: private VPC and endpoints", **common
    )

    etl = EtlStack(
        app,
        f"{prefix}-Etl",
        key=data.key,
        data=data.data_store,
        alarm_topic=data.alarm_topic,
        vpc=network.vpc,
        subnets=network.subnets,
        description="ML platform: Glue catalogue and preparation job, start_etl",
        **common,
    )

    training = TrainingStack(
        app,
        f"{prefix}-Training",
        key=data.key,
        data=data.data_store,
        artifacts=data.artifact_store,
        alarm_topic=data.alarm_topic,
        vpc=network.vpc,
        subnets=network.subnets,
        description="ML platform: SageMaker execution role, model registry, training and batch Lambdas",
        **common,
    )

    stacks: dict[str, cdk.Stack] = {"data": data, "network": network, "etl": etl, "training": training}
    if config.workspace.kind != "none":
        stacks["studio"] = StudioStack(
            app,
            f"{prefix}-Studio",
            key=data.key,
            data=data.data_store,
            artifacts=data.artifact_store,
            vpc=network.vpc,
            subnets=network.subnets,
            execution_role=training.execution_role,
            model_package_group_prefix=training.group_prefix,
            description=f"ML platform: the data scientists' {config.workspace.kind} workspace in the VPC",
            **common,
        )
    known = dataset_specs()
    for dataset in config.hosting.datasets:
        if dataset not in known:
            raise ConfigError(
                f"stage {config.name!r}: hosting.datasets has {dataset!r}, which has no spec; "
                f"allowed: {', '.join(sorted(known))}"
            )
        stacks[f"hosting-{dataset}"] = HostingStack(
            app,
            f"{prefix}-Hosting-{dataset}",
            dataset=dataset,
            key=data.key,
            data=data.data_store,
            alarm_topic=data.alarm_topic,
            vpc=network.vpc,
            subnets=network.subnets,
            execution_role=training.execution_role,
            security_group=training.security_group,
            model_package_group=training.model_package_groups[dataset].model_package_group_name,
            description=f"ML platform: the {dataset} endpoint, rolled forward on approved models",
            **common,
        )

    for key, value in config.tags.items():
        cdk.Tags.of(app).add(key, value)
    return stacks


def main() -> None:
    try:
        app = build_app()
    except ConfigError as error:
        sys.exit(f"configuration error: {error}")
    app.synth()


if __name__ == "__main__":
    main()
