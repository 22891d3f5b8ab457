"""The recording's DynamoDB item: registration, the lease, checkpoints and the final status.

One item per contact (key `contact_id`). Its life:

- `register` creates it (status RECORDING) with a conditional put, so a start record delivered
  twice registers once. The item lists the contact's streaming segments (`segments`, a map
  keyed by StartFragmentNumber: stream, start, stop, which recording of the contact records
  it): a later start record with another StartFragmentNumber (the flow restarted media
  streaming and invoked the function again) adds a segment; a redelivery adds nothing. A
  segment that arrives after the recording finished belongs to a further recording of the
  contact (`recording` one more than the item's `recording_index`): it is kept on the item,
  and the recorder starts that recording (see docs/contact-lifecycle.md).
- The item carries `initial_contact_id` (the key of the sparse `interaction-recordings` index:
  the recordings of one customer interaction, in order of registration) and
  `previous_contact_id` for transferred contacts, and `disconnects` (contact id to epoch
  milliseconds): the disconnects Connect reported for the contacts of its interaction
  (interactions.py writes them).
- `acquire` takes the lease for one invocation: it bumps `generation` and sets
  `lease_expires_at`, on condition that nobody else holds an unexpired lease. The owner is the
  invocation's request id, and Lambda retries a failed or timed-out asynchronous invocation
  under the same request id ("If the duplicate invocations return an error or time out and
  have the same request ID, this indicates the Lambda service retried the function":
  https://repost.aws/knowledge-center/lambda-function-duplicate-invocations), only after the
  attempt it retries has ended: so the retry of a killed invocation takes its own lease back at
  once rather than waiting for it to expire. Every later write
  (`checkpoint`, `release`, `complete`, `fail`) is conditional on that generation, so a stale,
  duplicate or racing invocation can never overwrite newer progress: it gets `LeaseLost`.
- While RECORDING the item carries `active`, the key of the sparse index that the sweeper
  reads to find recordings whose lease expired without a hand-off (a lost link in the chain).
- `reset` (`callrec rerecord`) turns a finished or stalled recording back into the item
  `register` wrote, under a new generation, so that the call is recorded again from its start
  and no stale invocation can write to it; it counts `rerecords` and notes `rerecorded_at`.

The checkpoint itself is an opaque JSON document owned by the recorder; this module stores it
and knows nothing of its content.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from callrec.errors import CallrecError
from callrec.events import StartRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RECORDING = "RECORDING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
ACTIVE = "1"
ACTIVE_INDEX = "active-recordings"
# Sparse: every item registered since contacts carry it (hash initial_contact_id, range
# registered_at), keys only.
INTERACTION_INDEX = "interaction-recordings"
# Attempts at adding a segment when the item changes between reading and writing it.
REGISTER_ATTEMPTS = 4
# The lease owner of a recording nobody has taken yet (just registered, or just handed off):
# any invocation may take it at once; the sweeper waits until its grace period has passed.
UNCLAIMED = "-"


class RecordingStoreError(CallrecError):
    """DynamoDB refused or failed a request about a recording."""


class LeaseLost(CallrecError):
    """Another invocation holds or has taken the recording: this one must stop writing."""


class NotRecording(CallrecError):
    """The recording does not exist or is already COMPLETED or FAILED."""


class UnknownRecording(CallrecError):
    """No recording was ever registered for the contact."""


class RecordingInProgress(CallrecError):
    """The recording is RECORDING under a live lease: an invocation is recording it now."""


class Registration(enum.Enum):
    """What `register` made of a start record."""

    NEW = "new"  # the contact's first segment: a recording to start
    DUPLICATE = "duplicate"  # a segment already on the item (a redelivery): nothing to do
    STOP_NOTED = "stop-noted"  # a known segment, now with its stop (flow invoked after Stop)
    SEGMENT_ADDED = "segment-added"  # another segment of the recording in progress
    FURTHER = "further"  # a segment after the recording finished: a further recording

    @property
    def starts_recording(self) -> bool:
        """Whether a recorder invocation must be started for it now."""
        return self is Registration.NEW


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of media streaming of the contact, as its start record told it."""

    stream_arn: str
    start_fragment_number: str
    start_timestamp_ms: int
    registered_at: int
    # Which recording of the contact records it (0 the first; see `Recording.recording_index`).
    recording: int = 0
    stop_fragment_number: str | None = None
    stop_timestamp_ms: int | None = None

    @classmethod
    def of(cls, record: StartRecord, *, registered_at: int, recording: int) -> Segment:
        return cls(
            stream_arn=record.stream_arn,
            start_fragment_number=record.start_fragment_number,
            start_timestamp_ms=record.start_timestamp_ms,
            registered_at=registered_at,
            recording=recording,
            stop_fragment_number=record.stop_fragment_number,
            stop_timestamp_ms=record.stop_timestamp_ms,
        )

    def to_attribute(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "stream_arn": {"S": self.stream_arn},
            "start_fragment_number": {"S": self.start_fragment_number},
            "start_timestamp_ms": {"N": str(self.start_timestamp_ms)},
            "registered_at": {"N": str(self.registered_at)},
            "recording": {"N": str(self.recording)},
        }
        if self.stop_fragment_number is not None:
            fields["stop_fragment_number"] = {"S": self.stop_fragment_number}
        if self.stop_timestamp_ms is not None:
            fields["stop_timestamp_ms"] = {"N": str(self.stop_timestamp_ms)}
        return {"M": fields}

    @classmethod
    def from_attribute(cls, value: Mapping[str, Any]) -> Segment:
        fields = value["M"]
        stop_ms = fields.get("stop_timestamp_ms", {}).get("N")
        return cls(
            stream_arn=fields["stream_arn"]["S"],
            start_fragment_number=fields["start_fragment_number"]["S"],
            start_timestamp_ms=int(fields["start_timestamp_ms"]["N"]),
            registered_at=int(fields["registered_at"]["N"]),
            recording=int(fields.get("recording", {}).get("N", "0")),
            stop_fragment_number=fields.get("stop_fragment_number", {}).get("S"),
            stop_timestamp_ms=None if stop_ms is None else int(stop_ms),
        )


