"""Offline conversion: a saved GetMedia capture (or ordinary Matroska file) to three WAVs.

`convert()` streams the capture through the fragment reader, the contact rules and the aligner
into `<start>-cu.wav`, `<start>-op.wav` and `<start>-stereo.wav` (left = customer, right =
agent), `<start>` being the recording's start in UTC. Memory stays bounded by one fragment.
The `callrec convert` command is its command line. Deliberately not done here: reading from
KVS (kvs.py) and resumable uploads (the recorder).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callrec.alignment import Aligned, Aligner, StereoMuxer
from callrec.errors import CallrecError
from callrec.fragments import (
    DEFAULT_CHUNK_SIZE,
    ROLE_AGENT,
    ROLE_CUSTOMER,
    ContactDecision,
    ContactGate,
    ErrorChunk,
    Fragment,
    FragmentReader,
    StreamEnd,
    SupportsRead,
    track_format,
    track_role,
)
from callrec.mkv import TRACK_TYPE_AUDIO, MkvError
from callrec.stereo_worker import REPORT_BYTES, StereoWorker, StereoWorkerError
from callrec.wav import WavFileWriter, recording_basename


class NoAudio(CallrecError):
    """A capture holding no Connect audio for the contact asked for."""


class ConversionFailed(CallrecError):
    """The capture went bad after some audio was written: the WAVs are complete and valid,
    holding everything before the failure (`result`); `cause` is the reader's or aligner's
    error."""

    def __init__(self, cause: CallrecError, result: ConvertResult) -> None:
        kept = ", ".join(str(path) for path in result.paths.values())
        super().__init__(
            f"{cause}; the WAVs hold the {result.duration:.3f} s before it"
            f" ({result.fragments} fragments): {kept}"
        )
        self.cause = cause
        self.result = result


@dataclass(slots=True)
class ConvertResult:
    """What `convert` wrote and what it saw on the way."""

    contact_id: str | None = None
    start_ns: int | None = None
    sample_rate: int = 0
    samples: int = 0
    fragments: int = 0  # fragments that contributed audio
    skipped: int = 0  # fragments of other contacts before the target
    gaps: int = 0
    duplicates: int = 0
    odd_bytes: int = 0  # odd last bytes of blocks dropped (blocks not of whole samples)
    paths: dict[str, Path] = field(default_factory=dict)
    error_codes: list[str] = field(default_factory=list)
    end: StreamEnd | None = None
    ended_by_contact: str | None = None  # the next contact whose fragment ended the recording

    @property
    def duration(self) -> float:
        return self.samples / self.sample_rate if self.sample_rate else 0.0

    @property
    def clean(self) -> bool:
        return not self.error_codes and (self.end is None or self.end.clean)

    def summary(self) -> str:
        """The one-line summary `callrec convert` prints."""
        line = (
            f"contact {self.contact_id or '-'}: {self.duration:.3f} s, {self.fragments} fragments,"
            f" {self.gaps} gaps filled, {self.duplicates} duplicates dropped,"
            f" {self.odd_bytes} odd bytes dropped"
        )
        if self.paths:
            stem = self.paths[ROLE_CUSTOMER].name.removesuffix("-cu.wav")
            line += f" -> {self.paths[ROLE_CUSTOMER].parent / stem}-{{cu,op,stereo}}.wav"
        return line


class _Outputs:
    """The three WAVs; the stereo one written here, or by a worker process reading the mono
    ones back."""

    def __init__(
        self, out_dir: Path, start_ns: int, rate: int, worker: StereoWorker | None
    ) -> None:
        stamp = recording_basename(start_ns)
        self.paths = {
            role: out_dir / f"{stamp}-{role}.wav" for role in (ROLE_CUSTOMER, ROLE_AGENT, "stereo")
        }
        self.cu = WavFileWriter(self.paths[ROLE_CUSTOMER], rate, 1)
        self.op = WavFileWriter(self.paths[ROLE_AGENT], rate, 1)
        self.worker = worker
        self.stereo: WavFileWriter | None = None
        self.muxer = StereoMuxer()
        self._reported = 0
        if worker is None:
            self.stereo = WavFileWriter(self.paths["stereo"], rate, 2)
        else:
            worker.begin(
                self.paths[ROLE_CUSTOMER], self.paths[ROLE_AGENT], self.paths["stereo"], rate
            )

    def write(self, aligned: Aligned) -> None:
        self.cu.write(aligned.cu)
        self.op.write(aligned.op)
        if self.stereo is not None:
            self.stereo.write(self.muxer.push(aligned.cu, aligned.op))
        elif self.cu.data_bytes + self.op.data_bytes - self._reported >= REPORT_BYTES:
            self._report()

    def _report(self) -> None:
        assert self.worker is not None
        self.cu.flush()
        self.op.flush()
        self.worker.report(self.cu.data_bytes, self.op.data_bytes)
        self._reported = self.cu.data_bytes + self.op.data_bytes

    def close(self) -> None:
        """Writes each file's header. If any file cannot get a valid one, all three are
        deleted (no file that looks like a WAV but is not one is left) and the error raised."""
        failure: BaseException | None = None
        try:
            if self.worker is not None:
                self._report()
        finally:
            for writer in (self.cu, self.op, self.stereo):
                if writer is None:
                    continue
                try:
                    writer.close()
                except BaseException as exc:  # re-raised below, once every file is closed
                    failure = failure or exc
            if failure is not None:
                for path in self.paths.values():
                    path.unlink(missing_ok=True)
                raise failure


def _why_no_audio(fragment: Fragment) -> list[str]:
    reasons = []
    for track in fragment.tracks:
        if track.type != TRACK_TYPE_AUDIO and not track.codec_id.startswith("A_"):
            continue
        try:
            track_format(track, fragment.mime_type)
        except MkvError as exc:
            reasons.append(str(exc))
        else:
            if track_role(track) is None:
                reasons.append(
                    f"track {track.number} ({track.name or 'unnamed'}) is not named like Connect's"
                )
    return reasons


def convert(
    stream: SupportsRead,
    out_dir: Path,
    contact_id: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    *,
    parallel: bool = False,
) -> ConvertResult:
    """Converts a capture read from `stream` into three WAVs in `out_dir`.

    With `parallel`, the stereo WAV is written by a worker process (stereo_worker.py), the same
    bytes on a second CPU. Raises `MkvError` or `AlignmentError` for bytes that are not
    Matroska or audio that is not PCM before any audio was written (no file is left),
    `ConversionFailed` when that happens after some (the WAVs complete and valid, holding
    everything before the failure), `NoAudio` when the contact has no audio
    in the capture, `StereoWorkerError` when the worker failed (the mono WAVs are complete).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    worker = None
    if parallel:
        try:
            worker = StereoWorker()
        except OSError:
            worker = None  # no second process here: the stereo WAV is written in this one
    try:
        result = _convert(stream, out_dir, contact_id, chunk_size, worker)
    except BaseException:
        if worker is not None:
            with contextlib.suppress(StereoWorkerError):  # the first error is the one to tell
                worker.finish()
        raise
    if worker is not None:
        worker.finish()
    return result


