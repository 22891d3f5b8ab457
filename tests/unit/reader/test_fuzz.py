"""The mutation fuzzer (callrec_local.fuzz): a couple of thousand cases in the normal suite, and
the harness itself telling hangs, memory blow-ups, crashes and stray exceptions apart."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from callrec_local import fuzz
from tests.support import REPO

CASES = 2000


def test_two_thousand_mutated_captures_give_answers_only() -> None:
    # Given mutated real captures and generated streams, each read whole and in random chunks
    report = fuzz.run(CASES, seed=15, failures_dir=REPO / "fuzz-failures")
    # Then every case converts or is refused with one of callrec's errors: no stray exception,
    # hang, memory blow-up, chunking mismatch or broken WAV (reproducers in fuzz-failures/)
    assert sum(report.counts.values()) == CASES
    assert not report.failures, "\n".join(report.lines())
    # and the mutations reach both answers
    assert report.counts[fuzz.OK] > 0
    assert report.counts[fuzz.REFUSED] > 0


SEED = [("tiny", b"\x1a\x45\xdf\xa3\x80")]


def slow(data: bytes, chunk_seed: int, workdir: Path) -> str:
    time.sleep(60)
    return fuzz.OK


def greedy(data: bytes, chunk_seed: int, workdir: Path) -> str:
    hoard = bytearray(64 << 30)  # beyond the ceiling
    return fuzz.OK if hoard else fuzz.REFUSED


def stray(data: bytes, chunk_seed: int, workdir: Path) -> str:
    raise ZeroDivisionError("x")


def dies(data: bytes, chunk_seed: int, workdir: Path) -> str:
    os._exit(3)


@pytest.mark.parametrize(
    ("check", "outcome"),
    [
        (slow, fuzz.HANG),
        (greedy, fuzz.MEMORY),
        (stray, fuzz.UNEXPECTED),
        (dies, fuzz.CRASH),
    ],
)
def test_the_harness_tells_failures_apart_and_saves_reproducers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, check: object, outcome: str
) -> None:
    # Given a case check that misbehaves (the worker process is forked with it)
    monkeypatch.setattr(fuzz, "check", check)
    # When two cases run with a 0.5 s limit
    report = fuzz.run(2, time_limit=0.5, failures_dir=tmp_path, seeds=SEED)
    # Then both are counted as that failure, and their inputs saved with a note
    assert report.counts == {outcome: 2}
    saved = sorted(tmp_path.glob(f"{outcome}-*.txt"))
    assert saved
    assert "replay: python -m callrec_local.fuzz --replay" in saved[0].read_text()
