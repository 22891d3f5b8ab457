"""callrec.spectrum: the analysis (levels, channels, time mapping), the image, and bad input."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from callrec import spectrum
from callrec.spectrum import DEFAULT_LAYOUT, BadRecording
from tests.unit.spectrum.wavs import RATE, call_wav, tone_wav, write_call

START = datetime(2026, 11, 24, 5, 47, 3, tzinfo=UTC)


def bin_of(frequency: float, rate: int = RATE) -> int:
    return round(frequency / rate * spectrum.frame_length(rate))


def test_a_half_scale_tone_reads_minus_6_dbfs_in_its_own_channel_only() -> None:
    # Given a stereo WAV with a 1 kHz tone at half scale on the left, silence on the right
    wav = tone_wav([1000.0, None], seconds=2.0, amplitude=0.5)

    # When it is analysed
    result = spectrum.analyse(io.BytesIO(wav))

    # Then the left channel peaks at 1 kHz at -6 dBFS, and the right one is at the floor
    assert result.channels == 2
    assert result.sample_rate == RATE
    assert result.frames == 2 * RATE
    assert result.columns_db.shape == (2, DEFAULT_LAYOUT.plot_width, 129)
    assert int(np.argmax(result.average_db[0])) == bin_of(1000)
    assert result.average_db[0].max() == pytest.approx(-6.02, abs=0.3)
    assert result.average_db[1].max() == pytest.approx(-120.0)


def test_columns_follow_time_whatever_the_length() -> None:
    # Given recordings whose second half alone holds a tone, from half a second to 10 minutes
    for seconds in (0.5, 5.0, 61.0, 600.0):
        t = np.arange(round(seconds * RATE)) / RATE
        samples = np.where(t >= seconds / 2, 0.5 * np.sin(2 * np.pi * 500 * t), 0.0)
        wav = io.BytesIO()
        sf.write(wav, samples, RATE, subtype="PCM_16", format="WAV")
        wav.seek(0)

        # When each is analysed
        level = spectrum.analyse(wav).columns_db[0][:, bin_of(500)]

        # Then the first 45% of the columns are silent and the last 45% hold the tone
        width = len(level)
        assert level[: int(width * 0.45)].max() < -100, seconds
        assert level[int(width * 0.55) :].min() > -15, seconds


@pytest.mark.parametrize(("channels", "labels"), [(1, ("customer",)), (2, None)])
def test_the_image_has_one_panel_per_channel(channels: int, labels: tuple[str, ...] | None) -> None:
    # Given a 5-second call
    wav = io.BytesIO(call_wav(5.0, channels=channels))

    # When it is rendered
    rendered = spectrum.render(wav, contact_id="c-1", start=START, channel_labels=labels)

    # Then the PNG has the layout's size for that many panels, and each panel is a spectrogram
    image = Image.open(io.BytesIO(rendered.png))
    assert image.format == "PNG"
    assert image.size == (rendered.width, rendered.height)
    assert image.size == (DEFAULT_LAYOUT.width, DEFAULT_LAYOUT.height(channels))
    assert rendered.duration_seconds == pytest.approx(5.0)
    pixels = np.asarray(image.convert("RGB"))
    for ch in range(channels):
        top = DEFAULT_LAYOUT.panel_top(ch)
        panel = pixels[top : top + DEFAULT_LAYOUT.panel_height, DEFAULT_LAYOUT.left :][
            :, : DEFAULT_LAYOUT.plot_width
        ]
        colours = {tuple(p) for p in panel.reshape(-1, 3)[::97]}
        assert len(colours) > 20, f"panel {ch} is not a spectrogram"


def test_a_panel_without_sound_is_drawn_in_the_lowest_colour() -> None:
    # Given a stereo WAV whose right channel is digital silence
    wav = io.BytesIO(tone_wav([1000.0, None], seconds=1.0))

    # When it is rendered
    image = np.asarray(Image.open(io.BytesIO(spectrum.render(wav, contact_id="c").png)))

    # Then the second panel is one colour, the bottom of the colour map
    top = DEFAULT_LAYOUT.panel_top(1)
    panel = image[top : top + DEFAULT_LAYOUT.panel_height, DEFAULT_LAYOUT.left :][
        :, : DEFAULT_LAYOUT.plot_width, :3
    ]
    assert {tuple(p) for p in panel.reshape(-1, 3)} == {(0, 0, 4)}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "expected a WAV file"),
        (b"hello world, this is not audio" * 4, "expected a WAV file"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "expected a WAV file"),
        (tone_wav([1000.0], seconds=0.0), "found an empty WAV"),
    ],
    ids=["zero-bytes", "text", "header-cut-short", "zero-samples"],
)
def test_bad_input_raises_bad_recording_with_what_was_found(data: bytes, message: str) -> None:
    with pytest.raises(BadRecording, match=message):
        spectrum.render(io.BytesIO(data), contact_id="c")


def test_another_audio_format_is_not_taken_for_a_wav() -> None:
    flac = io.BytesIO()
    sf.write(flac, np.zeros(800), RATE, format="FLAC")
    flac.seek(0)

    with pytest.raises(BadRecording, match="expected a WAV file, found FLAC"):
        spectrum.analyse(flac)


def test_a_wav_cut_short_renders_the_samples_it_has() -> None:
    # Given a WAV whose data chunk was cut in the middle (libsndfile trusts the file's length)
    wav = tone_wav([1000.0], seconds=2.0)

    # When it is analysed, Then the duration is what remains
    result = spectrum.analyse(io.BytesIO(wav[: len(wav) // 2]))
    assert result.duration_seconds == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize(
    ("seconds", "step", "hours", "text"),
    [
        (0, 1, False, "00:00"),
        (75, 15, False, "01:15"),
        (2.5, 0.5, False, "00:02.5"),
        (3599, 60, False, "59:59"),
        (3600, 1800, True, "1:00:00"),
        (14400, 1800, True, "4:00:00"),
    ],
)
def test_time_labels(seconds: float, step: float, hours: bool, text: str) -> None:
    assert spectrum.format_time(seconds, step=step, hours=hours) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5.04, "5.0 s"), (754.2, "12:34 (754.2 s)"), (14400, "4:00:00 (14,400.0 s)")],
)
def test_durations_in_the_title(seconds: float, text: str) -> None:
    assert spectrum.format_duration(seconds) == text


@pytest.mark.parametrize(
    ("span", "step"), [(5, 0.5), (60, 10), (600, 60), (3600, 600), (14400, 1800), (86400, 10800)]
)
def test_ticks_are_few_and_round(span: float, step: float) -> None:
    steps = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
    assert spectrum.nice_step(span, 10, steps) == step


PEAK_SCRIPT = """
import sys, tracemalloc
from callrec import spectrum
tracemalloc.start()
spectrum.render(sys.argv[1], contact_id="c")
print(tracemalloc.get_traced_memory()[1])
"""


def peak_traced_bytes(path: Path) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return int(out.stdout.strip())


def test_memory_does_not_grow_with_the_recording(tmp_path: Path) -> None:
    # Given a 1-minute and a 10-minute stereo call (19 MB of PCM); from about 33 s on the hop and
    # the block are at their largest (bench_spectrum shows 1 and 4 hours peak the same)
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    write_call(short, 60.0)
    write_call(long, 600.0)

    # When each is rendered in a fresh interpreter
    short_peak, long_peak = peak_traced_bytes(short), peak_traced_bytes(long)

    # Then the peak of Python-visible memory (numpy's arrays included) is about the same
    assert long_peak < 1.15 * short_peak, (short_peak, long_peak)
    # and less than the recording decoded whole to float32 would take
    assert long_peak < 600 * 8000 * 2 * 4
