"""Prepare one raw record exactly as the ETL job prepared the training data, from schema.json.

``schema.json`` is written by ``etl/prepare.py`` beside the prepared splits and travels with the
model. This module applies it to raw records (the dataset's own columns, as strings or
numbers) in plain Python, so that inference needs neither Spark nor the spec. Its rules mirror
the Spark job's, and a test checks that every raw record of the real datasets encodes to exactly
the row the job wrote:

- values are trimmed; the schema's missing-value markers (compared in lower case) are missing;
- numeric: parsed as a float, missing -> the training median, then clipped to the training
  IQR whiskers where the spec asked for ``clip`` or ``drop``;
- categorical: lower case, aliases resolved, missing -> the training mode; ordinal -> index in
  the order (a value outside it is treated as missing); one-hot -> one 0/1 per training
  category, all zeros for a value never seen in training (never an error).

Plain Python only (no numpy): it runs in the inference container and in tests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

SCHEMA_FORMAT = "ml-platform/prepared-csv"
WHITESPACE = " \t\n\r\f\v"  # as etl/dataset_spec.py: what "trimmed" means on both sides


class RecordError(ValueError):
    """A raw record that cannot be prepared; names the row and the column."""

    def __init__(self, row: int, column: str | None, problem: str) -> None:
        self.row, self.column, self.problem = row, column, problem
        where = f"row {row}" + (f", column {column!r}" if column else "")
        super().__init__(f"{where}: {problem}")


class SchemaEncoder:
    """Encodes raw records with a prepared dataset's ``schema.json`` (already parsed)."""

    def __init__(self, schema: Mapping[str, Any], *, invalid_numbers: str = "error") -> None:
        if schema.get("format") != SCHEMA_FORMAT:
            raise ValueError(
                f"not a prepared-data schema (format {schema.get('format')!r}, expected {SCHEMA_FORMAT!r})"
            )
        if invalid_numbers not in ("error", "impute"):
            raise ValueError("invalid_numbers is 'error' (inference) or 'impute' (as the ETL job did)")
        self.schema = schema
        self.features: list[Mapping[str, Any]] = list(schema["features"])
        self.input_columns: list[str] = list(schema["input_columns"])
        self.feature_names: list[str] = list(schema["feature_names"])
        self.target: Mapping[str, Any] = schema["target"]
        self._missing = frozenset(schema["missing_values"])
        self._invalid_numbers = invalid_numbers
        self._ordinal = {
            f["column"]: {value: index for index, value in enumerate(f["order"])}
            for f in self.features
            if f["kind"] == "ordinal"
        }
        self._one_hot = {
            f["column"]: {value: index for index, value in enumerate(f["categories"])}
            for f in self.features
            if f["kind"] == "one-hot"
        }

    def _text(self, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, float) and math.isnan(value):
            return None
        text = str(value).strip(WHITESPACE)
        return None if text.lower() in self._missing else text

    def encode(self, record: Mapping[str, Any] | Sequence[Any], row: int = 0) -> list[float]:
        """One raw record (a mapping by column name, or values in ``input_columns`` order)."""
        if isinstance(record, Mapping):
            values = record
        elif isinstance(record, Sequence) and not isinstance(record, str | bytes):
            if len(record) != len(self.input_columns):
                raise RecordError(
                    row, None, f"has {len(record)} values; expected {len(self.input_columns)}: {self.input_columns}"
                )
            values = dict(zip(self.input_columns, record, strict=True))
        else:
            raise RecordError(row, None, f"a record is an object or a list of values, not {type(record).__name__}")

        encoded: list[float] = []
        for feature in self.features:
            column = feature["column"]
            text = self._text(values.get(column))
            if feature["kind"] == "numeric":
                encoded.append(self._number(feature, text, row))
                continue
            value = feature["impute"] if text is None else text.lower()
            value = feature.get("aliases", {}).get(value, value)
            if feature["kind"] == "ordinal":
                order = self._ordinal[column]
                encoded.append(float(order.get(value, order[feature["impute"]])))
            else:
                positions = self._one_hot[column]
                block = [0.0] * len(positions)
                position = positions.get(value)
                if position is not None:  # a value never seen in training stays all zeros
                    block[position] = 1.0
                encoded.extend(block)
        return encoded

    def _number(self, feature: Mapping[str, Any], text: str | None, row: int) -> float:
        if text is None:
            number = float(feature["impute"])
        else:
            try:
                number = float(text)
            except ValueError:
                if self._invalid_numbers == "error":
                    raise RecordError(row, feature["column"], f"{text!r} is not a number") from None
                number = float(feature["impute"])
            if math.isnan(number):
                number = float(feature["impute"])
        if feature.get("clip"):
            low, high = feature["clip"]
            number = min(max(number, low), high)
        return number

    def encode_target(self, value: Any, row: int = 0) -> float:
        """The training label of a raw target value (0..k-1, or the number for regression)."""
        text = self._text(value)
        if text is None:
            raise RecordError(row, self.target["column"], "the target is missing")
        problem = self.target["problem"]
        if problem == "regression" or self.target.get("positive_above") is not None:
            try:
                number = float(text)
            except ValueError:
                raise RecordError(row, self.target["column"], f"{text!r} is not a number") from None
            if problem == "regression":
                return number
            return 1.0 if number > self.target["positive_above"] else 0.0
        label = text.lower()
        label = self.target.get("aliases", {}).get(label, label)
        if label not in self.target["classes"]:
            raise RecordError(row, self.target["column"], f"{label!r} is not one of {self.target['classes']}")
        return float(self.target["classes"].index(label))
