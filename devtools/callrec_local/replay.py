"""A GetMedia capture's own bytes played through the whole local pipeline (`callrec replay`).

Every fragment of the capture goes into a stream of the KVS emulator as it was captured (see
capture.py), each when the emulator's media clock reaches its end (its producer timestamp plus
its length, scaled by `speed`): a pause in streaming stays a pause. Other contacts on the stream
(a reused stream) are played too, before and after. When the chosen contact's first fragment is
stored, the contact is begun in the local Connect and the contact-flow function gets the event
Connect would send: the stream, that fragment's number as StartFragmentNumber, its producer time
as StartTimestamp; when its last fragment is stored, the contact disconnects (DescribeContact
and the DISCONNECTED contact event say so), so the recording ends as it would in AWS, and a
pause in streaming, however long, is waited through. The recorder then reads the
stream through GetMedia with the emulator's fragment numbers, continuation tokens and cuts, but
the media bytes it receives are the capture's. The recording is compared byte for byte with
`callrec convert --contact-id` on the same capture.
"""

from __future__ import annotations

import dataclasses
import io
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callrec.convert import convert
from callrec_local.capture import Capture, CapturedFragment, CaptureError, load_capture
from callrec_local.connect_emulator import LOCAL_INSTANCE_ID
from callrec_local.kvs_emulator import ACCOUNT, REGION, StoredFragment
from callrec_local.pipeline import OUTPUTS, LocalPipeline, PipelineOptions
from callrec_local.simulator import flow_event

# Seconds to wait for the recording beyond the capture's own length (at the replay's speed).
FINISH_MARGIN_S = 180.0


@dataclass(frozen=True)
class ReplayResult:
    """What `callrec replay` found; `to_json` is what `--json` prints."""

    contact_id: str
    status: str
    reason: str | None
    duration_seconds: float
    handoffs: int
    gaps_filled: int
    duplicates_dropped: int
    skipped_fragments: int
    ended_by: str | None
    identical: bool
    paths: list[Path]
    elapsed_s: float

    @property
    def ok(self) -> bool:
        return self.status == "COMPLETED" and self.identical

    def to_json(self) -> dict[str, Any]:
        return {
            "contact_id": self.contact_id,
            "status": self.status,
            "duration_seconds": self.duration_seconds,
            "handoffs": self.handoffs,
            "gaps_filled": self.gaps_filled,
            "duplicates_dropped": self.duplicates_dropped,
            "skipped_fragments": self.skipped_fragments,
            "ended_by": self.ended_by,
            "identical": self.identical,
        }


def replay(
    data: bytes, options: PipelineOptions, out: Path, contact_id: str | None = None
) -> ReplayResult:
    """Replay a capture; `CaptureError` (nothing started) when it is not one that can be."""
    capture = load_capture(data)
    contact = contact_id or capture.contacts[0]
    if contact not in capture.contacts:
        raise CaptureError(
            f"contact {contact} is not in the capture; it holds {', '.join(capture.contacts)}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        reference = convert(io.BytesIO(data), Path(tmp), contact_id=contact)
        expected = {name: reference.paths[name].read_bytes() for name in OUTPUTS}
    origin = capture.fragments[0].producer_timestamp_ms - 1000
    span_ms = capture.fragments[-1].producer_timestamp_ms + capture.fragments[-1].duration_ms
    timeout = (span_ms - origin) / 1000 / options.speed + FINISH_MARGIN_S
    began = time.monotonic()
    with LocalPipeline(dataclasses.replace(options, origin_ms=origin, spectrum=False)) as pipeline:
        player = _Player(pipeline, capture, contact)
        player.start()
        try:
            item = pipeline.wait_finished(contact, timeout_s=timeout)
        finally:
            player.stop()
        if player.error is not None:
            raise player.error
        status = item["status"]["S"]
        paths: list[Path] = []
        if "keys" in item:
            keys = [item["keys"]["M"][name]["S"] for name in OUTPUTS]
            paths = pipeline.download(keys, out)
    identical = len(paths) == len(OUTPUTS) and all(
        path.read_bytes() == expected[name] for name, path in zip(OUTPUTS, paths, strict=True)
    )
    return ReplayResult(
        contact_id=contact,
        status=status,
        reason=item.get("reason", {}).get("S"),
        duration_seconds=float(item.get("duration_seconds", {}).get("N", "0")),
        handoffs=_number(item, "handoffs"),
        gaps_filled=_number(item, "gaps_filled"),
        duplicates_dropped=_number(item, "duplicates_dropped"),
        skipped_fragments=_number(item, "skipped_fragments"),
        ended_by=item.get("ended_by", {}).get("S"),
        identical=identical,
        paths=paths,
        elapsed_s=time.monotonic() - began,
    )


def _number(item: dict[str, Any], name: str) -> int:
    return int(item.get(name, {}).get("N", "0"))


class _Player:
    """Stores the capture's fragments on one stream as the media clock reaches each one's end,
    and runs the contact flow once the chosen contact's first fragment is stored."""

    def __init__(self, pipeline: LocalPipeline, capture: Capture, contact_id: str) -> None:
        self.pipeline = pipeline
        self.capture = capture
        self.contact_id = contact_id
        self.error: BaseException | None = None
        self.stream_name = f"callrec-connect-replay-contact-{contact_id}"
        self.stream_arn = pipeline.kvs.create_stream(self.stream_name)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replay-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            ours = self.capture.contact_fragments(self.contact_id)
            connect = self.pipeline.stack.connect
            for fragment in self.capture.fragments:
                end_ms = fragment.producer_timestamp_ms + fragment.duration_ms
                if not self._wait_for(end_ms):
                    return
                stored = self._store(fragment)
                if fragment is ours[0]:
                    if connect is not None:
                        connect.begin(self.contact_id, fragment.producer_timestamp_ms)
                    event = self._flow_event(stored)
                    threading.Thread(
                        target=self._invoke, args=(event,), name="replay-flow", daemon=True
                    ).start()
                if fragment is ours[-1] and connect is not None:
                    connect.disconnect(self.contact_id, end_ms)
        except BaseException as exc:  # surfaced by replay()
            self.error = exc

    def _wait_for(self, media_ms: int) -> bool:
        clock = self.pipeline.kvs.clock
        while not self._stop.is_set():
            delay = clock.wall_seconds_until(media_ms)
            if not delay:
                return True
            self._stop.wait(min(delay, 0.5))
        return False

    def _store(self, fragment: CapturedFragment) -> StoredFragment:
        return self.pipeline.kvs.ingest_parts(
            self.stream_name,
            fragment.parts,
            producer_timestamp_ms=fragment.producer_timestamp_ms,
            duration_ms=fragment.duration_ms,
            contact_id=fragment.contact_id or "",
        )

    def _flow_event(self, stored: StoredFragment) -> dict[str, Any]:
        # The local Connect's instance (the stack's), not the capture's: DescribeContact and the
        # contact events of the replayed contact are this stack's.
        return flow_event(
            contact_id=self.contact_id,
            instance_arn=f"arn:aws:connect:{REGION}:{ACCOUNT}:instance/{LOCAL_INSTANCE_ID}",
            audio={
                "StartFragmentNumber": stored.fragment_number,
                "StartTimestamp": str(stored.producer_timestamp_ms),
                "StreamARN": self.stream_arn,
            },
        )

    def _invoke(self, event: dict[str, Any]) -> None:
        try:
            self.pipeline.stack.contact_flow_handler()(event)
        except BaseException as exc:  # the flow's Error branch: the recording never starts
            self.error = exc
