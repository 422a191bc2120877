"""Dataset specs on their own (no data): the shipped ones parse, broken ones are named."""

from __future__ import annotations

import copy
import json
import math
import re

import pytest
from dataset_spec import SpecError, load_spec, normalise, parse_spec
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT

SHIPPED = sorted(path.stem for path in (ROOT / "datasets").glob("*.json"))
CAR = json.loads((ROOT / "datasets" / "car-evaluation.json").read_text())


def test_the_four_uci_datasets_have_specs():
    assert {"bank-marketing", "vertebral-column", "car-evaluation", "wine-quality"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_spec_parses_and_is_named_after_its_file(name):
    spec = load_spec((ROOT / "datasets" / f"{name}.json").read_text())
    assert spec.name == name
    assert abs(sum(spec.split.values()) - 1) < 1e-9


def test_normalise_trims_lowers_and_resolves_aliases():
    assert normalise("  Medium\t", {"medium": "med"}) == "med"
    assert normalise("VHIGH") == "vhigh"
    assert normalise(None) is None


def _broken(change) -> dict:
    raw = copy.deepcopy(CAR)
    change(raw)
    return raw


@pytest.mark.parametrize(
    ("change", "column", "problem"),
    [
        (lambda r: r.update(dataset="Car Evaluation"), None, "dataset: a name of lower-case letters"),
        (lambda r: r.update(colour="red"), None, "unknown key 'colour'"),
        (lambda r: r["csv"].update(delimiter=";;"), None, "csv.delimiter must be one character"),
        (lambda r: r["csv"].pop("columns"), None, "csv.columns must list the file's columns"),
        (lambda r: r["features"].update(wheels={"type": "numeric"}), "wheels", "named in the spec but not in the data"),
        (lambda r: r["features"].pop("safety"), "safety", "in the data but not in the spec"),
        (lambda r: r["target"].update(column="price"), "price", "named in the spec but not in the data"),
        (lambda r: r.pop("target"), None, "target is required"),
        (lambda r: r["target"].update(problem="ranking"), "class", "target.problem must be one of"),
        (lambda r: r["target"].update(problem="binary"), "class", "a binary target names positive"),
        (lambda r: r["features"]["doors"].update(order=[]), "doors", "ordinal encoding needs order"),
        (lambda r: r["features"]["doors"].update(order=["2", "2"]), "doors", "every value once"),
        (lambda r: r["features"]["doors"].update(encoding="label"), "doors", "encoding must be one-hot or ordinal"),
        (lambda r: r["features"]["doors"].update(type="text"), "doors", "type must be numeric or categorical"),
        (lambda r: r["features"].update(doors={"type": "numeric", "outliers": "winsor"}), "doors", "outliers must be"),
        (lambda r: r.update(drop=["safety"]), "safety", "appears more than once"),
        (lambda r: r.update(split={"train": 0.8, "validation": 0.1, "test": 0.2}), None, "must add up to 1"),
        (lambda r: r.update(split={"train": 0.9, "test": 0.1}), None, "split needs train, validation and test"),
    ],
)
def test_broken_spec_names_dataset_column_and_problem(change, column, problem):
    with pytest.raises(SpecError) as raised:
        parse_spec(_broken(change))
    error = raised.value
    assert error.column == column
    assert problem in error.problem
    assert str(error).startswith(f"dataset {error.dataset!r}")


def test_invalid_json_is_reported_with_its_source():
    with pytest.raises(SpecError, match=r"dataset 'datasets/x.json': not valid JSON"):
        load_spec("{", source="datasets/x.json")


@pytest.mark.parametrize(
    ("text", "number"),
    [("1", 1.0), ("-1.5", -1.5), (" 2e3 ", 2000.0), (".5", 0.5), ("5.", 5.0), ("+7", 7.0), ("1E-2", 0.01)],
)
def test_a_number_is_ascii_digits_with_sign_point_and_exponent(text, number):
    from dataset_spec import parse_number

    assert parse_number(text) == number


@pytest.mark.parametrize(
    "text",
    ["1_000", "inf", "-inf", "Infinity", "NaN", "1e999", "-1e999", "١٢٣", "", "+", "1e", "0x10", "1.2.3", "1 000"],
)
def test_what_python_or_spark_would_read_as_a_number_is_not_one(text):
    from dataset_spec import parse_number

    assert parse_number(text) is None


@settings(max_examples=3000, derandomize=True, database=None, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789+-.eE_ \tinfaINFAty\u0661x"), max_size=8) | st.text(max_size=6))
def test_parse_number_reads_exactly_what_the_pattern_the_job_uses_matches(text):
    """The job counts a value as a number by NUMBER_PATTERN (a Spark rlike) and a finite cast;
    serving by parse_number: the two agree on every text."""
    from dataset_spec import NUMBER_PATTERN, parse_number

    stripped = text.strip()
    matches = re.match(NUMBER_PATTERN, stripped) is not None and math.isfinite(float(stripped))
    assert (parse_number(text) is not None) == matches, text


# --- issue 12: every key's type, one line naming dataset, key, value and what is allowed ---------


def _one_line_naming(error: SpecError, key: str, value) -> str:
    text = str(error)
    assert "\n" not in text, text
    assert text.startswith("dataset 'car-evaluation'"), text
    assert f"{key} = {value!r} is not allowed; allowed: " in text, text
    return text


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("missing_values", "unknown", "a list of strings"),
        ("missing_values", ["", 999], "a list of strings"),
        ("drop", "duration", "a list of column names"),
        ("training.minimum", "0.95", "a number"),
        ("training.minimum", True, "a number"),
        ("training.tolerance", "0.01", "a number >= 0"),
        ("training.max_runtime_minutes", "60", "a whole number of minutes from 1 to 40320"),
        ("training.max_runtime_minutes", 60.5, "a whole number of minutes from 1 to 40320"),
        ("training.instance_type", 5, "an instance type such as ml.m5.large"),
        ("training.instance_count", True, "a whole number >= 1"),
        ("training.objective_metric", 5, "accuracy, macro_f1"),
        ("training.hyperparameters", "max_depth=4", "an object of hyperparameters"),
        ("training.hyperparameters.max_depth", "deep", "a whole number"),
        ("training.hyperparameters.max_depth", 4.5, "a whole number"),
        ("training.hyperparameters.eta", "0.1", "a number"),
        ("training.tuning", "eta", "an object with ranges"),
        ("training.tuning.ranges", "eta: 0.1-0.3", "an object of hyperparameter ranges"),
        ("training.tuning.ranges.eta", "0.1-0.3", "an object with type, min, max"),
        ("training.tuning.ranges.eta.min", "0.1", "a number"),
        ("training.tuning.max_jobs", "10", "a whole number from 1 to 100"),
        ("features.doors", "ordinal", "an object with the feature's type"),
        ("features.doors.order", "2,3,4,5more", "a list of strings"),
        ("features.buying.aliases", ["medium"], "an object mapping variant strings to values"),
        ("target.classes", "unacc,acc,good,vgood", "a list of strings"),
        ("target.aliases", {"bad": 0}, "an object mapping variant strings to values"),
        ("csv.columns", "buying,maint", "a list of column names"),
        ("csv.max_malformed_fraction", "0.1", "a number from 0 to below 1"),
        ("csv.max_malformed_fraction", 1.5, "a number from 0 to below 1"),
        ("csv.max_malformed_fraction", True, "a number from 0 to below 1"),
        ("split.train", True, "a fraction above 0"),
        ("description", 5, "a string"),
        ("source", ["UCI"], "a string"),
    ],
)
def test_a_value_of_the_wrong_type_is_named_in_one_line(key, value, allowed):
    raw = _with_value(copy.deepcopy(CAR), key, value)
    with pytest.raises(SpecError) as raised:
        parse_spec(raw)
    assert allowed in _one_line_naming(raised.value, key, value)


