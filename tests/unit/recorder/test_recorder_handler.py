"""The recorder handler's dispatch: Kinesis batches, record commands, the sweep."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from callrec.events import StartRecord
from callrec.handoff import CommandError, RecorderCommand
from callrec.recorder import Outcome
from tests.support import FakeLambdaContext, load_event, load_function


class FakeRecorder:
    def __init__(self) -> None:
        self.registered: list[StartRecord] = []
        self.recorded: list[tuple[str, str]] = []
        self.sweeps = 0

    def register(self, record: StartRecord) -> bool:
        self.registered.append(record)
        return True

    def record(self, contact_id: str, *, owner: str, remaining_ms: Any) -> Outcome:
        self.recorded.append((contact_id, owner))
        return Outcome(contact_id, "completed", fragments=3, recorded_seconds=3.0)

    def sweep(self) -> list[str]:
        self.sweeps += 1
        return ["a", "b"]


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CallRecorder")
    return load_function("recorder")


def test_kinesis_batch_registers_each_start_record(app: ModuleType) -> None:
    recorder = FakeRecorder()

    result = app.lambda_handler(
        load_event("kinesis-start-records.json"), FakeLambdaContext(), recorder=recorder
    )

    assert result == {"batchItemFailures": []}
    assert [r.contact_id for r in recorder.registered] == ["5ca32fbd-8f92-46af-92a5-6b0f970f0efe"]


def test_record_command_records_with_the_request_as_owner(app: ModuleType) -> None:
    recorder = FakeRecorder()
    event = {"action": "record", "contact_id": "c-1", "reason": "handoff"}

    result = app.lambda_handler(event, FakeLambdaContext(), recorder=recorder)

    assert recorder.recorded == [("c-1", FakeLambdaContext().aws_request_id)]
    assert result["action"] == "completed"


def test_sweep_resumes_stalled_recordings(app: ModuleType) -> None:
    recorder = FakeRecorder()

    result = app.lambda_handler({"action": "sweep"}, FakeLambdaContext(), recorder=recorder)

    assert result == {"resumed": ["a", "b"]}
    assert recorder.sweeps == 1


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"action": "record"}, "without a contact_id"),
        ({"action": "dance"}, "unknown recorder command"),
        ({}, "unknown recorder command"),
    ],
)
def test_bad_commands_are_refused_clearly(event: dict[str, Any], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        RecorderCommand.from_event(event)
