"""`callrec urls` and `callrec view`: presigned links to an interaction's recordings and images.

The contact's DynamoDB item names its WAVs (`keys`: cu, op, stereo) and images
(`spectrogram_keys`); the table and bucket come from a deployed stack's Outputs (`--stack`, by
default samconfig.toml's stack_name) or are given outright (`--table`, `--bucket`,
`--endpoint-url`: the local stack). `view` writes one self-contained HTML page (inline CSS, no
script) with an audio player and the spectrogram for each recording.

Any contact id of a customer interaction lists all of its recordings: the contacts sharing its
InitialContactId (a transfer's new contact keeps it) are found through the table's
`interaction-recordings` index, and each item may hold earlier recordings of its contact (a
recording that ended and a further one that followed it, `earlier_recordings`). They are listed
in time order; with more than one, `urls` introduces each with a `# contact ...` line.

Links live at most MAX_EXPIRES_SECONDS (12 hours), less than SigV4's 7 days: a recording is
personal data, and a review link has no business outliving the working day it was made for.
Links signed with temporary credentials also end when those credentials do.
"""

from __future__ import annotations

import argparse
import html
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from callrec.errors import CallrecError

# boto3 (and tomllib) are imported where they are used: building the `callrec` parser imports
# this module, and boto3's 0.15 s and 20 MB are not for commands that never touch AWS.
if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

DEFAULT_EXPIRES_SECONDS: Final = 3600
MAX_EXPIRES_SECONDS: Final = 12 * 3600
# Stack outputs (template.yaml) naming the table and the bucket.
TABLE_OUTPUT: Final = "RecordingsTableName"
BUCKET_OUTPUT: Final = "RecordingsBucketName"
# Order of the recordings on the page and in `urls`.
KINDS: Final = ("stereo", "cu", "op")
INTERACTION_INDEX: Final = "interaction-recordings"
# BatchGetItem takes at most 100 keys.
BATCH_GET_KEYS: Final = 100
KIND_TITLES: Final = {
    "stereo": "Stereo: customer left, agent right",
    "cu": "Customer",
    "op": "Agent",
}


class ViewingError(CallrecError):
    """The stack, the table, the bucket or the contact cannot be found or read."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a contact's recordings live."""

    table: str
    bucket: str
    endpoint_url: str | None = None
    region: str | None = None


@dataclass(frozen=True, slots=True)
class Recording:
    """The parts of a recording item that viewing needs."""

    contact_id: str
    status: str | None = None
    start: str | None = None
    duration_seconds: float | None = None
    sample_rate: int | None = None
    keys: Mapping[str, str] = field(default_factory=dict)
    spectrogram_keys: tuple[str, ...] = ()
    # Which recording of the contact (0 the first; a further one after it ended, 1, 2...).
    index: int = 0
    initial_contact_id: str | None = None
    previous_contact_id: str | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Recording:
        """The item's current recording, from a deserialised DynamoDB item."""
        return cls._of(item, item, int(item.get("recording_index") or 0))

    @classmethod
    def all_from_item(cls, item: Mapping[str, Any]) -> list[Recording]:
        """Every recording the item holds: its earlier ones, then the current one."""
        earlier = [
            cls._of(item, entry, int(entry.get("index", n)))
            for n, entry in enumerate(item.get("earlier_recordings") or ())
        ]
        return [*earlier, cls.from_item(item)]

    @classmethod
    def _of(cls, item: Mapping[str, Any], result: Mapping[str, Any], index: int) -> Recording:
        duration = result.get("duration_seconds")
        rate = result.get("sample_rate")
        keys = result.get("keys") or {}
        return cls(
            contact_id=str(item["contact_id"]),
            status=None if result.get("status") is None else str(result["status"]),
            start=None if result.get("start") is None else str(result["start"]),
            duration_seconds=None if duration is None else float(duration),
            sample_rate=None if rate is None else int(rate),
            keys={str(k): str(v) for k, v in keys.items()},
            spectrogram_keys=tuple(sorted(str(k) for k in item.get("spectrogram_keys") or ())),
            index=index,
            initial_contact_id=_text(item.get("initial_contact_id")),
            previous_contact_id=_text(item.get("previous_contact_id")),
        )

    def images(self) -> dict[str, str]:
        """Image keys by recording kind (from the `-<kind>.png` suffix): those of this
        recording's WAVs when it has keys (an item's images are all in one set)."""
        bases = {key.rsplit("/", 1)[-1].rsplit("-", 1)[0] for key in self.keys.values()}
        found: dict[str, str] = {}
        for key in self.spectrogram_keys:
            stem = key.rsplit("/", 1)[-1].removesuffix(".png")
            base, _, kind = stem.rpartition("-")
            if not bases or base in bases:
                found[kind] = key
        return found


