"""kvs.MediaSource's retries, with fake clients: throttling is retried with backoff until the
deadline, a dropped connection forgets the endpoint, anything else is an error at once."""

from __future__ import annotations

import io
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from callrec.kvs import MediaError, MediaSource, StartSelector, Throttled

ARN = "arn:aws:kinesisvideo:us-east-1:123456789012:stream/s/1"


class Control:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_data_endpoint(self, StreamARN: str, APIName: str) -> dict[str, str]:
        self.asked.append(APIName)
        return {"DataEndpoint": f"https://{APIName.lower()}.example"}


def throttled() -> ClientError:
    return ClientError({"Error": {"Code": "ClientLimitExceededException"}}, "GetMedia")


class Media:
    """Fails with each of `failures` in turn, then answers."""

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    def get_media(self, **_: Any) -> dict[str, Any]:
        return self._answer()

    def get_media_for_fragment_list(self, **_: Any) -> dict[str, Any]:
        return self._answer()

    def _answer(self) -> dict[str, Any]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return {"Payload": io.BytesIO(b"media")}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def source(media: Media, control: Control, clock: Clock) -> MediaSource:
    return MediaSource(
        control,  # type: ignore[arg-type]
        media_client=lambda _endpoint: media,  # type: ignore[arg-type,return-value]
        archive_client=lambda _endpoint: media,  # type: ignore[arg-type,return-value]
        clock=clock,
        sleep=clock.sleep,
    )


@pytest.mark.parametrize("api", ["GetMedia", "GetMediaForFragmentList"])
def test_throttling_and_dropped_connections_are_retried(api: str) -> None:
    clock, control = Clock(), Control()
    media = Media([throttled(), EndpointConnectionError(endpoint_url="x"), throttled()])
    kvs = source(media, control, clock)

    if api == "GetMedia":
        body = kvs.get_media(ARN, StartSelector("EARLIEST"), deadline=60)
    else:
        body = kvs.get_fragment(ARN, "1", deadline=60)

    assert body.read(10) == b"media"
    assert media.calls == 4
    assert clock.now > 0  # backed off between the attempts
    assert len(control.asked) == 2  # the dropped connection made it ask for the endpoint again


def test_throttling_until_the_deadline_is_throttled_and_other_errors_fail_at_once() -> None:
    clock = Clock()
    kvs = source(Media([throttled()] * 100), Control(), clock)
    with pytest.raises(Throttled, match=r"GetMedia failed \d+ time\(s\) until the deadline"):
        kvs.get_media(ARN, StartSelector("EARLIEST"), deadline=3)
    assert clock.now <= 3

    denied = ClientError({"Error": {"Code": "AccessDeniedException"}}, "GetMediaForFragmentList")
    media = Media([denied])
    with pytest.raises(MediaError):
        source(media, Control(), Clock()).get_fragment(ARN, "1", deadline=60)
    assert media.calls == 1
