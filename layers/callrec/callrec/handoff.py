"""Starting the recorder's long-running work: an asynchronous invocation of itself.

The Kinesis-triggered invocation only registers a call and starts this; each recording
invocation starts the next one before its timeout. Lambda retries a failed asynchronous
invocation and then sends it to the failure destination; a link lost for good is found by
the sweeper, which resumes every recording whose lease expired.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from callrec.errors import CallrecError

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

RECORD = "record"
SWEEP = "sweep"


class HandOffError(CallrecError):
    """The next recording invocation could not be started."""


@lru_cache(maxsize=1)
def lambda_client() -> LambdaClient:
    """The process's Lambda client, created once."""
    return boto3.client(
        "lambda", config=Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard"})
    )


class Invoker:
    """Starts recording invocations of one function."""

    def __init__(self, function_name: str, client: LambdaClient | None = None) -> None:
        self._function_name = function_name
        self._client = client

    def start(self, contact_id: str, *, reason: str) -> None:
        """Invoke the recorder asynchronously to record (or resume) one contact."""
        payload = {"action": RECORD, "contact_id": contact_id, "reason": reason}
        client = self._client or lambda_client()
        try:
            response = client.invoke(
                FunctionName=self._function_name,
                InvocationType="Event",
                Payload=json.dumps(payload).encode(),
            )
        except (ClientError, BotoCoreError) as exc:
            raise HandOffError(
                f"contact {contact_id}: cannot invoke {self._function_name} ({reason}): {exc}"
            ) from exc
        if response.get("StatusCode") != 202:
            raise HandOffError(
                f"contact {contact_id}: invoking {self._function_name} ({reason}) returned "
                f"status {response.get('StatusCode')}, expected 202"
            )


class CommandError(CallrecError, ValueError):
    """An invocation payload the recorder does not understand."""


@dataclass(frozen=True, slots=True)
class RecorderCommand:
    """A direct invocation of the recorder: record (or resume) one contact, or sweep."""

    action: str
    contact_id: str | None = None
    reason: str = ""

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> RecorderCommand:
        action = event.get("action")
        if action == SWEEP:
            return cls(SWEEP)
        if action == RECORD:
            contact_id = event.get("contact_id")
            if not isinstance(contact_id, str) or not contact_id:
                raise CommandError(f"record command without a contact_id: {dict(event)!r}")
            return cls(RECORD, contact_id, str(event.get("reason", "")))
        raise CommandError(
            f"unknown recorder command: expected action {RECORD!r} or {SWEEP!r} "
            f"or a Kinesis batch, found {dict(event)!r:.200}"
        )
