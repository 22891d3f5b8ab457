"""Alignment rules on hand-made blocks, PCM formats, and WAV headers against the `wave` module."""

from __future__ import annotations

import io
import random
import struct
import wave

import pytest

from callrec.alignment import Aligner, AlignmentError
from callrec.fragments import AudioBlock, Fragment, PcmFormat, fragment_audio, parse_mime_type
from callrec.mkv import Block, MkvError, Track
from callrec.wav import WavError, recording_basename, wav_header

FMT = PcmFormat(8000)
MS = 1_000_000  # ns
T0 = 1_782_912_654_536 * MS


def pcm(n: int, value: int) -> bytes:
    return struct.pack(f"<{n}h", *([value] * n))


def run(*blocks: AudioBlock) -> tuple[bytes, bytes, Aligner]:
    aligner = Aligner()
    out = aligner.add(list(blocks), FMT)
    tail = aligner.finish()
    return out.cu + tail.cu, out.op + tail.op, aligner


def test_start_is_earliest_block_over_both_tracks() -> None:
    cu, op, aligner = run(
        AudioBlock("cu", T0 + 100 * MS, [pcm(8, 1)]), AudioBlock("op", T0, [pcm(8, 2)])
    )
    assert aligner.start_ns == T0
    assert op == pcm(8, 2) + pcm(800, 0)
    assert cu == pcm(800, 0) + pcm(8, 1)


def test_jitter_within_20_ms_is_appended_at_the_end() -> None:
    # 160 samples = 20 ms at 8 kHz: late or early by exactly that much is absorbed
    cu, _, aligner = run(
        AudioBlock("cu", T0, [pcm(160, 1)]),
        AudioBlock("cu", T0 + 40 * MS, [pcm(160, 2)]),  # 20 ms late
        AudioBlock("cu", T0 + 20 * MS, [pcm(160, 3)]),  # 20 ms early
    )
    assert cu == pcm(160, 1) + pcm(160, 2) + pcm(160, 3)
    assert aligner.gaps_filled == 0


def test_later_than_tolerance_fills_the_gap_with_silence() -> None:
    cu, _, aligner = run(
        AudioBlock("cu", T0, [pcm(160, 1)]), AudioBlock("cu", T0 + 41 * MS, [pcm(10, 2)])
    )
    assert cu == pcm(160, 1) + pcm(168, 0) + pcm(10, 2)
    assert (aligner.gaps_filled, aligner.gap_samples) == (1, 168)


def test_overlap_beyond_tolerance_drops_overlapping_samples() -> None:
    # Track ends at 400 samples; a 400-sample block at sample 200 overlaps by 200 (> 160)
    cu, _, aligner = run(
        AudioBlock("cu", T0, [pcm(400, 1)]), AudioBlock("cu", T0 + 25 * MS, [pcm(400, 2)])
    )
    assert cu == pcm(400, 1) + pcm(200, 2)
    assert aligner.dropped_samples == 200
    assert aligner.duplicates_dropped == 0


def test_repeated_block_is_dropped_whole() -> None:
    # A repeat whose timestamp jittered 19 ms late would otherwise leave 152 samples written twice
    cu, _, aligner = run(
        AudioBlock("cu", T0, [pcm(512, 1)]),
        AudioBlock("cu", T0 + 64 * MS, [pcm(512, 2)]),
        AudioBlock("cu", T0 + 83 * MS, [pcm(512, 2)]),
    )
    assert cu == pcm(512, 1) + pcm(512, 2)
    assert aligner.duplicates_dropped == 1


def test_laced_frames_are_timed_from_the_samples_before_them() -> None:
    # Frames of 200 samples at T0+200ms; the track already ends at sample 1800 (225 ms).
    # Frame 0 (samples 1600-1800) overlaps whole: dropped. Frame 1 starts at 1800: appended.
    aligner = Aligner()
    aligner.add([AudioBlock("cu", T0, [pcm(1800, 1)])], FMT)
    out = aligner.add([AudioBlock("cu", T0 + 200 * MS, [pcm(200, 2), pcm(200, 3)])], FMT)
    assert out.cu == pcm(200, 3)


