"""Connect stream producer: Matroska bytes laid out exactly as Amazon Connect and KVS write them.

Dev-only. Feeds the local KVS emulator, the reader's tests and the benchmark. The layout (element
order, size-field widths, tag names and values) follows a real Connect fragment element by element
(`tests/fixtures/connect-layout/real-connect-fragment-dump.txt`): given that fragment's ids and
timestamps, `encode_fragment` reproduces its offsets and sizes exactly.

Two kinds of objects:
- a `FragmentSpec` is what Connect ingests into KVS (Connect tags, tracks, one Cluster of interleaved
  blocks); `encode_fragment` turns it into one EBML document, optionally with the `KvsTags` that KVS
  adds per GetMedia response;
- a `ConnectCall` is one contact: two PCM sources cut into blocks and fragments, with the test-case
  options (track order, tags layout, CRC-32/Void, gaps, duplicates, jitter, hang-up), and its ground
  truth: the aligned customer/agent PCM a correct reader must produce.

It deliberately does not parse anything: tests check it with an independent EBML walk (ebmlite), never
with the project's own reader.
"""

from __future__ import annotations

import enum
import io
import math
import random
import struct
import wave
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

# --- Matroska element IDs (spec names) ------------------------------------------------------------
EBML_ID_EBML = 0x1A45DFA3
EBML_ID_EBML_VERSION = 0x4286
EBML_ID_EBML_READ_VERSION = 0x42F7
EBML_ID_EBML_MAX_ID_LENGTH = 0x42F2
EBML_ID_EBML_MAX_SIZE_LENGTH = 0x42F3
EBML_ID_DOC_TYPE = 0x4282
EBML_ID_DOC_TYPE_VERSION = 0x4287
EBML_ID_DOC_TYPE_READ_VERSION = 0x4285
EBML_ID_CRC32 = 0xBF
EBML_ID_VOID = 0xEC
MKV_ID_SEGMENT = 0x18538067
MKV_ID_INFO = 0x1549A966
MKV_ID_SEGMENT_UID = 0x73A4
MKV_ID_TIMECODE_SCALE = 0x2AD7B1
MKV_ID_TITLE = 0x7BA9
MKV_ID_MUXING_APP = 0x4D80
MKV_ID_WRITING_APP = 0x5741
MKV_ID_TRACKS = 0x1654AE6B
MKV_ID_TRACK_ENTRY = 0xAE
MKV_ID_TRACK_NUMBER = 0xD7
MKV_ID_TRACK_UID = 0x73C5
MKV_ID_TRACK_TYPE = 0x83
MKV_ID_NAME = 0x536E
MKV_ID_CODEC_ID = 0x86
MKV_ID_CODEC_PRIVATE = 0x63A2
MKV_ID_TAGS = 0x1254C367
MKV_ID_TAG = 0x7373
MKV_ID_SIMPLE_TAG = 0x67C8
MKV_ID_TAG_NAME = 0x45A3
MKV_ID_TAG_STRING = 0x4487
MKV_ID_CLUSTER = 0x1F43B675
MKV_ID_TIMECODE = 0xE7
MKV_ID_POSITION = 0xA7
MKV_ID_SIMPLE_BLOCK = 0xA3

# --- Connect audio ---------------------------------------------------------------------------------
SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2
BLOCK_SAMPLES = 512
BLOCK_BYTES = BLOCK_SAMPLES * SAMPLE_WIDTH
BLOCK_MS = BLOCK_SAMPLES * 1000 // SAMPLE_RATE  # 64
BLOCKS_PER_TRACK_PER_FRAGMENT = 16
TIMECODE_SCALE_NS = 1_000_000
MIME_TYPE = "audio/L16;rate=8000;channels=1;"
TRACK_FROM_CUSTOMER = "AUDIO_FROM_CUSTOMER"
TRACK_TO_CUSTOMER = "AUDIO_TO_CUSTOMER"
# TrackUIDs, which the AUDIO_* tag values name (not TrackNumbers).
TRACK_UIDS = {TRACK_FROM_CUSTOMER: 1, TRACK_TO_CUSTOMER: 2}
# AAC-LC, 8 kHz, mono AudioSpecificConfig: what a CodecID of A_AAC would carry.
AAC_CODEC_PRIVATE = b"\x15\x88"
KVS_TITLE = "Kinesis Video SDK"
KVS_MUXING_APP = "Kinesis Video SDK 1.1.0 JNI 2.0"

# --- KVS tags ---------------------------------------------------------------------------------------
TAG_FRAGMENT_NUMBER = "AWS_KINESISVIDEO_FRAGMENT_NUMBER"
TAG_SERVER_TIMESTAMP = "AWS_KINESISVIDEO_SERVER_TIMESTAMP"
TAG_PRODUCER_TIMESTAMP = "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP"
TAG_MILLIS_BEHIND_NOW = "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW"
TAG_CONTINUATION_TOKEN = "AWS_KINESISVIDEO_CONTINUATION_TOKEN"  # noqa: S105 (a tag name)
TAG_ERROR_CODE = "AWS_KINESISVIDEO_ERROR_CODE"
TAG_ERROR_ID = "AWS_KINESISVIDEO_ERROR_ID"

