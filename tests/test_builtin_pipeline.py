"""A built-in algorithm's model as the platform evaluates and serves it: evaluate.py on the
algorithm's scores of the real prepared splits, and pipeline.py's encoder and decoder around the
algorithm's container. The algorithm is the local platform's stand-in (local/standins.py), which
keeps the container's contract (its CSV in, its JSON out); the figures are the stand-in's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import evaluate
import inference
import numpy as np
import pandas as pd
import pipeline
import pytest
from schema_encoder import SchemaEncoder
from sklearn import metrics as skm
from train import choose_threshold, error_counts

from local import standins
from tests.conftest import raw_records

SPLITS = ("validation", "test")


def _hyperparameters(algorithm: str, schema: dict) -> dict[str, str]:
    problem = schema["target"]["problem"]
    values = {"feature_dim": str(len(schema["feature_names"]))}
    if algorithm == "linear-learner":
        values["predictor_type"] = "binary_classifier" if problem == "binary" else "multiclass_classifier"
    else:
        values |= {"predictor_type": "classifier", "k": "10"}
    return values


def _score_file(model, source: Path, target: Path) -> None:
    """What the scoring transform job writes for one file: a JSON line per record of its features."""
    features = "".join(line.split(",", 1)[1] + "\n" for line in source.read_text().splitlines() if line)
    predictions = standins.Serving.predict_fn(standins.Serving.input_fn(features, "text/csv"), model)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(standins.Serving.output_fn(predictions, "application/jsonlines")[0])


pytestmark = pytest.mark.usefixtures("evaluation_code")  # evaluate.py copies its code from there


def _evaluated(prepared, root: Path, algorithm: str, **hp) -> tuple[dict, Path, dict]:
    """The stand-in trained on the train split, its scores of validation and test, then evaluate.py."""
    data = root / "opt" / "input" / "data"
    for split in ("train", *SPLITS):
        shutil.copytree(prepared.output / split, data / split)
    (data / "schema").mkdir(parents=True)
    shutil.copyfile(prepared.output / "schema.json", data / "schema" / "schema.json")
    (root / "opt" / "model").mkdir(parents=True)
    standins.train(algorithm, root / "opt", _hyperparameters(algorithm, prepared.schema))
    model = standins.Serving.model_fn(str(root / "opt" / "model"))
    for split in SPLITS:
        for source in sorted((data / split).glob("*.csv")):
            _score_file(model, source, data / "scores" / split / (source.name + ".out"))
    env = {
        **{f"SM_CHANNEL_{name.upper()}": str(data / name) for name in ("validation", "test", "scores", "schema")},
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DATA_DIR": str(root / "output"),
    }
    arguments = {"algorithm": algorithm, "trained_by": "job-1", "scored_by": "job-1-scores", **hp}
    parsed = evaluate.parse_hyperparameters([item for k, v in arguments.items() for item in (f"--{k}", str(v))])
    return evaluate.run(env, parsed), root / "model", model


def _split(prepared, split: str) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.concat(
        pd.read_csv(f, header=None, dtype=np.float64) for f in sorted((prepared.output / split).glob("*.csv"))
    )
    data = frame.to_numpy()
    return data[:, 1:], data[:, 0]


@pytest.fixture(scope="module")
def bank_linear(prepared, tmp_path_factory):
    return _evaluated(prepared["bank-marketing"], tmp_path_factory.mktemp("ll"), "linear-learner")


def test_the_evaluation_of_a_linear_learner_model_is_the_xgboost_paths_evaluation_of_its_scores(
    prepared, trained, bank_linear
):
    evaluation, model_dir, model = bank_linear
    xgboost_path = trained["bank-marketing"].evaluation
    shared = {"problem", "objective_metric", "test", "validation", "threshold_criterion", "test_at_0.5"}
    assert shared <= set(evaluation) and shared <= set(xgboost_path)
    assert set(evaluation["test"]) == set(xgboost_path["test"])  # every metric of the problem
    # Measured independently: sklearn on the stand-in's own probabilities of the prepared rows.
    x_val, y_val = _split(prepared["bank-marketing"], "validation")
    x_test, y_test = _split(prepared["bank-marketing"], "test")
    p_val, p_test = model["model"].predict_proba(x_val)[:, 1], model["model"].predict_proba(x_test)[:, 1]
    assert evaluation["test"]["auc"] == pytest.approx(skm.roc_auc_score(y_test, p_test), abs=1e-9)
    threshold = choose_threshold(y_val, p_val, "f1")
    assert evaluation["test"]["threshold"] == pytest.approx(threshold)
    predicted = (p_test >= threshold).astype(int)
    assert evaluation["test"]["f1"] == pytest.approx(skm.f1_score(y_test, predicted))
    assert evaluation["rows"] == {"validation": len(y_val), "test": len(y_test)}
    assert evaluation["trained_by"] == "job-1" and evaluation["scored_by"] == "job-1-scores"
    # The platform's half of the pipeline: its code, the schema and the threshold it chose.
    info = json.loads((model_dir / "model-info.json").read_text())
    assert info["algorithm"] == "linear-learner" and info["threshold"] == pytest.approx(threshold)
    assert {p.name for p in (model_dir / "code").iterdir()} >= {"pipeline.py", "inference.py", "schema_encoder.py"}


def test_the_cost_criterion_chooses_the_cheapest_threshold_on_validation_for_a_built_in(prepared, tmp_path):
    evaluation, _, model = _evaluated(
        prepared["bank-marketing"],
        tmp_path,
        "linear-learner",
        threshold_criterion="cost",
        false_positive_cost=1,
        false_negative_cost=8,
    )
    x_val, y_val = _split(prepared["bank-marketing"], "validation")
    p_val = model["model"].predict_proba(x_val)[:, 1]
    _, false_positives, false_negatives = error_counts(y_val, p_val)
    cheapest = (false_positives + 8 * false_negatives).min() / len(y_val)
    assert evaluation["validation"]["cost"] == pytest.approx(cheapest)
    assert evaluation["validation"]["cost"] <= evaluation["validation_at_0.5"]["cost"]
    assert "cost" in evaluation["test"] and evaluation["threshold_criterion"] == "cost"


def test_a_knn_models_evaluation_scores_its_vote(prepared, tmp_path):
    """k-NN answers a label only: its score is the vote, one class certain."""
    evaluation, _, model = _evaluated(prepared["car-evaluation"], tmp_path, "knn")
    x_test, y_test = _split(prepared["car-evaluation"], "test")
    assert evaluation["test"]["accuracy"] == pytest.approx(skm.accuracy_score(y_test, model["model"].predict(x_test)))
    assert len(evaluation["test"]["confusion_matrix"]) == 4


def _served(model_dir: Path, step: str):
    pipeline.ENVIRONMENT = {"PLATFORM_PIPELINE_STEP": step}
    return pipeline.model_fn(str(model_dir))


def test_raw_records_through_the_pipeline_get_the_answer_of_the_algorithm_at_the_platforms_threshold(
    prepared, bank_linear, monkeypatch
):
    _, model_dir, algorithm = bank_linear
    monkeypatch.setattr(pipeline, "ENVIRONMENT", {})
    records = raw_records(prepared["bank-marketing"])[:50]
    body = json.dumps({"instances": records})  # every column, the target among them, as the raw file has it
    encoder = _served(model_dir, "encode")
    rows, media = pipeline.output_fn(pipeline.predict_fn(pipeline.input_fn(body, "application/json"), encoder), "*/*")
    assert media == "text/csv"  # whatever was asked: the algorithm reads CSV
    schema = json.loads((model_dir / "schema.json").read_text())
    expected = np.array([SchemaEncoder(schema).encode(r) for r in records])
    assert np.allclose(np.loadtxt(rows.splitlines(), delimiter=","), expected)

    answer, media = standins.Serving.output_fn(
        standins.Serving.predict_fn(standins.Serving.input_fn(rows, media), algorithm), None
    )
    decoder = _served(model_dir, "decode")
    text, media = pipeline.output_fn(pipeline.predict_fn(pipeline.input_fn(answer, media), decoder), "text/csv")
    assert media == "text/csv"
    probabilities = algorithm["model"].predict_proba(expected)[:, 1]
    threshold = decoder.info["threshold"]
    lines = [line.split(",") for line in text.splitlines()]
    assert [float(p) for p, _ in lines] == pytest.approx(probabilities, abs=1e-6)
    assert [label for _, label in lines] == ["yes" if p >= threshold else "no" for p in probabilities]


def test_the_pipeline_refuses_what_its_containers_cannot_pass_on(prepared, bank_linear, monkeypatch):
    _, model_dir, _ = bank_linear
    monkeypatch.setattr(pipeline, "ENVIRONMENT", {})
    encoder = _served(model_dir, "encode")
    record = ",".join(raw_records(prepared["bank-marketing"])[0].values())  # a raw line, the target with it
    with pytest.raises(inference.BadRequest, match=r"row 2.*blank line"):
        pipeline.predict_fn(pipeline.input_fn(f"{record}\n\n{record}\n", "text/csv"), encoder)
    decoder = _served(model_dir, "decode")
    with pytest.raises(inference.UnsupportedMediaType):
        pipeline.input_fn("0.5,1\n", "text/csv")  # the decoder reads the algorithm's JSON only
    with pytest.raises(ValueError, match="must be one of encode, decode"):
        _served(model_dir, "score")
    assert decoder.step == "decode"


def test_the_knn_decoder_reads_the_vote_as_one_class_certain():
    scores = pipeline.scores_of([{"predicted_label": 2.0}, {"predicted_label": 0.0}], "knn", "multiclass", 3)
    assert scores.tolist() == [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        pipeline.scores_of([{"predicted_label": 3.0}], "knn", "multiclass", 3)