def test_timecode_scale_is_honoured() -> None:
    # TimecodeScale 100 us: timecode 2000 ticks is 200 ms = 1600 samples
    track = Track(number=1, type=2, name="AUDIO_FROM_CUSTOMER", codec_id="A_PCM/INT/LIT")
    blocks = [Block(1, 0, [pcm(10, 1)], 0), Block(1, 2000, [pcm(10, 2)], 0)]
    fragment = Fragment(0, 0, 0, True, {}, (track,), blocks, 100_000, 1)
    aligner = Aligner()
    out = aligner.add_fragment(fragment)
    assert out.cu == pcm(10, 1) + pcm(1590, 0) + pcm(10, 2)


def test_big_endian_pcm_is_swapped() -> None:
    track = Track(number=1, type=2, name="AUDIO_TO_CUSTOMER", codec_id="A_PCM/INT/BIG")
    fragment = Fragment(
        0, 0, 0, True, {}, (track,), [Block(1, 0, [b"\x01\x02\x03\x04"], 0)], 1_000_000, 1
    )
    fmt, (block,) = fragment_audio(fragment)
    assert fmt == PcmFormat(8000)
    assert (block.role, block.frames) == ("op", [b"\x02\x01\x04\x03"])


@pytest.mark.parametrize(
    ("track", "message"),
    [
        (Track(number=2, type=1, name="AUDIO_TO_CUSTOMER", codec_id="V_VP8"), "not audio"),
        (Track(number=2, type=2, name="AUDIO_TO_CUSTOMER", codec_id="A_OPUS"), "A_OPUS is not PCM"),
        (
            Track(
                number=2, type=2, name="AUDIO_TO_CUSTOMER", codec_id="A_PCM/INT/LIT", bit_depth=24
            ),
            "24-bit",
        ),
        (
            Track(number=2, type=2, name="AUDIO_TO_CUSTOMER", codec_id="A_PCM/INT/LIT", channels=2),
            "2 channels",
        ),
    ],
)
def test_unsupported_audio_is_rejected_naming_track_and_codec(track: Track, message: str) -> None:
    fragment = Fragment(0, 0, 0, True, {}, (track,), [], 1_000_000, 1)
    with pytest.raises(MkvError, match=message) as info:
        fragment_audio(fragment)
    assert "track 2 (AUDIO_TO_CUSTOMER)" in str(info.value)


def test_mime_type_parsing() -> None:
    assert parse_mime_type("audio/L16;rate=8000;channels=1;") == PcmFormat(8000, 1)
    assert parse_mime_type("audio/L16;rate=16000") == PcmFormat(16000, 1)
    assert parse_mime_type("audio/aac") is None
    assert parse_mime_type("audio/L16;rate=abc") is None


def test_gap_beyond_limit_is_refused_not_allocated() -> None:
    with pytest.raises(AlignmentError, match="within 600 s"):
        run(AudioBlock("cu", T0, [pcm(4, 1)]), AudioBlock("cu", T0 + 10**9 * MS, [pcm(4, 1)]))


def test_rate_change_mid_recording_is_an_error() -> None:
    aligner = Aligner()
    aligner.add([AudioBlock("cu", T0, [pcm(4, 1)])], FMT)
    with pytest.raises(AlignmentError, match="expected audio at 8000 Hz, found 16000 Hz"):
        aligner.add([AudioBlock("cu", T0, [pcm(4, 1)])], PcmFormat(16000))


def test_state_is_small_json_and_restores_from_strings() -> None:
    aligner = Aligner()
    aligner.add([AudioBlock("op", T0, [pcm(4, 1)])], FMT)
    state = aligner.state()
    assert all(isinstance(v, (int, str)) for v in state.values())
    restored = Aligner.from_state({k: str(v) for k, v in state.items()})
    assert restored.state() == state
    with pytest.raises(AlignmentError):
        Aligner.from_state({"v": 1})


