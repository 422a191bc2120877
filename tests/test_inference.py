"""inference.py: raw records in, the trainer's predictions out; bad input named by row and column."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from inference import CSV, JSON, UnsupportedMediaType, input_fn, model_fn, output_fn, predict_fn
from schema_encoder import RecordError, SchemaEncoder

from tests.conftest import ROOT, raw_records

BANK_FEATURES = list(json.loads((ROOT / "datasets" / "bank-marketing.json").read_text())["features"])


def bank_json(*ages: str) -> str:
    """Bank records with every feature null (imputed) but ``age``, as a JSON list."""
    return json.dumps([dict.fromkeys(BANK_FEATURES) | {"age": age} for age in ages])


@pytest.fixture(scope="module")
def bank(trained):
    return model_fn(str(trained["bank-marketing"].out / "model"))


def _key(values) -> tuple:
    return tuple(float(f"{float(v):.10g}") for v in values)


def test_a_raw_record_gets_the_prediction_the_trainer_made_for_its_prepared_row(trained, bank):
    """Every test-split row as the trainer scores it, against its raw record through inference."""
    data = trained["bank-marketing"].prepared
    test = pd.concat(
        pd.read_csv(f, header=None, dtype=np.float64) for f in sorted((data.output / "test").glob("*.csv"))
    )
    features = test.to_numpy()[:, 1:]
    booster = xgb.Booster()
    booster.load_model(trained["bank-marketing"].out / "model" / "xgboost-model.json")
    info = bank.info
    expected = booster.predict(
        xgb.DMatrix(features, feature_names=info["feature_names"]), iteration_range=(0, info["best_iteration"] + 1)
    )
    by_row = {_key(row): p for row, p in zip(features, expected, strict=True)}

    lenient = SchemaEncoder(data.schema, invalid_numbers="impute")  # as the ETL job encoded
    records = [r for r in raw_records(data) if _key(lenient.encode(r)) in by_row]
    assert len(records) >= len(test)  # every test row has its raw record (duplicates may repeat)
    # Inference refuses what the job imputed (an unparseable number), so those are left out.
    valid = []
    for record in records:
        try:
            bank.encoder.encode(record)
            valid.append(record)
        except RecordError:
            pass
    assert len(records) - len(valid) <= sum(data.report["invalid_numbers"].values())
    records = valid
    body = "\n".join(",".join(r[c] for c in bank.encoder.input_columns) for r in records)
    predictions = predict_fn(input_fn(body, CSV), bank)
    for record, prediction in zip(records, predictions, strict=True):
        assert prediction["probability"] == pytest.approx(float(by_row[_key(bank.encoder.encode(record))]), abs=1e-7)
        assert prediction["label"] == ("yes" if prediction["probability"] >= info["threshold"] else "no")


def test_json_requests_in_every_accepted_shape(bank, trained):
    record = raw_records(trained["bank-marketing"].prepared)[0]
    single = predict_fn(input_fn(json.dumps(record), JSON), bank)
    listed = predict_fn(input_fn(json.dumps([record, record]), JSON), bank)
    wrapped = predict_fn(input_fn(json.dumps({"instances": [record]}), JSON), bank)
    assert single == wrapped == listed[:1] and len(listed) == 2


def test_csv_header_is_skipped_and_outputs_follow_accept(bank, trained):
    record = raw_records(trained["bank-marketing"].prepared)[0]
    columns = bank.encoder.input_columns
    body = ",".join(columns) + "\n" + ",".join(record[c] for c in columns) + "\n"
    [prediction] = predict_fn(input_fn(body, "text/csv; charset=utf-8"), bank)
    text, media = output_fn([prediction], CSV)
    assert media == CSV and next(csv.reader(io.StringIO(text))) == [
        f"{prediction['probability']:.6f}",
        prediction["label"],
    ]
    text, media = output_fn([prediction], "application/json")
    assert media == JSON and json.loads(text) == {"predictions": [prediction]}


def test_multiclass_returns_class_probabilities_and_label(trained):
    car = model_fn(str(trained["car-evaluation"].out / "model"))
    [prediction] = predict_fn(
        input_fn(
            '{"buying": "low", "maint": "low", "doors": "4", "persons": "4", "lug_boot": "big", "safety": "high"}',
            JSON,
        ),
        car,
    )
    assert set(prediction["probabilities"]) == {"unacc", "acc", "good", "vgood"}
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert prediction["label"] == max(prediction["probabilities"], key=prediction["probabilities"].get)


def test_a_car_evaluation_batch_is_answered_in_csv_with_class_probabilities_and_label(trained):
    """What batch transform writes for car evaluation: per line of car.data, the probabilities in
    the classes' order and the label, which is the class the file gives for nearly every car."""
    car = model_fn(str(trained["car-evaluation"].out / "model"))
    lines = raw_lines(trained["car-evaluation"].prepared)
    text, media = output_fn(predict_fn(input_fn("\n".join(lines) + "\n", CSV), car), CSV)
    rows = list(csv.reader(io.StringIO(text)))
    assert media == CSV and len(rows) == len(lines) and car.labels == ["unacc", "acc", "good", "vgood"]
    for row in rows:
        assert len(row) == 5 and all(re.fullmatch(r"[01]\.[0-9]{6}", p) for p in row[:4])
        assert sum(map(float, row[:4])) == pytest.approx(1.0, abs=1e-5)
        assert row[4] == car.labels[max(range(4), key=lambda i: float(row[i]))]
    agree = sum(row[4] == line.rsplit(",", 1)[1] for row, line in zip(rows, lines, strict=True))
    assert agree >= 0.95 * len(lines)
    assert {row[4] for row in rows} == set(car.labels)


