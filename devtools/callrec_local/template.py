"""template.yaml read as CloudFormation and SAM read it, for the local stack.

Everything the local stack builds (stream, table, bucket, queues, functions, event sources,
asynchronous invocation settings, schedules) is derived here from the template, so there is no
second copy of the infrastructure to drift. Names are resolved as a deployment named
`stack_name` would resolve them, except that names CloudFormation would generate
(`<stack>-<LogicalId>-<random>`) lose their random suffix.

It deliberately does not validate the template (cfn-lint and `sam validate` do), does not evaluate
Conditions, and resolves only the intrinsic functions a template of this shape uses: Ref, Fn::Sub,
Fn::GetAtt, Fn::Join, Fn::Select, Fn::Split. Resolution is lazy: a parameter without a default is
an error only when something the local stack needs refers to it.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import botocore.loaders
import yaml

from callrec_local.connect_emulator import LOCAL_INSTANCE_ARN
from callrec_local.kvs_emulator import ACCOUNT, REGION

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "template.yaml"

# Lambda's defaults when a template leaves a setting out.
DEFAULT_TIMEOUT_S = 3.0
DEFAULT_MEMORY_MB = 128
DEFAULT_ASYNC_RETRY_ATTEMPTS = 2
DEFAULT_ASYNC_EVENT_AGE_S = 21600
DEFAULT_KINESIS_BATCH_SIZE = 100
# EventBridge's defaults for a rule target's retry policy.
DEFAULT_EVENT_AGE_S = 86400.0
DEFAULT_EVENT_RETRY_ATTEMPTS = 185
# Values for parameters that have no default, when the local deployment does not give one:
# what the local stack's own stand-ins are (the emulated Connect instance).
# The KVS key is a stand-in: the KVS emulator does not emulate KMS (it can deny it:
# `KvsEmulator.deny_kms`).
LOCAL_KVS_KMS_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-0000-4000-8000-000000000000"
LOCAL_PARAMETER_DEFAULTS = {
    "ConnectInstanceArn": LOCAL_INSTANCE_ARN,
    "KvsKmsKeyArn": LOCAL_KVS_KMS_KEY_ARN,
}

_SHORT_FORM_TAGS = (
    "Ref",
    "Condition",
    "Sub",
    "GetAtt",
    "Join",
    "Select",
    "Split",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "FindInMap",
    "Base64",
    "GetAZs",
    "ImportValue",
    "Cidr",
    "Transform",
    "ToJsonString",
    "Length",
)


class TemplateError(Exception):
    """The template says something the local stack cannot resolve or does not support."""


class CfnLoader(yaml.SafeLoader):
    """A SafeLoader that reads CloudFormation's short-form tags (`!Ref X`) as their long forms."""


