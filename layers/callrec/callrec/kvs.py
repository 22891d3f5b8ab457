"""Kinesis Video Streams access for the recorder: data endpoints, GetMedia, throttling.

GetDataEndpoint is asked once per stream and cached (AWS suggests refreshing it every
45 minutes, which is done). GetMedia is limited to 5 calls a second and 3 connections per
stream: `ClientLimitExceededException` and `ConnectionLimitExceededException` are retried
with jittered exponential backoff until a deadline. Errors that retrying cannot mend are
translated into this module's vocabulary, and so is a response body that breaks mid-read
(`ConnectionBroken`). It does not parse the media (mkv.py) nor decide where to read from
(reading.py).
"""

from __future__ import annotations

import contextlib
import http.client
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError as Urllib3Error

from callrec.errors import CallrecError

if TYPE_CHECKING:
    from mypy_boto3_kinesis_video_archived_media import KinesisVideoArchivedMediaClient
    from mypy_boto3_kinesis_video_media import KinesisVideoMediaClient
    from mypy_boto3_kinesisvideo import KinesisVideoClient

ENDPOINT_TTL_S = 45 * 60
THROTTLING = frozenset({"ClientLimitExceededException", "ConnectionLimitExceededException"})
BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 5.0

# botocore must not retry GetMedia on its own (this module does, against its deadline); a
# live connection may be quiet for a few seconds between fragments before KVS ends it.
MEDIA_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"total_max_attempts": 1})
CONTROL_CONFIG = Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard"})


class MediaError(CallrecError):
    """KVS refused or failed a request for a stream's media."""


class StreamGone(MediaError):
    """The stream does not exist (or no longer does)."""


class MediaAccessDenied(MediaError):
    """The recorder may not read the stream (IAM or the KMS key)."""


class SelectorRejected(MediaError):
    """KVS rejected the start selector (e.g. an unknown fragment or continuation token)."""


class Throttled(MediaError):
    """KVS kept throttling GetMedia until the deadline."""


class ConnectionBroken(MediaError):
    """A GetMedia response broke mid-read (reset, timed out, truncated chunked encoding)."""


# What reading a response body can raise when its connection breaks: botocore's
# ResponseStreamingError and ReadTimeoutError (BotoCoreError), urllib3's ProtocolError when
# it is not wrapped, http.client's IncompleteRead, and a reset socket (OSError).
_BROKEN = (BotoCoreError, Urllib3Error, http.client.HTTPException, OSError)


@dataclass(frozen=True, slots=True)
class StartSelector:
    """Where a GetMedia response starts. Build with the class methods."""

    kind: str
    value: str | float | None = None

    @classmethod
    def producer_timestamp(cls, epoch_seconds: float) -> StartSelector:
        """The fragment containing this producer time (and all after it)."""
        return cls("PRODUCER_TIMESTAMP", epoch_seconds)

    @classmethod
    def continuation_token(cls, token: str) -> StartSelector:
        """Right after the fragment whose chunk carried this token."""
        return cls("CONTINUATION_TOKEN", token)

    @classmethod
    def after_fragment(cls, fragment_number: str) -> StartSelector:
        """Right after this fragment (KVS starts with the *next* one)."""
        return cls("FRAGMENT_NUMBER", fragment_number)

    def to_api(self) -> dict[str, Any]:
        selector: dict[str, Any] = {"StartSelectorType": self.kind}
        if self.kind in {"PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP"}:
            selector["StartTimestamp"] = self.value
        elif self.kind == "CONTINUATION_TOKEN":
            selector["ContinuationToken"] = self.value
        elif self.kind == "FRAGMENT_NUMBER":
            selector["AfterFragmentNumber"] = self.value
        return selector


class Readable(Protocol):
    """What the reader needs of a response body (botocore's StreamingBody has it)."""

    def read(self, amt: int | None = ...) -> bytes: ...

    def close(self) -> None: ...


