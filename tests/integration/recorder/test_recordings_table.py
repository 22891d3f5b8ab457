"""The recording item against DynamoDB (moto): registration, lease, generation-guarded writes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest

from callrec.events import StartRecord, start_record_from_contact_flow
from callrec.recordings import COMPLETED, LeaseLost, NotRecording, RecordingStore
from callrec_local.template import load_template, local_plan
from tests.support import load_event


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table_name(aws_env: str) -> Iterator[str]:
    """The recordings table exactly as template.yaml defines it, under a unique name."""
    spec = local_plan(load_template()).tables["RecordingsTable"]
    name = f"recordings-{uuid.uuid4().hex[:8]}"
    client = boto3.client("dynamodb")
    client.create_table(**{**spec.create_table, "TableName": name})
    yield name
    client.delete_table(TableName=name)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(table_name: str, clock: Clock) -> RecordingStore:
    return RecordingStore(table_name, boto3.client("dynamodb"), clock=clock)


@pytest.fixture
def record() -> StartRecord:
    return start_record_from_contact_flow(load_event("contact-flow-event.json"))


def test_a_start_record_registers_once(store: RecordingStore, record: StartRecord) -> None:
    assert store.register(record) is True
    assert store.register(record) is False

    recording = store.get(record.contact_id)
    assert recording is not None
    assert recording.status == "RECORDING"
    assert recording.start_record == record
    assert recording.checkpoint is None


def test_lease_excludes_a_second_invocation_until_it_expires(
    store: RecordingStore, record: StartRecord, clock: Clock
) -> None:
    store.register(record)
    lease, _ = store.acquire(record.contact_id, "first", lease_seconds=900)

    with pytest.raises(LeaseLost, match="lease held by first"):
        store.acquire(record.contact_id, "second", lease_seconds=900)

    clock.now += 901
    second, _ = store.acquire(record.contact_id, "second", lease_seconds=900)
    assert second.generation == lease.generation + 1


def test_a_superseded_invocation_cannot_overwrite_newer_progress(
    store: RecordingStore, record: StartRecord, clock: Clock
) -> None:
    store.register(record)
    stale, _ = store.acquire(record.contact_id, "stale", lease_seconds=10)
    clock.now += 11  # the stale invocation's lease expired (it hung, or was killed)
    current, _ = store.acquire(record.contact_id, "current", lease_seconds=900)
    store.checkpoint(current, {"position": "new"})

    with pytest.raises(LeaseLost, match="no longer current"):
        store.checkpoint(stale, {"position": "old"})
    with pytest.raises(LeaseLost):
        store.finish(stale, COMPLETED, {"duration_seconds": 1}, {"position": "old"})

    recording = store.get(record.contact_id)
    assert recording is not None
    assert recording.checkpoint == {"position": "new"}


def test_release_hands_the_checkpoint_to_the_next_invocation(
    store: RecordingStore, record: StartRecord, clock: Clock
) -> None:
    store.register(record)
    lease, _ = store.acquire(record.contact_id, "a", lease_seconds=900)

    store.release(lease, {"position": 42}, grace_seconds=30)

    assert list(store.expired_leases()) == []  # the sweeper leaves it to the hand-off
    _, recording = store.acquire(record.contact_id, "b", lease_seconds=900)
    assert recording.checkpoint == {"position": 42}
    with pytest.raises(LeaseLost):  # taken: a second comer is refused
        store.acquire(record.contact_id, "c", lease_seconds=900)
    clock.now += 31
    assert list(store.expired_leases()) == []  # "b" holds it for 900 s


def test_finished_recordings_leave_the_sweepers_index(
    store: RecordingStore, record: StartRecord, clock: Clock
) -> None:
    other = StartRecord.from_json(
        record.to_json().replace(record.contact_id.encode(), str(uuid.uuid4()).encode())
    )
    store.register(record, grace_seconds=5)
    store.register(other, grace_seconds=5)
    lease, _ = store.acquire(record.contact_id, "a", lease_seconds=900)
    assert set(store.expired_leases()) == set()  # the other one is still in its grace period
    clock.now += 6
    assert set(store.expired_leases()) == {other.contact_id}

    store.finish(
        lease,
        COMPLETED,
        {"keys": {"cu": "recordings/x-cu.wav"}, "duration_seconds": 12.5},
        {"position": 1},
    )
    clock.now += 10_000

    assert set(store.expired_leases()) == {other.contact_id}
    with pytest.raises(NotRecording, match="COMPLETED"):
        store.acquire(record.contact_id, "late", lease_seconds=900)
    item = boto3.client("dynamodb").get_item(
        TableName=store._table, Key={"contact_id": {"S": record.contact_id}}
    )["Item"]
    assert item["status"] == {"S": "COMPLETED"}
    assert item["keys"] == {"M": {"cu": {"S": "recordings/x-cu.wav"}}}
    assert item["duration_seconds"] == {"N": "12.5"}
    assert "active" not in item


def test_unknown_contact_is_not_recording(store: RecordingStore) -> None:
    with pytest.raises(NotRecording, match="not registered"):
        store.acquire("missing", "a", lease_seconds=10)
