"""The platform end to end on the local twin, from the dev stage's real cloud assembly.

One twin for the module. Every event it emits is delivered twice and pending work runs out of
order, so each scenario also proves the idempotency the handlers promise. The chain runs once
on bank marketing (the shipped spec trains through a tuning job); the other scenarios run on the
same twin afterwards, on other datasets.
"""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from local.platform import Twin
from local.scenario import LABELLED_REQUESTS, Scenario, dataset_spec, raw_records
from local.trace import acting_as
from tests.conftest import RAW_FILES, running_twin

DATASET = "bank-marketing"


@pytest.fixture(scope="module")
def twin(dev, spark, tmp_path_factory):
    with running_twin(dev.outdir, tmp_path_factory.mktemp("twin"), duplicate_events=True, shuffle_seed=11) as twin:
        yield twin


@pytest.fixture(scope="module")
def chain_and_proof(twin):
    """The chain on bank marketing, and the permission proof of what it asked, before other tests add calls."""
    from permissions.proof import Proof

    run = Scenario(twin, DATASET, RAW_FILES[DATASET]).execute()
    return run, Proof.of(twin).evaluate(), len(twin.trace.entries)


@pytest.fixture(scope="module")
def chain(chain_and_proof):
    return chain_and_proof[0]


@pytest.fixture(scope="module")
def proof(chain_and_proof):
    return chain_and_proof[1]


def _group(twin: Twin, dataset: str) -> str:
    return next(
        p["ModelPackageGroupName"]
        for p in twin.stack("Training").applied.values()
        if p.get("ModelPackageGroupName", "").endswith("-" + dataset)
    )


def _live(twin: Twin) -> dict:
    """The package the hosting stack serves."""
    with acting_as("twin"):
        arn = twin.stack(f"Hosting-{DATASET}").parameters["ModelPackageArn"]
        return twin.client("sagemaker").describe_model_package(ModelPackageName=arn)


def _packages(twin: Twin, dataset: str) -> list[dict]:
    with acting_as("twin"):
        sagemaker = twin.client("sagemaker")
        summaries = sagemaker.list_model_packages(ModelPackageGroupName=_group(twin, dataset))[
            "ModelPackageSummaryList"
        ]
        return [sagemaker.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries]


def _topic(twin: Twin) -> str:
    return twin.resource("Data", "OperatorTopic", "AWS::SNS::Topic")


def _successful(twin: Twin, operation: str) -> list[dict]:
    return [c for c in twin.trace.calls(operation=operation) if c["error"] is None and c["principal"] != "twin"]


def _invocations(twin: Twin, fragment: str) -> list[dict]:
    return [e for e in twin.trace.of("invoke") if fragment in e["function"]]


def test_bank_marketing_runs_from_upload_to_prediction_and_batch_output(chain):
    report = chain.report()
    assert [(s["name"], s["status"]) for s in report["steps"]] == [
        ("upload", "ok"),
        ("prepare", "ok"),
        ("train", "ok"),
        ("register", "ok"),
        ("roll out", "ok"),
        ("predict", "ok"),
        ("batch transform", "ok"),
        ("model quality", "ok"),
        ("drift", "ok"),
    ], report["failures"]
    assert report["model_package_status"] == "Approved"
    assert report["gate"].startswith("Approved: test auc 0.9")
    assert 0.0 <= report["prediction"]["probability"] <= 1.0 and report["prediction"]["label"] in ("yes", "no")
    assert report["batch_output_rows"] == 20


def test_the_preparation_job_writes_its_success_marker_last(twin, chain):
    prefix = chain.outputs["prepared"].removeprefix("s3://").partition("/")[2]
    written = [c["params"]["Key"] for c in _successful(twin, "PutObject") if c["params"]["Key"].startswith(prefix)]
    assert {k.rsplit("/", 1)[-1] for k in written} >= {"_SUCCESS", "schema.json", "report.json"}
    assert written[-1] == prefix + "_SUCCESS" and written.count(prefix + "_SUCCESS") == 1


def test_the_tuning_job_runs_every_training_job_and_its_best_is_registered(twin, chain):
    """One tuning job per prepared run (the upload's, and the retraining's after drift)."""
    tunings = [e for e in twin.trace.of("job", job_type="tuning") if e["status"] == "Completed"]
    children = [e for e in twin.trace.of("job", job_type="training") if e["status"] == "Completed"]
    assert len(tunings) == 2 and len(children) == 24 and all(e["tuning"] for e in children)
    registered = {p["CustomerMetadataProperties"]["training_job"] for p in _packages(twin, DATASET)}
    for tuning in tunings:
        own = [e for e in children if e["tuning"].endswith(f"/{tuning['job']}")]
        best = max(own, key=lambda e: e["metrics"]["validation:auc"])
        assert len(own) == 12 and tuning["best"] == best["job"] and best["job"] in registered
    # The children's own state-change events reach register_model, which leaves them to the tuning job.
    ignored = [e for e in _invocations(twin, "RegisterModel") if (e.get("result") or {}).get("status") == "ignored"]
    assert len(ignored) >= 24


def _outcomes(twin: Twin, fragment: str) -> list[dict]:
    """What a function logged it did with each event it was given (its ``outcome`` log field)."""
    return [r["outcome"] for e in _invocations(twin, fragment) for r in e.get("logs", []) if "outcome" in r]


def test_every_event_delivered_twice_starts_one_run_one_tuning_job_and_one_package(twin, chain):
    """Per snapshot of raw/: the upload's, and the drifted data's (which check_drift started; both
    deliveries of its upload's event find it claimed)."""
    etl = [outcome["status"] for outcome in _outcomes(twin, "StartEtl")]
    assert sorted(etl) == ["duplicate", "duplicate", "duplicate", "started"]
    assert len(_successful(twin, "StartJobRun")) == 2
    assert len(_successful(twin, "CreateHyperParameterTuningJob")) == 2
    assert len(_successful(twin, "CreateModelPackage")) == 2
    assert len(_packages(twin, DATASET)) == 2
    assert len(_successful(twin, "UpdateStack")) == 2


