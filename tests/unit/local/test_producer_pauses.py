"""Paused streaming and contact switches in the Connect producer: which spans are streamed, how
the fragments are cut and tagged, and the ground truth (pauses as silence of their true length).

The truth is checked against the call's sources, never against the project's reader.
"""

from __future__ import annotations

import pytest

from callrec_local.producer import (
    BLOCK_MS,
    SAMPLE_WIDTH,
    TRACK_FROM_CUSTOMER,
    ConnectCall,
    Gap,
    Pause,
    StreamedSpan,
    conversation,
    truth_of,
)

CONTACT = "87718f4a-d2ed-476a-ad11-f496ab09b3f8"
OTHER = "0b7d1a52-7ac4-4e07-9a39-5f0c3f1c9d41"
INSTANCE = "3087be6e-771a-48a8-90da-93b5326a43a1"
START_MS = 1782912654536
BYTES_PER_MS = 16


def call(seconds: float, **options: object) -> ConnectCall:
    customer, agent = conversation(seconds, seed=3)
    return ConnectCall(CONTACT, INSTANCE, START_MS, customer, agent, **options)  # type: ignore[arg-type]


def test_a_pause_splits_the_call_into_two_streamed_spans() -> None:
    # Given a 20 s call whose streaming stops 5 s in (block grid: 4992 ms) for 9.5 s
    paused = call(20.0, pauses=[Pause(at_ms=5000, length_ms=9_500)])

    # Then two spans: to the last whole block before 5 s, and from 9.5 s after that
    assert paused.spans() == [StreamedSpan(0, 4992, 0), StreamedSpan(14_492, 20_000, 0)]
    first, second = paused.fragments_by_span()
    assert first[0].timecode_ms == START_MS
    assert second[0].timecode_ms == START_MS + 14_492  # restarts at any millisecond
    # no fragment covers the pause
    for spec in first + second:
        for block in spec.blocks:
            assert not START_MS + 4992 <= block.timestamp_ms < START_MS + 14_492


def test_a_restart_on_another_stream_is_a_span_of_its_own_stream() -> None:
    paused = call(12.0, pauses=[Pause(2048, 3000, other_stream=True), Pause(8000, 1000)])

    assert [span.stream for span in paused.spans()] == [0, 1, 1]


def test_the_truth_of_a_paused_call_is_its_audio_with_the_pause_silent() -> None:
    paused = call(20.0, pauses=[Pause(at_ms=5000, length_ms=9_500)])
    customer, agent = conversation(20.0, seed=3)

    truth = paused.ground_truth()

    assert truth.start_ms == START_MS
    assert truth.duration_ms == 20_000  # the pause keeps its true length
    stop, restart = 4992 * BYTES_PER_MS, 14_492 * BYTES_PER_MS
    assert truth.customer[:stop] == customer[:stop]
    assert truth.customer[stop:restart] == bytes(restart - stop)
    assert truth.customer[restart:] == customer[restart : 20_000 * BYTES_PER_MS]
    assert truth.agent[restart:] == agent[restart : 20_000 * BYTES_PER_MS]


def test_a_hang_up_during_a_pause_ends_the_streaming_at_the_pause() -> None:
    paused = call(30.0, pauses=[Pause(at_ms=6000, length_ms=60_000)], hangup_ms=20_000)

    assert paused.spans() == [StreamedSpan(0, 5952, 0)]
    assert paused.duration_ms == 20_000
    assert paused.ground_truth().duration_ms == 5952


def test_a_contact_switch_starts_a_new_fragment_tagged_with_the_new_contact() -> None:
    # Given a transfer 6.5 s in whose tags switch to the new contact
    switched = call(10.0, contact_switches=[(6_500, OTHER)])

    specs = list(switched.fragments())
    tags = [spec.contact_id for spec in specs]

    # Then fragments before it carry the original id, from the first block at or after it the
    # new one, and a fragment never mixes both
    assert tags == [CONTACT] * tags.count(CONTACT) + [OTHER] * tags.count(OTHER)
    first_new = specs[tags.index(OTHER)]
    assert first_new.timecode_ms == START_MS + 6_528  # the next block on the 64 ms grid
    original, new = switched.ground_truth(CONTACT), switched.ground_truth(OTHER)
    assert original.duration_ms + new.duration_ms == 10_000
    assert new.start_ms == START_MS + 6_528
    whole = switched.ground_truth()
    assert whole.customer == original.customer + new.customer


def test_the_truth_of_fragments_places_blocks_as_a_reader_does() -> None:
    # Given a gap in one track and a duplicate fragment, in a paused call
    paused = call(
        8.0,
        pauses=[Pause(3000, 2000)],
        gaps=[Gap(TRACK_FROM_CUSTOMER, 512, 1024)],
        duplicate_fragments=frozenset({0}),
    )
    customer, _ = conversation(8.0, seed=3)

    truth = truth_of(paused.fragments())

    assert truth.customer[512 * BYTES_PER_MS : 1024 * BYTES_PER_MS] == bytes(512 * BYTES_PER_MS)
    assert truth.customer[: 512 * BYTES_PER_MS] == customer[: 512 * BYTES_PER_MS]
    assert len(truth.customer) == len(truth.agent) == 8000 * BYTES_PER_MS
    assert truth.samples * SAMPLE_WIDTH == len(truth.customer)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pauses": [Pause(1000, 500)], "jitter_ms": 5}, "exact timestamps"),
        ({"pauses": [Pause(1000, 0)]}, "length_ms > 0"),
    ],
)
def test_paused_calls_refuse_what_would_make_the_truth_inexact(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        call(4.0, **options)


def test_a_call_without_pauses_is_laid_out_as_before() -> None:
    plain = call(5.0)

    assert plain.spans() == [StreamedSpan(0, 5000, 0)]
    assert plain.fragments_by_span() == [list(plain.fragments())]
    assert plain.ground_truth() == truth_of(plain.fragments())
    assert BLOCK_MS == 64
