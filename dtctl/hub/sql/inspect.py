"""What both hubs share to answer operators' questions (:class:`dtctl.hub.base.HubInspector`).

The work log (one row per committed activity result and per committed episode, written in the
transaction that commits it), the read statements (``inspect.sql``), and turning their rows into records.
The SQL is plain enough for SQLite and PostgreSQL to run as written; it names its parameters ``:name``
(SQLite's style), and :func:`pyformat` gives the PostgreSQL (psycopg) spelling of the same statement.

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
from typing import Any, NamedTuple

from dtctl.core.entity_exec import OperationResponse
from dtctl.core.history import ExecutionStarted, TaskFailed
from dtctl.core.status import LIVE as LIVE_STATUSES
from dtctl.core.status import RuntimeStatus, WorkItemKind, sql_list
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
from dtctl.hub.entity_records import EntityBatch
from dtctl.hub.sql.named import load_queries
from dtctl.hub.sql.records import worker_from_row

US = 1_000_000
LATENCY_SAMPLES = 2000  # the most recent work items of the window that latency percentiles use
PRUNE_EVERY_US = 2 * US  # how often a writing hub object deletes expired work log rows
RETENTION_US = int(WORK_LOG_RETENTION_SECONDS * US)
MAX_FAILURE_NAMES = 5
LIVE = sql_list(LIVE_STATUSES)
WORK_KINDS = sql_list(WorkItemKind)

# One read statement with its parameters -> its rows; bound to one read transaction by the backend.
Fetch = Callable[[str, Mapping[str, Any]], Sequence[Sequence[Any]]]

_NAMED = re.compile(r"(?<![:\w]):([a-z_]+)\b")


@cache
def pyformat(sql: str) -> str:
    """``sql`` with its ``:name`` parameters spelled ``%(name)s`` (psycopg); the SQL holds no ``%``."""
    assert "%" not in sql, "a literal % would need escaping"
    return _NAMED.sub(r"%(\1)s", sql)


# --- the work log (written on the hot path: one row per committed item) ------------------------------


class WorkLogRow(NamedTuple):
    """One ``work_log`` row: a committed activity result or episode."""

    kind: WorkItemKind
    name: str
    outcome: str  # "ok" or "failed"
    queued_at: int
    started_at: int
    finished_at: int


def activity_log_row(item: ActivityWorkItem, event_kind: str, leased_at: int | None, now: int) -> WorkLogRow:
    """The work log row of an activity result committed at ``now``."""
    started = now if leased_at is None else leased_at
    queued = started if item.visible_at is None else min(item.visible_at, started)
    outcome = "failed" if event_kind == TaskFailed.kind else "ok"
    return WorkLogRow(WorkItemKind.ACTIVITY, item.name, outcome, queued, started, now)


def episode_log_row(item: OrchestrationWorkItem, status: str, now: int) -> WorkLogRow:
    """The work log row of an episode committed at ``now``; queued since its oldest message appeared."""
    started = item.leased_at
    times = [_message_time(m.event) for m in item.messages]
    queued = min([started, *times])
    outcome = "failed" if status == RuntimeStatus.FAILED else "ok"
    return WorkLogRow(WorkItemKind.ORCHESTRATION, item.name, outcome, queued, started, now)


def entity_log_rows(batches: Sequence[EntityBatch], stored: Sequence[bool], now: int) -> list[WorkLogRow]:
    """The work log rows of the entity batches committed at ``now``: one per batch, named after the
    entity; failed when an operation it called back failed. The inbox wait before the lease is not
    known to the batch, so it counts as queued from its lease."""
    return [
        WorkLogRow(
            WorkItemKind.ENTITY,
            batch.item.name,
            "failed" if _any_failed(batch) else "ok",
            batch.item.leased_at,
            batch.item.leased_at,
            now,
        )
        for batch, done in zip(batches, stored, strict=True)
        if done and batch.result.consumed
    ]


def _any_failed(batch: EntityBatch) -> bool:
    return any(
        isinstance(out, OperationResponse) and out.failure is not None for out in batch.result.outgoing
    )


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

_SQL = load_queries(__package__ or "", "inspect.sql", {"live": LIVE, "work_kinds": WORK_KINDS})
INBOX_DEPTH = _SQL.take("inbox_depth")
TASK_DEPTH = _SQL.take("task_depth")
OLDEST_MESSAGE = _SQL.take("oldest_message")
OLDEST_TASK = _SQL.take("oldest_task")
LIVE_INSTANCES = _SQL.take("live_instances")
FINISHED_INSTANCES = _SQL.take("finished_instances")
WORK_COUNTS = _SQL.take("work_counts")
WORK_SAMPLES = _SQL.take("work_samples")
FAILURES_BY_NAME = _SQL.take("failures_by_name")
BACKLOG_ORCHESTRATIONS = _SQL.take("backlog_orchestrations")
BACKLOG_ACTIVITIES = _SQL.take("backlog_activities")
LEASED_INSTANCES = _SQL.take("leased_instances")
LEASED_TASKS = _SQL.take("leased_tasks")
EXPIRED_INSTANCE_LEASES = _SQL.take("expired_instance_leases")
EXPIRED_TASK_LEASES = _SQL.take("expired_task_leases")
POISON_MESSAGES = _SQL.take("poison_messages")
POISON_TASKS = _SQL.take("poison_tasks")
LARGE_HISTORIES = _SQL.take("large_histories")
SELECT_WORKERS = _SQL.take("select_workers")
FUTURE_STAMPS = _SQL.take("future_stamps")
_SQL.check_all_taken()


# --- stuck work (doctor: one-off reads; COUNT(*) OVER () gives the total before LIMIT) ---------------


# --- rows -> records ----------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[int], p: float) -> int | None:
    """Nearest-rank percentile of already sorted values (None for none)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class Sample(NamedTuple):
    """One row of ``WORK_SAMPLES``: when a work item was queued, started and finished."""

    queued_at: int
    started_at: int
    finished_at: int

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Sample:
        return cls(int(row[0]), int(row[1]), int(row[2]))