def test_the_endpoint_serves_the_approved_package_from_its_own_model_archive(twin, chain):
    package = _live(twin)
    stack = twin.stack(f"Hosting-{DATASET}")
    assert stack.status == "UPDATE_COMPLETE"
    assert stack.parameters["ModelPackageArn"] == package["ModelPackageArn"]
    # The model is named <endpoint>-<package version>: the platform's prefix, a new name per package.
    config = twin.client("sagemaker").describe_endpoint_config(
        EndpointConfigName=twin.client("sagemaker").describe_endpoint(EndpointName=chain.outputs["endpoint"])[
            "EndpointConfigName"
        ]
    )
    [variant] = config["ProductionVariants"]
    assert variant["ModelName"] == f"{chain.outputs['endpoint']}-{package['ModelPackageVersion']}"
    container = twin.hosting.endpoints[chain.outputs["endpoint"]]
    # The inference code is the copy inside model.tar.gz (code/), not the repository's.
    assert (container.model_dir / "code" / "inference.py").is_file()
    assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"].endswith("/output/model.tar.gz")
    record = raw_records(RAW_FILES[DATASET], twin, DATASET)[0]
    with acting_as("application"):
        answer = twin.client("sagemaker-runtime").invoke_endpoint(
            EndpointName=chain.outputs["endpoint"], ContentType="text/csv", Accept="text/csv", Body=record
        )
    probability, label = answer["Body"].read().decode().strip().split(",")
    assert 0.0 <= float(probability) <= 1.0 and label in ("yes", "no")


def test_the_model_goes_live_with_its_baseline_and_the_schedule_compares_against_it(twin, chain):
    """The approval started the package's baseline job on its run's baseline/; its end set both
    parameters in one update, and the stack then created the schedule on the baseline (for each
    model: the first, and the one retrained after drift)."""
    package = _live(twin)
    stack = twin.stack(f"Hosting-{DATASET}")
    job = f"{chain.outputs['endpoint']}-baseline-{package['ModelPackageVersion']}"
    described = twin.client("sagemaker").describe_processing_job(ProcessingJobName=job)
    assert described["ProcessingJobStatus"] == "Completed"
    [source] = described["ProcessingInputs"]
    run = package["CustomerMetadataProperties"]["run_id"]
    assert source["S3Input"]["S3Uri"] == f"s3://{_bucket(twin)}/prepared/{DATASET}/{run}/baseline/"
    baseline = stack.parameters["BaselineUri"]
    assert baseline == described["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] + "/"
    bucket, prefix = baseline.removeprefix("s3://").split("/", 1)
    constraints = json.loads(
        twin.client("s3").get_object(Bucket=bucket, Key=prefix + "constraints.json")["Body"].read()
    )
    assert len(constraints["features"]) == len(dataset_spec(twin, DATASET)["features"])
    updates = [e for e in twin.trace.entries if e["kind"] == "stack" and e["stack"] == stack.name]
    assert [e["status"] for e in updates].count("UPDATE_COMPLETE") == 2  # each model with its baseline
    [schedule] = [s for n, s in twin.monitoring.schedules.items() if n.endswith("-data-quality")]
    assert schedule["EndpointName"] == chain.outputs["endpoint"]
    [definition] = [d for d in twin.monitoring.definitions.values() if "DataQualityBaselineConfig" in d]
    assert definition["DataQualityBaselineConfig"]["ConstraintsResource"]["S3Uri"] == baseline + "constraints.json"
    # The model-quality job reads the answers at the live model's own threshold, set in the same update.
    [quality] = [d for d in twin.monitoring.definitions.values() if "ModelQualityJobInput" in d]
    threshold = quality["ModelQualityJobInput"]["EndpointInput"]["ProbabilityThresholdAttribute"]
    with acting_as("twin"):
        package = twin.client("sagemaker").describe_model_package(ModelPackageName=stack.parameters["ModelPackageArn"])
    recorded = package["CustomerMetadataProperties"]["decision_threshold"]
    assert str(threshold) == stack.parameters["DecisionThreshold"] == recorded


def test_the_endpoint_captures_each_request_as_sagemaker_documents_it(twin, chain):
    """JSON lines under capture/<dataset>/<endpoint>/AllTraffic/<yyyy>/<mm>/<dd>/<hh>/, written as
    the model's role under the platform key."""
    endpoint = chain.outputs["endpoint"]
    bucket = _bucket(twin)
    keys = [
        item["Key"]
        for item in twin.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"capture/{DATASET}/")["Contents"]
    ]
    layout = rf"capture/{DATASET}/{endpoint}/AllTraffic/\d{{4}}/\d\d/\d\d/\d\d/[^/]+\.jsonl"
    assert keys and all(re.fullmatch(layout, key) for key in keys)
    head = twin.client("s3").head_object(Bucket=bucket, Key=keys[0])
    assert head["ServerSideEncryption"] == "aws:kms"
    [record] = twin.client("s3").get_object(Bucket=bucket, Key=keys[0])["Body"].read().decode().splitlines()
    captured = json.loads(record)
    assert captured["eventVersion"] == "0" and set(captured["eventMetadata"]) == {"eventId", "inferenceTime"}
    request, answer = captured["captureData"]["endpointInput"], captured["captureData"]["endpointOutput"]
    assert (request["mode"], request["encoding"], request["observedContentType"]) == ("INPUT", "CSV", "text/csv")
    assert answer["mode"] == "OUTPUT" and answer["encoding"] in ("CSV", "JSON")
    sagemaker = twin.client("sagemaker")
    config = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    [variant] = sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    role = sagemaker.describe_model(ModelName=variant["ModelName"])["ExecutionRoleArn"]
    puts = [c for c in twin.trace.calls() if c["operation"] == "PutObject" and c["error"] is None]
    assert {c["principal"] for c in puts if c["params"]["Key"].startswith("capture/")} == {role}