@dataclass(frozen=True, slots=True)
class Link:
    """One presigned link."""

    kind: str
    media: str  # "wav" or "png"
    key: str
    url: str


def samconfig_stack_name(path: Path = Path("samconfig.toml")) -> str | None:
    """stack_name from samconfig.toml's [default.deploy.parameters], if there is one."""
    import tomllib  # noqa: PLC0415 - see the imports

    try:
        config = tomllib.loads(path.read_text())
    except (FileNotFoundError, tomllib.TOMLDecodeError):
        return None
    name = config.get("default", {}).get("deploy", {}).get("parameters", {}).get("stack_name")
    return str(name) if name else None


def _client_config(endpoint_url: str | None) -> Config:
    from botocore.config import Config  # noqa: PLC0415 - see the imports

    # Path-style addressing for local endpoints (an IP cannot carry the bucket as a host name).
    if endpoint_url:
        return Config(signature_version="s3v4", s3={"addressing_style": "path"})
    return Config(signature_version="s3v4")


def stack_outputs(
    stack: str, *, region: str | None = None, endpoint_url: str | None = None
) -> dict[str, str]:
    """A deployed stack's Outputs by name (CloudFormation DescribeStacks)."""
    import boto3  # noqa: PLC0415 - see the imports
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    session = boto3.session.Session(region_name=region)
    cloudformation = session.client("cloudformation", endpoint_url=endpoint_url)
    try:
        [described] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except (ClientError, BotoCoreError) as exc:
        raise ViewingError(f"cannot describe stack {stack!r}: {exc}") from exc
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def stack_target(
    stack: str, *, region: str | None = None, endpoint_url: str | None = None
) -> Target:
    """Table and bucket names from a deployed stack's Outputs."""
    outputs = stack_outputs(stack, region=region, endpoint_url=endpoint_url)
    missing = [name for name in (TABLE_OUTPUT, BUCKET_OUTPUT) if name not in outputs]
    if missing:
        raise ViewingError(
            f"stack {stack!r}: expected outputs {TABLE_OUTPUT} and {BUCKET_OUTPUT}, "
            f"missing {', '.join(missing)}"
        )
    return Target(outputs[TABLE_OUTPUT], outputs[BUCKET_OUTPUT], endpoint_url, region)


def load_recording(dynamodb: DynamoDBClient, table: str, contact_id: str) -> Recording:
    """The contact's current recording; ViewingError if there is none."""
    return Recording.from_item(_load_item(dynamodb, table, contact_id))


