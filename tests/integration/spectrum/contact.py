"""A recorded contact in moto: the recorder's item, its three WAVs and their spectrograms."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from callrec.spectrogram_store import SpectrogramStore
from callrec.spectrum_config import SpectrumSettings
from tests.unit.spectrum.wavs import RATE, call_wav

START = "2026-11-24T05:47:03Z"


@dataclass(frozen=True)
class Contact:
    contact_id: str
    bucket: str
    table: str
    seconds: float
    keys: dict[str, str]
    images: dict[str, str]


def make_bucket_and_table(s3: Any, dynamodb: Any) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    bucket, table = f"callrec-recordings-{suffix}", f"recordings-{suffix}"
    s3.create_bucket(Bucket=bucket)
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "contact_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "contact_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return bucket, table


def remove_bucket_and_table(s3: Any, dynamodb: Any, bucket: str, table: str) -> None:
    """Leave the shared moto server as it was: other tests list what is there."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
    s3.delete_bucket(Bucket=bucket)
    dynamodb.delete_table(TableName=table)


def record_contact(
    s3: Any, dynamodb: Any, bucket: str, table: str, seconds: float = 4.0
) -> Contact:
    """Write what the recorder leaves behind, then render the images as the function does."""
    contact_id = str(uuid.uuid4())
    prefix = f"recordings/2026/11/24/{contact_id}/20261124T054703Z"
    keys = {kind: f"{prefix}-{kind}.wav" for kind in ("cu", "op", "stereo")}
    dynamodb.put_item(
        TableName=table,
        Item={
            "contact_id": {"S": contact_id},
            "status": {"S": "COMPLETED"},
            "start": {"S": START},
            "duration_seconds": {"N": str(seconds)},
            "sample_rate": {"N": str(RATE)},
            "keys": {"M": {kind: {"S": key} for kind, key in keys.items()}},
        },
    )
    store = SpectrogramStore(SpectrumSettings(bucket, table), s3=s3, dynamodb=dynamodb)
    images = {}
    for kind, key in keys.items():
        body = call_wav(seconds, channels=2 if kind == "stereo" else 1, party=kind == "op")
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="audio/wav")
        result = store.render(bucket, key)
        assert result.spectrogram_key is not None
        images[kind] = result.spectrogram_key
    return Contact(contact_id, bucket, table, seconds, keys, images)
