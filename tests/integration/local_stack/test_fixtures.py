"""The pytest fixtures: the stack as the template writes it, and its variables for in-process code."""

from __future__ import annotations

import os
from pathlib import Path

import boto3

from callrec_local.pytest_plugin import LocalStackFactory
from callrec_local.stack import FunctionOverride, LocalStack
from callrec_local.template import TEMPLATE_PATH, load_template


def test_local_stack_is_the_template_unscaled_with_kvs(local_stack: LocalStack) -> None:
    # Given the default fixture
    resources = load_template(TEMPLATE_PATH)["Resources"]

    # Then timeouts are the template's, and the KVS emulator is there for the handlers
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Serverless::Function":
            declared = resource["Properties"]["Timeout"]
            assert local_stack.function(logical_id).timeout_s == declared
    assert local_stack.kvs_endpoint is not None
    assert local_stack.environment["AWS_ENDPOINT_URL_KINESIS_VIDEO"] == local_stack.kvs_endpoint
    assert local_stack.client("kinesisvideo").list_streams()["StreamInfoList"] == []


def test_local_stack_environment_points_plain_boto3_at_the_stack(
    local_stack_environment: dict[str, str], local_stack: LocalStack
) -> None:
    # Given the stack's variables in os.environ
    assert os.environ["AWS_ENDPOINT_URL"] == local_stack.moto_endpoint

    # When code creates its own client, as the Connect simulator or a CLI command would
    tables = boto3.client("dynamodb").list_tables()["TableNames"]

    # Then it sees this stack's account
    assert tables == [local_stack.table_name]


def test_a_handler_that_cannot_be_imported_fails_as_lambda_reports_it(
    local_stack_factory: LocalStackFactory, tmp_path: Path
) -> None:
    # Given a recorder whose handler module does not exist
    stack = local_stack_factory(
        kvs=None,
        schedules=False,
        overrides={"RecorderFunction": FunctionOverride(code_uri=tmp_path, handler="nope.handler")},
    )

    # When it is invoked
    invocation = stack.invoke("RecorderFunction", {})

    # Then the init phase fails, as Lambda's Python runtime reports it
    assert invocation.error is not None
    assert invocation.error["errorType"] == "Runtime.ImportModuleError"
    assert "nope" in invocation.error["errorMessage"]
    assert not invocation.killed
