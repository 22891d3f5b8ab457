"""Reading one contact's stream, one GetMedia response at a time, from the right place.

`StreamReader` keeps where the next response starts (right after the last complete fragment,
by its continuation token; the stream's earliest fragment once media was lost; the call's
start), opens GetMedia there and hands each complete fragment of the response to its
caller. What KVS sends instead of fragments is dealt with here: error chunks by their
documented ids, and a connection that breaks mid-read (a cut: the next response resumes
after the last complete fragment, in the same invocation).

Deliberately not here: what a fragment means for the recording (the contact gate, the
aligner, checkpoints: recorder.py), EBML parsing (fragments.py, mkv.py), boto3 (kvs.py).
"""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools import Logger

from callrec.fragments import ErrorChunk, Fragment, FragmentReader
from callrec.kvs import (
    ConnectionBroken,
    MediaAccessDenied,
    MediaError,
    MediaSource,
    SelectorRejected,
    StartSelector,
)

logger = Logger(child=True)

READ_CHUNK = 64 * 1024
# Connect's StartTimestamp and the first fragment's producer timestamp come from different
# clocks; starting a little earlier costs nothing (the contact gate skips what is not ours).
FIRST_READ_LEAD_S = 2.0

# The error chunks of GetMedia, by id. The GetMedia reference, on the response's Payload
# (https://docs.aws.amazon.com/kinesisvideostreams/latest/dg/API_dataplane_GetMedia.html):
# "The following tags will be present if an error occurs: AWS_KINESISVIDEO_ERROR_CODE -
# String description of an error that caused GetMedia to stop. AWS_KINESISVIDEO_ERROR_ID:
# Integer code of the error. The error codes are as follows: 3002 - Error writing to the
# stream; 4000 - Requested fragment is not found; 4500 - Access denied for the stream's KMS
# key; 4501 - Stream's KMS key is disabled; 4502 - Validation error on the stream's KMS key;
# 4503 - KMS key specified in the stream is unavailable; 4504 - Invalid usage of the KMS key
# specified in the stream; 4505 - Invalid state of the KMS key specified in the stream;
# 4506 - Unable to find the KMS key specified in the stream; 5000 - Internal error".
ERROR_FRAGMENT_NOT_FOUND = 4000
KMS_ERRORS = range(4500, 4507)
# Any other error chunk ends the response like a cut; this many in a row, with no fragment
# between them, and the recording stops (a stream that only ever answers with errors).
MAX_ERRORS_IN_A_ROW = 3


def error_id(chunk: ErrorChunk) -> int | None:
    """The chunk's integer id (`AWS_KINESISVIDEO_ERROR_ID`); the code when it is an integer
    and the id is missing; None when neither is."""
    for value in (chunk.error_id, chunk.code):
        if value is not None and value.strip().isdigit():
            return int(value)
    return None