def test_csv_answers_write_six_decimals_per_probability_or_value_and_a_blank_line_in_its_place():
    multiclass = {"probabilities": {"unacc": 0.9, "acc": 0.0625, "good": 1 / 3, "vgood": 0.0}, "label": "unacc"}
    binary = {"probability": 0.25, "label": "yes"}
    regression = {"value": -3.14159265}
    text, media = output_fn([multiclass, None, binary, regression, {"value": 1234.5}], "text/csv")
    assert media == CSV
    assert text == "0.900000,0.062500,0.333333,0.000000,unacc\n\n0.250000,yes\n-3.141593\n1234.500000\n"
    assert json.loads(output_fn([regression], JSON)[0]) == {"predictions": [regression]}


def test_a_regression_models_scores_are_answered_as_values():
    from inference import answers

    predictions = answers(np.array([2.5, -0.125], dtype=np.float32), "regression", [], None)
    assert predictions == [{"value": 2.5}, {"value": -0.125}]
    assert output_fn(predictions, CSV)[0] == "2.500000\n-0.125000\n"


def test_unseen_categories_and_missing_values_are_served_not_refused(bank):
    record = dict.fromkeys(bank.encoder.input_columns) | {"age": "41", "job": "astronaut", "duration": "300"}
    [prediction] = predict_fn([record], bank)
    assert 0.0 <= prediction["probability"] <= 1.0


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (bank_json("41", "forty"), JSON, "row 2, column 'age': 'forty' is not a number"),
        ("41,admin.,married", CSV, "row 1: has 3 values; expected 20"),
        ("{not json", JSON, "row 1: the body is not JSON"),
        ("[]", JSON, "row 1: expected"),
        ('"just a string"', JSON, 'row 1: expected {"instances": [...]}'),
        ("[42]", JSON, "row 1: a record is an object or a list of values, not int"),
    ],
)
def test_malformed_input_names_the_row_and_column(bank, body, content_type, message):
    with pytest.raises(RecordError) as raised:
        predict_fn(input_fn(body, content_type), bank)
    assert str(raised.value).startswith(message)


def test_unsupported_media_types_are_refused(bank):
    with pytest.raises(UnsupportedMediaType, match="content type 'application/x-parquet' is not supported"):
        input_fn(b"...", "application/x-parquet")
    with pytest.raises(UnsupportedMediaType, match="accept 'text/html' is not supported"):
        output_fn([{"value": 1.0}], "text/html")


# --- issue 12: every bad input a 4xx naming what and where; raw records as the raw file holds them


DATASETS = ("bank-marketing", "vertebral-column", "car-evaluation", "wine-quality")


@pytest.fixture(scope="module")
def models(trained):
    return {name: model_fn(str(trained[name].out / "model")) for name in DATASETS}


@pytest.fixture(scope="module")
def first(trained):
    """The first record of the bank marketing raw file (with its target), by column."""
    return raw_records(trained["bank-marketing"].prepared)[0]


