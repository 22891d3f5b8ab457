"""pytest fixtures for the local stack; registered with `pytest_plugins = ["callrec_local.pytest_plugin"]`.

- `local_stack`: the template as written (real timeouts, schedule on), started and stopped per test.
- `local_stack_factory`: `local_stack_factory(time_scale=0.01, overrides={...}, ...)` takes
  LocalStack's keyword arguments; every stack it starts is stopped after the test.
- `local_stack_environment`: sets the stack's endpoint and credential variables in os.environ for
  the test (and no other AWS_* variable), with a fresh boto3 default session, for code under test
  that creates its own boto3 clients in the test process. `apply_environment(stack.environment,
  monkeypatch)` does the same for a stack a test started itself.

Each stack lives in its own moto account, so these fixtures coexist with other moto fixtures and
with each other in one process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from callrec_local.stack import LocalStack

LocalStackFactory = Callable[..., LocalStack]


@pytest.fixture
def local_stack_factory(tmp_path: Path) -> Iterator[LocalStackFactory]:
    """Start local stacks with custom settings (LocalStack's keyword arguments)."""
    stacks: list[LocalStack] = []

    def start(**kwargs: Any) -> LocalStack:
        kwargs.setdefault("work_dir", tmp_path / f"local-stack-{len(stacks)}")
        stack = LocalStack(**kwargs)
        stacks.append(stack)
        return stack.start()

    yield start
    for stack in reversed(stacks):
        stack.stop()


@pytest.fixture
def local_stack(local_stack_factory: LocalStackFactory) -> LocalStack:
    """The local stack exactly as template.yaml configures it."""
    return local_stack_factory()


@pytest.fixture
def local_stack_environment(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """`local_stack.environment` in os.environ for the test, and nothing else of AWS; returns it.

    Other AWS_* variables (a developer's AWS_PROFILE or session token, an endpoint of another
    service) are removed, and boto3's default session is replaced by a fresh one: it caches the
    credentials it first resolved, so a `boto3.client()` of an earlier test in the same process
    would otherwise reach another account. All of it is restored after the test.
    """
    environment = local_stack.environment
    apply_environment(environment, monkeypatch)
    return environment


def apply_environment(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Set exactly `environment`'s AWS variables and reset boto3's default session, undone by
    `monkeypatch` at the end of the test."""
    for name in list(os.environ):
        if name.startswith("AWS_") and name not in environment:
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
