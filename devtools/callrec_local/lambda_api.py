"""The Lambda Invoke API on loopback, so handlers' own boto3 clients reach the local runtime.

Functions reach it through AWS_ENDPOINT_URL_LAMBDA, exactly as they reach Lambda in AWS: the
recorder hands off a long call with `boto3.client("lambda").invoke(InvocationType="Event", ...)`.
It serves only Invoke (rest-json, POST /2015-03-31/functions/{FunctionName}/invocations):
`Event` queues the invocation (202), `RequestResponse` runs it and answers with its payload (200,
X-Amz-Function-Error on failure, X-Amz-Log-Result with LogType Tail), `DryRun` answers 204. It
does not check signatures or permissions, and knows no other Lambda operation.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from callrec_local.lambda_runtime import LambdaRuntime

_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")


class _Handler(BaseHTTPRequestHandler):
    server: _LambdaApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # tests read invocation records, not access logs

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, error_type: str, message: str) -> None:
        body = json.dumps({"Type": "User", "message": message}).encode()
        self._send(status, body, {"x-amzn-ErrorType": error_type})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        match = _INVOKE_PATH.match(urlsplit(self.path).path)
        if match is None:
            self._error(404, "UnknownOperationException", f"not served locally: {self.path}")
            return
        runtime = self.server.runtime
        name = unquote(match.group("name"))
        try:
            runtime.function(name)
        except KeyError:
            self._error(404, "ResourceNotFoundException", f"Function not found: {name}")
            return
        try:
            event = json.loads(body) if body.strip() else {}
        except ValueError:
            self._error(
                400, "InvalidRequestContentException", "Could not parse request body into json"
            )
            return
        invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type == "DryRun":
            self._send(204)
        elif invocation_type == "Event":
            request_id = runtime.invoke_async(name, event, source="api")
            self._send(202, headers={"x-amzn-RequestId": request_id})
        elif invocation_type == "RequestResponse":
            invocation = runtime.invoke(name, event, source="api")
            headers = {
                "X-Amz-Executed-Version": "$LATEST",
                "x-amzn-RequestId": invocation.request_id,
            }
            if invocation.error is not None:
                headers["X-Amz-Function-Error"] = "Unhandled"
            if self.headers.get("X-Amz-Log-Type") == "Tail":
                tail = invocation.logs.encode()[-4096:]
                headers["X-Amz-Log-Result"] = base64.b64encode(tail).decode()
            payload = invocation.error if invocation.error is not None else invocation.result
            self._send(200, json.dumps(payload).encode(), headers)
        else:
            self._error(400, "InvalidParameterValueException", f"InvocationType {invocation_type}")


class _LambdaApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, runtime: LambdaRuntime) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.runtime = runtime


class LambdaApi:
    """The Invoke endpoint of a `LambdaRuntime`; `start()` returns its URL."""

    def __init__(self, runtime: LambdaRuntime) -> None:
        self._server = _LambdaApiServer(runtime)
        # A short poll: shutdown() waits for the loop's next check (0.5 s by default, at every
        # stack's stop).
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="lambda-api",
            daemon=True,
        )

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        self._thread.start()
        return self.endpoint

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
