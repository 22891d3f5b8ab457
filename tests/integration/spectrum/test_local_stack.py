"""The real spectrum function on the local stack: a WAV written under recordings/ is rendered
through the emulated S3 notification, and `callrec urls` finds it with the stack's names."""

from __future__ import annotations

import urllib.request
import uuid

import pytest

from callrec import cli

# Until tests/conftest.py registers callrec_local.pytest_plugin:
from callrec_local.pytest_plugin import (  # noqa: F401
    LocalStackFactory,
    local_stack_factory,
)
from callrec_local.stack import LocalStack
from tests.unit.spectrum.wavs import RATE, call_wav

SPECTRUM = "SpectrumFunction"


@pytest.fixture
def stack(local_stack_factory: LocalStackFactory) -> LocalStack:  # noqa: F811
    # No schedule: the recorder's sweep has nothing to do with this test.
    return local_stack_factory(schedules=False)


def test_a_wav_under_recordings_is_rendered_and_reachable_through_callrec_urls(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the recorder's item and its stereo WAV, written to the stack's bucket
    contact_id = str(uuid.uuid4())
    key = f"recordings/2026/11/24/{contact_id}/20261124T054703Z-stereo.wav"
    image = key.replace("recordings/", "spectrograms/").replace(".wav", ".png")
    s3, dynamodb = stack.s3(), stack.dynamodb()
    dynamodb.put_item(
        TableName=stack.table_name,
        Item={
            "contact_id": {"S": contact_id},
            "status": {"S": "COMPLETED"},
            "start": {"S": "2026-11-24T05:47:03Z"},
            "duration_seconds": {"N": "3"},
            "sample_rate": {"N": str(RATE)},
            "keys": {"M": {"stereo": {"S": key}}},
        },
    )
    s3.put_object(Bucket=stack.bucket_name, Key=key, Body=call_wav(3.0))

    # When S3 notifies the spectrum function (the real handler, in its own process)
    invocations = stack.wait_for(
        lambda invs: any(i.source == "s3" and i.ended_at for i in invs), timeout_s=60
    )

    # Then it succeeded, the PNG is there and its key is on the item
    [invocation] = [i for i in invocations if i.source == "s3"]
    assert invocation.ok, (invocation.error, invocation.logs)
    assert invocation.function_name == stack.function_name(SPECTRUM)
    assert invocation.result["results"][0]["outcome"] == "rendered"
    got = s3.get_object(Bucket=stack.bucket_name, Key=image)
    assert got["ContentType"] == "image/png"
    item = dynamodb.get_item(TableName=stack.table_name, Key={"contact_id": {"S": contact_id}})
    assert item["Item"]["spectrogram_keys"] == {"SS": [image]}

    # And callrec urls, given the stack's names and endpoint, signs links that download
    for name, value in stack.environment.items():
        monkeypatch.setenv(name, value)
    status = cli.main(
        [
            "urls",
            contact_id,
            "--table",
            stack.table_name,
            "--bucket",
            stack.bucket_name,
            "--endpoint-url",
            stack.moto_endpoint,
        ]
    )
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert status == 0
    assert [(kind, media) for kind, media, _ in rows] == [("stereo", "wav"), ("stereo", "png")]
    with urllib.request.urlopen(rows[1][2], timeout=10) as response:
        assert response.read()[:8] == b"\x89PNG\r\n\x1a\n"
