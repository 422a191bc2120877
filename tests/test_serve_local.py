"""serve_local.py on 127.0.0.1 with a model trained from the real bank marketing data."""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import threading

import pytest
from inference import input_fn, model_fn, predict_fn
from serve_local import MAX_BODY, make_server

from tests.conftest import ROOT, raw_records
from tests.test_inference import bank_json


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
    [expected] = predict_fn(input_fn(body, "text/csv"), model)
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
            bank_json("41", "forty"),
            {"Content_Type": "application/json"},
            400,
            "row 2, column 'age': 'forty' is not a number",
        ),
        ("41,admin.", {"Content_Type": "text/csv"}, 400, "row 1: has 2 values; expected 20"),
        ("{broken", {"Content_Type": "application/json"}, 400, "row 1: the body is not JSON"),
        ("x", {"Content_Type": "application/x-parquet"}, 415, "content type 'application/x-parquet' is not supported"),
        (  # a valid record: as in the container, output_fn (which reads Accept) runs after predict_fn
            bank_json("41"),
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


# --- issue 12: no request ends without an answer, every refusal a JSON 4xx, the server stays up


def raw_exchange(server, data: bytes) -> tuple[int, dict[str, str], str]:
    """Send ``data`` as it is (a request http.client would not write) and read one response."""
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, dict(response.getheaders()), response.read().decode()


def first_line(model, prepared) -> str:
    [record] = valid_records(model, prepared, 1)
    return csv_body(model, [record])


@pytest.mark.parametrize("text", ["inf", "-inf", "Infinity", "1e999", "1e300"])
def test_a_non_finite_number_is_a_400_naming_row_and_column_not_a_closed_connection(served, text):
    server, model, prepared = served
    [record] = valid_records(model, prepared, 1)
    body = csv_body(model, [record, record | {"age": text}])
    code, media, answer = call(server, "POST", "/invocations", body, Content_Type="text/csv")
    assert code == 400 and media == "application/json"
    assert json.loads(answer)["error"].startswith(f"row 2, column 'age': {text!r}")
    assert call(server, "GET", "/ping")[0] == 200


@pytest.mark.parametrize(
    ("head", "status", "message"),
    [
        (b"POST /invocations HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400, "Content-Length 'abc' is not"),
        (b"POST /invocations HTTP/1.1\r\nContent-Length: -1\r\n\r\nx", 400, "Content-Length '-1' is not"),
        (b"POST /invocations HTTP/1.1\r\nContent-Length: \xd9\xa1\r\n\r\nx", 400, "is not a number of bytes"),
        (b"POST /invocations HTTP/1.1\r\nContent-Length: 10000000000\r\n\r\n", 413, "at most 6291456"),
        (b"POST /invocations HTTP/1.1\r\nContent-Length: 9" + b"9" * 5000 + b"\r\n\r\n", 413, "at most 6291456"),
        (b"POST /invocations HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, "Content-Length"),
        (
            b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            411,
            "Content-Length",
        ),
        (b"PUT /invocations HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405, "PUT"),
        (b"DELETE /ping HTTP/1.1\r\n\r\n", 405, "DELETE"),
        (b"NONSENSE\r\n\r\n", 400, "Bad request"),
        (b"GET /ping HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n", 431, "Line too long"),
    ],
    ids=[
        "length-abc",
        "length-negative",
        "length-arabic-digit",
        "length-10GB",
        "length-5001-digits",
        "length-twice",
        "chunked",
        "PUT",
        "DELETE",
        "bad-request-line",
        "header-too-long",
    ],
)
def test_a_malformed_request_gets_a_json_4xx_and_the_server_keeps_serving(served, head, status, message):
    server, _, _ = served
    code, headers, text = raw_exchange(server, head)
    assert code == status and headers["Content-Type"] == "application/json"
    assert message in json.loads(text)["error"]
    if status == 405:
        assert headers["Allow"] == "GET, POST"
    assert call(server, "GET", "/ping")[0] == 200


def test_an_oversized_body_announced_with_expect_100_continue_is_refused_before_it_is_sent(served):
    server, _, _ = served
    head = b"POST /invocations HTTP/1.1\r\nContent-Length: 7000000\r\nExpect: 100-continue\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5) as sock:
        sock.sendall(head)
        first = sock.recv(64)
    assert first.startswith(b"HTTP/1.1 413 ")  # no "100 Continue": the body is never asked for


def test_a_body_cut_short_is_a_408_once_the_read_times_out(trained):
    server = make_server(trained["bank-marketing"].out / "model", "127.0.0.1", 0, read_timeout=0.3)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code, _, text = raw_exchange(server, b"POST /invocations HTTP/1.1\r\nContent-Length: 100\r\n\r\n{}")
        assert code == 408 and "100 bytes" in json.loads(text)["error"]
    finally:
        server.shutdown()
        server.server_close()


def test_a_failure_of_the_model_code_is_a_json_500_and_the_server_keeps_serving(trained):
    import inference

    class Broken:
        JSON, model_fn, input_fn, output_fn = (
            inference.JSON,
            inference.model_fn,
            inference.input_fn,
            inference.output_fn,
        )

        @staticmethod
        def predict_fn(records, model):
            raise RuntimeError("the booster is gone")

    server = make_server(trained["bank-marketing"].out / "model", "127.0.0.1", 0, inference=Broken)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code, media, text = call(server, "POST", "/invocations", "{}", Content_Type="application/json")
        assert code == 500 and media == "application/json"
        assert json.loads(text)["error"] == "the model's code failed: RuntimeError: the booster is gone"
        assert call(server, "GET", "/ping")[0] == 200
    finally:
        server.shutdown()
        server.server_close()


def test_a_post_to_an_unknown_path_leaves_the_connection_usable(served):
    server, _, _ = served
    client = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    try:
        client.request("POST", "/predict", body=b'{"a": 1}', headers={"Content-Type": "application/json"})
        first = client.getresponse()
        first.read()
        client.request("GET", "/ping")
        assert first.status == 404 and client.getresponse().status == 200
    finally:
        client.close()


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        ("*/*", "application/json"),
        (None, "application/json"),
        ("text/*", "text/csv"),
        ("text/html, text/csv", "text/csv"),
    ],
)
def test_curls_accept_and_other_wildcards_or_lists_are_answered(served, accept, media):
    server, model, prepared = served
    headers = {"Content_Type": "text/csv"} | ({"Accept": accept} if accept is not None else {})
    code, answered, _ = call(server, "POST", "/invocations", first_line(model, prepared), **headers)
    assert (code, answered) == (200, media)


def test_a_request_without_content_type_is_read_as_json(served):
    server, model, prepared = served
    [record] = valid_records(model, prepared, 1)
    code, _, text = call(server, "POST", "/invocations", json.dumps(record))
    assert code == 200 and json.loads(text)["predictions"] == predict_fn([record], model)


def test_a_raw_file_as_batch_transform_sends_it_gets_one_answer_line_per_line(trained):
    """The vertebral .dat file as it is (space-delimited, target kept), with a blank line, as a
    SplitType Line mini-batch: one output line per input line, the blank one empty."""
    data = trained["vertebral-column"]
    server = make_server(data.out / "model", "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        lines = data.prepared.raw.read_text().splitlines()
        body = "\n".join([*lines[:100], "", *lines[100:]]) + "\n"
        code, media, text = call(server, "POST", "/invocations", body, Content_Type="text/csv", Accept="text/csv")
        answers = text.split("\n")[:-1]
        assert code == 200 and media == "text/csv" and len(answers) == len(lines) + 1
        assert answers[100] == "" and all(a.split(",")[1] in ("ab", "no", "AB", "NO") for a in answers if a)
    finally:
        server.shutdown()
        server.server_close()


# --- the command line: one line on stderr and a non-zero exit, never a traceback


def test_a_missing_model_dir_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "training_jobs" / "serve_local.py"), "--model-dir", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: --model-dir {tmp_path / 'nowhere'} does not exist"]


def test_a_folder_that_is_not_a_model_is_one_line_and_exit_2(tmp_path, capsys):
    import serve_local

    (tmp_path / "schema.json").write_text("{}")
    assert serve_local.main(["--model-dir", str(tmp_path)]) == 2
    message = capsys.readouterr().err.strip().splitlines()
    assert message == [f"error: {tmp_path} is not a model: no xgboost-model.json, model-info.json"]


def test_a_model_whose_files_do_not_load_is_one_line_and_exit_2(trained, tmp_path, capsys):
    import shutil

    import serve_local

    shutil.copytree(trained["bank-marketing"].out / "model", tmp_path / "model")
    (tmp_path / "model" / "schema.json").write_text('{"format": "ml-platform/prepared-csv"}')
    assert serve_local.main(["--model-dir", str(tmp_path / "model")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'model'} is not a model this server can load: ")


def test_a_port_in_use_is_one_line_and_exit_1(trained, capsys):
    import serve_local

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = serve_local.main(["--model-dir", str(trained["bank-marketing"].out / "model"), "--port", str(port)])
    [line] = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and line.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")


# --- the twin's endpoint: the model's own code/ and nothing of the repository, as in the container


def test_the_twin_loads_a_models_code_with_only_what_its_code_folder_holds(trained, tmp_path):
    import shutil

    from local.hosting import Hosting, HostingError

    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.2-0"
    model = tmp_path / "model"
    shutil.copytree(trained["bank-marketing"].out / "model", model)
    for name in ("inference.py", "schema_encoder.py"):
        shutil.copyfile(ROOT / "training_jobs" / name, model / "code" / name)
    (model / "code" / "dataset_spec.py").unlink(missing_ok=True)
    hosting = Hosting(twin=None)
    with pytest.raises(HostingError, match="No module named 'dataset_spec'"):
        hosting._inference("endpoint-x", image, {"SAGEMAKER_PROGRAM": "inference.py"}, model)
    shutil.copyfile(ROOT / "etl" / "dataset_spec.py", model / "code" / "dataset_spec.py")
    module = hosting._inference("endpoint-x", image, {"SAGEMAKER_PROGRAM": "inference.py"}, model)
    assert module.model_fn(str(model)).encoder.input_columns[0] == "age"


def test_the_twins_endpoint_reports_the_content_type_the_container_answered_in(served, tmp_path):
    from local.hosting import Container

    server, model, prepared = served
    container = Container("endpoint-x", "role", "image", tmp_path, server, threading.Thread())
    status, media, _ = container.exchange(first_line(model, prepared), "text/csv", "*/*")
    assert (status, media) == (200, "application/json")
