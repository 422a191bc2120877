"""The XGBoost trainer through run_local.py on the real prepared datasets, and its contract."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import train

from tests.conftest import QUALITY, RAW_FILES, ROOT, run_local

DATASETS = sorted(RAW_FILES)
BINARY_METRICS = {"auc", "accuracy", "precision", "recall", "specificity", "f1", "log_loss", "threshold"}


@pytest.mark.parametrize("name", DATASETS)
def test_model_quality_matches_the_reference_figures(trained, name):
    metric, bar = QUALITY[name]
    assert trained[name].evaluation["test"][metric] >= bar


@pytest.mark.parametrize("name", ["bank-marketing", "vertebral-column", "wine-quality"])
def test_binary_evaluation_has_every_metric_and_a_consistent_confusion_matrix(trained, name):
    evaluation = trained[name].evaluation
    test = evaluation["test"]
    assert set(test) >= BINARY_METRICS
    matrix = test["confusion_matrix"]
    assert sum(matrix.values()) == evaluation["rows"]["test"]
    tp, fp, fn, tn = matrix["tp"], matrix["fp"], matrix["fn"], matrix["tn"]
    assert test["recall"] == pytest.approx(tp / (tp + fn))
    assert test["specificity"] == pytest.approx(tn / (tn + fp))
    assert test["accuracy"] == pytest.approx((tp + tn) / (tp + fp + fn + tn))
    # The threshold is chosen on validation and used unchanged on test.
    assert test["threshold"] == evaluation["validation"]["threshold"]
    assert 0 < test["threshold"] < 1


def test_multiclass_evaluation_has_accuracy_macro_f1_and_the_confusion_matrix(trained):
    evaluation = trained["car-evaluation"].evaluation
    test = evaluation["test"]
    assert {"accuracy", "macro_f1", "confusion_matrix"} <= set(test)
    matrix = test["confusion_matrix"]
    assert len(matrix) == 4 and all(len(row) == 4 for row in matrix)
    assert sum(map(sum, matrix)) == evaluation["rows"]["test"]
    assert test["accuracy"] == pytest.approx(sum(matrix[i][i] for i in range(4)) / evaluation["rows"]["test"])


def test_regression_metrics_are_computed(tmp_path):
    import numpy as np

    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.5, 2.0, 2.5, 4.0])
    result = train.evaluate("regression", y, p, None, 0)
    assert result["mse"] == pytest.approx(0.125)
    assert result["rmse"] == pytest.approx(0.125**0.5)
    assert result["mae"] == pytest.approx(0.25)
    assert result["r2"] == pytest.approx(1 - 0.5 / 5.0)


def test_model_dir_holds_model_schema_info_evaluation_and_inference_code(trained):
    model = trained["bank-marketing"].out / "model"
    assert {p.name for p in model.iterdir()} == {
        "xgboost-model.json",
        "schema.json",
        "model-info.json",
        "evaluation.json",
        "code",
    }
    # The serving container runs code/inference.py (SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code).
    assert {p.name for p in (model / "code").iterdir()} == {"inference.py", "schema_encoder.py", "dataset_spec.py"}
    assert json.loads((model / "schema.json").read_text()) == trained["bank-marketing"].prepared.schema
    info = json.loads((model / "model-info.json").read_text())
    assert (
        info["classes"] == ["no", "yes"]
        and info["threshold"] == trained["bank-marketing"].evaluation["test"]["threshold"]
    )


@pytest.mark.parametrize("name", DATASETS)
def test_metric_lines_parse_with_the_metric_definitions_regex(trained, name):
    log = trained[name].log
    evaluation = trained[name].evaluation
    for channel in ("validation", "test"):
        metric = evaluation["objective_metric"]
        match = re.search(train.METRIC_REGEX.format(channel=channel, name=metric), log)
        assert match, f"no {channel}:{metric} line in the log"
        assert float(match.group(1)) == pytest.approx(evaluation[channel][metric], abs=1e-6)


def test_hyperparameters_override_the_spec(prepared, tmp_path):
    result = run_local(
        prepared["car-evaluation"], tmp_path / "car", "--hyperparameters", '{"max_depth": 2, "num_round": 5}'
    )
    assert result.returncode == 0, result.stderr
    evaluation = json.loads((tmp_path / "car" / "output" / "evaluation.json").read_text())
    assert evaluation["hyperparameters"]["max_depth"] == 2 and evaluation["best_iteration"] <= 4


def test_an_unknown_hyperparameter_is_refused_by_name(prepared, tmp_path):
    result = run_local(prepared["car-evaluation"], tmp_path / "car", "--hyperparameters", '{"max_detph": 2}')
    assert result.returncode == 2
    assert "unknown hyperparameters ['--max_detph']" in result.stderr
    assert not (tmp_path / "car").exists()


def test_the_trainer_outside_a_training_contract_says_so():
    result = subprocess.run(
        [sys.executable, str(ROOT / "training_jobs" / "train.py")],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": ""},
    )
    assert result.returncode == 2
    assert "the SageMaker contract is not set up: missing SM_CHANNEL_TRAIN" in result.stderr


def test_run_local_refuses_a_folder_that_is_not_a_prepared_run(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "training_jobs" / "run_local.py"),
            "--prepared",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "is not a prepared run" in result.stderr


def _run_local(*arguments: str):
    command = [sys.executable, str(ROOT / "training_jobs" / "run_local.py"), *arguments]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_run_local_says_in_one_line_what_is_wrong_with_its_paths(prepared, tmp_path):
    car = str(prepared["car-evaluation"].output)
    cases = {
        "is not a folder": ("--prepared", str(tmp_path / "absent"), "--out", str(tmp_path / "o")),
        "cannot read the spec": ("--prepared", car, "--out", str(tmp_path / "o"), "--spec", str(tmp_path / "x.json")),
        "was prepared for 'car-evaluation'": (
            "--prepared",
            car,
            "--out",
            str(tmp_path / "o"),
            "--spec",
            str(ROOT / "datasets" / "bank-marketing.json"),
        ),
    }
    for expected, arguments in cases.items():
        result = _run_local(*arguments)
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


# --- the decision threshold: the business's criteria on the real datasets ---


def _validation_scores(trained, name):
    """The saved model's scores on its validation split: real scores to choose thresholds on. (The
    saved model is refitted on train and validation; train.py chose its threshold on the scores
    of the early-stopping booster, which did not see these rows: tests/test_train_quality.py.)"""
    import numpy as np
    import xgboost as xgb

    model = trained[name].out / "model"
    info = json.loads((model / train.INFO_FILE).read_text())
    booster = xgb.Booster()
    booster.load_model(model / train.MODEL_FILE)
    x, y = train.read_channel(trained[name].prepared.output / "validation")
    scores = booster.predict(
        xgb.DMatrix(x, feature_names=info["feature_names"]), iteration_range=(0, info["best_iteration"] + 1)
    )
    return np.asarray(y, dtype=int), scores


def _brute_force(y, p, loss):
    """The least loss over every threshold a decision can change at (each score, and above all)."""
    candidates = sorted({*p.tolist(), float("inf")})
    return min(loss(((p >= t) & (y == 0)).sum(), ((p < t) & (y == 1)).sum()) for t in candidates)


@pytest.mark.parametrize("name", ["bank-marketing", "vertebral-column", "wine-quality"])
@pytest.mark.parametrize("costs", [(1.0, 1.0), (1.0, 10.0), (5.0, 1.0)])
def test_the_cost_threshold_is_the_cheapest_on_validation(trained, name, costs):
    y, p = _validation_scores(trained, name)
    threshold = train.choose_threshold(y, p, "cost", costs)
    spent = train.evaluate("binary", y, p, threshold, 2, costs)["cost"] * len(y)
    assert spent == pytest.approx(_brute_force(y, p, lambda fp, fn: costs[0] * fp + costs[1] * fn))
    for other in (0.5, train.choose_threshold(y, p, "f1")):  # never dearer than the usual choices
        assert spent <= train.evaluate("binary", y, p, other, 2, costs)["cost"] * len(y) + 1e-9


@pytest.mark.parametrize("name", ["bank-marketing", "vertebral-column", "wine-quality"])
def test_the_accuracy_threshold_is_the_most_accurate_on_validation(trained, name):
    y, p = _validation_scores(trained, name)
    threshold = train.choose_threshold(y, p, "accuracy")
    errors = len(y) * (1 - train.evaluate("binary", y, p, threshold, 2)["accuracy"])
    assert errors == pytest.approx(_brute_force(y, p, lambda fp, fn: fp + fn))
    assert errors <= len(y) * (1 - train.evaluate("binary", y, p, 0.5, 2)["accuracy"]) + 1e-9


def test_a_dearer_missed_positive_lowers_the_threshold(trained):
    y, p = _validation_scores(trained, "bank-marketing")
    cheap, dear = (train.choose_threshold(y, p, "cost", (1.0, c)) for c in (1.0, 20.0))
    assert dear < cheap


def test_the_cost_criterion_trains_end_to_end_and_reports_cost_at_its_threshold_and_at_half(prepared, tmp_path):
    """run_local with a spec that prices the errors: the threshold, the cost on test, and the
    metrics at 0.5 beside it in evaluation.json."""
    spec = json.loads((ROOT / "datasets" / "vertebral-column.json").read_text())
    spec["training"].update(threshold_criterion="cost", false_positive_cost=1, false_negative_cost=4)
    spec["training"].pop("tuning", None)
    spec_file = tmp_path / "vertebral-column.json"
    spec_file.write_text(json.dumps(spec))
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "training_jobs" / "run_local.py"),
            "--prepared",
            str(prepared["vertebral-column"].output),
            "--out",
            str(tmp_path / "out"),
            "--spec",
            str(spec_file),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    evaluation = json.loads((tmp_path / "out" / "output" / "evaluation.json").read_text())
    test, half = evaluation["test"], evaluation["test_at_0.5"]
    assert evaluation["threshold_criterion"] == "cost" and half["threshold"] == 0.5
    matrix = test["confusion_matrix"]
    assert test["cost"] == pytest.approx((matrix["fp"] * 1 + matrix["fn"] * 4) / evaluation["rows"]["test"])
    assert evaluation["hyperparameters"]["false_negative_cost"] == 4
    assert re.search(r"metric test:cost=", result.stdout)
