"""Invocations run against the clock: remaining time counts down, overruns are killed for real."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from callrec_local.lambda_runtime import Invocation
from callrec_local.stack import LocalStack

RECORDER = "RecorderFunction"
StackMaker = Callable[..., LocalStack]


def is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def attempts_of(invocations: list[Invocation], request_id: str) -> list[Invocation]:
    return [i for i in invocations if i.request_id == request_id]


def test_context_is_lambdas_and_remaining_time_counts_down_from_the_timeout(
    stack: LocalStack,
) -> None:
    # Given the recorder, whose template timeout is scaled down
    function = stack.function(RECORDER)

    # When it sleeps 0.3 s between two looks at its remaining time
    invocation = stack.invoke(RECORDER, {"remaining_after_s": 0.3})

    # Then the context is the function's, and the time left shrank by at least the sleep
    seen = invocation.result
    assert seen["function_name"] == function.name
    assert seen["invoked_function_arn"] == function.arn
    assert seen["memory_limit_in_mb"] == function.memory_mb
    assert seen["aws_request_id"] == invocation.request_id
    assert seen["log_group_name"] == function.log_group_name
    assert 0 < seen["remaining_ms"] <= function.timeout_s * 1000
    assert seen["remaining_after_ms"] <= seen["remaining_ms"] - 300


def test_an_overrun_is_killed_at_the_timeout_and_retried(
    make_stack: StackMaker, state_dir: Path
) -> None:
    # Given a recorder with a 1 s timeout and an event that sleeps 30 s on its first attempt
    stack = make_stack(timeouts={RECORDER: 1.0})

    # When it is invoked asynchronously
    request_id = stack.invoke_async(RECORDER, {"id": "overrun", "sleep_s": 30, "sleep_times": 1})
    invocations = stack.wait_for(
        lambda invs: any(i.ok for i in attempts_of(invs, request_id)), timeout_s=20
    )

    # Then the first attempt was SIGKILLed at its timeout (its process is gone) and retried
    first, second = attempts_of(invocations, request_id)
    assert first.killed
    assert first.timed_out
    assert first.error is not None
    assert first.error["errorType"] == "Sandbox.Timedout"
    assert first.duration_s is not None
    assert first.duration_s < 10
    assert is_gone(int((state_dir / "overrun.pid-1").read_text()))
    assert second.ok
    assert not second.killed


def test_a_running_invocation_can_be_killed_at_a_chosen_moment(
    stack: LocalStack, state_dir: Path
) -> None:
    # Given a recorder invocation busy for 30 s on its first attempt
    request_id = stack.invoke_async(RECORDER, {"id": "doomed", "sleep_s": 30, "sleep_times": 1})

    # When the test kills it once the handler has counted its attempt and started sleeping
    running = stack.wait_running(RECORDER, timeout_s=20)
    pid_file = state_dir / "doomed.pid-1"
    deadline = time.monotonic() + 20
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    running.kill()
    invocations = stack.wait_for(
        lambda invs: any(i.ok for i in attempts_of(invs, request_id)), timeout_s=20
    )

    # Then it failed as a crashed sandbox, not a timeout, and Lambda's retry ran it again
    first, second = attempts_of(invocations, request_id)
    assert running.invocation is first
    assert first.killed
    assert not first.timed_out
    assert first.error is not None
    assert first.error["errorType"] == "Runtime.ExitError"
    assert second.ok
