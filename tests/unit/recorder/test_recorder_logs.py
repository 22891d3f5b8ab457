"""The recorder's log lines: each carries its contact's id; no phone number or parameter in any."""

from __future__ import annotations

import base64
import json
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

import callrec.recorder
from callrec.config import RecorderSettings
from callrec.events import StartRecord
from callrec.handoff import HandOffError
from callrec.recorder import Outcome, Recorder
from callrec.recordings import Registration
from tests.support import FakeLambdaContext, load_event, load_function, log_lines, log_to_stdout

GOOD = "5ca32fbd-8f92-46af-92a5-6b0f970f0efe"  # events/kinesis-start-records.json
BAD = "7d1e2f30-1111-4222-8333-944455566677"
PHONE = "+81312345678"
CAMPAIGN = "spring-sale-vip"


def bad_record() -> dict[str, Any]:
    """A start record with the customer's phone number, parameters and a malformed stream ARN."""
    record: dict[str, Any] = json.loads(json.dumps(load_event("kinesis-start-records.json")))
    kinesis = record["Records"][0]["kinesis"]
    body = json.loads(base64.b64decode(kinesis["data"]))
    body.update(
        contact_id=BAD,
        initial_contact_id=BAD,
        customer_phone_number=PHONE,
        parameters={"campaign": CAMPAIGN},
        stream_arn=f"stream of {PHONE} for {CAMPAIGN}",
    )
    kinesis.update(
        data=base64.b64encode(json.dumps(body).encode()).decode(),
        partitionKey=BAD,
        sequenceNumber="2",
    )
    return dict(record["Records"][0])


class LoggingStore:
    """The recording table as a fake: registration always new, two leases expired."""

    def register(self, record: StartRecord, *, grace_seconds: int) -> Registration:
        return Registration.NEW

    def expired_leases(self, *, limit: int) -> list[str]:
        return ["c-1", "c-2"]


class Invoker:
    def start(self, contact_id: str, *, reason: str) -> None:
        callrec.recorder.logger.info("invocation started")  # a library line without the key
        if contact_id == "c-2":
            raise HandOffError(f"cannot invoke for {contact_id}")


def real_recorder() -> Recorder:
    settings = RecorderSettings("t", "b", "recordings/", "staging/", "f", 20, 365)
    return Recorder(
        settings,
        store=LoggingStore(),  # type: ignore[arg-type]
        invoker=Invoker(),  # type: ignore[arg-type]
        media=None,  # type: ignore[arg-type]
        s3=None,  # type: ignore[arg-type]
    )


class FakeRecorder:
    def record(self, contact_id: str, *, owner: str, remaining_ms: Any) -> Outcome:
        callrec.recorder.logger.info("reading fragments")  # no contact_id passed: inherited
        return Outcome(contact_id, "completed", fragments=3, recorded_seconds=3.0)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CallRecorder")
    monkeypatch.delenv("LOG_PERSONAL_DATA", raising=False)
    module = load_function("recorder")
    log_to_stdout(module, monkeypatch)
    return module


def test_each_line_of_a_batch_carries_its_own_record_s_contact(
    app: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a batch of a good start record, a bad one holding a phone number, the good one again
    event = load_event("kinesis-start-records.json")
    good = event["Records"][0]
    event["Records"] = [good, bad_record(), good]

    # When the recorder registers them
    result = app.lambda_handler(event, FakeLambdaContext(), recorder=real_recorder())

    # Then each line names the contact of the record it was logged for, and nothing personal
    assert result == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    out = capsys.readouterr().out
    assert PHONE not in out
    assert CAMPAIGN not in out
    lines = log_lines(out)
    assert [(line["message"], line.get("contact_id")) for line in lines] == [
        ("invocation started", GOOD),
        ("recording registered", GOOD),
        ("start record not registered", BAD),
        ("invocation started", GOOD),
        ("recording registered", GOOD),
    ]
    assert "expected a KVS stream ARN" in lines[2]["exception"]


def test_a_batch_that_fails_entirely_raises_without_personal_data(
    app: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a batch whose only start record is bad and holds a phone number and parameters
    event = {"Records": [bad_record()]}

    # When it fails (the event source mapping bisects and retries)
    with pytest.raises(BatchProcessingError) as raised:
        app.lambda_handler(event, FakeLambdaContext(), recorder=real_recorder())

    # Then neither the lines nor the error the runtime logs show them
    for text in (capsys.readouterr().out, str(raised.value)):
        assert PHONE not in text
        assert CAMPAIGN not in text
    assert "expected a KVS stream ARN" in str(raised.value)


def test_with_personal_data_allowed_the_bad_record_is_shown(
    app: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given LOG_PERSONAL_DATA=true
    monkeypatch.setenv("LOG_PERSONAL_DATA", "true")

    # When a bad start record fails
    with pytest.raises(BatchProcessingError):
        app.lambda_handler(
            {"Records": [bad_record()]}, FakeLambdaContext(), recorder=real_recorder()
        )

    # Then its values appear in the logged error
    assert PHONE in capsys.readouterr().out


def test_every_line_of_a_record_invocation_carries_its_contact(
    app: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the recorder records one contact, its library logging no contact id itself
    app.lambda_handler(
        {"action": "record", "contact_id": "c-9", "reason": "handoff"},
        FakeLambdaContext(),
        recorder=FakeRecorder(),
    )

    # Then every line carries it
    lines = log_lines(capsys.readouterr().out)
    assert [line["message"] for line in lines] == ["reading fragments"]
    assert all(line["contact_id"] == "c-9" for line in lines)


def test_the_sweep_logs_each_resume_with_its_contact_only(
    app: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the sweep resumes two stalled recordings, one of which cannot be invoked
    result = app.lambda_handler({"action": "sweep"}, FakeLambdaContext(), recorder=real_recorder())

    # Then each contact's lines carry its id, and the summary line no single contact's
    assert result == {"resumed": ["c-1"]}
    lines = log_lines(capsys.readouterr().out)
    assert [(line["message"], line.get("contact_id")) for line in lines] == [
        ("invocation started", "c-1"),
        ("invocation started", "c-2"),
        ("cannot resume stalled recording", "c-2"),
        ("resumed stalled recordings", None),
    ]
