"""HostingStack: one dataset's real-time endpoint, rolled forward on every approved model.

The stack's parameter ``ModelPackageArn`` names the model package that is live. While it is
empty (a new platform, no approved model yet) every billable resource sits behind the
``HasModel`` condition (applied to the whole endpoint by an aspect) and nothing is created.
``deploy_model`` (in this stack) sets the parameter through a CloudFormation update, under the
stack's deployment role, when a package of the dataset's group becomes Approved; SageMaker then
moves traffic blue/green (a canary first) and rolls back by itself if the 5XX or latency alarms
fire.

With ``monitoring.data_quality`` (the default), an approval first computes the model's baseline:
``deploy_model`` starts Model Monitor's analyzer on the prepared run's ``baseline/`` and, when
that job ends, sets ``ModelPackageArn`` and ``BaselineUri`` in one update, so the data-quality
schedule (``constructs/model_monitor.py``, behind the ``Monitored`` condition) always compares
traffic with the live model's own training data. A baseline that fails rolls the model out
unmonitored (``BaselineUri`` empty) and the operators' topic hears of it. Each monitoring run's
report fires ``check_drift`` (in this stack): the drift metric and alarm, a message naming the
drifted features, and a preparation run where new labelled data is there to retrain on.
"""

from __future__ import annotations

from typing import cast

import jsii
from aws_cdk import (
    Aspects,
    Aws,
    CfnCondition,
    CfnParameter,
    CfnResource,
    Fn,
    IAspect,
    ICfnConditionExpression,
    Stack,
    Token,
)
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as assets
from constructs import Construct, IConstruct
from constructs.deployment_role import DeploymentRole
from constructs.event_function import EventFunction, QuietPeriod, object_created
from constructs.logical_ids import logical_id
from constructs.model_monitor import DataQualityMonitor, ModelQualityMonitor, Monitoring, MonitoringRole
from constructs.nag_acknowledgements import (
    KMS_DATA_KEY_REASON,
    KMS_GRANT_ACTIONS,
    S3_ACTIONS_REASON,
    S3_GRANT_ACTIONS,
    acknowledge_wildcards,
    nag_arn,
)
from constructs.pass_role import grant_pass_role
from constructs.realtime_endpoint import RealtimeEndpoint
from constructs.sagemaker_images import Image, SageMakerImages
from constructs.topic_target import notify

from config import ConfigError, MonitoringConfig
from etl.dataset_spec import load_spec
from etl.platform_runtime import (
    ANSWER_PARAMETERS,
    BASELINE_JOB,
    DATA_QUALITY_SCHEDULE,
    MODEL_MONITOR_METRICS,
    MODEL_QUALITY_SCHEDULE,
    STAGE_TAG,
    runbook,
)
from stacks.data import CAPTURE_PREFIX, GROUND_TRUTH_PREFIX, MONITORING_PREFIX, PREPARED_PREFIX, RAW_PREFIX
from stacks.etl import PreparationRuns
from stacks.foundation import Foundation

PARAMETER = "ModelPackageArn"
BASELINE_PARAMETER = "BaselineUri"
ANALYZER = Image("model-monitor", "")  # Model Monitor's analyzer, from the SDK's table (no versions)
MAX_JOB_NAME, MAX_VERSION_DIGITS = 63, 6  # a processing job's name; a package version's room in it
# Approvals wait on deploy_model's queue while a rollout runs: a message that finds the stack busy
# comes back after the queue's visibility timeout (6 x the function's 30 s), up to 40 times, so
# for two hours, beyond the longest rollout (the blue/green update's one-hour execution timeout,
# its canary wait and termination wait, and a rollback). No delay: an approval is acted on at once.
ROLLOUT_BUFFER = QuietPeriod(seconds=0, batch_size=1, max_receives=40)


