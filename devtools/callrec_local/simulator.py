"""Connect call simulator: plays calls into the KVS emulator as Amazon Connect would.

Dev-only. For each call it takes a Kinesis video stream from a pool (streams are reused by later
contacts, as Connect does), streams both tracks live through the emulator's feed at the emulator's
speed, and, once the contact's first fragment is in the stream, invokes the contact-flow handler it was
given with the event Connect sends (`Details.ContactData.MediaStreams.Customer.Audio.StreamARN`,
`StartFragmentNumber` = the contact's first fragment, `StartTimestamp`). It knows each call's ground
truth (the aligned audio a correct recorder must produce).

It does not wire Lambda, Kinesis or S3: the handler is any callable taking the event (see
`lambda_handler_adapter` for a `(event, context)` Lambda handler); the local stack decides what it does.

Contacts as Connect runs them (docs/connect-contacts.md): a call may stop and restart media
streaming (`Pause`, on the same stream or another), the flow may invoke the function once or after
every start (`InvokeMode`), and a transfer (`Transfer`) makes a new contact whose fragments carry
the new ContactId or keep the original one (`TagBehaviour`), the new leg invoking the function in
its whisper flow. Given a `ConnectEmulator`, the simulator tells it every contact's life: it then
answers DescribeContact and publishes the contact events (DISCONNECTED at each transfer and at the
hang-up). Ground truth is per contact: `PlayedCall.ground_truth(contact_id)`.
"""

from __future__ import annotations

import enum
import math
import random
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callrec_local.connect_emulator import LOCAL_INSTANCE_ID, ConnectEmulator
from callrec_local.kvs_emulator import ACCOUNT, REGION, Feed, KvsEmulator, StoredFragment
from callrec_local.producer import (
    BLOCK_MS,
    BLOCKS_PER_TRACK_PER_FRAGMENT,
    ConnectCall,
    FragmentSpec,
    Gap,
    GroundTruth,
    Pause,
    TagsLayout,
    TrackOrder,
    read_wav_pcm,
    speech_like,
    truth_of,
)

ContactFlowHandler = Callable[[dict[str, Any]], Any]
# The Invoke AWS Lambda function block as the README configures it: Timeout 8 s, passed on.
README_FLOW_PARAMETERS = {"InvocationTimeLimitSeconds": "8"}
AudioSource = bytes | str | Path | None
DEFAULT_INSTANCE_ID = LOCAL_INSTANCE_ID


class InvokeMode(enum.Enum):
    """When the flow invokes the function: after the first Start media streaming block only, or
    after every one (a flow that restarts streaming and invokes the function again)."""

    ONCE = "once"
    EVERY_START = "every-start"


class TagBehaviour(enum.Enum):
    """The fragments' ContactId after a transfer (undocumented: both are played)."""

    SWITCH = "switch"  # the new contact's id, from the transfer on
    KEEP = "keep"  # the original contact's id for the rest of the call


class TransferAttributes(enum.Enum):
    """What the new leg's flow gets as MediaStreams attributes (undocumented: both are played)."""

    NEW = "new"  # the first fragment after the transfer
    ORIGINAL = "original"  # the original contact's first segment, copied


