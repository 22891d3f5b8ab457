"""The end of a call on the local stack: Connect's disconnect ends it (no idle wait), a pause in
streaming while the contact is connected is waited through, and the idle time ends it only when
Connect cannot be asked."""

from __future__ import annotations

import time
from pathlib import Path

from callrec_local.connect_emulator import EventDelivery
from callrec_local.producer import Pause
from callrec_local.simulator import CallScript
from tests.integration.recorder.conftest import OUTPUTS, PipelineMaker, converted


def test_the_disconnect_ends_the_recording_long_before_the_idle_time(
    make_pipeline: PipelineMaker, tmp_path: Path
) -> None:
    # Given a recorder whose idle time (the fallback) is 60 s
    pipeline = make_pipeline(speed=5.0, recorder_timeout_s=10.0, handoff_margin_s=4, idle_s=60)

    # When a 10-second call is played and hangs up
    played = pipeline.simulator.play(CallScript(seconds=10, seed=51))
    played.wait(timeout=60)
    hung_up = time.monotonic()
    item = pipeline.wait_finished(played.contact_id, timeout_s=60)

    # Then Connect's disconnect ended it within seconds, and the files are exact
    assert time.monotonic() - hung_up < 30
    assert item["status"]["S"] == "COMPLETED", item
    assert item["ended_by"]["S"] == "disconnect"
    detail = item["end_detail"]["M"]
    assert detail["contact"]["S"] == played.contact_id
    assert detail["source"]["S"] in {"contact-event", "describe-contact"}
    recorded = pipeline.download(item)
    reference = converted(played, tmp_path)
    for name in OUTPUTS:
        assert recorded[name] == reference[name], name


def test_a_pause_in_streaming_longer_than_the_idle_time_is_recorded_as_silence(
    make_pipeline: PipelineMaker, tmp_path: Path
) -> None:
    # Given a 20-second call whose flow stops media streaming for 10 s of it (3.3 s of wall
    # time here, more than the recorder's 2-second idle time) while the contact stays connected
    pipeline = make_pipeline(speed=3.0, recorder_timeout_s=10.0, handoff_margin_s=4, idle_s=2)
    played = pipeline.simulator.play(
        CallScript(seconds=20, seed=52, pauses=(Pause(at_ms=4000, length_ms=10_000),))
    )

    # Then the recording waits through the pause and ends at the disconnect: one recording,
    # the pause as silence of its true length, identical to convert's
    item = pipeline.wait_finished(played.contact_id, timeout_s=90)
    assert item["status"]["S"] == "COMPLETED", item
    assert item["ended_by"]["S"] == "disconnect"
    recorded = pipeline.download(item)
    reference = converted(played, tmp_path)
    for name in OUTPUTS:
        assert recorded[name] == reference[name], name
    assert float(item["duration_seconds"]["N"]) > 19


def test_without_connect_the_idle_time_ends_the_recording_and_the_item_says_why(
    make_pipeline: PipelineMaker, tmp_path: Path
) -> None:
    # Given DescribeContact refused and the contact events lost
    pipeline = make_pipeline(speed=5.0, recorder_timeout_s=10.0, handoff_margin_s=4, idle_s=3)
    connect = pipeline.stack.connect
    assert connect is not None
    connect.refuse_describe("AccessDeniedException")
    connect.delivery = EventDelivery(drop=True)

    # When a call is played
    played = pipeline.simulator.play(CallScript(seconds=6, seed=53))

    # Then the idle time ended it, the item naming Connect's refusal, the files exact
    item = pipeline.wait_finished(played.contact_id, timeout_s=60)
    assert item["status"]["S"] == "COMPLETED", item
    assert item["ended_by"]["S"] == "idle"
    assert "AccessDeniedException" in item["end_detail"]["M"]["reason"]["S"]
    recorded = pipeline.download(item)
    reference = converted(played, tmp_path)
    for name in OUTPUTS:
        assert recorded[name] == reference[name], name
