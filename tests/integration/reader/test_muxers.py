"""Matroska written by real muxers (ffmpeg, mkvmerge): `callrec convert` must match ffmpeg's own
demux sample for sample. mkvmerge laces PCM frames, uses BlockGroups on request and a TimecodeScale
that is not 1 ms; ffmpeg's `-live 1` output has unknown sizes like a GetMedia stream."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from callrec.convert import convert
from callrec_local import producer as p

pytestmark = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("mkvmerge")),
    reason="needs ffmpeg and mkvmerge (make sysdeps)",
)
NAMES = ("AUDIO_FROM_CUSTOMER", "AUDIO_TO_CUSTOMER")


def run(*args: str) -> bytes:
    return subprocess.run(args, check=True, capture_output=True).stdout


def sources(tmp_path: Path, rate: int = 8000) -> tuple[Path, Path]:
    cu, op = p.conversation(2.5, 3)
    paths = []
    for name, pcm in (("cu", cu), ("op", op[: len(op) - 2222])):
        path = tmp_path / f"{name}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm)
        paths.append(path)
    return paths[0], paths[1]


def ffmpeg_demux(mkv: Path) -> tuple[bytes, bytes]:
    """Each track's PCM as ffmpeg decodes it, padded to the same length (as convert pads)."""
    tracks = [
        run(
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(mkv),
            "-map",
            f"0:a:{i}",
            "-f",
            "s16le",
            "-c:a",
            "pcm_s16le",
            "-",
        )
        for i in (0, 1)
    ]
    length = max(len(t) for t in tracks)
    cu, op = (t.ljust(length, b"\0") for t in tracks)
    return cu, op


def wav_frames(path: Path) -> tuple[int, int, bytes]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.readframes(w.getnframes())


def check(mkv: Path, out: Path, rate: int = 8000, data: bytes | None = None) -> None:
    cu, op = ffmpeg_demux(mkv)
    stream = io.BytesIO(data) if data is not None else mkv.open("rb")
    with stream:
        result = convert(stream, out, chunk_size=5000)
    assert wav_frames(result.paths["cu"]) == (rate, 1, cu)
    assert wav_frames(result.paths["op"]) == (rate, 1, op)
    stereo = run(
        "ffmpeg",
        "-v",
        "error",
        "-i",
        str(mkv),
        "-filter_complex",
        "[0:a:0][0:a:1]amerge=inputs=2[s]",
        "-map",
        "[s]",
        "-f",
        "s16le",
        "-c:a",
        "pcm_s16le",
        "-",
    )
    # amerge stops at the shorter input; the rest is the longer track next to silence
    assert wav_frames(result.paths["stereo"])[2][: len(stereo)] == stereo
    assert result.gaps == 0
    assert result.duplicates == 0


def ffmpeg_mux(cu: Path, op: Path, *extra: str) -> list[str]:
    return [
        "ffmpeg",
        "-v",
        "error",
        "-i",
        str(cu),
        "-i",
        str(op),
        "-map",
        "0:a",
        "-map",
        "1:a",
        "-c:a",
        "pcm_s16le",
        "-metadata:s:a:0",
        f"title={NAMES[0]}",
        "-metadata:s:a:1",
        f"title={NAMES[1]}",
        *extra,
    ]


@pytest.mark.parametrize("rate", [8000, 16000])
def test_ffmpeg_file(tmp_path: Path, rate: int) -> None:
    cu, op = sources(tmp_path, rate)
    mkv = tmp_path / "ffmpeg.mkv"
    run(*ffmpeg_mux(cu, op, str(mkv)))
    check(mkv, tmp_path / "out", rate)


def test_ffmpeg_live_pipe(tmp_path: Path) -> None:
    cu, op = sources(tmp_path)
    data = run(*ffmpeg_mux(cu, op, "-f", "matroska", "-live", "1", "pipe:1"))
    mkv = tmp_path / "live.mkv"
    mkv.write_bytes(data)
    check(mkv, tmp_path / "out", data=data)


@pytest.mark.parametrize(
    "engage", [[], ["--engage", "no_simpleblocks"]], ids=["laced simpleblocks", "blockgroups"]
)
def test_mkvmerge(tmp_path: Path, engage: list[str]) -> None:
    cu, op = sources(tmp_path)
    mkv = tmp_path / "mkvmerge.mkv"
    run(
        "mkvmerge",
        "-q",
        "-o",
        str(mkv),
        *engage,
        "--track-name",
        f"0:{NAMES[0]}",
        str(cu),
        "--track-name",
        f"0:{NAMES[1]}",
        str(op),
    )
    check(mkv, tmp_path / "out")


def test_cli_reads_stdin(tmp_path: Path) -> None:
    cu, op = sources(tmp_path)
    data = run(*ffmpeg_mux(cu, op, "-f", "matroska", "-live", "1", "pipe:1"))
    done = subprocess.run(
        [sys.executable, "-m", "callrec.cli", "convert", "-", "--out", str(tmp_path / "out")],
        input=data,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        b"contact -: 2.500 s, 1 fragments, 0 gaps filled, 0 duplicates dropped"
    )
    # Timecodes of an ordinary file start at 0: the epoch names the files
    names = sorted(x.name for x in (tmp_path / "out").iterdir())
    assert names == [f"19700101T000000Z-{r}.wav" for r in ("cu", "op", "stereo")]