@dataclass(frozen=True)
class Transfer:
    """A transfer `at_ms` after the call's start: the contact ends, a new one begins (same
    InitialContactId, PreviousContactId the one before); streaming goes on, on the same stream."""

    at_ms: int
    tags: TagBehaviour = TagBehaviour.SWITCH
    contact_id: str | None = None
    # The new leg's whisper flow invokes the function (as the original sample's flow does).
    invoke: bool = True
    attributes: TransferAttributes = TransferAttributes.NEW


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
    pauses: Sequence[Pause] = ()
    invoke: InvokeMode = InvokeMode.ONCE
    # The flow also invokes the function right after each Stop media streaming block (its
    # event then carries StopFragmentNumber and StopTimestamp).
    invoke_after_stop: bool = False
    transfers: Sequence[Transfer] = ()
    # Every invocation is sent this many more times (Connect retrying, a flow loop).
    duplicate_invocations: int = 0
    # Connect's StartTimestamp is the first fragment's producer timestamp plus this: Connect's
    # clock and the producer timestamps of the fragments need not agree.
    start_timestamp_skew_ms: int = 0


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
    # Every contact of the call (the first, then one per transfer), every stream used (name,
    # ARN; one feed each), every invocation event and its result or error, in order.
    contacts: list[str] = field(default_factory=list)
    streams: list[tuple[str, str]] = field(default_factory=list)
    feeds: list[Feed] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    disconnected_ms: int | None = None
    hung_up: threading.Event = field(default_factory=threading.Event)
    # The specs yielded to each feed, in order (the feed ingests them in the same order).
    _yielded: list[list[FragmentSpec]] = field(default_factory=list, repr=False)

    def ingested_specs(self) -> list[FragmentSpec]:
        """The fragments that reached the streams (all feeds), in time order."""
        specs = [
            spec
            for feed, yielded in zip(self.feeds, self._yielded, strict=True)
            for spec in yielded[: len(feed.ingested)]
        ]
        return sorted(specs, key=lambda spec: spec.timecode_ms)

    @property
    def start_fragment_number(self) -> str | None:
        first = self.feed.first_fragment
        return first.fragment_number if first else None

    @property
    def fragment_numbers(self) -> list[str]:
        return [f.fragment_number for f in self.feed.ingested]

    def hang_up(self) -> None:
        """Hang up now: no further fragment reaches the stream (the ground truth follows)."""
        self.hung_up.set()
        for feed in self.feeds or [self.feed]:
            feed.stop()

    def wait(self, timeout: float | None = 60.0) -> None:
        """Wait until the call has ended and the handler has returned; re-raise a feed error."""
        for feed in self.feeds or [self.feed]:
            if not feed.wait(timeout):
                raise TimeoutError(f"call {self.contact_id} still streaming after {timeout} s")
        if not self.handler_done.wait(timeout):
            raise TimeoutError(f"contact-flow handler for {self.contact_id} still running")

    def ground_truth(self, contact_id: str | None = None) -> GroundTruth:
        """The aligned customer/agent audio of a contact of the call (the first by default) as
        far as it reached the streams: pauses as silence of their true length; a contact whose
        audio carries another ContactId (a transfer keeping the original's) has none."""
        if not all(feed.done for feed in self.feeds or [self.feed]):
            raise RuntimeError(f"call {self.contact_id} is still playing: wait() first")
        if self.call.streamed or (contact_id is not None and contact_id != self.contact_id):
            wanted = contact_id or self.contact_id
            return truth_of(s for s in self.ingested_specs() if s.contact_id == wanted)
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


