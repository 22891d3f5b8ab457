"""Connect call simulator: plays calls into the KVS emulator as Amazon Connect would.

Dev-only. For each call it takes a Kinesis video stream from a pool (streams are reused by later
contacts, as Connect does), streams both tracks live through the emulator's feed at the emulator's
speed, and, once the contact's first fragment is in the stream, invokes the contact-flow handler it was
given with the event Connect sends (`Details.ContactData.MediaStreams.Customer.Audio.StreamARN`,
`StartFragmentNumber` = the contact's first fragment, `StartTimestamp`). It knows each call's ground
truth (the aligned audio a correct recorder must produce).

It does not wire Lambda, Kinesis or S3: the handler is any callable taking the event (see
`lambda_handler_adapter` for a `(event, context)` Lambda handler); the local stack decides what it does.
"""

from __future__ import annotations

import math
import random
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callrec_local.kvs_emulator import ACCOUNT, REGION, Feed, KvsEmulator
from callrec_local.producer import (
    BLOCK_MS,
    BLOCKS_PER_TRACK_PER_FRAGMENT,
    ConnectCall,
    FragmentSpec,
    Gap,
    GroundTruth,
    TagsLayout,
    TrackOrder,
    read_wav_pcm,
    speech_like,
)

ContactFlowHandler = Callable[[dict[str, Any]], Any]
# The Invoke AWS Lambda function block as the README configures it: Timeout 8 s, passed on.
README_FLOW_PARAMETERS = {"InvocationTimeLimitSeconds": "8"}
AudioSource = bytes | str | Path | None
DEFAULT_INSTANCE_ID = "9308c2a1-9bc6-4cea-8290-6c0b4a6d38fa"


def lambda_handler_adapter(
    handler: Callable[[dict[str, Any], Any], Any], context: Any = None
) -> ContactFlowHandler:
    """Adapt a Lambda-style `handler(event, context)` to the simulator's `handler(event)`."""
    return lambda event: handler(event, context)


@dataclass(frozen=True)
class CallScript:
    """What happens in one call.

    `customer`/`agent`: int16 LE 8 kHz mono PCM bytes, a WAV file path, or None for a generated
    speech-like voice (deterministic from `seed`), `seconds` long. `hangup_ms` ends the call there
    (relative to its start), mid-fragment or mid-block. `invoke_after_ms`: when the flow reaches the
    Lambda block (media time after the call start; never before the first fragment is in the stream).
    `parameters`: the block's function input parameters; by default those of the flow the README
    describes, which passes the block's 8-second timeout (without it the function assumes
    Connect's default of 3 s: callrec.flow_block). The rest are the producer's test-case options
    (see `ConnectCall`).
    """

    seconds: float = 10.0
    seed: int = 0
    customer: AudioSource = None
    agent: AudioSource = None
    contact_id: str | None = None
    initial_contact_id: str | None = None
    parameters: dict[str, str] = field(default_factory=lambda: dict(README_FLOW_PARAMETERS))
    attributes: dict[str, str] = field(default_factory=dict)
    hangup_ms: int | None = None
    invoke_after_ms: int = 0
    gaps: Sequence[Gap] = ()
    duplicate_fragments: frozenset[int] = frozenset()
    jitter_ms: int = 0
    track_order: TrackOrder = TrackOrder.TO_CUSTOMER_FIRST
    tags_layout: TagsLayout = TagsLayout.BOTH
    crc32: bool = False
    void: bool = False


