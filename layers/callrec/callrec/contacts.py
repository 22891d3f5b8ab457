"""What Amazon Connect says of a contact's end: its contact events and DescribeContact.

A recording ends when its contact has disconnected and the stream has delivered everything up
to that moment (docs/contact-lifecycle.md). Connect says so in two ways, and this module reads
both into one value, `ContactDisconnect`:

- an Amazon Connect contact event on EventBridge (source `aws.connect`, detail-type "Amazon
  Connect Contact Event", `eventType` DISCONNECTED), delivered to the contact-events function
  by the rule template.yaml declares. Connect sends them best effort ("in some rare cases an
  event might not be delivered", https://docs.aws.amazon.com/eventbridge/latest/ref/
  event-delivery-level.html) and unordered ("Although events are not ordered, they have a
  timestamp", https://docs.aws.amazon.com/connect/latest/adminguide/contact-events.html);
- DescribeContact's `Contact.DisconnectTimestamp` ("The date and time that the customer
  endpoint disconnected from the current contact ... In transfer scenarios, the
  DisconnectTimestamp of the previous contact indicates the date and time when that contact
  ended", https://docs.aws.amazon.com/connect/latest/APIReference/API_Contact.html), asked by
  the recorder when the stream is silent and no event came (connect.py asks; `AskSchedule`
  says when).

The documentation spells the event's fields two ways: the data model in PascalCase
(`EventType`, `ContactId`, `InitialContactId`, `InstanceARN`) and the sample events in
camelCase (`eventType`, `contactId`, `initialContactId`, `instanceArn`); both are read. The
disconnect time is the event's `disconnectTimestamp` (ISO 8601) when present, otherwise the
event's `time` (second precision): an end read from `time` is at most a second late, and the
recorder waits for the stream to settle after it anyway.

This module does not talk to AWS: `ContactEvents` takes any `DisconnectSink` (interactions.py
writes to the recordings table).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from callrec.errors import CallrecError

SOURCE = "aws.connect"
DETAIL_TYPE = "Amazon Connect Contact Event"
DISCONNECTED = "DISCONNECTED"
FROM_EVENT = "contact-event"
FROM_DESCRIBE = "describe-contact"


class ContactEventError(CallrecError, ValueError):
    """An event that claims to be a Connect contact event but cannot be read as one."""


@dataclass(frozen=True, slots=True)
class ContactDisconnect:
    """Connect's word that a contact disconnected, and when (epoch milliseconds)."""

    contact_id: str
    initial_contact_id: str
    disconnected_at_ms: int
    source: str
    previous_contact_id: str | None = None
    instance_arn: str | None = None


@dataclass(frozen=True, slots=True)
class ContactState:
    """What DescribeContact says of a contact, as far as recordings need it."""

    contact_id: str
    initial_contact_id: str
    previous_contact_id: str | None
    initiation_method: str | None
    disconnected_at_ms: int | None
    # Contacts this one was transferred to with a quick connect (Contact.NextContacts).
    next_contact_ids: tuple[str, ...] = ()

    @property
    def disconnect(self) -> ContactDisconnect | None:
        if self.disconnected_at_ms is None:
            return None
        return ContactDisconnect(
            contact_id=self.contact_id,
            initial_contact_id=self.initial_contact_id,
            disconnected_at_ms=self.disconnected_at_ms,
            source=FROM_DESCRIBE,
            previous_contact_id=self.previous_contact_id,
        )


def disconnect_from_event(event: Mapping[str, Any]) -> ContactDisconnect | None:
    """The disconnect an EventBridge contact event reports; None for the other event types.

    Raises `ContactEventError` naming the field when the event is not a Connect contact event
    or a DISCONNECTED event lacks its contact id or a readable time.
    """
    source, detail_type = event.get("source"), event.get("detail-type")
    if (source, detail_type) != (SOURCE, DETAIL_TYPE):
        raise ContactEventError(
            f"expected source {SOURCE!r} and detail-type {DETAIL_TYPE!r}, "
            f"found {source!r} and {detail_type!r}"
        )
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise ContactEventError("contact event: detail is missing or not an object")
    if _field(detail, "eventType") != DISCONNECTED:
        return None
    contact_id = _field(detail, "contactId")
    if not contact_id:
        raise ContactEventError("DISCONNECTED contact event: detail.contactId is missing")
    stamp = _field(detail, "disconnectTimestamp")
    where = "detail.disconnectTimestamp"
    if stamp is None:
        stamp, where = event.get("time"), "time"
    previous = _field(detail, "previousContactId")
    return ContactDisconnect(
        contact_id=contact_id,
        initial_contact_id=_field(detail, "initialContactId") or contact_id,
        disconnected_at_ms=_epoch_ms(stamp, f"contact {contact_id}: {where}"),
        source=FROM_EVENT,
        previous_contact_id=previous if previous and previous != contact_id else None,
        instance_arn=_field(detail, "instanceArn") or _field(detail, "instanceARN"),
    )


