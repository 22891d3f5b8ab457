"""Rerecording: the recording item reset under a new generation (moto, in process), the
recorder started as registration starts it, the wait and its summary, the command's errors."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from callrec import cli
from callrec.events import StartRecord, start_record_from_contact_flow
from callrec.handoff import HandOffError
from callrec.recordings import (
    COMPLETED,
    FAILED,
    RECORDING,
    UNCLAIMED,
    LeaseLost,
    RecordingInProgress,
    RecordingStore,
    UnknownRecording,
)
from callrec.rerecord import RERECORD_REASON, RerecordTimeout, rerecord, summary, wait_finished
from tests.support import in_process_aws, load_event

TABLE = "recordings-unit"
FINISHED_RESULT: dict[str, Any] = {
    "keys": {
        "cu": "recordings/2026/07/01/c/20260701T130414Z-cu.wav",
        "op": "recordings/2026/07/01/c/20260701T130414Z-op.wav",
        "stereo": "recordings/2026/07/01/c/20260701T130414Z-stereo.wav",
    },
    "start": "2026-07-01T13:04:14Z",
    "duration_seconds": 12.5,
    "sample_rate": 8000,
    "fragments": 7,
    "first_fragment_number": "9134385233318143239268206262222059076519190758",
    "last_fragment_number": "9134385233318143239268206262222059076519190799",
    "skipped_fragments": 0,
    "handoffs": 1,
    "warnings": [],
    "gaps_filled": 0,
    "duplicates_dropped": 0,
}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeInvoker:
    """handoff.Invoker's one method; records what it was asked to start."""

    def __init__(self, error: HandOffError | None = None) -> None:
        self.started: list[tuple[str, str]] = []
        self.error = error

    def start(self, contact_id: str, *, reason: str) -> None:
        if self.error is not None:
            raise self.error
        self.started.append((contact_id, reason))


class RacingClient:
    """A DynamoDB client that runs `race` just before forwarding the first update_item: what
    another process would do between the reset's read and its conditional write."""

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
    """moto in this process, with dummy credentials and no endpoint or profile of anyone's."""
    with in_process_aws(monkeypatch, TABLE):
        yield


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(aws: None, clock: Clock) -> RecordingStore:
    return RecordingStore(TABLE, boto3.client("dynamodb"), clock=clock)


@pytest.fixture
def record() -> StartRecord:
    return start_record_from_contact_flow(load_event("contact-flow-event.json"))


def item(contact_id: str) -> dict[str, Any]:
    got = boto3.client("dynamodb").get_item(
        TableName=TABLE, Key={"contact_id": {"S": contact_id}}, ConsistentRead=True
    )
    return dict(got["Item"])


def finished(store: RecordingStore, record: StartRecord, clock: Clock, status: str) -> None:
    """A recording registered, recorded, finished, and given its images, as in production."""
    store.register(record, grace_seconds=5)
    lease, _ = store.acquire(record.contact_id, "recording", lease_seconds=15)
    store.checkpoint(
        lease, {"continuation_token": "91343852333181432392682062622220590765191907599"}
    )
    store.finish(
        lease,
        status,
        FINISHED_RESULT,
        {"finishing": True},
        reason=None if status == COMPLETED else "KVS error chunk 4000",
    )
    boto3.client("dynamodb").update_item(
        TableName=TABLE,
        Key={"contact_id": {"S": record.contact_id}},
        UpdateExpression="ADD spectrogram_keys :keys",
        ExpressionAttributeValues={":keys": {"SS": ["spectrograms/x-cu.png"]}},
    )
    clock.now += 3600


