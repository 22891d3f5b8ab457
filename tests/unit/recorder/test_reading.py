"""What GetMedia sends besides fragments: error chunks by their documented ids, and a
connection that breaks mid-read (no network: a fake media source serves byte strings)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pytest
from botocore.exceptions import ReadTimeoutError, ResponseStreamingError
from urllib3.exceptions import ProtocolError

from callrec.fragments import Fragment
from callrec.kvs import (
    ConnectionBroken,
    MediaAccessDenied,
    MediaError,
    SelectorRejected,
    StartSelector,
    _Body,
)
from callrec.reading import (
    FIRST_FRAGMENT_ATTEMPTS,
    FIRST_FRAGMENT_RETRY_S,
    MAX_ERRORS_IN_A_ROW,
    StreamReader,
)
from callrec_local import producer as p
from callrec_local.kvs_emulator import get_media_error

ARN = "arn:aws:kinesisvideo:us-east-1:123456789012:stream/s/1"
KEY = "arn:aws:kms:us-east-1:123456789012:key/0b0c0d0e-1111-2222-3333-444455556666"
START_MS = 1_800_000_000_000
CALL = p.ConnectCall("contact-1", "instance", START_MS, *p.conversation(5.0, 3), hangup_ms=5000)
SPECS = list(CALL.fragments())
NUMBERS = [p.fragment_number(0, i) for i in range(len(SPECS))]


def capture(first: int, last: int, error: int | None = None) -> bytes:
    """Fragments [first, last) as KVS numbers them, then a documented error chunk if asked."""
    body = b"".join(
        p.encode_fragment(
            spec,
            p.KvsTags(
                fragment_number=NUMBERS[i],
                server_timestamp_ms=spec.timecode_ms + 170,
                producer_timestamp_ms=spec.timecode_ms,
                millis_behind_now=0,
                continuation_token=NUMBERS[i],
            ),
        )
        for i, spec in enumerate(SPECS)
        if first <= i < last
    )
    if error is not None:
        body += p.encode_error_chunk(*get_media_error(error))
    return body


class Breaking(io.BytesIO):
    """A body whose connection breaks after its bytes, as botocore reports it."""

    def __init__(self, data: bytes, error: Exception) -> None:
        super().__init__(data)
        self.error = error

    def read(self, amt: int | None = -1) -> bytes:
        chunk = super().read(amt)
        if not chunk:
            raise self.error
        return chunk


class Rejecting:
    """GetMedia rejects its first selector (as KVS does a fragment it no longer holds)."""

    def __init__(self, media: FakeMedia) -> None:
        self.media = media
        self.rejected = False

    def get_fragment(self, stream_arn: str, fragment_number: str, *, deadline: float) -> _Body:
        return self.media.get_fragment(stream_arn, fragment_number, deadline=deadline)

    def get_media(self, stream_arn: str, selector: StartSelector, *, deadline: float) -> _Body:
        if not self.rejected:
            self.rejected = True
            raise SelectorRejected(f"stream {stream_arn}: InvalidArgumentException")
        return self.media.get_media(stream_arn, selector, deadline=deadline)


class FakeMedia:
    def __init__(self, bodies: Sequence[bytes | io.BytesIO], listed: Sequence[bytes] = ()) -> None:
        self.bodies = list(bodies)
        self.listed = list(listed)
        self.selectors: list[StartSelector] = []
        self.fragments_asked: list[str] = []

    def get_fragment(self, stream_arn: str, fragment_number: str, *, deadline: float) -> _Body:
        self.fragments_asked.append(fragment_number)
        return _Body(io.BytesIO(self.listed.pop(0)), stream_arn)

    def get_media(self, stream_arn: str, selector: StartSelector, *, deadline: float) -> _Body:
        self.selectors.append(selector)
        body = self.bodies.pop(0)
        return _Body(io.BytesIO(body) if isinstance(body, bytes) else body, stream_arn)


def reader(
    media: FakeMedia,
    lost: list[str],
    token: str | None = None,
    first: str | None = None,
    sleeps: list[float] | None = None,
) -> StreamReader:
    return StreamReader(
        media,  # type: ignore[arg-type]
        ARN,
        start_timestamp_ms=START_MS,
        start_fragment_number=first,
        token=token,
        after_fragment=None,
        kms_key_arn=KEY,
        deadline=lambda: 1e9,
        check_time=lambda: None,
        on_media_lost=lost.append,
        sleep=(sleeps if sleeps is not None else []).append,
    )


def listed(index: int) -> bytes:
    """GetMediaForFragmentList's body for one fragment (no continuation token)."""
    spec = SPECS[index]
    return p.encode_fragment(
        spec,
        p.KvsTags(
            fragment_number=NUMBERS[index],
            server_timestamp_ms=spec.timecode_ms + 170,
            producer_timestamp_ms=spec.timecode_ms,
        ),
    )


