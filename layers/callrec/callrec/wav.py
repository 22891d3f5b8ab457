"""WAV (RIFF/WAVE, PCM) headers and a file writer that writes its header last.

`wav_header` builds the canonical 44-byte header; the recorder uses it for the part it writes
last, `WavFileWriter` for offline conversion. Deliberately not done here: reading WAV files,
formats other than integer PCM.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from callrec.errors import CallrecError

WAV_HEADER_SIZE = 44
# A conversion writes a fragment's audio at a time (16 KB): a 1 MB buffer halves the cost of
# writing it, in system calls.
WRITE_BUFFER_BYTES = 1 << 20
WAVE_FORMAT_PCM = 1
_MAX_DATA = 0xFFFFFFFF - (WAV_HEADER_SIZE - 8)
# RIFF size, WAVE, fmt chunk (16 bytes: format, channels, rate, byte rate, block align, bits),
# data chunk size.
_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")


class WavError(CallrecError):
    """A WAV that cannot be written (over 4 GiB, or odd parameters)."""


def wav_header(sample_rate: int, channels: int, data_bytes: int, bits: int = 16) -> bytes:
    """The canonical 44-byte PCM WAV header for `data_bytes` of audio."""
    if sample_rate <= 0 or channels <= 0 or bits % 8 or bits <= 0:
        raise WavError(
            f"expected a positive rate, channels and whole bytes per sample, got {sample_rate} Hz, {channels} ch, {bits} bits"
        )
    block_align = channels * bits // 8
    if data_bytes < 0 or data_bytes > _MAX_DATA or data_bytes % block_align:
        raise WavError(
            f"expected 0 to {_MAX_DATA} bytes of whole {block_align}-byte frames, got {data_bytes}"
        )
    return _HEADER.pack(
        b"RIFF",
        data_bytes + WAV_HEADER_SIZE - 8,
        b"WAVE",
        b"fmt ",
        16,
        WAVE_FORMAT_PCM,
        channels,
        sample_rate,
        sample_rate * block_align,
        block_align,
        bits,
        b"data",
        data_bytes,
    )


# Starts a recording may be named after (Unix epoch seconds): 1970-01-01 to 2200-01-01, the
# range the aligner accepts (alignment.MAX_TIMESTAMP_NS); beyond it a name would need a year
# of more than four digits, or datetime cannot represent it at all.
MAX_NAMED_SECONDS = 7_258_118_400


def recording_basename(start_ns: int) -> str:
    """A recording's files are named after its start in UTC: `20261124T054703Z` (whole
    seconds), then `-cu.wav`, `-op.wav`, `-stereo.wav`. WavError outside 1970 to 2200."""
    seconds = start_ns // 1_000_000_000
    if not 0 <= seconds < MAX_NAMED_SECONDS:
        raise WavError(
            f"expected a recording start between 1970 and 2200, found {start_ns} ns since 1970"
        )
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y%m%dT%H%M%SZ")


class WavFileWriter:
    """Writes PCM to a file behind a placeholder header, then the real header on `close()`."""

    def __init__(self, path: Path, sample_rate: int, channels: int, bits: int = 16) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self.channels = channels
        self.bits = bits
        self.data_bytes = 0
        self._file: BinaryIO = path.open("wb", buffering=WRITE_BUFFER_BYTES)
        self._file.write(bytes(WAV_HEADER_SIZE))

    def write(self, pcm: bytes) -> None:
        """Appends PCM frames."""
        if pcm:
            self._file.write(pcm)
            self.data_bytes += len(pcm)

    def flush(self) -> None:
        """Hands what was written to the OS (another process can then read it)."""
        self._file.flush()

    def close(self) -> None:
        """Writes the header for the data written and closes the file."""
        try:
            self._file.seek(0)
            self._file.write(
                wav_header(self.sample_rate, self.channels, self.data_bytes, self.bits)
            )
        finally:
            self._file.close()
