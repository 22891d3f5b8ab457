"""Shared test configuration: paths to the repository, events and shared fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "events"
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"


def load_event(name: str) -> dict[str, Any]:
    """An event from events/, as `sam local invoke -e` would send it."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


@pytest.fixture
def shared_fixtures() -> Path:
    """../shared/fixtures (real GetMedia captures); skips nothing: CI always has it beside the clone."""
    assert SHARED_FIXTURES.is_dir(), f"expected shared fixtures at {SHARED_FIXTURES}"
    return SHARED_FIXTURES
