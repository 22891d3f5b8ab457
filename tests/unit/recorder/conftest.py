"""Fakes and fixtures of the recorder's unit tests: moto's DynamoDB and S3, fake time."""

from __future__ import annotations

import os
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from callrec.events import StartRecord, start_record_from_contact_flow
from callrec_local.template import load_template, local_plan
from tests.support import load_event

TABLE = "recordings-silence"
BUCKET = "recordings-silence"


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def monotonic(self) -> float:
        return self.now

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeInvoker:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, contact_id: str, *, reason: str) -> None:
        self.started.append(reason)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    with mock_aws():
        spec = local_plan(load_template()).tables["RecordingsTable"]
        boto3.client("dynamodb").create_table(**{**spec.create_table, "TableName": TABLE})
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield


@pytest.fixture
def record() -> StartRecord:
    return start_record_from_contact_flow(load_event("contact-flow-event.json"))
