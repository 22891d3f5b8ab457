"""A streaming EBML/Matroska reader for GetMedia responses and ordinary Matroska files.

Bytes are pushed in any chunking (`MkvReader.feed`) and come out as `Document`s: one per EBML
document (a KVS fragment is one document), holding what a recorder needs and nothing more: the
DocType, TimecodeScale, track entries, SimpleTags in document order and the blocks with their
absolute timecodes (Cluster Timecode + relative, in TimecodeScale ticks), laced frames split.

Deliberately not done here: KVS or Connect meaning of tags and tracks (fragments.py), timing in
seconds or samples (alignment.py), seeking, Cues, Chapters, Attachments, video details.

Framing rules (Matroska / RFC 8794):
- several EBML documents may follow each other; an EBML header always starts a new one;
- only Segment and Cluster may have an unknown size; such an element ends where an element that
  cannot be its child starts, at the next EBML header, or at the end of input;
- CRC-32 and Void may appear anywhere and are skipped, as are unknown element IDs;
- a document is complete once the next EBML header starts or the input ends cleanly between
  elements with no known-size element left unfinished; otherwise it is truncated.

Memory is bounded by one document plus one element: payloads are only buffered as they arrive,
never allocated from a size field, and skipped elements are counted, not kept.

Speed (a 45-minute Connect call is 84,000 blocks in 2,600 fragments): what Connect repeats is
read once. Identical Tracks, Tags and EBML headers are parsed once (by their bytes); the runs
of elements before and after each Cluster are read like the previous fragment's when their
bytes match outside tag values (`_Layout`); a run of equal-sized SimpleBlocks is unpacked by
one struct. Each of these gives what the element-by-element path gives, which reads the rest.
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

# Parents of the elements whose position matters: an unknown-size master ends at the first
# element that is known and is not its child. Elements missing here are unknown and skipped.
_SEGMENT_CHILDREN = (
    MKV_ID_SEEKHEAD,
    MKV_ID_INFO,
    MKV_ID_TRACKS,
    MKV_ID_CLUSTER,
    MKV_ID_CUES,
    MKV_ID_CHAPTERS,
    MKV_ID_ATTACHMENTS,
    MKV_ID_TAGS,
)
_CLUSTER_CHILDREN = (
    MKV_ID_TIMECODE,
    0x5854,
    0xA7,
    0xAB,
    MKV_ID_SIMPLEBLOCK,
    MKV_ID_BLOCKGROUP,
    0xAF,
)
_BLOCKGROUP_CHILDREN = (MKV_ID_BLOCK, 0xA2, 0x75A1, 0x9B, 0xFA, 0xFB, 0xFD, 0xA4, 0x75A2, 0x8E)
_INFO_CHILDREN = (0x73A4, 0x7384, 0x3CB923, 0x3C83AB, 0x3EB923, 0x3E83BB, 0x4444, 0x6924)
_INFO_CHILDREN2 = (MKV_ID_TIMECODESCALE, 0x4489, 0x4461, 0x7BA9, 0x4D80, 0x5741)
_TRACKENTRY_CHILDREN = (
    MKV_ID_TRACKNUMBER,
    MKV_ID_TRACKUID,
    MKV_ID_TRACKTYPE,
    0xB9,
    0x88,
    0x55AA,
    0x9C,
    0x6DE7,
    0x6DF8,
    0x23E383,
    0x234E7A,
    0x23314F,
    0x55EE,
    MKV_ID_NAME,
    0x22B59C,
    0x22B59D,
    MKV_ID_CODECID,
    0x63A2,
    0x258688,
    0x7446,
    0x56AA,
    0x56BB,
    0xE0,
    MKV_ID_AUDIO,
    MKV_ID_CONTENTENCODINGS,
)
_PARENTS: dict[int, tuple[int, ...]] = {
    EBML_ID_HEADER: (),
    MKV_ID_SEGMENT: (),
    **dict.fromkeys((0x4286, 0x42F7, 0x42F2, 0x42F3, 0x4282, 0x4287, 0x4285), (EBML_ID_HEADER,)),
    **dict.fromkeys(_SEGMENT_CHILDREN, (MKV_ID_SEGMENT,)),
    **dict.fromkeys(_CLUSTER_CHILDREN, (MKV_ID_CLUSTER,)),
    **dict.fromkeys(_BLOCKGROUP_CHILDREN, (MKV_ID_BLOCKGROUP,)),
    **dict.fromkeys(_INFO_CHILDREN + _INFO_CHILDREN2, (MKV_ID_INFO,)),
    MKV_ID_TRACKENTRY: (MKV_ID_TRACKS,),
    **dict.fromkeys(_TRACKENTRY_CHILDREN, (MKV_ID_TRACKENTRY,)),
    **dict.fromkeys(
        (MKV_ID_SAMPLINGFREQUENCY, 0x78B5, MKV_ID_CHANNELS, MKV_ID_BITDEPTH), (MKV_ID_AUDIO,)
    ),
    MKV_ID_TAG: (MKV_ID_TAGS,),
    0x63C0: (MKV_ID_TAG,),
    MKV_ID_SIMPLETAG: (MKV_ID_TAG, MKV_ID_SIMPLETAG),
    **dict.fromkeys(
        (MKV_ID_TAGNAME, 0x447A, 0x4484, MKV_ID_TAGSTRING, MKV_ID_TAGBINARY), (MKV_ID_SIMPLETAG,)
    ),
}
# Masters the reader descends into; every other known master is skipped whole.
_MASTERS = frozenset(
    (
        EBML_ID_HEADER,
        MKV_ID_SEGMENT,
        MKV_ID_INFO,
        MKV_ID_TRACKS,
        MKV_ID_TRACKENTRY,
        MKV_ID_AUDIO,
        MKV_ID_TAGS,
        MKV_ID_TAG,
        MKV_ID_SIMPLETAG,
        MKV_ID_CLUSTER,
        MKV_ID_BLOCKGROUP,
    )
)
# Leaves whose value the reader keeps (everything else is skipped without buffering).
_LEAVES = frozenset(
    (
        EBML_ID_DOCTYPE,
        MKV_ID_TIMECODESCALE,
        MKV_ID_TRACKNUMBER,
        MKV_ID_TRACKUID,
        MKV_ID_TRACKTYPE,
        MKV_ID_NAME,
        MKV_ID_CODECID,
        MKV_ID_SAMPLINGFREQUENCY,
        MKV_ID_CHANNELS,
        MKV_ID_BITDEPTH,
        MKV_ID_TAGNAME,
        MKV_ID_TAGSTRING,
        MKV_ID_TAGBINARY,
        MKV_ID_TIMECODE,
        MKV_ID_SIMPLEBLOCK,
        MKV_ID_BLOCK,
    )
)
_CACHE_SIZE = 64
# Runs of at least this many equal-sized SimpleBlocks are read by the run reader (below that,
# setting it up costs more than it saves).
_MIN_RUN = 4
# ... and at most this many at a time: a run is looked for block by block where sizes change,
# so each look must cost a bounded amount, not the rest of the buffer.
_MAX_RUN = 256
# The run reader's struct for each element header and block size: skipped element header,
# track number, relative timecode, flags, frame.
_RUN_FORMATS: dict[tuple[int, int], struct.Struct] = {}
# Masters read whole once buffered (small, and identical in every Connect fragment but Info).
_WHOLE = frozenset((EBML_ID_HEADER, MKV_ID_INFO, MKV_ID_TRACKS, MKV_ID_TAGS))
_UNKNOWN_SIZE_ALLOWED = frozenset((MKV_ID_SEGMENT, MKV_ID_CLUSTER))
_TOP_LEVEL = frozenset((EBML_ID_HEADER, MKV_ID_SEGMENT))
_TAGS_ID = MKV_ID_TAGS.to_bytes(4)
# What a SimpleTag's value is, in a layout (_Layout).
_NO_VALUE, _STRING_VALUE, _BINARY_VALUE = 0, 1, 2
# What a layout (_read_layout) may hold after the Segment header.
_LAYOUT_ELEMENTS = frozenset((MKV_ID_INFO, MKV_ID_TRACKS, MKV_ID_TAGS, EBML_ID_VOID, EBML_ID_CRC32))
# Layouts a reader keeps, and how many runs in a row may fail to give one before it stops trying.
_MAX_LAYOUTS = 8
_MAX_LAYOUT_MISSES = 16
# A layout keeps a copy of its run: longer runs (Connect's are about 1 KB) are not kept.
_MAX_LAYOUT_BYTES = 64 * 1024
# The stack entry of a Segment of unknown size with no known-size element around it.
_OPEN_SEGMENT = (MKV_ID_SEGMENT, -1, -1)

_FLOAT32 = struct.Struct(">f")
_FLOAT64 = struct.Struct(">d")
_INT16 = struct.Struct(">h")
_UINT32 = struct.Struct(">I")
_UINT64 = struct.Struct(">Q")
# A block header with a one-byte track number: track number, relative timecode, flags.
_BLOCK_HEAD = struct.Struct(">BhB")


def _vint_length(first: int) -> int:
    for length in range(1, 9):
        if first & (0x80 >> (length - 1)):
            return length
    return 0


# Length of a variable-size integer from its first byte (0: invalid, the byte 0x00).
_VINT_LENGTH = bytes(_vint_length(b) for b in range(256))
# Element IDs are at most 4 bytes long (EBMLMaxIDLength 4).
_ID_LENGTH = bytes(n if n <= 4 else 0 for n in _VINT_LENGTH)
_VINT_MARKER = tuple((1 << (7 * n)) - 1 if n else 0 for n in range(9))
_VINT_MARKER_4 = _VINT_MARKER[4]
_VINT_MARKER_8 = _VINT_MARKER[8]


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
    length = _ID_LENGTH[data[pos]]
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
    length = _VINT_LENGTH[data[pos]]
    if not length:
        raise MkvError("expected a variable-size integer, found byte 0x00", pos)
    if pos + length > len(data):
        raise MkvError(
            "expected a variable-size integer, input ends inside it", pos, truncated=True
        )
    value = int.from_bytes(data[pos : pos + length]) & _VINT_MARKER[length]
    return (None if value == _VINT_MARKER[length] else value), length


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
            size = sizes[-1] + raw - (_VINT_MARKER[length] >> 1)
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


def _read_tags(  # noqa: PLR0912, PLR0915
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
    kind being _NO_VALUE, _STRING_VALUE or _BINARY_VALUE."""
    origin = pos
    # [name, value, value start, value stop, kind] per SimpleTag, in document order
    pending: list[list[Any]] = []
    # The innermost open Tag/SimpleTag: where it ends and its entry (None for a Tag, or
    # directly in Tags); `stack` keeps the ones enclosing it.
    top_end = end
    entry: list[Any] | None = None
    stack: list[tuple[int, list[Any] | None]] = []
    id_length, vint_length, marker = _ID_LENGTH, _VINT_LENGTH, _VINT_MARKER
    uint64, uint32 = _UINT64.unpack_from, _UINT32.unpack_from
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
            size = uint64(data, spos)[0] & _VINT_MARKER_8
        elif slen == 4:
            size = uint32(data, spos)[0] & _VINT_MARKER_4
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
            entry = [None, None, 0, 0, _NO_VALUE]
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
                    entry[1:] = read_string(data[start:stop]), start, stop, _STRING_VALUE
                elif eid == MKV_ID_TAGBINARY:
                    entry[1:] = data[start:stop], start, stop, _BINARY_VALUE
            pos = stop
    for name, value, vstart, vstop, kind in pending:
        if isinstance(name, str):
            out.append(SimpleTag(name, value if value is not None else ""))
            if fields is not None:
                fields.append((name, vstart - origin, vstop - origin, kind))