@pytest.mark.parametrize(
    ("rate", "channels", "frames"), [(8000, 1, 0), (8000, 2, 3), (44100, 1, 1000)]
)
def test_wav_header_matches_the_wave_module(rate: int, channels: int, frames: int) -> None:
    data = bytes(range(256)) * (frames * channels * 2 // 256 + 1)
    data = data[: frames * channels * 2]
    reference = io.BytesIO()
    with wave.open(reference, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data)
    assert wav_header(rate, channels, len(data)) + data == reference.getvalue()


def test_wav_header_refuses_impossible_sizes() -> None:
    with pytest.raises(WavError):
        wav_header(8000, 1, 2**32)
    with pytest.raises(WavError):
        wav_header(8000, 2, 6)


def test_recording_basename_is_utc_start() -> None:
    assert recording_basename(T0) == "20260701T133054Z"


def _fragment(tracks: tuple[Track, ...], blocks: list[Block], scale: int = 1_000_000) -> Fragment:
    return Fragment(0, 0, 0, True, {}, tracks, blocks, scale, 1)


CU_TRACK = Track(number=1, type=2, name="AUDIO_FROM_CUSTOMER", codec_id="A_PCM/INT/LIT")
OP_TRACK = Track(number=2, type=2, name="AUDIO_TO_CUSTOMER", codec_id="A_PCM/INT/LIT")


def test_millisecond_ticks_place_blocks_as_nanosecond_timestamps_do() -> None:
    # Given blocks with jitter, gaps, repeats and overlaps on 1 ms ticks (a tick is 8 samples)
    rng = random.Random(7)
    blocks, audio = [], []
    tick = 1_782_912_654_536
    for i in range(400):
        track = 1 + i % 2
        frame = pcm(rng.choice((8, 80, 512)), i)
        tick += rng.choice((0, 1, 10, 64, -64, 25, -3, 300))
        blocks.append(Block(track, tick, [frame], 0))
        audio.append(AudioBlock("cu" if track == 1 else "op", tick * MS, [frame]))
    # When aligned from the fragment (ticks) and as AudioBlocks (nanoseconds)
    by_ticks = Aligner()
    got = by_ticks.add_fragment(_fragment((CU_TRACK, OP_TRACK), blocks))
    by_ns = Aligner()
    expected = by_ns.add(audio, FMT)
    # Then the PCM and the counts are the same
    assert (got.cu, got.op) == (expected.cu, expected.op)
    assert {**by_ticks.state(), "fragments": 0} == by_ns.state()  # add() counts no fragment
    assert by_ticks.gaps_filled > 0
    assert by_ticks.duplicates_dropped > 0


def test_big_endian_fragment_is_aligned_swapped() -> None:
    track = Track(number=3, type=2, name="AUDIO_TO_CUSTOMER", codec_id="A_PCM/INT/BIG")
    out = Aligner().add_fragment(
        _fragment((CU_TRACK, track), [Block(3, 0, [b"\x01\x02"], 0), Block(1, 0, [b"\x05\x06"], 0)])
    )
    assert (out.cu, out.op) == (b"\x05\x06", b"\x02\x01")


def test_two_tracks_of_one_name_fill_that_role_in_stream_order() -> None:
    twin = Track(number=5, type=2, name="AUDIO_FROM_CUSTOMER", codec_id="A_PCM/INT/LIT")
    blocks = [Block(1, 0, [pcm(8, 1)], 0), Block(5, 1, [pcm(8, 2)], 0), Block(1, 2, [pcm(8, 3)], 0)]
    out = Aligner().add_fragment(_fragment((CU_TRACK, twin), blocks))
    assert out.cu == pcm(8, 1) + pcm(8, 2) + pcm(8, 3)
    assert out.op == b""
