"""DescribeContact through a real botocore client (Stubber): the request, and errors read as
"ask again later" or "Connect cannot be asked"."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from callrec.connect import CLIENT_CONFIG, ConnectThrottled, ConnectUnavailable, ContactDirectory

INSTANCE_ID = "9308c2a1-9bc6-4cea-8290-6c0b4a6d38fa"
INSTANCE = f"arn:aws:connect:us-east-1:123456789012:instance/{INSTANCE_ID}"
CONTACT = "5ca32fbd-8f92-46af-92a5-6b0f970f0efe"


@pytest.fixture
def stubbed() -> tuple[ContactDirectory, Stubber]:
    client = boto3.client(
        "connect",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=CLIENT_CONFIG,
    )
    return ContactDirectory(INSTANCE, client), Stubber(client)


def test_asks_for_the_contact_of_the_instance(stubbed: tuple[ContactDirectory, Stubber]) -> None:
    directory, stub = stubbed
    ended = datetime(2026, 7, 1, 13, 9, 2, tzinfo=UTC)
    stub.add_response(
        "describe_contact",
        {"Contact": {"Id": CONTACT, "DisconnectTimestamp": ended}},
        {"InstanceId": INSTANCE_ID, "ContactId": CONTACT},
    )

    with stub:
        state = directory.describe(CONTACT)

    assert state.disconnected_at_ms == int(ended.timestamp() * 1000)
    stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("ThrottlingException", 429, ConnectThrottled),
        ("InternalServiceException", 500, ConnectThrottled),
        ("AccessDeniedException", 403, ConnectUnavailable),
        ("ResourceNotFoundException", 404, ConnectUnavailable),
        ("InvalidParameterException", 400, ConnectUnavailable),
    ],
)
def test_errors_say_whether_asking_again_can_help(
    stubbed: tuple[ContactDirectory, Stubber], code: str, status: int, kind: type[Exception]
) -> None:
    directory, stub = stubbed
    stub.add_client_error("describe_contact", code, "no", http_status_code=status)

    with stub, pytest.raises(kind, match=f"DescribeContact {CONTACT}: {code}"):
        directory.describe(CONTACT)


def test_a_directory_needs_an_instance_arn() -> None:
    with pytest.raises(ValueError, match="expected a Connect instance ARN"):
        ContactDirectory("9308c2a1-9bc6-4cea-8290-6c0b4a6d38fa")


def test_a_single_attempt_per_question() -> None:
    # the recorder's schedule is the retry: botocore's would multiply the request rate
    assert CLIENT_CONFIG.retries == {"mode": "standard", "total_max_attempts": 1}