NOT_LISTED = p.encode_error_chunk("FRAGMENT_NOT_FOUND", "3000", NUMBERS[0])


def test_the_first_fragment_is_read_by_its_number_then_get_media_goes_on_after_it() -> None:
    # Given Connect's StartFragmentNumber, a fragment not listed at the first attempt (just
    # ingested) and listed at the second
    media = FakeMedia([capture(1, 4)], listed=[NOT_LISTED, listed(0)])
    sleeps: list[float] = []
    r = reader(media, [], first=NUMBERS[0], sleeps=sleeps)

    # When two responses are read
    counts, numbers = read_all(r, 2)

    # Then the first fragment came by its number, after one pause, and GetMedia started
    # after it: no clock was consulted
    assert counts == [1, 3]
    assert numbers == NUMBERS[:4]
    assert media.fragments_asked == [NUMBERS[0], NUMBERS[0]]
    assert sleeps == [FIRST_FRAGMENT_RETRY_S]
    assert media.selectors == [StartSelector.after_fragment(NUMBERS[0])]
    assert r.token == NUMBERS[3]


def test_a_first_fragment_never_listed_is_lost_media_read_from_the_earliest() -> None:
    media = FakeMedia([capture(2, 4)], listed=[NOT_LISTED] * FIRST_FRAGMENT_ATTEMPTS)
    lost: list[str] = []
    r = reader(media, lost, first=NUMBERS[0])

    counts, numbers = read_all(r, 2)

    assert counts == [0, 2]
    assert numbers == NUMBERS[2:4]
    assert [s.kind for s in media.selectors] == ["EARLIEST"]
    assert len(lost) == 1
    assert NUMBERS[0] in lost[0]


def test_a_rejected_start_after_the_first_fragment_is_lost_media() -> None:
    # Given the first fragment read by its number, and GetMedia rejecting the fragment after
    # it (gone by then)
    media = FakeMedia([capture(3, 5)], listed=[listed(0)])
    lost: list[str] = []
    r = reader(Rejecting(media), lost, first=NUMBERS[0])  # type: ignore[arg-type]

    # When three responses are read
    counts, numbers = read_all(r, 3)

    # Then the reading goes on from the earliest fragment, with a warning
    assert counts == [1, 0, 2]
    assert numbers == [NUMBERS[0], *NUMBERS[3:5]]
    assert [s.kind for s in media.selectors] == ["EARLIEST"]
    assert len(lost) == 1
    assert "FRAGMENT_NUMBER" in lost[0]


def test_a_kms_error_listing_the_first_fragment_stops_the_recording() -> None:
    media = FakeMedia([], listed=[p.encode_error_chunk(*get_media_error(4500))])
    with pytest.raises(MediaAccessDenied, match="kms:Decrypt"):
        reader(media, [], first=NUMBERS[0]).read_response(lambda f: None)


def read_all(r: StreamReader, responses: int) -> tuple[list[int], list[str | None]]:
    got: list[Fragment] = []
    counts = [r.read_response(got.append) for _ in range(responses)]
    return counts, [f.fragment_number for f in got]


