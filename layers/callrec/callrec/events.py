"""The start record: what the contact flow tells the recorder about a new call.

The contact-flow Lambda builds a `StartRecord` from Amazon Connect's contact flow event and
puts it on the Kinesis stream as JSON; the recorder parses it back. This module owns the
schema on both sides and the validation of Connect's event. It does not talk to AWS.

One record is one streaming segment of one contact: a flow that stops and restarts media
streaming and invokes the function again sends a second record with another
StartFragmentNumber (possibly on another stream); a flow that invokes it after a Stop media
streaming block sends the same StartFragmentNumber with the segment's stop. Schema version 1
gained optional fields (previous contact, initiation method, the stop): they are left out of
the JSON when absent, and readers ignore fields they do not know, so records written before
and after the change are read by recorders of either age.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from callrec.errors import CallrecError

SCHEMA_VERSION = 1

# arn:aws:kinesisvideo:us-east-1:123456789012:stream/prefix-connect-alias-contact-UUID/1700000000000
STREAM_ARN = re.compile(
    r"^arn:aws[a-z-]*:kinesisvideo:[a-z0-9-]+:\d{12}:stream/(?P<name>[A-Za-z0-9_.-]{1,256})/\d+$"
)
INSTANCE_ARN = re.compile(r"^arn:aws[a-z-]*:connect:[a-z0-9-]+:\d{12}:instance/[0-9a-f-]{36}$")
FRAGMENT_NUMBER = re.compile(r"^\d{1,128}$")
# Left out of the JSON when None (a record without them is byte for byte what it was before).
OPTIONAL_FIELDS = (
    "customer_phone_number",
    "previous_contact_id",
    "initiation_method",
    "stop_fragment_number",
    "stop_timestamp_ms",
)
EPOCH_MILLIS = re.compile(r"^\d{10,16}$")


class ContactFlowEventError(CallrecError, ValueError):
    """The contact flow event cannot start a recording; the message names what is wrong."""


class StartRecordError(CallrecError, ValueError):
    """A record on the start-record stream is not a valid start record."""


@dataclass(frozen=True, slots=True)
class StartRecord:
    """One call to record: where its audio is in KVS and which contact it belongs to."""

    contact_id: str
    initial_contact_id: str
    instance_arn: str
    stream_arn: str
    start_fragment_number: str
    start_timestamp_ms: int
    parameters: Mapping[str, str] = field(default_factory=dict)
    customer_phone_number: str | None = None
    # The contact before this one in a transfer chain (None for the first contact: Connect
    # then repeats the contact's own id, which is not kept).
    previous_contact_id: str | None = None
    initiation_method: str | None = None
    # Set when the flow invoked the function after a Stop media streaming block.
    stop_fragment_number: str | None = None
    stop_timestamp_ms: int | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def stream_name(self) -> str:
        """The Kinesis video stream's name, from its ARN."""
        match = STREAM_ARN.match(self.stream_arn)
        if match is None:  # unreachable for records built through this module
            raise StartRecordError(f"malformed stream ARN {self.stream_arn!r}")
        return match["name"]

    @property
    def segment_key(self) -> str:
        """What tells this streaming segment from another of the same contact: a redelivered
        record has the same, a restart after Stop media streaming another."""
        return self.start_fragment_number

    def to_json(self) -> bytes:
        """The record as it is put on the stream: compact UTF-8 JSON, absent options omitted."""
        body = asdict(self)
        body["parameters"] = dict(self.parameters)
        for name in OPTIONAL_FIELDS:
            if body[name] is None:
                del body[name]
        return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> StartRecord:
        """Parse and validate a record read from the stream."""
        try:
            body = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StartRecordError(f"start record is not JSON: {exc}") from None
        if not isinstance(body, dict):
            found = type(body).__name__
            raise StartRecordError(f"start record must be a JSON object, found {found}")
        version = body.get("schema_version")
        if version != SCHEMA_VERSION:
            raise StartRecordError(
                f"start record schema_version: expected {SCHEMA_VERSION}, found {version!r}"
            )
        try:
            record = cls(
                contact_id=_text(body, "contact_id"),
                initial_contact_id=_text(body, "initial_contact_id"),
                instance_arn=_text(body, "instance_arn"),
                stream_arn=_text(body, "stream_arn"),
                start_fragment_number=_text(body, "start_fragment_number"),
                start_timestamp_ms=_int(body, "start_timestamp_ms"),
                parameters=_parameters(body.get("parameters", {})),
                customer_phone_number=body.get("customer_phone_number"),
                previous_contact_id=_optional_text(body, "previous_contact_id"),
                initiation_method=_optional_text(body, "initiation_method"),
                stop_fragment_number=_optional_text(body, "stop_fragment_number"),
                stop_timestamp_ms=_optional_int(body, "stop_timestamp_ms"),
            )
        except ContactFlowEventError as exc:
            raise StartRecordError(str(exc)) from None
        _validate(record, error=StartRecordError)
        return record


