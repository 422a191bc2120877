"""DataScientistRoles: the execution roles data scientists work as, in Studio or a notebook.

A role may read raw/ and prepared/, read and write its own sandbox (sandbox/<user>/, or
sandbox/${aws:SourceIdentity}/ for a role shared by users Studio tells apart), and read the model
registry; it cannot delete platform data, and changes a model's approval only where the stage
lets the team approve. In Studio each role may also open its own user profile's spaces and apps.

Jobs and models a person starts run as the data scientists' job role, never as the platform's
execution role: it reads raw/ and prepared/ and writes only sandbox/, so no person's code can
write the models behind approved packages or the platform's data. SageMaker's condition keys
keep every job and model inside the guardrails: the platform's subnets and jobs' security group,
network isolation, the platform key for volumes and outputs, inter-container encryption; no job
or model may carry the platform's tag keys, and no model may be named like the platform's
(``<stage prefix>-*``), nor a transform job run one (a model runs as its own role).
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemakerai.html#amazonsagemakerai-policy-keys
https://docs.aws.amazon.com/sagemaker/latest/dg/security_iam_id-based-policy-examples.html
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct, service_trust
from constructs import nag_acknowledgements as nag
from constructs.execution_role import grant_job_keys, grant_job_telemetry, job_role_reasons
from constructs.logical_ids import logical_id
from constructs.pass_role import grant_pass_role
from constructs.secure_bucket import SecureBucket

from config import WorkspaceConfig
from etl.platform_runtime import TAG_PREFIX

JOB_REASON = (
    "Data scientists name their own jobs and models; Create actions may pass only the data "
    "scientists' job role and must keep the job in the platform's subnets and security group, "
    "network-isolated and under the platform key (SageMaker condition keys)."
)
# The jobs a person starts, with the condition keys each request carries.
TRAINING_LIKE = (
    "sagemaker:CreateTrainingJob",
    "sagemaker:CreateProcessingJob",
    "sagemaker:CreateHyperParameterTuningJob",
)


class DataScientistRoles(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        workspace: WorkspaceConfig,
        key: kms.IKey,
        data: SecureBucket,
        reads: tuple[str, ...],
        sandbox_prefix: str,
        artifacts: SecureBucket,
        subnet_ids: list[str],
        security_group: ec2.ISecurityGroup,
        group_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self._reads, self._sandbox_prefix = reads, sandbox_prefix
        self.workspace = workspace
        self._key, self._data, self._artifacts = key, data, artifacts
        self._subnet_ids, self._security_group = subnet_ids, security_group
        self._group_prefix = group_prefix
        self.roles: dict[str, iam.Role] = {}
        self.owners: dict[str, str] = {}  # role construct id -> the user it serves (or ${aws:SourceIdentity})
        self.job_role = self._job_role()

    def _job_role(self) -> iam.Role:
        """What the jobs and models data scientists start run as: the platform's data to read,
        the sandboxes to write, the platform key, logs and metrics under /aws/sagemaker/, and
        network interfaces in the VPC."""
        role = iam.Role(
            self,
            "JobRole",
            assumed_by=service_trust.sagemaker(self),  # jobs and models: constructs/service_trust.py
            description="Jobs and models data scientists start: read data, write sandboxes, nothing of the platform's",
        )
        if self.workspace.kind == "studio":  # jobs started from Studio carry the person's source identity
            service_trust.allow_source_identity(role)
        for prefix in self._reads:
            self._data.grant_read(role, f"{prefix}*")
        self._data.grant_read(role, f"{self._sandbox_prefix}*")
        self._data.grant_write(role, f"{self._sandbox_prefix}*")  # never delete: a person's deletes are their own
        grant_job_keys(role, self._key)
        grant_job_telemetry(role)
        stack = Stack.of(self)
        data_id = logical_id(self._data.bucket)
        nag.acknowledge_grant_policy(role)
        nag.acknowledge_wildcards(
            role.node.find_child("DefaultPolicy"),
            {
                "Data scientists' jobs read every dataset's raw/ and prepared/ data and write the "
                "sandboxes (a job cannot tell the person who started it apart), nothing else.": [
                    *[f"Resource::<{data_id}.Arn>/{prefix}*" for prefix in self._reads],
                    f"Resource::<{data_id}.Arn>/{self._sandbox_prefix}*",
                ],
                **job_role_reasons(stack),
            },
        )
        return role

    def _guardrails(self) -> dict[str, dict[str, Any]]:
        """The conditions every job and model a person creates must meet, by the condition keys
        SageMaker sets from the request (absent keys fail every condition but Null)."""
        return {
            "network": {
                "ForAllValues:StringEquals": {
                    "sagemaker:VpcSubnets": self._subnet_ids,
                    "sagemaker:VpcSecurityGroupIds": [self._security_group.security_group_id],
                },
                "Null": {"sagemaker:VpcSubnets": "false", "sagemaker:VpcSecurityGroupIds": "false"},
                "Bool": {"sagemaker:NetworkIsolation": "true"},
            },
            "keys": {
                "ArnEquals": {
                    "sagemaker:VolumeKmsKeyArn": self._key.key_arn,
                    "sagemaker:OutputKmsKeyArn": self._key.key_arn,
                },
            },
        }

    def role(self, construct_id: str, sandbox_owner: str) -> iam.Role:
        """A data scientists' execution role; ``sandbox_owner`` names the sandbox (a user, or
        ``${aws:SourceIdentity}`` for a role shared by users told apart by Studio)."""
        stack = Stack.of(self)
        # Studio sends aws:SourceArn (constructs/service_trust.py); a notebook instance is not on
        # SageMaker's confused-deputy page, so its role's trust takes no condition:
        # https://docs.aws.amazon.com/sagemaker/latest/dg/security-confused-deputy-prevention.html
        studio = self.workspace.kind == "studio"
        role = iam.Role(
            self,
            construct_id,
            assumed_by=service_trust.sagemaker(self) if studio else iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Data scientists of the ML platform: read data, own sandbox, start jobs",
        )
        if studio:
            service_trust.allow_source_identity(role)
        data, artifacts = self._data, self._artifacts
        for prefix in self._reads:
            data.grant_read(role, f"{prefix}*")
        sandbox = f"{self._sandbox_prefix}{sandbox_owner}/*"
        data.grant_read_write(role, sandbox)  # their own sandbox: read, write and delete
        if self.workspace.sharing == "artifacts":
            artifacts.grant_read_write(role, "sharing/*")
        self._key.grant(role, "kms:Decrypt", "kms:GenerateDataKey*")  # S3 objects under the platform key
        arn = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}"
        jobs = [f"{arn}:training-job/*", f"{arn}:processing-job/*", f"{arn}:hyper-parameter-tuning-job/*"]
        guardrails = self._guardrails()
        network, keys = guardrails["network"], guardrails["keys"]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="JobsInsideTheGuardrails",
                actions=list(TRAINING_LIKE),
                resources=jobs,
                conditions={
                    **network,
                    "Bool": {**network["Bool"], "sagemaker:InterContainerTrafficEncryption": "true"},
                    **keys,
                },
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ModelsInsideTheGuardrails",
                actions=["sagemaker:CreateModel"],
                resources=[f"{arn}:model/*"],
                conditions=network,
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="TransformsUnderThePlatformKey",
                actions=["sagemaker:CreateTransformJob"],
                resources=[f"{arn}:transform-job/*"],
                conditions=keys,
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:DescribeTransformJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:StopHyperParameterTuningJob",
                    "sagemaker:StopTransformJob",
                    "sagemaker:DescribeModel",
                    "sagemaker:DeleteModel",
                    "sagemaker:AddTags",
                ],
                resources=[*jobs, f"{arn}:transform-job/*", f"{arn}:model/*"],
            )
        )
        # The platform's models run as its execution role, which writes its models and data: no
        # person may create, delete or run one (the endpoint's are <endpoint>-<version>, batch
        # transform's <stage prefix>-<file>-<digest>).
        platform_models = f"{arn}:model/{self._group_prefix}-*"
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="NoPlatformModels",
                effect=iam.Effect.DENY,
                actions=["sagemaker:CreateModel", "sagemaker:DeleteModel"],
                resources=[platform_models],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="NoTransformsWithPlatformModels",
                effect=iam.Effect.DENY,
                actions=["sagemaker:CreateTransformJob"],
                resources=["*"],
                conditions={"ArnLike": {"sagemaker:ModelArn": platform_models}},
            )
        )
        # The platform's tag keys mark the jobs register_model trusts (start_training's): no job or
        # model a data scientist starts or tags may carry one.
        # https://docs.aws.amazon.com/sagemaker/latest/dg/security_iam_id-based-policy-examples.html
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="NoPlatformTagKeys",
                effect=iam.Effect.DENY,
                actions=[*TRAINING_LIKE, "sagemaker:CreateTransformJob", "sagemaker:CreateModel", "sagemaker:AddTags"],
                resources=["*"],
                conditions={"ForAnyValue:StringLike": {"aws:TagKeys": [f"{TAG_PREFIX}*"]}},
            )
        )
        registry = [
            f"{arn}:model-package-group/{self._group_prefix}-*",
            f"{arn}:model-package/{self._group_prefix}-*/*",
        ]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:ListModelPackages",
                ],
                resources=registry,
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:ListModelPackageGroups",
                    "sagemaker:ListTrainingJobs",
                    "sagemaker:ListProcessingJobs",
                    "sagemaker:ListHyperParameterTuningJobs",
                    "sagemaker:ListTransformJobs",
                    "sagemaker:ListModels",
                ],
                resources=["*"],
            )
        )
        if self.workspace.team_approves_models:
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["sagemaker:UpdateModelPackage"], resources=registry)
            )
        grant_pass_role(self.job_role, role, "sagemaker.amazonaws.com")  # never the platform's execution role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws/sagemaker/*"],
            )
        )
        self.roles[construct_id] = role
        self.owners[construct_id] = sandbox_owner
        return role

    def allow_studio(self, role: iam.Role, owner: str, domain: str) -> None:
        """What Studio asks of the user's execution role when a person works in it: read the
        domain and their own profile, create, use and delete their own private space and its apps
        (Studio tags what it creates), and list what they may open. Spaces and apps are limited to
        those the user profile owns; ``owner`` is the user, or ``${aws:SourceIdentity}`` (the
        profile name Studio sets) for a role shared by users.
        https://docs.aws.amazon.com/sagemaker/latest/dg/studio-updated-jl-admin-guide-permissions.html
        """
        stack = Stack.of(self)
        arn = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}"
        profile = f"{arn}:user-profile/{domain}/{owner}"
        spaces_and_apps = [f"{arn}:space/{domain}/*", f"{arn}:app/{domain}/*"]
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeDomain"], resources=[f"{arn}:domain/{domain}"])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeUserProfile"], resources=[profile])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateSpace",
                    "sagemaker:UpdateSpace",
                    "sagemaker:DeleteSpace",
                    "sagemaker:CreateApp",
                    "sagemaker:DeleteApp",
                ],
                resources=spaces_and_apps,
                conditions={"StringEquals": {"sagemaker:OwnerUserProfileArn": profile}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:AddTags"],
                resources=spaces_and_apps,
                conditions={"StringEquals": {"sagemaker:TaggingAction": ["CreateSpace", "CreateApp"]}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeSpace", "sagemaker:DescribeApp"], resources=spaces_and_apps)
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sagemaker:ListSpaces", "sagemaker:ListApps"], resources=["*"])
        )

    def acknowledge(self, role: iam.Role) -> None:
        stack = Stack.of(self)
        data_id = logical_id(self._data.bucket)
        owner = self.owners[role.node.id].replace("${aws:SourceIdentity}", "<aws:SourceIdentity>")
        studio, notebook = self.workspace.kind == "studio", self.workspace.kind == "notebook"
        sharing = self.workspace.sharing == "artifacts"
        artifacts_id = logical_id(self._artifacts.bucket)
        nag.acknowledge_grant_policy(role)
        nag.acknowledge_wildcards(
            role.node.find_child("DefaultPolicy"),
            {
                nag.KMS_DATA_KEY_REASON: nag.KMS_GRANT_ACTIONS,
                nag.S3_ACTIONS_REASON: nag.S3_GRANT_ACTIONS,
                "Data scientists read every dataset's raw/ and prepared/ data and write only their own "
                "sandbox/<user>/ (and shared notebook snapshots under sharing/ when sharing is on).": [
                    *[f"Resource::<{data_id}.Arn>/{prefix}*" for prefix in self._reads],
                    f"Resource::<{data_id}.Arn>/{self._sandbox_prefix}{owner}/*",
                    *([f"Resource::<{artifacts_id}.Arn>/sharing/*"] if sharing else []),
                ],
                JOB_REASON: [
                    "Resource::" + nag.nag_arn(stack, "sagemaker", "training-job/*"),
                    "Resource::" + nag.nag_arn(stack, "sagemaker", "processing-job/*"),
                    "Resource::" + nag.nag_arn(stack, "sagemaker", "hyper-parameter-tuning-job/*"),
                    "Resource::" + nag.nag_arn(stack, "sagemaker", "transform-job/*"),
                    "Resource::" + nag.nag_arn(stack, "sagemaker", "model/*"),
                    *(["Resource::" + nag.nag_arn(stack, "sagemaker", "notebook-instance/*")] if notebook else []),
                ],
                "The platform's model package groups are named <stage prefix>-<dataset>; packages are "
                "versions inside them; List actions have no resource-level permissions.": [
                    "Resource::" + nag.nag_arn(stack, "sagemaker", f"model-package-group/{self._group_prefix}-*"),
                    "Resource::" + nag.nag_arn(stack, "sagemaker", f"model-package/{self._group_prefix}-*/*"),
                    "Resource::*",
                ],
                "Studio names spaces and apps when a person opens them; the role may create, change and "
                "delete only spaces and apps its user profile owns (sagemaker:OwnerUserProfileArn), tag "
                "them only as Studio creates them, and read the others of its own domain.": [
                    "Resource::" + nag.nag_arn(stack, "sagemaker", f"{kind}/<Domain.DomainId>/*")
                    for kind in ("space", "app")
                ]
                if studio
                else [],
                "Jobs started from the workspace log to groups SageMaker creates under /aws/sagemaker/.": [
                    "Resource::" + nag.nag_arn(stack, "logs", "log-group:/aws/sagemaker/*")
                ],
            },
        )
