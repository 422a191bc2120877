"""An Autopilot model as the platform evaluates and serves it: evaluate.py on Autopilot's answers
of the raw-feature view's scoring files, and pipeline.py's encoder (raw records in, the view's
values out) and decoder (Autopilot's CSV in, the platform's answer out) around Autopilot's
containers. Autopilot itself is a scikit-learn model fitted here on the prepared features, whose
probabilities are written as Autopilot's containers write them (``probabilities,labels``, the
labels in an order of their own, shuffled per line so that the decoder's reordering is tested)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import evaluate
import inference
import numpy as np
import pandas as pd
import pipeline
import pytest
from dataset_spec import WHITESPACE, normalise, parse_number
from schema_encoder import RecordError, SchemaEncoder
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from train import choose_threshold

from tests.conftest import raw_records

SPLITS = ("validation", "test")
# Autopilot's answer as the documentation writes it, for the keys in this order.
DOCUMENTED_KEYS = "predicted_label,probability,probabilities,labels"
DOCUMENTED_LINE = "1,0.1,\"[0.9, 0.1]\",\"['1', '0']\"\n"


pytestmark = pytest.mark.usefixtures("evaluation_code")  # evaluate.py copies its code from there


@pytest.fixture(autouse=True)
def _served(monkeypatch):
    """Each test's own model: what model_fn remembers of the algorithm is put back after it."""
    monkeypatch.setattr(pipeline, "_served", {})
    monkeypatch.setattr(pipeline, "ENVIRONMENT", {})


def _split(prepared, split: str) -> tuple[list[Path], np.ndarray, np.ndarray]:
    files = sorted((prepared.output / split).glob("*.csv"))
    data = pd.concat(pd.read_csv(f, header=None, dtype=np.float64) for f in files).to_numpy()
    return files, data[:, 1:], data[:, 0]


def _answer_lines(probabilities: np.ndarray, classes: list[str], rng: np.random.Generator) -> str:
    """Autopilot's ``text/csv`` answer: per record ``"[p, ...]","['label', ...]"``, the labels in
    a shuffled order with their probabilities in the same order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in probabilities:
        order = rng.permutation(len(classes))
        writer.writerow([str([float(row[i]) for i in order]), str([classes[i] for i in order])])
    return out.getvalue()


def _view_file(source: Path, target: Path, classes: list[str]) -> None:
    """A scoring file of the raw-feature view for the records of a prepared split's file: the
    target as its class name first, no header. evaluate.py reads the target only: the features
    here are stand-ins (the prepared values, and a value holding a comma and a quote)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open() as handle, target.open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        for row in csv.reader(handle):
            writer.writerow([classes[int(float(row[0]))], *row[1:], 'a, "quoted" value', ""])


def _autopilot_run(prepared, root: Path, **hp) -> tuple[dict, Path, dict[str, np.ndarray]]:
    """The stand-in fitted on train, its answers of validation and test as Autopilot writes
    them, then evaluate.py; returns the evaluation, the model folder and the probabilities."""
    classes = prepared.schema["target"]["classes"]
    _, x_train, y_train = _split(prepared, "train")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_train, y_train)
    data, rng, probabilities = root / "input", np.random.default_rng(7), {}
    for split in SPLITS:
        files, x, _ = _split(prepared, split)
        probabilities[split] = model.predict_proba(x)
        start = 0
        for source in files:
            rows = sum(1 for line in source.read_text().splitlines() if line)
            name = f"part-{source.stem}.csv"
            _view_file(source, data / split / name, classes)
            answer = _answer_lines(probabilities[split][start : start + rows], classes, rng)
            (data / "scores" / split).mkdir(parents=True, exist_ok=True)
            (data / "scores" / split / f"{name}.out").write_text(answer)
            start += rows
    (data / "schema").mkdir(parents=True)
    shutil.copyfile(prepared.output / "schema.json", data / "schema" / "schema.json")
    env = {
        **{f"SM_CHANNEL_{name.upper()}": str(data / name) for name in ("validation", "test", "scores", "schema")},
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DATA_DIR": str(root / "output"),
    }
    arguments = {"algorithm": "autopilot", "trained_by": "automl-job/run-1", "scored_by": "run-1-scores", **hp}
    parsed = evaluate.parse_hyperparameters([item for k, v in arguments.items() for item in (f"--{k}", str(v))])
    return evaluate.run(env, parsed), root / "model", probabilities