def test_drifted_traffic_reaches_the_operators_and_new_data_retrains(twin, chain):
    """The schedule's run on drifted traffic: check_drift's message names the features, the drift
    alarm tells the topic, and the new labelled data's run (started by check_drift; start_etl's
    event for the same upload finds it claimed) puts a retrained model live with its own baseline."""
    drift = chain.drift
    assert {"age", "duration", "campaign"} <= set(drift["features"])
    assert "- age: baseline_drift_check" in drift["message"] and "Runbook: docs/runbook.md#drift" in drift["message"]
    alarms = [json.loads(m) for s, m in twin.topic_messages(_topic(twin)) if s and s.startswith('ALARM: "')]
    [alarm] = [a for a in alarms if a["AlarmName"] == f"{chain.outputs['endpoint']}-drift"]
    assert alarm["NewStateValue"] == "ALARM" and alarm["Trigger"]["MetricName"] == "DriftedFeatures"
    retraining = drift["retraining"]
    assert retraining["status"] == "started"
    run_id = retraining["run_id"]
    claim = json.loads(
        twin.client("s3").get_object(Bucket=_bucket(twin), Key=f"prepared/{DATASET}/{run_id}/_RUN.json")["Body"].read()
    )
    assert claim["started_by"] == "check_drift" and claim["job_run_id"] == retraining["job_run_id"]
    etl = [o for o in _outcomes(twin, "StartEtl") if o.get("run_id") == run_id]
    assert etl and {o["status"] for o in etl} == {"duplicate"}
    stack = twin.stack(f"Hosting-{DATASET}")
    assert stack.parameters["ModelPackageArn"] == drift["live"] != chain.outputs["model_package"]
    version = drift["live"].rsplit("/", 1)[-1]
    assert stack.parameters["BaselineUri"].endswith(f"-baseline-{version}/")
    # The first model's definition was replaced.
    [definition] = [d for d in twin.monitoring.definitions.values() if "DataQualityBaselineConfig" in d]
    statistics = definition["DataQualityBaselineConfig"]["StatisticsResource"]["S3Uri"]
    assert statistics == stack.parameters["BaselineUri"] + "statistics.json"


def test_labelled_traffic_gives_the_live_models_quality(twin, chain):
    """Requests with an InferenceId, their labels under ground-truth/, the model-quality run: every
    labelled prediction is joined, check_drift publishes the run's auc, and the alarm leaves
    INSUFFICIENT_DATA for the state the value gives (the operators hear either)."""
    quality = chain.quality
    assert quality["metric"] == "auc" and quality["model_package"] == chain.outputs["model_package"]
    endpoint = chain.outputs["endpoint"]
    reports = [
        e["outputs"][0]
        for e in twin.trace.entries
        if e["kind"] == "job" and e.get("job") == quality["job"] and e.get("status") == "Completed"
    ]
    bucket, key = reports[0].removeprefix("s3://").split("/", 1)
    assert f"/reports/{endpoint}/{endpoint}-model-quality/" in key and key.endswith("/statistics.json")
    with acting_as("twin"):
        statistics = json.loads(twin.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert statistics["dataset"]["item_count"] == LABELLED_REQUESTS  # each labelled prediction joined
    metrics = statistics["binary_classification_metrics"]
    assert metrics["auc"]["value"] == quality["value"] and set(metrics["confusion_matrix"]) == {"0", "1"}
    assert quality["alarm"] == ("ALARM" if quality["value"] < 0.9 else "OK")
    told = [json.loads(m) for s, m in twin.topic_messages(_topic(twin)) if s and f"{endpoint}-model-quality" in s]
    assert told[0]["OldStateValue"] == "INSUFFICIENT_DATA" and told[0]["NewStateValue"] == quality["alarm"]


def test_wrong_labels_bring_the_model_quality_alarm_to_the_operators(twin, chain):
    """The same predictions relabelled the other way round (a later upload replaces a label): the
    next run's auc is far below the gate's bar and the alarm tells the topic."""
    with acting_as("twin"):
        s3 = twin.client("s3")
        [labels] = [
            o["Key"] for o in s3.list_objects_v2(Bucket=_bucket(twin), Prefix=f"ground-truth/{DATASET}/")["Contents"]
        ]
        lines = s3.get_object(Bucket=_bucket(twin), Key=labels)["Body"].read().decode().splitlines()
    flipped = []
    for line in lines:
        record = json.loads(line)
        record["groundTruthData"]["data"] = str(1 - int(record["groundTruthData"]["data"]))
        flipped.append(json.dumps(record))
    with acting_as("data-scientist"):
        s3.put_object(
            Bucket=_bucket(twin), Key=labels.replace("labels.jsonl", "relabelled.jsonl"), Body="\n".join(flipped)
        )
    [schedule] = [n for n in twin.monitoring.schedules if n.endswith("-model-quality")]
    twin.jobs.run_monitoring(schedule)
    twin.run_until_idle()
    alarms = [json.loads(m) for s, m in twin.topic_messages(_topic(twin)) if s and s.startswith('ALARM: "')]
    [alarm] = [a for a in alarms if a["AlarmName"] == f"{chain.outputs['endpoint']}-model-quality"]
    assert alarm["Trigger"]["MetricName"] == "LiveModelQuality" and alarm["Trigger"]["Threshold"] == 0.9
    assert "Runbook: docs/runbook.md#model-quality" in alarm["AlarmDescription"]


def test_a_bad_record_is_a_model_error_with_the_containers_message(twin, chain):
    with acting_as("application"), pytest.raises(twin.client("sagemaker-runtime").exceptions.ModelError) as raised:
        twin.client("sagemaker-runtime").invoke_endpoint(
            EndpointName=chain.outputs["endpoint"], ContentType="text/csv", Body="1,2,3"
        )
    assert raised.value.response["OriginalStatusCode"] == 400
    assert "expected 20" in raised.value.response["OriginalMessage"]


def test_a_model_that_misses_the_bar_is_rejected_not_rolled_out_and_the_operators_hear_it(twin, chain):
    dataset = "vertebral-column"
    _raise_the_bar(twin, dataset)
    live = twin.stack(f"Hosting-{DATASET}").parameters["ModelPackageArn"]
    deployments = len(_invocations(twin, "DeployModel"))
    _upload(twin, dataset, RAW_FILES[dataset].read_bytes(), RAW_FILES[dataset].name)
    twin.run_until_idle()

    [package] = _packages(twin, dataset)
    assert package["ModelApprovalStatus"] == "Rejected"
    assert "misses the bar: at least 0.999" in package["ModelPackageDescription"]
    subjects = [subject for subject, _ in twin.topic_messages(_topic(twin))]
    assert f"ML platform (dev): model for {dataset} rejected" in subjects
    # The Rejected package's own state change matches no rollout rule, so nothing rolls out.
    assert len(_invocations(twin, "DeployModel")) == deployments
    assert twin.stack(f"Hosting-{DATASET}").parameters["ModelPackageArn"] == live


def test_data_the_preparation_job_refuses_stops_the_chain_there_and_reaches_the_operators(twin, chain, tmp_path):
    dataset = "car-evaluation"
    broken = tmp_path / "broken.data"
    broken.write_bytes(b"vhigh,vhigh,2\nlow,med,4\n")  # 3 columns where the spec names 7
    run = Scenario(twin, dataset, broken).execute()

    assert [(s.name, s.status) for s in run.steps] == [("upload", "ok"), ("prepare", "failed")]
    assert run.failures[0].startswith("prepare: the preparation job jr_") and "ended FAILED" in run.failures[0]
    failed = [e for e in twin.trace.of("job", service="glue") if e["status"] == "FAILED"]
    assert failed and "car-evaluation" in failed[-1]["error"]
    messages = [message for _, message in twin.topic_messages(_topic(twin))]
    assert any("ended FAILED" in m and failed[-1]["run"] in m for m in messages), messages
    assert not _packages(twin, dataset)


def test_an_event_the_function_cannot_handle_is_retried_then_kept_in_its_dead_letter_queue(twin, chain):
    # A _SUCCESS with no schema.json beside it: start_training cannot read the run.
    with acting_as("data-scientist"):
        twin.client("s3").put_object(Bucket=_bucket(twin), Key="prepared/wine-quality/orphan-run/_SUCCESS", Body=b"")
    twin.run_until_idle()

    function = next(f for f in twin.functions if f.logical_id.startswith("StartTrainingFunction"))
    attempts = [e for e in _invocations(twin, "StartTraining") if e["status"] == "error"]
    assert len(attempts) == 2 * (1 + function.maximum_retry_attempts)  # each delivery: the try and its retries
    assert function.maximum_retry_attempts == 2
    held = twin.queue_messages(function.dead_letter_queue)
    assert len(held) == 2
    event = json.loads(held[0]["Body"])
    assert event["detail"]["object"]["key"] == "prepared/wine-quality/orphan-run/_SUCCESS"
    assert "NoSuchKey" in held[0]["MessageAttributes"]["ErrorMessage"]["StringValue"]


# --- helpers ---


def _bucket(twin: Twin) -> str:
    return twin.resource("Data", "DataBucket", "AWS::S3::Bucket")


def _upload(twin: Twin, dataset: str, body: bytes, name: str) -> None:
    with acting_as("data-scientist"):
        twin.client("s3").put_object(Bucket=_bucket(twin), Key=f"raw/{dataset}/{name}", Body=body)


def _raise_the_bar(twin: Twin, dataset: str) -> None:
    """Replace the deployed spec's gate minimum, as a stricter spec would set it (what start_training
    and register_model read is the published spec object)."""
    function = next(f for f in twin.functions if f.logical_id.startswith("RegisterModelFunction"))
    uri = json.loads(function.variables["DATASET_SPECS"])[dataset]
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    with acting_as("deployer"):
        s3 = twin.client("s3")
        spec = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        spec["training"]["minimum"] = 0.999
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(spec).encode())


