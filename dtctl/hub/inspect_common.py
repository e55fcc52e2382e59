"""What both hubs share to answer operators' questions (:class:`dtctl.hub.base.HubInspector`).

The work log (one row per committed activity result and per committed episode, written in the
transaction that commits it), the read statements, and turning their rows into records. The SQL is
plain enough for SQLite and PostgreSQL to run as written; it names its parameters ``:name`` (SQLite's
style), and :func:`pyformat` gives the PostgreSQL (psycopg) spelling of the same statement.

A backend hands the assembling functions a :data:`Fetch` bound to one read transaction (so every
statement of a snapshot sees the same committed state) and the hub's "now"; nothing here touches a
driver.

The reads are shaped to stay cheap on a busy hub: counts over index ranges (``visible_at``, the partial
lease indexes, ``completed_at``, the log's ``(kind, finished_at)``), ``ORDER BY … LIMIT`` scans that stop
at the first match, and latency percentiles over at most :data:`LATENCY_SAMPLES` recent rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

from dtctl.core.history import FAILED, ExecutionStarted, TaskFailed
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

# One read statement with its parameters -> its rows; bound to one read transaction by the backend.
Fetch = Callable[[str, Mapping[str, Any]], Sequence[Sequence[Any]]]

_NAMED = re.compile(r"(?<![:\w]):([a-z_]+)\b")


@cache
def pyformat(sql: str) -> str:
    """``sql`` with its ``:name`` parameters spelled ``%(name)s`` (psycopg); the SQL holds no ``%``."""
    assert "%" not in sql, "a literal % would need escaping"
    return _NAMED.sub(r"%(\1)s", sql)


# --- the work log (written on the hot path: one row per committed item) ------------------------------

WorkLogRow = tuple[str, str, str, int, int, int]  # kind, name, outcome, queued_at, started_at, finished_at


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


# --- the reads (`:name` parameters; pyformat() for psycopg) ---------------------------------------

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


SELECT_WORKERS = """
SELECT worker_id, host, pid, started_at, heartbeat_at, orchestrations, activities, max_orchestrations,
       max_activities, inflight_orchestrations, inflight_activities, extra
FROM workers ORDER BY started_at, worker_id
"""


# --- rows -> records ----------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[int], p: float) -> int | None:
    """Nearest-rank percentile of already sorted values (None for none)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def work_window(kind: WorkKind, counts: dict[tuple[str, str], int], samples: Sequence[Any]) -> WorkWindow:
    waits = sorted(max(0, int(s[1]) - int(s[0])) for s in samples)
    runs = sorted(max(0, int(s[2]) - int(s[1])) for s in samples)
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


def read_backlog(fetch: Fetch, now: int) -> list[NameBacklog]:
    found = [
        NameBacklog(kind="orchestration", name=r[0], count=int(r[1]), oldest_visible_at=int(r[2]))
        for r in fetch(BACKLOG_ORCHESTRATIONS, {"now": now})
    ]
    found.extend(
        NameBacklog(kind="activity", name=r[0], count=int(r[1]), oldest_visible_at=int(r[2]))
        for r in fetch(BACKLOG_ACTIVITIES, {"now": now})
    )
    found.sort(key=lambda b: (-b.count, b.kind, b.name))
    return found


def read_leases(fetch: Fetch, now: int) -> list[LeaseHolder]:
    orchestrations = {r[0]: int(r[1]) for r in fetch(LEASED_INSTANCES, {"now": now})}
    activities = {r[0]: int(r[1]) for r in fetch(LEASED_TASKS, {"now": now})}
    owners = sorted(set(orchestrations) | set(activities), key=lambda o: str(o))
    return [
        LeaseHolder(owner=str(o), orchestrations=orchestrations.get(o, 0), activities=activities.get(o, 0))
        for o in owners
    ]


def _queue(fetch: Fetch, depth_sql: str, oldest_sql: str, kind: WorkKind, now: int) -> QueueDepth:
    visible, leased, later = (int(v) for v in fetch(depth_sql, {"now": now})[0])
    found = fetch(oldest_sql, {"now": now})
    oldest = None
    if found:
        row = found[0]
        oldest = WaitingItem(kind=kind, instance_id=row[0], name=row[1], visible_at=int(row[2]))
    return QueueDepth(visible=visible, leased=leased, later=later, oldest=oldest)


