"""The KVS emulator through real boto3 clients: control plane, selectors, live following, limits,
retention, faults and the archived-media API."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, ResponseStreamingError

from callrec_local.kvs_emulator import (
    ApiError,
    DropConnection,
    ErrorChunk,
    KvsEmulator,
    StoredFragment,
)
from callrec_local.producer import ConnectCall, FragmentSpec, conversation

Factory = Callable[..., KvsEmulator]
Walk = Callable[[bytes], list[Any]]
ClientsOf = Callable[[KvsEmulator], Any]


def specs(start_ms: int, seconds: float = 5.0, contact: str = "c-1") -> list[FragmentSpec]:
    cu, op = conversation(seconds, seed=3)
    return list(ConnectCall(contact, "i-1", start_ms, cu, op).fragments())


def ingest_all(kvs: KvsEmulator, stream: str, items: list[FragmentSpec]) -> list[StoredFragment]:
    return [kvs.ingest(stream, s, server_timestamp_ms=s.timecode_ms + 170) for s in items]


def numbers(chunk_list: list[Any]) -> list[str]:
    return [c.fragment_number for c in chunk_list if c.fragment_number]


def error_code(chunk_list: list[Any]) -> str | None:
    return next(
        (
            c.tags["AWS_KINESISVIDEO_ERROR_CODE"]
            for c in chunk_list
            if c.tags.get("AWS_KINESISVIDEO_ERROR_CODE")
        ),
        None,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


# --- control plane --------------------------------------------------------------------------------------


def test_control_plane_creates_describes_and_points_at_itself(
    emulator: Factory, clients: ClientsOf
) -> None:
    kvs = emulator()
    c = clients(kvs)
    arn = c.control.create_stream(StreamName="pool-1", DataRetentionInHours=24)["StreamARN"]
    assert arn.startswith("arn:aws:kinesisvideo:us-east-1:123456789012:stream/pool-1/")
    info = c.control.describe_stream(StreamARN=arn)["StreamInfo"]
    assert (info["StreamName"], info["Status"], info["DataRetentionInHours"]) == (
        "pool-1",
        "ACTIVE",
        24,
    )
    assert c.control.describe_stream(StreamName="pool-1")["StreamInfo"]["StreamARN"] == arn
    endpoint = c.control.get_data_endpoint(StreamARN=arn, APIName="GET_MEDIA")["DataEndpoint"]
    assert endpoint == kvs.endpoint_url
    assert [s["StreamName"] for s in c.control.list_streams()["StreamInfoList"]] == ["pool-1"]
    with pytest.raises(ClientError) as exc:
        c.control.create_stream(StreamName="pool-1")
    assert exc.value.response["Error"]["Code"] == "ResourceInUseException"
    with pytest.raises(c.control.exceptions.ResourceNotFoundException):
        c.control.describe_stream(StreamName="missing")
    with pytest.raises(c.media.exceptions.ResourceNotFoundException):
        c.media.get_media(StreamName="missing", StartSelector={"StartSelectorType": "EARLIEST"})
    with pytest.raises(c.media.exceptions.InvalidArgumentException):
        c.media.get_media(
            StreamName="pool-1", StartSelector={"StartSelectorType": "FRAGMENT_NUMBER"}
        )
    with pytest.raises(c.media.exceptions.InvalidArgumentException, match="not a fragment number"):
        c.media.get_media(
            StreamName="pool-1",
            StartSelector={"StartSelectorType": "FRAGMENT_NUMBER", "AfterFragmentNumber": "x1"},
        )


# --- selectors --------------------------------------------------------------------------------------------


@pytest.fixture
def stored_stream(emulator: Factory) -> tuple[KvsEmulator, list[StoredFragment]]:
    kvs = emulator(idle_timeout_seconds=0.2)
    kvs.create_stream("s")
    start = kvs.clock.now_ms() - 60_000
    return kvs, ingest_all(kvs, "s", specs(start))


def get_media(c: Any, selector: dict[str, Any]) -> bytes:
    body: bytes = c.media.get_media(StreamName="s", StartSelector=selector)["Payload"].read()
    return body


def test_each_selector_starts_where_kvs_starts(
    stored_stream: tuple[KvsEmulator, list[StoredFragment]], clients: ClientsOf, chunks: Walk
) -> None:
    kvs, stored = stored_stream
    c = clients(kvs)
    all_numbers = [f.fragment_number for f in stored]
    assert len(all_numbers) == 5
    assert all_numbers == sorted(all_numbers)

    def first(selector: dict[str, Any]) -> list[str]:
        return numbers(chunks(get_media(c, selector)))

    assert first({"StartSelectorType": "EARLIEST"}) == all_numbers
    # FRAGMENT_NUMBER starts AFTER that fragment (current docs), as does the continuation token
    assert (
        first({"StartSelectorType": "FRAGMENT_NUMBER", "AfterFragmentNumber": all_numbers[1]})
        == all_numbers[2:]
    )
    assert (
        first({"StartSelectorType": "CONTINUATION_TOKEN", "ContinuationToken": all_numbers[3]})
        == all_numbers[4:]
    )
    # timestamps: the chunk containing that time
    inside_third = (stored[2].producer_timestamp_ms + 500) / 1000
    assert (
        first({"StartSelectorType": "PRODUCER_TIMESTAMP", "StartTimestamp": inside_third})
        == all_numbers[2:]
    )
    at_second = stored[1].server_timestamp_ms / 1000
    assert (
        first({"StartSelectorType": "SERVER_TIMESTAMP", "StartTimestamp": at_second})
        == all_numbers[1:]
    )
    before_all = (stored[0].producer_timestamp_ms - 10_000) / 1000
    assert (
        first({"StartSelectorType": "PRODUCER_TIMESTAMP", "StartTimestamp": before_all})
        == all_numbers
    )
    # NOW: nothing that is already there
    assert first({"StartSelectorType": "NOW"}) == []


def test_fragment_number_inclusive_option_gives_the_old_behaviour(
    emulator: Factory, clients: ClientsOf, chunks: Walk
) -> None:
    kvs = emulator(idle_timeout_seconds=0.2, fragment_number_inclusive=True)
    kvs.create_stream("s")
    stored = ingest_all(kvs, "s", specs(kvs.clock.now_ms() - 60_000, seconds=3.0))
    got = numbers(
        chunks(
            get_media(
                clients(kvs),
                {
                    "StartSelectorType": "FRAGMENT_NUMBER",
                    "AfterFragmentNumber": stored[1].fragment_number,
                },
            )
        )
    )
    assert got == [stored[1].fragment_number, stored[2].fragment_number]


def test_chunks_carry_kvs_tags_as_a_real_response(
    stored_stream: tuple[KvsEmulator, list[StoredFragment]], clients: ClientsOf, chunks: Walk
) -> None:
    kvs, stored = stored_stream
    got = chunks(get_media(clients(kvs), {"StartSelectorType": "EARLIEST"}))
    assert all(c.complete and c.blocks == 32 for c in got[:4])
    for chunk, fragment in zip(got, stored, strict=True):
        tags = chunk.tags
        assert tags["AWS_KINESISVIDEO_CONTINUATION_TOKEN"] == fragment.fragment_number
        assert (
            tags["AWS_KINESISVIDEO_PRODUCER_TIMESTAMP"]
            == f"{fragment.producer_timestamp_ms / 1000:.3f}"
        )
        assert (
            tags["AWS_KINESISVIDEO_SERVER_TIMESTAMP"]
            == f"{fragment.server_timestamp_ms / 1000:.3f}"
        )
        assert int(tags["AWS_KINESISVIDEO_MILLIS_BEHIND_NOW"]) >= 50_000
        assert tags["ContactId"] == "c-1"


# --- live following --------------------------------------------------------------------------------------


def test_now_waits_for_fragments_ingested_after_the_call(
    emulator: Factory, clients: ClientsOf, chunks: Walk
) -> None:
    kvs = emulator(idle_timeout_seconds=0.5)
    kvs.create_stream("s")
    before = ingest_all(kvs, "s", specs(kvs.clock.now_ms() - 10_000, seconds=2.0))
    response = clients(kvs).media.get_media(
        StreamName="s", StartSelector={"StartSelectorType": "NOW"}
    )
    wait_for(lambda: kvs.active_connections("s") == 1)
    after = ingest_all(kvs, "s", specs(kvs.clock.now_ms(), seconds=2.0, contact="c-2"))
    got = chunks(response["Payload"].read())
    assert numbers(got) == [f.fragment_number for f in after]
    assert not set(numbers(got)) & {f.fragment_number for f in before}
    wait_for(lambda: kvs.active_connections("s") == 0)


def test_live_call_is_delivered_as_ingested_and_the_response_ends_when_idle(
    emulator: Factory, clients: ClientsOf, chunks: Walk
) -> None:
    # Given a 20 s call played live at 40x (0.5 s of wall time)
    kvs = emulator(speed=40, idle_timeout_seconds=0.5)
    kvs.create_stream("s")
    cu, op = conversation(20.0, seed=5)
    call = ConnectCall("c-live", "i-1", kvs.clock.now_ms(), cu, op)
    feed = kvs.feed("s", call.fragments())
    assert feed.first_ingested.wait(5)
    first = feed.ingested[0].fragment_number
    # When a reader starts right away from the first fragment's producer timestamp
    started = time.monotonic()
    response = clients(kvs).media.get_media(
        StreamName="s",
        StartSelector={
            "StartSelectorType": "PRODUCER_TIMESTAMP",
            "StartTimestamp": call.start_ms / 1000,
        },
    )
    got = chunks(response["Payload"].read())
    # Then it gets every fragment in order, the connection staying open while the call is live
    feed.wait(5)
    assert numbers(got)[0] == first
    assert numbers(got) == [f.fragment_number for f in feed.ingested]
    assert len(got) == call.fragment_count == 20
    assert all(c.complete for c in got)
    assert time.monotonic() - started >= 0.5  # ended only after the idle timeout


def test_max_connection_duration_cuts_mid_fragment_and_the_token_resumes_without_loss(
    emulator: Factory, clients: ClientsOf, chunks: Walk
) -> None:
    kvs = emulator(speed=10, idle_timeout_seconds=1.0, max_connection_seconds=0.4)
    kvs.create_stream("s")
    cu, op = conversation(12.0, seed=6)
    feed = kvs.feed("s", ConnectCall("c-cut", "i-1", kvs.clock.now_ms(), cu, op).fragments())
    c = clients(kvs)
    selector: dict[str, Any] = {"StartSelectorType": "EARLIEST"}
    complete: list[str] = []
    cuts = 0
    for _ in range(40):
        got = chunks(c.media.get_media(StreamName="s", StartSelector=selector)["Payload"].read())
        whole = [ch for ch in got if ch.complete]
        complete += numbers(whole)
        if got and not got[-1].complete:
            cuts += 1
            assert 0 < len(got[-1].raw) < len(kvs.fragments("s")[0].chunk(0))
        if whole:
            selector = {
                "StartSelectorType": "CONTINUATION_TOKEN",
                "ContinuationToken": whole[-1].tags["AWS_KINESISVIDEO_CONTINUATION_TOKEN"],
            }
        if feed.done and not got:
            break
    feed.wait(5)
    assert cuts >= 1
    assert kvs.stats("s").responses_cut == cuts
    assert complete == [f.fragment_number for f in feed.ingested]


# --- limits ---------------------------------------------------------------------------------------------------


def test_a_fourth_concurrent_connection_is_refused(emulator: Factory, clients: ClientsOf) -> None:
    kvs = emulator(idle_timeout_seconds=5.0, max_calls_per_second=None)
    kvs.create_stream("s")
    c = clients(kvs)
    open_responses = [
        c.media.get_media(StreamName="s", StartSelector={"StartSelectorType": "NOW"})
        for _ in range(3)
    ]
    wait_for(lambda: kvs.active_connections("s") == 3)
    with pytest.raises(c.media.exceptions.ConnectionLimitExceededException) as exc:
        c.media.get_media(StreamName="s", StartSelector={"StartSelectorType": "NOW"})
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "connections" in exc.value.response["Error"]["Message"]
    # Another stream has its own budget
    kvs.create_stream("other")
    c.media.get_media(StreamName="other", StartSelector={"StartSelectorType": "NOW"})[
        "Payload"
    ].close()
    for response in open_responses:
        response["Payload"].close()
    kvs.stop()  # ends the open responses at once
    assert kvs.stats("s").rejected_connections == 1


def test_a_sixth_call_within_a_second_is_throttled(emulator: Factory, clients: ClientsOf) -> None:
    kvs = emulator(idle_timeout_seconds=5.0, max_connections_per_stream=None)
    kvs.create_stream("s")
    c = clients(kvs)
    responses = [
        c.media.get_media(StreamName="s", StartSelector={"StartSelectorType": "NOW"})
        for _ in range(5)
    ]
    with pytest.raises(c.media.exceptions.ClientLimitExceededException) as exc:
        c.media.get_media(StreamName="s", StartSelector={"StartSelectorType": "NOW"})
    assert exc.value.response["Error"]["Code"] == "ClientLimitExceededException"
    for response in responses:
        response["Payload"].close()
    assert kvs.stats("s").rejected_rate == 1


# --- retention --------------------------------------------------------------------------------------------


def test_expired_fragments_are_gone(emulator: Factory, clients: ClientsOf, chunks: Walk) -> None:
    kvs = emulator(idle_timeout_seconds=0.2)
    kvs.create_stream("s", retention_seconds=30)
    now = kvs.clock.now_ms()
    old = ingest_all(kvs, "s", specs(now - 120_000, seconds=2.0))
    new = ingest_all(kvs, "s", specs(now - 5_000, seconds=2.0))
    c = clients(kvs)
    assert numbers(chunks(get_media(c, {"StartSelectorType": "EARLIEST"}))) == [
        f.fragment_number for f in new
    ]
    gone = chunks(
        get_media(
            c,
            {"StartSelectorType": "FRAGMENT_NUMBER", "AfterFragmentNumber": old[0].fragment_number},
        )
    )
    # GetMedia's documented pair: the description and the integer id
    assert error_code(gone) == "Requested fragment is not found"
    assert gone[0].tags["AWS_KINESISVIDEO_ERROR_ID"] == "4000"
    assert gone[0].tags["AWS_KINESISVIDEO_FRAGMENT_NUMBER"] == old[0].fragment_number
    # GetMediaForFragmentList answers 200 with an error chunk in place of a missing fragment
    body = c.archived.get_media_for_fragment_list(
        StreamName="s", Fragments=[old[1].fragment_number, new[0].fragment_number]
    )["Payload"].read()
    listed_media = chunks(body)
    assert error_code(listed_media[:1]) == "FRAGMENT_NOT_FOUND"
    assert numbers(listed_media) == [old[1].fragment_number, new[0].fragment_number]
    assert listed_media[1].blocks == 32
    with pytest.raises(c.archived.exceptions.InvalidArgumentException, match="invalid"):
        c.archived.get_media_for_fragment_list(StreamName="s", Fragments=["not-a-number"])
    listed = c.archived.list_fragments(StreamName="s")["Fragments"]
    assert [f["FragmentNumber"] for f in listed] == [f.fragment_number for f in new]


# --- faults ------------------------------------------------------------------------------------------------------


def test_injected_error_chunk_follows_the_fragments_before_it(
    stored_stream: tuple[KvsEmulator, list[StoredFragment]], clients: ClientsOf, chunks: Walk
) -> None:
    kvs, stored = stored_stream
    kvs.add_fault("s", ErrorChunk.documented(5000, after_fragments=2))
    got = chunks(get_media(clients(kvs), {"StartSelectorType": "EARLIEST"}))
    assert numbers(got) == [f.fragment_number for f in stored[:2]]
    assert error_code(got) == "Internal error"
    assert got[2].tags["AWS_KINESISVIDEO_ERROR_ID"] == "5000"
    assert len(got) == 3
    # The fault was used up: the next call is clean
    assert len(numbers(chunks(get_media(clients(kvs), {"StartSelectorType": "EARLIEST"})))) == 5


def test_a_denied_kms_key_answers_every_get_media_with_error_4500(
    stored_stream: tuple[KvsEmulator, list[StoredFragment]], clients: ClientsOf, chunks: Walk
) -> None:
    kvs, stored = stored_stream
    kvs.deny_kms("s")
    for selector in ({"StartSelectorType": "EARLIEST"}, {"StartSelectorType": "NOW"}):
        got = chunks(get_media(clients(kvs), selector))
        assert numbers(got) == []
        assert error_code(got) == "Access denied for the stream's KMS key"
        assert got[0].tags["AWS_KINESISVIDEO_ERROR_ID"] == "4500"
    kvs.deny_kms("s", denied=False)
    got = chunks(get_media(clients(kvs), {"StartSelectorType": "EARLIEST"}))
    assert numbers(got) == [f.fragment_number for f in stored]


def test_clean_drop_ends_the_body_mid_fragment_like_a_normal_end(
    stored_stream: tuple[KvsEmulator, list[StoredFragment]], clients: ClientsOf, chunks: Walk
) -> None:
    kvs, stored = stored_stream
    kvs.add_fault("s", DropConnection(after_fragments=1, bytes_into_next=100))
    body = get_media(clients(kvs), {"StartSelectorType": "EARLIEST"})
    got = chunks(body)
    assert numbers(got[:1]) == [stored[0].fragment_number]
    assert len(got) == 2
    assert len(got[1].raw) == 100
    assert not got[1].complete


def test_unclean_drop_breaks_the_stream_for_the_client(
    stored_stream: tuple[KvsEmulator, list[StoredFragment]], clients: ClientsOf
) -> None:
    kvs, _ = stored_stream
    kvs.add_fault("s", DropConnection(after_fragments=2, bytes_into_next=5000, clean=False))
    response = clients(kvs).media.get_media(
        StreamName="s", StartSelector={"StartSelectorType": "EARLIEST"}
    )
    with pytest.raises(ResponseStreamingError, match=r"IncompleteRead|Connection broken"):
        response["Payload"].read()


def test_api_error_fault_fails_one_call(
    stored_stream: tuple[KvsEmulator, list[StoredFragment]], clients: ClientsOf
) -> None:
    kvs, _ = stored_stream
    kvs.add_fault("s", ApiError("NotAuthorizedException", 401, "no kms:Decrypt"))
    c = clients(kvs)
    with pytest.raises(c.media.exceptions.NotAuthorizedException):
        c.media.get_media(StreamName="s", StartSelector={"StartSelectorType": "EARLIEST"})
    c.media.get_media(StreamName="s", StartSelector={"StartSelectorType": "EARLIEST"})[
        "Payload"
    ].read()


# --- archived media -----------------------------------------------------------------------------------------


def test_list_fragments_pages_and_filters_and_fragment_list_media_has_no_continuation(
    stored_stream: tuple[KvsEmulator, list[StoredFragment]], clients: ClientsOf, chunks: Walk
) -> None:
    kvs, stored = stored_stream
    c = clients(kvs)
    page = c.archived.list_fragments(StreamName="s", MaxResults=3)
    rest = c.archived.list_fragments(StreamName="s", MaxResults=3, NextToken=page["NextToken"])
    assert "NextToken" not in rest
    listed = page["Fragments"] + rest["Fragments"]
    assert [f["FragmentNumber"] for f in listed] == [f.fragment_number for f in stored]
    assert listed[0]["FragmentLengthInMilliseconds"] == 1024
    assert listed[0]["ProducerTimestamp"].timestamp() == stored[0].producer_timestamp_ms / 1000
    window = c.archived.list_fragments(
        StreamName="s",
        FragmentSelector={
            "FragmentSelectorType": "PRODUCER_TIMESTAMP",
            "TimestampRange": {
                "StartTimestamp": stored[1].producer_timestamp_ms / 1000,
                "EndTimestamp": stored[2].producer_timestamp_ms / 1000,
            },
        },
    )["Fragments"]
    assert [f["FragmentNumber"] for f in window] == [
        stored[1].fragment_number,
        stored[2].fragment_number,
    ]
    body = c.archived.get_media_for_fragment_list(
        StreamName="s", Fragments=[stored[3].fragment_number, stored[0].fragment_number]
    )["Payload"].read()
    got = chunks(body)
    assert numbers(got) == [stored[3].fragment_number, stored[0].fragment_number]
    assert all("AWS_KINESISVIDEO_CONTINUATION_TOKEN" not in ch.tags for ch in got)
    assert all(ch.blocks == 32 for ch in got)


def test_stop_ends_open_live_responses(emulator: Factory, clients: ClientsOf) -> None:
    kvs = emulator(idle_timeout_seconds=30.0)
    kvs.create_stream("s")
    response = clients(kvs).media.get_media(
        StreamName="s", StartSelector={"StartSelectorType": "NOW"}
    )
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(response["Payload"].read()))
    reader.start()
    wait_for(lambda: kvs.active_connections("s") == 1)
    kvs.stop()
    reader.join(timeout=10)
    assert not reader.is_alive()
    assert result == [b""]


def test_a_reader_closing_its_body_frees_its_connection_before_the_idle_timeout(
    emulator: Factory, clients: ClientsOf
) -> None:
    kvs = emulator(idle_timeout_seconds=30.0)
    kvs.create_stream("s")
    response = clients(kvs).media.get_media(
        StreamName="s", StartSelector={"StartSelectorType": "NOW"}
    )
    wait_for(lambda: kvs.active_connections("s") == 1)
    response["Payload"].close()
    wait_for(lambda: kvs.active_connections("s") == 0, timeout=10.0)


def test_malformed_requests_get_aws_shaped_errors(emulator: Factory) -> None:
    kvs = emulator()
    kvs.create_stream("s")

    def post(path: str, data: bytes) -> tuple[int, str | None]:
        request = urllib.request.Request(kvs.endpoint_url + path, data=data, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers.get("x-amzn-ErrorType")
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("x-amzn-ErrorType")

    assert post("/getMedia", b"{not json") == (400, "SerializationException")
    bad_time = b'{"StreamName": "s", "StartSelector": {"StartSelectorType": "PRODUCER_TIMESTAMP", "StartTimestamp": "soon"}}'
    assert post("/getMedia", bad_time) == (400, "InvalidArgumentException")
    assert post("/nope", b"{}") == (404, "UnknownOperationException")


def test_fragments_written_in_pieces_arrive_identical(
    emulator: Factory, clients: ClientsOf, chunks: Walk
) -> None:
    whole, pieces = (
        emulator(idle_timeout_seconds=0.2),
        emulator(idle_timeout_seconds=0.2, write_pieces=7),
    )
    bodies = []
    start_ms = whole.clock.now_ms() - 60_000  # within retention; MILLIS_BEHIND_NOW of equal width
    for kvs in (whole, pieces):
        kvs.create_stream("s")
        ingest_all(kvs, "s", specs(start_ms, seconds=3.0))
        got = chunks(get_media(clients(kvs), {"StartSelectorType": "EARLIEST"}))
        bodies.append(
            [(c.tags["AWS_KINESISVIDEO_FRAGMENT_NUMBER"], c.blocks, len(c.raw)) for c in got]
        )
    assert bodies[0] == bodies[1]
    assert len(bodies[0]) == 3
