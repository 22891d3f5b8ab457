"""Connect's contact events and DescribeContact answers read into disconnects; the schedule of
DescribeContact questions; the contact-events handler's outcome."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest

from callrec.contacts import (
    FROM_DESCRIBE,
    FROM_EVENT,
    AskSchedule,
    ContactDisconnect,
    ContactEventError,
    ContactEvents,
    contact_state,
    disconnect_from_event,
)
from tests.support import FakeLambdaContext, load_event, load_function

INSTANCE = "arn:aws:connect:us-east-1:123456789012:instance/9308c2a1-9bc6-4cea-8290-6c0b4a6d38fa"
ORIGINAL = "5ca32fbd-8f92-46af-92a5-6b0f970f0efe"
TRANSFERRED = "0b7d1a52-7ac4-4e07-9a39-5f0c3f1c9d41"
DISCONNECTED_MS = int(datetime(2026, 7, 1, 13, 9, 2, 871000, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def event() -> dict[str, Any]:
    return load_event("contact-event-disconnected.json")


class Sink:
    def __init__(self, recordings: list[str]) -> None:
        self.recordings = recordings
        self.noted: list[ContactDisconnect] = []

    def note_disconnect(self, disconnect: ContactDisconnect) -> list[str]:
        self.noted.append(disconnect)
        return self.recordings


def test_a_disconnected_event_names_the_contact_its_interaction_and_the_time(
    event: dict[str, Any],
) -> None:
    disconnect = disconnect_from_event(event)

    assert disconnect == ContactDisconnect(
        contact_id=TRANSFERRED,
        initial_contact_id=ORIGINAL,
        disconnected_at_ms=DISCONNECTED_MS,
        source=FROM_EVENT,
        previous_contact_id=ORIGINAL,
        instance_arn=INSTANCE,
    )


def test_the_data_models_pascal_case_names_are_read_too(event: dict[str, Any]) -> None:
    # The admin guide's data model spells the fields EventType, ContactId, InstanceARN...
    detail = event["detail"]
    event["detail"] = {
        "EventType": detail["eventType"],
        "ContactId": detail["contactId"],
        "InitialContactId": detail["initialContactId"],
        "PreviousContactId": detail["previousContactId"],
        "InstanceARN": detail["instanceArn"],
        "DisconnectTimestamp": detail["disconnectTimestamp"],
    }

    assert disconnect_from_event(event) == disconnect_from_event(
        load_event("contact-event-disconnected.json")
    )


def test_a_first_contact_is_its_own_interaction_and_without_a_timestamp_the_event_time_counts(
    event: dict[str, Any],
) -> None:
    for name in ("initialContactId", "previousContactId", "disconnectTimestamp"):
        del event["detail"][name]

    disconnect = disconnect_from_event(event)

    assert disconnect is not None
    assert disconnect.initial_contact_id == TRANSFERRED
    assert disconnect.previous_contact_id is None
    assert disconnect.disconnected_at_ms == int(
        datetime(2026, 7, 1, 13, 9, 3, tzinfo=UTC).timestamp() * 1000
    )


def test_other_event_types_are_not_disconnects(event: dict[str, Any]) -> None:
    event["detail"]["eventType"] = "CONNECTED_TO_AGENT"

    assert disconnect_from_event(event) is None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.update(source="aws.s3"), "expected source 'aws.connect'"),
        (lambda e: e.update(detail=None), "detail is missing"),
        (lambda e: e["detail"].pop("contactId"), "detail.contactId is missing"),
        (
            lambda e: e["detail"].update(disconnectTimestamp="yesterday"),
            "detail.disconnectTimestamp: expected an ISO 8601 time, found 'yesterday'",
        ),
    ],
)
def test_an_unreadable_event_names_what_is_wrong(
    event: dict[str, Any], mutate: Any, message: str
) -> None:
    bad = copy.deepcopy(event)
    mutate(bad)

    with pytest.raises(ContactEventError, match=message):
        disconnect_from_event(bad)


def test_describe_contact_gives_the_disconnect_and_the_transfers() -> None:
    contact = {
        "Id": ORIGINAL,
        "InitialContactId": ORIGINAL,
        "PreviousContactId": ORIGINAL,
        "InitiationMethod": "INBOUND",
        "DisconnectTimestamp": datetime(2026, 7, 1, 13, 5, 40, 120000, tzinfo=UTC),
        "NextContacts": [
            {
                "Type": "QUICK_CONNECT",
                "NextContactMetadata": {
                    "QuickConnectContactData": {
                        "ContactId": TRANSFERRED,
                        "QuickConnectType": "USER",
                    }
                },
            }
        ],
    }

    state = contact_state(contact)

    assert state.previous_contact_id is None
    assert state.next_contact_ids == (TRANSFERRED,)
    assert state.disconnect == ContactDisconnect(
        contact_id=ORIGINAL,
        initial_contact_id=ORIGINAL,
        disconnected_at_ms=int(contact["DisconnectTimestamp"].timestamp() * 1000),  # type: ignore[attr-defined]
        source=FROM_DESCRIBE,
    )
    assert contact_state({"Id": TRANSFERRED}).disconnect is None  # still connected


def test_questions_to_describe_contact_come_further_apart() -> None:
    schedule = AskSchedule(first_after_s=2.0, max_interval_s=30.0)

    assert [schedule.interval_after(n) for n in range(1, 6)] == [4.0, 8.0, 16.0, 30.0, 30.0]
    assert schedule.interval_after(1, throttled=1) == 8.0  # a refusal doubles the wait
    with pytest.raises(ValueError, match="asked must be at least 1"):
        schedule.interval_after(0)


def test_events_are_noted_on_the_interactions_recordings(event: dict[str, Any]) -> None:
    sink = Sink([TRANSFERRED, ORIGINAL])

    outcome = ContactEvents(sink, instance_arn=INSTANCE).handle(event)

    assert (outcome.action, outcome.contact_id, outcome.recordings) == (
        "noted",
        TRANSFERRED,
        (TRANSFERRED, ORIGINAL),
    )
    assert [d.contact_id for d in sink.noted] == [TRANSFERRED]


def test_events_of_another_instance_or_of_unrecorded_contacts_change_nothing(
    event: dict[str, Any],
) -> None:
    other = INSTANCE.replace("9308c2a1", "00000000")
    sink = Sink([])

    foreign = ContactEvents(sink, instance_arn=other).handle(event)
    unrecorded = ContactEvents(sink, instance_arn=INSTANCE).handle(event)

    assert foreign.action == "ignored"
    assert unrecorded.action == "no-recording"
    assert len(sink.noted) == 1


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CallRecorder")
    return load_function("contact_events")


def test_the_handler_returns_the_outcome(app: ModuleType, event: dict[str, Any]) -> None:
    events = ContactEvents(Sink([TRANSFERRED]), instance_arn=INSTANCE)

    result = app.lambda_handler(event, FakeLambdaContext(), events=events)

    assert result == {
        "action": "noted",
        "contact_id": TRANSFERRED,
        "recordings": (TRANSFERRED,),
        "detail": "",
    }