def contact_state(contact: Mapping[str, Any]) -> ContactState:
    """DescribeContact's `Contact`, as boto3 returns it (timestamps as datetimes)."""
    contact_id = contact.get("Id")
    if not isinstance(contact_id, str) or not contact_id:
        raise ContactEventError("DescribeContact: Contact.Id is missing")
    disconnected = contact.get("DisconnectTimestamp")
    previous = contact.get("PreviousContactId")
    return ContactState(
        contact_id=contact_id,
        initial_contact_id=contact.get("InitialContactId") or contact_id,
        previous_contact_id=previous if previous and previous != contact_id else None,
        initiation_method=contact.get("InitiationMethod"),
        disconnected_at_ms=None
        if disconnected is None
        else _epoch_ms(disconnected, f"contact {contact_id}: Contact.DisconnectTimestamp"),
        next_contact_ids=tuple(
            entry["NextContactMetadata"]["QuickConnectContactData"]["ContactId"]
            for entry in contact.get("NextContacts") or ()
            if entry.get("NextContactMetadata", {})
            .get("QuickConnectContactData", {})
            .get("ContactId")
        ),
    )


class DisconnectSink(Protocol):
    """Where disconnects are kept: the recordings of the contact's interaction."""

    def note_disconnect(self, disconnect: ContactDisconnect) -> list[str]:
        """Keep it on each recording of the interaction; the contact ids of those recordings."""
        ...


@dataclass(frozen=True, slots=True)
class EventOutcome:
    """What the contact-events function did with one event."""

    action: str  # "noted", "no-recording", "ignored"
    contact_id: str | None = None
    recordings: tuple[str, ...] = ()
    detail: str = ""


class ContactEvents:
    """Contact events of one Connect instance, kept on the recordings they concern."""

    def __init__(self, sink: DisconnectSink, *, instance_arn: str) -> None:
        self.sink = sink
        self.instance_arn = instance_arn

    def handle(self, event: Mapping[str, Any]) -> EventOutcome:
        disconnect = disconnect_from_event(event)
        if disconnect is None:
            return EventOutcome("ignored", detail="not a DISCONNECTED event")
        resources = event.get("resources") or ()
        of_instance = disconnect.instance_arn == self.instance_arn or any(
            str(r) == self.instance_arn or str(r).startswith(f"{self.instance_arn}/")
            for r in resources
        )
        if not of_instance:
            # The rule matches this instance only; another instance's event is not ours.
            return EventOutcome(
                "ignored", disconnect.contact_id, detail="the event names another instance"
            )
        recordings = tuple(self.sink.note_disconnect(disconnect))
        action = "noted" if recordings else "no-recording"
        return EventOutcome(action, disconnect.contact_id, recordings)


@dataclass(frozen=True, slots=True)
class AskSchedule:
    """When a recorder whose stream is silent asks DescribeContact again.

    Contact events usually say first; DescribeContact is the fallback, and its quota is shared
    by the whole account ("Rate of DescribeContact API requests", 10 per second by default,
    adjustable: Service Quotas code L-371095B8). The first question comes after
    `first_after_s` of silence, the next ones further and further apart (doubling, at most
    `max_interval_s`), and a throttled answer doubles the wait again: a contact center's
    paused calls cost a few requests a minute each, not one a second.
    """

    first_after_s: float = 2.0
    max_interval_s: float = 30.0

    def interval_after(self, asked: int, *, throttled: int = 0) -> float:
        """Seconds to wait after the `asked`-th question of this silence (from 1), of which
        `throttled` were refused with ThrottlingException."""
        if asked < 1 or throttled < 0:
            raise ValueError(
                f"asked must be at least 1 and throttled at least 0: {asked}, {throttled}"
            )
        doubled: float = self.first_after_s * float(2 ** min(asked + throttled, 16))
        return min(self.max_interval_s, doubled)


def _field(detail: Mapping[str, Any], camel: str) -> Any:
    """A detail field under its camelCase (sample events) or PascalCase (data model) name."""
    if camel in detail:
        return detail[camel]
    return detail.get(camel[0].upper() + camel[1:])


def _epoch_ms(value: Any, where: str) -> int:
    """Epoch milliseconds from an ISO 8601 text (contact events) or a datetime (boto3)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ContactEventError(
                f"{where}: expected an ISO 8601 time, found {value!r}"
            ) from None
    else:
        raise ContactEventError(f"{where}: expected an ISO 8601 time, found {value!r}")
    if moment.tzinfo is None:  # Connect's times are UTC
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