def answer(model, body, content_type=None, accept=None) -> tuple[int, str]:
    """What SageMaker's XGBoost container answers, as sagemaker-inference's Transformer does:
    the three functions' output, or the ``status_code`` of the exception they raise. Any other
    exception escapes (the container would answer it with a 500)."""
    try:
        text, _ = output_fn(predict_fn(input_fn(body, content_type), model), accept)
        return 200, text
    except Exception as error:
        status = getattr(error, "status_code", None)
        if status is None:
            raise
        return int(status), str(error)


def comma_line(model, record) -> str:
    return ",".join(record[c] for c in model.encoder.input_columns)


def raw_lines(prepared) -> list[str]:
    """The raw file's lines as they are (delimiter, quotes, target), without its header."""
    lines = prepared.raw.read_text(encoding="utf-8").splitlines()
    return lines[1:] if prepared.spec.header else lines


@pytest.mark.parametrize("text", ["inf", "-inf", "Infinity", "1e999", "-1E400", "1_000", "٤١", "0x1A", "1e300"])
def test_a_csv_number_that_is_not_a_finite_ascii_number_is_refused_by_row_and_column(bank, first, text):
    body = comma_line(bank, first) + "\n" + comma_line(bank, first | {"age": text})
    with pytest.raises(RecordError) as raised:
        predict_fn(input_fn(body, CSV), bank)
    assert str(raised.value).startswith(f"row 2, column 'age': {text!r}")
    assert raised.value.status_code == 400


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "1E+999"])
def test_a_json_number_beyond_a_double_is_refused_by_row_and_column(bank, first, literal):
    body = json.dumps([first, first | {"duration": "__number__"}]).replace('"__number__"', literal)
    with pytest.raises(RecordError, match=f"^row 2, column 'duration': '{re.escape(literal)}'"):
        predict_fn(input_fn(body, JSON), bank)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[{"age": NaN}]', "row 1: the body is not JSON: NaN"),
        ('[{"age": Infinity}]', "row 1: the body is not JSON: Infinity"),
        ('[{"age": 1' + "0" * 5000 + "}]", "row 1: the body is not JSON"),
        ("[" * 1000 + "]" * 1000, "row 1: the body nests deeper than"),
        ("[" * 100_000 + "]" * 100_000, "row 1: the body nests deeper than"),
        (
            '{"age": "41", "age": "42"}',
            "row 1: the body is not JSON: the key 'age' appears twice in one object (JSON would keep only the last)",
        ),
    ],
    ids=["NaN", "Infinity", "5001-digit-int", "1000-deep", "100000-deep", "duplicate-key"],
)
def test_json_that_python_would_read_loosely_is_refused(bank, body, message):
    with pytest.raises(RecordError) as raised:
        predict_fn(input_fn(body, JSON), bank)
    assert str(raised.value).startswith(message) and raised.value.status_code == 400


def test_line_ends_of_any_platform_split_records_alike(bank, trained):
    records = raw_records(trained["bank-marketing"].prepared)[:5]
    lines = [comma_line(bank, r) for r in records]
    expected = predict_fn(input_fn("\n".join(lines), CSV), bank)
    for ending in ("\r", "\r\n"):
        assert predict_fn(input_fn(ending.join(lines) + ending, CSV), bank) == expected


def test_a_field_longer_than_the_csv_limit_is_refused_by_row(bank, first):
    body = comma_line(bank, first) + "\n" + comma_line(bank, first | {"job": "x" * 131_073})
    with pytest.raises(RecordError, match=r"^row 2.*longer than 131072 characters"):
        predict_fn(input_fn(body, CSV), bank)
    with pytest.raises(RecordError, match=r"^row 1, column 'job': .*longer than 131072 characters"):
        predict_fn(input_fn(json.dumps(first | {"job": "x" * 131_073}), JSON), bank)


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("text/*", CSV),
        ("application/*", JSON),
        ("application/json, text/csv", JSON),
        ("text/csv, application/json", CSV),
        ("text/html, text/csv;q=0.5", CSV),
        ("application/json;q=0, text/csv", CSV),
        ("text/csv;q=0.2, application/json;q=0.9", JSON),
        ("TEXT/CSV; charset=utf-8", CSV),
        ("text/html, */*;q=0.1", JSON),
    ],
)
def test_accept_follows_sagemakers_convention(accept, media):
    assert output_fn([{"value": 1.0}], accept)[1] == media


def test_a_wildcard_accept_answers_in_sagemakers_default_accept(monkeypatch):
    monkeypatch.setenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/csv")
    assert output_fn([{"value": 1.0}], "*/*")[1] == CSV and output_fn([{"value": 1.0}], None)[1] == CSV


