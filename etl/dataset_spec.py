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
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
PROBLEMS = ("binary", "multiclass", "regression")
OUTLIER_POLICIES = ("keep", "clip", "drop")
DEFAULT_MISSING = ("", "?", "na", "n/a", "nan", "null")
DEFAULT_SPLIT = {"train": 0.8, "validation": 0.1, "test": 0.1}
IQR_WHISKER = 1.5
ALGORITHMS = ("xgboost", "linear-learner", "knn", "autopilot")
# Metrics the trainer reports, per problem; the first is the default objective.
METRICS = {
    "binary": ("auc", "accuracy", "f1", "precision", "recall", "log_loss"),
    "multiclass": ("accuracy", "macro_f1"),
    "regression": ("rmse", "mae", "mse", "r2"),
}
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "mse"})
# How a binary model's decision threshold is chosen on the validation split: the best F1, Youden's
# J, the best accuracy, or the least expected cost of its errors (false_positive_cost and
# false_negative_cost, in the business's own unit).
THRESHOLD_CRITERIA = ("f1", "youden", "accuracy", "cost")
COSTS = ("false_positive_cost", "false_negative_cost")
# Metrics that are shares (0 to 1), errors (0 and up) and R² (up to 1): where training.minimum can lie.
SHARE_METRICS = frozenset({"auc", "accuracy", "f1", "precision", "recall", "macro_f1"})
# The hyperparameters of the script-mode XGBoost trainer (training_jobs/train.py), with their types;
# a test keeps the two lists equal. Anything else would stop the training job, after the ETL job.
XGBOOST_HYPERPARAMETERS: dict[str, type] = {
    "num_round": int,
    "early_stopping_rounds": int,
    "seed": int,
    "eta": float,
    "max_depth": int,
    "min_child_weight": float,
    "subsample": float,
    "colsample_bytree": float,
    "gamma": float,
    "alpha": float,
    "lambda": float,
    "max_bin": int,
    "scale_pos_weight": float,
    "tree_method": str,
    "refit": bool,  # the trainer's own: refit on train and validation for the rounds chosen (default true)
}
SCALINGS = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")  # SageMaker's ScalingType
INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
MAX_RUNTIME_MINUTES = 28 * 24 * 60  # SageMaker's limit for a training job: 28 days
# The share of a file's rows that may have the wrong number of fields (they are left out and
# counted in report.json): none, unless the spec's csv.max_malformed_fraction says otherwise.
DEFAULT_MAX_MALFORMED = 0.0
# Names the job gives its own columns; a dataset's column may not begin with it.
RESERVED_PREFIX = "__"
# The spec's keys, per object.
TOP_KEYS = (
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
)
CSV_KEYS = ("delimiter", "header", "columns", "max_malformed_fraction")
TARGET_KEYS = ("column", "problem", "positive", "positive_above", "classes", "aliases")
FEATURE_KEYS = {"numeric": ("type", "outliers"), "categorical": ("type", "encoding", "order", "aliases")}
TUNING_KEYS = ("max_jobs", "max_parallel_jobs", "ranges")
AUTOPILOT_KEYS = ("max_candidates", "max_job_minutes", "mode")
# Autopilot's training modes (AutoMLMode), by the spec's names.
AUTOPILOT_MODES = {"ensembling": "ENSEMBLING", "hyperparameter-tuning": "HYPERPARAMETER_TUNING", "auto": "AUTO"}
# The platform's metrics as Autopilot names its objectives (botocore's AutoMLMetricEnum); log_loss has none.
AUTOPILOT_METRICS = {
    "auc": "AUC",
    "accuracy": "Accuracy",
    "f1": "F1",
    "precision": "Precision",
    "recall": "Recall",
    "macro_f1": "F1macro",
    "rmse": "RMSE",
    "mae": "MAE",
    "mse": "MSE",
    "r2": "R2",
}
MAX_AUTOPILOT_CANDIDATES = 750  # CreateAutoMLJobV2's MaxCandidates
MAX_AUTOPILOT_MINUTES = 30 * 24 * 60  # the longest an AutoML job may run: 30 days
RANGE_KEYS = ("type", "min", "max", "scaling")
# What a number is in a raw file, for training (prepare.py, as a Spark rlike pattern) and serving
# (schema_encoder.py) alike: ASCII digits with an optional sign, decimal point and exponent.
# Python's float() also takes "1_000", "inf", "nan" and other scripts' digits, and Spark's cast
# takes "Infinity" and "NaN"; none of them is a number here, and neither is a value too large
# for a double ("1e999"): see parse_number.
NUMBER_PATTERN = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"
_NUMBER = re.compile(NUMBER_PATTERN)


