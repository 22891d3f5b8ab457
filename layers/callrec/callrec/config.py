"""Environment variables parsed once, at the edge, into frozen settings.

Handlers call `SendEventSettings.from_env()` (and their siblings) once per cold start; the
library below them never reads `os.environ`. Missing or malformed variables fail loudly
with the variable's name: a misconfigured deployment should not half-work.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from callrec.errors import CallrecError


class ConfigError(CallrecError):
    """A required environment variable is missing or malformed."""


def _require(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is required and is not set")
    return value


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in {"true", "1", "yes"}:
        return True
    if value in {"false", "0", "no"}:
        return False
    raise ConfigError(f"environment variable {name}: expected true or false, found {raw!r}")


@dataclass(frozen=True, slots=True)
class SendEventSettings:
    """Settings of the contact-flow Lambda."""

    stream_name: str
    include_phone_number: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SendEventSettings:
        env = os.environ if environ is None else environ
        return cls(
            stream_name=_require(env, "STREAM_NAME"),
            include_phone_number=_flag(env, "INCLUDE_CUSTOMER_PHONE_NUMBER", default=False),
        )
