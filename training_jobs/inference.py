"""Inference for the XGBoost framework container (model_fn, input_fn, predict_fn, output_fn).

Requests carry raw records, the dataset's own columns, not prepared features:

- ``text/csv``: one record per line, values in ``schema.json``'s ``input_columns`` order, no
  header (serve_local.py, which hands input_fn the model, also skips a first line equal to
  those column names; SageMaker's container calls input_fn without the model);
- ``application/json``: ``{"instances": [{column: value, ...}, ...]}``, a list of such
  objects, or a single object.

Each record is prepared with the model's ``schema.json`` exactly as the ETL job prepared the
training data (``schema_encoder.py``), then scored. Responses (``Accept``: ``text/csv`` or
``application/json``) give, per record, the probability of the positive class and the label
(binary, with the decision threshold chosen on validation), the class probabilities and the
label (multiclass), or the value (regression). A malformed record raises ``RecordError``
naming the row (1-based) and the column.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from schema_encoder import RecordError, SchemaEncoder

CSV, JSON = "text/csv", "application/json"
MODEL_FILE = "xgboost-model.json"
INFO_FILE = "model-info.json"


class UnsupportedMediaType(ValueError):
    """A content type or accept header this model does not speak."""


@dataclass
class Model:
    booster: xgb.Booster
    encoder: SchemaEncoder
    info: dict[str, Any]

    @property
    def problem(self) -> str:
        return self.info["problem"]


def model_fn(model_dir: str) -> Model:
    root = Path(model_dir)
    booster = xgb.Booster()
    booster.load_model(root / MODEL_FILE)
    schema = json.loads((root / "schema.json").read_text(encoding="utf-8"))
    info = json.loads((root / INFO_FILE).read_text(encoding="utf-8"))
    return Model(booster, SchemaEncoder(schema), info)


def _media(value: str | None, default: str = JSON) -> str:
    return (value or default).split(";")[0].strip().lower()


def input_fn(body: str | bytes, content_type: str, model: Model | None = None) -> list[Any]:
    """Parse a request body into raw records (lists of values, or objects by column)."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    media = _media(content_type)
    if media == CSV:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
        if model is not None and rows and [c.strip() for c in rows[0]] == model.encoder.input_columns:
            rows = rows[1:]
        if not rows:
            raise RecordError(1, None, "the request holds no record")
        return rows
    if media == JSON:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise RecordError(1, None, f"the body is not JSON: {error.msg} at character {error.pos}") from None
        records = data.get("instances", data) if isinstance(data, dict) and "instances" in data else data
        records = [records] if isinstance(records, dict) else records
        if not isinstance(records, list) or not records:
            raise RecordError(1, None, 'expected {"instances": [...]}, a list of records or one record')
        return records
    raise UnsupportedMediaType(f"content type {content_type!r} is not supported; use {CSV} or {JSON}")


def predict_fn(records: list[Any], model: Model) -> list[dict[str, Any]]:
    """Encode every record (errors name row and column), score, and label."""
    features = np.array(
        [model.encoder.encode(record, row=i) for i, record in enumerate(records, start=1)], dtype=np.float64
    )
    matrix = xgb.DMatrix(features, feature_names=model.encoder.feature_names)
    scores = model.booster.predict(matrix, iteration_range=(0, model.info["best_iteration"] + 1))
    classes = model.info["classes"]
    if model.problem == "binary":
        threshold = model.info["threshold"]
        return [{"probability": float(p), "label": classes[int(p >= threshold)]} for p in scores]
    if model.problem == "multiclass":
        return [
            {"probabilities": dict(zip(classes, map(float, row), strict=True)), "label": classes[int(np.argmax(row))]}
            for row in scores
        ]
    return [{"value": float(v)} for v in scores]


def output_fn(predictions: list[dict[str, Any]], accept: str | None) -> tuple[str, str]:
    media = _media(accept)
    if media == JSON:
        return json.dumps({"predictions": predictions}), JSON
    if media == CSV:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for p in predictions:
            if "probability" in p:
                writer.writerow([f"{p['probability']:.6f}", p["label"]])
            elif "probabilities" in p:
                writer.writerow([*(f"{v:.6f}" for v in p["probabilities"].values()), p["label"]])
            else:
                writer.writerow([f"{p['value']:.6f}"])
        return out.getvalue(), CSV
    raise UnsupportedMediaType(f"accept {accept!r} is not supported; use {CSV} or {JSON}")
