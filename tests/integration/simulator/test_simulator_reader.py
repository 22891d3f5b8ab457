"""The simulator's streams read back with the project's reader, sample for sample against the truth.

Media is fetched as the recorder fetches it: a real `kinesisvideo` client asks the emulator's
GetDataEndpoint for GET_MEDIA, and a real `kinesis-video-media` client calls GetMedia there. The body
goes through `FragmentReader`, `ContactGate` and `Aligner.add_fragment`/`finish`, and what comes out
must equal `PlayedCall.ground_truth()` exactly. (test_simulator.py checks the same streams with an
independent EBML walk instead, so a bug shared by the simulator and the reader cannot hide.)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import boto3.session
import pytest
from aws_lambda_powertools.utilities.data_classes import ConnectContactFlowEvent
from botocore.config import Config
from botocore.response import StreamingBody

from callrec.alignment import Aligner
from callrec.fragments import (
    ContactDecision,
    ContactGate,
    ErrorChunk,
    FragmentReader,
    StreamEnd,
)
from callrec_local.kvs_emulator import EmulatorConfig, KvsEmulator
from callrec_local.producer import (
    BLOCK_MS,
    TRACK_FROM_CUSTOMER,
    TRACK_TO_CUSTOMER,
    Gap,
    GroundTruth,
    TagsLayout,
)
from callrec_local.simulator import CallScript, ConnectSimulator, PlayedCall, lambda_handler_adapter

SPEED = 40
IDLE_TIMEOUT_S = 0.6
BYTES_PER_MS = 16  # 8 kHz, 16-bit mono
# 8 ms of digital silence: the simulator's voices never have it (their pauses carry a noise floor).
NEVER_IN_SPEECH = bytes(8 * BYTES_PER_MS)


@pytest.fixture
def kvs() -> Iterator[KvsEmulator]:
    with KvsEmulator(EmulatorConfig(speed=SPEED, idle_timeout_seconds=IDLE_TIMEOUT_S)) as emulator:
        yield emulator


def get_media(kvs: KvsEmulator, stream_arn: str, selector: dict[str, Any]) -> StreamingBody:
    """GetMedia's streaming body, the endpoint found through GetDataEndpoint (clients of a session of
    their own: nothing cached in boto3's default session can reach them)."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    config = Config(retries={"total_max_attempts": 1}, read_timeout=20)
    control = session.client("kinesisvideo", endpoint_url=kvs.endpoint_url, config=config)
    endpoint = control.get_data_endpoint(StreamARN=stream_arn, APIName="GET_MEDIA")["DataEndpoint"]
    media = session.client("kinesis-video-media", endpoint_url=endpoint, config=config)
    body: StreamingBody = media.get_media(StreamARN=stream_arn, StartSelector=selector)["Payload"]
    return body


@dataclasses.dataclass
class Recording:
    """One contact read the recorder's way: fragments gated, aligned, checkpointed after each."""

    gate: ContactGate = dataclasses.field(default_factory=ContactGate)
    aligner: Aligner = dataclasses.field(default_factory=Aligner)
    customer: bytearray = dataclasses.field(default_factory=bytearray)
    agent: bytearray = dataclasses.field(default_factory=bytearray)
    continuation_token: str | None = None  # of the last complete fragment read
    fragment_numbers: list[str] = dataclasses.field(default_factory=list)  # every one read

    def read(self, body: StreamingBody) -> StreamEnd:
        """Reads one GetMedia response until it ends or another contact starts (closing it then,
        as a recorder does, to free the connection); how it ended."""
        reader = FragmentReader()
        try:
            for event in reader.read_stream(body, chunk_size=4096):
                assert not isinstance(event, ErrorChunk), f"error {event.code} at {event.offset}"
                assert event.fragment_number is not None
                self.fragment_numbers.append(event.fragment_number)
                decision = self.gate.decide(event)
                if decision is ContactDecision.END:
                    return StreamEnd(True, event.offset, "another contact started", None)
                if decision is ContactDecision.KEEP:
                    aligned = self.aligner.add_fragment(event)
                    self.customer += aligned.cu
                    self.agent += aligned.op
                self.continuation_token = event.continuation_token
        finally:
            body.close()
        assert reader.end is not None
        return reader.end

    def checkpoint(self) -> dict[str, Any]:
        """What a recorder stores between invocations, through JSON as DynamoDB would keep it."""
        state = {
            "gate": self.gate.state(),
            "aligner": self.aligner.state(),
            "continuation_token": self.continuation_token,
        }
        restored: dict[str, Any] = json.loads(json.dumps(state))
        return restored

    @classmethod
    def resumed(cls, checkpoint: dict[str, Any], recording: Recording) -> Recording:
        """A new recording continuing from `checkpoint` (the audio written so far is kept)."""
        return cls(
            gate=ContactGate.from_state(checkpoint["gate"]),
            aligner=Aligner.from_state(checkpoint["aligner"]),
            customer=recording.customer,
            agent=recording.agent,
            continuation_token=checkpoint["continuation_token"],
            fragment_numbers=recording.fragment_numbers,
        )

    def finish(self) -> GroundTruth:
        """The recording as the reader made it, in the ground truth's terms."""
        tail = self.aligner.finish()
        assert self.aligner.start_ns is not None, "no audio read"
        assert self.aligner.start_ns % 1_000_000 == 0
        return GroundTruth(
            start_ms=self.aligner.start_ns // 1_000_000,
            customer=bytes(self.customer + tail.cu),
            agent=bytes(self.agent + tail.op),
        )


