"""Registration of start records by the recorder: which ones start an invocation (moto, in
process), and a segment registered while the recording changes under it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from callrec.config import RecorderSettings
from callrec.events import StartRecord, start_record_from_contact_flow
from callrec.recorder import Recorder
from callrec.recordings import COMPLETED, RecordingStore, Registration
from tests.support import in_process_aws, load_event

TABLE = "recordings-registration"
RESTART = "91343852333181432392682062622220590765191907650"


class FakeInvoker:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, contact_id: str, *, reason: str) -> None:
        self.started.append(contact_id)


class RacingClient:
    """Runs `race` just before the first update_item it forwards (another process's write
    between the registration's read of the item and its conditional write)."""

    def __init__(self, client: Any, race: Callable[[], None]) -> None:
        self._client = client
        self._race: Callable[[], None] | None = race

    def update_item(self, **kwargs: Any) -> Any:
        if self._race is not None:
            race, self._race = self._race, None
            race()
        return self._client.update_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with in_process_aws(monkeypatch, TABLE):
        yield


@pytest.fixture
def record() -> StartRecord:
    return start_record_from_contact_flow(load_event("contact-flow-event.json"))


def recorder(store: RecordingStore, invoker: FakeInvoker) -> Recorder:
    settings = RecorderSettings(
        table_name=TABLE,
        bucket_name="b",
        recordings_prefix="recordings/",
        staging_prefix="staging/",
        function_name="recorder",
        idle_seconds=20,
        expiration_days=1,
    )
    return Recorder(settings, store=store, invoker=invoker, media=None, s3=None)  # type: ignore[arg-type]


def test_only_a_new_recording_starts_an_invocation(aws: None, record: StartRecord) -> None:
    # Given the recorder registering the start records of one contact
    invoker = FakeInvoker()
    rec = recorder(RecordingStore(TABLE, boto3.client("dynamodb")), invoker)
    restart = dataclasses.replace(record, start_fragment_number=RESTART)

    # When its first record, a redelivery and a restart's record arrive
    started = [rec.register(record), rec.register(record), rec.register(restart)]

    # Then one invocation records the contact; the restart's segment waits on its item
    assert started == [True, False, False]
    assert invoker.started == [record.contact_id]


def test_a_segment_registered_as_the_recording_completes_goes_to_a_further_recording(
    aws: None, record: StartRecord
) -> None:
    # Given a recording in progress, and its recorder finishing it at the very moment a
    # restart's start record is being registered
    client = boto3.client("dynamodb")
    store = RecordingStore(TABLE, client)
    store.register(record)

    def finish() -> None:
        lease, _ = store.acquire(record.contact_id, "recorder", lease_seconds=60)
        store.finish(lease, COMPLETED, {"duration_seconds": 3.0}, {"finishing": True})

    racing = RecordingStore(TABLE, RacingClient(client, finish))  # type: ignore[arg-type]

    # When the registration's write meets the changed item
    outcome = racing.register(dataclasses.replace(record, start_fragment_number=RESTART))

    # Then it reads the item again and files the segment under the next recording
    assert outcome is Registration.FURTHER
    recording = store.get(record.contact_id)
    assert recording is not None
    assert [s.recording for s in recording.segments] == [0, 1]
