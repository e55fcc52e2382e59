"""The PostgreSQL hub's edge: URLs (and their redaction), connecting, error translation, migrations.

A hub URL is ``postgresql://user:password@host:port/database?hub=NAME``: the ``hub`` parameter names
the hub (default ``default``) and is removed before libpq sees the URL; the hub lives in its own schema
``dtctl_<NAME>``. The password never leaves this module except inside the DSN handed to libpq: every
URL shown to people (``hub.url``, reprs, error messages, logs) is the redacted form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors

from dtctl.errors import (
    DtctlError,
    HubBusy,
    HubDiskFull,
    HubError,
    HubNotFound,
    HubUnsafe,
    SchemaVersionMismatch,
    UsageError,
)
from dtctl.hub.sql.migrations import Migration as Migration
from dtctl.hub.sql.migrations import check_version_range, load_migrations

DEFAULT_HUB_NAME = "default"
SCHEMA_PREFIX = "dtctl_"
REDACTED = "***"
# Lower-case letters, digits and underscores: the schema name needs no quoting anywhere, and a hub
# name is the same in a URL, a schema, a NOTIFY channel and a role name.
_HUB_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,56}$")
SCHEMA_PLACEHOLDER = "__SCHEMA__"
# How long a statement may wait for a row lock before the hub reports itself busy.
LOCK_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_S = 10

# SQLSTATE classes of errors after which the server rolled the whole transaction back: running the
# same transaction again is exactly like running it once.
RETRY_TRANSACTION = frozenset({"40001", "40P01"})
# The connection is gone or going (lost, admin shutdown, crash, failover in progress).
CONNECTION_STATES = frozenset({"57P01", "57P02", "57P03", "08000", "08003", "08006", "08001", "08004"})


# --- URLs ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HubLocation:
    """Where a PostgreSQL hub lives. ``dsn`` holds the password: never show it; show ``url``."""

    dsn: str  # for libpq: the URL without the hub parameter
    url: str  # for people: the URL with the password replaced by ***
    hub: str
    schema: str
    password: str | None

    @property
    def channel(self) -> str:
        """The LISTEN/NOTIFY channel of this hub (its schema name)."""
        return self.schema

    def __repr__(self) -> str:
        return f"HubLocation(url={self.url!r}, schema={self.schema!r})"

    def scrub(self, text: str) -> str:
        """``text`` with the password (and any DSN that carries it) replaced."""
        if self.password:
            text = text.replace(self.dsn, self.url).replace(self.password, REDACTED)
            encoded = quote(self.password, safe="")
            if encoded != self.password:
                text = text.replace(encoded, REDACTED)
        return text


def validate_hub_name(name: str) -> str:
    if not _HUB_NAME.match(name):
        raise UsageError(
            f"invalid hub name {name!r}",
            hint="use 1-57 lower-case letters, digits and underscores, starting with a letter or digit",
        )
    return name


def parse_url(text: str) -> HubLocation:
    """Split a ``postgresql://…?hub=NAME`` URL into what libpq needs and what people may see."""
    try:
        parts = urlsplit(text)
        password = parts.password
        _ = parts.port  # a malformed port raises here, before anything connects
    except ValueError as exc:
        raise UsageError(f"malformed PostgreSQL URL: {redact_url(text)} ({exc})") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise UsageError(f"not a PostgreSQL URL: {redact_url(text)}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    hubs = [value for key, value in query if key == "hub"]
    if len(hubs) > 1:
        raise UsageError(f"the URL names the hub more than once: {redact_url(text)}")
    hub = validate_hub_name(hubs[0] if hubs else DEFAULT_HUB_NAME)
    rest = urlencode([(k, v) for k, v in query if k != "hub"])
    dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment))
    return HubLocation(
        dsn=dsn,
        url=redact_url(text),
        hub=hub,
        schema=SCHEMA_PREFIX + hub,
        password=None if password is None else unquote(password),
    )


