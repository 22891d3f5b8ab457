"""S3ObjectReader: a seekable file over ranged GETs, against an in-memory fake of get_object."""

from __future__ import annotations

import io
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from callrec import spectrum
from callrec.spectrogram_store import RecordingGone, S3ObjectReader, StoreUnavailable
from tests.unit.spectrum.wavs import call_wav


class Body:
    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self._data = io.BytesIO(data)
        self._fail_after = fail_after

    def read(self, amount: int = -1) -> bytes:
        if self._fail_after is not None and self._data.tell() >= self._fail_after:
            raise ReadTimeoutError(endpoint_url="http://s3")
        return self._data.read(amount)

    def close(self) -> None:
        pass


class FakeS3:
    """get_object over bytes, recording each call's Range; can fail like S3 does."""

    def __init__(self, data: bytes, *, error: str | None = None, status: int = 400) -> None:
        self.data = data
        self.ranges: list[str | None] = []
        self.error, self.status = error, status
        self.fail_after: int | None = None

    def get_object(self, **params: Any) -> dict[str, Any]:
        self.ranges.append(params.get("Range"))
        if self.error:
            response: Any = {
                "Error": {"Code": self.error, "Message": self.error},
                "ResponseMetadata": {"HTTPStatusCode": self.status},
            }
            raise ClientError(response, "GetObject")
        start = int(params["Range"][6:-1]) if "Range" in params else 0
        assert params.get("IfMatch", '"etag"') == '"etag"'
        return {
            "ContentLength": len(self.data),
            "ETag": '"etag"',
            "Metadata": {"start": "2026-11-24T05:47:03Z"},
            "Body": Body(self.data[start:], self.fail_after),
        }


def reader(s3: FakeS3) -> S3ObjectReader:
    return S3ObjectReader(s3, "bucket", "recordings/x.wav")  # type: ignore[arg-type]


def test_reads_seeks_and_tells_like_a_file() -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    s3 = FakeS3(data)
    with reader(s3) as f:
        assert f.read(10) == data[:10]
        assert f.seek(0, io.SEEK_END) == len(data)
        assert f.seek(1000) == 1000
        assert f.read(5) == data[1000:1005]
        f.seek(900_000)
        assert f.read(16) == data[900_000:900_016]
        assert f.read() == data[900_016:]
        assert f.metadata == {"start": "2026-11-24T05:47:03Z"}
    # a short forward skip is read through; the jump to 900 000 opens one ranged GET
    assert s3.ranges == [None, "bytes=900000-"]


def test_a_whole_wav_renders_through_it_in_two_requests() -> None:
    s3 = FakeS3(call_wav(30.0))

    with reader(s3) as f:
        rendered = spectrum.render(f, contact_id="c")

    assert rendered.duration_seconds == pytest.approx(30.0)
    assert len(s3.ranges) <= 2


@pytest.mark.parametrize("code", ["NoSuchKey", "NotFound"])
def test_a_missing_object_is_gone(code: str) -> None:
    with pytest.raises(RecordingGone, match="no longer exists"):
        reader(FakeS3(b"", error=code, status=404))


@pytest.mark.parametrize(("code", "status"), [("SlowDown", 503), ("InternalError", 500)])
def test_throttling_and_server_errors_are_transient(code: str, status: int) -> None:
    with pytest.raises(StoreUnavailable, match=r"reading s3://bucket/recordings/x\.wav"):
        reader(FakeS3(b"", error=code, status=status))


def test_a_failure_mid_stream_is_kept_for_the_caller_not_taken_for_the_end() -> None:
    # Given a body that times out after 100 kB
    s3 = FakeS3(call_wav(10.0))
    s3.fail_after = 100_000

    # When the WAV is rendered through the reader
    with reader(s3) as f:
        with pytest.raises(spectrum.BadRecording):
            spectrum.render(f, contact_id="c")

        # Then the reader says why, so the store can raise it as transient
        assert isinstance(f.failure, ReadTimeoutError)
