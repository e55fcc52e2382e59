"""Write steps of the SQLite hub that run inside a caller's ``BEGIN IMMEDIATE`` transaction.

Each function takes the connection and the transaction's ``now`` and never commits: the caller
decides the transaction boundary (one per client call, one per checkpoint batch).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import partial

from dtctl.core.history import HistoryEvent, encode_event
from dtctl.core.status import TERMINAL, RuntimeStatus
from dtctl.errors import InstanceAlreadyExists
from dtctl.hub.base import CreateOutcome, IfExists, InboxMessage, NewInstance
from dtctl.hub.sql import instances as common
from dtctl.hub.sql.dialect import Dialect, RowLock, Statements
from dtctl.hub.sql.instances import instance_rows_for, new_execution_id, tag_rows_of
from dtctl.hub.sql.instances import not_found as not_found
from dtctl.hub.sql.records import EntityMessageRow, EventRow, InstanceRow, InstanceStatus, TaskRow
from dtctl.hub.sqlite import queries as q


class SqliteDialect:
    """The SQLite half of the shared write steps (:class:`~dtctl.hub.sql.dialect.Dialect`)."""

    sql = Statements(
        select_parent=q.SELECT_PARENT,
        insert_child=q.INSERT_INSTANCE,
        select_descendants=q.SELECT_DESCENDANTS,
        terminate_at_once=q.TERMINATE_AT_ONCE,
        has_pending_terminate=q.HAS_PENDING_TERMINATE,
        delete_inbox=q.DELETE_INBOX,
        delete_timer_fired=q.DELETE_TIMER_FIRED,
        delete_tasks_of=q.DELETE_TASKS_OF,
        update_after_episode=q.UPDATE_AFTER_EPISODE,
        update_continue_as_new=q.UPDATE_CONTINUE_AS_NEW,
        delete_older_history=q.DELETE_OLDER_HISTORY,
        delete_other_execution_events=q.DELETE_OTHER_EXECUTION_EVENTS,
        select_pending_events=q.SELECT_PENDING_EVENTS,
    )

    def status_of(
        self, conn: sqlite3.Connection, instance_id: str, lock: RowLock = ""
    ) -> InstanceStatus | None:
        """The instance's status, execution and lease expiry, or None; ``lock`` is for PostgreSQL only."""
        row = conn.execute(q.SELECT_STATUS, (instance_id,)).fetchone()
        return None if row is None else InstanceStatus.from_row(row)

    def enqueue(self, conn: sqlite3.Connection, rows: Sequence[EventRow]) -> None:
        if rows:
            conn.executemany(q.INSERT_EVENT, rows)

    def remove_instance(self, conn: sqlite3.Connection, instance_id: str) -> None:
        """Every trace of an instance: its history (all executions), inbox, activity tasks and row."""
        for statement in q.REMOVE_INSTANCE:
            conn.execute(statement, (instance_id,))

    def insert_history(
        self,
        conn: sqlite3.Connection,
        instance_key: int,
        execution_no: int,
        first: int,
        events: Sequence[HistoryEvent],
    ) -> None:
        conn.executemany(
            q.INSERT_HISTORY,
            [(instance_key, execution_no, first + i, encode_event(ev)) for i, ev in enumerate(events)],
        )

    def delete_messages(
        self, conn: sqlite3.Connection, instance_id: str, messages: Sequence[InboxMessage]
    ) -> None:
        conn.executemany(q.DELETE_MESSAGE, [(m.id, instance_id) for m in messages])

    def insert_tasks(self, conn: sqlite3.Connection, tasks: Sequence[TaskRow]) -> None:
        conn.executemany(q.INSERT_TASK, tasks)

    def send_entity_messages(self, conn: sqlite3.Connection, rows: Sequence[EntityMessageRow]) -> None:
        conn.executemany(
            q.ENSURE_ENTITY, {(r.entity_id, r.name, r.key, r.created_at, r.created_at) for r in rows}
        )
        conn.executemany(q.INSERT_ENTITY_MESSAGE, [(r.entity_id, *r[3:]) for r in rows])


DIALECT: Dialect[sqlite3.Connection] = SqliteDialect()
# The same steps for this package's own callers (bound methods: no extra call on the hot path).
status_of = DIALECT.status_of
enqueue = DIALECT.enqueue
remove_instance = DIALECT.remove_instance

# Client messages and terminate: the shared steps of dtctl.hub.sql.instances (SQLite needs no row locks).
send_to_live = partial(common.send_to_live, DIALECT)
terminate = partial(common.terminate, DIALECT)


# --- creating instances ---------------------------------------------------------------------------------


def create_instances(
    conn: sqlite3.Connection, now: int, instances: Sequence[NewInstance], if_exists: IfExists, where: str
) -> list[CreateOutcome]:
    outcomes: list[CreateOutcome] = []
    instance_rows: list[InstanceRow] = []
    event_rows: list[EventRow] = []
    tag_rows: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for new in instances:
        existing = (
            RuntimeStatus.PENDING if new.instance_id in seen else _existing_status(conn, new.instance_id)
        )
        if existing is not None:
            if if_exists == "skip":
                outcomes.append(CreateOutcome(new.instance_id, False))
                continue
            if if_exists == "fail" or existing not in TERMINAL:
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
        tag_rows.extend(tag_rows_of(new))
        outcomes.append(CreateOutcome(new.instance_id, True))
    if instance_rows:
        conn.executemany(q.INSERT_INSTANCE, instance_rows)
        enqueue(conn, event_rows)
        if tag_rows:
            conn.executemany(q.INSERT_TAGS, tag_rows)
        traced = [(n.trace_context, n.instance_id) for n in instances if n.trace_context is not None]
        if traced:
            conn.executemany(q.SET_TRACE_CONTEXT, traced)
    return outcomes


def _existing_status(conn: sqlite3.Connection, instance_id: str) -> str | None:
    found = status_of(conn, instance_id)
    return None if found is None else found.status


def _execution_of(conn: sqlite3.Connection, instance_id: str | None) -> str | None:
    if instance_id is None:
        return None
    found = status_of(conn, instance_id)
    return None if found is None else found.execution_id
