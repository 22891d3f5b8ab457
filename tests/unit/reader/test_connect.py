"""Connect streams from the project's producer (callrec_local.producer), against its ground truth."""

from __future__ import annotations

import io
import json
import wave
from dataclasses import replace
from pathlib import Path

import pytest

from callrec.alignment import Aligner, StereoMuxer, interleave
from callrec.convert import NoAudio, convert
from callrec.fragments import (
    ContactDecision,
    ContactGate,
    ErrorChunk,
    Fragment,
    FragmentReader,
)
from callrec.mkv import MkvError
from callrec.wav import WavFileWriter
from callrec_local import producer as p

CONTACT = "87718f4a-d2ed-476a-ad11-f496ab09b3f8"
OTHER = "5f0e6c1a-0000-4000-8000-000000000002"
INSTANCE = "3087be6e-771a-48a8-90da-93b5326a43a1"
START_MS = 1_782_912_654_536


def make_call(
    seconds: float = 5.0,
    contact: str = CONTACT,
    start_ms: int = START_MS,
    seed: int = 1,
    **options: object,
) -> p.ConnectCall:
    cu, op = p.conversation(seconds, seed)
    # Agent slightly shorter: the reader must pad it.
    return p.ConnectCall(contact, INSTANCE, start_ms, cu, op[: len(op) - 3000], **options)  # type: ignore[arg-type]


def events_of(
    data: bytes, chunk: int = 65536
) -> tuple[list[Fragment | ErrorChunk], FragmentReader]:
    reader = FragmentReader()
    events: list[Fragment | ErrorChunk] = []
    for i in range(0, len(data), chunk):
        events += reader.feed(data[i : i + chunk])
    events += reader.close()
    return events, reader


def record(
    data: bytes, contact_id: str | None = None, chunk: int = 65536
) -> tuple[bytes, bytes, Aligner]:
    """What the recorder does, fragment by fragment: gate, align, finish."""
    events, _ = events_of(data, chunk)
    gate, aligner = ContactGate(target=contact_id), Aligner()
    cu, op = bytearray(), bytearray()
    for event in events:
        if isinstance(event, ErrorChunk):
            continue
        decision = gate.decide(event)
        if decision is ContactDecision.END:
            break
        if decision is ContactDecision.KEEP:
            out = aligner.add_fragment(event)
            cu += out.cu
            op += out.op
    tail = aligner.finish()
    return bytes(cu + tail.cu), bytes(op + tail.op), aligner


VARIANTS = {
    "real layout": {},
    "from-customer first": {"track_order": p.TrackOrder.FROM_CUSTOMER_FIRST},
    "tags after cluster only (2024)": {"tags_layout": p.TagsLayout.AFTER_ONLY},
    "crc32 and void": {"crc32": True, "void": True},
    "gap in one track": {"gaps": (p.Gap(p.TRACK_FROM_CUSTOMER, 1024, 2048),)},
    "gap at the agent's start": {"gaps": (p.Gap(p.TRACK_TO_CUSTOMER, 0, 512),)},
    "fragment delivered twice": {"duplicate_fragments": frozenset({1, 3})},
    "timestamp jitter": {"jitter_ms": 15, "jitter_seed": 7},
    "short blocks, odd fragments": {"block_samples": 160, "blocks_per_fragment": 7},
    "everything at once": {
        "track_order": p.TrackOrder.FROM_CUSTOMER_FIRST,
        "crc32": True,
        "void": True,
        "gaps": (p.Gap(p.TRACK_TO_CUSTOMER, 2048, 3000),),
        "duplicate_fragments": frozenset({0, 2}),
        "jitter_ms": 19,
    },
}


@pytest.mark.parametrize("options", VARIANTS.values(), ids=VARIANTS.keys())
def test_connect_variants_are_sample_exact(options: dict[str, object]) -> None:
    # Given a call in one of the layouts Connect produces
    call = make_call(**options)
    data = p.encode_capture(list(call.fragments()))
    truth = call.ground_truth()
    # When recorded fragment by fragment
    cu, op, aligner = record(data, chunk=4096)
    # Then both tracks equal the ground truth, sample for sample
    assert aligner.start_ns == truth.start_ms * 1_000_000
    assert cu == truth.customer
    assert op == truth.agent


def test_gaps_and_duplicates_are_counted() -> None:
    call = make_call(
        gaps=(p.Gap(p.TRACK_FROM_CUSTOMER, 1024, 2048),), duplicate_fragments=frozenset({2})
    )
    _, _, aligner = record(p.encode_capture(list(call.fragments())))
    assert aligner.gaps_filled == 1
    assert aligner.gap_samples == 1024 * 8
    assert aligner.duplicates_dropped == 2 * call.blocks_per_fragment  # both tracks' blocks


def test_second_contact_reusing_the_stream_ends_the_recording() -> None:
    # Given a stream reused by a second contact right after the first
    first = make_call(4.0)
    second = make_call(3.0, contact=OTHER, start_ms=first.end_ms + 500, seed=2)
    data = p.encode_capture([*first.fragments(), *second.fragments()])
    # When recorded with the default target, then with the second contact as target
    cu, op, _ = record(data)
    cu2, op2, _ = record(data, contact_id=OTHER)
    # Then each recording holds exactly its own contact's audio
    assert (cu, op) == (first.ground_truth().customer, first.ground_truth().agent)
    assert (cu2, op2) == (second.ground_truth().customer, second.ground_truth().agent)


