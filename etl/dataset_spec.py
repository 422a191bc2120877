"""Dataset specs: what a raw CSV holds and how to turn it into SageMaker-ready data.

A spec is a JSON file (``datasets/<name>.json``). This module parses and checks it on its own,
without the data: the CDK app does that at synth time, so a broken spec never deploys. The
checks that need the data (a column the file does not have, an ordinal value missing from its
order, ...) run in ``prepare.py`` before anything is written.

Plain Python only: it runs in the Glue job (shipped with ``--extra-py-files``), locally, and in
the CDK app. Every error is a :class:`SpecError` naming the dataset, the column and the problem.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
PROBLEMS = ("binary", "multiclass", "regression")
OUTLIER_POLICIES = ("keep", "clip", "drop")
DEFAULT_MISSING = ("", "?", "na", "n/a", "nan", "null")
DEFAULT_SPLIT = {"train": 0.8, "validation": 0.1, "test": 0.1}
IQR_WHISKER = 1.5
ALGORITHMS = ("xgboost", "linear-learner", "knn")
# Metrics the trainer reports, per problem; the first is the default objective.
METRICS = {
    "binary": ("auc", "accuracy", "f1", "precision", "recall", "log_loss"),
    "multiclass": ("accuracy", "macro_f1"),
    "regression": ("rmse", "mae", "mse", "r2"),
}
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "mse"})
THRESHOLD_CRITERIA = ("f1", "youden")
# What a number is in a raw file, for training (prepare.py, as a Spark rlike pattern) and serving
# (schema_encoder.py) alike: ASCII digits with an optional sign, decimal point and exponent.
# Python's float() also takes "1_000", "inf", "nan" and other scripts' digits, and Spark's cast
# takes "Infinity" and "NaN"; none of them is a number here, and neither is a value too large
# for a double ("1e999"): see parse_number.
NUMBER_PATTERN = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"
_NUMBER = re.compile(NUMBER_PATTERN)


def parse_number(text: str) -> float | None:
    """The finite number ``text`` writes (surrounding spaces aside), or None when it is not one."""
    text = text.strip()
    if not _NUMBER.match(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


class SpecError(ValueError):
    """A spec that cannot prepare its dataset. The message names dataset, column and problem."""

    def __init__(self, dataset: str, column: str | None, problem: str) -> None:
        self.dataset, self.column, self.problem = dataset, column, problem
        where = f"dataset {dataset!r}" + (f", column {column!r}" if column else "")
        super().__init__(f"{where}: {problem}")


# What "trimmed" means, identically in Spark (prepare.py) and in plain Python (inference).
WHITESPACE = " \t\n\r\f\v"


def normalise(value: str | None, aliases: Mapping[str, str] | None = None) -> str | None:
    """A categorical value as the platform compares it: trimmed, lower case, alias resolved."""
    if value is None:
        return None
    text = value.strip(WHITESPACE).lower()
    return (aliases or {}).get(text, text)


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # "numeric" | "one-hot" | "ordinal"
    order: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    outliers: str = "keep"

    @property
    def categorical(self) -> bool:
        return self.kind != "numeric"


@dataclass(frozen=True)
class Target:
    column: str
    problem: str
    positive: str | None = None
    positive_above: float | None = None
    classes: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Tuning:
    max_jobs: int
    max_parallel_jobs: int
    ranges: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Training:
    """How the dataset's model is trained and judged (the spec's optional ``training``)."""

    algorithm: str = "xgboost"
    objective_metric: str = ""  # empty: the problem's default
    minimum: float | None = None  # the gate: the test metric must reach this
    tolerance: float = 0.0  # ... and not fall below the approved model's by more than this
    threshold_criterion: str = "f1"
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    max_runtime_minutes: int = 60
    tuning: Tuning | None = None

    @property
    def lower_is_better(self) -> bool:
        return self.objective_metric in LOWER_IS_BETTER


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    delimiter: str
    header: bool
    columns: tuple[str, ...]  # the file's columns in order; empty when the header names them
    target: Target
    features: tuple[Feature, ...]
    drop: tuple[str, ...]
    missing_values: tuple[str, ...]
    split: Mapping[str, float]
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)
    training: Training = field(default_factory=Training)

    def feature(self, name: str) -> Feature:
        return next(f for f in self.features if f.name == name)

    def check_columns(self, data_columns: list[str]) -> None:
        """The data's columns must be exactly the spec's target, features and drops."""
        declared = [self.target.column, *(f.name for f in self.features), *self.drop]
        for column in declared:
            if column not in data_columns:
                raise SpecError(self.name, column, f"named in the spec but not in the data (columns: {data_columns})")
        for column in data_columns:
            if column not in declared:
                raise SpecError(self.name, column, "in the data but not in the spec: add it to features or to drop")


def load_spec(text: str, source: str = "spec") -> DatasetSpec:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(source, None, f"not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise SpecError(source, None, "a spec is a JSON object")
    return parse_spec(raw)


def parse_spec(raw: Mapping[str, Any]) -> DatasetSpec:
    name = raw.get("dataset")
    if not isinstance(name, str) or not NAME.match(name):
        raise SpecError(str(name), None, "dataset: a name of lower-case letters, digits and '-' (1-40) is required")
    known = {
        "dataset",
        "description",
        "source",
        "csv",
        "target",
        "features",
        "drop",
        "missing_values",
        "split",
        "training",
    }
    for key in raw:
        if key not in known:
            raise SpecError(name, None, f"unknown key {key!r}; allowed: {', '.join(sorted(known))}")

    csv = _mapping(name, raw, "csv")
    delimiter = csv.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise SpecError(name, None, f"csv.delimiter must be one character, not {delimiter!r}")
    header = csv.get("header")
    if not isinstance(header, bool):
        raise SpecError(name, None, "csv.header must be true or false")
    columns = tuple(csv.get("columns", ()))
    if not header and not columns:
        raise SpecError(name, None, "csv.columns must list the file's columns when csv.header is false")
    if header and columns:
        raise SpecError(name, None, "csv.columns is only for files without a header (the header names them)")
    if len(set(columns)) != len(columns):
        raise SpecError(name, None, f"csv.columns repeats a column: {list(columns)}")

    target = _target(name, _mapping(name, raw, "target"))
    features = tuple(_feature(name, column, spec) for column, spec in _mapping(name, raw, "features").items())
    if not features:
        raise SpecError(name, None, "features: at least one feature is required")
    drop = tuple(raw.get("drop", ()))
    names = [target.column, *(f.name for f in features), *drop]
    for column in names:
        if names.count(column) > 1:
            raise SpecError(name, column, "appears more than once among target, features and drop")
    if columns:
        DatasetSpec(name, delimiter, header, columns, target, features, drop, (), {}).check_columns(list(columns))

    missing = tuple(normalise(str(v)) or "" for v in raw.get("missing_values", DEFAULT_MISSING))
    split = dict(raw.get("split", DEFAULT_SPLIT))
    if set(split) != set(DEFAULT_SPLIT) or any(not isinstance(v, int | float) or v <= 0 for v in split.values()):
        raise SpecError(name, None, f"split needs train, validation and test fractions above 0, not {split}")
    if abs(sum(split.values()) - 1.0) > 1e-9:
        raise SpecError(name, None, f"split fractions must add up to 1, not {sum(split.values())}")
    training = _training(name, target.problem, raw.get("training", {}))
    return DatasetSpec(name, delimiter, header, columns, target, features, drop, missing, split, dict(raw), training)


def _training(dataset: str, problem: str, raw: Mapping[str, Any]) -> Training:
    if not isinstance(raw, Mapping):
        raise SpecError(dataset, None, "training must be an object")
    known = set(Training.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise SpecError(dataset, None, f"training: unknown keys {sorted(unknown)}; allowed: {', '.join(sorted(known))}")
    algorithm = raw.get("algorithm", "xgboost")
    if algorithm not in ALGORITHMS:
        raise SpecError(dataset, None, f"training.algorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}")
    metric = raw.get("objective_metric") or METRICS[problem][0]
    if metric not in METRICS[problem]:
        allowed = ", ".join(METRICS[problem])
        problem_text = f"training.objective_metric for a {problem} target is one of {allowed}, not {metric!r}"
        raise SpecError(dataset, None, problem_text)
    criterion = raw.get("threshold_criterion", "f1")
    if criterion not in THRESHOLD_CRITERIA:
        raise SpecError(dataset, None, f"training.threshold_criterion must be f1 or youden, not {criterion!r}")
    count = raw.get("instance_count", 1)
    if not isinstance(count, int) or count < 1:
        raise SpecError(dataset, None, f"training.instance_count must be a whole number >= 1, not {count!r}")
    if algorithm == "xgboost" and count > 1:
        raise SpecError(
            dataset,
            None,
            "training.instance_count above 1 needs an algorithm that trains on shards "
            "(linear-learner, knn); the script-mode XGBoost trainer runs on one instance",
        )
    tuning = None
    if "tuning" in raw and algorithm != "xgboost":
        raise SpecError(dataset, None, f"training.tuning is for the xgboost trainer, not {algorithm}")
    if "tuning" in raw:
        spec = raw["tuning"]
        ranges = spec.get("ranges") or {}
        jobs, parallel = spec.get("max_jobs", 10), spec.get("max_parallel_jobs", 2)
        if not ranges:
            raise SpecError(dataset, None, "training.tuning needs ranges of at least one hyperparameter")
        if not (1 <= parallel <= jobs <= 100):
            bounds_text = f"1 <= max_parallel_jobs <= max_jobs <= 100, not {parallel}/{jobs}"
            raise SpecError(dataset, None, f"training.tuning needs {bounds_text}")
        for name, bounds in ranges.items():
            kind = bounds.get("type", "continuous")
            if kind not in ("continuous", "integer") or not bounds.get("min", 0) < bounds.get("max", 0):
                range_text = f"training.tuning.ranges.{name} needs type continuous or integer and min < max"
                raise SpecError(dataset, None, range_text)
        tuning = Tuning(jobs, parallel, ranges)
    return Training(
        algorithm=algorithm,
        objective_metric=metric,
        minimum=raw.get("minimum"),
        tolerance=float(raw.get("tolerance", 0.0)),
        threshold_criterion=criterion,
        hyperparameters=dict(raw.get("hyperparameters", {})),
        instance_type=raw.get("instance_type", "ml.m5.large"),
        instance_count=count,
        max_runtime_minutes=int(raw.get("max_runtime_minutes", 60)),
        tuning=tuning,
    )


def _mapping(dataset: str, raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key)
    if not isinstance(value, Mapping):
        raise SpecError(dataset, None, f"{key} is required and must be an object")
    return value


def _aliases(dataset: str, column: str, spec: Mapping[str, Any]) -> dict[str, str]:
    aliases = spec.get("aliases", {})
    if not isinstance(aliases, Mapping) or not all(isinstance(v, str) for v in aliases.values()):
        raise SpecError(dataset, column, "aliases must map variant strings to values")
    return {normalise(k) or "": normalise(v) or "" for k, v in aliases.items()}


def _feature(dataset: str, column: str, spec: Mapping[str, Any]) -> Feature:
    kind = spec.get("type")
    allowed = {"numeric": {"type", "outliers"}, "categorical": {"type", "encoding", "order", "aliases"}}
    if kind not in allowed:
        raise SpecError(dataset, column, f"type must be numeric or categorical, not {kind!r}")
    extra = set(spec) - allowed[kind]
    if extra:
        raise SpecError(dataset, column, f"unknown keys for a {kind} feature: {sorted(extra)}")
    if kind == "numeric":
        outliers = spec.get("outliers", "keep")
        if outliers not in OUTLIER_POLICIES:
            raise SpecError(dataset, column, f"outliers must be one of {', '.join(OUTLIER_POLICIES)}, not {outliers!r}")
        return Feature(column, "numeric", outliers=outliers)
    encoding = spec.get("encoding")
    aliases = _aliases(dataset, column, spec)
    if encoding == "one-hot":
        if "order" in spec:
            raise SpecError(dataset, column, "order is only for ordinal encoding")
        return Feature(column, "one-hot", aliases=aliases)
    if encoding == "ordinal":
        order = tuple(normalise(str(v)) or "" for v in spec.get("order", ()))
        if not order or len(set(order)) != len(order):
            raise SpecError(dataset, column, "ordinal encoding needs order: every value once, lowest first")
        return Feature(column, "ordinal", order=order, aliases=aliases)
    raise SpecError(dataset, column, f"encoding must be one-hot or ordinal, not {encoding!r}")


def _target(dataset: str, spec: Mapping[str, Any]) -> Target:
    column = spec.get("column")
    if not isinstance(column, str) or not column:
        raise SpecError(dataset, None, "target.column is required")
    problem = spec.get("problem")
    if problem not in PROBLEMS:
        raise SpecError(dataset, column, f"target.problem must be one of {', '.join(PROBLEMS)}, not {problem!r}")
    aliases = _aliases(dataset, column, spec)
    positive, above = spec.get("positive"), spec.get("positive_above")
    classes = tuple(normalise(str(v)) or "" for v in spec.get("classes", ()))
    if problem == "binary":
        if (positive is None) == (above is None):
            raise SpecError(dataset, column, "a binary target names positive (a label) or positive_above (a number)")
        if above is not None and not isinstance(above, int | float):
            raise SpecError(dataset, column, f"positive_above must be a number, not {above!r}")
        return Target(
            column, problem, normalise(str(positive)) if positive is not None else None, above, aliases=aliases
        )
    if positive is not None or above is not None:
        raise SpecError(dataset, column, f"positive and positive_above are only for binary targets, not {problem}")
    if problem == "multiclass":
        if classes and len(set(classes)) != len(classes):
            raise SpecError(dataset, column, "classes must list every class once")
        return Target(column, problem, classes=classes, aliases=aliases)
    if classes:
        raise SpecError(dataset, column, "classes are only for multiclass targets")
    return Target(column, problem)
