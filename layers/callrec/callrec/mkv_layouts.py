"""Layouts: reading a fragment-level run of elements like the previous fragment's like run.

Connect and KVS repeat, in every fragment, the same EBML header, Segment header, Info, Tracks
and Tags: the run before the Cluster, and the Tags after it. Only tag values (fragment number,
timestamps) and Info's SegmentUID change. `Layouts` remembers such runs (`Layout`): a run whose
bytes equal a layout's outside tag values is read by slicing those values where the layout
found them, without parsing. A run no layout covers is read once by the same element readers
the main parser uses (mkv_elements.py) and becomes a layout; anything unusual (an error, an
element cut by the end of the buffered input, a long run) gives None and the main parser of
mkv.py reads it, reporting any error. So a layout never changes what is read, only how fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from callrec.mkv_elements import (
    EBML_ID_CRC32,
    EBML_ID_HEADER,
    EBML_ID_VOID,
    ID_LENGTH,
    MKV_ID_CLUSTER,
    MKV_ID_INFO,
    MKV_ID_SEGMENT,
    MKV_ID_TAGS,
    MKV_ID_TIMECODESCALE,
    MKV_ID_TRACKS,
    STRING_VALUE,
    VINT_LENGTH,
    VINT_MARKER,
    MkvError,
    SimpleTag,
    Track,
    children,
    read_string,
    read_tags,
    read_timecode_scale,
    read_whole,
)

# What a layout (Layouts._learn) may hold after the Segment header.
_LAYOUT_ELEMENTS = frozenset((MKV_ID_INFO, MKV_ID_TRACKS, MKV_ID_TAGS, EBML_ID_VOID, EBML_ID_CRC32))
# Layouts a reader keeps, and how many runs in a row may fail to give one before it stops trying.
_MAX_LAYOUTS = 8
_MAX_LAYOUT_MISSES = 16
# A layout keeps a copy of its run: longer runs (Connect's are about 1 KB) are not kept.
_MAX_LAYOUT_BYTES = 64 * 1024


def whole_element(data: bytes, pos: int, n: int) -> tuple[int, int, int | None] | None:
    """(id, payload start, payload size or None if unknown) of the element at `pos`, if its
    header is buffered and valid; None otherwise (the caller leaves it to the main parser)."""
    if pos >= n:
        return None
    idlen = ID_LENGTH[data[pos]]
    if not idlen or pos + idlen >= n:
        return None
    spos = pos + idlen
    slen = VINT_LENGTH[data[spos]]
    if not slen or spos + slen > n:
        return None
    size = int.from_bytes(data[spos : spos + slen]) & VINT_MARKER[slen]
    return (
        int.from_bytes(data[pos:spos]),
        spos + slen,
        None if size == VINT_MARKER[slen] else size,
    )


def segments(
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
class Layout:
    """The bytes of a run of fragment-level elements, and what the reader makes of them, for
    reading the next fragment's like run without parsing it.

    Connect and KVS repeat, in every fragment, the same EBML header, Segment header, Info,
    Tracks and Tags: the run before the Cluster (`prefix`), and the Tags after it. Only tag
    values (fragment number, timestamps) and Info's SegmentUID change. A run whose bytes equal a
    layout's everywhere else (every element ID and size included, so its element structure is
    the same) holds the same elements: the reader takes the layout's result and slices the tag
    values where the layout found them. See `Layouts._learn` for the runs it covers."""

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
                tags.append(SimpleTag(tag.name, read_string(raw) if kind == STRING_VALUE else raw))
        return tags


class Layouts:
    """The layouts a reader has learned (at most _MAX_LAYOUTS), and learning new ones.

    `cached(eid, data, start, stop, base)` parses a whole Tracks payload as the main parser
    does, from its cache by bytes (so a layout's tracks are those the main parser would give).
    """

    def __init__(
        self, max_size: int, cached: Callable[[int, bytes, int, int, int], list[Any]]
    ) -> None:
        self._max = max_size
        self._cached = cached
        self._layouts: list[Layout] = []
        self._misses = 0  # runs in a row that gave no layout

    def __iter__(self) -> Iterator[Layout]:
        return iter(self._layouts)

    def at(
        self, data: bytes, pos: int, n: int, base: int, *, prefix: bool
    ) -> tuple[Layout, list[SimpleTag]] | None:
        """The run at `pos` read by a known layout like it, or by a new one read from it; None
        when neither covers it (the main parser reads it)."""
        for layout in self._layouts:
            if layout.prefix == prefix:
                tags = layout.tags_at(data, pos)
                if tags is not None:
                    return layout, tags
        if self._misses >= _MAX_LAYOUT_MISSES:
            return None
        learned = self._learn(data, pos, n, base, prefix=prefix)
        if learned is None:
            self._misses += 1
            return None
        self._misses = 0
        if len(self._layouts) >= _MAX_LAYOUTS:
            self._layouts.pop(0)
        self._layouts.append(learned)
        return learned, [tag for _, _, tag, _, _ in learned.fields]

    def _learn(  # noqa: PLR0911, PLR0912
        self, data: bytes, pos: int, n: int, base: int, *, prefix: bool
    ) -> Layout | None:
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
                header = whole_element(data, pos, n)
                if header is None or header[0] != EBML_ID_HEADER or header[2] is None:
                    return None
                start, stop = header[1], header[1] + header[2]
                if stop > n:
                    return None
                doc_type = str(read_whole(EBML_ID_HEADER, data, start, stop, base)[0])
                segment = whole_element(data, stop, n)
                if segment is None or segment[0] != MKV_ID_SEGMENT or segment[2] is not None:
                    return None
                pos = segment[1]
            while True:
                element = whole_element(data, pos, n)
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
                    read_tags(data, start, stop, base, tags, fields=fields)
                    for tag, (_, vstart, vstop, kind) in zip(tags, fields, strict=True):
                        found.append((tag, start + vstart, start + vstop, kind))
                        holes.append((start + vstart, start + vstop))
                elif eid in (EBML_ID_VOID, EBML_ID_CRC32):
                    holes.append((start, stop))
                elif eid == MKV_ID_TRACKS:
                    # From the cache, as the main parser has them (the first such Tracks' offsets).
                    tracks += self._cached(MKV_ID_TRACKS, data, start, stop, base)
                else:  # Info
                    for cid, cstart, cstop in children(data, start, stop, base):
                        if cid == MKV_ID_TIMECODESCALE:
                            scale = read_timecode_scale(data[cstart:cstop], base + cstart)
                        else:
                            holes.append((cstart, cstop))
                pos = stop
        except MkvError:
            return None
        if pos == origin or (not prefix and not found):
            return None
        return Layout(
            prefix=prefix,
            length=pos - origin,
            segments=segments(data, origin, pos, holes),
            fields=tuple(
                (vstart - origin, data[vstart:vstop], tag, vstop - origin, kind)
                for tag, vstart, vstop, kind in found
            ),
            doc_type=doc_type,
            timecode_scale=scale,
            tracks=tuple(tracks),
        )
