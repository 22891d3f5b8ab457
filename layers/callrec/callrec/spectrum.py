"""WAV recording -> spectrogram PNG, in memory that does not grow with the recording's length.

The WAV is read in blocks; each block's short-time power spectra are summed straight into a
fixed number of image columns, so a 5-second and a 4-hour call hold the same few megabytes. The
picture has one panel per channel sharing the time axis (customer = left, agent = right for the
stereo file), the long-term average spectrum of each channel beside its panel, a dB colour bar,
and a title with the contact id, start time (UTC) and duration.

Drawing uses Pillow rather than matplotlib: the layer is about 70 MB smaller and the cold import
is several times faster (figures in the commit that chose it); a fixed layout needs no more than
rectangles, lines and text.

This module knows nothing of S3 or DynamoDB: it reads a path or a seekable binary file.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt
import soundfile as sf
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, ImageDraw, ImageFont

from callrec.errors import CallrecError

type Source = str | os.PathLike[str] | BinaryIO | io.RawIOBase
type FloatArray = npt.NDArray[np.float64]

# Formats libsndfile reports for RIFF WAVE files (WAVEX: WAVE_FORMAT_EXTENSIBLE; RF64: > 4 GiB).
WAV_FORMATS: Final = frozenset({"WAV", "WAVEX", "RF64"})

# Channel names by recording kind; the stereo file carries the customer left, the agent right.
CHANNEL_LABELS: Final[dict[str, tuple[str, ...]]] = {
    "cu": ("customer",),
    "op": ("agent",),
    "stereo": ("customer (left channel)", "agent (right channel)"),
}

# Short-time analysis: frames of about 32 ms (256 samples at 8 kHz, 31 Hz per bin), Hann window.
FRAME_SECONDS: Final = 0.032
# At most this many analysis frames are held at once, whatever the hop: this bounds memory.
FRAMES_PER_BLOCK: Final = 2048
# Power floor (-120 dBFS) so digital silence has a finite level.
POWER_FLOOR: Final = 1e-12
# Colour scale: DYNAMIC_RANGE_DB below a top rounded up from the loudest column.
DYNAMIC_RANGE_DB: Final = 80.0

# Perceptually uniform "inferno" colour map (matplotlib's, CC0): 33 anchors at index i * 8, and 255.
_INFERNO_ANCHORS: Final = (
    0x000004, 0x040312, 0x0B0724, 0x150B37, 0x210C4A, 0x2F0A5B, 0x3D0965, 0x4A0C6B, 0x57106E,
    0x64156E, 0x71196E, 0x7D1E6D, 0x8A226A, 0x972766, 0xA32C61, 0xB0315B, 0xBC3754, 0xC73E4C,
    0xD24644, 0xDB503B, 0xE45A31, 0xEB6628, 0xF1731D, 0xF68013, 0xF98E09, 0xFB9D07, 0xFCAC11,
    0xFBBC21, 0xF9CB35, 0xF5DB4C, 0xF2EA69, 0xF3F68A, 0xFCFFA4,
)  # fmt: skip


class BadRecording(CallrecError):
    """The object is not a readable, non-empty WAV: a permanent error, retrying cannot help."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Pixel geometry of the image. The plot width is also the number of analysis columns."""

    plot_width: int = 1100
    panel_height: int = 260
    left: int = 78
    title_height: int = 64
    panel_label_height: int = 24
    panel_gap: int = 24
    bottom: int = 50
    ltas_gap: int = 46
    ltas_width: int = 190
    colorbar_gap: int = 34
    colorbar_width: int = 18
    right: int = 66

    @property
    def width(self) -> int:
        """Width of the whole image."""
        return (
            self.left
            + self.plot_width
            + self.ltas_gap
            + self.ltas_width
            + self.colorbar_gap
            + self.colorbar_width
            + self.right
        )

    def height(self, channels: int) -> int:
        """Height of the whole image for this many channel panels."""
        panel = self.panel_label_height + self.panel_height
        return self.title_height + channels * panel + (channels - 1) * self.panel_gap + self.bottom

    def panel_top(self, channel: int) -> int:
        """y of the top edge of a channel's plot area."""
        panel = self.panel_label_height + self.panel_height + self.panel_gap
        return self.title_height + channel * panel + self.panel_label_height


