"""The whole product on one machine: calls played into the emulated KVS, recorded by the real
functions on the local stack, fetched back. Used by `callrec replay`, `callrec demo` and tests.

Only time is scaled: the KVS emulator plays media `speed` times faster than real time, the
recorder's invocations are cut to `lambda_timeout_s` (so hand-offs happen), GetMedia
connections to `getmedia_max_seconds` (so cuts happen), and the stack's other template
durations (the sweeper's minute, Lambda's retry delays) by `time_scale`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from callrec_local.kvs_emulator import EmulatorConfig, KvsEmulator
from callrec_local.simulator import CallScript, ConnectSimulator, PlayedCall
from callrec_local.stack import FunctionOverride, LocalStack

OUTPUTS = ("cu", "op", "stereo")
FINISHED = frozenset({"COMPLETED", "FAILED"})


@dataclass(frozen=True)
class PipelineOptions:
    """How fast and how often things are cut. Defaults keep a demo quick and eventful."""

    speed: float = 10.0
    lambda_timeout_s: float = 12.0
    handoff_margin_s: int = 4
    checkpoint_interval_s: int = 2
    getmedia_max_seconds: float | None = None
    idle_s: int = 3
    time_scale: float = 0.05
    origin_ms: int | None = None
    spectrum: bool = True


class LocalPipeline:
    """A started local stack with the KVS emulator and a Connect simulator wired to it."""

    def __init__(self, options: PipelineOptions = PipelineOptions(), **stack_kwargs: Any) -> None:
        self.options = options
        self.kvs = KvsEmulator(
            EmulatorConfig(
                speed=options.speed,
                origin_ms=options.origin_ms,
                max_connection_seconds=options.getmedia_max_seconds,
            )
        )
        overrides = {
            # Template timeouts for the contact-flow function (8 s) and the spectrum function
            # are kept real: only the recorder's is cut short, to force hand-offs.
            "SendEventFunction": FunctionOverride(timeout_s=8.0),
            "SpectrumFunction": FunctionOverride(timeout_s=60.0),
            "RecorderFunction": FunctionOverride(
                timeout_s=options.lambda_timeout_s,
                environment={
                    "HANDOFF_MARGIN_SECONDS": str(options.handoff_margin_s),
                    "CHECKPOINT_INTERVAL_SECONDS": str(options.checkpoint_interval_s),
                    "RECORDING_IDLE_SECONDS": str(options.idle_s),
                },
            ),
        }
        stack_kwargs.setdefault("time_scale", options.time_scale)
        self.stack = LocalStack(kvs=self.kvs, overrides=overrides, **stack_kwargs)
        self.simulator: ConnectSimulator | None = None

    def __enter__(self) -> LocalPipeline:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> LocalPipeline:
        self.stack.start()
        self.simulator = ConnectSimulator(
            self.kvs, self.stack.contact_flow_handler(), connect=self.stack.connect
        )
        return self

    def stop(self) -> None:
        self.stack.stop()

    def play(self, script: CallScript, *, start_ms: int | None = None) -> PlayedCall:
        """Play one call as Connect would (media streaming, then the contact-flow function)."""
        assert self.simulator is not None, "start() the pipeline first"
        return self.simulator.play(script, start_ms=start_ms)

    def play_after(self, previous: PlayedCall, script: CallScript) -> PlayedCall:
        """The next contact on the same (reused) stream, right after `previous`."""
        assert self.simulator is not None, "start() the pipeline first"
        return self.simulator.play_after(previous, script)

    def item(self, contact_id: str) -> dict[str, Any]:
        """The recording's DynamoDB item (attribute values as DynamoDB gives them)."""
        response = self.stack.dynamodb().get_item(
            TableName=self.stack.table_name, Key={"contact_id": {"S": contact_id}}
        )
        return dict(response.get("Item", {}))

    def wait_finished(self, contact_id: str, timeout_s: float = 120.0) -> dict[str, Any]:
        """The item once the recording is COMPLETED or FAILED."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            item = self.item(contact_id)
            if item.get("status", {}).get("S") in FINISHED:
                return item
            time.sleep(0.2)
        raise TimeoutError(
            f"recording of {contact_id} not finished in {timeout_s} s: {self.item(contact_id)}"
        )

    def wait_images(self, contact_id: str, count: int = 3, timeout_s: float = 60.0) -> list[str]:
        """The spectrogram keys on the item, once there are `count` of them."""
        deadline = time.monotonic() + timeout_s
        while True:
            keys = sorted(self.item(contact_id).get("spectrogram_keys", {}).get("SS", []))
            if len(keys) >= count or time.monotonic() >= deadline:
                return keys
            time.sleep(0.2)

    def recording(self, item: dict[str, Any]) -> dict[str, bytes]:
        """The recording's three WAV files, by output name."""
        keys = item["keys"]["M"]
        s3 = self.stack.s3()
        return {
            name: s3.get_object(Bucket=self.stack.bucket_name, Key=keys[name]["S"])["Body"].read()
            for name in OUTPUTS
        }

    def download(self, keys: list[str], out_dir: Path) -> list[Path]:
        """Copy objects to `out_dir` (flat, by their file names)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        s3 = self.stack.s3()
        paths = []
        for key in keys:
            path = out_dir / key.rsplit("/", 1)[-1]
            path.write_bytes(s3.get_object(Bucket=self.stack.bucket_name, Key=key)["Body"].read())
            paths.append(path)
        return paths
