"""The same bytes give the same events in any chunking, valid or not: fragments completed before
bad bytes are handed out first, then the MkvError (mutated real captures and generated streams)."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callrec.fragments import ErrorChunk, Fragment, FragmentReader
from callrec.mkv import MkvError, MkvReader
from callrec_local import fuzz
from callrec_local import producer as p

SEEDS = [*fuzz.real_seeds(), *fuzz.generated_seeds()]


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    return [data[lo:hi] for lo, hi in itertools.pairwise(bounds)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SEEDS),
    st.integers(min_value=0, max_value=2**32),
    st.lists(st.integers(min_value=0), max_size=60),
)
def test_mutated_streams_give_the_same_events_whole_and_in_any_chunks(
    seed: tuple[str, bytes], mutation_seed: int, cuts: list[int]
) -> None:
    # Given a real capture or a generated stream, mutated
    data, _ = fuzz.mutate(seed[1], random.Random(mutation_seed))
    # When it is read whole and in chunks, then the events (and the error, if any) are the same
    whole = fuzz.reader_events([data])
    assert repr(fuzz.reader_events(pieces(data, cuts))) == repr(whole)


def two_fragments_then_garbage() -> tuple[bytes, int]:
    call = p.ConnectCall(
        "c-1",
        "i-1",
        1_782_912_654_536,
        *p.conversation(0.3, 1),
        block_samples=160,
        blocks_per_fragment=4,
    )
    good = p.encode_capture(list(call.fragments())[:3])
    # The third fragment's Cluster gets a byte that cannot start an element ID.
    third = good.rindex(b"\x1a\x45\xdf\xa3")
    bad_at = good.index(b"\x1f\x43\xb6\x75", third)
    return good[:bad_at] + b"\x00" + good[bad_at + 1 :], bad_at


@pytest.mark.parametrize("chunk", [None, 1, 7, 4096])
def test_fragments_before_an_error_are_kept_in_any_chunking(chunk: int | None) -> None:
    # Given two good fragments, then a third with a bad byte in it
    data, bad_at = two_fragments_then_garbage()
    reader = FragmentReader()
    chunks = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    fragments: list[Fragment | ErrorChunk] = []

    def feed_all() -> None:
        for piece in chunks:
            fragments.extend(reader.feed(piece))
        reader.close()

    # When it is fed, then both good fragments come out before the error
    with pytest.raises(MkvError) as info:
        feed_all()
    assert [f.index for f in fragments] == [0, 1]
    assert all(f.complete for f in fragments)
    # and the error says where the bad byte is
    assert info.value.offset == bad_at
    assert f"(at byte {bad_at})" in str(info.value)


def test_a_deferred_error_is_raised_again_by_every_later_call() -> None:
    data, _ = two_fragments_then_garbage()
    reader = MkvReader()
    assert len(reader.feed(data)) == 2
    with pytest.raises(MkvError):
        reader.feed(b"")
    with pytest.raises(MkvError):
        reader.close()
