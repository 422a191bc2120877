"""Prepare one raw record exactly as the ETL job prepared the training data, from schema.json.

``schema.json`` is written by ``etl/prepare.py`` beside the prepared splits and travels with the
model. This module applies it to raw records (the dataset's own columns, as strings or
numbers) in plain Python, so that inference needs neither Spark nor the spec. Its rules mirror
the Spark job's, and a test checks that every raw record of the real datasets encodes to exactly
the row the job wrote:

- values are trimmed; the schema's missing-value markers (compared in lower case) are missing;
- numeric: a number as ``dataset_spec.parse_number`` reads it (ASCII digits, sign, point,
  exponent, finite: what the job reads too), missing -> the training median, then clipped to the
  training IQR whiskers where the spec asked for ``clip`` or ``drop``;
- categorical: lower case, aliases resolved, missing -> the training mode; ordinal -> index in
  the order (a value outside it is refused, as the job refuses it); one-hot -> one 0/1 per
  training category, all zeros for a value never seen in training (never an error).

It also gives a record's raw-feature view (:meth:`SchemaEncoder.view`), what Autopilot's model
reads and the ETL job writes for it: each feature as text, normalised by the same rules but
neither imputed, clipped nor encoded (a number as ``repr(float)``, a category in lower case with
its alias resolved, a missing value as ``""``); a value the encoding refuses is refused alike.

A raw record is what the raw file holds: a mapping by column name, or the values of a line in
the file's column order, with or without the target and the dropped columns (told apart by how
many values there are; where two layouts have as many, a reading that puts something other than a
target value in the target's place is ruled out, and a line that still reads two ways is
refused). The file's layout is schema.json's ``raw`` (``delimiter`` and ``columns`` in file
order) when the ETL job wrote it; without it, the columns are the features
in the spec's order and then the target, and the delimiter is the first of ``, ; tab | space``
that splits a line into a record.

Plain Python only (no numpy): it runs in the inference container and in tests. It imports
``dataset_spec.py`` (from etl/), which travels beside it in the training code and the model.
"""

from __future__ import annotations

import csv
import difflib
import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from dataset_spec import WHITESPACE, parse_number

SCHEMA_FORMAT = "ml-platform/prepared-csv"
# Tried in this order on a line when schema.json does not name the raw file's delimiter.
DELIMITERS = (",", ";", "\t", "|", " ")
# Python's csv module refuses a longer field (csv.field_size_limit()); a JSON value is held to the same.
LONGEST_VALUE = 131_072
SHOWN = 40  # characters of a refused value quoted back in a message


class RecordError(ValueError):
    """A raw record that cannot be prepared; names the row and the column. A request that holds
    one is a bad request (``status_code``, as SageMaker's inference toolkit reads errors)."""

    status_code = 400

    def __init__(self, row: int, column: str | None, problem: str) -> None:
        self.row, self.column, self.problem = row, column, problem
        where = f"row {row}" + (f", column {column!r}" if column else "")
        super().__init__(f"{where}: {problem}")


def shown(text: str) -> str:
    """``text`` quoted for a message, cut short when long."""
    return repr(text) if len(text) <= SHOWN else repr(text[:SHOWN]) + f"... ({len(text)} characters)"


