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
  "constraint_check_type", "description"}]}`` with the documented check types;
- model quality: ``statistics.json`` with the problem's documented metrics, from the captured
  predictions joined with their uploaded labels (the merge job's part and the analyzer's, in one job).

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
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from statistics import pstdev
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


# --- model quality -------------------------------------------------------------------------------
# A model-quality run joins each captured prediction with the label uploaded for it (Model Monitor's
# merge job), then computes the problem's metrics (its analyzer). The twin does both in one job.
# https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-merge.html
# https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-metrics.html
FAMILIES = {
    "BinaryClassification": "binary_classification_metrics",
    "MulticlassClassification": "multiclass_classification_metrics",
    "Regression": "regression_metrics",
}
DEVIATION_SAMPLES = 200  # standard deviations only from this many records: 5 samples of 80%, as documented


def ground_truth(texts: Iterable[str]) -> dict[str, str]:
    """The uploaded labels by event id: JSON lines ``{"groundTruthData": {"data", "encoding": "CSV"},
    "eventMetadata": {"eventId"}, "eventVersion": "0"}``; a later label of an id replaces an earlier."""
    labels = {}
    for text in texts:
        for line in text.splitlines():
            if line.strip():
                record = json.loads(line)
                labels[record["eventMetadata"]["eventId"]] = record["groundTruthData"]["data"]
    return labels


def joined(texts: Iterable[str], labels: Mapping[str, str], start: str, end: str) -> list[tuple[list[str], str]]:
    """Each prediction captured from ``start`` to ``end`` (ISO times) that has a label: its answer's
    CSV fields and the label. A capture is matched by the request's inference id, else by its event
    id; a request of several records answers several lines and is matched by none (one label each)."""
    pairs = []
    for text in texts:
        for line in text.splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            metadata = record["eventMetadata"]
            if not start <= metadata["inferenceTime"] < end:
                continue
            label = labels.get(metadata.get("inferenceId") or metadata["eventId"])
            output = record["captureData"].get("endpointOutput", {})
            answers = read_rows([output.get("data", "")]) if output.get("encoding") == "CSV" else []
            if label is not None and len(answers) == 1:
                pairs.append((answers[0], label))
    return pairs


def model_quality(
    pairs: Sequence[tuple[Sequence[str], str]], problem_type: str, environment: Mapping[str, str]
) -> dict[str, Any]:
    """``statistics.json`` of a model-quality run: the problem's metrics, each ``{"value",
    "standard_deviation"}``, read from the answers as the job definition's attributes say
    (``probability_attribute`` and ``probability_threshold_attribute``, or ``inference_attribute``)."""
    from sklearn import metrics as skm  # the twin's own dependency, loaded only for this job

    def column(name: str) -> list[str]:
        position = int(environment[name])
        return [answer[position] for answer, _ in pairs]

    truth = [label for _, label in pairs]
    if problem_type == "BinaryClassification":
        scores = [float(v) for v in column("probability_attribute")]
        threshold = float(environment["probability_threshold_attribute"])
        wrong = sorted({v for v in truth if v.strip() not in ("0", "1")})
        if wrong:
            raise ValueError(f"binary labels are 1 and 0, not {', '.join(map(repr, wrong[:5]))}")
        y = [int(v) for v in truth]
        predicted = [int(p >= threshold) for p in scores]

        def measure(i: Sequence[int]) -> dict[str, float]:
            yi, pi, si = [y[k] for k in i], [predicted[k] for k in i], [scores[k] for k in i]
            both = len(set(yi)) == 2
            return {
                "accuracy": skm.accuracy_score(yi, pi),
                "precision": skm.precision_score(yi, pi, zero_division=0),
                "recall": skm.recall_score(yi, pi, zero_division=0),
                "f1": skm.f1_score(yi, pi, zero_division=0),
                "auc": skm.roc_auc_score(yi, si) if both else math.nan,
            }

        matrix_labels: list[Any] = [0, 1]
        matrix = skm.confusion_matrix(y, predicted, labels=matrix_labels)
    elif problem_type == "MulticlassClassification":
        predicted_labels = column("inference_attribute")
        matrix_labels = sorted(set(truth) | set(predicted_labels))

        def measure(i: Sequence[int]) -> dict[str, float]:
            yi, pi = [truth[k] for k in i], [predicted_labels[k] for k in i]
            return {
                "accuracy": skm.accuracy_score(yi, pi),
                "weighted_recall": skm.recall_score(yi, pi, average="weighted", zero_division=0),
                "weighted_precision": skm.precision_score(yi, pi, average="weighted", zero_division=0),
                "weighted_f1": skm.f1_score(yi, pi, average="weighted", zero_division=0),
            }

        matrix = skm.confusion_matrix(truth, predicted_labels, labels=matrix_labels)
    else:
        values, actual = [float(v) for v in column("inference_attribute")], [float(v) for v in truth]

        def measure(i: Sequence[int]) -> dict[str, float]:
            yi, pi = [actual[k] for k in i], [values[k] for k in i]
            mse = skm.mean_squared_error(yi, pi)
            return {
                "mae": skm.mean_absolute_error(yi, pi),
                "mse": mse,
                "rmse": math.sqrt(mse),
                "r2": skm.r2_score(yi, pi),
            }

        matrix = None
    everything = list(range(len(pairs)))
    values = measure(everything)
    deviations: dict[str, Any] = dict.fromkeys(values, "NaN")
    if len(pairs) >= DEVIATION_SAMPLES:
        rng = random.Random(0)
        samples = [measure(rng.sample(everything, int(0.8 * len(pairs)))) for _ in range(5)]
        deviations = {name: pstdev(s[name] for s in samples) for name in values}
    family = {
        name: {"value": _finite(value), "standard_deviation": _finite(deviations[name])}
        for name, value in values.items()
    }
    if matrix is not None:
        family = {
            "confusion_matrix": {
                str(a): {str(b): int(matrix[i][j]) for j, b in enumerate(matrix_labels)}
                for i, a in enumerate(matrix_labels)
            },
            **family,
        }
    return {"version": 0.0, "dataset": {"item_count": len(pairs)}, FAMILIES[problem_type]: family}


def _finite(value: Any) -> Any:
    """A number as the report writes it: "NaN" where it is not one (AWS's examples do)."""
    return "NaN" if isinstance(value, float) and not math.isfinite(value) else value
