"""The PostgreSQL hub's answers to operators' questions (:class:`~dtctl.hub.base.HubInspector`), its work log.

The statements and the turning of rows into records are the SQLite hub's
(:mod:`dtctl.hub.sql.inspect`), spelled for psycopg. Each answer is read in one ``REPEATABLE READ
READ ONLY`` transaction, so every statement of a snapshot sees the same committed state (it takes no
row locks and never blocks a worker); "now" is the server's clock (or the hub object's injected
clock), read once inside that transaction.

The work log is written by :class:`~dtctl.hub.postgres.PostgresTaskHub` inside the transactions that
commit activity results and episodes (:meth:`PostgresInspector._log_work`); a writer prunes rows past
the retention every couple of seconds, skipping rows another writer is pruning.

The storage checks are the server's: its version, the schema version, durability settings, what the
connected role may do in the hub's schema, and the connection itself (never showing its password).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

import psycopg

from dtctl.hub.base import (
    DEFAULT_MAX_DEQUEUE,
    LARGE_HISTORY_EVENTS,
    Finding,
    HubSnapshot,
    LeaseHolder,
    NameBacklog,
    StuckWork,
)
from dtctl.hub.postgres import conn as pgc
from dtctl.hub.postgres import queries as q
from dtctl.hub.postgres.parts import PostgresHubParts
from dtctl.hub.sql.inspect import (
    PRUNE_EVERY_US,
    RETENTION_US,
    Fetch,
    WorkLogRow,
    pyformat,
    read_backlog,
    read_clock_findings,
    read_leases,
    read_snapshot,
    read_stuck_work,
    schema_version_finding,
)
from dtctl.hub.sql.records import first_from_row, scale_from_row

T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]
# PostgreSQL 13: gen_random_uuid() without an extension (lease tokens).
MIN_SERVER_VERSION = 130000
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", ""})


class ServerFacts(NamedTuple):
    """A row of ``SERVER_FACTS``: what doctor reports of the server and the connected role."""

    version_num: int
    version: str
    fsync: str
    synchronous_commit: str
    full_page_writes: str
    data_checksums: str
    user: str
    database: str
    create_in_schema: bool
    create_in_database: bool
    ssl: bool | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> ServerFacts:
        return cls(
            int(row[0]),
            str(row[1]),
            str(row[2]),
            str(row[3]),
            str(row[4]),
            str(row[5]),
            str(row[6]),
            str(row[7]),
            bool(row[8]),
            bool(row[9]),
            row[10],
        )


def _fetcher(conn: Conn) -> Fetch:
    # Leases are judged by the server's clock, like everything else: :lease_now is :now here.
    return lambda sql, params: conn.execute(
        pyformat(sql), {"lease_now": params.get("now"), **params}
    ).fetchall()


class PostgresInspector(PostgresHubParts):
    """:class:`~dtctl.hub.base.HubInspector` for :class:`~dtctl.hub.postgres.PostgresTaskHub` (mixed in),
    plus the hub's work log writer."""

    schema: str
    url: str
    _location: pgc.HubLocation
    _durable_commit: str
    _next_log_prune: int = 0

    # --- writing the log (inside the caller's write transaction) ----------------------------------

    def _log_work(self, conn: Conn, now: int, rows: Sequence[WorkLogRow]) -> None:
        if rows:
            conn.execute(q.LOG_WORK, [list(column) for column in zip(*rows, strict=True)])
        if now >= self._next_log_prune:
            self._next_log_prune = now + PRUNE_EVERY_US
            conn.execute(q.PRUNE_WORK_LOG, (now - RETENTION_US,))

    # --- reads -------------------------------------------------------------------------------------

    def _inspect(self, work: Callable[[Conn, int], T]) -> T:
        """``work(conn, now)`` in one read-only snapshot transaction (retried when the connection drops)."""

        def run(conn: Conn) -> T:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                return work(conn, self._now_in(conn))

        return self._run(run, idempotent=True)

    def hub_snapshot(self, window_seconds: float = 60.0) -> HubSnapshot:
        def work(conn: Conn, now: int) -> HubSnapshot:
            row = conn.execute(q.SCALE_INPUTS, (now,)).fetchone()
            assert row is not None
            return read_snapshot(_fetcher(conn), now, window_seconds, scale_from_row(row))

        return self._inspect(work)

    def backlog_by_name(self) -> list[NameBacklog]:
        return self._inspect(lambda conn, now: read_backlog(_fetcher(conn), now))

    def lease_holders(self) -> list[LeaseHolder]:
        return self._inspect(lambda conn, now: read_leases(_fetcher(conn), now))

    def stuck_work(
        self,
        *,
        max_dequeue: int = DEFAULT_MAX_DEQUEUE,
        history_threshold: int = LARGE_HISTORY_EVENTS,
        limit: int = 20,
    ) -> StuckWork:
        return self._inspect(
            lambda conn, now: read_stuck_work(
                _fetcher(conn), now, max_dequeue=max_dequeue, history_threshold=history_threshold, limit=limit
            )
        )

    def storage_findings(self, *, full: bool = False) -> list[Finding]:
        """Server version, schema version, durability, the connected role's rights, the connection.

        ``full`` changes nothing: PostgreSQL checks its own pages (with data checksums) as it reads them.
        """

        def work(conn: Conn, now: int) -> list[Finding]:
            version = pgc.schema_version(conn, self.schema) or 0
            clock = read_clock_findings(_fetcher(conn), now, now) if version else []
            row = conn.execute(q.SERVER_FACTS, {"schema": self.schema}).fetchone()
            assert row is not None
            facts = ServerFacts.from_row(row)
            missing = [first_from_row(r) for r in conn.execute(q.TABLES_WITHOUT_DML, {"schema": self.schema})]
            return [
                schema_version_finding(
                    version,
                    pgc.latest_version(),
                    migrate_hint="take a pg_dump of the schema, then run `dtctl hub migrate` "
                    "as the role that owns the hub",
                ),
                check_server_version(facts.version_num, facts.version),
                check_durability(
                    fsync=facts.fsync,
                    synchronous_commit=self._durable_commit or facts.synchronous_commit,
                    full_page_writes=facts.full_page_writes,
                    checksums=facts.data_checksums,
                ),
                check_privileges(
                    facts.user,
                    self.schema,
                    facts.database,
                    facts.create_in_schema,
                    facts.create_in_database,
                    missing,
                ),
                check_connection(self._location, facts.user, facts.database, conn.info.host, facts.ssl),
                *clock,
            ]

        return self._inspect(work)


