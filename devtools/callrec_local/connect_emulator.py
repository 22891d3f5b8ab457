"""Local Amazon Connect: the contacts the simulator plays, DescribeContact, and contact events.

Dev-only. One emulated instance (`LOCAL_INSTANCE_ARN`, the instance the local stack's template
parameters name). The Connect simulator tells it what happens to each contact (it begins, is
transferred, disconnects, streams media); it answers DescribeContact as boto3's `connect`
client asks it (`GET /contacts/{InstanceId}/{ContactId}`, rest-json, on loopback: point
AWS_ENDPOINT_URL_CONNECT at `start()`'s URL), and it hands each contact event to `publish` (the
local stack puts it on its EventBridge bus, where the template's rule routes it).

Contact events are shaped as Connect's samples show them (source `aws.connect`, detail-type
"Amazon Connect Contact Event", camelCase detail with `eventType`, `contactId`,
`initialContactId`, `previousContactId`, `instanceArn`, `initiationMethod`,
`disconnectTimestamp`; resources the contact's and the instance's ARNs). Connect sends them best
effort: `EventDelivery` can delay or drop them, and `fail_describe` makes DescribeContact
throttle or refuse, so tests can take the recorder's fallbacks.

It deliberately does not emulate flows, queues, agents or any other API.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from callrec_local.kvs_emulator import ACCOUNT, REGION

LOCAL_INSTANCE_ID = "9308c2a1-9bc6-4cea-8290-6c0b4a6d38fa"
LOCAL_INSTANCE_ARN = f"arn:aws:connect:{REGION}:{ACCOUNT}:instance/{LOCAL_INSTANCE_ID}"
SOURCE = "aws.connect"
DETAIL_TYPE = "Amazon Connect Contact Event"

# A PutEvents entry (Source, DetailType, Detail as JSON text, Resources, Time).
EventPublisher = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class EventDelivery:
    """How contact events reach EventBridge: after `delay_s` (wall seconds), or not at all."""

    delay_s: float = 0.0
    drop: bool = False


@dataclass
class EmulatedContact:
    """One contact as Connect keeps it (times in epoch milliseconds of the media clock)."""

    contact_id: str
    initial_contact_id: str
    previous_contact_id: str | None
    initiation_method: str
    initiated_ms: int
    disconnected_ms: int | None = None
    next_contact_ids: list[str] = field(default_factory=list)
    # Live media streaming segments: stream ARN, start/stop fragment numbers and times.
    streams: list[dict[str, Any]] = field(default_factory=list)

    @property
    def arn(self) -> str:
        return f"{LOCAL_INSTANCE_ARN}/contact/{self.contact_id}"


class ConnectApiError(Exception):
    def __init__(self, error_type: str, status: int, message: str) -> None:
        super().__init__(message)
        self.error_type, self.status, self.message = error_type, status, message


class ConnectEmulator:
    """The emulated instance: contacts, DescribeContact over HTTP, contact events."""

    def __init__(
        self,
        publish: EventPublisher | None = None,
        *,
        delivery: EventDelivery = EventDelivery(),
        host: str = "127.0.0.1",
    ) -> None:
        self.publish = publish
        self.delivery = delivery
        self.instance_id = LOCAL_INSTANCE_ID
        self.instance_arn = LOCAL_INSTANCE_ARN
        self.events: list[dict[str, Any]] = []  # every event published, in order
        self.describe_calls: list[str] = []  # contact ids asked, in order
        self._host = host
        self._contacts: dict[str, EmulatedContact] = {}
        self._faults: list[ConnectApiError] = []
        self._refuse_all: ConnectApiError | None = None
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._timers: list[threading.Timer] = []

    # --- lifecycle ---
    def start(self) -> str:
        """Serve DescribeContact on loopback; returns the endpoint URL."""
        if self._server is None:
            self._server = _Server((self._host, 0), _Handler, self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
            )
            self._thread.start()
        return self.endpoint_url

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("Connect emulator not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- what happens to contacts (the simulator tells) ---
    def begin(
        self,
        contact_id: str,
        at_ms: int,
        *,
        initial_contact_id: str | None = None,
        previous_contact_id: str | None = None,
        initiation_method: str = "INBOUND",
    ) -> EmulatedContact:
        contact = EmulatedContact(
            contact_id=contact_id,
            initial_contact_id=initial_contact_id or contact_id,
            previous_contact_id=previous_contact_id,
            initiation_method=initiation_method,
            initiated_ms=at_ms,
        )
        with self._lock:
            self._contacts[contact_id] = contact
        self._emit("INITIATED", contact)
        return contact

    def stream_started(
        self, contact_id: str, stream_arn: str, fragment_number: str, at_ms: int
    ) -> None:
        with self._lock:
            self.contact(contact_id).streams.append(
                {"stream_arn": stream_arn, "start_fragment": fragment_number, "start_ms": at_ms}
            )

    def stream_stopped(self, contact_id: str, fragment_number: str | None, at_ms: int) -> None:
        with self._lock:
            streams = self.contact(contact_id).streams
            if streams and "stop_ms" not in streams[-1]:
                streams[-1].update(stop_fragment=fragment_number, stop_ms=at_ms)

    def transfer(self, from_contact: str, to_contact: str, at_ms: int) -> EmulatedContact:
        """A transfer: the contact ends (its DisconnectTimestamp is the transfer's time, as
        DescribeContact documents for transfers) and a new one begins in the same interaction."""
        previous = self.contact(from_contact)
        with self._lock:
            previous.next_contact_ids.append(to_contact)
        self.disconnect(from_contact, at_ms)
        return self.begin(
            to_contact,
            at_ms,
            initial_contact_id=previous.initial_contact_id,
            previous_contact_id=from_contact,
            initiation_method="TRANSFER",
        )

    def disconnect(self, contact_id: str, at_ms: int) -> None:
        contact = self.contact(contact_id)
        with self._lock:
            if contact.disconnected_ms is not None:
                return
            contact.disconnected_ms = at_ms
        self._emit("DISCONNECTED", contact)

    def contact(self, contact_id: str) -> EmulatedContact:
        try:
            return self._contacts[contact_id]
        except KeyError:
            raise KeyError(f"no contact {contact_id} in the emulated instance") from None

    # --- faults ---
    def fail_describe(self, error_type: str = "ThrottlingException", times: int = 1) -> None:
        """The next `times` DescribeContact calls fail with `error_type`."""
        status = {"ThrottlingException": 429, "AccessDeniedException": 403}.get(error_type, 500)
        with self._lock:
            self._faults.extend(
                ConnectApiError(error_type, status, "injected fault") for _ in range(times)
            )

    def refuse_describe(self, error_type: str | None = "AccessDeniedException") -> None:
        """Every DescribeContact call fails (None: answer again)."""
        with self._lock:
            self._refuse_all = (
                None
                if error_type is None
                else ConnectApiError(error_type, 403, "User is not authorized: injected")
            )

    # --- DescribeContact ---
    def describe(self, instance_id: str, contact_id: str) -> dict[str, Any]:
        with self._lock:
            self.describe_calls.append(contact_id)
            if self._refuse_all is not None:
                raise self._refuse_all
            if self._faults:
                raise self._faults.pop(0)
            if instance_id != self.instance_id:
                raise ConnectApiError(
                    "ResourceNotFoundException", 404, f"instance {instance_id} not found"
                )
            contact = self._contacts.get(contact_id)
            if contact is None:
                raise ConnectApiError(
                    "ResourceNotFoundException", 404, f"contact {contact_id} not found"
                )
            body: dict[str, Any] = {
                "Arn": contact.arn,
                "Id": contact.contact_id,
                "InitialContactId": contact.initial_contact_id,
                "InitiationMethod": contact.initiation_method,
                "Channel": "VOICE",
                "InitiationTimestamp": contact.initiated_ms / 1000,
            }
            if contact.previous_contact_id is not None:
                body["PreviousContactId"] = contact.previous_contact_id
            if contact.disconnected_ms is not None:
                body["DisconnectTimestamp"] = contact.disconnected_ms / 1000
            if contact.next_contact_ids:
                body["NextContacts"] = [
                    {
                        "Type": "QUICK_CONNECT",
                        "NextContactMetadata": {"QuickConnectContactData": {"ContactId": c}},
                    }
                    for c in contact.next_contact_ids
                ]
            body["Recordings"] = [
                {
                    "StorageType": "KINESIS_VIDEO_STREAM",
                    "Location": stream["stream_arn"],
                    "MediaStreamType": "AUDIO",
                    "ParticipantType": "CUSTOMER",
                    "FragmentStartNumber": stream["start_fragment"],
                    "StartTimestamp": stream["start_ms"] / 1000,
                    **(
                        {
                            "FragmentStopNumber": stream["stop_fragment"],
                            "StopTimestamp": stream["stop_ms"] / 1000,
                        }
                        if "stop_ms" in stream
                        else {}
                    ),
                }
                for stream in contact.streams
            ]
            return {"Contact": body}

    # --- contact events ---
    def _emit(self, event_type: str, contact: EmulatedContact) -> None:
        detail: dict[str, Any] = {
            "eventType": event_type,
            "contactId": contact.contact_id,
            "initialContactId": contact.initial_contact_id,
            "channel": "VOICE",
            "instanceArn": self.instance_arn,
            "initiationMethod": contact.initiation_method,
            "initiationTimestamp": _iso(contact.initiated_ms),
        }
        if contact.previous_contact_id is not None:
            detail["previousContactId"] = contact.previous_contact_id
        if event_type == "DISCONNECTED" and contact.disconnected_ms is not None:
            detail["disconnectTimestamp"] = _iso(contact.disconnected_ms)
        entry = {
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": json.dumps(detail),
            "Resources": [contact.arn, self.instance_arn],
            "Time": datetime.fromtimestamp(
                (contact.disconnected_ms or contact.initiated_ms) / 1000, tz=UTC
            ),
        }
        with self._lock:
            self.events.append(entry)
        if self.publish is None or self.delivery.drop:
            return
        if self.delivery.delay_s <= 0:
            self.publish(entry)
            return
        timer = threading.Timer(self.delivery.delay_s, self.publish, args=(entry,))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        connect: ConnectEmulator,
    ) -> None:
        self.connect = connect
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the emulator's state, not its log."""

    def do_GET(self) -> None:
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        try:
            if len(parts) != 3 or parts[0] != "contacts":
                raise ConnectApiError(
                    "UnknownOperationException", 404, f"no operation at {self.path}"
                )
            self._send(200, self.server.connect.describe(parts[1], parts[2]))
        except ConnectApiError as err:
            self._send(err.status, {"Message": err.message}, err.error_type)

    def _send(self, status: int, payload: dict[str, Any], error_type: str | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error_type is not None:
            self.send_header("x-amzn-ErrorType", error_type)
        self.end_headers()
        self.wfile.write(data)