@jsii.implements(IAspect)
class OnlyWhen:
    """Puts every CloudFormation resource of a scope behind ``condition``."""

    def __init__(self, condition: CfnCondition) -> None:
        self.condition = condition

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, CfnResource):
            node.cfn_options.condition = self.condition


def field(name: str) -> str:
    """A field of a SageMaker event's detail, in a rule's message."""
    return events.EventField.from_path(f"$.detail.{name}")


class HostingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: Foundation,
        dataset: str,
        execution_role: iam.IRole,
        security_group: ec2.ISecurityGroup,
        model_package_group: str,
        preparation: PreparationRuns,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        config, key, functions = foundation.config, foundation.key, foundation.functions
        self.dataset = dataset
        self.endpoint_name = f"{config.resource_prefix}-{dataset}"
        self.package = CfnParameter(
            self,
            PARAMETER,
            type="String",
            default="",
            description=f"The approved model package of {model_package_group} that serves (set by deploy_model)",
            allowed_pattern=r"^$|^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/.+$",
        )
        self.has_model = CfnCondition(
            self, "HasModel", expression=Fn.condition_not(Fn.condition_equals(self.package.value_as_string, ""))
        )
        # "Default" is left out of the logical ids of what it holds: the endpoint's resources keep
        # the ids they had when this stack built them itself, so a live endpoint is not rolled
        # out again (https://docs.aws.amazon.com/cdk/v2/guide/identifiers.html#identifiers-logical-ids).
        self.serving = RealtimeEndpoint(
            self,
            "Default",
            endpoint_name=self.endpoint_name,
            model_package=self.package.value_as_string,
            hosting=config.hosting,
            capture_uri=f"s3://{foundation.data.bucket.bucket_name}/{CAPTURE_PREFIX}{dataset}/",
            key=key,
            alarm_topic=functions.alarm_topic,
            subnet_ids=foundation.subnet_ids,
            execution_role=execution_role,
            security_group=security_group,
        )
        Aspects.of(self.serving).add(OnlyWhen(self.has_model))
        self.endpoint, self.alarms = self.serving.endpoint, self.serving.alarms
        self.alarm_names = list(self.serving.alarm_names)

        self.baselines_prefix = f"{MONITORING_PREFIX}{dataset}/baselines/"
        self.monitoring_role = MonitoringRole(
            self,
            "MonitoringRole",
            data=foundation.data,
            key=key,
            dataset=dataset,
            prepared_prefix=PREPARED_PREFIX,
            capture_prefix=CAPTURE_PREFIX,
            monitoring_prefix=MONITORING_PREFIX,
            ground_truth_prefix=GROUND_TRUTH_PREFIX if config.monitoring.model_quality else None,
        ).role
        self.analyzer_image = SageMakerImages(self, "MonitorImages", images={"analyzer": ANALYZER}).uri("analyzer")
        self.quality_metric = ""
        self.monitor: DataQualityMonitor | None = None
        self.quality_monitor: ModelQualityMonitor | None = None
        self.check_drift: EventFunction | None = None
        self.monitoring = Monitoring(
            stage=config.name,
            dataset=dataset,
            image_uri=self.analyzer_image,
            role=self.monitoring_role,
            key=key,
            subnet_ids=foundation.subnet_ids,
            security_group=security_group,
            reports_uri=f"s3://{foundation.data.bucket.bucket_name}/{MONITORING_PREFIX}{dataset}/reports",
            config=config.monitoring,
            alarm_topic=functions.alarm_topic,
        )
        monitored = [
            kind
            for kind, on in (
                ("DataQuality", config.monitoring.data_quality),
                ("ModelQuality", config.monitoring.model_quality),
            )
            if on
        ]

        self.deployment_role = DeploymentRole(
            self,
            "DeploymentRole",
            endpoint_name=self.endpoint_name,
            execution_role=execution_role,
            key=key,
            monitoring_role=self.monitoring_role if monitored else None,
            monitored=monitored,
        ).role
        self.deploy_model = EventFunction(
            self,
            "DeployModel",
            handler_folder="deploy_model",
            description=f"deploy_model: approved {dataset} models roll out to {self.endpoint_name}",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={"ModelPackageGroupName": [model_package_group], "ModelApprovalStatus": ["Approved"]},
            ),
            environment={
                "STACK_NAME": Aws.STACK_NAME,
                "MODEL_PACKAGE_GROUP": model_package_group,
                "CLOUDFORMATION_ROLE_ARN": self.deployment_role.role_arn,
                **self._baseline_environment(foundation, dataset, security_group),
            },
            defaults=functions,
            quiet_period=ROLLOUT_BUFFER,
            name=f"deploy-model-{dataset}",
        )
        function = self.deploy_model.function
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["cloudformation:DescribeStacks"], resources=[Aws.STACK_ID])
        )
        # deploy_model can only deploy: its updates run under this stack's deployment role (whose
        # rights are the endpoint's), never another role or none (the function's own), and reuse
        # the previous template, never one from S3. An inline TemplateBody has no condition key
        # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscloudformation.html);
        # the deployment role's rights bound what such a template could do.
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cloudformation:UpdateStack"],
                resources=[Aws.STACK_ID],
                conditions={"StringEquals": {"cloudformation:RoleArn": self.deployment_role.role_arn}},
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                actions=["cloudformation:UpdateStack"],
                resources=[Aws.STACK_ID],
                conditions={"Null": {"cloudformation:TemplateUrl": "false"}},
            )
        )
        grant_pass_role(self.deployment_role, function, "cloudformation.amazonaws.com")
        # The registry's newest approved package of this group is what goes live, whatever the
        # event names (lambda/deploy_model/handler.py).
        packages = f"model-package/{model_package_group}/*"
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:ListModelPackages"],
                resources=[f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:{packages}"],
            )
        )
        reasons = {
            "deploy_model lists the versions of its own model package group (one package per "
            "version, numbered by SageMaker) to find the newest approved one, and reads the one it "
            "baselines.": [f"Resource::{nag_arn(self, 'sagemaker', packages)}"]
        }
        if config.monitoring.data_quality or config.monitoring.model_quality:
            # The package's run (its baseline) and how to read its answers (model quality).
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["sagemaker:DescribeModelPackage"],
                    resources=[f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:{packages}"],
                )
            )
        if config.monitoring.data_quality:
            reasons |= self._baseline_rights(foundation, dataset, packages)
        acknowledge_wildcards(function.role.node.find_child("DefaultPolicy"), reasons)  # type: ignore[union-attr]
        if config.monitoring.data_quality:
            self._data_quality(foundation, dataset)
        if config.monitoring.model_quality:
            self._model_quality(foundation, dataset)
        if monitored:
            self._check_drift(foundation, dataset, preparation, packages)

    def _baseline_environment(
        self, foundation: Foundation, dataset: str, security_group: ec2.ISecurityGroup
    ) -> dict[str, str]:
        """What deploy_model starts a baseline job with (lambda/deploy_model/handler.py Baseline)."""
        config = foundation.config
        return {
            "DATA_QUALITY": "true" if config.monitoring.data_quality else "false",
            "DATASET": dataset,
            "ENDPOINT_NAME": self.endpoint_name,
            "DATA_BUCKET": foundation.data.bucket.bucket_name,
            "PREPARED_PREFIX": PREPARED_PREFIX,
            "BASELINES_PREFIX": self.baselines_prefix,
            "ANALYZER_IMAGE": self.analyzer_image,
            "MONITOR_INSTANCE_TYPE": config.monitoring.instance_type,
            "MONITOR_VOLUME_GB": str(config.monitoring.volume_size_gb),
            "MONITOR_MAX_RUNTIME_SECONDS": str(config.monitoring.max_runtime_minutes * 60),
            "ROLE_ARN": self.monitoring_role.role_arn,
            "KMS_KEY_ARN": foundation.key.key_arn,
            "SUBNETS": self.to_json_string(foundation.subnet_ids),
            "SECURITY_GROUPS": self.to_json_string([security_group.security_group_id]),
            "STAGE": config.name,
        }

    def _baseline_rights(self, foundation: Foundation, dataset: str, packages: str) -> dict[str, list[str]]:
        """deploy_model starts and reads its dataset's baseline jobs (tagged with the stage, as the
        monitoring role), reads the approved package's run; its nag reasons."""
        function = self.deploy_model.function
        jobs = f"processing-job/{self.endpoint_name}{BASELINE_JOB}*"
        job_arn = f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:{jobs}"
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:CreateProcessingJob", "sagemaker:AddTags"],
                resources=[job_arn],
                conditions={"StringEquals": {f"aws:RequestTag/{STAGE_TAG}": foundation.config.name}},
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeProcessingJob"], resources=[job_arn])
        )
        grant_pass_role(self.monitoring_role, function, "sagemaker.amazonaws.com")
        return {
            "Baseline jobs are named <endpoint>-baseline-<package version> at run time; creating "
            "one is limited to requests tagged with this stage.": [f"Resource::{nag_arn(self, 'sagemaker', jobs)}"]
        }

    def _data_quality(self, foundation: Foundation, dataset: str) -> None:
        """The ``BaselineUri`` parameter, the ``Monitored`` condition and, behind it, the job definition
        and the schedule; the rule that tells the operators when a baseline job fails; and what
        deploy_model hears of a baseline job's end."""
        config = foundation.config
        longest = len(self.endpoint_name) + len(BASELINE_JOB) + MAX_VERSION_DIGITS
        if longest > MAX_JOB_NAME:
            raise ConfigError(
                f"endpoint {self.endpoint_name!r} is too long a name for its baseline jobs "
                f"(<endpoint>{BASELINE_JOB}<version>, at most {MAX_JOB_NAME} characters): shorten the stage "
                "prefix or the dataset's name, or set monitoring.data_quality = false"
            )
        self.baseline = CfnParameter(
            self,
            BASELINE_PARAMETER,
            type="String",
            default="",
            description=f"The live model's Model Monitor baseline, s3://.../{self.baselines_prefix}<job>/ "
            "(set by deploy_model with ModelPackageArn; empty: not monitored)",
            allowed_pattern=r"^$|^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+/$",
        )
        monitored = CfnCondition(
            self,
            "Monitored",
            expression=Fn.condition_and(
                # a CfnCondition is a condition expression (jsii's interface, not in its typing)
                cast(ICfnConditionExpression, self.has_model),
                Fn.condition_not(Fn.condition_equals(self.baseline.value_as_string, "")),
            ),
        )
        self.monitor = DataQualityMonitor(
            self,
            "DataQuality",
            endpoint=self.endpoint,
            baseline_uri=self.baseline.value_as_string,
            monitoring=self.monitoring,
        )
        Aspects.of(self.monitor).add(OnlyWhen(monitored))
        self.alarm_names.append(self.monitor.alarm_name)
        baseline_jobs = {
            "ProcessingJobName": [{"prefix": f"{self.endpoint_name}{BASELINE_JOB}"}],
        }
        self.deploy_model.also_on(
            "BaselineRule",
            description=f"deploy_model: a baseline job of {self.endpoint_name} ended",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Processing Job State Change"],
                detail={**baseline_jobs, "ProcessingJobStatus": ["Completed", "Failed", "Stopped"]},
            ),
        )
        self.baseline_failed = notify(
            self,
            "BaselineFailedRule",
            topic=foundation.functions.alarm_topic,
            description=f"A Model Monitor baseline job of {self.endpoint_name} failed",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Processing Job State Change"],
                detail={**baseline_jobs, "ProcessingJobStatus": ["Failed", "Stopped"]},
            ),
            message=f"ML platform ({config.name}): the baseline job {field('ProcessingJobName')} of "
            f"{self.endpoint_name} ended {field('ProcessingJobStatus')}: {field('FailureReason')}. The approved "
            "model goes live without data-quality monitoring." + runbook("baseline-failed"),
        )

    def _model_quality(self, foundation: Foundation, dataset: str) -> None:
        """Behind ``QualityMonitored`` (a model is live and, for a classifier, deploy_model has said how
        to read its answers): the model-quality job definition, its schedule and its alarm."""
        spec = load_spec(foundation.specs[dataset].read_text(encoding="utf-8"), source=foundation.specs[dataset].name)
        problem, training = spec.target.problem, spec.training
        metric = training.objective_metric
        family, computed = MODEL_MONITOR_METRICS[problem]
        if metric not in computed or training.minimum is None:
            raise ConfigError(
                f"monitoring.model_quality alarms when {dataset}'s objective metric falls below its "
                f"training.minimum: Model Monitor computes {', '.join(computed)} for a {problem} model "
                f"({family}), and the spec has {metric!r} with "
                + ("no minimum" if training.minimum is None else f"minimum {training.minimum:g}")
                + ": choose one of those with a minimum, or set monitoring.model_quality = false"
            )
        condition: ICfnConditionExpression = cast(ICfnConditionExpression, self.has_model)
        if problem not in ANSWER_PARAMETERS:  # a regression model answers its value alone
            answer: dict[str, str | float] = {"inference_attribute": "0"}
        else:
            name, _, form = ANSWER_PARAMETERS[problem]
            parameter = CfnParameter(
                self,
                name,
                type="String",
                default="",
                description="How the model-quality job reads the live model's answers: "
                + (
                    "its decision threshold"
                    if problem == "binary"
                    else "the label's column (0-based, after one probability per class)"
                )
                + " (set by deploy_model with ModelPackageArn; empty: model quality not monitored)",
                allowed_pattern=f"^$|^({form})$",
            )
            condition = Fn.condition_and(
                condition, Fn.condition_not(Fn.condition_equals(parameter.value_as_string, ""))
            )
            answer = (
                {
                    "probability_attribute": "0",
                    "probability_threshold_attribute": Token.as_number(parameter.value_as_string),
                }
                if problem == "binary"
                else {"inference_attribute": parameter.value_as_string}
            )
        bucket = foundation.data.bucket.bucket_name
        self.quality_monitor = ModelQualityMonitor(
            self,
            "ModelQuality",
            endpoint=self.endpoint,
            problem=problem,
            answer=answer,
            ground_truth_uri=f"s3://{bucket}/{GROUND_TRUTH_PREFIX}{dataset}",
            metric=metric,
            minimum=training.minimum,
            lower_is_better=training.lower_is_better,
            monitoring=self.monitoring,
        )
        Aspects.of(self.quality_monitor).add(OnlyWhen(CfnCondition(self, "QualityMonitored", expression=condition)))
        self.alarm_names.append(self.quality_monitor.alarm_name)
        self.quality_metric = metric

    def _check_drift(self, foundation: Foundation, dataset: str, preparation: PreparationRuns, packages: str) -> None:
        """check_drift on each monitoring run's report: it reads the report, the live model's
        package and run (its schema), lists raw/<dataset>/, claims and starts a preparation run,
        and tells the operators' topic."""
        config, data = foundation.config, foundation.data
        reports = f"{MONITORING_PREFIX}{dataset}/reports/"
        # The same file as the Etl stack's asset of the spec (the same id, so the same name in the
        # assembly): the same object in the assets bucket, and no export from the Etl stack.
        spec = assets.Asset(self, f"Spec-{dataset}", path=str(foundation.specs[dataset]))
        self.check_drift = EventFunction(
            self,
            "CheckDrift",
            handler_folder="check_drift",
            description=f"check_drift: Model Monitor reports on {self.endpoint_name} to the operators, and retraining",
            # Model Monitor writes a run's report under <output>/<endpoint>/<schedule>/<yyyy>/<mm>/<dd>/<hh>/:
            # the data-quality schedule's violations, the model-quality schedule's statistics.
            event_pattern=object_created(data.bucket, self._reports(reports, config.monitoring)),
            environment={
                "STAGE": config.name,
                "DATASET": dataset,
                "ENDPOINT_NAME": self.endpoint_name,
                "STACK_NAME": Aws.STACK_NAME,
                "REPORTS_PREFIX": reports,
                "TOPIC_ARN": foundation.functions.alarm_topic.topic_arn,
                "SPEC_URI": spec.s3_object_url,
                "RETRAIN_MIN_HOURS": str(config.monitoring.retrain_min_hours),
                # Model Monitor's name of the metric the model-quality alarm watches ("": not monitored).
                "QUALITY_METRIC": self.quality_metric,
                **preparation.environment(),
            },
            defaults=foundation.functions,
            name=f"check-drift-{dataset}",
        )
        function = self.check_drift.function
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["cloudformation:DescribeStacks"], resources=[Aws.STACK_ID])
        )
        arn = f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:{packages}"
        function.add_to_role_policy(iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[arn]))
        job = f"arn:{self.partition}:glue:{self.region}:{self.account}:job/{preparation.job_name}"
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["glue:StartJobRun", "glue:GetJobRuns"], resources=[job])
        )
        # Listing raw/<dataset>/ (the snapshot a run is named after) and prepared/<dataset>/: a
        # run record or schema that is not there is then NoSuchKey, not AccessDenied
        # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html).
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[data.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{RAW_PREFIX}{dataset}/*", f"{PREPARED_PREFIX}{dataset}/*"]}},
            )
        )
        runs = f"{PREPARED_PREFIX}{dataset}/*/"
        data.grant_read(function, f"{reports}*")
        data.grant_read(function, runs + "schema.json")
        data.grant_read(function, runs + "_RUN.json")
        data.grant_write(function, runs + "_RUN.json")  # claims, never deleted
        foundation.functions.alarm_topic.grant_publish(function)
        bucket_id = logical_id(data.bucket)
        acknowledge_wildcards(
            self.check_drift.role.node.find_child("DefaultPolicy"),
            {
                "check_drift reads its dataset's monitoring reports, whose keys Model Monitor makes per "
                "run (endpoint, schedule, hour), and the live model's run's schema.json and run record "
                "(the run id is read at run time from the package); it writes only run records.": [
                    f"Resource::<{bucket_id}.Arn>/{reports}*",
                    f"Resource::<{bucket_id}.Arn>/{runs}schema.json",
                    f"Resource::<{bucket_id}.Arn>/{runs}_RUN.json",
                ],
                "check_drift reads the live package of its own model package group, named by version at run time.": [
                    f"Resource::{nag_arn(self, 'sagemaker', packages)}"
                ],
                S3_ACTIONS_REASON: S3_GRANT_ACTIONS,
                KMS_DATA_KEY_REASON: KMS_GRANT_ACTIONS,  # publishing to the encrypted operators' topic
            },
        )

    def _reports(self, reports: str, monitoring: MonitoringConfig) -> list[dict[str, str]]:
        """The key patterns of the reports check_drift reads: each schedule's, under its own folder."""
        folder = f"{reports}{self.endpoint_name}/{self.endpoint_name}"
        return [
            {"wildcard": f"{folder}{schedule}/*/{report}"}
            for schedule, report, on in (
                (DATA_QUALITY_SCHEDULE, "constraint_violations.json", monitoring.data_quality),
                (MODEL_QUALITY_SCHEDULE, "statistics.json", monitoring.model_quality),
            )
            if on
        ]
