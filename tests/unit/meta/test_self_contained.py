"""The test suite stands on its own: nothing it reads lies beside the clone."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.support import FIXTURES, OUTSIDE_READS, REPO

# A path built to a sibling of the clone: a quoted ../shared, or parent joined with shared.
BESIDE = re.compile(r"""["']\.\./shared|/\s*["']shared["']""")


def test_a_file_opened_beside_the_clone_fails_the_session() -> None:
    # Given a path beside the clone (where CI once kept ../shared)
    beside = REPO.parent / "no-such-sibling-of-the-clone" / "capture.mkv"
    before = len(OUTSIDE_READS)

    # When a test tries to open it
    with pytest.raises(FileNotFoundError):
        beside.open("rb")

    # Then the audit hook recorded it (and would fail the session); forget it again
    assert OUTSIDE_READS[before:] == [str(beside)]
    del OUTSIDE_READS[before:]


def test_files_in_the_clone_are_not_recorded() -> None:
    before = len(OUTSIDE_READS)
    (FIXTURES / "README.md").read_bytes()
    assert len(OUTSIDE_READS) == before


def test_no_tracked_code_points_beside_the_clone() -> None:
    # Every fixture a test needs is vendored under tests/fixtures with its licence
    tracked = subprocess.run(
        ["git", "ls-files", "*.py", "Makefile", ".ci/*", "*.toml", "*.cfg"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    offenders = [name for name in tracked if BESIDE.search((REPO / name).read_text("utf-8"))]
    assert offenders == []
    assert {p.name for p in (FIXTURES / "getmedia-real").glob("*.mkv")} >= {
        "vogels_330.mkv",
        "test_mixed_tags.mkv",
    }
    assert (FIXTURES / "getmedia-real" / "NOTICE").is_file()
    assert (FIXTURES / "getmedia-real" / "LICENSE").is_file()
    assert (FIXTURES / "connect-layout" / "LICENSE").is_file()
