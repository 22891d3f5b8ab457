"""Calls recorded through the whole local pipeline equal `callrec convert` on the complete stream."""

from __future__ import annotations

from pathlib import Path

from callrec_local.simulator import CallScript
from tests.integration.recorder.conftest import OUTPUTS, PipelineMaker, converted


def test_a_call_is_recorded_exactly_through_handoffs(
    make_pipeline: PipelineMaker, tmp_path: Path
) -> None:
    # Given a recorder whose invocations last 6 s, handing off 2 s before their end
    pipeline = make_pipeline(speed=5.0, recorder_timeout_s=6.0, handoff_margin_s=2)

    # When a 40-second call is played (8 s of media time at 5x)
    played = pipeline.simulator.play(CallScript(seconds=40, seed=3))
    item = pipeline.wait_finished(played.contact_id)

    # Then its three WAVs are byte-identical to convert's, and the audio is the ground truth
    assert item["status"]["S"] == "COMPLETED", item
    recorded = pipeline.download(item)
    reference = converted(played, tmp_path)
    for name in OUTPUTS:
        assert recorded[name] == reference[name], name
    truth = played.ground_truth()
    assert recorded["cu"][44:] == truth.customer
    assert recorded["op"][44:] == truth.agent
    assert int(item["handoffs"]["N"]) >= 1
    assert float(item["duration_seconds"]["N"]) == len(truth.customer) / 2 / 8000
