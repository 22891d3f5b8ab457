"""Regression tests for what a mutation fuzzer found (issue 15): implausible values read from a
stream are refused with callrec's own errors, never reach arithmetic, allocations or file names;
odd-length blocks never break a WAV; a failed conversion leaves only valid WAVs."""

from __future__ import annotations

import io
import math
import time
import wave
from dataclasses import replace
from pathlib import Path

import pytest

from callrec import cli
from callrec.alignment import MAX_GAP_SECONDS, Aligner, AlignmentError
from callrec.convert import ConversionFailed, convert
from callrec.fragments import (
    ALLOWED_SAMPLE_RATES,
    CODEC_PCM_LE,
    ErrorChunk,
    Fragment,
    FragmentReader,
    track_format,
)
from callrec.mkv import MAX_TIMECODE_SCALE, MkvError, MkvReader, Track
from callrec.wav import WavError, recording_basename
from callrec_local import producer as p

START_MS = 1_782_912_654_536
TIMECODE = b"\xe7\x88"  # Cluster Timecode, 8-byte value (as the producer writes it)
TIMECODE_SCALE = b"\x2a\xd7\xb1\x88"


def call(seconds: float = 1.0, **options: object) -> p.ConnectCall:
    return p.ConnectCall(
        "c-1",
        "i-1",
        START_MS,
        *p.conversation(seconds, 1),
        block_samples=160,
        blocks_per_fragment=5,
        **options,  # type: ignore[arg-type]
    )


def capture(seconds: float = 1.0) -> bytes:
    return p.encode_capture(list(call(seconds).fragments()))


def patch_value(data: bytes, marker: bytes, value: int, occurrence: int = 0) -> bytes:
    """`data` with the 8-byte value after the `occurrence`-th `marker` set to `value`."""
    at = -1
    for _ in range(occurrence + 1):
        at = data.index(marker, at + 1)
    start = at + len(marker)
    return data[:start] + value.to_bytes(8) + data[start + 8 :]


def fragments(data: bytes) -> list[Fragment]:
    reader = FragmentReader()
    events = [*reader.feed(data), *reader.close()]
    return [e for e in events if not isinstance(e, ErrorChunk)]


def wav_files_are_valid(folder: Path) -> list[str]:
    names = []
    for path in sorted(folder.glob("*.wav")):
        with wave.open(str(path), "rb") as w:
            assert w.getnframes() * w.getnchannels() * 2 == path.stat().st_size - 44
        names.append(path.name)
    return names


def pcm_track(rate: float) -> Track:
    return Track(
        number=1,
        type=2,
        name="AUDIO_FROM_CUSTOMER",
        codec_id=CODEC_PCM_LE,
        sampling_frequency=rate,
        offset=123,
    )


@pytest.mark.parametrize("rate", [math.inf, -math.inf, math.nan, 4294967296.0, 7.0, 0.0, 8000.5])
def test_an_implausible_sampling_frequency_is_refused_as_mkverror(rate: float) -> None:
    # (inf and NaN raised OverflowError / ValueError in int(rate))
    with pytest.raises(MkvError, match=r"SamplingFrequency declares .* Hz; expected one of 8000"):
        track_format(pcm_track(rate), None)


def test_the_allowed_rates_are_accepted() -> None:
    for rate in ALLOWED_SAMPLE_RATES:
        assert track_format(pcm_track(float(rate)), None)[0].sample_rate == rate


@pytest.mark.parametrize("rate", ["inf", "nan", "-8000", "0", "8e3", ""])
def test_an_l16_mime_type_without_a_valid_rate_says_so(rate: str) -> None:
    track = replace(pcm_track(8000.0), codec_id="A_AAC")
    with pytest.raises(MkvError, match="declares audio/L16 without a valid rate"):
        track_format(track, f"audio/L16;rate={rate};channels=1;")