def _with_value(raw: dict, key: str, value) -> dict:
    if key.startswith("training.tuning"):
        raw["training"]["tuning"] = {"max_jobs": 10, "max_parallel_jobs": 2, "ranges": {"eta": {"min": 0.1, "max": 1}}}
    *parents, last = key.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return raw


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("csv.delimeter", ";", "columns, delimiter, header, max_malformed_fraction"),
        ("target.positve", "acc", "aliases, classes, column, positive, positive_above, problem"),
        ("training.tuning.range", {}, "max_jobs, max_parallel_jobs, ranges"),
        ("training.tuning.ranges.eta.step", 0.1, "max, min, scaling, type"),
    ],
)
def test_an_unknown_key_under_csv_target_or_tuning_is_refused(key, value, allowed):
    raw = _with_value(copy.deepcopy(CAR), key, value)
    with pytest.raises(SpecError) as raised:
        parse_spec(raw)
    text = str(raised.value)
    assert "\n" not in text and f"unknown key {key!r} = {value!r} is not allowed; allowed: {allowed}" in text


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r["csv"].update(delimiter='"'), "csv.delimiter = '\"' is not allowed; allowed: one character"),
        (lambda r: r["csv"].update(delimiter="\n"), "csv.delimiter = '\\n' is not allowed; allowed: one character"),
        (lambda r: r["csv"].update(columns=[*r["csv"]["columns"][:6], "__split"]), "'__split' is not allowed"),
        (lambda r: r["csv"].update(columns=[*r["csv"]["columns"][:6], "Buying"]), "'Buying' and 'buying'"),
        (
            lambda r: r["features"]["buying"].update(aliases={"dear": "pricey"}),
            "features.buying.aliases.dear = 'pricey' is not allowed; allowed: one of its order",
        ),
        (
            lambda r: r["target"].update(aliases={"fine": "great"}),
            "target.aliases.fine = 'great' is not allowed; allowed: one of target.classes",
        ),
        (lambda r: r["target"].update(classes=["unacc", "acc", "good", "vgood", "?"]), "one of missing_values"),
        (lambda r: r["features"]["doors"].update(order=["2", "3", "4", "5more", "na"]), "one of missing_values"),
        (
            lambda r: r["training"]["hyperparameters"].update(max_detph=4),
            "training.hyperparameters.max_detph = 4 is not allowed; allowed: the XGBoost trainer's",
        ),
        (
            lambda r: r["training"].update(
                tuning={"ranges": {"max_depth": {"type": "continuous", "min": 2, "max": 8}}}
            ),
            "training.tuning.ranges.max_depth.type = 'continuous' is not allowed; allowed: integer",
        ),
        (
            lambda r: r["training"].update(
                tuning={"ranges": {"eta": {"min": 0, "max": 0.3, "scaling": "Logarithmic"}}}
            ),
            "training.tuning.ranges.eta.min = 0 is not allowed; allowed: above 0 for Logarithmic scaling",
        ),
        (
            lambda r: r["training"].update(tuning={"ranges": {"eta": {"min": 0.1, "max": 0.3, "scaling": "Log"}}}),
            "training.tuning.ranges.eta.scaling = 'Log' is not allowed; allowed: Auto, Linear, Logarithmic",
        ),
    ],
)
def test_siblings_at_the_spec_door_are_named(change, expected):
    with pytest.raises(SpecError) as raised:
        parse_spec(_broken(change))
    assert "\n" not in str(raised.value) and expected in str(raised.value)


