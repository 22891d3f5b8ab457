"""The stack's resources, seen through real boto3 clients, are the ones template.yaml declares."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from moto.dynamodb.parsing.executors import SetExecutor, UpdateExpressionExecutor

from callrec_local.stack import LocalStack
from callrec_local.template import TEMPLATE_PATH, load_template

TEMPLATE = load_template(TEMPLATE_PATH)
StackMaker = Callable[..., LocalStack]


def resources_of(kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in TEMPLATE["Resources"].items()
        if resource["Type"] == kind
    }


def test_stream_as_declared(stack: LocalStack) -> None:
    (declared,) = resources_of("AWS::Kinesis::Stream").values()

    summary = stack.kinesis().describe_stream_summary(StreamName=stack.stream_name)[
        "StreamDescriptionSummary"
    ]

    assert summary["StreamName"] == stack.outputs["StartRecordStreamName"]
    assert summary["StreamARN"] == stack.outputs["StartRecordStreamArn"]
    assert summary["OpenShardCount"] == int(TEMPLATE["Parameters"]["ShardCount"]["Default"])
    assert summary["RetentionPeriodHours"] == declared["RetentionPeriodHours"]
    assert summary["EncryptionType"] == declared["StreamEncryption"]["EncryptionType"]


def test_table_keys_index_and_ttl_as_declared(stack: LocalStack) -> None:
    (declared,) = resources_of("AWS::DynamoDB::Table").values()
    dynamodb = stack.dynamodb()

    table = dynamodb.describe_table(TableName=stack.table_name)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=stack.table_name)["TimeToLiveDescription"]

    assert table["TableName"] == stack.outputs["RecordingsTableName"]
    assert table["KeySchema"] == declared["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(
        declared["AttributeDefinitions"], key=str
    )
    assert table["BillingModeSummary"]["BillingMode"] == declared["BillingMode"]
    indexes = {
        index["IndexName"]: (index["KeySchema"], index["Projection"])
        for index in table["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        index["IndexName"]: (index["KeySchema"], index["Projection"])
        for index in declared["GlobalSecondaryIndexes"]
    }
    assert ttl["TimeToLiveStatus"] == "ENABLED"
    assert ttl["AttributeName"] == declared["TimeToLiveSpecification"]["AttributeName"]


def test_bucket_named_versioned_and_notifying_as_declared(stack: LocalStack) -> None:
    (spectrum,) = [
        props
        for props in resources_of("AWS::Serverless::Function").values()
        if any(event["Type"] == "S3" for event in props.get("Events", {}).values())
    ]
    (s3_event,) = [e for e in spectrum["Events"].values() if e["Type"] == "S3"]
    s3 = stack.s3()

    versioning = s3.get_bucket_versioning(Bucket=stack.bucket_name)
    notification = s3.get_bucket_notification_configuration(Bucket=stack.bucket_name)

    assert stack.bucket_name == stack.outputs["RecordingsBucketName"]
    stack_uuid = stack.account.stack_id.rsplit("/", 1)[1]
    assert stack.bucket_name == (
        f"callrec-{stack_uuid.split('-')[0]}-{stack.account.account_id}-us-east-1"
    )
    assert versioning["Status"] == "Enabled"
    (configuration,) = notification["QueueConfigurations"]
    assert configuration["Events"] == [s3_event["Properties"]["Events"]]
    assert {
        (rule["Name"].lower(), rule["Value"])
        for rule in configuration["Filter"]["Key"]["FilterRules"]
    } == {
        (rule["Name"], rule["Value"]) for rule in s3_event["Properties"]["Filter"]["S3Key"]["Rules"]
    }


def test_failure_queues_as_declared(stack: LocalStack) -> None:
    sqs = stack.sqs()
    for logical_id, declared in resources_of("AWS::SQS::Queue").items():
        attributes = sqs.get_queue_attributes(
            QueueUrl=stack.queue_url(logical_id), AttributeNames=["All"]
        )["Attributes"]
        assert attributes["MessageRetentionPeriod"] == str(declared["MessageRetentionPeriod"])
    assert stack.outputs["RecorderFailureQueueUrl"] == stack.queue_url("RecorderFailureQueue")


def test_handlers_get_template_variables_and_local_endpoints_only(make_stack: StackMaker) -> None:
    # Given a stack with a template parameter below the template's minimum (tests pass them as given)
    stack = make_stack(parameters={"RecordingIdleSeconds": "3"})

    # When the recorder runs
    invocation = stack.invoke("RecorderFunction", {})

    # Then it sees the template's variables resolved to this stack, and endpoints through
    # botocore's standard variables
    assert invocation.ok, invocation.error
    env = invocation.result["environment"]
    assert env["TABLE_NAME"] == stack.table_name
    assert env["BUCKET_NAME"] == stack.bucket_name
    assert env["RECORDER_FUNCTION_NAME"] == stack.function_name("RecorderFunction")
    assert env["POWERTOOLS_SERVICE_NAME"] == "recorder"
    assert env["RECORDING_IDLE_SECONDS"] == "3"  # unscaled by the stack's time_scale
    assert env["AWS_ENDPOINT_URL"] == stack.moto_endpoint
    assert env["AWS_ENDPOINT_URL_LAMBDA"] == stack.lambda_endpoint
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == stack.function_name("RecorderFunction")
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"


def test_a_read_never_sees_half_an_update_nor_two_conditional_winners(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given moto (in this process) made slow to apply each update and each of its actions,
    # which widens the windows where an unserialized server shows half an update or lets two
    # conditional updates pass their condition
    slow_update = UpdateExpressionExecutor.execute
    slow_set = SetExecutor.execute

    def execute_update(self: Any, node: Any = None) -> None:
        if node is None:
            time.sleep(0.002)
        slow_update(self, node)

    def execute_set(self: Any, item: Any) -> None:
        slow_set(self, item)
        time.sleep(0.002)

    monkeypatch.setattr(UpdateExpressionExecutor, "execute", execute_update)
    monkeypatch.setattr(SetExecutor, "execute", execute_set)
    # and an item that one thread updates, two attributes per update, while others read it
    dynamodb = stack.dynamodb()
    key = {"contact_id": {"S": "atomic-update-check"}}
    dynamodb.put_item(TableName=stack.table_name, Item={**key, "a": {"N": "0"}, "b": {"N": "0"}})
    torn: list[dict[str, Any]] = []
    done = threading.Event()

    def read() -> None:
        reader = stack.dynamodb()
        while not done.is_set():
            item = reader.get_item(TableName=stack.table_name, Key=key)["Item"]
            if item["a"] != item["b"]:
                torn.append(item)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    try:
        for n in range(1, 101):
            dynamodb.update_item(
                TableName=stack.table_name,
                Key=key,
                UpdateExpression="SET a = :n, b = :n",
                ExpressionAttributeValues={":n": {"N": str(n)}},
            )
    finally:
        done.set()
        for thread in readers:
            thread.join()
    # Then no read saw one attribute updated and not the other, as DynamoDB guarantees
    assert torn == []

    # And of conditional updates racing on the same version, exactly one wins
    clients = [stack.dynamodb() for _ in range(8)]
    start = threading.Barrier(len(clients))

    def claim(owner: str, wins: list[str]) -> None:
        client = clients[int(owner[1:])]
        start.wait()
        with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
            client.update_item(
                TableName=stack.table_name,
                Key=key,
                UpdateExpression="SET a = a + :one, claimed_by = :owner",
                ConditionExpression="a = :version",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":owner": {"S": owner},
                    ":version": {"N": "100"},
                },
            )
            wins.append(owner)

    wins: list[str] = []
    claimers = [threading.Thread(target=claim, args=(f"o{i}", wins)) for i in range(len(clients))]
    for thread in claimers:
        thread.start()
    for thread in claimers:
        thread.join()
    item = dynamodb.get_item(TableName=stack.table_name, Key=key)["Item"]
    assert len(wins) == 1
    assert item["a"] == {"N": "101"}
    assert item["claimed_by"] == {"S": wins[0]}
