"""Blocks to aligned PCM: the customer (`cu`) and agent (`op`) tracks on one sample clock.

Rules (the recorder and `callrec convert` must produce the same bytes):
- the recording starts at the earliest block timestamp, over both tracks, of the first fragment
  with audio (a later block earlier than that counts as an overlap);
- each block (each frame of a laced block, timed from the samples before it) is placed at the
  sample its timestamp gives relative to the start, rounded to the nearest sample;
- within 20 ms of the track's current end it is appended right at the end (jitter absorbed);
  later, the gap is filled with silence; earlier, the overlapping samples are dropped, and a
  block that would end within 20 ms of the track's end is dropped whole (a repeated block whose
  timestamp jittered: never written twice);
- `finish()` pads both tracks with silence to the same length.

The aligner is resumable: `state()` is a small dict of ints and strings; `Aligner.from_state`
continues with byte-identical output. Typical recorder loop, one fragment at a time:

    gate, aligner = ContactGate(), Aligner()
    for fragment in FragmentReader().read_stream(body):   # skip ErrorChunk events
        decision = gate.decide(fragment)
        if decision is ContactDecision.END: break
        if decision is ContactDecision.KEEP:
            out = aligner.add_fragment(fragment)   # out.cu, out.op: PCM to append
        checkpoint(gate.state(), aligner.state(), fragment.continuation_token)
    tail = aligner.finish()

Deliberately not done here: parsing (mkv.py, fragments.py), files (wav.py, convert.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from callrec.errors import CallrecError
from callrec.fragments import (
    ROLE_AGENT,
    ROLE_CUSTOMER,
    AudioBlock,
    Fragment,
    PcmFormat,
    fragment_roles,
    swap16,
)
from callrec.mkv import Block, Track

JITTER_TOLERANCE_MS = 20
# The longest gap between a track's end and its next block that is filled with silence (media
# streaming paused for a few minutes is plausible; more is a corrupt timecode, which must not
# allocate or upload hours of zeros). Beyond it the fragment is refused with AlignmentError.
MAX_GAP_SECONDS = 600
# Block timestamps (Unix epoch, ns) a recording may start at: 1970-01-01 to 2200-01-01. KVS
# timecodes are epoch milliseconds; a value outside this range is a corrupt timecode (2**64-1
# ms is in the year 584,556,019) and is refused rather than named or aligned.
MIN_TIMESTAMP_NS = 0
MAX_TIMESTAMP_NS = 7_258_118_400 * 1_000_000_000
BYTES_PER_SAMPLE = 2
STATE_VERSION = 1
_NS = 1_000_000_000
# `add` numbers the roles of its AudioBlocks as tracks for `_place`: cu 0, op 1.
_ROLE_NUMBERS = {ROLE_CUSTOMER: 0, ROLE_AGENT: 1}
_NUMBERED_ROLES = (frozenset({0}), frozenset({1}))


class AlignmentError(CallrecError):
    """Audio that cannot be aligned: a sample rate change, or a restored state that is not one."""


@dataclass(frozen=True, slots=True)
class Aligned:
    """PCM to append to each track (little-endian s16 mono), possibly empty."""

    cu: bytes
    op: bytes


class Aligner:
    """Places Connect audio blocks on one sample clock per contact; see the module docstring."""

    __slots__ = (
        "_roles",
        "_roles_key",
        "dropped_samples",
        "duplicates_dropped",
        "ends",
        "fragments",
        "gap_samples",
        "gaps_filled",
        "mime_type",
        "odd_bytes_dropped",
        "sample_rate",
        "start_ns",
    )

    def __init__(self) -> None:
        self.sample_rate: int | None = None
        self.start_ns: int | None = None
        self.ends = {ROLE_CUSTOMER: 0, ROLE_AGENT: 0}
        self.gaps_filled = 0  # silences inserted inside a track (not the leading one)
        self.gap_samples = 0
        self.duplicates_dropped = 0  # frames dropped whole: duplicates
        self.dropped_samples = 0  # samples dropped as overlaps, duplicates included
        self.fragments = 0  # fragments that contributed audio
        # Frames of an odd byte count (not whole 16-bit samples): the odd last byte is dropped
        # and counted here, so that every track stays whole samples.
        self.odd_bytes_dropped = 0
        self.mime_type: str | None = None  # last MimeType seen, for fragments without one
        self._roles_key: tuple[tuple[Track, ...], str | None] | None = None
        # For that key: the format, each track's role and byte order, the tracks of cu and op.
        self._roles: tuple[
            PcmFormat | None, dict[int, tuple[str, bool]], tuple[frozenset[int], ...]
        ] = (None, {}, ())

    @property
    def samples(self) -> int:
        """Length in samples of the longer track so far."""
        return max(self.ends.values())

    def _snapshot(self) -> tuple[Any, ...]:
        return (
            self.sample_rate,
            self.start_ns,
            dict(self.ends),
            self.gaps_filled,
            self.gap_samples,
            self.duplicates_dropped,
            self.dropped_samples,
            self.fragments,
            self.mime_type,
            self.odd_bytes_dropped,
        )

    def _restore(self, saved: tuple[Any, ...]) -> None:
        (
            self.sample_rate,
            self.start_ns,
            self.ends,
            self.gaps_filled,
            self.gap_samples,
            self.duplicates_dropped,
            self.dropped_samples,
            self.fragments,
            self.mime_type,
            self.odd_bytes_dropped,
        ) = saved

    def add_fragment(self, fragment: Fragment) -> Aligned:
        """Aligns one fragment's Connect audio (the caller has applied the contact rules).

        A fragment refused (`AlignmentError`, or `MkvError` for audio that is not PCM) leaves
        the aligner as it was before it; the AlignmentError names the fragment."""
        saved = self._snapshot()
        try:
            return self._add_fragment(fragment)
        except AlignmentError as exc:
            self._restore(saved)
            number = fragment.fragment_number or f"#{fragment.index}"
            raise AlignmentError(f"fragment {number} (at byte {fragment.offset}): {exc}") from None
        except CallrecError:
            self._restore(saved)
            raise

    def _add_fragment(self, fragment: Fragment) -> Aligned:
        mime = fragment.mime_type or self.mime_type
        # A Connect stream repeats its tracks and MimeType: their roles are worked out once.
        key = (fragment.tracks, mime)
        if key != self._roles_key:
            fmt, roles = fragment_roles(fragment, mime)
            by_role = tuple(
                frozenset(number for number, (r, _) in roles.items() if r == role)
                for role in (ROLE_CUSTOMER, ROLE_AGENT)
            )
            self._roles_key, self._roles = key, (fmt, roles, by_role)
        fmt, roles, by_role = self._roles
        if fragment.mime_type:
            self.mime_type = fragment.mime_type
        blocks = fragment.blocks
        if fmt is None or not any(block.track in roles for block in blocks):
            return Aligned(b"", b"")
        if any(big_endian for _, big_endian in roles.values()):
            blocks = [
                Block(
                    block.track,
                    block.timecode,
                    [self._swap(frame, block.offset) for frame in block.frames]
                    if roles.get(block.track, ("", False))[1]
                    else block.frames,
                    block.offset,
                )
                for block in blocks
            ]
        self.fragments += 1
        return self._place(blocks, by_role, fragment.timecode_scale, fmt)

    def _swap(self, frame: bytes, offset: int) -> bytes:
        """A big-endian frame as little-endian samples (an odd last byte dropped and counted)."""
        if len(frame) % BYTES_PER_SAMPLE:
            frame = frame[:-1]
            self.odd_bytes_dropped += 1
        return swap16(frame, offset)

    def add(self, blocks: Sequence[AudioBlock], fmt: PcmFormat | None) -> Aligned:
        """Aligns audio blocks of one fragment, all in format `fmt` (as `fragment_audio` returns
        them; prefer `add_fragment`, which also carries MimeType over tagless fragments). A
        refused fragment leaves the aligner as it was."""
        if not blocks or fmt is None:
            return Aligned(b"", b"")
        numbered = [
            Block(_ROLE_NUMBERS[block.role], block.timestamp_ns, block.frames, 0)
            for block in blocks
        ]
        saved = self._snapshot()
        try:
            return self._place(numbered, _NUMBERED_ROLES, 1, fmt)
        except AlignmentError:
            self._restore(saved)
            raise

    def _place(
        self,
        blocks: Sequence[Block],
        by_role: tuple[frozenset[int], ...],
        scale: int,
        fmt: PcmFormat,
    ) -> Aligned:
        """Places the blocks of the tracks `by_role` gives for cu and op (timecodes in `scale`
        ns ticks)."""
        sample_rate = fmt.sample_rate
        if self.sample_rate is None:
            self.sample_rate = sample_rate
        elif sample_rate != self.sample_rate:
            raise AlignmentError(
                f"expected audio at {self.sample_rate} Hz, found {sample_rate} Hz mid-recording"
            )
        if self.start_ns is None:
            known = by_role[0] | by_role[1]
            start = min(block.timecode for block in blocks if block.track in known) * scale
            if not MIN_TIMESTAMP_NS <= start < MAX_TIMESTAMP_NS:
                raise AlignmentError(
                    f"expected audio timestamps between 1970 and 2200, found {start} ns since"
                    " 1970 (a corrupt Cluster Timecode or TimecodeScale)"
                )
            self.start_ns = start
        # Each role's blocks in stream order (the tracks are independent of each other).
        return Aligned(
            self._place_role(blocks, by_role[0], ROLE_CUSTOMER, scale),
            self._place_role(blocks, by_role[1], ROLE_AGENT, scale),
        )

    def _place_role(  # noqa: PLR0912
        self, blocks: Sequence[Block], tracks: frozenset[int], role: str, scale: int
    ) -> bytes:
        """The PCM the blocks of `tracks` append to the `role` track."""
        if not tracks:
            return b""
        rate = self.sample_rate
        start = self.start_ns
        assert rate is not None
        assert start is not None
        tolerance = rate * JITTER_TOLERANCE_MS // 1000
        max_gap = rate * MAX_GAP_SECONDS
        # A block's sample is its timestamp's, rounded to the nearest, half up: exact integer
        # arithmetic on nanoseconds. When a tick is a whole number of samples and the start a
        # whole number of ticks (1 ms ticks, 8 kHz), that is a product of integers.
        per_tick, remainder = divmod(scale * rate, _NS)
        whole_ticks = not remainder and not start % scale
        first_tick = start // scale
        end = self.ends[role]
        pieces: list[bytes] = []
        append = pieces.append
        for block in blocks:
            if block.track not in tracks:
                continue
            if whole_ticks:
                pos = (block.timecode - first_tick) * per_tick
            else:
                pos = ((block.timecode * scale - start) * rate * 2 + _NS) // (2 * _NS)
            for frame in block.frames:
                if len(frame) & 1:  # not whole samples: the odd last byte is dropped
                    frame = frame[:-1]  # noqa: PLW2901
                    self.odd_bytes_dropped += 1
                count = len(frame) // BYTES_PER_SAMPLE
                if pos > end + tolerance:
                    silence = pos - end
                    if silence > max_gap:
                        raise AlignmentError(
                            f"expected {role} audio within {MAX_GAP_SECONDS} s (MAX_GAP_SECONDS)"
                            f" of the track's end, found a block {silence / rate:.3f} s later"
                            f" (at byte {block.offset}): a gap that long is not filled with"
                            " silence"
                        )
                    if end:
                        self.gaps_filled += 1
                        self.gap_samples += silence
                    append(bytes(silence * BYTES_PER_SAMPLE))
                    append(frame)
                    end = pos + count
                elif pos >= end - tolerance:
                    append(frame)
                    end += count
                else:
                    overlap = end - pos
                    # A block ending within the tolerance of the track's end is a repeat whose
                    # timestamp jittered: written again, its tail would be heard twice.
                    if pos + count <= end + tolerance:
                        self.duplicates_dropped += 1
                        self.dropped_samples += count
                    else:
                        self.dropped_samples += overlap
                        append(frame[overlap * BYTES_PER_SAMPLE :])
                        end += count - overlap
                pos += count
        self.ends[role] = end
        return b"".join(pieces)

    def finish(self) -> Aligned:
        """Silence that pads both tracks to the same length; the aligner stays usable."""
        length = self.samples
        pads = {role: bytes((length - end) * BYTES_PER_SAMPLE) for role, end in self.ends.items()}
        self.ends = dict.fromkeys(self.ends, length)
        return Aligned(pads[ROLE_CUSTOMER], pads[ROLE_AGENT])

    def state(self) -> dict[str, int | str]:
        """Everything needed to continue: small, JSON- and DynamoDB-safe (ints and strings)."""
        state: dict[str, int | str] = {
            "v": STATE_VERSION,
            "cu_end": self.ends[ROLE_CUSTOMER],
            "op_end": self.ends[ROLE_AGENT],
            "gaps_filled": self.gaps_filled,
            "gap_samples": self.gap_samples,
            "duplicates_dropped": self.duplicates_dropped,
            "dropped_samples": self.dropped_samples,
            "fragments": self.fragments,
            "odd_bytes_dropped": self.odd_bytes_dropped,
        }
        if self.sample_rate is not None:
            state["rate"] = self.sample_rate
        if self.start_ns is not None:
            state["start_ns"] = self.start_ns
        if self.mime_type is not None:
            state["mime_type"] = self.mime_type
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Aligner:
        """An aligner continuing from `state()` (numbers may come back as Decimal or str)."""
        if int(state.get("v", -1)) != STATE_VERSION:
            raise AlignmentError(
                f"expected aligner state version {STATE_VERSION}, found {state.get('v')!r}"
            )
        aligner = cls()
        try:
            aligner.ends = {ROLE_CUSTOMER: int(state["cu_end"]), ROLE_AGENT: int(state["op_end"])}
            aligner.gaps_filled = int(state["gaps_filled"])
            aligner.gap_samples = int(state["gap_samples"])
            aligner.duplicates_dropped = int(state["duplicates_dropped"])
            aligner.dropped_samples = int(state["dropped_samples"])
            aligner.fragments = int(state["fragments"])
            # Absent from states saved before odd bytes were counted.
            aligner.odd_bytes_dropped = int(state.get("odd_bytes_dropped", 0))
            aligner.sample_rate = int(state["rate"]) if "rate" in state else None
            aligner.start_ns = int(state["start_ns"]) if "start_ns" in state else None
        except (KeyError, TypeError, ValueError) as exc:
            raise AlignmentError(
                f"expected a complete aligner state, found {dict(state)!r}"
            ) from exc
        mime = state.get("mime_type")
        aligner.mime_type = str(mime) if mime is not None else None
        return aligner


def interleave(left: bytes, right: bytes) -> bytes:
    """Two equally long 16-bit mono PCM buffers as one stereo buffer (left, right, left, ...)."""
    if len(left) != len(right) or len(left) % BYTES_PER_SAMPLE:
        raise ValueError(
            f"expected equal whole-sample buffers, got {len(left)} and {len(right)} bytes"
        )
    # Byte-wise strided copies (faster than array('h') slices): low, high bytes of each side.
    stereo = bytearray(2 * len(left))
    stereo[0::4] = left[0::2]
    stereo[1::4] = left[1::2]
    stereo[2::4] = right[0::2]
    stereo[3::4] = right[1::2]
    return bytes(stereo)


class StereoMuxer:
    """Interleaves two tracks that arrive in chunks of different lengths: `push` returns the
    stereo PCM both tracks now cover and keeps the longer track's excess until the other
    catches up (after `Aligner.finish()` nothing is left over)."""

    __slots__ = ("_left", "_right")

    def __init__(self) -> None:
        self._left = b""
        self._right = b""

    @property
    def pending(self) -> int:
        """Bytes held back, waiting for the other track."""
        return len(self._left) + len(self._right)

    def held(self) -> bytes:
        """The held-back bytes as one blob (for a checkpoint): left length, left, right."""
        return len(self._left).to_bytes(8, "little") + self._left + self._right

    @classmethod
    def holding(cls, blob: bytes) -> StereoMuxer:
        """A muxer continuing from `held()` (an empty blob: nothing held)."""
        muxer = cls()
        if blob:
            size = int.from_bytes(blob[:8], "little")
            muxer._left = bytes(blob[8 : 8 + size])
            muxer._right = bytes(blob[8 + size :])
        return muxer

    def push(self, left: bytes, right: bytes) -> bytes:
        """Adds PCM to each side; returns the stereo PCM now complete."""
        left = self._left + left if self._left else left
        right = self._right + right if self._right else right
        common = min(len(left), len(right))
        self._left = left[common:]
        self._right = right[common:]
        if not common:
            return b""
        if common == len(left) == len(right):
            return interleave(left, right)
        return interleave(left[:common], right[:common])
