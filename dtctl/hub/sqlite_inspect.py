"""The SQLite hub's answers to operators' questions (:class:`dtctl.hub.base.HubInspector`), and its work log.

Everything here is a read, except the work log: the hub appends one ``work_log`` row per committed
activity result and per committed episode, inside the transaction that commits it, and deletes rows
older than :data:`WORK_LOG_RETENTION_SECONDS` every few seconds. ``dtctl top`` reads throughput and
latency from it; workers never read it.

The reads are shaped to stay cheap on a busy hub: counts over index ranges (``visible_at``, the partial
lease index, ``completed_at``, the log's ``(kind, finished_at)``), ``ORDER BY … LIMIT`` scans that stop
at the first match, and latency percentiles over at most :data:`LATENCY_SAMPLES` recent rows. A snapshot
is one short read transaction (WAL readers never block the writer). The SQL is plain enough for
PostgreSQL to run as written (no SQLite-only syntax), so the PostgreSQL hub can share the shapes.
"""

from __future__ import annotations

import math
import os
import sqlite3
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dtctl.core.history import FAILED, ExecutionStarted, TaskFailed
from dtctl.errors import HubError, UsageError
from dtctl.hub import sqlite_conn as conn_mod
from dtctl.hub.base import (
    DEFAULT_MAX_DEQUEUE,
    LARGE_HISTORY_EVENTS,
    WORK_LOG_RETENTION_SECONDS,
    ActivityWorkItem,
    CheckpointResult,
    ExpiredLease,
    Finding,
    HubSnapshot,
    InstanceCounts,
    LargeHistory,
    LeaseHolder,
    NameBacklog,
    NamedCount,
    OrchestrationWorkItem,
    PoisonCandidate,
    QueueDepth,
    ScaleMetrics,
    StuckWork,
    WaitingItem,
    WorkerInfo,
    WorkKind,
    WorkWindow,
)
from dtctl.hub.sqlite_queries import LIVE
from dtctl.hub.sqlite_rows import worker_from_row

US = 1_000_000
LATENCY_SAMPLES = 2000  # the most recent work items of the window that latency percentiles use
PRUNE_EVERY_US = 2 * US  # how often a writing hub object deletes expired work log rows
RETENTION_US = int(WORK_LOG_RETENTION_SECONDS * US)
MAX_FAILURE_NAMES = 5
# sqlite.org "Write-Ahead Logging", section "The WAL-Reset Bug": present from 3.7.0, fixed in 3.52.0.
WAL_RESET_BUG = ((3, 7, 0), (3, 51, 2))
LARGE_WAL_BYTES = 256 * 1024 * 1024

# --- the work log (written on the hot path: fixed statements, one row per committed item) -------------

LOG_WORK = """
INSERT INTO work_log (kind, name, outcome, queued_at, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?)
"""
PRUNE_WORK_LOG = "DELETE FROM work_log WHERE kind IN ('activity', 'orchestration') AND finished_at < :before"

WorkLogRow = tuple[str, str, str, int, int, int]


def activity_log_row(item: ActivityWorkItem, event_kind: str, leased_at: int | None, now: int) -> WorkLogRow:
    """The work log row of an activity result committed at ``now``."""
    started = now if leased_at is None else leased_at
    queued = started if item.visible_at is None else min(item.visible_at, started)
    outcome = "failed" if event_kind == TaskFailed.kind else "ok"
    return ("activity", item.name, outcome, queued, started, now)


def episode_log_row(item: OrchestrationWorkItem, status: str, now: int) -> WorkLogRow:
    """The work log row of an episode committed at ``now``; queued since its oldest message appeared."""
    started = item.leased_at
    times = [_message_time(m.event) for m in item.messages]
    queued = min([started, *times])
    return ("orchestration", item.name, "failed" if status == FAILED else "ok", queued, started, now)


def _message_time(event: Any) -> int:
    # A scheduled start is visible from its start time; every other message from its timestamp.
    if isinstance(event, ExecutionStarted) and event.scheduled_start:
        return max(event.timestamp, event.scheduled_start)
    return int(event.timestamp)


