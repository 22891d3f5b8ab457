"""Personal data kept out of the logs: one Powertools formatter and one handler decorator.

Call recordings are personal data, and so are the contact's phone numbers, attributes and flow
parameters. Unless LOG_PERSONAL_DATA is true, every line a function writes is masked just before
it is serialized, whichever module logged it (library modules use `Logger(child=True)` and share
their function's handler, hence this formatter):

- values under known personal keys (`CustomerEndpoint`, `Attributes`, `Parameters`,
  `customer_phone_number`, ...) in messages, extra keys and appended keys;
- the same keys in text (`'parameters': {...}`, `"customer_phone_number":"..."`), such as the
  reprs and JSON an exception message may quote;
- phone-number-looking text (E.164 `+81312345678`, `+1 (555) 123-4567`, `03-1234-5678`);
- the invocation's own personal values, wherever they appear (exception messages, tracebacks):
  `masked_invocation` collects them from the event before the handler runs.

An exception that escapes the handler is masked in place too, since the Lambda runtime logs it
and X-Ray records its message. This module does not decide what is logged; it only masks.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from callrec.config import LogSettings

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.logging.types import LogRecord

MASK = "***"

# Connect's contact data and flow parameters, and the start record's fields that come from them.
PERSONAL_KEYS = frozenset(
    {
        "CustomerEndpoint",
        "SystemEndpoint",
        "Address",
        "Attributes",
        "SegmentAttributes",
        "Parameters",
        "parameters",
        "customer_phone_number",
        "phone_number",
    }
)
_KEY_TEXT = "|".join(sorted(PERSONAL_KEYS))
# `'parameters': {...}`, `parameters={...}`, `"customer_phone_number":"+81..."` inside text.
_KEYED_VALUE = re.compile(
    rf"""(?P<key>["']?\b(?:{_KEY_TEXT})\b["']?\s*[:=]\s*)"""
    r"""(?P<value>\{[^{}]*\}|'[^']*'|"[^"]*")"""
)
# E.164 and international numbers with separators: +81312345678, +1 (555) 123-4567.
_INTERNATIONAL = re.compile(r"(?<![\w+])\+\d(?:[ ().-]{0,2}\d){6,14}(?!\d)")
# National numbers with separators: 03-1234-5678, (555) 123-4567. Bare digit runs are left
# alone: they cannot be told from fragment numbers, timestamps and account ids.
_NATIONAL = re.compile(r"(?<![\w.+-])(?:\(\d{2,5}\)[ -]?|\d{2,5}-)\d{1,4}-\d{4}(?![\w-])")
# Shorter values (flags like "yes", "1") would mask unrelated text everywhere.
MIN_VALUE_LENGTH = 4


class Masker:
    """Masks personal data in a log record's values, and this invocation's personal values."""

    def __init__(self) -> None:
        self._values: re.Pattern[str] | None = None

    @contextmanager
    def known(self, values: Iterable[str]) -> Iterator[None]:
        """Mask these values (an invocation's phone numbers, attributes) inside the block."""
        kept = sorted({v for v in values if len(v) >= MIN_VALUE_LENGTH}, key=len, reverse=True)
        previous = self._values
        self._values = re.compile("|".join(map(re.escape, kept))) if kept else None
        try:
            yield
        finally:
            self._values = previous

    def text(self, value: str) -> str:
        """The text with personal values, keyed values and phone numbers masked."""
        if self._values is not None:
            value = self._values.sub(MASK, value)
        value = _KEYED_VALUE.sub(lambda m: f"{m['key']}{MASK}", value)
        value = _INTERNATIONAL.sub(MASK, value)
        return _NATIONAL.sub(MASK, value)

    def value(self, value: object) -> Any:
        """A JSON-ready copy of a log value with personal data masked."""
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {str(k): self._keyed(str(k), v, value) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v) for v in value]
        # Anything else would be logged as str(value) (Powertools' json_default): mask that.
        return self.text(str(value))

    def _keyed(self, key: str, value: object, parent: Mapping[Any, Any]) -> Any:
        if key in PERSONAL_KEYS and value not in (None, "", {}, []):
            return MASK
        if key == "data" and "partitionKey" in parent:  # a Kinesis record's start record
            return MASK
        return self.value(value)


class PersonalDataFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter, masking personal data unless `log_personal_data` is set."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.masker = Masker()
        self.log_personal_data = False  # masked until the function's settings say otherwise

    def serialize(self, log: LogRecord) -> str:
        if self.log_personal_data:
            return super().serialize(log)
        masked: LogRecord = self.masker.value(log)
        return super().serialize(masked)


def personal_values(event: object) -> set[str]:
    """Every string under a personal key of the event, start records in Kinesis data included."""
    found: set[str] = set()
    _collect(event, found, personal=False)
    return found


def _collect(value: object, found: set[str], *, personal: bool) -> None:
    if isinstance(value, str):
        if personal:
            found.add(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _collect(item, found, personal=personal or key in PERSONAL_KEYS)
        data = value.get("data")
        if "partitionKey" in value and isinstance(data, str):
            _collect(_decoded(data), found, personal=False)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, found, personal=personal)


def _decoded(data: str) -> object:
    try:
        return json.loads(base64.b64decode(data, validate=True))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None  # not a start record: its phone-like text is still masked by pattern


def formatter_of(logger: Logger) -> PersonalDataFormatter:
    """The function logger's formatter; fails loudly if the masking formatter is not installed."""
    formatter = logger.registered_formatter
    if not isinstance(formatter, PersonalDataFormatter):
        raise TypeError(
            f"logger {logger.name}: expected a PersonalDataFormatter, found "
            f"{type(formatter).__name__}: create it as Logger(logger_formatter=PersonalDataFormatter())"
        )
    return formatter


def scrub_exception(exc: BaseException, masker: Masker) -> None:
    """Mask an exception's messages in place: its own, its causes' and its batch children's."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.args = tuple(masker.text(a) if isinstance(a, str) else a for a in current.args)
        if isinstance(getattr(current, "msg", None), str):  # Powertools' BatchProcessingError
            current.msg = masker.text(current.msg)  # type: ignore[attr-defined]
        pending += [current.__cause__, current.__context__]
        pending += [info[1] for info in getattr(current, "child_exceptions", None) or ()]
        pending += list(getattr(current, "exceptions", None) or ())


P = ParamSpec("P")
R = TypeVar("R")
Handler = Callable[Concatenate[dict[str, Any], P], R]


def masked_invocation(
    logger: Logger, settings: Callable[[], LogSettings] = LogSettings.from_env
) -> Callable[[Handler[P, R]], Handler[P, R]]:
    """Decorate a handler inside the tracer, outside Logger.inject_lambda_context: the event's
    personal values are masked in every line the invocation logs (the logged event included).

    LOG_PERSONAL_DATA is read once, on the first invocation; until then, and whenever it is
    false, lines are masked. An exception the handler raises is masked in place before it
    reaches the tracer and the runtime.
    """

    def decorate(handler: Handler[P, R]) -> Handler[P, R]:
        read: list[LogSettings] = []

        @functools.wraps(handler)
        def wrapper(event: dict[str, Any], /, *args: P.args, **kwargs: P.kwargs) -> R:
            if not read:
                read.append(settings())
            formatter = formatter_of(logger)
            formatter.log_personal_data = read[0].log_personal_data
            with formatter.masker.known(personal_values(event)):
                try:
                    return handler(event, *args, **kwargs)
                except Exception as exc:
                    if not formatter.log_personal_data:
                        scrub_exception(exc, formatter.masker)
                    raise

        return wrapper

    return decorate