def test_a_key_given_twice_in_one_object_is_refused():
    text = (ROOT / "datasets" / "car-evaluation.json").read_text()
    text = text.replace('"header": false', '"header": false, "header": true')
    with pytest.raises(SpecError, match=r"dataset 'car.json': the key 'header' appears twice in one object"):
        load_spec(text, source="car.json")


def test_nan_and_infinity_are_not_json_numbers_in_a_spec():
    text = json.dumps(CAR).replace('"minimum": 0.95', '"minimum": NaN')
    with pytest.raises(SpecError, match=r"dataset 'car.json': NaN is not a JSON number"):
        load_spec(text, source="car.json")


def test_the_malformed_row_threshold_defaults_to_none_allowed():
    assert parse_spec(copy.deepcopy(CAR)).max_malformed_fraction == 0.0
    assert parse_spec(_broken(lambda r: r["csv"].update(max_malformed_fraction=0.01))).max_malformed_fraction == 0.01


def _paths(value, path=()):
    """Every key path of a parsed JSON value (list items as their index), with the value there."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _json_type(value) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


@pytest.mark.parametrize("name", SHIPPED)
def test_every_key_of_a_shipped_spec_refuses_a_value_of_another_type(name):
    """Each value of the spec, in turn, replaced by one of each other JSON type: a SpecError of
    one line naming the key, never another exception and never a silent acceptance."""
    shipped = json.loads((ROOT / "datasets" / f"{name}.json").read_text())
    problems = []
    for path, original in _paths(shipped):
        if not path:
            continue
        key = next(str(part) for part in reversed(path) if isinstance(part, str))
        for wrong in (True, None, 12345, "text", ["text"], {"text": 1}):
            if _json_type(wrong) == _json_type(original):
                continue
            raw = copy.deepcopy(shipped)
            node = raw
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = wrong
            try:
                parse_spec(raw)
            except SpecError as error:
                if "\n" in str(error) or key not in str(error):
                    problems.append(f"{path} = {wrong!r}: {error}")
            except Exception as error:  # the point: nothing but a SpecError
                problems.append(f"{path} = {wrong!r}: {type(error).__name__}: {error}")
            else:
                problems.append(f"{path} = {wrong!r}: accepted")
    assert not problems, "\n".join(problems[:40]) + f"\n({len(problems)} in all)"


# --- how a binary model's decision threshold is chosen ---

BANK = json.loads((ROOT / "datasets" / "bank-marketing.json").read_text())


def _bank_training(**training) -> dict:
    raw = copy.deepcopy(BANK)
    raw["training"].pop("threshold_criterion", None)
    raw["training"].update(training)
    return raw


@pytest.mark.parametrize("criterion", ["f1", "youden", "accuracy"])
def test_each_threshold_criterion_without_costs_is_accepted(criterion):
    training = parse_spec(_bank_training(threshold_criterion=criterion)).training
    assert training.threshold_criterion == criterion
    assert training.false_positive_cost is None and training.false_negative_cost is None


def test_the_cost_criterion_takes_what_each_error_costs():
    spec = parse_spec(_bank_training(threshold_criterion="cost", false_positive_cost=1, false_negative_cost=12.5))
    assert (spec.training.false_positive_cost, spec.training.false_negative_cost) == (1.0, 12.5)


@pytest.mark.parametrize(
    ("training", "problem"),
    [
        ({"threshold_criterion": "cost", "false_positive_cost": 1}, "needs training.false_negative_cost"),
        ({"threshold_criterion": "cost"}, "needs training.false_positive_cost"),
        ({"threshold_criterion": "f1", "false_negative_cost": 5}, "is for threshold_criterion \"cost\", not 'f1'"),
        ({"false_positive_cost": 5}, 'is for threshold_criterion "cost"'),
    ],
)
def test_costs_come_with_the_cost_criterion_and_only_with_it(training, problem):
    with pytest.raises(SpecError, match=re.escape(problem)):
        parse_spec(_bank_training(**training))


@pytest.mark.parametrize("value", [0, -1, "5", True, None, [1]])
def test_an_error_cost_is_a_number_above_zero(value):
    raw = _bank_training(threshold_criterion="cost", false_positive_cost=1, false_negative_cost=value)
    with pytest.raises(SpecError) as raised:
        parse_spec(raw)
    assert "training.false_negative_cost = " in str(raised.value) and "a number above 0" in str(raised.value)


@pytest.mark.parametrize("criterion", ["accuracy", "cost"])
def test_the_new_criteria_are_for_binary_targets(criterion):
    raw = copy.deepcopy(CAR)
    raw.setdefault("training", {})["threshold_criterion"] = criterion
    with pytest.raises(SpecError, match="chooses a binary model's threshold; the target is multiclass"):
        parse_spec(raw)


def test_an_unknown_criterion_names_the_four_allowed():
    with pytest.raises(SpecError, match="one of f1, youden, accuracy, cost"):
        parse_spec(_bank_training(threshold_criterion="precision"))


# --- what a spec may leave out, where its settings' bounds lie, and which sections go together ---


def _car_training(**training) -> dict:
    raw = copy.deepcopy(CAR)
    raw["training"] = training
    return raw


def _as_read_from_its_file(raw: dict):
    """The spec as the platform reads datasets/<name>.json: from JSON text, not a Python dict."""
    return load_spec(json.dumps(raw), source="datasets/car-evaluation.json")


def test_a_spec_without_split_or_missing_values_gets_the_defaults():
    raw = copy.deepcopy(CAR)
    raw.pop("split", None)
    raw.pop("missing_values", None)
    spec = parse_spec(raw)
    assert dict(spec.split) == {"train": 0.8, "validation": 0.1, "test": 0.1}
    assert spec.missing_values == ("", "?", "na", "n/a", "nan", "null")


def test_missing_value_markers_and_aliases_are_kept_trimmed_and_in_lower_case():
    raw = copy.deepcopy(CAR)
    raw["missing_values"] = [" N/A ", "UNKNOWN"]
    raw["features"]["buying"]["aliases"] = {" Very High ": "VHIGH", "Medium": " med"}
    spec = parse_spec(raw)
    assert spec.missing_values == ("n/a", "unknown")
    assert dict(spec.feature("buying").aliases) == {"very high": "vhigh", "medium": "med"}


def test_two_spellings_of_one_variant_may_not_mean_different_values():
    raw = _broken(lambda r: r["features"]["buying"].update(aliases={"Medium": "med", "medium ": "low"}))
    with pytest.raises(SpecError) as raised:
        parse_spec(raw)
    text = str(raised.value)
    assert raised.value.column == "buying"
    assert "features.buying.aliases.medium  = 'low' is not allowed; allowed: one value per variant" in text


def test_numeric_features_are_not_categorical_and_encoded_ones_are():
    bank, car = parse_spec(copy.deepcopy(BANK)), parse_spec(copy.deepcopy(CAR))
    assert not bank.feature("age").categorical
    assert bank.feature("job").categorical  # one-hot
    assert car.feature("doors").categorical  # ordinal


def test_the_trainer_is_told_the_objective_the_criterion_and_any_error_costs():
    priced = parse_spec(_bank_training(threshold_criterion="cost", false_positive_cost=1, false_negative_cost=12.5))
    assert priced.training.judging == {
        "objective_metric": "auc",
        "threshold_criterion": "cost",
        "false_positive_cost": "1.0",
        "false_negative_cost": "12.5",
    }
    plain = parse_spec(_bank_training(threshold_criterion="youden"))
    assert plain.training.judging == {"objective_metric": "auc", "threshold_criterion": "youden"}


@pytest.mark.parametrize(
    ("key", "highest", "allowed"),
    [
        ("training.max_runtime_minutes", 28 * 24 * 60, "a whole number of minutes from 1 to 40320"),
        ("training.tuning.max_jobs", 100, "a whole number from 1 to 100"),
        ("training.autopilot.max_candidates", 750, "a whole number from 1 to 750"),
        ("training.autopilot.max_job_minutes", 30 * 24 * 60, "a whole number of minutes from 1 to 43200"),
    ],
)
def test_a_bounded_whole_number_takes_its_highest_value_and_refuses_one_more(key, highest, allowed):
    def spec_with(value):
        raw = copy.deepcopy(CAR)
        if key.startswith("training.autopilot"):
            raw["training"] = {"algorithm": "autopilot", "objective_metric": "accuracy"}
        return parse_spec(_with_value(raw, key, value))

    node = spec_with(highest)
    for part in key.split("."):
        node = getattr(node, part)
    assert node == highest
    with pytest.raises(SpecError) as raised:
        spec_with(highest + 1)
    assert allowed in _one_line_naming(raised.value, key, highest + 1)


def test_a_tolerance_of_zero_is_accepted_and_a_negative_one_refused():
    assert parse_spec(_broken(lambda r: r["training"].update(tolerance=0))).training.tolerance == 0.0
    with pytest.raises(SpecError) as raised:
        parse_spec(_broken(lambda r: r["training"].update(tolerance=-0.01)))
    assert "a number >= 0" in _one_line_naming(raised.value, "training.tolerance", -0.01)


def test_only_the_built_in_algorithms_train_on_several_instances():
    spec = parse_spec(_car_training(algorithm="linear-learner", instance_count=3))
    assert (spec.training.algorithm, spec.training.instance_count) == ("linear-learner", 3)
    with pytest.raises(
        SpecError, match=re.escape("training.instance_count above 1 needs an algorithm that trains on shards")
    ):
        parse_spec(_car_training(algorithm="xgboost", instance_count=2))


@pytest.mark.parametrize("algorithm", ["linear-learner", "knn"])
def test_tuning_is_for_the_xgboost_trainer_only(algorithm):
    tuning = {"ranges": {"eta": {"min": 0.1, "max": 0.3}}}
    with pytest.raises(SpecError, match=re.escape(f"training.tuning is for the xgboost trainer, not {algorithm}")):
        parse_spec(_car_training(algorithm=algorithm, tuning=tuning))


def test_tuning_runs_at_most_max_jobs_at_once():
    ranges = {"eta": {"min": 0.1, "max": 0.3}}
    tuning = parse_spec(_car_training(tuning={"max_jobs": 3, "max_parallel_jobs": 3, "ranges": ranges})).training.tuning
    assert (tuning.max_jobs, tuning.max_parallel_jobs) == (3, 3)
    assert dict(tuning.ranges) == {"eta": {"type": "continuous", "min": 0.1, "max": 0.3, "scaling": "Auto"}}
    with pytest.raises(
        SpecError, match=re.escape("training.tuning needs 1 <= max_parallel_jobs <= max_jobs <= 100, not 5/3")
    ):
        parse_spec(_car_training(tuning={"max_jobs": 3, "max_parallel_jobs": 5, "ranges": ranges}))


def test_a_reverse_logarithmic_range_lies_from_zero_to_below_one():
    def subsample(low, high):
        scaled = {"min": low, "max": high, "scaling": "ReverseLogarithmic"}
        return _as_read_from_its_file(_car_training(tuning={"ranges": {"subsample": scaled}}))

    accepted = subsample(0.5, 0.99).training.tuning.ranges["subsample"]
    assert accepted == {"type": "continuous", "min": 0.5, "max": 0.99, "scaling": "ReverseLogarithmic"}
    for low, high in ((0.5, 1.0), (-0.1, 0.9)):
        with pytest.raises(SpecError) as raised:
            subsample(low, high)
        bounds = {"min": low, "max": high, "scaling": "ReverseLogarithmic"}
        expected = f"training.tuning.ranges.subsample = {bounds!r} is not allowed; allowed: min >= 0 and max below 1"
        assert expected in str(raised.value)


def test_autopilot_searches_within_default_bounds_unless_the_spec_sets_them():
    default = parse_spec(_car_training(algorithm="autopilot", objective_metric="accuracy")).training.autopilot
    assert (default.max_candidates, default.max_job_minutes, default.mode) == (10, 240, "ensembling")
    assert default.aws_mode == "ENSEMBLING"
    bounds = {"max_candidates": 50, "mode": "hyperparameter-tuning"}
    chosen = _as_read_from_its_file(_car_training(algorithm="autopilot", autopilot=bounds)).training.autopilot
    assert (chosen.max_candidates, chosen.max_job_minutes, chosen.aws_mode) == (50, 240, "HYPERPARAMETER_TUNING")
    assert parse_spec(copy.deepcopy(CAR)).training.autopilot is None


def test_autopilot_bounds_are_only_for_the_autopilot_algorithm():
    with pytest.raises(SpecError, match=re.escape("training.autopilot is for algorithm \"autopilot\", not 'xgboost'")):
        _as_read_from_its_file(_car_training(algorithm="xgboost", autopilot={"max_candidates": 5}))


@pytest.mark.parametrize(
    "target",
    [
        {"column": "quality", "problem": "regression", "aliases": {"five": "5"}},
        {"column": "quality", "problem": "binary", "positive_above": 5, "aliases": {"five": "5"}},
    ],
)
def test_aliases_are_for_a_target_of_labels_not_numbers(target):
    raw = json.loads((ROOT / "datasets" / "wine-quality.json").read_text())
    raw["target"] = target
    with pytest.raises(SpecError, match=re.escape("target.aliases are only for a target of labels (not numbers)")):
        parse_spec(raw)
