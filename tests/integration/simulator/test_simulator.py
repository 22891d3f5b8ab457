"""The Connect call simulator end to end through the KVS emulator and real boto3 clients.

Streams are read back with GetMedia and checked against each call's ground truth with an independent
EBML walk (ebmlite) and the alignment rules of issue 3, never with the project's reader.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import ebmlite  # type: ignore[import-untyped]
import pytest
from aws_lambda_powertools.utilities.data_classes import ConnectContactFlowEvent
from botocore.config import Config

from callrec_local.kvs_emulator import EmulatorConfig, KvsEmulator
from callrec_local.producer import (
    TRACK_FROM_CUSTOMER,
    TRACK_TO_CUSTOMER,
    Gap,
    GroundTruth,
    TagsLayout,
    TrackOrder,
    speech_like,
    write_wav_pcm,
)
from callrec_local.simulator import CallScript, ConnectSimulator, PlayedCall, lambda_handler_adapter

SCHEMA = ebmlite.loadSchema("matroska.xml")
Block = tuple[str, int, bytes]


# --- independent reading ---------------------------------------------------------------------------------


def contact_blocks(body: bytes) -> dict[str, list[Block]]:
    """contact id -> (track name, absolute ms, pcm) of every block, per ebmlite, tracks by Name."""
    out: dict[str, list[Block]] = {}
    for segment in SCHEMA.loads(body):
        if segment.name != "Segment":
            continue
        names: dict[int, str] = {}
        contact = None
        blocks: list[Block] = []
        for el in segment:
            if el.name == "Tracks":
                for entry in el:
                    if entry.name != "TrackEntry":
                        continue
                    fields = {c.name: c.value for c in entry}
                    names[fields["TrackNumber"]] = fields["Name"]
            elif el.name == "Tags":
                for tag in el:
                    for simple in tag if tag.name == "Tag" else []:
                        fields = {c.name: c.value for c in simple}
                        if fields["TagName"] == "ContactId":
                            contact = fields["TagString"]
            elif el.name == "Cluster":
                timecode = next(c.value for c in el if c.name == "Timecode")
                for b in el:
                    if b.name == "SimpleBlock":
                        raw = bytes(b.value)
                        (relative,) = struct.unpack(">h", raw[1:3])
                        blocks.append((names[raw[0] & 0x7F], timecode + relative, raw[4:]))
        assert contact is not None
        out.setdefault(contact, []).extend(blocks)
    return out


def align(blocks: list[Block]) -> GroundTruth:
    """Issue 3 section 3's rules: start at the earliest block; append within 20 ms; fill gaps with
    silence; drop overlaps; pad both tracks to the same length."""
    start = min(ts for _, ts, _ in blocks)
    out = {TRACK_FROM_CUSTOMER: bytearray(), TRACK_TO_CUSTOMER: bytearray()}
    for track, ts, pcm in blocks:
        buf = out[track]
        position, end = (ts - start) * 16, len(buf)
        if abs(position - end) <= 20 * 16:
            buf += pcm
        elif position > end:
            buf += bytes(position - end) + pcm
        else:
            buf += pcm[end - position :]
    n = max(len(b) for b in out.values())
    return GroundTruth(
        start_ms=start,
        customer=bytes(out[TRACK_FROM_CUSTOMER].ljust(n, b"\0")),
        agent=bytes(out[TRACK_TO_CUSTOMER].ljust(n, b"\0")),
    )


# --- fixtures -------------------------------------------------------------------------------------------------


@pytest.fixture
def kvs() -> Iterator[KvsEmulator]:
    with KvsEmulator(EmulatorConfig(speed=40, idle_timeout_seconds=0.6)) as emulator:
        yield emulator


def media_client(endpoint: str) -> Any:
    return boto3.client(
        "kinesis-video-media",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def read_stream(kvs: KvsEmulator, arn: str, selector: dict[str, Any]) -> bytes:
    body: bytes = (
        media_client(kvs.endpoint_url)
        .get_media(StreamARN=arn, StartSelector=selector)["Payload"]
        .read()
    )
    return body


def truth_of(played: PlayedCall, body: bytes) -> GroundTruth:
    return align(contact_blocks(body)[played.contact_id])


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


# --- tests ---------------------------------------------------------------------------------------------------


def test_handler_gets_connects_event_and_can_record_the_live_call_exactly(kvs: KvsEmulator) -> None:
    # Given a contact-flow handler that, like the recorder, reads the stream from the event
    recorded: dict[str, bytes] = {}

    def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
        audio = ConnectContactFlowEvent(event).contact_data.media_streams.customer.audio
        assert audio.stream_arn
        assert audio.start_timestamp
        recorded["body"] = read_stream(
            kvs,
            audio.stream_arn,
            {
                "StartSelectorType": "PRODUCER_TIMESTAMP",
                "StartTimestamp": int(audio.start_timestamp) / 1000,
            },
        )
        return {"status": "started"}

    sim = ConnectSimulator(kvs, lambda_handler_adapter(handler))
    # When a 12 s call is played live
    played = sim.play(CallScript(seconds=12.0, seed=1, parameters={"campaign": "support-line"}))
    played.wait()
    # Then the event is Connect's, naming the contact's first fragment
    assert played.handler_error is None
    assert played.handler_result == {"status": "started"}
    event = played.event
    assert event is not None
    data = event["Details"]["ContactData"]
    assert (data["ContactId"], data["InitialContactId"], data["Channel"]) == (
        played.contact_id,
        played.contact_id,
        "VOICE",
    )
    assert (
        data["InstanceARN"] == f"arn:aws:connect:us-east-1:123456789012:instance/{sim.instance_id}"
    )
    audio = data["MediaStreams"]["Customer"]["Audio"]
    assert audio["StreamARN"] == played.stream_arn == kvs.stream(played.stream_name).arn
    assert audio["StartFragmentNumber"] == played.fragment_numbers[0]
    assert audio["StartTimestamp"] == str(played.call.start_ms)
    assert event["Details"]["Parameters"] == {"campaign": "support-line"}
    assert played.stream_name == f"callrec-connect-demo-contact-{played.contact_id}"
    # And what the handler read while the call was live is the call, sample for sample
    truth = played.ground_truth()
    assert truth.duration_ms == 12_000
    assert truth_of(played, recorded["body"]) == truth


def test_streams_are_reused_by_later_contacts(kvs: KvsEmulator) -> None:
    sim = ConnectSimulator(kvs)
    first = sim.play(CallScript(seconds=3.0, seed=2))
    concurrent = sim.play(CallScript(seconds=3.0, seed=3))
    assert concurrent.stream_name != first.stream_name  # one stream per active call
    first.wait()
    concurrent.wait()
    later = sim.play(CallScript(seconds=3.0, seed=4, track_order=TrackOrder.FROM_CUSTOMER_FIRST))
    later.wait()
    assert later.stream_name == first.stream_name  # named after the first contact, reused
    assert later.contact_id not in later.stream_name
    assert len(sim.streams) == 2
    assert later.event is not None
    audio = later.event["Details"]["ContactData"]["MediaStreams"]["Customer"]["Audio"]
    assert audio["StartFragmentNumber"] == later.fragment_numbers[0] > first.fragment_numbers[-1]
    body = read_stream(kvs, first.stream_arn, {"StartSelectorType": "EARLIEST"})
    by_contact = contact_blocks(body)
    assert list(by_contact) == [first.contact_id, later.contact_id]
    assert truth_of(first, body) == first.ground_truth()
    assert truth_of(later, body) == later.ground_truth()


def test_second_contact_right_after_the_first_on_the_same_stream(kvs: KvsEmulator) -> None:
    sim = ConnectSimulator(kvs)
    first = sim.play(CallScript(seconds=2.5, seed=5))
    second = sim.play_after(
        first, CallScript(seconds=2.0, seed=6, tags_layout=TagsLayout.AFTER_ONLY)
    )
    second.wait()
    first.wait()
    assert second.stream_name == first.stream_name
    assert 0 <= second.call.start_ms - first.call.end_ms < 64
    body = read_stream(kvs, first.stream_arn, {"StartSelectorType": "EARLIEST"})
    assert truth_of(first, body) == first.ground_truth()
    assert truth_of(second, body) == second.ground_truth()


def test_test_case_options_and_a_wav_source_keep_the_truth_exact(
    kvs: KvsEmulator, tmp_path: Path
) -> None:
    wav = tmp_path / "customer.wav"
    write_wav_pcm(wav, speech_like(6.0, seed=9))
    sim = ConnectSimulator(kvs)
    played = sim.play(
        CallScript(
            seconds=6.0,
            seed=7,
            customer=wav,
            gaps=[Gap(TRACK_TO_CUSTOMER, 1500, 2600)],
            duplicate_fragments=frozenset({2}),
            jitter_ms=12,
            crc32=True,
            void=True,
            hangup_ms=5030,
        )
    )
    played.wait()
    truth = played.ground_truth()
    assert truth.samples == 5030 * 8
    assert truth.customer == speech_like(6.0, seed=9)[: 5030 * 16]
    assert len(played.fragment_numbers) == 5 + 1  # one delivered twice
    body = read_stream(kvs, played.stream_arn, {"StartSelectorType": "EARLIEST"})
    assert truth_of(played, body) == truth


def test_hang_up_mid_call_ends_the_audio_and_the_truth_with_it(kvs: KvsEmulator) -> None:
    sim = ConnectSimulator(kvs)
    played = sim.play(CallScript(seconds=120.0, seed=8))
    wait_for(lambda: len(played.feed.ingested) >= 3)
    played.hang_up()
    played.wait()
    ingested = len(played.fragment_numbers)
    assert 3 <= ingested < 100
    truth = played.ground_truth()
    assert truth.duration_ms == ingested * 1024
    body = read_stream(kvs, played.stream_arn, {"StartSelectorType": "EARLIEST"})
    assert truth_of(played, body) == truth
    # The stream is free again for the next contact
    assert sim.play(CallScript(seconds=1.0)).stream_name == played.stream_name


def test_no_audio_no_lambda_and_handler_errors_are_reported(kvs: KvsEmulator) -> None:
    calls: list[dict[str, Any]] = []
    sim = ConnectSimulator(kvs, calls.append)
    silent = sim.play(CallScript(seconds=3.0, hangup_ms=0))
    silent.wait()
    assert silent.event is None
    assert calls == []

    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("flow failed")

    failing = ConnectSimulator(kvs, broken).play(CallScript(seconds=1.0))
    failing.wait()
    assert isinstance(failing.handler_error, RuntimeError)


def test_handler_runs_beside_the_audio_not_before_it(kvs: KvsEmulator) -> None:
    started = threading.Event()
    ingested_at_invoke: list[int] = []
    sim: ConnectSimulator

    def handler(event: dict[str, Any]) -> None:
        ingested_at_invoke.append(len(sim.calls[0].feed.ingested))
        started.set()

    sim = ConnectSimulator(kvs, handler)
    played = sim.play(CallScript(seconds=8.0, invoke_after_ms=3000))
    played.wait()
    assert started.is_set()
    assert ingested_at_invoke[0] >= 2  # the flow reached the Lambda block ~3 s into the call
    assert len(played.fragment_numbers) == 8
