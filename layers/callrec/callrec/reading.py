"""Reading one contact's stream, one GetMedia response at a time, from the right place.

`StreamReader` keeps where the next response starts (right after the last complete fragment,
by its continuation token; the stream's earliest fragment once media was lost; the call's
first fragment, by the number Connect gave), opens GetMedia there and hands each complete
fragment of the response to its caller. What KVS sends instead of fragments is dealt with here: error chunks by their
documented ids, and a connection that breaks mid-read (a cut: the next response resumes
after the last complete fragment, in the same invocation).

Deliberately not here: what a fragment means for the recording (the contact gate, the
aligner, checkpoints: recorder.py), EBML parsing (fragments.py, mkv.py), boto3 (kvs.py).
"""

from __future__ import annotations

import time
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
# The call's first fragment is read by its number (Connect's StartFragmentNumber) with
# GetMediaForFragmentList, then GetMedia goes on from the chunk after it. The StartSelector
# reference (https://docs.aws.amazon.com/kinesisvideostreams/latest/dg/API_dataplane_StartSelector.html):
# "FRAGMENT_NUMBER - Start with the chunk after a specific fragment. You must also specify
# the AfterFragmentNumber parameter." (Older text said "from where you want the GetMedia API
# to start returning the fragments"; were the fragment served again, the aligner drops it as
# a duplicate.) No clock is assumed: Connect's StartTimestamp and the fragments' producer
# timestamps need not agree.
# A fragment just ingested may not be listed yet: ask a few times, this far apart.
FIRST_FRAGMENT_ATTEMPTS = 4
FIRST_FRAGMENT_RETRY_S = 0.5
# Without a StartFragmentNumber (a start record of an older version), start by time, a
# little early (the contact gate skips what is not ours).
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
        start_fragment_number: str | None,
        token: str | None,
        after_fragment: str | None,
        kms_key_arn: str | None,
        deadline: Callable[[], float],
        check_time: Callable[[], None],
        on_media_lost: Callable[[str], None],
        sleep: Callable[[float], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.media = media
        self.stream_arn = stream_arn
        self.start_timestamp_ms = start_timestamp_ms
        self.start_fragment_number = start_fragment_number
        self.token = token
        # The fragment read by its number (the call's first): GetMedia goes on after it.
        self.after_fragment = after_fragment
        self._sleep = sleep
        self._clock = clock
        # When the bytes of the fragment last handed out arrived (epoch seconds). A fragment is
        # known to be complete only when the next one begins or the response ends (KVS ends an
        # idle one after 3 s): the stream's silence is timed from its bytes' arrival.
        self.arrived_at = clock()
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
        if self.after_fragment is not None:
            return StartSelector.after_fragment(self.after_fragment)
        return StartSelector.producer_timestamp(self.start_timestamp_ms / 1000 - FIRST_READ_LEAD_S)

    def _read_first_fragment(self, number: str, on_fragment: Callable[[Fragment], None]) -> int:
        """The call's first fragment by its number; 1 if it was handed out, else 0 (it is
        gone: the reading goes on from the earliest fragment the stream holds)."""
        for attempt in range(FIRST_FRAGMENT_ATTEMPTS):
            if attempt:
                self._sleep(FIRST_FRAGMENT_RETRY_S)
            body = self.media.get_fragment(self.stream_arn, number, deadline=self._deadline())
            try:
                events = list(FragmentReader().read_stream(body, READ_CHUNK))
            except ConnectionBroken as exc:
                logger.warning("GetMediaForFragmentList broken", detail=str(exc))
                continue
            finally:
                body.close()
            for event in events:
                if isinstance(event, ErrorChunk):
                    self._check_kms(event)
            fragment = next((e for e in events if isinstance(e, Fragment)), None)
            self.arrived_at = self._clock()
            if fragment is not None and fragment.fragment_number == number:
                self.after_fragment = number
                on_fragment(fragment)
                return 1
        self._media_lost(
            f"the call's first fragment {number} was not found by GetMediaForFragmentList "
            f"in {FIRST_FRAGMENT_ATTEMPTS} attempts",
            key=f"first {number}",
        )
        return 0

    def read_response(self, on_fragment: Callable[[Fragment], None]) -> int:
        """Read one GetMedia response to its end, an error chunk or a broken connection;
        returns how many complete fragments it handed to `on_fragment`.

        Any end may be a cut: an incomplete last fragment is dropped, and the next response
        resumes after the last complete one. Raises `MediaError` for what reconnecting cannot
        mend (a KMS error chunk, too many error chunks in a row, a stream that is gone).
        """
        first = self.start_fragment_number
        if first and self.token is None and self.after_fragment is None and not self.from_earliest:
            return self._read_first_fragment(first, on_fragment)
        where = self.selector()
        try:
            body = self.media.get_media(self.stream_arn, where, deadline=self._deadline())
        except SelectorRejected:
            if where.kind not in {"CONTINUATION_TOKEN", "FRAGMENT_NUMBER"}:
                raise
            # The fragment we stopped after is gone (retention): take what still exists.
            self._media_lost(
                f"resume {where.kind} {where.value} rejected", key=f"{where.kind} {where.value}"
            )
            return 0
        reader = FragmentReader()
        count = 0
        arrived = self._clock()
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
                if chunk:
                    arrived = self._clock()
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
                    self.arrived_at = arrived
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
        self._check_kms(chunk)
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

    def _check_kms(self, chunk: ErrorChunk) -> None:
        """Raise `MediaAccessDenied` for a KMS error chunk (4500-4506)."""
        number = error_id(chunk)
        if number not in KMS_ERRORS:
            return
        key = self.kms_key_arn or "the key named by the KvsKmsKeyArn parameter"
        raise MediaAccessDenied(
            f"stream {self.stream_arn}: KVS error chunk {number} ({chunk.code}): the recorder "
            f"cannot decrypt the stream's media with KMS key {key}. Check that it is the key "
            "the Connect instance encrypts its streams with (KvsKmsKeyArn), that it is "
            "enabled, and that its key policy allows the recorder's role kms:Decrypt"
        )

    def _media_lost(self, detail: str, *, key: str) -> None:
        """Resume from the earliest fragment the stream still holds; say so once per event."""
        self.token, self.from_earliest = None, True
        if key not in self._lost:
            self._lost.add(key)
            self._on_media_lost(detail)