def load_interaction(dynamodb: DynamoDBClient, table: str, contact_id: str) -> list[Recording]:
    """Every recording of the interaction the contact belongs to, in time order (recordings
    with no start last, by contact registration)."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    asked = _load_item(dynamodb, table, contact_id)
    initial = _text(asked.get("initial_contact_id"))
    contacts = [contact_id]
    if initial is not None:  # items registered before interactions existed have none
        try:
            pages = dynamodb.get_paginator("query").paginate(
                TableName=table,
                IndexName=INTERACTION_INDEX,
                KeyConditionExpression="initial_contact_id = :initial",
                ExpressionAttributeValues={":initial": {"S": initial}},
            )
            found = [item["contact_id"]["S"] for page in pages for item in page["Items"]]
        except (ClientError, BotoCoreError) as exc:
            raise ViewingError(
                f"cannot list the recordings of interaction {initial} in table {table} "
                f"(index {INTERACTION_INDEX}): {exc}"
            ) from exc
        # The index may lag the table by a moment: the contact asked for is always there.
        contacts = list(dict.fromkeys([*found, contact_id]))
    items = {contact_id: asked} | _batch_get(
        dynamodb, table, [c for c in contacts if c != contact_id]
    )
    order = {contact: n for n, contact in enumerate(contacts)}
    recordings = [r for c in contacts if c in items for r in Recording.all_from_item(items[c])]
    return sorted(
        recordings, key=lambda r: (r.start is None, r.start or "", order[r.contact_id], r.index)
    )


def _load_item(dynamodb: DynamoDBClient, table: str, contact_id: str) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        got = dynamodb.get_item(
            TableName=table, Key={"contact_id": {"S": contact_id}}, ConsistentRead=True
        )
    except (ClientError, BotoCoreError) as exc:
        raise ViewingError(f"cannot read contact {contact_id} from table {table}: {exc}") from exc
    if "Item" not in got:
        raise ViewingError(f"no recording of contact {contact_id} in table {table}")
    return _deserialize(got["Item"])


def _batch_get(dynamodb: DynamoDBClient, table: str, contacts: list[str]) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    items: dict[str, Any] = {}
    for n in range(0, len(contacts), BATCH_GET_KEYS):
        keys: list[Any] = [{"contact_id": {"S": c}} for c in contacts[n : n + BATCH_GET_KEYS]]
        while keys:
            try:
                got = dynamodb.batch_get_item(
                    RequestItems={table: {"Keys": keys, "ConsistentRead": True}}
                )
            except (ClientError, BotoCoreError) as exc:
                raise ViewingError(f"cannot read the interaction's recordings: {exc}") from exc
            for raw in got.get("Responses", {}).get(table, []):
                item = _deserialize(raw)
                items[str(item["contact_id"])] = item
            unprocessed: dict[str, Any] = dict(got.get("UnprocessedKeys") or {})
            keys = list(unprocessed.get(table, {}).get("Keys", []))
    return items


def _deserialize(raw: Mapping[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer  # noqa: PLC0415 - see the imports

    deserializer = TypeDeserializer()
    plain: dict[str, Any] = _plain({k: deserializer.deserialize(v) for k, v in raw.items()})
    return plain


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def presigned_links(s3: S3Client, bucket: str, recording: Recording, expires: int) -> list[Link]:
    """Presigned GET links for each WAV and image of the recording, stereo first."""
    if not 1 <= expires <= MAX_EXPIRES_SECONDS:
        raise ViewingError(f"expected --expires from 1 to {MAX_EXPIRES_SECONDS}, found {expires}")
    images = recording.images()
    kinds = [k for k in KINDS if k in recording.keys or k in images]
    kinds += sorted((set(recording.keys) | set(images)) - set(kinds))
    links = []
    for kind in kinds:
        for media, key in (("wav", recording.keys.get(kind)), ("png", images.get(kind))):
            if key is None:
                continue
            url = s3.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires
            )
            links.append(Link(kind, media, key, url))
    return links


def review_page(recording: Recording, links: list[Link], *, expires_at: datetime | None) -> str:
    """A self-contained HTML page: metadata, then an audio player and image per recording.

    `expires_at` is when presigned links expire (None for links that do not, such as files).
    """
    body = f"""<h1>Contact {html.escape(recording.contact_id)}</h1>
{_recording_body(recording, links, expires_at=expires_at, heading="h2")}"""
    return _page(f"Contact {recording.contact_id}", body)


def interaction_page(
    recordings: list[tuple[Recording, list[Link]]], *, expires_at: datetime | None
) -> str:
    """One page for several recordings of an interaction, in the order given."""
    if len(recordings) == 1:
        return review_page(*recordings[0], expires_at=expires_at)
    e = html.escape
    first = recordings[0][0]
    interaction = first.initial_contact_id or first.contact_id
    articles = []
    for recording, links in recordings:
        title = f"Contact {recording.contact_id}"
        if recording.index:
            title += f", recording {recording.index + 1}"
        inner = _recording_body(recording, links, expires_at=expires_at, heading="h3")
        articles.append(f"<article><h2>{e(title)}</h2>{inner}</article>")
    body = f"<h1>Interaction {e(interaction)}</h1>\n" + "\n".join(articles)
    return _page(f"Interaction {interaction}", body)


def _recording_body(
    recording: Recording, links: list[Link], *, expires_at: datetime | None, heading: str
) -> str:
    e = html.escape
    duration = (
        "unknown" if recording.duration_seconds is None else f"{recording.duration_seconds:,.1f} s"
    )
    rows = [
        ("Contact", recording.contact_id),
        ("Status", recording.status or "unknown"),
        ("Start (UTC)", recording.start or "unknown"),
        ("Duration", duration),
        (
            "Sample rate",
            "unknown" if recording.sample_rate is None else f"{recording.sample_rate} Hz",
        ),
    ]
    if recording.previous_contact_id is not None:
        rows.append(("Transferred from", recording.previous_contact_id))
    if expires_at is not None:
        rows.append(("Links expire", f"{expires_at:%Y-%m-%d %H:%M:%S} UTC"))
    sections = []
    for kind in dict.fromkeys(link.kind for link in links):
        parts = [f"<{heading}>{e(KIND_TITLES.get(kind, kind))}</{heading}>"]
        for link in (x for x in links if x.kind == kind):
            if link.media == "wav":
                parts.append(
                    f'<audio controls preload="metadata" data-kind="{e(kind)}" '
                    f'src="{e(link.url)}"></audio>'
                    f'<p class="key">{e(link.key)}</p>'
                )
            else:
                parts.append(
                    f'<img data-kind="{e(kind)}" src="{e(link.url)}" '
                    f'alt="spectrogram of the {e(kind)} recording">'
                )
        sections.append(f"<section>{''.join(parts)}</section>")
    table = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    return f"""<table>{table}</table>
{"".join(sections) or "<p>No recordings or spectrograms on this contact's item.</p>"}"""


def _page(title: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1600px; }}
table {{ border-collapse: collapse; margin-bottom: 1rem; }}
th, td {{ text-align: left; padding: 0.2rem 1rem 0.2rem 0; }}
th {{ color: #666; font-weight: normal; }}
section {{ margin: 1.5rem 0; border-top: 1px solid #ddd; }}
article {{ margin: 2rem 0; }}
audio {{ width: 100%; max-width: 1532px; margin: 0.5rem 0; }}
img {{ max-width: 100%; height: auto; display: block; }}
.key {{ color: #888; font-size: 0.8rem; margin: 0; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""


# ------------------------------------------------------------------ command line


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `urls` and `view` to the callrec command line."""
    urls = subparsers.add_parser(
        "urls", help="presigned URLs of a contact's recordings and spectrograms"
    )
    _add_common(urls)
    urls.set_defaults(handler=_urls)
    view = subparsers.add_parser(
        "view", help="write an HTML page to listen to and look at a contact's recordings"
    )
    _add_common(view)
    view.add_argument(
        "--output", type=Path, help="where to write the page (default: callrec-CONTACT_ID.html)"
    )
    view.set_defaults(handler=_view)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("contact_id", metavar="CONTACT_ID")
    parser.add_argument(
        "--expires",
        type=int,
        default=DEFAULT_EXPIRES_SECONDS,
        metavar="SECONDS",
        help=f"link lifetime (default {DEFAULT_EXPIRES_SECONDS}, at most {MAX_EXPIRES_SECONDS})",
    )
    parser.add_argument(
        "--stack", help="deployed stack to take names from (default: samconfig.toml's stack_name)"
    )
    parser.add_argument("--table", help="recordings table (with --bucket: no stack lookup)")
    parser.add_argument("--bucket", help="recordings bucket (with --table: no stack lookup)")
    parser.add_argument("--endpoint-url", help="AWS endpoint, e.g. the local stack's")
    parser.add_argument("--region", help="AWS region (default: the SDK's)")


