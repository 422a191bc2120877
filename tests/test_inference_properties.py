"""Property-based tests of inference.py on the real models: whatever a client sends, the answer
is predictions or a 4xx with a message; and a record predicts the same as CSV and as JSON.

The answers are what SageMaker's XGBoost container makes of the module (``answer`` in
test_inference.py): the functions' output, or the ``status_code`` of what they raise. Runs are
derandomized (the same examples every run) and bounded to stay within a few seconds.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_inference import DATASETS, answer, models  # noqa: F401  (models is a fixture)

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Text a CSV line can carry unquoted and unchanged: no line break, no delimiter, no quote.
PLAIN = st.text(
    st.characters(codec="utf-8", exclude_characters=',;|\t "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029'), max_size=12
)
NUMBERS = st.one_of(  # numbers as raw files write them
    st.floats(-1e6, 1e6, allow_nan=False).map(repr),
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from([".5", "5.", "+3", "-0", "1E3", "2.5e-3"]),
)
ODD_NUMBERS = st.one_of(  # text that is not a number the model takes, or barely is
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: f"{x:.6e}"),
    st.sampled_from(["inf", "-Infinity", "1e999", "1_000", "0x10", "١٢", "1e300", "3.4e38", "-3.5e38"]),
)
MISSING = st.sampled_from(["", "?", "NA", " nan ", "null"])
CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            *(None, "", "text/csv", "application/json", "TEXT/CSV; charset=utf-8", "application/json; charset=latin-1"),
            *("text/plain", "*/*", "application/x-www-form-urlencoded", ";", "text/csv;;", "application/json; q"),
        ]
    ),
    st.text(max_size=20),
)
ACCEPTS = st.one_of(
    st.sampled_from(
        [
            *(None, "", "*/*", "text/*", "application/*", "application/json, text/csv", "text/csv;q=0.5, */*;q=0.1"),
            *("text/html", "image/*", "application/json;q=0", "text/csv;q=abc", ",", "text/csv;q=2"),
        ]
    ),
    st.text(max_size=20),
)


def values_of(encoder, column: str) -> st.SearchStrategy[str]:
    """Raw values for one column a model takes: seen in training (any case, padded), an alias,
    a marker for missing, or a number."""
    feature = next(f for f in encoder.features if f["column"] == column)
    if feature["kind"] == "numeric":
        return st.one_of(NUMBERS, MISSING)
    known = feature.get("order") or feature.get("categories")
    variants = st.sampled_from(known).flatmap(lambda v: st.sampled_from([v, v.upper(), f" {v}"]))
    return st.one_of(variants, st.sampled_from(sorted(feature.get("aliases", {})) or known), MISSING)


def records_of(encoder) -> st.SearchStrategy[dict[str, str]]:
    """Records a model takes, or half the time one with a single odd value (a number out of range,
    an unknown category, any text): a prediction or a refusal naming that column."""
    columns = encoder.input_columns
    valid = st.fixed_dictionaries({c: values_of(encoder, c) for c in columns})
    odd = st.one_of(ODD_NUMBERS, PLAIN)
    return st.one_of(
        valid,
        st.tuples(valid, st.sampled_from(columns), odd).map(lambda drawn: drawn[0] | {drawn[1]: drawn[2]}),
    )


def csv_line(values: list[str], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(values)
    return out.getvalue()


@pytest.mark.parametrize("name", DATASETS)
def test_any_request_is_answered_with_predictions_or_a_4xx_with_a_message(models, name):  # noqa: F811
    model = models[name]
    record = records_of(model.encoder)
    json_bodies = st.one_of(
        st.lists(record, min_size=1, max_size=3).map(json.dumps),
        record.map(lambda r: json.dumps({"instances": [r]})),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
            max_leaves=8,
        ).map(lambda v: json.dumps(v)),
        st.dictionaries(st.sampled_from([*model.encoder.input_columns, "foo", "Age"]), PLAIN).map(json.dumps),
    )
    csv_bodies = st.lists(
        st.one_of(
            record.map(lambda r: csv_line(list(r.values()), ",")),
            st.lists(PLAIN, max_size=25).map(lambda vs: ",".join(vs)),
            st.just(""),
        ),
        min_size=1,
        max_size=4,
    ).flatmap(lambda lines: st.sampled_from(["\n", "\r\n", "\r"]).map(lambda end: end.join(lines)))
    bodies = st.one_of(json_bodies, csv_bodies, st.text(max_size=40), st.binary(max_size=40))

    @SETTINGS
    @given(body=bodies, content_type=CONTENT_TYPES, accept=ACCEPTS)
    def check(body, content_type, accept):
        status, text = answer(model, body, content_type, accept)
        assert status == 200 or (400 <= status < 500 and text.strip()), (status, text)

    check()


@pytest.mark.parametrize("name", DATASETS)
def test_a_record_predicts_the_same_as_csv_and_as_json(models, name):  # noqa: F811
    model = models[name]
    columns = model.encoder.input_columns

    @SETTINGS
    @given(
        record=records_of(model.encoder),
        delimiter=st.sampled_from(model.encoder.delimiters),  # the dataset's own and commas
        numbers_as_json_numbers=st.booleans(),
    )
    def check(record, delimiter, numbers_as_json_numbers):
        line = csv_line([record[c] for c in columns], delimiter)
        body = json.dumps([record])
        if numbers_as_json_numbers:  # a number the client writes as a JSON number, not a string
            for column, value in record.items():
                if re.fullmatch("0|[1-9][0-9]{0,15}", value):
                    body = body.replace(f'"{column}": "{value}"', f'"{column}": {value}')
        assert answer(model, line, "text/csv", "application/json") == answer(model, body, "application/json")

    check()