def flow_event(
    *,
    contact_id: str,
    instance_arn: str,
    audio: Mapping[str, str],
    initial_contact_id: str | None = None,
    previous_contact_id: str | None = None,
    transferred: bool = False,
    attributes: Mapping[str, str] | None = None,
    parameters: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The event Connect's "Invoke AWS Lambda function" block sends (`audio` is
    `MediaStreams.Customer.Audio`: StreamARN, StartFragmentNumber, StartTimestamp)."""
    return {
        "Name": "ContactFlowEvent",
        "Details": {
            "ContactData": {
                "Attributes": dict(attributes or {}),
                "Channel": "VOICE",
                "ContactId": contact_id,
                "CustomerEndpoint": {"Address": "+11234567890", "Type": "TELEPHONE_NUMBER"},
                "InitialContactId": initial_contact_id or contact_id,
                "InitiationMethod": "TRANSFER" if transferred else "INBOUND",
                "InstanceARN": instance_arn,
                "MediaStreams": {"Customer": {"Audio": dict(audio)}},
                "PreviousContactId": previous_contact_id or contact_id,
                "Queue": None,
                "SystemEndpoint": {"Address": "+18005550100", "Type": "TELEPHONE_NUMBER"},
            },
            "Parameters": dict(parameters or {}),
        },
    }


class ConnectSimulator:
    """Plays calls as Amazon Connect would, into a `KvsEmulator`, through a pool of reused streams.

    `handler` is invoked (in its own thread, as the contact flow runs beside the audio) with the
    contact-flow event of each call; None plays calls without invoking anything. `connect`, if
    given, is told each contact's life (DescribeContact, contact events).
    """

    def __init__(
        self,
        emulator: KvsEmulator,
        handler: ContactFlowHandler | None = None,
        *,
        connect: ConnectEmulator | None = None,
        instance_id: str = DEFAULT_INSTANCE_ID,
        stream_prefix: str = "callrec",
        instance_alias: str = "demo",
        retention_hours: int = 24,
        seed: int | None = None,
    ) -> None:
        self.emulator = emulator
        self.handler = handler
        self.connect = connect
        self.instance_id = instance_id
        self.stream_prefix = stream_prefix
        self.instance_alias = instance_alias
        self.retention_hours = retention_hours
        self.calls: list[PlayedCall] = []
        # Contact ids: reproducible with a seed, else unique (several simulators may share an emulator).
        self._rng = random.Random(uuid.uuid4().int if seed is None else seed)  # noqa: S311 (test ids)
        self._lock = threading.RLock()  # held while a stream is picked and taken
        self._pool: dict[str, PlayedCall | None] = {}  # stream name -> last call on it
        self._taken: set[str] = set()  # streams picked for a call being set up

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
                if name not in self._taken and (
                    last is None or all(f.done for f in last.feeds or [last.feed])
                ):
                    self._taken.add(name)
                    return name
            name = f"{self.stream_prefix}-connect-{self.instance_alias}-contact-{contact_id}"
            self._pool[name] = None
            self._taken.add(name)
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
        transfers = sorted(script.transfers, key=lambda t: t.at_ms)
        contacts = [contact_id] + [t.contact_id or self._new_contact_id() for t in transfers]
        switches = [
            (t.at_ms, contacts[n + 1])
            for n, t in enumerate(transfers)
            if t.tags is TagBehaviour.SWITCH
        ]
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
            pauses=script.pauses,
            contact_switches=switches,
        )
        by_span = call.fragments_by_span()
        stream_count = 1 + max((span.stream for span in call.spans()), default=0)
        with self._lock:
            names = [stream_name] + [
                self._take_stream(f"{contact_id}-{n}") for n in range(1, stream_count)
            ]
        spans = call.spans() if call.streamed else []
        per_stream: list[list[FragmentSpec]] = [[] for _ in names]
        for index, specs in enumerate(by_span):
            per_stream[spans[index].stream if spans else 0].extend(specs)
        yielded: list[list[FragmentSpec]] = [[] for _ in names]

        def fragments(n: int) -> Iterator[FragmentSpec]:
            if after is not None and n == 0:
                for feed in after.feeds or [after.feed]:
                    feed.wait()
            for spec in per_stream[n]:
                yielded[n].append(spec)
                yield spec

        feeds = [self.emulator.feed(name, fragments(n)) for n, name in enumerate(names)]
        played = PlayedCall(
            contact_id=contact_id,
            stream_name=stream_name,
            stream_arn=self.emulator.stream(stream_name).arn,
            call=call,
            feed=feeds[0],
            script=script,
            contacts=contacts,
            streams=[(name, self.emulator.stream(name).arn) for name in names],
            feeds=feeds,
            _yielded=yielded,
        )
        with self._lock:
            for name in names:
                self._pool[name] = played
                self._taken.discard(name)
            self.calls.append(played)
        if self.connect is not None:
            self.connect.begin(contact_id, call.start_ms)
        threading.Thread(
            target=self._run_flow, args=(played,), name=f"contact-flow-{contact_id}", daemon=True
        ).start()
        return played

    def contact_flow_event(
        self,
        played: PlayedCall,
        *,
        contact_id: str | None = None,
        stream: int = 0,
        start: StoredFragment | None = None,
        stop: StoredFragment | None = None,
    ) -> dict[str, Any]:
        """The event Connect's "Invoke AWS Lambda function" block sends once media streaming
        started: by default the call's first contact and the first fragment of its stream."""
        first = start or played.feed.first_fragment
        if first is None:
            raise RuntimeError(f"no fragment of contact {played.contact_id} in the stream yet")
        script = played.script
        contact = contact_id or played.contact_id
        position = played.contacts.index(contact) if contact in played.contacts else 0
        previous = played.contacts[position - 1] if position else contact
        audio: dict[str, str] = {
            "StartFragmentNumber": first.fragment_number,
            "StartTimestamp": str(first.producer_timestamp_ms + script.start_timestamp_skew_ms),
            "StreamARN": played.streams[stream][1] if played.streams else played.stream_arn,
        }
        if stop is not None:
            audio["StopFragmentNumber"] = stop.fragment_number
            audio["StopTimestamp"] = str(stop.producer_timestamp_ms + stop.duration_ms)
        return flow_event(
            contact_id=contact,
            instance_arn=self.instance_arn,
            audio=audio,
            initial_contact_id=script.initial_contact_id or played.contact_id,
            previous_contact_id=previous
            if position
            else script.initial_contact_id or played.contact_id,
            transferred=bool(position),
            attributes=script.attributes,
            parameters=script.parameters,
        )

    def _invoke(self, played: PlayedCall, event: dict[str, Any]) -> None:
        for _ in range(1 + played.script.duplicate_invocations):
            played.events.append(event)
            if played.event is None:
                played.event = event
            if self.handler is None:
                continue
            try:
                result = self.handler(event)
            except Exception as exc:  # reported through the PlayedCall, as the flow's Error branch
                played.errors.append(exc)
                if played.handler_error is None:
                    played.handler_error = exc
                continue
            played.results.append(result)
            if len(played.results) == 1:
                played.handler_result = result

    def _wait_until(self, played: PlayedCall, media_ms: int) -> bool:
        """Wait for the media clock to reach `media_ms`; False if the call was hung up."""
        while not played.hung_up.is_set():
            delay = self.emulator.clock.wall_seconds_until(media_ms)
            if not delay:
                return True
            played.hung_up.wait(min(delay, 0.5))
        return False

    def _first_at(self, played: PlayedCall, stream: int, media_ms: int) -> StoredFragment | None:
        """The first fragment of a stream at or after `media_ms`, once ingested (None if the
        stream ends first)."""
        feed = played.feeds[stream]
        while True:
            for fragment in list(feed.ingested):
                if fragment.producer_timestamp_ms >= media_ms:
                    return fragment
            if feed.done:
                return None
            played.hung_up.wait(0.02)

    def _run_flow(self, played: PlayedCall) -> None:
        """The contact flow beside the audio (see `_Flow`)."""
        try:
            _Flow(self, played).run()
        except Exception as exc:  # reported through the PlayedCall
            played.errors.append(exc)
            played.handler_error = played.handler_error or exc
        finally:
            played.handler_done.set()

    def wait_all(self, timeout: float | None = 60.0) -> None:
        for played in list(self.calls):
            played.wait(timeout)


