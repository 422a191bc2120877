"""The platform's container in a built-in algorithm's or Autopilot's inference pipeline.

A model package of Linear Learner, k-NN or Autopilot is a serial inference pipeline
(https://docs.aws.amazon.com/sagemaker/latest/dg/inference-pipelines.html) of the platform's
encoder, the algorithm's container(s) and the platform's decoder, so that its endpoint and its
batch transform take and give what the XGBoost path does:

1. this code with ``PLATFORM_PIPELINE_STEP=encode``: raw records in (inference.py's request
   contract: the raw file's lines or JSON records), ``text/csv`` out, one row per record, no
   header, no target. For Linear Learner and k-NN the row is the features as the ETL job
   prepared the training data; for Autopilot it is the raw-feature view the ETL job wrote for
   Autopilot (schema_encoder.py's ``view``: every input column in ``input_columns`` order, numbers
   as ``repr(float)``, categories in lower case with aliases resolved, missing as an empty field,
   quoted where a value holds a comma or a quote);
2. the algorithm's container(s): those rows in, the algorithm's answer out. Linear Learner and
   k-NN answer their own JSON (``{"predictions": [...]}``, the answer they give when no type is
   asked for). Autopilot answers ``text/csv``, a line per record: for a regression the value; for
   a classification the fields the platform asks for with ``SAGEMAKER_INFERENCE_OUTPUT``
   (``AUTOPILOT_OUTPUT``: ``probabilities,labels``), e.g. ``"[0.9, 0.1]","['no', 'yes']"``
   (https://docs.aws.amazon.com/sagemaker/latest/dg/autopilot-automate-model-development-container-output.html);
3. this code with ``PLATFORM_PIPELINE_STEP=decode``: the algorithm's answer in, the platform's
   answer out (inference.py's: the probability and the label at the threshold the platform's
   evaluation chose on validation, the class probabilities, or the value), in the type the
   request's ``Accept`` names.

Each container gets the answer of the one before it as its request, with that answer's
Content-Type; a container before the last answers in its default type. That is why the encoder
answers CSV whatever it is asked and carries ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=text/csv``,
as Autopilot's own pipelines set it for their feature-transform container (the page above).

The model folder (``model.tar.gz`` of the platform's evaluation job, training_jobs/evaluate.py)
holds ``schema.json``, ``model-info.json`` (problem, classes, algorithm, threshold) and ``code/``.
A blank CSV line has no place in the algorithm's rows: the pipeline refuses it (400), where the
XGBoost container answers it with a blank line.

Autopilot's answer is read as data, never run: each line with the csv module, each list in it
with ``ast.literal_eval``, its types checked (numbers, strings, as many of each); its labels
must be exactly schema.json's target classes (the view's target is the class name), in any
order. The decoder reads the answer of the model it serves: JSON from Linear Learner and k-NN,
CSV from Autopilot (SageMaker calls input_fn without the model: model_fn notes its algorithm).
"""

from __future__ import annotations

import ast
import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import inference
import numpy as np
from inference import CSV, BadRequest, CsvLines, UnsupportedMediaType
from schema_encoder import RecordError, SchemaEncoder

__all__ = [
    "AUTOPILOT_OUTPUT",
    "RecordError",
    "UnsupportedMediaType",
    "autopilot_predictions",
    "input_fn",
    "model_fn",
    "output_fn",
    "predict_fn",
]

STEP_VARIABLE = "PLATFORM_PIPELINE_STEP"
STEPS = ("encode", "decode")
JSON, JSONLINES = "application/json", "application/jsonlines"
ALGORITHMS = ("linear-learner", "knn", "autopilot")
AUTOPILOT = "autopilot"
# What a classifier's Autopilot containers answer per record (their SAGEMAKER_INFERENCE_OUTPUT, in
# this order). lambda/ sets it on the model and cannot import training code: it keeps a copy.
AUTOPILOT_OUTPUT = "probabilities,labels"
AUTOPILOT_ANSWER_KEYS = ("predicted_label", "probability", "probabilities", "labels")  # all Autopilot answers
# How far past 0 or 1 an answer's probability may be written (rounding), read as 0 or 1.
PROBABILITY_SLACK = 1e-6
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


@dataclass(frozen=True)
class ViewRows:
    """The encoder's rows for Autopilot: each record's raw-feature view values."""

    rows: list[list[str]]


@dataclass(frozen=True)
class AutopilotAnswer:
    """Autopilot's ``text/csv`` answer; predict_fn reads it with the model's problem."""

    text: str


# The algorithm of the model this process serves, as model_fn read it: the decoder's input_fn
# (called without the model) reads that algorithm's answer and refuses another's.
_served: dict[str, str] = {}


def model_fn(model_dir: str) -> PipelineModel:
    encoder, info, labels = inference.described(Path(model_dir))
    if info.get("algorithm") not in ALGORITHMS:
        raise ValueError(f"model-info.json: algorithm {info.get('algorithm')!r} is not one of {', '.join(ALGORITHMS)}")
    model = PipelineModel(step(), encoder, info, labels)
    _served["algorithm"] = info["algorithm"]
    return model


