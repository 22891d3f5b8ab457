"""Contacts as Connect runs them, played by the simulator: paused and restarted streaming (same
stream, another stream), invocations once or after every start, transfers with both tag
behaviours, and Connect's records (DescribeContact, contact events) through its emulator.

Streams are read back with GetMedia and checked against each contact's ground truth with the
independent EBML walk of test_simulator.py (ebmlite), never with the project's reader.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from callrec_local.connect_emulator import LOCAL_INSTANCE_ARN, ConnectEmulator, EventDelivery
from callrec_local.kvs_emulator import EmulatorConfig, KvsEmulator
from callrec_local.producer import GroundTruth, Pause, speech_like
from callrec_local.simulator import (
    CallScript,
    ConnectSimulator,
    InvokeMode,
    PlayedCall,
    TagBehaviour,
    Transfer,
    TransferAttributes,
)
from tests.integration.simulator.test_simulator import align, contact_blocks, read_stream

BYTES_PER_MS = 16
EARLIEST = {"StartSelectorType": "EARLIEST"}


@pytest.fixture
def kvs() -> Iterator[KvsEmulator]:
    with KvsEmulator(EmulatorConfig(speed=60, idle_timeout_seconds=0.6)) as emulator:
        yield emulator


@pytest.fixture
def events() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def connect(events: list[dict[str, Any]]) -> Iterator[ConnectEmulator]:
    with ConnectEmulator(events.append) as emulator:
        yield emulator


def read_all(kvs: KvsEmulator, played: PlayedCall) -> dict[str, list[Any]]:
    """Every block of every stream the call used, by the ContactId of its fragment."""
    blocks: dict[str, list[Any]] = {}
    for _, arn in played.streams:
        for contact, found in contact_blocks(read_stream(kvs, arn, EARLIEST)).items():
            blocks.setdefault(contact, []).extend(found)
    return blocks


def audio(event: dict[str, Any]) -> dict[str, str]:
    data: dict[str, str] = event["Details"]["ContactData"]["MediaStreams"]["Customer"]["Audio"]
    return data


def disconnects(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    details = [json.loads(e["Detail"]) for e in events]
    return [
        (d["contactId"], d["disconnectTimestamp"])
        for d in details
        if d["eventType"] == "DISCONNECTED"
    ]


def test_a_paused_call_restarted_on_the_same_stream_invoked_after_every_start(
    kvs: KvsEmulator, connect: ConnectEmulator, events: list[dict[str, Any]]
) -> None:
    # Given a 40 s call whose streaming stops 10 s in for 45 s (PCI), the flow invoking the
    # function after each Start media streaming block
    invoked: list[dict[str, Any]] = []
    sim = ConnectSimulator(kvs, invoked.append, connect=connect)
    played = sim.play(
        CallScript(
            seconds=100.0,
            seed=31,
            pauses=[Pause(at_ms=10_000, length_ms=45_000)],
            invoke=InvokeMode.EVERY_START,
            hangup_ms=70_000,
        )
    )
    played.wait(120)

    # Then two invocations: the first fragment of each segment, on the same stream
    assert played.handler_error is None
    first, second = invoked
    assert audio(first)["StreamARN"] == audio(second)["StreamARN"] == played.stream_arn
    assert audio(second)["StartFragmentNumber"] != audio(first)["StartFragmentNumber"]
    assert int(audio(second)["StartTimestamp"]) == played.call.start_ms + 9_984 + 45_000
    # And the stream holds the call with the pause as silence of its true length
    truth = played.ground_truth()
    assert truth.duration_ms == 70_000
    stop, restart = 9_984 * BYTES_PER_MS, 54_984 * BYTES_PER_MS
    assert truth.customer[stop:restart] == bytes(restart - stop)
    assert truth.customer[:stop] == speech_like(100.0, 31 * 2 + 1, pitch_hz=210.0)[:stop]
    assert align(read_all(kvs, played)[played.contact_id]) == truth
    # And Connect knows both segments and the disconnect at the hang-up
    recordings = connect.describe(connect.instance_id, played.contact_id)["Contact"]["Recordings"]
    assert [r["FragmentStartNumber"] for r in recordings] == [
        audio(first)["StartFragmentNumber"],
        audio(second)["StartFragmentNumber"],
    ]
    assert "StopTimestamp" in recordings[0]
    assert disconnects(events) == [(played.contact_id, _iso(played.call.start_ms + 70_000))]
    assert played.disconnected_ms == played.call.start_ms + 70_000


def test_a_restart_on_another_stream_invoked_once(
    kvs: KvsEmulator, connect: ConnectEmulator
) -> None:
    invoked: list[dict[str, Any]] = []
    sim = ConnectSimulator(kvs, invoked.append, connect=connect)
    played = sim.play(
        CallScript(
            seconds=20.0,
            seed=32,
            pauses=[Pause(at_ms=6_000, length_ms=5_000, other_stream=True)],
            invoke=InvokeMode.ONCE,
        )
    )
    played.wait(60)

    # One invocation (the flow does not invoke again), two streams
    assert len(invoked) == 1
    assert len(played.streams) == 2
    assert played.streams[0][0] != played.streams[1][0]
    # The contact's audio is the union of both streams, the pause silent
    blocks = read_all(kvs, played)
    assert align(blocks[played.contact_id]) == played.ground_truth()
    assert played.ground_truth().duration_ms == 20_000
    streams = connect.describe(connect.instance_id, played.contact_id)["Contact"]["Recordings"]
    assert [r["Location"] for r in streams] == [arn for _, arn in played.streams]


def test_a_transfer_whose_tags_switch_to_the_new_contact(
    kvs: KvsEmulator, connect: ConnectEmulator, events: list[dict[str, Any]]
) -> None:
    invoked: list[dict[str, Any]] = []
    sim = ConnectSimulator(kvs, invoked.append, connect=connect)
    played = sim.play(CallScript(seconds=20.0, seed=33, transfers=[Transfer(at_ms=8_000)]))
    played.wait(60)
    original, transferred = played.contacts

    # The new leg's flow invoked the function as the new contact, from the first fragment
    # after the transfer
    _first, second = invoked
    data = second["Details"]["ContactData"]
    assert (data["ContactId"], data["InitialContactId"], data["PreviousContactId"]) == (
        transferred,
        original,
        original,
    )
    assert data["InitiationMethod"] == "TRANSFER"
    # (8 s is on the 64 ms block grid: the first fragment of the new contact starts there)
    assert int(audio(second)["StartTimestamp"]) == played.call.start_ms + 8_000
    # The stream's fragments carry the original id, then the new one: each its own truth
    blocks = read_all(kvs, played)
    assert align(blocks[original]) == played.ground_truth(original)
    assert align(blocks[transferred]) == played.ground_truth(transferred)
    assert (
        played.ground_truth(original).duration_ms + played.ground_truth(transferred).duration_ms
        == 20_000
    )
    # Connect: the original ended at the transfer (DescribeContact says so for transfers), the
    # new contact at the hang-up; both DISCONNECTED events were published
    described = connect.describe(connect.instance_id, original)["Contact"]
    assert described["DisconnectTimestamp"] == (played.call.start_ms + 8_000) / 1000
    assert described["NextContacts"][0]["NextContactMetadata"]["QuickConnectContactData"] == {
        "ContactId": transferred
    }
    assert disconnects(events) == [
        (original, _iso(played.call.start_ms + 8_000)),
        (transferred, _iso(played.call.start_ms + 20_000)),
    ]
    assert all(LOCAL_INSTANCE_ARN in e["Resources"] for e in events)


def test_a_transfer_whose_tags_keep_the_original_contact(
    kvs: KvsEmulator, connect: ConnectEmulator
) -> None:
    invoked: list[dict[str, Any]] = []
    sim = ConnectSimulator(kvs, invoked.append, connect=connect)
    played = sim.play(
        CallScript(
            seconds=16.0,
            seed=34,
            transfers=[
                Transfer(
                    at_ms=5_000,
                    tags=TagBehaviour.KEEP,
                    attributes=TransferAttributes.ORIGINAL,
                )
            ],
        )
    )
    played.wait(60)
    original, transferred = played.contacts

    # Every fragment keeps the original id: the original's truth is the whole call, the new
    # contact has no audio of its own
    blocks = read_all(kvs, played)
    assert list(blocks) == [original]
    assert align(blocks[original]) == played.ground_truth(original)
    assert played.ground_truth(original).duration_ms == 16_000
    assert played.ground_truth(transferred) == GroundTruth(start_ms=0, customer=b"", agent=b"")
    # The new leg's event repeats the original's media attributes (the copied case)
    assert audio(invoked[1]) == audio(invoked[0])
    assert invoked[1]["Details"]["ContactData"]["ContactId"] == transferred


def test_a_disconnect_during_a_pause_and_a_flow_invoking_after_stop(
    kvs: KvsEmulator, connect: ConnectEmulator, events: list[dict[str, Any]]
) -> None:
    # Given a call that stops streaming 4 s in and hangs up 30 s in, before any restart; the
    # flow invokes the function after the Stop block too, and Connect retries each invocation
    invoked: list[dict[str, Any]] = []
    sim = ConnectSimulator(kvs, invoked.append, connect=connect)
    played = sim.play(
        CallScript(
            seconds=60.0,
            seed=35,
            pauses=[Pause(at_ms=4_000, length_ms=40_000)],
            hangup_ms=30_000,
            invoke_after_stop=True,
            duplicate_invocations=1,
        )
    )
    played.wait(60)

    # Then the start's and the stop's invocations, each twice; the stop names the last fragment
    assert len(invoked) == 4
    assert invoked[0] == invoked[1]
    assert invoked[2] == invoked[3]
    stop = audio(invoked[2])
    assert stop["StartFragmentNumber"] == audio(invoked[0])["StartFragmentNumber"]
    assert stop["StopFragmentNumber"] == played.fragment_numbers[-1]
    assert int(stop["StopTimestamp"]) == played.call.start_ms + 3_968
    # The audio ends at the stop; Connect's disconnect is the hang-up, 26 s later
    assert played.ground_truth().duration_ms == 3_968
    assert disconnects(events) == [(played.contact_id, _iso(played.call.start_ms + 30_000))]


def test_contact_events_can_be_late_or_lost(kvs: KvsEmulator) -> None:
    published: list[dict[str, Any]] = []
    with ConnectEmulator(published.append, delivery=EventDelivery(drop=True)) as connect:
        played = ConnectSimulator(kvs, connect=connect).play(CallScript(seconds=2.0, seed=36))
        played.wait(30)

        # Connect recorded the disconnect (DescribeContact answers) but the event never came
        assert published == []
        assert [json.loads(e["Detail"])["eventType"] for e in connect.events] == [
            "INITIATED",
            "DISCONNECTED",
        ]
        described = connect.describe(connect.instance_id, played.contact_id)["Contact"]
        assert described["DisconnectTimestamp"] == (played.call.start_ms + 2_000) / 1000


def test_a_five_minute_pause_is_silence_of_five_minutes(kvs: KvsEmulator) -> None:
    played = ConnectSimulator(kvs).play(
        CallScript(seconds=330.0, seed=37, pauses=[Pause(at_ms=15_000, length_ms=300_000)])
    )
    played.wait(120)

    truth = played.ground_truth()
    assert truth.duration_ms == 330_000
    silent = truth.customer[14_976 * BYTES_PER_MS : 314_976 * BYTES_PER_MS]
    assert silent == bytes(len(silent))
    assert len(silent) == 300_000 * BYTES_PER_MS
    assert align(read_all(kvs, played)[played.contact_id]) == truth


def _iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