@pytest.mark.parametrize(
    "accept",
    ["text/html", "application/json;q=0", "image/*", "text/csv;q=0, application/json;q=0", "*/*;q=0", "text/*;q=0"],
)
def test_an_accept_with_no_supported_type_is_406(accept):
    with pytest.raises(UnsupportedMediaType) as raised:
        output_fn([{"value": 1.0}], accept)
    assert raised.value.status_code == 406 and repr(accept) in str(raised.value)


def test_a_missing_content_type_means_json(bank, first):
    assert predict_fn(input_fn(json.dumps(first), None), bank) == predict_fn(input_fn(json.dumps(first), JSON), bank)
    with pytest.raises(RecordError, match=r"^row 1: the body is not JSON"):
        input_fn(comma_line(bank, first), None)


def test_a_charset_other_than_utf8_is_415_and_a_byte_order_mark_is_read_past(bank, first):
    with pytest.raises(UnsupportedMediaType, match="charset 'latin-1'") as raised:
        input_fn(comma_line(bank, first).encode("latin-1"), "text/csv; charset=latin-1")
    assert raised.value.status_code == 415
    line = comma_line(bank, first)
    assert predict_fn(input_fn("\ufeff" + line, CSV), bank) == predict_fn(input_fn(line, CSV), bank)


@pytest.mark.parametrize("name", DATASETS)
def test_lines_of_the_raw_file_as_they_are_predict_as_their_records(models, trained, name):
    """Every line of the shipped file, in its own delimiter, quotes and target kept, gives the
    prediction its record gives as JSON (lines with an unparseable number left out)."""
    data, model = trained[name].prepared, models[name]
    pairs = [(line, record) for line, record in zip(raw_lines(data), raw_records(data), strict=True) if "#" not in line]
    lines, records = zip(*pairs, strict=True)
    from_lines = predict_fn(input_fn("\n".join(lines) + "\n", CSV), model)
    assert len(from_lines) == len(lines)
    assert from_lines == predict_fn(input_fn(json.dumps(list(records)), JSON), model)


def test_the_quoted_full_bank_file_predicts_as_its_records(bank):
    text = (ROOT.parent / "shared" / "data" / "bank-marketing" / "bank-additional-full.csv").read_text()
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    header, body = rows[0], rows[1:301]
    lines = text.splitlines()[:301]
    assert lines[1].startswith('56;"housemaid"')
    records = [dict(zip(header, row, strict=True)) for row in body]
    assert predict_fn(input_fn("\n".join(lines), CSV), bank) == predict_fn(records, bank)


def test_a_record_is_read_with_or_without_its_target_in_either_delimiter(bank, first):
    values = [first[c] for c in bank.encoder.input_columns]
    expected = predict_fn(input_fn(",".join(values), CSV), bank)
    for line in (";".join(values), ";".join([*values, first["y"]]), ",".join([*values, first["y"]])):
        assert predict_fn(input_fn(line, CSV), bank) == expected


def test_a_header_line_is_recognised_whatever_its_case_and_in_its_own_order(bank, trained):
    data = trained["bank-marketing"].prepared
    header, *lines = data.raw.read_text().splitlines()[:3]
    expected = predict_fn(input_fn("\n".join(lines), CSV), bank)
    assert predict_fn(input_fn("\n".join([header.upper(), *lines]), CSV), bank) == expected
    reversed_lines = [";".join(reversed(line.split(";"))) for line in [header.title(), *lines]]
    assert predict_fn(input_fn("\n".join(reversed_lines), CSV), bank) == expected


def test_a_field_count_that_fits_no_layout_names_the_layouts(bank):
    with pytest.raises(RecordError) as raised:
        predict_fn(input_fn("1,2,3", CSV), bank)
    message = str(raised.value)
    assert message.startswith("row 1: has 3 values; expected 20") and "21" in message and "'y'" in message


def _model_copy(trained, name, tmp_path, change) -> object:
    """The trained model of ``name`` with its schema.json changed by ``change(schema)``."""
    import shutil

    folder = tmp_path / name
    shutil.copytree(trained[name].out / "model", folder)
    schema = json.loads((folder / "schema.json").read_text())
    change(schema)
    (folder / "schema.json").write_text(json.dumps(schema))
    return model_fn(str(folder))