@pytest.mark.parametrize("status", [COMPLETED, FAILED])
def test_a_finished_recording_is_reset_to_what_registration_wrote(
    store: RecordingStore, record: StartRecord, clock: Clock, status: str
) -> None:
    # Given a finished recording, with its result, checkpoint and images on the item
    finished(store, record, clock, status)
    before = item(record.contact_id)

    # When it is reset
    recording = store.reset(record.contact_id, grace_seconds=30)

    # Then it is a fresh, unclaimed recording under the next generation, counted as a rerecord
    after = item(record.contact_id)
    assert recording.status == RECORDING
    assert recording.generation == int(before["generation"]["N"]) + 1
    assert recording.checkpoint is None
    assert recording.rerecords == 1
    assert after["status"] == {"S": RECORDING}
    assert after["active"] == {"S": "1"}
    assert after["lease_owner"] == {"S": UNCLAIMED}
    assert after["lease_expires_at"] == {"N": str(int(clock.now) + 30)}
    assert after["rerecorded_at"] == {"N": str(int(clock.now))}
    # with the call's own attributes kept and nothing of the old recording left
    call = (
        "contact_id",
        "start_record",
        "stream_arn",
        "registered_at",
        "expires_at",
        # the interaction and the streaming segments describe the call, not a recording of it
        "initial_contact_id",
        "segments",
        "segment_count",
        "recording_index",
        "disconnects",
    )
    for kept in call:
        assert after[kept] == before[kept], kept
    assert set(after) == {
        *call,
        "status",
        "active",
        "generation",
        "lease_owner",
        "lease_expires_at",
        "updated_at",
        "rerecorded_at",
        "rerecords",
        "previous_start",
        "previous_duration_seconds",
        "previous_keys",
    }
    assert recording.previous_keys == FINISHED_RESULT["keys"]
    assert (recording.previous_start, recording.previous_duration_seconds) == (
        "2026-07-01T13:04:14Z",
        12.5,
    )
    # And the recorder takes it at once, from the start of the call
    _, taken = store.acquire(record.contact_id, "rerecording", lease_seconds=15)
    assert taken.checkpoint is None
    assert taken.start_record == record


def test_rerecords_are_counted(store: RecordingStore, record: StartRecord, clock: Clock) -> None:
    finished(store, record, clock, COMPLETED)
    store.reset(record.contact_id, grace_seconds=30)
    lease, _ = store.acquire(record.contact_id, "rerecording", lease_seconds=15)
    store.finish(lease, COMPLETED, FINISHED_RESULT, {"finishing": True})
    clock.now += 16

    again = store.reset(record.contact_id)

    assert again.rerecords == 2
    assert store.get(record.contact_id) == again


def test_an_unknown_contact_is_named_with_the_table(store: RecordingStore) -> None:
    with pytest.raises(UnknownRecording, match=f"no recording of contact nobody in table {TABLE}"):
        store.reset("nobody")


def test_a_recording_under_a_live_lease_is_refused_and_left_alone(
    store: RecordingStore, record: StartRecord, clock: Clock
) -> None:
    # Given a recording an invocation is recording right now (lease for 15 s more)
    store.register(record, grace_seconds=5)
    lease, _ = store.acquire(record.contact_id, "live-invocation", lease_seconds=15)
    store.checkpoint(lease, {"position": 1})
    before = item(record.contact_id)
    clock.now += 14

    # When it is reset, Then it is refused, and the invocation goes on writing
    with pytest.raises(RecordingInProgress, match="being recorded right now") as refused:
        store.reset(record.contact_id)
    assert "live-invocation" in str(refused.value)
    assert item(record.contact_id) == before
    store.checkpoint(lease, {"position": 2})


def test_a_just_registered_recording_is_refused_during_its_grace_period(
    store: RecordingStore, record: StartRecord, clock: Clock
) -> None:
    store.register(record, grace_seconds=5)
    clock.now += 4

    with pytest.raises(RecordingInProgress, match="waiting for its next invocation"):
        store.reset(record.contact_id)


def test_a_stalled_recording_is_reset_and_its_stale_invocation_can_no_longer_write(
    store: RecordingStore, record: StartRecord, clock: Clock
) -> None:
    # Given a RECORDING whose invocation hung: its lease expired, it may still wake up
    store.register(record, grace_seconds=5)
    stale, _ = store.acquire(record.contact_id, "hung", lease_seconds=15)
    clock.now += 16

    # When it is reset
    store.reset(record.contact_id)

    # Then every write of the stale invocation is refused
    with pytest.raises(LeaseLost, match="no longer current"):
        store.checkpoint(stale, {"position": 99})
    with pytest.raises(LeaseLost):
        store.finish(stale, COMPLETED, FINISHED_RESULT, {"finishing": True})
    recording = store.get(record.contact_id)
    assert recording is not None
    assert (recording.status, recording.checkpoint) == (RECORDING, None)


