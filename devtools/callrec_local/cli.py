"""`callrec replay` and `callrec demo`: the whole pipeline on this machine (dev-only commands).

`replay` stores a capture's own fragments, byte for byte, in the emulated KVS as they were
streamed (pauses included), runs the contact flow as Connect would for the chosen contact, lets
the recorder read them through GetMedia (with hand-offs and cuts), downloads the recording and
checks it byte for byte against `callrec convert` on the same capture (see replay.py). `demo`
plays a few simulated calls of different lengths, one of them on a stream reused by the next
contact, and leaves the recordings, their spectrograms and a review page per call in the
output directory.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callrec.errors import CallrecError
from callrec.viewing import Link, Recording, load_recording, review_page
from callrec_local.pipeline import OUTPUTS, LocalPipeline, PipelineOptions
from callrec_local.replay import replay
from callrec_local.simulator import CallScript, PlayedCall

Handler = Callable[[argparse.Namespace], int]
WAV_HEADER_BYTES = 44
SAMPLE_RATE = 8000


def register(subparsers: Any) -> None:
    """Adds `callrec replay` and `callrec demo`."""
    replay = subparsers.add_parser(
        "replay",
        help="play a capture through the whole local pipeline and check the recording",
        description=__doc__,
    )
    replay.add_argument("capture", type=Path, metavar="CAPTURE", help="a GetMedia capture")
    replay.add_argument("--contact-id", help="the contact to replay (default: the first)")
    replay.add_argument(
        "--out", type=Path, default=Path("replay-output"), help="where to put the WAVs"
    )
    replay.add_argument(
        "--json", action="store_true", help="print one JSON object: the recording's counts"
    )
    replay.add_argument(
        "--idle-seconds",
        type=int,
        default=3,
        help="the recorder's RecordingIdleSeconds (wall seconds here; default 3): a pause in "
        "streaming longer than this, at the replay's speed, ends the recording",
    )
    _timing(replay, speed=10.0, lambda_timeout=12.0)
    replay.set_defaults(handler=_guarded("replay", _replay))

    demo = subparsers.add_parser(
        "demo", help="record a few simulated calls on the local stack", description=__doc__
    )
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="output directory")
    _timing(demo, speed=20.0, lambda_timeout=12.0)
    demo.set_defaults(handler=_guarded("demo", _demo))


def _timing(parser: argparse.ArgumentParser, *, speed: float, lambda_timeout: float) -> None:
    parser.add_argument(
        "--speed", type=float, default=speed, help=f"media time per wall second (default {speed})"
    )
    parser.add_argument(
        "--lambda-timeout",
        type=float,
        default=lambda_timeout,
        help=f"the recorder's timeout in seconds, to force hand-offs (default {lambda_timeout})",
    )
    parser.add_argument(
        "--getmedia-max-seconds",
        type=float,
        default=None,
        help="cut every GetMedia connection after this many seconds (AWS: about 2700)",
    )


def _options(args: argparse.Namespace, **extra: Any) -> PipelineOptions:
    # The recorder hands off 4 s before its timeout (a blocked read can last 3 s here), and a
    # cold start takes a second or two: below 8 s an invocation has no time left to record.
    if args.speed <= 0 or args.lambda_timeout < 8:
        raise CallrecError("--speed must be positive and --lambda-timeout at least 8 seconds")
    return PipelineOptions(
        speed=args.speed,
        lambda_timeout_s=args.lambda_timeout,
        getmedia_max_seconds=args.getmedia_max_seconds,
        **extra,
    )


def _guarded(name: str, run: Callable[[argparse.Namespace], int]) -> Handler:
    """`run` as a command handler: expected failures are one line on stderr and status 2."""

    def handler(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except (CallrecError, OSError, TimeoutError) as exc:
            print(f"callrec {name}: {exc}", file=sys.stderr)
            return 2

    return handler


def _replay(args: argparse.Namespace) -> int:
    result = replay(
        args.capture.read_bytes(),
        _options(args, idle_s=args.idle_seconds),
        args.out,
        contact_id=args.contact_id,
    )
    if args.json:
        print(json.dumps(result.to_json()))
    elif result.status != "COMPLETED":
        print(f"callrec replay: recording {result.status}: {result.reason}", file=sys.stderr)
    else:
        print(
            f"contact {result.contact_id}: {result.duration_seconds:.1f} s recorded in "
            f"{result.elapsed_s:.1f} s, {result.handoffs} hand-offs, "
            f"{result.duplicates_dropped} duplicates dropped, {result.gaps_filled} gaps filled, "
            f"{result.skipped_fragments} fragments of other contacts skipped, "
            f"{'identical to' if result.identical else 'DIFFERENT FROM'} callrec convert "
            f"-> {args.out}"
        )
    return 0 if result.ok else 1


# Calls of the demo: (seconds, seed, on the previous call's stream right after it).
DEMO_CALLS = ((45.0, 1, False), (150.0, 2, False), (20.0, 3, True), (400.0, 4, False))


def _demo(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    print(f"starting the local stack; playing {len(DEMO_CALLS)} calls at {args.speed}x ...")
    with LocalPipeline(_options(args)) as pipeline:
        played: list[PlayedCall] = []
        for seconds, seed, reuse in DEMO_CALLS:
            script = CallScript(seconds=seconds, seed=seed)
            if reuse and played:
                played.append(pipeline.play_after(played[-1], script))
            else:
                played.append(pipeline.play(script))
        for call in played:
            item = pipeline.wait_finished(call.contact_id, timeout_s=600)
            status = item["status"]["S"]
            folder = out / call.contact_id
            files: list[Path] = []
            images: list[Path] = []
            if status == "COMPLETED":
                wavs = [item["keys"]["M"][name]["S"] for name in OUTPUTS]
                files = pipeline.download(wavs, folder)
                images = pipeline.download(pipeline.wait_images(call.contact_id), folder)
                recording = load_recording(
                    pipeline.stack.dynamodb(), pipeline.stack.table_name, call.contact_id
                )
                _write_page(recording, folder, files + images)
            rows.append((call, item, files, images))
    print()
    print(f"{'contact':36}  {'duration':>9}  {'hand-offs':>9}  {'status':9}  files")
    ok = True
    for call, item, files, images in rows:
        status = item["status"]["S"]
        ok = ok and status == "COMPLETED" and len(images) == len(OUTPUTS)
        duration = float(item.get("duration_seconds", {}).get("N", 0))
        names = ", ".join(p.name for p in files + images) or item.get("reason", {}).get("S", "")
        print(
            f"{call.contact_id:36}  {duration:8.1f}s  {item.get('handoffs', {}).get('N', '0'):>9}  "
            f"{status:9}  {names}"
        )
    print(f"\nrecordings, spectrograms and a review page per call (index.html) in {out.resolve()}/")
    return 0 if ok else 1


def _write_page(recording: Recording, folder: Path, files: list[Path]) -> None:
    """The review page `callrec view` writes, pointing at the downloaded files."""
    by_name = {p.name: p for p in files}
    links = []
    for kind in OUTPUTS:
        for media, key in (
            ("wav", recording.keys.get(kind)),
            ("png", recording.images().get(kind)),
        ):
            name = key.rsplit("/", 1)[-1] if key else None
            if name in by_name:
                links.append(Link(kind, media, key or "", name or ""))
    page = review_page(recording, links, expires_at=None)
    (folder / "index.html").write_text(page, encoding="utf-8")
