"""`callrec urls` and `callrec view` against moto: names from options or a stack's Outputs."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from callrec import cli, viewing
from tests.integration.spectrum.contact import (
    Contact,
    make_bucket_and_table,
    record_contact,
    remove_bucket_and_table,
)


@pytest.fixture
def contact(aws_env: str) -> Iterator[Contact]:
    s3, dynamodb = boto3.session.Session().client("s3"), boto3.session.Session().client("dynamodb")
    bucket, table = make_bucket_and_table(s3, dynamodb)
    try:
        yield record_contact(s3, dynamodb, bucket, table)
    finally:
        remove_bucket_and_table(s3, dynamodb, bucket, table)


def fetch(url: str) -> bytes:
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


def explicit(contact: Contact, endpoint: str) -> list[str]:
    return ["--table", contact.table, "--bucket", contact.bucket, "--endpoint-url", endpoint]


def test_urls_lists_every_wav_and_image_and_each_downloads(
    contact: Contact, aws_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When urls is run with the names given outright (as for the local stack)
    status, out, _ = run(capsys, "urls", contact.contact_id, *explicit(contact, aws_env))

    # Then it lists stereo, customer, agent: a WAV and a PNG each, signed for an hour
    assert status == 0
    rows = [line.split("\t") for line in out.splitlines()]
    assert [(kind, media) for kind, media, _ in rows] == [
        (kind, media) for kind in ("stereo", "cu", "op") for media in ("wav", "png")
    ]
    s3 = boto3.session.Session().client("s3")
    for kind, media, url in rows:
        key = contact.keys[kind] if media == "wav" else contact.images[kind]
        assert "X-Amz-Expires=3600" in url
        expected = s3.get_object(Bucket=contact.bucket, Key=key)["Body"].read()
        assert fetch(url) == expected


@pytest.mark.parametrize("expires", ["0", "43201", "604800"])
def test_expiry_beyond_the_maximum_is_refused(
    contact: Contact, aws_env: str, capsys: pytest.CaptureFixture[str], expires: str
) -> None:
    status, out, err = run(
        capsys, "urls", contact.contact_id, "--expires", expires, *explicit(contact, aws_env)
    )

    assert status == 2
    assert out == ""
    assert f"expected --expires from 1 to {viewing.MAX_EXPIRES_SECONDS}" in err


def test_an_unknown_contact_is_an_error_not_a_traceback(
    contact: Contact, aws_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "urls", "no-such-contact", *explicit(contact, aws_env))

    assert status == 2
    assert "no recording of contact no-such-contact" in err


def test_names_come_from_the_stack_outputs(
    contact: Contact, aws_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack whose Outputs name the table and the bucket, as template.yaml's do
    template: dict[str, Any] = {
        "Resources": {"Nothing": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "RecordingsTableName": {"Value": contact.table},
            "RecordingsBucketName": {"Value": contact.bucket},
        },
    }
    name = f"callrec-{contact.table[-8:]}"
    cloudformation = boto3.session.Session().client("cloudformation")
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))

    # When urls is run with --stack, Then the links are the same as with explicit names
    try:
        status, out, err = run(capsys, "urls", contact.contact_id, "--stack", name)
    finally:
        cloudformation.delete_stack(StackName=name)
    assert status == 0, err
    assert len(out.splitlines()) == 6
    assert f"/{contact.bucket}/" in out


def test_the_stack_name_defaults_to_samconfig(tmp_path: Path) -> None:
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(
        'version = 0.1\n[default.deploy.parameters]\nstack_name = "callrec-prod"\n'
        'region = "eu-west-1"\n'
    )

    assert viewing.samconfig_stack_name(samconfig) == "callrec-prod"
    assert viewing.samconfig_stack_name(tmp_path / "absent.toml") is None


def test_view_writes_a_page_with_a_player_and_an_image_per_recording(
    contact: Contact, aws_env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # When view is run
    page = tmp_path / "review.html"
    status, out, _ = run(
        capsys, "view", contact.contact_id, "--output", str(page), *explicit(contact, aws_env)
    )

    # Then it prints the page's path; the page has three players and three images that load
    assert status == 0
    assert out.strip() == str(page.resolve())
    text = page.read_text()
    audio = re.findall(r'<audio [^>]*src="([^"]+)"', text)
    images = re.findall(r'<img [^>]*src="([^"]+)"', text)
    assert len(audio) == len(images) == 3
    assert contact.contact_id in text
    assert "2026-11-24T05:47:03Z" in text
    assert "<script" not in text
    for url in images:
        assert fetch(url.replace("&amp;", "&"))[:8] == b"\x89PNG\r\n\x1a\n"
    for url in audio:
        assert fetch(url.replace("&amp;", "&"))[:4] == b"RIFF"