def parse_number(text: str) -> float | None:
    """The finite number ``text`` writes (surrounding spaces aside), or None when it is not one:
    exactly the texts NUMBER_PATTERN matches whose value is finite (tests hold the two equal).
    It asks float() first, as serving reads every value of every request: what float() reads and
    the pattern does not is infinite or not a number ("inf", "nan"), not ASCII (other scripts'
    digits) or holds an underscore ("1_000")."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number) or not text.isascii() or "_" in text:
        return None
    return number


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
class Autopilot:
    """How an Autopilot job searches (the spec's ``training.autopilot``): at most this many
    candidates, for at most this many minutes in all, in this mode (the spec's name of it)."""

    max_candidates: int = 10
    max_job_minutes: int = 240
    mode: str = "ensembling"

    @property
    def aws_mode(self) -> str:
        return AUTOPILOT_MODES[self.mode]


@dataclass(frozen=True)
class Training:
    """How the dataset's model is trained and judged (the spec's optional ``training``)."""

    algorithm: str = "xgboost"
    objective_metric: str = ""  # empty: the problem's default
    minimum: float | None = None  # the gate: the test metric must reach this
    tolerance: float = 0.0  # ... and not fall below the approved model's by more than this
    threshold_criterion: str = "f1"
    false_positive_cost: float | None = None  # with threshold_criterion "cost": what one error of each kind costs
    false_negative_cost: float | None = None
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    max_runtime_minutes: int = 60
    tuning: Tuning | None = None
    autopilot: Autopilot | None = None  # set exactly when the algorithm is autopilot

    @property
    def lower_is_better(self) -> bool:
        return self.objective_metric in LOWER_IS_BETTER

    @property
    def judging(self) -> dict[str, str]:
        """How a model is judged, as the trainer's and evaluate.py's hyperparameters: the objective
        metric, the threshold criterion and, where the spec prices the errors, their costs."""
        costs = {"false_positive_cost": self.false_positive_cost, "false_negative_cost": self.false_negative_cost}
        return {
            "objective_metric": self.objective_metric,
            "threshold_criterion": self.threshold_criterion,
            **{name: str(cost) for name, cost in costs.items() if cost is not None},
        }


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
    max_malformed_fraction: float = DEFAULT_MAX_MALFORMED

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


class NotJson(ValueError):
    """What json.loads takes but a spec (or a request) may not hold: a key twice in one object,
    NaN, Infinity."""


class DuplicateKey(NotJson):
    """A JSON object that names a key twice (json.loads would keep only the last value)."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook`` that refuses a key given twice in one object, for the
    spec and for the endpoint's JSON records alike."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise DuplicateKey(f"the key {key!r} appears twice in one object (JSON would keep only the last)")
        found[key] = value
    return found


def _no_constant(name: str) -> Any:
    raise NotJson(f"{name} is not a JSON number; write a number")


def load_spec(text: str, source: str = "spec") -> DatasetSpec:
    try:
        raw = json.loads(text, object_pairs_hook=unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise SpecError(source, None, f"not valid JSON: {exc}") from None
    except NotJson as exc:
        raise SpecError(source, None, str(exc)) from None
    if not isinstance(raw, dict):
        raise SpecError(source, None, "a spec is a JSON object")
    return parse_spec(raw)


def parse_spec(raw: Mapping[str, Any]) -> DatasetSpec:
    name = raw.get("dataset")
    if not isinstance(name, str) or not NAME.match(name):
        raise SpecError(str(name), None, "dataset: a name of lower-case letters, digits and '-' (1-40) is required")
    _known(name, raw, "", TOP_KEYS)
    for key in ("description", "source"):
        if key in raw:
            _string(name, raw[key], key)

    delimiter, header, columns, max_malformed = _csv(name, _section(name, raw, "csv"))
    target = _target(name, _section(name, raw, "target"))
    features = _features(name, _section(name, raw, "features"))
    drop = _column_names(name, raw.get("drop", []), "drop")
    names = [target.column, *(f.name for f in features), *drop]
    for column in names:
        if names.count(column) > 1:
            raise SpecError(name, column, "appears more than once among target, features and drop")
    _distinct_in_case(name, "the spec", names)
    if columns:
        DatasetSpec(name, delimiter, header, columns, target, features, drop, (), {}).check_columns(list(columns))

    markers = _strings(name, raw.get("missing_values", list(DEFAULT_MISSING)), "missing_values")
    missing = tuple(normalise(v) or "" for v in markers)
    _never_missing(name, target, features, missing)
    split = _split(name, raw.get("split", DEFAULT_SPLIT))
    training = _training(name, target.problem, raw.get("training", {}))
    return DatasetSpec(
        name,
        delimiter,
        header,
        columns,
        target,
        features,
        drop,
        missing,
        split,
        dict(raw),
        training,
        max_malformed_fraction=max_malformed,
    )


# --- the checks' vocabulary: every message names the key, the value and what is allowed --------


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def _not_allowed(dataset: str, key: str, value: Any, allowed: str, column: str | None = None) -> SpecError:
    return SpecError(dataset, column, f"{key} = {_shown(value)} is not allowed; allowed: {allowed}")


def _is_number(value: Any) -> bool:
    """A JSON number (true and false are not numbers, though Python's bool is an int)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _known(dataset: str, raw: Mapping[str, Any], key: str, allowed: tuple[str, ...], column: str | None = None) -> None:
    for name, value in raw.items():
        if name not in allowed:
            path = f"{key}.{name}" if key else name
            known = ", ".join(sorted(allowed))
            raise SpecError(dataset, column, f"unknown key {path!r} = {_shown(value)} is not allowed; allowed: {known}")


def _section(dataset: str, raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    if key not in raw:
        raise SpecError(dataset, None, f"{key} is required and must be an object")
    return _object(dataset, raw[key], key, "an object")


def _object(dataset: str, value: Any, key: str, allowed: str, column: str | None = None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _not_allowed(dataset, key, value, allowed, column)
    return value


def _string(dataset: str, value: Any, key: str, column: str | None = None) -> str:
    if not isinstance(value, str):
        raise _not_allowed(dataset, key, value, "a string", column)
    return value


def _strings(dataset: str, value: Any, key: str, column: str | None = None) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _not_allowed(dataset, key, value, 'a list of strings, such as ["a", "b"]', column)
    return tuple(value)


def _whole(dataset: str, value: Any, key: str, low: int, high: int, what: str = "") -> int:
    if not _is_whole(value) or not low <= value <= high:
        bounds = f">= {low}" if high == sys.maxsize else f"from {low} to {high}"
        raise _not_allowed(dataset, key, value, f"a whole number{what} {bounds}")
    return int(value)


def _column_names(dataset: str, value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise _not_allowed(dataset, key, value, 'a list of column names, such as ["a", "b"]')
    for index, name in enumerate(value):
        _usable_name(dataset, f"{key}[{index}]", name)
    return tuple(value)


def _usable_name(dataset: str, key: str, name: str) -> None:
    if name.startswith(RESERVED_PREFIX):
        allowed = f"a name that does not begin with {RESERVED_PREFIX!r} (the job's own columns do)"
        raise _not_allowed(dataset, key, name, allowed, name)


def _distinct_in_case(dataset: str, where: str, names: list[str] | tuple[str, ...]) -> None:
    """Spark resolves column names without regard to case: two that differ only in case clash."""
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(name.casefold(), name)
        if other != name:
            problem = f"{where} names {name!r} and {other!r}, which differ only in case; Spark cannot tell them apart"
            raise SpecError(dataset, name, problem)


# --- the sections ---------------------------------------------------------------------------------


def _csv(dataset: str, raw: Mapping[str, Any]) -> tuple[str, bool, tuple[str, ...], float]:
    _known(dataset, raw, "csv", CSV_KEYS)
    delimiter = raw.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise SpecError(dataset, None, f"csv.delimiter must be one character, not {delimiter!r}")
    if delimiter in '"\\\r\n':
        allowed = "one character other than a quote, a backslash or a line break"
        raise _not_allowed(dataset, "csv.delimiter", delimiter, allowed)
    header = raw.get("header")
    if not isinstance(header, bool):
        raise SpecError(dataset, None, f"csv.header must be true or false, not {header!r}")
    columns = _column_names(dataset, raw.get("columns", []), "csv.columns")
    if not header and not columns:
        raise SpecError(dataset, None, "csv.columns must list the file's columns when csv.header is false")
    if header and columns:
        raise SpecError(dataset, None, "csv.columns is only for files without a header (the header names them)")
    if len(set(columns)) != len(columns):
        raise SpecError(dataset, None, f"csv.columns repeats a column: {list(columns)}")
    _distinct_in_case(dataset, "csv.columns", columns)
    fraction = raw.get("max_malformed_fraction", DEFAULT_MAX_MALFORMED)
    if not _is_number(fraction) or not 0 <= fraction < 1:
        allowed = "a number from 0 to below 1 (the share of rows with the wrong number of fields to leave out)"
        raise _not_allowed(dataset, "csv.max_malformed_fraction", fraction, allowed)
    return delimiter, header, columns, float(fraction)


def _split(dataset: str, value: Any) -> dict[str, float]:
    split = dict(_object(dataset, value, "split", "an object of train, validation and test fractions"))
    if set(split) != set(DEFAULT_SPLIT):
        raise SpecError(dataset, None, f"split needs train, validation and test fractions above 0, not {split}")
    for key, fraction in split.items():
        if not _is_number(fraction) or not 0 < fraction < 1:
            raise _not_allowed(dataset, f"split.{key}", fraction, "a fraction above 0 and below 1")
    if abs(sum(split.values()) - 1.0) > 1e-9:
        raise SpecError(dataset, None, f"split fractions must add up to 1, not {sum(split.values())}")
    return split


def _training(dataset: str, problem: str, value: Any) -> Training:
    raw = _object(dataset, value, "training", "an object (how the dataset's model is trained)")
    _known(dataset, raw, "training", tuple(Training.__dataclass_fields__))
    algorithm = raw.get("algorithm", "xgboost")
    if algorithm not in ALGORITHMS:
        raise SpecError(dataset, None, f"training.algorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}")
    metric = raw.get("objective_metric", "")
    if not isinstance(metric, str) or (metric and metric not in METRICS[problem]):
        allowed = f"for a {problem} target, one of {', '.join(METRICS[problem])}"
        raise _not_allowed(dataset, "training.objective_metric", metric, allowed)
    metric = metric or METRICS[problem][0]
    criterion = raw.get("threshold_criterion", "f1")
    if not isinstance(criterion, str) or criterion not in THRESHOLD_CRITERIA:
        raise _not_allowed(
            dataset, "training.threshold_criterion", criterion, f"one of {', '.join(THRESHOLD_CRITERIA)}"
        )
    if criterion in ("accuracy", "cost") and problem != "binary":
        raise SpecError(
            dataset,
            None,
            f"training.threshold_criterion {criterion!r} chooses a binary model's threshold; the target is {problem}",
        )
    costs = _costs(dataset, criterion, raw)
    minimum = _minimum(dataset, metric, raw["minimum"]) if "minimum" in raw else None
    tolerance = raw.get("tolerance", 0.0)
    if not _is_number(tolerance) or tolerance < 0:
        raise _not_allowed(dataset, "training.tolerance", tolerance, "a number >= 0")
    instance_type = raw.get("instance_type", "ml.m5.large")
    if not isinstance(instance_type, str) or not INSTANCE_TYPE.match(instance_type):
        raise _not_allowed(dataset, "training.instance_type", instance_type, "an instance type such as ml.m5.large")
    count = _whole(dataset, raw.get("instance_count", 1), "training.instance_count", 1, sys.maxsize)
    if algorithm == "xgboost" and count > 1:
        raise SpecError(
            dataset,
            None,
            "training.instance_count above 1 needs an algorithm that trains on shards "
            "(linear-learner, knn); the script-mode XGBoost trainer runs on one instance",
        )
    minutes = raw.get("max_runtime_minutes", 60)
    runtime = _whole(dataset, minutes, "training.max_runtime_minutes", 1, MAX_RUNTIME_MINUTES, " of minutes")
    hyperparameters = _hyperparameters(dataset, algorithm, raw.get("hyperparameters", {}))
    tuning = None
    if "tuning" in raw and algorithm != "xgboost":
        raise SpecError(dataset, None, f"training.tuning is for the xgboost trainer, not {algorithm}")
    if "tuning" in raw:
        tuning = _tuning(dataset, raw["tuning"])
    autopilot = _autopilot(dataset, metric, raw) if algorithm == "autopilot" else None
    if algorithm != "autopilot" and "autopilot" in raw:
        raise SpecError(dataset, None, f'training.autopilot is for algorithm "autopilot", not {algorithm!r}')
    return Training(
        algorithm=algorithm,
        objective_metric=metric,
        minimum=minimum,
        tolerance=float(tolerance),
        threshold_criterion=criterion,
        false_positive_cost=costs[0],
        false_negative_cost=costs[1],
        hyperparameters=hyperparameters,
        instance_type=instance_type,
        instance_count=count,
        max_runtime_minutes=runtime,
        tuning=tuning,
        autopilot=autopilot,
    )


def _autopilot(dataset: str, metric: str, raw: Mapping[str, Any]) -> Autopilot:
    """Autopilot's bounds. It chooses its own models, settings and instances: the spec's
    hyperparameters, instance type and count have nothing to set there."""
    for key in ("hyperparameters", "instance_type", "instance_count"):
        if key in raw:
            raise SpecError(dataset, None, f"training.{key} has nothing to set for autopilot, which chooses its own")
    if metric not in AUTOPILOT_METRICS:
        allowed = ", ".join(AUTOPILOT_METRICS)
        raise SpecError(dataset, None, f"training.objective_metric {metric!r} is no Autopilot objective ({allowed})")
    spec = _object(dataset, raw.get("autopilot", {}), "training.autopilot", "an object of Autopilot's bounds")
    _known(dataset, spec, "training.autopilot", AUTOPILOT_KEYS)
    candidates = _whole(
        dataset, spec.get("max_candidates", 10), "training.autopilot.max_candidates", 1, MAX_AUTOPILOT_CANDIDATES
    )
    minutes = _whole(
        dataset, spec.get("max_job_minutes", 240), "training.autopilot.max_job_minutes", 1, MAX_AUTOPILOT_MINUTES,
        " of minutes",
    )  # fmt: skip
    mode = spec.get("mode", "ensembling")
    if not isinstance(mode, str) or mode not in AUTOPILOT_MODES:
        raise _not_allowed(dataset, "training.autopilot.mode", mode, f"one of {', '.join(AUTOPILOT_MODES)}")
    return Autopilot(max_candidates=candidates, max_job_minutes=minutes, mode=mode)


def _costs(dataset: str, criterion: str, raw: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """Both error costs with the cost criterion (finite, above 0), neither without it."""
    if criterion != "cost":
        given = [name for name in COSTS if name in raw]
        if given:
            raise SpecError(dataset, None, f'training.{given[0]} is for threshold_criterion "cost", not {criterion!r}')
        return None, None
    found = []
    for name in COSTS:
        if name not in raw:
            raise SpecError(dataset, None, f'training.threshold_criterion "cost" needs training.{name}')
        value = raw[name]
        if not _is_number(value) or value <= 0:
            raise _not_allowed(dataset, f"training.{name}", value, "a number above 0 (what one such error costs)")
        found.append(float(value))
    return found[0], found[1]


def _minimum(dataset: str, metric: str, value: Any) -> float:
    """The gate's bar, where the metric can lie (a bar of 95 for an accuracy rejects every model)."""
    if metric in SHARE_METRICS:
        fits, allowed = _is_number(value) and 0 <= value <= 1, f"a number from 0 to 1 ({metric} is a share)"
    elif metric == "r2":
        fits, allowed = _is_number(value) and value <= 1, "a number up to 1 (r2 is at most 1)"
    else:
        fits, allowed = _is_number(value) and value >= 0, f"a number >= 0 ({metric} is an error: lower is better)"
    if not fits:
        raise _not_allowed(dataset, "training.minimum", value, allowed)
    return float(value)


def _hyperparameters(dataset: str, algorithm: str, value: Any) -> dict[str, Any]:
    raw = _object(dataset, value, "training.hyperparameters", 'an object of hyperparameters, such as {"eta": 0.1}')
    for name, setting in raw.items():
        key = f"training.hyperparameters.{name}"
        if algorithm != "xgboost":  # a built-in algorithm's own names: SageMaker checks them
            if not (isinstance(setting, str | bool) or _is_number(setting)):
                raise _not_allowed(dataset, key, setting, "a string, a number, true or false")
            continue
        if name not in XGBOOST_HYPERPARAMETERS:
            known = ", ".join(sorted(XGBOOST_HYPERPARAMETERS))
            raise _not_allowed(dataset, key, setting, f"the XGBoost trainer's: {known}")
        _typed(dataset, key, setting, XGBOOST_HYPERPARAMETERS[name])
    return dict(raw)


def _typed(dataset: str, key: str, value: Any, kind: type) -> Any:
    """``value``, once it is of ``kind`` (a whole number, a number, a string or true/false)."""
    if kind is bool and not isinstance(value, bool):
        raise _not_allowed(dataset, key, value, "true or false")
    if kind is int and not _is_whole(value):
        raise _not_allowed(dataset, key, value, "a whole number")
    if kind is float and not _is_number(value):
        raise _not_allowed(dataset, key, value, "a number")
    if kind is str and not isinstance(value, str):
        raise _not_allowed(dataset, key, value, "a string")
    return value


def _tuning(dataset: str, value: Any) -> Tuning:
    allowed = "an object with ranges (and max_jobs, max_parallel_jobs)"
    spec = _object(dataset, value, "training.tuning", allowed)
    _known(dataset, spec, "training.tuning", TUNING_KEYS)
    jobs = _whole(dataset, spec.get("max_jobs", 10), "training.tuning.max_jobs", 1, 100)
    parallel = _whole(dataset, spec.get("max_parallel_jobs", 2), "training.tuning.max_parallel_jobs", 1, 100)
    if parallel > jobs:
        bounds_text = f"1 <= max_parallel_jobs <= max_jobs <= 100, not {parallel}/{jobs}"
        raise SpecError(dataset, None, f"training.tuning needs {bounds_text}")
    example = '{"eta": {"min": 0.01, "max": 0.3}}'
    ranges = _object(
        dataset,
        spec.get("ranges", {}),
        "training.tuning.ranges",
        f"an object of hyperparameter ranges, such as {example}",
    )
    if not ranges:
        raise SpecError(dataset, None, "training.tuning needs ranges of at least one hyperparameter")
    return Tuning(jobs, parallel, {name: _range(dataset, name, bounds) for name, bounds in ranges.items()})


def _range(dataset: str, name: str, value: Any) -> dict[str, Any]:
    key = f"training.tuning.ranges.{name}"
    bounds = _object(dataset, value, key, "an object with type, min, max and scaling")
    tunable = sorted(n for n, kind in XGBOOST_HYPERPARAMETERS.items() if kind in (int, float))
    if name not in tunable:
        raise _not_allowed(
            dataset, key, dict(bounds), f"a range of a numeric XGBoost hyperparameter: {', '.join(tunable)}"
        )
    _known(dataset, bounds, key, RANGE_KEYS)
    expected = "integer" if XGBOOST_HYPERPARAMETERS[name] is int else "continuous"
    kind = bounds.get("type", "continuous")
    if kind != expected:
        raise _not_allowed(
            dataset,
            f"{key}.type",
            kind,
            f"{expected} ({name} is {'a whole number' if expected == 'integer' else 'a number'})",
        )
    kind_of = XGBOOST_HYPERPARAMETERS[name]
    low, high = (_typed(dataset, f"{key}.{end}", bounds.get(end), kind_of) for end in ("min", "max"))
    if not low < high:
        raise _not_allowed(dataset, f"{key}.max", high, f"a number above min ({low})")
    scaling = bounds.get("scaling", "Auto")
    if scaling not in SCALINGS:
        raise _not_allowed(dataset, f"{key}.scaling", scaling, ", ".join(SCALINGS))
    if scaling == "Logarithmic" and low <= 0:
        raise _not_allowed(dataset, f"{key}.min", low, "above 0 for Logarithmic scaling")
    if scaling == "ReverseLogarithmic" and not (low >= 0 and high < 1):
        raise _not_allowed(dataset, key, dict(bounds), "min >= 0 and max below 1 for ReverseLogarithmic scaling")
    return {"type": kind, "min": low, "max": high, "scaling": scaling}


def _aliases(dataset: str, spec: Mapping[str, Any], key: str, column: str) -> dict[str, str]:
    aliases = spec.get("aliases", {})
    if not isinstance(aliases, Mapping) or not all(isinstance(v, str) for v in aliases.values()):
        raise _not_allowed(dataset, key, aliases, "an object mapping variant strings to values", column)
    resolved: dict[str, str] = {}
    for variant, value in aliases.items():
        normalised = normalise(variant) or ""
        if normalised in resolved and resolved[normalised] != normalise(value):
            allowed = f"one value per variant ({variant!r} is another spelling of an earlier variant)"
            raise _not_allowed(dataset, f"{key}.{variant}", value, allowed, column)
        resolved[normalised] = normalise(value) or ""
    return resolved


def _features(dataset: str, raw: Mapping[str, Any]) -> tuple[Feature, ...]:
    features = tuple(_feature(dataset, column, spec) for column, spec in raw.items())
    if not features:
        raise SpecError(dataset, None, "features: at least one feature is required")
    return features


def _feature(dataset: str, column: str, value: Any) -> Feature:
    key = f"features.{column}"
    example = '{"type": "numeric"}'
    spec = _object(dataset, value, key, f"an object with the feature's type, such as {example}", column)
    if not column:
        raise _not_allowed(dataset, "features", dict(spec), "a column name for each feature", column)
    _usable_name(dataset, "a feature's name", column)
    kind = spec.get("type")
    if not isinstance(kind, str) or kind not in FEATURE_KEYS:
        raise SpecError(dataset, column, f"type must be numeric or categorical, not {kind!r}")
    _known(dataset, spec, key, FEATURE_KEYS[kind], column)
    if kind == "numeric":
        outliers = spec.get("outliers", "keep")
        if outliers not in OUTLIER_POLICIES:
            raise SpecError(dataset, column, f"outliers must be one of {', '.join(OUTLIER_POLICIES)}, not {outliers!r}")
        return Feature(column, "numeric", outliers=outliers)
    encoding = spec.get("encoding")
    aliases = _aliases(dataset, spec, f"{key}.aliases", column)
    if encoding == "one-hot":
        if "order" in spec:
            raise SpecError(dataset, column, "order is only for ordinal encoding")
        return Feature(column, "one-hot", aliases=aliases)
    if encoding == "ordinal":
        order = tuple(normalise(v) or "" for v in _strings(dataset, spec.get("order", []), f"{key}.order", column))
        if not order or len(set(order)) != len(order):
            raise SpecError(dataset, column, "ordinal encoding needs order: every value once, lowest first")
        for variant, value in aliases.items():
            if value not in order:
                allowed = f"one of its order: {', '.join(order)}"
                raise _not_allowed(dataset, f"{key}.aliases.{variant}", value, allowed, column)
        return Feature(column, "ordinal", order=order, aliases=aliases)
    raise SpecError(dataset, column, f"encoding must be one-hot or ordinal, not {encoding!r}")


def _target(dataset: str, spec: Mapping[str, Any]) -> Target:
    _known(dataset, spec, "target", TARGET_KEYS)
    if "column" not in spec:
        raise SpecError(dataset, None, "target.column is required")
    column = spec["column"]
    if not isinstance(column, str) or not column:
        raise _not_allowed(dataset, "target.column", column, "the name of the target's column")
    _usable_name(dataset, "target.column", column)
    problem = spec.get("problem")
    if problem not in PROBLEMS:
        raise SpecError(dataset, column, f"target.problem must be one of {', '.join(PROBLEMS)}, not {problem!r}")
    aliases = _aliases(dataset, spec, "target.aliases", column)
    positive, above = spec.get("positive"), spec.get("positive_above")
    classes = tuple(normalise(v) or "" for v in _strings(dataset, spec.get("classes", []), "target.classes", column))
    if aliases and (problem == "regression" or above is not None):
        raise SpecError(dataset, column, "target.aliases are only for a target of labels (not numbers)")
    if problem == "binary":
        if (positive is None) == (above is None):
            raise SpecError(dataset, column, "a binary target names positive (a label) or positive_above (a number)")
        if above is not None and not _is_number(above):
            raise _not_allowed(dataset, "target.positive_above", above, "a number", column)
        if positive is not None and (not isinstance(positive, str) or not normalise(positive)):
            raise _not_allowed(dataset, "target.positive", positive, "a label (a non-empty string)", column)
        if classes:
            raise SpecError(dataset, column, "classes are only for multiclass targets")
        label = normalise(positive) if positive is not None else None
        return Target(column, problem, label, above, aliases=aliases)
    if positive is not None or above is not None:
        raise SpecError(dataset, column, f"positive and positive_above are only for binary targets, not {problem}")
    if problem == "multiclass":
        if classes and len(set(classes)) != len(classes):
            raise SpecError(dataset, column, "classes must list every class once")
        for variant, value in aliases.items():
            if classes and value not in classes:
                allowed = f"one of target.classes: {', '.join(classes)}"
                raise _not_allowed(dataset, f"target.aliases.{variant}", value, allowed, column)
        return Target(column, problem, classes=classes, aliases=aliases)
    if classes:
        raise SpecError(dataset, column, "classes are only for multiclass targets")
    return Target(column, problem)


def _never_missing(dataset: str, target: Target, features: tuple[Feature, ...], missing: tuple[str, ...]) -> None:
    """A label or an ordinal value that is also a missing-value marker could never be seen."""
    allowed = f"a value that is not one of missing_values ({', '.join(map(repr, missing))})"
    if target.positive in missing:
        raise _not_allowed(dataset, "target.positive", target.positive, allowed, target.column)
    named = [(f"target.classes[{i}]", c, target.column) for i, c in enumerate(target.classes)]
    for feature in features:
        named += [(f"features.{feature.name}.order[{i}]", v, feature.name) for i, v in enumerate(feature.order)]
    for key, value, column in named:
        if value in missing:
            raise _not_allowed(dataset, key, value, allowed, column)
