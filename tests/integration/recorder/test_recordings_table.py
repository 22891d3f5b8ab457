"""The recording item against DynamoDB (moto): registration, lease, generation-guarded writes."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from callrec.events import StartRecord, start_record_from_contact_flow
from callrec.recordings import (
    COMPLETED,
    LeaseLost,
    NotRecording,
    RecordingStore,
    Registration,
)
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
    assert store.register(record) is Registration.NEW
    assert store.register(record) is Registration.DUPLICATE

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


def test_lambdas_retry_of_a_dead_attempt_takes_its_own_lease_back_at_once(
    store: RecordingStore, record: StartRecord
) -> None:
    # Given an attempt that took the lease and died (killed, timed out) long before it expires
    store.register(record)
    dead, _ = store.acquire(record.contact_id, "request-1", lease_seconds=900)

    # When Lambda retries it (the same request id), it takes the lease under a new generation,
    # while any other invocation is still refused
    retry, _ = store.acquire(record.contact_id, "request-1", lease_seconds=900)
    assert retry.generation == dead.generation + 1
    with pytest.raises(LeaseLost, match="lease held by request-1"):
        store.acquire(record.contact_id, "request-2", lease_seconds=900)

    # And whatever the dead attempt might still write is refused
    with pytest.raises(LeaseLost, match="no longer current"):
        store.checkpoint(dead, {"position": "old"})
    store.checkpoint(retry, {"position": "new"})


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


# ------------------------------------------------------------------ streaming segments

RESTART_FRAGMENT = "91343852333181432392682062622220590765191907650"
ANOTHER_STREAM = (
    "arn:aws:kinesisvideo:us-east-1:123456789012:stream/"
    "callrec-connect-demo-contact-8a0bc1e3-c54a-4681-86aa-02f9ec63eaa2/1782912600000"
)


def restarted(
    record: StartRecord, *, after_s: int = 95, stream_arn: str | None = None
) -> StartRecord:
    """The start record a flow sends after Stop media streaming, IVR, Start media streaming."""
    return dataclasses.replace(
        record,
        start_fragment_number=RESTART_FRAGMENT,
        start_timestamp_ms=record.start_timestamp_ms + after_s * 1000,
        stream_arn=stream_arn or record.stream_arn,
    )


def raw_item(store: RecordingStore, contact_id: str) -> dict[str, Any]:
    return dict(
        boto3.client("dynamodb").get_item(
            TableName=store._table, Key={"contact_id": {"S": contact_id}}, ConsistentRead=True
        )["Item"]
    )


def test_a_restart_adds_a_segment_and_its_redelivery_adds_nothing(
    store: RecordingStore, record: StartRecord, clock: Clock
) -> None:
    # Given a recording in progress
    store.register(record)
    clock.now += 95

    # When the flow restarts streaming on another stream and invokes the function again,
    # and Kinesis delivers that record twice
    second = restarted(record, stream_arn=ANOTHER_STREAM)
    outcomes = [store.register(second), store.register(second), store.register(record)]

    # Then the item lists both segments in time order, each once
    assert outcomes == [
        Registration.SEGMENT_ADDED,
        Registration.DUPLICATE,
        Registration.DUPLICATE,
    ]
    recording = store.get(record.contact_id)
    assert recording is not None
    assert [(s.start_fragment_number, s.stream_arn, s.recording) for s in recording.segments] == [
        (record.start_fragment_number, record.stream_arn, 0),
        (RESTART_FRAGMENT, ANOTHER_STREAM, 0),
    ]
    assert recording.segments[1].start_timestamp_ms == record.start_timestamp_ms + 95_000
    assert recording.segments[1].registered_at == int(clock.now)
    assert raw_item(store, record.contact_id)["segment_count"] == {"N": "2"}
    # the first start record still describes the recording
    assert recording.start_record == record


def test_a_record_sent_after_stop_media_streaming_notes_the_stop_once(
    store: RecordingStore, record: StartRecord
) -> None:
    store.register(record)
    stopped = dataclasses.replace(
        record,
        stop_fragment_number="91343852333181432392682062622220590765191907600",
        stop_timestamp_ms=record.start_timestamp_ms + 60_000,
    )

    assert store.register(stopped) is Registration.STOP_NOTED
    assert store.register(stopped) is Registration.DUPLICATE
    assert store.register(record) is Registration.DUPLICATE  # a late redelivery keeps the stop
    recording = store.get(record.contact_id)
    assert recording is not None
    (segment,) = recording.segments
    assert (segment.stop_fragment_number, segment.stop_timestamp_ms) == (
        stopped.stop_fragment_number,
        stopped.stop_timestamp_ms,
    )


def test_a_segment_after_the_recording_finished_belongs_to_a_further_recording(
    store: RecordingStore, record: StartRecord
) -> None:
    # Given a recording that finished (the idle fallback ended it during a long pause)
    store.register(record)
    lease, _ = store.acquire(record.contact_id, "a", lease_seconds=60)
    store.finish(lease, COMPLETED, {"duration_seconds": 30.0}, {"finishing": True})

    # When streaming restarts and the flow invokes the function again
    outcome = store.register(restarted(record))

    # Then the segment is kept for a further recording of the contact; the finished one stays
    assert outcome is Registration.FURTHER
    assert not outcome.starts_recording
    recording = store.get(record.contact_id)
    assert recording is not None
    assert recording.status == COMPLETED
    assert [s.recording for s in recording.segments] == [0, 1]
    assert recording.recording_index == 0


def test_a_segment_arriving_while_the_recording_finishes_is_not_joined_to_it(
    store: RecordingStore, record: StartRecord
) -> None:
    # The recorder marks the item finishing (a top-level flag) before it assembles the WAVs:
    # audio registered after that cannot be in them.
    store.register(record)
    boto3.client("dynamodb").update_item(
        TableName=store._table,
        Key={"contact_id": {"S": record.contact_id}},
        UpdateExpression="SET finishing = :true",
        ExpressionAttributeValues={":true": {"BOOL": True}},
    )

    assert store.register(restarted(record)) is Registration.FURTHER


def test_an_item_registered_before_segments_existed_gets_both_segments(
    store: RecordingStore, record: StartRecord, clock: Clock
) -> None:
    # Given an item as the previous version wrote it (no segments, no interaction)
    boto3.client("dynamodb").put_item(
        TableName=store._table,
        Item={
            "contact_id": {"S": record.contact_id},
            "status": {"S": "RECORDING"},
            "active": {"S": "1"},
            "start_record": {"S": record.to_json().decode()},
            "stream_arn": {"S": record.stream_arn},
            "generation": {"N": "3"},
            "lease_owner": {"S": "-"},
            "lease_expires_at": {"N": "0"},
            "registered_at": {"N": str(int(clock.now))},
            "updated_at": {"N": str(int(clock.now))},
            "expires_at": {"N": str(int(clock.now) + 86400)},
        },
    )
    legacy = store.get(record.contact_id)
    assert legacy is not None
    assert [s.start_fragment_number for s in legacy.segments] == [record.start_fragment_number]

    assert store.register(record) is Registration.DUPLICATE
    assert store.register(restarted(record)) is Registration.SEGMENT_ADDED

    recording = store.get(record.contact_id)
    assert recording is not None
    assert [s.start_fragment_number for s in recording.segments] == [
        record.start_fragment_number,
        RESTART_FRAGMENT,
    ]
    assert recording.initial_contact_id == record.initial_contact_id  # now in the index
    assert raw_item(store, record.contact_id)["segment_count"] == {"N": "2"}


def test_segments_registered_at_once_are_all_kept(
    store: RecordingStore, record: StartRecord
) -> None:
    # Given several restarts whose records reach two shards' batches at the same moment
    store.register(record)
    restarts = [
        dataclasses.replace(
            record,
            start_fragment_number=str(int(RESTART_FRAGMENT) + n),
            start_timestamp_ms=record.start_timestamp_ms + (n + 1) * 60_000,
        )
        for n in range(6)
    ]

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(store.register, restarts))

    assert outcomes == [Registration.SEGMENT_ADDED] * 6
    recording = store.get(record.contact_id)
    assert recording is not None
    assert len(recording.segments) == 7
    assert raw_item(store, record.contact_id)["segment_count"] == {"N": "7"}


def test_a_transferred_contact_is_registered_with_its_interaction(
    store: RecordingStore, record: StartRecord
) -> None:
    transferred = dataclasses.replace(
        record,
        contact_id=str(uuid.uuid4()),
        previous_contact_id=record.contact_id,
        initiation_method="TRANSFER",
    )

    assert store.register(transferred) is Registration.NEW

    item = raw_item(store, transferred.contact_id)
    assert item["initial_contact_id"] == {"S": record.contact_id}
    assert item["previous_contact_id"] == {"S": record.contact_id}
    store.register(record)
    assert "previous_contact_id" not in raw_item(store, record.contact_id)


def test_a_stop_for_an_item_registered_before_segments_existed_is_noted(
    store: RecordingStore, record: StartRecord, clock: Clock
) -> None:
    boto3.client("dynamodb").put_item(
        TableName=store._table,
        Item={
            "contact_id": {"S": record.contact_id},
            "status": {"S": "RECORDING"},
            "start_record": {"S": record.to_json().decode()},
            "stream_arn": {"S": record.stream_arn},
            "generation": {"N": "0"},
            "registered_at": {"N": str(int(clock.now))},
        },
    )
    stopped = dataclasses.replace(
        record,
        stop_fragment_number="91343852333181432392682062622220590765191907600",
        stop_timestamp_ms=record.start_timestamp_ms + 60_000,
    )

    assert store.register(stopped) is Registration.STOP_NOTED
    recording = store.get(record.contact_id)
    assert recording is not None
    (segment,) = recording.segments
    assert segment.stop_timestamp_ms == record.start_timestamp_ms + 60_000