@dataclass
class PlayedCall:
    """A call being (or having been) played: its stream, event, handler outcome and ground truth."""

    contact_id: str
    stream_name: str
    stream_arn: str
    call: ConnectCall
    feed: Feed
    script: CallScript
    event: dict[str, Any] | None = None
    handler_result: Any = None
    handler_error: BaseException | None = None
    handler_done: threading.Event = field(default_factory=threading.Event)

    @property
    def start_fragment_number(self) -> str | None:
        first = self.feed.first_fragment
        return first.fragment_number if first else None

    @property
    def fragment_numbers(self) -> list[str]:
        return [f.fragment_number for f in self.feed.ingested]

    def hang_up(self) -> None:
        """Hang up now: no further fragment reaches the stream (the ground truth follows)."""
        self.feed.stop()

    def wait(self, timeout: float | None = 60.0) -> None:
        """Wait until the call has ended and the handler has returned; re-raise a feed error."""
        if not self.feed.wait(timeout):
            raise TimeoutError(f"call {self.contact_id} still streaming after {timeout} s")
        if not self.handler_done.wait(timeout):
            raise TimeoutError(f"contact-flow handler for {self.contact_id} still running")

    def ground_truth(self) -> GroundTruth:
        """The aligned customer/agent audio of this contact as far as it reached the stream."""
        if not self.feed.done:
            raise RuntimeError(f"call {self.contact_id} is still playing: wait() first")
        fragment_ms = self.call.block_ms * self.call.blocks_per_fragment
        ingested = {
            round((f.producer_timestamp_ms - self.call.start_ms) / fragment_ms)
            for f in self.feed.ingested
        }
        if len(ingested) >= self.call.fragment_count:
            return self.call.ground_truth()
        if not ingested:
            return GroundTruth(start_ms=self.call.start_ms, customer=b"", agent=b"")
        # Hung up live: the call ends with the last whole fragment that reached the stream.
        return self.call.with_options(hangup_ms=(max(ingested) + 1) * fragment_ms).ground_truth()