def start_record_from_contact_flow(
    event: Mapping[str, Any], *, include_phone_number: bool = False
) -> StartRecord:
    """Validate Connect's contact flow event and build the start record of its call.

    Raises `ContactFlowEventError` naming the missing or malformed field when the flow did not
    start media streaming (no customer audio stream), when the contact is not a voice call, or
    when any identifier is malformed; the flow then takes its Error branch.
    """
    contact = _mapping(_mapping(event, "Details", "event"), "ContactData", "Details")
    contact_id = _required(contact, "ContactId", "Details.ContactData")
    channel = contact.get("Channel")
    if channel != "VOICE":
        raise ContactFlowEventError(
            f"contact {contact_id}: Details.ContactData.Channel must be VOICE to record, "
            f"found {channel!r}"
        )
    where = "Details.ContactData.MediaStreams.Customer.Audio"
    media = contact.get("MediaStreams") or {}
    audio = (media.get("Customer") or {}).get("Audio") if isinstance(media, Mapping) else None
    if not isinstance(audio, Mapping) or not audio.get("StreamARN"):
        raise ContactFlowEventError(
            f"contact {contact_id}: {where}.StreamARN is missing: "
            "run 'Start media streaming' (customer audio) before invoking this function"
        )
    phone: str | None = None
    if include_phone_number:
        endpoint = contact.get("CustomerEndpoint") or {}
        if isinstance(endpoint, Mapping) and endpoint.get("Type") == "TELEPHONE_NUMBER":
            phone = endpoint.get("Address")
    details = event["Details"]
    previous = contact.get("PreviousContactId")
    stop_timestamp = audio.get("StopTimestamp")
    record = StartRecord(
        contact_id=contact_id,
        initial_contact_id=contact.get("InitialContactId") or contact_id,
        instance_arn=_required(contact, "InstanceARN", "Details.ContactData"),
        stream_arn=_required(audio, "StreamARN", where),
        start_fragment_number=_required(audio, "StartFragmentNumber", where),
        start_timestamp_ms=_millis(audio, "StartTimestamp", where),
        parameters=_parameters(details.get("Parameters") or {}),
        customer_phone_number=phone,
        previous_contact_id=previous if previous and previous != contact_id else None,
        initiation_method=contact.get("InitiationMethod") or None,
        stop_fragment_number=audio.get("StopFragmentNumber") or None,
        stop_timestamp_ms=_millis(audio, "StopTimestamp", where) if stop_timestamp else None,
    )
    _validate(record, error=ContactFlowEventError)
    return record


def _validate(record: StartRecord, *, error: type[CallrecError]) -> None:
    checks = (
        (STREAM_ARN, record.stream_arn, "KVS stream ARN (arn:...:kinesisvideo:...:stream/NAME/T)"),
        (INSTANCE_ARN, record.instance_arn, "instance ARN (arn:...:connect:...:instance/ID)"),
        (FRAGMENT_NUMBER, record.start_fragment_number, "start fragment number (decimal digits)"),
        (FRAGMENT_NUMBER, record.stop_fragment_number, "stop fragment number (decimal digits)"),
    )
    for pattern, value, expected in checks:
        if value is not None and not pattern.match(value):
            raise error(f"contact {record.contact_id}: expected a {expected}, found {value!r}")


def _mapping(parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = parent.get(key)
    if not isinstance(value, Mapping):
        raise ContactFlowEventError(f"{where}.{key} is missing or not an object")
    return value


def _required(parent: Mapping[str, Any], key: str, where: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise ContactFlowEventError(f"{where}.{key} is missing or empty")
    return value


def _millis(parent: Mapping[str, Any], key: str, where: str) -> int:
    value = _required(parent, key, where)
    if not EPOCH_MILLIS.match(value):
        raise ContactFlowEventError(f"{where}.{key}: expected epoch milliseconds, found {value!r}")
    return int(value)


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise StartRecordError(
            f"start record field {key!r}: expected a non-empty string, found {value!r}"
        )
    return value


def _int(body: Mapping[str, Any], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise StartRecordError(
            f"start record field {key!r}: expected a non-negative integer, found {value!r}"
        )
    return value


def _optional_text(body: Mapping[str, Any], key: str) -> str | None:
    return None if body.get(key) is None else _text(body, key)


def _optional_int(body: Mapping[str, Any], key: str) -> int | None:
    return None if body.get(key) is None else _int(body, key)


def _parameters(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ContactFlowEventError(f"parameters must map strings to strings, found {value!r}")
    return dict(value)
