"""Durable, constant-memory WAV output in S3 for recordings that outlive any one invocation.

While the call lasts, each output (`cu`, `op`, `stereo`) appends PCM to a buffer; every full
segment (5 MiB, S3's minimum non-final part) is put under the staging prefix and dropped
from memory. At a checkpoint the partial buffer (the tail) is put too, so the checkpoint's
state names only durable objects and any later invocation can pick up exactly there.

When the call ends, each WAV is assembled with one multipart upload: part 1 is the true
header plus the first segment (read back once), the other segments are copied server-side
with UploadPartCopy, and the tail is the last part. So the WAV appears whole, at once, with
its real sizes in the header and its full metadata (duration included), and the Lambda never
holds more than about one segment per output. Staging objects are deleted afterwards; the
bucket's lifecycle removes any that a vanished recorder leaves behind.

Staging keys carry the lease generation, so two invocations never write the same key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from callrec.errors import CallrecError
from callrec.wav import wav_header

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SEGMENT_BYTES = 5 * 1024 * 1024


# Part copies an assembly runs at once.
COPY_WORKERS = 8


class StorageError(CallrecError):
    """S3 refused or failed a request about a recording's audio."""


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """One WAV of a recording."""

    name: str  # "cu", "op", "stereo"
    channels: int


@dataclass(slots=True)
class _Output:
    spec: OutputSpec
    segments: list[str] = field(default_factory=list)
    buffer: bytearray = field(default_factory=bytearray)
    tail_key: str | None = None
    tail_bytes: int = 0


