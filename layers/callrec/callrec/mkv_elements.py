"""Matroska elements: their IDs, their values, and readers of whole elements.

The pieces `mkv.MkvReader` is built from, kept apart from its streaming: element IDs named as in
the specification, variable-size integers, the value types (`Track`, `Block`, `SimpleTag`,
`Document`), and pure readers of a whole element's payload already in memory (Tags, Tracks, a
block, lacing). Each reads only the bytes it is given, so its outcome never depends on how the
input was chunked. `MkvError` is the one error; messages say what was expected, what was found,
and at which byte of the stream.

Deliberately not done here: framing, buffering, unknown sizes, documents (mkv.py), the layouts
of repeated fragment-level runs (mkv_layouts.py).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from callrec.errors import CallrecError

# Element IDs, named as in the Matroska specification.
EBML_ID_HEADER = 0x1A45DFA3
EBML_ID_DOCTYPE = 0x4282
EBML_ID_VOID = 0xEC
EBML_ID_CRC32 = 0xBF
MKV_ID_SEGMENT = 0x18538067
MKV_ID_SEEKHEAD = 0x114D9B74
MKV_ID_INFO = 0x1549A966
MKV_ID_TIMECODESCALE = 0x2AD7B1
MKV_ID_TRACKS = 0x1654AE6B
MKV_ID_TRACKENTRY = 0xAE
MKV_ID_TRACKNUMBER = 0xD7
MKV_ID_TRACKUID = 0x73C5
MKV_ID_TRACKTYPE = 0x83
MKV_ID_NAME = 0x536E
MKV_ID_CODECID = 0x86
MKV_ID_CONTENTENCODINGS = 0x6D80
MKV_ID_AUDIO = 0xE1
MKV_ID_SAMPLINGFREQUENCY = 0xB5
MKV_ID_CHANNELS = 0x9F
MKV_ID_BITDEPTH = 0x6264
MKV_ID_CLUSTER = 0x1F43B675
MKV_ID_TIMECODE = 0xE7
MKV_ID_SIMPLEBLOCK = 0xA3
MKV_ID_BLOCKGROUP = 0xA0
MKV_ID_BLOCK = 0xA1
MKV_ID_CUES = 0x1C53BB6B
MKV_ID_CHAPTERS = 0x1043A770
MKV_ID_ATTACHMENTS = 0x1941A469
MKV_ID_TAGS = 0x1254C367
MKV_ID_TAG = 0x7373
MKV_ID_SIMPLETAG = 0x67C8
MKV_ID_TAGNAME = 0x45A3
MKV_ID_TAGSTRING = 0x4487
MKV_ID_TAGBINARY = 0x4485
# What may be a child of a Cluster (besides CRC-32 and Void, which may be anywhere): Timecode,
# SilentTracks, Position, PrevSize, SimpleBlock, BlockGroup, EncryptedBlock. Anything else ends
# an unknown-size Cluster.
MKV_CLUSTER_CHILDREN = (
    MKV_ID_TIMECODE,
    0x5854,
    0xA7,
    0xAB,
    MKV_ID_SIMPLEBLOCK,
    MKV_ID_BLOCKGROUP,
    0xAF,
)

TRACK_TYPE_VIDEO = 1
TRACK_TYPE_AUDIO = 2
DEFAULT_TIMECODE_SCALE = 1_000_000
# A tick of at most one second: the coarsest scale that keeps a block's time meaningful (its
# relative timecode is an int16 of ticks: at 1 s a tick, a Cluster spans 9 hours already) and
# timestamps representable. Connect and KVS write 1,000,000 (1 ms). Larger, or 0, is refused.
MAX_TIMECODE_SCALE = 1_000_000_000
# Blocks and strings larger than this are refused rather than buffered (a real KVS fragment's
# largest element is a video frame of a few MB; a Connect block is 1 KB).
DEFAULT_MAX_ELEMENT_SIZE = 64 * 1024 * 1024
# What a SimpleTag's value is, where `read_tags` reports where each one is.
NO_VALUE, STRING_VALUE, BINARY_VALUE = 0, 1, 2

_FLOAT32 = struct.Struct(">f")
_FLOAT64 = struct.Struct(">d")
INT16 = struct.Struct(">h")
UINT32 = struct.Struct(">I")
UINT64 = struct.Struct(">Q")
# A block header with a one-byte track number: track number, relative timecode, flags.
BLOCK_HEAD = struct.Struct(">BhB")


def _vint_length(first: int) -> int:
    for length in range(1, 9):
        if first & (0x80 >> (length - 1)):
            return length
    return 0


# Length of a variable-size integer from its first byte (0: invalid, the byte 0x00).
VINT_LENGTH = bytes(_vint_length(b) for b in range(256))
# Element IDs are at most 4 bytes long (EBMLMaxIDLength 4).
ID_LENGTH = bytes(n if n <= 4 else 0 for n in VINT_LENGTH)
VINT_MARKER = tuple((1 << (7 * n)) - 1 if n else 0 for n in range(9))
VINT_MARKER_4 = VINT_MARKER[4]
VINT_MARKER_8 = VINT_MARKER[8]


class MkvError(CallrecError):
    """Input that is not the Matroska this reader accepts: says what, where, and what was expected.

    `offset` is the byte offset in the whole stream; `truncated` is true when the input ended
    inside an element rather than holding a wrong byte.
    """

    def __init__(self, message: str, offset: int, *, truncated: bool = False) -> None:
        super().__init__(f"{message} (at byte {offset})")
        self.reason = message
        self.offset = offset
        self.truncated = truncated


def read_element_id(data: bytes, pos: int) -> tuple[int, int]:
    """The element ID at `pos` (marker bits kept, as IDs are written) and its length."""
    if pos >= len(data):
        raise MkvError("expected an element ID, input ends", pos, truncated=True)
    length = ID_LENGTH[data[pos]]
    if not length:
        raise MkvError(f"expected an element ID, found byte 0x{data[pos]:02X}", pos)
    if pos + length > len(data):
        raise MkvError("expected an element ID, input ends inside it", pos, truncated=True)
    return int.from_bytes(data[pos : pos + length]), length


def read_vint(data: bytes, pos: int) -> tuple[int | None, int]:
    """The variable-size integer at `pos` and its length; `None` for the reserved all-ones value
    (an unknown size)."""
    if pos >= len(data):
        raise MkvError("expected a variable-size integer, input ends", pos, truncated=True)
    length = VINT_LENGTH[data[pos]]
    if not length:
        raise MkvError("expected a variable-size integer, found byte 0x00", pos)
    if pos + length > len(data):
        raise MkvError(
            "expected a variable-size integer, input ends inside it", pos, truncated=True
        )
    value = int.from_bytes(data[pos : pos + length]) & VINT_MARKER[length]
    return (None if value == VINT_MARKER[length] else value), length


def read_uint(payload: bytes) -> int:
    """An unsigned integer element's value (an empty payload is 0)."""
    return int.from_bytes(payload)


