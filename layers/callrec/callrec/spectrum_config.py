"""The spectrum function's environment, parsed once at the edge into frozen settings.

Names come from template.yaml's Globals (BUCKET_NAME, TABLE_NAME, RECORDINGS_PREFIX,
SPECTROGRAMS_PREFIX). The prefixes must differ and neither may contain the other: images written
under the recordings prefix would trigger the function again, for ever.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from callrec.config import ConfigError


def _require(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is required and is not set")
    return value


def _prefix(environ: Mapping[str, str], name: str) -> str:
    value = _require(environ, name)
    if value.startswith("/") or not value.endswith("/"):
        raise ConfigError(
            f"environment variable {name}: expected a key prefix like 'recordings/' "
            f"(no leading '/', one trailing '/'), found {value!r}"
        )
    return value


@dataclass(frozen=True, slots=True)
class SpectrumSettings:
    """Where recordings are read from and where their spectrograms go."""

    bucket_name: str
    table_name: str
    recordings_prefix: str = "recordings/"
    spectrograms_prefix: str = "spectrograms/"

    def __post_init__(self) -> None:
        a, b = self.recordings_prefix, self.spectrograms_prefix
        if a.startswith(b) or b.startswith(a):
            raise ConfigError(
                f"RECORDINGS_PREFIX {a!r} and SPECTROGRAMS_PREFIX {b!r} overlap: "
                "images would trigger the spectrum function again"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SpectrumSettings:
        """Read and validate BUCKET_NAME, TABLE_NAME, RECORDINGS_PREFIX, SPECTROGRAMS_PREFIX."""
        env = os.environ if environ is None else environ
        return cls(
            bucket_name=_require(env, "BUCKET_NAME"),
            table_name=_require(env, "TABLE_NAME"),
            recordings_prefix=_prefix(env, "RECORDINGS_PREFIX"),
            spectrograms_prefix=_prefix(env, "SPECTROGRAMS_PREFIX"),
        )
