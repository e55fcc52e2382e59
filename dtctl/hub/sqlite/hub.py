"""The embedded task hub: one SQLite file.

One connection per hub object, opened by us with ``isolation_level=None`` so that every write
transaction is an explicit ``BEGIN IMMEDIATE``: a deferred transaction that reads first can fail with
SQLITE_BUSY without waiting for the busy timeout. WAL mode lets readers (clients, ``dtctl list``) run
while a worker writes. Visibility (timers, scheduled starts) is judged by the wall clock; leases and
heartbeats by the lease clock (:mod:`dtctl.hub.sqlite.clock`), which a wall-clock step cannot move.
A test injects one clock for both (``clock=``).

A hub this process cannot write (a read-only mount or file) is opened read-only: every read works,
every write raises :class:`~dtctl.errors.HubReadOnly` naming the cause. A disk that filled up makes
writes raise :class:`~dtctl.errors.HubDiskFull`; the next write first checkpoints and truncates the
WAL, and with little free space the WAL is kept short (``conn.LOW_SPACE_WAL_PAGES``), so freeing
about 1 MB lets the hub go on.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from dtctl.core.decision import Decision
from dtctl.core.history import (
    HistoryEvent,
    encode_event,
)
from dtctl.errors import HubReadOnly
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
from dtctl.hub.sql.inspect import WorkLogRow, activity_log_row, committed_episode_rows
from dtctl.hub.sql.instances import (
    LOST_WORKER_RETENTION_MICROS,
)
from dtctl.hub.sql.records import (
    LeasedInstance,
    MessageRow,
    activity_from_row,
    first_from_row,
    history_event_from_row,
    trace_record_from_row,
    worker_from_row,
    worker_params,
)
from dtctl.hub.sqlite import conn as conn_mod
from dtctl.hub.sqlite import queries as q
from dtctl.hub.sqlite.checkpoint import checkpoint_item
from dtctl.hub.sqlite.clock import LeaseClock
from dtctl.hub.sqlite.entities import SqliteEntities
from dtctl.hub.sqlite.inspect import SqliteInspector
from dtctl.hub.sqlite.instances import SqliteInstances
from dtctl.hub.wakeup import WakeSource

Clock = Callable[[], int]
VISIBLE_MEMO_US = 100_000  # how long next_visible_at may repeat an answer while nobody commits
ABANDON_BACKOFF_US = 1_000_000  # an abandoned activity waits this long per attempt so far (capped)
MAX_ABANDON_BACKOFF_US = 30_000_000
# The wall clock behind the lease clock by more than this: it was stepped back (NTP slews far less).
STEPPED_BACK_US = 1_000_000
SPACE_CHECK_EVERY_S = 1.0  # how often a writing hub object looks at the free space (statvfs)


class _VisibleMemo(NamedTuple):
    """next_visible_at's last answer, and what it was an answer to."""

    key: tuple[Collection[str] | None, Collection[str] | None, VersionBounds]
    data_version: int
    at: int
    answer: int | None

    def answers(self, key: object, data_version: int, now: int) -> bool:
        return 0 <= now - self.at < VISIBLE_MEMO_US and self.key == key and self.data_version == data_version


def system_clock() -> int:
    return int(time.time() * 1_000_000)