def _target(args: argparse.Namespace) -> Target:
    if args.table and args.bucket:
        return Target(args.table, args.bucket, args.endpoint_url, args.region)
    if args.table or args.bucket:
        raise ViewingError("give both --table and --bucket, or neither (to use a stack)")
    stack = chosen_stack(args.stack, alternative="--table and --bucket")
    return stack_target(stack, region=args.region, endpoint_url=args.endpoint_url)


def chosen_stack(given: str | None, *, alternative: str) -> str:
    """The stack given on the command line, else samconfig.toml's; a ViewingError naming
    `alternative` (the options that name the resources outright) when there is neither."""
    stack = given or samconfig_stack_name()
    if stack is None:
        raise ViewingError(
            f"no stack: give --stack NAME, or {alternative}, or deploy once "
            "(samconfig.toml's [default.deploy.parameters] stack_name)"
        )
    return stack


def _links(args: argparse.Namespace) -> list[tuple[Recording, list[Link]]]:
    import boto3  # noqa: PLC0415 - see the imports

    if not 1 <= args.expires <= MAX_EXPIRES_SECONDS:
        raise ViewingError(
            f"expected --expires from 1 to {MAX_EXPIRES_SECONDS}, found {args.expires}"
        )
    target = _target(args)
    # A session of its own: credentials and region as the environment has them now.
    session = boto3.session.Session(region_name=target.region)
    dynamodb = session.client("dynamodb", endpoint_url=target.endpoint_url)
    s3 = session.client(
        "s3",
        endpoint_url=target.endpoint_url,
        config=_client_config(target.endpoint_url),
    )
    return [
        (recording, presigned_links(s3, target.bucket, recording, args.expires))
        for recording in load_interaction(dynamodb, target.table, args.contact_id)
    ]


def _urls(args: argparse.Namespace) -> int:
    try:
        recordings = _links(args)
    except ViewingError as exc:
        print(f"callrec urls: {exc}", file=sys.stderr)
        return 2
    for recording, links in recordings:
        if len(recordings) > 1:
            print(
                f"# contact {recording.contact_id} recording {recording.index + 1} "
                f"start {recording.start or 'unknown'} status {recording.status or 'unknown'}"
            )
        for link in links:
            print(f"{link.kind}\t{link.media}\t{link.url}")
    return 0


def _view(args: argparse.Namespace) -> int:
    try:
        recordings = _links(args)
    except ViewingError as exc:
        print(f"callrec view: {exc}", file=sys.stderr)
        return 2
    expires_at = datetime.now(UTC) + timedelta(seconds=args.expires)
    path: Path = args.output or Path(f"callrec-{args.contact_id}.html")
    path.write_text(interaction_page(recordings, expires_at=expires_at), encoding="utf-8")
    print(path.resolve())
    return 0