def test_a_schema_that_names_the_raw_layout_takes_its_dropped_columns_and_delimiter(trained, tmp_path, first):
    def layout(schema):
        schema["raw"] = {"delimiter": "|", "columns": ["call_id", *schema["input_columns"], "y"]}

    model = _model_copy(trained, "bank-marketing", tmp_path, layout)
    values = [first[c] for c in model.encoder.input_columns]
    expected = predict_fn(input_fn(",".join(values), CSV), model)
    for line in ("|".join(["c-1", *values, "yes"]), "|".join(values), ",".join(values), "|".join(["c-1", *values])):
        assert predict_fn(input_fn(line, CSV), model) == expected
    with pytest.raises(RecordError, match=r"^row 1: has 1 value;"):  # ";" is not this dataset's delimiter
        predict_fn(input_fn(";".join(values), CSV), model)
    with pytest.raises(RecordError, match=r"^row 1: has 21 values, which reads two ways"):
        predict_fn(input_fn("|".join([*values, "yes"]), CSV), model)
    record = dict(zip(model.encoder.input_columns, values, strict=True))
    assert predict_fn([record | {"call_id": "c-1", "y": "no"}], model) == expected


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("car-evaluation", {"buying": None, "buyng": "low"}, "row 1: unknown key 'buyng' (did you mean 'buying'?)"),
        ("bank-marketing", {"age": None, "Age": "41"}, "row 1: unknown key 'Age' (did you mean 'age'?)"),
        ("bank-marketing", {"foo": "1"}, "row 1: unknown key 'foo'"),
    ],
)
def test_an_unknown_json_key_is_refused_by_name(models, trained, name, change, message):
    record = raw_records(trained[name].prepared)[0]
    record = {k: v for k, v in (record | change).items() if v is not None}
    with pytest.raises(RecordError) as raised:
        predict_fn(input_fn(json.dumps({"instances": [record]}), JSON), models[name])
    assert str(raised.value).startswith(message)


def test_a_missing_json_key_is_refused_but_null_is_imputed(bank, first):
    with pytest.raises(RecordError, match=r"^row 1: missing 'job'.*null"):
        predict_fn(input_fn(json.dumps({k: v for k, v in first.items() if k != "job"}), JSON), bank)
    with pytest.raises(RecordError, match=r"^row 1: missing 'age', 'job', "):
        predict_fn(input_fn("{}", JSON), bank)
    with_null = predict_fn(input_fn(json.dumps(first | {"job": None}), JSON), bank)
    assert with_null == predict_fn(input_fn(comma_line(bank, first | {"job": ""}), CSV), bank)


@pytest.mark.parametrize(("value", "kind"), [(True, "true"), ([1, 2], "a list"), ({"a": 1}, "an object")])
def test_a_json_value_that_no_raw_file_holds_is_refused(bank, first, value, kind):
    with pytest.raises(RecordError, match=f"^row 1, column 'job': {kind} is not a value"):
        predict_fn(input_fn(json.dumps(first | {"job": value}), JSON), bank)


def test_an_ordinal_value_outside_its_order_is_refused_not_imputed(models):
    car = models["car-evaluation"]
    record = {"buying": "cheap", "maint": "low", "doors": "4", "persons": "4", "lug_boot": "big", "safety": "high"}
    with pytest.raises(RecordError, match=r"^row 1, column 'buying': 'cheap' is not one of low, med, high, vhigh"):
        predict_fn([record], car)
    assert predict_fn([record | {"buying": " Very High "}], car) == predict_fn([record | {"buying": "vhigh"}], car)


@pytest.mark.parametrize("text", ["1_000", "inf", "Infinity", "١٢", "1e999", "0x1A", "1,5"])
def test_the_encoder_reads_numbers_as_the_etl_does(bank, first, text):
    from dataset_spec import parse_number

    assert parse_number(text) is None
    with pytest.raises(RecordError, match=f"^row 3, column 'age': {re.escape(repr(text))} is not a number"):
        bank.encoder.encode(first | {"age": text}, row=3)
    lenient = SchemaEncoder(bank.encoder.schema, invalid_numbers="impute")  # as the ETL job imputes it
    median = next(f["impute"] for f in bank.encoder.features if f["column"] == "age")
    assert lenient.encode(first | {"age": text})[0] == median
    assert bank.encoder.encode(first | {"age": " +41.0e0 "})[0] == 41.0