def test_of_two_concurrent_rerecords_only_one_wins(
    store: RecordingStore, record: StartRecord, clock: Clock
) -> None:
    # Given a finished recording, and a rerecord whose write comes just after another's
    finished(store, record, clock, COMPLETED)
    other = RecordingStore(TABLE, boto3.client("dynamodb"), clock=clock)
    racing = RecordingStore(
        TABLE,
        RacingClient(boto3.client("dynamodb"), lambda: other.reset(record.contact_id)),  # type: ignore[arg-type]
        clock=clock,
    )

    # When both reset it, Then the later write is refused and the recording was reset once
    with pytest.raises(RecordingInProgress):
        racing.reset(record.contact_id)
    recording = store.get(record.contact_id)
    assert recording is not None
    assert recording.rerecords == 1


def test_a_reset_loses_to_an_invocation_that_takes_the_lease_first(
    store: RecordingStore, record: StartRecord, clock: Clock
) -> None:
    # Given a stalled recording, resumed by the sweeper between the reset's read and write
    store.register(record, grace_seconds=5)
    store.acquire(record.contact_id, "hung", lease_seconds=15)
    clock.now += 16
    racing = RecordingStore(
        TABLE,
        RacingClient(
            boto3.client("dynamodb"),
            lambda: store.acquire(record.contact_id, "resumed", lease_seconds=15),
        ),  # type: ignore[arg-type]
        clock=clock,
    )

    # Then the reset is refused: the resumed invocation is recording it right now
    with pytest.raises(RecordingInProgress, match="resumed"):
        racing.reset(record.contact_id)
    assert "rerecords" not in item(record.contact_id)


def test_a_reset_loses_to_a_finish_in_between(
    store: RecordingStore, record: StartRecord, clock: Clock
) -> None:
    # Given a recording that finishes between the reset's read and write (its lease expired
    # just as it wrote; the status changed, the generation did not)
    store.register(record, grace_seconds=5)
    lease, _ = store.acquire(record.contact_id, "slow", lease_seconds=15)
    clock.now += 16
    racing = RecordingStore(
        TABLE,
        RacingClient(
            boto3.client("dynamodb"),
            lambda: store.finish(lease, COMPLETED, FINISHED_RESULT, {"finishing": True}),
        ),  # type: ignore[arg-type]
        clock=clock,
    )

    # Then the reset is refused as a change, and the finished recording stands
    with pytest.raises(LeaseLost, match=r"changed while it was being reset.*COMPLETED"):
        racing.reset(record.contact_id)
    assert item(record.contact_id)["status"] == {"S": COMPLETED}


def test_rerecord_resets_then_starts_the_recorder_as_registration_does(
    store: RecordingStore, record: StartRecord, clock: Clock
) -> None:
    finished(store, record, clock, FAILED)
    invoker = FakeInvoker()

    done = rerecord(store, invoker, record.contact_id)  # type: ignore[arg-type]

    assert done.started
    assert done.recording.status == RECORDING
    assert invoker.started == [(record.contact_id, RERECORD_REASON)]


def test_a_refused_rerecord_starts_nothing(
    store: RecordingStore, record: StartRecord, clock: Clock
) -> None:
    store.register(record, grace_seconds=60)
    invoker = FakeInvoker()

    with pytest.raises(RecordingInProgress):
        rerecord(store, invoker, record.contact_id)  # type: ignore[arg-type]
    assert invoker.started == []


def test_a_failed_invocation_leaves_the_reset_for_the_sweeper(
    store: RecordingStore, record: StartRecord, clock: Clock
) -> None:
    finished(store, record, clock, COMPLETED)
    invoker = FakeInvoker(HandOffError("throttled"))

    done = rerecord(store, invoker, record.contact_id)  # type: ignore[arg-type]

    assert not done.started
    assert done.detail == "throttled"
    clock.now += 61
    assert list(store.expired_leases()) == [record.contact_id]