DEFAULT_LAYOUT: Final = Layout()


@dataclass(frozen=True, slots=True)
class Spectrum:
    """A recording reduced to a fixed-size time-frequency grid, plus its long-term average."""

    sample_rate: int
    frames: int
    channels: int
    subtype: str
    # Mean power per (channel, column, frequency bin), in dBFS.
    columns_db: FloatArray
    # Long-term average spectrum per (channel, frequency bin), in dBFS.
    average_db: FloatArray

    @property
    def duration_seconds(self) -> float:
        """Length of the recording."""
        return self.frames / self.sample_rate

    @property
    def nyquist(self) -> float:
        """Highest frequency represented, in Hz."""
        return self.sample_rate / 2


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered spectrogram: the PNG and what was learnt from the WAV on the way."""

    png: bytes
    width: int
    height: int
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration_seconds(self) -> float:
        """Length of the recording."""
        return self.frames / self.sample_rate


def frame_length(sample_rate: int) -> int:
    """FFT length for a sample rate: the power of two nearest FRAME_SECONDS (256 at 8 kHz)."""
    return 1 << max(4, round(math.log2(sample_rate * FRAME_SECONDS)))


def hop_length(frames: int, nfft: int, columns: int) -> int:
    """Hop between analysis frames: about one frame per column for short recordings (so a
    5-second call still fills the width), at most half a frame (Hann windows at 50% overlap
    weigh every sample equally) for long ones."""
    return max(1, min(nfft // 2, frames // columns))


def analyse(source: Source, *, columns: int = DEFAULT_LAYOUT.plot_width) -> Spectrum:
    """Read a WAV in blocks and reduce it to `columns` averaged power spectra per channel.

    Memory is bounded by FRAMES_PER_BLOCK frames and the output grid, not by the recording.
    Raises BadRecording for anything that is not a WAV with at least one sample.
    """
    try:
        wav = sf.SoundFile(source)
    except sf.LibsndfileError as exc:
        raise BadRecording(f"expected a WAV file, libsndfile says: {exc.error_string}") from None
    except (RuntimeError, TypeError) as exc:
        raise BadRecording(f"expected a WAV file, could not open it: {exc}") from None
    with wav:
        if wav.format not in WAV_FORMATS:
            raise BadRecording(f"expected a WAV file, found {wav.format} ({wav.subtype})")
        if wav.frames <= 0:
            raise BadRecording(
                f"expected at least one sample, found an empty WAV "
                f"({wav.channels} channel(s), {wav.samplerate} Hz)"
            )
        return _reduce(wav, columns)


def _reduce(wav: sf.SoundFile, columns: int) -> Spectrum:
    sample_rate, channels, frames = int(wav.samplerate), int(wav.channels), int(wav.frames)
    nfft = frame_length(sample_rate)
    hop = hop_length(frames, nfft, columns)
    bins = nfft // 2 + 1
    window = np.hanning(nfft + 1)[:-1].astype(np.float32)  # periodic Hann
    # A full-scale sine peaks at 0 dBFS: |X| = A * sum(w) / 2.
    scale = np.float32(4.0 / float(window.sum()) ** 2)

    sums = np.zeros((channels, columns, bins), dtype=np.float64)
    counts = np.zeros(columns, dtype=np.int64)
    total = np.zeros((channels, bins), dtype=np.float64)
    # Frame i is centred on sample i * hop; the signal is padded with silence by half a frame
    # at both ends so the first and last samples weigh as much as the others.
    half = nfft // 2
    analysed = 0  # analysis frames summed so far
    carry = np.zeros((half, channels), dtype=np.float32)
    carry_start = -half  # sample index of carry[0]
    read = 0
    block = FRAMES_PER_BLOCK * hop
    while True:
        chunk = wav.read(block, dtype="float32", always_2d=True)
        read += len(chunk)
        eof = len(chunk) < block
        if eof and read < frames:
            raise BadRecording(
                f"expected {frames} samples per channel, the data ended after {read}"
            )
        if eof:
            # The frames centred before the end are completed with silence.
            chunk = np.concatenate([chunk, np.zeros((nfft, channels), dtype=np.float32)])
        buf = np.concatenate([carry, chunk]) if len(carry) else chunk
        last_centre = frames - 1 if eof else carry_start + len(buf) - nfft + half
        count = max(0, last_centre // hop - analysed + 1)
        if count:
            offset = analysed * hop - half - carry_start
            centres = (analysed + np.arange(count, dtype=np.int64)) * hop
            cols = centres * columns // frames
            edges = np.flatnonzero(np.diff(cols)) + 1
            seg_starts = np.concatenate([[0], edges])
            seg_cols = cols[seg_starts]
            counts[seg_cols] += np.diff(np.concatenate([seg_starts, [count]]))
            for ch in range(channels):
                samples = buf[offset : offset + (count - 1) * hop + nfft, ch]
                windows = sliding_window_view(samples, nfft)[::hop] * window
                spectra = np.fft.rfft(windows, axis=1)
                power = (spectra.real**2 + spectra.imag**2) * scale
                sums[ch, seg_cols] += np.add.reduceat(power, seg_starts, axis=0, dtype=np.float64)
                total[ch] += power.sum(axis=0, dtype=np.float64)
            analysed += count
        if eof:
            break
        keep_from = analysed * hop - half - carry_start
        carry = buf[keep_from:]
        carry_start += keep_from

    # Recordings shorter than one frame per column leave gaps: repeat the column before.
    filled = np.maximum.accumulate(np.where(counts > 0, np.arange(columns), 0))
    mean = sums[:, filled] / np.maximum(counts[filled], 1)[None, :, None]
    return Spectrum(
        sample_rate=sample_rate,
        frames=frames,
        channels=channels,
        subtype=str(wav.subtype),
        columns_db=10 * np.log10(np.maximum(mean, POWER_FLOOR)),
        average_db=10 * np.log10(np.maximum(total / max(analysed, 1), POWER_FLOOR)),
    )


def render(
    source: Source,
    *,
    contact_id: str,
    start: datetime | None = None,
    channel_labels: Sequence[str] | None = None,
    layout: Layout = DEFAULT_LAYOUT,
) -> Rendered:
    """Render a WAV's spectrogram as PNG bytes.

    `channel_labels` names the panels (see CHANNEL_LABELS); by default they are numbered.
    Raises BadRecording for anything that is not a WAV with at least one sample.
    """
    spectrum = analyse(source, columns=layout.plot_width)
    image = draw(
        spectrum, contact_id=contact_id, start=start, channel_labels=channel_labels, layout=layout
    )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False, compress_level=6)
    return Rendered(
        png=out.getvalue(),
        width=image.width,
        height=image.height,
        sample_rate=spectrum.sample_rate,
        channels=spectrum.channels,
        frames=spectrum.frames,
    )


# ------------------------------------------------------------------ drawing

_BACKGROUND: Final = (255, 255, 255)
_INK: Final = (34, 34, 34)
_GRID: Final = (120, 120, 120)
_LTAS_COLOURS: Final = ((31, 119, 180), (214, 39, 40))


def _colour_table() -> npt.NDArray[np.uint8]:
    anchors = np.array(
        [[(c >> 16) & 0xFF, (c >> 8) & 0xFF, c & 0xFF] for c in _INFERNO_ANCHORS], dtype=float
    )
    positions = np.minimum(np.arange(len(anchors)) * 8, 255)
    table = [np.interp(np.arange(256), positions, anchors[:, i]) for i in range(3)]
    return np.rint(np.stack(table, axis=1)).astype(np.uint8)


_COLOURS: Final = _colour_table()


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def format_time(seconds: float, *, step: float = 1.0, hours: bool = False) -> str:
    """Time axis label: mm:ss (h:mm:ss for recordings of an hour or more; tenths for sub-second
    steps)."""
    tenths = step < 1
    total = round(seconds * 10) if tenths else round(seconds)
    whole, frac = divmod(total, 10) if tenths else (total, 0)
    m, s = divmod(whole, 60)
    text = f"{m // 60}:{m % 60:02d}:{s:02d}" if hours else f"{m:02d}:{s:02d}"
    return f"{text}.{frac}" if tenths else text


def format_duration(seconds: float) -> str:
    """A duration for the title, e.g. '5.2 s', '12:34 (754.2 s)', '4:00:00 (14,400.0 s)'."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(round(seconds), 60)
    clock = f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"
    return f"{clock} ({seconds:,.1f} s)"