def _children(data: bytes, pos: int, end: int, base: int) -> Iterator[tuple[int, int, int]]:
    """(id, payload start, payload end) of each child in the whole payload `data[pos:end]`.

    Nothing past `end` is read, so the outcome does not depend on what follows in the buffer
    (that is, on how the input was split into chunks)."""
    while pos < end:
        first = data[pos]
        idlen = _ID_LENGTH[first]
        if not idlen:
            raise MkvError(f"expected an element ID, found byte 0x{first:02X}", base + pos)
        spos = pos + idlen
        if spos > end:
            raise MkvError(f"expected an element ID before byte {base + end}", base + pos)
        eid = first if idlen == 1 else int.from_bytes(data[pos:spos])
        slen = _VINT_LENGTH[data[spos]] if spos < end else 0
        if spos < end and not slen:
            raise MkvError("expected a variable-size integer, found byte 0x00", base + spos)
        if not slen or spos + slen > end:
            raise MkvError(
                f"expected the size of element 0x{eid:X} before byte {base + end}", base + spos
            )
        size = int.from_bytes(data[spos : spos + slen]) & _VINT_MARKER[slen]
        if size == _VINT_MARKER[slen]:
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


def _read_tracks(data: bytes, pos: int, end: int, base: int) -> list[Track]:  # noqa: PLR0912
    """The TrackEntries of one whole Tracks payload."""
    tracks: list[Track] = []
    for eid, start, stop in _children(data, pos, end, base):
        if eid != MKV_ID_TRACKENTRY:
            continue
        track = Track(offset=base + start)
        for cid, cstart, cstop in _children(data, start, stop, base):
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
                for aid, astart, astop in _children(data, cstart, cstop, base):
                    if aid == MKV_ID_SAMPLINGFREQUENCY:
                        track.sampling_frequency = read_float(data[astart:astop], base + astart)
                    elif aid == MKV_ID_CHANNELS:
                        track.channels = int.from_bytes(data[astart:astop])
                    elif aid == MKV_ID_BITDEPTH:
                        track.bit_depth = int.from_bytes(data[astart:astop])
        tracks.append(track)
    return tracks


