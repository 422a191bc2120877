"""Requests AWS services make on the platform's behalf, derived from what each was asked to do.

Each rule reads a resource as the twin deployed it (or a request as the twin recorded it) and
yields the requests the service then makes, with the documentation page that says it does. The
S3 reads and writes of jobs are not derived here: the twin makes them as the job's role while
it runs the job, and they are recorded like any other call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from permissions import reviewed
from permissions.actions import Request, Unknown, arn_for, tag_context
from permissions.calls import Where, strings_in

if TYPE_CHECKING:
    from local.platform import Twin
    from permissions.policies import Policies

DOCS = {
    "lambda-logs": "https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-loggroups.html",
    "lambda-dlq": "https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#invocation-dlq",
    "lambda-vpc": "https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html#configuration-vpc-permissions",
    "lambda-sqs": "https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html#events-sqs-permissions",
    "sqs-sse": "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html",
    "sns-sse": "https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services",
    "events-targets": "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html",
    "events-role": "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-identity-based.html",
    "events-dlq": "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html#eb-dlq-perms",
    "alarm-sns": "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html",
    "budget-sns": "https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-sns-policy.html",
    "s3-logging": "https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html#grant-log-delivery-permissions-general",
    "trail-s3": "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html",
    "trail-kms": "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html",
    "trail-logs": "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/send-cloudtrail-events-to-cloudwatch-logs.html#send-cloudtrail-events-to-cloudwatch-logs-console-create-role",
    "logs-kms": "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html",
    "flow-logs": "https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html",
    "sagemaker-training": "https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html#sagemaker-roles-createtrainingjob-perms",
    "sagemaker-tuning": "https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html#sagemaker-roles-createhyperparametertiningjob-perms",
    "sagemaker-processing": "https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html#sagemaker-roles-createprocessingjob-perms",
    "sagemaker-transform": "https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html#sagemaker-roles-createtransformjob-perms",
    "sagemaker-model": "https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html#sagemaker-roles-createmodel-perms",
    "sagemaker-capture": "https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html",
    "glue-role": "https://docs.aws.amazon.com/glue/latest/dg/create-an-iam-role.html",
    "glue-encryption": "https://docs.aws.amazon.com/glue/latest/dg/encryption-security-configuration.html",
    "glue-connection": "https://docs.aws.amazon.com/glue/latest/dg/setup-vpc-for-glue-access.html",
    "glue-crawler": "https://docs.aws.amazon.com/glue/latest/dg/crawler-prereqs.html",
    "cfn-schema": "https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-schema.html#schema-properties-handlers",
    "studio-spaces": "https://docs.aws.amazon.com/sagemaker/latest/dg/studio-updated-jl-admin-guide-permissions.html",
    "s3-auto-delete": "https://docs.aws.amazon.com/cdk/api/v2/python/aws_cdk.aws_s3/Bucket.html#aws_cdk.aws_s3.Bucket.auto_delete_objects",
    "vpc-restrict-default-sg": "https://docs.aws.amazon.com/cdk/api/v2/python/aws_cdk.aws_ec2/README.html#restricting-the-default-security-group",
}

CFN_SCHEMAS = Path(__import__("cfnlint").__file__).resolve().parent / "data" / "schemas"


# (resource type, how its ARN is read, the encryption-context key, doc, what it is)
ENCRYPTED = {
    "sqs": ("AWS::SQS::Queue", lambda ph: ph.attributes.get("Arn"), "aws__sqs__arn", "sqs-sse", "queue"),
    "sns": ("AWS::SNS::Topic", lambda ph: ph.ref, "aws__sns__topicArn", "sns-sse", "topic"),
}


class Rules:
    """One derivation over a twin: collects requests and the unknowns it could not name."""

    def __init__(self, twin: Twin, policies: Policies, where: Where, calls: list[Mapping[str, Any]]) -> None:
        self.twin, self.policies, self.where = twin, policies, where
        self.calls = [*twin.trace.calls(), *calls]  # the recorded calls, and a person's (permissions/people.py)
        self.requests: list[Request] = []
        self.unknowns: list[str] = []
        self.region, self.account = twin.region, twin.account
        # What SageMaker sends as aws:SourceArn for inference and Studio (reviewed.ASSUME_ROLE_CONTEXT).
        self.sagemaker_account = f"arn:aws:sagemaker:{self.region}:{self.account}:*"

    def ask(self, principal: str, action: str, resource: str, why: str, doc: str, **context: Any) -> None:
        self.requests.append(
            Request(principal, action, resource, {k.replace("__", ":"): v for k, v in context.items()}, why, DOCS[doc])
        )

    def resources(self, kind: str) -> Iterator[tuple[str, str, dict[str, Any], Any]]:
        """(stack, logical id, resolved properties, physical) of every resource of a type the stacks
        declare, provisioned by the twin or (types it does not need, local/provision.py) only named."""
        for stack in self.twin.cloudformation.stacks.values():
            types = stack.template.get("Resources", {})
            for logical_id, properties in stack.applied.items():
                physical = stack.physical.get(logical_id) or stack.declared.get(logical_id)
                if types[logical_id]["Type"] == kind and physical is not None:
                    yield stack.name, logical_id, properties, physical

    def assume(self, service: str, role: str, why: str, source_arn: str | None = None) -> None:
        """The service's sts:AssumeRole request for ``role``, with the confused-deputy keys its own
        page says it sends (reviewed.ASSUME_ROLE_CONTEXT) and no other: ``source_arn`` is what it
        sends as aws:SourceArn, where it sends one."""
        sends = reviewed.ASSUME_ROLE_CONTEXT[service]
        context: dict[str, Any] = {}
        if sends.source_account:
            context["aws:SourceAccount"] = self.account
        if sends.source_arn:
            if not source_arn:
                raise ValueError(f"{service} sends aws:SourceArn when it assumes {role}; name it ({why})")
            context["aws:SourceArn"] = source_arn
        self.requests.append(Request(service, "sts:AssumeRole", role, context, why, sends.doc))

    def source_identity(self, role: str, user: str, why: str) -> None:
        """Studio sets the user profile's name as source identity on the roles it assumes for the
        user, and on the roles of the jobs the user starts (ExecutionRoleIdentityConfig)."""
        self.requests.append(
            Request(
                "sagemaker.amazonaws.com",
                "sts:SetSourceIdentity",
                role,
                {"aws:SourceArn": self.sagemaker_account, "sts:SourceIdentity": user},
                f"{why}: sets the source identity {user}",
                "https://docs.aws.amazon.com/sagemaker/latest/dg/monitor-user-access-how-to.html",
            )
        )

    def via_s3(self, role: str, action: str, key: str | None, why: str, doc: str) -> None:
        """A KMS request S3 makes with the role's permissions for an object under ``key``."""
        self.ask(
            role,
            action,
            key,
            why,
            doc,
            kms__ViaService=f"s3.{self.region}.amazonaws.com",
            kms__CallerAccount=self.account,
        )

    def network_interfaces(self, role: str, subnets: list[str], groups: list[str], why: str, doc: str) -> None:
        """What creating and removing an ENI in the VPC asks: the ENI, each subnet and security group."""
        ec2 = f"arn:aws:ec2:{self.region}:{self.account}"
        eni = f"{ec2}:network-interface/eni-0"
        for resource in (eni, *(f"{ec2}:subnet/{s}" for s in subnets), *(f"{ec2}:security-group/{g}" for g in groups)):
            self.ask(role, "ec2:CreateNetworkInterface", resource, f"{why} in the VPC", doc)
        self.ask(role, "ec2:DeleteNetworkInterface", eni, f"{why} in the VPC", doc)
        self.ask(role, "ec2:DescribeNetworkInterfaces", "*", f"{why} in the VPC", doc)

    def vpc_id(self) -> str:
        return next(physical.ref for *_, physical in self.resources("AWS::EC2::VPC"))

    def key_arn(self, key: str | None) -> str | None:
        if not key:
            return None
        return self.policies.keys.get(key, key) if not key.startswith("alias/") else None

    # --- Lambda ---

    def lambda_functions(self) -> None:
        for function in self.twin.functions:
            role, name, p = function.role_arn, function.name, function.properties
            why = f"Lambda runs {name}"
            self.assume("lambda.amazonaws.com", role, why)
            group = function.log_group
            stream = f"arn:aws:logs:{self.region}:{self.account}:log-group:{group}:log-stream:2026/11/23/[$LATEST]0"
            for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
                self.ask(role, action, stream, f"{why}: writes its logs", "lambda-logs")
            dlq = function.dead_letter_queue
            if dlq:
                self.ask(
                    role,
                    "sqs:SendMessage",
                    dlq,
                    f"{why}: keeps a failed event",
                    "lambda-dlq",
                    aws__SecureTransport="true",
                )
                self._message_key(role, "sqs", dlq, f"{why}: keeps a failed event")
            # The environment's key is used by Lambda through the grant it makes when the function
            # is created, not by the execution role:
            # https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html
            vpc = p.get("VpcConfig") or {}
            if vpc.get("SubnetIds"):
                self.network_interfaces(role, vpc["SubnetIds"], vpc.get("SecurityGroupIds", []), why, "lambda-vpc")
                # The page lists these too: Lambda manages the addresses of the ENIs it creates.
                eni = f"arn:aws:ec2:{self.region}:{self.account}:network-interface/eni-0"
                for action in ("ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"):
                    self.ask(role, action, eni, f"{why} in the VPC", "lambda-vpc")
                self.ask(role, "ec2:DescribeSubnets", "*", f"{why} in the VPC", "lambda-vpc")

    def event_source_mappings(self) -> None:
        """Lambda's poller of a queue: it receives, deletes and reads the queue's attributes with
        the function's execution role, and SQS decrypts what it receives with that role's rights."""
        for _, logical_id, p, _physical in self.resources("AWS::Lambda::EventSourceMapping"):
            arn = p["EventSourceArn"]
            if ":sqs:" not in arn:
                self.unknowns.append(f"event source mapping {logical_id}: no rule for the source {arn}")
                continue
            function = self.twin.functions.by_name_or_arn(p["FunctionName"])
            why = f"Lambda polls {arn.rsplit(':', 1)[-1]} for {function.name}"
            for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
                self.ask(function.role_arn, action, arn, why, "lambda-sqs", aws__SecureTransport="true")
            self._message_key(function.role_arn, "sqs", arn, why, actions=("kms:Decrypt",))

    def _message_key(
        self,
        principal: str,
        service: str,
        arn: str,
        why: str,
        actions: tuple[str, ...] = ("kms:GenerateDataKey", "kms:Decrypt"),
    ) -> None:
        """The KMS requests SQS or SNS makes for a sender to an encrypted queue or topic (both
        actions), or for a receiver from it (``kms:Decrypt``)."""
        kind, arn_of, context_key, doc, noun = ENCRYPTED[service]
        for _, _, p, physical in self.resources(kind):
            if arn_of(physical) == arn and p.get("KmsMasterKeyId"):
                key = self.key_arn(p["KmsMasterKeyId"])
                # The service asks KMS with the queue or topic as encryption context; a service
                # sender's request carries its own account as aws:SourceAccount.
                context = {f"kms__EncryptionContext__{context_key}": arn, "aws__SourceAccount": self.account}
                if not principal.endswith(".amazonaws.com"):
                    context |= {
                        "kms__ViaService": f"{service}.{self.region}.amazonaws.com",
                        "kms__CallerAccount": self.account,
                    }
                for action in actions:
                    self.ask(principal, action, key, f"{why} (encrypted {noun})", doc, **context)

    # --- EventBridge and CloudWatch alarms delivering ---

    def rules(self) -> None:
        for _, logical_id, p, physical in self.resources("AWS::Events::Rule"):
            rule = physical.attributes["Arn"]
            for target in p.get("Targets", []):
                arn, why = (
                    target["Arn"],
                    f"EventBridge rule {physical.ref} delivers to {target['Arn'].rsplit(':', 1)[-1]}",
                )
                if target.get("RoleArn") and arn.split(":")[2] in ("lambda", "sns", "sqs", "logs"):
                    self.unknowns.append(
                        f"{why}: a RoleArn on a {arn.split(':')[2]} target, which EventBridge reaches through "
                        f"its resource policy only ({DOCS['events-targets']})"
                    )
                principal = "events.amazonaws.com"
                context = {"aws__SourceArn": rule, "aws__SourceAccount": self.account}
                if ":lambda:" in arn:
                    self.ask(principal, "lambda:InvokeFunction", arn, why, "events-targets", **context)
                elif ":sns:" in arn:
                    self.ask(principal, "sns:Publish", arn, why, "events-targets", **context)
                    self._message_key(principal, "sns", arn, why)
                elif ":sqs:" in arn:
                    self.ask(principal, "sqs:SendMessage", arn, why, "events-targets", **context)
                    self._message_key(principal, "sqs", arn, why)
                else:
                    self.unknowns.append(f"EventBridge target {arn} of {logical_id}: no rule for its service")
                dlq = target.get("DeadLetterConfig", {}).get("Arn")
                if dlq:
                    self.ask(
                        "events.amazonaws.com",
                        "sqs:SendMessage",
                        dlq,
                        f"{why}: undeliverable events",
                        "events-dlq",
                        aws__SourceArn=rule,
                        aws__SourceAccount=self.account,
                    )
                    self._message_key("events.amazonaws.com", "sqs", dlq, f"{why}: undeliverable events")

    def alarms(self) -> None:
        for _, _, p, physical in self.resources("AWS::CloudWatch::Alarm"):
            alarm = f"arn:aws:cloudwatch:{self.region}:{self.account}:alarm:{physical.ref}"
            for topic in sorted(
                {*p.get("AlarmActions", []), *p.get("OKActions", []), *p.get("InsufficientDataActions", [])}
            ):
                if ":sns:" not in topic:
                    continue
                why = f"alarm {physical.ref} notifies {topic.rsplit(':', 1)[-1]}"
                self._publishes("cloudwatch.amazonaws.com", alarm, topic, why, "alarm-sns")

    def _publishes(self, service: str, source: str, topic: str, why: str, doc: str) -> None:
        """A service principal's sns:Publish to ``topic`` on behalf of ``source`` (sent as
        aws:SourceArn, with this account as aws:SourceAccount), and the KMS requests SNS makes for
        it when the topic is encrypted."""
        self.ask(service, "sns:Publish", topic, why, doc, aws__SourceArn=source, aws__SourceAccount=self.account)
        self._message_key(service, "sns", topic, why)

    def budgets(self) -> None:
        """AWS Budgets publishing a budget's notifications to its SNS subscribers. The twin has no
        bill, so no notification is ever sent there: the requests are derived from the budget."""
        for _, _, p, physical in self.resources("AWS::Budgets::Budget"):
            # The budget's ARN, as the Service Authorization Reference gives it (no region).
            budget = f"arn:aws:budgets::{self.account}:budget/{physical.ref}"
            topics = {
                subscriber["Address"]
                for notification in p.get("NotificationsWithSubscribers", [])
                for subscriber in notification.get("Subscribers", [])
                if subscriber.get("SubscriptionType") == "SNS"
            }
            for topic in sorted(topics):
                why = f"budget {physical.ref} notifies {topic.rsplit(':', 1)[-1]}"
                self._publishes("budgets.amazonaws.com", budget, topic, why, "budget-sns")

    # --- S3, CloudTrail, CloudWatch Logs and VPC flow logs using the key and the buckets ---

    def buckets(self) -> None:
        for _, _, p, physical in self.resources("AWS::S3::Bucket"):
            logging = p.get("LoggingConfiguration")
            if not logging:
                continue
            target, prefix = logging["DestinationBucketName"], logging.get("LogFilePrefix", "")
            source = f"arn:aws:s3:::{physical.ref}"
            self.ask(
                "logging.s3.amazonaws.com",
                "s3:PutObject",
                f"arn:aws:s3:::{target}/{prefix}2026-11-23-00-00-00-0",
                f"S3 delivers {physical.ref}'s access logs",
                "s3-logging",
                aws__SourceArn=source,
                aws__SourceAccount=self.account,
                aws__SecureTransport="true",
            )

    def trails(self) -> None:
        for _, _, p, physical in self.resources("AWS::CloudTrail::Trail"):
            trail = (
                physical.attributes.get("Arn")
                or f"arn:aws:cloudtrail:{self.region}:{self.account}:trail/{physical.ref}"
            )
            bucket, prefix = p["S3BucketName"], p.get("S3KeyPrefix")
            why = f"CloudTrail trail {physical.ref} delivers"
            context = {"aws__SourceArn": trail, "aws__SourceAccount": self.account}
            self.ask(
                "cloudtrail.amazonaws.com", "s3:GetBucketAcl", f"arn:aws:s3:::{bucket}", why, "trail-s3", **context
            )
            key = (
                f"{prefix + '/' if prefix else ''}AWSLogs/{self.account}/CloudTrail/{self.region}/2026/11/23/x.json.gz"
            )
            self.ask(
                "cloudtrail.amazonaws.com",
                "s3:PutObject",
                f"arn:aws:s3:::{bucket}/{key}",
                why,
                "trail-s3",
                **{"s3__x-amz-acl": "bucket-owner-full-control"},
                **context,
            )
            if p.get("KMSKeyId"):
                kms = self.key_arn(p["KMSKeyId"])
                self.ask(
                    "cloudtrail.amazonaws.com",
                    "kms:GenerateDataKey",
                    kms,
                    why,
                    "trail-kms",
                    kms__EncryptionContext__aws__cloudtrail__arn=trail,
                    **context,
                )
                self.ask("cloudtrail.amazonaws.com", "kms:DescribeKey", kms, why, "trail-kms", **context)
            if p.get("CloudWatchLogsRoleArn"):
                role, group = p["CloudWatchLogsRoleArn"], p["CloudWatchLogsLogGroupArn"].removesuffix(":*")
                self.assume("cloudtrail.amazonaws.com", role, why)
                stream = f"{group}:log-stream:{self.account}_CloudTrail_{self.region}"
                for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
                    self.ask(role, action, stream, f"{why} to CloudWatch Logs", "trail-logs")

    def log_groups(self) -> None:
        for _, _, p, physical in self.resources("AWS::Logs::LogGroup"):
            if not p.get("KmsKeyId"):
                continue
            group = f"arn:aws:logs:{self.region}:{self.account}:log-group:{physical.ref}"
            for action in ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:GenerateDataKey", "kms:DescribeKey"):
                self.ask(
                    f"logs.{self.region}.amazonaws.com",
                    action,
                    self.key_arn(p["KmsKeyId"]),
                    f"CloudWatch Logs encrypts {physical.ref}",
                    "logs-kms",
                    kms__EncryptionContext__aws__logs__arn=group,
                    aws__SourceAccount=self.account,
                )

    def flow_logs(self) -> None:
        for _, _, p, physical in self.resources("AWS::EC2::FlowLog"):
            if p.get("LogDestinationType", "cloud-watch-logs") != "cloud-watch-logs":
                continue
            role, group = p["DeliverLogsPermissionArn"], p["LogGroupName"]
            why = f"VPC flow log {physical.ref} delivers to {group}"
            flow = f"arn:aws:ec2:{self.region}:{self.account}:vpc-flow-log/{physical.ref}"
            self.assume("vpc-flow-logs.amazonaws.com", role, why, flow)
            base = f"arn:aws:logs:{self.region}:{self.account}:log-group:{group}"
            self.ask(role, "logs:CreateLogStream", f"{base}:log-stream:eni-0", why, "flow-logs")
            self.ask(role, "logs:PutLogEvents", f"{base}:log-stream:eni-0", why, "flow-logs")
            self.ask(role, "logs:DescribeLogStreams", f"{base}:log-stream:eni-0", why, "flow-logs")

    # --- SageMaker jobs, models and endpoints under the execution role ---

    def sagemaker(self) -> None:
        for call in self.calls:
            if call["error"] is not None or call["service"] != "sagemaker":
                continue
            params, operation = call["params"], call["operation"]
            passed = params.get("RoleArn") or params.get("ExecutionRoleArn")
            if call.get("source_identity") and passed:  # a job or model a Studio user starts carries it on
                self.source_identity(passed, call["source_identity"], f"{operation} {passed.rsplit('/', 1)[-1]}")
            if operation == "CreateTrainingJob":
                self._job("training-job", params["TrainingJobName"], params["RoleArn"], params, "sagemaker-training")
            elif operation == "CreateProcessingJob":
                network = params.get("NetworkConfig") or {}
                as_training = {
                    "OutputDataConfig": params.get("ProcessingOutputConfig") or {},
                    "ResourceConfig": (params.get("ProcessingResources") or {}).get("ClusterConfig") or {},
                    "VpcConfig": network.get("VpcConfig"),
                }
                self._job(
                    "processing-job",
                    params["ProcessingJobName"],
                    params["RoleArn"],
                    as_training,
                    "sagemaker-processing",
                )
            elif operation == "CreateHyperParameterTuningJob":
                definitions = [params.get("TrainingJobDefinition"), *params.get("TrainingJobDefinitions", [])]
                for definition in filter(None, definitions):
                    self._job(
                        "training-job",
                        f"{params['HyperParameterTuningJobName']}-001-x",
                        definition["RoleArn"],
                        definition,
                        "sagemaker-tuning",
                        tags=params.get("Tags"),
                    )
            elif operation == "CreateTransformJob":
                role = self._model_role(params["ModelName"])
                if role:
                    self._job("transform-job", params["TransformJobName"], role, params, "sagemaker-transform")
            elif operation == "CreateModel":
                self._model(params["ModelName"], params["ExecutionRoleArn"], params.get("VpcConfig"))

    def _model_role(self, model: str) -> str | None:
        for call in self.calls:
            if call["operation"] != "CreateModel":
                continue
            if call["params"].get("ModelName") == model and call["error"] is None:
                return call["params"]["ExecutionRoleArn"]
        for _, _, p, physical in self.resources("AWS::SageMaker::Model"):
            if physical.ref == model:
                return p["ExecutionRoleArn"]
        return None

    def _job(self, kind: str, name: str, role: str, p: Mapping[str, Any], doc: str, tags: Any = None) -> None:
        job = f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name}"
        why = f"SageMaker {kind} {name}"
        self.assume("sagemaker.amazonaws.com", role, why, job)
        output = p.get("OutputDataConfig") or p.get("TransformOutput") or {}
        if output.get("KmsKeyId"):
            for action in ("kms:GenerateDataKey", "kms:Encrypt"):
                self.via_s3(role, action, self.key_arn(output["KmsKeyId"]), f"{why}: encrypts its output", doc)
        resources = p.get("ResourceConfig") or p.get("TransformResources") or {}
        if resources.get("VolumeKmsKeyId"):
            self.ask(
                role,
                "kms:CreateGrant",
                self.key_arn(resources["VolumeKmsKeyId"]),
                f"{why}: encrypts its volume",
                doc,
                kms__GrantIsForAWSResource="true",
                kms__CallerAccount=self.account,
            )
        if p.get("VpcConfig"):
            self._vpc(role, p["VpcConfig"], why, doc)
        group = {"training-job": "TrainingJobs", "processing-job": "ProcessingJobs"}.get(kind, "TransformJobs")
        log_group = f"arn:aws:logs:{self.region}:{self.account}:log-group:/aws/sagemaker/{group}"
        stream = f"{log_group}:log-stream:{name}/algo-1"
        # The page's list for the execution role: the job creates its group on first use and
        # describes its streams as well as writing them.
        self.ask(role, "logs:CreateLogGroup", log_group, f"{why}: creates its log group", doc)
        for action in ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"):
            self.ask(role, action, stream, f"{why}: writes its logs", doc)
        self.ask(
            role,
            "cloudwatch:PutMetricData",
            "*",
            f"{why}: emits its metrics",
            doc,
            cloudwatch__namespace=f"/aws/sagemaker/{group.removesuffix('s')}s",
        )
        image = (p.get("AlgorithmSpecification") or {}).get("TrainingImage")
        if image:
            self._image(role, image, why, doc)

    def _model(self, name: str, role: str, vpc: Mapping[str, Any] | None) -> None:
        why = f"SageMaker model {name}"
        # Inference sends the account-wide ARN, its asterisk literal, not the model's.
        self.assume("sagemaker.amazonaws.com", role, why, self.sagemaker_account)
        if vpc:
            self._vpc(role, vpc, why, "sagemaker-model")

    def _vpc(self, role: str, vpc: Mapping[str, Any], why: str, doc: str) -> None:
        self.network_interfaces(role, vpc.get("Subnets", []), vpc.get("SecurityGroupIds", []), why, doc)
        eni = f"arn:aws:ec2:{self.region}:{self.account}:network-interface/eni-0"
        for action in ("ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterfacePermission"):
            self.ask(role, action, eni, f"{why} in the VPC", doc)
        for action in (
            "ec2:DescribeVpcs",
            "ec2:DescribeDhcpOptions",
            "ec2:DescribeSubnets",
            "ec2:DescribeSecurityGroups",
        ):
            self.ask(role, action, "*", f"{why} in the VPC", doc)

    def _image(self, role: str, image: str, why: str, doc: str) -> None:
        # <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>
        host, _, path = image.partition("/")
        account, region = host.split(".")[0], host.split(".")[3]
        if account != self.account:
            return  # an image of SageMaker's own registries, not a private image of this account
        repository = path.split("@")[0].rsplit(":", 1)[0]
        self.ask(role, "ecr:GetAuthorizationToken", "*", f"{why}: pulls {image}", doc)
        for action in ("ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"):
            self.ask(
                role, action, f"arn:aws:ecr:{region}:{account}:repository/{repository}", f"{why}: pulls {image}", doc
            )

    def endpoints(self) -> None:
        for _, _, p, physical in self.resources("AWS::SageMaker::Model"):
            self._model(physical.ref, p["ExecutionRoleArn"], p.get("VpcConfig"))
        for _, _, p, physical in self.resources("AWS::SageMaker::EndpointConfig"):
            roles = {self._model_role(v["ModelName"]) for v in p.get("ProductionVariants", [])} - {None}
            capture = p.get("DataCaptureConfig") or {}
            for role in sorted(roles):
                why = f"SageMaker endpoint config {physical.ref}"
                if p.get("KmsKeyId"):
                    self.ask(
                        role,
                        "kms:CreateGrant",
                        self.key_arn(p["KmsKeyId"]),
                        f"{why}: encrypts the instances' volumes",
                        "sagemaker-model",
                        kms__GrantIsForAWSResource="true",
                        kms__CallerAccount=self.account,
                    )
                if capture.get("EnableCapture"):
                    bucket, _, prefix = capture["DestinationS3Uri"].removeprefix("s3://").partition("/")
                    self.ask(
                        role,
                        "s3:PutObject",
                        f"arn:aws:s3:::{bucket}/{prefix.rstrip('/')}/x/AllTraffic/2026/11/23/00/x.jsonl",
                        f"{why}: captures requests",
                        "sagemaker-capture",
                        aws__SecureTransport="true",
                        s3__TlsVersion="1.2",
                    )
                    if capture.get("KmsKeyId"):
                        self.via_s3(
                            role,
                            "kms:GenerateDataKey",
                            self.key_arn(capture["KmsKeyId"]),
                            f"{why}: encrypts captures",
                            "sagemaker-capture",
                        )

    # --- Glue ---

    def glue(self) -> None:
        configurations = {physical.ref: p for _, _, p, physical in self.resources("AWS::Glue::SecurityConfiguration")}
        connections = {physical.ref: p for _, _, p, physical in self.resources("AWS::Glue::Connection")}
        for _, _, p, physical in self.resources("AWS::Glue::Job"):
            role, why = p["Role"], f"Glue job {physical.ref}"
            role = role if role.startswith("arn:") else f"arn:aws:iam::{self.account}:role/{role}"
            self.assume("glue.amazonaws.com", role, why)
            self._glue_common(
                role,
                why,
                p.get("SecurityConfiguration"),
                configurations,
                "jobs",
                p.get("Connections", {}).get("Connections", []),
                connections,
            )
            if str((p.get("DefaultArguments") or {}).get("--enable-metrics", "false")).lower() == "true":
                # Job metrics are published by the job under its role, in the Glue namespace.
                # https://docs.aws.amazon.com/glue/latest/dg/monitoring-awsglue-with-cloudwatch-metrics.html
                self.ask(
                    role,
                    "cloudwatch:PutMetricData",
                    "*",
                    f"{why}: publishes its job metrics",
                    "glue-role",
                    cloudwatch__namespace="Glue",
                )
        for _, _, p, physical in self.resources("AWS::Glue::Crawler"):
            role, why = p["Role"], f"Glue crawler {physical.ref}"
            role = role if role.startswith("arn:") else f"arn:aws:iam::{self.account}:role/{role}"
            self.assume("glue.amazonaws.com", role, why)
            targets = p.get("Targets", {}).get("S3Targets", [])
            self._glue_common(
                role,
                why,
                p.get("CrawlerSecurityConfiguration"),
                configurations,
                "crawlers",
                [t["ConnectionName"] for t in targets if t.get("ConnectionName")],
                connections,
            )
            database = p["DatabaseName"]
            catalog = f"arn:aws:glue:{self.region}:{self.account}:catalog"
            # Glue authorizes catalog calls on the catalog, the database and the table alike:
            # https://docs.aws.amazon.com/glue/latest/dg/glue-specifying-resource-arns.html
            database_arn = f"arn:aws:glue:{self.region}:{self.account}:database/{database}"
            for arn in (catalog, database_arn):
                self.ask(role, "glue:GetDatabase", arn, f"{why} catalogues into {database}", "glue-crawler")
            for action in (
                "glue:GetTable",
                "glue:GetTables",
                "glue:CreateTable",
                "glue:UpdateTable",
                "glue:BatchGetPartition",
                "glue:BatchCreatePartition",
                "glue:UpdatePartition",
            ):
                for arn in (
                    catalog,
                    f"arn:aws:glue:{self.region}:{self.account}:database/{database}",
                    f"arn:aws:glue:{self.region}:{self.account}:table/{database}/prepared_x",
                ):
                    self.ask(role, action, arn, f"{why} catalogues into {database}", "glue-crawler")
            for target in targets:
                bucket, _, prefix = target["Path"].removeprefix("s3://").partition("/")
                self.ask(
                    role,
                    "s3:ListBucket",
                    f"arn:aws:s3:::{bucket}",
                    f"{why} reads {target['Path']}",
                    "glue-crawler",
                    s3__prefix=prefix,
                    aws__SecureTransport="true",
                    s3__TlsVersion="1.2",
                )
                self.ask(
                    role,
                    "s3:GetObject",
                    f"arn:aws:s3:::{bucket}/{prefix}x/part-0.csv",
                    f"{why} reads {target['Path']}",
                    "glue-crawler",
                    aws__SecureTransport="true",
                    s3__TlsVersion="1.2",
                )
                default = self.where.bucket_keys.get(bucket, (None, False))[0]
                if default:
                    self.via_s3(role, "kms:Decrypt", default, f"{why} reads {target['Path']}", "glue-crawler")

    def _glue_common(
        self,
        role: str,
        why: str,
        configuration: str | None,
        configurations: Mapping[str, Any],
        kind: str,
        used: list[str],
        connections: Mapping[str, Any],
    ) -> None:
        groups = (
            [f"/aws-glue/{kind}"]
            if kind == "crawlers"
            else [f"/aws-glue/{kind}/{s}" for s in ("output", "error", "logs-v2")]
        )
        encryption = (configurations.get(configuration or "") or {}).get("EncryptionConfiguration", {})
        if configuration:  # with CloudWatch encryption, Glue writes to /aws-glue/<kind>-<configuration>-role/...
            suffix = f"-{configuration}-role/{role.rsplit('/', 1)[-1]}"
            groups = (
                [g.replace(f"/aws-glue/{kind}", f"/aws-glue/{kind}{suffix}") for g in groups]
                if encryption.get("CloudWatchEncryption", {}).get("CloudWatchEncryptionMode") == "SSE-KMS"
                else groups
            )
        for group in groups:
            base = f"arn:aws:logs:{self.region}:{self.account}:log-group:{group}"
            self.ask(role, "logs:CreateLogGroup", base, f"{why}: creates its log group", "glue-role")
            for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
                self.ask(role, action, f"{base}:log-stream:jr_0", f"{why}: writes its logs", "glue-role")
            if encryption.get("CloudWatchEncryption", {}).get("CloudWatchEncryptionMode") == "SSE-KMS":
                self.ask(role, "logs:AssociateKmsKey", base, f"{why}: encrypts its logs", "glue-encryption")
        bookmarks = encryption.get("JobBookmarksEncryption", {})
        if bookmarks.get("JobBookmarksEncryptionMode") == "CSE-KMS" and kind == "jobs":
            for action in ("kms:Decrypt", "kms:GenerateDataKey"):
                self.ask(
                    role,
                    action,
                    self.key_arn(bookmarks["KmsKeyArn"]),
                    f"{why}: encrypts its bookmarks",
                    "glue-encryption",
                )
        for s3 in encryption.get("S3Encryptions", []):
            if s3.get("S3EncryptionMode") == "SSE-KMS":
                self.via_s3(
                    role,
                    "kms:GenerateDataKey",
                    self.key_arn(s3["KmsKeyArn"]),
                    f"{why}: encrypts what it writes",
                    "glue-encryption",
                )
        for name in used:
            if name in connections:
                self.ask(
                    role,
                    "glue:GetConnection",
                    f"arn:aws:glue:{self.region}:{self.account}:connection/{name}",
                    f"{why}: uses connection {name}",
                    "glue-connection",
                )
                self.ask(
                    role,
                    "glue:GetConnection",
                    f"arn:aws:glue:{self.region}:{self.account}:catalog",
                    f"{why}: uses connection {name}",
                    "glue-connection",
                )
                network = connections[name].get("ConnectionInput", {}).get("PhysicalConnectionRequirements", {})
                subnet, groups = network["SubnetId"], network.get("SecurityGroupIdList", [])
                self.network_interfaces(role, [subnet], groups, f"{why} through {name}", "glue-connection")
                # Glue tags the ENIs it creates (and untags them) with aws-glue-service-resource.
                eni = f"arn:aws:ec2:{self.region}:{self.account}:network-interface/eni-0"
                for action in ("ec2:CreateTags", "ec2:DeleteTags"):
                    self.ask(
                        role,
                        action,
                        eni,
                        f"{why}: tags its ENI in {name}",
                        "glue-role",
                        aws__TagKeys=["aws-glue-service-resource"],
                    )
                for action in (
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeVpcEndpoints",
                    "ec2:DescribeRouteTables",
                ):
                    self.ask(role, action, "*", f"{why}: runs in the VPC through {name}", "glue-connection")
                vpc = f"arn:aws:ec2:{self.region}:{self.account}:vpc/{self.vpc_id()}"
                self.ask(
                    role, "ec2:DescribeVpcAttribute", vpc, f"{why}: runs in the VPC through {name}", "glue-connection"
                )

    # --- CloudFormation under the role deploy_model passes ---

    def cloudformation(self) -> None:
        providers = json.loads((CFN_SCHEMAS / "providers" / f"{self.region}.json").read_text(encoding="utf-8"))
        seen: set[tuple[str, str, str]] = set()
        for entry in self.twin.trace.of("handler"):
            role = entry["principal"]
            if role not in self.policies.roles:
                continue  # the initial deployment, by cdk deploy's own role
            self.assume("cloudformation.amazonaws.com", role, f"CloudFormation updates {entry['stack']}")
            if (entry["type"], entry["handler"], entry["resource"]) in seen:
                continue
            seen.add((entry["type"], entry["handler"], entry["resource"]))
            schema = json.loads(
                (CFN_SCHEMAS / "resources" / f"{providers[entry['type']]}.json").read_text(encoding="utf-8")
            )
            permissions = schema.get("handlers", {}).get(entry["handler"], {}).get("permissions", [])
            if entry["handler"] == "create":  # CloudFormation reads back what it created
                permissions = [*permissions, *schema.get("handlers", {}).get("read", {}).get("permissions", [])]
            names = _names(entry)
            why = f"CloudFormation {entry['handler']}s {entry['stack']}/{entry['resource']} ({entry['type']})"
            for action in dict.fromkeys(permissions):
                from permissions import reviewed

                skip = reviewed.HANDLER_PERMISSIONS_NOT_USED.get((entry["type"], action))
                if skip and skip[0](entry["properties"]):
                    continue
                context: dict[str, Any] = {"aws__CalledVia": ["cloudformation.amazonaws.com"]}
                if action == "iam:CreateServiceLinkedRole":
                    service, resource = reviewed.service_linked_role(entry["type"], entry["properties"], self.account)
                    context["iam__AWSServiceName"] = service
                    self.ask(role, action, resource, why, "cfn-schema", **context)
                    continue
                try:
                    resource = arn_for(action, names, self.where.names())
                except Unknown as unknown:
                    self.unknowns.append(f"{why}: {unknown}")
                    continue
                if action == "iam:PassRole":
                    context["iam__PassedToService"] = f"{action_service(entry['type'])}.amazonaws.com"
                if action.endswith((":AddTags", ":TagResource")) or (
                    entry["handler"] == "create" and ":Create" in action and entry["properties"].get("Tags")
                ):
                    context.update(
                        {k.replace(":", "__", 1): v for k, v in tag_context(entry["properties"].get("Tags")).items()}
                    )
                self.ask(role, action, resource, why, "cfn-schema", **context)

    # --- Studio ---

    def studio(self) -> None:
        # The domain's default execution role is the one every space and app of a user without a
        # role of their own runs under: SageMaker assumes it for the domain.
        for _, _, p, physical in self.resources("AWS::SageMaker::Domain"):
            role = (p.get("DefaultUserSettings") or {}).get("ExecutionRole")
            if role:
                # Studio sends the account-wide ARN, its asterisk literal, not the domain's.
                self.assume("sagemaker.amazonaws.com", role, f"Studio domain {physical.ref}", self.sagemaker_account)
        for _, _, p, _physical in self.resources("AWS::SageMaker::UserProfile"):
            role = (p.get("UserSettings") or {}).get("ExecutionRole")
            if not role:
                continue
            domain, user = p["DomainId"], p["UserProfileName"]
            sagemaker = f"arn:aws:sagemaker:{self.region}:{self.account}"
            profile = f"{sagemaker}:user-profile/{domain}/{user}"
            self.assume("sagemaker.amazonaws.com", role, f"Studio user {user}", self.sagemaker_account)
            self.source_identity(role, user, f"Studio user {user}")
            # Studio's calls carry the profile name as source identity (USER_PROFILE_NAME).
            who = {"aws__SourceIdentity": user}
            why = f"Studio user {user} opens Studio"
            self.ask(role, "sagemaker:DescribeDomain", f"{sagemaker}:domain/{domain}", why, "studio-spaces", **who)
            self.ask(role, "sagemaker:DescribeUserProfile", profile, why, "studio-spaces", **who)
            for action in ("sagemaker:ListSpaces", "sagemaker:ListApps"):
                self.ask(role, action, "*", why, "studio-spaces", **who)
            space = f"{sagemaker}:space/{domain}/{user}-private"
            app = f"{sagemaker}:app/{domain}/{user}-private/jupyterlab/default"
            owned = {"sagemaker__OwnerUserProfileArn": profile, "sagemaker__SpaceSharingType": "Private", **who}
            for resource, noun, kind in ((space, "private space", "Space"), (app, "JupyterLab app", "App")):
                why = f"Studio user {user} works in a {noun}"
                for verb in ("Create", "Delete"):
                    self.ask(role, f"sagemaker:{verb}{kind}", resource, why, "studio-spaces", **owned)
                self.ask(role, f"sagemaker:Describe{kind}", resource, why, "studio-spaces", **who)
                self.ask(
                    role,
                    "sagemaker:AddTags",
                    resource,
                    why,
                    "studio-spaces",
                    sagemaker__TaggingAction=f"Create{kind}",
                    **who,
                )

    def custom_resources(self) -> None:
        """What the CDK's own custom resources do under their provider's role at deploy and destroy."""
        ec2 = f"arn:aws:ec2:{self.region}:{self.account}"
        for stack, _, p, _physical in self.resources("Custom::VpcRestrictDefaultSG"):
            role = self._provider_role(p["ServiceToken"])
            group = f"{ec2}:security-group/{p['DefaultSecurityGroupId']}"
            # Create revokes the default security group's rules; Delete puts them back.
            for verb, when in (("Revoke", "deploy"), ("Authorize", "destroy")):
                for direction in ("Ingress", "Egress"):
                    self.ask(
                        role,
                        f"ec2:{verb}SecurityGroup{direction}",
                        group,
                        f"{stack}: the default security group's rules at {when}",
                        "vpc-restrict-default-sg",
                    )

        # At stack deletion the auto-delete provider checks the bucket's tag, stops new writes
        # with a bucket policy, lists every object version and deletes them.
        for stack, _, p, _physical in self.resources("Custom::S3AutoDeleteObjects"):
            role, bucket = self._provider_role(p["ServiceToken"]), p["BucketName"]
            why = f"{stack}: empties {bucket} when the stack is deleted"
            for action in ("s3:GetBucketTagging", "s3:PutBucketPolicy", "s3:ListBucketVersions"):
                self.ask(role, action, f"arn:aws:s3:::{bucket}", why, "s3-auto-delete")
            for action in ("s3:DeleteObject", "s3:DeleteObjectVersion"):
                self.ask(role, action, f"arn:aws:s3:::{bucket}/any/object", why, "s3-auto-delete")

    def _provider_role(self, service_token: str) -> str:
        function = next((f for f in self.twin.functions if f.arn == service_token), None)
        if function is None:
            raise KeyError(f"no deployed function {service_token} provides the custom resource")
        return function.role_arn


