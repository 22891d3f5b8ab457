"""`callrec replay`: a capture through the whole local pipeline, with forced hand-offs and
GetMedia cuts, gives the same files as `callrec convert`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from callrec.cli import main
from callrec_local.producer import ConnectCall, conversation, encode_capture


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
