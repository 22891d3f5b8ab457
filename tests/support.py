"""Helpers shared by tests at every level: repository paths and the sample events."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "events"
# Real captures and dumps nobody here wrote, vendored with their licences (see its README.md).
FIXTURES = REPO / "tests" / "fixtures"

# Files opened beside the clone (see tests/conftest.py): recorded by an audit hook installed when
# this module is first imported, in every process that runs tests.
OUTSIDE_READS: list[str] = []
_REPO = str(REPO) + os.sep
_PARENT = str(REPO.parent) + os.sep


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event != "open" or not args or not isinstance(args[0], str | bytes | os.PathLike):
        return
    path = os.path.abspath(os.fsdecode(args[0]))
    if path.startswith(_PARENT) and not path.startswith(_REPO) and path + os.sep != _REPO:
        OUTSIDE_READS.append(path)


sys.addaudithook(_audit)


def load_event(name: str) -> dict[str, Any]:
    """An event from events/, as `sam local invoke -e` would send it."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def load_function(name: str) -> ModuleType:
    """functions/<name>/app.py imported under a unique module name (all handlers are `app`).

    Handlers read their settings lazily (on first invocation), so tests set the
    environment with monkeypatch before invoking, not before importing.
    """
    path = REPO / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"functions_{name}_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class FakeLambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str = "callrec-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:callrec-test"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/callrec-test"
    log_stream_name: str = "2026/11/25/[$LATEST]0000"
    remaining_ms: int = 8000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def log_to_stdout(app: ModuleType, monkeypatch: Any) -> None:
    """Send the function logger's lines to whatever sys.stdout is when they are written (capsys
    swaps it between a test's phases), for this test only.

    Powertools' handler keeps the stream it was created with, at the first import of a handler.
    """
    monkeypatch.setattr(app.logger.registered_handler, "stream", _CurrentStdout())


class _CurrentStdout:
    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def log_lines(out: str) -> list[dict[str, Any]]:
    """The JSON log lines in captured stdout (EMF metric blobs, which have no level, left out)."""
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if "level" in line]


@contextlib.contextmanager
def in_process_aws(
    monkeypatch: pytest.MonkeyPatch, recordings_table: str | None = None
) -> Iterator[None]:
    """moto in this process, with dummy credentials and no endpoint or profile of anyone's;
    with `recordings_table`, the recordings table as template.yaml defines it, by that name."""
    import boto3  # noqa: PLC0415 - only the tests that use moto load it
    from moto import mock_aws  # noqa: PLC0415

    from callrec_local.template import load_template, local_plan  # noqa: PLC0415

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    with mock_aws():
        if recordings_table is not None:
            spec = local_plan(load_template()).tables["RecordingsTable"]
            boto3.client("dynamodb").create_table(
                **{**spec.create_table, "TableName": recordings_table}
            )
        yield
