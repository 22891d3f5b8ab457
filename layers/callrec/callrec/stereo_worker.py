"""The stereo WAV of `callrec convert`, written by a second process beside the conversion.

Interleaving the two tracks sample by sample and writing the result is a fifth of a
conversion's work, and Python does it on one CPU. On a machine with two or more, `callrec
convert` hands it to this worker: the converter writes the two mono WAVs and tells the worker,
on its stdin, how far each is written; the worker reads those bytes back (from the page cache,
not the disk) and interleaves them as `StereoMuxer` does in one process, so the bytes are the
same. Its memory is a few MB whatever the lengths: the mono files are its buffer.

Protocol, one line each on the worker's stdin:
- a JSON object: `cu`, `op` (the mono WAVs), `stereo` (the file to write), `rate`;
- `CU OP`: data bytes now written to each mono WAV after its header, cumulative;
- `end`: nothing more comes; the worker writes the stereo header and exits 0.
Input that ends without `end` (the converter died) still gets a stereo header for what was
written, and exit status 1. Any error: a one-line message on stderr, exit status 1.

Deliberately not done here: choosing whether to use a worker (convert.py), parsing, alignment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import callrec
from callrec.alignment import interleave
from callrec.errors import CallrecError
from callrec.wav import WAV_HEADER_SIZE, WavFileWriter

# The converter reports progress after at least this much new audio (and at the end): often
# enough to keep the worker busy beside it, rarely enough to cost nothing.
REPORT_BYTES = 1 << 20
# The worker interleaves at most this many bytes of each track at a time (its memory).
STEP_BYTES = 1 << 20


class StereoWorkerError(CallrecError):
    """The stereo worker failed; the mono WAVs are unaffected."""


def _read_exactly(fd: int, size: int, offset: int, path: str) -> bytes:
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise StereoWorkerError(
            f"expected {size} bytes of {path} at byte {offset}, found {len(data)}"
        )
    return data


def work(lines: Iterable[str]) -> bool:
    """Runs the protocol over `lines`; returns whether it ended with `end`.

    The mono files are the buffer: each report interleaves, in steps of `STEP_BYTES`, what both
    tracks now cover; the longer track's excess stays in its file until the other catches up."""
    it = iter(lines)
    first = next(it, None)
    if first is None or first.strip() == "end":
        return True  # the conversion found no audio: nothing to write
    try:
        header = json.loads(first)
        cu_path, op_path = str(header["cu"]), str(header["op"])
        stereo_path, rate = Path(header["stereo"]), int(header["rate"])
    except (ValueError, KeyError, TypeError) as exc:
        raise StereoWorkerError(f"expected a JSON header line, found {first!r}") from exc
    writer = WavFileWriter(stereo_path, rate, 2)
    totals = (0, 0)
    done = 0  # bytes of each mono file interleaved so far
    try:
        with open(cu_path, "rb", buffering=0) as cu, open(op_path, "rb", buffering=0) as op:
            for line in it:
                if line.strip() == "end":
                    if totals[0] != totals[1]:
                        raise StereoWorkerError(
                            f"the tracks ended {abs(totals[0] - totals[1])} bytes apart;"
                            " expected equal lengths"
                        )
                    return True
                totals = _totals(line, totals)
                common = min(totals)
                while done < common:
                    take = min(common - done, STEP_BYTES)
                    left = _read_exactly(cu.fileno(), take, WAV_HEADER_SIZE + done, cu_path)
                    right = _read_exactly(op.fileno(), take, WAV_HEADER_SIZE + done, op_path)
                    writer.write(interleave(left, right))
                    done += take
    finally:
        writer.close()
    return False


def _totals(line: str, before: tuple[int, int]) -> tuple[int, int]:
    """A progress line's byte counts: two, whole 16-bit samples, neither below `before`."""
    try:
        cu, op = (int(value) for value in line.split())
    except ValueError:
        raise StereoWorkerError(f"expected 'CU OP' byte counts, found {line.strip()!r}") from None
    if cu < before[0] or op < before[1] or cu % 2 or op % 2:
        raise StereoWorkerError(
            f"expected even byte counts not below {before[0]} {before[1]}, found {cu} {op}"
        )
    return cu, op


def main() -> int:
    """`python -m callrec.stereo_worker`: the worker process."""
    try:
        ended = work(sys.stdin)
    except (OSError, CallrecError) as exc:
        print(f"stereo worker: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if not ended:
        print("stereo worker: input ended before 'end'", file=sys.stderr)
        return 1
    return 0


class StereoWorker:
    """The converter's side. The worker starts at once, so that its start-up overlaps the
    parsing; then `begin` once the mono WAVs exist, `report` as they grow, `finish`."""

    def __init__(self) -> None:
        package_root = str(Path(callrec.__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (package_root, env.get("PYTHONPATH"))))
        # -S: the worker needs only the standard library and callrec (found through
        # PYTHONPATH); skipping site-packages halves its start-up.
        self._proc = subprocess.Popen(
            [sys.executable, "-S", "-m", "callrec.stereo_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self._proc.stdin is not None
        self._stdin: IO[str] = self._proc.stdin
        self._broken = False

    def _send(self, line: str) -> None:
        if self._broken:
            return
        try:
            self._stdin.write(line + "\n")
            self._stdin.flush()
        except BrokenPipeError:
            self._broken = True  # the worker died: `finish` says why

    def begin(self, cu: Path, op: Path, stereo: Path, rate: int) -> None:
        """Names the files; the mono WAVs must exist."""
        self._send(json.dumps({"cu": str(cu), "op": str(op), "stereo": str(stereo), "rate": rate}))

    def report(self, cu_bytes: int, op_bytes: int) -> None:
        """Data bytes written to each mono WAV so far (flushed to the OS: the worker reads
        them from its own file descriptors)."""
        self._send(f"{cu_bytes} {op_bytes}")

    def finish(self) -> None:
        """Ends the input and waits for the stereo WAV; `StereoWorkerError` if it failed."""
        self._send("end")
        try:
            self._stdin.close()
        except BrokenPipeError:
            self._broken = True
        assert self._proc.stderr is not None
        error = self._proc.stderr.read().strip()
        status = self._proc.wait()
        if status != 0:
            raise StereoWorkerError(error or f"stereo worker exited with status {status}")


if __name__ == "__main__":
    _status = main()
    # The stereo file is closed and the converter waits for this process to end: end it now,
    # without tearing the interpreter down.
    sys.stderr.flush()
    os._exit(_status)
