"""KVS media reader benchmark: a generated 45-minute two-track Connect stream (~91 MB).

Prints, all measured in this run: parse throughput (MB/s and multiples of real time), `callrec
convert`'s whole-process wall time (also with `--single-process`) and peak RSS, its stereo
worker's included (also on a 5-minute stream: RSS must not grow with length), ffmpeg doing the
same job (two mono WAVs and a stereo merge) from an ordinary Matroska file holding the same
audio, and ebmlite walking the same stream. Wall times come from runs nothing samples; peak RSS
from separate, sampled runs.
Targets (issue 3): convert within 1.5x of ffmpeg, parse at least 3x faster than ebmlite, peak RSS
under 100 MB. Returns 1 if a target is missed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import ebmlite

from callrec.fragments import FragmentReader
from callrec_local import producer as p

CALL_SECONDS = 45 * 60
SHORT_SECONDS = 5 * 60
RUNS = 5  # best of; convert and ffmpeg runs alternate so both see the same machine load


def write_capture(path: Path, seconds: int, seed: int) -> tuple[bytes, bytes]:
    cu, op = p.conversation(seconds, seed)
    call = p.ConnectCall("bench-contact", "bench-instance", 1_782_912_654_536, cu, op)
    with path.open("wb") as out:
        for chunk in p.iter_capture(call.fragments()):
            out.write(chunk)
    return cu, op


def write_wav(path: Path, pcm: bytes) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm)


# Python writes its bytecode cache as an installed program would have it (the warm-up run
# writes it): a PYTHONDONTWRITEBYTECODE inherited from a development shell would otherwise have
# every timed run compile callrec's modules again.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _fresh(out: Path | None) -> None:
    """Each run writes new files, as a recording does: overwriting the previous run's would cost
    either program a writeback that ext4 starts on closing a truncated file (not timed)."""
    if out is not None:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()


def timed_process(args: list[str], out: Path | None = None) -> float:
    """Wall time (s) of one process, writing into `out`, emptied first. Nothing samples it while
    it runs: `callrec convert` uses two CPUs, and a sampler would take its share of them."""
    _fresh(out)
    start = time.perf_counter()
    proc = subprocess.run(
        args, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {proc.stderr.decode()}")
    return wall


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants, as far as /proc shows them now."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(child) for child in task.read_text().split())
    return found


def peak_rss(args: list[str], out: Path | None = None) -> float:
    """Peak RSS (MB) of one process and its children (the stereo worker of `callrec convert`,
    ffmpeg's threads share its own), summed: each one's high-water mark (VmHWM), sampled every
    millisecond once the process runs `args` (a sample between fork and exec would count this
    benchmark's memory)."""
    _fresh(out)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    expected = "\0".join(args).encode() + b"\0"
    running = False
    peaks: dict[int, int] = {}
    while proc.poll() is None:
        with contextlib.suppress(OSError):
            running = running or cmdline.read_bytes() == expected
        if running:
            for pid in _tree(proc.pid):
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            peaks[pid] = max(peaks.get(pid, 0), int(line.split()[1]))
                except (OSError, ValueError):
                    pass
        time.sleep(0.001)
    if proc.returncode != 0:
        assert proc.stderr is not None
        raise RuntimeError(f"{args[0]} failed: {proc.stderr.read().decode()}")
    return sum(peaks.values()) / 1024


def parse_seconds(path: Path) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        reader = FragmentReader()
        with path.open("rb") as stream:
            for _event in reader.read_stream(stream, 1 << 20):
                pass
        times.append(time.perf_counter() - start)
    return min(times)


def ebmlite_seconds(path: Path) -> float:
    schema = ebmlite.loadSchema("matroska.xml")

    def walk(element: object) -> None:
        if isinstance(element, ebmlite.core.MasterElement):
            for child in element:
                walk(child)
        else:
            _ = element.value  # type: ignore[attr-defined]

    start = time.perf_counter()
    for element in schema.load(str(path)):
        walk(element)
    return time.perf_counter() - start


def main() -> int:
    if not shutil.which("ffmpeg"):
        print("ffmpeg not found (make sysdeps)")
        return 1
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-reader-") as tmp_name:
        tmp = Path(tmp_name)
        capture, short = tmp / "capture.mkv", tmp / "short.mkv"
        cu, op = write_capture(capture, CALL_SECONDS, 1)
        write_capture(short, SHORT_SECONDS, 2)
        write_wav(tmp / "cu-src.wav", cu)
        write_wav(tmp / "op-src.wav", op)
        ordinary = tmp / "ordinary.mkv"
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-i",
                str(tmp / "cu-src.wav"),
                "-i",
                str(tmp / "op-src.wav"),
                "-map",
                "0:a",
                "-map",
                "1:a",
                "-c:a",
                "pcm_s16le",
                str(ordinary),
            ],
            check=True,
        )
        del cu, op
        size_mb = capture.stat().st_size / 1e6

        parse = parse_seconds(capture)
        out, ff_out = tmp / "out", tmp / "ff-out"
        convert_args = [
            python,
            "-m",
            "callrec.cli",
            "convert",
            str(capture),
            "--out",
            str(out),
        ]
        ffmpeg_args = [
            "ffmpeg", "-y", "-v", "error", "-i", str(ordinary),
            "-map", "0:a:0", str(ff_out / "cu.wav"), "-map", "0:a:1", str(ff_out / "op.wav"),
            "-filter_complex", "[0:a:0][0:a:1]amerge=inputs=2[s]", "-map", "[s]", str(ff_out / "stereo.wav"),
        ]  # fmt: skip
        # One untimed run of each first: bytecode cache written, input files in the page cache.
        timed_process(convert_args, out)
        timed_process(ffmpeg_args, ff_out)
        convert_runs, ffmpeg_runs = [], []
        for _ in range(RUNS):
            convert_runs.append(timed_process(convert_args, out))
            ffmpeg_runs.append(timed_process(ffmpeg_args, ff_out))
        convert_wall, ffmpeg_wall = min(convert_runs), min(ffmpeg_runs)
        single_args = [*convert_args, "--single-process"]
        single_wall = min(timed_process(single_args, out) for _ in range(RUNS))
        convert_rss = max(peak_rss(convert_args, out) for _ in range(2))
        ffmpeg_rss = max(peak_rss(ffmpeg_args, ff_out) for _ in range(2))
        short_rss = peak_rss(
            [python, "-m", "callrec.cli", "convert", str(short), "--out", str(tmp / "out-short")],
            tmp / "out-short",
        )
        ebml = ebmlite_seconds(capture)

    ratio_ffmpeg = convert_wall / ffmpeg_wall
    ratio_ebml = ebml / parse
    print(f"stream: {CALL_SECONDS / 60:.0f} min two-track Connect capture, {size_mb:.1f} MB")
    print(
        f"parse (FragmentReader):   {parse:6.2f} s  {size_mb / parse:7.1f} MB/s  {CALL_SECONDS / parse:7.0f}x real time"
    )
    print(
        f"callrec convert (process):{convert_wall:6.2f} s  peak RSS {convert_rss:5.1f} MB"
        f"  ({SHORT_SECONDS // 60} min stream: {short_rss:5.1f} MB)"
    )
    print(
        f"  --single-process:         {single_wall:6.2f} s  (the stereo WAV written in the same"
        " process: one CPU)"
    )
    print(f"ffmpeg same job (process):{ffmpeg_wall:6.2f} s  peak RSS {ffmpeg_rss:5.1f} MB")
    print(f"ebmlite walk:             {ebml:6.2f} s  {size_mb / ebml:7.1f} MB/s")
    checks = [
        (f"convert / ffmpeg = {ratio_ffmpeg:.2f}x (target <= 1.5x)", ratio_ffmpeg <= 1.5),
        (f"ebmlite / parse = {ratio_ebml:.1f}x faster (target >= 3x)", ratio_ebml >= 3),
        (f"peak RSS {convert_rss:.1f} MB (target < 100 MB)", convert_rss < 100),
        (
            f"RSS 45 min vs 5 min: {convert_rss - short_rss:+.1f} MB (independent of length)",
            convert_rss - short_rss < 10,
        ),
    ]
    for text, ok in checks:
        print(f"  {'ok  ' if ok else 'MISS'} {text}")
    return 0 if all(ok for _, ok in checks) else 1