def _tags_context(tags: Any) -> dict[str, Any]:
    return {k.replace(":", "__", 1): v for k, v in tag_context(tags).items()}


def action_service(resource_type: str) -> str:
    """AWS::SageMaker::Model -> sagemaker (the service a role is passed to from a resource type)."""
    service = resource_type.split("::")[1].lower()
    return {"applicationautoscaling": "application-autoscaling"}.get(service, service)


def _names(entry: Mapping[str, Any]) -> dict[str, Any]:
    """What names a CloudFormation-managed resource: its properties, its physical id and attributes."""
    kind = entry["type"].split("::")[-1]
    names: dict[str, Any] = {k: v for k, v in entry["properties"].items() if isinstance(v, str)}
    names.setdefault(f"{kind}Name", entry["ref"])
    if entry["type"] == "AWS::ApplicationAutoScaling::ScalingPolicy" and "ScalingTargetId" in entry["properties"]:
        names["ResourceId"] = entry["properties"]["ScalingTargetId"].split("|")[0]  # resource|dimension|namespace
    if entry["type"].startswith("AWS::ApplicationAutoScaling::"):  # the alarms target tracking creates
        names["AlarmName"] = f"TargetTracking-{entry['properties'].get('ResourceId', entry['ref'])}-AlarmHigh-0"
    names.update({k: v for k, v in entry.get("attributes", {}).items() if isinstance(v, str)})
    for value in strings_in(entry["properties"]):
        if value.startswith("arn:"):
            names.setdefault(f"arn{len(names)}", value)
    return names


def derive(
    twin: Twin, policies: Policies, where: Where, calls: list[Mapping[str, Any]] | None = None
) -> tuple[list[Request], list[str]]:
    """What services ask on the platform's behalf, for the calls the twin recorded and ``calls``."""
    rules = Rules(twin, policies, where, calls or [])
    for rule in (
        rules.lambda_functions,
        rules.event_source_mappings,
        rules.rules,
        rules.alarms,
        rules.budgets,
        rules.buckets,
        rules.trails,
        rules.log_groups,
        rules.flow_logs,
        rules.sagemaker,
        rules.endpoints,
        rules.glue,
        rules.cloudformation,
        rules.studio,
        rules.custom_resources,
    ):
        rule()
    return rules.requests, sorted(set(rules.unknowns))
