"""start_training, register_model and start_batch_transform against moto, with the event JSON
that EventBridge sends. SageMaker's refusals are AWS's, on the wire (tests/aws_errors.py): a job
or model moto does not have is described as SageMaker answers, and a name in use is refused as
SageMaker refuses it (moto would accept a second job of the name). The race where another
delivery takes the name between the handler's lookup and its create is driven explicitly."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import re
import tarfile
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.aws_errors import (
    Answers,
    AwsError,
    access_denied,
    always,
    model_exists,
    sagemaker_as_aws,
    training_job_name_taken,
    training_job_not_found,
    transform_job_name_taken,
    transform_job_not_found,
    tuning_job_name_taken,
    tuning_job_not_found,
)
from tests.conftest import ROOT
from tests.functions import (
    ACCOUNT,
    ARTIFACTS_BUCKET,
    DATA_BUCKET,
    GROUP_PREFIX,
    KEY,
    REGION,
    SAGEMAKER_ROLE,
    changed,
    event_fixture,
    fake_credentials,
    load_function,
    object_created,
)

ASSETS = "cdk-assets"
DATA, ARTIFACTS, ROLE = DATA_BUCKET, ARTIFACTS_BUCKET, SAGEMAKER_ROLE
IMAGES = {
    "xgboost": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.2-0",
    "linear-learner": "438346466558.dkr.ecr.eu-west-1.amazonaws.com/linear-learner:1",
    "knn": "438346466558.dkr.ecr.eu-west-1.amazonaws.com/knn:1",
}
RUN = "20261112T093000Z-0123456789"
CARS_INPUT = "batch-input/car-evaluation/cars.csv"
SAGEMAKER_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"


def spec(name: str, **training) -> dict:
    raw = json.loads((ROOT / "datasets" / f"{name}.json").read_text())
    if training:
        raw["training"] = {**{k: v for k, v in raw.get("training", {}).items() if k != "tuning"}, **training}
    return raw


@pytest.fixture
def aws(monkeypatch):
    fake_credentials(monkeypatch)
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in (DATA, ARTIFACTS, ASSETS):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        sm = boto3.client("sagemaker")
        for name in ("bank-marketing", "car-evaluation"):
            sm.create_model_package_group(ModelPackageGroupName=f"{GROUP_PREFIX}-{name}")
        topic = boto3.client("sns").create_topic(Name="operators")["TopicArn"]
        sqs = boto3.client("sqs")
        queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        yield {"s3": s3, "sagemaker": sm, "topic": topic, "sqs": sqs, "queue": queue}


def put_spec(s3, name: str, raw: dict) -> str:
    s3.put_object(Bucket=ASSETS, Key=f"{name}.json", Body=json.dumps(raw).encode())
    return f"s3://{ASSETS}/{name}.json"


def notifications(aws) -> list[dict]:
    messages = aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


# --- start_training --------------------------------------------------------------------------------


@pytest.fixture
def start_training(aws, monkeypatch, prepared):
    s3 = aws["s3"]
    schema = prepared["bank-marketing"].schema
    for name in ("bank-marketing", "car-evaluation"):
        s3.put_object(
            Bucket=DATA, Key=f"prepared/{name}/{RUN}/schema.json", Body=json.dumps(prepared[name].schema).encode()
        )
    assert schema
    specs = {
        "bank-marketing": put_spec(s3, "bank-marketing", spec("bank-marketing")),  # asks for tuning
        "car-evaluation": put_spec(s3, "car-evaluation", spec("car-evaluation")),
    }
    module = load_function("start_training", monkeypatch, IMAGES=json.dumps(IMAGES), DATASET_SPECS=json.dumps(specs))
    sagemaker_as_aws(module.SAGEMAKER, aws["sagemaker"], ACCOUNT, REGION)
    return module


def test_success_marker_starts_a_training_job_with_the_exact_request(start_training, aws):
    result = start_training.handler(object_created(f"prepared/car-evaluation/{RUN}/_SUCCESS"), None)
    assert result == {
        "status": "started",
        "kind": "training",
        "job": f"car-evaluation-{RUN}",
        "dataset": "car-evaluation",
        "run_id": RUN,
    }
    job = aws["sagemaker"].describe_training_job(TrainingJobName=result["job"])
    assert job["AlgorithmSpecification"]["TrainingImage"] == IMAGES["xgboost"]
    assert job["RoleArn"] == ROLE
    channels = {c["ChannelName"]: c for c in job["InputDataConfig"]}
    assert set(channels) == {"train", "validation", "test", "schema", "code"}
    assert (
        channels["train"]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{DATA}/prepared/car-evaluation/{RUN}/train/"
    )
    assert (
        channels["schema"]["DataSource"]["S3DataSource"]["S3Uri"]
        == f"s3://{DATA}/prepared/car-evaluation/{RUN}/schema.json"
    )
    assert job["OutputDataConfig"] == {"S3OutputPath": f"s3://{ARTIFACTS}/training/car-evaluation/", "KmsKeyId": KEY}
    assert job["ResourceConfig"]["VolumeKmsKeyId"] == KEY and job["ResourceConfig"]["InstanceCount"] == 1
    assert job["VpcConfig"] == {"SecurityGroupIds": ["sg-jobs"], "Subnets": ["subnet-a", "subnet-b"]}
    assert job["EnableNetworkIsolation"] is True and job["EnableInterContainerTrafficEncryption"] is True
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    hp = job["HyperParameters"]
    assert (
        hp["sagemaker_program"] == "train.py"
        and hp["sagemaker_submit_directory"] == "/opt/ml/input/data/code/sourcedir.tar.gz"
    )
    assert hp["max_depth"] == "6" and hp["objective_metric"] == "accuracy"
    # moto does not echo metric definitions back, so read them from the request itself.
    parsed = start_training.load_spec(json.dumps(spec("car-evaluation")))
    definition = start_training.training_definition(parsed, RUN, start_training.SETTINGS, {})
    names = {m["Name"] for m in definition["AlgorithmSpecification"]["MetricDefinitions"]}
    assert names >= {"validation:accuracy", "test:accuracy", "validation:macro_f1"}


def test_metric_definitions_parse_the_trainers_lines(start_training):
    import train

    line = train.METRIC_LINE.format(channel="validation", name="auc", value=0.93125)
    import re

    assert (
        re.search(start_training.runtime.METRIC_REGEX.format(channel="validation", name="auc"), line).group(1)
        == "0.931250"
    )


def test_duplicate_event_starts_no_second_job(start_training, aws):
    first = start_training.handler(object_created(f"prepared/car-evaluation/{RUN}/_SUCCESS"), None)
    second = start_training.handler(object_created(f"prepared/car-evaluation/{RUN}/_SUCCESS"), None)
    assert first["status"] == "started" and second == {"status": "duplicate", "job": first["job"]}
    assert len(aws["sagemaker"].list_training_jobs()["TrainingJobSummaries"]) == 1


def test_a_spec_with_tuning_starts_a_bayesian_tuning_job(start_training, aws):
    result = start_training.handler(object_created(f"prepared/bank-marketing/{RUN}/_SUCCESS"), None)
    assert result["kind"] == "tuning" and len(result["job"]) <= 32
    tuning = aws["sagemaker"].describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=result["job"])
    config = tuning["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian"
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:auc"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 12, "MaxParallelTrainingJobs": 3}
    ranges = config["ParameterRanges"]
    assert {r["Name"] for r in ranges["ContinuousParameterRanges"]} == {"eta", "min_child_weight"}
    assert [r["Name"] for r in ranges["IntegerParameterRanges"]] == ["max_depth"]
    definition = tuning["TrainingJobDefinition"]
    assert (
        "eta" not in definition["StaticHyperParameters"] and definition["StaticHyperParameters"]["num_round"] == "400"
    )
    assert definition["EnableNetworkIsolation"] is True


def test_an_autopilot_spec_starts_an_automl_job_on_the_runs_raw_feature_view(start_training, aws, monkeypatch):
    autopilot = {"max_candidates": 4, "max_job_minutes": 90, "mode": "hyperparameter-tuning"}
    raw = spec("car-evaluation") | {"training": {"algorithm": "autopilot", "autopilot": autopilot, "minimum": 0.9}}
    uri = put_spec(aws["s3"], "car-evaluation", raw)
    specs = {**start_training.SETTINGS.specs, "car-evaluation": uri}
    monkeypatch.setattr(start_training, "SETTINGS", dataclasses.replace(start_training.SETTINGS, specs=specs))
    event = object_created(f"prepared/car-evaluation/{RUN}/_SUCCESS")
    result = start_training.handler(event, None)
    assert result["kind"] == "autopilot" and len(result["job"]) <= 32
    job = aws["sagemaker"].describe_auto_ml_job_v2(AutoMLJobName=result["job"])
    view = f"s3://{DATA}/prepared/car-evaluation/{RUN}/autopilot/"
    assert [
        (c["ChannelType"], c["ContentType"], c["DataSource"]["S3DataSource"]["S3Uri"])
        for c in job["AutoMLJobInputDataConfig"]
    ] == [
        ("training", "text/csv;header=present", view + "train/"),
        ("validation", "text/csv;header=present", view + "validation/"),
    ]
    tabular = job["AutoMLProblemTypeConfig"]["TabularJobConfig"]
    assert tabular["ProblemType"] == "MulticlassClassification" and tabular["TargetAttributeName"] == "class"
    assert tabular["Mode"] == "HYPERPARAMETER_TUNING"
    assert tabular["CompletionCriteria"] == {
        "MaxCandidates": 4,
        "MaxRuntimePerTrainingJobInSeconds": 3600,
        "MaxAutoMLJobRuntimeInSeconds": 5400,
    }
    assert job["AutoMLJobObjective"] == {"MetricName": "Accuracy"}
    assert job["RoleArn"] == ROLE
    assert job["OutputDataConfig"] == {"S3OutputPath": f"s3://{ARTIFACTS}/training/car-evaluation/", "KmsKeyId": KEY}
    assert job["SecurityConfig"] == {
        "VolumeKmsKeyId": KEY,
        "EnableInterContainerTrafficEncryption": True,
        "VpcConfig": {"SecurityGroupIds": ["sg-jobs"], "Subnets": ["subnet-a", "subnet-b"]},
    }
    tags = aws["sagemaker"].list_tags(ResourceArn=job["AutoMLJobArn"])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {
        "ml-platform:stage": "dev",
        "ml-platform:dataset": "car-evaluation",
        "ml-platform:run": RUN,
    }
    assert start_training.handler(event, None) == {"status": "duplicate", "job": result["job"]}
    assert not aws["sagemaker"].list_training_jobs()["TrainingJobSummaries"]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (f"prepared/car-evaluation/{RUN}/train/_SUCCESS", "is not prepared/<dataset>/<run-id>/_SUCCESS"),
        (f"prepared/iris/{RUN}/_SUCCESS", "dataset 'iris' has no spec"),
        (f"raw/car-evaluation/{RUN}/_SUCCESS", "is not under prepared/"),
    ],
)
def test_other_objects_are_ignored(start_training, aws, key, reason):
    result = start_training.handler(object_created(key), None)
    assert result["status"] == "ignored" and reason in result["reason"]
    assert aws["sagemaker"].list_training_jobs()["TrainingJobSummaries"] == []


GLUE_EVENT = event_fixture("glue_job_state_change_failed.json")


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (GLUE_EVENT, "not an S3 'Object Created' event: source 'aws.glue', detail-type 'Glue Job State Change'"),
        (
            changed(object_created(f"prepared/car-evaluation/{RUN}/_SUCCESS"), "detail.object.key", remove=True),
            "detail.object.key is missing",
        ),
        (
            changed(object_created(f"prepared/car-evaluation/{RUN}/_SUCCESS"), "detail.object.size", "0"),
            "detail.object.size must be a whole number",
        ),
        (
            changed(object_created(f"prepared/car-evaluation/{RUN}/_SUCCESS"), "detail", None),
            "detail must be an object",
        ),
        ([object_created(f"prepared/car-evaluation/{RUN}/_SUCCESS")], "not an EventBridge event"),
    ],
    ids=["glue-event", "no-key", "size-text", "detail-null", "list"],
)
def test_an_event_start_training_does_not_understand_is_ignored_with_the_reason(
    start_training, aws, event, reason, caplog
):
    with caplog.at_level("INFO"):
        result = start_training.handler(event, None)
    assert result["status"] == "ignored" and reason in result["reason"], result
    assert reason in caplog.text
    assert aws["sagemaker"].list_training_jobs()["TrainingJobSummaries"] == []


def test_long_names_are_cut_to_sagemakers_limits_and_stay_stable(start_training):
    long = "a-very-long-dataset-name-that-goes-on-and-on"
    name = start_training.job_name(long, RUN, 63)
    assert len(name) <= 63 and name == start_training.job_name(long, RUN, 63)
    assert len(start_training.job_name(long, RUN, 32)) <= 32
    assert start_training.job_name(long, RUN, 32) != start_training.job_name(long, RUN + "x", 32)


@pytest.mark.parametrize("algorithm", ["linear-learner", "knn"])
def test_builtin_algorithms_get_their_image_and_problem_hyperparameters(start_training, aws, algorithm, prepared):
    raw = spec("car-evaluation", algorithm=algorithm, hyperparameters={})
    parsed = start_training.load_spec(json.dumps(raw))
    definition = start_training.training_definition(
        parsed, RUN, start_training.SETTINGS, prepared["car-evaluation"].schema
    )
    assert definition["AlgorithmSpecification"]["TrainingImage"] == IMAGES[algorithm]
    hp = definition["HyperParameters"]
    assert hp["feature_dim"] == "6"
    if algorithm == "linear-learner":
        assert hp["predictor_type"] == "multiclass_classifier" and hp["num_classes"] == "4"
        assert [c["ChannelName"] for c in definition["InputDataConfig"]] == ["train", "validation", "test"]
    else:
        assert hp["predictor_type"] == "classifier" and hp["k"] == "10"
        assert [c["ChannelName"] for c in definition["InputDataConfig"]] == ["train", "test"]
    assert "sagemaker_program" not in hp


CAR_FEATURES = "6"  # car evaluation's prepared feature count; its target has 4 classes


@pytest.mark.parametrize(
    ("algorithm", "problem", "expected"),
    [
        ("linear-learner", "binary", {"predictor_type": "binary_classifier"}),
        ("linear-learner", "multiclass", {"predictor_type": "multiclass_classifier", "num_classes": "4"}),
        ("linear-learner", "regression", {"predictor_type": "regressor"}),
        ("knn", "binary", {"predictor_type": "classifier", "k": "10", "sample_size": "200000"}),
        ("knn", "regression", {"predictor_type": "regressor", "k": "10", "sample_size": "200000"}),
    ],
)
def test_a_built_in_algorithm_is_told_the_problem_it_solves(start_training, prepared, algorithm, problem, expected):
    parsed = start_training.load_spec(json.dumps(spec("car-evaluation", algorithm=algorithm, hyperparameters={})))
    problem = json.loads(json.dumps(problem))  # as a spec file gives it: a string of its own, not this literal
    parsed = dataclasses.replace(parsed, target=dataclasses.replace(parsed.target, problem=problem))
    schema = prepared["car-evaluation"].schema
    assert start_training.builtin_hyperparameters(parsed, schema) == {"feature_dim": CAR_FEATURES, **expected}


def test_a_spec_s_own_hyperparameters_override_a_built_in_algorithm_s_defaults(start_training, prepared):
    parsed = start_training.load_spec(json.dumps(spec("car-evaluation", algorithm="knn", hyperparameters={"k": 5})))
    hyperparameters = start_training.builtin_hyperparameters(parsed, prepared["car-evaluation"].schema)
    assert hyperparameters["k"] == "5" and hyperparameters["sample_size"] == "200000"


def test_a_stage_that_profiles_gives_each_training_job_the_profiler_and_its_report_rule(
    start_training, aws, monkeypatch
):
    monkeypatch.setattr(
        start_training, "SETTINGS", dataclasses.replace(start_training.SETTINGS, profiler_rule=PROFILER_RULE)
    )
    sent = {}
    start_training.SAGEMAKER.meta.events.register(
        "provide-client-params.sagemaker.CreateTrainingJob", lambda params, **_: sent.setdefault("job", params)
    )
    result = start_training.handler(object_created(f"prepared/car-evaluation/{RUN}/_SUCCESS"), None)
    models = f"s3://{ARTIFACTS}/training/car-evaluation/"
    assert sent["job"]["ProfilerConfig"] == {"S3OutputPath": models, "ProfilingIntervalInMilliseconds": 500}
    assert sent["job"]["ProfilerRuleConfigurations"] == [
        {**PROFILER_RULE, "S3OutputPath": f"{models}{result['job']}/rule-output"}
    ]


def test_a_stage_that_does_not_profile_sends_no_profiler(start_training, aws):
    sent = {}
    start_training.SAGEMAKER.meta.events.register(
        "provide-client-params.sagemaker.CreateTrainingJob", lambda params, **_: sent.setdefault("job", params)
    )
    start_training.handler(object_created(f"prepared/car-evaluation/{RUN}/_SUCCESS"), None)
    assert "ProfilerConfig" not in sent["job"] and "ProfilerRuleConfigurations" not in sent["job"]


def test_the_error_costs_reach_the_trainer_with_the_cost_criterion(start_training, prepared):
    raw = spec("bank-marketing", threshold_criterion="cost", false_positive_cost=1, false_negative_cost=12.5)
    definition = start_training.training_definition(
        start_training.load_spec(json.dumps(raw)), RUN, start_training.SETTINGS, prepared["bank-marketing"].schema
    )
    hp = definition["HyperParameters"]
    assert (hp["threshold_criterion"], hp["false_positive_cost"], hp["false_negative_cost"]) == ("cost", "1.0", "12.5")
    # the trainer reads them as its command line
    import train

    parsed = train.parse_hyperparameters([f"--{k}={v}" for k, v in hp.items() if not k.startswith("sagemaker_")])
    assert (parsed["false_positive_cost"], parsed["false_negative_cost"]) == (1.0, 12.5)


def test_without_the_cost_criterion_no_cost_is_sent(start_training, prepared):
    definition = start_training.training_definition(
        start_training.load_spec(json.dumps(spec("bank-marketing", threshold_criterion="accuracy"))),
        RUN,
        start_training.SETTINGS,
        prepared["bank-marketing"].schema,
    )
    assert "false_positive_cost" not in definition["HyperParameters"]


def test_more_than_one_instance_shards_the_training_channel_by_s3_key(start_training, prepared):
    parsed = start_training.load_spec(
        json.dumps(spec("car-evaluation", algorithm="linear-learner", hyperparameters={}, instance_count=3))
    )
    definition = start_training.training_definition(
        parsed, RUN, start_training.SETTINGS, prepared["car-evaluation"].schema
    )
    distribution = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
        for c in definition["InputDataConfig"]
    }
    assert distribution["train"] == "ShardedByS3Key" and distribution["validation"] == "FullyReplicated"
    assert definition["ResourceConfig"]["InstanceCount"] == 3


def test_the_script_mode_trainer_is_refused_more_than_one_instance(start_training):
    from dataset_spec import SpecError

    with pytest.raises(SpecError, match="runs on one instance"):
        start_training.load_spec(json.dumps(spec("car-evaluation", instance_count=2)))


# --- start_training: SageMaker's refusals, decided by code and a second look at the job -----------

CAR_SUCCESS = f"prepared/car-evaluation/{RUN}/_SUCCESS"
CAR_JOB = f"car-evaluation-{RUN}"


def racing(answers: Answers, operation: str, other_delivery, refusal=None) -> None:
    """Another delivery of the event runs ``other_delivery(params)`` just before our ``operation``
    reaches SageMaker; SageMaker then answers as it does (or with ``refusal(params)``)."""
    answer = answers.rules[operation]

    def rule(params):
        other_delivery(params)
        return refusal(params) if refusal else answer(params)

    answers.on(operation, rule)


@pytest.mark.parametrize(
    "refusal",
    [
        lambda p: training_job_name_taken(f"{SAGEMAKER_ARN}:training-job/{p['TrainingJobName'].lower()}"),
        lambda p: training_job_name_taken(
            f"{SAGEMAKER_ARN}:training-job/{p['TrainingJobName'].lower()}", "ValidationException"
        ),
        lambda p: training_job_name_taken(f"{SAGEMAKER_ARN}:training-job/{p['TrainingJobName'].lower()}").reworded(),
    ],
    ids=["ResourceInUse", "ValidationException", "other-wording"],
)
def test_a_create_refused_because_another_delivery_started_the_job_is_a_duplicate(start_training, aws, refusal):
    answers = Answers.of(start_training.SAGEMAKER)
    racing(answers, "CreateTrainingJob", lambda p: aws["sagemaker"].create_training_job(**p), refusal)
    result = start_training.handler(object_created(CAR_SUCCESS), None)
    assert result == {"status": "duplicate", "job": CAR_JOB}
    assert len(aws["sagemaker"].list_training_jobs()["TrainingJobSummaries"]) == 1


@pytest.mark.parametrize(
    "refusal",
    [
        training_job_name_taken(f"{SAGEMAKER_ARN}:training-job/{CAR_JOB.lower()}"),
        # the common code for a request SageMaker finds invalid, for a reason other than the name
        AwsError(
            "ValidationException",
            f'No S3 objects found under S3 URL "s3://{DATA}/prepared/car-evaluation/{RUN}/train/" given in input '
            f"data source. Please ensure that the bucket exists in the selected region ({REGION}), that objects "
            f'exist under that S3 prefix, and that the role "{ROLE}" has "s3:ListBucket" permissions on bucket '
            f'"{DATA}".',
        ),
    ],
    ids=["ResourceInUse", "ValidationException"],
)
def test_a_create_refused_while_no_job_has_the_name_is_raised(start_training, aws, refusal):
    Answers.of(start_training.SAGEMAKER).on("CreateTrainingJob", always(refusal))
    with pytest.raises(ClientError) as raised:
        start_training.handler(object_created(CAR_SUCCESS), None)
    assert raised.value.operation_name == "CreateTrainingJob"
    assert raised.value.response["Error"] == {"Code": refusal.code, "Message": refusal.message}


@pytest.mark.parametrize("elsewhere", ["s3://elsewhere/", "s3://zz-elsewhere/"], ids=["sorts-before", "sorts-after"])
def test_a_name_taken_by_a_job_on_other_data_is_raised(start_training, aws, elsewhere):
    def someone_else(params):
        elsewhere_channels = [
            {**c, "DataSource": {"S3DataSource": {**c["DataSource"]["S3DataSource"], "S3Uri": elsewhere}}}
            for c in params["InputDataConfig"]
        ]
        aws["sagemaker"].create_training_job(**{**params, "InputDataConfig": elsewhere_channels})

    racing(Answers.of(start_training.SAGEMAKER), "CreateTrainingJob", someone_else)
    with pytest.raises(ClientError, match="ResourceInUse"):
        start_training.handler(object_created(CAR_SUCCESS), None)


def test_an_automl_job_name_taken_by_a_job_on_other_data_is_raised(start_training, aws, monkeypatch):
    autopilot = {"max_candidates": 4, "max_job_minutes": 90, "mode": "hyperparameter-tuning"}
    raw = spec("car-evaluation") | {"training": {"algorithm": "autopilot", "autopilot": autopilot, "minimum": 0.9}}
    specs = {**start_training.SETTINGS.specs, "car-evaluation": put_spec(aws["s3"], "car-evaluation", raw)}
    monkeypatch.setattr(start_training, "SETTINGS", dataclasses.replace(start_training.SETTINGS, specs=specs))
    other_run = "20261101T000000Z-0000000000"

    def someone_else(params):
        channels = [
            {**c, "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri.replace(RUN, other_run)}}}
            for c in params["AutoMLJobInputDataConfig"]
            for uri in [c["DataSource"]["S3DataSource"]["S3Uri"]]
        ]
        aws["sagemaker"].create_auto_ml_job_v2(**{**params, "AutoMLJobInputDataConfig": channels})

    def taken(params):
        arn = f"{SAGEMAKER_ARN}:automl-job/{params['AutoMLJobName'].lower()}"
        return AwsError("ResourceInUse", f"Resource Already Exists: AutoML job with name {arn} already exists")

    Answers.of(start_training.SAGEMAKER).on("CreateAutoMLJobV2", lambda params: someone_else(params) or taken(params))
    with pytest.raises(ClientError, match="ResourceInUse"):
        start_training.handler(object_created(CAR_SUCCESS), None)


@pytest.mark.parametrize(
    "not_found",
    [
        training_job_not_found(),
        training_job_not_found().reworded(),
        AwsError("ResourceNotFound", f"Training job {CAR_JOB} does not exist."),  # the documented code
    ],
    ids=["ValidationException", "other-wording", "ResourceNotFound"],
)
def test_a_training_job_sagemaker_does_not_have_is_started(start_training, aws, not_found):
    Answers.of(start_training.SAGEMAKER).on("DescribeTrainingJob", always(not_found))
    assert start_training.handler(object_created(CAR_SUCCESS), None)["status"] == "started"
    assert len(aws["sagemaker"].list_training_jobs()["TrainingJobSummaries"]) == 1


def test_a_lookup_sagemaker_refuses_otherwise_is_raised_and_starts_nothing(start_training, aws):
    refusal = access_denied(ROLE, "sagemaker:DescribeTrainingJob", f"{SAGEMAKER_ARN}:training-job/{CAR_JOB.lower()}")
    Answers.of(start_training.SAGEMAKER).on("DescribeTrainingJob", always(refusal))
    with pytest.raises(ClientError, match="AccessDeniedException"):
        start_training.handler(object_created(CAR_SUCCESS), None)
    assert aws["sagemaker"].list_training_jobs()["TrainingJobSummaries"] == []


@pytest.mark.parametrize("reworded", [False, True], ids=["aws-wording", "other-wording"])
def test_a_tuning_job_another_delivery_started_first_is_a_duplicate(start_training, aws, reworded):
    def refusal(params):
        taken = tuning_job_name_taken(params["HyperParameterTuningJobName"])
        return taken.reworded() if reworded else taken

    racing(
        Answers.of(start_training.SAGEMAKER),
        "CreateHyperParameterTuningJob",
        lambda p: aws["sagemaker"].create_hyper_parameter_tuning_job(**p),
        refusal,
    )
    result = start_training.handler(object_created(f"prepared/bank-marketing/{RUN}/_SUCCESS"), None)
    assert result["status"] == "duplicate"
    assert len(aws["sagemaker"].list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]) == 1


def test_a_tuning_job_not_found_in_other_words_is_started(start_training, aws):
    answers = Answers.of(start_training.SAGEMAKER)
    answers.on(
        "DescribeHyperParameterTuningJob",
        lambda p: tuning_job_not_found(p["HyperParameterTuningJobName"]).reworded(),
    )
    result = start_training.handler(object_created(f"prepared/bank-marketing/{RUN}/_SUCCESS"), None)
    assert result["status"] == "started" and result["kind"] == "tuning"


# --- register_model --------------------------------------------------------------------------------


@pytest.fixture
def register_model(aws, monkeypatch):
    specs = {
        "bank-marketing": put_spec(aws["s3"], "bank-marketing", spec("bank-marketing")),
        "car-evaluation": put_spec(aws["s3"], "car-evaluation", spec("car-evaluation")),
    }
    return load_function(
        "register_model",
        monkeypatch,
        TOPIC_ARN=aws["topic"],
        IMAGES=json.dumps(IMAGES),
        TRAINING_IMAGES=json.dumps(IMAGES),
        DATASET_SPECS=json.dumps(specs),
    )


def finished_job(aws, name: str, dataset: str, evaluation: dict, stage: str = "dev", role: str = ROLE) -> None:
    """A training job as SageMaker leaves it: tagged, with its output.tar.gz in the artifacts bucket."""
    aws["sagemaker"].create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": IMAGES["xgboost"], "TrainingInputMode": "File"},
        RoleArn=role,
        OutputDataConfig={"S3OutputPath": f"s3://{ARTIFACTS}/training/{dataset}/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        Tags=[{"Key": "ml-platform:stage", "Value": stage}, {"Key": "ml-platform:dataset", "Value": dataset}],
    )
    finished_output(aws, name, dataset, evaluation)


def finished_output(aws, name: str, dataset: str, evaluation: dict) -> None:
    """A finished job's output.tar.gz holding its evaluation.json, where SageMaker puts it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = json.dumps(evaluation).encode()
        info = tarfile.TarInfo("evaluation.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    aws["s3"].put_object(
        Bucket=ARTIFACTS, Key=f"training/{dataset}/{name}/output/output.tar.gz", Body=buffer.getvalue()
    )


