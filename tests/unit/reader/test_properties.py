"""Property-based: any chunking gives the same output; mutated input only raises MkvError."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callrec.alignment import Aligner
from callrec.errors import CallrecError
from callrec.fragments import ContactDecision, ContactGate, ErrorChunk, FragmentReader
from callrec.mkv import MkvError, MkvReader
from callrec_local import producer as p

CALL = p.ConnectCall(
    "c-1",
    "i-1",
    1_782_912_654_536,
    *p.conversation(0.5, 4),
    block_samples=160,
    blocks_per_fragment=3,
    crc32=True,
    void=True,
    gaps=(p.Gap(p.TRACK_TO_CUSTOMER, 40, 80),),
    duplicate_fragments=frozenset({1}),
    jitter_ms=5,
)
SECOND = p.ConnectCall(
    "c-2",
    "i-1",
    CALL.end_ms + 100,
    *p.conversation(0.2, 5),
    block_samples=160,
    blocks_per_fragment=3,
)
CAPTURE = p.encode_capture(
    [*CALL.fragments(), *SECOND.fragments()], error_chunk=("FRAGMENT_NOT_FOUND", "3000")
)
TRUNCATED = CAPTURE[:-2000]


def outcome(data: bytes, cuts: list[int]) -> tuple[object, ...]:
    """Everything observable: events, how the stream ended, and the recorded PCM."""
    reader = FragmentReader(include_incomplete=True)
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    events = []
    for lo, hi in itertools.pairwise(bounds):
        events += reader.feed(data[lo:hi])
    events += reader.close()
    gate, aligner = ContactGate(), Aligner()
    pcm = bytearray()
    summary = []
    for event in events:
        if isinstance(event, ErrorChunk):
            summary.append(("error", event.code, event.index))
            continue
        summary.append(
            (
                event.index,
                event.complete,
                event.document_tags,
                [(b.track, b.timecode, b.frames) for b in event.blocks],
            )
        )
        if event.complete and gate.decide(event) is ContactDecision.KEEP:
            out = aligner.add_fragment(event)
            pcm += out.cu + b"|" + out.op
    assert reader.end is not None
    return tuple(summary), reader.end.clean, reader.end.offset, bytes(pcm), aligner.state()


WHOLE = outcome(CAPTURE, [])
WHOLE_TRUNCATED = outcome(TRUNCATED, [])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=0), max_size=40))
def test_any_split_gives_identical_output(cuts: list[int]) -> None:
    assert outcome(CAPTURE, cuts) == WHOLE
    assert outcome(TRUNCATED, cuts) == WHOLE_TRUNCATED


def test_byte_by_byte_feeding() -> None:
    data = p.encode_capture(list(CALL.fragments())[:2])
    assert outcome(data, list(range(len(data)))) == outcome(data, [])


def test_whole_outcome_is_meaningful() -> None:
    assert WHOLE[1] is True
    assert WHOLE_TRUNCATED[1] is False
    assert any(item[0] == "error" for item in WHOLE[0])


MUTATION = st.tuples(
    st.integers(min_value=0), st.sampled_from(["set", "insert", "delete"]), st.integers(0, 255)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(MUTATION, min_size=1, max_size=6), st.integers(min_value=1, max_value=5000))
def test_mutated_input_only_raises_mkverror_and_terminates(
    mutations: list[tuple[int, str, int]], chunk: int
) -> None:
    data = bytearray(CAPTURE[:6000])
    for where, how, value in mutations:
        i = where % len(data)
        if how == "set":
            data[i] = value
        elif how == "insert":
            data.insert(i, value)
        else:
            del data[i]
    reader = MkvReader(max_element_size=1 << 20)
    try:
        for lo in range(0, len(data), chunk):
            reader.feed(bytes(data[lo : lo + chunk]))
        reader.close()
    except MkvError:
        return
    # The fragment layer and the aligner raise only callrec's own errors on what parsed
    fragments = FragmentReader()
    aligner = Aligner()
    try:
        for event in [*fragments.feed(bytes(data)), *fragments.close()]:
            if not isinstance(event, ErrorChunk):
                aligner.add_fragment(event)
    except CallrecError:
        pass


@pytest.mark.parametrize("size_byte", [0x01, 0x08])
def test_huge_claims_in_mutated_sizes_do_not_allocate(size_byte: int) -> None:
    # A SimpleBlock header rewritten to claim 2**56-2 bytes: refused or reported, never allocated
    data = bytearray(CAPTURE[:3000])
    at = data.index(b"\xa3\x01\x00\x00\x00")
    data[at + 1 : at + 9] = bytes([size_byte]) + b"\xff" * 6 + b"\xfe"
    with pytest.raises(MkvError):
        feed_and_close(bytes(data))


def feed_and_close(data: bytes) -> None:
    reader = MkvReader()
    reader.feed(data)
    tail = reader.close()
    if tail.truncated:
        raise MkvError(tail.detail, tail.offset, truncated=True)
