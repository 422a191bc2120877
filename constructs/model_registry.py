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
        return f"{self.prefix}-{dataset}"

    def arns(self) -> tuple[list[str], list[str]]:
        """ARN patterns of the platform's groups and of the packages in them."""
        stack = Stack.of(self)
        arn = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}"
        return [f"{arn}:model-package-group/{self.prefix}-*"], [f"{arn}:model-package/{self.prefix}-*/*"]