def input_fn(
    body: str | bytes, content_type: str | None = None
) -> CsvLines | list[Any] | list[Mapping[str, Any]] | AutopilotAnswer:
    """The encoder reads raw records (inference.input_fn); the decoder the algorithm's answer:
    JSON from Linear Learner and k-NN, CSV from Autopilot."""
    if step() == "encode":
        return inference.input_fn(body, content_type)
    text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else body
    media = (content_type or JSON).split(";")[0].strip().lower()
    algorithm = _served.get("algorithm")
    if media == CSV and algorithm in (None, AUTOPILOT):
        return AutopilotAnswer(text)
    if algorithm == AUTOPILOT:
        raise UnsupportedMediaType(f"the algorithm answered {content_type!r}; the decoder reads Autopilot's {CSV}")
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


def autopilot_predictions(text: str, problem: str, keys: str = AUTOPILOT_OUTPUT) -> list[dict[str, Any]]:
    """The per-record predictions of Autopilot's ``text/csv`` answer (blank lines aside).

    A regression's line is the value: ``{"value": float}``. A classifier's line holds the fields
    ``keys`` names (its ``SAGEMAKER_INFERENCE_OUTPUT``), in that order, each read as data:
    ``predicted_label`` a text, ``probability`` a number, ``probabilities`` a list of numbers in
    [0, 1] and ``labels`` a list of texts, as many as the probabilities: ``{key: value}``. Anything
    else is a ValueError naming the line."""
    names = [key.strip() for key in keys.split(",")]
    unknown = [key for key in names if key not in AUTOPILOT_ANSWER_KEYS]
    if unknown:
        raise ValueError(f"Autopilot answers {', '.join(AUTOPILOT_ANSWER_KEYS)}, not {', '.join(map(repr, unknown))}")
    predictions: list[dict[str, Any]] = []
    labels: dict[str, tuple[Any, ...]] = {}  # each labels field read once: every line repeats it
    reader = csv.reader(io.StringIO(text))
    try:
        for fields in reader:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # a blank line
            where = f"Autopilot's answer, line {reader.line_num}"
            if problem == "regression":
                if len(fields) != 1:
                    raise ValueError(f"{where}: {len(fields)} fields; a regression's answer is its value")
                predictions.append({"value": _finite(fields[0], where, "the value")})
                continue
            if len(fields) != len(names):
                raise ValueError(f"{where}: {len(fields)} fields, expected {len(names)} ({keys})")
            prediction: dict[str, Any] = {}
            for key, field in zip(names, fields, strict=True):
                if key == "predicted_label":
                    prediction[key] = field
                elif key == "probability":
                    prediction[key] = _finite(field, where, key)
                elif key == "probabilities":
                    prediction[key] = _list_field(field, where, key)
                else:
                    if field not in labels:
                        labels[field] = _list_field(field, where, key)
                    prediction[key] = labels[field]
            both = "probabilities" in prediction and "labels" in prediction
            if both and len(prediction["probabilities"]) != len(prediction["labels"]):
                count, named = len(prediction["probabilities"]), len(prediction["labels"])
                raise ValueError(f"{where}: {count} probabilities for {named} labels")
            predictions.append(prediction)
    except csv.Error as error:
        raise ValueError(f"Autopilot's answer, line {reader.line_num}: not a CSV line ({error})") from None
    return predictions


def _finite(field: str, where: str, what: str) -> float:
    try:
        value = float(field)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"{where}: {what} {field[:40]!r} is not a finite number")
    return value


