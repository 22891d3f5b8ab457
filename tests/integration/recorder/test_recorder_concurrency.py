"""Many calls at once through one shard: each recorded exactly, none waiting for another."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from callrec_local.kvs_emulator import EmulatorConfig, KvsEmulator
from callrec_local.lambda_runtime import Invocation
from callrec_local.producer import conversation
from callrec_local.simulator import CallScript, ConnectSimulator
from callrec_local.stack import FunctionOverride, LocalStack
from tests.integration.recorder.conftest import OUTPUTS, converted

CALLS = 25
SPEED = 8.0
# Template durations x 0.2: the sweeper runs every 12 s, Kinesis is polled every 0.2 s.
TIME_SCALE = 0.2
NOOP_HANDLER = "def lambda_handler(event, context):\n    return None\n"


def test_concurrent_calls_of_different_lengths_are_each_recorded_exactly(
    local_stack_factory: Callable[..., LocalStack], tmp_path: Path
) -> None:
    # Given one shard and a recorder allowed as many concurrent invocations as there are calls,
    # with hand-offs every 10 s and GetMedia connections cut every 2.5 s; the spectrum
    # function does nothing (its images are not under test and would only load the machine)
    noop = tmp_path / "noop"
    noop.mkdir()
    (noop / "app.py").write_text(NOOP_HANDLER)
    kvs = KvsEmulator(EmulatorConfig(speed=SPEED, max_connection_seconds=2.5))
    stack = local_stack_factory(
        time_scale=TIME_SCALE,
        kvs=kvs,
        max_concurrency=3 * CALLS,
        overrides={
            "SendEventFunction": FunctionOverride(timeout_s=8.0),
            "SpectrumFunction": FunctionOverride(code_uri=noop, handler="app.lambda_handler"),
            "RecorderFunction": FunctionOverride(
                timeout_s=10.0,
                environment={
                    "HANDOFF_MARGIN_SECONDS": "3",
                    "CHECKPOINT_INTERVAL_SECONDS": "1",
                    "RECORDING_IDLE_SECONDS": "2",
                },
            ),
        },
    )
    simulator = ConnectSimulator(kvs, stack.contact_flow_handler())

    # When 25 calls of 3 to 40 seconds (media time) start at once (audio made beforehand, so
    # that all are live together and none reuses another's stream)
    lengths = [3 + (37 * n) // (CALLS - 1) for n in range(CALLS)]
    voices = [conversation(seconds, 100 + n) for n, seconds in enumerate(lengths)]
    calls = [
        simulator.play(CallScript(seconds=seconds, customer=customer, agent=agent))
        for seconds, (customer, agent) in zip(lengths, voices, strict=True)
    ]

    # Then every one is COMPLETED with its own audio, byte-identical to convert's
    deadline = time.monotonic() + 90
    for played in calls:
        played.wait(timeout=max(1.0, deadline - time.monotonic()))
        assert played.handler_error is None, played.handler_error
    for played in calls:
        item = wait_finished(stack, played.contact_id, deadline)
        assert item["status"]["S"] == "COMPLETED", item
        recorded = download(stack, item)
        reference = converted(played, tmp_path)
        for name in OUTPUTS:
            assert recorded[name] == reference[name], (played.contact_id, played.script.seconds)
        assert recorded["cu"][44:] == played.ground_truth().customer
    # (On a loaded machine the last calls may start after the shortest have ended and reuse
    # their streams: the recordings must be exact either way, and are checked above.)
    records = [
        i for i in stack.invocations("RecorderFunction") if i.event.get("action") == "record"
    ]
    assert max_overlap(records) >= CALLS // 2, "recordings ran one after another"
    assert all(i.peak_rss_kb for i in records)  # the benchmark's memory hook reports
    registrations = stack.invocations("RecorderFunction", source="kinesis")
    assert registrations
    assert all(i.ok for i in registrations)


def max_overlap(invocations: list[Invocation]) -> int:
    """The most invocations whose handlers ran at the same moment."""
    edges = sorted(
        edge
        for i in invocations
        if i.handler_started_at is not None and i.ended_at is not None
        for edge in ((i.handler_started_at, 1), (i.ended_at, -1))
    )
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def wait_finished(stack: LocalStack, contact_id: str, deadline: float) -> dict[str, object]:
    dynamodb = stack.dynamodb()
    while True:
        item = dynamodb.get_item(
            TableName=stack.table_name, Key={"contact_id": {"S": contact_id}}
        ).get("Item", {})
        if item.get("status", {}).get("S") in {"COMPLETED", "FAILED"}:
            return dict(item)
        if time.monotonic() >= deadline:
            raise AssertionError(f"recording of {contact_id} not finished: {item}")
        time.sleep(0.2)


def download(stack: LocalStack, item: dict[str, object]) -> dict[str, bytes]:
    keys = item["keys"]["M"]  # type: ignore[index]
    s3 = stack.s3()
    return {
        name: s3.get_object(Bucket=stack.bucket_name, Key=keys[name]["S"])["Body"].read()
        for name in OUTPUTS
    }
