"""Task hub storage: :func:`open_hub` picks the backend for a path or URL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dtctl.errors import UsageError

if TYPE_CHECKING:
    from dtctl.hub.base import TaskHub

DEFAULT_HUB = "taskhub.db"
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_SQLITE_SCHEME = "sqlite://"


def open_hub(
    url_or_path: str | Path,
    *,
    create: bool = False,
    synchronous: str = "full",
    allow_network_fs: bool = False,
    clock: Callable[[], int] | None = None,
    busy_timeout: float | None = None,
    check_schema: bool = True,
) -> TaskHub:
    """Open the hub at a file path (or ``sqlite:///path``); ``create`` makes a new one if missing."""
    text = str(url_or_path)
    if text.startswith(_POSTGRES_SCHEMES):
        raise UsageError(
            "the PostgreSQL hub is not available in this version of dtctl yet",
            hint="use a SQLite hub file (--hub ./taskhub.db)",
        )
    if text.startswith(_SQLITE_SCHEME):
        text = text[len(_SQLITE_SCHEME) :]  # sqlite:///abs/path -> /abs/path, sqlite://rel -> rel
    elif "://" in text:
        raise UsageError(f"unknown hub URL scheme in {text!r}; give a file path or postgresql://…")
    if not text:
        raise UsageError("the hub path is empty")

    from dtctl.hub.sqlite import SqliteTaskHub  # sqlite3 is only imported when a hub is opened

    extra = {} if busy_timeout is None else {"busy_timeout": busy_timeout}
    return SqliteTaskHub(
        text,
        create=create,
        synchronous=synchronous,
        allow_network_fs=allow_network_fs,
        clock=clock,
        check_schema=check_schema,
        **extra,
    )
