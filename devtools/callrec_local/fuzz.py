"""Mutation fuzzer for the reader, the aligner and `callrec convert`. Dev-only.

Each case takes a seed stream (a vendored real capture from tests/fixtures/getmedia-real, cut to
its first documents, or a Connect-shaped stream from producer.py), applies a few mutations (bit
flips, changed sizes, changed tag names and values, duplicated and removed elements, reordered or
extreme cluster timecodes, odd-length blocks, implausible TimecodeScale and sampling rates) and
checks, once with the input whole and once in random chunks:

- the reader's events (every fragment, and the error that ended the input, if any) are the same;
- `convert` gives the same result or the same error, and the same bytes in every file;
- every file left behind that is named .wav is a valid WAV;
- nothing raises an exception other than callrec's own (`CallrecError`).

Cases run in a worker process with a memory ceiling (RLIMIT_AS) and a per-case time limit (an
interval timer in the worker; the parent kills a worker that stops answering). The input of
every failure is saved under `fuzz-failures/` with a note saying what happened.

    python -m callrec_local.fuzz -n 100000      (or: make fuzz N=100000)

Deliberately not done here: coverage guidance (mutations are random, not steered).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import itertools
import multiprocessing
import random
import resource
import signal
import struct
import sys
import tempfile
import time
import traceback
import wave
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from callrec.convert import ConvertResult, convert
from callrec.errors import CallrecError
from callrec.fragments import ErrorChunk, FragmentReader

# ruff: noqa: S311 - random cases, not secrets

# Outcomes: the first three are answers, the others failures.
OK = "ok"  # converted (WAVs written)
REFUSED = "refused"  # a CallrecError (MkvError, AlignmentError, NoAudio, ...) with a reason
UNEXPECTED = "unexpected-exception"
MISMATCH = "chunking-mismatch"
BROKEN_WAV = "broken-wav"
HANG = "hang"
MEMORY = "memory"
CRASH = "worker-died"
ANSWERS = (OK, REFUSED)
FAILURES = (UNEXPECTED, MISMATCH, BROKEN_WAV, HANG, MEMORY, CRASH)

DEFAULT_TIME_LIMIT = 5.0
DEFAULT_MEMORY_MB = 768
# A real capture is cut to its first documents, up to about this many bytes: cases stay fast.
REAL_SEED_BYTES = 12 * 1024
MAX_REAL_SEED_BYTES = 40 * 1024
REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "getmedia-real"

# Element IDs the walk descends into (a known-size master's size is fixed up when its content
# changes length).
_MASTERS = {
    0x1A45DFA3,  # EBML header
    0x18538067,  # Segment
    0x1549A966,  # Info
    0x1654AE6B,  # Tracks
    0xAE,  # TrackEntry
    0xE1,  # Audio
    0x1254C367,  # Tags
    0x7373,  # Tag
    0x67C8,  # SimpleTag
    0x1F43B675,  # Cluster
    0xA0,  # BlockGroup
}
# What ends an unknown-size Cluster: a sibling or an element of the level above.
_NOT_IN_CLUSTER = {0x1A45DFA3, 0x18538067, 0x1549A966, 0x1654AE6B, 0x1254C367, 0x1F43B675}
ID_TIMECODE_SCALE = 0x2AD7B1
ID_TIMECODE = 0xE7
ID_SIMPLEBLOCK = 0xA3
ID_TAGNAME = 0x45A3
ID_TAGSTRING = 0x4487
ID_CODECID = 0x86
ID_TRACKENTRY = 0xAE
ID_SAMPLING_FREQUENCY = 0xB5
TAG_NAMES = (
    "ContactId",
    "InstanceId",
    "MimeType",
    "AUDIO_FROM_CUSTOMER",
    "AUDIO_TO_CUSTOMER",
    "AWS_KINESISVIDEO_FRAGMENT_NUMBER",
    "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP",
    "AWS_KINESISVIDEO_SERVER_TIMESTAMP",
    "AWS_KINESISVIDEO_CONTINUATION_TOKEN",
    "AWS_KINESISVIDEO_ERROR_CODE",
    "",
    "\xff\xfe",
)
TAG_VALUES = (
    "audio/L16;rate=8000;channels=1;",
    "audio/L16;rate=16000;channels=1;",
    "audio/L16;rate=4294967296;channels=1;",
    "audio/L16;rate=0;channels=1;",
    "audio/L16;rate=7;channels=1;",
    "audio/L16;rate=8000;channels=2;",
    "audio/L16;rate=inf;",
    "audio/L16;rate=99999999999999999999999999;",
    "c-other",
    "",
    "1782912654.536",
    "99999999999999999999.999",
    "-1",
    "FRAGMENT_NOT_FOUND",
)
RATES = (
    float("inf"),
    float("-inf"),
    float("nan"),
    4294967296.0,
    1e300,
    0.0,
    -8000.0,
    8000.0,
    8000.5,
    16000.0,
    7.0,
)
SCALES = (0, 1, 1000, 1_000_000, 10**9, 10**9 + 1, 2**32, 2**63, 2**64 - 1)
TIMECODES = (0, 1, 2**31, 2**32, 2**53, 2**63 - 1, 2**64 - 1, 8_000_000_000_000)


# --- seeds ---------------------------------------------------------------------------------------


def real_seeds(folder: Path = FIXTURES) -> list[tuple[str, bytes]]:
    """Each vendored capture cut at the first document boundary past REAL_SEED_BYTES (or, when
    its first document is longer than MAX_REAL_SEED_BYTES, inside it)."""
    seeds = []
    for path in sorted(folder.glob("*.mkv")):
        data = path.read_bytes()
        starts = [*_find_all(data, b"\x1a\x45\xdf\xa3"), len(data)]
        cut = next((s for s in starts[1:] if s >= REAL_SEED_BYTES), len(data))
        seeds.append((path.name, data[: min(cut, MAX_REAL_SEED_BYTES)]))
    return seeds


def _find_all(data: bytes, needle: bytes) -> Iterator[int]:
    at = data.find(needle)
    while at >= 0:
        yield at
        at = data.find(needle, at + 1)


def generated_seeds() -> list[tuple[str, bytes]]:
    """Connect-shaped streams in every layout the producer knows, a few fragments each."""
    from callrec_local import producer as p  # noqa: PLC0415 - numpy: only where seeds are made

    start = 1_782_912_654_536

    def call(contact: str, at: int, seed: int, **options: Any) -> p.ConnectCall:
        return p.ConnectCall(
            contact,
            "i-1",
            at,
            *p.conversation(0.4, seed),
            block_samples=160,
            blocks_per_fragment=4,
            **options,
        )

    plain = call("c-1", start, 1)
    return [
        ("connect", p.encode_capture(list(plain.fragments()))),
        (
            "connect-crc-void-gap-dup-jitter",
            p.encode_capture(
                list(
                    call(
                        "c-1",
                        start,
                        2,
                        crc32=True,
                        void=True,
                        gaps=(p.Gap(p.TRACK_TO_CUSTOMER, 40, 100),),
                        duplicate_fragments=frozenset({1}),
                        jitter_ms=5,
                    ).fragments()
                )
            ),
        ),
        (
            "connect-from-first-2024-tags",
            p.encode_capture(
                list(
                    call(
                        "c-1",
                        start,
                        3,
                        track_order=p.TrackOrder.FROM_CUSTOMER_FIRST,
                        tags_layout=p.TagsLayout.AFTER_ONLY,
                    ).fragments()
                )
            ),
        ),
        (
            "connect-two-contacts-error-chunk",
            p.encode_capture(
                [*plain.fragments(), *call("c-2", plain.end_ms + 50, 4).fragments()],
                error_chunk=("FRAGMENT_NOT_FOUND", "3000"),
            ),
        ),
        (
            "connect-truncated",
            p.encode_capture(list(call("c-1", start, 5).fragments()), truncate_last=300),
        ),
    ]


# --- an independent EBML walk (no callrec code), tolerant of damage --------------------------------


@dataclass(frozen=True, slots=True)
class Element:
    offset: int
    eid: int
    size_at: int  # offset of the size field
    size_width: int
    size: int | None  # None: unknown
    start: int  # payload
    end: int
    parents: tuple[int, ...]  # indexes of the enclosing elements in the walk


def _vint(data: bytes, pos: int) -> tuple[int, int] | None:
    if pos >= len(data) or not data[pos]:
        return None
    width = 9 - data[pos].bit_length()
    if pos + width > len(data):
        return None
    return int.from_bytes(data[pos : pos + width]) & ((1 << (7 * width)) - 1), width


def walk(data: bytes) -> list[Element]:
    """The elements of `data` in order, as far as they can be told apart."""
    out: list[Element] = []

    def level(pos: int, end: int, parents: tuple[int, ...], in_cluster: bool) -> int:
        while pos < end:
            first = data[pos]
            if not first or first.bit_length() < 5:
                return pos
            idw = 9 - first.bit_length()
            eid = int.from_bytes(data[pos : pos + idw])
            if in_cluster and eid in _NOT_IN_CLUSTER:
                return pos
            got = _vint(data, pos + idw)
            if got is None:
                return pos
            size, width = got
            start = pos + idw + width
            unknown = size == (1 << (7 * width)) - 1
            stop = end if unknown else min(start + size, end)
            index = len(out)
            out.append(
                Element(pos, eid, pos + idw, width, None if unknown else size, start, stop, parents)
            )
            if eid in _MASTERS:
                inner = level(start, stop, (*parents, index), eid == 0x1F43B675 and unknown)
                if unknown:
                    out[index] = Element(pos, eid, pos + idw, width, None, start, inner, parents)
                    pos = inner
                    if eid == 0x18538067 and inner < end and data[inner] != 0x1A:
                        return inner
                    continue
            if stop <= pos:
                return pos
            pos = stop
        return pos

    level(0, len(data), (), False)
    return out


def _resize(data: bytearray, elements: list[Element], element: Element, delta: int) -> None:
    """Adds `delta` to the sizes of `element`'s known-size ancestors (same width, if it fits)."""
    for index in element.parents:
        parent = elements[index]
        if parent.size is None:
            continue
        size = parent.size + delta
        if not 0 <= size < (1 << (7 * parent.size_width)) - 1:
            continue
        data[parent.size_at : parent.size_at + parent.size_width] = (
            (1 << (7 * parent.size_width)) | size
        ).to_bytes(parent.size_width)