def _read_block(data: bytes, start: int, stop: int, offset: int, cluster_timecode: int) -> Block:
    """A SimpleBlock's or Block's payload `data[start:stop]`; `offset` is the element's."""
    if stop - start < 4:
        raise MkvError(f"expected a block header of at least 4 bytes, found {stop - start}", offset)
    tlen = _VINT_LENGTH[data[start]]
    if not tlen or start + tlen + 3 > stop:
        raise MkvError("expected a track number in the block header", offset)
    track = int.from_bytes(data[start : start + tlen]) & _VINT_MARKER[tlen]
    rel = _INT16.unpack_from(data, start + tlen)[0]
    flags = data[start + tlen + 2]
    if flags & 0x06:
        frames = split_lacing(data[start:stop], tlen + 3, flags, offset)
    else:
        frames = [data[start + tlen + 3 : stop]]
    return Block(track, cluster_timecode + rel, frames, offset)


def _whole_element(data: bytes, pos: int, n: int) -> tuple[int, int, int | None] | None:
    """(id, payload start, payload size or None if unknown) of the element at `pos`, if its
    header is buffered and valid; None otherwise (the caller leaves it to the main parser)."""
    if pos >= n:
        return None
    idlen = _ID_LENGTH[data[pos]]
    if not idlen or pos + idlen >= n:
        return None
    spos = pos + idlen
    slen = _VINT_LENGTH[data[spos]]
    if not slen or spos + slen > n:
        return None
    size = int.from_bytes(data[spos : spos + slen]) & _VINT_MARKER[slen]
    return (
        int.from_bytes(data[pos:spos]),
        spos + slen,
        None if size == _VINT_MARKER[slen] else size,
    )


def _segments(
    data: bytes, start: int, stop: int, holes: list[tuple[int, int]]
) -> tuple[tuple[int, bytes], ...]:
    """The bytes of `data[start:stop]` outside `holes`, as (offset from start, bytes)."""
    segments: list[tuple[int, bytes]] = []
    at = start
    for hole_start, hole_stop in sorted(holes):
        if hole_start > at:
            segments.append((at - start, data[at:hole_start]))
        at = max(at, hole_stop)
    if stop > at:
        segments.append((at - start, data[at:stop]))
    return tuple(segments)


