"""Write steps of the SQLite hub that run inside a caller's ``BEGIN IMMEDIATE`` transaction.

Each function takes the connection and the transaction's ``now`` and never commits: the caller
decides the transaction boundary (one per client call, one per checkpoint batch).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence

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
from dtctl.errors import InstanceAlreadyExists, InstanceNotFound, InvalidState
from dtctl.hub import sqlite_queries as q
from dtctl.hub.base import CreateOutcome, IfExists, NewInstance, TerminateOutcome
from dtctl.hub.sqlite_rows import EventRow, event_row

# error_type of the failure a parent sees when its sub-orchestration was terminated.
TERMINATED_ERROR_TYPE = "dtctl.Terminated"


def new_execution_id() -> str:
    return uuid.uuid4().hex


def not_found(instance_id: str, where: str) -> InstanceNotFound:
    return InstanceNotFound(f"no instance {instance_id!r} in hub {where}")


def status_of(conn: sqlite3.Connection, instance_id: str) -> tuple[str, str, int | None] | None:
    """(status, execution_id, lease_expires) of an instance, or None when it does not exist."""
    row = conn.execute(q.SELECT_STATUS, (instance_id,)).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def enqueue(conn: sqlite3.Connection, rows: Sequence[EventRow]) -> None:
    if rows:
        conn.executemany(q.INSERT_EVENT, rows)


def remove_instance(conn: sqlite3.Connection, instance_id: str) -> None:
    """Every trace of an instance: its history (all executions), inbox, activity tasks and row."""
    for statement in q.REMOVE_INSTANCE:
        conn.execute(statement, (instance_id,))


# --- creating instances ---------------------------------------------------------------------------------


def create_instances(
    conn: sqlite3.Connection, now: int, instances: Sequence[NewInstance], if_exists: IfExists, where: str
) -> list[CreateOutcome]:
    outcomes: list[CreateOutcome] = []
    instance_rows: list[tuple[object, ...]] = []
    event_rows: list[EventRow] = []
    seen: set[str] = set()
    for new in instances:
        existing = PENDING if new.instance_id in seen else _existing_status(conn, new.instance_id)
        if existing is not None:
            if if_exists == "skip":
                outcomes.append(CreateOutcome(new.instance_id, False))
                continue
            if if_exists == "fail" or existing not in TERMINAL_STATUSES:
                raise InstanceAlreadyExists(
                    f"instance {new.instance_id!r} already exists in hub {where} and is {existing}",
                    hint="pass --if-exists skip, or --if-exists replace for a finished instance",
                )
            remove_instance(conn, new.instance_id)
        seen.add(new.instance_id)
        parent_execution = _execution_of(conn, new.parent_instance_id)
        instance_row, started = instance_rows_for(new, now, new_execution_id(), parent_execution)
        instance_rows.append(instance_row)
        event_rows.append(started)
        outcomes.append(CreateOutcome(new.instance_id, True))
    if instance_rows:
        conn.executemany(q.INSERT_INSTANCE, instance_rows)
        enqueue(conn, event_rows)
    return outcomes


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


def _existing_status(conn: sqlite3.Connection, instance_id: str) -> str | None:
    found = status_of(conn, instance_id)
    return None if found is None else found[0]


def _execution_of(conn: sqlite3.Connection, instance_id: str | None) -> str | None:
    if instance_id is None:
        return None
    found = status_of(conn, instance_id)
    return None if found is None else found[1]


# --- client messages --------------------------------------------------------------------------------------


def send_to_live(
    conn: sqlite3.Connection,
    now: int,
    instance_id: str,
    event: HistoryEvent,
    where: str,
    *,
    force: bool = False,
) -> None:
    """Queue an untagged message for an instance that exists and (unless forced) is not terminal."""
    found = status_of(conn, instance_id)
    if found is None:
        raise not_found(instance_id, where)
    if found[0] in TERMINAL_STATUSES and not force:
        raise InvalidState(
            f"instance {instance_id!r} is {found[0]}; it takes no more {event.kind} messages",
            hint="pass --force to store the event anyway" if event.kind == "event_raised" else None,
        )
    enqueue(conn, [event_row(instance_id, None, event, now)])


def terminate(
    conn: sqlite3.Connection, now: int, instance_id: str, reason: str | None, recursive: bool, where: str
) -> TerminateOutcome:
    found = status_of(conn, instance_id)
    if found is None:
        raise not_found(instance_id, where)
    if found[0] in TERMINAL_STATUSES:
        return TerminateOutcome(instance_id, False, found[0])
    outcome = terminate_live(conn, now, instance_id, found, reason, recursive)
    if recursive:
        for (child_id,) in conn.execute(q.SELECT_DESCENDANTS, (instance_id,)).fetchall():
            child = status_of(conn, child_id)
            if child is not None and child[0] not in TERMINAL_STATUSES:
                terminate_live(conn, now, child_id, child, reason, recursive)
    return outcome


def terminate_live(
    conn: sqlite3.Connection,
    now: int,
    instance_id: str,
    found: tuple[str, str, int | None],
    reason: str | None,
    recursive: bool,
) -> TerminateOutcome:
    """A PENDING instance nobody holds ends at once; anything else gets one ExecutionTerminated."""
    status, _execution, lease_expires = found
    if status == PENDING and (lease_expires is None or lease_expires <= now):
        output = None if reason is None else json.dumps(reason, ensure_ascii=False)
        conn.execute(q.TERMINATE_AT_ONCE, (output, now, now, instance_id))
        conn.execute(q.DELETE_INBOX, (instance_id,))
        conn.execute(q.DELETE_TASKS_OF, (instance_id,))
        notify_parent_of(conn, now, instance_id, TERMINATED, output, None)
        return TerminateOutcome(instance_id, True, TERMINATED)
    if conn.execute(q.HAS_PENDING_TERMINATE, (instance_id,)).fetchone() is None:
        event = ExecutionTerminated(timestamp=now, reason=reason, recursive=recursive)
        enqueue(conn, [event_row(instance_id, None, event, now)])
    return TerminateOutcome(instance_id, True, status)


# --- sub-orchestration results -------------------------------------------------------------------------


def notify_parent_of(
    conn: sqlite3.Connection,
    now: int,
    instance_id: str,
    status: str,
    output: str | None,
    failure: FailureDetails | None,
) -> None:
    row = conn.execute(
        "SELECT parent_instance_id, parent_task_id, parent_execution_id FROM instances WHERE instance_id = ?",
        (instance_id,),
    ).fetchone()
    if row is not None:
        notify_parent(conn, now, instance_id, (row[0], row[1], row[2]), status, output, failure)


def notify_parent(
    conn: sqlite3.Connection,
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
    found = status_of(conn, parent_id)
    if found is None or found[0] in TERMINAL_STATUSES:
        return
    if parent_execution is not None and parent_execution != found[1]:
        return  # the parent continued as new: this task id means nothing to its current execution
    event = child_outcome(now, child_id, task_id, status, output, failure)
    enqueue(conn, [event_row(parent_id, found[1], event, now)])


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