def _replace(data: bytes, elements: list[Element], element: Element, payload: bytes) -> bytes:
    """`element` with `payload`, its own size and its ancestors' fixed where the widths allow."""
    width = element.size_width
    if len(payload) >= (1 << (7 * width)) - 1:
        width = 8
    out = bytearray(data)
    _resize(out, elements, element, len(payload) - (element.end - element.start))
    head = bytes(out[element.offset : element.size_at]) + (
        (1 << (7 * width)) | len(payload)
    ).to_bytes(width)
    return bytes(out[: element.offset]) + head + payload + bytes(out[element.end :])


# --- mutations -----------------------------------------------------------------------------------


def _pick(rng: random.Random, elements: list[Element], *ids: int) -> Element | None:
    found = [e for e in elements if not ids or e.eid in ids]
    return rng.choice(found) if found else None


def m_bit_flips(data: bytes, elements: list[Element], rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(out))
        out[at] ^= 1 << rng.randrange(8)
    return bytes(out)


def m_size(data: bytes, elements: list[Element], rng: random.Random) -> bytes:
    element = _pick(rng, elements)
    if element is None:
        return data
    width = element.size_width
    limit = (1 << (7 * width)) - 1
    size = element.size or 0
    new = rng.choice(
        (size + 1, size - 1, size + rng.randint(2, 100), size // 2, 0, limit, limit - 1, size * 2)
    )
    new = max(0, min(new, limit))
    out = bytearray(data)
    out[element.size_at : element.size_at + width] = ((1 << (7 * width)) | new).to_bytes(width)
    return bytes(out)


def m_tag(data: bytes, elements: list[Element], rng: random.Random) -> bytes:
    element = _pick(rng, elements, ID_TAGNAME, ID_TAGSTRING)
    if element is None:
        return data
    payload = data[element.start : element.end]
    choice = rng.randrange(3)
    if choice == 0 and payload:
        corrupt = bytearray(payload)
        corrupt[rng.randrange(len(corrupt))] = rng.randrange(256)
        new = bytes(corrupt)
    elif choice == 1 or element.eid == ID_TAGNAME:
        new = rng.choice(TAG_NAMES).encode("utf-8", "surrogateescape")
    else:
        new = rng.choice(TAG_VALUES).encode()
    return _replace(data, elements, element, new)


def m_duplicate(data: bytes, elements: list[Element], rng: random.Random) -> bytes:
    element = _pick(rng, elements)
    if element is None:
        return data
    copy = data[element.offset : element.end]
    out = bytearray(data)
    _resize(out, elements, element, len(copy))
    return bytes(out[: element.end]) + copy + bytes(out[element.end :])


def m_remove(data: bytes, elements: list[Element], rng: random.Random) -> bytes:
    element = _pick(rng, elements)
    if element is None:
        return data
    out = bytearray(data)
    _resize(out, elements, element, -(element.end - element.offset))
    return bytes(out[: element.offset]) + bytes(out[element.end :])


def m_timecodes(data: bytes, elements: list[Element], rng: random.Random) -> bytes:
    found = [e for e in elements if e.eid == ID_TIMECODE]
    if not found:
        return data
    values = [data[e.start : e.end] for e in found]
    if rng.random() < 0.5 and len(found) > 1:
        rng.shuffle(values)
    else:
        i = rng.randrange(len(values))
        values[i] = rng.choice(TIMECODES).to_bytes(8)
    out = data
    for element, value in sorted(zip(found, values, strict=True), key=lambda x: -x[0].offset):
        out = _replace(out, elements, element, value)
    return out


def m_odd_block(data: bytes, elements: list[Element], rng: random.Random) -> bytes:
    element = _pick(rng, elements, ID_SIMPLEBLOCK)
    if element is None or element.end - element.start < 6:
        return data
    payload = data[element.start : element.end]
    new = payload[:-1] if rng.random() < 0.7 else payload + b"\x01"
    return _replace(data, elements, element, new)


def m_timecode_scale(data: bytes, elements: list[Element], rng: random.Random) -> bytes:
    element = _pick(rng, elements, ID_TIMECODE_SCALE)
    if element is None:
        return data
    value = rng.choice(SCALES)
    return _replace(data, elements, element, value.to_bytes(max(1, (value.bit_length() + 7) // 8)))


def m_pcm_track(data: bytes, elements: list[Element], rng: random.Random) -> bytes:
    """A TrackEntry declared as PCM with an Audio element holding an odd sampling rate."""
    entries = [e for e in elements if e.eid == ID_TRACKENTRY and e.size is not None]
    if not entries:
        return data
    entry = rng.choice(entries)
    rate = rng.choice(RATES)
    if rng.random() < 0.7 or abs(rate) > 3e38:
        audio = b"\xe1\x8a\xb5\x88" + struct.pack(">d", rate)
    else:
        audio = b"\xe1\x86\xb5\x84" + struct.pack(">f", rate)
    codec = b"\x86\x8dA_PCM/INT/LIT"
    payload = data[entry.start : entry.end]
    codecs = [
        e
        for e in elements
        if e.eid == ID_CODECID and e.offset >= entry.start and e.end <= entry.end
    ]
    if codecs:
        c = codecs[0]
        payload = data[entry.start : c.offset] + codec + data[c.end : entry.end]
    return _replace(data, elements, entry, payload + audio)


def m_truncate(data: bytes, elements: list[Element], rng: random.Random) -> bytes:
    return data[: rng.randrange(1, len(data))] if len(data) > 1 else data


MUTATIONS: dict[str, Callable[[bytes, list[Element], random.Random], bytes]] = {
    "bit-flips": m_bit_flips,
    "size": m_size,
    "tag": m_tag,
    "duplicate": m_duplicate,
    "remove": m_remove,
    "timecodes": m_timecodes,
    "odd-block": m_odd_block,
    "timecode-scale": m_timecode_scale,
    "pcm-track": m_pcm_track,
    "truncate": m_truncate,
}


def mutate(data: bytes, rng: random.Random, count: int | None = None) -> tuple[bytes, list[str]]:
    """`data` after 1 to 4 random mutations (or `count`), and their names."""
    names = []
    for _ in range(count if count is not None else rng.randint(1, 4)):
        if not data:
            break
        name = rng.choice(tuple(MUTATIONS))
        if name == "truncate" and rng.random() < 0.7:
            name = "bit-flips"  # truncation hides the other mutations: rarer
        data = MUTATIONS[name](data, walk(data), rng)
        names.append(name)
    return data, names


def random_cuts(size: int, rng: random.Random) -> list[int]:
    """Chunk boundaries: a mix of tiny, small and large chunks."""
    cuts: list[int] = []
    at = 0
    while True:
        at += rng.choice((1, 2, 3, rng.randint(1, 64), rng.randint(1, 4096), rng.randint(1, 70000)))
        if at >= size:
            return cuts
        cuts.append(at)


# --- one case --------------------------------------------------------------------------------------


class Finding(Exception):
    """A failure found in a case (its outcome and what happened)."""

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(f"{outcome}: {detail}")
        self.outcome = outcome
        self.detail = detail


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *cuts, len(data)]
    return [data[lo:hi] for lo, hi in itertools.pairwise(bounds)]


def reader_events(pieces: list[bytes]) -> list[Any]:
    """Every event the fragment reader hands out, then the error that ended the input, if any."""
    reader = FragmentReader(include_incomplete=True)
    events: list[Any] = []

    def note(batch: list[Any]) -> None:
        for event in batch:
            fragment = event.fragment if isinstance(event, ErrorChunk) else event
            events.append(
                (
                    type(event).__name__,
                    fragment.index,
                    fragment.offset,
                    fragment.end,
                    fragment.complete,
                    fragment.document_tags,
                    fragment.timecode_scale,
                    fragment.tracks,
                    [(b.track, b.timecode, b.frames, b.offset) for b in fragment.blocks],
                )
            )

    try:
        for piece in pieces:
            note(reader.feed(piece))
        note(reader.close())
        events.append(("end", reader.end))
    except CallrecError as exc:
        events.append(("error", type(exc).__name__, str(exc)))
    return events


class _Pieces(io.RawIOBase):
    """A stream whose reads return the given pieces (as a network delivers them)."""

    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = iter(pieces)

    def read(self, n: int = -1, /) -> bytes:
        return next(self._pieces, b"")


def _wav_problem(path: Path) -> str | None:
    data = path.read_bytes()
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return f"{path.name}: {len(data)} bytes without a RIFF/WAVE header"
    try:
        with wave.open(str(path), "rb") as w:
            frames = w.getnframes() * w.getnchannels() * w.getsampwidth()
    except (wave.Error, EOFError) as exc:
        return f"{path.name}: {exc}"
    if frames != len(data) - 44 or int.from_bytes(data[4:8], "little") != len(data) - 8:
        return f"{path.name}: header says {frames} bytes of audio, file holds {len(data) - 44}"
    return None


def convert_outcome(pieces: list[bytes], out: Path) -> tuple[Any, ...]:
    """What `convert` did: its result or error, and every file it left (checked if a WAV)."""
    try:
        result: ConvertResult | None = convert(_Pieces(pieces), out)
        summary = result.summary().replace(str(out), "OUT") if result else ""
        answer: tuple[Any, ...] = (OK, summary, result and result.clean)
    except CallrecError as exc:
        answer = (REFUSED, type(exc).__name__, str(exc).replace(str(out), "OUT"))
    files = {}
    for path in sorted(out.iterdir()) if out.exists() else []:
        if path.suffix == ".wav":
            problem = _wav_problem(path)
            if problem is not None:
                raise Finding(BROKEN_WAV, f"{problem} (after {answer})")
        files[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return (*answer, files)


def check(data: bytes, chunk_seed: int, workdir: Path) -> str:
    """Runs one case; returns its outcome (OK or REFUSED) or raises `Finding`."""
    whole = [data]
    chunked = _pieces(data, random_cuts(len(data), random.Random(chunk_seed)))
    events = reader_events(whole)
    other = reader_events(chunked)
    if repr(events) != repr(other):  # repr: a NaN read from the stream equals itself
        raise Finding(MISMATCH, _first_difference(events, other))
    first = convert_outcome(whole, workdir / "whole")
    second = convert_outcome(chunked, workdir / "chunked")
    if first != second:
        raise Finding(MISMATCH, f"convert whole: {first!r:.300}; in chunks: {second!r:.300}")
    return first[0]  # type: ignore[no-any-return]


def _first_difference(a: list[Any], b: list[Any]) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if repr(x) != repr(y):
            return f"event {i}: whole {str(x)[:300]} / chunked {str(y)[:300]}"
    return (
        f"whole gives {len(a)} events ({str(a[-1])[:200]}), chunked {len(b)} ({str(b[-1])[:200]})"
    )


# --- running cases in a worker ---------------------------------------------------------------------


class CaseTimeout(BaseException):
    """Raised in the worker when a case overruns its time limit."""


def _on_alarm(signum: int, frame: object) -> None:
    raise CaseTimeout


def run_one(data: bytes, chunk_seed: int, time_limit: float) -> tuple[str, str]:
    """One case in this process: (outcome, detail)."""
    with tempfile.TemporaryDirectory(prefix="callrec-fuzz-") as tmp:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, time_limit)
        try:
            return check(data, chunk_seed, Path(tmp)), ""
        except Finding as finding:
            return finding.outcome, finding.detail
        except CaseTimeout:
            return HANG, f"over {time_limit} s"
        except MemoryError:
            return MEMORY, "MemoryError"
        except Exception as exc:  # what the fuzzer is looking for
            where = traceback.extract_tb(exc.__traceback__)[-1]
            return UNEXPECTED, f"{type(exc).__name__}: {exc} ({where.filename}:{where.lineno})"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def _worker(conn: Connection, parent_end: Connection, memory_mb: int, time_limit: float) -> None:
    # The parent's end, inherited through fork, closed here: if the parent dies, recv() ends.
    parent_end.close()
    with contextlib.suppress(ValueError, OSError):
        # The ceiling is above what the worker has already mapped.
        status = Path("/proc/self/status").read_text()
        mapped = next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmSize")
        )
        limit = mapped * 1024 + memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        data, chunk_seed = job
        conn.send(run_one(data, chunk_seed, time_limit))


@dataclass
class Report:
    counts: Counter[str]
    failures: list[tuple[str, str, Path | None]]
    seconds: float

    def lines(self) -> list[str]:
        total = sum(self.counts.values())
        out = [f"{total} cases in {self.seconds:.1f} s"]
        for outcome in (*ANSWERS, *FAILURES):
            out.append(f"  {outcome:22} {self.counts.get(outcome, 0)}")
        for outcome, detail, path in self.failures[:20]:
            out.append(f"  ! {outcome}: {detail[:300]} -> {path}")
        return out


class _Worker:
    def __init__(self, memory_mb: int, time_limit: float) -> None:
        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_worker, args=(child, self.conn, memory_mb, time_limit), daemon=True
        )
        self.process.start()
        child.close()

    def run(self, data: bytes, chunk_seed: int, wait: float) -> tuple[str, str]:
        try:
            self.conn.send((data, chunk_seed))
            if self.conn.poll(wait):
                result: tuple[str, str] = self.conn.recv()
                return result
            self.stop()
            return HANG, f"worker did not answer within {wait} s: killed"
        except (EOFError, OSError) as exc:
            code = self.process.exitcode
            self.stop()
            return CRASH, f"worker died ({code}, {exc})"

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()


def run(
    cases: int,
    seed: int = 0,
    *,
    time_limit: float = DEFAULT_TIME_LIMIT,
    memory_mb: int = DEFAULT_MEMORY_MB,
    failures_dir: Path | None = None,
    seeds: list[tuple[str, bytes]] | None = None,
    progress: Callable[[int, Counter[str]], None] | None = None,
) -> Report:
    """Runs `cases` cases from `seed` in a worker process; failures are saved in
    `failures_dir` (if given)."""
    began = time.monotonic()
    corpus = seeds if seeds is not None else [*real_seeds(), *generated_seeds()]
    counts: Counter[str] = Counter()
    failures: list[tuple[str, str, Path | None]] = []
    worker: _Worker | None = None
    try:
        for case in range(cases):
            rng = random.Random(f"{seed}:{case}")
            name, original = rng.choice(corpus)
            data, mutations = mutate(original, rng)
            chunk_seed = rng.randrange(1 << 32)
            if worker is None or not worker.process.is_alive():
                worker = _Worker(memory_mb, time_limit)
            outcome, detail = worker.run(data, chunk_seed, time_limit + 30)
            if outcome in (HANG, CRASH):
                worker = None
            counts[outcome] += 1
            if outcome in FAILURES:
                saved = None
                if failures_dir is not None:
                    saved = save_failure(
                        failures_dir,
                        outcome=outcome,
                        detail=detail,
                        data=data,
                        chunk_seed=chunk_seed,
                        seed_name=name,
                        mutations=mutations,
                        seed=seed,
                        case=case,
                    )
                failures.append((outcome, detail, saved))
            if progress is not None:
                progress(case + 1, counts)
    finally:
        if worker is not None:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(None)
            worker.process.join(5)
            worker.stop()
    return Report(counts, failures, time.monotonic() - began)


def save_failure(
    folder: Path,
    *,
    outcome: str,
    detail: str,
    data: bytes,
    chunk_seed: int,
    seed_name: str,
    mutations: list[str],
    seed: int,
    case: int,
) -> Path:
    """Saves a reproducer: the input, and a note with how to replay it."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{outcome}-{hashlib.sha256(data).hexdigest()[:12]}"
    path = folder / f"{stem}.mkv"
    path.write_bytes(data)
    (folder / f"{stem}.txt").write_text(
        f"outcome: {outcome}\ndetail: {detail}\nseed stream: {seed_name}\n"
        f"mutations: {', '.join(mutations)}\nchunk seed: {chunk_seed}\n"
        f"case: --seed {seed} case {case}\n"
        f"replay: python -m callrec_local.fuzz --replay {path} --chunk-seed {chunk_seed}\n"
    )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m callrec_local.fuzz", description=__doc__)
    parser.add_argument("-n", "--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT)
    parser.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB)
    parser.add_argument("--out", default="fuzz-failures", help="where reproducers are saved")
    parser.add_argument("--replay", help="run one saved input instead")
    parser.add_argument("--chunk-seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.replay:
        outcome, detail = run_one(Path(args.replay).read_bytes(), args.chunk_seed, args.time_limit)
        print(outcome, detail)
        return 0 if outcome in ANSWERS else 1

    def progress(done: int, counts: Counter[str]) -> None:
        if done % 5000 == 0:
            bad = sum(counts[o] for o in FAILURES)
            tally = ", ".join(f"{o} {counts[o]}" for o in (*ANSWERS, *FAILURES))
            print(f"{done} cases, {bad} failures ({tally})", file=sys.stderr, flush=True)

    report = run(
        args.cases,
        args.seed,
        time_limit=args.time_limit,
        memory_mb=args.memory_mb,
        failures_dir=Path(args.out),
        progress=progress,
    )
    print("\n".join(report.lines()))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