def test_contact_decided_before_audio_when_tags_follow_the_cluster() -> None:
    # Tags only after the Cluster (2024 layout): the fragment of the next contact is still refused
    first = make_call(2.0, tags_layout=p.TagsLayout.AFTER_ONLY)
    second = make_call(
        2.0, contact=OTHER, start_ms=first.end_ms, seed=3, tags_layout=p.TagsLayout.AFTER_ONLY
    )
    cu, _, _ = record(p.encode_capture([*first.fragments(), *second.fragments()]))
    assert cu == first.ground_truth().customer


def test_contact_gate_rules_and_state() -> None:
    def frag(contact: str | None) -> Fragment:
        tags = {"ContactId": contact} if contact else {}
        return Fragment(0, 0, 0, True, tags, (), [], 1_000_000, 0)

    gate = ContactGate(target="b")
    decisions = [gate.decide(frag(c)) for c in ("a", None, "b", None, "b")]
    restored = ContactGate.from_state(json.loads(json.dumps(gate.state())))
    assert decisions == [ContactDecision.SKIP] * 2 + [ContactDecision.KEEP] * 3
    assert restored.decide(frag("c")) is ContactDecision.END
    assert restored.decide(frag("b")) is ContactDecision.END  # ended stays ended
    default = ContactGate()
    assert [default.decide(frag(c)) for c in (None, "x", "x", "y")] == [
        ContactDecision.KEEP,
        ContactDecision.KEEP,
        ContactDecision.KEEP,
        ContactDecision.END,
    ]


def test_error_chunk_at_the_end_is_a_typed_event() -> None:
    call = make_call(3.0)
    data = p.encode_capture(list(call.fragments()), error_chunk=("FRAGMENT_NOT_FOUND", "3000"))
    events, reader = events_of(data)
    errors = [e for e in events if isinstance(e, ErrorChunk)]
    assert [(e.code, e.error_id) for e in errors] == [("FRAGMENT_NOT_FOUND", "3000")]
    assert reader.end is not None
    assert reader.end.clean
    cu, op, _ = record(data)
    assert (cu, op) == (call.ground_truth().customer, call.ground_truth().agent)


def test_truncated_last_fragment_is_dropped_and_reported() -> None:
    call = make_call(4.0)
    specs = list(call.fragments())
    data = p.encode_capture(specs, truncate_last=300)
    events, reader = events_of(data, chunk=1000)
    assert len(events) == len(specs) - 1
    assert reader.end is not None
    assert not reader.end.clean
    assert reader.end.dropped is not None
    assert reader.end.dropped.index == len(specs) - 1
    # The audio is that of the complete fragments, exactly
    assert record(data)[:2] == record(p.encode_capture(specs[:-1]))[:2]
    samples = (len(specs) - 1) * call.blocks_per_fragment * call.block_samples
    assert record(data)[0] == call.ground_truth().customer[: samples * 2]


def test_fragment_fields_follow_the_real_layout() -> None:
    call = make_call(2.0)
    (first, *_), _ = events_of(p.encode_capture(list(call.fragments()), stream_seed=3))
    assert isinstance(first, Fragment)
    assert first.contact_id == CONTACT
    assert first.fragment_number == first.continuation_token == p.fragment_number(3, 0)
    assert first.producer_timestamp == "1782912654.536"
    assert first.mime_type == p.MIME_TYPE
    assert first.track_stats() == {
        "AUDIO_TO_CUSTOMER": {"blocks": 16, "bytes": 16 * 1024},
        "AUDIO_FROM_CUSTOMER": {"blocks": 16, "bytes": 16 * 1024},
    }


def test_tagless_fragments_reuse_the_last_mime_type() -> None:
    call = make_call(4.0)
    specs = list(call.fragments())
    specs[2:] = [replace(s, tags_layout=p.TagsLayout.NONE) for s in specs[2:]]
    cu, op, _ = record(p.encode_capture(specs))
    assert (cu, op) == (call.ground_truth().customer, call.ground_truth().agent)


def test_aac_codec_without_mime_type_is_rejected() -> None:
    call = make_call(2.0, tags_layout=p.TagsLayout.NONE)
    with pytest.raises(MkvError, match="A_AAC is not PCM"):
        record(p.encode_capture(list(call.fragments())))


