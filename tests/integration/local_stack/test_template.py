"""template.yaml read with CloudFormation's short-form tags and resolved for a local deployment."""

from __future__ import annotations

from pathlib import Path

import pytest

from callrec_local.connect_emulator import LOCAL_INSTANCE_ARN
from callrec_local.template import (
    TEMPLATE_PATH,
    Account,
    TemplateError,
    load_template,
    local_plan,
    rate_period_s,
)

SMALL = """
Parameters:
  Prefix: {Type: String, Default: demo}
  NoDefault: {Type: String}
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "${Prefix}-${AWS::AccountId}-${AWS::Region}"
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.handler
      Environment:
        Variables:
          QUEUE_URL: !Ref Queue
          QUEUE_ARN: !GetAtt Queue.Arn
          QUEUE_NAME: !GetAtt [Queue, QueueName]
          BUCKET_ARN: !Sub "${Bucket.Arn}/*"
          JOINED: !Join [",", [a, !Ref Prefix]]
          LITERAL: !Sub "${!NotAVariable}"
          NEEDS_PARAMETER: !Ref NoDefault
"""


def small_template(tmp_path: Path) -> dict[str, object]:
    path = tmp_path / "template.yaml"
    path.write_text(SMALL)
    return load_template(path)


def test_short_form_tags_become_long_forms(tmp_path: Path) -> None:
    # Given a template written with short-form tags
    body = small_template(tmp_path)

    # Then each tag is read as the long form CloudFormation means
    variables = body["Resources"]["Fn"]["Properties"]["Environment"]["Variables"]  # type: ignore[index]
    assert variables["QUEUE_URL"] == {"Ref": "Queue"}
    assert variables["QUEUE_ARN"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert variables["QUEUE_NAME"] == {"Fn::GetAtt": ["Queue", "QueueName"]}
    assert variables["JOINED"] == {"Fn::Join": [",", ["a", {"Ref": "Prefix"}]]}


def test_resolution_uses_local_resources_parameters_and_pseudo_parameters(tmp_path: Path) -> None:
    # Given the small template, with the parameter that has no default given
    body = small_template(tmp_path)
    account = Account(stack_name="s", region="eu-west-1", account_id="111122223333")

    # When it is resolved for a local deployment
    plan = local_plan(
        body,
        account=account,
        parameters={"NoDefault": "given"},
        sqs_endpoint="http://127.0.0.1:9",
        root=tmp_path,
    )

    # Then names, ARNs and URLs are the local ones
    env = plan.functions["Fn"].environment
    assert env["QUEUE_URL"] == "http://127.0.0.1:9/111122223333/s-Queue"
    assert env["QUEUE_ARN"] == "arn:aws:sqs:eu-west-1:111122223333:s-Queue"
    assert env["QUEUE_NAME"] == "s-Queue"
    assert env["BUCKET_ARN"] == "arn:aws:s3:::demo-111122223333-eu-west-1/*"
    assert env["JOINED"] == "a,demo"
    assert env["LITERAL"] == "${NotAVariable}"
    assert env["NEEDS_PARAMETER"] == "given"
    assert plan.functions["Fn"].code_uri == tmp_path / "fn"
    assert plan.functions["Fn"].timeout_s == 3.0  # Lambda's default
    assert plan.functions["Fn"].async_config.maximum_retry_attempts == 2  # Lambda's default


def test_a_needed_parameter_without_default_is_an_error_naming_it(tmp_path: Path) -> None:
    body = small_template(tmp_path)
    with pytest.raises(TemplateError, match="parameter NoDefault has no default"):
        local_plan(body, root=tmp_path)


def test_a_parameter_the_template_does_not_declare_is_an_error_naming_it(tmp_path: Path) -> None:
    body = small_template(tmp_path)
    with pytest.raises(TemplateError, match="parameters Prefx are not declared"):
        local_plan(body, parameters={"NoDefault": "x", "Prefx": "typo"}, root=tmp_path)


def test_parameters_are_used_as_given_unscaled_and_below_the_templates_minimum() -> None:
    # Given template.yaml, whose RecordingIdleSeconds is at least 5
    body = load_template(TEMPLATE_PATH)
    assert body["Parameters"]["RecordingIdleSeconds"]["MinValue"] == 5

    # When it is resolved with a 3 s idle time, as a scaled-down test needs
    plan = local_plan(body, parameters={"RecordingIdleSeconds": "3"})

    # Then the recorder gets 3, exactly
    assert plan.function("RecorderFunction").environment["RECORDING_IDLE_SECONDS"] == "3"


def test_the_real_template_resolves_with_its_defaults() -> None:
    # Given template.yaml as it is
    body = load_template(TEMPLATE_PATH)

    # When it is resolved
    plan = local_plan(body)

    # Then every function has a code directory in the repository and no unresolved variable
    assert plan.functions
    for function in plan.functions.values():
        assert function.code_uri.is_dir(), function.code_uri
        assert all("${" not in value for value in function.environment.values())
    assert plan.streams
    assert plan.tables
    assert plan.buckets
    assert plan.queues


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60.0), ("rate(5 minutes)", 300.0), ("rate(2 hours)", 7200.0)],
)
def test_rate_expressions(expression: str, seconds: float) -> None:
    assert rate_period_s(expression) == seconds


def test_cron_expressions_are_refused() -> None:
    with pytest.raises(TemplateError, match="only rate"):
        rate_period_s("cron(0 12 * * ? *)")


def test_eventbridge_rules_are_read_with_their_pattern_resolved() -> None:
    # Given template.yaml, whose contact-events rule names the Connect instance parameter
    plan = local_plan(load_template(TEMPLATE_PATH))

    # When it is resolved for the local stack (the Connect emulator's instance by default)
    (rule,) = plan.function("ContactEventsFunction").event_rules

    # Then the rule's pattern is the template's with the instance ARN in place
    assert rule.event_name == "ContactDisconnected"
    assert rule.pattern == {
        "source": ["aws.connect"],
        "detail-type": ["Amazon Connect Contact Event"],
        "resources": [{"prefix": LOCAL_INSTANCE_ARN}],
        "detail": {"eventType": ["DISCONNECTED"]},
    }
    assert (rule.maximum_event_age_s, rule.maximum_retry_attempts) == (3600.0, 10)
    other = local_plan(
        load_template(TEMPLATE_PATH),
        parameters={"ConnectInstanceArn": LOCAL_INSTANCE_ARN.replace("9308c2a1", "00000000")},
    )
    assert "00000000" in str(other.function("ContactEventsFunction").event_rules[0].pattern)
