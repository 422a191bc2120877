"""Inference for the XGBoost framework container (model_fn, input_fn, predict_fn, output_fn).

Requests carry raw records, what the dataset's raw file holds, not prepared features:

- ``text/csv``: one record per line, as a line of the raw file: in the dataset's own delimiter
  (``schema.json``'s ``raw``) or commas, with or without the target and the dropped columns (told
  apart by how many values there are), quotes as the file has them. A first line that names the
  columns (in any case and order) is a header and is skipped. Lines end in ``\\n``, ``\\r\\n`` or
  ``\\r``; a blank line gets an empty answer in its place, so that the answers pair one-to-one with
  the lines (batch transform's ``SplitType: Line``).
- ``application/json``: ``{"instances": [{column: value, ...}, ...]}``, a list of such objects,
  or a single object. Every feature is given, ``null`` where a value is missing (it is imputed);
  an unknown key is refused by name. Values are strings or numbers, as a raw file writes them.
- No ``Content-Type`` (or an empty one) means ``application/json``; a ``charset`` other than
  UTF-8 is refused, a UTF-8 byte order mark is read past.

Each record is prepared with the model's ``schema.json`` exactly as the ETL job prepared the
training data (``schema_encoder.py``), then scored. Answers, in the type ``Accept`` asks for, give
per record the probability of the positive class and the label (binary, with the decision
threshold chosen on validation), the class probabilities and the label (multiclass), or the value
(regression); labels are written as the raw data writes them (``schema.json``'s target
``labels``). ``Accept`` follows SageMaker's convention: missing or ``*/*`` means the default
(``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``, else JSON), ``text/*`` and ``application/*`` the
supported type of that kind, and a list the first supported type (by ``q``, then by order).

Every refusal is an exception with an HTTP ``status_code`` and a message that names what is wrong
and where: 400 a bad body (``RecordError``: row, 1-based, and column), 415 an unsupported content
type or charset, 406 an unsupported accept (``UnsupportedMediaType``). Where SageMaker's
inference toolkit is importable (the container) they are also its ``BaseInferenceToolkitError``,
so that the container answers with that status and a JSON body, not a 500.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import xgboost as xgb
from dataset_spec import NotJson, unique_keys
from schema_encoder import RecordError, SchemaEncoder

T = TypeVar("T")

try:  # in SageMaker's XGBoost container: what keeps an error's status (anything else is a 500)
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ToolkitError  # type: ignore[import-not-found]

    _TOOLKIT: tuple[type[Exception], ...] = (_ToolkitError,)
except ImportError:
    _TOOLKIT = ()

CSV, JSON = "text/csv", "application/json"
SUPPORTED = (JSON, CSV)
DEFAULT_CONTENT_TYPE = JSON  # what a request without Content-Type is read as
DEFAULT_ACCEPT_VARIABLE = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
MODEL_FILE = "xgboost-model.json"
SCHEMA_FILE = "schema.json"
INFO_FILE = "model-info.json"
MODEL_FILES = (MODEL_FILE, SCHEMA_FILE, INFO_FILE)  # what a model folder holds
# A record is an object of values (depth 2 in {"instances": [...]}); deeper is no record.
DEEPEST = 32
# Python refuses to convert a longer integer (sys.get_int_max_str_digits()); JSON is held to it.
LONGEST_INTEGER = 4300
# XGBoost scores in 32-bit floats: a larger magnitude would become infinite.
LARGEST = float(np.finfo(np.float32).max)
_LINE_END = re.compile(r"\r\n|\r|\n")
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]")
_QUALITY = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")


class BadRequest(RecordError, *_TOOLKIT):  # type: ignore[misc]
    """A body that holds no valid record: 400, naming the row and the column."""

    status_code = 400
    phrase = HTTPStatus.BAD_REQUEST.phrase

    def __init__(self, row: int, column: str | None, problem: str) -> None:
        RecordError.__init__(self, row, column, problem)
        self.message = json.dumps({"error": str(self)})  # the body the toolkit answers with

    def __str__(self) -> str:
        return str(self.args[0])


class UnsupportedMediaType(ValueError, *_TOOLKIT):  # type: ignore[misc]
    """A content type (415) or an accept (406) this model does not speak."""

    def __init__(self, message: str, status_code: int = HTTPStatus.UNSUPPORTED_MEDIA_TYPE) -> None:
        ValueError.__init__(self, message)
        self.status_code = int(status_code)
        self.phrase = HTTPStatus(status_code).phrase
        self.message = json.dumps({"error": message})

    def __str__(self) -> str:
        return str(self.args[0])


def _bad(error: RecordError) -> BadRequest:
    return error if isinstance(error, BadRequest) else BadRequest(error.row, error.column, error.problem)


@dataclass
class Model:
    booster: xgb.Booster
    encoder: SchemaEncoder
    info: dict[str, Any]
    labels: list[str]  # per class, as the raw data writes it

    @property
    def problem(self) -> str:
        return self.info["problem"]


def model_fn(model_dir: str) -> Model:
    root = Path(model_dir)
    booster = xgb.Booster()
    booster.load_model(root / MODEL_FILE)
    return Model(booster, *described(root))


def described(root: Path) -> tuple[SchemaEncoder, dict[str, Any], list[str]]:
    """What a model folder says of its records: the encoder of ``schema.json``, ``model-info.json``
    and the classes' labels as the raw data writes them (checked against each other)."""
    schema = json.loads((root / SCHEMA_FILE).read_text(encoding="utf-8"))
    info = json.loads((root / INFO_FILE).read_text(encoding="utf-8"))
    encoder = SchemaEncoder(schema, largest=LARGEST)
    classes = list(schema["target"]["classes"])
    labels = schema["target"].get("labels")
    if labels is None:
        labels = classes
    elif not isinstance(labels, list) or len(labels) != len(classes):
        count = len(labels) if isinstance(labels, list) else repr(labels)
        raise ValueError(f"schema.json: target.labels has {count} entries; target.classes has {len(classes)}")
    elif len({str(label) for label in labels}) != len(labels):
        raise ValueError(f"schema.json: target.labels {labels} name a class twice")
    if info.get("classes", classes) != classes:
        raise ValueError(f"{INFO_FILE}: classes {info['classes']} are not schema.json's target.classes {classes}")
    return encoder, info, [str(label) for label in labels]


