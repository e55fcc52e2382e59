"""What the SQLite and PostgreSQL hubs share: client write steps, sub-orchestration results, purge rules.

The functions that touch the database take a :class:`Dialect` (what differs between the backends: the
queries module with its own placeholders, and how rows go in) and the connection; both drivers' connections
take ``conn.execute(sql, params)``. Like the backends' ``*_ops`` modules, nothing here commits: the caller
owns the transaction. No database driver is imported here.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from types import ModuleType
from typing import Any

from dtctl.core.failure import FailureDetails
from dtctl.core.history import (
    COMPLETED,
    PENDING,
    TERMINAL_STATUSES,
    TERMINATED,
    ExecutionStarted,
    ExecutionTerminated,
    HistoryEvent,
    SubOrchestrationCompleted,
    SubOrchestrationFailed,
)
from dtctl.errors import InstanceNotFound, InvalidState, SchemaVersionMismatch, UsageError
from dtctl.hub.base import InboxMessage, NewInstance, PurgeQuery, TerminateOutcome
from dtctl.hub.sqlite_rows import EventRow, event_row

# error_type of the failure a parent sees when its sub-orchestration was terminated.
TERMINATED_ERROR_TYPE = "dtctl.Terminated"
# A worker row whose heartbeat stopped (the process crashed or was killed) stays listed as "lost" for
# this long, as evidence for `dtctl workers` and `doctor`; any worker's heartbeat then deletes it.
LOST_WORKER_RETENTION_MICROS = 3600 * 1_000_000

Found = tuple[str, str, int | None]  # status, execution_id, lease_expires
# A new activity task: (instance_id, execution_id, task_id, name, input, now).
TaskRow = tuple[str, str, int, str, str | None, int]


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one backend writes what the shared steps decide. ``conn`` is that backend's connection.

    ``queries`` is the backend's queries module; the shared steps use its ``TERMINATE_AT_ONCE``,
    ``HAS_PENDING_TERMINATE``, ``SELECT_DESCENDANTS``, ``DELETE_INBOX``, ``DELETE_TASKS_OF``,
    ``UPDATE_AFTER_EPISODE``, ``UPDATE_CONTINUE_AS_NEW``, ``DELETE_OLDER_HISTORY`` and
    ``DELETE_OTHER_EXECUTION_EVENTS``, each with its parameters in the same order on both backends.
    """

    queries: ModuleType
    select_parent: str  # (parent_instance_id, parent_task_id, parent_execution_id) of one instance
    insert_child: str  # the instances row of a sub-orchestration (``instance_rows_for``'s row)
    # (status, execution_id, lease_expires) or None; lock: "" (none), "share" or "update" (PostgreSQL)
    status_of: Callable[[Any, str, str], Found | None]
    enqueue: Callable[[Any, Sequence[EventRow]], None]
    remove_instance: Callable[[Any, str], None]  # every trace of one instance
    # (conn, instance_key, execution_no, first sequence number, events); events is never empty
    insert_history: Callable[[Any, int, int, int, Sequence[HistoryEvent]], None]
    delete_messages: Callable[[Any, str, Sequence[InboxMessage]], None]  # never empty
    insert_tasks: Callable[[Any, list[TaskRow]], None]  # never empty


def new_execution_id() -> str:
    return uuid.uuid4().hex


def not_found(instance_id: str, where: str) -> InstanceNotFound:
    return InstanceNotFound(f"no instance {instance_id!r} in hub {where}")


def instance_rows_for(
    new: NewInstance, now: int, execution_id: str, parent_execution_id: str | None
) -> tuple[tuple[object, ...], EventRow]:
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
    )
    visible_at = now if new.start_at is None else new.start_at
    row = (
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
    )
    return row, event_row(new.instance_id, execution_id, started, visible_at)


# --- client messages --------------------------------------------------------------------------------------


def send_to_live(
    d: Dialect, conn: Any, now: int, instance_id: str, event: HistoryEvent, where: str, *, force: bool = False
) -> None:
    """Queue an untagged message for an instance that exists and (unless forced) is not terminal."""
    found = d.status_of(conn, instance_id, "share")
    if found is None:
        raise not_found(instance_id, where)
    if found[0] in TERMINAL_STATUSES and not force:
        raise InvalidState(
            f"instance {instance_id!r} is {found[0]}; it takes no more {event.kind} messages",
            hint="pass --force to store the event anyway" if event.kind == "event_raised" else None,
        )
    d.enqueue(conn, [event_row(instance_id, None, event, now)])


def terminate(
    d: Dialect, conn: Any, now: int, instance_id: str, reason: str | None, recursive: bool, where: str
) -> TerminateOutcome:
    found = d.status_of(conn, instance_id, "update")
    if found is None:
        raise not_found(instance_id, where)
    if found[0] in TERMINAL_STATUSES:
        return TerminateOutcome(instance_id, False, found[0])
    outcome = terminate_live(d, conn, now, instance_id, found, reason, recursive)
    if recursive:
        for (child_id,) in conn.execute(d.queries.SELECT_DESCENDANTS, (instance_id,)).fetchall():
            child = d.status_of(conn, child_id, "update")
            if child is not None and child[0] not in TERMINAL_STATUSES:
                terminate_live(d, conn, now, child_id, child, reason, recursive)
    return outcome


