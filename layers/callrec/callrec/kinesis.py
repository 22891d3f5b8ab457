"""Putting start records on the Kinesis stream, within Amazon Connect's deadline.

Connect waits for the contact-flow function only as long as the Invoke block's timeout: 3
seconds unless the flow sets more, 8 at most (flow_block.py). botocore's own retries know
nothing of that deadline, so they are switched off and this module retries transient
failures (throttling, 5xx, timeouts, dropped connections) itself, starting a new attempt
only while a whole attempt still fits before the deadline. Permanent failures (a missing
stream, denied access) are raised at once. It does not decide what a record says.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

from callrec.errors import CallrecError
from callrec.events import StartRecord

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient

# One attempt must fit in the default block's budget (3 s, less flow_block's margins: 2 s), so
# that even the first attempt ends before Connect gives up. A PutRecord answers in far less
# (assumed: the documentation gives no latency); a slower answer is a failure, retried while
# the deadline allows.
CONNECT_TIMEOUT = 0.5
READ_TIMEOUT = 1.0
# The longest one attempt can take before botocore gives up on it.
ATTEMPT_SECONDS = CONNECT_TIMEOUT + READ_TIMEOUT
BACKOFF_BASE = 0.05
BACKOFF_CAP = 0.8

PUBLISH_CONFIG = Config(
    connect_timeout=CONNECT_TIMEOUT,
    read_timeout=READ_TIMEOUT,
    retries={"total_max_attempts": 1, "mode": "standard"},
)

RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "KMSThrottlingException",
        "InternalFailure",
        "InternalFailureException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


class PublishError(CallrecError):
    """The start record could not be put on the stream."""


@dataclass(frozen=True, slots=True)
class PutReceipt:
    """Where the record landed."""

    shard_id: str
    sequence_number: str
    attempts: int


@lru_cache(maxsize=1)
def kinesis_client() -> KinesisClient:
    """The process's Kinesis client, created once and reused by warm invocations."""
    return boto3.client("kinesis", config=PUBLISH_CONFIG)


class StartRecordPublisher:
    """Puts start records on one stream, partitioned by contact id."""

    def __init__(
        self,
        stream_name: str,
        client: KinesisClient | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._stream_name = stream_name
        self._client = client or kinesis_client()
        self._clock = clock
        self._sleep = sleep

    def publish(self, record: StartRecord, *, deadline: float) -> PutReceipt:
        """Put one record; retry transient failures while an attempt fits before `deadline`.

        `deadline` is a value of the publisher's clock (time.monotonic by default).
        """
        data = record.to_json()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._client.put_record(
                    StreamName=self._stream_name, Data=data, PartitionKey=record.contact_id
                )
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if code not in RETRYABLE_CODES and status < 500:
                    raise PublishError(
                        f"contact {record.contact_id}: Kinesis PutRecord to {self._stream_name} "
                        f"failed permanently: {code}: {exc}"
                    ) from exc
                failure: Exception = exc
            except (ConnectionError, HTTPClientError, BotoCoreError) as exc:
                failure = exc
            else:
                return PutReceipt(response["ShardId"], response["SequenceNumber"], attempt)
            pause = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
            if self._clock() + pause + ATTEMPT_SECONDS > deadline:
                raise PublishError(
                    f"contact {record.contact_id}: Kinesis PutRecord to {self._stream_name} "
                    f"failed {attempt} time(s), no time left for another attempt: {failure}"
                ) from failure
            self._sleep(pause)
