"""Draw docs/architecture.svg: the platform's stacks, what each holds, and the data's path.

    python docs/architecture.py        # rewrite docs/architecture.svg

The picture is data, not art: STACKS below lists every stack with its status. A stack marked
built must exist in the app and one marked planned must not (tests/test_architecture.py checks
both against a synthesized app), so the picture cannot drift from the code unnoticed.
No dependencies: plain SVG text.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path

OUT = Path(__file__).resolve().parent / "architecture.svg"


@dataclass(frozen=True)
class Box:
    stack: str  # the stack's suffix in the app: MlPlatform-<stage>-<stack>
    status: str  # "built" or "planned (issue N)"
    lines: tuple[str, ...]
    x: int
    y: int
    w: int = 260
    h: int = 150


STACKS = (
    Box(
        "Data",
        "built",
        (
            "KMS platform key (rotation)",
            "data bucket: raw/ prepared/ batch-input/",
            "  batch-output/ capture/ → EventBridge",
            "artifacts bucket · access-log bucket",
            "CloudTrail S3 data events",
            "SNS operator topic (KMS)",
        ),
        20,
        60,
    ),
    Box(
        "Network",
        "built",
        (
            "VPC: isolated subnets in 2 or 3 AZs",
            "no NAT, no internet gateway",
            "S3 gateway endpoint",
            "interface endpoints (SageMaker, STS,",
            "  Logs, ECR, Glue, KMS, ...) HTTPS only",
            "flow logs → KMS log group",
        ),
        20,
        240,
    ),
    Box(
        "Etl",
        "built",
        (
            "start_etl Lambda on raw/<dataset>/ (+ DLQ)",
            "Glue 5 PySpark job in the VPC (KMS)",
            "→ prepared/<dataset>/<run>/ train/",
            "  validation/ test/ schema.json _SUCCESS",
            "Glue crawler: raw/ and prepared/",
            "failures → SNS operator topic",
        ),
        340,
        60,
    ),
    Box(
        "Training",
        "built",
        (
            "start_training on _SUCCESS: training",
            "  or Bayesian tuning, isolated, in VPC",
            "register_model: metric gate →",
            "  model registry (Approved/Rejected)",
            "start_batch_transform: batch-input/",
            "  → batch-output/ (joined to input)",
        ),
        660,
        60,
    ),
    Box(
        "Hosting",
        "built",
        (
            "one stack per served dataset:",
            "endpoint (≥2 instances in prod, multi-AZ)",
            "  autoscaling · data capture → capture/",
            "deploy_model: Approved package →",
            "  CloudFormation update → blue/green",
            "  canary, auto-rollback on alarms",
        ),
        660,
        240,
    ),
    Box(
        "Studio",
        "built",
        (
            "Studio domain (VpcOnly, IAM, KMS),",
            "  user profiles, idle shutdown",
            "or a notebook instance (no internet,",
            "  no root, KMS, idle stop)",
            "data scientists: read data, own",
            "  sandbox, jobs as the platform role",
        ),
        340,
        240,
    ),
    Box(
        "Monitoring",
        "built",
        (
            "dashboard: every alarm · Glue runs, failures · model jobs, gate",
            "  endpoints · functions, queues, DLQs · runbook: docs/runbook.md",
            "monthly budget on the stage tag → SNS operator topic",
        ),
        340,
        420,
        580,
        90,
    ),
)
ARROWS = (
    ((280, 135), (340, 135), "Object Created"),
    ((600, 135), (660, 135), "_SUCCESS"),
    ((790, 210), (790, 240), "Approved"),
)


def _box(box: Box) -> str:
    built = box.status == "built"
    style = (
        'fill="#eef6ee" stroke="#2e7d32" stroke-width="2"'
        if built
        else 'fill="#f7f7f7" stroke="#999" stroke-dasharray="6 4"'
    )
    parts = [
        f'<g class="stack {"built" if built else "planned"}" data-stack="{box.stack}">',
        f'<rect x="{box.x}" y="{box.y}" width="{box.w}" height="{box.h}" rx="8" {style}/>',
        f'<text x="{box.x + 10}" y="{box.y + 22}" font-weight="bold">{escape(box.stack)}Stack</text>',
        f'<text x="{box.x + box.w - 10}" y="{box.y + 22}" text-anchor="end" font-size="11" fill="#666">{escape(box.status)}</text>',
    ]
    for i, line in enumerate(box.lines):
        parts.append(f'<text x="{box.x + 10}" y="{box.y + 44 + i * 17}" font-size="12">{escape(line)}</text>')
    parts.append("</g>")
    return "\n".join(parts)


def _arrow(start: tuple[int, int], end: tuple[int, int], label: str) -> str:
    (x1, y1), (x2, y2) = start, end
    words = label.split()
    horizontal = y1 == y2
    text = "".join(
        f'<text x="{(x1 + x2) / 2 if horizontal else x1 + 8}" y="{(y1 - 8 - 12 * (len(words) - 1 - i)) if horizontal else (y1 + y2) / 2 + 4}" '
        f'text-anchor="{"middle" if horizontal else "start"}" font-size="10" fill="#444">{escape(word)}</text>'
        for i, word in enumerate(words)
    )
    return f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#444" stroke-width="1.5" marker-end="url(#arrow)"/>{text}'


def render() -> str:
    width, height = 940, 560
    body = "\n".join([*(_box(box) for box in STACKS), *(_arrow(*arrow) for arrow in ARROWS)])
    return f"""<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>
<rect width="{width}" height="{height}" fill="white"/>
<text x="20" y="32" font-size="18" font-weight="bold">ML platform on Amazon SageMaker: one cdk deploy per account and stage</text>
{body}
<text x="20" y="{height - 12}" font-size="11" fill="#666">Solid: built and synthesized today. Dashed: planned. Generated by docs/architecture.py.</text>
</svg>
"""


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
