"""What the SQLite and PostgreSQL hubs share: client write steps, sub-orchestration results, purge rules.

The functions that touch the database take the backend's :class:`~dtctl.hub.sql.dialect.Dialect` and
its connection. Like the backends' ``ops`` modules, nothing here commits: the caller owns the
transaction. No database driver is imported here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from dtctl.core.failure import FailureDetails
from dtctl.core.history import (
    ExecutionStarted,
    ExecutionTerminated,
    HistoryEvent,
    SubOrchestrationCompleted,
    SubOrchestrationFailed,
)
from dtctl.core.status import TERMINAL, RuntimeStatus
from dtctl.core.versioning import version_key
from dtctl.errors import InstanceNotFound, InvalidState, UsageError
from dtctl.hub.base import InstanceQuery, NewInstance, PurgeQuery, TerminateOutcome
from dtctl.hub.sql.dialect import C, Dialect
from dtctl.hub.sql.records import EventRow, InstanceRow, InstanceStatus, ParentRef, event_row, tags_to_json

# error_type of the failure a parent sees when its sub-orchestration was terminated.
TERMINATED_ERROR_TYPE = "dtctl.Terminated"
# A worker row whose heartbeat stopped (the process crashed or was killed) stays listed as "lost" for
# this long, as evidence for `dtctl workers` and `doctor`; any worker's heartbeat then deletes it.
LOST_WORKER_RETENTION_MICROS = 3600 * 1_000_000


def new_execution_id() -> str:
    return uuid.uuid4().hex


def not_found(instance_id: str, where: str) -> InstanceNotFound:
    return InstanceNotFound(f"no instance {instance_id!r} in hub {where}")


def instance_rows_for(
    new: NewInstance, now: int, execution_id: str, parent_execution_id: str | None
) -> tuple[InstanceRow, EventRow]:
    """The ``instances`` row of a new PENDING instance and its ``execution_started`` inbox row."""
    started = ExecutionStarted(
        timestamp=now,
        name=new.name,
        instance_id=new.instance_id,
        execution_id=execution_id,
        input=new.input,
        parent_instance_id=new.parent_instance_id,
        parent_task_id=new.parent_task_id,
        scheduled_start=new.start_at,
        version=new.version,
        tags=new.tags or None,
    )
    visible_at = now if new.start_at is None else new.start_at
    row = InstanceRow(
        new.instance_id,
        execution_id,
        new.name,
        new.input,
        now,
        now,
        new.start_at,
        new.parent_instance_id,
        new.parent_task_id,
        parent_execution_id,
        new.version,
        version_key(new.version),
        tags_to_json(new.tags),
    )
    return row, event_row(new.instance_id, execution_id, started, visible_at)


def version_tag_filters(query: InstanceQuery, clauses: list[str], params: list[Any], mark: str) -> None:
    """Add the list filters on version and tags (``mark``: the driver's placeholder). Each tag is one
    lookup in the (name, value) index of ``instance_tags``; several tags must all match."""
    if query.version is not None:
        if query.version:
            clauses.append(f"version = {mark}")
            params.append(query.version)
        else:
            clauses.append("version IS NULL")
    for name, value in query.tag_pairs():
        clauses.append(
            f"instance_id IN (SELECT instance_id FROM instance_tags WHERE name = {mark} AND value = {mark})"
        )
        params.extend((name, value))


def tag_rows_of(new: NewInstance) -> list[tuple[str, str, str]]:
    """The ``instance_tags`` rows of a new instance: (instance id, name, value)."""
    return [(new.instance_id, name, value) for name, value in (new.tags or {}).items()]


# --- client messages --------------------------------------------------------------------------------------


def send_to_live(
    d: Dialect[C],
    conn: C,
    now: int,
    instance_id: str,
    event: HistoryEvent,
    where: str,
    *,
    force: bool = False,
    trace_context: str | None = None,
) -> None:
    """Queue an untagged message for an instance that exists and (unless forced) is not terminal."""
    found = d.status_of(conn, instance_id, "share")
    if found is None:
        raise not_found(instance_id, where)
    if found.status in TERMINAL and not force:
        raise InvalidState(
            f"instance {instance_id!r} is {found.status}; it takes no more {event.kind} messages",
            hint="pass --force to store the event anyway" if event.kind == "event_raised" else None,
        )
    d.enqueue(conn, [event_row(instance_id, None, event, now, trace_context)])


def terminate(
    d: Dialect[C], conn: C, now: int, instance_id: str, reason: str | None, recursive: bool, where: str
) -> TerminateOutcome:
    found = d.status_of(conn, instance_id, "update")
    if found is None:
        raise not_found(instance_id, where)
    if found.status in TERMINAL:
        return TerminateOutcome(instance_id, False, found.status)
    outcome = terminate_live(d, conn, now, instance_id, found, reason, recursive)
    if recursive:
        for (child_id,) in conn.execute(d.sql.select_descendants, (instance_id,)).fetchall():
            child = d.status_of(conn, child_id, "update")
            if child is not None and child.status not in TERMINAL:
                terminate_live(d, conn, now, child_id, child, reason, recursive)
    return outcome


def terminate_live(
    d: Dialect[C],
    conn: C,
    now: int,
    instance_id: str,
    found: InstanceStatus,
    reason: str | None,
    recursive: bool,
) -> TerminateOutcome:
    """A PENDING instance nobody holds ends at once; anything else gets one ExecutionTerminated."""
    q = d.sql
    status, lease_expires = found.status, found.lease_expires
    if status == RuntimeStatus.PENDING and (lease_expires is None or lease_expires <= now):
        output = None if reason is None else json.dumps(reason, ensure_ascii=False)
        conn.execute(q.terminate_at_once, (output, now, now, instance_id))
        conn.execute(q.delete_inbox, (instance_id,))
        conn.execute(q.delete_tasks_of, (instance_id,))
        row = conn.execute(q.select_parent, (instance_id,)).fetchone()
        if row is not None:
            parent = ParentRef.from_row(row)
            notify_parent(d, conn, now, instance_id, parent, RuntimeStatus.TERMINATED, output, None)
        return TerminateOutcome(instance_id, True, RuntimeStatus.TERMINATED)
    if conn.execute(q.has_pending_terminate, (instance_id,)).fetchone() is None:
        event = ExecutionTerminated(timestamp=now, reason=reason, recursive=recursive)
        d.enqueue(conn, [event_row(instance_id, None, event, now)])
    return TerminateOutcome(instance_id, True, status)


# --- sub-orchestration results -------------------------------------------------------------------------


def notify_parent(
    d: Dialect[C],
    conn: C,
    now: int,
    child_id: str,
    parent: ParentRef,
    status: str,
    output: str | None,
    failure: FailureDetails | None,
) -> None:
    """Tell a live parent how its sub-orchestration ended (dropped when the parent moved on)."""
    parent_id, task_id, parent_execution = parent
    if parent_id is None or task_id is None:
        return
    found = d.status_of(conn, parent_id, "")
    if found is None or found.status in TERMINAL:
        return
    if parent_execution is not None and parent_execution != found.execution_id:
        return  # the parent continued as new: this task id means nothing to its current execution
    event = child_outcome(now, child_id, task_id, status, output, failure)
    d.enqueue(conn, [event_row(parent_id, found.execution_id, event, now)])


def child_outcome(
    now: int, child_id: str, task_id: int, status: str, output: str | None, failure: FailureDetails | None
) -> SubOrchestrationCompleted | SubOrchestrationFailed:
    if status == RuntimeStatus.COMPLETED:
        return SubOrchestrationCompleted(timestamp=now, task_id=task_id, result=output)
    if status == RuntimeStatus.TERMINATED:
        reason = f": {failure.message if failure else output}" if (failure or output) else ""
        failure = FailureDetails(
            message=f"sub-orchestration {child_id!r} was terminated{reason}", error_type=TERMINATED_ERROR_TYPE
        )
    elif failure is None:
        failure = FailureDetails(
            message=f"sub-orchestration {child_id!r} failed", error_type="builtins.Exception"
        )
    return SubOrchestrationFailed(timestamp=now, task_id=task_id, failure=failure)


# --- purge ----------------------------------------------------------------------------------------------


def purge_statuses(statuses: Sequence[str]) -> tuple[str, ...]:
    """The statuses a purge may remove: the terminal ones asked for (all of them when none are)."""
    if not statuses:
        return tuple(sorted(TERMINAL))
    live = [s for s in statuses if s not in TERMINAL]
    if live:
        raise UsageError(
            f"only finished instances can be purged; {live[0]!r} is not one of {', '.join(sorted(TERMINAL))}"
        )
    return tuple(dict.fromkeys(statuses))


PurgeBatch = Callable[[PurgeQuery, list[str] | None, int], int]


def purge_in_batches(query: PurgeQuery, purge_batch: PurgeBatch) -> int:
    """Run a purge as batches of ``query.batch_size`` instances, each batch its own transaction.

    ``purge_batch(query, ids_or_None, limit)`` deletes one batch of at most ``limit`` matching instances
    (with their sub-orchestrations when ``query.recursive``) and returns how many it removed; the
    query's statuses are the checked terminal ones. A purge killed between batches leaves a consistent
    hub; running it again finishes the job.
    """
    query = replace(query, statuses=purge_statuses(query.statuses))
    batch = max(1, query.batch_size)
    if query.instance_ids:
        ids = list(dict.fromkeys(query.instance_ids))
        return sum(purge_batch(query, ids[i : i + batch], batch) for i in range(0, len(ids), batch))
    total = 0
    while True:
        purged = purge_batch(query, None, batch)
        total += purged
        if purged == 0:
            return total


def purge_filters(query: PurgeQuery, mark: str) -> tuple[list[str], list[object]]:
    """The time filters of a purge as SQL clauses with ``mark`` placeholders, and their parameters."""
    clauses: list[str] = []
    params: list[object] = []
    for column, op, value in (
        ("completed_at", "<", query.completed_before),
        ("created_at", "<", query.created_before),
        ("created_at", ">", query.created_after),
    ):
        if value is not None:
            clauses.append(f"{column} {op} {mark}")
            params.append(value)
    return clauses, params