def record(kvs: KvsEmulator, played: PlayedCall, selector: dict[str, Any]) -> Recording:
    """One GetMedia response of `played`'s stream read for `played`'s contact."""
    recording = Recording(gate=ContactGate(target=played.contact_id))
    end = recording.read(get_media(kvs, played.stream_arn, selector))
    assert end.dropped is None, f"response cut at {end.offset}: {end.detail}"
    return recording


EARLIEST = {"StartSelectorType": "EARLIEST"}


def event_selector(event: dict[str, Any] | None) -> dict[str, Any]:
    """Where a recorder starts reading for a contact-flow event: the contact's start timestamp."""
    assert event is not None
    audio = ConnectContactFlowEvent(event).contact_data.media_streams.customer.audio
    assert audio.start_timestamp is not None
    return {
        "StartSelectorType": "PRODUCER_TIMESTAMP",
        "StartTimestamp": int(audio.start_timestamp) / 1000,
    }


# --- tests ---------------------------------------------------------------------------------------------------


def test_a_call_read_live_from_its_event_is_its_ground_truth(kvs: KvsEmulator) -> None:
    # Given a contact-flow handler that records the contact live, as the recorder will
    recordings: list[Recording] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        contact_id = ConnectContactFlowEvent(event).contact_data.contact_id
        recording = Recording(gate=ContactGate(target=contact_id))
        audio = ConnectContactFlowEvent(event).contact_data.media_streams.customer.audio
        assert audio.stream_arn is not None
        recording.read(get_media(kvs, audio.stream_arn, event_selector(event)))
        recordings.append(recording)

    sim = ConnectSimulator(kvs, lambda_handler_adapter(handler))

    # When an 8 s call is played
    played = sim.play(CallScript(seconds=8.0, seed=21))
    played.wait()

    # Then the reader read every fragment of the call, once, and made the call of them
    assert played.handler_error is None
    [recording] = recordings
    assert recording.fragment_numbers == played.fragment_numbers
    truth = played.ground_truth()
    assert truth.duration_ms == 8000
    assert recording.finish() == truth
    assert recording.aligner.gaps_filled == recording.aligner.dropped_samples == 0