def state_change(name: str, status: str) -> dict:
    return {
        "version": "0",
        "id": "e0b7f4c2-0000-4000-8000-000000000001",
        "detail-type": "SageMaker Training Job State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2026-11-12T10:02:00Z",
        "region": REGION,
        "resources": [f"arn:aws:sagemaker:{REGION}:123456789012:training-job/{name}"],
        "detail": {
            "TrainingJobName": name,
            "TrainingJobStatus": status,
            "SecondaryStatus": status,
            "Tags": {"ml-platform:stage": "dev"},
        },
    }


def packages(aws, dataset: str) -> list[dict]:
    group = f"{GROUP_PREFIX}-{dataset}"
    summaries = aws["sagemaker"].list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    return [aws["sagemaker"].describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries]


def test_a_model_that_passes_the_gate_is_approved_with_its_metrics(register_model, aws, trained):
    evaluation = trained["car-evaluation"].evaluation
    finished_job(aws, "car-run-1", "car-evaluation", evaluation)
    result = register_model.handler(state_change("car-run-1", "Completed"), None)
    assert result["status"] == "approved"
    [package] = packages(aws, "car-evaluation")
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ModelPackageDescription"].startswith("Approved: test accuracy")
    metadata = package["CustomerMetadataProperties"]
    assert float(metadata["objective_value"]) == pytest.approx(evaluation["test"]["accuracy"], abs=1e-6)
    assert metadata["training_job"] == "car-run-1" and "test_macro_f1" in metadata
    # How the model-quality job reads its answers: the label after four classes' probabilities.
    assert metadata["classes"] == "4" and "decision_threshold" not in metadata
    container = package["InferenceSpecification"]["Containers"][0]
    assert container["Image"] == IMAGES["xgboost"]
    stored = json.loads(
        aws["s3"].get_object(Bucket=ARTIFACTS, Key="evaluations/car-evaluation/car-run-1.json")["Body"].read()
    )
    assert stored == evaluation


