"""The Invoke AWS Lambda function block's timeout, read from the event or assumed, as a deadline."""

from __future__ import annotations

from typing import Any

import pytest

from callrec.events import ContactFlowEventError
from callrec.flow_block import (
    DEFAULT_TIMEOUT_S,
    INVOKE_OVERHEAD_S,
    RESPONSE_MARGIN_S,
    BlockTimeout,
)
from callrec.kinesis import ATTEMPT_SECONDS
from tests.support import load_event


def event_with(**parameters: Any) -> dict[str, Any]:
    event = load_event("contact-flow-event.json")
    event["Details"]["Parameters"].update(parameters)
    return event


def test_connects_event_carries_no_timeout_so_the_default_is_assumed() -> None:
    # Given the event as Connect documents it: nothing about the block
    event = load_event("contact-flow-event.json")

    timeout = BlockTimeout.from_event(event)

    assert timeout == BlockTimeout(seconds=3, from_flow=False)
    assert DEFAULT_TIMEOUT_S == 3


@pytest.mark.parametrize("seconds", ["1", "3", "8", " 8 "])
def test_the_flow_may_pass_the_blocks_timeout(seconds: str) -> None:
    timeout = BlockTimeout.from_event(event_with(InvocationTimeLimitSeconds=seconds))

    assert timeout == BlockTimeout(seconds=int(seconds), from_flow=True)


@pytest.mark.parametrize("bad", ["0", "9", "3.5", "three", "", "-1", "100"])
def test_a_value_the_block_cannot_have_is_refused_naming_the_parameter(bad: str) -> None:
    with pytest.raises(ContactFlowEventError) as error:
        BlockTimeout.from_event(event_with(InvocationTimeLimitSeconds=bad))

    assert "Details.Parameters.InvocationTimeLimitSeconds" in str(error.value)
    assert "from 1 to 8" in str(error.value)
    assert repr(bad) in str(error.value)


def test_an_event_without_parameters_assumes_the_default() -> None:
    assert BlockTimeout.from_event({"Details": {}}) == BlockTimeout()
    assert BlockTimeout.from_event({}) == BlockTimeout()


@pytest.mark.parametrize(
    ("seconds", "lambda_remaining_s", "budget_s"),
    [
        (3, 8.0, 3 - INVOKE_OVERHEAD_S - RESPONSE_MARGIN_S),
        (8, 8.0, 8 - INVOKE_OVERHEAD_S - RESPONSE_MARGIN_S),
        (8, 5.0, 5 - RESPONSE_MARGIN_S),
    ],
)
def test_the_deadline_is_the_earlier_of_the_blocks_end_and_lambdas(
    seconds: int, lambda_remaining_s: float, budget_s: float
) -> None:
    deadline = BlockTimeout(seconds).deadline(now=100.0, lambda_remaining_s=lambda_remaining_s)

    assert deadline == pytest.approx(100.0 + budget_s)


def test_a_whole_put_attempt_fits_before_the_default_block_gives_up() -> None:
    # Even the first attempt, at its connect and read timeouts, ends before the 3 s block does.
    deadline = BlockTimeout().deadline(now=0.0, lambda_remaining_s=8.0)

    assert deadline >= ATTEMPT_SECONDS