def committed_episode_rows(
    batch: Sequence[tuple[OrchestrationWorkItem, Any]], results: Sequence[CheckpointResult], now: int
) -> list[WorkLogRow]:
    return [
        episode_log_row(item, decision.status, now)
        for (item, decision), result in zip(batch, results, strict=True)
        if result.committed
    ]


# --- the reads ----------------------------------------------------------------------------------------

INBOX_DEPTH = """
SELECT
    (SELECT COUNT(*) FROM new_events WHERE visible_at <= :now),
    (SELECT COUNT(*) FROM instances AS i JOIN new_events AS e ON e.instance_id = i.instance_id
     WHERE i.lease_expires > :now AND e.visible_at <= :now),
    (SELECT COUNT(*) FROM new_events WHERE visible_at > :now)
"""

# A leased task is always visible (it was visible when leased; a lease given back clears it).
TASK_DEPTH = """
SELECT
    (SELECT COUNT(*) FROM new_tasks WHERE visible_at <= :now),
    (SELECT COUNT(*) FROM new_tasks WHERE lease_expires > :now),
    (SELECT COUNT(*) FROM new_tasks WHERE visible_at > :now)
"""

# The oldest ready message of an instance nobody holds: walks the visible_at index in order and stops
# at the first message whose instance is live, unleased and on that message's execution.
OLDEST_MESSAGE = f"""
SELECT e.instance_id, (SELECT i.name FROM instances AS i WHERE i.instance_id = e.instance_id), e.visible_at
FROM new_events AS e
WHERE e.visible_at <= :now
  AND EXISTS (
      SELECT 1 FROM instances AS i
      WHERE i.instance_id = e.instance_id
        AND (i.lease_expires IS NULL OR i.lease_expires <= :now)
        AND i.status IN {LIVE}
        AND (e.execution_id IS NULL OR e.execution_id = i.execution_id))
ORDER BY e.visible_at
LIMIT 1
"""

OLDEST_TASK = """
SELECT instance_id, name, visible_at FROM new_tasks
WHERE visible_at <= :now AND (lease_expires IS NULL OR lease_expires <= :now)
ORDER BY visible_at
LIMIT 1
"""

LIVE_INSTANCES = f"SELECT status, COUNT(*) FROM instances WHERE status IN {LIVE} GROUP BY status"
# No GROUP BY: that would make the planner walk the status index; this is a completed_at range.
FINISHED_INSTANCES = """
SELECT COALESCE(SUM(CASE WHEN status = 'COMPLETED' THEN 1 ELSE 0 END), 0),
       COALESCE(SUM(CASE WHEN status = 'FAILED' THEN 1 ELSE 0 END), 0),
       COALESCE(SUM(CASE WHEN status = 'TERMINATED' THEN 1 ELSE 0 END), 0)
FROM instances WHERE completed_at >= :since
"""

WORK_COUNTS = """
SELECT kind, outcome, COUNT(*) FROM work_log
WHERE kind IN ('activity', 'orchestration') AND finished_at >= :since
GROUP BY kind, outcome
"""

WORK_SAMPLES = """
SELECT queued_at, started_at, finished_at FROM work_log
WHERE kind = :kind AND finished_at >= :since
ORDER BY finished_at DESC
LIMIT :limit
"""

FAILURES_BY_NAME = """
SELECT kind, name, COUNT(*) FROM work_log
WHERE kind IN ('activity', 'orchestration') AND finished_at >= :since AND outcome = 'failed'
GROUP BY kind, name
ORDER BY COUNT(*) DESC, kind, name
LIMIT :limit
"""

