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
from config.datasets import dataset_specs
from etl.dataset_spec import SpecError
from stacks.data import DataStack
from stacks.etl import EtlStack
from stacks.foundation import Foundation
from stacks.hosting import HostingStack
from stacks.monitoring import MonitoringStack, Watched
from stacks.network import NetworkStack
from stacks.studio import StudioStack
from stacks.training import TrainingStack

ROOT = Path(__file__).resolve().parent
STAGE_CONTEXT_KEYS = ("stage", "account", "region")
# For `make local`: more spec files (comma-separated paths; their datasets are served) and datasets
# to serve on top of the stage's hosting.datasets (comma-separated names). Neither changes a
# stage's configuration file.
EXTRA_SPECS, SERVE = "extra_specs", "serve"


def cdk_json_context() -> dict[str, Any]:
    return json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> cdk.App:
    """Create the app for the stage named in the context (``dev`` by default)."""
    # Path metadata on, as the CDK CLI sets it: checks/ maps cdk-nag's findings (by construct path)
    # to the acknowledgements in the templates through it.
    defaults = {"aws:cdk:enable-path-metadata": True}
    app = cdk.App(
        context={**defaults, **cdk_json_context(), **(context or {})}, outdir=outdir, analytics_reporting=False
    )
    config = load_stage({key: app.node.try_get_context(key) for key in STAGE_CONTEXT_KEYS})
    extra = tuple(Path(p).resolve() for p in _listed(app.node.try_get_context(EXTRA_SPECS)))
    specs = dataset_specs(extra)
    # A spec given for a local run is served too: its run ends with a prediction like any other.
    wanted = [*_listed(app.node.try_get_context(SERVE)), *(name for name, path in specs.items() if path in extra)]
    serve = [d for d in dict.fromkeys(wanted) if d not in config.hosting.datasets]
    if serve:
        config = config.model_copy(
            update={"hosting": config.hosting.model_copy(update={"datasets": [*config.hosting.datasets, *serve]})}
        )
    build_platform(app, config, specs)
    for pack in (AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks):
        cdk.Aspects.of(app).add(pack(verbose=True, reports=True, report_formats=[NagReportFormat.JSON]))
    return app


def _listed(value: Any) -> list[str]:
    """A context value given as a list or as comma-separated text (``-c serve=a,b``)."""
    if not value:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def build_platform(app: cdk.App, config: StageConfig, specs: dict[str, Path] | None = None) -> dict[str, cdk.Stack]:
    """Every stack of the stage. The dataset specs are loaded once (here, unless given) and what
    every function shares is decided once, then passed down."""
    env = None if config.environment_agnostic else cdk.Environment(account=config.account, region=config.region)
    common: dict[str, Any] = {"env": env, "termination_protection": config.production}
    prefix = config.stack_prefix
    specs = dataset_specs() if specs is None else specs

    data = DataStack(
        app,
        f"{prefix}-Data",
        config=config,
        description="ML platform: KMS key, buckets, trail, operator topic",
        **common,
    )
    network = NetworkStack(
        app,
        f"{prefix}-Network",
        config=config,
        key=data.key,
        description="ML platform: private VPC and endpoints",
        **common,
    )
    foundation = Foundation.of(config, specs, data, network)
    etl = EtlStack(
        app,
        f"{prefix}-Etl",
        foundation=foundation,
        description="ML platform: Glue catalogue and preparation job, start_etl",
        **common,
    )
    training = TrainingStack(
        app,
        f"{prefix}-Training",
        foundation=foundation,
        description="ML platform: SageMaker execution role, model registry, training and batch Lambdas",
        **common,
    )

    stacks: dict[str, cdk.Stack] = {"data": data, "network": network, "etl": etl, "training": training}
    if config.workspace.kind != "none":
        stacks["studio"] = StudioStack(
            app,
            f"{prefix}-Studio",
            foundation=foundation,
            jobs_security_group=training.security_group,
            model_package_group_prefix=training.registry.prefix,
            description=f"ML platform: the data scientists' {config.workspace.kind} workspace in the VPC",
            **common,
        )
    for dataset in config.hosting.datasets:
        if dataset not in specs:
            raise ConfigError(
                f"stage {config.name!r}: hosting.datasets has {dataset!r}, which has no spec; "
                f"allowed: {', '.join(sorted(specs))}"
            )
        stacks[f"hosting-{dataset}"] = HostingStack(
            app,
            f"{prefix}-Hosting-{dataset}",
            foundation=foundation,
            dataset=dataset,
            execution_role=training.execution_role,
            security_group=training.security_group,
            model_package_group=training.registry.group_name(dataset),
            preparation=etl.runs,
            description=f"ML platform: the {dataset} endpoint, rolled forward on approved models",
            **common,
        )
        # check_drift starts the preparation job by name: the job is there first.
        stacks[f"hosting-{dataset}"].add_stack_dependency(etl, "check_drift starts the preparation job")

    hosting = [stack for stack in stacks.values() if isinstance(stack, HostingStack)]
    functions = [etl.start_etl, training.start_training, training.register_model, training.start_batch_transform]
    functions += [stack.deploy_model for stack in hosting]
    functions += [stack.check_drift for stack in hosting if stack.check_drift is not None]
    stacks["monitoring"] = MonitoringStack(
        app,
        f"{prefix}-Monitoring",
        config=config,
        topic=data.alarm_topic,
        watched=Watched(
            functions=functions,
            preparation_job=etl.preparation.name,
            failure_rules={"preparation job": etl.preparation.failure_rule, "crawler": etl.catalogue.failure_rule},
            endpoints={stack.endpoint_name: stack.dataset for stack in hosting},
            quality={stack.endpoint_name: stack.quality_monitor.metric for stack in hosting if stack.quality_monitor},
            datasets=sorted(specs),
            alarm_names=[
                *(name for function in functions for name in function.alarm_names),
                *(name for stack in hosting for name in stack.alarm_names),
            ],
        ),
        description="ML platform: the operators' dashboard and the stage's budget",
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
    except SpecError as error:  # a broken spec names dataset, column and problem
        sys.exit(f"dataset spec error: {error}")
    app.synth()


if __name__ == "__main__":
    main()