def read_float(payload: bytes, offset: int = 0) -> float:
    """A float element's value: 0, 4 or 8 bytes."""
    if not payload:
        return 0.0
    if len(payload) == 4:
        return float(_FLOAT32.unpack(payload)[0])
    if len(payload) == 8:
        return float(_FLOAT64.unpack(payload)[0])
    raise MkvError(f"expected a float of 0, 4 or 8 bytes, found {len(payload)} bytes", offset)


def read_timecode_scale(payload: bytes, offset: int) -> int:
    """A TimecodeScale's value: MkvError unless it is in 1..MAX_TIMECODE_SCALE nanoseconds."""
    scale = int.from_bytes(payload)
    if not 0 < scale <= MAX_TIMECODE_SCALE:
        raise MkvError(
            f"expected a TimecodeScale of 1 to {MAX_TIMECODE_SCALE} ns, found {scale}", offset
        )
    return scale


def read_string(payload: bytes) -> str:
    """A string element's value (NUL padding removed; invalid UTF-8 replaced, never fatal)."""
    return payload.split(b"\0", 1)[0].decode("utf-8", "replace")


@dataclass(slots=True)
class Track:
    """A TrackEntry, with Matroska defaults for what is absent (an Audio element without
    SamplingFrequency means 8000 Hz, without Channels means 1)."""

    number: int = 0
    uid: int | None = None
    type: int | None = None
    name: str = ""
    codec_id: str = ""
    sampling_frequency: float = 8000.0
    channels: int = 1
    bit_depth: int | None = None
    content_encoded: bool = False
    offset: int = 0