UNKNOWN_SIZE_1 = b"\xff"
UNKNOWN_SIZE_8 = b"\x01\xff\xff\xff\xff\xff\xff\xff"

_INT16 = struct.Struct(">h")


class TrackOrder(enum.Enum):
    """Which track gets TrackNumber 1: both occur in real captures."""

    TO_CUSTOMER_FIRST = "to-first"  # the layout of the real dump
    FROM_CUSTOMER_FIRST = "from-first"

    def names(self) -> tuple[str, str]:
        if self is TrackOrder.TO_CUSTOMER_FIRST:
            return (TRACK_TO_CUSTOMER, TRACK_FROM_CUSTOMER)
        return (TRACK_FROM_CUSTOMER, TRACK_TO_CUSTOMER)


class TagsLayout(enum.Enum):
    """Where Connect's tags sit relative to the Cluster."""

    BOTH = "2026"  # before and after the Cluster (the real dump)
    AFTER_ONLY = "2024"  # only after the Cluster, plus `Events = []`
    NONE = "none"  # unconfirmed reports of fragments without tags


# --- EBML writing primitives -----------------------------------------------------------------------


def encode_id(element_id: int) -> bytes:
    """An element ID as written: its bytes include the length marker already."""
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")


def encode_size(size: int, width: int) -> bytes:
    """A size vint of exactly `width` bytes (Connect and KVS use several widths; never assume one)."""
    if not 1 <= width <= 8:
        raise ValueError(f"size width must be 1..8, got {width}")
    if size >= (1 << (7 * width)) - 1:
        raise ValueError(f"size {size} does not fit a {width}-byte vint")
    return ((1 << (7 * width)) | size).to_bytes(width, "big")


def element(element_id: int, payload: bytes, width: int = 1) -> bytes:
    """One element with a known size written in a size field of `width` bytes."""
    return encode_id(element_id) + encode_size(len(payload), width) + payload


def uint_element(element_id: int, value: int, nbytes: int, width: int = 1) -> bytes:
    """An unsigned integer element whose value takes exactly `nbytes` bytes (KVS writes 8 for some)."""
    return element(element_id, value.to_bytes(nbytes, "big"), width)


def str_element(element_id: int, value: str, width: int = 1) -> bytes:
    return element(element_id, value.encode("utf-8"), width)


def crc32_element(payload: bytes) -> bytes:
    """A CRC-32 element over `payload` (the parent's other children), stored little-endian."""
    return element(EBML_ID_CRC32, struct.pack("<I", zlib.crc32(payload)))


def void_element(total_size: int) -> bytes:
    """A Void element taking `total_size` bytes in all (at least 2)."""
    if total_size < 2:
        raise ValueError("a Void element takes at least 2 bytes")
    return element(EBML_ID_VOID, b"\x00" * (total_size - 2))


def _master(element_id: int, children: bytes, width: int, crc: bool) -> bytes:
    if crc:
        children = crc32_element(children) + children
    return element(element_id, children, width)


def simple_tags_element(tags: Sequence[tuple[str, str]], width: int, crc: bool = False) -> bytes:
    """A segment-level Tags holding one Tag with the given SimpleTags, all sizes `width` bytes wide."""
    simple = b"".join(
        _master(
            MKV_ID_SIMPLE_TAG,
            str_element(MKV_ID_TAG_NAME, name, width)
            + str_element(MKV_ID_TAG_STRING, value, width),
            width,
            crc=False,
        )
        for name, value in tags
    )
    return _master(MKV_ID_TAGS, _master(MKV_ID_TAG, simple, width, crc=False), width, crc)


def ebml_header() -> bytes:
    """The EBML header every KVS chunk starts with (matroska, DocTypeVersion 2)."""
    return element(
        EBML_ID_EBML,
        uint_element(EBML_ID_EBML_VERSION, 1, 1)
        + uint_element(EBML_ID_EBML_READ_VERSION, 1, 1)
        + uint_element(EBML_ID_EBML_MAX_ID_LENGTH, 4, 1)
        + uint_element(EBML_ID_EBML_MAX_SIZE_LENGTH, 8, 1)
        + str_element(EBML_ID_DOC_TYPE, "matroska")
        + uint_element(EBML_ID_DOC_TYPE_VERSION, 2, 1)
        + uint_element(EBML_ID_DOC_TYPE_READ_VERSION, 2, 1),
    )


def segment_start() -> bytes:
    """An unknown-size Segment header (8-byte size field of all ones, as KVS writes it)."""
    return encode_id(MKV_ID_SEGMENT) + UNKNOWN_SIZE_8


def format_timestamp(ms: int) -> str:
    """KVS timestamp tag value: decimal seconds with milliseconds, e.g. `1782912654.536`."""
    return f"{ms // 1000}.{ms % 1000:03d}"