def redact_url(text: str) -> str:
    """The URL with its password (in the user-info part or a ``password=`` parameter) replaced."""
    try:
        parts = urlsplit(text)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":" + REDACTED
            netloc = f"{userinfo}@{hostport}"
        query = [
            (k, REDACTED if k.lower() in ("password", "sslpassword") else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
        return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*"), parts.fragment))
    except ValueError:
        return "postgresql://(unparsable URL hidden)"


# --- connecting -------------------------------------------------------------------------------------------


def connect_raw(location: HubLocation, *, search_path: bool = True) -> psycopg.Connection[tuple[Any, ...]]:
    """A new autocommit connection whose ``search_path`` is the hub's schema (no extra round trip).

    Driver errors are left to the caller (who may retry); :func:`connect` translates them.
    """
    options = f"-c lock_timeout={LOCK_TIMEOUT_MS}"
    if search_path:
        options += f" -c search_path={location.schema}"
    return psycopg.connect(
        location.dsn,
        autocommit=True,
        connect_timeout=CONNECT_TIMEOUT_S,
        application_name="dtctl",
        options=options,
        keepalives=1,
        keepalives_idle=30,
        keepalives_interval=10,
        keepalives_count=3,
    )


def connect(location: HubLocation, *, search_path: bool = True) -> psycopg.Connection[tuple[Any, ...]]:
    try:
        return connect_raw(location, search_path=search_path)
    except psycopg.Error as exc:
        raise translate(exc, location) from None


# --- errors ------------------------------------------------------------------------------------------


def sqlstate(exc: BaseException) -> str | None:
    return getattr(exc, "sqlstate", None)


def is_retryable_transaction(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.Error) and sqlstate(exc) in RETRY_TRANSACTION


def is_connection_error(exc: BaseException, conn: psycopg.Connection[Any] | None) -> bool:
    if not isinstance(exc, psycopg.Error):
        return False
    if sqlstate(exc) in CONNECTION_STATES:
        return True
    if conn is not None and (conn.closed or conn.broken):
        return True
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) and sqlstate(exc) is None


def translate(exc: psycopg.Error, location: HubLocation) -> DtctlError:
    """The dtctl error for a driver error; its text never carries the password."""
    where = location.url
    state = sqlstate(exc)
    detail = location.scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    if state in RETRY_TRANSACTION:
        return HubBusy(
            f"hub {where}: the transaction was rolled back by a conflict ({detail})",
            hint="retry; the work item is given back and nothing was written",
        )
    if state == "55P03" or isinstance(exc, pg_errors.QueryCanceled):
        return HubBusy(f"hub {where} stayed locked past the lock timeout ({detail})", hint="retry")
    if state == "53100":  # disk_full: nothing of the transaction was kept
        return HubDiskFull(f"hub {where}: the server is out of space ({detail})")
    if state in ("28P01", "28000"):
        return HubError(f"cannot log in to hub {where} ({detail})", hint="check the user and password")
    if state == "3D000":
        return HubNotFound(f"no database for hub {where} ({detail})")
    if state == "42501":
        return HubUnsafe(
            f"hub {where}: permission denied ({detail})",
            hint="the role needs the grants of `dtctl hub init --role`",
        )
    if state in ("42P01", "3F000"):
        return HubNotFound(f"no hub in {where} ({detail})", hint="create it with `dtctl init`")
    if state in CONNECTION_STATES or isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return HubBusy(
            f"lost or refused connection to hub {where} ({detail})",
            hint="retry when the server is reachable; nothing half-written was kept",
        )
    return HubError(f"hub {where}: {detail}")


# --- schema versions and migrations ------------------------------------------------------------------


MIGRATIONS: list[Migration] = load_migrations("postgres")


def latest_version() -> int:
    return MIGRATIONS[-1].version if MIGRATIONS else 0


def schema_version(conn: psycopg.Connection[Any], schema: str) -> int | None:
    """The hub's schema version; None when the schema has no hub (no versions table)."""
    row = conn.execute("SELECT to_regclass(%s)", (f"{schema}.versions",)).fetchone()
    if row is None or row[0] is None:
        return None
    found = conn.execute(f'SELECT max(version) FROM "{schema}".versions').fetchone()
    return int(found[0]) if found and found[0] is not None else 0


def check_version(version: int | None, where: str, *, create: bool, check_schema: bool) -> None:
    latest = latest_version()
    if version is None:
        if not create:
            raise HubNotFound(f"no hub at {where}")
        return
    check_version_range(
        version,
        latest,
        where,
        check_schema=check_schema,
        migrate_hint="run `dtctl hub migrate` (take a pg_dump of the schema first)",
    )


def apply_migrations(conn: psycopg.Connection[Any], schema: str, now_us: int) -> int:
    """Create the schema and bring it to the latest version in one transaction; returns the version.

    A transaction-scoped advisory lock on the schema name serialises concurrent ``create``/``migrate``
    calls, so each migration is applied exactly once; PostgreSQL's transactional DDL makes a failed
    migration leave nothing behind.
    """
    quoted = f'"{schema}"'
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (schema,))
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {quoted}.versions ("
            "version int PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)"
        )
        current = schema_version(conn, schema) or 0
        if current > latest_version():
            raise SchemaVersionMismatch(
                f"schema {schema} has version {current}, newer than this dtctl understands"
            )
        for migration in MIGRATIONS:
            if migration.version <= current:
                continue
            conn.execute(migration.sql.replace(SCHEMA_PLACEHOLDER, quoted).encode("utf-8"))
            conn.execute(
                f"INSERT INTO {quoted}.versions (version, name, applied_at) VALUES (%s, %s, %s)",
                (migration.version, migration.name, now_us),
            )
            current = migration.version
    return current


def is_unique_violation(exc: BaseException) -> bool:
    return isinstance(exc, pg_errors.UniqueViolation)


def constraint_of(exc: BaseException) -> str | None:
    diag = getattr(exc, "diag", None)
    return None if diag is None else diag.constraint_name
