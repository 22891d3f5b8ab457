"""The whole callrec pipeline on one machine, built from template.yaml.

`LocalStack` starts moto on loopback (`ThreadedMotoServer`), creates the template's stream, table,
bucket and queues through real boto3 clients, runs the functions in worker processes
(`lambda_runtime`), serves the Lambda Invoke API for the handlers' own clients (`lambda_api`), and
wires what invokes them in AWS (`event_sources`): the Kinesis event source mapping, S3
notifications, the schedule, EventBridge rules, asynchronous retries and failure destinations.
With the KVS emulator, GetMedia works too; with the Connect emulator, DescribeContact, and its
contact events reach the template's rules through moto's EventBridge (`publish_event`).

Handlers find the local endpoints exactly as boto3 finds any endpoint: through botocore's
AWS_ENDPOINT_URL (moto) and service-specific AWS_ENDPOINT_URL_LAMBDA,
AWS_ENDPOINT_URL_KINESIS_VIDEO(_MEDIA, _ARCHIVED_MEDIA) and AWS_ENDPOINT_URL_CONNECT variables, with a dummy access key of the stack's own moto account; no
handler has a local-only code path.

Time: `time_scale` multiplies every duration the template and Lambda define (timeouts, batching
window, retry delays, schedule period, record and event ages): 0.01 turns the recorder's 15
minutes into 9 seconds. Template parameters are not durations it knows of: `parameters` are passed
as given, unscaled and unchecked against MinValue/MaxValue, so a scaled-down test sets
`parameters={"RecordingIdleSeconds": "3"}` itself (the recorder reads it as RECORDING_IDLE_SECONDS).
`overrides` replace a function's code, handler, timeout or variables.

It deliberately leaves out what moto does not enforce or the tests do not need: IAM policies, the
bucket policy (it would deny moto's plain HTTP), lifecycle rules, log groups, layers (the venv has
their packages).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import json
import logging
import os
import secrets
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self

import boto3
import boto3.session
import botocore.session
from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

from callrec_local.connect_emulator import ConnectEmulator
from callrec_local.event_sources import EventRules, KinesisEventSource, S3Notifications, Schedule
from callrec_local.lambda_api import LambdaApi
from callrec_local.lambda_runtime import Invocation, LambdaRuntime, RunningInvocation
from callrec_local.template import (
    TEMPLATE_PATH,
    Account,
    Destination,
    FunctionSpec,
    LocalPlan,
    load_template,
    local_plan,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

# moto maps a request to an account by its access key; the stack creates one in its own account.
BOOTSTRAP_ACCESS_KEY = "testing"
# botocore's service-specific endpoint variables (AWS_ENDPOINT_URL_<service id>), per client name.
KVS_ENDPOINT_VARIABLES = {
    "kinesisvideo": "AWS_ENDPOINT_URL_KINESIS_VIDEO",
    "kinesis-video-media": "AWS_ENDPOINT_URL_KINESIS_VIDEO_MEDIA",
    "kinesis-video-archived-media": "AWS_ENDPOINT_URL_KINESIS_VIDEO_ARCHIVED_MEDIA",
}


class KvsServer(Protocol):
    """What the stack needs of the KVS emulator: an HTTP server on loopback."""

    def start(self) -> str: ...  # its endpoint URL

    def stop(self) -> None: ...


@dataclass(frozen=True)
class FunctionOverride:
    """Replace parts of a template function for a test (None keeps the template's)."""

    code_uri: Path | None = None
    handler: str | None = None
    timeout_s: float | None = None  # absolute, not scaled
    environment: Mapping[str, str] | None = None  # merged over the template's


class FunctionError(Exception):
    """A synchronous invocation ended in a function error (the invocation is attached)."""

    def __init__(self, invocation: Invocation) -> None:
        error = invocation.error or {}
        super().__init__(
            f"{invocation.function_name}: {error.get('errorType')}: {error.get('errorMessage')}"
        )
        self.invocation = invocation


class AtomicMotoServer(ThreadedMotoServer):
    """moto on loopback, with DynamoDB's atomic item writes.

    moto serves each request in its own thread and applies an UpdateItem to the stored item
    in place, one action after another, after checking its condition: a GetItem in another
    thread can see half an update (a recording's status COMPLETED, its keys not yet there), and
    two conditional updates can both pass their conditions. DynamoDB does neither. Here the
    DynamoDB requests are served one at a time; the other services stay concurrent."""

    def _server_entry(self) -> None:
        # ThreadedMotoServer._server_entry (moto 5), with the DynamoDB requests serialized.
        app = _one_dynamodb_request_at_a_time(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


def _one_dynamodb_request_at_a_time(app: Any) -> Callable[..., Any]:
    lock = threading.Lock()

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with lock:
                return list(app(environ, start_response))  # the whole response, inside
        return app(environ, start_response)

    return serve


def stop_moto(server: ThreadedMotoServer) -> None:
    """`server.stop()`, without waiting for the serve loop's next poll (every 0.5 s, fixed by moto).

    A connection wakes the loop, which then sees the shutdown request; an empty one is closed
    without a response. About half a second saved at every stack's stop.
    """
    host, port = server.get_host_and_port()
    stopping = threading.Thread(target=server.stop, name="moto-stop", daemon=True)
    stopping.start()
    while stopping.is_alive():
        with contextlib.suppress(OSError):
            socket.create_connection((host, port), timeout=0.5).close()
        stopping.join(0.02)


# Clients are created under this lock: a boto3 session is not safe to create clients from in several
# threads.
_SESSION_LOCK = threading.RLock()


@functools.cache
def isolated_session() -> boto3.session.Session:
    """A boto3 session that reads nothing of the developer's AWS setup: no config or credentials
    file, no AWS_PROFILE (a profile missing from the config file would fail every client, a present
    one would lend its settings). The stack's clients pass their endpoint and credentials.

    One per process, shared by every stack: service models are then loaded once, not at every
    stack's start. Create clients from it under `_SESSION_LOCK`.
    """
    # (config name, environment variables, default, conversion): no variable, nothing configured.
    core = botocore.session.Session(
        session_vars={
            "profile": (None, None, None, None),
            "config_file": (None, None, os.devnull, None),
            "credentials_file": (None, None, os.devnull, None),
        }
    )
    return boto3.session.Session(botocore_session=core)


def default_kvs() -> KvsServer | None:
    """The KVS emulator of callrec_local.kvs_emulator, if it exists yet."""
    try:
        module = importlib.import_module("callrec_local.kvs_emulator")
    except ModuleNotFoundError:
        return None
    factory = getattr(module, "KvsEmulator", None)
    server: KvsServer | None = factory() if callable(factory) else None
    return server


class LocalStack:
    """The template's resources in moto plus the Lambda wiring; a context manager.

    `parameters`: template parameter values by name, as strings (`sam deploy
    --parameter-overrides`); a name the template does not declare is a `TemplateError`. They are
    not scaled by `time_scale` nor checked against MinValue/MaxValue: with `time_scale=0.01`, pass
    e.g. `parameters={"RecordingIdleSeconds": "3"}` for a recorder that ends a call after 3 idle
    seconds (the template's minimum is 5).

    `moto`: a moto server already running, shared with other stacks (this stack neither starts
    nor stops it). With the same `account_id`, two stacks then live side by side in one account
    and region, as two deployments of the template would: whatever name the template chooses
    that does not derive from the stack collides there.
    """

    def __init__(
        self,
        template_path: Path = TEMPLATE_PATH,
        *,
        stack_name: str = "callrec-local",
        region: str = "us-east-1",
        account_id: str | None = None,
        parameters: Mapping[str, str] | None = None,
        time_scale: float = 1.0,
        overrides: Mapping[str, FunctionOverride] | None = None,
        kvs: KvsServer | Literal["auto"] | None = "auto",
        connect: ConnectEmulator | Literal["auto"] | None = "auto",
        schedules: bool = True,
        event_sources: bool = True,
        max_concurrency: int = 8,
        work_dir: Path | None = None,
        moto: ThreadedMotoServer | None = None,
    ) -> None:
        self.template_path = template_path
        # Every stack gets its own moto account (random unless given), so stacks, and other tests
        # using moto in the same process, never see each other's resources.
        self.account = Account(
            stack_name=stack_name,
            region=region,
            account_id=account_id or f"{secrets.randbelow(9 * 10**11) + 10**11}",
        )
        self._credentials = {
            "AWS_ACCESS_KEY_ID": BOOTSTRAP_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": BOOTSTRAP_ACCESS_KEY,
        }
        self.parameters = dict(parameters or {})
        self.time_scale = time_scale
        self.overrides = dict(overrides or {})
        self._kvs: KvsServer | None = default_kvs() if kvs == "auto" else kvs
        # The emulated Connect instance: DescribeContact, and contact events onto EventBridge.
        self._connect: ConnectEmulator | None = ConnectEmulator() if connect == "auto" else connect
        self._schedules_enabled = schedules
        self._event_sources_enabled = event_sources
        self._max_concurrency = max_concurrency
        self._work_dir = work_dir
        self._own_work_dir = False
        self._shared_moto = moto
        self._moto: Any = None
        self._api: LambdaApi | None = None
        self._runtime: LambdaRuntime | None = None
        self._sources: list[KinesisEventSource | S3Notifications | Schedule | EventRules] = []
        self._plan: LocalPlan | None = None
        self.moto_endpoint = ""
        self.lambda_endpoint = ""
        self.kvs_endpoint: str | None = None
        self.connect_endpoint: str | None = None
        self.undelivered: list[tuple[Destination, dict[str, Any]]] = []
        self._session = isolated_session()
        self._client_lock = _SESSION_LOCK
        self._destination_sqs: Any = None
        self._events_client: Any = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Self:
        """Start moto, the KVS emulator and the Lambda API, create the resources, wire the functions."""
        if self._work_dir is None:
            self._work_dir = Path(tempfile.mkdtemp(prefix="callrec-local-"))
            self._own_work_dir = True
        (self._work_dir / "logs").mkdir(parents=True, exist_ok=True)
        # moto's server logs every request through werkzeug; tests read invocation records instead.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        try:
            if self._shared_moto is not None:
                self._moto = self._shared_moto
            else:
                self._moto = AtomicMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
                self._moto.start()
            host, port = self._moto.get_host_and_port()
            self.moto_endpoint = f"http://{host}:{port}"
            self._credentials = self._account_credentials()
            if self._kvs is not None:
                self.kvs_endpoint = self._kvs.start()
            if self._connect is not None:
                self.connect_endpoint = self._connect.start()
                if self._connect.publish is None:
                    self._connect.publish = self.publish_event
            self._plan = local_plan(
                load_template(self.template_path),
                account=self.account,
                parameters=self.parameters,
                sqs_endpoint=self.moto_endpoint,
                root=self.template_path.parent,
            )
            self._create_resources(self._plan)
            self._runtime = LambdaRuntime(
                {name: self._effective(spec) for name, spec in self._plan.functions.items()},
                {},
                log_dir=self._work_dir / "logs",
                time_scale=self.time_scale,
                max_concurrency=self._max_concurrency,
                on_failure=self._deliver,
                region=self.account.region,
            )
            self._api = LambdaApi(self._runtime)
            self.lambda_endpoint = self._api.start()
            self._runtime.environment.update(self.environment)
            self._wire(self._plan, self._runtime)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the wiring, kill every running invocation, stop the servers, drop the state."""
        # Pollers first stop taking work, then running invocations die, then the pollers end.
        for source in self._sources:
            source.request_stop()
        if self._runtime is not None:
            self._runtime.stop()
        for source in self._sources:
            source.stop()
        self._sources.clear()
        if self._api is not None:
            self._api.stop()
            self._api = None
        if self._kvs is not None and self.kvs_endpoint is not None:
            self._kvs.stop()
            self.kvs_endpoint = None
        if self._connect is not None and self.connect_endpoint is not None:
            self._connect.stop()
            self.connect_endpoint = None
        if self._moto is not None:
            if self._moto is not self._shared_moto:
                stop_moto(self._moto)
            self._moto = None
        if self._own_work_dir and self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _account_credentials(self) -> dict[str, str]:
        """An access key of an IAM user in the stack's own moto account."""
        account_id = self.account.account_id

        def to_account(request: Any, **_: Any) -> None:
            request.headers["x-moto-account-id"] = account_id

        iam = self.client("iam")
        iam.meta.events.register("before-sign.iam.*", to_account)
        iam.create_user(UserName=self.account.stack_name)
        key = iam.create_access_key(UserName=self.account.stack_name)["AccessKey"]
        return {
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        }

    # ------------------------------------------------------------------ what the template says
    @property
    def plan(self) -> LocalPlan:
        """The resolved template: resources, functions and their event sources."""
        if self._plan is None:
            raise RuntimeError("the local stack is not started")
        return self._plan

    @property
    def outputs(self) -> Mapping[str, str]:
        """The template's Outputs, resolved for this stack (RecordingsBucketName, ...)."""
        return self.plan.outputs

    @property
    def stream_name(self) -> str:
        (stream,) = self.plan.streams.values()
        return stream.name

    @property
    def table_name(self) -> str:
        (table,) = self.plan.tables.values()
        return table.name

    @property
    def bucket_name(self) -> str:
        """The recordings bucket (the template also declares its access-log bucket)."""
        return self.plan.outputs["RecordingsBucketName"]

    def function_name(self, logical_id: str) -> str:
        return self.plan.function(logical_id).name

    def queue_url(self, logical_id: str) -> str:
        return self.plan.queues[logical_id].url

    def function(self, name: str) -> FunctionSpec:
        """A function as it runs here: after overrides and time scaling."""
        return self.runtime.function(name)

    def _effective(self, spec: FunctionSpec) -> FunctionSpec:
        override = self.overrides.get(spec.logical_id, FunctionOverride())
        return dataclasses.replace(
            spec,
            code_uri=override.code_uri or spec.code_uri,
            handler=override.handler or spec.handler,
            timeout_s=override.timeout_s
            if override.timeout_s is not None
            else spec.timeout_s * self.time_scale,
            environment={**spec.environment, **(override.environment or {})},
        )

    # ------------------------------------------------------------------ clients
    @property
    def environment(self) -> dict[str, str]:
        """Variables that point any boto3 client (in a handler or a test) at this stack."""
        env = {
            **self._credentials,
            "AWS_DEFAULT_REGION": self.account.region,
            "AWS_REGION": self.account.region,
            # Nothing from a developer's ~/.aws may leak in.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_ENDPOINT_URL": self.moto_endpoint,
            "AWS_ENDPOINT_URL_LAMBDA": self.lambda_endpoint,
        }
        if self.kvs_endpoint is not None:
            env.update(dict.fromkeys(KVS_ENDPOINT_VARIABLES.values(), self.kvs_endpoint))
        if self.connect_endpoint is not None:
            env["AWS_ENDPOINT_URL_CONNECT"] = self.connect_endpoint
        return env

    def endpoint_for(self, service_name: str) -> str:
        if service_name == "lambda":
            return self.lambda_endpoint
        if service_name in KVS_ENDPOINT_VARIABLES:
            if self.kvs_endpoint is None:
                raise RuntimeError("the local stack runs without a KVS emulator")
            return self.kvs_endpoint
        if service_name == "connect":
            if self.connect_endpoint is None:
                raise RuntimeError("the local stack runs without a Connect emulator")
            return self.connect_endpoint
        return self.moto_endpoint

    def client(self, service_name: str) -> Any:
        """A boto3 client of `service_name` talking to this stack."""
        with self._client_lock:
            return self._session.client(
                service_name,  # type: ignore[call-overload]
                endpoint_url=self.endpoint_for(service_name),
                region_name=self.account.region,
                aws_access_key_id=self._credentials["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=self._credentials["AWS_SECRET_ACCESS_KEY"],
            )

    def s3(self) -> S3Client:
        client: S3Client = self.client("s3")
        return client

    def dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = self.client("dynamodb")
        return client

    def kinesis(self) -> KinesisClient:
        client: KinesisClient = self.client("kinesis")
        return client

    def lambda_client(self) -> LambdaClient:
        client: LambdaClient = self.client("lambda")
        return client

    def sqs(self) -> Any:
        return self.client("sqs")

    # ------------------------------------------------------------------ resources
    def _create_resources(self, plan: LocalPlan) -> None:
        self._create_streams(plan)
        self._create_tables(plan)
        self._create_buckets(plan)
        self._create_queues(plan)

    def _create_streams(self, plan: LocalPlan) -> None:
        kinesis = self.kinesis()
        for stream in plan.streams.values():
            kinesis.create_stream(StreamName=stream.name, ShardCount=stream.shard_count)
            kinesis.get_waiter("stream_exists").wait(
                StreamName=stream.name, WaiterConfig={"Delay": 0, "MaxAttempts": 50}
            )
            if stream.retention_hours != 24:
                kinesis.increase_stream_retention_period(
                    StreamName=stream.name, RetentionPeriodHours=stream.retention_hours
                )
            if stream.encryption_key is not None:
                kinesis.start_stream_encryption(
                    StreamName=stream.name, EncryptionType="KMS", KeyId=stream.encryption_key
                )

    def _create_tables(self, plan: LocalPlan) -> None:
        dynamodb = self.dynamodb()
        for table in plan.tables.values():
            dynamodb.create_table(**table.create_table)
            if table.ttl_attribute is not None:
                dynamodb.update_time_to_live(
                    TableName=table.name,
                    TimeToLiveSpecification={"AttributeName": table.ttl_attribute, "Enabled": True},
                )
            if table.point_in_time_recovery:
                dynamodb.update_continuous_backups(
                    TableName=table.name,
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                )

    def _create_buckets(self, plan: LocalPlan) -> None:
        s3 = self.s3()
        for bucket in plan.buckets.values():
            if self.account.region == "us-east-1":
                s3.create_bucket(Bucket=bucket.name)
            else:
                s3.create_bucket(
                    Bucket=bucket.name,
                    CreateBucketConfiguration={"LocationConstraint": self.account.region},  # type: ignore[typeddict-item]
                )
            if bucket.versioned:
                s3.put_bucket_versioning(
                    Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"}
                )
            if bucket.encryption is not None:
                s3.put_bucket_encryption(
                    Bucket=bucket.name,
                    ServerSideEncryptionConfiguration=bucket.encryption,  # type: ignore[arg-type]
                )
            if bucket.public_access_block is not None:
                s3.put_public_access_block(
                    Bucket=bucket.name,
                    PublicAccessBlockConfiguration=bucket.public_access_block,  # type: ignore[arg-type]
                )

    def _create_queues(self, plan: LocalPlan) -> None:
        sqs = self.sqs()
        for queue in plan.queues.values():
            url = sqs.create_queue(QueueName=queue.name, Attributes=dict(queue.attributes))[
                "QueueUrl"
            ]
            if url != queue.url:
                raise RuntimeError(f"moto named queue {queue.name} {url}, expected {queue.url}")

    def _wire(self, plan: LocalPlan, runtime: LambdaRuntime) -> None:
        functions = [runtime.function(logical_id) for logical_id in plan.functions]
        if self._event_sources_enabled:
            for function in functions:
                for source in function.kinesis_sources:
                    self._sources.append(
                        KinesisEventSource(
                            runtime,
                            function,
                            source,
                            stream_name=plan.streams[source.stream_logical_id].name,
                            client=self.kinesis(),
                            deliver=self._deliver,
                            account=self.account,
                            time_scale=self.time_scale,
                        )
                    )
            self._sources.append(
                S3Notifications(runtime, functions, self.s3(), self.sqs(), account=self.account)
            )
            self._sources.append(
                EventRules(
                    runtime,
                    functions,
                    self.client("events"),
                    self.sqs(),
                    account=self.account,
                    time_scale=self.time_scale,
                )
            )
        if self._schedules_enabled:
            for function in functions:
                for schedule in function.schedules:
                    self._sources.append(
                        Schedule(runtime, function, schedule, time_scale=self.time_scale)
                    )
        for wiring in self._sources:
            wiring.start()

    def _deliver(self, destination: Destination, message: dict[str, Any]) -> None:
        """Send a failure (or success) record to a destination; only SQS is wired locally."""
        if destination.kind != "SQS":
            logger.warning(
                "destination %s of type %s is not wired locally", destination.arn, destination.kind
            )
            self.undelivered.append((destination, message))
            return
        queue = self.plan.queue_by_arn(destination.arn)
        with self._client_lock:
            if self._destination_sqs is None:
                self._destination_sqs = self.sqs()
        self._destination_sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps(message))

    def drain_queue(self, logical_id: str, *, wait_s: float = 0.0) -> list[dict[str, Any]]:
        """Receive and delete every message of a template queue (failure destinations), as JSON."""
        sqs, url = self.sqs(), self.queue_url(logical_id)
        bodies: list[dict[str, Any]] = []
        while True:
            response = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=int(wait_s) if not bodies else 0,
            )
            messages = response.get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def publish_event(self, entry: dict[str, Any]) -> None:
        """Put one event on the stack's default event bus (a PutEvents entry), where the
        template's rules match it: how the Connect emulator's contact events arrive."""
        with self._client_lock:
            if self._events_client is None:
                self._events_client = self.client("events")
        response = self._events_client.put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused an event: {response['Entries']}")

    @property
    def connect(self) -> ConnectEmulator | None:
        """The emulated Connect instance the handlers reach (DescribeContact, contact events)."""
        return self._connect

    @property
    def kvs(self) -> KvsServer | None:
        """The KVS emulator the handlers reach (a `KvsEmulator` unless another was given)."""
        return self._kvs

    # ------------------------------------------------------------------ running functions
    def contact_flow_handler(self) -> Callable[[dict[str, Any]], Any]:
        """Invoke the function Connect may invoke, as Connect does: synchronously; its result.

        For `ConnectSimulator(emulator, stack.contact_flow_handler())`. A function error is raised
        as `FunctionError` (the contact flow takes its Error branch).
        """
        (logical_id,) = self.plan.connect_functions

        def invoke(event: dict[str, Any]) -> Any:
            invocation = self.runtime.invoke(logical_id, event, source="connect")
            if invocation.error is not None:
                raise FunctionError(invocation)
            return invocation.result

        return invoke

    @property
    def runtime(self) -> LambdaRuntime:
        if self._runtime is None:
            raise RuntimeError("the local stack is not started")
        return self._runtime

    def invoke(self, function: str, event: Any) -> Invocation:
        """Invoke a function synchronously (logical id, name or ARN) and return the record."""
        return self.runtime.invoke(function, event)

    def invoke_async(self, function: str, event: Any) -> str:
        """Queue an asynchronous invocation (with the function's retries); its request id."""
        return self.runtime.invoke_async(function, event, source="direct")

    def invocations(
        self, function: str | None = None, *, source: str | None = None
    ) -> list[Invocation]:
        """Finished attempts, optionally of one function and one source (kinesis, s3, api...)."""
        name = None if function is None else self.runtime.function(function).name
        return [
            invocation
            for invocation in self.runtime.invocations
            if name in {None, invocation.function_name} and source in {None, invocation.source}
        ]

    def wait_for(
        self,
        condition: Callable[[list[Invocation]], bool],
        timeout_s: float = 30.0,
    ) -> list[Invocation]:
        """Block until `condition(all finished attempts)` holds; TimeoutError otherwise."""
        return self.runtime.wait_until(condition, timeout_s)

    def wait_running(self, function: str, timeout_s: float = 30.0) -> RunningInvocation:
        """An attempt of `function` whose handler is running now (call `.kill()` on it)."""
        return self.runtime.wait_running(function, timeout_s)

    def kill(self, request_id: str) -> None:
        """SIGKILL the running attempt of a request id."""
        self.runtime.kill(request_id)


def main(argv: list[str] | None = None) -> int:
    """`python -m callrec_local.stack`: run the local stack until interrupted, printing its variables.

    Export the printed variables in another shell and any boto3 code or the AWS CLI talks to it.
    """
    import argparse  # noqa: PLC0415 (only the command line needs it)
    import signal  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m callrec_local.stack", description=main.__doc__)
    parser.add_argument("--template", type=Path, default=TEMPLATE_PATH)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--no-schedules", action="store_true")
    parser.add_argument(
        "--parameter", action="append", default=[], metavar="NAME=VALUE", help="template parameter"
    )
    args = parser.parse_args(argv)
    parameters = dict(item.split("=", 1) for item in args.parameter)
    logging.basicConfig(level=logging.INFO)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with LocalStack(
        args.template,
        parameters=parameters,
        time_scale=args.time_scale,
        schedules=not args.no_schedules,
    ) as stack:
        for name, value in stack.environment.items():
            print(f"export {name}={value}")
        for name, value in stack.outputs.items():
            print(f"# {name}: {value}")
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