def work_window(kind: WorkKind, counts: dict[tuple[str, str], int], samples: Sequence[Sample]) -> WorkWindow:
    waits = sorted(max(0, s.started_at - s.queued_at) for s in samples)
    runs = sorted(max(0, s.finished_at - s.started_at) for s in samples)
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


def counted_from_row(row: Sequence[Any]) -> tuple[Any, int]:
    """A ``key, COUNT(*)`` row (``GROUP BY`` one column)."""
    return row[0], int(row[1])


def counts_from_row(row: Sequence[Any]) -> tuple[int, ...]:
    """A row of counts only."""
    return tuple(int(v) for v in row)


def pair_counted_from_row(row: Sequence[Any]) -> tuple[tuple[str, str], int]:
    """A ``a, b, COUNT(*)`` row (``GROUP BY`` two columns)."""
    return (row[0], row[1]), int(row[2])


def backlog_from_row(kind: WorkKind, row: Sequence[Any]) -> NameBacklog:
    return NameBacklog(kind=kind, name=row[0], count=int(row[1]), oldest_visible_at=int(row[2]))


def waiting_from_row(kind: WorkKind, row: Sequence[Any]) -> WaitingItem:
    return WaitingItem(kind=kind, instance_id=row[0], name=row[1], visible_at=int(row[2]))


def named_count_from_row(row: Sequence[Any]) -> NamedCount:
    return NamedCount(kind=row[0], name=row[1], count=int(row[2]))


def expired_lease_from_row(kind: WorkKind, row: Sequence[Any]) -> ExpiredLease:
    """A row of ``EXPIRED_INSTANCE_LEASES`` or (with the task id) ``EXPIRED_TASK_LEASES``."""
    task_id = row[4] if kind == "activity" else None
    return ExpiredLease(
        kind=kind, instance_id=row[0], name=row[1], owner=row[2], expired_at=int(row[3]), task_id=task_id
    )


