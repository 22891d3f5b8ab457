"""Byte-level tests of the Matroska reader: vints, unknown sizes, lacing, framing, bad input."""

from __future__ import annotations

import struct
from dataclasses import replace

import pytest

from callrec.mkv import (
    Document,
    MkvError,
    MkvReader,
    read_element_id,
    read_float,
    read_vint,
    split_lacing,
)

EBML_HEADER = bytes.fromhex("1A45DFA3 8F 4282 88") + b"matroska" + bytes.fromhex("4287 81 02")
SEGMENT_UNKNOWN = bytes.fromhex("18538067 01FFFFFFFFFFFFFF")
CLUSTER_UNKNOWN = bytes.fromhex("1F43B675 FF")


def size(n: int, width: int = 1) -> bytes:
    """EBML size `n` in `width` bytes."""
    return (n | (1 << (7 * width))).to_bytes(width, "big")


def el(eid: int, payload: bytes, width: int = 1) -> bytes:
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big") + size(len(payload), width) + payload


def uint(eid: int, value: int) -> bytes:
    return el(eid, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def simple_block(track: int, rel: int, payload: bytes, flags: int = 0x80) -> bytes:
    return el(0xA3, bytes([0x80 | track]) + struct.pack(">hB", rel, flags) + payload)


def track_entry(number: int, name: str, codec: str = "A_PCM/INT/LIT", audio: bytes = b"") -> bytes:
    body = uint(0xD7, number) + uint(0x83, 2) + el(0x536E, name.encode()) + el(0x86, codec.encode())
    if audio:
        body += el(0xE1, audio)
    return el(0xAE, body)


def tags(*pairs: tuple[str, str]) -> bytes:
    simple = b"".join(el(0x67C8, el(0x45A3, n.encode()) + el(0x4487, v.encode())) for n, v in pairs)
    return el(0x1254C367, el(0x7373, simple))


def parse(data: bytes, chunk: int | None = None) -> tuple[list[Document], object]:
    reader = MkvReader()
    docs: list[Document] = []
    step = chunk or max(1, len(data))
    for i in range(0, len(data), step):
        docs += reader.feed(data[i : i + step])
    tail = reader.close()
    if tail.document is not None:
        docs.append(tail.document)
    return docs, tail


@pytest.mark.parametrize("width", range(1, 9))
def test_vint_of_every_length(width: int) -> None:
    # Given the value 5 and the largest value in `width` bytes
    for value in (5, (1 << (7 * width)) - 2):
        encoded = size(value, width)
        # When read
        got, length = read_vint(encoded + b"\x00", 0)
        # Then value and length round-trip
        assert (got, length) == (value, width)


@pytest.mark.parametrize("width", range(1, 9))
def test_all_ones_vint_is_unknown_size(width: int) -> None:
    encoded = ((1 << (8 * width - width)) | ((1 << (7 * width)) - 1)).to_bytes(width, "big")
    assert read_vint(encoded, 0) == (None, width)


def test_element_ids_keep_marker_bits_and_reject_long_ids() -> None:
    assert read_element_id(bytes.fromhex("1A45DFA3"), 0) == (0x1A45DFA3, 4)
    assert read_element_id(bytes.fromhex("A3"), 0) == (0xA3, 1)
    with pytest.raises(MkvError, match="expected an element ID"):
        read_element_id(bytes.fromhex("08 00 00 00 00"), 0)
    with pytest.raises(MkvError) as info:
        read_element_id(bytes.fromhex("1A45"), 0)
    assert info.value.truncated


def test_floats_of_each_width() -> None:
    assert read_float(b"") == 0.0
    assert read_float(struct.pack(">f", 8000.0)) == 8000.0
    assert read_float(struct.pack(">d", 44100.0)) == 44100.0
    with pytest.raises(MkvError, match="float of 0, 4 or 8 bytes"):
        read_float(b"\x00\x00", 7)


def minimal_document(body: bytes, info: bytes = b"") -> bytes:
    return EBML_HEADER + SEGMENT_UNKNOWN + info + body


def test_unknown_size_cluster_ends_at_segment_level_tags() -> None:
    # Given a Connect-like document: tracks, unknown-size Cluster, then Tags after the blocks
    tracks = el(0x1654AE6B, track_entry(1, "AUDIO_FROM_CUSTOMER"), width=4)
    cluster = CLUSTER_UNKNOWN + uint(0xE7, 1000) + simple_block(1, 0, b"\x01\x00" * 4)
    data = minimal_document(tracks + cluster + tags(("ContactId", "c-1")))
    # When parsed
    docs, tail = parse(data)
    # Then the block is in the Cluster and the tag after it is read at Segment level
    (doc,) = docs
    assert doc.complete
    assert not tail.truncated
    assert [(b.track, b.timecode, b.frames) for b in doc.blocks] == [(1, 1000, [b"\x01\x00" * 4])]
    assert [(t.name, t.value) for t in doc.tags] == [("ContactId", "c-1")]
    assert doc.clusters == 1


def test_next_ebml_header_ends_unknown_size_segment_and_cluster() -> None:
    one = minimal_document(CLUSTER_UNKNOWN + uint(0xE7, 5) + simple_block(1, 2, b"ab"))
    docs, _ = parse(one + one)
    assert [d.complete for d in docs] == [True, True]
    assert [d.offset for d in docs] == [0, len(one)]
    assert docs[1].blocks[0].timecode == 7


def test_timecode_scale_default_and_read() -> None:
    info = el(0x1549A966, uint(0x2AD7B1, 500_000), width=2)
    docs, _ = parse(minimal_document(b"", info) + minimal_document(b""))
    assert [d.timecode_scale for d in docs] == [500_000, 1_000_000]


def test_audio_defaults_and_explicit_values() -> None:
    explicit = el(0xB5, struct.pack(">d", 16000.0)) + uint(0x9F, 2) + uint(0x6264, 16)
    tracks = el(
        0x1654AE6B,
        track_entry(1, "AUDIO_FROM_CUSTOMER", audio=el(0x6264, b"\x10"))
        + track_entry(2, "AUDIO_TO_CUSTOMER", audio=explicit),
    )
    (doc,), _ = parse(minimal_document(tracks))
    first, second = doc.tracks
    assert (first.sampling_frequency, first.channels, first.bit_depth) == (8000.0, 1, 16)
    assert (second.sampling_frequency, second.channels) == (16000.0, 2)


def test_crc32_void_and_unknown_ids_are_skipped_anywhere() -> None:
    crc = el(0xBF, b"\x00\x00\x00\x00")
    void = el(0xEC, b"\x00" * 5)
    unknown = el(0x4DBB, b"\x12\x34")  # a Seek entry where it does not belong: skipped
    tracks = el(0x1654AE6B, crc + track_entry(1, "AUDIO_FROM_CUSTOMER") + void)
    cluster = CLUSTER_UNKNOWN + crc + uint(0xE7, 0) + void + unknown + simple_block(1, 0, b"xy")
    data = crc + void + minimal_document(void + tracks + cluster)
    docs, tail = parse(data)
    assert not tail.truncated  # type: ignore[attr-defined]
    assert len(docs) == 1
    assert docs[0].blocks[0].frames == [b"xy"]


def test_block_group_block_is_read() -> None:
    block = bytes([0x81]) + struct.pack(">hB", -3, 0) + b"pcm!"
    group = el(0xA0, el(0xA1, block) + uint(0x9B, 4))
    cluster = el(0x1F43B675, uint(0xE7, 10) + group)
    (doc,), _ = parse(minimal_document(cluster))
    assert [(b.track, b.timecode, b.frames) for b in doc.blocks] == [(1, 7, [b"pcm!"])]


def test_xiph_lacing() -> None:
    frames = [b"a" * 300, b"b" * 2, b"c" * 7]
    lace = bytes([2]) + bytes([255, 45]) + bytes([2]) + b"".join(frames)
    assert split_lacing(b"hdr" + lace, 3, 0x02, 0) == frames


def test_fixed_size_lacing() -> None:
    frames = [b"ab", b"cd", b"ef"]
    assert split_lacing(bytes([2]) + b"".join(frames), 0, 0x04, 0) == frames
    with pytest.raises(MkvError, match="equal fixed-size"):
        split_lacing(bytes([1]) + b"abc", 0, 0x04, 0)


def test_ebml_lacing_with_signed_differences() -> None:
    frames = [b"a" * 10, b"b" * 7, b"c" * 200, b"d" * 3]
    # First size 10 (vint), then differences -3 (1 byte: 63-3=60) and +193 (2 bytes: 8191+193)
    lace = (
        bytes([3])
        + bytes([0x80 | 10])
        + bytes([0x80 | 60])
        + (0x4000 | (8191 + 193)).to_bytes(2, "big")
    )
    assert split_lacing(lace + b"".join(frames), 0, 0x06, 0) == frames


def test_laced_simple_block_in_document() -> None:
    lace = bytes([1, 4]) + b"1234" + b"56"
    cluster = el(0x1F43B675, uint(0xE7, 0) + simple_block(1, 0, lace, flags=0x82))
    (doc,), _ = parse(minimal_document(cluster))
    assert doc.blocks[0].frames == [b"1234", b"56"]


def test_lace_sizes_beyond_block_raise() -> None:
    with pytest.raises(MkvError, match="laced frames"):
        split_lacing(bytes([1, 200]) + b"xx", 0, 0x02, 0)


def test_garbage_at_top_level_names_offset_and_expectation() -> None:
    data = minimal_document(b"") + b"\x42\x86\x81\x01"
    with pytest.raises(MkvError) as info:
        parse(data)
    assert info.value.offset == len(minimal_document(b""))
    assert "expected an EBML header or Segment" in str(info.value)


def test_first_bytes_must_be_ebml() -> None:
    with pytest.raises(MkvError, match="EBML header before the Segment"):
        parse(SEGMENT_UNKNOWN)
    with pytest.raises(MkvError, match=r"found byte 0x00 \(at byte 0\)|found byte 0x00"):
        parse(b"\x00\x00\x00")


def test_wrong_doctype_is_rejected() -> None:
    bad = bytes.fromhex("1A45DFA3 87 4282 84") + b"riff"
    with pytest.raises(MkvError, match="DocType"):
        parse(bad)


def test_child_overrunning_its_parent_raises() -> None:
    tracks = bytes.fromhex("1654AE6B 83") + bytes.fromhex("AE 85") + b"\x00" * 3
    with pytest.raises(MkvError, match="overruns its parent"):
        parse(minimal_document(tracks))


def test_unknown_size_only_for_segment_and_cluster() -> None:
    with pytest.raises(MkvError, match="unknown size"):
        parse(minimal_document(bytes.fromhex("1654AE6B FF")))


def test_truncated_last_element_is_reported_not_raised() -> None:
    # Given a document cut inside a SimpleBlock
    cluster = CLUSTER_UNKNOWN + uint(0xE7, 0) + simple_block(1, 0, b"x" * 100)
    data = minimal_document(cluster)[:-10]
    # When parsed, in one piece or byte by byte
    for chunk in (None, 1, 7):
        docs, tail = parse(data, chunk)
        # Then the tail says truncated and the document is incomplete
        assert tail.truncated  # type: ignore[attr-defined]
        assert [d.complete for d in docs] == [False]


def test_known_size_segment_unfinished_is_truncated() -> None:
    data = EBML_HEADER + bytes.fromhex("18538067 88") + uint(0xE7, 1)
    _, tail = parse(data)
    assert tail.truncated  # type: ignore[attr-defined]


def test_known_size_segment_cut_by_next_ebml_header_is_incomplete() -> None:
    cut = EBML_HEADER + bytes.fromhex("18538067 90") + el(0x1549A966, uint(0x2AD7B1, 1_000_000))
    docs, tail = parse(cut + minimal_document(b""))
    assert [d.complete for d in docs] == [False, True]
    assert not tail.truncated  # type: ignore[attr-defined]


def test_gigabyte_size_claims_never_allocate() -> None:
    # A SimpleBlock claiming 2**50 bytes: refused at once, before buffering anything
    claim = bytes.fromhex("A3 01") + (1 << 50).to_bytes(7, "big")
    with pytest.raises(MkvError, match="claims"):
        parse(minimal_document(CLUSTER_UNKNOWN + claim + b"tiny"))
    # A skipped element claiming 2**50 bytes: counted, reported as truncation at the end
    skipped = bytes.fromhex("1C53BB6B 01") + (1 << 50).to_bytes(7, "big")
    _, tail = parse(minimal_document(skipped + b"tiny"))
    assert tail.truncated  # type: ignore[attr-defined]


def test_ebml_header_inside_a_cluster_starts_a_new_document() -> None:
    one = minimal_document(CLUSTER_UNKNOWN + uint(0xE7, 0) + simple_block(1, 0, b"ab"))
    docs, _ = parse(one + one + one, chunk=5)
    assert len(docs) == 3
    assert all(d.complete for d in docs)


def test_nested_simple_tags_and_binary_values() -> None:
    inner = el(0x67C8, el(0x45A3, b"inner") + el(0x4485, b"\x00\x01"))
    outer = el(0x67C8, el(0x45A3, b"outer") + el(0x4487, b"v\x00\x00") + inner)
    data = minimal_document(el(0x1254C367, el(0x7373, el(0x63C0, b"") + outer)))
    (doc,), _ = parse(data)
    assert [(t.name, t.value) for t in doc.tags] == [("outer", "v"), ("inner", b"\x00\x01")]


def test_feed_after_close_is_refused() -> None:
    reader = MkvReader()
    reader.close()
    with pytest.raises(ValueError, match="after close"):
        reader.feed(b"x")


def test_child_header_cut_at_the_end_of_a_whole_master() -> None:
    # Found by fuzzing: a Tracks whose last byte starts a child, at the very end of the input
    data = minimal_document(bytes.fromhex("1654AE6B 81 AE"))
    with pytest.raises(MkvError) as info:
        parse(data)
    assert info.value.offset == len(data)  # where the size was expected


def test_child_header_crossing_a_whole_master_is_the_same_error_in_any_chunking() -> None:
    # Given an Info whose only byte starts a 3-byte child ID, followed by more input
    info = bytes.fromhex("1549A966 81 2A") + bytes.fromhex("D7B1 81 01") * 3
    data = minimal_document(b"", info)
    child_at = len(minimal_document(b"")) + 5
    errors = set()
    for chunk in (None, 1, 7, len(data) - 12):
        # When it is parsed whole or fed in chunks (the reader holds back only what it needs)
        with pytest.raises(MkvError) as info_error:
            parse(data, chunk)
        errors.add((info_error.value.reason, info_error.value.offset))
    # Then the error never depends on the bytes after the Info: one message, one offset
    assert errors == {(f"expected an element ID before byte {child_at + 1}", child_at)}


def test_element_longer_than_many_chunks_is_read_once_complete() -> None:
    # Given a block of 64 KB fed in 100-byte chunks after a Cluster
    pcm = bytes(range(256)) * 256
    block = el(0xA3, bytes([0x81]) + struct.pack(">hB", 3, 0x80) + pcm, width=4)
    data = minimal_document(CLUSTER_UNKNOWN + uint(0xE7, 0) + block)
    # When parsed
    docs, tail = parse(data, 100)
    # Then the block comes out whole and the stream ends cleanly
    assert [(b.timecode, b.frames) for b in docs[0].blocks] == [(3, [pcm])]
    assert not tail.truncated  # type: ignore[attr-defined]


def _blocks(doc: Document) -> list[tuple[int, int, list[bytes], int]]:
    return [(b.track, b.timecode, b.frames, b.offset) for b in doc.blocks]


def _block_by_block(data: bytes) -> list[tuple[int, int, list[bytes], int]]:
    # One byte at a time: never more than one whole block buffered, so no run is read at once.
    (doc,), _ = parse(data, chunk=1)
    return _blocks(doc)


def _block(track: int, rel: int, payload: bytes, flags: int = 0x80, width: int = 2) -> bytes:
    return el(0xA3, bytes([0x80 | track]) + struct.pack(">hB", rel, flags) + payload, width)


@pytest.mark.parametrize("chunk", [None, 1000, 4099])
def test_runs_of_equal_blocks_read_like_single_blocks_around_odd_ones(chunk: int | None) -> None:
    # Given runs of equal-sized blocks, broken by a laced block, a block with a two-byte track
    # number, a block of another size and sizes written in three bytes: each of these ends a run
    frames = [bytes([i]) * 320 for i in range(40)]
    body = b"".join(_block(1 + i % 2, 20 * i, f) for i, f in enumerate(frames[:12]))
    body += _block(1, 240, bytes([1, 160]) + b"x" * 160 + b"y" * 156, flags=0x82)
    body += b"".join(_block(2, 240 + i, f) for i, f in enumerate(frames[12:20]))
    body += el(0xA3, bytes([0x40, 0x02]) + struct.pack(">hB", 5, 0x80) + b"t" * 319, 2)
    body += b"".join(_block(1, 300 + i, f) for i, f in enumerate(frames[20:30]))
    body += _block(2, 400, b"short")
    body += b"".join(_block(1, 500 + i, f, width=3) for i, f in enumerate(frames[30:]))
    data = minimal_document(CLUSTER_UNKNOWN + uint(0xE7, 1000) + body)
    # When it is read whole or in chunks
    (doc,), tail = parse(data, chunk)
    # Then every block is read as it is when read one byte at a time, in order
    assert _blocks(doc) == _block_by_block(data)
    assert len(doc.blocks) == 12 + 1 + 8 + 1 + 10 + 1 + 10
    assert doc.blocks[12].frames == [b"x" * 160, b"y" * 156]
    assert (doc.blocks[21].track, doc.blocks[21].frames) == (2, [b"t" * 319])
    assert [b.timecode for b in doc.blocks[:3]] == [1000, 1020, 1040]
    assert doc.blocks[-1].frames == [frames[-1]]
    assert not tail.truncated  # type: ignore[attr-defined]


def test_a_run_stops_at_the_end_of_its_known_size_cluster() -> None:
    # Given a known-size Cluster too short for its sixth block
    cluster = uint(0xE7, 0) + b"".join(_block(1, i, bytes(64)) for i in range(6))
    data = minimal_document(bytes.fromhex("1F43B675") + size(len(cluster) - 10, 2) + cluster)
    # Then the blocks inside are read and the sixth is refused for overrunning it
    with pytest.raises(MkvError, match="overruns its parent") as error:
        parse(data)
    assert error.value.offset == len(data) - len(_block(1, 5, bytes(64)))


def test_tags_differing_only_in_values_are_read_like_the_first() -> None:
    # Given fragments whose Tags have the same layout and different values (KVS's own tags),
    # then Tags of the same length and another layout
    first = tags(("AWS_KINESISVIDEO_FRAGMENT_NUMBER", "1234"), ("B", "xy"))
    second = tags(("AWS_KINESISVIDEO_FRAGMENT_NUMBER", "9876"), ("B", "z\x00"))
    other = tags(("AWS_KINESISVIDEO_FRAGMENT_NUMBER", "12"), ("BBB", "xy"))
    binary = el(
        0x1254C367,
        el(
            0x7373,
            el(0x67C8, el(0x45A3, b"AWS_KINESISVIDEO_FRAGMENT_NUMBER") + el(0x4485, b"1234"))
            + el(0x67C8, el(0x45A3, b"B") + el(0x4487, b"xy")),
        ),
    )
    assert len({len(t) for t in (first, second, other, binary)}) == 1
    data = b"".join(minimal_document(t) for t in (first, second, other, binary, second))
    # When they are read
    docs, _ = parse(data)
    # Then each has its own values, as read alone
    values = [[(t.name, t.value) for t in doc.tags] for doc in docs]
    assert values == [
        [("AWS_KINESISVIDEO_FRAGMENT_NUMBER", "1234"), ("B", "xy")],
        [("AWS_KINESISVIDEO_FRAGMENT_NUMBER", "9876"), ("B", "z")],
        [("AWS_KINESISVIDEO_FRAGMENT_NUMBER", "12"), ("BBB", "xy")],
        [("AWS_KINESISVIDEO_FRAGMENT_NUMBER", b"1234"), ("B", "xy")],
        [("AWS_KINESISVIDEO_FRAGMENT_NUMBER", "9876"), ("B", "z")],
    ]
    for doc, tag_bytes in zip(docs, (first, second, other, binary, second), strict=True):
        (alone,), _ = parse(minimal_document(tag_bytes))
        assert [(t.name, t.value) for t in alone.tags] == [(t.name, t.value) for t in doc.tags]


def _connect_like(
    uid: bytes,
    number: str,
    *,
    scale: int = 1_000_000,
    name: str = "AUDIO_FROM_CUSTOMER",
    extra: bytes = b"",
    after: str = "x-1",
) -> bytes:
    info = el(
        0x1549A966, el(0x73A4, uid) + uint(0x2AD7B1, scale) + el(0x7BA9, b"Kinesis Video SDK")
    )
    tracks = el(
        0x1654AE6B, track_entry(1, name, "A_AAC") + track_entry(2, "AUDIO_TO_CUSTOMER", "A_AAC"), 2
    )
    before = tags(("ContactId", "c-1")) + extra + tags(("AWS_KINESISVIDEO_FRAGMENT_NUMBER", number))
    cluster = (
        CLUSTER_UNKNOWN
        + uint(0xE7, 1000)
        + b"".join(_block(1 + i % 2, i, bytes(64)) for i in range(6))
    )
    return minimal_document(
        tracks + before + cluster + tags(("ContactId", "c-1"), ("Token", after)), info
    )


def test_repeated_fragment_layouts_read_like_the_first_and_only_where_alike() -> None:
    # Given fragments repeating a layout with other tag values and SegmentUIDs, then fragments
    # whose layout differs only inside what a layout compares: a track name, the TimecodeScale,
    # a Void, a longer tag value
    docs = [_connect_like(bytes([i]) * 16, f"{1000 + i}", after=f"x-{i}") for i in range(4)]
    docs += [
        _connect_like(b"u" * 16, "2000", name="AUDIO_FROM_CUSTOMEX"),
        _connect_like(b"v" * 16, "2001", scale=1_000_001),
        _connect_like(b"w" * 16, "2002", extra=el(0xEC, b"\x00" * 3)),
        _connect_like(b"x" * 16, "20030", after="x-10"),
        _connect_like(b"y" * 16, "2004"),
    ]
    data = b"".join(docs)
    # When read whole (layouts used) and one byte at a time (never: nothing is buffered whole)
    whole, _ = parse(data)
    reference, _ = parse(data, chunk=1)
    # Then the documents are the same, each as read alone
    assert whole == reference
    for doc, alone_bytes in zip(whole, docs, strict=True):
        (alone,), _ = parse(alone_bytes, chunk=1)
        assert (doc.doc_type, doc.timecode_scale) == (alone.doc_type, alone.timecode_scale)
        # (a track's offset is that of the first identical Tracks in the stream)
        assert [replace(t, offset=0) for t in doc.tracks] == [
            replace(t, offset=0) for t in alone.tracks
        ]
        assert [(t.name, t.value) for t in doc.tags] == [(t.name, t.value) for t in alone.tags]
    assert [d.tracks[0].name for d in whole[3:6]] == [
        "AUDIO_FROM_CUSTOMER",
        "AUDIO_FROM_CUSTOMEX",
        "AUDIO_FROM_CUSTOMER",
    ]
    assert whole[5].timecode_scale == 1_000_001
    assert whole[7].tags[1].value == "20030"
    assert whole[7].tags[-1].value == "x-10"


@pytest.mark.timeout(20)
def test_blocks_changing_size_every_time_are_read_in_linear_time() -> None:
    # Given 3 MB of tiny blocks whose size changes from one block to the next (each one starts
    # a new run, that ends at once): looking for a run must not scan the rest of the buffer.
    # (Read in linear time this takes about 3 s here; scanning the rest, about 50 s.)
    body = b"".join(_block(1, i % 100, bytes(1 + i % 2), width=1) for i in range(450_000))
    data = minimal_document(CLUSTER_UNKNOWN + uint(0xE7, 0) + body)
    (doc,), _ = parse(data)
    assert len(doc.blocks) == 450_000
    assert doc.blocks[-1].frames == [bytes(2)]


def test_a_long_run_of_tags_is_read_but_not_kept_as_a_layout() -> None:
    # Given fragments whose Tags run is longer than a layout may be (100 KB of values)
    simple = b"".join(
        el(0x67C8, el(0x45A3, f"T{i}".encode()) + el(0x4487, b"v" * 1000, 2), 2) for i in range(100)
    )
    long_tags = el(0x1254C367, el(0x7373, simple, 4), 4)
    docs = [minimal_document(long_tags + CLUSTER_UNKNOWN + uint(0xE7, i)) for i in range(3)]
    reader = MkvReader()
    got = reader.feed(b"".join(docs))
    got.append(reader.close().document)  # type: ignore[arg-type]
    # Then each has its tags, and the reader keeps no copy of them
    assert [len(d.tags) for d in got] == [100, 100, 100]
    assert all(layout.length <= 64 * 1024 for layout in reader._layouts)
