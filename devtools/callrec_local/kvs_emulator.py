"""Local Kinesis Video Streams emulator: an HTTP server on loopback that real boto3 clients talk to.

Dev-only. Speaks the rest-json wire protocol of three botocore services on one port (pass the URL as
`endpoint_url`):
- `kinesisvideo`: CreateStream, DescribeStream, ListStreams, DeleteStream, GetDataEndpoint (which returns
  the emulator's own URL);
- `kinesis-video-media`: GetMedia with every start selector, one EBML document per fragment with the KVS
  tags added, live following (the response stays open, delivers fragments as they are ingested and ends
  after `idle_timeout_seconds` without new data);
- `kinesis-video-archived-media`: ListFragments, GetMediaForFragmentList.

Limits and faults, as KVS has them: a maximum connection duration that cuts the response mid-fragment
(ending it like a normal end of stream), at most N concurrent GetMedia connections and M calls per second
per stream (ConnectionLimitExceededException / ClientLimitExceededException, as botocore parses them),
retention (expired fragments are gone), a stream whose KMS key the reader may not use (every GetMedia
answers with error chunk 4500), and queued per-call faults: error chunks, connections ended or reset at a
chosen byte, API errors. GetMedia's error chunks carry the documented id and its description; those of
GetMediaForFragmentList the pair a real one carried (FRAGMENT_NOT_FOUND, 3000).

Time: media timestamps (producer/server timestamps, retention, NOW, MILLIS_BEHIND_NOW) run on a
`MediaClock` that may go faster than the wall clock (`speed`), so a 45-minute call streams in under a
minute. Limits about connections (duration, idle end, calls per second) are wall-clock seconds.

It deliberately does not emulate PutMedia, authentication, KMS, HLS/DASH or stream versions.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from callrec_local.producer import (
    EncodedFragment,
    FragmentSpec,
    KvsTags,
    encode_error_chunk,
    encode_fragment_parts,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
CONTENT_TYPE = "video/webm"
# GetMedia's error chunks: "AWS_KINESISVIDEO_ERROR_CODE - String description of an error that caused
# GetMedia to stop. AWS_KINESISVIDEO_ERROR_ID: Integer code of the error." The ids and descriptions
# as the GetMedia reference lists them
# (https://docs.aws.amazon.com/kinesisvideostreams/latest/dg/API_dataplane_GetMedia.html).
GET_MEDIA_ERRORS = {
    3002: "Error writing to the stream",
    4000: "Requested fragment is not found",
    4500: "Access denied for the stream's KMS key",
    4501: "Stream's KMS key is disabled",
    4502: "Validation error on the stream's KMS key",
    4503: "KMS key specified in the stream is unavailable",
    4504: "Invalid usage of the KMS key specified in the stream",
    4505: "Invalid state of the KMS key specified in the stream",
    4506: "Unable to find the KMS key specified in the stream",
    5000: "Internal error",
}
# GetMediaForFragmentList's error chunk for a fragment it does not hold (aws/aws-sdk-js#3217).
FRAGMENT_LIST_NOT_FOUND = ("FRAGMENT_NOT_FOUND", "3000")


def get_media_error(error_id: int) -> tuple[str, str]:
    """A documented GetMedia error chunk's (code, id) pair: its description and its integer id."""
    return GET_MEDIA_ERRORS[error_id], str(error_id)


# 47-digit fragment numbers, as KVS hands out: increasing along a stream, equal width.
_FRAGMENT_NUMBER_BASE = 91343852333181432392682062622220590765191907586


# --- clock and configuration ------------------------------------------------------------------------