def poison_from_row(kind: WorkKind, row: Sequence[Any]) -> PoisonCandidate:
    """A row of ``POISON_MESSAGES`` or (with the task id) ``POISON_TASKS``."""
    task_id = row[3] if kind == "activity" else None
    return PoisonCandidate(
        kind=kind, instance_id=row[0], name=row[1], dequeue_count=int(row[2]), task_id=task_id
    )


def large_history_from_row(row: Sequence[Any]) -> LargeHistory:
    return LargeHistory(instance_id=row[0], name=row[1], status=row[2], history_length=int(row[3]))


def total_from_row(row: Sequence[Any]) -> int:
    """The ``COUNT(*) OVER ()`` column, the last one of the stuck-work reads."""
    return int(row[-1])


def read_backlog(fetch: Fetch, now: int) -> list[NameBacklog]:
    found = [backlog_from_row("orchestration", r) for r in fetch(BACKLOG_ORCHESTRATIONS, {"now": now})]
    found.extend(backlog_from_row("activity", r) for r in fetch(BACKLOG_ACTIVITIES, {"now": now}))
    found.sort(key=lambda b: (-b.count, b.kind, b.name))
    return found


def read_leases(fetch: Fetch, now: int) -> list[LeaseHolder]:
    orchestrations = dict(counted_from_row(r) for r in fetch(LEASED_INSTANCES, {"now": now}))
    activities = dict(counted_from_row(r) for r in fetch(LEASED_TASKS, {"now": now}))
    owners = sorted(set(orchestrations) | set(activities), key=lambda o: str(o))
    return [
        LeaseHolder(owner=str(o), orchestrations=orchestrations.get(o, 0), activities=activities.get(o, 0))
        for o in owners
    ]


def _queue(fetch: Fetch, depth_sql: str, oldest_sql: str, kind: WorkKind, now: int) -> QueueDepth:
    visible, leased, later = next(counts_from_row(r) for r in fetch(depth_sql, {"now": now}))
    oldest = next((waiting_from_row(kind, r) for r in fetch(oldest_sql, {"now": now})), None)
    return QueueDepth(visible=visible, leased=leased, later=later, oldest=oldest)


def _instances(fetch: Fetch, since: int) -> InstanceCounts:
    live = dict(counted_from_row(r) for r in fetch(LIVE_INSTANCES, {}))
    completed, failed, terminated = next(
        counts_from_row(r) for r in fetch(FINISHED_INSTANCES, {"since": since})
    )
    return InstanceCounts(
        pending=live.get(RuntimeStatus.PENDING, 0),
        running=live.get(RuntimeStatus.RUNNING, 0),
        suspended=live.get(RuntimeStatus.SUSPENDED, 0),
        completed=completed,
        failed=failed,
        terminated=terminated,
    )