# --- fragments ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Block:
    """One SimpleBlock: its track (by Name), absolute timestamp (ms) and raw PCM payload."""

    track: str
    timestamp_ms: int
    pcm: bytes


@dataclass(frozen=True, slots=True)
class FragmentSpec:
    """One fragment as Connect ingests it into KVS: no KVS tags (KVS adds them at GetMedia time).

    `timecode_ms` is the Cluster Timecode and the producer timestamp; block timestamps are absolute and
    written relative to it. `void` adds Void elements (after Tracks, inside Info and between blocks);
    `crc32` adds CRC-32 elements to every known-size master (Info, Tracks, Tags).
    """

    contact_id: str
    instance_id: str
    timecode_ms: int
    blocks: tuple[Block, ...]
    track_order: TrackOrder = TrackOrder.TO_CUSTOMER_FIRST
    tags_layout: TagsLayout = TagsLayout.BOTH
    crc32: bool = False
    void: bool = False
    segment_uid: bytes = b"\x00" * 16

    @property
    def producer_timestamp_ms(self) -> int:
        return self.timecode_ms

    @property
    def duration_ms(self) -> int:
        """Span from the Cluster timecode to the end of its last block (at least 1 ms)."""
        if not self.blocks:
            return 1
        end = max(
            b.timestamp_ms + len(b.pcm) * 1000 // (SAMPLE_RATE * SAMPLE_WIDTH) for b in self.blocks
        )
        return max(1, end - self.timecode_ms)


@dataclass(frozen=True, slots=True)
class KvsTags:
    """The tags KVS adds to a fragment per GetMedia response.

    The first three go before the Cluster. MILLIS_BEHIND_NOW and CONTINUATION_TOKEN go after it (GetMedia
    only; GetMediaForFragmentList leaves them out: pass None for both).
    """

    fragment_number: str
    server_timestamp_ms: int
    producer_timestamp_ms: int
    millis_behind_now: int | None = None
    continuation_token: str | None = None


@dataclass(frozen=True, slots=True)
class EncodedFragment:
    """A fragment's bytes split where KVS inserts its tags: head + kvs_before + body + kvs_after.

    The emulator keeps these parts per stored fragment and only encodes the KVS tags per response.
    """

    head: bytes
    body: bytes
    # What follows KVS's after-Cluster tags (nothing from Connect; a replayed capture may have it).
    tail: bytes = b""

    def with_kvs(self, kvs: KvsTags | None) -> bytes:
        if kvs is None:
            return self.head + self.body + self.tail
        return self.head + kvs_tags_before(kvs) + self.body + kvs_tags_after(kvs) + self.tail


def connect_tags(spec: FragmentSpec, after_cluster: bool) -> bytes:
    """Connect's five tags, one Tags element each with 8-byte sizes (plus `Events = []` in 2024)."""
    tags = [
        ("ContactId", spec.contact_id),
        ("InstanceId", spec.instance_id),
        ("MimeType", MIME_TYPE),
        (TRACK_TO_CUSTOMER, str(TRACK_UIDS[TRACK_TO_CUSTOMER])),
        (TRACK_FROM_CUSTOMER, str(TRACK_UIDS[TRACK_FROM_CUSTOMER])),
    ]
    if after_cluster and spec.tags_layout is TagsLayout.AFTER_ONLY:
        tags.append(("Events", "[]"))
    return b"".join(simple_tags_element([t], width=8, crc=spec.crc32) for t in tags)


def kvs_tags_before(kvs: KvsTags) -> bytes:
    return simple_tags_element(
        [
            (TAG_FRAGMENT_NUMBER, kvs.fragment_number),
            (TAG_SERVER_TIMESTAMP, format_timestamp(kvs.server_timestamp_ms)),
            (TAG_PRODUCER_TIMESTAMP, format_timestamp(kvs.producer_timestamp_ms)),
        ],
        width=4,
    )


def kvs_tags_after(kvs: KvsTags) -> bytes:
    tags: list[tuple[str, str]] = []
    if kvs.millis_behind_now is not None:
        tags.append((TAG_MILLIS_BEHIND_NOW, str(kvs.millis_behind_now)))
    if kvs.continuation_token is not None:
        tags.append((TAG_CONTINUATION_TOKEN, kvs.continuation_token))
    return simple_tags_element(tags, width=4) if tags else b""


def _info(spec: FragmentSpec) -> bytes:
    children = (
        element(MKV_ID_SEGMENT_UID, spec.segment_uid)
        + uint_element(MKV_ID_TIMECODE_SCALE, TIMECODE_SCALE_NS, 8)
        + str_element(MKV_ID_TITLE, KVS_TITLE)
        + str_element(MKV_ID_MUXING_APP, KVS_MUXING_APP)
        + str_element(MKV_ID_WRITING_APP, KVS_MUXING_APP)
    )
    if spec.void:
        children += void_element(5)
    return _master(MKV_ID_INFO, children, width=2, crc=spec.crc32)


