"""What invokes the functions in AWS, wired in-process around moto: the parts moto cannot run.

- `KinesisEventSource`: Lambda's Kinesis event source mapping. One poller per shard reads the
  stream through boto3 (GetShardIterator/GetRecords), gathers up to BatchSize records or until
  MaximumBatchingWindowInSeconds passes, and invokes the function synchronously with a real-shaped
  Kinesis event. Shards are processed in order: a batch is finished (succeeded, or sent to the
  OnFailure destination) before the next starts. On a partial batch response (ReportBatchItemFailures)
  the records from the lowest failed sequence number on are retried; on a function error (exception,
  timeout, crash, invalid batchItemFailures) the batch is bisected when BisectBatchOnFunctionError
  is set (splitting does not count as a retry) and otherwise retried, up to MaximumRetryAttempts;
  then the batch's KinesisBatchInfo goes to the OnFailure queue and the shard moves on. Records
  older than MaximumRecordAgeInSeconds go there too, unprocessed.
  Deliberately simpler than Lambda: a retried batch holds only the records still to do (Lambda may
  top it up with newer records), ParallelizationFactor is 1, and retries are immediate.
- `S3Notifications`: the bucket's notification configuration is put through boto3 with the
  template's events and prefix/suffix filters, but targeting a local-only SQS queue per S3 event
  (moto applies the filters and delivers S3's event JSON to SQS; it cannot invoke Lambda without
  Docker). A poller moves each record from the queue into an asynchronous invocation of the
  function, so S3 events get Lambda's async retries and OnFailure destination.
- `Schedule`: an EventBridge Scheduler rate schedule invoking the function asynchronously with the
  schedule's Input, its period scaled by the stack's time factor.
- `EventRules`: EventBridge rules on the default bus (SAM EventBridgeRule). Each rule is put on
  moto's EventBridge with the template's event pattern, targeting a local-only SQS queue (moto
  matches the pattern and delivers the event's JSON to SQS; it cannot invoke Lambda without
  Docker); a poller moves each event into an asynchronous invocation of the function, with
  Lambda's retries and OnFailure destination. EventBridge's own retries towards the target are
  not emulated (the target here is a queue that is always there), nor is the event's age: an
  event's `time` is on the media clock, which runs faster than the wall clock.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, unquote_plus

from callrec_local.lambda_runtime import FailureSink, Invocation, LambdaRuntime
from callrec_local.template import (
    Account,
    EventRuleSource,
    FunctionSpec,
    KinesisSource,
    S3Source,
    ScheduleSource,
)

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_kinesis.type_defs import RecordTypeDef
    from mypy_boto3_s3 import S3Client

SqsClient = Any  # no mypy_boto3_sqs in the dev venv

logger = logging.getLogger(__name__)


class _Threads:
    """A set of daemon threads that end when `stop()` is called."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def stopping(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Stop taking new work (`stop()` then waits for the threads)."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)


def _iso(timestamp: dt.datetime) -> str:
    return timestamp.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ------------------------------------------------------------------ Kinesis


