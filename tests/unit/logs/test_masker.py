"""callrec.logs.Masker: what counts as personal in a log value, and what is left readable."""

from __future__ import annotations

import pytest

from callrec.logs import MASK, Masker, personal_values
from tests.support import load_event


@pytest.mark.parametrize(
    "phone",
    [
        "+81312345678",
        "+11234567890",
        "+1 (555) 123-4567",
        "+81 3-1234-5678",
        "03-1234-5678",
        "(555) 123-4567",
    ],
)
def test_phone_numbers_in_text_are_masked(phone: str) -> None:
    assert Masker().text(f"caller {phone} hung up") == f"caller {MASK} hung up"


@pytest.mark.parametrize(
    "text",
    [
        "5ca32fbd-8f92-46af-92a5-6b0f970f0efe",
        "12345678-1234-1234-1234-123456789012",
        "91343852333181432392682062622220590765191907586",
        "arn:aws:kinesisvideo:us-east-1:123456789012:stream/s/1782912600000",
        "2026-11-24T05:52:41.512+00:00",
        "recordings/2026/11/24/c-1/20261124T054703Z-stereo.wav",
        "shardId-000000000000:49656791163423411402377460937839633658262834349474381826",
    ],
)
def test_identifiers_times_and_numbers_are_left_readable(text: str) -> None:
    assert Masker().text(text) == text


def test_personal_keys_are_masked_at_any_depth_and_in_quoted_text() -> None:
    masker = Masker()

    masked = masker.value(
        {
            "message": "bad record {'parameters': {'campaign': 'x-y-z'}, 'contact_id': 'c-1'}",
            "record": {
                "contact_id": "c-1",
                "customer_phone_number": "n/a",
                "Attributes": {"a": "b"},
            },
        }
    )

    assert masked == {
        "message": f"bad record {{'parameters': {MASK}, 'contact_id': 'c-1'}}",
        "record": {"contact_id": "c-1", "customer_phone_number": MASK, "Attributes": MASK},
    }


def test_the_invocation_s_values_are_masked_anywhere_only_inside_the_block() -> None:
    masker = Masker()
    values = personal_values(load_event("contact-flow-event.json"))

    with masker.known(values):
        inside = masker.text("found 'Hanako Yamada' in StreamARN")

    assert {"Hanako Yamada", "gold-member", "support-line", "+11234567890"} <= values
    assert inside == f"found '{MASK}' in StreamARN"
    assert masker.text("Hanako Yamada") == "Hanako Yamada"
