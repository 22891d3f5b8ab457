"""KVS fragments and Connect audio: what a GetMedia response means, one fragment at a time.

`FragmentReader` turns bytes (pushed in any chunking, or read from anything with `.read(n)`,
such as a botocore StreamingBody) into `Fragment`s and `ErrorChunk`s as soon as each EBML
document has ended. `ContactGate` applies the contact rules to one fragment at a time, and
`fragment_audio` gives a fragment's Connect audio as `AudioBlock`s with absolute timestamps.

Deliberately not done here: EBML framing (mkv.py), timing in samples (alignment.py), network
access (kvs.py). Tracks are identified by Name, never by number (Connect's numbering varies).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any, Protocol

from callrec.mkv import (
    DEFAULT_MAX_ELEMENT_SIZE,
    TRACK_TYPE_AUDIO,
    Block,
    Document,
    MkvError,
    MkvReader,
    Track,
)

# KVS tags (AWS_KINESISVIDEO_*), written by GetMedia into each fragment.
TAG_FRAGMENT_NUMBER = "AWS_KINESISVIDEO_FRAGMENT_NUMBER"
TAG_SERVER_TIMESTAMP = "AWS_KINESISVIDEO_SERVER_TIMESTAMP"
TAG_PRODUCER_TIMESTAMP = "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP"
TAG_MILLIS_BEHIND_NOW = "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW"
TAG_CONTINUATION_TOKEN = "AWS_KINESISVIDEO_CONTINUATION_TOKEN"  # noqa: S105 - a tag name
TAG_ERROR_CODE = "AWS_KINESISVIDEO_ERROR_CODE"
TAG_ERROR_ID = "AWS_KINESISVIDEO_ERROR_ID"
# Connect tags.
TAG_CONTACT_ID = "ContactId"
TAG_INSTANCE_ID = "InstanceId"
TAG_MIME_TYPE = "MimeType"

# Connect track names and the roles they are recorded as.
TRACK_FROM_CUSTOMER = "AUDIO_FROM_CUSTOMER"
TRACK_TO_CUSTOMER = "AUDIO_TO_CUSTOMER"
ROLE_CUSTOMER = "cu"
ROLE_AGENT = "op"
ROLES = (ROLE_CUSTOMER, ROLE_AGENT)
TRACK_ROLES = {TRACK_FROM_CUSTOMER: ROLE_CUSTOMER, TRACK_TO_CUSTOMER: ROLE_AGENT}

# Sampling rates a stream may declare (MimeType `rate=`, or an Audio element's
# SamplingFrequency): Connect's ("Audio sent to Kinesis uses a sampling rate of 8 kHz.",
# https://docs.aws.amazon.com/connect/latest/adminguide/plan-live-media-streams.html) and the
# rates ordinary PCM files use. Anything else (0, 7, 4294967296, inf, NaN) is refused with
# MkvError: a rate read from a damaged stream must not size buffers or silences.
ALLOWED_SAMPLE_RATES = frozenset((8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 96000))
CODEC_PCM_LE = "A_PCM/INT/LIT"
CODEC_PCM_BE = "A_PCM/INT/BIG"
DEFAULT_CHUNK_SIZE = 256 * 1024


class SupportsRead(Protocol):
    """Anything with `.read(n)`: a file, stdin's buffer, a botocore StreamingBody."""

    def read(self, n: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Fragment:
    """One KVS fragment (one EBML document) with its KVS and Connect tags.

    `index` counts documents from 0 in this stream; `tags` holds every SimpleTag by name (the
    last value wins: Connect repeats its tags after the Cluster; `document_tags` keeps them all
    in document order); `blocks` carry absolute
    timecodes in `timecode_scale` nanosecond ticks.
    """

    index: int
    offset: int
    end: int
    complete: bool
    tags: Mapping[str, str | bytes]
    tracks: tuple[Track, ...]
    blocks: list[Block]
    timecode_scale: int
    clusters: int
    document_tags: tuple[tuple[str, str | bytes], ...] = ()

    @classmethod
    def from_document(cls, document: Document, index: int) -> Fragment:
        """The fragment an EBML document holds."""
        return cls(
            index=index,
            offset=document.offset,
            end=document.end,
            complete=document.complete,
            tags={tag.name: tag.value for tag in document.tags},
            tracks=tuple(document.tracks),
            blocks=document.blocks,
            timecode_scale=document.timecode_scale,
            clusters=document.clusters,
            document_tags=tuple((tag.name, tag.value) for tag in document.tags),
        )

    def tag(self, name: str) -> str | None:
        """A SimpleTag's string value, or None when absent (or binary)."""
        value = self.tags.get(name)
        return value if isinstance(value, str) else None

    @property
    def fragment_number(self) -> str | None:
        return self.tag(TAG_FRAGMENT_NUMBER)

    @property
    def server_timestamp(self) -> str | None:
        return self.tag(TAG_SERVER_TIMESTAMP)

    @property
    def producer_timestamp(self) -> str | None:
        return self.tag(TAG_PRODUCER_TIMESTAMP)

    @property
    def continuation_token(self) -> str | None:
        return self.tag(TAG_CONTINUATION_TOKEN)

    @property
    def millis_behind_now(self) -> str | None:
        return self.tag(TAG_MILLIS_BEHIND_NOW)

    @property
    def error_code(self) -> str | None:
        return self.tag(TAG_ERROR_CODE)

    @property
    def error_id(self) -> str | None:
        return self.tag(TAG_ERROR_ID)

    @property
    def contact_id(self) -> str | None:
        return self.tag(TAG_CONTACT_ID)

    @property
    def mime_type(self) -> str | None:
        return self.tag(TAG_MIME_TYPE)

    def track_stats(self) -> dict[str, dict[str, int]]:
        """Blocks and payload bytes per track, keyed by Name (or `track N` when unnamed)."""
        names = {t.number: t.name or f"track {t.number}" for t in self.tracks}
        stats: dict[str, dict[str, int]] = {
            name: {"blocks": 0, "bytes": 0} for name in names.values()
        }
        for block in self.blocks:
            name = names.get(block.track) or f"track {block.track}"
            entry = stats.setdefault(name, {"blocks": 0, "bytes": 0})
            entry["blocks"] += 1
            entry["bytes"] += sum(len(frame) for frame in block.frames)
        return stats


@dataclass(frozen=True, slots=True)
class ErrorChunk:
    """An error chunk sent instead of a fragment: `code` is `AWS_KINESISVIDEO_ERROR_CODE`, a
    text description ("Requested fragment is not found"), `error_id` is
    `AWS_KINESISVIDEO_ERROR_ID`, its integer id (4000). GetMediaForFragmentList's carry other
    pairs (`FRAGMENT_NOT_FOUND` / 3000). What each id means to a recording: reading.py."""

    code: str
    error_id: str | None
    fragment: Fragment

    @property
    def index(self) -> int:
        return self.fragment.index

    @property
    def offset(self) -> int:
        return self.fragment.offset


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """How a GetMedia response ended. `clean` is false when the last fragment was incomplete
    (`dropped`) or the input stopped inside an element. Any end may still be a GetMedia cut
    (connections end after about 45 minutes): resume from the last complete fragment."""

    clean: bool
    offset: int
    detail: str
    dropped: Fragment | None


def _event(document: Document, index: int) -> Fragment | ErrorChunk:
    fragment = Fragment.from_document(document, index)
    code = fragment.error_code
    if code is not None:
        return ErrorChunk(code, fragment.error_id, fragment)
    return fragment


@dataclass(slots=True)
class FragmentReader:
    """Push bytes in any chunking; get complete fragments out as soon as their document ends.

    `feed(chunk)` returns the complete `Fragment`s and `ErrorChunk`s that ended with this chunk
    (a fragment ends when the next one's EBML header arrives); `close()` at the end of input
    returns the last one, if complete, and records how the stream ended in `end`. Incomplete
    fragments are never returned: they are listed in `dropped` (and the last one in `end`).
    Raises `MkvError` on bytes that are not Matroska.
    """

    max_element_size: int = DEFAULT_MAX_ELEMENT_SIZE
    include_incomplete: bool = False
    dropped: list[Fragment] = field(default_factory=list)
    end: StreamEnd | None = None
    _reader: MkvReader | None = None
    _count: int = 0

    def _mkv(self) -> MkvReader:
        if self._reader is None:
            self._reader = MkvReader(self.max_element_size)
        return self._reader

    def _events(self, documents: list[Document]) -> list[Fragment | ErrorChunk]:
        events: list[Fragment | ErrorChunk] = []
        for document in documents:
            event = _event(document, self._count)
            self._count += 1
            if document.complete or self.include_incomplete:
                events.append(event)
            if not document.complete:
                self.dropped.append(event if isinstance(event, Fragment) else event.fragment)
        return events

    def feed(self, chunk: bytes) -> list[Fragment | ErrorChunk]:
        """Push a chunk; returns the fragments it completed, in stream order."""
        return self._events(self._mkv().feed(chunk))

    def close(self) -> list[Fragment | ErrorChunk]:
        """End of input; returns the last fragment if it is complete. See `end`."""
        tail = self._mkv().close()
        events = self._events([tail.document] if tail.document is not None else [])
        dropped = None
        if tail.document is not None and not tail.document.complete:
            dropped = self.dropped[-1]
        self.end = StreamEnd(not tail.truncated, tail.offset, tail.detail, dropped)
        return events

    def read_stream(
        self, stream: SupportsRead, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[Fragment | ErrorChunk]:
        """Read `stream` to its end, yielding events as they complete; `end` is set afterwards."""
        while True:
            chunk = stream.read(chunk_size)
            if not chunk:
                break
            yield from self.feed(chunk)
        yield from self.close()


class ContactDecision(Enum):
    """What to do with a fragment's audio: keep it, skip it, or stop before it."""

    KEEP = "keep"
    SKIP = "skip"
    END = "end"


@dataclass(slots=True)
class ContactGate:
    """The contact rules, applied fragment by fragment before any of its audio is used.

    Audio is kept only from fragments whose ContactId is `target` (by default the first one
    seen). Fragments of another contact before the target's first are skipped; the first one
    of another contact after it ends the recording (KVS streams are reused by later contacts).
    A fragment without ContactId belongs to the contact in progress: kept once the target has
    started, or when no target was asked for; skipped while waiting for an explicit target.
    State is a small JSON-serialisable dict (`state()`, `ContactGate.from_state`).
    """

    target: str | None = None
    started: bool = False
    ended: bool = False

    def decide(self, fragment: Fragment) -> ContactDecision:
        """The decision for `fragment`, updating the gate."""
        if self.ended:
            return ContactDecision.END
        contact = fragment.contact_id
        if contact is None:
            if self.started or self.target is None:
                return ContactDecision.KEEP
            return ContactDecision.SKIP
        if self.target is None:
            self.target = contact
        if contact == self.target:
            self.started = True
            return ContactDecision.KEEP
        if self.started:
            self.ended = True
            return ContactDecision.END
        return ContactDecision.SKIP

    def state(self) -> dict[str, str | int]:
        """The gate's state, JSON- and DynamoDB-safe."""
        state: dict[str, str | int] = {"started": int(self.started), "ended": int(self.ended)}
        if self.target is not None:
            state["target"] = self.target
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ContactGate:
        """A gate restored from `state()`."""
        target = state.get("target")
        return cls(
            target=str(target) if target is not None else None,
            started=bool(int(state.get("started", 0))),
            ended=bool(int(state.get("ended", 0))),
        )


@dataclass(frozen=True, slots=True)
class PcmFormat:
    """Signed 16-bit PCM as the reader delivers it (little-endian after conversion)."""

    sample_rate: int
    channels: int = 1
    bits: int = 16


@dataclass(slots=True)
class AudioBlock:
    """One block of one role's audio: absolute timestamp in nanoseconds and its frames
    (little-endian signed 16-bit mono PCM; several frames when the block was laced)."""

    role: str
    timestamp_ns: int
    frames: list[bytes]


@lru_cache(maxsize=32)
def parse_mime_type(value: str) -> PcmFormat | None:
    """The PCM format a Connect `MimeType` tag declares (`audio/L16;rate=8000;channels=1;`), or
    None if it is not L16. Connect's L16 is little-endian, whatever RFC 2586 says."""
    parts = [p.strip() for p in value.split(";") if p.strip()]
    if not parts or parts[0].lower() != "audio/l16":
        return None
    params = {}
    for part in parts[1:]:
        key, _, val = part.partition("=")
        params[key.strip().lower()] = val.strip()
    try:
        rate = int(params.get("rate", "8000"))
        channels = int(params.get("channels", "1"))
    except ValueError:
        return None
    if rate <= 0 or channels <= 0:
        return None
    return PcmFormat(rate, channels)


def track_role(track: Track) -> str | None:
    """`cu` for AUDIO_FROM_CUSTOMER, `op` for AUDIO_TO_CUSTOMER, else None (by Name only)."""
    return TRACK_ROLES.get(track.name)


def track_format(track: Track, mime_type: str | None) -> tuple[PcmFormat, bool]:
    """A track's PCM format and whether it is big-endian; `MkvError` naming the track and codec
    for anything that is not 16-bit mono PCM (real AAC, Opus, video, ...)."""
    where = f"track {track.number} ({track.name or 'unnamed'})"
    if track.type is not None and track.type != TRACK_TYPE_AUDIO:
        raise MkvError(
            f"{where} is not audio (TrackType {track.type}, codec {track.codec_id})", track.offset
        )
    if track.content_encoded:
        raise MkvError(
            f"{where}: compressed or encrypted content (ContentEncodings) is not supported",
            track.offset,
        )
    if track.codec_id in (CODEC_PCM_LE, CODEC_PCM_BE):
        bits = track.bit_depth if track.bit_depth is not None else 16
        rate = track.sampling_frequency
        if bits != 16 or track.channels != 1:
            raise MkvError(
                f"{where}: expected 16-bit mono PCM, found {bits}-bit, {track.channels} channels",
                track.offset,
            )
        _check_rate(rate, f"{where}: SamplingFrequency", track.offset)
        return PcmFormat(int(rate)), track.codec_id == CODEC_PCM_BE
    declared = parse_mime_type(mime_type) if mime_type else None
    if declared is None and mime_type and mime_type.strip().lower().startswith("audio/l16"):
        raise MkvError(
            f"{where}: MimeType {mime_type!r} declares audio/L16 without a valid rate and"
            " channel count (positive integers)",
            track.offset,
        )
    if declared is None:
        raise MkvError(
            f"{where}: codec {track.codec_id or '(none)'} is not PCM and no MimeType tag declares"
            " audio/L16; compressed audio is not supported",
            track.offset,
        )
    _check_rate(declared.sample_rate, f"{where}: MimeType {mime_type!r}", track.offset)
    if declared.channels != 1:
        raise MkvError(
            f"{where}: expected mono audio, MimeType declares {declared.channels} channels",
            track.offset,
        )
    return declared, False


def _check_rate(rate: float, what: str, offset: int) -> None:
    """MkvError unless `rate` is one of ALLOWED_SAMPLE_RATES (NaN and infinities included)."""
    if not math.isfinite(rate) or rate not in ALLOWED_SAMPLE_RATES:
        allowed = ", ".join(str(r) for r in sorted(ALLOWED_SAMPLE_RATES))
        raise MkvError(f"{what} declares {rate} Hz; expected one of {allowed} Hz", offset)


def fragment_roles(
    fragment: Fragment, mime_type: str | None = None
) -> tuple[PcmFormat | None, dict[int, tuple[str, bool]]]:
    """A fragment's Connect tracks: their PCM format (None if it has none) and, by track
    number, each one's role and whether its samples are big-endian. `mime_type` is used when
    the fragment has no MimeType tag of its own (the last one seen in the stream).

    Raises `MkvError` if a Connect track's audio is not 16-bit mono PCM or the two tracks
    disagree on the sample rate.
    """
    mime = fragment.mime_type or mime_type
    roles: dict[int, tuple[str, bool]] = {}
    fmt: PcmFormat | None = None
    for track in fragment.tracks:
        role = track_role(track)
        if role is None:
            continue
        track_fmt, big_endian = track_format(track, mime)
        if fmt is not None and track_fmt != fmt:
            raise MkvError(
                f"tracks disagree on the format: {fmt.sample_rate} Hz and {track_fmt.sample_rate} Hz"
                f" (track {track.number})",
                track.offset,
            )
        fmt = track_fmt
        roles[track.number] = (role, big_endian)
    return fmt, roles


def fragment_audio(
    fragment: Fragment, mime_type: str | None = None
) -> tuple[PcmFormat | None, list[AudioBlock]]:
    """A fragment's Connect audio: its PCM format (None if it has no Connect track, see
    `fragment_roles`) and its blocks in stream order, by role, with absolute timestamps and
    little-endian samples."""
    fmt, roles = fragment_roles(fragment, mime_type)
    scale = fragment.timecode_scale
    audio: list[AudioBlock] = []
    for block in fragment.blocks:
        entry = roles.get(block.track)
        if entry is None:
            continue
        role, big_endian = entry
        frames = block.frames
        if big_endian:
            frames = [swap16(frame, block.offset) for frame in frames]
        audio.append(AudioBlock(role, block.timecode * scale, frames))
    return fmt, audio


def swap16(frame: bytes, offset: int) -> bytes:
    """Big-endian 16-bit samples as little-endian ones (`MkvError` for an odd byte count)."""
    if len(frame) % 2:
        raise MkvError(
            f"expected whole 16-bit samples, found a frame of {len(frame)} bytes", offset
        )
    samples = array("h", frame)
    samples.byteswap()  # swapping byte pairs is the same on any host
    return samples.tobytes()
