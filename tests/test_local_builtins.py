"""Linear Learner and k-NN end to end on the local twin, from the dev stage's real cloud assembly:
a twin of their own, so that the endpoint the main chain's tests read keeps serving XGBoost.

Bank marketing's published spec is changed as a team would change it: first to ``linear-learner``
(uploaded raw data to the endpoint's prediction for a raw record, and a batch file's), then to
``knn`` (a new prepared run, rolled out over the first: the stack update's UpdateEndpoint, which
the twin answers where moto has none, to the endpoint's and the batch file's predictions for raw
records). The algorithms' containers are the twin's stand-ins (local/standins.py), which keep the containers'
contract; the platform's own steps around them (scoring, evaluation, the inference pipeline) run
as deployed. The permission proof covers every request these runs made.
"""

from __future__ import annotations

import json

import pytest

from local.platform import Twin
from local.scenario import Scenario
from local.trace import acting_as
from tests.conftest import RAW_FILES, publish_training, running_twin

DATASET = "bank-marketing"
BUILT_INS = ("linear-learner", "knn")


@pytest.fixture(scope="module")
def twin(dev, spark, tmp_path_factory):
    # Each event once: the main chain's module proves what a twice-delivered event does, and the
    # handler tests each step's repeated event.
    with running_twin(dev.outdir, tmp_path_factory.mktemp("twin"), duplicate_events=False, shuffle_seed=5) as twin:
        yield twin


def _publish(twin: Twin, algorithm: str) -> None:
    """The deployed spec of bank marketing now trains ``algorithm``; a new model replaces the approved
    one whatever its score (tolerance 1), so each run ends on the endpoint."""
    training = {
        "algorithm": algorithm,
        "objective_metric": "auc",
        "minimum": 0.5,
        "tolerance": 1.0,
        "threshold_criterion": "f1",
    }
    publish_training(twin, DATASET, training)


@pytest.fixture(scope="module")
def runs(twin):
    """Linear Learner from an upload; then k-NN on a copy of that prepared run (as the ETL writes a
    run: every object, then _SUCCESS)."""
    _publish(twin, "linear-learner")
    # The drift leg is the chain's, whatever trains (tests/test_local_platform.py): here, built-ins.
    linear = Scenario(twin, DATASET, RAW_FILES[DATASET], monitored=False)
    linear.execute()

    _publish(twin, "knn")
    knn = Scenario(twin, DATASET, RAW_FILES[DATASET], monitored=False)
    knn._since = len(twin.trace.entries)
    bucket, _, prefix = linear.run.outputs["prepared"].removeprefix("s3://").partition("/")
    copy = prefix.rstrip("/") + "-knn/"
    with acting_as("twin"):
        s3 = twin.client("s3")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
        for key in sorted(keys, key=lambda k: k.endswith("_SUCCESS")):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            s3.put_object(Bucket=bucket, Key=copy + key[len(prefix) :], Body=body)
    knn.settle()
    try:
        for name, step in (
            ("train", knn.train),
            ("register", knn.register),
            ("roll out", knn.roll_out),
            ("predict", knn.predict),
            ("batch transform", knn.batch),
        ):
            knn.step(name, step)
    except Exception:  # the report says where it stopped
        pass
    return {"linear-learner": linear.run, "knn": knn.run}


@pytest.fixture(scope="module")
def proof(runs, twin):
    from permissions.proof import Proof

    return Proof.of(twin).evaluate()


@pytest.mark.parametrize("algorithm", BUILT_INS)
def test_a_built_in_algorithm_runs_to_a_prediction_for_a_raw_record(runs, twin, algorithm):
    run = runs[algorithm].report()
    steps = [(s["name"], s["status"]) for s in run["steps"]]
    assert all(status == "ok" for _, status in steps) and ("batch transform", "ok") in steps, run["failures"]
    assert run["model_package_status"] == "Approved"
    # the endpoint: the platform's answer, whatever the algorithm
    assert 0.0 <= run["prediction"]["probability"] <= 1.0 and run["prediction"]["label"] in ("yes", "no")
    # Batch transform: each raw record joined to its probability and label, as the XGBoost path writes them.
    assert run["batch_output_rows"] == 20
    bucket, _, key = run["outputs"]["batch_output"].removeprefix("s3://").partition("/")
    with acting_as("twin"):
        rows = twin.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    assert all(row.rsplit(",", 1)[1] in ("yes", "no") and 0 <= float(row.rsplit(",", 2)[1]) <= 1 for row in rows)
    with acting_as("twin"):
        package = twin.client("sagemaker").describe_model_package(ModelPackageName=run["outputs"]["model_package"])
    images = [c["Image"].rsplit("/", 1)[-1].split(":")[0] for c in package["InferenceSpecification"]["Containers"]]
    assert images == ["sagemaker-xgboost", algorithm, "sagemaker-xgboost"]
    metadata = package["CustomerMetadataProperties"]
    assert metadata["algorithm"] == algorithm and metadata["evaluation_job"].endswith("-evaluation")
    # The stand-in said so in the trace, for training and for serving.
    notes = {e["note"] for e in twin.trace.of("stand-in") if algorithm in e["image"]}
    assert {
        "a built-in algorithm: the twin's stand-in trains",
        "a built-in algorithm: the twin's stand-in serves",
    } <= notes


def test_the_evaluation_is_stored_and_judged_as_the_xgboost_paths_is(runs, twin):
    with acting_as("twin"):
        sagemaker = twin.client("sagemaker")
        package = sagemaker.describe_model_package(ModelPackageName=runs["linear-learner"].outputs["model_package"])
        uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        evaluation = json.loads(twin.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert evaluation["algorithm"] == "linear-learner" and evaluation["threshold_criterion"] == "f1"
    assert {"auc", "accuracy", "f1", "threshold", "confusion_matrix"} <= set(evaluation["test"])
    assert float(package["CustomerMetadataProperties"]["objective_value"]) == pytest.approx(
        evaluation["test"]["auc"], abs=1e-6
    )
    assert runs["linear-learner"].gate.startswith("Approved: test auc 0.")


def test_every_request_of_the_built_in_path_is_allowed_by_the_policies_the_stage_deploys(proof):
    assert not proof.failures, "\n".join(proof.failures)
    asked = {(a.request.principal, a.request.action) for a in proof.answers if a.decision == "Allowed"}
    for action in (
        "sagemaker:CreateModel",
        "sagemaker:CreateTransformJob",
        "sagemaker:CreateTrainingJob",
        "iam:PassRole",
        "s3:ListBucket",
        "s3:PutObject",
    ):
        assert any(action == a and "RegisterModel" in p for p, a in asked), f"register_model never asked {action}"