class _Body:
    """A GetMedia response body read as its bytes arrive, a broken connection raising
    `ConnectionBroken` whatever raised it.

    botocore's `StreamingBody.read(amt)` waits until `amt` bytes have come or the response has
    ended. A live stream brings a fragment a second (about 32 KB of Connect audio), so a 64 KB
    read would hold each fragment back until the next one, and the call's last fragment until
    KVS ends the idle response 3 s later: the recorder would hear of the hang-up's silence 3 s
    late. urllib3's `read1` (the body's raw stream) returns as soon as any data is there. A body
    without one (a test's BytesIO) is read as it is.
    """

    def __init__(self, body: Readable, stream_arn: str) -> None:
        self._body = body
        self._stream_arn = stream_arn
        raw = getattr(body, "_raw_stream", None)
        self._read1: Callable[[int], bytes] | None = getattr(raw, "read1", None)

    def read(self, amt: int | None = None) -> bytes:
        try:
            if amt is not None and self._read1 is not None:
                return self._read1(amt)
            return self._body.read(amt)
        except _BROKEN as exc:
            raise ConnectionBroken(
                f"stream {self._stream_arn}: the GetMedia response broke mid-read: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def close(self) -> None:
        with contextlib.suppress(*_BROKEN):
            self._body.close()


class MediaSource:
    """GetMedia for one recorder process, with cached data endpoints per stream."""

    def __init__(
        self,
        control: KinesisVideoClient | None = None,
        *,
        media_client: Callable[[str], KinesisVideoMediaClient] | None = None,
        archive_client: Callable[[str], KinesisVideoArchivedMediaClient] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._control = control or boto3.client("kinesisvideo", config=CONTROL_CONFIG)
        self._media_client = media_client or _media_client
        self._archive_client = archive_client or _archive_client
        self._clock = clock
        self._sleep = sleep
        self._endpoints: dict[tuple[str, str], tuple[str, float]] = {}
        self._clients: dict[str, KinesisVideoMediaClient] = {}
        self._archive_clients: dict[str, KinesisVideoArchivedMediaClient] = {}

    def endpoint(self, stream_arn: str, api: str = "GET_MEDIA") -> str:
        """A data endpoint of a stream for one API, cached for 45 minutes."""
        cached = self._endpoints.get((stream_arn, api))
        if cached and self._clock() - cached[1] < ENDPOINT_TTL_S:
            return cached[0]
        try:
            url = self._control.get_data_endpoint(StreamARN=stream_arn, APIName=api)[  # type: ignore[arg-type]
                "DataEndpoint"
            ]
        except ClientError as exc:
            raise _translate(exc, stream_arn, "GetDataEndpoint") from exc
        except BotoCoreError as exc:
            raise MediaError(f"stream {stream_arn}: GetDataEndpoint failed: {exc}") from exc
        self._endpoints[(stream_arn, api)] = (url, self._clock())
        return url

    def get_fragment(self, stream_arn: str, fragment_number: str, *, deadline: float) -> Readable:
        """GetMediaForFragmentList for one fragment; retry throttling until `deadline`. A
        fragment KVS does not hold comes back as an error chunk in its place."""

        def prepare(endpoint: str) -> Callable[[], Mapping[str, Any]]:
            client = self._archive_clients.get(endpoint)
            if client is None:
                client = self._archive_clients[endpoint] = self._archive_client(endpoint)
            return lambda: client.get_media_for_fragment_list(
                StreamARN=stream_arn, Fragments=[fragment_number]
            )

        return self._open(
            stream_arn, "GET_MEDIA_FOR_FRAGMENT_LIST", "GetMediaForFragmentList", prepare, deadline
        )

    def get_media(self, stream_arn: str, selector: StartSelector, *, deadline: float) -> Readable:
        """Open a GetMedia response; retry throttling with backoff until `deadline`. Reading
        the body raises `ConnectionBroken` if its connection breaks."""

        def prepare(endpoint: str) -> Callable[[], Mapping[str, Any]]:
            client = self._clients.get(endpoint)
            if client is None:
                client = self._clients[endpoint] = self._media_client(endpoint)
            return lambda: client.get_media(StreamARN=stream_arn, StartSelector=selector.to_api())  # type: ignore[arg-type]

        return self._open(stream_arn, "GET_MEDIA", "GetMedia", prepare, deadline)

    def _open(
        self,
        stream_arn: str,
        api: str,
        operation: str,
        prepare: Callable[[str], Callable[[], Mapping[str, Any]]],
        deadline: float,
    ) -> Readable:
        """One of the media APIs on the stream's data endpoint for `api` (`prepare` gives the
        request to that endpoint): its body, read as it arrives; throttling retried with
        backoff until `deadline`."""
        attempt = 0
        while True:
            attempt += 1
            send = prepare(self.endpoint(stream_arn, api))
            try:
                response = send()
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in THROTTLING:
                    raise _translate(exc, stream_arn, operation) from exc
                failure: Exception = exc
            except BotoCoreError as exc:
                # A dropped or refused connection: the endpoint may have moved.
                self._endpoints.pop((stream_arn, api), None)
                failure = exc
            else:
                return _Body(response["Payload"], stream_arn)
            self._back_off(attempt, failure, deadline, stream_arn, operation)

    def _back_off(
        self, attempt: int, failure: Exception, deadline: float, stream_arn: str, operation: str
    ) -> None:
        pause = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1)) * (
            0.5 + random.random() / 2  # noqa: S311 - jitter, not cryptography
        )
        if self._clock() + pause > deadline:
            raise Throttled(
                f"stream {stream_arn}: {operation} failed {attempt} time(s) until the "
                f"deadline: {failure}"
            ) from failure
        self._sleep(pause)


def _media_client(endpoint: str) -> KinesisVideoMediaClient:
    return boto3.client("kinesis-video-media", endpoint_url=endpoint, config=MEDIA_CONFIG)


def _archive_client(endpoint: str) -> KinesisVideoArchivedMediaClient:
    return boto3.client("kinesis-video-archived-media", endpoint_url=endpoint, config=MEDIA_CONFIG)


def _translate(exc: ClientError, stream_arn: str, operation: str) -> MediaError:
    code = exc.response.get("Error", {}).get("Code", "")
    message = f"stream {stream_arn}: {operation} failed: {code}: {exc}"
    if code == "ResourceNotFoundException":
        return StreamGone(message)
    if code in {"NotAuthorizedException", "AccessDeniedException", "KMSAccessDeniedException"}:
        return MediaAccessDenied(message)
    if code == "InvalidArgumentException":
        return SelectorRejected(message)
    return MediaError(message)