@dataclass(slots=True)
class _Layout:
    """The bytes of a run of fragment-level elements, and what the reader makes of them, for
    reading the next fragment's like run without parsing it.

    Connect and KVS repeat, in every fragment, the same EBML header, Segment header, Info,
    Tracks and Tags: the run before the Cluster (`prefix`), and the Tags after it. Only tag
    values (fragment number, timestamps) and Info's SegmentUID change. A run whose bytes equal a
    layout's everywhere else (every element ID and size included, so its element structure is
    the same) holds the same elements: the reader takes the layout's result and slices the tag
    values where the layout found them. See `_read_layout` for the runs it covers."""

    prefix: bool  # EBML header, unknown-size Segment and what follows up to the Cluster
    length: int
    segments: tuple[tuple[int, bytes], ...]  # (offset, bytes) a like run must have
    # Tag values: offset, the layout's value bytes, its SimpleTag, end offset, value kind.
    fields: tuple[tuple[int, bytes, SimpleTag, int, int], ...]
    doc_type: str
    timecode_scale: int | None
    tracks: tuple[Track, ...]

    def tags_at(self, data: bytes, pos: int) -> list[SimpleTag] | None:
        """The run's SimpleTags if `data[pos:]` holds a like run, else None."""
        if pos + self.length > len(data):
            return None
        startswith = data.startswith
        for at, segment in self.segments:
            if not startswith(segment, pos + at):
                return None
        tags: list[SimpleTag] = []
        for vstart, value, tag, vstop, kind in self.fields:
            if startswith(value, pos + vstart):
                tags.append(tag)
            else:
                raw = data[pos + vstart : pos + vstop]
                tags.append(SimpleTag(tag.name, read_string(raw) if kind == _STRING_VALUE else raw))
        return tags