def test_fragment_not_found_resumes_from_the_earliest_and_warns_once_per_event() -> None:
    # Given a resume token whose fragment is gone: KVS answers 4000, then serves what still
    # exists from EARLIEST
    media = FakeMedia([capture(0, 0, error=4000), capture(2, 4)])
    lost: list[str] = []
    r = reader(media, lost, token=NUMBERS[0])

    # When two responses are read
    counts, numbers = read_all(r, 2)

    # Then the error chunk is no fragment, a warning names it, and the reading went on from
    # the earliest fragment the stream holds
    assert counts == [0, 2]
    assert numbers == NUMBERS[2:4]
    assert [s.kind for s in media.selectors] == ["CONTINUATION_TOKEN", "EARLIEST"]
    assert len(lost) == 1
    assert "4000 (Requested fragment is not found)" in lost[0]
    assert r.token == NUMBERS[3]


def test_the_same_lost_media_is_reported_once() -> None:
    # Given KVS answering 4000 twice for the same resume token
    media = FakeMedia([capture(0, 0, error=4000), capture(0, 0, error=4000)])
    lost: list[str] = []
    r = reader(media, lost, token=NUMBERS[0])

    # When both are read from the same place
    r.read_response(lambda f: None)
    r.token = NUMBERS[0]
    r.read_response(lambda f: None)

    # Then one warning
    assert len(lost) == 1


@pytest.mark.parametrize("error", [4500, 4501, 4503, 4506])
def test_a_kms_error_chunk_stops_the_recording_naming_the_key_and_permission(error: int) -> None:
    # Given a stream whose KMS key the recorder may not use
    media = FakeMedia([capture(0, 0, error=error)])

    # When a response is read, then the reading stops at once, saying which key to check
    with pytest.raises(MediaAccessDenied) as raised:
        reader(media, []).read_response(lambda f: None)
    assert KEY in str(raised.value)
    assert "kms:Decrypt" in str(raised.value)
    assert str(error) in str(raised.value)


def test_other_error_chunks_are_cuts_and_three_in_a_row_stop_the_recording() -> None:
    # Given fragments, then error 5000 after the second, then 3002 and 5000 again with no
    # fragment between, then a fragment, then three 5000s in a row
    media = FakeMedia(
        [
            capture(0, 2, error=5000),
            capture(2, 3, error=3002),
            capture(0, 0, error=5000),
            capture(3, 4),
            capture(0, 0, error=5000),
            capture(0, 0, error=5000),
            capture(0, 0, error=5000),
        ]
    )
    r = reader(media, [])

    # When responses are read: each error ends its response and the next one resumes after
    # the last complete fragment; a fragment between errors resets their count
    counts, numbers = read_all(r, 6)
    assert counts == [2, 1, 0, 1, 0, 0]
    assert numbers == NUMBERS[:4]
    assert [s.value for s in media.selectors[1:]] == [
        NUMBERS[1],
        NUMBERS[2],
        NUMBERS[2],
        NUMBERS[3],
        NUMBERS[3],
    ]

    # Then the third error chunk in a row stops the reading with its id and text
    with pytest.raises(MediaError, match=f"5000 \\(Internal error\\) {MAX_ERRORS_IN_A_ROW} times"):
        r.read_response(lambda f: None)


@pytest.mark.parametrize(
    "error",
    [
        ResponseStreamingError(error=ProtocolError("Connection broken: IncompleteRead")),
        ReadTimeoutError(endpoint_url="https://kvs"),
        ProtocolError("Connection broken", ConnectionResetError(104, "reset")),
        ConnectionResetError(104, "Connection reset by peer"),
    ],
)
def test_a_connection_broken_mid_read_is_a_cut(error: Exception) -> None:
    # Given a response that breaks 300 bytes into its third fragment
    whole = capture(0, 3)
    two = len(capture(0, 2))
    media = FakeMedia([Breaking(whole[: two + 300], error), capture(2, 5)])
    r = reader(media, [])

    # When the reader reads two responses
    counts, numbers = read_all(r, 2)

    # Then the broken one gave its two complete fragments, and the next resumed after them
    assert counts == [2, 3]
    assert numbers == NUMBERS[:5]
    assert media.selectors[1] == StartSelector.continuation_token(NUMBERS[1])
    assert r.cuts == 1


def test_the_body_translates_what_a_broken_connection_raises() -> None:
    body = _Body(Breaking(b"", ReadTimeoutError(endpoint_url="https://kvs")), ARN)
    with pytest.raises(ConnectionBroken, match="broke mid-read: ReadTimeoutError"):
        body.read(10)
