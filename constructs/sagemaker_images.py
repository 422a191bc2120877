"""SageMakerImages: container image URIs per region, from the SageMaker SDK's own tables.

The SDK (sagemaker-core) ships, for each algorithm and version, the ECR registry account of
every region. This construct turns those tables into one CloudFormation mapping, so the
template looks its image up by ``AWS::Region`` at deploy time: no account id is typed here, and
an environment-agnostic stack still gets the right image wherever it is deployed. The SDK's
JSON files are read as data (``importlib.metadata``); the SDK itself is not imported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from aws_cdk import CfnMapping, Stack
from constructs import Construct

SDK_DISTRIBUTION = "sagemaker-core"
TABLES = "sagemaker/core/image_uri_config"


@dataclass(frozen=True)
class Image:
    algorithm: str  # the SDK's framework name: xgboost, linear-learner, knn, ...
    version: str
    scope: str = "training"  # which of the SDK's scopes to read when the table has several


def registries(image: Image) -> tuple[dict[str, str], str]:
    """The SDK's {region: registry account} and repository name for one image."""
    path = Path(str(metadata.distribution(SDK_DISTRIBUTION).locate_file(f"{TABLES}/{image.algorithm}.json")))
    table = json.loads(path.read_text(encoding="utf-8"))
    if image.scope in table:
        table = table[image.scope]
    versions = table["versions"]
    version = table.get("version_aliases", {}).get(image.version, image.version)
    if version not in versions:
        raise ValueError(
            f"{SDK_DISTRIBUTION} has no {image.algorithm} image {image.version}; it has {sorted(versions)}"
        )
    entry = versions[version]
    return dict(entry["registries"]), entry["repository"]


def _key(name: str) -> str:
    return "".join(ch for ch in name.title() if ch.isalnum())


class SageMakerImages(Construct):
    """One mapping of region -> image URI for each requested image."""

    def __init__(self, scope: Construct, construct_id: str, *, images: dict[str, Image]) -> None:
        super().__init__(scope, construct_id)
        mapping: dict[str, dict[str, str]] = {}
        self._tags = {}
        for name, image in images.items():
            accounts, repository = registries(image)
            for region, account in accounts.items():
                domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
                # An image the SDK's table gives without versions (Model Monitor's analyzer) has no tag.
                tag = f":{image.version}" if image.version else ""
                uri = f"{account}.dkr.ecr.{region}.{domain}/{repository}{tag}"
                mapping.setdefault(region, {})[_key(name)] = uri
            self._tags[name] = image.version
        self.mapping = CfnMapping(self, "Mapping", mapping=mapping, lazy=True)
        self.regions = sorted(mapping)

    def uri(self, name: str) -> str:
        """The image URI for the stack's region (a template lookup, or a literal when the region
        is known at synth)."""
        if name not in self._tags:
            raise KeyError(f"no image {name!r}; known: {sorted(self._tags)}")
        return self.mapping.find_in_map(Stack.of(self).region, _key(name))
