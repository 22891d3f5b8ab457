"""The start record built from Connect's contact flow event, and its JSON form on the stream."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from callrec.events import (
    ContactFlowEventError,
    StartRecord,
    StartRecordError,
    start_record_from_contact_flow,
)
from tests.support import load_event

CONTACT_ID = "5ca32fbd-8f92-46af-92a5-6b0f970f0efe"


@pytest.fixture
def event() -> dict[str, Any]:
    return load_event("contact-flow-event.json")


def audio(event: dict[str, Any]) -> dict[str, Any]:
    media: dict[str, Any] = event["Details"]["ContactData"]["MediaStreams"]
    return media["Customer"]["Audio"]  # type: ignore[no-any-return]


def test_builds_the_record_from_the_flow_event(event: dict[str, Any]) -> None:
    record = start_record_from_contact_flow(event)

    assert record.contact_id == CONTACT_ID
    assert record.initial_contact_id == CONTACT_ID
    assert record.instance_arn.endswith(":instance/9308c2a1-9bc6-4cea-8290-6c0b4a6d38fa")
    assert record.stream_arn == audio(event)["StreamARN"]
    assert record.stream_name == f"callrec-connect-demo-contact-{CONTACT_ID}"
    assert record.start_fragment_number == "91343852333181432392682062622220590765191907586"
    assert record.start_timestamp_ms == 1782912654536
    assert record.parameters == {"campaign": "support-line"}
    assert record.schema_version == 1


def test_phone_number_is_left_out_unless_asked_for(event: dict[str, Any]) -> None:
    without = start_record_from_contact_flow(event)
    with_phone = start_record_from_contact_flow(event, include_phone_number=True)

    assert without.customer_phone_number is None
    assert b"+11234567890" not in without.to_json()
    assert b"customer_phone_number" not in without.to_json()
    assert with_phone.customer_phone_number == "+11234567890"


def test_json_round_trip_is_exact(event: dict[str, Any]) -> None:
    record = start_record_from_contact_flow(event, include_phone_number=True)

    assert StartRecord.from_json(record.to_json()) == record
    assert json.loads(record.to_json())["schema_version"] == 1


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e["Details"]["ContactData"].pop("MediaStreams"), "StreamARN is missing"),
        (
            lambda e: e["Details"]["ContactData"]["MediaStreams"].update(Customer={"Audio": None}),
            "StreamARN is missing",
        ),
        (lambda e: audio(e).update(StreamARN=""), "StreamARN is missing"),
        (lambda e: audio(e).update(StreamARN="arn:aws:s3:::bucket/key"), "KVS stream ARN"),
        (lambda e: audio(e).pop("StartFragmentNumber"), "Audio.StartFragmentNumber is missing"),
        (lambda e: audio(e).update(StartFragmentNumber="12ab"), "start fragment number"),
        (lambda e: audio(e).update(StartTimestamp="yesterday"), "StartTimestamp: expected epoch"),
        (lambda e: e["Details"]["ContactData"].update(Channel="CHAT"), "must be VOICE"),
        (lambda e: e["Details"]["ContactData"].pop("ContactId"), "ContactId is missing"),
        (lambda e: e["Details"]["ContactData"].update(InstanceARN="x"), "instance ARN"),
        (lambda e: e["Details"].update(Parameters={"n": 1}), "parameters must map strings"),
        (lambda e: e.pop("Details"), "Details is missing"),
    ],
)
def test_bad_events_name_what_is_wrong(event: dict[str, Any], mutate: Any, message: str) -> None:
    bad = copy.deepcopy(event)
    mutate(bad)

    with pytest.raises(ContactFlowEventError, match=message):
        start_record_from_contact_flow(bad)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"schema_version": 2}', "expected 1, found 2"),
        (b'{"schema_version": 1}', "'contact_id': expected a non-empty string"),
    ],
)
def test_bad_stream_records_are_rejected(data: bytes, message: str) -> None:
    with pytest.raises(StartRecordError, match=message):
        StartRecord.from_json(data)


def test_stream_record_with_bad_timestamp_is_rejected(event: dict[str, Any]) -> None:
    body = json.loads(start_record_from_contact_flow(event).to_json())
    body["start_timestamp_ms"] = "1782912654536"

    with pytest.raises(StartRecordError, match="'start_timestamp_ms': expected a non-negative"):
        StartRecord.from_json(json.dumps(body))


def test_stream_record_with_bad_arn_is_rejected(event: dict[str, Any]) -> None:
    body = json.loads(start_record_from_contact_flow(event).to_json())
    body["stream_arn"] = "arn:aws:kinesis:us-east-1:123456789012:stream/x"

    with pytest.raises(StartRecordError, match="KVS stream ARN"):
        StartRecord.from_json(json.dumps(body))
