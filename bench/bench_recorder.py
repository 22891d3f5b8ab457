"""Recorder benchmark (issue 5, section 7): the real recorder on the local stack, one run.

Prints, all measured in this run:
- peak RSS of every recorder worker process (VmHWM) for a 10-minute and a 4-hour call played
  live at high speed: it must not grow with the call's length (target: under 128 MB);
- latency from a call's last fragment to its COMPLETED item (WAVs assembled), less the idle time;
- hang-up -> WAVs in S3 (p50, p95 over several calls), the call ended by Connect's disconnect
  (contact events and DescribeContact served locally), against the same calls ended by the idle
  time when Connect cannot be asked;
- catch-up speed of a recorder that starts once the whole call is in KVS, in multiples of real
  time, against `callrec convert` on the same stream;
- start latency (contact-flow invocation to the first `record` invocation holding the lease) for
  N calls started at once on one shard, N = 1, 5, 10, 25, 50, 100, up to the first N above 5 s,
  with each stage's median and the stages that grew, to tell whether the pipeline or this
  machine's cold starts are the limit;
- the Lambda GB-seconds per recorded hour that follow from those figures.

Each local Lambda invocation is a cold start in its own process, so init costs are counted in
full. The spectrum function is replaced by a no-op: its cost is bench_spectrum's. Returns 1 if
a recording is not exact or a target is missed.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from callrec.convert import convert
from callrec.events import StartRecord
from callrec_local.event_sources import start_records_event
from callrec_local.kvs_emulator import EmulatorConfig, KvsEmulator
from callrec_local.lambda_runtime import Invocation
from callrec_local.producer import SAMPLE_RATE, encode_capture, speech_like
from callrec_local.simulator import CallScript, ConnectSimulator, PlayedCall
from callrec_local.stack import FunctionOverride, LocalStack
from callrec_local.template import load_template, local_plan

OUTPUTS = ("cu", "op", "stereo")
RSS_TARGET_MB = 128
RSS_GROWTH_LIMIT_MB = 8  # "flat": a 4-hour call may not need more than this over a 10-minute one
# Stages that are a process's cold start here (a new worker process per local invocation).
COLD_START_STAGES = ("contact flow", "record cold start")
LONG_SPEED = 300.0
IDLE_S = 5  # the template's minimum RecordingIdleSeconds
START_TARGET_S = 5.0
HANGUP_TARGET_S = 5.0  # issue 12: hang-up -> WAVs in S3
HANGUP_CALLS = 8
# Calls start this far apart and last longer than all the starts, so none reuses another's stream.
HANGUP_SPACING_S = 1.0
CONCURRENCY_STEPS = (1, 5, 10, 25, 50, 100)
REGISTRATION_BATCH = 100  # the template's BatchSize
# What the template gives the recorder in AWS: 15-minute invocations handing off a quarter of
# that (at most a minute) before the end, and a call over after RecordingIdleSeconds.
LAMBDA_TIMEOUT_S = 900
LAMBDA_MARGIN_S = 60
NOOP_HANDLER = "def lambda_handler(event, context):\n    return None\n"


@dataclass
class Rig:
    """The local stack, the KVS emulator and a Connect simulator, built for one measurement."""

    stack: LocalStack
    kvs: KvsEmulator
    simulator: ConnectSimulator
    idle_s: int

    def item(self, contact_id: str) -> dict[str, Any]:
        response = self.stack.dynamodb().get_item(
            TableName=self.stack.table_name, Key={"contact_id": {"S": contact_id}}
        )
        return dict(response.get("Item", {}))

    def wait_completed(
        self, contact_id: str, timeout_s: float = 300
    ) -> tuple[float, dict[str, Any]]:
        """When (time.time()) the item was first seen finished, polled every 20 ms; the item."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.finished(contact_id):
                return time.time(), self.item(contact_id)
            time.sleep(0.02)
        raise TimeoutError(f"recording of {contact_id} not finished in {timeout_s} s")

    @cached_property
    def status_client(self) -> Any:
        """One DynamoDB client for the status polls (a client takes milliseconds to build)."""
        return self.stack.dynamodb()

    def finished(self, contact_id: str) -> bool:
        """Whether the recording is COMPLETED or FAILED (its status alone is read)."""
        item = self.status_client.get_item(
            TableName=self.stack.table_name,
            Key={"contact_id": {"S": contact_id}},
            ProjectionExpression="#s",
            ExpressionAttributeNames={"#s": "status"},
        ).get("Item", {})
        return item.get("status", {}).get("S") in {"COMPLETED", "FAILED"}

    def records(self, contact_id: str, timeout_s: float = 60) -> list[Invocation]:
        """The contact's `record` invocations, once the one that finished it has ended."""

        def ours(invocations: list[Invocation]) -> list[Invocation]:
            return [
                i
                for i in invocations
                if isinstance(i.event, dict)
                and i.event.get("action") == "record"
                and i.event.get("contact_id") == contact_id
            ]

        def done(invocations: list[Invocation]) -> bool:
            return any(
                (i.result or {}).get("action") in {"completed", "failed"} for i in ours(invocations)
            )

        return ours(self.stack.wait_for(done, timeout_s))

    def registrations(self, contact_ids: set[str]) -> list[Invocation]:
        """Kinesis-triggered invocations whose batch held one of these contacts."""
        return [
            i
            for i in self.stack.invocations("RecorderFunction", source="kinesis")
            if any(r["kinesis"]["partitionKey"] in contact_ids for r in i.event["Records"])
        ]

    def recording(self, item: dict[str, Any]) -> dict[str, bytes]:
        s3, keys = self.stack.s3(), item["keys"]["M"]
        return {
            name: s3.get_object(Bucket=self.stack.bucket_name, Key=keys[name]["S"])["Body"].read()
            for name in OUTPUTS
        }

    def object_range(self, key: str, first: int, last: int) -> bytes:
        body = self.stack.s3().get_object(
            Bucket=self.stack.bucket_name, Key=key, Range=f"bytes={first}-{last}"
        )["Body"]
        data: bytes = body.read()
        return data


