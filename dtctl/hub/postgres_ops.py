"""Write steps of the PostgreSQL hub that run inside a caller's transaction.

Each function takes the connection and the transaction's ``now`` and never commits. Where the SQLite
hub relies on its single writer, these take row locks: a client operation locks the one instance row
it judges (``FOR UPDATE`` when it may change it, ``FOR SHARE`` when it only queues a message), and a
checkpoint locks its own instances; so a decision is never made on a row someone is changing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import psycopg

from dtctl.core.history import PENDING, TERMINAL_STATUSES, HistoryEvent, encode_event
from dtctl.errors import InstanceAlreadyExists
from dtctl.hub import common
from dtctl.hub import postgres_queries as q
from dtctl.hub.base import CreateOutcome, IfExists, InboxMessage, NewInstance
from dtctl.hub.common import Found, TaskRow, instance_rows_for, new_execution_id
from dtctl.hub.common import not_found as not_found
from dtctl.hub.sqlite_rows import EventRow

Conn = psycopg.Connection[tuple[Any, ...]]

# A plain INSERT (no ON CONFLICT): an id created concurrently by someone else fails the checkpoint item.
INSERT_CHILD = """
INSERT INTO instances (instance_id, execution_id, name, status, input, created_at, updated_at,
                       scheduled_start, parent_instance_id, parent_task_id, parent_execution_id)
VALUES (%s, %s, %s, 'PENDING', %s, %s, %s, %s, %s, %s, %s)
"""


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


def _remove_instance(conn: Conn, instance_id: str) -> None:
    remove_instances(conn, [instance_id])


def _insert_history(conn: Conn, key: int, number: int, base: int, events: Sequence[HistoryEvent]) -> None:
    sequence = list(range(base, base + len(events)))
    conn.execute(q.INSERT_HISTORY, (key, number, sequence, [encode_event(ev) for ev in events]))


def _delete_messages(conn: Conn, instance_id: str, messages: Sequence[InboxMessage]) -> None:
    conn.execute(q.DELETE_MESSAGES, (instance_id, [m.id for m in messages]))


def _insert_tasks(conn: Conn, tasks: list[TaskRow]) -> None:
    instance_id, execution_id, _task_id, _name, _input, now = tasks[0]  # one episode's tasks
    _, _, task_ids, names, inputs, _ = columns(tasks, 6)
    conn.execute(q.INSERT_TASKS, (instance_id, execution_id, now, task_ids, names, inputs))


DIALECT = common.Dialect(
    queries=q,
    select_parent=q.SELECT_PARENT,
    insert_child=INSERT_CHILD,
    status_of=status_of,
    enqueue=enqueue,
    remove_instance=_remove_instance,
    insert_history=_insert_history,
    delete_messages=_delete_messages,
    insert_tasks=_insert_tasks,
)

# Client messages and terminate: the shared steps of dtctl.hub.common. They lock the one instance row
# they judge: FOR SHARE to queue a message, FOR UPDATE to terminate.
send_to_live = partial(common.send_to_live, DIALECT)
terminate = partial(common.terminate, DIALECT)


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
