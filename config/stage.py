"""Stage configuration: one TOML file per stage, validated once, passed down as frozen objects.

A stage is picked with ``cdk synth -c stage=NAME`` (``dev`` by default). Its file is
``config/stages/NAME.toml``; ``-c account=`` and ``-c region=`` override the file's values.
Every problem is reported as one :class:`ConfigError` whose message names the key, the bad
value and what is allowed, so a wrong value fails synth before any construct is created.

This module imports no aws-cdk-lib: the configuration can be validated (and tested) on its own.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

STAGES_DIR = Path(__file__).resolve().parent / "stages"
DEFAULT_STAGE = "dev"

# Short names of the interface endpoints a stage may ask for (AWS's own service suffixes).
# stacks/network.py maps each to its CDK service; a test keeps the two lists equal.
EndpointService = Literal[
    "sagemaker.api",
    "sagemaker.runtime",
    "sagemaker.studio",
    "sagemaker.notebook",
    "sts",
    "logs",
    "monitoring",
    "ecr.api",
    "ecr.dkr",
    "glue",
    "kms",
    "events",
    "cloudformation",
    "sns",
    "sqs",
]
INTERFACE_ENDPOINT_SERVICES: tuple[EndpointService, ...] = get_args(EndpointService)

# The retention periods CloudWatch Logs accepts (PutRetentionPolicy).
RetentionDays = Literal[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
]  # fmt: skip

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")


class ConfigError(Exception):
    """A stage configuration that cannot be synthesized. The message says what to change."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkConfig(_Section):
    cidr: str = "10.40.0.0/16"
    # Empty: environment-agnostic, the first two zones of whatever region the stack lands in.
    # With an account and region the zones must be named here, so synth needs no look-up.
    availability_zones: tuple[str, ...] = ()
    # What the platform, a hosting stack and a Studio workspace call from inside the VPC.
    interface_endpoints: tuple[EndpointService, ...] = (
        "sagemaker.api", "sagemaker.runtime", "sts", "logs", "glue", "cloudformation", "sns",
    )  # fmt: skip
    flow_log_retention_days: RetentionDays = 365

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            network = ipaddress.IPv4Network(value)
        except ValueError as exc:
            raise ValueError(f"not an IPv4 CIDR block ({exc})") from None
        if not network.is_private or not 16 <= network.prefixlen <= 24:
            raise ValueError("a private IPv4 block (RFC 1918) from /16 to /24 is allowed")
        return value

    @field_validator("interface_endpoints")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"each endpoint may be listed once; repeated: {', '.join(repeated)}")
        return value


class DataConfig(_Section):
    # Accounts covered by an organisation trail turn this off to avoid paying twice.
    cloudtrail_data_events: bool = True
    # Also deliver the trail to a CloudWatch Logs group (searchable at once, billed per GB ingested);
    # without it the trail's record is its validated, encrypted delivery to the access-log bucket.
    trail_to_cloudwatch_logs: bool = True
    trail_log_retention_days: RetentionDays = 365
    noncurrent_version_expiration_days: int = Field(default=90, ge=1, le=3650)
    abort_incomplete_multipart_upload_days: int = Field(default=7, ge=1, le=365)
    # How long the endpoints' captured requests and answers (capture/, personal data) and the
    # buckets' access logs are kept; then they expire (and go after noncurrent_version_expiration_days).
    capture_expiration_days: int = Field(default=30, ge=1, le=3650)
    access_log_expiration_days: int = Field(default=365, ge=1, le=3650)
    # True lets `cdk destroy` empty and delete buckets and schedule key deletion (dev only).
    destroy_on_delete: bool = False