def test_the_training_code_tarball_holds_everything_inference_imports(tmp_path):
    import subprocess
    import sys
    import tarfile

    from constructs.local_bundling import tarball_of

    from stacks.training import SHARED_MODULES, SOURCE_FILES, TRAINING_CODE

    tarball_of(TRAINING_CODE, SOURCE_FILES, "sourcedir.tar.gz", shared=SHARED_MODULES)(tmp_path)
    with tarfile.open(tmp_path / "sourcedir.tar.gz") as archive:
        assert sorted(archive.getnames()) == sorted([*SOURCE_FILES, "dataset_spec.py"])
        archive.extractall(tmp_path / "code", filter="data")
    probe = "import sys; sys.path.insert(0, '.'); import inference, schema_encoder; print(schema_encoder.parse_number)"
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe], cwd=tmp_path / "code", capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "parse_number" in result.stdout


def test_the_models_code_folder_imports_on_its_own(trained):
    import subprocess
    import sys

    probe = "import sys; sys.path.insert(0, '.'); import inference"
    code = trained["bank-marketing"].out / "model" / "code"
    # -B: no __pycache__ left in the session's trained model (test_training_local lists its code/).
    result = subprocess.run(
        [sys.executable, "-I", "-B", "-c", probe], cwd=code, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_labels_are_answered_as_the_raw_data_writes_them(trained, tmp_path):
    def labelled(schema):
        schema["target"]["labels"] = ["NO", "AB"]

    def unlabelled(schema):
        schema["target"].pop("labels", None)

    spine = _model_copy(trained, "vertebral-column", tmp_path, labelled)
    lines = raw_lines(trained["vertebral-column"].prepared)
    body = "\n".join(lines[:20] + lines[-20:])
    answers = predict_fn(input_fn(body, CSV), spine)
    # The same model answering with its classes (the ETL job now writes labels into schema.json).
    plain = predict_fn(input_fn(body, CSV), _model_copy(trained, "vertebral-column", tmp_path / "plain", unlabelled))
    assert {a["label"] for a in answers} == {"AB", "NO"}
    upper = {"no": "NO", "ab": "AB"}
    assert [a["label"] for a in answers] == [upper[p["label"]] for p in plain]

    def car_labels(schema):
        schema["target"]["labels"] = ["Unacc", "Acc", "Good", "VGood"]

    car = _model_copy(trained, "car-evaluation", tmp_path, car_labels)
    values = ["low", "low", "4", "4", "big", "high"]
    [prediction] = predict_fn([dict(zip(car.encoder.input_columns, values, strict=True))], car)
    assert list(prediction["probabilities"]) == ["Unacc", "Acc", "Good", "VGood"]
    assert prediction["label"] in prediction["probabilities"]


def test_a_schema_without_labels_answers_with_its_classes(trained, tmp_path):
    def unlabelled(schema):
        schema["target"].pop("labels", None)

    spine = _model_copy(trained, "vertebral-column", tmp_path, unlabelled)
    lines = raw_lines(trained["vertebral-column"].prepared)  # the raw file lists every AB record first
    answers = predict_fn(input_fn("\n".join(lines[:20] + lines[-20:]), CSV), spine)
    assert {a["label"] for a in answers} == {"ab", "no"}


def test_labels_that_do_not_match_the_classes_are_refused_at_load(trained, tmp_path):
    def broken(schema):
        schema["target"]["labels"] = ["AB"]

    with pytest.raises(ValueError, match=r"schema\.json: target\.labels has 1 entries; target\.classes has 2"):
        _model_copy(trained, "vertebral-column", tmp_path, broken)


def test_a_blank_line_in_a_batch_keeps_its_place_with_an_empty_answer(bank, trained):
    records = raw_records(trained["bank-marketing"].prepared)[:2]
    one, two = (comma_line(bank, r) for r in records)
    predictions = predict_fn(input_fn(f"{one}\n\n{two}\n  \n", CSV), bank)
    assert len(predictions) == 4 and predictions[1] is None and predictions[3] is None
    assert [predictions[0], predictions[2]] == predict_fn(input_fn(f"{one}\n{two}", CSV), bank)
    text, _ = output_fn(predictions, CSV)
    assert text.split("\n") == [text.split("\n")[0], "", text.split("\n")[2], "", ""]
    assert json.loads(output_fn(predictions, JSON)[0])["predictions"][1] is None


def test_a_body_with_no_line_or_only_a_header_holds_no_record(bank, trained):
    header = trained["bank-marketing"].prepared.raw.read_text().splitlines()[0]
    for body in ("", header, header + "\n"):
        with pytest.raises(RecordError, match=r"^row 1: the request holds no record"):
            predict_fn(input_fn(body, CSV), bank)


def test_request_errors_are_what_sagemakers_inference_toolkit_answers_with_their_status(monkeypatch):
    """In the XGBoost container only a BaseInferenceToolkitError keeps its status (any other
    exception is a 500): with the toolkit importable, the module's refusals are such errors."""
    import importlib.util
    import sys
    import types

    class BaseInferenceToolkitError(Exception):
        def __init__(self, status_code, message, phrase):
            self.status_code, self.message, self.phrase = status_code, message, phrase
            super().__init__(status_code, message, phrase)

    errors = types.ModuleType("sagemaker_inference.errors")
    errors.BaseInferenceToolkitError = BaseInferenceToolkitError
    monkeypatch.setitem(sys.modules, "sagemaker_inference", types.ModuleType("sagemaker_inference"))
    monkeypatch.setitem(sys.modules, "sagemaker_inference.errors", errors)
    spec = importlib.util.spec_from_file_location("inference_in_container", ROOT / "training_jobs" / "inference.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # as an import registers it (dataclasses look it up)
    spec.loader.exec_module(module)
    with pytest.raises(BaseInferenceToolkitError) as raised:
        module.input_fn("{broken", JSON)
    error = raised.value
    assert error.status_code == 400 and error.phrase == "Bad Request"
    assert json.loads(error.message) == {"error": str(error)} and str(error).startswith("row 1: the body is not JSON")
    with pytest.raises(BaseInferenceToolkitError) as raised:
        module.output_fn([{"value": 1.0}], "text/html")
    assert raised.value.status_code == 406


def test_a_body_that_is_not_utf8_is_refused_naming_the_line_and_the_byte():
    body = b"41;admin.\n42;services\n43;\xe9tudiant\n"
    with pytest.raises(RecordError) as raised:
        input_fn(body, CSV)
    assert str(raised.value) == "row 3: the body is not utf-8: byte 0xe9 at position 25"
    assert raised.value.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        "[" * 33 + "]" * 33,
        '[{"a": ' * 16 + "[1]" + "}]" * 16,
        "[" + "[], " * 8 + "[" * 32 + "]" * 32 + "]",
    ],
    ids=["33-arrays", "33-arrays-and-objects", "33-deep-after-closed-ones"],
)
def test_a_json_body_nested_one_level_too_deep_is_refused(body):
    with pytest.raises(RecordError, match=r"^row 1: the body nests deeper than 32 levels of arrays and objects"):
        input_fn(body, JSON)