# --- requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvLines:
    """A ``text/csv`` body's lines; predict_fn reads them into records with the model's layout
    (SageMaker's container calls input_fn without the model)."""

    lines: tuple[str, ...]


def _media(value: str) -> tuple[str, dict[str, str]]:
    """A media type (lower case) and its parameters (names in lower case)."""
    media, *parts = value.split(";")
    parameters = {}
    for part in parts:
        name, _, setting = part.partition("=")
        parameters[name.strip().lower()] = setting.strip().strip('"')
    return media.strip().lower(), parameters


def input_fn(body: str | bytes, content_type: str | None = None) -> CsvLines | list[Any]:
    """A request body as raw records: ``CsvLines`` for CSV, a list of records for JSON."""
    media, parameters = _media(content_type or "")
    media = media or DEFAULT_CONTENT_TYPE
    if media not in SUPPORTED:
        raise UnsupportedMediaType(f"content type {content_type!r} is not supported; use {CSV} or {JSON}")
    charset = parameters.get("charset", "utf-8")
    if charset.lower() not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(f"charset {charset!r} is not supported; send {media}; charset=utf-8")
    if isinstance(body, bytes | bytearray | memoryview):
        data = bytes(body)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            row = data.count(b"\n", 0, error.start) + 1
            raise BadRequest(
                row, None, f"the body is not utf-8: byte {data[error.start]:#04x} at position {error.start}"
            ) from None
    else:
        text = body
    text = text.removeprefix("\ufeff")
    if media == CSV:
        lines = _LINE_END.split(text)
        if lines[-1] == "":  # the last line's end, not a line
            lines.pop()
        if not lines:
            raise BadRequest(1, None, "the request holds no record")
        return CsvLines(tuple(lines))
    return _json_records(text)