@dataclass(frozen=True, slots=True)
class Lease:
    """This invocation's hold on one recording."""

    contact_id: str
    generation: int
    owner: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class Recording:
    """What the item says, as the recorder needs it."""

    contact_id: str
    status: str
    start_record: StartRecord
    generation: int
    checkpoint: Mapping[str, Any] | None
    lease_expires_at: int
    lease_owner: str | None = None
    # What `finish` stored (None or empty while RECORDING), for the operator's summary.
    reason: str | None = None
    start: str | None = None
    duration_seconds: float | None = None
    keys: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    gaps_filled: int = 0
    rerecords: int = 0
    # What the recording replaced by the last rerecord said (None if it had no audio).
    previous_start: str | None = None
    previous_duration_seconds: float | None = None
    previous_keys: Mapping[str, str] = field(default_factory=dict)
    # The contact's interaction and streaming segments (items registered before they existed
    # have one segment, read from the start record).
    initial_contact_id: str | None = None
    previous_contact_id: str | None = None
    segments: tuple[Segment, ...] = ()
    recording_index: int = 0
    disconnects: Mapping[str, int] = field(default_factory=dict)

    @property
    def own_disconnect_ms(self) -> int | None:
        """When Connect says this contact disconnected (epoch ms), if it has said so."""
        return self.disconnects.get(self.contact_id)

    def lease_is_live(self, now: float) -> bool:
        """True while an invocation holds, or is about to take, this RECORDING recording."""
        return self.status == RECORDING and self.lease_expires_at > now

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Recording:
        """From a DynamoDB item in the low-level client's attribute-value form."""
        checkpoint = item.get("checkpoint", {}).get("S")
        duration = item.get("duration_seconds", {}).get("N")
        previous_duration = item.get("previous_duration_seconds", {}).get("N")
        start_record = StartRecord.from_json(item["start_record"]["S"])
        registered_at = int(item.get("registered_at", {}).get("N", "0"))
        return cls(
            contact_id=item["contact_id"]["S"],
            status=item["status"]["S"],
            start_record=start_record,
            generation=int(item["generation"]["N"]),
            checkpoint=json.loads(checkpoint) if checkpoint else None,
            lease_expires_at=int(item.get("lease_expires_at", {}).get("N", "0")),
            lease_owner=item.get("lease_owner", {}).get("S"),
            reason=item.get("reason", {}).get("S"),
            start=item.get("start", {}).get("S"),
            duration_seconds=None if duration is None else float(duration),
            keys={k: v["S"] for k, v in item.get("keys", {}).get("M", {}).items()},
            warnings=tuple(w["S"] for w in item.get("warnings", {}).get("L", [])),
            gaps_filled=int(item.get("gaps_filled", {}).get("N", "0")),
            rerecords=int(item.get("rerecords", {}).get("N", "0")),
            previous_start=item.get("previous_start", {}).get("S"),
            previous_duration_seconds=(
                None if previous_duration is None else float(previous_duration)
            ),
            previous_keys={
                k: v["S"] for k, v in item.get("previous_keys", {}).get("M", {}).items()
            },
            initial_contact_id=item.get("initial_contact_id", {}).get("S"),
            previous_contact_id=item.get("previous_contact_id", {}).get("S"),
            segments=tuple(
                sorted(
                    segments_of(item, start_record, registered_at).values(),
                    key=lambda segment: (segment.start_timestamp_ms, segment.start_fragment_number),
                )
            ),
            recording_index=int(item.get("recording_index", {}).get("N", "0")),
            disconnects={
                k: int(v["N"]) for k, v in item.get("disconnects", {}).get("M", {}).items()
            },
        )


