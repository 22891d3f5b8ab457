"""The stereo worker of `callrec convert`: its protocol, its failures, and the CLI's choice of it."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path

import pytest

from callrec import cli, stereo_worker
from callrec.alignment import interleave
from callrec.convert import convert
from callrec.stereo_worker import StereoWorkerError, work
from callrec.wav import WavFileWriter
from callrec_local import producer as p

CONTACT = "87718f4a-d2ed-476a-ad11-f496ab09b3f8"


def mono(path: Path, pcm: bytes) -> Path:
    writer = WavFileWriter(path, 8000, 1)
    writer.write(pcm)
    writer.close()
    return path


def frames(path: Path) -> tuple[int, bytes]:
    with wave.open(str(path), "rb") as w:
        return w.getnchannels(), w.readframes(w.getnframes())


def header(tmp_path: Path, cu: Path, op: Path) -> str:
    return json.dumps(
        {"cu": str(cu), "op": str(op), "stereo": str(tmp_path / "s.wav"), "rate": 8000}
    )


@pytest.mark.parametrize("step", [6, 1 << 20])
def test_the_worker_interleaves_what_it_is_told_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: int
) -> None:
    # Given two mono WAVs, reported in uneven steps, and read back in steps of `step` bytes
    monkeypatch.setattr(stereo_worker, "STEP_BYTES", step)
    left, right = bytes(range(256)) * 4, bytes(range(255, -1, -1)) * 4
    cu, op = mono(tmp_path / "cu.wav", left), mono(tmp_path / "op.wav", right)
    lines = [header(tmp_path, cu, op), "100 10", "100 10", "600 900", "1024 1024", "end"]
    # When the worker runs, then the stereo WAV is the two interleaved
    assert work(lines) is True
    assert frames(tmp_path / "s.wav") == (2, interleave(left, right))


def test_no_audio_means_no_stereo_file(tmp_path: Path) -> None:
    assert work([]) is True
    assert work(["end"]) is True
    assert list(tmp_path.iterdir()) == []


def test_input_ending_without_end_still_gets_a_header(tmp_path: Path) -> None:
    cu, op = mono(tmp_path / "cu.wav", b"\x01\x00" * 8), mono(tmp_path / "op.wav", b"\x02\x00" * 8)
    assert work([header(tmp_path, cu, op), "8 4"]) is False
    assert frames(tmp_path / "s.wav") == (2, b"\x01\x00\x02\x00" * 2)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("8 x", "expected 'CU OP'"),
        ("8 8 8", "expected 'CU OP'"),
        ("4 4", "not below 8 8"),
        ("9 10", "expected even byte counts"),
        ("64 64", "expected 56 bytes"),
    ],
)
def test_bad_progress_is_an_error_that_names_it(tmp_path: Path, line: str, message: str) -> None:
    cu, op = mono(tmp_path / "cu.wav", bytes(16)), mono(tmp_path / "op.wav", bytes(16))
    with pytest.raises(StereoWorkerError, match=message):
        work([header(tmp_path, cu, op), "8 8", line])
    # and what was written before it is a complete WAV
    assert frames(tmp_path / "s.wav") == (2, bytes(16))


def test_tracks_ending_apart_are_an_error(tmp_path: Path) -> None:
    cu, op = mono(tmp_path / "cu.wav", bytes(16)), mono(tmp_path / "op.wav", bytes(8))
    with pytest.raises(StereoWorkerError, match="8 bytes apart"):
        work([header(tmp_path, cu, op), "16 8", "end"])


def test_a_bad_header_is_an_error() -> None:
    with pytest.raises(StereoWorkerError, match="JSON header"):
        work(['{"cu": "a"}'])


def capture() -> bytes:
    cu, op = p.conversation(4.0, 3)
    call = p.ConnectCall(CONTACT, "instance", 1_782_912_654_536, cu, op, jitter_ms=7)
    return p.encode_capture(list(call.fragments()))


def test_a_failing_worker_is_reported_and_the_mono_files_are_complete(tmp_path: Path) -> None:
    # Given a directory where the worker must write the stereo WAV
    data = capture()
    (tmp_path / "out" / "20260701T133054Z-stereo.wav").mkdir(parents=True)
    # When converting with the worker, then its error is raised
    with pytest.raises(StereoWorkerError, match=r"stereo worker: .*stereo\.wav"):
        convert(io.BytesIO(data), tmp_path / "out", parallel=True)
    # and the mono files are those of a conversion without it
    convert(io.BytesIO(data), tmp_path / "ref")
    for role in ("cu", "op"):
        name = f"20260701T133054Z-{role}.wav"
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()


def test_the_command_writes_the_same_files_with_and_without_the_worker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "capture.mkv"
    path.write_bytes(capture())
    assert cli.main(["convert", str(path), "--out", str(tmp_path / "a")]) == 0
    assert cli.main(["convert", str(path), "--out", str(tmp_path / "b"), "--single-process"]) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert first.split(" -> ")[0] == second.split(" -> ")[0]
    names = sorted(x.name for x in (tmp_path / "a").iterdir())
    assert names == sorted(x.name for x in (tmp_path / "b").iterdir())
    assert len(names) == 3
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_without_a_second_process_the_stereo_file_is_written_in_this_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = capture()
    monkeypatch.setattr(stereo_worker.sys, "executable", str(tmp_path / "no-python"))
    result = convert(io.BytesIO(data), tmp_path / "out", parallel=True)
    reference = convert(io.BytesIO(data), tmp_path / "ref")
    for role in ("cu", "op", "stereo"):
        assert result.paths[role].read_bytes() == reference.paths[role].read_bytes()