def _convert(  # noqa: PLR0912, PLR0915
    stream: SupportsRead,
    out_dir: Path,
    contact_id: str | None,
    chunk_size: int,
    worker: StereoWorker | None,
) -> ConvertResult:
    result = ConvertResult()
    gate = ContactGate(target=contact_id)
    aligner = Aligner()
    reader = FragmentReader()
    outputs: _Outputs | None = None
    reasons: list[str] = []
    failure: CallrecError | None = None
    try:
        for event in reader.read_stream(stream, chunk_size):
            if isinstance(event, ErrorChunk):
                result.error_codes.append(event.code)
                continue
            decision = gate.decide(event)
            if decision is ContactDecision.END:
                result.ended_by_contact = event.contact_id
                break
            if decision is ContactDecision.SKIP:
                result.skipped += 1
                continue
            aligned = aligner.add_fragment(event)
            if aligner.start_ns is None:
                reasons = reasons or _why_no_audio(event)
                continue
            if outputs is None:
                assert aligner.sample_rate is not None
                outputs = _Outputs(out_dir, aligner.start_ns, aligner.sample_rate, worker)
            outputs.write(aligned)
        result.end = reader.end
    except CallrecError as exc:
        if outputs is None:
            raise
        failure = exc  # what was written before it is kept, in valid WAVs
    finally:
        if outputs is not None:
            try:
                outputs.write(aligner.finish())
            finally:
                # Even after a failed write (a full disk), each file gets the header of what
                # it holds.
                outputs.close()
                result.paths = outputs.paths
    if outputs is None:
        wanted = f"contact {contact_id}" if contact_id else "any contact"
        detail = (
            "; ".join(dict.fromkeys(reasons))
            or "no track named AUDIO_FROM_CUSTOMER or AUDIO_TO_CUSTOMER"
        )
        raise NoAudio(f"no PCM audio for {wanted} in the capture: {detail}")
    result.contact_id = gate.target
    result.start_ns = aligner.start_ns
    result.sample_rate = aligner.sample_rate or 0
    result.samples = aligner.samples
    result.fragments = aligner.fragments
    result.gaps = aligner.gaps_filled
    result.duplicates = aligner.duplicates_dropped
    result.odd_bytes = aligner.odd_bytes_dropped
    if failure is not None:
        raise ConversionFailed(failure, result) from failure
    return result


