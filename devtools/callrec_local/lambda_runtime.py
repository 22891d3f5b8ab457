"""Lambda's execution model on one machine: each invocation in its own worker process.

`LambdaRuntime` runs synchronous invocations (`invoke`) and queues asynchronous ones
(`invoke_async`) with Lambda's retry policy for them (EventInvokeConfig: retries after about one and
two minutes, scaled by the stack's time factor; maximum event age; OnFailure destination with
Lambda's invocation record). Each attempt is a fresh `python -m callrec_local.lambda_worker`
process in its own session: its init phase (importing the handler) has Lambda's 10 s limit, its
handler gets the function's timeout counted from the end of init, and at that deadline the whole
process group is SIGKILLed, as Lambda ends a sandbox. Tests can SIGKILL a running invocation too.
Every attempt is recorded as an `Invocation`.

It deliberately does not keep warm sandboxes (every invocation is a cold start), enforce memory
limits, or throttle beyond a fixed concurrency.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from callrec_local.lambda_worker import peak_rss_kb
from callrec_local.template import Destination, FunctionSpec

InvocationType = Literal["RequestResponse", "Event"]

# Lambda's limit on a function's init phase (imports, module-level clients).
INIT_TIMEOUT_S = 10.0
# Lambda waits about a minute before the first retry of a failed asynchronous invocation and about
# two before the second.
ASYNC_RETRY_DELAYS_S = (60.0, 120.0)


@dataclass
class Invocation:
    """One attempt at running a function: what it was given, what came back, how it ended."""

    function_name: str
    request_id: str
    event: Any
    invocation_type: InvocationType
    source: str  # who invoked: direct, api, kinesis, s3, schedule
    attempt: int  # 1 for the first attempt of this request id
    timeout_s: float
    started_at: float = field(default_factory=time.time)
    handler_started_at: float | None = None
    ended_at: float | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    killed: bool = False  # SIGKILLed, at the timeout or by kill()
    timed_out: bool = False
    logs: str = ""
    # The worker's peak RSS (VmHWM, KiB) as it answered or was killed; None if unknown (it died
    # on its own). For memory benchmarks only: nothing here enforces the function's MemorySize.
    peak_rss_kb: int | None = None

    @property
    def ok(self) -> bool:
        return self.ended_at is not None and self.error is None

    @property
    def duration_s(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


FailureSink = Callable[[Destination, dict[str, Any]], None]


class RunningInvocation:
    """An attempt whose worker process is alive."""

    def __init__(self, invocation: Invocation, process: subprocess.Popen[bytes]) -> None:
        self.invocation = invocation
        self.process = process
        self.handler_started = threading.Event()
        self.killed_on_request = False

    def kill(self) -> None:
        """SIGKILL the worker's process group now; the attempt fails as a crashed sandbox would."""
        self.killed_on_request = True
        self.invocation.peak_rss_kb = peak_rss_kb(self.process.pid)
        _kill_group(self.process)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


