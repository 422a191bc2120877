"""DataScientistRoles: the execution roles data scientists work as, in Studio or a notebook.

A role may read raw/ and prepared/, read and write its own sandbox (sandbox/<user>/, or
sandbox/${aws:SourceIdentity}/ for a role shared by users Studio tells apart), start training,
processing and transform jobs as the platform's execution role, and read the model registry; it
cannot delete platform data, and changes a model's approval only where the stage lets the team
approve. In Studio each role may also open its own user profile's spaces and apps.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct
from constructs import nag_acknowledgements as nag
from constructs.logical_ids import logical_id
from constructs.pass_role import grant_pass_role
from constructs.secure_bucket import SecureBucket

from config import WorkspaceConfig
from etl.platform_runtime import TAG_PREFIX

JOB_REASON = (
    "Data scientists name their own jobs; Create actions are limited to passing the platform's "
    "execution role, the only role this policy may pass."
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
        execution_role: iam.IRole,
        group_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self._reads, self._sandbox_prefix = reads, sandbox_prefix
        self.workspace = workspace
        self._key, self._data, self._artifacts = key, data, artifacts
        self._execution_role, self._group_prefix = execution_role, group_prefix
        self.roles: dict[str, iam.Role] = {}
        self.owners: dict[str, str] = {}  # role construct id -> the user it serves (or ${aws:SourceIdentity})

    def role(self, construct_id: str, sandbox_owner: str) -> iam.Role:
        """A data scientists' execution role; ``sandbox_owner`` names the sandbox (a user, or
        ``${aws:SourceIdentity}`` for a role shared by users told apart by Studio)."""
        stack = Stack.of(self)
        role = iam.Role(
            self,
            construct_id,
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Data scientists of the ML platform: read data, own sandbox, start jobs",
        )
        data, artifacts = self._data, self._artifacts
        for prefix in self._reads:
            data.grant_read(role, f"{prefix}*")
        sandbox = f"{self._sandbox_prefix}{sandbox_owner}/*"
        data.grant_read_write(role, sandbox)  # their own sandbox: read, write and delete
        if self.workspace.sharing == "artifacts":
            artifacts.grant_read_write(role, "sharing/*")
        self._key.grant(role, "kms:Decrypt", "kms:GenerateDataKey*")  # S3 objects under the platform key
        arn = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}"
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:CreateTransformJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:DescribeTransformJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:StopTransformJob",
                    "sagemaker:AddTags",
                ],
                resources=[f"{arn}:training-job/*", f"{arn}:processing-job/*", f"{arn}:transform-job/*"],
            )
        )
        # The platform's tag keys mark the jobs register_model trusts (start_training's): no job a
        # data scientist starts or tags may carry one.
        # https://docs.aws.amazon.com/sagemaker/latest/dg/security_iam_id-based-policy-examples.html
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="NoPlatformTagKeys",
                effect=iam.Effect.DENY,
                actions=[
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:CreateHyperParameterTuningJob",
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:CreateTransformJob",
                    "sagemaker:CreateModel",
                    "sagemaker:AddTags",
                ],
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
                    "sagemaker:ListTransformJobs",
                ],
                resources=["*"],
            )
        )
        if self.workspace.team_approves_models:
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["sagemaker:UpdateModelPackage"], resources=registry)
            )
        grant_pass_role(self._execution_role, role, "sagemaker.amazonaws.com")
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
                    "Resource::" + nag.nag_arn(stack, "sagemaker", "transform-job/*"),
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
