"""DescribeContact: asking Amazon Connect whether a contact has disconnected.

The recorder asks when its stream is silent and no contact event has said the call ended
(contacts.py: `AskSchedule` says when). The request is
`GET /contacts/{InstanceId}/{ContactId}`
(https://docs.aws.amazon.com/connect/latest/APIReference/API_DescribeContact.html); the IAM
action `connect:DescribeContact` is granted on the instance's contacts,
`arn:${Partition}:connect:${Region}:${Account}:instance/${InstanceId}/contact/*` (resource type
"contact" in https://docs.aws.amazon.com/service-authorization/latest/reference/
list_amazonconnect.html).

Errors are read into two kinds, because the recorder does different things with them:

- `ConnectThrottled`: ThrottlingException (HTTP 429; "Throttling errors in Amazon Connect
  public API(s) are defined by HTTP status code 429. This HTTP status code can be retried",
  https://docs.aws.amazon.com/connect/latest/APIReference/best-practices-connect-apis.html) and
  the service's own 5xx: ask again later, further apart.
- `ConnectUnavailable`: anything that asking again will not change (access denied, no such
  instance or contact, a contact older than Connect keeps, an endpoint that does not answer):
  the recording falls back on the stream's idle time, and its item says so.

The client makes one attempt per question (botocore's own retries would multiply the account's
request rate exactly when Connect is asking for less); the recorder's schedule is the retry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from callrec.contacts import ContactState, contact_state
from callrec.errors import CallrecError
from callrec.events import INSTANCE_ARN

if TYPE_CHECKING:
    from mypy_boto3_connect import ConnectClient

# DescribeContact answers from a lookup: a slow answer means Connect is not answering.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    connect_timeout=2,
    read_timeout=3,
)
THROTTLED_CODES = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "InternalServiceException"}
)


class ConnectUnavailable(CallrecError):
    """Connect cannot be asked about this contact (permissions, unknown contact, no answer)."""


class ConnectThrottled(CallrecError):
    """Connect asked us to slow down (or failed for now): ask again later."""


class ContactDirectory:
    """DescribeContact for the contacts of one instance."""

    def __init__(self, instance_arn: str, client: ConnectClient | None = None) -> None:
        match = INSTANCE_ARN.match(instance_arn)
        if match is None:
            raise ValueError(f"expected a Connect instance ARN, found {instance_arn!r}")
        self.instance_id = instance_arn.rsplit("/", 1)[1]
        if client is None:
            import boto3  # noqa: PLC0415 - only a directory that asks needs boto3 loaded

            client = boto3.client("connect", config=CLIENT_CONFIG)
        self._client = client

    def describe(self, contact_id: str) -> ContactState:
        """What Connect says of the contact now."""
        try:
            response = self._client.describe_contact(
                InstanceId=self.instance_id, ContactId=contact_id
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            message = f"DescribeContact {contact_id}: {code or status}: {error.get('Message', '')}"
            if code in THROTTLED_CODES or status == 429 or status >= 500:
                raise ConnectThrottled(message) from exc
            raise ConnectUnavailable(message) from exc
        except BotoCoreError as exc:  # no endpoint, timeout, no credentials
            raise ConnectUnavailable(f"DescribeContact {contact_id}: {exc}") from exc
        return contact_state(response["Contact"])
