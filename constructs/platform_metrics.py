"""The platform's own CloudWatch metrics, as its alarms and dashboard read them.

The functions publish them in the embedded metric format (``etl/platform_runtime.put_metrics``),
in one namespace, per stage and dataset, at most once a run or report: an hour is the period.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

from etl.platform_runtime import METRIC_DIMENSIONS, METRICS_NAMESPACE


def platform_metric(stage: str, dataset: str, name: str, statistic: str, label: str | None = None) -> cloudwatch.Metric:
    """The metric ``name`` of ``dataset`` in ``stage``, per hour."""
    stage_dimension, dataset_dimension = METRIC_DIMENSIONS
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={stage_dimension: stage, dataset_dimension: dataset},
        statistic=statistic,
        period=Duration.hours(1),
        label=label,
    )
