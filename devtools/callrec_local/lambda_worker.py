"""The process one local Lambda invocation runs in: `python -m callrec_local.lambda_worker CTRL_FD`.

It plays the part of Lambda's Python runtime for exactly one invocation: reads the request (code
directory, handler, event, context fields) as one JSON line on stdin, imports the handler (the
init phase), reports `ready` on the control pipe, reads the deadline the parent fixed once init was
over, calls the handler with a Lambda-like context, and reports the result or the error as Lambda's
Python runtime shapes it, with its peak RSS (for benchmarks). stdout and stderr are the function's
log.

It does not enforce the timeout: the parent SIGKILLs this process's group at the deadline, as
Lambda ends a sandbox, so a handler that ignores its remaining time is stopped for real.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The context object Lambda passes to a Python handler."""

    def __init__(self, fields: dict[str, Any], deadline: float) -> None:
        self.function_name: str = fields["function_name"]
        self.function_version: str = "$LATEST"
        self.invoked_function_arn: str = fields["invoked_function_arn"]
        self.memory_limit_in_mb: int = int(fields["memory_limit_in_mb"])
        self.aws_request_id: str = fields["aws_request_id"]
        self.log_group_name: str = fields["log_group_name"]
        self.log_stream_name: str = fields["log_stream_name"]
        self.identity: Any = None
        self.client_context: Any = None
        self.tenant_id: str | None = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def peak_rss_kb(pid: int | str = "self") -> int | None:
    """The process's peak resident set size so far (the kernel's VmHWM), in KiB; None off Linux.

    What Lambda reports as "Max Memory Used" for a sandbox, near enough: this process runs one
    invocation from a cold start, so its high-water mark covers the init phase and the handler.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _report(ctrl: int, message: dict[str, Any]) -> None:
    os.write(ctrl, (json.dumps({**message, "peak_rss_kb": peak_rss_kb()}) + "\n").encode())


def main() -> int:
    ctrl = int(sys.argv[1])
    request = json.loads(sys.stdin.readline())
    sys.path.insert(0, request["code_dir"])
    module_name, _, function_name = request["handler"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:
        _report(
            ctrl,
            {"state": "error", "error": {**_error(exc), "errorType": "Runtime.ImportModuleError"}},
        )
        return 1
    _report(ctrl, {"state": "ready"})
    deadline = float(json.loads(sys.stdin.readline())["deadline"])
    context = LambdaContext(request["context"], deadline)
    try:
        result = handler(request["event"], context)
    except Exception as exc:
        traceback.print_exc()
        _report(ctrl, {"state": "error", "error": _error(exc)})
        return 0
    try:
        payload = json.dumps(result)
    except (TypeError, ValueError) as exc:
        error = {**_error(exc), "errorType": "Runtime.MarshalError"}
        _report(ctrl, {"state": "error", "error": error})
        return 0
    head = json.dumps({"state": "done", "peak_rss_kb": peak_rss_kb()})[:-1]
    os.write(ctrl, head.encode() + b', "result": ' + payload.encode() + b"}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
