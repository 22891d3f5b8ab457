"""The Connect stream producer against the real layout, checked with an independent EBML walk (ebmlite).

Never with the project's own reader: these tests are what makes the producer a trustworthy fixture
for that reader.
"""

from __future__ import annotations

import re
import struct
import wave
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ebmlite  # type: ignore[import-untyped]
import numpy as np
import pytest

from callrec_local.producer import (
    BLOCK_BYTES,
    MIME_TYPE,
    TRACK_FROM_CUSTOMER,
    TRACK_TO_CUSTOMER,
    ConnectCall,
    Gap,
    KvsTags,
    TagsLayout,
    TrackOrder,
    conversation,
    encode_capture,
    encode_error_chunk,
    encode_fragment,
    read_wav_pcm,
    speech_like,
    write_wav_pcm,
)
from tests.support import FIXTURES

SCHEMA = ebmlite.loadSchema("matroska.xml")
DUMP = FIXTURES / "connect-layout" / "real-connect-fragment-dump.txt"
CONTACT = "87718f4a-d2ed-476a-ad11-f496ab09b3f8"
INSTANCE = "3087be6e-771a-48a8-90da-93b5326a43a1"
START_MS = 1782912654536
DUMP_LINE = re.compile(
    r"^\s*(\d+)\s+(\d+)(\s+)(\w[\w-]*) \(ID 0x([0-9A-F]+)\)(?:: \((\w+)\)(?: (.*))?)?$"
)


# --- an independent walk ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    offset: int
    size: int
    depth: int
    name: str
    value: Any


def walk(data: bytes) -> list[Row]:
    """Every element below the document (EBML header children included), as the real dump lists them."""
    doc = SCHEMA.loads(data)
    rows: list[Row] = []

    def visit(el: Any, depth: int) -> None:
        for child in el:
            binary = isinstance(child, ebmlite.core.BinaryElement) or child.name == "CRC-32"
            master = isinstance(child, ebmlite.core.MasterElement) and not binary
            value = None if master or binary else child.value
            rows.append(Row(child.offset, child.size, depth, child.name, value))
            if master:
                visit(child, depth + 1)

    visit(doc, 0)
    return rows


def blocks_by_track(data: bytes) -> Iterator[tuple[str, str, int, bytes]]:
    """(contact_id, track name, absolute ms, pcm) for every SimpleBlock, tracks mapped by Name."""
    doc = SCHEMA.loads(data)
    for segment in doc:
        if segment.name != "Segment":
            continue
        names: dict[int, str] = {}
        contact = ""
        pending: list[tuple[str, int, bytes]] = []
        for el in segment:
            if el.name == "Tracks":
                for entry in el:
                    if entry.name == "TrackEntry":
                        fields = {c.name: c.value for c in entry}
                        names[fields["TrackNumber"]] = fields["Name"]
            elif el.name == "Tags":
                for tag in el:
                    if tag.name != "Tag":
                        continue
                    for simple in tag:
                        if simple.name != "SimpleTag":
                            continue
                        fields = {c.name: c.value for c in simple}
                        if fields["TagName"] == "ContactId":
                            contact = fields["TagString"]
            elif el.name == "Cluster":
                timecode = next(c.value for c in el if c.name == "Timecode")
                for block in el:
                    if block.name == "SimpleBlock":
                        raw = bytes(block.value)
                        (relative,) = struct.unpack(">h", raw[1:3])
                        pending.append((names[raw[0] & 0x7F], timecode + relative, raw[4:]))
        for track, ts, pcm in pending:
            yield contact, track, ts, pcm


def align(blocks: list[tuple[str, int, bytes]]) -> tuple[int, bytes, bytes]:
    """Issue 3 section 3's alignment rules, written independently: (start ms, customer, agent)."""
    start = min(ts for _, ts, _ in blocks)
    out = {TRACK_FROM_CUSTOMER: bytearray(), TRACK_TO_CUSTOMER: bytearray()}
    for track, ts, pcm in blocks:
        buf = out[track]
        position = (ts - start) * 8 * 2
        end = len(buf)
        if abs(position - end) <= 20 * 8 * 2:
            buf += pcm
        elif position > end:
            buf += bytes(position - end) + pcm
        else:
            buf += pcm[end - position :]
    n = max(len(b) for b in out.values())
    return (
        start,
        bytes(out[TRACK_FROM_CUSTOMER].ljust(n, b"\0")),
        bytes(out[TRACK_TO_CUSTOMER].ljust(n, b"\0")),
    )


def call(seconds: float = 3.5, **options: Any) -> ConnectCall:
    cu, op = conversation(seconds, seed=7)
    return ConnectCall(
        contact_id=CONTACT,
        instance_id=INSTANCE,
        start_ms=START_MS,
        customer=cu,
        agent=op,
        **options,
    )