class MkvReader:
    """Push parser: `feed(chunk)` returns the documents that ended, `close()` reports the tail.

    Any split of the input into chunks gives the same documents. Raises `MkvError` for bytes
    that are not Matroska; after an error the reader must not be fed again.
    """

    def __init__(self, max_element_size: int = DEFAULT_MAX_ELEMENT_SIZE) -> None:
        self._max = max_element_size
        self._data = b""  # unparsed input; _data[0] is at stream offset _base
        self._base = 0
        self._need = 0  # stream offset that must be buffered before parsing can progress
        self._skip = 0  # payload bytes of a skipped element still to come
        # Chunks after _data, held until _need is reached (joined once, not chunk by chunk).
        self._pending: list[bytes] = []
        self._pending_size = 0
        # Open masters: (id, end offset or -1 if unknown, end of the nearest known-size one or -1).
        self._stack: list[tuple[int, int, int]] = []
        self._doc: Document | None = None
        self._track: Track | None = None
        self._tags: list[list[str | bytes]] = []  # open SimpleTags: [name, value]
        self._cluster_timecode = 0
        self._group_block: Block | None = None
        self._closed = False
        # An error found after documents that ended in the same feed: raised on the next call.
        self._error: MkvError | None = None
        # Parsed Tags, Tracks and EBML headers by their bytes (a Connect stream repeats them).
        self._cache: dict[tuple[int, bytes], list[SimpleTag] | list[Track] | list[str]] = {}
        # Runs of fragment-level elements seen before (_Layout), and failed attempts in a row.
        self._layouts: list[_Layout] = []
        self._layout_misses = 0

    @property
    def offset(self) -> int:
        """Stream offset up to which input has been parsed."""
        return self._base

    def feed(self, chunk: bytes) -> list[Document]:
        """Push more input; returns the documents that ended (complete or not, see `complete`).

        When bad bytes follow documents that ended in the same input, those documents are
        returned first and the `MkvError` is raised by the next `feed` or `close`: whatever
        the chunking, a consumer gets every document before the bad bytes, then the error."""
        if self._closed:
            raise ValueError("feed() after close()")
        if self._error is not None:
            raise self._error
        out: list[Document] = []
        try:
            self._feed(chunk, out)
        except MkvError as exc:
            self._error = exc
            if not out:
                raise
        return out

    def _feed(self, chunk: bytes, out: list[Document]) -> None:
        if type(chunk) is not bytes:
            chunk = bytes(chunk)
        pos = 0  # start of the part of `chunk` not yet parsed, skipped or held
        size = len(chunk)
        while pos < size:
            if self._skip:
                take = min(self._skip, size - pos)
                self._skip -= take
                self._base += take
                pos += take
                continue
            if not self._data:
                # Nothing held back: parse the chunk where it is, without copying it.
                self._data = chunk
                self._base -= pos
                self._parse(out, pos)
                break
            # An element began in an earlier chunk: hold input until it can progress, then join
            # only the bytes it needs; the rest of this chunk is parsed in place (next turn).
            held_end = self._base + len(self._data) + self._pending_size
            if held_end + size - pos < self._need:
                self._pending.append(chunk[pos:] if pos else chunk)
                self._pending_size += size - pos
                break
            take = max(self._need - held_end, 1)  # at least a byte: always progresses
            self._data = b"".join((self._data, *self._pending, chunk[pos : pos + take]))
            self._pending.clear()
            self._pending_size = 0
            pos += take
            self._parse(out, 0)

    def close(self) -> Tail:
        """End of input: how it ended, with the last document (complete only if the input ended
        cleanly between elements with no known-size element unfinished). Raises the `MkvError`
        a `feed` deferred (see `feed`)."""
        self._closed = True
        if self._error is not None:
            raise self._error
        if self._pending:
            self._data = b"".join((self._data, *self._pending))
            self._pending.clear()
            self._pending_size = 0
        end = self._base + len(self._data) + self._skip
        truncated = False
        detail = ""
        if self._skip:
            truncated = True
            detail = f"input ends {self._skip} bytes before the end of an element"
            end = self._base
        elif self._data:
            truncated = True
            detail = f"input ends inside an element starting at byte {self._base}"
            end = self._base + len(self._data)
        else:
            for eid, elem_end, _ in self._stack:
                if elem_end > end:
                    truncated = True
                    detail = (
                        f"input ends {elem_end - end} bytes before the end of element 0x{eid:X}"
                    )
                    break
        doc = self._doc
        if doc is not None:
            self._finish(doc, end, complete=not truncated)
            self._doc = None
        return Tail(doc, truncated, end, detail)

    def _layout_at(
        self, data: bytes, pos: int, n: int, base: int, *, prefix: bool
    ) -> tuple[_Layout, list[SimpleTag]] | None:
        """The run at `pos` read by a known layout like it, or by a new one read from it; None
        when neither covers it (the main parser reads it)."""
        for layout in self._layouts:
            if layout.prefix == prefix:
                tags = layout.tags_at(data, pos)
                if tags is not None:
                    return layout, tags
        if self._layout_misses >= _MAX_LAYOUT_MISSES:
            return None
        learned = self._read_layout(data, pos, n, base, prefix=prefix)
        if learned is None:
            self._layout_misses += 1
            return None
        self._layout_misses = 0
        if len(self._layouts) >= _MAX_LAYOUTS:
            self._layouts.pop(0)
        self._layouts.append(learned)
        return learned, [tag for _, _, tag, _, _ in learned.fields]

    def _read_layout(  # noqa: PLR0911, PLR0912
        self, data: bytes, pos: int, n: int, base: int, *, prefix: bool
    ) -> _Layout | None:
        """Reads a run at `pos` and returns its layout, or None where the run is not one this
        covers; then the main parser reads it (and reports any error in it).

        A prefix run is an EBML header, a Segment of unknown size, then whole, known-size Info,
        Tracks, Tags, Void and CRC-32 elements; a Tags run (inside a Segment of unknown size) is
        whole, known-size Tags, Void and CRC-32 elements. A run ends before any other element (a
        prefix, before a Cluster); one cut by the end of the buffered input is left to the main
        parser. Each element is read by the functions the main parser uses for it; Info's other
        children, Void and CRC-32 are skipped by both, so their bytes are left out of the
        layout."""
        origin = pos
        holes: list[tuple[int, int]] = []  # payloads that need not match: skipped, or tag values
        found: list[tuple[SimpleTag, int, int, int]] = []  # tag, value start, stop, kind
        doc_type = "matroska"
        scale: int | None = None
        tracks: list[Track] = []
        try:
            if prefix:
                header = _whole_element(data, pos, n)
                if header is None or header[0] != EBML_ID_HEADER or header[2] is None:
                    return None
                start, stop = header[1], header[1] + header[2]
                if stop > n:
                    return None
                doc_type = str(self._read_whole(EBML_ID_HEADER, data, start, stop, base)[0])
                segment = _whole_element(data, stop, n)
                if segment is None or segment[0] != MKV_ID_SEGMENT or segment[2] is not None:
                    return None
                pos = segment[1]
            while True:
                element = _whole_element(data, pos, n)
                if element is None:
                    return None
                eid, start, size = element
                if eid not in _LAYOUT_ELEMENTS or (eid != MKV_ID_TAGS and not prefix):
                    if prefix and eid != MKV_ID_CLUSTER:
                        return None
                    break
                if size is None or size > self._max or start + size > n:
                    return None
                stop = start + size
                if stop - origin > _MAX_LAYOUT_BYTES:
                    return None
                if eid == MKV_ID_TAGS:
                    tags: list[SimpleTag] = []
                    fields: list[tuple[str, int, int, int]] = []
                    _read_tags(data, start, stop, base, tags, fields=fields)
                    for tag, (_, vstart, vstop, kind) in zip(tags, fields, strict=True):
                        found.append((tag, start + vstart, start + vstop, kind))
                        holes.append((start + vstart, start + vstop))
                elif eid in (EBML_ID_VOID, EBML_ID_CRC32):
                    holes.append((start, stop))
                elif eid == MKV_ID_TRACKS:
                    # From the cache, as the main parser has them (the first such Tracks' offsets).
                    key = (MKV_ID_TRACKS, data[start:stop])
                    cached = self._cache.get(key)
                    if cached is None:
                        cached = self._read_cached(key, data, start, stop, base)
                    tracks += cached  # type: ignore[arg-type]
                else:  # Info
                    for cid, cstart, cstop in _children(data, start, stop, base):
                        if cid == MKV_ID_TIMECODESCALE:
                            scale = read_timecode_scale(data[cstart:cstop], base + cstart)
                        else:
                            holes.append((cstart, cstop))
                pos = stop
        except MkvError:
            return None
        if pos == origin or (not prefix and not found):
            return None
        return _Layout(
            prefix=prefix,
            length=pos - origin,
            segments=_segments(data, origin, pos, holes),
            fields=tuple(
                (vstart - origin, data[vstart:vstop], tag, vstop - origin, kind)
                for tag, vstart, vstop, kind in found
            ),
            doc_type=doc_type,
            timecode_scale=scale,
            tracks=tuple(tracks),
        )

    def _read_cached(
        self, key: tuple[int, bytes], data: bytes, start: int, stop: int, base: int
    ) -> list[SimpleTag] | list[Track] | list[str]:
        """Parses the whole element `key` names (id, payload) and remembers it."""
        cached = self._read_whole(key[0], data, start, stop, base)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = cached
        return cached

    @staticmethod
    def _read_whole(
        eid: int, data: bytes, start: int, stop: int, base: int
    ) -> list[SimpleTag] | list[Track] | list[str]:
        if eid == MKV_ID_TAGS:
            tags: list[SimpleTag] = []
            _read_tags(data, start, stop, base, tags)
            return tags
        if eid == MKV_ID_TRACKS:
            return _read_tracks(data, start, stop, base)
        doc_type = "matroska"
        for cid, cstart, cstop in _children(data, start, stop, base):
            if cid == EBML_ID_DOCTYPE:
                doc_type = read_string(data[cstart:cstop])
        if doc_type not in ("matroska", "webm"):
            raise MkvError(
                f"expected DocType 'matroska' or 'webm', found {doc_type!r}", base + start
            )
        return [doc_type]

    def _finish(self, doc: Document, end: int, *, complete: bool) -> None:
        while self._stack:
            self._pop()
        doc.complete = complete
        doc.end = end

    def _pop(self) -> None:
        eid, _, _ = self._stack.pop()
        if eid == MKV_ID_TRACKENTRY:
            if self._track is not None and self._doc is not None:
                self._doc.tracks.append(self._track)
            self._track = None
        elif eid == MKV_ID_SIMPLETAG:
            name, value = self._tags.pop()
            if self._doc is not None and isinstance(name, str):
                self._doc.tags.append(SimpleTag(name, value))
        elif eid == MKV_ID_BLOCKGROUP:
            if self._group_block is not None and self._doc is not None:
                self._doc.blocks.append(self._group_block)
            self._group_block = None

    def _parse(self, out: list[Document], pos: int) -> None:  # noqa: PLR0912, PLR0915
        """Parses `_data` from `pos` (`_data[0]` at stream offset `_base`) as far as it goes."""
        data = self._data
        n = len(data)
        base = self._base
        stack = self._stack
        max_size = self._max
        id_length = _ID_LENGTH
        vint_length = _VINT_LENGTH
        marker = _VINT_MARKER
        parents_of = _PARENTS
        cache = self._cache
        int16_from = _INT16.unpack_from
        block_head = _BLOCK_HEAD.unpack_from
        uint32, uint64 = _UINT32.unpack_from, _UINT64.unpack_from
        blocks = self._doc.blocks if self._doc is not None else []
        view = memoryview(data)
        run_formats = _RUN_FORMATS
        while True:
            here = base + pos
            while stack and stack[-1][2] == here:
                self._pop()
            if pos >= n:
                break
            first = data[pos]
            idlen = id_length[first]
            if not idlen:
                raise MkvError(f"expected an element ID, found byte 0x{first:02X}", here)
            if pos + idlen >= n:
                self._need = here + idlen + 1
                break
            if idlen == 1:
                eid = first
            elif idlen == 4:
                eid = uint32(data, pos)[0]
            else:
                eid = int.from_bytes(data[pos : pos + idlen])
            spos = pos + idlen
            slen = vint_length[data[spos]]
            if not slen:
                raise MkvError(f"expected an element size after ID 0x{eid:X}, found 0x00", here)
            if spos + slen > n:
                self._need = here + idlen + slen
                break
            size: int | None
            if slen == 8:
                size = uint64(data, spos)[0] & _VINT_MARKER_8
            elif slen == 4:
                size = uint32(data, spos)[0] & _VINT_MARKER_4
            else:
                size = int.from_bytes(data[spos : spos + slen]) & marker[slen]
            if size == marker[slen]:
                size = None
            hdr = idlen + slen
            if (
                eid == MKV_ID_SIMPLEBLOCK
                and size is not None
                and stack
                and stack[-1][0] == MKV_ID_CLUSTER
            ):
                # The hot path: a run of SimpleBlocks in their Cluster. The blocks of a stream
                # mostly share their element header (ID and size): it is compared, not parsed.
                limit = stack[-1][2]
                timecode = self._cluster_timecode
                append = blocks.append
                head = data[pos : pos + hdr]
                waiting = False
                while True:
                    length = hdr + size
                    count = min(
                        ((n if limit < 0 else min(n, limit - base)) - pos) // length, _MAX_RUN
                    )
                    whole_run = False
                    if count >= _MIN_RUN and 4 <= size <= max_size:
                        # Several whole blocks of this size are buffered: their element headers
                        # are compared column by column (strided slices), their block headers
                        # and frames unpacked by one struct, in C. A block this format does
                        # not fit (a long track number, lacing) ends the run: read below.
                        run_stop = pos + count * length
                        for i in range(hdr):
                            column = data[pos + i : run_stop : length]
                            count -= len(column.lstrip(head[i : i + 1]))
                            run_stop = pos + count * length
                        fmt = run_formats.get((hdr, size))
                        if fmt is None:
                            if len(run_formats) >= _CACHE_SIZE:
                                run_formats.clear()
                            fmt = struct.Struct(f">{hdr}xBhB{size - 4}s")
                            run_formats[hdr, size] = fmt
                        for track, relative, flags, frame in fmt.iter_unpack(view[pos:run_stop]):
                            if not track & 0x80 or flags & 0x06:
                                break
                            append(Block(track & 0x7F, timecode + relative, [frame], here))
                            pos += length
                            here += length
                        whole_run = pos == run_stop
                    if not whole_run:
                        # One block, whatever its header.
                        if 0 <= limit < here + length:
                            raise MkvError(
                                f"element 0xA3 of {size} bytes overruns its parent ending at byte {limit}",
                                here,
                            )
                        if size > max_size:
                            raise MkvError(
                                f"element 0xA3 claims {size} bytes; expected at most {max_size}",
                                here,
                            )
                        stop = pos + length
                        if stop > n:
                            self._need = here + length
                            waiting = True
                            break
                        start = pos + hdr
                        if size < 4:
                            raise MkvError(
                                "expected a block header: track number, timecode, flags", here
                            )
                        track, relative, flags = block_head(data, start)
                        if track & 0x80:  # a one-byte track number: the usual case
                            track &= 0x7F
                            first_frame = start + 4
                        else:
                            tlen = vint_length[track]
                            if not tlen or tlen + 3 > size:
                                raise MkvError(
                                    "expected a block header: track number, timecode, flags", here
                                )
                            track = int.from_bytes(data[start : start + tlen]) & marker[tlen]
                            relative = int16_from(data, start + tlen)[0]
                            flags = data[start + tlen + 2]
                            first_frame = start + tlen + 3
                        if flags & 0x06:
                            frames = split_lacing(
                                data[start:stop], first_frame - start, flags, here
                            )
                        else:
                            frames = [data[first_frame:stop]]
                        append(Block(track, timecode + relative, frames, here))
                        pos = stop
                    # Another SimpleBlock next, inside this Cluster? Anything else: the outer loop.
                    if base + pos == limit:
                        break
                    if data.startswith(head, pos):
                        here = base + pos
                        continue
                    if pos + 1 >= n or data[pos] != MKV_ID_SIMPLEBLOCK:
                        break
                    slen = vint_length[data[pos + 1]]
                    if not slen or pos + 1 + slen > n:
                        break
                    size = int.from_bytes(data[pos + 1 : pos + 1 + slen]) & marker[slen]
                    if size == marker[slen]:
                        break
                    here = base + pos
                    hdr = 1 + slen
                    head = data[pos : pos + hdr]
                if waiting:
                    break
                continue
            # Where does this element belong? Close unknown-size masters it cannot be a child of.
            parents = parents_of.get(eid)
            if eid == EBML_ID_HEADER:
                if size is not None and pos + hdr + size > n and size <= max_size:
                    self._need = here + hdr + size  # start the document once it is all here
                    break
                if self._doc is not None:
                    unfinished = any(end > here for _, end, _ in stack)
                    doc = self._doc
                    self._finish(doc, here, complete=not unfinished)
                    out.append(doc)
                self._doc = Document(offset=here)
                blocks = self._doc.blocks
                run = self._layout_at(data, pos, n, base, prefix=True)
                if run is not None:
                    layout, run_tags = run
                    doc = self._doc
                    doc.doc_type = layout.doc_type
                    if layout.timecode_scale is not None:
                        doc.timecode_scale = layout.timecode_scale
                    doc.tracks.extend(layout.tracks)
                    doc.tags.extend(run_tags)
                    stack.append(_OPEN_SEGMENT)
                    pos += layout.length
                    continue
            elif parents is not None:
                while stack and stack[-1][1] < 0 and stack[-1][0] not in parents:
                    self._pop()
                if not stack:
                    if eid != MKV_ID_SEGMENT:
                        raise MkvError(
                            f"expected an EBML header or Segment, found element 0x{eid:X}", here
                        )
                    if self._doc is None:
                        raise MkvError("expected an EBML header before the Segment", here)
                elif stack[-1][0] not in parents:
                    parents = None  # misplaced inside a known-size master: skip it
            elif not stack and eid not in (EBML_ID_VOID, EBML_ID_CRC32):
                raise MkvError(f"expected an EBML header or Segment, found element 0x{eid:X}", here)
            if size is None:
                if eid not in _UNKNOWN_SIZE_ALLOWED or parents is None:
                    raise MkvError(
                        f"element 0x{eid:X} has an unknown size; only Segment and Cluster may", here
                    )
                end = -1
                limit = stack[-1][2] if stack else -1
            else:
                end = limit = here + hdr + size
                if stack and 0 <= stack[-1][2] < end:
                    raise MkvError(
                        f"element 0x{eid:X} of {size} bytes overruns its parent"
                        f" 0x{stack[-1][0]:X} ending at byte {stack[-1][2]}",
                        here,
                    )
            if (
                eid == MKV_ID_TAGS
                and parents is not None
                and stack[-1] == _OPEN_SEGMENT
                and self._doc is not None
            ):
                run = self._layout_at(data, pos, n, base, prefix=False)
                if run is not None:
                    self._doc.tags.extend(run[1])
                    pos += run[0].length
                    continue
            if (
                eid in _WHOLE
                and (parents is not None or eid == EBML_ID_HEADER)
                and size is not None
            ):
                # Read small masters whole; Connect repeats identical Tags, Tracks and EBML headers
                # in every fragment: parse each kind once.
                if size > max_size:
                    raise MkvError(
                        f"element 0x{eid:X} claims {size} bytes; expected at most {max_size}", here
                    )
                stop = pos + hdr + size
                if stop > n:
                    self._need = here + hdr + size
                    break
                whole = self._doc
                assert whole is not None
                if stack and 0 <= stack[-1][2] < here + hdr + size:
                    raise MkvError(
                        f"element 0x{eid:X} of {size} bytes overruns its parent"
                        f" 0x{stack[-1][0]:X} ending at byte {stack[-1][2]}",
                        here,
                    )
                start = pos + hdr
                if eid == MKV_ID_INFO:
                    for cid, cstart, cstop in _children(data, start, stop, base):
                        if cid == MKV_ID_TIMECODESCALE:
                            whole.timecode_scale = read_timecode_scale(
                                data[cstart:cstop], base + cstart
                            )
                else:
                    key = (eid, data[start:stop])
                    cached = cache.get(key)
                    if cached is None:
                        cached = self._read_cached(key, data, start, stop, base)
                    if eid == MKV_ID_TAGS:
                        whole.tags.extend(cached)  # type: ignore[arg-type]
                    elif eid == MKV_ID_TRACKS:
                        whole.tracks.extend(cached)  # type: ignore[arg-type]
                    else:
                        whole.doc_type = cached[0]  # type: ignore[assignment]
                pos = stop
                if eid == MKV_ID_TAGS and stack and stack[-1][0] == MKV_ID_SEGMENT:
                    # Connect writes six Tags in a row, twice per fragment: the ones that follow
                    # are read here while they are plainly Tags of this Segment, whole, known
                    # in size and buffered; anything else goes back through the loop above.
                    segment_end = stack[-1][2]
                    tags = whole.tags
                    while (
                        base + pos != segment_end and pos + 4 < n and data.startswith(_TAGS_ID, pos)
                    ):
                        slen = vint_length[data[pos + 4]]
                        start = pos + 4 + slen
                        if not slen or start > n:
                            break
                        if slen == 8:
                            size = uint64(data, pos + 4)[0] & _VINT_MARKER_8
                        elif slen == 4:
                            size = uint32(data, pos + 4)[0] & _VINT_MARKER_4
                        else:
                            size = int.from_bytes(data[pos + 4 : start]) & marker[slen]
                        stop = start + size
                        if (
                            size == marker[slen]
                            or size > max_size
                            or stop > n
                            or 0 <= segment_end < base + stop
                        ):
                            break
                        key = (MKV_ID_TAGS, data[start:stop])
                        cached = cache.get(key)
                        if cached is None:
                            cached = self._read_cached(key, data, start, stop, base)
                        tags.extend(cached)  # type: ignore[arg-type]
                        pos = stop
                continue
            if parents is not None and eid in _MASTERS:
                stack.append((eid, end, limit))
                pos += hdr
                if eid == MKV_ID_CLUSTER:
                    self._cluster_timecode = 0
                    if self._doc is not None:
                        self._doc.clusters += 1
                elif eid == MKV_ID_TRACKENTRY:
                    self._track = Track(offset=here)
                elif eid == MKV_ID_SIMPLETAG:
                    self._tags.append([b"", b""])
                elif eid == MKV_ID_BLOCKGROUP:
                    self._group_block = None
                continue
            assert size is not None
            if parents is None or eid not in _LEAVES:
                if eid == MKV_ID_CONTENTENCODINGS and self._track is not None:
                    self._track.content_encoded = True
                pos += hdr
                avail = n - pos
                if size > avail:
                    self._skip = size - avail
                    pos = n
                    break
                pos += size
                continue
            # A leaf whose value is kept: wait until all of it is buffered.
            if size > max_size:
                raise MkvError(
                    f"element 0x{eid:X} claims {size} bytes; expected at most {max_size}", here
                )
            stop = pos + hdr + size
            if stop > n:
                self._need = here + hdr + size
                break
            start = pos + hdr
            pos = stop
            current = self._doc
            assert current is not None
            if eid in (MKV_ID_SIMPLEBLOCK, MKV_ID_BLOCK):
                block = _read_block(data, start, stop, here, self._cluster_timecode)
                if eid == MKV_ID_SIMPLEBLOCK:
                    current.blocks.append(block)
                else:
                    self._group_block = block
            elif eid == MKV_ID_TIMECODE:
                self._cluster_timecode = int.from_bytes(data[start:stop])
            elif eid == MKV_ID_TAGNAME:
                self._tags[-1][0] = read_string(data[start:stop])
            elif eid == MKV_ID_TAGSTRING:
                self._tags[-1][1] = read_string(data[start:stop])
            elif eid == MKV_ID_TAGBINARY:
                self._tags[-1][1] = data[start:stop]
            elif eid == MKV_ID_TIMECODESCALE:
                current.timecode_scale = read_timecode_scale(data[start:stop], here)
            elif eid == EBML_ID_DOCTYPE:
                current.doc_type = read_string(data[start:stop])
                if current.doc_type not in ("matroska", "webm"):
                    raise MkvError(
                        f"expected DocType 'matroska' or 'webm', found {current.doc_type!r}", here
                    )
            else:
                track_entry = self._track
                if track_entry is None:
                    continue
                if eid == MKV_ID_TRACKNUMBER:
                    track_entry.number = int.from_bytes(data[start:stop])
                elif eid == MKV_ID_TRACKUID:
                    track_entry.uid = int.from_bytes(data[start:stop])
                elif eid == MKV_ID_TRACKTYPE:
                    track_entry.type = int.from_bytes(data[start:stop])
                elif eid == MKV_ID_NAME:
                    track_entry.name = read_string(data[start:stop])
                elif eid == MKV_ID_CODECID:
                    track_entry.codec_id = read_string(data[start:stop])
                elif eid == MKV_ID_SAMPLINGFREQUENCY:
                    track_entry.sampling_frequency = read_float(data[start:stop], here)
                elif eid == MKV_ID_CHANNELS:
                    track_entry.channels = int.from_bytes(data[start:stop])
                elif eid == MKV_ID_BITDEPTH:
                    track_entry.bit_depth = int.from_bytes(data[start:stop])
        self._data = data[pos:] if pos < n else b""
        self._base = base + pos
        if self._need < self._base + 1:
            self._need = 0