def _constant(name: str) -> Any:
    raise NotJson(f"{name} is not a JSON value (a number is finite; send null for a missing value)")


def _integer(literal: str) -> int:
    digits = len(literal.lstrip("-"))
    if digits > LONGEST_INTEGER:
        raise NotJson(f"an integer of {digits} digits (at most {LONGEST_INTEGER})")
    return int(literal)


class JsonNumber(str):
    """A JSON number with a fraction or exponent, kept as written: ``1e400`` is then refused as
    ``'1e400'``, as a raw file's text would be, instead of turning into infinity."""


def _depth(text: str) -> int:
    """How deep arrays and objects nest in ``text`` (brackets inside strings aside)."""
    if text.count("[") + text.count("{") <= DEEPEST:
        return 0  # cannot nest deeper
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)).encode("ascii")
    opening = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((opening == ord("[")) | (opening == ord("{")), 1, -1)
    return int(np.cumsum(steps).max(initial=0))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return "float" if isinstance(value, JsonNumber) else type(value).__name__


def _json_records(text: str) -> list[Any]:
    if _depth(text) > DEEPEST:
        raise BadRequest(1, None, f"the body nests deeper than {DEEPEST} levels of arrays and objects")
    try:
        data = json.loads(
            text, parse_constant=_constant, parse_float=JsonNumber, parse_int=_integer, object_pairs_hook=unique_keys
        )
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise BadRequest(1, None, f"the body is not JSON: {error.msg} at {where}") from None
    except NotJson as error:  # DuplicateKey among them
        raise BadRequest(1, None, f"the body is not JSON: {error}") from None
    except RecursionError:  # defensive: _depth refuses such a body first
        raise BadRequest(1, None, f"the body nests deeper than {DEEPEST} levels of arrays and objects") from None
    shape = 'expected {"instances": [...]}, a list of records or one record'
    if isinstance(data, dict) and "instances" in data:
        others = [key for key in data if key != "instances"]
        if others:
            raise BadRequest(1, None, f"unknown key {others[0]!r} beside 'instances'; {shape}")
        data = data["instances"]
    records = [data] if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise BadRequest(1, None, f"{shape}, not {_kind(records)}")
    if not records:
        raise BadRequest(1, None, f"{shape}; the request holds no record")
    for row, record in enumerate(records, start=1):
        if not isinstance(record, dict | list):
            raise BadRequest(row, None, f"a record is an object or a list of values, not {_kind(record)}")
    return records


# --- scoring --------------------------------------------------------------------------------


def read_records(
    data: CsvLines | Sequence[Any], encoder: SchemaEncoder, form: Callable[[Mapping[Any, Any], int], T]
) -> tuple[list[bool], list[T]]:
    """Every record of a request read and put in ``form`` (an encoder's ``encode_read`` or
    ``view_read``; errors name row and column): which rows hold a record (a blank CSV line does
    not), and each record's form."""
    try:
        rows: list[tuple[int, Any]]
        if isinstance(data, CsvLines):
            rows = list(encoder.records_of_lines(data.lines))
            formed = [form(record, row) for row, record in rows if record is not None]
        else:
            rows = list(enumerate(data, start=1))
            formed = []
            for row, record in rows:
                if record is None:
                    raise RecordError(row, None, "a record is an object or a list of values, not null")
                formed.append(form(encoder.read(record, row=row), row))
    except RecordError as error:
        raise _bad(error) from None
    if not formed:
        raise BadRequest(1, None, "the request holds no record")
    return [record is not None for _, record in rows], formed