class KinesisEventSource(_Threads):
    """Lambda's Kinesis event source mapping for one function and stream."""

    def __init__(
        self,
        runtime: LambdaRuntime,
        function: FunctionSpec,
        source: KinesisSource,
        *,
        stream_name: str,
        client: KinesisClient,
        deliver: FailureSink,
        account: Account,
        time_scale: float = 1.0,
        poll_interval_s: float = 1.0,
    ) -> None:
        super().__init__()
        self.function = function
        self.source = source
        self.stream_name = stream_name
        self._runtime = runtime
        self._client = client
        self._deliver = deliver
        self._account = account
        self._time_scale = time_scale
        # Lambda polls an idle shard about once a second.
        self._poll_interval_s = poll_interval_s * time_scale

    def start(self) -> None:
        if not self.source.enabled:
            return
        shards = self._client.list_shards(StreamName=self.stream_name)["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            iterator = self._client.get_shard_iterator(
                StreamName=self.stream_name,
                ShardId=shard_id,
                ShardIteratorType=self.source.starting_position,  # type: ignore[arg-type]
            )["ShardIterator"]
            self._spawn(
                functools.partial(self._poll, shard_id, iterator),
                name=f"kinesis-{self.function.name}-{shard_id}",
            )

    def _poll(self, shard_id: str, iterator: str | None) -> None:
        buffer: list[RecordTypeDef] = []
        first_buffered = 0.0
        window_s = self.source.maximum_batching_window_s * self._time_scale
        while not self.stopping() and (iterator is not None or buffer):
            if iterator is not None:
                try:
                    response = self._client.get_records(ShardIterator=iterator, Limit=10000)
                except Exception:
                    if self.stopping():
                        return
                    # Lambda keeps polling through stream errors; so does the local mapping.
                    logger.exception("GetRecords on %s %s failed", self.stream_name, shard_id)
                    self._stop.wait(self._poll_interval_s)
                    continue
                iterator = response.get("NextShardIterator")
                if response["Records"] and not buffer:
                    first_buffered = time.monotonic()
                buffer.extend(response["Records"])
            if not buffer:
                self._stop.wait(self._poll_interval_s)
                continue
            waited = time.monotonic() - first_buffered
            if len(buffer) < self.source.batch_size and waited < window_s:
                self._stop.wait(min(self._poll_interval_s, window_s - waited))
                continue
            batch, buffer = buffer[: self.source.batch_size], buffer[self.source.batch_size :]
            first_buffered = time.monotonic()
            self._process(shard_id, batch)

    def _process(self, shard_id: str, records: list[RecordTypeDef]) -> None:
        """Run one batch to completion: success, or its remains sent to the OnFailure destination."""
        source = self.source
        work: list[tuple[list[RecordTypeDef], int]] = [(records, 0)]  # (batch, retries so far)
        while work and not self.stopping():
            batch, retries = work.pop(0)
            batch = self._drop_expired(shard_id, batch)
            if not batch:
                continue
            invocation = self._runtime.invoke(
                self.function.name, self._event(shard_id, batch), source="kinesis"
            )
            failed_from = self._failed_from(invocation, batch)
            if failed_from is None:
                continue
            exhausted = 0 <= source.maximum_retry_attempts <= retries
            if failed_from > 0 or invocation.ok:
                # A valid partial batch response: resume from the lowest failed sequence number.
                remaining = batch[failed_from:]
                if exhausted:
                    self._send_batch_info(shard_id, remaining, invocation, retries + 1)
                else:
                    work.insert(0, (remaining, retries + 1))
            elif source.bisect_batch_on_function_error and len(batch) > 1:
                half = len(batch) // 2
                work[0:0] = [(batch[:half], retries), (batch[half:], retries)]
            elif exhausted:
                self._send_batch_info(shard_id, batch, invocation, retries + 1)
            else:
                work.insert(0, (batch, retries + 1))

    def _failed_from(self, invocation: Invocation, batch: list[RecordTypeDef]) -> int | None:
        """None on success; else the index of the first record to retry (0: the whole batch)."""
        if not invocation.ok:
            return 0
        if not self.source.report_batch_item_failures or not isinstance(invocation.result, dict):
            return None
        failures = invocation.result.get("batchItemFailures")
        if not failures:
            return None
        positions = {record["SequenceNumber"]: index for index, record in enumerate(batch)}
        indexes: list[int] = []
        for failure in failures if isinstance(failures, list) else [failures]:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if identifier not in positions:
                # Lambda treats an empty, null or unknown itemIdentifier as a failed batch.
                invocation.error = {
                    "errorType": "InvalidBatchItemFailures",
                    "errorMessage": f"itemIdentifier {identifier!r} is not in the batch",
                }
                return 0
            indexes.append(positions[identifier])
        return min(indexes)

    def _drop_expired(self, shard_id: str, batch: list[RecordTypeDef]) -> list[RecordTypeDef]:
        if self.source.maximum_record_age_s < 0:
            return batch
        max_age_s = self.source.maximum_record_age_s * self._time_scale
        now = time.time()
        expired = [
            r for r in batch if now - r["ApproximateArrivalTimestamp"].timestamp() > max_age_s
        ]
        if expired:
            self._send_batch_info(shard_id, expired, None, 0, condition="RecordAgeExceeded")
        return [r for r in batch if r not in expired]

    def _event(self, shard_id: str, batch: list[RecordTypeDef]) -> dict[str, Any]:
        return {
            "Records": [
                {
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": record["PartitionKey"],
                        "sequenceNumber": record["SequenceNumber"],
                        "data": base64.b64encode(record["Data"]).decode(),
                        "approximateArrivalTimestamp": record[
                            "ApproximateArrivalTimestamp"
                        ].timestamp(),
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": f"{shard_id}:{record['SequenceNumber']}",
                    "eventName": "aws:kinesis:record",
                    "invokeIdentityArn": f"arn:{self._account.partition}:iam::"
                    f"{self._account.account_id}:role/{self.function.name}-role",
                    "awsRegion": self._account.region,
                    "eventSourceARN": self.source.stream_arn,
                }
                for record in batch
            ]
        }

    def _send_batch_info(
        self,
        shard_id: str,
        batch: list[RecordTypeDef],
        invocation: Invocation | None,
        invoke_count: int,
        condition: str = "RetryAttemptsExhausted",
    ) -> None:
        if self.source.on_failure is None:
            return
        message: dict[str, Any] = {
            "requestContext": {
                "requestId": invocation.request_id if invocation else str(uuid.uuid4()),
                "functionArn": self.function.arn,
                "condition": condition,
                "approximateInvokeCount": invoke_count,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": _iso(dt.datetime.now(dt.UTC)),
            "KinesisBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": batch[0]["SequenceNumber"],
                "endSequenceNumber": batch[-1]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(batch[0]["ApproximateArrivalTimestamp"]),
                "approximateArrivalOfLastRecord": _iso(batch[-1]["ApproximateArrivalTimestamp"]),
                "batchSize": len(batch),
                "streamArn": self.source.stream_arn,
            },
        }
        self._deliver(self.source.on_failure, message)


