"""What the recorder does with KVS's error chunks (moto, fake time): a KMS denial ends the
recording at once, saying which key to check; warnings on the item stay bounded."""

from __future__ import annotations

import io

from callrec.events import StartRecord
from callrec.kvs import StartSelector, Throttled
from callrec.recorder import (
    MAX_RESUMES_WITHOUT_PROGRESS,
    MAX_WARNING_CHARS,
    MAX_WARNINGS,
    _Progress,
)
from callrec_local import producer as p
from callrec_local.kvs_emulator import get_media_error
from tests.unit.recorder.conftest import FakeTime, invocations, recorder_on, recorder_settings

KEY = "arn:aws:kms:us-east-1:123456789012:key/0b0c0d0e-1111-2222-3333-444455556666"


class DeniedMedia:
    """Every GetMedia response is error chunk 4500, each a tenth of a second after the call."""

    def __init__(self, time: FakeTime) -> None:
        self.time = time
        self.calls = 0

    def get_media(self, stream_arn: str, selector: StartSelector, *, deadline: float) -> io.BytesIO:
        self.calls += 1
        self.time.now += 0.1
        return io.BytesIO(p.encode_error_chunk(*get_media_error(4500)))

    def get_fragment(self, stream_arn: str, fragment_number: str, *, deadline: float) -> io.BytesIO:
        return self.get_media(stream_arn, StartSelector("FRAGMENT_LIST"), deadline=deadline)


def test_a_kms_denial_fails_the_recording_at_once_naming_the_key(
    aws: None, record: StartRecord
) -> None:
    # Given a recorder that may not use the stream's KMS key
    time = FakeTime()
    media = DeniedMedia(time)
    recorder, store = recorder_on(time, media, recorder_settings(kvs_kms_key_arn=KEY))
    store.register(record, grace_seconds=5)

    # When one invocation records the call
    (outcome,) = invocations(recorder, record.contact_id, time, seconds=60, limit=1)

    # Then the recording FAILED after its first response, with a reason naming the key and
    # the permission, and no warning (the call's media was not lost: it cannot be read)
    assert outcome.action == "failed"
    assert media.calls == 1
    recording = store.get(record.contact_id)
    assert recording is not None
    assert recording.status == "FAILED"
    assert KEY in (recording.reason or "")
    assert "kms:Decrypt" in (recording.reason or "")
    assert recording.warnings == ()


def test_warnings_are_distinct_bounded_and_counted() -> None:
    # Given many warnings, some repeated, one very long
    progress = _Progress()
    progress.warn("x" * 5000)
    for n in range(100):
        progress.warn(f"media lost: event {n % 40}")

    # Then the item keeps the first distinct ones, each cut short, and counts them all
    assert len(progress.warnings) == MAX_WARNINGS
    assert len(set(progress.warnings)) == MAX_WARNINGS
    assert all(len(w) <= MAX_WARNING_CHARS for w in progress.warnings)
    assert progress.warnings_total == 101
    restored = _Progress.from_json(progress.to_json())
    assert restored.warnings == progress.warnings
    assert restored.warnings_total == 101


class ThrottledMedia:
    """KVS throttles every GetMedia (and GetMediaForFragmentList) until the deadline."""

    def __init__(self, time: FakeTime) -> None:
        self.time = time
        self.calls = 0

    def get_media(self, stream_arn: str, selector: StartSelector, *, deadline: float) -> io.BytesIO:
        self.calls += 1
        self.time.now = max(self.time.now, deadline)
        raise Throttled(f"stream {stream_arn}: GetMedia failed 9 time(s) until the deadline")

    def get_fragment(self, stream_arn: str, fragment_number: str, *, deadline: float) -> io.BytesIO:
        return self.get_media(stream_arn, StartSelector("FRAGMENT_LIST"), deadline=deadline)


def test_throttling_until_the_deadline_hands_off_and_only_a_stalled_chain_fails(
    aws: None, record: StartRecord
) -> None:
    # Given KVS throttling every read of the stream for as long as anyone asks
    time = FakeTime()
    recorder, store = recorder_on(time, ThrottledMedia(time))
    store.register(record, grace_seconds=5)

    # When invocations follow one another
    outcomes = invocations(recorder, record.contact_id, time, seconds=60, limit=10)

    # Then each throttled invocation handed off (throttling is not a reason to fail), until
    # the chain had made no progress in MAX_RESUMES_WITHOUT_PROGRESS invocations
    assert [o.action for o in outcomes[:-1]] == ["handed_off"] * (len(outcomes) - 1)
    assert "throttl" in outcomes[0].detail.lower() or "until the deadline" in outcomes[0].detail
    assert outcomes[-1].action == "failed"
    assert len(outcomes) == MAX_RESUMES_WITHOUT_PROGRESS + 2
    recording = store.get(record.contact_id)
    assert recording is not None
    assert recording.status == "FAILED"
    assert "no progress in" in (recording.reason or "")
