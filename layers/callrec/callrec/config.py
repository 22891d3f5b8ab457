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
class LogSettings:
    """What every function may log: personal data only when LOG_PERSONAL_DATA is true."""

    log_personal_data: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LogSettings:
        env = os.environ if environ is None else environ
        return cls(log_personal_data=_flag(env, "LOG_PERSONAL_DATA", default=False))


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


def _int(environ: Mapping[str, str], name: str, default: int | None, *, minimum: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        if default is None:
            raise ConfigError(f"environment variable {name} is required and is not set")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            f"environment variable {name}: expected an integer, found {raw!r}"
        ) from None
    if value < minimum:
        raise ConfigError(
            f"environment variable {name}: expected at least {minimum}, found {value}"
        )
    return value


@dataclass(frozen=True, slots=True)
class RecorderSettings:
    """Settings of the recorder function (template.yaml sets every variable)."""

    table_name: str
    bucket_name: str
    recordings_prefix: str
    staging_prefix: str
    function_name: str
    idle_seconds: int
    expiration_days: int
    # Seconds before the invocation's timeout at which it checkpoints and hands off; by
    # default a quarter of the time it was given, at most a minute.
    handoff_margin_seconds: int | None = None
    checkpoint_interval_seconds: int = 60
    # The longest silence a recording waits through while Connect says the contact is still
    # connected (a paused flow); beyond it the recording ends ("idle-ceiling").
    max_pause_seconds: int = 3600
    # The KMS key the Connect instance encrypts its streams with (the KvsKmsKeyArn
    # parameter): named in the reason of a recording that fails on a KMS error chunk.
    kvs_kms_key_arn: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RecorderSettings:
        env = os.environ if environ is None else environ
        margin = env.get("HANDOFF_MARGIN_SECONDS", "").strip()
        return cls(
            table_name=_require(env, "TABLE_NAME"),
            bucket_name=_require(env, "BUCKET_NAME"),
            recordings_prefix=_require(env, "RECORDINGS_PREFIX"),
            staging_prefix=_require(env, "STAGING_PREFIX"),
            function_name=_require(env, "RECORDER_FUNCTION_NAME"),
            idle_seconds=_int(env, "RECORDING_IDLE_SECONDS", 20, minimum=1),
            expiration_days=_int(env, "RECORDING_EXPIRATION_DAYS", 365, minimum=1),
            handoff_margin_seconds=_int(env, "HANDOFF_MARGIN_SECONDS", None, minimum=1)
            if margin
            else None,
            checkpoint_interval_seconds=_int(env, "CHECKPOINT_INTERVAL_SECONDS", 60, minimum=1),
            max_pause_seconds=_int(env, "RECORDING_MAX_PAUSE_SECONDS", 3600, minimum=1),
            kvs_kms_key_arn=env.get("KVS_KMS_KEY_ARN", "").strip() or None,
        )


@dataclass(frozen=True, slots=True)
class ContactEventSettings:
    """Settings of the contact-events function (template.yaml sets every variable)."""

    table_name: str
    instance_arn: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ContactEventSettings:
        env = os.environ if environ is None else environ
        return cls(
            table_name=_require(env, "TABLE_NAME"),
            instance_arn=_require(env, "CONNECT_INSTANCE_ARN"),
        )
