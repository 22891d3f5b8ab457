"""`callrec urls` and `view` given any contact id of an interaction: every recording of its
contacts (and their earlier recordings) in time order (moto in process, the template's table)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from callrec import cli
from callrec.viewing import load_interaction
from tests.support import in_process_aws

TABLE = "recordings-viewing"
BUCKET = "callrec-recordings-viewing"
ORIGINAL = "5ca32fbd-8f92-46af-92a5-6b0f970f0efe"
TRANSFERRED = "0b7d1a52-7ac4-4e07-9a39-5f0c3f1c9d41"
STRANGER = "7e3c2b10-9d4a-4c55-8f61-0a1b2c3d4e5f"


def keys(contact: str, base: str) -> dict[str, Any]:
    return {
        "M": {
            kind: {"S": f"recordings/2026/07/01/{contact}/{base}-{kind}.wav"}
            for kind in ("cu", "op", "stereo")
        }
    }


def images(contact: str, *bases: str) -> dict[str, Any]:
    return {
        "SS": [
            f"spectrograms/2026/07/01/{contact}/{base}-{kind}.png"
            for base in bases
            for kind in ("cu", "op", "stereo")
        ]
    }


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with in_process_aws(monkeypatch, TABLE):
        dynamodb = boto3.client("dynamodb")
        # The original contact: a recording the idle fallback ended during a pause, then a
        # further one; it was transferred, and the transferred contact was recorded too.
        dynamodb.put_item(
            TableName=TABLE,
            Item={
                "contact_id": {"S": ORIGINAL},
                "initial_contact_id": {"S": ORIGINAL},
                "registered_at": {"N": "100"},
                "status": {"S": "COMPLETED"},
                "recording_index": {"N": "1"},
                "start": {"S": "2026-07-01T13:03:40Z"},
                "duration_seconds": {"N": "90.5"},
                "keys": keys(ORIGINAL, "20260701T130340Z"),
                "earlier_recordings": {
                    "L": [
                        {
                            "M": {
                                "index": {"N": "0"},
                                "status": {"S": "COMPLETED"},
                                "start": {"S": "2026-07-01T13:01:00Z"},
                                "duration_seconds": {"N": "60.0"},
                                "keys": keys(ORIGINAL, "20260701T130100Z"),
                            }
                        }
                    ]
                },
                "spectrogram_keys": images(ORIGINAL, "20260701T130100Z", "20260701T130340Z"),
            },
        )
        dynamodb.put_item(
            TableName=TABLE,
            Item={
                "contact_id": {"S": TRANSFERRED},
                "initial_contact_id": {"S": ORIGINAL},
                "previous_contact_id": {"S": ORIGINAL},
                "registered_at": {"N": "400"},
                "status": {"S": "COMPLETED"},
                "start": {"S": "2026-07-01T13:05:40Z"},
                "duration_seconds": {"N": "200.0"},
                "keys": keys(TRANSFERRED, "20260701T130540Z"),
            },
        )
        dynamodb.put_item(
            TableName=TABLE,
            Item={
                "contact_id": {"S": STRANGER},
                "initial_contact_id": {"S": STRANGER},
                "registered_at": {"N": "150"},
                "status": {"S": "COMPLETED"},
                "start": {"S": "2026-07-01T13:02:00Z"},
                "keys": keys(STRANGER, "20260701T130200Z"),
            },
        )
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield dynamodb


@pytest.mark.parametrize("asked", [ORIGINAL, TRANSFERRED])
def test_any_contact_of_the_interaction_lists_all_its_recordings_in_time_order(
    table: Any, asked: str
) -> None:
    recordings = load_interaction(table, TABLE, asked)

    assert [(r.contact_id, r.index, r.start) for r in recordings] == [
        (ORIGINAL, 0, "2026-07-01T13:01:00Z"),
        (ORIGINAL, 1, "2026-07-01T13:03:40Z"),
        (TRANSFERRED, 0, "2026-07-01T13:05:40Z"),
    ]
    # each recording has its own images, not its sibling's
    first, further, _ = recordings
    assert all("20260701T130100Z" in key for key in first.images().values())
    assert all("20260701T130340Z" in key for key in further.images().values())
    assert recordings[2].previous_contact_id == ORIGINAL


def test_urls_introduces_each_recording_when_there_are_several(
    table: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["urls", TRANSFERRED, "--table", TABLE, "--bucket", BUCKET])

    out = capsys.readouterr().out.splitlines()
    assert status == 0
    headers = [line for line in out if line.startswith("#")]
    assert headers == [
        f"# contact {ORIGINAL} recording 1 start 2026-07-01T13:01:00Z status COMPLETED",
        f"# contact {ORIGINAL} recording 2 start 2026-07-01T13:03:40Z status COMPLETED",
        f"# contact {TRANSFERRED} recording 1 start 2026-07-01T13:05:40Z status COMPLETED",
    ]
    rows = [line.split("\t") for line in out if not line.startswith("#")]
    assert len(rows) == 3 * 3 + 2 * 3  # three WAVs each; images for the original's two
    assert all(len(row) == 3 for row in rows)


def test_view_writes_one_page_for_the_interaction(table: Any, tmp_path: Path) -> None:
    page = tmp_path / "interaction.html"

    status = cli.main(
        ["view", ORIGINAL, "--table", TABLE, "--bucket", BUCKET, "--output", str(page)]
    )

    text = page.read_text()
    assert status == 0
    assert f"<h1>Interaction {ORIGINAL}</h1>" in text
    assert re.findall(r"<article><h2>([^<]+)</h2>", text) == [
        f"Contact {ORIGINAL}",
        f"Contact {ORIGINAL}, recording 2",
        f"Contact {TRANSFERRED}",
    ]
    assert len(re.findall(r"<audio ", text)) == 9
    assert "<script" not in text