@dataclass(slots=True)
class Block:
    """A SimpleBlock or Block: its track number, its absolute timecode (Cluster Timecode plus the
    block's relative timecode, in TimecodeScale ticks) and its frames (several when laced)."""

    track: int
    timecode: int
    frames: list[bytes]
    offset: int


@dataclass(slots=True)
class SimpleTag:
    """One SimpleTag (nested SimpleTags are listed after their parent): TagString or TagBinary."""

    name: str
    value: str | bytes


@dataclass(slots=True)
class Document:
    """One EBML document: in a GetMedia response, one KVS fragment."""

    offset: int
    doc_type: str = "matroska"
    timecode_scale: int = DEFAULT_TIMECODE_SCALE
    tracks: list[Track] = field(default_factory=list)
    tags: list[SimpleTag] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    clusters: int = 0
    complete: bool = False
    end: int = 0


@dataclass(frozen=True, slots=True)
class Tail:
    """How the input ended (`MkvReader.close`): cleanly, or truncated inside an element.

    `document` is the last document (complete or not), if one was still open."""

    document: Document | None
    truncated: bool
    offset: int
    detail: str = ""


def split_lacing(payload: bytes, start: int, flags: int, offset: int) -> list[bytes]:  # noqa: PLR0912
    """The frames of a block's data from `start` (just after the flags byte): one when not laced,
    else Xiph, fixed-size or EBML lacing (flags bits 0x06) as the Matroska spec lays it out."""
    lacing = flags & 0x06
    end = len(payload)
    if not lacing:
        return [payload[start:]]
    if start >= end:
        raise MkvError("expected a lace count, block ends", offset)
    count = payload[start] + 1
    pos = start + 1
    sizes: list[int] = []
    if lacing == 0x02:  # Xiph
        for _ in range(count - 1):
            size = 0
            while True:
                if pos >= end:
                    raise MkvError("expected a Xiph lace size, block ends", offset)
                byte = payload[pos]
                pos += 1
                size += byte
                if byte != 255:
                    break
            sizes.append(size)
    elif lacing == 0x06:  # EBML
        first, length = read_vint(payload, pos)
        if first is None:
            raise MkvError("expected an EBML lace size, found the reserved value", offset)
        pos += length
        sizes.append(first)
        for _ in range(count - 2):
            raw, length = read_vint(payload, pos)
            if raw is None:
                raise MkvError(
                    "expected an EBML lace size difference, found the reserved value", offset
                )
            size = sizes[-1] + raw - (VINT_MARKER[length] >> 1)
            if size < 0:
                raise MkvError(f"expected a non-negative EBML lace size, found {size}", offset)
            pos += length
            sizes.append(size)
    else:  # fixed-size
        total = end - pos
        if total % count:
            raise MkvError(
                f"expected {count} equal fixed-size laced frames, found {total} bytes", offset
            )
        sizes = [total // count] * (count - 1)
    last = end - pos - sum(sizes)
    if last < 0:
        raise MkvError(
            f"expected laced frames of {sum(sizes)} bytes, block has {end - pos}", offset
        )
    frames = []
    for size in [*sizes, last]:
        frames.append(payload[pos : pos + size])
        pos += size
    return frames


def read_tags(  # noqa: PLR0912, PLR0915
    data: bytes,
    pos: int,
    end: int,
    base: int,
    out: list[SimpleTag],
    *,
    fields: list[tuple[str, int, int, int]] | None = None,
) -> None:
    """The SimpleTags of one whole Tags payload `data[pos:end]`, in document order (a nested
    SimpleTag after its parent); CRC-32, Void, Targets and unknown elements skipped. `fields`,
    if given, gets where each one's value is: (name, start, stop, kind), relative to `pos`,
    kind being NO_VALUE, STRING_VALUE or BINARY_VALUE."""
    origin = pos
    # [name, value, value start, value stop, kind] per SimpleTag, in document order
    pending: list[list[Any]] = []
    # The innermost open Tag/SimpleTag: where it ends and its entry (None for a Tag, or
    # directly in Tags); `stack` keeps the ones enclosing it.
    top_end = end
    entry: list[Any] | None = None
    stack: list[tuple[int, list[Any] | None]] = []
    id_length, vint_length, marker = ID_LENGTH, VINT_LENGTH, VINT_MARKER
    uint64, uint32 = UINT64.unpack_from, UINT32.unpack_from
    while True:
        while pos == top_end and stack:
            top_end, entry = stack.pop()
        if pos >= end:
            break
        first = data[pos]
        idlen = id_length[first]
        if not idlen or pos + idlen >= end:
            raise MkvError(
                f"expected an element ID inside Tags, found byte 0x{first:02X}", base + pos
            )
        if idlen == 2:  # TagName, TagString, SimpleTag, Tag: all two bytes long
            eid = first << 8 | data[pos + 1]
        else:
            eid = first if idlen == 1 else int.from_bytes(data[pos : pos + idlen])
        spos = pos + idlen
        slen = vint_length[data[spos]]
        if not slen or spos + slen > end:
            raise MkvError(f"expected the size of element 0x{eid:X} inside Tags", base + pos)
        if slen == 8:  # Connect's tags have 8-byte sizes, KVS's 4-byte ones
            size = uint64(data, spos)[0] & VINT_MARKER_8
        elif slen == 4:
            size = uint32(data, spos)[0] & VINT_MARKER_4
        else:
            size = int.from_bytes(data[spos : spos + slen]) & marker[slen]
        if size == marker[slen]:
            raise MkvError(f"element 0x{eid:X} inside Tags has an unknown size", base + pos)
        start = spos + slen
        stop = start + size
        if stop > top_end:
            raise MkvError(
                f"element 0x{eid:X} of {size} bytes overruns its parent ending at byte {base + top_end}",
                base + pos,
            )
        if eid == MKV_ID_SIMPLETAG:
            stack.append((top_end, entry))
            entry = [None, None, 0, 0, NO_VALUE]
            pending.append(entry)
            top_end = stop
            pos = start
        elif eid == MKV_ID_TAG:
            stack.append((top_end, entry))
            entry = None
            top_end = stop
            pos = start
        else:
            if entry is not None:
                if eid == MKV_ID_TAGNAME:
                    entry[0] = read_string(data[start:stop])
                elif eid == MKV_ID_TAGSTRING:
                    entry[1:] = read_string(data[start:stop]), start, stop, STRING_VALUE
                elif eid == MKV_ID_TAGBINARY:
                    entry[1:] = data[start:stop], start, stop, BINARY_VALUE
            pos = stop
    for name, value, vstart, vstop, kind in pending:
        if isinstance(name, str):
            out.append(SimpleTag(name, value if value is not None else ""))
            if fields is not None:
                fields.append((name, vstart - origin, vstop - origin, kind))


def children(data: bytes, pos: int, end: int, base: int) -> Iterator[tuple[int, int, int]]:
    """(id, payload start, payload end) of each child in the whole payload `data[pos:end]`.

    Nothing past `end` is read, so the outcome does not depend on what follows in the buffer
    (that is, on how the input was split into chunks)."""
    while pos < end:
        first = data[pos]
        idlen = ID_LENGTH[first]
        if not idlen:
            raise MkvError(f"expected an element ID, found byte 0x{first:02X}", base + pos)
        spos = pos + idlen
        if spos > end:
            raise MkvError(f"expected an element ID before byte {base + end}", base + pos)
        eid = first if idlen == 1 else int.from_bytes(data[pos:spos])
        slen = VINT_LENGTH[data[spos]] if spos < end else 0
        if spos < end and not slen:
            raise MkvError("expected a variable-size integer, found byte 0x00", base + spos)
        if not slen or spos + slen > end:
            raise MkvError(
                f"expected the size of element 0x{eid:X} before byte {base + end}", base + spos
            )
        size = int.from_bytes(data[spos : spos + slen]) & VINT_MARKER[slen]
        if size == VINT_MARKER[slen]:
            raise MkvError(
                f"element 0x{eid:X} has an unknown size; only Segment and Cluster may", base + pos
            )
        start = spos + slen
        stop = start + size
        if stop > end:
            raise MkvError(
                f"element 0x{eid:X} of {size} bytes overruns its parent ending at byte {base + end}",
                base + pos,
            )
        yield eid, start, stop
        pos = stop


def read_tracks(data: bytes, pos: int, end: int, base: int) -> list[Track]:  # noqa: PLR0912
    """The TrackEntries of one whole Tracks payload."""
    tracks: list[Track] = []
    for eid, start, stop in children(data, pos, end, base):
        if eid != MKV_ID_TRACKENTRY:
            continue
        track = Track(offset=base + start)
        for cid, cstart, cstop in children(data, start, stop, base):
            value = data[cstart:cstop]
            if cid == MKV_ID_TRACKNUMBER:
                track.number = int.from_bytes(value)
            elif cid == MKV_ID_TRACKUID:
                track.uid = int.from_bytes(value)
            elif cid == MKV_ID_TRACKTYPE:
                track.type = int.from_bytes(value)
            elif cid == MKV_ID_NAME:
                track.name = read_string(value)
            elif cid == MKV_ID_CODECID:
                track.codec_id = read_string(value)
            elif cid == MKV_ID_CONTENTENCODINGS:
                track.content_encoded = True
            elif cid == MKV_ID_AUDIO:
                for aid, astart, astop in children(data, cstart, cstop, base):
                    if aid == MKV_ID_SAMPLINGFREQUENCY:
                        track.sampling_frequency = read_float(data[astart:astop], base + astart)
                    elif aid == MKV_ID_CHANNELS:
                        track.channels = int.from_bytes(data[astart:astop])
                    elif aid == MKV_ID_BITDEPTH:
                        track.bit_depth = int.from_bytes(data[astart:astop])
        tracks.append(track)
    return tracks


def read_block(data: bytes, start: int, stop: int, offset: int, cluster_timecode: int) -> Block:
    """A SimpleBlock's or Block's payload `data[start:stop]`; `offset` is the element's."""
    if stop - start < 4:
        raise MkvError(f"expected a block header of at least 4 bytes, found {stop - start}", offset)
    tlen = VINT_LENGTH[data[start]]
    if not tlen or start + tlen + 3 > stop:
        raise MkvError("expected a track number in the block header", offset)
    track = int.from_bytes(data[start : start + tlen]) & VINT_MARKER[tlen]
    rel = INT16.unpack_from(data, start + tlen)[0]
    flags = data[start + tlen + 2]
    if flags & 0x06:
        frames = split_lacing(data[start:stop], tlen + 3, flags, offset)
    else:
        frames = [data[start + tlen + 3 : stop]]
    return Block(track, cluster_timecode + rel, frames, offset)


def read_whole(
    eid: int, data: bytes, start: int, stop: int, base: int
) -> list[SimpleTag] | list[Track] | list[str]:
    """A whole Tags (its SimpleTags), Tracks (its Tracks) or EBML header (its DocType, which
    must be matroska or webm) payload `data[start:stop]`."""
    if eid == MKV_ID_TAGS:
        tags: list[SimpleTag] = []
        read_tags(data, start, stop, base, tags)
        return tags
    if eid == MKV_ID_TRACKS:
        return read_tracks(data, start, stop, base)
    doc_type = "matroska"
    for cid, cstart, cstop in children(data, start, stop, base):
        if cid == EBML_ID_DOCTYPE:
            doc_type = read_string(data[cstart:cstop])
    if doc_type not in ("matroska", "webm"):
        raise MkvError(f"expected DocType 'matroska' or 'webm', found {doc_type!r}", base + start)
    return [doc_type]
