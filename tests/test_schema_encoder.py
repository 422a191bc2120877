"""schema_encoder.py: a raw record in, the row the model reads out (numbers imputed and clipped,
categories one-hot or ordinal), or its raw-feature view; a record it cannot read is refused by
row and column. The schemas are the real datasets' as the ETL job prepared them."""

from __future__ import annotations

import copy

import pytest
from inference import LARGEST
from schema_encoder import SCHEMA_FORMAT, RecordError, SchemaEncoder

from tests.conftest import raw_records


def feature(schema, column):
    return next(f for f in schema["features"] if f["column"] == column)


def by_name(encoder, row) -> dict[str, float]:
    return dict(zip(encoder.feature_names, row, strict=True))


@pytest.mark.parametrize("form", ["ml-platform/prepared-parquet", "ml-platform/prepared-avro", None])
def test_a_schema_of_another_format_is_refused(prepared, form):
    schema = copy.deepcopy(prepared["bank-marketing"].schema)
    schema["format"] = form
    with pytest.raises(ValueError, match=f"not a prepared-data schema .*expected {SCHEMA_FORMAT!r}"):
        SchemaEncoder(schema)


def test_a_refused_record_is_a_bad_request_naming_its_row_and_column(prepared):
    encoder = SchemaEncoder(prepared["bank-marketing"].schema)
    record = raw_records(prepared["bank-marketing"])[0]
    with pytest.raises(RecordError) as raised:
        encoder.encode(record | {"age": "forty"}, row=7)
    assert raised.value.status_code == 400
    assert (raised.value.row, raised.value.column) == (7, "age")
    assert str(raised.value).startswith("row 7, column 'age': 'forty' is not a number")


def test_a_record_handled_on_its_own_is_refused_as_row_0_which_no_line_of_a_request_is(prepared):
    """Rows of a request count from 1; a record given alone, with no row, is named row 0."""
    encoder = SchemaEncoder(prepared["bank-marketing"].schema)
    record = raw_records(prepared["bank-marketing"])[0]
    with pytest.raises(RecordError, match=r"^row 0, column 'age': 'forty' is not a number"):
        encoder.encode(record | {"age": "forty"})
    with pytest.raises(RecordError, match=r"^row 0, column 'age': 'forty' is not a number"):
        encoder.view_read(record | {"age": "forty"})
    with pytest.raises(RecordError, match=r"^row 0, column 'y': 'maybe' is not one of \['no', 'yes'\]"):
        encoder.encode_target("maybe")


def test_ordinal_values_encode_as_their_place_in_the_order_and_a_missing_one_as_the_mode(prepared):
    schema = prepared["car-evaluation"].schema
    car = SchemaEncoder(schema)
    record = {"buying": "low", "maint": "Medium", "doors": "5more", "persons": " more ", "lug_boot": "SMALL"}
    # The orders are the spec's (datasets/car-evaluation.json): low med high vhigh, 2 3 4 5more, ...
    assert car.encode(record | {"safety": "high"}) == [0.0, 1.0, 3.0, 2.0, 0.0, 2.0]
    mode = feature(schema, "safety")["order"].index(feature(schema, "safety")["impute"])
    assert car.encode(record | {"safety": "?"}) == [0.0, 1.0, 3.0, 2.0, 0.0, float(mode)]
    assert car.encode(["vhigh", "very high", "2", "2", "med", "low"]) == [3.0, 3.0, 0.0, 0.0, 1.0, 0.0]


def test_categories_encode_one_hot_unseen_ones_as_zeros_and_a_missing_one_as_the_mode(prepared):
    schema = prepared["bank-marketing"].schema
    bank = SchemaEncoder(schema)
    record = raw_records(prepared["bank-marketing"])[0]
    jobs = [f"job={c}" for c in feature(schema, "job")["categories"]]

    def job_block(value):
        encoded = by_name(bank, bank.encode(record | {"job": value}))
        return [name for name in jobs if encoded[name] == 1.0], sum(encoded[name] for name in jobs)

    assert job_block(" Student ") == (["job=student"], 1.0)
    assert job_block("astronaut") == ([], 0.0)
    assert job_block("n/a") == ([f"job={feature(schema, 'job')['impute']}"], 1.0)
    assert len(bank.encode(record)) == len(bank.feature_names)


