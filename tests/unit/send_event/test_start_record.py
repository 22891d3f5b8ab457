"""The start record built from Connect's contact flow event, and its JSON form on the stream."""

from __future__ import annotations

import base64
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


TRANSFERRED_ID = "0b7d1a52-7ac4-4e07-9a39-5f0c3f1c9d41"


def test_a_transferred_contact_names_the_contact_before_it(event: dict[str, Any]) -> None:
    # Given the agent whisper flow of a transferred contact: a new ContactId, the same
    # InitialContactId, PreviousContactId the contact it was transferred from
    data = event["Details"]["ContactData"]
    data.update(ContactId=TRANSFERRED_ID, InitiationMethod="TRANSFER")

    record = start_record_from_contact_flow(event)

    assert (record.contact_id, record.initial_contact_id) == (TRANSFERRED_ID, CONTACT_ID)
    assert (record.previous_contact_id, record.initiation_method) == (CONTACT_ID, "TRANSFER")
    assert StartRecord.from_json(record.to_json()) == record


def test_a_first_contact_has_no_previous_one(event: dict[str, Any]) -> None:
    # Connect repeats the contact's own id as PreviousContactId (the sample event does)
    record = start_record_from_contact_flow(event)

    assert record.previous_contact_id is None
    assert record.initiation_method == "INBOUND"


def test_an_invocation_after_stop_media_streaming_carries_the_stop(event: dict[str, Any]) -> None:
    # Given the attributes Connect sets after a Stop media streaming block (admin guide,
    # media-streaming-attributes: StopFragmentNumber and StopTimestamp)
    audio(event).update(
        StopFragmentNumber="91343852333181432392682062622220590765191907599",
        StopTimestamp="1782912714536",
    )

    record = start_record_from_contact_flow(event)

    assert record.stop_fragment_number == "91343852333181432392682062622220590765191907599"
    assert record.stop_timestamp_ms == 1782912714536
    # the same segment as the record sent when streaming started
    assert (
        record.segment_key
        == start_record_from_contact_flow(load_event("contact-flow-event.json")).segment_key
    )
    assert StartRecord.from_json(record.to_json()) == record


@pytest.mark.parametrize(
    ("stop", "message"),
    [
        ({"StopFragmentNumber": "9x"}, "stop fragment number"),
        ({"StopTimestamp": "noon"}, "StopTimestamp: expected epoch milliseconds"),
    ],
)
def test_a_malformed_stop_names_the_field(
    event: dict[str, Any], stop: dict[str, str], message: str
) -> None:
    audio(event).update(stop)

    with pytest.raises(ContactFlowEventError, match=message):
        start_record_from_contact_flow(event)


def test_records_without_the_new_fields_read_and_write_as_before(event: dict[str, Any]) -> None:
    # Given a record put on the stream before the optional fields existed (the sample event)
    (stored,) = load_event("kinesis-start-records.json")["Records"]
    data = base64.b64decode(stored["kinesis"]["data"])

    record = StartRecord.from_json(data)

    assert (record.previous_contact_id, record.stop_fragment_number) == (None, None)
    # written back byte for byte: no new key appears when a value is absent
    assert record.to_json() == data


def test_readers_ignore_fields_they_do_not_know(event: dict[str, Any]) -> None:
    # A recorder of this version reading a record from a later one with one more field
    body = json.loads(start_record_from_contact_flow(event).to_json())
    body["added_later"] = {"anything": 1}

    assert StartRecord.from_json(json.dumps(body)) == start_record_from_contact_flow(event)
