"""A second stack and a redeploy work: physical names, and what a failed first create leaves.

CloudFormation generates a resource's name unless the template chooses one, and a name the
template chooses is the same for every stack made from it unless it derives from the stack: a
second stack in the same account and region would then fail on "already exists". Checked on the
template as SAM's transform hands it to CloudFormation (the translator `sam validate` runs, see
sam_translate.py), because SAM adds resources (roles, schedules, layer versions, permissions)
and names some of them itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import botocore.loaders
import pytest

from callrec_local.template import TEMPLATE_PATH, Account, Resolver, load_template

# The properties that hold a name the template may choose, by resource type. A type with ()
# has no name of its own: it is identified by what it attaches to (a function, a bucket, an
# instance) or by an id CloudFormation or the service generates. A type missing here fails
# test_every_resource_type_is_known: a new kind of resource needs this decision made.
NAME_PROPERTIES: dict[str, tuple[str, ...]] = {
    "AWS::KMS::Key": (),
    "AWS::KMS::Alias": ("AliasName",),
    "AWS::Kinesis::Stream": ("Name",),
    "AWS::DynamoDB::Table": ("TableName",),
    "AWS::S3::Bucket": ("BucketName",),
    "AWS::S3::BucketPolicy": (),
    "AWS::SQS::Queue": ("QueueName",),
    "AWS::Logs::LogGroup": ("LogGroupName",),
    "AWS::Lambda::Function": ("FunctionName",),
    "AWS::Lambda::LayerVersion": ("LayerName",),
    "AWS::Lambda::Permission": (),
    "AWS::Lambda::EventInvokeConfig": (),
    "AWS::Lambda::EventSourceMapping": (),
    "AWS::IAM::Role": ("RoleName",),
    "AWS::Scheduler::Schedule": ("Name",),
    "AWS::CloudWatch::Alarm": ("AlarmName",),
    "AWS::Connect::IntegrationAssociation": (),
    "AWS::Events::Rule": ("Name",),
}

# Two stacks side by side: one account, one region, the same parameters, different stacks.
ONE_ACCOUNT = "111122223333"
FIRST = Account(stack_name="callrec", region="eu-west-1", account_id=ONE_ACCOUNT)
SECOND = Account(stack_name="callrec-test", region="eu-west-1", account_id=ONE_ACCOUNT)

# Stateful resources: what they hold outlives the stack, unless their own first create failed.
STATEFUL = ("DataKey", "RecordingsTable", "RecordingsBucket", "AccessLogsBucket")


def chosen_names(template: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(logical id, property, value) of every name the template chooses."""
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        for name_property in NAME_PROPERTIES.get(resource["Type"], ()):
            if name_property in properties:
                yield logical_id, name_property, properties[name_property]


def function_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in template["Resources"].items():
        for policy in resource.get("Properties", {}).get("Policies", []):
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                yield logical_id, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resolve_name(template: dict[str, Any], account: Account, value: Any) -> str:
    return str(Resolver(template, account, {}, "http://127.0.0.1").resolve(value))


def test_every_resource_type_is_known(translated_template: dict[str, Any]) -> None:
    # Given the template as CloudFormation receives it
    types = {resource["Type"] for resource in translated_template["Resources"].values()}

    # Then each type's naming was decided above
    assert types <= set(NAME_PROPERTIES), (
        f"decide how these are named: {types - set(NAME_PROPERTIES)}"
    )


def test_no_chosen_name_is_the_same_for_two_stacks_in_one_account_and_region(
    translated_template: dict[str, Any],
) -> None:
    # Given every name the translated template chooses (the others CloudFormation generates)
    names = list(chosen_names(translated_template))
    assert names

    # When each is resolved for two stacks in the same account and region
    clashes = [
        f"{logical_id}.{name_property} = {value!r} is {first!r} in both stacks"
        for logical_id, name_property, value in names
        if (first := resolve_name(translated_template, FIRST, value))
        == resolve_name(translated_template, SECOND, value)
    ]

    # Then each derives from the stack: none is the same in both
    assert not clashes, "\n".join(clashes)


