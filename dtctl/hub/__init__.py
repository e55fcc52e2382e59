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
    """Open the hub at a file path (or ``sqlite:///path``), or a ``postgresql://…?hub=NAME`` URL.

    ``@FILE`` reads the path or URL from a file, so a URL with a password never shows in ``ps``.
    ``create`` makes a new hub if missing.
    """
    text = resolve_location(str(url_or_path))
    if text.startswith(_POSTGRES_SCHEMES):
        # A PostgreSQL hub judges time by the server's clock; ``clock`` replaces it for tests only.
        try:
            from dtctl.hub.postgres import PostgresTaskHub  # psycopg is only imported for such a hub
        except ImportError as exc:
            raise UsageError(
                f"a PostgreSQL hub needs psycopg ({exc})", hint="pip install 'dtctl[postgres]'"
            ) from None

        return PostgresTaskHub(text, create=create, clock=clock, check_schema=check_schema)
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


def resolve_location(text: str) -> str:
    """``@FILE`` -> the hub path or URL written in FILE (first non-empty line); anything else as is."""
    if not text.startswith("@"):
        return text
    path = Path(text[1:]).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read the hub location from {path}: {exc.strerror or exc}") from None
    found = next((line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")), "")
    if not found:
        raise UsageError(f"{path} holds no hub path or URL")
    return found


def redact(location: str | Path) -> str:
    """A hub location safe to show: a PostgreSQL URL loses its password; a path is unchanged."""
    text = str(location)
    if text.startswith(_POSTGRES_SCHEMES):
        from dtctl.hub.postgres.conn import redact_url

        return redact_url(text)
    return text