class SchemaEncoder:
    """Encodes raw records with a prepared dataset's ``schema.json`` (already parsed).

    ``largest``: the largest magnitude a feature may have after clipping (the model's limit); a
    number beyond it is refused by row and column."""

    def __init__(self, schema: Mapping[str, Any], *, invalid_numbers: str = "error", largest: float = math.inf) -> None:
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
        self._largest = largest
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
        # What encode reads of each feature, looked up once: (feature, column, kind, aliases).
        self._plan = [
            (f, f["column"], f["kind"], f.get("aliases", {}), tuple(f.get("clip") or (-math.inf, math.inf)))
            for f in self.features
        ]
        raw = schema.get("raw") or {}
        self.columns: list[str] = list(raw.get("columns") or [*self.input_columns, self.target["column"]])
        self._column_set = frozenset(self.columns)
        own = raw.get("delimiter")
        self.delimiters: tuple[str, ...] = tuple(dict.fromkeys([own, ","])) if own else DELIMITERS
        self._layouts = self._layouts_by_count()
        lower = [c.lower() for c in self.columns]
        self._by_lower = {c.lower(): c for c in self.columns if lower.count(c.lower()) == 1}

    # --- the raw file's layout --------------------------------------------------------------

    def _layouts_by_count(self) -> dict[int, list[tuple[str, list[str]]]]:
        """The column lists a line may hold (the file's order, with or without the target and
        the dropped columns), by their number of values, each with what it holds."""
        target = self.target["column"]
        dropped = [c for c in self.columns if c != target and c not in self.input_columns]
        layouts: dict[int, list[tuple[str, list[str]]]] = {}
        for with_target, with_dropped in ((False, False), (True, False), (False, True), (True, True)):
            if with_dropped and not dropped:
                continue
            kept = set(self.input_columns) | ({target} if with_target else set()) | set(dropped if with_dropped else ())
            names = [c for c in self.columns if c in kept]
            what = "the features" + (f" and the target {target!r}" if with_target else "")
            what += f" and the dropped {', '.join(map(repr, dropped))}" if with_dropped else ""
            layouts.setdefault(len(names), []).append((what, names))
        return layouts

    def _expected(self) -> str:
        features = ", ".join(self.input_columns)
        counts = [f"{count} ({what})" for count, found in sorted(self._layouts.items()) for what, _ in found]
        return f"expected {' or '.join(counts)}; the features in order: {features}"

    def split(self, line: str, row: int) -> list[str]:
        """A line's values: split on the first delimiter (the dataset's, then a comma, or the
        usual ones when schema.json does not name it) that gives a record's number of values."""
        candidates = [d for d in self.delimiters if d in line] or [self.delimiters[0]]
        best: list[str] = []
        for delimiter in candidates:
            try:
                values = next(csv.reader([line], delimiter=delimiter), [])
            except csv.Error as error:
                if "field larger than field limit" in str(error):
                    raise RecordError(row, None, f"a value is longer than {LONGEST_VALUE} characters") from None
                raise RecordError(row, None, f"not a CSV line ({error})") from None
            if len(values) in self._layouts:
                return values
            best = max(best, values, key=len)
        return best

    def header(self, values: Sequence[str]) -> list[str] | None:
        """The column names when ``values`` are a header line (names of the file's columns,
        whatever their case, every feature among them, each once), else None."""
        names = [self._by_lower.get(v.strip(WHITESPACE).lower()) for v in values]
        if None in names or len(set(names)) != len(names) or not set(self.input_columns) <= set(names):
            return None
        return [n for n in names if n is not None]

    def record(self, values: Sequence[Any], row: int, names: Sequence[str] | None = None) -> dict[str, Any]:
        """The values of one line by column: by ``names`` (a header's), or by how many there are."""
        if names is not None:
            if len(values) != len(names):
                raise RecordError(row, None, f"has {len(values)} values; the header names {len(names)}")
            return dict(zip(names, values, strict=True))
        found = self._layouts.get(len(values), [])
        count = f"{len(values)} value" + ("" if len(values) == 1 else "s")
        if not found:
            raise RecordError(row, None, f"has {count}; {self._expected()}")
        if len(found) > 1:  # e.g. the features and the target, or the features and one dropped column
            found = [layout for layout in found if self._fits(layout[1], values)] or found
        if len(found) > 1:
            readings = " or ".join(what for what, _ in found)
            raise RecordError(row, None, f"has {count}, which reads two ways ({readings}); send the features alone")
        return dict(zip(found[0][1], values, strict=True))

    def _fits(self, names: Sequence[str], values: Sequence[Any]) -> bool:
        """Whether a reading of a line is possible: where it puts the target, a target's value."""
        target = self.target["column"]
        if target not in names:
            return True
        try:
            self.encode_target(values[list(names).index(target)])
        except RecordError:
            return False
        return True

    def records_of_lines(self, lines: Sequence[str]) -> Iterator[tuple[int, dict[str, Any] | None]]:
        """(row, record) per line, row being the line's number; None for a blank line. A first
        line that is a header is skipped and names the columns of the lines after it."""
        names = None
        for row, line in enumerate(lines, start=1):
            values = self.split(line, row)
            if row == 1 and (names := self.header(values)) is not None:
                continue
            if not line.strip(WHITESPACE) and len(values) not in self._layouts:
                yield row, None  # blank: its place in the answer is kept, empty
                continue
            yield row, self.record(values, row, names)

    # --- encoding ---------------------------------------------------------------------------

    def _checked(self, record: Mapping[Any, Any], row: int) -> Mapping[Any, Any]:
        """A record by column: every key a column of the raw file, every feature present."""
        unknown = [key for key in record if key not in self._column_set]
        if unknown:
            key = unknown[0]
            close = difflib.get_close_matches(str(key), self.columns, n=1) or [
                c for c in self.columns if c.lower() == str(key).lower()
            ]
            hint = f" (did you mean {close[0]!r}?)" if close else f"; the columns are {', '.join(self.columns)}"
            raise RecordError(row, None, f"unknown key {key!r}{hint}")
        missing = [c for c in self.input_columns if c not in record]
        if missing:
            names = ", ".join(map(repr, missing))
            raise RecordError(row, None, f"missing {names}: give every feature, null where a value is missing")
        return record

    def read(self, record: Mapping[str, Any] | Sequence[Any], row: int = 0) -> Mapping[Any, Any]:
        """One raw record (a mapping by column name, or a line's values in the file's order) as
        :meth:`records_of_lines` reads a line: keyed by the file's columns, every feature there."""
        if isinstance(record, Mapping):
            return self._checked(record, row)
        if isinstance(record, Sequence) and not isinstance(record, str | bytes):
            return self.record(record, row)
        raise RecordError(row, None, f"a record is an object or a list of values, not {type(record).__name__}")

    def encode(self, record: Mapping[str, Any] | Sequence[Any], row: int = 0) -> list[float]:
        """One raw record (a mapping by column name, or a line's values in the file's order)."""
        return self.encode_read(self.read(record, row), row)

    def encode_read(self, values: Mapping[str, Any], row: int = 0) -> list[float]:
        """A record as :meth:`records_of_lines` reads it (keyed by the file's own columns, every
        feature there): encoded without checking its keys again."""
        encoded: list[float] = []
        for feature, column, kind, aliases, (low, high) in self._plan:
            text = self._text(values.get(column), row, column)
            if kind == "numeric":
                number = self._number(feature, text, row)
                encoded.append(low if number < low else high if number > high else number)
                if abs(encoded[-1]) > self._largest:
                    raise RecordError(
                        row, column, f"{shown(text or '')} is beyond {self._largest:g}, the largest the model takes"
                    )
                continue
            value = self._category(feature, aliases, text, row)
            if kind == "ordinal":
                encoded.append(float(self._ordinal[column][value]))
            else:
                positions = self._one_hot[column]
                block = [0.0] * len(positions)
                position = positions.get(value)
                if position is not None:  # a value never seen in training stays all zeros
                    block[position] = 1.0
                encoded.extend(block)
        return encoded

    def view(self, record: Mapping[str, Any] | Sequence[Any], row: int = 0) -> list[str]:
        """One raw record's view values (a mapping by column name, or a line's values in the
        file's order), one per input column in order: see :meth:`view_read`."""
        return self.view_read(self.read(record, row), row)

    def view_read(self, values: Mapping[str, Any], row: int = 0) -> list[str]:
        """A record as :meth:`records_of_lines` reads it, as the raw-feature view writes it: per
        input column, a number as ``repr(float)``, a category in lower case with its alias
        resolved, ``""`` when missing; nothing imputed, clipped or encoded. What :meth:`encode_read`
        refuses of a present value (not a number, outside an ordinal's order) is refused alike;
        with ``invalid_numbers="impute"`` a value that is not a number is missing, as in the job."""
        viewed: list[str] = []
        for feature, column, kind, aliases, _ in self._plan:
            text = self._text(values.get(column), row, column)
            if text is None:
                viewed.append("")
            elif kind == "numeric":
                number = self._parsed(feature, text, row)
                viewed.append("" if number is None else repr(number))
            else:
                viewed.append(self._category(feature, aliases, text, row))
        return viewed

    def _category(self, feature: Mapping[str, Any], aliases: Mapping[str, str], text: str | None, row: int) -> str:
        """A categorical feature's value: lower case, alias resolved (the training mode when
        missing); an ordinal's value outside its order is refused."""
        value = feature["impute"] if text is None else text.lower()
        value = aliases.get(value, value)
        if feature["kind"] == "ordinal" and value not in self._ordinal[feature["column"]]:
            allowed = ", ".join(feature["order"]) + "".join(f", {a}" for a in aliases)
            raise RecordError(row, feature["column"], f"{shown(text or '')} is not one of {allowed}")
        return value

    def _text(self, value: Any, row: int, column: str) -> str | None:
        """A value as the raw file writes it (trimmed), or None when it is missing."""
        if type(value) is str:  # what a CSV line always holds: the common case first
            text = value.strip(WHITESPACE)
            if len(text) > LONGEST_VALUE:
                raise RecordError(row, column, f"a value is longer than {LONGEST_VALUE} characters")
            return None if text.lower() in self._missing else text
        if value is None:
            return None
        if isinstance(value, float) and math.isnan(value):
            return None  # a float NaN is how a Python caller (pandas) writes a missing value
        if isinstance(value, bool) or not isinstance(value, str | numbers.Real):
            kinds: dict[type, str] = {list: "a list", dict: "an object"}
            kind = kinds.get(type(value), type(value).__name__)
            kind = str(value).lower() if isinstance(value, bool) else kind
            raise RecordError(row, column, f"{kind} is not a value a raw file holds (a string, a number or null)")
        try:
            text = str(value).strip(WHITESPACE)
        except ValueError:  # an int too long for str()
            raise RecordError(row, column, "a number with too many digits") from None
        if len(text) > LONGEST_VALUE:
            raise RecordError(row, column, f"a value is longer than {LONGEST_VALUE} characters")
        return None if text.lower() in self._missing else text

    def _number(self, feature: Mapping[str, Any], text: str | None, row: int) -> float:
        """The number a numeric feature's text writes (its training median when missing), before
        clipping."""
        number = None if text is None else self._parsed(feature, text, row)
        return float(feature["impute"]) if number is None else number

    def _parsed(self, feature: Mapping[str, Any], text: str, row: int) -> float | None:
        """The number a numeric feature's (present) text writes; not a number is refused, or
        None with ``invalid_numbers="impute"`` (the job reads it as missing)."""
        number = parse_number(text)
        if number is None and self._invalid_numbers == "error":
            raise RecordError(
                row,
                feature["column"],
                f"{shown(text)} is not a number (ASCII digits with an optional sign, point and "
                "exponent, within a double's range)",
            )
        return number

    def encode_target(self, value: Any, row: int = 0) -> float:
        """The training label of a raw target value (0..k-1, or the number for regression)."""
        text = self._text(value, row, self.target["column"])
        if text is None:
            raise RecordError(row, self.target["column"], "the target is missing")
        problem = self.target["problem"]
        if problem == "regression" or self.target.get("positive_above") is not None:
            number = parse_number(text)
            if number is None:
                raise RecordError(row, self.target["column"], f"{shown(text)} is not a number")
            if problem == "regression":
                return number
            return 1.0 if number > self.target["positive_above"] else 0.0
        label = text.lower()
        label = self.target.get("aliases", {}).get(label, label)
        if label not in self.target["classes"]:
            raise RecordError(row, self.target["column"], f"{label!r} is not one of {self.target['classes']}")
        return float(self.target["classes"].index(label))