def _tracks(spec: FragmentSpec) -> bytes:
    entries = b""
    for number, name in enumerate(spec.track_order.names(), start=1):
        entries += _master(
            MKV_ID_TRACK_ENTRY,
            uint_element(MKV_ID_TRACK_NUMBER, number, 1)
            + uint_element(MKV_ID_TRACK_UID, TRACK_UIDS[name], 8)
            + uint_element(MKV_ID_TRACK_TYPE, 2, 1)
            + str_element(MKV_ID_NAME, name)
            + str_element(MKV_ID_CODEC_ID, "A_AAC")
            + element(MKV_ID_CODEC_PRIVATE, AAC_CODEC_PRIVATE),
            width=4,
            crc=False,
        )
    return _master(MKV_ID_TRACKS, entries, width=4, crc=spec.crc32)


def _cluster(spec: FragmentSpec) -> bytes:
    numbers = {name: n for n, name in enumerate(spec.track_order.names(), start=1)}
    parts = [
        encode_id(MKV_ID_CLUSTER) + UNKNOWN_SIZE_1,
        uint_element(MKV_ID_TIMECODE, spec.timecode_ms, 8),
        uint_element(MKV_ID_POSITION, 0, 1),
    ]
    for i, block in enumerate(spec.blocks):
        relative = block.timestamp_ms - spec.timecode_ms
        if not -32768 <= relative <= 32767:
            raise ValueError(
                f"block at {block.timestamp_ms} ms is {relative} ms from its cluster "
                f"({spec.timecode_ms} ms): does not fit a SimpleBlock's int16 timecode"
            )
        # Track number as a 1-byte vint, int16 relative timecode, flags (keyframe).
        header = bytes([0x80 | numbers[block.track]]) + _INT16.pack(relative) + b"\x80"
        parts.append(element(MKV_ID_SIMPLE_BLOCK, header + block.pcm, width=8))
        if spec.void and i == len(spec.blocks) // 2:
            parts.append(void_element(12))
    return b"".join(parts)


def encode_fragment_parts(spec: FragmentSpec) -> EncodedFragment:
    """Encode a fragment once, split where KVS inserts its before- and after-Cluster tags."""
    head = ebml_header() + segment_start() + _info(spec) + _tracks(spec)
    if spec.void:
        head += void_element(9)
    if spec.tags_layout is TagsLayout.BOTH:
        head += connect_tags(spec, after_cluster=False)
    body = _cluster(spec)
    if spec.tags_layout is not TagsLayout.NONE:
        body += connect_tags(spec, after_cluster=True)
    return EncodedFragment(head=head, body=body)


def encode_fragment(spec: FragmentSpec, kvs: KvsTags | None = None) -> bytes:
    """One fragment as one complete EBML document; with `kvs`, as a GetMedia response carries it."""
    return encode_fragment_parts(spec).with_kvs(kvs)


def encode_error_chunk(code: str, error_id: str, fragment_number: str | None = None) -> bytes:
    """A KVS error chunk: EBML header, unknown-size Segment, one Tags with the error; no Cluster.

    A real one (aws/aws-sdk-js#3217, GetMediaForFragmentList, HTTP 200) also names the fragment it is
    about, in a third SimpleTag of the same Tag: pass `fragment_number` for that.
    """
    tags = [(TAG_ERROR_CODE, code), (TAG_ERROR_ID, error_id)]
    if fragment_number is not None:
        tags.append((TAG_FRAGMENT_NUMBER, fragment_number))
    return ebml_header() + segment_start() + simple_tags_element(tags, width=4)


# --- fragment numbers ---------------------------------------------------------------------------------

# Real fragment numbers are 47 decimal digits and increase along a stream.
_FRAGMENT_NUMBER_BASE = 91343852333181432392682062622220590765191907586


def fragment_number(stream_seed: int, index: int) -> str:
    """A realistic 47-digit fragment number: same width along a stream, so order is the same as text."""
    base = _FRAGMENT_NUMBER_BASE + (stream_seed % 10**12) * 10**20
    return str(base + index * 7919)


def encode_capture(
    specs: Sequence[FragmentSpec],
    *,
    stream_seed: int = 0,
    server_latency_ms: int = 170,
    millis_behind_now: int = 0,
    error_chunk: tuple[str, str] | None = None,
    truncate_last: int | None = None,
) -> bytes:
    """A whole GetMedia response body for `specs`, numbered as KVS would number them.

    `error_chunk=(code, id)` appends an error chunk; `truncate_last=n` drops the last `n` bytes (a cut
    mid-fragment). For large captures prefer `iter_capture`.
    """
    return b"".join(
        iter_capture(
            specs,
            stream_seed=stream_seed,
            server_latency_ms=server_latency_ms,
            millis_behind_now=millis_behind_now,
            error_chunk=error_chunk,
            truncate_last=truncate_last,
        )
    )


