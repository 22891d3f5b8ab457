"""Start records reach the recorder through the emulated Kinesis event source mapping."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callrec_local.lambda_runtime import Invocation
from callrec_local.stack import LocalStack
from callrec_local.template import TEMPLATE_PATH

RECORDER = "RecorderFunction"
StackMaker = Callable[..., LocalStack]


def put(stack: LocalStack, *instructions: dict[str, Any]) -> list[str]:
    """Put records in one PutRecords call (one GetRecords sees them all); their sequence numbers."""
    response = stack.kinesis().put_records(
        StreamName=stack.stream_name,
        Records=[
            {"Data": json.dumps(instruction).encode(), "PartitionKey": str(index)}
            for index, instruction in enumerate(instructions)
        ],
    )
    return [record["SequenceNumber"] for record in response["Records"]]


def batches(invocations: list[Invocation]) -> list[list[str]]:
    """The sequence numbers of each Kinesis batch the recorder was invoked with."""
    return [
        [record["kinesis"]["sequenceNumber"] for record in invocation.event["Records"]]
        for invocation in invocations
        if invocation.source == "kinesis"
    ]


def delivered(sequence_numbers: list[str]) -> Any:
    def condition(invocations: list[Invocation]) -> bool:
        done = [
            sequence
            for batch, invocation in zip(batches(invocations), invocations, strict=False)
            for sequence in batch
            if invocation.ok
        ]
        return set(sequence_numbers) <= set(done)

    return condition


def test_records_arrive_as_real_kinesis_events(stack: LocalStack) -> None:
    # Given two start records on the stream
    sequence_numbers = put(stack, {"id": "a"}, {"id": "b"})

    # When the event source mapping delivers them
    stack.wait_for(lambda invs: sum(len(b) for b in batches(invs)) >= 2, timeout_s=20)

    # Then the recorder gets them in order, shaped as Lambda shapes Kinesis events
    (invocation,) = stack.invocations(RECORDER, source="kinesis")
    records = invocation.event["Records"]
    assert [r["kinesis"]["sequenceNumber"] for r in records] == sequence_numbers
    stream_arn = stack.kinesis().describe_stream_summary(StreamName=stack.stream_name)[
        "StreamDescriptionSummary"
    ]["StreamARN"]
    first = records[0]
    assert first["eventSource"] == "aws:kinesis"
    assert first["eventName"] == "aws:kinesis:record"
    assert first["eventSourceARN"] == stream_arn
    assert first["eventID"] == f"shardId-000000000000:{sequence_numbers[0]}"
    assert first["kinesis"]["partitionKey"] == "0"
    assert json.loads(base64.b64decode(first["kinesis"]["data"])) == {"id": "a"}
    assert isinstance(first["kinesis"]["approximateArrivalTimestamp"], float)
    assert invocation.invocation_type == "RequestResponse"


def test_batches_hold_at_most_the_template_batch_size(
    make_stack: StackMaker, tmp_path: Path
) -> None:
    # Given the template with a batch size of 2 instead of 100
    text = TEMPLATE_PATH.read_text()
    assert text.count("BatchSize: 100") == 1
    template = tmp_path / "template.yaml"
    template.write_text(text.replace("BatchSize: 100", "BatchSize: 2"))
    stack = make_stack(template=template)

    # When five records arrive at once
    sequence_numbers = put(stack, *({"id": str(n)} for n in range(5)))
    stack.wait_for(delivered(sequence_numbers), timeout_s=20)

    # Then they come in batches of 2, 2 and 1, in order
    assert batches(stack.invocations(RECORDER)) == [
        sequence_numbers[0:2],
        sequence_numbers[2:4],
        sequence_numbers[4:5],
    ]


def test_partial_batch_failure_resumes_from_the_lowest_failed_record(stack: LocalStack) -> None:
    # Given four records of which the second and the fourth are rejected once
    a, b, c, d = put(
        stack,
        {"id": "a"},
        {"id": "b", "reject_times": 1},
        {"id": "c"},
        {"id": "d", "reject_times": 1},
    )

    # When they are delivered
    stack.wait_for(lambda invs: len(batches(invs)) >= 2, timeout_s=20)

    # Then the retry starts at the second record, and nothing is retried after it succeeds
    assert batches(stack.invocations(RECORDER)) == [[a, b, c, d], [b, c, d]]
    assert stack.invocations(RECORDER)[1].result["batchItemFailures"] == []
    assert stack.drain_queue("StartRecordFailureQueue") == []


def test_function_errors_bisect_then_retry_then_go_to_the_failure_queue(stack: LocalStack) -> None:
    # Given a batch with one record that makes the recorder fail every time
    ok1, poison, ok2, ok3 = put(stack, {"id": "1"}, {"poison": True}, {"id": "2"}, {"id": "3"})
    retries = stack.function(RECORDER).kinesis_sources[0].maximum_retry_attempts

    # When the event source mapping has given up on it
    stack.wait_for(delivered([ok2, ok3]), timeout_s=40)
    messages = stack.drain_queue("StartRecordFailureQueue", wait_s=1)

    # Then the batch was halved until the poison record was alone, which was retried as the
    # template says and then reported, and the records after it were processed
    assert batches(stack.invocations(RECORDER)) == [
        [ok1, poison, ok2, ok3],
        [ok1, poison],
        [ok1],
        *([[poison]] * (1 + retries)),
        [ok2, ok3],
    ]
    (message,) = messages
    info = message["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (poison, poison)
    assert info["batchSize"] == 1
    assert info["shardId"] == "shardId-000000000000"
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["approximateInvokeCount"] == 1 + retries
    assert message["requestContext"]["functionArn"].endswith(
        ":function:" + stack.function_name(RECORDER)
    )