# Driven by the ready messages (the visible_at index), not by every live instance; each message looks its
# instance up by key, as OLDEST_MESSAGE does.
BACKLOG_ORCHESTRATIONS = f"""
SELECT r.name, COUNT(DISTINCT r.instance_id), MIN(r.visible_at)
FROM (
    SELECT e.instance_id, e.visible_at,
           (SELECT i.name FROM instances AS i WHERE i.instance_id = e.instance_id) AS name
    FROM new_events AS e
    WHERE e.visible_at <= :now
      AND EXISTS (
          SELECT 1 FROM instances AS i
          WHERE i.instance_id = e.instance_id
            AND (i.lease_expires IS NULL OR i.lease_expires <= :now)
            AND i.status IN {LIVE}
            AND (e.execution_id IS NULL OR e.execution_id = i.execution_id))
) AS r
GROUP BY r.name
"""

BACKLOG_ACTIVITIES = """
SELECT name, COUNT(*), MIN(visible_at) FROM new_tasks
WHERE visible_at <= :now AND (lease_expires IS NULL OR lease_expires <= :now)
GROUP BY name
"""

LEASED_INSTANCES = (
    "SELECT lease_owner, COUNT(*) FROM instances WHERE lease_expires > :now GROUP BY lease_owner"
)
LEASED_TASKS = "SELECT lease_owner, COUNT(*) FROM new_tasks WHERE lease_expires > :now GROUP BY lease_owner"

SELECT_WORKERS = """
SELECT worker_id, host, pid, started_at, heartbeat_at, orchestrations, activities, max_orchestrations,
       max_activities, inflight_orchestrations, inflight_activities, extra
FROM workers ORDER BY started_at, worker_id
"""

# --- stuck work (doctor: one-off reads; COUNT(*) OVER () gives the total before LIMIT) ---------------

EXPIRED_INSTANCE_LEASES = """
SELECT instance_id, name, lease_owner, lease_expires, COUNT(*) OVER ()
FROM instances
WHERE lease_expires IS NOT NULL AND lease_expires <= :now
ORDER BY lease_expires, instance_id
LIMIT :limit
"""

EXPIRED_TASK_LEASES = """
SELECT instance_id, name, lease_owner, lease_expires, task_id, COUNT(*) OVER ()
FROM new_tasks
WHERE lease_expires IS NOT NULL AND lease_expires <= :now
ORDER BY lease_expires, id
LIMIT :limit
"""

POISON_MESSAGES = """
SELECT e.instance_id, i.name, MAX(e.dequeue_count), COUNT(*) OVER ()
FROM new_events AS e JOIN instances AS i ON i.instance_id = e.instance_id
WHERE e.dequeue_count >= :max_dequeue
GROUP BY e.instance_id, i.name
ORDER BY MAX(e.dequeue_count) DESC, e.instance_id
LIMIT :limit
"""

POISON_TASKS = """
SELECT instance_id, name, dequeue_count, task_id, COUNT(*) OVER ()
FROM new_tasks
WHERE dequeue_count >= :max_dequeue
ORDER BY dequeue_count DESC, id
LIMIT :limit
"""

LARGE_HISTORIES = f"""
SELECT instance_id, name, status, history_length, COUNT(*) OVER ()
FROM instances
WHERE status IN {LIVE} AND history_length >= :threshold
ORDER BY history_length DESC, instance_id
LIMIT :limit
"""