@pytest.mark.parametrize("split", [1, 2, 5, 9])
def test_resumed_aligner_gives_identical_bytes(split: int) -> None:
    # Given a call with gaps, duplicates and jitter
    call = make_call(
        6.0,
        gaps=(p.Gap(p.TRACK_TO_CUSTOMER, 1024, 2560),),
        duplicate_fragments=frozenset({3}),
        jitter_ms=12,
    )
    events, _ = events_of(p.encode_capture(list(call.fragments())))
    fragments = [e for e in events if isinstance(e, Fragment)]
    whole = Aligner()
    expected = [whole.add_fragment(f) for f in fragments] + [whole.finish()]
    # When fragments 1..k go to one aligner and k+1..n to one restored from its JSON state
    first = Aligner()
    got = [first.add_fragment(f) for f in fragments[:split]]
    second = Aligner.from_state(json.loads(json.dumps(first.state())))
    got += [second.add_fragment(f) for f in fragments[split:]] + [second.finish()]
    # Then the output is byte-identical
    assert b"".join(a.cu for a in got) == b"".join(a.cu for a in expected)
    assert b"".join(a.op for a in got) == b"".join(a.op for a in expected)
    assert second.state() == whole.state()


def read_wav(path: Path) -> tuple[int, int, bytes]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.readframes(w.getnframes())


@pytest.mark.parametrize("parallel", [False, True], ids=["one-process", "stereo-worker"])
def test_convert_writes_three_wavs_named_after_the_start(tmp_path: Path, parallel: bool) -> None:
    call = make_call(3.0, gaps=(p.Gap(p.TRACK_FROM_CUSTOMER, 512, 1024),))
    capture = tmp_path / "capture.mkv"
    capture.write_bytes(p.encode_capture(list(call.fragments())))
    with capture.open("rb") as stream:
        result = convert(stream, tmp_path / "out", chunk_size=3333, parallel=parallel)
    truth = call.ground_truth()
    stem = "20260701T133054Z"
    assert sorted(x.name for x in (tmp_path / "out").iterdir()) == [
        f"{stem}-{r}.wav" for r in ("cu", "op", "stereo")
    ]
    assert read_wav(result.paths["cu"]) == (8000, 1, truth.customer)
    assert read_wav(result.paths["op"]) == (8000, 1, truth.agent)
    assert read_wav(result.paths["stereo"]) == (8000, 2, truth.stereo())
    assert result.contact_id == CONTACT
    assert result.gaps == 1
    assert "1 gaps filled" in result.summary()


@pytest.mark.parametrize("parallel", [False, True], ids=["one-process", "stereo-worker"])
def test_a_failed_write_is_raised_by_convert_and_the_files_are_still_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: bool
) -> None:
    # Given a disk that fills up after the first writes
    written: list[int] = []
    real_write = WavFileWriter.write

    def write(self: WavFileWriter, pcm: bytes) -> None:
        if len(written) >= 5:
            raise OSError(28, "No space left on device")
        written.append(len(pcm))
        real_write(self, pcm)

    monkeypatch.setattr(WavFileWriter, "write", write)
    capture = p.encode_capture(list(make_call(6.0).fragments()))

    # When converting, then the error reaches the caller, and every file got its header
    with pytest.raises(OSError, match="No space left"):
        convert(io.BytesIO(capture), tmp_path / "out", chunk_size=4096, parallel=parallel)
    files = sorted((tmp_path / "out").iterdir())
    assert len(files) == 3
    for path in files:
        with wave.open(str(path), "rb") as w:
            assert w.getnframes() * w.getnchannels() * 2 == path.stat().st_size - 44


@pytest.mark.parametrize("parallel", [False, True], ids=["one-process", "stereo-worker"])
def test_convert_without_connect_audio_says_why(tmp_path: Path, parallel: bool) -> None:
    call = make_call(1.0, tags_layout=p.TagsLayout.NONE)
    with pytest.raises(MkvError):
        convert(io.BytesIO(p.encode_capture(list(call.fragments()))), tmp_path, parallel=parallel)
    with pytest.raises(NoAudio, match="contact nobody"):
        convert(
            io.BytesIO(p.encode_capture(list(make_call(1.0).fragments()))),
            tmp_path,
            "nobody",
            parallel=parallel,
        )
    assert list(tmp_path.iterdir()) == []


def test_stereo_muxer_matches_interleave() -> None:
    left, right = bytes(range(200)), bytes(range(55, 255))
    muxer = StereoMuxer()
    out = (
        muxer.push(left[:50], right[:10])
        + muxer.push(left[50:60], right[10:150])
        + muxer.push(left[60:], right[150:])
    )
    assert out == interleave(left, right)
    assert muxer.pending == 0


def test_inspect_reports_error_chunks_and_truncation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from callrec.cli import main  # noqa: PLC0415

    call = make_call(2.0)
    clean = tmp_path / "clean.mkv"
    clean.write_bytes(p.encode_capture(list(call.fragments())))
    error = tmp_path / "error.mkv"
    error.write_bytes(
        p.encode_capture(list(call.fragments()), error_chunk=("FRAGMENT_NOT_FOUND", "3000"))
    )
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(p.encode_capture(list(call.fragments()), truncate_last=50))
    assert main(["inspect", str(clean)]) == 0
    assert CONTACT in capsys.readouterr().out
    assert main(["inspect", "--json", str(error)]) == 1
    last = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (last["error_code"], last["complete"]) == ("FRAGMENT_NOT_FOUND", True)
    assert main(["inspect", str(cut)]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1].endswith("INCOMPLETE")
    assert "truncated" in captured.err
