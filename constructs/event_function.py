"""EventFunction: a Lambda function fired by an EventBridge rule, with its DLQ and alarms.

The platform's handlers all follow one shape, so the shape is built once:

- the function runs in the VPC's isolated subnets (it reaches AWS through the endpoints), with
  reserved concurrency, JSON logs to a KMS-encrypted log group, and the handler folder under
  ``lambda/<name>/`` as its code (``handler.handler``);
- an EventBridge rule invokes it asynchronously; EventBridge retries delivery and Lambda retries
  failed invocations; whatever still fails lands in one KMS-encrypted dead-letter queue;
- or, with a :class:`QuietPeriod`, the rule puts its events on a KMS-encrypted queue that holds
  each one for the quiet period (its delivery delay) before Lambda hands them to the function
  in batches (an event source mapping, partial batch responses); a message that keeps failing
  moves to the same dead-letter queue after ``max_receives`` receives;
- two alarms tell the operators' SNS topic: any function error, and any message in the DLQ.

Callers grant the function what its handler needs through ``function`` (CDK grants) and read
``rule`` / ``queue`` / ``dead_letter_queue`` / ``alarms`` for tests and dashboards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jsii
from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.interfaces import aws_events as event_refs
from constructs import Construct
from constructs.encrypted_log_group import EncryptedLogGroup
from constructs.local_bundling import bundling, folder_with
from constructs.nag_acknowledgements import acknowledge, acknowledge_grant_policy

from etl.platform_runtime import runbook

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_ROOT = ROOT / "lambda"
# The runtime modules functions share live in etl/ (the Glue job ships dataset_spec.py too); the
# runtime library is shipped beside every handler, others where a function names them.
SHARED_MODULES = ROOT / "etl"
RUNTIME_LIBRARY = "platform_runtime.py"
RUNTIME = lambda_.Runtime.PYTHON_3_14
MAX_EVENT_AGE = Duration.hours(2)  # how long EventBridge keeps trying to deliver an event
UNRESERVED_REASON = (
    "Reserved concurrency is the stage's choice (functions.reserved_concurrency), off unless set: "
    "Lambda keeps 100 of an account's concurrency unreserved and a new account's quota may be 10, "
    "where any reservation fails the deploy. The function's rate is bounded by its events (EventBridge "
    "rules on the platform's own buckets and jobs), and what fails lands in its dead-letter queue."
)
ENI_REASON = (
    "Lambda creates and deletes the network interfaces of a VPC function with these EC2 actions; "
    "EC2 offers no resource-level permissions for the Describe actions, so AWS's own "
    "AWSLambdaVPCAccessExecutionRole grants them on all resources too."
)


@dataclass(frozen=True, kw_only=True)
class FunctionDefaults:
    """What every function of a stage shares, decided once for the stage (``app.py``)."""

    key: kms.IKey  # environment, logs and dead-letter queue
    alarm_topic: sns.ITopic
    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection
    log_retention_days: int
    log_level: str  # DEBUG, INFO, WARN or ERROR
    reserved_concurrency: int | None  # None: nothing reserved; 0: the function is switched off
    retry_attempts: int
    retain_logs: bool
    name_prefix: str  # of the alarms' names: the stage's resource prefix


@dataclass(frozen=True, kw_only=True)
class QuietPeriod:
    """Events wait ``seconds`` on a queue (its delivery delay, at most SQS's 900) before the
    function gets them, in batches of up to ``batch_size`` (a standard queue's 10 without a
    batching window); a message the function fails ``max_receives`` times moves to the
    dead-letter queue.
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-delay-queues.html
    https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html"""

    seconds: int
    batch_size: int = 10
    max_receives: int = 8

    def check(self, function: str) -> None:
        if not 0 <= self.seconds <= 900:
            raise ValueError(f"{function}: a quiet period is 0 to 900 seconds (SQS's delivery delay): {self.seconds}")
        if not 1 <= self.batch_size <= 10:
            raise ValueError(f"{function}: a batch is 1 to 10 messages: {self.batch_size}")
        if self.max_receives < 1:
            raise ValueError(f"{function}: max_receives must be 1 or more: {self.max_receives}")


@jsii.implements(events.IRuleTarget)
class _ToQueue:
    """A rule target that sends the event to a queue, with EventBridge's retries and dead-letter
    queue. Not CDK's ``targets.SqsQueue``: for a queue under a customer managed key it grants
    events.amazonaws.com the key's use in the key's own policy, with no condition, and leaves
    the rule out of the queue policy; here the queue policy names the rule (aws:SourceArn), and
    the key policy's statement for EventBridge (stacks/data.py) is the one the topic uses.
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions"""

    def __init__(self, queue: sqs.IQueue, dead_letter_queue: sqs.IQueue, retry_attempts: int) -> None:
        self.queue, self.dead_letter_queue, self.retry_attempts = queue, dead_letter_queue, retry_attempts

    def bind(self, rule: event_refs.IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        for queue in (self.queue, self.dead_letter_queue):
            queue.add_to_resource_policy(
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["sqs:SendMessage"],
                    resources=[queue.queue_arn],
                    conditions={"ArnEquals": {"aws:SourceArn": rule.rule_ref.rule_arn}},
                )
            )
        return events.RuleTargetConfig(
            arn=self.queue.queue_arn,
            dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=self.dead_letter_queue.queue_arn),
            retry_policy=events.CfnRule.RetryPolicyProperty(
                maximum_retry_attempts=self.retry_attempts,
                maximum_event_age_in_seconds=int(MAX_EVENT_AGE.to_seconds()),
            ),
        )


def object_created(bucket: s3.IBucket, key: dict[str, str] | list[dict[str, str]]) -> events.EventPattern:
    """S3 "Object Created" events of ``bucket`` (EventBridge notifications on) whose key matches
    ``key``, an EventBridge matcher such as ``{"prefix": "raw/"}`` or ``{"wildcard": ...}``, or
    any of a list of them."""
    return events.EventPattern(
        source=["aws.s3"],
        detail_type=["Object Created"],
        detail={"bucket": {"name": [bucket.bucket_name]}, "object": {"key": key if isinstance(key, list) else [key]}},
    )


class EventFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler_folder: str,
        description: str,
        event_pattern: events.EventPattern,
        environment: dict[str, str],
        defaults: FunctionDefaults,
        reserved_concurrency: int | None = None,
        timeout_seconds: int = 30,
        memory_size: int = 256,
        shared_modules: tuple[str, ...] = (),
        quiet_period: QuietPeriod | None = None,
        name: str | None = None,
    ) -> None:
        """``name`` (the handler folder's, with dashes, by default) names the function's alarms,
        ``<stage prefix>-<name>-errors`` and ``-dead-letters``: the dashboard finds them by name."""
        code = LAMBDA_ROOT / handler_folder
        short_name = name or handler_folder.replace("_", "-")
        if not (code / "handler.py").is_file():
            folders = sorted(path.parent.name for path in LAMBDA_ROOT.glob("*/handler.py"))
            raise ValueError(
                f"{code}/handler.py not found: each function is a folder under lambda/ with a handler.py "
                f"(there are: {', '.join(folders)})"
            )
        available = sorted(path.name for path in SHARED_MODULES.glob("*.py"))
        for module in shared_modules:
            # A plain file name of etl/, never a path: the modules are copied over the handler's
            # folder, so "../lambda/x/handler.py" would replace the function's own handler.
            if module not in available or module == RUNTIME_LIBRARY or (code / module).exists():
                raise ValueError(
                    f"shared module {module!r} of {handler_folder}: expected a file name of {SHARED_MODULES} "
                    f"other than {RUNTIME_LIBRARY} (always shipped) and the function's own files; "
                    f"available: {', '.join(n for n in available if n != RUNTIME_LIBRARY)}"
                )
        if quiet_period is not None:
            quiet_period.check(handler_folder)
        if reserved_concurrency is not None and reserved_concurrency < 0:
            raise ValueError(f"{handler_folder}: reserved_concurrency must be 0 (off) or more: {reserved_concurrency}")
        levels = lambda_.ApplicationLogLevel.__members__
        if defaults.log_level not in levels:
            raise ValueError(f"log level {defaults.log_level!r}: expected one of {', '.join(levels)}")
        modules = [SHARED_MODULES / name for name in (RUNTIME_LIBRARY, *shared_modules)]
        super().__init__(scope, construct_id)
        key, vpc = defaults.key, defaults.vpc
        self.name = f"{defaults.name_prefix}-{short_name}"

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        log_group = EncryptedLogGroup(
            self, "Logs", key=key, retention_days=defaults.log_retention_days, retain=defaults.retain_logs
        ).log_group

        # No aws:SourceAccount or aws:SourceArn: Lambda documents neither for the execution role
        # (aws:SourceArn is for who may invoke a function, in its resource policy).
        # https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{description} (Lambda execution role)",
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSubnets",
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                resources=["*"],
            )
        )
        # Lambda sends a failed event to the dead-letter queue as the function's role, and SQS
        # encrypts it with the queue's key on the role's behalf.
        # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"sqs.{Stack.of(self).region}.amazonaws.com"}},
            )
        )
        acknowledge_grant_policy(self.role)
        acknowledge(
            self.role.node.find_child("DefaultPolicy"),
            {"AwsSolutions-IAM5": ENI_REASON},
            applies_to=["Resource::*"],
        )

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"{description}: HTTPS out only (the VPC has no route to the internet)",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to the VPC endpoints and the S3 gateway"
        )

        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(code), **bundling(folder_with(code, modules))),
            role=self.role,
            environment=environment,
            environment_encryption=key,
            timeout=Duration.seconds(timeout_seconds),
            memory_size=memory_size,
            reserved_concurrent_executions=(
                defaults.reserved_concurrency if reserved_concurrency is None else reserved_concurrency
            ),
            retry_attempts=defaults.retry_attempts,
            dead_letter_queue=self.dead_letter_queue,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel[defaults.log_level],
            vpc=vpc,
            vpc_subnets=defaults.subnets,
            security_groups=[self.security_group],
        )
        self.function.node.add_dependency(self.role)
        if (defaults.reserved_concurrency if reserved_concurrency is None else reserved_concurrency) is None:
            acknowledge(
                self.function,
                {
                    rule: UNRESERVED_REASON
                    for rule in ("HIPAA.Security-LambdaConcurrency", "NIST.800.53.R5-LambdaConcurrency")
                },
            )

        self.rule = events.Rule(self, "Rule", description=description, event_pattern=event_pattern)
        self.rules = [self.rule]
        self.queue: sqs.Queue | None = None
        self.event_source_mapping: lambda_.EventSourceMapping | None = None
        self._retry_attempts = defaults.retry_attempts
        if quiet_period is None:
            self.rule.add_target(self._target())
        else:
            concurrency = defaults.reserved_concurrency if reserved_concurrency is None else reserved_concurrency
            self.queue = self._queue(quiet_period, key, timeout_seconds, defaults.retry_attempts, concurrency)

        notify = actions.SnsAction(defaults.alarm_topic)
        errors, dead_letters = f"{self.name}-errors", f"{self.name}-dead-letters"
        self.alarm_names = [errors, dead_letters]
        self.alarms = [
            self.function.metric_errors(period=Duration.minutes(5), statistic="Sum").create_alarm(
                self,
                "ErrorsAlarm",
                alarm_name=errors,
                alarm_description=f"{description}: the function failed (see its logs); "
                "events are retried, then sent to its DLQ." + runbook("function-errors"),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ).create_alarm(
                self,
                "DeadLetterAlarm",
                alarm_name=dead_letters,
                alarm_description=f"{description}: events gave up after retries and wait in the DLQ for a replay."
                + runbook("dead-letter-queue"),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(notify)
            alarm.add_ok_action(notify)
        for queue in (self.dead_letter_queue, self.queue):
            if queue is not None:
                queue.apply_removal_policy(RemovalPolicy.RETAIN if defaults.retain_logs else RemovalPolicy.DESTROY)

    def _target(self) -> events.IRuleTarget:
        """How a rule hands its events over: to the queue, or to the function asynchronously."""
        if self.queue is not None:
            return _ToQueue(self.queue, self.dead_letter_queue, self._retry_attempts)
        return targets.LambdaFunction(
            self.function,
            dead_letter_queue=self.dead_letter_queue,
            retry_attempts=self._retry_attempts,
            max_event_age=MAX_EVENT_AGE,
        )

    def also_on(self, construct_id: str, *, description: str, event_pattern: events.EventPattern) -> events.Rule:
        """A second rule into the same function (through its queue, if it has one), for events
        one pattern cannot hold beside the first's (their detail fields differ)."""
        rule = events.Rule(self, construct_id, description=description, event_pattern=event_pattern)
        rule.add_target(self._target())
        self.rules.append(rule)
        return rule

    def _queue(
        self, quiet: QuietPeriod, key: kms.IKey, timeout_seconds: int, retry_attempts: int, concurrency: int | None
    ) -> sqs.Queue:
        """The rule's events held for the quiet period, then handed to the function in batches."""
        queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            delivery_delay=Duration.seconds(quiet.seconds),
            # Lambda's advice for a queue that triggers a function: six times the function's
            # timeout, so that a batch being handled never reappears.
            # https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
            visibility_timeout=Duration.seconds(6 * timeout_seconds),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=quiet.max_receives, queue=self.dead_letter_queue),
        )
        self.queue = queue
        self.rule.add_target(self._target())
        # Lambda polls the queue with the function's role; the role's statement for the platform
        # key through SQS (above) covers decrypting what it receives.
        # https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html#events-sqs-permissions
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                resources=[queue.queue_arn],
            )
        )
        self.event_source_mapping = lambda_.EventSourceMapping(
            self,
            "QueueMapping",
            target=self.function,
            event_source_arn=queue.queue_arn,
            batch_size=quiet.batch_size,
            report_batch_item_failures=True,
            # No more pollers than the function may run at once (2 is the least SQS allows).
            max_concurrency=concurrency if concurrency is not None and concurrency >= 2 else None,
        )
        self.event_source_mapping.node.add_dependency(self.role)  # Lambda checks the role's rights at create
        return queue