@contextmanager
def rig(
    work: Path,
    *,
    speed: float,
    lambda_timeout_s: float = 30.0,
    handoff_margin_s: int = 4,
    checkpoint_interval_s: int = 5,
    idle_s: int = IDLE_S,
    recorder_environment: dict[str, str] | None = None,
    connect: bool = False,
) -> Iterator[Rig]:
    """A fresh local stack: template durations unscaled (the Kinesis batching window, the
    sweeper's minute), the recorder's timeout cut short so hand-offs happen, no spectrum."""
    noop = work / "noop"
    noop.mkdir(parents=True, exist_ok=True)
    (noop / "app.py").write_text(NOOP_HANDLER)
    kvs = KvsEmulator(EmulatorConfig(speed=speed))
    stack = LocalStack(
        kvs=kvs,
        time_scale=1.0,
        max_concurrency=256,
        work_dir=Path(tempfile.mkdtemp(prefix="stack-", dir=work)),
        overrides={
            "SendEventFunction": FunctionOverride(timeout_s=8.0),
            "SpectrumFunction": FunctionOverride(code_uri=noop, handler="app.lambda_handler"),
            "RecorderFunction": FunctionOverride(
                timeout_s=lambda_timeout_s,
                environment={
                    "HANDOFF_MARGIN_SECONDS": str(handoff_margin_s),
                    "CHECKPOINT_INTERVAL_SECONDS": str(checkpoint_interval_s),
                    "RECORDING_IDLE_SECONDS": str(idle_s),
                    **(recorder_environment or {}),
                },
            ),
        },
    )
    stack.start()
    try:
        # Without `connect` the simulator does not tell the local Connect of its contacts:
        # DescribeContact does not know them, and the idle time ends every call.
        simulator = ConnectSimulator(
            kvs, stack.contact_flow_handler(), connect=stack.connect if connect else None
        )
        yield Rig(stack, kvs, simulator, idle_s)
    finally:
        stack.stop()


def voices(seconds: float) -> tuple[bytes, bytes]:
    """Customer and agent PCM of any length: a minute of speech-like audio, repeated."""
    minute = (speech_like(60, 1, pitch_hz=210.0), speech_like(60, 2, pitch_hz=115.0))
    size = round(seconds * SAMPLE_RATE) * 2
    copies = size // len(minute[0]) + 1
    return (minute[0] * copies)[:size], (minute[1] * copies)[:size]


def mb(kb: int | None) -> float:
    return (kb or 0) / 1024


