"""Turning command-line text into values: JSON payloads, durations, times. Errors are UsageErrors."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dtctl.errors import UsageError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def checked_text(value: str, *, what: str) -> str:
    """Refuse text no hub can store: NUL characters, or bytes that were not UTF-8 on the command line."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"{what} {value!r} is not valid UTF-8 text") from None
    if "\x00" in value:
        raise UsageError(f"{what} must not contain NUL characters")
    return value


def instance_id(value: str) -> str:
    """typer callback for ID arguments."""
    return checked_text(value, what="the instance id")


def name(value: str) -> str:
    """typer callback for NAME arguments (orchestrator and event names)."""
    return checked_text(value, what="the name")


def optional_text(value: str | None) -> str | None:
    """typer callback for free-text options (``--reason``, ``--id``, ``--prefix``)."""
    return None if value is None else checked_text(value, what="the value")


def _no_constants(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


def json_argument(text: str | None, *, what: str) -> Any:
    """``--input``: JSON text, ``@path/to/file.json`` or ``-`` for standard input."""
    if text is None:
        return None
    text, source = _json_source(text, what)
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            hint="quote strings as JSON: --input '\"Tokyo\"'",
        ) from None
    except ValueError as exc:  # NaN, Infinity
        raise UsageError(f"{source} is not valid JSON: {exc}") from None
    except RecursionError:
        raise UsageError(f"{source} is nested too deeply") from None
    _check_storable(value, source)
    return value


def _json_source(text: str, what: str) -> tuple[str, str]:
    """The JSON text behind ``-`` (standard input) or ``@file``, and how to name it in errors."""
    if text == "-":
        return sys.stdin.read(), f"{what} (from standard input)"
    if not text.startswith("@"):
        return text, what
    path = Path(text[1:])
    try:
        return path.read_text(encoding="utf-8"), f"{what} file {str(path)!r}"
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, or a NUL in the path
        reason = getattr(exc, "strerror", None) or exc
        raise UsageError(f"cannot read {what} file {str(path)!r}: {reason}") from None


def _check_storable(value: Any, source: str) -> None:
    """Parsed JSON that cannot be stored again as JSON text (lone surrogates, infinite numbers)."""
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except ValueError as exc:
        if isinstance(exc, UnicodeEncodeError):
            raise UsageError(f"{source} holds a lone surrogate escape (\\udXXX), which is not text") from None
        raise UsageError(f"{source} holds a number too large for JSON (it would be infinite)") from None
    except RecursionError:
        raise UsageError(f"{source} is nested too deeply") from None


def duration(text: str, *, what: str) -> timedelta:
    """``90``, ``1.5s``, ``10m``, ``2h``, ``30d``, ``250ms``."""
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"{what} {text!r} is not a duration such as 30s, 10m, 2h or 30d")
    value, unit = match.groups()
    try:
        return timedelta(seconds=float(value) * _UNITS[unit])
    except OverflowError:
        raise UsageError(f"{what} {text!r} is too long a duration") from None


def point_in_time(text: str, *, what: str, now: datetime) -> datetime:
    """An ISO-8601 time (naive means local time) or a delay from ``now`` (``10m``)."""
    try:
        if _DURATION.match(text):
            return now + duration(text, what=what)
        moment = datetime.fromisoformat(text.strip())
        if moment.tzinfo is None:
            moment = moment.astimezone()  # a naive time on the command line means the user's local time
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise UsageError(
            f"{what} {text!r} is neither an ISO time (2026-01-31T09:00) nor a delay (10m)"
        ) from None


def past_point(text: str, *, what: str, now: datetime) -> datetime:
    """An ISO time, or an age (``30d`` means 30 days before ``now``)."""
    if _DURATION.match(text):
        try:
            return now - duration(text, what=what)
        except OverflowError:
            raise UsageError(f"{what} {text!r} reaches back before year 1") from None
    return point_in_time(text, what=what, now=now)


def micros(moment: datetime) -> int:
    """Epoch microseconds UTC, as the hub stores times."""
    return int(moment.timestamp() * 1_000_000)
