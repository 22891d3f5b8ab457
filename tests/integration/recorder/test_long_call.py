"""A 4-hour call at high speed: recorded whole through hand-offs and cut connections, in
bounded memory. (bench_recorder measures such a call's figures; this checks its bytes.)"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from callrec_local.lambda_runtime import Invocation
from callrec_local.producer import SAMPLE_RATE, speech_like
from callrec_local.simulator import CallScript
from tests.integration.recorder.conftest import OUTPUTS, PipelineMaker

HOURS = 4
SPEED = 300.0
RSS_LIMIT_MB = 128  # the benchmark's target for a recorder invocation, whatever the call's length


def voices(seconds: int) -> tuple[bytes, bytes]:
    """Customer and agent audio of any length: a minute of speech-like audio, repeated."""
    minute = (speech_like(60, 41, pitch_hz=210.0), speech_like(60, 42, pitch_hz=115.0))
    copies = seconds // 60
    return minute[0] * copies, minute[1] * copies


def digest(body: Any) -> tuple[int, str]:
    """Size and SHA-256 of a streamed S3 body, read in 8 MiB pieces."""
    sha, size = hashlib.sha256(), 0
    for piece in iter(lambda: body.read(8 << 20), b""):
        sha.update(piece)
        size += len(piece)
    return size, sha.hexdigest()


def stereo_digest(left: bytes, right: bytes) -> str:
    sha = hashlib.sha256()
    step = SAMPLE_RATE * 2 * 60  # a minute of each side at a time
    for start in range(0, len(left), step):
        a, b = left[start : start + step], right[start : start + step]
        stereo = bytearray(2 * len(a))
        stereo[0::4], stereo[1::4] = a[0::2], a[1::2]
        stereo[2::4], stereo[3::4] = b[0::2], b[1::2]
        sha.update(stereo)
    return sha.hexdigest()


@pytest.mark.slow
def test_a_four_hour_call_is_recorded_whole_in_bounded_memory(
    make_pipeline: PipelineMaker,
) -> None:
    # Given a recorder handing off every 30 s (each invocation a cold start in its own
    # process) and GetMedia connections cut every 20 s, while a 4-hour call plays at 300x
    pipeline = make_pipeline(
        speed=SPEED,
        recorder_timeout_s=30.0,
        handoff_margin_s=5,
        checkpoint_interval_s=5,
        idle_s=5,
        max_connection_seconds=20.0,
    )
    customer, agent = voices(HOURS * 3600)

    # When it is recorded
    played = pipeline.simulator.play(
        CallScript(seconds=HOURS * 3600, customer=customer, agent=agent)
    )
    played.wait(timeout=HOURS * 3600 / SPEED + 60)
    item = pipeline.wait_finished(played.contact_id, timeout_s=180)

    # Then the WAVs hold every sample of the call, once, in order
    assert item["status"]["S"] == "COMPLETED", item
    assert float(item["duration_seconds"]["N"]) == HOURS * 3600
    s3, keys = pipeline.stack.s3(), item["keys"]["M"]
    expected = {
        "cu": hashlib.sha256(customer).hexdigest(),
        "op": hashlib.sha256(agent).hexdigest(),
        "stereo": stereo_digest(customer, agent),
    }
    for name in OUTPUTS:
        body = s3.get_object(
            Bucket=pipeline.stack.bucket_name, Key=keys[name]["S"], Range="bytes=44-"
        )["Body"]
        size, sha = digest(body)
        channels = 2 if name == "stereo" else 1
        assert size == len(customer) * channels, name
        assert sha == expected[name], name
    # ... through several invocations, none of which grew with the call or was killed
    records: list[Invocation] = [
        i
        for i in pipeline.stack.invocations("RecorderFunction")
        if i.event.get("action") == "record" and i.result
    ]
    assert int(item["handoffs"]["N"]) >= 2
    assert [i.error for i in records if i.error] == []
    peaks = [i.peak_rss_kb / 1024 for i in records if i.peak_rss_kb]
    assert peaks
    assert max(peaks) < RSS_LIMIT_MB, peaks