# --------------------------------------------------------------------------- live calls
@dataclass
class LiveResult:
    media_s: float
    speed: float
    rss_mb: list[float]
    actions: list[str]
    invocations: int
    handoffs: int
    latency_s: float  # last fragment in KVS -> COMPLETED, less the idle time
    billed_s: float  # record invocations + this call's share of its registration batch
    init_s: float  # mean cold start (handler import) of its record invocations
    exact: bool


def live_call(work: Path, media_s: float, speed: float, lambda_timeout_s: float) -> LiveResult:
    customer, agent = voices(media_s)
    with rig(work, speed=speed, lambda_timeout_s=lambda_timeout_s) as r:
        played = r.simulator.play(CallScript(seconds=media_s, customer=customer, agent=agent))
        played.wait(timeout=media_s / speed + 120)
        last_fragment_at = time.time()
        completed_at, item = r.wait_completed(played.contact_id, timeout_s=media_s / speed + 300)
        records = r.records(played.contact_id)
        (registration,) = r.registrations({played.contact_id})
        exact = item["status"]["S"] == "COMPLETED" and check_recording(r, played, item)
    return LiveResult(
        media_s=media_s,
        speed=speed,
        rss_mb=[mb(i.peak_rss_kb) for i in records],
        actions=[(i.result or {}).get("action", "error") for i in records],
        invocations=len(records),
        handoffs=int(item.get("handoffs", {}).get("N", 0)),
        latency_s=completed_at - last_fragment_at - r.idle_s,
        billed_s=sum(i.duration_s or 0 for i in records)
        + (registration.duration_s or 0) / len(registration.event["Records"]),
        init_s=statistics.mean(
            (i.handler_started_at or i.started_at) - i.started_at for i in records
        ),
        exact=exact,
    )


# --------------------------------------------------------------------------- hang-up -> WAVs
@dataclass
class HangupResult:
    latencies: list[float]  # wall seconds from each call's hang-up to its COMPLETED item
    ended_by: list[str]
    exact: bool


def hangup_to_wavs(work: Path, *, connect: bool, media_s: float = 20.0) -> HangupResult:
    """HANGUP_CALLS overlapping calls (each starts HANGUP_SPACING_S after the one before); each
    one's hang-up (the media clock's moment of its disconnect, in wall time) to the first sight
    of its COMPLETED item."""
    with rig(work, speed=2.0, lambda_timeout_s=60, idle_s=IDLE_S, connect=connect) as r:
        played = []
        for n in range(HANGUP_CALLS):  # overlapping calls, hang-ups about 1 s apart
            played.append(r.simulator.play(CallScript(seconds=media_s, seed=60 + n)))
            time.sleep(HANGUP_SPACING_S)
        finished: dict[str, float] = {}
        deadline = time.monotonic() + media_s / 2 + HANGUP_CALLS + 180
        while len(finished) < len(played) and time.monotonic() < deadline:
            for call in played:
                if call.contact_id not in finished and r.finished(call.contact_id):
                    finished[call.contact_id] = time.time()
            time.sleep(0.05)
        latencies, ended_by, exact = [], [], len(finished) == len(played)
        for call in played:
            if call.contact_id not in finished or call.disconnected_ms is None:
                continue
            clock = r.kvs.clock
            hung_up = time.time() - (clock.now_ms() - call.disconnected_ms) / 1000 / clock.speed
            latencies.append(finished[call.contact_id] - hung_up)
            item = r.item(call.contact_id)
            ended_by.append(item.get("ended_by", {}).get("S", "?"))
            exact = exact and item["status"]["S"] == "COMPLETED" and check_recording(r, call, item)
    return HangupResult(latencies, ended_by, exact)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def check_recording(r: Rig, played: PlayedCall, item: dict[str, Any]) -> bool:
    """Byte-identical to convert for calls that fit in memory here; for longer ones, the sizes
    and both tracks' first and last megabyte against the audio played."""
    truth = played.ground_truth()
    if len(truth.customer) <= 64 * 2**20:
        recorded = r.recording(item)
        with tempfile.TemporaryDirectory() as out:
            capture = encode_capture(list(played.call.fragments()))
            result = convert(io.BytesIO(capture), Path(out), contact_id=played.contact_id)
            reference = {name: Path(result.paths[name]).read_bytes() for name in OUTPUTS}
        return recorded == reference
    keys = item["keys"]["M"]
    size = len(truth.customer)
    if float(item["duration_seconds"]["N"]) != size / 2 / SAMPLE_RATE:
        return False
    span = 2**20
    for name, pcm in (("cu", truth.customer), ("op", truth.agent)):
        key = keys[name]["S"]
        if r.object_range(key, 44, 44 + span - 1) != pcm[:span]:
            return False
        if r.object_range(key, 44 + size - span, 44 + size - 1) != pcm[-span:]:
            return False
    return True


