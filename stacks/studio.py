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
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct, sdk_defaults
from constructs.data_scientist_roles import DataScientistRoles
from constructs.workload_security_group import WorkloadSecurityGroup

from etl.platform_runtime import WORKSPACE_TAG
from stacks.data import PREPARED_PREFIX, RAW_PREFIX
from stacks.foundation import Foundation

SANDBOX_PREFIX = "sandbox/"
IDLE_STOP_SCRIPT = Path(__file__).resolve().parent / "notebook_idle_stop.sh"


class StudioStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: Foundation,
        jobs_security_group: ec2.ISecurityGroup,
        model_package_group_prefix: str,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        config, key, data, artifacts = foundation.config, foundation.key, foundation.data, foundation.artifacts
        workspace = config.workspace
        self.config = config
        self._key, self._artifacts = key, artifacts
        self.security_group = WorkloadSecurityGroup(
            self,
            "WorkspaceSecurityGroup",
            vpc=foundation.vpc,
            description="Data scientists workspace: its apps talk to each other; HTTPS to the endpoints",
        ).security_group
        subnet_ids = foundation.subnet_ids
        self._foundation, self._jobs_security_group = foundation, jobs_security_group
        retain = RemovalPolicy.RETAIN if config.retains_data else RemovalPolicy.DESTROY

        # "Default": the roles keep the logical ids they had when this stack built them itself
        # (https://docs.aws.amazon.com/cdk/v2/guide/identifiers.html#identifiers-logical-ids).
        self.people = DataScientistRoles(
            self,
            "Default",
            workspace=workspace,
            key=key,
            data=data,
            reads=(RAW_PREFIX, PREPARED_PREFIX),
            sandbox_prefix=SANDBOX_PREFIX,
            artifacts=artifacts,
            subnet_ids=foundation.subnet_ids,
            security_group=jobs_security_group,
            group_prefix=model_package_group_prefix,
        )
        self.roles = self.people.roles
        if workspace.kind == "studio":
            shared = (
                None if workspace.per_user_roles else self.people.role("DataScientistRole", "${aws:SourceIdentity}")
            )
            self.domain = sagemaker.CfnDomain(
                self,
                "Domain",
                domain_name=config.stack_prefix.lower(),
                auth_mode="IAM",
                app_network_access_type="VpcOnly",
                vpc_id=foundation.vpc.vpc_id,
                subnet_ids=subnet_ids,
                kms_key_id=key.key_arn,
                # Studio sets the user profile name as the source identity of every call, which
                # the shared role's sandbox grant uses to keep users apart.
                domain_settings=sagemaker.CfnDomain.DomainSettingsProperty(
                    execution_role_identity_config="USER_PROFILE_NAME",
                    security_group_ids=[self.security_group.security_group_id],
                ),
                default_user_settings=sagemaker.CfnDomain.UserSettingsProperty(
                    execution_role=(shared or self.people.role("DefaultRole", "${aws:SourceIdentity}")).role_arn,
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
                role = shared or self.people.role(f"Role-{user}", user)
                defaults = sagemaker.CfnStudioLifecycleConfig(
                    self,
                    f"SdkDefaults-{user}",
                    studio_lifecycle_config_app_type="JupyterLab",
                    studio_lifecycle_config_name=f"{config.stack_prefix.lower()}-sdk-defaults-{user}",
                    studio_lifecycle_config_content=Fn.base64(sdk_defaults.studio_script(self._sdk_defaults(user))),
                )
                # The user's JupyterLab apps run the SDK defaults' script at each start (the idle
                # shutdown stays the domain's: a profile's JupyterLab settings do not hold one).
                self.user_profiles[user] = sagemaker.CfnUserProfile(
                    self,
                    f"User-{user}",
                    domain_id=self.domain.attr_domain_id,
                    user_profile_name=user,
                    user_settings=sagemaker.CfnUserProfile.UserSettingsProperty(
                        execution_role=role.role_arn,
                        security_groups=[self.security_group.security_group_id],
                        jupyter_lab_app_settings=sagemaker.CfnUserProfile.JupyterLabAppSettingsProperty(
                            default_resource_spec=sagemaker.CfnUserProfile.ResourceSpecProperty(
                                lifecycle_config_arn=defaults.attr_studio_lifecycle_config_arn
                            ),
                            lifecycle_config_arns=[defaults.attr_studio_lifecycle_config_arn],
                        ),
                    ),
                )
            for construct_id, role in self.roles.items():
                self.people.allow_studio(role, self.people.owners[construct_id], self.domain.attr_domain_id)
        elif workspace.kind == "notebook":
            role = self.people.role("NotebookRole", "notebook")
            lifecycle = sagemaker.CfnNotebookInstanceLifecycleConfig(
                self,
                "IdleStop",
                on_start=[
                    sagemaker.CfnNotebookInstanceLifecycleConfig.NotebookInstanceLifecycleHookProperty(
                        content=Fn.base64(
                            IDLE_STOP_SCRIPT.read_text(encoding="utf-8").replace(
                                "__IDLE_MINUTES__", str(workspace.idle_minutes)
                            )
                            + sdk_defaults.notebook_script(self._sdk_defaults("notebook"))
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
                    conditions={"StringEquals": {f"aws:ResourceTag/{WORKSPACE_TAG}": "notebook"}},
                )
            )
            self.notebook.tags.set_tag(WORKSPACE_TAG, "notebook")
        for role in self.roles.values():
            self.people.acknowledge(role)

    def _sdk_defaults(self, owner: str) -> str:
        """The SDK's defaults for ``owner``'s jobs, as JSON (YAML's superset), resolved at deploy."""
        document = sdk_defaults.document(
            role_arn=self.people.job_role.role_arn,
            subnets=self._foundation.subnet_ids,
            security_group_ids=[self._jobs_security_group.security_group_id],
            key_arn=self._key.key_arn,
            bucket=self._foundation.data.bucket.bucket_name,
            sandbox=f"{SANDBOX_PREFIX}{owner}/",
            owner=owner,
        )
        return self.to_json_string(document, 2)

    def _sharing(self) -> sagemaker.CfnDomain.SharingSettingsProperty:
        if self.config.workspace.sharing == "off":
            return sagemaker.CfnDomain.SharingSettingsProperty(notebook_output_option="Disabled")
        return sagemaker.CfnDomain.SharingSettingsProperty(
            notebook_output_option="Allowed",
            s3_output_path=f"s3://{self._artifacts.bucket.bucket_name}/sharing/",
            s3_kms_key_id=self._key.key_arn,
        )
