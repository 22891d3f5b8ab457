"""The spectrum Lambda end to end against moto on loopback: WAV in S3 -> PNG in S3 + item updated."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.config import Config
from PIL import Image

from callrec import spectrogram_store, spectrum
from callrec.spectrogram_store import S3ObjectReader, StoreUnavailable
from tests.integration.conftest import free_port
from tests.integration.spectrum.contact import make_bucket_and_table, remove_bucket_and_table
from tests.support import FakeLambdaContext, load_event, load_function
from tests.unit.spectrum.wavs import call_wav, tone_wav

CONTACT = "5b3f0c1e-0d2a-4c8e-9a1b-1f2e3d4c5b6a"
KEY = f"recordings/2026/11/24/{CONTACT}/20261124T054703Z-stereo.wav"
IMAGE = f"spectrograms/2026/11/24/{CONTACT}/20261124T054703Z-stereo.png"


@dataclass
class Stack:
    app: ModuleType
    bucket: str
    table: str
    s3: Any
    dynamodb: Any

    def invoke(self, *keys: str, **clients: Any) -> dict[str, Any]:
        event = load_event("s3-wav-created.json")
        template = event["Records"][0]
        event["Records"] = []
        for key in keys:
            record = copy.deepcopy(template)
            record["s3"]["bucket"]["name"] = self.bucket
            record["s3"]["object"]["key"] = key.replace(" ", "+")
            event["Records"].append(record)
        clients = clients or {"s3": self.s3, "dynamodb": self.dynamodb}
        result: dict[str, Any] = self.app.lambda_handler(event, FakeLambdaContext(), **clients)
        return result

    def item(self, contact_id: str = CONTACT) -> dict[str, Any] | None:
        got = self.dynamodb.get_item(TableName=self.table, Key={"contact_id": {"S": contact_id}})
        item: dict[str, Any] | None = got.get("Item")
        return item

    def keys(self, prefix: str) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [o["Key"] for o in listed.get("Contents", [])]


@pytest.fixture
def stack(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    s3, dynamodb = boto3.session.Session().client("s3"), boto3.session.Session().client("dynamodb")
    bucket, table = make_bucket_and_table(s3, dynamodb)
    for name, value in {
        "BUCKET_NAME": bucket,
        "TABLE_NAME": table,
        "RECORDINGS_PREFIX": "recordings/",
        "SPECTROGRAMS_PREFIX": "spectrograms/",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "CallRecorder",
        # The library's child logger took its service name when first imported; the handler's
        # logger must have the same one to adopt it (in Lambda both come from the template).
        "POWERTOOLS_SERVICE_NAME": spectrogram_store.logger.service,
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield Stack(load_function("spectrum"), bucket, table, s3, dynamodb)
    finally:
        remove_bucket_and_table(s3, dynamodb, bucket, table)


def put_item(stack: Stack, contact_id: str = CONTACT) -> None:
    stack.dynamodb.put_item(
        TableName=stack.table,
        Item={"contact_id": {"S": contact_id}, "status": {"S": "COMPLETED"}},
    )


def test_a_stereo_wav_gets_its_png_and_the_item_its_key(stack: Stack) -> None:
    # Given a recording item and its stereo WAV in S3
    put_item(stack)
    stack.s3.put_object(Bucket=stack.bucket, Key=KEY, Body=call_wav(7.0))

    # When S3 notifies the function
    result = stack.invoke(KEY)

    # Then the PNG is under spectrograms/, two panels high, and its key is on the item
    assert result == {"results": [{"key": KEY, "outcome": "rendered", "image": IMAGE}]}
    got = stack.s3.get_object(Bucket=stack.bucket, Key=IMAGE)
    assert got["ContentType"] == "image/png"
    assert got["Metadata"]["contact-id"] == CONTACT
    assert float(got["Metadata"]["duration"]) == pytest.approx(7.0)
    image = Image.open(io.BytesIO(got["Body"].read()))
    assert image.format == "PNG"
    assert image.height > image.width / 3
    item = stack.item()
    assert item is not None
    assert item["spectrogram_keys"] == {"SS": [IMAGE]}
    assert item["status"] == {"S": "COMPLETED"}


def test_repeated_events_and_the_three_files_of_a_call_leave_one_key_each(stack: Stack) -> None:
    # Given the customer, agent and stereo WAVs of one call
    put_item(stack)
    keys = [KEY.replace("-stereo.wav", f"-{kind}.wav") for kind in ("cu", "op", "stereo")]
    for key in keys:
        channels = 2 if key.endswith("-stereo.wav") else 1
        stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=call_wav(3.0, channels=channels))

    # When each is notified, and the stereo one twice (S3 delivers at least once)
    stack.invoke(*keys)
    again = stack.invoke(keys[-1])

    # Then the item holds the three image keys, once each, and the repeat re-rendered harmlessly
    assert again["results"][0]["outcome"] == "rendered"
    item = stack.item()
    assert item is not None
    assert sorted(item["spectrogram_keys"]["SS"]) == sorted(
        k.replace("recordings/", "spectrograms/").replace(".wav", ".png") for k in keys
    )
    assert len(stack.keys("spectrograms/")) == 3


def test_without_an_item_the_image_is_still_written_and_a_warning_counted(
    stack: Stack, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    stack.s3.put_object(Bucket=stack.bucket, Key=KEY, Body=call_wav(2.0))

    result = stack.invoke(KEY)

    assert result["results"][0]["outcome"] == "rendered-no-item"
    assert stack.keys("spectrograms/") == [IMAGE]
    assert stack.item() is None, "the function must not create the recorder's item"
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "no recording item for this contact" in warning.getMessage()
    assert warning.__dict__["contact_id"] == CONTACT
    assert "SpectrumItemsMissing" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("body", "outcome", "metric"),
    [
        (b"this is not audio at all" * 10, "bad-recording", "SpectrumBadRecordings"),
        (tone_wav([1000.0, 500.0], seconds=0.0), "bad-recording", "SpectrumBadRecordings"),
        (None, "gone", "SpectrumRecordingsGone"),
    ],
    ids=["not-a-wav", "zero-samples", "deleted-before-read"],
)
def test_bad_input_is_logged_counted_and_not_retried(
    stack: Stack,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    body: bytes | None,
    outcome: str,
    metric: str,
) -> None:
    # Given an item and a notification for an object that is no WAV, or no longer exists
    put_item(stack)
    if body is not None:
        stack.s3.put_object(Bucket=stack.bucket, Key=KEY, Body=body)

    # When the function runs, Then it returns normally (no retry), writes nothing, counts it
    result = stack.invoke(KEY)

    assert result["results"][0]["outcome"] == outcome
    assert stack.keys("spectrograms/") == []
    item = stack.item()
    assert item is not None
    assert "spectrogram_keys" not in item
    [emf] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert emf[metric] == [1.0]
    [problem] = [r for r in caplog.records if r.levelname in {"ERROR", "WARNING"}]
    assert problem.__dict__["recording_key"] == KEY
    assert problem.__dict__["reason"]


def test_a_key_that_is_not_a_recording_is_skipped(stack: Stack) -> None:
    key = "recordings/2026/11/24/not-a-recording.wav"
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=call_wav(1.0))

    result = stack.invoke(key)

    assert result["results"][0]["outcome"] == "unexpected-key"
    assert stack.keys("spectrograms/") == []


def test_an_unreachable_s3_is_raised_for_the_asynchronous_retries(stack: Stack) -> None:
    # Given S3 clients pointed at a port nobody listens on
    dead = f"http://127.0.0.1:{free_port()}"
    config = Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1)
    s3 = boto3.session.Session().client("s3", endpoint_url=dead, config=config)

    # When the function runs, Then the failure is raised (transient), not swallowed
    with pytest.raises(StoreUnavailable, match="reading s3://"):
        stack.invoke(KEY, s3=s3, dynamodb=stack.dynamodb)


def test_the_reader_streams_the_wav_in_few_requests(stack: Stack) -> None:
    # Given a 3-minute stereo WAV (5.8 MB)
    stack.s3.put_object(Bucket=stack.bucket, Key=KEY, Body=call_wav(180.0))

    # When it is read through the ranged reader the way libsndfile reads it
    with S3ObjectReader(stack.s3, stack.bucket, KEY) as reader:
        rendered = spectrum.render(reader, contact_id=CONTACT)

    # Then the whole recording was seen, with no more than a couple of GETs
    assert rendered.duration_seconds == pytest.approx(180.0)
    assert reader.failure is None
    assert reader.requests <= 3
