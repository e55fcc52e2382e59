"""Write steps of the PostgreSQL hub that run inside a caller's transaction.

Each function takes the connection and the transaction's ``now`` and never commits. Where the SQLite
hub relies on its single writer, these take row locks: a client operation locks the one instance row
it judges (``FOR UPDATE`` when it may change it, ``FOR SHARE`` when it only queues a message), and a
checkpoint locks its own instances; so a decision is never made on a row someone is changing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from dtctl.core.failure import FailureDetails
from dtctl.core.history import (
    PENDING,
    TERMINAL_STATUSES,
    TERMINATED,
    ExecutionTerminated,
    HistoryEvent,
)
from dtctl.errors import InstanceAlreadyExists, InstanceNotFound, InvalidState
from dtctl.hub import postgres_queries as q
from dtctl.hub.base import CreateOutcome, IfExists, NewInstance, TerminateOutcome
from dtctl.hub.sqlite_ops import child_outcome, instance_rows_for, new_execution_id
from dtctl.hub.sqlite_rows import EventRow, event_row

Conn = psycopg.Connection[tuple[Any, ...]]
Found = tuple[str, str, int | None]  # status, execution_id, lease_expires


def not_found(instance_id: str, where: str) -> InstanceNotFound:
    return InstanceNotFound(f"no instance {instance_id!r} in hub {where}")


def status_of(conn: Conn, instance_id: str, lock: str = "") -> Found | None:
    """(status, execution_id, lease_expires) of an instance, or None; ``lock``: "", "share", "update"."""
    sql = {"": q.SELECT_STATUS, "share": q.SELECT_STATUS_FOR_SHARE, "update": q.SELECT_STATUS_FOR_UPDATE}[
        lock
    ]
    row = conn.execute(sql, (instance_id,)).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows to one list per column (what ``unnest`` takes)."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(col) for col in zip(*rows, strict=True)]


def enqueue(conn: Conn, rows: Sequence[EventRow]) -> None:
    if rows:
        conn.execute(q.INSERT_EVENTS, columns(rows, 7))


def remove_instances(conn: Conn, instance_ids: Sequence[str]) -> None:
    """Every trace of the instances: history (all executions), inbox, activity tasks and rows."""
    if instance_ids:
        ids = list(instance_ids)
        for statement in q.REMOVE_INSTANCES:
            conn.execute(statement, (ids,))


# --- creating instances ---------------------------------------------------------------------------------


def create_instances(
    conn: Conn, now: int, instances: Sequence[NewInstance], if_exists: IfExists, where: str
) -> list[CreateOutcome]:
    ids = list(dict.fromkeys(new.instance_id for new in instances))
    existing: dict[str, str] = dict(conn.execute(q.SELECT_STATUSES_FOR_UPDATE, (ids,)).fetchall())
    outcomes: list[CreateOutcome | None] = []
    chosen: list[NewInstance] = []
    replaced: list[str] = []
    seen: set[str] = set()
    for new in instances:
        status = PENDING if new.instance_id in seen else existing.get(new.instance_id)
        if status is not None:
            if if_exists == "skip":
                outcomes.append(CreateOutcome(new.instance_id, False))
                continue
            if if_exists == "fail" or status not in TERMINAL_STATUSES:
                raise _exists(new.instance_id, status, where)
            replaced.append(new.instance_id)
        seen.add(new.instance_id)
        chosen.append(new)
        outcomes.append(None)  # filled once the insert says whether it won
    remove_instances(conn, replaced)
    parents = _executions(conn, {n.parent_instance_id for n in chosen if n.parent_instance_id})
    instance_rows: list[tuple[Any, ...]] = []
    starts: dict[str, EventRow] = {}
    for new in chosen:
        row, started = instance_rows_for(
            new, now, new_execution_id(), parents.get(new.parent_instance_id or "")
        )
        # (id, execution, name, input, created, scheduled_start, parent id, parent task, parent execution)
        instance_rows.append((row[0], row[1], row[2], row[3], row[4], row[6], row[7], row[8], row[9]))
        starts[new.instance_id] = started
    won: set[str] = set()
    if instance_rows:
        won = {r[0] for r in conn.execute(q.INSERT_INSTANCES, columns(instance_rows, 9)).fetchall()}
    lost = [new.instance_id for new in chosen if new.instance_id not in won]
    if lost and if_exists != "skip":
        raise _exists(lost[0], "being created by another client", where)
    enqueue(conn, [starts[new.instance_id] for new in chosen if new.instance_id in won])
    created = iter(chosen)
    result: list[CreateOutcome] = []
    for outcome in outcomes:
        if outcome is None:
            new = next(created)
            outcome = CreateOutcome(new.instance_id, new.instance_id in won)
        result.append(outcome)
    return result


def _exists(instance_id: str, status: str, where: str) -> InstanceAlreadyExists:
    return InstanceAlreadyExists(
        f"instance {instance_id!r} already exists in hub {where} and is {status}",
        hint="pass --if-exists skip, or --if-exists replace for a finished instance",
    )


def _executions(conn: Conn, instance_ids: Iterable[str]) -> dict[str, str]:
    ids = [i for i in instance_ids if i]
    if not ids:
        return {}
    return dict(conn.execute(q.SELECT_EXECUTIONS, (ids,)).fetchall())


# --- client messages --------------------------------------------------------------------------------------


def send_to_live(
    conn: Conn, now: int, instance_id: str, event: HistoryEvent, where: str, *, force: bool = False
) -> None:
    """Queue an untagged message for an instance that exists and (unless forced) is not terminal."""
    found = status_of(conn, instance_id, "share")
    if found is None:
        raise not_found(instance_id, where)
    if found[0] in TERMINAL_STATUSES and not force:
        raise InvalidState(
            f"instance {instance_id!r} is {found[0]}; it takes no more {event.kind} messages",
            hint="pass --force to store the event anyway" if event.kind == "event_raised" else None,
        )
    enqueue(conn, [event_row(instance_id, None, event, now)])


def terminate(
    conn: Conn, now: int, instance_id: str, reason: str | None, recursive: bool, where: str
) -> TerminateOutcome:
    found = status_of(conn, instance_id, "update")
    if found is None:
        raise not_found(instance_id, where)
    if found[0] in TERMINAL_STATUSES:
        return TerminateOutcome(instance_id, False, found[0])
    outcome = terminate_live(conn, now, instance_id, found, reason, recursive)
    if recursive:
        for (child_id,) in conn.execute(q.SELECT_DESCENDANTS, (instance_id,)).fetchall():
            child = status_of(conn, child_id, "update")
            if child is not None and child[0] not in TERMINAL_STATUSES:
                terminate_live(conn, now, child_id, child, reason, recursive)
    return outcome


def terminate_live(
    conn: Conn, now: int, instance_id: str, found: Found, reason: str | None, recursive: bool
) -> TerminateOutcome:
    """A PENDING instance nobody holds ends at once; anything else gets one ExecutionTerminated."""
    status, _execution, lease_expires = found
    if status == PENDING and (lease_expires is None or lease_expires <= now):
        output = None if reason is None else json.dumps(reason, ensure_ascii=False)
        conn.execute(q.TERMINATE_AT_ONCE, (output, now, now, instance_id))
        conn.execute(q.DELETE_INBOX, (instance_id,))
        conn.execute(q.DELETE_TASKS_OF, (instance_id,))
        parent = conn.execute(q.SELECT_PARENT, (instance_id,)).fetchone()
        if parent is not None:
            notify_parent(conn, now, instance_id, (parent[0], parent[1], parent[2]), TERMINATED, output, None)
        return TerminateOutcome(instance_id, True, TERMINATED)
    if conn.execute(q.HAS_PENDING_TERMINATE, (instance_id,)).fetchone() is None:
        event = ExecutionTerminated(timestamp=now, reason=reason, recursive=recursive)
        enqueue(conn, [event_row(instance_id, None, event, now)])
    return TerminateOutcome(instance_id, True, status)


# --- sub-orchestration results -------------------------------------------------------------------------


def notify_parent(
    conn: Conn,
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