class _Flow:
    """One call's contact flow beside its audio: the invocations at the starts (and stops and
    transfers, as the script says), Connect's records of each contact, the disconnect at the end."""

    def __init__(self, simulator: ConnectSimulator, played: PlayedCall) -> None:
        self.sim = simulator
        self.played = played
        self.call = played.call
        self.script = played.script
        self.connect = simulator.connect
        self.spans = self.call.spans() if self.call.streamed else []
        self.transfers = sorted(self.script.transfers, key=lambda t: t.at_ms)
        self.current = played.contact_id
        self.segment_first: dict[int, StoredFragment] = {}
        # How many fragments each stream's feed carries up to the end of each span.
        self.ingested_after: dict[int, int] = {}
        counts: dict[int, int] = {}
        for index, specs in enumerate(self.call.fragments_by_span() if self.spans else []):
            stream = self.spans[index].stream
            counts[stream] = counts.get(stream, 0) + len(specs)
            self.ingested_after[index] = counts[stream]

    def run(self) -> None:
        self.first_start()
        for offset, kind, index in self.moments():
            if not self.sim._wait_until(self.played, self.call.start_ms + offset):
                break
            {"stop": self.stop, "restart": self.restart, "transfer": self.transfer}[kind](
                offset, index
            )
        self.end()

    def moments(self) -> list[tuple[int, str, int]]:
        """(ms after the start, what, which), in time order; a stop before a restart."""
        moments: list[tuple[int, str, int]] = []
        for index, span in enumerate(self.spans):
            if index:
                moments.append((span.start_ms, "restart", index))
            if index + 1 < len(self.spans) or span.end_ms < self.call.duration_ms:
                moments.append((span.end_ms, "stop", index))
        moments += [(t.at_ms, "transfer", n) for n, t in enumerate(self.transfers)]
        return sorted(moments, key=lambda m: (m[0], m[1] != "stop"))

    def first_start(self) -> None:
        played, call = self.played, self.call
        played.feed.first_ingested.wait()
        first = played.feed.first_fragment
        if first is None:
            return  # hung up before any audio reached the stream: no media, no Lambda
        self.segment_first[0] = first
        if self.connect is not None:
            self.connect.stream_started(
                played.contact_id, played.streams[0][1], first.fragment_number, call.start_ms
            )
        delay = self.sim.emulator.clock.wall_seconds_until(
            call.start_ms + self.script.invoke_after_ms
        )
        if delay:
            threading.Event().wait(delay)
        self.sim._invoke(played, self.sim.contact_flow_event(played))

    def stop(self, offset: int, index: int) -> None:
        stream = self.spans[index].stream
        at_ms = self.call.start_ms + offset
        # The span's last fragment is ingested when the clock reaches its end: wait for it.
        feed = self.played.feeds[stream]
        while len(feed.ingested) < self.ingested_after[index] and not feed.done:
            self.played.hung_up.wait(0.02)
        ingested = feed.ingested[: self.ingested_after[index]]
        last = ingested[-1] if ingested else None
        if self.connect is not None:
            self.connect.stream_stopped(self.current, last.fragment_number if last else None, at_ms)
        if self.script.invoke_after_stop and index in self.segment_first:
            event = self.sim.contact_flow_event(
                self.played,
                contact_id=self.current,
                stream=stream,
                start=self.segment_first[index],
                stop=last,
            )
            self.sim._invoke(self.played, event)

    def restart(self, offset: int, index: int) -> None:
        stream = self.spans[index].stream
        at_ms = self.call.start_ms + offset
        fragment = self.sim._first_at(self.played, stream, at_ms)
        if fragment is None:
            return
        self.segment_first[index] = fragment
        if self.connect is not None:
            self.connect.stream_started(
                self.current, self.played.streams[stream][1], fragment.fragment_number, at_ms
            )
        if self.script.invoke is InvokeMode.EVERY_START:
            event = self.sim.contact_flow_event(
                self.played, contact_id=self.current, stream=stream, start=fragment
            )
            self.sim._invoke(self.played, event)

    def transfer(self, offset: int, index: int) -> None:
        transfer = self.transfers[index]
        new = self.played.contacts[index + 1]
        at_ms = self.call.start_ms + offset
        if self.connect is not None:
            self.connect.transfer(self.current, new, at_ms)
        self.current = new
        if not transfer.invoke:
            return
        if transfer.attributes is TransferAttributes.ORIGINAL:
            start, stream = self.segment_first.get(0), 0
        else:
            stream = 0
            for span in self.spans:
                if span.start_ms <= offset:
                    stream = span.stream
            start = self.sim._first_at(self.played, stream, at_ms)
        if start is not None:
            event = self.sim.contact_flow_event(
                self.played, contact_id=new, stream=stream, start=start
            )
            self.sim._invoke(self.played, event)

    def end(self) -> None:
        """The call's last contact disconnects at the hang-up (or the end of its audio)."""
        played = self.played
        end_ms = self.call.start_ms + self.call.duration_ms
        for feed in played.feeds:
            while not feed.done:
                played.hung_up.wait(0.05)
        if played.hung_up.is_set():
            end_ms = min(end_ms, self.sim.emulator.clock.now_ms())
        else:
            self.sim._wait_until(played, end_ms)
        played.disconnected_ms = end_ms
        if self.connect is not None:
            self.connect.disconnect(self.current, end_ms)
