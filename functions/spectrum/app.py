"""Spectrum Lambda: renders a spectrogram PNG for every WAV that lands under recordings/.

Permanent failures (not a recording, gone, not a WAV, empty) are logged and counted by the store
and the invocation succeeds; transient ones raise, so the asynchronous retries and then the
failure queue take over.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.typing import LambdaContext

from callrec.logs import PersonalDataFormatter, masked_invocation
from callrec.spectrogram_store import RecordingKey, SpectrogramStore
from callrec.spectrum_config import SpectrumSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

logger = Logger(logger_formatter=PersonalDataFormatter())
tracer = Tracer()
metrics = Metrics()


@lru_cache(maxsize=1)
def default_store() -> SpectrogramStore:
    return SpectrogramStore.with_default_clients(SpectrumSettings.from_env())


# Errors are not kept as trace metadata: their messages may quote the contact's data.
@tracer.capture_lambda_handler(capture_error=False)
# Inside the tracer (which records the raised error's message), outside the event logging.
@masked_invocation(logger)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any],
    context: LambdaContext,
    *,
    s3: S3Client | None = None,
    dynamodb: DynamoDBClient | None = None,
) -> dict[str, list[dict[str, str | None]]]:
    store = default_store()
    if s3 is not None and dynamodb is not None:  # test seam: clients pointed elsewhere
        store = SpectrogramStore(store.settings, s3=s3, dynamodb=dynamodb)
    results = []
    for record in S3Event(event).records:
        key = record.s3.get_object.key
        # Per object: one event may carry several contacts' recordings.
        with logger.append_context_keys(contact_id=RecordingKey.contact_id_of(key)):
            results.append(store.render(record.s3.bucket.name, key))
    return {
        "results": [
            {"key": r.key, "outcome": r.outcome, "image": r.spectrogram_key} for r in results
        ]
    }