# --- helpers ----------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[int], p: float) -> int | None:
    """Nearest-rank percentile of already sorted values (None for none)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def work_window(kind: WorkKind, counts: dict[tuple[str, str], int], samples: list[Any]) -> WorkWindow:
    waits = sorted(max(0, s[1] - s[0]) for s in samples)
    runs = sorted(max(0, s[2] - s[1]) for s in samples)
    failed = counts.get((kind, "failed"), 0)
    return WorkWindow(
        kind=kind,
        finished=failed + counts.get((kind, "ok"), 0),
        failed=failed,
        samples=len(samples),
        schedule_to_start_p50=percentile(waits, 50),
        schedule_to_start_p95=percentile(waits, 95),
        start_to_complete_p50=percentile(runs, 50),
        start_to_complete_p95=percentile(runs, 95),
    )


def _backlog(conn: sqlite3.Connection, now: int) -> list[NameBacklog]:
    found = [
        NameBacklog(kind="orchestration", name=r[0], count=r[1], oldest_visible_at=r[2])
        for r in conn.execute(BACKLOG_ORCHESTRATIONS, {"now": now})
    ]
    found.extend(
        NameBacklog(kind="activity", name=r[0], count=r[1], oldest_visible_at=r[2])
        for r in conn.execute(BACKLOG_ACTIVITIES, {"now": now})
    )
    found.sort(key=lambda b: (-b.count, b.kind, b.name))
    return found


def _leases(conn: sqlite3.Connection, now: int) -> list[LeaseHolder]:
    orchestrations = dict(conn.execute(LEASED_INSTANCES, {"now": now}).fetchall())
    activities = dict(conn.execute(LEASED_TASKS, {"now": now}).fetchall())
    owners = sorted(set(orchestrations) | set(activities), key=lambda o: str(o))
    return [
        LeaseHolder(owner=str(o), orchestrations=orchestrations.get(o, 0), activities=activities.get(o, 0))
        for o in owners
    ]


def _queue(row: Sequence[int], oldest: WaitingItem | None) -> QueueDepth:
    return QueueDepth(visible=row[0], leased=row[1], later=row[2], oldest=oldest)


def _oldest(conn: sqlite3.Connection, sql: str, kind: WorkKind, now: int) -> WaitingItem | None:
    row = conn.execute(sql, {"now": now}).fetchone()
    if row is None:
        return None
    return WaitingItem(kind=kind, instance_id=row[0], name=row[1], visible_at=row[2])


def _instances(conn: sqlite3.Connection, since: int) -> InstanceCounts:
    live = dict(conn.execute(LIVE_INSTANCES).fetchall())
    completed, failed, terminated = conn.execute(FINISHED_INSTANCES, {"since": since}).fetchone()
    return InstanceCounts(
        pending=live.get("PENDING", 0),
        running=live.get("RUNNING", 0),
        suspended=live.get("SUSPENDED", 0),
        completed=completed,
        failed=failed,
        terminated=terminated,
    )


def _total(rows: list[Any], column: int) -> int:
    return int(rows[0][column]) if rows else 0


# --- the mixin ----------------------------------------------------------------------------------------


class SqliteInspector:
    """:class:`~dtctl.hub.base.HubInspector` for :class:`~dtctl.hub.sqlite.SqliteTaskHub` (mixed in),
    plus the hub's work log writer and ``backup``."""

    _conn: sqlite3.Connection
    url: str
    path: Path
    _next_log_prune: int = 0

    if TYPE_CHECKING:  # provided by SqliteTaskHub

        def now(self) -> int:
            raise NotImplementedError

        def scale_metrics(self) -> ScaleMetrics:
            raise NotImplementedError

    # --- writing the log (inside the caller's write transaction) ----------------------------------

    def _log_work(self, conn: sqlite3.Connection, now: int, rows: Sequence[WorkLogRow]) -> None:
        if rows:
            conn.executemany(LOG_WORK, rows)
        if now >= self._next_log_prune:
            self._next_log_prune = now + PRUNE_EVERY_US
            conn.execute(PRUNE_WORK_LOG, {"before": now - RETENTION_US})

    # --- reads -------------------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the same committed state."""
        conn = self._conn
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise conn_mod.translate(exc, self.url) from exc

    def hub_snapshot(self, window_seconds: float = 60.0) -> HubSnapshot:
        window = min(max(window_seconds, 1.0), WORK_LOG_RETENTION_SECONDS)
        with self._read() as conn:
            now = self.now()
            since = now - int(window * US)
            inbox = _queue(
                conn.execute(INBOX_DEPTH, {"now": now}).fetchone(),
                _oldest(conn, OLDEST_MESSAGE, "orchestration", now),
            )
            tasks = _queue(
                conn.execute(TASK_DEPTH, {"now": now}).fetchone(),
                _oldest(conn, OLDEST_TASK, "activity", now),
            )
            counts = {(r[0], r[1]): r[2] for r in conn.execute(WORK_COUNTS, {"since": since})}
            samples = {
                kind: conn.execute(
                    WORK_SAMPLES, {"kind": kind, "since": since, "limit": LATENCY_SAMPLES}
                ).fetchall()
                for kind in ("orchestration", "activity")
            }
            failures = tuple(
                NamedCount(kind=r[0], name=r[1], count=r[2])
                for r in conn.execute(FAILURES_BY_NAME, {"since": since, "limit": MAX_FAILURE_NAMES})
            )
            workers: tuple[WorkerInfo, ...] = tuple(worker_from_row(r) for r in conn.execute(SELECT_WORKERS))
            snapshot = HubSnapshot(
                at=now,
                window_seconds=window,
                scale=self.scale_metrics(),
                inbox=inbox,
                activity_queue=tasks,
                instances=_instances(conn, since),
                orchestration_work=work_window("orchestration", counts, samples["orchestration"]),
                activity_work=work_window("activity", counts, samples["activity"]),
                failures=failures,
                workers=workers,
                leases=tuple(_leases(conn, now)),
                backlog=tuple(_backlog(conn, now)),
            )
        return snapshot

    def backlog_by_name(self) -> list[NameBacklog]:
        with self._read() as conn:
            return _backlog(conn, self.now())

    def lease_holders(self) -> list[LeaseHolder]:
        with self._read() as conn:
            return _leases(conn, self.now())

    def stuck_work(
        self,
        *,
        max_dequeue: int = DEFAULT_MAX_DEQUEUE,
        history_threshold: int = LARGE_HISTORY_EVENTS,
        limit: int = 20,
    ) -> StuckWork:
        limit = max(1, limit)
        with self._read() as conn:
            now = self.now()
            expired_i = conn.execute(EXPIRED_INSTANCE_LEASES, {"now": now, "limit": limit}).fetchall()
            expired_t = conn.execute(EXPIRED_TASK_LEASES, {"now": now, "limit": limit}).fetchall()
            params = {"max_dequeue": max(1, max_dequeue), "limit": limit}
            poison_m = conn.execute(POISON_MESSAGES, params).fetchall()
            poison_t = conn.execute(POISON_TASKS, params).fetchall()
            large = conn.execute(
                LARGE_HISTORIES, {"threshold": max(1, history_threshold), "limit": limit}
            ).fetchall()
        expired = [
            ExpiredLease(kind="orchestration", instance_id=r[0], name=r[1], owner=r[2], expired_at=r[3])
            for r in expired_i
        ] + [
            ExpiredLease(
                kind="activity", instance_id=r[0], name=r[1], owner=r[2], expired_at=r[3], task_id=r[4]
            )
            for r in expired_t
        ]
        expired.sort(key=lambda e: e.expired_at)
        poison = [
            PoisonCandidate(kind="orchestration", instance_id=r[0], name=r[1], dequeue_count=r[2])
            for r in poison_m
        ] + [
            PoisonCandidate(kind="activity", instance_id=r[0], name=r[1], dequeue_count=r[2], task_id=r[3])
            for r in poison_t
        ]
        poison.sort(key=lambda p: -p.dequeue_count)
        return StuckWork(
            at=now,
            expired_leases=tuple(expired[:limit]),
            expired_lease_count=_total(expired_i, 4) + _total(expired_t, 5),
            poison=tuple(poison[:limit]),
            poison_count=_total(poison_m, 3) + _total(poison_t, 4),
            large_histories=tuple(
                LargeHistory(instance_id=r[0], name=r[1], status=r[2], history_length=r[3]) for r in large
            ),
            large_history_count=_total(large, 4),
        )

    def storage_findings(self, *, full: bool = False) -> list[Finding]:
        with self._read() as conn:
            found = [
                check_schema_version(conn),
                check_journal_mode(conn),
                check_synchronous(conn),
                check_integrity(conn, full=full),
            ]
        found += [
            check_sqlite_version(sqlite3.sqlite_version_info),
            check_filesystem(self.path),
            check_permissions(self.path),
            check_links(self.path),
            check_wal_size(self.path),
        ]
        return found

    # --- backup ------------------------------------------------------------------------------------

    def backup(self, target: str | Path) -> Path:
        """A consistent copy of the hub at ``target`` (``VACUUM INTO``: safe while workers write).

        The copy is written next to ``target`` first, checked (``quick_check``, schema version), and
        only then renamed into place, so ``target`` is either a good backup or absent. Mode 0600.
        """
        final = Path(target).expanduser().absolute()
        if final.exists():
            raise UsageError(f"backup {final} exists already", hint="choose a new file name")
        if not final.parent.is_dir():
            raise UsageError(f"cannot write backup {final}: directory {final.parent} does not exist")
        if final == self.path or final.name.startswith(self.path.name + "-"):
            raise UsageError(f"backup {final} would overwrite the hub or its -wal/-shm files")
        partial = final.with_name(f".{final.name}.partial")
        partial.unlink(missing_ok=True)
        try:
            try:
                conn_mod.vacuum_into(self._conn, partial)
                version = conn_mod.user_version(self._conn)
            except sqlite3.Error as exc:
                raise conn_mod.translate(exc, self.url) from exc
            _verify_copy(partial, version)
            partial.rename(final)
        finally:
            partial.unlink(missing_ok=True)
        return final


