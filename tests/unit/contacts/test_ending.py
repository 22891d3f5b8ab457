"""The end of a call: Connect's disconnect (the item, then DescribeContact), the idle fallback
when Connect cannot be asked, and the ceiling on pauses."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from callrec.connect import ConnectThrottled, ConnectUnavailable
from callrec.contacts import ContactDisconnect, ContactState
from callrec.ending import (
    DISCONNECT,
    IDLE,
    IDLE_CEILING,
    SETTLE_S,
    Ending,
    EndWatch,
)

A, B = "contact-a", "contact-b"
T_LAST = 1_800_000_060_000  # the end of the audio recorded (epoch ms)
DATA_AT = 1_800_000_061.0  # when the last fragment arrived (epoch s)


class Clock:
    def __init__(self) -> None:
        self.now = DATA_AT

    def __call__(self) -> float:
        return self.now


class Table:
    """The recordings table's disconnects."""

    def __init__(self, disconnects: Mapping[str, int] | None = None) -> None:
        self.kept = dict(disconnects or {})
        self.noted: list[ContactDisconnect] = []
        self.recordings = [A, B]

    def disconnects_of(self, contact_id: str) -> Mapping[str, int]:
        return dict(self.kept)

    def recordings_of(self, initial_contact_id: str) -> list[str]:
        return list(self.recordings)

    def note_disconnect(self, disconnect: ContactDisconnect) -> list[str]:
        self.noted.append(disconnect)
        self.kept[disconnect.contact_id] = disconnect.disconnected_at_ms
        return [A]


class Connect:
    """DescribeContact: each contact's disconnect (None: connected), or an error to raise."""

    def __init__(self, disconnects: Mapping[str, int | None], error: Exception | None = None):
        self.disconnects = dict(disconnects)
        self.error = error
        self.asked: list[tuple[str, float]] = []
        self.clock: Clock | None = None

    def describe(self, contact_id: str) -> ContactState:
        self.asked.append((contact_id, self.clock.now if self.clock else 0.0))
        if self.error is not None:
            raise self.error
        return ContactState(contact_id, A, None, "INBOUND", self.disconnects.get(contact_id))


def watch(
    clock: Clock,
    table: Table | None,
    connect: Connect | None,
    idle: float = 20,
    max_pause: float = 3600,
) -> EndWatch:
    if connect is not None:
        connect.clock = clock
    return EndWatch(
        contact_id=A,
        initial_contact_id=A,
        disconnects=table,
        directory=connect,
        idle_seconds=idle,
        max_pause_seconds=max_pause,
        clock=clock,
    )


def silent_for(clock: Clock, seconds: float) -> None:
    clock.now = DATA_AT + seconds


def test_a_disconnect_on_the_item_ends_the_call_once_the_stream_settled() -> None:
    clock, table = Clock(), Table({A: T_LAST - 500})
    connect = Connect({A: None})
    end = watch(clock, table, connect)

    silent_for(clock, SETTLE_S - 0.5)
    assert end.check(last_data_at=DATA_AT, t_last_ms=T_LAST) is None
    silent_for(clock, SETTLE_S)
    assert end.check(last_data_at=DATA_AT, t_last_ms=T_LAST) == Ending(
        DISCONNECT, {"contact": A, "disconnected_at_ms": T_LAST - 500, "source": "contact-event"}
    )
    assert connect.asked == []  # the event said it: Connect was not asked


def test_describe_contact_says_it_when_no_event_came_and_the_item_hears_of_it() -> None:
    clock, table = Clock(), Table()
    connect = Connect({A: T_LAST + 300})
    end = watch(clock, table, connect)

    silent_for(clock, SETTLE_S)
    ending = end.check(last_data_at=DATA_AT, t_last_ms=T_LAST)

    assert ending is not None
    assert ending.ended_by == DISCONNECT
    assert ending.detail["source"] == "describe-contact"
    assert [d.contact_id for d in table.noted] == [A]