class SqliteTaskHub(SqliteInspector, SqliteEntities, SqliteInstances):
    """A task hub in one SQLite file. Used from one thread at a time (its own connection).

    The :class:`~dtctl.hub.base.HubInspector` reads, the work log and ``backup`` come from
    :class:`~dtctl.hub.sqlite.inspect.SqliteInspector`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = False,
        synchronous: str = "full",
        busy_timeout: float = conn_mod.DEFAULT_BUSY_TIMEOUT,
        allow_network_fs: bool = False,
        clock: Clock | None = None,
        check_schema: bool = True,
    ) -> None:
        self.path = Path(path).expanduser().absolute()
        self.url = str(self.path)
        self._clock: Clock = clock or system_clock
        self._lease_clock: Clock = clock or LeaseClock()
        self._low_space = False  # the WAL is kept short: the disk is nearly full
        self._space_checked_at = 0.0
        self._after_full = False  # the last write hit a full disk: checkpoint first
        self._synchronous = self._sync_now = synchronous  # the durable mode; the one set right now
        self._batch_faults: list[str] | None = None  # set while a batch() transaction is open
        self._batch_durable = True
        self._visible_memo: _VisibleMemo | None = None  # next_visible_at's last answer
        existed = conn_mod.check_path(self.path, create=create)
        conn_mod.check_local(self.path, allow_network_fs)
        self._read_only = conn_mod.read_only_reason(self.path)
        if self._read_only is None:
            self._conn = conn_mod.connect(self.path, synchronous=synchronous, busy_timeout=busy_timeout)
        elif existed:
            self._conn = conn_mod.connect_read_only(
                self.path, busy_timeout=busy_timeout, reason=self._read_only
            )
        else:
            raise HubReadOnly(f"cannot create hub {self.path}: {self._read_only}")
        try:
            self._open_schema(create=create, check_schema=check_schema)
            if isinstance(self._lease_clock, LeaseClock):
                with self._edge():
                    self._lease_clock.anchor(self._conn, writable=self._read_only is None)
        except BaseException:
            self._conn.close()
            raise
        if not existed:
            self.path.chmod(0o600)

    def _open_schema(self, *, create: bool, check_schema: bool) -> None:
        with self._edge():
            version = conn_mod.check_version(self._conn, self.url, create=create, check_schema=check_schema)
            if version == 0:
                conn_mod.apply_migrations(self._conn, self.now())

    # --- transactions and the error edge ----------------------------------------------------------

    @contextmanager
    def _edge(self) -> Iterator[sqlite3.Connection]:
        """Driver errors leave the hub only as :mod:`dtctl.errors` types."""
        try:
            yield self._conn
        except sqlite3.Error as exc:
            raise conn_mod.translate(exc, self.url) from exc

    @contextmanager
    def _write(self, fault: str | None = None, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` … ``COMMIT``; anything raised inside rolls everything back.

        Inside :meth:`batch` it joins the batch's transaction (its fault points fire at that commit).
        ``durable=False``: the commit does not wait for stable storage (only leases are written so).
        """
        faults = self._batch_faults
        if faults is None:
            with self._transaction([fault] if fault else [], durable) as conn:
                yield conn
            return
        if durable and not self._batch_durable:
            raise RuntimeError("a durable write cannot join a batch(durable=False)")
        if fault and fault not in faults:
            faults.append(fault)
        yield self._conn

    @contextmanager
    def _transaction(self, faults: list[str], durable: bool) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        if self._read_only is not None:
            raise HubReadOnly(f"hub {self.url} cannot be written from here: {self._read_only}")
        with self._edge(), self._space_guard():
            self._set_durable(durable)
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                for fault in faults:
                    fault_point(f"{fault}.before_commit")
                conn.execute("COMMIT")
                self._visible_memo = None
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        for fault in faults:
            fault_point(f"{fault}.after_commit")

    @contextmanager
    def _space_guard(self) -> Iterator[None]:
        """Keep the WAL short while the disk is nearly full; after a full disk, checkpoint first."""
        tick = time.monotonic()
        if tick - self._space_checked_at >= SPACE_CHECK_EVERY_S:
            self._space_checked_at = tick
            free = conn_mod.free_bytes(self.path.parent)
            low = free is not None and free < conn_mod.LOW_SPACE_BYTES
            if low != self._low_space:
                pages = conn_mod.LOW_SPACE_WAL_PAGES if low else conn_mod.WAL_AUTOCHECKPOINT_PAGES
                self._conn.execute(f"PRAGMA wal_autocheckpoint = {pages}")
                self._low_space = low
        if self._after_full:
            # Copies the log into the database and truncates it: the space the log held comes back.
            # Tried once per full disk (a reader may keep it from truncating; it waits for readers).
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            self._after_full = False
        try:
            yield
        except sqlite3.Error as exc:
            self._after_full = self._after_full or conn_mod.is_disk_full(exc, self.path)
            raise

    def _set_durable(self, durable: bool) -> None:
        """Per transaction, outside it (SQLite refuses inside): the configured mode, or NORMAL for leases.

        In WAL mode the next durable commit syncs the log, and with it every frame written before.
        """
        mode = self._synchronous if durable else "normal"
        if mode != self._sync_now:
            pragma = "PRAGMA synchronous = FULL" if mode == "full" else "PRAGMA synchronous = NORMAL"
            self._conn.execute(pragma)
            self._sync_now = mode

    @contextmanager
    def batch(self, *, durable: bool = True) -> Iterator[None]:
        """Group commit: the worker operations inside share one transaction (TaskHub.batch)."""
        if self._batch_faults is not None:
            if durable and not self._batch_durable:
                raise RuntimeError("a durable batch cannot join a batch(durable=False)")
            yield  # nested: part of the open batch
            return
        faults: list[str] = []
        self._batch_faults, self._batch_durable = faults, durable
        try:
            with self._transaction(faults, durable):
                yield
        finally:
            self._batch_faults = None

    # --- lifecycle --------------------------------------------------------------------------------

    def create(self) -> None:
        with self._edge():
            if conn_mod.user_version(self._conn) == 0:
                conn_mod.apply_migrations(self._conn, self.now())

    def schema_version(self) -> int:
        with self._edge():
            return conn_mod.user_version(self._conn)

    def migrate(self) -> Path | None:
        """Bring an older hub to this dtctl's schema; returns the ``VACUUM INTO`` backup taken first."""
        with self._edge():
            version = conn_mod.user_version(self._conn)
            if version >= conn_mod.latest_version():
                conn_mod.check_version(self._conn, self.url, create=False, check_schema=True)
                return None
            backup = conn_mod.backup_path(self.path, version)
            conn_mod.vacuum_into(self._conn, backup)
            conn_mod.apply_migrations(self._conn, self.now())
            return backup

    def close(self) -> None:
        self._conn.close()

    def now(self) -> int:
        return self._clock()

    def lease_now(self) -> int:
        """The lease clock's time: what lease expiry times and heartbeats are stored and judged in."""
        return self._lease_clock()

    def lease_skew(self) -> int:
        """Add to a stored lease or heartbeat time to express it in wall-clock terms (µs)."""
        return self.now() - self.lease_now()

    def _visibility(self, now: int) -> dict[str, int]:
        """The parameters of the visibility rule (queries.sql, pick_instances) at wall time ``now``."""
        lease_now = self.lease_now()
        return {"now": now, "lease_now": lease_now, "visible_by": max(now, lease_now)}

    @property
    def read_only(self) -> str | None:
        """Why this hub object cannot write (None: it can)."""
        return self._read_only

    def watch_path(self) -> Path | None:
        return self.path

    def wake_source(self) -> WakeSource:
        """inotify on the hub file's directory in the waiter's own wait (Linux), else a watchfiles thread."""
        from dtctl.hub.wakeup.filewatch import file_wake_source

        return file_wake_source(self.path)

    def __enter__(self) -> SqliteTaskHub:
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
        params: dict[str, Any] = {
            "names": None if names is None else json.dumps(sorted(names)),
            "vmin": versions[0],
            "vmax": versions[1],
        }
        with self._write(durable=False) as conn:
            now, lease_now = self.now(), self.lease_now()
            params |= {"now": now, "lease_now": lease_now, "visible_by": max(now, lease_now)}
            expires = lease_now + int(lease_seconds * 1_000_000)
            picked = _pick_instances(conn, params, limit)
            items = [self._lease_instance(conn, iid, owner, now, expires) for iid in picked]
        return [item for item in items if item is not None]

    def _lease_instance(
        self, conn: sqlite3.Connection, instance_id: str, owner: str, now: int, expires: int
    ) -> OrchestrationWorkItem | None:
        token = os.urandom(16).hex()  # as secrets.token_hex, without importing hashlib/OpenSSL
        leased = LeasedInstance.from_row(
            conn.execute(q.LEASE_INSTANCE, (owner, expires, token, instance_id)).fetchone()
        )
        fresh: list[MessageRow] = []
        stale: list[tuple[int, str]] = []
        taken = conn.execute(q.TAKE_MESSAGES, {"instance_id": instance_id, **self._visibility(now)})
        for message in map(MessageRow.from_row, taken.fetchall()):
            if message.is_for(leased.execution_id):
                fresh.append(message)
            else:
                stale.append((message.id, instance_id))
        if stale:  # completions and timers of an execution that is gone: never hand them out
            conn.executemany(q.DELETE_MESSAGE, stale)
        if not fresh:
            conn.execute(q.RELEASE_INSTANCE, (instance_id, token))
            return None
        if len(fresh) > 1:
            fresh.sort(key=MessageRow.sort_key)
        return OrchestrationWorkItem(
            instance_id=instance_id,
            execution_id=leased.execution_id,
            name=leased.name,
            status=leased.status,
            lease_token=token,
            lease_expires=expires,
            leased_at=now,
            history_length=leased.history_length,
            messages=tuple(m.message() for m in fresh),
            version=leased.version,
        )

    def load_history(self, instance_id: str, execution_id: str) -> list[HistoryEvent]:
        with self._edge() as conn:
            rows = conn.execute(q.LOAD_HISTORY, {"instance_id": instance_id, "execution_id": execution_id})
            return [history_event_from_row(r) for r in rows]

    def trace_record(self, instance_id: str) -> TraceRecord | None:
        with self._edge() as conn:
            row = conn.execute(q.SELECT_TRACE_RECORD, (instance_id,)).fetchone()
        return None if row is None else trace_record_from_row(row)

    def checkpoint(self, batch: Sequence[tuple[OrchestrationWorkItem, Decision]]) -> list[CheckpointResult]:
        if not batch:
            return []
        with self._write(fault="checkpoint") as conn:
            now = self.now()
            results = [checkpoint_item(conn, now, item, decision) for item, decision in batch]
            self._log_work(conn, now, committed_episode_rows(batch, results, now))
            return results

    def abandon_orchestration(self, item: OrchestrationWorkItem) -> None:
        with self._write() as conn:
            conn.execute(q.RELEASE_INSTANCE, (item.instance_id, item.lease_token))

    # --- worker operations: activities ------------------------------------------------------

    def lease_activities(
        self, owner: str, names: Collection[str] | None, *, limit: int, lease_seconds: float
    ) -> list[ActivityWorkItem]:
        if limit < 1 or (names is not None and not names):
            return []
        # One token per lease call is enough: any later lease of these rows draws a new one.
        params: dict[str, Any] = {
            "owner": owner,
            "token": os.urandom(16).hex(),
            "names": None if names is None else json.dumps(sorted(names)),
            "limit": limit,
        }
        with self._write(durable=False) as conn:
            params |= self._visibility(self.now())
            params["expires"] = params["lease_now"] + int(lease_seconds * 1_000_000)
            rows = conn.execute(q.LEASE_TASKS, params).fetchall()
        return sorted((activity_from_row(r) for r in rows), key=lambda a: a.id)

    def complete_activities(self, results: Sequence[ActivityResult]) -> list[bool]:
        if not results:
            return []
        accepted: list[bool] = []
        with self._write(fault="activity") as conn:
            now = self.now()
            log: list[WorkLogRow] = []
            for result in results:
                accepted.append(_complete_one(conn, now, result, log))
            self._log_work(conn, now, log)
        return accepted

    def abandon_activity(self, item: ActivityWorkItem) -> None:
        backoff = min(ABANDON_BACKOFF_US * max(1, item.dequeue_count), MAX_ABANDON_BACKOFF_US)
        with self._write() as conn:
            conn.execute(q.ABANDON_TASK, (self.now() + backoff, item.id, item.lease_token))

    def next_visible_at(
        self,
        orchestrations: Collection[str] | None,
        activities: Collection[str] | None,
        *,
        versions: VersionBounds = NO_BOUNDS,
    ) -> int | None:
        # Idle workers ask after every wake-up hint, and most hints are their own commits or come
        # before the commit they announce is visible. ``PRAGMA data_version`` (a few µs) changes only
        # when another connection commits; this connection's commits drop the memo. The memo also
        # ages out, so a lease that expired without any commit is seen within VISIBLE_MEMO_US.
        key = (orchestrations, activities, versions)
        with self._edge() as conn:
            version = first_from_row(conn.execute("PRAGMA data_version").fetchone())
            now, lease_now = self.now(), self.lease_now()
            if lease_now - now > STEPPED_BACK_US:
                # The wall clock stepped back: work stamped before the step is visible by the lease
                # clock, which these reads do not judge by. Say "look now"; the lease sorts it out.
                return now
            memo = self._visible_memo
            if memo is not None and memo.answers(key, version, now):
                return memo.answer
            found: list[int] = []
            for names, query in ((orchestrations, q.NEXT_VISIBLE_EVENT), (activities, q.NEXT_VISIBLE_TASK)):
                if names is not None and not names:
                    continue
                names_json = None if names is None else json.dumps(sorted(names))
                params = {"now": now, "lease_now": lease_now, "names": names_json}
                if query is q.NEXT_VISIBLE_EVENT:
                    params |= {"vmin": versions[0], "vmax": versions[1]}
                row = conn.execute(query, params).fetchone()
                if row is not None:
                    found.append(first_from_row(row))
        answer = min(found, default=None)
        self._visible_memo = _VisibleMemo(key, version, now, answer)
        return answer

    # --- leases -----------------------------------------------------------------------------------

    def renew_leases(
        self,
        orchestrations: Sequence[OrchestrationWorkItem],
        activities: Sequence[ActivityWorkItem],
        lease_seconds: float,
    ) -> tuple[list[str], list[int]]:
        if not orchestrations and not activities:
            return [], []
        lost_instances: list[str] = []
        lost_tasks: list[int] = []
        with self._write() as conn:
            expires = self.lease_now() + int(lease_seconds * 1_000_000)
            for item in orchestrations:
                if (
                    conn.execute(q.RENEW_INSTANCE, (expires, item.instance_id, item.lease_token)).rowcount
                    == 0
                ):
                    lost_instances.append(item.instance_id)
            for task in activities:
                if conn.execute(q.RENEW_TASK, (expires, task.id, task.lease_token)).rowcount == 0:
                    lost_tasks.append(task.id)
        return lost_instances, lost_tasks

    def release_leases(self, owner: str) -> int:
        with self._write() as conn:
            released = conn.execute(q.RELEASE_OWNER_INSTANCES, (owner,)).rowcount
            released += conn.execute(q.RELEASE_OWNER_TASKS, (owner,)).rowcount
            released += conn.execute(q.RELEASE_OWNER_ENTITIES, (owner,)).rowcount
        return int(released)

    # --- workers ----------------------------------------------------------------------------------

    def heartbeat(self, info: WorkerInfo) -> None:
        now = self.lease_now()
        with self._write() as conn:
            conn.execute(q.UPSERT_WORKER, worker_params(info, now))
            conn.execute(q.PRUNE_LOST_WORKERS, (now - LOST_WORKER_RETENTION_MICROS,))

    def remove_worker(self, worker_id: str) -> None:
        with self._write() as conn:
            conn.execute(q.DELETE_WORKER, (worker_id,))

    def list_workers(self) -> list[WorkerInfo]:
        with self._edge() as conn:
            rows = conn.execute(q.SELECT_WORKERS).fetchall()
        skew = self.lease_skew()
        return [_wall_heartbeat(worker_from_row(r), skew) for r in rows]


