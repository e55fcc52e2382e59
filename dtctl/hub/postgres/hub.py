"""The scale-out task hub: one schema of a PostgreSQL database.

Workers on any number of hosts share the hub. They lease work with ``FOR UPDATE SKIP LOCKED`` (a row
another worker is leasing is passed over, never waited for) and fence every commit with the lease token
they were handed, exactly like the SQLite hub.

Time: leases, timers and every "now" are judged by the *server's* clock, never the worker's. Tests
inject a clock (``clock=``); it replaces the server clock in every statement of that hub object only
(statements take ``COALESCE(<injected>, <server clock>)``), so the conformance suite can step time.

Transactions and errors: one autocommit connection per hub object; each write is one explicit
transaction (a single statement where one suffices). A serialization failure or deadlock means the
server rolled the whole transaction back, so it is run again (a few times, with jitter). A lost
connection is retried for reads and idempotent writes; any other write is rolled back and reported as
:class:`HubBusy` (the worker gives the work item back), never half-written. The next call reconnects.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from dtctl.core.decision import Decision
from dtctl.core.history import (
    HistoryEvent,
    encode_event,
)
from dtctl.errors import HubError, UsageError
from dtctl.faults import fault_point
from dtctl.hub.base import (
    NO_BOUNDS,
    ActivityResult,
    ActivityWorkItem,
    CheckpointResult,
    OrchestrationWorkItem,
    TraceRecord,
    VersionBounds,
    WorkerInfo,
)
from dtctl.hub.postgres import conn as pgc
from dtctl.hub.postgres import queries as q
from dtctl.hub.postgres import rows as rows_mod
from dtctl.hub.postgres.checkpoint import checkpoint_batch
from dtctl.hub.postgres.entities import PostgresEntities
from dtctl.hub.postgres.inspect import PostgresInspector
from dtctl.hub.postgres.instances import PostgresInstances
from dtctl.hub.sql.inspect import activity_log_row, committed_episode_rows
from dtctl.hub.sql.instances import LOST_WORKER_RETENTION_MICROS
from dtctl.hub.sql.records import (
    activity_from_row,
    first_from_row,
    history_event_from_row,
    trace_record_from_row,
    worker_from_row,
    worker_params,
)
from dtctl.hub.wakeup import WakeSource

T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]
Clock = Callable[[], int]

ABANDON_BACKOFF_US = 1_000_000
MAX_ABANDON_BACKOFF_US = 30_000_000
MAX_ATTEMPTS = 6  # of a transaction the server rolled back, or of a read whose connection was lost


class PostgresTaskHub(PostgresInspector, PostgresEntities, PostgresInstances):
    """A task hub in the schema ``dtctl_<hub>`` of a PostgreSQL database; one thread at a time."""

    def __init__(
        self, url: str, *, create: bool = False, clock: Clock | None = None, check_schema: bool = True
    ) -> None:
        self._location = pgc.parse_url(url)
        self.url = self._location.url
        self.hub_name = self._location.hub
        self.schema = self._location.schema
        self._clock = clock
        self._conn: Conn | None = None
        self._durable_commit = "on"  # the server's synchronous_commit, for the writes that matter
        self._batch_faults: list[str] | None = None  # set while a batch() transaction is open
        self._batch_durable = True
        self._closed = False
        version = self._run(lambda conn: pgc.schema_version(conn, self.schema), idempotent=True)
        pgc.check_version(version, self.url, create=create, check_schema=check_schema)
        if version is None:
            self.create()

    def __repr__(self) -> str:
        return f"PostgresTaskHub({self.url!r})"

    # --- connections, transactions and the error edge ---------------------------------------------

    def _connection(self) -> Conn:
        if self._closed:
            raise HubError(f"hub {self.url} is closed")
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                conn.close()
            conn = pgc.connect_raw(self._location)
            # Leases, renewals and heartbeats commit asynchronously (no WAL flush of their own): every
            # write that matters is fenced by the lease token and commits durably, which flushes the
            # WAL before it, so a lease lost in a server crash only means the work runs again.
            row = conn.execute("SHOW synchronous_commit").fetchone()
            self._durable_commit = str(row[0]) if row else "on"
            if self._durable_commit != "off":
                conn.execute("SET synchronous_commit = off")
            self._conn = conn
        return conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _run(
        self,
        work: Callable[[Conn], T],
        *,
        transaction: bool = False,
        idempotent: bool = False,
        fault: str | None = None,
        durable: bool = False,
    ) -> T:
        """Run ``work`` (in one transaction when asked) with the retry rules of the module docstring.

        Inside :meth:`batch` it joins the batch's transaction instead (no retry: the batch is the unit),
        and its fault points fire at the batch's commit.
        """
        if self._batch_faults is not None:
            return self._in_batch(work, fault=fault, durable=durable)
        attempt = 0
        while True:
            attempt += 1
            conn: Conn | None = None
            try:
                conn = self._connection()
                if transaction:
                    with conn.transaction():
                        if durable and self._durable_commit != "off":
                            conn.execute(
                                "SELECT set_config('synchronous_commit', %s, true)", (self._durable_commit,)
                            )
                        result = work(conn)
                        if fault:
                            fault_point(f"{fault}.before_commit")
                else:
                    result = work(conn)
                break
            except psycopg.Error as exc:
                lost = pgc.is_connection_error(exc, conn)
                if lost:
                    self._drop_connection()
                retry = pgc.is_retryable_transaction(exc) or (lost and idempotent)
                if not retry or attempt >= MAX_ATTEMPTS:
                    raise pgc.translate(exc, self._location) from exc
                time.sleep(min(2.0, 0.02 * 2**attempt) * (0.5 + random.random()))
        if fault:
            fault_point(f"{fault}.after_commit")
        return result

    def _in_batch(self, work: Callable[[Conn], T], *, fault: str | None, durable: bool) -> T:
        faults = self._batch_faults
        assert faults is not None
        if durable and not self._batch_durable:
            raise RuntimeError("a durable write cannot join a batch(durable=False)")
        if fault and fault not in faults:
            faults.append(fault)
        conn = self._conn
        assert conn is not None
        try:
            return work(conn)
        except psycopg.Error as exc:
            raise pgc.translate(exc, self._location) from exc

    @contextmanager
    def batch(self, *, durable: bool = True) -> Iterator[None]:
        """Group commit: the worker operations inside share one transaction (TaskHub.batch).

        ``durable=False`` (a block that only leases) commits without waiting for the WAL flush.
        """
        if self._batch_faults is not None:
            if durable and not self._batch_durable:
                raise RuntimeError("a durable batch cannot join a batch(durable=False)")
            yield  # nested: part of the open batch
            return
        faults: list[str] = []
        conn: Conn | None = None
        try:
            conn = self._connection()
            with conn.transaction():
                if durable and self._durable_commit != "off":
                    conn.execute("SELECT set_config('synchronous_commit', %s, true)", (self._durable_commit,))
                self._batch_faults, self._batch_durable = faults, durable
                try:
                    yield
                finally:
                    self._batch_faults = None
                for fault in faults:
                    fault_point(f"{fault}.before_commit")
        except psycopg.Error as exc:
            if pgc.is_connection_error(exc, conn):
                self._drop_connection()
            raise pgc.translate(exc, self._location) from exc
        for fault in faults:
            fault_point(f"{fault}.after_commit")

    def _read(self, work: Callable[[Conn], T]) -> T:
        return self._run(work, idempotent=True)

    def _write(self, work: Callable[[Conn], T], *, fault: str | None = None) -> T:
        return self._run(work, transaction=True, fault=fault, durable=True)

    def _now_param(self) -> int | None:
        """The injected clock's time, or None: the statement then reads the server's clock."""
        return None if self._clock is None else self._clock()

    def _now_in(self, conn: Conn) -> int:
        if self._clock is not None:
            return self._clock()
        row = conn.execute(q.SELECT_NOW).fetchone()
        assert row is not None
        return int(row[0])

    # --- lifecycle --------------------------------------------------------------------------------

    def create(self) -> None:
        """Create the schema and its objects (idempotent); needs the right to create a schema."""
        self._write(lambda conn: pgc.apply_migrations(conn, self.schema, self._now_in(conn)))

    def schema_version(self) -> int:
        return self._read(lambda conn: pgc.schema_version(conn, self.schema)) or 0

    def migrate(self) -> Path | None:
        """Bring an older hub to this dtctl's schema in one transaction; returns None (no file backup:
        take a ``pg_dump --schema`` first; a failed migration leaves the schema as it was)."""
        self._write(lambda conn: pgc.apply_migrations(conn, self.schema, self._now_in(conn)))
        return None

    def close(self) -> None:
        self._closed = True
        self._drop_connection()

    def now(self) -> int:
        if self._clock is not None:
            return self._clock()
        return self._read(self._now_in)

    def watch_path(self) -> Path | None:
        return None

    def wake_channel(self) -> tuple[str, str] | None:
        """(DSN, channel) for a LISTEN connection: work became visible when a notification arrives.

        The DSN carries the password: hand it to a connection, never to a log.
        """
        return self._location.dsn, self._location.channel

    def wake_source(self) -> WakeSource:
        """A LISTEN connection (in a thread) on the hub's NOTIFY channel."""
        from dtctl.hub.wakeup.listen import listen_wake_source

        return listen_wake_source(self._location.dsn, self._location.channel)

    def backup(self, target: str | Path) -> Path:
        """Not a dtctl command for PostgreSQL: ``pg_dump`` makes the copy."""
        raise UsageError(
            "dtctl hub backup copies SQLite hubs",
            hint="back a PostgreSQL hub up with pg_dump --schema dtctl_NAME",
        )

    def __enter__(self) -> PostgresTaskHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- worker operations: orchestrations ---------------------------------------------------

    def lease_orchestrations(
        self,
        owner: str,
        names: Collection[str] | None,
        *,
        limit: int,
        lease_seconds: float,
        versions: VersionBounds = NO_BOUNDS,
    ) -> list[OrchestrationWorkItem]:
        if limit < 1 or (names is not None and not names):
            return []
        params = {
            "now": self._now_param(),
            "owner": owner,
            "lease_us": int(lease_seconds * 1_000_000),
            "names": None if names is None else sorted(names),
            "limit": limit,
            "vmin": versions[0],
            "vmax": versions[1],
        }
        # One statement: atomic on its own, so no BEGIN/COMMIT round trips for an idle poll.
        rows = self._run(lambda conn: conn.execute(q.LEASE_ORCHESTRATIONS, params).fetchall())
        items: list[OrchestrationWorkItem] = []
        stale: list[int] = []
        empty: list[rows_mod.LeasedHead] = []
        for group in rows_mod.group_leased(rows):
            item, stale_ids = rows_mod.work_item(group)
            stale.extend(stale_ids)
            if item is None:
                empty.append(group.head)
            else:
                items.append(item)
        if stale or empty:
            self._run(lambda conn: rows_mod.drop_stale(conn, stale, empty), transaction=True)
        items.sort(key=lambda i: i.messages[0].id)
        return items

    def load_history(self, instance_id: str, execution_id: str) -> list[HistoryEvent]:
        params = {"instance_id": instance_id, "execution_id": execution_id}
        rows = self._read(lambda conn: conn.execute(q.LOAD_HISTORY, params).fetchall())
        return [history_event_from_row(r) for r in rows]

    def trace_record(self, instance_id: str) -> TraceRecord | None:
        row = self._read(lambda conn: conn.execute(q.SELECT_TRACE_RECORD, (instance_id,)).fetchone())
        return None if row is None else trace_record_from_row(row)

    def checkpoint(self, batch: Sequence[tuple[OrchestrationWorkItem, Decision]]) -> list[CheckpointResult]:
        if not batch:
            return []

        def work(conn: Conn) -> list[CheckpointResult]:
            now = self._now_in(conn)
            results = checkpoint_batch(conn, now, batch)
            self._log_work(conn, now, committed_episode_rows(batch, results, now))
            return results

        return self._write(work, fault="checkpoint")

    def abandon_orchestration(self, item: OrchestrationWorkItem) -> None:
        params = {
            "instance_id": item.instance_id,
            "token": item.lease_token,
            "channel": self._location.channel,
        }
        self._run(lambda conn: conn.execute(q.RELEASE_INSTANCE, params).fetchall(), idempotent=True)

    def next_visible_at(
        self,
        orchestrations: Collection[str] | None,
        activities: Collection[str] | None,
        *,
        versions: VersionBounds = NO_BOUNDS,
    ) -> int | None:
        """When a lease call with these names can next get work (hub clock, µs), or None: never."""
        params = {
            "now": self._now_param(),
            "vmin": versions[0],
            "vmax": versions[1],
            "orchestrations": orchestrations is None or bool(orchestrations),
            "onames": None if orchestrations is None else sorted(orchestrations),
            "activities": activities is None or bool(activities),
            "anames": None if activities is None else sorted(activities),
        }
        row = self._read(lambda conn: conn.execute(q.NEXT_VISIBLE, params).fetchone())
        found = [int(v) for v in (row or ()) if v is not None]
        return min(found, default=None)

    # --- worker operations: activities ------------------------------------------------------

    def lease_activities(
        self, owner: str, names: Collection[str] | None, *, limit: int, lease_seconds: float
    ) -> list[ActivityWorkItem]:
        if limit < 1 or (names is not None and not names):
            return []
        params = {
            "now": self._now_param(),
            "owner": owner,
            "token": secrets.token_hex(16),  # one per call is enough: a later lease draws a new one
            "lease_us": int(lease_seconds * 1_000_000),
            "names": None if names is None else sorted(names),
            "limit": limit,
        }
        rows = self._run(lambda conn: conn.execute(q.LEASE_ACTIVITIES, params).fetchall())
        return sorted((activity_from_row(r) for r in rows), key=lambda a: a.id)

    def complete_activities(self, results: Sequence[ActivityResult]) -> list[bool]:
        if not results:
            return []
        first: dict[int, int] = {}
        for n, result in enumerate(results):
            first.setdefault(result.item.id, n)

        def work(conn: Conn) -> list[bool]:
            now = self._now_in(conn)
            unique = [results[n] for n in sorted(first.values())]
            events = [r.event if r.event.timestamp else replace(r.event, timestamp=now) for r in unique]
            params = {
                "now": now,
                "ids": [r.item.id for r in unique],
                "tokens": [r.item.lease_token for r in unique],
                "instance_ids": [r.item.instance_id for r in unique],
                "execution_ids": [r.item.execution_id for r in unique],
                "kinds": [e.kind for e in events],
                "task_ids": [r.item.task_id for r in unique],
                "payloads": [encode_event(e) for e in events],
            }
            done: dict[int, int | None] = dict(conn.execute(q.COMPLETE_ACTIVITIES, params).fetchall())
            log = [
                activity_log_row(r.item, e.kind, done[r.item.id], now)
                for r, e in zip(unique, events, strict=True)
                if r.item.id in done
            ]
            self._log_work(conn, now, log)
            return [first[r.item.id] == n and r.item.id in done for n, r in enumerate(results)]

        return self._write(work, fault="activity")

    def abandon_activity(self, item: ActivityWorkItem) -> None:
        backoff = min(ABANDON_BACKOFF_US * max(1, item.dequeue_count), MAX_ABANDON_BACKOFF_US)
        params = {"now": self._now_param(), "backoff_us": backoff, "id": item.id, "token": item.lease_token}
        self._run(lambda conn: conn.execute(q.ABANDON_TASK, params), idempotent=True)

    # --- leases -----------------------------------------------------------------------------------

    def renew_leases(
        self,
        orchestrations: Sequence[OrchestrationWorkItem],
        activities: Sequence[ActivityWorkItem],
        lease_seconds: float,
    ) -> tuple[list[str], list[int]]:
        if not orchestrations and not activities:
            return [], []
        lease_us = int(lease_seconds * 1_000_000)

        def work(conn: Conn) -> tuple[set[str], set[int]]:
            now = self._now_param()
            kept_instances: set[str] = set()
            kept_tasks: set[int] = set()
            if orchestrations:
                params: dict[str, Any] = {
                    "now": now,
                    "lease_us": lease_us,
                    "ids": [i.instance_id for i in orchestrations],
                    "tokens": [i.lease_token for i in orchestrations],
                }
                kept_instances = {
                    first_from_row(r) for r in conn.execute(q.RENEW_INSTANCES, params).fetchall()
                }
            if activities:
                params = {
                    "now": now,
                    "lease_us": lease_us,
                    "ids": [t.id for t in activities],
                    "tokens": [t.lease_token for t in activities],
                }
                kept_tasks = {first_from_row(r) for r in conn.execute(q.RENEW_TASKS, params).fetchall()}
            return kept_instances, kept_tasks

        kept_instances, kept_tasks = self._run(work, transaction=True, idempotent=True)
        return (
            [i.instance_id for i in orchestrations if i.instance_id not in kept_instances],
            [t.id for t in activities if t.id not in kept_tasks],
        )

    def release_leases(self, owner: str) -> int:
        def work(conn: Conn) -> int:
            released = conn.execute(q.RELEASE_OWNER_INSTANCES, (owner,)).rowcount
            released += conn.execute(q.RELEASE_OWNER_TASKS, (owner,)).rowcount
            released += conn.execute(q.RELEASE_OWNER_ENTITIES, (owner,)).rowcount
            if released:
                conn.execute(q.NOTIFY, (self._location.channel,))
            return int(released)

        return self._write(work)

    # --- workers ----------------------------------------------------------------------------------

    def heartbeat(self, info: WorkerInfo) -> None:
        # Heartbeats use the hub's clock too: None lets the statement read the server's.
        params = worker_params(info, self._now_param())

        def work(conn: Conn) -> None:
            conn.execute(q.UPSERT_WORKER, params)
            conn.execute(q.PRUNE_LOST_WORKERS, (self._now_param(), LOST_WORKER_RETENTION_MICROS))

        self._run(work, idempotent=True)

    def remove_worker(self, worker_id: str) -> None:
        self._run(lambda conn: conn.execute(q.DELETE_WORKER, (worker_id,)), idempotent=True)

    def list_workers(self) -> list[WorkerInfo]:
        rows = self._read(lambda conn: conn.execute(q.SELECT_WORKERS).fetchall())
        return [worker_from_row(r) for r in rows]
