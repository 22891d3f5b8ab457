"""Fixtures for the KVS emulator tests: an emulator per test, real boto3 clients, a chunk walker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import ebmlite  # type: ignore[import-untyped]
import pytest
from botocore.config import Config

from callrec_local.kvs_emulator import EmulatorConfig, KvsEmulator

SCHEMA = ebmlite.loadSchema("matroska.xml")
EBML_MAGIC = b"\x1a\x45\xdf\xa3"


@dataclass
class Chunk:
    """One EBML document of a GetMedia body, as ebmlite sees it."""

    raw: bytes
    tags: dict[str, str] = field(default_factory=dict)
    blocks: int = 0
    parsed: bool = True

    @property
    def fragment_number(self) -> str | None:
        return self.tags.get("AWS_KINESISVIDEO_FRAGMENT_NUMBER")

    @property
    def complete(self) -> bool:
        """A whole GetMedia chunk ends with the continuation token (the tags after the Cluster)."""
        return (
            "AWS_KINESISVIDEO_CONTINUATION_TOKEN" in self.tags
            or "AWS_KINESISVIDEO_ERROR_CODE" in self.tags
        )


def walk_chunks(body: bytes) -> list[Chunk]:
    """Split a GetMedia body at EBML headers and read each document's tags with ebmlite."""
    pieces = [p for p in body.split(EBML_MAGIC) if p]
    chunks = []
    for piece in pieces:
        raw = EBML_MAGIC + piece
        chunk = Chunk(raw)
        try:
            for segment in SCHEMA.loads(raw):
                for el in segment:
                    if el.name == "Tags":
                        for tag in el:
                            for simple in tag if tag.name == "Tag" else []:
                                values = {c.name: c.value for c in simple}
                                chunk.tags[values["TagName"]] = values.get("TagString", "")
                    elif el.name == "Cluster":
                        chunk.blocks += sum(1 for b in el if b.name == "SimpleBlock")
        except Exception:  # a cut chunk: ebmlite cannot finish it
            chunk.parsed = False
        chunks.append(chunk)
    return chunks


@dataclass
class Clients:
    control: Any
    media: Any
    archived: Any


def make_clients(endpoint: str) -> Clients:
    kw: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "config": Config(retries={"max_attempts": 1}, read_timeout=20, max_pool_connections=20),
    }
    return Clients(
        control=boto3.client("kinesisvideo", **kw),
        media=boto3.client("kinesis-video-media", **kw),
        archived=boto3.client("kinesis-video-archived-media", **kw),
    )


@pytest.fixture
def emulator() -> Iterator[Callable[..., KvsEmulator]]:
    """A factory: emulator(**EmulatorConfig fields) -> started emulator, stopped after the test."""
    started: list[KvsEmulator] = []

    def make(**config: Any) -> KvsEmulator:
        kvs = KvsEmulator(EmulatorConfig(**config))
        kvs.start()
        started.append(kvs)
        return kvs

    yield make
    for kvs in started:
        kvs.stop()


@pytest.fixture
def chunks() -> Callable[[bytes], list[Chunk]]:
    return walk_chunks


@pytest.fixture
def clients() -> Callable[[KvsEmulator], Clients]:
    return lambda kvs: make_clients(kvs.endpoint_url)