# --- layout --------------------------------------------------------------------------------------------


def real_dump_rows() -> list[Row]:
    rows = []
    for line in DUMP.read_text().splitlines():
        m = DUMP_LINE.match(line)
        if not m:
            continue
        offset, size, indent, name, _id, kind, value = m.groups()
        parsed: Any = None
        if kind == "int":
            parsed = int(value)
        elif kind == "str":
            parsed = value[1:-1]
        rows.append(Row(int(offset), int(size), (len(indent) - 3) // 2, name, parsed))
    return rows


def test_reproduces_the_real_connect_fragment_element_by_element() -> None:
    # Given the ids, timestamps and fragment number of the real dump
    spec = next(call(seconds=1.024).fragments())
    kvs = KvsTags(
        fragment_number="91343852333181551234925834077012571618243808844",
        server_timestamp_ms=1782912654706,
        producer_timestamp_ms=START_MS,
        millis_behind_now=131207,
        continuation_token="91343852333181551234925834077012571618243808844",
    )
    # When encoded as GetMedia delivers it
    data = encode_fragment(spec, kvs)
    # Then every element sits at the same offset with the same size and value as in the real one
    expected = real_dump_rows()
    header = [r for r in expected if r.depth == 1 and r.offset < 40]
    assert len(data) == 34768
    assert SCHEMA.loads(data).info == {r.name: r.value for r in header}
    body = [r for r in expected if r.offset >= 40]
    assert len(body) == 126
    assert walk(data) == body


def test_size_field_widths_are_those_of_the_real_fragment() -> None:
    data = encode_fragment(next(call(seconds=1.024).fragments()))
    assert data[40:52] == bytes.fromhex("18538067 01FFFFFFFFFFFFFF")  # unknown-size Segment
    cluster = data.index(bytes.fromhex("1F43B675"))
    assert data[cluster + 4] == 0xFF  # unknown-size Cluster, 1-byte size
    assert data[cluster + 5 : cluster + 15] == bytes.fromhex("E788") + START_MS.to_bytes(8, "big")
    first_block = data.index(b"\xa3\x01\x00\x00\x00\x00\x00\x04\x04", cluster)  # 8-byte size 1028
    assert first_block == cluster + 18
    tags = data.index(bytes.fromhex("1254C367"))
    assert data[tags + 4] == 0x01  # Connect tags: 8-byte sizes


@pytest.mark.parametrize("order", list(TrackOrder))
def test_both_track_orders_map_tag_values_to_track_uids(order: TrackOrder) -> None:
    data = encode_fragment(next(call(seconds=1.024, track_order=order).fragments()))
    entries = [r for r in walk(data) if r.name in {"TrackNumber", "TrackUID", "Name", "CodecID"}]
    tracks = [tuple(r.value for r in entries[i : i + 4]) for i in (0, 4)]
    expected_first = order.names()[0]
    assert tracks[0][0] == 1
    assert tracks[0][2] == expected_first
    uid = {name: uid for _, uid, name, _ in tracks}
    assert uid == {TRACK_FROM_CUSTOMER: 1, TRACK_TO_CUSTOMER: 2}
    assert {codec for *_, codec in tracks} == {"A_AAC"}
    assert "Audio" not in {r.name for r in walk(data)}


def tag_positions(data: bytes) -> tuple[list[str], list[str]]:
    rows = walk(data)
    cluster = next(r.offset for r in rows if r.name == "Cluster")
    before = [r.value for r in rows if r.name == "TagName" and r.offset < cluster]
    after = [r.value for r in rows if r.name == "TagName" and r.offset > cluster]
    return before, after


def test_2024_layout_has_connect_tags_only_after_the_cluster_with_events() -> None:
    spec = next(call(seconds=1.024, tags_layout=TagsLayout.AFTER_ONLY).fragments())
    before, after = tag_positions(encode_fragment(spec))
    assert before == []
    assert after == [
        "ContactId",
        "InstanceId",
        "MimeType",
        "AUDIO_TO_CUSTOMER",
        "AUDIO_FROM_CUSTOMER",
        "Events",
    ]
    assert "[]" in [r.value for r in walk(encode_fragment(spec))]


def test_2026_layout_has_connect_tags_both_sides_and_kvs_tags_split() -> None:
    spec = next(call(seconds=1.024).fragments())
    kvs = KvsTags("1", START_MS + 170, START_MS, 5, "1")
    before, after = tag_positions(encode_fragment(spec, kvs))
    connect = ["ContactId", "InstanceId", "MimeType", "AUDIO_TO_CUSTOMER", "AUDIO_FROM_CUSTOMER"]
    assert before == [
        *connect,
        "AWS_KINESISVIDEO_FRAGMENT_NUMBER",
        "AWS_KINESISVIDEO_SERVER_TIMESTAMP",
        "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP",
    ]
    assert after == [
        *connect,
        "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW",
        "AWS_KINESISVIDEO_CONTINUATION_TOKEN",
    ]
    assert MIME_TYPE in [r.value for r in walk(encode_fragment(spec))]


def test_crc32_elements_hold_the_crc_of_their_siblings_and_void_is_skippable() -> None:
    spec = next(call(seconds=1.024, crc32=True, void=True).fragments())
    data = encode_fragment(spec)
    doc = SCHEMA.loads(data)
    crcs = 0
    for segment in doc:
        for el in segment:
            master = isinstance(el, ebmlite.core.MasterElement) and el.name != "CRC-32"
            children = list(el) if master else []
            if children and children[0].name == "CRC-32":
                crc = children[0]
                start = crc.offset + 2 + crc.size
                end = el.payloadOffset + el.size
                assert struct.unpack("<I", bytes(crc.value))[0] == zlib.crc32(data[start:end])
                crcs += 1
    assert crcs >= 12  # Info, Tracks, 10 Connect Tags
    names = [r.name for r in walk(data)]
    assert names.count("Void") == 3
    assert names.count("SimpleBlock") == 32
    # Void and CRC-32 change nothing in the audio
    plain = list(blocks_by_track(encode_fragment(next(call(seconds=1.024).fragments()))))
    assert list(blocks_by_track(data)) == plain


def test_error_chunk_has_the_error_tags_and_no_cluster() -> None:
    rows = walk(encode_error_chunk("FRAGMENT_NOT_FOUND", "3000"))
    assert [r.name for r in rows if r.depth == 0] == ["Segment"]
    assert "Cluster" not in {r.name for r in rows}
    tags = [r.value for r in rows if r.name in {"TagName", "TagString"}]
    assert tags == [
        "AWS_KINESISVIDEO_ERROR_CODE",
        "FRAGMENT_NOT_FOUND",
        "AWS_KINESISVIDEO_ERROR_ID",
        "3000",
    ]


# --- calls and their ground truth ----------------------------------------------------------------------


def blocks_of(connect_call: ConnectCall) -> list[tuple[str, int, bytes]]:
    capture = encode_capture(list(connect_call.fragments()))
    return [(t, ts, pcm) for _, t, ts, pcm in blocks_by_track(capture)]


def test_a_plain_call_is_its_sources_cut_in_64_ms_blocks_16_per_track_per_fragment() -> None:
    c = call(seconds=3.5)
    specs = list(c.fragments())
    assert len(specs) == 4
    assert [len(s.blocks) for s in specs] == [32, 32, 32, 14]  # 55 blocks a track, the last short
    assert all(len(b.pcm) == BLOCK_BYTES for s in specs[:3] for b in s.blocks)
    assert [s.timecode_ms - START_MS for s in specs] == [0, 1024, 2048, 3072]
    # Interleaved: each 64 ms step has one block of each track
    first = specs[0].blocks
    assert [b.track for b in first[:4]] == [TRACK_TO_CUSTOMER, TRACK_FROM_CUSTOMER] * 2
    start, cu, op = align(blocks_of(c))
    truth = c.ground_truth()
    assert (start, cu, op) == (truth.start_ms, truth.customer, truth.agent)
    assert truth.customer == c.customer
    assert truth.agent == c.agent


def test_gap_in_one_track_becomes_silence_in_the_ground_truth() -> None:
    c = call(seconds=4.0, gaps=[Gap(TRACK_FROM_CUSTOMER, 1000, 2100)])
    truth = c.ground_truth()
    sent = blocks_of(c)
    assert sum(t == TRACK_FROM_CUSTOMER for t, _, _ in sent) < sum(
        t == TRACK_TO_CUSTOMER for t, _, _ in sent
    )
    assert align(sent) == (truth.start_ms, truth.customer, truth.agent)
    cu = np.frombuffer(truth.customer, "<i2")
    assert not cu[1024 * 8 : 2048 * 8].any()  # blocks starting 1024..2047 ms are not sent
    assert cu[960 * 8 : 1024 * 8].any()
    assert truth.agent == c.agent


def test_gap_at_the_start_of_both_tracks_moves_the_recording_start() -> None:
    c = call(
        seconds=3.0,
        gaps=[Gap(TRACK_FROM_CUSTOMER, 0, 300), Gap(TRACK_TO_CUSTOMER, 0, 100)],
        jitter_ms=9,
    )
    truth = c.ground_truth()
    assert truth.start_ms == START_MS + 128
    assert align(blocks_of(c)) == (truth.start_ms, truth.customer, truth.agent)


def test_duplicate_fragment_is_delivered_twice_and_changes_nothing_in_the_truth() -> None:
    c = call(seconds=4.0, duplicate_fragments=frozenset({1}))
    specs = list(c.fragments())
    assert len(specs) == 5
    assert specs[1] == specs[2]
    assert align(blocks_of(c)) == (START_MS, c.customer, c.agent)


def test_jitter_moves_blocks_within_limits_and_the_truth_stays_exact() -> None:
    c = call(seconds=6.0, jitter_ms=15, jitter_seed=3, gaps=[Gap(TRACK_TO_CUSTOMER, 2000, 2500)])
    sent = blocks_of(c)
    offsets = {ts - START_MS for _, ts, _ in sent}
    assert any(o % 64 for o in offsets)
    assert all(min(o % 64, 64 - o % 64) <= 15 for o in offsets)
    truth = c.ground_truth()
    assert align(sent) == (truth.start_ms, truth.customer, truth.agent)


def test_hang_up_mid_block_ends_with_a_short_block() -> None:
    c = call(seconds=10.0, hangup_ms=2100)
    specs = list(c.fragments())
    assert len(specs) == 3
    assert len(specs[-1].blocks[-1].pcm) == (2100 - 2048) * 16
    truth = c.ground_truth()
    assert truth.samples == 2100 * 8
    assert align(blocks_of(c)) == (START_MS, truth.customer, truth.agent)


def test_second_contact_reusing_the_stream_is_told_apart_by_contact_id() -> None:
    first = call(seconds=2.0)
    cu, op = conversation(2.0, seed=8)
    second = ConnectCall(
        contact_id="b0000000-0000-4000-8000-000000000002",
        instance_id=INSTANCE,
        start_ms=first.end_ms + 500,
        customer=cu,
        agent=op,
        track_order=TrackOrder.FROM_CUSTOMER_FIRST,
    )
    capture = encode_capture([*first.fragments(), *second.fragments()])
    seen = list(blocks_by_track(capture))
    mine = [(t, ts, p) for c, t, ts, p in seen if c == CONTACT]
    theirs = [(t, ts, p) for c, t, ts, p in seen if c == second.contact_id]
    assert align(mine)[1:] == (first.customer, first.agent)
    assert align(theirs) == (second.start_ms, cu, op)


def test_capture_numbers_fragments_increasingly_and_can_end_in_an_error_or_truncated() -> None:
    specs = list(call(seconds=3.0).fragments())
    capture = encode_capture(specs, error_chunk=("FRAGMENT_NOT_FOUND", "3000"))
    rows = walk(capture)
    numbers = [
        rows[i + 1].value
        for i, r in enumerate(rows)
        if r.value == "AWS_KINESISVIDEO_FRAGMENT_NUMBER"
    ]
    tokens = [
        rows[i + 1].value
        for i, r in enumerate(rows)
        if r.value == "AWS_KINESISVIDEO_CONTINUATION_TOKEN"
    ]
    assert len(numbers) == 3
    assert numbers == tokens
    assert numbers == sorted(numbers)
    assert {len(n) for n in numbers} == {47}
    assert [r.value for r in rows if r.name == "TagString"][-2:] == ["FRAGMENT_NOT_FOUND", "3000"]
    truncated = encode_capture(specs, truncate_last=100)
    assert truncated == encode_capture(specs)[:-100]


def test_speech_like_signals_are_deterministic_and_never_digital_silence() -> None:
    a = speech_like(5.0, seed=1)
    assert a == speech_like(5.0, seed=1)
    assert a != speech_like(5.0, seed=2)
    samples = np.frombuffer(a, "<i2")
    assert len(samples) == 40000
    # no 8 ms window of all zeros, so inserted or dropped silence always shows
    windows = samples[: len(samples) // 64 * 64].reshape(-1, 64)
    assert (np.abs(windows).max(axis=1) > 0).all()
    assert np.abs(samples).max() > 3000


def test_wav_sources_are_read_as_connect_pcm(tmp_path: Path) -> None:
    pcm = speech_like(1.0, seed=4)
    plain = tmp_path / "plain.wav"
    write_wav_pcm(plain, pcm)
    assert read_wav_pcm(plain) == pcm
    # 16 kHz stereo: first channel, resampled to 8 kHz
    wide = tmp_path / "wide.wav"
    samples = np.repeat(np.frombuffer(pcm, "<i2"), 2)  # 16 kHz by repetition
    with wave.open(str(wide), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(np.column_stack((samples, -samples)).astype("<i2").tobytes())
    assert read_wav_pcm(wide) == pcm


def test_error_chunk_can_name_its_fragment_as_a_real_one_does() -> None:
    rows = walk(encode_error_chunk("FRAGMENT_NOT_FOUND", "3000", fragment_number="913"))
    tag = [r for r in rows if r.name == "Tag"]
    assert len(tag) == 1
    assert [r.value for r in rows if r.name in {"TagName", "TagString"}][-2:] == [
        "AWS_KINESISVIDEO_FRAGMENT_NUMBER",
        "913",
    ]
