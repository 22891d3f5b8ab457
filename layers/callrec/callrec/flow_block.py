"""How long the contact flow waits for the contact-flow function: the Invoke block's timeout.

Amazon Connect's "Invoke AWS Lambda function" block waits for the function as long as its
Timeout says: "You can enter maximum of 8 seconds for Synchronous mode" and "When a Lambda
invocation returns an error, Amazon Connect retries up to three times, for maximum until timeout
specified. At that point, the contact is routed down the Error branch."
(https://docs.aws.amazon.com/connect/latest/adminguide/invoke-lambda-function-block.html). Its
default is 3 seconds: "デフォルトの Timeout 設定は 3 秒です。最大 Timeout 設定は 8 秒です。" ("The
default Timeout setting is 3 seconds. The maximum Timeout setting is 8 seconds.",
https://repost.aws/ja/knowledge-center/connect-lambda-function-failures).

Connect does not tell the function the block's timeout: the event it documents carries
Details.ContactData, Details.Parameters and Name, nothing about the block
(https://docs.aws.amazon.com/lambda/latest/dg/services-connect.html). So the function assumes
the default, 3 seconds, unless the flow passes the block's timeout as the function input
parameter `InvocationTimeLimitSeconds` (the name Connect's flow language gives the block's
timeout: "The number of seconds to wait for a response from the AWS Lambda function. Must be
greater than 0, no larger than 8, and an integer.",
https://docs.aws.amazon.com/connect/latest/APIReference/interactions-invokelambdafunction.html).

The function's own work (its retries of the Kinesis put) must end before the block gives up,
or Connect has taken the Error branch while the function still tries. This module turns the
block's timeout into that deadline. It does not talk to AWS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from callrec.events import ContactFlowEventError

TIMEOUT_PARAMETER = "InvocationTimeLimitSeconds"
DEFAULT_TIMEOUT_S = 3
MAX_TIMEOUT_S = 8
# Connect's clock starts before the handler does: the Invoke request reaches Lambda and Lambda
# hands the event over. Assumed, not documented; a cold start's initialisation also runs on
# Connect's clock, and the handler cannot see it (the README recommends the 8-second timeout).
INVOKE_OVERHEAD_S = 0.5
# Left at the end for logging, metrics and the response to travel back to Connect.
RESPONSE_MARGIN_S = 0.5

_WHOLE_SECONDS = re.compile(r"^\d{1,2}$")


@dataclass(frozen=True, slots=True)
class BlockTimeout:
    """The Invoke AWS Lambda function block's timeout, and whether the flow said so."""

    seconds: int = DEFAULT_TIMEOUT_S
    from_flow: bool = False

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> BlockTimeout:
        """The flow's `InvocationTimeLimitSeconds` parameter, else Connect's default (3 s).

        Raises `ContactFlowEventError` when the parameter is there but is not what the block
        accepts, a whole number of seconds from 1 to 8.
        """
        details = event.get("Details")
        parameters = details.get("Parameters") if isinstance(details, Mapping) else None
        raw = parameters.get(TIMEOUT_PARAMETER) if isinstance(parameters, Mapping) else None
        if raw is None:
            return cls()
        text = raw.strip() if isinstance(raw, str) else ""
        if not _WHOLE_SECONDS.match(text) or not 1 <= int(text) <= MAX_TIMEOUT_S:
            raise ContactFlowEventError(
                f"Details.Parameters.{TIMEOUT_PARAMETER}: expected the Invoke AWS Lambda "
                f"function block's timeout, a whole number of seconds from 1 to "
                f"{MAX_TIMEOUT_S}, found {raw!r}"
            )
        return cls(seconds=int(text), from_flow=True)

    def deadline(self, *, now: float, lambda_remaining_s: float) -> float:
        """When the function's work must be done, on the clock `now` was read from.

        The earlier of the block's end and the function's own (Lambda's remaining time),
        less the response margin; the block's end counts from Connect's invoke, an assumed
        `INVOKE_OVERHEAD_S` before the handler started.
        """
        block_left = self.seconds - INVOKE_OVERHEAD_S
        return now + min(block_left, lambda_remaining_s) - RESPONSE_MARGIN_S
