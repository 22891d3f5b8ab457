"""Staged WAV output in S3 (moto): segments, tails, restore in another invocation, assembly."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import boto3
import pytest

from callrec.s3parts import SEGMENT_BYTES, OutputSpec, StagedRecording
from callrec.wav import wav_header

OUTPUTS = [OutputSpec("cu", 1), OutputSpec("stereo", 2)]


@pytest.fixture
def bucket(aws_env: str) -> Iterator[str]:
    name = f"recordings-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    yield name
    for obj in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)


def staged(bucket: str, generation: int, state: dict[str, object] | None = None) -> StagedRecording:
    return StagedRecording(
        boto3.client("s3"),
        bucket,
        "staging/",
        "contact-1",
        generation=generation,
        outputs=OUTPUTS,
        state=state,
    )


def keys(bucket: str, prefix: str) -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_a_recording_resumed_from_a_snapshot_assembles_the_same_wavs(bucket: str) -> None:
    # Given 12 MiB of customer audio and 20 MiB of stereo, written in uneven pieces by two
    # invocations, the second starting from the first one's snapshot
    cu = os.urandom(12 * 1024 * 1024 + 6)
    stereo = os.urandom(20 * 1024 * 1024 + 12)
    first = staged(bucket, generation=1)
    for start in range(0, 7_000_000, 700_000):
        first.write("cu", cu[start : start + 700_000])
    first.write("stereo", stereo[:9_000_000])
    state = first.snapshot({"held": b"pending-bytes"})
    first.write("cu", b"lost when the first invocation dies")  # never snapshotted

    second = staged(bucket, generation=2, state=state)
    assert second.extras == {"held": b"pending-bytes"}
    second.write("cu", cu[7_000_000:])
    second.write("stereo", stereo[9_000_000:])

    # When it is assembled
    final = {"cu": "recordings/x-cu.wav", "stereo": "recordings/x-stereo.wav"}
    assembled: list[str] = []
    second.assemble(
        final, sample_rate=8000, metadata={"contact-id": "contact-1"}, on_assembled=assembled.append
    )

    # Then each WAV is the true header and exactly the audio, with its metadata
    s3 = boto3.client("s3")
    for name, pcm, channels in (("cu", cu, 1), ("stereo", stereo, 2)):
        got = s3.get_object(Bucket=bucket, Key=final[name])
        assert second.data_bytes[name] == len(pcm)
        assert got["Body"].read() == wav_header(8000, channels, len(pcm)) + pcm
        assert got["Metadata"]["contact-id"] == "contact-1"
        assert got["Metadata"]["channels"] == str(channels)
    assert len([k for k in keys(bucket, "staging/") if "-cu-0" in k]) == 2  # two full segments
    assert assembled == ["cu", "stereo"]

    # And no staging object is left once it is deleted
    second.delete_staging()
    assert keys(bucket, "staging/") == []


def test_an_assembly_resumed_skips_the_wavs_already_whole(bucket: str) -> None:
    # Given a recording whose customer WAV was assembled before its invocation was cut short
    recording = staged(bucket, generation=1)
    recording.write("cu", b"\x01\x00" * 100)
    recording.write("stereo", b"\x02\x00" * 200)
    final = {"cu": "recordings/r-cu.wav", "stereo": "recordings/r-stereo.wav"}
    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key=final["cu"], Body=b"assembled before")

    # When the assembly resumes with "cu" done
    assembled: list[str] = []
    recording.assemble(
        final, sample_rate=8000, metadata={}, done={"cu"}, on_assembled=assembled.append
    )

    # Then only the stereo WAV is written
    assert assembled == ["stereo"]
    assert s3.get_object(Bucket=bucket, Key=final["cu"])["Body"].read() == b"assembled before"
    stereo = s3.get_object(Bucket=bucket, Key=final["stereo"])["Body"].read()
    assert stereo == wav_header(8000, 2, 400) + b"\x02\x00" * 200


def test_a_short_recording_is_one_put(bucket: str) -> None:
    recording = staged(bucket, generation=1)
    recording.write("cu", b"\x01\x00" * 100)
    recording.write("stereo", b"\x01\x00" * 200)

    recording.assemble(
        {"cu": "recordings/s-cu.wav", "stereo": "recordings/s-stereo.wav"},
        sample_rate=8000,
        metadata={},
    )

    body = boto3.client("s3").get_object(Bucket=bucket, Key="recordings/s-cu.wav")["Body"].read()
    assert body == wav_header(8000, 1, 200) + b"\x01\x00" * 100
    assert SEGMENT_BYTES == 5 * 1024 * 1024
