"""Connect's end-of-call signals on the local stack, wired from template.yaml: a contact event
through the EventBridge rule to the real contact-events function and onto the recordings of the
interaction; DescribeContact from the Connect emulator through a real boto3 client."""

from __future__ import annotations

import dataclasses
import time

import pytest

from callrec.connect import ConnectUnavailable, ContactDirectory
from callrec.events import start_record_from_contact_flow
from callrec.recordings import RecordingStore
from callrec_local.connect_emulator import LOCAL_INSTANCE_ARN
from callrec_local.pytest_plugin import LocalStackFactory
from callrec_local.stack import FunctionOverride, LocalStack
from tests.support import load_event

TRANSFERRED = "0b7d1a52-7ac4-4e07-9a39-5f0c3f1c9d41"
UNRECORDED = "7e3c2b10-9d4a-4c55-8f61-0a1b2c3d4e5f"


@pytest.fixture
def stack(local_stack_factory: LocalStackFactory) -> LocalStack:
    return local_stack_factory(
        time_scale=0.05,
        schedules=False,
        overrides={"ContactEventsFunction": FunctionOverride(timeout_s=15.0)},
    )


def test_a_disconnect_event_reaches_every_recording_of_the_interaction(stack: LocalStack) -> None:
    # Given a recorded contact transferred to another, recorded too
    original = start_record_from_contact_flow(load_event("contact-flow-event.json"))
    transferred = dataclasses.replace(
        original, contact_id=TRANSFERRED, previous_contact_id=original.contact_id
    )
    recordings = RecordingStore(stack.table_name, stack.dynamodb())
    recordings.register(original)
    recordings.register(transferred)
    connect = stack.connect
    assert connect is not None
    connect.begin(original.contact_id, 1_782_912_654_536)
    connect.begin(UNRECORDED, 1_782_912_654_600)

    # When Connect transfers the call, the transferred contact and an unrecorded one hang up
    connect.transfer(original.contact_id, TRANSFERRED, 1_782_912_700_000)
    connect.disconnect(TRANSFERRED, 1_782_912_760_000)
    connect.disconnect(UNRECORDED, 1_782_912_761_000)

    # Then both recordings know both disconnects, through the template's rule and function
    expected = {original.contact_id: 1_782_912_700_000, TRANSFERRED: 1_782_912_760_000}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = [recordings.get(c).disconnects for c in (original.contact_id, TRANSFERRED)]  # type: ignore[union-attr]
        if got == [expected, expected]:
            break
        time.sleep(0.2)
    assert got == [expected, expected]
    # Only DISCONNECTED events reach the function (the rule's pattern); none created an item
    handled = stack.wait_for(
        lambda invs: len([i for i in invs if i.source == "events"]) >= 3, timeout_s=30
    )
    results = sorted(
        (i.result["contact_id"], i.result["action"]) for i in handled if i.source == "events"
    )
    assert results == sorted(
        [
            (original.contact_id, "noted"),
            (TRANSFERRED, "noted"),
            (UNRECORDED, "no-recording"),
        ]
    )
    assert recordings.get(UNRECORDED) is None
    assert {i.function_name for i in handled if i.source == "events"} == {
        stack.function_name("ContactEventsFunction")
    }


def test_describe_contact_is_served_by_the_connect_emulator(stack: LocalStack) -> None:
    connect = stack.connect
    assert connect is not None
    connect.begin("c-1", 1_000_000)
    directory = ContactDirectory(LOCAL_INSTANCE_ARN, stack.client("connect"))

    before = directory.describe("c-1")
    connect.disconnect("c-1", 1_060_500)
    after = directory.describe("c-1")

    assert before.disconnected_at_ms is None
    assert after.disconnected_at_ms == 1_060_500
    connect.refuse_describe("AccessDeniedException")
    with pytest.raises(ConnectUnavailable, match="AccessDeniedException"):
        directory.describe("c-1")