def _cpus() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _run(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    # The worker reads the mono files back with os.pread (POSIX).
    parallel = not args.single_process and _cpus() > 1 and hasattr(os, "pread")
    # The reader allocates a few container objects per block that never form reference
    # cycles: the cyclic collector's passes over them would be a tenth of the run time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if args.capture == "-":
            result = convert(sys.stdin.buffer, out_dir, args.contact_id, parallel=parallel)
        else:
            with Path(args.capture).open("rb") as stream:
                result = convert(stream, out_dir, args.contact_id, parallel=parallel)
    except OSError as exc:
        print(f"callrec convert: {exc}", file=sys.stderr)
        return 2
    except CallrecError as exc:
        print(f"callrec convert: {exc}", file=sys.stderr)
        return 1
    finally:
        if collecting:
            gc.enable()
    print(result.summary())
    status = 0
    if result.end is not None and not result.end.clean:
        print(
            f"callrec convert: capture truncated: {result.end.detail}; last fragment dropped",
            file=sys.stderr,
        )
        status = 1
    for code in result.error_codes:
        print(f"callrec convert: capture holds an error chunk: {code}", file=sys.stderr)
        status = 1
    return status


_DESCRIPTION = (
    "Convert a saved GetMedia capture (or a Matroska file with PCM tracks named"
    " AUDIO_FROM_CUSTOMER / AUDIO_TO_CUSTOMER) into customer, agent and stereo WAVs."
)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("capture", help="capture file, or - for stdin")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--contact-id", help="contact to record (default: the first one seen)")
    parser.add_argument(
        "--single-process",
        action="store_true",
        help="write the stereo WAV in this process too (by default a second process writes it"
        " when there is more than one CPU; the files are the same)",
    )
    parser.set_defaults(handler=_run)


def register(subparsers: Any) -> None:
    """Adds `callrec convert`."""
    parser = subparsers.add_parser(
        "convert",
        help="capture -> <start>-cu.wav, <start>-op.wav, <start>-stereo.wav",
        description=_DESCRIPTION,
    )
    _arguments(parser)


def main(argv: list[str] | None = None) -> int:
    """`python -m callrec.convert`: the same command without loading the CLI's other commands."""
    parser = argparse.ArgumentParser(prog="python -m callrec.convert", description=_DESCRIPTION)
    _arguments(parser)
    return _run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