class ConnectSimulator:
    """Plays calls as Amazon Connect would, into a `KvsEmulator`, through a pool of reused streams.

    `handler` is invoked (in its own thread, as the contact flow runs beside the audio) with the
    contact-flow event of each call; None plays calls without invoking anything.
    """

    def __init__(
        self,
        emulator: KvsEmulator,
        handler: ContactFlowHandler | None = None,
        *,
        instance_id: str = DEFAULT_INSTANCE_ID,
        stream_prefix: str = "callrec",
        instance_alias: str = "demo",
        retention_hours: int = 24,
        seed: int | None = None,
    ) -> None:
        self.emulator = emulator
        self.handler = handler
        self.instance_id = instance_id
        self.stream_prefix = stream_prefix
        self.instance_alias = instance_alias
        self.retention_hours = retention_hours
        self.calls: list[PlayedCall] = []
        # Contact ids: reproducible with a seed, else unique (several simulators may share an emulator).
        self._rng = random.Random(uuid.uuid4().int if seed is None else seed)  # noqa: S311 (test ids)
        self._lock = threading.RLock()  # held while a stream is picked and taken
        self._pool: dict[str, PlayedCall | None] = {}  # stream name -> last call on it

    @property
    def instance_arn(self) -> str:
        return f"arn:aws:connect:{REGION}:{ACCOUNT}:instance/{self.instance_id}"

    @property
    def streams(self) -> list[str]:
        with self._lock:
            return list(self._pool)

    def _new_contact_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _take_stream(self, contact_id: str) -> str:
        """A free stream of the pool (one whose last call ended), or a new one named after the contact."""
        with self._lock:
            for name, last in self._pool.items():
                if last is None or last.feed.done:
                    return name
            name = f"{self.stream_prefix}-connect-{self.instance_alias}-contact-{contact_id}"
            self._pool[name] = None
        self.emulator.create_stream(name, retention_hours=self.retention_hours)
        return name

    def _sources(self, script: CallScript) -> tuple[bytes, bytes]:
        def load(source: AudioSource, seed: int, pitch: float) -> bytes:
            if source is None:
                return speech_like(script.seconds, seed, pitch_hz=pitch)
            if isinstance(source, bytes):
                return source
            return read_wav_pcm(source)

        return (
            load(script.customer, script.seed * 2 + 1, 210.0),
            load(script.agent, script.seed * 2 + 2, 115.0),
        )

    def play(
        self,
        script: CallScript | None = None,
        *,
        stream_name: str | None = None,
        start_ms: int | None = None,
    ) -> PlayedCall:
        """Start a call now (live, at the emulator's speed) and return at once.

        `stream_name` forces a stream (it must be in the pool); by default a free pooled stream is
        reused, or a new one created.
        """
        script = script or CallScript()
        with self._lock:
            contact_id = script.contact_id or self._new_contact_id()
            name = stream_name or self._take_stream(contact_id)
            return self._play(script, contact_id, name, start_ms, after=None)

    def play_after(
        self, previous: PlayedCall, script: CallScript | None = None, gap_ms: int = 0
    ) -> PlayedCall:
        """A second contact on the same stream, starting `gap_ms` after `previous` ends."""
        script = script or CallScript()
        contact_id = script.contact_id or self._new_contact_id()
        start = previous.call.end_ms + gap_ms
        # Start on a block grid boundary after the previous call's last (possibly short) block.
        start = (
            previous.call.start_ms
            + math.ceil((start - previous.call.start_ms) / BLOCK_MS) * BLOCK_MS
        )
        return self._play(script, contact_id, previous.stream_name, start, after=previous)

    def _play(
        self,
        script: CallScript,
        contact_id: str,
        stream_name: str,
        start_ms: int | None,
        after: PlayedCall | None,
    ) -> PlayedCall:
        customer, agent = self._sources(script)
        call = ConnectCall(
            contact_id=contact_id,
            instance_id=self.instance_id,
            start_ms=self.emulator.clock.now_ms() if start_ms is None else start_ms,
            customer=customer,
            agent=agent,
            blocks_per_fragment=BLOCKS_PER_TRACK_PER_FRAGMENT,
            track_order=script.track_order,
            tags_layout=script.tags_layout,
            crc32=script.crc32,
            void=script.void,
            gaps=script.gaps,
            duplicate_fragments=script.duplicate_fragments,
            jitter_ms=script.jitter_ms,
            jitter_seed=script.seed,
            hangup_ms=script.hangup_ms,
        )

        def fragments() -> Iterator[FragmentSpec]:
            if after is not None:
                after.feed.wait()
            yield from call.fragments()

        stream_arn = self.emulator.stream(stream_name).arn
        feed = self.emulator.feed(stream_name, fragments())
        played = PlayedCall(
            contact_id=contact_id,
            stream_name=stream_name,
            stream_arn=stream_arn,
            call=call,
            feed=feed,
            script=script,
        )
        with self._lock:
            self._pool[stream_name] = played
            self.calls.append(played)
        threading.Thread(
            target=self._run_flow, args=(played,), name=f"contact-flow-{contact_id}", daemon=True
        ).start()
        return played

    def contact_flow_event(self, played: PlayedCall) -> dict[str, Any]:
        """The event Connect's "Invoke AWS Lambda function" block sends once media streaming started."""
        first = played.feed.first_fragment
        if first is None:
            raise RuntimeError(f"no fragment of contact {played.contact_id} in the stream yet")
        script = played.script
        return {
            "Name": "ContactFlowEvent",
            "Details": {
                "ContactData": {
                    "Attributes": dict(script.attributes),
                    "Channel": "VOICE",
                    "ContactId": played.contact_id,
                    "CustomerEndpoint": {"Address": "+11234567890", "Type": "TELEPHONE_NUMBER"},
                    "InitialContactId": script.initial_contact_id or played.contact_id,
                    "InitiationMethod": "INBOUND",
                    "InstanceARN": self.instance_arn,
                    "MediaStreams": {
                        "Customer": {
                            "Audio": {
                                "StartFragmentNumber": first.fragment_number,
                                "StartTimestamp": str(first.producer_timestamp_ms),
                                "StreamARN": played.stream_arn,
                            }
                        }
                    },
                    "PreviousContactId": script.initial_contact_id or played.contact_id,
                    "Queue": None,
                    "SystemEndpoint": {"Address": "+18005550100", "Type": "TELEPHONE_NUMBER"},
                },
                "Parameters": dict(script.parameters),
            },
        }

    def _run_flow(self, played: PlayedCall) -> None:
        try:
            played.feed.first_ingested.wait()
            if played.feed.first_fragment is None:
                return  # hung up before any audio reached the stream: no media, no Lambda
            at_ms = played.call.start_ms + played.script.invoke_after_ms
            delay = self.emulator.clock.wall_seconds_until(at_ms)
            if delay:
                threading.Event().wait(delay)
            played.event = self.contact_flow_event(played)
            if self.handler is not None:
                played.handler_result = self.handler(played.event)
        except BaseException as exc:  # reported through the PlayedCall
            played.handler_error = exc
        finally:
            played.handler_done.set()

    def wait_all(self, timeout: float | None = 60.0) -> None:
        for played in list(self.calls):
            played.wait(timeout)
