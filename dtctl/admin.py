"""The admin front: how the CLI opens a hub and manages it as a whole.

Commands that work on instances go through :class:`dtctl.client.TaskHubClient`; the ones that create,
migrate, copy, inspect or set up a hub come here. Together they are the only ways the CLI reaches
:mod:`dtctl.hub` (beyond its records, in :mod:`dtctl.hub.base`), so which backend modules exist, and
where they live, stays the hub package's business (``tests/test_import_boundaries.py`` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dtctl.hub import DEFAULT_HUB, open_hub, redact, resolve_location
from dtctl.hub.base import TaskHub

__all__ = [
    "DEFAULT_HUB",
    "Migrated",
    "backup_hub",
    "hub_info",
    "init_hub",
    "is_postgres",
    "migrate_hub",
    "open_hub",
    "postgres_setup",
    "redact",
    "resolve_location",
]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True, slots=True)
class Migrated:
    version: int
    backup: Path | None  # the copy written before migrating (SQLite), None when nothing was written


def is_postgres(location: str) -> bool:
    """Whether a resolved hub location (see :func:`resolve_location`) names a PostgreSQL hub."""
    return location.startswith(_POSTGRES_SCHEMES)


def init_hub(location: str) -> None:
    """Create the hub if it is missing (idempotent)."""
    open_hub(location, create=True).close()


def migrate_hub(location: str) -> Migrated:
    """Bring the hub to this dtctl's schema (a SQLite hub is copied first)."""
    hub = open_hub(location, check_schema=False)
    try:
        backup = hub.migrate()
        return Migrated(hub.schema_version(), backup)
    finally:
        hub.close()


def backup_hub(location: str, target: Path) -> Path:
    """A consistent copy of the hub at ``target``; PostgreSQL hubs refuse (pg_dump makes theirs)."""
    hub = open_hub(location, check_schema=False)
    try:
        return hub.backup(target)
    finally:
        hub.close()


def open_for_inspection(location: str) -> TaskHub:
    """The hub opened even at another schema version, for ``dtctl doctor`` to say what is wrong."""
    return open_hub(location, check_schema=False)


def hub_info(location: str) -> dict[str, Any]:
    """What ``dtctl hub info`` shows: for PostgreSQL read without opening the hub (it may not exist)."""
    if is_postgres(location):
        from dtctl.hub.postgres import admin as postgres_admin
        from dtctl.hub.postgres import conn as postgres_conn

        return postgres_admin.hub_info(postgres_conn.parse_url(location))
    hub = open_hub(location)
    try:
        return {"hub": redact(location), "exists": True, "schema_version": hub.schema_version()}
    finally:
        hub.close()


def postgres_setup(location: str, role: str | None, password: str | None) -> dict[str, Any]:
    """A PostgreSQL hub's schema, channel and KEDA query; with ``role``, create or update that runtime
    role (DML and EXECUTE on the hub, nothing else) and report what it may do."""
    import psycopg

    from dtctl.hub.postgres import admin as postgres_admin
    from dtctl.hub.postgres import conn as postgres_conn

    where = postgres_conn.parse_url(location)
    result: dict[str, Any] = {
        "schema": where.schema,
        "schema_version": postgres_conn.latest_version(),
        "channel": where.channel,
        "scale_query": f"SELECT {where.schema}.scale_recommendation(8, 8)",
    }
    if role is None:
        return result
    conn = postgres_conn.connect(where, search_path=False)
    try:
        report = postgres_admin.ensure_runtime_role(conn, where.schema, role, password=password)
    except psycopg.Error as exc:
        raise postgres_conn.translate(exc, where) from exc
    finally:
        conn.close()
    result["role"] = report.as_dict()
    result["warnings"] = report.warnings()
    return result