@pytest.fixture(scope="module")
def bank_autopilot(prepared, tmp_path_factory):
    return _autopilot_run(prepared["bank-marketing"], tmp_path_factory.mktemp("autopilot-bank"))


def test_the_evaluation_of_autopilots_binary_answers_is_sklearns_on_the_same_probabilities(prepared, bank_autopilot):
    evaluation, model_dir, probabilities = bank_autopilot
    _, _, y_val = _split(prepared["bank-marketing"], "validation")
    _, _, y_test = _split(prepared["bank-marketing"], "test")
    p_val, p_test = probabilities["validation"][:, 1], probabilities["test"][:, 1]  # class 1: "yes"
    assert evaluation["test"]["auc"] == pytest.approx(skm.roc_auc_score(y_test, p_test), abs=1e-12)
    threshold = choose_threshold(y_val, p_val, "f1")
    assert evaluation["test"]["threshold"] == pytest.approx(threshold)
    assert evaluation["test"]["f1"] == pytest.approx(skm.f1_score(y_test, (p_test >= threshold).astype(int)))
    assert evaluation["validation"]["auc"] == pytest.approx(skm.roc_auc_score(y_val, p_val), abs=1e-12)
    assert evaluation["rows"] == {"validation": len(y_val), "test": len(y_test)}
    assert evaluation["algorithm"] == "autopilot" and evaluation["trained_by"] == "automl-job/run-1"
    info = json.loads((model_dir / "model-info.json").read_text())
    assert info["algorithm"] == "autopilot" and info["threshold"] == pytest.approx(threshold)
    assert info["classes"] == ["no", "yes"]
    assert {p.name for p in (model_dir / "code").iterdir()} >= {"pipeline.py", "inference.py", "schema_encoder.py"}


def test_the_evaluation_of_autopilots_multiclass_answers_reorders_its_labels_to_the_classes(prepared, tmp_path):
    evaluation, _, probabilities = _autopilot_run(prepared["car-evaluation"], tmp_path)
    _, _, y_test = _split(prepared["car-evaluation"], "test")
    predicted = probabilities["test"].argmax(axis=1)
    assert evaluation["test"]["accuracy"] == pytest.approx(skm.accuracy_score(y_test, predicted))
    assert evaluation["test"]["macro_f1"] == pytest.approx(
        skm.f1_score(y_test, predicted, average="macro", labels=[0, 1, 2, 3], zero_division=0)
    )
    assert (
        evaluation["test"]["confusion_matrix"] == skm.confusion_matrix(y_test, predicted, labels=[0, 1, 2, 3]).tolist()
    )


def test_a_view_target_outside_the_classes_stops_the_evaluation(tmp_path):
    view = tmp_path / "part-0.csv"
    view.write_text('no,1.0,admin.\n"maybe",2.0,"a, b"\n')
    with pytest.raises(SystemExit, match=r"part-0\.csv, line 2: the target 'maybe' is not one of the classes"):
        evaluate.view_targets(view, "binary", ["no", "yes"])
    view.write_text("1.5,x\n-2e3,y\n")
    assert evaluate.view_targets(view, "regression", []).tolist() == [1.5, -2000.0]


def test_the_decoder_reads_the_documented_answer():
    (prediction,) = pipeline.autopilot_predictions(DOCUMENTED_LINE, "binary", DOCUMENTED_KEYS)
    assert prediction == {"predicted_label": "1", "probability": 0.1, "probabilities": (0.9, 0.1), "labels": ("1", "0")}
    # The positive class is classes[1]: "1", whose probability is the first of the answer's.
    assert pipeline.scores_of([prediction], "autopilot", "binary", ["0", "1"]).tolist() == [0.9]
    multiclass = pipeline.autopilot_predictions("\"[0.1, 0.7, 0.2]\",\"['c', 'a', 'b']\"\n", "multiclass")
    assert pipeline.scores_of(multiclass, "autopilot", "multiclass", ["a", "b", "c"]).tolist() == [[0.7, 0.2, 0.1]]


