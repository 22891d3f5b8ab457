"""The recorder: register calls, record them across invocations, resume the stalled.

Three entry points, one per kind of invocation:

- `register` (Kinesis start records): a conditional write, then an asynchronous invocation
  that starts the recording. Never holds the stream trigger for the length of a call.
- `record` (that invocation, and each hand-off after it): take the lease, resume from the
  checkpoint, read the call from KVS, align, stage in S3, checkpoint, and either finish the
  recording or hand off to the next invocation before the timeout.
- `sweep` (every minute): start an invocation for every recording whose lease expired
  without a hand-off: an invocation that was killed, or a hand-off that was lost.

What a checkpoint holds, all taken at one fragment boundary: where to resume reading (the
continuation token of the last fragment whose audio is in the staged state), the contact
gate, the aligner, the staged S3 state and the counters. Audio is durable before the
checkpoint that covers it is written; the next invocation re-reads from KVS whatever came
after. Domain work (parsing, alignment) is in fragments.py and alignment.py; where to read
from and what GetMedia's responses, error chunks and cuts mean is in reading.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from callrec.alignment import BYTES_PER_SAMPLE, Aligned, Aligner, AlignmentError, StereoMuxer
from callrec.config import RecorderSettings
from callrec.ending import (
    CONTACT_CHANGE,
    IDLE,
    IDLE_CEILING,
    Directory,
    Disconnects,
    Ending,
    EndWatch,
)
from callrec.events import StartRecord
from callrec.fragments import ContactDecision, ContactGate, Fragment
from callrec.handoff import HandOffError, Invoker
from callrec.kvs import MediaError, MediaSource, StreamGone, Throttled
from callrec.mkv import MkvError
from callrec.reading import StreamReader
from callrec.recordings import COMPLETED, FAILED, LeaseLost, NotRecording, RecordingStore
from callrec.s3parts import COPY_WORKERS, OutputSpec, StagedRecording
from callrec.wav import recording_basename

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)

# GetMedia responses end after a few seconds without new data; pause briefly before
# asking again so an idle stream is not polled in a tight loop.
RECONNECT_PAUSE_S = 0.5
# Warnings kept on the item (an item is capped at 400 KB): the first distinct ones, each cut
# to a length; `warnings_total` counts them all.
MAX_WARNINGS = 20
MAX_WARNING_CHARS = 500
# The shortest lease. A lease is renewed at each checkpoint, so it must outlast what can come
# between two: restoring the staged state from S3, a checkpoint interval, one GetMedia read that
# blocks until KVS ends an idle response ("the reading of the HTTP response payload will
# timeout after 3 seconds if there are no ingested fragments available for playback", GetMedia
# reference, quoted in docs/operations.md), and the checkpoint's own S3 and DynamoDB writes. A
# lease shorter than that is taken over by the sweeper while its invocation is alive and well,
# and on a slow day every invocation loses its lease before its first checkpoint: the
# recording stops advancing. A killed invocation is not kept waiting by it: Lambda's retry takes
# the lease back at once (recordings.py), and the sweeper acts when the retries are spent.
LEASE_FLOOR_S = 15
# Invocations in a row that may take the lease without the recording advancing before it
# is declared FAILED (a poison stream or a bug must not be resumed forever).
MAX_RESUMES_WITHOUT_PROGRESS = 5
# Time an assembly may take (beyond the hand-off margin): a few round trips per output, and
# the part copies, COPY_WORKERS at a time, at a conservative half second each.
ASSEMBLY_BASE_S = 5.0
ASSEMBLY_SECONDS_PER_SEGMENT = 0.5 / COPY_WORKERS
# Why an invocation handed off (its outcome's detail).
TIMEOUT_HANDOFF = "the invocation's time is nearly up"
ASSEMBLY_HANDOFF = "the call is over; a fresh invocation assembles the WAVs"
STEREO_HELD = "stereo-held"


@dataclass(slots=True)
class Outcome:
    """What one `record` invocation did."""

    contact_id: str
    action: str  # "completed", "failed", "handed_off", "skipped"
    detail: str = ""
    fragments: int = 0
    recorded_seconds: float = 0.0
    gaps_filled: int = 0
    # How far behind live the last fragment read was (KVS's MILLIS_BEHIND_NOW), if known.
    read_lag_ms: int | None = None


@dataclass(slots=True)
class _Progress:
    """Counters kept in the checkpoint and reported in the final item."""

    fragments: int = 0
    first_fragment: str | None = None
    last_fragment: str | None = None
    skipped_fragments: int = 0
    media_lost: int = 0
    handoffs: int = 0
    warnings: list[str] = field(default_factory=list)
    warnings_total: int = 0

    def warn(self, text: str) -> None:
        """Keep a warning for the item: distinct ones, at most MAX_WARNINGS, each cut short."""
        self.warnings_total += 1
        if len(text) > MAX_WARNING_CHARS:
            text = text[: MAX_WARNING_CHARS - 3] + "..."
        if text not in self.warnings and len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(text)

    def to_json(self) -> dict[str, Any]:
        return {
            "fragments": self.fragments,
            "first_fragment": self.first_fragment,
            "last_fragment": self.last_fragment,
            "skipped_fragments": self.skipped_fragments,
            "media_lost": self.media_lost,
            "handoffs": self.handoffs,
            "warnings": list(self.warnings),
            "warnings_total": self.warnings_total,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Progress:
        return cls(
            fragments=int(data.get("fragments", 0)),
            first_fragment=data.get("first_fragment"),
            last_fragment=data.get("last_fragment"),
            skipped_fragments=int(data.get("skipped_fragments", 0)),
            media_lost=int(data.get("media_lost", 0)),
            handoffs=int(data.get("handoffs", 0)),
            warnings=list(data.get("warnings", [])),
            warnings_total=int(data.get("warnings_total", len(data.get("warnings", [])))),
        )


class CallOver(Exception):
    """Raised inside the read loop when the call has ended (internal control flow)."""


class TimeToHandOff(Exception):
    """Raised when the invocation must hand off (internal); its message says why."""


class Recorder:
    """The recorder's work, with every client injected."""

    def __init__(
        self,
        settings: RecorderSettings,
        *,
        store: RecordingStore,
        invoker: Invoker,
        media: MediaSource,
        s3: S3Client,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        directory_for: Callable[[str], Directory | None] | None = None,
        interactions: Disconnects | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.invoker = invoker
        self.media = media
        self.s3 = s3
        self.monotonic = monotonic
        self.sleep = sleep
        # Epoch seconds: times kept in checkpoints, compared across invocations.
        self.clock = clock
        # Connect's word on a contact's end (ending.py): DescribeContact for an instance ARN,
        # and the disconnects kept on the recordings. Without them the idle time ends calls.
        self.directory_for = directory_for or (lambda _instance_arn: None)
        self.interactions = interactions

    @property
    def grace_seconds(self) -> int:
        """How long an unclaimed recording waits for its invocation before the sweeper acts."""
        return max(5, self.settings.checkpoint_interval_seconds * 3)

    # ----------------------------------------------------------------- registration
    def register(self, record: StartRecord) -> bool:
        """Register a start record and start recording it; False when it starts nothing (a
        duplicate delivery, or another segment of the contact, kept on its item)."""
        registration = self.store.register(record, grace_seconds=self.grace_seconds)
        if not registration.starts_recording:
            logger.info(
                "start record registered on the existing recording",
                contact_id=record.contact_id,
                registration=registration.value,
                segment=record.segment_key,
            )
            return False
        self.invoker.start(record.contact_id, reason="registered")
        logger.info("recording registered", contact_id=record.contact_id, stream=record.stream_name)
        return True

    # ----------------------------------------------------------------- sweeping
    def sweep(self, limit: int = 100) -> list[str]:
        """Start an invocation for each recording whose lease expired; returns their ids."""
        resumed: list[str] = []
        for contact_id in self.store.expired_leases(limit=limit):
            with logger.append_context_keys(contact_id=contact_id):  # per contact, then removed
                try:
                    self.invoker.start(contact_id, reason="sweep")
                except HandOffError:
                    logger.exception("cannot resume stalled recording")
                    continue
            resumed.append(contact_id)
        if resumed:
            logger.warning("resumed stalled recordings", count=len(resumed), contact_ids=resumed)
        return resumed

    # ----------------------------------------------------------------- recording
    def record(self, contact_id: str, *, owner: str, remaining_ms: Callable[[], int]) -> Outcome:
        """Record one contact until the call ends or it is time to hand off."""
        session = _Session(self, contact_id, owner, remaining_ms)
        return session.run()


class _Session:
    """One invocation's part of one recording."""

    def __init__(
        self, recorder: Recorder, contact_id: str, owner: str, remaining_ms: Callable[[], int]
    ) -> None:
        self.r = recorder
        self.settings = recorder.settings
        self.contact_id = contact_id
        self.owner = owner
        self.remaining_ms = remaining_ms
        budget_s = remaining_ms() / 1000
        self.margin_s = float(
            self.settings.handoff_margin_seconds
            if self.settings.handoff_margin_seconds is not None
            else min(60.0, budget_s / 4)
        )
        # Renewed at every checkpoint; a killed invocation's lease runs out soon after.
        self.lease_s = max(LEASE_FLOOR_S, self.settings.checkpoint_interval_seconds * 3)

    def run(self) -> Outcome:
        try:
            self.lease, recording = self.r.store.acquire(self.contact_id, self.owner, self.lease_s)
        except (LeaseLost, NotRecording) as exc:
            logger.info("nothing to do", contact_id=self.contact_id, reason=str(exc))
            return Outcome(self.contact_id, "skipped", str(exc))
        self.record = recording.start_record
        try:
            self._restore(recording.checkpoint or {})
            # A recording already finishing ends as it was decided; this invocation has the
            # whole of its time for the assembly.
            status, reason = self.finish_status or COMPLETED, self.finish_reason
            stalled = self.lease.generation - self.progress_generation
            if self.finishing and stalled > MAX_RESUMES_WITHOUT_PROGRESS:
                return self._abandon_assembly(stalled)
            if not self.finishing and stalled > MAX_RESUMES_WITHOUT_PROGRESS:
                status, reason = (
                    FAILED,
                    f"no progress in {stalled} invocations in a row (see the logs)",
                )
            elif not self.finishing:
                try:
                    self._read_until_the_call_ends()
                except Throttled as exc:
                    # Not permanent: KVS throttled (or the network refused) until this
                    # invocation's time was up. The next one tries again, and a recording that
                    # makes no progress in MAX_RESUMES_WITHOUT_PROGRESS invocations ends FAILED.
                    raise TimeToHandOff(f"{TIMEOUT_HANDOFF}: {exc}") from exc
                except (MediaError, MkvError, AlignmentError) as exc:
                    # Permanent for this recording: keep what was recorded, say why it stopped.
                    logger.error("recording stopped", reason=str(exc))
                    status, reason = FAILED, str(exc)
            return self._finish(status, reason)
        except TimeToHandOff as why:
            return self._hand_off(str(why))
        except LeaseLost as exc:
            logger.warning("lease lost: another invocation has the recording", detail=str(exc))
            return Outcome(self.contact_id, "skipped", str(exc))

    # ----------------------------------------------------------------- checkpoint
    def _restore(self, checkpoint: Mapping[str, Any]) -> None:
        self.gate = ContactGate.from_state(checkpoint.get("gate") or {"target": self.contact_id})
        aligner = checkpoint.get("aligner")
        self.aligner = Aligner.from_state(aligner) if aligner else Aligner()
        self.progress = _Progress.from_json(checkpoint.get("progress", {}))
        self.reader = StreamReader(
            self.r.media,
            self.record.stream_arn,
            start_timestamp_ms=self.record.start_timestamp_ms,
            start_fragment_number=self.record.start_fragment_number or None,
            token=checkpoint.get("continuation_token"),
            after_fragment=checkpoint.get("after_fragment"),
            kms_key_arn=self.settings.kvs_kms_key_arn,
            deadline=self._deadline,
            check_time=self._check_time,
            on_media_lost=self._media_lost,
            sleep=self.r.sleep,
            clock=self.r.clock,
        )
        self.finishing = bool(checkpoint.get("finishing", False))
        self.finish_status: str | None = checkpoint.get("finish_status")
        self.finish_reason: str | None = checkpoint.get("finish_reason")
        self.resumed_finishing = self.finishing
        self.assembled: list[str] = list(checkpoint.get("assembled", []))
        self.progress_generation = int(checkpoint.get("progress_generation", self.lease.generation))
        self.staged = StagedRecording(
            self.r.s3,
            self.settings.bucket_name,
            self.settings.staging_prefix,
            self.contact_id,
            generation=self.lease.generation,
            outputs=[OutputSpec("cu", 1), OutputSpec("op", 1), OutputSpec("stereo", 2)],
            state=checkpoint.get("staging"),
        )
        self.muxer = StereoMuxer.holding(self.staged.extras.get(STEREO_HELD, b""))
        self.checkpointed_fragments = self.progress.fragments
        # When the stream last delivered a fragment (epoch seconds), kept across invocations:
        # the call's silence is the stream's, not this invocation's, so a chain of short
        # invocations (each restarting a timer) cannot keep a finished call open forever.
        self.last_data_at = float(checkpoint.get("last_data_at") or self.r.clock())
        self.ending = Ending.from_json(checkpoint.get("ending"))
        self.watch = EndWatch(
            contact_id=self.contact_id,
            initial_contact_id=self.record.initial_contact_id or self.contact_id,
            disconnects=self.r.interactions,
            directory=self.r.directory_for(self.record.instance_arn),
            idle_seconds=self.settings.idle_seconds,
            max_pause_seconds=self.settings.max_pause_seconds,
            clock=self.r.clock,
            state=checkpoint.get("end_watch"),
        )

    def _checkpoint(self, *, release: bool = False) -> None:
        if self.progress.fragments > self.checkpointed_fragments:
            self.progress_generation = self.lease.generation
        state = {
            "continuation_token": self.reader.token,
            "after_fragment": self.reader.after_fragment,
            "gate": self.gate.state(),
            "aligner": self.aligner.state(),
            "progress": self.progress.to_json(),
            "progress_generation": self.progress_generation,
            "finishing": self.finishing,
            "finish_status": self.finish_status,
            "finish_reason": self.finish_reason,
            "assembled": self.assembled,
            "last_data_at": self.last_data_at,
            "ending": self.ending.to_json() if self.ending else None,
            "end_watch": self.watch.state(),
            # Staged last: every byte it names is in S3 before DynamoDB hears of it.
            "staging": self.staged.snapshot({STEREO_HELD: self.muxer.held()}),
        }
        if release:
            self.r.store.release(self.lease, state, grace_seconds=self.r.grace_seconds)
        else:
            self.lease = self.r.store.checkpoint(self.lease, state, lease_seconds=self.lease_s)
        self.staged.forget_superseded()
        self.checkpointed_fragments = self.progress.fragments
        self.last_checkpoint = self.r.monotonic()

    # ----------------------------------------------------------------- reading
    def _read_until_the_call_ends(self) -> None:
        self.last_checkpoint = self.r.monotonic()
        while True:
            self._check_time()
            try:
                new = self.reader.read_response(self._on_fragment)
            except CallOver:
                return
            if (
                self.r.monotonic() - self.last_checkpoint
                >= self.settings.checkpoint_interval_seconds
            ):
                self._checkpoint()  # also renews the lease while the stream is quiet
            ending = self.watch.check(last_data_at=self.last_data_at, t_last_ms=self._t_last_ms())
            if ending is not None:
                if not self.gate.started:
                    waited = (
                        f"within {self.settings.idle_seconds} s"
                        if ending.ended_by in {IDLE, IDLE_CEILING}
                        else "before Connect said the contact had disconnected"
                    )
                    raise StreamGone(
                        f"no fragment of contact {self.contact_id} arrived on "
                        f"{self.record.stream_name} {waited}"
                    )
                logger.info("the call is over", ended_by=ending.ended_by, **ending.detail)
                self.ending = ending
                return
            if not new:
                self.r.sleep(RECONNECT_PAUSE_S)

    def _t_last_ms(self) -> int | None:
        """The end of the audio recorded so far (epoch ms), None before any."""
        rate = self.aligner.sample_rate
        if self.aligner.start_ns is None or not rate:
            return None
        return self.aligner.start_ns // 1_000_000 + self.aligner.samples * 1000 // rate

    def _on_fragment(self, fragment: Fragment) -> None:
        self.last_data_at = self.reader.arrived_at
        decision = self.gate.decide(fragment)
        if decision is ContactDecision.END:
            self.ending = Ending(
                CONTACT_CHANGE,
                {
                    "contact": fragment.contact_id or "",
                    "fragment_number": fragment.fragment_number or "",
                },
            )
            raise CallOver
        if decision is ContactDecision.KEEP:
            if self.progress.first_fragment is None:
                self._check_call_start(fragment)
            self._write(self.aligner.add_fragment(fragment))
            self.progress.fragments += 1
            self.progress.first_fragment = self.progress.first_fragment or fragment.fragment_number
            self.progress.last_fragment = fragment.fragment_number
        else:
            self.progress.skipped_fragments += 1
        if self.r.monotonic() - self.last_checkpoint >= self.settings.checkpoint_interval_seconds:
            self._checkpoint()

    def _write(self, aligned: Aligned) -> None:
        if aligned.cu:
            self.staged.write("cu", aligned.cu)
        if aligned.op:
            self.staged.write("op", aligned.op)
        stereo = self.muxer.push(aligned.cu, aligned.op)
        if stereo:
            self.staged.write("stereo", stereo)

    def _check_call_start(self, fragment: Fragment) -> None:
        """Connect's start fragment is the contact's first: a recording whose first fragment
        comes later lost the call's start (KVS no longer held it when the recording began)."""
        first, expected = fragment.fragment_number, self.record.start_fragment_number
        if (
            first
            and expected
            and first.isdigit()
            and expected.isdigit()
            and int(first) > int(expected)
        ):
            self._media_lost(
                f"the call's start: its first fragment {expected} was not served, "
                f"the recording begins at fragment {first}"
            )

    def _media_lost(self, detail: str) -> None:
        self.progress.media_lost += 1
        self.progress.warn(f"media lost (beyond the stream's retention): {detail}")
        logger.warning("media lost", detail=detail)

    def _assembled(self, name: str) -> None:
        """One WAV is whole in S3: a resumed assembly starts with the next (and it counts as
        progress, as a fragment read does)."""
        self.assembled.append(name)
        self.progress_generation = self.lease.generation
        self._checkpoint()

    def _assembly_would_overrun(self) -> bool:
        seconds = ASSEMBLY_BASE_S + self.staged.segments * ASSEMBLY_SECONDS_PER_SEGMENT
        return self.remaining_ms() / 1000 - self.margin_s < seconds

    def _deadline(self) -> float:
        return self.r.monotonic() + max(0.0, self.remaining_ms() / 1000 - self.margin_s)

    def _check_time(self) -> None:
        if self.remaining_ms() / 1000 <= self.margin_s:
            raise TimeToHandOff(TIMEOUT_HANDOFF)

    # ----------------------------------------------------------------- endings
    def _hand_off(self, detail: str) -> Outcome:
        self.progress.handoffs += 1
        self._checkpoint(release=True)
        try:
            self.r.invoker.start(self.contact_id, reason="handoff")
        except HandOffError:
            logger.exception("hand-off failed; the sweeper will resume the recording")
        logger.info("handed off", fragments=self.progress.fragments, detail=detail)
        return Outcome(
            self.contact_id,
            "handed_off",
            detail,
            fragments=self.progress.fragments,
            read_lag_ms=self.reader.read_lag_ms,
        )

    def _result(self) -> dict[str, Any]:
        """What the finished item says of the reading, whatever the status."""
        return {
            "fragments": self.progress.fragments,
            "first_fragment_number": self.progress.first_fragment,
            "last_fragment_number": self.progress.last_fragment,
            "skipped_fragments": self.progress.skipped_fragments,
            "handoffs": self.progress.handoffs,
            "warnings": self.progress.warnings,
            "warnings_total": self.progress.warnings_total,
            "gaps_filled": self.aligner.gaps_filled,
            "duplicates_dropped": self.aligner.duplicates_dropped,
            "ended_by": self.ending.ended_by if self.ending else None,
            "end_detail": dict(self.ending.detail) if self.ending else None,
        }

    def _abandon_assembly(self, stalled: int) -> Outcome:
        """FAILED, when no WAV could be completed in several whole invocations in a row. The
        audio stays staged (the staging lifecycle rule keeps it a week), named in the reason."""
        staging = (
            f"s3://{self.settings.bucket_name}/{self.settings.staging_prefix}{self.contact_id}/"
        )
        reason = (
            f"the WAVs could not be assembled in {stalled} invocations in a row "
            f"(assembled: {', '.join(self.assembled) or 'none'}); the recorded audio stays "
            f"staged under {staging} for 7 days (see the logs)"
        )
        self.r.store.finish(self.lease, FAILED, self._result(), {"finishing": True}, reason=reason)
        logger.error("recording abandoned", reason=reason)
        return Outcome(self.contact_id, "failed", reason, self.progress.fragments)

    def _finish(self, status: str, reason: str | None) -> Outcome:
        if not self.finishing:
            self._write(self.aligner.finish())
            self.finishing = True
            self.finish_status, self.finish_reason = status, reason
            self._checkpoint()
        if not self.resumed_finishing and self._assembly_would_overrun():
            # The call ended late in this invocation: a fresh one assembles, with its whole
            # time, rather than this one being killed halfway and resumed by the sweeper.
            raise TimeToHandOff(ASSEMBLY_HANDOFF)
        result = self._result()
        seconds = 0.0
        rate = self.aligner.sample_rate
        if self.aligner.start_ns is not None and rate and self.staged.data_bytes["cu"] > 0:
            seconds = self.staged.data_bytes["cu"] / BYTES_PER_SAMPLE / rate
            start = datetime.fromtimestamp(self.aligner.start_ns // 1_000_000_000, tz=UTC)
            base = recording_basename(self.aligner.start_ns)
            folder = f"{self.settings.recordings_prefix}{start:%Y/%m/%d}/{self.contact_id}"
            keys = {name: f"{folder}/{base}-{name}.wav" for name in ("cu", "op", "stereo")}
            start_iso = start.strftime("%Y-%m-%dT%H:%M:%SZ")
            self.staged.assemble(
                keys,
                sample_rate=rate,
                metadata={
                    "contact-id": self.contact_id,
                    "start": start_iso,
                    "duration-seconds": f"{seconds:.3f}",
                    "sample-rate": str(rate),
                },
                done=self.assembled,
                on_assembled=self._assembled,
            )
            result.update(
                keys=keys, start=start_iso, duration_seconds=round(seconds, 3), sample_rate=rate
            )
        elif status == COMPLETED:
            status, reason = FAILED, "no audio of this contact was found on its stream"
        self.r.store.finish(self.lease, status, result, {"finishing": True}, reason=reason)
        self.staged.delete_staging()
        logger.info("recording finished", status=status, reason=reason, seconds=seconds)
        action = "completed" if status == COMPLETED else "failed"
        return Outcome(
            self.contact_id,
            action,
            reason or "",
            self.progress.fragments,
            seconds,
            gaps_filled=self.aligner.gaps_filled,
            read_lag_ms=self.reader.read_lag_ms,
        )