def segments_of(
    item: Mapping[str, Any], start_record: StartRecord, registered_at: int
) -> dict[str, Segment]:
    """The item's segments by start fragment number; an item registered before segments
    existed has one, its start record's."""
    if "segments" in item:
        return {k: Segment.from_attribute(v) for k, v in item["segments"]["M"].items()}
    first = Segment.of(start_record, registered_at=registered_at, recording=0)
    return {first.start_fragment_number: first}


# What `register` writes that describes the call itself: `reset` keeps these and rewrites or
# removes every other attribute (checkpoint, result, images), whatever `finish` stored.
CALL_ATTRIBUTES = frozenset(
    {
        "contact_id",
        "start_record",
        "stream_arn",
        "registered_at",
        "expires_at",
        "initial_contact_id",
        "previous_contact_id",
        "segments",
        "segment_count",
        "recording_index",
        "disconnects",
    }
)


class RecordingStore:
    """The recordings table."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        *,
        retention_days: int = 365,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table_name
        self._client = client
        self._retention_s = retention_days * 86400
        self._clock = clock

    def register(self, record: StartRecord, *, grace_seconds: int = 60) -> Registration:
        """Register a start record: a new recording, or one more segment of the contact's.

        A new recording is unclaimed: the invocation started for it may take it at once, and
        the sweeper resumes it only if nothing has after `grace_seconds`. A record whose
        StartFragmentNumber is already a segment of the item is a redelivery (DUPLICATE), or
        brings that segment's stop (STOP_NOTED). Another StartFragmentNumber is a new segment:
        of the recording in progress while it is RECORDING and not yet finishing, otherwise
        of a further recording of the contact (FURTHER).
        """
        now = int(self._clock())
        segment = Segment.of(record, registered_at=now, recording=0)
        item: dict[str, Any] = {
            "contact_id": {"S": record.contact_id},
            "status": {"S": RECORDING},
            "active": {"S": ACTIVE},
            "start_record": {"S": record.to_json().decode()},
            "stream_arn": {"S": record.stream_arn},
            "initial_contact_id": {"S": record.initial_contact_id},
            "segments": {"M": {segment.start_fragment_number: segment.to_attribute()}},
            "segment_count": {"N": "1"},
            "recording_index": {"N": "0"},
            "disconnects": {"M": {}},
            "generation": {"N": "0"},
            "lease_owner": {"S": UNCLAIMED},
            "lease_expires_at": {"N": str(now + grace_seconds)},
            "registered_at": {"N": str(now)},
            "updated_at": {"N": str(now)},
            "expires_at": {"N": str(now + self._retention_s)},
        }
        if record.previous_contact_id is not None:
            item["previous_contact_id"] = {"S": record.previous_contact_id}
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(contact_id)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise RecordingStoreError(
                    f"contact {record.contact_id}: cannot register the recording: {exc}"
                ) from exc
            old: dict[str, Any] = dict(exc.response.get("Item") or {})  # type: ignore[call-overload]
            return self._add_segment(record, old, now)
        return Registration.NEW

    def _add_segment(self, record: StartRecord, old: dict[str, Any], now: int) -> Registration:
        """The item exists: note the record's segment on it, if it is news."""
        for _ in range(REGISTER_ATTEMPTS):
            if not old:  # the refused put did not return the item: read it
                old = self._read(record.contact_id) or {}
                if not old:
                    raise RecordingStoreError(
                        f"contact {record.contact_id}: the recording vanished while a start "
                        "record was being registered"
                    )
            outcome = self._try_add_segment(record, old, now)
            if outcome is not None:
                return outcome
            old = self._read(record.contact_id) or {}
        raise RecordingStoreError(
            f"contact {record.contact_id}: segment {record.segment_key} not registered: the "
            f"recording changed under each of {REGISTER_ATTEMPTS} attempts"
        )

    def _try_add_segment(
        self, record: StartRecord, old: dict[str, Any], now: int
    ) -> Registration | None:
        """One conditional write of the segment; None if the item changed meanwhile."""
        stored = Recording.from_item(old)
        known = {s.start_fragment_number: s for s in stored.segments}.get(record.segment_key)
        if known is not None:
            if record.stop_fragment_number is None or known.stop_fragment_number is not None:
                return Registration.DUPLICATE
            stopped = Segment.of(
                record, registered_at=known.registered_at, recording=known.recording
            )
            values: dict[str, Any] = {":segment": stopped.to_attribute(), ":now": {"N": str(now)}}
            if "segments" in old:
                update = "SET #segs.#k = :segment, updated_at = :now"
                condition = "attribute_exists(#segs.#k)"
            else:  # registered before segments existed: its one segment, with the stop
                values = {
                    ":segments": {"M": {stopped.start_fragment_number: stopped.to_attribute()}},
                    ":one": {"N": "1"},
                    ":now": {"N": str(now)},
                }
                update = "SET #segs = :segments, segment_count = :one, updated_at = :now"
                condition = "attribute_not_exists(#segs)"
            written = self._write_segment(record, update, condition, values)
            return Registration.STOP_NOTED if written else None
        # A segment joins the recording in progress until it starts finishing (the recorder
        # sets the top-level `finishing` flag first: audio registered after that cannot be in
        # its WAVs); after that it belongs to the contact's next recording.
        finishing = bool(old.get("finishing", {}).get("BOOL", False))
        joins = stored.status == RECORDING and not finishing
        index = stored.recording_index if joins else stored.recording_index + 1
        segment = Segment.of(record, registered_at=now, recording=index)
        values = {
            ":now": {"N": str(now)},
            ":status": {"S": stored.status},
            ":finishing": {"BOOL": finishing},
            ":initial": {"S": record.initial_contact_id},
        }
        # Guarded by what decided the segment's recording: the status and the flag.
        guard = "#st = :status AND " + (
            "finishing = :finishing"
            if finishing
            else "(attribute_not_exists(finishing) OR finishing = :finishing)"
        )
        sets = "initial_contact_id = if_not_exists(initial_contact_id, :initial), updated_at = :now"
        if "segments" in old:
            values |= {":segment": segment.to_attribute(), ":one": {"N": "1"}}
            update = f"SET #segs.#k = :segment, {sets} ADD segment_count :one"
            condition = f"attribute_not_exists(#segs.#k) AND {guard}"
        else:
            # Registered before segments existed: its first segment, read from the start
            # record, is written with the new one.
            (first,) = stored.segments
            values[":segments"] = {
                "M": {
                    first.start_fragment_number: first.to_attribute(),
                    segment.start_fragment_number: segment.to_attribute(),
                }
            }
            values[":two"] = {"N": "2"}
            update = f"SET #segs = :segments, segment_count = :two, {sets}"
            condition = f"attribute_not_exists(#segs) AND {guard}"
        if not self._write_segment(record, update, condition, values):
            return None
        return Registration.SEGMENT_ADDED if joins else Registration.FURTHER

    def _write_segment(
        self, record: StartRecord, update: str, condition: str, values: dict[str, Any]
    ) -> bool:
        """The conditional update of a segment; False if its condition failed."""
        # "segments" and "status" are DynamoDB reserved words.
        names = {"#segs": "segments", "#k": record.segment_key, "#st": "status"}
        used = {name: value for name, value in names.items() if name in f"{update} {condition}"}
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"contact_id": {"S": record.contact_id}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=used,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise RecordingStoreError(
                f"contact {record.contact_id}: cannot register segment {record.segment_key}: {exc}"
            ) from exc
        return True

    def get(self, contact_id: str) -> Recording | None:
        """The recording, read consistently; None if it was never registered."""
        item = self._read(contact_id)
        return None if item is None else Recording.from_item(item)

    def _read(self, contact_id: str) -> dict[str, Any] | None:
        """The recording's item, read consistently; None if it was never registered."""
        try:
            response = self._client.get_item(
                TableName=self._table, Key={"contact_id": {"S": contact_id}}, ConsistentRead=True
            )
        except ClientError as exc:
            raise RecordingStoreError(
                f"contact {contact_id}: cannot read the recording: {exc}"
            ) from exc
        item = response.get("Item")
        return None if item is None else dict(item)

    def acquire(self, contact_id: str, owner: str, lease_seconds: int) -> tuple[Lease, Recording]:
        """Take the lease of a RECORDING whose lease is free or expired.

        Raises `LeaseLost` if another invocation holds an unexpired lease and `NotRecording`
        if the recording is missing or already finished. An `owner` already holding the lease
        (Lambda's retry of an attempt that died) takes it again: the generation still goes up,
        so whatever the earlier attempt might still write is refused.
        """
        now = int(self._clock())
        expires = now + lease_seconds
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"contact_id": {"S": contact_id}},
                UpdateExpression=(
                    "SET generation = generation + :one, lease_owner = :owner, "
                    "lease_expires_at = :expires, updated_at = :now"
                ),
                ConditionExpression=(
                    "#status = :recording AND (lease_expires_at <= :now "
                    "OR lease_owner = :unclaimed OR lease_owner = :owner)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":owner": {"S": owner},
                    ":expires": {"N": str(expires)},
                    ":now": {"N": str(now)},
                    ":recording": {"S": RECORDING},
                    ":unclaimed": {"S": UNCLAIMED},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise RecordingStoreError(
                    f"contact {contact_id}: cannot take the lease: {exc}"
                ) from exc
            old: dict[str, Any] = dict(exc.response.get("Item") or {})  # type: ignore[call-overload]
            if not old or old["status"]["S"] != RECORDING:
                status = old["status"]["S"] if old else "not registered"
                raise NotRecording(f"contact {contact_id}: recording is {status}") from None
            raise LeaseLost(
                f"contact {contact_id}: lease held by {old.get('lease_owner', {}).get('S')} "
                f"until {old['lease_expires_at']['N']} (now {now})"
            ) from None
        recording = Recording.from_item(response["Attributes"])
        return Lease(contact_id, recording.generation, owner, expires), recording

    def checkpoint(
        self, lease: Lease, checkpoint: Mapping[str, Any], *, lease_seconds: int | None = None
    ) -> Lease:
        """Store progress; optionally extend the lease. Raises `LeaseLost` if superseded."""
        now = int(self._clock())
        expires = lease.expires_at if lease_seconds is None else now + lease_seconds
        self._conditional_update(
            lease,
            "SET checkpoint = :checkpoint, lease_expires_at = :expires, updated_at = :now",
            {
                ":checkpoint": {"S": _dump(checkpoint)},
                ":expires": {"N": str(expires)},
                ":now": {"N": str(now)},
            },
            what="checkpoint",
        )
        return Lease(lease.contact_id, lease.generation, lease.owner, expires)

    def release(
        self, lease: Lease, checkpoint: Mapping[str, Any], *, grace_seconds: int = 60
    ) -> None:
        """Store progress and leave the recording unclaimed for the next invocation to take;
        the sweeper resumes it if nothing has after `grace_seconds`."""
        now = int(self._clock())
        self._conditional_update(
            lease,
            "SET checkpoint = :checkpoint, lease_owner = :unclaimed, "
            "lease_expires_at = :expires, updated_at = :now",
            {
                ":checkpoint": {"S": _dump(checkpoint)},
                ":unclaimed": {"S": UNCLAIMED},
                ":expires": {"N": str(now + grace_seconds)},
                ":now": {"N": str(now)},
            },
            what="release",
        )

    def finish(
        self,
        lease: Lease,
        status: str,
        result: Mapping[str, Any],
        checkpoint: Mapping[str, Any],
        *,
        reason: str | None = None,
    ) -> None:
        """Mark the recording COMPLETED or FAILED with its result (keys, duration, counts).

        Takes the recording off the sweeper's index: nothing resumes it after this.
        """
        if status not in (COMPLETED, FAILED):
            raise ValueError(f"finish: status must be {COMPLETED} or {FAILED}, not {status!r}")
        now = int(self._clock())
        names = {"#status": "status"}
        values: dict[str, Any] = {
            ":status": {"S": status},
            ":checkpoint": {"S": _dump(checkpoint)},
            ":now": {"N": str(now)},
        }
        sets = [
            "#status = :status",
            "checkpoint = :checkpoint",
            "updated_at = :now",
            "finished_at = :now",
        ]
        # The result's fields (keys, start, duration_seconds, ...) become top-level attributes:
        # that is where `callrec urls` and the console look for them.
        for index, (name, value) in enumerate(sorted({**result, "reason": reason}.items())):
            if value is None:
                continue
            names[f"#r{index}"] = name
            values[f":r{index}"] = _to_attribute(value)
            sets.append(f"#r{index} = :r{index}")
        update = "SET " + ", ".join(sets) + " REMOVE active, lease_owner"
        self._conditional_update(lease, update, values, what=status.lower(), names=names)

    def reset(self, contact_id: str, *, grace_seconds: int = 60) -> Recording:
        """Make a recording new again, to be recorded from the call's start; returns it.

        The item becomes what `register` wrote (status RECORDING, unclaimed for
        `grace_seconds`, no checkpoint, no result, no images) under the next generation, so
        every write of an invocation still holding an older lease fails with `LeaseLost`. The
        call's own attributes (start record, stream, registration time, TTL) are kept;
        `rerecords` counts the resets, `rerecorded_at` says when the last one was made, and
        `previous_start`, `previous_duration_seconds` and `previous_keys` what the replaced
        recording said.

        Raises `UnknownRecording` if the contact was never registered, `RecordingInProgress`
        if it is RECORDING under a live lease, and `LeaseLost` if the item changed between
        reading and resetting it (another reset won, or an invocation took the lease).
        """
        item = self._read(contact_id)
        if item is None:
            raise UnknownRecording(
                f"no recording of contact {contact_id} in table {self._table}"
            ) from None
        now = int(self._clock())
        current = Recording.from_item(item)
        sets: dict[str, Any] = {
            "status": {"S": RECORDING},
            "active": {"S": ACTIVE},
            "generation": {"N": str(current.generation + 1)},
            "lease_owner": {"S": UNCLAIMED},
            "lease_expires_at": {"N": str(now + grace_seconds)},
            "updated_at": {"N": str(now)},
            "rerecorded_at": {"N": str(now)},
            "rerecords": {"N": str(current.rerecords + 1)},
        }
        # Kept to compare with: a stream that no longer holds the whole call gives less.
        if "start" in item and "duration_seconds" in item:
            sets["previous_start"] = item["start"]
            sets["previous_duration_seconds"] = item["duration_seconds"]
        if "keys" in item:
            sets["previous_keys"] = item["keys"]
        # Images too: the spectrum function adds them again for the new WAVs.
        removed = sorted((set(item) | {"spectrogram_keys"}) - CALL_ATTRIBUTES - set(sets))
        names = {f"#s{n}": name for n, name in enumerate(sets)}
        names |= {f"#x{n}": name for n, name in enumerate(removed)}
        values = {f":s{n}": value for n, value in enumerate(sets.values())}
        update = "SET " + ", ".join(f"#s{n} = :s{n}" for n in range(len(sets)))
        if removed:
            update += " REMOVE " + ", ".join(f"#x{n}" for n in range(len(removed)))
        try:
            updated = self._client.update_item(
                TableName=self._table,
                Key={"contact_id": {"S": contact_id}},
                UpdateExpression=update,
                # Exactly the item read, and no live lease: a concurrent reset or acquire bumps
                # the generation, a finish changes the status, a checkpoint extends the lease.
                ConditionExpression=(
                    "generation = :generation AND #st = :status "
                    "AND (#st <> :recording OR lease_expires_at <= :now)"
                ),
                ExpressionAttributeNames={"#st": "status", **names},
                ExpressionAttributeValues={
                    **values,
                    ":generation": {"N": str(current.generation)},
                    ":status": {"S": current.status},
                    ":recording": {"S": RECORDING},
                    ":now": {"N": str(now)},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise RecordingStoreError(
                    f"contact {contact_id}: cannot reset the recording: {exc}"
                ) from exc
            old: dict[str, Any] = dict(exc.response.get("Item") or {})  # type: ignore[call-overload]
            if not old:
                raise UnknownRecording(
                    f"no recording of contact {contact_id} in table {self._table}"
                ) from None
            changed = Recording.from_item(old)
            if changed.lease_is_live(now):
                raise RecordingInProgress(_in_progress(changed, now)) from None
            raise LeaseLost(
                f"contact {contact_id}: reset refused: the recording changed while it was being "
                f"reset (generation {current.generation} {current.status}, now generation "
                f"{changed.generation} {changed.status}); another rerecord may have won"
            ) from None
        return Recording.from_item(updated["Attributes"])

    def expired_leases(self, limit: int = 100) -> Iterator[str]:
        """Contact ids of RECORDING recordings whose lease has expired, oldest first."""
        now = int(self._clock())
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table,
            IndexName=ACTIVE_INDEX,
            KeyConditionExpression="active = :active AND lease_expires_at <= :now",
            ExpressionAttributeValues={":active": {"S": ACTIVE}, ":now": {"N": str(now)}},
            PaginationConfig={"MaxItems": limit},
        )
        for page in pages:
            for item in page.get("Items", []):
                yield item["contact_id"]["S"]

    def _conditional_update(
        self,
        lease: Lease,
        update: str,
        values: dict[str, Any],
        *,
        what: str,
        names: dict[str, str] | None = None,
    ) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"contact_id": {"S": lease.contact_id}},
                UpdateExpression=update,
                ConditionExpression="generation = :generation AND #st = :recording",
                ExpressionAttributeNames={"#st": "status", **(names or {})},
                ExpressionAttributeValues={
                    **values,
                    ":generation": {"N": str(lease.generation)},
                    ":recording": {"S": RECORDING},
                },
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise LeaseLost(
                    f"contact {lease.contact_id}: {what} refused: generation "
                    f"{lease.generation} is no longer current"
                ) from None
            raise RecordingStoreError(f"contact {lease.contact_id}: {what} failed: {exc}") from exc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _in_progress(recording: Recording, now: int) -> str:
    holder = (
        "waiting for its next invocation"
        if recording.lease_owner == UNCLAIMED
        else f"lease held by {recording.lease_owner}"
    )
    return (
        f"contact {recording.contact_id} is being recorded right now (status {RECORDING}, "
        f"{holder} for {recording.lease_expires_at - now} s more): wait until it is "
        f"{COMPLETED} or {FAILED}, or until its lease expires"
    )


def _dump(checkpoint: Mapping[str, Any]) -> str:
    return json.dumps(checkpoint, separators=(",", ":"), sort_keys=True)


def _to_attribute(value: Any) -> dict[str, Any]:
    """A plain JSON-like value as a DynamoDB attribute value (maps, lists, str, int, float)."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": repr(value)}
    if isinstance(value, str):
        return {"S": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, Mapping):
        return {"M": {str(k): _to_attribute(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [_to_attribute(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__} in a recording item")