def test_an_xgboost_models_package_serves_it_with_the_inference_code_its_archive_carries(register_model, aws):
    """The XGBoost container runs the script named by SAGEMAKER_PROGRAM from the model's code/
    folder; without them it would serve the bare booster, not the platform's raw-record answers."""
    finished_job(aws, "car-run-e", "car-evaluation", {"test": {"accuracy": 0.97, "macro_f1": 0.9}})
    register_model.handler(state_change("car-run-e", "Completed"), None)
    [package] = packages(aws, "car-evaluation")
    assert package["InferenceSpecification"]["Containers"] == [
        {
            "Image": IMAGES["xgboost"],
            "ModelDataUrl": f"s3://{ARTIFACTS}/training/car-evaluation/car-run-e/output/model.tar.gz",
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"},
        }
    ]
    assert package["InferenceSpecification"]["SupportedContentTypes"] == ["text/csv", "application/json"]


def test_a_model_below_the_bar_is_rejected_with_the_reason_and_operators_told(register_model, aws):
    finished_job(aws, "car-run-2", "car-evaluation", {"test": {"accuracy": 0.91, "macro_f1": 0.8}})
    result = register_model.handler(state_change("car-run-2", "Completed"), None)
    assert result["status"] == "rejected"
    [package] = packages(aws, "car-evaluation")
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["ModelPackageDescription"] == "Rejected: test accuracy 0.9100 misses the bar: at least 0.95"
    [message] = notifications(aws)
    assert "rejected" in message["Subject"] and "misses the bar" in message["Message"]


