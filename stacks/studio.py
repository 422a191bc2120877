"""StudioStack: where data scientists work, inside the platform VPC with no path to the internet.

Per stage (``workspace.kind``): a SageMaker Studio domain in VpcOnly mode with a user profile
per configured user, or one notebook instance. Either way the data scientists' execution role
may read raw/ and prepared/, read and write their own sandbox, start training, processing and
transform jobs as the platform's execution role, and read the model registry; it cannot delete
platform data, and changes a model's approval only where ``workspace.team_approves_models``.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Fn, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct
from constructs.nag_acknowledgements import (
    KMS_DATA_KEY_REASON,
    KMS_GRANT_ACTIONS,
    S3_ACTIONS_REASON,
    S3_GRANT_ACTIONS,
    acknowledge_grant_policy,
    acknowledge_wildcards,
    nag_arn,
)
from constructs.secure_bucket import SecureBucket
from constructs.workload_security_group import WorkloadSecurityGroup

from config import StageConfig
from stacks.data import PREPARED_PREFIX, RAW_PREFIX

SANDBOX_PREFIX = "sandbox/"
IDLE_STOP_SCRIPT = Path(__file__).resolve().parent / "notebook_idle_stop.sh"
JOB_REASON = (
    "Data scientists name their own jobs; Create actions are limited to passing the platform's "
    "execution role, the only role this policy may pass."
)


class StudioStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        key: kms.IKey,
        data: SecureBucket,
        artifacts: SecureBucket,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        execution_role: iam.IRole,
        model_package_group_prefix: str,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        workspace = config.workspace
        self.config = config
        self._key, self._data, self._artifacts = key, data, artifacts
        self._execution_role, self._group_prefix = execution_role, model_package_group_prefix
        self.security_group = WorkloadSecurityGroup(
            self,
            "WorkspaceSecurityGroup",
            vpc=vpc,
            description="Data scientists workspace: its apps talk to each other; HTTPS to the endpoints",
        ).security_group
        subnet_ids = vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids
        retain = RemovalPolicy.RETAIN if not config.data.destroy_on_delete else RemovalPolicy.DESTROY

        self.roles: dict[str, iam.Role] = {}
        self._owners: dict[str, str] = {}  # role construct id -> the user it serves (or ${aws:SourceIdentity})
        if workspace.kind == "studio":
            shared = None if workspace.per_user_roles else self._role("DataScientistRole", "${aws:SourceIdentity}")
            self.domain = sagemaker.CfnDomain(
                self,
                "Domain",
                domain_name=config.stack_prefix.lower(),
                auth_mode="IAM",
                app_network_access_type="VpcOnly",
                vpc_id=vpc.vpc_id,
                subnet_ids=subnet_ids,
                kms_key_id=key.key_arn,
                # Studio sets the user profile name as the source identity of every call, which
                # the shared role's sandbox grant uses to keep users apart.
                domain_settings=sagemaker.CfnDomain.DomainSettingsProperty(
                    execution_role_identity_config="USER_PROFILE_NAME",
                    security_group_ids=[self.security_group.security_group_id],
                ),
                default_user_settings=sagemaker.CfnDomain.UserSettingsProperty(
                    execution_role=(shared or self._role("DefaultRole", "${aws:SourceIdentity}")).role_arn,
                    security_groups=[self.security_group.security_group_id],
                    sharing_settings=self._sharing(),
                    jupyter_lab_app_settings=sagemaker.CfnDomain.JupyterLabAppSettingsProperty(
                        app_lifecycle_management=sagemaker.CfnDomain.AppLifecycleManagementProperty(
                            idle_settings=sagemaker.CfnDomain.IdleSettingsProperty(
                                lifecycle_management="ENABLED",
                                idle_timeout_in_minutes=workspace.idle_minutes,
                                min_idle_timeout_in_minutes=min(60, workspace.idle_minutes),
                                max_idle_timeout_in_minutes=max(workspace.idle_minutes, 60),
                            )
                        )
                    ),
                ),
            )
            self.domain.apply_removal_policy(retain)
            self.user_profiles = {}
            for user in workspace.users:
                role = shared or self._role(f"Role-{user}", user)
                self.user_profiles[user] = sagemaker.CfnUserProfile(
                    self,
                    f"User-{user}",
                    domain_id=self.domain.attr_domain_id,
                    user_profile_name=user,
                    user_settings=sagemaker.CfnUserProfile.UserSettingsProperty(
                        execution_role=role.role_arn, security_groups=[self.security_group.security_group_id]
                    ),
                )
            for construct_id, role in self.roles.items():
                self._allow_studio(role, self._owners[construct_id])
        elif workspace.kind == "notebook":
            role = self._role("NotebookRole", "notebook")
            lifecycle = sagemaker.CfnNotebookInstanceLifecycleConfig(
                self,
                "IdleStop",
                on_start=[
                    sagemaker.CfnNotebookInstanceLifecycleConfig.NotebookInstanceLifecycleHookProperty(
                        content=Fn.base64(
                            IDLE_STOP_SCRIPT.read_text(encoding="utf-8").replace(
                                "__IDLE_MINUTES__", str(workspace.idle_minutes)
                            )
                        )
                    )
                ],
            )
            self.notebook = sagemaker.CfnNotebookInstance(
                self,
                "Notebook",
                instance_type=workspace.notebook_instance_type,
                role_arn=role.role_arn,
                subnet_id=subnet_ids[0],
                security_group_ids=[self.security_group.security_group_id],
                direct_internet_access="Disabled",
                root_access="Disabled",
                kms_key_id=key.key_id,
                volume_size_in_gb=workspace.notebook_volume_gb,
                lifecycle_config_name=lifecycle.attr_notebook_instance_lifecycle_config_name,
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["sagemaker:StopNotebookInstance", "sagemaker:DescribeNotebookInstance"],
                    resources=[f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:notebook-instance/*"],
                    conditions={"StringEquals": {"aws:ResourceTag/ml-platform:workspace": "notebook"}},
                )
            )
            self.notebook.tags.set_tag("ml-platform:workspace", "notebook")
        for role in self.roles.values():
            self._acknowledge(role)

    def _sharing(self) -> sagemaker.CfnDomain.SharingSettingsProperty:
        if self.config.workspace.sharing == "off":
            return sagemaker.CfnDomain.SharingSettingsProperty(notebook_output_option="Disabled")
        return sagemaker.CfnDomain.SharingSettingsProperty(
            notebook_output_option="Allowed",
            s3_output_path=f"s3://{self._artifacts.bucket.bucket_name}/sharing/",
            s3_kms_key_id=self._key.key_arn,
        )

    def _role(self, construct_id: str, sandbox_owner: str) -> iam.Role:
        """A data scientists' execution role; ``sandbox_owner`` names the sandbox (a user, or
        ``${aws:SourceIdentity}`` for a role shared by users told apart by Studio)."""
        role = iam.Role(
            self,
            construct_id,
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Data scientists of the ML platform: read data, own sandbox, start jobs",
        )
        data, artifacts = self._data, self._artifacts
        data.grant_read(role, f"{RAW_PREFIX}*")
        data.grant_read(role, f"{PREPARED_PREFIX}*")
        sandbox = f"{SANDBOX_PREFIX}{sandbox_owner}/*"
        data.grant_read_write(role, sandbox)  # their own sandbox: read, write and delete
        if self.config.workspace.sharing == "artifacts":
            artifacts.grant_read_write(role, "sharing/*")
        self._key.grant(role, "kms:Decrypt", "kms:GenerateDataKey*")  # S3 objects under the platform key
        arn = f"arn:{self.partition}:sagemaker:{self.region}:{self.account}"
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
        if self.config.workspace.team_approves_models:
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["sagemaker:UpdateModelPackage"], resources=registry)
            )
        self._execution_role.grant_pass_role(role)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:/aws/sagemaker/*"],
            )
        )
        self.roles[construct_id] = role
        self._owners[construct_id] = sandbox_owner
        return role

    def _allow_studio(self, role: iam.Role, owner: str) -> None:
        """What Studio asks of the user's execution role when a person works in it: read the
        domain and their own profile, create, use and delete their own private space and its apps
        (Studio tags what it creates), and list what they may open. Spaces and apps are limited to
        those the user profile owns; ``owner`` is the user, or ``${aws:SourceIdentity}`` (the
        profile name Studio sets) for a role shared by users.
        https://docs.aws.amazon.com/sagemaker/latest/dg/studio-updated-jl-admin-guide-permissions.html
        """
        arn = f"arn:{self.partition}:sagemaker:{self.region}:{self.account}"
        domain = self.domain.attr_domain_id
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

    def _acknowledge(self, role: iam.Role) -> None:
        data_id = self.get_logical_id(self._data.bucket.node.default_child)
        domain_id = self.get_logical_id(self.domain) if self.config.workspace.kind == "studio" else "Domain"
        artifacts_id = self.get_logical_id(self._artifacts.bucket.node.default_child)
        acknowledge_grant_policy(role)
        acknowledge_wildcards(
            role.node.find_child("DefaultPolicy"),
            {
                KMS_DATA_KEY_REASON: KMS_GRANT_ACTIONS,
                S3_ACTIONS_REASON: [
                    *S3_GRANT_ACTIONS,
                ],
                "Data scientists read every dataset's raw/ and prepared/ data and write only their own "
                "sandbox/<user>/ (and shared notebook snapshots under sharing/ when sharing is on).": [
                    f"Resource::<{data_id}.Arn>/{RAW_PREFIX}*",
                    f"Resource::<{data_id}.Arn>/{PREPARED_PREFIX}*",
                    *[
                        f"Resource::<{data_id}.Arn>/{SANDBOX_PREFIX}{owner}/*"
                        for owner in ("<aws:SourceIdentity>", *self.config.workspace.users, "notebook")
                    ],
                    f"Resource::<{artifacts_id}.Arn>/sharing/*",
                ],
                JOB_REASON: [
                    "Resource::" + nag_arn(self, "sagemaker", "training-job/*"),
                    "Resource::" + nag_arn(self, "sagemaker", "processing-job/*"),
                    "Resource::" + nag_arn(self, "sagemaker", "transform-job/*"),
                    "Resource::" + nag_arn(self, "sagemaker", "notebook-instance/*"),
                ],
                "The platform's model package groups are named <stage prefix>-<dataset>; packages are "
                "versions inside them; List actions have no resource-level permissions.": [
                    "Resource::" + nag_arn(self, "sagemaker", f"model-package-group/{self._group_prefix}-*"),
                    "Resource::" + nag_arn(self, "sagemaker", f"model-package/{self._group_prefix}-*/*"),
                    "Resource::*",
                ],
                "Studio names spaces and apps when a person opens them; the role may create, change and "
                "delete only spaces and apps its user profile owns (sagemaker:OwnerUserProfileArn), tag "
                "them only as Studio creates them, and read the others of its own domain.": [
                    "Resource::" + nag_arn(self, "sagemaker", f"space/<{domain_id}.DomainId>/*"),
                    "Resource::" + nag_arn(self, "sagemaker", f"app/<{domain_id}.DomainId>/*"),
                ],
                "Jobs started from the workspace log to groups SageMaker creates under /aws/sagemaker/.": [
                    "Resource::" + nag_arn(self, "logs", "log-group:/aws/sagemaker/*")
                ],
            },
        )
