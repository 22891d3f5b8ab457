"""The pytest fixtures: the stack as the template writes it, and its variables for in-process code."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import boto3.session
import pytest

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


@pytest.fixture
def stale_default_session(tmp_path: Path) -> Iterator[boto3.session.Session]:
    """boto3's default session as an earlier test in the process may leave it: another account's
    credentials resolved and cached; and a developer's profile and session token in os.environ."""
    config = tmp_path / "aws-config"
    config.write_text("[profile developer]\nregion = eu-west-1\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_CONFIG_FILE", str(config))
        patch.setenv("AWS_ACCESS_KEY_ID", "AKIAOTHERACCOUNT000")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "other")
        patch.setattr(boto3, "DEFAULT_SESSION", None)
        # Creating a client resolves the credentials and caches them in the default session.
        boto3.client("dynamodb", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
        session = boto3.DEFAULT_SESSION
        assert session is not None
        patch.setenv("AWS_PROFILE", "developer")
        patch.setenv("AWS_SESSION_TOKEN", "developer-token")
        yield session
        # Then the earlier session is back for later tests
        assert boto3.DEFAULT_SESSION is session
        assert os.environ["AWS_PROFILE"] == "developer"


def test_local_stack_environment_wins_over_a_stale_default_session(
    stale_default_session: boto3.session.Session,
    local_stack_environment: dict[str, str],
    local_stack: LocalStack,
) -> None:
    # Given a default session that cached other credentials, and a profile that is not the stack's
    # When code under test creates its own client with the stack's variables set
    tables = boto3.client("dynamodb").list_tables()["TableNames"]

    # Then it sees this stack's account, through a new default session, and no foreign variable
    assert tables == [local_stack.table_name]
    assert boto3.DEFAULT_SESSION is not stale_default_session
    assert "AWS_PROFILE" not in os.environ
    assert "AWS_SESSION_TOKEN" not in os.environ


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