@pytest.mark.parametrize(
    "gap",
    [
        Gap(
            TRACK_TO_CUSTOMER, 1500, 2600
        ),  # the agent silent inside the call, over a fragment edge
        Gap(TRACK_TO_CUSTOMER, 1024, 3072),  # the agent absent from two whole fragments
        Gap(TRACK_FROM_CUSTOMER, 0, 700),  # the customer late: the agent's first block starts it
        Gap(TRACK_TO_CUSTOMER, 4000, 5000),  # the agent's last blocks never sent: padded at the end
    ],
    ids=["agent-mid", "agent-whole-fragments", "customer-late", "agent-early-end"],
)
def test_a_gap_in_one_track_is_silence_in_that_track_only(kvs: KvsEmulator, gap: Gap) -> None:
    # Given a 5 s call with the blocks of one track starting inside `gap` never sent
    played = ConnectSimulator(kvs).play(CallScript(seconds=5.0, seed=22, gaps=[gap]))
    played.wait()

    # When the stream is read
    recording = record(kvs, played, EARLIEST)

    # Then the reader's tracks are the truth's
    truth = played.ground_truth()
    got = recording.finish()
    assert got == truth
    assert truth.start_ms == played.call.start_ms
    assert truth.duration_ms == 5000
    # And silence fills exactly the unsent blocks (64 ms each) of that track; the other is whole
    first_unsent = -(-gap.start_ms // BLOCK_MS) * BLOCK_MS
    after_unsent = min(-(-gap.end_ms // BLOCK_MS) * BLOCK_MS, 5000)
    gapped, other = (
        (got.customer, got.agent) if gap.track == TRACK_FROM_CUSTOMER else (got.agent, got.customer)
    )
    silent = gapped[first_unsent * BYTES_PER_MS : after_unsent * BYTES_PER_MS]
    assert silent == bytes(len(silent))
    for audible in (
        gapped[: first_unsent * BYTES_PER_MS],
        gapped[after_unsent * BYTES_PER_MS :],
        other,
    ):
        assert NEVER_IN_SPEECH not in audible
    inside = first_unsent > 0 and after_unsent < 5000
    assert recording.aligner.gaps_filled == int(inside)


def test_a_second_contact_right_after_the_first_reads_as_its_own_audio(kvs: KvsEmulator) -> None:
    # Given two contacts back to back on one reused stream, the second tagged as Connect sometimes does
    sim = ConnectSimulator(kvs)
    first = sim.play(CallScript(seconds=2.5, seed=23))
    second = sim.play_after(
        first, CallScript(seconds=3.0, seed=24, tags_layout=TagsLayout.AFTER_ONLY)
    )
    second.wait()
    first.wait()
    assert second.stream_name == first.stream_name
    assert 0 <= second.call.start_ms - first.call.end_ms < 64

    # When the first is read from the start of the stream with no target (the first contact seen)
    first_from_start = Recording()
    first_from_start.read(get_media(kvs, first.stream_arn, EARLIEST))

    # Then its audio is exactly its own, ending where the second contact's first fragment starts
    assert first_from_start.gate.ended
    assert first_from_start.gate.target == first.contact_id
    assert first_from_start.fragment_numbers == [
        *first.fragment_numbers,
        second.fragment_numbers[0],
    ]
    assert first_from_start.finish() == first.ground_truth()

    # And each contact read from its own event, or from the stream's start, is its own audio
    for played in (first, second):
        from_event = record(kvs, played, event_selector(played.event))
        assert from_event.finish() == played.ground_truth()
    second_from_start = record(kvs, second, EARLIEST)
    assert second_from_start.fragment_numbers == first.fragment_numbers + second.fragment_numbers
    assert second_from_start.finish() == second.ground_truth()


def test_a_read_cut_by_the_connection_limit_resumes_from_its_continuation_token() -> None:
    # Given an emulator that cuts every GetMedia connection after 0.4 s (KVS: about 45 minutes)
    config = EmulatorConfig(
        speed=5, idle_timeout_seconds=IDLE_TIMEOUT_S, max_connection_seconds=0.4
    )
    with KvsEmulator(config) as kvs:
        # And a 30 s call (6 s at this speed) that a recorder starts reading live. A connection is
        # cut only while it waits for live media (fragments already stored are served at once), so
        # the call lasts long enough that a reader started seconds late on a loaded machine still
        # reads most of it live.
        sim = ConnectSimulator(kvs)
        played = sim.play(CallScript(seconds=30.0, seed=25, jitter_ms=8))
        assert played.feed.first_ingested.wait(10)
        selector: dict[str, Any] = {
            "StartSelectorType": "PRODUCER_TIMESTAMP",
            "StartTimestamp": played.call.start_ms / 1000,
        }

        # When each cut response is resumed, from a checkpoint, after the last complete fragment
        recording = Recording(gate=ContactGate(target=played.contact_id))
        cuts = 0
        while True:
            end = recording.read(get_media(kvs, played.stream_arn, selector))
            if end.dropped is None:
                break
            cuts += 1
            assert not end.clean
            # cut inside the fragment after the last complete one
            assert (
                end.dropped.fragment_number
                == played.fragment_numbers[len(recording.fragment_numbers)]
            )
            checkpoint = recording.checkpoint()
            recording = Recording.resumed(checkpoint, recording)
            assert checkpoint["continuation_token"] == recording.fragment_numbers[-1]
            selector = {
                "StartSelectorType": "CONTINUATION_TOKEN",
                "ContinuationToken": checkpoint["continuation_token"],
            }
        played.wait()

        # Then the connection was cut mid-fragment several times
        assert cuts >= 2
        assert kvs.stats(played.stream_name).responses_cut == cuts
        # And every fragment was read exactly once, in order, and the result is the call itself
        assert recording.fragment_numbers == played.fragment_numbers
        resumed = recording.finish()
        assert resumed == played.ground_truth()
        # And it is identical to the same stream read in one response, once the limit is lifted
        kvs.config = dataclasses.replace(kvs.config, max_connection_seconds=None)
        assert record(kvs, played, EARLIEST).finish() == resumed