def _list_field(field: str, where: str, key: str) -> tuple[Any, ...]:
    """A list field of Autopilot's answer, read as a Python literal (never run): ``probabilities``
    numbers from 0 to 1, ``labels`` texts."""
    shown = repr(field[:40]) + ("..." if len(field) > 40 else "")
    if not field.strip().startswith("["):
        raise ValueError(f"{where}: {key} {shown} is not a list")
    try:
        value = ast.literal_eval(field.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(f"{where}: {key} {shown} is not a list of literals") from None
    if not isinstance(value, list):
        raise ValueError(f"{where}: {key} {shown} is not a list")
    if key == "labels":
        if not all(isinstance(label, str) for label in value):
            raise ValueError(f"{where}: labels {shown} is not a list of texts")
        return tuple(value)
    slack = PROBABILITY_SLACK
    if not all(isinstance(p, int | float) and not isinstance(p, bool) and -slack <= p <= 1 + slack for p in value):
        raise ValueError(f"{where}: probabilities {shown} is not a list of numbers from 0 to 1")
    return tuple(min(max(float(p), 0.0), 1.0) for p in value)


def scores_of(
    predictions: Sequence[Mapping[str, Any]], algorithm: str, problem: str, classes: int | Sequence[str]
) -> np.ndarray:
    """The algorithm's predictions as the platform's scores: the positive class's probability
    (binary, class index 1), each class's probability in the classes' order (multiclass) or the
    value (regression). ``classes``: schema.json's target classes (their number will do for
    Linear Learner and k-NN; Autopilot's scores need their names).

    Linear Learner gives ``score`` (a probability, the classes' probabilities, or the value).
    k-NN gives only ``predicted_label`` (the neighbours' vote, or their mean for a regressor): a
    classifier's score is then that label (1 or 0 for binary, one class certain for multiclass).
    Autopilot (:func:`autopilot_predictions`) gives ``value``, or ``probabilities`` with their
    ``labels`` (class names, in its own order): they must be exactly the classes."""
    count = classes if isinstance(classes, int) else len(classes)
    if algorithm == AUTOPILOT:
        if problem == "regression":
            return np.array([p["value"] for p in predictions], dtype=np.float64)
        if isinstance(classes, int):
            raise ValueError("Autopilot's scores are read by the classes' names, not their number")
        scores = autopilot_scores(predictions, list(classes))
        return scores[:, 1] if problem == "binary" else scores
    if algorithm == "linear-learner":
        scores = np.array([p["score"] for p in predictions], dtype=np.float64)
        if problem == "multiclass" and (scores.ndim != 2 or scores.shape[1] != count):
            raise ValueError(f"linear-learner's multiclass scores are not {count} probabilities per record")
        return scores
    labels = np.array([p["predicted_label"] for p in predictions], dtype=np.float64)
    if problem == "multiclass":
        classes_of = labels.astype(int)
        if labels.size and (classes_of.min() < 0 or classes_of.max() >= count):
            raise ValueError(f"knn predicted a class outside 0..{count - 1}")
        return np.eye(count)[classes_of]
    return labels


def autopilot_scores(predictions: Sequence[Mapping[str, Any]], classes: Sequence[str]) -> np.ndarray:
    """Each record's class probabilities in ``classes`` order, from Autopilot's ``probabilities``
    in the order of its ``labels``; a label not among the classes, or a class not among the
    labels, is a ValueError naming it."""
    known = {name: index for index, name in enumerate(classes)}
    orders: dict[tuple[str, ...], list[int]] = {}  # each order of labels checked once
    scores = np.empty((len(predictions), len(classes)), dtype=np.float64)
    for row, prediction in enumerate(predictions):
        if "probabilities" not in prediction or "labels" not in prediction:
            raise ValueError(f"Autopilot's answer, record {row + 1}: no probabilities and labels ({AUTOPILOT_OUTPUT})")
        labels = tuple(prediction["labels"])
        if labels not in orders:
            stray = [label for label in labels if label not in known]
            if stray:
                raise ValueError(f"Autopilot's label {stray[0]!r} is not one of the classes {list(classes)}")
            absent = [name for name in classes if name not in labels]
            if absent:
                raise ValueError(f"the class {absent[0]!r} is not among Autopilot's labels {list(labels)}")
            if len(labels) != len(classes):
                twice = next(label for label in labels if labels.count(label) > 1)
                raise ValueError(f"Autopilot's labels {list(labels)} name {twice!r} twice")
            orders[labels] = [labels.index(name) for name in classes]
        scores[row] = np.asarray(prediction["probabilities"], dtype=np.float64)[orders[labels]]
    return scores


def viewed(data: CsvLines | Sequence[Any], encoder: SchemaEncoder) -> tuple[list[bool], list[list[str]]]:
    """inference.encode's counterpart for Autopilot: which rows hold a record (a blank CSV line
    does not), and each record's raw-feature view values (errors name row and column)."""
    return inference.read_records(data, encoder, encoder.view_read)


def predict_fn(data: Any, model: PipelineModel) -> Any:
    algorithm, problem = model.info["algorithm"], model.info["problem"]
    if model.step == "encode":
        rows: np.ndarray | ViewRows
        if algorithm == AUTOPILOT:
            held, values = viewed(data, model.encoder)
            rows = ViewRows(values)
        else:
            held, rows = inference.encode(data, model.encoder)
        if not all(held):
            row = held.index(False) + 1
            raise BadRequest(row, None, "a blank line: the pipeline answers one prediction per record, send none")
        return rows
    if isinstance(data, AutopilotAnswer) != (algorithm == AUTOPILOT):
        kind = CSV if isinstance(data, AutopilotAnswer) else JSON
        raise UnsupportedMediaType(f"the algorithm answered {kind}; a {algorithm} model's decoder does not read it")
    predictions = autopilot_predictions(data.text, problem) if isinstance(data, AutopilotAnswer) else data
    scores = scores_of(predictions, algorithm, problem, model.encoder.target["classes"])
    return inference.answers(scores, problem, model.labels, model.info.get("threshold"))


def output_fn(prediction: Any, accept: str | None) -> tuple[str, str]:
    """The encoder answers the rows as CSV, whatever the Accept (the algorithm reads CSV); the
    decoder answers as inference.py does."""
    if isinstance(prediction, np.ndarray):
        return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in prediction), CSV
    if isinstance(prediction, ViewRows):
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(prediction.rows)
        return out.getvalue(), CSV
    return inference.output_fn(prediction, accept)
