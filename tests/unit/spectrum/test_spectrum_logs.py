"""The spectrum handler's log lines: each carries the contact of the object it is about."""

from __future__ import annotations

import copy
from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError

from callrec.spectrogram_store import StoreUnavailable
from tests.support import FakeLambdaContext, load_event, load_function, log_lines, log_to_stdout

FIRST = "5b3f0c1e-0d2a-4c8e-9a1b-1f2e3d4c5b6a"  # events/s3-wav-created.json
SECOND = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"


class S3:
    """S3 as a fake: the first contact's recording is gone, the second's S3 is throttling."""

    def get_object(self, **kwargs: Any) -> Any:
        code, status = ("NoSuchKey", 404) if FIRST in kwargs["Key"] else ("SlowDown", 503)
        error = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
        raise ClientError(error, "GetObject")  # type: ignore[arg-type]


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for name, value in {
        "BUCKET_NAME": "callrec-recordings-123456789012-us-east-1",
        "TABLE_NAME": "recordings",
        "RECORDINGS_PREFIX": "recordings/",
        "SPECTROGRAMS_PREFIX": "spectrograms/",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "CallRecorder",
    }.items():
        monkeypatch.setenv(name, value)
    module = load_function("spectrum")
    log_to_stdout(module, monkeypatch)
    return module


def test_each_line_carries_the_contact_of_its_object(
    app: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given one event with two contacts' recordings
    event = load_event("s3-wav-created.json")
    second = copy.deepcopy(event["Records"][0])
    obj = second["s3"]["object"]
    obj["key"] = obj["key"].replace(FIRST, SECOND)
    event["Records"].append(second)

    # When the first is gone and the second fails transiently
    with pytest.raises(StoreUnavailable):
        app.lambda_handler(event, FakeLambdaContext(), s3=S3(), dynamodb=object())

    # Then every line names the contact its object belongs to
    lines = log_lines(capsys.readouterr().out)
    assert [(line["level"], line.get("contact_id")) for line in lines] == [
        ("WARNING", FIRST),
        ("ERROR", SECOND),
    ]
    assert lines[1]["message"] == "storage failed: raised for a retry"