def read_snapshot(fetch: Fetch, now: int, window_seconds: float, scale: ScaleMetrics) -> HubSnapshot:
    """:meth:`HubInspector.hub_snapshot` from the statements above, all through one read transaction."""
    window = min(max(window_seconds, 1.0), WORK_LOG_RETENTION_SECONDS)
    since = now - int(window * US)
    counts = dict(pair_counted_from_row(r) for r in fetch(WORK_COUNTS, {"since": since}))
    samples = {
        kind: [
            Sample.from_row(r)
            for r in fetch(WORK_SAMPLES, {"kind": kind, "since": since, "limit": LATENCY_SAMPLES})
        ]
        for kind in WorkItemKind
    }
    failures = tuple(
        named_count_from_row(r) for r in fetch(FAILURES_BY_NAME, {"since": since, "limit": MAX_FAILURE_NAMES})
    )
    workers: tuple[WorkerInfo, ...] = tuple(worker_from_row(r) for r in fetch(SELECT_WORKERS, {}))
    return HubSnapshot(
        at=now,
        window_seconds=window,
        scale=scale,
        inbox=_queue(fetch, INBOX_DEPTH, OLDEST_MESSAGE, "orchestration", now),
        activity_queue=_queue(fetch, TASK_DEPTH, OLDEST_TASK, "activity", now),
        instances=_instances(fetch, since),
        orchestration_work=work_window("orchestration", counts, samples[WorkItemKind.ORCHESTRATION]),
        activity_work=work_window("activity", counts, samples[WorkItemKind.ACTIVITY]),
        entity_work=work_window("entity", counts, samples[WorkItemKind.ENTITY]),
        failures=failures,
        workers=workers,
        leases=tuple(read_leases(fetch, now)),
        backlog=tuple(read_backlog(fetch, now)),
    )


def _total(rows: Sequence[Sequence[Any]]) -> int:
    return next((total_from_row(r) for r in rows), 0)


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
    expired = [expired_lease_from_row("orchestration", r) for r in expired_i]
    expired += [expired_lease_from_row("activity", r) for r in expired_t]
    expired.sort(key=lambda e: e.expired_at)
    poison = [poison_from_row("orchestration", r) for r in poison_m]
    poison += [poison_from_row("activity", r) for r in poison_t]
    poison.sort(key=lambda p: -p.dequeue_count)
    return StuckWork(
        at=now,
        expired_leases=tuple(expired[:limit]),
        expired_lease_count=_total(expired_i) + _total(expired_t),
        poison=tuple(poison[:limit]),
        poison_count=_total(poison_m) + _total(poison_t),
        large_histories=tuple(large_history_from_row(r) for r in large),
        large_history_count=_total(large),
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


# A heartbeat is written with the hub's "now": anything later than this is dated in the future.
HEARTBEAT_SLACK_US = 10 * US
UPDATE_SLACK_US = 10 * US
# A lease runs at most --lease-seconds ahead; one further ahead than this was dated by a clock that
# has since stepped back.
LEASE_SLACK_US = 15 * 60 * US


def duration_text(micros: int) -> str:
    seconds = abs(micros) // US
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


def read_clock_findings(fetch: Fetch, now: int, lease_now: int) -> list[Finding]:
    """Leases, heartbeats and updates dated in the future of the hub's clock (doctor's "clock" check).

    ``lease_now``: the clock leases and heartbeats are stored in (``now`` but on a SQLite hub).
    """
    params = {
        "now": now,
        "lease_now": lease_now,
        "heartbeat_slack": HEARTBEAT_SLACK_US,
        "lease_slack": LEASE_SLACK_US,
        "update_slack": UPDATE_SLACK_US,
    }
    row = next(iter(fetch(FUTURE_STAMPS, params)))
    heartbeats, last_beat, leases, lease_i, lease_t, updates, last_update = (int(v or 0) for v in row)
    found: list[str] = []
    if heartbeats:
        found.append(f"{heartbeats} heartbeat(s) up to {duration_text(last_beat - lease_now)} ahead")
    if leases:
        found.append(
            f"{leases} lease(s) expiring up to {duration_text(max(lease_i, lease_t) - lease_now)} ahead"
        )
    if updates:
        found.append(f"{updates} instance(s) updated up to {duration_text(last_update - now)} ahead")
    if not found:
        return [
            Finding(check="clock", severity="ok", message="no lease, heartbeat or update dated in the future")
        ]
    return [
        Finding(
            check="clock",
            severity="warning",
            message="dated in the future of the hub's clock: "
            + "; ".join(found)
            + " (the clock stepped back, or the hub's processes disagree on the time)",
            hint="check time synchronisation (timedatectl, chrony); timers and scheduled starts fire by "
            "the wall clock, so they may fire late by the step",
        )
    ]
