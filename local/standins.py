"""Stand-ins for SageMaker's built-in Linear Learner and k-NN containers, which cannot run here.

They keep the containers' contracts, not their mathematics (scikit-learn fits the model):

- training (https://docs.aws.amazon.com/sagemaker/latest/dg/linear-learner.html#ll-input_output,
  https://docs.aws.amazon.com/sagemaker/latest/dg/k-nearest-neighbors.html): ``train`` (and
  ``validation``, ``test``) channels of CSV with the label first and no header; the problem's
  hyperparameters (``feature_dim``, which must equal the data's feature count, ``predictor_type``,
  ``num_classes``, ``k``); the model written under /opt/ml/model; the algorithm's own metrics
  (``test:binary_classification_accuracy``, ``test:accuracy``, ``test:mse``, ...), which
  SageMaker reports without metric definitions;
- inference (https://docs.aws.amazon.com/sagemaker/latest/dg/LL-in-formats.html,
  https://docs.aws.amazon.com/sagemaker/latest/dg/cdf-inference.html): ``text/csv`` rows of
  features (no label) or ``application/json`` ``{"instances": [{"features": [...]}]}``; answers
  in ``application/json`` (``{"predictions": [{"score", "predicted_label"}]}``) or
  ``application/jsonlines``. Raw records, or an ``Accept`` the container does not speak, are
  refused as the container refuses them.

The twin says in its trace when a stand-in ran.
"""

from __future__ import annotations

import csv
import io
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np

ALGORITHMS = ("linear-learner", "knn")
MODEL_FILE = "stand-in-model.pkl"
INFO_FILE = "stand-in.json"
JSON, JSONLINES, CSV = "application/json", "application/jsonlines", "text/csv"


class StandInError(ValueError):
    """The job or request fails as the container would fail it."""


def algorithm_of(image: str) -> str | None:
    repository = image.rsplit("/", 1)[-1].split(":")[0]
    return repository if repository in ALGORITHMS else None


