"""Synthetic call recordings for spectrum tests and the benchmark, written in blocks."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 8000


def call_audio(
    start: int, count: int, channels: int, rate: int = RATE, party: int = 0
) -> np.ndarray:
    """Samples [start, start + count) of a synthetic call: the parties take turns every 3 s, each a
    harmonic voice with a wandering pitch over faint noise; the agent also has a 1 kHz beep.
    A mono file carries `party` (0: customer, 1: agent); a stereo one both."""
    t = (start + np.arange(count)) / rate
    phase = 2 * np.pi * (140 * t - 40 / (2 * np.pi * 0.3) * np.cos(2 * np.pi * 0.3 * t))
    voice = sum(np.sin(h * phase) / h for h in range(1, 16)) * 0.15
    turn = np.floor(t / 3) % 2
    rng = np.random.default_rng(start)
    out = rng.normal(0, 0.003, (count, channels))
    agent = voice * (turn == 1) * 0.7 + 0.05 * np.sin(2 * np.pi * 1000 * t) * (t % 20 < 1)
    customer = voice * (turn == 0)
    if channels > 1:
        out[:, 0] += customer
        out[:, 1] += agent
    else:
        out[:, 0] += agent if party else customer
    return out.astype(np.float32)


def write_call(
    target: str | Path | io.BytesIO,
    seconds: float,
    channels: int = 2,
    rate: int = RATE,
    party: int = 0,
) -> None:
    """Write a 16-bit PCM WAV call of `seconds`, a minute at a time (memory stays small)."""
    total = round(seconds * rate)
    with sf.SoundFile(
        target, "w", samplerate=rate, channels=channels, subtype="PCM_16", format="WAV"
    ) as wav:
        for start in range(0, total, rate * 60):
            wav.write(call_audio(start, min(rate * 60, total - start), channels, rate, party))


def call_wav(seconds: float, channels: int = 2, rate: int = RATE, party: int = 0) -> bytes:
    """A synthetic call as WAV bytes."""
    out = io.BytesIO()
    write_call(out, seconds, channels, rate, party)
    return out.getvalue()


def tone_wav(
    frequencies: list[float | None], seconds: float, amplitude: float = 0.5, rate: int = RATE
) -> bytes:
    """One sine per channel (None: digital silence), as 16-bit WAV bytes."""
    t = np.arange(round(seconds * rate)) / rate
    columns = [
        np.zeros_like(t) if f is None else amplitude * np.sin(2 * np.pi * f * t)
        for f in frequencies
    ]
    out = io.BytesIO()
    sf.write(out, np.stack(columns, axis=1), rate, subtype="PCM_16", format="WAV")
    return out.getvalue()
