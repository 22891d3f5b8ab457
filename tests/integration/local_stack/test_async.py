"""Asynchronous invocations through the Lambda Invoke API, with Lambda's retries and destination."""

from __future__ import annotations

import base64
import json

import pytest
from botocore.exceptions import ClientError

from callrec_local.lambda_runtime import Invocation
from callrec_local.stack import LocalStack

RECORDER = "RecorderFunction"


def attempts_of(invocations: list[Invocation], request_id: str) -> list[Invocation]:
    return [i for i in invocations if i.request_id == request_id]


def test_event_invocation_through_boto3_is_retried_after_a_failure(stack: LocalStack) -> None:
    # Given an event that fails on its first attempt
    lambda_client = stack.lambda_client()

    # When it is invoked asynchronously through the Lambda API
    response = lambda_client.invoke(
        FunctionName=stack.function_name(RECORDER),
        InvocationType="Event",
        Payload=json.dumps({"id": "retry-once", "fail_times": 1}).encode(),
    )
    request_id = response["ResponseMetadata"]["RequestId"]
    invocations = stack.wait_for(
        lambda invs: any(i.ok for i in attempts_of(invs, request_id)), timeout_s=20
    )

    # Then Lambda accepted it, the first attempt failed and the retry, same request id, succeeded
    assert response["StatusCode"] == 202
    first, second = attempts_of(invocations, request_id)
    assert (first.attempt, first.error and first.error["errorType"]) == (1, "RuntimeError")
    assert (second.attempt, second.ok) == (2, True)
    assert first.invocation_type == second.invocation_type == "Event"
    assert second.event == {"id": "retry-once", "fail_times": 1}


def test_event_invocation_failing_every_retry_goes_to_the_failure_queue(stack: LocalStack) -> None:
    # Given an event that always fails
    retries = stack.function(RECORDER).async_config.maximum_retry_attempts
    event = {"id": "always", "fail_times": 99}

    # When it has been invoked and retried
    request_id = stack.invoke_async(RECORDER, event)
    stack.wait_for(lambda invs: len(attempts_of(invs, request_id)) == 1 + retries, timeout_s=20)
    (record,) = stack.drain_queue("RecorderFailureQueue", wait_s=2)

    # Then the failure queue holds Lambda's invocation record
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1 + retries
    assert record["requestPayload"] == event
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "RuntimeError"


def test_a_handler_hands_off_to_itself_through_its_own_boto3_client(stack: LocalStack) -> None:
    # Given a recorder invocation that hands off twice through boto3's lambda client
    stack.invoke_async(RECORDER, {"handoff": 2})

    # When the chain has run (each link ends after it has handed off: the last may end first)
    invocations = stack.wait_for(
        lambda invs: {i.event["handoff"] for i in invs if i.ok} == {0, 1, 2}, timeout_s=20
    )

    # Then each hand-off arrived through the Lambda API as a new asynchronous invocation
    chain = sorted(
        ((i.event["handoff"], i.source, i.invocation_type) for i in invocations),
        reverse=True,
    )
    assert chain == [(2, "direct", "Event"), (1, "api", "Event"), (0, "api", "Event")]


def test_request_response_reports_function_errors_as_lambda_does(stack: LocalStack) -> None:
    response = stack.lambda_client().invoke(
        FunctionName=stack.function_name(RECORDER),
        Payload=json.dumps({"id": "sync", "fail_times": 1}).encode(),
        LogType="Tail",
    )

    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    payload = json.loads(response["Payload"].read())
    assert payload["errorType"] == "RuntimeError"
    assert payload["errorMessage"] == "failing attempt 1 of sync"
    assert "RuntimeError" in base64.b64decode(response["LogResult"]).decode()


def test_unknown_functions_are_not_found(stack: LocalStack) -> None:
    with pytest.raises(ClientError) as raised:
        stack.lambda_client().invoke(FunctionName="no-such-function", InvocationType="Event")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