@pytest.mark.parametrize(
    ("answer", "refusal"),
    [
        ("\"[0.9, 0.1]\",\"['no', 'maybe']\"", r"label 'maybe' is not one of the classes"),
        ("\"[0.9, 0.1]\",\"['no', 'no']\"", r"the class 'yes' is not among Autopilot's labels"),
        ("\"[0.9, 0.05, 0.05]\",\"['no', 'yes', 'no']\"", r"name 'no' twice"),
        ("\"[0.9]\",\"['no', 'yes']\"", r"line 1: 1 probabilities for 2 labels"),
        ('"[0.9, 0.1]","__import__(\'os\')"', r"labels .* is not a list"),
        ("\"[0.9, 0.1]\",\"[__import__('os').system('false')]\"", r"labels .* is not a list of literals"),
        ("\"[__import__('os'), 0.1]\",\"['no', 'yes']\"", r"probabilities .* is not a list of literals"),
        ("\"[0.9, True]\",\"['no', 'yes']\"", r"probabilities .* not a list of numbers from 0 to 1"),
        ("\"[1.5, -0.5]\",\"['no', 'yes']\"", r"probabilities .* not a list of numbers from 0 to 1"),
        ('"[0.9, 0.1]","[0, 1]"', r"labels .* is not a list of texts"),
        ('"[0.9, 0.1]"', r"line 1: 1 fields, expected 2 \(probabilities,labels\)"),
        ('"[0.9, 0.1]","[\'no\', \'yes\']"\n"' + "[" * 200 + "\",\"['no', 'yes']\"", r"line 2: probabilities"),
    ],
)
def test_the_decoder_refuses_an_answer_that_is_not_autopilots(answer, refusal):
    with pytest.raises(ValueError, match=refusal):
        pipeline.scores_of(pipeline.autopilot_predictions(answer, "binary"), "autopilot", "binary", ["no", "yes"])


def test_a_regression_answer_is_its_value_per_line():
    predictions = pipeline.autopilot_predictions("12.5\n\n-3e2\n0\n", "regression")
    assert pipeline.scores_of(predictions, "autopilot", "regression", []).tolist() == [12.5, -300.0, 0.0]
    for answer, refusal in (("1.0,2.0\n", "2 fields"), ("nan\n", "not a finite number"), ("[1]\n", "not a finite")):
        with pytest.raises(ValueError, match=refusal):
            pipeline.autopilot_predictions(answer, "regression")


def _by_hand(schema: dict, record: dict[str, str]) -> list[str | float]:
    """A raw record normalised by dataset_spec's rules, feature by feature: a number (compared
    as a number), a category trimmed, lower case and alias resolved, "" when missing."""
    values: list[str | float] = []
    for feature in schema["features"]:
        text = record[feature["column"]].strip(WHITESPACE)
        if text.lower() in schema["missing_values"]:
            values.append("")
        elif feature["kind"] == "numeric":
            number = parse_number(text)
            values.append("" if number is None else number)
        else:
            values.append(normalise(text, feature.get("aliases")) or "")
    return values


@pytest.mark.parametrize("name", ["bank-marketing", "car-evaluation", "vertebral-column", "wine-quality"])
def test_every_raw_record_views_as_its_normalised_values(prepared, name):
    schema = prepared[name].schema
    encoder = SchemaEncoder(schema, invalid_numbers="impute")  # as the job reads the raw file
    numeric = [f["kind"] == "numeric" for f in schema["features"]]
    for record in raw_records(prepared[name]):
        viewed = encoder.view(record)
        assert len(viewed) == len(schema["input_columns"])
        read = [float(v) if n and v != "" else v for v, n in zip(viewed, numeric, strict=True)]
        assert read == _by_hand(schema, record)
    # The view is neither imputed nor encoded: an ordinal is its name, where encode gives its index.
    ordinal = next((f for f in schema["features"] if f["kind"] == "ordinal"), None)
    if ordinal:
        record = raw_records(prepared[name])[0]
        position = schema["input_columns"].index(ordinal["column"])
        index = encoder.feature_names.index(ordinal["outputs"][0])
        assert ordinal["order"].index(encoder.view(record)[position]) == encoder.encode(record)[index]