# --------------------------------------------------------------------------- catch-up
@dataclass
class CatchUpResult:
    media_s: float
    recorder_x: float  # media seconds per second, from the record handler's start
    convert_x: float  # `callrec convert` process on the same stream, from its start
    convert_in_process_x: float
    exact: bool


def catch_up(work: Path, media_s: float) -> CatchUpResult:
    customer, agent = voices(media_s)
    speed = 2000.0
    with rig(work, speed=speed, lambda_timeout_s=60.0) as r:
        # The contact flow reaches its Lambda block only when the call is over: the recorder
        # starts with the whole call waiting in KVS.
        played = r.simulator.play(
            CallScript(
                seconds=media_s,
                customer=customer,
                agent=agent,
                invoke_after_ms=int(media_s * 1000) + 1000,
            )
        )
        played.wait(timeout=120)
        fragments = len(played.feed.ingested)
        stats = r.kvs.stats(played.stream_name)
        running = r.stack.wait_running("RecorderFunction", timeout_s=60)
        while running.invocation.event.get("action") != "record":
            time.sleep(0.01)
            running = r.stack.wait_running("RecorderFunction", timeout_s=60)
        started = running.invocation.handler_started_at or time.time()
        # (Counted by GetMedia and GetMediaForFragmentList alike: the first fragment comes by
        # its number. A deadline, so that a miscount is an error rather than a hang.)
        deadline = time.monotonic() + 600
        while stats.fragments_delivered < fragments:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{stats.fragments_delivered} of {fragments} fragments delivered in 600 s"
                )
            time.sleep(0.005)
        read_s = time.time() - started
        _, item = r.wait_completed(played.contact_id)
        exact = item["status"]["S"] == "COMPLETED" and check_recording(r, played, item)
    capture = encode_capture(list(played.call.fragments()))
    path = work / "catch-up.mkv"
    path.write_bytes(capture)
    begin = time.perf_counter()
    convert(io.BytesIO(capture), work / "convert-in-process", contact_id=played.contact_id)
    in_process_s = time.perf_counter() - begin
    begin = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "callrec.cli", "convert", str(path), "--out", str(work / "cv")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    process_s = time.perf_counter() - begin
    return CatchUpResult(
        media_s, media_s / read_s, media_s / process_s, media_s / in_process_s, exact
    )