def encode(data: CsvLines | Sequence[Any], encoder: SchemaEncoder) -> tuple[list[bool], np.ndarray]:
    """Every record prepared as the ETL job prepared the training data: which rows hold a
    record, and their feature rows (read_records)."""
    held, features = read_records(data, encoder, encoder.encode_read)
    return held, np.array(features, dtype=np.float64)


def predict_fn(data: CsvLines | Sequence[Any], model: Model) -> list[dict[str, Any] | None]:
    """Encode every record, score, and label. A blank CSV line answers None in its place."""
    held, features = encode(data, model.encoder)
    scores = iter(_score(features, model))
    return [next(scores) if record else None for record in held]


def _score(features: np.ndarray, model: Model) -> list[dict[str, Any]]:
    scores = model.booster.inplace_predict(features, iteration_range=(0, model.info["best_iteration"] + 1))
    return answers(np.asarray(scores), model.problem, model.labels, model.info.get("threshold"))


def answers(scores: np.ndarray, problem: str, labels: Sequence[str], threshold: float | None) -> list[dict[str, Any]]:
    """The answer per record from the model's scores: the positive class's probability and the
    label at the decision threshold (binary), the class probabilities and the likeliest label
    (multiclass), or the value (regression)."""
    if problem == "binary":
        return [{"probability": float(p), "label": labels[int(p >= threshold)]} for p in scores]
    if problem == "multiclass":
        return [
            {"probabilities": dict(zip(labels, map(float, row), strict=True)), "label": labels[int(np.argmax(row))]}
            for row in scores
        ]
    return [{"value": float(v)} for v in scores]


# --- answers --------------------------------------------------------------------------------


def default_accept() -> str:
    """SageMaker's default accept (``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``) when supported, else JSON."""
    media, _ = _media(os.environ.get(DEFAULT_ACCEPT_VARIABLE, ""))
    return media if media in SUPPORTED else JSON


def accepted(accept: str | None) -> str:
    """The type to answer in: missing or ``*/*`` -> the default; ``text/*`` -> CSV,
    ``application/*`` -> JSON (the default when it is of that kind); a list -> the first supported
    type by quality (``q``), then by order; ``q=0`` refuses a type."""
    default = default_accept()
    ranges = []
    for position, part in enumerate((accept or "").split(",")):
        if not part.strip():
            continue
        media, parameters = _media(part)
        q = parameters.get("q", "1")
        if not _QUALITY.fullmatch(q):
            raise UnsupportedMediaType(
                f"accept {accept!r}: q={q!r} is not a quality from 0 to 1", HTTPStatus.NOT_ACCEPTABLE
            )
        ranges.append((-float(q), position, media))
    if not ranges:
        return default
    refused = {media for rank, _, media in ranges if rank == 0}
    for rank, _, media in sorted(ranges):
        if rank == 0:
            break
        kind = "" if media in ("*/*", "*") else media.removesuffix("*") if media.endswith("/*") else None
        candidates = [media] if kind is None else [t for t in (default, *SUPPORTED) if t.startswith(kind)]
        for candidate in candidates:
            if candidate in SUPPORTED and candidate not in refused:
                return candidate
    raise UnsupportedMediaType(
        f"accept {accept!r} is not supported; use {CSV}, {JSON} or */* ({default})", HTTPStatus.NOT_ACCEPTABLE
    )


def output_fn(predictions: Sequence[Mapping[str, Any] | None], accept: str | None) -> tuple[str, str]:
    media = accepted(accept)
    if media == JSON:
        return json.dumps({"predictions": list(predictions)}), JSON
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for p in predictions:
        if p is None:
            out.write("\n")  # a blank line's place
        elif "probability" in p:
            writer.writerow([f"{p['probability']:.6f}", p["label"]])
        elif "probabilities" in p:
            writer.writerow([*(f"{v:.6f}" for v in p["probabilities"].values()), p["label"]])
        else:
            writer.writerow([f"{p['value']:.6f}"])
    return out.getvalue(), CSV
