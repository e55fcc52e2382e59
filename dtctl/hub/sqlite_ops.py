"""Write steps of the SQLite hub that run inside a caller's ``BEGIN IMMEDIATE`` transaction.

Each function takes the connection and the transaction's ``now`` and never commits: the caller
decides the transaction boundary (one per client call, one per checkpoint batch).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import partial

from dtctl.core.history import PENDING, TERMINAL_STATUSES, HistoryEvent, encode_event
from dtctl.errors import InstanceAlreadyExists
from dtctl.hub import common
from dtctl.hub import sqlite_queries as q
from dtctl.hub.base import CreateOutcome, IfExists, InboxMessage, NewInstance
from dtctl.hub.common import TaskRow, instance_rows_for, new_execution_id
from dtctl.hub.common import not_found as not_found
from dtctl.hub.sqlite_rows import EventRow

SELECT_PARENT = (
    "SELECT parent_instance_id, parent_task_id, parent_execution_id FROM instances WHERE instance_id = ?"
)


def status_of(
    conn: sqlite3.Connection, instance_id: str, lock: str = ""
) -> tuple[str, str, int | None] | None:
    """(status, execution_id, lease_expires) of an instance, or None; ``lock`` is for PostgreSQL only."""
    row = conn.execute(q.SELECT_STATUS, (instance_id,)).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def enqueue(conn: sqlite3.Connection, rows: Sequence[EventRow]) -> None:
    if rows:
        conn.executemany(q.INSERT_EVENT, rows)


def remove_instance(conn: sqlite3.Connection, instance_id: str) -> None:
    """Every trace of an instance: its history (all executions), inbox, activity tasks and row."""
    for statement in q.REMOVE_INSTANCE:
        conn.execute(statement, (instance_id,))


def _insert_history(
    conn: sqlite3.Connection, key: int, number: int, base: int, events: Sequence[HistoryEvent]
) -> None:
    conn.executemany(
        q.INSERT_HISTORY, [(key, number, base + i, encode_event(ev)) for i, ev in enumerate(events)]
    )


def _delete_messages(conn: sqlite3.Connection, instance_id: str, messages: Sequence[InboxMessage]) -> None:
    conn.executemany(q.DELETE_MESSAGE, [(m.id, instance_id) for m in messages])


def _insert_tasks(conn: sqlite3.Connection, tasks: list[TaskRow]) -> None:
    conn.executemany(q.INSERT_TASK, tasks)


DIALECT = common.Dialect(
    queries=q,
    select_parent=SELECT_PARENT,
    insert_child=q.INSERT_INSTANCE,
    status_of=status_of,
    enqueue=enqueue,
    remove_instance=remove_instance,
    insert_history=_insert_history,
    delete_messages=_delete_messages,
    insert_tasks=_insert_tasks,
)

# Client messages and terminate: the shared steps of dtctl.hub.common (SQLite needs no row locks).
send_to_live = partial(common.send_to_live, DIALECT)
terminate = partial(common.terminate, DIALECT)


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


def _existing_status(conn: sqlite3.Connection, instance_id: str) -> str | None:
    found = status_of(conn, instance_id)
    return None if found is None else found[0]


def _execution_of(conn: sqlite3.Connection, instance_id: str | None) -> str | None:
    if instance_id is None:
        return None
    found = status_of(conn, instance_id)
    return None if found is None else found[1]
