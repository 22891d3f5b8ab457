"""Contact-flow Lambda: after "Start media streaming", puts the call's start record on Kinesis.

Returns a flat map of strings, as Connect requires. Any error (no media stream, not a voice
call, Kinesis unavailable after retries) is raised, so the flow takes its Error branch. Its
retries end before the Invoke block's timeout does (flow_block.py).
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from callrec.config import SendEventSettings
from callrec.errors import CallrecError
from callrec.events import start_record_from_contact_flow
from callrec.flow_block import BlockTimeout
from callrec.kinesis import StartRecordPublisher
from callrec.logs import PersonalDataFormatter, masked_invocation

logger = Logger(logger_formatter=PersonalDataFormatter())
tracer = Tracer()
metrics = Metrics()


@lru_cache(maxsize=1)
def settings() -> SendEventSettings:
    return SendEventSettings.from_env()


@lru_cache(maxsize=1)
def default_publisher() -> StartRecordPublisher:
    return StartRecordPublisher(settings().stream_name)


# Errors are not kept as trace metadata: their messages may quote the contact's data.
@tracer.capture_lambda_handler(capture_error=False)
# Inside the tracer (which records the raised error's message), outside the event logging.
@masked_invocation(logger)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, publisher: StartRecordPublisher | None = None
) -> dict[str, str]:
    try:
        record = start_record_from_contact_flow(
            event, include_phone_number=settings().include_phone_number
        )
        logger.append_keys(contact_id=record.contact_id)
        timeout = BlockTimeout.from_event(event)
        deadline = timeout.deadline(
            now=time.monotonic(), lambda_remaining_s=context.get_remaining_time_in_millis() / 1000
        )
        receipt = (publisher or default_publisher()).publish(record, deadline=deadline)
    except CallrecError:
        # Raised on purpose: the flow takes its Error branch. Counted, so an alarm can see it.
        metrics.add_metric(name="StartRecordFailures", unit=MetricUnit.Count, value=1)
        logger.exception("recording not started")
        raise
    logger.info(
        "start record sent",
        stream_name=record.stream_name,
        attempts=receipt.attempts,
        block_timeout_s=timeout.seconds,
    )
    metrics.add_metric(name="RecordingsStarted", unit=MetricUnit.Count, value=1)
    return {"status": "RECORDING_REQUESTED", "contactId": record.contact_id}