def terminate_live(
    d: Dialect, conn: Any, now: int, instance_id: str, found: Found, reason: str | None, recursive: bool
) -> TerminateOutcome:
    """A PENDING instance nobody holds ends at once; anything else gets one ExecutionTerminated."""
    q = d.queries
    status, _execution, lease_expires = found
    if status == PENDING and (lease_expires is None or lease_expires <= now):
        output = None if reason is None else json.dumps(reason, ensure_ascii=False)
        conn.execute(q.TERMINATE_AT_ONCE, (output, now, now, instance_id))
        conn.execute(q.DELETE_INBOX, (instance_id,))
        conn.execute(q.DELETE_TASKS_OF, (instance_id,))
        parent = conn.execute(d.select_parent, (instance_id,)).fetchone()
        if parent is not None:
            notify_parent(
                d, conn, now, instance_id, (parent[0], parent[1], parent[2]), TERMINATED, output, None
            )
        return TerminateOutcome(instance_id, True, TERMINATED)
    if conn.execute(q.HAS_PENDING_TERMINATE, (instance_id,)).fetchone() is None:
        event = ExecutionTerminated(timestamp=now, reason=reason, recursive=recursive)
        d.enqueue(conn, [event_row(instance_id, None, event, now)])
    return TerminateOutcome(instance_id, True, status)


# --- sub-orchestration results -------------------------------------------------------------------------


def notify_parent(
    d: Dialect,
    conn: Any,
    now: int,
    child_id: str,
    parent: tuple[str | None, int | None, str | None],
    status: str,
    output: str | None,
    failure: FailureDetails | None,
) -> None:
    """Tell a live parent how its sub-orchestration ended (dropped when the parent moved on)."""
    parent_id, task_id, parent_execution = parent
    if parent_id is None or task_id is None:
        return
    found = d.status_of(conn, parent_id, "")
    if found is None or found[0] in TERMINAL_STATUSES:
        return
    if parent_execution is not None and parent_execution != found[1]:
        return  # the parent continued as new: this task id means nothing to its current execution
    event = child_outcome(now, child_id, task_id, status, output, failure)
    d.enqueue(conn, [event_row(parent_id, found[1], event, now)])


def child_outcome(
    now: int, child_id: str, task_id: int, status: str, output: str | None, failure: FailureDetails | None
) -> SubOrchestrationCompleted | SubOrchestrationFailed:
    if status == COMPLETED:
        return SubOrchestrationCompleted(timestamp=now, task_id=task_id, result=output)
    if status == TERMINATED:
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
        return tuple(sorted(TERMINAL_STATUSES))
    live = [s for s in statuses if s not in TERMINAL_STATUSES]
    if live:
        raise UsageError(
            f"only finished instances can be purged; {live[0]!r} is not one of "
            f"{', '.join(sorted(TERMINAL_STATUSES))}"
        )
    return tuple(dict.fromkeys(statuses))


PurgeBatch = Callable[[tuple[str, ...], int | None, list[str] | None, int], int]


def purge_in_batches(query: PurgeQuery, purge_batch: PurgeBatch) -> int:
    """Run a purge as batches of ``query.batch_size`` instances, each batch its own transaction.

    ``purge_batch(statuses, completed_before, ids_or_None, limit)`` deletes one batch and returns how many
    instances it removed. A purge killed between batches leaves a consistent hub; running it again
    finishes the job.
    """
    statuses = purge_statuses(query.statuses)
    batch = max(1, query.batch_size)
    if query.instance_ids:
        ids = list(dict.fromkeys(query.instance_ids))
        return sum(
            purge_batch(statuses, query.completed_before, ids[i : i + batch], batch)
            for i in range(0, len(ids), batch)
        )
    total = 0
    while True:
        purged = purge_batch(statuses, query.completed_before, None, batch)
        total += purged
        if purged < batch:
            return total


# --- schema migrations ------------------------------------------------------------------------------------

_MIGRATION_NAME = re.compile(r"^(\d{3})_(\w+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(backend: str) -> list[Migration]:
    """The numbered SQL files shipped in ``dtctl/hub/schema/<backend>``, in order."""
    folder = resources.files("dtctl.hub").joinpath("schema", backend)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    return found


def check_version_range(
    version: int, latest: int, where: str, *, check_schema: bool, migrate_hint: str
) -> None:
    """Refuse a hub newer than this dtctl, and (when ``check_schema``) one that needs migrating."""
    if version > latest:
        raise SchemaVersionMismatch(
            f"hub {where} has schema version {version}, newer than this dtctl understands ({latest})",
            hint="upgrade dtctl to a release that knows this hub",
        )
    if version < latest and check_schema:
        raise SchemaVersionMismatch(
            f"hub {where} has schema version {version}; this dtctl needs version {latest}",
            hint=migrate_hint,
        )
