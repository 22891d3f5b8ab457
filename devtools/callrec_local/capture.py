"""A GetMedia capture taken apart into what KVS had stored, so that it can be stored again.

A GetMedia response is one EBML document per fragment (see docs/operations.md). Each document
holds what the producer (Connect) sent, byte for byte, plus the tags KVS adds for that response:
`AWS_KINESISVIDEO_FRAGMENT_NUMBER`, `_SERVER_TIMESTAMP` and `_PRODUCER_TIMESTAMP` in a `Tags`
element before the Cluster, `_MILLIS_BEHIND_NOW` and `_CONTINUATION_TOKEN` in one after it.
`load_capture` keeps every other byte of each document as captured (EBML header, Segment, Info,
Tracks, Connect's Tags in their order, the Cluster, Void and CRC-32 elements, duplicated
fragments) and cuts out KVS's tags, remembering where they were: the emulator puts its own
there, with its own fragment numbers and continuation tokens, whenever it serves the fragment.

What is not stored: error chunks (KVS makes them per response; the emulator makes its own) and
an incomplete last document (a capture cut mid-fragment; every reader drops it too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from callrec.errors import CallrecError
from callrec.fragments import ErrorChunk, Fragment, FragmentReader, track_role
from callrec.mkv import MkvError
from callrec.mkv_elements import (
    EBML_ID_CRC32,
    EBML_ID_HEADER,
    EBML_ID_VOID,
    MKV_CLUSTER_CHILDREN,
    MKV_ID_CLUSTER,
    MKV_ID_SEGMENT,
    MKV_ID_TAGS,
    SimpleTag,
    read_element_id,
    read_tags,
    read_vint,
)
from callrec_local.producer import EncodedFragment

KVS_TAG_PREFIX = "AWS_KINESISVIDEO_"
# What an unknown-size Cluster may hold; anything else ends it.
CLUSTER_CHILDREN = frozenset({*MKV_CLUSTER_CHILDREN, EBML_ID_VOID, EBML_ID_CRC32})
UNKNOWN_SEGMENT_SIZE = bytes.fromhex("01ffffffffffffff")


class CaptureError(CallrecError):
    """The file is not a GetMedia capture of Connect audio; the message says what was found."""


@dataclass(frozen=True, slots=True)
class CapturedFragment:
    """One stored fragment: its own bytes (KVS's tags cut out) and what KVS knew of it."""

    position: int  # its document's index in the capture
    contact_id: str | None
    instance_id: str | None
    producer_timestamp_ms: int
    duration_ms: int
    parts: EncodedFragment
    captured_number: str | None


@dataclass(frozen=True, slots=True)
class Capture:
    fragments: list[CapturedFragment]
    error_chunks: int = 0
    incomplete_dropped: int = 0
    contacts: list[str] = field(default_factory=list)

    def contact_fragments(self, contact_id: str) -> list[CapturedFragment]:
        return [f for f in self.fragments if f.contact_id == contact_id]


def load_capture(data: bytes) -> Capture:
    """Take a GetMedia capture apart; `CaptureError` (one line, what was found) if it is not
    one that holds a Connect contact's audio."""
    if not data:
        raise CaptureError("the capture is empty")
    if not data.startswith(EBML_ID_HEADER.to_bytes(4, "big")):
        raise CaptureError(
            f"not a GetMedia capture: it starts with {data[:8].hex()}, not an EBML header "
            "(a GetMedia response is Matroska, one EBML document per fragment)"
        )
    reader = FragmentReader()
    try:
        events = [*reader.feed(data), *reader.close()]
    except MkvError as exc:
        raise CaptureError(f"not a readable GetMedia capture: {exc}") from None
    fragments: list[CapturedFragment] = []
    contacts: list[str] = []
    errors = 0
    audio = 0
    for event in events:
        if isinstance(event, ErrorChunk):
            errors += 1
            continue
        if any(track_role(track) for track in event.tracks):
            audio += 1
        captured = _captured(event, data[event.offset : event.end])
        fragments.append(captured)
        if captured.contact_id and captured.contact_id not in contacts:
            contacts.append(captured.contact_id)
    if not fragments:
        raise CaptureError(
            f"no fragment in the capture ({errors} error chunk(s), "
            f"{len(reader.dropped)} incomplete document(s))"
        )
    if not contacts:
        raise CaptureError(
            f"{len(fragments)} fragment(s) but none carries a Connect ContactId tag: "
            "not a capture of an Amazon Connect stream"
        )
    if not audio:
        raise CaptureError(
            f"{len(fragments)} fragment(s) of contact(s) {', '.join(contacts)}, but no "
            "AUDIO_FROM_CUSTOMER / AUDIO_TO_CUSTOMER track: no Connect audio to replay"
        )
    return Capture(fragments, errors, len(reader.dropped), contacts)


def _captured(fragment: Fragment, raw: bytes) -> CapturedFragment:
    head, body, tail = _split(raw)
    start = _producer_ms(fragment)
    return CapturedFragment(
        position=fragment.index,
        contact_id=fragment.contact_id,
        instance_id=fragment.tag("InstanceId"),
        producer_timestamp_ms=start,
        duration_ms=_duration_ms(fragment, start),
        parts=EncodedFragment(head=head, body=body, tail=tail),
        captured_number=fragment.fragment_number,
    )


def _producer_ms(fragment: Fragment) -> int:
    """KVS's producer timestamp tag (decimal seconds), else the first block's time."""
    text = fragment.producer_timestamp
    if text:
        try:
            return int(Decimal(text) * 1000)
        except InvalidOperation:
            pass
    if fragment.blocks:
        return min(b.timecode for b in fragment.blocks) * fragment.timecode_scale // 1_000_000
    raise CaptureError(f"fragment {fragment.index} has neither a producer timestamp nor blocks")


def _duration_ms(fragment: Fragment, start: int) -> int:
    """From the fragment's `start` to the end of its last block (PCM: bytes / bytes per ms)."""
    tracks = {t.number: t for t in fragment.tracks}
    end = start + 1
    for block in fragment.blocks:
        track = tracks.get(block.track)
        per_ms = (track.sampling_frequency * track.channels * 2 / 1000) if track else 16.0
        length = sum(len(frame) for frame in block.frames) / max(per_ms, 1.0)
        block_ms = block.timecode * fragment.timecode_scale // 1_000_000
        end = max(end, int(block_ms + length))
    return end - start


# --- the document's elements ----------------------------------------------------------------


def _element(data: bytes, pos: int) -> tuple[int, int, int | None]:
    """(id, header length, payload size or None if unknown) of the element at `pos`."""
    element_id, id_width = read_element_id(data, pos)
    size, size_width = read_vint(data, pos + id_width)
    return element_id, id_width + size_width, size


def _end_of(data: bytes, pos: int, element_id: int, header: int, size: int | None) -> int:
    """Where the element at `pos` ends (an unknown-size Cluster: at its first non-child)."""
    if size is not None:
        return min(len(data), pos + header + size)
    if element_id != MKV_ID_CLUSTER:
        return len(data)
    child = pos + header
    while child < len(data):
        child_id, child_header, child_size = _element(data, child)
        if child_id not in CLUSTER_CHILDREN or child_size is None:
            break
        child += child_header + child_size
    return min(child, len(data))


def _split(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """(head, body, tail): the document without KVS's tags, cut where they were (before the
    Cluster: between head and body; after it: between body and tail)."""
    try:
        return _split_elements(raw)
    except MkvError as exc:  # the reader read this document whole: not expected
        raise CaptureError(f"a fragment cannot be taken apart: {exc}") from None


def _split_elements(raw: bytes) -> tuple[bytes, bytes, bytes]:
    pos = 0
    head = bytearray()
    element_id, header, size = _element(raw, pos)
    if element_id != EBML_ID_HEADER or size is None:
        raise CaptureError("a fragment does not start with an EBML header")
    head += raw[: header + size]
    pos = header + size
    element_id, header, size = _element(raw, pos)
    if element_id != MKV_ID_SEGMENT:
        raise CaptureError(
            f"a fragment's EBML header is followed by {element_id:#x}, not a Segment"
        )
    # Cutting elements out changes a known Segment size: write it as unknown, as GetMedia does.
    head += raw[pos : pos + header] if size is None else raw[pos : pos + 4] + UNKNOWN_SEGMENT_SIZE
    pos += header
    children: list[tuple[bytes, bool, bool]] = []  # (bytes, is KVS's tags, is a Cluster)
    while pos < len(raw):
        element_id, header, size = _element(raw, pos)
        end = _end_of(raw, pos, element_id, header, size)
        kvs = element_id == MKV_ID_TAGS and _all_kvs(raw, pos + header, end)
        children.append((raw[pos:end], kvs, element_id == MKV_ID_CLUSTER))
        pos = end
    cluster = next((n for n, child in enumerate(children) if child[2]), len(children))
    before = next((n for n, c in enumerate(children[:cluster]) if c[1]), cluster)
    after = next((n for n, c in enumerate(children) if n > cluster and c[1]), len(children))
    keep = [(n, data) for n, (data, kvs, _) in enumerate(children) if not kvs]
    head += b"".join(data for n, data in keep if n < before)
    body = b"".join(data for n, data in keep if before <= n < after)
    tail = b"".join(data for n, data in keep if n >= after)
    return bytes(head), body, tail


def _all_kvs(raw: bytes, start: int, end: int) -> bool:
    """A Tags element holding KVS's tags only."""
    tags: list[SimpleTag] = []
    read_tags(raw, start, end, 0, tags)
    return bool(tags) and all(tag.name.startswith(KVS_TAG_PREFIX) for tag in tags)
