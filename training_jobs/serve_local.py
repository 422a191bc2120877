"""Serve a model directory locally behind SageMaker's serving contract.

    python training_jobs/serve_local.py --model-dir DIR --port 8080 --host 127.0.0.1

``GET /ping`` answers 200 once the model is loaded; ``POST /invocations`` takes raw records as
``text/csv`` or ``application/json`` (no Content-Type: JSON) and answers in the ``Accept`` type
(``*/*``, a wildcard or a list as SageMaker reads them), through the same inference.py that the
XGBoost container runs (``model_fn``, then ``input_fn(body, content_type)``, ``predict_fn`` and
``output_fn(predictions, accept)``, as the container calls them).

Every request gets an answer, and every refusal is a JSON body ``{"error": "..."}`` naming the
problem (row and column where there is one): 400 a bad record or a malformed request, 404 an
unknown path, 405 a method the path does not take, 406 an accept, 408 a body that stops
arriving, 411 a body without Content-Length, 413 a body over SageMaker's 6 MB (refused from its
Content-Length, before it is read, and before ``100 Continue``), 415 a content type, 431 a
header too long; 500 when the model's code fails. The server keeps serving after each.
Bound to 127.0.0.1 unless told otherwise. A missing folder or one that is not a model is one
line on stderr and exit status 2; a port that cannot be listened on, one line and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
MAX_BODY = 6 * 1024 * 1024  # SageMaker's real-time payload limit
READ_TIMEOUT = 60.0  # seconds a connection may stay silent, within a body or between requests
ALLOWED = "GET, POST"  # GET /ping, POST /invocations
SHOWN = 40  # characters of a refused header value quoted back
# After refusing a body unread, what the client still sends is discarded (at most this many bytes,
# until it pauses this many seconds) before the connection closes, so that a client that sends
# its whole body before it reads (most do) gets the refusal rather than a reset connection.
LINGER_BYTES, LINGER_SECONDS = 4 * MAX_BODY, 2.0


def bundled_inference() -> ModuleType:
    """inference.py beside this file. From the repository, its dataset_spec.py is in etl/ (a
    model's code/ folder carries it beside inference.py)."""
    for folder in (HERE, HERE.parent / "etl"):
        if folder.is_dir() and str(folder) not in sys.path:
            sys.path.append(str(folder))
    import inference

    return inference


def _shown(text: str) -> str:
    return repr(text) if len(text) <= SHOWN else repr(text[:SHOWN]) + f"... ({len(text)} characters)"


class Refusal(Exception):
    """A request answered with a 4xx, and its connection closed, before its body is read whole."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def body_length(headers: Any) -> int:
    """The body's length from the request's headers, or a Refusal (before anything is read)."""
    if headers.get("Transfer-Encoding"):
        raise Refusal(
            HTTPStatus.LENGTH_REQUIRED,
            f"Transfer-Encoding {headers['Transfer-Encoding']!r} is not supported: send the body with a Content-Length",
        )
    values = {value.strip() for value in headers.get_all("Content-Length") or ()}
    if len(values) > 1:
        shown = ", ".join(map(_shown, sorted(values)))
        raise Refusal(HTTPStatus.BAD_REQUEST, f"Content-Length is given more than once ({shown})")
    if not values:
        return 0  # HTTP/1.1: no Content-Length and no Transfer-Encoding is an empty body
    [value] = values
    if not re.fullmatch(r"[0-9]+", value, flags=re.ASCII):
        raise Refusal(
            HTTPStatus.BAD_REQUEST,
            f"Content-Length {_shown(value)} is not a number of bytes (ASCII digits, 0 or more)",
        )
    digits = value.lstrip("0")
    if len(digits) > len(str(MAX_BODY)) or int(digits or "0") > MAX_BODY:
        size = f"{int(digits)} bytes" if len(digits) <= 18 else f"{len(digits)} digits of bytes"
        raise Refusal(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"the body has {size} (Content-Length); at most {MAX_BODY} (6 MB, SageMaker's limit)",
        )
    return int(digits or "0")


def make_server(
    model_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    inference: Any = None,
    read_timeout: float = READ_TIMEOUT,
) -> ThreadingHTTPServer:
    """A server for the model in ``model_dir``. ``inference`` is the module with model_fn,
    input_fn, predict_fn and output_fn: by default the one beside this file; the local platform
    passes the one the model carries in ``code/``, as the XGBoost container loads
    ``SAGEMAKER_PROGRAM`` from ``SAGEMAKER_SUBMIT_DIRECTORY``. ``read_timeout``: seconds of
    silence after which a body still arriving is a 408 (and an idle connection is closed)."""
    module = inference or bundled_inference()
    model = module.model_fn(str(model_dir))
    return ThreadingHTTPServer((host, port), handler_for(module, model, read_timeout))


def handler_for(module: Any, model: Any, read_timeout: float = READ_TIMEOUT) -> type[BaseHTTPRequestHandler]:
    """The request handler that serves ``model`` through ``module``'s functions."""
    record_error = getattr(module, "RecordError", None)
    media_error = getattr(module, "UnsupportedMediaType", None)

    def status_of(error: Exception, media_status: HTTPStatus) -> HTTPStatus | None:
        """The 4xx an error of the model's code stands for, or None (a failure of the code)."""
        status = getattr(error, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            return HTTPStatus(status)
        if media_error is not None and isinstance(error, media_error):
            return media_status
        if (record_error is not None and isinstance(error, record_error)) or isinstance(error, UnicodeDecodeError):
            return HTTPStatus.BAD_REQUEST
        return None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a client reuses its connection
        default_request_version = "HTTP/1.1"  # even a malformed request line gets a status line
        disable_nagle_algorithm = True  # headers and body leave at once, not 40 ms apart
        timeout = read_timeout

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: one line per request would dominate a benchmark

        def _send(self, status: int, body: str, media: str, **headers: str) -> None:
            data = body.encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", media)
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
            except OSError:  # the client has gone: nobody is left to answer
                self.close_connection = True

        def _error(self, status: int, message: str, *, close: bool = False, **headers: str) -> None:
            if close:
                self.close_connection = True
            self._send(status, json.dumps({"error": message}), "application/json", **headers)

        def _linger(self) -> None:
            """Close after a refusal sent before the body was read: the client reads the answer."""
            try:
                self.connection.shutdown(socket.SHUT_WR)
                self.connection.settimeout(LINGER_SECONDS)
                left = LINGER_BYTES
                while left > 0 and (chunk := self.rfile.read1(min(left, 1 << 16))):
                    left -= len(chunk)
            except OSError:  # the client has closed, or paused: enough
                pass

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """What the base class refuses (request line, headers, method): JSON, not HTML."""
            text = message or HTTPStatus(code).phrase
            self._error(code, f"{text}: {explain}" if explain else text, close=True)

        def handle_expect_100(self) -> bool:
            """``Expect: 100-continue``: a body that would be refused is refused before it is sent."""
            if self.command == "POST":
                try:
                    body_length(self.headers)
                except Refusal as refusal:
                    self._error(refusal.status, refusal.message, close=True)
                    self._linger()
                    return False
            return super().handle_expect_100()

        def _not_allowed(self) -> None:
            # A body left unread (or a HEAD, whose answer has no body) ends the connection.
            body = "Content-Length" in self.headers or "Transfer-Encoding" in self.headers
            unread = body and self.command != "POST"
            self._error(
                HTTPStatus.METHOD_NOT_ALLOWED,
                f"{self.command} is not allowed: use GET /ping or POST /invocations",
                close=unread or self.command == "HEAD",
                Allow=ALLOWED,
            )
            if unread:
                self._linger()

        do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_allowed

        def do_GET(self) -> None:
            if self.path == "/ping":
                self._send(HTTPStatus.OK, "", "text/plain")
            elif self.path == "/invocations":
                self._not_allowed()
            else:
                self._error(HTTPStatus.NOT_FOUND, f"{self.path} not found; use GET /ping or POST /invocations")

        def do_POST(self) -> None:
            try:
                length = body_length(self.headers)
            except Refusal as refusal:
                self._error(refusal.status, refusal.message, close=True)
                self._linger()
                return
            try:
                body = self._read(length)
            except Refusal as refusal:
                self._error(refusal.status, refusal.message, close=True)
                return
            if self.path == "/ping":
                self._not_allowed()
            elif self.path != "/invocations":
                self._error(HTTPStatus.NOT_FOUND, f"{self.path} not found; use POST /invocations")
            else:
                self._invoke(body)

        def _read(self, length: int) -> bytes:
            chunks, received = [], 0
            try:
                while received < length:
                    chunk = self.rfile.read1(min(length - received, 1 << 16))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    received += len(chunk)
            except TimeoutError:
                raise Refusal(
                    HTTPStatus.REQUEST_TIMEOUT,
                    f"the body stopped after {received} of its {length} bytes (Content-Length) for {read_timeout:g} s",
                ) from None
            if received < length:
                raise Refusal(
                    HTTPStatus.BAD_REQUEST,
                    f"the body ended after {received} of its {length} bytes (Content-Length)",
                )
            return b"".join(chunks)

        def _invoke(self, body: bytes) -> None:
            """The container's sequence; a 4xx from the code's own refusal, a 500 for any failure."""
            step = "input"
            try:
                records = module.input_fn(body, self.headers.get("Content-Type"))
                step = "predict"
                predictions = module.predict_fn(records, model)
                step = "output"
                text, media = module.output_fn(predictions, self.headers.get("Accept"))
            except Exception as error:  # the answer is the error's, whatever the code raised
                media_status = HTTPStatus.NOT_ACCEPTABLE if step == "output" else HTTPStatus.UNSUPPORTED_MEDIA_TYPE
                status = status_of(error, media_status)
                if status is None:
                    message = f"the model's code failed: {type(error).__name__}: {error}"
                    self._error(HTTPStatus.INTERNAL_SERVER_ERROR, message)
                else:
                    self._error(status, str(error))
                return
            self._send(HTTPStatus.OK, text, media)

    return Handler


def port_number(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,5}", text, flags=re.ASCII) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535; 0 picks a free one)")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--port", type=port_number, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    folder: Path = args.model_dir

    def fail(message: str, status: int) -> int:
        print(f"error: {message}", file=sys.stderr)
        return status

    if not folder.exists():
        return fail(f"--model-dir {folder} does not exist", 2)
    inference = bundled_inference()
    absent = [name for name in inference.MODEL_FILES if not (folder / name).is_file()]
    if absent:
        return fail(f"{folder} is not a model: no {', '.join(absent)}", 2)
    try:
        model = inference.model_fn(str(folder))
    except Exception as error:  # any file of the model that does not load
        return fail(f"{folder} is not a model this server can load: {_one_line(error)}", 2)
    try:
        server = ThreadingHTTPServer((args.host, args.port), handler_for(inference, model))
    except OSError as error:  # the port is taken, or the host is not this machine's
        return fail(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}", 1)
    print(f"serving {folder} on http://{args.host}:{server.server_address[1]} (GET /ping, POST /invocations)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}"


if __name__ == "__main__":
    sys.exit(main())
