"""`callrec inspect`: one line per fragment of any GetMedia capture (video included).

Prints KVS and Connect tags and per-track block counts; with `--json`, JSON Lines. Exit status
0 for a clean capture, 1 if it is truncated, holds an error chunk or is not Matroska, 2 if it
cannot be read. Never a traceback. Deliberately not done here: decoding audio (convert.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from callrec.errors import CallrecError
from callrec.fragments import ErrorChunk, Fragment, FragmentReader, SupportsRead


def fragment_record(event: Fragment | ErrorChunk) -> dict[str, Any]:
    """A fragment as `inspect --json` prints it."""
    fragment = event.fragment if isinstance(event, ErrorChunk) else event
    return {
        "index": fragment.index,
        "offset": fragment.offset,
        "fragment_number": fragment.fragment_number,
        "server_timestamp": fragment.server_timestamp,
        "producer_timestamp": fragment.producer_timestamp,
        "contact_id": fragment.contact_id,
        "continuation_token": fragment.continuation_token,
        "millis_behind_now": fragment.millis_behind_now,
        "error_code": fragment.error_code,
        "error_id": fragment.error_id,
        "complete": fragment.complete,
        "tracks": fragment.track_stats(),
    }


def _line(record: dict[str, Any]) -> str:
    tracks = ", ".join(
        f"{name} {t['blocks']} blocks {t['bytes']} B" for name, t in record["tracks"].items()
    )
    parts = [
        f"#{record['index']} @{record['offset']}",
        f"fragment {record['fragment_number'] or '-'}",
        f"producer {record['producer_timestamp'] or '-'}",
        f"server {record['server_timestamp'] or '-'}",
        f"contact {record['contact_id'] or '-'}",
    ]
    if record["error_code"] is not None:
        parts.append(f"ERROR {record['error_code']} ({record['error_id'] or '-'})")
    parts.append(f"[{tracks}]" if tracks else "[no tracks]")
    if not record["complete"]:
        parts.append("INCOMPLETE")
    return "  ".join(parts)


def inspect(stream: SupportsRead, as_json: bool = False, out: Any = None) -> int:
    """Prints one line per fragment of `stream`; returns the exit status."""
    out = out or sys.stdout
    reader = FragmentReader(include_incomplete=True)
    status = 0
    try:
        for event in reader.read_stream(stream):
            record = fragment_record(event)
            print(json.dumps(record) if as_json else _line(record), file=out)
            if isinstance(event, ErrorChunk):
                status = 1
    except CallrecError as exc:
        print(f"callrec inspect: {exc}", file=sys.stderr)
        return 1
    end = reader.end
    if end is not None and not end.clean:
        print(f"callrec inspect: truncated: {end.detail}", file=sys.stderr)
        status = 1
    return status


def _run(args: argparse.Namespace) -> int:
    try:
        if args.capture == "-":
            return inspect(sys.stdin.buffer, args.json)
        with open(args.capture, "rb") as stream:
            return inspect(stream, args.json)
    except BrokenPipeError:
        # Output closed early (`| head`): not an error of the capture.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        print(f"callrec inspect: {exc}", file=sys.stderr)
        return 2


def register(subparsers: Any) -> None:
    """Adds `callrec inspect`."""
    parser = subparsers.add_parser(
        "inspect",
        help="one line per fragment of a GetMedia capture",
        description="List the fragments of a GetMedia capture: KVS and Connect tags, blocks per"
        " track. Exit 1 if the capture is truncated or holds an error chunk.",
    )
    parser.add_argument("capture", help="capture file, or - for stdin")
    parser.add_argument("--json", action="store_true", help="JSON Lines output")
    parser.set_defaults(handler=_run)