def test_sams_schedule_is_left_for_cloudformation_to_name(
    translated_template: dict[str, Any],
) -> None:
    # SAM names a ScheduleV2 schedule after its logical id unless OmitName is set.
    schedules = [
        resource["Properties"]
        for resource in translated_template["Resources"].values()
        if resource["Type"] == "AWS::Scheduler::Schedule"
    ]

    assert schedules
    assert all("Name" not in schedule for schedule in schedules)


def longest_region() -> str:
    """The longest region name AWS's own endpoint data lists (botocore's endpoints.json)."""
    endpoints = botocore.loaders.Loader().load_data("endpoints")
    return max((r for p in endpoints["partitions"] for r in p["regions"]), key=len)


# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html: "Bucket names
# must be between 3 (min) and 63 (max) characters long", "can consist only of lowercase letters,
# numbers, periods (.), and hyphens (-)", "must begin and end with a letter or number".
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@pytest.mark.parametrize("stack_name", ["callrec", "CallRec-Production-Recorder-Stack-For-Acme"])
def test_the_recordings_bucket_name_is_valid_for_any_stack_prefix_and_region(
    stack_name: str,
) -> None:
    # Given the longest prefix the template allows, the longest region, any stack name
    template = load_template(TEMPLATE_PATH)
    longest_prefix = "a" * 21
    assert re.fullmatch(
        template["Parameters"]["BucketNamePrefix"]["AllowedPattern"], longest_prefix
    )
    account = Account(stack_name=stack_name, region=longest_region(), account_id=ONE_ACCOUNT)
    resolver = Resolver(template, account, {"BucketNamePrefix": longest_prefix}, "http://x")

    # When the bucket is named
    name = resolver.name("RecordingsBucket")

    # Then the name is a valid S3 bucket name (upper case in a stack name cannot leak into it)
    assert BUCKET_NAME.match(name), name
    assert len(name) <= 63


def test_every_place_that_names_the_bucket_names_the_same_bucket() -> None:
    # Given the template (the functions cannot refer to the bucket: its S3 trigger makes it
    # depend on them, so they repeat its name)
    template = load_template(TEMPLATE_PATH)
    resolver = Resolver(template, FIRST, {}, "http://x")
    bucket = resolver.name("RecordingsBucket")
    arn = f"arn:aws:s3:::{bucket}"

    # When every S3 resource ARN and the functions' BUCKET_NAME are resolved
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    resources = [
        str(resolver.resolve(resource))
        for _, statement in function_statements(template)
        for resource in as_list(statement["Resource"])
        if ":s3:::" in str(resource)
    ]

    source = template["Resources"]["AccessLogsBucketPolicy"]["Properties"]["PolicyDocument"]
    (delivery,) = [s for s in source["Statement"] if s["Effect"] == "Allow"]

    # Then each is this stack's bucket
    assert resolver.resolve(variables["BUCKET_NAME"]) == bucket
    assert resolver.resolve(delivery["Condition"]["ArnLike"]["aws:SourceArn"]) == arn
    assert resources
    assert all(resource == arn or resource.startswith(f"{arn}/") for resource in resources), (
        resources
    )


def test_stateful_resources_are_kept_except_when_their_own_first_create_rolls_back(
    translated_template: dict[str, Any],
) -> None:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html:
    # "RetainExceptOnCreate behaves like Retain for stack operations, except for the stack
    # operation that initially created the resource. If the stack operation that created the
    # resource is rolled back, CloudFormation deletes the resource."
    resources = translated_template["Resources"]

    for logical_id in STATEFUL:
        assert resources[logical_id]["DeletionPolicy"] == "RetainExceptOnCreate", logical_id
        # UpdateReplacePolicy knows no RetainExceptOnCreate: a replaced store is kept.
        assert resources[logical_id]["UpdateReplacePolicy"] == "Retain", logical_id
    # A plain Retain would leave a resource behind a failed first create, and the retry would
    # fail on "already exists".
    assert [
        logical_id
        for logical_id, resource in resources.items()
        if resource.get("DeletionPolicy") == "Retain"
    ] == []