class StagedRecording:
    """The outputs of one recording, staged in S3 between checkpoints."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        staging_prefix: str,
        contact_id: str,
        *,
        generation: int,
        outputs: list[OutputSpec],
        state: Mapping[str, Any] | None = None,
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        if segment_bytes < 1:
            raise ValueError("segment_bytes must be positive")
        self._s3 = client
        self._bucket = bucket
        self._prefix = f"{staging_prefix}{contact_id}/g{generation}-"
        self._contact_id = contact_id
        self._segment_bytes = segment_bytes
        self._seq = 0
        self._stale_tails: list[str] = []
        self._outputs = {spec.name: _Output(spec) for spec in outputs}
        # Small side data that must be as durable as the audio (the stereo mixer's pending
        # samples): put beside the tails at each snapshot, read back on restore.
        self.extras: dict[str, bytes] = {}
        self._extra_keys: dict[str, str] = {}
        if state:
            self._restore(state)

    @property
    def segments(self) -> int:
        """Staged segments across the outputs: the part copies an assembly makes."""
        return sum(len(out.segments) for out in self._outputs.values())

    @property
    def data_bytes(self) -> dict[str, int]:
        """PCM bytes written so far per output."""
        return {
            name: len(out.segments) * self._segment_bytes + len(out.buffer)
            for name, out in self._outputs.items()
        }

    def write(self, name: str, pcm: bytes | bytearray | memoryview) -> None:
        """Append PCM to one output; full segments go to S3 at once."""
        out = self._outputs[name]
        out.buffer += pcm
        while len(out.buffer) >= self._segment_bytes:
            key = f"{self._prefix}{name}-{len(out.segments):05d}.pcm"
            self._put(key, bytes(out.buffer[: self._segment_bytes]))
            out.segments.append(key)
            del out.buffer[: self._segment_bytes]

    def snapshot(self, extras: Mapping[str, bytes] | None = None) -> dict[str, Any]:
        """Make every buffered byte (and `extras`) durable; return the state naming it all.

        Store the state (in the checkpoint) before calling `forget_superseded`.
        """
        self._seq += 1
        self._stale_tails.extend(self._extra_keys.values())
        self.extras = dict(extras or {})
        self._extra_keys = {}
        for name, blob in self.extras.items():
            if blob:
                key = f"{self._prefix}extra-{name}-{self._seq:05d}.bin"
                self._put(key, blob)
                self._extra_keys[name] = key
        outputs: dict[str, Any] = {}
        for name, out in self._outputs.items():
            if out.tail_bytes != len(out.buffer) or (out.buffer and out.tail_key is None):
                if out.tail_key is not None:
                    self._stale_tails.append(out.tail_key)
                if out.buffer:
                    out.tail_key = f"{self._prefix}{name}-tail-{self._seq:05d}.pcm"
                    self._put(out.tail_key, bytes(out.buffer))
                else:
                    out.tail_key = None
                out.tail_bytes = len(out.buffer)
            outputs[name] = {
                "segments": list(out.segments),
                "tail_key": out.tail_key,
                "tail_bytes": out.tail_bytes,
            }
        return {
            "segment_bytes": self._segment_bytes,
            "seq": self._seq,
            "outputs": outputs,
            "extras": dict(self._extra_keys),
        }

    def forget_superseded(self) -> None:
        """Delete tails no stored checkpoint names any more (best effort)."""
        stale, self._stale_tails = self._stale_tails, []
        for key in stale:
            self._delete(key)

    def assemble(
        self,
        keys: Mapping[str, str],
        *,
        sample_rate: int,
        metadata: Mapping[str, str],
        done: Collection[str] = (),
        on_assembled: Callable[[str], None] | None = None,
    ) -> None:
        """Write each output as its final WAV at `keys[name]`, except those `done`, calling
        `on_assembled(name)` once each is whole in S3 (a caller can checkpoint there, so that
        an assembly cut short resumes with the outputs left).

        Safe to repeat after a crash: a repeated assembly writes the same bytes again.
        """
        for name, out in self._outputs.items():
            if name in done:
                continue
            self._assemble_one(out, keys[name], sample_rate, metadata)
            if on_assembled is not None:
                on_assembled(name)

    def delete_staging(self) -> None:
        """Remove every staging object this recording's state names (best effort)."""
        for out in self._outputs.values():
            for key in [*out.segments, *([out.tail_key] if out.tail_key else [])]:
                self._delete(key)
        for key in self._extra_keys.values():
            self._delete(key)
        self.forget_superseded()

    def _assemble_one(
        self, out: _Output, key: str, sample_rate: int, metadata: Mapping[str, str]
    ) -> int:
        spec = out.spec
        size = len(out.segments) * self._segment_bytes + len(out.buffer)
        header = wav_header(sample_rate=sample_rate, channels=spec.channels, data_bytes=size)
        meta = {**metadata, "channels": str(spec.channels), "output": spec.name}
        try:
            if not out.segments:
                self._s3.put_object(
                    Bucket=self._bucket,
                    Key=key,
                    Body=header + bytes(out.buffer),
                    ContentType="audio/wav",
                    Metadata=meta,
                )
                return size
            self._abort_leftover_uploads(key)
            upload_id = self._s3.create_multipart_upload(
                Bucket=self._bucket, Key=key, ContentType="audio/wav", Metadata=meta
            )["UploadId"]
            try:
                parts = self._upload_parts(out, key, upload_id, header)
                self._s3.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                )
            except BaseException:
                self._abort(key, upload_id)
                raise
        except ClientError as exc:
            raise StorageError(
                f"contact {self._contact_id}: cannot assemble s3://{self._bucket}/{key}: {exc}"
            ) from exc
        return size

    def _upload_parts(
        self, out: _Output, key: str, upload_id: str, header: bytes
    ) -> list[dict[str, Any]]:
        first = self._s3.get_object(Bucket=self._bucket, Key=out.segments[0])["Body"].read()
        if len(first) != self._segment_bytes:
            raise StorageError(
                f"contact {self._contact_id}: staging segment {out.segments[0]} holds "
                f"{len(first)} bytes, expected {self._segment_bytes}"
            )
        etag = self._s3.upload_part(
            Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=header + first
        )["ETag"]
        parts: list[dict[str, Any]] = [{"PartNumber": 1, "ETag": etag}]

        def copy(number: int, segment: str) -> dict[str, Any]:
            copied = self._s3.upload_part_copy(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource={"Bucket": self._bucket, "Key": segment},
            )
            return {"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]}

        # Server-side copies, each a round trip of S3's: a few at once (boto3 clients are
        # thread-safe, and keep up to 10 connections) make a long call's assembly several
        # times shorter. map() keeps the part order and raises the first failure.
        with ThreadPoolExecutor(COPY_WORKERS, thread_name_prefix="part-copy") as pool:
            parts.extend(pool.map(copy, range(2, len(out.segments) + 1), out.segments[1:]))
        if out.buffer:
            etag = self._s3.upload_part(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=len(parts) + 1,
                Body=bytes(out.buffer),
            )["ETag"]
            parts.append({"PartNumber": len(parts) + 1, "ETag": etag})
        return parts

    def _restore(self, state: Mapping[str, Any]) -> None:
        if state.get("segment_bytes") != self._segment_bytes:
            raise StorageError(
                f"contact {self._contact_id}: checkpoint segment size {state.get('segment_bytes')} "
                f"differs from this recorder's {self._segment_bytes}"
            )
        self._seq = int(state["seq"])
        self._extra_keys = dict(state.get("extras", {}))
        self.extras = {name: self._get(key) for name, key in self._extra_keys.items()}
        for name, saved in state["outputs"].items():
            out = self._outputs[name]
            out.segments = list(saved["segments"])
            out.tail_key = saved["tail_key"]
            out.tail_bytes = int(saved["tail_bytes"])
            if out.tail_key is not None:
                tail = self._get(out.tail_key)
                if len(tail) != out.tail_bytes:
                    raise StorageError(
                        f"contact {self._contact_id}: staging tail {out.tail_key} holds "
                        f"{len(tail)} bytes, the checkpoint says {out.tail_bytes}"
                    )
                out.buffer = bytearray(tail)

    def _abort_leftover_uploads(self, key: str) -> None:
        """Abort uploads of this key that a crashed assembly left open."""
        listing = self._s3.list_multipart_uploads(Bucket=self._bucket, Prefix=key)
        for upload in listing.get("Uploads", []):
            if upload.get("Key") == key:
                self._abort(key, upload["UploadId"])

    def _abort(self, key: str, upload_id: str) -> None:
        # If this fails too, the bucket's lifecycle rule aborts the upload after a week.
        with contextlib.suppress(ClientError):
            self._s3.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)

    def _put(self, key: str, body: bytes) -> None:
        try:
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=body)
        except ClientError as exc:
            raise StorageError(
                f"contact {self._contact_id}: cannot stage s3://{self._bucket}/{key}: {exc}"
            ) from exc

    def _get(self, key: str) -> bytes:
        try:
            body: bytes = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as exc:
            raise StorageError(
                f"contact {self._contact_id}: cannot read staging s3://{self._bucket}/{key}: {exc}"
            ) from exc
        return body

    def _delete(self, key: str) -> None:
        # If this fails, the staging prefix's lifecycle rule removes the object.
        with contextlib.suppress(ClientError):
            self._s3.delete_object(Bucket=self._bucket, Key=key)
