"""Retries of the Kinesis put within Connect's deadline, against a fake client and clock."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from callrec.events import start_record_from_contact_flow
from callrec.kinesis import ATTEMPT_SECONDS, PublishError, StartRecordPublisher
from tests.support import load_event


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutRecord",
    )


class FakeKinesis:
    """Fails with the given errors in order, then succeeds; records every call."""

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls: list[dict[str, Any]] = []

    def put_record(self, **kwargs: Any) -> dict[str, str]:
        self.calls.append(kwargs)
        if self.failures:
            raise self.failures.pop(0)
        return {"ShardId": "shardId-000000000000", "SequenceNumber": "42"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def record() -> Any:
    return start_record_from_contact_flow(load_event("contact-flow-event.json"))


def publisher(client: FakeKinesis, clock: FakeClock) -> StartRecordPublisher:
    return StartRecordPublisher("starts", client, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]


def test_puts_the_record_partitioned_by_contact(record: Any) -> None:
    client, clock = FakeKinesis([]), FakeClock()

    receipt = publisher(client, clock).publish(record, deadline=clock.now + 7.5)

    assert receipt.sequence_number == "42"
    assert receipt.attempts == 1
    assert client.calls == [
        {"StreamName": "starts", "Data": record.to_json(), "PartitionKey": record.contact_id}
    ]


def test_transient_failures_are_retried(record: Any) -> None:
    failures: list[Exception] = [
        client_error("ProvisionedThroughputExceededException", 400),
        client_error("InternalFailure", 500),
        EndpointConnectionError(endpoint_url="https://kinesis.us-east-1.amazonaws.com"),
    ]
    client, clock = FakeKinesis(failures), FakeClock()

    receipt = publisher(client, clock).publish(record, deadline=clock.now + 7.5)

    assert receipt.attempts == 4
    assert len(client.calls) == 4


def test_permanent_failure_is_raised_at_once(record: Any) -> None:
    client, clock = FakeKinesis([client_error("ResourceNotFoundException", 400)]), FakeClock()

    with pytest.raises(PublishError, match="failed permanently: ResourceNotFoundException"):
        publisher(client, clock).publish(record, deadline=clock.now + 7.5)
    assert len(client.calls) == 1


def test_no_attempt_starts_that_could_overrun_the_deadline(record: Any) -> None:
    failures = [client_error("ProvisionedThroughputExceededException", 400)] * 1000
    client, clock = FakeKinesis(list(failures)), FakeClock()
    started: list[float] = []
    put_record = client.put_record
    client.put_record = lambda **kw: (started.append(clock.now), put_record(**kw))[1]  # type: ignore[method-assign]
    deadline = clock.now + 7.5

    with pytest.raises(PublishError, match="no time left for another attempt"):
        publisher(client, clock).publish(record, deadline=deadline)

    # Every attempt began early enough to finish, even at its full timeout, by the deadline,
    # and the retries used the time there was rather than giving up early.
    assert all(t + ATTEMPT_SECONDS <= deadline for t in started)
    assert started[-1] + ATTEMPT_SECONDS > deadline - 1.0
    assert len(started) >= 5
