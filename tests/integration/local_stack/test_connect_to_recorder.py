"""A call played as Connect plays it reaches the recorder through the real contact-flow function."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

from callrec_local.kvs_emulator import EmulatorConfig, KvsEmulator
from callrec_local.simulator import CallScript, ConnectSimulator
from callrec_local.stack import LocalStack

StackMaker = Callable[..., LocalStack]
EBML_MAGIC = "1a45dfa3"


def test_start_record_reaches_the_recorder_which_reads_the_call_from_kvs(
    make_stack: StackMaker,
) -> None:
    # Given the stack with the real contact-flow function (its template timeout, unscaled) and
    # the KVS emulator playing media ten times faster than real time
    stack = make_stack(
        real_functions={"SendEventFunction"},
        timeouts={"SendEventFunction": 8.0},
        kvs=KvsEmulator(EmulatorConfig(speed=10)),
    )
    assert isinstance(stack.kvs, KvsEmulator)
    simulator = ConnectSimulator(stack.kvs, stack.contact_flow_handler())

    # When a call is played and its contact flow runs
    played = simulator.play(CallScript(seconds=4))
    played.wait(timeout=30)
    invocations = stack.wait_for(
        lambda invs: any(i.source == "kinesis" and i.ok for i in invs), timeout_s=30
    )

    # Then the contact-flow function succeeded, and its start record, delivered by the event
    # source mapping, names the call's stream and first fragment, from which the recorder's own
    # boto3 clients read Matroska through the emulated GetMedia
    assert played.handler_error is None, played.handler_error
    (delivery,) = [i for i in invocations if i.source == "kinesis"]
    (record,) = delivery.event["Records"]
    start_record = json.loads(base64.b64decode(record["kinesis"]["data"]))
    assert start_record["stream_arn"] == played.stream_arn
    assert start_record["start_fragment_number"] == played.start_fragment_number
    assert delivery.result["media"] == [EBML_MAGIC]
