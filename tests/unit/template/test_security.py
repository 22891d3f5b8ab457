"""Security properties of template.yaml that can be read from the template itself.

cfn-lint, `sam validate --lint` and checkov (make test) check the template's shape and the
common rules; these tests pin this stack's own promises: recordings are personal data, so every
store is encrypted with the stack's key, nothing is public, TLS is required, every IAM
statement names its resources, every asynchronous path ends somewhere visible and alarmed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from callrec_local.template import TEMPLATE_PATH, load_template

TEMPLATE = load_template(TEMPLATE_PATH)
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
DATA_KEY = {"Fn::GetAtt": ["DataKey", "Arn"]}


def of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in RESOURCES.items()
        if resource["Type"] == kind
    }


def function_statements() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, props in of_type("AWS::Serverless::Function").items():
        for policy in props.get("Policies", []):
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                yield name, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_bucket_can_be_public() -> None:
    buckets = of_type("AWS::S3::Bucket")

    assert buckets
    for name, props in buckets.items():
        block = props["PublicAccessBlockConfiguration"]
        assert block == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, name
        assert props["OwnershipControls"]["Rules"] == [
            {"ObjectOwnership": "BucketOwnerEnforced"}
        ], name


def test_every_bucket_policy_denies_plain_http_and_allows_no_anonymous_access() -> None:
    policies = of_type("AWS::S3::BucketPolicy")
    buckets_with_policy = {props["Bucket"]["Ref"] for props in policies.values()}

    assert buckets_with_policy == set(of_type("AWS::S3::Bucket"))
    for name, props in policies.items():
        statements = props["PolicyDocument"]["Statement"]
        tls = [
            s
            for s in statements
            if s["Effect"] == "Deny"
            and s["Condition"].get("Bool", {}).get("aws:SecureTransport") == "false"
        ]
        assert tls, name
        assert (tls[0]["Action"], tls[0]["Principal"]) == ("s3:*", "*"), name
        for statement in statements:
            if statement["Effect"] == "Allow":
                assert statement["Principal"] != "*", (name, statement["Sid"])
                assert "Service" in statement["Principal"], (name, statement["Sid"])
                assert "aws:SourceArn" in str(statement["Condition"]), (name, statement["Sid"])


def test_recordings_are_encrypted_with_the_stacks_key_and_other_encryption_is_refused() -> None:
    bucket = of_type("AWS::S3::Bucket")["RecordingsBucket"]
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    statements = of_type("AWS::S3::BucketPolicy")["RecordingsBucketPolicy"]["PolicyDocument"][
        "Statement"
    ]
    denies = {s["Sid"]: s for s in statements if s["Effect"] == "Deny"}

    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": DATA_KEY,
    }
    wrong_algorithm = denies["DenyUploadsNotEncryptedWithTheDataKey"]["Condition"]
    assert wrong_algorithm["StringNotEquals"] == {"s3:x-amz-server-side-encryption": "aws:kms"}
    wrong_key = denies["DenyUploadsWithAnotherKmsKey"]["Condition"]
    assert wrong_key["StringNotEquals"] == {
        "s3:x-amz-server-side-encryption-aws-kms-key-id": DATA_KEY
    }
    assert bucket["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}


def test_old_versions_and_abandoned_uploads_expire() -> None:
    for name, props in of_type("AWS::S3::Bucket").items():
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, name
        rules = props["LifecycleConfiguration"]["Rules"]
        unscoped = [r for r in rules if "Prefix" not in r and "Filter" not in r]
        assert unscoped, name
        for rule in unscoped:
            assert rule["Status"] == "Enabled"
            assert rule["ExpirationInDays"] == {"Ref": "RecordingExpirationDays"}
            assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] >= 1
            assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] >= 1


def test_every_store_is_encrypted_with_the_stacks_key() -> None:
    (stream,) = of_type("AWS::Kinesis::Stream").values()
    (table,) = of_type("AWS::DynamoDB::Table").values()
    queues = of_type("AWS::SQS::Queue")
    log_groups = of_type("AWS::Logs::LogGroup")

    assert stream["StreamEncryption"] == {"EncryptionType": "KMS", "KeyId": DATA_KEY}
    assert table["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": DATA_KEY,
    }
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert queues
    assert all(q["KmsMasterKeyId"] == DATA_KEY for q in queues.values())
    assert log_groups
    assert all(g["KmsKeyId"] == DATA_KEY for g in log_groups.values())
    assert all("RetentionInDays" in g for g in log_groups.values())
    assert TEMPLATE["Globals"]["Function"]["KmsKeyArn"] == DATA_KEY


def test_the_key_rotates_and_only_the_account_and_this_stacks_log_groups_may_use_it() -> None:
    key = of_type("AWS::KMS::Key")["DataKey"]
    statements = key["KeyPolicy"]["Statement"]

    assert key["EnableKeyRotation"] is True
    assert RESOURCES["DataKey"]["DeletionPolicy"] == "RetainExceptOnCreate"
    principals = [s["Principal"] for s in statements]
    assert principals == [
        {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
        {"Service": {"Fn::Sub": "logs.${AWS::Region}.${AWS::URLSuffix}"}},
    ]
    logs = statements[1]
    assert "${AWS::StackName}-" in str(logs["Condition"]["ArnLike"])


@pytest.mark.parametrize(
    ("function", "statement"),
    [pytest.param(f, s, id=f"{f}-{s.get('Sid')}") for f, s in function_statements()],
)
def test_every_inline_statement_names_its_resources(
    function: str, statement: dict[str, Any]
) -> None:
    resources = as_list(statement["Resource"])
    actions = as_list(statement["Action"])

    assert statement["Effect"] == "Allow"
    assert all(not str(a).endswith("*") for a in actions), (function, actions)
    for resource in resources:
        assert not isinstance(resource, str), f"{function}: literal resource {resource}"
        text = str(resource)
        # A wildcard only after a fixed prefix: the bucket's folders, the Connect streams.
        if "*" in text:
            assert any(
                prefix in text
                for prefix in (
                    "/staging/*",
                    "/recordings/*",
                    "/spectrograms/*",
                    "${KvsStreamNamePrefix}*",
                    "${ConnectInstanceArn}/contact/*",
                )
            ), (function, text)


def test_each_function_may_use_only_the_stacks_key_and_the_connect_streams_key() -> None:
    kms = [
        (f, s) for f, s in function_statements() if any("kms:" in a for a in as_list(s["Action"]))
    ]

    keys = {str(s["Resource"]) for _, s in kms}
    assert keys == {str(DATA_KEY), str({"Ref": "KvsKmsKeyArn"})}
    assert {f for f, _ in kms} == set(of_type("AWS::Serverless::Function"))


def test_only_the_connect_instance_may_invoke_the_contact_flow_function() -> None:
    permissions = of_type("AWS::Lambda::Permission")

    (permission,) = [
        p for p in permissions.values() if p["FunctionName"] == {"Ref": "SendEventFunction"}
    ]
    assert permission["Principal"] == "connect.amazonaws.com"
    assert permission["SourceArn"] == {"Ref": "ConnectInstanceArn"}
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_every_asynchronous_path_ends_in_a_queue() -> None:
    functions = of_type("AWS::Serverless::Function")
    queues = set(of_type("AWS::SQS::Queue"))

    for name in ("RecorderFunction", "SpectrumFunction", "ContactEventsFunction"):
        destination = functions[name]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
        assert destination["Destination"]["Fn::GetAtt"][0] in queues, name
    (kinesis,) = [
        e["Properties"]
        for e in functions["RecorderFunction"]["Events"].values()
        if e["Type"] == "Kinesis"
    ]
    assert kinesis["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0] in queues
    assert kinesis["BisectBatchOnFunctionError"] is True


def test_alarms_watch_every_failure_path_and_notify_the_optional_topic() -> None:
    alarms = of_type("AWS::CloudWatch::Alarm")
    watched = {
        (a["Namespace"], a["MetricName"], str(a["Dimensions"][0]["Value"])) for a in alarms.values()
    }

    for queue in of_type("AWS::SQS::Queue"):
        assert (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            str({"Fn::GetAtt": [queue, "QueueName"]}),
        ) in watched, queue
    for function in of_type("AWS::Serverless::Function"):
        assert ("AWS/Lambda", "Errors", str({"Ref": function})) in watched, function
    assert ("AWS/Lambda", "IteratorAge", str({"Ref": "RecorderFunction"})) in watched
    for metric, service in (
        ("RecordingsFailed", "recorder"),
        ("StalledRecordingsResumed", "recorder"),
        ("StartRecordFailures", "send-event"),
        ("SpectrumBadRecordings", "spectrum"),
    ):
        assert ("CallRecorder", metric, service) in watched, metric
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == {
            "Fn::If": ["NotifyAlarms", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
        }, name
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert len(alarm["AlarmDescription"]) > 60, f"{name}: say what it means and what to do"


def test_custom_metric_alarms_match_what_the_functions_emit() -> None:
    """An alarm on a metric no function emits would never fire: each custom metric name an
    alarm watches appears in the code of the function whose service dimension it names."""
    root = TEMPLATE_PATH.parent
    sources = {
        "recorder": (root / "functions/recorder/app.py").read_text(),
        "send-event": (root / "functions/send_event/app.py").read_text(),
        "spectrum": (root / "layers/callrec/callrec/spectrogram_store.py").read_text(),
        "contact-events": (root / "functions/contact_events/app.py").read_text(),
    }
    functions = of_type("AWS::Serverless::Function")
    services = {
        props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] for props in functions.values()
    }
    assert services == set(sources)
    for name, alarm in of_type("AWS::CloudWatch::Alarm").items():
        if (
            alarm["Namespace"]
            != TEMPLATE["Globals"]["Function"]["Environment"]["Variables"][
                "POWERTOOLS_METRICS_NAMESPACE"
            ]
        ):
            continue
        service = alarm["Dimensions"][0]["Value"]
        metric = alarm["MetricName"]
        code = sources[service]
        emitted = f'"{metric}"' in code or (
            metric.startswith("Recordings") and 'f"Recordings{action}"' in code
        )
        assert emitted, f"{name}: {service} does not emit {metric}"


def test_contact_events_and_contact_lookups_are_scoped_to_the_instance() -> None:
    functions = of_type("AWS::Serverless::Function")
    (rule,) = [
        e["Properties"]
        for e in functions["ContactEventsFunction"]["Events"].values()
        if e["Type"] == "EventBridgeRule"
    ]
    describe = [
        (f, s)
        for f, s in function_statements()
        if any(str(a).startswith("connect:") for a in as_list(s["Action"]))
    ]

    assert rule["Pattern"]["source"] == ["aws.connect"]
    assert rule["Pattern"]["detail-type"] == ["Amazon Connect Contact Event"]
    assert rule["Pattern"]["resources"] == [{"prefix": {"Ref": "ConnectInstanceArn"}}]
    assert rule["Pattern"]["detail"] == {"eventType": ["DISCONNECTED"]}
    assert [(f, s["Action"], s["Resource"]) for f, s in describe] == [
        (
            "RecorderFunction",
            "connect:DescribeContact",
            {"Fn::Sub": "${ConnectInstanceArn}/contact/*"},
        )
    ]
