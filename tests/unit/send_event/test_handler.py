"""The contact-flow handler: flat string map back to Connect, errors raised for the Error branch."""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

import pytest

from callrec.events import ContactFlowEventError, StartRecord
from callrec.flow_block import INVOKE_OVERHEAD_S, RESPONSE_MARGIN_S
from callrec.kinesis import PublishError, PutReceipt
from tests.support import FakeLambdaContext, load_event, load_function


class FakePublisher:
    def __init__(self, error: Exception | None = None) -> None:
        self.published: list[tuple[StartRecord, float]] = []
        self.error = error

    def publish(self, record: StartRecord, *, deadline: float) -> PutReceipt:
        if self.error:
            raise self.error
        self.published.append((record, deadline))
        return PutReceipt("shardId-000000000000", "1", 1)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("STREAM_NAME", "starts")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CallRecorder")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    return load_function("send_event")


def test_returns_a_flat_map_of_strings(app: ModuleType) -> None:
    publisher = FakePublisher()

    result = app.lambda_handler(
        load_event("contact-flow-event.json"), FakeLambdaContext(), publisher=publisher
    )

    assert result == {
        "status": "RECORDING_REQUESTED",
        "contactId": "5ca32fbd-8f92-46af-92a5-6b0f970f0efe",
    }
    assert all(isinstance(v, str) for v in result.values())
    [(record, _)] = publisher.published
    assert record.contact_id == "5ca32fbd-8f92-46af-92a5-6b0f970f0efe"
    assert record.customer_phone_number is None


def test_phone_number_only_when_the_parameter_asks(
    app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INCLUDE_CUSTOMER_PHONE_NUMBER", "true")
    publisher = FakePublisher()

    app.lambda_handler(
        load_event("contact-flow-event.json"), FakeLambdaContext(), publisher=publisher
    )

    assert publisher.published[0][0].customer_phone_number == "+11234567890"


def test_missing_stream_raises_and_writes_nothing(app: ModuleType) -> None:
    event: dict[str, Any] = load_event("contact-flow-event.json")
    del event["Details"]["ContactData"]["MediaStreams"]
    publisher = FakePublisher()

    with pytest.raises(ContactFlowEventError, match="StreamARN is missing"):
        app.lambda_handler(event, FakeLambdaContext(), publisher=publisher)
    assert publisher.published == []


def test_publish_failure_is_raised(app: ModuleType) -> None:
    with pytest.raises(PublishError):
        app.lambda_handler(
            load_event("contact-flow-event.json"),
            FakeLambdaContext(),
            publisher=FakePublisher(PublishError("down")),
        )


def test_without_the_flow_saying_the_deadline_fits_connects_default_timeout(
    app: ModuleType,
) -> None:
    # Given Connect's event, which does not carry the block's timeout, and 8 s of Lambda time
    publisher = FakePublisher()
    before = time.monotonic()

    # When the handler runs
    app.lambda_handler(
        load_event("contact-flow-event.json"),
        FakeLambdaContext(remaining_ms=8000),
        publisher=publisher,
    )

    # Then its work must end within the block's default 3 s, less the invoke and response
    deadline = publisher.published[0][1]
    assert before + 3.0 - INVOKE_OVERHEAD_S - RESPONSE_MARGIN_S <= deadline
    assert deadline < time.monotonic() + 3.0 - INVOKE_OVERHEAD_S - RESPONSE_MARGIN_S


@pytest.mark.parametrize(
    ("timeout", "remaining_ms", "budget_s"), [("8", 8000, 7.0), ("8", 4000, 3.5)]
)
def test_the_flows_timeout_parameter_sets_the_deadline_within_lambdas_own(
    app: ModuleType, timeout: str, remaining_ms: int, budget_s: float
) -> None:
    event = load_event("contact-flow-event.json")
    event["Details"]["Parameters"]["InvocationTimeLimitSeconds"] = timeout
    publisher = FakePublisher()
    before = time.monotonic()

    app.lambda_handler(event, FakeLambdaContext(remaining_ms=remaining_ms), publisher=publisher)

    deadline = publisher.published[0][1]
    assert before + budget_s <= deadline < time.monotonic() + budget_s


def test_a_timeout_parameter_the_block_cannot_have_is_refused_naming_it(app: ModuleType) -> None:
    event = load_event("contact-flow-event.json")
    event["Details"]["Parameters"]["InvocationTimeLimitSeconds"] = "9"
    publisher = FakePublisher()

    with pytest.raises(ContactFlowEventError, match=r"InvocationTimeLimitSeconds.*found '9'"):
        app.lambda_handler(event, FakeLambdaContext(), publisher=publisher)
    assert publisher.published == []
