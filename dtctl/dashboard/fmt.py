"""Formatting for the pages: times, durations, pretty JSON payloads (truncated), failures.

Pure functions; the templates use them as filters. Times are epoch microseconds UTC (the hub's).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from dtctl.core.failure import FailureDetails

US = 1_000_000
PAYLOAD_PREVIEW = 600  # characters of a pretty payload shown before "expand"


def iso(us: int | None) -> str:
    if us is None:
        return ""
    return datetime.fromtimestamp(us / US, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def clock(us: int | None) -> str:
    """``2025-01-31 12:34:56.789`` (UTC), the form shown in tables."""
    if us is None:
        return ""
    return datetime.fromtimestamp(us / US, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def duration(us: int | None) -> str:
    if us is None:
        return ""
    seconds = max(0, us) / US
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.001 else f"{max(0, us)} µs"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    return f"{hours // 24}d {hours % 24}h"


def age(us: int | None, now: int) -> str:
    return "" if us is None else duration(now - us) + (" ago" if now >= us else " from now")


def ms(us: int | None) -> float | None:
    return None if us is None else round(us / 1000, 3)


def pretty_json(encoded: str | None) -> str | None:
    """A stored payload (JSON text) indented for reading; text that is not JSON is shown as it is."""
    if encoded is None:
        return None
    try:
        return json.dumps(json.loads(encoded), indent=2, ensure_ascii=False, sort_keys=False)
    except ValueError:
        return encoded


def payload_view(encoded: str | None, limit: int = PAYLOAD_PREVIEW) -> dict[str, Any] | None:
    """``{"preview", "full", "truncated", "size"}`` for a payload block with an expand control."""
    text = pretty_json(encoded)
    if text is None:
        return None
    truncated = len(text) > limit
    return {
        "preview": text[:limit] + ("\n…" if truncated else ""),
        "full": text,
        "truncated": truncated,
        "size": len(encoded or ""),
    }


def short(text: str | None, limit: int = 80) -> str:
    if text is None:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def failure_view(failure: FailureDetails | None) -> dict[str, Any] | None:
    if failure is None:
        return None
    return {
        "error_type": failure.error_type,
        "message": failure.message,
        "stack_trace": failure.stack_trace,
    }


def rate(count: int, window_seconds: float) -> float:
    return round(count / window_seconds, 2) if window_seconds > 0 else 0.0
