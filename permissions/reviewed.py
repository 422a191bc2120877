"""The reviewed additions to iam-data's map, each with the page that says so; and the unknowns.

Keep this list short and true: an entry here is a claim about AWS, and the page beside it is
where a reviewer checks it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# botocore service name -> (IAM prefix, page), where the two differ from botocore's signing name.
PREFIXES: dict[str, tuple[str, str]] = {
    "sagemaker-runtime": (
        "sagemaker",
        "https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html",
    ),
    "cloudwatch": (
        "cloudwatch",
        "https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html",
    ),
}


@dataclass(frozen=True)
class Actions:
    """The IAM actions of an operation not named like it (or needing more than one)."""

    pick: Callable[[Mapping[str, Any]], Iterable[str]]
    doc: str

    def actions(self, params: Mapping[str, Any]) -> Iterable[str]:
        return self.pick(params)


_S3_ACTIONS = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html"

ACTIONS: dict[tuple[str, str], Actions] = {
    ("s3", "ListObjectsV2"): Actions(lambda p: ["s3:ListBucket"], _S3_ACTIONS),
    ("s3", "ListObjects"): Actions(lambda p: ["s3:ListBucket"], _S3_ACTIONS),
    ("s3", "HeadObject"): Actions(
        lambda p: ["s3:GetObjectVersion" if p.get("VersionId") else "s3:GetObject"], _S3_ACTIONS
    ),
    ("s3", "GetObject"): Actions(
        lambda p: ["s3:GetObjectVersion" if p.get("VersionId") else "s3:GetObject"], _S3_ACTIONS
    ),
    ("s3", "HeadBucket"): Actions(lambda p: ["s3:ListBucket"], _S3_ACTIONS),
    # "you must add the s3:ListAllMyBuckets policy action" (the SDK's Session looks its bucket up)
    ("s3", "ListBuckets"): Actions(
        lambda p: ["s3:ListAllMyBuckets"], "https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListBuckets.html"
    ),
    # PutObject with a Tagging header also needs s3:PutObjectTagging.
    ("s3", "PutObject"): Actions(
        lambda p: ["s3:PutObject", *(["s3:PutObjectTagging"] if p.get("Tagging") else [])], _S3_ACTIONS
    ),
    ("s3", "DeleteObject"): Actions(
        lambda p: ["s3:DeleteObjectVersion" if p.get("VersionId") else "s3:DeleteObject"], _S3_ACTIONS
    ),
    ("s3", "DeleteObjects"): Actions(lambda p: ["s3:DeleteObject"], _S3_ACTIONS),
    ("s3", "CopyObject"): Actions(
        lambda p: ["s3:PutObject"], _S3_ACTIONS
    ),  # and s3:GetObject on the source: see calls.py
    # GetParameter(s) of a parameter: the action is named after the operation, the ARN drops the leading slash.
}

# Actions that authorize on a resource even where iam-data marks every resource type optional
# (S3 lists access points as an alternative to buckets and objects, so neither is "required").
NEEDS_RESOURCE: frozenset[str] = frozenset(
    {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:PutObjectTagging",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:ListBucket",
        "s3:ListBucketVersions",
        "s3:GetBucketAcl",
        "s3:GetBucketLocation",
        "cloudformation:DescribeStacks",
    }
)


def placeholders(prefix: str, params: Mapping[str, Any], where: Mapping[str, Any]) -> dict[str, str]:
    """ARN placeholders whose API parameter has another name (the service's ARN format page)."""
    found: dict[str, str] = {}
    if prefix == "s3":  # https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-arn-format.html
        if "Bucket" in params:
            found["BucketName"] = params["Bucket"]
        if "Key" in params:
            found["ObjectName"] = params["Key"]
    elif prefix == "ssm" and ("Name" in params or len(params.get("Names", [])) == 1):
        name = params.get("Name") or params["Names"][0]  # arn:...:parameter/name-without-leading-slash
        found["ParameterNameWithoutLeadingSlash"] = str(name).lstrip("/")
    elif prefix == "cloudformation" and "StackName" in params:
        stack = str(params["StackName"])
        stack_id = stack if stack.startswith("arn:") else where.get("stacks", {}).get(stack)
        if stack_id:  # arn:...:stack/<name>/<id>
            found["StackName"], found["Id"] = stack_id.split(":stack/", 1)[1].split("/", 1)
    elif prefix == "sagemaker" and "AutoMLJobName" in params:
        # arn:...:automl-job/${AutoMLJobJobName}, as the Service Authorization Reference names it
        # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html#amazonsagemaker-resources-for-iam-policies
        found["AutoMLJobJobName"] = params["AutoMLJobName"]
    elif prefix == "iam" and "RoleArn" in params:
        found["RoleNameWithPath"] = str(params["RoleArn"]).split(":role/", 1)[1]
    elif prefix == "iam" and "RoleName" in params:  # GetRole: the platform's roles have no path
        found["RoleNameWithPath"] = str(params["RoleName"])
    elif prefix == "sqs" and "QueueUrl" in params:
        found["QueueName"] = str(params["QueueUrl"]).rstrip("/").rsplit("/", 1)[1]
    elif prefix == "logs":
        if "logGroupName" in params:
            found["LogGroupName"] = params["logGroupName"]
        if "logStreamName" in params:
            found["LogStreamName"] = params["logStreamName"]
    elif prefix == "glue" and "Name" in params:
        found["CrawlerName"] = params["Name"]
    return found


# Requests the check cannot evaluate, by the start of the check's message, with the reason each
# is accepted. An unknown not listed here fails the check.
UNKNOWNS: dict[str, str] = {}

# Grants no recorded request uses, kept on purpose: (logical id prefix of the policy's resource,
# action pattern) -> why. Anything unused and not listed is reported for removal.
_READ_GRANT = (
    "CDK's S3 read grant (Bucket.grant_read, with kms:Decrypt and kms:DescribeKey on the bucket's key): S3 "
    "clients (EMRFS in Glue, SageMaker's channel reader, boto3) read a bucket's location and an object's "
    "metadata, which the emulated services do not call"
)
_MULTIPART = (
    "an upload above the client's multipart threshold (8 MB in boto3; Spark's S3 committer) that fails is "
    "aborted; the twin's objects are small"
)
HANDLER_TESTS = "made on a path the chain does not take; proven from the handler tests' calls in make test"
_NEXT_ROLLOUT = (
    "the chain's one roll-out creates the endpoint; the next approved model's roll-out replaces the Model "
    "and EndpointConfig (their delete handlers clean up the old ones) and runs the Endpoint's update handler; "
    "tests/test_local_builtins.py rolls a second model out and proves it"
)
# The roles with CDK's S3 read grant (Bucket.grant_read).
_READERS = (
    "PreparationJobRole",
    "CatalogueCrawlerRole",
    "StartEtlRole",
    "ExecutionRole",
    "RegisterModelRole",
    "StartTrainingRole",
    "DataScientistRole",
    "JobRole",
    "MonitoringRole",
    "CheckDriftRole",
)
UNUSED: dict[tuple[str, str], str] = {
    **{
        (role, pattern): _READ_GRANT
        for role in _READERS
        for pattern in ("s3:GetBucket*", "s3:List*", "kms:DescribeKey")
    },
    **{
        (role, "s3:AbortMultipartUpload"): _MULTIPART
        for role in (
            "PreparationJobRole",
            "StartEtlRole",
            "ExecutionRole",
            "RegisterModelRole",
            "DataScientistRole",
            "JobRole",
            "MonitoringRole",
            "CheckDriftRole",
        )
    },
    ("PreparationJobRole", "s3:DeleteObject"): (
        "Spark's output committer deletes its temporary objects under the run's prefix; the twin runs Spark "
        "on local files and uploads only the result"
    ),
    **{
        ("CatalogueCrawlerRole", action): (
            "the crawler records a partition for each partitioned folder it finds under prepared/; the twin "
            "does not run the crawler's classification"
        )
        for action in ("glue:BatchUpdatePartition", "glue:CreatePartition", "glue:GetPartition", "glue:GetPartitions")
    },
    ("StartEtlRole", "s3:GetObject*"): "start_etl reads a run's record when its claim is refused: " + HANDLER_TESTS,
    ("StartEtlRole", "glue:GetJobRuns"): (
        "start_etl's lookup of a run already writing the output (_find_run), when a claim is older than the "
        "claim timeout; neither the chain nor the handler tests reach it yet (a gap in the tests)"
    ),
    **{
        ("StartTrainingRole", a): "a dataset that trains without tuning: " + HANDLER_TESTS
        for a in ("sagemaker:CreateTrainingJob",)
    },
    **{
        ("StartTrainingRole", a): "a job name already taken: " + HANDLER_TESTS
        for a in (
            "sagemaker:DescribeTrainingJob",
            "sagemaker:DescribeHyperParameterTuningJob",
        )
    },
    (
        "RegisterModelRole",
        "sagemaker:DescribeModelPackage",
    ): "the previous approved package, for the gate's comparison: " + HANDLER_TESTS,
    ("RegisterModelRole", "sns:Publish"): "a rejected model or a failed job is told to the operators: " + HANDLER_TESTS,
    **{
        (role, "sagemaker:AddTags"): (
            "SageMaker authorizes sagemaker:AddTags for a Create* request that carries Tags; the proof does "
            "not derive that request yet "
            "(https://docs.aws.amazon.com/sagemaker/latest/dg/security_iam_id-based-policy-examples.html)"
        )
        for role in ("StartTrainingRole", "StartBatchTransformRole", "RegisterModelRole", "DeployModelRole")
    },
    **{
        ("RegisterModelRole", a): (
            "a built-in algorithm's model is scored (CreateModel, CreateTransformJob, the manifest's ListBucket) "
            "and evaluated (CreateTrainingJob), passing the execution role; the chain trains XGBoost, "
            "tests/test_local_builtins.py runs Linear Learner and k-NN and proves these requests there"
        )
        for a in (
            "sagemaker:CreateModel",
            "sagemaker:CreateTransformJob",
            "sagemaker:CreateTrainingJob",
            "iam:PassRole",
            "s3:ListBucket",
        )
    },
    **{
        (role, a): (
            "the Autopilot path: start_training starts an AutoML job, register_model's schedule describes an "
            "ended one; the chain trains XGBoost, "
            "tests/test_local_autopilot.py runs Autopilot and proves these requests there"
        )
        for role, a in (
            ("StartTrainingRole", "sagemaker:CreateAutoMLJobV2"),
            ("RegisterModelRole", "sagemaker:DescribeAutoMLJobV2"),
        )
    },
    ("StartTrainingRole", "sagemaker:DescribeAutoMLJobV2"): "an AutoML job name already taken: " + HANDLER_TESTS,
    ("StartBatchTransformRole", "sagemaker:DescribeTransformJob"): "a job name already taken: " + HANDLER_TESTS,
    ("StartBatchTransformRole", "sns:Publish"): "a batch file with no model to run it: " + HANDLER_TESTS,
    **{
        ("DeploymentRole", a): _NEXT_ROLLOUT
        for a in (
            "sagemaker:DeleteEndpointConfig",
            "sagemaker:DeleteModel",
            "sagemaker:DeleteTags",
            "sagemaker:UpdateEndpoint",
        )
    },
    **{
        ("DeploymentRole", a): (
            "the next approved model's roll-out brings a new baseline: CloudFormation replaces the data-quality "
            "job definition (its delete handler removes the old one) and updates the schedule; "
            "tests/test_local_builtins.py rolls a second model out and proves it"
        )
        for a in ("sagemaker:DeleteDataQualityJobDefinition", "sagemaker:UpdateMonitoringSchedule")
    },
    ("DeploymentRole", "sagemaker:DeleteMonitoringSchedule"): (
        "a model rolled out without a baseline (its baseline job failed) after one with a baseline: the "
        "Monitored condition turns false and CloudFormation deletes the schedule; the chain does not fail a "
        "baseline job"
    ),
    ("DeploymentRole", "sagemaker:DescribeModelPackage"): (
        "not derived by any rule; kept on judgement: CreateModel from a ModelPackageName reads the package "
        "with the caller's permissions (the registry's cross-account pages grant consumers this action)"
    ),
    **{
        ("DeploymentRole", a): (
            "not derived by any rule; kept on judgement: CreateModel validates its VpcConfig's subnets and "
            "security groups, and no AWS page says with whose permissions"
        )
        for a in ("ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs")
    },
    **{
        ("PlatformKey", a): (
            "used by the CloudWatch Logs and CloudTrail requests the evaluator cannot decide (EVALUATOR_GAPS), "
            "each read by hand against this statement"
        )
        for a in ("kms:Decrypt*", "kms:Describe*", "kms:Encrypt*", "kms:GenerateDataKey*", "kms:ReEncrypt*")
    },
    ("DataScientistRole", "*"): (
        "what a data scientist does beyond starting the jobs permissions/people.py proves (opens Studio, "
        "reads the data, writes their sandbox, describes and stops jobs, reads the registry): a person's "
        "requests, which the chain does not make; Studio's own are derived per user profile, where the "
        "stage lists users"
    ),
    ("AWS managed", "logs:CreateLogGroup"): (
        "AWSLambdaBasicExecutionRole of CDK's custom-resource providers: an AWS managed policy, not the "
        "platform's to narrow"
    ),
}


# Permissions a CloudFormation handler lists for features of its type that the resource does not
# use: (type, action) -> (does this resource leave it unused?, why).
# https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-schema.html#schema-properties-handlers
_NOT_LAMBDA = (
    lambda p: p.get("ServiceNamespace") != "lambda",
    "provisioned concurrency of a Lambda target; this target is a SageMaker variant",
)
_NO_SCHEDULE = (lambda p: not p.get("ScheduledActions"), "scheduled actions; the target has none")
_NO_TAGS = (lambda p: not p.get("Tags"), "tags; the resource has none")
_NO_ROLE = (lambda p: not p.get("RoleARN"), "a role of the caller's choice; the target uses the service-linked role")
_NO_EXECUTION_ROLE = (lambda p: not p.get("ExecutionRoleArn"), "an execution role; the configuration has none")
_NO_INLINE_DEFINITION = (
    lambda p: "MonitoringJobDefinition" not in p.get("MonitoringScheduleConfig", {}),
    "the role of an inline job definition; the schedule names a job definition, whose own creation passes its role",
)
HANDLER_PERMISSIONS_NOT_USED: dict[tuple[str, str], tuple[Callable[[Mapping[str, Any]], bool], str]] = {
    ("AWS::SageMaker::MonitoringSchedule", "iam:PassRole"): _NO_INLINE_DEFINITION,
    ("AWS::ApplicationAutoScaling::ScalableTarget", "iam:PassRole"): _NO_ROLE,
    ("AWS::SageMaker::EndpointConfig", "iam:PassRole"): _NO_EXECUTION_ROLE,
    ("AWS::ApplicationAutoScaling::ScalableTarget", "lambda:GetProvisionedConcurrencyConfig"): _NOT_LAMBDA,
    ("AWS::ApplicationAutoScaling::ScalableTarget", "lambda:PutProvisionedConcurrencyConfig"): _NOT_LAMBDA,
    ("AWS::ApplicationAutoScaling::ScalableTarget", "lambda:DeleteProvisionedConcurrencyConfig"): _NOT_LAMBDA,
    ("AWS::ApplicationAutoScaling::ScalableTarget", "application-autoscaling:DescribeScheduledActions"): _NO_SCHEDULE,
    ("AWS::ApplicationAutoScaling::ScalableTarget", "application-autoscaling:PutScheduledAction"): _NO_SCHEDULE,
    ("AWS::ApplicationAutoScaling::ScalableTarget", "application-autoscaling:DeleteScheduledAction"): _NO_SCHEDULE,
}


def service_linked_role(resource_type: str, properties: Mapping[str, Any], account: str) -> tuple[str, str]:
    """The service-linked role a handler may create: (service name, role ARN).

    https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-service-linked-roles.html
    """
    namespace = properties.get("ServiceNamespace", "")
    if resource_type.startswith("AWS::ApplicationAutoScaling::") and namespace == "sagemaker":
        service = "sagemaker.application-autoscaling.amazonaws.com"
        return (
            service,
            f"arn:aws:iam::{account}:role/aws-service-role/{service}/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
        )
    raise ValueError(f"{resource_type} ({namespace}): no service-linked role known")


# Requests iam-simulate cannot decide, by (principal prefix, action). It drops the
# kms:EncryptionContext:<key> condition keys (it matches variable keys only in the "prefix/name"
# form), so a key-policy statement conditioned on them never matches. Each entry was read by hand
# against the key policy instead (stacks/data.py, statement CloudWatchLogsEncryptsThisAccountsLogGroups:
# ArnLike kms:EncryptionContext:aws:logs:arn arn:...:logs:<region>:<account>:log-group:*;
# CloudTrailEncryptsThisAccountsTrails: StringLike kms:EncryptionContext:aws:cloudtrail:arn
# arn:...:cloudtrail:*:<account>:trail/* and aws:SourceAccount <account>, which the trail's
# request carries).
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html
EVALUATOR_GAPS: frozenset[tuple[str, str]] = frozenset(
    [
        *(
            ("logs.", action)
            for action in ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:GenerateDataKey", "kms:DescribeKey")
        ),
        ("cloudtrail.amazonaws.com", "kms:GenerateDataKey"),
    ]
)


@dataclass(frozen=True)
class AssumeContext:
    """The confused-deputy keys a service's sts:AssumeRole request carries to a role's trust
    policy, by the service's own page; a key the page does not give is not sent."""

    source_account: bool
    source_arn: bool
    doc: str


# Service principal -> what its AssumeRole request for a role it was given carries. A trust
# condition on a key not sent here fails the proof, as it would lock the service out of its role
# in a real account (constructs/service_trust.py builds the conditions from the same pages).
ASSUME_ROLE_CONTEXT: dict[str, AssumeContext] = {
    # Per feature: a job's own ARN (training-job/, processing-job/, transform-job/), the
    # account-wide arn:...:sagemaker:<region>:<account>:* for inference and Studio; the
    # examples need no aws:SourceAccount ("the account number is in the ARN").
    "sagemaker.amazonaws.com": AssumeContext(
        False, True, "https://docs.aws.amazon.com/sagemaker/latest/dg/security-confused-deputy-prevention.html"
    ),
    # "The source account is the owner of the flow log and the source ARN is the flow log ARN."
    "vpc-flow-logs.amazonaws.com": AssumeContext(
        True, True, "https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html"
    ),
    # "Confused deputy prevention is not applicable to the role policy for CloudWatch Logs
    # monitoring. The role policy doesn't support the use of aws:SourceArn and aws:SourceAccount."
    "cloudtrail.amazonaws.com": AssumeContext(
        False,
        False,
        "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-required-policy-for-cloudwatch-logs.html",
    ),
    # Not documented for the roles below: their pages trust the service bare.
    "lambda.amazonaws.com": AssumeContext(
        False, False, "https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html"
    ),
    "glue.amazonaws.com": AssumeContext(
        False, False, "https://docs.aws.amazon.com/glue/latest/dg/create-an-iam-role.html"
    ),
    # Its confused-deputy page is about the roles of extensions, not a stack's service role.
    "cloudformation.amazonaws.com": AssumeContext(
        False, False, "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-iam-servicerole.html"
    ),
}