def test_wait_returns_the_finished_recording_and_times_out_on_a_running_one(
    store: RecordingStore, record: StartRecord, clock: Clock
) -> None:
    # Given a recording that finishes FAILED, with a warning, on the third poll
    store.register(record, grace_seconds=5)
    lease, _ = store.acquire(record.contact_id, "recording", lease_seconds=15)
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 2:
            store.finish(
                lease,
                FAILED,
                {**FINISHED_RESULT, "warnings": ["media lost (beyond the stream's retention)"]},
                {"finishing": True},
                reason="no audio of this contact was found on its stream",
            )

    # When waited for, Then the finished recording is returned with what went wrong
    done = wait_finished(
        store, record.contact_id, timeout_s=10, poll_s=0.5, monotonic=lambda: 0.0, sleep=sleep
    )
    assert polls == [0.5, 0.5]
    assert done.status == FAILED
    line = summary(done)
    assert line.startswith(f"FAILED, contact {record.contact_id}, 12.500 s, keys ")
    assert "reason: no audio of this contact was found on its stream" in line
    assert "warnings: media lost (beyond the stream's retention)" in line
    assert "\n" not in line

    # And one still recording times out, naming its status
    other = str(uuid.uuid4())
    store.register(
        StartRecord.from_json(record.to_json().replace(record.contact_id.encode(), other.encode()))
    )
    times = iter([0.0, 5.0, 10.0])
    with pytest.raises(RerecordTimeout, match="still RECORDING after 10 s"):
        wait_finished(
            store, other, timeout_s=10, monotonic=lambda: next(times), sleep=lambda _: None
        )


def test_summary_lists_the_wavs_customer_agent_stereo(
    store: RecordingStore, record: StartRecord, clock: Clock
) -> None:
    finished(store, record, clock, COMPLETED)
    recording = store.get(record.contact_id)
    assert recording is not None

    line = summary(recording)

    keys = FINISHED_RESULT["keys"]
    assert line == (
        f"COMPLETED, contact {record.contact_id}, 12.500 s, "
        f"keys {keys['cu']} {keys['op']} {keys['stereo']}, rerecords 0"
    )


# ------------------------------------------------------------------ the command


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(["rerecord", *argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_the_command_names_an_unknown_contact_and_its_table(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "nobody", "--table", TABLE, "--function", "recorder")

    assert status == 2
    assert out == ""
    assert err == f"callrec rerecord: no recording of contact nobody in table {TABLE}\n"


def test_the_command_refuses_a_live_recording(
    aws: None, record: StartRecord, capsys: pytest.CaptureFixture[str]
) -> None:
    RecordingStore(TABLE, boto3.client("dynamodb")).register(record, grace_seconds=60)

    status, _, err = run(capsys, record.contact_id, "--table", TABLE, "--function", "recorder")

    assert status == 2
    assert "is being recorded right now" in err
    assert "Traceback" not in err


def test_the_command_wants_both_names_or_neither(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "c-1", "--table", TABLE)

    assert status == 2
    assert "give both --table and --function" in err


def test_summary_says_when_the_new_recording_is_shorter_than_the_one_it_replaced(
    store: RecordingStore, record: StartRecord, clock: Clock
) -> None:
    # Given a recording rerecorded after KVS dropped the first seconds of the call
    finished(store, record, clock, COMPLETED)
    store.reset(record.contact_id)
    lease, _ = store.acquire(record.contact_id, "rerecording", lease_seconds=15)
    later = {k: v.replace("130414Z", "130418Z") for k, v in FINISHED_RESULT["keys"].items()}
    store.finish(
        lease,
        COMPLETED,
        {
            **FINISHED_RESULT,
            "keys": later,
            "start": "2026-07-01T13:04:18Z",
            "duration_seconds": 8.5,
        },
        {"finishing": True},
    )
    recording = store.get(record.contact_id)
    assert recording is not None

    # Then its summary says so
    line = summary(recording)

    assert line.startswith(f"COMPLETED, contact {record.contact_id}, 8.500 s, ")
    assert (
        "differs from the recording it replaced (12.500 s from 2026-07-01T13:04:14Z): "
        "the stream may no longer hold all of the call, the replaced WAVs remain at "
        + " ".join(sorted(FINISHED_RESULT["keys"].values()))
    ) in line
    assert line.endswith("rerecords 1")
