"""Serve a model directory locally behind SageMaker's serving contract.

    python training_jobs/serve_local.py --model-dir DIR [--port 8080] [--host 127.0.0.1]

``GET /ping`` answers 200 once the model is loaded; ``POST /invocations`` takes raw records as
``text/csv`` or ``application/json`` and answers in the ``Accept`` type, through the same
inference.py that the XGBoost container runs (model_fn, input_fn, predict_fn, output_fn).
A malformed payload gets a 4xx whose JSON body names the problem (row and column where there is
one), and the server keeps serving: 400 bad records, 413 too large, 415 content type, 406 accept.
Bound to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # inference.py and schema_encoder.py sit beside this file
    sys.path.insert(0, str(HERE))

import inference as bundled_inference  # noqa: E402

MAX_BODY = 6 * 1024 * 1024  # SageMaker's real-time payload limit


def make_server(
    model_dir: str | Path, host: str = "127.0.0.1", port: int = 8080, inference: ModuleType | None = None
) -> ThreadingHTTPServer:
    """A server for the model in ``model_dir``. ``inference`` is the module with model_fn,
    input_fn, predict_fn and output_fn: by default the one beside this file; the local platform
    passes the one the model carries in ``code/``, as the XGBoost container loads
    ``SAGEMAKER_PROGRAM`` from ``SAGEMAKER_SUBMIT_DIRECTORY``."""
    module = inference or bundled_inference
    JSON, UnsupportedMediaType = module.JSON, module.UnsupportedMediaType
    input_fn, predict_fn, output_fn = module.input_fn, module.predict_fn, module.output_fn
    RecordError = module.RecordError
    model = module.model_fn(str(model_dir))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a client reuses its connection
        disable_nagle_algorithm = True  # headers and body leave at once, not 40 ms apart

        def log_message(self, format: str, *args) -> None:
            return  # quiet: one line per request would dominate a benchmark

        def _send(self, status: int, body: str, media: str) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: HTTPStatus, message: str) -> None:
            self._send(status, json.dumps({"error": message}), JSON)

        def do_GET(self) -> None:
            if self.path == "/ping":
                self._send(HTTPStatus.OK, "", "text/plain")
            else:
                self._error(HTTPStatus.NOT_FOUND, f"{self.path} not found; use GET /ping or POST /invocations")

        def do_POST(self) -> None:
            if self.path != "/invocations":
                self._error(HTTPStatus.NOT_FOUND, f"{self.path} not found; use POST /invocations")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.rfile.read(length)
                self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body has {length} bytes; at most {MAX_BODY}")
                return
            body = self.rfile.read(length)
            try:
                records = input_fn(body, self.headers.get("Content-Type") or JSON, model)
            except UnsupportedMediaType as error:
                self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, str(error))
                return
            except (RecordError, UnicodeDecodeError) as error:
                self._error(HTTPStatus.BAD_REQUEST, str(error))
                return
            try:
                predictions = predict_fn(records, model)
            except RecordError as error:
                self._error(HTTPStatus.BAD_REQUEST, str(error))
                return
            try:
                text, media = output_fn(predictions, self.headers.get("Accept") or JSON)
            except UnsupportedMediaType as error:
                self._error(HTTPStatus.NOT_ACCEPTABLE, str(error))
                return
            self._send(HTTPStatus.OK, text, media)

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    server = make_server(args.model_dir, args.host, args.port)
    print(f"serving {args.model_dir} on http://{args.host}:{server.server_address[1]} (GET /ping, POST /invocations)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