class StreamReader:
    """Where a recording reads its stream from, and one GetMedia response at a time.

    `token` is the continuation token of the last complete fragment handed out (the
    caller checkpoints it); it is advanced before each fragment is handed to the caller, so
    a checkpoint taken while handling a fragment resumes after it.
    """

    def __init__(
        self,
        media: MediaSource,
        stream_arn: str,
        *,
        start_timestamp_ms: int,
        token: str | None,
        kms_key_arn: str | None,
        deadline: Callable[[], float],
        check_time: Callable[[], None],
        on_media_lost: Callable[[str], None],
    ) -> None:
        self.media = media
        self.stream_arn = stream_arn
        self.start_timestamp_ms = start_timestamp_ms
        self.token = token
        self.kms_key_arn = kms_key_arn
        self.from_earliest = False
        self.read_lag_ms: int | None = None
        self.cuts = 0
        self._deadline = deadline
        self._check_time = check_time
        self._on_media_lost = on_media_lost
        self._errors_in_a_row = 0
        self._lost: set[str] = set()

    def selector(self) -> StartSelector:
        """Where the next response starts."""
        if self.token is not None:
            return StartSelector.continuation_token(self.token)
        if self.from_earliest:
            return StartSelector("EARLIEST")
        # Connect's StartFragmentNumber is the contact's first fragment, and FRAGMENT_NUMBER
        # would start *after* it: start by time, a little early, and let the gate skip.
        return StartSelector.producer_timestamp(self.start_timestamp_ms / 1000 - FIRST_READ_LEAD_S)

    def read_response(self, on_fragment: Callable[[Fragment], None]) -> int:
        """Read one GetMedia response to its end, an error chunk or a broken connection;
        returns how many complete fragments it handed to `on_fragment`.

        Any end may be a cut: an incomplete last fragment is dropped, and the next response
        resumes after the last complete one. Raises `MediaError` for what reconnecting cannot
        mend (a KMS error chunk, too many error chunks in a row, a stream that is gone).
        """
        where = self.selector()
        try:
            body = self.media.get_media(self.stream_arn, where, deadline=self._deadline())
        except SelectorRejected:
            if self.token is None:
                raise
            # The fragment we stopped after is gone (retention): take what still exists.
            self._media_lost(f"resume token {self.token} rejected", key=f"token {self.token}")
            return 0
        reader = FragmentReader()
        count = 0
        try:
            while True:
                try:
                    chunk = body.read(READ_CHUNK)
                except ConnectionBroken as exc:
                    self.cuts += 1
                    logger.warning(
                        "GetMedia connection broken: resuming after the last complete fragment",
                        detail=str(exc),
                        after=self.token,
                    )
                    return count
                for event in reader.feed(chunk) if chunk else reader.close():
                    if isinstance(event, ErrorChunk):
                        # "an error that caused GetMedia to stop": nothing follows it.
                        self._on_error(event, where)
                        return count
                    self._errors_in_a_row = 0
                    self.token = event.continuation_token or event.fragment_number or self.token
                    lag = event.millis_behind_now
                    if lag is not None and lag.isdigit():
                        self.read_lag_ms = int(lag)
                    count += 1
                    on_fragment(event)
                if not chunk:
                    return count
                self._check_time()
        finally:
            body.close()

    def _on_error(self, chunk: ErrorChunk, where: StartSelector) -> None:
        number = error_id(chunk)
        described = f"KVS error chunk {number if number is not None else '?'} ({chunk.code})"
        if number == ERROR_FRAGMENT_NOT_FOUND:
            self._media_lost(
                f"{described} reading from {where.kind} {where.value or ''}".strip(),
                key=f"{where.kind} {where.value}",
            )
            return
        if number in KMS_ERRORS:
            key = self.kms_key_arn or "the key named by the KvsKmsKeyArn parameter"
            raise MediaAccessDenied(
                f"stream {self.stream_arn}: {described}: the recorder cannot decrypt the "
                f"stream's media with KMS key {key}. Check that it is the key the Connect "
                "instance encrypts its streams with (KvsKmsKeyArn), that it is enabled, and "
                "that its key policy allows the recorder's role kms:Decrypt"
            )
        self._errors_in_a_row += 1
        self.cuts += 1
        logger.warning(
            "KVS error chunk: resuming after the last complete fragment",
            code=chunk.code,
            error_id=chunk.error_id,
            in_a_row=self._errors_in_a_row,
        )
        if self._errors_in_a_row >= MAX_ERRORS_IN_A_ROW:
            raise MediaError(
                f"stream {self.stream_arn}: {described} {self._errors_in_a_row} times in a row "
                f"without a fragment between them (resuming after fragment {self.token})"
            )

    def _media_lost(self, detail: str, *, key: str) -> None:
        """Resume from the earliest fragment the stream still holds; say so once per event."""
        self.token, self.from_earliest = None, True
        if key not in self._lost:
            self._lost.add(key)
            self._on_media_lost(detail)