def test_a_built_in_algorithm_trains_and_serves_on_its_stand_in_under_the_containers_contract(twin, chain):
    """A Linear Learner job as start_training's own code builds one (on the chain's prepared run),
    trained by the twin's stand-in; its model then answers a transform job in the container's
    formats. Created without the platform's tags: register_model leaves it alone."""
    function = next(f for f in twin.functions if f.logical_id.startswith("StartTrainingFunction"))
    handler = function._load()
    bucket, _, prefix = chain.outputs["prepared"].removeprefix("s3://").partition("/")
    run_id = prefix.rstrip("/").rsplit("/", 1)[-1]
    with acting_as("data-scientist"):
        s3 = twin.client("s3")
        schema = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "schema.json")["Body"].read())
        spec = handler.load_spec(handler.runtime.read_text(s3, handler.SETTINGS.specs[DATASET]))
    spec = dataclasses.replace(spec, training=dataclasses.replace(spec.training, algorithm="linear-learner"))
    definition = handler.training_definition(spec, run_id, handler.SETTINGS, schema)
    with acting_as(function.role_arn):
        twin.client("sagemaker").create_training_job(TrainingJobName="ll-stand-in", **definition)
    twin.run_until_idle()

    [stand_in] = twin.trace.of("stand-in", job="ll-stand-in")
    assert "built-in" in stand_in["note"]
    with acting_as("twin"):
        job = twin.client("sagemaker").describe_training_job(TrainingJobName="ll-stand-in")
    assert job["TrainingJobStatus"] == "Completed"
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert metrics["test:binary_classification_accuracy"] > 0.85

    # The test split's features (no label) through a transform job with the stand-in's model.
    rows = s3.get_object(Bucket=bucket, Key=_first(twin, bucket, prefix + "test/"))["Body"].read().decode()
    features = "".join(line.split(",", 1)[1] + "\n" for line in rows.splitlines()[:10])
    with acting_as("data-scientist"):
        s3.put_object(Bucket=bucket, Key="sandbox/alice/ll-features.csv", Body=features.encode())
        sagemaker = twin.client("sagemaker")
        sagemaker.create_model(
            ModelName="ll-stand-in",
            ExecutionRoleArn=definition["RoleArn"],
            Containers=[
                {
                    "Image": definition["AlgorithmSpecification"]["TrainingImage"],
                    "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"],
                }
            ],
        )
        sagemaker.create_transform_job(
            TransformJobName="ll-stand-in",
            ModelName="ll-stand-in",
            BatchStrategy="MultiRecord",
            TransformInput={
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/sandbox/alice/ll-features.csv"}
                },
                "ContentType": "text/csv",
                "SplitType": "Line",
            },
            TransformOutput={
                "S3OutputPath": f"s3://{bucket}/sandbox/alice/out/",
                "Accept": "application/jsonlines",
                "AssembleWith": "Line",
            },
            TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
        )
    twin.run_until_idle()
    with acting_as("twin"):
        transform = twin.client("sagemaker").describe_transform_job(TransformJobName="ll-stand-in")
    assert transform["TransformJobStatus"] == "Completed", transform.get("FailureReason")
    out = s3.get_object(Bucket=bucket, Key="sandbox/alice/out/ll-features.csv.out")["Body"].read().decode()
    predictions = [json.loads(line) for line in out.splitlines()]
    assert len(predictions) == 10 and all(set(p) == {"score", "predicted_label"} for p in predictions)