def nice_step(span: float, target: int, steps: Sequence[float]) -> float:
    """The smallest step from `steps` that puts at most `target` ticks on `span`."""
    for step in steps:
        if span / step <= target:
            return step
    return steps[-1] * math.ceil(span / target / steps[-1])


_TIME_STEPS: Final = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
_FREQ_STEPS: Final = (100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000)


def _ticks(span: float, step: float) -> list[float]:
    return [i * step for i in range(int(span / step + 1e-9) + 1)]


def _text(
    canvas: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    *,
    size: int = 13,
    anchor: str = "la",
) -> None:
    canvas.text(xy, text, fill=_INK, font=_font(size), anchor=anchor)


def _vertical_text(image: Image.Image, centre: tuple[int, int], text: str, size: int = 13) -> None:
    font = _font(size)
    left, top, right, bottom = (int(v) for v in font.getbbox(text))
    label = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(label).text((1 - left, 1 - top), text, fill=255, font=font)
    label = label.rotate(90, expand=True)
    x, y = centre[0] - label.width // 2, centre[1] - label.height // 2
    image.paste(Image.new("RGB", label.size, _INK), (x, y), label)


def draw(
    spectrum: Spectrum,
    *,
    contact_id: str,
    start: datetime | None = None,
    channel_labels: Sequence[str] | None = None,
    layout: Layout = DEFAULT_LAYOUT,
) -> Image.Image:
    """Draw the spectrogram panels, average spectra, colour bar, axes and title."""
    channels = spectrum.channels
    labels = list(channel_labels or ())
    labels += [f"channel {i + 1}" for i in range(len(labels), channels)]
    image = Image.new("RGB", (layout.width, layout.height(channels)), _BACKGROUND)
    canvas = ImageDraw.Draw(image)

    top_db = float(np.max(spectrum.columns_db))
    vmax = min(0.0, max(-40.0, math.ceil(top_db / 10) * 10))
    vmin = vmax - DYNAMIC_RANGE_DB

    _draw_title(canvas, spectrum, contact_id, start, layout)
    for ch in range(channels):
        _draw_panel(
            image, canvas, spectrum, ch, label=labels[ch], db_range=(vmin, vmax), layout=layout
        )
    _draw_time_axis(canvas, spectrum, layout, channels)
    _draw_colorbar(image, canvas, (vmin, vmax), layout, channels)
    return image


