"""Dataset specs on their own (no data): the shipped ones parse, broken ones are named."""

from __future__ import annotations

import copy
import json

import pytest
from dataset_spec import SpecError, load_spec, normalise, parse_spec

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