def _short_form(tag: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(cast(yaml.MappingNode, node), deep=True)
        if tag in {"Ref", "Condition"}:
            return {tag: value}
        if tag == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {f"Fn::{tag}": value}

    return construct


for _tag in _SHORT_FORM_TAGS:
    CfnLoader.add_constructor(f"!{_tag}", _short_form(_tag))


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as plain data, short-form tags turned into their long forms."""
    body = yaml.load(path.read_text(), Loader=CfnLoader)  # noqa: S506 (CfnLoader is a SafeLoader)
    if not isinstance(body, dict) or "Resources" not in body:
        raise TemplateError(f"{path}: expected a CloudFormation template with Resources")
    return cast(dict[str, Any], body)


# ------------------------------------------------------------------ resolution

_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")

# The property that names each resource type, when the template chooses the name.
_NAME_PROPERTY = {
    "AWS::Kinesis::Stream": "Name",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Serverless::LayerVersion": "LayerName",
}


@dataclass(frozen=True)
class Account:
    """The pseudo parameters of a deployment."""

    stack_name: str = "callrec-local"
    region: str = "us-east-1"
    account_id: str = "123456789012"  # moto's default account
    partition: str = "aws"

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region, account = (self.region, self.account_id) if regional else ("", "")
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"

    @property
    def stack_id(self) -> str:
        """The stack's id as CloudFormation forms it: its ARN, ending in a UUID of its own.

        "arn:aws:cloudformation:us-west-2:123456789012:stack/teststack/51af3dc0-da77-11e4-872e-1234567db123"
        (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/pseudo-parameter-reference.html).
        CloudFormation's UUID is new for every stack; here it is stable for a stack name,
        account and region, and differs between any two of them.
        """
        unique = uuid.uuid5(
            uuid.NAMESPACE_URL,
            f"{self.partition}/{self.account_id}/{self.region}/{self.stack_name}",
        )
        return self.arn("cloudformation", f"stack/{self.stack_name}/{unique}")

    @property
    def url_suffix(self) -> str:
        """AWS::URLSuffix: "The suffix is typically amazonaws.com, but might differ by Region. For
        example, the suffix for the China (Beijing) Region is amazonaws.com.cn." (the same page).
        Taken from the partition's DNS suffix in botocore's endpoint data."""
        return _dns_suffixes().get(self.partition, "amazonaws.com")


@functools.cache
def _dns_suffixes() -> dict[str, str]:
    """Each partition's DNS suffix, as AWS's SDKs know them (botocore's endpoints.json)."""
    endpoints = botocore.loaders.Loader().load_data("endpoints")
    return {str(p["partition"]): str(p["dnsSuffix"]) for p in endpoints["partitions"]}


class Resolver:
    """Resolves intrinsic functions against parameters, pseudo parameters and local resources."""

    def __init__(
        self,
        body: Mapping[str, Any],
        account: Account,
        parameters: Mapping[str, str],
        sqs_endpoint: str,
    ) -> None:
        self._resources: Mapping[str, Any] = body["Resources"]
        self._parameters_declared: Mapping[str, Any] = body.get("Parameters", {})
        undeclared = sorted(set(parameters) - set(self._parameters_declared))
        if undeclared:
            raise TemplateError(
                f"parameters {', '.join(undeclared)} are not declared in the template"
                f" (it declares {', '.join(sorted(self._parameters_declared)) or 'none'})"
            )
        # Given values are used as they are: unscaled, and not checked against MinValue/MaxValue
        # (a test may want a shorter RecordingIdleSeconds than a deployment allows).
        self._overrides = dict(parameters)
        self.account = account
        self._sqs_endpoint = sqs_endpoint.rstrip("/")
        self._names: dict[str, str] = {}

    # -- values
    def parameter(self, name: str) -> str:
        if name in self._overrides:
            return self._overrides[name]
        declared = self._parameters_declared.get(name)
        if declared is None:
            raise TemplateError(f"Ref {name}: no such parameter or resource")
        if "Default" not in declared and name in LOCAL_PARAMETER_DEFAULTS:
            return LOCAL_PARAMETER_DEFAULTS[name]
        if "Default" not in declared:
            raise TemplateError(
                f"parameter {name} has no default; pass it in parameters={{{name!r}: ...}}"
            )
        default = declared["Default"]
        return json.dumps(default) if isinstance(default, bool) else str(default)

    def pseudo(self, name: str) -> str:
        values = {
            "AWS::StackName": self.account.stack_name,
            "AWS::Region": self.account.region,
            "AWS::AccountId": self.account.account_id,
            "AWS::Partition": self.account.partition,
            "AWS::URLSuffix": self.account.url_suffix,
            "AWS::StackId": self.account.stack_id,
        }
        if name not in values:
            raise TemplateError(f"pseudo parameter {name} is not supported locally")
        return values[name]

    def name(self, logical_id: str) -> str:
        """The physical name of a resource: its name property, or the one CloudFormation generates."""
        if logical_id not in self._names:
            resource = self._resource(logical_id)
            prop = _NAME_PROPERTY.get(resource["Type"])
            explicit = resource.get("Properties", {}).get(prop) if prop else None
            if explicit is not None:
                self._names[logical_id] = str(self.resolve(explicit))
            else:
                generated = f"{self.account.stack_name}-{logical_id}"
                if resource["Type"] == "AWS::S3::Bucket":
                    # Bucket names are global: CloudFormation's random suffix keeps them apart,
                    # here the account does (stacks of several accounts share one moto).
                    generated = f"{generated}-{self.account.account_id}".lower()
                self._names[logical_id] = generated
        return self._names[logical_id]

    def ref(self, name: str) -> str:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name not in self._resources:
            return self.parameter(name)
        kind = self._resources[name]["Type"]
        if kind == "AWS::SQS::Queue":
            return self.queue_url(self.name(name))
        if kind == "AWS::KMS::Key":
            return self.key_id(name)
        if kind == "AWS::Serverless::LayerVersion":
            return self.account.arn("lambda", f"layer:{self.name(name)}:1")
        return self.name(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self._resource(logical_id)["Type"]
        name = self.name(logical_id)
        arns = {
            "AWS::Kinesis::Stream": lambda: self.account.arn("kinesis", f"stream/{name}"),
            "AWS::DynamoDB::Table": lambda: self.account.arn("dynamodb", f"table/{name}"),
            "AWS::S3::Bucket": lambda: self.account.arn("s3", name, regional=False),
            "AWS::SQS::Queue": lambda: self.account.arn("sqs", name),
            "AWS::Serverless::Function": lambda: self.account.arn("lambda", f"function:{name}"),
            "AWS::Lambda::Function": lambda: self.account.arn("lambda", f"function:{name}"),
            "AWS::Logs::LogGroup": lambda: self.account.arn("logs", f"log-group:{name}:*"),
            "AWS::KMS::Key": lambda: self.account.arn("kms", f"key/{self.key_id(logical_id)}"),
        }
        if attribute == "Arn" and kind in arns:
            return arns[kind]()
        if kind == "AWS::SQS::Queue" and attribute == "QueueName":
            return name
        if kind == "AWS::SQS::Queue" and attribute == "QueueUrl":
            return self.queue_url(name)
        if kind == "AWS::S3::Bucket" and attribute == "DomainName":
            return f"{name}.s3.amazonaws.com"
        raise TemplateError(
            f"Fn::GetAtt {logical_id}.{attribute} ({kind}) is not supported locally"
        )

    def key_id(self, logical_id: str) -> str:
        """A KMS key's id: stable for a stack and key, as CloudFormation's is for a deployment.

        The local stack creates no key: moto's S3, DynamoDB, Kinesis and SQS store the key's
        ARN as given and encrypt nothing, so the ARN only has to be well formed and stable."""
        seed = f"{self.account.account_id}/{self.account.region}/{self.account.stack_name}/{logical_id}"
        return str(uuid.uuid5(uuid.NAMESPACE_URL, seed))

    def queue_url(self, queue_name: str) -> str:
        # moto's queue URLs: <endpoint>/<account>/<name>
        return f"{self._sqs_endpoint}/{self.account.account_id}/{queue_name}"

    def _resource(self, logical_id: str) -> Mapping[str, Any]:
        if logical_id not in self._resources:
            raise TemplateError(f"no resource {logical_id} in the template")
        return cast(Mapping[str, Any], self._resources[logical_id])

    # -- intrinsics
    def resolve(self, value: Any) -> Any:
        """`value` with every intrinsic function replaced by its local value."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), *_ = value.items()
            intrinsic = {
                "Ref": self._ref,
                "Fn::GetAtt": self._get_att,
                "Fn::Sub": self._sub,
                "Fn::Join": self._join,
                "Fn::Select": self._select,
                "Fn::Split": self._split,
            }.get(key)
            if intrinsic is not None:
                return intrinsic(arg)
            if key.startswith("Fn::") or key == "Condition":
                raise TemplateError(f"{key} is not supported by the local stack")
        return {key: self.resolve(item) for key, item in value.items()}

    def _ref(self, arg: Any) -> str:
        return self.ref(str(arg))

    def _get_att(self, arg: Any) -> str:
        logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
        return self.get_att(str(logical_id), str(attribute))

    def _join(self, arg: Any) -> str:
        separator, items = arg
        return str(separator).join(str(item) for item in self.resolve(items))

    def _select(self, arg: Any) -> Any:
        index, items = arg
        return self.resolve(items)[int(self.resolve(index))]

    def _split(self, arg: Any) -> list[str]:
        separator, text = arg
        return str(self.resolve(text)).split(str(separator))

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        local = {name: str(self.resolve(item)) for name, item in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            variable = match.group(1).strip()
            if variable in local:
                return local[variable]
            if "." in variable and not variable.startswith("AWS::"):
                logical_id, attribute = variable.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(variable)

        return _SUB_VARIABLE.sub(substitute, str(text)).replace("${!", "${")


# ------------------------------------------------------------------ what the local stack builds


@dataclass(frozen=True)
class StreamSpec:
    """A Kinesis data stream."""

    logical_id: str
    name: str
    arn: str
    shard_count: int
    retention_hours: int
    encryption_key: str | None


@dataclass(frozen=True)
class TableSpec:
    """A DynamoDB table; `create_table` holds CreateTable's arguments as the template gives them."""

    logical_id: str
    name: str
    arn: str
    create_table: Mapping[str, Any]
    ttl_attribute: str | None
    point_in_time_recovery: bool


@dataclass(frozen=True)
class BucketSpec:
    """An S3 bucket."""

    logical_id: str
    name: str
    arn: str
    versioned: bool
    encryption: Mapping[str, Any] | None
    public_access_block: Mapping[str, Any] | None


@dataclass(frozen=True)
class QueueSpec:
    """An SQS queue (the failure destinations)."""

    logical_id: str
    name: str
    arn: str
    url: str
    attributes: Mapping[str, str]


@dataclass(frozen=True)
class Destination:
    """An OnFailure destination of an event source mapping or of asynchronous invocations."""

    kind: str  # SQS, SNS, Lambda, EventBridge, S3
    arn: str


@dataclass(frozen=True)
class AsyncConfig:
    """EventInvokeConfig: how Lambda retries asynchronous invocations, and where failures go."""

    maximum_retry_attempts: int = DEFAULT_ASYNC_RETRY_ATTEMPTS
    maximum_event_age_s: float = DEFAULT_ASYNC_EVENT_AGE_S
    on_failure: Destination | None = None
    on_success: Destination | None = None


@dataclass(frozen=True)
class KinesisSource:
    """A Kinesis event source mapping, with Lambda's defaults for what the template leaves out."""

    event_name: str
    stream_logical_id: str
    stream_arn: str
    starting_position: str
    batch_size: int = DEFAULT_KINESIS_BATCH_SIZE
    maximum_batching_window_s: float = 0.0
    bisect_batch_on_function_error: bool = False
    maximum_retry_attempts: int = -1  # -1: retry until the record expires
    maximum_record_age_s: float = -1.0  # -1: no limit
    report_batch_item_failures: bool = False
    on_failure: Destination | None = None
    enabled: bool = True


@dataclass(frozen=True)
class S3Source:
    """An S3 notification to a function; `filter_rules` as S3's FilterRules (prefix, suffix)."""

    event_name: str
    bucket_logical_id: str
    bucket_name: str
    events: tuple[str, ...]
    filter_rules: tuple[tuple[str, str], ...]

    @property
    def prefix(self) -> str:
        return next((value for name, value in self.filter_rules if name.lower() == "prefix"), "")

    @property
    def suffix(self) -> str:
        return next((value for name, value in self.filter_rules if name.lower() == "suffix"), "")


@dataclass(frozen=True)
class ScheduleSource:
    """An EventBridge Scheduler schedule (SAM ScheduleV2) invoking a function with `input`."""

    event_name: str
    expression: str
    period_s: float
    input: Any
    enabled: bool = True


@dataclass(frozen=True)
class EventRuleSource:
    """An EventBridge rule on the default bus invoking a function (SAM EventBridgeRule):
    `pattern` is the rule's event pattern, resolved."""

    event_name: str
    pattern: Mapping[str, Any]
    maximum_event_age_s: float = DEFAULT_EVENT_AGE_S
    maximum_retry_attempts: int = DEFAULT_EVENT_RETRY_ATTEMPTS
    enabled: bool = True


@dataclass(frozen=True)
class FunctionSpec:
    """A function as deployed: code, handler, limits, environment and what invokes it."""

    logical_id: str
    name: str
    arn: str
    code_uri: Path
    handler: str
    timeout_s: float
    memory_mb: int
    environment: Mapping[str, str]
    log_group_name: str
    async_config: AsyncConfig = AsyncConfig()
    kinesis_sources: tuple[KinesisSource, ...] = ()
    s3_sources: tuple[S3Source, ...] = ()
    schedules: tuple[ScheduleSource, ...] = ()
    event_rules: tuple[EventRuleSource, ...] = ()


@dataclass(frozen=True)
class LocalPlan:
    """Everything the local stack creates and wires, resolved for one local deployment."""

    account: Account
    streams: Mapping[str, StreamSpec]
    tables: Mapping[str, TableSpec]
    buckets: Mapping[str, BucketSpec]
    queues: Mapping[str, QueueSpec]
    functions: Mapping[str, FunctionSpec]
    outputs: Mapping[str, str] = field(default_factory=dict)
    # Logical ids of the functions Amazon Connect may invoke (AWS::Lambda::Permission to Connect).
    connect_functions: tuple[str, ...] = ()

    def function(self, name_or_logical_id: str) -> FunctionSpec:
        """A function by logical id, name or ARN."""
        name = name_or_logical_id.rsplit(":function:", 1)[-1].split(":", 1)[0]
        for spec in self.functions.values():
            if name in {spec.logical_id, spec.name}:
                return spec
        raise KeyError(f"no function {name_or_logical_id!r} in the template")

    def queue_by_arn(self, arn: str) -> QueueSpec:
        for spec in self.queues.values():
            if spec.arn == arn:
                return spec
        raise KeyError(f"no queue with ARN {arn} in the template")


_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_RATE_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}


def rate_period_s(expression: str) -> float:
    """Seconds between runs of a `rate(...)` schedule expression."""
    match = _RATE.match(expression.strip())
    if match is None:
        raise TemplateError(f"schedule {expression!r}: only rate(N unit) is supported locally")
    return float(int(match.group(1)) * _RATE_UNIT_S[match.group(2).rstrip("s")])


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _encryption_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A bucket encryption rule as PutBucketEncryption spells it (CloudFormation drops "Apply")."""
    renamed = {"ServerSideEncryptionByDefault": "ApplyServerSideEncryptionByDefault"}
    return {renamed.get(key, key): value for key, value in rule.items()}


def _destination(resolver: Resolver, config: Mapping[str, Any] | None) -> Destination | None:
    if not config or "OnFailure" not in config:
        return None
    on_failure = config["OnFailure"]
    return Destination(
        str(on_failure.get("Type", "SQS")), str(resolver.resolve(on_failure["Destination"]))
    )


class _PlanBuilder:
    def __init__(self, body: Mapping[str, Any], resolver: Resolver, root: Path) -> None:
        self.body = body
        self.resolver = resolver
        self.root = root
        self.globals: Mapping[str, Any] = body.get("Globals", {}).get("Function", {})

    def of_type(self, *kinds: str) -> dict[str, Mapping[str, Any]]:
        return {
            logical_id: resource.get("Properties", {})
            for logical_id, resource in self.body["Resources"].items()
            if resource["Type"] in kinds
        }

    def stream(self, logical_id: str, props: Mapping[str, Any]) -> StreamSpec:
        r = self.resolver
        encryption = props.get("StreamEncryption")
        return StreamSpec(
            logical_id=logical_id,
            name=r.name(logical_id),
            arn=r.get_att(logical_id, "Arn"),
            shard_count=int(r.resolve(props.get("ShardCount", 1))),
            retention_hours=int(r.resolve(props.get("RetentionPeriodHours", 24))),
            encryption_key=str(r.resolve(encryption["KeyId"])) if encryption else None,
        )

    def table(self, logical_id: str, props: Mapping[str, Any]) -> TableSpec:
        r = self.resolver
        create: dict[str, Any] = {"TableName": r.name(logical_id)}
        for key in (
            "AttributeDefinitions",
            "KeySchema",
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
            "BillingMode",
            "ProvisionedThroughput",
            "StreamSpecification",
        ):
            if key in props:
                create[key] = r.resolve(props[key])
        if "SSESpecification" in props:
            sse = r.resolve(props["SSESpecification"])
            create["SSESpecification"] = {"Enabled": _flag(sse.get("SSEEnabled"))}
            if "SSEType" in sse:
                create["SSESpecification"]["SSEType"] = sse["SSEType"]
            if "KMSMasterKeyId" in sse:
                create["SSESpecification"]["KMSMasterKeyId"] = sse["KMSMasterKeyId"]
        ttl = props.get("TimeToLiveSpecification")
        pitr = props.get("PointInTimeRecoverySpecification", {})
        return TableSpec(
            logical_id=logical_id,
            name=create["TableName"],
            arn=r.get_att(logical_id, "Arn"),
            create_table=create,
            ttl_attribute=str(ttl["AttributeName"]) if ttl and _flag(ttl.get("Enabled")) else None,
            point_in_time_recovery=_flag(pitr.get("PointInTimeRecoveryEnabled")),
        )

    def bucket(self, logical_id: str, props: Mapping[str, Any]) -> BucketSpec:
        r = self.resolver
        versioning = props.get("VersioningConfiguration", {})
        encryption = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration")
        block = props.get("PublicAccessBlockConfiguration")
        return BucketSpec(
            logical_id=logical_id,
            name=r.name(logical_id),
            arn=r.get_att(logical_id, "Arn"),
            versioned=versioning.get("Status") == "Enabled",
            encryption={"Rules": [_encryption_rule(rule) for rule in r.resolve(encryption)]}
            if encryption
            else None,
            public_access_block=r.resolve(block) if block else None,
        )

    def queue(self, logical_id: str, props: Mapping[str, Any]) -> QueueSpec:
        r = self.resolver
        attributes = {
            key: json.dumps(value) if isinstance(value, bool) else str(value)
            for key, value in r.resolve(dict(props)).items()
            if key not in {"QueueName", "Tags", "RedrivePolicy", "RedriveAllowPolicy"}
        }
        name = r.name(logical_id)
        return QueueSpec(
            logical_id=logical_id,
            name=name,
            arn=r.get_att(logical_id, "Arn"),
            url=r.queue_url(name),
            attributes=attributes,
        )

    def function(self, logical_id: str, props: Mapping[str, Any]) -> FunctionSpec:
        r = self.resolver
        merged = {**self.globals, **props}
        variables = {
            **self.globals.get("Environment", {}).get("Variables", {}),
            **props.get("Environment", {}).get("Variables", {}),
        }
        name = r.name(logical_id)
        log_group = merged.get("LoggingConfig", {}).get("LogGroup")
        invoke_config = merged.get("EventInvokeConfig", {})
        kinesis: list[KinesisSource] = []
        s3: list[S3Source] = []
        schedules: list[ScheduleSource] = []
        rules: list[EventRuleSource] = []
        for event_name, event in props.get("Events", {}).items():
            event_props = event.get("Properties", {})
            if event["Type"] == "Kinesis":
                kinesis.append(self.kinesis_source(event_name, event_props))
            elif event["Type"] == "S3":
                s3.append(self.s3_source(event_name, event_props))
            elif event["Type"] in {"ScheduleV2", "Schedule"}:
                expression = str(r.resolve(event_props["ScheduleExpression"]))
                raw_input = r.resolve(event_props.get("Input"))
                schedules.append(
                    ScheduleSource(
                        event_name=event_name,
                        expression=expression,
                        period_s=rate_period_s(expression),
                        input=json.loads(raw_input) if isinstance(raw_input, str) else {},
                        enabled=str(event_props.get("State", "ENABLED")).upper() == "ENABLED"
                        and event_props.get("Enabled", True) is not False,
                    )
                )
            elif event["Type"] == "EventBridgeRule":
                rules.append(self.event_rule(logical_id, event_name, event_props))
            else:
                raise TemplateError(
                    f"{logical_id}.Events.{event_name}: type {event['Type']} is not wired locally"
                )
        return FunctionSpec(
            logical_id=logical_id,
            name=name,
            arn=r.get_att(logical_id, "Arn"),
            code_uri=(self.root / str(merged["CodeUri"])).resolve(),
            handler=str(merged["Handler"]),
            timeout_s=float(r.resolve(merged.get("Timeout", DEFAULT_TIMEOUT_S))),
            memory_mb=int(r.resolve(merged.get("MemorySize", DEFAULT_MEMORY_MB))),
            environment={key: str(r.resolve(value)) for key, value in variables.items()},
            log_group_name=str(r.resolve(log_group)) if log_group else f"/aws/lambda/{name}",
            async_config=AsyncConfig(
                maximum_retry_attempts=int(
                    invoke_config.get("MaximumRetryAttempts", DEFAULT_ASYNC_RETRY_ATTEMPTS)
                ),
                maximum_event_age_s=float(
                    invoke_config.get("MaximumEventAgeInSeconds", DEFAULT_ASYNC_EVENT_AGE_S)
                ),
                on_failure=_destination(r, invoke_config.get("DestinationConfig")),
                on_success=_destination(
                    r,
                    {"OnFailure": invoke_config["DestinationConfig"]["OnSuccess"]}
                    if "OnSuccess" in invoke_config.get("DestinationConfig", {})
                    else None,
                ),
            ),
            kinesis_sources=tuple(kinesis),
            s3_sources=tuple(s3),
            schedules=tuple(schedules),
            event_rules=tuple(rules),
        )

    def event_rule(
        self, logical_id: str, event_name: str, props: Mapping[str, Any]
    ) -> EventRuleSource:
        r = self.resolver
        where = f"{logical_id}.Events.{event_name}"
        if props.get("EventBusName") not in (None, "default"):
            raise TemplateError(f"{where}: only the default event bus is wired locally")
        if "Pattern" not in props:
            raise TemplateError(f"{where}: an EventBridgeRule needs a Pattern")
        retry = props.get("RetryPolicy", {})
        return EventRuleSource(
            event_name=event_name,
            pattern=r.resolve(props["Pattern"]),
            maximum_event_age_s=float(
                r.resolve(retry.get("MaximumEventAgeInSeconds", DEFAULT_EVENT_AGE_S))
            ),
            maximum_retry_attempts=int(
                r.resolve(retry.get("MaximumRetryAttempts", DEFAULT_EVENT_RETRY_ATTEMPTS))
            ),
            enabled=str(props.get("State", "ENABLED")).upper() == "ENABLED"
            and props.get("Enabled", True) is not False,
        )

    def kinesis_source(self, event_name: str, props: Mapping[str, Any]) -> KinesisSource:
        r = self.resolver
        stream = props["Stream"]
        if not (isinstance(stream, dict) and "Fn::GetAtt" in stream):
            raise TemplateError(f"Kinesis event {event_name}: Stream must be !GetAtt <stream>.Arn")
        stream_logical_id = str(stream["Fn::GetAtt"][0])
        return KinesisSource(
            event_name=event_name,
            stream_logical_id=stream_logical_id,
            stream_arn=str(r.resolve(stream)),
            starting_position=str(props.get("StartingPosition", "LATEST")),
            batch_size=int(props.get("BatchSize", DEFAULT_KINESIS_BATCH_SIZE)),
            maximum_batching_window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            bisect_batch_on_function_error=_flag(props.get("BisectBatchOnFunctionError", False)),
            maximum_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
            maximum_record_age_s=float(props.get("MaximumRecordAgeInSeconds", -1)),
            report_batch_item_failures="ReportBatchItemFailures"
            in props.get("FunctionResponseTypes", []),
            on_failure=_destination(r, props.get("DestinationConfig")),
            enabled=props.get("Enabled", True) is not False,
        )

    def s3_source(self, event_name: str, props: Mapping[str, Any]) -> S3Source:
        bucket = props["Bucket"]
        if not (isinstance(bucket, dict) and "Ref" in bucket):
            raise TemplateError(f"S3 event {event_name}: Bucket must be !Ref <bucket>")
        events = props["Events"]
        rules = props.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        return S3Source(
            event_name=event_name,
            bucket_logical_id=str(bucket["Ref"]),
            bucket_name=self.resolver.name(str(bucket["Ref"])),
            events=tuple([events] if isinstance(events, str) else events),
            filter_rules=tuple(
                (str(rule["Name"]), str(self.resolver.resolve(rule["Value"]))) for rule in rules
            ),
        )


def local_plan(
    body: Mapping[str, Any],
    *,
    account: Account = Account(),
    parameters: Mapping[str, str] | None = None,
    sqs_endpoint: str = "http://127.0.0.1",
    root: Path = REPO,
) -> LocalPlan:
    """Resolve the template for a local deployment: every resource the local stack builds and wires.

    `sqs_endpoint` is moto's endpoint (queue URLs embed it); `root` is where CodeUri paths start.
    """
    resolver = Resolver(body, account, parameters or {}, sqs_endpoint)
    builder = _PlanBuilder(body, resolver, root)
    outputs: dict[str, str] = {}
    for output_name, output in body.get("Outputs", {}).items():
        try:
            outputs[output_name] = str(resolver.resolve(output["Value"]))
        except TemplateError:
            continue  # an output the local stack has no value for (a layer, a parameter without default)
    return LocalPlan(
        account=account,
        streams={
            k: builder.stream(k, p) for k, p in builder.of_type("AWS::Kinesis::Stream").items()
        },
        tables={k: builder.table(k, p) for k, p in builder.of_type("AWS::DynamoDB::Table").items()},
        buckets={k: builder.bucket(k, p) for k, p in builder.of_type("AWS::S3::Bucket").items()},
        queues={k: builder.queue(k, p) for k, p in builder.of_type("AWS::SQS::Queue").items()},
        functions={
            k: builder.function(k, p)
            for k, p in builder.of_type("AWS::Serverless::Function").items()
        },
        outputs=outputs,
        connect_functions=tuple(
            str(props["FunctionName"]["Ref"])
            for props in builder.of_type("AWS::Lambda::Permission").values()
            if props.get("Principal") == "connect.amazonaws.com"
            and isinstance(props.get("FunctionName"), dict)
            and "Ref" in props["FunctionName"]
        ),
    )