def iter_capture(
    specs: Sequence[FragmentSpec] | Iterator[FragmentSpec],
    *,
    stream_seed: int = 0,
    server_latency_ms: int = 170,
    millis_behind_now: int = 0,
    error_chunk: tuple[str, str] | None = None,
    truncate_last: int | None = None,
) -> Iterator[bytes]:
    """Chunks (one per fragment) of a GetMedia response body, in constant memory."""
    pending: bytes | None = None
    for index, spec in enumerate(specs):
        number = fragment_number(stream_seed, index)
        chunk = encode_fragment(
            spec,
            KvsTags(
                fragment_number=number,
                server_timestamp_ms=spec.timecode_ms + server_latency_ms,
                producer_timestamp_ms=spec.timecode_ms,
                millis_behind_now=millis_behind_now,
                continuation_token=number,
            ),
        )
        if pending is not None:
            yield pending
        pending = chunk
    if error_chunk is not None:
        if pending is not None:
            yield pending
        pending = encode_error_chunk(*error_chunk)
    if pending is not None:
        if truncate_last:
            pending = pending[: max(0, len(pending) - truncate_last)]
        yield pending


# --- calls ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Gap:
    """Blocks of `track` starting in [start_ms, end_ms) (relative to the call start) are never sent."""

    track: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Pause:
    """Media streaming stops `at_ms` after the call's start (rounded down to the block grid of
    the stretch being streamed) and starts again `length_ms` later, at any millisecond: the
    caller's audio in between is never streamed (the PCI case: digits typed into the IVR).
    `other_stream`: streaming restarts on another Kinesis video stream."""

    at_ms: int
    length_ms: int
    other_stream: bool = False


@dataclass(frozen=True, slots=True)
class StreamedSpan:
    """One stretch of media streaming: [start_ms, end_ms) after the call's start, and which of
    the call's streams carries it (0 the first; a restart on another stream adds one)."""

    start_ms: int
    end_ms: int
    stream: int


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """What a correct reader produces for one contact: aligned, equal-length mono PCM (int16 LE)."""

    start_ms: int
    customer: bytes
    agent: bytes

    @property
    def samples(self) -> int:
        return len(self.customer) // SAMPLE_WIDTH

    @property
    def duration_ms(self) -> int:
        return self.samples * 1000 // SAMPLE_RATE

    def stereo(self) -> bytes:
        """Interleaved stereo: left = customer, right = agent."""
        cu = np.frombuffer(self.customer, dtype="<i2")
        op = np.frombuffer(self.agent, dtype="<i2")
        return np.column_stack((cu, op)).astype("<i2").tobytes()


