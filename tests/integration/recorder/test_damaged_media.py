"""A damaged fragment mid-call, through the whole local pipeline: the recording ends FAILED with
the reader's reason, and its WAVs hold everything before that fragment (docs/operations.md,
section 9)."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

from callrec.convert import convert
from callrec_local import kvs_emulator
from callrec_local.producer import EncodedFragment, FragmentSpec, encode_capture
from callrec_local.simulator import CallScript
from tests.integration.recorder.conftest import OUTPUTS, PipelineMaker

DAMAGED = 4  # the index of the fragment whose Cluster loses its first byte


def test_a_damaged_fragment_ends_the_recording_failed_keeping_what_came_before(
    make_pipeline: PipelineMaker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a KVS stream where the fifth fragment of the call is damaged (a byte that cannot
    # start an element where its Cluster begins)
    ingested: list[FragmentSpec] = []
    encode = kvs_emulator.encode_fragment_parts

    def damaging(spec: FragmentSpec) -> EncodedFragment:
        parts = encode(spec)
        ingested.append(spec)
        if len(ingested) - 1 == DAMAGED:
            return replace(parts, body=b"\x00" + parts.body[1:])
        return parts

    monkeypatch.setattr(kvs_emulator, "encode_fragment_parts", damaging)
    pipeline = make_pipeline(speed=5.0, recorder_timeout_s=10.0)

    # When a 10-second call is recorded
    played = pipeline.simulator.play(CallScript(seconds=10, seed=5))
    played.wait(timeout=60)
    item = pipeline.wait_finished(played.contact_id)

    # Then the recording is FAILED with the reader's reason
    assert item["status"]["S"] == "FAILED", item
    assert "expected an element ID, found byte 0x00" in item["reason"]["S"]
    # and its WAVs are those of the fragments before the damaged one
    recorded = pipeline.download(item)
    before = list(played.call.fragments())[:DAMAGED]
    assert ingested[:DAMAGED] == before
    out = tmp_path / "reference"
    result = convert(io.BytesIO(encode_capture(before)), out, contact_id=played.contact_id)
    for name in OUTPUTS:
        assert recorded[name] == Path(result.paths[name]).read_bytes(), name
    assert len(recorded["cu"]) > 44