def test_a_model_worse_than_the_approved_one_beyond_tolerance_is_rejected(register_model, aws):
    finished_job(aws, "car-run-3", "car-evaluation", {"test": {"accuracy": 0.99, "macro_f1": 0.9}})
    register_model.handler(state_change("car-run-3", "Completed"), None)
    finished_job(aws, "car-run-4", "car-evaluation", {"test": {"accuracy": 0.975, "macro_f1": 0.9}})
    result = register_model.handler(state_change("car-run-4", "Completed"), None)
    assert result["status"] == "rejected"
    assert "0.0150 worse than the approved model's 0.9900 (tolerance 0.01)" in result["reason"]
    finished_job(aws, "car-run-5", "car-evaluation", {"test": {"accuracy": 0.985, "macro_f1": 0.9}})
    assert register_model.handler(state_change("car-run-5", "Completed"), None)["status"] == "approved"


def test_a_repeated_completion_event_registers_one_package(register_model, aws):
    finished_job(aws, "car-run-6", "car-evaluation", {"test": {"accuracy": 0.97, "macro_f1": 0.9}})
    first = register_model.handler(state_change("car-run-6", "Completed"), None)
    second = register_model.handler(state_change("car-run-6", "Completed"), None)
    assert second == {"status": "duplicate", "model_package": first["model_package"]}
    assert len(packages(aws, "car-evaluation")) == 1


def _debugger_image() -> str:
    """SageMaker Debugger's rule image in the tests' region, from the SDK's table."""
    from constructs.sagemaker_images import registries

    from stacks.training import IMAGES as STACK_IMAGES

    accounts, repository = registries(STACK_IMAGES["debugger"])
    return f"{accounts[REGION]}.dkr.ecr.{REGION}.amazonaws.com/{repository}:latest"


PROFILER_RULE = {
    "RuleConfigurationName": "ProfilerReport",
    "RuleEvaluatorImage": _debugger_image(),
    "RuleParameters": {"rule_to_invoke": "ProfilerReport"},
}


def _described_with(client, **fields) -> None:
    """DescribeTrainingJob answers with fields moto leaves out, in the shape of AWS's API reference
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTrainingJob.html)."""
    client.meta.events.register("after-call.sagemaker.DescribeTrainingJob", lambda parsed, **_: parsed.update(fields))


def test_a_profiled_models_package_names_where_its_profiler_report_is(register_model, aws):
    finished_job(aws, "car-run-p", "car-evaluation", {"test": {"accuracy": 0.99, "macro_f1": 0.9}})
    report = f"s3://{ARTIFACTS}/training/car-evaluation/car-run-p/rule-output"
    _described_with(register_model.SAGEMAKER, ProfilerRuleConfigurations=[{**PROFILER_RULE, "S3OutputPath": report}])
    register_model.handler(state_change("car-run-p", "Completed"), None)
    [package] = packages(aws, "car-evaluation")
    assert package["CustomerMetadataProperties"]["profiler_report"] == report


def test_a_models_package_names_the_profiler_reports_output_not_another_profiler_rules(register_model, aws):
    """A job may carry more of Debugger's profiler rules than the report (UpdateTrainingJob adds them)."""
    finished_job(aws, "car-run-s", "car-evaluation", {"test": {"accuracy": 0.99, "macro_f1": 0.9}})
    rules = f"s3://{ARTIFACTS}/training/car-evaluation/car-run-s/rule-output"
    step_outlier = {
        "RuleConfigurationName": "StepOutlier",
        "RuleEvaluatorImage": _debugger_image(),
        "RuleParameters": {"rule_to_invoke": "StepOutlier"},
        "S3OutputPath": rules + "/step-outlier",
    }
    _described_with(
        register_model.SAGEMAKER,
        ProfilerRuleConfigurations=[step_outlier, {**PROFILER_RULE, "S3OutputPath": rules}],
    )
    register_model.handler(state_change("car-run-s", "Completed"), None)
    [package] = packages(aws, "car-evaluation")
    assert package["CustomerMetadataProperties"]["profiler_report"] == rules


def test_an_unprofiled_models_package_names_no_report(register_model, aws):
    finished_job(aws, "car-run-q", "car-evaluation", {"test": {"accuracy": 0.99, "macro_f1": 0.9}})
    register_model.handler(state_change("car-run-q", "Completed"), None)
    [package] = packages(aws, "car-evaluation")
    assert "profiler_report" not in package["CustomerMetadataProperties"]


def test_a_failed_jobs_message_carries_the_profiler_rules_verdict(register_model, aws):
    finished_job(aws, "car-run-r", "car-evaluation", {"test": {}})
    statuses = [
        {"RuleConfigurationName": "ProfilerReport", "RuleEvaluationStatus": "IssuesFound", "StatusDetails": "LowGPU"}
    ]
    _described_with(
        register_model.SAGEMAKER, FailureReason="AlgorithmError: boom", ProfilerRuleEvaluationStatuses=statuses
    )
    register_model.handler(state_change("car-run-r", "Failed"), None)
    [message] = notifications(aws)
    assert "ended Failed: AlgorithmError: boom; ProfilerReport: IssuesFound (LowGPU)" in message["Message"]


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_failed_or_stopped_jobs_reach_the_operators(register_model, aws, status):
    finished_job(aws, "car-run-7", "car-evaluation", {"test": {}})
    result = register_model.handler(state_change("car-run-7", status), None)
    assert result["status"] == "notified"
    [message] = notifications(aws)
    assert f"Training job car-run-7 ended {status}" in message["Message"]
    assert packages(aws, "car-evaluation") == []


def test_jobs_of_another_stage_are_ignored(register_model, aws):
    finished_job(aws, "prod-run", "car-evaluation", {"test": {"accuracy": 0.99}}, stage="prod")
    assert register_model.handler(state_change("prod-run", "Completed"), None)["status"] == "ignored"


def test_a_job_with_the_platforms_tags_that_did_not_run_as_its_execution_role_is_not_registered(register_model, aws):
    """Only start_training's jobs run as the platform's execution role (no person may pass it), so a
    job carrying the platform's tags some other way is still not the platform's."""
    other = ROLE.rsplit("/", 1)[0] + "/data-scientists-jobs"
    finished_job(aws, "car-run-x", "car-evaluation", {"test": {"accuracy": 0.99, "macro_f1": 0.9}}, role=other)
    result = register_model.handler(state_change("car-run-x", "Completed"), None)
    assert result["status"] == "ignored" and "execution role" in result["reason"]
    assert packages(aws, "car-evaluation") == []


# --- a built-in algorithm's model: scored, evaluated, then registered as a pipeline ---------------


def _built_in_job(aws, name: str, algorithm: str, prepared, bucket: str = DATA) -> None:
    """A Linear Learner or k-NN job as start_training starts it, ended, on a prepared car run."""
    run = f"s3://{bucket}/prepared/car-evaluation/{RUN}/"
    for split in ("train", "validation", "test"):
        for path in sorted((prepared.output / split).glob("*.csv")):
            aws["s3"].put_object(
                Bucket=DATA, Key=f"prepared/car-evaluation/{RUN}/{split}/{path.name}", Body=path.read_bytes()
            )
    aws["sagemaker"].create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": IMAGES[algorithm], "TrainingInputMode": "File"},
        RoleArn=ROLE,
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": run + "train/"}},
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{ARTIFACTS}/training/car-evaluation/", "KmsKeyId": KEY},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        Tags=[
            {"Key": "ml-platform:stage", "Value": "dev"},
            {"Key": "ml-platform:dataset", "Value": "car-evaluation"},
            {"Key": "ml-platform:run", "Value": RUN},
        ],
    )


def _transform_change(name: str, status: str) -> dict:
    """A transform job's end as EventBridge delivers it (the detail is DescribeTransformJob's shape).
    https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html#eventbridge-transform"""
    event = state_change("unused", status)
    event["detail-type"] = "SageMaker Transform Job State Change"
    event["resources"] = [f"{SAGEMAKER_ARN}:transform-job/{name}"]
    event["detail"] = {"TransformJobName": name, "TransformJobStatus": status}
    return event


