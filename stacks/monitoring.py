"""MonitoringStack: what the operators look at: the stage's dashboard and its budget.

The dashboard is built with cdk-monitoring-constructs where that library knows the resource (the
functions, their queues and dead-letter queues, the Glue job) and with the platform's own widgets
where it does not (SageMaker endpoints, the platform's job and registry metrics, model monitoring).
Its first widget holds every alarm of the stage; tests/test_monitoring_stack.py keeps it so.

The endpoints and their alarms exist only while a model is live (``HasModel`` in
``stacks/hosting.py``): they are named here, never referenced, so that this stack does not depend
on resources that may not exist. The functions, queues and the Glue job are referenced (strong
references, docs/cross-stack-references.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_sns as sns
from cdk_monitoring_constructs import CustomMetricGroup, DefaultDashboardFactory, MonitoringFacade
from constructs import Construct
from constructs.event_function import EventFunction
from constructs.model_monitor import drift_metric
from constructs.platform_metrics import platform_metric
from constructs.realtime_endpoint import INSTANCE_METRICS, INVOCATION_METRICS, endpoint_metric

from config import StageConfig
from etl.platform_runtime import STAGE_TAG

FIVE_MINUTES = Duration.minutes(5)


@dataclass(frozen=True)
class Watched:
    """What the dashboard shows, gathered by ``app.py`` from the stacks that own it."""

    functions: Sequence[EventFunction]
    preparation_job: str  # the Glue job's name
    failure_rules: Mapping[str, events.IRule]  # what failed -> its Glue failure rule (a match: one failure)
    endpoints: Mapping[str, str]  # the served datasets' endpoint names, each with its dataset
    datasets: Sequence[str]  # every dataset with a spec
    alarm_names: Sequence[str]  # every alarm of the stage, by name
    # Per endpoint whose model quality is monitored: the live model's objective metric on labelled traffic.
    quality: Mapping[str, cloudwatch.Metric] = field(default_factory=dict)


class MonitoringStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        topic: sns.ITopic,
        watched: Watched,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.budget = self._budget(config, topic)
        self.dashboard_name = f"{config.stack_prefix}-operations"
        factory = DefaultDashboardFactory(
            self,
            "DashboardFactory",
            dashboard_name_prefix=self.dashboard_name,
            create_dashboard=True,
            create_summary_dashboard=False,
            create_alarm_dashboard=False,
        )
        facade = MonitoringFacade(self, "Monitoring", dashboard_factory=factory)
        facade.add_large_header(f"ML platform ({config.name}): operations")
        facade.add_widget(
            cloudwatch.AlarmStatusWidget(
                title="Every alarm of the stage (red: see docs/runbook.md, linked from each alarm's description)",
                alarms=[
                    cloudwatch.Alarm.from_alarm_arn(
                        self,
                        f"Alarm{index}",
                        self.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name=name,
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        ),
                    )
                    for index, name in enumerate(sorted(watched.alarm_names))
                ],
                width=24,
                height=max(3, 1 + (len(watched.alarm_names) + 3) // 4),
            )
        )

        facade.add_medium_header("Preparation: Glue runs and their failures")
        facade.monitor_glue_job(
            job_name=watched.preparation_job, human_readable_name="Preparation job", alarm_friendly_name="Preparation"
        )
        facade.monitor_custom(
            human_readable_name="Glue failures",
            alarm_friendly_name="GlueFailures",
            metric_groups=[
                CustomMetricGroup(
                    title="Preparation runs and crawls that failed, stopped or timed out (the failure rules' matches)",
                    metrics=[
                        cloudwatch.Metric(
                            namespace="AWS/Events",
                            metric_name="TriggeredRules",
                            dimensions_map={"RuleName": rule.rule_name},
                            statistic="Sum",
                            period=FIVE_MINUTES,
                            label=what,
                        )
                        for what, rule in watched.failure_rules.items()
                    ],
                )
            ],
        )

        facade.add_medium_header("Training and the registry")
        facade.monitor_custom(
            human_readable_name="Model jobs and registry",
            alarm_friendly_name="ModelJobs",
            metric_groups=[
                CustomMetricGroup(
                    title=title,
                    metrics=[
                        platform_metric(config.name, d, name, stat, f"{d}: {label}")
                        for d in watched.datasets
                        for name, stat, label in series
                    ],
                )
                for title, series in _TRAINING_GROUPS
            ],
        )

        for endpoint, dataset in watched.endpoints.items():
            facade.add_medium_header(f"Endpoint {endpoint}")
            groups = _endpoint_groups(endpoint)
            if config.monitoring.data_quality:
                drifted = drift_metric(config.name, dataset).with_(label=f"{dataset}: features that drifted")
                title = "Model Monitor: features unlike the training data, per run"
                groups.append(CustomMetricGroup(title=title, metrics=[drifted]))
            if endpoint in watched.quality:
                title = "Model Monitor: the live model on labelled traffic, per run"
                groups.append(CustomMetricGroup(title=title, metrics=[watched.quality[endpoint]]))
            facade.monitor_custom(
                human_readable_name=f"Endpoint {endpoint}", alarm_friendly_name=endpoint, metric_groups=groups
            )

        facade.add_medium_header("Functions, their queues and dead-letter queues")
        for function in watched.functions:
            facade.monitor_lambda_function(
                lambda_function=function.function, human_readable_name=function.name, alarm_friendly_name=function.name
            )
            queue_name = f"{function.name}-queue"
            if function.queue is not None:
                facade.monitor_sqs_queue_with_dlq(
                    queue=function.queue,
                    dead_letter_queue=function.dead_letter_queue,
                    human_readable_name=queue_name,
                    alarm_friendly_name=queue_name,
                )
            else:
                facade.monitor_sqs_queue(
                    queue=function.dead_letter_queue,
                    human_readable_name=f"{function.name} dead-letter queue",
                    alarm_friendly_name=queue_name,
                )

    def _budget(self, config: StageConfig, topic: sns.ITopic) -> budgets.CfnBudget:
        """The stage's monthly cost budget over what carries its stage tag, telling the operators'
        topic at each actual percentage and at the forecast one."""
        settings = config.monitoring
        subscriber = [budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=topic.topic_arn)]

        def notification(kind: str, percentage: int) -> budgets.CfnBudget.NotificationWithSubscribersProperty:
            return budgets.CfnBudget.NotificationWithSubscribersProperty(
                notification=budgets.CfnBudget.NotificationProperty(
                    notification_type=kind,
                    comparison_operator="GREATER_THAN",
                    threshold=percentage,
                    threshold_type="PERCENTAGE",
                ),
                subscribers=subscriber,
            )

        return budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=f"{config.stack_prefix}-monthly",
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=settings.monthly_budget_usd, unit="USD"),
                # What carries the stage's tag: every resource the stacks create (app.py tags them
                # all) and the jobs, models and endpoints the functions start (tagged by them).
                filter_expression=budgets.CfnBudget.ExpressionProperty(
                    tags=budgets.CfnBudget.TagValuesProperty(
                        key=STAGE_TAG, values=[config.tags.get(STAGE_TAG, config.name)], match_options=["EQUALS"]
                    )
                ),
            ),
            notifications_with_subscribers=[
                *(notification("ACTUAL", p) for p in settings.actual_percentages),
                notification("FORECASTED", settings.forecast_percentage),
            ],
        )


# (title, [(metric, statistic, label)]) per graph of the training segment.
_TRAINING_GROUPS = (
    (
        "Model jobs ended (training, tuning, AutoML) and failed",
        (("TrainingJobs", "Sum", "ended"), ("TrainingJobsFailed", "Sum", "failed")),
    ),
    (
        "Model job duration (seconds)",
        (("TrainingSeconds", "Average", "average"), ("TrainingSeconds", "Maximum", "longest")),
    ),
    (
        "Models that passed the gate and were rejected",
        (("ModelsPassed", "Sum", "passed"), ("ModelsRejected", "Sum", "rejected")),
    ),
)


def _endpoint_groups(endpoint: str) -> list[CustomMetricGroup]:
    def metric(name: str, statistic: str, label: str, namespace: str = INVOCATION_METRICS) -> cloudwatch.Metric:
        return endpoint_metric(endpoint, name, statistic, namespace, label)

    invocations = metric("Invocations", "Sum", "invocations")
    per_instance = metric("InvocationsPerInstance", "Sum", "per instance")
    instances = metric("CPUUtilization", "SampleCount", "instances", INSTANCE_METRICS)
    return [
        CustomMetricGroup(
            title="Invocations and errors (per minute)",
            metrics=[
                invocations,
                metric("Invocation4XXErrors", "Sum", "4XX"),
                metric("Invocation5XXErrors", "Sum", "5XX"),
            ],
        ),
        CustomMetricGroup(
            title="Model latency (microseconds)",
            metrics=[metric("ModelLatency", p, p) for p in ("p50", "p90", "p99")],
        ),
        CustomMetricGroup(
            title="Instances in service (one CPU sample per instance and minute) and invocations per instance",
            metrics=[instances, per_instance],
        ),
        CustomMetricGroup(
            title="Utilisation (%; CPU is summed over an instance's cores)",
            metrics=[
                metric(name, "Average", label, INSTANCE_METRICS)
                for name, label in (
                    ("CPUUtilization", "CPU"),
                    ("MemoryUtilization", "memory"),
                    ("DiskUtilization", "disk"),
                )
            ],
        ),
    ]
