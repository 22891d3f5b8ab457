"""A capture taken apart for replay keeps every byte the producer sent, in its place."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from callrec.fragments import FragmentReader
from callrec_local import producer as p
from callrec_local.capture import KVS_TAG_PREFIX, CaptureError, _split, load_capture

FIXTURES = Path(__file__).parents[2] / "fixtures" / "getmedia-real"
START_MS = 1_782_912_654_536


def call(**options: object) -> p.ConnectCall:
    cu, op = p.conversation(3.0, 5)
    return p.ConnectCall("c-1", "i-1", START_MS, cu, op, **options)  # type: ignore[arg-type]


def kvs_tags(index: int, spec: p.FragmentSpec, stream_seed: int = 0) -> p.KvsTags:
    """The tags `encode_capture` gave fragment `index`."""
    number = p.fragment_number(stream_seed, index)
    return p.KvsTags(number, spec.timecode_ms + 170, spec.timecode_ms, 0, number)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"tags_layout": p.TagsLayout.AFTER_ONLY},
        {"crc32": True, "void": True},
        {"duplicate_fragments": frozenset({1}), "jitter_ms": 3, "jitter_seed": 4},
    ],
    ids=["2026", "2024", "crc32-void", "duplicate-jitter"],
)
def test_each_fragment_is_its_own_bytes_with_kvss_tags_where_they_were(options: object) -> None:
    # Given a capture of a call in one of Connect's layouts
    specs = list(call(**options).fragments())  # type: ignore[arg-type]
    data = p.encode_capture(specs)

    # When it is taken apart
    capture = load_capture(data)

    # Then every fragment is there, and with the same KVS tags put back each is byte for byte
    # the document captured
    assert len(capture.fragments) == len(specs)
    rebuilt = b"".join(
        f.parts.with_kvs(kvs_tags(n, spec))
        for n, (f, spec) in enumerate(zip(capture.fragments, specs, strict=True))
    )
    assert rebuilt == data
    assert [f.producer_timestamp_ms for f in capture.fragments] == [s.timecode_ms for s in specs]
    assert [f.duration_ms for f in capture.fragments] == [s.duration_ms for s in specs]
    assert capture.contacts == ["c-1"]


def test_contacts_error_chunks_and_a_cut_last_fragment() -> None:
    # Given a reused stream (two contacts), an error chunk, and a capture cut mid-fragment
    first = list(call().fragments())
    cu, op = p.conversation(3.0, 6)
    second = list(p.ConnectCall("c-2", "i-1", call().end_ms, cu, op).fragments())
    with_error = p.encode_capture(first, error_chunk=("Requested fragment is not found", "4000"))
    cut = p.encode_capture([*first, *second], truncate_last=100)

    # Then the error chunk is not stored (KVS makes them per response) and the incomplete
    # fragment is dropped, as every reader drops it
    taken = load_capture(with_error)
    assert (len(taken.fragments), taken.error_chunks) == (len(first), 1)
    both = load_capture(cut)
    assert both.contacts == ["c-1", "c-2"]
    assert len(both.fragments) == len(first) + len(second) - 1
    assert both.incomplete_dropped == 1
    assert len(both.contact_fragments("c-2")) == len(second) - 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "not a GetMedia capture: it starts with 52494646"),
        (
            p.encode_capture([], error_chunk=("Requested fragment is not found", "4000")),
            r"no fragment in the capture \(1 error chunk",
        ),
    ],
    ids=["empty", "wav", "only-an-error-chunk"],
)
def test_what_is_not_a_capture_is_named(data: bytes, message: str) -> None:
    with pytest.raises(CaptureError, match=message):
        load_capture(data)


def test_a_capture_without_connect_audio_is_refused() -> None:
    spec = next(iter(call().fragments()))
    silent = dataclasses.replace(spec, blocks=())
    with pytest.raises(CaptureError, match="no AUDIO_FROM_CUSTOMER / AUDIO_TO_CUSTOMER track"):
        # A fragment with Connect's tags but whose tracks are not Connect's audio tracks
        load_capture(p.encode_capture([silent]).replace(b"AUDIO_", b"VIDEO_"))


@pytest.mark.parametrize("name", sorted(f.name for f in FIXTURES.glob("*.mkv")))
def test_real_captures_split_without_losing_a_byte_and_are_refused_for_lack_of_connect(
    name: str,
) -> None:
    # Given a real GetMedia capture (vendored; video, not Connect)
    data = (FIXTURES / name).read_bytes()

    # Then replay refuses it, saying why
    with pytest.raises(CaptureError, match="not a capture of an Amazon Connect stream"):
        load_capture(data)

    # And each document taken apart and put back together without KVS's tags reads as the
    # same document: the same other tags in the same order, the same blocks
    reader = FragmentReader()
    for event in [*reader.feed(data), *reader.close()]:
        original = getattr(event, "fragment", event)
        head, body, tail = _split(data[original.offset : original.end])
        (again,) = [*(r := FragmentReader()).feed(head + body + tail), *r.close()]
        again = getattr(again, "fragment", again)
        assert again.document_tags == tuple(
            (n, v) for n, v in original.document_tags if not n.startswith(KVS_TAG_PREFIX)
        )
        assert [(b.track, b.timecode, b.frames) for b in again.blocks] == [
            (b.track, b.timecode, b.frames) for b in original.blocks
        ]