def _read(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = [
        [float(value) for value in row]
        for path in sorted(p for p in folder.rglob("*") if p.is_file())
        for row in csv.reader(io.StringIO(path.read_text()))
        if row
    ]
    data = np.array(rows, dtype=np.float64)
    return data[:, 1:], data[:, 0]


def train(algorithm: str, root: Path, hyperparameters: dict[str, str]) -> dict[str, float]:
    """Fit on /opt/ml/input/data/train; write the model; return the algorithm's metrics."""
    from sklearn import linear_model, neighbors, pipeline, preprocessing

    data = root / "input" / "data"
    if not (data / "train").is_dir():
        raise StandInError("ClientError: the train channel is required")
    features, labels = _read(data / "train")
    declared = int(hyperparameters.get("feature_dim", 0))
    if declared != features.shape[1]:
        raise StandInError(
            f"ClientError: feature_dim is {declared}, but the train channel has {features.shape[1]} features"
        )
    predictor = hyperparameters.get("predictor_type", "")
    classifier = predictor in ("binary_classifier", "multiclass_classifier", "classifier")
    if algorithm == "linear-learner":  # Linear Learner normalizes the features by default (normalize_data)
        estimator = linear_model.LogisticRegression(max_iter=1000) if classifier else linear_model.LinearRegression()
        model = pipeline.make_pipeline(preprocessing.StandardScaler(), estimator)
    else:
        k = int(hyperparameters.get("k", 10))
        model = neighbors.KNeighborsClassifier(k) if classifier else neighbors.KNeighborsRegressor(k)
    model.fit(features, labels.astype(int) if classifier else labels)
    (root / "model" / MODEL_FILE).write_bytes(pickle.dumps(model))
    info = {"algorithm": algorithm, "predictor_type": predictor, "feature_dim": declared}
    (root / "model" / INFO_FILE).write_text(json.dumps(info))
    metrics: dict[str, float] = {}
    for channel in ("validation", "test"):
        if (data / channel).is_dir():
            x, y = _read(data / channel)
            metrics |= _metrics(algorithm, predictor, model, x, y, channel)
    return metrics


def _metrics(algorithm: str, predictor: str, model, x: np.ndarray, y: np.ndarray, channel: str) -> dict[str, float]:
    from sklearn import metrics as skm

    if predictor in ("regressor",):
        mse = float(skm.mean_squared_error(y, model.predict(x)))
        return {f"{channel}:mse": mse, f"{channel}:absolute_loss": float(skm.mean_absolute_error(y, model.predict(x)))}
    predicted = model.predict(x)
    accuracy = float(skm.accuracy_score(y.astype(int), predicted))
    if algorithm == "knn":
        return {f"{channel}:accuracy": accuracy}
    if predictor == "binary_classifier":
        return {
            f"{channel}:binary_classification_accuracy": accuracy,
            f"{channel}:precision": float(skm.precision_score(y.astype(int), predicted, zero_division=0)),
            f"{channel}:recall": float(skm.recall_score(y.astype(int), predicted, zero_division=0)),
            f"{channel}:binary_f_beta": float(skm.f1_score(y.astype(int), predicted, zero_division=0)),
        }
    return {f"{channel}:multiclass_accuracy": accuracy}


class Serving:
    """The container's inference contract in the shape serve_local.make_server takes (model_fn,
    input_fn, predict_fn, output_fn)."""

    JSON = JSON

    class UnsupportedMediaType(ValueError):
        pass

    class RecordError(ValueError):
        pass

    @staticmethod
    def model_fn(model_dir: str) -> dict[str, Any]:
        root = Path(model_dir)
        return {"model": pickle.loads((root / MODEL_FILE).read_bytes()), **json.loads((root / INFO_FILE).read_text())}

    @classmethod
    def input_fn(cls, body: str | bytes, content_type: str) -> np.ndarray:
        """The rows, as the container's input_fn reads them: without the model (the record's width
        is checked in predict_fn)."""
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        media = (content_type or "").split(";")[0].strip().lower()
        try:
            if media == CSV:
                rows = [[float(v) for v in row] for row in csv.reader(io.StringIO(text)) if row]
            elif media == JSON:
                rows = [[float(v) for v in item["features"]] for item in json.loads(text)["instances"]]
            else:
                raise cls.UnsupportedMediaType(f"content type {content_type!r} is not supported; use {CSV} or {JSON}")
        except (ValueError, KeyError, TypeError) as error:
            if isinstance(error, cls.UnsupportedMediaType):
                raise
            raise cls.RecordError(f"the body is not rows of numeric features: {error}") from None
        if len({len(row) for row in rows}) > 1:
            raise cls.RecordError("every record needs the same number of numeric features")
        return np.array(rows, dtype=np.float64)

    @classmethod
    def predict_fn(cls, features: np.ndarray, model: dict[str, Any]) -> list[dict[str, Any]]:
        if features.size and features.shape[1] != model["feature_dim"]:
            raise cls.RecordError(f"each record needs feature_dim = {model['feature_dim']} numeric features")
        estimator, predictor = model["model"], model["predictor_type"]
        if model["algorithm"] == "knn":  # k-NN answers the vote (or the neighbours' mean) only
            return [{"predicted_label": float(label)} for label in estimator.predict(features)]
        if predictor == "regressor":
            return [{"score": float(v)} for v in estimator.predict(features)]
        labels = estimator.predict(features)
        scores = estimator.predict_proba(features)
        if predictor == "binary_classifier":
            return [
                {"score": float(s[1]), "predicted_label": int(label)} for s, label in zip(scores, labels, strict=True)
            ]
        return [
            {"score": [float(v) for v in s], "predicted_label": int(label)}
            for s, label in zip(scores, labels, strict=True)
        ]

    @classmethod
    def output_fn(cls, predictions: list[dict[str, Any]], accept: str | None) -> tuple[str, str]:
        media = (accept or JSON).split(";")[0].strip().lower()
        if media in (JSON, "*/*"):
            return json.dumps({"predictions": predictions}), JSON
        if media == JSONLINES:
            return "".join(json.dumps(p) + "\n" for p in predictions), JSONLINES
        raise cls.UnsupportedMediaType(f"accept {accept!r} is not supported; use {JSON} or {JSONLINES}")
