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


def json_argument(text: str | None, *, what: str) -> Any:
    """``--input``: JSON text, ``@path/to/file.json`` or ``-`` for standard input."""
    if text is None:
        return None
    source = what
    if text == "-":
        text = sys.stdin.read()
        source = f"{what} (from standard input)"
    elif text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read {what} file {str(path)!r}: {exc.strerror or exc}") from None
        source = f"{what} file {str(path)!r}"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            hint="quote strings as JSON: --input '\"Tokyo\"'",
        ) from None


def duration(text: str, *, what: str) -> timedelta:
    """``90``, ``1.5s``, ``10m``, ``2h``, ``30d``, ``250ms``."""
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"{what} {text!r} is not a duration such as 30s, 10m, 2h or 30d")
    value, unit = match.groups()
    return timedelta(seconds=float(value) * _UNITS[unit])


def point_in_time(text: str, *, what: str, now: datetime) -> datetime:
    """An ISO-8601 time (naive means local time) or a delay from ``now`` (``10m``)."""
    if _DURATION.match(text):
        return now + duration(text, what=what)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{what} {text!r} is neither an ISO time (2026-01-31T09:00) nor a delay (10m)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a naive time on the command line means the user's local time
    return moment.astimezone(UTC)


def past_point(text: str, *, what: str, now: datetime) -> datetime:
    """An ISO time, or an age (``30d`` means 30 days before ``now``)."""
    if _DURATION.match(text):
        return now - duration(text, what=what)
    return point_in_time(text, what=what, now=now)