class MediaClock:
    """Epoch milliseconds that advance `speed` times faster than the wall clock, from `origin_ms`."""

    def __init__(self, speed: float = 1.0, origin_ms: int | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self._origin_ms = int(time.time() * 1000) if origin_ms is None else origin_ms
        self._origin_mono = time.monotonic()

    def now_ms(self) -> int:
        return self._origin_ms + int((time.monotonic() - self._origin_mono) * 1000 * self.speed)

    def wall_seconds_until(self, media_ms: int) -> float:
        """Wall-clock seconds until the clock reads `media_ms` (0 if already past)."""
        return max(0.0, (media_ms - self.now_ms()) / 1000 / self.speed)


@dataclass(frozen=True)
class EmulatorConfig:
    """Limits of the emulated KVS. Connection limits are wall-clock; retention is media time."""

    host: str = "127.0.0.1"
    port: int = 0
    speed: float = 1.0
    origin_ms: int | None = None
    # AWS cuts a GetMedia connection after about 45 minutes: wall seconds here (scale by 1/speed).
    max_connection_seconds: float | None = None
    idle_timeout_seconds: float = 3.0
    max_connections_per_stream: int | None = 3
    max_calls_per_second: int | None = 5
    # Server timestamp of a fed fragment: its producer timestamp plus this (a real capture: 170 ms).
    server_latency_ms: int = 170
    # Current docs: FRAGMENT_NUMBER starts with the chunk AFTER that fragment; True gives the old
    # ("containing") behaviour.
    fragment_number_inclusive: bool = False
    # Chunks per fragment written to the socket (more = a cut or drop may land between them).
    write_pieces: int = 1
    # Wall seconds after its ingestion before GetMediaForFragmentList serves a fragment (one just
    # ingested may not be listed yet); until then it answers as for a missing fragment.
    list_delay_seconds: float = 0.0


# --- faults --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DropConnection:
    """End the next GetMedia response after `after_fragments` complete fragments and `bytes_into_next`
    bytes of the following one. `clean=True` ends it like a normal end of stream (what a 45-minute cut
    looks like); `clean=False` resets the connection (the client sees a broken stream)."""

    after_fragments: int
    bytes_into_next: int = 0
    clean: bool = True


@dataclass(frozen=True)
class ErrorChunk:
    """Deliver `after_fragments` fragments, then an error chunk, then end the response.
    `ErrorChunk.documented(4000)` gives one of GetMedia's documented pairs."""

    code: str
    error_id: str
    after_fragments: int = 0

    @classmethod
    def documented(cls, error_id: int, after_fragments: int = 0) -> ErrorChunk:
        return cls(*get_media_error(error_id), after_fragments=after_fragments)


@dataclass(frozen=True)
class ApiError:
    """Fail the next GetMedia call before any media with an HTTP error of this type."""

    error_type: str
    status: int = 500
    message: str = "injected fault"


Fault = DropConnection | ErrorChunk | ApiError


# --- streams ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFragment:
    """One ingested fragment: its encoded parts and what KVS knows of it."""

    index: int
    fragment_number: str
    producer_timestamp_ms: int
    server_timestamp_ms: int
    duration_ms: int
    contact_id: str
    parts: EncodedFragment
    ingested_at: float = 0.0  # wall clock (time.monotonic)

    @property
    def end_producer_ms(self) -> int:
        return self.producer_timestamp_ms + self.duration_ms

    @property
    def end_server_ms(self) -> int:
        return self.server_timestamp_ms + self.duration_ms

    def chunk(self, millis_behind_now: int | None, with_continuation: bool = True) -> bytes:
        return self.parts.with_kvs(
            KvsTags(
                fragment_number=self.fragment_number,
                server_timestamp_ms=self.server_timestamp_ms,
                producer_timestamp_ms=self.producer_timestamp_ms,
                millis_behind_now=millis_behind_now,
                continuation_token=self.fragment_number if with_continuation else None,
            )
        )

    @property
    def size(self) -> int:
        return len(self.parts.head) + len(self.parts.body) + len(self.parts.tail)


@dataclass
class StreamStats:
    """Counters a test can inspect."""

    get_media_calls: int = 0
    rejected_rate: int = 0
    rejected_connections: int = 0
    active_connections: int = 0
    max_active_connections: int = 0
    fragments_delivered: int = 0
    responses_cut: int = 0


@dataclass
class Stream:
    name: str
    arn: str
    creation_ms: int
    retention_hours: int
    retention_ms: int | None
    seed: int
    cond: threading.Condition = field(default_factory=threading.Condition)
    fragments: list[StoredFragment] = field(default_factory=list)
    first_index: int = 0  # absolute index of fragments[0] (older ones expired)
    by_number: dict[str, int] = field(default_factory=dict)
    calls: deque[float] = field(default_factory=deque)
    list_calls: deque[float] = field(default_factory=deque)
    faults: deque[Fault] = field(default_factory=deque)
    stats: StreamStats = field(default_factory=StreamStats)
    # The reader may not use the stream's KMS key: GetMedia answers with error chunk 4500.
    kms_denied: bool = False

    @property
    def next_index(self) -> int:
        return self.first_index + len(self.fragments)

    def get(self, index: int) -> StoredFragment:
        return self.fragments[index - self.first_index]

    def fragment_number(self, index: int) -> str:
        return str(_FRAGMENT_NUMBER_BASE + (self.seed % 10**12) * 10**20 + index * 7919)


def _timestamp_ms(value: Any) -> int:
    """A rest-json timestamp (epoch seconds, as botocore sends it; or ISO 8601) in epoch ms."""
    if isinstance(value, int | float):
        return round(value * 1000)
    if isinstance(value, str):
        try:
            return round(float(value) * 1000)
        except ValueError:
            try:
                return round(datetime.fromisoformat(value).timestamp() * 1000)
            except ValueError:
                pass
    raise KvsApiError("InvalidArgumentException", 400, f"not a timestamp: {value!r}")


@dataclass(frozen=True)
class _StartPoint:
    """First absolute fragment index to consider; fragments ending by `not_ending_by_ms` (producer or
    server time) are skipped, live ones included; `error` answers with an error chunk instead."""

    index: int
    not_ending_by_ms: int | None = None
    server_time: bool = False
    error: tuple[str, str, str] | None = None  # code, id, fragment number


class KvsApiError(Exception):
    """An error KVS answers with (its type is botocore's error code); also raised by the Python API."""

    def __init__(self, error_type: str, status: int, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.status = status
        self.message = message


def _not_found(what: str) -> KvsApiError:
    return KvsApiError("ResourceNotFoundException", 404, what)


def _invalid(message: str) -> KvsApiError:
    return KvsApiError("InvalidArgumentException", 400, message)


# --- feeding (the producer side) -------------------------------------------------------------------------


class Feed:
    """A background producer: ingests fragments when the media clock reaches each fragment's end.

    `stop()` hangs up (no more fragments); `wait()` blocks until every fragment is ingested or stopped.
    `first_fragment` is set as soon as the first one is ingested (Connect's StartFragmentNumber).
    """

    def __init__(
        self,
        emulator: KvsEmulator,
        stream_name: str,
        specs: Iterable[FragmentSpec],
        realtime: bool,
        on_ingest: Callable[[StoredFragment], None] | None = None,
    ) -> None:
        self.stream_name = stream_name
        self.ingested: list[StoredFragment] = []
        self.first_ingested = threading.Event()
        self.error: BaseException | None = None
        self._emulator = emulator
        self._specs = specs
        self._realtime = realtime
        self._on_ingest = on_ingest
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"kvs-feed-{stream_name}", daemon=True
        )
        self._thread.start()

    @property
    def first_fragment(self) -> StoredFragment | None:
        return self.ingested[0] if self.ingested else None

    def _run(self) -> None:
        clock = self._emulator.clock
        latency = self._emulator.config.server_latency_ms
        try:
            for spec in self._specs:
                if self._realtime:
                    end_ms = spec.timecode_ms + spec.duration_ms
                    while not self._stop.is_set() and (delay := clock.wall_seconds_until(end_ms)):
                        self._stop.wait(min(delay, 0.5))
                if self._stop.is_set():
                    break
                stored = self._emulator.ingest(
                    self.stream_name, spec, server_timestamp_ms=spec.timecode_ms + latency
                )
                self.ingested.append(stored)
                self.first_ingested.set()
                if self._on_ingest is not None:
                    self._on_ingest(stored)
        except BaseException as exc:  # surfaced by wait()
            self.error = exc
        finally:
            self._done.set()
            self.first_ingested.set()

    def stop(self) -> None:
        """Hang up: nothing more is ingested."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the feed is done; re-raise an error it hit. False on timeout."""
        finished = self._done.wait(timeout)
        if self.error is not None:
            raise self.error
        return finished

    @property
    def done(self) -> bool:
        return self._done.is_set()


# --- the emulator -----------------------------------------------------------------------------------------


class KvsEmulator:
    """The emulated KVS: streams, ingestion, faults, and the HTTP server boto3 talks to.

    Usage:
        with KvsEmulator(EmulatorConfig(speed=60)) as kvs:
            kvs.create_stream("s")
            kvs.ingest("s", spec)            # or kvs.feed("s", call.fragments())
            boto3.client("kinesis-video-media", endpoint_url=kvs.endpoint_url, ...)
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.clock = MediaClock(self.config.speed, self.config.origin_ms)
        self._streams: dict[str, Stream] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._feeds: list[Feed] = []

    # --- lifecycle ---
    def start(self) -> str:
        """Start serving on loopback; returns the endpoint URL."""
        if self._server is not None:
            return self.endpoint_url
        self._stopping.clear()
        self._server = _Server((self.config.host, self.config.port), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self.endpoint_url

    def stop(self) -> None:
        """Stop feeds, end open GetMedia responses, stop the server."""
        self._stopping.set()
        for feed in self._feeds:
            feed.stop()
        for stream in self.streams():
            with stream.cond:
                stream.cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("emulator not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- streams ---
    def create_stream(
        self,
        name: str,
        retention_hours: int = 24,
        retention_seconds: float | None = None,
    ) -> str:
        """Create a stream; returns its ARN. `retention_seconds` (media time) overrides the hours;
        retention 0 keeps everything (Connect's "no retention" live-only mode is not emulated)."""
        with self._lock:
            if name in self._streams:
                raise KvsApiError("ResourceInUseException", 400, f"stream {name} already exists")
            creation = self.clock.now_ms()
            if retention_seconds is not None:
                retention_ms: int | None = int(retention_seconds * 1000)
            else:
                retention_ms = retention_hours * 3_600_000 or None
            stream = Stream(
                name=name,
                arn=f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:stream/{name}/{creation}",
                creation_ms=creation,
                retention_hours=retention_hours,
                retention_ms=retention_ms,
                seed=len(self._streams) + 1,
            )
            self._streams[name] = stream
            return stream.arn

    def delete_stream(self, name: str) -> None:
        with self._lock:
            stream = self._streams.pop(name, None)
        if stream is None:
            raise _not_found(f"stream {name} not found")
        with stream.cond:
            stream.cond.notify_all()

    def streams(self) -> list[Stream]:
        with self._lock:
            return list(self._streams.values())

    def stream(self, name_or_arn: str) -> Stream:
        """A stream by name or ARN (raises the ResourceNotFoundException KVS would)."""
        with self._lock:
            if name_or_arn in self._streams:
                return self._streams[name_or_arn]
            for stream in self._streams.values():
                if stream.arn == name_or_arn:
                    return stream
        raise _not_found(f"The requested stream {name_or_arn} was not found")

    def _resolve(self, body: dict[str, Any]) -> Stream:
        key = body.get("StreamARN") or body.get("StreamName")
        if not key:
            raise _invalid("StreamName or StreamARN is required")
        return self.stream(str(key))

    # --- producer side ---
    def ingest(
        self, stream_name: str, spec: FragmentSpec, *, server_timestamp_ms: int | None = None
    ) -> StoredFragment:
        """Store one fragment now (assigns its number) and wake live GetMedia readers."""
        return self.ingest_parts(
            stream_name,
            encode_fragment_parts(spec),
            producer_timestamp_ms=spec.timecode_ms,
            duration_ms=spec.duration_ms,
            contact_id=spec.contact_id,
            server_timestamp_ms=server_timestamp_ms,
        )

    def ingest_parts(
        self,
        stream_name: str,
        parts: EncodedFragment,
        *,
        producer_timestamp_ms: int,
        duration_ms: int,
        contact_id: str,
        server_timestamp_ms: int | None = None,
    ) -> StoredFragment:
        """Store a fragment's own bytes as they are (a replayed capture's): KVS's tags are added
        per response, between `parts`' head and body and between its body and tail."""
        stream = self.stream(stream_name)
        with stream.cond:
            index = stream.next_index
            stored = StoredFragment(
                index=index,
                fragment_number=stream.fragment_number(index),
                producer_timestamp_ms=producer_timestamp_ms,
                server_timestamp_ms=(
                    self.clock.now_ms() if server_timestamp_ms is None else server_timestamp_ms
                ),
                duration_ms=duration_ms,
                contact_id=contact_id,
                parts=parts,
                ingested_at=time.monotonic(),
            )
            stream.fragments.append(stored)
            stream.by_number[stored.fragment_number] = index
            self._expire(stream)
            stream.cond.notify_all()
        return stored

    def feed(
        self,
        stream_name: str,
        specs: Iterable[FragmentSpec],
        *,
        realtime: bool = True,
        on_ingest: Callable[[StoredFragment], None] | None = None,
    ) -> Feed:
        """Ingest `specs` in the background, each when the media clock reaches its end (`realtime`),
        or as fast as possible. Put the call's start at `emulator.clock.now_ms()` for a live call."""
        self.stream(stream_name)
        feed = Feed(self, stream_name, specs, realtime, on_ingest)
        self._feeds.append(feed)
        return feed

    def fragments(self, stream_name: str) -> list[StoredFragment]:
        """The retained fragments of a stream, oldest first."""
        stream = self.stream(stream_name)
        with stream.cond:
            self._expire(stream)
            return list(stream.fragments)

    def _expire(self, stream: Stream) -> None:
        """Drop fragments older than the retention (caller holds stream.cond)."""
        if stream.retention_ms is None:
            return
        cutoff = self.clock.now_ms() - stream.retention_ms
        drop = 0
        while drop < len(stream.fragments) and stream.fragments[drop].server_timestamp_ms < cutoff:
            stream.by_number.pop(stream.fragments[drop].fragment_number, None)
            drop += 1
        if drop:
            del stream.fragments[:drop]
            stream.first_index += drop

    # --- faults and inspection ---
    def add_fault(self, stream_name: str, fault: Fault) -> None:
        """Queue a fault: each GetMedia call on the stream takes the next queued fault, if any."""
        stream = self.stream(stream_name)
        with stream.cond:
            stream.faults.append(fault)

    def deny_kms(self, stream_name: str, denied: bool = True) -> None:
        """Simulate a reader without kms:Decrypt on the stream's key (or give it back): every
        GetMedia response is error chunk 4500, "Access denied for the stream's KMS key"."""
        stream = self.stream(stream_name)
        with stream.cond:
            stream.kms_denied = denied

    def stats(self, stream_name: str) -> StreamStats:
        return self.stream(stream_name).stats

    def active_connections(self, stream_name: str) -> int:
        return self.stream(stream_name).stats.active_connections

    # --- GetMedia ---
    def _admit(self, stream: Stream) -> Fault | None:
        """Apply the per-stream call rate and connection limits; returns the fault for this call."""
        cfg = self.config
        with stream.cond:
            stream.stats.get_media_calls += 1
            self._rate_limit(stream, stream.calls)
            if (
                cfg.max_connections_per_stream is not None
                and stream.stats.active_connections >= cfg.max_connections_per_stream
            ):
                stream.stats.rejected_connections += 1
                raise KvsApiError(
                    "ConnectionLimitExceededException",
                    400,
                    "Kinesis Video Streams has throttled the request because you have exceeded the "
                    f"limit of allowed client connections ({cfg.max_connections_per_stream} "
                    f"on {stream.name})",
                )
            fault = stream.faults.popleft() if stream.faults else None
            if isinstance(fault, ApiError):
                raise KvsApiError(fault.error_type, fault.status, fault.message)
            stream.stats.active_connections += 1
            stream.stats.max_active_connections = max(
                stream.stats.max_active_connections, stream.stats.active_connections
            )
            return fault

    def _rate_limit(self, stream: Stream, calls: deque[float]) -> None:
        """At most `max_calls_per_second` calls a second per stream (caller holds stream.cond).
        GetMediaForFragmentList is counted apart at the same rate: "A client can call
        GetMediaForFragmentList up to five times per second per stream" (its API reference's
        earlier text, as the SDKs generated from it carry it; today's points to the quotas)."""
        cfg = self.config
        now = time.monotonic()
        while calls and calls[0] <= now - 1.0:
            calls.popleft()
        calls.append(now)
        if cfg.max_calls_per_second is not None and len(calls) > cfg.max_calls_per_second:
            stream.stats.rejected_rate += 1
            raise KvsApiError(
                "ClientLimitExceededException",
                400,
                "Kinesis Video Streams has throttled the request because you have exceeded "
                f"the limit of allowed client calls ({cfg.max_calls_per_second}/s on {stream.name})",
            )

    def _release(self, stream: Stream) -> None:
        with stream.cond:
            stream.stats.active_connections -= 1

    def _start_point(self, stream: Stream, selector: dict[str, Any]) -> _StartPoint:
        """Where a GetMedia response starts, for a StartSelector (an error chunk if it cannot)."""
        kind = selector.get("StartSelectorType")
        with stream.cond:
            self._expire(stream)
            if kind == "EARLIEST":
                return _StartPoint(stream.first_index)
            if kind == "NOW":
                return _StartPoint(stream.next_index)
            if kind in {"FRAGMENT_NUMBER", "CONTINUATION_TOKEN"}:
                key = "AfterFragmentNumber" if kind == "FRAGMENT_NUMBER" else "ContinuationToken"
                number = selector.get(key)
                if not number:
                    raise _invalid(f"StartSelector {kind} requires {key}")
                if kind == "FRAGMENT_NUMBER" and not str(number).isdigit():
                    raise _invalid(f"AfterFragmentNumber is not a fragment number: {number!r}")
                index = stream.by_number.get(str(number))
                if index is None:  # expired or never there
                    error = (*get_media_error(4000), str(number))
                    return _StartPoint(stream.next_index, error=error)
                inclusive = kind == "FRAGMENT_NUMBER" and self.config.fragment_number_inclusive
                return _StartPoint(index if inclusive else index + 1)
            if kind in {"PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP"}:
                if selector.get("StartTimestamp") is None:
                    raise _invalid(f"StartSelector {kind} requires StartTimestamp")
                at_ms = _timestamp_ms(selector["StartTimestamp"])
                server = kind == "SERVER_TIMESTAMP"
                # The chunk containing that time; if none yet, the first one ending after it.
                return _StartPoint(stream.first_index, not_ending_by_ms=at_ms, server_time=server)
        raise _invalid(f"unknown StartSelectorType {kind!r}")

    def _media(
        self,
        stream: Stream,
        start: _StartPoint,
        fault: Fault | None,
        client_gone: Callable[[], bool] = lambda: False,
    ) -> Iterator[bytes | None]:
        """Chunks of a live GetMedia response. Yields None to ask for an abrupt drop.

        While waiting for live data it checks `client_gone` every 100 ms, so a reader that closed its
        body frees its connection slot at once rather than at the idle timeout."""
        cfg = self.config
        opened = time.monotonic()
        deadline = opened + cfg.max_connection_seconds if cfg.max_connection_seconds else None
        last_data = opened
        cursor = start.index
        skip_until_ms = start.not_ending_by_ms
        delivered = 0
        cutting = False
        while True:
            with stream.cond:
                while cursor >= stream.next_index:
                    now = time.monotonic()
                    if self._stopping.is_set() or stream.name not in self._streams or client_gone():
                        return
                    if deadline is not None and now >= deadline:
                        cutting = True
                    idle_left = cfg.idle_timeout_seconds - (now - last_data)
                    if idle_left <= 0:
                        return
                    waits = [idle_left] + ([deadline - now] if deadline and not cutting else [])
                    stream.cond.wait(max(0.001, min([*waits, 0.1])))
                cursor = max(cursor, stream.first_index)  # expired while we read: skip ahead
                fragment = stream.get(cursor)
                millis_behind = max(0, self.clock.now_ms() - fragment.server_timestamp_ms)
            cursor += 1
            if skip_until_ms is not None:
                end = fragment.end_server_ms if start.server_time else fragment.end_producer_ms
                if end <= skip_until_ms:
                    continue
                skip_until_ms = None
            if isinstance(fault, ErrorChunk) and delivered == fault.after_fragments:
                yield encode_error_chunk(fault.code, fault.error_id)
                return
            data = fragment.chunk(millis_behind)
            if isinstance(fault, DropConnection) and delivered == fault.after_fragments:
                yield data[: fault.bytes_into_next]
                stream.stats.responses_cut += 1
                if not fault.clean:
                    yield None
                return
            if deadline is not None and (cutting or time.monotonic() >= deadline):
                yield data[: len(data) // 2]
                stream.stats.responses_cut += 1
                return
            pieces = max(1, cfg.write_pieces)
            step = -(-len(data) // pieces)
            for i in range(0, len(data), step):
                yield data[i : i + step]
            delivered += 1
            stream.stats.fragments_delivered += 1
            last_data = time.monotonic()

    # --- API operations (JSON in, JSON out) ---
    def api_create_stream(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("StreamName")
        if not name:
            raise _invalid("StreamName is required")
        return {
            "StreamARN": self.create_stream(
                str(name), retention_hours=int(body.get("DataRetentionInHours", 0))
            )
        }

    def api_describe_stream(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"StreamInfo": self._stream_info(self._resolve(body))}

    def api_list_streams(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"StreamInfoList": [self._stream_info(s) for s in self.streams()]}

    def api_delete_stream(self, body: dict[str, Any]) -> dict[str, Any]:
        self.delete_stream(self._resolve(body).name)
        return {}

    def _stream_info(self, stream: Stream) -> dict[str, Any]:
        return {
            "DeviceName": "",
            "StreamName": stream.name,
            "StreamARN": stream.arn,
            "MediaType": "",
            "KmsKeyId": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/aws/kinesisvideo",
            "Version": "1",
            "Status": "ACTIVE",
            "CreationTime": stream.creation_ms / 1000,
            "DataRetentionInHours": stream.retention_hours,
        }

    def api_get_data_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        self._resolve(body)
        if not body.get("APIName"):
            raise _invalid("APIName is required")
        return {"DataEndpoint": self.endpoint_url}

    def api_list_fragments(self, body: dict[str, Any]) -> dict[str, Any]:
        stream = self._resolve(body)
        selector = body.get("FragmentSelector")
        max_results = int(body.get("MaxResults", 100))
        offset = int(body.get("NextToken") or 0)
        with stream.cond:
            self._expire(stream)
            fragments = list(stream.fragments)
        if selector:
            server = selector.get("FragmentSelectorType") == "SERVER_TIMESTAMP"
            rng = selector.get("TimestampRange") or {}
            lo = _timestamp_ms(rng.get("StartTimestamp"))
            hi = _timestamp_ms(rng.get("EndTimestamp"))
            fragments = [
                f
                for f in fragments
                if lo <= (f.server_timestamp_ms if server else f.producer_timestamp_ms) <= hi
            ]
        page = fragments[offset : offset + max_results]
        result: dict[str, Any] = {
            "Fragments": [
                {
                    "FragmentNumber": f.fragment_number,
                    "FragmentSizeInBytes": f.size,
                    "ProducerTimestamp": f.producer_timestamp_ms / 1000,
                    "ServerTimestamp": f.server_timestamp_ms / 1000,
                    "FragmentLengthInMilliseconds": f.duration_ms,
                }
                for f in page
            ]
        }
        if offset + max_results < len(fragments):
            result["NextToken"] = str(offset + max_results)
        return result

    def fragment_list_media(self, body: dict[str, Any]) -> bytes:
        stream = self._resolve(body)
        numbers = body.get("Fragments") or []
        if not numbers:
            raise _invalid("Fragments must not be empty")
        malformed = [n for n in numbers if not str(n).isdigit()]
        if malformed:
            raise _invalid(f"Fragment numbers are invalid : [{', '.join(map(str, malformed))}]")
        chunks = []
        listed_before = time.monotonic() - self.config.list_delay_seconds
        with stream.cond:
            self._rate_limit(stream, stream.list_calls)
            self._expire(stream)
            for number in numbers:
                index = stream.by_number.get(str(number))
                if stream.kms_denied:
                    # Not documented for this API: the emulator answers as GetMedia does.
                    chunks.append(encode_error_chunk(*get_media_error(4500), str(number)))
                elif index is None or stream.get(index).ingested_at > listed_before:
                    # As KVS does (aws/aws-sdk-js#3217): HTTP 200 and an error chunk in its place.
                    chunks.append(encode_error_chunk(*FRAGMENT_LIST_NOT_FOUND, str(number)))
                else:
                    chunks.append(stream.get(index).chunk(None, with_continuation=False))
                    stream.stats.fragments_delivered += 1
        return b"".join(chunks)


# --- HTTP --------------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], kvs: KvsEmulator
    ) -> None:
        self.kvs = kvs
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the emulator's state, not its log."""

    def do_POST(self) -> None:
        kvs = self.server.kvs
        self._streaming = False
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError as exc:
                raise KvsApiError(
                    "SerializationException", 400, f"body is not JSON: {exc}"
                ) from None
            if not isinstance(body, dict):
                raise KvsApiError("SerializationException", 400, "body must be a JSON object")
            path = self.path.split("?", 1)[0]
            if path == "/getMedia":
                self._get_media(kvs, body)
                return
            if path == "/getMediaForFragmentList":
                self._send_media_bytes(kvs.fragment_list_media(body))
                return
            operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
                "/createStream": kvs.api_create_stream,
                "/describeStream": kvs.api_describe_stream,
                "/listStreams": kvs.api_list_streams,
                "/deleteStream": kvs.api_delete_stream,
                "/getDataEndpoint": kvs.api_get_data_endpoint,
                "/listFragments": kvs.api_list_fragments,
            }
            operation = operations.get(path)
            if operation is None:
                raise KvsApiError("UnknownOperationException", 404, f"no operation at {path}")
            self._send_json(200, operation(body))
        except KvsApiError as err:
            if self._streaming:
                self._abort()  # a response is under way: nothing else can be said on it
            else:
                self._send_json(
                    err.status, {"Message": err.message}, {"x-amzn-ErrorType": err.error_type}
                )
        except Exception as exc:  # a bug in the emulator: answer as AWS does, never hang the client
            if self._streaming:
                self._abort()
            else:
                message = f"emulator error: {exc!r}"
                self._send_json(500, {"Message": message}, {"x-amzn-ErrorType": "InternalFailure"})

    def _headers(self, extra: dict[str, str]) -> None:
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()

    def _send_json(
        self, status: int, payload: dict[str, Any], extra: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self._headers(
            {"Content-Type": "application/json", "Content-Length": str(len(data)), **(extra or {})}
        )
        self.wfile.write(data)

    def _send_media_bytes(self, data: bytes) -> None:
        self.send_response(200)
        self._headers({"Content-Type": CONTENT_TYPE, "Content-Length": str(len(data))})
        self.wfile.write(data)

    def _get_media(self, kvs: KvsEmulator, body: dict[str, Any]) -> None:
        stream = kvs._resolve(body)
        selector = body.get("StartSelector")
        if not isinstance(selector, dict):
            raise _invalid("StartSelector is required")
        start = kvs._start_point(stream, selector)  # invalid selectors fail before counting
        fault = kvs._admit(stream)
        try:
            self.send_response(200)
            self._headers(
                {
                    "Content-Type": CONTENT_TYPE,
                    "Transfer-Encoding": "chunked",
                    "Connection": "close",
                }
            )
            self.close_connection = True
            self._streaming = True
            if stream.kms_denied:
                self._chunk(encode_error_chunk(*get_media_error(4500)))
            elif start.error is not None:
                self._chunk(encode_error_chunk(*start.error))
            else:
                for data in kvs._media(stream, start, fault, self._client_gone):
                    if data is None:
                        self._abort()
                        return
                    if data:
                        self._chunk(data)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client went away: nothing to tell it
        finally:
            kvs._release(stream)

    def _client_gone(self) -> bool:
        """True once the client closed its side (readable with nothing to read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _abort(self) -> None:
        self.close_connection = True
        try:
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main(argv: list[str] | None = None) -> None:
    """`python -m callrec_local.kvs_emulator`: serve an emulator until interrupted (manual poking)."""
    import argparse  # noqa: PLC0415 (only for the command line)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=4567)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--idle-timeout", type=float, default=3.0)
    parser.add_argument("--max-connection-seconds", type=float, default=None)
    parser.add_argument("--stream", action="append", default=[], help="create this stream")
    args = parser.parse_args(argv)
    config = EmulatorConfig(
        port=args.port,
        speed=args.speed,
        idle_timeout_seconds=args.idle_timeout,
        max_connection_seconds=args.max_connection_seconds,
    )
    with KvsEmulator(config) as kvs:
        for name in args.stream:
            kvs.create_stream(name)
        print(kvs.endpoint_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