# --- storage checks: each a small function returning one Finding ---------------------------------------


def check_server_version(number: int, text: str) -> Finding:
    if number < MIN_SERVER_VERSION:
        return Finding(
            check="server-version",
            severity="problem",
            message=f"PostgreSQL {text} is older than dtctl needs ({MIN_SERVER_VERSION // 10000})",
            hint="upgrade the server",
        )
    return Finding(check="server-version", severity="ok", message=f"PostgreSQL {text}")


def check_durability(
    *, fsync: str, synchronous_commit: str, full_page_writes: str, checksums: str
) -> Finding:
    if fsync != "on" or full_page_writes != "on":
        off = [
            name
            for name, value in (("fsync", fsync), ("full_page_writes", full_page_writes))
            if value != "on"
        ]
        return Finding(
            check="durability",
            severity="problem",
            message=f"{' and '.join(off)} off: a server crash or power loss can corrupt the database",
            hint="turn them on in postgresql.conf (they are only safe off for throw-away data)",
        )
    if synchronous_commit == "off":
        return Finding(
            check="durability",
            severity="warning",
            message="synchronous_commit=off: the last commits (checkpoints, activity results) may be "
            "lost on a server crash; lost work runs again, but side effects may repeat",
            hint="use synchronous_commit=on (dtctl already relaxes it for leases and heartbeats)",
        )
    return Finding(
        check="durability",
        severity="ok",
        message=f"fsync on, synchronous_commit={synchronous_commit}, data checksums {checksums}",
    )


def check_privileges(
    user: str,
    schema: str,
    database: str,
    create_in_schema: bool,
    create_in_database: bool,
    missing: list[str],
) -> Finding:
    if missing:
        return Finding(
            check="privileges",
            severity="problem",
            message=f"role {user} cannot read and write hub tables: {', '.join(missing)}",
            hint="run `dtctl hub init --role ROLE` again as the hub's owner (it grants every table)",
        )
    can = []
    if create_in_schema:
        can.append(f"create objects in schema {schema}")
    if create_in_database:
        can.append(f"create schemas in database {database}")
    if can:
        return Finding(
            check="privileges",
            severity="warning",
            message=f"role {user} can {' and '.join(can)}: more than workers and clients need",
            hint="give workers and clients a runtime role (`dtctl hub init --role ROLE`); keep this one for "
            "`dtctl hub migrate`",
        )
    return Finding(check="privileges", severity="ok", message=f"role {user} has the runtime grants only")


def check_connection(
    location: pgc.HubLocation, user: str, database: str, host: str | None, ssl: bool | None
) -> Finding:
    """Where the hub connection goes; the message shows the redacted URL only, never the password."""
    where = location.scrub(f"{location.url} (role {user}, database {database})")
    local = host is None or host.startswith("/") or host in _LOCAL_HOSTS
    if not ssl and not local:
        return Finding(
            check="connection",
            severity="warning",
            message=f"unencrypted connection to {where}: payloads and the password cross the network "
            "in clear",
            hint="add sslmode=require (or verify-full) to the hub URL",
        )
    return Finding(
        check="connection",
        severity="ok",
        message=f"connected to {where}{', TLS' if ssl else ''}",
    )