def _draw_title(
    canvas: ImageDraw.ImageDraw,
    spectrum: Spectrum,
    contact_id: str,
    start: datetime | None,
    layout: Layout,
) -> None:
    _text(canvas, (layout.left, 10), f"Contact {contact_id}", size=20)
    started = f"{start:%Y-%m-%d %H:%M:%S} UTC" if start is not None else "unknown"
    kind = {1: "mono", 2: "stereo"}.get(spectrum.channels, f"{spectrum.channels} channels")
    bits = spectrum.subtype.replace("PCM_", "") + "-bit" if "PCM_" in spectrum.subtype else ""
    details = (
        f"start {started}   ·   duration {format_duration(spectrum.duration_seconds)}"
        f"   ·   {kind}, {spectrum.sample_rate} Hz {bits}"
    )
    _text(canvas, (layout.left, 38), details.rstrip(), size=14)


def _draw_panel(
    image: Image.Image,
    canvas: ImageDraw.ImageDraw,
    spectrum: Spectrum,
    channel: int,
    *,
    label: str,
    db_range: tuple[float, float],
    layout: Layout,
) -> None:
    vmin, vmax = db_range
    x0, y0 = layout.left, layout.panel_top(channel)
    w, h = layout.plot_width, layout.panel_height

    # Spectrogram: rows are frequency bins (0 Hz at the bottom), columns are time.
    grid = spectrum.columns_db[channel].T[::-1]
    index = np.clip((grid - vmin) / (vmax - vmin) * 255, 0, 255).astype(np.uint8)
    picture = Image.fromarray(_COLOURS[index], mode="RGB").resize((w, h), Image.Resampling.NEAREST)
    image.paste(picture, (x0, y0))
    canvas.rectangle((x0 - 1, y0 - 1, x0 + w, y0 + h), outline=_INK)
    _text(canvas, (x0, y0 - 5), label, size=15, anchor="ld")

    # Frequency axis, shared with the average spectrum beside it.
    nyquist = spectrum.nyquist
    step = nice_step(nyquist, 6, _FREQ_STEPS)
    lx0 = x0 + w + layout.ltas_gap
    lw = layout.ltas_width
    for f in _ticks(nyquist, step):
        y = y0 + h - round(f / nyquist * h)
        canvas.line((x0 - 5, y, x0 - 1, y), fill=_INK)
        canvas.line((lx0 - 5, y, lx0 - 1, y), fill=_INK)
        canvas.line((lx0, y, lx0 + lw, y), fill=(225, 225, 225))
        _text(canvas, (x0 - 8, y), f"{f:,.0f}", size=12, anchor="rm")
    _vertical_text(image, (x0 - 62, y0 + h // 2), "frequency (Hz)")

    # Long-term average spectrum: level across, frequency up, on the colour bar's dB scale.
    for db in range(int(vmin), int(vmax) + 1, 20):
        x = lx0 + round((db - vmin) / (vmax - vmin) * lw)
        canvas.line((x, y0, x, y0 + h), fill=(225, 225, 225))
        canvas.line((x, y0 + h, x, y0 + h + 4), fill=_INK)
        _text(canvas, (x, y0 + h + 6), f"{db}", size=11, anchor="ma")
    average = spectrum.average_db[channel]
    freqs = np.arange(len(average)) / (len(average) - 1) * h
    level = np.clip((average - vmin) / (vmax - vmin), 0, 1) * lw
    points = [(lx0 + float(x), y0 + h - float(y)) for x, y in zip(level, freqs, strict=True)]
    canvas.line(points, fill=_LTAS_COLOURS[channel % len(_LTAS_COLOURS)], width=2)
    canvas.rectangle((lx0 - 1, y0 - 1, lx0 + lw, y0 + h), outline=_INK)
    _text(canvas, (lx0, y0 - 5), "average spectrum (dBFS)", size=13, anchor="ld")


def _draw_time_axis(
    canvas: ImageDraw.ImageDraw, spectrum: Spectrum, layout: Layout, channels: int
) -> None:
    duration = spectrum.duration_seconds
    step = nice_step(duration, 10, _TIME_STEPS)
    hours = duration >= 3600
    x0, w = layout.left, layout.plot_width
    bottom = layout.panel_top(channels - 1) + layout.panel_height
    for t in _ticks(duration, step):
        x = x0 + round(t / duration * w)
        for ch in range(channels):
            y = layout.panel_top(ch) + layout.panel_height
            canvas.line((x, y, x, y + 4), fill=_INK)
        _text(canvas, (x, bottom + 6), format_time(t, step=step, hours=hours), size=12, anchor="ma")
    unit = "time (h:mm:ss)" if hours else "time (mm:ss)"
    _text(canvas, (x0 + w // 2, bottom + 26), unit, size=13, anchor="ma")


def _draw_colorbar(
    image: Image.Image,
    canvas: ImageDraw.ImageDraw,
    db_range: tuple[float, float],
    layout: Layout,
    channels: int,
) -> None:
    vmin, vmax = db_range
    x0 = layout.left + layout.plot_width + layout.ltas_gap + layout.ltas_width
    x0 += layout.colorbar_gap
    y0 = layout.panel_top(0)
    y1 = layout.panel_top(channels - 1) + layout.panel_height
    h = y1 - y0
    ramp = _COLOURS[np.linspace(255, 0, h).round().astype(np.uint8)]
    bar = Image.fromarray(np.repeat(ramp[:, None, :], layout.colorbar_width, axis=1), mode="RGB")
    image.paste(bar, (x0, y0))
    canvas.rectangle((x0 - 1, y0 - 1, x0 + layout.colorbar_width, y1), outline=_INK)
    for db in range(int(vmin), int(vmax) + 1, 10):
        y = y1 - round((db - vmin) / (vmax - vmin) * h)
        canvas.line((x0 + layout.colorbar_width, y, x0 + layout.colorbar_width + 4, y), fill=_INK)
        _text(canvas, (x0 + layout.colorbar_width + 7, y), f"{db}", size=12, anchor="lm")
    _text(canvas, (x0 + layout.colorbar_width // 2, y0 - 5), "dBFS", size=13, anchor="md")
