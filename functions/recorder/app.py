"""Recorder Lambda: registers start records (Kinesis), records calls (its own async
invocations, one after another), and resumes stalled recordings (every minute)."""

from __future__ import annotations

from dataclasses import asdict
from functools import lru_cache, partial
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from callrec.config import RecorderSettings
from callrec.connect import ContactDirectory
from callrec.events import StartRecord
from callrec.handoff import Invoker, RecorderCommand
from callrec.interactions import InteractionStore
from callrec.kvs import MediaSource
from callrec.logs import PersonalDataFormatter, masked_invocation
from callrec.recorder import Outcome, Recorder
from callrec.recordings import RecordingStore

logger = Logger(logger_formatter=PersonalDataFormatter())
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.KinesisDataStreams)


@lru_cache(maxsize=8)
def connect_directory(instance_arn: str) -> ContactDirectory | None:
    """DescribeContact for the start record's instance (None for an ARN that is not one)."""
    try:
        return ContactDirectory(instance_arn)
    except ValueError:
        return None


@lru_cache(maxsize=1)
def default_recorder() -> Recorder:
    settings = RecorderSettings.from_env()
    dynamodb = boto3.client("dynamodb")
    return Recorder(
        settings,
        store=RecordingStore(
            settings.table_name, dynamodb, retention_days=settings.expiration_days
        ),
        invoker=Invoker(settings.function_name),
        media=MediaSource(),
        s3=boto3.client("s3"),
        directory_for=connect_directory,
        interactions=InteractionStore(settings.table_name, dynamodb),
    )


def register(recorder: Recorder, record: KinesisStreamRecord) -> None:
    # A batch holds many contacts: the key is this record's only (send_event partitions by
    # contact id, so even a record that does not parse names its contact).
    with logger.append_context_keys(contact_id=record.kinesis.partition_key):
        try:
            recorder.register(StartRecord.from_json(record.kinesis.data_as_bytes()))
        except Exception:
            logger.exception(
                "start record not registered", sequence_number=record.kinesis.sequence_number
            )
            raise


def publish_metrics(outcome: Outcome) -> None:
    """One count per outcome (RecordingsCompleted, RecordingsFailed, RecordingsHandedOff, ...)."""
    action = outcome.action.title().replace("_", "")
    metrics.add_metric(name=f"Recordings{action}", unit=MetricUnit.Count, value=1)
    if outcome.recorded_seconds:
        metrics.add_metric(
            name="RecordedSeconds", unit=MetricUnit.Seconds, value=outcome.recorded_seconds
        )
    if outcome.gaps_filled:
        metrics.add_metric(name="GapsFilled", unit=MetricUnit.Count, value=outcome.gaps_filled)
    if outcome.read_lag_ms is not None:
        metrics.add_metric(name="ReadLag", unit=MetricUnit.Milliseconds, value=outcome.read_lag_ms)


# Errors are not kept as trace metadata: their messages may quote the contact's data.
@tracer.capture_lambda_handler(capture_error=False)
# Inside the tracer (which records the raised error's message), outside the event logging.
@masked_invocation(logger)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, recorder: Recorder | None = None
) -> dict[str, Any]:
    recorder = recorder or default_recorder()
    if "Records" in event:  # start records from the Kinesis stream
        handler = partial(register, recorder)
        response = process_partial_response(
            event=event, record_handler=handler, processor=processor, context=context
        )
        return dict(response)
    command = RecorderCommand.from_event(event)
    if command.contact_id is None:  # the schedule's sweep
        resumed = recorder.sweep()
        metrics.add_metric(
            name="StalledRecordingsResumed", unit=MetricUnit.Count, value=len(resumed)
        )
        return {"resumed": resumed}
    logger.append_keys(contact_id=command.contact_id)
    outcome = recorder.record(
        command.contact_id,
        owner=context.aws_request_id,
        remaining_ms=context.get_remaining_time_in_millis,
    )
    publish_metrics(outcome)
    return asdict(outcome)
