"""A streaming EBML/Matroska reader for GetMedia responses and ordinary Matroska files.

Bytes are pushed in any chunking (`MkvReader.feed`) and come out as `Document`s: one per EBML
document (a KVS fragment is one document), holding what a recorder needs and nothing more: the
DocType, TimecodeScale, track entries, SimpleTags in document order and the blocks with their
absolute timecodes (Cluster Timecode + relative, in TimecodeScale ticks), laced frames split.

Deliberately not done here: KVS or Connect meaning of tags and tracks (fragments.py), timing in
seconds or samples (alignment.py), seeking, Cues, Chapters, Attachments, video details. Element
IDs, values and the readers of whole elements are in mkv_elements.py; the layouts of repeated
fragment-level runs (a fast path) in mkv_layouts.py. This module is the streaming: buffering,
framing, unknown sizes, documents, and the SimpleBlock run reader (the hot path, kept inline).

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
bytes match outside tag values (mkv_layouts.py); a run of equal-sized SimpleBlocks is unpacked by
one struct. Each of these gives what the element-by-element path gives, which reads the rest.
"""

from __future__ import annotations

import struct
from typing import Any

from callrec.mkv_elements import (
    BLOCK_HEAD,
    DEFAULT_MAX_ELEMENT_SIZE,
    DEFAULT_TIMECODE_SCALE,
    EBML_ID_CRC32,
    EBML_ID_DOCTYPE,
    EBML_ID_HEADER,
    EBML_ID_VOID,
    ID_LENGTH,
    INT16,
    MAX_TIMECODE_SCALE,
    MKV_CLUSTER_CHILDREN,
    MKV_ID_ATTACHMENTS,
    MKV_ID_AUDIO,
    MKV_ID_BITDEPTH,
    MKV_ID_BLOCK,
    MKV_ID_BLOCKGROUP,
    MKV_ID_CHANNELS,
    MKV_ID_CHAPTERS,
    MKV_ID_CLUSTER,
    MKV_ID_CODECID,
    MKV_ID_CONTENTENCODINGS,
    MKV_ID_CUES,
    MKV_ID_INFO,
    MKV_ID_NAME,
    MKV_ID_SAMPLINGFREQUENCY,
    MKV_ID_SEEKHEAD,
    MKV_ID_SEGMENT,
    MKV_ID_SIMPLEBLOCK,
    MKV_ID_SIMPLETAG,
    MKV_ID_TAG,
    MKV_ID_TAGBINARY,
    MKV_ID_TAGNAME,
    MKV_ID_TAGS,
    MKV_ID_TAGSTRING,
    MKV_ID_TIMECODE,
    MKV_ID_TIMECODESCALE,
    MKV_ID_TRACKENTRY,
    MKV_ID_TRACKNUMBER,
    MKV_ID_TRACKS,
    MKV_ID_TRACKTYPE,
    MKV_ID_TRACKUID,
    TRACK_TYPE_AUDIO,
    TRACK_TYPE_VIDEO,
    UINT32,
    UINT64,
    VINT_LENGTH,
    VINT_MARKER,
    VINT_MARKER_4,
    VINT_MARKER_8,
    Block,
    Document,
    MkvError,
    SimpleTag,
    Tail,
    Track,
    children,
    read_block,
    read_element_id,
    read_float,
    read_string,
    read_timecode_scale,
    read_uint,
    read_vint,
    read_whole,
    split_lacing,
)
from callrec.mkv_layouts import Layouts

# What other modules use from here (defined in mkv_elements.py, but for MkvReader).
__all__ = [
    "DEFAULT_MAX_ELEMENT_SIZE",
    "DEFAULT_TIMECODE_SCALE",
    "MAX_TIMECODE_SCALE",
    "TRACK_TYPE_AUDIO",
    "TRACK_TYPE_VIDEO",
    "Block",
    "Document",
    "MkvError",
    "MkvReader",
    "SimpleTag",
    "Tail",
    "Track",
    "read_element_id",
    "read_float",
    "read_string",
    "read_timecode_scale",
    "read_uint",
    "read_vint",
    "split_lacing",
]

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
    **dict.fromkeys(MKV_CLUSTER_CHILDREN, (MKV_ID_CLUSTER,)),
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
# The stack entry of a Segment of unknown size with no known-size element around it.
_OPEN_SEGMENT = (MKV_ID_SEGMENT, -1, -1)


class MkvReader:
    """Push parser: `feed(chunk)` returns the documents that ended, `close()` reports the tail.

    Any split of the input into chunks gives the same documents, and the same error: raises
    `MkvError` for bytes that are not Matroska, after handing out every document that ended
    before them (see `feed`); once raised, every later `feed` or `close` raises it again.
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
        # Runs of fragment-level elements seen before, read again without parsing.
        self._layouts = Layouts(max_element_size, self._cached)

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

    def _cached(self, eid: int, data: bytes, start: int, stop: int, base: int) -> list[Any]:
        """The whole element `eid` with payload `data[start:stop]`, parsed once per bytes."""
        key = (eid, data[start:stop])
        cached = self._cache.get(key)
        if cached is None:
            cached = self._read_cached(key, data, start, stop, base)
        return cached

    def _read_cached(
        self, key: tuple[int, bytes], data: bytes, start: int, stop: int, base: int
    ) -> list[SimpleTag] | list[Track] | list[str]:
        """Parses the whole element `key` names (id, payload) and remembers it."""
        cached = read_whole(key[0], data, start, stop, base)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = cached
        return cached

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
        id_length = ID_LENGTH
        vint_length = VINT_LENGTH
        marker = VINT_MARKER
        parents_of = _PARENTS
        cache = self._cache
        int16_from = INT16.unpack_from
        block_head = BLOCK_HEAD.unpack_from
        uint32, uint64 = UINT32.unpack_from, UINT64.unpack_from
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
                size = uint64(data, spos)[0] & VINT_MARKER_8
            elif slen == 4:
                size = uint32(data, spos)[0] & VINT_MARKER_4
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
                run = self._layouts.at(data, pos, n, base, prefix=True)
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
                run = self._layouts.at(data, pos, n, base, prefix=False)
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
                    for cid, cstart, cstop in children(data, start, stop, base):
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
                            size = uint64(data, pos + 4)[0] & VINT_MARKER_8
                        elif slen == 4:
                            size = uint32(data, pos + 4)[0] & VINT_MARKER_4
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
                block = read_block(data, start, stop, here, self._cluster_timecode)
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
