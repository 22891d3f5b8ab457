"""Real GetMedia captures (tests/fixtures/getmedia-real, vendored) against an independent EBML walk
(ebmlite), and `callrec inspect` / `callrec convert` on them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ebmlite
import pytest

from callrec.cli import main
from callrec.convert import NoAudio, convert
from callrec.fragments import ErrorChunk, Fragment, FragmentReader, track_format

CAPTURES = [
    "empty-mkv-with-tags.mkv",
    "kinesis_video_renderer_example_output.mkv",
    "output-get-media-equal-timecode.mkv",
    "output-get-media-non-increasing-timecode.mkv",
    "output_get_media.mkv",
    "output_get_media_sparse_fragments.mkv",
    "test_mixed_tags.mkv",
]
TRUNCATED = {"output-get-media-equal-timecode.mkv", "output-get-media-non-increasing-timecode.mkv"}
SCHEMA = ebmlite.loadSchema("matroska.xml")


def ebmlite_tags(path: Path) -> list[tuple[str, str]]:
    """Every SimpleTag (TagName, TagString) in file order, as ebmlite sees them."""
    found: list[tuple[str, str]] = []

    def walk(element: Any) -> None:
        if isinstance(element, ebmlite.core.MasterElement):
            if element.name == "SimpleTag":
                values = {child.name: child.value for child in element}
                found.append((values.get("TagName"), values.get("TagString")))
            for child in element:
                walk(child)

    for element in SCHEMA.load(str(path)):
        walk(element)
    return found


def read_all(path: Path, chunk: int = 100_000) -> tuple[list[Fragment], FragmentReader]:
    reader = FragmentReader(include_incomplete=True)
    with path.open("rb") as stream:
        events = list(reader.read_stream(stream, chunk))
    return [e.fragment if isinstance(e, ErrorChunk) else e for e in events], reader


@pytest.mark.parametrize("name", CAPTURES)
def test_tags_and_fragment_numbers_match_an_independent_walk(fixtures: Path, name: str) -> None:
    # Given a real capture, read by ebmlite and by our reader in odd-sized chunks
    path = fixtures / "getmedia-real" / name
    expected = ebmlite_tags(path)
    fragments, reader = read_all(path, chunk=77_777)
    # Then the SimpleTags are the same, in the same order
    ours = [(k, v) for f in fragments for k, v in _ordered_tags(f)]
    assert ours == expected
    numbers = [v for k, v in expected if k == "AWS_KINESISVIDEO_FRAGMENT_NUMBER"]
    assert [f.fragment_number for f in fragments] == numbers
    # And truncation is detected exactly where the capture is cut
    assert reader.end is not None
    assert reader.end.clean == (name not in TRUNCATED)
    assert [f.complete for f in fragments][:-1] == [True] * (len(fragments) - 1)
    assert fragments[-1].complete == (name not in TRUNCATED)


def _ordered_tags(fragment: Fragment) -> list[tuple[str, Any]]:
    # Fragment.tags keeps the last value per name; the walk lists repeats. Re-read the document order.
    return fragment.document_tags


def test_mixed_tags_before_info(fixtures: Path) -> None:
    fragments, _ = read_all(fixtures / "getmedia-real" / "test_mixed_tags.mkv")
    assert all(f.tracks and f.tracks[0].name == "test track" for f in fragments)
    assert fragments[0].tag("testTag_0") == "testTag_0_Value"
    assert fragments[0].producer_timestamp == "0.000"


def test_video_blocks_are_counted(fixtures: Path) -> None:
    fragments, _ = read_all(
        fixtures / "getmedia-real" / "kinesis_video_renderer_example_output.mkv"
    )
    first = fragments[0]
    assert first.track_stats() == {"kinesis_video": {"blocks": 59, "bytes": 148653}}
    assert first.clusters == 1


def test_vogels_aac_is_rejected_as_audio(fixtures: Path, tmp_path: Path) -> None:
    path = fixtures / "getmedia-real" / "vogels_330.mkv"
    (fragment,), _ = read_all(path)
    audio = [t for t in fragment.tracks if t.type == 2]
    assert [t.codec_id for t in audio] == ["A_AAC"]
    with pytest.raises(Exception, match=r"track 2 \(Stereo\): codec A_AAC is not PCM"):
        track_format(audio[0], None)
    with path.open("rb") as stream, pytest.raises(NoAudio, match="A_AAC is not PCM"):
        convert(stream, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", [*CAPTURES, "vogels_330.mkv"])
def test_inspect_json_on_every_capture(
    fixtures: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["inspect", "--json", str(fixtures / "getmedia-real" / name)])
    out = capsys.readouterr()
    records = [json.loads(line) for line in out.out.splitlines()]
    assert status == (1 if name in TRUNCATED else 0)
    assert records
    for record in records:
        assert {
            "fragment_number",
            "server_timestamp",
            "producer_timestamp",
            "contact_id",
            "continuation_token",
            "error_code",
            "complete",
            "tracks",
        } <= record.keys()
    assert "Traceback" not in out.err
    if name in TRUNCATED:
        assert "truncated" in out.err
        assert records[-1]["complete"] is False


def test_inspect_text_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"not matroska at all")
    assert main(["inspect", str(garbage)]) == 1
    assert (
        "expected an EBML header or Segment, found element 0x6E6F (at byte 0)"
        in capsys.readouterr().err
    )
    assert main(["inspect", str(tmp_path / "missing.mkv")]) == 2
    assert main(["convert", str(garbage), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "callrec convert:" in err
    assert "Traceback" not in err
