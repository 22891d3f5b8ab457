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
from callrec_local.producer import EncodedFragment

KVS_TAG_PREFIX = "AWS_KINESISVIDEO_"
ID_EBML = 0x1A45DFA3
ID_SEGMENT = 0x18538067
ID_CLUSTER = 0x1F43B675
ID_TAGS = 0x1254C367
# Masters on the way from Tags to a TagName: Tag, Targets, SimpleTag.
TAG_MASTERS = frozenset({0x7373, 0x63C0, 0x67C8})
ID_TAG_NAME = 0x45A3
# What may be a child of a Cluster (Matroska spec): Timecode, SilentTracks, Position, PrevSize,
# SimpleBlock, BlockGroup, EncryptedBlock, Void, CRC-32. Anything else ends an unknown-size one.
CLUSTER_CHILDREN = frozenset({0xE7, 0x5854, 0xA7, 0xAB, 0xA3, 0xA0, 0xAF, 0xEC, 0xBF})
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
    if not data.startswith(ID_EBML.to_bytes(4, "big")):
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
    return CapturedFragment(
        position=fragment.index,
        contact_id=fragment.contact_id,
        instance_id=fragment.tag("InstanceId"),
        producer_timestamp_ms=_producer_ms(fragment),
        duration_ms=_duration_ms(fragment),
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


def _duration_ms(fragment: Fragment) -> int:
    """From the fragment's start to the end of its last block (PCM: bytes / bytes per ms)."""
    start = _producer_ms(fragment)
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


def _vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int | None, int]:
    """An EBML variable-length integer at `pos`: (value, width); None for an unknown size."""
    if pos >= len(data):
        raise CaptureError(f"element cut off at byte {pos}")
    first = data[pos]
    width = 1
    while width <= 8 and not first & (0x80 >> (width - 1)):
        width += 1
    if width > 8 or pos + width > len(data):
        raise CaptureError(f"bad EBML number at byte {pos}")
    value = int.from_bytes(data[pos : pos + width], "big")
    if keep_marker:
        return value, width
    value &= (1 << (7 * width)) - 1
    return (None if value == (1 << (7 * width)) - 1 else value), width


def _element(data: bytes, pos: int) -> tuple[int, int, int | None]:
    """(id, header length, payload size or None if unknown) of the element at `pos`."""
    element_id, id_width = _vint(data, pos, keep_marker=True)
    assert element_id is not None
    size, size_width = _vint(data, pos + id_width, keep_marker=False)
    return element_id, id_width + size_width, size


def _end_of(data: bytes, pos: int) -> int:
    """Where the element at `pos` ends (an unknown-size Cluster: at its first non-child)."""
    element_id, header, size = _element(data, pos)
    if size is not None:
        return min(len(data), pos + header + size)
    if element_id != ID_CLUSTER:
        return len(data)
    child = pos + header
    while child < len(data):
        child_id, child_header, child_size = _element(data, child)
        if child_id not in CLUSTER_CHILDREN or child_size is None:
            break
        child += child_header + child_size
    return min(child, len(data))


def _tag_names(data: bytes, start: int, end: int) -> list[str]:
    names: list[str] = []
    pos = start
    while pos < end:
        element_id, header, size = _element(data, pos)
        payload_end = end if size is None else min(end, pos + header + size)
        if element_id in TAG_MASTERS:
            names.extend(_tag_names(data, pos + header, payload_end))
        elif element_id == ID_TAG_NAME:
            names.append(data[pos + header : payload_end].decode("utf-8", "replace"))
        pos = payload_end
    return names


def _split(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """(head, body, tail): the document without KVS's tags, cut where they were (before the
    Cluster: between head and body; after it: between body and tail)."""
    pos = 0
    head = bytearray()
    element_id, header, size = _element(raw, pos)
    if element_id != ID_EBML or size is None:
        raise CaptureError("a fragment does not start with an EBML header")
    head += raw[: header + size]
    pos = header + size
    element_id, header, size = _element(raw, pos)
    if element_id != ID_SEGMENT:
        raise CaptureError(
            f"a fragment's EBML header is followed by {element_id:#x}, not a Segment"
        )
    # Cutting elements out changes a known Segment size: write it as unknown, as GetMedia does.
    head += raw[pos : pos + header] if size is None else raw[pos : pos + 4] + UNKNOWN_SEGMENT_SIZE
    pos += header
    children: list[tuple[bytes, bool, bool]] = []  # (bytes, is KVS's tags, is a Cluster)
    while pos < len(raw):
        element_id, header, size = _element(raw, pos)
        end = _end_of(raw, pos)
        kvs = element_id == ID_TAGS and _all_kvs(raw, pos + header, end)
        children.append((raw[pos:end], kvs, element_id == ID_CLUSTER))
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
    names = _tag_names(raw, start, end)
    return bool(names) and all(name.startswith(KVS_TAG_PREFIX) for name in names)