# ------------------------------------------------------------------ S3


class S3Notifications(_Threads):
    """S3 ObjectCreated notifications, filtered as configured, delivered as async invocations."""

    def __init__(
        self,
        runtime: LambdaRuntime,
        functions: list[FunctionSpec],
        s3: S3Client,
        sqs: SqsClient,
        *,
        account: Account,
        poll_interval_s: float = 0.1,
    ) -> None:
        super().__init__()
        self._runtime = runtime
        self._functions = functions
        self._s3 = s3
        self._sqs = sqs
        self._account = account
        self._poll_interval_s = poll_interval_s
        self._routes: list[tuple[str, FunctionSpec]] = []  # (queue url, function)
        self._sequencer = itertools.count(1)

    def wiring_queue_name(self, function: FunctionSpec, source: S3Source) -> str:
        """The local-only queue that carries `source`'s events (not a template resource)."""
        return f"{self._account.stack_name}-local-s3-{function.logical_id}-{source.event_name}"[:80]

    def start(self) -> None:
        by_bucket: dict[str, list[dict[str, Any]]] = {}
        for function in self._functions:
            for source in function.s3_sources:
                name = self.wiring_queue_name(function, source)
                url = self._sqs.create_queue(QueueName=name)["QueueUrl"]
                self._routes.append((url, function))
                by_bucket.setdefault(source.bucket_name, []).append(
                    {
                        "Id": f"{function.logical_id}-{source.event_name}",
                        "QueueArn": self._account.arn("sqs", name),
                        "Events": list(source.events),
                        "Filter": {
                            "Key": {
                                "FilterRules": [
                                    {"Name": rule, "Value": value}
                                    for rule, value in source.filter_rules
                                ]
                            }
                        },
                    }
                )
        for bucket, configurations in by_bucket.items():
            self._s3.put_bucket_notification_configuration(
                Bucket=bucket,
                NotificationConfiguration={"QueueConfigurations": configurations},  # type: ignore[typeddict-item]
            )
        if self._routes:
            self._spawn(self._poll, name="s3-notifications")

    def _poll(self) -> None:
        while not self._stop.wait(self._poll_interval_s):
            for url, function in self._routes:
                try:
                    messages = self._sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
                except Exception:
                    if self.stopping():
                        return
                    logger.exception("receiving S3 events from %s failed", url)
                    continue
                for message in messages.get("Messages", []):
                    self._dispatch(function, json.loads(message["Body"]))
                    self._sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def _dispatch(self, function: FunctionSpec, body: dict[str, Any]) -> None:
        if body.get("Event") == "s3:TestEvent":
            return  # S3 sends one when the configuration is put; Lambda never sees it
        for record in body.get("Records", []):
            if _moto_multipart_echo(record):
                continue
            self._runtime.invoke_async(
                function.name, {"Records": [self._complete(record)]}, source="s3"
            )

    def _complete(self, record: dict[str, Any]) -> dict[str, Any]:
        """Add the fields real S3 events carry that moto leaves out."""
        record = {
            **record,
            "userIdentity": {"principalId": "AWS:LOCALSTACK"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {
                "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                "x-amz-id-2": base64.b64encode(uuid.uuid4().bytes).decode(),
            },
        }
        s3 = dict(record["s3"])
        s3["bucket"] = {"ownerIdentity": {"principalId": "LOCALSTACK"}, **s3["bucket"]}
        s3_object = dict(s3["object"])
        # S3 URL-encodes keys as a form value but keeps '/'; moto encodes '/' as well.
        s3_object["key"] = quote_plus(unquote_plus(s3_object["key"]), safe="/")
        s3["object"] = {**s3_object, "sequencer": f"{next(self._sequencer):018X}"}
        record["s3"] = s3
        return record


def _moto_multipart_echo(record: dict[str, Any]) -> bool:
    """moto's extra ObjectCreated:Put for a completed multipart upload (S3 sends only
    ObjectCreated:CompleteMultipartUpload); a Put's ETag never has a multipart "-<parts>" suffix."""
    return record.get("eventName") == "ObjectCreated:Put" and "-" in str(
        record.get("s3", {}).get("object", {}).get("eTag", "")
    )


# ------------------------------------------------------------------ schedules


class Schedule(_Threads):
    """An EventBridge Scheduler `rate(...)` schedule invoking a function asynchronously."""

    def __init__(
        self,
        runtime: LambdaRuntime,
        function: FunctionSpec,
        schedule: ScheduleSource,
        *,
        time_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.function = function
        self.schedule = schedule
        self._runtime = runtime
        self.period_s = schedule.period_s * time_scale

    def start(self) -> None:
        if self.schedule.enabled:
            self._spawn(self._run, name=f"schedule-{self.function.name}-{self.schedule.event_name}")

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self._runtime.invoke_async(self.function.name, self.schedule.input, source="schedule")


# ------------------------------------------------------------------ EventBridge rules


class EventRules(_Threads):
    """The functions' EventBridge rules, delivered through moto's EventBridge and SQS."""

    def __init__(
        self,
        runtime: LambdaRuntime,
        functions: list[FunctionSpec],
        events: Any,
        sqs: SqsClient,
        *,
        account: Account,
        time_scale: float = 1.0,
        poll_interval_s: float = 0.1,
    ) -> None:
        super().__init__()
        self._runtime = runtime
        self._functions = functions
        self._events = events
        self._sqs = sqs
        self._account = account
        self._time_scale = time_scale
        self._poll_interval_s = poll_interval_s
        self._routes: list[tuple[str, FunctionSpec, EventRuleSource]] = []

    def rule_name(self, function: FunctionSpec, rule: EventRuleSource) -> str:
        return f"{self._account.stack_name}-{function.logical_id}-{rule.event_name}"[:64]

    def start(self) -> None:
        for function in self._functions:
            for rule in function.event_rules:
                if not rule.enabled:
                    continue
                name = self.rule_name(function, rule)
                queue = self._sqs.create_queue(QueueName=f"{name}-local"[:80])["QueueUrl"]
                queue_arn = self._sqs.get_queue_attributes(
                    QueueUrl=queue, AttributeNames=["QueueArn"]
                )["Attributes"]["QueueArn"]
                self._events.put_rule(Name=name, EventPattern=json.dumps(rule.pattern))
                self._events.put_targets(Rule=name, Targets=[{"Id": "function", "Arn": queue_arn}])
                self._routes.append((queue, function, rule))
        if self._routes:
            self._spawn(self._poll, name="event-rules")

    def _poll(self) -> None:
        while not self._stop.wait(self._poll_interval_s):
            for url, function, rule in self._routes:
                try:
                    messages = self._sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
                except Exception:
                    if self.stopping():
                        return
                    logger.exception("receiving events from %s failed", url)
                    continue
                for message in messages.get("Messages", []):
                    self._dispatch(function, rule, json.loads(message["Body"]))
                    self._sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def _dispatch(
        self, function: FunctionSpec, rule: EventRuleSource, event: dict[str, Any]
    ) -> None:
        # moto leaves out the account; EventBridge events carry it.
        event = {"account": self._account.account_id, **event}
        self._runtime.invoke_async(function.name, event, source="events")


def start_records_event(records: list[bytes], partition_keys: list[str]) -> dict[str, Any]:
    """The event the Kinesis event source mapping would deliver for these records (start
    records as put by the contact-flow function, partitioned by contact id), on one shard of
    a stream named `starts`: for invoking the recorder directly, without the stream."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": key,
                    "sequenceNumber": str(49600000000000000000000000000000000000000000000000 + n),
                    "data": base64.b64encode(data).decode(),
                    "approximateArrivalTimestamp": 1782912655.12,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{n}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/recorder",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/starts",
            }
            for n, (data, key) in enumerate(zip(records, partition_keys, strict=True))
        ]
    }