@dataclass
class ConnectCall:
    """One contact's audio as Connect streams it, and what a reader must make of it.

    `customer` (AUDIO_FROM_CUSTOMER) and `agent` (AUDIO_TO_CUSTOMER) are int16 LE mono 8 kHz PCM; the
    shorter is padded with silence (Connect sends both tracks for the whole call). Test-case options:
    - `gaps`: blocks never sent (the reader must fill them with silence);
    - `duplicate_fragments`: fragment indexes delivered twice (same content, a second copy right after);
    - `jitter_ms`: each block's timestamp moved by up to this many ms (< 20: absorbed by the reader);
    - `hangup_ms`: the call ends there (relative to its start), possibly mid-fragment and mid-block;
    - `track_order`, `tags_layout`, `crc32`, `void`: layout variants, see `FragmentSpec`;
    - `pauses`: media streaming stopped and restarted (`Pause`): no fragment at all meanwhile;
    - `contact_switches`: (ms after the start, contact id): from the first block at or after that
      time, fragments carry that ContactId (a transfer whose tags switch to the new contact); a
      switch starts a new fragment.
    With pauses or switches the timestamps must be exact (no jitter), and the ground truth of
    each contact is computed from the fragments themselves (`truth_of`).
    """

    contact_id: str
    instance_id: str
    start_ms: int
    customer: bytes
    agent: bytes
    block_samples: int = BLOCK_SAMPLES
    blocks_per_fragment: int = BLOCKS_PER_TRACK_PER_FRAGMENT
    track_order: TrackOrder = TrackOrder.TO_CUSTOMER_FIRST
    tags_layout: TagsLayout = TagsLayout.BOTH
    crc32: bool = False
    void: bool = False
    gaps: Sequence[Gap] = ()
    duplicate_fragments: frozenset[int] = frozenset()
    jitter_ms: int = 0
    jitter_seed: int = 0
    hangup_ms: int | None = None
    pauses: Sequence[Pause] = ()
    contact_switches: Sequence[tuple[int, str]] = ()
    _padded: tuple[bytes, bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.jitter_ms >= 20:
            raise ValueError("jitter of 20 ms or more is not absorbed by the alignment rules")
        if (self.pauses or self.contact_switches) and self.jitter_ms:
            raise ValueError("pauses and contact switches need exact timestamps: no jitter")
        for pause in self.pauses:
            if pause.at_ms < 0 or pause.length_ms <= 0:
                raise ValueError(f"a pause needs at_ms >= 0 and length_ms > 0, got {pause}")
        for name, pcm in (("customer", self.customer), ("agent", self.agent)):
            if len(pcm) % SAMPLE_WIDTH:
                raise ValueError(f"{name} PCM has an odd byte count {len(pcm)}")
        if (self.block_samples * 1000) % SAMPLE_RATE:
            raise ValueError("block_samples must be a whole number of milliseconds at 8 kHz")

    # --- audio ---
    def _sources(self) -> tuple[bytes, bytes]:
        if self._padded is None:
            n = max(len(self.customer), len(self.agent))
            if self.hangup_ms is not None:
                n = min(n, self.hangup_ms * SAMPLE_RATE // 1000 * SAMPLE_WIDTH)
            cu = self.customer[:n].ljust(n, b"\x00")
            op = self.agent[:n].ljust(n, b"\x00")
            self._padded = (cu, op)
        return self._padded

    @property
    def samples(self) -> int:
        return len(self._sources()[0]) // SAMPLE_WIDTH

    @property
    def block_ms(self) -> int:
        return self.block_samples * 1000 // SAMPLE_RATE

    @property
    def block_count(self) -> int:
        return math.ceil(self.samples / self.block_samples)

    @property
    def fragment_count(self) -> int:
        """Distinct fragments (duplicates not counted)."""
        return math.ceil(self.block_count / self.blocks_per_fragment)

    @property
    def end_ms(self) -> int:
        return self.start_ms + math.ceil(self.samples * 1000 / SAMPLE_RATE)

    def _in_gap(self, track: str, offset_ms: int) -> bool:
        return any(g.track == track and g.start_ms <= offset_ms < g.end_ms for g in self.gaps)

    @property
    def streamed(self) -> bool:
        """Whether the call streams with pauses or contact switches (the span-wise layout)."""
        return bool(self.pauses or self.contact_switches)

    @property
    def duration_ms(self) -> int:
        """The call's length: to its hang-up (or the end of its audio)."""
        return math.ceil(self.samples * 1000 / SAMPLE_RATE)

    def spans(self) -> list[StreamedSpan]:
        """The stretches of media streaming, in time order (one if the call never pauses)."""
        spans: list[StreamedSpan] = []
        start, stream = 0, 0
        for pause in sorted(self.pauses, key=lambda p: p.at_ms):
            stop = start + (max(pause.at_ms, start) - start) // self.block_ms * self.block_ms
            stop = min(stop, self.duration_ms)
            if stop > start:
                spans.append(StreamedSpan(start, stop, stream))
            start = max(start, stop + pause.length_ms)
            stream += 1 if pause.other_stream else 0
            if start >= self.duration_ms:
                return spans
        spans.append(StreamedSpan(start, self.duration_ms, stream))
        return spans

    def fragments_by_span(self) -> list[list[FragmentSpec]]:
        """Each span's fragments, in the order Connect ingests them (duplicates included)."""
        if not self.streamed:
            return [list(self.fragments())]
        return [list(self._span_fragments(span, index)) for index, span in enumerate(self.spans())]

    def _span_fragments(self, span: StreamedSpan, span_index: int) -> Iterator[FragmentSpec]:
        cu, op = self._sources()
        by_track = {TRACK_FROM_CUSTOMER: cu, TRACK_TO_CUSTOMER: op}
        first, second = self.track_order.names()
        switches = sorted(self.contact_switches)
        offsets = list(range(span.start_ms, span.end_ms, self.block_ms))
        # Fragments: at most blocks_per_fragment blocks, and a new one where the contact changes.
        groups: list[list[int]] = []
        for offset in offsets:
            contact = self._contact_at(offset, switches)
            if (
                not groups
                or len(groups[-1]) >= self.blocks_per_fragment
                or self._contact_at(groups[-1][0], switches) != contact
            ):
                groups.append([])
            groups[-1].append(offset)
        for number, group in enumerate(groups):
            blocks = []
            for offset in group:
                lo = offset * SAMPLE_RATE // 1000 * SAMPLE_WIDTH
                hi = min(lo + self.block_samples * SAMPLE_WIDTH, len(cu))
                hi = min(hi, span.end_ms * SAMPLE_RATE // 1000 * SAMPLE_WIDTH)
                for track in (first, second):
                    if hi > lo and not self._in_gap(track, offset):
                        blocks.append(Block(track, self.start_ms + offset, by_track[track][lo:hi]))
            index = span_index * 1_000_000 + number
            spec = FragmentSpec(
                contact_id=self._contact_at(group[0], switches),
                instance_id=self.instance_id,
                timecode_ms=self.start_ms + group[0],
                blocks=tuple(blocks),
                track_order=self.track_order,
                tags_layout=self.tags_layout,
                crc32=self.crc32,
                void=self.void,
                segment_uid=_segment_uid(self.contact_id, index),
            )
            yield spec
            if number in self.duplicate_fragments and span_index == 0:
                yield spec

    def _contact_at(self, offset_ms: int, switches: list[tuple[int, str]]) -> str:
        contact = self.contact_id
        for at_ms, switched in switches:
            if offset_ms >= at_ms:
                contact = switched
        return contact

    def fragments(self) -> Iterator[FragmentSpec]:
        """The fragment specs in the order Connect ingests them (duplicates included)."""
        if self.streamed:
            for span in self.fragments_by_span():
                yield from span
            return
        cu, op = self._sources()
        by_track = {TRACK_FROM_CUSTOMER: cu, TRACK_TO_CUSTOMER: op}
        first, second = self.track_order.names()
        rng = random.Random(self.jitter_seed)  # noqa: S311 (test data, not crypto)
        step = self.block_samples * SAMPLE_WIDTH
        # Jitter is kept off blocks whose position the reader takes literally: the first block of the
        # call (it defines the recording start) and the first block of a track after a gap (it decides
        # the silence inserted). Elsewhere it is absorbed, so the ground truth stays sample-exact.
        sent_before = {first: False, second: False}
        any_sent = False
        for index in range(self.fragment_count):
            blocks: list[Block] = []
            lo = index * self.blocks_per_fragment
            hi = min(lo + self.blocks_per_fragment, self.block_count)
            for k in range(lo, hi):
                offset_ms = k * self.block_ms
                for track in (first, second):
                    if self._in_gap(track, offset_ms):
                        sent_before[track] = False
                        continue
                    jitter = rng.randint(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0
                    if not (any_sent and sent_before[track]):
                        jitter = 0
                    any_sent = sent_before[track] = True
                    blocks.append(
                        Block(
                            track=track,
                            timestamp_ms=self.start_ms + offset_ms + jitter,
                            pcm=by_track[track][k * step : (k + 1) * step],
                        )
                    )
            timecode = min(
                (b.timestamp_ms for b in blocks), default=self.start_ms + lo * self.block_ms
            )
            spec = FragmentSpec(
                contact_id=self.contact_id,
                instance_id=self.instance_id,
                timecode_ms=timecode,
                blocks=tuple(blocks),
                track_order=self.track_order,
                tags_layout=self.tags_layout,
                crc32=self.crc32,
                void=self.void,
                segment_uid=_segment_uid(self.contact_id, index),
            )
            yield spec
            if index in self.duplicate_fragments:
                yield spec

    def ground_truth(self, contact_id: str | None = None) -> GroundTruth:
        """The aligned customer/agent PCM (gaps are silence; both tracks the same length).

        The recording starts at the earliest block sent (over both tracks); blocks never sent inside
        the recording become silence; the shorter track is padded with silence at the end. A call
        with pauses or contact switches: the truth of the fragments tagged `contact_id` (all of
        them if None), pauses as silence of their true length.
        """
        if self.streamed or contact_id is not None:
            return truth_of(
                s for s in self.fragments() if contact_id is None or s.contact_id == contact_id
            )
        cu, op = self._sources()
        step = self.block_samples * SAMPLE_WIDTH
        tracks = {TRACK_FROM_CUSTOMER: bytearray(cu), TRACK_TO_CUSTOMER: bytearray(op)}
        sent: dict[str, list[int]] = {TRACK_FROM_CUSTOMER: [], TRACK_TO_CUSTOMER: []}
        for k in range(self.block_count):
            for track, pcm in tracks.items():
                if self._in_gap(track, k * self.block_ms):
                    end = min((k + 1) * step, len(pcm))
                    pcm[k * step : end] = bytes(end - k * step)
                else:
                    sent[track].append(k)
        all_sent = sent[TRACK_FROM_CUSTOMER] + sent[TRACK_TO_CUSTOMER]
        if not all_sent:
            return GroundTruth(start_ms=self.start_ms, customer=b"", agent=b"")
        first = min(all_sent)
        # A track's audio ends with its last block sent; the other track decides the common length.
        end_bytes = 0
        ends: dict[str, int] = {}
        for track, pcm in tracks.items():
            ends[track] = min((max(sent[track]) + 1) * step, len(pcm)) if sent[track] else 0
            end_bytes = max(end_bytes, ends[track])
        out: dict[str, bytes] = {}
        for track, pcm in tracks.items():
            body = bytes(pcm[first * step : ends[track]]) if ends[track] > first * step else b""
            out[track] = body.ljust(end_bytes - first * step, b"\x00")
        return GroundTruth(
            start_ms=self.start_ms + first * self.block_ms,
            customer=out[TRACK_FROM_CUSTOMER],
            agent=out[TRACK_TO_CUSTOMER],
        )

    def with_options(self, **changes: object) -> ConnectCall:
        """A copy with some options changed (dataclasses.replace, typed loosely for tests)."""
        return replace(self, **changes)  # type: ignore[arg-type]


def truth_of(specs: Iterable[FragmentSpec]) -> GroundTruth:
    """What a correct reader makes of these fragments: every block placed at its timestamp from
    the earliest block on (8 samples a millisecond), whatever was not sent silence, each track
    ending with its last block and the shorter padded with silence. Exact when the timestamps
    are (no jitter)."""
    placed: dict[str, list[tuple[int, bytes]]] = {TRACK_FROM_CUSTOMER: [], TRACK_TO_CUSTOMER: []}
    for spec in specs:
        for block in spec.blocks:
            placed[block.track].append((block.timestamp_ms, block.pcm))
    stamps = [ts for blocks in placed.values() for ts, _ in blocks]
    if not stamps:
        return GroundTruth(start_ms=0, customer=b"", agent=b"")
    start = min(stamps)
    out: dict[str, bytearray] = {}
    for track, blocks in placed.items():
        buffer = bytearray()
        for ts, pcm in sorted(blocks, key=lambda b: b[0]):
            position = (ts - start) * SAMPLE_RATE // 1000 * SAMPLE_WIDTH
            if position > len(buffer):
                buffer += bytes(position - len(buffer))
            buffer[position : position + len(pcm)] = pcm
        out[track] = buffer
    n = max(len(b) for b in out.values())
    return GroundTruth(
        start_ms=start,
        customer=bytes(out[TRACK_FROM_CUSTOMER].ljust(n, b"\0")),
        agent=bytes(out[TRACK_TO_CUSTOMER].ljust(n, b"\0")),
    )


def _segment_uid(contact_id: str, index: int) -> bytes:
    return zlib.crc32(contact_id.encode()).to_bytes(4, "big") + index.to_bytes(12, "big")


# --- test signals ----------------------------------------------------------------------------------------


def speech_like(
    seconds: float, seed: int, *, pitch_hz: float = 140.0, talk_ratio: float = 0.6
) -> bytes:
    """Deterministic speech-like int16 LE PCM at 8 kHz: voiced syllables with formants and pauses.

    Pauses carry a low noise floor, never digital silence, so that silence a reader inserts (gaps) or
    audio it drops or repeats shows up in a sample-exact comparison.
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * SAMPLE_RATE)
    out = rng.normal(0.0, 12.0, n)  # noise floor
    t = 0
    talking = rng.random() < talk_ratio
    while t < n:
        length = int(rng.uniform(0.12, 0.35 if talking else 0.6) * SAMPLE_RATE)
        end = min(n, t + length)
        if talking and end > t:
            k = np.arange(end - t)
            f0 = pitch_hz * (
                1.0 + 0.15 * np.sin(2 * np.pi * rng.uniform(1.0, 4.0) * k / SAMPLE_RATE)
            )
            phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
            # Two formant bumps (one vowel per syllable) shape the harmonic amplitudes.
            f1, f2 = rng.uniform(300, 900), rng.uniform(900, 2500)
            two_cos = 2.0 * np.cos(phase)
            previous, current = np.zeros(end - t), np.sin(phase)
            voiced = np.zeros(end - t)
            for harmonic in range(1, int(3600 // pitch_hz) + 1):
                freq = pitch_hz * harmonic
                amp = np.exp(-(((freq - f1) / 250) ** 2)) + 0.6 * np.exp(
                    -(((freq - f2) / 400) ** 2)
                )
                if harmonic <= 3 or amp > 0.05:  # far from both formants: inaudible, skipped
                    voiced += (amp + 0.05) * current
                # sin((h+1)x) = 2 cos(x) sin(hx) - sin((h-1)x): cheaper than one sin per harmonic
                previous, current = current, two_cos * current - previous
            envelope = np.abs(np.sin(np.pi * k / max(1, end - t - 1))) ** 0.8
            out[t:end] += 6000.0 * rng.uniform(0.4, 1.0) * envelope * voiced / 3.0
        t = end
        talking = not talking if rng.random() < 0.7 else talking
    return np.clip(np.round(out), -32768, 32767).astype("<i2").tobytes()


def conversation(seconds: float, seed: int) -> tuple[bytes, bytes]:
    """(customer, agent) speech-like PCM of the same length, different voices."""
    return (
        speech_like(seconds, seed * 2 + 1, pitch_hz=210.0),
        speech_like(seconds, seed * 2 + 2, pitch_hz=115.0),
    )


def tone(seconds: float, freq_hz: float, amplitude: int = 8000) -> bytes:
    """A sine tone, int16 LE mono 8 kHz."""
    k = np.arange(round(seconds * SAMPLE_RATE))
    return (
        np.round(amplitude * np.sin(2 * np.pi * freq_hz * k / SAMPLE_RATE)).astype("<i2").tobytes()
    )


def read_wav_pcm(path: Path | str) -> bytes:
    """A WAV file as Connect's PCM: int16 LE mono 8 kHz (first channel; other rates resampled linearly)."""
    with wave.open(str(path), "rb") as wav:
        channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    if width != 2:
        raise ValueError(f"{path}: expected 16-bit PCM WAV, found {8 * width}-bit")
    samples = np.frombuffer(frames, dtype="<i2").reshape(-1, channels)[:, 0].astype(np.float64)
    if rate != SAMPLE_RATE and len(samples):
        n = round(len(samples) * SAMPLE_RATE / rate)
        samples = np.interp(np.arange(n) * rate / SAMPLE_RATE, np.arange(len(samples)), samples)
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


def write_wav_pcm(path: Path | str, pcm: bytes, channels: int = 1) -> None:
    """Write int16 LE PCM at 8 kHz as a WAV file (for fixtures and ground-truth dumps)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm)
    Path(path).write_bytes(buffer.getvalue())
