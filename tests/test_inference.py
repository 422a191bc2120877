"""inference.py: raw records in, the trainer's predictions out; bad input named by row and column."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from inference import CSV, JSON, UnsupportedMediaType, input_fn, model_fn, output_fn, predict_fn
from schema_encoder import RecordError, SchemaEncoder

from tests.conftest import raw_records


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
    predictions = predict_fn(input_fn(body, CSV, bank), bank)
    for record, prediction in zip(records, predictions, strict=True):
        assert prediction["probability"] == pytest.approx(float(by_row[_key(bank.encoder.encode(record))]), abs=1e-7)
        assert prediction["label"] == ("yes" if prediction["probability"] >= info["threshold"] else "no")


def test_json_requests_in_every_accepted_shape(bank, trained):
    record = raw_records(trained["bank-marketing"].prepared)[0]
    single = predict_fn(input_fn(json.dumps(record), JSON, bank), bank)
    listed = predict_fn(input_fn(json.dumps([record, record]), JSON, bank), bank)
    wrapped = predict_fn(input_fn(json.dumps({"instances": [record]}), JSON, bank), bank)
    assert single == wrapped == listed[:1] and len(listed) == 2


def test_csv_header_is_skipped_and_outputs_follow_accept(bank, trained):
    record = raw_records(trained["bank-marketing"].prepared)[0]
    columns = bank.encoder.input_columns
    body = ",".join(columns) + "\n" + ",".join(record[c] for c in columns) + "\n"
    [prediction] = predict_fn(input_fn(body, "text/csv; charset=utf-8", bank), bank)
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
            car,
        ),
        car,
    )
    assert set(prediction["probabilities"]) == {"unacc", "acc", "good", "vgood"}
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert prediction["label"] == max(prediction["probabilities"], key=prediction["probabilities"].get)


def test_unseen_categories_and_missing_values_are_served_not_refused(bank):
    [prediction] = predict_fn([{"age": "41", "job": "astronaut", "duration": "300"}], bank)
    assert 0.0 <= prediction["probability"] <= 1.0


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ('[{"age": "41"}, {"age": "forty"}]', JSON, "row 2, column 'age': 'forty' is not a number"),
        ("41,admin.,married", CSV, "row 1: has 3 values; expected 20"),
        ("{not json", JSON, "row 1: the body is not JSON"),
        ("[]", JSON, "row 1: expected"),
        ('"just a string"', JSON, 'row 1: expected {"instances": [...]}'),
        ("[42]", JSON, "row 1: a record is an object or a list of values, not int"),
    ],
)
def test_malformed_input_names_the_row_and_column(bank, body, content_type, message):
    with pytest.raises(RecordError) as raised:
        predict_fn(input_fn(body, content_type, bank), bank)
    assert str(raised.value).startswith(message)


def test_unsupported_media_types_are_refused(bank):
    with pytest.raises(UnsupportedMediaType, match="content type 'application/x-parquet' is not supported"):
        input_fn(b"...", "application/x-parquet", bank)
    with pytest.raises(UnsupportedMediaType, match="accept 'text/html' is not supported"):
        output_fn([{"value": 1.0}], "text/html")