# --- helpers --------------------------------------------------------------------------------------


def _wall_heartbeat(worker: WorkerInfo, skew: int) -> WorkerInfo:
    """A worker row with its heartbeat (stored in the lease clock) in wall-clock terms."""
    return replace(worker, heartbeat_at=worker.heartbeat_at + skew) if skew else worker


def _pick_instances(conn: sqlite3.Connection, params: dict[str, Any], limit: int) -> list[str]:
    """Up to ``limit`` leasable instances, oldest visible event first; stops reading once it has them."""
    picked: dict[str, None] = {}
    cursor = conn.execute(q.PICK_INSTANCES, params)
    try:
        for (instance_id,) in cursor:
            picked[instance_id] = None
            if len(picked) >= limit:
                break
    finally:
        cursor.close()
    return list(picked)


def _complete_one(conn: sqlite3.Connection, now: int, result: ActivityResult, log: list[WorkLogRow]) -> bool:
    item = result.item
    deleted = conn.execute(q.DELETE_LEASED_TASK, (item.id, item.lease_token)).fetchone()
    if deleted is None:
        return False  # stale token: the lease expired and someone else owns (or finished) the task
    log.append(activity_log_row(item, result.event.kind, first_from_row(deleted), now))
    event = result.event if result.event.timestamp else replace(result.event, timestamp=now)
    # The row is gone either way: a result for a finished or replaced execution is discarded, not retried.
    conn.execute(
        q.INSERT_RESULT_IF_LIVE,
        {
            "instance_id": item.instance_id,
            "execution_id": item.execution_id,
            "kind": event.kind,
            "task_id": item.task_id,
            "payload": encode_event(event),
            "now": now,
        },
    )
    return True