@pytest.mark.parametrize("algorithm", ["linear-learner", "knn"])
def test_a_built_in_algorithms_model_is_scored_evaluated_and_registered_as_an_inference_pipeline(
    register_model, aws, prepared, trained, algorithm
):
    sagemaker = aws["sagemaker"]
    trained_by = f"car-{algorithm}-run"
    _built_in_job(aws, trained_by, algorithm, prepared["car-evaluation"])
    sent = {}  # the requests as boto3 sends them (moto does not echo every field back)
    for operation in ("CreateModel", "CreateTrainingJob"):
        register_model.SAGEMAKER.meta.events.register(
            f"provide-client-params.sagemaker.{operation}",
            lambda params, op=operation, **_: sent.setdefault(op, params),
        )

    # 1. The algorithm's job ends: its model scores the run's validation and test files.
    scoring = register_model.handler(state_change(trained_by, "Completed"), None)
    assert scoring["status"] == "scoring" and packages(aws, "car-evaluation") == []
    name = scoring["job"]
    assert name.startswith(f"{GROUP_PREFIX}-") and len(name) <= 63  # the prefix no person may give a model
    folder = f"training/car-evaluation/{trained_by}/"
    manifest = json.loads(aws["s3"].get_object(Bucket=ARTIFACTS, Key=folder + "scores.manifest")["Body"].read())
    run = f"s3://{DATA}/prepared/car-evaluation/{RUN}/"
    assert manifest[0] == {"prefix": run}
    assert sorted(manifest[1:]) == sorted(
        f"{split}/{p.name}"
        for split in ("validation", "test")
        for p in (prepared["car-evaluation"].output / split).glob("*.csv")
    )
    model = sagemaker.describe_model(ModelName=name)
    assert model["Containers"][0]["Image"] == IMAGES[algorithm]
    assert sent["CreateModel"]["EnableNetworkIsolation"] is True
    assert model["VpcConfig"] == {"SecurityGroupIds": ["sg-jobs"], "Subnets": ["subnet-a", "subnet-b"]}
    job = sagemaker.describe_transform_job(TransformJobName=name)
    assert job["DataProcessing"]["InputFilter"] == "$[1:]"  # the target is the prepared CSV's first column
    assert job["TransformInput"]["DataSource"]["S3DataSource"] == {
        "S3DataType": "ManifestFile",
        "S3Uri": f"s3://{ARTIFACTS}/{folder}scores.manifest",
    }
    assert job["TransformOutput"]["Accept"] == "application/jsonlines"
    assert job["TransformOutput"]["KmsKeyId"] == KEY and job["TransformResources"]["VolumeKmsKeyId"] == KEY
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=job["TransformJobArn"])["Tags"]}
    assert tags["ml-platform:evaluates"] == trained_by and tags["ml-platform:stage"] == "dev"
    assert register_model.handler(state_change(trained_by, "Completed"), None)["status"] == "duplicate"

    # 2. The scoring job ends: the platform's evaluation job reads the scores.
    evaluating = register_model.handler(_transform_change(name, "Completed"), None)
    assert evaluating["status"] == "evaluating"
    evaluation_job = sagemaker.describe_training_job(TrainingJobName=evaluating["job"])
    assert evaluation_job["AlgorithmSpecification"]["TrainingImage"] == IMAGES["xgboost"]
    hyperparameters = evaluation_job["HyperParameters"]
    assert hyperparameters["sagemaker_program"] == "evaluate.py" and hyperparameters["algorithm"] == algorithm
    assert hyperparameters["trained_by"] == trained_by and hyperparameters["scored_by"] == name
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in evaluation_job["InputDataConfig"]}
    assert channels == {
        "validation": run + "validation/",
        "test": run + "test/",
        "scores": f"s3://{ARTIFACTS}/{folder}scores/",
        "schema": run + "schema.json",
        "code": "s3://cdk-assets/sourcedir.tar.gz",
    }
    request = sent["CreateTrainingJob"]
    assert request["EnableNetworkIsolation"] is True and request["EnableInterContainerTrafficEncryption"] is True
    assert request["VpcConfig"] == {"SecurityGroupIds": ["sg-jobs"], "Subnets": ["subnet-a", "subnet-b"]}
    assert request["ResourceConfig"]["InstanceCount"] == 1 and request["ResourceConfig"]["VolumeKmsKeyId"] == KEY
    assert register_model.handler(_transform_change(name, "Completed"), None)["status"] == "duplicate"

    # 3. The evaluation job ends: the algorithm's model is registered between the platform's encoder and decoder.
    evaluation = trained["car-evaluation"].evaluation
    finished_output(aws, evaluating["job"], "car-evaluation", evaluation)
    result = register_model.handler(state_change(evaluating["job"], "Completed"), None)
    assert result["status"] == "approved"
    [package] = packages(aws, "car-evaluation")
    encoder, algorithm_container, decoder = package["InferenceSpecification"]["Containers"]
    assert algorithm_container["Image"] == IMAGES[algorithm]
    assert algorithm_container["ModelDataUrl"].endswith(f"/{trained_by}/output/model.tar.gz")
    for container, step in ((encoder, "encode"), (decoder, "decode")):
        assert container["Image"] == IMAGES["xgboost"]
        assert container["ModelDataUrl"].endswith(f"/{evaluating['job']}/output/model.tar.gz")
        assert container["Environment"]["SAGEMAKER_PROGRAM"] == "pipeline.py"
        assert container["Environment"]["PLATFORM_PIPELINE_STEP"] == step
    metadata = package["CustomerMetadataProperties"]
    assert (metadata["training_job"], metadata["evaluation_job"], metadata["algorithm"]) == (
        trained_by,
        evaluating["job"],
        algorithm,
    )
    assert register_model.handler(state_change(evaluating["job"], "Completed"), None)["status"] == "duplicate"


def test_a_binary_model_records_its_decision_threshold(register_model, aws, trained):
    """deploy_model gives it to the model-quality job, which reads the answer's probability at it."""
    evaluation = trained["bank-marketing"].evaluation
    finished_job(aws, "bank-run-1", "bank-marketing", evaluation)
    register_model.handler(state_change("bank-run-1", "Completed"), None)
    [package] = packages(aws, "bank-marketing")
    metadata = package["CustomerMetadataProperties"]
    assert metadata["decision_threshold"] == f"{evaluation['test']['threshold']:.6f}"
    assert 0 < float(metadata["decision_threshold"]) < 1 and "classes" not in metadata


def test_a_built_in_job_that_did_not_train_on_a_prepared_run_is_not_scored(register_model, aws, prepared):
    """The scoring manifest lists the run's files: only a run of the platform's data bucket is listed."""
    _built_in_job(aws, "car-knn-elsewhere", "knn", prepared["car-evaluation"], bucket=ARTIFACTS)
    result = register_model.handler(state_change("car-knn-elsewhere", "Completed"), None)
    assert result["status"] == "ignored" and "did not train on a prepared run of car-evaluation" in result["reason"]
    assert aws["sagemaker"].list_transform_jobs()["TransformJobSummaries"] == []


def test_a_failed_scoring_job_reaches_the_operators_and_a_batch_transform_job_is_not_judged(
    register_model, aws, prepared
):
    _built_in_job(aws, "car-ll-run-f", "linear-learner", prepared["car-evaluation"])
    name = register_model.handler(state_change("car-ll-run-f", "Completed"), None)["job"]
    result = register_model.handler(_transform_change(name, "Failed"), None)
    assert result["status"] == "notified"
    [message] = notifications(aws)
    assert f"Transform job {name} ended Failed" in message["Message"]
    # A batch transform job (start_batch_transform's) carries the stage's tags, not ml-platform:evaluates.
    aws["sagemaker"].create_model(
        ModelName="batch-model", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGES["knn"]}
    )
    aws["sagemaker"].create_transform_job(
        TransformJobName="batch-job",
        ModelName="batch-model",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{DATA}/batch-input/"}}
        },
        TransformOutput={"S3OutputPath": f"s3://{DATA}/batch-output/"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
        Tags=[{"Key": "ml-platform:stage", "Value": "dev"}, {"Key": "ml-platform:dataset", "Value": "car-evaluation"}],
    )
    ignored = register_model.handler(_transform_change("batch-job", "Completed"), None)
    assert ignored["status"] == "ignored" and "not a scoring step" in ignored["reason"]


@pytest.mark.parametrize("status", ["InProgress", "Stopping", "Deleting"])
def test_a_job_that_has_not_ended_is_ignored_without_a_lookup(register_model, aws, status, caplog):
    finished_job(aws, "car-run-9", "car-evaluation", {"test": {"accuracy": 0.99}})
    calls = []
    register_model.SAGEMAKER.meta.events.register("before-call.sagemaker", lambda model, **_: calls.append(model.name))
    with caplog.at_level("INFO"):
        result = register_model.handler(state_change("car-run-9", status), None)
    reason = f"training job car-run-9 is {status}, not ended (Completed, Failed or Stopped)"
    assert result == {"status": "ignored", "reason": reason}
    assert reason in caplog.text
    assert calls == [] and notifications(aws) == [] and packages(aws, "car-evaluation") == []


# EventBridge's own API call as CloudTrail delivers it to a bus: its source is aws.events too, as
# the schedule's is, but it is no Scheduled Event.
# https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-cloudtrail.html
EVENTBRIDGE_API_CALL = {
    "version": "0",
    "id": "36eb8523-97d0-4518-b33d-ee3579ff19f0",
    "detail-type": "AWS API Call via CloudTrail",
    "source": "aws.events",
    "account": ACCOUNT,
    "time": "2026-11-12T10:05:00Z",
    "region": REGION,
    "resources": [],
    "detail": {
        "eventVersion": "1.08",
        "eventTime": "2026-11-12T10:05:00Z",
        "eventSource": "events.amazonaws.com",
        "eventName": "PutRule",
        "awsRegion": REGION,
        "requestParameters": {"name": "register-model-schedule", "scheduleExpression": "rate(10 minutes)"},
    },
}


def _tuning_change(name: str, status: str) -> dict:
    event = state_change("unused", status)
    event["detail-type"] = "SageMaker HyperParameter Tuning Job State Change"
    event["detail"] = {"HyperParameterTuningJobName": name, "HyperParameterTuningJobStatus": status}
    return event


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (GLUE_EVENT, "not a SageMaker training, tuning or transform job state change: source 'aws.glue'"),
        (
            EVENTBRIDGE_API_CALL,
            "not a SageMaker training, tuning or transform job state change: source 'aws.events', "
            "detail-type 'AWS API Call via CloudTrail'",
        ),
        (
            changed(state_change("car-run-10", "Completed"), "detail.TrainingJobName", remove=True),
            "detail.TrainingJobName is missing",
        ),
        (
            changed(state_change("car-run-10", "Completed"), "detail.TrainingJobStatus", 3),
            "detail.TrainingJobStatus must be a string",
        ),
        (
            changed(
                state_change("car-run-10", "Completed"),
                "detail-type",
                "SageMaker HyperParameter Tuning Job State Change",
            ),
            "detail.HyperParameterTuningJobName is missing",
        ),
        (changed(_tuning_change("tune-1", "Failed"), "detail", []), "detail must be an object"),
        ("Completed", "not an EventBridge event"),
    ],
    ids=[
        "glue-event",
        "eventbridge-api-call",
        "no-name",
        "status-number",
        "training-detail-as-tuning",
        "detail-list",
        "text",
    ],
)
def test_an_event_register_model_does_not_understand_is_ignored_with_the_reason(
    register_model, aws, event, reason, caplog
):
    finished_job(aws, "car-run-10", "car-evaluation", {"test": {"accuracy": 0.99}})
    with caplog.at_level("INFO"):
        result = register_model.handler(event, None)
    assert result["status"] == "ignored" and reason in result["reason"], result
    assert reason in caplog.text
    assert notifications(aws) == [] and packages(aws, "car-evaluation") == []