class _ControlReader:
    """JSON lines from the worker's control pipe, with a deadline per read."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""
        self.eof = False

    def read(self, timeout_s: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + max(0.0, timeout_s)
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if self.eof or remaining <= 0:
                return None
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if ready:
                chunk = os.read(self._fd, 65536)
                self.eof = not chunk
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message


class LambdaRuntime:
    """Runs the stack's functions in worker processes and records every attempt."""

    def __init__(
        self,
        functions: Mapping[str, FunctionSpec],
        environment: Mapping[str, str],
        *,
        log_dir: Path,
        time_scale: float = 1.0,
        max_concurrency: int = 8,
        on_failure: FailureSink | None = None,
        region: str = "us-east-1",
    ) -> None:
        self._functions = dict(functions)
        # Shared variables (endpoints, credentials); the stack fills in the Lambda API's endpoint.
        self.environment = dict(environment)
        self._log_dir = log_dir
        self._time_scale = time_scale
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._on_failure = on_failure
        self._region = region
        self._lock = threading.Condition()
        self._invocations: list[Invocation] = []
        self._running: list[RunningInvocation] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ lookup
    def function(self, name: str) -> FunctionSpec:
        """A function by logical id, name or (qualified) ARN."""
        bare = name.rsplit(":function:", 1)[-1].split(":", 1)[0]
        for spec in self._functions.values():
            if bare in {spec.name, spec.logical_id}:
                return spec
        raise KeyError(f"Function not found: {name}")

    # ------------------------------------------------------------------ invoking
    def invoke(self, function: str, event: Any, *, source: str = "direct") -> Invocation:
        """Run one synchronous (RequestResponse) invocation and return its record."""
        spec = self.function(function)
        with self._slots:
            return self._execute(
                spec,
                event,
                request_id=str(uuid.uuid4()),
                invocation_type="RequestResponse",
                source=source,
                attempt=1,
            )

    def invoke_async(self, function: str, event: Any, *, source: str = "api") -> str:
        """Queue an asynchronous (Event) invocation, retried as EventInvokeConfig says; its request id."""
        spec = self.function(function)
        request_id = str(uuid.uuid4())
        thread = threading.Thread(
            target=self._run_async,
            args=(spec, event, request_id, source),
            name=f"async-{spec.name}-{request_id[:8]}",
            daemon=True,
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return request_id

    def _run_async(self, spec: FunctionSpec, event: Any, request_id: str, source: str) -> None:
        config = spec.async_config
        queued_at = time.monotonic()
        max_age_s = config.maximum_event_age_s * self._time_scale
        attempt = 0
        while True:
            attempt += 1
            with self._slots:
                if self._stopping.is_set():
                    return
                invocation = self._execute(
                    spec,
                    event,
                    request_id=request_id,
                    invocation_type="Event",
                    source=source,
                    attempt=attempt,
                )
            if invocation.ok:
                if config.on_success is not None:
                    self._deliver(config.on_success, spec, invocation, "Success", attempt)
                return
            if attempt > config.maximum_retry_attempts:
                condition = "RetriesExhausted"
                break
            delay = ASYNC_RETRY_DELAYS_S[min(attempt, len(ASYNC_RETRY_DELAYS_S)) - 1]
            delay *= self._time_scale
            if time.monotonic() + delay - queued_at > max_age_s:
                condition = "EventAgeExceeded"
                break
            if self._stopping.wait(delay):
                return
        if config.on_failure is not None and not self._stopping.is_set():
            self._deliver(config.on_failure, spec, invocation, condition, attempt)

    def _deliver(
        self,
        destination: Destination,
        spec: FunctionSpec,
        invocation: Invocation,
        condition: str,
        attempts: int,
    ) -> None:
        """Send Lambda's asynchronous invocation record to a destination."""
        if self._on_failure is None:
            return
        record = {
            "version": "1.0",
            "timestamp": _iso_now(),
            "requestContext": {
                "requestId": invocation.request_id,
                "functionArn": f"{spec.arn}:$LATEST",
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "requestPayload": invocation.event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                **({"functionError": "Unhandled"} if invocation.error else {}),
            },
            "responsePayload": invocation.error if invocation.error else invocation.result,
        }
        self._on_failure(destination, record)

    # ------------------------------------------------------------------ one attempt
    def _lambda_environment(self, spec: FunctionSpec, log_stream: str) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PYTHONUNBUFFERED": "1",
            "LAMBDA_TASK_ROOT": str(spec.code_uri),
            "_HANDLER": spec.handler,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": self._region,
            "AWS_DEFAULT_REGION": self._region,
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            # What `sam local invoke` sets: Powertools then leaves X-Ray alone (no daemon here).
            "AWS_SAM_LOCAL": "true",
            **self.environment,
            **spec.environment,
        }

    def _execute(
        self,
        spec: FunctionSpec,
        event: Any,
        *,
        request_id: str,
        invocation_type: InvocationType,
        source: str,
        attempt: int,
    ) -> Invocation:
        invocation = Invocation(
            function_name=spec.name,
            request_id=request_id,
            event=event,
            invocation_type=invocation_type,
            source=source,
            attempt=attempt,
            timeout_s=spec.timeout_s,
        )
        log_stream = f"{dt.datetime.now(dt.UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        request = {
            "code_dir": str(spec.code_uri),
            "handler": spec.handler,
            "event": event,
            "context": {
                "function_name": spec.name,
                "invoked_function_arn": spec.arn,
                "memory_limit_in_mb": spec.memory_mb,
                "aws_request_id": request_id,
                "log_group_name": spec.log_group_name,
                "log_stream_name": log_stream,
            },
        }
        log_path = self._log_dir / f"{spec.name}-{request_id}-{attempt}.log"
        ctrl_read, ctrl_write = os.pipe()
        with log_path.open("wb") as log:
            # Our own interpreter and worker module: no untrusted input in argv.
            process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "callrec_local.lambda_worker", str(ctrl_write)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._lambda_environment(spec, log_stream),
                cwd=spec.code_uri,
                pass_fds=(ctrl_write,),
                start_new_session=True,
            )
        os.close(ctrl_write)
        running = RunningInvocation(invocation, process)
        with self._lock:
            self._running.append(running)
        try:
            self._supervise(spec, running, request, _ControlReader(ctrl_read))
        finally:
            # The worker exits right after answering; whatever it left running (threads, child
            # processes) dies with its group, as a sandbox's leftovers never outlive it here.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.5)
            _kill_group(process)
            process.wait()
            os.close(ctrl_read)
            invocation.ended_at = time.time()
            invocation.logs = log_path.read_text(errors="replace")
            with self._lock:
                self._running.remove(running)
                self._invocations.append(invocation)
                self._lock.notify_all()
        return invocation

    def _supervise(
        self,
        spec: FunctionSpec,
        running: RunningInvocation,
        request: dict[str, Any],
        reader: _ControlReader,
    ) -> None:
        invocation, process = running.invocation, running.process
        stdin = process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(request).encode() + b"\n")
            stdin.flush()
        except BrokenPipeError:
            pass
        message = reader.read(INIT_TIMEOUT_S)
        if message is not None and message["state"] == "ready":
            deadline = time.time() + spec.timeout_s
            invocation.handler_started_at = time.time()
            with contextlib.suppress(BrokenPipeError):
                stdin.write(json.dumps({"deadline": deadline}).encode() + b"\n")
                stdin.close()
            running.handler_started.set()
            with self._lock:
                self._lock.notify_all()
            message = reader.read(deadline - time.time())
        if message is not None and message.get("peak_rss_kb") is not None:
            invocation.peak_rss_kb = message["peak_rss_kb"]
        if message is not None and message["state"] == "done":
            invocation.result = message["result"]
            return
        if message is not None and message["state"] == "error":
            invocation.error = {**message["error"], "requestId": invocation.request_id}
            return
        # No answer: the deadline passed, or the process died (killed, crashed, exited).
        if process.poll() is None and not running.killed_on_request:
            invocation.peak_rss_kb = peak_rss_kb(process.pid)
            _kill_group(process)
            process.wait()
            invocation.killed = invocation.timed_out = True
            limit = spec.timeout_s if running.handler_started.is_set() else INIT_TIMEOUT_S
            invocation.error = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"RequestId: {invocation.request_id} Error: "
                f"Task timed out after {limit:.2f} seconds",
            }
            return
        status = process.wait()
        invocation.killed = running.killed_on_request or status == -signal.SIGKILL
        reason = "signal: killed" if invocation.killed else f"exit status {status}"
        invocation.error = {
            "errorType": "Runtime.ExitError",
            "errorMessage": f"RequestId: {invocation.request_id} Error: "
            f"Runtime exited with error: {reason}",
        }

    # ------------------------------------------------------------------ observing
    @property
    def invocations(self) -> list[Invocation]:
        """Every finished attempt so far, in the order they ended."""
        with self._lock:
            return list(self._invocations)

    def running(self, function: str | None = None) -> list[RunningInvocation]:
        """Attempts whose worker is alive (optionally of one function)."""
        name = None if function is None else self.function(function).name
        with self._lock:
            return [r for r in self._running if name in {None, r.invocation.function_name}]

    def wait_until(
        self, condition: Callable[[list[Invocation]], bool], timeout_s: float
    ) -> list[Invocation]:
        """Block until `condition(finished invocations)` holds; TimeoutError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while not condition(self._invocations):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    summary = [
                        (i.function_name, i.source, i.attempt, i.error and i.error["errorType"])
                        for i in self._invocations
                    ]
                    raise TimeoutError(f"condition not met in {timeout_s} s; finished: {summary}")
                self._lock.wait(remaining)
            return list(self._invocations)

    def wait_running(self, function: str, timeout_s: float) -> RunningInvocation:
        """The first attempt of `function` whose handler has started; TimeoutError otherwise."""
        name = self.function(function).name
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                for running in self._running:
                    if (
                        running.invocation.function_name == name
                        and running.handler_started.is_set()
                    ):
                        return running
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no running invocation of {name} in {timeout_s} s")
                self._lock.wait(remaining)

    def kill(self, request_id: str) -> None:
        """SIGKILL the running attempt(s) of a request id."""
        for running in self.running():
            if running.invocation.request_id == request_id:
                running.kill()

    def stop(self) -> None:
        """Kill every worker and drop queued retries."""
        self._stopping.set()
        for running in self.running():
            running.kill()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)


def _iso_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
