"""Contact-events Lambda: Amazon Connect's contact events (EventBridge), kept on the recordings.

The rule in template.yaml sends this instance's DISCONNECTED events here; each is written on
the recordings of its contact's interaction, where the recorder reads it when its stream goes
silent. Events of contacts nobody records change nothing. A malformed event raises: Lambda's
asynchronous retries, then the failure queue, keep it.
"""

from __future__ import annotations

from dataclasses import asdict
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from callrec.config import ContactEventSettings
from callrec.contacts import ContactEvents
from callrec.interactions import InteractionStore
from callrec.logs import PersonalDataFormatter, masked_invocation

logger = Logger(logger_formatter=PersonalDataFormatter())
tracer = Tracer()
metrics = Metrics()


@lru_cache(maxsize=1)
def default_events() -> ContactEvents:
    settings = ContactEventSettings.from_env()
    store = InteractionStore(settings.table_name, boto3.client("dynamodb"))
    return ContactEvents(store, instance_arn=settings.instance_arn)


# Errors are not kept as trace metadata: their messages may quote the contact's data.
@tracer.capture_lambda_handler(capture_error=False)
# Inside the tracer (which records the raised error's message), outside the event logging.
@masked_invocation(logger)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, events: ContactEvents | None = None
) -> dict[str, Any]:
    outcome = (events or default_events()).handle(event)
    if outcome.action == "noted":
        metrics.add_metric(name="DisconnectsNoted", unit=MetricUnit.Count, value=1)
    logger.info("contact event handled", **asdict(outcome))
    return asdict(outcome)
