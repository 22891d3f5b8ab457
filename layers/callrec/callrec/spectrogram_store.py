"""S3 and DynamoDB side of the spectrum function: read a recording, store its image, note it.

`SpectrogramStore.render(bucket, key)` streams the WAV from S3 through ranged GETs (no /tmp copy:
a 4-hour stereo WAV is 460 MB, more than Lambda's default ephemeral storage), renders it with
`callrec.spectrum`, puts the PNG under the spectrograms prefix and adds its key to the
recording's DynamoDB item.

Errors are sorted here into permanent ones (not a recording key, object gone, not a WAV, empty,
corrupt), which are logged, counted and returned as an `Outcome` so the event is not retried, and
transient ones (throttling, 5xx, network), raised as `StoreUnavailable` so Lambda's asynchronous
retries and then the failure destination deal with them. Rendering the same object again
overwrites the same image key and adds the same key to the set: repeated events are harmless.
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from callrec import spectrum
from callrec.errors import CallrecError
from callrec.spectrum_config import SpectrumSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef

logger = Logger(child=True)
metrics = Metrics()

# recordings/YYYY/MM/DD/<contactId>/<start>-<kind>.wav, <start> like 20261124T054703Z.
RECORDING_KEY: Final = re.compile(
    r"(?P<date>\d{4}/\d{2}/\d{2})/(?P<contact_id>[A-Za-z0-9_.:-]{1,128})/"
    r"(?P<start>\d{8}T\d{6}Z)-(?P<kind>cu|op|stereo)\.wav"
)
START_FORMAT: Final = "%Y%m%dT%H%M%SZ"
# S3 error codes that mean the object is not there (deleted, or never was).
GONE_CODES: Final = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchBucket"})
# A forward seek this short reads and discards rather than opening a new ranged GET.
SKIP_LIMIT: Final = 256 * 1024


class UnexpectedKey(CallrecError):
    """The object's key is not a recording's: nothing to render (permanent)."""


class RecordingGone(CallrecError):
    """The recording was deleted (or replaced) before it could be read (permanent)."""


class StoreUnavailable(CallrecError):
    """S3 or DynamoDB failed in a way a retry may cure (throttling, 5xx, network)."""


class Outcome(StrEnum):
    """What happened to one S3 notification record."""

    RENDERED = "rendered"
    RENDERED_NO_ITEM = "rendered-no-item"
    GONE = "gone"
    BAD_RECORDING = "bad-recording"
    UNEXPECTED_KEY = "unexpected-key"


@dataclass(frozen=True, slots=True)
class RecordingKey:
    """The parts of a recording's S3 key."""

    date: str
    contact_id: str
    start: datetime
    kind: str

    @classmethod
    def parse(cls, key: str, prefix: str) -> RecordingKey:
        """Parse `<prefix>YYYY/MM/DD/<contactId>/<start>-<cu|op|stereo>.wav`."""
        match = RECORDING_KEY.fullmatch(key[len(prefix) :]) if key.startswith(prefix) else None
        if match is None:
            raise UnexpectedKey(
                f"expected {prefix}YYYY/MM/DD/<contactId>/<YYYYMMDDTHHMMSSZ>-<cu|op|stereo>.wav, "
                f"found {key!r}"
            )
        try:
            start = datetime.strptime(match["start"], START_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise UnexpectedKey(
                f"expected a UTC start time in {key!r}, found {match['start']!r}"
            ) from None
        return cls(match["date"], match["contact_id"], start, match["kind"])

    @staticmethod
    def contact_id_of(key: str) -> str | None:
        """The contact id in a recording's key, for log lines; None for any other key."""
        match = RECORDING_KEY.search(key)
        return match["contact_id"] if match else None

    def spectrogram_key(self, prefix: str) -> str:
        """Where this recording's image goes: the same path under the spectrograms prefix."""
        return f"{prefix}{self.date}/{self.contact_id}/{self.start:{START_FORMAT}}-{self.kind}.png"


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome for one recording, and the image key when one was written."""

    outcome: Outcome
    key: str
    spectrogram_key: str | None = None


def _is_transient(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    code = exc.response.get("Error", {}).get("Code", "")
    return (
        status >= 500
        or status == 429
        or "Throttl" in code
        or code in {"SlowDown", "RequestTimeout"}
    )


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3ObjectReader(io.RawIOBase):
    """A seekable, read-only file over one S3 object version, fetched through ranged GETs.

    libsndfile reads the header with a few seeks, then the data in order: the first GET streams
    from byte 0, a seek elsewhere opens a new ranged GET only when data is next read there. Every
    GET after the first is pinned to the first one's ETag, so a replaced object is noticed rather
    than read half old, half new. A failure inside a read is remembered in `failure` (libsndfile
    sees only a short read) for the caller to raise.
    """

    def __init__(self, s3: S3Client, bucket: str, key: str) -> None:
        super().__init__()
        self._s3, self._bucket, self._key = s3, bucket, key
        self._body: Any = None
        first = self._get(None)
        self.size: int = first["ContentLength"]
        self.metadata: dict[str, str] = dict(first.get("Metadata", {}))
        self._etag: str = first["ETag"]
        self._body = first["Body"]
        self._body_pos = 0
        self._pos = 0
        self.requests = 1
        self.failure: Exception | None = None

    def _get(self, start: int | None) -> GetObjectOutputTypeDef:
        try:
            if start is None:
                return self._s3.get_object(Bucket=self._bucket, Key=self._key)
            return self._s3.get_object(
                Bucket=self._bucket, Key=self._key, Range=f"bytes={start}-", IfMatch=self._etag
            )
        except ClientError as exc:
            code = _error_code(exc)
            if code in GONE_CODES:
                raise RecordingGone(f"s3://{self._bucket}/{self._key} no longer exists") from exc
            if code == "PreconditionFailed":
                raise RecordingGone(
                    f"s3://{self._bucket}/{self._key} was replaced while it was being read"
                ) from exc
            if _is_transient(exc):
                raise StoreUnavailable(f"reading s3://{self._bucket}/{self._key}: {exc}") from exc
            raise
        except BotoCoreError as exc:
            raise StoreUnavailable(f"reading s3://{self._bucket}/{self._key}: {exc}") from exc

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), max(0, self.size - self._pos))
        if wanted == 0 or self.failure is not None:
            return 0
        try:
            self._position_body()
            done = 0
            while done < wanted:
                data = self._body.read(wanted - done)
                if not data:
                    break
                view[done : done + len(data)] = data
                done += len(data)
        except Exception as exc:  # handed to the caller through `failure`
            self.failure = exc
            return 0
        self._pos += done
        self._body_pos = self._pos
        return done

    def _position_body(self) -> None:
        skip = self._pos - self._body_pos
        if self._body is not None and 0 <= skip <= SKIP_LIMIT:
            while skip > 0:
                skipped = len(self._body.read(min(skip, 64 * 1024)))
                if not skipped:
                    break
                skip -= skipped
            if skip == 0:
                return
        if self._body is not None:
            self._body.close()
        self._body = self._get(self._pos)["Body"]
        self._body_pos = self._pos
        self.requests += 1

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None
        super().close()


def _start_from_metadata(metadata: dict[str, str], fallback: datetime) -> datetime:
    raw = metadata.get("start", "")
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        return fallback
    return parsed.astimezone(UTC)


class SpectrogramStore:
    """Renders recordings from S3 to spectrogram images in S3 and notes them in DynamoDB."""

    def __init__(self, settings: SpectrumSettings, *, s3: S3Client, dynamodb: DynamoDBClient):
        self.settings = settings
        self._s3 = s3
        self._dynamodb = dynamodb

    @classmethod
    def with_default_clients(cls, settings: SpectrumSettings) -> SpectrogramStore:
        """A store with boto3 clients from the environment (the function's role), standard
        retries: create it once per execution environment."""
        config = Config(retries={"mode": "standard", "max_attempts": 3})
        session = boto3.session.Session()
        return cls(
            settings,
            s3=session.client("s3", config=config),
            dynamodb=session.client("dynamodb", config=config),
        )

    def render(self, bucket: str, key: str) -> Result:
        """Render one recording. Permanent failures are logged, counted and returned; transient
        ones raise StoreUnavailable."""
        try:
            return self._render_and_note(bucket, key)
        except StoreUnavailable:
            logger.exception("storage failed: raised for a retry", recording_key=key)
            metrics.add_metric(name="SpectrumStoreErrors", unit=MetricUnit.Count, value=1)
            raise

    def _render_and_note(self, bucket: str, key: str) -> Result:
        prefix = self.settings.recordings_prefix
        try:
            recording = RecordingKey.parse(key, prefix)
        except UnexpectedKey as exc:
            logger.error("not a recording key: nothing rendered", key=key, reason=str(exc))
            metrics.add_metric(name="SpectrumUnexpectedKeys", unit=MetricUnit.Count, value=1)
            return Result(Outcome.UNEXPECTED_KEY, key)
        # Keys per line, not append_keys: one event may carry several contacts' recordings.
        where = {"contact_id": recording.contact_id, "recording_key": key}
        image_key = recording.spectrogram_key(self.settings.spectrograms_prefix)
        try:
            rendered = self._render(bucket, key, recording)
        except RecordingGone as exc:
            logger.warning(
                "recording gone before it was read: nothing rendered", reason=str(exc), extra=where
            )
            metrics.add_metric(name="SpectrumRecordingsGone", unit=MetricUnit.Count, value=1)
            return Result(Outcome.GONE, key)
        except spectrum.BadRecording as exc:
            logger.error("not a readable recording: nothing rendered", reason=str(exc), extra=where)
            metrics.add_metric(name="SpectrumBadRecordings", unit=MetricUnit.Count, value=1)
            return Result(Outcome.BAD_RECORDING, key)

        self._put_image(bucket, image_key, recording, rendered)
        noted = self._note_on_item(recording.contact_id, image_key, where)
        metrics.add_metric(name="SpectrogramsRendered", unit=MetricUnit.Count, value=1)
        logger.info(
            "spectrogram rendered",
            spectrogram_key=image_key,
            duration_seconds=round(rendered.duration_seconds, 3),
            channels=rendered.channels,
            png_bytes=len(rendered.png),
            extra=where,
        )
        return Result(Outcome.RENDERED if noted else Outcome.RENDERED_NO_ITEM, key, image_key)

    def _render(self, bucket: str, key: str, recording: RecordingKey) -> spectrum.Rendered:
        started = time.perf_counter()
        with S3ObjectReader(self._s3, bucket, key) as reader:
            start = _start_from_metadata(reader.metadata, recording.start)
            labels = spectrum.CHANNEL_LABELS[recording.kind]
            try:
                rendered = spectrum.render(
                    reader, contact_id=recording.contact_id, start=start, channel_labels=labels
                )
            except spectrum.BadRecording:
                if reader.failure is not None:
                    raise self._read_failure(reader.failure, bucket, key) from reader.failure
                raise
            if reader.failure is not None:
                raise self._read_failure(reader.failure, bucket, key) from reader.failure
            logger.debug("recording read", size=reader.size, requests=reader.requests)
        metrics.add_metric(
            name="SpectrumRenderTime", unit=MetricUnit.Seconds, value=time.perf_counter() - started
        )
        return rendered

    @staticmethod
    def _read_failure(exc: Exception, bucket: str, key: str) -> CallrecError:
        if isinstance(exc, CallrecError):
            return exc
        return StoreUnavailable(f"reading s3://{bucket}/{key} failed part way: {exc!r}")

    def _put_image(
        self, bucket: str, image_key: str, recording: RecordingKey, rendered: spectrum.Rendered
    ) -> None:
        try:
            self._s3.put_object(
                Bucket=bucket,
                Key=image_key,
                Body=rendered.png,
                ContentType="image/png",
                Metadata={
                    "contact-id": recording.contact_id,
                    "start": recording.start.isoformat().replace("+00:00", "Z"),
                    "duration": f"{rendered.duration_seconds:.3f}",
                    "kind": recording.kind,
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreUnavailable(f"writing s3://{bucket}/{image_key}: {exc}") from exc

    def _note_on_item(self, contact_id: str, image_key: str, where: dict[str, str]) -> bool:
        try:
            self._dynamodb.update_item(
                TableName=self.settings.table_name,
                Key={"contact_id": {"S": contact_id}},
                UpdateExpression="ADD spectrogram_keys :keys",
                ConditionExpression="attribute_exists(contact_id)",
                ExpressionAttributeValues={":keys": {"SS": [image_key]}},
            )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                logger.warning(
                    "no recording item for this contact: image stored, key not recorded",
                    spectrogram_key=image_key,
                    table_name=self.settings.table_name,
                    extra=where,
                )
                metrics.add_metric(name="SpectrumItemsMissing", unit=MetricUnit.Count, value=1)
                return False
            raise StoreUnavailable(
                f"adding {image_key} to item {contact_id} in {self.settings.table_name}: {exc}"
            ) from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(
                f"adding {image_key} to item {contact_id} in {self.settings.table_name}: {exc}"
            ) from exc
        return True