def _first(twin: Twin, bucket: str, prefix: str) -> str:
    with acting_as("twin"):
        return twin.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"][0]["Key"]


def test_when_nothing_runs_the_report_says_which_function_declined_and_why(twin, chain, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    run = Scenario(twin, "wine-quality", empty).execute()
    assert [(s.name, s.status) for s in run.steps][-1] == ("prepare", "failed")
    assert run.failures[0].startswith("prepare: no preparation job ran: start_etl said: ignored: ")
    assert "raw/wine-quality/empty.csv is empty" in run.failures[0]


def test_several_files_uploaded_at_once_start_one_preparation_run_that_includes_them_all(twin, chain, tmp_path):
    """The wine-quality file in three parts (each with the header), uploaded one after another:
    the events wait on start_etl's queue for the quiet period (the twin's clock), then one run
    prepares all three files' rows."""
    dataset = "wine-quality"
    header, *rows = RAW_FILES[dataset].read_text(encoding="utf-8").splitlines()
    parts = [rows[i::3] for i in range(3)]
    keys = [f"raw/{dataset}/part-{n}.csv" for n in range(1, 4)]
    before, clock = len(twin.trace.entries), twin.clock
    for n, part in enumerate(parts, 1):
        _upload(twin, dataset, ("\n".join([header, *part]) + "\n").encode(), f"part-{n}.csv")
    twin.run_until_idle()

    entries = twin.trace.entries[before:]
    started = [e for e in entries if e["kind"] == "call" and e["operation"] == "StartJobRun" and e["error"] is None]
    assert len(started) == 1, started
    output = started[0]["params"]["Arguments"]["--output"].removeprefix(f"s3://{_bucket(twin)}/")
    with acting_as("twin"):
        s3 = twin.client("s3")
        record = json.loads(s3.get_object(Bucket=_bucket(twin), Key=output + "_RUN.json")["Body"].read())
        report = json.loads(s3.get_object(Bucket=_bucket(twin), Key=output + "report.json")["Body"].read())
    assert sorted(o["key"] for o in record["objects"]) == keys
    assert report["rows_in"] == len(rows)  # every row of the three files
    # Each upload's event waited the quiet period on the queue before start_etl saw it.
    first_invocation = next(e for e in entries if e["kind"] == "invoke" and "StartEtl" in e["function"])
    assert first_invocation["source"].startswith("queue ")
    quiet = twin.queues.queue(next(m.queue_arn for m in twin.queues.mappings)).delay
    assert quiet == 300 and twin.clock >= clock + quiet
    statuses = [
        o["status"]
        for e in entries
        if e["kind"] == "invoke" and "StartEtl" in e["function"]
        for o in [r["outcome"] for r in e.get("logs", []) if "outcome" in r]
    ]
    assert statuses.count("started") == 1 and set(statuses) <= {"started", "duplicate", "superseded"}


def test_batch_inputs_are_read_alone_and_written_where_no_other_input_overwrites_them(twin, chain):
    """a/x.csv, b/x.csv and a/x.csv.bak under batch-input/<dataset>/: three jobs, each reading its
    own object only (a manifest, not a prefix), each output in a folder of its own."""
    records = raw_records(RAW_FILES[DATASET], twin, DATASET)
    inputs = {"a/x.csv": records[:5], "b/x.csv": records[5:12], "a/x.csv.bak": records[12:15]}
    before = len(twin.trace.entries)
    with acting_as("data-scientist"):
        for name, lines in inputs.items():
            twin.client("s3").put_object(
                Bucket=_bucket(twin), Key=f"batch-input/{DATASET}/{name}", Body=("\n".join(lines) + "\n").encode()
            )
    twin.run_until_idle()

    done = [e for e in twin.trace.entries[before:] if e["kind"] == "job" and e.get("job_type") == "transform"]
    finished = [e for e in done if e["status"] != "InProgress"]
    assert len(finished) == 3 and all(e["status"] == "Completed" for e in finished), finished
    outputs = {out for e in finished for out in e["outputs"]}
    assert len(outputs) == 3
    by_input = {}
    prefix = f"s3://{_bucket(twin)}/batch-output/{DATASET}/"
    for output in outputs:
        name, job, file = output.removeprefix(prefix).rsplit("/", 2)
        assert file == name.rsplit("/", 1)[-1] + ".out" and job.startswith(f"mlplatform-dev-{DATASET}-")
        by_input[name] = output
    assert set(by_input) == set(inputs)
    with acting_as("twin"):
        for name, output in by_input.items():
            key = output.removeprefix(f"s3://{_bucket(twin)}/")
            text = twin.client("s3").get_object(Bucket=_bucket(twin), Key=key)["Body"].read().decode()
            assert len(text.splitlines()) == len(inputs[name]), name


# --- the permission proof over the same run ---


def test_every_request_the_run_made_is_allowed_by_the_policies_the_stage_deploys(proof):
    assert not proof.failures, "\n".join(proof.failures)
    asked = {(a.request.principal.rsplit("/", 1)[-1], a.request.action) for a in proof.answers}
    assert any(a == "sagemaker:CreateHyperParameterTuningJob" and "StartTraining" in p for p, a in asked)
    assert any(
        a.request.principal == "cloudwatch.amazonaws.com" and a.request.action == "sns:Publish" for a in proof.answers
    )
    assert any(
        a.request.principal == "events.amazonaws.com" and a.request.action == "lambda:InvokeFunction"
        for a in proof.answers
    )
    assert any(a.request.action == "iam:PassRole" for a in proof.answers)
    assert proof.uncovered() == []
    assert proof.unexplained() == [], (
        "unused grants to remove, or to explain in permissions/reviewed.py UNUSED:\n" + "\n".join(proof.unexplained())
    )


def test_a_data_scientists_jobs_inside_the_guardrails_are_allowed_and_each_guardrail_left_is_refused(twin, proof):
    from permissions.people import refusals

    persons = [a for a in proof.answers if "permissions/people.py" in a.request.why]
    asked = {a.request.action for a in persons}
    assert {"sagemaker:CreateTrainingJob", "sagemaker:CreateModel", "sagemaker:CreateTransformJob"} <= asked
    assert {"iam:PassRole", "sagemaker:CreateProcessingJob"} <= asked
    assert all(a.decision == "Allowed" for a in persons), [(a.request.action, a.decision) for a in persons]
    # Studio sets each user's name as source identity on their role and on their jobs' role.
    identities = [a for a in proof.answers if a.request.action == "sts:SetSourceIdentity"]
    roles = {a.request.resource.rsplit("/", 1)[-1].split("-")[3] for a in identities}  # MlPlatform-dev-Studio-<id>-...
    assert any(r.startswith("DataScientistRole") for r in roles) and any(r.startswith("JobRole") for r in roles), roles
    assert all(a.decision == "Allowed" for a in identities)
    judged = refusals(twin, proof.policies)
    assert len(judged) >= 14
    allowed = [case.what for case, decision in judged if "Denied" not in decision or "Allowed" in decision]
    assert allowed == [], "guardrails a data scientist's request gets past"


def _mutated(proof, request, change):
    """The proof of one request against policies one change away from the deployed ones."""
    import copy

    from permissions.proof import Proof

    policies = copy.deepcopy(proof.policies)
    change(policies)
    return Proof(policies, [request], account=proof.account).evaluate().answers[0].decision


def _request(proof, action, principal_part=""):
    return next(
        a.request for a in proof.answers if a.request.action == action and principal_part in a.request.principal
    )


def _statement(policies, principal, action):
    for policy in policies.roles[principal].identity:
        for statement in policy.document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if action in actions:
                return policy, statement
    raise AssertionError(f"no statement of {principal} names {action}")


def test_the_proof_fails_when_a_statement_is_removed(proof):
    request = _request(proof, "glue:StartJobRun")

    def remove(policies):
        policy, statement = _statement(policies, request.principal, "glue:StartJobRun")
        policy.document["Statement"].remove(statement)

    assert _mutated(proof, request, lambda p: None) == "Allowed"
    assert _mutated(proof, request, remove) == "ImplicitlyDenied"


def test_the_proof_fails_when_a_resource_is_narrowed(proof):
    request = _request(proof, "glue:StartJobRun")

    def narrow(policies):
        _, statement = _statement(policies, request.principal, "glue:StartJobRun")
        statement["Resource"] = request.resource + "-other"

    assert _mutated(proof, request, narrow) == "ImplicitlyDenied"


def test_the_proof_fails_when_a_request_drops_the_tag_its_grant_requires(proof):
    import dataclasses

    from permissions.proof import Proof

    tagged = next(
        a.request
        for a in proof.answers
        if a.decision == "Allowed" and any(k.startswith("aws:RequestTag/") for k in a.request.context)
    )
    untagged = dataclasses.replace(
        tagged,
        context={k: v for k, v in tagged.context.items() if not k.startswith("aws:RequestTag/") and k != "aws:TagKeys"},
    )
    decisions = [
        a.decision for a in Proof(proof.policies, [tagged, untagged], account=proof.account).evaluate().answers
    ]
    assert decisions == ["Allowed", "ImplicitlyDenied"], tagged


def test_the_proof_fails_when_a_key_policy_statement_is_removed(proof):
    request = next(
        a.request
        for a in proof.answers
        if a.request.principal == "cloudwatch.amazonaws.com" and a.request.action == "kms:GenerateDataKey"
    )

    def remove(policies):
        key_policy = policies.resource_policy(request.resource).document
        key_policy["Statement"] = [
            s for s in key_policy["Statement"] if s.get("Sid") != "AlarmsAndRulesPublishToEncryptedTopic"
        ]

    assert _mutated(proof, request, lambda p: None) == "Allowed"
    # Not allowed, and a failure of the check (only the reviewed CloudWatch Logs requests may be
    # left undecided by the evaluator).
    assert _mutated(proof, request, remove) in ("ImplicitlyDenied", "Unevaluable")
    policies = __import__("copy").deepcopy(proof.policies)
    remove(policies)
    from permissions.proof import Proof

    assert Proof(policies, [request], account=proof.account).evaluate().failures


# --- the VPC endpoints: what the run asked from inside the VPC, and through which endpoint ---

# Configured with no caller inside the VPC: none. (sagemaker.studio serves browsers connecting to
# Studio from within a VPC, https://docs.aws.amazon.com/sagemaker/latest/dg/studio-interface-endpoint.html;
# this VPC has no people in it, so no stage lists it.)
KEPT_FOR_THE_CONFIGURATION_ONLY: set[str] = set()


@pytest.fixture(scope="module")
def vpc_traffic(twin, chain_and_proof, dev):
    """The run's in-VPC requests, each with its endpoint, after a batch input for a dataset with no
    model (start_batch_transform tells the operators' topic: an SNS request from inside the VPC)."""
    from permissions import endpoints
    from permissions.policies import collect

    # The chain's calls and this upload's, not those other tests of the module make on the twin.
    chain_end, before = chain_and_proof[2], len(twin.trace.entries)
    with acting_as("data-scientist"):
        twin.client("s3").put_object(
            Bucket=_bucket(twin), Key="batch-input/car-evaluation/no-model-yet.csv", Body=b"vhigh,vhigh,2,2,small,low\n"
        )
    twin.run_until_idle()
    calls = [e for e in [*twin.trace.entries[:chain_end], *twin.trace.entries[before:]] if e["kind"] == "call"]
    policies = collect(twin)
    configured = dev.config.network.interface_endpoints
    passages, missing = endpoints.passages(twin, policies, configured, calls)
    return policies, passages, missing, endpoints.in_vpc_principals(twin, policies, calls)


def test_the_principals_inside_the_vpc_are_the_functions_the_glue_job_and_the_jobs_execution_role(twin, vpc_traffic):
    _, _, _, principals = vpc_traffic
    platform = ("StartEtl", "StartTraining", "RegisterModel", "StartBatchTransform", "DeployModel", "CheckDrift")
    inside = {f.logical_id for f in twin.functions if f.role_arn in principals}
    assert {name for name in platform if any(i.startswith(name) for i in inside)} == set(platform), inside
    # CDK's custom resource handlers (bucket emptying, default security group) run outside the VPC.
    assert all(i.startswith(platform) for i in inside), inside
    assert any(why.startswith("Glue job") for why in principals.values())
    # The tuning job's training jobs and the endpoint's model run in the VPC as the execution role.
    tuning, *_ = _successful(twin, "CreateHyperParameterTuningJob")
    role = tuning["params"]["TrainingJobDefinition"]["RoleArn"]
    assert principals[role].endswith("(VpcConfig)")


def test_every_service_called_from_inside_the_vpc_has_an_endpoint(vpc_traffic):
    _, passages, missing, _ = vpc_traffic
    assert missing == [], f"called from inside the VPC with no endpoint: {missing}"
    called = {p.service for p in passages}
    assert called >= {"s3", "sagemaker", "glue", "cloudformation", "sns"}, called


def test_every_configured_interface_endpoint_has_a_caller_recorded_or_documented(dev, vpc_traffic):
    from permissions.endpoints import DOCUMENTED_CALLERS

    _, passages, _, _ = vpc_traffic
    recorded = {p.endpoint for p in passages}
    configured = set(dev.config.network.interface_endpoints)
    uncalled = configured - recorded - set(DOCUMENTED_CALLERS)
    assert uncalled == KEPT_FOR_THE_CONFIGURATION_ONLY, f"endpoints nothing inside the VPC calls: {uncalled}"


def test_every_request_from_inside_the_vpc_passes_its_endpoints_policy(twin, vpc_traffic):
    from permissions import endpoints

    policies, passages, _, _ = vpc_traffic
    in_force = endpoints.endpoint_policies(twin)
    assert {p.endpoint for p in passages} <= set(in_force), "an endpoint the run used has no policy"
    buckets = endpoints.twin_buckets(twin)
    requests = [
        (endpoints.with_accounts(p.request, endpoints.resource_account(p.request, buckets)), p.endpoint)
        for p in passages
    ]
    judged = endpoints.judge(requests, policies, in_force)
    refused = [
        f"{j.decision} via {j.endpoint}: {j.request.principal} {j.request.action} {j.request.resource} {j.detail}"
        for j in judged
        if j.decision != "Allowed"
    ]
    assert judged and not refused, "\n".join(refused)


def test_the_run_would_be_refused_by_endpoint_policies_naming_another_account(twin, vpc_traffic):
    """The same requests against the same policies with the account swapped: none passes, so the
    check above is decided by the endpoint policies and not by the identity policies alone."""
    import json

    from permissions import endpoints

    policies, passages, _, _ = vpc_traffic
    other = {
        name: json.loads(json.dumps(document).replace(f'"{twin.account}"', '"210987654321"'))
        for name, document in endpoints.endpoint_policies(twin).items()
    }
    buckets = endpoints.twin_buckets(twin)
    requests = [
        (endpoints.with_accounts(p.request, endpoints.resource_account(p.request, buckets)), p.endpoint)
        for p in passages
    ]
    assert {j.decision for j in endpoints.judge(requests, policies, other)} == {"ImplicitlyDenied"}


# --- a data scientist's starter notebook, with the SageMaker Python SDK, as a person in Studio ---

NOTEBOOK_USER = "alice"


@pytest.fixture(scope="module")
def studio_notebook(twin, chain, tmp_path_factory):
    """notebooks/starter.ipynb run top to bottom as alice (the shared data scientists' role,
    her source identity), on the chain's prepared run, with her SDK defaults file: its outputs,
    the calls it made, and the names the twin deployed."""
    from local.notebook import run_notebook
    from permissions.people import Names
    from tests.conftest import ROOT

    names = Names.of(twin)
    start = len(twin.trace.entries)
    folder = tmp_path_factory.mktemp("studio")
    environment = {
        "PREPARED_DIR": chain.outputs["prepared"],
        "DATASET": DATASET,
        "REPO_DIR": str(ROOT),
        "OUT_DIR": str(folder / "model"),
    }
    run = run_notebook(
        twin, ROOT / "notebooks" / "starter.ipynb", person=names.person, user=NOTEBOOK_USER,
        environment=environment, folder=folder,
    )  # fmt: skip
    calls = [e for e in twin.trace.entries[start:] if e["kind"] == "call" and e["principal"] == names.person]
    return run, calls, names


def _one(calls, operation):
    [call] = [c for c in calls if c["operation"] == operation and c["error"] is None]
    return call


def test_the_sdk_defaults_file_validates_against_the_sdks_schema_and_holds_the_deployed_names(twin):
    import jsonschema
    import yaml
    from constructs import sdk_defaults
    from sagemaker.core.config.config_schema import SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA

    from local.sdk import studio_defaults
    from permissions.people import Names

    names = Names.of(twin)
    for user in ("alice", "bob"):
        text = studio_defaults(twin, user)
        assert text.startswith(sdk_defaults.MARKER + "\n")
        document = yaml.safe_load(text)
        jsonschema.validate(document, SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)
        subnets = document["SageMaker"]["TrainingJob"]["VpcConfig"]["Subnets"]
        assert sorted(subnets) == names.subnets  # in the network stack's order
        assert document == sdk_defaults.document(
            role_arn=names.job_role, subnets=subnets, security_group_ids=[names.security_group],
            key_arn=names.key, bucket=names.bucket, sandbox=f"sandbox/{user}/", owner=user,
        )  # fmt: skip


def test_the_starter_notebook_trains_and_predicts_in_sagemaker_as_a_data_scientist(twin, studio_notebook):
    run, calls, names = studio_notebook
    text = "\n".join(run.outputs)
    training = re.search(r"training job (\S+): Completed, (\{.*\})", text)
    assert training, text[-3000:]
    assert "'test:auc'" in training.group(2)  # the trainer's metrics, parsed from its log
    assert re.search(r"batch transform \S+: 20 predictions, first [0-9.]+,(yes|no)", text), text[-2000:]
    # What the SDK sent carries every guardrail, though no cell names a network, a role or a key
    # in its code: they came from the defaults file.
    job = _one(calls, "CreateTrainingJob")["params"]
    assert job["RoleArn"] == names.job_role
    assert job["VpcConfig"]["SecurityGroupIds"] == [names.security_group]
    assert sorted(job["VpcConfig"]["Subnets"]) == names.subnets
    assert job["EnableNetworkIsolation"] is True and job["EnableInterContainerTrafficEncryption"] is True
    assert job["ResourceConfig"]["VolumeKmsKeyId"] == job["OutputDataConfig"]["KmsKeyId"] == names.key
    assert job["OutputDataConfig"]["S3OutputPath"].startswith(f"s3://{names.bucket}/sandbox/{NOTEBOOK_USER}/")
    model = _one(calls, "CreateModel")["params"]
    assert model["ExecutionRoleArn"] == names.job_role and model["EnableNetworkIsolation"] is True
    assert {"Key": "owner", "Value": NOTEBOOK_USER} in model["Tags"]
    assert model["VpcConfig"] == job["VpcConfig"]
    transform = _one(calls, "CreateTransformJob")["params"]
    assert transform["TransformOutput"]["KmsKeyId"] == transform["TransformResources"]["VolumeKmsKeyId"] == names.key
    with acting_as("twin"):
        sagemaker = twin.client("sagemaker")
        trained = sagemaker.describe_training_job(TrainingJobName=job["TrainingJobName"])
        described = sagemaker.describe_transform_job(TransformJobName=transform["TransformJobName"])
    assert trained["TrainingJobStatus"] == described["TransformJobStatus"] == "Completed"


def test_the_sdks_requests_are_allowed_and_without_the_defaults_each_is_refused(twin, studio_notebook):
    """The permission proof of every request the notebook made as alice. The twin refused three,
    as AWS would: the SDK's probes, which it carries on after (the job role's simulated
    permissions and trust, and the account's bucket list, where it looks for its bucket)."""
    from permissions.actions import Request
    from permissions.calls import requests_of
    from permissions.policies import collect
    from permissions.proof import Proof, where_of

    _, calls, names = studio_notebook
    policies = collect(twin)
    where = where_of(twin, policies)
    made = [c for c in calls if c["error"] is None]
    assert {c.get("source_identity") for c in made} == {NOTEBOOK_USER}
    requests = [r for c in made for r in requests_of(c, where)]
    assert all(isinstance(r, Request) for r in requests), [r for r in requests if not isinstance(r, Request)]
    answers = Proof(policies, requests, account=twin.account).evaluate().answers
    assert {a.request.action for a in answers} >= {
        "sagemaker:CreateTrainingJob", "sagemaker:CreateModel", "sagemaker:CreateTransformJob",
        "iam:PassRole", "s3:PutObject", "s3:GetObject",
    }  # fmt: skip
    assert [(a.request.action, a.request.resource) for a in answers if a.decision != "Allowed"] == []
    assert {c["operation"] for c in calls if c["error"]} == {"SimulatePrincipalPolicy", "GetRole", "ListBuckets"}

    def without(operation, change):
        call = json.loads(json.dumps(_one(calls, operation)))
        change(call["params"])
        asked = [r for r in requests_of(call, where) if isinstance(r, Request)]
        return {a.decision for a in Proof(policies, asked, account=twin.account).evaluate().answers}

    own_role = names.person  # what the SDK runs a job as with no role configured: the caller's
    cases = {
        "training outside the VPC": ("CreateTrainingJob", lambda p: p.pop("VpcConfig")),
        "training without network isolation": ("CreateTrainingJob", lambda p: p.pop("EnableNetworkIsolation")),
        "training without inter-container encryption": (
            "CreateTrainingJob",
            lambda p: p.pop("EnableInterContainerTrafficEncryption"),
        ),
        "training volume without the key": ("CreateTrainingJob", lambda p: p["ResourceConfig"].pop("VolumeKmsKeyId")),
        "training output without the key": ("CreateTrainingJob", lambda p: p["OutputDataConfig"].pop("KmsKeyId")),
        "training as the person's own role": ("CreateTrainingJob", lambda p: p.update(RoleArn=own_role)),
        "model outside the VPC": ("CreateModel", lambda p: p.pop("VpcConfig")),
        "model as the person's own role": ("CreateModel", lambda p: p.update(ExecutionRoleArn=own_role)),
        "transform output without the key": ("CreateTransformJob", lambda p: p["TransformOutput"].pop("KmsKeyId")),
        "transform volume without the key": (
            "CreateTransformJob",
            lambda p: p["TransformResources"].pop("VolumeKmsKeyId"),
        ),
    }
    # Refused: one of the request's authorizations is not allowed (the create, or passing the role).
    passed = [what for what, (operation, change) in cases.items() if without(operation, change) == {"Allowed"}]
    assert passed == [], "requests without a default the guardrails let through"
