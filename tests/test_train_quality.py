"""How train.py fits the model it saves (issue 14): choices on validation, a refit on train and
validation, validation scored by a booster that did not train on it, and nothing chosen on test.

The trainer runs in-process on a small synthetic binary problem (a copy of train.py in a job's
code folder, as SageMaker unpacks it, so that it finds the inference code it ships), one thread,
so each fit takes a fraction of a second and is the same every time. A feature ``key`` is 0 on
every train row and, in the main run, 1 on exactly the positive validation rows: only a booster
that trained on the validation rows can split on it.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import train
import xgboost as xgb

from tests.conftest import ROOT

FEATURES = ["signal", "noise", "key"]
ROWS = {"train": 300, "validation": 100, "test": 100}
HYPERPARAMETERS = ["--num_round", "60", "--early_stopping_rounds", "10", "--eta", "0.3", "--max_depth", "3"]


def _rows(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    signal, noise = rng.normal(size=count), rng.normal(size=count)
    y = (signal + 0.8 * rng.normal(size=count) > 0).astype(float)
    return np.column_stack([signal, noise, np.zeros(count)]), y


def _channels() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(14)
    return {name: _rows(rng, count) for name, count in ROWS.items()}


def _write(folder: Path, channels: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, str]:
    """A prepared run (SageMaker CSV: target first, no header) and the contract pointing at it."""
    for name, (x, y) in channels.items():
        (folder / name).mkdir(parents=True)
        np.savetxt(folder / name / "part-0.csv", np.column_stack([y, x]), delimiter=",", fmt="%.10g")
    (folder / "schema").mkdir()
    schema = {"dataset": "synthetic", "target": {"problem": "binary", "classes": ["no", "yes"]}}
    (folder / "schema" / "schema.json").write_text(json.dumps(schema | {"feature_names": FEATURES}))
    return {
        **{f"SM_CHANNEL_{name.upper()}": str(folder / name) for name in (*ROWS, "schema")},
        "SM_MODEL_DIR": str(folder / "model"),
        "SM_OUTPUT_DATA_DIR": str(folder / "output"),
    }


@pytest.fixture(scope="module")
def trainer(tmp_path_factory) -> Iterator[ModuleType]:
    """train.py from a job's code folder (beside inference.py, schema_encoder.py, dataset_spec.py)."""
    code = tmp_path_factory.mktemp("code")
    for name in train.INFERENCE_CODE:  # dataset_spec.py comes from etl/, as run_local.py takes it
        source = ROOT / "training_jobs" / name
        shutil.copyfile(source if source.exists() else ROOT / "etl" / name, code / name)
    shutil.copyfile(ROOT / "training_jobs" / "train.py", code / "train.py")
    spec = importlib.util.spec_from_file_location("train_in_job_folder", code / "train.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # where its dataclass looks itself up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


class Run:
    def __init__(self, folder: Path, evaluation: dict[str, Any]) -> None:
        self.folder, self.evaluation = folder, evaluation
        self.info = json.loads((folder / "model" / train.INFO_FILE).read_text())
        self.model_bytes = (folder / "model" / "xgboost-model.json").read_bytes()
        self.booster = xgb.Booster()
        self.booster.load_model(folder / "model" / "xgboost-model.json")

    def splits_on(self, feature: str) -> bool:
        return feature in self.booster.get_score(importance_type="weight")


def _train(trainer: ModuleType, folder: Path, channels, *extra: str) -> Run:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SM_NUM_CPUS", "1")
        evaluation = trainer.train(_write(folder, channels), trainer.parse_hyperparameters([*HYPERPARAMETERS, *extra]))
    # What the trainer wrote is what it returned.
    assert json.loads((folder / "output" / train.EVALUATION_FILE).read_text()) == evaluation
    return Run(folder, evaluation)


@pytest.fixture(scope="module")
def runs(trainer, tmp_path_factory) -> dict[str, Run]:
    base = _channels()
    x_val, y_val = base["validation"]
    keyed = {**base, "validation": (np.column_stack([x_val[:, :2], y_val]), y_val)}  # key = 1 on the positives
    x_test, y_test = base["test"]
    rng = np.random.default_rng(7)
    other_test = {**keyed, "test": (rng.permutation(x_test) * 3.0 + 1.0, 1.0 - y_test)}
    cases = {
        "refit": (keyed, ()),
        "refit, no key on validation": (base, ()),
        "refit, another test split": (other_test, ()),
        "no refit": (keyed, ("--refit", "false")),
    }
    return {
        name: _train(trainer, tmp_path_factory.mktemp(name.replace(",", "").replace(" ", "-")), channels, *extra)
        for name, (channels, extra) in cases.items()
    }


def test_the_saved_model_is_refitted_on_train_and_validation_for_the_chosen_rounds(runs):
    run = runs["refit"]
    fit, rounds = run.evaluation["fit"], run.evaluation["fit"]["rounds"]
    assert fit["refit"] is True and fit["refit_on"] == ["train", "validation"]
    assert fit["rows"] == ROWS["train"] + ROWS["validation"]
    assert 1 <= rounds < 60, "early stopping chose the rounds"
    # Exactly the chosen rounds, all of them used at inference (model-info.json's best_iteration).
    assert run.booster.num_boosted_rounds() == rounds
    assert run.evaluation["best_iteration"] == run.info["best_iteration"] == rounds - 1
    # It learned from the validation rows: `key` is constant on train, informative on validation.
    assert run.splits_on("key")
    assert not runs["refit, no key on validation"].splits_on("key")


def test_without_refit_the_early_stopping_booster_trained_on_train_alone_is_saved(runs):
    run, refitted = runs["no refit"], runs["refit"]
    fit = run.evaluation["fit"]
    assert fit["refit"] is False and fit["refit_on"] == ["train"] and fit["rows"] == ROWS["train"]
    assert fit["rounds"] == refitted.evaluation["fit"]["rounds"]
    assert run.evaluation["best_iteration"] == run.info["best_iteration"] == fit["rounds"] - 1
    assert run.booster.num_boosted_rounds() >= fit["rounds"] and not run.splits_on("key")
    # The same booster scored validation in both runs.
    assert run.evaluation["validation"] == refitted.evaluation["validation"]


def test_validation_is_scored_by_a_booster_that_did_not_train_on_it(runs):
    """Only `key` on the validation rows differs between the two runs: a booster that trained on
    those rows scores them by it (and its validation metrics and threshold would move); the
    train-only booster cannot, so the validation figures and the threshold are the same."""
    keyed, plain = runs["refit"].evaluation, runs["refit, no key on validation"].evaluation
    assert runs["refit"].model_bytes != runs["refit, no key on validation"].model_bytes
    for part in ("validation", "validation_at_0.5", "fit"):
        assert keyed[part] == plain[part], part
    assert keyed["test"]["threshold"] == keyed["validation"]["threshold"] == runs["refit"].info["threshold"]
    # Had validation been scored by the refitted booster, `key` would give its positives away.
    assert keyed["validation"]["auc"] < 0.99


def test_the_test_split_chooses_nothing(runs):
    """Another test split (other rows, flipped labels): the same model, byte for byte, the same
    threshold, rounds and validation figures; only the test metrics change."""
    one, other = runs["refit"], runs["refit, another test split"]
    assert one.model_bytes == other.model_bytes
    assert one.info == other.info
    for part in ("validation", "validation_at_0.5", "fit", "best_iteration", "hyperparameters", "threshold_criterion"):
        assert one.evaluation[part] == other.evaluation[part], part
    assert one.evaluation["test"] != other.evaluation["test"]


def test_min_child_weight_is_chosen_on_validation_only_when_not_given(runs, trainer, tmp_path):
    fit = runs["refit"].evaluation["fit"]
    candidates = fit["candidates"]
    assert [c["min_child_weight"] for c in candidates] == list(train.MIN_CHILD_WEIGHTS)
    best = min(candidates, key=lambda c: c["validation_logloss"])
    assert (fit["min_child_weight"], fit["rounds"]) == (best["min_child_weight"], best["rounds"])
    assert fit["stopping_metric"] == "logloss"
    # Given, it means what it says: one candidate, that value.
    given = _train(trainer, tmp_path, _channels(), "--min_child_weight", "3").evaluation["fit"]
    assert [c["min_child_weight"] for c in given["candidates"]] == [3.0] and given["min_child_weight"] == 3.0


def test_candidate_params_per_problem():
    hp = train.parse_hyperparameters(["--max_depth", "4"])
    weights = [p.get("min_child_weight") for p in train.candidate_params(hp, "multiclass", 4)]
    assert weights == list(train.MIN_CHILD_WEIGHTS)
    # Squared error's hessian is 1 a row: every candidate would be the same booster.
    assert [p.get("min_child_weight") for p in train.candidate_params(hp, "regression", 0)] == [None]
    given = train.parse_hyperparameters(["--min_child_weight", "0.5"])
    assert [p["min_child_weight"] for p in train.candidate_params(given, "binary", 2)] == [0.5]
    assert all(p["max_depth"] == 4 for p in train.candidate_params(hp, "binary", 2))


def test_early_stopping_rounds_0_trains_every_round():
    x, y = _channels()["train"]
    dtrain, dval = xgb.DMatrix(x[:200], label=y[:200]), xgb.DMatrix(x[200:], label=y[200:])
    hp = train.parse_hyperparameters(["--num_round", "7", "--early_stopping_rounds", "0"])
    params = train.booster_params(hp, "binary", 2) | {"nthread": 1}
    candidate = train.early_stopped(params, dtrain, dval, hp)
    assert candidate.rounds == candidate.booster.num_boosted_rounds() == 7


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("True", True), ("1", True), ("false", False)])
def test_refit_reads_true_and_false_as_sagemaker_passes_them(value, expected):
    assert train.parse_hyperparameters(["--refit", value])["refit"] is expected
    assert train.parse_hyperparameters([])["refit"] is True


@pytest.mark.parametrize("arguments", [["--refit", "maybe"], ["--num_round", "0"], ["--early_stopping_rounds", "-1"]])
def test_hyperparameters_out_of_range_are_refused(arguments, capsys):
    with pytest.raises(SystemExit):
        train.parse_hyperparameters(arguments)
    assert "error" in capsys.readouterr().err


# --- the shipped datasets, as the session's fixtures trained them (no training of their own) ---


@pytest.mark.parametrize("name", ["bank-marketing", "car-evaluation", "vertebral-column", "wine-quality"])
def test_each_shipped_model_is_the_refit_inference_uses_whole(trained, name):
    run = trained[name]
    evaluation, model = run.evaluation, run.out / "model"
    fit, rows = evaluation["fit"], evaluation["rows"]
    assert fit["refit"] is True and fit["rows"] == rows["train"] + rows["validation"]
    booster = xgb.Booster()
    booster.load_model(model / "xgboost-model.json")
    info = json.loads((model / train.INFO_FILE).read_text())
    assert booster.num_boosted_rounds() == fit["rounds"] == info["best_iteration"] + 1
    assert evaluation["best_iteration"] == info["best_iteration"]
    assert fit["rounds"] <= evaluation["hyperparameters"]["num_round"]
