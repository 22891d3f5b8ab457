"""Shared test configuration. Helpers live in tests/support.py (importable as tests.support)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import SHARED_FIXTURES

# The local stack (moto, KVS emulator, Lambda wiring) as fixtures: local_stack, local_stack_factory.
pytest_plugins = ["callrec_local.pytest_plugin"]


@pytest.fixture
def shared_fixtures() -> Path:
    """../shared/fixtures: real GetMedia captures, always beside the clone (CI included)."""
    assert SHARED_FIXTURES.is_dir(), f"expected shared fixtures at {SHARED_FIXTURES}"
    return SHARED_FIXTURES