def _verify_copy(path: Path, version: int) -> None:
    check = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        result = check.execute("PRAGMA quick_check").fetchone()[0]
        copied = int(check.execute("PRAGMA user_version").fetchone()[0])
    finally:
        check.close()
    if result != "ok" or copied != version:
        raise HubError(f"the backup written to {path} does not verify ({result}, version {copied})")


# --- storage checks: each a small function returning one Finding ---------------------------------------


def check_schema_version(conn: sqlite3.Connection) -> Finding:
    version, latest = conn_mod.user_version(conn), conn_mod.latest_version()
    if version == latest:
        return Finding(check="schema-version", severity="ok", message=f"schema version {version}")
    if version < latest:
        return Finding(
            check="schema-version",
            severity="problem",
            message=f"schema version {version}; this dtctl needs {latest}",
            hint="run `dtctl hub migrate` (it takes a backup first)",
        )
    return Finding(
        check="schema-version",
        severity="problem",
        message=f"schema version {version} is newer than this dtctl understands ({latest})",
        hint="upgrade dtctl",
    )


def check_journal_mode(conn: sqlite3.Connection) -> Finding:
    mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    if mode == "wal":
        return Finding(check="journal-mode", severity="ok", message="journal mode WAL")
    return Finding(
        check="journal-mode",
        severity="problem",
        message=f"journal mode is {mode}, not WAL: readers and the writer block each other",
        hint="open the hub with dtctl (it sets WAL); a file system without shared memory cannot use WAL",
    )


_SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def check_synchronous(conn: sqlite3.Connection) -> Finding:
    level = int(conn.execute("PRAGMA synchronous").fetchone()[0])
    name = _SYNCHRONOUS.get(level, str(level))
    if level >= 2:
        return Finding(check="synchronous", severity="ok", message=f"synchronous={name} (durable commits)")
    if level == 1:
        return Finding(
            check="synchronous",
            severity="warning",
            message="synchronous=NORMAL: the last commits may be lost on power loss (never on a crash)",
            hint="drop --synchronous normal for durable commits",
        )
    return Finding(
        check="synchronous",
        severity="problem",
        message="synchronous=OFF: a power loss can corrupt the hub",
        hint="use synchronous=FULL (the default)",
    )


def check_integrity(conn: sqlite3.Connection, *, full: bool) -> Finding:
    pragma = "integrity_check" if full else "quick_check"
    rows = [str(r[0]) for r in conn.execute(f"PRAGMA {pragma}(20)").fetchall()]
    if rows == ["ok"]:
        return Finding(check="integrity", severity="ok", message=f"{pragma}: ok")
    return Finding(
        check="integrity",
        severity="problem",
        message=f"{pragma} found damage: " + "; ".join(rows[:3]) + (" …" if len(rows) > 3 else ""),
        hint="stop the workers, restore a backup (dtctl hub backup makes one) or try sqlite3's .recover",
    )