def test_gate_directions(register_model):
    parsed = register_model.load_spec(
        json.dumps(spec("car-evaluation", objective_metric="accuracy", minimum=0.9, tolerance=0.0))
    )
    assert register_model.gate(parsed, 0.92, None).approved
    assert not register_model.gate(parsed, 0.92, 0.93).approved
    regression = json.loads((ROOT / "datasets" / "wine-quality.json").read_text())
    regression["target"] = {"column": "quality", "problem": "regression"}
    regression["training"] = {"objective_metric": "rmse", "minimum": 0.7, "tolerance": 0.05}
    parsed = register_model.load_spec(json.dumps(regression))
    assert register_model.gate(parsed, 0.6, 0.62).approved  # lower is better: 0.6 beats 0.62
    assert not register_model.gate(parsed, 0.75, None).approved
    assert "at most 0.7" in register_model.gate(parsed, 0.75, None).reason


# --- start_batch_transform -------------------------------------------------------------------------


@pytest.fixture
def start_batch_transform(aws, monkeypatch):
    module = load_function(
        "start_batch_transform",
        monkeypatch,
        SUBNETS=json.dumps(["subnet-a"]),
        DATASETS=json.dumps(["bank-marketing", "car-evaluation"]),
        TOPIC_ARN=aws["topic"],
    )
    sagemaker_as_aws(module.SAGEMAKER, aws["sagemaker"], ACCOUNT, REGION)
    return module


