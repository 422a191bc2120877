"""serve_local.py on 127.0.0.1 with a model trained from the real bank marketing data."""

from __future__ import annotations

import csv
import http.client
import io
import json
import threading

import pytest
from inference import input_fn, model_fn, predict_fn
from serve_local import MAX_BODY, make_server

from tests.conftest import raw_records


@pytest.fixture(scope="module")
def served(trained):
    model_dir = trained["bank-marketing"].out / "model"
    server = make_server(model_dir, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, model_fn(str(model_dir)), trained["bank-marketing"].prepared
    server.shutdown()
    server.server_close()


def call(server, method: str, path: str, body: str | bytes = b"", **headers) -> tuple[int, str, str]:
    client = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    client.request(method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})
    response = client.getresponse()
    text = response.read().decode()
    client.close()
    return response.status, response.getheader("Content-Type") or "", text


def csv_body(model, records) -> str:
    return "\n".join(",".join(r[c] for c in model.encoder.input_columns) for r in records)


def valid_records(model, prepared, count: int) -> list[dict]:
    records = []
    for record in raw_records(prepared):
        if "#" not in "".join(record.values()):
            records.append(record)
        if len(records) == count:
            return records
    return records


def test_ping_answers_once_the_model_is_loaded(served):
    server, _, _ = served
    assert call(server, "GET", "/ping")[0] == 200


def test_one_csv_row_gets_the_inference_modules_prediction(served):
    server, model, prepared = served
    [record] = valid_records(model, prepared, 1)
    body = csv_body(model, [record])
    status, media, text = call(server, "POST", "/invocations", body, Content_Type="text/csv", Accept="text/csv")
    assert status == 200 and media == "text/csv"
    [expected] = predict_fn(input_fn(body, "text/csv", model), model)
    assert next(csv.reader(io.StringIO(text))) == [f"{expected['probability']:.6f}", expected["label"]]


def test_a_json_batch_gets_one_prediction_per_record_in_json(served):
    server, model, prepared = served
    records = valid_records(model, prepared, 250)
    status, media, text = call(
        server,
        "POST",
        "/invocations",
        json.dumps({"instances": records}),
        Content_Type="application/json",
        Accept="application/json",
    )
    assert status == 200 and media == "application/json"
    predictions = json.loads(text)["predictions"]
    assert predictions == predict_fn(records, model)


def test_a_csv_batch_answers_in_json_when_accept_says_so(served):
    server, model, prepared = served
    records = valid_records(model, prepared, 100)
    status, media, text = call(
        server, "POST", "/invocations", csv_body(model, records), Content_Type="text/csv", Accept="application/json"
    )
    assert status == 200 and media == "application/json" and len(json.loads(text)["predictions"]) == 100


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (
            '[{"age": "41"}, {"age": "forty"}]',
            {"Content_Type": "application/json"},
            400,
            "row 2, column 'age': 'forty' is not a number",
        ),
        ("41,admin.", {"Content_Type": "text/csv"}, 400, "row 1: has 2 values; expected 20"),
        ("{broken", {"Content_Type": "application/json"}, 400, "row 1: the body is not JSON"),
        ("x", {"Content_Type": "application/x-parquet"}, 415, "content type 'application/x-parquet' is not supported"),
        (
            '{"age": "41"}',
            {"Content_Type": "application/json", "Accept": "text/html"},
            406,
            "accept 'text/html' is not supported",
        ),
        (b"\xff\xfe", {"Content_Type": "text/csv"}, 400, "utf-8"),
    ],
)
def test_bad_payloads_get_a_4xx_that_names_the_problem_and_the_server_keeps_serving(
    served, body, headers, status, message
):
    server, _, _ = served
    code, media, text = call(server, "POST", "/invocations", body, **headers)
    assert code == status and media == "application/json"
    assert message in json.loads(text)["error"]
    assert call(server, "GET", "/ping")[0] == 200


def test_an_oversized_body_is_refused_before_it_is_parsed(served):
    server, _, _ = served
    code, _, text = call(server, "POST", "/invocations", b"1" * (MAX_BODY + 1), Content_Type="text/csv")
    assert code == 413 and "at most" in json.loads(text)["error"]


def test_unknown_paths_are_404(served):
    server, _, _ = served
    assert call(server, "GET", "/health")[0] == 404
    assert call(server, "POST", "/predict", "{}")[0] == 404
