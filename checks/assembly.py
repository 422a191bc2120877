"""The stacks of a synthesized cloud assembly (``cdk.out``), read from its manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SynthesizedStack:
    name: str
    template_path: Path
    region: str | None

    @property
    def template(self) -> dict:
        return json.loads(self.template_path.read_text(encoding="utf-8"))


def _manifest(outdir: Path) -> dict:
    manifest_path = Path(outdir) / "manifest.json"
    if not manifest_path.exists():
        raise FileNotFoundError(f"{manifest_path} not found: synthesize first (make synth)")
    return json.loads(manifest_path.read_text(encoding="utf-8"))


def read_lookups(outdir: Path) -> list[str]:
    """Context the app had to look up in an AWS account (the platform synthesizes without any)."""
    return [missing["key"] for missing in _manifest(outdir).get("missing", [])]


def read_stacks(outdir: Path) -> list[SynthesizedStack]:
    manifest = _manifest(outdir)
    stacks = []
    for name, artifact in manifest["artifacts"].items():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        region = artifact["environment"].rsplit("/", 1)[-1]
        stacks.append(
            SynthesizedStack(
                name=name,
                template_path=Path(outdir) / artifact["properties"]["templateFile"],
                region=None if region == "unknown-region" else region,
            )
        )
    return sorted(stacks, key=lambda stack: stack.name)


def read_warnings(outdir: Path) -> list[str]:
    """The warnings synthesis left in the assembly (``Annotations.add_warning_v2``), by stack."""
    warnings = []
    for name, artifact in _manifest(outdir)["artifacts"].items():
        metadata = dict(artifact.get("metadata", {}))
        if "additionalMetadataFile" in artifact:  # where newer CDK versions write a stack's metadata
            extra = Path(outdir) / artifact["additionalMetadataFile"]
            metadata |= json.loads(extra.read_text(encoding="utf-8"))
        for path, entries in metadata.items():
            for entry in entries:
                if entry.get("type") == "aws:cdk:warning":
                    text = str(entry.get("data", "")).split(" [ack: ")[0]
                    warnings.append(f"{name}: {text} ({path})")
    return warnings
