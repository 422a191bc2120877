"""The platform's container in a built-in algorithm's inference pipeline.

A model package of Linear Learner or k-NN is a serial inference pipeline
(https://docs.aws.amazon.com/sagemaker/latest/dg/inference-pipelines.html) of three containers,
so that its endpoint and its batch transform take and give what the XGBoost path does:

1. this code with ``PLATFORM_PIPELINE_STEP=encode``: raw records in (inference.py's request
   contract: the raw file's lines or JSON records), the features out as the ETL job prepared the
   training data: ``text/csv``, one row per record, no target;
2. the algorithm's container: those rows in, its own JSON out (``{"predictions": [...]}``, the
   answer it gives when no type is asked for);
3. this code with ``PLATFORM_PIPELINE_STEP=decode``: the algorithm's answer in, the platform's
   answer out (inference.py's: the probability and the label at the threshold the platform's
   evaluation chose on validation, the class probabilities, or the value), in the type the
   request's ``Accept`` names.

Each container gets the answer of the one before it as its request, with that answer's
Content-Type; a container before the last answers in its default type. That is why the encoder
answers CSV whatever it is asked and carries ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=text/csv``,
as Autopilot's own pipelines set it for their feature-transform container
(https://docs.aws.amazon.com/sagemaker/latest/dg/autopilot-automate-model-development-container-output.html).

The model folder (``model.tar.gz`` of the platform's evaluation job, training_jobs/evaluate.py)
holds ``schema.json``, ``model-info.json`` (problem, classes, algorithm, threshold) and ``code/``.
A blank CSV line has no place in the algorithm's rows: the pipeline refuses it (400), where the
XGBoost container answers it with a blank line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import inference
import numpy as np
from inference import CSV, BadRequest, CsvLines, UnsupportedMediaType
from schema_encoder import RecordError, SchemaEncoder

__all__ = ["RecordError", "UnsupportedMediaType", "input_fn", "model_fn", "output_fn", "predict_fn"]

STEP_VARIABLE = "PLATFORM_PIPELINE_STEP"
STEPS = ("encode", "decode")
JSON, JSONLINES = "application/json", "application/jsonlines"
ALGORITHMS = ("linear-learner", "knn")
# The container's environment (SageMaker sets the model's Environment on the process).
ENVIRONMENT: Mapping[str, str] = os.environ


def step() -> str:
    value = ENVIRONMENT.get(STEP_VARIABLE, "")
    if value not in STEPS:
        raise ValueError(f"{STEP_VARIABLE} is {value!r}; it must be one of {', '.join(STEPS)}")
    return value


@dataclass
class PipelineModel:
    step: str
    encoder: SchemaEncoder
    info: dict[str, Any]
    labels: list[str]


def model_fn(model_dir: str) -> PipelineModel:
    encoder, info, labels = inference.described(Path(model_dir))
    if info.get("algorithm") not in ALGORITHMS:
        raise ValueError(f"model-info.json: algorithm {info.get('algorithm')!r} is not one of {', '.join(ALGORITHMS)}")
    return PipelineModel(step(), encoder, info, labels)


def input_fn(body: str | bytes, content_type: str | None = None) -> CsvLines | list[Any] | list[Mapping[str, Any]]:
    """The encoder reads raw records (inference.input_fn); the decoder the algorithm's answer."""
    if step() == "encode":
        return inference.input_fn(body, content_type)
    text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else body
    return algorithm_predictions(text, content_type or JSON)


def algorithm_predictions(text: str, content_type: str) -> list[Mapping[str, Any]]:
    """The per-record predictions of a built-in algorithm's answer: ``application/json``
    (``{"predictions": [...]}``) or ``application/jsonlines`` (one prediction per line).
    https://docs.aws.amazon.com/sagemaker/latest/dg/LL-in-formats.html,
    https://docs.aws.amazon.com/sagemaker/latest/dg/kNN-inference-formats.html"""
    media = content_type.split(";")[0].strip().lower()
    if media == JSON:
        predictions = json.loads(text)["predictions"]
    elif media == JSONLINES:
        predictions = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        raise UnsupportedMediaType(f"the algorithm answered {content_type!r}; the decoder reads {JSON} or {JSONLINES}")
    if not isinstance(predictions, list) or not all(isinstance(p, dict) for p in predictions):
        raise ValueError("the algorithm's answer is not a list of predictions")
    return predictions


def scores_of(predictions: Sequence[Mapping[str, Any]], algorithm: str, problem: str, classes: int) -> np.ndarray:
    """The algorithm's predictions as the platform's scores: the positive class's probability
    (binary), each class's probability (multiclass) or the value (regression).

    Linear Learner gives ``score`` (a probability, the classes' probabilities, or the value).
    k-NN gives only ``predicted_label`` (the neighbours' vote, or their mean for a regressor): a
    classifier's score is then that label (1 or 0 for binary, one class certain for multiclass)."""
    if algorithm == "linear-learner":
        scores = np.array([p["score"] for p in predictions], dtype=np.float64)
        if problem == "multiclass" and (scores.ndim != 2 or scores.shape[1] != classes):
            raise ValueError(f"linear-learner's multiclass scores are not {classes} probabilities per record")
        return scores
    labels = np.array([p["predicted_label"] for p in predictions], dtype=np.float64)
    if problem == "multiclass":
        classes_of = labels.astype(int)
        if labels.size and (classes_of.min() < 0 or classes_of.max() >= classes):
            raise ValueError(f"knn predicted a class outside 0..{classes - 1}")
        return np.eye(classes)[classes_of]
    return labels


def predict_fn(data: Any, model: PipelineModel) -> Any:
    if model.step == "encode":
        held, features = inference.encode(data, model.encoder)
        if not all(held):
            row = held.index(False) + 1
            raise BadRequest(row, None, "a blank line: the pipeline answers one prediction per record, send none")
        return features
    problem = model.info["problem"]
    scores = scores_of(data, model.info["algorithm"], problem, len(model.labels))
    return inference.answers(scores, problem, model.labels, model.info.get("threshold"))


def output_fn(prediction: Any, accept: str | None) -> tuple[str, str]:
    """The encoder answers the rows as CSV, whatever the Accept (the algorithm reads CSV); the
    decoder answers as inference.py does."""
    if isinstance(prediction, np.ndarray):
        return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in prediction), CSV
    return inference.output_fn(prediction, accept)