def _instances(fetch: Fetch, since: int) -> InstanceCounts:
    live = {r[0]: int(r[1]) for r in fetch(LIVE_INSTANCES, {})}
    completed, failed, terminated = (int(v) for v in fetch(FINISHED_INSTANCES, {"since": since})[0])
    return InstanceCounts(
        pending=live.get("PENDING", 0),
        running=live.get("RUNNING", 0),
        suspended=live.get("SUSPENDED", 0),
        completed=completed,
        failed=failed,
        terminated=terminated,
    )


def read_snapshot(fetch: Fetch, now: int, window_seconds: float, scale: ScaleMetrics) -> HubSnapshot:
    """:meth:`HubInspector.hub_snapshot` from the statements above, all through one read transaction."""
    window = min(max(window_seconds, 1.0), WORK_LOG_RETENTION_SECONDS)
    since = now - int(window * US)
    counts = {(r[0], r[1]): int(r[2]) for r in fetch(WORK_COUNTS, {"since": since})}
    samples = {
        kind: fetch(WORK_SAMPLES, {"kind": kind, "since": since, "limit": LATENCY_SAMPLES})
        for kind in ("orchestration", "activity")
    }
    failures = tuple(
        NamedCount(kind=r[0], name=r[1], count=int(r[2]))
        for r in fetch(FAILURES_BY_NAME, {"since": since, "limit": MAX_FAILURE_NAMES})
    )
    workers: tuple[WorkerInfo, ...] = tuple(worker_from_row(r) for r in fetch(SELECT_WORKERS, {}))
    return HubSnapshot(
        at=now,
        window_seconds=window,
        scale=scale,
        inbox=_queue(fetch, INBOX_DEPTH, OLDEST_MESSAGE, "orchestration", now),
        activity_queue=_queue(fetch, TASK_DEPTH, OLDEST_TASK, "activity", now),
        instances=_instances(fetch, since),
        orchestration_work=work_window("orchestration", counts, samples["orchestration"]),
        activity_work=work_window("activity", counts, samples["activity"]),
        failures=failures,
        workers=workers,
        leases=tuple(read_leases(fetch, now)),
        backlog=tuple(read_backlog(fetch, now)),
    )


def _total(rows: Sequence[Sequence[Any]], column: int) -> int:
    return int(rows[0][column]) if rows else 0


def read_stuck_work(
    fetch: Fetch,
    now: int,
    *,
    max_dequeue: int = DEFAULT_MAX_DEQUEUE,
    history_threshold: int = LARGE_HISTORY_EVENTS,
    limit: int = 20,
) -> StuckWork:
    """:meth:`HubInspector.stuck_work` from the statements above, through one read transaction."""
    limit = max(1, limit)
    expired_i = fetch(EXPIRED_INSTANCE_LEASES, {"now": now, "limit": limit})
    expired_t = fetch(EXPIRED_TASK_LEASES, {"now": now, "limit": limit})
    params = {"max_dequeue": max(1, max_dequeue), "limit": limit}
    poison_m = fetch(POISON_MESSAGES, params)
    poison_t = fetch(POISON_TASKS, params)
    large = fetch(LARGE_HISTORIES, {"threshold": max(1, history_threshold), "limit": limit})
    expired = [
        ExpiredLease(kind="orchestration", instance_id=r[0], name=r[1], owner=r[2], expired_at=int(r[3]))
        for r in expired_i
    ] + [
        ExpiredLease(
            kind="activity", instance_id=r[0], name=r[1], owner=r[2], expired_at=int(r[3]), task_id=r[4]
        )
        for r in expired_t
    ]
    expired.sort(key=lambda e: e.expired_at)
    poison = [
        PoisonCandidate(kind="orchestration", instance_id=r[0], name=r[1], dequeue_count=int(r[2]))
        for r in poison_m
    ] + [
        PoisonCandidate(kind="activity", instance_id=r[0], name=r[1], dequeue_count=int(r[2]), task_id=r[3])
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
            LargeHistory(instance_id=r[0], name=r[1], status=r[2], history_length=int(r[3])) for r in large
        ),
        large_history_count=_total(large, 4),
    )


# --- findings both backends make -------------------------------------------------------------------


def schema_version_finding(version: int, latest: int, *, migrate_hint: str) -> Finding:
    if version == latest:
        return Finding(check="schema-version", severity="ok", message=f"schema version {version}")
    if version < latest:
        return Finding(
            check="schema-version",
            severity="problem",
            message=f"schema version {version}; this dtctl needs {latest}",
            hint=migrate_hint,
        )
    return Finding(
        check="schema-version",
        severity="problem",
        message=f"schema version {version} is newer than this dtctl understands ({latest})",
        hint="upgrade dtctl",
    )