class EtlConfig(_Section):
    # Glue 5 worker types (G.025X is for streaming jobs only).
    worker_type: Literal["G.1X", "G.2X", "G.4X", "G.8X"] = "G.1X"
    number_of_workers: int = Field(default=2, ge=2, le=299)
    timeout_minutes: int = Field(default=60, ge=1, le=2880)
    max_concurrent_runs: int = Field(default=4, ge=1, le=1000)
    # When the crawler refreshes the catalogue of raw/ and prepared/ (a Glue cron expression).
    crawler_schedule: str = "cron(0 3 * * ? *)"
    seed: int = Field(default=42, ge=0)

    @field_validator("crawler_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        fields = value.removeprefix("cron(").removesuffix(")").split()
        if not (value.startswith("cron(") and value.endswith(")") and len(fields) == 6):
            raise ValueError("a Glue schedule: cron(minutes hours day-of-month month day-of-week year)")
        return value


class TrainingConfig(_Section):
    """How the stage runs SageMaker jobs (the datasets' specs say what to train)."""

    # Managed spot training: cheaper, may wait for capacity (up to max_wait_minutes).
    managed_spot: bool = False
    max_wait_minutes: int = Field(default=120, ge=1, le=2880)
    volume_size_gb: int = Field(default=30, ge=1, le=16384)
    batch_instance_type: str = Field(default="ml.m5.large", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    batch_instance_count: int = Field(default=1, ge=1, le=100)
    # SageMaker Debugger's profiler and its ProfilerReport rule on every training job (a tuning
    # job's API takes neither): the report lands beside the model. The rule runs as a processing
    # job of its own, billed per run.
    profiler: bool = False


class HostingConfig(_Section):
    """The real-time endpoints: one per served dataset."""

    datasets: tuple[str, ...] = ()
    instance_type: str = Field(default="ml.m5.large", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    # At least 2 in production, so that SageMaker spreads the instances over the zones.
    instance_count: int = Field(default=1, ge=1, le=100)
    min_capacity: int = Field(default=1, ge=1, le=100)
    max_capacity: int = Field(default=2, ge=1, le=100)
    target_invocations_per_instance: int = Field(default=200, ge=1)
    # False: no scalable target (the variant keeps instance_count). Needed for one deploy while
    # instance_type changes: SageMaker refuses that change for a scalable target (see the README).
    autoscaling: bool = True
    capture_sampling_percentage: int = Field(default=20, ge=0, le=100)
    # Blue/green rollouts. canary_instances of the new fleet take traffic first, for
    # canary_wait_minutes, watched by the rollback alarms; then the rest. SageMaker takes a canary
    # of at most half the variant's instances, so it must fit the smallest fleet autoscaling may
    # leave (min_capacity). 0: all the traffic shifts at once, then the same wait with the alarms
    # watching (a single instance can have no canary).
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html
    canary_instances: int = Field(default=0, ge=0, le=50)
    canary_wait_minutes: int = Field(default=10, ge=1, le=60)
    # True: a model that passes the gate waits in the registry for a person to approve it.
    manual_approval: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> HostingConfig:
        if not self.min_capacity <= self.instance_count <= self.max_capacity:
            raise ValueError(
                f"min_capacity {self.min_capacity} <= instance_count {self.instance_count} <= "
                f"max_capacity {self.max_capacity}"
            )
        if self.canary_instances > self.min_capacity // 2:
            raise ValueError(
                f"canary_instances {self.canary_instances} is more than half of min_capacity {self.min_capacity} "
                "(SageMaker takes a canary of at most half the variant's instances); use 0 (all at once) or "
                f"at most {self.min_capacity // 2}"
            )
        return self


# The interface endpoints each kind of workspace cannot work without (VpcOnly: no other path).
# Studio's own endpoint (sagemaker.studio) serves browsers inside a VPC; people reach Studio
# through the console's presigned URL, so no caller inside this VPC needs it.
WORKSPACE_ENDPOINTS = {
    "studio": ("sagemaker.api", "sagemaker.runtime", "sts", "logs"),
    "notebook": ("sagemaker.api", "sagemaker.runtime", "sts", "logs"),
    "none": (),
}
# What the platform's functions in the VPC call (the twin records it: tests/test_local_platform.py).
PLATFORM_ENDPOINTS: tuple[EndpointService, ...] = ("sagemaker.api", "glue", "sns")
HOSTING_ENDPOINTS: tuple[EndpointService, ...] = ("cloudformation",)  # deploy_model's UpdateStack


def _matching(pattern: str, what: str) -> AfterValidator:
    """A check that a text matches ``pattern``; the error says what the text should be."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(what)
        return value

    return AfterValidator(check)


UserProfileName = Annotated[
    str, _matching(r"^[a-z][a-z0-9-]{0,30}$", "a user profile name (lower-case letters, digits, '-'; 1-31)")
]
EmailAddress = Annotated[str, _matching(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "an e-mail address (name@example.org)")]
AccountId = Annotated[str, _matching(r"^\d{12}$", "an AWS account id: exactly 12 digits")]
RegionCode = Annotated[
    str, _matching(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$", "an AWS region code such as eu-west-1 or us-east-2")
]


class WorkspaceConfig(_Section):
    """Where data scientists work: a Studio domain, one notebook instance, or neither."""

    kind: Literal["studio", "notebook", "none"] = "studio"
    users: tuple[UserProfileName, ...] = ()
    # True: each user gets an execution role of their own; False: one shared role, each user's
    # sandbox told apart by the user profile name (Studio's source identity).
    per_user_roles: bool = False
    # Studio notebook sharing: "off", or snapshots to the artifacts bucket under the platform key.
    sharing: Literal["off", "artifacts"] = "off"
    # Apps idle this long shut down: Studio's idle shutdown takes 60 to 525,600 minutes.
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_IdleSettings.html
    idle_minutes: int = Field(default=60, ge=60, le=525_600)
    notebook_instance_type: str = Field(default="ml.t3.medium", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    notebook_volume_gb: int = Field(default=20, ge=5, le=16384)
    # True: the team may approve or reject models in the registry from the workspace.
    team_approves_models: bool = False

    @field_validator("users")
    @classmethod
    def _users(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("each user once")
        return value


class FunctionsConfig(_Section):
    """Settings shared by the platform's Lambda functions."""

    log_retention_days: RetentionDays = 365
    # Executions reserved for each function (0: none, the default). Reserving keeps a burst of
    # uploads from starving the account and the account's burst from starving the platform, but
    # Lambda keeps 100 of the account's concurrency unreserved, and a new account's quota may be
    # as low as 10: there, any reservation fails the deploy (see the README).
    # https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
    reserved_concurrency: int = Field(default=0, ge=0, le=1000)
    # Retries of an asynchronous invocation (and of EventBridge's delivery) before the DLQ.
    retry_attempts: int = Field(default=2, ge=0, le=2)
    # The application log level Lambda applies to the handlers' logging (JSON log format).
    log_level: Literal["DEBUG", "INFO", "WARN", "ERROR"] = "INFO"


class NotificationsConfig(_Section):
    emails: tuple[EmailAddress, ...] = ()


# The schedules Model Monitor takes: hourly, every N hours from an hour, or daily at an hour.
# https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-schedule-expression.html
MONITORING_SCHEDULE = re.compile(r"^cron\(0 (\*|(\d|1\d|2[0-3])(/([1-9]|1\d|2[0-4]))?) \? \* \* \*\)$")


class MonitoringConfig(_Section):
    """What the operators watch beyond the alarms: the served models' data, and the stage's budget."""

    # Model Monitor compares each served dataset's captured requests with its live model's
    # baseline on this schedule, on a processing instance of this type (hosting.capture_sampling_percentage
    # must be above 0: the schedule reads what the endpoint captures).
    data_quality: bool = True
    schedule: str = "cron(0 * ? * * *)"
    instance_type: str = Field(default="ml.m5.xlarge", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    volume_size_gb: int = Field(default=20, ge=1, le=16384)
    # A monitoring run stops after this long (at most an hour: runs of an hourly schedule must not overlap).
    max_runtime_minutes: int = Field(default=30, ge=1, le=60)
    # Where someone uploads what really happened (ground-truth/<dataset>/yyyy/mm/dd/hh/, see the
    # README), Model Monitor also joins each captured prediction with its label on the same schedule
    # and the live model's objective metric is alarmed below the spec's training.minimum. Labels
    # arrive late: each run reads the predictions of one schedule period that ended this many hours
    # before it (its StartTimeOffset and EndTimeOffset).
    # https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-schedule.html
    model_quality: bool = False
    ground_truth_delay_hours: int = Field(default=24, ge=1, le=24 * 30)
    # Drift with new labelled data under raw/<dataset>/ starts a preparation run (check_drift), at
    # most one per dataset in this many hours (0: no limit but the claim of each snapshot's run).
    retrain_min_hours: int = Field(default=24, ge=0, le=24 * 90)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        if not MONITORING_SCHEDULE.match(value):
            raise ValueError(
                "a Model Monitor schedule: hourly 'cron(0 * ? * * *)', every N hours 'cron(0 H/N ? * * *)' "
                "or daily 'cron(0 H ? * * *)'"
            )
        return value

    @property
    def period_hours(self) -> int:
        """The hours between two runs of the schedule: 1, N or 24."""
        hours = MONITORING_SCHEDULE.match(self.schedule).group(1)  # type: ignore[union-attr]
        return 1 if hours == "*" else int(hours.partition("/")[2] or 24)

    @model_validator(mode="after")
    def _model_quality_runtime(self) -> MonitoringConfig:
        # A model-quality run is a merge job and an analysis sharing the run's time: an hourly
        # schedule's MaxRuntimeInSeconds may not pass 1800 (the page above).
        if self.model_quality and self.period_hours == 1 and self.max_runtime_minutes > 30:
            raise ValueError(
                "max_runtime_minutes must be 30 or less with model_quality on an hourly schedule "
                f"(Model Monitor's limit), not {self.max_runtime_minutes}"
            )
        return self

    # The stage's monthly cost budget (AWS Budgets, USD), counting what carries the stage tag. Budgets
    # sees a tag only once it is an active cost allocation tag (Billing console; see the README).
    monthly_budget_usd: int = Field(default=100, ge=1, le=10_000_000)
    # The operators' topic hears when the month's actual cost passes each of these percentages of
    # the budget, and when the forecast for the month passes forecast_percentage.
    actual_percentages: tuple[Annotated[int, Field(ge=1, le=1000)], ...] = (80, 100)
    forecast_percentage: int = Field(default=100, ge=1, le=1000)

    @field_validator("actual_percentages")
    @classmethod
    def _percentages(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        # A budget takes ten notifications at most, the forecast's among them.
        # https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_Notification.html
        if not 1 <= len(value) <= 9 or len(set(value)) != len(value):
            raise ValueError("1 to 9 different percentages (a budget has at most 10 notifications)")
        return tuple(sorted(value))


class StageConfig(_Section):
    name: str
    # A production stage must name its account, region and zones and always keeps its data.
    production: bool = False
    account: AccountId | None = None
    region: RegionCode | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    network: NetworkConfig = NetworkConfig()
    data: DataConfig = DataConfig()
    etl: EtlConfig = EtlConfig()
    training: TrainingConfig = TrainingConfig()
    hosting: HostingConfig = HostingConfig()
    workspace: WorkspaceConfig = WorkspaceConfig()
    functions: FunctionsConfig = FunctionsConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    monitoring: MonitoringConfig = MonitoringConfig()

    @model_validator(mode="after")
    def _consistent(self) -> StageConfig:
        zones = self.network.availability_zones
        if self.production:
            if self.account is None or self.region is None:
                _fail(
                    self.name,
                    "account" if self.account is None else "region",
                    None,
                    "a production stage deploys to a named account and region: set both in its "
                    "file, or pass -c account=<12 digits> -c region=<code> to synth",
                )
            if self.data.destroy_on_delete:
                _fail(self.name, "data.destroy_on_delete", True, "false (a production stage always retains its data)")
            if self.hosting.datasets and min(self.hosting.instance_count, self.hosting.min_capacity) < 2:
                _fail(
                    self.name,
                    "hosting.instance_count/min_capacity",
                    [self.hosting.instance_count, self.hosting.min_capacity],
                    "2 or more in a production stage (instances spread over availability zones)",
                )
        callers = (
            (
                WORKSPACE_ENDPOINTS[self.workspace.kind],
                f"a {self.workspace.kind} workspace",
                "needs",
                " (or set workspace.kind)",
            ),
            (
                (*PLATFORM_ENDPOINTS, *(HOSTING_ENDPOINTS if self.hosting.datasets else ())),
                "the platform's functions",
                "call",
                "",
            ),
        )
        for needed, who, verb, otherwise in callers:
            missing = [name for name in needed if name not in self.network.interface_endpoints]
            if missing:
                _fail(
                    self.name,
                    "network.interface_endpoints",
                    list(self.network.interface_endpoints),
                    f"{who} in a VPC without internet {verb} {', '.join(needed)}; add {', '.join(missing)}{otherwise}",
                )
        if self.monitoring.data_quality and self.hosting.datasets and self.hosting.capture_sampling_percentage == 0:
            _fail(
                self.name,
                "monitoring.data_quality",
                True,
                "false while hosting.capture_sampling_percentage is 0 (Model Monitor reads what the endpoint captures)",
            )
        if self.monitoring.model_quality and self.hosting.datasets and self.hosting.capture_sampling_percentage == 0:
            _fail(
                self.name,
                "monitoring.model_quality",
                True,
                "false while hosting.capture_sampling_percentage is 0 (Model Monitor joins the captured "
                "predictions with their labels)",
            )
        if (self.account is None) != (self.region is None):
            absent = "region" if self.region is None else "account"
            _fail(self.name, absent, None, "account and region are set together, or neither")
        if self.region is not None:
            if len(zones) < 2:
                _fail(
                    self.name,
                    "network.availability_zones",
                    list(zones),
                    f"2 or more zones of {self.region} (e.g. {self.region}a, {self.region}b), "
                    "named so that synth needs no look-up",
                )
            wrong = [zone for zone in zones if not re.fullmatch(re.escape(self.region) + r"[a-z]", zone)]
            if wrong:
                _fail(self.name, "network.availability_zones", wrong, f"zones of {self.region}, such as {self.region}a")
        elif zones:
            _fail(self.name, "network.availability_zones", list(zones), "[] when no account and region are set")
        if len(set(zones)) != len(zones):
            _fail(self.name, "network.availability_zones", list(zones), "each zone once")
        return self

    @property
    def environment_agnostic(self) -> bool:
        return self.account is None

    @property
    def stack_prefix(self) -> str:
        return f"MlPlatform-{self.name}"

    @property
    def resource_prefix(self) -> str:
        """The prefix of the names the platform gives its resources (endpoints, model package
        groups, the Studio domain): the stack prefix in lower case."""
        return self.stack_prefix.lower()

    @property
    def retains_data(self) -> bool:
        """Whether the stage keeps what holds data (buckets, key, logs, registry, Studio domain)
        when its stacks are deleted; always in production."""
        return not self.data.destroy_on_delete


def _fail(stage: str, key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"stage {stage!r}: {key} = {value!r} is not allowed; allowed: {allowed}")


def available_stages() -> list[str]:
    return sorted(path.stem for path in STAGES_DIR.glob("*.toml"))


def load_stage(context: Mapping[str, Any] | None = None) -> StageConfig:
    """Load and validate the stage named by ``context["stage"]`` (default ``dev``).

    ``context["account"]`` and ``context["region"]``, when given, override the file's values.
    """
    context = dict(context or {})
    name = str(context.get("stage") or DEFAULT_STAGE)
    stages = available_stages()
    if not _STAGE_NAME.match(name) or name not in stages:
        allowed = ", ".join(stages)
        raise ConfigError(f"stage = {name!r} is not a known stage; allowed: {allowed} (files in {STAGES_DIR})")
    path = STAGES_DIR / f"{name}.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"stage {name!r}: {path.name} is not valid TOML: {exc}") from None
    if "name" in raw:
        raise ConfigError(f"stage {name!r}: name = {raw['name']!r} is not allowed; the file name is the stage name")
    for key in ("account", "region"):
        if context.get(key) not in (None, ""):
            raw[key] = str(context[key])
    return parse_stage(name, raw)


def parse_stage(name: str, raw: Mapping[str, Any]) -> StageConfig:
    """Validate one stage's settings (the parsed TOML) into a :class:`StageConfig`."""
    try:
        return StageConfig.model_validate({**raw, "name": name})
    except ValidationError as exc:
        raise ConfigError(_describe(name, exc)) from None


def _describe(stage: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        key = ".".join(str(part) for part in error["loc"])
        value = error.get("input")
        if error["type"] == "extra_forbidden":
            allowed = "one of the known keys: " + ", ".join(_known_keys(error["loc"][:-1]))
            problems.append(f"{key} = {value!r} is not allowed; it is not a known key; allowed: {allowed}")
            continue
        if error["type"] == "missing":
            problems.append(f"{key} is missing; it is required")
            continue
        message = error["msg"].removeprefix("Value error, ").removeprefix("Input should be ")
        problems.append(f"{key} = {value!r} is not allowed; allowed: {message}")
    return f"stage {stage!r}: " + "; ".join(problems)


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = StageConfig
    for part in loc:
        annotation = model.model_fields[str(part)].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return [key for key in model.model_fields if key != "name"]
