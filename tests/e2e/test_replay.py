"""`callrec replay`: a capture through the whole local pipeline, with forced hand-offs and
GetMedia cuts, gives the same files as `callrec convert`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from callrec.cli import main
from callrec_local.producer import (
    TRACK_TO_CUSTOMER,
    ConnectCall,
    Gap,
    Pause,
    TagsLayout,
    conversation,
    encode_capture,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "getmedia-real"
CONTACT = "0f7c3b8e-3b1d-4c55-9a51-4f0f3f8c2a10"
OTHER_CONTACT = "5ca32fbd-8f92-46af-92a5-6b0f970f0efe"
INSTANCE = "9308c2a1-9bc6-4cea-8290-6c0b4a6d38fa"


def test_replay_with_handoffs_and_cuts_matches_convert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a capture of a 30-second call (an hour old, as a saved capture would be)
    customer, agent = conversation(30, seed=21)
    call = ConnectCall(
        contact_id="0f7c3b8e-3b1d-4c55-9a51-4f0f3f8c2a10",
        instance_id="9308c2a1-9bc6-4cea-8290-6c0b4a6d38fa",
        start_ms=int(time.time() * 1000) - 3_600_000,
        customer=customer,
        agent=agent,
    )
    capture = tmp_path / "call.mkv"
    capture.write_bytes(encode_capture(list(call.fragments())))
    convert_out = tmp_path / "converted"
    assert main(["convert", str(capture), "--out", str(convert_out)]) == 0

    # When it is replayed with 8-second recorder invocations and GetMedia cut every second
    status = main(
        [
            "replay",
            str(capture),
            "--out",
            str(tmp_path / "replayed"),
            "--speed",
            "6",
            "--lambda-timeout",
            "8",
            "--getmedia-max-seconds",
            "1",
        ]
    )

    # Then the recorded files are those convert wrote, byte for byte
    assert status == 0, capsys.readouterr().err
    assert "identical to callrec convert" in capsys.readouterr().out
    converted = sorted(p.name for p in convert_out.iterdir())
    assert sorted(p.name for p in (tmp_path / "replayed").iterdir()) == converted
    for name in converted:
        assert (tmp_path / "replayed" / name).read_bytes() == (convert_out / name).read_bytes()


def replay_json(
    capture: Path, out: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, Any]]:
    status = main(["replay", str(capture), "--out", str(out), "--json", *args])
    captured = capsys.readouterr()
    assert captured.out.strip(), captured.err
    return status, json.loads(captured.out)


def test_a_capture_with_every_anomaly_is_replayed_as_captured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a capture (2026 layout, CRC-32 and Void elements) of a call with a duplicated
    # fragment, a 3-fragment gap in the agent's track and 3 ms of clock jitter, followed on the
    # same stream by the next contact, and an error chunk at the end of the response
    start = int(time.time() * 1000) - 3_600_000
    customer, agent = conversation(16, seed=31)
    call = ConnectCall(
        CONTACT,
        INSTANCE,
        start,
        customer,
        agent,
        crc32=True,
        void=True,
        duplicate_fragments=frozenset({4}),
        gaps=(Gap(TRACK_TO_CUSTOMER, 6000, 9100),),
        jitter_ms=3,
        jitter_seed=2,
    )
    customer, agent = conversation(5, seed=32)
    following = ConnectCall(OTHER_CONTACT, INSTANCE, call.end_ms, customer, agent)
    capture = tmp_path / "call.mkv"
    capture.write_bytes(
        encode_capture(
            [*call.fragments(), *following.fragments()],
            error_chunk=("Requested fragment is not found", "4000"),
        )
    )

    # When it is replayed with 8-second invocations and GetMedia cut every 3 seconds
    status, result = replay_json(
        capture,
        tmp_path / "out",
        capsys,
        *("--speed", "5", "--lambda-timeout", "8", "--getmedia-max-seconds", "3"),
    )

    # Then the first contact's recording is COMPLETED, identical to convert, and its counts
    # show the duplicate dropped and the gap filled, across hand-offs
    assert status == 0, result
    assert result["contact_id"] == CONTACT
    assert result["status"] == "COMPLETED"
    assert result["identical"] is True
    assert result["duplicates_dropped"] >= 1
    assert result["gaps_filled"] >= 1
    assert result["handoffs"] >= 1
    assert result["ended_by"] == "contact-change"  # the next contact on the stream ended it
    assert result["duration_seconds"] == pytest.approx(16, abs=1.1)


def test_the_second_contact_of_a_reused_stream_with_a_pause_in_streaming(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a capture in the 2024 layout (Connect's tags after the Cluster only): one contact,
    # then on the same stream a contact whose streaming pauses for 40 s, the capture cut in the
    # middle of its last fragment
    start = int(time.time() * 1000) - 3_600_000
    customer, agent = conversation(4, seed=41)
    before = ConnectCall(
        OTHER_CONTACT, INSTANCE, start, customer, agent, tags_layout=TagsLayout.AFTER_ONLY
    )
    customer, agent = conversation(12, seed=42)
    call = ConnectCall(
        CONTACT,
        INSTANCE,
        before.end_ms,
        customer,
        agent,
        tags_layout=TagsLayout.AFTER_ONLY,
        pauses=(Pause(at_ms=5000, length_ms=40_000),),
    )
    capture = tmp_path / "call.mkv"
    capture.write_bytes(encode_capture([*before.fragments(), *call.fragments()], truncate_last=300))

    # When the second contact is replayed, fast enough that the pause stays under the
    # recorder's idle time (40 s at 25x: 1.6 s of 3)
    status, result = replay_json(
        capture,
        tmp_path / "out",
        capsys,
        *("--contact-id", CONTACT, "--speed", "25", "--lambda-timeout", "8"),
        *("--getmedia-max-seconds", "3"),
    )

    # Then its recording is COMPLETED and identical to convert's (the pause and all), read
    # from its own first fragment (by its number): none of the first contact's was read
    assert status == 0, result
    assert result["contact_id"] == CONTACT
    assert (result["status"], result["identical"]) == ("COMPLETED", True)
    assert result["skipped_fragments"] == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a capture at all", "not a GetMedia capture: it starts with"),
        ((FIXTURES / "vogels_330.mkv").read_bytes(), "not a capture of an Amazon Connect stream"),
    ],
    ids=["text", "real-video-capture"],
)
def test_what_is_not_a_connect_capture_gets_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    capture = tmp_path / "capture.mkv"
    capture.write_bytes(content)
    began = time.monotonic()

    status = main(["replay", str(capture), "--out", str(tmp_path / "out"), "--json"])

    err = capsys.readouterr().err
    assert status == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert time.monotonic() - began < 10  # refused before any stack was started
    assert not (tmp_path / "out").exists()


def test_a_pause_longer_than_the_idle_time_is_waited_through_until_the_disconnect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a 50-second call whose streaming pauses 40 s of it (10 s of wall time at 4x, more
    # than three times the replay's 3-second idle time)
    start = int(time.time() * 1000) - 3_600_000
    customer, agent = conversation(50, seed=43)
    call = ConnectCall(
        CONTACT, INSTANCE, start, customer, agent, pauses=(Pause(at_ms=3000, length_ms=40_000),)
    )
    capture = tmp_path / "call.mkv"
    capture.write_bytes(encode_capture(list(call.fragments())))

    # When it is replayed (the local Connect knows the contact until its last fragment)
    status, result = replay_json(
        capture, tmp_path / "out", capsys, *("--speed", "4", "--lambda-timeout", "8")
    )

    # Then the recording waited through the pause and ended at the disconnect: whole, the
    # pause as silence, identical to convert's
    assert status == 0, result
    assert (result["status"], result["identical"]) == ("COMPLETED", True)
    assert result["ended_by"] == "disconnect"
    assert result["duration_seconds"] == pytest.approx(50, abs=1.1)