def approved_package(aws, dataset: str) -> str:
    return aws["sagemaker"].create_model_package(
        ModelPackageGroupName=f"{GROUP_PREFIX}-{dataset}",
        InferenceSpecification={
            "Containers": [
                {
                    "Image": IMAGES["xgboost"],
                    "ModelDataUrl": f"s3://{ARTIFACTS}/training/{dataset}/j/output/model.tar.gz",
                }
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelApprovalStatus="Approved",
    )["ModelPackageArn"]


def test_a_batch_file_is_transformed_by_the_latest_approved_model(start_batch_transform, aws):
    package = approved_package(aws, "car-evaluation")
    sent = {}  # the requests as boto3 sends them (moto does not echo every field back)
    start_batch_transform.SAGEMAKER.meta.events.register(
        "provide-client-params.sagemaker.CreateModel", lambda params, **_: sent.setdefault("CreateModel", params)
    )
    result = start_batch_transform.handler(object_created("batch-input/car-evaluation/cars-2026-11.csv"), None)
    assert result["status"] == "started" and result["model_package"] == package
    job = aws["sagemaker"].describe_transform_job(TransformJobName=result["job"])
    assert job["TransformInput"]["SplitType"] == "Line" and job["TransformInput"]["ContentType"] == "text/csv"
    source = job["TransformInput"]["DataSource"]["S3DataSource"]
    assert source["S3DataType"] == "ManifestFile"
    assert manifest_objects(aws["s3"], source["S3Uri"]) == [f"s3://{DATA}/batch-input/car-evaluation/cars-2026-11.csv"]
    output = f"s3://{DATA}/batch-output/car-evaluation/cars-2026-11.csv/{result['job']}/"
    assert job["TransformOutput"]["S3OutputPath"] == output
    assert source["S3Uri"] == output + "input.manifest"
    assert job["TransformOutput"]["KmsKeyId"] == KEY
    assert job["DataProcessing"]["JoinSource"] == "Input"
    model = aws["sagemaker"].describe_model(ModelName=job["ModelName"])
    assert model["ExecutionRoleArn"] == ROLE
    assert model["VpcConfig"] == {"SecurityGroupIds": ["sg-jobs"], "Subnets": ["subnet-a"]}
    assert sent["CreateModel"]["Containers"] == [{"ModelPackageName": package}]
    assert sent["CreateModel"]["EnableNetworkIsolation"] is True


@pytest.mark.parametrize("name", ["cars-2026-11.csv", "x" * 200 + ".csv", "---.csv"])
def test_a_transform_job_and_its_model_carry_the_platforms_prefix_within_sagemakers_limit(
    start_batch_transform, aws, name
):
    """Data scientists are denied transform jobs with models named like the platform's, so the
    name must start with the prefix whatever the file is called."""
    approved_package(aws, "car-evaluation")
    result = start_batch_transform.handler(object_created(f"batch-input/car-evaluation/{name}"), None)
    job = aws["sagemaker"].describe_transform_job(TransformJobName=result["job"])
    assert job["ModelName"] == result["job"]
    assert result["job"].startswith(GROUP_PREFIX + "-") and len(result["job"]) <= 63
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", result["job"]), result["job"]  # SageMaker's pattern


@pytest.mark.parametrize(
    ("key", "told"),
    [
        ("cars-2026-11.csv", "car-evaluation-cars-2026-11"),
        ("cars.2026-11.csv", "car-evaluation-cars-2026-11"),  # only the extension is left out
        ("2026/11/cars.csv", "car-evaluation-2026-11-cars"),
        # as much of the file's name as SageMaker's 63 characters leave beside the prefix and digest
        ("x" * 200 + ".csv", "car-evaluation-" + "x" * 20),
    ],
)
def test_a_transform_jobs_name_tells_operators_the_dataset_and_the_file_it_transforms(
    start_batch_transform, aws, key, told
):
    approved_package(aws, "car-evaluation")
    result = start_batch_transform.handler(object_created(f"batch-input/car-evaluation/{key}"), None)
    assert re.fullmatch(f"{GROUP_PREFIX}-{told}-[0-9a-f]+", result["job"]), result["job"]
    assert len(result["job"]) <= 63


def manifest_objects(s3, uri: str) -> list[str]:
    """The objects a transform job's manifest names, as SageMaker reads the documented format
    ``[{"prefix": "s3://bucket/prefix/"}, "relative/key", ...]``
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TransformS3DataSource.html)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    first, *relative = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return [first["prefix"] + name for name in relative]


def test_a_batch_file_is_read_alone_not_with_the_keys_it_is_a_prefix_of(start_batch_transform, aws):
    approved_package(aws, "car-evaluation")
    for key in ("batch-input/car-evaluation/cars.csv", "batch-input/car-evaluation/cars.csv.bak"):
        aws["s3"].put_object(Bucket=DATA, Key=key, Body=b"vhigh,vhigh,2,2,small,low\n")
    result = start_batch_transform.handler(object_created("batch-input/car-evaluation/cars.csv"), None)
    source = aws["sagemaker"].describe_transform_job(TransformJobName=result["job"])["TransformInput"]["DataSource"]
    assert source["S3DataSource"]["S3DataType"] == "ManifestFile"
    assert manifest_objects(aws["s3"], source["S3DataSource"]["S3Uri"]) == [
        f"s3://{DATA}/batch-input/car-evaluation/cars.csv"
    ]


def test_inputs_of_one_name_in_two_folders_are_written_where_neither_overwrites_the_other(start_batch_transform, aws):
    approved_package(aws, "car-evaluation")
    paths = {}
    for key, version in (("a/x.csv", "v1"), ("b/x.csv", "v1"), ("a/x.csv", "v2")):
        event = object_created(f"batch-input/car-evaluation/{key}", **{"version-id": version})
        job = start_batch_transform.handler(event, None)["job"]
        paths[key, version] = aws["sagemaker"].describe_transform_job(TransformJobName=job)["TransformOutput"][
            "S3OutputPath"
        ]
    assert paths["a/x.csv", "v1"].startswith(f"s3://{DATA}/batch-output/car-evaluation/a/x.csv/")
    assert paths["b/x.csv", "v1"].startswith(f"s3://{DATA}/batch-output/car-evaluation/b/x.csv/")
    # No output folder holds another: a, b, and a's second version each write their own.
    for one, other in itertools.permutations(paths.values(), 2):
        assert not one.startswith(other), (one, other)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (GLUE_EVENT, "not an S3 'Object Created' event: source 'aws.glue', detail-type 'Glue Job State Change'"),
        (changed(object_created(CARS_INPUT), "detail.bucket", remove=True), "detail.bucket is missing"),
        (changed(object_created(CARS_INPUT), "detail.object.key", 7), "detail.object.key must be a string"),
        (changed(object_created(CARS_INPUT), "id", None), "id must be a string"),
    ],
    ids=["glue-event", "no-bucket", "key-number", "id-null"],
)
def test_an_event_start_batch_transform_does_not_understand_is_ignored_with_the_reason(
    start_batch_transform, aws, event, reason, caplog
):
    approved_package(aws, "car-evaluation")
    with caplog.at_level("INFO"):
        result = start_batch_transform.handler(event, None)
    assert result["status"] == "ignored" and reason in result["reason"], result
    assert reason in caplog.text
    assert aws["sagemaker"].list_transform_jobs()["TransformJobSummaries"] == []


def test_a_repeated_batch_event_starts_one_transform(start_batch_transform, aws):
    approved_package(aws, "car-evaluation")
    first = start_batch_transform.handler(object_created("batch-input/car-evaluation/cars.csv"), None)
    second = start_batch_transform.handler(object_created("batch-input/car-evaluation/cars.csv"), None)
    assert second == {"status": "duplicate", "job": first["job"]}


def test_no_approved_model_means_no_job_and_a_message(start_batch_transform, aws, caplog):
    with caplog.at_level("WARNING"):
        result = start_batch_transform.handler(object_created("batch-input/bank-marketing/calls.csv"), None)
    assert result == {"status": "no-model", "dataset": "bank-marketing"}
    assert "No approved model for bank-marketing" in caplog.text
    [message] = notifications(aws)
    assert "was not transformed" in message["Message"]
    assert aws["sagemaker"].list_transform_jobs()["TransformJobSummaries"] == []


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("batch-input/iris/x.csv", "dataset 'iris' has no spec"),
        ("batch-input/loose.csv", "is directly under batch-input/"),
        ("batch-output/car-evaluation/x.csv.out", "batch-output/car-evaluation/x.csv.out is not under batch-input/"),
    ],
)
def test_other_batch_objects_are_ignored(start_batch_transform, key, reason):
    result = start_batch_transform.handler(object_created(key), None)
    assert result["status"] == "ignored" and reason in result["reason"]


def test_a_failed_job_of_another_team_is_not_reported(register_model, aws):
    finished_job(aws, "their-job", "car-evaluation", {"test": {}}, stage="someone-else")
    assert register_model.handler(state_change("their-job", "Failed"), None)["status"] == "ignored"
    assert notifications(aws) == []


def test_a_failed_tuning_job_reaches_the_operators(register_model, start_training, aws):
    started = start_training.handler(object_created(f"prepared/bank-marketing/{RUN}/_SUCCESS"), None)
    event = state_change("unused", "Failed")
    event["detail-type"] = "SageMaker HyperParameter Tuning Job State Change"
    event["detail"] = {"HyperParameterTuningJobName": started["job"], "HyperParameterTuningJobStatus": "Failed"}
    result = register_model.handler(event, None)
    assert result["status"] == "notified" and result["job"] == started["job"]
    [message] = notifications(aws)
    assert f"Tuning job {started['job']} ended Failed" in message["Message"]


def _tuning_job(aws, client, name: str, dataset: str, trials: dict[str, float], best: str | None) -> None:
    """A tuning job as start_training starts it, Completed after ``trials`` (its training jobs and
    their test AUC), each tagged and with its output.tar.gz as SageMaker leaves them. ``client``
    (the handler's) is answered as SageMaker answers: DescribeHyperParameterTuningJob names ``best``
    as the BestTrainingJob, and has none when None (no trial completed); DescribeTrainingJob names
    the tuning job that launched the trial (moto names a fixed best job, and no tuning job).
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeHyperParameterTuningJob.html"""
    from moto.sagemaker.models import sagemaker_backends

    arn = aws["sagemaker"].create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 12, "MaxParallelTrainingJobs": 3},
        },
        TrainingJobDefinition={
            "AlgorithmSpecification": {"TrainingImage": IMAGES["xgboost"], "TrainingInputMode": "File"},
            "RoleArn": ROLE,
            "OutputDataConfig": {"S3OutputPath": f"s3://{ARTIFACTS}/training/{dataset}/"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        },
        Tags=[
            {"Key": "ml-platform:stage", "Value": "dev"},
            {"Key": "ml-platform:dataset", "Value": dataset},
            {"Key": "ml-platform:run", "Value": RUN},
        ],
    )["HyperParameterTuningJobArn"]
    for trial, auc in trials.items():
        finished_job(aws, trial, dataset, {"test": {"auc": auc, "accuracy": 0.9, "threshold": 0.4}})
    job = sagemaker_backends[ACCOUNT][REGION].hyper_parameter_tuning_jobs[name]
    job.creation_time = datetime(2026, 11, 12, 8, 30, tzinfo=UTC)
    job.hyper_parameter_tuning_end_time = datetime(2026, 11, 12, 10, 0, tzinfo=UTC)
    if best is None:

        def no_best(parsed, **_):
            for field in ("BestTrainingJob", "OverallBestTrainingJob"):
                parsed.pop(field, None)

        client.meta.events.register("after-call.sagemaker.DescribeHyperParameterTuningJob", no_best)
    else:
        best_arn = f"{SAGEMAKER_ARN}:training-job/{best}"
        job.best_training_job |= {"TrainingJobName": best, "TrainingJobArn": best_arn, "TuningJobName": name}
    _described_with(client, TuningJobArn=arn)


def test_a_completed_tuning_job_registers_its_best_training_jobs_model(register_model, aws, capsys):
    trials = {"bank-tune-001": 0.91, "bank-tune-002": 0.95, "bank-tune-003": 0.93}
    _tuning_job(aws, register_model.SAGEMAKER, "bank-tune", "bank-marketing", trials, best="bank-tune-002")
    # A trial's own end is the tuning job's to judge: it registers nothing.
    ignored = register_model.handler(state_change("bank-tune-002", "Completed"), None)
    assert ignored["status"] == "ignored" and "belongs to a tuning job" in ignored["reason"]
    assert packages(aws, "bank-marketing") == [] and _metrics(capsys.readouterr().out) == []

    result = register_model.handler(_tuning_change("bank-tune", "Completed"), None)
    assert result["status"] == "approved"
    [package] = packages(aws, "bank-marketing")
    assert result["model_package"] == package["ModelPackageArn"]
    assert package["ModelPackageDescription"] == "Approved: test auc 0.9500 passes the gate; first approved model"
    metadata = package["CustomerMetadataProperties"]
    assert (metadata["training_job"], metadata["objective_value"], metadata["run_id"]) == (
        "bank-tune-002",
        "0.950000",
        RUN,
    )
    [container] = package["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == f"s3://{ARTIFACTS}/training/bank-marketing/bank-tune-002/output/model.tar.gz"
    # The dashboard counts the tuning job once, for as long as it ran (08:30 to 10:00).
    job, _verdict = _metrics(capsys.readouterr().out)
    assert (job["TrainingJobs"], job["TrainingJobsFailed"], job["TrainingSeconds"]) == (1.0, 0.0, 5400.0)
    assert register_model.handler(_tuning_change("bank-tune", "Completed"), None) == {
        "status": "duplicate",
        "model_package": package["ModelPackageArn"],
    }


def test_a_completed_tuning_job_none_of_whose_trials_completed_reaches_the_operators(register_model, aws):
    _tuning_job(aws, register_model.SAGEMAKER, "bank-tune", "bank-marketing", {"bank-tune-001": 0.95}, best=None)
    result = register_model.handler(_tuning_change("bank-tune", "Completed"), None)
    assert result == {
        "status": "notified",
        "job": "bank-tune",
        "job_status": "Completed",
        "reason": "no training job of it completed",
    }
    [message] = notifications(aws)
    assert message["Message"].startswith("Tuning job bank-tune ended Completed: no training job of it completed.")
    assert packages(aws, "bank-marketing") == []


def test_with_manual_approval_a_passing_model_waits_for_a_person(register_model, aws, monkeypatch):
    monkeypatch.setattr(
        register_model,
        "SETTINGS",
        dataclasses.replace(register_model.SETTINGS, pass_status="PendingManualApproval"),
    )
    finished_job(aws, "car-run-8", "car-evaluation", {"test": {"accuracy": 0.97, "macro_f1": 0.9}})
    result = register_model.handler(state_change("car-run-8", "Completed"), None)
    assert result["status"] == "pending-approval"
    [package] = packages(aws, "car-evaluation")
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert package["ModelPackageDescription"].startswith("Passed the gate, awaiting approval: test accuracy 0.9700")


# --- start_batch_transform: SageMaker's refusals, decided by code and a second look at the job -----

CARS = "batch-input/car-evaluation/cars.csv"


@pytest.mark.parametrize(
    "not_found",
    [
        lambda name: transform_job_not_found(name).reworded(),
        lambda name: AwsError("ResourceNotFound", f"Transform job {name} does not exist."),  # the documented code
    ],
    ids=["other-wording", "ResourceNotFound"],
)
def test_a_transform_job_sagemaker_does_not_have_is_started(start_batch_transform, aws, not_found):
    approved_package(aws, "car-evaluation")
    answers = Answers.of(start_batch_transform.SAGEMAKER)
    answers.on("DescribeTransformJob", lambda p: not_found(p["TransformJobName"]))
    assert start_batch_transform.handler(object_created(CARS), None)["status"] == "started"


@pytest.mark.parametrize("reworded", [False, True], ids=["aws-wording", "other-wording"])
def test_a_transform_job_another_delivery_started_first_is_a_duplicate(start_batch_transform, aws, reworded):
    approved_package(aws, "car-evaluation")
    answers = Answers.of(start_batch_transform.SAGEMAKER)
    model_rule, job_rule = answers.rules["CreateModel"], answers.rules["CreateTransformJob"]

    def reword(error):
        return error.reworded() if reworded and error else error

    racing(answers, "CreateModel", lambda p: aws["sagemaker"].create_model(**p), lambda p: reword(model_rule(p)))
    racing(
        answers,
        "CreateTransformJob",
        lambda p: aws["sagemaker"].create_transform_job(**p),
        lambda p: reword(job_rule(p)),
    )
    result = start_batch_transform.handler(object_created(CARS), None)
    assert result["status"] == "duplicate"
    assert len(aws["sagemaker"].list_transform_jobs()["TransformJobSummaries"]) == 1


@pytest.mark.parametrize("reworded", [False, True], ids=["aws-wording", "other-wording"])
def test_a_model_left_by_a_delivery_that_died_before_its_job_is_used(start_batch_transform, aws, reworded):
    """CreateModel refused: the model of this object and package exists, its job does not."""
    approved_package(aws, "car-evaluation")
    answers = Answers.of(start_batch_transform.SAGEMAKER)

    def refusal(params):
        exists = model_exists(f"{SAGEMAKER_ARN}:model/{params['ModelName'].lower()}")
        return exists.reworded() if reworded else exists

    racing(answers, "CreateModel", lambda p: aws["sagemaker"].create_model(**p), refusal)
    result = start_batch_transform.handler(object_created(CARS), None)
    assert result["status"] == "started"
    job = aws["sagemaker"].describe_transform_job(TransformJobName=result["job"])
    assert job["ModelName"] == result["job"]


def test_a_model_refused_for_another_reason_fails_the_job_and_is_named_as_the_cause(start_batch_transform, aws):
    approved_package(aws, "car-evaluation")
    refusal = AwsError("ValidationException", "Subnet subnet-a does not exist.")
    Answers.of(start_batch_transform.SAGEMAKER).on("CreateModel", always(refusal))
    with pytest.raises(ClientError) as raised:
        start_batch_transform.handler(object_created(CARS), None)
    assert raised.value.operation_name == "CreateTransformJob"  # no model: SageMaker refuses the job
    assert raised.value.__cause__.operation_name == "CreateModel"
    assert raised.value.__cause__.response["Error"]["Message"] == refusal.message
    assert aws["sagemaker"].list_transform_jobs()["TransformJobSummaries"] == []


def test_a_transform_job_name_taken_by_another_input_is_raised(start_batch_transform, aws):
    approved_package(aws, "car-evaluation")

    def someone_else(params):
        source = {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{DATA}/batch-input/other.csv"}}
        aws["sagemaker"].create_transform_job(
            **{**params, "TransformInput": {**params["TransformInput"], "DataSource": source}}
        )

    racing(Answers.of(start_batch_transform.SAGEMAKER), "CreateTransformJob", someone_else)
    with pytest.raises(ClientError, match="ResourceInUse"):
        start_batch_transform.handler(object_created(CARS), None)


def test_a_transform_job_name_taken_by_a_job_of_another_model_is_raised(start_batch_transform, aws):
    """The job of our name reads this object's manifest, but runs a model other than ours."""
    approved_package(aws, "car-evaluation")

    def someone_else(params):
        aws["sagemaker"].create_model(
            ModelName="data-science-model", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGES["xgboost"]}
        )
        aws["sagemaker"].create_transform_job(**{**params, "ModelName": "data-science-model"})

    racing(Answers.of(start_batch_transform.SAGEMAKER), "CreateTransformJob", someone_else)
    with pytest.raises(ClientError, match="ResourceInUse"):
        start_batch_transform.handler(object_created(CARS), None)


def test_a_transform_job_refused_while_no_job_has_the_name_is_raised(start_batch_transform, aws):
    approved_package(aws, "car-evaluation")
    refusal = transform_job_name_taken(f"{SAGEMAKER_ARN}:transform-job/whatever")
    Answers.of(start_batch_transform.SAGEMAKER).on("CreateTransformJob", always(refusal))
    with pytest.raises(ClientError, match="ResourceInUse"):
        start_batch_transform.handler(object_created(CARS), None)


# --- Autopilot: no event ends an AutoML job; register_model's schedule finds it ------------------


def _tick(time: str = "2026-11-12T10:10:00Z") -> dict:
    """What register_model's schedule sends (EventBridge's Scheduled Event).
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-run-lambda-schedule.html"""
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time,
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/register-model-schedule"],
        "detail": {},
    }


def _automl_job(aws, name: str, status: str, stage: str = "dev", containers: list[dict] | None = None) -> str:
    """An AutoML job as start_training starts it, ended as ``status`` with a best candidate (of
    ``containers``, one AutoGluon container unless told)."""
    from moto.sagemaker.models import sagemaker_backends

    view = f"s3://{DATA}/prepared/car-evaluation/{RUN}/autopilot/"
    arn = aws["sagemaker"].create_auto_ml_job_v2(
        AutoMLJobName=name,
        AutoMLJobInputDataConfig=[
            {
                "ChannelType": kind,
                "ContentType": "text/csv;header=present",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": view + split}},
            }
            for kind, split in (("training", "train/"), ("validation", "validation/"))
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{ARTIFACTS}/training/car-evaluation/", "KmsKeyId": KEY},
        AutoMLProblemTypeConfig={
            "TabularJobConfig": {
                "ProblemType": "MulticlassClassification",
                "TargetAttributeName": "class",
                "CompletionCriteria": {"MaxCandidates": 2, "MaxRuntimePerTrainingJobInSeconds": 600},
            }
        },
        AutoMLJobObjective={"MetricName": "Accuracy"},
        RoleArn=ROLE,
        Tags=[
            {"Key": "ml-platform:stage", "Value": stage},
            {"Key": "ml-platform:dataset", "Value": "car-evaluation"},
            {"Key": "ml-platform:run", "Value": RUN},
        ],
    )["AutoMLJobArn"]
    job = sagemaker_backends[ACCOUNT][REGION].auto_ml_jobs[name]
    job.auto_ml_job_status = status
    job.failure_reason = "" if status == "Completed" else "ClientError: the target column has one value"
    job.partial_failure_reasons = []
    job.best_candidate = {
        "CandidateName": "best-candidate",
        "FinalAutoMLJobObjectiveMetric": {"MetricName": "Accuracy", "Value": 0.97},
        "InferenceContainers": containers
        or [{"Image": "autogluon-inference:1", "ModelDataUrl": f"s3://{ARTIFACTS}/m.tar.gz", "Environment": {}}],
        "CandidateProperties": {"CandidateArtifactLocations": {"Explainability": f"s3://{ARTIFACTS}/explain/"}},
    }
    for split in ("validation", "test"):
        aws["s3"].put_object(
            Bucket=DATA, Key=f"prepared/car-evaluation/{RUN}/autopilot/scoring/{split}/part-0.csv", Body=b"unacc,low\n"
        )
    return arn


def test_the_schedule_scores_a_completed_automl_jobs_best_candidate_once(register_model, aws):
    arn = _automl_job(aws, "car-automl", "Completed")
    first = register_model.handler(_tick(), None)
    [scoring] = first["handled"]
    assert first["status"] == "polled" and scoring["status"] == "scoring"
    sagemaker = aws["sagemaker"]
    job = sagemaker.describe_transform_job(TransformJobName=scoring["job"])
    assert job["TransformOutput"]["Accept"] == "text/csv" and job["DataProcessing"]["InputFilter"] == "$[1:]"
    model = sagemaker.describe_model(ModelName=job["ModelName"])
    containers = model.get("Containers") or [model["PrimaryContainer"]]
    assert containers[-1]["Environment"]["SAGEMAKER_INFERENCE_OUTPUT"] == "probabilities,labels"
    manifest = "training/car-evaluation/car-automl/scores.manifest"
    listed = json.loads(aws["s3"].get_object(Bucket=ARTIFACTS, Key=manifest)["Body"].read())
    assert listed == [
        {"prefix": f"s3://{DATA}/prepared/car-evaluation/{RUN}/autopilot/scoring/"},
        "validation/part-0.csv",
        "test/part-0.csv",
    ]
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=job["TransformJobArn"])["Tags"]}
    assert tags["ml-platform:evaluates"] == "automl-job/car-automl"
    handled = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn)["Tags"]}
    assert handled["ml-platform:handled"] == "Completed"
    assert register_model.handler(_tick(), None) == {"status": "polled", "handled": []}


