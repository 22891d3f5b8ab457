"""A stand-in handler for every template function, driven by its event, for the wiring tests.

Direct and async events are instructions: {"id": ..., "fail_times": n} raises on the first n
attempts of that id; {"sleep_s": s, "sleep_times": n} sleeps on the first n attempts;
{"handoff": n} re-invokes RECORDER_FUNCTION_NAME asynchronously with {"handoff": n - 1}, as the
recorder hands off a long call. Kinesis records carry JSON instructions: {"poison": true} makes
the whole invocation fail; a start record (from the real contact-flow function) is answered with
the first bytes GetMedia returns from its fragment on; {"id": ..., "reject_times": n} reports the record in batchItemFailures
on the first n attempts. Attempts are counted in files under STATE_DIR, as handlers in separate
processes share nothing else. Every invocation returns what it saw of its context.
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any


def _attempt(key: str) -> int:
    """1 on the first call with this key, 2 on the second... across processes."""
    path = Path(os.environ["STATE_DIR"]) / f"{key}.attempts"
    with path.open("a") as counter:
        counter.write(".")
    return len(path.read_text())


def _context_seen(context: Any) -> dict[str, Any]:
    return {
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "pid": os.getpid(),
        "environment": {k: v for k, v in os.environ.items() if k != "PATH"},
    }


def _first_media_bytes(stream_arn: str, start_fragment_number: str) -> str:
    """GetMedia from the start record's fragment, through the endpoints boto3 finds by itself."""
    # Imported where used: every local invocation is a cold start, and most never need boto3.
    import boto3  # noqa: PLC0415

    endpoint = boto3.client("kinesisvideo").get_data_endpoint(
        StreamARN=stream_arn, APIName="GET_MEDIA"
    )["DataEndpoint"]
    media = boto3.client("kinesis-video-media", endpoint_url=endpoint).get_media(
        StreamARN=stream_arn,
        StartSelector={
            "StartSelectorType": "FRAGMENT_NUMBER",
            "AfterFragmentNumber": start_fragment_number,
        },
    )
    return media["Payload"].read(4).hex()


def _kinesis(event: dict[str, Any]) -> dict[str, Any]:
    failures = []
    media = []
    for record in event["Records"]:
        instruction = json.loads(base64.b64decode(record["kinesis"]["data"]))
        if "stream_arn" in instruction:  # a start record from the contact-flow function
            media.append(
                _first_media_bytes(instruction["stream_arn"], instruction["start_fragment_number"])
            )
            continue
        if instruction.get("poison"):
            raise ValueError(f"poison record {record['kinesis']['sequenceNumber']}")
        if instruction.get("reject_times", 0) >= _attempt(f"reject-{instruction['id']}"):
            failures.append({"itemIdentifier": record["kinesis"]["sequenceNumber"]})
    return {"batchItemFailures": failures, "media": media}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records") or [{}]
    if records[0].get("eventSource") == "aws:kinesis":
        return _kinesis(event)
    seen = _context_seen(context)
    if "remaining_after_s" in event:
        time.sleep(event["remaining_after_s"])
        seen["remaining_after_ms"] = context.get_remaining_time_in_millis()
    if "id" in event:
        attempt = _attempt(event["id"])
        Path(os.environ["STATE_DIR"], f"{event['id']}.pid-{attempt}").write_text(str(os.getpid()))
        if event.get("sleep_times", 0) >= attempt:
            time.sleep(event["sleep_s"])
        if event.get("fail_times", 0) >= attempt:
            raise RuntimeError(f"failing attempt {attempt} of {event['id']}")
    if event.get("handoff"):
        import boto3  # noqa: PLC0415

        boto3.client("lambda").invoke(
            FunctionName=os.environ["RECORDER_FUNCTION_NAME"],
            InvocationType="Event",
            Payload=json.dumps({"handoff": event["handoff"] - 1}).encode(),
        )
    return seen
