"""ModelRegistry: one SageMaker model package group per dataset, named ``<prefix>-<dataset>``.

The groups hold every model the platform registered and the approvals people gave: a stage that
retains its data retains them. Their logical ids are pinned (``ModelPackageGroup<dataset>``).
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct
from constructs.logical_ids import pin
from constructs.nag_acknowledgements import nag_arn

from etl.platform_runtime import model_package_group


class ModelRegistry(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, prefix: str, datasets: Iterable[str], stage: str, retain: bool
    ) -> None:
        super().__init__(scope, construct_id)
        self.prefix = prefix
        self.groups: dict[str, sagemaker.CfnModelPackageGroup] = {}
        for name in datasets:
            group = sagemaker.CfnModelPackageGroup(
                self,
                name,
                model_package_group_name=self.group_name(name),
                model_package_group_description=f"Models of the {name} dataset ({stage})",
            )
            if retain:
                group.apply_removal_policy(RemovalPolicy.RETAIN)
            pin(group, "ModelPackageGroup" + name.replace("-", ""))
            self.groups[name] = group

    def group_name(self, dataset: str) -> str:
        return model_package_group(self.prefix, dataset)

    def arns(self) -> tuple[list[str], list[str]]:
        """ARN patterns of the platform's groups and of the packages in them."""
        stack = Stack.of(self)
        arn = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}"
        return [f"{arn}:model-package-group/{self.prefix}-*"], [f"{arn}:model-package/{self.prefix}-*/*"]

    def wildcards(self) -> list[str]:
        """Those ARN patterns as cdk-nag names them in an AwsSolutions-IAM5 finding."""
        stack = Stack.of(self)
        return [
            "Resource::" + nag_arn(stack, "sagemaker", resource)
            for resource in (f"model-package-group/{self.prefix}-*", f"model-package/{self.prefix}-*/*")
        ]
