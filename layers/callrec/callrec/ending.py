"""When a recording's call is over: Connect's disconnect, and the stream's silence as fallback.

The rule (docs/contact-lifecycle.md §2): a recording ends when Connect's latest disconnect of
the contact's interaction is not older than the audio (`L >= T_last - END_TOLERANCE_MS`) and the
stream has been silent for `SETTLE_S`, long enough for KVS to have delivered every fragment up
to the hang-up. Where the disconnect comes from, in order, at each silent moment of the read
loop:

1. the recording's item (`disconnects`): the contact-events function writes Connect's
   DISCONNECTED events there within seconds of the hang-up; read at most every
   `ITEM_POLL_S` of silence;
2. DescribeContact (`connect.ContactDirectory`), on `contacts.AskSchedule`'s schedule, for the
   contact and, when its own disconnect is stale (a transfer that kept the original ContactId
   on the fragments), for the other contacts of its interaction; a disconnect it reports is
   written to the items of the interaction (`InteractionStore.note_disconnect`);
3. when Connect cannot be asked (`ConnectUnavailable`: no permission, an unknown contact, no
   answer; or no directory at all): the idle fallback, `RecordingIdleSeconds` of silence.

With Connect saying "still connected", a silence of `RecordingMaxPauseSeconds` ends the
recording anyway ("idle-ceiling"): no pause in a contact flow lasts that long. The `Ending`
says which of these ended it; the recorder keeps it on the item (`ended_by`, `end_detail`).

Silence is the stream's: seconds since the last fragment arrived (epoch clock, kept in the
checkpoint by the recorder), so it adds up across invocations; so does this watch's state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from callrec.connect import ConnectThrottled, ConnectUnavailable
from callrec.contacts import FROM_DESCRIBE, FROM_EVENT, AskSchedule, ContactDisconnect, ContactState

logger = Logger(child=True)

# Connect's disconnect time and the fragments' producer timestamps come from different clocks;
# a fragment ending up to this long after the disconnect is still the call's last.
END_TOLERANCE_MS = 2000
# Silence after which KVS has delivered what was ingested before the hang-up: Connect sends a
# fragment about every second, and KVS stores it about 170 ms after its producer time (the
# server timestamps of the real capture, docs/operations.md).
SETTLE_S = 2.0
# How often the item is read while the stream is silent (one consistent read, 0.5 RCU).
ITEM_POLL_S = 1.0

DEFAULT_SCHEDULE = AskSchedule()

DISCONNECT = "disconnect"
CONTACT_CHANGE = "contact-change"
IDLE = "idle"
IDLE_CEILING = "idle-ceiling"


@dataclass(frozen=True, slots=True)
class Ending:
    """Why a recording ended: `ended_by` (one of the names above) and its detail."""

    ended_by: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"ended_by": self.ended_by, "detail": dict(self.detail)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Ending | None:
        if not data:
            return None
        return cls(str(data["ended_by"]), dict(data.get("detail") or {}))


class Directory(Protocol):
    def describe(self, contact_id: str) -> ContactState: ...


class Disconnects(Protocol):
    """The recordings table: the disconnects kept on a recording, and noting new ones."""

    def disconnects_of(self, contact_id: str) -> Mapping[str, int]: ...

    def recordings_of(self, initial_contact_id: str) -> list[str]: ...

    def note_disconnect(self, disconnect: ContactDisconnect) -> list[str]: ...


class EndWatch:
    """Decides, at each silent moment of one recording's read loop, whether the call is over."""

    def __init__(
        self,
        *,
        contact_id: str,
        initial_contact_id: str,
        disconnects: Disconnects | None,
        directory: Directory | None,
        idle_seconds: float,
        max_pause_seconds: float,
        clock: Callable[[], float],
        schedule: AskSchedule = DEFAULT_SCHEDULE,
        state: Mapping[str, Any] | None = None,
    ) -> None:
        self.contact_id = contact_id
        self.initial_contact_id = initial_contact_id
        self.disconnects = disconnects
        self.directory = directory
        self.idle_seconds = idle_seconds
        self.max_pause_seconds = max_pause_seconds
        self.clock = clock
        self.schedule = schedule
        state = state or {}
        # The silence these counters belong to (the epoch second its last fragment arrived).
        self._silence_of = state.get("silence_of")
        self._asked = int(state.get("asked", 0))
        self._throttled = int(state.get("throttled", 0))
        self._next_ask_s = float(state.get("next_ask_s", schedule.first_after_s))
        self.unavailable: str | None = state.get("unavailable")
        self._polled_at = 0.0
        self._described: dict[str, int] = {}

    def state(self) -> dict[str, Any]:
        return {
            "silence_of": self._silence_of,
            "asked": self._asked,
            "throttled": self._throttled,
            "next_ask_s": self._next_ask_s,
            "unavailable": self.unavailable,
        }

    def check(self, *, last_data_at: float, t_last_ms: int | None) -> Ending | None:
        """The ending, if the call is over after `clock() - last_data_at` seconds of silence;
        `t_last_ms` is the end of the last audio recorded (None before any)."""
        silence = self.clock() - last_data_at
        if self._silence_of != last_data_at:  # a new silence: Connect is asked afresh
            self._silence_of = last_data_at
            self._asked, self._throttled = 0, 0
            self._next_ask_s = self.schedule.first_after_s
        if silence < SETTLE_S:
            return None
        if silence >= self.max_pause_seconds:
            return Ending(IDLE_CEILING, {"silence_seconds": round(silence, 1)})
        ending = self._from_item(t_last_ms) or self._from_connect(silence, t_last_ms)
        if ending is not None:
            return ending
        if self.unavailable is not None and silence >= self.idle_seconds:
            return Ending(IDLE, {"reason": self.unavailable, "idle_seconds": self.idle_seconds})
        return None

    # ------------------------------------------------------------------ sources
    def _from_item(self, t_last_ms: int | None) -> Ending | None:
        now = self.clock()
        if now - self._polled_at < ITEM_POLL_S:
            return None
        self._polled_at = now
        kept = self.disconnects.disconnects_of(self.contact_id) if self.disconnects else {}
        known = {**kept, **self._described}
        return self._decide(known, t_last_ms)

    def _from_connect(self, silence: float, t_last_ms: int | None) -> Ending | None:
        if self.directory is None:
            self.unavailable = self.unavailable or "no Connect instance to ask"
            return None
        if silence < self._next_ask_s:
            return None
        try:
            for contact in self._contacts_to_ask(t_last_ms):
                state = self.directory.describe(contact)
                disconnect = state.disconnect
                if disconnect is not None:
                    self._described[contact] = disconnect.disconnected_at_ms
                    if self.disconnects is not None:
                        self.disconnects.note_disconnect(disconnect)
        except ConnectThrottled as exc:
            self._throttled += 1
            logger.info("DescribeContact throttled", detail=str(exc))
        except ConnectUnavailable as exc:
            if self.unavailable is None:
                logger.warning(
                    "Connect cannot be asked: the idle time ends the call", detail=str(exc)
                )
            self.unavailable = str(exc)
            return None
        else:
            self.unavailable = None
        self._asked += 1
        self._next_ask_s = silence + self.schedule.interval_after(
            self._asked, throttled=self._throttled
        )
        return self._decide(self._described, t_last_ms)

    def _contacts_to_ask(self, t_last_ms: int | None) -> list[str]:
        """The contact, and when its own disconnect is stale (the audio went on after it: a
        transfer keeping its ContactId), the other contacts of its interaction."""
        own = self._described.get(self.contact_id)
        if own is None or not _stale(own, t_last_ms) or self.disconnects is None:
            return [self.contact_id]
        others = [
            c
            for c in self.disconnects.recordings_of(self.initial_contact_id)
            if c != self.contact_id
        ]
        return [c for c in others if c not in self._described] or [self.contact_id]

    def _decide(self, known: Mapping[str, int], t_last_ms: int | None) -> Ending | None:
        """The latest disconnect known, unless it is stale; from DescribeContact if this watch
        asked it, else from a contact event kept on the item."""
        if not known:
            return None
        contact, at_ms = max(known.items(), key=lambda item: item[1])
        if _stale(at_ms, t_last_ms):
            return None
        source = FROM_DESCRIBE if contact in self._described else FROM_EVENT
        return Ending(
            DISCONNECT, {"contact": contact, "disconnected_at_ms": at_ms, "source": source}
        )


def _stale(disconnected_at_ms: int, t_last_ms: int | None) -> bool:
    """A disconnect older than the audio recorded: the call went on after it."""
    return t_last_ms is not None and disconnected_at_ms < t_last_ms - END_TOLERANCE_MS
