"""An interaction's recordings in the recordings table (moto, in process): found through the
interaction index in order, and Connect's disconnects kept on each of them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import boto3
import pytest

from callrec.contacts import FROM_EVENT, ContactDisconnect
from callrec.events import StartRecord, start_record_from_contact_flow
from callrec.interactions import InteractionStore
from callrec.recordings import RecordingStore
from tests.support import in_process_aws, load_event

TABLE = "recordings-interactions"
TRANSFERRED = "0b7d1a52-7ac4-4e07-9a39-5f0c3f1c9d41"
SECOND_TRANSFER = "c3d1e0aa-5c1f-4b87-8f0e-2a6b7d9e1f20"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with in_process_aws(monkeypatch, TABLE):
        yield


@pytest.fixture
def original() -> StartRecord:
    return start_record_from_contact_flow(load_event("contact-flow-event.json"))


def leg(record: StartRecord, contact_id: str, previous: str) -> StartRecord:
    return dataclasses.replace(
        record, contact_id=contact_id, previous_contact_id=previous, initiation_method="TRANSFER"
    )


def disconnect(contact_id: str, at_ms: int, initial: str) -> ContactDisconnect:
    return ContactDisconnect(contact_id, initial, at_ms, FROM_EVENT)


def test_an_interactions_recordings_come_in_order_of_registration(
    aws: None, original: StartRecord
) -> None:
    clock = Clock()
    recordings = RecordingStore(TABLE, boto3.client("dynamodb"), clock=clock)
    recordings.register(original)
    clock.now += 200
    recordings.register(leg(original, TRANSFERRED, original.contact_id))
    clock.now += 300
    recordings.register(leg(original, SECOND_TRANSFER, TRANSFERRED))
    other = dataclasses.replace(original, contact_id="another", initial_contact_id="another")
    recordings.register(other)

    found = InteractionStore(TABLE, boto3.client("dynamodb")).recordings_of(original.contact_id)

    assert found == [original.contact_id, TRANSFERRED, SECOND_TRANSFER]


def test_a_disconnect_is_kept_on_every_recording_of_the_interaction(
    aws: None, original: StartRecord
) -> None:
    # Given the original contact and the one it was transferred to, both recorded
    recordings = RecordingStore(TABLE, boto3.client("dynamodb"))
    recordings.register(original)
    recordings.register(leg(original, TRANSFERRED, original.contact_id))
    store = InteractionStore(TABLE, boto3.client("dynamodb"))

    # When Connect says the original ended (the transfer), then the transferred one (hang-up)
    first = store.note_disconnect(disconnect(original.contact_id, 1_000, original.contact_id))
    second = store.note_disconnect(disconnect(TRANSFERRED, 5_000, original.contact_id))

    # Then each recording knows both, its own among them
    assert first == [original.contact_id, TRANSFERRED]
    assert second == [TRANSFERRED, original.contact_id]
    for contact in (original.contact_id, TRANSFERRED):
        recording = recordings.get(contact)
        assert recording is not None
        assert recording.disconnects == {original.contact_id: 1_000, TRANSFERRED: 5_000}
    assert recordings.get(TRANSFERRED).own_disconnect_ms == 5_000  # type: ignore[union-attr]


def test_disconnects_of_unrecorded_contacts_create_nothing(aws: None) -> None:
    store = InteractionStore(TABLE, boto3.client("dynamodb"))

    assert store.note_disconnect(disconnect("nobody", 1_000, "nobody")) == []
    assert boto3.client("dynamodb").scan(TableName=TABLE)["Items"] == []


def test_an_item_registered_before_disconnects_existed_gets_the_map(
    aws: None, original: StartRecord
) -> None:
    recordings = RecordingStore(TABLE, boto3.client("dynamodb"))
    recordings.register(original)
    boto3.client("dynamodb").update_item(
        TableName=TABLE,
        Key={"contact_id": {"S": original.contact_id}},
        UpdateExpression="REMOVE disconnects",
    )

    noted = InteractionStore(TABLE, boto3.client("dynamodb")).note_disconnect(
        disconnect(original.contact_id, 7_000, original.contact_id)
    )

    assert noted == [original.contact_id]
    assert recordings.get(original.contact_id).disconnects == {original.contact_id: 7_000}  # type: ignore[union-attr]
