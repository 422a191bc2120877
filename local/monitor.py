"""A stand-in for Model Monitor's analyzer (the ``sagemaker-model-monitor-analyzer`` image), for
the twin's baseline jobs and monitoring runs.

It reads headerless CSV records, names the columns as the analyzer names those of a headerless
dataset (``_c0``, ``_c1``, ...), and writes its outputs in the analyzer's own formats
(https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-byoc-statistics.html,
model-monitor-byoc-constraints.html, model-monitor-interpreting-violations.html):

- baselining: ``statistics.json`` (per feature: ``inferred_type``, ``common`` counts, numbers' mean,
  sum, deviation, bounds and distribution, strings' distinct count and categories) and
  ``constraints.json`` (per feature: type, completeness, non-negativity or the category domain;
  ``monitoring_config`` with the analyzer's documented defaults);
- monitoring: ``constraint_violations.json``, ``{"violations": [{"feature_name",
  "constraint_check_type", "description"}]}`` with the documented check types.

What differs from the real analyzer, and is the twin's own: a numeric distribution is kept as ten
equal-width buckets (the analyzer keeps a KLL sketch), and drift is the largest distance between
the baseline's and the traffic's cumulative distributions over those buckets or over the
categories (the "Robust" comparison's statistic, without its significance test), flagged above
``comparison_threshold``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

ANALYZER_REPOSITORY = "sagemaker-model-monitor-analyzer"  # the image the twin plays
BUCKETS = 10
# The analyzer's documented defaults (model-monitor-byoc-constraints.html).
MONITORING_CONFIG = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    "datatype_check_threshold": 1.0,
    "domain_content_threshold": 1.0,
    "distribution_constraints": {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,
        "comparison_method": "Robust",
    },
}


def read_rows(texts: Iterable[str]) -> list[list[str]]:
    """Headerless CSV records (RFC 4180 quoting), blank lines left out."""
    return [row for text in texts for row in csv.reader(io.StringIO(text)) if row]


def captured_rows(texts: Iterable[str]) -> list[list[str]]:
    """The CSV requests in data-capture files (JSON lines, one request per line; a request may hold
    several records). https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html"""
    requests = []
    for text in texts:
        for line in text.splitlines():
            if line.strip():
                endpoint_input = json.loads(line)["captureData"]["endpointInput"]
                if endpoint_input.get("observedContentType", "").startswith("text/csv"):
                    requests.append(endpoint_input["data"])
    return read_rows(requests)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _type(values: Sequence[str]) -> str:
    present = [v for v in values if v != ""]
    if present and all(_number(v) is not None for v in present):
        return "Integral" if all(float(v).is_integer() and "." not in v for v in present) else "Fractional"
    return "String" if present else "Unknown"


def _columns(rows: Sequence[Sequence[str]]) -> list[list[str]]:
    width = max((len(row) for row in rows), default=0)
    return [[row[i].strip() if i < len(row) else "" for row in rows] for i in range(width)]


def baseline(rows: Sequence[Sequence[str]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(statistics.json, constraints.json) of a baseline dataset."""
    stats_features, constraint_features = [], []
    for index, values in enumerate(_columns(rows)):
        name, kind = f"_c{index}", _type(values)
        present = [v for v in values if v != ""]
        common = {"num_present": len(present), "num_missing": len(values) - len(present)}
        feature: dict[str, Any] = {"name": name, "inferred_type": kind}
        constraint: dict[str, Any] = {"name": name, "inferred_type": kind, "completeness": len(present) / len(values)}
        if kind in ("Integral", "Fractional"):
            numbers = [float(v) for v in present]
            mean = sum(numbers) / len(numbers)
            low, high = min(numbers), max(numbers)
            feature["numerical_statistics"] = {
                "common": common,
                "mean": mean,
                "sum": sum(numbers),
                "std_dev": math.sqrt(sum((n - mean) ** 2 for n in numbers) / len(numbers)),
                "min": low,
                "max": high,
                "distribution": {"kll": {"buckets": _buckets(numbers, low, high)}},
            }
            constraint["num_constraints"] = {"is_non_negative": low >= 0}
        else:
            counts = Counter(present)
            feature["string_statistics"] = {
                "common": common,
                "distinct_count": len(counts),
                "distribution": {
                    "categorical": {"buckets": [{"value": v, "count": c} for v, c in sorted(counts.items())]}
                },
            }
            constraint["string_constraints"] = {"domains": sorted(counts)}
        stats_features.append(feature)
        constraint_features.append(constraint)
    statistics = {"version": 0.0, "dataset": {"item_count": len(rows)}, "features": stats_features}
    constraints = {"version": 0.0, "features": constraint_features, "monitoring_config": MONITORING_CONFIG}
    return statistics, constraints


