"""The call's end is the stream's silence, kept across invocations (moto, fake time).

Each invocation used to time the silence from its own start: a chain of invocations each
shorter than the idle time (a short timeout, slow cold starts, a loaded machine) never saw
enough of it, and the finished call stayed RECORDING, handing off forever.
"""

from __future__ import annotations

import io

import pytest

from callrec.events import StartRecord
from callrec.kvs import StartSelector
from callrec.recorder import ASSEMBLY_HANDOFF, TIMEOUT_HANDOFF
from callrec_local import producer as p
from tests.unit.recorder.conftest import FakeTime, invocations, recorder_on

# KVS closes a GetMedia response after about 3 s without data.
EMPTY_RESPONSE_S = 3.0


class FakeMedia:
    """Serves the call's first fragment by its number, the rest of the call in the first
    GetMedia response, then empty responses that each take KVS's idle time to end."""

    def __init__(self, time: FakeTime, call: list[bytes]) -> None:
        self.time = time
        self.first = call[0]
        self.bodies = [b"".join(call[1:])]

    def get_fragment(self, stream_arn: str, fragment_number: str, *, deadline: float) -> io.BytesIO:
        return io.BytesIO(self.first)

    def get_media(self, stream_arn: str, selector: StartSelector, *, deadline: float) -> io.BytesIO:
        if self.bodies:
            return io.BytesIO(self.bodies.pop(0))
        self.time.now += EMPTY_RESPONSE_S
        return io.BytesIO(b"")


def test_a_call_ends_after_its_silence_even_when_no_invocation_lasts_that_long(
    aws: None, record: StartRecord
) -> None:
    # Given a 3-second call, all of it in KVS, recorded by invocations that each have 6 s
    # (5 s to read) while the call ends only after 10 s of silence
    time = FakeTime()
    cu, op = p.conversation(3.0, 7)
    call = p.ConnectCall(
        record.contact_id, "instance", record.start_timestamp_ms, cu, op, hangup_ms=3000
    )
    media = FakeMedia(time, list(p.iter_capture(list(call.fragments()))))
    recorder, store = recorder_on(time, media)
    store.register(record, grace_seconds=5)

    # When invocations follow one another, each handing off to the next
    outcomes = invocations(recorder, record.contact_id, time, seconds=6, limit=6)

    # Then the first reads the call and runs out of time, the second sees the silence reach
    # 10 s and ends the call (a fresh invocation assembles), and the third completes it
    assert [(o.action, o.detail) for o in outcomes] == [
        ("handed_off", TIMEOUT_HANDOFF),
        ("handed_off", ASSEMBLY_HANDOFF),
        ("completed", ""),
    ]
    recording = store.get(record.contact_id)
    assert recording is not None
    assert recording.status == "COMPLETED"
    assert outcomes[-1].recorded_seconds == pytest.approx(3.0, abs=0.2)
