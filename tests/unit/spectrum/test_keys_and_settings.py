"""Recording keys -> image keys, and the spectrum function's settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from callrec.config import ConfigError
from callrec.spectrogram_store import RecordingKey, UnexpectedKey
from callrec.spectrum_config import SpectrumSettings

ENV = {
    "BUCKET_NAME": "callrec-recordings-123456789012-us-east-1",
    "TABLE_NAME": "callrec-RecordingsTable-1ABC",
    "RECORDINGS_PREFIX": "recordings/",
    "SPECTROGRAMS_PREFIX": "spectrograms/",
}


@pytest.mark.parametrize("kind", ["cu", "op", "stereo"])
def test_the_image_key_mirrors_the_recording_key_under_the_spectrograms_prefix(kind: str) -> None:
    key = f"recordings/2026/11/24/5b3f0c1e-0d2a/20261124T054703Z-{kind}.wav"

    parsed = RecordingKey.parse(key, "recordings/")

    assert parsed.contact_id == "5b3f0c1e-0d2a"
    assert parsed.start == datetime(2026, 11, 24, 5, 47, 3, tzinfo=UTC)
    assert parsed.kind == kind
    image = parsed.spectrogram_key("spectrograms/")
    assert image == f"spectrograms/2026/11/24/5b3f0c1e-0d2a/20261124T054703Z-{kind}.png"
    assert not image.startswith("recordings/")


@pytest.mark.parametrize(
    "key",
    [
        "spectrograms/2026/11/24/c/20261124T054703Z-cu.png",
        "recordings/2026/11/24/c/20261124T054703Z-mix.wav",
        "recordings/2026/11/24/20261124T054703Z-cu.wav",
        "recordings/2026/11/24/c/d/20261124T054703Z-cu.wav",
        "recordings/2026/13/24/c/20261324T054703Z-cu.wav",
        "recordings/2026/11/24/c/20261124T054703Z-cu.wav.part",
    ],
)
def test_keys_that_are_not_recordings_are_refused_with_the_expected_shape(key: str) -> None:
    with pytest.raises(UnexpectedKey, match="expected"):
        RecordingKey.parse(key, "recordings/")


def test_settings_come_from_the_environment() -> None:
    settings = SpectrumSettings.from_env(ENV)

    assert settings.bucket_name == ENV["BUCKET_NAME"]
    assert settings.table_name == ENV["TABLE_NAME"]
    assert settings.recordings_prefix == "recordings/"
    assert settings.spectrograms_prefix == "spectrograms/"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"TABLE_NAME": ""}, "TABLE_NAME is required"),
        ({"SPECTROGRAMS_PREFIX": "spectrograms"}, "expected a key prefix"),
        ({"SPECTROGRAMS_PREFIX": "recordings/images/"}, "overlap"),
        ({"SPECTROGRAMS_PREFIX": "recordings/"}, "overlap"),
    ],
)
def test_bad_settings_fail_loudly(change: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SpectrumSettings.from_env({**ENV, **change})
