"""Starting the recorder's long-running work: an asynchronous invocation of itself.

The Kinesis-triggered invocation only registers a call and starts this; each recording
invocation starts the next one before its timeout. Lambda retries a failed asynchronous
invocation and then sends it to the failure destination; a link lost for good is found by
the sweeper, which resumes every recording whose lease expired.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING

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
