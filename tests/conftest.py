"""Shared test configuration. Helpers live in tests/support.py (importable as tests.support).

A user's clone has nothing beside it: every file a test reads is in the repository (or made by
the test). `tests.support` records each file opened inside the clone's parent directory but outside
the clone (a sibling such as `../shared`), in the test process and in each xdist worker, and the
session fails if there was any: no test can pass here only because something lies beside us.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support import FIXTURES, OUTSIDE_READS

# The local stack (moto, KVS emulator, Lambda wiring) as fixtures: local_stack, local_stack_factory.
pytest_plugins = ["callrec_local.pytest_plugin"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if OUTSIDE_READS:
        paths = sorted(set(OUTSIDE_READS))
        print(
            f"\nerror: tests opened {len(paths)} file(s) beside the clone, which a user's clone "
            f"does not have: {', '.join(paths[:5])}",
            file=sys.stderr,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def fixtures() -> Path:
    """tests/fixtures: real GetMedia captures and a real Connect fragment dump, vendored."""
    return FIXTURES
