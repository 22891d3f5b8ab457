"""`callrec rerecord`: record a contact again from KVS, from the start of its call.

While the KVS stream's retention still holds the call's fragments, a recording can be made
again: after a FAILED recording, a WAV deleted or overwritten by mistake, or a recorder fix.
`rerecord` resets the recording's item (`RecordingStore.reset`: a new generation, no
checkpoint, status RECORDING, the rerecord counted) and starts it exactly as registration does,
with an asynchronous invocation of the recorder (`handoff.Invoker`); the recorder does the
rest as for any call. `wait` follows the item until it is COMPLETED or FAILED.

The new WAVs are written at the same keys as the old ones (their names come from the call's
start), so they replace them; the bucket is versioned, and the old ones remain as noncurrent
versions until its lifecycle rule expires them. What the stream no longer holds is not made
up: the recorder records what is left, and its warnings, gaps and FAILED reason are reported
as they are.

It does not decide whether the fragments are still there (only reading them tells), and it
never touches a recording that is being recorded right now.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from callrec.errors import CallrecError
from callrec.handoff import HandOffError, Invoker
from callrec.recordings import COMPLETED, FAILED, Recording, RecordingStore, UnknownRecording
from callrec.viewing import TABLE_OUTPUT, chosen_stack, stack_outputs

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_lambda import LambdaClient

# Stack output naming the recorder function (template.yaml).
FUNCTION_OUTPUT: Final = "RecorderFunctionName"
# The `reason` of the recorder invocation that a rerecord starts (in its event and logs).
RERECORD_REASON: Final = "rerecord"
# How long the reset recording waits, unclaimed, for the invocation started for it before the
# sweeper (every minute) starts another: as long as after a registration.
GRACE_SECONDS: Final = 60
DEFAULT_TIMEOUT_SECONDS: Final = 3600.0
POLL_SECONDS: Final = 0.5
WAV_ORDER: Final = ("cu", "op", "stereo")


class RerecordTimeout(CallrecError):
    """The recording did not finish within the time allowed for waiting."""


@dataclass(frozen=True, slots=True)
class Rerecord:
    """A recording reset and (if `started`) its first invocation started."""

    recording: Recording
    started: bool
    detail: str = ""


def rerecord(store: RecordingStore, invoker: Invoker, contact_id: str) -> Rerecord:
    """Reset the contact's recording and start recording it again from the call's start.

    Raises what `RecordingStore.reset` raises (`UnknownRecording`, `RecordingInProgress`,
    `LeaseLost`): then nothing has changed. If the invocation cannot be started, the reset
    stands and the sweeper starts the recording once its grace period has passed; the result
    says so (`started` False) rather than raising, as a hand-off does.
    """
    recording = store.reset(contact_id, grace_seconds=GRACE_SECONDS)
    try:
        invoker.start(contact_id, reason=RERECORD_REASON)
    except HandOffError as exc:
        return Rerecord(recording, started=False, detail=str(exc))
    return Rerecord(recording, started=True)


def wait_finished(
    store: RecordingStore,
    contact_id: str,
    *,
    timeout_s: float,
    poll_s: float = POLL_SECONDS,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Recording:
    """Poll the recording until it is COMPLETED or FAILED; `RerecordTimeout` after `timeout_s`."""
    deadline = monotonic() + timeout_s
    while True:
        recording = store.get(contact_id)
        if recording is None:
            raise UnknownRecording(f"contact {contact_id}: the recording item has disappeared")
        if recording.status in (COMPLETED, FAILED):
            return recording
        if monotonic() >= deadline:
            raise RerecordTimeout(
                f"contact {contact_id}: still {recording.status} after {timeout_s:g} s "
                f"(generation {recording.generation}); it goes on without waiting"
            )
        sleep(poll_s)


def summary(recording: Recording) -> str:
    """One line: status, contact, duration, keys, gaps, warnings, reason, what differs from
    the recording replaced (and where its WAVs are, if not replaced), the rerecord count."""
    parts = [recording.status, f"contact {recording.contact_id}"]
    if recording.duration_seconds is not None:
        parts.append(f"{recording.duration_seconds:.3f} s")
    if recording.keys:
        kinds = [k for k in WAV_ORDER if k in recording.keys]
        kinds += sorted(set(recording.keys) - set(WAV_ORDER))
        parts.append("keys " + " ".join(recording.keys[k] for k in kinds))
    if recording.gaps_filled:
        parts.append(f"{recording.gaps_filled} gaps filled")
    if recording.warnings:
        parts.append("warnings: " + " | ".join(recording.warnings))
    if recording.reason:
        parts.append(f"reason: {recording.reason}")
    if recording.status == COMPLETED and recording.previous_duration_seconds is not None:
        lost = recording.previous_duration_seconds - (recording.duration_seconds or 0.0)
        if lost > 0.0005 or recording.start != recording.previous_start:
            # KVS serves what it still holds: a call partly beyond retention records shorter.
            parts.append(
                f"differs from the recording it replaced ({recording.previous_duration_seconds:.3f}"
                f" s from {recording.previous_start}): the stream may no longer hold all of the call"
            )
    # WAV names come from the call's start: a recording that starts later (or has no audio)
    # leaves the replaced WAVs where they were, no longer named by the item's keys.
    left = [key for key in recording.previous_keys.values() if key not in recording.keys.values()]
    if left:
        parts.append("the replaced WAVs remain at " + " ".join(sorted(left)))
    parts.append(f"rerecords {recording.rerecords}")
    return ", ".join(parts)


# ------------------------------------------------------------------ command line


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `rerecord` to the callrec command line."""
    parser = subparsers.add_parser(
        "rerecord",
        help="record a contact again from KVS, while the stream's retention holds its call",
        description=(
            "Reset a contact's recording and record it again from the start of the call, read "
            "from its KVS stream: only while the stream's retention still holds the call's "
            "fragments (the recorder records what is left and reports what is lost). The new "
            "WAVs overwrite the old ones at the same keys; the bucket is versioned, so the old "
            "ones remain as noncurrent versions until its lifecycle rule expires them. A "
            "recording being recorded right now is refused. Names come from the stack's "
            "Outputs (RecordingsTableName, RecorderFunctionName) or from --table and "
            "--function; endpoints and credentials from the environment (for the local stack, "
            "the variables `python -m callrec_local.stack` prints). Exit status: 0 when started "
            "(with --wait: when COMPLETED), 1 when FAILED, not started or still recording at "
            "the timeout, 2 when refused or on error."
        ),
    )
    parser.add_argument("contact_id", metavar="CONTACT_ID")
    parser.add_argument(
        "--stack", help="deployed stack to take names from (default: samconfig.toml's stack_name)"
    )
    parser.add_argument("--table", help="recordings table (with --function: no stack lookup)")
    parser.add_argument("--function", help="recorder function (with --table: no stack lookup)")
    parser.add_argument("--region", help="AWS region (default: the SDK's)")
    parser.add_argument(
        "--wait",
        action="store_true",
        help="wait until the recording is COMPLETED or FAILED and print a summary",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="S",
        help=f"with --wait: seconds to wait at most (default {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    parser.set_defaults(handler=_rerecord)


def _names(args: argparse.Namespace) -> tuple[str, str]:
    """The recordings table and the recorder function."""
    if args.table and args.function:
        return args.table, args.function
    if args.table or args.function:
        raise CallrecError("give both --table and --function, or neither (to use a stack)")
    stack = chosen_stack(args.stack, alternative="--table and --function")
    outputs = stack_outputs(stack, region=args.region)
    missing = [name for name in (TABLE_OUTPUT, FUNCTION_OUTPUT) if name not in outputs]
    if missing:
        raise CallrecError(
            f"stack {stack!r}: expected outputs {TABLE_OUTPUT} and {FUNCTION_OUTPUT}, "
            f"missing {', '.join(missing)}"
        )
    return outputs[TABLE_OUTPUT], outputs[FUNCTION_OUTPUT]


def _clients(region: str | None) -> tuple[DynamoDBClient, LambdaClient]:
    import boto3  # noqa: PLC0415 - a session of its own: the environment as it is now
    from botocore.config import Config  # noqa: PLC0415

    session = boto3.session.Session(region_name=region)
    config = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard"})
    return session.client("dynamodb", config=config), session.client("lambda", config=config)


def _rerecord(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        print(
            f"callrec rerecord: expected --timeout above 0, found {args.timeout:g}", file=sys.stderr
        )
        return 2
    try:
        table, function = _names(args)
        dynamodb, lambda_ = _clients(args.region)
        store = RecordingStore(table, dynamodb)
        done = rerecord(store, Invoker(function, lambda_), args.contact_id)
    except CallrecError as exc:
        print(f"callrec rerecord: {exc}", file=sys.stderr)
        return 2
    count = done.recording.rerecords
    if done.started:
        print(f"contact {args.contact_id}: rerecording started (rerecord {count})")
    else:
        print(
            f"callrec rerecord: contact {args.contact_id}: reset (rerecord {count}), but the "
            f"recorder could not be invoked; the sweeper starts it within about "
            f"{GRACE_SECONDS + 60} s: {done.detail}",
            file=sys.stderr,
        )
        if not args.wait:
            return 1
    if not args.wait:
        return 0
    try:
        finished = wait_finished(store, args.contact_id, timeout_s=args.timeout)
    except CallrecError as exc:
        print(f"callrec rerecord: {exc}", file=sys.stderr)
        return 1
    print(summary(finished))
    return 0 if finished.status == COMPLETED else 1
