"""The contact-flow handler's log lines: no phone number, attribute or flow parameter in any."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from callrec.events import ContactFlowEventError, StartRecord
from callrec.kinesis import PublishError, PutReceipt
from tests.support import FakeLambdaContext, load_event, load_function, log_lines, log_to_stdout

CONTACT_ID = "5ca32fbd-8f92-46af-92a5-6b0f970f0efe"
# Everything personal in events/contact-flow-event.json.
PERSONAL = ("+11234567890", "+81312345678", "Hanako Yamada", "gold-member", "support-line")


class FakePublisher:
    """Kinesis as a fake; its failure quotes the record, as a botocore error may quote a request."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail

    def publish(self, record: StartRecord, *, deadline: float) -> PutReceipt:
        if self.fail:
            raise PublishError(f"PutRecord failed after 3 attempts for {record.to_json()!r}")
        return PutReceipt("shardId-000000000000", "1", 1)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> ModuleType:
    monkeypatch.setenv("STREAM_NAME", "starts")
    monkeypatch.setenv("INCLUDE_CUSTOMER_PHONE_NUMBER", "true")  # the start record carries it
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CallRecorder")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")  # the event itself is logged too
    monkeypatch.delenv("LOG_PERSONAL_DATA", raising=False)
    module = load_function("send_event")
    log_to_stdout(module, monkeypatch)
    return module


def bad_stream_event() -> dict[str, Any]:
    """A flow that set the stream ARN from an attribute: the error quotes the value found."""
    event = load_event("contact-flow-event.json")
    audio = event["Details"]["ContactData"]["MediaStreams"]["Customer"]["Audio"]
    audio["StreamARN"] = "Hanako Yamada +81312345678"
    return event


def assert_nothing_personal(out: str) -> None:
    for value in PERSONAL:
        assert value not in out


def test_success_lines_carry_the_contact_and_nothing_personal(
    app: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the sample event, with a phone number, attributes and flow parameters
    event = load_event("contact-flow-event.json")

    # When the start record is sent
    app.lambda_handler(event, FakeLambdaContext(), publisher=FakePublisher())

    # Then no line shows them, and the result line carries the contact id
    out = capsys.readouterr().out
    assert_nothing_personal(out)
    lines = log_lines(out)
    assert len(lines) == 2  # the event, then "start record sent"
    assert lines[-1]["message"] == "start record sent"
    assert lines[-1]["contact_id"] == CONTACT_ID


def test_a_malformed_stream_arn_error_is_masked_in_logs_and_in_the_raised_error(
    app: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an event whose stream ARN holds an attribute value and a phone number
    event = bad_stream_event()

    # When the handler refuses it
    with pytest.raises(ContactFlowEventError, match="expected a KVS stream ARN") as raised:
        app.lambda_handler(event, FakeLambdaContext(), publisher=FakePublisher())

    # Then the logged exception, its traceback and the raised message show neither
    out = capsys.readouterr().out
    assert_nothing_personal(out)
    assert_nothing_personal(str(raised.value))
    [failure] = [line for line in log_lines(out) if line["level"] == "ERROR"]
    assert failure["message"] == "recording not started"
    assert "expected a KVS stream ARN" in failure["exception"]


def test_a_kinesis_failure_quoting_the_record_is_masked(
    app: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Kinesis failing with a message that quotes the start record (phone, parameters)
    publisher = FakePublisher(fail=True)

    # When the handler gives up
    with pytest.raises(PublishError) as raised:
        app.lambda_handler(
            load_event("contact-flow-event.json"), FakeLambdaContext(), publisher=publisher
        )

    # Then neither the lines nor the error raised to Connect show them
    out = capsys.readouterr().out
    assert_nothing_personal(out)
    assert_nothing_personal(str(raised.value))
    assert CONTACT_ID in str(raised.value)  # what is not personal stays readable
    [failure] = [line for line in log_lines(out) if line["level"] == "ERROR"]
    assert failure["contact_id"] == CONTACT_ID


def test_personal_data_is_logged_when_the_deployment_allows_it(
    app: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given LOG_PERSONAL_DATA=true (read at the first invocation)
    monkeypatch.setenv("LOG_PERSONAL_DATA", "true")

    # When the handler refuses an event quoting an attribute and a phone number
    with pytest.raises(ContactFlowEventError) as raised:
        app.lambda_handler(bad_stream_event(), FakeLambdaContext(), publisher=FakePublisher())

    # Then they appear, in the logged event and error, and in the raised error
    out = capsys.readouterr().out
    assert "Hanako Yamada +81312345678" in str(raised.value)
    for value in PERSONAL:
        assert value in out
