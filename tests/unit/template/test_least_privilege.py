"""Least privilege, exactly: each permission a code path uses, each parameter what AWS accepts.

test_security.py pins that every statement names its resources; these pin the actions and the
parameters' patterns against what the code calls and what the AWS documentation says.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from callrec_local.template import TEMPLATE_PATH, Account, Resolver, load_template
from tests.support import REPO

TEMPLATE = load_template(TEMPLATE_PATH)
PARAMETERS: dict[str, dict[str, Any]] = TEMPLATE["Parameters"]
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
CODE = [
    *sorted((REPO / "layers" / "callrec" / "callrec").rglob("*.py")),
    *sorted((REPO / "functions").glob("*/app.py")),
]


def function_statements() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in RESOURCES.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                yield name, statement


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def snake_case(action: str) -> str:
    """kinesisvideo:GetDataEndpoint -> get_data_endpoint (boto3's method for the API)."""
    name = action.split(":", 1)[1]
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_every_kinesis_video_action_granted_is_one_the_code_calls() -> None:
    # Given the code of the functions and their library
    code = "\n".join(path.read_text() for path in CODE)

    # When each Kinesis Video Streams action a role grants is looked for as its boto3 call
    granted = {
        a for _, s in function_statements() for a in actions(s) if a.startswith("kinesisvideo:")
    }
    unused = sorted(a for a in granted if f".{snake_case(a)}(" not in code)

    # Then every one is called somewhere (a later change that calls another API adds it)
    assert granted
    assert unused == []


def test_no_role_may_encrypt_with_a_kms_key_directly() -> None:
    # Nothing calls kms:Encrypt. The services the functions write to ask KMS for data keys:
    # "To perform a multipart upload with encryption using an Key Management Service (KMS) KMS
    # key, the requester must have permission to the kms:Decrypt and kms:GenerateDataKey
    # actions on the key. ... Then, the requester needs permissions for the kms:Decrypt action
    # on the UploadPart and UploadPartCopy APIs." (S3 API Reference, CreateMultipartUpload:
    # https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateMultipartUpload.html)
    # DynamoDB decrypts the table key on the caller's behalf ("When you access an encrypted
    # DynamoDB table, DynamoDB needs to decrypt the table key", kms:Decrypt); "Your Kinesis
    # stream producers must have the kms:GenerateDataKey permission", consumers kms:Decrypt
    # (https://docs.aws.amazon.com/streams/latest/dev/permissions-user-key-KMS.html); SQS
    # senders kms:GenerateDataKey and kms:Decrypt; Lambda's environment kms:Decrypt.
    encrypt = [
        (name, statement.get("Sid"))
        for name, statement in function_statements()
        for action in actions(statement)
        if action in {"kms:Encrypt", "kms:Encrypt*", "kms:*"}
    ]

    assert encrypt == []


# "Key ID: 1234abcd-12ab-34cd-56ef-1234567890ab", "Key ARN:
# arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", and for a
# multi-Region key "Key ID: mrk-1234abcd12ab34cd56ef1234567890ab", "Key ARN:
# arn:aws:kms:us-east-2:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"
# (AWS KMS API Reference, e.g. ReplicateKey: https://docs.aws.amazon.com/kms/latest/APIReference/API_ReplicateKey.html)
@pytest.mark.parametrize(
    ("arn", "accepted"),
    [
        ("arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", True),
        ("arn:aws:kms:us-east-2:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab", True),
        ("arn:aws-cn:kms:cn-north-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab", True),
        ("arn:aws:kms:us-east-2:111122223333:alias/ExampleAlias", False),
        ("arn:aws:kms:us-east-2:111122223333:key/mrk-1234", False),
        ("1234abcd-12ab-34cd-56ef-1234567890ab", False),
    ],
)
def test_the_connect_key_may_be_a_single_or_multi_region_key(arn: str, accepted: bool) -> None:
    pattern = PARAMETERS["KvsKmsKeyArn"]["AllowedPattern"]

    assert (re.fullmatch(pattern, arn) is not None) is accepted


def test_the_stream_prefix_is_capped_at_connects_limit() -> None:
    # Connect's live media streaming prefix: "Prefix: The prefix of the video stream. Type:
    # String. Length Constraints: Minimum length of 1. Maximum length of 128."
    # (https://docs.aws.amazon.com/connect/latest/APIReference/API_KinesisVideoStreamConfig.html)
    parameter = PARAMETERS["KvsStreamNamePrefix"]

    assert re.fullmatch(parameter["AllowedPattern"], "a" * 128)
    assert not re.fullmatch(parameter["AllowedPattern"], "a" * 129)
    assert not re.fullmatch(parameter["AllowedPattern"], "")
    assert parameter["MaxLength"] == 128


@pytest.mark.parametrize(
    ("partition", "region", "principal"),
    [
        ("aws", "us-east-1", "logs.us-east-1.amazonaws.com"),
        ("aws-cn", "cn-north-1", "logs.cn-north-1.amazonaws.com.cn"),
    ],
)
def test_the_logs_service_principal_follows_the_partition(
    partition: str, region: str, principal: str
) -> None:
    # CloudWatch Logs' principal in a key policy is "logs.Region.amazonaws.com"
    # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html), with
    # the partition's domain: "the suffix for the China (Beijing) Region is amazonaws.com.cn"
    # (AWS::URLSuffix, https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/pseudo-parameter-reference.html).
    statements = RESOURCES["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
    (logs,) = [s for s in statements if "Service" in s["Principal"]]
    account = Account(region=region, partition=partition)

    resolved = Resolver(TEMPLATE, account, {}, "http://x").resolve(logs["Principal"]["Service"])

    assert resolved == principal