def test_a_mime_type_rate_of_2_to_the_32_is_refused_not_allocated(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given fragments whose MimeType declares rate=4294967296 (MemoryError in _place_role)
    monkeypatch.setattr(p, "MIME_TYPE", "audio/L16;rate=4294967296;channels=1;")
    data = capture()
    aligner = Aligner()
    # Then aligning the first fragment is refused, naming the rate
    with pytest.raises(MkvError, match=r"MimeType .*declares 4294967296 Hz"):
        aligner.add_fragment(fragments(data)[0])
    assert aligner.state() == Aligner().state()
    # and convert leaves no file
    with pytest.raises(MkvError):
        convert(io.BytesIO(data), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_cluster_timecode_of_2_to_the_64_minus_1_is_refused(tmp_path: Path) -> None:
    # Given a first fragment whose Cluster Timecode is 2**64-1 ms (ValueError "year 584556019")
    data = patch_value(capture(), TIMECODE, 2**64 - 1)
    # Then the aligner refuses it with the reason, unchanged
    aligner = Aligner()
    with pytest.raises(AlignmentError, match="between 1970 and 2200"):
        aligner.add_fragment(fragments(data)[0])
    assert aligner.start_ns is None
    # and convert says so without leaving files
    with pytest.raises(AlignmentError, match=r"fragment \d+ \(at byte 0\)"):
        convert(io.BytesIO(data), tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("start_ns", [-1, 2**64 * 10**6, 7_258_118_400 * 10**9])
def test_recording_basename_refuses_times_outside_1970_to_2200(start_ns: int) -> None:
    with pytest.raises(WavError, match="between 1970 and 2200"):
        recording_basename(start_ns)


def test_recording_basename_edges() -> None:
    assert recording_basename(0) == "19700101T000000Z"
    assert recording_basename(7_258_118_399 * 10**9) == "21991231T235959Z"


@pytest.mark.parametrize("scale", [0, MAX_TIMECODE_SCALE + 1, 2**64 - 1])
def test_a_timecode_scale_out_of_bounds_is_refused(scale: int) -> None:
    data = patch_value(capture(), TIMECODE_SCALE, scale)
    with pytest.raises(MkvError, match="expected a TimecodeScale of 1 to 1000000000 ns"):
        MkvReader().feed(data)


def test_a_timecode_scale_of_1e9_with_a_far_block_ends_quickly_with_a_reason(
    tmp_path: Path,
) -> None:
    # Given fragments with a TimecodeScale of 10**9 (a tick is a second) and a second Cluster
    # Timecode far ahead (this ran past a 5-second limit, filling silence)
    data = capture(2.0)
    for i in range(data.count(TIMECODE_SCALE)):
        data = patch_value(data, TIMECODE_SCALE, MAX_TIMECODE_SCALE, i)
    data = patch_value(data, TIMECODE, START_MS // 1000, 0)
    data = patch_value(data, TIMECODE, START_MS // 1000 + 10 * MAX_GAP_SECONDS, 1)
    began = time.monotonic()
    # Then convert stops at that fragment, keeping what came before, in valid WAVs
    with pytest.raises(ConversionFailed, match=r"within 600 s \(MAX_GAP_SECONDS\)") as info:
        convert(io.BytesIO(data), tmp_path)
    assert time.monotonic() - began < 5
    assert info.value.result.fragments == 1
    assert len(wav_files_are_valid(tmp_path)) == 3


def test_a_refused_fragment_leaves_the_aligner_unchanged() -> None:
    # Given an aligner after a good fragment, and a next one whose agent blocks jump an hour
    good, bad = fragments(capture())[:2]
    aligner = Aligner()
    aligner.add_fragment(good)
    before = aligner.state()
    late = [
        replace(b, timecode=b.timecode + 3_600_000) if i % 2 else b
        for i, b in enumerate(bad.blocks)
    ]
    # When it is refused (the customer's blocks were placed first), the state is as before
    with pytest.raises(AlignmentError, match="a gap that long is not filled"):
        aligner.add_fragment(replace(bad, blocks=late))
    assert aligner.state() == before
    # and the good next fragment is placed as if the bad one never came
    reference = Aligner()
    reference.add_fragment(good)
    assert aligner.add_fragment(bad) == reference.add_fragment(bad)


def odd_capture() -> tuple[bytes, int]:
    """A call whose every third block lost its last byte."""
    specs = list(call(1.0).fragments())
    odd = 0
    cut = []
    for spec in specs:
        blocks = []
        for block in spec.blocks:
            if len(blocks) % 3 == 1:
                block = replace(block, pcm=block.pcm[:-1])  # noqa: PLW2901
                odd += 1
            blocks.append(block)
        cut.append(replace(spec, blocks=tuple(blocks)))
    return p.encode_capture(cut), odd


def test_odd_length_blocks_drop_the_odd_byte_and_count_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given blocks of an odd byte count (ValueError in interleave, a -cu.wav without header)
    data, odd = odd_capture()
    path = tmp_path / "odd.mkv"
    path.write_bytes(data)
    # When converting, then the command succeeds and says how many bytes it dropped
    assert cli.main(["convert", str(path), "--out", str(tmp_path / "out")]) == 0
    assert f", {odd} odd bytes dropped" in capsys.readouterr().out
    # and all three files are valid WAVs
    assert len(wav_files_are_valid(tmp_path / "out")) == 3


def test_odd_bytes_dropped_survive_the_aligner_state() -> None:
    data, odd = odd_capture()
    aligner = Aligner()
    for fragment in fragments(data):
        aligner.add_fragment(fragment)
    assert aligner.odd_bytes_dropped == odd
    assert Aligner.from_state(aligner.state()).odd_bytes_dropped == odd
    # A state saved before the counter existed still loads
    old = {k: v for k, v in aligner.state().items() if k != "odd_bytes_dropped"}
    assert Aligner.from_state(old).odd_bytes_dropped == 0


def test_a_conversion_failing_midway_keeps_valid_wavs_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given good fragments, then one whose Cluster starts with a byte that is no element ID
    good = capture(1.0)
    third = [i for i in range(len(good)) if good.startswith(b"\x1a\x45\xdf\xa3", i)][2]
    bad_at = good.index(b"\x1f\x43\xb6\x75", third)
    path = tmp_path / "bad.mkv"
    path.write_bytes(good[:bad_at] + b"\x00" + good[bad_at + 1 :])
    # When converting, then the command fails, naming the byte and the files kept
    assert cli.main(["convert", str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"(at byte {bad_at})" in err
    assert "the WAVs hold the 0.200 s before it (2 fragments)" in err
    # and the files are valid WAVs of the two fragments before it
    assert len(wav_files_are_valid(tmp_path / "out")) == 3


def test_a_header_that_cannot_be_written_leaves_no_wav(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a writer whose header fails for the agent's file (as an odd byte count did)
    from callrec import wav  # noqa: PLC0415

    real = wav.wav_header

    def header(rate: int, channels: int, data_bytes: int, bits: int = 16) -> bytes:
        if data_bytes and channels == 1 and header.calls == 1:
            raise WavError("expected whole frames")
        header.calls += data_bytes > 0 and channels == 1
        return real(rate, channels, data_bytes, bits)

    header.calls = 0  # type: ignore[attr-defined]
    monkeypatch.setattr(wav, "wav_header", header)
    with pytest.raises(WavError):
        convert(io.BytesIO(capture()), tmp_path)
    # Then nothing that looks like a WAV is left
    assert list(tmp_path.iterdir()) == []
