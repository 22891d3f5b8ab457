"""`callrec rerecord` on the local stack: a recorded call is recorded again from KVS, byte for
byte as `callrec convert` makes it, or fails with the recorder's reason when KVS has lost it."""

from __future__ import annotations

from pathlib import Path

import pytest

from callrec import cli
from callrec_local.pytest_plugin import apply_environment
from callrec_local.simulator import CallScript, PlayedCall
from tests.integration.recorder.conftest import OUTPUTS, Pipeline, PipelineMaker, converted


def recorded_call(make_pipeline: PipelineMaker, seed: int) -> tuple[Pipeline, PlayedCall]:
    """A 12-second call (about 1.2 s at 10x) recorded through the pipeline: COMPLETED.

    GetMedia responses end after 1 s without data (KVS: a few seconds), so that the end of a
    call, 2 s without fragments, is seen in about 2 s.
    """
    pipeline = make_pipeline(
        speed=10.0, recorder_timeout_s=8.0, handoff_margin_s=3, idle_s=2, idle_timeout_seconds=1.0
    )
    played = pipeline.simulator.play(CallScript(seconds=12, seed=seed))
    played.wait(timeout=30)
    item = pipeline.wait_finished(played.contact_id, timeout_s=30)
    assert item["status"]["S"] == "COMPLETED", item
    return pipeline, played


def rerecord(
    pipeline: Pipeline,
    contact_id: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str, str]:
    """`callrec rerecord CONTACT_ID --wait` against the stack, as an operator would run it."""
    apply_environment(pipeline.stack.environment, monkeypatch)
    status = cli.main(
        [
            "rerecord",
            contact_id,
            "--table",
            pipeline.stack.table_name,
            "--function",
            pipeline.stack.function_name("RecorderFunction"),
            "--wait",
            "--timeout",
            "45",
        ]
    )
    out = capsys.readouterr()
    return status, out.out, out.err


def test_a_damaged_recording_is_recorded_again_exactly(
    make_pipeline: PipelineMaker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a recorded call whose customer WAV was overwritten and agent WAV deleted
    pipeline, played = recorded_call(make_pipeline, seed=31)
    before = pipeline.item(played.contact_id)
    keys = {name: before["keys"]["M"][name]["S"] for name in OUTPUTS}
    s3, bucket = pipeline.stack.s3(), pipeline.stack.bucket_name
    s3.put_object(Bucket=bucket, Key=keys["cu"], Body=b"RIFF not the recording")
    s3.delete_object(Bucket=bucket, Key=keys["op"])

    # When it is rerecorded, waiting for the result
    status, out, err = rerecord(pipeline, played.contact_id, monkeypatch, capsys)

    # Then it completed, and its three WAVs, at the same keys, are convert's bytes again
    assert status == 0, (out, err)
    started, summary = out.splitlines()
    assert started == f"contact {played.contact_id}: rerecording started (rerecord 1)"
    assert summary.startswith(f"COMPLETED, contact {played.contact_id}, 12.000 s, keys ")
    assert summary.endswith("rerecords 1")
    assert "differs" not in summary
    assert "remain" not in summary
    item = pipeline.item(played.contact_id)
    assert item["status"]["S"] == "COMPLETED", item
    assert int(item["rerecords"]["N"]) == 1
    assert int(item["rerecorded_at"]["N"]) >= int(before["finished_at"]["N"])
    assert int(item["generation"]["N"]) > int(before["generation"]["N"])
    assert {name: item["keys"]["M"][name]["S"] for name in OUTPUTS} == keys
    recorded = pipeline.download(item)
    reference = converted(played, tmp_path)
    for name in OUTPUTS:
        assert recorded[name] == reference[name], name
    # And the damaged customer WAV is still there as a noncurrent version (the bucket is versioned)
    versions = s3.list_object_versions(Bucket=bucket, Prefix=keys["cu"])["Versions"]
    assert len(versions) >= 3  # the original, the damage, the rerecording


def test_a_call_beyond_the_stream_retention_is_reported_failed_with_the_reason(
    make_pipeline: PipelineMaker,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a recorded call whose fragments KVS no longer holds (retention of 1 ms)
    pipeline, played = recorded_call(make_pipeline, seed=32)
    keys = pipeline.item(played.contact_id)["keys"]["M"]
    stream = pipeline.kvs.stream(played.stream_name)
    with stream.cond:
        stream.retention_ms = 1

    # When it is rerecorded
    status, out, err = rerecord(pipeline, played.contact_id, monkeypatch, capsys)

    # Then the command fails with the recorder's reason, and says where the old WAVs still are
    assert status == 1, (out, err)
    summary = out.splitlines()[-1]
    # (the call's first fragment, read by its number, is gone too: a warning says so)
    assert summary.startswith(f"FAILED, contact {played.contact_id}, ")
    assert ", reason: no fragment of " in summary
    assert f"the call's first fragment {played.start_fragment_number} was not found" in summary
    assert "rerecords 1" in summary
    for name in OUTPUTS:
        assert keys[name]["S"] in summary
    item = pipeline.item(played.contact_id)
    assert item["status"]["S"] == "FAILED"
    assert "keys" not in item