def test_a_json_body_of_many_records_or_nested_32_levels_is_read():
    records = [{"age": str(age)} for age in range(40)]
    assert input_fn(json.dumps({"instances": records}), JSON) == records
    assert input_fn("[" * 32 + "]" * 32, JSON) == json.loads("[" * 32 + "]" * 32)


def test_a_key_beside_instances_is_refused_by_name():
    with pytest.raises(RecordError, match=r"^row 1: unknown key 'extra' beside 'instances'"):
        input_fn('{"instances": [{"age": "41"}], "extra": 1}', JSON)


def test_labels_that_name_a_class_twice_are_refused_at_load(trained, tmp_path):
    def twice(schema):
        schema["target"]["labels"] = ["AB", "AB"]

    with pytest.raises(ValueError, match=r"schema\.json: target\.labels \['AB', 'AB'\] name a class twice"):
        _model_copy(trained, "vertebral-column", tmp_path, twice)


def test_an_outlier_is_served_clipped_to_the_training_whisker_as_the_model_was_trained(models, trained):
    """The vertebral column spec clips degree_spondylolisthesis: a value beyond the whisker is
    answered as the whisker is, however far beyond, and a value inside it as itself."""
    spine = models["vertebral-column"]
    low, high = next(f["clip"] for f in spine.encoder.features if f["column"] == "degree_spondylolisthesis")
    record = raw_records(trained["vertebral-column"].prepared)[0]

    def served(value):
        return predict_fn([record | {"degree_spondylolisthesis": value}], spine)

    assert served("1e6") == served(str(high + 300)) == served(str(high))
    assert served("-1e6") == served(str(low - 300)) == served(str(low))
    assert served(str(high)) != served(str(low))
