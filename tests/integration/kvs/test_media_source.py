"""The recorder's GetMedia client (kvs.MediaSource) against the KVS emulator over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable

from callrec.fragments import Fragment, FragmentReader
from callrec.kvs import MediaSource, StartSelector
from callrec_local.kvs_emulator import KvsEmulator
from callrec_local.producer import ConnectCall, conversation
from tests.integration.kvs.conftest import make_clients

IDLE_END_S = 3.0  # KVS ends a response after 3 s without new data


def test_a_live_fragment_is_read_as_soon_as_it_arrives_not_at_the_end_of_the_response(
    emulator: Callable[..., KvsEmulator],
) -> None:
    # Given a live stream, read by the recorder's client from its start
    kvs = emulator(idle_timeout_seconds=IDLE_END_S)
    arn = kvs.create_stream("s")
    clients = make_clients(kvs.endpoint_url)
    media = MediaSource(clients.control, media_client=lambda _endpoint: clients.media)
    cu, op = conversation(2.0, seed=9)
    first, second = list(ConnectCall("c-1", "i-1", kvs.clock.now_ms(), cu, op).fragments())
    kvs.ingest("s", first)
    body = media.get_media(arn, StartSelector("EARLIEST"), deadline=time.monotonic() + 10)

    # When one fragment is there, then the next one is ingested 1 s later
    reader = FragmentReader()
    began = time.monotonic()
    received = body.read(64 * 1024)
    first_read_s = time.monotonic() - began
    kvs.ingest("s", second)
    events = reader.feed(received)
    while not events and (more := body.read(64 * 1024)):
        events = reader.feed(more)

    # Then each 64 KB read returned what had arrived at once (a fragment is about 32 KB): the
    # first fragment did not wait for a second one, nor for the response to end
    assert first_read_s < 1.0
    assert 0 < len(received) < 64 * 1024
    assert [e.contact_id for e in events if isinstance(e, Fragment)] == ["c-1"]
    assert time.monotonic() - began < IDLE_END_S
    body.close()