def _buckets(numbers: Sequence[float], low: float, high: float) -> list[dict[str, float]]:
    width = (high - low) / BUCKETS or 1.0
    counts = Counter(min(int((n - low) / width), BUCKETS - 1) for n in numbers)
    return [
        {"lower_bound": low + i * width, "upper_bound": low + (i + 1) * width, "count": counts.get(i, 0)}
        for i in range(BUCKETS)
    ]


def _cdf_distance(buckets: Sequence[Mapping[str, float]], numbers: Sequence[float]) -> float:
    """The largest gap between the baseline's and the numbers' cumulative shares at the buckets'
    upper bounds (values beyond the baseline's range count beyond its last bucket)."""
    total = sum(b["count"] for b in buckets) or 1
    seen, gap = 0.0, 0.0
    for bucket in buckets:
        seen += bucket["count"]
        share = sum(1 for n in numbers if n <= bucket["upper_bound"]) / len(numbers)
        gap = max(gap, abs(seen / total - share))
    return gap


def violations(
    rows: Sequence[Sequence[str]], statistics: Mapping[str, Any], constraints: Mapping[str, Any]
) -> list[dict[str, str]]:
    """The constraint violations of ``rows`` (captured records) against a baseline."""
    config = constraints.get("monitoring_config", MONITORING_CONFIG)
    threshold = config["distribution_constraints"]["comparison_threshold"]
    found: list[dict[str, str]] = []

    def violation(name: str, check: str, description: str) -> None:
        found.append({"feature_name": name, "constraint_check_type": check, "description": description})

    columns = _columns(rows)
    expected = constraints["features"]
    for index in range(len(expected), len(columns)):
        violation(
            f"_c{index}", "extra_column_check", f"There are {len(columns)} columns; the baseline has {len(expected)}"
        )
    stats = {f["name"]: f for f in statistics["features"]}
    for index, constraint in enumerate(expected):
        name, kind = constraint["name"], constraint["inferred_type"]
        if index >= len(columns):
            violation(
                name, "missing_column_check", f"There are {len(columns)} columns; the baseline has {len(expected)}"
            )
            continue
        values = columns[index]
        present = [v for v in values if v != ""]
        completeness = len(present) / len(values)
        if completeness < constraint["completeness"]:
            violation(
                name,
                "completeness_check",
                f"Data completeness {completeness:.4f} is below the baseline's {constraint['completeness']:.4f}",
            )
        if kind in ("Integral", "Fractional"):
            numbers = [n for n in (_number(v) for v in present) if n is not None]
            wrong = len(present) - len(numbers)
            if present and wrong / len(present) > 1 - config["datatype_check_threshold"]:
                violation(name, "data_type_check", f"{wrong} of {len(present)} values are not {kind}")
            buckets = stats[name]["numerical_statistics"]["distribution"]["kll"]["buckets"]
            if numbers and (distance := _cdf_distance(buckets, numbers)) > threshold:
                violation(
                    name,
                    "baseline_drift_check",
                    f"Baseline drift distance {distance:.4f} exceeds threshold {threshold}",
                )
        elif kind == "String":
            domain = set(constraint["string_constraints"]["domains"])
            unknown = [v for v in present if v not in domain]
            if present and len(unknown) / len(present) > 1 - config["domain_content_threshold"]:
                shown = ", ".join(sorted(set(unknown))[:5])
                violation(
                    name,
                    "categorical_values_check",
                    f"{len(unknown)} of {len(present)} values are outside the baseline's domain ({shown})",
                )
            baseline = {
                b["value"]: b["count"]
                for b in stats[name]["string_statistics"]["distribution"]["categorical"]["buckets"]
            }
            total, counts = sum(baseline.values()) or 1, Counter(present)
            distance = max(
                (
                    abs(baseline.get(v, 0) / total - counts.get(v, 0) / max(len(present), 1))
                    for v in {*baseline, *counts}
                ),
                default=0.0,
            )
            if present and distance > threshold:
                violation(
                    name,
                    "baseline_drift_check",
                    f"Baseline drift distance {distance:.4f} exceeds threshold {threshold}",
                )
    return found