def test_a_stale_disconnect_does_not_end_a_call_that_went_on_after_it() -> None:
    # Given A's disconnect at a transfer, while fragments tagged A went on for 30 s after it
    clock, table = Clock(), Table({A: T_LAST - 30_000})
    connect = Connect({A: T_LAST - 30_000, B: None})
    end = watch(clock, table, connect)

    # Then the call goes on while B (the interaction's other contact) is connected
    for seconds in (2, 5, 9, 15):
        silent_for(clock, seconds)
        assert end.check(last_data_at=DATA_AT, t_last_ms=T_LAST) is None
    assert B in [contact for contact, _ in connect.asked]

    # And it ends when B disconnects
    connect.disconnects[B] = T_LAST + 1000
    silent_for(clock, 40)
    ending = end.check(last_data_at=DATA_AT, t_last_ms=T_LAST)
    assert ending is not None
    assert (ending.ended_by, ending.detail["contact"]) == (DISCONNECT, B)


def test_connect_is_asked_on_its_schedule_and_throttling_spaces_the_questions() -> None:
    clock, table = Clock(), Table()
    connect = Connect({A: None})
    end = watch(clock, table, connect)
    for tenth in range(0, 600):  # a minute of silence, looked at ten times a second
        silent_for(clock, tenth / 10)
        assert end.check(last_data_at=DATA_AT, t_last_ms=T_LAST) is None
    asked_at = [round(at - DATA_AT, 1) for _, at in connect.asked]
    # 2 s into the silence, then 4, 8, 16 s later (AskSchedule; the next would be at 60 s)
    assert asked_at == [2.0, 6.0, 14.0, 30.0]

    throttled = Connect({A: None}, error=ConnectThrottled("429"))
    end = watch(Clock(), table, throttled)
    for tenth in range(0, 600):
        silent_for(throttled.clock, tenth / 10)  # type: ignore[arg-type]
        assert end.check(last_data_at=DATA_AT, t_last_ms=T_LAST) is None
    assert len(throttled.asked) < len(asked_at)


@pytest.mark.parametrize(
    "connect",
    [Connect({}, error=ConnectUnavailable("AccessDeniedException")), None],
    ids=["refused", "no-directory"],
)
def test_when_connect_cannot_be_asked_the_idle_time_ends_the_call(connect: Connect | None) -> None:
    clock = Clock()
    end = watch(clock, Table(), connect, idle=20)

    silent_for(clock, 19.5)
    assert end.check(last_data_at=DATA_AT, t_last_ms=T_LAST) is None
    silent_for(clock, 20)
    ending = end.check(last_data_at=DATA_AT, t_last_ms=T_LAST)

    assert ending is not None
    assert ending.ended_by == IDLE
    assert ending.detail["idle_seconds"] == 20
    expected = "AccessDeniedException" if connect else "no Connect instance to ask"
    assert expected in ending.detail["reason"]


def test_a_pause_while_connected_is_waited_through_up_to_the_ceiling() -> None:
    clock = Clock()
    end = watch(clock, Table(), Connect({A: None}), idle=20, max_pause=300)

    silent_for(clock, 200)  # far beyond the idle time: Connect says the contact is connected
    assert end.check(last_data_at=DATA_AT, t_last_ms=T_LAST) is None
    silent_for(clock, 300)
    ending = end.check(last_data_at=DATA_AT, t_last_ms=T_LAST)
    assert ending is not None
    assert ending.ended_by == IDLE_CEILING


def test_the_schedule_survives_a_hand_off_and_restarts_with_a_new_silence() -> None:
    clock, table = Clock(), Table()
    connect = Connect({A: None})
    end = watch(clock, table, connect)
    silent_for(clock, 2)
    end.check(last_data_at=DATA_AT, t_last_ms=T_LAST)
    assert len(connect.asked) == 1

    # A fresh invocation, from the checkpointed state, does not ask again at once
    resumed = EndWatch(
        contact_id=A,
        initial_contact_id=A,
        disconnects=table,
        directory=connect,
        idle_seconds=20,
        max_pause_seconds=3600,
        clock=clock,
        state=end.state(),
    )
    silent_for(clock, 5)
    resumed.check(last_data_at=DATA_AT, t_last_ms=T_LAST)
    assert len(connect.asked) == 1

    # A new fragment starts a new silence: asked again 2 s into it
    clock.now = DATA_AT + 30 + 2
    resumed.check(last_data_at=DATA_AT + 30, t_last_ms=T_LAST + 29_000)
    assert len(connect.asked) == 2


def test_an_ending_round_trips_through_the_checkpoint() -> None:
    ending = Ending(DISCONNECT, {"contact": A, "disconnected_at_ms": 1, "source": "x"})
    assert Ending.from_json(ending.to_json()) == ending
    assert Ending.from_json(None) is None