def test_a_failed_automl_job_reaches_the_operators_once_and_another_stages_job_not_at_all(register_model, aws):
    _automl_job(aws, "car-automl-failed", "Failed")
    _automl_job(aws, "car-automl-prod", "Failed", stage="prod")
    [notified] = register_model.handler(_tick(), None)["handled"]
    assert notified["status"] == "notified" and notified["job"] == "car-automl-failed"
    assert "the target column has one value" in notified["reason"]
    assert register_model.handler(_tick(), None)["handled"] == []
    [message] = notifications(aws)
    assert "AutoML job car-automl-failed ended Failed" in message["Message"]


def test_the_schedule_looks_back_one_day_for_ended_automl_jobs(register_model, aws):
    """An AutoML job last changed more than a day before the tick is no longer looked for."""
    from moto.sagemaker.models import sagemaker_backends

    jobs = sagemaker_backends[ACCOUNT][REGION].auto_ml_jobs
    for name, changed_at in (
        ("car-automl-25h", datetime(2026, 11, 11, 9, 10)),
        ("car-automl-23h", datetime(2026, 11, 11, 11, 10)),
    ):
        _automl_job(aws, name, "Failed")
        jobs[name].last_modified_time = changed_at  # UTC, as moto keeps it
    [notified] = register_model.handler(_tick("2026-11-12T10:10:00Z"), None)["handled"]
    assert notified["job"] == "car-automl-23h"
    [message] = notifications(aws)
    assert "AutoML job car-automl-23h ended Failed" in message["Message"]


# What an AutoML job's best candidate of hyperparameter-tuning mode serves with: the feature
# transformer, the algorithm, the inverse label transformer (AWS's example of these containers).
# https://docs.aws.amazon.com/sagemaker/latest/dg/autopilot-automate-model-development-container-output.html
AUTOPILOT_HPO_CONTAINERS = [
    {
        "Image": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-sklearn-automl:2.5-1-cpu-py3",
        "ModelDataUrl": f"s3://{ARTIFACTS}/training/car-evaluation/car-automl-hpo/data-processor-models/dpp0/model.tar.gz",
        "Environment": {
            "AUTOML_TRANSFORM_MODE": "feature-transform",
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/x-recordio-protobuf",
            "SAGEMAKER_PROGRAM": "sagemaker_serve",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        },
    },
    {
        "Image": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1-cpu-py3",
        "ModelDataUrl": f"s3://{ARTIFACTS}/training/car-evaluation/car-automl-hpo/tuning/dpp0-xgboost/model.tar.gz",
        "Environment": {
            "MAX_CONTENT_LENGTH": "20971520",
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
            "SAGEMAKER_INFERENCE_OUTPUT": "predicted_label",
            "SAGEMAKER_INFERENCE_SUPPORTED": "predicted_label,probability,probabilities",
        },
    },
    {
        "Image": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-sklearn-automl:2.5-1-cpu-py3",
        "ModelDataUrl": f"s3://{ARTIFACTS}/training/car-evaluation/car-automl-hpo/data-processor-models/dpp0/model.tar.gz",
        "Environment": {
            "AUTOML_TRANSFORM_MODE": "inverse-label-transform",
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
            "SAGEMAKER_INFERENCE_INPUT": "predicted_label",
            "SAGEMAKER_INFERENCE_OUTPUT": "predicted_label",
            "SAGEMAKER_INFERENCE_SUPPORTED": "predicted_label,probability,labels,probabilities",
            "SAGEMAKER_PROGRAM": "sagemaker_serve",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        },
    },
]


def test_an_automl_candidate_of_three_containers_answers_every_class_probability_and_the_labels(register_model, aws):
    """The algorithm hands the inverse label transformer the probabilities and labels, which hands them on."""
    _automl_job(aws, "car-automl-hpo", "Completed", containers=AUTOPILOT_HPO_CONTAINERS)
    [scoring] = register_model.handler(_tick(), None)["handled"]
    model = aws["sagemaker"].describe_model(ModelName=scoring["job"])
    told = "probabilities,labels"
    features, algorithm, labels = (c["Environment"] for c in AUTOPILOT_HPO_CONTAINERS)
    assert [c["Environment"] for c in model["Containers"]] == [
        features,
        algorithm | {"SAGEMAKER_INFERENCE_OUTPUT": told},
        labels | {"SAGEMAKER_INFERENCE_INPUT": told, "SAGEMAKER_INFERENCE_OUTPUT": told},
    ]
    assert [c["Image"] for c in model["Containers"]] == [c["Image"] for c in AUTOPILOT_HPO_CONTAINERS]


def test_a_scheduled_event_without_a_time_is_ignored_with_the_reason(register_model, aws):
    event = _tick()
    del event["time"]
    result = register_model.handler(event, None)
    assert result["status"] == "ignored" and "time" in result["reason"]


def _metrics(captured: str) -> list[dict]:
    """The embedded-metric-format records a handler wrote to its log (standard output)."""
    return [json.loads(line) for line in captured.splitlines() if line.startswith('{"_aws"')]


def test_the_dashboard_hears_of_each_model_job_and_each_verdict(register_model, aws, capsys):
    finished_job(aws, "car-run-8", "car-evaluation", {"test": {"accuracy": 0.91, "macro_f1": 0.8}})
    register_model.handler(state_change("car-run-8", "Completed"), None)
    job, verdict = _metrics(capsys.readouterr().out)
    assert (job["Stage"], job["Dataset"], job["TrainingJobs"], job["TrainingJobsFailed"]) == (
        "dev",
        "car-evaluation",
        1.0,
        0.0,
    )
    assert verdict["ModelsRejected"] == 1 and "ModelsPassed" not in verdict
    finished_job(aws, "car-run-9", "car-evaluation", {"test": {}})
    register_model.handler(state_change("car-run-9", "Failed"), None)
    [failed] = _metrics(capsys.readouterr().out)
    assert failed["TrainingJobsFailed"] == 1.0
