"""Calls recorded through the whole local pipeline equal `callrec convert` on the complete stream."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from callrec.events import StartRecord, start_record_from_contact_flow
from callrec.fragments import TRACK_TO_CUSTOMER
from callrec.recorder import ASSEMBLY_HANDOFF
from callrec_local.event_sources import start_records_event
from callrec_local.kvs_emulator import DropConnection
from callrec_local.lambda_runtime import Invocation
from callrec_local.producer import Gap
from callrec_local.simulator import CallScript
from callrec_local.template import LOCAL_KVS_KMS_KEY_ARN
from tests.integration.recorder.conftest import OUTPUTS, PipelineMaker, converted
from tests.support import load_event


def test_a_call_is_recorded_exactly_through_handoffs(
    make_pipeline: PipelineMaker, tmp_path: Path
) -> None:
    # Given a recorder whose invocations last 8 s, handing off 4 s before their end,
    # and GetMedia connections cut (mid-fragment) every 1.3 s
    pipeline = make_pipeline(
        speed=5.0, recorder_timeout_s=8.0, handoff_margin_s=4, max_connection_seconds=1.3
    )

    # When a 40-second call is played (8 s of media time at 5x) while stray invocations for
    # the same contact race the chain (as a duplicate hand-off or a sweep would)
    played = pipeline.simulator.play(CallScript(seconds=40, seed=3))
    played.wait(timeout=60)
    for _ in range(3):
        pipeline.stack.invoke_async(
            "RecorderFunction", {"action": "record", "contact_id": played.contact_id}
        )
        time.sleep(1.5)
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

    def outcomes(invocations: list[Invocation]) -> list[str]:
        return [
            i.result["action"]
            for i in invocations
            if i.event.get("action") == "record" and i.result
        ]

    invocations = pipeline.stack.wait_for(lambda i: "completed" in outcomes(i), timeout_s=30)
    assert outcomes(invocations).count("completed") == 1
    assert float(item["duration_seconds"]["N"]) == len(truth.customer) / 2 / 8000


def test_a_call_ending_late_in_an_invocation_is_assembled_by_a_fresh_one(
    make_pipeline: PipelineMaker, tmp_path: Path
) -> None:
    # Given invocations of 8 s that hand off 4 s before their end (more than a GetMedia read
    # can wait for data here): whichever sees the call end, after 2 s without fragments, has
    # less time left than an assembly may take
    pipeline = make_pipeline(speed=5.0, recorder_timeout_s=8.0, handoff_margin_s=4)

    # When a 20-second call is recorded
    played = pipeline.simulator.play(CallScript(seconds=20, seed=11))
    played.wait(timeout=60)
    item = pipeline.wait_finished(played.contact_id)

    # Then that invocation handed the assembly to a fresh one, which completed it: no
    # invocation ran into its timeout, and the files are exact
    def records(invocations: list[Invocation]) -> list[Invocation]:
        return [i for i in invocations if i.event.get("action") == "record" and i.ended_at]

    invocations = records(
        pipeline.stack.wait_for(
            lambda i: any((r.result or {}).get("action") == "completed" for r in records(i)),
            timeout_s=30,
        )
    )
    assert [i.error for i in invocations if i.error] == []
    outcomes = [(i.result["action"], i.result["detail"]) for i in invocations]
    assert outcomes[-2:] == [("handed_off", ASSEMBLY_HANDOFF), ("completed", "")]
    assert item["status"]["S"] == "COMPLETED", item
    recorded = pipeline.download(item)
    reference = converted(played, tmp_path)
    for name in OUTPUTS:
        assert recorded[name] == reference[name], name


@settings(
    max_examples=3,
    deadline=None,
    derandomize=True,  # the same kill schedules every run: a failure can be replayed
    # No shrinking: each example is a whole pipeline run (tens of seconds), and derandomized
    # examples are replayed as they are.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    pauses=st.lists(st.floats(min_value=0.2, max_value=2.5), min_size=2, max_size=4),
    seed=st.integers(min_value=1, max_value=1000),
)
def test_killed_invocations_lose_and_repeat_nothing(
    make_pipeline: PipelineMaker, tmp_path: Path, pauses: list[float], seed: int
) -> None:
    # Given a call being recorded
    pipeline = make_pipeline(speed=4.0, recorder_timeout_s=10.0, handoff_margin_s=4)
    played = pipeline.simulator.play(CallScript(seconds=48, seed=seed))

    # When its recording invocations are SIGKILLed, each a chosen time after it began
    # reading, as many times as there are pauses (while the recording lasts: during the call,
    # or after it while the rest is read and assembled; a loaded machine starts late)
    kills = 0
    deadline = time.monotonic() + 60
    while (
        kills < len(pauses)
        and time.monotonic() < deadline
        and pipeline.item(played.contact_id).get("status", {}).get("S")
        not in {"COMPLETED", "FAILED"}
    ):
        recording = [
            r
            for r in pipeline.stack.runtime.running("RecorderFunction")
            if r.handler_started.is_set() and r.invocation.event.get("action") == "record"
        ]
        if recording:
            time.sleep(pauses[kills])
            recording[0].kill()
            kills += 1
        time.sleep(0.1)
    item = pipeline.wait_finished(played.contact_id, timeout_s=120)

    # Then the sweeper and Lambda's retries resumed it, and the files are still exact
    assert kills >= 2
    assert item["status"]["S"] == "COMPLETED", item
    recorded = pipeline.download(item)
    reference = converted(played, tmp_path / str(seed))
    for name in OUTPUTS:
        assert recorded[name] == reference[name], name


def test_reused_stream_gap_duplicates_and_twice_delivered_start_records(
    make_pipeline: PipelineMaker, tmp_path: Path
) -> None:
    # Given a call with a gap in the agent's track and a fragment delivered twice, followed
    # at once on the same stream by the next contact
    pipeline = make_pipeline(speed=5.0, recorder_timeout_s=20.0, handoff_margin_s=4)
    first = pipeline.simulator.play(
        CallScript(
            seconds=14,
            seed=11,
            gaps=[Gap(TRACK_TO_CUSTOMER, 4000, 6500)],
            duplicate_fragments=frozenset({5}),
        )
    )
    second = pipeline.simulator.play_after(first, CallScript(seconds=8, seed=12))

    # When every start record is delivered a second time
    first.wait(timeout=60)
    second.wait(timeout=60)
    for played in (first, second):
        record = StartRecord.from_json(start_record_from_contact_flow(played.event or {}).to_json())
        pipeline.stack.invoke("RecorderFunction", kinesis_event([record]))

    # Then each contact is recorded once, exactly, with only its own audio
    for played in (first, second):
        item = pipeline.wait_finished(played.contact_id)
        assert item["status"]["S"] == "COMPLETED", item
        recorded = pipeline.download(item)
        reference = converted(played, tmp_path)
        for name in OUTPUTS:
            assert recorded[name] == reference[name], (played.contact_id, name)
        truth = played.ground_truth()
        assert recorded["op"][44:] == truth.agent
    first_item = pipeline.item(first.contact_id)
    assert int(first_item["gaps_filled"]["N"]) >= 1
    assert int(first_item["duplicates_dropped"]["N"]) >= 1
    registrations = [
        i for i in pipeline.stack.invocations("RecorderFunction") if "Records" in i.event
    ]
    assert all(i.ok for i in registrations)


def test_connections_reset_mid_fragment_are_cuts_resumed_in_the_same_invocation(
    make_pipeline: PipelineMaker, tmp_path: Path
) -> None:
    # Given GetMedia connections that the server resets (not ends) in the middle of a
    # fragment, three times, while a 20-second call is recorded by invocations long enough
    # for the whole call
    pipeline = make_pipeline(speed=5.0, recorder_timeout_s=30.0, handoff_margin_s=4)
    played = pipeline.simulator.play(CallScript(seconds=20, seed=17))
    for after, into in ((2, 5000), (1, 300), (3, 20000)):
        pipeline.kvs.add_fault(
            played.stream_name,
            DropConnection(after_fragments=after, bytes_into_next=into, clean=False),
        )

    # When it is recorded
    played.wait(timeout=60)
    item = pipeline.wait_finished(played.contact_id)

    # Then every reset was a cut the invocation resumed from: no invocation failed, and the
    # files are byte-identical to convert's
    assert pipeline.kvs.stats(played.stream_name).responses_cut >= 3
    assert item["status"]["S"] == "COMPLETED", item
    records = [
        i
        for i in pipeline.stack.invocations("RecorderFunction")
        if i.event.get("action") == "record" and i.ended_at
    ]
    assert [i.error for i in records if i.error] == []
    recorded = pipeline.download(item)
    reference = converted(played, tmp_path)
    for name in OUTPUTS:
        assert recorded[name] == reference[name], name


@pytest.mark.parametrize("skew_ms", [10_000, -10_000])
def test_the_first_fragment_is_found_by_its_number_whatever_connects_clock_says(
    make_pipeline: PipelineMaker, tmp_path: Path, skew_ms: int
) -> None:
    # Given a stream that already carried another contact, and a call whose StartTimestamp
    # (Connect's clock) is 10 s off the producer timestamps of its fragments, with its first
    # fragment listed by GetMediaForFragmentList only 0.6 s after it is ingested
    pipeline = make_pipeline(
        speed=5.0, recorder_timeout_s=30.0, handoff_margin_s=4, list_delay_seconds=0.6
    )
    before = pipeline.simulator.play(CallScript(seconds=12, seed=21))
    played = pipeline.simulator.play_after(
        before, CallScript(seconds=16, seed=22, start_timestamp_skew_ms=skew_ms)
    )

    # When it is recorded
    played.wait(timeout=60)
    item = pipeline.wait_finished(played.contact_id)

    # Then it is recorded from its first fragment, exactly, with nothing lost
    assert item["status"]["S"] == "COMPLETED", item
    assert item["first_fragment_number"]["S"] == played.start_fragment_number
    assert [w["S"] for w in item["warnings"]["L"]] == []
    recorded = pipeline.download(item)
    reference = converted(played, tmp_path)
    for name in OUTPUTS:
        assert recorded[name] == reference[name], name


def test_a_stream_whose_kms_key_is_denied_fails_at_once_naming_the_key(
    make_pipeline: PipelineMaker,
) -> None:
    # Given a stream whose KMS key the recorder may not use (KVS answers error chunk 4500)
    pipeline = make_pipeline(speed=5.0, recorder_timeout_s=30.0, handoff_margin_s=4)
    played = pipeline.simulator.play(CallScript(seconds=10, seed=23))
    pipeline.kvs.deny_kms(played.stream_name)

    # When it is recorded
    played.wait(timeout=60)
    item = pipeline.wait_finished(played.contact_id)

    # Then the first invocation ends it FAILED, naming the key and the permission to check,
    # without warnings (nothing was lost: nothing could be read)
    assert item["status"]["S"] == "FAILED", item
    reason = item["reason"]["S"]
    assert LOCAL_KVS_KMS_KEY_ARN in reason
    assert "kms:Decrypt" in reason
    assert [w["S"] for w in item["warnings"]["L"]] == []

    def outcomes(invocations: list[Invocation]) -> list[str]:
        return [
            (i.result or {}).get("action", "error")
            for i in invocations
            if i.event.get("action") == "record" and i.ended_at
        ]

    invocations = pipeline.stack.wait_for(lambda i: "failed" in outcomes(i), timeout_s=30)
    assert outcomes(invocations) == ["failed"]


def test_a_call_whose_start_is_beyond_retention_is_recorded_from_what_is_left_and_says_so(
    make_pipeline: PipelineMaker,
) -> None:
    # Given a stream keeping 4 s of media, and a contact flow that reaches its Lambda block
    # 10 s into a 40-second call: when the recording begins, the call's first seconds are
    # gone (and the rest of the call, 15 s of wall time here, leaves room for a slow start)
    pipeline = make_pipeline(speed=2.0, recorder_timeout_s=20.0, handoff_margin_s=4)
    played = pipeline.simulator.play(CallScript(seconds=40, seed=13, invoke_after_ms=10_000))
    stream = pipeline.kvs.stream(played.stream_name)
    with stream.cond:
        stream.retention_ms = 4_000

    # When it is recorded
    played.wait(timeout=60)
    item = pipeline.wait_finished(played.contact_id)

    # Then what KVS still held is recorded, and the item says the start was lost
    assert item["status"]["S"] == "COMPLETED", item
    warnings = [w["S"] for w in item["warnings"]["L"]]
    assert any(
        f"its first fragment {played.start_fragment_number} was not served" in w for w in warnings
    ), warnings
    assert int(item["first_fragment_number"]["S"]) > int(played.start_fragment_number)
    assert 0 < float(item["duration_seconds"]["N"]) < 40 - 4


def test_an_assembly_that_never_completes_ends_failed_naming_the_staged_audio(
    make_pipeline: PipelineMaker,
) -> None:
    # Given a recording that has been finishing for 9 invocations without one WAV assembled
    # (as when S3 is too slow for a whole invocation), its lease expired
    pipeline = make_pipeline(recorder_timeout_s=10.0)
    record = start_record_from_contact_flow(load_event("contact-flow-event.json"))
    checkpoint = {
        "finishing": True,
        "finish_status": "COMPLETED",
        "finish_reason": None,
        "assembled": [],
        "progress_generation": 1,
        "progress": {"fragments": 120, "handoffs": 3},
        "staging": {"segment_bytes": 5 * 1024 * 1024, "seq": 4, "outputs": {}, "extras": {}},
    }
    pipeline.stack.dynamodb().put_item(
        TableName=pipeline.stack.table_name,
        Item={
            "contact_id": {"S": record.contact_id},
            "status": {"S": "RECORDING"},
            "active": {"S": "1"},
            "start_record": {"S": record.to_json().decode()},
            "stream_arn": {"S": record.stream_arn},
            "generation": {"N": "9"},
            "lease_owner": {"S": "an-invocation-killed-mid-assembly"},
            "lease_expires_at": {"N": "0"},
            "checkpoint": {"S": json.dumps(checkpoint)},
        },
    )

    # When the next invocation takes it
    result = pipeline.stack.invoke(
        "RecorderFunction", {"action": "record", "contact_id": record.contact_id}
    )

    # Then it gives up: FAILED, saying where the recorded audio is, and not resumed again
    assert result.result["action"] == "failed", result.error or result.result
    item = pipeline.item(record.contact_id)
    assert item["status"]["S"] == "FAILED"
    reason = item["reason"]["S"]
    assert "could not be assembled in 9 invocations in a row" in reason
    assert f"/staging/{record.contact_id}/" in reason
    assert "active" not in item


def test_bad_start_records_fail_clearly_without_a_crash_loop(make_pipeline: PipelineMaker) -> None:
    pipeline = make_pipeline(recorder_timeout_s=10.0, idle_s=2)
    good = start_record_from_contact_flow(load_event("contact-flow-event.json"))
    missing_stream = StartRecord.from_json(
        good.to_json().replace(b"callrec-connect-demo", b"no-such-stream")
    )

    # When a batch holds a start record naming a stream that does not exist, and one not JSON
    batch = kinesis_event([missing_stream, good])
    batch["Records"][1]["kinesis"]["data"] = base64.b64encode(b"not json").decode()
    result = pipeline.stack.invoke("RecorderFunction", batch)

    # Then the recording is FAILED with a reason naming the stream, and the malformed record
    # alone is reported as a batch item failure (retried, then sent to the failure destination)
    assert result.result == {
        "batchItemFailures": [{"itemIdentifier": batch["Records"][1]["kinesis"]["sequenceNumber"]}]
    }
    item = pipeline.wait_finished(missing_stream.contact_id, timeout_s=60)
    assert item["status"]["S"] == "FAILED"
    assert "no-such-stream" in item["reason"]["S"]
    assert "keys" not in item
    # No crash loop: one recording invocation failed it, and nothing resumes it afterwards.
    time.sleep(4)
    records = [
        i
        for i in pipeline.stack.invocations("RecorderFunction")
        if i.event.get("action") == "record" and i.result and i.result["action"] != "skipped"
    ]
    assert len(records) == 1
    assert all(i.ok for i in pipeline.stack.invocations("RecorderFunction"))


def kinesis_event(records: list[StartRecord]) -> dict[str, Any]:
    """The event Lambda's Kinesis event source mapping would deliver for these records."""
    return start_records_event([r.to_json() for r in records], [r.contact_id for r in records])