def test_the_view_refuses_what_encode_refuses(prepared):
    encoder = SchemaEncoder(prepared["car-evaluation"].schema)
    record = raw_records(prepared["car-evaluation"])[0]
    with pytest.raises(RecordError, match=r"column 'buying': 'pricey' is not one of low, med, high, vhigh"):
        encoder.view({**record, "buying": "pricey"}, row=3)
    assert encoder.view({**record, "buying": " Very High "})[0] == "vhigh"
    assert encoder.view({**record, "buying": "?"})[0] == ""  # missing stays missing: no mode imputed
    bank = SchemaEncoder(prepared["bank-marketing"].schema)
    record = raw_records(prepared["bank-marketing"])[0]
    with pytest.raises(RecordError, match=r"column 'age': '4 2' is not a number"):
        bank.view({**record, "age": "4 2"})
    viewed = bank.view({**record, "age": " 1e3 ", "job": None})
    assert viewed[bank.input_columns.index("age")] == "1000.0"  # not clipped
    assert viewed[bank.input_columns.index("job")] == ""


def test_raw_records_are_encoded_as_the_view_for_autopilots_containers(prepared, bank_autopilot):
    _, model_dir, _ = bank_autopilot
    records = raw_records(prepared["bank-marketing"])[:200]
    records[3] = {**records[3], "job": 'a, "new" job', "age": ""}  # quoted in the CSV; missing is empty
    pipeline.ENVIRONMENT = {"PLATFORM_PIPELINE_STEP": "encode"}
    model = pipeline.model_fn(str(model_dir))
    expected = [model.encoder.view(r) for r in records]
    body = json.dumps({"instances": records})
    rows, media = pipeline.output_fn(pipeline.predict_fn(pipeline.input_fn(body, "application/json"), model), "*/*")
    assert media == "text/csv" and "job" not in rows.splitlines()[0]  # no header
    assert list(csv.reader(io.StringIO(rows))) == expected
    assert '"a, ""new"" job"' in rows.splitlines()[3] and rows.splitlines()[3].startswith(",")
    # The raw file's own lines (its header, delimiter and quotes, the target among the values).
    lines = prepared["bank-marketing"].raw.read_text(encoding="utf-8").splitlines()[:201]
    rows, _ = pipeline.output_fn(pipeline.predict_fn(pipeline.input_fn("\n".join(lines), "text/csv"), model), None)
    raw = raw_records(prepared["bank-marketing"])[:200]
    assert list(csv.reader(io.StringIO(rows))) == [model.encoder.view(r) for r in raw]
    with pytest.raises(inference.BadRequest, match=r"row 2.*blank line"):
        pipeline.predict_fn(pipeline.input_fn("\n".join([lines[1], "", lines[2]]), "text/csv"), model)


def test_autopilots_answer_through_the_decoder_gets_the_platforms_answer_at_its_threshold(bank_autopilot):
    _, model_dir, probabilities = bank_autopilot
    pipeline.ENVIRONMENT = {"PLATFORM_PIPELINE_STEP": "decode"}
    model = pipeline.model_fn(str(model_dir))
    p = probabilities["test"][:50]
    answer = _answer_lines(p, ["no", "yes"], np.random.default_rng(1))
    text, media = pipeline.output_fn(pipeline.predict_fn(pipeline.input_fn(answer.encode(), "text/csv"), model), None)
    assert media == "application/json"
    predictions = json.loads(text)["predictions"]
    assert [a["probability"] for a in predictions] == pytest.approx(p[:, 1], abs=1e-12)
    threshold = model.info["threshold"]
    assert [a["label"] for a in predictions] == ["yes" if q >= threshold else "no" for q in p[:, 1]]
    with pytest.raises(inference.UnsupportedMediaType):  # a built-in's JSON is not Autopilot's answer
        pipeline.input_fn('{"predictions": [{"score": 0.5}]}', "application/json")
    with pytest.raises(ValueError, match="not one of the classes"):
        pipeline.predict_fn(pipeline.input_fn("\"[0.5, 0.5]\",\"['no', 'si']\"\n", "text/csv"), model)


def test_a_regression_models_decoder_answers_autopilots_value(prepared, tmp_path):
    schema = json.loads((prepared["wine-quality"].output / "schema.json").read_text())
    schema["target"] = {**schema["target"], "problem": "regression", "classes": [], "labels": []}
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    info = {"problem": "regression", "classes": [], "algorithm": "autopilot", "threshold": None}
    (tmp_path / "model-info.json").write_text(json.dumps(info))
    pipeline.ENVIRONMENT = {"PLATFORM_PIPELINE_STEP": "decode"}
    model = pipeline.model_fn(str(tmp_path))
    text, _ = pipeline.output_fn(pipeline.predict_fn(pipeline.input_fn("5.25\n6\n", "text/csv"), model), "text/csv")
    assert text == "5.250000\n6.000000\n"