# --------------------------------------------------------------------------- concurrency
@dataclass
class StartResult:
    calls: int
    latencies: list[float]
    cpu_busy: float  # share of the machine's CPU time busy between the first start and the last
    stages: dict[str, float]  # median seconds per stage
    all_completed: bool


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def concurrent_starts(r: Rig, calls: int, media_s: float) -> StartResult:
    customer, agent = voices(media_s)
    busy0, total0 = cpu_times()
    played = [
        r.simulator.play(CallScript(seconds=media_s, customer=customer, agent=agent))
        for _ in range(calls)
    ]
    ids = {p.contact_id for p in played}
    acquired: dict[str, float] = {}
    dynamodb = r.stack.dynamodb()
    deadline = time.monotonic() + 120
    while len(acquired) < calls and time.monotonic() < deadline:
        pages = dynamodb.get_paginator("scan").paginate(
            TableName=r.stack.table_name,
            ProjectionExpression="contact_id, generation",
            ConsistentRead=True,
        )
        now = time.time()
        for page in pages:
            for item in page["Items"]:
                cid = item["contact_id"]["S"]
                if cid in ids and cid not in acquired and int(item["generation"]["N"]) >= 1:
                    acquired[cid] = now
        time.sleep(0.05)
    busy1, total1 = cpu_times()
    completed = all(r.wait_completed(p.contact_id)[1]["status"]["S"] == "COMPLETED" for p in played)
    # The item says COMPLETED just before the invocation that wrote it ends; the runtime lists
    # an invocation once it has ended.
    for p in played:
        r.records(p.contact_id)
    flows = {
        i.event["Details"]["ContactData"]["ContactId"]: i
        for i in r.stack.invocations("SendEventFunction", source="connect")
        if i.event["Details"]["ContactData"]["ContactId"] in ids
    }
    registrations = r.registrations(ids)
    firsts: dict[str, Invocation] = {}
    for i in r.stack.invocations("RecorderFunction"):
        cid = i.event.get("contact_id") if isinstance(i.event, dict) else None
        is_record = cid in ids and i.event.get("action") == "record"
        if is_record and (cid not in firsts or i.started_at < firsts[cid].started_at):
            firsts[cid] = i
    latencies = [
        acquired[cid] - flows[cid].started_at if cid in acquired and cid in flows else float("inf")
        for cid in ids
    ]

    def batch_of(cid: str) -> Invocation | None:
        return next(
            (
                i
                for i in registrations
                if any(x["kinesis"]["partitionKey"] == cid for x in i.event["Records"])
            ),
            None,
        )

    stage_samples: dict[str, list[float]] = {
        "contact flow": [],
        "to registration": [],
        "registration batch": [],
        "to record start": [],
        "record cold start": [],
    }
    for cid in ids:
        flow, batch, first = flows.get(cid), batch_of(cid), firsts.get(cid)
        if not (flow and batch and first and flow.ended_at and batch.ended_at):
            continue
        stage_samples["contact flow"].append(flow.ended_at - flow.started_at)
        stage_samples["to registration"].append(batch.started_at - flow.ended_at)
        stage_samples["registration batch"].append(batch.ended_at - batch.started_at)
        stage_samples["to record start"].append(first.started_at - batch.started_at)
        stage_samples["record cold start"].append(
            (first.handler_started_at or first.started_at) - first.started_at
        )
    stages = {k: statistics.median(v) for k, v in stage_samples.items() if v}
    for p in played:
        p.wait(timeout=60)
    return StartResult(
        calls,
        latencies,
        (busy1 - busy0) / max(1, total1 - total0),
        stages,
        completed,
    )


def start_limit(baseline: StartResult, result: StartResult) -> str:
    """What made the starts slower than at N=1: the stages that grew, largest first."""
    growth = {
        stage: result.stages[stage] - baseline.stages.get(stage, 0.0) for stage in result.stages
    }
    grown = sorted(growth.items(), key=lambda kv: kv[1], reverse=True)
    detail = ", ".join(f"{stage} +{seconds:.2f} s" for stage, seconds in grown if seconds > 0)
    cold = sum(growth.get(stage, 0.0) for stage in COLD_START_STAGES)
    if cold > sum(v for v in growth.values() if v > 0) / 2:
        return (
            f"cold starts on this machine ({detail}; CPU busy {result.cpu_busy:.0%}): every "
            f"local invocation is a new process on {os.cpu_count()} CPUs, where AWS gives "
            "each its own environment"
        )
    return f"the pipeline ({detail})"


# --------------------------------------------------------------------------- one shard's share
@dataclass
class RegistrationResult:
    records: int
    handler_s: float

    @property
    def per_record_ms(self) -> float:
        return self.handler_s / self.records * 1000


def registration(work: Path) -> RegistrationResult:
    """One Kinesis batch of start records through the recorder: the serial work of one shard.

    The recordings it starts go to the no-op function, so that their cold starts do not load
    this machine while the batch is measured."""
    noop_name = local_plan(load_template()).function("SpectrumFunction").name
    instance = (
        "arn:aws:connect:us-east-1:123456789012:instance/9308c2a1-9bc6-4cea-8290-6c0b4a6d38fa"
    )
    records = [
        StartRecord(
            contact_id=str(uuid.UUID(int=n + 1, version=4)),
            initial_contact_id=str(uuid.UUID(int=n + 1, version=4)),
            instance_arn=instance,
            stream_arn=f"arn:aws:kinesisvideo:us-east-1:123456789012:stream/bench-{n}/1782912654536",
            start_fragment_number="91343852333181432392682062622220590765191907586",
            start_timestamp_ms=1_782_912_654_536,
        )
        for n in range(REGISTRATION_BATCH)
    ]
    event = start_records_event([r.to_json() for r in records], [r.contact_id for r in records])
    with rig(work, speed=1.0, recorder_environment={"RECORDER_FUNCTION_NAME": noop_name}) as r:
        batch = r.stack.invoke("RecorderFunction", event)
        if not batch.ok or batch.result != {"batchItemFailures": []}:
            raise RuntimeError(f"registration batch failed: {batch.error or batch.result}")
        handler_s = (batch.ended_at or 0) - (batch.handler_started_at or batch.started_at)
    return RegistrationResult(len(records), handler_s)