def test_numbers_are_imputed_with_the_median_and_clipped_to_the_training_whiskers(prepared):
    """The vertebral column spec clips degree_spondylolisthesis: its raw file holds an outlier far
    above the upper whisker, which the model reads as the whisker, as the ETL job wrote it."""
    data = prepared["vertebral-column"]
    spine = SchemaEncoder(data.schema)
    low, high = feature(data.schema, "degree_spondylolisthesis")["clip"]
    position = spine.feature_names.index("degree_spondylolisthesis")
    outlier = max(raw_records(data), key=lambda r: float(r["degree_spondylolisthesis"]))
    assert float(outlier["degree_spondylolisthesis"]) > high
    assert spine.encode(outlier)[position] == high
    for text, expected in [
        (str(low - 1000), low),
        (str(high + 0.5), high),
        ("12.5", 12.5),
        (str(low), low),
        ("?", feature(data.schema, "degree_spondylolisthesis")["impute"]),
    ]:
        assert spine.encode(outlier | {"degree_spondylolisthesis": text})[position] == expected
    assert spine.encode(outlier | {"pelvic_tilt": "-1000"})[1] == -1000.0  # not clipped: the spec keeps it


def test_a_number_beyond_what_the_model_takes_is_refused_quoting_it(prepared):
    bank = SchemaEncoder(prepared["bank-marketing"].schema, largest=LARGEST)
    record = raw_records(prepared["bank-marketing"])[0]
    beyond = r"^row 2, column 'duration': '-3\.5e38' is beyond 3\.40282e\+38, the largest the model takes"
    with pytest.raises(RecordError, match=beyond):
        bank.encode(record | {"duration": "-3.5e38"}, row=2)
    assert by_name(bank, bank.encode(record | {"duration": "3.4e38"}))["duration"] == 3.4e38


def test_the_view_is_each_feature_normalised_not_imputed_clipped_nor_encoded(prepared):
    bank = SchemaEncoder(prepared["bank-marketing"].schema)
    record = raw_records(prepared["bank-marketing"])[0]
    changed = record | {"age": " 41 ", "job": "Student", "marital": "?"}
    viewed = dict(zip(bank.input_columns, bank.view(changed), strict=True))
    assert (viewed["age"], viewed["job"], viewed["marital"]) == ("41.0", "student", "")
    assert viewed["nr.employed"] == repr(float(record["nr.employed"]))
    car = SchemaEncoder(prepared["car-evaluation"].schema)
    assert car.view(["Very High", "medium", "5more", "more", "big", ""]) == ["vhigh", "med", "5more", "more", "big", ""]
    spine = SchemaEncoder(prepared["vertebral-column"].schema)
    assert spine.view(["1", "2", "3", "4", "5", "1e3"]) == ["1.0", "2.0", "3.0", "4.0", "5.0", "1000.0"]


def test_a_line_that_fits_no_layout_names_the_layouts_a_line_may_have(prepared):
    bank = SchemaEncoder(prepared["bank-marketing"].schema)
    with pytest.raises(RecordError) as raised:
        list(bank.records_of_lines(["41;admin.;married"]))
    features = ", ".join(bank.input_columns)
    assert str(raised.value) == (
        f"row 1: has 3 values; expected 20 (the features) or 21 (the features and the target 'y'); "
        f"the features in order: {features}"
    )
    with pytest.raises(RecordError, match=r"^row 1: has 1 value; expected 20 \(the features\)"):
        list(bank.records_of_lines(["41"]))


def test_a_line_in_the_datasets_delimiter_keeps_a_comma_inside_a_quoted_value(prepared):
    data = prepared["bank-marketing"]
    bank = SchemaEncoder(data.schema)
    first = raw_records(data)[0]
    values = data.raw.read_text(encoding="utf-8").splitlines()[1].split(";")
    values[bank.columns.index("job")] = f'"{first["job"]}, retired"'
    [(row, record)] = bank.records_of_lines([";".join(values)])
    assert row == 1 and record == first | {"job": f"{first['job']}, retired"}


def test_a_first_line_naming_only_some_features_is_no_header(prepared):
    bank = SchemaEncoder(prepared["bank-marketing"].schema)
    with pytest.raises(RecordError, match=r"^row 1: has 2 values; expected 20"):
        list(bank.records_of_lines(["age;job", "41;admin."]))


def test_a_header_line_is_recognised_in_a_dataset_of_hundreds_of_columns():
    """A wide dataset (300 numeric features, as sensor data may have): its header names the columns."""
    columns = [f"x{i}" for i in range(300)]
    schema = {
        "format": SCHEMA_FORMAT,
        "missing_values": ["", "?"],
        "input_columns": columns,
        "feature_names": columns,
        "target": {"column": "y", "problem": "regression", "classes": []},
        "features": [{"column": c, "kind": "numeric", "impute": 0.0, "clip": None} for c in columns],
        "raw": {"delimiter": ",", "columns": [*columns, "y"]},
    }
    wide = SchemaEncoder(schema)
    header = ",".join(reversed([*columns, "y"]))
    line = ",".join(["2.5", *(str(i) for i in reversed(range(300)))])
    [(row, record)] = wide.records_of_lines([header, line])
    assert row == 2 and wide.encode_read(record) == [float(i) for i in range(300)]
