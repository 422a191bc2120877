"""A stand-in for SageMaker Autopilot (AutoML V2, tabular), which cannot run here.

It keeps Autopilot's contract, not its search (a few XGBoost configurations play the candidates):

- the job (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateAutoMLJobV2.html):
  a ``training`` and a ``validation`` channel of CSV with a header (``text/csv;header=present``),
  the target named by ``TargetAttributeName``; at most ``MaxCandidates`` candidates, each judged by
  the job's objective metric on the validation channel; the best candidate's inference container,
  its objective value and its artifacts (the notebooks, an explainability folder) under the job's
  ``S3OutputPath``; no EventBridge event when the job ends (SageMaker sends none);
- inference (https://docs.aws.amazon.com/sagemaker/latest/dg/autopilot-automate-model-development-container-output.html):
  ``text/csv`` rows of the features in the training data's order, no header, no target, a missing
  value an empty field; the answer is one CSV line per row, of the keys the container's
  ``SAGEMAKER_INFERENCE_OUTPUT`` names (``predicted_label``, ``probability``, ``probabilities``,
  ``labels``; by default ``predicted_label``), lists written as Python writes them
  (``"[0.9, 0.1]","['1', '0']"``), or the value for regression.

The candidates' features: a numeric column (every present value a number) as it is, missing
values left to XGBoost; any other column one-hot over the training values. The labels are the
target's values in sorted order, as Autopilot lists its own (its order, not the platform's).
"""

from __future__ import annotations

import csv
import io
import json
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_REPOSITORY = "autopilot-stand-in"  # the twin's candidates' image: a stand-in, and named so
MODEL_FILE = "autopilot-stand-in.pkl"
KEYS = ("predicted_label", "probability", "probabilities", "labels")
CSV = "text/csv"
# The XGBoost configurations the stand-in tries, in order (as many as MaxCandidates allows).
CONFIGURATIONS = (
    {"max_depth": 6, "eta": 0.1, "min_child_weight": 1.0},
    {"max_depth": 4, "eta": 0.05, "min_child_weight": 1.0},
    {"max_depth": 8, "eta": 0.2, "min_child_weight": 0.1},
)
ROUNDS, EARLY_STOPPING = 1000, 30
MINIMIZED = ("MSE", "RMSE", "MAE")  # Autopilot's objectives where lower is better


class AutopilotError(ValueError):
    """The job or the request fails as Autopilot would fail it."""


def is_stand_in(image: str) -> bool:
    return image.rsplit("/", 1)[-1].split(":")[0] == IMAGE_REPOSITORY


@dataclass
class Features:
    """The candidates' features of a raw-feature table: numeric columns as they are, the others one-hot."""

    columns: list[str]
    numeric: list[str]
    categories: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fit(cls, table) -> Features:
        import pandas as pd

        numeric = [
            c for c in table.columns if pd.to_numeric(table[c].dropna(), errors="coerce").notna().all()
        ]  # fmt: skip
        categories = {
            c: sorted(str(v) for v in table[c].dropna().unique()) for c in table.columns if c not in numeric
        }  # fmt: skip
        return cls(list(table.columns), numeric, categories)

    def matrix(self, table) -> np.ndarray:
        import pandas as pd

        blocks = []
        for column in self.columns:
            values = table[column]
            if column in self.numeric:
                blocks.append(pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)[:, None])
            else:
                text = values.astype("string")
                one_hot = [(text == c).fillna(False).to_numpy(dtype=np.float64) for c in self.categories[column]]
                blocks.append(np.column_stack(one_hot) if one_hot else np.zeros((len(table), 0)))
        return np.hstack(blocks) if blocks else np.zeros((len(table), 0))


def _read(folder: Path):
    import pandas as pd

    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise AutopilotError(f"ClientError: the channel {folder.name} holds no file")
    # Every value as text first: a column's kind is the stand-in's to infer, as Autopilot infers it.
    return pd.concat([pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""]) for p in files])


def search(
    training: Path, validation: Path, target: str, problem: str, metric: str, max_candidates: int
) -> tuple[dict[str, Any], list[dict[str, Any]], bytes]:
    """The candidates on the two channels: (the best's model, every candidate's name, settings,
    validation objective and whether it is the best, the best's feature importances as JSON). ``problem`` is the job's
    ProblemType, ``metric`` its objective's name."""
    import xgboost as xgb

    train, valid = _read(training), _read(validation)
    for name, table in (("training", train), ("validation", valid)):
        if target not in table.columns:
            raise AutopilotError(f"ClientError: the {name} channel has no column {target!r} (TargetAttributeName)")
    features = Features.fit(train.drop(columns=[target]))
    x_train, x_valid = features.matrix(train.drop(columns=[target])), features.matrix(valid.drop(columns=[target]))
    regression = problem == "Regression"
    if regression:
        labels: list[str] = []
        y_train, y_valid = train[target].astype(float).to_numpy(), valid[target].astype(float).to_numpy()
        objective = {"objective": "reg:squarederror"}
    else:
        labels = sorted(set(train[target]) | set(valid[target]))
        index = {label: i for i, label in enumerate(labels)}
        y_train, y_valid = train[target].map(index).to_numpy(), valid[target].map(index).to_numpy()
        objective = (
            {"objective": "binary:logistic"}
            if problem == "BinaryClassification"
            else {"objective": "multi:softprob", "num_class": len(labels)}
        )
    dtrain, dvalid = xgb.DMatrix(x_train, label=y_train), xgb.DMatrix(x_valid, label=y_valid)
    candidates = []
    for number, configuration in enumerate(CONFIGURATIONS[:max_candidates], start=1):
        params = {**objective, **configuration, "seed": 1, "nthread": 1}
        booster = xgb.train(
            params, dtrain, ROUNDS, evals=[(dvalid, "validation")], early_stopping_rounds=EARLY_STOPPING,
            verbose_eval=False,
        )  # fmt: skip
        rounds = booster.best_iteration + 1
        scores = booster.predict(dvalid, iteration_range=(0, rounds))
        value = objective_value(metric, problem, y_valid, scores)
        candidates.append(
            {"name": f"stand-in-candidate-{number}", "settings": configuration, "rounds": rounds, "value": value,
             "booster": booster}
        )  # fmt: skip
    if not candidates:
        raise AutopilotError("ClientError: MaxCandidates allows no candidate")
    best = (min if metric in MINIMIZED else max)(candidates, key=lambda c: c["value"])
    model = {
        "features": features,
        "problem": problem,
        "labels": labels,
        "rounds": best["rounds"],
        "booster": bytes(best["booster"].save_raw("ubj")),
    }
    importance = best["booster"].get_score(importance_type="gain")
    explained = json.dumps({"feature_importance_gain": importance, "note": "the twin's stand-in"}).encode()
    summary = [{**{k: v for k, v in c.items() if k != "booster"}, "best": c is best} for c in candidates]
    return model, summary, explained