# --------------------------------------------------------------------------- report
def template_memory_mb() -> int:
    return local_plan(load_template()).function("RecorderFunction").memory_mb


def gb_seconds_per_hour(memory_mb: int, call_s: float, live: LiveResult, idle_s: int) -> float:
    """GB-s per recorded hour for live calls of `call_s` seconds in AWS: the recorder follows
    each call in real time, one invocation per (timeout - margin) seconds, each paying a cold
    start; each call adds its registration share, the idle wait and the measured finish."""
    invocations_per_call = max(1.0, call_s / (LAMBDA_TIMEOUT_S - LAMBDA_MARGIN_S))
    per_call = call_s + invocations_per_call * live.init_s + idle_s + live.latency_s
    return memory_mb / 1024 * per_call * 3600 / call_s


def main() -> int:
    memory_mb = template_memory_mb()
    template_idle_s = int(load_template()["Parameters"]["RecordingIdleSeconds"]["Default"])
    failures: list[str] = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-recorder-") as tmp:
        work = Path(tmp)
        print(f"machine: {os.cpu_count()} CPUs; every local invocation is a cold start", flush=True)

        short = live_call(work, 10 * 60, speed=100, lambda_timeout_s=20)
        long = live_call(work, 4 * 3600, speed=LONG_SPEED, lambda_timeout_s=30)
        print("\npeak RSS of recorder workers (VmHWM), calls played live:")
        for name, result in (("10-minute", short), ("4-hour", long)):
            per = ", ".join(
                f"{v:.1f} ({a})" for v, a in zip(result.rss_mb, result.actions, strict=True)
            )
            print(
                f"  {name} call at {result.speed:.0f}x: peak {max(result.rss_mb):.1f} MB over "
                f"{result.invocations} invocations: {per}; exact: {result.exact}",
                flush=True,
            )
            if not result.exact:
                failures.append(f"{name} recording differs")
        growth = max(long.rss_mb) - max(short.rss_mb)
        peak = max(*long.rss_mb, *short.rss_mb)
        suggested = 128 if peak < 0.8 * 128 else 256
        print(
            f"  growth 10 min -> 4 h: {growth:+.1f} MB (target: flat, under {RSS_TARGET_MB} MB); "
            f"template MemorySize {memory_mb} MB, the measurement fits {suggested} MB"
        )
        if peak >= RSS_TARGET_MB or growth > RSS_GROWTH_LIMIT_MB:
            failures.append(f"peak RSS {peak:.1f} MB, growth {growth:+.1f} MB")

        print("\nlatency, last fragment in KVS -> recording COMPLETED, less the idle time:")
        for name, result in (("10-minute", short), ("4-hour", long)):
            print(
                f"  {name} call at {result.speed:.0f}x: {result.latency_s:.2f} s "
                f"(RECORDING_IDLE_SECONDS={IDLE_S} excluded)"
            )

        print(
            f"\nhang-up -> WAVs in S3, {HANGUP_CALLS} overlapping 20-s calls, {HANGUP_SPACING_S:.0f} s apart "
            f"(target: p95 within {HANGUP_TARGET_S:.0f} s):",
            flush=True,
        )
        signal = hangup_to_wavs(work, connect=True)
        idle = hangup_to_wavs(work, connect=False)
        for name, result in (("Connect's disconnect", signal), ("idle time only", idle)):
            ends = ", ".join(sorted(set(result.ended_by)))
            if result.latencies:
                print(
                    f"  {name}: p50 {percentile(result.latencies, 0.5):.2f} s, p95 "
                    f"{percentile(result.latencies, 0.95):.2f} s over {len(result.latencies)} "
                    f"calls; ended_by: {ends}; exact: {result.exact}",
                    flush=True,
                )
            if not result.exact:
                failures.append(f"hang-up ({name}): a recording is missing or differs")
        if signal.latencies and idle.latencies:
            print(
                f"  Connect's signal / idle time (p50): "
                f"{percentile(signal.latencies, 0.5) / percentile(idle.latencies, 0.5):.2f} "
                f"(RECORDING_IDLE_SECONDS={IDLE_S} here; the template's default is "
                f"{template_idle_s})"
            )
            if percentile(signal.latencies, 0.95) > HANGUP_TARGET_S:
                failures.append(
                    f"hang-up -> WAVs p95 {percentile(signal.latencies, 0.95):.2f} s "
                    f"over {HANGUP_TARGET_S:.0f} s"
                )
            if set(signal.ended_by) != {"disconnect"}:
                failures.append(f"calls not ended by the disconnect: {signal.ended_by}")

        up = catch_up(work, 3600)
        print("\ncatch-up, recorder started once the whole call was in KVS (1-hour call):")
        print(
            f"  recorder: {up.recorder_x:.0f}x real time, from its handler's start to the last "
            f"fragment read; exact: {up.exact}"
        )
        print(
            f"  callrec convert on the same stream: {up.convert_x:.0f}x (process), "
            f"{up.convert_in_process_x:.0f}x (in process); recorder/convert (process) "
            f"{up.recorder_x / up.convert_x:.2f}",
            flush=True,
        )
        if not up.exact:
            failures.append("catch-up recording differs")

        print(
            f"\nstart latency, N calls at once (target: every recording within {START_TARGET_S:.0f} s):"
        )
        sustained, baseline, limit = 0, None, ""
        with rig(work, speed=2.0, lambda_timeout_s=30, idle_s=2) as r:
            for calls in CONCURRENCY_STEPS:
                result = concurrent_starts(r, calls, media_s=20)
                worst = max(result.latencies)
                baseline = baseline or result
                stages = ", ".join(f"{k} {v:.2f}" for k, v in result.stages.items())
                print(
                    f"  N={calls}: median {statistics.median(result.latencies):.2f} s, "
                    f"max {worst:.2f} s; CPU busy {result.cpu_busy:.0%}; "
                    f"all completed: {result.all_completed}\n    median stages (s): {stages}",
                    flush=True,
                )
                if not result.all_completed:
                    failures.append(f"N={calls}: a recording did not complete")
                if worst > START_TARGET_S:
                    limit = start_limit(baseline, result)
                    break
                sustained = calls
        print(
            f"  sustained here: {sustained} at once; first above {START_TARGET_S:.0f} s: N={calls}, limit: {limit or 'none reached'}"
        )
        batch = registration(work)
        assert baseline is not None
        room_s = START_TARGET_S - max(baseline.latencies)
        shard_calls = (
            REGISTRATION_BATCH if room_s <= 0 else int(1 + room_s * 1000 / batch.per_record_ms)
        )
        print(
            f"  one shard's serial work: a batch of {batch.records} start records registered in "
            f"{batch.handler_s:.2f} s ({batch.per_record_ms:.1f} ms each); with cold starts in "
            f"parallel (as in AWS) and the N=1 latency of {max(baseline.latencies):.2f} s, one shard "
            f"starts about {shard_calls} calls at once within {START_TARGET_S:.0f} s",
            flush=True,
        )

        print("\nLambda GB-seconds per recorded hour (live calls in AWS, from the figures above):")
        for size in sorted({memory_mb, suggested}):
            for name, call_s, result in (("10-minute", 600, short), ("4-hour", 14400, long)):
                value = gb_seconds_per_hour(size, call_s, result, template_idle_s)
                print(
                    f"  {size} MB, {name} calls: {value:.0f} GB-s "
                    f"(idle {template_idle_s} s, cold start {result.init_s:.2f} s per invocation)"
                )
            print(
                f"  {size} MB, reading a call already in KVS: {size / 1024 * 3600 / up.recorder_x:.2f} GB-s"
            )
        print(
            f"  measured here (time compressed by the speed): {short.billed_s:.1f} s of "
            f"invocations for the 10-minute call, {long.billed_s:.1f} s for the 4-hour call"
        )
    print(f"\nbench_recorder took {time.perf_counter() - began:.0f} s")
    if failures:
        print("MISSED: " + "; ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
