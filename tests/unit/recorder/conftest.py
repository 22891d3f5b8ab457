"""Fakes and fixtures of the recorder's unit tests: moto's DynamoDB and S3, fake time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from callrec.config import RecorderSettings
from callrec.events import StartRecord, start_record_from_contact_flow
from callrec.recorder import Outcome, Recorder
from callrec.recordings import RecordingStore
from tests.support import in_process_aws, load_event

TABLE = "recordings-silence"
BUCKET = "recordings-silence"


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def monotonic(self) -> float:
        return self.now

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeInvoker:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, contact_id: str, *, reason: str) -> None:
        self.started.append(reason)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with in_process_aws(monkeypatch, TABLE):
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield


@pytest.fixture
def record() -> StartRecord:
    return start_record_from_contact_flow(load_event("contact-flow-event.json"))


def recorder_settings(**changes: Any) -> RecorderSettings:
    """The recorder's settings in these tests: 10 s of idle time, 1-s checkpoints and margin."""
    base: dict[str, Any] = {
        "table_name": TABLE,
        "bucket_name": BUCKET,
        "recordings_prefix": "recordings/",
        "staging_prefix": "staging/",
        "function_name": "recorder",
        "idle_seconds": 10,
        "expiration_days": 1,
        "handoff_margin_seconds": 1,
        "checkpoint_interval_seconds": 1,
    }
    return RecorderSettings(**{**base, **changes})


def recorder_on(
    time: FakeTime, media: object, settings: RecorderSettings | None = None
) -> tuple[Recorder, RecordingStore]:
    """A recorder reading from `media`, on moto's table and bucket, in fake time."""
    store = RecordingStore(TABLE, boto3.client("dynamodb"), clock=time.clock)
    recorder = Recorder(
        settings or recorder_settings(),
        store=store,
        invoker=FakeInvoker(),
        media=media,  # type: ignore[arg-type]
        s3=boto3.client("s3"),
        monotonic=time.monotonic,
        sleep=time.sleep,
        clock=time.clock,
    )
    return recorder, store


def invocations(
    recorder: Recorder, contact_id: str, time: FakeTime, *, seconds: float, limit: int
) -> list[Outcome]:
    """Invocations of `seconds` each, one after another, until one does not hand off (at most
    `limit`); their outcomes."""
    outcomes: list[Outcome] = []
    for n in range(limit):
        began = time.now
        outcomes.append(
            recorder.record(
                contact_id,
                owner=f"request-{n}",
                remaining_ms=lambda began=began: int((began + seconds - time.now) * 1000),  # type: ignore[misc]
            )
        )
        if outcomes[-1].action != "handed_off":
            break
    return outcomes
