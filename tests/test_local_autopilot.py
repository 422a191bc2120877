"""Autopilot end to end on the local twin, from the dev stage's real cloud assembly: a twin of its
own, as for the built-in algorithms (tests/test_local_builtins.py).

Bank marketing's published spec (the dataset the dev stage serves) is changed to
``"algorithm": "autopilot"``. The preparation job writes the raw-feature view, start_training
starts an AutoML V2 job on it, and the twin's Autopilot stand-in (local/autopilot.py: a few
XGBoost configurations under Autopilot's contract) plays the search. No event says an AutoML job
ended: register_model's schedule finds it, scores the best candidate on the view's validation and
test rows, evaluates the scores with the platform's evaluate.py, and registers the candidate
between the platform's encoder and decoder. The package rolls out and the endpoint answers a raw
record as the XGBoost path does. The permission proof covers every request the run made.
"""

from __future__ import annotations

import json

import pytest

from local.scenario import Scenario
from local.trace import acting_as
from tests.conftest import RAW_FILES, publish_training, running_twin

DATASET = "bank-marketing"


@pytest.fixture(scope="module")
def twin(dev, spark, tmp_path_factory):
    with running_twin(dev.outdir, tmp_path_factory.mktemp("twin"), duplicate_events=False, shuffle_seed=7) as twin:
        yield twin


@pytest.fixture(scope="module")
def run(twin):
    publish_training(
        twin,
        DATASET,
        {
            "algorithm": "autopilot",
            "objective_metric": "auc",
            "minimum": 0.8,
            "autopilot": {"max_candidates": 2, "max_job_minutes": 60},
        },
    )
    # The drift leg is the chain's, whatever trains (tests/test_local_platform.py): here, Autopilot.
    scenario = Scenario(twin, DATASET, RAW_FILES[DATASET], monitored=False)
    scenario.execute()
    return scenario.run


@pytest.fixture(scope="module")
def package(run, twin):
    with acting_as("twin"):
        return twin.client("sagemaker").describe_model_package(ModelPackageName=run.outputs["model_package"])


def test_autopilot_runs_from_upload_to_a_prediction_for_a_raw_record(run):
    report = run.report()
    assert all(step["status"] == "ok" for step in report["steps"]), report["failures"]
    train = next(step for step in report["steps"] if step["name"] == "train")
    assert train["detail"].startswith("AutoML job bank-marketing-") and "2 candidates" in train["detail"]
    assert report["model_package_status"] == "Approved"
    assert report["prediction"]["label"] in ("yes", "no") and 0 <= report["prediction"]["probability"] <= 1
    assert report["batch_output_rows"] == 20


def test_the_automl_job_is_found_by_the_schedule_and_marked_handled(twin, run):
    ticks = [e for e in twin.trace.entries if e["kind"] == "tick"]
    assert ticks, "the twin never fired the schedule"
    with acting_as("twin"):
        sagemaker = twin.client("sagemaker")
        [summary] = sagemaker.list_auto_ml_jobs()["AutoMLJobSummaries"]
        tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=summary["AutoMLJobArn"])["Tags"]}
    assert summary["AutoMLJobStatus"] == "Completed" and tags["ml-platform:handled"] == "Completed"
    scoring = [e for e in twin.trace.entries if e["kind"] == "job" and e.get("job_type") == "transform"]
    assert any(e["job"].endswith("-scores") and e["status"] == "Completed" for e in scoring)


def test_the_package_wraps_the_best_candidate_between_the_platforms_encoder_and_decoder(package):
    containers = package["InferenceSpecification"]["Containers"]
    images = [c["Image"].rsplit("/", 1)[-1].split(":")[0] for c in containers]
    assert images == ["sagemaker-xgboost", "autopilot-stand-in", "sagemaker-xgboost"]
    assert containers[1]["Environment"]["SAGEMAKER_INFERENCE_OUTPUT"] == "probabilities,labels"
    assert [c["Environment"].get("PLATFORM_PIPELINE_STEP") for c in (containers[0], containers[2])] == [
        "encode",
        "decode",
    ]
    metadata = package["CustomerMetadataProperties"]
    assert metadata["algorithm"] == "autopilot" and metadata["evaluation_job"].endswith("-evaluation")
    assert metadata["best_candidate"].startswith("stand-in-candidate-")
    assert metadata["autopilot_objective"].startswith("AUC=")
    for link in ("candidate_notebook", "data_exploration_notebook", "explainability_report"):
        assert metadata[link].startswith("s3://"), link


def test_the_evaluation_is_the_platforms_on_the_test_split(package, twin):
    uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    with acting_as("twin"):
        evaluation = json.loads(twin.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert evaluation["algorithm"] == "autopilot"
    assert evaluation["rows"]["test"] > 300 and {"auc", "accuracy", "f1", "threshold"} <= set(evaluation["test"])
    assert float(package["CustomerMetadataProperties"]["objective_value"]) == pytest.approx(
        evaluation["test"]["auc"], abs=1e-6
    )
    # the links name what the stand-in wrote
    notebook = package["CustomerMetadataProperties"]["candidate_notebook"]
    bucket, _, key = notebook.removeprefix("s3://").partition("/")
    with acting_as("twin"):
        assert json.loads(twin.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())["cells"]


def test_every_request_of_the_autopilot_path_is_allowed_by_the_policies_the_stage_deploys(run, twin):
    from permissions.proof import Proof

    proof = Proof.of(twin).evaluate()
    assert not proof.failures, "\n".join(proof.failures)
    asked = {(a.request.principal, a.request.action) for a in proof.answers if a.decision == "Allowed"}
    for function, action in (
        ("StartTraining", "sagemaker:CreateAutoMLJobV2"),
        ("RegisterModel", "sagemaker:ListAutoMLJobs"),
        ("RegisterModel", "sagemaker:DescribeAutoMLJobV2"),
        ("RegisterModel", "sagemaker:AddTags"),
    ):
        assert any(action == a and function in p for p, a in asked), f"{function} never asked {action}"
