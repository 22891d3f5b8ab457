"""The whole pipeline on the local stack, with the real functions, time scaled down."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from callrec.convert import convert
from callrec_local.kvs_emulator import EmulatorConfig, KvsEmulator
from callrec_local.producer import encode_capture
from callrec_local.simulator import ConnectSimulator, PlayedCall
from callrec_local.stack import FunctionOverride, LocalStack

# Template durations x 0.05: the sweeper's minute becomes 3 s, Lambda's retry delays 3 and 6 s.
TIME_SCALE = 0.05
OUTPUTS = ("cu", "op", "stereo")


@dataclass
class Pipeline:
    stack: LocalStack
    kvs: KvsEmulator
    simulator: ConnectSimulator

    def item(self, contact_id: str) -> dict[str, Any]:
        response = self.stack.dynamodb().get_item(
            TableName=self.stack.table_name, Key={"contact_id": {"S": contact_id}}
        )
        return dict(response.get("Item", {}))

    def wait_finished(self, contact_id: str, timeout_s: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            item = self.item(contact_id)
            if item.get("status", {}).get("S") in {"COMPLETED", "FAILED"}:
                return item
            time.sleep(0.2)
        raise AssertionError(f"recording of {contact_id} not finished: {self.item(contact_id)}")

    def download(self, item: dict[str, Any]) -> dict[str, bytes]:
        keys = item["keys"]["M"]
        return {
            name: self.stack.s3()
            .get_object(Bucket=self.stack.bucket_name, Key=keys[name]["S"])["Body"]
            .read()
            for name in OUTPUTS
        }


PipelineMaker = Callable[..., Pipeline]


@pytest.fixture
def make_pipeline(local_stack_factory: Callable[..., LocalStack]) -> PipelineMaker:
    def make(
        *,
        speed: float = 10.0,
        recorder_timeout_s: float = 6.0,
        handoff_margin_s: int = 2,
        checkpoint_interval_s: int = 1,
        idle_s: int = 2,
        max_connection_seconds: float | None = None,
        **kvs_config: Any,
    ) -> Pipeline:
        kvs = KvsEmulator(
            EmulatorConfig(speed=speed, max_connection_seconds=max_connection_seconds, **kvs_config)
        )
        stack = local_stack_factory(
            time_scale=TIME_SCALE,
            kvs=kvs,
            overrides={
                "SendEventFunction": FunctionOverride(timeout_s=8.0),
                "SpectrumFunction": FunctionOverride(timeout_s=30.0),
                "RecorderFunction": FunctionOverride(
                    timeout_s=recorder_timeout_s,
                    environment={
                        "HANDOFF_MARGIN_SECONDS": str(handoff_margin_s),
                        "CHECKPOINT_INTERVAL_SECONDS": str(checkpoint_interval_s),
                        "RECORDING_IDLE_SECONDS": str(idle_s),
                    },
                ),
            },
        )
        simulator = ConnectSimulator(kvs, stack.contact_flow_handler(), connect=stack.connect)
        return Pipeline(stack, kvs, simulator)

    return make


def converted(played: PlayedCall, tmp_path: Path) -> dict[str, bytes]:
    """`callrec convert` on a complete capture of the call's stream: the reference bytes."""
    capture = encode_capture(list(played.call.fragments()))
    out = tmp_path / f"convert-{played.contact_id}"
    result = convert(io.BytesIO(capture), out, contact_id=played.contact_id)
    return {name: Path(result.paths[name]).read_bytes() for name in OUTPUTS}
