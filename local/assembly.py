"""The cloud assembly that ``cdk synth`` wrote: stacks in deployment order, templates, assets.

Read from ``manifest.json`` and the files it names (the cloud assembly schema, as the CDK CLI
reads it); nothing here imports aws-cdk-lib.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STACK = "aws:cloudformation:stack"
ASSET_MANIFEST = "cdk:asset-manifest"


class AssemblyError(RuntimeError):
    """The folder is not a cloud assembly the twin can run."""


@dataclass(frozen=True)
class FileAsset:
    """One file asset: a file, or a folder that is published zipped (``packaging: zip``)."""

    hash: str
    path: Path
    packaging: str  # "file" or "zip"
    bucket: str  # with ${AWS::AccountId}, ${AWS::Region} placeholders, as in the manifest
    key: str
    display_name: str = ""


@dataclass(frozen=True)
class StackArtifact:
    name: str
    template: dict[str, Any]
    template_file: Path
    dependencies: tuple[str, ...]
    assets: tuple[FileAsset, ...] = field(default=())
    bootstrap_version_parameter: str = ""


@dataclass(frozen=True)
class Assembly:
    root: Path
    stacks: tuple[StackArtifact, ...]  # in deployment order (dependencies first)
    account: str | None = None  # where the stacks name their environment (a prod stage does); else None
    region: str | None = None

    def stack(self, name: str) -> StackArtifact:
        for stack in self.stacks:
            if stack.name == name:
                return stack
        raise AssemblyError(f"{self.root}: no stack {name!r} (stacks: {', '.join(s.name for s in self.stacks)})")

    @property
    def assets(self) -> dict[str, FileAsset]:
        return {asset.hash: asset for stack in self.stacks for asset in stack.assets}


def load(root: Path | str) -> Assembly:
    root = Path(root)
    manifest_file = root / "manifest.json"
    if not manifest_file.is_file():
        raise AssemblyError(f"{root} holds no manifest.json: run `make synth` (or `cdk synth`) first")
    try:
        artifacts: dict[str, Any] = json.loads(manifest_file.read_text(encoding="utf-8"))["artifacts"]
    except (ValueError, KeyError) as error:
        raise AssemblyError(
            f"{manifest_file} is not a cloud assembly manifest ({type(error).__name__}: {error})"
        ) from None
    asset_manifests = {
        name: _file_assets(root, artifact) for name, artifact in artifacts.items() if artifact["type"] == ASSET_MANIFEST
    }
    stacks: dict[str, StackArtifact] = {}
    environments: set[tuple[str | None, str | None]] = set()
    for name, artifact in artifacts.items():
        if artifact["type"] != STACK:
            continue
        environments.add(_environment(artifact.get("environment", "")))
        properties = artifact["properties"]
        dependencies = tuple(d for d in artifact.get("dependencies", []) if artifacts[d]["type"] == STACK)
        assets = tuple(a for d in artifact.get("dependencies", []) for a in asset_manifests.get(d, ()))
        template_file = root / properties["templateFile"]
        stacks[name] = StackArtifact(
            name=name,
            template=json.loads(template_file.read_text(encoding="utf-8")),
            template_file=template_file,
            dependencies=dependencies,
            assets=assets,
            bootstrap_version_parameter=properties.get("bootstrapStackVersionSsmParameter", ""),
        )
    if len(environments) > 1:
        named = ", ".join(sorted(f"{a or 'any account'}/{r or 'any region'}" for a, r in environments))
        raise AssemblyError(f"{root}: the stacks name more than one environment ({named}); the twin emulates one")
    account, region = environments.pop() if environments else (None, None)
    return Assembly(root, tuple(_deployment_order(stacks)), account, region)


def _environment(name: str) -> tuple[str | None, str | None]:
    """The account and region of ``aws://ACCOUNT/REGION`` (the manifest's environment); the
    ``unknown-account`` and ``unknown-region`` of an environment-agnostic stack are None."""
    account, _, region = name.removeprefix("aws://").partition("/")
    return (
        None if account in ("", "unknown-account") else account,
        None if region in ("", "unknown-region") else region,
    )


def _file_assets(root: Path, artifact: dict[str, Any]) -> tuple[FileAsset, ...]:
    manifest = json.loads((root / artifact["properties"]["file"]).read_text(encoding="utf-8"))
    if manifest.get("dockerImages"):
        raise AssemblyError(f"{artifact['properties']['file']}: docker image assets cannot run on the twin")
    assets = []
    for asset_hash, asset in manifest.get("files", {}).items():
        source = asset["source"]
        if "path" not in source:
            raise AssemblyError(f"asset {asset_hash}: only file and folder assets are supported, not {source}")
        # Every destination of one asset holds the same bytes; the twin has one account and region.
        destination = next(iter(asset["destinations"].values()))
        assets.append(
            FileAsset(
                hash=asset_hash,
                path=root / source["path"],
                packaging=source.get("packaging", "file"),
                bucket=destination["bucketName"],
                key=destination["objectKey"],
                display_name=asset.get("displayName", ""),
            )
        )
    return tuple(assets)


def _deployment_order(stacks: dict[str, StackArtifact]) -> list[StackArtifact]:
    ordered: list[StackArtifact] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if any(s.name == name for s in ordered):
            return
        if name in visiting:
            raise AssemblyError(f"stack dependencies form a cycle through {name}")
        visiting.add(name)
        for dependency in stacks[name].dependencies:
            visit(dependency)
        visiting.discard(name)
        ordered.append(stacks[name])

    for name in stacks:
        visit(name)
    return ordered
