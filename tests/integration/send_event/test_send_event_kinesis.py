"""The contact-flow Lambda end to end against a real Kinesis API (moto on loopback)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from types import ModuleType

import boto3
import pytest

from callrec.events import StartRecord, start_record_from_contact_flow
from callrec.flow_block import BlockTimeout
from callrec.kinesis import (
    ATTEMPT_SECONDS,
    BACKOFF_CAP,
    PublishError,
    StartRecordPublisher,
    kinesis_client,
)
from tests.integration.conftest import free_port
from tests.support import FakeLambdaContext, load_event, load_function


@pytest.fixture
def stream_name(aws_env: str) -> Iterator[str]:
    name = f"starts-{uuid.uuid4().hex[:8]}"
    client = boto3.client("kinesis")
    client.create_stream(StreamName=name, ShardCount=1)
    client.get_waiter("stream_exists").wait(StreamName=name)
    yield name
    client.delete_stream(StreamName=name)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, stream_name: str) -> ModuleType:
    monkeypatch.setenv("STREAM_NAME", stream_name)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CallRecorder")
    kinesis_client.cache_clear()
    return load_function("send_event")


def read_all(stream_name: str) -> list[tuple[str, bytes]]:
    client = boto3.client("kinesis")
    shard = client.list_shards(StreamName=stream_name)["Shards"][0]["ShardId"]
    iterator = client.get_shard_iterator(
        StreamName=stream_name, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = client.get_records(ShardIterator=iterator)["Records"]
    return [(r["PartitionKey"], r["Data"]) for r in records]


def test_record_read_back_from_the_stream_equals_what_was_sent(
    app: ModuleType, stream_name: str
) -> None:
    event = load_event("contact-flow-event.json")

    result = app.lambda_handler(event, FakeLambdaContext())

    [(partition_key, data)] = read_all(stream_name)
    record = StartRecord.from_json(data)
    assert partition_key == record.contact_id == result["contactId"]
    assert (
        record.stream_arn
        == event["Details"]["ContactData"]["MediaStreams"]["Customer"]["Audio"]["StreamARN"]
    )
    assert record.start_fragment_number == "91343852333181432392682062622220590765191907586"
    assert record.start_timestamp_ms == 1782912654536
    assert record.customer_phone_number is None


def test_bad_event_writes_nothing(app: ModuleType, stream_name: str) -> None:
    event = load_event("contact-flow-event.json")
    event["Details"]["ContactData"]["Channel"] = "TASK"

    with pytest.raises(ValueError, match="must be VOICE"):
        app.lambda_handler(event, FakeLambdaContext())

    assert read_all(stream_name) == []


def test_missing_stream_fails_at_once(aws_env: str) -> None:
    record = start_record_from_contact_flow(load_event("contact-flow-event.json"))
    publisher = StartRecordPublisher("no-such-stream", boto3.client("kinesis"))

    with pytest.raises(PublishError, match="ResourceNotFoundException"):
        publisher.publish(record, deadline=time.monotonic() + 7.5)


@pytest.mark.parametrize(
    ("parameters", "block_timeout_s"), [({}, 3.0), ({"InvocationTimeLimitSeconds": "5"}, 5.0)]
)
def test_unreachable_kinesis_gives_up_before_the_invoke_block_does(
    monkeypatch: pytest.MonkeyPatch,
    app: ModuleType,
    parameters: dict[str, str],
    block_timeout_s: float,
) -> None:
    # Given Kinesis that refuses every connection at once, 8 s of Lambda time, and the block's
    # timeout as the flow passes it (or not: Connect's default, 3 s)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    kinesis_client.cache_clear()
    app.default_publisher.cache_clear()
    # A warm function: the client exists already (creating one, seconds on a loaded machine,
    # would count against the time measured here, not against the retries under test).
    app.default_publisher()
    event = load_event("contact-flow-event.json")
    event["Details"]["Parameters"].update(parameters)
    started = time.monotonic()

    # When the function runs, retrying until no whole attempt fits
    with pytest.raises(PublishError, match=r"failed \d+ time\(s\)"):
        app.lambda_handler(event, FakeLambdaContext(remaining_ms=8000))

    # Then it has given up before its deadline inside the block's timeout, once no whole
    # attempt (and its pause) fitted any more
    elapsed = time.monotonic() - started
    budget = BlockTimeout(int(block_timeout_s)).deadline(now=0.0, lambda_remaining_s=8.0)
    assert budget < block_timeout_s
    assert budget - ATTEMPT_SECONDS - BACKOFF_CAP < elapsed < budget