def check_sqlite_version(version: tuple[int, int, int]) -> Finding:
    text = ".".join(map(str, version))
    low, high = WAL_RESET_BUG
    if version < conn_mod.MIN_SQLITE:
        return Finding(
            check="sqlite-version",
            severity="problem",
            message=f"SQLite {text} is older than dtctl needs ({'.'.join(map(str, conn_mod.MIN_SQLITE))})",
            hint="use a Python build linked against a newer SQLite",
        )
    if low <= version <= high:
        return Finding(
            check="sqlite-version",
            severity="warning",
            message=f"SQLite {text} has the WAL-reset bug (3.7.0-3.51.2): a rare corruption when "
            "several connections write and checkpoint at once",
            hint="use a Python linked against SQLite 3.52.0 or newer; take backups (dtctl hub backup)",
        )
    return Finding(check="sqlite-version", severity="ok", message=f"SQLite {text}")


def check_filesystem(path: Path) -> Finding:
    fstype = conn_mod.filesystem_type(path.parent)
    if fstype is None:
        return Finding(check="filesystem", severity="ok", message="file system type unknown")
    if fstype.lower() in conn_mod.NETWORK_FILESYSTEMS:
        return Finding(
            check="filesystem",
            severity="problem",
            message=f"the hub is on a network file system ({fstype}); SQLite locking is unreliable there",
            hint="move the hub to a local disk or use a PostgreSQL hub",
        )
    return Finding(check="filesystem", severity="ok", message=f"local file system ({fstype})")


def check_permissions(path: Path) -> Finding:
    loose: list[str] = []
    writable: list[str] = []
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o002:
            writable.append(f"{file.name} ({mode:o})")
        elif mode & 0o077:
            loose.append(f"{file.name} ({mode:o})")
    if not os.access(path.parent, os.W_OK):
        return Finding(
            check="permissions",
            severity="problem",
            message=f"directory {path.parent} is not writable: SQLite cannot create the -wal/-shm files",
            hint="make the directory writable by the user that runs workers",
        )
    if writable:
        return Finding(
            check="permissions",
            severity="problem",
            message="writable by any user: " + ", ".join(writable),
            hint=f"chmod 600 {path}*",
        )
    if loose:
        return Finding(
            check="permissions",
            severity="warning",
            message="readable by other users (payloads may hold secrets): " + ", ".join(loose),
            hint=f"chmod 600 {path}*",
        )
    return Finding(check="permissions", severity="ok", message="hub files are private (0600)")


def check_links(path: Path) -> Finding:
    if path.is_symlink() or path.stat().st_nlink > 1:
        return Finding(
            check="links",
            severity="warning",
            message="the hub file has another name (a symbolic or hard link); a process that opens it "
            "by the other name uses a different -wal file and can corrupt the hub",
            hint="open the hub by one path only",
        )
    return Finding(check="links", severity="ok", message="the hub file has one name")


def check_wal_size(path: Path) -> Finding:
    try:
        size = Path(f"{path}-wal").stat().st_size
    except FileNotFoundError:
        size = 0
    if size > LARGE_WAL_BYTES:
        return Finding(
            check="wal-size",
            severity="warning",
            message=f"the -wal file is {size // (1024 * 1024)} MiB: long-running readers keep "
            "checkpoints from resetting it",
            hint="look for a process holding a read transaction open (a long query, an idle sqlite3 shell)",
        )
    return Finding(check="wal-size", severity="ok", message=f"-wal file {size // 1024} KiB")