def objective_value(metric: str, problem: str, truth: np.ndarray, scores: np.ndarray) -> float:
    """The candidate's value of Autopilot's objective metric (AutoMLMetricEnum's names)."""
    from sklearn import metrics as skm

    if problem == "Regression":
        error = {"MSE": skm.mean_squared_error, "MAE": skm.mean_absolute_error, "R2": skm.r2_score}
        if metric == "RMSE":
            return float(np.sqrt(skm.mean_squared_error(truth, scores)))
        return float(error[metric](truth, scores))
    if problem == "BinaryClassification":
        predicted = (scores >= 0.5).astype(int)
        if metric == "AUC":
            return float(skm.roc_auc_score(truth, scores))
    else:
        predicted = scores.argmax(axis=1)
    measures = {
        "Accuracy": skm.accuracy_score,
        "BalancedAccuracy": skm.balanced_accuracy_score,
        "F1": lambda t, p: skm.f1_score(t, p, zero_division=0),
        "F1macro": lambda t, p: skm.f1_score(t, p, average="macro", zero_division=0),
        "Precision": lambda t, p: skm.precision_score(t, p, zero_division=0),
        "Recall": lambda t, p: skm.recall_score(t, p, zero_division=0),
    }
    if metric not in measures:
        raise AutopilotError(f"ClientError: the stand-in does not compute {metric} for {problem}")
    return float(measures[metric](truth, predicted))


def model_archive(model: Mapping[str, Any]) -> bytes:
    """model.tar.gz of a candidate: the stand-in's pickle."""
    import tarfile

    body = pickle.dumps(dict(model))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(MODEL_FILE)
        info.size = len(body)
        archive.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


class Serving:
    """The candidate container's inference contract in the shape serve_local.make_server takes,
    for one container's environment (``SAGEMAKER_INFERENCE_OUTPUT``)."""

    JSON = "application/json"

    class UnsupportedMediaType(ValueError):
        pass

    class RecordError(ValueError):
        pass

    def __init__(self, environment: Mapping[str, str]) -> None:
        keys = [k.strip() for k in environment.get("SAGEMAKER_INFERENCE_OUTPUT", "predicted_label").split(",")]
        unknown = [k for k in keys if k not in KEYS]
        if unknown:
            raise AutopilotError(f"SAGEMAKER_INFERENCE_OUTPUT names {unknown}; the keys are {', '.join(KEYS)}")
        self.keys = keys

    @staticmethod
    def model_fn(model_dir: str) -> dict[str, Any]:
        import xgboost as xgb

        model = pickle.loads((Path(model_dir) / MODEL_FILE).read_bytes())
        booster = xgb.Booster()
        booster.load_model(bytearray(model["booster"]))
        return {**model, "booster": booster}

    def input_fn(self, body: str | bytes, content_type: str):
        import pandas as pd

        media = (content_type or "").split(";")[0].strip().lower()
        if media != CSV:
            raise self.UnsupportedMediaType(f"content type {content_type!r} is not supported; use {CSV}")
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
        return pd.DataFrame([[v if v != "" else None for v in row] for row in rows], dtype=object)

    def predict_fn(self, table, model: Mapping[str, Any]) -> list[list[Any]]:
        import xgboost as xgb

        features: Features = model["features"]
        if len(table.columns) != len(features.columns):
            raise self.RecordError(f"each row needs {len(features.columns)} values, in the training data's order")
        table.columns = features.columns
        scores = model["booster"].predict(
            xgb.DMatrix(features.matrix(table)), iteration_range=(0, model["rounds"])
        )  # fmt: skip
        if model["problem"] == "Regression":
            return [[float(v)] for v in scores]
        labels = model["labels"]
        if model["problem"] == "BinaryClassification":
            scores = np.column_stack([1 - scores, scores])
        answers = []
        for row in scores:
            best = int(np.argmax(row))
            found = {
                "predicted_label": labels[best],
                "probability": float(row[best]),
                "probabilities": repr([float(v) for v in row]),
                "labels": repr(list(labels)),
            }
            answers.append([found[k] for k in self.keys])
        return answers

    def output_fn(self, answers: list[list[Any]], accept: str | None) -> tuple[str, str]:
        media = (accept or CSV).split(";")[0].strip().lower()
        if media not in (CSV, "*/*"):
            raise self.UnsupportedMediaType(f"accept {accept!r} is not supported; the stand-in answers {CSV}")
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(answers)
        return buffer.getvalue(), CSV
